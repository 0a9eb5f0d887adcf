//! The `im` function: the member's Tencent IM UserSig. The only function given the IM secret.

use lambda_http::{Body, Request, Response};
use renji_shared::http::{ok, only_params, route_key};
use renji_shared::ratelimit::{serve, Route};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested). Not limited: one session read and an HMAC, cheaper than a counter.
pub const ROUTES: &[Route] = &[Route::unlimited("GET /v1/im/usersig")];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    match route_key(&req) {
        Some("GET /v1/im/usersig") => {
            let me = app.authenticate(&req).await?;
            only_params(&req, &[])?;
            let signer = app.im().await?;
            let days = app
                .config
                .im
                .as_ref()
                .map_or(renji_shared::im::DEFAULT_USERSIG_DAYS, |im| im.usersig_days);
            ok(&signer.issue(&me.user_id, OffsetDateTime::now_utc(), days))
        }
        _ => Err(Error::NotFound("route")),
    }
}
