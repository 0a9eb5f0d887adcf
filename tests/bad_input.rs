//! Bad input is answered 4xx in the api.md error shape and changes nothing, on both stores.

use renji_shared::ids::UserId;
use renji_shared::store::{keys, Item, PageCursor};
use renji_tests::{on_both_stores, Api, Backend, LocalServer};
use serde_json::{json, Value};

async fn stored_member(server: &LocalServer, id: &str) -> Item {
    server
        .app()
        .store
        .get(&keys::member(&UserId::parse(id).unwrap()))
        .await
        .unwrap()
        .expect("member stored")
}

async fn bad_profile_updates_change_nothing(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, login) = api.login("henry").await;
    let id = login["user"]["id"].as_str().unwrap().to_owned();
    let ok = api
        .call(
            "PATCH",
            "/v1/me",
            Some(&token),
            Some(json!({"nickname": "Henry"})),
        )
        .await;
    assert_eq!(ok.status, 200);
    let before = stored_member(&server, &id).await;

    let one_mib = format!("{{\"nickname\":\"{}\"}}", "a".repeat(1024 * 1024));
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "malformed JSON",
            "{\"nickname\": ".into(),
            400,
            "malformed_json",
        ),
        ("not an object", "[1,2]".into(), 422, "invalid_field"),
        // An array was read as the fields in order: `[null]` cleared the nickname.
        (
            "an array clearing the first field",
            "[null]".into(),
            422,
            "invalid_field",
        ),
        (
            "an array setting fields",
            r#"["Mallory", null, "male"]"#.into(),
            422,
            "invalid_field",
        ),
        ("a string", r#""Henry""#.into(), 422, "invalid_field"),
        (
            "wrong type for an enum",
            r#"{"gender":5}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "line separator",
            r#"{"nickname":"a\u2028b"}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "Hangul filler",
            r#"{"nickname":"\u3164"}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "zero-width space",
            r#"{"nickname":"Hen\u200bry"}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "a variation selector alone",
            r#"{"nickname":"\ufe0f"}"#.into(),
            422,
            "invalid_field",
        ),
        ("empty body", "".into(), 400, "missing_body"),
        (
            "unknown field",
            r#"{"nickname":"x","is_admin":true}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "mass assignment of id",
            r#"{"id":"u_01"}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "mass assignment of a count",
            r#"{"followers_count":1000}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "wrong type",
            r#"{"nickname":42}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "unknown gender",
            r#"{"gender":"robot"}"#.into(),
            422,
            "invalid_field",
        ),
        ("1 MiB body", one_mib, 413, "payload_too_large"),
        (
            "over-long nickname",
            format!(r#"{{"nickname":"{}"}}"#, "长".repeat(21)),
            422,
            "invalid_field",
        ),
        (
            "control characters",
            r#"{"nickname":"a\u0000b"}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "http avatar",
            r#"{"avatar_url":"http://x.com/a.png"}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "impossible date",
            r#"{"birth_date":"1990-02-30"}"#.into(),
            422,
            "invalid_field",
        ),
        (
            "future date",
            r#"{"birth_date":"2999-01-01"}"#.into(),
            422,
            "invalid_field",
        ),
        // Exactly YYYY-MM-DD, as the pattern says: a signed year was read as the year.
        (
            "signed year",
            r#"{"birth_date":"+2001-01-01"}"#.into(),
            422,
            "invalid_field",
        ),
        // A valid field alongside a bad one: nothing of it is applied.
        (
            "one bad field of two",
            r#"{"residence":"北京","birth_date":"x"}"#.into(),
            422,
            "invalid_field",
        ),
    ];
    for (what, body, status, code) in cases {
        let reply = api.raw("PATCH", "/v1/me", Some(&token), Some(body)).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (status, code),
            "{what}: {reply:?}"
        );
        assert_eq!(
            stored_member(&server, &id).await,
            before,
            "{what} changed the member"
        );
    }
    // The field is named in the answer: `body` for a body that is not an object.
    for (body, field) in [
        ("[null]", "body"),
        ("[1,2]", "body"),
        (r#"{"gender":5}"#, "gender"),
        (r#"{"gender":["male"]}"#, "gender"),
        (r#"{"nickname":"\u3164"}"#, "nickname"),
        (r#"{"birth_date":"+2001-01-01"}"#, "birth_date"),
    ] {
        let reply = api
            .raw("PATCH", "/v1/me", Some(&token), Some(body.into()))
            .await;
        assert_eq!(
            reply.body["error"]["field"],
            json!(field),
            "{body}: {reply:?}"
        );
    }
    let reply = api
        .raw(
            "PATCH",
            "/v1/me",
            Some(&token),
            Some(r#"{"nickname":42}"#.into()),
        )
        .await;
    assert_eq!(reply.body["error"]["field"], json!("nickname"));
    let reply = api
        .raw(
            "PATCH",
            "/v1/me",
            Some(&token),
            Some(format!(r#"{{"nickname":"{}"}}"#, "长".repeat(21))),
        )
        .await;
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nickname"));
}

async fn bad_tokens_are_refused_and_change_nothing(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, login) = api.login("iris").await;
    let id = login["user"]["id"].as_str().unwrap().to_owned();
    let before = stored_member(&server, &id).await;
    let patch = Some(json!({"nickname": "changed"}));

    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (payload, _) = token.split_once('.').unwrap();
    let other_server = LocalServer::start(backend).await;
    let (foreign, _) = other_server.api.login("iris").await;
    let foreign_sig = format!("{payload}.{}", foreign.split_once('.').unwrap().1);

    let (revoked, _) = api.login("iris").await;
    assert_eq!(
        api.call("POST", "/v1/auth/logout", Some(&revoked), None)
            .await
            .status,
        204
    );

    for (what, bad) in [
        ("tampered", Some(tampered.as_str())),
        ("signed with another key", Some(foreign.as_str())),
        ("another token's signature", Some(foreign_sig.as_str())),
        ("revoked", Some(revoked.as_str())),
        ("garbage", Some("not-a-token")),
        ("missing", None),
    ] {
        for (method, path) in [
            ("GET", "/v1/me"),
            ("PATCH", "/v1/me"),
            ("POST", "/v1/auth/logout"),
        ] {
            let body = (method == "PATCH").then(|| patch.clone()).flatten();
            let reply = api.call(method, path, bad, body).await;
            assert_eq!(
                (reply.status, reply.error_code()),
                (401, "unauthorized"),
                "{what} {method} {path}"
            );
        }
    }
    assert_eq!(stored_member(&server, &id).await, before);
    // The good token still works: refusals revoked nothing.
    assert_eq!(
        api.call("GET", "/v1/me", Some(&token), None).await.status,
        200
    );
    // A non-bearer scheme is refused too.
    let reply = reqwest::Client::new()
        .get(format!("{}/v1/me", api.base))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
}

async fn bad_logins_create_nobody(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let too_long = format!(r#"{{"code":"sandbox:{}"}}"#, "j".repeat(200));
    for (what, body, status) in [
        ("malformed", r#"{"code":"#.to_owned(), 400),
        (
            "unknown field",
            r#"{"code":"sandbox:jack","nickname":"x"}"#.to_owned(),
            422,
        ),
        ("wrong type", r#"{"code":123}"#.to_owned(), 422),
        ("missing code", r#"{}"#.to_owned(), 422),
        ("empty code", r#"{"code":""}"#.to_owned(), 422),
        (
            "code with spaces",
            r#"{"code":"sandbox:jack x"}"#.to_owned(),
            422,
        ),
        ("over-long code", too_long, 422),
        ("an array", r#"["sandbox:jack"]"#.to_owned(), 422),
    ] {
        let reply = api.raw("POST", "/v1/auth/wechat", None, Some(body)).await;
        assert_eq!(reply.status, status, "{what}: {reply:?}");
        reply.error_code();
    }
    // None of those created the member: the first real login is a new user.
    let (_, login) = api.login("jack").await;
    assert_eq!(login["new_user"], json!(true));
    // Unknown routes and methods answer in the same error shape.
    let reply = api.call("GET", "/v1/nowhere", None, None).await;
    assert_eq!((reply.status, reply.error_code()), (404, "not_found"));
    let reply = api.call("DELETE", "/v1/auth/wechat", None, None).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (405, "method_not_allowed")
    );
    // A 405 names the methods the path supports (RFC 9110), for every method it lacks.
    for (method, path, allow) in [
        ("DELETE", "/v1/auth/wechat", "POST"),
        ("TRACE", "/v1/me", "DELETE, GET, PATCH"),
        ("POST", "/v1/listings/l_1", "DELETE, GET, PATCH"),
        ("OPTIONS", "/v1/me/following/u_1", "DELETE, PUT"),
    ] {
        let reply = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", api.base),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 405, "{method} {path}");
        assert_eq!(
            reply.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let body: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "method_not_allowed",
            "{method} {path}"
        );
    }
    // A form body where JSON is required.
    let reply = reqwest::Client::new()
        .post(format!("{}/v1/auth/wechat", api.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("code=sandbox:jack")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 415);
}

/// A member with a token, verified so they may publish.
async fn verified_member(server: &LocalServer, name: &str) -> (String, String) {
    let member = server.member(name, true).await;
    (member.token, member.id)
}

async fn ok_call(api: &Api, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
    let reply = api.call(method, path, Some(token), body).await;
    assert!(
        (200..300).contains(&reply.status),
        "{method} {path}: {reply:?}"
    );
    reply.body
}

/// Every list route refuses, with 422 naming `cursor`, a cursor that was edited, truncated,
/// taken from another list (another member's, another feed), or sealed with empty key parts;
/// the list's own cursor still pages.
async fn cursors_not_of_this_list_are_refused_on_every_list_route(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (a, a_id) = verified_member(&server, "cursor-a").await;
    let (b, b_id) = verified_member(&server, "cursor-b").await;
    let (c, c_id) = verified_member(&server, "cursor-c").await;
    let mut listings = Vec::new();
    for (who, title) in [
        (&a, "婚礼摄影 一"),
        (&a, "婚礼摄影 二"),
        (&b, "婚礼摄影 三"),
        (&b, "婚礼摄影 四"),
    ] {
        let body = json!({
            "kind": "service", "title": title, "description": "全天跟拍",
            "category": "photography", "city": "北京", "price_fen": 100_000,
            "status": "published", "location": {"lat": 39.9, "lng": 116.4},
        });
        let listing = ok_call(api, "POST", "/v1/listings", who, Some(body)).await;
        listings.push(listing["id"].as_str().unwrap().to_owned());
    }
    for who in [&a, &b] {
        for id in &listings[..2] {
            ok_call(api, "PUT", &format!("/v1/me/favorites/{id}"), who, None).await;
            let share = Some(json!({"channel": "link"}));
            ok_call(
                api,
                "POST",
                &format!("/v1/listings/{id}/shares"),
                who,
                share,
            )
            .await;
        }
    }
    for (who, others) in [
        (&a, [&b_id, &c_id]),
        (&b, [&a_id, &c_id]),
        (&c, [&a_id, &b_id]),
    ] {
        for other in others {
            ok_call(api, "PUT", &format!("/v1/me/following/{other}"), who, None).await;
        }
    }

    let near = "/v1/listings?near=39.9,116.4&radius_km=5&limit=1";
    let feed = "/v1/listings?limit=1";
    // (route, a list, who reads it, another list of the route's and who reads that).
    let routes = [
        (
            "feed",
            feed.to_owned(),
            &a,
            "/v1/listings?limit=1&kind=service".to_owned(),
            &a,
        ),
        (
            "keyword",
            "/v1/listings?q=摄影&limit=1".into(),
            &a,
            feed.into(),
            &a,
        ),
        ("nearby", near.into(), &a, feed.into(), &a),
        (
            "member listings",
            format!("/v1/users/{a_id}/listings?limit=1"),
            &a,
            format!("/v1/users/{b_id}/listings?limit=1"),
            &a,
        ),
        (
            "followers",
            format!("/v1/users/{a_id}/followers?limit=1"),
            &a,
            format!("/v1/users/{b_id}/followers?limit=1"),
            &a,
        ),
        (
            "following",
            format!("/v1/users/{a_id}/following?limit=1"),
            &a,
            format!("/v1/users/{b_id}/following?limit=1"),
            &a,
        ),
        (
            "favourites",
            "/v1/me/favorites?limit=1".into(),
            &a,
            "/v1/me/favorites?limit=1".into(),
            &b,
        ),
        (
            "shares",
            "/v1/me/shares?limit=1".into(),
            &a,
            "/v1/me/shares?limit=1".into(),
            &b,
        ),
        (
            "own listings",
            "/v1/me/listings?limit=1".into(),
            &a,
            "/v1/me/listings?limit=1".into(),
            &b,
        ),
        (
            "own listings in one status",
            "/v1/me/listings?limit=1&status=published".into(),
            &a,
            "/v1/me/listings?limit=1".into(),
            &a,
        ),
    ];
    let keys = server.app().tokens().await.unwrap();
    let key = keys.cursors();
    for (route, path, reader, other_path, other_reader) in routes {
        let next = |body: &Value| body["next_cursor"].as_str().unwrap().to_owned();
        let own = next(&ok_call(api, "GET", &path, reader, None).await);
        let other = next(&ok_call(api, "GET", &other_path, other_reader, None).await);
        let with = |cursor: &str| format!("{path}&cursor={cursor}");
        let page = ok_call(api, "GET", &with(&own), reader, None).await;
        assert_eq!(
            page["items"].as_array().unwrap().len(),
            1,
            "{route}: {page}"
        );

        let mut bad = vec![
            ("another list's", other),
            ("truncated", own[..own.len() - 2].to_owned()),
            ("extended", format!("{own}AA")),
            ("garbage", "garbage".to_owned()),
        ];
        for i in [0, own.len() / 2, own.len() - 1] {
            let mut edited = own.clone().into_bytes();
            edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
            bad.push(("edited", String::from_utf8(edited).unwrap()));
        }
        // Well sealed (with the server's own key), but with a key part emptied.
        let opened: Value = serde_json::from_slice(key.open(&own).unwrap().as_bytes()).unwrap();
        for (name, value) in opened.as_object().unwrap() {
            if value.is_string() {
                let mut emptied = opened.clone();
                emptied[name] = json!("");
                let sealed = key.seal(&PageCursor::new(emptied.to_string().into_bytes()));
                bad.push(("an empty key part", sealed));
            }
        }
        for (what, cursor) in bad {
            let reply = api.call("GET", &with(&cursor), Some(reader), None).await;
            assert_eq!(
                (
                    reply.status,
                    reply.error_code(),
                    &reply.body["error"]["field"]
                ),
                (422, "invalid_field", &json!("cursor")),
                "{route}, {what} cursor: {reply:?}"
            );
        }
    }
}

/// Sends raw bytes to the local server; answers the status and the JSON body (connection closed).
async fn raw_http(server: &LocalServer, request: Vec<u8>) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.running.addr)
        .await
        .unwrap();
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body = serde_json::from_str(body).unwrap_or_else(|_| panic!("non-JSON body: {answer}"));
    (status, body)
}

/// A body whose bytes are not UTF-8 is no JSON (RFC 8259 §8.1): 400 `malformed_json` on every
/// route that reads a body, as any other unparsable body — not 422 "wrong type", which the
/// bytes inside a string used to get — and nothing changes.
async fn bodies_that_are_not_utf8_are_malformed(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let member = server.member("not-utf8", true).await;
    let before = stored_member(&server, &member.id).await;
    let user = renji_shared::ids::UserId::parse(&member.id).unwrap();
    let store = &server.app().store;
    let payouts = renji_shared::domain::payouts::accounts(store, &user)
        .await
        .unwrap();
    assert_eq!(payouts.len(), 1, "{payouts:?}");
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.running.addr);
    // A Latin-1 é, a lone continuation byte, a character cut short, an encoded surrogate, an
    // overlong '/', and a key that is not UTF-8.
    let bodies: [&[u8]; 6] = [
        b"{\"nickname\": \"Ren\xe9\"}",
        b"{\"nickname\": \"\x80\"}",
        b"{\"nickname\": \"\xe5\xbc\"}",
        b"{\"nickname\": \"\xed\xa0\x80\"}",
        b"{\"nickname\": \"\xc0\xaf\"}",
        b"{\"\xff\": \"x\"}",
    ];
    let routes = [
        ("PATCH", "/v1/me".to_owned(), true),
        ("POST", "/v1/auth/wechat".to_owned(), false),
        ("POST", "/v1/me/verification".to_owned(), true),
        ("PUT", "/v1/me/payout-accounts/alipay".to_owned(), true),
        ("PUT", "/v1/me/payout-accounts/wechat".to_owned(), true),
        ("POST", "/v1/listings".to_owned(), true),
        ("POST", "/v1/orders".to_owned(), true),
        // A route that takes no body reads one to refuse it.
        ("DELETE", "/v1/me/sessions".to_owned(), true),
    ];
    for (method, path, authorised) in &routes {
        for body in bodies {
            let mut request = client
                .request(method.parse().unwrap(), format!("{base}{path}"))
                .header("content-type", "application/json")
                .body(body.to_vec());
            if *authorised {
                request = request.header("authorization", format!("Bearer {}", member.token));
            }
            let reply = request.send().await.unwrap();
            let status = reply.status().as_u16();
            let text = reply.text().await.unwrap();
            let answer: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{method} {path} {body:?}: {status} {text:?}"));
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (400, Some("malformed_json")),
                "{method} {path} {body:?}: {answer}"
            );
        }
    }
    // The local jobs' clock reads its body as the routes do, and does not move.
    let clock = || async {
        let reply = client
            .get(format!("{base}/sandbox/clock"))
            .send()
            .await
            .unwrap();
        reply.json::<Value>().await.unwrap()
    };
    let before_clock = clock().await;
    for body in bodies {
        let reply = client
            .post(format!("{base}/sandbox/clock"))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = reply.status().as_u16();
        let answer: Value = reply.json().await.unwrap();
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("malformed_json")),
            "/sandbox/clock {body:?}: {answer}"
        );
    }
    assert_eq!(clock().await["offset_secs"], before_clock["offset_secs"]);
    // Nothing changed: the member (nickname, verification), their payout accounts; the token
    // still works.
    assert_eq!(stored_member(&server, &member.id).await, before);
    assert_eq!(
        renji_shared::domain::payouts::accounts(store, &user)
            .await
            .unwrap(),
        payouts
    );
    let me = server
        .api
        .call("GET", "/v1/me", Some(&member.token), None)
        .await;
    assert_eq!(me.status, 200, "{me:?}");
    // The same body as UTF-8 is read.
    let ok = server
        .api
        .raw(
            "PATCH",
            "/v1/me",
            Some(&member.token),
            Some("{\"nickname\": \"René\"}".into()),
        )
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
}

/// Requests the HTTP layer refuses before any route (hyper's own 400, 414 and 431) are answered
/// in the error shape too, not with an empty body.
async fn unparseable_requests_get_the_error_shape(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let long_uri = format!(
        "GET /v1/users/{} HTTP/1.1\r\nhost: localhost\r\n\r\n",
        "a".repeat(70_000)
    );
    let mut many_headers = String::from("GET /v1/me HTTP/1.1\r\nhost: localhost\r\n");
    for n in 0..120 {
        many_headers.push_str(&format!("x-header-{n}: {n}\r\n"));
    }
    many_headers.push_str("\r\n");
    let bad_header = "GET /v1/me HTTP/1.1\r\nhost: localhost\r\nno colon here\r\n\r\n".to_owned();
    for (request, status, code) in [
        (long_uri, 414, "uri_too_long"),
        (many_headers, 431, "headers_too_large"),
        (bad_header, 400, "bad_request"),
    ] {
        let (got, body) = raw_http(&server, request.into_bytes()).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)));
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // Answers of the API itself pass through untouched, on the same kind of connection.
    let (status, body) = raw_http(
        &server,
        b"GET /v1/nowhere HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

/// Every member route's query string: a write takes none (422 naming it, before anything else
/// runs), a read refuses a parameter it does not know and one given twice.
async fn query_strings_are_checked_on_every_route(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let member = server.member("query", true).await;
    let routes = renji_local::template::Template::load().unwrap().routes();
    let member_routes = routes.iter().filter(|r| r.path.starts_with("/v1/"));
    let mut checked = 0;
    for route in member_routes {
        let path: String = route
            .path
            .split('/')
            .map(|part| match part.starts_with('{') {
                true => member.id.as_str(),
                false => part,
            })
            .collect::<Vec<_>>()
            .join("/");
        let cases: &[(&str, &str)] = match route.method.as_str() {
            "GET" => &[("zz_unknown=1", "zz_unknown"), ("limit=1&limit=2", "limit")],
            _ => &[("kind=privacy", "kind")],
        };
        for (query, field) in cases {
            let reply = server
                .api
                .call(
                    &route.method,
                    &format!("{path}?{query}"),
                    Some(&member.token),
                    None,
                )
                .await;
            assert_eq!(
                (reply.status, reply.body["error"]["field"].as_str()),
                (422, Some(*field)),
                "{} ?{query}: {reply:?}",
                route.key()
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked} cases");

    // Signed out, the token is refused whatever the query, on every route that takes one (a
    // read's handler judges its query first: the session is read once it refused it).
    let out = server
        .api
        .call("POST", "/v1/auth/logout", Some(&member.token), None)
        .await;
    assert_eq!(out.status, 204, "{out:?}");
    let mut failures = Vec::new();
    for route in routes.iter().filter(|r| r.path.starts_with("/v1/")) {
        let path = route.path.replace('{', "x").replace('}', "");
        let reply = server
            .api
            .call(
                &route.method,
                &format!("{path}?zz_unknown=1"),
                Some(&member.token),
                None,
            )
            .await;
        // A push judges its own query (signature, nonce) and reads no session.
        let push = route.method == "POST"
            && (route.path.ends_with("/notify") || route.path == "/v1/wechat/events");
        let expected = if push { 422 } else { 401 };
        if reply.status != expected {
            failures.push(format!("{} signed out: {reply:?}", route.key()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The statuses `openapi.yaml` lists for `method path` (it says every one a route can answer is
/// listed).
fn documented_statuses(openapi: &serde_yaml::Value, method: &str, path: &str) -> Vec<u16> {
    let responses = openapi["paths"][path][method.to_ascii_lowercase().as_str()]["responses"]
        .as_mapping()
        .unwrap_or_else(|| panic!("openapi.yaml has no responses for {method} {path}"));
    responses
        .keys()
        .filter_map(|k| match k {
            serde_yaml::Value::String(s) => s.parse().ok(),
            serde_yaml::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            _ => None,
        })
        .collect()
}

/// Every route of `template.yaml` answers an unknown query parameter, a token that is none and,
/// where a body may come, one of a content type that is not JSON or that is not JSON, only with
/// statuses `openapi.yaml` lists for it (its info promises so, and the contract test flags any
/// other). Each route is called as whom it serves (a member, an admin, nobody for the callbacks),
/// with ids that name something where that is easy.
async fn bad_requests_get_only_statuses_openapi_lists(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let api = &server.api;
    let openapi: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap(),
    )
    .unwrap();
    let other = server.member("documented-other", true).await;
    let staff = api.staff_token("staff:documented:admin").await;
    let client = reqwest::Client::new();
    let routes = renji_local::template::Template::load().unwrap().routes();
    let mut undocumented = Vec::new();
    let mut checked = 0;
    for (i, route) in routes.iter().enumerate() {
        // A fresh member and listing for each route: one that acts on what it was sent (deletes
        // the listing, logs out) does not change what the next is called with.
        let member = server.member(&format!("documented-{i}"), true).await;
        let listing = api
            .create_listing(&member, renji_tests::service("婚礼跟拍"))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = match route.path.split('/').nth(2) {
            Some("v1") => Some(staff.as_str()),
            Some("payments" | "wechat") => None,
            _ => Some(member.token.as_str()),
        };
        let path: String = route
            .path
            .split('/')
            .map(|part| match part {
                "{listing_id}" => listing.as_str(),
                "{id}"
                    if route.path.starts_with("/v1/listings/")
                        || route.path.starts_with("/admin/v1/listings/") =>
                {
                    listing.as_str()
                }
                "{user_id}" => other.id.as_str(),
                "{channel}" => "alipay",
                "{scope}" => "location",
                part if part.starts_with('{') => member.id.as_str(),
                part => part,
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
        let url = format!("{}{path}", api.base);
        let authorized = |request: reqwest::RequestBuilder| match token {
            Some(token) => request.header("authorization", format!("Bearer {token}")),
            None => request,
        };
        let mut cases = vec![
            (
                "?zz_unknown=1",
                authorized(client.request(method.clone(), format!("{url}?zz_unknown=1"))),
            ),
            (
                "a token that is none",
                client
                    .request(method.clone(), &url)
                    .header("authorization", "Bearer not-a-token"),
            ),
        ];
        if route.method != "GET" {
            cases.push((
                "content-type: text/plain",
                authorized(client.request(method.clone(), &url))
                    .header("content-type", "text/plain")
                    .body("{}"),
            ));
            cases.push((
                "a body that is not JSON",
                authorized(client.request(method.clone(), &url))
                    .header("content-type", "application/json")
                    .body("{"),
            ));
        }
        let documented = documented_statuses(&openapi, &route.method, &route.path);
        for (case, request) in cases {
            let status = request.send().await.expect("request").status().as_u16();
            if !documented.contains(&status) {
                undocumented.push(format!(
                    "{} {case}: {status} (documented {documented:?})",
                    route.key()
                ));
            }
            checked += 1;
        }
    }
    assert!(checked > 280, "{checked} cases");
    assert!(
        undocumented.is_empty(),
        "answers openapi.yaml does not list:\n{}",
        undocumented.join("\n")
    );
}

/// `GET /v1/me/earnings`: a seller's own paid orders only; bad parameters and cursors are 422
/// naming them, no session 401.
async fn earnings_are_ones_own_and_bad_input_is_refused(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let api = &server.api;
    let seller = server.member("earn-seller", true).await;
    let buyer = server.member("earn-buyer", true).await;
    let listing = api
        .create_listing(&seller, renji_tests::service("婚礼跟拍"))
        .await;
    let listing = listing["id"].as_str().unwrap().to_owned();
    let mut orders = Vec::new();
    for _ in 0..2 {
        orders.push(server.paid_order(&buyer, &listing).await);
    }
    let mine = ok_call(api, "GET", "/v1/me/earnings", &seller.token, None).await;
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{mine}");
    assert!(items
        .iter()
        .all(|i| orders.contains(&i["order_id"].as_str().unwrap().to_owned())));
    assert_eq!(items[0]["state"], "pending");
    let share = items[0]["seller_fen"].as_i64().unwrap();
    assert!(share > 0);
    assert_eq!(mine["totals"]["pending_fen"], json!(2 * share));
    assert_eq!(mine["totals"]["paid_fen"], json!(0));
    // The buyer earns nothing from what they bought.
    let theirs = ok_call(api, "GET", "/v1/me/earnings", &buyer.token, None).await;
    assert_eq!(theirs["items"], json!([]));
    assert_eq!(theirs["totals"]["pending_fen"], json!(0));
    // Paged; the seller's cursor is not the buyer's.
    let first = ok_call(api, "GET", "/v1/me/earnings?limit=1", &seller.token, None).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = ok_call(
        api,
        "GET",
        &format!("/v1/me/earnings?limit=1&cursor={cursor}"),
        &seller.token,
        None,
    )
    .await;
    assert_ne!(
        second["items"][0]["order_id"],
        first["items"][0]["order_id"]
    );
    for (query, field, who) in [
        (format!("cursor={cursor}"), "cursor", &buyer.token),
        ("cursor=garbage".to_owned(), "cursor", &seller.token),
        ("limit=0".to_owned(), "limit", &seller.token),
        ("limit=abc".to_owned(), "limit", &seller.token),
        ("role=seller".to_owned(), "role", &seller.token),
    ] {
        let reply = api
            .call("GET", &format!("/v1/me/earnings?{query}"), Some(who), None)
            .await;
        assert_eq!(
            (reply.status, reply.body["error"]["field"].as_str()),
            (422, Some(field)),
            "?{query}: {reply:?}"
        );
    }
    let anonymous = api.call("GET", "/v1/me/earnings", None, None).await;
    assert_eq!(anonymous.status, 401);
}

on_both_stores!(
    bodies_that_are_not_utf8_are_malformed,
    earnings_are_ones_own_and_bad_input_is_refused,
    query_strings_are_checked_on_every_route,
    bad_requests_get_only_statuses_openapi_lists,
    cursors_not_of_this_list_are_refused_on_every_list_route,
    unparseable_requests_get_the_error_shape,
    bad_profile_updates_change_nothing,
    bad_tokens_are_refused_and_change_nothing,
    bad_logins_create_nobody,
);
