//! Handler tests fed from `events/`: each sample event, as API Gateway would deliver it to the
//! Lambda, goes through `lambda_http`'s own parsing into the function's handler. Every event in
//! the folder must be exercised here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use renji_local::template::Template;
use renji_tests::{on_both_stores, Backend, LocalServer};
use serde_json::{json, Value};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// Reads `events/<name>.json` with this test's bearer token and path parameters put in.
fn event(name: &str, token: Option<&str>, params: &[(&str, &str)]) -> Value {
    let path = events_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut event: Value = serde_json::from_str(&text).unwrap();
    if let (Some(token), Some(_)) = (token, event["headers"].get("authorization")) {
        event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    }
    let route = event["routeKey"].as_str().unwrap().to_owned();
    let mut raw_path = route.split_once(' ').unwrap().1.to_owned();
    for (name, value) in params {
        assert!(
            event["pathParameters"].get(name).is_some(),
            "{name} not in {route}"
        );
        event["pathParameters"][name] = json!(value);
        raw_path = raw_path.replace(&format!("{{{name}}}"), value);
    }
    event["rawPath"] = json!(raw_path);
    event["requestContext"]["http"]["path"] = json!(raw_path);
    event
}

async fn invoke(server: &LocalServer, event: &Value) -> (u16, Value) {
    let route = event["routeKey"].as_str().unwrap();
    let function = Template::load()
        .unwrap()
        .routes()
        .into_iter()
        .find(|r| r.key() == route)
        .unwrap_or_else(|| panic!("{route} is not in template.yaml"))
        .function;
    let req =
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event");
    // The function's own state: its store enforces its IAM statements in template.yaml.
    let app = server
        .running
        .function_app(&function)
        .expect("function exists");
    let response = renji_local::functions::invoke(&function, app, req)
        .await
        .expect("function exists");
    let status = response.status().as_u16();
    let body = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        lambda_http::Body::Empty => Value::Null,
        other => panic!("unexpected body {other:?}"),
    };
    (status, body)
}

async fn every_event_runs_through_its_handler(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let mut ran = BTreeSet::new();
    let mut run = |name: &'static str| {
        ran.insert(name.to_owned());
        name
    };

    // The login event logs in as its sandbox member; the others act as that member.
    let (status, login) = invoke(&server, &event(run("auth-login"), None, &[])).await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();
    let alice = login["user"]["id"].as_str().unwrap().to_owned();
    let (bob_token, bob_login) = server.api.login("bob").await;
    let bob = bob_login["user"]["id"].as_str().unwrap().to_owned();

    let me = invoke(&server, &event(run("users-get-me"), Some(&token), &[])).await;
    assert_eq!((me.0, me.1["id"].as_str()), (200, Some(alice.as_str())));
    let patch = event(run("users-patch-me"), Some(&token), &[]);
    let sent: Value = serde_json::from_str(patch["body"].as_str().unwrap()).unwrap();
    let (status, patched) = invoke(&server, &patch).await;
    assert_eq!(status, 200, "{patched}");
    for field in [
        "nickname",
        "gender",
        "birth_date",
        "residence",
        "avatar_url",
    ] {
        assert_eq!(patched[field], sent[field], "{field}");
    }
    let (status, public) = invoke(
        &server,
        &event(run("users-get-user"), None, &[("id", &alice)]),
    )
    .await;
    assert_eq!((status, &public["nickname"]), (200, &sent["nickname"]));
    assert!(public.get("birth_date").is_none());

    // The sample person is verified by the sandbox verifier, shown masked, and may then publish.
    let (status, submitted) = invoke(
        &server,
        &event(run("verification-submit"), Some(&token), &[]),
    )
    .await;
    assert_eq!(
        (status, &submitted["status"]),
        (201, &json!("verified")),
        "{submitted}"
    );
    let (status, got) = invoke(&server, &event(run("verification-get"), Some(&token), &[])).await;
    assert_eq!((status, &got), (200, &submitted));
    assert_eq!(got["number"], json!("11**************2X"));

    let (status, listing) =
        invoke(&server, &event(run("listings-create"), Some(&token), &[])).await;
    assert_eq!(status, 201, "{listing}");
    let l = listing["id"].as_str().unwrap().to_owned();
    // Orders: bob orders alice's listing (the sample body names another listing: this one is
    // put in), lists and reads it; a provider's confirmation (through the domain) makes it paid;
    // alice accepts, bob asks a refund, and then cannot confirm.
    let mut create = event(run("orders-create"), Some(&bob_token), &[]);
    let mut sent: Value = serde_json::from_str(create["body"].as_str().unwrap()).unwrap();
    sent["listing_id"] = json!(l);
    create["body"] = json!(sent.to_string());
    let (status, order) = invoke(&server, &create).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["quantity"], sent["quantity"]);
    assert!(create["headers"]["idempotency-key"].is_string());
    let (status, again) = invoke(&server, &create).await;
    assert_eq!((status, &again), (200, &order), "the same Idempotency-Key");
    let o = order["id"].as_str().unwrap().to_owned();
    let (status, listed) = invoke(&server, &event(run("orders-list"), Some(&bob_token), &[])).await;
    assert_eq!(
        (status, &listed["items"][0]["id"]),
        (200, &json!(o)),
        "{listed}"
    );
    let (status, got) = invoke(
        &server,
        &event(run("orders-get"), Some(&bob_token), &[("id", &o)]),
    )
    .await;
    assert_eq!((status, &got), (200, &order));
    {
        use renji_shared::domain::orders::{self, Action, Actor, Change};
        let store = &server.app().store;
        let id = renji_shared::ids::OrderId::parse(&o).unwrap();
        let before = orders::get(store, &id).await.unwrap().unwrap();
        let change = Change::new(
            Action::ConfirmPayment,
            Actor::Provider,
            time::OffsetDateTime::now_utc(),
        );
        let after = before
            .transition(&change, &server.app().config.orders)
            .unwrap();
        orders::commit(store, &before, &after, Vec::new())
            .await
            .unwrap();
    }
    for (name, who, status, state) in [
        ("orders-accept", &token, 200, "accepted"),
        ("orders-refund", &bob_token, 200, "refund_requested"),
        ("orders-confirm", &bob_token, 409, "refund_requested"),
    ] {
        let (got, body) = invoke(&server, &event(run(name), Some(who), &[("id", &o)])).await;
        assert_eq!(got, status, "{name}: {body}");
        if status == 200 {
            assert_eq!(body["status"], json!(state), "{name}");
        }
    }

    let expect = |name: &'static str, token: Option<&str>, params: &[(&str, &str)], status: u16| {
        (
            name,
            token.map(str::to_owned),
            params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
            status,
        )
    };
    let steps = [
        expect("listings-get", None, &[("id", &l)], 200),
        expect("listings-edit", Some(&token), &[("id", &l)], 200),
        expect("listings-browse", None, &[], 200),
        expect("listings-of-member", None, &[("id", &alice)], 200),
        expect("listings-mine", Some(&token), &[], 200),
        expect("listings-share", Some(&bob_token), &[("id", &l)], 201),
        expect("listings-share-history", Some(&bob_token), &[], 200),
        expect(
            "favorites-add",
            Some(&bob_token),
            &[("listing_id", &l)],
            204,
        ),
        expect("favorites-list", Some(&bob_token), &[], 200),
        expect(
            "favorites-remove",
            Some(&bob_token),
            &[("listing_id", &l)],
            204,
        ),
        expect(
            "users-follow",
            Some(&bob_token),
            &[("user_id", &alice)],
            204,
        ),
        expect("users-followers", None, &[("id", &alice)], 200),
        expect("users-following", None, &[("id", &bob)], 200),
        expect(
            "users-unfollow",
            Some(&bob_token),
            &[("user_id", &alice)],
            204,
        ),
        expect("listings-remove", Some(&token), &[("id", &l)], 204),
        expect("auth-logout", Some(&token), &[], 204),
    ];
    let mut bodies = std::collections::HashMap::new();
    for (name, token, params, status) in &steps {
        run(name);
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (got, body) = invoke(&server, &event(name, token.as_deref(), &params)).await;
        assert_eq!(got, *status, "{name}: {body}");
        bodies.insert(*name, body);
    }
    // The browse event (city 北京, kind service, q 摄影) finds the listing it created.
    assert_eq!(bodies["listings-browse"]["items"][0]["id"], json!(l));
    assert_eq!(bodies["users-followers"]["items"][0]["id"], json!(bob));
    // The owner's list (status=published) shows the listing as its owner sees it.
    assert_eq!(bodies["listings-mine"]["items"][0]["id"], json!(l));
    assert!(bodies["listings-mine"]["items"][0]
        .as_object()
        .unwrap()
        .contains_key("takedown_reason"));

    // As shipped (for `sam local invoke -e`), the events carry a placeholder token: refused.
    for name in [
        "users-get-me",
        "listings-create",
        "favorites-list",
        "verification-get",
    ] {
        assert_eq!(
            invoke(&server, &event(name, None, &[])).await.0,
            401,
            "{name}"
        );
    }
    let me_again = invoke(&server, &event("users-get-me", Some(&token), &[])).await;
    assert_eq!(me_again.0, 401, "logged out");

    // The scheduled job's event: the job ignores its content and reports what it did.
    let schedule = run("verification-jobs-schedule");
    let text = std::fs::read_to_string(events_dir().join(format!("{schedule}.json"))).unwrap();
    let scheduled: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(scheduled["detail-type"], json!("Scheduled Event"));
    let job = server
        .running
        .function_app("VerificationJobsFunction")
        .expect("job exists");
    let report = renji_local::functions::run_job("VerificationJobsFunction", job)
        .await
        .expect("job exists")
        .expect("job runs");
    assert_eq!(report["examined"], json!(0), "{report}");

    // A returning member whose unionid WeChat sends for the first time (the login route's one
    // update), so the check below sees every request the routes make.
    server.api.login("union:bob").await;

    // Each route function's IAM statements grant nothing its handler did not use here (the
    // scheduled job's are checked where it settles attempts, tests/verification.rs).
    for (function, _) in renji_local::functions::FUNCTIONS {
        renji_tests::assert_grants_all_used(&server.running, function);
    }

    let shipped: BTreeSet<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        ran, shipped,
        "every event in events/ runs through its handler here"
    );
}

on_both_stores!(every_event_runs_through_its_handler);
