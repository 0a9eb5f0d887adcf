//! Real-name verification (privacy policy §二(一)2): a member submits a person's name and resident
//! ID number, or a company's name and unified social credit code; the verifier checks them; a
//! verified member carries the `verified` badge that publishing requires.
//!
//! States: `pending → verified | rejected(reason)`. A submission while one is pending or after
//! one was verified is refused (409); after a rejection a new submission replaces the record.
//! A pending attempt is settled by the verification job ([`recheck_due`], run on a schedule),
//! which asks the verifier again with the same attempt id, backing off between asks; reads never
//! call the verifier. Settling is a write conditioned on the record still being that pending
//! attempt, so it happens once, and a verification sets the member's badge in the same
//! transaction.
//!
//! One identity verifies at most a configured number of accounts (`RENJI_ID_MAX_ACCOUNTS` for an
//! ID number, `RENJI_CREDIT_CODE_MAX_ACCOUNTS` for a credit code; 1 each by default): a claim
//! counter keyed by an HMAC of the number ([`KeyRing::tag`], never the number) grows under the
//! condition `n < max` in the transaction that verifies. A submission checks the same condition
//! when it is counted, so a number already used up is refused at once (409 `identity_in_use`,
//! nothing written, no check paid for), and again in the transaction that records it with the
//! verifier's answer: one that loses the race to another account's verification is the same 409,
//! nothing of it written and its count given back. When two accounts with one number are pending
//! together, the one the job settles second is rejected.
//!
//! Store layout ([`keys::verification`], [`keys::verification_listed`],
//! [`keys::verification_day`], [`keys::identity_claim`]):
//! - `USER#<id> / VERIFICATION`: the latest attempt. Name and number are stored only sealed
//!   (`pii.rs`) beside their displayed forms (a masked number; a person's masked name, a
//!   company's name in full, as it is public registry data). While pending it is in the index
//!   partition `gsi1pk = VERIFY#pending`, `gsi1sk = <next check, epoch seconds, 12 digits>#<id>`,
//!   which the job reads in order of due time.
//! - `USER#<id> / VERIFICATION_DAY#<yyyy-mm-dd>`: that UTC day's submissions, a capped counter
//!   written before the verifier is asked (each check costs money); `ttl` removes it.
//! - `IDCLAIM#<tag> / IDCLAIM`: how many accounts the identity verifies (`n`).

use std::time::{Duration, Instant};

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use super::identity::{mask_number, CompanyName, CreditCode, RealName, ResidentId};
use super::members::{now_rfc3339, VerifiedAs};
use crate::app::App;
use crate::domain::audit::{self, Actor, AuditRecord, Target};
use crate::error::Error;
use crate::ids::UserId;
use crate::pii::{KeyRing, Sealed};
use crate::store::schema::GSI1;
use crate::store::{keys, Condition, Item, Key, Query, Record, Records, SortKey};
use crate::store::{StoreError, Write};
use crate::verifier::{Decision, Subject, Verifier};

/// Field names in the sealed values' associated data.
pub const NAME_FIELD: &str = "verification.name";
const NUMBER_FIELD: &str = "verification.number";
const DAY_SECS: i64 = 24 * 3600;
/// Rechecks back off by doubling up to this wait (or the configured interval, if longer).
const MAX_RECHECK_SECS: i64 = 3600;

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
    /// While pending: when the job asks the verifier next (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_at: Option<i64>,
    /// While pending: how often the job has asked the verifier.
    #[serde(default)]
    pub rechecks: u32,
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

    /// The stored item: while pending, listed in `gsi1` by when it is due.
    fn item(&self, member: &UserId) -> Result<Item, Error> {
        let listed = match (self.status, self.next_check_at) {
            (Status::Pending, Some(at)) => Some(keys::verification_listed(at, member)),
            _ => None,
        };
        self.to_item(keys::verification(member), listed)
    }

    /// Holds while the stored record is still this pending attempt.
    fn still_pending(&self) -> Condition {
        Condition::All(vec![
            Condition::Equals("status".into(), json!(Status::Pending)),
            Condition::Equals("attempt_id".into(), json!(self.attempt_id)),
        ])
    }
}

impl Record for Verification {
    const KIND: &'static str = "verification";
}

fn conflict() -> Error {
    Error::Conflict {
        code: "verification_exists",
        message: "a verification is already pending or verified".into(),
    }
}

fn identity_in_use(kind: VerifiedAs) -> Error {
    Error::Conflict {
        code: "identity_in_use",
        message: match kind {
            VerifiedAs::Person => "this ID number already verifies another account",
            VerifiedAs::Enterprise => "this credit code already verifies another account",
        }
        .into(),
    }
}

/// What a verification rejected because its identity was used up meanwhile shows.
const IN_USE_REASON: &str = "these details already verify another account";

/// The PII keys and the verifier, both ready: their secrets read (a 503 before anything is
/// written when one cannot be).
async fn parts(app: &App) -> Result<(Arc<KeyRing>, &dyn Verifier), Error> {
    let verifier = app
        .verifier
        .as_deref()
        .ok_or_else(|| Error::Config("RENJI_VERIFIER_URL is not set for this function".into()))?;
    let ring = app.pii().await?;
    verifier.ready().await?;
    Ok((ring, verifier))
}

/// The claim counter of the identity `subject` names, and how many accounts it may verify.
fn claim(app: &App, ring: &KeyRing, subject: &Subject) -> Result<(Key, i64), Error> {
    let kid = app
        .config
        .id_claim_key
        .as_deref()
        .unwrap_or_else(|| ring.active_kid());
    let (context, max) = match subject.kind() {
        VerifiedAs::Person => ("identity-claim/person", app.config.max_accounts.person),
        VerifiedAs::Enterprise => (
            "identity-claim/enterprise",
            app.config.max_accounts.enterprise,
        ),
    };
    let tag = ring
        .tag(kid, context, subject.number())
        .map_err(|e| Error::Config(format!("RENJI_ID_CLAIM_KEY: {e}")))?;
    Ok((keys::identity_claim(&tag), i64::from(max)))
}

/// Account deletion (`domain::deletion`): the identity-claim counter a verified record counted,
/// found from its sealed number (the tag is derived, never stored); `None` for a record that
/// never counted (not verified).
pub fn counted_claim(
    app: &App,
    ring: &KeyRing,
    member: &UserId,
    record: &Verification,
) -> Result<Option<Key>, Error> {
    if record.status != Status::Verified {
        return Ok(None);
    }
    let number = ring
        .open(member, NUMBER_FIELD, &record.number_sealed)
        .map_err(|e| Error::Internal(format!("verification number unreadable: {e}")))?;
    let kid = app
        .config
        .id_claim_key
        .as_deref()
        .unwrap_or_else(|| ring.active_kid());
    let context = match record.kind {
        VerifiedAs::Person => "identity-claim/person",
        VerifiedAs::Enterprise => "identity-claim/enterprise",
    };
    let tag = ring
        .tag(kid, context, &number)
        .map_err(|e| Error::Config(format!("RENJI_ID_CLAIM_KEY: {e}")))?;
    Ok(Some(keys::identity_claim(&tag)))
}

/// What a verified member was verified as, and the verified name opened (a person's legal name,
/// a company's registered name): for the payout account, whose receiver carries the name the
/// provider checks. `None` while the member is not verified.
pub async fn verified_name(
    app: &App,
    member: &UserId,
) -> Result<Option<(VerifiedAs, String)>, Error> {
    let Some(record) = current(app, member).await? else {
        return Ok(None);
    };
    if record.status != Status::Verified {
        return Ok(None);
    }
    let ring = app.pii().await?;
    let name = ring
        .open(member, NAME_FIELD, &record.name_sealed)
        .map_err(|e| Error::Internal(format!("verification name unreadable: {e}")))?;
    Ok(Some((record.kind, name)))
}

async fn current(app: &App, member: &UserId) -> Result<Option<Verification>, Error> {
    app.store.get_record(&keys::verification(member)).await
}

/// Seconds from `now` to the next UTC midnight, when the daily count starts again.
fn secs_to_midnight(now: i64) -> u64 {
    (DAY_SECS - now.rem_euclid(DAY_SECS)).unsigned_abs()
}

/// The wait before the job's next ask, after it has asked `rechecks` times: the configured
/// interval, doubling each time, at most an hour (or the interval, if longer).
fn backoff(interval: Duration, rechecks: u32) -> i64 {
    let base = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
    let cap = base.max(MAX_RECHECK_SECS);
    base.saturating_mul(1_i64 << rechecks.min(20)).min(cap)
}

/// Counts a new attempt against the daily limit (refused when its identity already verifies as
/// many accounts as allowed, or the member has one pending or verified), asks the verifier, and
/// records the attempt with its answer in one transaction: pending when the verifier has not
/// decided or is unavailable. The answer is the record.
///
/// Recording checks the identity again (a verification counts it): when another account's
/// submission of the same number verified while the verifier was being asked, this one answers
/// 409 `identity_in_use` like a number used up before, nothing of it written and its count given
/// back.
pub async fn submit(app: &App, member: &UserId, subject: Subject) -> Result<Verification, Error> {
    let (ring, verifier) = parts(app).await?;
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
    let day_key = keys::verification_day(member, &day);
    let count = Write::update(day_key.clone())
        .add("n", 1)
        .set("ttl", now.unix_timestamp() + 2 * DAY_SECS)
        .condition(Condition::Under("n".into(), limit), "daily_limit")
        .build();
    let (claim_key, max_accounts) = claim(app, &ring, &subject)?;
    let available = || {
        Write::check(
            claim_key.clone(),
            Condition::Under("n".into(), max_accounts),
            "identity_available",
        )
    };

    // Counted before the verifier is asked (each check costs money), with the checks the
    // submission must pass; nothing of the attempt is stored yet.
    let checked = app
        .store
        .transact(vec![
            count,
            Write::check(keys::verification(member), replaces.clone(), "replaceable"),
            available(),
        ])
        .await;
    match checked {
        Ok(()) => {}
        Err(StoreError::ConditionFailed {
            label: "daily_limit",
        }) => return Err(limited),
        Err(StoreError::ConditionFailed {
            label: "replaceable",
        }) => return Err(conflict()),
        Err(StoreError::ConditionFailed {
            label: "identity_available",
        }) => return Err(identity_in_use(subject.kind())),
        Err(e) => return Err(e.into()),
    }

    let mut record = Verification {
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
        // Due for the job's first ask after one interval, should the verifier not decide now.
        next_check_at: Some(now.unix_timestamp() + backoff(app.config.verification_recheck, 0)),
        rechecks: 0,
    };
    // The member's `verification.submit`, audited in the transaction that records the attempt
    // (so only when it is recorded; no detail of the attempt but that it was made).
    let audit = AuditRecord::by(
        Actor::Member(member.clone()),
        now,
        "verification.submit",
        Target::member(member),
        None,
        "ok",
    );
    let mut writes = audit::writes(&audit, app.config.audit_keep)?;
    match ask(verifier, &record, &subject).await {
        Some((status, reason)) => {
            let decided_at = now_rfc3339();
            writes.extend(decision_writes(
                app,
                member,
                &subject,
                status,
                &decided_at,
                (&claim_key, max_accounts),
            )?);
            record = Verification {
                status,
                reason,
                decided_at: Some(decided_at),
                next_check_at: None,
                ..record
            };
        }
        // Left to the job; a number used up meanwhile is refused now rather than by it.
        None => writes.push(available()),
    }
    writes.push(Write::put_if(record.item(member)?, replaces, "replaceable"));
    match app.store.transact(writes).await {
        Ok(()) => {
            tracing::info!(user_id = %member, attempt_id = %record.attempt_id, status = ?record.status, "verification submitted");
            Ok(record)
        }
        Err(StoreError::ConditionFailed {
            label: "identity_available",
        }) => {
            tracing::info!(user_id = %member, attempt_id = %record.attempt_id, "identity verified another account meanwhile");
            // Its count given back: a lost race is not one of the member's attempts. Should that
            // fail, the 409 still holds (the member has one attempt fewer today).
            let give_back = Write::update(day_key)
                .add("n", -1)
                .condition(Condition::Present, "counted")
                .build();
            if let Err(e) = app.store.transact(vec![give_back]).await {
                tracing::warn!(user_id = %member, error = %e, "a lost verification race's count not given back");
            }
            Err(identity_in_use(record.kind))
        }
        // Another submission of the member's got in first (this one's check was paid: counted).
        Err(StoreError::ConditionFailed {
            label: "replaceable",
        }) => Err(conflict()),
        Err(StoreError::ConditionFailed {
            label: "member_exists",
        }) => Err(Error::NotFound("member")),
        Err(e) => Err(e.into()),
    }
}

/// The member's latest attempt, as stored (reads never call the verifier; the job does).
pub async fn status(app: &App, member: &UserId) -> Result<Verification, Error> {
    current(app, member)
        .await?
        .ok_or(Error::NotFound("verification"))
}

/// The verifier's final answer about a pending attempt, or `None` while it has none (it said
/// pending, or it is unavailable).
async fn ask(
    verifier: &dyn Verifier,
    record: &Verification,
    subject: &Subject,
) -> Option<(Status, Option<String>)> {
    let decision = match verifier.verify(subject, &record.attempt_id).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(attempt_id = %record.attempt_id, error = ?e, "verifier unavailable");
            Decision::Pending
        }
    };
    match decision {
        Decision::Pending => None,
        Decision::Verified => Some((Status::Verified, None)),
        // A reason quoting the details would store them in the clear: keep a generic one.
        Decision::Rejected { reason }
            if reason.contains(subject.number()) || reason.contains(subject.name()) =>
        {
            Some((
                Status::Rejected,
                Some("the identity service did not verify these details".to_owned()),
            ))
        }
        Decision::Rejected { reason } => Some((Status::Rejected, Some(reason))),
    }
}

/// What a decision writes beside the record: its audit (the system's: the verifier's answer,
/// whether the submission or the job got it, in the member's target list), and for a
/// verification the member's badge and one more account on the identity's claim, under the
/// condition that it has room (`identity_available`).
fn decision_writes(
    app: &App,
    member: &UserId,
    subject: &Subject,
    status: Status,
    now: &str,
    (claim_key, max_accounts): (&Key, i64),
) -> Result<Vec<Write>, Error> {
    let outcome = AuditRecord::by(
        Actor::System,
        OffsetDateTime::now_utc(),
        match status {
            Status::Verified => "verification.verified",
            _ => "verification.rejected",
        },
        Target::member(member),
        None,
        "ok",
    );
    let mut writes = audit::writes(&outcome, app.config.audit_keep)?;
    if status == Status::Verified {
        let mut badge = Write::update(keys::member(member))
            .set("verified", json!(subject.kind()))
            .set("updated_at", now);
        // The minors gate (`consents::is_minor`) needs the age, not the number: a person's
        // verification stores that the age is checked and, for someone under 14 only, the day
        // they turn 14 — never the number or the birth date.
        if let Subject::Person { number, .. } = subject {
            badge = badge.set("age_checked", true);
            match number.birth_date().and_then(|birth| {
                super::consents::verified_age_facts(birth, super::profile::today())
            }) {
                Some(until) => badge = badge.set("minor_until", until),
                None => badge = badge.remove("minor_until"),
            }
        }
        writes.push(badge.condition(Condition::Present, "member_exists").build());
        writes.push(
            Write::update(claim_key.clone())
                .add("n", 1)
                .condition(
                    Condition::Under("n".into(), max_accounts),
                    "identity_available",
                )
                .build(),
        );
    }
    Ok(writes)
}

/// Records the job's final answer about a pending attempt, once. A verification also sets the
/// member's badge and counts the account against its identity's claim; when the identity was used
/// up since the attempt was recorded, the attempt is rejected instead (it is on record already).
async fn settle(
    app: &App,
    member: &UserId,
    record: Verification,
    subject: &Subject,
    status: Status,
    reason: Option<String>,
) -> Result<Verification, Error> {
    let now = now_rfc3339();
    let mut decided = Write::update(keys::verification(member))
        .set("status", json!(status))
        .set("decided_at", now.as_str())
        .remove("next_check_at")
        .remove("gsi1pk")
        .remove("gsi1sk")
        .condition(record.still_pending(), "still_pending");
    if let Some(reason) = &reason {
        decided = decided.set("reason", reason.as_str());
    }
    let mut writes = vec![decided.build()];
    let ring = app.pii().await?;
    let (claim_key, max_accounts) = claim(app, &ring, subject)?;
    writes.extend(decision_writes(
        app,
        member,
        subject,
        status,
        &now,
        (&claim_key, max_accounts),
    )?);
    match app.store.transact(writes).await {
        Ok(()) => {
            tracing::info!(user_id = %member, attempt_id = %record.attempt_id, status = ?status, "verification decided");
            Ok(Verification {
                status,
                reason,
                decided_at: Some(now),
                next_check_at: None,
                ..record
            })
        }
        Err(StoreError::ConditionFailed {
            label: "identity_available",
        }) => {
            tracing::info!(user_id = %member, attempt_id = %record.attempt_id, "identity already verifies enough accounts");
            Box::pin(settle(
                app,
                member,
                record,
                subject,
                Status::Rejected,
                Some(IN_USE_REASON.to_owned()),
            ))
            .await
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

/// Puts off the next ask of a pending attempt (doubling the wait), unless it changed meanwhile.
async fn reschedule(
    app: &App,
    member: &UserId,
    record: &Verification,
    now: i64,
) -> Result<(), Error> {
    let rechecks = record.rechecks.saturating_add(1);
    let next = now + backoff(app.config.verification_recheck, rechecks);
    let mut condition = vec![record.still_pending()];
    if let Some(at) = record.next_check_at {
        condition.push(Condition::Equals(
            "gsi1sk".into(),
            json!(keys::verification_listed(at, member).sk),
        ));
    }
    let listed = keys::verification_listed(next, member);
    let write = Write::update(keys::verification(member))
        .set("next_check_at", next)
        .set("rechecks", rechecks)
        .set("gsi1pk", listed.pk)
        .set("gsi1sk", listed.sk)
        .condition(Condition::All(condition), "still_due")
        .build();
    match app.store.write(write).await {
        // Settled or put off by another run meanwhile: nothing left to do.
        Ok(_) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The name and number of a stored attempt, opened.
fn subject_of(ring: &KeyRing, member: &UserId, record: &Verification) -> Result<Subject, Error> {
    let name = ring.open(member, NAME_FIELD, &record.name_sealed)?;
    let number = ring.open(member, NUMBER_FIELD, &record.number_sealed)?;
    let unreadable = |_| Error::Internal("stored verification details unreadable".into());
    Ok(match record.kind {
        VerifiedAs::Person => Subject::Person {
            name: RealName::parse(&name).map_err(unreadable)?,
            number: ResidentId::parse(&number).map_err(unreadable)?,
        },
        VerifiedAs::Enterprise => Subject::Enterprise {
            name: CompanyName::parse(&name).map_err(unreadable)?,
            number: CreditCode::parse(&number).map_err(unreadable)?,
        },
    })
}

/// How much one run of [`recheck_due`] may do.
#[derive(Clone, Copy, Debug)]
pub struct RunBudget {
    /// Attempts examined at most.
    pub max_attempts: usize,
    /// No attempt is started after this long (the verifier answers within 5 s).
    pub time: Duration,
}

impl Default for RunBudget {
    fn default() -> Self {
        RunBudget {
            max_attempts: 25,
            time: Duration::from_secs(30),
        }
    }
}

/// What one run of [`recheck_due`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Attempts due that this run examined.
    pub examined: usize,
    /// Decided (verified or rejected).
    pub settled: usize,
    /// Still pending: asked again later.
    pub rescheduled: usize,
    /// Already settled, or not yet due on a consistent read.
    pub skipped: usize,
    /// Failed here (logged); put off like a pending answer, so they cannot block the queue.
    pub failed: usize,
    /// More attempts are due than this run examined.
    pub more: bool,
}

/// The verification job: asks the verifier again about pending attempts whose time has come,
/// earliest first, and settles or puts off each. Idempotent and resumable: every write is
/// conditioned on the attempt still being pending as read, and what is left is found by the
/// next run. Reads one index partition, never scans.
pub async fn recheck_due(app: &App, budget: RunBudget) -> Result<RunReport, Error> {
    let started = Instant::now();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (ring, verifier) = parts(app).await?;
    let page = app
        .store
        .query(
            Query::partition(keys::PENDING_VERIFICATIONS)
                .index(GSI1)
                .sort(SortKey::Below(keys::due(now + 1)))
                .limit(budget.max_attempts),
        )
        .await?;
    let mut report = RunReport {
        more: page.next.is_some(),
        ..RunReport::default()
    };
    for entry in page.items {
        if started.elapsed() >= budget.time {
            report.more = true;
            break;
        }
        report.examined += 1;
        let Some(member) = Key::of(&entry).and_then(|key| keys::user_of(&key.pk)) else {
            tracing::error!("pending verification entry without a member");
            report.failed += 1;
            continue;
        };
        // The index may lag: decide on a consistent read of the record.
        let record = match current(app, &member).await {
            Ok(Some(r)) if r.status == Status::Pending && r.next_check_at.unwrap_or(0) <= now => r,
            Ok(_) => {
                report.skipped += 1;
                continue;
            }
            Err(e) => {
                tracing::warn!(user_id = %member, error = %e, "pending verification unreadable");
                report.failed += 1;
                continue;
            }
        };
        let outcome = async {
            let subject = subject_of(&ring, &member, &record)?;
            match ask(verifier, &record, &subject).await {
                Some((status, reason)) => {
                    settle(app, &member, record.clone(), &subject, status, reason).await?;
                    Ok::<bool, Error>(true)
                }
                None => Ok(false),
            }
        }
        .await;
        match outcome {
            Ok(true) => report.settled += 1,
            Ok(false) => {
                reschedule(app, &member, &record, now).await?;
                report.rescheduled += 1;
            }
            Err(e) => {
                tracing::error!(user_id = %member, attempt_id = %record.attempt_id, error = %e, "pending verification not settled");
                report.failed += 1;
                if let Err(e) = reschedule(app, &member, &record, now).await {
                    tracing::warn!(user_id = %member, error = %e, "pending verification not put off");
                }
            }
        }
    }
    tracing::info!(
        examined = report.examined,
        settled = report.settled,
        rescheduled = report.rescheduled,
        skipped = report.skipped,
        failed = report.failed,
        more = report.more,
        "verification recheck run"
    );
    Ok(report)
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
    fn rechecks_back_off_by_doubling_up_to_an_hour() {
        let minute = Duration::from_secs(60);
        let waits: Vec<i64> = (0..9).map(|n| backoff(minute, n)).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(backoff(minute, u32::MAX), 3600);
        assert_eq!(backoff(Duration::from_secs(7200), 3), 7200);
        assert_eq!(backoff(Duration::ZERO, 5), 0);
        // Due keys sort by time, as the job reads them.
        let m = UserId::generate();
        let due = |at| keys::verification_listed(at, &m).sk;
        assert!(due(99) < due(100));
        assert!(due(100) < keys::due(101));
        assert!(due(101) > keys::due(101));
    }

    #[test]
    fn the_daily_limit_resets_at_utc_midnight() {
        assert_eq!(secs_to_midnight(0), 86_400);
        assert_eq!(secs_to_midnight(86_399), 1);
        assert_eq!(secs_to_midnight(86_400 + 3_600), 82_800);
    }
}
