//! A stand-in for WeChat's server APIs: `jscode2session` (login), `stable_token`, the content
//! checks and subscribe messages.
//!
//! Login:
//! - `sandbox:<name>` logs in as a test member whose openid is derived from `<name>`, so tests
//!   pick distinct, stable members; `sandbox:union:<name>` also returns a unionid.
//! - `error:<errcode>` answers that WeChat error (e.g. `error:40029`; `error:40013` and
//!   `error:40125` are the invalid AppID and AppSecret answers), `error:http502` a 502,
//!   `error:oversized` a 200 whose body is larger than the client reads (256 KiB).
//! - Any other code (a real `wx.login` code from the mini-program) maps to one stable openid, so
//!   a developer's client logs in as the same member every time.
//!
//! Server APIs (each checks the access token as WeChat does: 40001 for any other):
//! - `POST /cgi-bin/stable_token` (JSON, normal mode): the same token while it is valid, with its
//!   remaining lifetime; `force_refresh` is answered with a new token, as WeChat does, and counted.
//! - `POST /wxa/msg_sec_check` (v2): text containing `sandbox-risky` → risky (label 20001),
//!   `sandbox-review` → review (21000), `sandbox-61010` → errcode 61010, `sandbox-outage` →
//!   errcode -1; anything else passes (100).
//! - `POST /wxa/media_check_async` (v2): answers a trace id, then fetches the `media_url` and
//!   pushes the result to the local server's `POST /v1/wechat/events`, signed and encrypted in
//!   safe mode with the push keys the server uses: risky (20002) if the file holds the bytes
//!   `sandbox-risky`, errcode -1008 if it cannot be downloaded, else pass.
//! - `POST /cgi-bin/message/subscribe/send`: recorded (an openid containing `sandbox-43101` →
//!   errcode 43101); `GET /sandbox/wechat/messages` lists what was sent.
//! - `POST /wxa/sec/order/upload_shipping_info` (§6): checks the body's shape as WeChat documents
//!   it (`order_key` type 2 with `transaction_id` or type 1 with `mchid` + `out_trade_no`,
//!   `logistics_type` 1–4 with a tracking number and company only for express (1),
//!   `delivery_mode` 1 with exactly one `shipping_list` item, `item_desc` 1–120 characters,
//!   `upload_time` RFC 3339, `payer.openid`) and records it; the same payment again is WeChat's
//!   one re-shipping (recorded with `reship: true`), a third time errcode 10060003. An
//!   `item_desc` containing `sandbox-outage` → errcode -1, `sandbox-refuse` → 10060004 (not
//!   shippable); `POST /sandbox/wechat/shipping-outage {"calls": n}` makes the next n uploads
//!   answer -1 (a transient outage), `POST /sandbox/wechat/shipping-lost-answer {"calls": n}`
//!   records the next n and answers -1 (the answer lost). `GET /sandbox/wechat/shipping` lists
//!   what was recorded.
//! - `POST /wxa/sec/order/get_order {transaction_id}`: `order_state` 2 with
//!   `shipping.finish_shipping` and `finish_shipping_count` once recorded here, else 1.
//! - `POST /wxa/sec/order/is_trade_managed {appid}`: `true`, or what
//!   `POST /sandbox/wechat/trade-managed {"managed": bool}` set.
//! - `GET /sandbox/wechat/stats` counts token fetches, checks and shipping uploads;
//!   `POST /sandbox/wechat/rotate-token` invalidates the current token (the next business call
//!   gets 40001).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use renji_shared::wechat::push::PushKeys;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http_server::{self, HttpRequest, HttpResponse};

pub const APPID: &str = "wx-sandbox-appid";
pub const SECRET: &str = "wx-sandbox-secret";

fn derived(kind: &str, name: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("sandbox-{kind}:{name}").as_bytes(),
    );
    format!("o{}", &URL_SAFE_NO_PAD.encode(digest.as_ref())[..27])
}

/// The message push stand-in's target: the local server's events route and the keys it checks.
#[derive(Clone)]
pub struct PushTarget {
    /// `http://127.0.0.1:<port>/v1/wechat/events`.
    pub events_url: String,
    pub keys: PushKeys,
}

/// The sandbox push keys (the local server's `WECHAT_PUSH_TOKEN` and `WECHAT_PUSH_AES_KEY`
/// unless set outside).
pub const PUSH_TOKEN: &str = "renjisandboxpush";
pub const PUSH_AES_KEY: &str = "cmVuamktc2FuZGJveC1wdXNoLWFlcy1rZXktMzJieXQ";

/// How long a token lives here (WeChat: 7200 s).
const TOKEN_SECS: u64 = 7200;

#[derive(Default)]
struct State {
    token: Option<(String, Instant)>,
    token_fetches: u64,
    force_refreshes: u64,
    text_checks: u64,
    media_checks: u64,
    messages: Vec<serde_json::Value>,
    /// The shipping records taken, in order (each body as sent, with `reship`).
    shipments: Vec<serde_json::Value>,
    /// Upload calls refused (any answer but 0).
    shipping_refusals: u64,
    /// The next this many uploads answer -1.
    shipping_outage: u64,
    /// The next this many uploads are taken (recorded) but answered -1: an answer lost.
    shipping_lost_answers: u64,
    /// `get_order` questions asked.
    shipping_queries: u64,
    /// `is_trade_managed` questions asked, and its answer (`None`: true).
    trade_managed_checks: u64,
    trade_managed: Option<bool>,
}

type Shared = Arc<Mutex<State>>;

fn errcode(code: i64, message: &str) -> HttpResponse {
    http_server::json(200, &json!({"errcode": code, "errmsg": message}))
}

async fn answer(req: HttpRequest, state: Shared, push: Option<PushTarget>) -> HttpResponse {
    let path = req.uri().path().to_owned();
    match (req.method().as_str(), path.as_str()) {
        ("GET", "/sns/jscode2session") => login(&req),
        ("GET", "/sandbox/wechat/messages") => {
            let messages = state.lock().map(|s| s.messages.clone()).unwrap_or_default();
            http_server::json(200, &json!({"messages": messages}))
        }
        ("GET", "/sandbox/wechat/shipping") => {
            let shipments = state
                .lock()
                .map(|s| s.shipments.clone())
                .unwrap_or_default();
            http_server::json(200, &json!({"shipments": shipments}))
        }
        ("POST", "/sandbox/wechat/shipping-outage") => {
            let calls = json_body(req)
                .await
                .and_then(|b| b.get("calls").and_then(|v| v.as_u64()))
                .unwrap_or(1);
            if let Ok(mut s) = state.lock() {
                s.shipping_outage = calls;
            }
            http_server::json(200, &json!({"calls": calls}))
        }
        ("POST", "/sandbox/wechat/shipping-lost-answer") => {
            let calls = json_body(req)
                .await
                .and_then(|b| b.get("calls").and_then(|v| v.as_u64()))
                .unwrap_or(1);
            if let Ok(mut s) = state.lock() {
                s.shipping_lost_answers = calls;
            }
            http_server::json(200, &json!({"calls": calls}))
        }
        ("POST", "/sandbox/wechat/trade-managed") => {
            let managed = json_body(req)
                .await
                .and_then(|b| b.get("managed").and_then(|v| v.as_bool()))
                .unwrap_or(true);
            if let Ok(mut s) = state.lock() {
                s.trade_managed = Some(managed);
            }
            http_server::json(200, &json!({"managed": managed}))
        }
        ("GET", "/sandbox/wechat/stats") => {
            let s = state.lock();
            let stats = s.as_ref().map_or(json!({}), |s| {
                json!({
                    "token_fetches": s.token_fetches,
                    "force_refreshes": s.force_refreshes,
                    "text_checks": s.text_checks,
                    "media_checks": s.media_checks,
                    "messages": s.messages.len(),
                    "shipping_uploads": s.shipments.len(),
                    "shipping_refusals": s.shipping_refusals,
                    "shipping_queries": s.shipping_queries,
                    "trade_managed_checks": s.trade_managed_checks,
                })
            });
            http_server::json(200, &stats)
        }
        ("POST", "/sandbox/wechat/rotate-token") => {
            if let Ok(mut s) = state.lock() {
                s.token = None;
            }
            http_server::json(200, &json!({"rotated": true}))
        }
        ("POST", "/cgi-bin/stable_token") => stable_token(req, &state).await,
        (
            "POST",
            "/wxa/msg_sec_check"
            | "/wxa/media_check_async"
            | "/cgi-bin/message/subscribe/send"
            | SHIPPING_PATH
            | GET_ORDER_PATH
            | TRADE_MANAGED_PATH,
        ) => business(req, &path, &state, push).await,
        (
            _,
            "/sns/jscode2session"
            | "/cgi-bin/stable_token"
            | "/wxa/msg_sec_check"
            | SHIPPING_PATH
            | GET_ORDER_PATH
            | TRADE_MANAGED_PATH,
        ) => errcode(43002, "require POST method"),
        _ => http_server::json(404, &json!({"errcode": 40066, "errmsg": "invalid url"})),
    }
}

async fn json_body(req: HttpRequest) -> Option<serde_json::Value> {
    use http_body_util::BodyExt as _;
    let bytes = req.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&bytes).ok()
}

async fn stable_token(req: HttpRequest, state: &Shared) -> HttpResponse {
    let Some(body) = json_body(req).await else {
        return errcode(47001, "data format error");
    };
    let get = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or("");
    if get("grant_type") != "client_credential" {
        return errcode(40002, "invalid grant_type");
    }
    if get("appid") != APPID {
        return errcode(40013, "invalid appid");
    }
    if get("secret") != SECRET {
        return errcode(40125, "invalid appsecret");
    }
    let force = body.get("force_refresh").and_then(|v| v.as_bool()) == Some(true);
    let Ok(mut s) = state.lock() else {
        return errcode(-1, "system error");
    };
    s.token_fetches += 1;
    if force {
        s.force_refreshes += 1;
        s.token = None;
    }
    let now = Instant::now();
    let (token, expires) = match &s.token {
        Some((token, expires)) if *expires > now => (token.clone(), *expires),
        _ => {
            let token = format!("sandbox-token-{}", renji_shared::ids::random_token());
            let expires = now + Duration::from_secs(TOKEN_SECS);
            s.token = Some((token.clone(), expires));
            (token, expires)
        }
    };
    http_server::json(
        200,
        &json!({"access_token": token, "expires_in": (expires - now).as_secs()}),
    )
}

/// The calls that need the access token.
async fn business(
    req: HttpRequest,
    path: &str,
    state: &Shared,
    push: Option<PushTarget>,
) -> HttpResponse {
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let valid = {
        let Ok(s) = state.lock() else {
            return errcode(-1, "system error");
        };
        matches!(&s.token, Some((token, expires))
            if query.get("access_token") == Some(token) && *expires > Instant::now())
    };
    if !valid {
        return errcode(
            40001,
            "invalid credential, access_token is invalid or not latest",
        );
    }
    let Some(body) = json_body(req).await else {
        return errcode(47001, "data format error");
    };
    let text = |k: &str| {
        body.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let trace_id = format!(
        "sandbox-trace-{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    );
    match path {
        SHIPPING_PATH => {
            let answer = shipping(&body, state);
            if answer != 0 {
                if let Ok(mut s) = state.lock() {
                    s.shipping_refusals += 1;
                }
            }
            let message = match answer {
                0 => "ok",
                -1 => "system error",
                _ => "sandbox: see the shipping rules in local/src/sandbox/wechat.rs",
            };
            errcode(answer, message)
        }
        GET_ORDER_PATH => shipping_order(&body, state),
        TRADE_MANAGED_PATH => {
            if text("appid") != APPID {
                return errcode(40097, "invalid args");
            }
            let Ok(mut s) = state.lock() else {
                return errcode(-1, "system error");
            };
            s.trade_managed_checks += 1;
            let managed = s.trade_managed.unwrap_or(true);
            http_server::json(
                200,
                &json!({"errcode": 0, "errmsg": "ok", "is_trade_managed": managed}),
            )
        }
        "/wxa/msg_sec_check" => {
            if body.get("version").and_then(|v| v.as_i64()) != Some(2) {
                return errcode(40097, "invalid version");
            }
            if !(1..=4).contains(&body.get("scene").and_then(|v| v.as_i64()).unwrap_or(0)) {
                return errcode(40129, "invalid scene");
            }
            if text("openid").is_empty() {
                return errcode(40003, "invalid openid");
            }
            let content = text("content");
            if let Ok(mut s) = state.lock() {
                s.text_checks += 1;
            }
            let all = format!("{content} {} {}", text("title"), text("nickname"));
            if all.contains("sandbox-outage") {
                return errcode(-1, "system error");
            }
            if all.contains("sandbox-61010") {
                return errcode(61010, "user access record timeout");
            }
            let (suggest, label) = if all.contains("sandbox-risky") {
                ("risky", 20001)
            } else if all.contains("sandbox-review") {
                ("review", 21000)
            } else {
                ("pass", 100)
            };
            http_server::json(
                200,
                &json!({
                    "errcode": 0, "errmsg": "ok", "trace_id": trace_id,
                    "result": {"suggest": suggest, "label": label},
                    "detail": [{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90}],
                }),
            )
        }
        "/wxa/media_check_async" => {
            if body.get("version").and_then(|v| v.as_i64()) != Some(2) {
                return errcode(40097, "invalid version");
            }
            if !matches!(body.get("media_type").and_then(|v| v.as_i64()), Some(1 | 2)) {
                return errcode(40004, "invalid media type");
            }
            let (openid, media_url) = (text("openid"), text("media_url"));
            if openid.is_empty() {
                return errcode(40003, "invalid openid");
            }
            if let Ok(mut s) = state.lock() {
                s.media_checks += 1;
            }
            if let Some(target) = push {
                let trace = trace_id.clone();
                tokio::spawn(async move { push_result(target, &openid, &media_url, &trace).await });
            }
            http_server::json(
                200,
                &json!({"errcode": 0, "errmsg": "ok", "trace_id": trace_id}),
            )
        }
        _ => {
            let (touser, template_id) = (text("touser"), text("template_id"));
            if touser.is_empty() {
                return errcode(40003, "invalid openid");
            }
            if template_id.is_empty() {
                return errcode(40037, "invalid template_id");
            }
            if !body.get("data").is_some_and(|d| d.is_object()) {
                return errcode(47003, "argument invalid! data invalid");
            }
            if touser.contains("sandbox-43101") {
                return errcode(43101, "user refuse to accept the msg");
            }
            if let Ok(mut s) = state.lock() {
                s.messages.push(body.clone());
            }
            errcode(0, "ok")
        }
    }
}

/// The mini-program shipping API's paths.
const SHIPPING_PATH: &str = "/wxa/sec/order/upload_shipping_info";
const GET_ORDER_PATH: &str = "/wxa/sec/order/get_order";
const TRADE_MANAGED_PATH: &str = "/wxa/sec/order/is_trade_managed";

/// `get_order {transaction_id | merchant_id + merchant_trade_no}`: the payment's shipping as
/// recorded here — `order_state` 2 with `shipping.finish_shipping` and its count once uploaded,
/// else 1 (待发货; this stand-in does not know the WeChat Pay stand-in's payments, so any other
/// payment is one not shipped yet).
fn shipping_order(body: &serde_json::Value, state: &Shared) -> HttpResponse {
    let text = |k: &str| {
        body.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let payment = match (
        text("transaction_id"),
        text("merchant_id"),
        text("merchant_trade_no"),
    ) {
        (id, _, _) if !id.is_empty() => id,
        (_, mchid, no) if !mchid.is_empty() && !no.is_empty() => format!("{mchid}/{no}"),
        _ => return errcode(40097, "invalid args"),
    };
    let Ok(mut s) = state.lock() else {
        return errcode(-1, "system error");
    };
    s.shipping_queries += 1;
    let taken: Vec<&serde_json::Value> = s
        .shipments
        .iter()
        .filter(|r| r.get("payment").and_then(|v| v.as_str()) == Some(payment.as_str()))
        .collect();
    let shipping = taken.last().map(|last| {
        json!({
            "delivery_mode": last["delivery_mode"],
            "logistics_type": last["logistics_type"],
            "finish_shipping": true,
            "finish_shipping_count": taken.len(),
            "goods_desc": last["shipping_list"][0]["item_desc"],
            "shipping_list": [],
        })
    });
    let mut order = json!({
        "transaction_id": text("transaction_id"),
        "merchant_id": text("merchant_id"),
        "merchant_trade_no": text("merchant_trade_no"),
        "order_state": if shipping.is_some() { 2 } else { 1 },
        "in_complaint": false,
    });
    if let Some(shipping) = shipping {
        order["shipping"] = shipping;
    }
    http_server::json(200, &json!({"errcode": 0, "errmsg": "ok", "order": order}))
}

/// Checks and records one `upload_shipping_info` body: the errcode to answer (0: taken).
fn shipping(body: &serde_json::Value, state: &Shared) -> i64 {
    let text =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let number = |k: &str| body.get(k).and_then(|v| v.as_i64());
    let key = body.get("order_key").cloned().unwrap_or_default();
    let payment = match key.get("order_number_type").and_then(|v| v.as_i64()) {
        Some(1) if !text(&key, "mchid").is_empty() && !text(&key, "out_trade_no").is_empty() => {
            format!("{}/{}", text(&key, "mchid"), text(&key, "out_trade_no"))
        }
        Some(2) if !text(&key, "transaction_id").is_empty() => text(&key, "transaction_id"),
        Some(1 | 2) => return 268485195,
        _ => return 268485194,
    };
    let logistics = number("logistics_type").unwrap_or(0);
    if !(1..=4).contains(&logistics) {
        return 10060005;
    }
    let list: Vec<serde_json::Value> = body
        .get("shipping_list")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    match number("delivery_mode") {
        Some(1) if list.len() != 1 => return 268485228,
        Some(1) => {}
        Some(2) if logistics != 1 => return 10060006,
        Some(2)
            if body
                .get("is_all_delivered")
                .and_then(|v| v.as_bool())
                .is_none() =>
        {
            return 10060007
        }
        Some(2) if (1..=15).contains(&list.len()) => {}
        _ => return 268485224,
    }
    for item in &list {
        let desc = text(item, "item_desc");
        if desc.trim().is_empty() {
            return 10060008;
        }
        if desc.chars().count() > 120 {
            return 10060009;
        }
        // Express needs its tracking number and company; the other modes none.
        if logistics == 1 && text(item, "tracking_no").is_empty() {
            return 268485226;
        }
        if logistics == 1 && text(item, "express_company").is_empty() {
            return 268485227;
        }
    }
    let upload_time = text(body, "upload_time");
    if time::OffsetDateTime::parse(&upload_time, &time::format_description::well_known::Rfc3339)
        .is_err()
    {
        return 268485216;
    }
    let payer = body.get("payer").cloned().unwrap_or_default();
    if text(&payer, "openid").is_empty() {
        return 10060031;
    }
    let descs: String = list.iter().map(|i| text(i, "item_desc")).collect();
    if descs.contains("sandbox-outage") {
        return -1;
    }
    if descs.contains("sandbox-refuse") {
        return 10060004;
    }
    let Ok(mut s) = state.lock() else {
        return -1;
    };
    if s.shipping_outage > 0 {
        s.shipping_outage -= 1;
        return -1;
    }
    let before = s
        .shipments
        .iter()
        .filter(|r| r.get("payment").and_then(|v| v.as_str()) == Some(payment.as_str()))
        .count();
    if before >= 2 {
        // The one re-shipping is used.
        return 10060003;
    }
    let mut record = body.clone();
    record["payment"] = payment.into();
    record["reship"] = (before == 1).into();
    s.shipments.push(record);
    if s.shipping_lost_answers > 0 {
        // Taken, but the answer never reaches the caller.
        s.shipping_lost_answers -= 1;
        return -1;
    }
    0
}

/// A safe-mode push of `message` as WeChat sends it to `POST /v1/wechat/events`: encrypted
/// with `keys` for [`APPID`] (with the given 16 random bytes), signed over `timestamp` and
/// `nonce`. What the stand-in pushes, and what the tests and the benchmark send.
pub struct SignedPush {
    /// `signature`, `timestamp`, `nonce`, `openid`, `encrypt_type` (`aes`), `msg_signature`.
    pub query: Vec<(&'static str, String)>,
    /// `{"ToUserName": <the message's>, "Encrypt": …}`.
    pub body: String,
}

impl SignedPush {
    pub fn new(
        keys: &PushKeys,
        message: &serde_json::Value,
        openid: &str,
        timestamp: &str,
        nonce: &str,
        random: [u8; 16],
    ) -> Self {
        let encrypt = keys.encrypt(message.to_string().as_bytes(), APPID, random);
        let query = vec![
            ("signature", keys.signature(&[timestamp, nonce])),
            ("timestamp", timestamp.to_owned()),
            ("nonce", nonce.to_owned()),
            ("openid", openid.to_owned()),
            ("encrypt_type", "aes".to_owned()),
            (
                "msg_signature",
                keys.signature(&[timestamp, nonce, &encrypt]),
            ),
        ];
        let body = json!({"ToUserName": message["ToUserName"], "Encrypt": encrypt}).to_string();
        SignedPush { query, body }
    }

    /// `signature=…&timestamp=…&…`: hex, digits and an openid (letters, digits, `-`, `_`) need
    /// no escaping.
    pub fn query_string(&self) -> String {
        self.query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The API Gateway event of this push: `sample` (the route's sample event) with this query
    /// and body.
    pub fn event(&self, sample: &serde_json::Value) -> serde_json::Value {
        let mut event = sample.clone();
        event["rawQueryString"] = json!(self.query_string());
        event["queryStringParameters"] = self
            .query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        event["headers"]["content-length"] = json!(self.body.len().to_string());
        event["body"] = json!(self.body);
        event
    }
}

/// Fetches the media as WeChat would and pushes its verdict to the events route.
async fn push_result(target: PushTarget, openid: &str, media_url: &str, trace_id: &str) {
    let client = reqwest::Client::new();
    let fetched = match client
        .get(media_url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r.bytes().await.ok(),
        _ => None,
    };
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    let (errcode, suggest, label) = match &fetched {
        None => (-1008, "review", 100),
        Some(bytes) if bytes.windows(13).any(|w| w == b"sandbox-risky") => (0, "risky", 20002),
        Some(_) => (0, "pass", 100),
    };
    let event = json!({
        "ToUserName": "gh_sandbox",
        "FromUserName": openid,
        "CreateTime": created,
        "MsgType": "event",
        "Event": "wxa_media_check",
        "appid": APPID,
        "trace_id": trace_id,
        "version": 2,
        "errcode": errcode,
        "errmsg": if errcode == 0 { "ok" } else { "download failed" },
        "result": {"suggest": suggest, "label": label.to_string()},
        "detail": [{"strategy": "content_model", "errcode": errcode, "suggest": suggest, "label": label, "prob": 90}],
    });
    let mut random = [0u8; 20];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&random[..16]);
    let timestamp = created.to_string();
    let nonce = u32::from_be_bytes([random[16], random[17], random[18], random[19]]).to_string();
    let push = SignedPush::new(&target.keys, &event, openid, &timestamp, &nonce, prefix);
    let url = format!("{}?{}", target.events_url, push.query_string());
    for _ in 0..3 {
        let sent = client
            .post(&url)
            .header("content-type", "application/json")
            .body(push.body.clone())
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!(trace_id, "the sandbox media check push was not accepted");
}

fn login(req: &HttpRequest) -> HttpResponse {
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    if get("appid") != APPID || get("secret") != SECRET {
        return http_server::json(200, &json!({"errcode": 40013, "errmsg": "invalid appid"}));
    }
    if get("grant_type") != "authorization_code" {
        return http_server::json(
            200,
            &json!({"errcode": 40002, "errmsg": "invalid grant_type"}),
        );
    }
    let code = get("js_code");
    if code.is_empty() {
        return http_server::json(200, &json!({"errcode": 41008, "errmsg": "missing code"}));
    }
    if let Some(error) = code.strip_prefix("error:") {
        if error == "http502" {
            return http_server::json(502, &json!({}));
        }
        if error == "oversized" {
            let padding = "a".repeat(256 * 1024);
            return http_server::json(
                200,
                &json!({"openid": derived("openid", "oversized"), "padding": padding}),
            );
        }
        let errcode: i64 = error.parse().unwrap_or(-1);
        return http_server::json(200, &json!({"errcode": errcode, "errmsg": "sandbox error"}));
    }
    let session_key = URL_SAFE_NO_PAD.encode(renji_shared::ids::random_token());
    let reply = match code.strip_prefix("sandbox:") {
        Some(rest) => match rest.strip_prefix("union:") {
            Some(name) => json!({
                "openid": derived("openid", name),
                "unionid": derived("unionid", name),
                "session_key": session_key,
            }),
            None => json!({"openid": derived("openid", rest), "session_key": session_key}),
        },
        None => json!({"openid": derived("openid", "default"), "session_key": session_key}),
    };
    http_server::json(200, &reply)
}

/// Starts the stand-in on `listener` without message push; returns its base URL and task.
pub fn spawn(listener: TcpListener) -> std::io::Result<(String, JoinHandle<()>)> {
    spawn_pushing(listener, None)
}

/// Starts the stand-in on `listener`, pushing media check results to `push`.
pub fn spawn_pushing(
    listener: TcpListener,
    push: Option<PushTarget>,
) -> std::io::Result<(String, JoinHandle<()>)> {
    let base = format!("http://{}", listener.local_addr()?);
    let state = Shared::default();
    let task = http_server::spawn(
        listener,
        Arc::new(move |req| Box::pin(answer(req, state.clone(), push.clone()))),
    );
    Ok((base, task))
}
