//! The daily reconciliation of the provider's fee against the providers' trade bills
//! (`domain::settlement::fees`), on both stores, against the local server's WeChat Pay and Alipay
//! stand-ins, which charge each payment a fee at their own rate (`POST /sandbox/fee-rate`) and
//! serve the day's bill in the provider's format (WeChat Pay's backticked CSV with its SHA-1,
//! Alipay's zip of GBK CSVs): read back exactly; a rate other than Renji's estimate → the ledger
//! adjusted exactly once over several runs and still balanced, one staff alarm per order; a bill
//! line whose order the ledger does not know → an alarm and nothing booked; a late payment and its
//! refund → neither; bad dates refused, days without a bill done.

use std::time::Duration;

use renji_shared::domain::audit::{self, Filter};
use renji_shared::domain::orders::payments::{self, PaymentState};
use renji_shared::domain::orders::{self, Order, OrderStatus, RefundStatus};
use renji_shared::domain::settlement::refunds::{self, StaffRefund};
use renji_shared::domain::settlement::{
    earnings, fees, ledger, reconcile, LedgerEntry, LedgerKind, OrderSettlement, SettleState,
    Shares, Totals,
};
use renji_shared::ids::OrderId;
use renji_shared::money::Fen;
use renji_shared::payments::{
    Channel, GatewayError, PaymentStart, Provider, TradeBillKind, TradeBillLine,
};
use renji_shared::settlement::{split_no, Receiver, ReceiverKind, Share, SplitRequest, SplitState};
use renji_shared::store::{keys, Records, Write};
use renji_shared::App;
use renji_tests::{on_both_stores, service, Backend, LocalServer, Member};
use serde_json::{json, Value};
use time::OffsetDateTime;

const PRICE: i64 = 288_000;
/// The stand-ins' rate in these tests: 1 %, where Renji estimates 0.6 %.
const REAL_BPS: i64 = 100;

struct World {
    server: LocalServer,
    seller: Member,
    buyer: Member,
    listing: String,
    http: reqwest::Client,
}

impl World {
    /// One run of the order jobs, with their own IAM statements, at `at`.
    async fn run_order_jobs(&self, at: OffsetDateTime) {
        let jobs = self
            .server
            .running
            .function_app("OrderJobsFunction")
            .expect("order jobs");
        orders::jobs::run(jobs, at, Default::default())
            .await
            .unwrap();
    }

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

    fn base(&self, provider: Provider) -> &str {
        match provider {
            Provider::Wechat => &self.server.running.wechatpay_base,
            Provider::Alipay => &self.server.running.alipay_base,
        }
    }

    /// Sets a stand-in's fee rate for the payments after it.
    async fn fee_rate(&self, provider: Provider, bps: i64) {
        let answer = self
            .http
            .post(format!("{}/sandbox/fee-rate", self.base(provider)))
            .json(&json!({ "bps": bps }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }

    async fn call(&self, token: &str, path: &str, body: Option<Value>) -> renji_tests::Reply {
        self.server.api.call("POST", path, Some(token), body).await
    }

    /// An order paid through `provider` (`paid`).
    async fn paid(&self, provider: Provider) -> OrderId {
        let id = self
            .server
            .paid_order_through(&self.buyer, &self.listing, provider.as_str())
            .await;
        OrderId::parse(&id).unwrap()
    }

    /// An order paid through `provider`, accepted and confirmed (`completed`).
    async fn completed(&self, provider: Provider) -> OrderId {
        let id = self.paid(provider).await;
        for (who, action) in [(&self.seller, "accept"), (&self.buyer, "confirm")] {
            let reply = self
                .call(&who.token, &format!("/v1/orders/{id}/{action}"), None)
                .await;
            assert_eq!(reply.status, 200, "{action}: {reply:?}");
        }
        id
    }

    /// An order paid through `provider` and declined by the seller: refunded in full before any
    /// split.
    async fn declined(&self, provider: Provider) -> OrderId {
        let id = self.paid(provider).await;
        let reply = self
            .call(
                &self.seller.token,
                &format!("/v1/orders/{id}/decline"),
                Some(json!({"reason": "档期已满"})),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        for _ in 0..200 {
            if self.order(&id).await.status == OrderStatus::Refunded {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the refund of {id} did not end");
    }

    /// A new order of the listing by the buyer (`pending_payment`).
    async fn new_order(&self) -> OrderId {
        let reply = self
            .call(
                &self.buyer.token,
                "/v1/orders",
                Some(json!({"listing_id": self.listing, "quantity": 1})),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        OrderId::parse(reply.body["id"].as_str().expect("order id")).unwrap()
    }

    /// `POST /v1/orders/{id}/payments` through `provider`: what the client is given.
    async fn start(&self, id: &OrderId, provider: Provider) -> Value {
        let reply = self
            .call(
                &self.buyer.token,
                &format!("/v1/orders/{id}/payments"),
                Some(json!({ "channel": provider.as_str() })),
            )
            .await;
        assert_eq!(reply.status, 200, "{provider:?}: {reply:?}");
        reply.body
    }

    /// The buyer pays what `started` gave the client at `provider`'s stand-in, which notifies.
    async fn pay(&self, id: &OrderId, provider: Provider, started: &Value) {
        let body = match provider {
            Provider::Wechat => json!({"out_trade_no": id.to_string(), "notify": true}),
            Provider::Alipay => json!({"order_string": started["order_string"], "notify": true}),
        };
        let answer = self
            .http
            .post(format!("{}/sandbox/pay", self.base(provider)))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{provider:?}");
    }

    /// Waits until the order's payment at `provider` is late and refunded in full.
    async fn late_refunded(&self, id: &OrderId, provider: Provider) {
        let mut record = None;
        for _ in 0..200 {
            record = payments::record_of(&self.app().store, id, provider)
                .await
                .unwrap();
            if record.as_ref().is_some_and(|r| {
                r.state == PaymentState::Late
                    && r.late_refund
                        .as_ref()
                        .is_some_and(|l| l.status == RefundStatus::Succeeded)
            }) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the late payment of {id} at {provider:?} was not refunded: {record:?}");
    }

    async fn order(&self, id: &OrderId) -> Order {
        orders::get(&self.app().store, id).await.unwrap().unwrap()
    }

    /// Splits the seller's share of `id` through the port and records it on the order as the
    /// split job does (the settlement `paid`, its ledger entries with the fee Renji estimates).
    async fn split(&self, id: &OrderId, receiver: Receiver) -> Shares {
        let order = self.order(id).await;
        let provider = receiver.kind.provider();
        let port = self.app().payments.settlement(provider).unwrap();
        port.add_receiver(&receiver).await.unwrap();
        let shares = Shares::of(order.amount_fen, &order.settle.expect("settle terms"));
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
        let mut accepted = false;
        for _ in 0..40 {
            if port.split(&request).await.is_ok() {
                accepted = true;
                break;
            }
            // WeChat splits nothing within a moment of the payment.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(accepted, "split accepted");
        // Finished at the provider (the stand-in on this query), as the job's `paid` means.
        let done = port
            .query_split(&transaction_id, &request.out_order_no)
            .await
            .unwrap()
            .expect("the split");
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
        let writes = [
            (LedgerKind::Commission, shares.commission_fen),
            (LedgerKind::ProviderFee, shares.fee_fen),
            (LedgerKind::SellerPayable, shares.seller_fen),
            (LedgerKind::SellerPaid, shares.seller_fen),
        ]
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
        shares
    }

    /// Staff refund `amount` of the split order `id` and wait for the refund to end (WeChat
    /// Pay's notification; the order jobs ask too).
    async fn refund_after_split(&self, id: &OrderId, amount: i64) -> Order {
        refunds::staff_refund(
            self.app(),
            id,
            StaffRefund {
                amount: Some(Fen::from_fen(amount)),
                reason: "补偿".into(),
            },
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        for i in 0..100 {
            let order = self.order(id).await;
            if order.status != OrderStatus::Refunding {
                assert_eq!(order.status, OrderStatus::Completed, "{order:?}");
                return order;
            }
            if i % 20 == 19 {
                self.run_order_jobs(OffsetDateTime::now_utc() + time::Duration::hours(2))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the refund of {id} did not end");
    }

    async fn entries(&self, id: &OrderId) -> Vec<LedgerEntry> {
        ledger::entries(&self.app().store, id).await.unwrap()
    }

    /// The order's `provider_fee` entries: (ref, fen).
    async fn fee_entries(&self, id: &OrderId) -> Vec<(String, i64)> {
        self.entries(id)
            .await
            .into_iter()
            .filter(|e| e.kind == LedgerKind::ProviderFee)
            .map(|e| (e.reference, e.amount_fen.get()))
            .collect()
    }

    async fn fee_alarms(&self) -> Vec<Value> {
        let filter = Filter::parse(None, Some("settlement:alarms")).unwrap();
        audit::list(&self.app().store, &filter, 50, None)
            .await
            .unwrap()
            .0
            .into_iter()
            .filter(|a| a["action"] == json!(fees::FEE_MISMATCH_ACTION))
            .collect()
    }
}

fn receiver(provider: Provider) -> Receiver {
    match provider {
        Provider::Wechat => Receiver {
            kind: ReceiverKind::WechatOpenid,
            account: "oSeller00000000000000000001".into(),
            name: None,
        },
        Provider::Alipay => Receiver {
            kind: ReceiverKind::AlipayUserId,
            account: "2088101126765726".into(),
            name: None,
        },
    }
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

/// Both stand-ins charge 1 % where Renji estimates 0.6 %. Each serves its day's bill in its
/// provider's format, which the adapters read back line for line; the fee step then books the
/// difference on each split order's ledger (`provider_fee`, `bill:<day>`) exactly once whatever
/// reruns, the ledger still balanced and carrying the real fee, with one alarm per order (beyond
/// rounding); an order refunded in full before its split costs nothing and books nothing.
async fn a_fee_other_than_the_estimate_is_booked_once(backend: Backend) {
    let w = World::new(backend).await;
    for provider in Provider::ALL {
        w.fee_rate(provider, REAL_BPS).await;
    }
    let (today, tomorrow_noon) = today_and_tomorrow_noon();
    let real_fee = PRICE * REAL_BPS / 10_000;
    let mut split = Vec::new();
    let mut declined = Vec::new();
    for provider in Provider::ALL {
        let id = w.completed(provider).await;
        let shares = w.split(&id, receiver(provider)).await;
        assert_eq!(
            shares.fee_fen.get(),
            PRICE * 60 / 10_000,
            "Renji's estimate"
        );
        split.push((provider, id, shares));
        declined.push((provider, w.declined(provider).await));
    }
    // The bills as the adapters read them from the stand-ins (WeChat's CSV behind its hash,
    // Alipay's GBK zip): the payments' fees at 1 %, the refund's given back whole.
    for ((provider, id, _), (_, refunded)) in split.iter().zip(&declined) {
        let mut lines = w
            .app()
            .payments
            .gateway(*provider)
            .unwrap()
            .trade_bill(&today)
            .await
            .unwrap()
            .expect("a bill for today");
        lines.sort_by(|a, b| (&a.order_no, a.fee_fen).cmp(&(&b.order_no, b.fee_fen)));
        let refund_no = w.order(refunded).await.refunds[0].out_refund_no.clone();
        let mut expected = vec![
            TradeBillLine {
                order_no: id.to_string(),
                kind: TradeBillKind::Payment,
                amount: Fen::from_fen(PRICE),
                fee_fen: real_fee,
            },
            TradeBillLine {
                order_no: refunded.to_string(),
                kind: TradeBillKind::Refund {
                    out_refund_no: refund_no,
                },
                amount: Fen::from_fen(PRICE),
                fee_fen: -real_fee,
            },
            TradeBillLine {
                order_no: refunded.to_string(),
                kind: TradeBillKind::Payment,
                amount: Fen::from_fen(PRICE),
                fee_fen: real_fee,
            },
        ];
        expected.sort_by(|a, b| (&a.order_no, a.fee_fen).cmp(&(&b.order_no, b.fee_fen)));
        assert_eq!(lines, expected, "{provider:?}");
    }
    let reports = fees::daily(w.app(), tomorrow_noon).await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    for report in &reports {
        assert_eq!(report.day, today);
        assert!(!report.no_bill);
        assert_eq!((report.checked, report.adjusted), (2, 1), "{report:?}");
        assert_eq!(report.mismatches.len(), 1, "{report:?}");
        assert_eq!(report.mismatches[0].why, "beyond_rounding");
    }
    // Again, and from the order jobs (with the splits' step): nothing more.
    assert!(fees::daily(w.app(), tomorrow_noon).await.is_empty());
    for _ in 0..2 {
        w.run_order_jobs(tomorrow_noon).await;
    }
    // Even with its marker gone (a run that died after writing), the entry is not written twice
    // and no second alarm is raised.
    for provider in Provider::ALL {
        w.app()
            .store
            .transact(vec![Write::delete(keys::fee_reconciliation(
                provider.as_str(),
                &today,
            ))])
            .await
            .unwrap();
        let again = fees::day_of(w.app(), provider, &today, tomorrow_noon)
            .await
            .unwrap()
            .expect("ran again");
        assert_eq!((again.checked, again.adjusted), (2, 0), "{again:?}");
    }
    for (provider, id, shares) in &split {
        let fee = w.fee_entries(id).await;
        let adjustment = real_fee - shares.fee_fen.get();
        assert_eq!(
            fee,
            vec![
                (fees::adjustment_ref(&today), adjustment),
                (
                    format!("split:{}", split_no(id.as_str())),
                    shares.fee_fen.get()
                ),
            ],
            "{provider:?}"
        );
        let t = Totals::of(&w.entries(id).await);
        assert!(t.balances(), "{provider:?} {t:?}");
        assert_eq!(t.held(), 0);
        assert_eq!(t.fee, real_fee, "the ledger carries the real fee");
        assert_eq!(
            t.commission_kept,
            shares.commission_fen.get() - real_fee,
            "the difference comes out of Renji's commission"
        );
    }
    for (_, id) in &declined {
        assert!(w.fee_entries(id).await.is_empty(), "nothing to book");
    }
    let alarms = w.fee_alarms().await;
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    for (_, id, _) in &split {
        let reason: Vec<String> = alarms
            .iter()
            .filter_map(|a| a["reason"].as_str())
            .filter(|r| r.contains(id.as_str()))
            .map(str::to_owned)
            .collect();
        assert_eq!(reason.len(), 1, "{alarms:?}");
        assert!(
            reason[0].contains(&format!("fee on the bill {real_fee} fen")),
            "{reason:?}"
        );
        assert!(reason[0].contains("beyond_rounding"), "{reason:?}");
    }
    for provider in Provider::ALL {
        let marker: reconcile::Marker = w
            .app()
            .store
            .get_record(&keys::fee_reconciliation(provider.as_str(), &today))
            .await
            .unwrap()
            .expect("the marker");
        assert_eq!((marker.state.as_str(), marker.checked), ("done", 2));
    }
}

/// A payment at the provider that is no order of this ledger (another system on the merchant
/// account, a test at the provider): an alarm naming it, and nothing booked.
async fn a_bill_line_the_ledger_does_not_know_is_an_alarm(backend: Backend) {
    let w = World::new(backend).await;
    let stranger = OrderId::generate();
    for provider in Provider::ALL {
        let channel = match provider {
            Provider::Wechat => Channel::Wechat,
            Provider::Alipay => Channel::Alipay,
        };
        let started = w
            .app()
            .payments
            .gateway(provider)
            .unwrap()
            .start(&PaymentStart {
                channel,
                order_no: stranger.to_string(),
                description: "不是人集的订单".into(),
                amount: Fen::from_fen(1_000),
                expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(30),
                payer_openid: Some("oStranger000000000000000001".into()),
                prepay_id: None,
            })
            .await
            .unwrap();
        let pay = match provider {
            Provider::Wechat => json!({"out_trade_no": stranger.to_string(), "notify": false}),
            Provider::Alipay => {
                json!({"order_string": started.client["order_string"], "notify": false})
            }
        };
        let paid = w
            .http
            .post(format!("{}/sandbox/pay", w.base(provider)))
            .json(&pay)
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status(), 200);
    }
    let (_, tomorrow_noon) = today_and_tomorrow_noon();
    let reports = fees::daily(w.app(), tomorrow_noon).await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    for report in &reports {
        assert_eq!((report.checked, report.adjusted), (1, 0), "{report:?}");
        assert_eq!(report.mismatches.len(), 1);
        assert_eq!(report.mismatches[0].why, "unknown_order");
        assert_eq!(report.mismatches[0].order_no, stranger.to_string());
        assert_eq!(report.mismatches[0].bill_fen, 6);
    }
    let alarms = w.fee_alarms().await;
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    assert!(alarms.iter().all(|a| a["reason"]
        .as_str()
        .is_some_and(|r| r.contains(stranger.as_str()) && r.contains("unknown_order"))));
    assert!(w.entries(&stranger).await.is_empty(), "nothing booked");
}

/// A payment the order did not take — through the other provider once it was paid through one,
/// or after the buyer cancelled — is recorded late and refunded in full by the job; the
/// stand-ins bill it a fee as any payment and give the fee back whole with the refund. Those lines
/// are known (the order's late payment and its refund): no alarm, nothing booked, each order's
/// ledger as it was.
async fn a_late_payment_and_its_refund_raise_no_alarm(backend: Backend) {
    let w = World::new(backend).await;
    let (today, tomorrow_noon) = today_and_tomorrow_noon();
    // (order, the provider of its late payment)
    let mut late = Vec::new();
    for (kept, other) in [
        (Provider::Wechat, Provider::Alipay),
        (Provider::Alipay, Provider::Wechat),
    ] {
        let id = w.new_order().await;
        let kept_start = w.start(&id, kept).await;
        let late_start = w.start(&id, other).await;
        w.pay(&id, kept, &kept_start).await;
        for _ in 0..200 {
            if w.order(&id).await.status == OrderStatus::Paid {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        w.pay(&id, other, &late_start).await;
        late.push((id, other));
    }
    // Paid through Alipay's app after the buyer cancelled.
    let cancelled = w.new_order().await;
    let started = w.start(&cancelled, Provider::Alipay).await;
    let reply = w
        .call(
            &w.buyer.token,
            &format!("/v1/orders/{cancelled}/cancel"),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    w.pay(&cancelled, Provider::Alipay, &started).await;
    late.push((cancelled.clone(), Provider::Alipay));
    w.run_order_jobs(OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .await;
    let fee = PRICE * 60 / 10_000;
    let mut before = Vec::new();
    for (id, provider) in &late {
        w.late_refunded(id, *provider).await;
        // As the stand-in bills it: the fee charged, and given back whole.
        let mut lines: Vec<TradeBillLine> = w
            .app()
            .payments
            .gateway(*provider)
            .unwrap()
            .trade_bill(&today)
            .await
            .unwrap()
            .expect("a bill for today")
            .into_iter()
            .filter(|l| l.order_no == id.as_str())
            .collect();
        lines.sort_by_key(|l| l.fee_fen);
        let refund_no = payments::late_refund_no(id, *provider);
        assert_eq!(
            lines,
            vec![
                TradeBillLine {
                    order_no: id.to_string(),
                    kind: TradeBillKind::Refund {
                        out_refund_no: refund_no,
                    },
                    amount: Fen::from_fen(PRICE),
                    fee_fen: -fee,
                },
                TradeBillLine {
                    order_no: id.to_string(),
                    kind: TradeBillKind::Payment,
                    amount: Fen::from_fen(PRICE),
                    fee_fen: fee,
                },
            ],
            "{provider:?}"
        );
        before.push(w.entries(id).await);
    }
    assert!(before[2].is_empty(), "a cancelled order has no ledger");
    let reports = fees::daily(w.app(), tomorrow_noon).await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    for report in &reports {
        // WeChat: one order's payment, the other's late payment; Alipay: those two and the
        // cancelled order's late payment.
        let orders = match report.provider {
            Provider::Wechat => 2,
            Provider::Alipay => 3,
        };
        assert_eq!((report.checked, report.adjusted), (orders, 0), "{report:?}");
        assert!(report.mismatches.is_empty(), "{report:?}");
    }
    assert!(w.fee_alarms().await.is_empty());
    for ((id, _), entries) in late.iter().zip(&before) {
        assert_eq!(
            &w.entries(id).await,
            entries,
            "the order's ledger as it was"
        );
        assert!(w.fee_entries(id).await.is_empty(), "nothing booked");
    }
}

/// The providers give their fee back in proportion on any refund, after the split too (the
/// stand-ins at Renji's rate here): each refund after the split books the fee it gives back with
/// its success (`provider_fee`, `refund:<no>`), so the day's bill — the payment's fee, each
/// refund's part of it given back — is what Renji's rule attributes to it: no alarm, nothing to
/// adjust, the ledger balanced and carrying the fee the provider kept, and the seller's earnings
/// showing that fee beside the ledger's, the receivable of a personal receiver included.
async fn a_refund_after_the_split_gives_the_fee_back_without_an_alarm(backend: Backend) {
    let w = World::new(backend).await;
    let (_, tomorrow_noon) = today_and_tomorrow_noon();
    let parts = [1_000, 50_000];
    let mut split = Vec::new();
    for provider in Provider::ALL {
        let id = w.completed(provider).await;
        let shares = w.split(&id, receiver(provider)).await;
        for amount in parts {
            w.refund_after_split(&id, amount).await;
        }
        split.push((provider, id, shares));
    }
    let reports = fees::daily(w.app(), tomorrow_noon).await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    for report in &reports {
        assert_eq!((report.checked, report.adjusted), (1, 0), "{report:?}");
        assert!(report.mismatches.is_empty(), "{report:?}");
    }
    assert!(
        w.fee_alarms().await.is_empty(),
        "{:?}",
        w.fee_alarms().await
    );
    // The stand-ins charge 0.6 % of 288 000 (1 728) and give back round(1 728 × refunded / total)
    // in all: 6 for the first 1 000, 306 once 51 000 are refunded.
    let charged = PRICE * 60 / 10_000;
    let given_back = [6, 300];
    let kept_fee = charged - given_back.iter().sum::<i64>();
    for (provider, id, shares) in &split {
        let order = w.order(id).await;
        let mut expected: Vec<(String, i64)> = order
            .refunds
            .iter()
            .zip(given_back)
            .map(|(r, back)| (format!("refund:{}", r.out_refund_no), -back))
            .collect();
        expected.push((format!("split:{}", split_no(id.as_str())), charged));
        expected.sort();
        let mut fee = w.fee_entries(id).await;
        fee.sort();
        assert_eq!(fee, expected, "{provider:?}");
        let t = Totals::of(&w.entries(id).await);
        assert!(t.balances(), "{provider:?} {t:?}");
        assert_eq!(t.fee, kept_fee, "{provider:?}: the fee the provider kept");
        assert_eq!(t.refunded, parts.iter().sum::<i64>());
        // The seller's earnings: the item's fee is the ledger's, and the item's shares are the
        // ledger's (the seller's part of a personal receiver's refund is owed back).
        let (_, items, _) = earnings::earnings(&w.app().store, &order.seller_id, 20, None)
            .await
            .unwrap();
        let item = items.iter().find(|i| i["order_id"] == json!(id)).unwrap();
        let ledger = &item["ledger"];
        assert_eq!(item["fee_fen"], json!(kept_fee), "{item}");
        assert_eq!(ledger["fee_fen"], json!(kept_fee), "{item}");
        assert_eq!(ledger["receivable_fen"], json!(t.receivable), "{item}");
        let seller_parts: i64 = order
            .refunds
            .iter()
            .map(|r| r.after_split.as_ref().unwrap().seller_part_fen.get())
            .sum();
        let owed = match provider {
            Provider::Wechat => seller_parts,
            Provider::Alipay => 0,
        };
        assert_eq!(t.receivable, owed, "{provider:?}");
        assert_eq!(
            item["seller_fen"],
            json!(shares.seller_fen.get() - seller_parts),
            "{item}"
        );
        assert_eq!(
            item["seller_fen"].as_i64().unwrap(),
            t.seller_paid - t.receivable,
            "{item}"
        );
        assert_eq!(
            item["commission_fen"].as_i64().unwrap(),
            t.commission_kept + t.fee + t.receivable,
            "{item}"
        );
        assert_eq!(item["state"], json!("paid"), "{item}");
    }
}

/// A day that is not a date is refused before any question (and leaves no marker); the
/// providers refuse one too; a day without payments has no bill, and is done.
async fn bad_dates_are_refused_and_a_day_without_a_bill_is_done(backend: Backend) {
    let w = World::new(backend).await;
    let now = OffsetDateTime::now_utc();
    for provider in Provider::ALL {
        let gateway = w.app().payments.gateway(provider).unwrap();
        for bad in [
            "2026-13-01",
            "2026-11-31",
            "20261128",
            "2026-11-28T00:00:00",
        ] {
            assert!(
                matches!(
                    gateway.trade_bill(bad).await,
                    Err(GatewayError::Refused { .. })
                ),
                "{provider:?} {bad}"
            );
            assert!(fees::day_of(w.app(), provider, bad, now).await.is_err());
            assert_eq!(
                w.app()
                    .store
                    .get_record::<reconcile::Marker>(&keys::fee_reconciliation(
                        provider.as_str(),
                        bad
                    ))
                    .await
                    .unwrap(),
                None
            );
        }
        assert_eq!(gateway.trade_bill("2020-01-01").await.unwrap(), None);
        let report = fees::day_of(w.app(), provider, "2020-01-01", now)
            .await
            .unwrap()
            .expect("done");
        assert!(report.no_bill && report.checked == 0, "{report:?}");
        assert_eq!(
            fees::day_of(w.app(), provider, "2020-01-01", now)
                .await
                .unwrap(),
            None
        );
    }
    assert!(w.fee_alarms().await.is_empty());
}

on_both_stores!(
    a_fee_other_than_the_estimate_is_booked_once,
    a_refund_after_the_split_gives_the_fee_back_without_an_alarm,
    a_bill_line_the_ledger_does_not_know_is_an_alarm,
    bad_dates_are_refused_and_a_day_without_a_bill_is_done,
    a_late_payment_and_its_refund_raise_no_alarm,
);
