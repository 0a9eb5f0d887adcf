//! In-process stand-ins for provider clients, for code that calls the domain directly (the
//! domain-level tests, the benchmark's own seed data) rather than through the HTTP stand-ins, and
//! the records such code writes directly.

use std::sync::Mutex;

use renji_shared::domain::media::{object_key, MediaRecord, MediaStatus, Purpose};
use renji_shared::ids::{MediaId, UserId};
use renji_shared::wechat::api::{
    ImageCheck, PlatformError, SubscribeMessage, Suggest, TextCheck, TextVerdict, WechatApi,
};

/// A stand-in for WeChat's content checks answering by the sandbox's markers: text containing
/// `sandbox-risky` → risky (20001), `sandbox-review` → review (21000), `sandbox-61010` →
/// errcode 61010, `sandbox-outage` → unavailable; anything else passes ([`FakeWechat::holding`]:
/// every text goes to staff, as `sandbox-review`). Image checks are not faked (unavailable);
/// subscribe messages are accepted. Counts the texts it was asked about (scene, text).
#[derive(Default)]
pub struct FakeWechat {
    pub asked: Mutex<Vec<(i64, String)>>,
    holding: bool,
}

impl FakeWechat {
    /// One that sends every text to staff (a held text for a moderator to decide).
    pub fn holding() -> Self {
        FakeWechat {
            holding: true,
            ..FakeWechat::default()
        }
    }
}

#[async_trait::async_trait]
impl WechatApi for FakeWechat {
    async fn check_text(&self, check: &TextCheck<'_>) -> Result<TextVerdict, PlatformError> {
        self.asked
            .lock()
            .expect("lock")
            .push((check.scene as i64, check.content.to_owned()));
        let verdict = |suggest, label| {
            Ok(TextVerdict {
                suggest,
                label,
                trace_id: "fake".into(),
            })
        };
        let text = check.content;
        if self.holding {
            verdict(Suggest::Review, 21000)
        } else if text.contains("sandbox-outage") {
            Err(PlatformError::Unavailable("errcode -1".into()))
        } else if text.contains("sandbox-61010") {
            Err(PlatformError::NotRecentlyActive)
        } else if text.contains("sandbox-risky") {
            verdict(Suggest::Risky, 20001)
        } else if text.contains("sandbox-review") {
            verdict(Suggest::Review, 21000)
        } else {
            verdict(Suggest::Pass, 100)
        }
    }

    async fn check_image(&self, _: &ImageCheck<'_>) -> Result<String, PlatformError> {
        Err(PlatformError::Unavailable("not faked".into()))
    }

    async fn send_subscribe_message(&self, _: &SubscribeMessage) -> Result<(), PlatformError> {
        Ok(())
    }
}

/// An upload of `owner` for `purpose` in `status`, made now as `POST /v1/uploads` records it
/// (1 kB; a JPEG, or an MP4 for a video): for tests and the benchmark, which write uploads
/// directly with the store. Its URL is [`MediaRecord::url`].
pub fn upload(owner: &UserId, purpose: Purpose, status: MediaStatus) -> MediaRecord {
    let (content_type, ext) = match purpose.is_video() {
        true => ("video/mp4", "mp4"),
        false => ("image/jpeg", "jpg"),
    };
    let id = MediaId::generate();
    let now = renji_shared::domain::members::now_rfc3339();
    MediaRecord {
        key: object_key(owner, purpose, &id, ext),
        id,
        owner: owner.clone(),
        purpose,
        content_type: content_type.into(),
        size: 1024,
        status,
        upload_expires_at: now.clone(),
        trace_id: None,
        reason: None,
        cover: None,
        approved_by_staff: None,
        used_by: Vec::new(),
        created_at: now.clone(),
        updated_at: now,
    }
}
