//! The `tickets` function: customer service, disputes, reports and privacy requests, member
//! side (`renji_shared::domain::tickets`; staff answer through the `admin` function).

use lambda_http::{Body, Request, Response};
use renji_shared::domain::tickets::{create, list, messages};
use renji_shared::http::{created, id_param, json_body, ok, only_params, route_key, PageRequest};
use renji_shared::ids::TicketId;
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::member("POST /v1/tickets", Class::Write),
    Route::unlimited("GET /v1/tickets"),
    Route::unlimited("GET /v1/tickets/{id}"),
    Route::member("POST /v1/tickets/{id}/messages", Class::Write),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let me = app.authenticate(&req).await?;
    let store = &app.store;
    let limit = app.config.max_body_bytes;
    let now = OffsetDateTime::now_utc();
    // A path id not of our ticket id shape names no ticket: 404, as a stranger's would.
    let ticket = || id_param(&req, "id", TicketId::parse, "ticket");
    match route_key(&req) {
        Some("POST /v1/tickets") => {
            let body: create::NewTicket = json_body(&req, limit)?;
            created(
                &Box::pin(create::create(
                    store,
                    app.wechat_api()?,
                    &app.config,
                    &me.user_id,
                    &body,
                    now,
                ))
                .await?,
            )
        }
        Some("GET /v1/tickets") => {
            let keys = app.tokens().await?;
            let page = PageRequest::only(&req, keys.cursors())?;
            let (items, next) =
                list::list(store, &me.user_id, page.limit, page.cursor.as_ref()).await?;
            page.list(items, next)
        }
        Some("GET /v1/tickets/{id}") => {
            only_params(&req, &[])?;
            ok(&list::read(store, &ticket()?, &me.user_id).await?)
        }
        Some("POST /v1/tickets/{id}/messages") => {
            let id = ticket()?;
            let body: messages::NewMessage = json_body(&req, limit)?;
            created(
                &Box::pin(messages::add(
                    store,
                    app.wechat_api()?,
                    &app.config.media.base_url,
                    &id,
                    &me.user_id,
                    &body,
                    now,
                ))
                .await?,
            )
        }
        _ => Err(Error::NotFound("route")),
    }
}
