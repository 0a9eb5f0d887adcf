//! The `reviews` function: the buyer reviews a completed order, the seller answers, and anyone
//! reads a listing's reviews or the reviews a member received as a seller.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::reviews::{self, NewReview, ReplyBody};
use renji_shared::http::{created, id_param, json_body, ok, route_key, PageRequest};
use renji_shared::ids::{ListingId, OrderId, ReviewId, UserId};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::member("POST /v1/orders/{id}/reviews", Class::Write),
    Route::member("POST /v1/reviews/{id}/reply", Class::Write),
    Route::anyone("GET /v1/listings/{id}/reviews", Class::Browse),
    Route::anyone("GET /v1/users/{id}/reviews", Class::Browse),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let store = &app.store;
    let limit = app.config.max_body_bytes;
    let now = OffsetDateTime::now_utc();
    match route_key(&req) {
        Some("POST /v1/orders/{id}/reviews") => {
            let me = app.authenticate(&req).await?;
            // A path id that is not of our order id shape names no order: 404.
            let id = id_param(&req, "id", OrderId::parse, "order")?;
            let body: NewReview = json_body(&req, limit)?;
            let window = app.config.review_window;
            let review = Box::pin(reviews::create(
                store,
                app.wechat_api()?,
                &app.config.media.base_url,
                window,
                &id,
                &me.user_id,
                &body,
                now,
            ))
            .await?;
            created(&reviews::view(store, &review, &me.user_id).await?)
        }
        Some("POST /v1/reviews/{id}/reply") => {
            let me = app.authenticate(&req).await?;
            let id = id_param(&req, "id", ReviewId::parse, "review")?;
            let body: ReplyBody = json_body(&req, limit)?;
            let review = Box::pin(reviews::reply(
                store,
                app.wechat_api()?,
                &id,
                &me.user_id,
                &body,
                now,
            ))
            .await?;
            ok(&reviews::view(store, &review, &me.user_id).await?)
        }
        Some("GET /v1/listings/{id}/reviews") => {
            let keys = app.tokens().await?;
            let page = PageRequest::only(&req, keys.cursors())?;
            let id = id_param(&req, "id", ListingId::parse, "listing")?;
            let viewer = app.viewer(&req).await?.map(|c| c.user_id);
            let (items, next) = reviews::of_listing(
                store,
                viewer.as_ref(),
                &id,
                page.limit,
                page.cursor.as_ref(),
            )
            .await?;
            page.list(items, next)
        }
        Some("GET /v1/users/{id}/reviews") => {
            let keys = app.tokens().await?;
            let page = PageRequest::only(&req, keys.cursors())?;
            let id = id_param(&req, "id", UserId::parse, "member")?;
            let viewer = app.viewer(&req).await?.map(|c| c.user_id);
            let (items, next) = reviews::of_seller(
                store,
                viewer.as_ref(),
                &id,
                page.limit,
                page.cursor.as_ref(),
            )
            .await?;
            page.list(items, next)
        }
        _ => Err(Error::NotFound("route")),
    }
}
