//! A member's sessions and devices (`auth` function) and the audit records of members' sensitive
//! actions, over HTTP on both stores: each login's device facts are listed, one session or every
//! other one is signed out (its token refused at once), another member's session is 404; login,
//! logout, revocations, a verification and the refund actions each write their audit record,
//! with no personal data in any.

use renji_shared::store::Query;
use renji_tests::{on_both_stores, Backend, LocalServer, Market, Member};
use serde_json::{json, Value};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) \
                      NetType/WIFI Language/zh_CN miniProgram/wx1234567890abcdef";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 13; 22081212C; wv) AppleWebKit/537.36 \
                       MicroMessenger/8.0.42.2460(0x28002A35) NetType/5G Language/zh_CN \
                       miniProgram/wx1234567890abcdef";

/// Logs in as the sandbox member `name` with `user_agent`: (token, member id).
async fn login_from(server: &LocalServer, name: &str, user_agent: &str) -> (String, String) {
    let body = json!({ "code": format!("sandbox:{name}") }).to_string();
    let reply = server
        .api
        .send(
            "POST",
            "/v1/auth/wechat",
            None,
            Some(body),
            &[("user-agent", user_agent)],
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    (
        reply.body["token"].as_str().unwrap().to_owned(),
        reply.body["user"]["id"].as_str().unwrap().to_owned(),
    )
}

/// A session's id: the `s` claim of its token (`<kid>.<payload>.<signature>`).
fn session_id(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').rev().nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["s"].as_str().unwrap().to_owned()
}

async fn status(server: &LocalServer, method: &str, path: &str, token: &str) -> u16 {
    server
        .api
        .call(method, path, Some(token), None)
        .await
        .status
}

/// Every record of an audit list (`AUDIT#actor#member:u_…`, `AUDIT#target#order:…`), oldest first.
async fn audit_list(server: &LocalServer, partition: &str) -> Vec<Value> {
    let page = server
        .app()
        .store
        .query(Query::partition(partition.to_owned()).limit(100))
        .await
        .unwrap();
    page.items.into_iter().map(Value::Object).collect()
}

/// A member's openid and nickname as stored: personal data no audit record may hold.
async fn personal_of(server: &LocalServer, member: &str) -> Vec<String> {
    let id = renji_shared::ids::UserId::parse(member).unwrap();
    let item = server
        .app()
        .store
        .get(&renji_shared::store::keys::member(&id))
        .await
        .unwrap()
        .unwrap();
    let openid = item["openid"].as_str().unwrap().to_owned();
    let mut personal = vec![openid];
    if let Some(nickname) = item.get("nickname").and_then(Value::as_str) {
        personal.push(nickname.to_owned());
    }
    personal
}

fn actions(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect()
}

/// An audit record holds ids and codes only: its fields are these, and none of `personal`
/// appears anywhere in it.
fn assert_impersonal(record: &Value, personal: &[&str]) {
    let allowed = [
        "pk",
        "sk",
        "at",
        "member_id",
        "action",
        "target",
        "outcome",
        "ttl",
    ];
    for field in record.as_object().unwrap().keys() {
        assert!(allowed.contains(&field.as_str()), "{field} in {record}");
    }
    let text = record.to_string();
    for p in personal {
        assert!(!text.contains(p), "{p} in {record}");
    }
    assert_eq!(record["outcome"], json!("ok"), "{record}");
    assert!(record["ttl"].as_i64().unwrap() > 0, "{record}");
}

async fn sessions_are_listed_with_their_devices_and_signed_out(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let (phone, alice) = login_from(&server, "alice", IPHONE).await;
    let (tablet, _) = login_from(&server, "alice", ANDROID).await;
    let (desk, again) = login_from(&server, "alice", "curl/8.4.0\t(x)").await;
    assert_eq!(again, alice);
    let (bob, _) = server.api.login("bob").await;

    // Listed newest first, each with its login's device facts; the caller's marked current.
    let list = server
        .api
        .call("GET", "/v1/me/sessions", Some(&desk), None)
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body["next_cursor"], Value::Null);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{list:?}");
    let created: Vec<&str> = items
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    let of = |token: &str| {
        let id = session_id(token);
        items
            .iter()
            .find(|i| i["id"] == json!(id))
            .unwrap_or_else(|| panic!("{id} not listed"))
            .clone()
    };
    let shown = of(&phone);
    assert_eq!(
        renji_tests::keys(&shown),
        [
            "created_at",
            "current",
            "expires_at",
            "id",
            "ip",
            "platform",
            "user_agent"
        ]
    );
    assert_eq!(
        (&shown["platform"], &shown["user_agent"], &shown["ip"]),
        (&json!("ios"), &json!(IPHONE), &json!("127.0.0.1"))
    );
    assert_eq!(shown["current"], json!(false));
    assert_eq!(of(&tablet)["platform"], json!("android"));
    let own = of(&desk);
    assert_eq!(
        (&own["platform"], &own["user_agent"], &own["current"]),
        (&json!("other"), &json!("curl/8.4.0(x)"), &json!(true))
    );
    // The route takes no parameters.
    let paged = server
        .api
        .call("GET", "/v1/me/sessions?limit=1", Some(&desk), None)
        .await;
    assert_eq!(paged.status, 422, "{paged:?}");

    // One session signed out: its token is refused at once, the others are not.
    let path = format!("/v1/me/sessions/{}", session_id(&phone));
    assert_eq!(status(&server, "DELETE", &path, &desk).await, 204);
    assert_eq!(status(&server, "GET", "/v1/me", &phone).await, 401);
    assert_eq!(status(&server, "GET", "/v1/me", &tablet).await, 200);
    // Again, another member's session, an unknown id and a malformed one: 404, nothing changes.
    let bobs = format!("/v1/me/sessions/{}", session_id(&bob));
    for path in [
        path.as_str(),
        bobs.as_str(),
        "/v1/me/sessions/AAAAAAAAAAAAAAAAAAAAAA",
        "/v1/me/sessions/not-an-id",
    ] {
        assert_eq!(status(&server, "DELETE", path, &desk).await, 404, "{path}");
    }
    assert_eq!(status(&server, "GET", "/v1/me", &bob).await, 200);
    let body = server
        .api
        .raw(
            "DELETE",
            &format!("/v1/me/sessions/{}", session_id(&tablet)),
            Some(&desk),
            Some(r#"{"all":true}"#.into()),
        )
        .await;
    assert_eq!(body.status, 422, "{body:?}");

    // Everywhere else: only the current session is left.
    assert_eq!(
        status(&server, "DELETE", "/v1/me/sessions", &desk).await,
        204
    );
    assert_eq!(status(&server, "GET", "/v1/me", &tablet).await, 401);
    let list = server
        .api
        .call("GET", "/v1/me/sessions", Some(&desk), None)
        .await;
    let ids: Vec<&Value> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(ids, [&json!(session_id(&desk))], "{list:?}");
    assert_eq!(status(&server, "GET", "/v1/me", &bob).await, 200);

    // Signing out the current session is a logout.
    let own = format!("/v1/me/sessions/{}", session_id(&desk));
    assert_eq!(status(&server, "DELETE", &own, &desk).await, 204);
    assert_eq!(status(&server, "GET", "/v1/me/sessions", &desk).await, 401);
    let (last, _) = server.api.login("alice").await;
    assert_eq!(status(&server, "POST", "/v1/auth/logout", &last).await, 204);

    // Each login, revocation and the logout is in alice's own audit list, ids only.
    let trail = audit_list(&server, &format!("AUDIT#actor#member:{alice}")).await;
    assert_eq!(
        actions(&trail),
        [
            "login",
            "login",
            "login",
            "sessions.revoke",
            "sessions.revoke",
            "sessions.revoke",
            "login",
            "logout"
        ]
    );
    let mut personal = personal_of(&server, &alice).await;
    personal.extend(["127.0.0.1", "iPhone", "Android", "curl", "sandbox"].map(String::from));
    let personal: Vec<&str> = personal.iter().map(String::as_str).collect();
    for record in &trail {
        assert_eq!(record["member_id"], json!(alice));
        assert_eq!(record["target"], json!(format!("member:{alice}")));
        assert_impersonal(record, &personal);
    }
}

/// A verification's submission and decision, and the refund actions of both parties, each write
/// their record in their own transaction; an admin reads a member's through the audit route.
async fn members_sensitive_actions_are_audited(backend: Backend) {
    let market = Market::start(backend, &[]).await;
    let server = &market.server;
    let (seller, buyer): (&Member, &Member) = (&market.seller, &market.buyer);
    let call = |who: &Member, path: String, body: Option<Value>| {
        let token = who.token.clone();
        async move { server.api.call("POST", &path, Some(&token), body).await }
    };

    // The buyer verifies (the sandbox verifier decides at once).
    let verified = call(
        buyer,
        "/v1/me/verification".into(),
        Some(json!({"kind": "person", "real_name": "张三", "id_number": "11010519491231002X"})),
    )
    .await;
    assert_eq!(verified.status, 201, "{verified:?}");
    assert_eq!(verified.body["status"], json!("verified"));

    // One refund request declined, another approved.
    let ask = json!({"reason": "时间冲突，无法前往"});
    let declined = server.paid_order(buyer, &market.listing).await;
    let approved = server.paid_order(buyer, &market.listing).await;
    for order in [&declined, &approved] {
        let reply = call(seller, format!("/v1/orders/{order}/accept"), None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let reply = call(
            buyer,
            format!("/v1/orders/{order}/refund"),
            Some(ask.clone()),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let no = json!({"reason": "已按约定准备"});
    let reply = call(
        seller,
        format!("/v1/orders/{declined}/refund/decline"),
        Some(no),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = call(
        seller,
        format!("/v1/orders/{approved}/refund/approve"),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // A refused action (a second request of a declined refund's order by the stranger) writes
    // nothing.
    let refused = call(
        &market.stranger,
        format!("/v1/orders/{approved}/refund"),
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(refused.status, 404, "{refused:?}");

    let mut personal = personal_of(server, &buyer.id).await;
    personal.extend(personal_of(server, &seller.id).await);
    personal.extend(
        [
            "127.0.0.1",
            "张三",
            "11010519491231002X",
            "时间冲突",
            "已按约定准备",
            "sandbox",
        ]
        .map(String::from),
    );
    let personal: Vec<&str> = personal.iter().map(String::as_str).collect();
    let buyers = audit_list(server, &format!("AUDIT#actor#member:{}", buyer.id)).await;
    assert_eq!(
        actions(&buyers),
        [
            "login",
            "verification.submit",
            "order.refund_request",
            "order.refund_request"
        ]
    );
    let decided = audit_list(server, &format!("AUDIT#target#member:{}", buyer.id)).await;
    assert_eq!(actions(&decided), ["verification.verified"]);
    assert_eq!(decided[0].get("member_id"), None, "the system's");
    let sellers = audit_list(server, &format!("AUDIT#actor#member:{}", seller.id)).await;
    assert_eq!(
        actions(&sellers),
        // The market's seller bound their own WeChat and an Alipay payout account (the test
        // support).
        [
            "login",
            "payout.bind",
            "payout.bind",
            "order.refund_decline",
            "order.refund_approve"
        ]
    );
    for (order, answer) in [
        (&declined, "order.refund_decline"),
        (&approved, "order.refund_approve"),
    ] {
        let on_order = audit_list(server, &format!("AUDIT#target#order:{order}")).await;
        assert_eq!(actions(&on_order), ["order.refund_request", answer]);
        for record in &on_order {
            assert_eq!(record["target"], json!(format!("order:{order}")));
        }
    }
    let stranger = audit_list(
        server,
        &format!("AUDIT#actor#member:{}", market.stranger.id),
    )
    .await;
    assert_eq!(actions(&stranger), ["login"]);
    for record in buyers.iter().chain(&decided).chain(&sellers) {
        assert_impersonal(record, &personal);
    }

    // An admin reads the buyer's through the audit route, newest first.
    let admin = &server.api.staff_token("staff:ada:admin").await;
    let trail = server
        .api
        .call(
            "GET",
            &format!("/admin/v1/audit?actor=member:{}", buyer.id),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(trail.status, 200, "{trail:?}");
    let shown: Vec<&Value> = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["action"])
        .collect();
    assert_eq!(
        shown,
        [
            &json!("order.refund_request"),
            &json!("order.refund_request"),
            &json!("verification.submit"),
            &json!("login")
        ]
    );
    assert_eq!(
        trail.body["items"][0]["actor"],
        json!(format!("member:{}", buyer.id))
    );
}

on_both_stores!(
    sessions_are_listed_with_their_devices_and_signed_out,
    members_sensitive_actions_are_audited,
);
