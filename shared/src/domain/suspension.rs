//! Staff suspend a member's account, and restore it (`POST /admin/v1/members/{id}/suspend`,
//! `…/restore`, a reason each, audited by the staff edge like every staff route).
//!
//! A suspension, as a marketplace does it:
//! - the member record carries [`Suspension`] (when, who, why), which staff's look-up shows;
//! - every session of the member ends at once ([`session::revoke_all`], the "sign out
//!   everywhere" path: tokens are checked against their session record on every request), and
//!   sign-in is refused while suspended (403 `account_suspended`, checked again in the login's
//!   own transaction, so a login racing the suspension either lands first and is revoked, or is
//!   refused); publishing is refused too;
//! - the member's published and closed listings are taken down, marked as hidden by the
//!   suspension ([`listings::hide_for_suspension`]): the feeds, search, nearby and their public
//!   list drop them; drafts and listings staff took down before are left as they are;
//! - their public profile is `unavailable` (no nickname, no avatar).
//!
//! Orders are not touched: an order in progress goes on (payment notifications, refunds, the
//! order jobs, settlement), and staff decide its disputes as usual.
//!
//! Restoring undoes exactly that: the listings the suspension hid come back to the status they
//! had (a listing staff took down by itself, before or during the suspension, stays down), then
//! the mark is cleared. Sessions are not given back: the member signs in again.
//!
//! Each step is idempotent, and the state is written first on suspension and last on restore, so
//! a call that fails halfway is completed by calling again: a repeated suspension (409
//! `already_suspended`) or restore of a member already in that state finishes the sweep first.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::listings::{self, MineEntry};
use super::lookup;
use super::members::{self, rfc3339, Suspension};
use crate::error::Error;
use crate::ids::{StaffId, UserId};
use crate::session;
use crate::store::{keys, Condition, DynStore, Query, Record, StoreError, Write};

/// Listing entries read at a time by a sweep.
const SWEEP_PAGE: usize = 100;

/// `POST /admin/v1/members/{id}/suspend`: 404 for an unknown (or deleted) member, 409
/// `already_suspended` (after completing the suspension's effects). Answers the look-up.
pub async fn suspend(
    store: &DynStore,
    id: &UserId,
    by: &StaffId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Value, Error> {
    let member = members::get(store, id)
        .await?
        .ok_or(Error::NotFound("member"))?;
    if let Some(current) = &member.suspension {
        sweep_suspended(store, id, &current.reason).await?;
        return Err(already(true));
    }
    let suspension = Suspension {
        at: rfc3339(now),
        by: by.clone(),
        reason: reason.to_owned(),
    };
    let write = Write::update(keys::member(id))
        .set("suspension", json!(suspension))
        .set("updated_at", rfc3339(now))
        .condition(
            Condition::All(vec![
                members::not_deleted(),
                Condition::Lacks("suspension".into()),
            ]),
            "member_not_suspended",
        )
        .build();
    match store.write(write).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed { .. }) => {
            // Suspended meanwhile, or its deletion started.
            return match members::get(store, id).await? {
                Some(m) if m.suspension.is_some() => Err(already(true)),
                _ => Err(Error::NotFound("member")),
            };
        }
        Err(e) => return Err(e.into()),
    }
    sweep_suspended(store, id, reason).await?;
    lookup::member(store, id).await
}

/// `POST /admin/v1/members/{id}/restore`: 404 for an unknown member, 409 `not_suspended`.
/// Answers the look-up.
pub async fn restore(store: &DynStore, id: &UserId, now: OffsetDateTime) -> Result<Value, Error> {
    let member = members::get(store, id)
        .await?
        .ok_or(Error::NotFound("member"))?;
    if member.suspension.is_none() {
        // A restore that stopped after clearing the mark left nothing behind: the listings
        // come back before it is cleared.
        return Err(already(false));
    }
    for_each_listing(store, id, |listing| async move {
        listings::unhide_after_suspension(store, &listing)
            .await
            .map(|_| ())
    })
    .await?;
    let write = Write::update(keys::member(id))
        .remove("suspension")
        .set("updated_at", rfc3339(now))
        .condition(
            Condition::All(vec![
                Condition::Present,
                Condition::Has("suspension".into()),
            ]),
            "member_suspended",
        )
        .build();
    match store.write(write).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed { .. }) => return Err(already(false)),
        Err(e) => return Err(e.into()),
    }
    lookup::member(store, id).await
}

/// What a suspension does once the mark is written: every session ends, every public listing is
/// hidden.
async fn sweep_suspended(store: &DynStore, id: &UserId, reason: &str) -> Result<(), Error> {
    session::revoke_all(store, id).await?;
    for_each_listing(store, id, |listing| async move {
        listings::hide_for_suspension(store, &listing, reason)
            .await
            .map(|_| ())
    })
    .await
}

/// Runs `each` on every listing of `owner` (their own entries, every status), page by page.
/// A listing gone meanwhile is skipped.
async fn for_each_listing<F, Fut>(store: &DynStore, owner: &UserId, each: F) -> Result<(), Error>
where
    F: Fn(crate::ids::ListingId) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let mut cursor = None;
    loop {
        let page = store
            .query(
                Query::partition(keys::mine(owner))
                    .limit(SWEEP_PAGE)
                    .after(cursor),
            )
            .await?;
        for item in page.items {
            let entry = MineEntry::from_item(item)?;
            match each(entry.listing_id).await {
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// 409 `already_suspended` / `not_suspended`.
fn already(suspended: bool) -> Error {
    match suspended {
        true => Error::Conflict {
            code: "already_suspended",
            message: "the member is suspended already".into(),
        },
        false => Error::Conflict {
            code: "not_suspended",
            message: "the member is not suspended".into(),
        },
    }
}
