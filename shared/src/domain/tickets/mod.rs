//! Customer service, disputes, reports (举报) and privacy requests (capabilities 10–11 and 15 of
//! `product.md`; privacy policy §四(六), §八): a member files a ticket of a [`TicketKind`], staff
//! answer it, its whole history is kept (messages are only ever added).
//!
//! Store layout ([`keys`]):
//! - `TICKET#<id> / TICKET`: the [`Ticket`] — every change is a write conditioned on the version
//!   read; an open privacy request not yet flagged overdue is listed in `gsi1` under
//!   `DUE#privacy` by due time, for the scheduled job ([`jobs`]).
//! - `TICKET#<id> / MSG#<ulid>`: [`TicketMessage`]s, oldest first.
//! - `TICKETS#<member> / <ticket id>`: [`TicketEntry`] — the author's, and the other party's of an
//!   order or dispute ticket (who may read and answer it); newest first (ids sort by time).
//! - `QUEUE#<status>` and `QUEUE#<status>#<kind> / <due>#<id>`: [`QueueEntry`] — the staff's
//!   queues, earliest due first; moved in the transaction that changes the ticket's status.
//!
//! Anyone who may not see a ticket gets 404, as for a ticket that does not exist.

pub mod create;
pub mod jobs;
pub mod list;
pub mod messages;
pub mod staff;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::domain::media::{public_urls, Holds};
use crate::domain::orders::rfc3339;
use crate::error::Error;
use crate::ids::{ListingId, OrderId, ReviewId, StaffId, TicketId, UserId};
use crate::store::{keys, Condition, DynStore, Item, Key, Query, Record, Records, SortKey};

/// The label of the condition every change of a ticket is written under ([`Ticket::as_read`]).
pub const VERSION_LABEL: &str = "ticket_version";
/// The label of the condition that makes a ticket id unique.
pub const NEW_TICKET_LABEL: &str = "ticket_new";
/// A privacy request is due this long after it is filed (§八: 15 days), whatever the
/// configuration says of other tickets.
pub const PRIVACY_DUE_SECS: i64 = 15 * 24 * 3600;
/// The most messages one ticket holds (the first included): its history is read whole.
pub const MAX_MESSAGES: i64 = 200;
/// Longest subject and message, in characters.
pub const MAX_SUBJECT_CHARS: usize = 100;
pub const MAX_TEXT_CHARS: usize = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketKind {
    /// A problem with an order (its buyer or seller).
    Order,
    /// After-sale: moves the order to `disputed` until staff decide.
    Dispute,
    /// A listing, a review or a member breaking the rules (举报).
    Report,
    /// A request about personal data (§四(六)): due in 15 days.
    Privacy,
    Other,
}

impl TicketKind {
    pub const ALL: [TicketKind; 5] = [
        TicketKind::Order,
        TicketKind::Dispute,
        TicketKind::Report,
        TicketKind::Privacy,
        TicketKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketKind::Order => "order",
            TicketKind::Dispute => "dispute",
            TicketKind::Report => "report",
            TicketKind::Privacy => "privacy",
            TicketKind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The other party of the order may read and answer it.
    pub fn shared_with_the_order(self) -> bool {
        matches!(self, TicketKind::Order | TicketKind::Dispute)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 2] = [TicketStatus::Open, TicketStatus::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A ticket as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub kind: TicketKind,
    pub subject: String,
    pub author_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    /// The other party of an order or dispute ticket's order: may read and answer it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_party: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_id: Option<ListingId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_id: Option<ReviewId>,
    pub status: TicketStatus,
    pub created_at: String,
    pub updated_at: String,
    /// When staff owe an answer (epoch seconds).
    pub due_at: i64,
    /// When the scheduled job found an open privacy request past its due time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_at: Option<String>,
    /// Messages in the history (the first included), capped at [`MAX_MESSAGES`].
    pub messages: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<StaffId>,
    /// What staff decided, shown to the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Grows with every write; each write is conditioned on the version it read.
    pub version: i64,
}

impl Record for Ticket {
    const KIND: &'static str = "ticket";
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    Member,
    Staff,
}

/// One message of a ticket's history; never changed once written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketMessage {
    /// Its time-ordered ULID (the sort key after `MSG#`).
    pub id: String,
    pub from: Sender,
    /// The member who wrote it (`from: member`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The staff member who wrote it (`from: staff`): shown to staff only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<StaffId>,
    pub text: String,
    #[serde(default)]
    pub images: Vec<String>,
    /// The images the ticket's other party may not see yet, or any more (`domain::media`):
    /// absent, all shown. The only part of a message that changes after it is written.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holds: Holds,
    pub created_at: String,
    /// A member's text on an order or dispute ticket held for staff (`domain::moderation`):
    /// the other party sees `text: null` until approved; its writer sees it with its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_review: Option<crate::domain::moderation::TextHold>,
}

impl Record for TicketMessage {
    const KIND: &'static str = "ticket message";
}

/// A pointer in a member's ticket list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketEntry {
    pub ticket_id: TicketId,
}

impl Record for TicketEntry {
    const KIND: &'static str = "ticket entry";
}

/// A pointer in a staff queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub ticket_id: TicketId,
    pub kind: TicketKind,
    pub due_at: i64,
}

impl Record for QueueEntry {
    const KIND: &'static str = "queue entry";
}

/// An epoch time as the API shows it.
pub fn time_text(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .map(rfc3339)
        .unwrap_or_default()
}

impl Ticket {
    /// The condition a whole-record write of a change of this ticket is made under: the version
    /// read, and the message count read — a message moves only the count (see `messages.rs`), so
    /// a change written over one landed meanwhile would lose it.
    pub fn as_read(&self) -> Condition {
        Condition::All(vec![
            Condition::Equals("version".into(), self.version.into()),
            Condition::Equals("messages".into(), self.messages.into()),
        ])
    }

    /// The ticket's `gsi1` key: an open privacy request the job has not flagged yet.
    pub fn due_key(&self) -> Option<Key> {
        let waiting = self.kind == TicketKind::Privacy
            && self.status == TicketStatus::Open
            && self.overdue_at.is_none();
        waiting.then(|| keys::privacy_due_listed(self.due_at, &self.id))
    }

    pub fn item(&self) -> Result<Item, Error> {
        self.to_item(keys::ticket(&self.id), self.due_key())
    }

    /// The member may read and answer it: its author, or the other party of its order.
    pub fn visible_to(&self, member: &UserId) -> bool {
        *member == self.author_id || self.other_party.as_ref() == Some(member)
    }

    /// The two queue entries of the ticket in `status`.
    pub fn queue_keys(&self, status: TicketStatus) -> [Key; 2] {
        [None, Some(self.kind.as_str())]
            .map(|kind| keys::queue_entry(status.as_str(), kind, self.due_at, &self.id))
    }

    pub fn queue_items(&self) -> Result<Vec<Item>, Error> {
        let entry = QueueEntry {
            ticket_id: self.id.clone(),
            kind: self.kind,
            due_at: self.due_at,
        };
        self.queue_keys(self.status)
            .into_iter()
            .map(|key| entry.to_item(key, None))
            .collect()
    }

    /// What a member who may see it is shown (no staff ids).
    pub fn summary(&self) -> Value {
        json!({
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "status": self.status,
            "author_id": self.author_id,
            "order_id": self.order_id,
            "listing_id": self.listing_id,
            "user_id": self.user_id,
            "review_id": self.review_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "due_at": time_text(self.due_at),
            "closed_at": self.closed_at,
            "resolution": self.resolution,
        })
    }
}

impl TicketMessage {
    /// As a member (`viewer`) sees it: staff as `staff`, never by name; the images others may
    /// see; a text held for staff only by its writer, with its state; on their own message,
    /// every image and `media_states` for those others do not see.
    pub fn member_view(&self, viewer: Option<&UserId>) -> Value {
        let writer = viewer.is_some() && viewer == self.user_id.as_ref();
        let text = match (&self.text_review, writer) {
            (Some(_), false) => Value::Null,
            _ => json!(self.text),
        };
        let mut view = json!({
            "id": self.id,
            "from": self.from,
            "text": text,
            "images": public_urls(&self.images, &self.holds),
            "created_at": self.created_at,
        });
        if self.from == Sender::Member {
            view["user_id"] = json!(self.user_id);
        }
        if writer {
            view["text_review"] = json!(self
                .text_review
                .as_ref()
                .map(crate::domain::moderation::TextHold::owner_view));
            self.all_images(&mut view);
        }
        view
    }

    /// Every image, and `media_states`: the held ones' state (`pending`, `removed` + reason).
    fn all_images(&self, view: &mut Value) {
        view["images"] = json!(self.images);
        view["media_states"] = crate::domain::media::attach::states(&self.holds);
    }

    /// As staff see it: who wrote it, staff included; every image with its state.
    pub fn staff_view(&self) -> Value {
        let mut view = json!({
            "id": self.id,
            "from": self.from,
            "text": self.text,
            "text_review": self.text_review,
            "created_at": self.created_at,
        });
        if self.from == Sender::Member {
            view["user_id"] = json!(self.user_id);
        }
        if self.from == Sender::Staff {
            view["staff_id"] = json!(self.staff_id);
        }
        self.all_images(&mut view);
        view
    }
}

/// 409 `ticket_closed`.
pub fn closed() -> Error {
    Error::Conflict {
        code: "ticket_closed",
        message: "the ticket is closed; file a new one".into(),
    }
}

/// 409 `ticket_changed`: another change won the race.
pub fn changed() -> Error {
    Error::Conflict {
        code: "ticket_changed",
        message: "the ticket changed meanwhile; read it again".into(),
    }
}

/// The ticket, if it exists.
pub async fn get(store: &DynStore, id: &TicketId) -> Result<Option<Ticket>, Error> {
    store.get_record(&keys::ticket(id)).await
}

/// The ticket for a member who may see it; 404 for anyone else.
pub async fn for_member(store: &DynStore, id: &TicketId, member: &UserId) -> Result<Ticket, Error> {
    match get(store, id).await? {
        Some(ticket) if ticket.visible_to(member) => Ok(ticket),
        _ => Err(Error::NotFound("ticket")),
    }
}

/// The whole history, oldest first (at most [`MAX_MESSAGES`], read page by page).
pub async fn history(store: &DynStore, id: &TicketId) -> Result<Vec<TicketMessage>, Error> {
    let mut messages = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query(
                Query::partition(keys::ticket_partition(id))
                    .sort(SortKey::Prefix(keys::MESSAGE_SK_PREFIX.into()))
                    .limit(100)
                    .after(cursor),
            )
            .await?;
        for item in page.items {
            messages.push(TicketMessage::from_item(item)?);
        }
        match page.next {
            Some(next) if messages.len() < MAX_MESSAGES as usize + 100 => cursor = Some(next),
            _ => return Ok(messages),
        }
    }
}

/// The label of a change of a message's holds: its holds are as read.
const MESSAGE_HOLDS_LABEL: &str = "message_holds";

/// Sets or clears the hold of image `url` on every message of ticket `id` that shows it
/// (`domain::media::holds`), each write conditioned on the message's holds as read; a ticket
/// gone or without `url`: nothing to do.
pub async fn set_hold(
    store: &DynStore,
    id: &TicketId,
    url: &str,
    hold: Option<crate::domain::media::Hold>,
) -> Result<(), Error> {
    for message in history(store, id).await? {
        let mut message = message;
        let key = keys::ticket_message(id, &message.id);
        for attempt in 0.. {
            if !message.images.iter().any(|u| u == url) || message.holds.get(url) == hold.as_ref() {
                break;
            }
            let mut holds = message.holds.clone();
            match hold.clone() {
                Some(h) => holds.insert(url.to_owned(), h),
                None => holds.remove(url),
            };
            let as_read = match message.holds.is_empty() {
                true => Condition::Lacks("holds".into()),
                false => Condition::Equals("holds".into(), json!(message.holds)),
            };
            let update = crate::store::Write::update(key.clone());
            let update = match holds.is_empty() {
                true => update.remove("holds"),
                false => update.set("holds", json!(holds)),
            };
            let write = update
                .condition(
                    Condition::All(vec![Condition::Present, as_read]),
                    MESSAGE_HOLDS_LABEL,
                )
                .build();
            match store.write(write).await {
                Ok(_) => break,
                Err(
                    crate::store::StoreError::ConditionFailed { .. }
                    | crate::store::StoreError::Conflict,
                ) if attempt < 10 => match store.get_record::<TicketMessage>(&key).await? {
                    Some(now) => message = now,
                    None => break,
                },
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// A message's item.
pub fn message_item(ticket: &TicketId, message: &TicketMessage) -> Result<Item, Error> {
    message.to_item(keys::ticket_message(ticket, &message.id), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_read_back() {
        for kind in TicketKind::ALL {
            assert_eq!(TicketKind::parse(kind.as_str()), Some(kind));
            assert_eq!(json!(kind), json!(kind.as_str()));
        }
        for status in TicketStatus::ALL {
            assert_eq!(TicketStatus::parse(status.as_str()), Some(status));
            assert_eq!(json!(status), json!(status.as_str()));
        }
        assert_eq!(TicketKind::parse("Order"), None);
    }

    #[test]
    fn members_never_see_who_on_the_staff_wrote() {
        let message = TicketMessage {
            id: "01j".into(),
            from: Sender::Staff,
            user_id: None,
            staff_id: StaffId::parse("zhangsan"),
            text: "已处理".into(),
            images: vec![],
            holds: Holds::new(),
            created_at: "2026-11-29T00:00:00Z".into(),
            text_review: None,
        };
        let member = message.member_view(None);
        assert_eq!(member["from"], json!("staff"));
        assert!(!member.to_string().contains("zhangsan"));
        assert_eq!(message.staff_view()["staff_id"], json!("zhangsan"));
    }
}
