//! `GET /v1/tickets` (the caller's tickets, newest first: one query of their entries and one
//! batch read of the tickets) and `GET /v1/tickets/{id}` (one ticket with its whole history).

use serde_json::{json, Value};

use super::{for_member, history, Ticket, TicketEntry, TicketMessage};
use crate::error::Error;
use crate::ids::{TicketId, UserId};
use crate::store::{keys, DynStore, Key, PageCursor, Query, Record, Records};

/// A ticket and its history as a member who may see it is shown them.
pub fn member_view(ticket: &Ticket, messages: &[TicketMessage], viewer: &UserId) -> Value {
    let mut view = ticket.summary();
    view["messages"] = json!(messages
        .iter()
        .map(|m| m.member_view(Some(viewer)))
        .collect::<Vec<_>>());
    view
}

/// One page of `member`'s tickets, newest first.
pub async fn list(
    store: &DynStore,
    member: &UserId,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let query = Query::partition(keys::tickets_of(member))
        .descending()
        .limit(limit);
    let cursor = crate::domain::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let ticket_keys = page
        .items
        .into_iter()
        .map(|entry| TicketEntry::from_item(entry).map(|e| keys::ticket(&e.ticket_id)))
        .collect::<Result<Vec<Key>, _>>()?;
    let found: Vec<Option<Ticket>> = store.get_records(&ticket_keys).await?;
    let items = found
        .into_iter()
        .flatten()
        .filter(|t| t.visible_to(member))
        .map(|t| t.summary())
        .collect();
    Ok((items, page.next.map(PageCursor::from)))
}

/// `GET /v1/tickets/{id}`: 404 for anyone who may not see it.
pub async fn read(store: &DynStore, id: &TicketId, member: &UserId) -> Result<Value, Error> {
    let ticket = for_member(store, id, member).await?;
    let messages = history(store, id).await?;
    Ok(member_view(&ticket, &messages, member))
}
