//! The port to WeChat's server APIs that need the app's access token: text and image content
//! security (`msgSecCheck` v2, `mediaCheckAsync` v2) and subscribe messages. The domain sees
//! only this trait; the HTTP adapter (with the access token shared through the store,
//! `super::token`) is `HttpWechatApi`, the local stand-in lives in `local/src/sandbox`.
//! Facts: `../shared/design/wechat-platform.md` §1–§3, §5.

use async_trait::async_trait;
use serde_json::Value;

use crate::error::Error;

/// `scene` of the content checks: what kind of place the content is published in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scene {
    /// 1 资料: a profile (nickname).
    Profile = 1,
    /// 2 评论: a comment (review, reply, ticket message).
    Comment = 2,
    /// 3 论坛: a post (listing title and description, its images).
    Forum = 3,
    /// 4 社交日志.
    Social = 4,
}

/// One `msgSecCheck` v2 request. `openid` is the author's (WeChat needs a member who used the
/// mini-program in the last 2 hours, else 61010).
#[derive(Clone, Debug)]
pub struct TextCheck<'a> {
    pub openid: &'a str,
    pub scene: Scene,
    /// ≤ 2500 characters (WeChat's limit); callers check longer texts in parts.
    pub content: &'a str,
    /// Optional context WeChat accepts alongside (`title`, `nickname`).
    pub title: Option<&'a str>,
    pub nickname: Option<&'a str>,
}

/// WeChat's suggestion (`result.suggest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suggest {
    Pass,
    Review,
    Risky,
}

/// The verdict on a text: suggestion, label (100 = normal, 20001 politics, …) and trace id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextVerdict {
    pub suggest: Suggest,
    pub label: i64,
    pub trace_id: String,
}

/// One `mediaCheckAsync` v2 request for an image (`media_type` 2): WeChat fetches `media_url`
/// (which must stay downloadable for 30 minutes) and pushes the result to the events route.
#[derive(Clone, Debug)]
pub struct ImageCheck<'a> {
    pub openid: &'a str,
    pub scene: Scene,
    pub media_url: &'a str,
}

/// One `/cgi-bin/message/subscribe/send` request (`miniprogram_state` and `lang` come from the
/// adapter's configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct SubscribeMessage {
    pub touser: String,
    pub template_id: String,
    /// In-app page to open, query allowed; `None`: no jump.
    pub page: Option<String>,
    /// `{"thing1": {"value": "…"}, …}`.
    pub data: Value,
}

/// Why a call gave no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformError {
    /// 61010: the member has not used the mini-program in the last 2 hours (writing from the app
    /// or the web). Text: treat as `review`; media: keep pending.
    NotRecentlyActive,
    /// 43101: the member has not subscribed (or the one-time grant is spent).
    NotSubscribed,
    /// WeChat refused this request for a reason a retry does not fix (its errcode): a bad
    /// openid (40003), template (40037), data (47003), …
    Refused(i64),
    /// -1, a 5xx, a timeout, a quota (44991/45009/45011), an unreadable answer, a token that
    /// could not be had: retrying later may help.
    Unavailable(String),
    /// The app's own credentials or configuration are wrong (AppID, AppSecret, IP whitelist).
    Misconfigured(i64),
}

impl From<PlatformError> for Error {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::Misconfigured(errcode) => Error::Config(format!(
                "WeChat refused this app's configuration (errcode {errcode}): check WECHAT_APPID, \
                 WECHAT_SECRET and the server's IP whitelist"
            )),
            PlatformError::Unavailable(detail) => Error::Unavailable(detail),
            other => Error::Unavailable(format!("WeChat: {other:?}")),
        }
    }
}

#[async_trait]
pub trait WechatApi: Send + Sync {
    /// `msgSecCheck` v2.
    async fn check_text(&self, check: &TextCheck<'_>) -> Result<TextVerdict, PlatformError>;
    /// `mediaCheckAsync` v2 for an image: the trace id the result will be pushed with.
    async fn check_image(&self, check: &ImageCheck<'_>) -> Result<String, PlatformError>;
    /// `subscribe/send`.
    async fn send_subscribe_message(&self, message: &SubscribeMessage)
        -> Result<(), PlatformError>;
}
