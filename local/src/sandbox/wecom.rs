//! A stand-in for WeCom's (企业微信) directory API, for staff sign-in on the local server.
//!
//! - `staff:<name>:<role>` signs in as userid `<name>` in the department of `<role>`
//!   ([`department_of`]: support 101, moderator 102, admin 103); the local server's default
//!   `RENJI_STAFF_ROLES` maps those departments to those roles, so `staff:alice:admin` is an
//!   admin. `staff:<name>:none` is a company member in department 199, which no role names
//!   (403 `not_staff`).
//! - `outsider:<name>` is someone outside the company (WeCom answers an `openid`).
//! - Any other code is WeCom's 40029 (invalid code).
//!
//! Access tokens are checked as WeCom does (42001 for one it no longer knows);
//! `POST /sandbox/expire-tokens` forgets every token issued, to test the client's refetch.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http_server::{self, HttpRequest, HttpResponse};

pub const CORP_ID: &str = "ww-sandbox-corp";
pub const SECRET: &str = "wecom-sandbox-secret";
/// The local default of `RENJI_STAFF_ROLES`.
pub const ROLES: &str = "dept:101=support,dept:102=moderator,dept:103=admin";

/// The department a sandbox code's role puts its person in.
pub fn department_of(role: &str) -> Option<u64> {
    match role {
        "support" => Some(101),
        "moderator" => Some(102),
        "admin" => Some(103),
        "none" => Some(199),
        _ => None,
    }
}

#[derive(Default)]
struct State {
    tokens: HashSet<String>,
    /// Each userid's departments, as the last sign-in's code gave them.
    departments: HashMap<String, Vec<u64>>,
    /// How many tokens were issued (tests see the refetch).
    issued: u64,
}

fn answer(req: &HttpRequest, state: &Mutex<State>) -> HttpResponse {
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    let Ok(mut state) = state.lock() else {
        return http_server::json(500, &json!({}));
    };
    let path = req.uri().path();
    if path == "/sandbox/expire-tokens" {
        state.tokens.clear();
        return http_server::json(200, &json!({"issued": state.issued}));
    }
    if path == "/cgi-bin/gettoken" {
        if get("corpid") != CORP_ID {
            return http_server::json(200, &json!({"errcode": 40013, "errmsg": "invalid corpid"}));
        }
        if get("corpsecret") != SECRET {
            return http_server::json(
                200,
                &json!({"errcode": 40001, "errmsg": "invalid credential"}),
            );
        }
        let token = renji_shared::ids::random_token();
        state.tokens.insert(token.clone());
        state.issued += 1;
        return http_server::json(
            200,
            &json!({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}),
        );
    }
    if !state.tokens.contains(get("access_token")) {
        return http_server::json(
            200,
            &json!({"errcode": 42001, "errmsg": "access_token expired"}),
        );
    }
    match path {
        "/cgi-bin/auth/getuserinfo" => {
            let code = get("code");
            if let Some(name) = code.strip_prefix("outsider:") {
                return http_server::json(
                    200,
                    &json!({"errcode": 0, "errmsg": "ok", "openid": format!("o-{name}")}),
                );
            }
            let person = code
                .strip_prefix("staff:")
                .and_then(|rest| rest.rsplit_once(':'))
                .and_then(|(name, role)| Some((name, department_of(role)?)))
                .filter(|(name, _)| !name.is_empty());
            match person {
                Some((name, department)) => {
                    state.departments.insert(name.to_owned(), vec![department]);
                    http_server::json(200, &json!({"errcode": 0, "errmsg": "ok", "userid": name}))
                }
                None => {
                    http_server::json(200, &json!({"errcode": 40029, "errmsg": "invalid code"}))
                }
            }
        }
        "/cgi-bin/user/get" => match state.departments.get(get("userid")) {
            Some(departments) => http_server::json(
                200,
                &json!({"errcode": 0, "errmsg": "ok", "userid": get("userid"), "department": departments}),
            ),
            None => http_server::json(
                200,
                &json!({"errcode": 60111, "errmsg": "userid not found"}),
            ),
        },
        _ => http_server::json(404, &json!({"errcode": 40066, "errmsg": "invalid url"})),
    }
}

/// Starts the stand-in on `listener`; returns its base URL and task.
pub fn spawn(listener: TcpListener) -> std::io::Result<(String, JoinHandle<()>)> {
    let base = format!("http://{}", listener.local_addr()?);
    let state = Arc::new(Mutex::new(State::default()));
    let task = http_server::spawn(
        listener,
        Arc::new(move |req| {
            let response = answer(&req, &state);
            Box::pin(async move { response })
        }),
    );
    Ok((base, task))
}
