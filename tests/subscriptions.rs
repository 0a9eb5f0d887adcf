//! Subscribe messages (issue 11): grants recorded from the client and from WeChat's push, each
//! acceptance counted once; the outbox written with the order or ticket change; the job sends
//! one message per grant, once, however many runs race; failures are recorded and never fail
//! the change. WeChat is a fake here (`App::set_wechat_api`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use renji_shared::domain::members::Member as Stored;
use renji_shared::domain::subscriptions::{self, Budget, NoteStatus};
use renji_shared::ids::{StaffId, TicketId, UserId};
use renji_shared::store::{keys, Records};
use renji_shared::wechat::api::{
    ImageCheck, PlatformError, SubscribeMessage, TextCheck, TextVerdict, WechatApi,
};
use renji_shared::App;
use renji_tests::{on_both_stores, Backend, Market, Member, Reply};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// WeChat as the tests want it: records each message; answers with `fail` when set.
#[derive(Default)]
struct Fake {
    sent: Mutex<Vec<SubscribeMessage>>,
    fail: Mutex<Option<PlatformError>>,
}

#[async_trait]
impl WechatApi for Fake {
    async fn check_text(&self, _: &TextCheck<'_>) -> Result<TextVerdict, PlatformError> {
        Err(PlatformError::Unavailable("not in these tests".into()))
    }
    async fn check_image(&self, _: &ImageCheck<'_>) -> Result<String, PlatformError> {
        Err(PlatformError::Unavailable("not in these tests".into()))
    }
    async fn send_subscribe_message(
        &self,
        message: &SubscribeMessage,
    ) -> Result<(), PlatformError> {
        // Slow enough for racing runs to overlap.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return Err(e);
        }
        self.sent.lock().unwrap().push(message.clone());
        Ok(())
    }
}

impl Fake {
    fn sent(&self) -> Vec<SubscribeMessage> {
        self.sent.lock().unwrap().clone()
    }
}

/// The local server's store and configuration with the fake as WeChat.
fn app_with(m: &Market, fake: &Arc<Fake>) -> App {
    let server = m.server.app();
    let mut app = App::new(server.config.clone(), server.store.clone()).unwrap();
    app.set_wechat_api(fake.clone());
    app
}

fn uid(m: &Member) -> UserId {
    UserId::parse(&m.id).unwrap()
}

async fn openid(m: &Market, who: &Member) -> String {
    let member: Stored = m
        .server
        .app()
        .store
        .get_record(&keys::member(&uid(who)))
        .await
        .unwrap()
        .unwrap();
    member.openid
}

async fn hint(m: &Market, who: &Member, body: Value) -> Reply {
    m.server
        .api
        .call("POST", "/v1/me/subscriptions", Some(&who.token), Some(body))
        .await
}

/// What remains of `who`'s grants of `kind`.
async fn remaining(m: &Market, who: &Member, kind: &str) -> i64 {
    let reply = m
        .server
        .api
        .call("GET", "/v1/me/subscriptions", Some(&who.token), None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == json!(kind))
        .unwrap_or_else(|| panic!("{kind} listed: {reply:?}"))["remaining"]
        .as_i64()
        .unwrap()
}

async fn run(app: &App) -> subscriptions::Report {
    subscriptions::run(app, OffsetDateTime::now_utc(), Budget::default())
        .await
        .unwrap()
}

async fn notes(m: &Market, who: &Member) -> Vec<subscriptions::Notification> {
    subscriptions::notifications(&m.server.app().store, &uid(who))
        .await
        .unwrap()
}

const PAID: &str = "sandbox-order-paid";
const REFUNDED: &str = "sandbox-order-refunded";
const DECLINED: &str = "sandbox-order-declined";

async fn grants_are_recorded_counted_and_bad_input_refused(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 0);
    let reply = hint(
        &m,
        &m.seller,
        json!({"results": {PAID: "accept", REFUNDED: "reject"}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let listed = &reply.body["subscriptions"];
    assert_eq!(listed.as_array().unwrap().len(), 6, "{listed}");
    assert_eq!(listed[0]["template_id"], json!(PAID));
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 1);
    assert_eq!(remaining(&m, &m.seller, "order_refunded").await, 0);
    // Acceptances accumulate.
    assert_eq!(
        hint(&m, &m.seller, json!({"results": {PAID: "accept"}}))
            .await
            .status,
        200
    );
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 2);
    // Bad input: 4xx naming the field, nothing written.
    let bad = [
        (json!({}), 422, "results"),
        (json!({"results": {}}), 422, "results"),
        (
            json!({"results": {PAID: "accept"}, "extra": 1}),
            422,
            "extra",
        ),
        (
            json!({"results": {"not-ours": "accept"}}),
            422,
            "results.not-ours",
        ),
        (
            json!({"results": {PAID: "maybe"}}),
            422,
            "results.sandbox-order-paid",
        ),
        (
            json!({"results": {PAID: 1}}),
            422,
            "results.sandbox-order-paid",
        ),
        (
            json!({"results": {PAID: "accept", REFUNDED: "accept", DECLINED: "accept", "sandbox-dispute-decided": "accept"}}),
            422,
            "results",
        ),
        (json!({"results": [PAID]}), 422, "results"),
    ];
    for (body, status, field) in bad {
        let reply = hint(&m, &m.seller, body.clone()).await;
        assert_eq!(
            (reply.status, reply.field()),
            (status, field),
            "{body}: {reply:?}"
        );
    }
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 2);
    assert_eq!(remaining(&m, &m.seller, "order_declined").await, 0);
    let anonymous = m
        .server
        .api
        .call(
            "POST",
            "/v1/me/subscriptions",
            None,
            Some(json!({"results": {PAID: "accept"}})),
        )
        .await;
    assert_eq!(anonymous.status, 401);
    let query = m
        .server
        .api
        .call(
            "GET",
            "/v1/me/subscriptions?x=1",
            Some(&m.seller.token),
            None,
        )
        .await;
    assert_eq!(query.status, 422, "{query:?}");
}

async fn the_popup_push_counts_an_acceptance_once(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let fake = Arc::new(Fake::default());
    let app = app_with(&m, &fake);
    let buyer = openid(&m, &m.buyer).await;
    // The client's hint, then WeChat's push of the same acceptance (List an object): one grant.
    hint(&m, &m.buyer, json!({"results": {REFUNDED: "accept"}})).await;
    let one = json!({
        "ToUserName": "gh_97417a04a28d", "FromUserName": buyer, "CreateTime": 1714112445,
        "MsgType": "event", "Event": "subscribe_msg_popup_event",
        "List": {"TemplateId": REFUNDED, "SubscribeStatusString": "accept", "PopupScene": "0"}
    });
    subscriptions::on_popup(&app, &buyer, &one).await.unwrap();
    assert_eq!(remaining(&m, &m.buyer, "order_refunded").await, 1);
    // WeChat retries the same push: still one.
    subscriptions::on_popup(&app, &buyer, &one).await.unwrap();
    assert_eq!(remaining(&m, &m.buyer, "order_refunded").await, 1);
    // A later pop-up (List an array, CreateTime a string) accepts two templates, rejects one,
    // and names one Renji does not send: pushes alone count, the hint stays a lower bound.
    let many = json!({
        "FromUserName": buyer, "CreateTime": "1714112999", "Event": "subscribe_msg_popup_event",
        "List": [
            {"TemplateId": REFUNDED, "SubscribeStatusString": "accept", "PopupScene": "0"},
            {"TemplateId": DECLINED, "SubscribeStatusString": "accept", "PopupScene": "0"},
            {"TemplateId": PAID, "SubscribeStatusString": "reject", "PopupScene": "0"},
            {"TemplateId": "someone-elses", "SubscribeStatusString": "accept", "PopupScene": "0"}
        ]
    });
    subscriptions::on_popup(&app, &buyer, &many).await.unwrap();
    subscriptions::on_popup(&app, &buyer, &many).await.unwrap();
    assert_eq!(remaining(&m, &m.buyer, "order_refunded").await, 2);
    assert_eq!(remaining(&m, &m.buyer, "order_declined").await, 1);
    assert_eq!(remaining(&m, &m.buyer, "order_paid").await, 0);
    // Its hint arriving after the push adds nothing either.
    hint(&m, &m.buyer, json!({"results": {DECLINED: "accept"}})).await;
    assert_eq!(remaining(&m, &m.buyer, "order_declined").await, 1);
    // An openid of no member is ignored; a push without CreateTime or List is refused.
    subscriptions::on_popup(&app, "o-nobody", &many)
        .await
        .unwrap();
    for bad in [json!({"List": one["List"]}), json!({"CreateTime": 1})] {
        assert!(
            subscriptions::on_popup(&app, &buyer, &bad).await.is_err(),
            "{bad}"
        );
    }
}

async fn a_message_is_sent_once_per_grant(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let fake = Arc::new(Fake::default());
    let app = app_with(&m, &fake);
    hint(&m, &m.seller, json!({"results": {PAID: "accept"}})).await;
    // Two orders paid, one grant: one message, the other recorded as skipped.
    let first = m.server.paid_order(&m.buyer, &m.listing).await;
    let second = m.server.paid_order(&m.buyer, &m.listing).await;
    let report = run(&app).await;
    assert_eq!((report.sent, report.skipped), (1, 1), "{report:?}");
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    let message = &sent[0];
    assert_eq!(message.touser, openid(&m, &m.seller).await);
    assert_eq!(message.template_id, PAID);
    let order = [&first, &second]
        .into_iter()
        .find(|o| message.data["character_string1"]["value"] == json!(o))
        .expect("the message names one of the orders");
    assert_eq!(
        message.page.as_deref(),
        Some(format!("pages/orders/detail?id={order}").as_str())
    );
    assert!(
        message.data["amount3"]["value"]
            .as_str()
            .unwrap()
            .ends_with('元'),
        "{:?}",
        message.data
    );
    assert_eq!(message.data["thing2"]["value"], json!("婚礼跟拍"));
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 0);
    let notes = notes(&m, &m.seller).await;
    let mut outcomes: Vec<_> = notes
        .iter()
        .map(|n| (n.status, n.attempts.last().unwrap().outcome.clone()))
        .collect();
    outcomes.sort_by_key(|(s, _)| *s == NoteStatus::Skipped);
    assert_eq!(
        outcomes,
        [
            (NoteStatus::Sent, "sent".to_owned()),
            (NoteStatus::Skipped, "no_grant".to_owned())
        ]
    );
    // Nothing is due any more: runs send nothing (a run on DynamoDB may still see an entry in
    // the eventually consistent gsi1, and finds nothing to do).
    let report = run(&app).await;
    assert_eq!(
        (report.sent, report.skipped, report.failed, report.retrying),
        (0, 0, 0, 0),
        "{report:?}"
    );
    assert_eq!(fake.sent().len(), 1);
    // The buyer is owed nothing for a payment.
    assert!(notes_of_kind(&m, &m.buyer, "order_paid").await.is_empty());
}

async fn notes_of_kind(m: &Market, who: &Member, kind: &str) -> Vec<subscriptions::Notification> {
    notes(m, who)
        .await
        .into_iter()
        .filter(|n| n.kind.as_str() == kind)
        .collect()
}

/// The seller's `order_paid` notification about `order`.
async fn paid_note(m: &Market, order: &str) -> subscriptions::Notification {
    notes_of_kind(m, &m.seller, "order_paid")
        .await
        .into_iter()
        .find(|n| n.subject == format!("order:{order}"))
        .unwrap_or_else(|| panic!("no order_paid notification about {order}"))
}

async fn racing_runs_send_each_message_once(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let fake = Arc::new(Fake::default());
    let app = Arc::new(app_with(&m, &fake));
    for _ in 0..3 {
        hint(&m, &m.seller, json!({"results": {PAID: "accept"}})).await;
    }
    for _ in 0..3 {
        m.server.paid_order(&m.buyer, &m.listing).await;
    }
    let runs = (0..20).map(|_| {
        let app = app.clone();
        tokio::spawn(async move { run(&app).await })
    });
    let reports = futures_util::future::join_all(runs).await;
    let sent: u32 = reports.into_iter().map(|r| r.unwrap().sent).sum();
    assert_eq!(sent, 3);
    let messages = fake.sent();
    assert_eq!(messages.len(), 3);
    let mut orders: Vec<_> = messages
        .iter()
        .map(|m| m.data["character_string1"]["value"].clone())
        .collect();
    orders.sort_by_key(|v| v.to_string());
    orders.dedup();
    assert_eq!(orders.len(), 3, "each order's message once");
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 0);
}

async fn failures_are_recorded_and_never_fail_the_order(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let fake = Arc::new(Fake::default());
    let app = app_with(&m, &fake);
    // No grant: recorded as skipped, nothing sent.
    let declined = m.server.paid_order(&m.buyer, &m.listing).await;
    let reply = m
        .server
        .api
        .call(
            "POST",
            &format!("/v1/orders/{declined}/decline"),
            Some(&m.seller.token),
            Some(json!({"reason": "档期已满"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let owed = notes_of_kind(&m, &m.buyer, "order_declined").await;
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].data["thing3"], "卖家未接单，款项将原路退回");
    run(&app).await;
    assert!(fake.sent().is_empty());
    let owed = notes_of_kind(&m, &m.buyer, "order_declined").await;
    assert_eq!(owed[0].status, NoteStatus::Skipped);
    assert_eq!(owed[0].attempts[0].outcome, "no_grant");

    // WeChat down: the order change stands; the message is tried again with backoff, each
    // attempt recorded, the grant spent once, and given up after the last.
    hint(&m, &m.seller, json!({"results": {PAID: "accept"}})).await;
    *fake.fail.lock().unwrap() = Some(PlatformError::Unavailable("-1".into()));
    let order = m.server.paid_order(&m.buyer, &m.listing).await;
    let status = m
        .server
        .api
        .call(
            "GET",
            &format!("/v1/orders/{order}"),
            Some(&m.buyer.token),
            None,
        )
        .await;
    assert_eq!(status.body["status"], json!("paid"));
    let mut at = OffsetDateTime::now_utc();
    for _ in 0..subscriptions::MAX_ATTEMPTS {
        let report = subscriptions::run(&app, at, Budget::default())
            .await
            .unwrap();
        assert_eq!(report.retrying + report.failed, 1, "{report:?}");
        at += time::Duration::hours(2);
    }
    let note = paid_note(&m, &order).await;
    assert_eq!(note.status, NoteStatus::Failed);
    let outcomes: Vec<&str> = note.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "unavailable",
            "unavailable",
            "unavailable",
            "unavailable",
            "gave_up"
        ]
    );
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 0);
    assert!(fake.sent().is_empty());

    // 43101: the grant was not there; recorded, and nothing remains of the (hinted) grant.
    hint(&m, &m.seller, json!({"results": {PAID: "accept"}})).await;
    hint(&m, &m.seller, json!({"results": {PAID: "accept"}})).await;
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 2);
    *fake.fail.lock().unwrap() = Some(PlatformError::NotSubscribed);
    let order = m.server.paid_order(&m.buyer, &m.listing).await;
    let report = run(&app).await;
    assert_eq!(report.not_subscribed, 1, "{report:?}");
    let note = paid_note(&m, &order).await;
    assert_eq!(
        (note.status, note.attempts[0].errcode),
        (NoteStatus::NotSubscribed, Some(43101))
    );
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 0);
    // Refused outright (47003, bad data): recorded, not retried, and the grant given back.
    hint(&m, &m.seller, json!({"results": {PAID: "accept"}})).await;
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 1);
    *fake.fail.lock().unwrap() = Some(PlatformError::Refused(47003));
    let refused = m.server.paid_order(&m.buyer, &m.listing).await;
    let report = run(&app).await;
    assert_eq!(report.failed, 1, "{report:?}");
    let failed = paid_note(&m, &refused).await;
    assert_eq!(
        (
            failed.status,
            failed.attempts.len(),
            failed.attempts[0].errcode
        ),
        (NoteStatus::Failed, 1, Some(47003))
    );
    assert_eq!(remaining(&m, &m.seller, "order_paid").await, 1);
    // Not tried again (gsi1 is eventually consistent on DynamoDB: a run may still see the
    // entry, but finds nothing to do).
    let again = run(&app).await;
    assert_eq!(
        (
            again.sent,
            again.failed,
            again.retrying,
            again.not_subscribed
        ),
        (0, 0, 0, 0),
        "{again:?}"
    );
    // Logs and records name the member, never the openid.
    let stored = serde_json::to_string(&note).unwrap();
    assert!(!stored.contains(&openid(&m, &m.seller).await));
}

async fn staff_answers_tell_the_ticket_author(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let fake = Arc::new(Fake::default());
    let app = app_with(&m, &fake);
    let filed = m
        .server
        .api
        .call(
            "POST",
            "/v1/tickets",
            Some(&m.buyer.token),
            Some(json!({"kind": "other", "subject": "发票", "text": "请开具发票"})),
        )
        .await;
    assert_eq!(filed.status, 201, "{filed:?}");
    let ticket = TicketId::parse(filed.body["id"].as_str().unwrap()).unwrap();
    // The member's own message owes nobody a message.
    let own = m
        .server
        .api
        .call(
            "POST",
            &format!("/v1/tickets/{ticket}/messages"),
            Some(&m.buyer.token),
            Some(json!({"text": "补充：抬头为个人"})),
        )
        .await;
    assert_eq!(own.status, 201, "{own:?}");
    assert!(notes(&m, &m.buyer).await.is_empty());
    hint(
        &m,
        &m.buyer,
        json!({"results": {"sandbox-ticket-answered": "accept"}}),
    )
    .await;
    let staff = StaffId::parse("zhang.san").unwrap();
    let long = "您好，发票已经开具并发送到您的邮箱，请注意查收，如有问题请随时联系我们。";
    renji_shared::domain::tickets::staff::staff_message(
        &app.store,
        &ticket,
        &staff,
        long,
        &[],
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let report = run(&app).await;
    assert_eq!(report.sent, 1, "{report:?}");
    let sent = fake.sent();
    assert_eq!(sent[0].template_id, "sandbox-ticket-answered");
    assert_eq!(sent[0].touser, openid(&m, &m.buyer).await);
    assert_eq!(sent[0].data["thing1"]["value"], json!("发票"));
    let answer = sent[0].data["thing2"]["value"].as_str().unwrap();
    assert_eq!(answer.chars().count(), 20, "{answer}");
    assert!(answer.ends_with('…'));
    assert_eq!(
        sent[0].page.as_deref(),
        Some(format!("pages/tickets/detail?id={ticket}").as_str())
    );
}

async fn order_status(m: &Market, id: &str) -> Value {
    m.server
        .api
        .call(
            "GET",
            &format!("/v1/orders/{id}"),
            Some(&m.buyer.token),
            None,
        )
        .await
        .body["status"]
        .clone()
}

/// Each order event owes its party the message of its kind, and nothing else.
async fn each_order_event_owes_the_right_party(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let call = |who: &Member, path: String, body: Value| {
        let token = who.token.clone();
        let api = &m.server.api;
        async move { api.call("POST", &path, Some(&token), Some(body)).await }
    };
    // Declined by the seller, then refunded by the provider: the buyer hears both.
    let declined = m.server.paid_order(&m.buyer, &m.listing).await;
    let reply = call(
        &m.seller,
        format!("/v1/orders/{declined}/decline"),
        json!({"reason": "档期已满"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    for _ in 0..100 {
        if order_status(&m, &declined).await == json!("refunded") {
            break;
        }
        let job = m.server.running.function_app("OrderJobsFunction").unwrap();
        renji_local::functions::run_job("OrderJobsFunction", job)
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(order_status(&m, &declined).await, json!("refunded"));
    let refunded = notes_of_kind(&m, &m.buyer, "order_refunded").await;
    assert_eq!(refunded.len(), 1, "{refunded:?}");
    assert_eq!(refunded[0].subject, format!("order:{declined}"));
    assert!(
        refunded[0].data["amount3"].ends_with('元'),
        "{:?}",
        refunded[0].data
    );
    // A refund request the seller declines.
    let order = m.server.paid_order(&m.buyer, &m.listing).await;
    for (who, action, body) in [
        (&m.seller, "accept", json!({})),
        (&m.buyer, "refund", json!({"reason": "没有到场"})),
        (&m.seller, "refund/decline", json!({"reason": "已经到场"})),
    ] {
        let reply = call(who, format!("/v1/orders/{order}/{action}"), body).await;
        assert_eq!(reply.status, 200, "{action}: {reply:?}");
    }
    let declines: Vec<_> = notes_of_kind(&m, &m.buyer, "order_declined")
        .await
        .into_iter()
        .map(|n| (n.subject, n.data["thing3"].clone()))
        .collect();
    assert_eq!(declines.len(), 2, "{declines:?}");
    assert!(declines.contains(&(format!("order:{order}"), "卖家拒绝了退款申请".to_owned())));
    // The buyer disputes it; staff release it: both parties hear the decision.
    let filed = m
        .server
        .api
        .call(
            "POST",
            "/v1/tickets",
            Some(&m.buyer.token),
            Some(json!({"kind": "dispute", "subject": "未到场", "text": "摄影师没有来", "order_id": order})),
        )
        .await;
    assert_eq!(filed.status, 201, "{filed:?}");
    let store = &m.server.app().store;
    let id = renji_shared::ids::OrderId::parse(&order).unwrap();
    let disputed = renji_shared::domain::orders::get(store, &id)
        .await
        .unwrap()
        .unwrap();
    let release = renji_shared::domain::orders::Change::new(
        renji_shared::domain::orders::Action::StaffRelease,
        renji_shared::domain::orders::Actor::Staff,
        OffsetDateTime::now_utc(),
    );
    let released = disputed
        .transition(&release, &m.server.app().config.orders)
        .unwrap();
    renji_shared::domain::orders::commit(store, &disputed, &released, vec![])
        .await
        .unwrap();
    for who in [&m.buyer, &m.seller] {
        let decided = notes_of_kind(&m, who, "dispute_decided").await;
        assert_eq!(decided.len(), 1, "{decided:?}");
        assert_eq!(decided[0].data["thing3"], "维持订单，不退款");
    }
    // Not accepted in time (the job refunds it): the buyer hears it as a decline; a paid order
    // the buyer cancels themselves owes nobody a decline.
    let cancelled = m.server.paid_order(&m.buyer, &m.listing).await;
    assert_eq!(
        call(
            &m.buyer,
            format!("/v1/orders/{cancelled}/cancel"),
            json!({})
        )
        .await
        .status,
        200
    );
    let unaccepted = m.server.paid_order(&m.buyer, &m.listing).await;
    let job = m.server.running.function_app("OrderJobsFunction").unwrap();
    let day_on = OffsetDateTime::now_utc() + time::Duration::hours(25);
    renji_shared::domain::orders::jobs::run(job, day_on, Default::default())
        .await
        .unwrap();
    let declines: Vec<String> = notes_of_kind(&m, &m.buyer, "order_declined")
        .await
        .into_iter()
        .map(|n| n.subject)
        .collect();
    assert!(
        declines.contains(&format!("order:{unaccepted}")),
        "{declines:?}"
    );
    assert!(
        !declines.contains(&format!("order:{cancelled}")),
        "{declines:?}"
    );
    assert_eq!(declines.len(), 3, "{declines:?}");
    // Nobody else was told anything: the seller only of payments and the decision.
    let mut seller_kinds: Vec<&str> = Vec::new();
    let seller_notes = notes(&m, &m.seller).await;
    for n in &seller_notes {
        seller_kinds.push(n.kind.as_str());
    }
    seller_kinds.sort();
    seller_kinds.dedup();
    assert_eq!(seller_kinds, ["dispute_decided", "order_paid"]);
    assert!(notes(&m, &m.stranger).await.is_empty());
}

on_both_stores!(
    grants_are_recorded_counted_and_bad_input_refused,
    the_popup_push_counts_an_acceptance_once,
    a_message_is_sent_once_per_grant,
    racing_runs_send_each_message_once,
    failures_are_recorded_and_never_fail_the_order,
    staff_answers_tell_the_ticket_author,
    each_order_event_owes_the_right_party,
);
