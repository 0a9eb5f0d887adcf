//! Media checks: the media job (object confirmed, WeChat's image check asked once however many
//! runs race, timeouts and WeChat's errors), results pushed to `POST /v1/wechat/events`
//! (verified, decrypted, applied once per trace id), videos through the staff queue, and the
//! queue's authorisation. WeChat's API and the bucket are fakes here; the sandbox round trip is
//! the end-to-end test's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::{Body, RequestExt};
use renji_shared::config::Config;
use renji_shared::domain::media::jobs::{self, Budget, CHECK_TIMEOUT_SECS, UPLOAD_GRACE_SECS};
use renji_shared::domain::media::results::{
    self, Applied, CheckResult, CheckState, MediaCheck, Verdict,
};
use renji_shared::domain::media::{
    extension, object_key, MediaRecord, MediaStatus, Purpose, Subject,
};
use renji_shared::domain::members::rfc3339;
use renji_shared::ids::{MediaId, UserId};
use renji_shared::media_bucket::{MediaBucket, ObjectHead, PostForm, SignedLink, UploadPolicy};
use renji_shared::store::schema::GSI1;
use renji_shared::store::{keys, Query, Record, Records, Write};
use renji_shared::wechat::api::{
    ImageCheck, PlatformError, SubscribeMessage, TextCheck, TextVerdict, WechatApi,
};
use renji_shared::wechat::push::PushKeys;
use renji_shared::{App, Error};
use renji_tests::{gateway_request, on_both_stores, Backend, LocalServer};
use serde_json::{json, Value};
use time::OffsetDateTime;

const APPID: &str = "wx-checks-test";
const PUSH_TOKEN: &str = "checksToken1";
/// 43 characters of base64.
const PUSH_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFE";

/// The bucket: objects by key (size, type, public).
#[derive(Default)]
struct FakeBucket {
    objects: Mutex<HashMap<String, (u64, String, bool)>>,
}

impl FakeBucket {
    fn put(&self, key: &str, size: u64, content_type: &str) {
        self.objects
            .lock()
            .unwrap()
            .insert(key.into(), (size, content_type.into(), false));
    }
    fn public(&self, key: &str) -> Option<bool> {
        self.objects.lock().unwrap().get(key).map(|o| o.2)
    }
}

#[async_trait]
impl MediaBucket for FakeBucket {
    async fn post_form(&self, _: &UploadPolicy) -> Result<PostForm, Error> {
        Err(Error::Internal("not in this test".into()))
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, Error> {
        Ok(self.objects.lock().unwrap().get(key).map(|o| ObjectHead {
            size: o.0,
            content_type: o.1.clone(),
        }))
    }
    async fn set_public(&self, key: &str, public: bool) -> Result<(), Error> {
        match self.objects.lock().unwrap().get_mut(key) {
            Some(o) => {
                o.2 = public;
                Ok(())
            }
            None => Err(Error::Internal(format!("no object {key}"))),
        }
    }
    async fn link(&self, key: &str, lifetime: Duration) -> Result<SignedLink, Error> {
        Ok(SignedLink {
            url: format!("https://bucket.example/{key}?ttl={}", lifetime.as_secs()),
            expires_at: OffsetDateTime::now_utc() + lifetime,
        })
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
}

/// WeChat: counts image checks by media URL, answers trace ids (or what `next` says).
#[derive(Default)]
struct FakeWechat {
    asked: Mutex<Vec<String>>,
    /// Answers to give, in order, before answering trace ids.
    next: Mutex<Vec<Result<String, PlatformError>>>,
}

impl FakeWechat {
    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait]
impl WechatApi for FakeWechat {
    async fn check_text(&self, _: &TextCheck<'_>) -> Result<TextVerdict, PlatformError> {
        Err(PlatformError::Unavailable("not in this test".into()))
    }
    async fn check_image(&self, check: &ImageCheck<'_>) -> Result<String, PlatformError> {
        // A slow WeChat: concurrent runs overlap.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let n = {
            let mut asked = self.asked.lock().unwrap();
            asked.push(check.media_url.to_owned());
            asked.len()
        };
        let mut next = self.next.lock().unwrap();
        if !next.is_empty() {
            return next.remove(0);
        }
        Ok(format!("trace-{n}-{}", ulid::Ulid::new()))
    }
    async fn send_subscribe_message(&self, _: &SubscribeMessage) -> Result<(), PlatformError> {
        Ok(())
    }
}

struct World {
    _server: LocalServer,
    app: Arc<App>,
    bucket: Arc<FakeBucket>,
    wechat: Arc<FakeWechat>,
    member: UserId,
}

impl World {
    async fn new(backend: Backend) -> World {
        let server = LocalServer::start(backend).await;
        let member = server.member("uploader", false).await;
        let base = server.running.wecom_base.clone();
        let config = Config::from_lookup(|name| match name {
            "RENJI_SESSION_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            "WECOM_CORP_ID" => Some(renji_local::sandbox::wecom::CORP_ID.into()),
            "WECOM_SECRET" => Some(renji_local::sandbox::wecom::SECRET.into()),
            "WECOM_API_BASE" => Some(base.clone()),
            "RENJI_STAFF_ROLES" => Some(renji_local::sandbox::wecom::ROLES.into()),
            "WECHAT_APPID" => Some(APPID.into()),
            "WECHAT_SECRET" => Some("wechat-secret".into()),
            "WECHAT_API_BASE" => Some("http://127.0.0.1:9".into()),
            "WECHAT_PUSH_TOKEN" => Some(PUSH_TOKEN.into()),
            "WECHAT_PUSH_AES_KEY" => Some(PUSH_AES_KEY.into()),
            _ => None,
        })
        .unwrap();
        let mut app = App::new(config, server.app().store.clone()).unwrap();
        let bucket = Arc::new(FakeBucket::default());
        let wechat = Arc::new(FakeWechat::default());
        app.media_bucket = Some(bucket.clone());
        app.set_wechat_api(wechat.clone());
        World {
            app: Arc::new(app),
            bucket,
            wechat,
            member: UserId::parse(&member.id).unwrap(),
            _server: server,
        }
    }

    /// An issued upload listed for the job at `now`, its form expired (the job looks only then);
    /// with `uploaded`, its object is there.
    async fn upload(&self, purpose: Purpose, content_type: &str, uploaded: bool) -> MediaRecord {
        let now = OffsetDateTime::now_utc();
        let id = MediaId::generate();
        let key = object_key(&self.member, purpose, &id, extension(content_type).unwrap());
        let record = MediaRecord {
            id: id.clone(),
            owner: self.member.clone(),
            purpose,
            key: key.clone(),
            content_type: content_type.into(),
            size: 1_000,
            status: MediaStatus::Issued,
            upload_expires_at: rfc3339(now - time::Duration::seconds(1)),
            trace_id: None,
            reason: None,
            cover: None,
            approved_by_staff: None,
            used_by: vec![Subject::Avatar {
                member: self.member.clone(),
            }],
            created_at: rfc3339(now),
            updated_at: rfc3339(now),
        };
        let item = record
            .to_item(
                keys::media(&self.member, &id),
                Some(keys::media_listed(now.unix_timestamp(), &self.member, &id)),
            )
            .unwrap();
        self.app.store.write(Write::put(item)).await.unwrap();
        if uploaded {
            self.bucket.put(&key, 800, content_type);
        }
        record
    }

    async fn record(&self, id: &MediaId) -> Option<MediaRecord> {
        self.app
            .store
            .get_record(&keys::media(&self.member, id))
            .await
            .unwrap()
    }

    async fn state(&self, id: &MediaId) -> CheckState {
        let item = self
            .app
            .store
            .get(&keys::media(&self.member, id))
            .await
            .unwrap()
            .unwrap();
        CheckState::of(&item)
    }

    async fn listed_in(&self, id: &MediaId) -> Option<String> {
        let item = self
            .app
            .store
            .get(&keys::media(&self.member, id))
            .await
            .unwrap()?;
        item.get("gsi1pk")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    async fn run(&self, at: OffsetDateTime) -> jobs::Report {
        jobs::run(&self.app, at, Budget::default()).await.unwrap()
    }

    /// A staff token (`staff:<name>:<role>` at the WeCom stand-in).
    async fn staff(&self, name: &str, role: &str) -> String {
        renji_shared::staff::sign_in(
            &self.app,
            &format!("staff:{name}:{role}"),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap()
        .token
    }

    async fn admin(&self, route: &str, id: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let response = renji_local::functions::invoke(
            "AdminFunction",
            &self.app,
            gateway_request(route, id, Some(token), body, &[]),
        )
        .await
        .unwrap();
        reply(response)
    }

    /// Staff's decision on media `id` (`POST /admin/v1/moderation/media/{id}/decision`).
    async fn decide(&self, id: &MediaId, token: &str, body: Value) -> (u16, Value) {
        self.admin(
            "POST /admin/v1/moderation/media/{id}/decision",
            id.as_str(),
            token,
            Some(body),
        )
        .await
    }

    /// A safe-mode push of `message`, signed and encrypted with `keys`, at `timestamp`.
    async fn push_with(&self, keys: &PushKeys, message: &Value, timestamp: i64) -> (u16, Value) {
        let encrypt = keys.encrypt(message.to_string().as_bytes(), APPID, [3; 16]);
        let ts = timestamp.to_string();
        let signature = keys.signature(&[&ts, "n1"]);
        let msg_signature = keys.signature(&[&ts, "n1", &encrypt]);
        self.events(
            "POST /v1/wechat/events",
            Some(json!({"ToUserName": "gh_x", "Encrypt": encrypt})),
            &[
                ("signature", signature.as_str()),
                ("timestamp", ts.as_str()),
                ("nonce", "n1"),
                ("openid", "o-x"),
                ("encrypt_type", "aes"),
                ("msg_signature", msg_signature.as_str()),
            ],
        )
        .await
    }

    async fn push(&self, message: &Value) -> (u16, Value) {
        let keys = PushKeys::new(PUSH_TOKEN, PUSH_AES_KEY).unwrap();
        self.push_with(&keys, message, OffsetDateTime::now_utc().unix_timestamp())
            .await
    }

    async fn events(
        &self,
        route: &str,
        body: Option<Value>,
        query: &[(&str, &str)],
    ) -> (u16, Value) {
        let response = renji_local::functions::invoke(
            "WechatEventsFunction",
            &self.app,
            gateway_request(route, "", None, body, query),
        )
        .await
        .unwrap();
        reply(response)
    }
}

fn reply(response: lambda_http::Response<Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        Body::Empty => String::new(),
        _ => String::new(),
    };
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn media_check(trace_id: &str, suggest: &str, label: Value) -> Value {
    json!({
        "ToUserName": "gh_x", "FromUserName": "o-x", "CreateTime": 1, "MsgType": "event",
        "Event": "wxa_media_check", "appid": APPID, "trace_id": trace_id, "version": 2,
        "errcode": 0, "errmsg": "ok", "result": {"suggest": suggest, "label": label},
        "detail": [],
    })
}

/// The trace id the job stored for an upload.
async fn asked(w: &World, id: &MediaId) -> String {
    w.record(id).await.unwrap().trace_id.expect("a trace id")
}

async fn an_image_passes_once_and_becomes_public(backend: Backend) {
    let w = World::new(backend).await;
    let image = w.upload(Purpose::Avatar, "image/png", true).await;
    let now = OffsetDateTime::now_utc();
    let report = w.run(now).await;
    assert_eq!(report.asked, 1, "{report:?}");
    let asked_url = &w.wechat.asked()[0];
    assert!(asked_url.contains(&image.key) && asked_url.contains("ttl=7200"));
    let checking = w.record(&image.id).await.unwrap();
    assert_eq!(checking.status, MediaStatus::Checking);
    assert_eq!(w.bucket.public(&image.key), Some(false));
    let trace = asked(&w, &image.id).await;

    let (status, body) = w.push(&media_check(&trace, "pass", json!("100"))).await;
    assert_eq!((status, body), (200, json!("success")));
    let passed = w.record(&image.id).await.unwrap();
    assert_eq!(passed.status, MediaStatus::Passed);
    // The push records the verdict; the job's next run carries it out.
    assert_eq!(w.bucket.public(&image.key), Some(false));
    assert_eq!(w.run(now).await.examined, 1);
    assert_eq!(w.bucket.public(&image.key), Some(true));
    // Carried out: no longer listed for the job.
    assert_eq!(w.listed_in(&image.id).await, None);
    let check: MediaCheck = w
        .app
        .store
        .get_record(&keys::media_check(&trace))
        .await
        .unwrap()
        .unwrap();
    let applied_at = check.applied_at.clone().expect("applied");

    // The same push again (WeChat's retry, a replay): answered, nothing changes.
    let (status, _) = w.push(&media_check(&trace, "risky", json!(20002))).await;
    assert_eq!(status, 200);
    assert_eq!(w.record(&image.id).await.unwrap(), passed);
    let again: MediaCheck = w
        .app
        .store
        .get_record(&keys::media_check(&trace))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.applied_at, Some(applied_at));
    assert_eq!(again.verdict, Some(Verdict::Pass));
    assert_eq!(w.run(now).await.examined, 0);
}

async fn a_risky_image_is_removed_with_its_reason(backend: Backend) {
    let w = World::new(backend).await;
    let image = w.upload(Purpose::ListingImage, "image/jpeg", true).await;
    w.run(OffsetDateTime::now_utc()).await;
    let trace = asked(&w, &image.id).await;
    // The label as a number this time.
    let (status, _) = w.push(&media_check(&trace, "risky", json!(20002))).await;
    assert_eq!(status, 200);
    w.run(OffsetDateTime::now_utc()).await;
    let risky = w.record(&image.id).await.unwrap();
    assert_eq!(risky.status, MediaStatus::Risky);
    assert_eq!(risky.reason.as_deref(), Some("risky_pornography"));
    assert_eq!(w.bucket.public(&image.key), Some(false));
    assert_eq!(w.listed_in(&image.id).await, None);
}

async fn a_result_pushed_before_the_trace_id_is_stored_is_applied(backend: Backend) {
    let w = World::new(backend).await;
    let image = w.upload(Purpose::ReviewImage, "image/gif", true).await;
    let early = CheckResult {
        trace_id: "early-trace".into(),
        verdict: Verdict::Pass,
    };
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        results::apply_push(&w.app, &early, now).await.unwrap(),
        Applied::Early
    );
    w.wechat.next.lock().unwrap().push(Ok("early-trace".into()));
    assert_eq!(w.run(now).await.asked, 1);
    assert_eq!(
        w.record(&image.id).await.unwrap().status,
        MediaStatus::Passed
    );
    w.run(now).await;
    assert_eq!(w.bucket.public(&image.key), Some(true));
    assert_eq!(
        results::apply_push(&w.app, &early, now).await.unwrap(),
        Applied::Duplicate
    );
}

async fn concurrent_runs_ask_wechat_once_per_upload(backend: Backend) {
    let w = World::new(backend).await;
    let mut uploads = Vec::new();
    for _ in 0..5 {
        uploads.push(w.upload(Purpose::ListingImage, "image/png", true).await);
    }
    let now = OffsetDateTime::now_utc();
    let runs: Vec<_> = (0..20)
        .map(|_| {
            let app = w.app.clone();
            tokio::spawn(async move { jobs::run(&app, now, Budget::default()).await })
        })
        .collect();
    let mut asked = 0;
    for run in runs {
        asked += run.await.unwrap().unwrap().asked;
    }
    assert_eq!(asked, 5);
    let mut per_upload: BTreeMap<String, usize> = BTreeMap::new();
    for url in w.wechat.asked() {
        *per_upload.entry(url).or_default() += 1;
    }
    assert_eq!(per_upload.len(), 5, "{per_upload:?}");
    assert!(per_upload.values().all(|n| *n == 1), "{per_upload:?}");
    for upload in &uploads {
        assert!(w.record(&upload.id).await.unwrap().trace_id.is_some());
    }
}

async fn uploads_not_as_announced_or_never_made_are_refused(backend: Backend) {
    let w = World::new(backend).await;
    let wrong_type = w.upload(Purpose::Avatar, "image/png", false).await;
    w.bucket.put(&wrong_type.key, 500, "image/jpeg");
    let too_big = w.upload(Purpose::Avatar, "image/png", false).await;
    w.bucket.put(&too_big.key, 1_001, "image/png");
    let never = w.upload(Purpose::Avatar, "image/png", false).await;
    let now = OffsetDateTime::now_utc();
    let report = w.run(now).await;
    assert_eq!((report.rejected, report.waiting), (2, 1), "{report:?}");
    for refused in [&wrong_type, &too_big] {
        let record = w.record(&refused.id).await.unwrap();
        assert_eq!(record.status, MediaStatus::Rejected);
        assert_eq!(record.reason.as_deref(), Some("not_as_announced"));
        assert_eq!(w.bucket.public(&refused.key), None, "deleted");
    }
    assert!(w.wechat.asked().is_empty());
    // Still waiting within the policy's life and the grace; dropped after.
    let later = now + time::Duration::minutes(5);
    assert_eq!(w.run(later).await.waiting, 1);
    assert!(w.record(&never.id).await.is_some());
    let past = now + time::Duration::seconds(UPLOAD_GRACE_SECS + 5);
    assert_eq!(w.run(past).await.dropped, 1);
    assert_eq!(w.record(&never.id).await, None);
}

async fn wechat_errors_retry_and_61010_goes_to_staff(backend: Backend) {
    let w = World::new(backend).await;
    let image = w.upload(Purpose::Avatar, "image/png", true).await;
    w.wechat
        .next
        .lock()
        .unwrap()
        .push(Err(PlatformError::Unavailable("-1".into())));
    let now = OffsetDateTime::now_utc();
    assert_eq!(w.run(now).await.retried, 1);
    let record = w.record(&image.id).await.unwrap();
    assert_eq!(
        (record.status, w.state(&image.id).await.attempts),
        (MediaStatus::Checking, 1)
    );
    assert_eq!(record.trace_id, None);
    // Not before its backoff.
    assert_eq!(w.run(now).await.examined, 0);
    w.wechat
        .next
        .lock()
        .unwrap()
        .push(Err(PlatformError::NotRecentlyActive));
    let later = now + time::Duration::seconds(results::backoff_secs(1) + 1);
    assert_eq!(w.run(later).await.queued, 1);
    assert_eq!(
        w.state(&image.id).await.review.as_deref(),
        Some("not_recently_active")
    );
    assert_eq!(w.listed_in(&image.id).await.as_deref(), Some("QUEUE#media"));
}

async fn a_check_without_answer_goes_to_staff_who_decide(backend: Backend) {
    let w = World::new(backend).await;
    let image = w.upload(Purpose::ListingImage, "image/png", true).await;
    let now = OffsetDateTime::now_utc();
    w.run(now).await;
    assert_eq!(w.run(now + time::Duration::minutes(29)).await.examined, 0);
    let late = now + time::Duration::seconds(CHECK_TIMEOUT_SECS + 1);
    assert_eq!(w.run(late).await.queued, 1);

    let support = w.staff("sam", "support").await;
    let moderator = w.staff("mia", "moderator").await;
    let (status, body) = w
        .admin("GET /admin/v1/moderation/media", "", &support, None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("forbidden_role"))
    );
    let (status, body) = w
        .decide(
            &image.id,
            &support,
            json!({"decision": "approve", "reason": "ok"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    let (status, body) = w
        .admin("GET /admin/v1/moderation/media", "", &moderator, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], json!(image.id));
    assert_eq!(items[0]["owner_id"], json!(w.member));
    assert_eq!(items[0]["waiting_for"], json!("timeout"));
    assert!(items[0]["preview_url"]
        .as_str()
        .unwrap()
        .contains("ttl=600"));
    assert_eq!(items[0]["used_by"][0]["kind"], json!("avatar"));

    for (bad, field) in [
        (json!({"decision": "approve"}), "reason"),
        (json!({"decision": "approve", "reason": "  "}), "reason"),
        (json!({"decision": "maybe", "reason": "x"}), "decision"),
    ] {
        let (status, body) = w.decide(&image.id, &moderator, bad).await;
        assert_eq!(
            (status, body["error"]["field"].clone()),
            (422, json!(field)),
            "{body}"
        );
    }
    assert_eq!(
        w.record(&image.id).await.unwrap().status,
        MediaStatus::Checking
    );
    let (status, body) = w
        .decide(
            &image.id,
            &moderator,
            json!({"decision": "approve", "reason": "看过，没问题"}),
        )
        .await;
    assert_eq!((status, body["status"].clone()), (200, json!("passed")));
    assert_eq!(w.bucket.public(&image.key), Some(true));
    // Decided: not in the queue any more, a second decision finds nothing.
    let (_, body) = w
        .admin("GET /admin/v1/moderation/media", "", &moderator, None)
        .await;
    assert_eq!(body["items"], json!([]));
    let (status, _) = w
        .decide(
            &image.id,
            &moderator,
            json!({"decision": "reject", "reason": "x"}),
        )
        .await;
    assert_eq!(status, 404);
    // A push that comes after staff decided changes nothing.
    let trace = asked(&w, &image.id).await;
    w.push(&media_check(&trace, "risky", json!(20001))).await;
    assert_eq!(
        w.record(&image.id).await.unwrap().status,
        MediaStatus::Passed
    );
    // Audited under the media's target with the reason.
    let audit = w
        .app
        .store
        .query(Query::partition(keys::audit_trail(
            "target",
            Some(&format!("media:{}", image.id)),
        )))
        .await
        .unwrap();
    assert!(
        audit
            .items
            .iter()
            .any(|i| i.get("reason") == Some(&json!("看过，没问题"))
                && i.get("outcome") == Some(&json!("ok"))
                && i.get("role") == Some(&json!("moderator"))),
        "{:?}",
        audit.items
    );
}

async fn a_video_needs_its_cover_passed_and_staff_approval(backend: Backend) {
    let w = World::new(backend).await;
    let cover = w.upload(Purpose::VideoCover, "image/jpeg", true).await;
    let video = w.upload(Purpose::ListingVideo, "video/mp4", true).await;
    let refused = w.upload(Purpose::ListingVideo, "video/mp4", true).await;
    for v in [&video, &refused] {
        w.app
            .store
            .write(
                Write::update(keys::media(&w.member, &v.id))
                    .set("cover", cover.id.as_str())
                    .build(),
            )
            .await
            .unwrap();
    }
    let now = OffsetDateTime::now_utc();
    let report = w.run(now).await;
    assert_eq!((report.asked, report.queued), (1, 2), "{report:?}");
    // No video is ever sent to WeChat.
    assert_eq!(w.wechat.asked().len(), 1);
    assert!(w.wechat.asked()[0].contains(&cover.key));

    let moderator = w.staff("mia", "moderator").await;
    // Approved before its cover passed: not public yet.
    let (status, body) = w
        .decide(
            &video.id,
            &moderator,
            json!({"decision": "approve", "reason": "fine"}),
        )
        .await;
    assert_eq!((status, body["status"].clone()), (200, json!("checking")));
    assert_eq!(w.bucket.public(&video.key), Some(false));
    // The approved video is due at once (the decision's time, which on a loaded machine is a
    // later second than `now`): this run looks, finds its cover unchecked and lists it again a
    // minute on, so the runs below decide when it is carried out.
    let decided = OffsetDateTime::now_utc();
    let report = w.run(decided).await;
    assert_eq!(report.waiting, 1, "{report:?}");
    assert_eq!(
        w.record(&video.id).await.unwrap().status,
        MediaStatus::Checking
    );
    let trace = asked(&w, &cover.id).await;
    w.push(&media_check(&trace, "pass", json!(100))).await;
    // The pushed result is due at the time it arrived: run at that time or later, not at an
    // earlier `now` (a loaded machine takes more than a second between the two).
    let pushed = OffsetDateTime::now_utc();
    w.run(pushed).await;
    assert_eq!(w.bucket.public(&cover.key), Some(true));
    let report = w.run(pushed + time::Duration::seconds(61)).await;
    assert_eq!(report.fanned_out, 1, "{report:?}");
    assert_eq!(
        w.record(&video.id).await.unwrap().status,
        MediaStatus::Passed
    );
    assert_eq!(w.bucket.public(&video.key), Some(true));

    let (status, body) = w
        .decide(
            &refused.id,
            &moderator,
            json!({"decision": "reject", "reason": "violence"}),
        )
        .await;
    assert_eq!((status, body["status"].clone()), (200, json!("rejected")));
    let record = w.record(&refused.id).await.unwrap();
    assert_eq!(record.reason.as_deref(), Some("violence"));
    assert_eq!(w.bucket.public(&refused.key), Some(false));
}

async fn pushes_are_verified_and_the_handshake_answers(backend: Backend) {
    let w = World::new(backend).await;
    let image = w.upload(Purpose::Avatar, "image/png", true).await;
    let now = OffsetDateTime::now_utc();
    w.run(now).await;
    let trace = asked(&w, &image.id).await;
    let message = media_check(&trace, "risky", json!("20001"));
    let keys = PushKeys::new(PUSH_TOKEN, PUSH_AES_KEY).unwrap();
    let ts = now.unix_timestamp();

    // Another app's keys, another token, a tampered body, a stale timestamp, plaintext mode.
    let other = PushKeys::new("otherToken", PUSH_AES_KEY).unwrap();
    assert_eq!(w.push_with(&other, &message, ts).await.0, 401);
    let other_aes = PushKeys::new(PUSH_TOKEN, &"Q".repeat(43)).unwrap();
    let (status, body) = w.push_with(&other_aes, &message, ts).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("undecryptable"))
    );
    assert_eq!(w.push_with(&keys, &message, ts - 3_600).await.0, 401);
    let encrypt = keys.encrypt(message.to_string().as_bytes(), APPID, [1; 16]);
    let mut bytes: Vec<char> = encrypt.chars().collect();
    bytes[10] = if bytes[10] == 'A' { 'B' } else { 'A' };
    let tampered: String = bytes.into_iter().collect();
    let ts_text = ts.to_string();
    let signed_original = keys.signature(&[&ts_text, "n1", &encrypt]);
    let (status, _) = w
        .events(
            "POST /v1/wechat/events",
            Some(json!({"ToUserName": "gh_x", "Encrypt": tampered})),
            &[
                ("timestamp", ts_text.as_str()),
                ("nonce", "n1"),
                ("encrypt_type", "aes"),
                ("msg_signature", signed_original.as_str()),
            ],
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = w
        .events(
            "POST /v1/wechat/events",
            Some(message.clone()),
            &[
                ("timestamp", ts_text.as_str()),
                ("nonce", "n1"),
                ("signature", keys.signature(&[&ts_text, "n1"]).as_str()),
            ],
        )
        .await;
    assert_eq!(status, 400);
    // Nothing changed by any of them.
    let record = w.record(&image.id).await.unwrap();
    assert_eq!(record.status, MediaStatus::Checking);
    let check: MediaCheck = w
        .app
        .store
        .get_record(&keys::media_check(&trace))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(check.verdict, None);

    // Other events are answered and recorded nowhere.
    let (status, body) = w
        .push(&json!({"MsgType": "event", "Event": "debug_demo", "debug_str": "hi"}))
        .await;
    assert_eq!((status, body), (200, json!("success")));

    // The handshake: echostr verbatim, as text.
    let echostr = "4375120948345356249";
    let signature = keys.signature(&["1714036504", "1514711492"]);
    let response = renji_local::functions::invoke(
        "WechatEventsFunction",
        &w.app,
        gateway_request(
            "GET /v1/wechat/events",
            "",
            None,
            None,
            &[
                ("signature", signature.as_str()),
                ("timestamp", "1714036504"),
                ("nonce", "1514711492"),
                ("echostr", echostr),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        matches!(response.body(), Body::Text(t) if t == echostr),
        "{response:?}"
    );
    let (status, body) = w
        .events(
            "GET /v1/wechat/events",
            None,
            &[
                ("signature", "0000"),
                ("timestamp", "1714036504"),
                ("nonce", "1514711492"),
                ("echostr", echostr),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
}

/// The queue's order: oldest upload first, across pages.
async fn the_queue_is_paged_oldest_first(backend: Backend) {
    let w = World::new(backend).await;
    let mut videos = Vec::new();
    for _ in 0..3 {
        videos.push(w.upload(Purpose::ListingVideo, "video/mp4", true).await);
    }
    w.run(OffsetDateTime::now_utc()).await;
    let moderator = w.staff("mia", "moderator").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = gateway_request(
            "GET /admin/v1/moderation/media",
            "",
            Some(&moderator),
            None,
            &[],
        );
        let mut query = vec![("limit".to_owned(), "2".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor".to_owned(), c.clone()));
        }
        req = req.with_query_string_parameters(QueryMap::from(
            query.into_iter().collect::<HashMap<_, _>>(),
        ));
        let response = renji_local::functions::invoke("AdminFunction", &w.app, req)
            .await
            .unwrap();
        let (status, body) = reply(response);
        assert_eq!(status, 200, "{body}");
        for item in body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // Oldest first by media id (ULIDs made in the same millisecond sort by their random part).
    let mut expected: Vec<String> = videos.iter().map(|v| v.id.to_string()).collect();
    expected.sort();
    assert_eq!(seen, expected);
    let queued = w
        .app
        .store
        .query(Query::partition("QUEUE#media").index(GSI1))
        .await
        .unwrap();
    assert_eq!(queued.items.len(), 3);
}

/// The sandbox round trip: a member uploads through the local server, the media job asks the
/// WeChat stand-in, which downloads the image through the signed link and pushes its result,
/// signed and encrypted, to `POST /v1/wechat/events`: public (or, with the risky marker, removed).
/// Through the API as a client would: upload, publish a listing with it (pending: only its owner
/// sees the image), the media job asks the sandbox, whose signed push makes it public — or
/// removes it from the listing with its reason.
async fn the_sandbox_round_trip_makes_an_upload_public_or_risky(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let who = server.member("roundtrip", true).await;
    let other = server.member("roundtrip-other", false).await;
    let base = server.app().config.media.base_url.clone();
    for (bytes, expected) in [
        (
            b"\xff\xd8\xff\xe0 a plain image".to_vec(),
            MediaStatus::Passed,
        ),
        (
            b"\xff\xd8\xff\xe0 sandbox-risky".to_vec(),
            MediaStatus::Risky,
        ),
    ] {
        let media_url = upload_through_the_form(&server, &who, "listing_image", &bytes).await;
        let (owner, _, id) =
            renji_shared::domain::media::parse_url(&base, &media_url).expect("our media URL");
        let mut body = renji_tests::service("带图的服务");
        body["images"] = json!([media_url]);
        body["status"] = json!("published");
        let listing = server.api.create_listing(&who, body).await;
        let path = format!("/v1/listings/{}", listing["id"].as_str().unwrap());
        let seen = |reply: renji_tests::Reply| (reply.status, reply.body["images"].clone());
        assert_eq!(
            seen(
                server
                    .api
                    .call("GET", &path, Some(&other.token), None)
                    .await
            ),
            (200, json!([])),
            "pending: not shown to others"
        );
        let mine = server.api.call("GET", &path, Some(&who.token), None).await;
        assert_eq!(mine.body["images"], json!([media_url]));
        assert_eq!(
            mine.body["media_states"][&media_url],
            json!({"state": "pending"})
        );
        let job = server.running.function_app("MediaJobsFunction").unwrap();
        // Not looked at while its form works (a second POST could replace what was checked).
        let now = OffsetDateTime::now_utc();
        let report = jobs::run(job, now, Budget::default()).await.unwrap();
        assert_eq!((report.asked, report.waiting), (0, 1), "{report:?}");
        let expired =
            now + time::Duration::seconds(server.app().config.media.policy.as_secs() as i64 + 1);
        let report = jobs::run(job, expired, Budget::default()).await.unwrap();
        assert_eq!((report.asked, report.failed), (1, 0), "{report:?}");
        // The push arrives on its own and records the verdict.
        let mut status = None;
        for _ in 0..50 {
            let record: MediaRecord = server
                .app()
                .store
                .get_record(&keys::media(&owner, &id))
                .await
                .unwrap()
                .unwrap();
            // The media job carries a recorded verdict out (public, or removed) on its next run.
            jobs::run(job, expired, Budget::default()).await.unwrap();
            let mine = server.api.call("GET", &path, Some(&who.token), None).await;
            let held = mine.body["media_states"][&media_url]["state"] == json!("pending");
            if record.status.is_final() && !held {
                status = Some(record);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let record = status.expect("the sandbox's push applied");
        assert_eq!(record.status, expected, "{record:?}");
        let public = reqwest::get(&media_url).await.unwrap().status().as_u16();
        let theirs = server
            .api
            .call("GET", &path, Some(&other.token), None)
            .await;
        let mine = server.api.call("GET", &path, Some(&who.token), None).await;
        match expected {
            MediaStatus::Passed => {
                assert_eq!(public, 200);
                assert_eq!(theirs.body["images"], json!([media_url]));
                assert_eq!(mine.body["media_states"], json!({}));
            }
            _ => {
                assert_eq!(public, 403);
                assert_eq!(record.reason.as_deref(), Some("risky_pornography"));
                assert_eq!(theirs.body["images"], json!([]));
                assert_eq!(
                    mine.body["media_states"][&media_url],
                    json!({"state": "removed", "reason": "risky_pornography"})
                );
            }
        }
    }
}

/// An upload of `bytes` for `purpose` made as the mini-program makes it: the form asked for, the
/// object posted to the local bucket with it. Its media URL.
async fn upload_through_the_form(
    server: &LocalServer,
    who: &renji_tests::Member,
    purpose: &str,
    bytes: &[u8],
) -> String {
    let reply = server
        .api
        .call(
            "POST",
            "/v1/uploads",
            Some(&who.token),
            Some(json!({"purpose": purpose, "content_type": "image/jpeg", "size": bytes.len()})),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let form = reply.body;
    let fields: BTreeMap<String, String> = form["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let pairs = renji_local::media::fields_of(&fields);
    let boundary = "----renji-checks-boundary";
    let uploaded = reqwest::Client::new()
        .post(form["url"].as_str().unwrap())
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(renji_local::media::form_body(boundary, &pairs, Some(bytes)))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status().as_u16(), 204);
    form["media_url"].as_str().unwrap().to_owned()
}

/// A picture on a ticket message goes through the same check, run by the media job with its own
/// IAM statements (the message found by querying its ticket): once it passed, the message shows it
/// to the order's other party and its author sees it settled.
async fn a_ticket_image_is_checked_and_then_shown(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let seller = server.member("ticket-img-seller", true).await;
    let buyer = server.member("ticket-img-buyer", false).await;
    let mut body = renji_tests::service("带图工单的服务");
    body["status"] = json!("published");
    let listing = server.api.create_listing(&seller, body).await;
    let order_id = server
        .ordered(&buyer, listing["id"].as_str().unwrap())
        .await;
    let media_url = upload_through_the_form(
        &server,
        &buyer,
        "ticket_image",
        b"\xff\xd8\xff\xe0 a photo of the receipt",
    )
    .await;
    let ticket = server
        .api
        .call(
            "POST",
            "/v1/tickets",
            Some(&buyer.token),
            Some(json!({"kind": "order", "subject": "收据", "text": "见图", "order_id": order_id})),
        )
        .await;
    assert_eq!(ticket.status, 201, "{ticket:?}");
    let path = format!("/v1/tickets/{}", ticket.body["id"].as_str().unwrap());
    let posted = server
        .api
        .call(
            "POST",
            &format!("{path}/messages"),
            Some(&buyer.token),
            Some(json!({"text": "收据照片", "images": [media_url]})),
        )
        .await;
    assert_eq!(posted.status, 201, "{posted:?}");
    let pictured = |reply: renji_tests::Reply| {
        let messages = reply.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let message = messages
            .into_iter()
            .find(|m| m["text"] == json!("收据照片"))
            .unwrap_or_else(|| panic!("the message: {reply:?}"));
        (message["images"].clone(), message["media_states"].clone())
    };
    let theirs = server
        .api
        .call("GET", &path, Some(&seller.token), None)
        .await;
    assert_eq!(
        pictured(theirs).0,
        json!([]),
        "pending: not shown to the other party"
    );

    let job = server.running.function_app("MediaJobsFunction").unwrap();
    let expired = OffsetDateTime::now_utc()
        + time::Duration::seconds(server.app().config.media.policy.as_secs() as i64 + 1);
    let report = jobs::run(job, expired, Budget::default()).await.unwrap();
    assert_eq!((report.asked, report.failed), (1, 0), "{report:?}");
    // The sandbox pushes its verdict; the job's next runs carry it into the message.
    let mut shown = json!(null);
    for _ in 0..50 {
        let report = jobs::run(job, expired, Budget::default()).await.unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        let theirs = server
            .api
            .call("GET", &path, Some(&seller.token), None)
            .await;
        shown = pictured(theirs).0;
        if shown == json!([media_url]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        shown,
        json!([media_url]),
        "shown to the other party once passed"
    );
    let mine = server
        .api
        .call("GET", &path, Some(&buyer.token), None)
        .await;
    let (images, states) = pictured(mine);
    assert_eq!(images, json!([media_url]));
    assert!(
        states.is_null() || states == json!({}),
        "nothing held any more: {states}"
    );
}

on_both_stores!(
    an_image_passes_once_and_becomes_public,
    a_risky_image_is_removed_with_its_reason,
    a_result_pushed_before_the_trace_id_is_stored_is_applied,
    concurrent_runs_ask_wechat_once_per_upload,
    uploads_not_as_announced_or_never_made_are_refused,
    wechat_errors_retry_and_61010_goes_to_staff,
    a_check_without_answer_goes_to_staff_who_decide,
    a_video_needs_its_cover_passed_and_staff_approval,
    pushes_are_verified_and_the_handshake_answers,
    the_queue_is_paged_oldest_first,
    the_sandbox_round_trip_makes_an_upload_public_or_risky,
    a_ticket_image_is_checked_and_then_shown,
);
