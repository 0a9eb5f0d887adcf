//! Text content security: every text that becomes public is checked with WeChat's
//! `msgSecCheck` v2 (`wechat-platform.md` §2) before it is stored.
//!
//! - `pass` → stored and public;
//! - `risky` → 422 `content_risky` naming the field and WeChat's label, nothing written;
//! - `review`, and errcode 61010 (the author has not used the mini-program in the last 2 hours:
//!   WeChat cannot judge, a person must) → stored with a [`TextHold`] on the entity: hidden from
//!   others until staff decide ([`texts`]), shown to its author as `under_review`;
//! - WeChat unavailable (an outage, a quota, the access token) → 503 with `Retry-After`, nothing
//!   written: text fails closed.
//!
//! Empty text needs no check; an edit checks only the fields it changes. Each held text has a
//! [`HeldText`] record in its author's partition, listed for staff oldest first ([`texts`]).

pub mod texts;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::wechat::api::{PlatformError, Scene, Suggest, TextCheck, WechatApi};

pub use texts::{HeldText, Subject};

/// WeChat's limit on one `content`, in characters; longer texts are checked in parts.
pub const MAX_CONTENT_CHARS: usize = 2500;

/// The name of a WeChat content-security label (`wechat-platform.md` §2), as the API shows it.
pub fn label_name(label: i64) -> &'static str {
    match label {
        100 => "normal",
        10001 => "advertising",
        20001 => "politics",
        20002 => "pornography",
        20003 => "abuse",
        20006 => "illegal",
        20008 => "fraud",
        20012 => "vulgar",
        20013 => "copyright",
        _ => "other",
    }
}

/// A held text's state, as its author is shown it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Waiting for staff: hidden from others.
    UnderReview,
    /// Staff refused it: stays hidden; the author sees why and may change it.
    Rejected,
}

/// What an entity may not show others yet because of its text: stored on the entity
/// (`text_review`). Absent = its text is public.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextHold {
    /// The [`HeldText`] staff decide (`<author>.<ulid>`, the staff route's `{id}`).
    pub check_id: String,
    pub state: HoldState,
    /// The fields held (`title`, `description`, `nickname`, `text`).
    pub fields: Vec<String>,
    /// WeChat's label (`None` for 61010: WeChat gave no verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<i64>,
    pub since: String,
    /// Why staff rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A held nickname itself (the member's `nickname` stays the approved one meanwhile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

impl TextHold {
    /// What the author is shown: state, fields, label, since, reason (never the check id).
    pub fn owner_view(&self) -> serde_json::Value {
        serde_json::json!({
            "state": self.state,
            "fields": self.fields,
            "label": self.label,
            "category": self.label.map(label_name),
            "since": self.since,
            "reason": self.reason,
        })
    }
}

/// The outcome of the checks of a write's texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every text passed (or there was none to check): publish.
    Pass,
    /// These fields need a person: store, held. `label` is the first WeChat label given.
    Review {
        fields: Vec<String>,
        label: Option<i64>,
    },
}

/// Checks `fields` (`(field name, text)`) written by the member with `openid` in `scene`;
/// `title` is the listing title WeChat takes as context in the forum scene. Empty texts are
/// skipped. `Err(ContentRisky)` at the first risky field; `Err(Unavailable)` (503) when WeChat
/// gave no answer.
pub async fn check(
    api: &dyn WechatApi,
    openid: &str,
    scene: Scene,
    title: Option<&str>,
    fields: &[(&str, &str)],
) -> Result<Verdict, Error> {
    // Boxed: the write paths that await it are deep futures already.
    Box::pin(check_fields(api, openid, scene, title, fields)).await
}

async fn check_fields(
    api: &dyn WechatApi,
    openid: &str,
    scene: Scene,
    title: Option<&str>,
    fields: &[(&str, &str)],
) -> Result<Verdict, Error> {
    let mut review: Vec<String> = Vec::new();
    let mut first_label = None;
    for (field, text) in fields {
        if text.trim().is_empty() {
            continue;
        }
        let chars: Vec<char> = text.chars().collect();
        for part in chars.chunks(MAX_CONTENT_CHARS) {
            let content: String = part.iter().collect();
            let request = TextCheck {
                openid,
                scene,
                content: &content,
                title: title.filter(|_| scene == Scene::Forum),
                nickname: None,
            };
            let (held, label) = match api.check_text(&request).await {
                Ok(verdict) => match verdict.suggest {
                    Suggest::Pass => (false, None),
                    Suggest::Review => (true, Some(verdict.label)),
                    Suggest::Risky => {
                        return Err(Error::ContentRisky {
                            field: (*field).to_owned(),
                            label: verdict.label,
                        })
                    }
                },
                Err(PlatformError::NotRecentlyActive) => (true, None),
                Err(other) => return Err(unavailable(other)),
            };
            if held {
                if !review.iter().any(|f| f == field) {
                    review.push((*field).to_owned());
                }
                first_label = first_label.or(label);
            }
        }
    }
    Ok(match review.is_empty() {
        true => Verdict::Pass,
        false => Verdict::Review {
            fields: review,
            label: first_label,
        },
    })
}

/// WeChat gave no verdict: 503 with `Retry-After` (text fails closed). A configuration WeChat
/// refuses is logged as the error it is.
fn unavailable(e: PlatformError) -> Error {
    match e {
        PlatformError::Unavailable(detail) => Error::Unavailable(format!("msgSecCheck: {detail}")),
        PlatformError::Misconfigured(code) => {
            tracing::error!(
                errcode = code,
                "msgSecCheck: WeChat refused the app's configuration"
            );
            Error::Unavailable(format!("msgSecCheck: misconfigured ({code})"))
        }
        other => Error::Unavailable(format!("msgSecCheck: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_have_names() {
        assert_eq!(label_name(20001), "politics");
        assert_eq!(label_name(21000), "other");
        assert_eq!(label_name(20003), "abuse");
    }
}
