//! Orders over HTTP against the local server, on both stores: creation (every refusal writes
//! nothing), idempotency keys, the lists, who may see and do what, a walk of the whole state
//! machine through the action routes, and races.

use renji_shared::domain::listings;
use renji_shared::domain::orders::create::{self, NewOrder};
use renji_shared::domain::orders::payments::{self, PaymentState};
use renji_shared::domain::orders::{
    self, creation_writes, Action, Actor, Change, Order, OrderPayment, OrderStatus, Refund,
    RefundAsk, RefundStatus, Step,
};
use renji_shared::ids::{ListingId, OrderId, UserId};
use renji_shared::money::Fen;
use renji_shared::payments::{Channel, GatewayError, PaymentStart, Provider, RefundState};
use renji_shared::store::{keys, Item, Query};
use renji_tests::{on_both_stores, service, Backend, Market, Member, Reply};
use serde_json::{json, Value};
use time::OffsetDateTime;

const PRICE: i64 = 288_000;

/// The shared market (`renji_tests::Market`), with this file's steps on it.
struct World(Market);

impl std::ops::Deref for World {
    type Target = Market;

    fn deref(&self) -> &Market {
        &self.0
    }
}

impl World {
    async fn new(backend: Backend) -> Self {
        Self::with(backend, &[]).await
    }

    async fn with(backend: Backend, config: &[(&str, &str)]) -> Self {
        World(Market::start(backend, config).await)
    }

    async fn create(&self, who: &Member, body: Value, key: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        self.server
            .api
            .send(
                "POST",
                "/v1/orders",
                Some(&who.token),
                Some(body.to_string()),
                &headers,
            )
            .await
    }

    /// Orders the listing as the buyer; must answer 201.
    async fn order(&self, quantity: i64) -> Value {
        let reply = self
            .create(
                &self.buyer,
                json!({"listing_id": self.listing, "quantity": quantity, "remark": "下午两点"}),
                None,
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body
    }

    async fn call(&self, who: &Member, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.server
            .api
            .call(method, path, Some(&who.token), body)
            .await
    }

    fn store(&self) -> &renji_shared::store::DynStore {
        &self.server.app().store
    }

    async fn stored(&self, id: &str) -> Option<Item> {
        self.store()
            .get(&keys::order(&OrderId::parse(id).unwrap()))
            .await
            .unwrap()
    }

    async fn order_record(&self, id: &str) -> Order {
        orders::get(self.store(), &OrderId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// The order ids of a member's entry partition, as stored (newest first).
    async fn entries(&self, who: &Member, role: &str, status: Option<&str>) -> Vec<String> {
        let member = UserId::parse(&who.id).unwrap();
        let page = self
            .store()
            .query(Query::partition(keys::orders_of(&member, role, status)).descending())
            .await
            .unwrap();
        page.items
            .iter()
            .map(|i| i["order_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// An order in `status`, written straight into the store as the machine would have left it.
    async fn seed(&self, status: OrderStatus) -> Order {
        let store = self.store();
        let listing = listings::get(store, &ListingId::parse(&self.listing).unwrap())
            .await
            .unwrap()
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let body = NewOrder {
            listing_id: self.listing.clone(),
            quantity: 1,
            remark: "seeded".into(),
            service_date: None,
        };
        let buyer = UserId::parse(&self.buyer.id).unwrap();
        let config = &self.server.app().config;
        let mut order = create::new_order(
            &listing,
            &buyer,
            &body.check(now).unwrap(),
            &config.orders,
            &config.settlement,
            now,
        )
        .unwrap();
        let at = order.created_at.clone();
        let step = |status, actor| Step {
            status,
            at: at.clone(),
            actor,
            reason: None,
        };
        use OrderStatus as S;
        let path: &[(OrderStatus, Actor)] = match status {
            S::PendingPayment => &[],
            S::Paid => &[(S::Paid, Actor::Provider)],
            S::Accepted => &[(S::Paid, Actor::Provider), (S::Accepted, Actor::Seller)],
            S::Completed => &[
                (S::Paid, Actor::Provider),
                (S::Accepted, Actor::Seller),
                (S::Completed, Actor::Buyer),
            ],
            S::RefundRequested => &[
                (S::Paid, Actor::Provider),
                (S::Accepted, Actor::Seller),
                (S::RefundRequested, Actor::Buyer),
            ],
            S::Refunding => &[(S::Paid, Actor::Provider), (S::Refunding, Actor::Seller)],
            S::Refunded => &[
                (S::Paid, Actor::Provider),
                (S::Refunding, Actor::Seller),
                (S::Refunded, Actor::Provider),
            ],
            S::RefundFailed => &[
                (S::Paid, Actor::Provider),
                (S::Refunding, Actor::Seller),
                (S::RefundFailed, Actor::Provider),
            ],
            S::Cancelled => &[(S::Cancelled, Actor::Buyer)],
            S::Expired => &[(S::Expired, Actor::System)],
            S::Disputed => &[
                (S::Paid, Actor::Provider),
                (S::Accepted, Actor::Seller),
                (S::Disputed, Actor::Buyer),
            ],
        };
        for (status, actor) in path {
            order.timeline.push(step(*status, *actor));
            order.version += 1;
            match status {
                S::Paid => {
                    order.payment = Some(OrderPayment {
                        channel: Channel::Wechat,
                        transaction_id: "4200000000202611290000000001".into(),
                        paid_at: at.clone(),
                    })
                }
                S::Accepted => order.accepted_at = Some(at.clone()),
                S::Completed => order.completed_at = Some(at.clone()),
                S::RefundRequested => {
                    order.refund_request = Some(RefundAsk {
                        reason: "没有到场".into(),
                        at: at.clone(),
                    })
                }
                S::Refunding => order.refunds.push(Refund {
                    seq: 1,
                    out_refund_no: format!("{}R01", order.id),
                    amount_fen: order.amount_fen,
                    reason: None,
                    from: S::Paid,
                    actor: Actor::Seller,
                    status: RefundStatus::Pending,
                    requested_at: at.clone(),
                    refund_id: None,
                    failure: None,
                    finished_at: None,
                    attempts: 0,
                    after_split: None,
                    after_expiry: None,
                }),
                S::Refunded => {
                    order.refunded_fen = order.amount_fen;
                    if let Some(r) = order.refunds.last_mut() {
                        r.status = RefundStatus::Succeeded;
                        r.finished_at = Some(at.clone());
                    }
                }
                S::RefundFailed => {
                    if let Some(r) = order.refunds.last_mut() {
                        r.status = RefundStatus::Failed;
                    }
                }
                S::Disputed => order.before_dispute = Some(S::Accepted),
                _ => {}
            }
        }
        order.status = status;
        if status != S::PendingPayment {
            order.due_at = None;
        }
        // What the provider holds for it, so an action that calls the provider finds it there:
        // a paid order's payment is a real trade at the WeChat Pay stand-in (refunds of it
        // succeed); an unpaid order has a started payment (a cancel closes it there).
        if order.payment.is_some() {
            let transaction_id = self.paid_at_the_provider(&order).await;
            if let Some(payment) = order.payment.as_mut() {
                payment.transaction_id = transaction_id;
            }
        }
        store
            .transact(creation_writes(&order).unwrap())
            .await
            .unwrap();
        if status == S::PendingPayment {
            let reply = self
                .call(
                    &self.buyer,
                    "POST",
                    &format!("/v1/orders/{}/payments", order.id),
                    Some(json!({"channel": "wechat"})),
                )
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
        }
        order
    }

    /// A JSAPI trade for `order` created and paid (silently) at the WeChat Pay stand-in: its
    /// transaction id.
    async fn paid_at_the_provider(&self, order: &Order) -> String {
        let gateway = self
            .server
            .app()
            .payments
            .gateway(Provider::Wechat)
            .unwrap();
        let expires = OffsetDateTime::parse(
            &order.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        gateway
            .start(&PaymentStart {
                channel: Channel::Wechat,
                order_no: order.id.to_string(),
                description: order.listing.title.clone(),
                amount: order.amount_fen,
                expires_at: expires,
                payer_openid: Some("o-seeded-buyer".into()),
                prepay_id: None,
            })
            .await
            .unwrap();
        let answer: Value = reqwest::Client::new()
            .post(format!(
                "{}/sandbox/pay",
                self.server.running.wechatpay_base
            ))
            .json(&json!({"out_trade_no": order.id, "notify": false}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["transaction_id"].as_str().unwrap().to_owned()
    }

    /// Polls the stored order briefly until it is in `status` (a provider's notification).
    async fn until(&self, id: &str, status: OrderStatus) -> Order {
        for _ in 0..100 {
            let order = self.order_record(id).await;
            if order.status == status {
                return order;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("order {id} did not become {status:?}");
    }
}

/// Today's date in China (UTC+8), shifted by `days`.
fn china_day(days: i64) -> String {
    let today = OffsetDateTime::now_utc().to_offset(create::CHINA).date();
    (today + time::Duration::days(days)).to_string()
}

async fn creation_prices_the_order_and_writes_it_once(backend: Backend) {
    let w = World::with(backend, &[("RENJI_ORDER_PAY_MINUTES", "45")]).await;
    let reply = w
        .create(
            &w.buyer,
            json!({
                "listing_id": w.listing, "quantity": 3, "remark": "  下午两点到  ",
                "service_date": china_day(0),
            }),
            None,
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let order = &reply.body;
    let id = order["id"].as_str().unwrap();
    assert!(OrderId::parse(id).is_some(), "{id}");
    assert_eq!(order["order_no"], json!(id));
    assert_eq!(order["amount_fen"], json!(PRICE * 3));
    assert_eq!(order["refunded_fen"], json!(0));
    assert_eq!(order["quantity"], json!(3));
    assert_eq!(order["remark"], json!("下午两点到"));
    assert_eq!(order["service_date"], json!(china_day(0)));
    assert_eq!(order["status"], json!("pending_payment"));
    assert_eq!(order["buyer_id"], json!(w.buyer.id));
    assert_eq!(order["seller_id"], json!(w.seller.id));
    assert_eq!(order["listing"]["id"], json!(w.listing));
    assert_eq!(order["listing"]["price_fen"], json!(PRICE));
    assert_eq!(order["listing"]["title"], json!("婚礼跟拍"));
    assert_eq!(order["listing"]["kind"], json!("service"));
    assert_eq!(order["payment"], Value::Null);
    assert_eq!(
        order["timeline"],
        json!([{"status": "pending_payment", "at": order["created_at"], "actor": "buyer"}])
    );
    let created = OffsetDateTime::parse(
        order["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = OffsetDateTime::parse(
        order["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires - created, time::Duration::minutes(45));
    // The buyer sees the seller's public card, nothing private.
    let mut card: Vec<&str> = renji_tests::keys(&order["seller"]);
    card.sort_unstable();
    assert_eq!(card, ["avatar_url", "id", "nickname"]);
    assert_eq!(order["seller"]["id"], json!(w.seller.id));
    assert!(order.get("buyer").is_none());

    // Stored once, with its four entries; the due time of the expiry job is its expiry.
    let stored = w.order_record(id).await;
    assert_eq!(stored.due_at, Some(expires.unix_timestamp()));
    assert_eq!(stored.version, 1);
    for (who, role) in [(&w.buyer, "buyer"), (&w.seller, "seller")] {
        assert_eq!(w.entries(who, role, None).await, [id]);
        assert_eq!(w.entries(who, role, Some("pending_payment")).await, [id]);
    }

    // Each party reads it; the seller sees the buyer's card and the remark.
    let as_buyer = w
        .call(&w.buyer, "GET", &format!("/v1/orders/{id}"), None)
        .await;
    assert_eq!((as_buyer.status, &as_buyer.body), (200, order));
    let as_seller = w
        .call(&w.seller, "GET", &format!("/v1/orders/{id}"), None)
        .await;
    assert_eq!(as_seller.status, 200);
    assert_eq!(as_seller.body["buyer"]["id"], json!(w.buyer.id));
    assert_eq!(as_seller.body["remark"], json!("下午两点到"));
    assert!(as_seller.body.get("seller").is_none());
    assert!(as_seller.body["buyer"].get("openid").is_none());

    // The limits themselves are accepted.
    let most = w
        .create(
            &w.buyer,
            json!({"listing_id": w.listing, "quantity": 99, "remark": "字".repeat(200)}),
            None,
        )
        .await;
    assert_eq!(most.status, 201, "{most:?}");
    assert_eq!(most.body["amount_fen"], json!(PRICE * 99));
    assert_eq!(most.body["service_date"], Value::Null);
    // remark may be left out.
    let bare = w
        .create(
            &w.buyer,
            json!({"listing_id": w.listing, "quantity": 1}),
            None,
        )
        .await;
    assert_eq!(
        (bare.status, &bare.body["remark"]),
        (201, &json!("")),
        "{bare:?}"
    );
}

async fn every_bad_creation_is_refused_and_writes_nothing(backend: Backend) {
    let w = World::new(backend).await;
    let api = &w.server.api;
    let l = w.listing.clone();
    let ok = json!({"listing_id": l, "quantity": 1, "remark": ""});
    let with = |name: &str, value: Value| {
        let mut body = ok.clone();
        body[name] = value;
        body
    };
    let without = |name: &str| {
        let mut body = ok.clone();
        body.as_object_mut().unwrap().remove(name);
        body
    };
    // (body, status, field)
    let cases: Vec<(Value, u16, &str)> = vec![
        (with("amount_fen", json!(1)), 422, "amount_fen"),
        (with("price_fen", json!(1)), 422, "price_fen"),
        (with("buyer_id", json!(w.stranger.id)), 422, "buyer_id"),
        (with("quantity", json!(0)), 422, "quantity"),
        (with("quantity", json!(100)), 422, "quantity"),
        (with("quantity", json!(-1)), 422, "quantity"),
        (with("quantity", json!(1.5)), 422, "quantity"),
        (with("quantity", json!("2")), 422, "quantity"),
        (with("quantity", json!(i64::MAX)), 422, "quantity"),
        (without("quantity"), 422, "quantity"),
        (without("listing_id"), 422, "listing_id"),
        (
            with("listing_id", json!("not-a-listing")),
            422,
            "listing_id",
        ),
        (with("listing_id", json!(7)), 422, "listing_id"),
        (with("remark", json!("字".repeat(201))), 422, "remark"),
        (with("remark", json!("a\u{0}b")), 422, "remark"),
        (with("remark", json!(null)), 422, "remark"),
        (
            with("service_date", json!("2020-01-01")),
            422,
            "service_date",
        ),
        (
            with("service_date", json!(china_day(-1))),
            422,
            "service_date",
        ),
        (
            with("service_date", json!("2027-02-30")),
            422,
            "service_date",
        ),
        (with("service_date", json!("2027-1-5")), 422, "service_date"),
        (
            with("service_date", json!(format!("+{}", china_day(1)))),
            422,
            "service_date",
        ),
        (
            with("service_date", json!("2027-01-05T00:00:00Z")),
            422,
            "service_date",
        ),
        (with("service_date", json!(20270105)), 422, "service_date"),
    ];
    for (body, status, name) in cases {
        let reply = w.create(&w.buyer, body.clone(), None).await;
        assert_eq!(
            (reply.status, reply.field()),
            (status, name),
            "{body}: {reply:?}"
        );
        reply.error_code();
    }
    // Not JSON, not an object, no body.
    for (raw, status, code) in [
        ("{\"listing_id\":", 400, "malformed_json"),
        ("", 400, "missing_body"),
        ("[1]", 422, "invalid_field"),
    ] {
        let reply = api
            .raw("POST", "/v1/orders", Some(&w.buyer.token), Some(raw.into()))
            .await;
        assert_eq!((reply.status, reply.error_code()), (status, code), "{raw}");
    }
    // A malformed Idempotency-Key names the header.
    let reply = w.create(&w.buyer, ok.clone(), Some(&"k".repeat(65))).await;
    assert_eq!((reply.status, reply.field()), (422, "Idempotency-Key"));
    // Without a token.
    let reply = api.call("POST", "/v1/orders", None, Some(ok.clone())).await;
    assert_eq!(reply.status, 401);

    // Listings that cannot be ordered.
    let unknown = ListingId::generate().to_string();
    let reply = w
        .create(&w.buyer, with("listing_id", json!(unknown)), None)
        .await;
    assert_eq!((reply.status, reply.error_code()), (404, "not_found"));
    let reply = w.create(&w.seller, ok.clone(), None).await;
    assert_eq!((reply.status, reply.error_code()), (409, "own_listing"));
    let mut recruitment = service("招募摄影助理");
    recruitment["kind"] = json!("recruitment");
    recruitment.as_object_mut().unwrap().remove("price_fen");
    let r = api.create_listing(&w.seller, recruitment).await["id"].clone();
    let reply = w.create(&w.buyer, with("listing_id", r), None).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (409, "listing_not_orderable")
    );
    let mut draft = service("草稿摄影");
    draft["status"] = json!("draft");
    let d = api.create_listing(&w.seller, draft).await["id"].clone();
    let reply = w.create(&w.buyer, with("listing_id", d), None).await;
    assert_eq!((reply.status, reply.error_code()), (404, "not_found"));
    let c = api.create_listing(&w.seller, service("已关闭")).await["id"].clone();
    let closed = w
        .call(
            &w.seller,
            "PATCH",
            &format!("/v1/listings/{}", c.as_str().unwrap()),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{closed:?}");
    let reply = w.create(&w.buyer, with("listing_id", c), None).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (409, "listing_unavailable")
    );
    // A total beyond what one payment may be (WeChat Pay's 32-bit amount.total): the most
    // expensive listing 99 times is 422 quantity, and WeChat Pay (its stand-in) would refuse
    // such a payment too.
    let mut dear = service("全年跟拍");
    dear["price_fen"] = json!(100_000_000);
    let dear = api.create_listing(&w.seller, dear).await["id"].clone();
    for quantity in [22, 99] {
        let mut body = with("listing_id", dear.clone());
        body["quantity"] = json!(quantity);
        let reply = w.create(&w.buyer, body, None).await;
        assert_eq!(
            (reply.status, reply.field()),
            (422, "quantity"),
            "{reply:?}"
        );
    }
    let gateway = w.server.app().payments.gateway(Provider::Wechat).unwrap();
    let start = |amount: i64| PaymentStart {
        channel: Channel::Wechat,
        order_no: OrderId::generate().to_string(),
        description: "全年跟拍".into(),
        amount: Fen::from_fen(amount),
        expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(30),
        payer_openid: Some("o-seeded-buyer".into()),
        prepay_id: None,
    };
    let over = gateway.start(&start(2_147_483_648)).await.unwrap_err();
    assert!(
        matches!(&over, GatewayError::Refused { code, .. } if code == "PARAM_ERROR"),
        "{over:?}"
    );
    assert!(gateway.start(&start(2_147_483_647)).await.is_ok());
    let removed = w
        .call(&w.seller, "DELETE", &format!("/v1/listings/{l}"), None)
        .await;
    assert_eq!(removed.status, 204);
    let reply = w.create(&w.buyer, ok.clone(), None).await;
    assert_eq!((reply.status, reply.error_code()), (404, "not_found"));

    // Nothing was written for anyone.
    for (who, role) in [
        (&w.buyer, "buyer"),
        (&w.seller, "seller"),
        (&w.seller, "buyer"),
        (&w.stranger, "buyer"),
    ] {
        assert!(w.entries(who, role, None).await.is_empty(), "{role}");
    }
}

async fn idempotency_keys_make_one_order(backend: Backend) {
    let w = World::new(backend).await;
    let body = json!({"listing_id": w.listing, "quantity": 2, "remark": "一次"});
    let first = w.create(&w.buyer, body.clone(), Some("order-1")).await;
    assert_eq!(first.status, 201, "{first:?}");
    let again = w.create(&w.buyer, body.clone(), Some("order-1")).await;
    assert_eq!((again.status, &again.body), (200, &first.body));
    let mut other = body.clone();
    other["quantity"] = json!(3);
    let reused = w.create(&w.buyer, other.clone(), Some("order-1")).await;
    assert_eq!(
        (reused.status, reused.error_code(), reused.field()),
        (422, "idempotency_key_reused", "Idempotency-Key")
    );
    assert_eq!(w.entries(&w.buyer, "buyer", None).await.len(), 1);
    // Keys are the member's own: another member's same key makes their own order.
    let mine = w.create(&w.stranger, body.clone(), Some("order-1")).await;
    assert_eq!(mine.status, 201, "{mine:?}");
    assert_ne!(mine.body["id"], first.body["id"]);
    // Without a key, each request is an order.
    for _ in 0..2 {
        assert_eq!(w.create(&w.buyer, body.clone(), None).await.status, 201);
    }
    assert_eq!(w.entries(&w.buyer, "buyer", None).await.len(), 3);

    // 16 at once with one key: one order, and every answer is that order.
    let replies = futures_util::future::join_all(
        (0..16).map(|_| w.create(&w.stranger, other.clone(), Some("burst"))),
    )
    .await;
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "{replies:?}");
    for reply in &replies {
        assert!(matches!(reply.status, 200 | 201), "{reply:?}");
        assert_eq!(reply.body["id"], created[0].body["id"], "{reply:?}");
    }
    assert_eq!(w.entries(&w.stranger, "buyer", None).await.len(), 2);

    // A repeat is answered before the listing is looked at: closed since, it is still the order.
    let closed = w
        .call(
            &w.seller,
            "PATCH",
            &format!("/v1/listings/{}", w.listing),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{closed:?}");
    let late = w.create(&w.buyer, body.clone(), Some("order-1")).await;
    assert_eq!((late.status, &late.body), (200, &first.body));
    let fresh = w.create(&w.buyer, body, Some("order-2")).await;
    assert_eq!(
        (fresh.status, fresh.error_code()),
        (409, "listing_unavailable")
    );
}

async fn lists_by_role_and_status_page_newest_first(backend: Backend) {
    let w = World::new(backend).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(w.order(1).await["id"].as_str().unwrap().to_owned());
        // Order ids are time-ordered to the millisecond.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // Two of them paid, through the domain as a provider's confirmation would move them.
    let times = &w.server.app().config.orders;
    for id in &ids[1..3] {
        let before = w.order_record(id).await;
        let change = Change::new(
            Action::ConfirmPayment,
            Actor::Provider,
            OffsetDateTime::now_utc(),
        );
        let after = before.transition(&change, times).unwrap();
        orders::commit(w.store(), &before, &after, Vec::new())
            .await
            .unwrap();
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let list = |who: &Member, query: String| {
        let token = who.token.clone();
        let api = w.server.api.clone();
        async move {
            api.call("GET", &format!("/v1/orders{query}"), Some(&token), None)
                .await
        }
    };
    let got = |reply: &Reply| -> Vec<String> {
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // role=buyer is the default.
    let all = list(&w.buyer, String::new()).await;
    assert_eq!(got(&all), newest_first);
    assert_eq!(all.body["next_cursor"], Value::Null);
    assert_eq!(all.body["items"][0]["seller"]["id"], json!(w.seller.id));
    assert_eq!(
        got(&list(&w.buyer, "?role=buyer".into()).await),
        newest_first
    );
    // Pages of two.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let reply = list(&w.buyer, format!("?limit=2&cursor={cursor}")).await;
        seen.extend(got(&reply));
        pages += 1;
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
        assert!(pages < 5);
    }
    assert_eq!(seen, newest_first);
    assert!(pages >= 3);
    // The seller's view, with the buyer's card.
    let sold = list(&w.seller, "?role=seller".into()).await;
    assert_eq!(got(&sold), newest_first);
    assert_eq!(sold.body["items"][0]["buyer"]["id"], json!(w.buyer.id));
    assert!(sold.body["items"][0].get("seller").is_none());
    // By status.
    let paid: Vec<String> = vec![ids[2].clone(), ids[1].clone()];
    assert_eq!(got(&list(&w.buyer, "?status=paid".into()).await), paid);
    assert_eq!(
        got(&list(&w.seller, "?role=seller&status=paid".into()).await),
        paid
    );
    assert_eq!(
        got(&list(&w.buyer, "?status=pending_payment".into()).await),
        [ids[4].clone(), ids[3].clone(), ids[0].clone()]
    );
    assert!(got(&list(&w.buyer, "?status=completed".into()).await).is_empty());
    // The other side, and strangers, have none.
    assert!(got(&list(&w.buyer, "?role=seller".into()).await).is_empty());
    assert!(got(&list(&w.seller, String::new()).await).is_empty());
    assert!(got(&list(&w.stranger, String::new()).await).is_empty());
    // Unknown values and parameters are named.
    for (query, name) in [
        ("?role=admin", "role"),
        ("?role=", "role"),
        ("?status=PAID", "status"),
        ("?status=bogus", "status"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?cursor=forged", "cursor"),
        ("?sort=asc", "sort"),
    ] {
        let reply = list(&w.buyer, query.into()).await;
        assert_eq!((reply.status, reply.field()), (422, name), "{query}");
    }
    // A cursor of another list (the buyer's, sent with the seller's role) is refused.
    let first = list(&w.buyer, "?limit=2".into()).await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let reply = list(&w.buyer, format!("?role=seller&limit=2&cursor={cursor}")).await;
    assert_eq!((reply.status, reply.field()), (422, "cursor"));
    let reply = list(&w.buyer, format!("?status=paid&limit=2&cursor={cursor}")).await;
    assert_eq!((reply.status, reply.field()), (422, "cursor"));
    assert_eq!(
        w.server
            .api
            .call("GET", "/v1/orders", None, None)
            .await
            .status,
        401
    );
}

/// Who may call an action route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Party {
    Buyer,
    Seller,
    Stranger,
}

/// One action route of the walk: who may call it, and the states it moves (from, to), as the
/// table of `api.md` has them (the `orders` and the `payments` functions' routes alike).
struct Row {
    path: &'static str,
    body: Option<Value>,
    party: Party,
    moves: &'static [(OrderStatus, OrderStatus)],
}

fn rows() -> Vec<Row> {
    use OrderStatus as S;
    vec![
        Row {
            path: "accept",
            body: None,
            party: Party::Seller,
            moves: &[(S::Paid, S::Accepted)],
        },
        Row {
            path: "confirm",
            body: None,
            party: Party::Buyer,
            moves: &[(S::Accepted, S::Completed)],
        },
        Row {
            path: "refund",
            body: Some(json!({"reason": "摄影师没有按约定时间到场"})),
            party: Party::Buyer,
            moves: &[(S::Accepted, S::RefundRequested)],
        },
        // The `payments` function's routes.
        Row {
            path: "cancel",
            body: None,
            party: Party::Buyer,
            moves: &[(S::PendingPayment, S::Cancelled), (S::Paid, S::Refunding)],
        },
        Row {
            path: "decline",
            body: Some(json!({"reason": "那天已有安排"})),
            party: Party::Seller,
            moves: &[(S::Paid, S::Refunding)],
        },
        Row {
            path: "refund/approve",
            body: None,
            party: Party::Seller,
            moves: &[(S::RefundRequested, S::Refunding)],
        },
        Row {
            path: "refund/decline",
            body: Some(json!({"reason": "已按约定完成拍摄"})),
            party: Party::Seller,
            moves: &[(S::RefundRequested, S::Accepted)],
        },
    ]
}

/// Every action route, from every state, as buyer, seller and a stranger: the allowed pairs
/// answer 200 with the table's next state on the timeline by the caller (stored, entries moved);
/// every other pair is 404 (a stranger), 403 (the other party) or 409 (the wrong state) and the
/// stored order is unchanged.
///
/// The `payments` function's routes call the provider, so the seeded orders hold what those
/// calls need (see [`World::seed`]): a paid order's payment is a real trade at the WeChat Pay
/// stand-in, an unpaid one has a started payment. An allowed pair into `refunding` then goes on
/// to where the provider's answer leads: the stand-in refunds (PROCESSING, then its
/// notification), so the order ends `refunded` with the refund succeeded, and its list entries
/// are checked there; a cancel of an unpaid order must have closed its payment at the provider.
async fn the_whole_state_machine_is_walked_over_http(backend: Backend) {
    use OrderStatus as S;
    let w = World::new(backend).await;
    let mut allowed = 0;
    for status in OrderStatus::ALL {
        for row in rows() {
            for caller in [Party::Buyer, Party::Seller, Party::Stranger] {
                let order = w.seed(status).await;
                let id = order.id.to_string();
                let before = w.stored(&id).await.unwrap();
                let who = match caller {
                    Party::Buyer => &w.buyer,
                    Party::Seller => &w.seller,
                    Party::Stranger => &w.stranger,
                };
                let path = format!("/v1/orders/{id}/{}", row.path);
                let reply = w.call(who, "POST", &path, row.body.clone()).await;
                let to = row
                    .moves
                    .iter()
                    .find(|(from, _)| *from == status)
                    .map(|(_, to)| *to);
                let case = format!("{} from {} as {caller:?}", row.path, status.as_str());
                match (caller, to) {
                    (Party::Stranger, _) => {
                        assert_eq!(
                            (reply.status, reply.error_code()),
                            (404, "not_found"),
                            "{case}"
                        )
                    }
                    (caller, Some(to)) if caller == row.party => {
                        allowed += 1;
                        assert_eq!(reply.status, 200, "{case}: {reply:?}");
                        let actor = match caller {
                            Party::Buyer => "buyer",
                            _ => "seller",
                        };
                        let timeline = reply.body["timeline"].as_array().unwrap();
                        let step = timeline.get(order.timeline.len()).unwrap();
                        assert_eq!(
                            (&step["status"], &step["actor"]),
                            (&json!(to.as_str()), &json!(actor)),
                            "{case}"
                        );
                        let reason = row.body.as_ref().map(|b| b["reason"].clone());
                        assert_eq!(step.get("reason").cloned(), reason, "{case}");
                        // The order as the caller sees it: with the other party's card.
                        let (other, other_id) = match caller {
                            Party::Buyer => ("seller", &w.seller.id),
                            _ => ("buyer", &w.buyer.id),
                        };
                        assert_eq!(reply.body[other]["id"], json!(other_id), "{case}");
                        // A refund is asked of the provider at once: the stand-in answers
                        // PROCESSING (the reply may already show its notification's outcome)
                        // and confirms it by notification a moment later.
                        let settled = match to {
                            S::Refunding => S::Refunded,
                            other => other,
                        };
                        assert!(
                            [json!(to.as_str()), json!(settled.as_str())]
                                .contains(&reply.body["status"]),
                            "{case}: {reply:?}"
                        );
                        let stored = w.until(&id, settled).await;
                        if settled == to {
                            assert_eq!(stored.version, order.version + 1, "{case}");
                            assert_eq!(reply.body["status"], json!(to.as_str()), "{case}");
                        } else {
                            assert_eq!(stored.refunded_fen, stored.amount_fen, "{case}");
                            let refund = stored.refunds.last().unwrap();
                            assert_eq!(refund.status, RefundStatus::Succeeded, "{case}");
                            assert_eq!(refund.out_refund_no, format!("{id}R01"), "{case}");
                        }
                        if status == S::PendingPayment {
                            // The cancel closed the started payment at the provider first.
                            let record =
                                payments::record_of(w.store(), &order.id, Provider::Wechat)
                                    .await
                                    .unwrap()
                                    .unwrap();
                            assert_eq!(record.state, PaymentState::Closed, "{case}");
                        }
                        let to = settled;
                        for (party, role) in [(&w.buyer, "buyer"), (&w.seller, "seller")] {
                            assert_eq!(w.entries(party, role, Some(to.as_str())).await[0], id);
                            assert!(
                                !w.entries(party, role, Some(status.as_str()))
                                    .await
                                    .contains(&id),
                                "{case}: the {role}'s {status:?} entry stays"
                            );
                        }
                        continue;
                    }
                    (caller, _) if caller == row.party => assert_eq!(
                        (reply.status, reply.error_code()),
                        (409, "invalid_order_state"),
                        "{case}"
                    ),
                    _ => assert_eq!(
                        (reply.status, reply.error_code()),
                        (403, "forbidden"),
                        "{case}"
                    ),
                }
                assert_eq!(w.stored(&id).await.unwrap(), before, "{case}: changed");
            }
        }
    }
    let rows_allowed: usize = rows().iter().map(|r| r.moves.len()).sum();
    assert_eq!(allowed, rows_allowed);
}

async fn strangers_see_no_order_and_ids_of_any_shape_name_none(backend: Backend) {
    let w = World::new(backend).await;
    let order = w.order(1).await;
    let id = order["id"].as_str().unwrap();
    let before = w.stored(id).await.unwrap();
    let unknown = OrderId::generate().to_string();
    for path in [
        format!("/v1/orders/{id}"),
        format!("/v1/orders/{unknown}"),
        "/v1/orders/not-an-order".to_owned(),
        format!("/v1/orders/{}", id.to_lowercase()),
    ] {
        let reply = w.call(&w.stranger, "GET", &path, None).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (404, "not_found"),
            "{path}"
        );
        // The buyer's own order under a malformed or unknown id is no order either.
        if !path.ends_with(id) {
            let reply = w.call(&w.buyer, "GET", &path, None).await;
            assert_eq!(reply.status, 404, "{path}");
            let reply = w
                .call(&w.seller, "POST", &format!("{path}/accept"), None)
                .await;
            assert_eq!(reply.status, 404, "{path}");
        }
    }
    let reply = w
        .server
        .api
        .call("GET", &format!("/v1/orders/{id}"), None, None)
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(w.stored(id).await.unwrap(), before);
}

async fn action_bodies_are_checked(backend: Backend) {
    let w = World::new(backend).await;
    // The payments function's routes: a bad body is refused before any provider is called.
    let paid = w.seed(OrderStatus::Paid).await.id.to_string();
    let requested = w.seed(OrderStatus::RefundRequested).await.id.to_string();
    let paid_before = w.stored(&paid).await.unwrap();
    let requested_before = w.stored(&requested).await.unwrap();
    let reasons = [
        (None, 400, ""),
        (Some(json!({})), 422, "reason"),
        (Some(json!({"reason": "   "})), 422, "reason"),
        (Some(json!({"reason": "字".repeat(201)})), 422, "reason"),
        (
            Some(json!({"reason": "x", "amount_fen": 1})),
            422,
            "amount_fen",
        ),
    ];
    for (path, id) in [("decline", &paid), ("refund/decline", &requested)] {
        for (body, status, name) in reasons.clone() {
            let reply = w
                .call(
                    &w.seller,
                    "POST",
                    &format!("/v1/orders/{id}/{path}"),
                    body.clone(),
                )
                .await;
            assert_eq!(
                (reply.status, reply.field()),
                (status, name),
                "{path} {body:?}: {reply:?}"
            );
        }
    }
    for (who, path, id) in [
        (&w.buyer, "cancel", &paid),
        (&w.seller, "refund/approve", &requested),
    ] {
        for raw in ["{\"reason\": \"x\"}", "[]", "{"] {
            let reply = w
                .server
                .api
                .raw(
                    "POST",
                    &format!("/v1/orders/{id}/{path}"),
                    Some(&who.token),
                    Some(raw.into()),
                )
                .await;
            assert!(
                [400, 422].contains(&reply.status),
                "{path} {raw}: {reply:?}"
            );
        }
    }
    assert_eq!(w.stored(&paid).await.unwrap(), paid_before);
    assert_eq!(w.stored(&requested).await.unwrap(), requested_before);
    let gateway = w.server.app().payments.gateway(Provider::Wechat).unwrap();
    for id in [&paid, &requested] {
        let refund = gateway.refund_query(id, &format!("{id}R01")).await.unwrap();
        assert_eq!(
            refund,
            RefundState::NotFound,
            "no refund asked of the provider"
        );
    }
    let accepted = w.seed(OrderStatus::Accepted).await.id.to_string();
    let refund = format!("/v1/orders/{accepted}/refund");
    let api = &w.server.api;
    for (body, status, name) in [
        (None, 400, ""),
        (Some(json!({})), 422, "reason"),
        (Some(json!({"reason": "   "})), 422, "reason"),
        (Some(json!({"reason": "字".repeat(201)})), 422, "reason"),
        (Some(json!({"reason": 5})), 422, "reason"),
        (
            Some(json!({"reason": "x", "amount_fen": 1})),
            422,
            "amount_fen",
        ),
    ] {
        let reply = w.call(&w.buyer, "POST", &refund, body.clone()).await;
        assert_eq!((reply.status, reply.field()), (status, name), "{body:?}");
    }
    let paid = w.seed(OrderStatus::Paid).await.id.to_string();
    let accept = format!("/v1/orders/{paid}/accept");
    for (raw, status) in [("{\"x\": 1}", 422), ("[]", 422), ("{", 400), ("\"\"", 422)] {
        let reply = api
            .raw("POST", &accept, Some(&w.seller.token), Some(raw.into()))
            .await;
        assert_eq!(reply.status, status, "{raw}: {reply:?}");
    }
    let accepted_now = api
        .raw("POST", &accept, Some(&w.seller.token), Some("{}".into()))
        .await;
    assert_eq!(accepted_now.status, 200, "{accepted_now:?}");
    // Both changes recorded what was asked.
    let asked = w
        .call(
            &w.buyer,
            "POST",
            &refund,
            Some(json!({"reason": "  没有按时到场  "})),
        )
        .await;
    assert_eq!(asked.status, 200, "{asked:?}");
    assert_eq!(
        asked.body["refund_request"]["reason"],
        json!("没有按时到场")
    );
    let last = asked.body["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["reason"], json!("没有按时到场"));
    assert_eq!(asked.body["seller"]["id"], json!(w.seller.id));
    let stored = w.order_record(&accepted).await;
    assert_eq!(stored.status, OrderStatus::RefundRequested);
    // The seller's view answers the seller's action.
    assert_eq!(accepted_now.body["buyer"]["id"], json!(w.buyer.id));
}

/// Racing changes of one order: exactly one applies; the others are 409 and change nothing.
async fn racing_actions_change_the_order_once(backend: Backend) {
    let w = World::new(backend).await;
    let paid = w.seed(OrderStatus::Paid).await;
    let path = format!("/v1/orders/{}/accept", paid.id);
    let replies =
        futures_util::future::join_all((0..8).map(|_| w.call(&w.seller, "POST", &path, None)))
            .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "{replies:?}");
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(reply.status, 409, "{reply:?}");
        assert!(
            ["order_changed", "invalid_order_state", "write_conflict"]
                .contains(&reply.error_code()),
            "{reply:?}"
        );
    }
    let once = w.order_record(paid.id.as_str()).await;
    assert_eq!(once.status, OrderStatus::Accepted);
    assert_eq!(once.version, paid.version + 1);
    let accepted_steps = once
        .timeline
        .iter()
        .filter(|s| s.status == OrderStatus::Accepted)
        .count();
    assert_eq!(accepted_steps, 1);

    // Confirm and refund racing on an accepted order: one of them.
    let accepted = w.seed(OrderStatus::Accepted).await;
    let confirm_path = format!("/v1/orders/{}/confirm", accepted.id);
    let refund_path = format!("/v1/orders/{}/refund", accepted.id);
    let (confirm, refund) = tokio::join!(
        w.call(&w.buyer, "POST", &confirm_path, None),
        w.call(
            &w.buyer,
            "POST",
            &refund_path,
            Some(json!({"reason": "不要了"}))
        ),
    );
    let statuses = [confirm.status, refund.status];
    assert!(
        statuses == [200, 409] || statuses == [409, 200],
        "{confirm:?} {refund:?}"
    );
    let stored = w.order_record(accepted.id.as_str()).await;
    assert_eq!(stored.version, accepted.version + 1);
    let winner = if confirm.status == 200 {
        OrderStatus::Completed
    } else {
        OrderStatus::RefundRequested
    };
    assert_eq!(stored.status, winner);
    for (party, role) in [(&w.buyer, "buyer"), (&w.seller, "seller")] {
        let mut holding = Vec::new();
        for status in OrderStatus::ALL {
            if w.entries(party, role, Some(status.as_str()))
                .await
                .contains(&accepted.id.to_string())
            {
                holding.push(status);
            }
        }
        assert_eq!(holding, [winner], "{role}");
    }

    // A transition written from a version that is no longer stored: 409 order_changed.
    let times = &w.server.app().config.orders;
    let now = OffsetDateTime::now_utc();
    let first = paid.transition(&Change::new(Action::Accept, Actor::Seller, now), times);
    let err = orders::commit(w.store(), &paid, &first.unwrap(), Vec::new())
        .await
        .unwrap_err();
    assert_eq!((err.status().as_u16(), err.code()), (409, "order_changed"));
    assert_eq!(w.order_record(paid.id.as_str()).await, once);
}

/// `amount_fen` is price × quantity, checked: an overflow is refused, never wrapped, and so is a
/// total beyond what one payment may be.
#[test]
fn the_amount_is_checked_arithmetic() {
    let seller = UserId::generate();
    let mut listing: listings::Listing = serde_json::from_value(json!({
        "id": ListingId::generate(), "owner_id": seller, "kind": "service",
        "title": "t", "description": "", "category": "photography", "city": "北京",
        "price_fen": 100_000_000, "status": "published", "version": 1,
        "created_at": "", "updated_at": "",
    }))
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let body = NewOrder {
        listing_id: listing.id.to_string(),
        quantity: 99,
        remark: String::new(),
        service_date: None,
    };
    let buyer = UserId::generate();
    let times = Default::default();
    let order_of = |listing: &listings::Listing, quantity: i64| {
        let body = NewOrder {
            quantity,
            ..body.clone()
        };
        let checked = body.check(now).unwrap();
        create::new_order(listing, &buyer, &checked, &times, &Default::default(), now)
    };
    // At most what one payment may be (2147483647 fen, WeChat Pay's 32-bit amount.total): 21 of
    // the most expensive listing, not 22 nor 99 (9900000000 fen).
    let order = order_of(&listing, 21).unwrap();
    assert_eq!(order.amount_fen, Fen::from_fen(2_100_000_000));
    for quantity in [22, 99] {
        let err = order_of(&listing, quantity).unwrap_err();
        assert!(
            matches!(&err, renji_shared::error::Error::Invalid { field, .. } if field == "quantity"),
            "{quantity}: {err:?}"
        );
    }
    listing.price_fen = Some(Fen::from_fen(2_147_483_647));
    assert!(order_of(&listing, 1).is_ok());
    // A price no listing can hold today, to reach the overflow.
    listing.price_fen = Some(Fen::from_fen(i64::MAX / 2));
    let err = order_of(&listing, 99).unwrap_err();
    assert_eq!(err.status().as_u16(), 422);
    // Today in China is not yesterday in UTC: at 23:30 UTC it is already tomorrow there.
    let late = time::macros::datetime!(2026-11-29 23:30 UTC);
    assert!(create::service_date("2026-11-29", late).is_err());
    assert!(create::service_date("2026-11-30", late).is_ok());
}

on_both_stores!(
    creation_prices_the_order_and_writes_it_once,
    every_bad_creation_is_refused_and_writes_nothing,
    idempotency_keys_make_one_order,
    lists_by_role_and_status_page_newest_first,
    the_whole_state_machine_is_walked_over_http,
    strangers_see_no_order_and_ids_of_any_shape_name_none,
    action_bodies_are_checked,
    racing_actions_change_the_order_once,
);
