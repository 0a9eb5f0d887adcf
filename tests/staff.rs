//! The staff console API (`admin` function) over HTTP on both stores: WeCom sign-in through the
//! local stand-in, staff sessions and roles, the audit trail, take-down and restore, dispute
//! decisions, and bad input on every route.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use renji_shared::config::Config;
use renji_shared::store::{DynStore, Item, Key, Page, Store, StoreError};
use renji_shared::App;

use renji_shared::domain::orders::{self, act, Action, Role};
use renji_shared::ids::{OrderId, StaffId};
use renji_shared::ratelimit::Access;
use renji_shared::staff::StaffRole;
use renji_shared::store::{keys, Query, SortKey, Write};
use renji_tests::{
    gateway_request, on_both_stores, service, Api, Backend, LocalServer, Member, Reply,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Signs in through the WeCom stand-in with `code`.
async fn sign_in_reply(api: &Api, code: &str) -> Reply {
    api.call(
        "POST",
        "/admin/v1/auth/wecom",
        None,
        Some(json!({ "code": code })),
    )
    .await
}

/// A staff token for `name` in `role` (`staff:<name>:<role>`).
async fn staff(api: &Api, name: &str, role: &str) -> String {
    let reply = sign_in_reply(api, &format!("staff:{name}:{role}")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["staff"], json!({"id": name, "role": role}));
    reply.body["token"].as_str().unwrap().to_owned()
}

/// The audit trail as an admin reads it (`query`: `?actor=…`, `?target=…`).
async fn audit(api: &Api, admin: &str, query: &str) -> Vec<Value> {
    let reply = api
        .call("GET", &format!("/admin/v1/audit{query}"), Some(admin), None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["items"].as_array().unwrap().clone()
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every item of every partition the admin function may write, for "nothing written" checks.
async fn snapshot(server: &LocalServer, partitions: &[String]) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for partition in partitions {
        let page = server
            .app()
            .store
            .query(Query::partition(partition.clone()).limit(100))
            .await
            .unwrap();
        for item in page.items {
            let sk = item.get("sk").cloned().unwrap_or_default();
            all.insert(format!("{partition} {sk}"), Value::Object(item));
        }
    }
    all
}

async fn sign_in_with_each_role_and_refusals(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    for role in ["support", "moderator", "admin"] {
        let name = format!("{role}-staff");
        let reply = sign_in_reply(api, &format!("staff:{name}:{role}")).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let token = reply.body["token"].as_str().unwrap();
        assert!(reply.body["expires_at"].as_str().unwrap().ends_with('Z'));
        let me = api.call("GET", "/admin/v1/me", Some(token), None).await;
        assert_eq!(me.status, 200, "{me:?}");
        assert_eq!(
            (&me.body["id"], &me.body["role"]),
            (&json!(name), &json!(role))
        );
        assert_eq!(me.body["expires_at"], reply.body["expires_at"]);
        // The session lasts RENJI_STAFF_SESSION_SECS (7200 s) from now.
        let expires = OffsetDateTime::parse(
            me.body["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let left = (expires - OffsetDateTime::now_utc()).whole_seconds();
        assert!((7100..=7200).contains(&left), "{left}");
    }
    // An invalid code (WeCom's 40029) is 401; a company member with no role, or someone outside
    // the company, 403 not_staff; none of them gets a session.
    for (code, status, error) in [
        ("not-a-code", 401, "unauthorized"),
        ("staff:x:root", 401, "unauthorized"),
        ("staff:carol:none", 403, "not_staff"),
        ("outsider:dan", 403, "not_staff"),
    ] {
        let reply = sign_in_reply(api, code).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (status, error),
            "{code}"
        );
    }
    for partition in ["carol", "dan", "x"] {
        let page = server
            .app()
            .store
            .query(Query::partition(keys::staff(
                &StaffId::parse(partition).unwrap(),
            )))
            .await
            .unwrap();
        assert!(page.items.is_empty(), "{partition}");
    }
    // An access token WeCom has forgotten (42001) is fetched again, once, and sign-in works.
    let http = reqwest::Client::new();
    let expire = |base: String| {
        let http = http.clone();
        async move {
            let answer: Value = http
                .post(format!("{base}/sandbox/expire-tokens"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["issued"].as_u64().unwrap()
        }
    };
    let before = expire(server.running.wecom_base.clone()).await;
    staff(api, "alice", "admin").await;
    staff(api, "alice", "admin").await;
    let after = expire(server.running.wecom_base.clone()).await;
    assert_eq!(after, before + 1, "one new token, then cached");
}

/// A user's own entry wins over their department's; a userid no entry names is not staff.
async fn the_role_mapping_is_configuration(backend: Backend) {
    let server = LocalServer::start_with(
        backend,
        &[("RENJI_STAFF_ROLES", "user:dave=admin,dept:101=support")],
    )
    .await;
    let api = &server.api;
    let dave = staff_as(api, "staff:dave:support").await;
    assert_eq!(dave, json!({"id": "dave", "role": "admin"}));
    let erin = staff_as(api, "staff:erin:support").await;
    assert_eq!(erin, json!({"id": "erin", "role": "support"}));
    let reply = sign_in_reply(api, "staff:frank:admin").await;
    assert_eq!((reply.status, reply.error_code()), (403, "not_staff"));
}

async fn staff_as(api: &Api, code: &str) -> Value {
    let reply = sign_in_reply(api, code).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["staff"].clone()
}

async fn staff_routes_refuse_without_staff_credentials(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let member = server.member("staff-test-member", true).await;
    let listing = api.create_listing(&member, service("跟拍")).await;
    let l = listing["id"].as_str().unwrap();
    let admin = staff(api, "alice", "admin").await;
    let routes = [
        ("GET", "/admin/v1/me".to_owned(), None),
        ("GET", format!("/admin/v1/members/{}", member.id), None),
        (
            "POST",
            format!("/admin/v1/listings/{l}/takedown"),
            Some(json!({"reason": "x"})),
        ),
        (
            "POST",
            format!("/admin/v1/listings/{l}/restore"),
            Some(json!({"reason": "x"})),
        ),
        (
            "POST",
            "/admin/v1/orders/01JDA7Q3ZK8M4N5P6Q7R8S9T0V/decision".to_owned(),
            Some(json!({"action": "release", "reason": "x"})),
        ),
        ("GET", "/admin/v1/audit".to_owned(), None),
        ("POST", "/admin/v1/auth/logout".to_owned(), None),
    ];
    // Without a token, with a member's token, with a forged or garbled one: 401, before anything.
    let garbled = format!("{}x", &admin[..admin.len() - 1]);
    for token in [None, Some(member.token.as_str()), Some(garbled.as_str())] {
        for (method, path, body) in &routes {
            let reply = api.call(method, path, token, body.clone()).await;
            assert_eq!(
                (reply.status, reply.error_code()),
                (401, "unauthorized"),
                "{method} {path} with {token:?}"
            );
        }
    }
    // A staff token on a member route is no member token.
    for (method, path) in [("GET", "/v1/me"), ("GET", "/v1/me/listings")] {
        let reply = api.call(method, path, Some(&admin), None).await;
        assert_eq!(reply.status, 401, "{path}");
    }
    // Nothing was taken down, and nothing audited but alice's sign-in.
    let own = api
        .call(
            "GET",
            &format!("/v1/listings/{l}"),
            Some(&member.token),
            None,
        )
        .await;
    assert_eq!(own.body["status"], json!("published"));
    let trail = audit(api, &admin, "").await;
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(trail[0]["action"], json!("POST /admin/v1/auth/wecom"));

    // A session whose record has expired is refused, though its token's own expiry is ahead.
    let expiring = staff(api, "erin", "support").await;
    let erin = StaffId::parse("erin").unwrap();
    let sessions = server
        .app()
        .store
        .query(
            Query::partition(keys::staff(&erin)).sort(SortKey::Prefix(keys::SESSION_PREFIX.into())),
        )
        .await
        .unwrap();
    assert_eq!(sessions.items.len(), 1);
    let sk = sessions.items[0]["sk"].as_str().unwrap();
    let sid = sk.strip_prefix(keys::SESSION_PREFIX).unwrap();
    server
        .app()
        .store
        .write(
            Write::update(keys::staff_session(&erin, sid))
                .set("expires_at", OffsetDateTime::now_utc().unix_timestamp() - 1)
                .build(),
        )
        .await
        .unwrap();
    let reply = api.call("GET", "/admin/v1/me", Some(&expiring), None).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    // Sign-out revokes: the token is refused from then on, sign-out included.
    let bob = staff(api, "bob", "moderator").await;
    let out = api
        .call("POST", "/admin/v1/auth/logout", Some(&bob), None)
        .await;
    assert_eq!((out.status, &out.body), (204, &Value::Null));
    for (method, path) in [("GET", "/admin/v1/me"), ("POST", "/admin/v1/auth/logout")] {
        let reply = api.call(method, path, Some(&bob), None).await;
        assert_eq!(reply.status, 401, "{path}");
    }
    // Alice's own session is untouched by bob's sign-out.
    let me = api.call("GET", "/admin/v1/me", Some(&admin), None).await;
    assert_eq!(me.status, 200);

    // The wrong role: 403 forbidden_role, nothing changed, and the refusal audited.
    let support = staff(api, "sam", "support").await;
    let moderator = staff(api, "mia", "moderator").await;
    for (token, who, role, method, path, body) in [
        (
            &support,
            "sam",
            "support",
            "POST",
            format!("/admin/v1/listings/{l}/takedown"),
            Some(json!({"reason": "越权"})),
        ),
        (
            &moderator,
            "mia",
            "moderator",
            "POST",
            "/admin/v1/orders/01JDA7Q3ZK8M4N5P6Q7R8S9T0V/decision".to_owned(),
            Some(json!({"action": "release", "reason": "越权"})),
        ),
        (
            &support,
            "sam",
            "support",
            "GET",
            "/admin/v1/audit".to_owned(),
            None,
        ),
    ] {
        // A query the route refuses does not hide the role's refusal from the trail.
        let query = match method {
            "GET" => "?limit=1&limit=2",
            _ => "?x=1",
        };
        for path in [path.clone(), format!("{path}{query}")] {
            let reply = api.call(method, &path, Some(token), body.clone()).await;
            assert_eq!(
                (reply.status, reply.error_code()),
                (403, "forbidden_role"),
                "{who} {path}"
            );
            let trail = audit(api, &admin, &format!("?actor={who}")).await;
            let last = &trail[0];
            assert_eq!(
                last["action"],
                json!(format!("{method} {}", route_of(&path)))
            );
            assert_eq!(last["role"], json!(role));
            assert_eq!(last["outcome"], json!("forbidden_role"));
        }
        // With no session the answer is 401 whatever the query.
        let path = format!("{path}{query}");
        let reply = api.call(method, &path, None, body.clone()).await;
        assert_eq!(reply.status, 401, "{path}");
    }
    // The right role with a query the route refuses: 422, audited.
    let reply = api
        .call(
            "POST",
            &format!("/admin/v1/listings/{l}/takedown?x=1"),
            Some(&moderator),
            Some(json!({"reason": "带参数"})),
        )
        .await;
    assert_eq!((reply.status, reply.field()), (422, "x"), "{reply:?}");
    let trail = audit(api, &admin, "?actor=mia").await;
    assert_eq!(trail[0]["outcome"], json!("invalid_field"));
    let own = api
        .call(
            "GET",
            &format!("/v1/listings/{l}"),
            Some(&member.token),
            None,
        )
        .await;
    assert_eq!(own.body["status"], json!("published"));
    let refused = audit(api, &admin, &format!("?target=listing:{l}")).await;
    assert_eq!(refused.len(), 3);
    assert!(refused.iter().skip(1).all(|r| r["reason"] == json!("越权")));
}

/// The route key of a concrete path (ids back to `{id}`).
fn route_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| match i {
            4 if !["me", "audit", "auth"].contains(&segments[3]) => "{id}",
            _ => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn take_down_and_restore_show_to_the_owner_and_the_feeds(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let owner = server.member("staff-owner", true).await;
    let mut body = service("婚礼摄影跟拍");
    body["location"] = json!({"lat": 39.9087, "lng": 116.3975});
    let listing = api.create_listing(&owner, body).await;
    let l = listing["id"].as_str().unwrap().to_owned();
    let closed = api.create_listing(&owner, service("化妆造型")).await;
    let c = closed["id"].as_str().unwrap().to_owned();
    let close = api
        .call(
            "PATCH",
            &format!("/v1/listings/{c}"),
            Some(&owner.token),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(close.status, 200);
    let moderator = staff(api, "mia", "moderator").await;
    let admin = staff(api, "alice", "admin").await;
    let feeds = [
        "/v1/listings".to_owned(),
        "/v1/listings?q=摄影".to_owned(),
        "/v1/listings?near=39.9,116.4&radius_km=10".to_owned(),
        format!("/v1/users/{}/listings", owner.id),
    ];
    let in_feeds = |expected: bool| {
        let feeds = feeds.clone();
        let l = l.clone();
        async move {
            for feed in &feeds {
                let reply = api.call("GET", feed, None, None).await;
                assert_eq!(reply.status, 200, "{feed}: {reply:?}");
                assert_eq!(ids(&reply.body).contains(&l), expected, "{feed}");
            }
        }
    };
    let count = || async {
        api.call("GET", &format!("/v1/users/{}", owner.id), None, None)
            .await
            .body["listings_count"]
            .clone()
    };
    in_feeds(true).await;
    assert_eq!(count().await, json!(1));

    let reason = "图片含联系方式，违反发布规则";
    for id in [&l, &c] {
        let down = api
            .call(
                "POST",
                &format!("/admin/v1/listings/{id}/takedown"),
                Some(&moderator),
                Some(json!({ "reason": reason })),
            )
            .await;
        assert_eq!(down.status, 200, "{down:?}");
        assert_eq!(down.body["status"], json!("taken_down"));
        assert_eq!(down.body["takedown_reason"], json!(reason));
        // The owner sees it and why; others see nothing.
        let own = api
            .call(
                "GET",
                &format!("/v1/listings/{id}"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(own.body["status"], json!("taken_down"));
        assert_eq!(own.body["takedown_reason"], json!(reason));
        let public = api
            .call("GET", &format!("/v1/listings/{id}"), None, None)
            .await;
        assert_eq!(public.status, 404);
    }
    in_feeds(false).await;
    assert_eq!(count().await, json!(0));
    // Staff see it, with the reason, in the member look-up.
    let looked = api
        .call(
            "GET",
            &format!("/admin/v1/members/{}", owner.id),
            Some(&moderator),
            None,
        )
        .await;
    assert_eq!(looked.status, 200, "{looked:?}");
    let items = looked.body["listings"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["takedown_reason"] == json!(reason)));

    // Restored: the published one to every feed and the owner's count, the closed one closed;
    // the reason leaves the owner's view.
    for (id, status) in [(&l, "published"), (&c, "closed")] {
        let up = api
            .call(
                "POST",
                &format!("/admin/v1/listings/{id}/restore"),
                Some(&admin),
                Some(json!({"reason": "申诉通过"})),
            )
            .await;
        assert_eq!(up.status, 200, "{up:?}");
        assert_eq!(up.body["status"], json!(status));
        let own = api
            .call(
                "GET",
                &format!("/v1/listings/{id}"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(own.body["status"], json!(status));
        assert_eq!(own.body["takedown_reason"], Value::Null);
        let public = api
            .call("GET", &format!("/v1/listings/{id}"), None, None)
            .await;
        assert_eq!(public.status, 200);
    }
    in_feeds(true).await;
    assert_eq!(count().await, json!(1));
    // A listing that is not taken down cannot be restored; nothing changes.
    let again = api
        .call(
            "POST",
            &format!("/admin/v1/listings/{l}/restore"),
            Some(&admin),
            Some(json!({"reason": "再次"})),
        )
        .await;
    assert_eq!(
        (again.status, again.error_code()),
        (409, "listing_not_taken_down")
    );
    in_feeds(true).await;

    // Every one of those actions is on the trail, newest first, with who, role, what, why and
    // how it ended.
    let trail = audit(api, &admin, &format!("?target=listing:{l}")).await;
    let summary: Vec<(Value, Value, Value, Value, Value)> = trail
        .iter()
        .map(|r| {
            (
                r["staff_id"].clone(),
                r["role"].clone(),
                r["action"].clone(),
                r["reason"].clone(),
                r["outcome"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                json!("alice"),
                json!("admin"),
                json!("POST /admin/v1/listings/{id}/restore"),
                json!("再次"),
                json!("listing_not_taken_down")
            ),
            (
                json!("alice"),
                json!("admin"),
                json!("POST /admin/v1/listings/{id}/restore"),
                json!("申诉通过"),
                json!("ok")
            ),
            (
                json!("mia"),
                json!("moderator"),
                json!("POST /admin/v1/listings/{id}/takedown"),
                json!(reason),
                json!("ok")
            ),
        ]
    );
    assert!(trail
        .iter()
        .all(|r| r["target"] == json!(format!("listing:{l}"))));
    let mia = audit(api, &admin, "?actor=mia").await;
    let actions: Vec<&str> = mia.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "GET /admin/v1/members/{id}",
            "POST /admin/v1/listings/{id}/takedown",
            "POST /admin/v1/listings/{id}/takedown",
            "POST /admin/v1/auth/wecom",
        ]
    );
    assert_eq!(mia[0]["target"], json!(format!("member:{}", owner.id)));
    assert_eq!(mia[3]["target"], json!("staff:mia"));
    // The whole trail pages with cursors, newest first.
    let all = audit(api, &admin, "").await;
    let first = api
        .call("GET", "/admin/v1/audit?limit=2", Some(&admin), None)
        .await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = api
        .call(
            "GET",
            &format!("/admin/v1/audit?limit=2&cursor={cursor}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(second.body["items"][0], all[1]);
    // Reading the trail is itself on it.
    let latest = audit(api, &admin, "?actor=alice").await;
    assert_eq!(latest[0]["action"], json!("GET /admin/v1/audit"));
    assert_eq!(latest[0]["target"], json!("list:audit"));
}

/// A seller's listing, a buyer's order of it paid with WeChat Pay and accepted, then disputed by
/// the buyer (through the domain: the tickets work opens disputes over HTTP).
struct Dispute {
    buyer: Member,
    order: String,
}

async fn disputed_order(server: &LocalServer, seller: &Member, name: &str) -> Dispute {
    let api = &server.api;
    let listing = api.create_listing(seller, service("婚礼跟拍")).await;
    let buyer = server.member(name, false).await;
    let id = server
        .ordered(&buyer, listing["id"].as_str().unwrap())
        .await;
    let started = api
        .call(
            "POST",
            &format!("/v1/orders/{id}/payments"),
            Some(&buyer.token),
            Some(json!({"channel": "wechat"})),
        )
        .await;
    assert_eq!(started.status, 200, "{started:?}");
    let paid: Value = reqwest::Client::new()
        .post(format!("{}/sandbox/pay", server.running.wechatpay_base))
        .json(&json!({"out_trade_no": id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paid["notified"], json!("204"), "{paid}");
    let accepted = api
        .call(
            "POST",
            &format!("/v1/orders/{id}/accept"),
            Some(&seller.token),
            None,
        )
        .await;
    assert_eq!(accepted.body["status"], json!("accepted"), "{accepted:?}");
    let app = server.app();
    let stored = orders::get(&app.store, &OrderId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let disputed = act::apply(
        app,
        &stored,
        Role::Buyer,
        Action::OpenDispute,
        Some("服务未完成".into()),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(disputed.status, orders::OrderStatus::Disputed);
    Dispute { buyer, order: id }
}

/// The order as its buyer sees it, once it is in `status` (WeChat Pay refunds end by
/// notification).
async fn until(api: &Api, buyer: &Member, id: &str, status: &str) -> Value {
    for _ in 0..100 {
        let reply = api
            .call("GET", &format!("/v1/orders/{id}"), Some(&buyer.token), None)
            .await;
        if reply.body["status"] == json!(status) {
            return reply.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("order {id} did not become {status}");
}

async fn disputes_are_decided_by_refund_all_or_part_or_release(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let seller = server.member("dispute-seller", true).await;
    let support = staff(api, "sam", "support").await;
    let admin = staff(api, "alice", "admin").await;
    let decide = |id: String, token: String, body: Value| async move {
        api.call(
            "POST",
            &format!("/admin/v1/orders/{id}/decision"),
            Some(&token),
            Some(body),
        )
        .await
    };

    // All of it: refunding, then refunded when the provider confirms.
    let all = disputed_order(&server, &seller, "dispute-buyer-1").await;
    let reply = decide(
        all.order.clone(),
        support.clone(),
        json!({"action": "refund", "reason": "卖家未到场"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        ["refunding", "refunded"].contains(&reply.body["status"].as_str().unwrap()),
        "{reply:?}"
    );
    let done = until(api, &all.buyer, &all.order, "refunded").await;
    assert_eq!(done["refunded_fen"], json!(288_000));
    let step = done["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .nth(1)
        .unwrap()
        .clone();
    assert_eq!(
        (&step["status"], &step["actor"], &step["reason"]),
        (&json!("refunding"), &json!("staff"), &json!("卖家未到场"))
    );
    // A decided order is no longer disputed: a second decision is 409 and changes nothing.
    let again = decide(
        all.order.clone(),
        admin.clone(),
        json!({"action": "release", "reason": "再判"}),
    )
    .await;
    assert_eq!(
        (again.status, again.error_code()),
        (409, "invalid_order_state")
    );
    assert_eq!(until(api, &all.buyer, &all.order, "refunded").await, done);

    // Part of it: back to the state before the dispute, refunded_fen grown.
    let part = disputed_order(&server, &seller, "dispute-buyer-2").await;
    let reply = decide(
        part.order.clone(),
        admin.clone(),
        json!({"action": "refund", "amount_fen": 100_000, "reason": "部分未完成"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let back = until(api, &part.buyer, &part.order, "accepted").await;
    assert_eq!(back["refunded_fen"], json!(100_000));
    assert_eq!(back["refunds"][0]["amount_fen"], json!(100_000));

    // Release: back to the state before the dispute, no money moved.
    let release = disputed_order(&server, &seller, "dispute-buyer-3").await;
    let reply = decide(
        release.order.clone(),
        support.clone(),
        json!({"action": "release", "reason": "服务已完成"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (&reply.body["status"], &reply.body["refunded_fen"]),
        (&json!("accepted"), &json!(0))
    );

    // Each decision is on the order's trail.
    for (order, reason) in [
        (&all.order, "再判"),
        (&part.order, "部分未完成"),
        (&release.order, "服务已完成"),
    ] {
        let trail = audit(api, &admin, &format!("?target=order:{order}")).await;
        assert_eq!(
            trail[0]["action"],
            json!("POST /admin/v1/orders/{id}/decision")
        );
        assert_eq!(trail[0]["reason"], json!(reason));
    }
}

async fn bad_input_on_every_route_is_4xx_and_changes_nothing(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let seller = server.member("bad-input-seller", true).await;
    let dispute = disputed_order(&server, &seller, "bad-input-buyer").await;
    let listing = api.create_listing(&seller, service("妆造")).await;
    let l = listing["id"].as_str().unwrap().to_owned();
    let o = dispute.order.clone();
    let admin = staff(api, "alice", "admin").await;
    let order_id = OrderId::parse(&o).unwrap();
    let listing_id = renji_shared::ids::ListingId::parse(&l).unwrap();
    let changeable = vec![
        keys::order(&order_id).pk,
        keys::listing(&listing_id).pk,
        keys::staff(&StaffId::parse("alice").unwrap()),
        keys::member(&renji_shared::ids::UserId::parse(&seller.id).unwrap()).pk,
    ];
    let before = snapshot(&server, &changeable).await;

    let takedown = format!("/admin/v1/listings/{l}/takedown");
    let restore = format!("/admin/v1/listings/{l}/restore");
    let decision = format!("/admin/v1/orders/{o}/decision");
    let suspend = format!("/admin/v1/members/{}/suspend", seller.id);
    let member_restore = format!("/admin/v1/members/{}/restore", seller.id);
    let settled_refund = format!("/admin/v1/orders/{o}/refund");
    let long = "长".repeat(201);
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        // Sign-in.
        (
            "POST",
            "/admin/v1/auth/wecom".into(),
            None,
            400,
            "missing_body",
        ),
        (
            "POST",
            "/admin/v1/auth/wecom".into(),
            Some("{".into()),
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/admin/v1/auth/wecom".into(),
            Some(r#"{"code":5}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            "/admin/v1/auth/wecom".into(),
            Some(r#"{"code":" "}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            "/admin/v1/auth/wecom".into(),
            Some(r#"{"code":"staff:a:admin","x":1}"#.into()),
            422,
            "invalid_field",
        ),
        // Take-down and restore.
        ("POST", takedown.clone(), None, 400, "missing_body"),
        (
            "POST",
            takedown.clone(),
            Some("{}".into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            takedown.clone(),
            Some(r#"{"reason":"  "}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            takedown.clone(),
            Some(json!({"reason": long}).to_string()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            takedown.clone(),
            Some(r#"{"reason":"x","status":"published"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            "/admin/v1/listings/nope/takedown".into(),
            Some(r#"{"reason":"x"}"#.into()),
            404,
            "not_found",
        ),
        (
            "POST",
            "/admin/v1/listings/l_00000000000000000000000000/takedown".into(),
            Some(r#"{"reason":"x"}"#.into()),
            404,
            "not_found",
        ),
        (
            "POST",
            restore.clone(),
            Some("{}".into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            restore.clone(),
            Some(r#"{"reason":"x"}"#.into()),
            409,
            "listing_not_taken_down",
        ),
        // Suspension and restore of a member.
        ("POST", suspend.clone(), None, 400, "missing_body"),
        (
            "POST",
            suspend.clone(),
            Some("{}".into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            suspend.clone(),
            Some(r#"{"reason":"  "}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            suspend.clone(),
            Some(json!({"reason": long}).to_string()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            suspend.clone(),
            Some(r#"{"reason":"x","days":7}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            suspend.clone(),
            Some(r#"{"reason":5}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            "/admin/v1/members/nope/suspend".into(),
            Some(r#"{"reason":"x"}"#.into()),
            404,
            "not_found",
        ),
        (
            "POST",
            "/admin/v1/members/u_00000000000000000000000000/suspend".into(),
            Some(r#"{"reason":"x"}"#.into()),
            404,
            "not_found",
        ),
        ("POST", member_restore.clone(), None, 400, "missing_body"),
        (
            "POST",
            member_restore.clone(),
            Some(r#"{"reason":""}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            member_restore.clone(),
            Some(r#"{"reason":"x"}"#.into()),
            409,
            "not_suspended",
        ),
        (
            "POST",
            "/admin/v1/members/u_00000000000000000000000000/restore".into(),
            Some(r#"{"reason":"x"}"#.into()),
            404,
            "not_found",
        ),
        // Decisions.
        ("POST", decision.clone(), None, 400, "missing_body"),
        (
            "POST",
            decision.clone(),
            Some(r#"{"action":"refund"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            decision.clone(),
            Some(r#"{"action":"pay","reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            decision.clone(),
            Some(r#"{"action":"refund","amount_fen":0,"reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            decision.clone(),
            Some(r#"{"action":"refund","amount_fen":-5,"reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            decision.clone(),
            Some(r#"{"action":"refund","amount_fen":288001,"reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            decision.clone(),
            Some(r#"{"action":"refund","amount_fen":1.5,"reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        // null is not "all of it".
        (
            "POST",
            decision.clone(),
            Some(r#"{"action":"refund","amount_fen":null,"reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            decision.clone(),
            Some(r#"{"action":"release","amount_fen":null,"reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            decision.clone(),
            Some(r#"{"action":"release","amount_fen":100,"reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            decision.clone(),
            Some(r#"{"action":"release","reason":"x","extra":true}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            "/admin/v1/orders/nope/decision".into(),
            Some(r#"{"action":"release","reason":"x"}"#.into()),
            404,
            "not_found",
        ),
        (
            "POST",
            "/admin/v1/orders/01JDA7Q3ZK8M4N5P6Q7R8S9T/decision".into(),
            Some(r#"{"action":"release","reason":"x"}"#.into()),
            404,
            "not_found",
        ),
        // A refund after the split: bad bodies, and a disputed (unsettled) order.
        ("POST", settled_refund.clone(), None, 400, "missing_body"),
        (
            "POST",
            settled_refund.clone(),
            Some(r#"{"amount_fen":100}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            settled_refund.clone(),
            Some(r#"{"amount_fen":0,"reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            settled_refund.clone(),
            Some(r#"{"amount_fen":null,"reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            settled_refund.clone(),
            Some(r#"{"amount_fen":"100","reason":"x"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            settled_refund.clone(),
            Some(r#"{"reason":"x","action":"refund"}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "POST",
            settled_refund.clone(),
            Some(format!(r#"{{"reason":"{long}"}}"#)),
            422,
            "invalid_field",
        ),
        (
            "POST",
            settled_refund.clone(),
            Some(r#"{"reason":"x"}"#.into()),
            409,
            "invalid_order_state",
        ),
        (
            "POST",
            "/admin/v1/orders/nope/refund".into(),
            Some(r#"{"reason":"x"}"#.into()),
            404,
            "not_found",
        ),
        // Member look-up, me, logout, audit.
        (
            "GET",
            "/admin/v1/members/nope".into(),
            None,
            404,
            "not_found",
        ),
        (
            "GET",
            "/admin/v1/members/u_00000000000000000000000000".into(),
            None,
            404,
            "not_found",
        ),
        (
            "GET",
            format!("/admin/v1/members/{}?x=1", seller.id),
            None,
            422,
            "invalid_field",
        ),
        ("GET", "/admin/v1/me?x=1".into(), None, 422, "invalid_field"),
        (
            "POST",
            "/admin/v1/auth/logout".into(),
            Some(r#"{"all":true}"#.into()),
            422,
            "invalid_field",
        ),
        (
            "GET",
            "/admin/v1/audit?limit=0".into(),
            None,
            422,
            "invalid_field",
        ),
        (
            "GET",
            "/admin/v1/audit?cursor=forged".into(),
            None,
            422,
            "invalid_field",
        ),
        (
            "GET",
            "/admin/v1/audit?actor=a%20b".into(),
            None,
            422,
            "invalid_field",
        ),
        (
            "GET",
            "/admin/v1/audit?target=listing".into(),
            None,
            422,
            "invalid_field",
        ),
        (
            "GET",
            "/admin/v1/audit?actor=alice&target=listing:x".into(),
            None,
            422,
            "invalid_field",
        ),
        (
            "GET",
            "/admin/v1/audit?sort=asc".into(),
            None,
            422,
            "invalid_field",
        ),
    ];
    for (method, path, body, status, code) in &cases {
        let token = match path.as_str() {
            "/admin/v1/auth/wecom" => None,
            _ => Some(admin.as_str()),
        };
        let reply = api.raw(method, path, token, body.clone()).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (*status, *code),
            "{method} {path} {body:?}: {reply:?}"
        );
    }
    // The listing, the order and alice's session are as they were; the refusals are on the
    // trail with their error codes (the audit partitions are the only ones written).
    assert_eq!(snapshot(&server, &changeable).await, before);
    let mine = audit(api, &admin, "?actor=alice&limit=100").await;
    let outcomes: Vec<&str> = mine
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"invalid_field") && outcomes.contains(&"listing_not_taken_down"));
    let on_order = audit(api, &admin, &format!("?target=order:{o}")).await;
    assert!(
        on_order.iter().all(|r| r["outcome"] != json!("ok")),
        "{on_order:?}"
    );
    assert!(!on_order.is_empty());
    let me = api.call("GET", "/admin/v1/me", Some(&admin), None).await;
    assert_eq!(me.status, 200, "the session survives");
}

/// A store whose audit transactions fail while `failing` is set (everything else works).
struct FailingAudit {
    inner: DynStore,
    failing: AtomicBool,
}

#[async_trait]
impl Store for FailingAudit {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.inner.get_many(keys).await
    }
    async fn write(&self, write: Write) -> Result<Option<Item>, StoreError> {
        self.inner.write(write).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let audit = writes
            .iter()
            .any(|w| w.key().is_some_and(|k| k.pk.starts_with(keys::AUDIT)));
        if audit && self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("audit partition down".into()));
        }
        self.inner.transact(writes).await
    }
    async fn transact_with_token(&self, token: &str, writes: Vec<Write>) -> Result<(), StoreError> {
        self.inner.transact_with_token(token, writes).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }
}

/// An API Gateway request for `route` with its `{id}`.
fn request(route: &str, id: &str, token: &str, body: Option<Value>) -> lambda_http::Request {
    gateway_request(route, id, Some(token), body, &[])
}

/// When the audit record cannot be written, a read is not answered (503: nothing is shown
/// unaudited); a change that happened keeps its answer.
async fn nothing_is_shown_unaudited(backend: Backend) {
    use renji_local::sandbox::wecom;
    let server = LocalServer::start(backend).await;
    let owner = server.member("audit-down-owner", true).await;
    let listing = server.api.create_listing(&owner, service("跟拍")).await;
    let l = listing["id"].as_str().unwrap().to_owned();
    let store = Arc::new(FailingAudit {
        inner: server.app().store.clone(),
        failing: AtomicBool::new(false),
    });
    let base = server.running.wecom_base.clone();
    let config = Config::from_lookup(|name| match name {
        "RENJI_SESSION_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
        "WECOM_CORP_ID" => Some(wecom::CORP_ID.into()),
        "WECOM_SECRET" => Some(wecom::SECRET.into()),
        "WECOM_API_BASE" => Some(base.clone()),
        "RENJI_STAFF_ROLES" => Some(wecom::ROLES.into()),
        _ => None,
    })
    .unwrap();
    let app = App::new(config, store.clone()).unwrap();
    let signed = renji_shared::staff::sign_in(&app, "staff:alice:admin", OffsetDateTime::now_utc())
        .await
        .unwrap();
    store.failing.store(true, Ordering::SeqCst);
    let invoke = |req| renji_local::functions::invoke("AdminFunction", &app, req);
    let read = invoke(request(
        "GET /admin/v1/members/{id}",
        &owner.id,
        &signed.token,
        None,
    ))
    .await
    .unwrap();
    assert_eq!(read.status(), 503, "{read:?}");
    let change = invoke(request(
        "POST /admin/v1/listings/{id}/takedown",
        &l,
        &signed.token,
        Some(json!({"reason": "违规"})),
    ))
    .await
    .unwrap();
    assert_eq!(change.status(), 200, "{change:?}");
    let own = server
        .api
        .call(
            "GET",
            &format!("/v1/listings/{l}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(own.body["status"], json!("taken_down"));
    // With the trail back, the same read is answered.
    store.failing.store(false, Ordering::SeqCst);
    let read = invoke(request(
        "GET /admin/v1/members/{id}",
        &owner.id,
        &signed.token,
        None,
    ))
    .await
    .unwrap();
    assert_eq!(read.status(), 200, "{read:?}");
}

/// Files a ticket as `who`: its id.
async fn file(api: &Api, who: &Member, body: Value) -> String {
    let reply = api
        .call("POST", "/v1/tickets", Some(&who.token), Some(body))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn staff_work_the_tickets_queue_and_a_decision_closes_the_dispute(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let seller = server.member("ticket-seller", true).await;
    let buyer = server.member("ticket-buyer", false).await;
    let listing = api.create_listing(&seller, service("婚礼跟拍")).await;
    let l = listing["id"].as_str().unwrap();
    let order = server.completed_order(&seller, &buyer, l).await;
    let dispute = file(
        api,
        &buyer,
        json!({"kind": "dispute", "subject": "未按约定拍摄", "text": "只拍了一半", "order_id": order}),
    )
    .await;
    let privacy = file(
        api,
        &buyer,
        json!({"kind": "privacy", "subject": "查看我的数据", "text": "请告诉我保存了哪些数据"}),
    )
    .await;
    let support = staff(api, "sam", "support").await;
    let moderator = staff(api, "mia", "moderator").await;
    let admin = staff(api, "alice", "admin").await;

    // Every role reads the queue (earliest due first: the dispute is due in 48 hours, the
    // privacy request in 15 days) and a ticket.
    for token in [&support, &moderator, &admin] {
        let queue = api
            .call("GET", "/admin/v1/tickets", Some(token), None)
            .await;
        assert_eq!(queue.status, 200, "{queue:?}");
        assert_eq!(ids(&queue.body), [dispute.clone(), privacy.clone()]);
        let one = api
            .call(
                "GET",
                &format!("/admin/v1/tickets/{dispute}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(one.status, 200, "{one:?}");
        assert_eq!(one.body["order"]["status"], json!("disputed"));
    }
    let privacy_only = api
        .call(
            "GET",
            "/admin/v1/tickets?kind=privacy",
            Some(&support),
            None,
        )
        .await;
    assert_eq!(ids(&privacy_only.body), [privacy.as_str()]);
    let due = OffsetDateTime::parse(
        privacy_only.body["items"][0]["due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (due - OffsetDateTime::now_utc()).whole_hours();
    assert!((14 * 24..=15 * 24).contains(&days), "{days}");
    let before = (OffsetDateTime::now_utc() + time::Duration::days(3))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let soon = api
        .call(
            "GET",
            &format!(
                "/admin/v1/tickets?due_before={}",
                before.replace('+', "%2B")
            ),
            Some(&support),
            None,
        )
        .await;
    assert_eq!(ids(&soon.body), [dispute.as_str()], "{soon:?}");

    // A moderator may not answer or close; support answers, and the member sees `staff`.
    for (path, body) in [
        (
            format!("/admin/v1/tickets/{dispute}/messages"),
            json!({"text": "收到"}),
        ),
        (
            format!("/admin/v1/tickets/{dispute}/close"),
            json!({"resolution": "x"}),
        ),
    ] {
        let reply = api.call("POST", &path, Some(&moderator), Some(body)).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (403, "forbidden_role"),
            "{path}"
        );
    }
    let answer = api
        .call(
            "POST",
            &format!("/admin/v1/tickets/{dispute}/messages"),
            Some(&support),
            Some(json!({"text": "您好，我们正在核实。"})),
        )
        .await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.body["staff_id"], json!("sam"));
    let seen = api
        .call(
            "GET",
            &format!("/v1/tickets/{dispute}"),
            Some(&buyer.token),
            None,
        )
        .await;
    let last = seen.body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["from"], json!("staff"));
    assert!(last.get("staff_id").is_none(), "{last}");

    // The decision closes the dispute's ticket in the order's transaction, its reason the
    // resolution the member reads.
    let decided = api
        .call(
            "POST",
            &format!("/admin/v1/orders/{order}/decision"),
            Some(&support),
            Some(json!({"action": "release", "reason": "已核实服务完成"})),
        )
        .await;
    assert_eq!(decided.status, 200, "{decided:?}");
    assert_eq!(decided.body["status"], json!("completed"));
    let seen = api
        .call(
            "GET",
            &format!("/v1/tickets/{dispute}"),
            Some(&buyer.token),
            None,
        )
        .await;
    assert_eq!(
        (&seen.body["status"], &seen.body["resolution"]),
        (&json!("closed"), &json!("已核实服务完成")),
        "{seen:?}"
    );
    let staff_side = api
        .call(
            "GET",
            &format!("/admin/v1/tickets/{dispute}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(staff_side.body["closed_by"], json!("sam"));
    let queue = api
        .call("GET", "/admin/v1/tickets", Some(&admin), None)
        .await;
    assert_eq!(ids(&queue.body), [privacy.as_str()]);
    let closed = api
        .call("GET", "/admin/v1/tickets?status=closed", Some(&admin), None)
        .await;
    assert_eq!(ids(&closed.body), [dispute.as_str()]);

    // Closing: once, with a resolution; again is 409 and changes nothing.
    let close = |token: String, body: Value| {
        let path = format!("/admin/v1/tickets/{privacy}/close");
        async move { api.call("POST", &path, Some(&token), Some(body)).await }
    };
    let done = close(admin.clone(), json!({"resolution": "已发送数据副本"})).await;
    assert_eq!(
        (done.status, &done.body["status"]),
        (200, &json!("closed")),
        "{done:?}"
    );
    let again = close(support.clone(), json!({"resolution": "再次"})).await;
    assert_eq!((again.status, again.error_code()), (409, "ticket_closed"));
    let seen = api
        .call(
            "GET",
            &format!("/v1/tickets/{privacy}"),
            Some(&buyer.token),
            None,
        )
        .await;
    assert_eq!(seen.body["resolution"], json!("已发送数据副本"));
    let trail = audit(api, &admin, &format!("?target=ticket:{privacy}")).await;
    let outcomes: Vec<(&str, &str)> = trail
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap(),
                r["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("ticket_closed", "再次"), ("ok", "已发送数据副本")]
    );

    // Bad input on the ticket routes: 4xx, nothing changed.
    let before = snapshot(
        &server,
        &[keys::ticket(&renji_shared::ids::TicketId::parse(&dispute).unwrap()).pk],
    )
    .await;
    for (method, path, body, status) in [
        ("GET", "/admin/v1/tickets?kind=x".to_owned(), None, 422),
        ("GET", "/admin/v1/tickets?status=done".to_owned(), None, 422),
        (
            "GET",
            "/admin/v1/tickets?due_before=tomorrow".to_owned(),
            None,
            422,
        ),
        ("GET", "/admin/v1/tickets?limit=0".to_owned(), None, 422),
        ("GET", "/admin/v1/tickets?order=1".to_owned(), None, 422),
        ("GET", "/admin/v1/tickets/nope".to_owned(), None, 404),
        (
            "GET",
            "/admin/v1/tickets/t_00000000000000000000000000".to_owned(),
            None,
            404,
        ),
        (
            "POST",
            format!("/admin/v1/tickets/{dispute}/messages"),
            Some(json!({"text": " "})),
            422,
        ),
        (
            "POST",
            format!("/admin/v1/tickets/{dispute}/messages"),
            Some(json!({"text": "x", "from": "member"})),
            422,
        ),
        (
            "POST",
            format!("/admin/v1/tickets/{dispute}/messages"),
            Some(json!({"text": "x", "images": ["http://a"]})),
            422,
        ),
        (
            "POST",
            format!("/admin/v1/tickets/{dispute}/messages"),
            Some(json!({"text": "补充"})),
            409,
        ),
        (
            "POST",
            format!("/admin/v1/tickets/{dispute}/close"),
            Some(json!({"resolution": ""})),
            422,
        ),
        (
            "POST",
            format!("/admin/v1/tickets/{dispute}/close"),
            Some(json!({})),
            422,
        ),
        (
            "POST",
            "/admin/v1/tickets/nope/close".to_owned(),
            Some(json!({"resolution": "x"})),
            404,
        ),
    ] {
        let reply = api.call(method, &path, Some(&admin), body).await;
        assert_eq!(reply.status, status, "{method} {path}: {reply:?}");
    }
    let after = snapshot(
        &server,
        &[keys::ticket(&renji_shared::ids::TicketId::parse(&dispute).unwrap()).pk],
    )
    .await;
    assert_eq!(after, before);
}

async fn moderators_hide_reviews(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let seller = server.member("review-seller", true).await;
    let buyer = server.member("review-buyer", false).await;
    let listing = api.create_listing(&seller, service("婚礼跟拍")).await;
    let l = listing["id"].as_str().unwrap().to_owned();
    let order = server.completed_order(&seller, &buyer, &l).await;
    let review = api
        .call(
            "POST",
            &format!("/v1/orders/{order}/reviews"),
            Some(&buyer.token),
            Some(json!({"rating": 1, "text": "骂人的话"})),
        )
        .await;
    assert_eq!(review.status, 201, "{review:?}");
    let r = review.body["id"].as_str().unwrap().to_owned();
    let rating = || async {
        let got = api
            .call("GET", &format!("/v1/listings/{l}"), None, None)
            .await;
        (
            got.body["rating_sum"].clone(),
            got.body["rating_count"].clone(),
        )
    };
    assert_eq!(rating().await, (json!(1), json!(1)));
    let support = staff(api, "sam", "support").await;
    let moderator = staff(api, "mia", "moderator").await;
    let admin = staff(api, "alice", "admin").await;
    let hide = |token: String, body: Option<String>, id: String| async move {
        api.raw(
            "POST",
            &format!("/admin/v1/reviews/{id}/hide"),
            Some(&token),
            body,
        )
        .await
    };
    // Support may not; bad input is refused; nothing changes.
    let refused = hide(support.clone(), Some(r#"{"reason":"x"}"#.into()), r.clone()).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (403, "forbidden_role")
    );
    for (body, id, status) in [
        (None, r.clone(), 400),
        (Some("{}".to_owned()), r.clone(), 422),
        (Some(r#"{"reason":" "}"#.to_owned()), r.clone(), 422),
        (Some(r#"{"reason":"x","why":1}"#.to_owned()), r.clone(), 422),
        (Some(r#"{"reason":"x"}"#.to_owned()), "nope".to_owned(), 404),
        (
            Some(r#"{"reason":"x"}"#.to_owned()),
            "r_00000000000000000000000000".to_owned(),
            404,
        ),
    ] {
        let reply = hide(moderator.clone(), body.clone(), id).await;
        assert_eq!(reply.status, status, "{body:?}: {reply:?}");
    }
    assert_eq!(rating().await, (json!(1), json!(1)));
    // The moderator hides it: it leaves the lists and the ratings; again changes nothing.
    for _ in 0..2 {
        let done = hide(
            moderator.clone(),
            Some(r#"{"reason":"含辱骂内容"}"#.into()),
            r.clone(),
        )
        .await;
        assert_eq!(done.status, 200, "{done:?}");
        assert_eq!(done.body["hidden"]["reason"], json!("含辱骂内容"));
    }
    assert_eq!(rating().await, (json!(0), json!(0)));
    let listed = api
        .call("GET", &format!("/v1/listings/{l}/reviews"), None, None)
        .await;
    assert_eq!(listed.body["items"], json!([]));
    let trail = audit(api, &admin, &format!("?target=review:{r}")).await;
    let summary: Vec<(&str, &str, &str)> = trail
        .iter()
        .map(|e| {
            (
                e["staff_id"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("mia", "ok", "含辱骂内容"),
            ("mia", "ok", "含辱骂内容"),
            ("mia", "invalid_field", "x"),
            ("mia", "invalid_field", ""),
            ("mia", "invalid_field", ""),
            ("mia", "missing_body", ""),
            ("sam", "forbidden_role", "x"),
        ]
    );
}

/// A suspension ends the member's sessions, refuses their sign-in, hides their published and
/// closed listings and shows their profile as unavailable, leaving their orders alone; a restore
/// gives back exactly what it hid (not a listing staff took down by itself). Moderators and
/// admins only, audited with the reason, 404 / 409 as documented.
async fn suspension_ends_sessions_hides_listings_and_restore_gives_them_back(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let owner = server.member("suspended-seller", true).await;
    let (second, _) = api.login("suspended-seller").await;
    let listing = api.create_listing(&owner, service("婚礼摄影跟拍")).await;
    let p = listing["id"].as_str().unwrap().to_owned();
    let closed = api.create_listing(&owner, service("化妆造型")).await;
    let c = closed["id"].as_str().unwrap().to_owned();
    let close = api
        .call(
            "PATCH",
            &format!("/v1/listings/{c}"),
            Some(&owner.token),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(close.status, 200, "{close:?}");
    let mut draft_body = service("草稿跟拍");
    draft_body["status"] = json!("draft");
    let draft = api.create_listing(&owner, draft_body).await;
    let d = draft["id"].as_str().unwrap().to_owned();
    let apart = api.create_listing(&owner, service("独立下架")).await;
    let t = apart["id"].as_str().unwrap().to_owned();
    let buyer = server.member("suspend-buyer", false).await;
    let order = server.paid_order(&buyer, &p).await;

    let support = staff(api, "sam", "support").await;
    let moderator = staff(api, "mia", "moderator").await;
    let admin = staff(api, "alice", "admin").await;
    let down = api
        .call(
            "POST",
            &format!("/admin/v1/listings/{t}/takedown"),
            Some(&moderator),
            Some(json!({"reason": "单独下架"})),
        )
        .await;
    assert_eq!(down.status, 200, "{down:?}");
    let suspend = format!("/admin/v1/members/{}/suspend", owner.id);
    let restore = format!("/admin/v1/members/{}/restore", owner.id);
    let profile = || async {
        api.call("GET", &format!("/v1/users/{}", owner.id), None, None)
            .await
            .body
    };
    let public_status = |id: String| async move {
        api.call("GET", &format!("/v1/listings/{id}"), None, None)
            .await
            .status
    };
    let listed = || async {
        let reply = api
            .call(
                "GET",
                &format!("/v1/users/{}/listings", owner.id),
                None,
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        ids(&reply.body)
    };
    let feed_has = |id: String| async move {
        let reply = api.call("GET", "/v1/listings", None, None).await;
        ids(&reply.body).contains(&id)
    };
    assert_eq!(profile().await["unavailable"], json!(false));
    assert_eq!(listed().await, vec![p.clone()]);
    assert!(feed_has(p.clone()).await);

    // Support may not suspend: 403, nothing changes.
    let refused = api
        .call(
            "POST",
            &suspend,
            Some(&support),
            Some(json!({"reason": "越权"})),
        )
        .await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (403, "forbidden_role")
    );
    assert_eq!(
        api.call("GET", "/v1/me", Some(&owner.token), None)
            .await
            .status,
        200
    );

    // A moderator suspends, the reason trimmed.
    let suspended = api
        .call(
            "POST",
            &suspend,
            Some(&moderator),
            Some(json!({"reason": "  多次发布违规信息  "})),
        )
        .await;
    assert_eq!(suspended.status, 200, "{suspended:?}");
    assert_eq!(
        suspended.body["suspension"]["reason"],
        json!("多次发布违规信息")
    );
    assert_eq!(suspended.body["suspension"]["by"], json!("mia"));
    assert!(suspended.body["suspension"]["at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(suspended.body["profile"]["unavailable"], json!(true));
    let statuses = |body: &Value| -> BTreeMap<String, String> {
        body["listings"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["id"].as_str().unwrap().to_owned(),
                    l["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let expected = |p_c: &str| -> BTreeMap<String, String> {
        [
            (p.clone(), p_c.to_owned()),
            (
                c.clone(),
                if p_c == "taken_down" { p_c } else { "closed" }.to_owned(),
            ),
            (d.clone(), "draft".to_owned()),
            (t.clone(), "taken_down".to_owned()),
        ]
        .into_iter()
        .collect()
    };
    assert_eq!(statuses(&suspended.body), expected("taken_down"));

    // Every session ended; sign-in refused; publishing impossible.
    for token in [&owner.token, &second] {
        let me = api.call("GET", "/v1/me", Some(token), None).await;
        assert_eq!(me.status, 401, "{me:?}");
    }
    let again = api
        .call(
            "POST",
            "/v1/auth/wechat",
            None,
            Some(json!({"code": "sandbox:suspended-seller"})),
        )
        .await;
    assert_eq!(
        (again.status, again.error_code()),
        (403, "account_suspended"),
        "{again:?}"
    );
    // Others: the listings are gone, the profile unavailable.
    for id in [&p, &c, &d, &t] {
        assert_eq!(public_status(id.clone()).await, 404, "{id}");
    }
    assert!(listed().await.is_empty());
    assert!(!feed_has(p.clone()).await);
    let shown = profile().await;
    assert_eq!(
        (
            &shown["unavailable"],
            &shown["nickname"],
            &shown["avatar_url"]
        ),
        (&json!(true), &Value::Null, &Value::Null)
    );
    // The order goes on: the buyer still sees it, paid.
    let seen = api
        .call(
            "GET",
            &format!("/v1/orders/{order}"),
            Some(&buyer.token),
            None,
        )
        .await;
    assert_eq!((seen.status, &seen.body["status"]), (200, &json!("paid")));
    // Again: 409, nothing else. A hidden listing comes back only with its owner.
    let twice = api
        .call(
            "POST",
            &suspend,
            Some(&admin),
            Some(json!({"reason": "再次"})),
        )
        .await;
    assert_eq!(
        (twice.status, twice.error_code()),
        (409, "already_suspended")
    );
    let alone = api
        .call(
            "POST",
            &format!("/admin/v1/listings/{p}/restore"),
            Some(&admin),
            Some(json!({"reason": "单独恢复"})),
        )
        .await;
    assert_eq!((alone.status, alone.error_code()), (409, "owner_suspended"));

    // Restored: exactly what the suspension hid comes back; the old sessions stay ended.
    let restored = api
        .call(
            "POST",
            &restore,
            Some(&admin),
            Some(json!({"reason": "申诉通过"})),
        )
        .await;
    assert_eq!(restored.status, 200, "{restored:?}");
    assert_eq!(restored.body["suspension"], Value::Null);
    assert_eq!(restored.body["profile"]["unavailable"], json!(false));
    assert_eq!(statuses(&restored.body), expected("published"));
    assert_eq!(public_status(p.clone()).await, 200);
    assert_eq!(public_status(c.clone()).await, 200);
    assert_eq!(public_status(t.clone()).await, 404);
    assert_eq!(listed().await, vec![p.clone()]);
    assert!(feed_has(p.clone()).await);
    assert_eq!(profile().await["unavailable"], json!(false));
    let me = api.call("GET", "/v1/me", Some(&owner.token), None).await;
    assert_eq!(me.status, 401);
    let (token, _) = api.login("suspended-seller").await;
    let me = api.call("GET", "/v1/me", Some(&token), None).await;
    assert_eq!(me.status, 200);
    let twice = api
        .call(
            "POST",
            &restore,
            Some(&admin),
            Some(json!({"reason": "再次"})),
        )
        .await;
    assert_eq!((twice.status, twice.error_code()), (409, "not_suspended"));
    // An unknown member: 404.
    let unknown = api
        .call(
            "POST",
            "/admin/v1/members/u_00000000000000000000000000/suspend",
            Some(&admin),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!((unknown.status, unknown.error_code()), (404, "not_found"));

    // On the member's trail: who, role, what, why, how it ended.
    let trail = audit(api, &admin, &format!("?target=member:{}", owner.id)).await;
    let summary: Vec<(Value, Value, Value, Value)> = trail
        .iter()
        .filter(|r| r["staff_id"].is_string())
        .map(|r| {
            (
                r["staff_id"].clone(),
                r["action"].clone(),
                r["reason"].clone(),
                r["outcome"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                json!("alice"),
                json!("POST /admin/v1/members/{id}/restore"),
                json!("再次"),
                json!("not_suspended")
            ),
            (
                json!("alice"),
                json!("POST /admin/v1/members/{id}/restore"),
                json!("申诉通过"),
                json!("ok")
            ),
            (
                json!("alice"),
                json!("POST /admin/v1/members/{id}/suspend"),
                json!("再次"),
                json!("already_suspended")
            ),
            (
                json!("mia"),
                json!("POST /admin/v1/members/{id}/suspend"),
                json!("多次发布违规信息"),
                json!("ok")
            ),
            (
                json!("sam"),
                json!("POST /admin/v1/members/{id}/suspend"),
                json!("越权"),
                json!("forbidden_role")
            ),
        ]
    );
}

/// A suspended member's name leaves every public place their profile did: the author card of
/// their reviews, and the list of a member who blocked them, show the id alone (as for a member
/// who is gone) until a restore.
async fn a_suspended_reviewer_shows_no_name_on_reviews_or_blocks(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let api = &server.api;
    let seller = server.member("card-seller", true).await;
    let reviewer = server.member("card-reviewer", false).await;
    let named = api
        .call(
            "PATCH",
            "/v1/me",
            Some(&reviewer.token),
            Some(json!({"nickname": "评论者乙"})),
        )
        .await;
    assert_eq!(named.status, 200, "{named:?}");
    let listing = api.create_listing(&seller, service("证件照拍摄")).await;
    let l = listing["id"].as_str().unwrap().to_owned();
    let order = server.completed_order(&seller, &reviewer, &l).await;
    let review = api
        .call(
            "POST",
            &format!("/v1/orders/{order}/reviews"),
            Some(&reviewer.token),
            Some(json!({"rating": 5, "text": "拍得很好"})),
        )
        .await;
    assert_eq!(review.status, 201, "{review:?}");
    let blocked = api
        .call(
            "PUT",
            &format!("/v1/me/blocks/{}", reviewer.id),
            Some(&seller.token),
            None,
        )
        .await;
    assert!(blocked.status < 300, "{blocked:?}");
    let names = || async {
        let mut names = Vec::new();
        for path in [
            format!("/v1/listings/{l}/reviews"),
            format!("/v1/users/{}/reviews", seller.id),
        ] {
            let reply = api.call("GET", &path, None, None).await;
            assert_eq!(reply.status, 200, "{path}: {reply:?}");
            let author = &reply.body["items"][0]["author"];
            assert_eq!(author["id"], json!(reviewer.id), "{path}: {reply:?}");
            names.push(author["nickname"].clone());
        }
        let reply = api
            .call("GET", "/v1/me/blocks", Some(&seller.token), None)
            .await;
        assert_eq!(
            reply.body["items"][0]["id"],
            json!(reviewer.id),
            "{reply:?}"
        );
        names.push(reply.body["items"][0]["nickname"].clone());
        names
    };
    let before = names().await;
    assert_eq!(before, vec![json!("评论者乙"); 3]);

    let moderator = staff(api, "mia", "moderator").await;
    let suspend = format!("/admin/v1/members/{}/suspend", reviewer.id);
    let done = api
        .call(
            "POST",
            &suspend,
            Some(&moderator),
            Some(json!({"reason": "冒用他人身份"})),
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(names().await, vec![Value::Null; 3]);

    let restore = format!("/admin/v1/members/{}/restore", reviewer.id);
    let done = api
        .call(
            "POST",
            &restore,
            Some(&moderator),
            Some(json!({"reason": "申诉通过"})),
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(names().await, before);
}

on_both_stores!(
    moderators_hide_reviews,
    suspension_ends_sessions_hides_listings_and_restore_gives_them_back,
    staff_work_the_tickets_queue_and_a_decision_closes_the_dispute,
    nothing_is_shown_unaudited,
    sign_in_with_each_role_and_refusals,
    the_role_mapping_is_configuration,
    staff_routes_refuse_without_staff_credentials,
    take_down_and_restore_show_to_the_owner_and_the_feeds,
    disputes_are_decided_by_refund_all_or_part_or_release,
    bad_input_on_every_route_is_4xx_and_changes_nothing,
    a_suspended_reviewer_shows_no_name_on_reviews_or_blocks,
);

/// Every `/admin/v1` route but sign-in is a staff route, with the roles of the README's table;
/// `openapi.yaml` documents each with the `staff` security scheme and the same roles.
#[test]
fn admin_routes_are_staff_routes_with_their_documented_roles() {
    use StaffRole::{Admin, Moderator, Support};
    let expected: &[(&str, &[StaffRole])] = &[
        ("POST /admin/v1/auth/logout", &[Support, Moderator, Admin]),
        ("GET /admin/v1/me", &[Support, Moderator, Admin]),
        ("GET /admin/v1/tickets", &[Support, Moderator, Admin]),
        ("GET /admin/v1/tickets/{id}", &[Support, Moderator, Admin]),
        ("POST /admin/v1/tickets/{id}/messages", &[Support, Admin]),
        ("POST /admin/v1/tickets/{id}/close", &[Support, Admin]),
        ("GET /admin/v1/members/{id}", &[Support, Moderator, Admin]),
        ("POST /admin/v1/listings/{id}/takedown", &[Moderator, Admin]),
        ("POST /admin/v1/listings/{id}/restore", &[Moderator, Admin]),
        ("POST /admin/v1/reviews/{id}/hide", &[Moderator, Admin]),
        ("POST /admin/v1/orders/{id}/decision", &[Support, Admin]),
        ("POST /admin/v1/members/{id}/deletion", &[Support, Admin]),
        ("POST /admin/v1/members/{id}/suspend", &[Moderator, Admin]),
        ("POST /admin/v1/members/{id}/restore", &[Moderator, Admin]),
        ("GET /admin/v1/audit", &[Admin]),
        ("POST /admin/v1/orders/{id}/refund", &[Admin]),
        ("GET /admin/v1/moderation/texts", &[Moderator, Admin]),
        (
            "POST /admin/v1/moderation/texts/{id}/decision",
            &[Moderator, Admin],
        ),
        ("GET /admin/v1/moderation/media", &[Moderator, Admin]),
        (
            "POST /admin/v1/moderation/media/{id}/decision",
            &[Moderator, Admin],
        ),
        ("GET /admin/v1/settlements", &[Support, Admin]),
    ];
    let spec: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut seen = 0;
    for route in renji_admin_routes() {
        let (method, path) = route.key.split_once(' ').unwrap();
        let op = &spec["paths"][path][method.to_lowercase()];
        if route.key == "POST /admin/v1/auth/wecom" {
            assert_eq!(route.access, Access::Public);
            assert!(op["security"].is_null());
            continue;
        }
        let Access::Staff { roles, audited } = route.access else {
            panic!("{} is not a staff route", route.key);
        };
        assert_eq!(audited, route.key != "GET /admin/v1/me", "{}", route.key);
        let want = expected
            .iter()
            .find(|(k, _)| *k == route.key)
            .unwrap_or_else(|| panic!("{} has no expected roles", route.key))
            .1;
        assert_eq!(roles, want, "{}", route.key);
        let documented: Vec<StaffRole> = op["x-staff-roles"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{}: no x-staff-roles", route.key))
            .iter()
            .map(|r| StaffRole::parse(r.as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(documented, want, "{}", route.key);
        assert_eq!(
            op["security"][0]["staff"],
            serde_yaml::Value::Sequence(vec![]),
            "{}",
            route.key
        );
        seen += 1;
    }
    assert_eq!(seen, expected.len());
}

fn renji_admin_routes() -> &'static [renji_shared::ratelimit::Route] {
    renji_local::functions::FUNCTIONS
        .iter()
        .find(|(name, _)| *name == "AdminFunction")
        .unwrap()
        .1
}

/// The staff schemas of `openapi.yaml` name exactly the fields of the views they describe.
#[test]
fn openapi_staff_schemas_match_the_views() {
    use std::collections::BTreeSet;
    let spec: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let schema = |name: &str| -> BTreeSet<String> {
        spec["components"]["schemas"][name]["properties"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{name}"))
            .keys()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    };
    let view = |v: Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let member = renji_shared::domain::members::Member::new(
        renji_shared::ids::UserId::generate(),
        &renji_shared::wechat::WechatIdentity {
            openid: "o".into(),
            unionid: None,
        },
    );
    let mut profile = view(member.profile_view());
    profile.insert("created_at".into());
    assert_eq!(schema("StaffMemberProfile"), profile);
    let caller = renji_shared::staff::StaffCaller {
        id: StaffId::parse("alice").unwrap(),
        role: StaffRole::Admin,
        session_id: "s".into(),
        expires_at: 0,
    };
    assert_eq!(
        schema("StaffMe"),
        view(renji_shared::staff::me_view(&caller))
    );
    let record = renji_shared::domain::audit::AuditRecord::new(
        OffsetDateTime::now_utc(),
        &caller,
        "GET /admin/v1/audit",
        renji_shared::domain::audit::Target::staff(&caller.id),
        None,
        "ok",
    );
    assert_eq!(schema("AuditRecord"), view(record.view()));
}
