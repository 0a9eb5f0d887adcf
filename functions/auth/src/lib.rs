//! The `auth` function: WeChat login and logout, and the member's sessions (the devices signed
//! in: listed, signed out one by one or everywhere else).

use lambda_http::{Body, Request, Response};
use renji_shared::domain::login;
use renji_shared::http::{
    json_body, no_body, no_content, ok, only_params, path_param, route_key, ListResponse,
};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::session::{self, Device};
use renji_shared::{App, Error};

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::anyone("POST /v1/auth/wechat", Class::Login),
    Route::member("POST /v1/auth/logout", Class::Write),
    Route::member("GET /v1/me/sessions", Class::Browse),
    Route::member("DELETE /v1/me/sessions/{id}", Class::Write),
    Route::member("DELETE /v1/me/sessions", Class::Write),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let keep = app.config.audit_keep;
    match route_key(&req) {
        Some("POST /v1/auth/wechat") => {
            let body = json_body(&req, app.config.max_body_bytes)?;
            ok(&login::login(app, body, &Device::of(&req)).await?)
        }
        Some("POST /v1/auth/logout") => {
            let claims = app.authenticate(&req).await?;
            login::logout(app, &claims).await?;
            no_content()
        }
        Some("GET /v1/me/sessions") => {
            let claims = app.authenticate(&req).await?;
            only_params(&req, &[])?;
            // Every session at once, newest first (a member has a handful): the list shape
            // with no next page.
            ok(&ListResponse {
                items: session::list(&app.store, &claims).await?,
                next_cursor: None,
            })
        }
        Some("DELETE /v1/me/sessions/{id}") => {
            let claims = app.authenticate(&req).await?;
            no_body(&req, app.config.max_body_bytes)?;
            let id = path_param(&req, "id")?;
            session::revoke_one(&app.store, &claims, &id, keep).await?;
            no_content()
        }
        Some("DELETE /v1/me/sessions") => {
            let claims = app.authenticate(&req).await?;
            no_body(&req, app.config.max_body_bytes)?;
            session::revoke_others(&app.store, &claims, keep).await?;
            no_content()
        }
        _ => Err(Error::NotFound("route")),
    }
}
