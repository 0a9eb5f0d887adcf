//! The `auth` function: WeChat login and logout.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::login;
use renji_shared::http::{json_body, no_content, ok, route_key};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::{App, Error};

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::anyone("POST /v1/auth/wechat", Class::Login),
    Route::member("POST /v1/auth/logout", Class::Write),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    match route_key(&req) {
        Some("POST /v1/auth/wechat") => {
            let body = json_body(&req, app.config.max_body_bytes)?;
            ok(&login::login(app, body).await?)
        }
        Some("POST /v1/auth/logout") => {
            let claims = app.authenticate(&req).await?;
            login::logout(app, &claims).await?;
            no_content()
        }
        _ => Err(Error::NotFound("route")),
    }
}
