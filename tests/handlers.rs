//! Handler tests fed from `events/`: each sample event, as API Gateway would deliver it to the
//! Lambda, goes through `lambda_http`'s own parsing into the function's handler.

use std::path::Path;

use renji_local::template::Template;
use renji_tests::{on_both_stores, Backend, LocalServer};
use serde_json::{json, Value};

/// Reads `events/<name>.json`, with the bearer token and `{id}` of the running test put in.
fn event(name: &str, token: Option<&str>, user_id: &str) -> (String, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut event: Value = serde_json::from_str(&text).unwrap();
    if let (Some(token), Some(_)) = (token, event["headers"].get("authorization")) {
        event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    }
    if event.get("pathParameters").is_some() {
        let path = format!("/v1/users/{user_id}");
        event["pathParameters"]["id"] = json!(user_id);
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
    }
    let route = event["routeKey"].as_str().unwrap().to_owned();
    (route, event)
}

async fn invoke(server: &LocalServer, route: &str, event: &Value) -> (u16, Value) {
    let function = Template::load()
        .unwrap()
        .routes()
        .into_iter()
        .find(|r| r.key() == route)
        .unwrap_or_else(|| panic!("{route} is not in template.yaml"))
        .function;
    let req =
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event");
    let response = renji_local::functions::invoke(&function, server.app(), req)
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
    // The login event logs in as its sandbox member; the others act as that member.
    let (route, login_event) = event("auth-login", None, "");
    let (status, login) = invoke(&server, &route, &login_event).await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();
    let id = login["user"]["id"].as_str().unwrap().to_owned();

    let (route, e) = event("users-get-me", Some(&token), &id);
    let (status, me) = invoke(&server, &route, &e).await;
    assert_eq!((status, me["id"].as_str()), (200, Some(id.as_str())));

    let (route, e) = event("users-patch-me", Some(&token), &id);
    let sent: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
    let (status, patched) = invoke(&server, &route, &e).await;
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

    let (route, e) = event("users-get-user", None, &id);
    let (status, public) = invoke(&server, &route, &e).await;
    assert_eq!((status, &public["nickname"]), (200, &sent["nickname"]));
    assert!(public.get("birth_date").is_none());

    // The sample person is verified by the sandbox verifier, and shown masked.
    let (route, e) = event("verification-submit", Some(&token), &id);
    let (status, submitted) = invoke(&server, &route, &e).await;
    assert_eq!(
        (status, &submitted["status"]),
        (201, &json!("verified")),
        "{submitted}"
    );
    let (route, e) = event("verification-get", Some(&token), &id);
    let (status, got) = invoke(&server, &route, &e).await;
    assert_eq!((status, &got), (200, &submitted));
    assert_eq!(got["number"], json!("11**************2X"));

    // As shipped (for `sam local invoke -e`), the events carry a placeholder token: refused.
    for name in [
        "users-get-me",
        "users-patch-me",
        "auth-logout",
        "verification-submit",
        "verification-get",
    ] {
        let (route, e) = event(name, None, &id);
        assert_eq!(invoke(&server, &route, &e).await.0, 401, "{name}");
    }

    let (route, e) = event("auth-logout", Some(&token), &id);
    assert_eq!(invoke(&server, &route, &e).await.0, 204);
    let (route, e) = event("users-get-me", Some(&token), &id);
    assert_eq!(invoke(&server, &route, &e).await.0, 401, "logged out");
}

on_both_stores!(every_event_runs_through_its_handler);
