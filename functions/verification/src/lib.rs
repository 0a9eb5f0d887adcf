//! The `verification` function: real-name / enterprise verification, the gate for publishing.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use renji_shared::domain::verification::{self, Status, Submission};
use renji_shared::http::{json_body, json_response, ok, only_params, route_key};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::{App, Error};

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::member("POST /v1/me/verification", Class::Verify),
    Route::unlimited("GET /v1/me/verification"),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    match route_key(&req) {
        Some("POST /v1/me/verification") => {
            let me = app.authenticate(&req).await?;
            let submission: Submission = json_body(&req, app.config.max_body_bytes)?;
            // Malformed names and numbers are refused before anything is counted or written.
            let subject = submission.validate()?;
            let record = verification::submit(app, &me.user_id, subject).await?;
            // 202 while the verifier has not decided; the verification job asks it again.
            let status = match record.status {
                Status::Pending => StatusCode::ACCEPTED,
                Status::Verified | Status::Rejected => StatusCode::CREATED,
            };
            Ok(json_response(status, &record.view()))
        }
        Some("GET /v1/me/verification") => {
            only_params(&req, &[])?;
            let me = app.authenticate(&req).await?;
            ok(&verification::status(app, &me.user_id).await?.view())
        }
        _ => Err(Error::NotFound("route")),
    }
}
