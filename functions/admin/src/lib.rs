//! The `admin` function: the staff console's API under `/admin/v1` — WeCom sign-in, the caller's
//! session, the tickets queue (read, answer, close), member look-up, suspension and restore,
//! listing take-down and restore, hiding a review, dispute decisions, refunds after the split,
//! the audit trail, the orders near or past their split deadline unsplit.
//! Every route but sign-in is declared `staff` with the roles it allows: the edge
//! (`staff::guard`) authenticates the staff session, checks the role and audits the call before
//! and after the handler here, which only parses, calls the domain and answers.

use lambda_http::{Body, Request, Response};
use renji_shared::domain::audit::{self, Filter};
use renji_shared::domain::deletion;
use renji_shared::domain::listings;
use renji_shared::domain::lookup;
use renji_shared::domain::orders::act::ReasonBody;
use renji_shared::domain::orders::decide::{self, DecisionBody};
use renji_shared::domain::reviews;
use renji_shared::domain::settlement::refunds;
use renji_shared::domain::settlement::watch;
use renji_shared::domain::suspension;
use renji_shared::domain::tickets::messages::NewMessage;
use renji_shared::domain::tickets::staff as tickets;
use renji_shared::http::{
    created, id_param, json_body, no_body, no_content, ok, only_params, query_param, route_key,
    PageRequest,
};
use renji_shared::ids::{ListingId, OrderId, ReviewId, TicketId, UserId};
use renji_shared::ratelimit::{serve, Class, Route};
use renji_shared::staff::{self, StaffRole};
use renji_shared::{App, Error};
use serde::Deserialize;
use time::OffsetDateTime;

use StaffRole::{Admin, Moderator, Support};

mod media;
mod moderation_texts;

/// The routes this function serves, their limits and the staff roles each allows (the README's
/// roles table); `template.yaml` must route exactly these here (tested).
pub const ROUTES: &[Route] = &[
    // Each call costs a WeCom exchange: limited per source IP, as the members' login.
    Route::anyone("POST /admin/v1/auth/wecom", Class::Login),
    Route::staff("POST /admin/v1/auth/logout", &StaffRole::ALL),
    Route::own_staff_session("GET /admin/v1/me"),
    // Every role reads tickets (moderators work the reports); support and admin answer and
    // close them.
    Route::staff("GET /admin/v1/tickets", &[Support, Moderator, Admin]),
    Route::staff("GET /admin/v1/tickets/{id}", &[Support, Moderator, Admin]),
    Route::staff("POST /admin/v1/tickets/{id}/messages", &[Support, Admin]),
    Route::staff("POST /admin/v1/tickets/{id}/close", &[Support, Admin]),
    Route::staff("GET /admin/v1/members/{id}", &[Support, Moderator, Admin]),
    // A member's deletion request that came through customer service (§四(五)2).
    Route::staff("POST /admin/v1/members/{id}/deletion", &[Support, Admin]),
    // Suspension (`domain::suspension`): the roles that take listings down.
    Route::staff("POST /admin/v1/members/{id}/suspend", &[Moderator, Admin]),
    Route::staff("POST /admin/v1/members/{id}/restore", &[Moderator, Admin]),
    Route::staff("POST /admin/v1/listings/{id}/takedown", &[Moderator, Admin]),
    Route::staff("POST /admin/v1/listings/{id}/restore", &[Moderator, Admin]),
    Route::staff("POST /admin/v1/reviews/{id}/hide", &[Moderator, Admin]),
    Route::staff("POST /admin/v1/orders/{id}/decision", &[Support, Admin]),
    // A refund after the seller was paid costs Renji (a return, or a receivable): admins only.
    Route::staff("POST /admin/v1/orders/{id}/refund", &[Admin]),
    Route::staff("GET /admin/v1/audit", &[Admin]),
    // Orders near or past their split deadline unsplit (`domain::settlement::watch`).
    Route::staff("GET /admin/v1/settlements", &[Support, Admin]),
    // The held-text queue (`moderation_texts`).
    Route::staff("GET /admin/v1/moderation/texts", &[Moderator, Admin]),
    Route::staff(
        "POST /admin/v1/moderation/texts/{id}/decision",
        &[Moderator, Admin],
    ),
    // The media queue (`media.rs`): videos and images whose check never came back.
    Route::staff(media::QUEUE, &[Moderator, Admin]),
    Route::staff(media::DECISION, &[Moderator, Admin]),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    resolution: String,
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let limit = app.config.max_body_bytes;
    let now = OffsetDateTime::now_utc();
    let key = route_key(&req).unwrap_or_default().to_owned();
    if media::serves(&key) {
        return media::route(app, req, &key).await;
    }
    match key.as_str() {
        "POST /admin/v1/auth/wecom" => {
            let body: SignInBody = json_body(&req, limit)?;
            if body.code.trim().is_empty() {
                return Err(Error::invalid("code", "is required"));
            }
            ok(&staff::sign_in(app, body.code.trim(), now).await?.view())
        }
        "POST /admin/v1/auth/logout" => {
            no_body(&req, limit)?;
            staff::sign_out(app, staff::caller(&req)?).await?;
            no_content()
        }
        "GET /admin/v1/me" => {
            only_params(&req, &[])?;
            ok(&staff::me_view(staff::caller(&req)?))
        }
        "GET /admin/v1/tickets" => {
            only_params(&req, &["kind", "status", "due_before", "limit", "cursor"])?;
            let kind = tickets::parse_kind(query_param(&req, "kind").as_deref())?;
            let status = tickets::parse_status(query_param(&req, "status").as_deref())?;
            let due_before = tickets::parse_due_before(query_param(&req, "due_before").as_deref())?;
            let keys = app.tokens().await?;
            let page = PageRequest::from_request(&req, keys.cursors())?;
            let (items, next) = tickets::queue(
                &app.store,
                status,
                kind,
                due_before,
                page.limit,
                page.cursor.as_ref(),
                now,
            )
            .await?;
            page.list(items, next)
        }
        "GET /admin/v1/tickets/{id}" => {
            only_params(&req, &[])?;
            let id = id_param(&req, "id", TicketId::parse, "ticket")?;
            ok(&tickets::staff_view(&app.store, &id, now).await?)
        }
        "POST /admin/v1/tickets/{id}/messages" => {
            let id = id_param(&req, "id", TicketId::parse, "ticket")?;
            let body: NewMessage = json_body(&req, limit)?;
            let staff = staff::caller(&req)?;
            let message =
                tickets::staff_message(&app.store, &id, &staff.id, &body.text, &body.images, now)
                    .await?;
            created(&message)
        }
        "POST /admin/v1/tickets/{id}/close" => {
            let id = id_param(&req, "id", TicketId::parse, "ticket")?;
            let body: CloseBody = json_body(&req, limit)?;
            let staff = staff::caller(&req)?;
            ok(&tickets::close(&app.store, &id, &staff.id, &body.resolution, now).await?)
        }
        "GET /admin/v1/members/{id}" => {
            only_params(&req, &[])?;
            let id = id_param(&req, "id", UserId::parse, "member")?;
            ok(&lookup::member(&app.store, &id).await?)
        }
        "POST /admin/v1/members/{id}/deletion" => {
            let id = id_param(&req, "id", UserId::parse, "member")?;
            let body = json_body::<deletion::StaffRequest>(&req, limit)?;
            let staff = staff::caller(&req)?;
            let started = Box::pin(deletion::staff_request(
                app,
                &id,
                staff.id.clone(),
                staff.role,
                body,
                now,
            ))
            .await?;
            deletion::answer(started)
        }
        "POST /admin/v1/members/{id}/suspend" => {
            let id = id_param(&req, "id", UserId::parse, "member")?;
            let reason = json_body::<ReasonBody>(&req, limit)?.reason()?;
            let staff = staff::caller(&req)?;
            ok(&suspension::suspend(&app.store, &id, &staff.id, &reason, now).await?)
        }
        "POST /admin/v1/members/{id}/restore" => {
            let id = id_param(&req, "id", UserId::parse, "member")?;
            json_body::<ReasonBody>(&req, limit)?.reason()?;
            ok(&suspension::restore(&app.store, &id, now).await?)
        }
        "POST /admin/v1/listings/{id}/takedown" => {
            let id = id_param(&req, "id", ListingId::parse, "listing")?;
            let reason = json_body::<ReasonBody>(&req, limit)?.reason()?;
            ok(&listings::take_down(&app.store, &id, &reason)
                .await?
                .staff_view())
        }
        "POST /admin/v1/listings/{id}/restore" => {
            let id = id_param(&req, "id", ListingId::parse, "listing")?;
            json_body::<ReasonBody>(&req, limit)?.reason()?;
            ok(&listings::restore(&app.store, &id).await?.staff_view())
        }
        "POST /admin/v1/reviews/{id}/hide" => {
            let id = id_param(&req, "id", ReviewId::parse, "review")?;
            let reason = json_body::<ReasonBody>(&req, limit)?.reason;
            ok(&reviews::hide(&app.store, &id, &reason, now)
                .await?
                .staff_view())
        }
        "POST /admin/v1/orders/{id}/decision" => {
            let id = id_param(&req, "id", OrderId::parse, "order")?;
            let decision = json_body::<DecisionBody>(&req, limit)?.check()?;
            let staff = staff::caller(&req)?;
            ok(&decide::decide(app, &id, &staff.id, decision, now)
                .await?
                .view())
        }
        "POST /admin/v1/orders/{id}/refund" => {
            let id = id_param(&req, "id", OrderId::parse, "order")?;
            let refund = json_body::<refunds::StaffRefundBody>(&req, limit)?.check()?;
            let order = Box::pin(refunds::staff_refund(app, &id, refund, now)).await?;
            ok(&refunds::staff_view(&order))
        }
        "GET /admin/v1/audit" => {
            only_params(&req, &["actor", "target", "limit", "cursor"])?;
            let filter = Filter::parse(
                query_param(&req, "actor").as_deref(),
                query_param(&req, "target").as_deref(),
            )?;
            let keys = app.tokens().await?;
            let page = PageRequest::from_request(&req, keys.cursors())?;
            let (items, next) =
                audit::list(&app.store, &filter, page.limit, page.cursor.as_ref()).await?;
            page.list(items, next)
        }
        "GET /admin/v1/settlements" => {
            only_params(&req, &["state", "limit", "cursor"])?;
            let expired = match query_param(&req, "state").as_deref() {
                Some("alarm") => false,
                Some("expired") => true,
                _ => return Err(Error::invalid("state", "must be alarm or expired")),
            };
            let keys = app.tokens().await?;
            let page = PageRequest::from_request(&req, keys.cursors())?;
            // The deadlines are the jobs' business: read at their clock (on the local server the
            // moved one), not the request's.
            let (items, next) =
                watch::alarms(app, expired, app.now(), page.limit, page.cursor.as_ref()).await?;
            page.list(items, next)
        }
        // Boxed: this function's route future is deep already (a decision's refund).
        key if moderation_texts::serves(key) => {
            Box::pin(moderation_texts::route(app, &req, key, now)).await
        }
        _ => Err(Error::NotFound("route")),
    }
}
