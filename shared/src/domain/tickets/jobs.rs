//! Overdue privacy requests (§八: answered within 15 days), flagged to staff by the scheduled
//! `order-jobs` run: `gsi1` `DUE#privacy` read in order of due time up to now; each ticket is
//! decided again on a consistent read (the index may lag) and, still open, gets `overdue_at`
//! and leaves the index in one write conditioned on the version read — so two runs at once flag
//! it once. The warning names the ticket id only (no personal data). The clock is an argument.

use serde::Serialize;
use time::OffsetDateTime;

use super::{get, TicketKind, TicketStatus, VERSION_LABEL};
use crate::domain::orders::rfc3339;
use crate::error::Error;
use crate::ids::TicketId;
use crate::store::schema::GSI1;
use crate::store::{keys, DynStore, Key, Query, SortKey, StoreError, Write};

/// What one run did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct OverdueReport {
    pub examined: u32,
    pub flagged: u32,
    /// Work was left for the next run.
    pub more: bool,
}

/// Flags the open privacy requests due at or before `now`, at most `limit` of them.
pub async fn flag_overdue(
    store: &DynStore,
    now: OffsetDateTime,
    limit: usize,
) -> Result<OverdueReport, Error> {
    let now_secs = now.unix_timestamp();
    let page = store
        .query(
            Query::partition(keys::due_partition(TicketKind::Privacy.as_str()))
                .index(GSI1)
                .sort(SortKey::Below(keys::due(now_secs + 1)))
                .limit(limit),
        )
        .await?;
    let mut report = OverdueReport {
        more: page.next.is_some(),
        ..OverdueReport::default()
    };
    for entry in page.items {
        report.examined += 1;
        let Some(id) =
            Key::of(&entry).and_then(|k| k.pk.strip_prefix(keys::TICKET).and_then(TicketId::parse))
        else {
            tracing::error!("privacy due entry without a ticket");
            continue;
        };
        let Some(ticket) = get(store, &id).await? else {
            continue;
        };
        let due = ticket.kind == TicketKind::Privacy
            && ticket.status == TicketStatus::Open
            && ticket.overdue_at.is_none()
            && ticket.due_at <= now_secs;
        if !due {
            continue;
        }
        let mut next = ticket.clone();
        next.overdue_at = Some(rfc3339(now));
        next.version = ticket.version + 1;
        let write = Write::put_if(next.item()?, ticket.as_read(), VERSION_LABEL);
        match store.write(write).await {
            Ok(_) => {
                report.flagged += 1;
                tracing::warn!(ticket_id = %id, "privacy request overdue");
            }
            // Changed meanwhile (a message, a close, another run): looked at again next time
            // if it is still listed.
            Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}
