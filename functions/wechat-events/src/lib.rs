//! The `wechat-events` function: WeChat's message push (消息推送), configured in safe mode
//! (安全模式) with JSON (`wechat-platform.md` §4).
//!
//! - `GET /v1/wechat/events`: the URL handshake — `signature` = SHA-1 of the sorted Token,
//!   `timestamp` and `nonce`; on a match `echostr` is answered verbatim (text/plain), else 401.
//! - `POST /v1/wechat/events`: `encrypt_type=aes` only; `timestamp` within
//!   [`WINDOW_SECS`] of now; `msg_signature` over the Token, `timestamp`, `nonce` and the body's
//!   `Encrypt` (never the `signature`, which does not cover the body); the envelope decrypted and
//!   its appid ours. Any of that wrong: 4xx JSON and nothing recorded. Then by `Event`:
//!   `wxa_media_check` → the image check's result, applied once per `trace_id`
//!   (`domain::media::results`); `subscribe_msg_popup_event` → the member's grants; anything else
//!   → nothing. The answer is `success` (WeChat asks nothing more, and needs no encryption).
//!
//! Never rate-limited: WeChat's retries must get through (a push it does not see answered in 5 s
//! is sent again; a replay is harmless — the results are deduplicated).

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request, Response};
use renji_shared::domain::media::results::{self, Applied};
use renji_shared::domain::subscriptions;
use renji_shared::http::{body_bytes, only_params, query_param};
use renji_shared::ratelimit::{serve, Route};
use renji_shared::{App, Error};
use serde_json::Value;
use time::OffsetDateTime;

pub const ROUTES: &[Route] = &[
    Route::unlimited("GET /v1/wechat/events"),
    // Signed in its query string (`timestamp`, `nonce`, `msg_signature`, …).
    Route::push("POST /v1/wechat/events"),
];

/// How far a push's `timestamp` may be from now (either way): WeChat's own docs set none; its
/// retries come within seconds.
pub const WINDOW_SECS: i64 = 300;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(app, ROUTES, req, |req| route(app, req)).await
}

fn required(req: &Request, name: &str) -> Result<String, Error> {
    query_param(req, name)
        .filter(|v| !v.is_empty() && v.len() <= 512)
        .ok_or_else(|| Error::invalid(name, "is required"))
}

fn text(status: StatusCode, body: String) -> Result<Response<Body>, Error> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::Text(body))
        .map_err(|e| Error::Internal(e.to_string()))
}

async fn route(app: &App, req: Request) -> Result<Response<Body>, Error> {
    match renji_shared::http::route_key(&req).unwrap_or_default() {
        "GET /v1/wechat/events" => handshake(app, &req).await,
        "POST /v1/wechat/events" => push(app, &req).await,
        _ => Err(Error::NotFound("route")),
    }
}

/// The query parameters WeChat sends (an unknown one is 422, as on every route).
const HANDSHAKE_PARAMS: &[&str] = &["signature", "timestamp", "nonce", "echostr"];
const PUSH_PARAMS: &[&str] = &[
    "signature",
    "timestamp",
    "nonce",
    "openid",
    "encrypt_type",
    "msg_signature",
];

async fn handshake(app: &App, req: &Request) -> Result<Response<Body>, Error> {
    only_params(req, HANDSHAKE_PARAMS)?;
    let signature = required(req, "signature")?;
    let timestamp = required(req, "timestamp")?;
    let nonce = required(req, "nonce")?;
    let echostr = required(req, "echostr")?;
    let keys = app.push_keys().await?;
    if !keys.verify_signature(&signature, &timestamp, &nonce) {
        return Err(Error::Unauthorized("the signature does not match"));
    }
    text(StatusCode::OK, echostr)
}

/// A safe-mode push: verified, decrypted, dispatched.
async fn push(app: &App, req: &Request) -> Result<Response<Body>, Error> {
    let now = OffsetDateTime::now_utc();
    only_params(req, PUSH_PARAMS)?;
    if query_param(req, "encrypt_type").as_deref() != Some("aes") {
        return Err(Error::BadRequest {
            code: "safe_mode_only",
            message: "only safe-mode (encrypt_type=aes) pushes are accepted".into(),
        });
    }
    let timestamp = required(req, "timestamp")?;
    let nonce = required(req, "nonce")?;
    let msg_signature = required(req, "msg_signature")?;
    let at: i64 = timestamp
        .parse()
        .map_err(|_| Error::invalid("timestamp", "is not a number"))?;
    if (now.unix_timestamp() - at).abs() > WINDOW_SECS {
        return Err(Error::Unauthorized("the timestamp is outside the window"));
    }
    let body: Value = serde_json::from_slice(body_bytes(req, app.config.max_body_bytes)?)
        .map_err(|_| Error::invalid("body", "is not JSON"))?;
    let encrypt = body
        .get("Encrypt")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| Error::invalid("Encrypt", "is required"))?;
    let keys = app.push_keys().await?;
    if !keys.verify_msg_signature(&msg_signature, &timestamp, &nonce, encrypt) {
        tracing::warn!("message push with a bad msg_signature");
        return Err(Error::Unauthorized("the msg_signature does not match"));
    }
    let appid = app
        .config
        .wechat
        .as_ref()
        .map(|w| w.appid.as_str())
        .ok_or_else(|| Error::Config("WECHAT_APPID is not set for this function".into()))?;
    let plain = keys.decrypt(encrypt, appid).map_err(|e| {
        tracing::warn!(error = ?e, "message push not decrypted");
        Error::BadRequest {
            code: "undecryptable",
            message: "the Encrypt envelope does not decrypt for this app".into(),
        }
    })?;
    let message: Value = serde_json::from_slice(&plain).map_err(|_| Error::BadRequest {
        code: "undecryptable",
        message: "the decrypted message is not JSON".into(),
    })?;
    match message
        .get("Event")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "wxa_media_check" => {
            let result = results::parse_push(&message)?;
            let applied = results::apply_push(app, &result, now).await?;
            if applied == Applied::Duplicate {
                tracing::info!(trace_id = %result.trace_id, "image check pushed again: ignored");
            }
        }
        "subscribe_msg_popup_event" => {
            // The member is the push's FromUserName (the query's openid says the same).
            let openid = message
                .get("FromUserName")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| query_param(req, "openid"))
                .filter(|o| !o.is_empty() && o.len() <= 128)
                .ok_or_else(|| Error::invalid("FromUserName", "is required"))?;
            subscriptions::on_popup(app, &openid, &message).await?;
        }
        other => tracing::debug!(event = other, "message push ignored"),
    }
    text(StatusCode::OK, "success".into())
}
