//! The money rules of orders, on both stores, against a fake provider (the port's other side),
//! with the clock injected: exactly-once confirmation, refusals that change nothing, late and
//! double payments refunded, and every order job. The real providers' adapters and the local
//! stand-ins are exercised end to end elsewhere (`tests/payments_e2e.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use renji_shared::config::Config;
use renji_shared::domain::orders::events::EventKind;
use renji_shared::domain::orders::jobs::{self, Budget};
use renji_shared::domain::orders::payments::{self, Applied, PaymentState};
use renji_shared::domain::orders::{self, Order, OrderStatus, RefundStatus};
use renji_shared::domain::settlement::{ledger, LedgerKind, Totals};
use renji_shared::ids::{OrderId, UserId};
use renji_shared::money::Fen;
use renji_shared::payments::{
    Gateway, GatewayError, Notice, Paid, PaymentStart, Provider, RefundRequest, RefundState,
    Started, Trade,
};
use renji_shared::secrets::Secrets;
use renji_shared::store::{keys, Query};
use renji_shared::App;
use renji_tests::{on_both_stores, Backend, TestStore};
use serde_json::json;
use time::{Duration, OffsetDateTime};

/// A provider in memory: trades by order number, refunds by refund number.
#[derive(Default)]
struct FakeProvider {
    trades: Mutex<HashMap<String, Trade>>,
    refunds: Mutex<HashMap<String, (Fen, RefundState)>>,
    /// Refund calls made (including repeats with one number).
    refund_calls: Mutex<Vec<String>>,
    /// Refunds answer Processing first (settled by a query) instead of Succeeded.
    slow_refunds: bool,
    /// Successes report this amount instead of the refund's (a provider contradicting us).
    reported_refund: Option<Fen>,
    /// Orders whose trade the buyer's cashier opens right after our close found none (Alipay
    /// creates a trade only when the cashier opens).
    opened_after_close: Mutex<Vec<String>>,
}

impl FakeProvider {
    fn pay(&self, order_no: &str, amount: Fen, transaction_id: &str) -> Paid {
        let paid = Paid {
            transaction_id: transaction_id.into(),
            amount,
            paid_at: None,
        };
        self.trades
            .lock()
            .unwrap()
            .insert(order_no.into(), Trade::Paid(paid.clone()));
        paid
    }

    fn refunded(&self, out_refund_no: &str) -> Option<Fen> {
        match self.refunds.lock().unwrap().get(out_refund_no) {
            Some((amount, RefundState::Succeeded { .. })) => Some(*amount),
            _ => None,
        }
    }
}

#[async_trait]
impl Gateway for FakeProvider {
    async fn start(&self, start: &PaymentStart) -> Result<Started, GatewayError> {
        self.trades
            .lock()
            .unwrap()
            .entry(start.order_no.clone())
            .or_insert(Trade::Open);
        Ok(Started {
            prepay_id: Some(format!("prepay-{}", start.order_no)),
            client: json!({"fake": true}),
        })
    }

    async fn query(&self, order_no: &str) -> Result<Trade, GatewayError> {
        Ok(self
            .trades
            .lock()
            .unwrap()
            .get(order_no)
            .cloned()
            .unwrap_or(Trade::NotFound))
    }

    async fn close(&self, order_no: &str) -> Result<(), GatewayError> {
        let mut trades = self.trades.lock().unwrap();
        if let Some(trade @ Trade::Open) = trades.get_mut(order_no) {
            *trade = Trade::Closed;
        }
        let mut opening = self.opened_after_close.lock().unwrap();
        if let Some(at) = opening.iter().position(|no| no == order_no) {
            opening.remove(at);
            trades.entry(order_no.into()).or_insert(Trade::Open);
        }
        Ok(())
    }

    async fn refund(&self, refund: &RefundRequest) -> Result<RefundState, GatewayError> {
        self.refund_calls
            .lock()
            .unwrap()
            .push(refund.out_refund_no.clone());
        let mut refunds = self.refunds.lock().unwrap();
        let state = if self.slow_refunds {
            RefundState::Processing
        } else {
            RefundState::Succeeded {
                refund_id: Some(format!("rf-{}", refund.out_refund_no)),
                amount: Some(self.reported_refund.unwrap_or(refund.amount)),
            }
        };
        // The same number again answers the same refund: the provider refunds once.
        let entry = refunds
            .entry(refund.out_refund_no.clone())
            .or_insert((refund.amount, state));
        Ok(entry.1.clone())
    }

    async fn refund_query(
        &self,
        _: &str,
        out_refund_no: &str,
    ) -> Result<RefundState, GatewayError> {
        let mut refunds = self.refunds.lock().unwrap();
        match refunds.get_mut(out_refund_no) {
            None => Ok(RefundState::NotFound),
            Some((amount, state)) => {
                // A slow refund has finished by the time it is asked about.
                if *state == RefundState::Processing {
                    *state = RefundState::Succeeded {
                        refund_id: None,
                        amount: Some(self.reported_refund.unwrap_or(*amount)),
                    };
                }
                Ok(state.clone())
            }
        }
    }
}

struct World {
    app: App,
    wechat: Arc<FakeProvider>,
    alipay: Arc<FakeProvider>,
    _store: TestStore,
}

async fn world(backend: Backend) -> World {
    world_with(backend, false).await
}

async fn world_with(backend: Backend, slow_refunds: bool) -> World {
    world_on(TestStore::new(backend).await, slow_refunds).await
}

async fn world_on(store: TestStore, slow_refunds: bool) -> World {
    let config = Config::from_lookup(|name| match name {
        "RENJI_SESSION_SECRET" => Some("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into()),
        _ => None,
    })
    .unwrap();
    let secrets = Secrets::from_env(std::time::Duration::from_secs(60));
    let mut app = App::with_secrets(config, store.store.clone(), &secrets).unwrap();
    let wechat = Arc::new(FakeProvider {
        slow_refunds,
        ..FakeProvider::default()
    });
    let alipay = Arc::new(FakeProvider {
        slow_refunds,
        ..FakeProvider::default()
    });
    app.payments.wechat = Some(wechat.clone());
    app.payments.alipay = Some(alipay.clone());
    World {
        app,
        wechat,
        alipay,
        _store: store,
    }
}

const AMOUNT: i64 = 8_800;

/// An unpaid order of 88 yuan created at `at`, written as the orders function writes it.
async fn unpaid_order(world: &World, at: OffsetDateTime) -> Order {
    let order = renji_tests::unpaid_order(&world.app, AMOUNT, at).await;
    payable_everywhere(world, &order.seller_id).await;
    order
}

/// The seller has a payout account at each provider (so buyers may pay through either), stored
/// as `domain::payouts` stores one; the channel rule reads only that it exists.
async fn payable_everywhere(world: &World, seller: &UserId) {
    use renji_shared::domain::payouts::PayoutAccount;
    use renji_shared::pii::Sealed;
    use renji_shared::settlement::ReceiverKind;
    use renji_shared::store::Record;
    let sealed = Sealed {
        kid: "k1".into(),
        nonce: "bm9uY2U=".into(),
        ct: "Y3Q=".into(),
    };
    for (channel, kind) in [
        (Provider::Wechat, ReceiverKind::WechatOpenid),
        (Provider::Alipay, ReceiverKind::AlipayUserId),
    ] {
        let account = PayoutAccount {
            channel,
            kind,
            account_masked: "2088********5726".into(),
            name_masked: Some("*三".into()),
            account_sealed: sealed.clone(),
            name_sealed: Some(sealed.clone()),
            bound_at: "2026-11-29T00:00:00Z".into(),
            version: 1,
        };
        let key = renji_shared::store::keys::payout_account(seller, channel.as_str());
        world
            .app
            .store
            .write(renji_shared::store::Write::put(
                account.to_item(key, None).unwrap(),
            ))
            .await
            .unwrap();
    }
}

async fn load(world: &World, id: &OrderId) -> Order {
    orders::get(&world.app.store, id).await.unwrap().unwrap()
}

fn paid_notice(provider: Provider, order: &Order, transaction_id: &str, amount: i64) -> Notice {
    Notice::Paid {
        provider,
        order_no: order.id.to_string(),
        paid: Paid {
            transaction_id: transaction_id.into(),
            amount: Fen::from_fen(amount),
            paid_at: None,
        },
    }
}

/// Starts a payment as the payments function does (the buyer's member record is not needed
/// for Alipay).
async fn start(world: &World, order: &Order, now: OffsetDateTime) {
    let (_, writes) = payments::start(
        &world.app,
        order,
        renji_shared::payments::Channel::Alipay,
        now,
    )
    .await
    .unwrap();
    world.app.store.transact(writes).await.unwrap();
}

async fn events_of(world: &World, id: &OrderId) -> usize {
    world
        .app
        .store
        .query(Query::partition(keys::order_partition(id)).sort(
            renji_shared::store::SortKey::Prefix(keys::EVENT_SK_PREFIX.into()),
        ))
        .await
        .unwrap()
        .items
        .len()
}

async fn twenty_identical_notifications_pay_once(backend: Backend) {
    let world = world(backend).await;
    let now = OffsetDateTime::now_utc();
    let order = unpaid_order(&world, now).await;
    let notice = paid_notice(Provider::Wechat, &order, "4200001", AMOUNT);
    let results = futures_util::future::join_all(
        (0..20).map(|_| payments::apply_notice(&world.app, notice.clone(), now)),
    )
    .await;
    let changed = results
        .iter()
        .filter(|r| matches!(r, Ok(Ok(Applied::Changed))))
        .count();
    let repeats = results
        .iter()
        .filter(|r| matches!(r, Ok(Ok(Applied::Repeat))))
        .count();
    assert_eq!((changed, repeats), (1, 19), "{results:?}");
    let paid = load(&world, &order.id).await;
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(paid.payment.as_ref().unwrap().transaction_id, "4200001");
    let paid_steps = paid
        .timeline
        .iter()
        .filter(|s| s.status == OrderStatus::Paid)
        .count();
    assert_eq!(paid_steps, 1);
    assert_eq!(paid.version, 2, "one transition");
    let records = payments::records(&world.app.store, &order.id)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].state, PaymentState::Paid);
    // Every one of the twenty is on record.
    assert_eq!(events_of(&world, &order.id).await, 20);
}

async fn refused_notices_change_nothing(backend: Backend) {
    let world = world(backend).await;
    let now = OffsetDateTime::now_utc();
    let order = unpaid_order(&world, now).await;
    for (notice, why) in [
        (
            paid_notice(Provider::Wechat, &order, "t1", AMOUNT - 1),
            "a fen less",
        ),
        (
            paid_notice(Provider::Wechat, &order, "t1", AMOUNT + 1),
            "a fen more",
        ),
        (paid_notice(Provider::Alipay, &order, "t1", 0), "nothing"),
    ] {
        let result = payments::apply_notice(&world.app, notice, now)
            .await
            .unwrap();
        assert!(result.is_err(), "{why}: {result:?}");
    }
    let unknown = Notice::Paid {
        provider: Provider::Wechat,
        order_no: OrderId::generate().to_string(),
        paid: Paid {
            transaction_id: "t2".into(),
            amount: Fen::from_fen(AMOUNT),
            paid_at: None,
        },
    };
    assert!(payments::apply_notice(&world.app, unknown, now)
        .await
        .unwrap()
        .is_err());
    let junk = Notice::Paid {
        provider: Provider::Wechat,
        order_no: "../ORDER#x".into(),
        paid: Paid {
            transaction_id: "t3".into(),
            amount: Fen::from_fen(AMOUNT),
            paid_at: None,
        },
    };
    assert!(payments::apply_notice(&world.app, junk, now)
        .await
        .unwrap()
        .is_err());
    assert_eq!(
        load(&world, &order.id).await,
        order,
        "the order is unchanged"
    );
    assert!(payments::records(&world.app.store, &order.id)
        .await
        .unwrap()
        .is_empty());
    // The refusals about this order are on its record; the others under the day's notices.
    assert_eq!(events_of(&world, &order.id).await, 3);
}

async fn a_notification_racing_a_cancel_never_leaves_a_cancelled_order_with_the_money(
    backend: Backend,
) {
    let world = world(backend).await;
    let now = OffsetDateTime::now_utc();
    let mut outcomes = std::collections::BTreeSet::new();
    for round in 0..9 {
        let order = unpaid_order(&world, now).await;
        start(&world, &order, now).await;
        let pay = || async {
            let paid = world.alipay.pay(
                order.id.as_str(),
                Fen::from_fen(AMOUNT),
                &format!("race-{round}"),
            );
            let notice = Notice::Paid {
                provider: Provider::Alipay,
                order_no: order.id.to_string(),
                paid,
            };
            payments::apply_notice(&world.app, notice, now).await
        };
        // The money first, the cancel first (the payment lands after the provider closed the
        // trade: a payment in flight), or both at once.
        let (cancelled, applied) = match round % 3 {
            0 => {
                let applied = pay().await;
                (payments::cancel(&world.app, &order, now).await, applied)
            }
            1 => {
                let cancelled = payments::cancel(&world.app, &order, now).await;
                (cancelled, pay().await)
            }
            _ => tokio::join!(payments::cancel(&world.app, &order, now), pay()),
        };
        applied.unwrap().unwrap();
        // Whatever the order, the jobs finish the work (a late payment's refund).
        jobs::run(&world.app, now + Duration::seconds(1), Budget::default())
            .await
            .unwrap();
        let after = load(&world, &order.id).await;
        let record = payments::record_of(&world.app.store, &order.id, Provider::Alipay)
            .await
            .unwrap()
            .unwrap();
        outcomes.insert(format!("{:?}", after.status));
        match after.status {
            OrderStatus::Cancelled => {
                assert!(cancelled.is_ok());
                assert_eq!(record.state, PaymentState::Late, "round {round}");
                assert_eq!(
                    world
                        .alipay
                        .refunded(&payments::late_refund_no(&order.id, Provider::Alipay)),
                    Some(Fen::from_fen(AMOUNT)),
                    "round {round}: the money went back"
                );
            }
            OrderStatus::Paid => {
                let e = cancelled.unwrap_err();
                assert_eq!(e.code(), "order_paid", "round {round}");
                assert_eq!(record.state, PaymentState::Paid);
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
    assert_eq!(outcomes.len(), 2, "both ways happened: {outcomes:?}");
}

/// The buyer opens the cashier between our close (nothing to close yet) and our query (an open
/// trade): the cancel closes it again instead of failing, and the order is cancelled.
async fn a_trade_opened_while_cancelling_is_closed_too(backend: Backend) {
    let world = world(backend).await;
    let now = OffsetDateTime::now_utc();
    let order = unpaid_order(&world, now).await;
    start(&world, &order, now).await;
    let no = order.id.to_string();
    world.alipay.trades.lock().unwrap().remove(&no);
    world
        .alipay
        .opened_after_close
        .lock()
        .unwrap()
        .push(no.clone());
    let cancelled = payments::cancel(&world.app, &order, now).await.unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(load(&world, &order.id).await.status, OrderStatus::Cancelled);
    assert_eq!(
        world.alipay.trades.lock().unwrap().get(&no),
        Some(&Trade::Closed)
    );
    let record = payments::record_of(&world.app.store, &order.id, Provider::Alipay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, PaymentState::Closed);
}

async fn paid_through_both_channels_one_is_refunded(backend: Backend) {
    let world = world(backend).await;
    let now = OffsetDateTime::now_utc();
    let order = unpaid_order(&world, now).await;
    for (provider, tx) in [(Provider::Wechat, "wx-1"), (Provider::Alipay, "ali-1")] {
        payments::apply_notice(&world.app, paid_notice(provider, &order, tx, AMOUNT), now)
            .await
            .unwrap()
            .unwrap();
    }
    let paid = load(&world, &order.id).await;
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(paid.payment.as_ref().unwrap().transaction_id, "wx-1");
    let late = payments::record_of(&world.app.store, &order.id, Provider::Alipay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late.state, PaymentState::Late);
    // Two runs at once refund it once.
    let later = now + Duration::seconds(5);
    let (a, b) = tokio::join!(
        jobs::run(&world.app, later, Budget::default()),
        jobs::run(&world.app, later, Budget::default())
    );
    a.unwrap();
    b.unwrap();
    let number = payments::late_refund_no(&order.id, Provider::Alipay);
    assert_eq!(world.alipay.refunded(&number), Some(Fen::from_fen(AMOUNT)));
    assert!(world.wechat.refund_calls.lock().unwrap().is_empty());
    let record = payments::record_of(&world.app.store, &order.id, Provider::Alipay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.late_refund.unwrap().status, RefundStatus::Succeeded);
    assert_eq!(load(&world, &order.id).await.status, OrderStatus::Paid);
}

async fn unpaid_orders_expire_unless_paid_at_the_last_second(backend: Backend) {
    let world = world(backend).await;
    let now = OffsetDateTime::now_utc();
    let quiet = unpaid_order(&world, now).await;
    start(&world, &quiet, now).await;
    let last_second = unpaid_order(&world, now).await;
    start(&world, &last_second, now).await;
    // Paid at the provider just before the end; its notification is lost.
    world.alipay.pay(
        last_second.id.as_str(),
        Fen::from_fen(AMOUNT),
        "last-second",
    );

    // Not yet due: nothing expires (the lost notification is found by the query after 2 min,
    // so run before that).
    jobs::run(&world.app, now + Duration::seconds(60), Budget::default())
        .await
        .unwrap();
    assert_eq!(
        load(&world, &quiet.id).await.status,
        OrderStatus::PendingPayment
    );

    let (a, b) = tokio::join!(
        jobs::run(&world.app, now + Duration::minutes(31), Budget::default()),
        jobs::run(&world.app, now + Duration::minutes(31), Budget::default())
    );
    a.unwrap();
    b.unwrap();
    let expired = load(&world, &quiet.id).await;
    assert_eq!(expired.status, OrderStatus::Expired);
    assert_eq!(
        expired
            .timeline
            .iter()
            .filter(|s| s.status == OrderStatus::Expired)
            .count(),
        1,
        "two runs, one expiry"
    );
    assert_eq!(
        world.alipay.trades.lock().unwrap().get(quiet.id.as_str()),
        Some(&Trade::Closed),
        "closed at the provider first"
    );
    let record = payments::record_of(&world.app.store, &quiet.id, Provider::Alipay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, PaymentState::Closed);
    let saved = load(&world, &last_second.id).await;
    assert_eq!(saved.status, OrderStatus::Paid, "paid, not expired");
    assert_eq!(saved.payment.unwrap().transaction_id, "last-second");
}

async fn a_lost_notification_is_found_by_the_query(backend: Backend) {
    let world = world(backend).await;
    let now = OffsetDateTime::now_utc();
    let order = unpaid_order(&world, now).await;
    start(&world, &order, now).await;
    world
        .alipay
        .pay(order.id.as_str(), Fen::from_fen(AMOUNT), "lost-1");
    jobs::run(&world.app, now + Duration::seconds(60), Budget::default())
        .await
        .unwrap();
    assert_eq!(
        load(&world, &order.id).await.status,
        OrderStatus::PendingPayment,
        "too early"
    );
    jobs::run(&world.app, now + Duration::seconds(121), Budget::default())
        .await
        .unwrap();
    let paid = load(&world, &order.id).await;
    assert_eq!(paid.status, OrderStatus::Paid);
    // The notification arriving after all is a repeat.
    let again = payments::apply_notice(
        &world.app,
        paid_notice(Provider::Alipay, &order, "lost-1", AMOUNT),
        now + Duration::seconds(200),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(again, Applied::Repeat);
}

/// An order paid through WeChat at `at`.
async fn paid_order(world: &World, at: OffsetDateTime) -> Order {
    let order = unpaid_order(world, at).await;
    payments::apply_paid(
        &world.app,
        &order.id,
        Provider::Wechat,
        None,
        &Paid {
            transaction_id: format!("tx-{}", order.id),
            amount: Fen::from_fen(AMOUNT),
            paid_at: None,
        },
        EventKind::Notification,
        at,
    )
    .await
    .unwrap();
    load(world, &order.id).await
}

async fn act(world: &World, order: &Order, change: orders::Change) -> Order {
    let next = order.transition(&change, &world.app.config.orders).unwrap();
    orders::commit(&world.app.store, order, &next, Vec::new())
        .await
        .unwrap();
    next
}

async fn the_clock_moves_orders_on(backend: Backend) {
    let world = world(backend).await;
    let t0 = OffsetDateTime::now_utc();
    use orders::{Action, Actor, Change};

    // Paid, never accepted: refunded in full after 24 hours.
    let unaccepted = paid_order(&world, t0).await;
    // Accepted: completed 7 days after acceptance.
    let accepted = paid_order(&world, t0).await;
    let accepted = act(
        &world,
        &accepted,
        Change::new(Action::Accept, Actor::Seller, t0),
    )
    .await;
    // A refund request unanswered: approved after 3 days, then refunded.
    let asked = paid_order(&world, t0).await;
    let asked = act(
        &world,
        &asked,
        Change::new(Action::Accept, Actor::Seller, t0),
    )
    .await;
    let asked = act(
        &world,
        &asked,
        Change::new(Action::RequestRefund, Actor::Buyer, t0).reason(Some("没有按时到场".into())),
    )
    .await;

    let run = |at| jobs::run(&world.app, at, Budget::default());
    run(t0 + Duration::hours(23)).await.unwrap();
    assert_eq!(load(&world, &unaccepted.id).await.status, OrderStatus::Paid);
    run(t0 + Duration::hours(24) + Duration::seconds(1))
        .await
        .unwrap();
    let refunded = load(&world, &unaccepted.id).await;
    assert_eq!(refunded.status, OrderStatus::Refunded);
    assert_eq!(refunded.refunded_fen, Fen::from_fen(AMOUNT));
    assert_eq!(
        world.wechat.refunded(&format!("{}R01", unaccepted.id)),
        Some(Fen::from_fen(AMOUNT))
    );
    let statuses: Vec<_> = refunded.timeline.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [
            OrderStatus::PendingPayment,
            OrderStatus::Paid,
            OrderStatus::Refunding,
            OrderStatus::Refunded
        ]
    );

    run(t0 + Duration::days(3) - Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(
        load(&world, &asked.id).await.status,
        OrderStatus::RefundRequested
    );
    run(t0 + Duration::days(3) + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(load(&world, &asked.id).await.status, OrderStatus::Refunded);

    run(t0 + Duration::days(7) - Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(
        load(&world, &accepted.id).await.status,
        OrderStatus::Accepted
    );
    run(t0 + Duration::days(7) + Duration::seconds(1))
        .await
        .unwrap();
    let completed = load(&world, &accepted.id).await;
    assert_eq!(completed.status, OrderStatus::Completed);
    assert_eq!(completed.timeline.last().unwrap().actor, Actor::System);
    // Past its split deadline, unsplit (the seller has no payout account here): expired, for
    // staff (`tests/settlement_flow.rs`). Then nothing is due any more.
    let report = run(t0 + Duration::days(30)).await.unwrap();
    assert_eq!(report.changed, 1, "{report:?}");
    let expired = load(&world, &accepted.id).await;
    assert_eq!(
        expired.settlement.map(|s| s.state),
        Some(renji_shared::domain::settlement::SettleState::Expired)
    );
    let report = run(t0 + Duration::days(31)).await.unwrap();
    assert_eq!(report.changed, 0, "{report:?}");
}

async fn slow_refunds_are_followed_until_final(backend: Backend) {
    let world = world_with(backend, true).await;
    let t0 = OffsetDateTime::now_utc();
    let order = paid_order(&world, t0).await;
    let refunding = payments::cancel(&world.app, &order, t0).await.unwrap();
    assert_eq!(
        refunding.status,
        OrderStatus::Refunding,
        "the provider is still at it"
    );
    assert_eq!(refunding.refunds[0].status, RefundStatus::Processing);
    // The follow-up asks again (backing off), and the provider has finished.
    jobs::run(&world.app, t0 + Duration::minutes(5), Budget::default())
        .await
        .unwrap();
    let done = load(&world, &order.id).await;
    assert_eq!(done.status, OrderStatus::Refunded);
    assert_eq!(
        world.wechat.refund_calls.lock().unwrap().len(),
        1,
        "asked once, then queried"
    );
}

async fn a_partial_refund_returns_the_order_to_where_it_was(backend: Backend) {
    let world = world(backend).await;
    let t0 = OffsetDateTime::now_utc();
    use orders::{Action, Actor, Change};
    let order = paid_order(&world, t0).await;
    let accepted = act(
        &world,
        &order,
        Change::new(Action::Accept, Actor::Seller, t0),
    )
    .await;
    let disputed = act(
        &world,
        &accepted,
        Change::new(Action::OpenDispute, Actor::Buyer, t0),
    )
    .await;
    let partial = Change::new(Action::StaffRefund, Actor::Staff, t0).refund(Fen::from_fen(3_000));
    let refunding = act(&world, &disputed, partial).await;
    assert_eq!(refunding.refunds[0].from, OrderStatus::Accepted);
    let after = payments::request_refund(&world.app, refunding, t0)
        .await
        .unwrap();
    assert_eq!(
        after.status,
        OrderStatus::Accepted,
        "back to before the dispute"
    );
    assert_eq!(after.refunded_fen, Fen::from_fen(3_000));
    // What remains can still be refunded, and no more.
    let too_much = Change::new(Action::RequestRefund, Actor::Buyer, t0);
    let asked = act(&world, &after, too_much).await;
    let over = Change::new(Action::ApproveRefund, Actor::Seller, t0).refund(Fen::from_fen(AMOUNT));
    assert_eq!(
        asked
            .transition(&over, &world.app.config.orders)
            .unwrap_err()
            .status()
            .as_u16(),
        422
    );
    let rest = act(
        &world,
        &asked,
        Change::new(Action::ApproveRefund, Actor::Seller, t0),
    )
    .await;
    assert_eq!(rest.refunds[1].amount_fen, Fen::from_fen(AMOUNT - 3_000));
    let done = payments::request_refund(&world.app, rest, t0)
        .await
        .unwrap();
    assert_eq!(done.status, OrderStatus::Refunded);
    assert_eq!(done.refunded_fen, Fen::from_fen(AMOUNT));
    // The ledger has the payment and both refunds, once each: refunded in full, it balances.
    let entries = ledger::entries(&world.app.store, &done.id).await.unwrap();
    let kinds: Vec<_> = entries
        .iter()
        .map(|e| (e.kind, e.amount_fen.get()))
        .collect();
    assert_eq!(
        kinds,
        [
            (LedgerKind::Paid, AMOUNT),
            (LedgerKind::Refunded, 3_000),
            (LedgerKind::Refunded, AMOUNT - 3_000),
        ]
    );
    assert!(Totals::of(&entries).balances());
    assert_eq!(done.split_deadline.as_deref().map(orders::epoch), {
        let paid = orders::epoch(&done.payment.as_ref().unwrap().paid_at);
        Some(paid + 25 * 86_400)
    });
}

on_both_stores!(
    twenty_identical_notifications_pay_once,
    refused_notices_change_nothing,
    a_notification_racing_a_cancel_never_leaves_a_cancelled_order_with_the_money,
    a_trade_opened_while_cancelling_is_closed_too,
    paid_through_both_channels_one_is_refunded,
    unpaid_orders_expire_unless_paid_at_the_last_second,
    a_lost_notification_is_found_by_the_query,
    the_clock_moves_orders_on,
    slow_refunds_are_followed_until_final,
    a_partial_refund_returns_the_order_to_where_it_was,
    provider_answers_that_contradict_the_order_change_nothing,
    a_refund_reported_for_another_amount_is_not_booked,
);

/// The word of a provider (a signed answer: as trusted as a notification) that contradicts the
/// order — another amount, another transaction for the same trade — changes nothing.
async fn provider_answers_that_contradict_the_order_change_nothing(backend: Backend) {
    let world = world(backend).await;
    let now = OffsetDateTime::now_utc();
    let order = unpaid_order(&world, now).await;
    start(&world, &order, now).await;
    // "Paid", for a fen less, with no notification: the query after 2 minutes and the expiry
    // both hear it.
    world
        .alipay
        .pay(order.id.as_str(), Fen::from_fen(AMOUNT - 1), "short-1");
    for at in [now + Duration::seconds(121), now + Duration::minutes(31)] {
        let report = jobs::run(&world.app, at, Budget::default()).await.unwrap();
        assert!(report.failed >= 1, "{report:?}");
        assert_eq!(
            load(&world, &order.id).await.status,
            OrderStatus::PendingPayment
        );
    }
    assert_eq!(
        payments::cancel(&world.app, &order, now)
            .await
            .unwrap_err()
            .status()
            .as_u16(),
        503,
        "a cancel is not closed on a contradicting answer"
    );
    assert_eq!(
        load(&world, &order.id).await.status,
        OrderStatus::PendingPayment
    );

    // A second transaction for a trade already paid is not a payment of ours.
    let paid = paid_order(&world, now).await;
    let second = payments::apply_notice(
        &world.app,
        paid_notice(Provider::Wechat, &paid, "another-transaction", AMOUNT),
        now,
    )
    .await
    .unwrap();
    assert!(second.is_err(), "{second:?}");
    let record = payments::record_of(&world.app.store, &paid.id, Provider::Wechat)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, PaymentState::Paid);
    assert_eq!(record.transaction_id.unwrap(), format!("tx-{}", paid.id));
    assert_eq!(load(&world, &paid.id).await, paid);
}

async fn a_refund_reported_for_another_amount_is_not_booked(backend: Backend) {
    let store = TestStore::new(backend).await;
    let mut world = world_on(store, false).await;
    let t0 = OffsetDateTime::now_utc();
    let order = paid_order(&world, t0).await;
    let half = Arc::new(FakeProvider {
        reported_refund: Some(Fen::from_fen(AMOUNT / 2)),
        ..FakeProvider::default()
    });
    world.app.payments.wechat = Some(half.clone());
    world.wechat = half;
    let after = payments::cancel(&world.app, &order, t0).await.unwrap();
    assert_eq!(
        after.status,
        OrderStatus::Refunding,
        "not refunded on that word"
    );
    assert_eq!(after.refunded_fen, Fen::from_fen(0));
    // A notification saying the same is refused too.
    let notice = Notice::Refund {
        provider: Provider::Wechat,
        order_no: order.id.to_string(),
        out_refund_no: format!("{}R01", order.id),
        state: RefundState::Succeeded {
            refund_id: None,
            amount: Some(Fen::from_fen(AMOUNT / 2)),
        },
        paid_total: Some(Fen::from_fen(AMOUNT)),
    };
    assert!(payments::apply_notice(&world.app, notice, t0)
        .await
        .unwrap()
        .is_err());
    // So is one with the right amount of a payment of another total.
    let other_total = Notice::Refund {
        provider: Provider::Wechat,
        order_no: order.id.to_string(),
        out_refund_no: format!("{}R01", order.id),
        state: RefundState::Succeeded {
            refund_id: None,
            amount: Some(Fen::from_fen(AMOUNT)),
        },
        paid_total: Some(Fen::from_fen(AMOUNT * 50)),
    };
    assert!(payments::apply_notice(&world.app, other_total, t0)
        .await
        .unwrap()
        .is_err());
    assert_eq!(load(&world, &order.id).await.status, OrderStatus::Refunding);
}
