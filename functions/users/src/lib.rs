//! The `users` function: the member's own profile and public profiles.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::members;
use renji_shared::http::{json_body, ok, path_param, respond, route_key};
use renji_shared::ids::UserId;
use renji_shared::{App, Error};

/// The routes this function serves; `template.yaml` must route exactly these here (tested).
pub const ROUTES: &[&str] = &["GET /v1/me", "PATCH /v1/me", "GET /v1/users/{id}"];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    match route_key(&req) {
        Some("GET /v1/me") => {
            let me = app.authenticate(&req).await?;
            let member = members::get(&app.store, &me.user_id)
                .await?
                .ok_or(Error::NotFound("member"))?;
            ok(&member.private_view())
        }
        Some("PATCH /v1/me") => {
            let me = app.authenticate(&req).await?;
            let patch = json_body(&req, app.config.max_body_bytes)?;
            let member = members::update_profile(&app.store, &me.user_id, patch).await?;
            ok(&member.private_view())
        }
        Some("GET /v1/users/{id}") => {
            let id = UserId::parse(&path_param(&req, "id")?).ok_or(Error::NotFound("member"))?;
            let member = members::get(&app.store, &id)
                .await?
                .ok_or(Error::NotFound("member"))?;
            ok(&member.public_view())
        }
        _ => Err(Error::NotFound("route")),
    }
}
