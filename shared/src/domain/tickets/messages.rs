//! Adding to a ticket's history (`POST /v1/tickets/{id}/messages`, and staff's answer): the
//! message is put and the ticket's message count moved in one transaction conditioned on the
//! ticket being open and not full — not on the version read, so the two parties and staff
//! writing at once all get through, while a message never lands on a ticket closed meanwhile;
//! the history is never edited.

use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{
    closed, for_member, message_item, Sender, Ticket, TicketMessage, TicketStatus, MAX_MESSAGES,
    MAX_TEXT_CHARS,
};
use crate::domain::listings::fields::images as checked_images;
use crate::domain::media::attach::{self, Checked, Wanted};
use crate::domain::media::{Purpose, Subject as MediaSubject};
use crate::domain::moderation;
use crate::domain::moderation::texts::{self, Decision, Subject};
use crate::domain::orders::rfc3339;
use crate::domain::profile::bounded_text;
use crate::error::Error;
use crate::ids::{StaffId, TicketId, UserId};
use crate::store::{keys, Condition, DynStore, Records, StoreError, Write};
use crate::wechat::api::{Scene, WechatApi};

/// The body of a new message.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub text: String,
    #[serde(default)]
    pub images: Vec<String>,
}

impl NewMessage {
    /// The text (1 to 2000 characters, trimmed) and at most 9 https image URLs (422 naming the
    /// field).
    pub fn check(&self) -> Result<(String, Vec<String>), Error> {
        Ok((
            bounded_text("text", &self.text, MAX_TEXT_CHARS)?,
            checked_images(&self.images)?,
        ))
    }
}

/// Adds `message` to `ticket` (as read): 409 `ticket_closed` or `ticket_full`, also when the
/// ticket was closed or filled meanwhile.
/// `extra` (the held text's entry for staff, the uploads' `used_by`) goes in the same transaction.
pub async fn append(
    store: &DynStore,
    ticket: &Ticket,
    message: &TicketMessage,
    extra: Vec<Write>,
) -> Result<(), Error> {
    if ticket.status == TicketStatus::Closed {
        return Err(closed());
    }
    if ticket.messages >= MAX_MESSAGES {
        return Err(full());
    }
    let mut writes = vec![
        Write::update(keys::ticket(&ticket.id))
            .set("updated_at", message.created_at.clone())
            .add("messages", 1)
            .condition(
                Condition::All(vec![
                    Condition::Equals("status".into(), json!(TicketStatus::Open)),
                    Condition::Under("messages".into(), MAX_MESSAGES),
                ]),
                OPEN_LABEL,
            )
            .build(),
        Write::put(message_item(&ticket.id, message)?),
    ];
    // Staff's answer: the author's subscribe message, in the same transaction.
    writes.extend(crate::domain::subscriptions::ticket_answer_writes(
        ticket, message,
    )?);
    writes.extend(extra);
    match store.transact(writes).await {
        Ok(()) => Ok(()),
        // Closed or filled since it was read: say which.
        Err(StoreError::ConditionFailed {
            label: attach::ATTACH_LABEL,
        }) => Err(Error::Conflict {
            code: UPLOAD_CHANGED,
            message: "an image's upload changed meanwhile; retry".into(),
        }),
        Err(StoreError::ConditionFailed { label: OPEN_LABEL }) => {
            match super::get(store, &ticket.id).await? {
                Some(now) if now.status == TicketStatus::Open => Err(full()),
                _ => Err(closed()),
            }
        }
        Err(other) => Err(other.into()),
    }
}

/// The label of a message's condition: the ticket is open and holds fewer than
/// [`MAX_MESSAGES`].
const OPEN_LABEL: &str = "ticket_open";

fn full() -> Error {
    Error::Conflict {
        code: "ticket_full",
        message: format!("a ticket holds at most {MAX_MESSAGES} messages; file a new one"),
    }
}

fn new_message(
    from: Sender,
    member: Option<&UserId>,
    staff: Option<&StaffId>,
    body: &NewMessage,
    now: OffsetDateTime,
) -> Result<TicketMessage, Error> {
    let (text, images) = body.check()?;
    Ok(TicketMessage {
        id: crate::ids::time_order(),
        from,
        user_id: member.cloned(),
        staff_id: staff.cloned(),
        text,
        images,
        holds: Default::default(),
        created_at: rfc3339(now),
        text_review: None,
    })
}

/// A member's message on a ticket another member reads (an order or dispute ticket's other
/// party) is checked with WeChat (scene comment) before it is stored: risky → 422
/// `content_risky`; held → `message.text_review` set, and the writes of its held text returned
/// for the message's transaction. Messages only the author and staff read are not checked.
pub async fn check_shared(
    store: &DynStore,
    api: &dyn WechatApi,
    ticket: &Ticket,
    message: &mut TicketMessage,
    now: OffsetDateTime,
) -> Result<Vec<Write>, Error> {
    let (Some(_), Some(author)) = (&ticket.other_party, &message.user_id) else {
        return Ok(Vec::new());
    };
    let member = crate::domain::members::get(store, author)
        .await?
        .ok_or(Error::Unauthorized("member no longer exists"))?;
    let fields = [("text", message.text.as_str())];
    let verdict = moderation::check(api, &member.openid, Scene::Comment, None, &fields).await?;
    let (hold, writes) = texts::next_hold(
        author,
        Subject::TicketMessage {
            ticket_id: ticket.id.clone(),
            message_id: message.id.clone(),
        },
        Scene::Comment,
        None,
        &["text"],
        verdict,
        &fields,
        now,
    )?;
    message.text_review = hold;
    Ok(writes)
}

/// Staff's decision on a ticket message's held text: the message's write; `None` when the
/// message no longer holds `check_id`.
pub async fn text_decision(
    store: &DynStore,
    ticket: &TicketId,
    message_id: &str,
    check_id: &str,
    decision: Decision,
    reason: &str,
) -> Result<Option<Vec<Write>>, Error> {
    let key = keys::ticket_message(ticket, message_id);
    let Some(message) = store.get_record::<TicketMessage>(&key).await? else {
        return Ok(None);
    };
    let Some(hold) = message
        .text_review
        .as_ref()
        .filter(|h| h.check_id == check_id)
    else {
        return Ok(None);
    };
    let update = match texts::decided_hold(hold, decision, reason) {
        None => Write::update(key).remove("text_review"),
        Some(next) => Write::update(key).set("text_review", json!(next)),
    };
    Ok(Some(vec![update
        .condition(Condition::Present, "message_exists")
        .build()]))
}

/// `member` (who may see it) adds a message: 201 with the message as they see it.
pub async fn add(
    store: &DynStore,
    api: &dyn WechatApi,
    media_base: &str,
    id: &TicketId,
    member: &UserId,
    body: &NewMessage,
    now: OffsetDateTime,
) -> Result<serde_json::Value, Error> {
    let mut message = new_message(Sender::Member, Some(member), None, body, now)?;
    let ticket = for_member(store, id, member).await?;
    if ticket.status == TicketStatus::Closed {
        return Err(closed());
    }
    let held = Box::pin(check_shared(store, api, &ticket, &mut message, now)).await?;
    let wanted: Vec<Wanted> = (message.images.iter().enumerate())
        .map(|(i, url)| Wanted::new(format!("images[{i}]"), url, Purpose::TicketImage))
        .collect();
    let subject = MediaSubject::Ticket { id: id.clone() };
    for attempt in 0..3 {
        let attached = match wanted.is_empty() {
            true => Checked::none(),
            false => attach::check(store, media_base, member, &wanted).await?,
        };
        message.holds = attached.holds_after(&message.images, &Default::default());
        // The held text's entry for staff and the uploads' `used_by`, with the message.
        let mut extra = held.clone();
        extra.extend(attached.writes(&subject));
        match append(store, &ticket, &message, extra).await {
            // An upload's check ended meanwhile: read it again.
            Err(Error::Conflict {
                code: UPLOAD_CHANGED,
                ..
            }) if attempt < 2 => continue,
            Err(e) => return Err(e),
            Ok(()) => break,
        }
    }
    Ok(message.member_view(Some(member)))
}

/// An upload changed between its check and the message's transaction.
const UPLOAD_CHANGED: &str = "upload_changed";

/// `staff` answers: the message as staff see it. 404 for a ticket that does not exist.
pub async fn add_staff(
    store: &DynStore,
    id: &TicketId,
    staff: &StaffId,
    body: &NewMessage,
    now: OffsetDateTime,
) -> Result<serde_json::Value, Error> {
    let message = new_message(Sender::Staff, None, Some(staff), body, now)?;
    let ticket = super::get(store, id)
        .await?
        .ok_or(Error::NotFound("ticket"))?;
    append(store, &ticket, &message, Vec::new()).await?;
    Ok(message.staff_view())
}
