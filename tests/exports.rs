//! A copy of my data (`POST`/`GET /v1/me/export`, the export job): a member who has made one
//! record of every kind gets a document holding each, and nothing secret; the day's limit; one
//! at a time; links that only open their own document; bad input; a crashed build redone; and,
//! on the embedded store, a member with thousands of records exported one part at a time.

use renji_shared::domain::exports::jobs::{self, Budget, LEASE_SECS};
use renji_shared::domain::favorites::Favourite;
use renji_shared::domain::members::Member as StoredMember;
use renji_shared::ids::{ListingId, UserId};
use renji_shared::store::{keys, Record, Records, Write};
use renji_tests::{on_both_stores, service, Backend, Market, Member, Reply};
use serde_json::{json, Value};
use time::OffsetDateTime;

const PATH: &str = "/v1/me/export";
const ID_NUMBER: &str = "11010519491231002X";

async fn call(m: &Market, who: &Member, method: &str, path: &str, body: Option<Value>) -> Reply {
    m.server
        .api
        .call(method, path, Some(&who.token), body)
        .await
}

/// One run of the export job as its function runs it (its IAM statements enforced).
async fn run_job(m: &Market, now: OffsetDateTime) -> jobs::Report {
    let app = m
        .server
        .running
        .function_app("ExportJobsFunction")
        .expect("job function");
    jobs::run(app, now, Budget::default())
        .await
        .expect("job runs")
}

/// A review of `order` by `who`: its id.
async fn review(m: &Market, who: &Member, order: &str) -> String {
    let body = json!({"rating": 5, "text": "很好", "images": []});
    let reply = call(
        m,
        who,
        "POST",
        &format!("/v1/orders/{order}/reviews"),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_owned()
}

/// The document the ready export's link serves.
async fn download(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("download");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn ids(section: &Value, pointer: &str) -> Vec<String> {
    section
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {section}"))
        .iter()
        .filter_map(|item| item.pointer(pointer).and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

async fn export_holds_every_kind_of_record(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let api = &m.server.api;
    let me = &m.seller;
    // The stranger sells too (verified, as a payout account needs), so the member can buy.
    m.server.verify(&m.stranger).await;
    let bound = call(
        &m,
        &m.stranger,
        "PUT",
        "/v1/me/payout-accounts/wechat",
        Some(json!({"merchant_id": "1900000109", "merchant_name": "王五化妆工作室"})),
    )
    .await;
    assert_eq!(bound.status, 200, "{bound:?}");
    let theirs = api.create_listing(&m.stranger, service("上门化妆")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Verification (the market's seller is verified as the test support leaves one: that
    // record goes, so this member verifies through the verifier), follows both ways, a
    // favourite, a share.
    m.server
        .app()
        .store
        .write(Write::delete(keys::verification(
            &UserId::parse(&me.id).unwrap(),
        )))
        .await
        .unwrap();
    let verified = call(
        &m,
        me,
        "POST",
        "/v1/me/verification",
        Some(json!({"kind": "person", "real_name": "张三", "id_number": ID_NUMBER})),
    )
    .await;
    assert!(matches!(verified.status, 201 | 202), "{verified:?}");
    for (who, path) in [
        (me, format!("/v1/me/following/{}", m.buyer.id)),
        (&m.buyer, format!("/v1/me/following/{}", me.id)),
        (me, format!("/v1/me/favorites/{theirs}")),
    ] {
        let reply = call(&m, who, "PUT", &path, None).await;
        assert!(reply.status < 300, "{path}: {reply:?}");
    }
    // Consents: a policy accepted and an optional scope granted.
    for body in [
        json!({"document": "privacy_policy", "version": "1.0"}),
        json!({"scope": "marketing"}),
    ] {
        let reply = call(&m, me, "POST", "/v1/me/consents", Some(body)).await;
        assert!(reply.status < 300, "{reply:?}");
    }
    let share = call(
        &m,
        me,
        "POST",
        &format!("/v1/listings/{}/shares", m.listing),
        Some(json!({"channel": "wechat_session"})),
    )
    .await;
    assert!(share.status < 300, "{share:?}");
    // Orders both ways, walked to completed, each reviewed by its buyer.
    let sold = m.server.completed_order(me, &m.buyer, &m.listing).await;
    let bought = m.server.completed_order(&m.stranger, me, &theirs).await;
    let received = review(&m, &m.buyer, &sold).await;
    let written = review(&m, me, &bought).await;
    // A ticket with a message, and a block.
    let ticket = call(
        &m,
        me,
        "POST",
        "/v1/tickets",
        Some(json!({"kind": "other", "subject": "开票", "text": "需要发票", "order_id": sold})),
    )
    .await;
    assert_eq!(ticket.status, 201, "{ticket:?}");
    let ticket_id = ticket.body["id"].as_str().unwrap().to_owned();
    let said = call(
        &m,
        me,
        "POST",
        &format!("/v1/tickets/{ticket_id}/messages"),
        Some(json!({"text": "抬头：人集"})),
    )
    .await;
    assert_eq!(said.status, 201, "{said:?}");
    let blocked = call(
        &m,
        me,
        "PUT",
        &format!("/v1/me/blocks/{}", m.stranger.id),
        None,
    )
    .await;
    assert!(blocked.status < 300, "{blocked:?}");

    // Never asked: 404; asked: 202 pending, and a second ask while it is pending is 409.
    let none = call(&m, me, "GET", PATH, None).await;
    assert_eq!((none.status, none.error_code()), (404, "not_found"));
    let asked = call(&m, me, "POST", PATH, None).await;
    assert_eq!(asked.status, 202, "{asked:?}");
    assert_eq!(asked.body["status"], json!("pending"));
    assert!(asked.body["requested_at"].is_string());
    let again = call(&m, me, "POST", PATH, Some(json!({}))).await;
    assert_eq!(
        (again.status, again.error_code()),
        (409, "export_in_progress")
    );
    let pending = call(&m, me, "GET", PATH, None).await;
    assert_eq!(pending.body["status"], json!("pending"), "{pending:?}");
    assert!(pending.body.get("url").is_none());

    let now = OffsetDateTime::now_utc();
    let report = run_job(&m, now).await;
    assert_eq!((report.built, report.failed), (1, 0), "{report:?}");
    let first = call(&m, me, "GET", PATH, None).await;
    assert_eq!(first.body["status"], json!("ready"), "{first:?}");
    let first_url = first.body["url"].as_str().unwrap().to_owned();
    // The link lasts RENJI_EXPORT_LINK_SECS (900), the document RENJI_EXPORT_KEEP_DAYS (7).
    let secs = |field: &str| {
        let text = first.body[field].as_str().unwrap();
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
            - now.unix_timestamp()
    };
    assert!((890..=910).contains(&secs("expires_at")), "{first:?}");
    assert!((7 * 86400 - 10..=7 * 86400 + 10).contains(&secs("available_until")));

    // Staff hide the review the member received (it leaves the seller's public list), and a
    // staff member looks the member up: the next export still holds the review, and shows the
    // staff member as `staff`, not by name.
    let store = &m.server.app().store;
    let review_id = renji_shared::ids::ReviewId::parse(&received).unwrap();
    store
        .write(Write::delete(keys::review_entry(
            "seller", &me.id, &review_id,
        )))
        .await
        .unwrap();
    let staff = renji_shared::domain::audit::AuditRecord::by(
        renji_shared::domain::audit::Actor::Staff {
            id: renji_shared::ids::StaffId::parse("zhang.wei").unwrap(),
            role: renji_shared::staff::StaffRole::Support,
        },
        OffsetDateTime::now_utc(),
        "GET /admin/v1/members/{id}",
        renji_shared::domain::audit::Target::member(&UserId::parse(&me.id).unwrap()),
        None,
        "ok",
    );
    renji_shared::domain::audit::record(store, &staff, std::time::Duration::from_secs(86400))
        .await
        .unwrap();
    // A listing of the member's held for staff (the sandbox's review marker), approved by a
    // moderator (the held text, with the decision, is a record of the member's partition); a
    // support agent answers the member's ticket and closes it. The document names neither.
    let held = api
        .create_listing(me, service("婚礼摄影 sandbox-review"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let moderator = api.staff_token("staff:li.moderator:moderator").await;
    let queue = api
        .call("GET", "/admin/v1/moderation/texts", Some(&moderator), None)
        .await;
    assert_eq!(queue.status, 200, "{queue:?}");
    let check = queue.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["subject"]["listing_id"] == json!(held))
        .unwrap_or_else(|| panic!("{held} is not held: {queue:?}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let decided = api
        .call(
            "POST",
            &format!("/admin/v1/moderation/texts/{check}/decision"),
            Some(&moderator),
            Some(json!({"decision": "approve", "reason": "婚礼摄影无问题"})),
        )
        .await;
    assert_eq!(decided.status, 200, "{decided:?}");
    assert_eq!(decided.body["decided"]["staff_id"], json!("li.moderator"));
    let support = api.staff_token("staff:wang.support:support").await;
    for (path, body, status) in [
        ("messages", json!({"text": "已为您开具发票"}), 201),
        ("close", json!({"resolution": "发票已开具"}), 200),
    ] {
        let reply = api
            .call(
                "POST",
                &format!("/admin/v1/tickets/{ticket_id}/{path}"),
                Some(&support),
                Some(body),
            )
            .await;
        assert_eq!(reply.status, status, "{path}: {reply:?}");
    }

    // A second export: it also holds the first one's `export.ready` (an audit record about the
    // member), and the first document is deleted once it is ready.
    let asked = call(&m, me, "POST", PATH, None).await;
    assert_eq!(asked.status, 202, "{asked:?}");
    assert_eq!(run_job(&m, OffsetDateTime::now_utc()).await.built, 1);
    let ready = call(&m, me, "GET", PATH, None).await;
    let url = ready.body["url"].as_str().unwrap().to_owned();
    assert_eq!(
        download(&first_url).await.0,
        404,
        "the previous document is deleted"
    );
    let (status, text) = download(&url).await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&text).expect("the document is JSON");

    assert_eq!(doc["format"], json!("renji.export"));
    assert_eq!(doc["member_id"], json!(me.id));
    assert_eq!(doc["profile"]["id"], json!(me.id));
    assert_eq!(doc["verification"]["kind"], json!("person"));
    // The payout accounts (the market's seller's Alipay and own WeChat account), masked.
    let payouts = doc["payout_accounts"].as_array().unwrap();
    assert_eq!(payouts.len(), 2, "{payouts:?}");
    assert_eq!(
        (&payouts[0]["channel"], &payouts[0]["account"]),
        (&json!("alipay"), &json!("2088********5726"))
    );
    assert_eq!(
        (
            &payouts[1]["channel"],
            &payouts[1]["type"],
            &payouts[1]["name"]
        ),
        (&json!("wechat"), &json!("wechat_personal"), &json!("*三"))
    );
    assert!(payouts[1]["account"].as_str().unwrap().contains("****"));
    assert_eq!(doc["counts"]["payout_accounts"], json!(2));
    assert!(doc["verification"]["number"]
        .as_str()
        .unwrap()
        .contains('*'));
    let has = |section: &str, pointer: &str, id: &str| {
        let found = ids(&doc[section], pointer);
        assert!(
            found.iter().any(|f| f == id),
            "{section} lacks {id}: {}",
            doc[section]
        );
        assert_eq!(doc["counts"][section], json!(found.len()), "{section}");
    };
    has("listings", "/id", &m.listing);
    has("favourites", "/listing_id", &theirs);
    has("following", "/user/id", &m.buyer.id);
    has("followers", "/user/id", &m.buyer.id);
    has("blocks", "/user/id", &m.stranger.id);
    has("shares", "/listing_id", &m.listing);
    has("orders_as_seller", "/id", &sold);
    // What the sale earned, as GET /v1/me/earnings shows it: not split yet (the dispute window).
    has("earnings", "/order_id", &sold);
    assert_eq!(doc["earnings"][0]["settlement"], json!("pending"));
    has("orders_as_buyer", "/id", &bought);
    has("reviews_received", "/id", &received);
    has("reviews_written", "/id", &written);
    has("tickets", "/id", &ticket_id);
    assert_eq!(doc["orders_as_seller"][0]["status"], json!("completed"));
    assert!(
        doc["orders_as_seller"][0]["timeline"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
    assert_eq!(doc["orders_as_seller"][0]["buyer"]["id"], json!(m.buyer.id));
    let messages = ids(&doc["tickets"][0]["messages"], "/text");
    assert!(messages.iter().any(|t| t == "抬头：人集"), "{messages:?}");
    assert!(!doc["sessions"].as_array().unwrap().is_empty());
    // Times as the API shows them (RFC 3339), as `GET /v1/me/sessions` does.
    assert!(
        doc["sessions"][0]["created_at"].is_string(),
        "{}",
        doc["sessions"]
    );
    // Staff appear as `staff`, never by name: not the one who looked the member up, nor the
    // moderator who decided the held listing (its held text is there, decided by `staff`), nor
    // the support agent who answered and closed the ticket.
    for name in ["zhang.wei", "li.moderator", "wang.support"] {
        assert!(
            !text.contains(name),
            "the document names staff member {name}"
        );
    }
    let held_text = doc["other_records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == json!("textcheck"))
        .unwrap_or_else(|| panic!("no held text: {}", doc["other_records"]))
        .clone();
    assert_eq!(
        held_text["attributes"]["subject"]["listing_id"],
        json!(held),
        "{held_text}"
    );
    assert_eq!(
        (
            &held_text["attributes"]["decided"]["decision"],
            &held_text["attributes"]["decided"]["staff_id"]
        ),
        (&json!("approve"), &json!("staff")),
        "{held_text}"
    );
    has("listings", "/id", &held);
    let answer = doc["tickets"][0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["text"] == json!("已为您开具发票"))
        .cloned()
        .unwrap_or_else(|| panic!("{}", doc["tickets"]));
    assert_eq!(answer["from"], json!("staff"));
    assert_eq!(doc["tickets"][0]["status"], json!("closed"));
    // Consents: the summary, and each consent event.
    assert_eq!(
        doc["consents"]["documents"][0]["accepted_version"],
        json!("1.0"),
        "{}",
        doc["consents"]
    );
    let events = ids(&doc["consent_history"], "/action");
    assert!(events.contains(&"accept".to_owned()) && events.contains(&"grant".to_owned()));
    assert_eq!(doc["counts"]["consent_history"], json!(events.len()));
    // A kind of the member's partition without a section of its own is there generically (the
    // day's verification count).
    let other = ids(&doc["other_records"], "/kind");
    assert!(other.contains(&"verification_day".to_owned()), "{other:?}");
    let actions = |section: &str| ids(&doc[section], "/action");
    assert!(actions("audit_by_member").contains(&"export.request".to_owned()));
    assert!(actions("audit_about_member").contains(&"export.ready".to_owned()));
    // Nothing secret, nothing internal: no openid, no sealed data, no plain ID number, no
    // idempotency records.
    let stored: StoredMember = m
        .server
        .app()
        .store
        .get_record(&keys::member(&UserId::parse(&me.id).unwrap()))
        .await
        .unwrap()
        .unwrap();
    for secret in [
        stored.openid.as_str(),
        "sealed",
        ID_NUMBER,
        "IDEMPOTENCY",
        "openid",
    ] {
        assert!(!text.contains(secret), "the document holds {secret:?}");
    }

    // Another member: no export of theirs; the link is the member's alone (another path, or a
    // longer life, breaks its signature).
    let theirs_now = call(&m, &m.stranger, "GET", PATH, None).await;
    assert_eq!(theirs_now.status, 404);
    let other_path = url.replace(&me.id, &m.stranger.id);
    assert_eq!(download(&other_path).await.0, 403);
    let longer = url.replace("expires=", "expires=1");
    assert_eq!(download(&longer).await.0, 403);

    // The third of the day is accepted; the fourth is 429 until midnight UTC.
    assert_eq!(call(&m, me, "POST", PATH, None).await.status, 202);
    assert_eq!(run_job(&m, OffsetDateTime::now_utc()).await.built, 1);
    let over = call(&m, me, "POST", PATH, None).await;
    assert_eq!((over.status, over.error_code()), (429, "too_many_requests"));
    let wait: u64 = over.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=86400).contains(&wait), "{over:?}");
    assert_eq!(
        call(&m, me, "GET", PATH, None).await.body["status"],
        json!("ready")
    );

    // Every grant of the job's IAM statements was used here, and no more is needed.
    renji_tests::assert_grants_all_used(&m.server.running, "ExportJobsFunction");
}

/// Bad input is refused naming what is wrong, and nothing is written.
async fn bad_input_writes_nothing(backend: Backend) {
    let m = Market::start(backend, &[]).await;
    let api = &m.server.api;
    let me = &m.buyer;
    for (method, path, body, status) in [
        ("POST", PATH.to_owned(), Some("{\"x\":1}".to_owned()), 422),
        ("POST", PATH.to_owned(), Some("not json".to_owned()), 400),
        ("POST", PATH.to_owned(), Some("[]".to_owned()), 422),
        ("POST", format!("{PATH}?format=csv"), None, 422),
        ("GET", format!("{PATH}?id=1"), None, 422),
    ] {
        let reply = api.raw(method, &path, Some(&me.token), body).await;
        assert_eq!(reply.status, status, "{method} {path}: {reply:?}");
    }
    for method in ["POST", "GET"] {
        let reply = api.call(method, PATH, None, None).await;
        assert_eq!(reply.status, 401, "{method}");
    }
    let none = call(&m, me, "GET", PATH, None).await;
    assert_eq!(none.status, 404, "nothing was recorded");
    let member = UserId::parse(&me.id).unwrap();
    let day = OffsetDateTime::now_utc().date();
    let day = format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    let store = &m.server.app().store;
    assert!(store
        .get(&keys::export_day(&member, &day))
        .await
        .unwrap()
        .is_none());
    assert!(store.get(&keys::export(&member)).await.unwrap().is_none());
}

on_both_stores!(export_holds_every_kind_of_record, bad_input_writes_nothing);

/// A build that crashed (claimed, never finished) is taken again once its lease ends; and a
/// member with thousands of records is exported one small part at a time, completely.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_export_streams_in_parts_and_a_crashed_build_is_redone() {
    let m = Market::start(Backend::Embedded, &[]).await;
    let me = &m.buyer;
    let member = UserId::parse(&me.id).unwrap();
    let store = &m.server.app().store;
    const FAVOURITES: usize = 5_000;
    let mut writes = Vec::new();
    for n in 0..FAVOURITES {
        let listing = ListingId::parse(&format!("l_{n:026}")).unwrap();
        let item = Favourite {
            listing_id: listing.clone(),
            created_at: "2026-01-02T03:04:05Z".into(),
        }
        .to_item(
            keys::favourite(&member, &listing),
            Some(keys::favourite_listed(&member, &format!("{n:026}"))),
        )
        .unwrap();
        writes.push(Write::put(item));
        if writes.len() == 100 {
            store.transact(std::mem::take(&mut writes)).await.unwrap();
        }
    }
    assert_eq!(call(&m, me, "POST", PATH, None).await.status, 202);

    // A run claims it and dies before finishing: the record is left building, due when the
    // lease ends.
    let now = OffsetDateTime::now_utc();
    let at = now.unix_timestamp();
    store
        .write(
            Write::update(keys::export(&member))
                .set("status", "building")
                .set("attempts", 1)
                .set("gsi1sk", keys::export_listed(at + LEASE_SECS, &member).sk)
                .build(),
        )
        .await
        .unwrap();
    let app = m.server.running.function_app("ExportJobsFunction").unwrap();
    let part = 64 * 1024;
    let budget = Budget {
        part_bytes: Some(part),
        ..Budget::default()
    };
    let early = jobs::run(app, now, budget).await.unwrap();
    assert_eq!(early.examined, 0, "not before the lease ends: {early:?}");
    let building = call(&m, me, "GET", PATH, None).await;
    assert_eq!(building.body["status"], json!("building"));
    let later = now + time::Duration::seconds(LEASE_SECS + 1);
    let report = jobs::run(app, later, budget).await.unwrap();
    assert_eq!((report.built, report.failed), (1, 0), "{report:?}");
    assert!(
        report.most_held > 0 && report.most_held <= part,
        "the writer held more than one part: {report:?}"
    );

    let ready = call(&m, me, "GET", PATH, None).await;
    assert_eq!(ready.body["status"], json!("ready"), "{ready:?}");
    let bytes = ready.body["bytes"].as_u64().unwrap();
    assert!(bytes > 4 * part as u64, "several parts: {bytes}");
    let (status, text) = download(ready.body["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(text.len() as u64, bytes);
    let doc: Value = serde_json::from_str(&text).expect("the document is JSON");
    assert_eq!(doc["favourites"].as_array().unwrap().len(), FAVOURITES);
    assert_eq!(doc["counts"]["favourites"], json!(FAVOURITES));
    let mut listed = ids(&doc["favourites"], "/listing_id");
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), FAVOURITES, "each favourite once");
    // The document file is the owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = m
            .server
            .data_dir
            .as_ref()
            .unwrap()
            .path()
            .join("exports")
            .join(&me.id);
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
