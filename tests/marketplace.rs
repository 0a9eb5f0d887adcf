//! Listings, browsing, favourites, follows and shares over HTTP against the local server, on
//! both stores.

use renji_shared::domain::listings;
use renji_shared::ids::{ListingId, UserId};
use renji_shared::store::{keys, Item, Query, Write};
use renji_tests::{on_both_stores, service, Backend, LocalServer};
use serde_json::{json, Value};

/// A member logged in through the sandbox; `verified` members may publish.
async fn raw_listing(server: &LocalServer, id: &str) -> Option<Item> {
    server
        .app()
        .store
        .get(&keys::listing(&ListingId::parse(id).unwrap()))
        .await
        .unwrap()
}

async fn profile(server: &LocalServer, id: &str) -> Value {
    server
        .api
        .call("GET", &format!("/v1/users/{id}"), None, None)
        .await
        .body
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn owners_alone_change_their_listings(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let a = server.member("owner-a", true).await;
    let b = server.member("other-b", true).await;

    let mut draft = service("婚礼摄影师");
    draft["status"] = json!("draft");
    let listing = api.create_listing(&a, draft).await;
    let id = listing["id"].as_str().unwrap().to_owned();
    assert_eq!(listing["status"], json!("draft"));
    assert_eq!(listing["owner_id"], json!(a.id));
    let path = format!("/v1/listings/{id}");
    let stored = raw_listing(&server, &id).await;

    // B cannot read, edit or remove A's draft: it does not exist for B.
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"title": "mine now"}))),
        ("DELETE", None),
    ] {
        let reply = api.call(method, &path, Some(&b.token), body).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (404, "not_found"),
            "{method}"
        );
    }
    assert_eq!(api.call("GET", &path, None, None).await.status, 404);
    assert_eq!(
        raw_listing(&server, &id).await,
        stored,
        "B changed A's draft"
    );

    let published = api
        .call(
            "PATCH",
            &path,
            Some(&a.token),
            Some(json!({"status": "published"})),
        )
        .await;
    assert_eq!(published.status, 200, "{published:?}");
    assert_eq!(profile(&server, &a.id).await["listings_count"], json!(1));
    assert_eq!(
        api.call("GET", &path, Some(&b.token), None).await.status,
        200
    );
    let stored = raw_listing(&server, &id).await;
    for (method, body) in [("PATCH", Some(json!({"price_fen": 1}))), ("DELETE", None)] {
        let reply = api.call(method, &path, Some(&b.token), body).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (403, "forbidden"),
            "{method}"
        );
    }
    assert_eq!(
        raw_listing(&server, &id).await,
        stored,
        "B changed A's listing"
    );

    let edited = api
        .call(
            "PATCH",
            &path,
            Some(&a.token),
            Some(json!({"title": "婚礼跟拍摄影师", "price_fen": 300_000, "location": null})),
        )
        .await;
    assert_eq!(edited.status, 200);
    assert_eq!(edited.body["price_fen"], json!(300_000));
    let closed = api
        .call(
            "PATCH",
            &path,
            Some(&a.token),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(closed.body["status"], json!("closed"));
    assert_eq!(profile(&server, &a.id).await["listings_count"], json!(0));
    let back = api
        .call(
            "PATCH",
            &path,
            Some(&a.token),
            Some(json!({"status": "draft"})),
        )
        .await;
    assert_eq!(
        (back.status, back.error_code()),
        (409, "invalid_transition")
    );

    assert_eq!(
        api.call("DELETE", &path, Some(&a.token), None).await.status,
        204
    );
    assert_eq!(
        api.call("DELETE", &path, Some(&a.token), None).await.status,
        204
    );
    assert_eq!(
        api.call("GET", &path, Some(&b.token), None).await.status,
        404
    );
    let own = api.call("GET", &path, Some(&a.token), None).await;
    assert_eq!(
        own.body["status"],
        json!("removed"),
        "the record stays for orders"
    );
    let edit_removed = api
        .call("PATCH", &path, Some(&a.token), Some(json!({"title": "x"})))
        .await;
    assert_eq!(edit_removed.status, 409);
}

async fn only_verified_members_publish_and_clients_set_no_server_fields(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let unverified = server.member("unverified-c", false).await;
    let reply = api
        .call(
            "POST",
            "/v1/listings",
            Some(&unverified.token),
            Some(service("摄影")),
        )
        .await;
    assert_eq!((reply.status, reply.error_code()), (403, "forbidden"));
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("verification"));
    let mine = api
        .call(
            "GET",
            &format!("/v1/users/{}/listings", unverified.id),
            None,
            None,
        )
        .await;
    assert_eq!(mine.body["items"], json!([]));

    let a = server.member("verified-d", true).await;
    for (field, value) in [
        ("owner_id", json!(unverified.id)),
        ("status", json!("removed")),
        ("status", json!("taken_down")),
        ("favorites_count", json!(100)),
        ("shares_count", json!(100)),
        ("created_at", json!("2020-01-01T00:00:00Z")),
        ("id", json!("l_01hzz")),
        ("version", json!(9)),
    ] {
        let mut body = service("摄影");
        body[field] = value;
        let reply = api
            .call("POST", "/v1/listings", Some(&a.token), Some(body))
            .await;
        assert!(matches!(reply.status, 400 | 422), "{field}: {reply:?}");
    }
    let listing = api.create_listing(&a, service("摄影")).await;
    let path = format!("/v1/listings/{}", listing["id"].as_str().unwrap());
    let before = raw_listing(&server, listing["id"].as_str().unwrap()).await;
    for patch in [
        json!({"owner_id": unverified.id}),
        json!({"status": "removed"}),
        json!({"favorites_count": 5}),
        json!({"kind": "recruitment"}),
        json!({"published_at": "2020-01-01T00:00:00Z"}),
    ] {
        let reply = api
            .call("PATCH", &path, Some(&a.token), Some(patch.clone()))
            .await;
        assert_eq!(reply.status, 422, "{patch}: {reply:?}");
    }
    assert_eq!(
        raw_listing(&server, listing["id"].as_str().unwrap()).await,
        before
    );
    // Nothing above created a listing.
    let all = api
        .call("GET", &format!("/v1/users/{}/listings", a.id), None, None)
        .await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
}

async fn browsing_filters_pages_and_searches(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let a = server.member("seller-e", true).await;
    let mut made = Vec::new();
    for (title, kind, category, city) in [
        ("婚礼摄影师", "service", "photography", "北京"),
        ("新娘化妆师", "service", "makeup", "北京"),
        ("短片招募摄影助理", "recruitment", "photography", "上海"),
        ("商业摄影棚出租", "service", "venue", "上海"),
        ("舞蹈演员招募", "recruitment", "dance", "北京"),
    ] {
        let mut body = service(title);
        body["kind"] = json!(kind);
        body["category"] = json!(category);
        body["city"] = json!(city);
        if kind == "recruitment" {
            body.as_object_mut().unwrap().remove("price_fen");
        }
        made.push(
            api.create_listing(&a, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut draft = service("草稿摄影");
    draft["status"] = json!("draft");
    api.create_listing(&a, draft).await;

    let get = |query: &'static str| async move {
        api.call("GET", &format!("/v1/listings{query}"), None, None)
            .await
    };
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(ids(&get("").await.body), newest_first, "drafts never show");
    assert_eq!(
        ids(&get("?city=北京").await.body),
        [made[4].clone(), made[1].clone(), made[0].clone()]
    );
    assert_eq!(
        ids(&get("?kind=recruitment").await.body),
        [made[4].clone(), made[2].clone()]
    );
    assert_eq!(
        ids(&get("?kind=service&category=photography&city=北京")
            .await
            .body),
        [made[0].clone()]
    );
    assert!(ids(&get("?city=广州").await.body).is_empty());

    // Cursor pages: 2 + 2 + 1, the last saying nothing follows.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/listings?limit=2&cursor={c}"),
            None => "/v1/listings?limit=2".to_owned(),
        };
        let page = api.call("GET", &path, None, None).await.body;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);

    // Keyword search finds title words inside longer words.
    let photo = ids(&get("?q=摄影").await.body);
    assert_eq!(photo, [made[3].clone(), made[2].clone(), made[0].clone()]);
    assert_eq!(
        ids(&get("?q=摄影&kind=service").await.body),
        [made[3].clone(), made[0].clone()]
    );
    assert_eq!(ids(&get("?q=化妆").await.body), [made[1].clone()]);
    assert!(ids(&get("?q=厨师").await.body).is_empty());
    let summary = &get("?q=婚礼").await.body["items"][0];
    assert_eq!(summary["price_fen"], json!(288_000));
    assert!(summary.get("terms").is_none() && summary.get("pk").is_none());

    // A member's listings: published only, newest first.
    let theirs = api
        .call("GET", &format!("/v1/users/{}/listings", a.id), None, None)
        .await;
    assert_eq!(ids(&theirs.body), newest_first);
    let nobody = api
        .call(
            "GET",
            &format!("/v1/users/{}/listings", UserId::generate()),
            None,
            None,
        )
        .await;
    assert_eq!((nobody.status, nobody.error_code()), (404, "not_found"));

    // Removing takes a listing out of every index at once.
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/v1/listings/{}", made[0]),
            Some(&a.token),
            None
        )
        .await
        .status,
        204
    );
    assert!(!ids(&get("?q=婚礼").await.body).contains(&made[0]));
    assert!(!ids(&get("?city=北京").await.body).contains(&made[0]));
}

/// A point `km` kilometres north of (39.9, 116.4).
fn north_of_beijing(km: f64) -> Value {
    json!({"lat": 39.9 + km / 111.195, "lng": 116.4})
}

async fn nearby_returns_what_is_within_the_radius_nearest_first(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let a = server.member("seller-f", true).await;
    let mut at = Vec::new();
    for km in [9.0, 60.0, 1.0] {
        let mut body = service(&format!("{km} 公里外的摄影棚"));
        body["location"] = north_of_beijing(km);
        at.push(
            api.create_listing(&a, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let near = |radius: &str| format!("/v1/listings?near=39.9,116.4&radius_km={radius}");
    let ten = api.call("GET", &near("10"), None, None).await;
    assert_eq!(ten.status, 200, "{ten:?}");
    assert_eq!(
        ids(&ten.body),
        [at[2].clone(), at[0].clone()],
        "1 km then 9 km; 60 km is out"
    );
    let d0 = ten.body["items"][0]["distance_m"].as_i64().unwrap();
    let d1 = ten.body["items"][1]["distance_m"].as_i64().unwrap();
    assert!((990..=1010).contains(&d0), "{d0}");
    assert!((8990..=9010).contains(&d1), "{d1}");
    assert_eq!(
        ids(&api.call("GET", &near("0.5"), None, None).await.body),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&api.call("GET", &near("2"), None, None).await.body),
        [at[2].clone()]
    );
    assert_eq!(
        ids(&api.call("GET", &near("50"), None, None).await.body).len(),
        2
    );
    // Pages of one, nearest first.
    let first = api
        .call("GET", &format!("{}&limit=1", near("10")), None, None)
        .await
        .body;
    assert_eq!(ids(&first), [at[2].clone()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = api
        .call(
            "GET",
            &format!("{}&limit=1&cursor={cursor}", near("10")),
            None,
            None,
        )
        .await
        .body;
    assert_eq!(ids(&second), [at[0].clone()]);
    assert_eq!(second["next_cursor"], Value::Null);
    // Filters apply to nearby results too.
    let recruitments = api
        .call(
            "GET",
            &format!("{}&kind=recruitment", near("10")),
            None,
            None,
        )
        .await;
    assert!(ids(&recruitments.body).is_empty());
    for bad in [
        "/v1/listings?near=39.9,116.4&radius_km=51",
        "/v1/listings?near=39.9,116.4&radius_km=0",
        "/v1/listings?near=91,116.4",
        "/v1/listings?near=beijing",
        "/v1/listings?radius_km=5",
    ] {
        let reply = api.call("GET", bad, None, None).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (422, "invalid_field"),
            "{bad}"
        );
    }
}

/// Counts the records in a partition (favourites of a member, followers of a member).
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

async fn concurrent_favourites_keep_the_count_equal_to_the_records(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let seller = server.member("seller-g", true).await;
    let listing = api.create_listing(&seller, service("摄影")).await;
    let id = listing["id"].as_str().unwrap().to_owned();
    let mut fans = Vec::new();
    for n in 0..5 {
        fans.push(server.member(&format!("fan-{n}"), false).await);
    }
    let calls: Vec<_> = (0..50)
        .map(|n| {
            let api = api.clone();
            let token = fans[n % fans.len()].token.clone();
            let method = if n % 3 == 0 { "DELETE" } else { "PUT" };
            let path = format!("/v1/me/favorites/{id}");
            tokio::spawn(async move { api.call(method, &path, Some(&token), None).await.status })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 204);
    }
    let mut favourited = 0;
    for fan in &fans {
        favourited += records(&server, format!("FAVS#{}", fan.id)).await;
    }
    let stored = listings::get(&server.app().store, &ListingId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.favorites_count as usize, favourited);
    // Idempotent both ways.
    let fan = &fans[0];
    let path = format!("/v1/me/favorites/{id}");
    for method in ["PUT", "PUT", "DELETE", "DELETE", "PUT"] {
        assert_eq!(
            api.call(method, &path, Some(&fan.token), None).await.status,
            204
        );
    }
    let mine = api
        .call("GET", "/v1/me/favorites", Some(&fan.token), None)
        .await;
    assert_eq!(mine.body["items"][0]["listing"]["id"], json!(id));
    assert_eq!(mine.body["items"][0]["listing"]["available"], json!(true));
    // A removed listing shows as unavailable, and can still be unfavourited.
    let removed = api
        .call(
            "DELETE",
            &format!("/v1/listings/{id}"),
            Some(&seller.token),
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    let mine = api
        .call("GET", "/v1/me/favorites", Some(&fan.token), None)
        .await;
    assert_eq!(mine.status, 200);
    assert_eq!(
        mine.body["items"][0]["listing"],
        json!({"id": id, "available": false})
    );
    assert_eq!(
        api.call("DELETE", &path, Some(&fan.token), None)
            .await
            .status,
        204
    );
    // Neither removed nor unknown listings can be favourited.
    let gone = api.call("PUT", &path, Some(&fan.token), None).await;
    assert_eq!(gone.status, 404);
    let unknown = api
        .call(
            "PUT",
            &format!("/v1/me/favorites/{}", ListingId::generate()),
            Some(&fan.token),
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
}

async fn concurrent_follows_keep_the_counts_equal_to_the_records(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let star = server.member("star", false).await;
    let mut fans = Vec::new();
    for n in 0..5 {
        fans.push(server.member(&format!("follower-{n}"), false).await);
    }
    let calls: Vec<_> = (0..50)
        .map(|n| {
            let api = api.clone();
            let token = fans[n % fans.len()].token.clone();
            let method = if n % 3 == 0 { "DELETE" } else { "PUT" };
            let path = format!("/v1/me/following/{}", star.id);
            tokio::spawn(async move { api.call(method, &path, Some(&token), None).await.status })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 204);
    }
    let followers = records(&server, format!("FOLLOWERS#{}", star.id)).await;
    assert_eq!(
        profile(&server, &star.id).await["followers_count"],
        json!(followers)
    );
    for fan in &fans {
        let following = records(&server, format!("FOLLOWING#{}", fan.id)).await;
        assert_eq!(
            profile(&server, &fan.id).await["following_count"],
            json!(following)
        );
    }
    let list = api
        .call(
            "GET",
            &format!("/v1/users/{}/followers?limit=100", star.id),
            None,
            None,
        )
        .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), followers);
    assert!(list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f.get("birth_date").is_none() && f["followed_at"].is_string()));

    let me = &fans[0];
    let own = api
        .call(
            "PUT",
            &format!("/v1/me/following/{}", me.id),
            Some(&me.token),
            None,
        )
        .await;
    assert_eq!((own.status, own.error_code()), (422, "invalid_field"));
    // Unfollowing oneself is refused the same way (it was a 500: one profile touched twice).
    let own = api
        .call(
            "DELETE",
            &format!("/v1/me/following/{}", me.id),
            Some(&me.token),
            None,
        )
        .await;
    assert_eq!((own.status, own.error_code()), (422, "invalid_field"));
    assert_eq!(own.body["error"]["field"], json!("user_id"));
    let ghost = api
        .call(
            "PUT",
            &format!("/v1/me/following/{}", UserId::generate()),
            Some(&me.token),
            None,
        )
        .await;
    assert_eq!(ghost.status, 404);
    assert_eq!(
        records(&server, format!("FOLLOWING#{}", me.id)).await,
        profile(&server, &me.id).await["following_count"]
            .as_u64()
            .unwrap() as usize
    );
    let following = api
        .call("GET", &format!("/v1/users/{}/following", me.id), None, None)
        .await;
    assert_eq!(following.status, 200);
    let unknown = api
        .call(
            "GET",
            &format!("/v1/users/{}/followers", UserId::generate()),
            None,
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
}

async fn shares_are_recorded_counted_and_listed(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let seller = server.member("seller-h", true).await;
    let sharer = server.member("sharer", false).await;
    let listing = api.create_listing(&seller, service("摄影")).await;
    let id = listing["id"].as_str().unwrap();
    let path = format!("/v1/listings/{id}/shares");
    for channel in ["wechat_session", "wechat_timeline", "poster"] {
        let reply = api
            .call(
                "POST",
                &path,
                Some(&sharer.token),
                Some(json!({ "channel": channel })),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        assert_eq!(reply.body["channel"], json!(channel));
    }
    let shown = api
        .call("GET", &format!("/v1/listings/{id}"), None, None)
        .await;
    assert_eq!(shown.body["shares_count"], json!(3));
    let history = api
        .call("GET", "/v1/me/shares?limit=2", Some(&sharer.token), None)
        .await;
    assert_eq!(
        history.body["items"][0]["channel"],
        json!("poster"),
        "newest first"
    );
    assert_eq!(history.body["items"][0]["listing"]["id"], json!(id));
    assert!(history.body["next_cursor"].is_string());

    let before = raw_listing(&server, id).await;
    for (body, status) in [
        (json!({"channel": "carrier_pigeon"}), 422),
        (json!({"channel": "qq", "count": 100}), 422),
        (json!({}), 422),
    ] {
        let reply = api
            .call("POST", &path, Some(&sharer.token), Some(body))
            .await;
        assert_eq!(reply.status, status);
    }
    let anonymous = api
        .call("POST", &path, None, Some(json!({"channel": "qq"})))
        .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        raw_listing(&server, id).await,
        before,
        "refused shares changed the count"
    );
    let mut draft = service("草稿");
    draft["status"] = json!("draft");
    let draft = api.create_listing(&seller, draft).await;
    let reply = api
        .call(
            "POST",
            &format!("/v1/listings/{}/shares", draft["id"].as_str().unwrap()),
            Some(&sharer.token),
            Some(json!({"channel": "qq"})),
        )
        .await;
    assert_eq!(reply.status, 404, "a draft cannot be shared by others");
}

async fn staff_take_downs_show_their_reason_to_the_owner_only(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let a = server.member("seller-i", true).await;
    let listing = api.create_listing(&a, service("违规内容")).await;
    let id = listing["id"].as_str().unwrap();
    assert_eq!(profile(&server, &a.id).await["listings_count"], json!(1));
    listings::take_down(
        &server.app().store,
        &ListingId::parse(id).unwrap(),
        "图片含联系方式，违反发布规则",
    )
    .await
    .unwrap();
    let own = api
        .call("GET", &format!("/v1/listings/{id}"), Some(&a.token), None)
        .await;
    assert_eq!(own.body["status"], json!("taken_down"));
    assert_eq!(
        own.body["takedown_reason"],
        json!("图片含联系方式，违反发布规则")
    );
    assert_eq!(
        api.call("GET", &format!("/v1/listings/{id}"), None, None)
            .await
            .status,
        404
    );
    assert!(ids(&api.call("GET", "/v1/listings", None, None).await.body).is_empty());
    assert_eq!(profile(&server, &a.id).await["listings_count"], json!(0));
    let edit = api
        .call(
            "PATCH",
            &format!("/v1/listings/{id}"),
            Some(&a.token),
            Some(json!({"status": "published"})),
        )
        .await;
    assert_eq!(edit.status, 409);
    // Deleting it keeps the take-down and its reason: the owner is told, and nothing changes.
    let before = raw_listing(&server, id).await;
    for _ in 0..2 {
        let delete = api
            .call(
                "DELETE",
                &format!("/v1/listings/{id}"),
                Some(&a.token),
                None,
            )
            .await;
        assert_eq!(
            (delete.status, delete.error_code()),
            (409, "listing_taken_down")
        );
    }
    assert_eq!(raw_listing(&server, id).await, before);
    let own = api
        .call("GET", &format!("/v1/listings/{id}"), Some(&a.token), None)
        .await;
    assert_eq!(own.body["status"], json!("taken_down"));
    assert_eq!(
        own.body["takedown_reason"],
        json!("图片含联系方式，违反发布规则")
    );
    let mine = api
        .call(
            "GET",
            "/v1/me/listings?status=taken_down",
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(ids(&mine.body), [id]);
    assert_eq!(
        mine.body["items"][0]["takedown_reason"],
        json!("图片含联系方式，违反发布规则")
    );
}

async fn bad_input_on_marketplace_routes_changes_nothing(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let a = server.member("seller-j", true).await;
    let listing = api.create_listing(&a, service("摄影")).await;
    let id = listing["id"].as_str().unwrap().to_owned();
    let before = raw_listing(&server, &id).await;
    let path = format!("/v1/listings/{id}");

    let mut recruitment_with_price = service("招募");
    recruitment_with_price["kind"] = json!("recruitment");
    let mut no_price = service("摄影");
    no_price.as_object_mut().unwrap().remove("price_fen");
    let mut float_price = service("摄影");
    float_price["price_fen"] = json!(12.5);
    let mut ten_images = service("摄影");
    ten_images["images"] = json!(vec!["https://img.renji.world/a.jpg"; 10]);
    let mut http_video = service("摄影");
    http_video["video_url"] = json!("http://v.renji.world/a.mp4");
    let mut long_title = service(&"摄".repeat(41));
    long_title["status"] = json!("published");
    let mut bad_category = service("摄影");
    bad_category["category"] = json!("weapons");
    let mut bad_location = service("摄影");
    bad_location["location"] = json!({"lat": 95.0, "lng": 116.4});
    let mut closed = service("摄影");
    closed["status"] = json!("closed");
    for (what, body) in [
        ("recruitment with a price", recruitment_with_price),
        ("service without a price", no_price),
        ("float price", float_price),
        ("ten images", ten_images),
        ("http video", http_video),
        ("long title", long_title),
        ("unknown category", bad_category),
        ("latitude out of range", bad_location),
        ("created closed", closed),
    ] {
        let reply = api
            .call("POST", "/v1/listings", Some(&a.token), Some(body))
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (422, "invalid_field"),
            "{what}"
        );
    }
    for (what, raw, status) in [
        ("malformed", "{\"title\":".to_owned(), 400),
        ("wrong type", r#"{"title": 5}"#.to_owned(), 422),
        ("negative price", r#"{"price_fen": -1}"#.to_owned(), 422),
        (
            "huge body",
            format!(r#"{{"description":"{}"}}"#, "字".repeat(40_000)),
            413,
        ),
        ("unknown status", r#"{"status":"sold"}"#.to_owned(), 422),
    ] {
        let reply = api.raw("PATCH", &path, Some(&a.token), Some(raw)).await;
        assert_eq!(reply.status, status, "{what}: {reply:?}");
        reply.error_code();
    }
    // null on a field that cannot be cleared is refused, naming the field (it was ignored).
    for field in [
        "title",
        "price_fen",
        "category",
        "city",
        "description",
        "images",
        "status",
    ] {
        let reply = api
            .call("PATCH", &path, Some(&a.token), Some(json!({ field: null })))
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (422, "invalid_field"),
            "{field}: {reply:?}"
        );
        assert_eq!(reply.body["error"]["field"], json!(field), "{reply:?}");
    }
    // Text that hides something is refused in titles and descriptions too.
    for patch in [
        json!({"title": "婚礼\u{2028}摄影"}),
        json!({"title": "\u{3164}\u{3164}"}),
        json!({"title": "婚礼\u{200b}摄影"}),
        json!({"description": "全天\u{2029}跟拍"}),
        json!({"description": "全天\n\u{115f}"}),
    ] {
        let reply = api
            .call("PATCH", &path, Some(&a.token), Some(patch.clone()))
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (422, "invalid_field"),
            "{patch}"
        );
    }
    // An array is not a body: read as the fields in order it would create a listing.
    let array = json!([
        "service",
        "数组摄影",
        "",
        "photography",
        "北京",
        null,
        [],
        null,
        1000,
        "published"
    ]);
    let reply = api
        .call("POST", "/v1/listings", Some(&a.token), Some(array))
        .await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (422, "invalid_field"),
        "{reply:?}"
    );
    assert_eq!(reply.body["error"]["field"], json!("body"));
    let reply = api
        .call("PATCH", &path, Some(&a.token), Some(json!(["改标题"])))
        .await;
    assert_eq!(reply.body["error"]["field"], json!("body"), "{reply:?}");
    // Nor is a location an array, at any depth; and a missing field is named.
    let mut located = service("数组位置");
    located["location"] = json!([39.9, 116.4]);
    let reply = api
        .call("POST", "/v1/listings", Some(&a.token), Some(located))
        .await;
    assert_eq!(reply.status, 422, "{reply:?}");
    assert_eq!(reply.body["error"]["field"], json!("location"), "{reply:?}");
    let reply = api
        .call(
            "PATCH",
            &path,
            Some(&a.token),
            Some(json!({"location": [39.9, 116.4]})),
        )
        .await;
    assert_eq!(reply.body["error"]["field"], json!("location"), "{reply:?}");
    let mut untitled = service("无题");
    untitled.as_object_mut().unwrap().remove("title");
    let reply = api
        .call("POST", "/v1/listings", Some(&a.token), Some(untitled))
        .await;
    assert_eq!(reply.body["error"]["field"], json!("title"), "{reply:?}");
    let mine = api
        .call("GET", "/v1/me/listings", Some(&a.token), None)
        .await;
    assert_eq!(
        ids(&mine.body),
        vec![id.clone()],
        "only the one listing exists"
    );
    assert_eq!(raw_listing(&server, &id).await, before);
    for bad in [
        "/v1/listings?kind=job",
        "/v1/listings?category=weapons",
        "/v1/listings?limit=0",
        "/v1/listings?limit=101",
        "/v1/listings?cursor=garbage",
        "/v1/listings?q=%20%20",
        "/v1/listings?sort=price",
        "/v1/me/favorites?cursor=x",
        "/v1/me/listings?status=sold",
        "/v1/me/listings?sort=new",
        "/v1/me/listings?cursor=x",
    ] {
        let reply = api.call("GET", bad, Some(&a.token), None).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (422, "invalid_field"),
            "{bad}"
        );
    }
    for (method, bad) in [
        ("GET", "/v1/listings/not-an-id"),
        ("PUT", "/v1/me/favorites/not-an-id"),
        ("GET", "/v1/users/not-an-id/listings"),
        ("PUT", "/v1/me/following/not-an-id"),
    ] {
        let reply = api.call(method, bad, Some(&a.token), None).await;
        assert_eq!(reply.status, 404, "{bad}");
    }
    for (method, path) in [
        ("POST", "/v1/listings"),
        ("PUT", &*format!("/v1/me/favorites/{id}")),
        ("GET", "/v1/me/favorites"),
        ("GET", "/v1/me/shares"),
        ("GET", "/v1/me/listings"),
        ("PUT", &*format!("/v1/me/following/{}", a.id)),
    ] {
        let reply = api.call(method, path, None, Some(service("x"))).await;
        assert_eq!(reply.status, 401, "{method} {path}");
    }
    assert_eq!(raw_listing(&server, &id).await, before);
}

/// A removal racing its owner's own edits wins inside the call: it never answers a conflict, and
/// leaves no index entry of any version behind.
async fn a_removal_wins_against_its_owners_edits(backend: Backend) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    // Thousands of edits from one member: more than the write class's rate limit allows.
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let api = &server.api;
    let a = server.member("racer", true).await;
    for round in 0..4 {
        let mut body = service("婚礼摄影师");
        body["location"] = json!({"lat": 39.9087, "lng": 116.3975});
        let id = api.create_listing(&a, body).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/v1/listings/{id}");
        let edits = Arc::new(AtomicUsize::new(0));
        // Three loops editing at once (the owner's phone, tablet, web page…).
        let editors: Vec<_> = (0..3)
            .map(|editor| {
                let (api, token, path, edits) = (
                    api.clone(),
                    a.token.clone(),
                    path.clone(),
                    Arc::clone(&edits),
                );
                tokio::spawn(async move {
                    for n in 0..2000 {
                        let patch = json!({
                            "title": format!("婚礼摄影师{round}{editor}{n}"),
                            "price_fen": 100_000 + n,
                            "city": if n % 2 == 0 { "上海" } else { "北京" },
                        });
                        let reply = api.call("PATCH", &path, Some(&token), Some(patch)).await;
                        match (reply.status, reply.body["error"]["code"].as_str()) {
                            (200, _) => {
                                edits.fetch_add(1, Ordering::SeqCst);
                            }
                            (409, Some("listing_not_editable")) => return,
                            // The editors' own race with each other.
                            (409, Some("edit_conflict")) => {}
                            _ => panic!("an edit racing the removal answered {reply:?}"),
                        }
                    }
                    panic!("the removal never landed");
                })
            })
            .collect();
        // Remove while the editors are in full swing.
        while edits.load(Ordering::SeqCst) < 3 + round {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let removed = api.call("DELETE", &path, Some(&a.token), None).await;
        assert_eq!(removed.status, 204, "round {round}: {removed:?}");
        for editor in editors {
            editor.await.unwrap();
        }

        let own = api.call("GET", &path, Some(&a.token), None).await;
        assert_eq!(own.body["status"], json!("removed"));
        let stored = listings::get(&server.app().store, &ListingId::parse(&id).unwrap())
            .await
            .unwrap()
            .unwrap();
        for partition in ["FEED#all", "GEO#wx4g"] {
            let left = server
                .app()
                .store
                .query(Query::partition(partition).limit(1000))
                .await
                .unwrap()
                .items;
            assert!(
                left.iter().all(|e| e["id"] != json!(id)),
                "round {round}: {partition} still lists the removed listing"
            );
        }
        // Nor does any index of its last edited version (title words, city, place).
        for browse in [
            "/v1/listings".to_owned(),
            format!("/v1/listings?q={}", stored.title),
            format!("/v1/listings?city={}", stored.city),
            "/v1/listings?near=39.9087,116.3975&radius_km=1".to_owned(),
        ] {
            let found = api.call("GET", &browse, None, None).await;
            assert_eq!(found.status, 200, "{browse}: {found:?}");
            assert!(!ids(&found.body).contains(&id), "{browse}");
        }
        assert_eq!(profile(&server, &a.id).await["listings_count"], json!(0));
    }
    // A removal that fenced the listing and stopped there (its Lambda ended) leaves it
    // published but closed to edits; the owner's repeated DELETE completes it.
    let id = api.create_listing(&a, service("半途")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = keys::listing(&ListingId::parse(&id).unwrap());
    server
        .app()
        .store
        .write(
            Write::update(key)
                .set("retiring", true)
                .add("version", 1)
                .build(),
        )
        .await
        .unwrap();
    let path = format!("/v1/listings/{id}");
    let edit = api
        .call("PATCH", &path, Some(&a.token), Some(json!({"title": "改"})))
        .await;
    assert_eq!(
        (edit.status, edit.error_code()),
        (409, "listing_not_editable")
    );
    let shown = api.call("GET", &path, None, None).await;
    assert_eq!(shown.body["status"], json!("published"));
    assert!(shown.body.get("retiring").is_none());
    assert_eq!(
        api.call("DELETE", &path, Some(&a.token), None).await.status,
        204
    );
    let stored = raw_listing(&server, &id).await.unwrap();
    assert_eq!(stored["status"], json!("removed"));
    assert!(stored.get("retiring").is_none());
    assert!(!ids(&api.call("GET", "/v1/listings", None, None).await.body).contains(&id));
}

/// `GET /v1/me/listings`: the owner's own listings in every status, newest first, paged, as the
/// owner sees them; one status with `?status=`.
async fn owners_list_their_own_listings_in_every_status(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let a = server.member("seller-k", true).await;
    let b = server.member("seller-l", true).await;
    let mut draft = service("草稿");
    draft["status"] = json!("draft");
    let mut made = Vec::new();
    for body in [
        draft,
        service("发布"),
        service("关闭"),
        service("删除"),
        service("下架"),
    ] {
        made.push(
            api.create_listing(&a, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    api.create_listing(&b, service("别人的")).await;
    let [draft, published, closed, removed, taken_down] = made.clone().try_into().unwrap();
    let patch = |id: &str, body: Value| {
        let path = format!("/v1/listings/{id}");
        let token = a.token.clone();
        async move { api.call("PATCH", &path, Some(&token), Some(body)).await }
    };
    assert_eq!(
        patch(&closed, json!({"status": "closed"})).await.status,
        200
    );
    let path = format!("/v1/listings/{removed}");
    assert_eq!(
        api.call("DELETE", &path, Some(&a.token), None).await.status,
        204
    );
    listings::take_down(
        &server.app().store,
        &ListingId::parse(&taken_down).unwrap(),
        "违反发布规则",
    )
    .await
    .unwrap();

    let all = api
        .call("GET", "/v1/me/listings", Some(&a.token), None)
        .await;
    assert_eq!(all.status, 200, "{all:?}");
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(ids(&all.body), newest_first);
    let statuses: Vec<&Value> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["status"])
        .collect();
    assert_eq!(
        statuses,
        [
            &json!("taken_down"),
            &json!("removed"),
            &json!("closed"),
            &json!("published"),
            &json!("draft")
        ]
    );
    // The owner's view: the take-down reason, the counts.
    assert_eq!(
        all.body["items"][0]["takedown_reason"],
        json!("违反发布规则")
    );
    assert!(all.body["items"][4]["favorites_count"].is_i64());
    assert_eq!(all.body["next_cursor"], Value::Null);

    for (status, id) in [
        ("draft", &draft),
        ("published", &published),
        ("closed", &closed),
        ("removed", &removed),
        ("taken_down", &taken_down),
    ] {
        let one = api
            .call(
                "GET",
                &format!("/v1/me/listings?status={status}"),
                Some(&a.token),
                None,
            )
            .await;
        assert_eq!(ids(&one.body), vec![id.to_owned()], "{status}");
    }
    // A status change moves the listing between the per-status lists.
    assert_eq!(
        patch(&closed, json!({"status": "published"})).await.status,
        200
    );
    assert_eq!(patch(&draft, json!({"title": "草稿改"})).await.status, 200);
    let published_now = api
        .call(
            "GET",
            "/v1/me/listings?status=published",
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(
        ids(&published_now.body),
        [closed.clone(), published.clone()]
    );
    let closed_now = api
        .call("GET", "/v1/me/listings?status=closed", Some(&a.token), None)
        .await;
    assert_eq!(ids(&closed_now.body), Vec::<String>::new());

    // Pages of two, to the end, in order; a cursor belongs to its own list.
    let mut paged = Vec::new();
    let mut next = String::new();
    loop {
        let url = format!("/v1/me/listings?limit=2{next}");
        let page = api.call("GET", &url, Some(&a.token), None).await;
        assert_eq!(page.status, 200, "{page:?}");
        paged.extend(ids(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => next = format!("&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);
    let page = api
        .call(
            "GET",
            "/v1/me/listings?limit=1&status=published",
            Some(&a.token),
            None,
        )
        .await;
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let other = api
        .call(
            "GET",
            &format!("/v1/me/listings?status=draft&cursor={cursor}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!((other.status, other.error_code()), (422, "invalid_field"));

    // Each member sees only their own.
    let theirs = api
        .call("GET", "/v1/me/listings", Some(&b.token), None)
        .await;
    assert_eq!(theirs.body["items"].as_array().unwrap().len(), 1);
    assert!(!ids(&theirs.body).iter().any(|id| made.contains(id)));
}

/// Favourites show exactly the shapes `openapi.yaml` gives `ListingRef`: a public listing
/// (published, or closed: public but not available) as its summary with `available` and
/// `status`; one no longer public as `{id, available: false}` and nothing more.
async fn favourites_show_exactly_what_openapi_says(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let seller = server.member("seller-m", true).await;
    let fan = server.member("fan-m", false).await;
    let spec: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap(),
    )
    .unwrap();
    let properties = |schema: &str| -> Vec<String> {
        let schema = &spec["components"]["schemas"][schema];
        assert_eq!(
            schema["additionalProperties"],
            serde_yaml::Value::Bool(false)
        );
        let mut names: Vec<String> = schema["properties"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let mut made = Vec::new();
    for title in ["在售", "已关闭", "已删除", "已下架"] {
        let id = api.create_listing(&seller, service(title)).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let put = api
            .call(
                "PUT",
                &format!("/v1/me/favorites/{id}"),
                Some(&fan.token),
                None,
            )
            .await;
        assert_eq!(put.status, 204);
        made.push(id);
    }
    let [open, closed, removed, taken_down] = made.clone().try_into().unwrap();
    let reply = api
        .call(
            "PATCH",
            &format!("/v1/listings/{closed}"),
            Some(&seller.token),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(reply.status, 200);
    let reply = api
        .call(
            "DELETE",
            &format!("/v1/listings/{removed}"),
            Some(&seller.token),
            None,
        )
        .await;
    assert_eq!(reply.status, 204);
    listings::take_down(
        &server.app().store,
        &ListingId::parse(&taken_down).unwrap(),
        "违规",
    )
    .await
    .unwrap();

    let favourites = api
        .call("GET", "/v1/me/favorites", Some(&fan.token), None)
        .await;
    let by_id = |id: &str| -> Value {
        favourites.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["listing"].clone())
            .find(|l| l["id"] == json!(id))
            .unwrap_or_else(|| panic!("{id} missing from {favourites:?}"))
    };
    let sorted_keys = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    for (id, available, status) in [(&open, true, "published"), (&closed, false, "closed")] {
        let shown = by_id(id);
        assert_eq!(
            sorted_keys(&shown),
            properties("PublicListingRef"),
            "{shown}"
        );
        assert_eq!(shown["available"], json!(available));
        assert_eq!(shown["status"], json!(status));
    }
    for id in [&removed, &taken_down] {
        let shown = by_id(id);
        assert_eq!(sorted_keys(&shown), properties("GoneListingRef"));
        assert_eq!(shown, json!({"id": id, "available": false}));
    }
}

on_both_stores!(
    a_removal_wins_against_its_owners_edits,
    owners_list_their_own_listings_in_every_status,
    favourites_show_exactly_what_openapi_says,
    owners_alone_change_their_listings,
    only_verified_members_publish_and_clients_set_no_server_fields,
    browsing_filters_pages_and_searches,
    nearby_returns_what_is_within_the_radius_nearest_first,
    concurrent_favourites_keep_the_count_equal_to_the_records,
    concurrent_follows_keep_the_counts_equal_to_the_records,
    shares_are_recorded_counted_and_listed,
    staff_take_downs_show_their_reason_to_the_owner_only,
    bad_input_on_marketplace_routes_changes_nothing,
);
