//! Mini-program shipping records (issue #12, `wechat-platform.md` §6) over HTTP against the
//! local server, on both stores: the seller's accept of a WeChat-paid order sends WeChat one
//! `upload_shipping_info` (virtual goods, `logistics_type` 3) through the shared access token;
//! an outage is retried by the order jobs until WeChat takes it, once however many runs there
//! are; a refusal is final and on record for staff; Alipay orders owe nothing.

use renji_shared::domain::orders::jobs::{self, Budget};
use renji_shared::domain::orders::shipping::{self, ShippingRecord, ShippingState};
use renji_shared::ids::{OrderId, UserId};
use renji_shared::store::Query;
use renji_tests::{on_both_stores, service, Backend, Market, Member};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

on_both_stores!(
    accept_uploads_once,
    outage_is_retried_once,
    refusal_is_final_and_recorded,
    refunded_before_taken_is_dropped,
    alipay_orders_upload_nothing,
    a_lost_answer_is_asked_about_not_uploaded_again,
    an_unmanaged_mini_program_sends_nothing,
);

async fn sandbox(m: &Market, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("{}{path}", m.server.running.wechat_base);
    let client = reqwest::Client::new();
    let request = match method {
        "POST" => client.post(url).json(&body.unwrap_or(json!({}))),
        _ => client.get(url),
    };
    request
        .send()
        .await
        .expect("sandbox")
        .json()
        .await
        .expect("sandbox answer")
}

async fn shipments(m: &Market) -> Vec<Value> {
    sandbox(m, "GET", "/sandbox/wechat/shipping", None).await["shipments"]
        .as_array()
        .expect("shipments")
        .clone()
}

async fn accept(m: &Market, id: &str) -> Value {
    let reply = m
        .server
        .api
        .call(
            "POST",
            &format!("/v1/orders/{id}/accept"),
            Some(&m.seller.token),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "accept: {reply:?}");
    assert_eq!(reply.body["status"], json!("accepted"), "{reply:?}");
    reply.body
}

async fn record(m: &Market, id: &str) -> Option<ShippingRecord> {
    shipping::get(
        &m.server.app().store,
        &OrderId::parse(id).expect("order id"),
    )
    .await
    .expect("read the shipping record")
}

async fn run_jobs(m: &Market, at: OffsetDateTime) -> jobs::Report {
    let app = m
        .server
        .running
        .function_app("OrderJobsFunction")
        .expect("order jobs");
    let report = jobs::run(app, at, Budget::default())
        .await
        .expect("jobs run");
    assert_eq!(report.failed, 0, "{report:?}");
    report
}

async fn openid(m: &Market, member: &Member) -> String {
    let id = UserId::parse(&member.id).expect("member id");
    renji_shared::domain::members::get(&m.server.app().store, &id)
        .await
        .expect("read member")
        .expect("member")
        .openid
}

/// `2022-12-15T13:29:35.120+08:00`: RFC 3339, China time, milliseconds.
fn china_time_with_millis(text: &str) -> bool {
    let shape = text.len() == 29
        && text.ends_with("+08:00")
        && text.as_bytes()[10] == b'T'
        && text.as_bytes()[19] == b'.'
        && text[20..23].bytes().all(|b| b.is_ascii_digit());
    shape
        && OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|t| t.offset().whole_hours() == 8)
}

/// The seller accepts a WeChat-paid order: WeChat got exactly one shipping record of the right
/// payment, payer and shape; job runs long after send nothing more.
async fn accept_uploads_once(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let id = m.server.paid_order(&m.buyer, &m.listing).await;
    // Paid, not accepted: nothing owed yet.
    assert!(record(&m, &id).await.is_none());
    assert!(shipments(&m).await.is_empty());
    let before = OffsetDateTime::now_utc();
    let order = accept(&m, &id).await;
    let transaction_id = order["payment"]["transaction_id"]
        .as_str()
        .expect("transaction id")
        .to_owned();
    let sent = shipments(&m).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let s = &sent[0];
    assert_eq!(
        s["order_key"],
        json!({"order_number_type": 2, "transaction_id": transaction_id})
    );
    assert_eq!(s["payer"], json!({"openid": openid(&m, &m.buyer).await}));
    assert_eq!(s["logistics_type"], json!(3));
    assert_eq!(s["delivery_mode"], json!(1));
    assert_eq!(s["shipping_list"], json!([{"item_desc": "婚礼跟拍"}]));
    assert_eq!(s["reship"], json!(false));
    let upload_time = s["upload_time"].as_str().expect("upload_time");
    assert!(china_time_with_millis(upload_time), "{upload_time}");
    let sent_at =
        OffsetDateTime::parse(upload_time, &time::format_description::well_known::Rfc3339)
            .expect("upload_time");
    assert!(
        sent_at >= before - Duration::seconds(1)
            && sent_at <= OffsetDateTime::now_utc() + Duration::seconds(1),
        "{upload_time}"
    );
    let r = record(&m, &id).await.expect("shipping record");
    assert_eq!(r.state, ShippingState::Uploaded);
    assert_eq!((r.attempts, r.due_at), (1, None));
    assert_eq!(r.transaction_id, transaction_id);
    assert_eq!(r.upload_time.as_deref(), Some(upload_time));
    // Final: the openid is not kept.
    assert!(r.payer_openid.is_empty());
    // Nothing is listed for the job: runs an hour and a day on send nothing.
    for later in [Duration::hours(1), Duration::days(1)] {
        run_jobs(&m, OffsetDateTime::now_utc() + later).await;
    }
    assert_eq!(shipments(&m).await.len(), 1);
    assert_eq!(record(&m, &id).await.expect("record").version, r.version);
}

/// WeChat is down when the seller accepts: the accept stands, the record waits; the job's run
/// before its backoff ends sends nothing, the one after sends it once — five runs at once
/// included — and later runs nothing more.
async fn outage_is_retried_once(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let id = m.server.paid_order(&m.buyer, &m.listing).await;
    let outage = sandbox(
        &m,
        "POST",
        "/sandbox/wechat/shipping-outage",
        Some(json!({"calls": 1})),
    )
    .await;
    assert_eq!(outage["calls"], json!(1));
    let accepted_at = OffsetDateTime::now_utc();
    accept(&m, &id).await;
    assert!(shipments(&m).await.is_empty());
    let r = record(&m, &id).await.expect("shipping record");
    assert_eq!(r.state, ShippingState::Pending);
    assert_eq!(r.attempts, 1);
    assert!(
        r.last_error.as_deref().is_some_and(|e| e.contains("-1")),
        "{r:?}"
    );
    assert!(!r.payer_openid.is_empty());
    let due = r.due_at.expect("due");
    assert!(
        due >= accepted_at.unix_timestamp() + shipping::FIRST_WAIT_SECS - 1,
        "{r:?}"
    );
    // The attempt's failure is on the order's record for staff.
    let events = order_events(&m, &id).await;
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == json!("shipping") && e["outcome"] == json!("failed")),
        "{events:?}"
    );

    // A minute on: not due yet.
    let report = run_jobs(&m, accepted_at + Duration::minutes(1)).await;
    assert_eq!(report.changed, 0, "{report:?}");
    assert!(shipments(&m).await.is_empty());

    // Ten minutes on, five runs at once: one sends it.
    let at = accepted_at + Duration::minutes(10);
    let app = m
        .server
        .running
        .function_app("OrderJobsFunction")
        .expect("order jobs");
    let runs =
        futures_util::future::join_all((0..5).map(|_| jobs::run(app, at, Budget::default()))).await;
    let changed: u32 = runs
        .into_iter()
        .map(|r| {
            let r = r.expect("jobs run");
            assert_eq!(r.failed, 0, "{r:?}");
            r.changed
        })
        .sum();
    assert_eq!(changed, 1);
    let sent = shipments(&m).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["reship"], json!(false));
    assert_eq!(sent[0]["logistics_type"], json!(3));
    let r = record(&m, &id).await.expect("shipping record");
    assert_eq!(r.state, ShippingState::Uploaded);
    assert_eq!(
        (r.attempts, r.due_at, r.last_error.as_deref()),
        (2, None, None)
    );
    for later in [Duration::hours(1), Duration::days(2)] {
        let report = run_jobs(&m, accepted_at + later).await;
        assert_eq!(report.changed, 0, "{report:?}");
    }
    assert_eq!(shipments(&m).await.len(), 1);
    let events = order_events(&m, &id).await;
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == json!("shipping") && e["outcome"] == json!("applied")),
        "{events:?}"
    );
}

/// WeChat refuses the record for good (10060004, not shippable): failed at once, on the order's
/// record for staff, never sent again; the order stays accepted.
async fn refusal_is_final_and_recorded(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let listing = m
        .server
        .api
        .create_listing(&m.seller, service("跟拍 sandbox-refuse"))
        .await["id"]
        .as_str()
        .expect("listing id")
        .to_owned();
    let id = m.server.paid_order(&m.buyer, &listing).await;
    let accepted_at = OffsetDateTime::now_utc();
    accept(&m, &id).await;
    let r = record(&m, &id).await.expect("shipping record");
    assert_eq!(r.state, ShippingState::Failed);
    assert_eq!(r.last_error.as_deref(), Some("errcode 10060004"));
    assert_eq!(r.due_at, None);
    assert!(r.payer_openid.is_empty());
    let events = order_events(&m, &id).await;
    assert!(
        events.iter().any(|e| e["kind"] == json!("shipping")
            && e["outcome"] == json!("rejected")
            && e["detail"].as_str().is_some_and(|d| d.contains("10060004"))),
        "{events:?}"
    );
    let report = run_jobs(&m, accepted_at + Duration::days(1)).await;
    assert_eq!(report.changed, 0, "{report:?}");
    let stats = sandbox(&m, "GET", "/sandbox/wechat/stats", None).await;
    assert_eq!(
        (&stats["shipping_uploads"], &stats["shipping_refusals"]),
        (&json!(0), &json!(1)),
        "{stats}"
    );
    let order = m
        .server
        .api
        .call(
            "GET",
            &format!("/v1/orders/{id}"),
            Some(&m.buyer.token),
            None,
        )
        .await;
    assert_eq!(order.body["status"], json!("accepted"));
}

/// WeChat is down when the seller accepts, and the order is refunded in full before the job's
/// turn: the record is dropped (on record), nothing is sent.
async fn refunded_before_taken_is_dropped(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let id = m.server.paid_order(&m.buyer, &m.listing).await;
    sandbox(
        &m,
        "POST",
        "/sandbox/wechat/shipping-outage",
        Some(json!({"calls": 1})),
    )
    .await;
    let accepted_at = OffsetDateTime::now_utc();
    accept(&m, &id).await;
    let api = &m.server.api;
    let asked = api
        .call(
            "POST",
            &format!("/v1/orders/{id}/refund"),
            Some(&m.buyer.token),
            Some(json!({"reason": "摄影师没有到场"})),
        )
        .await;
    assert_eq!(asked.status, 200, "{asked:?}");
    let approved = api
        .call(
            "POST",
            &format!("/v1/orders/{id}/refund/approve"),
            Some(&m.seller.token),
            None,
        )
        .await;
    assert_eq!(approved.status, 200, "{approved:?}");
    // WeChat Pay's refund notification arrives a moment later.
    let mut status = Value::Null;
    for _ in 0..100 {
        status = api
            .call(
                "GET",
                &format!("/v1/orders/{id}"),
                Some(&m.buyer.token),
                None,
            )
            .await
            .body["status"]
            .clone();
        if status == json!("refunded") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, json!("refunded"));
    let report = run_jobs(&m, accepted_at + Duration::minutes(10)).await;
    assert_eq!(report.changed, 1, "{report:?}");
    let r = record(&m, &id).await.expect("shipping record");
    assert_eq!((r.state, r.due_at), (ShippingState::Dropped, None));
    assert!(r.payer_openid.is_empty());
    run_jobs(&m, accepted_at + Duration::days(1)).await;
    assert!(shipments(&m).await.is_empty());
}

/// An order paid with Alipay owes WeChat nothing: no record, no upload.
async fn alipay_orders_upload_nothing(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let created = m
        .server
        .api
        .call(
            "POST",
            "/v1/orders",
            Some(&m.buyer.token),
            Some(json!({"listing_id": m.listing, "quantity": 1})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().expect("order id").to_owned();
    let started = m
        .server
        .api
        .call(
            "POST",
            &format!("/v1/orders/{id}/payments"),
            Some(&m.buyer.token),
            Some(json!({"channel": "alipay"})),
        )
        .await;
    assert_eq!(started.status, 200, "{started:?}");
    let paid: Value = reqwest::Client::new()
        .post(format!("{}/sandbox/pay", m.server.running.alipay_base))
        .json(&json!({"order_string": started.body["order_string"]}))
        .send()
        .await
        .expect("pay")
        .json()
        .await
        .expect("pay answer");
    assert_eq!(paid["notified"], json!("success"), "{paid}");
    let order = accept(&m, &id).await;
    assert_eq!(order["payment"]["channel"], json!("alipay"));
    assert!(record(&m, &id).await.is_none());
    run_jobs(&m, OffsetDateTime::now_utc() + Duration::hours(1)).await;
    assert!(shipments(&m).await.is_empty());
    let stats = sandbox(&m, "GET", "/sandbox/wechat/stats", None).await;
    assert_eq!(stats["shipping_uploads"], json!(0), "{stats}");
}

async fn order_events(m: &Market, id: &str) -> Vec<serde_json::Map<String, Value>> {
    m.server
        .app()
        .store
        .query(Query::partition(format!("ORDER#{id}")))
        .await
        .expect("order partition")
        .items
        .into_iter()
        .filter(|i| {
            i.get("sk")
                .and_then(Value::as_str)
                .is_some_and(|sk| sk.starts_with("EVENT#"))
        })
        .collect()
}

/// WeChat takes the upload after the accept but its answer is lost (the stand-in records it and
/// answers -1, as a timeout or a failed write of the answer would leave it): the job's retry asks
/// `get_order` first, finds it shipped and records it taken — no second upload, WeChat's one
/// re-shipping unspent — however many runs there are.
async fn a_lost_answer_is_asked_about_not_uploaded_again(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let id = m.server.paid_order(&m.buyer, &m.listing).await;
    sandbox(
        &m,
        "POST",
        "/sandbox/wechat/shipping-lost-answer",
        Some(json!({"calls": 1})),
    )
    .await;
    let accepted_at = OffsetDateTime::now_utc();
    accept(&m, &id).await;
    assert_eq!(shipments(&m).await.len(), 1, "WeChat has it");
    let r = record(&m, &id).await.expect("shipping record");
    assert_eq!(r.state, ShippingState::Pending, "we did not hear so");
    assert_eq!(r.attempts, 1);
    let stats = sandbox(&m, "GET", "/sandbox/wechat/stats", None).await;
    assert_eq!(
        stats["shipping_queries"],
        json!(0),
        "the first upload asks nothing"
    );

    let report = run_jobs(&m, accepted_at + Duration::minutes(10)).await;
    assert_eq!(report.changed, 1, "{report:?}");
    let sent = shipments(&m).await;
    assert_eq!(sent.len(), 1, "not uploaded again: {sent:?}");
    assert_eq!(sent[0]["reship"], json!(false));
    let r = record(&m, &id).await.expect("shipping record");
    assert_eq!(r.state, ShippingState::Uploaded);
    assert_eq!(
        (r.attempts, r.due_at, r.last_error.as_deref()),
        (2, None, None)
    );
    assert!(r.payer_openid.is_empty());
    let stats = sandbox(&m, "GET", "/sandbox/wechat/stats", None).await;
    assert_eq!(stats["shipping_queries"], json!(1), "{stats}");
    let events = order_events(&m, &id).await;
    assert!(
        events.iter().any(|e| e["kind"] == json!("shipping")
            && e["outcome"] == json!("applied")
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("get_order"))),
        "{events:?}"
    );
    for later in [Duration::hours(1), Duration::days(2)] {
        let report = run_jobs(&m, accepted_at + later).await;
        assert_eq!(report.changed, 0, "{report:?}");
    }
    assert_eq!(shipments(&m).await.len(), 1);

    // Not shipped after all (the upload never arrived): the retry asks, then uploads.
    let id = m.server.paid_order(&m.buyer, &m.listing).await;
    sandbox(
        &m,
        "POST",
        "/sandbox/wechat/shipping-outage",
        Some(json!({"calls": 1})),
    )
    .await;
    let accepted_at = OffsetDateTime::now_utc();
    accept(&m, &id).await;
    assert_eq!(shipments(&m).await.len(), 1, "the first order's only");
    run_jobs(&m, accepted_at + Duration::minutes(10)).await;
    let sent = shipments(&m).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["reship"], json!(false));
    assert_eq!(
        record(&m, &id).await.expect("record").state,
        ShippingState::Uploaded
    );
    let stats = sandbox(&m, "GET", "/sandbox/wechat/stats", None).await;
    assert_eq!(stats["shipping_queries"], json!(2), "{stats}");
}

/// A mini-program WeChat does not hold payments of for shipping (`is_trade_managed` false):
/// the accepted order's record is `not_managed`, nothing is sent, the job has nothing to do;
/// WeChat is asked once per process.
async fn an_unmanaged_mini_program_sends_nothing(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    sandbox(
        &m,
        "POST",
        "/sandbox/wechat/trade-managed",
        Some(json!({"managed": false})),
    )
    .await;
    let accepted_at = OffsetDateTime::now_utc();
    let first = m.server.paid_order(&m.buyer, &m.listing).await;
    let second = m.server.paid_order(&m.buyer, &m.listing).await;
    for id in [&first, &second] {
        accept(&m, id).await;
        let r = record(&m, id).await.expect("shipping record");
        assert_eq!(r.state, ShippingState::NotManaged);
        assert_eq!(r.due_at, None);
        assert!(r.payer_openid.is_empty());
    }
    assert!(shipments(&m).await.is_empty());
    let report = run_jobs(&m, accepted_at + Duration::days(1)).await;
    assert_eq!(report.changed, 0, "{report:?}");
    let stats = sandbox(&m, "GET", "/sandbox/wechat/stats", None).await;
    assert_eq!(stats["trade_managed_checks"], json!(1), "cached: {stats}");
    assert_eq!(stats["shipping_uploads"], json!(0));
}
