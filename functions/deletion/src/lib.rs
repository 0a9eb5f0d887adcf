//! The `deletion` function: `DELETE /v1/me`, a member deleting their account (privacy policy
//! §四(五)). It refuses (409 `deletion_blocked`, with what blocks it) while an order is not final
//! or a dispute is open; otherwise it starts the deletion — sessions revoked, the WeChat openid
//! released, the profile emptied, `account.delete` audited — and answers 202; the scheduled
//! `deletion-jobs` function completes it (`renji_shared::domain::deletion`).

use lambda_http::{Body, Request, Response};
use renji_shared::domain::deletion::{self, Requester};
use renji_shared::http::{no_body, only_params, route_key};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[Route::member("DELETE /v1/me", Class::Write)];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    match route_key(&req) {
        Some("DELETE /v1/me") => {
            let me = app.authenticate(&req).await?;
            only_params(&req, &[])?;
            no_body(&req, app.config.max_body_bytes)?;
            let now = OffsetDateTime::now_utc();
            deletion::answer(
                Box::pin(deletion::start(app, &me.user_id, Requester::Member, now)).await?,
            )
        }
        _ => Err(Error::NotFound("route")),
    }
}
