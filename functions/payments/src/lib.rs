//! The `payments` function: starts a payment and takes every action that moves money at a
//! provider (cancel, decline, refund approve), plus the refund decline beside them; and the
//! member's payout accounts, whose receivers are registered at the providers. The only
//! request-path function given the merchant private keys.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use renji_shared::domain::consents;
use renji_shared::domain::idempotency::{self, Begin, StoredResponse};
use renji_shared::domain::members::Member;
use renji_shared::domain::orders::act::{self, ReasonBody};
use renji_shared::domain::orders::payments;
use renji_shared::domain::orders::{self, view, Action, Change, Order, Role};
use renji_shared::domain::payouts;
use renji_shared::http::route_key;
use renji_shared::http::{
    body_bytes, id_param, idempotency_key, json_body, json_response, no_body, no_content, ok,
    only_params, path_param,
};
use renji_shared::ids::OrderId;
use renji_shared::payments::{Channel, Provider};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::store::{keys, Record, StoreError};
use renji_shared::{App, Error};
use serde::Deserialize;
use time::OffsetDateTime;

/// The routes this function serves and their rate limits; `template.yaml` must route exactly
/// these here (tested).
pub const ROUTES: &[Route] = &[
    Route::member("POST /v1/orders/{id}/payments", Class::Write),
    Route::member("POST /v1/orders/{id}/cancel", Class::Write),
    Route::member("POST /v1/orders/{id}/decline", Class::Write),
    Route::member("POST /v1/orders/{id}/refund/approve", Class::Write),
    Route::member("POST /v1/orders/{id}/refund/decline", Class::Write),
    Route::member("PUT /v1/me/payout-accounts/{channel}", Class::Write),
    Route::unlimited("GET /v1/me/payout-accounts"),
    Route::member("DELETE /v1/me/payout-accounts/{channel}", Class::Write),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayBody {
    channel: Channel,
}

/// The reason of a decline (1 to 200 characters, trimmed).
fn reason(req: &Request, app: &App) -> Result<String, Error> {
    json_body::<ReasonBody>(req, app.config.max_body_bytes)?.reason()
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let route = route_key(&req).unwrap_or_default();
    if route.contains("/payout-accounts") {
        return payout_accounts(app, &req, route).await;
    }
    // Paying is buying: a minor needs a guardian's consent (§七) — also for an order created
    // before their age was known. The member record comes in the session's read (one request).
    let (me, member) = match route {
        "POST /v1/orders/{id}/payments" => {
            let (me, member) = app
                .authenticate_with(&req, |me| keys::member(&me.user_id))
                .await?;
            (me, member)
        }
        _ => (app.authenticate(&req).await?, None),
    };
    let id = id_param(&req, "id", OrderId::parse, "order")?;
    let now = OffsetDateTime::now_utc();
    let (order, role) = orders::for_party(&app.store, &id, &me.user_id).await?;
    let order = match route {
        "POST /v1/orders/{id}/payments" => {
            let member = member.ok_or(Error::Unauthorized("member no longer exists"))?;
            if role == Role::Buyer {
                consents::require_guardian(&Member::from_item(member)?)?;
            }
            return pay(app, &req, order, role, now).await;
        }
        "POST /v1/orders/{id}/cancel" => {
            no_body(&req, app.config.max_body_bytes)?;
            refuse_unless(&order, role, Action::Cancel)?;
            payments::cancel(app, &order, now).await?
        }
        "POST /v1/orders/{id}/decline" => {
            let why = reason(&req, app)?;
            refuse_unless(&order, role, Action::Decline)?;
            let change = Change::new(Action::Decline, role.actor(), now).reason(Some(why));
            payments::refund_now(app, &order, change).await?
        }
        "POST /v1/orders/{id}/refund/approve" => {
            no_body(&req, app.config.max_body_bytes)?;
            let change = Change::new(Action::ApproveRefund, role.actor(), now);
            payments::refund_now(app, &order, change).await?
        }
        "POST /v1/orders/{id}/refund/decline" => {
            let why = reason(&req, app)?;
            act::apply(app, &order, role, Action::DeclineRefund, Some(why), now).await?
        }
        _ => return Err(Error::NotFound("route")),
    };
    // The order as the caller sees it, as the `orders` function's actions answer it.
    ok(&view::view(&app.store, &order, role).await?)
}

/// `PUT|GET|DELETE /v1/me/payout-accounts[/{channel}]`: the member's own accounts only.
async fn payout_accounts(app: &App, req: &Request, route: &str) -> Result<Response<Body>, Error> {
    let me = app.authenticate(req).await?;
    if route == "GET /v1/me/payout-accounts" {
        only_params(req, &[])?;
        return ok(&payouts::list(&app.store, &me.user_id).await?);
    }
    // An unknown channel is a resource that does not exist, as an unknown id is.
    let channel = payouts::channel_param(&path_param(req, "channel")?)
        .ok_or(Error::NotFound("payout channel"))?;
    match route {
        "PUT /v1/me/payout-accounts/{channel}" => {
            let limit = app.config.max_body_bytes;
            let wanted = match channel {
                Provider::Wechat => {
                    match body_bytes(req, limit)?.iter().all(u8::is_ascii_whitespace) {
                        // No body: the member's own WeChat account.
                        true => payouts::WechatBody::default(),
                        false => json_body::<payouts::WechatBody>(req, limit)?,
                    }
                    .validate()?
                }
                Provider::Alipay => json_body::<payouts::AlipayBody>(req, limit)?.validate()?,
            };
            let account = payouts::bind(app, &me.user_id, channel, wanted).await?;
            ok(&account.view())
        }
        "DELETE /v1/me/payout-accounts/{channel}" => {
            no_body(req, app.config.max_body_bytes)?;
            payouts::unbind(app, &me.user_id, channel).await?;
            no_content()
        }
        _ => Err(Error::NotFound("route")),
    }
}

/// The state machine's refusal when `role` may not take `action` here, before any provider is
/// called (cancel and decline call providers first).
fn refuse_unless(order: &Order, role: Role, action: Action) -> Result<(), Error> {
    orders::machine::rule(order.status, action, role.actor())
        .map(|_| ())
        .map_err(|refusal| refusal.into_error(order.status, action))
}

/// `POST /v1/orders/{id}/payments {channel}`, with an optional `Idempotency-Key`.
async fn pay(
    app: &App,
    req: &Request,
    order: Order,
    role: Role,
    now: OffsetDateTime,
) -> Result<Response<Body>, Error> {
    let body: PayBody = json_body(req, app.config.max_body_bytes)?;
    if role != Role::Buyer {
        return Err(Error::Forbidden("only the buyer may pay".into()));
    }
    let key = idempotency_key(req)?;
    let begun = match &key {
        Some(key) => {
            let path = format!("POST /v1/orders/{}/payments", order.id);
            let bytes = body_bytes(req, app.config.max_body_bytes)?;
            Some(idempotency::begin(&app.store, &order.buyer_id, &path, key, bytes).await?)
        }
        None => None,
    };
    let guard = match begun {
        Some(Begin::Replay(stored)) => {
            return Ok(json_response(
                StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
                &stored.body,
            ))
        }
        Some(Begin::Fresh(guard)) => Some(guard),
        None => None,
    };
    let (answer, writes) = payments::start(app, &order, body.channel, now).await?;
    let stored = StoredResponse {
        status: 200,
        body: answer,
    };
    let stored = match guard {
        Some(guard) => {
            guard
                .commit(&app.store, writes, stored, started_twice)
                .await?
        }
        None => {
            app.store.transact(writes).await.map_err(started_twice)?;
            stored
        }
    };
    Ok(json_response(StatusCode::OK, &stored.body))
}

/// Two starts of one payment at once: the payment record's condition lets one through; the
/// other is told to ask again (it then gets the same prepay id or order string).
fn started_twice(e: StoreError) -> Error {
    match e {
        StoreError::ConditionFailed { .. } => Error::Conflict {
            code: "order_changed",
            message: "the payment was started twice at once; ask again".into(),
        },
        other => other.into(),
    }
}
