//! Refunds after an order's split, on both stores, against the local server and its WeChat Pay
//! and Alipay stand-ins (`domain::settlement::refunds`): a WeChat merchant receiver returns the
//! seller's part first, a personal receiver leaves a receivable (staff's route, audited), Alipay
//! takes the royalty back with the refund; a refund larger than the unsplit amount (`RULE_LIMIT`)
//! unfreezes the rest and goes through. Every path ends with the ledger balanced. The daily
//! reconciliation against WeChat Pay's bill and Alipay's settle query: silent when all agree, one
//! staff alarm for a planted mismatch, once a day.
//!
//! The split itself is made here through the port (`app.payments.settlement`) and recorded on
//! the order as the split job records it (the settlement `paid`, its ledger entries).

use std::time::Duration;

use renji_shared::domain::audit::{self, Filter};
use renji_shared::domain::orders::{self, Order, OrderStatus};
use renji_shared::domain::settlement::reconcile;
use renji_shared::domain::settlement::refunds::{self, StaffRefund, TakeBack};
use renji_shared::domain::settlement::{
    ledger, LedgerEntry, LedgerKind, OrderSettlement, SettleState, Shares, Totals,
};
use renji_shared::ids::OrderId;
use renji_shared::money::Fen;
use renji_shared::payments::Provider;
use renji_shared::settlement::{
    return_no, split_no, unfreeze_no, Receiver, ReceiverKind, ReturnState, Share, SplitRequest,
    SplitState,
};
use renji_shared::store::{keys, Records};
use renji_shared::App;
use renji_tests::{on_both_stores, service, Backend, LocalServer, Member};
use serde_json::{json, Value};
use time::OffsetDateTime;

const PRICE: i64 = 288_000;

struct World {
    server: LocalServer,
    seller: Member,
    buyer: Member,
    listing: String,
    http: reqwest::Client,
}

impl World {
    async fn new(backend: Backend) -> Self {
        let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
        let seller = server.member("seller", true).await;
        server.bind_alipay(&seller).await;
        let buyer = server.member("buyer", false).await;
        let listing = server
            .api
            .create_listing(&seller, service("婚礼跟拍"))
            .await["id"]
            .as_str()
            .expect("listing id")
            .to_owned();
        World {
            server,
            seller,
            buyer,
            listing,
            http: reqwest::Client::new(),
        }
    }

    fn app(&self) -> &App {
        self.server.app()
    }

    async fn call(&self, token: &str, path: &str, body: Option<Value>) -> renji_tests::Reply {
        self.server.api.call("POST", path, Some(token), body).await
    }

    /// A completed order paid through `channel`.
    async fn completed(&self, channel: &str) -> OrderId {
        let id = self
            .server
            .completed_order_through(&self.seller, &self.buyer, &self.listing, channel)
            .await;
        OrderId::parse(&id).unwrap()
    }

    async fn order(&self, id: &OrderId) -> Order {
        orders::get(&self.app().store, id).await.unwrap().unwrap()
    }

    /// Splits the seller's share of `id` to `receiver` through the port (the rest stays
    /// frozen: `finish = false`, as the split job does before it unfreezes) and records it on the
    /// order as the job does: the settlement `paid` and its ledger entries.
    async fn split(&self, id: &OrderId, receiver: Receiver) -> Shares {
        let order = self.order(id).await;
        let provider = receiver.kind.provider();
        let port = self.app().payments.settlement(provider).unwrap();
        port.add_receiver(&receiver).await.unwrap();
        let terms = order.settle.expect("settle terms");
        let shares = Shares::of(order.amount_fen, &terms);
        let transaction_id = order.payment.clone().unwrap().transaction_id;
        let request = SplitRequest {
            order_no: id.to_string(),
            transaction_id: transaction_id.clone(),
            out_order_no: split_no(id.as_str()),
            shares: vec![Share {
                receiver: receiver.clone(),
                amount: shares.seller_fen,
                description: "服务款".into(),
            }],
            finish: false,
        };
        // WeChat splits nothing within a moment of the payment.
        let mut answer = None;
        for _ in 0..40 {
            match port.split(&request).await {
                Ok(a) => {
                    answer = Some(a);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        answer.expect("split accepted");
        let done = port
            .query_split(&transaction_id, &request.out_order_no)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.state, SplitState::Finished);
        let now = orders::rfc3339(OffsetDateTime::now_utc());
        let mut next = order.clone();
        next.version += 1;
        next.settlement = Some(OrderSettlement {
            state: SettleState::Paid,
            provider,
            attempt: 1,
            out_order_no: request.out_order_no.clone(),
            receiver: Some(receiver),
            shares,
            failure: None,
            requested_at: Some(now.clone()),
            shared_at: Some(now.clone()),
            unfreeze_no: None,
            finished_at: Some(now.clone()),
            checks: 1,
        });
        let reference = format!("split:{}", request.out_order_no);
        let entries = [
            (LedgerKind::Commission, shares.commission_fen),
            (LedgerKind::ProviderFee, shares.fee_fen),
            (LedgerKind::SellerPayable, shares.seller_fen),
            (LedgerKind::SellerPaid, shares.seller_fen),
        ];
        let writes = entries
            .iter()
            .map(|(kind, amount)| {
                LedgerEntry::new(id, *kind, reference.as_str(), *amount, &now)
                    .write()
                    .unwrap()
            })
            .collect();
        orders::commit(&self.app().store, &order, &next, writes)
            .await
            .unwrap();
        assert!(self.totals(id).await.balances());
        shares
    }

    /// Waits for WeChat Pay's notification alone (no job asks) to end the refund under way.
    async fn notified_refund(&self, id: &OrderId) -> Order {
        for _ in 0..100 {
            let order = self.order(id).await;
            if order.status != OrderStatus::Refunding {
                return order;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no notification ended the refund of {id}");
    }

    /// Makes the WeChat Pay stand-in fail `id`'s refunds (`true`) or pay them again.
    async fn fail_refunds(&self, id: &OrderId, fail: bool) {
        let reply = self
            .http
            .post(format!(
                "{}/sandbox/fail-refunds",
                self.server.running.wechatpay_base
            ))
            .json(&json!({"out_trade_no": id.to_string(), "fail": fail}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }

    async fn totals(&self, id: &OrderId) -> Totals {
        Totals::of(&ledger::entries(&self.app().store, id).await.unwrap())
    }

    /// Waits for the refund under way to end (WeChat's notification arrives a moment later; the
    /// order jobs ask too).
    async fn settled_refund(&self, id: &OrderId) -> Order {
        for i in 0..100 {
            let order = self.order(id).await;
            if order.status != OrderStatus::Refunding {
                return order;
            }
            if i % 20 == 19 {
                let app = self
                    .server
                    .running
                    .function_app("OrderJobsFunction")
                    .expect("order jobs");
                let later = OffsetDateTime::now_utc() + time::Duration::hours(2);
                renji_shared::domain::orders::jobs::run(app, later, Default::default())
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the refund of {id} did not end");
    }
}

fn wechat_person() -> Receiver {
    Receiver {
        kind: ReceiverKind::WechatOpenid,
        account: "oSeller00000000000000000001".into(),
        name: None,
    }
}

fn wechat_merchant() -> Receiver {
    Receiver {
        kind: ReceiverKind::WechatMerchant,
        account: "1900000109".into(),
        name: Some("北京某某摄影工作室".into()),
    }
}

fn alipay_user() -> Receiver {
    Receiver {
        kind: ReceiverKind::AlipayUserId,
        account: "2088101126765726".into(),
        name: None,
    }
}

/// A personal WeChat receiver cannot be returned from: staff refund it all through the route;
/// the refund is larger than what is unsplit (only the commission is still frozen), so the rest
/// is unfrozen first, and the seller's part is a receivable, audited.
async fn a_personal_receiver_leaves_a_receivable(backend: Backend) {
    let w = World::new(backend).await;
    let id = w.completed("wechat").await;
    let shares = w.split(&id, wechat_person()).await;
    let api = &w.server.api;
    let admin = api.staff_token("staff:alice:admin").await;
    let support = api.staff_token("staff:sam:support").await;
    // Once split, the order cannot be disputed (a dispute's refund would not take the seller's
    // share back): only the admin's refund below does.
    let dispute = w
        .server
        .api
        .call(
            "POST",
            "/v1/tickets",
            Some(&w.buyer.token),
            Some(json!({"kind": "dispute", "subject": "质量问题", "text": "照片模糊", "order_id": id})),
        )
        .await;
    assert_eq!(
        (dispute.status, dispute.error_code()),
        (409, "settlement_started"),
        "{dispute:?}"
    );
    assert_eq!(w.order(&id).await.status, OrderStatus::Completed);
    let path = format!("/admin/v1/orders/{id}/refund");
    // Support may decide disputes, not refund after the split.
    let refused = w
        .call(&support, &path, Some(json!({"reason": "服务未完成"})))
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    // A part larger than what remains is refused naming the field.
    let too_much = w
        .call(
            &admin,
            &path,
            Some(json!({"amount_fen": PRICE + 1, "reason": "服务未完成"})),
        )
        .await;
    assert_eq!(
        (too_much.status, too_much.field()),
        (422, "amount_fen"),
        "{too_much:?}"
    );
    let reply = w
        .call(&admin, &path, Some(json!({"reason": "服务未完成"})))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body["refunds"][0]["after_split"]["take_back"],
        json!("receivable")
    );
    let order = w.settled_refund(&id).await;
    assert_eq!(order.status, OrderStatus::Refunded, "{order:?}");
    assert_eq!(order.refunded_fen.get(), PRICE);
    let after = order.refunds[0].after_split.clone().unwrap();
    assert_eq!(after.take_back, TakeBack::Receivable);
    assert_eq!(after.seller_part_fen, shares.seller_fen);
    assert_eq!(after.receivable(), shares.seller_fen);
    // The rest was unfrozen by the refund path (the split job's own number).
    let port = w.app().payments.settlement(Provider::Wechat).unwrap();
    let tx = order.payment.clone().unwrap().transaction_id;
    let unfrozen = port
        .query_split(&tx, &unfreeze_no(id.as_str()))
        .await
        .unwrap()
        .expect("the unfreeze");
    assert_eq!(unfrozen.state, SplitState::Finished);
    // The ledger: Renji gave back its commission's part and is owed the seller's; the provider
    // gave its whole fee back with the refund of everything.
    let t = w.totals(&id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(t.refunded, PRICE);
    assert_eq!(t.seller_paid, shares.seller_fen.get());
    assert_eq!(t.receivable, shares.seller_fen.get());
    assert_eq!(t.fee, 0, "{t:?}");
    assert_eq!(
        t.commission_kept,
        shares.commission_fen.get() - PRICE + shares.seller_fen.get() - t.receivable
    );
    // Staff see the receivable in the order's audit trail (beside their own call).
    let filter = Filter::parse(None, Some(&format!("order:{id}"))).unwrap();
    let (trail, _) = audit::list(&w.app().store, &filter, 50, None)
        .await
        .unwrap();
    let actions: Vec<&str> = trail.iter().filter_map(|r| r["action"].as_str()).collect();
    assert!(actions.contains(&"order.refund_receivable"), "{actions:?}");
    assert!(
        actions.contains(&"POST /admin/v1/orders/{id}/refund"),
        "{actions:?}"
    );
    // Refunded in full: nothing more to refund.
    let again = w
        .call(&admin, &path, Some(json!({"reason": "再退一次"})))
        .await;
    assert_eq!(again.status, 409, "{again:?}");
}

/// A WeChat merchant receiver returns the seller's part before each refund (a part, then the
/// rest); both refunds exceed what is unsplit.
async fn a_merchant_receiver_returns_then_the_refund_is_paid(backend: Backend) {
    let w = World::new(backend).await;
    let id = w.completed("wechat").await;
    let shares = w.split(&id, wechat_merchant()).await;
    let now = OffsetDateTime::now_utc();
    let part = 100_000;
    let first = refunds::staff_refund(
        w.app(),
        &id,
        StaffRefund {
            amount: Some(Fen::from_fen(part)),
            reason: "部分服务未完成".into(),
        },
        now,
    )
    .await
    .unwrap();
    assert!(first.refunds[0]
        .after_split
        .as_ref()
        .unwrap()
        .returned_fen
        .is_some());
    let order = w.settled_refund(&id).await;
    assert_eq!(order.status, OrderStatus::Completed, "{order:?}");
    assert_eq!(order.refunded_fen.get(), part);
    let seller_part = part - part / 10;
    let after = order.refunds[0].after_split.clone().unwrap();
    assert_eq!(after.take_back, TakeBack::Return);
    assert_eq!(after.returned_fen, Some(Fen::from_fen(seller_part)));
    assert_eq!(after.receivable().get(), 0);
    let port = w.app().payments.settlement(Provider::Wechat).unwrap();
    let returned = port
        .query_return(&split_no(id.as_str()), &return_no(id.as_str(), 1))
        .await
        .unwrap()
        .expect("the return");
    assert_eq!(returned.state, ReturnState::Success);
    assert_eq!(returned.amount.get(), seller_part);
    let t = w.totals(&id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(t.seller_paid, shares.seller_fen.get() - seller_part);
    assert_eq!(t.receivable, 0);
    // The order is still settled: the rest can be refunded too, the seller returning the rest.
    refunds::staff_refund(
        w.app(),
        &id,
        StaffRefund {
            amount: None,
            reason: "全部退款".into(),
        },
        now,
    )
    .await
    .unwrap();
    let order = w.settled_refund(&id).await;
    assert_eq!(order.status, OrderStatus::Refunded, "{order:?}");
    let t = w.totals(&id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!((t.refunded, t.seller_paid, t.receivable), (PRICE, 0, 0));
    assert_eq!(t.commission_kept, -t.fee);
}

/// A refund after the split that the provider fails, after the merchant receiver returned the
/// seller's part: the order is `refund_failed` and nothing is owed by the seller yet; an
/// administrator asks again (the same amount, a new number, no second return) and the ledger
/// balances.
async fn a_failed_refund_after_the_split_is_asked_again(backend: Backend) {
    let w = World::new(backend).await;
    let id = w.completed("wechat").await;
    let shares = w.split(&id, wechat_merchant()).await;
    let admin = w.server.api.staff_token("staff:alice:admin").await;
    w.fail_refunds(&id, true).await;
    let path = format!("/admin/v1/orders/{id}/refund");
    let part = 30_000;
    let reply = w
        .call(
            &admin,
            &path,
            Some(json!({"amount_fen": part, "reason": "部分未完成"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let order = w.settled_refund(&id).await;
    assert_eq!(order.status, OrderStatus::RefundFailed, "{order:?}");
    assert_eq!(order.refunded_fen.get(), 0);
    let seller_part = part - part / 10;
    let after = order.refunds[0].after_split.clone().unwrap();
    assert_eq!(after.returned_fen, Some(Fen::from_fen(seller_part)));
    // The seller's part is back with Renji, the buyer not yet refunded: held for the buyer.
    let t = w.totals(&id).await;
    assert_eq!((t.refunded, t.held()), (0, seller_part), "{t:?}");
    // A retry refunds exactly what failed.
    let other = w
        .call(
            &admin,
            &path,
            Some(json!({"amount_fen": part + 1, "reason": "再试"})),
        )
        .await;
    assert_eq!(
        (other.status, other.field()),
        (422, "amount_fen"),
        "{other:?}"
    );
    assert_eq!(w.order(&id).await.status, OrderStatus::RefundFailed);
    w.fail_refunds(&id, false).await;
    let retry = w.call(&admin, &path, Some(json!({"reason": "再试"}))).await;
    assert_eq!(retry.status, 200, "{retry:?}");
    let order = w.settled_refund(&id).await;
    assert_eq!(order.status, OrderStatus::Completed, "{order:?}");
    assert_eq!(order.refunded_fen.get(), part);
    assert_eq!(order.refunds.len(), 2);
    assert_eq!(order.refunds[1].amount_fen.get(), part);
    assert_ne!(
        order.refunds[1].out_refund_no,
        order.refunds[0].out_refund_no
    );
    // The return was not asked twice: one return, of the seller's part.
    let port = w.app().payments.settlement(Provider::Wechat).unwrap();
    assert!(port
        .query_return(&split_no(id.as_str()), &return_no(id.as_str(), 2))
        .await
        .unwrap()
        .is_none());
    let t = w.totals(&id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(
        (t.refunded, t.seller_paid, t.receivable),
        (part, shares.seller_fen.get() - seller_part, 0)
    );
}

/// A personal receiver's refund that fails leaves no receivable (nor its audit record); the
/// retry that succeeds records it once.
async fn a_receivable_is_recorded_when_the_refund_succeeds(backend: Backend) {
    let w = World::new(backend).await;
    let id = w.completed("wechat").await;
    w.split(&id, wechat_person()).await;
    let admin = w.server.api.staff_token("staff:alice:admin").await;
    let receivables = || async {
        let filter = Filter::parse(None, Some(&format!("order:{id}"))).unwrap();
        let (trail, _) = audit::list(&w.app().store, &filter, 50, None)
            .await
            .unwrap();
        trail
            .iter()
            .filter(|r| r["action"] == json!("order.refund_receivable"))
            .count()
    };
    w.fail_refunds(&id, true).await;
    let path = format!("/admin/v1/orders/{id}/refund");
    let body = json!({"amount_fen": 10_000, "reason": "部分未完成"});
    assert_eq!(w.call(&admin, &path, Some(body)).await.status, 200);
    assert_eq!(
        w.settled_refund(&id).await.status,
        OrderStatus::RefundFailed
    );
    assert_eq!(receivables().await, 0);
    assert_eq!(w.totals(&id).await.receivable, 0);
    w.fail_refunds(&id, false).await;
    assert_eq!(
        w.call(&admin, &path, Some(json!({"reason": "再试"})))
            .await
            .status,
        200
    );
    // WeChat Pay's notification of the success applies it (the function may write the audit
    // record it brings): no job needed.
    assert_eq!(w.notified_refund(&id).await.status, OrderStatus::Completed);
    assert_eq!(receivables().await, 1);
    let t = w.totals(&id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(t.receivable, 9_000);
}

/// Alipay takes the royalty back with the refund itself (`refund_royalty_parameters` naming the
/// seller's account); staff may not refund a completed order that is not split yet.
async fn alipay_takes_the_royalty_back_with_the_refund(backend: Backend) {
    let w = World::new(backend).await;
    let unsplit = w.completed("alipay").await;
    let refused = refunds::staff_refund(
        w.app(),
        &unsplit,
        StaffRefund {
            amount: None,
            reason: "x".into(),
        },
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), "not_settled");
    assert_eq!(w.order(&unsplit).await.status, OrderStatus::Completed);

    let id = w.completed("alipay").await;
    let shares = w.split(&id, alipay_user()).await;
    refunds::staff_refund(
        w.app(),
        &id,
        StaffRefund {
            amount: None,
            reason: "服务未完成".into(),
        },
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let order = w.settled_refund(&id).await;
    assert_eq!(order.status, OrderStatus::Refunded, "{order:?}");
    let after = order.refunds[0].after_split.clone().unwrap();
    assert_eq!(after.take_back, TakeBack::Royalty);
    assert_eq!(after.seller_part_fen, shares.seller_fen);
    let t = w.totals(&id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!((t.refunded, t.seller_paid, t.receivable), (PRICE, 0, 0));
}

/// Refunds in parts after the split take back what one refund of their sum would (the rounding
/// rule on the running amounts, not on each part), and the seller's earnings show what they keep.
async fn refunds_in_parts_round_as_one_and_earnings_follow(backend: Backend) {
    let w = World::new(backend).await;
    let id = w.completed("alipay").await;
    let shares = w.split(&id, alipay_user()).await;
    let now = OffsetDateTime::now_utc();
    // Ten 1-fen refunds: each alone would round the commission up to the whole fen and take
    // nothing from the seller; together they are 10 fen, of which the seller's share is 9.
    for _ in 0..10 {
        refunds::staff_refund(
            w.app(),
            &id,
            StaffRefund {
                amount: Some(Fen::from_fen(1)),
                reason: "差价".into(),
            },
            now,
        )
        .await
        .unwrap();
        let order = w.settled_refund(&id).await;
        assert_eq!(order.status, OrderStatus::Completed, "{order:?}");
    }
    let order = w.order(&id).await;
    let parts: i64 = order
        .refunds
        .iter()
        .map(|r| r.after_split.as_ref().unwrap().seller_part_fen.get())
        .sum();
    let terms = order.settle.unwrap();
    let share = |net: i64| Shares::of(Fen::from_fen(net), &terms).seller_fen.get();
    assert_eq!(parts, share(PRICE) - share(PRICE - 10));
    assert_eq!(parts, 9);
    let t = w.totals(&id).await;
    assert!(t.balances(), "{t:?}");
    let kept = shares.seller_fen.get() - 9;
    assert_eq!((t.refunded, t.seller_paid, t.receivable), (10, kept, 0));
    // The seller's earnings: what they keep, not the split-time share.
    let (sums, items, _) = renji_shared::domain::settlement::earnings::earnings(
        &w.app().store,
        &order.seller_id,
        20,
        None,
    )
    .await
    .unwrap();
    assert_eq!(sums["paid_fen"], json!(kept), "{sums}");
    let item = items.iter().find(|i| i["order_id"] == json!(id)).unwrap();
    assert_eq!(item["seller_fen"], json!(kept), "{item}");
    assert_eq!(item["refunded_fen"], json!(10));
    assert_eq!(
        item["seller_fen"].as_i64().unwrap(),
        t.seller_paid - t.receivable
    );
}

/// The `Earning` schema of `openapi.yaml`: its ledger's property names, and the item states.
fn earning_schema() -> (Vec<String>, Vec<String>) {
    let spec: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap(),
    )
    .unwrap();
    let earning = &spec["components"]["schemas"]["Earning"]["properties"];
    let mut ledger: Vec<String> = earning["ledger"]["properties"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    ledger.sort();
    let states = earning["state"]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (ledger, states)
}

/// The seller's earnings item of `id`, through `GET /v1/me/earnings`, checked against the
/// `Earning` schema's ledger fields and states.
async fn earning(w: &World, id: &OrderId) -> Value {
    let reply = w
        .server
        .api
        .call("GET", "/v1/me/earnings", Some(&w.seller.token), None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let item = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["order_id"] == json!(id))
        .cloned()
        .expect("the order's earning");
    let (ledger, states) = earning_schema();
    let mut shown: Vec<String> = item["ledger"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    shown.sort();
    assert_eq!(shown, ledger, "the ledger's fields are openapi's");
    assert!(
        states.iter().any(|s| item["state"] == json!(s)),
        "{item} not in {states:?}"
    );
    item
}

/// After a refund after the split, the seller's earnings agree with their ledger: a personal
/// receiver's seller part is owed back (`receivable_fen` in the ledger, `seller_fen = seller_paid
/// − receivable`, `commission_fen = commission_kept + fee + receivable`); an Alipay royalty taken
/// back with the refund shows as `returned_fen` in staff's answer once the refund succeeded.
async fn earnings_after_a_refund_after_the_split_agree_with_the_ledger(backend: Backend) {
    let w = World::new(backend).await;
    let admin = w.server.api.staff_token("staff:alice:admin").await;
    let body = json!({"amount_fen": 1_000, "reason": "补偿"});
    for (channel, receiver) in [("wechat", wechat_person()), ("alipay", alipay_user())] {
        let id = w.completed(channel).await;
        let shares = w.split(&id, receiver).await;
        let path = format!("/admin/v1/orders/{id}/refund");
        let reply = w.call(&admin, &path, Some(body.clone())).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let shown = &reply.body["refunds"][0]["after_split"];
        assert_eq!(shown["seller_part_fen"], json!(900), "{shown}");
        let order = w.settled_refund(&id).await;
        assert_eq!(order.status, OrderStatus::Completed, "{order:?}");
        let after = order.refunds[0].after_split.clone().unwrap();
        match channel {
            "wechat" => {
                assert_eq!(shown["take_back"], json!("receivable"));
                assert_eq!(shown["receivable_fen"], json!(900));
                assert_eq!(shown["returned_fen"], Value::Null, "a personal receiver");
                assert_eq!(after.returned_fen, None);
            }
            _ => {
                assert_eq!(shown["take_back"], json!("royalty"));
                assert_eq!(shown["receivable_fen"], json!(0));
                // Alipay answers the refund at once: taken back with it.
                assert_eq!(reply.body["status"], json!("completed"), "{reply:?}");
                assert_eq!(shown["returned_fen"], json!(900), "{shown}");
                assert_eq!(after.returned_fen, Some(Fen::from_fen(900)));
            }
        }
        let t = w.totals(&id).await;
        assert!(t.balances(), "{t:?}");
        let item = earning(&w, &id).await;
        let ledger = &item["ledger"];
        let owed = match channel {
            "wechat" => 900,
            _ => 0,
        };
        assert_eq!(ledger["receivable_fen"], json!(owed), "{item}");
        assert_eq!(ledger["seller_paid_fen"], json!(t.seller_paid), "{item}");
        assert_eq!(item["seller_fen"], json!(shares.seller_fen.get() - 900));
        assert_eq!(
            item["seller_fen"].as_i64().unwrap(),
            ledger["seller_paid_fen"].as_i64().unwrap()
                - ledger["receivable_fen"].as_i64().unwrap(),
            "{item}"
        );
        assert_eq!(
            item["commission_fen"].as_i64().unwrap(),
            ledger["commission_kept_fen"].as_i64().unwrap()
                + ledger["fee_fen"].as_i64().unwrap()
                + ledger["receivable_fen"].as_i64().unwrap(),
            "{item}"
        );
        assert_eq!(item["fee_fen"], ledger["fee_fen"], "{item}");
        assert_eq!(
            (&item["state"], &ledger["held_fen"]),
            (&json!("paid"), &json!(0))
        );
    }
}

/// An earning's `state` says what happened: a paid order declined by the seller whose refund the
/// provider failed is `refunding` (all of it goes back to the buyer, held until the refund
/// succeeds), then `refunded` once staff's retry succeeded, the ledger balanced.
async fn an_earning_going_back_to_the_buyer_says_so(backend: Backend) {
    let w = World::new(backend).await;
    let admin = w.server.api.staff_token("staff:alice:admin").await;
    let id = w
        .server
        .paid_order_through(&w.buyer, &w.listing, "wechat")
        .await;
    let id = OrderId::parse(&id).unwrap();
    w.fail_refunds(&id, true).await;
    let declined = w
        .call(
            &w.seller.token,
            &format!("/v1/orders/{id}/decline"),
            Some(json!({"reason": "档期已满"})),
        )
        .await;
    assert_eq!(declined.status, 200, "{declined:?}");
    let order = w.settled_refund(&id).await;
    assert_eq!(order.status, OrderStatus::RefundFailed, "{order:?}");
    let item = earning(&w, &id).await;
    assert_eq!(
        (&item["state"], &item["settlement"], &item["seller_fen"]),
        (&json!("refunding"), &json!("nothing"), &json!(0)),
        "{item}"
    );
    assert_eq!(
        item["ledger"]["held_fen"],
        json!(PRICE),
        "held for the buyer: {item}"
    );
    w.fail_refunds(&id, false).await;
    let retry = w
        .call(
            &admin,
            &format!("/admin/v1/orders/{id}/refund"),
            Some(json!({"reason": "再试"})),
        )
        .await;
    assert_eq!(retry.status, 200, "{retry:?}");
    let order = w.settled_refund(&id).await;
    assert_eq!(order.status, OrderStatus::Refunded, "{order:?}");
    let item = earning(&w, &id).await;
    assert_eq!(
        (&item["state"], &item["settlement"]),
        (&json!("refunded"), &json!("nothing")),
        "{item}"
    );
    assert_eq!(item["ledger"]["held_fen"], json!(0), "{item}");
    assert_eq!(item["ledger"]["balances"], json!(true), "{item}");
}

/// Today's Beijing date, and a time of tomorrow at which the order jobs reconcile it.
fn today_and_tomorrow_noon() -> (String, OffsetDateTime) {
    let local = OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8));
    let noon = local
        .date()
        .next_day()
        .unwrap()
        .with_hms(12, 0, 0)
        .unwrap()
        .assume_offset(time::macros::offset!(+8));
    (local.date().to_string(), noon)
}

async fn alarms(w: &World) -> Vec<Value> {
    let filter = Filter::parse(None, Some("settlement:alarms")).unwrap();
    audit::list(&w.app().store, &filter, 50, None)
        .await
        .unwrap()
        .0
}

/// The daily reconciliation: when the ledger and the providers agree (WeChat Pay's bill, Alipay's
/// settle query) it is silent; it runs once a day per provider (a marker), from the order jobs.
async fn reconciliation_is_silent_when_all_agree_and_runs_once(backend: Backend) {
    let w = World::new(backend).await;
    let wechat = w.completed("wechat").await;
    w.split(&wechat, wechat_person()).await;
    let alipay = w.completed("alipay").await;
    w.split(&alipay, alipay_user()).await;
    let (today, tomorrow_noon) = today_and_tomorrow_noon();
    // Before the bills are ready (10:00 Beijing) nothing is reconciled.
    assert_eq!(
        reconcile::due_day(tomorrow_noon - time::Duration::hours(3)),
        None
    );
    assert_eq!(reconcile::due_day(tomorrow_noon), Some(today.clone()));
    let reports = reconcile::daily(w.app(), tomorrow_noon).await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    for report in &reports {
        assert_eq!(report.day, today);
        assert_eq!(report.checked, 1, "{report:?}");
        assert!(report.mismatches.is_empty(), "{report:?}");
    }
    assert!(alarms(&w).await.is_empty());
    // Once: the order jobs' runs that day do not ask again.
    let app = w
        .server
        .running
        .function_app("OrderJobsFunction")
        .expect("order jobs");
    orders::jobs::run(app, tomorrow_noon, Default::default())
        .await
        .unwrap();
    assert!(reconcile::daily(w.app(), tomorrow_noon).await.is_empty());
    for provider in ["wechat", "alipay"] {
        let marker: reconcile::Marker = w
            .app()
            .store
            .get_record(&keys::reconciliation(provider, &today))
            .await
            .unwrap()
            .expect("the marker");
        assert_eq!(
            (marker.state.as_str(), marker.checked, marker.mismatches),
            ("done", 1, 0)
        );
    }
}

/// A ledger that says more was paid than the bill shows (a planted entry) raises one staff alarm
/// (listed in the audit trail `settlement:alarms`, amounts and numbers only), once.
async fn reconciliation_alarms_staff_on_a_mismatch(backend: Backend) {
    let w = World::new(backend).await;
    let good = w.completed("wechat").await;
    w.split(&good, wechat_person()).await;
    let planted = w.completed("wechat").await;
    w.split(&planted, wechat_merchant()).await;
    let now = OffsetDateTime::now_utc();
    let entry = LedgerEntry::new(
        &planted,
        LedgerKind::SellerPaid,
        format!("split:{}X", split_no(planted.as_str())),
        Fen::from_fen(1_000),
        &orders::rfc3339(now),
    );
    w.app()
        .store
        .transact(vec![entry.write().unwrap()])
        .await
        .unwrap();
    let (today, tomorrow_noon) = today_and_tomorrow_noon();
    let app = w
        .server
        .running
        .function_app("OrderJobsFunction")
        .expect("order jobs");
    for _ in 0..2 {
        orders::jobs::run(app, tomorrow_noon, Default::default())
            .await
            .unwrap();
    }
    let found = alarms(&w).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["action"], json!(reconcile::MISMATCH_ACTION));
    let reason = found[0]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains(&format!("{}X", split_no(planted.as_str()))),
        "{reason}"
    );
    assert!(reason.contains("1000 fen"), "{reason}");
    let marker: reconcile::Marker = w
        .app()
        .store
        .get_record(&keys::reconciliation("wechat", &today))
        .await
        .unwrap()
        .expect("the marker");
    assert_eq!((marker.checked, marker.mismatches), (3, 1));
}

on_both_stores!(
    a_personal_receiver_leaves_a_receivable,
    a_merchant_receiver_returns_then_the_refund_is_paid,
    alipay_takes_the_royalty_back_with_the_refund,
    a_failed_refund_after_the_split_is_asked_again,
    a_receivable_is_recorded_when_the_refund_succeeds,
    refunds_in_parts_round_as_one_and_earnings_follow,
    earnings_after_a_refund_after_the_split_agree_with_the_ledger,
    an_earning_going_back_to_the_buyer_says_so,
    reconciliation_is_silent_when_all_agree_and_runs_once,
    reconciliation_alarms_staff_on_a_mismatch,
);
