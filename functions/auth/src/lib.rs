//! The `auth` function: WeChat login and logout.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::login;
use renji_shared::http::{json_body, no_content, ok, respond, route_key};
use renji_shared::{App, Error};

/// The routes this function serves; `template.yaml` must route exactly these here (tested).
pub const ROUTES: &[&str] = &["POST /v1/auth/wechat", "POST /v1/auth/logout"];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(req, |req| route(app, req)).await
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
