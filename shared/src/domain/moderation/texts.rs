//! Held texts and the staff text queue: `GET /admin/v1/moderation/texts` (oldest first) and
//! `POST /admin/v1/moderation/texts/{id}/decision` (`approve` makes the text public — a listing's
//! index entries are written then — `reject` keeps it hidden and shows its author the reason).
//!
//! Store layout: `USER#<author> / TEXTCHECK#<ulid>` ([`keys::held_text`]) holds the
//! [`HeldText`], listed in `gsi1` under `DUE#texts` ([`keys::held_text_listed`]) until decided.
//! It is written in the same transaction as the entity it holds, deleted (with its queue entry)
//! when a later edit replaces or clears that hold, and decided in one transaction with the
//! entity's change, conditioned on its not being decided yet (409 `already_decided`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{HoldState, TextHold, Verdict};
use crate::domain::members::rfc3339;
use crate::domain::profile::bounded_text;
use crate::error::Error;
use crate::ids::{ListingId, ReviewId, StaffId, TicketId, UserId};
use crate::store::{
    keys, Condition, DynStore, PageCursor, Query, Record, Records, StoreError, Write,
};
use crate::wechat::api::Scene;

/// Longest reason staff give.
pub const MAX_REASON_CHARS: usize = 200;
/// The label of the condition that a held text is decided once.
const UNDECIDED: &str = "text_undecided";
/// A decision that lost a race with an edit of the entity tries again this often.
const ATTEMPTS: usize = 4;

/// What a held text belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// A listing's title and/or description.
    Listing { listing_id: ListingId },
    /// The author's nickname.
    Nickname,
    /// A review's text.
    Review { review_id: ReviewId },
    /// The seller's reply to a review.
    Reply { review_id: ReviewId },
    /// A member's message on an order or dispute ticket (the other party reads it).
    TicketMessage {
        ticket_id: TicketId,
        message_id: String,
    },
}

/// One held field's text, as it was when held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldField {
    pub field: String,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

/// Staff's decision on a held text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub decision: Decision,
    pub reason: String,
    pub staff_id: StaffId,
    pub at: String,
    /// Whether it changed the entity: `false` when the entity was gone (erased) by then.
    pub applied: bool,
}

/// A text held for staff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldText {
    pub ulid: String,
    pub author_id: UserId,
    pub subject: Subject,
    pub texts: Vec<HeldField>,
    /// The `msgSecCheck` scene (1 profile, 2 comment, 3 forum).
    pub scene: i64,
    /// WeChat's label; `None` when WeChat gave no verdict (61010).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<i64>,
    pub held_at: String,
    /// `held_at` in epoch seconds (the queue's order).
    pub held_epoch: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<Decided>,
}

impl Record for HeldText {
    const KIND: &'static str = "held text";
}

impl HeldText {
    /// The id staff use: `<author id>.<ulid>`.
    pub fn id(&self) -> String {
        format!("{}.{}", self.author_id, self.ulid)
    }

    fn key(&self) -> crate::store::Key {
        keys::held_text(&self.author_id, &self.ulid)
    }

    /// The stored item: listed in the queue until decided.
    pub fn item(&self) -> Result<crate::store::Item, Error> {
        let listed = self
            .decided
            .is_none()
            .then(|| keys::held_text_listed(self.held_epoch, &self.author_id, &self.ulid));
        self.to_item(self.key(), listed)
    }

    /// What staff see in the queue.
    pub fn staff_view(&self) -> Value {
        json!({
            "id": self.id(),
            "author_id": self.author_id,
            "subject": self.subject,
            "texts": self.texts,
            "scene": self.scene,
            "label": self.label,
            "category": self.label.map(super::label_name),
            "held_at": self.held_at,
            "decided": self.decided,
        })
    }
}

/// Splits a staff route's `{id}` into author and ulid; `None` unless well-formed.
pub fn parse_id(text: &str) -> Option<(UserId, String)> {
    let (author, ulid) = text.split_once('.')?;
    let author = UserId::parse(author)?;
    let ok = ulid.len() == 26
        && ulid
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
    ok.then(|| (author, ulid.to_owned()))
}

/// The hold an entity has after a write whose changed fields (`changed`) got `verdict`, and the
/// writes that go with it in the entity's transaction: a new [`HeldText`] (holding every field
/// still held, with its current text from `current`), the old one deleted when replaced or
/// cleared. A field no longer changed keeps its old hold.
#[allow(clippy::too_many_arguments)]
pub fn next_hold(
    author: &UserId,
    subject: Subject,
    scene: Scene,
    old: Option<&TextHold>,
    changed: &[&str],
    verdict: Verdict,
    current: &[(&str, &str)],
    now: OffsetDateTime,
) -> Result<(Option<TextHold>, Vec<Write>), Error> {
    let remaining: Vec<String> = old
        .map(|h| {
            h.fields
                .iter()
                .filter(|f| !changed.contains(&f.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let delete_old = |writes: &mut Vec<Write>| {
        if let Some(old) = old {
            if let Some((author, ulid)) = parse_id(&old.check_id) {
                writes.push(Write::delete(keys::held_text(&author, &ulid)));
            }
        }
    };
    let mut writes = Vec::new();
    match verdict {
        Verdict::Pass => match old {
            None => Ok((None, writes)),
            Some(_) if remaining.is_empty() => {
                delete_old(&mut writes);
                Ok((None, writes))
            }
            Some(old) => Ok((Some(old.clone()), writes)),
        },
        Verdict::Review { fields, label } => {
            let mut all = remaining;
            for f in fields {
                if !all.contains(&f) {
                    all.push(f);
                }
            }
            let label = label.or(old.and_then(|o| o.label));
            let held = HeldText {
                ulid: crate::ids::time_order(),
                author_id: author.clone(),
                subject,
                texts: all
                    .iter()
                    .map(|f| HeldField {
                        field: f.clone(),
                        text: current
                            .iter()
                            .find(|(name, _)| name == f)
                            .map(|(_, t)| (*t).to_owned())
                            .unwrap_or_default(),
                    })
                    .collect(),
                scene: scene as i64,
                label,
                held_at: rfc3339(now),
                held_epoch: now.unix_timestamp(),
                decided: None,
            };
            delete_old(&mut writes);
            writes.push(Write::put_if(
                held.item()?,
                Condition::Absent,
                "held_text_new",
            ));
            Ok((
                Some(TextHold {
                    check_id: held.id(),
                    state: HoldState::UnderReview,
                    fields: all,
                    label,
                    since: held.held_at.clone(),
                    reason: None,
                    pending: None,
                }),
                writes,
            ))
        }
    }
}

/// `POST /admin/v1/moderation/texts/{id}/decision`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub decision: String,
    #[serde(default)]
    pub reason: String,
}

impl DecisionBody {
    pub fn check(&self) -> Result<(Decision, String), Error> {
        let decision = match self.decision.as_str() {
            "approve" => Decision::Approve,
            "reject" => Decision::Reject,
            _ => return Err(Error::invalid("decision", "must be approve or reject")),
        };
        Ok((
            decision,
            bounded_text("reason", &self.reason, MAX_REASON_CHARS)?,
        ))
    }
}

/// The hold after staff's decision: none (approved), or rejected with the reason.
pub fn decided_hold(hold: &TextHold, decision: Decision, reason: &str) -> Option<TextHold> {
    match decision {
        Decision::Approve => None,
        Decision::Reject => Some(TextHold {
            state: HoldState::Rejected,
            reason: Some(reason.to_owned()),
            ..hold.clone()
        }),
    }
}

/// `GET /admin/v1/moderation/texts`: held texts waiting for a decision, oldest first.
pub async fn queue(
    store: &DynStore,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let query = Query::partition(keys::held_texts())
        .index(crate::store::schema::GSI1)
        .limit(limit);
    let cursor = crate::domain::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let items = page
        .items
        .into_iter()
        .map(|item| HeldText::from_item(item).map(|h| h.staff_view()))
        .collect::<Result<_, _>>()?;
    Ok((items, page.next.map(PageCursor::from)))
}

/// Staff decide held text `id`: the entity's change and the decision in one transaction. 404
/// for an unknown id, 409 `already_decided`.
pub async fn decide(
    store: &DynStore,
    id: &str,
    staff: &StaffId,
    body: &DecisionBody,
    now: OffsetDateTime,
) -> Result<Value, Error> {
    let (author, ulid) = parse_id(id).ok_or(Error::NotFound("held text"))?;
    let (decision, reason) = body.check()?;
    for _ in 0..ATTEMPTS {
        let held: HeldText = store
            .get_record(&keys::held_text(&author, &ulid))
            .await?
            .ok_or(Error::NotFound("held text"))?;
        if held.decided.is_some() {
            return Err(already_decided());
        }
        let entity = entity_change(store, &held, decision, &reason, now).await?;
        let mut decided = held.clone();
        decided.decided = Some(Decided {
            decision,
            reason: reason.clone(),
            staff_id: staff.clone(),
            at: rfc3339(now),
            applied: entity.is_some(),
        });
        let mut writes = vec![Write::put_if(
            decided.item()?,
            Condition::All(vec![Condition::Present, Condition::Lacks("decided".into())]),
            UNDECIDED,
        )];
        writes.extend(entity.unwrap_or_default());
        match store.transact(writes).await {
            Ok(()) => return Ok(decided.staff_view()),
            Err(StoreError::ConditionFailed { label: UNDECIDED }) => {
                return Err(match store.get_record::<HeldText>(&decided.key()).await? {
                    Some(_) => already_decided(),
                    None => Error::NotFound("held text"),
                })
            }
            // The entity changed since it was read (an edit, a count): read both again.
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict {
        code: "write_conflict",
        message: "the held text's subject kept changing; retry".into(),
    })
}

fn already_decided() -> Error {
    Error::Conflict {
        code: "already_decided",
        message: "this text has been decided already".into(),
    }
}

/// The entity's writes for the decision, conditioned on what was read; `None` when the entity
/// no longer holds this text (gone).
async fn entity_change(
    store: &DynStore,
    held: &HeldText,
    decision: Decision,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Option<Vec<Write>>, Error> {
    let id = held.id();
    match &held.subject {
        Subject::Listing { listing_id } => {
            crate::domain::listings::text_decision(store, listing_id, &id, decision, reason).await
        }
        Subject::Nickname => {
            crate::domain::members::text_decision(store, &held.author_id, &id, decision, reason)
                .await
        }
        Subject::Review { review_id } => {
            crate::domain::reviews::text_decision(store, review_id, false, &id, decision, reason)
                .await
        }
        Subject::Reply { review_id } => {
            crate::domain::reviews::text_decision(store, review_id, true, &id, decision, reason)
                .await
        }
        Subject::TicketMessage {
            ticket_id,
            message_id,
        } => {
            let _ = now;
            crate::domain::tickets::messages::text_decision(
                store, ticket_id, message_id, &id, decision, reason,
            )
            .await
        }
    }
}
