//! Payout accounts (`PUT`/`GET`/`DELETE /v1/me/payout-accounts[/{channel}]`, issue #12) on both
//! stores, against the local server's WeChat Pay and Alipay stand-ins: each channel bound,
//! listed masked, replaced and unbound — and the stand-in holding exactly the receivers the
//! member has (the name WeChat Pay got decrypted there); only the member's own; every account a
//! verified member's, an Alipay account's name the verified one; bad input (names with emoji,
//! control or zero-width characters among it) changing nothing; a service published only with
//! an account; buyers paying only through the seller's channels; the export holding them
//! masked; the account deletion removing the receivers at the providers.

use renji_shared::domain::deletion::{self, Budget, NoImAccounts};
use renji_shared::domain::exports::jobs;
use renji_shared::ids::UserId;
use renji_shared::store::{keys, Query, SortKey};
use renji_tests::{on_both_stores, service, Backend, LocalServer, Member, Reply};
use serde_json::{json, Value};
use time::OffsetDateTime;

const LIST: &str = "/v1/me/payout-accounts";

fn path(channel: &str) -> String {
    format!("{LIST}/{channel}")
}

async fn server(backend: Backend) -> LocalServer {
    LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await
}

async fn call(
    server: &LocalServer,
    who: &Member,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    server.api.call(method, path, Some(&who.token), body).await
}

/// The WeChat Pay stand-in's profit-sharing receivers.
async fn wechat_receivers(server: &LocalServer) -> Vec<Value> {
    let answer: Value = reqwest::get(format!(
        "{}/sandbox/profitsharing/receivers",
        server.running.wechatpay_base
    ))
    .await
    .expect("stand-in")
    .json()
    .await
    .expect("json");
    answer["receivers"].as_array().expect("receivers").clone()
}

/// The Alipay stand-in's royalty relations, as `(type, account)`.
async fn alipay_relations(server: &LocalServer) -> Vec<(String, String)> {
    let answer: Value = reqwest::get(format!(
        "{}/sandbox/royalty/relations",
        server.running.alipay_base
    ))
    .await
    .expect("stand-in")
    .json()
    .await
    .expect("json");
    answer["relations"]
        .as_array()
        .expect("relations")
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_owned(),
                r["account"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn openid_of(server: &LocalServer, who: &Member) -> String {
    renji_shared::domain::members::get(&server.app().store, &user(who))
        .await
        .unwrap()
        .unwrap()
        .openid
}

fn user(who: &Member) -> UserId {
    UserId::parse(&who.id).unwrap()
}

/// The member's payout records, raw.
async fn stored(server: &LocalServer, who: &Member) -> Vec<Value> {
    server
        .app()
        .store
        .query(
            Query::partition(keys::user(&user(who)))
                .sort(SortKey::Prefix(keys::PAYOUT_PREFIX.into())),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(Value::Object)
        .collect()
}

async fn accounts_are_bound_listed_masked_replaced_and_unbound(backend: Backend) {
    let server = server(backend).await;
    let seller = server.verified_only("payout-seller").await;
    let other = server.verified_only("payout-other").await;
    let openid = openid_of(&server, &seller).await;

    let empty = call(&server, &seller, "GET", LIST, None).await;
    assert_eq!((empty.status, &empty.body), (200, &json!({"items": []})));

    // Her own WeChat account: no body — her openid and her verified name, which the stand-in
    // decrypted from the RSA-OAEP-encrypted `name`.
    let own = call(&server, &seller, "PUT", &path("wechat"), None).await;
    assert_eq!(own.status, 200, "{own:?}");
    assert_eq!(own.body["type"], json!("wechat_personal"));
    assert_eq!(own.body["name"], json!("*三"));
    let shown = own.body["account"].as_str().unwrap();
    assert_ne!(shown, openid);
    assert!(
        shown.contains("****") && shown.len() == openid.len(),
        "{shown}"
    );
    let receivers = wechat_receivers(&server).await;
    assert!(
        receivers.contains(
            &json!({"type": "PERSONAL_OPENID", "account": openid, "name": "张三", "closed": false})
        ),
        "{receivers:?}"
    );
    // `{}` is the same.
    let again = call(&server, &seller, "PUT", &path("wechat"), Some(json!({}))).await;
    assert_eq!(
        (again.status, &again.body["account"]),
        (200, &own.body["account"])
    );
    assert_eq!(wechat_receivers(&server).await.len(), receivers.len());

    // Alipay: a user id, then replaced by a login name (the old relation unbound).
    let ali = call(
        &server,
        &seller,
        "PUT",
        &path("alipay"),
        Some(json!({"account": "2088101126765726", "name": "张三"})),
    )
    .await;
    assert_eq!(ali.status, 200, "{ali:?}");
    assert_eq!(
        (&ali.body["type"], &ali.body["account"], &ali.body["name"]),
        (
            &json!("alipay_user_id"),
            &json!("2088********5726"),
            &json!("*三")
        )
    );
    assert_eq!(
        alipay_relations(&server).await,
        [("userId".to_owned(), "2088101126765726".to_owned())]
    );
    let ali = call(
        &server,
        &seller,
        "PUT",
        &path("alipay"),
        Some(json!({"account": "13800138000", "name": "张三"})),
    )
    .await;
    assert_eq!(
        (ali.status, &ali.body["type"], &ali.body["account"]),
        (200, &json!("alipay_login_name"), &json!("138****8000")),
        "{ali:?}"
    );
    assert_eq!(
        alipay_relations(&server).await,
        [("loginName".to_owned(), "13800138000".to_owned())]
    );

    // Both listed, by channel name; nothing stored in the clear.
    let listed = call(&server, &seller, "GET", LIST, None).await;
    assert_eq!(listed.status, 200);
    let channels: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["alipay", "wechat"]);
    let raw = serde_json::to_string(&stored(&server, &seller).await).unwrap();
    for secret in [openid.as_str(), "张三", "13800138000", "2088101126765726"] {
        assert!(!raw.contains(secret), "{secret} stored in the clear: {raw}");
    }

    // A business's merchant number replaces her openid at WeChat Pay; its name is shown.
    let merchant = call(
        &server,
        &seller,
        "PUT",
        &path("wechat"),
        Some(json!({"merchant_id": "1900000109", "merchant_name": "某某摄影有限公司"})),
    )
    .await;
    assert_eq!(merchant.status, 200, "{merchant:?}");
    assert_eq!(
        (
            &merchant.body["type"],
            &merchant.body["name"],
            &merchant.body["account"]
        ),
        (
            &json!("wechat_merchant"),
            &json!("某某摄影有限公司"),
            &json!("1900**0109")
        )
    );
    let receivers = wechat_receivers(&server).await;
    assert!(receivers
        .iter()
        .any(|r| r["account"] == json!("1900000109") && r["type"] == json!("MERCHANT_ID")));
    assert!(
        !receivers.iter().any(|r| r["account"] == json!(openid)),
        "{receivers:?}"
    );

    // Only her own: another member sees none of hers and cannot unbind them.
    let theirs = call(&server, &other, "GET", LIST, None).await;
    assert_eq!(theirs.body, json!({"items": []}));
    let refused = call(&server, &other, "DELETE", &path("alipay"), None).await;
    assert_eq!((refused.status, refused.error_code()), (404, "not_found"));
    let anonymous = server.api.call("GET", LIST, None, None).await;
    assert_eq!(anonymous.status, 401);
    let anonymous = server.api.call("PUT", &path("wechat"), None, None).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(stored(&server, &seller).await.len(), 2);

    // Unbound: the relation goes at Alipay, then the account; a second time is 404.
    let gone = call(&server, &seller, "DELETE", &path("alipay"), None).await;
    assert_eq!(gone.status, 204, "{gone:?}");
    assert!(alipay_relations(&server).await.is_empty());
    let listed = call(&server, &seller, "GET", LIST, None).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let again = call(&server, &seller, "DELETE", &path("alipay"), None).await;
    assert_eq!(again.status, 404);
    let gone = call(&server, &seller, "DELETE", &path("wechat"), None).await;
    assert_eq!(gone.status, 204);
    assert!(wechat_receivers(&server).await.is_empty());
    assert!(stored(&server, &seller).await.is_empty());
}

/// Every payout account is a verified member's: unverified, each kind is 409
/// `verification_required`, and nothing is claimed, registered or stored.
async fn every_account_needs_a_verified_member(backend: Backend) {
    let server = server(backend).await;
    let unverified = server.member("payout-unverified", false).await;
    for (channel, body) in [
        ("wechat", None),
        (
            "wechat",
            Some(json!({"merchant_id": "1900000109", "merchant_name": "某某摄影有限公司"})),
        ),
        (
            "alipay",
            Some(json!({"account": "someone@example.com", "name": "李四"})),
        ),
        (
            "alipay",
            Some(json!({"account": "2088101126765726", "name": "张三"})),
        ),
    ] {
        let refused = call(&server, &unverified, "PUT", &path(channel), body.clone()).await;
        assert_eq!(
            (refused.status, refused.error_code()),
            (409, "verification_required"),
            "{channel} {body:?}: {refused:?}"
        );
    }
    assert!(stored(&server, &unverified).await.is_empty());
    assert!(wechat_receivers(&server).await.is_empty());
    assert!(alipay_relations(&server).await.is_empty());
    // Nothing claimed either: a verified member binds the same accounts.
    let verified = server.verified_only("payout-verified").await;
    for (channel, body) in [
        (
            "wechat",
            json!({"merchant_id": "1900000109", "merchant_name": "某某摄影有限公司"}),
        ),
        (
            "alipay",
            json!({"account": "2088101126765726", "name": "张三"}),
        ),
    ] {
        let bound = call(&server, &verified, "PUT", &path(channel), Some(body)).await;
        assert_eq!(bound.status, 200, "{channel}: {bound:?}");
    }
}

/// An Alipay account's holder is the member: `name` must be their verified name (compared
/// after trimming); another name is 422 `payout_name_mismatch` before Alipay is asked.
async fn an_alipay_name_must_be_the_verified_name(backend: Backend) {
    let server = server(backend).await;
    // Verified as 张三, with their own WeChat account bound.
    let seller = server.member("payout-named", true).await;
    let before = stored(&server, &seller).await;
    for name in ["李四", "张三丰", "Zhang San", "张 三"] {
        let refused = call(
            &server,
            &seller,
            "PUT",
            &path("alipay"),
            Some(json!({"account": "2088101126765726", "name": name})),
        )
        .await;
        assert_eq!(
            (refused.status, refused.error_code(), refused.field()),
            (422, "payout_name_mismatch", "name"),
            "{name}: {refused:?}"
        );
        assert!(
            !refused.body.to_string().contains("张三"),
            "the verified name echoed: {refused:?}"
        );
    }
    assert_eq!(stored(&server, &seller).await, before);
    assert!(alipay_relations(&server).await.is_empty());
    // The same account in the verified name (spaces around it trimmed) is bound, and is the
    // mismatching binds' account: none of them claimed it.
    let bound = call(
        &server,
        &seller,
        "PUT",
        &path("alipay"),
        Some(json!({"account": "2088101126765726", "name": " 张三 "})),
    )
    .await;
    assert_eq!(
        (bound.status, &bound.body["name"]),
        (200, &json!("*三")),
        "{bound:?}"
    );
    assert_eq!(
        alipay_relations(&server).await,
        [("userId".to_owned(), "2088101126765726".to_owned())]
    );
}

/// The stand-in plays WeChat Pay's check of a receiver's name (`sandbox-mismatch` in it) and an
/// outage (`sandbox-outage`): the refusal is 422 with WeChat's reason, the outage 503, and the
/// account bound before stays, at WeChat Pay and here.
async fn provider_refusals_and_outages_change_nothing(backend: Backend) {
    let server = server(backend).await;
    let seller = server.verified_only("payout-refused").await;
    let merchant = |name: &str| json!({"merchant_id": "1900000109", "merchant_name": name});
    let bound = call(
        &server,
        &seller,
        "PUT",
        &path("wechat"),
        Some(merchant("某某摄影有限公司")),
    )
    .await;
    assert_eq!(bound.status, 200, "{bound:?}");
    let before = stored(&server, &seller).await;
    let receivers = wechat_receivers(&server).await;
    let refused = call(
        &server,
        &seller,
        "PUT",
        &path("wechat"),
        Some(json!({"merchant_id": "1900000110", "merchant_name": "别家公司 sandbox-mismatch"})),
    )
    .await;
    assert_eq!(
        (refused.status, refused.error_code(), refused.field()),
        (422, "payout_account_refused", "merchant_id"),
        "{refused:?}"
    );
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("PARAM_ERROR"));
    let down = call(
        &server,
        &seller,
        "PUT",
        &path("wechat"),
        Some(json!({"merchant_id": "1900000110", "merchant_name": "别家公司 sandbox-outage"})),
    )
    .await;
    assert_eq!(
        (down.status, down.error_code()),
        (503, "service_unavailable"),
        "{down:?}"
    );
    assert_eq!(stored(&server, &seller).await, before);
    assert_eq!(wechat_receivers(&server).await, receivers);
    let listed = call(&server, &seller, "GET", LIST, None).await;
    assert_eq!(listed.body["items"][0]["account"], json!("1900**0109"));
}

async fn bad_input_changes_nothing(backend: Backend) {
    let server = server(backend).await;
    let seller = server.member("payout-bad", true).await;
    let before = stored(&server, &seller).await;
    let receivers = wechat_receivers(&server).await;
    let cases: Vec<(&str, &str, Option<&str>, u16, &str)> = vec![
        (
            "PUT",
            "wechat",
            Some(r#"{"openid": "o-someone-else"}"#),
            422,
            "openid",
        ),
        (
            "PUT",
            "wechat",
            Some(r#"{"merchant_id": "12ab5678", "merchant_name": "某某公司"}"#),
            422,
            "merchant_id",
        ),
        (
            "PUT",
            "wechat",
            Some(r#"{"merchant_id": "1900000109"}"#),
            422,
            "merchant_name",
        ),
        (
            "PUT",
            "wechat",
            Some(r#"{"merchant_name": "某某公司"}"#),
            422,
            "merchant_id",
        ),
        (
            "PUT",
            "wechat",
            Some(r#"{"merchant_id": "1900000109", "merchant_name": "某"}"#),
            422,
            "merchant_name",
        ),
        (
            "PUT",
            "wechat",
            Some(r#"{"merchant_id": 1900000109, "merchant_name": "某某公司"}"#),
            422,
            "merchant_id",
        ),
        ("PUT", "wechat", Some("[1]"), 422, "body"),
        ("PUT", "wechat", Some("{\"merchant_id\": "), 400, ""),
        ("PUT", "alipay", None, 400, ""),
        (
            "PUT",
            "alipay",
            Some(r#"{"account": "2088101126765726"}"#),
            422,
            "name",
        ),
        ("PUT", "alipay", Some(r#"{"name": "张三"}"#), 422, "account"),
        (
            "PUT",
            "alipay",
            Some(r#"{"account": "2088", "name": "张三"}"#),
            422,
            "account",
        ),
        (
            "PUT",
            "alipay",
            Some(r#"{"account": "not an account", "name": "张三"}"#),
            422,
            "account",
        ),
        (
            "PUT",
            "alipay",
            Some(r#"{"account": "2088101126765726", "name": "张"}"#),
            422,
            "name",
        ),
        (
            "PUT",
            "alipay",
            Some(r#"{"account": "2088101126765726", "name": "张三", "kind": "userId"}"#),
            422,
            "kind",
        ),
        // Names hold only what a legal or registered name holds: no emoji, control, format or
        // zero-width characters, and the check comes before the verified name is compared.
        (
            "PUT",
            "alipay",
            Some(r#"{"account": "2088101126765726", "name": "张三😀"}"#),
            422,
            "name",
        ),
        (
            "PUT",
            "alipay",
            Some(r#"{"account": "2088101126765726", "name": "张\u200b三"}"#),
            422,
            "name",
        ),
        (
            "PUT",
            "alipay",
            Some(r#"{"account": "2088101126765726", "name": "张\u0000三"}"#),
            422,
            "name",
        ),
        (
            "PUT",
            "wechat",
            Some(r#"{"merchant_id": "1900000109", "merchant_name": "某某摄影🎉有限公司"}"#),
            422,
            "merchant_name",
        ),
        (
            "PUT",
            "wechat",
            Some(r#"{"merchant_id": "1900000109", "merchant_name": "某某\u202e摄影有限公司"}"#),
            422,
            "merchant_name",
        ),
        (
            "PUT",
            "wechat",
            Some(r#"{"merchant_id": "1900000109", "merchant_name": "某某摄影\u0007有限公司"}"#),
            422,
            "merchant_name",
        ),
        (
            "PUT",
            "bank",
            Some(r#"{"account": "6222020200112233445", "name": "张三"}"#),
            404,
            "",
        ),
        ("DELETE", "bank", None, 404, ""),
        ("DELETE", "alipay", None, 404, ""),
        ("DELETE", "wechat", Some(r#"{"now": true}"#), 422, "now"),
    ];
    for (method, channel, body, status, field) in cases {
        let reply = server
            .api
            .raw(
                method,
                &path(channel),
                Some(&seller.token),
                body.map(str::to_owned),
            )
            .await;
        assert_eq!(
            reply.status, status,
            "{method} {channel} {body:?}: {reply:?}"
        );
        assert!(reply.body["error"]["code"].is_string(), "{reply:?}");
        if !field.is_empty() {
            assert_eq!(
                reply.field(),
                field,
                "{method} {channel} {body:?}: {reply:?}"
            );
        }
    }
    assert_eq!(stored(&server, &seller).await, before);
    assert_eq!(wechat_receivers(&server).await, receivers);
    assert!(alipay_relations(&server).await.is_empty());
    let listed = call(&server, &seller, "GET", &format!("{LIST}?all=1"), None).await;
    assert_eq!((listed.status, listed.field()), (422, "all"));
}

async fn a_service_is_published_only_by_a_seller_with_an_account(backend: Backend) {
    let server = server(backend).await;
    let seller = server.verified_only("payout-publisher").await;
    let refused = call(
        &server,
        &seller,
        "POST",
        "/v1/listings",
        Some(service("婚礼跟拍")),
    )
    .await;
    assert_eq!(
        (refused.status, refused.error_code(), refused.field()),
        (422, "payout_account_required", "status"),
        "{refused:?}"
    );
    let mut draft = service("婚礼跟拍");
    draft["status"] = json!("draft");
    let draft = call(&server, &seller, "POST", "/v1/listings", Some(draft)).await;
    assert_eq!(draft.status, 201, "{draft:?}");
    let id = draft.body["id"].as_str().unwrap().to_owned();
    let publish = json!({"status": "published"});
    let refused = call(
        &server,
        &seller,
        "PATCH",
        &format!("/v1/listings/{id}"),
        Some(publish.clone()),
    )
    .await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (422, "payout_account_required")
    );
    let ali = call(
        &server,
        &seller,
        "PUT",
        &path("alipay"),
        Some(json!({"account": "2088101126765726", "name": "张三"})),
    )
    .await;
    assert_eq!(ali.status, 200);
    let published = call(
        &server,
        &seller,
        "PATCH",
        &format!("/v1/listings/{id}"),
        Some(publish),
    )
    .await;
    assert_eq!(
        (published.status, &published.body["status"]),
        (200, &json!("published")),
        "{published:?}"
    );
}

async fn buyers_pay_only_through_the_sellers_channels(backend: Backend) {
    let server = server(backend).await;
    let seller = server.verified_only("payout-alipay-seller").await;
    let buyer = server.member("payout-buyer", false).await;
    let ali = call(
        &server,
        &seller,
        "PUT",
        &path("alipay"),
        Some(json!({"account": "2088101126765726", "name": "张三"})),
    )
    .await;
    assert_eq!(ali.status, 200);
    let listing = server
        .api
        .create_listing(&seller, service("上门摄影"))
        .await;
    let listing = listing["id"].as_str().unwrap().to_owned();
    let order = call(
        &server,
        &buyer,
        "POST",
        "/v1/orders",
        Some(json!({"listing_id": listing, "quantity": 1})),
    )
    .await;
    assert_eq!(order.status, 201, "{order:?}");
    let pay = format!("/v1/orders/{}/payments", order.body["id"].as_str().unwrap());
    let refused = call(
        &server,
        &buyer,
        "POST",
        &pay,
        Some(json!({"channel": "wechat"})),
    )
    .await;
    assert_eq!(
        (refused.status, refused.error_code(), refused.field()),
        (422, "channel_unavailable", "channel"),
        "{refused:?}"
    );
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("alipay"));
    let started = call(
        &server,
        &buyer,
        "POST",
        &pay,
        Some(json!({"channel": "alipay_wap"})),
    )
    .await;
    assert_eq!(started.status, 200, "{started:?}");

    // The seller removes their last account: the listing stays published, and cannot be paid.
    let gone = call(&server, &seller, "DELETE", &path("alipay"), None).await;
    assert_eq!(gone.status, 204);
    let shown = server
        .api
        .call("GET", &format!("/v1/listings/{listing}"), None, None)
        .await;
    assert_eq!(shown.body["status"], json!("published"));
    for channel in ["alipay", "wechat"] {
        let refused = call(
            &server,
            &buyer,
            "POST",
            &pay,
            Some(json!({"channel": channel})),
        )
        .await;
        assert_eq!(
            (refused.status, refused.error_code()),
            (422, "channel_unavailable"),
            "{channel}"
        );
    }
}

async fn the_export_holds_them_masked_and_deletion_removes_the_receivers(backend: Backend) {
    let server = server(backend).await;
    let seller = server.member("payout-leaver", true).await;
    let openid = openid_of(&server, &seller).await;
    let ali = call(
        &server,
        &seller,
        "PUT",
        &path("alipay"),
        Some(json!({"account": "2088101126765726", "name": "张三"})),
    )
    .await;
    assert_eq!(ali.status, 200);

    let asked = call(&server, &seller, "POST", "/v1/me/export", None).await;
    assert_eq!(asked.status, 202, "{asked:?}");
    let job = server.running.function_app("ExportJobsFunction").unwrap();
    let report = jobs::run(job, OffsetDateTime::now_utc(), jobs::Budget::default())
        .await
        .unwrap();
    assert_eq!(report.built, 1, "{report:?}");
    let ready = call(&server, &seller, "GET", "/v1/me/export", None).await;
    let text = reqwest::get(ready.body["url"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    let listed = call(&server, &seller, "GET", LIST, None).await;
    assert_eq!(document["payout_accounts"], listed.body["items"]);
    assert_eq!(document["payout_accounts"].as_array().unwrap().len(), 2);
    assert!(!text.contains(&openid) && !text.contains("2088101126765726"));
    assert!(!document["other_records"].to_string().contains("PAYOUT"));

    let started = call(&server, &seller, "DELETE", "/v1/me", None).await;
    assert_eq!(started.status, 202, "{started:?}");
    let job = server.running.function_app("DeletionJobsFunction").unwrap();
    let budget = Budget::default();
    for _ in 0..10 {
        let report = deletion::run(job, &NoImAccounts, OffsetDateTime::now_utc(), budget)
            .await
            .unwrap();
        if report.members == 0 {
            break;
        }
    }
    assert!(stored(&server, &seller).await.is_empty());
    assert!(alipay_relations(&server).await.is_empty());
    let receivers = wechat_receivers(&server).await;
    assert!(
        !receivers.iter().any(|r| r["account"] == json!(openid)),
        "{receivers:?}"
    );
}

/// A receiver is one at the provider: a second member may not bind an account another holds
/// (their unbind would remove it for the first), and 20 binds racing leave no receiver at the
/// provider but the one stored.
async fn an_account_is_one_members_and_racing_binds_leave_no_orphans(backend: Backend) {
    let server = server(backend).await;
    let owner = server.verified_only("payout-owner").await;
    let other = server.verified_only("payout-other").await;
    let alipay = |account: &str| json!({"account": account, "name": "张三"});
    let bound = call(
        &server,
        &owner,
        "PUT",
        &path("alipay"),
        Some(alipay("2088101126765726")),
    )
    .await;
    assert_eq!(bound.status, 200, "{bound:?}");
    for body in [
        (path("alipay"), alipay("2088101126765726")),
        (
            path("wechat"),
            json!({"merchant_id": "1900000109", "merchant_name": "某某摄影有限公司"}),
        ),
    ] {
        if body.0.ends_with("wechat") {
            let first = call(&server, &owner, "PUT", &body.0, Some(body.1.clone())).await;
            assert_eq!(first.status, 200, "{first:?}");
        }
        let taken = call(&server, &other, "PUT", &body.0, Some(body.1)).await;
        assert_eq!(
            (taken.status, taken.error_code()),
            (422, "payout_account_taken"),
            "{taken:?}"
        );
    }
    // The other member has nothing to unbind; the owner's receivers stay at the providers.
    let gone = call(&server, &other, "DELETE", &path("alipay"), None).await;
    assert_eq!(gone.status, 404);
    assert!(alipay_relations(&server)
        .await
        .iter()
        .any(|(_, a)| a == "2088101126765726"));
    assert!(wechat_receivers(&server)
        .await
        .iter()
        .any(|r| r["account"] == json!("1900000109")));
    // Once the owner unbinds it, the account is free for another.
    let unbound = call(&server, &owner, "DELETE", &path("alipay"), None).await;
    assert_eq!(unbound.status, 204, "{unbound:?}");
    let now_theirs = call(
        &server,
        &other,
        "PUT",
        &path("alipay"),
        Some(alipay("2088101126765726")),
    )
    .await;
    assert_eq!(now_theirs.status, 200, "{now_theirs:?}");

    // 20 binds of different accounts at once: whatever won, the provider holds no receiver of
    // this member but the stored one.
    let racer = server.verified_only("payout-racer").await;
    let accounts: Vec<String> = (10..30).map(|n| format!("20881011267658{n}")).collect();
    let alipay_path = path("alipay");
    let replies = futures_util::future::join_all(
        accounts
            .iter()
            .map(|a| call(&server, &racer, "PUT", &alipay_path, Some(alipay(a)))),
    )
    .await;
    assert!(replies.iter().any(|r| r.status == 200), "{replies:?}");
    assert!(
        replies.iter().all(|r| r.status == 200 || r.status == 409),
        "{replies:?}"
    );
    let listed = call(&server, &racer, "GET", LIST, None).await;
    let masked = listed.body["items"][0]["account"]
        .as_str()
        .unwrap()
        .to_owned();
    let held: Vec<String> = alipay_relations(&server)
        .await
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| accounts.contains(a))
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(masked[masked.len() - 4..], held[0][held[0].len() - 4..]);
}

on_both_stores!(
    an_account_is_one_members_and_racing_binds_leave_no_orphans,
    accounts_are_bound_listed_masked_replaced_and_unbound,
    every_account_needs_a_verified_member,
    an_alipay_name_must_be_the_verified_name,
    provider_refusals_and_outages_change_nothing,
    bad_input_changes_nothing,
    a_service_is_published_only_by_a_seller_with_an_account,
    buyers_pay_only_through_the_sellers_channels,
    the_export_holds_them_masked_and_deletion_removes_the_receivers,
);
