//! Real-name verification end to end over HTTP, on both stores, against the sandbox verifier
//! (names starting 拒绝 are rejected, 待定 pending on the first ask and verified on the next,
//! 故障 an outage; others verified). Pending attempts are settled by the verification job,
//! which the tests run themselves (the local server's timer is off in tests unless asked for).

use renji_shared::domain::audit::{self, Filter};
use renji_shared::domain::verification::{recheck_due, RunBudget, Status, Verification};
use renji_shared::ids::UserId;
use renji_shared::store::schema::GSI1;
use renji_shared::store::{keys, Item, Query};
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
        .get(&keys::verification(id))
        .await
        .unwrap()
        .expect("verification stored");
    serde_json::from_value(Value::Object(item)).unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn submissions_today(server: &LocalServer, id: &UserId) -> Option<i64> {
    server
        .app()
        .store
        .get(&keys::verification_day(id, &today()))
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
    let ring = server.app().pii().await.unwrap();
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

/// Runs the verification job once, as its schedule would (its IAM statements enforced).
async fn run_job(server: &LocalServer) -> Value {
    let job = server
        .running
        .function_app("VerificationJobsFunction")
        .expect("the job's state");
    renji_local::functions::run_job("VerificationJobsFunction", job)
        .await
        .expect("the job exists")
        .expect("the job runs")
}

async fn pending_entries(server: &LocalServer) -> Vec<Item> {
    server
        .app()
        .store
        .query(Query::partition(keys::PENDING_VERIFICATIONS).index(GSI1))
        .await
        .unwrap()
        .items
}

async fn a_pending_verification_is_settled_by_the_job_not_by_reads(backend: Backend) {
    // Due for the job as soon as it is pending.
    let server =
        LocalServer::start_with(backend, &[("RENJI_VERIFICATION_RECHECK_SECS", "0")]).await;
    let api = &server.api;
    let (token, id) = login(api, "yolanda").await;
    let pending = submit(api, &token, person("待定张三", ID_NUMBER)).await;
    assert_eq!(pending.status, 202, "{pending:?}");
    assert_eq!(pending.body["status"], json!("pending"));
    assert_eq!(pending.body["decided_at"], Value::Null);
    assert_eq!(badge(api, &token).await, Value::Null);
    let attempt = record(&server, &id).await.attempt_id;
    assert_eq!(pending_entries(&server).await.len(), 1);
    let twice = submit(api, &token, person("李四", ID_NUMBER)).await;
    assert_eq!(
        (twice.status, twice.error_code()),
        (409, "verification_exists")
    );

    // Reads do not ask the verifier (the sandbox would now say verified): nothing changes.
    let before = partition(&server, &id).await;
    for _ in 0..3 {
        let read = get(api, &token).await;
        assert_eq!((read.status, &read.body), (200, &pending.body));
    }
    assert_eq!(partition(&server, &id).await, before);

    // Several runs at once: the verifier now says verified; it is recorded once.
    let runs: Vec<Value> = futures_util::future::join_all((0..4).map(|_| run_job(&server))).await;
    let settled: i64 = runs.iter().map(|r| r["settled"].as_i64().unwrap()).sum();
    assert!(settled >= 1, "{runs:?}");
    let stored = record(&server, &id).await;
    assert_eq!(stored.status, Status::Verified);
    assert_eq!(stored.attempt_id, attempt, "the same attempt was settled");
    assert_eq!(stored.next_check_at, None);
    assert!(pending_entries(&server).await.is_empty());
    let read = get(api, &token).await;
    assert_eq!(read.body["status"], json!("verified"));
    assert_eq!(read.body["decided_at"], json!(stored.decided_at));
    assert_eq!(badge(api, &token).await, json!("person"));
    assert_eq!(claimed(&server, "person", ID_NUMBER).await, Some(1));
    assert_eq!(submissions_today(&server, &id).await, Some(1));
    assert_sealed(&server, &id, &["待定张三", ID_NUMBER]).await;
    let idle = run_job(&server).await;
    assert_eq!(idle["examined"], json!(0), "{idle}");
    // Settling used every permission the job's IAM statements grant, and no more.
    renji_tests::assert_grants_all_used(&server.running, "VerificationJobsFunction");
}

async fn an_unavailable_verifier_is_asked_again_with_backoff(backend: Backend) {
    let server =
        LocalServer::start_with(backend, &[("RENJI_VERIFICATION_RECHECK_SECS", "1")]).await;
    let api = &server.api;
    let (token, id) = login(api, "zach").await;
    let outage = submit(api, &token, person("故障张三", ID_NUMBER)).await;
    assert_eq!(
        (outage.status, &outage.body["status"]),
        (202, &json!("pending"))
    );
    let first = record(&server, &id).await;
    let submitted = first.next_check_at.unwrap();
    // Not due yet: the job leaves it alone.
    if submitted > now() {
        assert_eq!(run_job(&server).await["examined"], json!(0));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let run = run_job(&server).await;
    assert_eq!(
        (&run["examined"], &run["rescheduled"]),
        (&json!(1), &json!(1)),
        "{run}"
    );
    let later = record(&server, &id).await;
    assert_eq!(later.status, Status::Pending);
    assert_eq!(later.rechecks, 1);
    let next = later.next_check_at.unwrap();
    // Doubled: asked again two intervals on.
    assert!((now() + 1..=now() + 2).contains(&next), "{next}");
    let entry = &pending_entries(&server).await[0];
    assert_eq!(entry["gsi1sk"], json!(format!("{next:012}#{id}")));
    assert_eq!(
        run_job(&server).await["examined"],
        json!(0),
        "not due again yet"
    );
    assert_eq!(get(api, &token).await.body, outage.body);
    assert_eq!(badge(api, &token).await, Value::Null);
}

async fn the_job_is_bounded_and_resumes(backend: Backend) {
    let server =
        LocalServer::start_with(backend, &[("RENJI_VERIFICATION_RECHECK_SECS", "0")]).await;
    let api = &server.api;
    let mut members = Vec::new();
    for (n, name) in ["una", "vic", "walt"].into_iter().enumerate() {
        let (token, id) = login(api, name).await;
        let number = with_check(&format!("1101051949123100{n}"));
        let reply = submit(api, &token, person("待定张三", &number)).await;
        assert_eq!(reply.status, 202, "{reply:?}");
        members.push(id);
    }
    let budget = RunBudget {
        max_attempts: 2,
        ..RunBudget::default()
    };
    let first = recheck_due(server.app(), budget).await.unwrap();
    assert_eq!((first.examined, first.settled), (2, 2));
    assert!(first.more);
    let second = recheck_due(server.app(), budget).await.unwrap();
    assert_eq!(
        (second.examined, second.settled, second.more),
        (1, 1, false)
    );
    for id in &members {
        assert_eq!(record(&server, id).await.status, Status::Verified);
    }
}

async fn the_local_server_runs_the_job_on_a_timer(backend: Backend) {
    let server = LocalServer::start_with(
        backend,
        &[
            ("RENJI_VERIFICATION_RECHECK_SECS", "0"),
            ("RENJI_LOCAL_JOBS_SECS", "1"),
        ],
    )
    .await;
    let api = &server.api;
    let (token, _) = login(api, "tess").await;
    let pending = submit(api, &token, person("待定张三", ID_NUMBER)).await;
    assert_eq!(pending.status, 202);
    let started = std::time::Instant::now();
    loop {
        if get(api, &token).await.body["status"] == json!("verified") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "not settled by the timer"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(badge(api, &token).await, json!("person"));
}

/// How many accounts the identity verifies, read by its claim key (an HMAC, not the number).
async fn claimed(server: &LocalServer, kind: &str, number: &str) -> Option<i64> {
    let ring = server.app().pii().await.unwrap();
    let tag = ring
        .tag(ring.active_kid(), &format!("identity-claim/{kind}"), number)
        .unwrap();
    assert!(!tag.contains(number));
    server
        .app()
        .store
        .get(&keys::identity_claim(&tag))
        .await
        .unwrap()
        .map(|c| c["n"].as_i64().unwrap())
}

async fn one_identity_verifies_one_account(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (alice, _) = login(api, "alice").await;
    assert_eq!(
        submit(api, &alice, person("张三", ID_NUMBER)).await.status,
        201
    );
    assert_eq!(claimed(&server, "person", ID_NUMBER).await, Some(1));

    // A second account with the same number: 409, and nothing written (no record, no count).
    let (bob, bob_id) = login(api, "bob").await;
    let before = partition(&server, &bob_id).await;
    for name in ["张三", "李四", "待定张三"] {
        let reply = submit(api, &bob, person(name, &ID_NUMBER.to_lowercase())).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (409, "identity_in_use"),
            "{reply:?}"
        );
        assert!(!reply.body.to_string().contains("1101052"));
    }
    assert_eq!(partition(&server, &bob_id).await, before);
    assert_eq!(submissions_today(&server, &bob_id).await, None);
    assert_eq!(claimed(&server, "person", ID_NUMBER).await, Some(1));
    // Another number is another identity.
    let other = with_check("11010519491231001");
    assert_eq!(submit(api, &bob, person("李四", &other)).await.status, 201);

    // Credit codes are claimed the same way.
    let (carol, _) = login(api, "carol").await;
    assert_eq!(
        submit(api, &carol, enterprise(COMPANY, CREDIT_CODE))
            .await
            .status,
        201
    );
    let (dave, _) = login(api, "dave").await;
    let reply = submit(api, &dave, enterprise(COMPANY, CREDIT_CODE)).await;
    assert_eq!((reply.status, reply.error_code()), (409, "identity_in_use"));
    assert_eq!(claimed(&server, "enterprise", CREDIT_CODE).await, Some(1));

    // A rejected attempt claims nothing: the number's owner still verifies.
    let third = with_check("11010519491231003");
    let (erin, _) = login(api, "erin").await;
    let rejected = submit(api, &erin, person("拒绝王五", &third)).await;
    assert_eq!(rejected.body["status"], json!("rejected"));
    assert_eq!(claimed(&server, "person", &third).await, None);
    let (frank, _) = login(api, "frank").await;
    assert_eq!(
        submit(api, &frank, person("王五", &third)).await.status,
        201
    );
}

async fn the_account_cap_is_configured_and_holds_when_pending_together(backend: Backend) {
    let server = LocalServer::start_with(
        backend,
        &[
            ("RENJI_ID_MAX_ACCOUNTS", "2"),
            ("RENJI_VERIFICATION_RECHECK_SECS", "0"),
        ],
    )
    .await;
    let api = &server.api;
    for name in ["gail", "hugo"] {
        let (token, _) = login(api, name).await;
        assert_eq!(
            submit(api, &token, person("张三", ID_NUMBER)).await.status,
            201
        );
    }
    let (ivan, _) = login(api, "ivan").await;
    let third = submit(api, &ivan, person("张三", ID_NUMBER)).await;
    assert_eq!((third.status, third.error_code()), (409, "identity_in_use"));
    assert_eq!(claimed(&server, "person", ID_NUMBER).await, Some(2));

    // Two accounts pending with one number at once (both submissions pass the check): the one
    // settled second is rejected, and the claim stays within the cap.
    let number = with_check("11010519491231004");
    let server =
        LocalServer::start_with(backend, &[("RENJI_VERIFICATION_RECHECK_SECS", "0")]).await;
    let api = &server.api;
    let mut tokens = Vec::new();
    for name in ["jane", "kurt"] {
        let (token, _) = login(api, name).await;
        let reply = submit(api, &token, person("待定张三", &number)).await;
        assert_eq!(reply.status, 202, "{reply:?}");
        tokens.push(token);
    }
    let run = run_job(&server).await;
    assert_eq!(run["settled"], json!(2), "{run}");
    let mut outcomes = Vec::new();
    for token in &tokens {
        let body = get(api, token).await.body;
        outcomes.push((body["status"].clone(), body["reason"].clone()));
    }
    outcomes.sort_by_key(|o| o.0.to_string());
    assert_eq!(
        outcomes,
        [
            (
                json!("rejected"),
                json!("these details already verify another account")
            ),
            (json!("verified"), Value::Null),
        ]
    );
    assert_eq!(claimed(&server, "person", &number).await, Some(1));
}

/// The member's audited verification actions (their own list and what was done to them).
async fn verification_audit(server: &LocalServer, id: &UserId) -> Vec<Value> {
    let member = format!("member:{id}");
    let mut out = Vec::new();
    for (actor, target) in [(Some(member.as_str()), None), (None, Some(member.as_str()))] {
        let filter = Filter::parse(actor, target).unwrap();
        let (records, _) = audit::list(&server.app().store, &filter, 50, None)
            .await
            .unwrap();
        out.extend(records.into_iter().filter(|r| {
            r["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("verification."))
        }));
    }
    out
}

/// Several accounts submit one new ID number (then one credit code) at the same moment: each
/// passes the submission's check, only one verifies. Every other answers 409 `identity_in_use`
/// with nothing written — no record, no submission counted, no badge, nothing audited — as when
/// the number was used up before it came.
async fn a_race_for_one_identity_has_one_winner_and_nothing_written_for_the_others(
    backend: Backend,
) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let api = &server.api;
    let number = with_check("11010519491231005");
    for (kind, body, claim_number, n) in [
        ("person", person("张三", &number), number.as_str(), 10),
        (
            "enterprise",
            enterprise(COMPANY, CREDIT_CODE),
            CREDIT_CODE,
            6,
        ),
    ] {
        let mut members = Vec::new();
        for i in 0..n {
            members.push(login(api, &format!("racer-{kind}-{i}")).await);
        }
        let replies = futures_util::future::join_all(
            members
                .iter()
                .map(|(token, _)| submit(api, token, body.clone())),
        )
        .await;
        let mut verified = 0;
        for ((token, id), reply) in members.iter().zip(&replies) {
            if reply.status == 201 {
                assert_eq!(reply.body["status"], json!("verified"), "{reply:?}");
                verified += 1;
                continue;
            }
            assert_eq!(
                (reply.status, reply.error_code()),
                (409, "identity_in_use"),
                "{kind}: {reply:?}"
            );
            assert_eq!(get(api, token).await.status, 404, "{kind}: no record");
            assert_eq!(
                submissions_today(&server, id).await.unwrap_or(0),
                0,
                "{kind}: not counted"
            );
            assert_eq!(badge(api, token).await, Value::Null);
            assert_eq!(verification_audit(&server, id).await, Vec::<Value>::new());
        }
        assert_eq!(verified, 1, "{kind}: {replies:?}");
        assert_eq!(claimed(&server, kind, claim_number).await, Some(1));
    }
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
        .get(&keys::verification_day(&id, &today()))
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
    a_pending_verification_is_settled_by_the_job_not_by_reads,
    an_unavailable_verifier_is_asked_again_with_backoff,
    the_job_is_bounded_and_resumes,
    the_local_server_runs_the_job_on_a_timer,
    one_identity_verifies_one_account,
    the_account_cap_is_configured_and_holds_when_pending_together,
    the_daily_limit_stops_submissions_and_writes_nothing,
    bad_input_is_refused_and_changes_nothing,
    a_race_for_one_identity_has_one_winner_and_nothing_written_for_the_others,
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
