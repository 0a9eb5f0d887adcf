//! Counts and orders that repetition must not move, over HTTP on both stores: a share counts
//! once per member, listing and channel per UTC day; an edit that changes nothing writes
//! nothing; re-publishing keeps a listing's first publication time and so its place in feeds.

use renji_shared::domain::shares::Channel;
use renji_shared::ids::{ListingId, UserId};
use renji_shared::store::{keys, Item, Query};
use renji_tests::{on_both_stores, service, Api, Backend, LocalServer, Member};
use serde_json::{json, Value};

async fn create(api: &Api, who: &Member, body: Value) -> String {
    let listing = api.create_listing(who, body).await;
    listing["id"].as_str().unwrap().to_owned()
}

async fn raw_listing(server: &LocalServer, id: &str) -> Item {
    server
        .app()
        .store
        .get(&keys::listing(&ListingId::parse(id).unwrap()))
        .await
        .unwrap()
        .unwrap()
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn a_share_counts_once_per_member_listing_and_channel_a_day(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let seller = server.member("seller", true).await;
    let sharer = server.member("sharer", false).await;
    let other = server.member("other", false).await;
    let id = create(api, &seller, service("婚礼跟拍")).await;
    let path = format!("/v1/listings/{id}/shares");
    let share = |who: &Member, channel: &str| {
        let token = who.token.clone();
        let body = json!({ "channel": channel });
        let path = path.clone();
        async move { api.call("POST", &path, Some(&token), Some(body)).await }
    };
    let count = || async {
        api.call("GET", &format!("/v1/listings/{id}"), None, None)
            .await
            .body["shares_count"]
            .clone()
    };

    let first = share(&sharer, "wechat_session").await;
    assert_eq!(first.status, 201, "{first:?}");
    let before = raw_listing(&server, &id).await;
    let history = |who: &Member| {
        let token = who.token.clone();
        async move {
            api.call("GET", "/v1/me/shares", Some(&token), None)
                .await
                .body
        }
    };
    let shown = history(&sharer).await;
    // The same share again, several times, some at once: the first record, 200, nothing written.
    let again: Vec<_> = (0..4).map(|_| share(&sharer, "wechat_session")).collect();
    for reply in futures_util::future::join_all(again).await {
        assert_eq!((reply.status, &reply.body), (200, &first.body));
    }
    assert_eq!(count().await, json!(1));
    assert_eq!(raw_listing(&server, &id).await, before);
    assert_eq!(history(&sharer).await, shown);
    let marker = server
        .app()
        .store
        .get(&keys::share_day(
            &UserId::parse(&sharer.id).unwrap(),
            &ListingId::parse(&id).unwrap(),
            Channel::WechatSession.as_str(),
            &today(),
        ))
        .await
        .unwrap()
        .expect("the day's marker");
    let ttl = marker["ttl"].as_i64().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now + 2 * 86_400 - 60..=now + 2 * 86_400).contains(&ttl));

    // Another channel, or another member, is another share.
    assert_eq!(share(&sharer, "poster").await.status, 201);
    assert_eq!(share(&other, "wechat_session").await.status, 201);
    assert_eq!(count().await, json!(3));
    assert_eq!(ids(&history(&sharer).await).len(), 2);

    // A listing no longer published cannot be shared, even as a repeat of today's share.
    let closed = api
        .call(
            "PATCH",
            &format!("/v1/listings/{id}"),
            Some(&seller.token),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200);
    let refused = share(&sharer, "wechat_session").await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (409, "listing_unavailable")
    );
}

async fn an_edit_that_changes_nothing_writes_nothing(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let owner = server.member("owner", true).await;
    let id = create(api, &owner, service("婚礼跟拍")).await;
    let path = format!("/v1/listings/{id}");
    let before = raw_listing(&server, &id).await;
    let shown = api.call("GET", &path, Some(&owner.token), None).await.body;
    let feed = api.call("GET", "/v1/listings", None, None).await.body;
    for patch in [
        json!({}),
        json!({"title": "婚礼跟拍"}),
        json!({"title": "  婚礼跟拍 "}),
        json!({"price_fen": 288_000, "city": "北京", "category": "photography"}),
        json!({"status": "published"}),
        json!({"location": null, "video_url": null}),
        json!({"images": []}),
    ] {
        let reply = api
            .call("PATCH", &path, Some(&owner.token), Some(patch.clone()))
            .await;
        assert_eq!((reply.status, &reply.body), (200, &shown), "{patch}");
        assert_eq!(raw_listing(&server, &id).await, before, "{patch} wrote");
    }
    assert_eq!(api.call("GET", "/v1/listings", None, None).await.body, feed);
    // A real change still writes, once.
    let changed = api
        .call(
            "PATCH",
            &path,
            Some(&owner.token),
            Some(json!({"price_fen": 300_000})),
        )
        .await;
    assert_eq!(changed.status, 200);
    assert_eq!(
        raw_listing(&server, &id).await["version"],
        json!(before["version"].as_i64().unwrap() + 1)
    );
}

async fn republishing_keeps_the_first_publication_time(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let owner = server.member("owner", true).await;
    let older = create(api, &owner, service("婚礼跟拍")).await;
    let newer = create(api, &owner, service("婚礼摄像")).await;
    let first = raw_listing(&server, &older).await["published_at"].clone();
    let feeds = [
        "/v1/listings".to_owned(),
        "/v1/listings?city=北京&kind=service".to_owned(),
        format!("/v1/users/{}/listings", owner.id),
    ];
    for feed in &feeds {
        let page = api.call("GET", feed, None, None).await.body;
        assert_eq!(ids(&page), [newer.clone(), older.clone()], "{feed}");
    }
    // A later second than every publication so far, so a new time would move it to the top.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let path = format!("/v1/listings/{older}");
    for status in ["closed", "published"] {
        let reply = api
            .call(
                "PATCH",
                &path,
                Some(&owner.token),
                Some(json!({ "status": status })),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["published_at"], first, "{status}");
    }
    for feed in &feeds {
        let page = api.call("GET", feed, None, None).await.body;
        assert_eq!(
            ids(&page),
            [newer.clone(), older.clone()],
            "{feed}: moved by re-publishing"
        );
    }
    // The keyword index keeps its place too.
    let found = api
        .call("GET", "/v1/listings?q=婚礼", None, None)
        .await
        .body;
    assert_eq!(ids(&found), [newer.clone(), older.clone()]);
    // One entry per feed partition: the closed interval left nothing behind.
    let all = server
        .app()
        .store
        .query(Query::partition("FEED#all"))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
}

on_both_stores!(
    a_share_counts_once_per_member_listing_and_channel_a_day,
    an_edit_that_changes_nothing_writes_nothing,
    republishing_keeps_the_first_publication_time,
);
