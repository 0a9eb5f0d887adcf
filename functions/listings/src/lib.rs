//! The `listings` function: create, read, edit and remove listings; browse (kind, category,
//! city, nearby, keyword); a member's listings, and one's own in every status; shares and the
//! share history.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::consents;
use renji_shared::domain::listings::{self, browse};
use renji_shared::domain::shares;
use renji_shared::http::{
    created, id_param, json_body, no_content, ok, only_params, query_param, route_key, PageRequest,
};
use renji_shared::ids::{ListingId, UserId};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::store::{keys, Record};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// Whether the request carries credentials (a bad one is still 401 where they are read).
fn has_bearer(req: &Request) -> bool {
    req.headers()
        .contains_key(lambda_http::http::header::AUTHORIZATION)
}

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::member("POST /v1/listings", Class::Write),
    Route::anyone("GET /v1/listings", Class::Browse),
    Route::unlimited("GET /v1/listings/{id}"),
    Route::member("PATCH /v1/listings/{id}", Class::Write),
    Route::member("DELETE /v1/listings/{id}", Class::Write),
    Route::anyone("GET /v1/users/{id}/listings", Class::Browse),
    Route::member("POST /v1/listings/{id}/shares", Class::Share),
    Route::unlimited("GET /v1/me/shares"),
    Route::unlimited("GET /v1/me/listings"),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

fn listing_id(req: &Request) -> Result<ListingId, Error> {
    id_param(req, "id", ListingId::parse, "listing")
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let store = &app.store;
    let rules = &listings::Rules::of(&app.config);
    let limit = app.config.max_body_bytes;
    match route_key(&req) {
        Some("POST /v1/listings") => {
            let me = app.authenticate(&req).await?;
            let body = json_body(&req, limit)?;
            let listing = Box::pin(listings::create(
                store,
                app.wechat_api()?,
                rules,
                &me.user_id,
                body,
            ))
            .await?;
            created(&listing.owner_view())
        }
        Some("GET /v1/listings") => {
            only_params(&req, browse::PARAMS)?;
            let keys = app.tokens().await?;
            let mut page = PageRequest::from_request(&req, keys.cursors())?;
            let near = query_param(&req, "near");
            // Only a nearby browse with a bearer reads the session (and the stored position with
            // it, one request): browsing without `near`, or signed out, reads no more than before.
            let signed_in = match &near {
                Some(near) if near == "me" || has_bearer(&req) => Some(
                    app.authenticate_with(&req, |me| keys::member_location(&me.user_id))
                        .await?,
                ),
                _ => None,
            };
            let now = OffsetDateTime::now_utc();
            let near = match (near, &signed_in) {
                (Some(near), Some((me, stored))) if near == "me" => Some(
                    consents::my_position(store, &me.user_id, stored.clone(), now.unix_timestamp())
                        .await?,
                ),
                (near, _) => near,
            };
            let query = browse::Browse::parse(
                |name| match name {
                    "near" => near.clone(),
                    _ => query_param(&req, name),
                },
                rules,
                page.limit,
                page.cursor.take(),
            )?;
            let (items, next) = browse::browse(store, &query).await?;
            // A signed-in nearby browse at a position of its own records it (coarse), when the
            // member granted `location`; near=me has nothing new to record.
            if let (Some((me, stored)), Some((center, _))) = (&signed_in, &query.near) {
                if query_param(&req, "near").as_deref() != Some("me") {
                    let stored = stored
                        .clone()
                        .map(consents::StoredPosition::from_item)
                        .transpose()?;
                    consents::record_position(store, &me.user_id, center, stored.as_ref(), now)
                        .await?;
                }
            }
            page.list(items, next)
        }
        Some("GET /v1/listings/{id}") => {
            only_params(&req, &[])?;
            let viewer = app.viewer(&req).await?;
            let id = listing_id(&req)?;
            ok(&listings::get_visible(store, &id, viewer.as_ref().map(|c| &c.user_id)).await?)
        }
        Some("PATCH /v1/listings/{id}") => {
            let me = app.authenticate(&req).await?;
            let id = listing_id(&req)?;
            let patch = json_body(&req, limit)?;
            let listing = Box::pin(listings::update(
                store,
                app.wechat_api()?,
                rules,
                &me.user_id,
                &id,
                patch,
            ))
            .await?;
            ok(&listing.owner_view())
        }
        Some("DELETE /v1/listings/{id}") => {
            let me = app.authenticate(&req).await?;
            listings::remove(store, &me.user_id, &listing_id(&req)?).await?;
            no_content()
        }
        Some("GET /v1/users/{id}/listings") => {
            let keys = app.tokens().await?;
            let page = PageRequest::only(&req, keys.cursors())?;
            let owner = id_param(&req, "id", UserId::parse, "member")?;
            let (items, next) =
                listings::by_owner(store, &owner, page.limit, page.cursor.as_ref()).await?;
            page.list(items, next)
        }
        Some("POST /v1/listings/{id}/shares") => {
            let me = app.authenticate(&req).await?;
            let id = listing_id(&req)?;
            let body = json_body(&req, limit)?;
            // The day's first share of this listing to this channel is 201; a repeat is 200
            // with that same record, and counts nothing.
            let recorded = shares::record(store, &me.user_id, &id, body).await?;
            match recorded.new {
                true => created(&recorded.share),
                false => ok(&recorded.share),
            }
        }
        Some("GET /v1/me/shares") => {
            let me = app.authenticate(&req).await?;
            let keys = app.tokens().await?;
            let page = PageRequest::only(&req, keys.cursors())?;
            let (items, next) =
                shares::history(store, &me.user_id, page.limit, page.cursor.as_ref()).await?;
            page.list(items, next)
        }
        Some("GET /v1/me/listings") => {
            let me = app.authenticate(&req).await?;
            only_params(&req, &["status", "limit", "cursor"])?;
            let keys = app.tokens().await?;
            let page = PageRequest::from_request(&req, keys.cursors())?;
            let status = query_param(&req, "status")
                .map(|s| {
                    listings::ListingStatus::parse(&s).ok_or_else(|| {
                        Error::invalid(
                            "status",
                            "must be draft, published, closed, removed or taken_down",
                        )
                    })
                })
                .transpose()?;
            let (items, next) =
                listings::mine(store, &me.user_id, status, page.limit, page.cursor.as_ref())
                    .await?;
            page.list(items, next)
        }
        _ => Err(Error::NotFound("route")),
    }
}
