//! Real-name verification end to end over HTTP, on both stores, against the sandbox verifier
//! (names starting 拒绝 are rejected, 待定 pending once, 故障 an outage; others verified).

use renji_shared::domain::verification::{day_counter_key, Verification};
use renji_shared::ids::UserId;
use renji_shared::store::{Item, Query};
use renji_tests::{on_both_stores, Api, Backend, LocalServer, Reply};
use serde_json::{json, Value};

const PATH: &str = "/v1/me/verification";
const ID_NUMBER: &str = "11010519491231002X";
const CREDIT_CODE: &str = "91350100M000100Y43";
const COMPANY: &str = "北京风郎影业有限公司";

fn person(name: &str, number: &str) -> Value {
    json!({"kind": "person", "real_name": name, "id_number": number})
}

fn enterprise(name: &str, code: &str) -> Value {
    json!({"kind": "enterprise", "company_name": name, "credit_code": code})
}

/// 17 digits and their MOD 11-2 check character, computed here independently of the server.
fn with_check(first17: &str) -> String {
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .chars()
        .zip(weights)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    format!("{first17}{}", &"10X98765432"[(sum % 11) as usize..][..1])
}

async fn login(api: &Api, name: &str) -> (String, UserId) {
    let (token, body) = api.login(name).await;
    let id = UserId::parse(body["user"]["id"].as_str().unwrap()).unwrap();
    (token, id)
}

async fn submit(api: &Api, token: &str, body: Value) -> Reply {
    api.call("POST", PATH, Some(token), Some(body)).await
}

async fn get(api: &Api, token: &str) -> Reply {
    api.call("GET", PATH, Some(token), None).await
}

async fn badge(api: &Api, token: &str) -> Value {
    api.call("GET", "/v1/me", Some(token), None).await.body["verified"].clone()
}

/// Every item of the member's partition, as stored: what any write would change.
async fn partition(server: &LocalServer, id: &UserId) -> Vec<Item> {
    server
        .app()
        .store
        .query(Query::partition(format!("USER#{id}")))
        .await
        .unwrap()
        .items
}

async fn record(server: &LocalServer, id: &UserId) -> Verification {
    let item = server
        .app()
        .store
        .get(&renji_shared::domain::verification::record_key(id))
        .await
        .unwrap()
        .expect("verification stored");
    serde_json::from_value(Value::Object(item)).unwrap()
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn submissions_today(server: &LocalServer, id: &UserId) -> Option<i64> {
    server
        .app()
        .store
        .get(&day_counter_key(id, &today()))
        .await
        .unwrap()
        .map(|c| c["n"].as_i64().unwrap())
}

/// Checks the stored text holds none of `secrets` (in any case), and that the sealed values
/// open to them: they are kept, encrypted.
async fn assert_sealed(server: &LocalServer, id: &UserId, secrets: &[&str]) {
    let text = Value::Array(
        partition(server, id)
            .await
            .into_iter()
            .map(Value::Object)
            .collect(),
    )
    .to_string();
    for secret in secrets {
        assert!(
            !text.contains(secret) && !text.contains(&secret.to_lowercase()),
            "{secret} stored in the clear: {text}"
        );
    }
    let r = record(server, id).await;
    let ring = server.app().pii.as_ref().unwrap();
    let opened = [
        ring.open(id, "verification.name", &r.name_sealed).unwrap(),
        ring.open(id, "verification.number", &r.number_sealed)
            .unwrap(),
    ];
    for secret in secrets {
        assert!(opened.iter().any(|o| o == secret), "{secret} not sealed");
    }
}

async fn a_person_is_verified_and_shown_masked(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, id) = login(api, "vera").await;
    let none = get(api, &token).await;
    assert_eq!((none.status, none.error_code()), (404, "not_found"));
    assert_eq!(badge(api, &token).await, Value::Null);

    // A lowercase check character is accepted and normalised.
    let reply = submit(api, &token, person(" 张三 ", &ID_NUMBER.to_lowercase())).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let body = &reply.body;
    assert_eq!(body["status"], json!("verified"));
    assert_eq!(body["kind"], json!("person"));
    assert_eq!(body["name"], json!("*三"));
    assert_eq!(body["number"], json!("11**************2X"));
    assert_eq!(body["reason"], Value::Null);
    assert!(body["submitted_at"].as_str().unwrap().ends_with('Z'));
    assert!(body["decided_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        renji_tests::keys(body),
        [
            "decided_at",
            "kind",
            "name",
            "number",
            "reason",
            "status",
            "submitted_at"
        ]
    );

    let again = get(api, &token).await;
    assert_eq!((again.status, &again.body), (200, body));
    assert_eq!(badge(api, &token).await, json!("person"));
    let public = api
        .call("GET", &format!("/v1/users/{id}"), None, None)
        .await;
    assert_eq!(public.body["verified"], json!("person"));
    assert_sealed(&server, &id, &["张三", ID_NUMBER]).await;

    // Verified: no second submission, whatever it says.
    let twice = submit(api, &token, enterprise(COMPANY, CREDIT_CODE)).await;
    assert_eq!(
        (twice.status, twice.error_code()),
        (409, "verification_exists")
    );
    assert_eq!(get(api, &token).await.body, *body);
    assert_eq!(submissions_today(&server, &id).await, Some(1));
}

async fn an_enterprise_is_verified(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, id) = login(api, "wendy").await;
    let reply = submit(
        api,
        &token,
        enterprise(COMPANY, &CREDIT_CODE.to_lowercase()),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.body["status"], json!("verified"));
    assert_eq!(reply.body["kind"], json!("enterprise"));
    // Public registry data: the company name shows in full.
    assert_eq!(reply.body["name"], json!(COMPANY));
    assert_eq!(reply.body["number"], json!("91**************43"));
    assert_eq!(badge(api, &token).await, json!("enterprise"));
    assert_eq!(get(api, &token).await.body, reply.body);
    assert_sealed(&server, &id, &[CREDIT_CODE]).await;
}

async fn a_rejection_allows_a_new_submission(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, id) = login(api, "xavier").await;
    let rejected = submit(api, &token, person("拒绝张三", ID_NUMBER)).await;
    assert_eq!(rejected.status, 201, "{rejected:?}");
    assert_eq!(rejected.body["status"], json!("rejected"));
    assert_eq!(
        rejected.body["reason"],
        json!("name and number do not match")
    );
    assert_eq!(rejected.body["name"], json!("***三"));
    assert_eq!(get(api, &token).await.body, rejected.body);
    assert_eq!(badge(api, &token).await, Value::Null);
    assert_sealed(&server, &id, &["拒绝张三", ID_NUMBER]).await;

    // Resubmitted, as the other kind this time.
    let verified = submit(api, &token, enterprise(COMPANY, CREDIT_CODE)).await;
    assert_eq!(verified.status, 201, "{verified:?}");
    assert_eq!(verified.body["status"], json!("verified"));
    assert_eq!(verified.body["reason"], Value::Null);
    assert_eq!(badge(api, &token).await, json!("enterprise"));
    assert_eq!(submissions_today(&server, &id).await, Some(2));
}

async fn a_pending_verification_is_settled_by_a_later_read(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, id) = login(api, "yolanda").await;
    let pending = submit(api, &token, person("待定张三", ID_NUMBER)).await;
    assert_eq!(pending.status, 202, "{pending:?}");
    assert_eq!(pending.body["status"], json!("pending"));
    assert_eq!(pending.body["decided_at"], Value::Null);
    assert_eq!(badge(api, &token).await, Value::Null);
    let attempt = record(&server, &id).await.attempt_id;
    let twice = submit(api, &token, person("李四", ID_NUMBER)).await;
    assert_eq!(
        (twice.status, twice.error_code()),
        (409, "verification_exists")
    );

    // Several reads at once: the verifier now says verified; it is recorded once.
    let reads: Vec<_> = (0..6)
        .map(|_| {
            let api = api.clone();
            let token = token.clone();
            tokio::spawn(async move { get(&api, &token).await })
        })
        .collect();
    let stored = {
        let mut bodies = Vec::new();
        for read in reads {
            let reply = read.await.unwrap();
            assert_eq!(reply.status, 200, "{reply:?}");
            bodies.push(reply.body);
        }
        let r = record(&server, &id).await;
        for body in bodies {
            assert_eq!(body["status"], json!("verified"));
            assert_eq!(body["decided_at"], json!(r.decided_at));
        }
        r
    };
    assert_eq!(stored.attempt_id, attempt, "the same attempt was settled");
    assert_eq!(badge(api, &token).await, json!("person"));
    assert_eq!(get(api, &token).await.body["status"], json!("verified"));
    assert_eq!(submissions_today(&server, &id).await, Some(1));
    assert_sealed(&server, &id, &["待定张三", ID_NUMBER]).await;

    // An outage leaves the attempt pending, and a read keeps it so.
    let (token, id) = login(api, "zach").await;
    let outage = submit(api, &token, person("故障张三", ID_NUMBER)).await;
    assert_eq!(
        (outage.status, &outage.body["status"]),
        (202, &json!("pending"))
    );
    let before = partition(&server, &id).await;
    let read = get(api, &token).await;
    assert_eq!((read.status, &read.body), (200, &outage.body));
    assert_eq!(partition(&server, &id).await, before);
    assert_eq!(badge(api, &token).await, Value::Null);
}

async fn the_daily_limit_stops_submissions_and_writes_nothing(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, id) = login(api, "alma").await;
    for n in 1..=5 {
        let reply = submit(api, &token, person("拒绝王五", ID_NUMBER)).await;
        assert_eq!(
            (reply.status, &reply.body["status"]),
            (201, &json!("rejected")),
            "submission {n}"
        );
    }
    assert_eq!(submissions_today(&server, &id).await, Some(5));
    let before = partition(&server, &id).await;
    for _ in 0..2 {
        let reply = submit(api, &token, person("王五", ID_NUMBER)).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (429, "too_many_requests")
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let expected = 86_400 - now.rem_euclid(86_400);
        let retry: i64 = reply.retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=86_400).contains(&retry), "{retry}");
        assert!((retry - expected).abs() <= 5, "{retry} vs {expected}");
        assert_eq!(partition(&server, &id).await, before, "nothing written");
    }
    let counter = server
        .app()
        .store
        .get(&day_counter_key(&id, &today()))
        .await
        .unwrap()
        .unwrap();
    let ttl = counter["ttl"].as_i64().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (now + 2 * 86_400 - 60..=now + 2 * 86_400).contains(&ttl),
        "{ttl}"
    );
    assert_eq!(get(api, &token).await.body["status"], json!("rejected"));
    // Another member has their own count.
    let (other, _) = login(api, "bruno").await;
    assert_eq!(
        submit(api, &other, person("王五", ID_NUMBER)).await.status,
        201
    );
}

async fn bad_input_is_refused_and_changes_nothing(backend: Backend) {
    // Over twenty submissions in a row: more than the rate limit of the verify class allows.
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let api = &server.api;
    let (token, id) = login(api, "bea").await;
    // A rejected attempt first, so there is a record and a counter that must not move.
    let first = submit(api, &token, person("拒绝张三", ID_NUMBER)).await;
    assert_eq!(first.body["status"], json!("rejected"));
    let before = partition(&server, &id).await;

    let person_with = |name: &str, number: &str| person(name, number).to_string();
    let one_mib = person_with(&"张".repeat(512 * 1024), ID_NUMBER);
    let cases: Vec<(&str, String, u16, &str, Option<&str>)> = vec![
        ("malformed JSON", r#"{"kind":"#.into(), 400, "malformed_json", None),
        ("empty body", "".into(), 400, "missing_body", None),
        ("not an object", "[1]".into(), 422, "invalid_field", None),
        (
            "unknown field",
            r#"{"kind":"person","real_name":"张三","id_number":"11010519491231002X","verified":true}"#.into(),
            422,
            "invalid_field",
            None,
        ),
        (
            "a field of the other kind",
            r#"{"kind":"person","real_name":"张三","id_number":"11010519491231002X","credit_code":"91350100M000100Y43"}"#.into(),
            422,
            "invalid_field",
            None,
        ),
        (
            "wrong kind",
            r#"{"kind":"robot","real_name":"张三","id_number":"11010519491231002X"}"#.into(),
            422,
            "invalid_field",
            None,
        ),
        (
            "no kind",
            r#"{"real_name":"张三","id_number":"11010519491231002X"}"#.into(),
            422,
            "invalid_field",
            None,
        ),
        (
            "missing number",
            r#"{"kind":"person","real_name":"张三"}"#.into(),
            422,
            "invalid_field",
            None,
        ),
        (
            "number as a number",
            r#"{"kind":"person","real_name":"张三","id_number":110105194912310020}"#.into(),
            422,
            "invalid_field",
            None,
        ),
        (
            "bad check digit",
            person_with("张三", "110105194912310021"),
            422,
            "invalid_field",
            Some("id_number"),
        ),
        (
            "impossible birth date",
            person_with("张三", &with_check("11010520010229001")),
            422,
            "invalid_field",
            Some("id_number"),
        ),
        (
            "future birth date",
            person_with("张三", &with_check("11010529990101001")),
            422,
            "invalid_field",
            Some("id_number"),
        ),
        (
            "short number",
            person_with("张三", "11010519491231002"),
            422,
            "invalid_field",
            Some("id_number"),
        ),
        (
            "bad credit code check character",
            enterprise(COMPANY, "91350100M000100Y44").to_string(),
            422,
            "invalid_field",
            Some("credit_code"),
        ),
        (
            "credit code outside its alphabet",
            enterprise(COMPANY, "91350100I000100Y43").to_string(),
            422,
            "invalid_field",
            Some("credit_code"),
        ),
        (
            "over-long name",
            person_with(&"张".repeat(31), ID_NUMBER),
            422,
            "invalid_field",
            Some("real_name"),
        ),
        (
            "one-character name",
            person_with("张", ID_NUMBER),
            422,
            "invalid_field",
            Some("real_name"),
        ),
        (
            "control character in a name",
            person_with("张\u{0}三", ID_NUMBER),
            422,
            "invalid_field",
            Some("real_name"),
        ),
        (
            "over-long company name",
            enterprise(&"公".repeat(101), CREDIT_CODE).to_string(),
            422,
            "invalid_field",
            Some("company_name"),
        ),
        ("1 MiB body", one_mib, 413, "payload_too_large", None),
    ];
    for (what, body, status, code, field) in cases {
        let reply = api.raw("POST", PATH, Some(&token), Some(body)).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (status, code),
            "{what}: {reply:?}"
        );
        if let Some(field) = field {
            assert_eq!(reply.body["error"]["field"], json!(field), "{what}");
        }
        let text = reply.body.to_string();
        assert!(
            !text.contains("1101052") && !text.contains("9135"),
            "{what} echoed: {text}"
        );
        assert_eq!(partition(&server, &id).await, before, "{what} wrote");
    }

    let good = Some(person("张三", ID_NUMBER));
    for (what, bad) in [("missing", None), ("garbage", Some("not-a-token"))] {
        for method in ["POST", "GET"] {
            let body = (method == "POST").then(|| good.clone()).flatten();
            let reply = api.call(method, PATH, bad, body).await;
            assert_eq!(
                (reply.status, reply.error_code()),
                (401, "unauthorized"),
                "{what} token, {method}"
            );
        }
    }
    let form = reqwest::Client::new()
        .post(format!("{}{PATH}", api.base))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("kind=person")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    assert_eq!(partition(&server, &id).await, before, "refusals wrote");
    assert_eq!(submissions_today(&server, &id).await, Some(1));
    // The refusals cost nothing: a good submission still goes through.
    assert_eq!(
        submit(api, &token, person("张三", ID_NUMBER)).await.status,
        201
    );
    assert_eq!(submissions_today(&server, &id).await, Some(2));
}

on_both_stores!(
    a_person_is_verified_and_shown_masked,
    an_enterprise_is_verified,
    a_rejection_allows_a_new_submission,
    a_pending_verification_is_settled_by_a_later_read,
    the_daily_limit_stops_submissions_and_writes_nothing,
    bad_input_is_refused_and_changes_nothing,
);

/// The OpenAPI `Verification` schema lists exactly the fields of the view.
#[test]
fn openapi_verification_schema_matches_the_view() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let documented: std::collections::BTreeSet<String> = spec["components"]["schemas"]
        ["Verification"]["properties"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let sealed = json!({"kid": "k", "nonce": "n", "ct": "c"});
    let record: Verification = serde_json::from_value(json!({
        "status": "pending", "kind": "person", "attempt_id": "va_1", "name_shown": "*三",
        "number_masked": "11**************2X", "name_sealed": sealed, "number_sealed": sealed,
        "submitted_at": "2026-11-29T04:00:00Z",
    }))
    .unwrap();
    let shown: std::collections::BTreeSet<String> =
        record.view().as_object().unwrap().keys().cloned().collect();
    assert_eq!(documented, shown);
}
