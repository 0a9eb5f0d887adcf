//! Money for the benchmark's order calls: payments started through the domain at the local
//! server's WeChat Pay and Alipay stand-ins, paid there (the buyer's side), and the providers'
//! notifications built as they send them — signed (and, for WeChat Pay, AES-256-GCM encrypted)
//! with the sandbox keys, by RustCrypto as the stand-ins do, never by our ring-based code.

use std::collections::BTreeMap;
use std::sync::Arc;

use renji_local::sandbox::payment_keys::{self, random_text, PaymentKeys};
use renji_shared::domain::orders::events::EventKind;
use renji_shared::domain::orders::{self, payments};
use renji_shared::ids::OrderId;
use renji_shared::payments::{Channel, Paid};
use renji_shared::App;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The sandbox keys, parsed once: the providers' own (to sign notifications) and the merchant's
/// public halves (for the stand-ins to check our requests).
pub struct Keys {
    pub text: PaymentKeys,
    pub wechatpay: rsa::RsaPrivateKey,
    pub alipay: rsa::RsaPrivateKey,
    pub merchant_public: rsa::RsaPublicKey,
    pub alipay_app_public: rsa::RsaPublicKey,
    pub wechatpay_public_pem: String,
    pub alipay_public_pem: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys")
    }
}

impl Keys {
    /// This process's generated sandbox keys (the local server's, without a data folder).
    pub async fn generated() -> Result<Arc<Keys>, String> {
        let text = payment_keys::load(None).await?;
        let parsed = text.parse()?;
        Ok(Arc::new(Keys {
            wechatpay_public_pem: text.wechatpay_public_pem()?,
            alipay_public_pem: text.alipay_public_pem()?,
            merchant_public: rsa::RsaPublicKey::from(&parsed.merchant),
            alipay_app_public: rsa::RsaPublicKey::from(&parsed.alipay_app),
            wechatpay: parsed.wechatpay,
            alipay: parsed.alipay,
            text,
        }))
    }
}

/// A notification as a provider POSTs it: its headers and exact body.
#[derive(Clone, Debug)]
pub struct Notification {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Notification {
    /// `event` (the route's sample event) carrying this notification.
    pub fn into_event(self, event: &Value) -> Value {
        let mut event = event.clone();
        for (name, value) in self.headers {
            event["headers"][name] = json!(value);
        }
        event["headers"]["content-length"] = json!(self.body.len().to_string());
        event["body"] = json!(self.body);
        event
    }
}

fn beijing(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(time::macros::offset!(+8))
}

/// A signed, encrypted `TRANSACTION.SUCCESS` for `order_no` paid `amount_fen`, as WeChat Pay
/// sends it to the merchant's notify URL.
pub fn wechat_paid(
    keys: &Keys,
    appid: &str,
    order_no: &str,
    amount_fen: i64,
    transaction_id: &str,
) -> Result<Notification, String> {
    let now = beijing(OffsetDateTime::now_utc());
    let at = now
        .replace_nanosecond(0)
        .map_err(|e| e.to_string())?
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let resource = json!({
        "appid": appid,
        "mchid": payment_keys::MCHID,
        "out_trade_no": order_no,
        "transaction_id": transaction_id,
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": at,
        "payer": {"openid": "bench-payer"},
        "amount": {"total": amount_fen, "payer_total": amount_fen, "currency": "CNY", "payer_currency": "CNY"},
    });
    let body = renji_local::sandbox::wechatpay::notification_body(
        &keys.text.apiv3_key,
        "TRANSACTION.SUCCESS",
        "支付成功",
        "transaction",
        &resource,
    )?;
    let (timestamp, nonce, signature) =
        renji_local::sandbox::wechatpay::sign_message(&keys.wechatpay, &body);
    Ok(Notification {
        headers: vec![
            (
                "wechatpay-serial".into(),
                keys.text.wechatpay_key_id.clone(),
            ),
            ("wechatpay-signature".into(), signature),
            ("wechatpay-timestamp".into(), timestamp),
            ("wechatpay-nonce".into(), nonce),
            (
                "wechatpay-signature-type".into(),
                renji_local::sandbox::wechatpay::SCHEME.into(),
            ),
            ("content-type".into(), "application/json".into()),
        ],
        body,
    })
}

/// A signed `trade_status_sync` with `TRADE_SUCCESS` for `order_no` paid `amount_fen`, as
/// Alipay POSTs it (a form; `sign` over the sorted parameters without `sign` and `sign_type`).
pub fn alipay_paid(
    keys: &Keys,
    order_no: &str,
    amount_fen: i64,
    trade_no: &str,
) -> Result<Notification, String> {
    let now = beijing(OffsetDateTime::now_utc());
    let at = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let yuan = format!("{}.{:02}", amount_fen / 100, amount_fen % 100);
    let mut params: BTreeMap<String, String> = [
        ("notify_time", at.clone()),
        ("notify_type", "trade_status_sync".into()),
        ("notify_id", random_text(34, b"0123456789abcdef")),
        ("app_id", payment_keys::ALIPAY_APP_ID.into()),
        ("auth_app_id", payment_keys::ALIPAY_APP_ID.into()),
        ("charset", "utf-8".into()),
        ("version", "1.0".into()),
        ("sign_type", "RSA2".into()),
        ("trade_no", trade_no.into()),
        ("out_trade_no", order_no.into()),
        ("buyer_id", "2088102177846880".into()),
        ("buyer_logon_id", "bench***@alipay.com".into()),
        ("seller_id", payment_keys::ALIPAY_SELLER_ID.into()),
        ("seller_email", "sandbox-seller@alipay.com".into()),
        ("trade_status", "TRADE_SUCCESS".into()),
        ("total_amount", yuan.clone()),
        ("receipt_amount", yuan.clone()),
        ("invoice_amount", yuan.clone()),
        ("buyer_pay_amount", yuan.clone()),
        ("point_amount", "0.00".into()),
        ("subject", "婚礼跟拍".into()),
        ("gmt_create", at.clone()),
        ("gmt_payment", at),
        (
            "fund_bill_list",
            format!(r#"[{{"amount":"{yuan}","fundChannel":"ALIPAYACCOUNT"}}]"#),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let signing = renji_local::sandbox::alipay::signing_string(&params, false);
    params.insert(
        "sign".into(),
        payment_keys::sign(&keys.alipay, signing.as_bytes()),
    );
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    Ok(Notification {
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        body,
    })
}

/// Starts `channel`'s payment of order `id` at `now` through the domain (the stand-in is
/// called) and records it; the client parameters.
pub async fn start(
    app: &App,
    id: &OrderId,
    channel: Channel,
    now: OffsetDateTime,
) -> Result<Value, String> {
    let order = orders::get(&app.store, id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the order is gone")?;
    let (client, writes) = payments::start(app, &order, channel, now)
        .await
        .map_err(|e| format!("starting a {} payment: {e}", channel.as_str()))?;
    app.store
        .transact(writes)
        .await
        .map_err(|e| e.to_string())?;
    Ok(client)
}

/// Pays a started payment at its stand-in, as the buyer would, without a notification (the
/// benchmark delivers its own); the provider's transaction id. `http` is kept by the caller: a
/// client made per call would wind its connection down (and free its TLS roots) on the timed
/// thread during the next measured call.
pub async fn pay_at_stand_in(
    http: &reqwest::Client,
    base: &str,
    channel: Channel,
    order_no: &str,
    client: &Value,
) -> Result<String, String> {
    let call = match channel {
        Channel::Wechat => json!({"out_trade_no": order_no, "notify": false}),
        Channel::Alipay => json!({"order_string": client["order_string"], "notify": false}),
        Channel::AlipayWap => json!({"url": client["url"], "notify": false}),
    };
    let text = http
        .post(format!("{base}/sandbox/pay"))
        .header("content-type", "application/json")
        .body(call.to_string())
        .send()
        .await
        .map_err(|e| format!("sandbox pay: {e}"))?
        .text()
        .await
        .map_err(|e| format!("sandbox pay: {e}"))?;
    let answer: Value =
        serde_json::from_str(&text).map_err(|_| format!("sandbox pay answered {text}"))?;
    let id = match channel {
        Channel::Wechat => &answer["transaction_id"],
        _ => &answer["trade_no"],
    };
    id.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("sandbox pay answered {answer}"))
}

/// Records the payment the stand-in took as the job's query would find it: the order is `paid`.
pub async fn confirm(
    app: &App,
    id: &OrderId,
    channel: Channel,
    transaction_id: String,
    now: OffsetDateTime,
) -> Result<(), String> {
    let order = orders::get(&app.store, id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the order is gone")?;
    let paid = Paid {
        transaction_id,
        amount: order.amount_fen,
        paid_at: None,
    };
    payments::apply_paid(
        app,
        id,
        channel.provider(),
        Some(channel),
        &paid,
        EventKind::Query,
        now,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}
