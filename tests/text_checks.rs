//! Text content security on both stores (`domain::moderation`): every public text field —
//! listing title and description (create and PATCH), nickname, review text, the seller's reply,
//! a member's message on an order ticket (read by the other party) — is checked before it is
//! stored. Risky → 422 `content_risky` and nothing written; review or 61010 → stored, hidden from
//! others, shown to its writer as `under_review`, then public on staff's approval or hidden with
//! the reason on rejection; WeChat unavailable → 503 with `Retry-After`, nothing written. The
//! writes go through the domain with a stand-in answering by the sandbox markers; reads and the
//! staff queue through the local server.

use renji_shared::domain::listings::{self, fields::ListingPatch, fields::NewListing, Listing};
use renji_shared::domain::members::{self, ProfilePatch};
use renji_shared::domain::reviews::{self, NewReview, ReplyBody};
use renji_shared::domain::tickets::{create::NewTicket, messages};
use renji_shared::ids::{ListingId, OrderId, ReviewId, TicketId, UserId};
use renji_shared::store::{keys, DynStore, Query};
use renji_shared::Error;
use renji_tests::{on_both_stores, service, Backend, FakeWechat, LocalServer, Member, Reply};
use serde_json::{json, Value};
use time::OffsetDateTime;

struct World {
    server: LocalServer,
    wechat: FakeWechat,
    seller: Member,
    other: Member,
    moderator: String,
    support: String,
}

impl World {
    async fn new(backend: Backend) -> Self {
        let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
        let seller = server.member("seller", true).await;
        let other = server.member("other", false).await;
        let moderator = server.api.staff_token("staff:mo:moderator").await;
        let support = server.api.staff_token("staff:su:support").await;
        World {
            server,
            wechat: FakeWechat::default(),
            seller,
            other,
            moderator,
            support,
        }
    }

    /// The media base URL the server's uploads live under.
    fn media_base(&self) -> &str {
        &self.server.app().config.media.base_url
    }

    fn store(&self) -> &DynStore {
        &self.server.app().store
    }

    fn asked(&self) -> usize {
        self.wechat.asked.lock().unwrap().len()
    }

    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.server.api.call(method, path, token, body).await
    }

    async fn create(&self, title: &str, description: &str) -> Result<Listing, Error> {
        let mut body = service(title);
        body["description"] = json!(description);
        let body: NewListing = serde_json::from_value(body).unwrap();
        let rules = listings::Rules::of(&self.server.app().config);
        let seller = UserId::parse(&self.seller.id).unwrap();
        listings::create(self.store(), &self.wechat, &rules, &seller, body).await
    }

    async fn patch(&self, id: &ListingId, patch: Value) -> Result<Listing, Error> {
        let patch: ListingPatch = serde_json::from_value(patch).unwrap();
        let rules = listings::Rules::of(&self.server.app().config);
        let seller = UserId::parse(&self.seller.id).unwrap();
        listings::update(self.store(), &self.wechat, &rules, &seller, id, patch).await
    }

    /// The seller's listings in every status, as stored.
    async fn mine(&self) -> usize {
        let seller = UserId::parse(&self.seller.id).unwrap();
        let page = self
            .store()
            .query(Query::partition(keys::mine(&seller)))
            .await
            .unwrap();
        page.items.len()
    }

    /// The staff queue as the moderator reads it.
    async fn queue(&self) -> Vec<Value> {
        let reply = self
            .call(
                Some(&self.moderator),
                "GET",
                "/admin/v1/moderation/texts",
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["items"].as_array().unwrap().clone()
    }

    async fn decide(&self, token: &str, id: &str, body: Value) -> Reply {
        self.call(
            Some(token),
            "POST",
            &format!("/admin/v1/moderation/texts/{id}/decision"),
            Some(body),
        )
        .await
    }

    /// The queue's one item about `kind`, its id.
    async fn queued(&self, kind: &str) -> (String, Value) {
        let queue = self.queue().await;
        let item = queue
            .iter()
            .find(|i| i["subject"]["kind"] == json!(kind))
            .unwrap_or_else(|| panic!("no {kind} in {queue:?}"))
            .clone();
        (item["id"].as_str().unwrap().to_owned(), item)
    }

    /// Public reads of a listing: the read by another member, the city feed, the keyword search.
    async fn public(&self, id: &ListingId, word: &str) -> (u16, bool, bool) {
        let read = self
            .call(
                Some(&self.other.token),
                "GET",
                &format!("/v1/listings/{id}"),
                None,
            )
            .await;
        let has = |r: &Reply| {
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["id"] == json!(id))
        };
        let feed = self.call(None, "GET", "/v1/listings?city=北京", None).await;
        assert_eq!(feed.status, 200, "{feed:?}");
        let search = self
            .call(None, "GET", &format!("/v1/listings?q={word}"), None)
            .await;
        assert_eq!(search.status, 200, "{search:?}");
        (read.status, has(&feed), has(&search))
    }
}

fn risky(result: Result<impl std::fmt::Debug, Error>, field: &str) {
    match result {
        Err(e @ Error::ContentRisky { .. }) => {
            assert_eq!(e.status().as_u16(), 422);
            assert_eq!(e.code(), "content_risky");
            let response = e.to_response();
            let body: Value = match response.body() {
                lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
                lambda_http::Body::Binary(b) => serde_json::from_slice(b).unwrap(),
                _ => Value::Null,
            };
            assert_eq!(body["error"]["field"], json!(field), "{body}");
            assert_eq!(body["error"]["label"], json!(20001), "{body}");
            assert_eq!(body["error"]["category"], json!("politics"), "{body}");
        }
        other => panic!("expected content_risky on {field}: {other:?}"),
    }
}

fn outage(result: Result<impl std::fmt::Debug, Error>) {
    match result {
        Err(e @ Error::Unavailable(_)) => {
            let response = e.to_response();
            assert_eq!(response.status().as_u16(), 503);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("expected 503: {other:?}"),
    }
}

async fn listing_texts(backend: Backend) {
    let w = World::new(backend).await;

    // Risky, on create: 422 naming the field, nothing written.
    risky(w.create("婚礼 sandbox-risky", "全天").await, "title");
    risky(
        w.create("婚礼跟拍", "全天 sandbox-risky").await,
        "description",
    );
    // WeChat unavailable: 503, nothing written.
    outage(w.create("婚礼跟拍", "sandbox-outage").await);
    assert_eq!(w.mine().await, 0);
    assert!(w.queue().await.is_empty());

    // Review: stored, not public, the owner sees it under review; staff approve → public.
    let held = w
        .create("婚礼摄影 sandbox-review", "全天跟拍")
        .await
        .unwrap();
    let hold = held.text_review.clone().expect("held");
    assert_eq!(hold.fields, vec!["title".to_owned()]);
    assert_eq!(hold.label, Some(21000));
    assert_eq!(w.public(&held.id, "婚礼摄影").await, (404, false, false));
    // Nor can it be ordered.
    let order = w
        .call(
            Some(&w.other.token),
            "POST",
            "/v1/orders",
            Some(json!({"listing_id": held.id, "quantity": 1})),
        )
        .await;
    assert_eq!(order.status, 404, "{order:?}");
    let own = w
        .call(
            Some(&w.seller.token),
            "GET",
            &format!("/v1/listings/{}", held.id),
            None,
        )
        .await;
    assert_eq!(own.status, 200);
    assert_eq!(own.body["text_review"]["state"], json!("under_review"));
    assert_eq!(own.body["text_review"]["fields"], json!(["title"]));
    // Not in the seller's public list either.
    let by_owner = w
        .call(
            None,
            "GET",
            &format!("/v1/users/{}/listings", w.seller.id),
            None,
        )
        .await;
    assert_eq!(by_owner.body["items"], json!([]), "{by_owner:?}");
    // Nor counted on the profile: the count is of what others find in that list.
    let listed_count = || async {
        let profile = w
            .call(None, "GET", &format!("/v1/users/{}", w.seller.id), None)
            .await;
        profile.body["listings_count"].clone()
    };
    assert_eq!(listed_count().await, json!(0));

    let (check, item) = w.queued("listing").await;
    assert_eq!(item["author_id"], json!(w.seller.id));
    assert_eq!(item["subject"]["listing_id"], json!(held.id));
    assert_eq!(
        item["texts"],
        json!([{"field": "title", "text": "婚礼摄影 sandbox-review"}])
    );
    assert_eq!(item["label"], json!(21000));
    assert_eq!(item["scene"], json!(3));
    // Support may not decide; a reason is required.
    assert_eq!(
        w.decide(
            &w.support,
            &check,
            json!({"decision": "approve", "reason": "ok"})
        )
        .await
        .status,
        403
    );
    let no_reason = w
        .decide(&w.moderator, &check, json!({"decision": "approve"}))
        .await;
    assert_eq!((no_reason.status, no_reason.field()), (422, "reason"));
    let approved = w
        .decide(
            &w.moderator,
            &check,
            json!({"decision": "approve", "reason": "婚礼摄影无问题"}),
        )
        .await;
    assert_eq!(approved.status, 200, "{approved:?}");
    assert_eq!(approved.body["decided"]["decision"], json!("approve"));
    assert_eq!(w.public(&held.id, "婚礼摄影").await, (200, true, true));
    assert_eq!(listed_count().await, json!(1));
    let again = w
        .decide(
            &w.moderator,
            &check,
            json!({"decision": "reject", "reason": "晚了"}),
        )
        .await;
    assert_eq!((again.status, again.error_code()), (409, "already_decided"));
    assert!(w.queue().await.is_empty());

    // 61010 (the author has not used the mini-program lately) → review; staff reject → stays
    // hidden, the owner sees why.
    let unjudged = w.create("儿童写真", "sandbox-61010 上门").await.unwrap();
    let hold = unjudged.text_review.clone().expect("held on 61010");
    assert_eq!(
        (hold.fields.clone(), hold.label),
        (vec!["description".to_owned()], None)
    );
    let (check, _) = w.queued("listing").await;
    let rejected = w
        .decide(
            &w.moderator,
            &check,
            json!({"decision": "reject", "reason": "含联系方式"}),
        )
        .await;
    assert_eq!(rejected.status, 200, "{rejected:?}");
    assert_eq!(
        w.public(&unjudged.id, "儿童写真").await,
        (404, false, false)
    );
    assert_eq!(
        listed_count().await,
        json!(1),
        "a rejected text is not counted"
    );
    let own = w
        .call(
            Some(&w.seller.token),
            "GET",
            &format!("/v1/listings/{}", unjudged.id),
            None,
        )
        .await;
    assert_eq!(own.body["text_review"]["state"], json!("rejected"));
    assert_eq!(own.body["text_review"]["reason"], json!("含联系方式"));
    // The owner changes the refused text: checked again, it passes, the listing is public.
    let fixed = w
        .patch(&unjudged.id, json!({"description": "上门拍摄"}))
        .await
        .unwrap();
    assert_eq!(fixed.text_review, None);
    assert_eq!(w.public(&unjudged.id, "儿童写真").await, (200, true, true));
    assert_eq!(listed_count().await, json!(2));

    // PATCH: only changed fields are checked; risky → 422 and nothing written.
    let before = w.asked();
    w.patch(&held.id, json!({"price_fen": 100_000}))
        .await
        .unwrap();
    w.patch(&held.id, json!({"title": "婚礼摄影 sandbox-review"}))
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(w.asked(), before, "an unchanged text is not checked again");
    risky(
        w.patch(&held.id, json!({"title": "婚礼 sandbox-risky"}))
            .await,
        "title",
    );
    risky(
        w.patch(&held.id, json!({"description": "sandbox-risky"}))
            .await,
        "description",
    );
    outage(
        w.patch(&held.id, json!({"description": "sandbox-outage"}))
            .await,
    );
    let stored = listings::get(w.store(), &held.id).await.unwrap().unwrap();
    assert_eq!(stored.title, "婚礼摄影 sandbox-review");
    assert_eq!(stored.description, "全天跟拍");
    assert_eq!(
        stored.version,
        held.version + 2,
        "only the approval and the price wrote"
    );
    // A description under review takes the listing out of every public view.
    let edited = w
        .patch(&held.id, json!({"description": "sandbox-review 夜景"}))
        .await
        .unwrap();
    assert_eq!(
        edited.text_review.unwrap().fields,
        vec!["description".to_owned()]
    );
    assert_eq!(w.public(&held.id, "婚礼摄影").await, (404, false, false));
    // Changed again to a passing text: public again, the stale queue item gone.
    w.patch(&held.id, json!({"description": "夜景"}))
        .await
        .unwrap();
    assert_eq!(w.public(&held.id, "婚礼摄影").await, (200, true, true));
    assert!(w.queue().await.is_empty());
}

async fn nickname(backend: Backend) {
    let w = World::new(backend).await;
    let me = UserId::parse(&w.other.id).unwrap();
    let set = |n: &str| serde_json::from_value::<ProfilePatch>(json!({ "nickname": n })).unwrap();
    members::update_profile(w.store(), &w.wechat, w.media_base(), &me, set("小王"))
        .await
        .unwrap();
    let path = format!("/v1/users/{}", w.other.id);
    let public = |w: &World| {
        let path = path.clone();
        let api = w.server.api.clone();
        async move { api.call("GET", &path, None, None).await.body["nickname"].clone() }
    };
    assert_eq!(public(&w).await, json!("小王"));

    risky(
        members::update_profile(
            w.store(),
            &w.wechat,
            w.media_base(),
            &me,
            set("sandbox-risky"),
        )
        .await,
        "nickname",
    );
    outage(
        members::update_profile(
            w.store(),
            &w.wechat,
            w.media_base(),
            &me,
            set("sandbox-outage"),
        )
        .await,
    );
    let stored = members::get(w.store(), &me).await.unwrap().unwrap();
    assert_eq!(
        (stored.own_nickname(), stored.nickname_review.is_none()),
        (Some("小王"), true)
    );

    // Review: the owner sees the new one under review, others the approved one.
    members::update_profile(
        w.store(),
        &w.wechat,
        w.media_base(),
        &me,
        set("王sandbox-review"),
    )
    .await
    .unwrap();
    let own = w.call(Some(&w.other.token), "GET", "/v1/me", None).await;
    assert_eq!(own.body["nickname"], json!("王sandbox-review"));
    assert_eq!(own.body["nickname_review"]["state"], json!("under_review"));
    assert_eq!(public(&w).await, json!("小王"));
    let (check, item) = w.queued("nickname").await;
    assert_eq!(item["scene"], json!(1));
    let approved = w
        .decide(
            &w.moderator,
            &check,
            json!({"decision": "approve", "reason": "可以"}),
        )
        .await;
    assert_eq!(approved.status, 200, "{approved:?}");
    assert_eq!(public(&w).await, json!("王sandbox-review"));

    // 61010 → review; rejected → others keep the approved one, the owner sees why.
    members::update_profile(
        w.store(),
        &w.wechat,
        w.media_base(),
        &me,
        set("老王sandbox-61010"),
    )
    .await
    .unwrap();
    let (check, _) = w.queued("nickname").await;
    let rejected = w
        .decide(
            &w.moderator,
            &check,
            json!({"decision": "reject", "reason": "冒充"}),
        )
        .await;
    assert_eq!(rejected.status, 200);
    assert_eq!(public(&w).await, json!("王sandbox-review"));
    let own = w.call(Some(&w.other.token), "GET", "/v1/me", None).await;
    assert_eq!(own.body["nickname_review"]["state"], json!("rejected"));
    assert_eq!(own.body["nickname_review"]["reason"], json!("冒充"));
}

/// A published listing of the seller (checked by the stand-in) and a completed order of it by
/// `other`.
async fn completed(w: &World) -> (ListingId, OrderId) {
    let listing = w.create("商务跟拍", "半天").await.unwrap();
    let order = w
        .server
        .completed_order(&w.seller, &w.other, listing.id.as_str())
        .await;
    (listing.id, OrderId::parse(&order).unwrap())
}

async fn review_and_reply(backend: Backend) {
    let w = World::new(backend).await;
    let (listing, order) = completed(&w).await;
    let buyer = UserId::parse(&w.other.id).unwrap();
    let seller = UserId::parse(&w.seller.id).unwrap();
    let window = w.server.app().config.review_window;
    let body = |text: &str| NewReview {
        rating: 5,
        text: text.into(),
        images: vec![],
    };
    let now = OffsetDateTime::now_utc();
    let review = |text: &str| {
        let body = body(text);
        let (w, order, buyer) = (&w, order.clone(), buyer.clone());
        async move {
            reviews::create(
                w.store(),
                &w.wechat,
                w.media_base(),
                window,
                &order,
                &buyer,
                &body,
                now,
            )
            .await
        }
    };
    risky(review("sandbox-risky 差").await, "text");
    outage(review("sandbox-outage").await);
    assert!(reviews::of_order(w.store(), &order)
        .await
        .unwrap()
        .is_none());

    let held = review("很好 sandbox-review").await.unwrap();
    let list = |token: Option<String>| {
        let path = format!("/v1/listings/{listing}/reviews");
        let w = &w;
        async move {
            let reply = w.call(token.as_deref(), "GET", &path, None).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.body["items"][0].clone()
        }
    };
    assert_eq!(list(None).await["text"], Value::Null);
    assert_eq!(list(None).await["rating"], json!(5));
    let own = list(Some(w.other.token.clone())).await;
    assert_eq!(own["text"], json!("很好 sandbox-review"));
    assert_eq!(own["text_review"]["state"], json!("under_review"));
    let (check, item) = w.queued("review").await;
    assert_eq!(item["subject"]["review_id"], json!(held.id));
    assert_eq!(item["scene"], json!(2));
    let approved = w
        .decide(
            &w.moderator,
            &check,
            json!({"decision": "approve", "reason": "ok"}),
        )
        .await;
    assert_eq!(approved.status, 200);
    assert_eq!(list(None).await["text"], json!("很好 sandbox-review"));

    // The seller's reply.
    let reply = |text: &str| {
        let body = ReplyBody { text: text.into() };
        let (w, id, seller) = (&w, held.id.clone(), seller.clone());
        async move { reviews::reply(w.store(), &w.wechat, &id, &seller, &body, now).await }
    };
    risky(reply("sandbox-risky").await, "text");
    outage(reply("sandbox-outage").await);
    assert!(reviews::get(w.store(), &held.id)
        .await
        .unwrap()
        .unwrap()
        .reply
        .is_none());
    reply("谢谢 sandbox-61010").await.unwrap();
    assert_eq!(list(None).await["reply"], Value::Null);
    let seen_by_seller = list(Some(w.seller.token.clone())).await;
    assert_eq!(seen_by_seller["reply"]["text"], json!("谢谢 sandbox-61010"));
    assert_eq!(
        seen_by_seller["reply"]["text_review"]["state"],
        json!("under_review")
    );
    let (check, _) = w.queued("reply").await;
    let rejected = w
        .decide(
            &w.moderator,
            &check,
            json!({"decision": "reject", "reason": "广告"}),
        )
        .await;
    assert_eq!(rejected.status, 200);
    assert_eq!(list(None).await["reply"], Value::Null);
    let seen_by_seller = list(Some(w.seller.token.clone())).await;
    assert_eq!(
        seen_by_seller["reply"]["text_review"]["reason"],
        json!("广告")
    );
    let _: ReviewId = held.id;
}

async fn ticket_messages(backend: Backend) {
    let w = World::new(backend).await;
    let (_, order) = completed(&w).await;
    let buyer = UserId::parse(&w.other.id).unwrap();
    let config = &w.server.app().config;
    let now = OffsetDateTime::now_utc();
    let ticket = |kind: &str, text: &str| {
        let body: NewTicket = serde_json::from_value(
            json!({"kind": kind, "subject": "进度", "text": text, "order_id": order}),
        )
        .unwrap();
        let (w, buyer) = (&w, buyer.clone());
        async move {
            renji_shared::domain::tickets::create::create(
                w.store(),
                &w.wechat,
                config,
                &buyer,
                &body,
                now,
            )
            .await
        }
    };
    // Staff alone read an `other` ticket: not checked.
    let before = w.asked();
    ticket("other", "sandbox-risky 发票").await.unwrap();
    assert_eq!(w.asked(), before);
    // The seller reads an order ticket: checked.
    risky(ticket("order", "sandbox-risky").await, "text");
    outage(ticket("order", "sandbox-outage").await);
    let made = ticket("order", "请尽快 sandbox-review").await.unwrap();
    let id = TicketId::parse(made["id"].as_str().unwrap()).unwrap();
    let read = |token: &str| {
        let path = format!("/v1/tickets/{id}");
        let (w, token) = (&w, token.to_owned());
        async move {
            let reply = w.call(Some(&token), "GET", &path, None).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.body["messages"].clone()
        }
    };
    assert_eq!(read(&w.seller.token).await[0]["text"], Value::Null);
    let own = read(&w.other.token).await;
    assert_eq!(own[0]["text"], json!("请尽快 sandbox-review"));
    assert_eq!(own[0]["text_review"]["state"], json!("under_review"));
    let (check, item) = w.queued("ticket_message").await;
    assert_eq!(item["subject"]["ticket_id"], json!(id));
    let approved = w
        .decide(
            &w.moderator,
            &check,
            json!({"decision": "approve", "reason": "ok"}),
        )
        .await;
    assert_eq!(approved.status, 200);
    assert_eq!(
        read(&w.seller.token).await[0]["text"],
        json!("请尽快 sandbox-review")
    );

    // A later message by the buyer: risky refused with nothing written, review held.
    let add = |text: &str| {
        let body: messages::NewMessage = serde_json::from_value(json!({ "text": text })).unwrap();
        let (w, id, buyer) = (&w, id.clone(), buyer.clone());
        async move {
            messages::add(
                w.store(),
                &w.wechat,
                w.media_base(),
                &id,
                &buyer,
                &body,
                now,
            )
            .await
        }
    };
    risky(add("sandbox-risky").await, "text");
    outage(add("sandbox-outage").await);
    assert_eq!(read(&w.other.token).await.as_array().unwrap().len(), 1);
    add("到哪了 sandbox-61010").await.unwrap();
    assert_eq!(read(&w.seller.token).await[1]["text"], Value::Null);
    let (check, _) = w.queued("ticket_message").await;
    let rejected = w
        .decide(
            &w.moderator,
            &check,
            json!({"decision": "reject", "reason": "辱骂"}),
        )
        .await;
    assert_eq!(rejected.status, 200);
    assert_eq!(read(&w.seller.token).await[1]["text"], Value::Null);
    assert_eq!(
        read(&w.other.token).await[1]["text_review"]["reason"],
        json!("辱骂")
    );
}

async fn staff_routes_refuse_bad_input(backend: Backend) {
    let w = World::new(backend).await;
    w.create("婚礼 sandbox-review", "全天").await.unwrap();
    let (check, _) = w.queued("listing").await;
    // Support may not read or decide.
    let read = w
        .call(Some(&w.support), "GET", "/admin/v1/moderation/texts", None)
        .await;
    assert_eq!((read.status, read.error_code()), (403, "forbidden_role"));
    let decide = w
        .decide(
            &w.support,
            &check,
            json!({"decision": "approve", "reason": "ok"}),
        )
        .await;
    assert_eq!(
        (decide.status, decide.error_code()),
        (403, "forbidden_role")
    );
    // No staff session: 401.
    let anonymous = w
        .call(None, "GET", "/admin/v1/moderation/texts", None)
        .await;
    assert_eq!(anonymous.status, 401);
    // Bad input, each naming what is wrong (or an unknown check: 404); nothing decided.
    let unknown = format!("{}.{}", w.seller.id, "0".repeat(26));
    for (id, body, status, field) in [
        (
            check.as_str(),
            json!({"decision": "maybe", "reason": "x"}),
            422,
            "decision",
        ),
        (
            check.as_str(),
            json!({"decision": "approve", "reason": "  "}),
            422,
            "reason",
        ),
        (
            check.as_str(),
            json!({"decision": "approve", "reason": "x", "extra": 1}),
            422,
            "extra",
        ),
        (
            unknown.as_str(),
            json!({"decision": "approve", "reason": "x"}),
            404,
            "",
        ),
        (
            "nonsense",
            json!({"decision": "approve", "reason": "x"}),
            404,
            "",
        ),
    ] {
        let bad = w.decide(&w.moderator, id, body).await;
        assert_eq!(bad.status, status, "{id}: {bad:?}");
        if !field.is_empty() {
            assert_eq!(bad.field(), field, "{bad:?}");
        }
    }
    for (query, field) in [("limit=0", ""), ("kind=x", "kind")] {
        let path = format!("/admin/v1/moderation/texts?{query}");
        let bad = w.call(Some(&w.moderator), "GET", &path, None).await;
        assert_eq!(bad.status, 422, "{bad:?}");
        if !field.is_empty() {
            assert_eq!(bad.field(), field, "{bad:?}");
        }
    }
    assert_eq!(w.queue().await.len(), 1);
    // The decision is audited with its reason.
    let admin = w.server.api.staff_token("staff:ad:admin").await;
    let ok = w
        .decide(
            &w.moderator,
            &check,
            json!({"decision": "approve", "reason": "无问题"}),
        )
        .await;
    assert_eq!(ok.status, 200);
    let trail = w
        .call(Some(&admin), "GET", "/admin/v1/audit?actor=mo", None)
        .await;
    let decided = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["action"] == json!("POST /admin/v1/moderation/texts/{id}/decision")
                && r["outcome"] == json!("ok")
        })
        .cloned()
        .unwrap_or_else(|| panic!("{trail:?}"));
    assert_eq!(decided["reason"], json!("无问题"));
}

/// Every write route through the local server and its WeChat sandbox (the markers of the
/// README): the answers members get.
async fn through_the_sandbox(backend: Backend) {
    let w = World::new(backend).await;
    let seller = Some(w.seller.token.as_str());
    let other = Some(w.other.token.as_str());
    let refused = |r: &Reply, field: &str| {
        assert_eq!(
            (r.status, r.error_code(), r.field()),
            (422, "content_risky", field),
            "{r:?}"
        );
        assert_eq!(r.body["error"]["label"], json!(20001), "{r:?}");
    };
    let unavailable = |r: &Reply| {
        assert_eq!(r.status, 503, "{r:?}");
        assert!(r.retry_after.is_some(), "{r:?}");
    };
    refused(
        &w.call(
            seller,
            "POST",
            "/v1/listings",
            Some(service("sandbox-risky")),
        )
        .await,
        "title",
    );
    unavailable(
        &w.call(
            seller,
            "POST",
            "/v1/listings",
            Some(service("sandbox-outage")),
        )
        .await,
    );
    assert_eq!(w.mine().await, 0);
    let held = w
        .call(
            seller,
            "POST",
            "/v1/listings",
            Some(service("婚纱 sandbox-review")),
        )
        .await;
    assert_eq!(held.status, 201, "{held:?}");
    assert_eq!(held.body["text_review"]["state"], json!("under_review"));
    let id = held.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        w.call(other, "GET", &format!("/v1/listings/{id}"), None)
            .await
            .status,
        404
    );
    let listing = w
        .call(seller, "POST", "/v1/listings", Some(service("婚纱摄影")))
        .await;
    assert_eq!(
        (listing.status, &listing.body["text_review"]),
        (201, &Value::Null)
    );
    let id = listing.body["id"].as_str().unwrap().to_owned();
    let patched = w
        .call(
            seller,
            "PATCH",
            &format!("/v1/listings/{id}"),
            Some(json!({"description": "sandbox-risky"})),
        )
        .await;
    refused(&patched, "description");

    refused(
        &w.call(
            other,
            "PATCH",
            "/v1/me",
            Some(json!({"nickname": "sandbox-risky"})),
        )
        .await,
        "nickname",
    );
    let me = w
        .call(
            other,
            "PATCH",
            "/v1/me",
            Some(json!({"nickname": "小sandbox-61010"})),
        )
        .await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["nickname_review"]["state"], json!("under_review"));
    let public = w
        .call(None, "GET", &format!("/v1/users/{}", w.other.id), None)
        .await;
    assert_eq!(public.body["nickname"], Value::Null);

    let order = w.server.completed_order(&w.seller, &w.other, &id).await;
    let path = format!("/v1/orders/{order}/reviews");
    refused(
        &w.call(
            other,
            "POST",
            &path,
            Some(json!({"rating": 5, "text": "sandbox-risky"})),
        )
        .await,
        "text",
    );
    let review = w
        .call(
            other,
            "POST",
            &path,
            Some(json!({"rating": 4, "text": "不错"})),
        )
        .await;
    assert_eq!(review.status, 201, "{review:?}");
    let reply_path = format!("/v1/reviews/{}/reply", review.body["id"].as_str().unwrap());
    let reply = w
        .call(
            seller,
            "POST",
            &reply_path,
            Some(json!({"text": "谢谢 sandbox-review"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body["reply"]["text_review"]["state"],
        json!("under_review")
    );
    let listed = w
        .call(None, "GET", &format!("/v1/listings/{id}/reviews"), None)
        .await;
    assert_eq!(listed.body["items"][0]["reply"], Value::Null);

    let ticket =
        json!({"kind": "order", "subject": "进度", "text": "sandbox-review", "order_id": order});
    let ticket = w.call(other, "POST", "/v1/tickets", Some(ticket)).await;
    assert_eq!(ticket.status, 201, "{ticket:?}");
    assert_eq!(
        ticket.body["messages"][0]["text_review"]["state"],
        json!("under_review")
    );
    let messages = format!(
        "/v1/tickets/{}/messages",
        ticket.body["id"].as_str().unwrap()
    );
    unavailable(
        &w.call(
            seller,
            "POST",
            &messages,
            Some(json!({"text": "sandbox-outage"})),
        )
        .await,
    );
    refused(
        &w.call(
            seller,
            "POST",
            &messages,
            Some(json!({"text": "sandbox-risky"})),
        )
        .await,
        "text",
    );
    let answer = w
        .call(seller, "POST", &messages, Some(json!({"text": "马上"})))
        .await;
    assert_eq!(
        (answer.status, &answer.body["text_review"]),
        (201, &Value::Null),
        "{answer:?}"
    );
    // Held texts wait for staff: the listing, the nickname, the reply, the ticket message.
    assert_eq!(w.queue().await.len(), 4);
}

/// A held listing, through the API: an edit that passes clears the hold of texts checked
/// together; others can neither favourite nor share it (404, no count moved); removing it takes
/// its text out of the staff queue.
async fn held_listings_edits_favourites_and_removal(backend: Backend) {
    let w = World::new(backend).await;
    let seller = Some(w.seller.token.as_str());
    let other = Some(w.other.token.as_str());
    let held = w
        .call(
            seller,
            "POST",
            "/v1/listings",
            Some(service("第一版 sandbox-review")),
        )
        .await;
    assert_eq!(
        held.body["text_review"]["state"],
        json!("under_review"),
        "{held:?}"
    );
    let path = format!("/v1/listings/{}", held.body["id"].as_str().unwrap());
    let again = w
        .call(
            seller,
            "PATCH",
            &path,
            Some(json!({"title": "第二版 sandbox-review"})),
        )
        .await;
    assert_eq!(
        again.body["text_review"]["state"],
        json!("under_review"),
        "{again:?}"
    );
    // Only the title changes, and passes: the description held with it is checked again.
    let clean = w
        .call(
            seller,
            "PATCH",
            &path,
            Some(json!({"title": "第三版 干净"})),
        )
        .await;
    assert_eq!(
        (clean.status, &clean.body["text_review"]),
        (200, &Value::Null),
        "{clean:?}"
    );
    assert_eq!(w.call(other, "GET", &path, None).await.status, 200);
    assert!(w.queue().await.is_empty());

    let held = w
        .call(
            seller,
            "POST",
            "/v1/listings",
            Some(service("第二个 sandbox-review")),
        )
        .await;
    let id = held.body["id"].as_str().unwrap().to_owned();
    let favourite = w
        .call(other, "PUT", &format!("/v1/me/favorites/{id}"), None)
        .await;
    assert_eq!(favourite.status, 404, "{favourite:?}");
    let share = w
        .call(
            other,
            "POST",
            &format!("/v1/listings/{id}/shares"),
            Some(json!({"channel": "link"})),
        )
        .await;
    assert_eq!(share.status, 404, "{share:?}");
    let mine = w
        .call(seller, "GET", &format!("/v1/listings/{id}"), None)
        .await;
    assert_eq!(
        (&mine.body["favorites_count"], &mine.body["shares_count"]),
        (&json!(0), &json!(0)),
        "{mine:?}"
    );
    assert_eq!(w.queue().await.len(), 1);
    let removed = w
        .call(seller, "DELETE", &format!("/v1/listings/{id}"), None)
        .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    assert!(
        w.queue().await.is_empty(),
        "a removed listing's text leaves the queue"
    );
}

on_both_stores!(
    held_listings_edits_favourites_and_removal,
    through_the_sandbox,
    listing_texts,
    nickname,
    review_and_reply,
    ticket_messages,
    staff_routes_refuse_bad_input,
);
