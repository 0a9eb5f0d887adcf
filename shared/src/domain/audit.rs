//! The audit trail of sensitive actions: who (a staff member with their role, a member, or the
//! system's scheduled jobs), did what (the route, or an action name such as `login`), to what
//! (`<kind>:<id>`), why (the reason staff gave) and how it ended (`ok` or the error code).
//! Nothing personal is kept beyond ids.
//!
//! A staff action is written three times in one transaction — `AUDIT#all`,
//! `AUDIT#actor#<staff id>`, `AUDIT#target#<kind>:<id>` / a time-ordered ULID
//! ([`keys::audit_record`]) — so each list is one query, newest first; `AUDIT#all` is the staff
//! trail the console reads. A member's action goes to `AUDIT#actor#member:<id>` and, when it acts
//! on something else (an order), to that target's list too; a job's action to its target's list.
//!
//! Records are written by the staff request edge ([`crate::staff::guard`]) for every staff route,
//! by sign-in, and by the domain for members' sensitive actions (login, verification, refunds,
//! export, deletion). Nothing changes or deletes one; `ttl` ends it after `RENJI_AUDIT_DAYS`.

use lambda_http::Request;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;
use time::OffsetDateTime;

use crate::error::Error;
use crate::ids::{StaffId, UserId};
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

    /// A member (their own actions; a deletion).
    pub fn member(id: &UserId) -> Self {
        Target(format!("member:{id}"))
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

/// Who did something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Staff {
        id: StaffId,
        role: StaffRole,
    },
    Member(UserId),
    /// A scheduled job (an automatic refund, the end of a deletion).
    System,
}

/// One action as recorded. Exactly one of `staff_id` (with `role`) and `member_id` is set, or
/// neither for the system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<StaffId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<StaffRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<UserId>,
    /// The route (`POST /admin/v1/listings/{id}/takedown`), or a member's or job's action
    /// (`login`, `account.delete`).
    pub action: String,
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `ok`, or the error code the action was answered with.
    pub outcome: String,
    /// Epoch seconds: the table's TTL ends the record `RENJI_AUDIT_DAYS` after `at` (set by
    /// [`writes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

impl Record for AuditRecord {
    const KIND: &'static str = "audit record";
}

impl AuditRecord {
    /// A staff member's action.
    pub fn new(
        at: OffsetDateTime,
        caller: &StaffCaller,
        action: &str,
        target: Target,
        reason: Option<String>,
        outcome: &str,
    ) -> Self {
        let actor = Actor::Staff {
            id: caller.id.clone(),
            role: caller.role,
        };
        Self::by(actor, at, action, target, reason, outcome)
    }

    /// Anyone's action; `reason` is cut to [`MAX_REASON_CHARS`].
    pub fn by(
        actor: Actor,
        at: OffsetDateTime,
        action: &str,
        target: Target,
        reason: Option<String>,
        outcome: &str,
    ) -> Self {
        let (staff_id, role, member_id) = match actor {
            Actor::Staff { id, role } => (Some(id), Some(role), None),
            Actor::Member(id) => (None, None, Some(id)),
            Actor::System => (None, None, None),
        };
        AuditRecord {
            at: crate::domain::members::rfc3339(at),
            staff_id,
            role,
            member_id,
            action: action.to_owned(),
            target,
            reason: reason.map(|r| r.chars().take(MAX_REASON_CHARS).collect()),
            outcome: outcome.to_owned(),
            ttl: None,
        }
    }

    /// `staff:<id>`, `member:<id>` or `system`.
    pub fn actor(&self) -> String {
        match (&self.staff_id, &self.member_id) {
            (Some(staff), _) => format!("staff:{staff}"),
            (None, Some(member)) => format!("member:{member}"),
            (None, None) => "system".into(),
        }
    }

    pub fn view(&self) -> Value {
        json!({
            "at": self.at,
            "actor": self.actor(),
            "staff_id": self.staff_id,
            "role": self.role,
            "member_id": self.member_id,
            "action": self.action,
            "target": self.target,
            "reason": self.reason,
            "outcome": self.outcome,
        })
    }
}

/// The copies of `record` (for a transaction of the caller's), each kept `keep`: a staff
/// action's three; a member's in their own list and their target's; a job's in its target's.
pub fn writes(record: &AuditRecord, keep: Duration) -> Result<Vec<Write>, Error> {
    let order = crate::ids::time_order();
    let actor = record.actor();
    let target = record.target.as_str();
    let mut lists = Vec::with_capacity(3);
    if record.staff_id.is_some() {
        lists.push(keys::audit_record("all", None, &order));
    }
    if record.staff_id.is_some() || record.member_id.is_some() {
        let id = record
            .staff_id
            .as_ref()
            .map_or(actor.as_str(), |s| s.as_str());
        lists.push(keys::audit_record("actor", Some(id), &order));
    }
    if target != actor {
        lists.push(keys::audit_record("target", Some(target), &order));
    }
    let at =
        time::OffsetDateTime::parse(&record.at, &time::format_description::well_known::Rfc3339)
            .map_or_else(
                |_| OffsetDateTime::now_utc().unix_timestamp(),
                |t| t.unix_timestamp(),
            );
    let kept = AuditRecord {
        ttl: Some(at.saturating_add(i64::try_from(keep.as_secs()).unwrap_or(i64::MAX / 4))),
        ..record.clone()
    };
    lists
        .into_iter()
        .map(|key| Ok(Write::put(kept.to_item(key, None)?)))
        .collect()
}

/// Writes `record`'s copies in one transaction.
pub async fn record(store: &DynStore, record: &AuditRecord, keep: Duration) -> Result<(), Error> {
    store.transact(writes(record, keep)?).await?;
    Ok(())
}

/// Records a member's own action (`login`, `export.request`) with its outcome, kept `keep`.
pub async fn member_action(
    store: &DynStore,
    member: &UserId,
    action: &str,
    target: Target,
    outcome: &str,
    keep: Duration,
) -> Result<(), Error> {
    let record = AuditRecord::by(
        Actor::Member(member.clone()),
        OffsetDateTime::now_utc(),
        action,
        target,
        None,
        outcome,
    );
    self::record(store, &record, keep).await
}

/// Which list `GET /admin/v1/audit` reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    All,
    Actor(StaffId),
    /// A member's own actions (`?actor=member:<id>`).
    Member(UserId),
    Target(Target),
}

impl Filter {
    /// `?actor=` or `?target=` (not both: each is its own list); neither, the whole trail.
    pub fn parse(actor: Option<&str>, target: Option<&str>) -> Result<Self, Error> {
        match (actor, target) {
            (Some(_), Some(_)) => Err(Error::invalid("target", "give actor or target, not both")),
            (Some(actor), None) => match actor.strip_prefix("member:") {
                Some(member) => UserId::parse(member)
                    .map(Filter::Member)
                    .ok_or_else(|| Error::invalid("actor", "is member:u_… or a staff id")),
                None => StaffId::parse(actor)
                    .map(Filter::Actor)
                    .ok_or_else(|| Error::invalid("actor", "is member:u_… or a staff id")),
            },
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
            Filter::Member(id) => keys::audit_trail("actor", Some(Target::member(id).as_str())),
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
        let member = UserId::generate();
        assert_eq!(
            Filter::parse(Some(&format!("member:{member}")), None).unwrap(),
            Filter::Member(member)
        );
        assert!(Filter::parse(Some("member:x"), None).is_err());
    }

    fn lists(record: &AuditRecord) -> Vec<String> {
        writes(record, Duration::from_secs(86400))
            .unwrap()
            .into_iter()
            .map(|w| match w {
                Write::Put { item, .. } => {
                    assert_eq!(item["ttl"], json!(1_700_000_000 + 86400), "{item:?}");
                    item["pk"].as_str().unwrap().to_owned()
                }
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn each_actor_writes_the_lists_it_is_found_by_and_every_copy_expires() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let member = UserId::generate();
        let staff = Actor::Staff {
            id: StaffId::parse("alice").unwrap(),
            role: StaffRole::Admin,
        };
        let order = Target::new("order", "o_1").unwrap();
        let staff_action = AuditRecord::by(staff, at, "POST x", order.clone(), None, "ok");
        assert_eq!(
            lists(&staff_action),
            ["AUDIT#all", "AUDIT#actor#alice", "AUDIT#target#order:o_1"]
        );
        assert_eq!(staff_action.actor(), "staff:alice");
        let own = Target::member(&member);
        let login = AuditRecord::by(Actor::Member(member.clone()), at, "login", own, None, "ok");
        assert_eq!(lists(&login), [format!("AUDIT#actor#member:{member}")]);
        assert_eq!(login.view()["actor"], json!(format!("member:{member}")));
        let refund = AuditRecord::by(Actor::Member(member.clone()), at, "r", order, None, "ok");
        assert_eq!(
            lists(&refund),
            [
                format!("AUDIT#actor#member:{member}"),
                "AUDIT#target#order:o_1".into()
            ]
        );
        let done = AuditRecord::by(Actor::System, at, "d", Target::member(&member), None, "ok");
        assert_eq!(lists(&done), [format!("AUDIT#target#member:{member}")]);
        assert_eq!(done.view()["actor"], json!("system"));
    }
}
