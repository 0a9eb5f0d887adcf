//! Blocks over HTTP on both stores: block, unblock and the list; a blocked member can neither
//! follow the blocker nor order their services (the blocker still sees them); a block ends the
//! follows between the two with the counts right, also when it races a follow; bad input is
//! refused with nothing written.

use renji_shared::ids::UserId;
use renji_shared::store::Query;
use renji_tests::{keys, on_both_stores, service, Backend, LocalServer, Member};
use serde_json::{json, Value};

async fn profile(server: &LocalServer, id: &str) -> Value {
    let reply = server
        .api
        .call("GET", &format!("/v1/users/{id}"), None, None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

/// The items of a partition, as stored.
async fn records(server: &LocalServer, partition: String) -> usize {
    server
        .app()
        .store
        .query(Query::partition(partition).limit(1000))
        .await
        .unwrap()
        .items
        .len()
}

async fn call(server: &LocalServer, method: &str, path: &str, who: &Member) -> (u16, Value) {
    let reply = server.api.call(method, path, Some(&who.token), None).await;
    (reply.status, reply.body)
}

async fn block(server: &LocalServer, who: &Member, whom: &str) -> u16 {
    call(server, "PUT", &format!("/v1/me/blocks/{whom}"), who)
        .await
        .0
}

async fn follow(server: &LocalServer, who: &Member, whom: &str) -> (u16, Value) {
    call(server, "PUT", &format!("/v1/me/following/{whom}"), who).await
}

fn ids(body: &Value) -> Vec<&str> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect()
}

/// Each member's counts equal their edges, as stored.
async fn assert_counts_match_edges(server: &LocalServer, members: &[&Member]) {
    for m in members {
        let p = profile(server, &m.id).await;
        let followers = records(server, format!("FOLLOWERS#{}", m.id)).await;
        let following = records(server, format!("FOLLOWING#{}", m.id)).await;
        assert_eq!(
            (p["followers_count"].clone(), p["following_count"].clone()),
            (json!(followers), json!(following)),
            "{}",
            m.id
        );
    }
}

async fn block_unblock_and_the_list(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let alice = server.member("alice", false).await;
    let bob = server.member("bob", false).await;
    let carol = server.member("carol", false).await;

    assert_eq!(block(&server, &alice, &bob.id).await, 204);
    assert_eq!(block(&server, &alice, &bob.id).await, 204, "idempotent");
    assert_eq!(block(&server, &alice, &carol.id).await, 204);
    assert_eq!(records(&server, format!("BLOCKS#{}", alice.id)).await, 2);

    let (status, list) = call(&server, "GET", "/v1/me/blocks", &alice).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        ids(&list),
        [carol.id.as_str(), bob.id.as_str()],
        "newest first"
    );
    let first = &list["items"][0];
    assert_eq!(keys(first), ["avatar_url", "blocked_at", "id", "nickname"]);
    assert_eq!(
        first["nickname"],
        profile(&server, &carol.id).await["nickname"]
    );
    assert!(first["blocked_at"].as_str().unwrap().ends_with('Z'));

    // One at a time, through the cursor.
    let (_, page) = call(&server, "GET", "/v1/me/blocks?limit=1", &alice).await;
    assert_eq!(ids(&page), [carol.id.as_str()]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page) = call(
        &server,
        "GET",
        &format!("/v1/me/blocks?limit=1&cursor={cursor}"),
        &alice,
    )
    .await;
    assert_eq!(ids(&page), [bob.id.as_str()]);

    // Bob's own list is his alone.
    let (_, his) = call(&server, "GET", "/v1/me/blocks", &bob).await;
    assert_eq!(his["items"], json!([]));

    let unblock = format!("/v1/me/blocks/{}", bob.id);
    assert_eq!(call(&server, "DELETE", &unblock, &alice).await.0, 204);
    assert_eq!(
        call(&server, "DELETE", &unblock, &alice).await.0,
        204,
        "idempotent"
    );
    let (_, list) = call(&server, "GET", "/v1/me/blocks", &alice).await;
    assert_eq!(ids(&list), [carol.id.as_str()]);
    assert_eq!(records(&server, format!("BLOCKS#{}", alice.id)).await, 1);
}

async fn a_blocked_member_can_neither_follow_nor_order_the_blocker(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let seller = server.member("seller", true).await;
    let buyer = server.member("buyer", false).await;
    let listing = api.create_listing(&seller, service("婚礼跟拍")).await;
    let listing_id = listing["id"].as_str().unwrap();

    assert_eq!(block(&server, &seller, &buyer.id).await, 204);

    // No follow: 403 blocked, the counts and edges unchanged.
    let (status, body) = follow(&server, &buyer, &seller.id).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("blocked")));
    assert_eq!(profile(&server, &seller.id).await["followers_count"], 0);
    assert_eq!(profile(&server, &buyer.id).await["following_count"], 0);
    assert_eq!(records(&server, format!("FOLLOWING#{}", buyer.id)).await, 0);

    // No order: 403 blocked, nothing created, and the Idempotency-Key kept no answer (the same
    // key works once the block is lifted).
    let body = json!({"listing_id": listing_id, "quantity": 1}).to_string();
    let order = |key: &'static str| {
        let body = body.clone();
        let token = buyer.token.clone();
        async move {
            api.send(
                "POST",
                "/v1/orders",
                Some(&token),
                Some(body),
                &[("Idempotency-Key", key)],
            )
            .await
        }
    };
    let refused = order("order-1").await;
    assert_eq!((refused.status, refused.error_code()), (403, "blocked"));
    let again = order("order-1").await;
    assert_eq!((again.status, again.error_code()), (403, "blocked"));
    assert_eq!(
        records(&server, format!("ORDERS#{}#buyer", buyer.id)).await,
        0
    );
    assert_eq!(
        records(&server, format!("ORDERS#{}#seller", seller.id)).await,
        0
    );
    let (_, mine) = call(&server, "GET", "/v1/orders?role=buyer", &buyer).await;
    assert_eq!(mine["items"], json!([]), "{mine}");

    // The blocker still sees the blocked member, and everyone still sees the blocker's listing.
    assert_eq!(
        call(&server, "GET", &format!("/v1/users/{}", buyer.id), &seller)
            .await
            .0,
        200
    );
    let seen = api
        .call(
            "GET",
            &format!("/v1/listings/{listing_id}"),
            Some(&buyer.token),
            None,
        )
        .await;
    assert_eq!(seen.status, 200, "{seen:?}");

    // Unblocked: both work again, and the key that was refused now creates the order.
    let unblock = format!("/v1/me/blocks/{}", buyer.id);
    assert_eq!(call(&server, "DELETE", &unblock, &seller).await.0, 204);
    assert_eq!(follow(&server, &buyer, &seller.id).await.0, 204);
    assert_eq!(profile(&server, &seller.id).await["followers_count"], 1);
    let created = order("order-1").await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(
        records(&server, format!("ORDERS#{}#buyer", buyer.id)).await,
        1
    );
}

async fn a_block_ends_the_follows_both_ways(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let alice = server.member("alice", false).await;
    let bob = server.member("bob", false).await;
    let carol = server.member("carol", false).await;
    assert_eq!(follow(&server, &alice, &bob.id).await.0, 204);
    assert_eq!(follow(&server, &bob, &alice.id).await.0, 204);
    assert_eq!(follow(&server, &carol, &alice.id).await.0, 204);
    assert_eq!(follow(&server, &alice, &carol.id).await.0, 204);

    assert_eq!(block(&server, &alice, &bob.id).await, 204);
    let a = profile(&server, &alice.id).await;
    assert_eq!(
        (&a["followers_count"], &a["following_count"]),
        (&json!(1), &json!(1))
    );
    let b = profile(&server, &bob.id).await;
    assert_eq!(
        (&b["followers_count"], &b["following_count"]),
        (&json!(0), &json!(0))
    );
    assert_counts_match_edges(&server, &[&alice, &bob, &carol]).await;
    let (_, followers) = call(
        &server,
        "GET",
        &format!("/v1/users/{}/followers", alice.id),
        &alice,
    )
    .await;
    assert_eq!(ids(&followers), [carol.id.as_str()]);

    // Blocking again changes nothing; an edge only one way is ended too.
    assert_eq!(block(&server, &alice, &bob.id).await, 204);
    assert_eq!(block(&server, &carol, &alice.id).await, 204);
    assert_counts_match_edges(&server, &[&alice, &bob, &carol]).await;
    let c = profile(&server, &carol.id).await;
    assert_eq!(
        (&c["followers_count"], &c["following_count"]),
        (&json!(0), &json!(0))
    );

    // Unblocking does not bring the follows back.
    let unblock = format!("/v1/me/blocks/{}", bob.id);
    assert_eq!(call(&server, "DELETE", &unblock, &alice).await.0, 204);
    assert_eq!(profile(&server, &bob.id).await["following_count"], 0);
    assert_counts_match_edges(&server, &[&alice, &bob, &carol]).await;
}

async fn a_block_racing_follows_never_leaves_a_follow_by_the_blocked(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    for round in 0..12 {
        let owner = server.member(&format!("owner-{round}"), false).await;
        let fan = server.member(&format!("fan-{round}"), false).await;
        // The owner follows the fan already in odd rounds: that edge must end too.
        if round % 2 == 1 {
            assert_eq!(follow(&server, &owner, &fan.id).await.0, 204);
        }
        let mut calls = Vec::new();
        for n in 0..6 {
            let api = server.api.clone();
            let (token, path) = if n == 3 {
                (owner.token.clone(), format!("/v1/me/blocks/{}", fan.id))
            } else {
                let method_path = format!("/v1/me/following/{}", owner.id);
                (fan.token.clone(), method_path)
            };
            let method = if n == 3 || n % 2 == 0 {
                "PUT"
            } else {
                "DELETE"
            };
            calls.push(tokio::spawn(async move {
                let reply = api.call(method, &path, Some(&token), None).await;
                (method, path, reply.status, reply.body)
            }));
        }
        for call in calls {
            let (method, path, status, body) = call.await.unwrap();
            let ok = status == 204
                || (path.contains("following")
                    && status == 403
                    && body["error"]["code"] == "blocked");
            assert!(ok, "{method} {path}: {status} {body}");
        }
        assert_eq!(
            records(&server, format!("FOLLOWING#{}", fan.id)).await,
            0,
            "round {round}: the blocked member follows the blocker"
        );
        assert_eq!(records(&server, format!("FOLLOWING#{}", owner.id)).await, 0);
        assert_counts_match_edges(&server, &[&owner, &fan]).await;
        let (status, body) = follow(&server, &fan, &owner.id).await;
        assert_eq!((status, &body["error"]["code"]), (403, &json!("blocked")));
    }
}

async fn bad_input_is_refused_with_nothing_written(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let alice = server.member("alice", false).await;
    let bob = server.member("bob", false).await;
    let path = format!("/v1/me/blocks/{}", bob.id);

    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        ("PUT", "/v1/me/blocks/nope".into(), None, 404, "not_found"),
        (
            "PUT",
            format!("/v1/me/blocks/{}", UserId::generate()),
            None,
            404,
            "not_found",
        ),
        (
            "PUT",
            format!("/v1/me/blocks/{}", alice.id),
            None,
            422,
            "invalid_field",
        ),
        (
            "DELETE",
            format!("/v1/me/blocks/{}", alice.id),
            None,
            422,
            "invalid_field",
        ),
        (
            "PUT",
            path.clone(),
            Some(r#"{"reason":"spam"}"#.into()),
            422,
            "",
        ),
        ("PUT", path.clone(), Some("{".into()), 400, "malformed_json"),
        (
            "PUT",
            format!("{path}?until=2027"),
            None,
            422,
            "invalid_field",
        ),
        ("DELETE", format!("{path}?x=1"), None, 422, "invalid_field"),
        (
            "GET",
            "/v1/me/blocks?limit=0".into(),
            None,
            422,
            "invalid_field",
        ),
        (
            "GET",
            "/v1/me/blocks?user=1".into(),
            None,
            422,
            "invalid_field",
        ),
        ("GET", "/v1/me/blocks?cursor=forged".into(), None, 422, ""),
    ];
    for (method, path, body, status, code) in cases {
        let reply = api.raw(method, &path, Some(&alice.token), body).await;
        assert_eq!(reply.status, status, "{method} {path}: {reply:?}");
        if !code.is_empty() {
            assert_eq!(reply.error_code(), code, "{method} {path}");
        }
    }
    let own = api
        .call(
            "PUT",
            &format!("/v1/me/blocks/{}", alice.id),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(own.body["error"]["field"], json!("user_id"));
    let query = api
        .call(
            "PUT",
            &format!("{path}?until=2027"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(query.body["error"]["field"], json!("until"));
    // Without a session: 401 on each route.
    for (method, path) in [
        ("PUT", &path),
        ("DELETE", &path),
        ("GET", &"/v1/me/blocks".into()),
    ] {
        assert_eq!(
            api.call(method, path, None, None).await.status,
            401,
            "{method}"
        );
    }
    assert_eq!(records(&server, format!("BLOCKS#{}", alice.id)).await, 0);
    assert_eq!(records(&server, format!("BLOCKS#{}", bob.id)).await, 0);
    // A body of `{}` is no body: accepted.
    let empty = api
        .raw("PUT", &path, Some(&alice.token), Some("{}".into()))
        .await;
    assert_eq!(empty.status, 204, "{empty:?}");
}

on_both_stores!(
    block_unblock_and_the_list,
    a_blocked_member_can_neither_follow_nor_order_the_blocker,
    a_block_ends_the_follows_both_ways,
    a_block_racing_follows_never_leaves_a_follow_by_the_blocked,
    bad_input_is_refused_with_nothing_written,
);
