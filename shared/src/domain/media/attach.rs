//! Attaching uploads to the entities that show them (listings, avatars, reviews, ticket
//! messages).
//!
//! A write that brings a media URL the entity does not use yet checks it first: the URL must be
//! one of ours ([`super::parse_url`] under `RENJI_MEDIA_BASE_URL`), name an upload record of the
//! caller, of the purpose of its field, neither `risky` nor `rejected`; otherwise 422 naming the
//! field (`images[2]`) and nothing is written. The upload records of a write are read in one
//! batch. In the entity's own transaction the write then
//! - sets the entity's [`Holds`]: `pending` for each new URL whose upload has not passed;
//! - adds the entity's [`Subject`] to each new upload's `used_by`, conditioned on the record as
//!   read (it exists, same owner, purpose and status, same `used_by`): a check result landing
//!   between the read and the write fails the condition ([`ATTACH_LABEL`]) and the caller reads
//!   again, so a result is never missed by the entity it applies to.
//!
//! URLs the entity already uses stay as they are, with their holds (rows written before uploads
//! existed keep their foreign URLs while their owner edits other fields). A URL the write drops
//! leaves the entity's holds; its upload's `used_by` keeps naming the entity — the fan-out
//! ([`super::holds::update`]) finds the URL gone and does nothing.

use std::collections::BTreeMap;

use serde_json::json;

use super::{parse_url, Hold, Holds, MediaRecord, MediaStatus, Purpose, Subject};
use crate::error::Error;
use crate::ids::UserId;
use crate::store::{keys, Condition, DynStore, Key, Records, Write};

/// The label of an attached upload's condition: the record changed since it was read (or is gone).
pub const ATTACH_LABEL: &str = "upload_unchanged";

/// One media URL a write brings, and the field and purpose it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The field as the 422 names it: `images[2]`, `video_url`, `avatar_url`.
    pub field: String,
    pub url: String,
    pub purpose: Purpose,
}

impl Wanted {
    pub fn new(field: impl Into<String>, url: &str, purpose: Purpose) -> Self {
        Wanted {
            field: field.into(),
            url: url.to_owned(),
            purpose,
        }
    }
}

/// The uploads of a write, checked: what to hold and what to write.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    /// URL → its upload as read.
    records: BTreeMap<String, MediaRecord>,
}

/// Checks the new URLs of a write by `owner` (one batch read). 422 naming the first bad field.
pub async fn check(
    store: &DynStore,
    base: &str,
    owner: &UserId,
    wanted: &[Wanted],
) -> Result<Checked, Error> {
    let mut keys_by_url: BTreeMap<&str, Key> = BTreeMap::new();
    for w in wanted {
        let Some((who, purpose, id)) = parse_url(base, &w.url) else {
            return Err(Error::invalid(
                &w.field,
                format!("must be a media URL from POST /v1/uploads (under {base}/)"),
            ));
        };
        if &who != owner {
            return Err(Error::invalid(&w.field, "must be your own upload"));
        }
        if purpose != w.purpose {
            return Err(Error::invalid(
                &w.field,
                format!("must be an upload for {}", w.purpose.as_str()),
            ));
        }
        keys_by_url.insert(&w.url, keys::media(&who, &id));
    }
    let urls: Vec<&str> = keys_by_url.keys().copied().collect();
    let read_keys: Vec<Key> = keys_by_url.values().cloned().collect();
    let found: Vec<Option<MediaRecord>> = store.get_records(&read_keys).await?;
    let found: BTreeMap<&str, Option<MediaRecord>> = urls.into_iter().zip(found).collect();
    let mut records = BTreeMap::new();
    for w in wanted {
        let record = match found.get(w.url.as_str()) {
            // The URL names the record's own object (its key, extension included).
            Some(Some(r))
                if &r.owner == owner
                    && r.purpose == w.purpose
                    && w.url == format!("{base}/{}", r.key) =>
            {
                r
            }
            _ => return Err(Error::invalid(&w.field, "is not an upload of yours")),
        };
        if matches!(record.status, MediaStatus::Risky | MediaStatus::Rejected) {
            return Err(Error::invalid(
                &w.field,
                "was refused by the content check; upload another",
            ));
        }
        records.insert(w.url.clone(), record.clone());
    }
    Ok(Checked { records })
}

impl Checked {
    /// Nothing new to attach.
    pub fn none() -> Self {
        Checked::default()
    }

    /// Whether `url` is one this write attaches.
    pub fn attaches(&self, url: &str) -> bool {
        self.records.contains_key(url)
    }

    /// The hold of a URL this write attaches: `pending` until its upload has passed.
    fn hold(&self, url: &str) -> Option<Hold> {
        let record = self.records.get(url)?;
        (record.status != MediaStatus::Passed).then_some(Hold::Pending)
    }

    /// The entity's holds after the write, for the URLs it uses then: a new URL's from its upload,
    /// a kept one's as before; a dropped URL's hold goes.
    pub fn holds_after<'a>(
        &self,
        urls: impl IntoIterator<Item = &'a String>,
        old: &Holds,
    ) -> Holds {
        urls.into_iter()
            .filter_map(|url| {
                let hold = match self.records.contains_key(url) {
                    true => self.hold(url),
                    false => old.get(url).cloned(),
                };
                hold.map(|h| (url.clone(), h))
            })
            .collect()
    }

    /// The writes for the entity's transaction: each new upload gains `subject` in its `used_by`,
    /// conditioned on the record as read ([`ATTACH_LABEL`]). A video attached with its cover
    /// (a listing's pair) records the cover's id, which the media job waits on before the video
    /// is public.
    pub fn writes(&self, subject: &Subject) -> Vec<Write> {
        let mut seen = std::collections::BTreeSet::new();
        let mut writes = Vec::new();
        let cover = self
            .records
            .values()
            .find(|r| r.purpose == Purpose::VideoCover)
            .map(|r| r.id.clone());
        for record in self.records.values() {
            let key = keys::media(&record.owner, &record.id);
            if !seen.insert(key.clone()) {
                continue;
            }
            let mut same = vec![
                Condition::Present,
                Condition::Equals("owner".into(), json!(record.owner)),
                Condition::Equals("purpose".into(), json!(record.purpose)),
                Condition::Equals("status".into(), json!(record.status)),
            ];
            let link_cover =
                record.purpose == Purpose::ListingVideo && cover.is_some() && record.cover != cover;
            let attached = record.used_by.contains(subject);
            if attached && !link_cover {
                writes.push(Write::check(key, Condition::All(same), ATTACH_LABEL));
                continue;
            }
            let mut update = Write::update(key);
            if !attached {
                same.push(match record.used_by.is_empty() {
                    true => Condition::Lacks("used_by".into()),
                    false => Condition::Equals("used_by".into(), json!(record.used_by)),
                });
                let mut used_by = record.used_by.clone();
                used_by.push(subject.clone());
                update = update.set("used_by", json!(used_by));
            }
            if link_cover {
                same.push(match &record.cover {
                    None => Condition::Lacks("cover".into()),
                    Some(old) => Condition::Equals("cover".into(), json!(old)),
                });
                update = update.set("cover", json!(cover));
            }
            writes.push(update.condition(Condition::All(same), ATTACH_LABEL).build());
        }
        writes
    }
}

/// The owner's view of an entity's media: URL → `{"state": "pending"}` or
/// `{"state": "removed", "reason": …}` for each URL others do not see; `{}` when all are shown.
pub fn states(holds: &Holds) -> serde_json::Value {
    json!(holds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MediaId;

    fn record(owner: &UserId, status: MediaStatus, used_by: Vec<Subject>) -> MediaRecord {
        let id = MediaId::generate();
        MediaRecord {
            key: super::super::object_key(owner, Purpose::ListingImage, &id, "jpg"),
            id,
            owner: owner.clone(),
            purpose: Purpose::ListingImage,
            content_type: "image/jpeg".into(),
            size: 10,
            status,
            upload_expires_at: "2026-01-01T00:00:00Z".into(),
            trace_id: None,
            reason: None,
            cover: None,
            approved_by_staff: None,
            used_by,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn new_urls_are_held_until_passed_and_kept_ones_keep_their_hold() {
        let owner = UserId::generate();
        let subject = Subject::Listing {
            id: crate::ids::ListingId::generate(),
        };
        let checked = Checked {
            records: BTreeMap::from([
                (
                    "new-pending".into(),
                    record(&owner, MediaStatus::Issued, vec![]),
                ),
                (
                    "new-passed".into(),
                    record(&owner, MediaStatus::Passed, vec![subject.clone()]),
                ),
            ]),
        };
        let old = Holds::from([
            (
                "kept".to_owned(),
                Hold::Removed {
                    reason: "20002".into(),
                },
            ),
            ("dropped".to_owned(), Hold::Pending),
        ]);
        let urls: Vec<String> = ["new-pending", "new-passed", "kept", "legacy"]
            .map(String::from)
            .to_vec();
        let holds = checked.holds_after(&urls, &old);
        assert_eq!(
            holds,
            Holds::from([
                ("new-pending".to_owned(), Hold::Pending),
                (
                    "kept".to_owned(),
                    Hold::Removed {
                        reason: "20002".into()
                    }
                ),
            ])
        );
        let writes = checked.writes(&subject);
        assert_eq!(writes.len(), 2);
        // Already used by the subject: only checked; otherwise used_by grows.
        assert_eq!(
            writes
                .iter()
                .filter(|w| matches!(w, Write::Check { .. }))
                .count(),
            1
        );
        assert!(writes.iter().all(|w| w.label() == ATTACH_LABEL));
        assert_eq!(states(&holds)["new-pending"], json!({"state": "pending"}));
    }
}
