//! The `notifications` function: the member's subscribe-message grants (订阅消息,
//! `renji_shared::domain::subscriptions`): `POST /v1/me/subscriptions` records what
//! `wx.requestSubscribeMessage` answered (a hint; WeChat's own push confirms), `GET` shows what
//! remains per message kind. The messages themselves are sent by `notification-jobs`.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::subscriptions::{self, HintBody};
use renji_shared::http::{json_body, ok, only_params, route_key};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::member("GET /v1/me/subscriptions", Class::Browse),
    Route::member("POST /v1/me/subscriptions", Class::Write),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let store = &app.store;
    let templates = &app.config.subscribe_templates;
    match route_key(&req) {
        Some("GET /v1/me/subscriptions") => {
            let me = app.authenticate(&req).await?;
            only_params(&req, &[])?;
            ok(&subscriptions::view(store, templates, &me.user_id).await?)
        }
        Some("POST /v1/me/subscriptions") => {
            let me = app.authenticate(&req).await?;
            only_params(&req, &[])?;
            let body: HintBody = json_body(&req, app.config.max_body_bytes)?;
            let answers = body.validate(templates)?;
            subscriptions::record_hints(store, &me.user_id, &answers, OffsetDateTime::now_utc())
                .await?;
            ok(&subscriptions::view(store, templates, &me.user_id).await?)
        }
        _ => Err(Error::NotFound("route")),
    }
}
