//! The `users` function: the member's own profile, public profiles, follows and blocks.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::blocks;
use renji_shared::domain::follows::{self, Direction};
use renji_shared::domain::members;
use renji_shared::http::{
    id_param, json_body, no_body, no_content, ok, only_params, route_key, PageRequest,
};
use renji_shared::ids::UserId;
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::store::{keys, Record};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::unlimited("GET /v1/me"),
    Route::member("PATCH /v1/me", Class::Write),
    Route::unlimited("GET /v1/users/{id}"),
    Route::member("PUT /v1/me/following/{user_id}", Class::Write),
    Route::member("DELETE /v1/me/following/{user_id}", Class::Write),
    Route::anyone("GET /v1/users/{id}/followers", Class::Browse),
    Route::anyone("GET /v1/users/{id}/following", Class::Browse),
    Route::member("PUT /v1/me/blocks/{user_id}", Class::Write),
    Route::member("DELETE /v1/me/blocks/{user_id}", Class::Write),
    Route::unlimited("GET /v1/me/blocks"),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    match route_key(&req) {
        Some("GET /v1/me") => {
            only_params(&req, &[])?;
            let (_, member) = app
                .authenticate_with(&req, |me| keys::member(&me.user_id))
                .await?;
            let member = member.ok_or(Error::NotFound("member"))?;
            ok(&members::Member::from_item(member)?.private_view(&app.config.policy_versions))
        }
        Some("PATCH /v1/me") => {
            let me = app.authenticate(&req).await?;
            let patch = json_body(&req, app.config.max_body_bytes)?;
            let member = Box::pin(members::update_profile(
                &app.store,
                app.wechat_api()?,
                &app.config.media.base_url,
                &me.user_id,
                patch,
            ))
            .await?;
            ok(&member.private_view(&app.config.policy_versions))
        }
        Some("GET /v1/users/{id}") => {
            only_params(&req, &[])?;
            let id = id_param(&req, "id", UserId::parse, "member")?;
            let member = members::get(&app.store, &id)
                .await?
                .ok_or(Error::NotFound("member"))?;
            ok(&member.public_view())
        }
        Some("PUT /v1/me/following/{user_id}") => {
            let me = app.authenticate(&req).await?;
            let target = id_param(&req, "user_id", UserId::parse, "member")?;
            follows::follow(&app.store, &me.user_id, &target).await?;
            no_content()
        }
        Some("DELETE /v1/me/following/{user_id}") => {
            let me = app.authenticate(&req).await?;
            let target = id_param(&req, "user_id", UserId::parse, "member")?;
            follows::unfollow(&app.store, &me.user_id, &target).await?;
            no_content()
        }
        Some(route @ ("GET /v1/users/{id}/followers" | "GET /v1/users/{id}/following")) => {
            let direction = if route.ends_with("followers") {
                Direction::Followers
            } else {
                Direction::Following
            };
            let keys = app.tokens().await?;
            let page = PageRequest::only(&req, keys.cursors())?;
            let id = id_param(&req, "id", UserId::parse, "member")?;
            let (items, next) =
                follows::list(&app.store, &id, direction, page.limit, page.cursor.as_ref()).await?;
            page.list(items, next)
        }
        Some(route @ ("PUT /v1/me/blocks/{user_id}" | "DELETE /v1/me/blocks/{user_id}")) => {
            let me = app.authenticate(&req).await?;
            let target = id_param(&req, "user_id", UserId::parse, "member")?;
            only_params(&req, &[])?;
            no_body(&req, app.config.max_body_bytes)?;
            if route.starts_with("PUT") {
                blocks::block(&app.store, &me.user_id, &target, OffsetDateTime::now_utc()).await?;
            } else {
                blocks::unblock(&app.store, &me.user_id, &target).await?;
            }
            no_content()
        }
        Some("GET /v1/me/blocks") => {
            let me = app.authenticate(&req).await?;
            let keys = app.tokens().await?;
            let page = PageRequest::only(&req, keys.cursors())?;
            let (items, next) =
                blocks::list(&app.store, &me.user_id, page.limit, page.cursor.as_ref()).await?;
            page.list(items, next)
        }
        _ => Err(Error::NotFound("route")),
    }
}
