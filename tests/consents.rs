//! Consents (privacy policy §六), optional scopes (§四(四)) and the minors gate (§七), over HTTP on
//! both stores: what the member sees, and what the store holds behind it.

use renji_local::{Running, StoreChoice};
use renji_shared::ids::UserId;
use renji_shared::store::{keys, Key, Query, SortKey};
use renji_tests::{
    dynamodb_endpoint, fresh_table_name, on_both_stores, service, Api, Backend, LocalServer,
    Market, Member,
};
use serde_json::{json, Value};

const NEAR: &str = "39.9087,116.3975";

fn user(member: &Member) -> UserId {
    UserId::parse(&member.id).unwrap()
}

/// The local server over `store` with these policy versions (rate limits off); retried while a
/// previous server on the same embedded folder is still letting go of it.
async fn start(store: &StoreChoice, versions: &str) -> Running {
    let config = [
        ("RENJI_POLICY_VERSIONS", versions),
        ("RENJI_RATE_LIMITS", "off"),
        ("RENJI_LOCAL_JOBS_SECS", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for _ in 0..50 {
        if let Ok(running) = renji_local::start(renji_local::Options {
            addr: "127.0.0.1:0".parse().unwrap(),
            store: store.clone(),
            // One secret across restarts, so the member's token stays good on DynamoDB too.
            session_secret: Some("consents-test-session-secret-0123456789abcdef".into()),
            config: Clone::clone(&config),
        })
        .await
        {
            return running;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the local server did not start");
}

async fn required(api: &Api, token: &str) -> Value {
    let me = api.call("GET", "/v1/me", Some(token), None).await;
    assert_eq!(me.status, 200, "{me:?}");
    me.body["consent_required"].clone()
}

async fn consent_records(running: &Running, member: &UserId) -> Vec<Value> {
    let page = running
        .app
        .store
        .query(
            Query::partition(keys::user(member))
                .sort(SortKey::Prefix(keys::CONSENT_PREFIX.into()))
                .limit(100),
        )
        .await
        .unwrap();
    page.items.into_iter().map(Value::Object).collect()
}

async fn policy_consents_are_kept_and_asked_again_on_a_major_bump(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let store = match backend {
        Backend::Embedded => StoreChoice::Embedded {
            data_dir: dir.path().to_path_buf(),
        },
        Backend::Dynamo => StoreChoice::Dynamo {
            endpoint: dynamodb_endpoint(),
            table_name: fresh_table_name(),
        },
    };
    let running = start(&store, "privacy_policy=1.0,terms=1.0").await;
    let api = Api::new(running.url());
    let (token, login) = api.login("alice").await;
    let alice = UserId::parse(login["user"]["id"].as_str().unwrap()).unwrap();
    // None accepted: both are required, at login and on GET /v1/me.
    let both = json!([
        {"document": "privacy_policy", "version": "1.0"},
        {"document": "terms", "version": "1.0"},
    ]);
    assert_eq!(login["user"]["consent_required"], both);
    assert_eq!(required(&api, &token).await, both);

    // Bad input: 4xx naming the field, nothing written.
    let post = |body: Value| {
        let api = api.clone();
        let token = token.clone();
        async move {
            api.call("POST", "/v1/me/consents", Some(&token), Some(body))
                .await
        }
    };
    for (body, field) in [
        (
            json!({"document": "privacy_policy", "version": "2.0"}),
            "version",
        ),
        (
            json!({"document": "privacy_policy", "version": "1"}),
            "version",
        ),
        // The current version as written, not another spelling of it.
        (
            json!({"document": "privacy_policy", "version": "01.0"}),
            "version",
        ),
        (json!({"document": "terms", "version": "1.00"}), "version"),
        (json!({"document": "cookies", "version": "1.0"}), "document"),
        (json!({"document": "terms"}), "version"),
        (json!({}), "document"),
        (
            json!({"document": "terms", "version": "1.0", "scope": "location"}),
            "scope",
        ),
        (json!({"scope": "camera"}), "scope"),
        (json!({"document": 1, "version": "1.0"}), ""),
        (json!({"scope": "location", "ip": "203.0.113.1"}), ""),
    ] {
        let reply = post(body.clone()).await;
        assert!((400..500).contains(&reply.status), "{body}: {reply:?}");
        if !field.is_empty() {
            assert_eq!((reply.status, reply.field()), (422, field), "{body}");
        }
    }
    let query = api
        .call(
            "POST",
            "/v1/me/consents?x=1",
            Some(&token),
            Some(json!({"document": "terms", "version": "1.0"})),
        )
        .await;
    assert!((400..500).contains(&query.status), "{query:?}");
    let anonymous = api
        .call(
            "POST",
            "/v1/me/consents",
            None,
            Some(json!({"document": "terms", "version": "1.0"})),
        )
        .await;
    assert_eq!(anonymous.status, 401);
    assert!(consent_records(&running, &alice).await.is_empty());

    for document in ["privacy_policy", "terms"] {
        let accepted = post(json!({"document": document, "version": "1.0"})).await;
        assert_eq!(accepted.status, 201, "{accepted:?}");
    }
    assert_eq!(required(&api, &token).await, json!([]));
    let listed = api.call("GET", "/v1/me/consents", Some(&token), None).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let documents = listed.body["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 2);
    for d in documents {
        assert_eq!(d["accepted_version"], json!("1.0"), "{d}");
        assert_eq!(d["current_version"], json!("1.0"), "{d}");
        assert!(d["accepted_at"].is_string(), "{d}");
        assert_eq!(d["required"], json!(false));
    }
    assert!(listed.body["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["granted"] == json!(false)));
    // Each acceptance is a record of its own: document, version, time; nothing else of them.
    let records = consent_records(&running, &alice).await;
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        assert_eq!(r["action"], json!("accept"));
        assert_eq!(r["version"], json!("1.0"));
        assert!(r["at"].is_string());
        assert!(r.get("ip").is_none());
    }
    drop(running);

    // A minor bump asks nothing; the old version can no longer be accepted.
    let running = start(&store, "privacy_policy=1.1,terms=1.0").await;
    let api = Api::new(running.url());
    assert_eq!(required(&api, &token).await, json!([]));
    let old = api
        .call(
            "POST",
            "/v1/me/consents",
            Some(&token),
            Some(json!({"document": "privacy_policy", "version": "1.0"})),
        )
        .await;
    assert_eq!((old.status, old.field()), (422, "version"), "{old:?}");
    drop(running);

    // A major bump asks for that document again, until it is accepted.
    let running = start(&store, "privacy_policy=2.0,terms=1.0").await;
    let api = Api::new(running.url());
    assert_eq!(
        required(&api, &token).await,
        json!([{"document": "privacy_policy", "version": "2.0"}])
    );
    let accepted = api
        .call(
            "POST",
            "/v1/me/consents",
            Some(&token),
            Some(json!({"document": "privacy_policy", "version": "2.0"})),
        )
        .await;
    assert_eq!(accepted.status, 201, "{accepted:?}");
    assert_eq!(accepted.body["consent_required"], json!([]));
    assert_eq!(required(&api, &token).await, json!([]));
    assert_eq!(consent_records(&running, &alice).await.len(), 3);
}

async fn stored_position(server: &LocalServer, member: &UserId) -> Option<Value> {
    server
        .app()
        .store
        .get(&keys::member_location(member))
        .await
        .unwrap()
        .map(Value::Object)
}

async fn scopes_are_granted_withdrawn_and_honoured(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let api = &server.api;
    let seller = server.member("seller", true).await;
    let mut nearby = service("胡同跟拍");
    nearby["location"] = json!({"lat": 39.9087, "lng": 116.3975});
    let listing = api.create_listing(&seller, nearby).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice = server.member("alice", false).await;
    let id = user(&alice);
    let browse = |near: &'static str, token: Option<String>| {
        let api = api.clone();
        async move {
            api.call(
                "GET",
                &format!("/v1/listings?near={near}"),
                token.as_deref(),
                None,
            )
            .await
        }
    };
    let token = || Some(alice.token.clone());

    // near=me needs a session, then the location scope.
    assert_eq!(browse("me", None).await.status, 401);
    assert_eq!(browse("me", Some("not-a-token".into())).await.status, 401);
    let refused = browse("me", token()).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (403, "consent_required"),
        "{refused:?}"
    );
    // Browsing signed in without the scope records nothing; signed out works as before.
    assert_eq!(browse(NEAR, token()).await.status, 200);
    assert_eq!(browse(NEAR, None).await.status, 200);
    assert_eq!(stored_position(&server, &id).await, None);

    // Granted (opt-in, once): nothing recorded yet, so near=me has no position.
    let grant = |scope: &'static str| {
        let api = api.clone();
        let token = alice.token.clone();
        async move {
            api.call(
                "POST",
                "/v1/me/consents",
                Some(&token),
                Some(json!({ "scope": scope })),
            )
            .await
        }
    };
    let granted = grant("location").await;
    assert_eq!(granted.status, 201, "{granted:?}");
    let location = |body: &Value| {
        body["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scope"] == json!("location"))
            .cloned()
            .unwrap()
    };
    assert_eq!(location(&granted.body)["granted"], json!(true));
    assert!(location(&granted.body)["granted_at"].is_string());
    assert_eq!(grant("location").await.status, 200, "granted already");
    let nothing = browse("me", token()).await;
    assert_eq!(
        (nothing.status, nothing.field()),
        (422, "near"),
        "{nothing:?}"
    );

    // A nearby browse records the coarse position (5-character geohash, 30 days); near=me
    // finds the listing around it.
    assert_eq!(browse(NEAR, token()).await.status, 200);
    let stored = stored_position(&server, &id)
        .await
        .expect("a stored position");
    assert_eq!(stored["geohash"].as_str().unwrap().len(), 5, "{stored}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ttl = stored["ttl"].as_i64().unwrap();
    assert!((ttl - now - 30 * 86_400).abs() < 120, "{stored}");
    let around = browse("me", token()).await;
    assert_eq!(around.status, 200, "{around:?}");
    assert_eq!(around.body["items"][0]["id"], json!(listing), "{around:?}");

    // Withdrawn: at once, the position deleted with it; idempotent.
    let withdraw = |scope: &'static str| {
        let api = api.clone();
        let token = alice.token.clone();
        async move {
            api.call(
                "DELETE",
                &format!("/v1/me/consents/{scope}"),
                Some(&token),
                None,
            )
            .await
        }
    };
    assert_eq!(withdraw("location").await.status, 204);
    assert_eq!(stored_position(&server, &id).await, None);
    assert_eq!(browse("me", token()).await.status, 403);
    assert_eq!(withdraw("location").await.status, 204, "idempotent");
    // Browsing again records nothing now.
    assert_eq!(browse(NEAR, token()).await.status, 200);
    assert_eq!(stored_position(&server, &id).await, None);
    // An unknown scope is 404; a body or a query string is refused; no session is 401.
    assert_eq!(withdraw("camera").await.status, 404);
    let with_body = api
        .call(
            "DELETE",
            "/v1/me/consents/marketing",
            Some(&alice.token),
            Some(json!({"why": "x"})),
        )
        .await;
    assert!((400..500).contains(&with_body.status), "{with_body:?}");
    let with_query = api
        .call(
            "DELETE",
            "/v1/me/consents/marketing?now=1",
            Some(&alice.token),
            None,
        )
        .await;
    assert!((400..500).contains(&with_query.status), "{with_query:?}");
    assert_eq!(
        api.call("DELETE", "/v1/me/consents/marketing", None, None)
            .await
            .status,
        401
    );

    // The other scopes are recorded and shown (and checked by consents::allows).
    assert_eq!(grant("personalization").await.status, 201);
    let listed = api
        .call("GET", "/v1/me/consents", Some(&alice.token), None)
        .await;
    let state: Vec<(Value, Value)> = listed.body["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["scope"].clone(), s["granted"].clone()))
        .collect();
    assert_eq!(
        state,
        vec![
            (json!("location"), json!(false)),
            (json!("personalization"), json!(true)),
            (json!("marketing"), json!(false)),
        ]
    );
    let member = renji_shared::domain::members::get(&server.app().store, &id)
        .await
        .unwrap()
        .unwrap();
    use renji_shared::domain::consents::{allows, Scope};
    assert!(allows(&member, Scope::Personalization));
    assert!(!allows(&member, Scope::Location) && !allows(&member, Scope::Marketing));
    let query = api
        .call("GET", "/v1/me/consents?all=1", Some(&alice.token), None)
        .await;
    assert!((400..500).contains(&query.status), "{query:?}");
}

/// Ten years before today, as a profile's birth date.
fn ten_years_ago() -> String {
    let today = time::OffsetDateTime::now_utc().date();
    let year = today.year() - 10;
    format!(
        "{year:04}-{:02}-{:02}",
        u8::from(today.month()),
        today.day().min(28)
    )
}

async fn minors_need_a_guardians_consent_to_publish_and_buy(backend: Backend) {
    let market = Market::start(backend, &[]).await;
    let server = &market.server;
    let api = &server.api;
    let kid = server.member("kid", true).await;
    // An order made before the member's age was known: paying it is buying too.
    let early = api
        .call(
            "POST",
            "/v1/orders",
            Some(&kid.token),
            Some(json!({"listing_id": market.listing, "quantity": 1})),
        )
        .await;
    assert_eq!(early.status, 201, "{early:?}");
    let pay_early = format!("/v1/orders/{}/payments", early.body["id"].as_str().unwrap());
    let patched = api
        .call(
            "PATCH",
            "/v1/me",
            Some(&kid.token),
            Some(json!({"birth_date": ten_years_ago()})),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.body["guardian_consent_required"], json!(true));
    let order = |who: &Member| {
        let api = api.clone();
        let token = who.token.clone();
        let listing = market.listing.clone();
        async move {
            api.call(
                "POST",
                "/v1/orders",
                Some(&token),
                Some(json!({"listing_id": listing, "quantity": 1})),
            )
            .await
        }
    };
    let publish = |who: &Member| {
        let api = api.clone();
        let token = who.token.clone();
        async move {
            api.call(
                "POST",
                "/v1/listings",
                Some(&token),
                Some(service("小小摄影师")),
            )
            .await
        }
    };
    let pay = api
        .call(
            "POST",
            &pay_early,
            Some(&kid.token),
            Some(json!({"channel": "wechat"})),
        )
        .await;
    for reply in [publish(&kid).await, order(&kid).await, pay] {
        assert_eq!(
            (reply.status, reply.error_code()),
            (403, "guardian_consent_required"),
            "{reply:?}"
        );
    }
    // A draft is not published: a minor may prepare one.
    let mut draft = service("草稿");
    draft["status"] = json!("draft");
    let drafted = api
        .call("POST", "/v1/listings", Some(&kid.token), Some(draft))
        .await;
    assert_eq!(drafted.status, 201, "{drafted:?}");

    // Bad input: 4xx naming the field, nothing written.
    let consent = |who: &Member, body: Value| {
        let api = api.clone();
        let token = who.token.clone();
        async move {
            api.call("POST", "/v1/me/guardian-consent", Some(&token), Some(body))
                .await
        }
    };
    for (body, field) in [
        (
            json!({"guardian_name": "张", "relationship": "parent"}),
            "guardian_name",
        ),
        (
            json!({"guardian_name": "  ", "relationship": "parent"}),
            "guardian_name",
        ),
        (
            json!({"guardian_name": "张".repeat(31), "relationship": "parent"}),
            "guardian_name",
        ),
        (
            json!({"guardian_name": "张三", "relationship": "friend"}),
            "relationship",
        ),
        (json!({"guardian_name": "张三"}), ""),
        (
            json!({"guardian_name": "张三", "relationship": "parent", "phone": "1"}),
            "",
        ),
    ] {
        let reply = consent(&kid, body.clone()).await;
        assert!((400..500).contains(&reply.status), "{body}: {reply:?}");
        if !field.is_empty() {
            assert_eq!((reply.status, reply.field()), (422, field), "{body}");
        }
    }
    let guardian = Key::new(keys::user(&user(&kid)), "GUARDIAN_CONSENT");
    assert_eq!(keys::guardian_consent(&user(&kid)), guardian);
    assert!(server.app().store.get(&guardian).await.unwrap().is_none());
    let anonymous = api
        .call(
            "POST",
            "/v1/me/guardian-consent",
            None,
            Some(json!({"guardian_name": "张三", "relationship": "parent"})),
        )
        .await;
    assert_eq!(anonymous.status, 401);

    // Recorded: sealed (the name is nowhere in the clear), and the gate opens.
    let recorded = consent(
        &kid,
        json!({"guardian_name": "张大山", "relationship": "parent"}),
    )
    .await;
    assert_eq!(recorded.status, 204, "{recorded:?}");
    let stored = Value::Object(server.app().store.get(&guardian).await.unwrap().unwrap());
    let text = stored.to_string();
    assert!(
        !text.contains("张大山") && !text.contains("parent"),
        "{text}"
    );
    assert!(stored["name_sealed"]["ct"].is_string(), "{stored}");
    let me = api.call("GET", "/v1/me", Some(&kid.token), None).await;
    assert_eq!(me.body["guardian_consent_required"], json!(false));
    assert_eq!(publish(&kid).await.status, 201);
    assert_eq!(order(&kid).await.status, 201);

    // A member who is not a minor has no guardian's consent to record.
    let adult = consent(
        &market.buyer,
        json!({"guardian_name": "张三", "relationship": "parent"}),
    )
    .await;
    assert_eq!(
        (adult.status, adult.error_code()),
        (409, "not_a_minor"),
        "{adult:?}"
    );

    // A verified adult wins over a profile birth date under 14: the identity number decides,
    // and the member record keeps only that the age was checked.
    let stranger = &market.stranger;
    let young = api
        .call(
            "PATCH",
            "/v1/me",
            Some(&stranger.token),
            Some(json!({"birth_date": ten_years_ago()})),
        )
        .await;
    assert_eq!(young.body["guardian_consent_required"], json!(true));
    assert_eq!(order(stranger).await.status, 403);
    let verified = api
        .call(
            "POST",
            "/v1/me/verification",
            Some(&stranger.token),
            Some(json!({"kind": "person", "real_name": "张三", "id_number": "11010519491231002X"})),
        )
        .await;
    assert_eq!(verified.status, 201, "{verified:?}");
    assert_eq!(verified.body["status"], json!("verified"), "{verified:?}");
    let me = api.call("GET", "/v1/me", Some(&stranger.token), None).await;
    assert_eq!(me.body["guardian_consent_required"], json!(false), "{me:?}");
    assert_eq!(order(stranger).await.status, 201);
    let record = Value::Object(
        server
            .app()
            .store
            .get(&keys::member(&user(stranger)))
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(record["age_checked"], json!(true));
    assert!(record.get("minor_until").is_none(), "{record}");
    assert!(!record.to_string().contains("1949"), "{record}");

    // A member verified as born in 2016 is a minor whatever the profile says: the record keeps
    // the day they turn 14, not the birth date.
    let young = server.member("young", false).await;
    let adult_profile = api
        .call(
            "PATCH",
            "/v1/me",
            Some(&young.token),
            Some(json!({"birth_date": "1990-01-01"})),
        )
        .await;
    assert_eq!(
        adult_profile.body["guardian_consent_required"],
        json!(false)
    );
    let verified = api
        .call(
            "POST",
            "/v1/me/verification",
            Some(&young.token),
            Some(json!({"kind": "person", "real_name": "李小", "id_number": "110105201606150032"})),
        )
        .await;
    assert_eq!(verified.body["status"], json!("verified"), "{verified:?}");
    let me = api.call("GET", "/v1/me", Some(&young.token), None).await;
    assert_eq!(me.body["guardian_consent_required"], json!(true), "{me:?}");
    let record = Value::Object(
        server
            .app()
            .store
            .get(&keys::member(&user(&young)))
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(record["minor_until"], json!("2030-06-15"), "{record}");
    assert!(!record.to_string().contains("20160615"), "{record}");
    assert_eq!(
        publish(&young).await.error_code(),
        "guardian_consent_required"
    );
}

on_both_stores!(
    policy_consents_are_kept_and_asked_again_on_a_major_bump,
    scopes_are_granted_withdrawn_and_honoured,
    minors_need_a_guardians_consent_to_publish_and_buy,
);
