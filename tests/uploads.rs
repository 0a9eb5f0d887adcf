//! Uploads (`POST /v1/uploads`, the media bucket): the upload form's policy enforced by the local
//! server's stand-in for S3 exactly as S3 would (wrong type, too large or empty, another
//! member's key, expired, tampered policy or signature, missing or extra fields, `file` not
//! last, not multipart); a good upload stored, served through a signed link but not publicly
//! until made public; bad input refused naming the field with nothing written; the daily cap;
//! a member's uploads in their export (records, no signed link) and gone with their account
//! (records and objects).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use renji_local::media::{fields_of, form_body};
use renji_shared::domain::deletion::{self, Budget};
use renji_shared::ids::UserId;
use renji_shared::im::{ImAccounts, ImError};
use renji_shared::media_bucket::UploadPolicy;
use renji_shared::store::{keys, Query, SortKey};
use renji_tests::{on_both_stores, Backend, LocalServer, Member};
use serde_json::{json, Value};
use time::OffsetDateTime;

const BOUNDARY: &str = "----renji-test-boundary-7MA4YWxkTrZu0gW";

async fn ask(server: &LocalServer, who: &Member, body: Value) -> renji_tests::Reply {
    server
        .api
        .call("POST", "/v1/uploads", Some(&who.token), Some(body))
        .await
}

/// An upload form for `who` (201 asserted).
async fn form(server: &LocalServer, who: &Member, purpose: &str, ct: &str, size: u64) -> Value {
    let reply = ask(
        server,
        who,
        json!({"purpose": purpose, "content_type": ct, "size": size}),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body
}

/// POSTs `fields` then `file` (when given) as `multipart/form-data` to `url`: status and body.
async fn post(url: &str, fields: &[(&str, &str)], file: Option<&[u8]>) -> (u16, String) {
    post_raw(
        url,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        form_body(BOUNDARY, fields, file),
    )
    .await
}

async fn post_raw(url: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The form's fields with `name` set to `value` (added when absent) or, with `None`, removed.
fn with(form: &Value, name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = form["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .filter(|(k, _)| k != name)
        .collect();
    if let Some(value) = value {
        fields.push((name.to_owned(), value.to_owned()));
    }
    fields
}

fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn code(body: &str) -> &str {
    body.split("<Code>")
        .nth(1)
        .and_then(|rest| rest.split("</Code>").next())
        .unwrap_or("")
}

async fn upload_policy_is_enforced_as_s3_would(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let alice = server.member("alice", false).await;
    let bob = server.member("bob", false).await;
    let bucket = server.app().media_bucket().expect("the local media bucket");
    let jpeg = b"\xff\xd8\xff\xe0 a small jpeg".to_vec();
    let size = jpeg.len() as u64;
    let good = form(&server, &alice, "listing_image", "image/jpeg", size).await;
    let url = good["url"].as_str().unwrap().to_owned();
    let key = good["fields"]["key"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with(&format!("u/{}/listing_image/", alice.id)),
        "{key}"
    );
    assert!(url.ends_with("/local/media-upload"), "{url}");
    assert!(good["fields"]["x-amz-security-token"].is_string());
    assert!(good["media_id"].as_str().unwrap().starts_with("m_"));

    // Wrong type: the policy wants exactly image/jpeg.
    let fields = with(&good, "Content-Type", Some("image/png"));
    let (status, body) = post(&url, &pairs(&fields), Some(&jpeg)).await;
    assert_eq!((status, code(&body)), (403, "AccessDenied"), "{body}");
    // Too large (one byte over the size asked for) and empty.
    let mut bigger = jpeg.clone();
    bigger.push(0);
    let (status, body) = post(&url, &fields_of_value(&good), Some(&bigger)).await;
    assert_eq!((status, code(&body)), (400, "EntityTooLarge"), "{body}");
    let (status, body) = post(&url, &fields_of_value(&good), Some(b"")).await;
    assert_eq!((status, code(&body)), (400, "EntityTooSmall"), "{body}");
    // Another member's key: bob's form cannot write alice's object, nor alice's bob's.
    let bobs = form(&server, &bob, "avatar", "image/jpeg", size).await;
    let fields = with(&bobs, "key", Some(&key));
    let (status, body) = post(&url, &pairs(&fields), Some(&jpeg)).await;
    assert_eq!((status, code(&body)), (403, "AccessDenied"), "{body}");
    let bobs_key = bobs["fields"]["key"].as_str().unwrap();
    let fields = with(&good, "key", Some(bobs_key));
    let (status, body) = post(&url, &pairs(&fields), Some(&jpeg)).await;
    assert_eq!((status, code(&body)), (403, "AccessDenied"), "{body}");
    // A policy naming another bucket... is not one this server signed: tampered policy.
    let mut document: Value = serde_json::from_slice(
        &STANDARD
            .decode(good["fields"]["policy"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    document["conditions"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c[0] != "content-length-range");
    document["conditions"].as_array_mut().unwrap().push(json!([
        "content-length-range",
        1,
        1_000_000_000
    ]));
    let tampered = STANDARD.encode(document.to_string());
    let fields = with(&good, "policy", Some(&tampered));
    let (status, body) = post(&url, &pairs(&fields), Some(&bigger)).await;
    assert_eq!(
        (status, code(&body)),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );
    // Tampered signature.
    let signature = good["fields"]["x-amz-signature"].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if signature.starts_with('0') { "1" } else { "0" },
        &signature[1..]
    );
    let fields = with(&good, "x-amz-signature", Some(&flipped));
    let (status, body) = post(&url, &pairs(&fields), Some(&jpeg)).await;
    assert_eq!(
        (status, code(&body)),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );
    // Missing fields, one at a time.
    for (name, status, expected) in [
        ("key", 400, "InvalidArgument"),
        ("policy", 400, "InvalidArgument"),
        ("x-amz-signature", 400, "InvalidArgument"),
        ("x-amz-credential", 400, "InvalidArgument"),
        ("x-amz-date", 400, "InvalidArgument"),
        ("x-amz-algorithm", 400, "InvalidArgument"),
        ("x-amz-security-token", 403, "InvalidToken"),
        ("Content-Type", 403, "AccessDenied"),
    ] {
        let fields = with(&good, name, None);
        let (got, body) = post(&url, &pairs(&fields), Some(&jpeg)).await;
        assert_eq!(
            (got, code(&body)),
            (status, expected),
            "without {name}: {body}"
        );
    }
    // A field the policy does not name.
    let fields = with(&good, "acl", Some("public-read"));
    let (status, body) = post(&url, &pairs(&fields), Some(&jpeg)).await;
    assert_eq!((status, code(&body)), (403, "AccessDenied"), "{body}");
    assert!(body.contains("Extra input fields: acl"), "{body}");
    // No file; the file first (S3 ignores whatever follows it, so the fields are missing);
    // not multipart at all.
    let (status, body) = post(&url, &fields_of_value(&good), None).await;
    assert_eq!((status, code(&body)), (400, "InvalidArgument"), "{body}");
    let mut first = form_body(BOUNDARY, &[], Some(&jpeg));
    first.truncate(first.len() - format!("--{BOUNDARY}--\r\n").len());
    first.extend(form_body(BOUNDARY, &fields_of_value(&good), None));
    let (status, body) = post_raw(
        &url,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        first,
    )
    .await;
    assert_eq!((status, code(&body)), (400, "InvalidArgument"), "{body}");
    let (status, _) = post_raw(&url, "application/json", b"{}".to_vec()).await;
    assert_eq!(status, 412);
    // Nothing was stored by any of those.
    assert_eq!(bucket.head(&key).await.unwrap(), None);
    assert_eq!(bucket.head(bobs_key).await.unwrap(), None);

    // An expired policy: a form good for one second, used after it.
    let short = bucket
        .post_form(&UploadPolicy {
            key: key.clone(),
            content_type: "image/jpeg".into(),
            max_bytes: size,
            expires_in: Duration::from_secs(1),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = post(&short.url, &fields_of(&short.fields), Some(&jpeg)).await;
    assert_eq!((status, code(&body)), (403, "AccessDenied"), "{body}");
    assert!(body.contains("Policy expired"), "{body}");

    // The good upload, as wx.uploadFile sends it (fields, then the file last): 204.
    let (status, body) = post(&url, &fields_of_value(&good), Some(&jpeg)).await;
    assert_eq!(status, 204, "{body}");
    let head = bucket.head(&key).await.unwrap().expect("stored");
    assert_eq!(
        (head.size, head.content_type.as_str()),
        (size, "image/jpeg")
    );
    // Not public: the media URL refuses it; a signed link serves it, until it expires.
    let media_url = good["media_url"].as_str().unwrap();
    assert!(media_url.ends_with(&key), "{media_url}");
    let get = |url: String| async move {
        let response = reqwest::get(&url).await.unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    };
    assert_eq!(get(media_url.to_owned()).await.0, 403);
    let link = bucket.link(&key, Duration::from_secs(1800)).await.unwrap();
    assert!(link.expires_at > OffsetDateTime::now_utc() + Duration::from_secs(1790));
    assert_eq!(get(link.url.clone()).await, (200, jpeg.clone()));
    let other_key = format!("{}x", &link.url);
    assert_eq!(
        get(other_key).await.0,
        403,
        "a link is for its own key and expiry"
    );
    let brief = bucket.link(&key, Duration::from_secs(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get(brief.url).await.0, 403, "an expired link");
    // Public: anyone; not public again: refused again.
    bucket.set_public(&key, true).await.unwrap();
    assert_eq!(get(media_url.to_owned()).await, (200, jpeg.clone()));
    bucket.set_public(&key, false).await.unwrap();
    assert_eq!(get(media_url.to_owned()).await.0, 403);

    // The record: issued, listed for the media job, the key and type as asked.
    let owner = UserId::parse(&alice.id).unwrap();
    let id = renji_shared::ids::MediaId::parse(good["media_id"].as_str().unwrap()).unwrap();
    let item = server
        .app()
        .store
        .get(&keys::media(&owner, &id))
        .await
        .unwrap()
        .expect("the upload record");
    assert_eq!(item["status"], json!("issued"));
    assert_eq!(item["key"], json!(key));
    assert_eq!(item["gsi1pk"], json!("DUE#media"));
}

fn fields_of_value(form: &Value) -> Vec<(&str, &str)> {
    form["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect()
}

/// Every item of the member's partition that an upload request may write.
async fn written(server: &LocalServer, who: &Member) -> Vec<String> {
    let owner = UserId::parse(&who.id).unwrap();
    let page = server
        .app()
        .store
        .query(Query::partition(keys::user(&owner)))
        .await
        .unwrap();
    page.items
        .iter()
        .filter_map(|i| i.get("sk").and_then(Value::as_str))
        .filter(|sk| sk.starts_with("MEDIA#") || sk.starts_with("UPLOAD_DAY#"))
        .map(str::to_owned)
        .collect()
}

async fn bad_input_is_refused_naming_the_field_with_nothing_written(backend: Backend) {
    let server = LocalServer::start_with(
        backend,
        &[("RENJI_RATE_LIMITS", "off"), ("RENJI_UPLOADS_PER_DAY", "2")],
    )
    .await;
    let carol = server.member("carol", false).await;
    let image = |purpose: &str, ct: &str, size: Value| json!({"purpose": purpose, "content_type": ct, "size": size});
    for (body, field) in [
        (image("banner", "image/jpeg", json!(10)), "purpose"),
        (image("", "image/jpeg", json!(10)), "purpose"),
        (json!({"content_type": "image/jpeg", "size": 10}), "purpose"),
        (image("avatar", "image/webp", json!(10)), "content_type"),
        (image("avatar", "video/mp4", json!(10)), "content_type"),
        (
            image("listing_video", "image/jpeg", json!(10)),
            "content_type",
        ),
        (image("avatar", "IMAGE/JPEG", json!(10)), "content_type"),
        (image("avatar", "", json!(10)), "content_type"),
        (json!({"purpose": "avatar", "size": 10}), "content_type"),
        (image("avatar", "image/jpeg", json!(0)), "size"),
        (image("avatar", "image/jpeg", json!(-1)), "size"),
        (image("avatar", "image/jpeg", json!("10")), "size"),
        (image("avatar", "image/jpeg", json!(1.5)), "size"),
        (
            image("avatar", "image/jpeg", json!(10 * 1024 * 1024 + 1)),
            "size",
        ),
        (
            image("video_cover", "image/png", json!(10 * 1024 * 1024 + 1)),
            "size",
        ),
        (
            image("listing_video", "video/mp4", json!(100 * 1024 * 1024 + 1)),
            "size",
        ),
        (
            json!({"purpose": "avatar", "content_type": "image/jpeg"}),
            "size",
        ),
        (
            json!({"purpose": "avatar", "content_type": "image/jpeg", "size": 10, "key": "u/x"}),
            "key",
        ),
    ] {
        let reply = ask(&server, &carol, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {reply:?}");
        assert_eq!(reply.field(), field, "{body}: {reply:?}");
    }
    assert_eq!(written(&server, &carol).await, Vec::<String>::new());
    // Not JSON, not an object: 400/422 and nothing written either.
    let reply = server
        .api
        .raw("POST", "/v1/uploads", Some(&carol.token), Some("{".into()))
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let reply = server
        .api
        .raw("POST", "/v1/uploads", Some(&carol.token), Some("[]".into()))
        .await;
    assert_eq!(reply.status, 422, "{reply:?}");
    let reply = server
        .api
        .call(
            "POST",
            "/v1/uploads",
            None,
            Some(image("avatar", "image/jpeg", json!(10))),
        )
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(written(&server, &carol).await, Vec::<String>::new());

    // The limits themselves are allowed; the day's cap then refuses with nothing written.
    form(&server, &carol, "avatar", "image/bmp", 10 * 1024 * 1024).await;
    form(
        &server,
        &carol,
        "listing_video",
        "video/mp4",
        100 * 1024 * 1024,
    )
    .await;
    let reply = ask(&server, &carol, image("avatar", "image/gif", json!(10))).await;
    assert_eq!(reply.status, 429, "{reply:?}");
    assert!(reply.retry_after.is_some());
    let kept = written(&server, &carol).await;
    assert_eq!(kept.iter().filter(|sk| sk.starts_with("MEDIA#")).count(), 2);
}

struct NoIm;

#[async_trait::async_trait]
impl ImAccounts for NoIm {
    async fn delete_account(&self, _member: &UserId) -> Result<(), ImError> {
        Ok(())
    }
}

async fn uploads_are_exported_and_deleted_with_the_account(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let dan = server.member("dan", false).await;
    let bucket = server.app().media_bucket().unwrap();
    // 30 uploads (more than one batch of the deletion job), each stored.
    let mut uploaded = Vec::new();
    for n in 0..30u8 {
        let bytes = vec![b'a', n];
        let form = form(&server, &dan, "review_image", "image/png", 2).await;
        let (status, body) = post(
            form["url"].as_str().unwrap(),
            &fields_of_value(&form),
            Some(&bytes),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        uploaded.push(form);
    }
    let first_key = uploaded[0]["fields"]["key"].as_str().unwrap().to_owned();
    bucket.set_public(&first_key, true).await.unwrap();

    // The export: every upload, its record and URL, no signed link.
    let asked = server
        .api
        .call("POST", "/v1/me/export", Some(&dan.token), None)
        .await;
    assert_eq!(asked.status, 202, "{asked:?}");
    let app = server.running.function_app("ExportJobsFunction").unwrap();
    renji_shared::domain::exports::jobs::run(
        app,
        OffsetDateTime::now_utc(),
        renji_shared::domain::exports::jobs::Budget::default(),
    )
    .await
    .unwrap();
    let ready = server
        .api
        .call("GET", "/v1/me/export", Some(&dan.token), None)
        .await;
    let link = ready.body["url"].as_str().expect("ready").to_owned();
    let doc: Value = reqwest::get(&link).await.unwrap().json().await.unwrap();
    let uploads = doc["uploads"].as_array().expect("an uploads section");
    assert_eq!(uploads.len(), 30);
    assert_eq!(doc["counts"]["uploads"], json!(30));
    for form in &uploaded {
        let entry = uploads
            .iter()
            .find(|u| u["id"] == form["media_id"])
            .expect("each upload");
        assert_eq!(entry["media_url"], form["media_url"]);
        assert_eq!(entry["purpose"], json!("review_image"));
        assert_eq!(entry["status"], json!("issued"));
    }
    let text = doc["uploads"].to_string();
    assert!(
        !text.contains("sig=") && !text.contains("X-Amz-Signature"),
        "{text}"
    );
    // Not in the generic section as well.
    assert!(!doc["other_records"].to_string().contains("MEDIA#"));

    // The account deleted: records and objects gone, in bounded batches.
    let started = server
        .api
        .call("DELETE", "/v1/me", Some(&dan.token), None)
        .await;
    assert_eq!(started.status, 202, "{started:?}");
    let app = server.running.function_app("DeletionJobsFunction").unwrap();
    let budget = Budget {
        batches: 1,
        ..Budget::default()
    };
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs < 500, "the deletion never finished");
        let report = deletion::run(app, &NoIm, OffsetDateTime::now_utc(), budget)
            .await
            .unwrap();
        assert!(report.batches <= 1, "{report:?}");
        if report.members == 0 {
            break;
        }
    }
    assert!(runs > 2, "uploads took more than one batch: {runs} runs");
    let owner = UserId::parse(&dan.id).unwrap();
    let left = server
        .app()
        .store
        .query(
            Query::partition(keys::user(&owner)).sort(SortKey::Prefix(keys::MEDIA_PREFIX.into())),
        )
        .await
        .unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
    for form in &uploaded {
        let key = form["fields"]["key"].as_str().unwrap();
        assert_eq!(bucket.head(key).await.unwrap(), None, "{key}");
    }
    let public = reqwest::get(uploaded[0]["media_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(public.status().as_u16(), 404);
}

on_both_stores!(
    upload_policy_is_enforced_as_s3_would,
    bad_input_is_refused_naming_the_field_with_nothing_written,
    uploads_are_exported_and_deleted_with_the_account,
);
