//! The audit trail of staff actions: who (staff id and role), did what (the route), to what
//! (`<kind>:<id>`), why (the reason they gave) and how it ended (`ok` or the error code). Each
//! record is written three times in one transaction — `AUDIT#all`, `AUDIT#actor#<staff id>`,
//! `AUDIT#target#<kind>:<id>` / a time-ordered ULID ([`keys::audit_record`]) — so each of the
//! three lists is one query, newest first. Nothing personal is kept beyond ids.
//!
//! Records are written by the staff request edge ([`crate::staff::guard`]) for every staff route
//! and by sign-in; nothing deletes them (the table's TTL does not apply: no `ttl`).

use lambda_http::Request;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::error::Error;
use crate::ids::StaffId;
use crate::staff::{StaffCaller, StaffRole};
use crate::store::{keys, DynStore, PageCursor, Query, Record, Write};

/// The longest reason kept.
pub const MAX_REASON_CHARS: usize = 200;

/// What an action was done to: `<kind>:<id>`, both parts of a safe alphabet (they are part of a
/// key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Target(String);

impl Target {
    /// `kind` is lowercase letters and `_`; `id` is 1-64 of `A-Z a-z 0-9 _ - @ .` — anything
    /// else is not a target (a client's malformed id is recorded as `<kind>:invalid`).
    pub fn new(kind: &str, id: &str) -> Option<Self> {
        let kind_ok = (1..=32).contains(&kind.len())
            && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let id_ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@' | b'.'));
        (kind_ok && id_ok).then(|| Target(format!("{kind}:{id}")))
    }

    /// `<kind>:<id>` as a client writes it (`?target=`).
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, id) = text.split_once(':')?;
        Self::new(kind, id)
    }

    /// A staff member (their own session: sign-in, sign-out).
    pub fn staff(id: &StaffId) -> Self {
        Target(format!("staff:{id}"))
    }

    /// What a staff request acts on: the kind named by the path segment before its `{id}`
    /// (`/admin/v1/listings/{id}/takedown` → `listing:<id>`); the caller for their own session's
    /// routes; `list:<name>` for a list (`GET /admin/v1/audit` → `list:audit`).
    pub fn of_request(req: &Request, key: &str, caller: &StaffCaller) -> Self {
        if crate::staff::is_own_session(key) {
            return Self::staff(&caller.id);
        }
        let path = key.split_once(' ').map_or(key, |(_, p)| p);
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let kind_of = |plural: &str| plural.strip_suffix('s').unwrap_or(plural).to_owned();
        match segments.iter().position(|s| *s == "{id}") {
            Some(at) if at > 0 => {
                let kind = segments.get(at - 1).map_or("item".into(), |s| kind_of(s));
                crate::staff::path_id(req)
                    .and_then(|id| Self::new(&kind, &id))
                    .or_else(|| Self::new(&kind, "invalid"))
                    .unwrap_or_else(|| Target("item:invalid".into()))
            }
            _ => {
                let name = segments.last().copied().unwrap_or("admin");
                Self::new("list", name).unwrap_or_else(|| Target("list:admin".into()))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        t.0
    }
}

impl TryFrom<String> for Target {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Target::parse(&text).ok_or_else(|| format!("not an audit target: {text:?}"))
    }
}

/// One staff action as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC.
    pub at: String,
    pub staff_id: StaffId,
    pub role: StaffRole,
    /// The route (`POST /admin/v1/listings/{id}/takedown`).
    pub action: String,
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `ok`, or the error code the action was answered with.
    pub outcome: String,
}

impl Record for AuditRecord {
    const KIND: &'static str = "audit record";
}

impl AuditRecord {
    pub fn new(
        at: OffsetDateTime,
        caller: &StaffCaller,
        action: &str,
        target: Target,
        reason: Option<String>,
        outcome: &str,
    ) -> Self {
        AuditRecord {
            at: crate::domain::members::rfc3339(at),
            staff_id: caller.id.clone(),
            role: caller.role,
            action: action.to_owned(),
            target,
            reason: reason.map(|r| r.chars().take(MAX_REASON_CHARS).collect()),
            outcome: outcome.to_owned(),
        }
    }

    pub fn view(&self) -> Value {
        json!({
            "at": self.at,
            "staff_id": self.staff_id,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "reason": self.reason,
            "outcome": self.outcome,
        })
    }
}

/// The three copies of `record` (for a transaction of the caller's).
pub fn writes(record: &AuditRecord) -> Result<Vec<Write>, Error> {
    let order = crate::ids::time_order();
    [
        keys::audit_record("all", None, &order),
        keys::audit_record("actor", Some(record.staff_id.as_str()), &order),
        keys::audit_record("target", Some(record.target.as_str()), &order),
    ]
    .into_iter()
    .map(|key| Ok(Write::put(record.to_item(key, None)?)))
    .collect()
}

/// Writes `record`'s three copies in one transaction.
pub async fn record(store: &DynStore, record: &AuditRecord) -> Result<(), Error> {
    store.transact(writes(record)?).await?;
    Ok(())
}

/// Which list `GET /admin/v1/audit` reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    All,
    Actor(StaffId),
    Target(Target),
}

impl Filter {
    /// `?actor=` or `?target=` (not both: each is its own list); neither, the whole trail.
    pub fn parse(actor: Option<&str>, target: Option<&str>) -> Result<Self, Error> {
        match (actor, target) {
            (Some(_), Some(_)) => Err(Error::invalid("target", "give actor or target, not both")),
            (Some(actor), None) => StaffId::parse(actor)
                .map(Filter::Actor)
                .ok_or_else(|| Error::invalid("actor", "is not a staff id")),
            (None, Some(target)) => Target::parse(target)
                .map(Filter::Target)
                .ok_or_else(|| Error::invalid("target", "is <kind>:<id>, e.g. listing:l_…")),
            (None, None) => Ok(Filter::All),
        }
    }

    fn partition(&self) -> String {
        match self {
            Filter::All => keys::audit_trail("all", None),
            Filter::Actor(id) => keys::audit_trail("actor", Some(id.as_str())),
            Filter::Target(t) => keys::audit_trail("target", Some(t.as_str())),
        }
    }
}

/// `GET /admin/v1/audit`: one page of a list, newest first.
pub async fn list(
    store: &DynStore,
    filter: &Filter,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let query = Query::partition(filter.partition())
        .descending()
        .limit(limit);
    let cursor = super::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let items = page
        .items
        .into_iter()
        .map(|item| AuditRecord::from_item(item).map(|r| r.view()))
        .collect::<Result<_, _>>()?;
    Ok((items, page.next.map(PageCursor::from)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_kind_and_id_of_a_safe_alphabet() {
        assert_eq!(
            Target::parse("listing:l_01abc").unwrap().as_str(),
            "listing:l_01abc"
        );
        for bad in [
            "listing",
            ":x",
            "listing:",
            "Listing:x",
            "listing:a#b",
            "a:b:c",
        ] {
            assert!(Target::parse(bad).is_none(), "{bad}");
        }
        assert!(Target::new("listing", &"x".repeat(65)).is_none());
        assert_eq!(Filter::parse(None, None).unwrap(), Filter::All);
        assert!(Filter::parse(Some("alice"), Some("listing:x")).is_err());
        assert!(Filter::parse(Some("a b"), None).is_err());
        assert!(Filter::parse(None, Some("nope")).is_err());
    }
}
