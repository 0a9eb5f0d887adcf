//! End to end over HTTP against the local server, on both stores.

use renji_local::StoreChoice;
use renji_shared::ids::{random_token, UserId};
use renji_shared::session::Claims;
use renji_shared::store::{Key, Query};
use renji_tests::{keys, on_both_stores, Api, Backend, LocalServer};
use serde_json::{json, Value};

/// Login → GET /v1/me → PATCH /v1/me → public profile from another member's session →
/// logout → the old token is refused.
async fn login_profile_logout_flow(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;

    let (alice, login) = api.login("alice").await;
    assert_eq!(login["new_user"], json!(true));
    let alice_id = login["user"]["id"].as_str().unwrap().to_owned();
    assert!(UserId::parse(&alice_id).is_some());
    assert!(login["expires_at"].as_str().unwrap().ends_with('Z'));

    let me = api.call("GET", "/v1/me", Some(&alice), None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], json!(alice_id));
    assert_eq!(me.body["nickname"], Value::Null);

    // The avatar: her own upload for `avatar`, passed its check (shown to all).
    let me_alice = renji_tests::Member {
        token: alice.clone(),
        id: alice_id.clone(),
    };
    let avatar = server.upload(&me_alice, "avatar", true).await;
    let patch = json!({
        "nickname": "婚礼摄影师小王",
        "avatar_url": avatar,
        "gender": "female",
        "birth_date": "1990-05-17",
        "residence": "北京市朝阳区",
    });
    let patched = api.call("PATCH", "/v1/me", Some(&alice), Some(patch)).await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.body["nickname"], json!("婚礼摄影师小王"));
    assert_eq!(patched.body["birth_date"], json!("1990-05-17"));
    let me = api.call("GET", "/v1/me", Some(&alice), None).await;
    assert_eq!(me.body, patched.body, "GET /v1/me shows what PATCH stored");

    // null clears an optional field; absent fields stay.
    let cleared = api
        .call(
            "PATCH",
            "/v1/me",
            Some(&alice),
            Some(json!({"residence": null})),
        )
        .await;
    assert_eq!(cleared.status, 200);
    assert_eq!(cleared.body["residence"], Value::Null);
    assert_eq!(cleared.body["nickname"], json!("婚礼摄影师小王"));

    // A second login of the same member is not a new user, and keeps the profile.
    let (alice2, again) = api.login("alice").await;
    assert_eq!(again["new_user"], json!(false));
    assert_eq!(again["user"]["id"], json!(alice_id));
    assert_eq!(again["user"]["nickname"], json!("婚礼摄影师小王"));

    let (bob, bob_login) = api.login("bob").await;
    assert_ne!(bob_login["user"]["id"], json!(alice_id));
    let public = api
        .call("GET", &format!("/v1/users/{alice_id}"), Some(&bob), None)
        .await;
    assert_eq!(public.status, 200);
    assert_eq!(public.body["nickname"], json!("婚礼摄影师小王"));
    assert_eq!(public.body["avatar_url"], json!(avatar));
    // Anyone may read a public profile.
    let anonymous = api
        .call("GET", &format!("/v1/users/{alice_id}"), None, None)
        .await;
    assert_eq!(anonymous.body, public.body);

    let logout = api
        .call("POST", "/v1/auth/logout", Some(&alice), None)
        .await;
    assert_eq!(logout.status, 204);
    let refused = api.call("GET", "/v1/me", Some(&alice), None).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (401, "unauthorized")
    );
    // Logout revoked that session only.
    assert_eq!(
        api.call("GET", "/v1/me", Some(&alice2), None).await.status,
        200
    );
    assert_eq!(
        api.call("GET", "/v1/me", Some(&bob), None).await.status,
        200
    );
    // Logging out again with the revoked token is refused, not repeated.
    let twice = api
        .call("POST", "/v1/auth/logout", Some(&alice), None)
        .await;
    assert_eq!(twice.status, 401);
}

/// Nothing but id, nickname, avatar and counts leaves in a public profile.
async fn public_profiles_never_show_private_fields(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (carol, login) = api.login("union:carol").await;
    let id = login["user"]["id"].as_str().unwrap().to_owned();
    let private = json!({
        "gender": "male", "birth_date": "1987-03-04", "residence": "上海市徐汇区秘密路1号",
        "nickname": "carol",
    });
    assert_eq!(
        api.call("PATCH", "/v1/me", Some(&carol), Some(private))
            .await
            .status,
        200
    );
    let stored =
        renji_shared::domain::members::get(&server.app().store, &UserId::parse(&id).unwrap())
            .await
            .unwrap()
            .unwrap();
    let unionid = stored
        .unionid
        .clone()
        .expect("unionid kept when WeChat sends it");

    let (dave, _) = api.login("dave").await;
    for token in [Some(dave.as_str()), None, Some(carol.as_str())] {
        let public = api
            .call("GET", &format!("/v1/users/{id}"), token, None)
            .await;
        assert_eq!(public.status, 200);
        assert_eq!(
            keys(&public.body),
            [
                "avatar_url",
                "followers_count",
                "following_count",
                "id",
                "listings_count",
                "nickname",
                "rating_count",
                "rating_sum",
                "unavailable",
                "verified"
            ]
        );
        let text = public.body.to_string();
        for secret in ["1987-03-04", "徐汇区", "male", &stored.openid, &unionid] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
    }
    // The owner's own view has the private fields, but never the WeChat identifiers.
    let me = api.call("GET", "/v1/me", Some(&carol), None).await;
    assert_eq!(me.body["birth_date"], json!("1987-03-04"));
    let text = me.body.to_string();
    assert!(!text.contains(&stored.openid) && !text.contains(&unionid));
    let unknown = api
        .call(
            "GET",
            &format!("/v1/users/{}", UserId::generate()),
            None,
            None,
        )
        .await;
    assert_eq!((unknown.status, unknown.error_code()), (404, "not_found"));
    let malformed = api.call("GET", "/v1/users/..%2F..%2Fetc", None, None).await;
    assert_eq!(malformed.status, 404);
}

/// Two first logins of one openid at once make one member.
async fn racing_first_logins_make_one_member(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let logins: Vec<_> = (0..12)
        .map(|_| {
            let api = server.api.clone();
            tokio::spawn(async move { api.login("erin").await.1 })
        })
        .collect();
    let mut ids = Vec::new();
    let mut new_users = 0;
    for login in logins {
        let body = login.await.unwrap();
        ids.push(body["user"]["id"].as_str().unwrap().to_owned());
        new_users += usize::from(body["new_user"] == json!(true));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one member per openid");
    assert_eq!(new_users, 1, "exactly one login created the member");
}

/// WeChat's errors become clear answers, and create nothing.
async fn wechat_errors_become_clear_answers(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    for (code, status, error_code) in [
        ("error:40029", 401, "unauthorized"),
        ("error:40163", 401, "unauthorized"),
        ("error:45011", 429, "too_many_requests"),
        ("error:40226", 403, "forbidden"),
        ("error:-1", 503, "service_unavailable"),
        ("error:http502", 503, "service_unavailable"),
        // An answer larger than the client reads is not trusted.
        ("error:oversized", 503, "service_unavailable"),
        // The app's own configuration is wrong: retrying cannot help, so no 503.
        ("error:40013", 500, "internal_error"),
        ("error:40125", 500, "internal_error"),
    ] {
        let reply = api
            .call(
                "POST",
                "/v1/auth/wechat",
                None,
                Some(json!({ "code": code })),
            )
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (status, error_code),
            "{code}"
        );
        if status == 429 || status == 503 {
            assert!(reply.retry_after.is_some(), "{code} without Retry-After");
        } else {
            assert!(reply.retry_after.is_none(), "{code} with Retry-After");
        }
    }
    // None of them created a member: the oversized answer's openid is not used.
    let (_, login) = api.login("oversized").await;
    assert_eq!(login["new_user"], json!(true));
    // `sandbox:union:<name>` is the member `sandbox:<name>` (one openid), given a unionid.
    let union = api
        .call(
            "POST",
            "/v1/auth/wechat",
            None,
            Some(json!({ "code": "sandbox:union:oversized" })),
        )
        .await;
    assert_eq!(union.status, 200);
    assert_eq!(union.body["new_user"], json!(false));
    assert_eq!(union.body["user"]["id"], login["user"]["id"]);
    let id = UserId::parse(login["user"]["id"].as_str().unwrap()).unwrap();
    let stored = renji_shared::domain::members::get(&server.app().store, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.unionid.is_some());
}

/// A token made with the server's own key but already expired is refused.
async fn expired_tokens_are_refused(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let (token, login) = server.api.login("frank").await;
    let tokens = server.app().tokens().await.unwrap();
    let claims = tokens.verify(&token, 0).unwrap();
    let expired = tokens.sign(&Claims {
        expires_at: time::OffsetDateTime::now_utc().unix_timestamp() - 1,
        ..claims
    });
    let reply = server.api.call("GET", "/v1/me", Some(&expired), None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["error"]["message"], json!("session expired"));
    // A well-signed token for a session that was never started is refused too.
    let invented = tokens.sign(&Claims {
        user_id: UserId::parse(login["user"]["id"].as_str().unwrap()).unwrap(),
        session_id: random_token(),
        expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + 600,
    });
    let reply = server
        .api
        .call("GET", "/v1/me", Some(&invented), None)
        .await;
    assert_eq!(reply.status, 401);
}

on_both_stores!(
    login_profile_logout_flow,
    public_profiles_never_show_private_fields,
    racing_first_logins_make_one_member,
    wechat_errors_become_clear_answers,
    expired_tokens_are_refused,
);

/// The embedded store keeps data across a restart of the local server: the same token still
/// works and the profile is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_data_survives_a_restart() {
    let dir = tempfile::TempDir::new().unwrap();
    let choice = StoreChoice::Embedded {
        data_dir: dir.path().to_path_buf(),
    };
    let first = LocalServer::run(choice.clone()).await;
    let api = Api::new(first.url());
    let (token, _) = api.login("grace").await;
    let patched = api
        .call(
            "PATCH",
            "/v1/me",
            Some(&token),
            Some(json!({"nickname": "Grace"})),
        )
        .await;
    assert_eq!(patched.status, 200);
    drop(first);
    // The database file is released once the first server's tasks have ended.
    let mut second = None;
    for _ in 0..50 {
        match renji_local::start(renji_local::Options {
            addr: "127.0.0.1:0".parse().unwrap(),
            store: choice.clone(),
            session_secret: None,
            config: Default::default(),
        })
        .await
        {
            Ok(running) => {
                second = Some(running);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let second = second.expect("restart on the same data folder");
    let api = Api::new(second.url());
    let me = api.call("GET", "/v1/me", Some(&token), None).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["nickname"], json!("Grace"));
    // One session record, still present after the restart.
    let sessions = second
        .app
        .store
        .query(Query::partition(format!(
            "USER#{}",
            me.body["id"].as_str().unwrap()
        )))
        .await
        .unwrap();
    assert!(sessions
        .items
        .iter()
        .any(|i| Key::of(i).unwrap().sk.starts_with("SESSION#")));
}

/// The local server keeps its session keys readable by their owner only (0600), sets that mode
/// again on a file found more open, and keeps a key file of the old single-secret form.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_secret_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let start = |dir: &std::path::Path| {
        renji_local::start(renji_local::Options {
            addr: "127.0.0.1:0".parse().unwrap(),
            store: StoreChoice::Embedded {
                data_dir: dir.to_path_buf(),
            },
            session_secret: None,
            config: Default::default(),
        })
    };
    let parent = tempfile::TempDir::new().unwrap();
    let dir = parent.path().join("data");
    let secret = dir.join("session-secret");
    let first = start(&dir).await.unwrap();
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(mode(&dir), 0o700, "a new data folder is owner-only too");
    let written = std::fs::read_to_string(&secret).unwrap();
    assert!(written.starts_with("local:"), "a key ring with a kid");
    let (token, _) = Api::new(first.url()).login("heidi").await;
    assert!(token.starts_with("local."));
    drop(first);

    // Left readable by others (e.g. copied with a umask of 022): made owner-only again, kept.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = loop {
        // The database is released once the first server's tasks have ended.
        match start(&dir).await {
            Ok(running) => break running,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    };
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), written);
    let me = Api::new(again.url())
        .call("GET", "/v1/me", Some(&token), None)
        .await;
    assert_eq!(me.status, 200, "the same keys: the session survives");
    drop(again);

    // An old single-secret file is still used as it is.
    let old_dir = parent.path().join("old");
    std::fs::create_dir(&old_dir).unwrap();
    let old = "an-old-local-secret-of-at-least-32-bytes";
    std::fs::write(old_dir.join("session-secret"), old).unwrap();
    std::fs::set_permissions(
        old_dir.join("session-secret"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let server = start(&old_dir).await.unwrap();
    assert_eq!(mode(&old_dir.join("session-secret")), 0o600);
    assert_eq!(
        std::fs::read_to_string(old_dir.join("session-secret")).unwrap(),
        old
    );
    let (token, _) = Api::new(server.url()).login("ivan").await;
    assert_eq!(
        token.matches('.').count(),
        1,
        "old-form tokens carry no kid"
    );
}
