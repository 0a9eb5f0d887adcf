//! Paying sellers, on both stores, against providers in memory (the gateway and the settlement
//! port's other side), with the clock injected: the split of a completed order through WeChat
//! (asynchronous) and Alipay (synchronous), refunds before it, a receiver the provider closes
//! (then a new account, a new attempt), the deadline, 20 runs at once — and after every path the
//! ledger's invariant `paid = refunded + seller_paid + commission_kept + fee` (or what it holds).
//! The adapters over the real protocols are `tests/settlement.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use renji_shared::config::Config;
use renji_shared::domain::deletion;
use renji_shared::domain::orders::events::EventKind;
use renji_shared::domain::orders::jobs::{self, Budget};
use renji_shared::domain::orders::payments;
use renji_shared::domain::orders::{self, Action, Actor, Change, Order, OrderStatus};
use renji_shared::domain::payouts::{self, PayoutAccount};
use renji_shared::domain::settlement::{
    earnings, job, ledger, refunds, watch, SettleState, Shares, Totals,
};
use renji_shared::domain::subscriptions;
use renji_shared::ids::{OrderId, UserId};
use renji_shared::money::Fen;
use renji_shared::payments::{
    Gateway, GatewayError, Paid, PaymentStart, Provider, RefundRequest, RefundState, Started, Trade,
};
use renji_shared::secrets::Secrets;
use renji_shared::settlement::{
    self as port, Receiver, ReceiverKind, ReturnAnswer, ReturnRequest, Settlement, ShareOutcome,
    ShareResult, SplitAnswer, SplitRequest, SplitState, UnfreezeRequest,
};
use renji_shared::store::Record;
use renji_shared::App;
use renji_tests::{on_both_stores, Backend, TestStore};
use serde_json::json;
use time::{Duration, OffsetDateTime};

/// A payment provider that refunds at once.
#[derive(Default)]
struct FakeGateway;

#[async_trait]
impl Gateway for FakeGateway {
    async fn start(&self, start: &PaymentStart) -> Result<Started, GatewayError> {
        Ok(Started {
            prepay_id: Some(format!("prepay-{}", start.order_no)),
            client: json!({}),
        })
    }
    async fn query(&self, _: &str) -> Result<Trade, GatewayError> {
        Ok(Trade::NotFound)
    }
    async fn close(&self, _: &str) -> Result<(), GatewayError> {
        Ok(())
    }
    async fn refund(&self, refund: &RefundRequest) -> Result<RefundState, GatewayError> {
        Ok(RefundState::Succeeded {
            refund_id: Some(format!("rf-{}", refund.out_refund_no)),
            amount: Some(refund.amount),
        })
    }
    async fn refund_query(&self, _: &str, _: &str) -> Result<RefundState, GatewayError> {
        Ok(RefundState::NotFound)
    }
}

/// A split's lines: (account, amount).
type Lines = Vec<(String, i64)>;

/// A settlement product in memory. `asynchronous`: splits and unfreezes answer PROCESSING and
/// finish when asked about (WeChat); otherwise at once (Alipay). Counts every request.
#[derive(Default)]
struct FakeSharing {
    asynchronous: bool,
    /// out_order_no → (the request's shares, finished).
    splits: Mutex<HashMap<String, (Lines, bool)>>,
    unfreezes: Mutex<HashMap<String, bool>>,
    /// Every split and unfreeze request, by number (repeats included).
    calls: Mutex<Vec<String>>,
    /// Accounts the provider closed: their shares end CLOSED.
    closed: Mutex<HashSet<String>>,
    /// The next n splits are refused "too early".
    too_early: AtomicU32,
    /// Every split refused with this code (not "too early", not the receiver's).
    refuse: Mutex<Option<String>>,
}

impl FakeSharing {
    fn calls_of(&self, no: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| *c == no)
            .count()
    }

    fn answer(&self, no: &str, lines: &[(String, i64)], finished: bool) -> SplitAnswer {
        let closed = self.closed.lock().unwrap();
        SplitAnswer {
            out_order_no: no.into(),
            order_id: Some(format!("p-{no}")),
            state: match finished {
                true => SplitState::Finished,
                false => SplitState::Processing,
            },
            shares: lines
                .iter()
                .map(|(account, amount)| ShareOutcome {
                    kind: None,
                    account: account.clone(),
                    amount: Fen::from_fen(*amount),
                    result: match (finished, closed.contains(account)) {
                        (false, _) => ShareResult::Pending,
                        (true, false) => ShareResult::Success,
                        (true, true) => ShareResult::Closed {
                            reason: "ACCOUNT_ABNORMAL".into(),
                        },
                    },
                    detail_id: None,
                })
                .collect(),
        }
    }
}

#[async_trait]
impl Settlement for FakeSharing {
    async fn add_receiver(&self, _: &Receiver) -> Result<(), GatewayError> {
        Ok(())
    }
    async fn delete_receiver(&self, _: &Receiver) -> Result<(), GatewayError> {
        Ok(())
    }
    async fn split(&self, split: &SplitRequest) -> Result<SplitAnswer, GatewayError> {
        // Slow, so that runs at once would overlap here if they got this far.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.calls.lock().unwrap().push(split.out_order_no.clone());
        assert!(!split.finish, "the split leaves the rest frozen");
        if self
            .too_early
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(GatewayError::Refused {
                code: "INVALID_REQUEST".into(),
                message: "订单处理中，暂时无法分账，请稍后再试".into(),
            });
        }
        if let Some(code) = self.refuse.lock().unwrap().clone() {
            return Err(GatewayError::Refused {
                code,
                message: "分账金额超过最大可分账比例".into(),
            });
        }
        let lines: Vec<(String, i64)> = split
            .shares
            .iter()
            .map(|s| (s.receiver.account.clone(), s.amount.get()))
            .collect();
        let mut splits = self.splits.lock().unwrap();
        let entry = splits
            .entry(split.out_order_no.clone())
            .or_insert((lines.clone(), !self.asynchronous));
        assert_eq!(entry.0, lines, "a number with another body");
        let (lines, finished) = entry.clone();
        drop(splits);
        Ok(self.answer(&split.out_order_no, &lines, finished))
    }
    async fn query_split(&self, _: &str, no: &str) -> Result<Option<SplitAnswer>, GatewayError> {
        if let Some(done) = self.unfreezes.lock().unwrap().get_mut(no) {
            *done = true;
            return Ok(Some(self.answer(no, &[], true)));
        }
        let mut splits = self.splits.lock().unwrap();
        let Some(entry) = splits.get_mut(no) else {
            return Ok(None);
        };
        entry.1 = true;
        let lines = entry.0.clone();
        drop(splits);
        Ok(Some(self.answer(no, &lines, true)))
    }
    async fn unfreeze(&self, unfreeze: &UnfreezeRequest) -> Result<SplitAnswer, GatewayError> {
        self.calls
            .lock()
            .unwrap()
            .push(unfreeze.out_order_no.clone());
        let done = *self
            .unfreezes
            .lock()
            .unwrap()
            .entry(unfreeze.out_order_no.clone())
            .or_insert(!self.asynchronous);
        Ok(self.answer(&unfreeze.out_order_no, &[], done))
    }
    async fn return_share(&self, _: &ReturnRequest) -> Result<ReturnAnswer, GatewayError> {
        Err(GatewayError::Unavailable("no returns here".into()))
    }
    async fn query_return(&self, _: &str, _: &str) -> Result<Option<ReturnAnswer>, GatewayError> {
        Ok(None)
    }
    async fn remaining(&self, _: &str) -> Result<Fen, GatewayError> {
        Ok(Fen::from_fen(0))
    }
}

struct World {
    app: App,
    wechat: Arc<FakeSharing>,
    alipay: Arc<FakeSharing>,
    _store: TestStore,
}

async fn world(backend: Backend) -> World {
    let store = TestStore::new(backend).await;
    let config = Config::from_lookup(|name| match name {
        "RENJI_SESSION_SECRET" => Some("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into()),
        "RENJI_PII_KEYS" => Some("p1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into()),
        _ => None,
    })
    .unwrap();
    let secrets = Secrets::from_env(std::time::Duration::from_secs(60));
    let mut app = App::with_secrets(config, store.store.clone(), &secrets).unwrap();
    app.payments.wechat = Some(Arc::new(FakeGateway));
    app.payments.alipay = Some(Arc::new(FakeGateway));
    let wechat = Arc::new(FakeSharing {
        asynchronous: true,
        ..FakeSharing::default()
    });
    let alipay = Arc::new(FakeSharing::default());
    app.payments.wechat_settlement = Some(wechat.clone());
    app.payments.alipay_settlement = Some(alipay.clone());
    World {
        app,
        wechat,
        alipay,
        _store: store,
    }
}

const AMOUNT: i64 = 12_345;

async fn load(world: &World, id: &OrderId) -> Order {
    orders::get(&world.app.store, id).await.unwrap().unwrap()
}

/// An order paid through `provider` at `at`.
async fn paid_order(world: &World, provider: Provider, at: OffsetDateTime) -> Order {
    let order = renji_tests::unpaid_order(&world.app, AMOUNT, at).await;
    payments::apply_paid(
        &world.app,
        &order.id,
        provider,
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

async fn act(world: &World, order: &Order, change: Change) -> Order {
    let next = order.transition(&change, &world.app.config.orders).unwrap();
    orders::commit(&world.app.store, order, &next, Vec::new())
        .await
        .unwrap();
    next
}

/// Accepted and confirmed at `at`: completed.
async fn completed(world: &World, order: &Order, at: OffsetDateTime) -> Order {
    let accepted = act(world, order, Change::new(Action::Accept, Actor::Seller, at)).await;
    act(
        world,
        &accepted,
        Change::new(Action::Confirm, Actor::Buyer, at),
    )
    .await
}

fn receiver(provider: Provider, account: &str) -> Receiver {
    Receiver {
        kind: match provider {
            Provider::Wechat => ReceiverKind::WechatOpenid,
            Provider::Alipay => ReceiverKind::AlipayUserId,
        },
        account: account.into(),
        name: None,
    }
}

/// The seller's payout account at `provider`, stored as `PUT /v1/me/payout-accounts` stores it
/// (the registration at the provider is the payout tests').
async fn bind(world: &World, seller: &UserId, provider: Provider, account: &str) {
    let ring = world.app.pii().await.unwrap();
    let field = format!("payout.{}.account", provider.as_str());
    let record = PayoutAccount {
        channel: provider,
        kind: receiver(provider, account).kind,
        account_masked: payouts::mask_account(account),
        name_masked: None,
        account_sealed: ring.seal(seller, &field, account).unwrap(),
        name_sealed: None,
        bound_at: orders::rfc3339(OffsetDateTime::now_utc()),
        version: 1,
    };
    let key = renji_shared::store::keys::payout_account(seller, provider.as_str());
    world
        .app
        .store
        .transact(vec![renji_shared::store::Write::put(
            record.to_item(key, None).unwrap(),
        )])
        .await
        .unwrap();
}

/// When the split of an order completed at `at` is due.
fn due(world: &World, at: OffsetDateTime) -> OffsetDateTime {
    at + Duration::seconds(world.app.config.orders.settle_after.as_secs() as i64 + 1)
}

async fn run(world: &World, at: OffsetDateTime) -> jobs::Report {
    jobs::run(&world.app, at, Budget::default()).await.unwrap()
}

async fn totals(world: &World, id: &OrderId) -> Totals {
    Totals::of(&ledger::entries(&world.app.store, id).await.unwrap())
}

async fn watched(world: &World, id: &OrderId) -> bool {
    world
        .app
        .store
        .get(&renji_shared::store::keys::settle_watch(id))
        .await
        .unwrap()
        .is_some()
}

/// The `settlement_failed` messages owed to `seller`, oldest first.
async fn failures_told(world: &World, seller: &UserId) -> Vec<subscriptions::Notification> {
    let mut notes: Vec<_> = subscriptions::notifications(&world.app.store, seller)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.kind == subscriptions::Kind::SettlementFailed)
        .collect();
    notes.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    notes
}

fn state(order: &Order) -> Option<SettleState> {
    order.settlement.as_ref().map(|s| s.state)
}

/// Runs the job until the split is final (at most `n` runs, a minute apart after `from`).
async fn until_final(world: &World, id: &OrderId, from: OffsetDateTime) -> Order {
    let mut at = from;
    for _ in 0..12 {
        run(world, at).await;
        let order = load(world, id).await;
        if order.settled() || state(&order) == Some(SettleState::SettleFailed) {
            return order;
        }
        at += Duration::hours(7);
    }
    load(world, id).await
}

async fn a_completed_order_is_split_and_balances(backend: Backend) {
    let world = world(backend).await;
    for provider in Provider::ALL {
        let fake = match provider {
            Provider::Wechat => &world.wechat,
            Provider::Alipay => &world.alipay,
        };
        let t0 = OffsetDateTime::now_utc();
        let order = paid_order(&world, provider, t0).await;
        assert!(watched(&world, &order.id).await, "watched from the payment");
        bind(&world, &order.seller_id, provider, "seller-account").await;
        let done = completed(&world, &order, t0).await;
        // Not before the dispute window and the delay have passed.
        run(&world, due(&world, t0) - Duration::seconds(5)).await;
        assert_eq!(load(&world, &done.id).await.settlement, None);
        assert_eq!(totals(&world, &done.id).await.held(), AMOUNT);

        let at = due(&world, t0);
        run(&world, at).await;
        let first = load(&world, &done.id).await;
        let split_no = port::split_no(done.id.as_str());
        let s = first.settlement.clone().unwrap();
        assert_eq!(s.out_order_no, split_no);
        assert_eq!(s.attempt, 1);
        let shares = Shares::of(Fen::from_fen(AMOUNT), &done.settle.unwrap());
        assert_eq!(s.shares, shares);
        match provider {
            // PROCESSING: the seller's share is still held.
            Provider::Wechat => {
                assert_eq!(s.state, SettleState::Processing);
                assert_eq!(
                    totals(&world, &done.id).await.held(),
                    shares.seller_fen.get()
                );
            }
            // Synchronous: paid and the rest unfrozen in the one run.
            Provider::Alipay => assert_eq!(s.state, SettleState::Paid),
        }
        let paid = until_final(&world, &done.id, at + Duration::minutes(2)).await;
        assert_eq!(state(&paid), Some(SettleState::Paid), "{provider:?}");
        let t = totals(&world, &done.id).await;
        assert!(t.balances(), "{provider:?} {t:?}");
        assert_eq!(t.seller_paid, shares.seller_fen.get());
        assert_eq!(t.fee, shares.fee_fen.get());
        assert_eq!(t.seller_payable, 0);
        assert_eq!(fake.calls_of(&split_no), 1, "{provider:?}");
        assert_eq!(fake.calls_of(&port::unfreeze_no(done.id.as_str())), 1);
        assert!(
            !watched(&world, &done.id).await,
            "the watch goes when settled"
        );
        assert_eq!(paid.due_at.filter(|_| paid.due_kind().is_some()), None);
        // The seller's earnings.
        let (sums, items, _) = earnings::earnings(&world.app.store, &done.seller_id, 20, None)
            .await
            .unwrap();
        assert_eq!(sums["paid_fen"], json!(shares.seller_fen.get()));
        assert_eq!(sums["pending_fen"], json!(0));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["state"], "paid");
        assert_eq!(items[0]["seller_fen"], json!(shares.seller_fen.get()));
        assert_eq!(items[0]["ledger"]["held_fen"], json!(0));
        assert_eq!(items[0]["listing_title"], "婚礼跟拍");
        // Nothing more to do.
        assert!(!job::settle(&world.app, &paid, at + Duration::days(1))
            .await
            .unwrap());
    }
}

async fn refunds_before_the_split_make_it_smaller_or_nothing(backend: Backend) {
    let world = world(backend).await;
    let t0 = OffsetDateTime::now_utc();
    // Partial: 3 000 back through a dispute, then completed.
    let order = paid_order(&world, Provider::Alipay, t0).await;
    bind(
        &world,
        &order.seller_id,
        Provider::Alipay,
        "2088000000000001",
    )
    .await;
    let disputed = disputed(&world, &order, t0).await;
    let refunding = act(
        &world,
        &disputed,
        Change::new(Action::StaffRefund, Actor::Staff, t0).refund(Fen::from_fen(3_000)),
    )
    .await;
    let back = payments::request_refund(&world.app, refunding, t0)
        .await
        .unwrap();
    assert_eq!(back.status, OrderStatus::Accepted);
    let done = act(
        &world,
        &back,
        Change::new(Action::Confirm, Actor::Buyer, t0),
    )
    .await;
    let paid = until_final(&world, &done.id, due(&world, t0)).await;
    let s = paid.settlement.clone().unwrap();
    assert_eq!(s.state, SettleState::Paid);
    assert_eq!(
        s.shares,
        Shares::of(Fen::from_fen(AMOUNT - 3_000), &done.settle.unwrap())
    );
    let t = totals(&world, &done.id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(t.refunded, 3_000);

    // In full: refunded, never split; the watch goes at the deadline, the ledger balances.
    let order = paid_order(&world, Provider::Wechat, t0).await;
    let refunded = payments::refund_now(
        &world.app,
        &order,
        Change::new(Action::Decline, Actor::Seller, t0),
    )
    .await
    .unwrap();
    let refunded = match refunded.status {
        OrderStatus::Refunding => payments::request_refund(&world.app, refunded, t0)
            .await
            .unwrap(),
        _ => refunded,
    };
    assert_eq!(refunded.status, OrderStatus::Refunded);
    assert!(totals(&world, &order.id).await.balances());
    let deadline = orders::epoch(refunded.split_deadline.as_deref().unwrap());
    // Nothing is owed to the seller: no alarm near the deadline.
    let near = OffsetDateTime::from_unix_timestamp(deadline - 86_400).unwrap();
    let (listed, _) = watch::alarms(&world.app, false, near, 50, None)
        .await
        .unwrap();
    assert!(
        listed.iter().all(|i| i["order_id"] != json!(order.id)),
        "{listed:?}"
    );
    let after = OffsetDateTime::from_unix_timestamp(deadline + 1).unwrap();
    run(&world, after).await;
    watch::run(&world.app, after, 50).await.unwrap();
    assert!(!watched(&world, &order.id).await);
    assert_eq!(load(&world, &order.id).await.settlement, None);
    assert_eq!(world.wechat.calls.lock().unwrap().len(), 0);
    let (_, items, _) = earnings::earnings(&world.app.store, &order.seller_id, 20, None)
        .await
        .unwrap();
    assert_eq!(items[0]["settlement"], "nothing");
    assert_eq!(items[0]["seller_fen"], json!(0));
}

async fn a_closed_receiver_fails_until_the_seller_fixes_the_account(backend: Backend) {
    let world = world(backend).await;
    let t0 = OffsetDateTime::now_utc();
    let order = paid_order(&world, Provider::Wechat, t0).await;
    let done = completed(&world, &order, t0).await;
    let shares = Shares::of(Fen::from_fen(AMOUNT), &done.settle.unwrap());

    // No account at all: failed, nothing asked of the provider.
    let at = due(&world, t0);
    run(&world, at).await;
    let none = load(&world, &done.id).await;
    assert_eq!(state(&none), Some(SettleState::SettleFailed));
    assert_eq!(
        none.settlement.as_ref().unwrap().failure.as_deref(),
        Some(job::NO_PAYOUT_ACCOUNT)
    );
    assert!(world.wechat.calls.lock().unwrap().is_empty());
    // The seller is told to bind an account before the deadline: one message, however many
    // runs look at the failed split again (and 20 at once).
    let told = failures_told(&world, &done.seller_id).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].subject, format!("order:{}", done.id));
    assert_eq!(told[0].data["character_string1"], done.id.to_string());
    assert_eq!(told[0].data["thing2"], "婚礼跟拍");
    assert!(
        told[0].data["thing3"].starts_with("请于")
            && told[0].data["thing3"].ends_with("前绑定收款账户"),
        "{:?}",
        told[0].data
    );
    assert!(told[0].data.contains_key("time4"));
    run(&world, at + Duration::seconds(job::RECHECK_SECS + 1)).await;
    let again = load(&world, &done.id).await;
    futures_util::future::join_all((0..20).map(|_| {
        job::settle(
            &world.app,
            &again,
            at + Duration::seconds(2 * job::RECHECK_SECS + 2),
        )
    }))
    .await;
    assert_eq!(failures_told(&world, &done.seller_id).await.len(), 1);

    // An account, which the provider closes: the split ends CLOSED.
    bind(&world, &done.seller_id, Provider::Wechat, "openid-old").await;
    world
        .wechat
        .closed
        .lock()
        .unwrap()
        .insert("openid-old".into());
    // (After the runs above: the failed split is looked at again then.)
    let at = at + Duration::seconds(4 * job::RECHECK_SECS);
    let failed = until_final(&world, &done.id, at).await;
    let s = failed.settlement.clone().unwrap();
    assert_eq!(s.state, SettleState::SettleFailed);
    assert_eq!(s.failure.as_deref(), Some("ACCOUNT_ABNORMAL"));
    assert_eq!(
        s.attempt, 1,
        "the first number: no split was asked without an account"
    );
    let first_no = port::split_no(done.id.as_str());
    assert_eq!(world.wechat.calls_of(&first_no), 1);
    // A second failure, a second message: bind the account again.
    let told = failures_told(&world, &done.seller_id).await;
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told[1].data["thing3"].ends_with("前重新绑定收款账户"));
    // The share stays frozen: held.
    let t = totals(&world, &done.id).await;
    assert_eq!(t.held(), shares.seller_fen.get(), "{t:?}");
    let (sums, items, _) = earnings::earnings(&world.app.store, &done.seller_id, 20, None)
        .await
        .unwrap();
    assert_eq!(sums["failed_fen"], json!(shares.seller_fen.get()));
    assert_eq!(items[0]["state"], "failed");
    assert_eq!(items[0]["failure"], "ACCOUNT_ABNORMAL");

    // Unsettled earnings block the seller's deletion (past the dispute window), listed.
    let later = at + Duration::days(1);
    let blocking = deletion::blocking(&world.app, &done.seller_id, later)
        .await
        .unwrap();
    assert_eq!(
        blocking,
        [
            json!({"kind": "order", "id": done.id, "role": "seller", "status": "completed",
            "settlement": "settle_failed"})
        ]
    );
    // Looked at again with the same account: still failed, nothing asked.
    run(&world, later).await;
    assert_eq!(
        state(&load(&world, &done.id).await),
        Some(SettleState::SettleFailed)
    );
    assert_eq!(world.wechat.calls.lock().unwrap().len(), 1);

    // A new account: attempt 2, a new number, paid; the ledger balances.
    bind(&world, &done.seller_id, Provider::Wechat, "openid-new").await;
    let paid = until_final(&world, &done.id, later + Duration::hours(2)).await;
    let s = paid.settlement.clone().unwrap();
    assert_eq!(s.state, SettleState::Paid);
    assert_eq!(s.attempt, 2);
    assert_eq!(s.out_order_no, port::split_no_attempt(done.id.as_str(), 2));
    assert_eq!(world.wechat.calls_of(&s.out_order_no), 1);
    let t = totals(&world, &done.id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(t.seller_paid, shares.seller_fen.get());
    assert_eq!(t.seller_payable, 0, "no payable counted twice");
    // Settled: nothing blocks the deletion any more.
    let blocking = deletion::blocking(&world.app, &done.seller_id, later + Duration::days(2))
        .await
        .unwrap();
    assert!(blocking.is_empty(), "{blocking:?}");
}

async fn unsplit_past_the_deadline_expires_and_staff_are_alarmed(backend: Backend) {
    let world = world(backend).await;
    let t0 = OffsetDateTime::now_utc();
    // Disputed and never decided.
    let order = paid_order(&world, Provider::Wechat, t0).await;
    bind(&world, &order.seller_id, Provider::Wechat, "openid").await;
    let disputed = disputed(&world, &order, t0).await;
    let deadline = orders::epoch(disputed.split_deadline.as_deref().unwrap());
    let at = |secs: i64| OffsetDateTime::from_unix_timestamp(secs).unwrap();
    // Not yet alarmed 4 days before; alarmed within 3 days.
    let (listed, _) = watch::alarms(&world.app, false, at(deadline - 4 * 86_400), 50, None)
        .await
        .unwrap();
    assert!(listed.iter().all(|i| i["order_id"] != json!(order.id)));
    let (listed, _) = watch::alarms(&world.app, false, at(deadline - 2 * 86_400), 50, None)
        .await
        .unwrap();
    let item = listed
        .iter()
        .find(|i| i["order_id"] == json!(order.id))
        .expect("alarmed");
    assert_eq!(item["status"], "disputed");
    assert_eq!(item["held_fen"], json!(AMOUNT));
    // Past it: expired, what is held stays on the ledger, listed for staff.
    let report = watch::run(&world.app, at(deadline + 1), 50).await.unwrap();
    assert_eq!(report.expired, 1, "{report:?}");
    let expired = load(&world, &order.id).await;
    assert_eq!(state(&expired), Some(SettleState::Expired));
    assert_eq!(
        expired.status,
        OrderStatus::Disputed,
        "the order's state is its own"
    );
    // Renji's commission is its own once the funds are released: what is held is the seller's.
    let shares = Shares::of(Fen::from_fen(AMOUNT), &order.settle.unwrap());
    assert_eq!(
        totals(&world, &order.id).await.held(),
        shares.seller_fen.get()
    );
    let (listed, _) = watch::alarms(&world.app, true, at(deadline + 1), 50, None)
        .await
        .unwrap();
    assert!(listed.iter().any(|i| i["order_id"] == json!(order.id)));
    // Again: nothing more.
    let report = watch::run(&world.app, at(deadline + 100), 50)
        .await
        .unwrap();
    assert_eq!(report.expired, 0);
    assert!(world.wechat.calls.lock().unwrap().is_empty());
    // Nothing was split: staff may still decide the dispute with a refund (an ordinary one),
    // and once it is all back the seller is owed nothing and the ledger balances.
    let refunding = act(
        &world,
        &expired,
        Change::new(Action::StaffRefund, Actor::Staff, at(deadline + 200)),
    )
    .await;
    let refunded = payments::request_refund(&world.app, refunding, at(deadline + 200))
        .await
        .unwrap();
    assert_eq!(refunded.status, OrderStatus::Refunded);
    assert!(totals(&world, &order.id).await.balances());
    let (sums, items, _) = earnings::earnings(&world.app.store, &order.seller_id, 20, None)
        .await
        .unwrap();
    let item = items
        .iter()
        .find(|i| i["order_id"] == json!(order.id))
        .unwrap();
    assert_eq!(
        (&item["settlement"], &item["seller_fen"]),
        (&json!("nothing"), &json!(0))
    );
    assert_eq!(sums["failed_fen"], json!(0), "{sums}");

    // A completed order whose split failed, past its deadline: expired by its job.
    let order = paid_order(&world, Provider::Alipay, t0).await;
    let done = completed(&world, &order, t0).await;
    run(&world, due(&world, t0)).await;
    assert_eq!(
        state(&load(&world, &done.id).await),
        Some(SettleState::SettleFailed)
    );
    bind(
        &world,
        &done.seller_id,
        Provider::Alipay,
        "2088000000000009",
    )
    .await;
    let deadline = orders::epoch(done.split_deadline.as_deref().unwrap());
    run(&world, at(deadline + 1)).await;
    let expired = load(&world, &done.id).await;
    assert_eq!(
        state(&expired),
        Some(SettleState::Expired),
        "no split past the deadline"
    );
    assert!(world.alipay.calls.lock().unwrap().is_empty());
    // A failed or expired split moved nothing: the order can still be disputed.
    let disputed = act(
        &world,
        &expired,
        Change::new(Action::OpenDispute, Actor::Buyer, at(deadline + 2)),
    )
    .await;
    assert_eq!(disputed.status, OrderStatus::Disputed);

    // A split the provider keeps refusing (not for the receiver): asked again with backoff until
    // the deadline, then expired.
    *world.alipay.refuse.lock().unwrap() = Some("ACQ.ALLOC_AMOUNT_VALIDATE_ERROR".into());
    let order = paid_order(&world, Provider::Alipay, t0).await;
    bind(
        &world,
        &order.seller_id,
        Provider::Alipay,
        "2088000000000010",
    )
    .await;
    let done = completed(&world, &order, t0).await;
    run(&world, due(&world, t0)).await;
    let refused = load(&world, &done.id).await;
    assert_eq!(state(&refused), Some(SettleState::Processing));
    let deadline = orders::epoch(done.split_deadline.as_deref().unwrap());
    run(&world, at(deadline + 1)).await;
    let expired = load(&world, &done.id).await;
    assert_eq!(state(&expired), Some(SettleState::Expired));
    let no = port::split_no(done.id.as_str());
    assert_eq!(
        world.alipay.calls_of(&no),
        1,
        "past the deadline nothing new is asked"
    );
    let shares = Shares::of(Fen::from_fen(AMOUNT), &done.settle.unwrap());
    assert_eq!(
        totals(&world, &done.id).await.held(),
        shares.seller_fen.get()
    );
}

/// Whether staff's expired list (`?state=expired`) names `id`.
async fn listed_expired(world: &World, id: &OrderId) -> bool {
    let (listed, _) = watch::alarms(&world.app, true, OffsetDateTime::now_utc(), 100, None)
        .await
        .unwrap();
    listed.iter().any(|i| i["order_id"] == json!(id))
}

/// A completed order whose split failed (no payout account, or `closed` the account the
/// provider closes), run past its deadline: expired.
async fn expired_order(world: &World, t0: OffsetDateTime, closed: Option<&str>) -> Order {
    let order = paid_order(world, Provider::Wechat, t0).await;
    if let Some(account) = closed {
        bind(world, &order.seller_id, Provider::Wechat, account).await;
        world.wechat.closed.lock().unwrap().insert(account.into());
    }
    let done = completed(world, &order, t0).await;
    until_final(world, &done.id, due(world, t0)).await;
    assert_eq!(
        state(&load(world, &done.id).await),
        Some(SettleState::SettleFailed)
    );
    let deadline = orders::epoch(done.split_deadline.as_deref().unwrap());
    run(
        world,
        OffsetDateTime::from_unix_timestamp(deadline + 1).unwrap(),
    )
    .await;
    let expired = load(world, &done.id).await;
    assert_eq!(state(&expired), Some(SettleState::Expired));
    assert!(listed_expired(world, &done.id).await);
    expired
}

async fn staff_refund(world: &World, order: &Order, amount: Option<i64>) -> Order {
    let refund = refunds::StaffRefund {
        amount: amount.map(Fen::from_fen),
        reason: "the split expired: the seller's share goes back".into(),
    };
    let after = refunds::staff_refund(&world.app, &order.id, refund, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_ne!(
        after.status,
        OrderStatus::Refunding,
        "the fake refunds at once"
    );
    load(world, &order.id).await
}

async fn staff_resolve_an_expired_split_by_refunding_the_buyer(backend: Backend) {
    let world = world(backend).await;
    let t0 = OffsetDateTime::now_utc();
    // Never asked (no payout account): the seller's share is refunded in two parts.
    let order = expired_order(&world, t0, None).await;
    let shares = Shares::of(Fen::from_fen(AMOUNT), &order.settle.unwrap());
    let seller = shares.seller_fen.get();
    assert_eq!(totals(&world, &order.id).await.held(), seller);
    let part = staff_refund(&world, &order, Some(seller / 2)).await;
    assert_eq!(part.status, OrderStatus::Completed);
    assert_eq!(part.refunded_fen.get(), seller / 2);
    assert_eq!(
        part.refunds[0]
            .after_expiry
            .as_ref()
            .map(|a| a.seller_part_fen.get()),
        Some(seller / 2)
    );
    assert_eq!(state(&part), Some(SettleState::Expired), "some still held");
    assert_eq!(totals(&world, &order.id).await.held(), seller - seller / 2);
    assert!(listed_expired(&world, &order.id).await);
    let (sums, _, _) = earnings::earnings(&world.app.store, &order.seller_id, 20, None)
        .await
        .unwrap();
    assert_eq!(sums["failed_fen"], json!(seller - seller / 2), "{sums}");
    let resolved = staff_refund(&world, &order, Some(seller - seller / 2)).await;
    assert_eq!(resolved.status, OrderStatus::Completed);
    assert_eq!(state(&resolved), Some(SettleState::Nothing));
    let t = totals(&world, &order.id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(t.refunded, seller);
    assert_eq!(t.seller_payable, 0);
    assert_eq!(t.seller_paid, 0, "nothing went to the seller");
    // Renji keeps its commission less the fee of what the order kept (the provider gave the
    // fee of the seller's share back with the refunds).
    let kept_fee = Shares::of(Fen::from_fen(AMOUNT - seller), &order.settle.unwrap()).fee_fen;
    assert_eq!(t.fee, kept_fee.get(), "{t:?}");
    assert_eq!(
        t.commission_kept,
        shares.commission_fen.get() - kept_fee.get(),
        "Renji keeps its commission"
    );
    assert!(!listed_expired(&world, &order.id).await, "resolved");
    assert!(!watched(&world, &order.id).await);
    let s = resolved.settlement.clone().unwrap();
    assert_eq!(s.shares.seller_fen.get(), 0);
    assert!(
        s.failure
            .as_deref()
            .is_some_and(|f| f.starts_with(job::DEADLINE_PASSED)),
        "the history stays: {s:?}"
    );
    let audited = renji_shared::domain::audit::list(
        &world.app.store,
        &renji_shared::domain::audit::Filter::parse(None, Some(&format!("order:{}", order.id)))
            .unwrap(),
        50,
        None,
    )
    .await
    .unwrap()
    .0;
    assert!(
        audited.iter().any(|r| r["action"] == "settlement.resolve"),
        "{audited:?}"
    );
    // The seller's earnings: nothing paid, nothing failed any more.
    let (sums, _, _) = earnings::earnings(&world.app.store, &order.seller_id, 20, None)
        .await
        .unwrap();
    assert_eq!(sums["failed_fen"], json!(0), "{sums}");
    assert_eq!(sums["paid_fen"], json!(0), "{sums}");
    // Resolved: no more refund of the split here (it is not paid, nor expired).
    let again = refunds::staff_refund(
        &world.app,
        &order.id,
        refunds::StaffRefund {
            amount: None,
            reason: "again".into(),
        },
        OffsetDateTime::now_utc(),
    )
    .await;
    assert!(
        matches!(
            &again,
            Err(renji_shared::Error::Conflict {
                code: "not_settled",
                ..
            })
        ),
        "{again:?}"
    );

    // Asked and closed at the provider (its entries written then): all that remains goes back,
    // Renji's commission with it, and the provider's fee with the refunds (as before a split).
    let order = expired_order(&world, t0, Some("openid-closed")).await;
    assert_eq!(totals(&world, &order.id).await.held(), seller);
    let refunded = staff_refund(&world, &order, None).await;
    assert_eq!(refunded.status, OrderStatus::Refunded);
    assert_eq!(state(&refunded), Some(SettleState::Nothing));
    let t = totals(&world, &order.id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(t.refunded, AMOUNT);
    assert_eq!((t.commission_kept, t.fee), (0, 0), "{t:?}");
    assert!(!listed_expired(&world, &order.id).await);

    // Failed (its entries written), then partly refunded by a dispute's decision before the
    // deadline: the expiry holds the share of what is left, and its resolution balances.
    let order = paid_order(&world, Provider::Wechat, t0).await;
    bind(
        &world,
        &order.seller_id,
        Provider::Wechat,
        "openid-closed-2",
    )
    .await;
    world
        .wechat
        .closed
        .lock()
        .unwrap()
        .insert("openid-closed-2".into());
    let done = completed(&world, &order, t0).await;
    let failed = until_final(&world, &done.id, due(&world, t0)).await;
    assert_eq!(state(&failed), Some(SettleState::SettleFailed));
    dispute_refund(&world, failed, Some(3_000), t0).await;
    let deadline = orders::epoch(done.split_deadline.as_deref().unwrap());
    run(
        &world,
        OffsetDateTime::from_unix_timestamp(deadline + 1).unwrap(),
    )
    .await;
    let expired = load(&world, &done.id).await;
    assert_eq!(state(&expired), Some(SettleState::Expired));
    let left = Shares::of(Fen::from_fen(AMOUNT - 3_000), &done.settle.unwrap());
    assert_eq!(expired.settlement.as_ref().unwrap().shares, left);
    assert_eq!(totals(&world, &done.id).await.held(), left.seller_fen.get());
    let resolved = staff_refund(&world, &expired, Some(left.seller_fen.get())).await;
    assert_eq!(state(&resolved), Some(SettleState::Nothing));
    let t = totals(&world, &done.id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(t.seller_payable, 0);

    // Disputed until the deadline: the dispute's own refund decision resolves it.
    let order = paid_order(&world, Provider::Wechat, t0).await;
    let disputed = disputed(&world, &order, t0).await;
    let deadline = orders::epoch(disputed.split_deadline.as_deref().unwrap());
    watch::run(
        &world.app,
        OffsetDateTime::from_unix_timestamp(deadline + 1).unwrap(),
        50,
    )
    .await
    .unwrap();
    let expired = load(&world, &order.id).await;
    assert_eq!(state(&expired), Some(SettleState::Expired));
    let refunding = act(
        &world,
        &expired,
        Change::new(Action::StaffRefund, Actor::Staff, t0).refund(Fen::from_fen(seller)),
    )
    .await;
    let decided = payments::request_refund(&world.app, refunding, t0)
        .await
        .unwrap();
    assert_eq!(decided.status, OrderStatus::Accepted);
    assert_eq!(state(&decided), Some(SettleState::Nothing));
    let t = totals(&world, &order.id).await;
    assert!(t.balances(), "{t:?}");
    assert!(!listed_expired(&world, &order.id).await);
    // A split in progress still refuses a dispute's refund.
    let split = paid_order(&world, Provider::Wechat, t0).await;
    bind(&world, &split.seller_id, Provider::Wechat, "openid-fine").await;
    let done = completed(&world, &split, t0).await;
    run(&world, due(&world, t0)).await;
    let processing = load(&world, &done.id).await;
    assert_eq!(state(&processing), Some(SettleState::Processing));
    let refused = processing.transition(
        &Change::new(Action::OpenDispute, Actor::Buyer, t0),
        &world.app.config.orders,
    );
    assert!(
        matches!(
            &refused,
            Err(renji_shared::Error::Conflict {
                code: "settlement_started",
                ..
            })
        ),
        "{refused:?}"
    );
}

async fn twenty_runs_at_once_ask_the_provider_once(backend: Backend) {
    let world = world(backend).await;
    let t0 = OffsetDateTime::now_utc();
    let order = paid_order(&world, Provider::Wechat, t0).await;
    bind(&world, &order.seller_id, Provider::Wechat, "openid").await;
    let done = completed(&world, &order, t0).await;
    world.wechat.too_early.store(1, Ordering::SeqCst);
    let at = due(&world, t0);
    let fresh = load(&world, &done.id).await;
    let results =
        futures_util::future::join_all((0..20).map(|_| job::settle(&world.app, &fresh, at))).await;
    let won = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(won, 1, "{results:?}");
    let split_no = port::split_no(done.id.as_str());
    assert_eq!(world.wechat.calls_of(&split_no), 1, "the losers never call");
    // "Too early": not a failure, asked again later (the same number, the same body).
    let s = load(&world, &done.id).await.settlement.unwrap();
    assert_eq!(s.state, SettleState::Processing);
    let mut at = at + Duration::minutes(2);
    for _ in 0..3 {
        let fresh = load(&world, &done.id).await;
        futures_util::future::join_all((0..20).map(|_| job::settle(&world.app, &fresh, at))).await;
        at += Duration::hours(7);
    }
    let paid = load(&world, &done.id).await;
    assert_eq!(state(&paid), Some(SettleState::Paid));
    assert_eq!(
        world.wechat.calls_of(&split_no),
        2,
        "once refused, once taken"
    );
    assert_eq!(
        world.wechat.calls_of(&port::unfreeze_no(done.id.as_str())),
        1
    );
    assert!(totals(&world, &done.id).await.balances());
}

/// Accepted by the seller, then disputed by the buyer, at `at`.
async fn disputed(world: &World, order: &Order, at: OffsetDateTime) -> Order {
    let accepted = act(world, order, Change::new(Action::Accept, Actor::Seller, at)).await;
    act(
        world,
        &accepted,
        Change::new(Action::OpenDispute, Actor::Buyer, at),
    )
    .await
}

/// Disputed by the buyer and refunded by staff's decision (all that remains when `amount` is
/// absent), at `at`.
async fn dispute_refund(
    world: &World,
    order: Order,
    amount: Option<i64>,
    at: OffsetDateTime,
) -> Order {
    let disputed = act(
        world,
        &order,
        Change::new(Action::OpenDispute, Actor::Buyer, at),
    )
    .await;
    let mut change = Change::new(Action::StaffRefund, Actor::Staff, at);
    if let Some(amount) = amount {
        change = change.refund(Fen::from_fen(amount));
    }
    let refunding = act(world, &disputed, change).await;
    payments::request_refund(&world.app, refunding, at)
        .await
        .unwrap()
}

/// A split asked and failed (a closed receiver: its entries on the ledger, nothing moved) is no
/// obstacle to a dispute's refund: a part makes the next attempt smaller, the rest ends it
/// `nothing`; the ledger balances at every end.
async fn a_failed_split_is_refunded_by_a_dispute(backend: Backend) {
    let world = world(backend).await;
    let t0 = OffsetDateTime::now_utc();
    let order = paid_order(&world, Provider::Wechat, t0).await;
    bind(&world, &order.seller_id, Provider::Wechat, "openid-closed").await;
    world
        .wechat
        .closed
        .lock()
        .unwrap()
        .insert("openid-closed".into());
    let done = completed(&world, &order, t0).await;
    let failed = until_final(&world, &done.id, due(&world, t0)).await;
    assert_eq!(state(&failed), Some(SettleState::SettleFailed));
    assert!(failed.settlement.as_ref().unwrap().requested_at.is_some());
    let at = due(&world, t0) + Duration::hours(1);
    // A part: back to completed; the failed split's entries follow what is left.
    let back = dispute_refund(&world, failed, Some(2_345), at).await;
    assert_eq!(back.status, OrderStatus::Completed);
    let left = Shares::of(Fen::from_fen(AMOUNT - 2_345), &done.settle.unwrap());
    assert_eq!(back.settlement.as_ref().unwrap().shares, left);
    let t = totals(&world, &done.id).await;
    assert_eq!(t.held(), left.seller_fen.get(), "{t:?}");
    // The rest: refunded, nothing to split, balanced, no longer watched.
    let gone = dispute_refund(&world, back, None, at).await;
    assert_eq!(gone.status, OrderStatus::Refunded);
    assert_eq!(state(&gone), Some(SettleState::Nothing));
    let t = totals(&world, &done.id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(
        (t.refunded, t.commission_kept, t.fee, t.seller_payable),
        (AMOUNT, 0, 0, 0)
    );
    assert!(!watched(&world, &done.id).await);
}

on_both_stores!(
    a_failed_split_is_refunded_by_a_dispute,
    a_completed_order_is_split_and_balances,
    refunds_before_the_split_make_it_smaller_or_nothing,
    a_closed_receiver_fails_until_the_seller_fixes_the_account,
    unsplit_past_the_deadline_expires_and_staff_are_alarmed,
    twenty_runs_at_once_ask_the_provider_once,
    staff_resolve_an_expired_split_by_refunding_the_buyer,
);
