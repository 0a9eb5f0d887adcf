//! The `favorites` function: favourite and unfavourite listings, and "我的-收藏".

use lambda_http::{Body, Request, Response};
use renji_shared::domain::favorites;
use renji_shared::http::{id_param, no_content, route_key, PageRequest};
use renji_shared::ids::ListingId;
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::{App, Error};

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::member("PUT /v1/me/favorites/{listing_id}", Class::Write),
    Route::member("DELETE /v1/me/favorites/{listing_id}", Class::Write),
    Route::unlimited("GET /v1/me/favorites"),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let me = app.authenticate(&req).await?;
    let listing = || id_param(&req, "listing_id", ListingId::parse, "listing");
    match route_key(&req) {
        Some("PUT /v1/me/favorites/{listing_id}") => {
            favorites::add(&app.store, &me.user_id, &listing()?).await?;
            no_content()
        }
        Some("DELETE /v1/me/favorites/{listing_id}") => {
            favorites::remove(&app.store, &me.user_id, &listing()?).await?;
            no_content()
        }
        Some("GET /v1/me/favorites") => {
            let keys = app.tokens().await?;
            let page = PageRequest::only(&req, keys.cursors())?;
            let (items, next) =
                favorites::list(&app.store, &me.user_id, page.limit, page.cursor.as_ref()).await?;
            page.list(items, next)
        }
        _ => Err(Error::NotFound("route")),
    }
}
