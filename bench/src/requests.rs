//! Store calls per route: each route's typical call through its handler, in-process, on the
//! embedded store and on DynamoDB Local (where the SDK's own requests are counted too).

use std::sync::Arc;

use renji_shared::store::dynamo::DynamoStore;
use renji_shared::store::embedded::EmbeddedStore;
use renji_shared::store::schema::TABLE;
use renji_shared::store::DynStore;
use renji_shared::App;
use serde_json::{json, Value};

use crate::counting::{is_read, is_read_request, CountingStore, RequestCounter};
use crate::events::{self, RouteEvent};
use crate::fixture::{self, Member, Sandboxes};

/// One call of a route: its name and how its event is made.
pub struct Call {
    pub route: RouteEvent,
    /// `typical`, or a named variant such as `first login`.
    pub variant: &'static str,
}

/// The calls measured: every route's typical one or its named variants
/// ([`fixture::variants`]: each payment channel, a notification and its repeat, …), the order
/// job's runs, and a member's first login. Other scheduled functions are measured in the
/// Lambda section only.
pub fn calls(routes: &[RouteEvent]) -> Vec<Call> {
    let mut calls = Vec::new();
    for r in routes {
        let named = fixture::variants(&r.route);
        let variants: &[&'static str] = if r.route == "POST /v1/auth/wechat" {
            &["returning member"]
        } else if !named.is_empty() {
            named
        } else if r.is_scheduled() {
            &[]
        } else {
            &[fixture::TYPICAL]
        };
        for variant in variants {
            calls.push(Call {
                route: r.clone(),
                variant,
            });
        }
    }
    if let Some(login) = routes.iter().find(|r| r.route == "POST /v1/auth/wechat") {
        calls.push(Call {
            route: login.clone(),
            variant: "first login",
        });
    }
    calls
}

/// The event of one call; first logins get a sandbox member never seen before.
pub async fn event_of(call: &Call, app: &App, member: &Member, n: usize) -> Result<Value, String> {
    if call.variant == "first login" {
        let code = format!("sandbox:bench-{}-{n}", ulid::Ulid::new());
        return Ok(events::with_login_code(&call.route.event, &code));
    }
    member.event_for(app, &call.route, call.variant).await
}

/// What one call asked of one store.
struct Counted {
    port: Vec<String>,
    requests: Option<Vec<String>>,
}

async fn count_on(
    inner: DynStore,
    counter: Option<RequestCounter>,
    calls: &[Call],
    routes: &[RouteEvent],
    sandboxes: &Sandboxes,
) -> Result<Vec<Counted>, String> {
    let counting = CountingStore::new(inner);
    let store: DynStore = counting.clone();
    let app = fixture::app(store, "renji", sandboxes)?;
    let member = fixture::login(&app, routes, sandboxes).await?;
    let mut out = Vec::new();
    for (n, call) in calls.iter().enumerate() {
        let event = event_of(call, &app, &member, n).await?;
        counting.take();
        if let Some(c) = &counter {
            c.take();
        }
        let (status, body) = fixture::invoke(&app, &call.route, &event).await?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "{} ({}) answered {status}: {body}",
                call.route.route, call.variant
            ));
        }
        out.push(Counted {
            port: counting.take(),
            requests: counter.as_ref().map(RequestCounter::take),
        });
    }
    Ok(out)
}

/// The kinds of item a call reads again after writing them itself.
fn read_back(port: &[String]) -> Vec<&str> {
    let mut written: Vec<&str> = Vec::new();
    let mut again = Vec::new();
    for op in port {
        let mut words = op.split_whitespace();
        let (Some(verb), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        match verb {
            "put" | "update" => written.push(kind),
            "get" if written.contains(&kind) => again.push(kind),
            _ => {}
        }
    }
    again
}

/// Whether a call is within the target: a GET reads one object; a state-changing call
/// makes one transaction or one conditional write plus the reads it needs (reading back what
/// it has just written is not needed: the write can return it).
fn within_target(method: &str, reads: usize, writes: usize, port: &[String]) -> bool {
    if method == "GET" {
        reads <= 1 && writes == 0
    } else {
        writes <= 1 && read_back(port).is_empty()
    }
}

/// Why a call is above its target, from what it did.
fn why(call: &Call, port: &[String], within: bool) -> String {
    if within {
        return String::new();
    }
    let mut reasons = Vec::new();
    if port.iter().any(|op| op == "get SESSION") {
        reasons.push("authenticated: the session record is read on every call so that logout and revocation take effect at once".to_owned());
    }
    for kind in read_back(port) {
        reasons.push(format!("reads the {kind} item back after updating it, to answer with it (the port's write returns nothing; UpdateItem with ReturnValues=ALL_NEW would save this read)"));
    }
    // The member lists read the member first, so an unknown member is a 404, not an empty list.
    let member_list = call.route.route.starts_with("GET /v1/users/{id}/");
    if member_list && port.iter().any(|op| op == "get PROFILE") {
        reasons.push("a member's list reads the member first, to answer 404 for an unknown member rather than an empty list".to_owned());
    }
    if call.route.route == "GET /v1/me/listings" && port.iter().any(|op| op.starts_with("get_many"))
    {
        reasons.push("the owner's entries hold ids and statuses only (a listing's counts move in other transactions), so the page reads its listings in one batch read".to_owned());
    }
    if call.route.route == "GET /v1/listings" && port.iter().any(|op| op.starts_with("get_many")) {
        reasons.push("a keyword search's term entries hold ids and folded titles only (a listing's bigrams, up to 39, each carrying its summary would make every edit rewrite them all), so the page reads its listings in one batch read".to_owned());
    }
    match call.route.route.as_str() {
        "GET /v1/orders" => reasons.push("an order's entries hold its id only (the order changes in every transition), so the page reads its orders in one batch read, and the other parties' public cards in another".to_owned()),
        "GET /v1/orders/{id}" => reasons.push("reads the other party's public card, which the answer shows".to_owned()),
        "PUT /v1/me/blocks/{user_id}" => reasons.push("reads the follow edges between the two in one batch read: the block's transaction ends them, conditioned on what was read, so a follow racing the block is never left".to_owned()),
        "GET /v1/listings/{id}/reviews" => reasons.push("reads the listing first, to answer 404 for an unknown or unpublished listing rather than an empty list; a review entry holds its id only (a reply or a hiding changes the review), so a page with reviews reads them, and their authors' public cards, in two batch reads".to_owned()),
        "GET /v1/me/blocks" => reasons.push("a block holds the member's id only (profiles change), so the page reads their public cards in one batch read".to_owned()),
        "POST /v1/orders" => reasons.push("reads the listing to price the order (checked unchanged in the transaction), the key's record of an Idempotency-Key, and the seller's public card for the answer".to_owned()),
        "POST /v1/orders/{id}/cancel" | "POST /v1/orders/{id}/decline" | "POST /v1/orders/{id}/refund/approve" if port.iter().filter(|op| op.starts_with("transact")).count() > 1 => reasons.push("a refund is two transactions by design: the order moves to refunding before the provider is asked (a timeout or crash leaves a refund the job follows up, never money returned without a record), then the provider's answer is applied on a fresh read of the order, conditioned on its version; the order is read once more for the answer, with the other party's public card".to_owned()),
        route if route.starts_with("POST /v1/orders/") => reasons.push("reads the order (the state machine decides on the state read; the write is conditioned on its version) and the other party's public card for the answer".to_owned()),
        _ => {}
    }
    if call.route.route.contains(" /admin/v1/") && call.route.route != "GET /admin/v1/me" {
        reasons.push("a staff call is audited: the request edge writes its record (three copies, one transaction) after the handler, whatever the outcome".to_owned());
    }
    match call.route.route.as_str() {
        "DELETE /v1/me" | "POST /admin/v1/members/{id}/deletion" => reasons.push("a deletion reads the member's order lists that can block it (each status that is not final and `completed`, as buyer and as seller: 16 queries) before and again after marking the member (an order landing in between is seen), then starts it in one transaction (the record, the openid claim, the audit record) and revokes the sessions (a query and a transaction per 100)".to_owned()),
        "GET /admin/v1/members/{id}" => reasons.push("the member look-up gathers the profile, the verification status, and the first page of the member's listings (their entries, then one batch read) and of their orders as buyer and as seller (each: entries, one batch read of the orders, one of the other parties' cards)".to_owned()),
        "POST /admin/v1/orders/{id}/decision" => reasons.push("a dispute's refund is the payments code's two transactions (see the refund routes), the order read once more for the answer".to_owned()),
        "POST /admin/v1/reviews/{id}/hide" => reasons.push("reads the review (the write is conditioned on its version) and, in one batch read, whether its listing and seller still exist, whose ratings the hiding moves".to_owned()),
        "GET /admin/v1/tickets" => reasons.push("the queue's entries hold ids and due times only (a ticket changes with every message), so the page reads its tickets in one batch read".to_owned()),
        "GET /admin/v1/tickets/{id}" => reasons.push("a ticket as staff see it: the ticket, its whole history (one query), the author's public card and, for an order or dispute ticket, the order".to_owned()),
        "POST /admin/v1/tickets/{id}/messages" | "POST /admin/v1/tickets/{id}/close" => reasons.push("reads the ticket (the write is conditioned on its version); a close answers the ticket as staff see it, read again with its history".to_owned()),
        "POST /admin/v1/members/{id}/suspend" | "POST /admin/v1/members/{id}/restore" => reasons.push("a suspension marks the member (one conditional write), revokes their sessions (a query and a transaction per 100) and takes down each public listing of theirs (their entries, then per listing a read and a version-conditioned transaction); a restore brings those listings back the same way before clearing the mark; both answer the member look-up".to_owned()),
        "POST /v1/wechat/events" => reasons.push("an image check's result is recorded once per trace id (a conditional update that answers whose upload it is), then the upload is read and, if it still awaits this check, moved in one transaction with the check marked applied: WeChat's retries and a result that comes after staff decided change nothing".to_owned()),
        "POST /admin/v1/listings/{id}/takedown" | "POST /admin/v1/listings/{id}/restore" => reasons.push("reads the listing (the write is conditioned on its version and moves exactly its index entries)".to_owned()),
        _ => {}
    }
    if call.route.route == "POST /v1/me/verification" {
        reasons.push("reads the member's previous verification to choose the write's condition (none, or a rejected one to replace); the submission is counted (with its checks) before the verifier is asked, each check costing money, and recorded with the verifier's answer in a second transaction".to_owned());
    }
    if reasons.is_empty() {
        "UNEXPLAINED".into()
    } else {
        reasons.join("; ")
    }
}

/// Counts every call on both stores; `dynamodb_endpoint` is DynamoDB Local.
pub async fn count(
    routes: &[RouteEvent],
    dynamodb_endpoint: &str,
    sandboxes: &Sandboxes,
    scratch: &std::path::Path,
) -> Result<Vec<Value>, String> {
    let calls = calls(routes);
    let embedded = EmbeddedStore::open(&scratch.join("count.redb"), TABLE)
        .map_err(|e| format!("embedded store: {e}"))?;
    let on_embedded = count_on(Arc::new(embedded), None, &calls, routes, sandboxes).await?;

    let client = renji_shared::app::dynamodb_client(Some(dynamodb_endpoint)).await;
    let table = format!(
        "bench-count-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    renji_local::tables::create_table(&client, &table).await?;
    let counter = RequestCounter::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(counter.clone())
            .build(),
    );
    let dynamo = DynamoStore::new(client, table, TABLE);
    let on_dynamo = count_on(Arc::new(dynamo), Some(counter), &calls, routes, sandboxes).await?;

    let mut rows = Vec::new();
    for ((call, e), d) in calls.iter().zip(on_embedded).zip(on_dynamo) {
        let requests = d.requests.unwrap_or_default();
        let reads = requests.iter().filter(|r| is_read_request(r)).count();
        let writes = requests.len() - reads;
        let port_reads = e.port.iter().filter(|op| is_read(op)).count();
        let within = within_target(call.route.method(), reads, writes, &d.port);
        rows.push(json!({
            "route": call.route.route,
            "call": call.variant,
            "embedded_port_calls": e.port,
            "dynamodb_port_calls": d.port,
            "dynamodb_requests": requests,
            "reads": reads,
            "writes": writes,
            "embedded_reads": port_reads,
            "embedded_writes": e.port.len() - port_reads,
            "within_target": within,
            "why": why(call, &d.port, within),
        }));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn targets_count_writes_and_reads_back() {
        let patch = ops(&["get SESSION", "update PROFILE", "get PROFILE"]);
        assert_eq!(read_back(&patch), vec!["PROFILE"]);
        assert!(!within_target("PATCH", 2, 1, &patch));
        let login = ops(&["get OPENID", "get PROFILE", "put SESSION"]);
        assert!(within_target("POST", 2, 1, &login));
        assert!(within_target("GET", 1, 0, &ops(&["get PROFILE"])));
        assert!(!within_target(
            "GET",
            2,
            0,
            &ops(&["get SESSION", "get PROFILE"])
        ));
    }
}
