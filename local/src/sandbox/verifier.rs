//! A stand-in for the identity verifier (the contract is in `renji_shared::verifier`).
//!
//! - The bearer token must be [`TOKEN`] (401 otherwise); the body must be the contract's JSON.
//! - A name starting with `拒绝` is rejected ("name and number do not match").
//! - A name starting with `待定` is pending on the first call of an attempt id and verified on
//!   the next, so the verification job's next ask settles it.
//! - A name starting with `故障` gets HTTP 503, every time (the attempt stays pending).
//! - Any other name is verified.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http_server::{self, HttpRequest, HttpResponse};

pub const TOKEN: &str = "verifier-sandbox-token";
pub const PATH: &str = "/v1/verify";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // kind and number are read to check the shape, not used
struct Check {
    request_id: String,
    kind: String,
    name: String,
    number: String,
}

async fn answer(req: HttpRequest, asked: &Mutex<HashSet<String>>) -> HttpResponse {
    if req.method() != hyper::Method::POST || req.uri().path() != PATH {
        return http_server::json(404, &json!({"error": "no such endpoint"}));
    }
    let authorized = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {TOKEN}").as_str());
    if !authorized {
        return http_server::json(401, &json!({"error": "bad token"}));
    }
    let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return http_server::json(413, &json!({"error": "too large"})),
    };
    let Ok(check) = serde_json::from_slice::<Check>(&body) else {
        return http_server::json(400, &json!({"error": "bad request"}));
    };
    if check.name.starts_with("故障") {
        return http_server::json(503, &json!({"error": "sandbox outage"}));
    }
    if check.name.starts_with("拒绝") {
        return http_server::json(
            200,
            &json!({"result": "rejected", "reason": "name and number do not match"}),
        );
    }
    if check.name.starts_with("待定") {
        let first = asked
            .lock()
            .map(|mut seen| seen.insert(check.request_id.clone()))
            .unwrap_or(false);
        if first {
            return http_server::json(200, &json!({"result": "pending"}));
        }
    }
    http_server::json(200, &json!({"result": "verified"}))
}

/// Starts the stand-in on `listener`; returns the verifier URL and its task.
pub fn spawn(listener: TcpListener) -> std::io::Result<(String, JoinHandle<()>)> {
    let url = format!("http://{}{PATH}", listener.local_addr()?);
    let asked = Arc::new(Mutex::new(HashSet::new()));
    let task = http_server::spawn(
        listener,
        Arc::new(move |req| {
            let asked = Arc::clone(&asked);
            Box::pin(async move { answer(req, &asked).await })
        }),
    );
    Ok((url, task))
}
