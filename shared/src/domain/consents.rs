//! Consents (privacy policy §六), the optional processing a member may withdraw (§四(四)) and the
//! guardian's consent a minor needs (§七).
//!
//! - **Policy documents** (`privacy_policy`, `terms`): the current version of each comes from
//!   configuration (`RENJI_POLICY_VERSIONS`, `major.minor`). `POST /v1/me/consents {document,
//!   version}` accepts the current version only (422 naming `version` otherwise). Each acceptance
//!   is its own record (`USER#<id> / CONSENT#<time-ordered id>`: document, version, time — the
//!   proof of consent; no IP), and the member record keeps a summary (`consent_privacy_policy`,
//!   `consent_terms`: the version accepted last and when), so `GET /v1/me` says in one read which
//!   documents must be accepted again: those whose current *major* version the member has not
//!   accepted (a minor bump needs nothing).
//! - **Scopes** (`location`, `personalization`, `marketing`): opt-in. Granted with `POST
//!   /v1/me/consents {scope}`, withdrawn with `DELETE /v1/me/consents/{scope}` (204, idempotent;
//!   an unknown scope is 404, as an unknown id is). The state is on the member record
//!   (`scope_<name>`: when granted), each change also a `CONSENT#…` record. Every feature that
//!   does optional processing asks [`allows`]. Withdrawing `location` deletes the stored position
//!   in the same transaction ([`keys::member_location`]).
//! - **Minors**: a member under 14 — by the identity number's birth date when verified as a
//!   person (the verification stores only `age_checked` and, for a minor, `minor_until`: the day
//!   they turn 14), else by the profile's `birth_date` — needs a guardian's consent before
//!   publishing a listing or ordering ([`require_guardian`], 403 `guardian_consent_required`).
//!   `POST /v1/me/guardian-consent` seals the guardian's name and relationship with the PII keys
//!   (as verification seals identity data) into `USER#<id> / GUARDIAN_CONSENT` and sets
//!   `guardian_consent_at` on the member.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::{Date, Month, OffsetDateTime};

use super::audit::{self, Actor, AuditRecord, Target};
use super::members::{now_rfc3339, rfc3339, Member};
use super::profile::{bounded_text_between, today};
use crate::error::Error;
use crate::geo::Location;
use crate::ids::UserId;
use crate::pii::{KeyRing, Sealed};
use crate::store::{keys, Condition, DynStore, Item, Record, StoreError, Write};

/// A policy document a member accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Document {
    PrivacyPolicy,
    Terms,
}

impl Document {
    pub const ALL: [Document; 2] = [Document::PrivacyPolicy, Document::Terms];

    pub fn as_str(self) -> &'static str {
        match self {
            Document::PrivacyPolicy => "privacy_policy",
            Document::Terms => "terms",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// Optional processing the member may grant and withdraw (§四(四)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Location-based recommendations: the coarse last position `near=me` uses.
    Location,
    /// Personalised content.
    Personalization,
    /// Marketing messages (subscribe messages about one's orders are service notices, not this).
    Marketing,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Location, Scope::Personalization, Scope::Marketing];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Location => "location",
            Scope::Personalization => "personalization",
            Scope::Marketing => "marketing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The member record's attribute holding when it was granted.
    pub fn attribute(self) -> &'static str {
        match self {
            Scope::Location => "scope_location",
            Scope::Personalization => "scope_personalization",
            Scope::Marketing => "scope_marketing",
        }
    }
}

/// A document version, `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    pub fn parse(text: &str) -> Option<Self> {
        let (major, minor) = text.split_once('.')?;
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        Some(Version {
            major: number(major)?,
            minor: number(minor)?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text).ok_or_else(|| serde::de::Error::custom("not a major.minor version"))
    }
}

/// The current version of each document (`RENJI_POLICY_VERSIONS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyVersions {
    pub privacy_policy: Version,
    pub terms: Version,
}

pub const DEFAULT_POLICY_VERSIONS: &str = "privacy_policy=1.0,terms=1.0";

impl Default for PolicyVersions {
    fn default() -> Self {
        let one = Version { major: 1, minor: 0 };
        PolicyVersions {
            privacy_policy: one,
            terms: one,
        }
    }
}

impl PolicyVersions {
    /// `privacy_policy=1.0,terms=1.0`: each document exactly once, each `major.minor`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (mut privacy_policy, mut terms) = (None, None);
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, version) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not document=major.minor"))?;
            let document = Document::parse(name.trim())
                .ok_or_else(|| format!("{:?} is not privacy_policy or terms", name.trim()))?;
            let version = Version::parse(version.trim())
                .ok_or_else(|| format!("{:?} is not a major.minor version", version.trim()))?;
            let slot = match document {
                Document::PrivacyPolicy => &mut privacy_policy,
                Document::Terms => &mut terms,
            };
            if slot.replace(version).is_some() {
                return Err(format!("{} is given twice", document.as_str()));
            }
        }
        Ok(PolicyVersions {
            privacy_policy: privacy_policy.ok_or("privacy_policy is missing")?,
            terms: terms.ok_or("terms is missing")?,
        })
    }

    pub fn current(&self, document: Document) -> Version {
        match document {
            Document::PrivacyPolicy => self.privacy_policy,
            Document::Terms => self.terms,
        }
    }
}

/// The summary of one document on the member record: the version accepted last, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub version: Version,
    pub at: String,
}

impl Member {
    /// The member's last acceptance of `document`.
    pub fn accepted(&self, document: Document) -> Option<&Accepted> {
        match document {
            Document::PrivacyPolicy => self.consent_privacy_policy.as_ref(),
            Document::Terms => self.consent_terms.as_ref(),
        }
    }

    /// When `scope` was granted, while it is.
    pub fn granted(&self, scope: Scope) -> Option<&str> {
        match scope {
            Scope::Location => self.scope_location.as_deref(),
            Scope::Personalization => self.scope_personalization.as_deref(),
            Scope::Marketing => self.scope_marketing.as_deref(),
        }
    }
}

/// Whether the member allows the optional processing `scope`. Every feature that does such
/// processing (location-based or personalised recommendations, marketing messages) asks this
/// first; withdrawal takes effect at the next request.
pub fn allows(member: &Member, scope: Scope) -> bool {
    member.granted(scope).is_some()
}

/// The documents whose current major version the member has not accepted (none accepted counts).
pub fn required(member: &Member, current: &PolicyVersions) -> Vec<Value> {
    Document::ALL
        .into_iter()
        .filter(|&d| {
            member
                .accepted(d)
                .is_none_or(|a| a.version.major < current.current(d).major)
        })
        .map(|d| json!({"document": d, "version": current.current(d)}))
        .collect()
}

/// `GET /v1/me/consents`.
pub fn view(member: &Member, current: &PolicyVersions) -> Value {
    let documents: Vec<Value> = Document::ALL
        .into_iter()
        .map(|d| {
            let accepted = member.accepted(d);
            json!({
                "document": d,
                "current_version": current.current(d),
                "accepted_version": accepted.map(|a| a.version),
                "accepted_at": accepted.map(|a| a.at.as_str()),
                "required": accepted.is_none_or(|a| a.version.major < current.current(d).major),
            })
        })
        .collect();
    let scopes: Vec<Value> = Scope::ALL
        .into_iter()
        .map(|s| {
            json!({
                "scope": s,
                "granted": member.granted(s).is_some(),
                "granted_at": member.granted(s),
            })
        })
        .collect();
    json!({
        "documents": documents,
        "consent_required": required(member, current),
        "scopes": scopes,
        "guardian_consent_required": guardian_consent_required(member, today()),
        "guardian_consent_at": member.guardian_consent_at,
    })
}

/// `POST /v1/me/consents`: exactly one of the two forms.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    #[serde(default)]
    pub document: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// What a `POST /v1/me/consents` asks for, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consent {
    Document(Document, Version),
    Scope(Scope),
}

impl ConsentBody {
    /// 422 naming the field: an unknown document or scope, a version other than the current
    /// one, or a body that is neither form (or both).
    pub fn validate(self, current: &PolicyVersions) -> Result<Consent, Error> {
        match (self.document, self.version, self.scope) {
            (Some(document), Some(version), None) => {
                let document = Document::parse(&document)
                    .ok_or_else(|| Error::invalid("document", "must be privacy_policy or terms"))?;
                let now = current.current(document);
                // The version as written: `01.0` names no version a member was shown.
                match Version::parse(&version) {
                    Some(v) if v == now && v.to_string() == version => {
                        Ok(Consent::Document(document, v))
                    }
                    _ => Err(Error::invalid(
                        "version",
                        format!(
                            "must be the current version of {}, {now}",
                            document.as_str()
                        ),
                    )),
                }
            }
            (None, None, Some(scope)) => {
                Scope::parse(&scope).map(Consent::Scope).ok_or_else(|| {
                    Error::invalid("scope", "must be location, personalization or marketing")
                })
            }
            (Some(_), None, None) => Err(Error::invalid("version", "is required with document")),
            (None, Some(_), None) => Err(Error::invalid("document", "is required with version")),
            (None, None, None) => Err(Error::invalid(
                "document",
                "send {document, version} or {scope}",
            )),
            (_, _, Some(_)) => Err(Error::invalid(
                "scope",
                "is sent alone, not with document or version",
            )),
        }
    }
}

/// One consent event as kept (the proof of consent): what, which version, when. No IP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// `accept` (a document), `grant` or `withdraw` (a scope).
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Document>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    pub at: String,
}

impl Record for ConsentRecord {
    const KIND: &'static str = "consent";
}

fn member_gone(e: StoreError) -> Error {
    match e {
        StoreError::ConditionFailed {
            label: "member_exists",
        } => Error::NotFound("member"),
        other => other.into(),
    }
}

/// The member, or 404 when the record is gone.
pub async fn member(store: &DynStore, id: &UserId) -> Result<Member, Error> {
    super::members::get(store, id)
        .await?
        .ok_or(Error::NotFound("member"))
}

fn audited(id: &UserId, action: &str, target: &str, keep: Duration) -> Result<Vec<Write>, Error> {
    let record = AuditRecord::by(
        Actor::Member(id.clone()),
        OffsetDateTime::now_utc(),
        action,
        Target::new("consent", target).unwrap_or_else(|| Target::member(id)),
        None,
        "ok",
    );
    audit::writes(&record, keep)
}

/// Records a consent for `member` (as read with the session; updated here to what was written):
/// a document's acceptance (always a new record; the summary moves to it) or a scope's grant (a
/// new record only when it was not granted). Answers whether anything new was recorded.
pub async fn give(
    store: &DynStore,
    member: &mut Member,
    consent: Consent,
    audit_keep: Duration,
) -> Result<bool, Error> {
    let id = &member.id.clone();
    let now = now_rfc3339();
    let (record, summary, target) = match consent {
        Consent::Document(document, version) => (
            ConsentRecord {
                action: "accept".into(),
                document: Some(document),
                version: Some(version),
                scope: None,
                at: now.clone(),
            },
            (
                format!("consent_{}", document.as_str()),
                json!(Accepted {
                    version,
                    at: now.clone()
                }),
            ),
            format!("{}@{version}", document.as_str()),
        ),
        Consent::Scope(scope) => {
            if member.granted(scope).is_some() {
                return Ok(false);
            }
            (
                ConsentRecord {
                    action: "grant".into(),
                    document: None,
                    version: None,
                    scope: Some(scope),
                    at: now.clone(),
                },
                (scope.attribute().to_owned(), json!(now)),
                scope.as_str().to_owned(),
            )
        }
    };
    // A scope is granted once however many grants race: the member update requires it ungranted.
    let condition = match consent {
        Consent::Document(..) => Condition::Present,
        Consent::Scope(scope) => Condition::All(vec![
            Condition::Present,
            Condition::Lacks(scope.attribute().to_owned()),
        ]),
    };
    let mut writes = vec![
        Write::update(keys::member(id))
            .set(&summary.0, summary.1)
            .condition(condition, "member_exists")
            .build(),
        Write::put_if(
            record.to_item(keys::consent(id, &crate::ids::time_order()), None)?,
            Condition::Absent,
            "consent_new",
        ),
    ];
    writes.extend(audited(id, "consent.accept", &target, audit_keep)?);
    match store.transact(writes).await {
        // Granted meanwhile by a racing request (the member is there: it was just read).
        Err(StoreError::ConditionFailed {
            label: "member_exists",
        }) if matches!(consent, Consent::Scope(_)) => {
            let fresh = self::member(store, id).await?;
            if let Consent::Scope(scope) = consent {
                if fresh.granted(scope).is_some() {
                    *member = fresh;
                    return Ok(false);
                }
            }
            return Err(Error::NotFound("member"));
        }
        other => other.map_err(member_gone)?,
    }
    match consent {
        Consent::Document(document, version) => {
            let accepted = Some(Accepted { version, at: now });
            match document {
                Document::PrivacyPolicy => member.consent_privacy_policy = accepted,
                Document::Terms => member.consent_terms = accepted,
            }
        }
        Consent::Scope(scope) => *scope_slot(member, scope) = Some(now),
    }
    Ok(true)
}

fn scope_slot(member: &mut Member, scope: Scope) -> &mut Option<String> {
    match scope {
        Scope::Location => &mut member.scope_location,
        Scope::Personalization => &mut member.scope_personalization,
        Scope::Marketing => &mut member.scope_marketing,
    }
}

/// `DELETE /v1/me/consents/{scope}`: at once; withdrawing `location` deletes the stored position
/// in the same transaction. Idempotent: nothing is written when the scope is not granted.
pub async fn withdraw(
    store: &DynStore,
    member: &Member,
    scope: Scope,
    audit_keep: Duration,
) -> Result<(), Error> {
    let id = &member.id;
    if member.granted(scope).is_none() {
        return Ok(());
    }
    let record = ConsentRecord {
        action: "withdraw".into(),
        document: None,
        version: None,
        scope: Some(scope),
        at: now_rfc3339(),
    };
    let mut writes = vec![
        Write::update(keys::member(id))
            .remove(scope.attribute())
            .condition(Condition::Present, "member_exists")
            .build(),
        Write::put_if(
            record.to_item(keys::consent(id, &crate::ids::time_order()), None)?,
            Condition::Absent,
            "consent_new",
        ),
    ];
    if scope == Scope::Location {
        writes.push(Write::delete(keys::member_location(id)));
    }
    writes.extend(audited(id, "consent.withdraw", scope.as_str(), audit_keep)?);
    store.transact(writes).await.map_err(member_gone)
}

// The stored position (`location` scope).

/// The geohash length of a stored position: 5 characters, a cell of about 5 km × 5 km.
pub const POSITION_PRECISION: usize = 5;
/// How long a stored position is kept after it was last recorded.
pub const POSITION_KEEP: Duration = Duration::from_secs(30 * 86_400);
/// A position recorded again within this of its last recording is not written again.
const POSITION_REFRESH_SECS: i64 = 86_400;

/// A member's coarse last position: `USER#<id> / LOCATION`, while `location` is granted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPosition {
    pub geohash: String,
    pub recorded_at: String,
    pub ttl: i64,
}

impl Record for StoredPosition {
    const KIND: &'static str = "stored position";
}

impl StoredPosition {
    /// The centre of its cell, as `near` takes it (`lat,lng`); `None` when it is not a cell or
    /// its time is up (`ttl` deletion is lazy).
    pub fn near(&self, now: i64) -> Option<String> {
        if self.ttl <= now {
            return None;
        }
        let cell = crate::geo::Cell::of(&self.geohash)?;
        let (lat, lng) = (
            (cell.min_lat + cell.max_lat) / 2.0,
            (cell.min_lng + cell.max_lng) / 2.0,
        );
        Some(format!("{lat:.5},{lng:.5}"))
    }
}

/// Records the caller's coarse position from a nearby browse, when `location` is granted: a
/// transaction that checks the grant on the member record and puts the position; a refused check
/// (not granted) writes nothing. `stored` is the position read with the session: the same cell
/// recorded less than a day ago is not written again.
pub async fn record_position(
    store: &DynStore,
    id: &UserId,
    center: &Location,
    stored: Option<&StoredPosition>,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let geohash = center.geohash(POSITION_PRECISION);
    let ttl = now.unix_timestamp() + POSITION_KEEP.as_secs() as i64;
    if stored.is_some_and(|s| s.geohash == geohash && s.ttl - ttl > -POSITION_REFRESH_SECS) {
        return Ok(());
    }
    let position = StoredPosition {
        geohash,
        recorded_at: rfc3339(now),
        ttl,
    };
    let writes = vec![
        Write::check(
            keys::member(id),
            Condition::Has(Scope::Location.attribute().into()),
            "location_granted",
        ),
        Write::put(position.to_item(keys::member_location(id), None)?),
    ];
    match store.transact(writes).await {
        Ok(())
        | Err(StoreError::ConditionFailed {
            label: "location_granted",
        }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `near=me`: the stored position read with the session (`item`), or why there is none — 403
/// `consent_required` when `location` is not granted, 422 naming `near` when nothing is recorded.
pub async fn my_position(
    store: &DynStore,
    id: &UserId,
    item: Option<Item>,
    now: i64,
) -> Result<String, Error> {
    if let Some(near) = item
        .map(StoredPosition::from_item)
        .transpose()?
        .and_then(|p| p.near(now))
    {
        return Ok(near);
    }
    if !allows(&member(store, id).await?, Scope::Location) {
        return Err(Error::Denied {
            code: "consent_required",
            message: "near=me uses your stored position: grant the location scope first \
                      (POST /v1/me/consents {\"scope\":\"location\"})"
                .into(),
        });
    }
    Err(Error::invalid(
        "near",
        "no position is recorded yet: browse with near=lat,lng first",
    ))
}

// Minors (§七).

/// The age under which a guardian's consent is needed.
pub const MINOR_AGE: i32 = 14;

/// The day someone born on `birth` turns 14 (29 February → 1 March).
pub fn turns_14(birth: Date) -> Date {
    let year = birth.year() + MINOR_AGE;
    Date::from_calendar_date(year, birth.month(), birth.day())
        .or_else(|_| Date::from_calendar_date(year, Month::March, 1))
        .unwrap_or(Date::MAX)
}

/// The facts verification stores for the gate (never the number or the birth date): the
/// `minor_until` day only for someone still under 14 on `today`.
pub fn verified_age_facts(birth: Date, today: Date) -> Option<String> {
    let until = turns_14(birth);
    (until > today).then(|| date_text(until))
}

fn date_text(date: Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    date.format(format).unwrap_or_default()
}

/// Whether the member is under 14 on `today`: by the verified identity when verified as a person
/// (a verified adult wins over any profile birth date), else by the profile's birth date.
pub fn is_minor(member: &Member, today: Date) -> bool {
    if member.age_checked {
        return member
            .minor_until
            .as_deref()
            .and_then(crate::dates::parse_day)
            .is_some_and(|until| until > today);
    }
    member
        .birth_date
        .as_deref()
        .and_then(crate::dates::parse_day)
        .is_some_and(|birth| turns_14(birth) > today)
}

/// Whether the member must have a guardian's consent recorded before publishing or buying.
pub fn guardian_consent_required(member: &Member, today: Date) -> bool {
    is_minor(member, today) && member.guardian_consent_at.is_none()
}

/// The minors gate of publishing and ordering: 403 `guardian_consent_required`.
pub fn require_guardian(member: &Member) -> Result<(), Error> {
    if guardian_consent_required(member, today()) {
        return Err(Error::Denied {
            code: "guardian_consent_required",
            message: "members under 14 need a guardian's consent first \
                      (POST /v1/me/guardian-consent)"
                .into(),
        });
    }
    Ok(())
}

/// A guardian's relationship to the minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    Parent,
    Guardian,
    Grandparent,
    Sibling,
    OtherRelative,
}

impl Relationship {
    const ALL: [Relationship; 5] = [
        Relationship::Parent,
        Relationship::Guardian,
        Relationship::Grandparent,
        Relationship::Sibling,
        Relationship::OtherRelative,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Relationship::Parent => "parent",
            Relationship::Guardian => "guardian",
            Relationship::Grandparent => "grandparent",
            Relationship::Sibling => "sibling",
            Relationship::OtherRelative => "other_relative",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// `POST /v1/me/guardian-consent`. `Debug` hides the details.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardianBody {
    pub guardian_name: String,
    pub relationship: String,
}

impl fmt::Debug for GuardianBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuardianBody(..)")
    }
}

/// The guardian's consent as stored: only sealed details and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianConsent {
    pub name_sealed: Sealed,
    pub relationship_sealed: Sealed,
    pub recorded_at: String,
}

impl Record for GuardianConsent {
    const KIND: &'static str = "guardian consent";
}

/// Field names in the sealed values' associated data.
const GUARDIAN_NAME_FIELD: &str = "guardian_consent.name";
const GUARDIAN_RELATIONSHIP_FIELD: &str = "guardian_consent.relationship";

impl GuardianBody {
    /// 422 naming the field: the name as a verification's real name (2 to 30 characters), the
    /// relationship one of the closed set.
    pub fn validate(self) -> Result<(String, Relationship), Error> {
        let name = bounded_text_between("guardian_name", &self.guardian_name, 2, 30)?;
        let relationship = Relationship::parse(&self.relationship).ok_or_else(|| {
            Error::invalid(
                "relationship",
                "must be parent, guardian, grandparent, sibling or other_relative",
            )
        })?;
        Ok((name, relationship))
    }
}

/// Records a guardian's consent for a minor: sealed details in `GUARDIAN_CONSENT` (a later one
/// replaces it), `guardian_consent_at` on the member, audited. 409 `not_a_minor` for a member
/// the gate does not apply to.
pub async fn record_guardian(
    store: &DynStore,
    ring: &KeyRing,
    member: &Member,
    details: (String, Relationship),
    audit_keep: Duration,
) -> Result<(), Error> {
    let id = &member.id;
    if !is_minor(member, today()) {
        return Err(Error::Conflict {
            code: "not_a_minor",
            message: "a guardian's consent is only recorded for members under 14".into(),
        });
    }
    let now = now_rfc3339();
    let consent = GuardianConsent {
        name_sealed: ring.seal(id, GUARDIAN_NAME_FIELD, &details.0)?,
        relationship_sealed: ring.seal(id, GUARDIAN_RELATIONSHIP_FIELD, details.1.as_str())?,
        recorded_at: now.clone(),
    };
    let record = AuditRecord::by(
        Actor::Member(id.clone()),
        OffsetDateTime::now_utc(),
        "guardian_consent.record",
        Target::member(id),
        None,
        "ok",
    );
    let mut writes = vec![
        Write::update(keys::member(id))
            .set("guardian_consent_at", now)
            .condition(Condition::Present, "member_exists")
            .build(),
        Write::put(consent.to_item(keys::guardian_consent(id), None)?),
    ];
    writes.extend(audit::writes(&record, audit_keep)?);
    store.transact(writes).await.map_err(member_gone)
}

/// Opens a stored guardian consent (the export shows it to its member).
pub fn open_guardian(
    ring: &KeyRing,
    id: &UserId,
    consent: &GuardianConsent,
) -> Result<Value, Error> {
    Ok(json!({
        "guardian_name": ring.open(id, GUARDIAN_NAME_FIELD, &consent.name_sealed)?,
        "relationship": ring.open(id, GUARDIAN_RELATIONSHIP_FIELD, &consent.relationship_sealed)?,
        "recorded_at": consent.recorded_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn policy_versions_parse_each_document_once() {
        let v = PolicyVersions::parse("privacy_policy=2.3, terms=1.0").unwrap();
        assert_eq!(v.privacy_policy, Version { major: 2, minor: 3 });
        assert_eq!(v.terms.to_string(), "1.0");
        assert_eq!(
            PolicyVersions::parse(DEFAULT_POLICY_VERSIONS).unwrap(),
            PolicyVersions::default()
        );
        for bad in [
            "",
            "privacy_policy=1.0",
            "privacy_policy=1,terms=1.0",
            "privacy_policy=1.0,terms=1.0,terms=1.1",
            "privacy=1.0,terms=1.0",
            "privacy_policy=1.0,terms=v1.0",
            "privacy_policy=1.0,terms=1.0.1",
            "privacy_policy=-1.0,terms=1.0",
        ] {
            assert!(PolicyVersions::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_are_one_form_or_the_other() {
        let current = PolicyVersions::parse("privacy_policy=2.1,terms=1.0").unwrap();
        let body = |json: &str| serde_json::from_str::<ConsentBody>(json);
        let field = |json: &str| match body(json).unwrap().validate(&current) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{json}: {other:?}"),
        };
        assert_eq!(
            body(r#"{"document":"privacy_policy","version":"2.1"}"#)
                .unwrap()
                .validate(&current)
                .unwrap(),
            Consent::Document(Document::PrivacyPolicy, Version { major: 2, minor: 1 })
        );
        assert_eq!(
            body(r#"{"scope":"marketing"}"#)
                .unwrap()
                .validate(&current)
                .unwrap(),
            Consent::Scope(Scope::Marketing)
        );
        assert_eq!(
            field(r#"{"document":"privacy_policy","version":"2.0"}"#),
            "version"
        );
        assert_eq!(
            field(r#"{"document":"privacy_policy","version":"x"}"#),
            "version"
        );
        assert_eq!(
            field(r#"{"document":"cookies","version":"1.0"}"#),
            "document"
        );
        assert_eq!(field(r#"{"document":"terms"}"#), "version");
        assert_eq!(field(r#"{"version":"1.0"}"#), "document");
        assert_eq!(field(r#"{}"#), "document");
        assert_eq!(field(r#"{"scope":"location","document":"terms"}"#), "scope");
        assert_eq!(field(r#"{"scope":"camera"}"#), "scope");
        assert!(body(r#"{"scope":"location","ip":"1.2.3.4"}"#).is_err());
    }

    fn member() -> Member {
        let identity = crate::wechat::WechatIdentity {
            openid: "o".into(),
            unionid: None,
        };
        Member::new(UserId::generate(), &identity)
    }

    #[test]
    fn a_major_bump_is_required_again_a_minor_one_is_not() {
        let mut m = member();
        let v1 = PolicyVersions::parse("privacy_policy=1.0,terms=1.0").unwrap();
        assert_eq!(required(&m, &v1).len(), 2, "none accepted counts");
        let at = "2026-01-01T00:00:00Z".to_owned();
        m.consent_privacy_policy = Some(Accepted {
            version: v1.privacy_policy,
            at: at.clone(),
        });
        m.consent_terms = Some(Accepted {
            version: v1.terms,
            at,
        });
        assert!(required(&m, &v1).is_empty());
        let minor = PolicyVersions::parse("privacy_policy=1.4,terms=1.0").unwrap();
        assert!(required(&m, &minor).is_empty());
        let major = PolicyVersions::parse("privacy_policy=2.0,terms=1.0").unwrap();
        assert_eq!(
            required(&m, &major),
            vec![json!({"document": "privacy_policy", "version": "2.0"})]
        );
    }

    #[test]
    fn minors_by_verified_identity_first_then_profile() {
        let today = date!(2026 - 11 - 29);
        let mut m = member();
        assert!(!is_minor(&m, today), "no birth date: not a minor");
        m.birth_date = Some("2013-11-30".into());
        assert!(is_minor(&m, today));
        assert!(guardian_consent_required(&m, today));
        m.birth_date = Some("2012-11-29".into());
        assert!(!is_minor(&m, today), "14 today");
        // A verified adult wins over a profile that says under 14.
        m.birth_date = Some("2020-01-01".into());
        m.age_checked = true;
        m.minor_until = verified_age_facts(date!(1990 - 05 - 05), today);
        assert_eq!(m.minor_until, None);
        assert!(!is_minor(&m, today));
        // A verified minor is one whatever the profile says, until the day they turn 14.
        m.birth_date = Some("1980-01-01".into());
        m.minor_until = verified_age_facts(date!(2014 - 02 - 28), today);
        assert_eq!(m.minor_until.as_deref(), Some("2028-02-28"));
        assert!(is_minor(&m, today));
        assert!(!is_minor(&m, date!(2028 - 02 - 28)));
        m.guardian_consent_at = Some("2026-11-29T00:00:00Z".into());
        assert!(!guardian_consent_required(&m, today));
        assert_eq!(turns_14(date!(2012 - 02 - 29)), date!(2026 - 03 - 01));
    }

    #[test]
    fn guardian_details_are_validated_and_hidden() {
        let body = |json: &str| serde_json::from_str::<GuardianBody>(json).unwrap();
        let ok = body(r#"{"guardian_name":"张三","relationship":"parent"}"#);
        assert_eq!(format!("{ok:?}"), "GuardianBody(..)");
        assert_eq!(ok.validate().unwrap().1, Relationship::Parent);
        for (json, field) in [
            (
                r#"{"guardian_name":"张","relationship":"parent"}"#,
                "guardian_name",
            ),
            (
                r#"{"guardian_name":" ","relationship":"parent"}"#,
                "guardian_name",
            ),
            (
                r#"{"guardian_name":"张三","relationship":"friend"}"#,
                "relationship",
            ),
        ] {
            match body(json).validate() {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_stored_position_is_its_cells_centre_until_its_time() {
        let p = StoredPosition {
            geohash: "wx4g0".into(),
            recorded_at: "x".into(),
            ttl: 100,
        };
        let near = p.near(99).unwrap();
        let (lat, lng) = near.split_once(',').unwrap();
        assert!((lat.parse::<f64>().unwrap() - 39.92).abs() < 0.05, "{near}");
        assert!(
            (lng.parse::<f64>().unwrap() - 116.39).abs() < 0.05,
            "{near}"
        );
        assert_eq!(p.near(100), None);
    }
}
