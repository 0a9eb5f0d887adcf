//! The `orders` function: create an order, list and read one's orders, and the party actions
//! that move no money at a provider (accept, confirm, ask a refund), and a seller's earnings. It
//! holds no provider key: cancel, decline and the answers to a refund request are the `payments`
//! function's. The accept of a WeChat-paid order sends WeChat its shipping record
//! (`domain::orders::shipping`, with the shared access token).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use renji_shared::domain::consents;
use renji_shared::domain::members::Member;
use renji_shared::domain::orders::act::{self, ReasonBody};
use renji_shared::domain::orders::{create, list, view, Action, Order, Role};
use renji_shared::domain::settlement::earnings;
use renji_shared::http::{
    body_bytes, created, id_param, idempotency_key, json_body, json_response, no_body, ok,
    only_params, query_param, route_key, PageRequest,
};
use renji_shared::ids::{OrderId, UserId};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::store::{keys, Record};
use renji_shared::{App, Error};
use time::OffsetDateTime;

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::member("POST /v1/orders", Class::Write),
    Route::unlimited("GET /v1/orders"),
    Route::unlimited("GET /v1/orders/{id}"),
    Route::member("POST /v1/orders/{id}/accept", Class::Write),
    Route::member("POST /v1/orders/{id}/confirm", Class::Write),
    Route::member("POST /v1/orders/{id}/refund", Class::Write),
    // A seller's earnings: the splits of their paid orders (`domain::settlement::earnings`).
    Route::unlimited("GET /v1/me/earnings"),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let me = match route_key(&req) {
        // Ordering is buying: a minor needs a guardian's consent (§七). The member record comes
        // in the session's read (one request), so the gate adds none.
        Some("POST /v1/orders") => {
            let (me, member) = app
                .authenticate_with(&req, |me| keys::member(&me.user_id))
                .await?;
            let member =
                Member::from_item(member.ok_or(Error::Unauthorized("member no longer exists"))?)?;
            consents::require_guardian(&member)?;
            me
        }
        _ => app.authenticate(&req).await?,
    };
    let store = &app.store;
    let limit = app.config.max_body_bytes;
    let now = OffsetDateTime::now_utc();
    match route_key(&req) {
        Some("POST /v1/orders") => {
            let body: create::NewOrder = json_body(&req, limit)?;
            let key = idempotency_key(&req)?;
            let raw = body_bytes(&req, limit)?;
            let idempotency = key.as_ref().map(|k| (k, raw));
            let answer =
                create::create(store, &app.config, &me.user_id, &body, idempotency, now).await?;
            match answer.status {
                201 => created(&answer.body),
                status => Ok(json_response(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                    &answer.body,
                )),
            }
        }
        Some("GET /v1/orders") => {
            only_params(&req, &["role", "status", "limit", "cursor"])?;
            let role = list::role(query_param(&req, "role").as_deref())?;
            let status = list::status(query_param(&req, "status").as_deref())?;
            let keys = app.tokens().await?;
            let page = PageRequest::from_request(&req, keys.cursors())?;
            let (items, next) = list::list(
                store,
                &me.user_id,
                role,
                status,
                page.limit,
                page.cursor.as_ref(),
            )
            .await?;
            page.list(items, next)
        }
        Some("GET /v1/me/earnings") => {
            only_params(&req, &["limit", "cursor"])?;
            let keys = app.tokens().await?;
            let page = PageRequest::from_request(&req, keys.cursors())?;
            let (totals, items, next) =
                earnings::earnings(store, &me.user_id, page.limit, page.cursor.as_ref()).await?;
            page.list_with(serde_json::json!({ "totals": totals }), items, next)
        }
        Some("GET /v1/orders/{id}") => {
            only_params(&req, &[])?;
            let id = order_id(&req)?;
            ok(&list::read(store, &id, &me.user_id).await?)
        }
        Some("POST /v1/orders/{id}/accept") => {
            let id = order_id(&req)?;
            no_body(&req, limit)?;
            answer(app, &me.user_id, id, Action::Accept, None, now).await
        }
        Some("POST /v1/orders/{id}/confirm") => {
            let id = order_id(&req)?;
            no_body(&req, limit)?;
            answer(app, &me.user_id, id, Action::Confirm, None, now).await
        }
        Some("POST /v1/orders/{id}/refund") => {
            let id = order_id(&req)?;
            let reason = json_body::<ReasonBody>(&req, limit)?.reason()?;
            answer(
                app,
                &me.user_id,
                id,
                Action::RequestRefund,
                Some(reason),
                now,
            )
            .await
        }
        _ => Err(Error::NotFound("route")),
    }
}

/// A path id that is not of our order id shape names no order: 404, as a stranger's would.
fn order_id(req: &Request) -> Result<OrderId, Error> {
    id_param(req, "id", OrderId::parse, "order")
}

/// Runs the action and answers 200 with the order as the caller sees it.
async fn answer(
    app: &App,
    member: &UserId,
    id: OrderId,
    action: Action,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<Response<Body>, Error> {
    let order: Order = act::act(app, &id, member, action, reason, now).await?;
    let role = order.role_of(member).unwrap_or(Role::Buyer);
    ok(&view::view(&app.store, &order, role).await?)
}
