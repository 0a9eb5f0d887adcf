//! Orders and payments end to end over HTTP against the local server, on both stores, with the
//! WeChat Pay and Alipay stand-ins: every flow of issue #8 (pay with each channel, accept,
//! confirm, refunds, cancels, expiry, lost notifications, failed refunds, late payments).
//!
//! The server runs with keys this test generated itself (as an outside test brings its own), so
//! the test plays the providers with RustCrypto (`rsa`, `sha2`, `aes-gcm`), never our ring-based
//! code: it verifies our `paySign` and Alipay order strings with the public keys, and signs and
//! encrypts notifications of its own — valid ones move an order once, every forged or wrong one
//! is refused and changes nothing.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use renji_shared::domain::orders::events::EventKind;
use renji_shared::domain::orders::jobs::{self, Budget};
use renji_shared::domain::orders::payments::{self, PaymentState};
use renji_shared::domain::orders::{self, Actor, OrderStatus, RefundStatus};
use renji_shared::ids::OrderId;
use renji_shared::payments::{Provider, RefundState};
use renji_tests::{on_both_stores, service, Backend, LocalServer, Member, Reply};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::signature::Verifier as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use time::OffsetDateTime;

const PRICE: i64 = 288_000;
const MCHID: &str = "1230000109";
const MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
const APIV3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const WECHATPAY_KEY_ID: &str = "PUB_KEY_ID_0112345678202611290000000000000042";
const ALIPAY_APP_ID: &str = "2021000000000042";
const ALIPAY_SELLER_ID: &str = "2088000000000042";

/// The test's own keys: the merchant's (WeChat Pay merchant key, Alipay app key) and the
/// providers' (WeChat Pay's public-key-mode key, Alipay's), generated once per test process.
struct Keys {
    merchant: RsaPrivateKey,
    wechatpay: RsaPrivateKey,
    alipay_app: RsaPrivateKey,
    alipay: RsaPrivateKey,
    /// Signs nothing we trust: "the wrong key".
    stranger: RsaPrivateKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = || RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("RSA key");
        Keys {
            merchant: key(),
            wechatpay: key(),
            alipay_app: key(),
            alipay: key(),
            stranger: key(),
        }
    })
}

fn public_pem(key: &RsaPrivateKey) -> String {
    RsaPublicKey::from(key)
        .to_public_key_pem(LineEnding::LF)
        .expect("SPKI PEM")
}

fn sign(key: &RsaPrivateKey, message: &[u8]) -> String {
    renji_local::sandbox::payment_keys::sign(key, message)
}

fn verifies(key: &RsaPrivateKey, message: &[u8], signature: &str) -> bool {
    let Ok(bytes) = STANDARD.decode(signature) else {
        return false;
    };
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(bytes.as_slice()) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(RsaPublicKey::from(key))
        .verify(message, &signature)
        .is_ok()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The server with the test's keys, a verified seller's published service, a buyer.
struct World {
    server: LocalServer,
    seller: Member,
    buyer: Member,
    listing: String,
    http: reqwest::Client,
}

impl World {
    async fn new(backend: Backend) -> Self {
        Self::with(backend, &[]).await
    }

    /// With more configuration (e.g. a public base URL nothing answers at: every notification
    /// is lost).
    async fn with(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let k = tokio::task::spawn_blocking(keys).await.expect("keys");
        let merchant_pem = k
            .merchant
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8")
            .to_string();
        // The Alipay app key as Alipay's key tool writes it for non-Java: PKCS#1.
        let app_pem = k
            .alipay_app
            .to_pkcs1_pem(LineEnding::LF)
            .expect("PKCS#1")
            .to_string();
        let wechatpay_pub = public_pem(&k.wechatpay);
        let alipay_pub = public_pem(&k.alipay);
        let config = [
            ("RENJI_RATE_LIMITS", "off"),
            ("WECHATPAY_MCHID", MCHID),
            ("WECHATPAY_MERCHANT_SERIAL", MERCHANT_SERIAL),
            ("WECHATPAY_MERCHANT_KEY", merchant_pem.as_str()),
            ("WECHATPAY_APIV3_KEY", APIV3_KEY),
            ("WECHATPAY_PUBLIC_KEY_ID", WECHATPAY_KEY_ID),
            ("WECHATPAY_PUBLIC_KEY", wechatpay_pub.as_str()),
            ("ALIPAY_APP_ID", ALIPAY_APP_ID),
            ("ALIPAY_APP_PRIVATE_KEY", app_pem.as_str()),
            ("ALIPAY_PUBLIC_KEY", alipay_pub.as_str()),
            ("ALIPAY_SELLER_ID", ALIPAY_SELLER_ID),
        ];
        let mut config = config.to_vec();
        config.extend_from_slice(extra);
        let server = LocalServer::start_with(backend, &config).await;
        let seller = server.member("seller", true).await;
        // Paid through either provider: an Alipay payout account beside the own WeChat one.
        let bound = server
            .api
            .call(
                "PUT",
                "/v1/me/payout-accounts/alipay",
                Some(&seller.token),
                Some(serde_json::json!({"account": "2088101126765726", "name": "张三"})),
            )
            .await;
        assert_eq!(bound.status, 200, "{bound:?}");
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

    fn appid(&self) -> String {
        self.server
            .app()
            .config
            .wechat_pay
            .as_ref()
            .expect("WeChat Pay on")
            .appid
            .clone()
    }

    async fn call(&self, who: &Member, path: &str, body: Option<Value>) -> Reply {
        self.server
            .api
            .call("POST", path, Some(&who.token), body)
            .await
    }

    /// A new order of the listing by the buyer: its id.
    async fn order(&self) -> String {
        let reply = self
            .call(
                &self.buyer,
                "/v1/orders",
                Some(json!({"listing_id": self.listing, "quantity": 1, "remark": "下午两点"})),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body["id"].as_str().expect("order id").to_owned()
    }

    async fn get(&self, id: &str) -> Value {
        let reply = self
            .server
            .api
            .call(
                "GET",
                &format!("/v1/orders/{id}"),
                Some(&self.buyer.token),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body
    }

    /// Polls the order briefly until it is in `status` (notifications arrive on their own).
    async fn until(&self, id: &str, status: &str) -> Value {
        let mut order = Value::Null;
        for _ in 0..100 {
            order = self.get(id).await;
            if order["status"] == json!(status) {
                return order;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("order {id} did not become {status}: {order}");
    }

    /// `POST /v1/orders/{id}/payments {channel}` as the buyer; must answer 200.
    async fn start(&self, id: &str, channel: &str) -> Value {
        let reply = self
            .call(
                &self.buyer,
                &format!("/v1/orders/{id}/payments"),
                Some(json!({ "channel": channel })),
            )
            .await;
        assert_eq!(reply.status, 200, "{channel}: {reply:?}");
        assert_eq!(reply.body["channel"], json!(channel));
        assert_eq!(reply.body["order_id"], json!(id));
        assert_eq!(reply.body["amount_fen"], json!(PRICE));
        reply.body
    }

    /// The buyer pays at the stand-in what `started` gave the client; `notify: false` pays
    /// without a notification (a lost one).
    async fn pay(&self, id: &str, channel: &str, started: &Value, notify: bool) -> Value {
        let running = &self.server.running;
        let (url, body) = match channel {
            "wechat" => (
                format!("{}/sandbox/pay", running.wechatpay_base),
                json!({"out_trade_no": id, "notify": notify}),
            ),
            "alipay" => (
                format!("{}/sandbox/pay", running.alipay_base),
                json!({"order_string": started["order_string"], "notify": notify}),
            ),
            _ => (
                format!("{}/sandbox/pay", running.alipay_base),
                json!({"url": started["url"], "notify": notify}),
            ),
        };
        let response = self.http.post(url).json(&body).send().await.expect("pay");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.expect("pay answer");
        assert_eq!(status, 200, "{channel}: {answer}");
        if notify {
            let delivered = answer["notified"].as_str().unwrap_or_default();
            assert!(
                delivered == "204" || delivered == "success",
                "{channel}: {answer}"
            );
        }
        answer
    }

    /// Makes the stand-in's refunds of this order fail from now on.
    async fn fail_refunds(&self, id: &str, provider: Provider) {
        self.set_failing_refunds(id, provider, true).await
    }

    /// Makes `id`'s refunds at `provider` fail (`true`) or succeed again.
    async fn set_failing_refunds(&self, id: &str, provider: Provider, fail: bool) {
        let base = match provider {
            Provider::Wechat => &self.server.running.wechatpay_base,
            Provider::Alipay => &self.server.running.alipay_base,
        };
        let response = self
            .http
            .post(format!("{base}/sandbox/fail-refunds"))
            .json(&json!({ "out_trade_no": id, "fail": fail }))
            .send()
            .await
            .expect("fail-refunds");
        assert_eq!(response.status().as_u16(), 200);
    }

    /// The `order.refund_failed` alarms naming order `id` in the audit list `target`, as an
    /// administrator reads it (`GET /admin/v1/audit?target=`).
    async fn refund_alarms(&self, admin: &str, target: &str, id: &str) -> Vec<Value> {
        let reply = self
            .server
            .api
            .call(
                "GET",
                &format!("/admin/v1/audit?target={target}"),
                Some(admin),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                a["action"] == json!(orders::refund_alarm::ACTION)
                    && a["reason"].as_str().is_some_and(|r| r.contains(id))
            })
            .cloned()
            .collect()
    }

    /// Runs the order jobs as the scheduled function does, at `at`.
    async fn jobs(&self, at: OffsetDateTime) -> jobs::Report {
        let app = self
            .server
            .running
            .function_app("OrderJobsFunction")
            .expect("the order-jobs function");
        jobs::run(app, at, Budget::default())
            .await
            .expect("job run")
    }

    /// An unpaid order paid through `channel` (the client's parameters checked): its id.
    async fn paid_order(&self, channel: &str) -> String {
        let id = self.order().await;
        let started = self.start(&id, channel).await;
        self.check_signed(channel, &started);
        self.pay(&id, channel, &started, true).await;
        let order = self.until(&id, "paid").await;
        assert_eq!(order["payment"]["channel"], json!(channel));
        id
    }

    /// Our signature on what the client was given verifies with the public key (RustCrypto).
    fn check_signed(&self, channel: &str, started: &Value) {
        let k = keys();
        match channel {
            "wechat" => {
                let field = |name: &str| {
                    started[name]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: {started}"))
                };
                assert_eq!(field("signType"), "RSA");
                assert!(field("package").starts_with("prepay_id="), "{started}");
                let message = format!(
                    "{}\n{}\n{}\n{}\n",
                    self.appid(),
                    field("timeStamp"),
                    field("nonceStr"),
                    field("package")
                );
                assert!(
                    verifies(&k.merchant, message.as_bytes(), field("paySign")),
                    "paySign does not verify: {started}"
                );
                // Another app id, or another key, does not verify.
                let other = message.replacen(&self.appid(), "wx0000000000000000", 1);
                assert!(!verifies(&k.merchant, other.as_bytes(), field("paySign")));
                assert!(!verifies(&k.stranger, message.as_bytes(), field("paySign")));
            }
            _ => {
                let (text, method) = match channel {
                    "alipay" => (
                        started["order_string"].as_str().expect("order_string"),
                        "alipay.trade.app.pay",
                    ),
                    _ => {
                        let url = started["url"].as_str().expect("url");
                        (
                            url.split_once('?').expect("a query").1,
                            "alipay.trade.wap.pay",
                        )
                    }
                };
                let params: BTreeMap<String, String> = url::form_urlencoded::parse(text.as_bytes())
                    .into_owned()
                    .collect();
                assert_eq!(params["method"], method);
                assert_eq!(params["app_id"], ALIPAY_APP_ID);
                assert_eq!(params["sign_type"], "RSA2");
                let biz: Value = serde_json::from_str(&params["biz_content"]).expect("biz_content");
                assert_eq!(biz["total_amount"], json!("2880.00"));
                assert_eq!(biz["extend_params"]["royalty_freeze"], json!("true"));
                // Every parameter but `sign` (`sign_type` kept), sorted, empty ones dropped.
                let content = params
                    .iter()
                    .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&");
                assert!(
                    verifies(&k.alipay_app, content.as_bytes(), &params["sign"]),
                    "{channel}: the signature does not verify"
                );
                assert!(!verifies(&k.stranger, content.as_bytes(), &params["sign"]));
            }
        }
    }

    /// WeChat Pay's notification to our notify route, signed by `key` as `serial` at `ts`.
    async fn wechat_notify(
        &self,
        body: &str,
        signature: &str,
        serial: &str,
        ts: i64,
        nonce: &str,
    ) -> (u16, String) {
        let response = self
            .http
            .post(format!(
                "{}/v1/payments/wechat/notify",
                self.server.running.url()
            ))
            .header("content-type", "application/json")
            .header("Wechatpay-Serial", serial)
            .header("Wechatpay-Signature", signature)
            .header("Wechatpay-Timestamp", ts.to_string())
            .header("Wechatpay-Nonce", nonce)
            .header("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048")
            .body(body.to_owned())
            .send()
            .await
            .expect("notify");
        let status = response.status().as_u16();
        (status, response.text().await.expect("text"))
    }

    async fn alipay_notify(&self, form: &str) -> (u16, String) {
        let response = self
            .http
            .post(format!(
                "{}/v1/payments/alipay/notify",
                self.server.running.url()
            ))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(form.to_owned())
            .send()
            .await
            .expect("notify");
        let status = response.status().as_u16();
        (status, response.text().await.expect("text"))
    }

    fn timeline_count(order: &Value, status: &str) -> usize {
        order["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .filter(|s| s["status"] == json!(status))
            .count()
    }
}

fn order_id(id: &str) -> OrderId {
    OrderId::parse(id).expect("an order id")
}

/// A `TRANSACTION.SUCCESS` resource as WeChat Pay decrypts to.
fn transaction(appid: &str, mchid: &str, id: &str, total: i64, transaction_id: &str) -> Value {
    json!({
        "mchid": mchid,
        "appid": appid,
        "out_trade_no": id,
        "transaction_id": transaction_id,
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "CMC",
        "attach": "",
        "success_time": "2026-11-29T20:02:03+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    })
}

/// The notification envelope with `resource` encrypted (AEAD_AES_256_GCM with the APIv3 key,
/// associated data "transaction"); `tamper` flips a byte of the GCM tag.
fn envelope(resource: &Value, tamper_tag: bool) -> String {
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(APIV3_KEY.as_bytes()).expect("AES key");
    let nonce = "fdasflkja484";
    let mut ciphertext = cipher
        .encrypt(
            aes_gcm::Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: resource.to_string().as_bytes(),
                aad: b"transaction",
            },
        )
        .expect("encrypt");
    if tamper_tag {
        if let Some(last) = ciphertext.last_mut() {
            *last ^= 0x01;
        }
    }
    json!({
        "id": "EV-2018022511223320873",
        "create_time": "2026-11-29T20:02:04+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": STANDARD.encode(ciphertext),
            "associated_data": "transaction",
            "nonce": nonce,
        },
    })
    .to_string()
}

/// WeChat Pay's signature over `TS\nNONCE\nBODY\n`.
fn wechat_signature(key: &RsaPrivateKey, ts: i64, nonce: &str, body: &str) -> String {
    sign(key, format!("{ts}\n{nonce}\n{body}\n").as_bytes())
}

/// A `trade_status_sync` form as Alipay posts it, signed by `key` (neither `sign` nor
/// `sign_type` covered; sorted; empty values dropped).
fn alipay_form(key: &RsaPrivateKey, params: &BTreeMap<&str, String>) -> String {
    let content = params
        .iter()
        .filter(|(k, v)| !["sign", "sign_type"].contains(k) && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let signature = sign(key, content.as_bytes());
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .append_pair("sign", &signature)
        .finish()
}

fn alipay_trade(id: &str, total: &str, trade_no: &str) -> BTreeMap<&'static str, String> {
    [
        ("notify_time", "2026-11-29 20:02:04"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", "ac05099524730693a8b330c5ecf72da9786"),
        ("app_id", ALIPAY_APP_ID),
        ("auth_app_id", ALIPAY_APP_ID),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("sign_type", "RSA2"),
        ("trade_no", trade_no),
        ("out_trade_no", id),
        ("buyer_id", "2088102122524333"),
        ("seller_id", ALIPAY_SELLER_ID),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", total),
        ("receipt_amount", total),
        ("buyer_pay_amount", total),
        ("subject", "婚礼跟拍"),
        ("gmt_create", "2026-11-29 20:01:50"),
        ("gmt_payment", "2026-11-29 20:02:03"),
        ("passback_params", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

// --- Flows ----------------------------------------------------------------------------------

/// Order → pay (each channel, our signature checked) → paid → accept → confirm → completed.
async fn each_channel_pays_and_the_order_completes(backend: Backend) {
    let w = World::new(backend).await;
    for channel in ["wechat", "alipay", "alipay_wap"] {
        let id = w.paid_order(channel).await;
        let order = w.get(&id).await;
        assert!(
            order["payment"]["transaction_id"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{order}"
        );
        assert_eq!(
            order["timeline"].as_array().unwrap().last().unwrap()["actor"],
            json!("provider")
        );
        let provider = match channel {
            "wechat" => Provider::Wechat,
            _ => Provider::Alipay,
        };
        let record = payments::record_of(&w.server.app().store, &order_id(&id), provider)
            .await
            .unwrap()
            .expect("a payment record");
        assert_eq!(record.state, PaymentState::Paid, "{channel}");
        assert_eq!(record.paid_fen.map(|f| f.get()), Some(PRICE));
        let accepted = w
            .call(&w.seller, &format!("/v1/orders/{id}/accept"), None)
            .await;
        assert_eq!(
            (accepted.status, &accepted.body["status"]),
            (200, &json!("accepted")),
            "{channel}: {accepted:?}"
        );
        let confirmed = w
            .call(&w.buyer, &format!("/v1/orders/{id}/confirm"), None)
            .await;
        assert_eq!(
            (confirmed.status, &confirmed.body["status"]),
            (200, &json!("completed")),
            "{channel}: {confirmed:?}"
        );
        // A completed order takes no other payment.
        let again = w
            .call(
                &w.buyer,
                &format!("/v1/orders/{id}/payments"),
                Some(json!({"channel": channel})),
            )
            .await;
        assert_eq!(again.status, 409, "{again:?}");
    }
}

/// Accepted → refund request → the seller approves → refunded through the channel that took
/// the money (WeChat's by its notification a moment later, Alipay's at once).
async fn an_approved_refund_request_refunds_through_each_provider(backend: Backend) {
    let w = World::new(backend).await;
    for channel in ["wechat", "alipay"] {
        let id = w.paid_order(channel).await;
        let accepted = w
            .call(&w.seller, &format!("/v1/orders/{id}/accept"), None)
            .await;
        assert_eq!(accepted.status, 200, "{accepted:?}");
        let asked = w
            .call(
                &w.buyer,
                &format!("/v1/orders/{id}/refund"),
                Some(json!({"reason": "摄影师没有到场"})),
            )
            .await;
        assert_eq!(
            (asked.status, &asked.body["status"]),
            (200, &json!("refund_requested"))
        );
        let approved = w
            .call(&w.seller, &format!("/v1/orders/{id}/refund/approve"), None)
            .await;
        assert_eq!(approved.status, 200, "{channel}: {approved:?}");
        let status = approved.body["status"].as_str().unwrap();
        assert!(
            ["refunding", "refunded"].contains(&status),
            "{channel}: {approved:?}"
        );
        let order = w.until(&id, "refunded").await;
        assert_eq!(order["refunded_fen"], json!(PRICE), "{channel}");
        let refund = &order["refunds"][0];
        assert_eq!(refund["seq"], json!(1));
        assert_eq!(refund["status"], json!("succeeded"));
        assert_eq!(refund["amount_fen"], json!(PRICE));
        assert_eq!(refund["reason"], json!("摄影师没有到场"));
        assert_eq!(World::timeline_count(&order, "refunded"), 1);
        // The provider agrees.
        let gateway = w
            .server
            .app()
            .payments
            .gateway(match channel {
                "wechat" => Provider::Wechat,
                _ => Provider::Alipay,
            })
            .unwrap();
        let state = gateway
            .refund_query(&id, &format!("{id}R01"))
            .await
            .unwrap();
        assert!(
            matches!(state, RefundState::Succeeded { .. }),
            "{channel}: {state:?}"
        );
    }
}

/// Paid and not accepted → the buyer cancels → refunded in full at once; a refund made to fail
/// at the provider ends `refund_failed`.
async fn paid_orders_cancelled_are_refunded_or_refund_failed(backend: Backend) {
    let w = World::new(backend).await;
    for channel in ["wechat", "alipay_wap"] {
        let id = w.paid_order(channel).await;
        let cancelled = w
            .call(&w.buyer, &format!("/v1/orders/{id}/cancel"), None)
            .await;
        assert_eq!(cancelled.status, 200, "{channel}: {cancelled:?}");
        let order = w.until(&id, "refunded").await;
        assert_eq!(order["refunded_fen"], json!(PRICE));
        let stored = orders::get(&w.server.app().store, &order_id(&id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.refunds[0].actor, Actor::Buyer);
        assert_eq!(stored.refunds[0].from, OrderStatus::Paid);
        assert_eq!(World::timeline_count(&order, "cancelled"), 0);
    }
    for (channel, provider) in [("wechat", Provider::Wechat), ("alipay", Provider::Alipay)] {
        let id = w.paid_order(channel).await;
        w.fail_refunds(&id, provider).await;
        let declined = w
            .call(
                &w.seller,
                &format!("/v1/orders/{id}/decline"),
                Some(json!({"reason": "那天已有安排"})),
            )
            .await;
        assert_eq!(declined.status, 200, "{channel}: {declined:?}");
        let order = w.until(&id, "refund_failed").await;
        assert_eq!(order["refunded_fen"], json!(0), "{channel}");
        assert_eq!(order["refunds"][0]["status"], json!("failed"), "{channel}");
        let declined_step = order["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["status"] == json!("refunding"))
            .cloned()
            .unwrap();
        assert_eq!(declined_step["reason"], json!("那天已有安排"));
        // Staff learn of it without knowing the order: one alarm in the list the console's
        // audit screen shows filtered by target `settlement:alarms`, naming the order, its refund,
        // the amount and the provider's code; the same in the order's own trail.
        let admin = w.server.api.staff_token("staff:ada:admin").await;
        let stored = orders::get(&w.server.app().store, &order_id(&id))
            .await
            .unwrap()
            .unwrap();
        let refund_no = stored.refunds[0].out_refund_no.clone();
        let alarmed = w.refund_alarms(&admin, "settlement:alarms", &id).await;
        assert_eq!(alarmed.len(), 1, "{channel}: {alarmed:?}");
        assert_eq!(alarmed[0]["actor"], json!("system"));
        let detail = alarmed[0]["reason"].as_str().unwrap();
        let code = match provider {
            Provider::Wechat => "ABNORMAL",
            Provider::Alipay => "ACQ.SELLER_BALANCE_NOT_ENOUGH",
        };
        for part in [refund_no.as_str(), &format!("{PRICE} fen"), code] {
            assert!(detail.contains(part), "{channel}: {detail} lacks {part}");
        }
        let on_order = w.refund_alarms(&admin, &format!("order:{id}"), &id).await;
        assert_eq!(on_order.len(), 1, "{channel}: {on_order:?}");
        // The failure told again (a notification's retry, the jobs' query) is a repeat: no
        // second alarm.
        let again = payments::apply_refund(
            w.server.app(),
            &order_id(&id),
            provider,
            &refund_no,
            RefundState::Failed {
                reason: code.into(),
            },
            EventKind::Query,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        assert_eq!(again, payments::Applied::Repeat, "{channel}");
        w.jobs(OffsetDateTime::now_utc() + time::Duration::hours(2))
            .await;
        let alarmed = w.refund_alarms(&admin, "settlement:alarms", &id).await;
        assert_eq!(alarmed.len(), 1, "{channel}: {alarmed:?}");
        // Staff (an administrator) ask again once the provider would pay: refunded in full.
        w.set_failing_refunds(&id, provider, false).await;
        let path = format!("/admin/v1/orders/{id}/refund");
        let support = w.server.api.staff_token("staff:sue:support").await;
        let body = json!({"reason": "再试"});
        let refused = w
            .server
            .api
            .call("POST", &path, Some(&support), Some(body.clone()))
            .await;
        assert_eq!(refused.status, 403, "{channel}: {refused:?}");
        let retried = w
            .server
            .api
            .call("POST", &path, Some(&admin), Some(body))
            .await;
        assert_eq!(retried.status, 200, "{channel}: {retried:?}");
        let order = w.until(&id, "refunded").await;
        assert_eq!(order["refunded_fen"], json!(PRICE), "{channel}");
        assert_eq!(
            order["refunds"][1]["status"],
            json!("succeeded"),
            "{channel}"
        );
        // The retry that succeeded raised nothing.
        let alarmed = w.refund_alarms(&admin, "settlement:alarms", &id).await;
        assert_eq!(alarmed.len(), 1, "{channel}: {alarmed:?}");
    }
}

/// Unpaid → the buyer cancels → `cancelled`, its payments closed at the providers: the buyer
/// can no longer pay the WeChat one; an Alipay order string paid anyway is a late payment the
/// job refunds — never a cancelled order that kept the money.
async fn unpaid_orders_cancel_and_their_payments_close(backend: Backend) {
    let w = World::new(backend).await;
    let id = w.order().await;
    let wechat = w.start(&id, "wechat").await;
    let alipay = w.start(&id, "alipay").await;
    let cancelled = w
        .call(&w.buyer, &format!("/v1/orders/{id}/cancel"), None)
        .await;
    assert_eq!(
        (cancelled.status, &cancelled.body["status"]),
        (200, &json!("cancelled")),
        "{cancelled:?}"
    );
    let store = &w.server.app().store;
    for provider in Provider::ALL {
        let record = payments::record_of(store, &order_id(&id), provider)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.state, PaymentState::Closed, "{provider:?}");
    }
    // The WeChat trade is closed at the provider.
    let gateway = w.server.app().payments.gateway(Provider::Wechat).unwrap();
    assert_eq!(
        gateway.query(&id).await.unwrap(),
        renji_shared::payments::Trade::Closed
    );
    let response = w
        .http
        .post(format!("{}/sandbox/pay", w.server.running.wechatpay_base))
        .json(&json!({"out_trade_no": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 409);
    let _ = wechat;
    // The Alipay app's order string paid after the cancel: recorded late, refunded by the job.
    w.pay(&id, "alipay", &alipay, true).await;
    let order = w.get(&id).await;
    assert_eq!(order["status"], json!("cancelled"));
    assert_eq!(order["payment"], Value::Null);
    let late = payments::record_of(store, &order_id(&id), Provider::Alipay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late.state, PaymentState::Late);
    w.jobs(now() + time::Duration::seconds(1)).await;
    let late = payments::record_of(store, &order_id(&id), Provider::Alipay)
        .await
        .unwrap()
        .unwrap();
    let refund = late.late_refund.expect("a late refund");
    assert_eq!(refund.status, RefundStatus::Succeeded);
    assert_eq!(refund.out_refund_no, format!("{id}LA"));
    let at_alipay = w
        .server
        .app()
        .payments
        .gateway(Provider::Alipay)
        .unwrap()
        .refund_query(&id, &refund.out_refund_no)
        .await
        .unwrap();
    assert!(
        matches!(at_alipay, RefundState::Succeeded { .. }),
        "{at_alipay:?}"
    );
}

/// Unpaid past `expires_at` → the job closes the payment and expires the order; one paid at the
/// provider with no notification before the job is `paid`, not expired.
async fn unpaid_orders_expire_unless_paid_at_the_last_second(backend: Backend) {
    let w = World::new(backend).await;
    let unpaid = w.order().await;
    w.start(&unpaid, "wechat").await;
    let mut last_second = Vec::new();
    for channel in ["wechat", "alipay"] {
        let id = w.order().await;
        let started = w.start(&id, channel).await;
        w.pay(&id, channel, &started, false).await;
        assert_eq!(w.get(&id).await["status"], json!("pending_payment"));
        last_second.push(id);
    }
    // Two runs at once (overlapping schedules) do each thing once.
    let at = now() + time::Duration::minutes(31);
    let (one, two) = tokio::join!(w.jobs(at), w.jobs(at));
    assert_eq!((one.failed, two.failed), (0, 0), "{one:?} {two:?}");
    let expired = w.get(&unpaid).await;
    assert_eq!(World::timeline_count(&expired, "expired"), 1);
    assert_eq!(expired["status"], json!("expired"));
    let last = expired["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"], json!("system"));
    let record = payments::record_of(&w.server.app().store, &order_id(&unpaid), Provider::Wechat)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, PaymentState::Closed);
    let response = w
        .http
        .post(format!("{}/sandbox/pay", w.server.running.wechatpay_base))
        .json(&json!({"out_trade_no": unpaid}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        409,
        "the expired order's trade is closed"
    );
    for id in &last_second {
        let order = w.get(id).await;
        assert_eq!(order["status"], json!("paid"), "{order}");
        assert_eq!(World::timeline_count(&order, "expired"), 0);
        assert_eq!(World::timeline_count(&order, "paid"), 1);
    }
    // Again: nothing more to do.
    let report = w.jobs(now() + time::Duration::minutes(32)).await;
    assert_eq!((report.changed, report.failed), (0, 0), "{report:?}");
}

/// A lost notification: paid at the provider, nothing sent; the job's query 2 minutes after the
/// start finds it.
async fn a_lost_notification_is_found_by_the_jobs_query(backend: Backend) {
    let w = World::new(backend).await;
    for channel in ["wechat", "alipay_wap"] {
        let id = w.order().await;
        let started = w.start(&id, channel).await;
        w.pay(&id, channel, &started, false).await;
        // Not yet due: nothing happens.
        w.jobs(now()).await;
        assert_eq!(w.get(&id).await["status"], json!("pending_payment"));
        w.jobs(now() + time::Duration::seconds(121)).await;
        let order = w.get(&id).await;
        assert_eq!(order["status"], json!("paid"), "{channel}: {order}");
        assert_eq!(order["payment"]["channel"], json!(channel));
    }
}

/// Paid through both providers: the order keeps one payment, the job refunds the other in full.
async fn both_channels_paid_the_job_refunds_one(backend: Backend) {
    let w = World::new(backend).await;
    let store = &w.server.app().store;
    for (first, second, kept, late) in [
        ("wechat", "alipay", Provider::Wechat, Provider::Alipay),
        ("alipay_wap", "wechat", Provider::Alipay, Provider::Wechat),
    ] {
        let id = w.order().await;
        let kept_start = w.start(&id, first).await;
        let late_start = w.start(&id, second).await;
        w.pay(&id, first, &kept_start, true).await;
        w.until(&id, "paid").await;
        w.pay(&id, second, &late_start, true).await;
        let record = payments::record_of(store, &order_id(&id), late)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.state, PaymentState::Late, "{second}");
        let report = w.jobs(now() + time::Duration::seconds(1)).await;
        assert_eq!(report.failed, 0, "{report:?}");
        // Alipay refunds at once; WeChat answers PROCESSING and notifies a moment later.
        let mut refund = None;
        for _ in 0..100 {
            let record = payments::record_of(store, &order_id(&id), late)
                .await
                .unwrap()
                .unwrap();
            refund = record.late_refund;
            if refund
                .as_ref()
                .is_some_and(|r| r.status == RefundStatus::Succeeded)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let refund = refund.expect("a late refund");
        assert_eq!(
            refund.status,
            RefundStatus::Succeeded,
            "{second}: {refund:?}"
        );
        let letter = if late == Provider::Wechat { "W" } else { "A" };
        assert_eq!(refund.out_refund_no, format!("{id}L{letter}"));
        let at_provider = w
            .server
            .app()
            .payments
            .gateway(late)
            .unwrap()
            .refund_query(&id, &refund.out_refund_no)
            .await
            .unwrap();
        assert!(
            matches!(at_provider, RefundState::Succeeded { .. }),
            "{second}: {at_provider:?}"
        );
        let order = w.get(&id).await;
        assert_eq!(order["status"], json!("paid"));
        assert_eq!(order["payment"]["channel"], json!(first));
        assert_eq!(order["refunded_fen"], json!(0));
        assert_eq!(World::timeline_count(&order, "paid"), 1);
        let kept = payments::record_of(store, &order_id(&id), kept)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.state, PaymentState::Paid);
        // Nothing more for the job: the kept payment is never refunded.
        let report = w.jobs(now() + time::Duration::seconds(2)).await;
        assert_eq!((report.changed, report.failed), (0, 0), "{report:?}");
    }
}

// --- Notifications built by the test, as the provider would ----------------------------------

async fn wechat_notifications_are_verified_and_applied_once(backend: Backend) {
    let w = World::new(backend).await;
    let k = keys();
    let appid = w.appid();
    let id = w.order().await;
    let before = w.get(&id).await;
    let ts = now().unix_timestamp();
    let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
    let tx = "4200000000202611290000004242";
    let good = transaction(&appid, MCHID, &id, PRICE, tx);
    let body = envelope(&good, false);
    let signed = |body: &str| wechat_signature(&k.wechatpay, ts, nonce, body);

    // (case, body, signature, serial, timestamp)
    let reserialised =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    let tampered = body.replacen("支付成功", "支付失败", 1);
    let old = ts - 360;
    let cases: Vec<(&str, String, String, &str, i64)> = vec![
        (
            "tampered body",
            tampered,
            signed(&body),
            WECHATPAY_KEY_ID,
            ts,
        ),
        (
            "re-serialised body",
            reserialised,
            signed(&body),
            WECHATPAY_KEY_ID,
            ts,
        ),
        (
            "wrong key",
            body.clone(),
            wechat_signature(&k.stranger, ts, nonce, &body),
            WECHATPAY_KEY_ID,
            ts,
        ),
        (
            "unknown serial",
            body.clone(),
            signed(&body),
            "PUB_KEY_ID_0119999999202611290000000000000000",
            ts,
        ),
        (
            "6 minutes old",
            body.clone(),
            wechat_signature(&k.wechatpay, old, nonce, &body),
            WECHATPAY_KEY_ID,
            old,
        ),
        (
            "SIGNTEST",
            body.clone(),
            format!("WECHATPAY/SIGNTEST/{}", signed(&body)),
            WECHATPAY_KEY_ID,
            ts,
        ),
        {
            let b = envelope(&good, true);
            ("bad GCM tag", b.clone(), signed(&b), WECHATPAY_KEY_ID, ts)
        },
        {
            let b = envelope(&transaction(&appid, MCHID, &id, PRICE + 1, tx), false);
            ("wrong amount", b.clone(), signed(&b), WECHATPAY_KEY_ID, ts)
        },
        {
            let b = envelope(
                &transaction("wx0000000000000000", MCHID, &id, PRICE, tx),
                false,
            );
            ("wrong appid", b.clone(), signed(&b), WECHATPAY_KEY_ID, ts)
        },
        {
            let b = envelope(&transaction(&appid, "1900000000", &id, PRICE, tx), false);
            ("wrong mchid", b.clone(), signed(&b), WECHATPAY_KEY_ID, ts)
        },
        {
            let unknown = OrderId::generate().to_string();
            let b = envelope(&transaction(&appid, MCHID, &unknown, PRICE, tx), false);
            ("unknown order", b.clone(), signed(&b), WECHATPAY_KEY_ID, ts)
        },
    ];
    for (case, body, signature, serial, at) in cases {
        let (status, answer) = w.wechat_notify(&body, &signature, serial, at, nonce).await;
        assert!((400..500).contains(&status), "{case}: {status} {answer}");
        let answer: Value =
            serde_json::from_str(&answer).unwrap_or_else(|_| panic!("{case}: {answer}"));
        assert_eq!(answer["code"], json!("FAIL"), "{case}");
        assert_eq!(w.get(&id).await, before, "{case}: the order changed");
        for provider in Provider::ALL {
            assert!(
                payments::record_of(&w.server.app().store, &order_id(&id), provider)
                    .await
                    .unwrap()
                    .is_none(),
                "{case}: a payment was recorded"
            );
        }
    }
    // The valid one: 204, paid; a repeat is 204 and changes nothing.
    let (status, answer) = w
        .wechat_notify(&body, &signed(&body), WECHATPAY_KEY_ID, ts, nonce)
        .await;
    assert_eq!(status, 204, "{answer}");
    let paid = w.get(&id).await;
    assert_eq!(paid["status"], json!("paid"));
    assert_eq!(paid["payment"]["transaction_id"], json!(tx));
    assert_eq!(paid["payment"]["channel"], json!("wechat"));
    let (status, _) = w
        .wechat_notify(&body, &signed(&body), WECHATPAY_KEY_ID, ts, nonce)
        .await;
    assert_eq!(status, 204);
    assert_eq!(w.get(&id).await, paid);

    // The same valid notification 20 times at once: one transition, one payment record.
    let id = w.order().await;
    let tx = "4200000000202611290000009999";
    let body = envelope(&transaction(&appid, MCHID, &id, PRICE, tx), false);
    let signature = signed(&body);
    let answers = futures_util::future::join_all(
        (0..20).map(|_| w.wechat_notify(&body, &signature, WECHATPAY_KEY_ID, ts, nonce)),
    )
    .await;
    for (status, answer) in &answers {
        assert_eq!(*status, 204, "{answer}");
    }
    once_paid(&w, &id, Provider::Wechat, tx).await;
}

async fn once_paid(w: &World, id: &str, provider: Provider, tx: &str) {
    let order = w.get(id).await;
    assert_eq!(order["status"], json!("paid"));
    assert_eq!(World::timeline_count(&order, "paid"), 1, "{order}");
    let store = &w.server.app().store;
    let record = payments::record_of(store, &order_id(id), provider)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, PaymentState::Paid);
    assert_eq!(record.transaction_id.as_deref(), Some(tx));
    assert_eq!(record.version, 1, "one write of the payment record");
    assert_eq!(
        payments::records(store, &order_id(id)).await.unwrap().len(),
        1
    );
}

async fn alipay_notifications_are_verified_and_applied_once(backend: Backend) {
    let w = World::new(backend).await;
    let k = keys();
    let id = w.order().await;
    let before = w.get(&id).await;
    let trade_no = "2026112922001424241409424242";
    let good = alipay_trade(&id, "2880.00", trade_no);
    let with = |name: &'static str, value: &str| {
        let mut p = good.clone();
        p.insert(name, value.to_owned());
        p
    };
    let tampered = alipay_form(&k.alipay, &good).replacen("2880.00", "2881.00", 1);
    let cases: Vec<(&str, String)> = vec![
        ("tampered form", tampered),
        ("wrong key", alipay_form(&k.stranger, &good)),
        ("our app key", alipay_form(&k.alipay_app, &good)),
        (
            "wrong amount",
            alipay_form(&k.alipay, &with("total_amount", "2880.01")),
        ),
        (
            "not a yuan amount",
            alipay_form(&k.alipay, &with("total_amount", "2880.001")),
        ),
        (
            "wrong app_id",
            alipay_form(&k.alipay, &with("app_id", "2021000000000099")),
        ),
        (
            "wrong seller_id",
            alipay_form(&k.alipay, &with("seller_id", "2088000000000099")),
        ),
        (
            "unknown order",
            alipay_form(
                &k.alipay,
                &with("out_trade_no", &OrderId::generate().to_string()),
            ),
        ),
        ("no sign", {
            let mut p = good.clone();
            p.remove("passback_params");
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(p.iter().map(|(k, v)| (*k, v.as_str())))
                .finish()
        }),
    ];
    for (case, form) in cases {
        let (status, answer) = w.alipay_notify(&form).await;
        assert!((400..500).contains(&status), "{case}: {status} {answer}");
        assert_eq!(answer, "fail", "{case}");
        assert_eq!(w.get(&id).await, before, "{case}: the order changed");
        assert!(payments::records(&w.server.app().store, &order_id(&id))
            .await
            .unwrap()
            .is_empty());
    }
    let form = alipay_form(&k.alipay, &good);
    let (status, answer) = w.alipay_notify(&form).await;
    assert_eq!((status, answer.as_str()), (200, "success"));
    let paid = w.get(&id).await;
    assert_eq!(paid["status"], json!("paid"));
    assert_eq!(paid["payment"]["transaction_id"], json!(trade_no));
    assert_eq!(w.alipay_notify(&form).await.1, "success");
    assert_eq!(w.get(&id).await, paid);

    let id = w.order().await;
    let trade_no = "2026112922001424241409999999";
    let form = alipay_form(&k.alipay, &alipay_trade(&id, "2880.00", trade_no));
    let answers = futures_util::future::join_all((0..20).map(|_| w.alipay_notify(&form))).await;
    for (status, answer) in &answers {
        assert_eq!((*status, answer.as_str()), (200, "success"));
    }
    once_paid(&w, &id, Provider::Alipay, trade_no).await;
}

/// Paid at the provider (no notification yet) and then cancelled: the cancel closes the payment
/// first, hears it was paid, and answers 409 `order_paid`; the order is `paid`, never cancelled.
async fn a_payment_landing_before_a_cancel_makes_the_order_paid(backend: Backend) {
    let w = World::new(backend).await;
    for channel in ["wechat", "alipay"] {
        let id = w.order().await;
        let started = w.start(&id, channel).await;
        w.pay(&id, channel, &started, false).await;
        let cancel = w
            .call(&w.buyer, &format!("/v1/orders/{id}/cancel"), None)
            .await;
        assert_eq!(
            (cancel.status, cancel.error_code()),
            (409, "order_paid"),
            "{channel}: {cancel:?}"
        );
        let order = w.get(&id).await;
        assert_eq!(order["status"], json!("paid"), "{channel}");
        assert_eq!(World::timeline_count(&order, "cancelled"), 0);
        assert_eq!(order["payment"]["channel"], json!(channel));
    }
}

/// A notification racing the buyer's cancel: whichever wins, never a cancelled order that kept
/// the money — paid (the cancel refused), or cancelled with the payment closed at the provider
/// or refunded in full by the job.
async fn a_notification_racing_a_cancel_never_keeps_the_money(backend: Backend) {
    let w = World::new(backend).await;
    let store = &w.server.app().store;
    let mut outcomes = BTreeMap::new();
    for round in 0..10u64 {
        let channel = if round % 2 == 0 { "wechat" } else { "alipay" };
        let provider = if round % 2 == 0 {
            Provider::Wechat
        } else {
            Provider::Alipay
        };
        let id = w.order().await;
        let started = w.start(&id, channel).await;
        let cancel_path = format!("/v1/orders/{id}/cancel");
        let running = &w.server.running;
        let (url, body) = match channel {
            "wechat" => (
                format!("{}/sandbox/pay", running.wechatpay_base),
                json!({"out_trade_no": id}),
            ),
            _ => (
                format!("{}/sandbox/pay", running.alipay_base),
                json!({"order_string": started["order_string"]}),
            ),
        };
        // The pay starts a little later each round, so the two meet at different points.
        let delay = Duration::from_millis(3 * (round / 2));
        let (cancel, paid) = tokio::join!(w.call(&w.buyer, &cancel_path, None), async {
            tokio::time::sleep(delay).await;
            w.http.post(url).json(&body).send().await
        });
        let paid_status = paid.unwrap().status().as_u16();
        w.jobs(now() + time::Duration::seconds(1)).await;
        let order = w.get(&id).await;
        let record = payments::record_of(store, &order_id(&id), provider)
            .await
            .unwrap()
            .unwrap();
        match order["status"].as_str().unwrap() {
            "paid" => {
                assert_eq!(cancel.status, 409, "{cancel:?}");
                assert_eq!(paid_status, 200);
                assert_eq!(record.state, PaymentState::Paid);
            }
            "cancelled" => {
                assert_eq!(cancel.status, 200, "{cancel:?}");
                match record.state {
                    PaymentState::Closed => assert_eq!(paid_status, 409, "{channel}"),
                    PaymentState::Late => {
                        // Refunded in full by the job (WeChat confirms by notification).
                        let mut refund = record.late_refund.clone().unwrap();
                        for _ in 0..100 {
                            if refund.status == RefundStatus::Succeeded {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            refund = payments::record_of(store, &order_id(&id), provider)
                                .await
                                .unwrap()
                                .unwrap()
                                .late_refund
                                .unwrap();
                        }
                        assert_eq!(refund.status, RefundStatus::Succeeded, "{channel}");
                    }
                    other => panic!("{channel}: a cancelled order's payment is {other:?}"),
                }
            }
            // The payment landed before the cancel was read: a paid order's cancel refunds it
            // in full (the machine's `paid` → cancel (buyer) → `refunding`).
            "refunding" | "refunded" => {
                assert_eq!(cancel.status, 200, "{cancel:?}");
                assert_eq!(record.state, PaymentState::Paid);
                let mut status = order["status"].clone();
                for _ in 0..100 {
                    if status == "refunded" {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    w.jobs(now() + time::Duration::seconds(1)).await;
                    status = w.get(&id).await["status"].clone();
                }
                assert_eq!(status, "refunded", "{channel}");
            }
            other => panic!("{channel}: {other}"),
        }
        *outcomes
            .entry(format!("{} {:?}", order["status"], record.state))
            .or_insert(0) += 1;
    }
    eprintln!("race outcomes: {outcomes:?}");
}

/// Only the buyer starts a payment; the channel is checked; asking again while the prepay id is
/// valid reuses it (no second trade).
async fn only_the_buyer_pays_and_a_repeat_reuses_the_prepay_id(backend: Backend) {
    let w = World::new(backend).await;
    let stranger = w.server.member("stranger", false).await;
    let id = w.order().await;
    let path = format!("/v1/orders/{id}/payments");
    let seller = w
        .call(&w.seller, &path, Some(json!({"channel": "wechat"})))
        .await;
    assert_eq!((seller.status, seller.error_code()), (403, "forbidden"));
    let other = w
        .call(&stranger, &path, Some(json!({"channel": "wechat"})))
        .await;
    assert_eq!((other.status, other.error_code()), (404, "not_found"));
    for body in [
        json!({"channel": "unionpay"}),
        json!({}),
        json!({"channel": "wechat", "amount_fen": 1}),
    ] {
        let reply = w.call(&w.buyer, &path, Some(body.clone())).await;
        assert_eq!(reply.status, 422, "{body}: {reply:?}");
    }
    assert!(payments::records(&w.server.app().store, &order_id(&id))
        .await
        .unwrap()
        .is_empty());
    let first = w.start(&id, "wechat").await;
    let second = w.start(&id, "wechat").await;
    assert_eq!(first["package"], second["package"]);
    w.check_signed("wechat", &second);

    // An Idempotency-Key answers the same parameters again; another body under it is refused.
    let keyed = |channel: &str| {
        w.server.api.send(
            "POST",
            &path,
            Some(&w.buyer.token),
            Some(json!({ "channel": channel }).to_string()),
            &[("Idempotency-Key", "pay-once-0001")],
        )
    };
    let once = keyed("alipay").await;
    assert_eq!(once.status, 200, "{once:?}");
    w.check_signed("alipay", &once.body);
    let again = keyed("alipay").await;
    assert_eq!((again.status, &again.body), (200, &once.body));
    let other = keyed("alipay_wap").await;
    assert_eq!(
        (other.status, other.error_code()),
        (422, "idempotency_key_reused"),
        "{other:?}"
    );
}

/// A payment for an order another provider already paid, notified 20 times at once: recorded
/// once as late (every answer `success`), refunded once by the job.
async fn a_late_payment_notified_20_times_is_recorded_once(backend: Backend) {
    let w = World::new(backend).await;
    let k = keys();
    let id = w.order().await;
    let ts = now().unix_timestamp();
    let nonce = "late-payment-nonce";
    let body = envelope(
        &transaction(
            &w.appid(),
            MCHID,
            &id,
            PRICE,
            "4200000000202611290000007777",
        ),
        false,
    );
    let signature = wechat_signature(&k.wechatpay, ts, nonce, &body);
    let (status, answer) = w
        .wechat_notify(&body, &signature, WECHATPAY_KEY_ID, ts, nonce)
        .await;
    assert_eq!(status, 204, "{answer}");
    let form = alipay_form(
        &k.alipay,
        &alipay_trade(&id, "2880.00", "2026112922001424241409777777"),
    );
    let answers = futures_util::future::join_all((0..20).map(|_| w.alipay_notify(&form))).await;
    for (status, answer) in &answers {
        assert_eq!((*status, answer.as_str()), (200, "success"));
    }
    let store = &w.server.app().store;
    let late = payments::record_of(store, &order_id(&id), Provider::Alipay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late.state, PaymentState::Late);
    assert_eq!(late.version, 1, "one write of the late payment");
    let order = w.get(&id).await;
    assert_eq!(order["payment"]["channel"], json!("wechat"));
    assert_eq!(World::timeline_count(&order, "paid"), 1);
}

/// The jobs' own refunds reach the provider: a paid order the seller did not accept within 24
/// hours, and a refund request unanswered for 3 days, are refunded in full.
async fn the_jobs_refund_through_the_provider(backend: Backend) {
    let w = World::new(backend).await;
    let unaccepted = w.paid_order("wechat").await;
    let requested = w.paid_order("alipay").await;
    let accepted = w
        .call(&w.seller, &format!("/v1/orders/{requested}/accept"), None)
        .await;
    assert_eq!(accepted.status, 200);
    let asked = w
        .call(
            &w.buyer,
            &format!("/v1/orders/{requested}/refund"),
            Some(json!({"reason": "临时取消婚礼"})),
        )
        .await;
    assert_eq!(asked.status, 200);
    let report = w.jobs(now() + time::Duration::hours(25)).await;
    assert_eq!(report.failed, 0, "{report:?}");
    let order = w.until(&unaccepted, "refunded").await;
    let step = order["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == json!("refunding"))
        .cloned()
        .unwrap();
    assert_eq!(step["actor"], json!("system"));
    assert_eq!(w.get(&requested).await["status"], json!("refund_requested"));
    let report = w.jobs(now() + time::Duration::days(4)).await;
    assert_eq!(report.failed, 0, "{report:?}");
    let order = w.until(&requested, "refunded").await;
    assert_eq!(order["refunded_fen"], json!(PRICE));
    // Refunded for the buyer's reason (the provider shows it); the timeline says why the job.
    assert_eq!(order["refunds"][0]["reason"], json!("临时取消婚礼"));
    let step = order["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == json!("refunding"))
        .cloned()
        .unwrap();
    assert_eq!(step["actor"], json!("system"));
    assert!(step["reason"]
        .as_str()
        .is_some_and(|r| r.contains("did not answer")));
    let at_alipay = w
        .server
        .app()
        .payments
        .gateway(Provider::Alipay)
        .unwrap()
        .refund_query(&requested, &format!("{requested}R01"))
        .await
        .unwrap();
    assert!(
        matches!(at_alipay, RefundState::Succeeded { .. }),
        "{at_alipay:?}"
    );
}

/// Every notification lost (the public base URL answers nothing): the jobs' queries find the
/// payment, and follow the refund until the provider says it succeeded.
async fn with_every_notification_lost_the_jobs_find_payments_and_refunds(backend: Backend) {
    let w = World::with(backend, &[("RENJI_PUBLIC_BASE_URL", "http://127.0.0.1:9")]).await;
    let id = w.order().await;
    let started = w.start(&id, "wechat").await;
    w.pay(&id, "wechat", &started, false).await;
    w.jobs(now() + time::Duration::seconds(121)).await;
    assert_eq!(w.get(&id).await["status"], json!("paid"));
    let declined = w
        .call(
            &w.seller,
            &format!("/v1/orders/{id}/decline"),
            Some(json!({"reason": "那天已有安排"})),
        )
        .await;
    assert_eq!(
        (declined.status, &declined.body["status"]),
        (200, &json!("refunding")),
        "{declined:?}"
    );
    // No notification comes; the job asks until the stand-in's refund has succeeded.
    let mut order = Value::Null;
    for hour in 1..40 {
        // The job backs off (doubling, at most an hour): each run is an hour later.
        w.jobs(now() + time::Duration::hours(hour)).await;
        order = w.get(&id).await;
        if order["status"] == json!("refunded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(order["status"], json!("refunded"), "{order}");
    assert_eq!(order["refunds"][0]["status"], json!("succeeded"));
    assert_eq!(order["refunded_fen"], json!(PRICE));
    let last = order["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"], json!("provider"));
}

on_both_stores!(
    each_channel_pays_and_the_order_completes,
    an_approved_refund_request_refunds_through_each_provider,
    paid_orders_cancelled_are_refunded_or_refund_failed,
    unpaid_orders_cancel_and_their_payments_close,
    unpaid_orders_expire_unless_paid_at_the_last_second,
    a_lost_notification_is_found_by_the_jobs_query,
    both_channels_paid_the_job_refunds_one,
    wechat_notifications_are_verified_and_applied_once,
    alipay_notifications_are_verified_and_applied_once,
    a_payment_landing_before_a_cancel_makes_the_order_paid,
    a_notification_racing_a_cancel_never_keeps_the_money,
    only_the_buyer_pays_and_a_repeat_reuses_the_prepay_id,
    a_late_payment_notified_20_times_is_recorded_once,
    the_jobs_refund_through_the_provider,
    with_every_notification_lost_the_jobs_find_payments_and_refunds,
);
