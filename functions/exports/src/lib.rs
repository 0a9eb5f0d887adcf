//! The `exports` function: a copy of my data. `POST /v1/me/export` asks for one (202; the
//! `export-jobs` function builds it), `GET /v1/me/export` answers how it is going and, once
//! ready, a short-lived link (`renji_shared::domain::exports`). It may presign reads of the
//! export bucket's `exports/*` and nothing more there.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use renji_shared::domain::exports;
use renji_shared::http::{json_response, no_body, ok, only_params, route_key};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::member("POST /v1/me/export", Class::Write),
    Route::member("GET /v1/me/export", Class::Browse),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    match route_key(&req) {
        Some("POST /v1/me/export") => {
            let me = app.authenticate(&req).await?;
            // Nothing to say: no body (or `{}`), no query string; refused before anything is
            // counted or written.
            only_params(&req, &[])?;
            no_body(&req, app.config.max_body_bytes)?;
            let record = exports::request(app, &me.user_id, OffsetDateTime::now_utc()).await?;
            Ok(json_response(StatusCode::ACCEPTED, &record.view()))
        }
        Some("GET /v1/me/export") => {
            only_params(&req, &[])?;
            let me = app.authenticate(&req).await?;
            ok(&exports::status(app, &me.user_id, OffsetDateTime::now_utc()).await?)
        }
        _ => Err(Error::NotFound("route")),
    }
}
