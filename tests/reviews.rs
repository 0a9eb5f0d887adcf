//! Reviews over HTTP against the local server, on both stores: once per order (even racing),
//! only the buyer of a completed order within the window, blocks, ratings that equal the visible
//! reviews (after edits racing them, and after staff hide one), the seller's one reply, the lists
//! and their cursors, and bad input on every route with nothing written.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use renji_shared::domain::blocks::Block;
use renji_shared::domain::listings::{self, fields::ListingPatch, Listing};
use renji_shared::domain::media::MediaStatus;
use renji_shared::domain::members::{self, Member as StoredMember};
use renji_shared::domain::reviews::{self, NewReview, Review};
use renji_shared::ids::{ListingId, OrderId, ReviewId, UserId};
use renji_shared::store::{
    keys, DynStore, Item, Key, Page, Query, Record, Store, StoreError, Write,
};
use renji_tests::Reply;
use renji_tests::{keys as field_names, on_both_stores, service, Backend, LocalServer, Member};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// A server without rate limits, a verified seller with a published service, two buyers and a
/// stranger.
struct World {
    server: LocalServer,
    seller: Member,
    buyer: Member,
    other_buyer: Member,
    stranger: Member,
    listing: String,
}

impl World {
    async fn new(backend: Backend) -> Self {
        let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
        let seller = server.member("seller", true).await;
        let buyer = server.member("buyer", false).await;
        let other_buyer = server.member("other-buyer", false).await;
        let stranger = server.member("stranger", false).await;
        for (who, nickname) in [(&buyer, "小王"), (&other_buyer, "小李")] {
            let reply = server
                .api
                .call(
                    "PATCH",
                    "/v1/me",
                    Some(&who.token),
                    Some(json!({"nickname": nickname, "birth_date": "1990-01-01"})),
                )
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
        }
        let listing = server
            .api
            .create_listing(&seller, service("婚礼跟拍"))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        World {
            server,
            seller,
            buyer,
            other_buyer,
            stranger,
            listing,
        }
    }

    fn store(&self) -> &DynStore {
        &self.server.app().store
    }

    async fn completed(&self, buyer: &Member) -> String {
        self.server
            .completed_order(&self.seller, buyer, &self.listing)
            .await
    }

    async fn call(
        &self,
        who: Option<&Member>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.server
            .api
            .call(method, path, who.map(|w| w.token.as_str()), body)
            .await
    }

    async fn review(&self, who: &Member, order: &str, body: Value) -> Reply {
        self.call(
            Some(who),
            "POST",
            &format!("/v1/orders/{order}/reviews"),
            Some(body),
        )
        .await
    }

    async fn listing_record(&self) -> Listing {
        listings::get(self.store(), &ListingId::parse(&self.listing).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    async fn seller_record(&self) -> StoredMember {
        members::get(self.store(), &UserId::parse(&self.seller.id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// `(rating_sum, rating_count)` of the listing and of the seller, as stored.
    async fn ratings(&self) -> ((i64, i64), (i64, i64)) {
        let l = self.listing_record().await;
        let m = self.seller_record().await;
        (
            (l.rating_sum, l.rating_count),
            (m.rating_sum, m.rating_count),
        )
    }

    /// The ratings as the public views show them.
    async fn shown_ratings(&self) -> ((Value, Value), (Value, Value)) {
        let l = self
            .call(None, "GET", &format!("/v1/listings/{}", self.listing), None)
            .await;
        let m = self
            .call(None, "GET", &format!("/v1/users/{}", self.seller.id), None)
            .await;
        assert_eq!((l.status, m.status), (200, 200));
        (
            (l.body["rating_sum"].clone(), l.body["rating_count"].clone()),
            (m.body["rating_sum"].clone(), m.body["rating_count"].clone()),
        )
    }

    /// The ids in a review list partition (`listing`, `seller` or `author`), as stored.
    async fn entries(&self, list: &str, id: &str) -> Vec<String> {
        let page = self
            .store()
            .query(Query::partition(keys::reviews_of(list, id)).descending())
            .await
            .unwrap();
        page.items
            .iter()
            .map(|i| i["review_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Nothing of a review of `order` is stored, and no rating moved.
    async fn nothing_written(&self, order: &str) {
        let marker = self
            .store()
            .get(&keys::order_review(&OrderId::parse(order).unwrap()))
            .await
            .unwrap();
        assert!(marker.is_none(), "a review marker for {order}");
        assert!(self.entries("listing", &self.listing).await.is_empty());
        assert!(self.entries("seller", &self.seller.id).await.is_empty());
        assert_eq!(self.ratings().await, ((0, 0), (0, 0)));
    }

    async fn list(&self, path: &str) -> Reply {
        self.call(None, "GET", path, None).await
    }
}

fn good() -> Value {
    json!({"rating": 5, "text": "  拍得很用心  "})
}

async fn a_review_is_written_once_even_when_two_race(backend: Backend) {
    let w = World::new(backend).await;
    let order = w.completed(&w.buyer).await;
    // With an image of the buyer's, its check not ended: shown to the author only.
    let image = w.server.upload(&w.buyer, "review_image", false).await;
    let mut body = good();
    body["images"] = json!([image]);
    let (a, b) = tokio::join!(
        w.review(&w.buyer, &order, body.clone()),
        w.review(&w.buyer, &order, body.clone())
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let (won, lost) = if a.status == 201 { (a, b) } else { (b, a) };
    assert_eq!(lost.error_code(), "already_reviewed", "{lost:?}");
    // The answer: the review as its author sees it (every image, with the held ones' state),
    // the author by their public card only.
    let review = &won.body;
    assert_eq!(
        field_names(review),
        [
            "author",
            "created_at",
            "id",
            "images",
            "listing",
            "media_states",
            "rating",
            "reply",
            "seller_id",
            "text",
            // Its author's answer: whether the text is held for staff (null: public).
            "text_review"
        ]
    );
    assert_eq!(review["images"], json!([image]));
    assert_eq!(
        review["media_states"],
        json!({ image.as_str(): {"state": "pending"} })
    );
    let listed = w.list(&format!("/v1/listings/{}/reviews", w.listing)).await;
    assert_eq!(listed.body["items"][0]["images"], json!([]), "{listed:?}");
    assert!(listed.body["items"][0].get("media_states").is_none());
    // Its check passes: everyone sees it.
    renji_tests::end_check(w.server.app(), &image, MediaStatus::Passed, "").await;
    let listed = w.list(&format!("/v1/listings/{}/reviews", w.listing)).await;
    assert_eq!(listed.body["items"][0]["images"], json!([image]));
    assert_eq!(
        field_names(&review["author"]),
        ["avatar_url", "id", "nickname"]
    );
    assert_eq!(review["author"]["nickname"], json!("小王"));
    assert_eq!(review["text"], json!("拍得很用心"), "trimmed");
    assert_eq!(
        review["listing"],
        json!({"id": w.listing, "title": "婚礼跟拍"})
    );
    assert_eq!(review["reply"], Value::Null);
    // One marker, one review, one entry per list, one rating each.
    let id = review["id"].as_str().unwrap();
    assert_eq!(w.entries("listing", &w.listing).await, [id]);
    assert_eq!(w.entries("seller", &w.seller.id).await, [id]);
    assert_eq!(w.entries("author", &w.buyer.id).await, [id]);
    assert_eq!(w.ratings().await, ((5, 1), (5, 1)));
    assert_eq!(
        w.shown_ratings().await,
        ((json!(5), json!(1)), (json!(5), json!(1)))
    );
    let stored = reviews::of_order(w.store(), &OrderId::parse(&order).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id.as_str(), id);
    // Later, alone: still 409.
    let again = w.review(&w.buyer, &order, json!({"rating": 1})).await;
    assert_eq!(
        (again.status, again.error_code()),
        (409, "already_reviewed")
    );
    assert_eq!(w.ratings().await, ((5, 1), (5, 1)));
}

async fn only_the_buyer_of_a_completed_order_within_its_window_reviews(backend: Backend) {
    let w = World::new(backend).await;
    let completed = w.completed(&w.buyer).await;
    // Strangers: the order's existence is private. Its seller knows it: 403.
    let r = w.review(&w.stranger, &completed, good()).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
    let r = w.review(&w.seller, &completed, good()).await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden"));
    let r = w
        .call(
            None,
            "POST",
            &format!("/v1/orders/{completed}/reviews"),
            Some(good()),
        )
        .await;
    assert_eq!(r.status, 401);
    // An order not completed: paid, accepted, refunded.
    let paid = w.server.paid_order(&w.buyer, &w.listing).await;
    let accepted = w.server.paid_order(&w.buyer, &w.listing).await;
    let r = w
        .call(
            Some(&w.seller),
            "POST",
            &format!("/v1/orders/{accepted}/accept"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let refunded = w.server.paid_order(&w.buyer, &w.listing).await;
    let r = w
        .call(
            Some(&w.buyer),
            "POST",
            &format!("/v1/orders/{refunded}/cancel"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut status = String::new();
    for _ in 0..100 {
        let r = w
            .call(
                Some(&w.buyer),
                "GET",
                &format!("/v1/orders/{refunded}"),
                None,
            )
            .await;
        status = r.body["status"].as_str().unwrap_or_default().to_owned();
        if status == "refunded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "refunded");
    for order in [&paid, &accepted, &refunded] {
        let r = w.review(&w.buyer, order, good()).await;
        assert_eq!(
            (r.status, r.error_code()),
            (409, "order_not_completed"),
            "{order}"
        );
        w.nothing_written(order).await;
    }
    // The window (RENJI_REVIEW_DAYS, 15 by default), with the clock moved: closed from 15 days
    // after completion on, nothing written; open just before.
    let store = w.store();
    let order_id = OrderId::parse(&completed).unwrap();
    let buyer = UserId::parse(&w.buyer.id).unwrap();
    let window = w.server.app().config.review_window;
    assert_eq!(window.as_secs(), 15 * 86400);
    let body: NewReview = serde_json::from_value(good()).unwrap();
    let completed_at = renji_shared::domain::orders::get(store, &order_id)
        .await
        .unwrap()
        .unwrap()
        .completed_at
        .unwrap();
    let completed_at = OffsetDateTime::parse(
        &completed_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let late = reviews::create(
        store,
        &renji_tests::FakeWechat::default(),
        "https://media.renji.world",
        window,
        &order_id,
        &buyer,
        &body,
        completed_at + window,
    )
    .await;
    assert!(
        matches!(
            &late,
            Err(renji_shared::Error::Conflict {
                code: "review_window_closed",
                ..
            })
        ),
        "{late:?}"
    );
    w.nothing_written(&completed).await;
    let just_in = completed_at + window - time::Duration::seconds(1);
    let review = reviews::create(
        store,
        &renji_tests::FakeWechat::default(),
        "https://media.renji.world",
        window,
        &order_id,
        &buyer,
        &body,
        just_in,
    )
    .await
    .unwrap();
    assert_eq!(review.rating, 5);
    assert_eq!(w.ratings().await, ((5, 1), (5, 1)));
}

async fn a_blocked_buyer_cannot_review(backend: Backend) {
    let w = World::new(backend).await;
    let order = w.completed(&w.buyer).await;
    let seller = UserId::parse(&w.seller.id).unwrap();
    let buyer = UserId::parse(&w.buyer.id).unwrap();
    let block = Block {
        user_id: buyer.clone(),
        created_at: "2026-11-29T12:00:00Z".into(),
    };
    w.store()
        .write(Write::put(
            block.to_item(keys::block(&seller, &buyer), None).unwrap(),
        ))
        .await
        .unwrap();
    let r = w.review(&w.buyer, &order, good()).await;
    assert_eq!((r.status, r.error_code()), (403, "blocked"), "{r:?}");
    w.nothing_written(&order).await;
    // Unblocked, the review goes through.
    w.store()
        .write(Write::delete(keys::block(&seller, &buyer)))
        .await
        .unwrap();
    let r = w.review(&w.buyer, &order, good()).await;
    assert_eq!(r.status, 201, "{r:?}");
}

/// A store that, on the first listing edit it is asked to write, lets a review land first: the
/// edit read the listing before the review moved its rating, and writes after.
struct ReviewDuringEdit {
    inner: DynStore,
    review: Mutex<Option<(OrderId, UserId)>>,
}

#[async_trait]
impl Store for ReviewDuringEdit {
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
        let edit = writes
            .iter()
            .any(|w| matches!(w, Write::Update { key, .. } if key.pk.starts_with("LISTING#")));
        let pending = if edit {
            self.review.lock().unwrap().take()
        } else {
            None
        };
        if let Some((order, buyer)) = pending {
            let body: NewReview = serde_json::from_value(json!({"rating": 4})).unwrap();
            let window = std::time::Duration::from_secs(86400);
            reviews::create(
                &self.inner,
                &renji_tests::FakeWechat::default(),
                "https://media.renji.world",
                window,
                &order,
                &buyer,
                &body,
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("the review lands during the edit");
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

async fn ratings_equal_the_visible_reviews(backend: Backend) {
    let w = World::new(backend).await;
    assert_eq!(
        w.shown_ratings().await,
        ((json!(0), json!(0)), (json!(0), json!(0)))
    );
    let mut ids = Vec::new();
    for (buyer, rating) in [(&w.buyer, 5), (&w.other_buyer, 3), (&w.buyer, 2)] {
        let order = w.completed(buyer).await;
        let r = w.review(buyer, &order, json!({"rating": rating})).await;
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.body["text"], json!(""));
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(w.ratings().await, ((10, 3), (10, 3)));
    assert_eq!(
        w.shown_ratings().await,
        ((json!(10), json!(3)), (json!(10), json!(3)))
    );

    // Edits never touch the ratings: not the owner's edit of the listing, even one that read
    // the listing before a review landed and wrote after it (the review's rating stays), nor a
    // profile change of the seller.
    let order = w.completed(&w.other_buyer).await;
    let racing: DynStore = Arc::new(ReviewDuringEdit {
        inner: w.store().clone(),
        review: Mutex::new(Some((
            OrderId::parse(&order).unwrap(),
            UserId::parse(&w.other_buyer.id).unwrap(),
        ))),
    });
    let patch: ListingPatch = serde_json::from_value(json!({"title": "婚礼全天跟拍"})).unwrap();
    let config = &w.server.app().config;
    let edited = listings::update(
        &racing,
        &renji_tests::FakeWechat::default(),
        &listings::Rules::of(config),
        &UserId::parse(&w.seller.id).unwrap(),
        &ListingId::parse(&w.listing).unwrap(),
        patch,
    )
    .await
    .unwrap();
    assert_eq!(edited.title, "婚礼全天跟拍");
    assert_eq!(
        w.ratings().await,
        ((14, 4), (14, 4)),
        "the edit kept the racing review's rating"
    );
    let r = w
        .call(
            Some(&w.seller),
            "PATCH",
            "/v1/me",
            Some(json!({"nickname": "老张摄影"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (&r.body["rating_sum"], &r.body["rating_count"]),
        (&json!(14), &json!(4))
    );
    assert_eq!(w.ratings().await, ((14, 4), (14, 4)));

    // Staff hide the 3: it leaves the public lists and the ratings, in one transaction.
    let hidden_id = ReviewId::parse(&ids[1]).unwrap();
    let at = OffsetDateTime::now_utc();
    let hidden = reviews::hide(w.store(), &hidden_id, " 辱骂 ", at)
        .await
        .unwrap();
    let shown = hidden.staff_view();
    assert_eq!(shown["hidden"]["reason"], json!("辱骂"));
    assert_eq!(shown["order_id"].as_str().map(|s| s.len()), Some(24));
    assert_eq!(w.ratings().await, ((11, 3), (11, 3)));
    assert_eq!(
        w.shown_ratings().await,
        ((json!(11), json!(3)), (json!(11), json!(3)))
    );
    let visible = |page: &Reply| -> Vec<String> {
        page.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let page = w.list(&format!("/v1/listings/{}/reviews", w.listing)).await;
    assert_eq!(page.status, 200);
    assert!(!visible(&page).contains(&ids[1]));
    assert_eq!(visible(&page).len(), 3);
    let page = w.list(&format!("/v1/users/{}/reviews", w.seller.id)).await;
    assert!(!visible(&page).contains(&ids[1]));
    // The author's own entry stays; the listing's and seller's are gone.
    assert!(w
        .entries("author", &w.other_buyer.id)
        .await
        .contains(&ids[1]));
    assert!(!w.entries("listing", &w.listing).await.contains(&ids[1]));
    // Hiding it again changes nothing and answers it.
    let before: Review = reviews::get(w.store(), &hidden_id).await.unwrap().unwrap();
    let again = reviews::hide(w.store(), &hidden_id, "另一个理由", at)
        .await
        .unwrap();
    assert_eq!(again, before);
    assert_eq!(w.ratings().await, ((11, 3), (11, 3)));
    // A hidden review cannot be answered; an unknown one cannot be hidden.
    let r = w
        .call(
            Some(&w.seller),
            "POST",
            &format!("/v1/reviews/{}/reply", ids[1]),
            Some(json!({"text": "?"})),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
    let unknown = reviews::hide(w.store(), &ReviewId::generate(), "x", at).await;
    assert!(matches!(
        unknown,
        Err(renji_shared::Error::NotFound("review"))
    ));
    let blank = reviews::hide(w.store(), &ReviewId::parse(&ids[0]).unwrap(), "  ", at).await;
    assert!(matches!(blank, Err(renji_shared::Error::Invalid { .. })));
    // The sum equals the visible reviews' ratings, read one by one.
    let mut sum = 0;
    let mut count = 0;
    for id in w.entries("listing", &w.listing).await {
        let r = reviews::get(w.store(), &ReviewId::parse(&id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(r.hidden.is_none());
        sum += r.rating;
        count += 1;
    }
    assert_eq!((sum, count), (11, 3));
}

async fn the_seller_answers_once(backend: Backend) {
    let w = World::new(backend).await;
    let order = w.completed(&w.buyer).await;
    let r = w.review(&w.buyer, &order, good()).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/reviews/{id}/reply");
    for who in [&w.buyer, &w.stranger] {
        let r = w
            .call(Some(who), "POST", &path, Some(json!({"text": "谢谢"})))
            .await;
        assert_eq!((r.status, r.error_code()), (403, "forbidden"));
    }
    let r = w
        .call(None, "POST", &path, Some(json!({"text": "谢谢"})))
        .await;
    assert_eq!(r.status, 401);
    let stored = reviews::get(w.store(), &ReviewId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.reply.is_none());
    // Two at once: one answer.
    let (a, b) = tokio::join!(
        w.call(
            Some(&w.seller),
            "POST",
            &path,
            Some(json!({"text": " 谢谢认可 "}))
        ),
        w.call(
            Some(&w.seller),
            "POST",
            &path,
            Some(json!({"text": "欢迎再约"}))
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let (won, lost) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(lost.error_code(), "already_replied");
    let reply = &won.body["reply"];
    // The seller's answer: whether the reply is held for staff (null: public).
    assert_eq!(field_names(reply), ["at", "text", "text_review"]);
    let stored = reviews::get(w.store(), &ReviewId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.reply.as_ref().map(|r| json!(r.text)),
        Some(reply["text"].clone())
    );
    // The lists show it (to others, without the seller's own `text_review`).
    let page = w.list(&format!("/v1/users/{}/reviews", w.seller.id)).await;
    let mut public = reply.clone();
    public.as_object_mut().unwrap().remove("text_review");
    assert_eq!(page.body["items"][0]["reply"], public);
    // Ids of the wrong shape, or of no review: 404.
    for bad in [
        "r_nope",
        "u_01m8jsg6njf1pg15cd7be868vz",
        &ReviewId::generate().to_string(),
    ] {
        let r = w
            .call(
                Some(&w.seller),
                "POST",
                &format!("/v1/reviews/{bad}/reply"),
                Some(json!({"text": "x"})),
            )
            .await;
        assert_eq!(r.status, 404, "{bad}");
    }
}

async fn lists_are_newest_first_with_cursors(backend: Backend) {
    let w = World::new(backend).await;
    let mut ids = Vec::new();
    for (buyer, rating) in [(&w.buyer, 5), (&w.other_buyer, 4), (&w.buyer, 3)] {
        let order = w.completed(buyer).await;
        let r = w.review(buyer, &order, json!({"rating": rating})).await;
        assert_eq!(r.status, 201, "{r:?}");
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    ids.reverse();
    for path in [
        format!("/v1/listings/{}/reviews", w.listing),
        format!("/v1/users/{}/reviews", w.seller.id),
    ] {
        let first = w.list(&format!("{path}?limit=2")).await;
        assert_eq!(first.status, 200, "{first:?}");
        let got: Vec<&str> = first.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(got, [ids[0].as_str(), ids[1].as_str()], "{path}");
        let authors: Vec<&Value> = first.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["author"]["nickname"])
            .collect();
        assert_eq!(authors, [&json!("小王"), &json!("小李")]);
        let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
        let second = w.list(&format!("{path}?limit=2&cursor={cursor}")).await;
        assert_eq!(second.body["items"][0]["id"], json!(ids[2]));
        assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(second.body["next_cursor"], Value::Null);
        // A cursor of the other list, a forged one, a bad limit, an unknown parameter: 422.
        for query in [
            "?cursor=AAAA".to_owned(),
            "?limit=0".to_owned(),
            "?limit=101".to_owned(),
            "?limit=x".to_owned(),
            "?sort=old".to_owned(),
        ] {
            let r = w.list(&format!("{path}{query}")).await;
            assert_eq!(r.status, 422, "{path}{query}: {r:?}");
        }
    }
    // A cursor of one list does not page another.
    let listing_page = w
        .list(&format!("/v1/listings/{}/reviews?limit=1", w.listing))
        .await;
    let cursor = listing_page.body["next_cursor"].as_str().unwrap();
    let r = w
        .list(&format!(
            "/v1/users/{}/reviews?cursor={cursor}",
            w.seller.id
        ))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("cursor"))
    );
    // Unknown, private or malformed listing and member: 404. A member without reviews: empty.
    let draft = w
        .server
        .api
        .create_listing(
            &w.seller,
            json!({"kind": "service", "title": "草稿", "description": "",
            "category": "photography", "city": "北京", "price_fen": 100}),
        )
        .await;
    for path in [
        format!("/v1/listings/{}/reviews", ListingId::generate()),
        format!("/v1/listings/{}/reviews", draft["id"].as_str().unwrap()),
        "/v1/listings/nope/reviews".to_owned(),
        format!("/v1/users/{}/reviews", UserId::generate()),
        "/v1/users/nope/reviews".to_owned(),
    ] {
        let r = w.list(&path).await;
        assert_eq!((r.status, r.error_code()), (404, "not_found"), "{path}");
    }
    let r = w
        .list(&format!("/v1/users/{}/reviews", w.stranger.id))
        .await;
    assert_eq!(r.body, json!({"items": [], "next_cursor": null}));
    // A member may send their token (counted per member), or none (per address).
    let r = w
        .call(
            Some(&w.stranger),
            "GET",
            &format!("/v1/listings/{}/reviews", w.listing),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

async fn bad_input_is_refused_and_writes_nothing(backend: Backend) {
    let w = World::new(backend).await;
    let order = w.completed(&w.buyer).await;
    let path = format!("/v1/orders/{order}/reviews");
    let https = "https://img.renji.world/r/1.jpg";
    let cases: Vec<(String, u16, &str)> = vec![
        ("[]".into(), 422, "body"),
        (r#"[{"rating": 5}]"#.into(), 422, "body"),
        ("5".into(), 422, "body"),
        ("{".into(), 400, ""),
        ("".into(), 400, ""),
        ("{}".into(), 422, "rating"),
        (r#"{"rating": "5"}"#.into(), 422, "rating"),
        (r#"{"rating": 2.5}"#.into(), 422, "rating"),
        (r#"{"rating": 0}"#.into(), 422, "rating"),
        (r#"{"rating": 6}"#.into(), 422, "rating"),
        (r#"{"rating": -1}"#.into(), 422, "rating"),
        (r#"{"rating": null}"#.into(), 422, "rating"),
        (r#"{"rating": 5, "stars": 5}"#.into(), 422, "stars"),
        (r#"{"rating": 5, "order_id": "x"}"#.into(), 422, "order_id"),
        (r#"{"rating": 5, "text": 5}"#.into(), 422, "text"),
        (
            json!({"rating": 5, "text": "好".repeat(501)}).to_string(),
            422,
            "text",
        ),
        (
            json!({"rating": 5, "text": "a\u{0}b"}).to_string(),
            422,
            "text",
        ),
        (
            json!({"rating": 5, "images": vec![https; 10]}).to_string(),
            422,
            "images",
        ),
        (
            json!({"rating": 5, "images": ["http://img.renji.world/r/1.jpg"]}).to_string(),
            422,
            "images[0]",
        ),
        (
            json!({"rating": 5, "images": https}).to_string(),
            422,
            "images",
        ),
        (
            json!({"rating": 5, "images": [5]}).to_string(),
            422,
            "images[0]",
        ),
    ];
    for (body, status, field) in &cases {
        let r = w
            .server
            .api
            .raw("POST", &path, Some(&w.buyer.token), Some(body.clone()))
            .await;
        assert_eq!(r.status, *status, "{body}: {r:?}");
        if !field.is_empty() {
            assert_eq!(
                r.body["error"]["field"].as_str(),
                Some(*field),
                "{body}: {r:?}"
            );
        }
    }
    for bad in [
        "nope",
        "01kb5q0z3m8rwj6pq4n7t2xy",
        "01KB5Q0Z3M8RWJ6PQ4N7T2XY",
    ] {
        let r = w.review(&w.buyer, bad, good()).await;
        assert_eq!(r.status, 404, "{bad}");
    }
    w.nothing_written(&order).await;

    // The reply's body, on a real review.
    let r = w
        .review(
            &w.buyer,
            &order,
            json!({"rating": 4, "text": "好".repeat(500)}),
        )
        .await;
    assert_eq!(r.status, 201, "500 characters are allowed: {r:?}");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let reply = format!("/v1/reviews/{id}/reply");
    for (body, status, field) in [
        ("[]".to_owned(), 422, "body"),
        ("{}".to_owned(), 422, "text"),
        (r#"{"text": 5}"#.to_owned(), 422, "text"),
        (r#"{"text": "  "}"#.to_owned(), 422, "text"),
        (r#"{"text": "ok", "at": "now"}"#.to_owned(), 422, "at"),
        (json!({"text": "谢".repeat(501)}).to_string(), 422, "text"),
        ("nope".to_owned(), 400, ""),
    ] {
        let r = w
            .server
            .api
            .raw("POST", &reply, Some(&w.seller.token), Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{body}: {r:?}");
        if !field.is_empty() {
            assert_eq!(
                r.body["error"]["field"].as_str(),
                Some(field),
                "{body}: {r:?}"
            );
        }
    }
    let stored = reviews::get(w.store(), &ReviewId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.reply.is_none());
    assert_eq!(stored.version, 1);
}

on_both_stores!(
    a_review_is_written_once_even_when_two_race,
    only_the_buyer_of_a_completed_order_within_its_window_reviews,
    a_blocked_buyer_cannot_review,
    ratings_equal_the_visible_reviews,
    the_seller_answers_once,
    lists_are_newest_first_with_cursors,
    bad_input_is_refused_and_writes_nothing,
);
