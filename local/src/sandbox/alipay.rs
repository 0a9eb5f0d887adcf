//! A stand-in for the Alipay open API gateway, playing the provider with RustCrypto so it checks
//! our ring-based RSA2 signatures independently.
//!
//! - One gateway path ([`GATEWAY_PATH`]): form POSTs (parameters in the query, the body or both,
//!   as the SDKs send them) with `method=`. Our RSA2 signature is checked as Alipay does (every
//!   parameter but `sign`, empty ones dropped, `sign_type` kept, sorted, `k=v` joined by `&`,
//!   SHA256withRSA with the app public key). Answers are
//!   `{"<method_with_underscores>_response": {...}, "sign": "…"}`, `sign` being RSA2 over the
//!   exact JSON text of the response object as sent, by the stand-in's Alipay key.
//! - Methods: `alipay.trade.query`, `alipay.trade.close`, `alipay.trade.refund` (idempotent on
//!   `out_request_no`; `fund_change` is `Y` when money moved, `N` on a repeat, as Alipay answers),
//!   `alipay.trade.fastpay.refund.query`; `alipay.trade.wap.pay` by GET (the browser opening the
//!   signed URL): verified and recorded, answered with a page saying how to pay here.
//! - Sandbox calls (no signature; the buyer's side): `POST /sandbox/pay` with
//!   `{"order_string"}` (the app's `alipay.trade.app.pay` string), `{"url"}` (the wap URL) or
//!   `{"out_trade_no"}` (a recorded trade), and `"notify"?: bool` — verifies our signature on what
//!   the client was given, records and pays the trade, and POSTs a signed `trade_status_sync`
//!   with TRADE_SUCCESS to its notify_url (`"notify": false` pays silently; paying a paid trade
//!   notifies again). `POST /sandbox/fail-refunds {"out_trade_no"}` makes that trade's refunds
//!   fail (`ACQ.SELLER_BALANCE_NOT_ENOUGH`). A refund sends a `trade_status_sync` too (with
//!   `refund_fee`, TRADE_CLOSED once all is refunded), as Alipay does. A refund's
//!   `refund_royalty_parameters` (`[{trans_out, amount}]`) take that much back from what the
//!   receiver got of the trade's royalties (more is `ACQ.ALLOC_AMOUNT_VALIDATE_ERROR` 退分账金额超限,
//!   as `alipay.trade.refund`'s error table names it).
//!   `GET /sandbox/royalty/relations` lists the royalty receivers bound (type, account).
//! - The trade bill (`alipay.data.dataservice.bill.downloadurl.query`, the zip at the URL it
//!   answers), each payment's fee at the stand-in's own rate and each refund's fee given back
//!   (`bill.rs`); `POST /sandbox/fee-rate {"bps"}` sets the rate of later payments.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::payment_keys::{self, random_text};
use crate::http_server::{self, HttpRequest, HttpResponse};

pub const GATEWAY_PATH: &str = "/gateway.do";
const DIGITS: &[u8] = b"0123456789";

/// Who the stand-in serves: the app as the functions are configured.
pub struct App {
    pub app_id: String,
    pub seller_id: String,
    /// Derived from the configured app private key; `None` refuses every signed call.
    pub public_key: Option<RsaPublicKey>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    WaitBuyerPay,
    Success,
    Closed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::WaitBuyerPay => "WAIT_BUYER_PAY",
            Status::Success => "TRADE_SUCCESS",
            Status::Closed => "TRADE_CLOSED",
        }
    }
}

struct Trade {
    out_trade_no: String,
    trade_no: String,
    total: i64,
    subject: String,
    notify_url: Option<String>,
    time_expire: Option<OffsetDateTime>,
    status: Status,
    created: String,
    paid_at: Option<String>,
    refunded: i64,
    buyer_id: String,
    /// Paid with `extend_params.royalty_freeze = "true"`: frozen for royalty.
    royalty_freeze: bool,
    /// When it was paid, its fee at the rate then, and what refunds gave back of it (`bill.rs`).
    paid_time: Option<OffsetDateTime>,
    fee: i64,
    fee_returned: i64,
}

#[derive(Clone)]
struct Refund {
    out_trade_no: String,
    amount: i64,
    at: String,
    at_time: OffsetDateTime,
    /// The fee it gave back (`bill.rs`).
    fee_back: i64,
}

#[derive(Default)]
struct Book {
    trades: HashMap<String, Trade>,
    /// By (out_trade_no, out_request_no).
    refunds: HashMap<(String, String), Refund>,
    fail_refunds: HashSet<String>,
    /// Royalty relations and settles (`royalty.rs`).
    royalty: royalty::Royalty,
}

mod bill;
mod royalty;

struct State {
    app: App,
    key: RsaPrivateKey,
    base: String,
    book: Mutex<Book>,
    /// The fee rate of payments from now on (万分比, `POST /sandbox/fee-rate`).
    fee_bps: Mutex<i64>,
    http: reqwest::Client,
}

type Shared = Arc<State>;

/// `yyyy-MM-dd HH:mm:ss` in Beijing time, as Alipay writes times.
fn beijing(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::macros::offset!(+8));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn parse_beijing(text: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, &format)
        .ok()
        .map(|t| t.assume_offset(time::macros::offset!(+8)))
}

/// A yuan amount `1`, `1.5` or `1.50` → fen; more than two decimals, signs, exponents → `None`.
fn fen(yuan: &str) -> Option<i64> {
    let (whole, fraction) = yuan.split_once('.').unwrap_or((yuan, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (yuan.contains('.') && !digits(fraction)) || fraction.len() > 2 {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let cents: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(cents)
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// The string Alipay signs: every parameter but `sign` (and `sign_type` when `with_sign_type` is
/// false: notifications), empty ones dropped, sorted by name, `k=v` joined by `&`.
pub fn signing_string(params: &BTreeMap<String, String>, with_sign_type: bool) -> String {
    params
        .iter()
        .filter(|(k, v)| *k != "sign" && (with_sign_type || *k != "sign_type") && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Checks our RSA2 signature on a request's (decoded) parameters.
fn check_signature(app: &App, params: &BTreeMap<String, String>) -> Result<(), &'static str> {
    if params.get("sign_type").map(String::as_str) != Some("RSA2") {
        return Err("sign_type must be RSA2");
    }
    let sign = params.get("sign").ok_or("sign is missing")?;
    let key = app
        .public_key
        .as_ref()
        .ok_or("the stand-in has no app public key (ALIPAY_APP_PRIVATE_KEY)")?;
    if !payment_keys::verify(key, signing_string(params, true).as_bytes(), sign) {
        return Err("the signature does not verify with the app public key");
    }
    Ok(())
}

/// The common parameters every call carries; `Err` is (sub_code, sub_msg).
fn check_common(
    app: &App,
    params: &BTreeMap<String, String>,
) -> Result<(), (&'static str, String)> {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    if get("app_id") != app.app_id {
        return Err(("isv.invalid-app-id", "app_id is not this app's".into()));
    }
    if !get("charset").eq_ignore_ascii_case("utf-8") {
        return Err(("isv.invalid-charset", "charset must be utf-8".into()));
    }
    if get("version") != "1.0" {
        return Err(("isv.invalid-version", "version must be 1.0".into()));
    }
    if parse_beijing(get("timestamp")).is_none() {
        return Err((
            "isv.invalid-timestamp",
            "timestamp must be yyyy-MM-dd HH:mm:ss".into(),
        ));
    }
    if let Err(why) = check_signature(app, params) {
        return Err(("isv.invalid-signature", why.into()));
    }
    Ok(())
}

/// A signed gateway answer.
fn answer_json(state: &State, method: &str, response: &Value) -> HttpResponse {
    let text = response.to_string();
    let sign = payment_keys::sign(&state.key, text.as_bytes());
    let key = format!("{}_response", method.replace('.', "_"));
    let body = format!(
        "{{{}:{text},\"sign\":{}}}",
        Value::String(key),
        Value::String(sign)
    );
    hyper::Response::builder()
        .status(200)
        .header("content-type", "application/json;charset=utf-8")
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap_or_default()
}

fn success(mut fields: Value) -> Value {
    if let Some(map) = fields.as_object_mut() {
        map.insert("code".into(), json!("10000"));
        map.insert("msg".into(), json!("Success"));
    }
    fields
}

fn failure(code: &str, sub_code: &str, sub_msg: &str) -> Value {
    let msg = match code {
        "40002" => "Invalid Arguments",
        "40004" => "Business Failed",
        "40001" => "Missing Required Arguments",
        _ => "Unknown Error",
    };
    json!({"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg})
}

fn params_of(query: Option<&str>, body: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .chain(url::form_urlencoded::parse(body))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn answer(state: Shared, req: HttpRequest) -> HttpResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let raw_query = req.uri().query().map(str::to_owned);
    let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return http_server::json(413, &json!({"error": "too large"})),
    };
    match (method.as_str(), path.as_str()) {
        ("POST", "/sandbox/pay") => return sandbox_pay(&state, &body).await,
        ("POST", "/sandbox/fail-refunds") => return sandbox_fail_refunds(&state, &body),
        ("POST", "/sandbox/fee-rate") => return bill::sandbox_fee_rate(&state, &body),
        ("GET", bill::DOWNLOAD_PATH) => return bill::download(&state, raw_query.as_deref()),
        ("GET", "/sandbox/royalty/relations") => return royalty::sandbox_relations(&state),
        ("GET" | "POST", GATEWAY_PATH) => {}
        _ => return http_server::json(404, &json!({"error": "no such path"})),
    }
    let params = params_of(raw_query.as_deref(), &body);
    let api = params.get("method").cloned().unwrap_or_default();
    if api.is_empty() {
        return answer_json(
            &state,
            "error",
            &failure("40001", "isv.missing-method", "method is missing"),
        );
    }
    if let Err((sub_code, sub_msg)) = check_common(&state.app, &params) {
        return answer_json(&state, &api, &failure("40002", sub_code, &sub_msg));
    }
    let biz: serde_json::Map<String, Value> =
        match params.get("biz_content").map(|b| serde_json::from_str(b)) {
            Some(Ok(Value::Object(map))) => map,
            _ => {
                return answer_json(
                    &state,
                    &api,
                    &failure(
                        "40002",
                        "isv.invalid-biz-content",
                        "biz_content is not a JSON object",
                    ),
                )
            }
        };
    let biz_str = |k: &str| biz.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let response = match (method.as_str(), api.as_str()) {
        ("GET", "alipay.trade.wap.pay") => {
            return match record(&state, &params, &biz, "QUICK_WAP_WAY") {
                Ok(no) => wap_page(&state, &no),
                Err((sub_code, sub_msg)) => http_server::json(
                    400,
                    &json!({"error": {"sub_code": sub_code, "sub_msg": sub_msg}}),
                ),
            }
        }
        (_, "alipay.trade.query") => {
            query_trade(&state, &biz_str("out_trade_no"), &biz_str("trade_no"))
        }
        (_, "alipay.trade.close") => close(&state, &biz_str("out_trade_no"), &biz_str("trade_no")),
        (_, "alipay.trade.refund") => refund(&state, &biz),
        (_, "alipay.data.dataservice.bill.downloadurl.query") => bill::answer(&state, &biz),
        (_, api) if royalty::METHODS.contains(&api) => royalty::answer(&state, api, &biz),
        (_, "alipay.trade.fastpay.refund.query") => refund_query(
            &state,
            &biz_str("out_trade_no"),
            &biz_str("trade_no"),
            &biz_str("out_request_no"),
        ),
        _ => failure(
            "40004",
            "isv.invalid-method",
            "this method is not in the sandbox",
        ),
    };
    answer_json(&state, &api, &response)
}

/// Records a trade from a signed app or wap order (the first time; a repeat must agree).
/// Returns its out_trade_no; `Err` is (sub_code, sub_msg).
fn record(
    state: &State,
    params: &BTreeMap<String, String>,
    biz: &serde_json::Map<String, Value>,
    product_code: &str,
) -> Result<String, (&'static str, String)> {
    let get = |k: &str| biz.get(k).and_then(Value::as_str).unwrap_or("");
    let out_trade_no = get("out_trade_no");
    let valid_no = (1..=64).contains(&out_trade_no.len())
        && out_trade_no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_no {
        return Err((
            "isv.invalid-out-trade-no",
            "out_trade_no must be 1-64 of [0-9A-Za-z_]".into(),
        ));
    }
    let total = fen(get("total_amount"))
        .filter(|f| (1..=10_000_000_000).contains(f))
        .ok_or((
            "isv.invalid-total-amount",
            "total_amount must be 0.01-100000000 yuan with at most two decimals".to_owned(),
        ))?;
    let subject = get("subject");
    if subject.is_empty() || subject.chars().count() > 256 {
        return Err((
            "isv.invalid-subject",
            "subject must be 1-256 characters".into(),
        ));
    }
    if get("product_code") != product_code {
        return Err((
            "isv.invalid-product-code",
            format!("product_code must be {product_code}"),
        ));
    }
    let splittable = biz
        .get("extend_params")
        .and_then(|e| e.get("royalty_freeze"))
        .and_then(Value::as_str)
        == Some("true");
    if !splittable {
        return Err((
            "isv.royalty-freeze-required",
            "extend_params.royalty_freeze must be \"true\": the marketplace creates splittable \
             payments (a rule of this sandbox)"
                .into(),
        ));
    }
    let time_expire = match biz.get("time_expire").and_then(Value::as_str) {
        None => None,
        Some(t) => Some(parse_beijing(t).ok_or((
            "isv.invalid-time-expire",
            "time_expire must be yyyy-MM-dd HH:mm:ss".to_owned(),
        ))?),
    };
    let notify_url = params.get("notify_url").filter(|u| !u.is_empty()).cloned();
    let mut book = state
        .book
        .lock()
        .map_err(|_| ("aop.unknow-error", "stand-in state poisoned".to_owned()))?;
    if let Some(trade) = book.trades.get(out_trade_no) {
        if trade.total != total || trade.subject != subject {
            return Err((
                "ACQ.CONTEXT_INCONSISTENT",
                "the trade exists with other details".into(),
            ));
        }
        return Ok(out_trade_no.to_owned());
    }
    let now = OffsetDateTime::now_utc();
    book.trades.insert(
        out_trade_no.to_owned(),
        Trade {
            out_trade_no: out_trade_no.to_owned(),
            trade_no: format!(
                "{}22001{}",
                beijing(now).get(..10).unwrap_or("").replace('-', ""),
                random_text(15, DIGITS)
            ),
            total,
            subject: subject.to_owned(),
            notify_url,
            time_expire,
            status: Status::WaitBuyerPay,
            created: beijing(now),
            paid_at: None,
            refunded: 0,
            royalty_freeze: biz
                .get("extend_params")
                .and_then(|e| e.get("royalty_freeze"))
                .and_then(Value::as_str)
                == Some("true"),
            buyer_id: format!("2088{}", random_text(12, DIGITS)),
            paid_time: None,
            fee: 0,
            fee_returned: 0,
        },
    );
    Ok(out_trade_no.to_owned())
}

fn wap_page(state: &State, out_trade_no: &str) -> HttpResponse {
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>Sandbox Alipay</title>\
         <p>Sandbox Alipay: trade <code>{out_trade_no}</code> is waiting for payment.</p>\
         <p>To pay it: <code>curl -s -X POST {base}/sandbox/pay -H 'content-type: application/json' \
         -d '{{\"out_trade_no\":\"{out_trade_no}\"}}'</code></p>",
        base = state.base
    );
    hyper::Response::builder()
        .status(200)
        .header("content-type", "text/html; charset=utf-8")
        .body(Full::new(bytes::Bytes::from(page)))
        .unwrap_or_default()
}

fn find<'a>(book: &'a mut Book, out_trade_no: &str, trade_no: &str) -> Option<&'a mut Trade> {
    book.trades.values_mut().find(|t| {
        (!out_trade_no.is_empty() && t.out_trade_no == out_trade_no)
            || (!trade_no.is_empty() && t.trade_no == trade_no)
    })
}

fn not_exist() -> Value {
    failure("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在")
}

fn query_trade(state: &State, out_trade_no: &str, trade_no: &str) -> Value {
    let Ok(mut book) = state.book.lock() else {
        return failure("20000", "aop.unknow-error", "stand-in state poisoned");
    };
    let Some(trade) = find(&mut book, out_trade_no, trade_no) else {
        return not_exist();
    };
    let mut fields = json!({
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_logon_id": "sandbox***@alipay.com",
        "trade_status": trade.status.as_str(),
        "total_amount": yuan(trade.total),
        "buyer_user_id": trade.buyer_id,
    });
    if let Some(at) = &trade.paid_at {
        fields["send_pay_date"] = json!(at);
        fields["buyer_pay_amount"] = json!(yuan(trade.total));
        fields["receipt_amount"] = json!(yuan(trade.total));
    }
    success(fields)
}

fn close(state: &State, out_trade_no: &str, trade_no: &str) -> Value {
    let Ok(mut book) = state.book.lock() else {
        return failure("20000", "aop.unknow-error", "stand-in state poisoned");
    };
    let Some(trade) = find(&mut book, out_trade_no, trade_no) else {
        return not_exist();
    };
    match trade.status {
        Status::Success => failure("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法"),
        Status::WaitBuyerPay | Status::Closed => {
            trade.status = Status::Closed;
            success(json!({"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}))
        }
    }
}

fn refund(state: &State, biz: &serde_json::Map<String, Value>) -> Value {
    let get = |k: &str| biz.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let Some(amount) = fen(&get("refund_amount")).filter(|f| *f >= 1) else {
        return failure(
            "40002",
            "isv.invalid-refund-amount",
            "refund_amount must be a yuan amount from 0.01",
        );
    };
    let mut notify = None;
    let answer = {
        let Ok(mut book) = state.book.lock() else {
            return failure("20000", "aop.unknow-error", "stand-in state poisoned");
        };
        let Some(trade) = find(&mut book, &get("out_trade_no"), &get("trade_no")) else {
            return not_exist();
        };
        // Without out_request_no, Alipay takes the refund as a full one keyed by the trade.
        let out_request_no = match get("out_request_no") {
            n if n.is_empty() => trade.out_trade_no.clone(),
            n => n,
        };
        let key = (trade.out_trade_no.clone(), out_request_no);
        let (trade_no, out_trade_no, total) = (
            trade.trade_no.clone(),
            trade.out_trade_no.clone(),
            trade.total,
        );
        let refunded = trade.refunded;
        let status = trade.status;
        let fails = book.fail_refunds.contains(&out_trade_no);
        let fund_change;
        let at;
        if let Some(existing) = book.refunds.get(&key) {
            if existing.amount != amount {
                return failure(
                    "40004",
                    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
                    "退款金额与原请求不一致",
                );
            }
            fund_change = "N";
            at = existing.at.clone();
        } else {
            if status == Status::WaitBuyerPay || (status == Status::Closed && refunded == 0) {
                return failure("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法");
            }
            if fails {
                return failure("40004", "ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足");
            }
            if amount > total - refunded {
                return failure("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限");
            }
            // After a royalty: the receivers named give their part back with the refund.
            if let Some(params) = biz.get("refund_royalty_parameters") {
                if let Err(refusal) = book.royalty.take_back(&trade_no, params) {
                    return refusal;
                }
            }
            let now = OffsetDateTime::now_utc();
            at = beijing(now);
            // The fee it gives back, in proportion to what has been refunded in all.
            let fee_back = book.trades.get_mut(&out_trade_no).map_or(0, |t| {
                let back = bill::fee_back(t.fee, t.total, t.refunded + amount, t.fee_returned);
                t.fee_returned += back;
                back
            });
            book.refunds.insert(
                key.clone(),
                Refund {
                    out_trade_no: out_trade_no.clone(),
                    amount,
                    at: at.clone(),
                    at_time: now,
                    fee_back,
                },
            );
            if let Some(trade) = book.trades.get_mut(&out_trade_no) {
                trade.refunded += amount;
                if trade.refunded == trade.total {
                    trade.status = Status::Closed;
                }
                notify = trade
                    .notify_url
                    .clone()
                    .map(|url| (url, trade_notice(state, trade), key.1.clone(), at.clone()));
            }
            fund_change = "Y";
        }
        let refund_fee = book
            .trades
            .get(&out_trade_no)
            .map(|t| t.refunded)
            .unwrap_or(amount);
        success(json!({
            "trade_no": trade_no,
            "out_trade_no": out_trade_no,
            "buyer_logon_id": "sandbox***@alipay.com",
            "fund_change": fund_change,
            "refund_fee": yuan(refund_fee),
            "gmt_refund_pay": at,
            "send_back_fee": yuan(amount),
        }))
    };
    if let Some((url, mut params, out_biz_no, at)) = notify {
        params.insert("out_biz_no".into(), out_biz_no);
        params.insert("gmt_refund".into(), at);
        let state_http = state.http.clone();
        let body = signed_form(state, params);
        // Sent after the answer, as Alipay's asynchronous notice is.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let outcome = deliver(&state_http, &url, body).await;
            tracing::info!(outcome = %outcome, "sandbox Alipay refund notification");
        });
    }
    answer
}

fn refund_query(state: &State, out_trade_no: &str, trade_no: &str, out_request_no: &str) -> Value {
    let Ok(mut book) = state.book.lock() else {
        return failure("20000", "aop.unknow-error", "stand-in state poisoned");
    };
    let Some(trade) = find(&mut book, out_trade_no, trade_no) else {
        return not_exist();
    };
    let (trade_no, out_trade_no, total) = (
        trade.trade_no.clone(),
        trade.out_trade_no.clone(),
        trade.total,
    );
    let request = if out_request_no.is_empty() {
        out_trade_no.clone()
    } else {
        out_request_no.to_owned()
    };
    match book.refunds.get(&(out_trade_no.clone(), request.clone())) {
        Some(refund) => success(json!({
            "trade_no": trade_no,
            "out_trade_no": refund.out_trade_no,
            "out_request_no": request,
            "total_amount": yuan(total),
            "refund_amount": yuan(refund.amount),
            "refund_status": "REFUND_SUCCESS",
            "gmt_refund_pay": refund.at,
        })),
        // Alipay answers a refund it has not received with a bare success: no data at all.
        None => success(json!({})),
    }
}

/// The `trade_status_sync` parameters for a trade as it stands (unsigned).
fn trade_notice(state: &State, trade: &Trade) -> BTreeMap<String, String> {
    let now = beijing(OffsetDateTime::now_utc());
    let mut params: BTreeMap<String, String> = [
        ("notify_time", now),
        ("notify_type", "trade_status_sync".into()),
        ("notify_id", random_text(34, b"0123456789abcdef")),
        ("app_id", state.app.app_id.clone()),
        ("auth_app_id", state.app.app_id.clone()),
        ("charset", "utf-8".into()),
        ("version", "1.0".into()),
        ("sign_type", "RSA2".into()),
        ("trade_no", trade.trade_no.clone()),
        ("out_trade_no", trade.out_trade_no.clone()),
        ("buyer_id", trade.buyer_id.clone()),
        ("buyer_logon_id", "sandbox***@alipay.com".into()),
        ("seller_id", state.app.seller_id.clone()),
        ("seller_email", "sandbox-seller@alipay.com".into()),
        ("trade_status", trade.status.as_str().into()),
        ("total_amount", yuan(trade.total)),
        ("receipt_amount", yuan(trade.total)),
        ("invoice_amount", yuan(trade.total)),
        ("buyer_pay_amount", yuan(trade.total)),
        ("point_amount", "0.00".into()),
        ("subject", trade.subject.clone()),
        ("gmt_create", trade.created.clone()),
        ("gmt_payment", trade.paid_at.clone().unwrap_or_default()),
        (
            "fund_bill_list",
            r#"[{"amount":"AMOUNT","fundChannel":"ALIPAYACCOUNT"}]"#
                .replace("AMOUNT", &yuan(trade.total)),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if trade.refunded > 0 {
        params.insert("refund_fee".into(), yuan(trade.refunded));
    }
    params
}

/// Signs notification parameters as Alipay does (neither `sign` nor `sign_type` covered) and
/// encodes them as a form body.
fn signed_form(state: &State, mut params: BTreeMap<String, String>) -> String {
    let sign = payment_keys::sign(&state.key, signing_string(&params, false).as_bytes());
    params.insert("sign".into(), sign);
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish()
}

/// POSTs a notification form, trying up to three times a second apart until the answer is
/// exactly `success`; says how it went.
async fn deliver(http: &reqwest::Client, url: &str, body: String) -> String {
    let mut outcome = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let sent = http
            .post(url)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                if text == "success" {
                    return "success".into();
                }
                outcome = format!("{status} {}", text.chars().take(200).collect::<String>());
            }
            Err(e) => outcome = format!("not delivered: {e}"),
        }
    }
    outcome
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayCall {
    order_string: Option<String>,
    url: Option<String>,
    out_trade_no: Option<String>,
    #[serde(default = "yes")]
    notify: bool,
}

fn yes() -> bool {
    true
}

fn sandbox_error(status: u16, message: &str) -> HttpResponse {
    http_server::json(status, &json!({"error": message}))
}

/// Checks a signed order the client was given (app order string or wap URL) and records it.
fn record_order(
    state: &State,
    signed: &str,
    method: &str,
    product_code: &str,
) -> Result<String, String> {
    let params: BTreeMap<String, String> = url::form_urlencoded::parse(signed.as_bytes())
        .into_owned()
        .collect();
    if params.get("method").map(String::as_str) != Some(method) {
        return Err(format!("method is not {method}"));
    }
    if let Err((sub_code, why)) = check_common(&state.app, &params) {
        return Err(format!("{sub_code}: {why}"));
    }
    let Some(Ok(Value::Object(biz))) = params
        .get("biz_content")
        .map(|b| serde_json::from_str::<Value>(b))
    else {
        return Err("biz_content is not a JSON object".into());
    };
    record(state, &params, &biz, product_code)
        .map_err(|(sub_code, why)| format!("{sub_code}: {why}"))
}

async fn sandbox_pay(state: &State, body: &[u8]) -> HttpResponse {
    let call: PayCall = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => {
            return sandbox_error(
                400,
                &format!("expected {{\"order_string\"}}, {{\"url\"}} or {{\"out_trade_no\"}}, and \"notify\"?: {e}"),
            )
        }
    };
    let recorded = match (&call.order_string, &call.url, &call.out_trade_no) {
        (Some(order), None, None) => {
            record_order(state, order, "alipay.trade.app.pay", "QUICK_MSECURITY_PAY")
        }
        (None, Some(url), None) => {
            let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
            record_order(state, query, "alipay.trade.wap.pay", "QUICK_WAP_WAY")
        }
        (None, None, Some(no)) => Ok(no.clone()),
        _ => Err("give one of order_string, url, out_trade_no".to_owned()),
    };
    let out_trade_no = match recorded {
        Ok(no) => no,
        Err(why) => return sandbox_error(400, &why),
    };
    let (notice, url, repeat) = {
        let Ok(mut book) = state.book.lock() else {
            return sandbox_error(500, "stand-in state poisoned");
        };
        let Some(trade) = book.trades.get_mut(&out_trade_no) else {
            return sandbox_error(404, "no trade with this out_trade_no");
        };
        let repeat = match trade.status {
            Status::WaitBuyerPay
                if trade
                    .time_expire
                    .is_some_and(|t| t <= OffsetDateTime::now_utc()) =>
            {
                return sandbox_error(409, "the trade has expired")
            }
            Status::WaitBuyerPay => false,
            Status::Closed if trade.paid_at.is_none() => {
                return sandbox_error(409, "the trade is closed")
            }
            Status::Success | Status::Closed => true,
        };
        if !repeat {
            let now = OffsetDateTime::now_utc();
            trade.status = Status::Success;
            trade.paid_at = Some(beijing(now));
            bill::on_paid(state, trade, now);
        }
        let mut notice = trade_notice(state, trade);
        // A resent payment notice says TRADE_SUCCESS, as Alipay's retries of it do.
        notice.insert("trade_status".into(), Status::Success.as_str().into());
        notice.remove("refund_fee");
        (notice, trade.notify_url.clone(), repeat)
    };
    let mut answer = json!({
        "out_trade_no": out_trade_no,
        "trade_no": notice.get("trade_no"),
        "trade_status": "TRADE_SUCCESS",
        "already_paid": repeat,
    });
    if call.notify {
        let outcome = match &url {
            Some(url) => deliver(&state.http, url, signed_form(state, notice)).await,
            None => "the order has no notify_url".into(),
        };
        answer["notify_url"] = json!(url);
        answer["notified"] = json!(outcome);
    }
    http_server::json(200, &answer)
}

fn sandbox_fail_refunds(state: &State, body: &[u8]) -> HttpResponse {
    let Ok(call) = serde_json::from_slice::<super::FailRefundsCall>(body) else {
        return sandbox_error(400, "expected {\"out_trade_no\", \"fail\"?}");
    };
    let Ok(mut book) = state.book.lock() else {
        return sandbox_error(500, "stand-in state poisoned");
    };
    match call.fail {
        true => book.fail_refunds.insert(call.out_trade_no.clone()),
        false => book.fail_refunds.remove(&call.out_trade_no),
    };
    http_server::json(
        200,
        &json!({"out_trade_no": call.out_trade_no, "refunds": if call.fail { "fail from now on (ACQ.SELLER_BALANCE_NOT_ENOUGH)" } else { "succeed again" }}),
    )
}

/// Starts the stand-in on `listener`; returns its base URL (the sandbox calls' base; the
/// gateway, `ALIPAY_GATEWAY`, is the base + [`GATEWAY_PATH`]) and its task.
pub fn spawn(
    listener: TcpListener,
    app: App,
    key: RsaPrivateKey,
) -> std::io::Result<(String, JoinHandle<()>)> {
    let base = format!("http://{}", listener.local_addr()?);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(std::io::Error::other)?;
    let state = Arc::new(State {
        app,
        key,
        base: base.clone(),
        book: Mutex::new(Book::default()),
        fee_bps: Mutex::new(bill::DEFAULT_FEE_BPS),
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
