//! Per-client rate limits, on both stores: over HTTP against the local server (which passes the
//! connection's peer address as `sourceIp`), and in-process over a store whose limiter writes
//! fail.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use renji_local::functions::FUNCTIONS;
use renji_shared::config::Config;
use renji_shared::domain::members;
use renji_shared::ids::UserId;
use renji_shared::ratelimit::{Class, Limit};
use renji_shared::store::{keys, DynStore, Item, Key, Page, Query, Store, StoreError, Write};
use renji_shared::wechat::WechatIdentity;
use renji_shared::App;
use renji_tests::{gateway_request, on_both_stores, Api, Backend, LocalServer, Reply, TestStore};
use serde_json::{json, Value};

const DAY: i64 = 86_400;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Waits out the last seconds of a day-long window, so a scenario's counts all fall in one.
async fn fresh_window() {
    let left = DAY - now().rem_euclid(DAY);
    if left < 30 {
        tokio::time::sleep(Duration::from_secs(left.unsigned_abs() + 1)).await;
    }
}

fn window_start() -> i64 {
    now() - now().rem_euclid(DAY)
}

/// Asserts a 429 whose Retry-After is the rest of the (day-long) window.
fn assert_limited(reply: &Reply, what: &str) {
    assert_eq!(
        (reply.status, reply.error_code()),
        (429, "too_many_requests"),
        "{what}: {reply:?}"
    );
    let retry: i64 = reply
        .retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .parse()
        .unwrap();
    let expected = DAY - now().rem_euclid(DAY);
    assert!((1..=DAY).contains(&retry), "{what}: {retry}");
    assert!(
        (retry - expected).abs() <= 5,
        "{what}: {retry} vs {expected}"
    );
}

async fn counter(server: &LocalServer, class: Class, subject: &str) -> Option<i64> {
    server
        .app()
        .store
        .get(&keys::rate_counter(class.name(), subject, window_start()))
        .await
        .unwrap()
        .map(|c| c["n"].as_i64().unwrap())
}

async fn login(api: &Api, name: &str) -> (String, String) {
    let (token, body) = api.login(name).await;
    (token, body["user"]["id"].as_str().unwrap().to_owned())
}

async fn patch_me(api: &Api, token: &str, nickname: &str) -> Reply {
    api.call(
        "PATCH",
        "/v1/me",
        Some(token),
        Some(json!({ "nickname": nickname })),
    )
    .await
}

async fn a_member_over_the_limit_gets_429_and_writes_nothing(backend: Backend) {
    fresh_window().await;
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "write=3/86400")]).await;
    let api = &server.api;
    let (alice, alice_id) = login(api, "alice").await;
    let (bob, bob_id) = login(api, "bob").await;
    for n in 1..=3 {
        let reply = patch_me(api, &alice, &format!("Alice{n}")).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(counter(&server, Class::Write, &alice_id).await, Some(3));
    let before = api.call("GET", "/v1/me", Some(&alice), None).await;
    assert_eq!(before.body["nickname"], json!("Alice3"));

    let over = patch_me(api, &alice, "Alice4").await;
    assert_limited(&over, "fourth write");
    // Another write route of the class shares the budget.
    let follow = api
        .call(
            "PUT",
            &format!("/v1/me/following/{bob_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_limited(&follow, "follow");
    // Nothing written: the profile, the follow and the counter are as they were.
    assert_eq!(
        api.call("GET", "/v1/me", Some(&alice), None).await.body,
        before.body
    );
    assert_eq!(
        api.call("GET", &format!("/v1/users/{bob_id}"), None, None)
            .await
            .body["followers_count"],
        json!(0)
    );
    assert_eq!(counter(&server, Class::Write, &alice_id).await, Some(3));

    // Another member has their own budget; reads are not limited.
    assert_eq!(patch_me(api, &bob, "Bob").await.status, 200);
    assert_eq!(counter(&server, Class::Write, &bob_id).await, Some(1));
    assert_eq!(
        api.call("GET", "/v1/me", Some(&alice), None).await.status,
        200
    );
    // A request without a valid token is refused (before any I/O) and counted against no one.
    assert_eq!(patch_me(api, "not-a-token", "X").await.status, 401);
    assert_eq!(counter(&server, Class::Write, &alice_id).await, Some(3));
}

/// An API client whose connections come from `ip` (any 127.0.0.0/8 address reaches loopback).
fn client_from(base: &str, ip: &str) -> Api {
    let ip: IpAddr = ip.parse().unwrap();
    Api::with_client(
        base.to_owned(),
        reqwest::Client::builder()
            .local_address(ip)
            .build()
            .unwrap(),
    )
}

async fn anonymous_callers_count_by_source_ip(backend: Backend) {
    fresh_window().await;
    let server = LocalServer::start_with(
        backend,
        &[("RENJI_RATE_LIMITS", "login=3/86400,browse=2/86400")],
    )
    .await;
    let api = &server.api;
    let (token, _) = login(api, "carol").await;
    for _ in 0..2 {
        let reply = api.call("GET", "/v1/listings", None, None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_limited(
        &api.call("GET", "/v1/listings?kind=service", None, None)
            .await,
        "third browse",
    );
    assert_eq!(
        counter(&server, Class::Browse, "ip:127.0.0.1").await,
        Some(2)
    );
    // Another address is unaffected, and so is a signed-in member on the same address.
    let other = client_from(&server.api.base, "127.0.0.2");
    assert_eq!(
        other.call("GET", "/v1/listings", None, None).await.status,
        200
    );
    assert_eq!(
        counter(&server, Class::Browse, "ip:127.0.0.2").await,
        Some(1)
    );
    assert_eq!(
        api.call("GET", "/v1/listings", Some(&token), None)
            .await
            .status,
        200
    );
    // Single-item reads are not limited.
    let me = api.call("GET", "/v1/me", Some(&token), None).await;
    let id = me.body["id"].as_str().unwrap();
    assert_eq!(
        api.call("GET", &format!("/v1/users/{id}"), None, None)
            .await
            .status,
        200
    );

    // Logins count by address too (carol's was the first of three).
    login(api, "dave").await;
    login(api, "erin").await;
    let refused = api
        .call(
            "POST",
            "/v1/auth/wechat",
            None,
            Some(json!({"code": "sandbox:frank"})),
        )
        .await;
    assert_limited(&refused, "fourth login");
    assert_eq!(
        counter(&server, Class::Login, "ip:127.0.0.1").await,
        Some(3)
    );
    login(&other, "frank").await;
}

async fn off_disables_limits(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let api = &server.api;
    let (token, id) = login(api, "gina").await;
    for n in 0..8 {
        assert_eq!(patch_me(api, &token, &format!("G{n}")).await.status, 200);
        assert_eq!(
            api.call("GET", "/v1/listings", None, None).await.status,
            200
        );
    }
    assert_eq!(counter(&server, Class::Write, &id).await, None);
    assert_eq!(counter(&server, Class::Browse, "ip:127.0.0.1").await, None);

    // One class off, the others on.
    fresh_window().await;
    let server = LocalServer::start_with(
        backend,
        &[("RENJI_RATE_LIMITS", "browse=off,write=1/86400")],
    )
    .await;
    let api = &server.api;
    let (token, _) = login(api, "hank").await;
    for _ in 0..5 {
        assert_eq!(
            api.call("GET", "/v1/listings", None, None).await.status,
            200
        );
    }
    assert_eq!(patch_me(api, &token, "H1").await.status, 200);
    assert_limited(&patch_me(api, &token, "H2").await, "second write");
}

/// A store whose rate-limit counters fail (every other item works).
struct FailingCounters {
    inner: DynStore,
    failure: Failure,
}

#[derive(Clone, Copy, Debug)]
enum Failure {
    Unavailable,
    Throttled,
    /// Answers after 3 s: longer than the limiter waits.
    Slow,
}

#[async_trait]
impl Store for FailingCounters {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.inner.get_many(keys).await
    }
    async fn write(&self, write: Write) -> Result<Option<Item>, StoreError> {
        if write.key().is_some_and(|k| k.pk.starts_with("RATE#")) {
            match self.failure {
                Failure::Unavailable => return Err(StoreError::Unavailable("down".into())),
                Failure::Throttled => return Err(StoreError::Throttled),
                Failure::Slow => tokio::time::sleep(Duration::from_secs(3)).await,
            }
        }
        self.inner.write(write).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.inner.transact(writes).await
    }
    async fn transact_with_token(&self, token: &str, writes: Vec<Write>) -> Result<(), StoreError> {
        self.inner.transact_with_token(token, writes).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }
}

/// An API Gateway request for `route` (its path the route's, no parameters needed).
fn request(route: &str, token: Option<&str>, body: Option<Value>) -> lambda_http::Request {
    gateway_request(route, "", token, body, &[])
}

async fn a_failing_limiter_lets_requests_through(backend: Backend) {
    let test_store = TestStore::new(backend).await;
    for failure in [Failure::Unavailable, Failure::Throttled, Failure::Slow] {
        let store: DynStore = Arc::new(FailingCounters {
            inner: test_store.store.clone(),
            failure,
        });
        let config = Config::from_lookup(|name| match name {
            "RENJI_SESSION_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            "RENJI_RATE_LIMITS" => Some("write=1/86400,browse=1/86400".into()),
            _ => None,
        })
        .unwrap();
        let mut app = App::new(config, store.clone()).unwrap();
        // A nickname is checked with WeChat's content security first: a stand-in that passes it.
        app.set_wechat_api(Arc::new(renji_tests::FakeWechat::default()));
        let identity = WechatIdentity {
            openid: format!("o-{failure:?}"),
            unionid: None,
        };
        let (member, _) = members::find_or_create(&store, &identity, UserId::generate(), vec![])
            .await
            .unwrap();
        let (token, _) = renji_shared::session::start(
            &store,
            &app.tokens().await.unwrap(),
            &member.id,
            3600,
            &Default::default(),
        )
        .await
        .unwrap();
        for n in 0..3 {
            let nickname = format!("N{n}");
            let started = Instant::now();
            let reply = renji_local::functions::invoke(
                "UsersFunction",
                &app,
                request(
                    "PATCH /v1/me",
                    Some(&token),
                    Some(json!({ "nickname": nickname })),
                ),
            )
            .await
            .unwrap();
            assert_eq!(reply.status(), 200, "{failure:?}: {reply:?}");
            assert!(started.elapsed() < Duration::from_secs(2), "{failure:?}");
            let stored = members::get(&store, &member.id).await.unwrap().unwrap();
            assert_eq!(
                stored.private_view(&Default::default())["nickname"],
                json!(nickname)
            );
            let browse = renji_local::functions::invoke(
                "ListingsFunction",
                &app,
                request("GET /v1/listings", None, None),
            )
            .await
            .unwrap();
            assert_eq!(browse.status(), 200, "{failure:?}: {browse:?}");
        }
    }
}

on_both_stores!(
    a_member_over_the_limit_gets_429_and_writes_nothing,
    anonymous_callers_count_by_source_ip,
    off_disables_limits,
    a_failing_limiter_lets_requests_through,
);

/// Every member write is limited (per member), as are login and the anonymous lists; GETs of
/// single items, a member's own lists and the payment providers' notifications are not.
#[test]
fn every_member_write_and_every_anonymous_list_is_limited() {
    for (function, routes) in FUNCTIONS {
        for route in routes.iter() {
            let (method, path) = route.key.split_once(' ').unwrap();
            let expected = match route.key {
                "POST /v1/auth/wechat" | "POST /admin/v1/auth/wecom" => Limit::Anyone(Class::Login),
                // Staff routes: only signed-in staff get past the edge, each call audited.
                _ if path.starts_with("/admin/v1/") => Limit::Unlimited,
                "POST /v1/me/verification" => Limit::Member(Class::Verify),
                "POST /v1/listings/{id}/shares" => Limit::Member(Class::Share),
                "GET /v1/listings" | "GET /v1/users/{id}/listings" => Limit::Anyone(Class::Browse),
                "GET /v1/users/{id}/followers" | "GET /v1/users/{id}/following" => {
                    Limit::Anyone(Class::Browse)
                }
                "GET /v1/listings/{id}/reviews" | "GET /v1/users/{id}/reviews" => {
                    Limit::Anyone(Class::Browse)
                }
                // The members' rights routes are all limited (issue #10), their reads as browsing.
                "GET /v1/me/sessions" | "GET /v1/me/consents" | "GET /v1/me/export" => {
                    Limit::Member(Class::Browse)
                }
                // The member's subscribe-message grants, read as the rights routes are.
                "GET /v1/me/subscriptions" => Limit::Member(Class::Browse),
                // The member's own orders, as "/v1/me/…" lists are.
                "GET /v1/orders" => Limit::Unlimited,
                // The member's own tickets, likewise.
                "GET /v1/tickets" => Limit::Unlimited,
                // The caller's own IM signature, read as its own profile is.
                "GET /v1/im/usersig" => Limit::Unlimited,
                // The providers' notifications (no member sends them): a retry must get through.
                "POST /v1/payments/wechat/notify" | "POST /v1/payments/alipay/notify" => {
                    Limit::Unlimited
                }
                // WeChat's message push and its handshake, likewise.
                "GET /v1/wechat/events" | "POST /v1/wechat/events" => Limit::Unlimited,
                _ if method != "GET" => Limit::Member(Class::Write),
                _ if path.starts_with("/v1/me") || path.ends_with('}') => Limit::Unlimited,
                other => panic!("{function}: {other} has no expected limit"),
            };
            assert_eq!(route.limit, expected, "{function}: {}", route.key);
        }
    }
}

/// OpenAPI documents 429 with a Retry-After header on every limited route.
#[test]
fn openapi_documents_429_with_retry_after_on_every_limited_route() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // A `$ref` to `#/components/<kind>/<name>`, or the value itself.
    let resolve = |v: &serde_yaml::Value| -> serde_yaml::Value {
        match v.get("$ref").and_then(|r| r.as_str()) {
            Some(r) => {
                let mut parts = r.trim_start_matches("#/").split('/');
                let (_, kind, name) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
                spec["components"][kind][name].clone()
            }
            None => v.clone(),
        }
    };
    for (_, routes) in FUNCTIONS {
        for route in routes.iter().filter(|r| r.limit != Limit::Unlimited) {
            let (method, path) = route.key.split_once(' ').unwrap();
            let responses = &spec["paths"][path][method.to_lowercase()]["responses"];
            let response = resolve(&responses["429"]);
            let header = resolve(&response["headers"]["Retry-After"]);
            assert!(
                header["required"].as_bool() == Some(true),
                "{}: no 429 with Retry-After",
                route.key
            );
        }
    }
}
