//! What the staff console does with tickets (the `admin` function's routes call these; the role
//! check and the audit record are the route's): the queues, one ticket with everything staff
//! need, an answer, and closing.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::messages::{add_staff, NewMessage};
use super::{
    changed, closed, get, history, time_text, QueueEntry, Ticket, TicketKind, TicketMessage,
    TicketStatus, VERSION_LABEL,
};
use crate::domain::members::Member;
use crate::domain::orders::{self, rfc3339, view::card};
use crate::domain::profile::bounded_text;
use crate::error::Error;
use crate::ids::{StaffId, TicketId};
use crate::store::{
    keys, DynStore, Key, PageCursor, Query, Record, Records, SortKey, StoreError, Write,
};

/// Longest resolution staff may give, in characters.
pub const MAX_RESOLUTION_CHARS: usize = 500;

/// `?kind=`: one of the ticket kinds, or none (all kinds); anything else is 422 naming `kind`.
pub fn parse_kind(text: Option<&str>) -> Result<Option<TicketKind>, Error> {
    text.map(|text| {
        TicketKind::parse(text).ok_or_else(|| {
            let names: Vec<&str> = TicketKind::ALL.iter().map(|k| k.as_str()).collect();
            Error::invalid(
                "kind",
                format!("must be one of {}, not {text:?}", names.join(", ")),
            )
        })
    })
    .transpose()
}

/// `?status=`: `open` (the default) or `closed`; anything else is 422 naming `status`.
pub fn parse_status(text: Option<&str>) -> Result<TicketStatus, Error> {
    match text {
        None => Ok(TicketStatus::Open),
        Some(text) => TicketStatus::parse(text).ok_or_else(|| {
            Error::invalid("status", format!("must be open or closed, not {text:?}"))
        }),
    }
}

/// `?due_before=`: an RFC 3339 time (`2026-12-01T00:00:00Z`), as epoch seconds; anything else
/// is 422 naming `due_before`.
pub fn parse_due_before(text: Option<&str>) -> Result<Option<i64>, Error> {
    text.map(|text| {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .map_err(|_| Error::invalid("due_before", "must be an RFC 3339 time"))
    })
    .transpose()
}

/// A queue item: what staff triage by.
fn queue_item(ticket: &Ticket, now: i64) -> Value {
    json!({
        "id": ticket.id,
        "kind": ticket.kind,
        "subject": ticket.subject,
        "status": ticket.status,
        "due_at": time_text(ticket.due_at),
        "overdue": ticket.status == TicketStatus::Open && ticket.due_at < now,
        "overdue_at": ticket.overdue_at,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "author_id": ticket.author_id,
        "order_id": ticket.order_id,
        "listing_id": ticket.listing_id,
        "user_id": ticket.user_id,
        "review_id": ticket.review_id,
        "messages_count": ticket.messages,
    })
}

/// One page of the queue of tickets in `status` (of `kind`, when given; due before
/// `due_before`, when given), earliest due first — so the overdue ones lead.
pub async fn queue(
    store: &DynStore,
    status: TicketStatus,
    kind: Option<TicketKind>,
    due_before: Option<i64>,
    limit: usize,
    cursor: Option<&PageCursor>,
    now: OffsetDateTime,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let mut query =
        Query::partition(keys::queue(status.as_str(), kind.map(TicketKind::as_str))).limit(limit);
    if let Some(before) = due_before {
        query = query.sort(SortKey::Below(keys::due(before)));
    }
    let cursor = crate::domain::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let ticket_keys = page
        .items
        .into_iter()
        .map(|entry| QueueEntry::from_item(entry).map(|e| keys::ticket(&e.ticket_id)))
        .collect::<Result<Vec<Key>, _>>()?;
    let found: Vec<Option<Ticket>> = store.get_records(&ticket_keys).await?;
    let now = now.unix_timestamp();
    let items = found
        .into_iter()
        .flatten()
        // The entries move with the ticket in one transaction, but a query may read before a
        // batch read sees a later change: the ticket itself decides.
        .filter(|t| t.status == status)
        .map(|t| queue_item(&t, now))
        .collect();
    Ok((items, page.next.map(PageCursor::from)))
}

/// One ticket as staff see it: the whole history with who on the staff wrote what, the author's
/// public card, and for an order or dispute ticket the order and its timeline. 404 when there is
/// no such ticket.
pub async fn staff_view(
    store: &DynStore,
    id: &TicketId,
    now: OffsetDateTime,
) -> Result<Value, Error> {
    let ticket = get(store, id).await?.ok_or(Error::NotFound("ticket"))?;
    let messages = history(store, id).await?;
    let author: Option<Member> = store.get_record(&keys::member(&ticket.author_id)).await?;
    let mut view = queue_item(&ticket, now.unix_timestamp());
    view["author"] = card(&ticket.author_id, author.as_ref());
    view["other_party_id"] = json!(ticket.other_party);
    view["closed_at"] = json!(ticket.closed_at);
    view["closed_by"] = json!(ticket.closed_by);
    view["resolution"] = json!(ticket.resolution);
    view["messages"] = json!(messages
        .iter()
        .map(TicketMessage::staff_view)
        .collect::<Vec<_>>());
    view["order"] = match &ticket.order_id {
        Some(order_id) => match orders::get(store, order_id).await? {
            Some(order) => json!({
                "id": order.id,
                "status": order.status,
                "buyer_id": order.buyer_id,
                "seller_id": order.seller_id,
                "listing": {"id": order.listing.id, "title": order.listing.title},
                "amount_fen": order.amount_fen,
                "refunded_fen": order.refunded_fen,
                "before_dispute": order.before_dispute,
                "dispute_ticket": order.dispute_ticket,
                "refund_request": order.refund_request,
                "completed_at": order.completed_at,
                "timeline": order.timeline,
            }),
            None => Value::Null,
        },
        None => Value::Null,
    };
    Ok(view)
}

/// `staff` answers ticket `id`: the message as staff see it; 404 (no such ticket), 422 (text,
/// images), 409 `ticket_closed`.
pub async fn staff_message(
    store: &DynStore,
    id: &TicketId,
    staff: &StaffId,
    text: &str,
    images: &[String],
    now: OffsetDateTime,
) -> Result<Value, Error> {
    let body = NewMessage {
        text: text.to_owned(),
        images: images.to_vec(),
    };
    add_staff(store, id, staff, &body, now).await
}

/// The writes that close `ticket` (as read; open) by `staff` with `resolution` (already
/// checked): the ticket, conditioned on the version read (label [`VERSION_LABEL`]), leaving the
/// privacy index, and its queue entries moved to `closed`. For a caller that closes it in a
/// transaction of its own (staff's decision of a dispute, with the order's move).
pub fn closing(
    ticket: &Ticket,
    staff: &StaffId,
    resolution: String,
    now: OffsetDateTime,
) -> Result<Vec<Write>, Error> {
    if ticket.status == TicketStatus::Closed {
        return Err(closed());
    }
    let at = rfc3339(now);
    let mut next = ticket.clone();
    next.status = TicketStatus::Closed;
    next.closed_at = Some(at.clone());
    next.closed_by = Some(staff.clone());
    next.resolution = Some(resolution);
    next.updated_at = at;
    next.version = ticket.version + 1;
    let mut writes = vec![Write::put_if(next.item()?, ticket.as_read(), VERSION_LABEL)];
    writes.extend(
        ticket
            .queue_keys(TicketStatus::Open)
            .into_iter()
            .map(Write::delete),
    );
    writes.extend(next.queue_items()?.into_iter().map(Write::put));
    Ok(writes)
}

/// Checks a resolution: 1 to [`MAX_RESOLUTION_CHARS`] characters, trimmed (422 `resolution`).
pub fn resolution(text: &str) -> Result<String, Error> {
    bounded_text("resolution", text, MAX_RESOLUTION_CHARS)
}

/// `staff` closes ticket `id` with `resolution` (1 to 500 characters, shown to the member): the
/// ticket and its queue entries change in one transaction conditioned on the version read; an
/// open privacy request leaves the job's index. 404, 422 (`resolution`), 409 `ticket_closed`
/// or `ticket_changed`. Answers the ticket as staff see it.
pub async fn close(
    store: &DynStore,
    id: &TicketId,
    staff: &StaffId,
    resolution_text: &str,
    now: OffsetDateTime,
) -> Result<Value, Error> {
    let resolution = resolution(resolution_text)?;
    // A message landing between the read and the write fails the write: read again and close
    // what is there (a few tries; a ticket busier than that is 409 `ticket_changed`).
    for _ in 0..3 {
        let ticket = get(store, id).await?.ok_or(Error::NotFound("ticket"))?;
        let writes = closing(&ticket, staff, resolution.clone(), now)?;
        match store.transact(writes).await {
            Ok(()) => return staff_view(store, id, now).await,
            Err(StoreError::ConditionFailed {
                label: VERSION_LABEL,
            }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(changed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_parsed_or_named() {
        assert_eq!(parse_kind(None).unwrap(), None);
        assert_eq!(
            parse_kind(Some("privacy")).unwrap(),
            Some(TicketKind::Privacy)
        );
        assert!(
            matches!(parse_kind(Some("x")), Err(Error::Invalid { field, .. }) if field == "kind")
        );
        assert_eq!(parse_status(None).unwrap(), TicketStatus::Open);
        assert_eq!(parse_status(Some("closed")).unwrap(), TicketStatus::Closed);
        assert!(
            matches!(parse_status(Some("done")), Err(Error::Invalid { field, .. }) if field == "status")
        );
        assert_eq!(
            parse_due_before(Some("1970-01-01T00:01:00Z")).unwrap(),
            Some(60)
        );
        assert!(
            matches!(parse_due_before(Some("tomorrow")), Err(Error::Invalid { field, .. }) if field == "due_before")
        );
    }
}
