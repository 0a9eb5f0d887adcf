//! The settlement adapters against the local server's stand-ins (issue #12's first slice): the
//! WeChat Pay profit-sharing adapter, signed by our ring-based code, against the stand-in, which
//! checks our Authorization and decrypts the receiver's name with RustCrypto's arithmetic (its
//! own OAEP), and plays receivers, asynchronous splits, the ratio cap, the unsplit amount, "too
//! early", a closed receiver, unfreeze, returns and a refund larger than the unsplit amount.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use renji_local::sandbox::wechatpay::{self as stand_in, Merchant, ProviderKey};
use renji_shared::config::WechatPayConfig;
use renji_shared::money::Fen;
use renji_shared::payments::rsa::PrivateKey;
use renji_shared::payments::wechatpay::WechatPayGateway;
use renji_shared::payments::{Channel, Gateway, GatewayError, PaymentStart, RefundRequest, Trade};
use renji_shared::settlement::wechatpay::WechatProfitSharing;
use renji_shared::settlement::{
    return_no, split_no, unfreeze_no, Receiver, ReceiverKind, ReturnRequest, ReturnState,
    Settlement, Share, ShareResult, SplitRequest, SplitState, UnfreezeRequest,
};
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::json;
use time::OffsetDateTime;

const MCHID: &str = "1230000109";
const APPID: &str = "wx0000000000000042";
const MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
const KEY_ID: &str = "PUB_KEY_ID_0112345678202611290000000000000042";

struct Keys {
    merchant: RsaPrivateKey,
    wechatpay: RsaPrivateKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = || RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("RSA key");
        Keys {
            merchant: key(),
            wechatpay: key(),
        }
    })
}

struct World {
    base: String,
    gateway: Arc<WechatPayGateway>,
    sharing: WechatProfitSharing,
    http: reqwest::Client,
}

async fn world() -> World {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (base, _task) = stand_in::spawn(
        listener,
        Merchant {
            mchid: MCHID.into(),
            appid: APPID.into(),
            serial: MERCHANT_SERIAL.into(),
            public_key: Some(RsaPublicKey::from(&keys().merchant)),
            apiv3_key: None,
        },
        ProviderKey {
            id: KEY_ID.into(),
            key: keys().wechatpay.clone(),
        },
    )
    .unwrap();
    let config = WechatPayConfig {
        mchid: MCHID.into(),
        appid: APPID.into(),
        merchant_serial: Some(MERCHANT_SERIAL.into()),
        merchant_key: None,
        apiv3_key: None,
        public_keys: vec![(
            KEY_ID.into(),
            RsaPublicKey::from(&keys().wechatpay)
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        )],
        platform_certs: None,
        api_base: base.clone(),
        notify_url: "https://renji.example/v1/payments/wechat/notify".into(),
    };
    let pem = keys().merchant.to_pkcs8_pem(LineEnding::LF).unwrap();
    let gateway = Arc::new(WechatPayGateway::with_key(
        &config,
        PrivateKey::from_pem(&pem).unwrap(),
    ));
    World {
        base,
        sharing: WechatProfitSharing::new(Arc::clone(&gateway)),
        gateway,
        http: reqwest::Client::new(),
    }
}

impl World {
    /// A paid trade of `total` fen (created splittable by the payment adapter); its
    /// transaction id.
    async fn paid(&self, order_no: &str, total: i64) -> String {
        self.gateway
            .start(&PaymentStart {
                channel: Channel::Wechat,
                order_no: order_no.into(),
                description: "服务".into(),
                amount: Fen::from_fen(total),
                expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(30),
                payer_openid: Some("oBuyer000000000000000000001".into()),
                prepay_id: None,
            })
            .await
            .unwrap();
        self.sandbox("pay", json!({"out_trade_no": order_no, "notify": false}))
            .await;
        match self.gateway.query(order_no).await.unwrap() {
            Trade::Paid(paid) => paid.transaction_id,
            other => panic!("{other:?}"),
        }
    }

    async fn sandbox(&self, call: &str, body: serde_json::Value) {
        let status = self
            .http
            .post(format!("{}/sandbox/{call}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{call}: {status}");
    }
}

fn seller() -> Receiver {
    Receiver {
        kind: ReceiverKind::WechatOpenid,
        account: "oSeller00000000000000000001".into(),
        name: Some("张三".into()),
    }
}

fn split(
    order_no: &str,
    transaction_id: &str,
    to: Receiver,
    fen: i64,
    finish: bool,
) -> SplitRequest {
    SplitRequest {
        order_no: order_no.into(),
        transaction_id: transaction_id.into(),
        out_order_no: split_no(order_no),
        shares: vec![Share {
            receiver: to,
            amount: Fen::from_fen(fen),
            description: format!("人集订单 {order_no} 卖家所得"),
        }],
        finish,
    }
}

fn refused(result: Result<impl std::fmt::Debug, GatewayError>, expected: &str) {
    match result {
        Err(GatewayError::Refused { code, .. }) if code == expected => {}
        other => panic!("expected {expected}, got {other:?}"),
    }
}

#[tokio::test]
async fn splits_finish_later_and_the_unsplit_amount_limits_refunds() {
    let w = world().await;
    w.sharing.add_receiver(&seller()).await.unwrap();
    let order = "o01SETTLE00000000000000A1";
    let tx = w.paid(order, 10_000).await;
    // Too early: within the stand-in's SPLIT_NOT_BEFORE of payment.
    refused(
        w.sharing
            .split(&split(order, &tx, seller(), 5_000, false))
            .await,
        "INVALID_REQUEST",
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        w.sharing.remaining(&tx).await.unwrap(),
        Fen::from_fen(10_000)
    );
    // Over the ratio cap (9000 bps in the stand-in).
    let mut over = split(order, &tx, seller(), 9_001, false);
    over.out_order_no = "PSover".into();
    refused(w.sharing.split(&over).await, "INVALID_REQUEST");

    let first = w
        .sharing
        .split(&split(order, &tx, seller(), 5_000, false))
        .await
        .unwrap();
    assert_eq!(first.state, SplitState::Processing);
    assert_eq!(first.shares[0].result, ShareResult::Pending);
    // A retry with the same number and body is the same split: nothing more is split.
    let again = w
        .sharing
        .split(&split(order, &tx, seller(), 5_000, false))
        .await
        .unwrap();
    assert_eq!(again.order_id, first.order_id);
    assert_eq!(
        w.sharing.remaining(&tx).await.unwrap(),
        Fen::from_fen(5_000)
    );
    // The same number with another body is refused.
    refused(
        w.sharing
            .split(&split(order, &tx, seller(), 4_000, false))
            .await,
        "INVALID_REQUEST",
    );
    // Finished when asked again.
    let done = w
        .sharing
        .query_split(&tx, &split_no(order))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, SplitState::Finished);
    assert_eq!(done.shares[0].result, ShareResult::Success);
    assert_eq!(w.sharing.query_split(&tx, "PSnone").await.unwrap(), None);

    // A refund larger than the unsplit amount is refused while the rest is frozen …
    let refund = RefundRequest {
        order_no: order.into(),
        out_refund_no: format!("R{order}1"),
        amount: Fen::from_fen(6_000),
        total: Fen::from_fen(10_000),
        refunded_before: Fen::from_fen(0),
        reason: "退款".into(),
        royalty_back: None,
    };
    refused(w.gateway.refund(&refund).await, "RULE_LIMIT");
    // … and unfreezing the rest ends the sharing: nothing unsplit, no more unfreezing, and the
    // refund is then paid (from the merchant's balance).
    let unfreeze = UnfreezeRequest {
        order_no: order.into(),
        transaction_id: tx.clone(),
        out_order_no: unfreeze_no(order),
        description: "解冻全部剩余资金".into(),
    };
    assert_eq!(
        w.sharing.unfreeze(&unfreeze).await.unwrap().state,
        SplitState::Processing
    );
    w.sandbox("profitsharing/tick", json!({})).await;
    let unfrozen = w
        .sharing
        .query_split(&tx, &unfreeze_no(order))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unfrozen.state, SplitState::Finished);
    assert_eq!(w.sharing.remaining(&tx).await.unwrap(), Fen::from_fen(0));
    let mut twice = unfreeze.clone();
    twice.out_order_no = "PUtwice".into();
    refused(w.sharing.unfreeze(&twice).await, "NOT_ENOUGH");
    w.gateway.refund(&refund).await.unwrap();
}

#[tokio::test]
async fn a_closed_receiver_ends_closed_and_only_merchants_return() {
    let w = world().await;
    let merchant = Receiver {
        kind: ReceiverKind::WechatMerchant,
        account: "86693852".into(),
        name: Some("示例商户有限公司".into()),
    };
    w.sharing.add_receiver(&seller()).await.unwrap();
    w.sharing.add_receiver(&merchant).await.unwrap();
    // A merchant receiver without its name is refused before any call.
    let nameless = Receiver {
        name: None,
        ..merchant.clone()
    };
    refused(w.sharing.add_receiver(&nameless).await, "PARAM_ERROR");

    let (a, b) = ("o01SETTLE00000000000000B1", "o01SETTLE00000000000000B2");
    let (tx_a, tx_b) = (w.paid(a, 8_000).await, w.paid(b, 8_000).await);
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // The seller's receiver is closed by WeChat: the split ends CLOSED, its money stays.
    w.sandbox(
        "profitsharing/close-receiver",
        json!({"type": "PERSONAL_OPENID", "account": seller().account}),
    )
    .await;
    w.sharing
        .split(&split(a, &tx_a, seller(), 3_000, true))
        .await
        .unwrap();
    let closed = w
        .sharing
        .query_split(&tx_a, &split_no(a))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        closed.shares[0].result,
        ShareResult::Closed {
            reason: "ACCOUNT_ABNORMAL".into()
        }
    );
    // A personal receiver cannot be returned from (refused without a call).
    let ret = |from: Receiver, n: u32, fen: i64| ReturnRequest {
        out_order_no: split_no(b),
        out_return_no: return_no(b, n),
        from,
        amount: Fen::from_fen(fen),
        description: "用户退款".into(),
    };
    refused(
        w.sharing.return_share(&ret(seller(), 1, 100)).await,
        "INVALID_REQUEST",
    );

    // A merchant receiver returns what it got, not more.
    w.sharing
        .split(&split(b, &tx_b, merchant.clone(), 3_000, true))
        .await
        .unwrap();
    w.sandbox("profitsharing/tick", json!({})).await;
    let back = w
        .sharing
        .return_share(&ret(merchant.clone(), 1, 1_000))
        .await
        .unwrap();
    assert_eq!(back.state, ReturnState::Success);
    let short = w
        .sharing
        .return_share(&ret(merchant.clone(), 2, 2_500))
        .await
        .unwrap();
    assert_eq!(
        short.state,
        ReturnState::Failed {
            reason: "BALANCE_NOT_ENOUGH".into()
        }
    );
    let queried = w
        .sharing
        .query_return(&split_no(b), &return_no(b, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queried.amount, Fen::from_fen(1_000));
    assert_eq!(
        w.sharing
            .query_return(&split_no(b), "PRnone")
            .await
            .unwrap(),
        None
    );
    w.sharing.delete_receiver(&merchant).await.unwrap();
}

mod alipay {
    use super::*;
    use renji_local::sandbox::alipay::{self as stand_in, App};
    use renji_shared::config::AlipayConfig;
    use renji_shared::payments::alipay::AlipayGateway;
    use renji_shared::payments::rsa::PublicKey;
    use renji_shared::secrets::Cached;
    use renji_shared::settlement::alipay::AlipayRoyalty;

    fn app_key() -> &'static RsaPrivateKey {
        &keys().merchant
    }

    fn alipay_key() -> &'static RsaPrivateKey {
        &keys().wechatpay
    }

    #[tokio::test]
    async fn royalty_binds_settles_once_per_number_and_finishes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (base, _task) = stand_in::spawn(
            listener,
            App {
                app_id: "2021000000000042".into(),
                seller_id: "2088000000000042".into(),
                public_key: Some(RsaPublicKey::from(app_key())),
            },
            alipay_key().clone(),
        )
        .unwrap();
        let alipay_pem = RsaPublicKey::from(alipay_key())
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let config = AlipayConfig {
            app_id: "2021000000000042".into(),
            app_private_key: None,
            public_keys: vec![alipay_pem.clone()],
            seller_id: Some("2088000000000042".into()),
            gateway: format!("{base}{}", stand_in::GATEWAY_PATH),
            notify_url: "https://renji.example/v1/payments/alipay/notify".into(),
        };
        let key = PrivateKey::from_pem(&app_key().to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap();
        let gateway = Arc::new(
            AlipayGateway::with_key(
                &config,
                Cached::fixed("ALIPAY_APP_PRIVATE_KEY", key),
                vec![PublicKey::from_pem(&alipay_pem).unwrap()],
            )
            .unwrap(),
        );
        // A paid trade, started by the payment adapter (royalty_freeze), paid in the stand-in.
        let order = "o01SETTLE00000000000000C1";
        let started = gateway
            .start(&PaymentStart {
                channel: Channel::Alipay,
                order_no: order.into(),
                description: "服务".into(),
                amount: Fen::from_fen(8_000),
                expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(30),
                payer_openid: None,
                prepay_id: None,
            })
            .await
            .unwrap();
        let paid = reqwest::Client::new()
            .post(format!("{base}/sandbox/pay"))
            .json(&json!({"order_string": started.client["order_string"], "notify": false}))
            .send()
            .await
            .unwrap();
        assert!(paid.status().is_success());
        let Trade::Paid(paid) = gateway.query(order).await.unwrap() else {
            panic!("not paid")
        };
        let trade_no = paid.transaction_id;

        let royalty = AlipayRoyalty::new(Arc::clone(&gateway));
        let seller = Receiver {
            kind: ReceiverKind::AlipayUserId,
            account: "2088101126708402".into(),
            name: Some("张三".into()),
        };
        let stranger = Receiver {
            account: "2088101126700000".into(),
            ..seller.clone()
        };
        let mut unbound = split(order, &trade_no, stranger, 1_000, false);
        unbound.out_order_no = "PSunbound".into();
        refused(
            royalty.split(&unbound).await,
            "ACQ.ROYALTY_RECEIVER_INVALID",
        );
        royalty.add_receiver(&seller).await.unwrap();
        let mut over = split(order, &trade_no, seller.clone(), 7_201, false);
        over.out_order_no = "PSover".into();
        refused(
            royalty.split(&over).await,
            "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR",
        );

        let first = royalty
            .split(&split(order, &trade_no, seller.clone(), 3_000, false))
            .await
            .unwrap();
        assert_eq!(first.state, SplitState::Finished);
        let again = royalty
            .split(&split(order, &trade_no, seller.clone(), 3_000, false))
            .await
            .unwrap();
        assert_eq!(again.order_id, first.order_id, "one settle per number");
        assert_eq!(
            royalty.remaining(&trade_no).await.unwrap(),
            Fen::from_fen(5_000)
        );
        refused(
            royalty
                .split(&split(order, &trade_no, seller.clone(), 2_000, false))
                .await,
            "ACQ.DISCORDANT_REPEAT_REQUEST",
        );
        let queried = royalty
            .query_split(&trade_no, &split_no(order))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(queried.shares[0].amount, Fen::from_fen(3_000));
        assert_eq!(queried.shares[0].result, ShareResult::Success);
        assert_eq!(
            royalty.query_split(&trade_no, "PSnone").await.unwrap(),
            None
        );
        // Finishing unfreezes the rest.
        royalty
            .unfreeze(&UnfreezeRequest {
                order_no: order.into(),
                transaction_id: trade_no.clone(),
                out_order_no: unfreeze_no(order),
                description: "分账完结".into(),
            })
            .await
            .unwrap();
        assert_eq!(
            royalty.remaining(&trade_no).await.unwrap(),
            Fen::from_fen(0)
        );
        royalty.delete_receiver(&seller).await.unwrap();
    }
}
