//! A stand-in for WeChat's `jscode2session`.
//!
//! - `sandbox:<name>` logs in as a test member whose openid is derived from `<name>`, so tests
//!   pick distinct, stable members; `sandbox:union:<name>` also returns a unionid.
//! - `error:<errcode>` answers that WeChat error (e.g. `error:40029`; `error:40013` and
//!   `error:40125` are the invalid AppID and AppSecret answers), `error:http502` a 502,
//!   `error:oversized` a 200 whose body is larger than the client reads (256 KiB).
//! - Any other code (a real `wx.login` code from the mini-program) maps to one stable openid, so
//!   a developer's client logs in as the same member every time.

use std::sync::Arc;

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

fn answer(req: &HttpRequest) -> HttpResponse {
    if req.uri().path() != "/sns/jscode2session" {
        return http_server::json(404, &json!({"errcode": 40066, "errmsg": "invalid url"}));
    }
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

/// Starts the stand-in on `listener`; returns its base URL and task.
pub fn spawn(listener: TcpListener) -> std::io::Result<(String, JoinHandle<()>)> {
    let base = format!("http://{}", listener.local_addr()?);
    let task = http_server::spawn(
        listener,
        Arc::new(|req| {
            let response = answer(&req);
            Box::pin(async move { response })
        }),
    );
    Ok((base, task))
}
