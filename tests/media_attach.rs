//! Media on the entities that show it (issue #11), over HTTP on both stores: listings, avatars,
//! reviews and ticket messages accept only the member's own uploads of the field's purpose (422
//! naming the field, nothing written); held media is shown to its owner with its state and to
//! no one else; a check's end reaches every entity using the upload (`media::holds::update`).

use renji_shared::domain::media::{holds, Hold, MediaRecord, MediaStatus, Subject};
use renji_shared::ids::{ListingId, UserId};
use renji_shared::store::{keys, Records};
use renji_tests::{end_check, on_both_stores, service, Backend, Market, Member, Reply};
use serde_json::{json, Value};

async fn call(
    m: &Market,
    who: Option<&Member>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    m.server
        .api
        .call(method, path, who.map(|w| w.token.as_str()), body)
        .await
}

/// Everything the store holds, to prove a refused write wrote nothing.
async fn everything(m: &Market) -> Vec<renji_shared::store::Item> {
    let mut items = m.server.app().store.scan_all().await.unwrap();
    items.sort_by_key(|i| (i["pk"].to_string(), i["sk"].to_string()));
    items
}

async fn record(m: &Market, url: &str) -> MediaRecord {
    let app = m.server.app();
    let (owner, _, id) =
        renji_shared::domain::media::parse_url(&app.config.media.base_url, url).unwrap();
    app.store
        .get_record(&keys::media(&owner, &id))
        .await
        .unwrap()
        .unwrap()
}

async fn foreign_wrong_risky_and_others_uploads_are_refused_naming_the_field(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let (seller, stranger) = (&m.seller, &m.stranger);
    let mine = m.server.upload(seller, "listing_image", true).await;
    let theirs = m.server.upload(stranger, "listing_image", true).await;
    let wrong_purpose = m.server.upload(seller, "avatar", true).await;
    let risky = m.server.upload(seller, "listing_image", false).await;
    end_check(m.server.app(), &risky, MediaStatus::Risky, "20002").await;
    let base = m.server.app().config.media.base_url.clone();
    let seller_id = UserId::parse(&seller.id).unwrap();
    let never_issued = format!(
        "{base}/u/{seller_id}/listing_image/{}.jpg",
        renji_shared::ids::MediaId::generate()
    );
    let video = m.server.upload(seller, "listing_video", false).await;
    let cover = m.server.upload(seller, "video_cover", false).await;
    let order = m
        .server
        .completed_order(&m.seller, &m.buyer, &m.listing)
        .await;
    let before = everything(&m).await;
    let cases = [
        (theirs.clone(), "your own upload"),
        (wrong_purpose.clone(), "listing_image"),
        (
            "https://img.renji.world/l/1.jpg".to_owned(),
            "POST /v1/uploads",
        ),
        (format!("{base}/elsewhere/1.jpg"), "POST /v1/uploads"),
        (never_issued, "not an upload"),
        (mine.replace(".jpg", ".png"), "not an upload"),
        (risky.clone(), "refused"),
    ];
    for (bad, why) in &cases {
        let mut body = service("婚礼跟拍");
        body["images"] = json!([mine, mine, bad]);
        let reply = call(&m, Some(seller), "POST", "/v1/listings", Some(body)).await;
        assert_eq!(
            (reply.status, reply.field()),
            (422, "images[2]"),
            "{bad}: {reply:?}"
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{bad}: {message}");
        // The same on an edit of an existing listing, and for the video and its cover.
        let path = format!("/v1/listings/{}", m.listing);
        let reply = call(
            &m,
            Some(seller),
            "PATCH",
            &path,
            Some(json!({"images": [bad]})),
        )
        .await;
        assert_eq!(
            (reply.status, reply.field()),
            (422, "images[0]"),
            "{reply:?}"
        );
    }
    let path = format!("/v1/listings/{}", m.listing);
    for (patch, field) in [
        (json!({"video_url": video}), "video_cover_url"),
        (json!({"video_cover_url": cover}), "video_cover_url"),
        (
            json!({"video_url": cover, "video_cover_url": cover}),
            "video_url",
        ),
        (
            json!({"video_url": video, "video_cover_url": video}),
            "video_cover_url",
        ),
        (
            json!({"video_url": video, "video_cover_url": theirs}),
            "video_cover_url",
        ),
    ] {
        let reply = call(&m, Some(seller), "PATCH", &path, Some(patch.clone())).await;
        assert_eq!(
            (reply.status, reply.field()),
            (422, field),
            "{patch}: {reply:?}"
        );
    }
    // Avatars, reviews and ticket messages likewise.
    let reply = call(
        &m,
        Some(seller),
        "PATCH",
        "/v1/me",
        Some(json!({"avatar_url": mine})),
    )
    .await;
    assert_eq!(
        (reply.status, reply.field()),
        (422, "avatar_url"),
        "{reply:?}"
    );
    let reply = call(
        &m,
        Some(&m.buyer),
        "POST",
        &format!("/v1/orders/{order}/reviews"),
        Some(json!({"rating": 5, "images": [mine]})),
    )
    .await;
    assert_eq!(
        (reply.status, reply.field()),
        (422, "images[0]"),
        "{reply:?}"
    );
    assert_eq!(everything(&m).await, before, "nothing written");
    // The upload records are as they were: no `used_by`.
    assert!(record(&m, &mine).await.used_by.is_empty());
}

async fn pending_media_is_the_owners_alone_until_it_passes(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let seller = &m.seller;
    let passed = m.server.upload(seller, "listing_image", true).await;
    let pending = m.server.upload(seller, "listing_image", false).await;
    let video = m.server.upload(seller, "listing_video", false).await;
    let cover = m.server.upload(seller, "video_cover", true).await;
    let mut body = service("婚纱跟拍");
    body["images"] = json!([pending, passed]);
    body["video_url"] = json!(video);
    body["video_cover_url"] = json!(cover);
    let created = m.server.api.create_listing(seller, body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let subject = Subject::Listing {
        id: ListingId::parse(&id).unwrap(),
    };
    for url in [&pending, &video, &cover] {
        assert_eq!(
            record(&m, url).await.used_by,
            std::slice::from_ref(&subject),
            "{url}"
        );
    }
    // The video names its cover (the media job makes it public once the cover has passed); a
    // new cover alone is named in its place.
    let cover_id = record(&m, &cover).await.id;
    assert_eq!(record(&m, &video).await.cover, Some(cover_id.clone()));
    let second_cover = m.server.upload(seller, "video_cover", true).await;
    let recovered = call(
        &m,
        Some(seller),
        "PATCH",
        &format!("/v1/listings/{id}"),
        Some(json!({"video_cover_url": second_cover})),
    )
    .await;
    assert_eq!(recovered.status, 200, "{recovered:?}");
    let second_id = record(&m, &second_cover).await.id;
    assert_eq!(record(&m, &video).await.cover, Some(second_id));
    let back = call(
        &m,
        Some(seller),
        "PATCH",
        &format!("/v1/listings/{id}"),
        Some(json!({"video_cover_url": cover})),
    )
    .await;
    assert_eq!(back.status, 200, "{back:?}");
    assert_eq!(record(&m, &video).await.cover, Some(cover_id));
    // One upload may show on two listings: its used_by names both.
    let other = format!("/v1/listings/{}", m.listing);
    let reply = call(
        &m,
        Some(seller),
        "PATCH",
        &other,
        Some(json!({"images": [passed]})),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let both = [
        subject.clone(),
        Subject::Listing {
            id: ListingId::parse(&m.listing).unwrap(),
        },
    ];
    assert_eq!(record(&m, &passed).await.used_by, both);
    // The owner: everything, and the held URLs' state.
    assert_eq!(created["images"], json!([pending, passed]));
    let states = json!({
        pending.as_str(): {"state": "pending"},
        video.as_str(): {"state": "pending"},
    });
    assert_eq!(created["media_states"], states);
    let path = format!("/v1/listings/{id}");
    let own = call(&m, Some(seller), "GET", &path, None).await;
    assert_eq!(
        (
            own.body["video_url"].clone(),
            own.body["media_states"].clone()
        ),
        (json!(video), states)
    );
    // Others: the passed image only; the video not before it passes; the feed's cover is the
    // first public image.
    for who in [Some(&m.buyer), None] {
        let seen = call(&m, who, "GET", &path, None).await;
        assert_eq!(seen.body["images"], json!([passed]), "{seen:?}");
        assert_eq!(seen.body["video_url"], Value::Null);
        assert_eq!(seen.body["video_cover_url"], Value::Null);
        assert!(seen.body.get("media_states").is_none());
    }
    let cover_in_feed = |feed: &Reply| {
        feed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == json!(id))
            .map(|i| i["cover_url"].clone())
    };
    let feed = call(&m, None, "GET", "/v1/listings", None).await;
    assert_eq!(cover_in_feed(&feed), Some(json!(passed)), "{feed:?}");

    // The pending image passes and the video is approved: everyone sees all, in order.
    end_check(m.server.app(), &pending, MediaStatus::Passed, "").await;
    end_check(m.server.app(), &video, MediaStatus::Passed, "").await;
    let seen = call(&m, Some(&m.buyer), "GET", &path, None).await;
    assert_eq!(seen.body["images"], json!([pending, passed]));
    assert_eq!(
        (
            seen.body["video_url"].clone(),
            seen.body["video_cover_url"].clone()
        ),
        (json!(video), json!(cover))
    );
    let feed = call(&m, None, "GET", "/v1/listings", None).await;
    assert_eq!(cover_in_feed(&feed), Some(json!(pending)));
    let own = call(&m, Some(seller), "GET", &path, None).await;
    assert_eq!(own.body["media_states"], json!({}));

    // Found risky later: gone from public view, the owner told why.
    end_check(m.server.app(), &pending, MediaStatus::Risky, "20002").await;
    let seen = call(&m, None, "GET", &path, None).await;
    assert_eq!(seen.body["images"], json!([passed]));
    let own = call(&m, Some(seller), "GET", &path, None).await;
    assert_eq!(
        own.body["media_states"],
        json!({ pending.as_str(): {"state": "removed", "reason": "20002"} })
    );
    // An edit of other fields keeps the images and their holds; dropping the image drops its
    // hold (its upload's used_by may stay: the fan-out finds the URL gone).
    let edited = call(
        &m,
        Some(seller),
        "PATCH",
        &path,
        Some(json!({"title": "婚纱摄影"})),
    )
    .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    assert_eq!(edited.body["media_states"], own.body["media_states"]);
    let dropped = call(
        &m,
        Some(seller),
        "PATCH",
        &path,
        Some(json!({"images": [passed]})),
    )
    .await;
    assert_eq!(
        (dropped.status, dropped.body["media_states"].clone()),
        (200, json!({})),
        "{dropped:?}"
    );
    holds::update(m.server.app(), &subject, &pending, Some(Hold::Pending))
        .await
        .unwrap();
    let own = call(&m, Some(seller), "GET", &path, None).await;
    assert_eq!(own.body["images"], json!([passed]));
    assert_eq!(own.body["media_states"], json!({}));
}

async fn avatars_are_held_until_they_pass(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let seller = &m.seller;
    let avatar = m.server.upload(seller, "avatar", false).await;
    let patched = call(
        &m,
        Some(seller),
        "PATCH",
        "/v1/me",
        Some(json!({"avatar_url": avatar})),
    )
    .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.body["avatar_url"], json!(avatar));
    assert_eq!(
        patched.body["media_states"],
        json!({ avatar.as_str(): {"state": "pending"} })
    );
    let member = UserId::parse(&seller.id).unwrap();
    assert_eq!(
        record(&m, &avatar).await.used_by,
        [Subject::Avatar { member }]
    );
    let public = format!("/v1/users/{}", seller.id);
    let seen = call(&m, Some(&m.buyer), "GET", &public, None).await;
    assert_eq!(seen.body["avatar_url"], Value::Null, "{seen:?}");
    // Sending the same avatar again changes nothing; another field may change meanwhile.
    let again = call(
        &m,
        Some(seller),
        "PATCH",
        "/v1/me",
        Some(json!({"avatar_url": avatar, "residence": "北京市"})),
    )
    .await;
    assert_eq!(
        again.body["media_states"], patched.body["media_states"],
        "{again:?}"
    );
    end_check(m.server.app(), &avatar, MediaStatus::Passed, "").await;
    let seen = call(&m, Some(&m.buyer), "GET", &public, None).await;
    assert_eq!(seen.body["avatar_url"], json!(avatar));
    let me = call(&m, Some(seller), "GET", "/v1/me", None).await;
    assert_eq!(me.body["media_states"], json!({}));
    // A new avatar replaces the old one's hold; the old URL's result no longer applies.
    let next = m.server.upload(seller, "avatar", false).await;
    let patched = call(
        &m,
        Some(seller),
        "PATCH",
        "/v1/me",
        Some(json!({"avatar_url": next})),
    )
    .await;
    assert_eq!(
        patched.body["media_states"],
        json!({ next.as_str(): {"state": "pending"} })
    );
    end_check(m.server.app(), &avatar, MediaStatus::Risky, "20002").await;
    let me = call(&m, Some(seller), "GET", "/v1/me", None).await;
    assert_eq!(
        me.body["media_states"],
        json!({ next.as_str(): {"state": "pending"} })
    );
    // Cleared: no avatar, no hold.
    let cleared = call(
        &m,
        Some(seller),
        "PATCH",
        "/v1/me",
        Some(json!({"avatar_url": null})),
    )
    .await;
    assert_eq!(
        (
            cleared.body["avatar_url"].clone(),
            cleared.body["media_states"].clone()
        ),
        (Value::Null, json!({}))
    );
}

async fn holds_update_reaches_each_kind_of_subject(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let app = m.server.app();
    // A review's image.
    let order = m
        .server
        .completed_order(&m.seller, &m.buyer, &m.listing)
        .await;
    let image = m.server.upload(&m.buyer, "review_image", false).await;
    let review = call(
        &m,
        Some(&m.buyer),
        "POST",
        &format!("/v1/orders/{order}/reviews"),
        Some(json!({"rating": 4, "images": [image]})),
    )
    .await;
    assert_eq!(review.status, 201, "{review:?}");
    let id = renji_shared::ids::ReviewId::parse(review.body["id"].as_str().unwrap()).unwrap();
    let subject = Subject::Review { id: id.clone() };
    assert_eq!(
        record(&m, &image).await.used_by,
        std::slice::from_ref(&subject)
    );
    let removed = Hold::Removed {
        reason: "staff".into(),
    };
    holds::update(app, &subject, &image, Some(removed.clone()))
        .await
        .unwrap();
    let stored = renji_shared::domain::reviews::get(&app.store, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.holds.get(&image), Some(&removed));
    holds::update(app, &subject, &image, None).await.unwrap();
    let stored = renji_shared::domain::reviews::get(&app.store, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.holds.is_empty());
    let listed = call(
        &m,
        None,
        "GET",
        &format!("/v1/listings/{}/reviews", m.listing),
        None,
    )
    .await;
    assert_eq!(listed.body["items"][0]["images"], json!([image]));

    // A ticket message's image (a ticket of the buyer's, about the order).
    let ticket = call(
        &m,
        Some(&m.buyer),
        "POST",
        "/v1/tickets",
        Some(json!({"kind": "other", "subject": "发票", "text": "需要发票"})),
    )
    .await;
    assert_eq!(ticket.status, 201, "{ticket:?}");
    let ticket_id = ticket.body["id"].as_str().unwrap().to_owned();
    let shot = m.server.upload(&m.buyer, "ticket_image", false).await;
    let sent = call(
        &m,
        Some(&m.buyer),
        "POST",
        &format!("/v1/tickets/{ticket_id}/messages"),
        Some(json!({"text": "截图", "images": [shot]})),
    )
    .await;
    assert_eq!(sent.status, 201, "{sent:?}");
    let subject = Subject::Ticket {
        id: renji_shared::ids::TicketId::parse(&ticket_id).unwrap(),
    };
    assert_eq!(
        record(&m, &shot).await.used_by,
        std::slice::from_ref(&subject)
    );
    holds::update(app, &subject, &shot, Some(removed.clone()))
        .await
        .unwrap();
    let ticket_path = format!("/v1/tickets/{ticket_id}");
    let ticket = || call(&m, Some(&m.buyer), "GET", &ticket_path, None);
    let got = ticket().await;
    assert_eq!(
        got.body["messages"][1]["media_states"],
        json!({ shot.as_str(): {"state": "removed", "reason": "staff"} })
    );
    // Nothing to do: a URL the entity does not use, an entity that does not exist.
    let gone_listing = Subject::Listing {
        id: ListingId::generate(),
    };
    let gone_avatar = Subject::Avatar {
        member: UserId::generate(),
    };
    for (subject, url) in [
        (&subject, "https://elsewhere/1.jpg"),
        (&gone_listing, shot.as_str()),
        (&gone_avatar, shot.as_str()),
    ] {
        holds::update(app, subject, url, Some(Hold::Pending))
            .await
            .unwrap();
    }
    let got_again = ticket().await;
    assert_eq!(got_again.body, got.body);
}

/// A listing whose text is held for staff and whose image is pending: its owner sees both states,
/// no one else sees the listing (not by id, not in the feed), also once the image passes; the
/// text approved, everyone sees it with the image.
async fn held_text_and_pending_media_together(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let seller = &m.seller;
    let pending = m.server.upload(seller, "listing_image", false).await;
    let mut body = service("婚纱跟拍 sandbox-review");
    body["images"] = json!([pending]);
    let created = m.server.api.create_listing(seller, body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/listings/{id}");
    let states = json!({ pending.as_str(): {"state": "pending"} });
    let own = call(&m, Some(seller), "GET", &path, None).await;
    assert_eq!(own.status, 200, "{own:?}");
    assert_eq!(own.body["text_review"]["state"], json!("under_review"));
    assert_eq!(own.body["images"], json!([pending]));
    assert_eq!(own.body["media_states"], states);
    hidden(&m, &id).await;
    // The image passes (the listing re-saved by the fan-out): the text still holds it back.
    end_check(m.server.app(), &pending, MediaStatus::Passed, "").await;
    hidden(&m, &id).await;
    let own = call(&m, Some(seller), "GET", &path, None).await;
    assert_eq!(own.body["media_states"], json!({}));
    assert_eq!(own.body["text_review"]["state"], json!("under_review"));
    // Staff approve the text: public, with its image, in the feed.
    let token = &m.server.api.staff_token("staff:mo:moderator").await;
    let queue = m
        .server
        .api
        .call("GET", "/admin/v1/moderation/texts", Some(token), None)
        .await;
    let check = queue.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["subject"]["listing_id"] == json!(id))
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .expect("queued");
    let decided = m
        .server
        .api
        .call(
            "POST",
            &format!("/admin/v1/moderation/texts/{check}/decision"),
            Some(token),
            Some(json!({"decision": "approve", "reason": "婚纱跟拍无问题"})),
        )
        .await;
    assert_eq!(decided.status, 200, "{decided:?}");
    let seen = call(&m, Some(&m.buyer), "GET", &path, None).await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert_eq!(seen.body["images"], json!([pending]));
    let feed = call(&m, None, "GET", "/v1/listings", None).await;
    assert!(in_feed(&feed, &id), "{feed:?}");
}

fn in_feed(feed: &Reply, id: &str) -> bool {
    feed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == json!(id))
}

/// Listing `id` is seen by no one but its owner: not by id (another member, anyone), not in the
/// feed.
async fn hidden(m: &Market, id: &str) {
    let path = format!("/v1/listings/{id}");
    for who in [Some(&m.buyer), None] {
        let seen = call(m, who, "GET", &path, None).await;
        assert_eq!(seen.status, 404, "{seen:?}");
    }
    let feed = call(m, None, "GET", "/v1/listings", None).await;
    assert!(!in_feed(&feed, id), "{feed:?}");
}

on_both_stores!(
    foreign_wrong_risky_and_others_uploads_are_refused_naming_the_field,
    pending_media_is_the_owners_alone_until_it_passes,
    avatars_are_held_until_they_pass,
    holds_update_reaches_each_kind_of_subject,
    held_text_and_pending_media_together,
);
