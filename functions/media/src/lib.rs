//! The `media` function: upload forms. `POST /v1/uploads` answers a presigned S3 POST for one
//! file (exact key, content type and size range, a short expiry) and the URL the file will have,
//! and records the upload `issued` for the media job (`renji_shared::domain::media::uploads`).
//! It may sign uploads to the media bucket's `u/*` and nothing more there.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::media::uploads::{self, UploadRequest};
use renji_shared::http::{created, json_body, only_params, route_key};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[Route::member("POST /v1/uploads", Class::Write)];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    match route_key(&req) {
        Some("POST /v1/uploads") => {
            let me = app.authenticate(&req).await?;
            only_params(&req, &[])?;
            let request: UploadRequest = json_body(&req, app.config.max_body_bytes)?;
            let form =
                uploads::issue(app, &me.user_id, &request, OffsetDateTime::now_utc()).await?;
            created(&form)
        }
        _ => Err(Error::NotFound("route")),
    }
}
