//! Tencent IM in the sandbox: the application the local server signs UserSigs for when
//! `TENCENT_IM_SDKAPPID` and `TENCENT_IM_SECRET` are not set outside, and a stand-in for IM's
//! REST API's account deletion (`POST /v4/im_open_login_svc/account_delete`), which
//! `TENCENT_IM_API_BASE` points at locally.
//!
//! The stand-in checks the call's form as IM documents it (`sdkappid` the sandbox application,
//! `identifier` the administrator, a `usersig`, `random` a 32-bit unsigned number,
//! `contenttype=json`, a `DeleteItem` body of 1 to 100 accounts), then deletes each account:
//! result code 0, or 70107 (`Err_TLS_PT_Open_Login_Account_Not_Exist`) for one deleted before.
//! A malformed call is IM's request error 70402 (parameter invalid), answered with HTTP 200 as IM
//! does. `GET /sandbox/im/deleted` lists the accounts deleted (tests see them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http_server::{self, HttpRequest, HttpResponse};

/// The sandbox application: Tencent's documentation's sample id, no real application.
pub const SDKAPPID: &str = "1400000000";

/// The variables that, set outside (process environment or a test's configuration), replace
/// the sandbox application as a whole: a real application id with the sandbox secret would sign
/// UserSigs IM refuses.
pub const VARIABLES: &[&str] = &[
    "TENCENT_IM_SDKAPPID",
    "TENCENT_IM_SECRET",
    "TENCENT_IM_SECRET_ARN",
];

/// The sandbox IM secret, derived from the local session secret so it persists exactly as that
/// does (in the data folder): 64 hex digits, the form of the console's keys.
pub fn secret(session_secret: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, session_secret.as_bytes());
    ring::hmac::sign(&key, b"renji-local-tencent-im-secret-v1")
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The path of the deleted accounts' list.
pub const DELETED_PATH: &str = "/sandbox/im/deleted";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    #[serde(rename = "DeleteItem")]
    delete_item: Vec<DeleteItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteItem {
    #[serde(rename = "UserID")]
    user_id: String,
}

fn request_error(code: i64, info: &str) -> HttpResponse {
    http_server::json(
        200,
        &json!({"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": info}),
    )
}

async fn answer(req: HttpRequest, deleted: &Mutex<Vec<String>>) -> HttpResponse {
    let path = req.uri().path().to_owned();
    if req.method() == hyper::Method::GET && path == DELETED_PATH {
        let list = deleted.lock().map(|d| d.clone()).unwrap_or_default();
        return http_server::json(200, &json!({"deleted": list}));
    }
    if req.method() != hyper::Method::POST || path != "/v4/im_open_login_svc/account_delete" {
        return http_server::json(404, &json!({"error": "no such endpoint"}));
    }
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    if get("sdkappid") != SDKAPPID {
        return request_error(70402, "sdkappid is not the sandbox application");
    }
    if get("identifier").is_empty() || get("usersig").is_empty() {
        return request_error(70402, "identifier and usersig are required");
    }
    if get("random").parse::<u32>().is_err() || get("contenttype") != "json" {
        return request_error(
            70402,
            "random is a 32-bit unsigned number; contenttype json",
        );
    }
    let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return request_error(70402, "body too large"),
    };
    let request = match serde_json::from_slice::<DeleteRequest>(&body) {
        Ok(r) if (1..=100).contains(&r.delete_item.len()) => r,
        _ => return request_error(70402, "DeleteItem holds 1 to 100 accounts"),
    };
    let Ok(mut deleted) = deleted.lock() else {
        return http_server::json(500, &json!({}));
    };
    let results: Vec<_> = request
        .delete_item
        .into_iter()
        .map(|item| {
            if deleted.contains(&item.user_id) {
                json!({"ResultCode": 70107, "ResultInfo": "Err_TLS_PT_Open_Login_Account_Not_Exist", "UserID": item.user_id})
            } else {
                deleted.push(item.user_id.clone());
                json!({"ResultCode": 0, "ResultInfo": "", "UserID": item.user_id})
            }
        })
        .collect();
    http_server::json(
        200,
        &json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "ResultItem": results}),
    )
}

/// Starts the stand-in on `listener`; returns its base URL (`TENCENT_IM_API_BASE`) and task.
pub fn spawn(listener: TcpListener) -> std::io::Result<(String, JoinHandle<()>)> {
    let base = format!("http://{}", listener.local_addr()?);
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let task = http_server::spawn(
        listener,
        Arc::new(move |req| {
            let deleted = Arc::clone(&deleted);
            Box::pin(async move { answer(req, &deleted).await })
        }),
    );
    Ok((base, task))
}
