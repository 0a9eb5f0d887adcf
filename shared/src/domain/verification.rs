//! Real-name verification (privacy policy §二(一)2): a member submits a person's name and resident
//! ID number, or a company's name and unified social credit code; the verifier checks them; a
//! verified member carries the `verified` badge that publishing requires.
//!
//! States: `pending → verified | rejected(reason)`. A submission while one is pending or after
//! one was verified is refused (409); after a rejection a new submission replaces the record.
//! A pending attempt is settled by a later read that gets a final answer from the verifier
//! (asked again with the same attempt id); settling is a write conditioned on the record still
//! being that pending attempt, so it happens once, and a verification sets the member's badge
//! in the same transaction.
//!
//! Store layout, under the member's partition:
//! - `USER#<id> / VERIFICATION`: the latest attempt. Name and number are stored only sealed
//!   (`pii.rs`) beside their displayed forms (a masked number; a person's masked name, a
//!   company's name in full, as it is public registry data).
//! - `USER#<id> / VERIFICATION_DAY#<yyyy-mm-dd>`: that UTC day's submissions, a capped counter
//!   written in the submission's transaction (each check costs money); `ttl` removes it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use super::identity::{mask_number, CompanyName, CreditCode, RealName, ResidentId};
use super::members::{member_key, now_rfc3339, VerifiedAs};
use crate::app::App;
use crate::error::Error;
use crate::ids::UserId;
use crate::pii::{KeyRing, Sealed};
use crate::store::{Condition, Item, Key, StoreError, Write};
use crate::verifier::{Decision, Subject, Verifier};

const RECORD: &str = "VERIFICATION";
const DAY_PREFIX: &str = "VERIFICATION_DAY#";
/// Field names in the sealed values' associated data.
const NAME_FIELD: &str = "verification.name";
const NUMBER_FIELD: &str = "verification.number";
const DAY_SECS: i64 = 24 * 3600;

pub fn record_key(member: &UserId) -> Key {
    Key::new(format!("USER#{member}"), RECORD)
}

/// The key of the submission counter of `member` on `day` (`YYYY-MM-DD`, UTC).
pub fn day_counter_key(member: &UserId, day: &str) -> Key {
    Key::new(format!("USER#{member}"), format!("{DAY_PREFIX}{day}"))
}

/// `POST /v1/me/verification` body, tagged by `kind`. `Debug` hides the details.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Submission {
    Person {
        real_name: String,
        id_number: String,
    },
    Enterprise {
        company_name: String,
        credit_code: String,
    },
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Submission::Person { .. } => f.write_str("Submission::Person(..)"),
            Submission::Enterprise { .. } => f.write_str("Submission::Enterprise(..)"),
        }
    }
}

impl Submission {
    /// Validates every field (422 naming it); nothing is counted or written before this passes.
    pub fn validate(self) -> Result<Subject, Error> {
        Ok(match self {
            Submission::Person {
                real_name,
                id_number,
            } => Subject::Person {
                name: RealName::parse(&real_name)?,
                number: ResidentId::parse(&id_number)?,
            },
            Submission::Enterprise {
                company_name,
                credit_code,
            } => Subject::Enterprise {
                name: CompanyName::parse(&company_name)?,
                number: CreditCode::parse(&credit_code)?,
            },
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Verified,
    Rejected,
}

/// One attempt as stored: no plaintext name (of a person) or number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub status: Status,
    pub kind: VerifiedAs,
    pub attempt_id: String,
    /// What the member is shown: a person's name masked, a company's in full.
    pub name_shown: String,
    pub number_masked: String,
    pub name_sealed: Sealed,
    pub number_sealed: Sealed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub submitted_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
}

impl Verification {
    /// The member's view (`GET /v1/me/verification`): masked, never the sealed values.
    pub fn view(&self) -> Value {
        json!({
            "status": self.status,
            "kind": self.kind,
            "name": self.name_shown,
            "number": self.number_masked,
            "reason": self.reason,
            "submitted_at": self.submitted_at,
            "decided_at": self.decided_at,
        })
    }

    fn to_item(&self, member: &UserId) -> Result<Item, Error> {
        let Value::Object(mut item) =
            serde_json::to_value(self).map_err(|e| Error::Internal(e.to_string()))?
        else {
            return Err(Error::Internal("verification is not an object".into()));
        };
        let key = record_key(member);
        item.insert("pk".into(), key.pk.into());
        item.insert("sk".into(), key.sk.into());
        Ok(item)
    }

    fn from_item(item: Item) -> Result<Self, Error> {
        serde_json::from_value(Value::Object(item))
            .map_err(|e| Error::Internal(format!("stored verification unreadable: {e}")))
    }

    /// Holds while the stored record is still this pending attempt.
    fn still_pending(&self) -> Condition {
        Condition::All(vec![
            Condition::Equals("status".into(), json!(Status::Pending)),
            Condition::Equals("attempt_id".into(), json!(self.attempt_id)),
        ])
    }
}

fn conflict() -> Error {
    Error::Conflict {
        code: "verification_exists",
        message: "a verification is already pending or verified".into(),
    }
}

fn parts(app: &App) -> Result<(&KeyRing, &dyn Verifier), Error> {
    let ring = app
        .pii
        .as_ref()
        .ok_or_else(|| Error::Config("RENJI_PII_KEYS is not set for this function".into()))?;
    let verifier = app
        .verifier
        .as_deref()
        .ok_or_else(|| Error::Config("RENJI_VERIFIER_URL is not set for this function".into()))?;
    Ok((ring, verifier))
}

async fn current(app: &App, member: &UserId) -> Result<Option<Verification>, Error> {
    app.store
        .get(&record_key(member))
        .await?
        .map(Verification::from_item)
        .transpose()
}

/// Seconds from `now` to the next UTC midnight, when the daily count starts again.
fn secs_to_midnight(now: i64) -> u64 {
    (DAY_SECS - now.rem_euclid(DAY_SECS)).unsigned_abs()
}

/// Records a new pending attempt (counted against the daily limit), then asks the verifier.
/// The answer is the record: pending when the verifier has not decided or is unavailable.
pub async fn submit(app: &App, member: &UserId, subject: Subject) -> Result<Verification, Error> {
    let (ring, verifier) = parts(app)?;
    let replaces = match current(app, member).await? {
        None => Condition::Absent,
        Some(old) if old.status == Status::Rejected => Condition::All(vec![
            Condition::Equals("status".into(), json!(Status::Rejected)),
            Condition::Equals("attempt_id".into(), json!(old.attempt_id)),
        ]),
        Some(_) => return Err(conflict()),
    };
    let now = OffsetDateTime::now_utc();
    let limited = Error::TooManyRequests {
        retry_after_secs: secs_to_midnight(now.unix_timestamp()),
    };
    let limit = i64::from(app.config.verification_daily_limit);
    if limit == 0 {
        return Err(limited);
    }
    let day = now
        .date()
        .format(format_description!("[year]-[month]-[day]"))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let count = Write::update(day_counter_key(member, &day))
        .add("n", 1)
        .set("ttl", now.unix_timestamp() + 2 * DAY_SECS)
        .condition(Condition::Under("n".into(), limit), "daily_limit")
        .build();

    let record = Verification {
        status: Status::Pending,
        kind: subject.kind(),
        attempt_id: format!("va_{}", ulid::Ulid::new().to_string().to_ascii_lowercase()),
        name_shown: match &subject {
            Subject::Person { name, .. } => name.masked(),
            Subject::Enterprise { name, .. } => name.expose().to_owned(),
        },
        number_masked: mask_number(subject.number()),
        name_sealed: ring.seal(member, NAME_FIELD, subject.name())?,
        number_sealed: ring.seal(member, NUMBER_FIELD, subject.number())?,
        reason: None,
        submitted_at: now_rfc3339(),
        decided_at: None,
    };
    let written = app
        .store
        .transact(vec![
            count,
            Write::put_if(record.to_item(member)?, replaces, "replaceable"),
        ])
        .await;
    match written {
        Ok(()) => {}
        Err(StoreError::ConditionFailed {
            label: "daily_limit",
        }) => return Err(limited),
        // Another submission got in first.
        Err(StoreError::ConditionFailed {
            label: "replaceable",
        }) => return Err(conflict()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user_id = %member, attempt_id = %record.attempt_id, "verification submitted");
    decide(app, verifier, member, record, &subject).await
}

/// The member's latest attempt; a pending one is first put to the verifier again.
pub async fn status(app: &App, member: &UserId) -> Result<Verification, Error> {
    let record = current(app, member)
        .await?
        .ok_or(Error::NotFound("verification"))?;
    if record.status != Status::Pending {
        return Ok(record);
    }
    let (ring, verifier) = parts(app)?;
    let name = ring.open(member, NAME_FIELD, &record.name_sealed)?;
    let number = ring.open(member, NUMBER_FIELD, &record.number_sealed)?;
    let unreadable = |_| Error::Internal("stored verification details unreadable".into());
    let subject = match record.kind {
        VerifiedAs::Person => Subject::Person {
            name: RealName::parse(&name).map_err(unreadable)?,
            number: ResidentId::parse(&number).map_err(unreadable)?,
        },
        VerifiedAs::Enterprise => Subject::Enterprise {
            name: CompanyName::parse(&name).map_err(unreadable)?,
            number: CreditCode::parse(&number).map_err(unreadable)?,
        },
    };
    decide(app, verifier, member, record, &subject).await
}

/// Asks the verifier about a pending attempt and records a final answer. An unavailable
/// verifier or a pending answer leaves the record pending.
async fn decide(
    app: &App,
    verifier: &dyn Verifier,
    member: &UserId,
    record: Verification,
    subject: &Subject,
) -> Result<Verification, Error> {
    let decision = match verifier.verify(subject, &record.attempt_id).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(attempt_id = %record.attempt_id, error = ?e, "verifier unavailable");
            Decision::Pending
        }
    };
    let (status, reason) = match decision {
        Decision::Pending => return Ok(record),
        Decision::Verified => (Status::Verified, None),
        // A reason quoting the details would store them in the clear: keep a generic one.
        Decision::Rejected { reason }
            if reason.contains(subject.number()) || reason.contains(subject.name()) =>
        {
            (
                Status::Rejected,
                Some("the identity service did not verify these details".to_owned()),
            )
        }
        Decision::Rejected { reason } => (Status::Rejected, Some(reason)),
    };
    let now = now_rfc3339();
    let mut settle = Write::update(record_key(member))
        .set("status", json!(status))
        .set("decided_at", now.as_str())
        .condition(record.still_pending(), "still_pending");
    if let Some(reason) = &reason {
        settle = settle.set("reason", reason.as_str());
    }
    let mut writes = vec![settle.build()];
    if status == Status::Verified {
        writes.push(
            Write::update(member_key(member))
                .set("verified", json!(record.kind))
                .set("updated_at", now.as_str())
                .condition(Condition::Present, "member_exists")
                .build(),
        );
    }
    match app.store.transact(writes).await {
        Ok(()) => {
            tracing::info!(user_id = %member, attempt_id = %record.attempt_id, status = ?status, "verification decided");
            Ok(Verification {
                status,
                reason,
                decided_at: Some(now),
                ..record
            })
        }
        Err(StoreError::ConditionFailed {
            label: "still_pending",
        }) => {
            // Settled by a concurrent request (then show that), or the record is gone with its
            // member.
            match current(app, member).await? {
                Some(latest)
                    if latest.attempt_id != record.attempt_id
                        || latest.status != Status::Pending =>
                {
                    Ok(latest)
                }
                _ => Err(Error::NotFound("member")),
            }
        }
        Err(StoreError::ConditionFailed {
            label: "member_exists",
        }) => Err(Error::NotFound("member")),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Submission, serde_json::Error> {
        serde_json::from_str(body)
    }

    #[test]
    fn submissions_are_tagged_and_refuse_unknown_fields() {
        assert!(matches!(
            parse(r#"{"kind":"person","real_name":"张三","id_number":"11010519491231002X"}"#),
            Ok(Submission::Person { .. })
        ));
        assert!(matches!(
            parse(
                r#"{"kind":"enterprise","company_name":"风郎影业","credit_code":"91350100M000100Y43"}"#
            ),
            Ok(Submission::Enterprise { .. })
        ));
        for bad in [
            r#"{"kind":"person","real_name":"张三","id_number":"11010519491231002X","admin":true}"#,
            r#"{"kind":"person","real_name":"张三","id_number":"11010519491231002X","credit_code":"x"}"#,
            r#"{"kind":"enterprise","company_name":"风郎","credit_code":"x","verified":true}"#,
            r#"{"kind":"robot","real_name":"张三","id_number":"1"}"#,
            r#"{"real_name":"张三","id_number":"11010519491231002X"}"#,
            r#"{"kind":"person","real_name":"张三"}"#,
            r#"{"kind":"person","real_name":"张三","id_number":18}"#,
        ] {
            let e = parse(bad).map(drop).unwrap_err();
            assert!(e.is_data(), "{bad}: {e}");
        }
        let e = parse(r#"{"kind":"person","real_name":"张三","id_number":"1","x":1}"#)
            .map(drop)
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `x`"), "{e}");
    }

    #[test]
    fn validation_names_the_field_and_hides_the_values() {
        let s = parse(r#"{"kind":"person","real_name":"张三","id_number":"110105194912310021"}"#)
            .unwrap();
        assert_eq!(format!("{s:?}"), "Submission::Person(..)");
        let e = s.validate().unwrap_err();
        assert!(matches!(e, Error::Invalid { ref field, .. } if field == "id_number"));
        let s = parse(
            r#"{"kind":"enterprise","company_name":"公","credit_code":"91350100M000100Y43"}"#,
        )
        .unwrap();
        assert!(
            matches!(s.validate(), Err(Error::Invalid { ref field, .. }) if field == "company_name")
        );
        let s = parse(r#"{"kind":"person","real_name":"张三","id_number":"11010519491231002x"}"#)
            .unwrap();
        assert_eq!(s.validate().unwrap().number(), "11010519491231002X");
    }

    #[test]
    fn the_daily_limit_resets_at_utc_midnight() {
        assert_eq!(secs_to_midnight(0), 86_400);
        assert_eq!(secs_to_midnight(86_399), 1);
        assert_eq!(secs_to_midnight(86_400 + 3_600), 82_800);
    }
}
