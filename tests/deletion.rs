//! Account deletion (`DELETE /v1/me`, `POST /admin/v1/members/{id}/deletion`, the
//! `deletion-jobs` run): refused while an order is not final; a member who did everything is
//! deleted by many tiny runs of the job (a crash at any point is one of them), and a scan of the
//! raw store proves no personal data of theirs remains outside the anonymised records kept, the
//! audit trail (ids only) and the tombstone; a member with tens of thousands of records finishes
//! in bounded batches.

use renji_shared::domain::deletion::{self, Budget, ImAccounts, NoImAccounts, Report};
use renji_shared::domain::exports;
use renji_shared::ids::UserId;
use renji_shared::im::ImError;
use renji_shared::store::{keys, Item, Query, Write};
use renji_shared::App;
use renji_tests::{on_both_stores, service, Backend, LocalServer, Member};
use serde_json::{json, Value};
use time::OffsetDateTime;

const ID_NUMBER: &str = "11010519491231002X";
const REAL_NAME: &str = "李朵拉";
const NICKNAME: &str = "朵拉摄影工作室";
const BIRTH_DATE: &str = "1991-03-04";

async fn ok(
    server: &LocalServer,
    method: &str,
    path: &str,
    who: &Member,
    body: Option<Value>,
) -> Value {
    let reply = server.api.call(method, path, Some(&who.token), body).await;
    assert!(reply.status < 300, "{method} {path}: {reply:?}");
    reply.body
}

async fn record(server: &LocalServer, key: renji_shared::store::Key) -> Item {
    server
        .app()
        .store
        .get(&key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{key:?} missing"))
}

fn count(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(Value::as_i64).unwrap_or(0)
}

/// Moves a completed order's completion back `days`: its dispute window has passed.
async fn complete_days_ago(server: &LocalServer, order: &str, days: i64) {
    let id = renji_shared::ids::OrderId::parse(order).unwrap();
    let at = renji_shared::domain::members::rfc3339(
        OffsetDateTime::now_utc() - time::Duration::days(days),
    );
    server
        .app()
        .store
        .write(
            Write::update(keys::order(&id))
                .set("completed_at", at)
                .build(),
        )
        .await
        .unwrap();
}

/// The order's split done, as the order jobs leave it once the seller's share arrived.
async fn settled(server: &LocalServer, order: &str) {
    use renji_shared::domain::settlement::{OrderSettlement, SettleState, Shares};
    let id = renji_shared::ids::OrderId::parse(order).unwrap();
    let store = &server.app().store;
    let mut stored = renji_shared::domain::orders::get(store, &id)
        .await
        .unwrap()
        .unwrap();
    let terms = stored.settle.expect("settlement terms");
    stored.settlement = Some(OrderSettlement {
        state: SettleState::Paid,
        provider: renji_shared::payments::Provider::Wechat,
        attempt: 1,
        out_order_no: renji_shared::settlement::split_no(order),
        receiver: None,
        shares: Shares::of(stored.refundable(), &terms),
        failure: None,
        requested_at: None,
        shared_at: None,
        unfreeze_no: None,
        finished_at: None,
        checks: 0,
    });
    store
        .transact(vec![
            Write::put(stored.item().unwrap()),
            renji_shared::domain::settlement::watch::done_write(&id),
        ])
        .await
        .unwrap();
}

/// Runs the job (as the deletion-jobs function, its store held to its IAM statements) until no
/// deletion is left, each run allowed `batches` batches: how many runs it took.
async fn run_to_the_end(server: &LocalServer, im: &dyn ImAccounts, batches: usize) -> usize {
    let app = server
        .running
        .function_app("DeletionJobsFunction")
        .expect("the job exists");
    let budget = Budget {
        batches,
        ..Budget::default()
    };
    for run in 1..=2000 {
        let report: Report = deletion::run(app, im, OffsetDateTime::now_utc(), budget)
            .await
            .unwrap();
        assert!(report.batches <= batches, "{report:?}");
        if report.members == 0 {
            return run;
        }
    }
    panic!("the deletion did not finish in 2000 runs");
}

/// IM fails the first time it is asked: the next run asks again, nothing else waits.
struct FlakyIm(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl ImAccounts for FlakyIm {
    async fn delete_account(&self, _member: &UserId) -> Result<(), ImError> {
        match self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => Err(ImError::Unavailable("IM is down".into())),
            _ => Ok(()),
        }
    }
}

async fn a_member_who_did_everything_leaves_no_personal_data(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let api = &server.api;
    let dora = server.member("dora", false).await;
    let sam = server.member("sam", true).await;
    let bea = server.member("bea", false).await;
    let carl = server.member("carl", false).await;
    let avatar = server.upload(&dora, "avatar", true).await;
    let dora_id = UserId::parse(&dora.id).unwrap();
    let sam_id = UserId::parse(&sam.id).unwrap();

    // Dora: profile, verified through the verifier (sealed name and number, an identity claim).
    ok(
        &server,
        "PATCH",
        "/v1/me",
        &dora,
        Some(json!({
            "nickname": NICKNAME, "avatar_url": avatar, "birth_date": BIRTH_DATE,
        })),
    )
    .await;
    let verified = ok(
        &server,
        "POST",
        "/v1/me/verification",
        &dora,
        Some(json!({
            "kind": "person", "real_name": REAL_NAME, "id_number": ID_NUMBER,
        })),
    )
    .await;
    assert_eq!(verified["status"], "verified", "{verified}");
    let profile = record(&server, keys::member(&dora_id)).await;
    let openid = profile["openid"].as_str().unwrap().to_owned();
    let sealed = record(&server, keys::verification(&dora_id)).await;
    let sealed_name = sealed["name_sealed"]["ct"].as_str().unwrap().to_owned();
    let sealed_number = sealed["number_sealed"]["ct"].as_str().unwrap().to_owned();
    // Her payout accounts: her own WeChat account (openid and verified name, registered at the
    // WeChat Pay stand-in) and an Alipay account (bound at the Alipay stand-in).
    ok(&server, "PUT", "/v1/me/payout-accounts/wechat", &dora, None).await;
    ok(
        &server,
        "PUT",
        "/v1/me/payout-accounts/alipay",
        &dora,
        Some(json!({"account": "dora@example.com", "name": REAL_NAME})),
    )
    .await;
    let payout = record(&server, keys::payout_account(&dora_id, "alipay")).await;
    let sealed_payout = payout["account_sealed"]["ct"].as_str().unwrap().to_owned();
    let receivers = |base: String, path: &'static str| async move {
        reqwest::get(format!("{base}{path}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let wechat_receivers = || {
        receivers(
            server.running.wechatpay_base.clone(),
            "/sandbox/profitsharing/receivers",
        )
    };
    let alipay_relations = || {
        receivers(
            server.running.alipay_base.clone(),
            "/sandbox/royalty/relations",
        )
    };
    assert!(wechat_receivers().await.contains(&openid));
    assert!(alipay_relations().await.contains("dora@example.com"));

    // Listings, favourites both ways, follows both ways, blocks both ways, a share.
    let mut located = service("朵拉婚礼跟拍");
    located["location"] = json!({"lat": 39.912345, "lng": 116.412345});
    let dora_listing = api.create_listing(&dora, located).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sam_listing = api.create_listing(&sam, service("山姆人像写真")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &server,
        "PUT",
        &format!("/v1/me/favorites/{sam_listing}"),
        &dora,
        None,
    )
    .await;
    ok(
        &server,
        "PUT",
        &format!("/v1/me/favorites/{dora_listing}"),
        &bea,
        None,
    )
    .await;
    ok(
        &server,
        "PUT",
        &format!("/v1/me/following/{}", sam.id),
        &dora,
        None,
    )
    .await;
    ok(
        &server,
        "PUT",
        &format!("/v1/me/following/{}", dora.id),
        &sam,
        None,
    )
    .await;
    ok(
        &server,
        "PUT",
        &format!("/v1/me/following/{}", dora.id),
        &bea,
        None,
    )
    .await;
    ok(
        &server,
        "PUT",
        &format!("/v1/me/blocks/{}", carl.id),
        &dora,
        None,
    )
    .await;
    ok(
        &server,
        "PUT",
        &format!("/v1/me/blocks/{}", dora.id),
        &carl,
        None,
    )
    .await;
    ok(
        &server,
        "POST",
        &format!("/v1/listings/{sam_listing}/shares"),
        &dora,
        Some(json!({"channel": "link"})),
    )
    .await;

    // Orders both ways to completion, reviewed both ways; tickets with messages.
    let bought = server.completed_order(&sam, &dora, &sam_listing).await;
    let sold = server.completed_order(&dora, &bea, &dora_listing).await;
    ok(
        &server,
        "POST",
        &format!("/v1/orders/{bought}/reviews"),
        &dora,
        Some(json!({"rating": 4, "text": "拍得很好"})),
    )
    .await;
    ok(
        &server,
        "POST",
        &format!("/v1/orders/{sold}/reviews"),
        &bea,
        Some(json!({"rating": 5, "text": "朵拉很专业"})),
    )
    .await;
    let ticket = ok(&server, "POST", "/v1/tickets", &dora, Some(json!({
        "kind": "order", "subject": "照片交付", "text": "请问底片什么时候给我？", "order_id": bought,
    })))
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &server,
        "POST",
        &format!("/v1/tickets/{ticket}/messages"),
        &dora,
        Some(json!({"text": "我的电话是 13800138000"})),
    )
    .await;
    ok(
        &server,
        "POST",
        &format!("/v1/tickets/{ticket}/messages"),
        &sam,
        Some(json!({"text": "明天发"})),
    )
    .await;
    let sam_before = record(&server, keys::member(&sam_id)).await;
    assert_eq!(
        (
            count(&sam_before, "followers_count"),
            count(&sam_before, "following_count")
        ),
        (1, 1)
    );

    // Both orders are within their dispute window: refused, naming them; nothing changed.
    let refused = api.call("DELETE", "/v1/me", Some(&dora.token), None).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (409, "deletion_blocked"),
        "{refused:?}"
    );
    let blocking = refused.body["error"]["blocking"].as_array().unwrap();
    let named: Vec<(&str, &str)> = blocking
        .iter()
        .map(|b| (b["id"].as_str().unwrap(), b["role"].as_str().unwrap()))
        .collect();
    assert!(named.contains(&(bought.as_str(), "buyer")), "{blocking:?}");
    assert!(named.contains(&(sold.as_str(), "seller")), "{blocking:?}");
    assert_eq!(blocking[0]["kind"], "order");
    assert_eq!(blocking[0]["status"], "completed");
    assert_eq!(
        record(&server, keys::member(&dora_id))
            .await
            .get("deleting"),
        None
    );
    assert_eq!(
        api.call("GET", "/v1/me", Some(&dora.token), None)
            .await
            .status,
        200
    );

    // A copy of her data, made before: it goes with her.
    let asked = api
        .call("POST", "/v1/me/export", Some(&dora.token), None)
        .await;
    assert_eq!(asked.status, 202, "{asked:?}");
    let export_jobs = server.running.function_app("ExportJobsFunction").unwrap();
    let built = exports::jobs::run(export_jobs, OffsetDateTime::now_utc(), Default::default())
        .await
        .unwrap();
    assert_eq!(built.built, 1, "{built:?}");
    let ready = api
        .call("GET", "/v1/me/export", Some(&dora.token), None)
        .await;
    let link = ready.body["url"].as_str().expect("a link").to_owned();
    let download = |link: String| async move { reqwest::get(&link).await.unwrap().status() };
    assert_eq!(download(link.clone()).await, 200);

    // The windows pass: the deletion starts (202), sessions are gone, the login is free.
    complete_days_ago(&server, &bought, 20).await;
    complete_days_ago(&server, &sold, 20).await;
    // What she sold is not split yet: her earnings are unsettled, and that blocks too.
    let blocked = api.call("DELETE", "/v1/me", Some(&dora.token), None).await;
    assert_eq!(blocked.status, 409, "{blocked:?}");
    assert_eq!(
        blocked.body["error"]["blocking"],
        json!([{"kind": "order", "id": sold, "role": "seller", "status": "completed",
            "settlement": "pending"}])
    );
    settled(&server, &sold).await;
    let started = api.call("DELETE", "/v1/me", Some(&dora.token), None).await;
    assert_eq!(started.status, 202, "{started:?}");
    assert_eq!(started.body["status"], "deleting");
    assert_eq!(started.body["requested_by"], "member");
    assert_eq!(
        api.call("GET", "/v1/me", Some(&dora.token), None)
            .await
            .status,
        401
    );
    assert_eq!(
        api.call("DELETE", "/v1/me", Some(&dora.token), None)
            .await
            .status,
        401
    );
    assert_eq!(
        api.call("GET", &format!("/v1/users/{}", dora.id), None, None)
            .await
            .status,
        404
    );
    // Nobody can order from, follow or block a deleting member meanwhile.
    let order = api
        .call(
            "POST",
            "/v1/orders",
            Some(&bea.token),
            Some(json!({"listing_id": dora_listing, "quantity": 1})),
        )
        .await;
    assert_eq!(
        (order.status, order.error_code()),
        (409, "listing_unavailable"),
        "{order:?}"
    );
    let follow = api
        .call(
            "PUT",
            &format!("/v1/me/following/{}", dora.id),
            Some(&carl.token),
            None,
        )
        .await;
    assert_eq!(follow.status, 404, "{follow:?}");
    // Not even by one who follows her already (a repeat is otherwise idempotent).
    let again = api
        .call(
            "PUT",
            &format!("/v1/me/following/{}", dora.id),
            Some(&bea.token),
            None,
        )
        .await;
    assert_eq!(again.status, 404, "{again:?}");

    // The job, one batch per run (each run's end is a crash's), IM down once.
    let im = FlakyIm(Default::default());
    let runs = run_to_the_end(&server, &im, 1).await;
    assert_eq!(download(link).await, 404, "the copy of her data is deleted");
    assert!(runs > 10, "{runs} runs");
    renji_tests::assert_grants_all_used(&server.running, "DeletionJobsFunction");

    // The raw store: the anonymous reference replaces dora in what is kept.
    let order = record(
        &server,
        keys::order(&renji_shared::ids::OrderId::parse(&bought).unwrap()),
    )
    .await;
    let anon = order["buyer_id"].as_str().unwrap().to_owned();
    assert_ne!(anon, dora.id);
    assert_eq!(order["remark"], "");
    assert!(
        order.get("ttl").and_then(Value::as_i64).unwrap()
            > OffsetDateTime::now_utc().unix_timestamp() + 1000 * 86400
    );
    let sold_order = record(
        &server,
        keys::order(&renji_shared::ids::OrderId::parse(&sold).unwrap()),
    )
    .await;
    assert_eq!(sold_order["seller_id"], json!(anon));
    let t = record(
        &server,
        keys::ticket(&renji_shared::ids::TicketId::parse(&ticket).unwrap()),
    )
    .await;
    assert_eq!(t["author_id"], json!(anon));

    // Her receivers are gone at both providers.
    assert!(!wechat_receivers().await.contains(&openid));
    assert!(!alipay_relations().await.contains("dora@example.com"));
    let items = server.app().store.scan_all().await.unwrap();
    let secrets = [
        openid.as_str(),
        NICKNAME,
        avatar.as_str(),
        BIRTH_DATE,
        REAL_NAME,
        ID_NUMBER,
        "13800138000",
        sealed_name.as_str(),
        sealed_number.as_str(),
        sealed_payout.as_str(),
        "dora@example.com",
    ];
    let mut reviews = 0;
    for item in &items {
        let text = serde_json::to_string(item).unwrap();
        let pk = item["pk"].as_str().unwrap();
        for secret in secrets {
            // The ticket message's text is kept (anonymised: no author), as the member wrote it.
            if secret == "13800138000" && pk.starts_with(keys::TICKET) {
                continue;
            }
            assert!(!text.contains(secret), "{secret} remains in {text}");
        }
        assert!(
            !pk.starts_with(keys::IDCLAIM),
            "the identity claim remains: {text}"
        );
        let tombstone = pk == keys::user(&dora_id) && item["sk"] == "PROFILE";
        let audit = pk.starts_with(keys::AUDIT);
        if !tombstone && !audit {
            assert!(
                !text.contains(&dora.id),
                "the member's id remains in {text}"
            );
        }
        if tombstone {
            assert_eq!(item["deletion"]["status"], "deleted", "{text}");
            assert!(item["deletion"].get("anonymous_ref").is_none(), "{text}");
            assert!(!text.contains(&anon), "{text}");
        }
        if pk.starts_with(keys::REVIEW) && item["sk"] == "REVIEW" {
            reviews += 1;
            assert!(
                item["author_id"] == json!(anon) || item["seller_id"] == json!(anon),
                "{text}"
            );
        }
    }
    assert_eq!(reviews, 2, "both reviews kept");
    let actions: Vec<&str> = items
        .iter()
        .filter(|i| {
            i["pk"] == json!(format!("AUDIT#target#member:{}", dora.id))
                || i["pk"] == json!(format!("AUDIT#actor#member:{}", dora.id))
        })
        .filter_map(|i| i["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"account.delete") && actions.contains(&"account.deleted"),
        "{actions:?}"
    );

    // The counterparties' counts.
    let sam_after = record(&server, keys::member(&sam_id)).await;
    assert_eq!(
        (
            count(&sam_after, "followers_count"),
            count(&sam_after, "following_count")
        ),
        (0, 0)
    );
    assert_eq!(
        (
            count(&sam_after, "rating_sum"),
            count(&sam_after, "rating_count")
        ),
        (4, 1),
        "dora's review stays"
    );
    let bea_after = record(&server, keys::member(&UserId::parse(&bea.id).unwrap())).await;
    assert_eq!(count(&bea_after, "following_count"), 0);
    let listing = record(
        &server,
        keys::listing(&renji_shared::ids::ListingId::parse(&sam_listing).unwrap()),
    )
    .await;
    assert_eq!(
        (
            count(&listing, "favorites_count"),
            count(&listing, "shares_count")
        ),
        (0, 0)
    );
    // Logging in again with the same WeChat account is a new member.
    let again = server.member("dora", false).await;
    assert_ne!(again.id, dora.id);
    let carls = ok(&server, "GET", "/v1/me/blocks", &carl, None).await;
    assert_eq!(carls["items"], json!([]), "carl's block of dora is gone");
    // The identity verifies a new account again.
    let verified = ok(
        &server,
        "POST",
        "/v1/me/verification",
        &again,
        Some(json!({
            "kind": "person", "real_name": REAL_NAME, "id_number": ID_NUMBER,
        })),
    )
    .await;
    assert_eq!(verified["status"], "verified", "{verified}");
}

async fn staff_start_a_deletion_for_a_ticket_and_bad_input_writes_nothing(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let api = &server.api;
    let eve = server.member("eve", false).await;
    let finn = server.member("finn", false).await;
    let eve_id = UserId::parse(&eve.id).unwrap();
    let ticket = ok(
        &server,
        "POST",
        "/v1/tickets",
        &eve,
        Some(json!({
            "kind": "privacy", "subject": "注销账号", "text": "请帮我注销账号",
        })),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let finns = ok(
        &server,
        "POST",
        "/v1/tickets",
        &finn,
        Some(json!({
            "kind": "other", "subject": "问题", "text": "一个问题",
        })),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let support = api.staff_token("staff:sue:support").await;
    let moderator = api.staff_token("staff:sue:moderator").await;
    let path = format!("/admin/v1/members/{}/deletion", eve.id);
    let before = record(&server, keys::member(&eve_id)).await;

    // Bad input: 4xx, nothing written.
    for (token, body, status, field) in [
        (&support, json!({"ticket_id": "nope"}), 422, "ticket_id"),
        (&support, json!({"ticket_id": finns}), 422, "ticket_id"),
        (
            &support,
            json!({"ticket_id": ticket, "extra": 1}),
            422,
            "extra",
        ),
        (&support, json!({}), 422, "ticket_id"),
        (
            &support,
            json!({"ticket_id": ticket, "reason": "\u{0}"}),
            422,
            "reason",
        ),
        (
            &support,
            json!({"ticket_id": ticket, "reason": null}),
            422,
            "reason",
        ),
        (&moderator, json!({"ticket_id": ticket}), 403, ""),
    ] {
        let reply = api
            .call("POST", &path, Some(token), Some(body.clone()))
            .await;
        assert_eq!(reply.status, status, "{body}: {reply:?}");
        if !field.is_empty() {
            assert_eq!(reply.field(), field, "{reply:?}");
        }
    }
    let unknown = api
        .call(
            "POST",
            &format!("/admin/v1/members/{}/deletion", UserId::generate()),
            Some(&support),
            Some(json!({"ticket_id": ticket})),
        )
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    for (path, body) in [
        ("/v1/me?x=1", None),
        ("/v1/me", Some("{\"a\":1}".to_owned())),
    ] {
        let reply = api.raw("DELETE", path, Some(&finn.token), body).await;
        assert!((400..500).contains(&reply.status), "{path}: {reply:?}");
    }
    assert_eq!(record(&server, keys::member(&eve_id)).await, before);
    assert_eq!(
        api.call("GET", "/v1/me", Some(&finn.token), None)
            .await
            .status,
        200
    );

    // While eve has an order that is not final, staff's deletion is refused, and audited as
    // refused (its code, not `ok`); cancelled, it no longer blocks.
    let sam = server.member("sam", true).await;
    let listing = api.create_listing(&sam, service("跟拍")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = ok(
        &server,
        "POST",
        "/v1/orders",
        &eve,
        Some(json!({"listing_id": listing, "quantity": 1})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = api
        .call(
            "POST",
            &path,
            Some(&support),
            Some(json!({"ticket_id": ticket})),
        )
        .await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (409, "deletion_blocked"),
        "{refused:?}"
    );
    let admin = api.staff_token("staff:sue:admin").await;
    let trail = api
        .call("GET", "/admin/v1/audit?actor=sue", Some(&admin), None)
        .await;
    let refusal = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "POST /admin/v1/members/{id}/deletion")
        .cloned()
        .expect("the refused deletion is audited");
    assert_eq!(refusal["outcome"], "deletion_blocked", "{refusal}");
    ok(
        &server,
        "POST",
        &format!("/v1/orders/{order}/cancel"),
        &eve,
        None,
    )
    .await;

    // Staff start it: 202, the member is signed out; a repeat (staff's) answers the same.
    let started = api
        .call(
            "POST",
            &path,
            Some(&support),
            Some(json!({"ticket_id": ticket, "reason": "客服核实身份后受理"})),
        )
        .await;
    assert_eq!(started.status, 202, "{started:?}");
    assert_eq!(
        (
            started.body["requested_by"].clone(),
            started.body["ticket_id"].clone()
        ),
        (json!("staff"), json!(ticket))
    );
    let again = api
        .call(
            "POST",
            &path,
            Some(&support),
            Some(json!({"ticket_id": ticket})),
        )
        .await;
    assert_eq!((again.status, &again.body), (202, &started.body));
    assert_eq!(
        api.call("GET", "/v1/me", Some(&eve.token), None)
            .await
            .status,
        401
    );
    let trail = server
        .app()
        .store
        .query(Query::partition(format!("AUDIT#target#member:{}", eve.id)))
        .await
        .unwrap()
        .items;
    assert!(
        trail
            .iter()
            .any(|r| r["action"] == "account.delete" && r["staff_id"].is_string()),
        "{trail:?}"
    );

    run_to_the_end(&server, &NoImAccounts, usize::MAX).await;
    let done = api
        .call(
            "POST",
            &path,
            Some(&support),
            Some(json!({"ticket_id": ticket})),
        )
        .await;
    assert_eq!(
        (done.status, &done.body["status"]),
        (202, &json!("deleted")),
        "{done:?}"
    );
    assert!(done.body["deleted_at"].is_string());
}

on_both_stores!(
    a_member_who_did_everything_leaves_no_personal_data,
    staff_start_a_deletion_for_a_ticket_and_bad_input_writes_nothing,
);

/// Tens of thousands of records (written straight to the store): the job finishes in bounded
/// batches, each run within its budget, and an interrupted run changes nothing about the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tens_of_thousands_of_records_finish_in_bounded_batches() {
    let server = LocalServer::start_with(Backend::Embedded, &[("RENJI_RATE_LIMITS", "off")]).await;
    let gus = server.member("gus", false).await;
    let hal = server.member("hal", false).await;
    let gus_id = UserId::parse(&gus.id).unwrap();
    let hal_id = UserId::parse(&hal.id).unwrap();
    let app: &App = server.app();
    let store = &app.store;
    // 10,000 favourites and 10,000 follows of gus's, and hal following gus.
    let mut writes = Vec::new();
    for n in 0..10_000u32 {
        let listing = renji_shared::ids::ListingId::parse(&format!("l_{n:026}")).unwrap();
        let mut fav = Item::new();
        fav.insert("pk".into(), json!(keys::favourites(&gus_id)));
        fav.insert("sk".into(), json!(listing.as_str()));
        fav.insert("listing_id".into(), json!(listing));
        fav.insert("created_at".into(), json!("2026-01-01T00:00:00Z"));
        writes.push(Write::put(fav));
        let other = UserId::parse(&format!("u_{n:026}")).unwrap();
        for (key, whom) in [
            (keys::following_edge(&gus_id, &other), &other),
            (keys::follower_edge(&other, &gus_id), &gus_id),
        ] {
            let mut edge = Item::new();
            edge.insert("pk".into(), json!(key.pk));
            edge.insert("sk".into(), json!(key.sk));
            edge.insert("user_id".into(), json!(whom));
            edge.insert("created_at".into(), json!("2026-01-01T00:00:00Z"));
            writes.push(Write::put(edge));
        }
        if writes.len() >= 99 {
            store.transact(std::mem::take(&mut writes)).await.unwrap();
        }
    }
    store.transact(writes).await.unwrap();
    ok(
        &server,
        "PUT",
        &format!("/v1/me/following/{}", gus.id),
        &hal,
        None,
    )
    .await;

    let started = server
        .api
        .call("DELETE", "/v1/me", Some(&gus.token), None)
        .await;
    assert_eq!(started.status, 202, "{started:?}");
    let runs = run_to_the_end(&server, &NoImAccounts, 40).await;
    assert!(runs >= 10, "{runs} runs of 40 batches");
    for partition in [keys::favourites(&gus_id), keys::following(&gus_id)] {
        let left = store.query(Query::partition(partition)).await.unwrap();
        assert!(left.items.is_empty());
    }
    let other = UserId::parse(&format!("u_{:026}", 9_999)).unwrap();
    assert!(store
        .get(&keys::follower_edge(&other, &gus_id))
        .await
        .unwrap()
        .is_none());
    let hal_after = record(&server, keys::member(&hal_id)).await;
    assert_eq!(count(&hal_after, "following_count"), 0);
    let tombstone = record(&server, keys::member(&gus_id)).await;
    assert_eq!(tombstone["deletion"]["status"], "deleted");
}
