//! Members' uploaded files (pictures and video): what each is for, where it is, whether it may
//! be shown, and where it is used.
//!
//! Life of an upload: `POST /v1/uploads` records it `issued` and hands out a presigned S3 POST;
//! once the object is seen it is `checking` (an image: WeChat's `mediaCheckAsync`; a video: its
//! cover's check and a staff decision); then `passed` (public through the CDN) or `risky` /
//! `rejected` (never public; the owner is told why). Until it passes, only its uploader sees it.
//!
//! The entities that show media (listings, profiles, reviews, ticket messages) keep their URLs as
//! before and, beside them, a [`Holds`] map of the URLs that may not be shown to others yet (or
//! any more). An entity without holds shows every URL: rows written before uploads existed keep
//! working. When a check ends, every [`Subject`] in the record's `used_by` has its holds updated.

pub mod attach;
pub mod holds;
pub mod jobs;
pub mod results;
pub mod review;
pub mod uploads;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{ListingId, MediaId, ReviewId, TicketId, UserId};
use crate::store::Record;

/// What an upload is for (`POST /v1/uploads` `purpose`): decides the allowed types and size, and
/// which field may use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    ListingImage,
    ListingVideo,
    VideoCover,
    Avatar,
    ReviewImage,
    TicketImage,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ListingImage => "listing_image",
            Purpose::ListingVideo => "listing_video",
            Purpose::VideoCover => "video_cover",
            Purpose::Avatar => "avatar",
            Purpose::ReviewImage => "review_image",
            Purpose::TicketImage => "ticket_image",
        }
    }

    pub fn is_video(self) -> bool {
        self == Purpose::ListingVideo
    }
}

/// Where an upload is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaStatus {
    /// A policy was handed out; the object has not been seen yet.
    Issued,
    /// The object is there (size and type confirmed); its check is asked or waiting.
    Checking,
    /// Public.
    Passed,
    /// WeChat's check found it risky: never public.
    Risky,
    /// Staff refused it (a video, or an image whose check never came back): never public.
    Rejected,
}

impl MediaStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MediaStatus::Passed | MediaStatus::Risky | MediaStatus::Rejected
        )
    }
}

/// Where an upload is used: the entity whose holds follow its state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    Listing { id: ListingId },
    Avatar { member: UserId },
    Review { id: ReviewId },
    Ticket { id: TicketId },
}

/// An upload (`USER#<owner> / MEDIA#<id>`, [`crate::store::keys::media`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaRecord {
    pub id: MediaId,
    pub owner: UserId,
    pub purpose: Purpose,
    /// The S3 object key (`u/<owner>/<id>.<ext>`); the public URL is the CDN base + `/` + key.
    pub key: String,
    /// The exact content type the policy allowed.
    pub content_type: String,
    /// The size the client announced; the policy allowed at most this many bytes.
    pub size: u64,
    pub status: MediaStatus,
    /// When the upload policy expires (RFC 3339).
    pub upload_expires_at: String,
    /// WeChat's trace id of the image check, once asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Why it is not public (a WeChat label such as `20002`, or staff's reason), for its owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A video's cover (an upload of purpose `video_cover` by the same member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<MediaId>,
    /// A video: staff approved it (it is public once its cover has passed too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by_staff: Option<bool>,
    /// The entities that use it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<Subject>,
    pub created_at: String,
    pub updated_at: String,
}

impl Record for MediaRecord {
    const KIND: &'static str = "upload";
}

impl MediaRecord {
    /// The URL entities use for it (`RENJI_MEDIA_BASE_URL` + `/` + key).
    pub fn url(&self, base: &str) -> String {
        format!("{}/{}", base.trim_end_matches('/'), self.key)
    }
}

/// Why a URL an entity uses may not be shown to others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Hold {
    /// Its check has not ended: only the owner sees it (marked `pending`).
    Pending,
    /// It failed its check or staff refused it: the owner sees why.
    Removed { reason: String },
}

/// An entity's held URLs (URL → hold). Absent or empty: every URL is shown.
pub type Holds = BTreeMap<String, Hold>;

/// The URLs of `urls` others may see, in order.
pub fn public_urls(urls: &[String], holds: &Holds) -> Vec<String> {
    urls.iter()
        .filter(|u| !holds.contains_key(*u))
        .cloned()
        .collect()
}

/// The file extension of an allowed content type (what WeChat's image check accepts, and mp4).
pub fn extension(content_type: &str) -> Option<&'static str> {
    Some(match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/bmp" => "bmp",
        "video/mp4" => "mp4",
        _ => return None,
    })
}

/// An upload's object key: `u/<owner>/<purpose>/<id>.<ext>` (the policy's key prefix is per
/// member and purpose).
pub fn object_key(owner: &UserId, purpose: Purpose, id: &MediaId, ext: &str) -> String {
    format!("u/{owner}/{}/{id}.{ext}", purpose.as_str())
}

impl Purpose {
    pub fn parse(text: &str) -> Option<Purpose> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }
}

/// The owner, purpose and id an object key names, if it is one of ours.
pub fn parse_key(key: &str) -> Option<(UserId, Purpose, MediaId)> {
    let rest = key.strip_prefix("u/")?;
    let (owner, rest) = rest.split_once('/')?;
    let (purpose, file) = rest.split_once('/')?;
    let (id, ext) = file.split_once('.')?;
    let known = ["jpg", "png", "gif", "bmp", "mp4"].contains(&ext);
    known
        .then(|| {
            Some((
                UserId::parse(owner)?,
                Purpose::parse(purpose)?,
                MediaId::parse(id)?,
            ))
        })
        .flatten()
}

/// The owner, purpose and id of a media URL of ours (`base` + `/` + key, nothing after).
pub fn parse_url(base: &str, url: &str) -> Option<(UserId, Purpose, MediaId)> {
    parse_key(url.strip_prefix(base)?.strip_prefix('/')?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_urls_are_not_public_and_old_rows_show_everything() {
        let urls = vec!["https://a/1".to_owned(), "https://a/2".to_owned()];
        assert_eq!(public_urls(&urls, &Holds::new()), urls);
        let holds = Holds::from([("https://a/1".to_owned(), Hold::Pending)]);
        assert_eq!(public_urls(&urls, &holds), vec!["https://a/2".to_owned()]);
        let json = serde_json::to_value(Hold::Removed {
            reason: "20002".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state": "removed", "reason": "20002"})
        );
    }
}
