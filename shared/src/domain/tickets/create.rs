//! `POST /v1/tickets`: a member files a ticket. Everything is checked before anything is
//! written; the ticket, its first message, the members' entries and the two queue entries are
//! one transaction — for a dispute, the same transaction as the order's move to `disputed`
//! (conditioned on the order's version: a lost race is 409 `order_changed` and writes nothing).

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    message_item, Sender, Ticket, TicketEntry, TicketKind, TicketMessage, TicketStatus,
    MAX_SUBJECT_CHARS, MAX_TEXT_CHARS, NEW_TICKET_LABEL, PRIVACY_DUE_SECS,
};
use crate::config::Config;
use crate::domain::orders::{self, rfc3339, Action, Change, Order, OrderStatus};
use crate::domain::profile::bounded_text;
use crate::domain::{listings, members};
use crate::error::Error;
use crate::ids::{ListingId, OrderId, ReviewId, TicketId, UserId};
use crate::store::{keys, Condition, DynStore, Record, Write};

/// The body of `POST /v1/tickets`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    pub kind: String,
    pub subject: String,
    pub text: String,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub listing_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub review_id: Option<String>,
}

/// A [`NewTicket`] whose fields are each acceptable (what they name is checked against the store
/// by [`create`]).
#[derive(Clone, Debug)]
pub struct Checked {
    pub kind: TicketKind,
    pub subject: String,
    pub text: String,
    pub order_id: Option<OrderId>,
    pub listing_id: Option<ListingId>,
    pub user_id: Option<UserId>,
    pub review_id: Option<ReviewId>,
}

fn id<T>(
    field: &str,
    text: &Option<String>,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, Error> {
    text.as_deref()
        .map(|t| parse(t).ok_or_else(|| Error::invalid(field, "is not an id of its kind")))
        .transpose()
}

impl NewTicket {
    /// Each field's own check (422 naming it).
    pub fn check(&self) -> Result<Checked, Error> {
        let kind = TicketKind::parse(&self.kind).ok_or_else(|| {
            let names: Vec<&str> = TicketKind::ALL.iter().map(|k| k.as_str()).collect();
            Error::invalid(
                "kind",
                format!("must be one of {}, not {:?}", names.join(", "), self.kind),
            )
        })?;
        let checked = Checked {
            kind,
            subject: bounded_text("subject", &self.subject, MAX_SUBJECT_CHARS)?,
            text: bounded_text("text", &self.text, MAX_TEXT_CHARS)?,
            order_id: id("order_id", &self.order_id, OrderId::parse)?,
            listing_id: id("listing_id", &self.listing_id, ListingId::parse)?,
            user_id: id("user_id", &self.user_id, UserId::parse)?,
            review_id: id("review_id", &self.review_id, ReviewId::parse)?,
        };
        if kind.shared_with_the_order() && checked.order_id.is_none() {
            return Err(Error::invalid(
                "order_id",
                format!(
                    "is required for {} ticket",
                    crate::english::with_article(kind.as_str())
                ),
            ));
        }
        let targets = [
            ("listing_id", checked.listing_id.is_some()),
            ("review_id", checked.review_id.is_some()),
            ("user_id", checked.user_id.is_some()),
        ];
        if kind == TicketKind::Report {
            // A report is about what breaks the rules, not about the reporter's order (that is
            // an `order` or a `dispute` ticket).
            if checked.order_id.is_some() {
                return Err(Error::invalid(
                    "order_id",
                    "a report names a listing_id, a review_id or a user_id, not an order",
                ));
            }
            if !targets.iter().any(|(_, given)| *given) {
                return Err(Error::invalid(
                    "listing_id",
                    "a report names a listing_id, a review_id or a user_id",
                ));
            }
        } else if let Some((field, _)) = targets.iter().find(|(_, given)| *given) {
            return Err(Error::invalid(field, "only a report names one"));
        }
        Ok(checked)
    }
}

/// Why a party's order cannot be disputed now (the message of 409 `not_disputable`): `None` when
/// it can.
fn not_disputable(order: &Order, window_secs: i64, now: i64) -> Option<&'static str> {
    // Staff's decision of a dispute is final: a released order (or one partly refunded, back in
    // its state) is not disputed again.
    if order.dispute_ticket.is_some() && order.status != OrderStatus::Disputed {
        return Some("this order was disputed already, and staff decided the dispute");
    }
    match order.status {
        OrderStatus::Accepted if order.refund_request.is_some() => None,
        OrderStatus::Accepted => Some(
            "an accepted order can be disputed only after its refund request was declined; \
             ask for a refund first",
        ),
        OrderStatus::Completed => {
            let completed = order.completed_at.as_deref().map_or(0, orders::epoch);
            (now > completed + window_secs)
                .then_some("the time to dispute this order (after its completion) has passed")
        }
        OrderStatus::Disputed => Some("this order is already disputed"),
        _ => Some(
            "only an accepted order whose refund was declined, or a completed one, can be disputed",
        ),
    }
}

/// `member` files `body` at `now`: 201 with the ticket as they see it.
pub async fn create(
    store: &DynStore,
    api: &dyn crate::wechat::api::WechatApi,
    config: &Config,
    member: &UserId,
    body: &NewTicket,
    now: OffsetDateTime,
) -> Result<Value, Error> {
    let checked = body.check()?;
    let now_secs = now.unix_timestamp();
    let order = match &checked.order_id {
        Some(id) => Some(orders::for_party(store, id, member).await?.0),
        None => None,
    };
    if let Some(listing) = &checked.listing_id {
        let found = listings::get(store, listing).await?;
        if found.and_then(|l| l.view_for(Some(member))).is_none() {
            return Err(Error::NotFound("listing"));
        }
    }
    if let Some(user) = &checked.user_id {
        if user == member {
            return Err(Error::invalid("user_id", "must not be yourself"));
        }
        if members::get(store, user).await?.is_none() {
            return Err(Error::NotFound("user"));
        }
    }
    if let Some(review) = &checked.review_id {
        // Its presence is all a report needs (the review's own record is the reviews module's).
        if store.get(&keys::review(review)).await?.is_none() {
            return Err(Error::NotFound("review"));
        }
    }
    let due_secs = match checked.kind {
        TicketKind::Privacy => PRIVACY_DUE_SECS,
        _ => i64::try_from(config.ticket_due.as_secs()).unwrap_or(i64::MAX / 4),
    };
    let at = rfc3339(now);
    let id = TicketId::generate();
    let other_party = match (&order, checked.kind.shared_with_the_order()) {
        (Some(order), true) => order
            .role_of(member)
            .map(|role| crate::domain::orders::view::other(order, role).1.clone()),
        _ => None,
    };
    let ticket = Ticket {
        id: id.clone(),
        kind: checked.kind,
        subject: checked.subject,
        author_id: member.clone(),
        order_id: checked.order_id,
        other_party,
        listing_id: checked.listing_id,
        user_id: checked.user_id,
        review_id: checked.review_id,
        status: TicketStatus::Open,
        created_at: at.clone(),
        updated_at: at.clone(),
        due_at: now_secs + due_secs,
        overdue_at: None,
        messages: 1,
        closed_at: None,
        closed_by: None,
        resolution: None,
        version: 1,
    };
    let mut message = TicketMessage {
        id: crate::ids::time_order(),
        from: Sender::Member,
        user_id: Some(member.clone()),
        staff_id: None,
        text: checked.text,
        images: Vec::new(),
        holds: Default::default(),
        created_at: at,
        text_review: None,
    };
    let held = Box::pin(super::messages::check_shared(
        store,
        api,
        &ticket,
        &mut message,
        now,
    ))
    .await?;
    let mut writes = vec![
        Write::put_if(ticket.item()?, Condition::Absent, NEW_TICKET_LABEL),
        Write::put(message_item(&id, &message)?),
    ];
    let entry = TicketEntry {
        ticket_id: id.clone(),
    };
    for reader in std::iter::once(member).chain(ticket.other_party.as_ref()) {
        writes.push(Write::put(
            entry.to_item(keys::ticket_entry(reader, &id), None)?,
        ));
    }
    writes.extend(ticket.queue_items()?.into_iter().map(Write::put));
    writes.extend(held);
    match (checked.kind, order) {
        (TicketKind::Dispute, Some(order)) => {
            if let Some(why) = not_disputable(
                &order,
                i64::try_from(config.dispute_window.as_secs()).unwrap_or(i64::MAX / 4),
                now_secs,
            ) {
                return Err(Error::Conflict {
                    code: "not_disputable",
                    message: why.into(),
                });
            }
            let role = order.role_of(member).ok_or(Error::NotFound("order"))?;
            let change = Change::new(Action::OpenDispute, role.actor(), now)
                .reason(Some(ticket.subject.clone()));
            let mut next = order.transition(&change, &config.orders)?;
            next.dispute_ticket = Some(id.clone());
            orders::commit(store, &order, &next, writes).await?;
        }
        _ => store.transact(writes).await?,
    }
    Ok(super::list::member_view(&ticket, &[message], member))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(kind: &str) -> NewTicket {
        NewTicket {
            kind: kind.into(),
            subject: "主题".into(),
            text: "内容".into(),
            order_id: None,
            listing_id: None,
            user_id: None,
            review_id: None,
        }
    }

    fn field(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_field_is_checked_and_named() {
        assert!(body("other").check().is_ok());
        assert!(body("privacy").check().is_ok());
        assert_eq!(field(body("bug").check().unwrap_err()), "kind");
        assert_eq!(field(body("dispute").check().unwrap_err()), "order_id");
        assert_eq!(field(body("order").check().unwrap_err()), "order_id");
        assert_eq!(field(body("report").check().unwrap_err()), "listing_id");
        // The article follows the kind's sound.
        for (kind, message) in [
            ("order", "is required for an order ticket"),
            ("dispute", "is required for a dispute ticket"),
        ] {
            match body(kind).check() {
                Err(Error::Invalid { message: m, .. }) => assert_eq!(m, message),
                other => panic!("{other:?}"),
            }
        }
        let mut b = body("other");
        b.listing_id = Some(ListingId::generate().to_string());
        assert_eq!(field(b.check().unwrap_err()), "listing_id");
        let mut b = body("report");
        b.review_id = Some("r_bad".into());
        assert_eq!(field(b.check().unwrap_err()), "review_id");
        b.review_id = Some(ReviewId::generate().to_string());
        assert!(b.check().is_ok());
        b.order_id = Some("01KB5Q0Z3M8RWJ6PQ4N7T2XY".into());
        assert_eq!(field(b.check().unwrap_err()), "order_id");
        let mut b = body("other");
        b.subject = "字".repeat(101);
        assert_eq!(field(b.check().unwrap_err()), "subject");
        b.subject = "字".repeat(100);
        b.text = " ".into();
        assert_eq!(field(b.check().unwrap_err()), "text");
        b.text = "字".repeat(2001);
        assert_eq!(field(b.check().unwrap_err()), "text");
    }
}
