//! A stand-in for WeChat Pay API v3 (JSAPI payments and domestic refunds), playing the provider
//! with RustCrypto so it checks our ring-based signatures independently.
//!
//! - Every `/v3/` request must carry our `Authorization` as WeChat Pay checks it (scheme, mchid,
//!   the merchant serial, a timestamp within 5 minutes, SHA256withRSA over
//!   `METHOD\nPATH?QUERY\nTS\nNONCE\nBODY\n` with the merchant public key): otherwise
//!   `401 {"code":"SIGN_ERROR"}`. Every answer is signed with the stand-in's WeChat Pay public-key
//!   mode key (`Wechatpay-Serial/-Signature/-Timestamp/-Nonce`).
//! - `POST /v3/pay/transactions/jsapi`, `GET /v3/pay/transactions/out-trade-no/{no}?mchid=`,
//!   `POST …/{no}/close`, `POST /v3/refund/domestic/refunds`,
//!   `GET /v3/refund/domestic/refunds/{out_refund_no}`. A refund answers PROCESSING and succeeds
//!   [`REFUND_DELAY`] later, with a `REFUND.SUCCESS` notification to its `notify_url`. An amount
//!   beyond a 32-bit integer (2147483647 fen, as WeChat's `amount.total`) is `400 PARAM_ERROR`.
//! - Sandbox calls (no signature; this is the buyer's side):
//!   `POST /sandbox/pay {"out_trade_no", "notify"?: bool}` pays a created trade and sends a
//!   signed, encrypted `TRANSACTION.SUCCESS` to its `notify_url` (`"notify": false` pays without
//!   notifying: the lost notification; paying a paid trade sends its notification again);
//!   `POST /sandbox/fail-refunds {"out_trade_no"}` makes that trade's refunds end ABNORMAL.
//!   `GET /sandbox/profitsharing/receivers` lists the profit-sharing receivers added (type,
//!   account, the decrypted name, closed).
//! - The trade bill (`GET /v3/bill/tradebill`, the file by `GET /v3/billdownload/file?token=`),
//!   each payment's fee at the stand-in's own rate and each refund's fee given back
//!   (`tradebill.rs`); `POST /sandbox/fee-rate {"bps"}` sets the rate of later payments.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::payment_keys::{self, random_text};
use crate::http_server::{self, HttpRequest, HttpResponse};

pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";
/// How long a refund stays PROCESSING before it succeeds (or fails, see `/sandbox/fail-refunds`).
pub const REFUND_DELAY: Duration = Duration::from_millis(500);
const MAX_SKEW_SECS: i64 = 300;
const DIGITS: &[u8] = b"0123456789";
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Who the stand-in serves: the merchant as the functions are configured.
pub struct Merchant {
    pub mchid: String,
    pub appid: String,
    pub serial: String,
    /// Derived from the configured merchant private key; `None` refuses every request.
    pub public_key: Option<RsaPublicKey>,
    /// The configured APIv3 key, which notifications are encrypted with.
    pub apiv3_key: Option<String>,
}

/// The stand-in's own WeChat Pay key (public key mode).
pub struct ProviderKey {
    pub id: String,
    pub key: RsaPrivateKey,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TradeState {
    NotPay,
    Success,
    Closed,
    Refund,
}

impl TradeState {
    fn as_str(self) -> &'static str {
        match self {
            TradeState::NotPay => "NOTPAY",
            TradeState::Success => "SUCCESS",
            TradeState::Closed => "CLOSED",
            TradeState::Refund => "REFUND",
        }
    }
}

struct Trade {
    request: Value,
    out_trade_no: String,
    prepay_id: String,
    appid: String,
    total: i64,
    openid: String,
    notify_url: String,
    time_expire: OffsetDateTime,
    state: TradeState,
    transaction_id: Option<String>,
    success_time: Option<String>,
    /// Refunded or being refunded (abnormal refunds give theirs back).
    refunded: i64,
    /// When it was paid, and the fee it cost at the rate then (`tradebill.rs`).
    paid_at: Option<OffsetDateTime>,
    fee: i64,
    fee_bps: i64,
    /// Refunds that succeeded, and the fee they gave back.
    refunded_done: i64,
    fee_returned: i64,
}

#[derive(Clone)]
struct Refund {
    request: Value,
    refund_id: String,
    out_refund_no: String,
    out_trade_no: String,
    transaction_id: String,
    total: i64,
    refund: i64,
    status: &'static str,
    create_time: String,
    success_time: Option<String>,
    notify_url: Option<String>,
    /// When it succeeded, and the fee it gave back (`tradebill.rs`).
    succeeded_at: Option<OffsetDateTime>,
    fee_back: i64,
}

#[derive(Default)]
struct Book {
    trades: HashMap<String, Trade>,
    refunds: HashMap<String, Refund>,
    fail_refunds: HashSet<String>,
    /// Profit sharing: receivers, splits, returns (`profitsharing.rs`).
    sharing: profitsharing::Sharing,
}

mod profitsharing;
mod tradebill;

struct State {
    merchant: Merchant,
    provider: ProviderKey,
    book: Mutex<Book>,
    /// The fee rate of payments from now on (万分比, `POST /sandbox/fee-rate`).
    fee_bps: Mutex<i64>,
    http: reqwest::Client,
}

type Shared = Arc<State>;

/// A WeChat Pay error answer (signed like every answer).
fn error(state: &State, status: u16, code: &str, message: &str) -> HttpResponse {
    signed(
        state,
        status,
        Some(&json!({"code": code, "message": message})),
    )
}

fn param_error(state: &State, message: &str) -> HttpResponse {
    error(state, 400, "PARAM_ERROR", message)
}

/// An answer with WeChat Pay's signature headers over `TS\nNONCE\nBODY\n`.
fn signed(state: &State, status: u16, body: Option<&Value>) -> HttpResponse {
    let text = body.map(Value::to_string).unwrap_or_default();
    let (timestamp, nonce, signature) = sign_message(&state.provider.key, &text);
    let mut builder = hyper::Response::builder()
        .status(status)
        .header("Request-ID", random_text(32, ALNUM))
        .header("Wechatpay-Serial", &state.provider.id)
        .header("Wechatpay-Signature", signature)
        .header("Wechatpay-Timestamp", timestamp)
        .header("Wechatpay-Nonce", nonce)
        .header("Wechatpay-Signature-Type", SCHEME);
    if body.is_some() {
        builder = builder.header("content-type", "application/json; charset=utf-8");
    }
    builder
        .body(Full::new(bytes::Bytes::from(text)))
        .unwrap_or_default()
}

/// (timestamp, nonce, signature) for a body WeChat Pay sends (also the bench's and the tests'
/// provider side).
pub fn sign_message(key: &RsaPrivateKey, body: &str) -> (String, String, String) {
    let timestamp = OffsetDateTime::now_utc().unix_timestamp().to_string();
    let nonce = random_text(32, ALNUM);
    let signature = payment_keys::sign(key, format!("{timestamp}\n{nonce}\n{body}\n").as_bytes());
    (timestamp, nonce, signature)
}

/// Beijing time in RFC 3339 to the second, as WeChat Pay writes times.
fn beijing(at: OffsetDateTime) -> String {
    let at = at
        .replace_nanosecond(0)
        .unwrap_or(at)
        .to_offset(time::macros::offset!(+8));
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Checks the `Authorization` header as WeChat Pay does.
fn check_authorization(
    state: &State,
    method: &str,
    path_and_query: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Result<(), &'static str> {
    let header = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("Authorization is missing")?;
    let params = header
        .strip_prefix(SCHEME)
        .filter(|rest| rest.starts_with(' '))
        .ok_or("the Authorization scheme is not WECHATPAY2-SHA256-RSA2048")?;
    let mut fields = HashMap::new();
    for part in params.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or("malformed Authorization")?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or("Authorization values must be quoted")?;
        fields.insert(key.trim(), value);
    }
    let field = |name: &str| fields.get(name).copied().filter(|v| !v.is_empty());
    let (Some(mchid), Some(nonce), Some(signature), Some(timestamp), Some(serial)) = (
        field("mchid"),
        field("nonce_str"),
        field("signature"),
        field("timestamp"),
        field("serial_no"),
    ) else {
        return Err("Authorization lacks mchid, nonce_str, signature, timestamp or serial_no");
    };
    if mchid != state.merchant.mchid {
        return Err("mchid is not this merchant's");
    }
    if serial != state.merchant.serial {
        return Err("serial_no is not the merchant certificate's serial");
    }
    let ts: i64 = timestamp.parse().map_err(|_| "timestamp is not a number")?;
    if (OffsetDateTime::now_utc().unix_timestamp() - ts).abs() > MAX_SKEW_SECS {
        return Err("timestamp is more than 5 minutes away");
    }
    let key = state
        .merchant
        .public_key
        .as_ref()
        .ok_or("the stand-in has no merchant public key (WECHATPAY_MERCHANT_KEY)")?;
    let mut message = format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    if !payment_keys::verify(key, &message, signature) {
        return Err("signature does not verify with the merchant public key");
    }
    Ok(())
}

async fn answer(state: Shared, req: HttpRequest) -> HttpResponse {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let headers = req.headers().clone();
    let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return param_error(&state, "request body too large"),
    };
    if let Some(sandbox) = path.strip_prefix("/sandbox/") {
        return match (method.as_str(), sandbox) {
            ("POST", "pay") => sandbox_pay(&state, &body).await,
            ("POST", "fail-refunds") => sandbox_fail_refunds(&state, &body),
            ("POST", "fee-rate") => tradebill::sandbox_fee_rate(&state, &body),
            ("POST", "profitsharing/tick") => profitsharing::sandbox_tick(&state),
            ("GET", "profitsharing/receivers") => profitsharing::sandbox_receivers(&state),
            ("POST", "profitsharing/close-receiver") => {
                profitsharing::sandbox_close_receiver(&state, &body)
            }
            _ => http_server::json(404, &json!({"error": "no such sandbox call"})),
        };
    }
    if let Err(why) = check_authorization(&state, &method, &path_and_query, &headers, &body) {
        return error(&state, 401, "SIGN_ERROR", why);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v3", "pay", "transactions", "jsapi"]) => create(&state, &body),
        ("GET", ["v3", "pay", "transactions", "out-trade-no", no]) => {
            query_trade(&state, no, query.get("mchid").map(String::as_str))
        }
        ("POST", ["v3", "pay", "transactions", "out-trade-no", no, "close"]) => {
            close(&state, no, &body)
        }
        ("POST", ["v3", "refund", "domestic", "refunds"]) => refund(&state, &body),
        ("GET", ["v3", "refund", "domestic", "refunds", no]) => query_refund(&state, no),
        ("GET", ["v3", "billdownload", "file"]) => {
            let token = query.get("token").map(String::as_str).unwrap_or_default();
            match tradebill::file(&state, token) {
                Some(file) => file,
                None => profitsharing::bill_file(&state, token),
            }
        }
        ("GET", ["v3", "bill", "tradebill"]) => tradebill::answer(&state, &query),
        (_, ["v3", "profitsharing", ..]) => {
            profitsharing::answer(&state, &method, &segments[2..], &query, &headers, &body)
        }
        _ => error(&state, 404, "NOT_FOUND", "no such API"),
    }
}

fn json_body(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn str_field<'a>(map: &'a serde_json::Map<String, Value>, name: &str) -> Result<&'a str, String> {
    map.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{name} is missing or not a string"))
}

/// A positive whole number of fen (a float such as `1.0` is refused, as WeChat Pay does).
/// An amount in fen: WeChat Pay v3's amounts are 32-bit integers (`amount.total` is an `Integer`
/// in its SDKs), so one beyond 2147483647 is a PARAM_ERROR as at WeChat.
fn fen_field(map: &serde_json::Map<String, Value>, name: &str) -> Result<i64, String> {
    map.get(name)
        .and_then(|v| v.as_i64().filter(|_| !v.is_f64()))
        .filter(|n| (1..=i64::from(i32::MAX)).contains(n))
        .ok_or_else(|| {
            format!(
                "{name} must be a whole number of fen from 1 to {}",
                i32::MAX
            )
        })
}

fn out_trade_no_ok(no: &str) -> bool {
    (6..=32).contains(&no.len())
        && no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*".contains(&b))
}

const JSAPI_FIELDS: &[&str] = &[
    "appid",
    "mchid",
    "description",
    "out_trade_no",
    "time_expire",
    "attach",
    "notify_url",
    "goods_tag",
    "support_fapiao",
    "amount",
    "payer",
    "detail",
    "scene_info",
    "settle_info",
];

struct NewTrade {
    appid: String,
    out_trade_no: String,
    total: i64,
    openid: String,
    notify_url: String,
    time_expire: OffsetDateTime,
}

fn validate_jsapi(
    merchant: &Merchant,
    map: &serde_json::Map<String, Value>,
) -> Result<NewTrade, (&'static str, String)> {
    let param = |m: String| ("PARAM_ERROR", m);
    if let Some(unknown) = map.keys().find(|k| !JSAPI_FIELDS.contains(&k.as_str())) {
        return Err(param(format!("unknown field {unknown}")));
    }
    let appid = str_field(map, "appid").map_err(param)?;
    let mchid = str_field(map, "mchid").map_err(param)?;
    if mchid != merchant.mchid || appid != merchant.appid {
        return Err((
            "APPID_MCHID_NOT_MATCH",
            "appid and mchid do not match".into(),
        ));
    }
    let description = str_field(map, "description").map_err(param)?;
    if description.len() > 127 {
        return Err(param("description is over 127 bytes".into()));
    }
    let out_trade_no = str_field(map, "out_trade_no").map_err(param)?;
    if !out_trade_no_ok(out_trade_no) {
        return Err(param("out_trade_no must be 6-32 of [0-9A-Za-z_-|*]".into()));
    }
    if let Some(attach) = map.get("attach") {
        if attach.as_str().is_none_or(|a| a.len() > 128) {
            return Err(param("attach must be a string of at most 128 bytes".into()));
        }
    }
    let notify_url = str_field(map, "notify_url").map_err(param)?;
    // WeChat Pay wants https; the stand-in also takes the local server's http on loopback.
    let scheme_ok = notify_url.starts_with("https://") || notify_url.starts_with("http://");
    if !scheme_ok || notify_url.contains('?') || notify_url.len() > 255 {
        return Err(param(
            "notify_url must be an absolute URL without a query".into(),
        ));
    }
    let time_expire = str_field(map, "time_expire")
        .ok()
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        .ok_or_else(|| param("time_expire must be an RFC 3339 time".into()))?;
    if time_expire <= OffsetDateTime::now_utc() {
        return Err(("INVALID_REQUEST", "time_expire has passed".into()));
    }
    let amount = map
        .get("amount")
        .and_then(Value::as_object)
        .ok_or_else(|| param("amount is missing".into()))?;
    let total = fen_field(amount, "total").map_err(|m| param(format!("amount.{m}")))?;
    if amount
        .get("currency")
        .is_some_and(|c| c.as_str() != Some("CNY"))
    {
        return Err(param("amount.currency must be CNY".into()));
    }
    let openid = map
        .get("payer")
        .and_then(Value::as_object)
        .and_then(|p| str_field(p, "openid").ok())
        .ok_or_else(|| param("payer.openid is missing".into()))?;
    let splittable = map
        .get("settle_info")
        .and_then(|s| s.get("profit_sharing"))
        .and_then(Value::as_bool)
        == Some(true);
    if !splittable {
        return Err((
            "INVALID_REQUEST",
            "settle_info.profit_sharing must be true: the marketplace creates splittable \
             payments (a rule of this sandbox)"
                .into(),
        ));
    }
    Ok(NewTrade {
        appid: appid.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        total,
        openid: openid.to_owned(),
        notify_url: notify_url.to_owned(),
        time_expire,
    })
}

fn create(state: &State, body: &[u8]) -> HttpResponse {
    let Some(map) = json_body(body) else {
        return param_error(state, "the body is not a JSON object");
    };
    let new = match validate_jsapi(&state.merchant, &map) {
        Ok(n) => n,
        Err((code, message)) => return error(state, 400, code, &message),
    };
    let request = Value::Object(map);
    let Ok(mut book) = state.book.lock() else {
        return error(state, 500, "SYSTEM_ERROR", "stand-in state poisoned");
    };
    if let Some(trade) = book.trades.get(&new.out_trade_no) {
        return match trade.state {
            TradeState::Success | TradeState::Refund => {
                error(state, 403, "ORDERPAID", "the order is paid")
            }
            TradeState::Closed => error(state, 400, "ORDER_CLOSED", "the order is closed"),
            TradeState::NotPay if trade.request == request => {
                signed(state, 200, Some(&json!({"prepay_id": trade.prepay_id})))
            }
            TradeState::NotPay => error(
                state,
                400,
                "INVALID_REQUEST",
                "out_trade_no exists with other parameters",
            ),
        };
    }
    let prepay_id = format!(
        "wx{}{}",
        OffsetDateTime::now_utc().unix_timestamp(),
        random_text(20, b"0123456789abcdef")
    );
    book.trades.insert(
        new.out_trade_no.clone(),
        Trade {
            request,
            out_trade_no: new.out_trade_no,
            prepay_id: prepay_id.clone(),
            appid: new.appid,
            total: new.total,
            openid: new.openid,
            notify_url: new.notify_url,
            time_expire: new.time_expire,
            state: TradeState::NotPay,
            transaction_id: None,
            success_time: None,
            refunded: 0,
            paid_at: None,
            fee: 0,
            fee_bps: 0,
            refunded_done: 0,
            fee_returned: 0,
        },
    );
    signed(state, 200, Some(&json!({"prepay_id": prepay_id})))
}

/// The transaction as the query and the notification carry it.
fn transaction(mchid: &str, trade: &Trade) -> Value {
    let mut value = json!({
        "appid": trade.appid,
        "mchid": mchid,
        "out_trade_no": trade.out_trade_no,
        "trade_type": "JSAPI",
        "trade_state": trade.state.as_str(),
        "trade_state_desc": match trade.state {
            TradeState::NotPay => "未支付",
            TradeState::Success => "支付成功",
            TradeState::Closed => "已关闭",
            TradeState::Refund => "转入退款",
        },
        "attach": "",
        "amount": {"total": trade.total, "currency": "CNY"},
    });
    if let (Some(id), Some(at)) = (&trade.transaction_id, &trade.success_time) {
        value["transaction_id"] = json!(id);
        value["success_time"] = json!(at);
        value["bank_type"] = json!("OTHERS");
        value["payer"] = json!({"openid": trade.openid});
        value["amount"] = json!({
            "total": trade.total,
            "payer_total": trade.total,
            "currency": "CNY",
            "payer_currency": "CNY",
        });
    }
    value
}

fn query_trade(state: &State, no: &str, mchid: Option<&str>) -> HttpResponse {
    if mchid != Some(state.merchant.mchid.as_str()) {
        return param_error(state, "mchid is missing or not this merchant's");
    }
    let Ok(book) = state.book.lock() else {
        return error(state, 500, "SYSTEM_ERROR", "stand-in state poisoned");
    };
    match book.trades.get(no) {
        Some(trade) => signed(state, 200, Some(&transaction(&state.merchant.mchid, trade))),
        None => error(state, 404, "ORDER_NOT_EXIST", "the order does not exist"),
    }
}

fn close(state: &State, no: &str, body: &[u8]) -> HttpResponse {
    let mchid_ok = json_body(body)
        .and_then(|m| m.get("mchid").and_then(Value::as_str).map(str::to_owned))
        .is_some_and(|m| m == state.merchant.mchid);
    if !mchid_ok {
        return param_error(state, "mchid is missing or not this merchant's");
    }
    let Ok(mut book) = state.book.lock() else {
        return error(state, 500, "SYSTEM_ERROR", "stand-in state poisoned");
    };
    match book.trades.get_mut(no) {
        Some(trade) if matches!(trade.state, TradeState::Success | TradeState::Refund) => {
            error(state, 400, "ORDERPAID", "the order is paid")
        }
        Some(trade) => {
            trade.state = TradeState::Closed;
            signed(state, 204, None)
        }
        // WeChat Pay answers 204 for an order it does not know too (confirm by a query).
        None => signed(state, 204, None),
    }
}

fn refund_json(refund: &Refund) -> Value {
    let mut value = json!({
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": refund.transaction_id,
        "out_trade_no": refund.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": refund.create_time,
        "status": refund.status,
        "funds_account": "AVAILABLE",
        "amount": {
            "total": refund.total,
            "refund": refund.refund,
            "payer_total": refund.total,
            "payer_refund": refund.refund,
            "settlement_total": refund.total,
            "settlement_refund": refund.refund,
            "discount_refund": 0,
            "currency": "CNY",
        },
    });
    if let Some(at) = &refund.success_time {
        value["success_time"] = json!(at);
    }
    value
}

fn refund(state: &Shared, body: &[u8]) -> HttpResponse {
    let Some(map) = json_body(body) else {
        return param_error(state, "the body is not a JSON object");
    };
    let out_refund_no = match str_field(&map, "out_refund_no") {
        Ok(no)
            if no.len() <= 64
                && no
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b)) =>
        {
            no.to_owned()
        }
        _ => return param_error(state, "out_refund_no must be 1-64 of [0-9A-Za-z_-|*@]"),
    };
    if map
        .get("reason")
        .is_some_and(|r| r.as_str().is_none_or(|r| r.chars().count() > 80))
    {
        return param_error(state, "reason must be a string of at most 80 characters");
    }
    let notify_url = match map.get("notify_url") {
        None => None,
        Some(Value::String(url)) if url.starts_with("http") && !url.contains('?') => {
            Some(url.clone())
        }
        Some(_) => return param_error(state, "notify_url must be an absolute URL without a query"),
    };
    let Some(amount) = map.get("amount").and_then(Value::as_object) else {
        return param_error(state, "amount is missing");
    };
    let (refund_fen, total_fen) = match (fen_field(amount, "refund"), fen_field(amount, "total")) {
        (Ok(r), Ok(t)) => (r, t),
        (Err(m), _) | (_, Err(m)) => return param_error(state, &format!("amount.{m}")),
    };
    if amount.get("currency").and_then(Value::as_str) != Some("CNY") {
        return param_error(state, "amount.currency must be CNY");
    }
    let request = Value::Object(map.clone());
    let Ok(mut book) = state.book.lock() else {
        return error(state, 500, "SYSTEM_ERROR", "stand-in state poisoned");
    };
    if let Some(existing) = book.refunds.get(&out_refund_no) {
        return if existing.request == request {
            signed(state, 200, Some(&refund_json(existing)))
        } else {
            error(
                state,
                400,
                "INVALID_REQUEST",
                "out_refund_no exists with other parameters",
            )
        };
    }
    let by_no = map.get("out_trade_no").and_then(Value::as_str);
    let by_id = map.get("transaction_id").and_then(Value::as_str);
    let Some(trade) = book.trades.values().find(|t| {
        by_no == Some(t.out_trade_no.as_str())
            || (by_id.is_some() && by_id == t.transaction_id.as_deref())
    }) else {
        return error(
            state,
            404,
            "RESOURCE_NOT_EXISTS",
            "the order does not exist",
        );
    };
    if !matches!(trade.state, TradeState::Success | TradeState::Refund) {
        return error(state, 400, "INVALID_REQUEST", "the order is not paid");
    }
    if total_fen != trade.total {
        return error(
            state,
            400,
            "INVALID_REQUEST",
            "amount.total is not the order's amount",
        );
    }
    if let Some(unsplit) = profitsharing::frozen_unsplit(&book.sharing, trade) {
        if refund_fen > unsplit {
            return error(
                state,
                400,
                "RULE_LIMIT",
                "申请退款金额大于剩余未分账金额，请等待分账完成后再试",
            );
        }
    }
    let Some(trade) = book.trades.values_mut().find(|t| {
        by_no == Some(t.out_trade_no.as_str())
            || (by_id.is_some() && by_id == t.transaction_id.as_deref())
    }) else {
        return error(
            state,
            404,
            "RESOURCE_NOT_EXISTS",
            "the order does not exist",
        );
    };
    if refund_fen > trade.total - trade.refunded {
        return error(
            state,
            400,
            "INVALID_REQUEST",
            "the refund is more than what remains of the order",
        );
    }
    trade.refunded += refund_fen;
    trade.state = TradeState::Refund;
    let now = OffsetDateTime::now_utc();
    let refund = Refund {
        request,
        refund_id: format!("50{}", random_text(30, DIGITS)),
        out_refund_no: out_refund_no.clone(),
        out_trade_no: trade.out_trade_no.clone(),
        transaction_id: trade.transaction_id.clone().unwrap_or_default(),
        total: trade.total,
        refund: refund_fen,
        status: "PROCESSING",
        create_time: beijing(now),
        success_time: None,
        notify_url,
        succeeded_at: None,
        fee_back: 0,
    };
    let fails = book.fail_refunds.contains(&refund.out_trade_no);
    let answer = refund_json(&refund);
    book.refunds.insert(out_refund_no.clone(), refund);
    drop(book);
    let task_state = Arc::clone(state);
    tokio::spawn(async move {
        tokio::time::sleep(REFUND_DELAY).await;
        settle_refund(&task_state, &out_refund_no, fails).await;
    });
    signed(state, 200, Some(&answer))
}

/// Ends a PROCESSING refund (SUCCESS, or ABNORMAL for a trade marked to fail) and notifies.
async fn settle_refund(state: &State, out_refund_no: &str, fails: bool) {
    let (refund, mchid) = {
        let Ok(mut book) = state.book.lock() else {
            return;
        };
        let Some(refund) = book.refunds.get_mut(out_refund_no) else {
            return;
        };
        if fails {
            refund.status = "ABNORMAL";
        } else {
            let now = OffsetDateTime::now_utc();
            refund.status = "SUCCESS";
            refund.success_time = Some(beijing(now));
            refund.succeeded_at = Some(now);
        }
        let mut refund = refund.clone();
        if !fails {
            // The fee it gives back, in proportion to what has been refunded in all.
            if let Some(trade) = book.trades.get_mut(&refund.out_trade_no) {
                trade.refunded_done += refund.refund;
                let back = tradebill::fee_back(
                    trade.fee,
                    trade.total,
                    trade.refunded_done,
                    trade.fee_returned,
                );
                trade.fee_returned += back;
                refund.fee_back = back;
            }
            if let Some(stored) = book.refunds.get_mut(out_refund_no) {
                stored.fee_back = refund.fee_back;
            }
        }
        if fails {
            if let Some(trade) = book.trades.get_mut(&refund.out_trade_no) {
                trade.refunded -= refund.refund;
            }
        }
        (refund, state.merchant.mchid.clone())
    };
    let Some(url) = &refund.notify_url else {
        return;
    };
    let mut resource = json!({
        "mchid": mchid,
        "out_trade_no": refund.out_trade_no,
        "transaction_id": refund.transaction_id,
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id,
        "refund_status": refund.status,
        "user_received_account": "支付用户零钱",
        "amount": {
            "total": refund.total,
            "refund": refund.refund,
            "payer_total": refund.total,
            "payer_refund": refund.refund,
        },
    });
    if let Some(at) = &refund.success_time {
        resource["success_time"] = json!(at);
    }
    let (event, summary) = if fails {
        ("REFUND.ABNORMAL", "退款异常")
    } else {
        ("REFUND.SUCCESS", "退款成功")
    };
    match notification(state, event, summary, "refund", &resource) {
        Ok(body) => {
            let outcome = deliver(state, url, body).await;
            tracing::info!(event, outcome = %outcome, "sandbox WeChat Pay refund notification");
        }
        Err(why) => tracing::warn!(event, why, "sandbox WeChat Pay cannot notify"),
    }
}

fn query_refund(state: &State, no: &str) -> HttpResponse {
    let Ok(book) = state.book.lock() else {
        return error(state, 500, "SYSTEM_ERROR", "stand-in state poisoned");
    };
    match book.refunds.get(no) {
        Some(refund) => signed(state, 200, Some(&refund_json(refund))),
        None => error(
            state,
            404,
            "RESOURCE_NOT_EXISTS",
            "the refund does not exist",
        ),
    }
}

/// A notification body: the event envelope with `resource` encrypted (AEAD_AES_256_GCM, the
/// APIv3 key, associated data = the original type, a 12-character nonce).
fn notification(
    state: &State,
    event: &str,
    summary: &str,
    original_type: &str,
    resource: &Value,
) -> Result<String, &'static str> {
    let key = state
        .merchant
        .apiv3_key
        .as_deref()
        .ok_or("no APIv3 key is configured (WECHATPAY_APIV3_KEY)")?;
    notification_body(key, event, summary, original_type, resource)
}

/// A notification body encrypted with `apiv3_key` (also the bench's provider side).
pub fn notification_body(
    apiv3_key: &str,
    event: &str,
    summary: &str,
    original_type: &str,
    resource: &Value,
) -> Result<String, &'static str> {
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(apiv3_key.as_bytes())
        .map_err(|_| "the APIv3 key is not 32 bytes")?;
    let nonce = random_text(12, ALNUM);
    let ciphertext = cipher
        .encrypt(
            aes_gcm::Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: resource.to_string().as_bytes(),
                aad: original_type.as_bytes(),
            },
        )
        .map_err(|_| "encryption failed")?;
    let now = OffsetDateTime::now_utc();
    Ok(json!({
        "id": format!("EV-{}", random_text(20, DIGITS)),
        "create_time": beijing(now),
        "resource_type": "encrypt-resource",
        "event_type": event,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": STANDARD.encode(ciphertext),
            "associated_data": original_type,
            "nonce": nonce,
        },
    })
    .to_string())
}

/// POSTs a notification as WeChat Pay does (signed headers over the exact body), trying up to
/// three times a second apart while the answer is not 2xx; says how it went.
async fn deliver(state: &State, url: &str, body: String) -> String {
    let mut outcome = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let (timestamp, nonce, signature) = sign_message(&state.provider.key, &body);
        let sent = state
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("Wechatpay-Serial", &state.provider.id)
            .header("Wechatpay-Signature", signature)
            .header("Wechatpay-Timestamp", timestamp)
            .header("Wechatpay-Nonce", nonce)
            .header("Wechatpay-Signature-Type", SCHEME)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                return response.status().as_u16().to_string()
            }
            Ok(response) => outcome = response.status().as_u16().to_string(),
            Err(e) => outcome = format!("not delivered: {e}"),
        }
    }
    outcome
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayCall {
    out_trade_no: String,
    #[serde(default = "yes")]
    notify: bool,
}

fn yes() -> bool {
    true
}

async fn sandbox_pay(state: &State, body: &[u8]) -> HttpResponse {
    let call: PayCall = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => {
            return http_server::json(
                400,
                &json!({"error": format!("expected {{\"out_trade_no\", \"notify\"?}}: {e}")}),
            )
        }
    };
    let (resource, url, repeat) = {
        let Ok(mut book) = state.book.lock() else {
            return http_server::json(500, &json!({"error": "stand-in state poisoned"}));
        };
        let Some(trade) = book.trades.get_mut(&call.out_trade_no) else {
            return http_server::json(404, &json!({"error": "no trade with this out_trade_no"}));
        };
        let repeat = match trade.state {
            TradeState::NotPay if trade.time_expire <= OffsetDateTime::now_utc() => {
                return http_server::json(409, &json!({"error": "the trade has expired"}))
            }
            TradeState::NotPay => false,
            TradeState::Closed => {
                return http_server::json(409, &json!({"error": "the trade is closed"}))
            }
            TradeState::Success | TradeState::Refund => true,
        };
        if !repeat {
            trade.state = TradeState::Success;
            trade.transaction_id = Some(format!("4200{}", random_text(24, DIGITS)));
            let now = OffsetDateTime::now_utc();
            trade.success_time = Some(beijing(now));
            // The fee, at the rate of the moment it is paid.
            let bps = state.fee_bps.lock().map(|b| *b).unwrap_or_default();
            trade.paid_at = Some(now);
            trade.fee_bps = bps;
            trade.fee = tradebill::fee_of(trade.total, bps);
        }
        // The notification says SUCCESS even when resent after a refund, as WeChat Pay's
        // retries of the payment event do.
        let mut resource = transaction(&state.merchant.mchid, trade);
        resource["trade_state"] = json!("SUCCESS");
        resource["trade_state_desc"] = json!("支付成功");
        (resource, trade.notify_url.clone(), repeat)
    };
    let mut answer = json!({
        "out_trade_no": call.out_trade_no,
        "transaction_id": resource["transaction_id"],
        "trade_state": "SUCCESS",
        "already_paid": repeat,
    });
    if call.notify {
        let outcome = match notification(
            state,
            "TRANSACTION.SUCCESS",
            "支付成功",
            "transaction",
            &resource,
        ) {
            Ok(body) => deliver(state, &url, body).await,
            Err(why) => why.to_owned(),
        };
        answer["notify_url"] = json!(url);
        answer["notified"] = json!(outcome);
    }
    http_server::json(200, &answer)
}

fn sandbox_fail_refunds(state: &State, body: &[u8]) -> HttpResponse {
    let Ok(call) = serde_json::from_slice::<super::FailRefundsCall>(body) else {
        return http_server::json(
            400,
            &json!({"error": "expected {\"out_trade_no\", \"fail\"?}"}),
        );
    };
    let Ok(mut book) = state.book.lock() else {
        return http_server::json(500, &json!({"error": "stand-in state poisoned"}));
    };
    match call.fail {
        true => book.fail_refunds.insert(call.out_trade_no.clone()),
        false => book.fail_refunds.remove(&call.out_trade_no),
    };
    http_server::json(
        200,
        &json!({"out_trade_no": call.out_trade_no, "refunds": if call.fail { "ABNORMAL from now on" } else { "succeed again" }}),
    )
}

/// Starts the stand-in on `listener`; returns its base URL (`WECHATPAY_API_BASE`) and task.
pub fn spawn(
    listener: TcpListener,
    merchant: Merchant,
    provider: ProviderKey,
) -> std::io::Result<(String, JoinHandle<()>)> {
    let base = format!("http://{}", listener.local_addr()?);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(std::io::Error::other)?;
    let state = Arc::new(State {
        merchant,
        provider,
        book: Mutex::new(Book::default()),
        fee_bps: Mutex::new(tradebill::DEFAULT_FEE_BPS),
        http,
    });
    let task = http_server::spawn(
        listener,
        Arc::new(move |req| {
            let state = Arc::clone(&state);
            Box::pin(async move { answer(state, req).await })
        }),
    );
    Ok((base, task))
}
