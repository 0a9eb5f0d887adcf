//! Account deletion (privacy policy §四(五), §五(一)): `DELETE /v1/me`, staff's
//! `POST /admin/v1/members/{id}/deletion` for a request that came through customer service, and
//! the `deletion-jobs` run that completes each deletion.
//!
//! **Refusal.** While the member has an order that is not final as buyer or seller — final:
//! `cancelled`, `expired`, `refunded`, and `completed` once `RENJI_DISPUTE_DAYS` have passed since
//! its completion — or an open dispute, or (as seller) earnings not yet settled (a paid order
//! whose split is not final: `settlement` names its state), the request is 409
//! `deletion_blocked` with `blocking`
//! ([`blocking`], read from the `ORDERS#<member>#<role>#<status>` lists).
//!
//! **Start** ([`start`], synchronous). The race with a new order is closed in three steps: the
//! member record's `deleting` marker is set to [`DELETING_CHECKING`] (every order, follow and
//! block conditions on its absence: [`members::active`]); then the blockers are read again (an
//! order that landed before the marker is seen; one after it fails); then, in one transaction,
//! the record becomes the deleting record (no personal field, `deleting` = [`DELETING`], the
//! [`Deletion`] state with who asked, when and the anonymous reference, listed in `gsi1`
//! `DUE#deletion`), the openid claim is deleted (a later login with the same WeChat account makes
//! a new member) and `account.delete` is audited. Then every session is revoked. A repeat answers
//! the same state (202).
//!
//! **The job** ([`run`]) completes each deletion in bounded batches, oldest first: every step
//! drains one list (each batch is at most [`MAX_TRANSACTION_WRITES`] writes, conditional where a
//! count moves, and removes what it handled), so a crash anywhere leaves a state the next run
//! continues from, and a step that finds nothing costs one query. Each run starts from the first
//! step (nothing new can name a deleting member, so the steps finish) and stops starting batches
//! once its [`Budget`] is spent. What each partition holds and what deletion does with it is
//! [`COVERAGE`] (a test keeps it complete against [`keys::PARTITIONS`]).
//!
//! **The identity claim** is released (decremented) when the verification record goes — except
//! for an account staff banned for fraud, whose claim is kept as its keyed hash so the identity
//! cannot verify a fresh account. There is no ban yet: [`keeps_identity_claim`] is where it
//! goes (a `banned: {reason: fraud}` on the member record, set by the ban, read there).
//!
//! **Blocks made before the reverse index** (`BLOCKED#<blocked>`, written with each block since)
//! have no reverse entry: the one-off `backfill_blocked_by` pass (`scripts/`, not yet written;
//! it reads every `BLOCKS#` partition once and writes the missing `BLOCKED#` entries) must run
//! before the first deletion in an environment holding such blocks. Until then such a block
//! stays, naming the deleted id only (the blocker's list shows it as an id alone).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::audit::{self, Actor, AuditRecord, Target};
use super::blocks::Block;
use super::favorites::Favourite;
use super::follows::Edge;
use super::listings::{self, MineEntry};
use super::members::{self, rfc3339, Member, DELETING, DELETING_CHECKING};
use super::orders::{epoch, Order, OrderEntry, OrderStatus};
use super::reviews::ReviewEntry;
use super::shares::Share;
use super::tickets::{Ticket, TicketEntry, TicketMessage};
use super::verification::{self, Verification};
use crate::app::App;
use crate::error::Error;
use crate::ids::{StaffId, TicketId, UserId};
use crate::ratelimit::Class;
use crate::staff::StaffRole;
use crate::store::schema::{GSI1, TABLE};
use crate::store::{
    keys, Condition, DynStore, Item, Key, Query, Record, Records, SortKey, StoreError, Write,
    MAX_BATCH_GET, MAX_TRANSACTION_WRITES,
};

/// The `gsi1` due-list kind of deleting members (`DUE#deletion`).
pub const DUE_KIND: &str = "deletion";

/// Where a deletion is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionStatus {
    Deleting,
    Deleted,
}

/// Who asked for the deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum RequestedBy {
    /// The member, `DELETE /v1/me`.
    Member,
    /// Staff, for the request in `ticket_id` (§四(五)2).
    Staff {
        staff_id: StaffId,
        ticket_id: TicketId,
    },
}

/// The deletion state on the member record (and its tombstone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub status: DeletionStatus,
    pub requested_at: String,
    pub requested_by: RequestedBy,
    /// The fresh id that replaces the member in the records kept (orders, reviews, tickets): made
    /// once, kept only until the deletion ends, so a resumed run uses the same one. It names no
    /// member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_ref: Option<UserId>,
    /// The Tencent IM account is deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub im_deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

impl Deletion {
    /// What `202` answers: the state, never the anonymous reference.
    pub fn view(&self) -> Value {
        let mut view = json!({
            "status": self.status,
            "requested_at": self.requested_at,
            "requested_by": match self.requested_by {
                RequestedBy::Member => "member",
                RequestedBy::Staff { .. } => "staff",
            },
        });
        if let RequestedBy::Staff { ticket_id, .. } = &self.requested_by {
            view["ticket_id"] = json!(ticket_id);
        }
        if let Some(at) = &self.deleted_at {
            view["deleted_at"] = json!(at);
        }
        view
    }
}

/// What a deletion request answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Started {
    /// 202: the deletion runs (or ran): its state.
    Accepted(Value),
    /// 409 `deletion_blocked`: what blocks it.
    Blocked(Vec<Value>),
}

/// 202 with the deletion's state, or 409 `deletion_blocked` with what blocks it (an error, so
/// the staff edge audits the refusal's code).
pub fn answer(started: Started) -> Result<lambda_http::Response<lambda_http::Body>, Error> {
    match started {
        Started::Accepted(state) => Ok(crate::http::json_response(
            lambda_http::http::StatusCode::ACCEPTED,
            &state,
        )),
        Started::Blocked(blocking) => Err(Error::DeletionBlocked(blocking)),
    }
}

/// `POST /admin/v1/members/{id}/deletion`: the ticket the deletion answers (a ticket the member
/// wrote) and, optionally, why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffRequest {
    pub ticket_id: String,
    #[serde(default, deserialize_with = "crate::domain::profile::not_null")]
    pub reason: Option<String>,
}

/// Staff start `member`'s deletion for the request in the body's ticket: 422 naming
/// `ticket_id` when it is not a ticket id, or not a ticket of this member's; 404 for an unknown
/// member. Nothing is written before every check passes.
pub async fn staff_request(
    app: &App,
    member: &UserId,
    staff: StaffId,
    role: StaffRole,
    body: StaffRequest,
    now: OffsetDateTime,
) -> Result<Started, Error> {
    let ticket = TicketId::parse(body.ticket_id.trim())
        .ok_or_else(|| Error::invalid("ticket_id", "is not a ticket id"))?;
    let reason = body
        .reason
        .as_deref()
        .map(|r| crate::domain::profile::bounded_text("reason", r, 200))
        .transpose()?
        .filter(|r| !r.is_empty());
    let current = members::get_any(&app.store, member)
        .await?
        .ok_or(Error::NotFound("member"))?;
    // A repeat answers the state, whatever ticket it names (the first one's is anonymised).
    if let Some(state) = &current.deletion {
        return Ok(Started::Accepted(state.view()));
    }
    let found = crate::domain::tickets::get(&app.store, &ticket).await?;
    if found.is_none_or(|t| &t.author_id != member) {
        return Err(Error::invalid(
            "ticket_id",
            "is not a ticket this member wrote",
        ));
    }
    Box::pin(start(
        app,
        member,
        Requester::Staff {
            id: staff,
            role,
            ticket,
            reason,
        },
        now,
    ))
    .await
}

/// The statuses that always block a deletion (`completed` blocks within its dispute window).
fn blocking_status(status: OrderStatus) -> bool {
    !status.is_final() && status != OrderStatus::Completed
}

const ROLES: [&str; 2] = ["buyer", "seller"];

/// Everything that blocks `member`'s deletion at `now`: orders not final (as buyer or seller),
/// and the open dispute of each disputed one.
pub async fn blocking(
    app: &App,
    member: &UserId,
    now: OffsetDateTime,
) -> Result<Vec<Value>, Error> {
    let store = &app.store;
    let window = i64::try_from(app.config.dispute_window.as_secs()).unwrap_or(i64::MAX / 4);
    let mut found = Vec::new();
    for role in ROLES {
        for status in OrderStatus::ALL {
            if status.is_final() {
                continue;
            }
            let ids =
                all_entries(store, &keys::orders_of(member, role, Some(status.as_str()))).await?;
            let orders: Vec<Key> = ids
                .iter()
                .filter_map(|item| OrderEntry::from_item(item.clone()).ok())
                .map(|e| keys::order(&e.order_id))
                .collect();
            for chunk in orders.chunks(MAX_BATCH_GET) {
                for order in store
                    .get_records::<Order>(chunk)
                    .await?
                    .into_iter()
                    .flatten()
                {
                    let blocks = match order.status {
                        OrderStatus::Completed => order.completed_at.as_deref().is_none_or(|at| {
                            epoch(at).saturating_add(window) > now.unix_timestamp()
                        }),
                        other => blocking_status(other),
                    };
                    // A seller's earnings not yet settled (the split not final), open or not.
                    let unsettled = role == "seller"
                        && order.settle.is_some()
                        && order.payment.is_some()
                        && !order.settled();
                    if !blocks && !unsettled {
                        continue;
                    }
                    let mut blocker = json!({
                        "kind": "order", "id": order.id, "role": role,
                        "status": order.status.as_str(),
                    });
                    if unsettled {
                        blocker["settlement"] = json!(order
                            .settlement
                            .as_ref()
                            .map_or("pending", |s| s.state.as_str()));
                    }
                    found.push(blocker);
                    if let (OrderStatus::Disputed, Some(ticket)) =
                        (order.status, &order.dispute_ticket)
                    {
                        found.push(json!({"kind": "dispute", "id": ticket, "order_id": order.id}));
                    }
                }
            }
        }
    }
    Ok(found)
}

/// Every item of a (small) list partition.
async fn all_entries(store: &DynStore, partition: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query(Query::partition(partition).limit(100).after(cursor))
            .await?;
        items.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(items),
        }
    }
}

/// Who starts a deletion, for the record and the audit trail.
#[derive(Clone, Debug)]
pub enum Requester {
    Member,
    Staff {
        id: StaffId,
        role: StaffRole,
        ticket: TicketId,
        reason: Option<String>,
    },
}

/// Starts the deletion of `member` (see the module). `NotFound` for an unknown member.
pub async fn start(
    app: &App,
    member: &UserId,
    by: Requester,
    now: OffsetDateTime,
) -> Result<Started, Error> {
    let store = &app.store;
    let current = members::get_any(store, member)
        .await?
        .ok_or(Error::NotFound("member"))?;
    if let Some(state) = &current.deletion {
        return Ok(Started::Accepted(state.view()));
    }
    let blockers = Box::pin(blocking(app, member, now)).await?;
    if !blockers.is_empty() {
        return Ok(Started::Blocked(blockers));
    }
    // Reserve: from here on no order names the member; an earlier one is seen below. A
    // reservation left by a crashed request (or a concurrent one) is taken over.
    let reserve = Write::update(keys::member(member))
        .set("deleting", DELETING_CHECKING)
        .condition(
            Condition::All(vec![
                Condition::Present,
                Condition::Under("deleting".into(), DELETING),
            ]),
            "not_deleting",
        )
        .build();
    match store.write(reserve).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed { .. }) => return repeat(store, member).await,
        Err(e) => return Err(e.into()),
    }
    let blockers = Box::pin(blocking(app, member, now)).await?;
    if !blockers.is_empty() {
        let release = Write::update(keys::member(member))
            .remove("deleting")
            .condition(
                Condition::Equals("deleting".into(), json!(DELETING_CHECKING)),
                "checking",
            )
            .build();
        match store.write(release).await {
            Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(Started::Blocked(blockers));
    }
    let (requested_by, actor, reason) = match by {
        Requester::Member => (RequestedBy::Member, Actor::Member(member.clone()), None),
        Requester::Staff {
            id,
            role,
            ticket,
            reason,
        } => {
            let why = match reason {
                Some(r) => format!("ticket {ticket}: {r}"),
                None => format!("ticket {ticket}"),
            };
            (
                RequestedBy::Staff {
                    staff_id: id.clone(),
                    ticket_id: ticket,
                },
                Actor::Staff { id, role },
                Some(why),
            )
        }
    };
    let state = Deletion {
        status: DeletionStatus::Deleting,
        requested_at: rfc3339(now),
        requested_by,
        anonymous_ref: Some(UserId::generate()),
        im_deleted: false,
        deleted_at: None,
    };
    let record = stripped(&current, state.clone(), now)?;
    let mut writes = vec![Write::put_if(
        record.to_item(
            keys::member(member),
            Some(keys::deletion_listed(now.unix_timestamp(), member)),
        )?,
        Condition::Equals("deleting".into(), json!(DELETING_CHECKING)),
        "checking",
    )];
    if !current.openid.is_empty() {
        writes.push(Write::delete(keys::openid(&current.openid)));
    }
    let record_audit = AuditRecord::by(
        actor,
        now,
        "account.delete",
        Target::member(member),
        reason,
        "ok",
    );
    writes.extend(audit::writes(&record_audit, app.config.audit_keep)?);
    match store.transact(writes).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { label: "checking" }) => {
            return repeat(store, member).await
        }
        Err(e) => return Err(e.into()),
    }
    crate::session::revoke_all(store, member).await?;
    tracing::info!(user_id = %member, "account deletion started");
    Ok(Started::Accepted(state.view()))
}

/// The answer to a request that met another one's reservation or start.
async fn repeat(store: &DynStore, member: &UserId) -> Result<Started, Error> {
    match members::get_any(store, member).await? {
        Some(Member {
            deletion: Some(state),
            ..
        }) => Ok(Started::Accepted(state.view())),
        Some(_) => Err(Error::Conflict {
            code: "deletion_in_progress",
            message: "another deletion request for this account is being checked; retry".into(),
        }),
        None => Err(Error::NotFound("member")),
    }
}

/// The member record while deleting, and as a tombstone: the id, the counts others'
/// transactions move, `created_at` and the deletion state; no personal field. Built from these
/// fields alone, so every other field of [`Member`] — nickname, avatar, gender, birth date,
/// residence, WeChat ids, the verified badge, and any a later change adds (with a serde default,
/// as every optional member field has) — is left out without naming it here.
fn stripped(current: &Member, state: Deletion, now: OffsetDateTime) -> Result<Member, Error> {
    serde_json::from_value(json!({
        "id": current.id,
        "followers_count": current.followers_count,
        "following_count": current.following_count,
        "listings_count": current.listings_count,
        "rating_sum": current.rating_sum,
        "rating_count": current.rating_count,
        "created_at": current.created_at,
        "updated_at": rfc3339(now),
        "deletion": state,
        "deleting": DELETING,
    }))
    .map_err(internal)
}

/// The port the job deletes the member's Tencent IM account through (IM's REST API
/// `account_delete`; `App::im_accounts`).
pub use crate::im::ImAccounts;

/// No IM configured for the function: there is no account to delete.
pub struct NoImAccounts;

#[async_trait]
impl ImAccounts for NoImAccounts {
    async fn delete_account(&self, _member: &UserId) -> Result<(), crate::im::ImError> {
        Ok(())
    }
}

/// How much one run may do.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// No batch is started after this much time (one always is).
    pub time: Duration,
    /// No batch is started after this many (tests: a tiny budget stops mid-way).
    pub batches: usize,
    /// Deleting members looked at per run.
    pub members: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            time: Duration::from_secs(40),
            batches: usize::MAX,
            members: 20,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Deleting members worked on.
    pub members: usize,
    /// Batches (each one transaction or a few) written.
    pub batches: usize,
    /// Deletions finished (tombstone written).
    pub finished: usize,
    /// IM account deletions that failed (retried next run).
    pub im_failures: usize,
    /// The budget ran out before everything due was done.
    pub budget_spent: bool,
}

struct Meter {
    started: Instant,
    budget: Budget,
    batches: usize,
}

impl Meter {
    /// Whether no further batch may start.
    fn spent(&self) -> bool {
        self.batches > 0
            && (self.batches >= self.budget.batches || self.started.elapsed() >= self.budget.time)
    }
}

/// A step's end: everything drained, or the budget stopped it.
#[derive(PartialEq, Eq)]
enum Step {
    Done,
    Paused,
}

/// One run of the deletion job at `now`.
pub async fn run(
    app: &App,
    im: &dyn ImAccounts,
    now: OffsetDateTime,
    budget: Budget,
) -> Result<Report, Error> {
    let mut report = Report::default();
    let mut meter = Meter {
        started: Instant::now(),
        budget,
        batches: 0,
    };
    let due = app
        .store
        .query(
            Query::partition(keys::due_partition(DUE_KIND))
                .index(GSI1)
                .sort(SortKey::Below(format!(
                    "{}~",
                    keys::due(now.unix_timestamp())
                )))
                .limit(budget.members),
        )
        .await?;
    for item in due.items {
        if meter.spent() {
            report.budget_spent = true;
            break;
        }
        let Some(id) = item
            .get("id")
            .and_then(Value::as_str)
            .and_then(UserId::parse)
        else {
            continue;
        };
        // The index may lag: the record itself decides.
        let Some(member) = members::get_any(&app.store, &id).await? else {
            continue;
        };
        let Some(state) = member.deletion.clone() else {
            continue;
        };
        if state.status != DeletionStatus::Deleting {
            continue;
        }
        report.members += 1;
        let before = meter.batches;
        let result = Box::pin(complete(
            app,
            im,
            &member,
            state,
            now,
            &mut meter,
            &mut report,
        ))
        .await;
        report.batches += meter.batches - before;
        match result {
            Ok(Step::Done) => report.finished += 1,
            Ok(Step::Paused) => {}
            // One member's failure never stops the others; the next run resumes it.
            Err(e) => tracing::error!(user_id = %id, error = %e, "account deletion step failed"),
        }
    }
    if meter.spent() {
        report.budget_spent = true;
    }
    Ok(report)
}

/// Runs every step for one member, then the IM account, then the tombstone.
async fn complete(
    app: &App,
    im: &dyn ImAccounts,
    member: &Member,
    state: Deletion,
    now: OffsetDateTime,
    meter: &mut Meter,
    report: &mut Report,
) -> Result<Step, Error> {
    let id = &member.id;
    let anon = state
        .anonymous_ref
        .clone()
        .ok_or_else(|| Error::Internal("deleting member without an anonymous reference".into()))?;
    let w = Work {
        app,
        store: &app.store,
        id,
        anon: &anon,
    };
    macro_rules! step {
        ($e:expr) => {
            if $e.await? == Step::Paused {
                return Ok(Step::Paused);
            }
        };
    }
    step!(w.own_partition(meter));
    step!(w.listings(meter));
    step!(w.favourites(meter));
    step!(w.follows(meter, true));
    step!(w.follows(meter, false));
    step!(w.blocks(meter));
    step!(w.blocked_by(meter));
    step!(w.shares(meter));
    step!(w.drain(meter, &format!("{}{id}", keys::SHARED)));
    for class in Class::ALL {
        step!(w.rate(meter, class));
    }
    step!(w.reviews(meter, "author"));
    step!(w.reviews(meter, "seller"));
    step!(w.tickets(meter));
    for role in ROLES {
        step!(w.orders(meter, role));
    }
    if meter.spent() {
        return Ok(Step::Paused);
    }
    if !state.im_deleted {
        if let Err(e) = im.delete_account(id).await {
            tracing::warn!(user_id = %id, error = %e, "IM account not deleted; retried next run");
            report.im_failures += 1;
            return Ok(Step::Paused);
        }
        let done = Deletion {
            im_deleted: true,
            ..state.clone()
        };
        app.store
            .write(
                Write::update(keys::member(id))
                    .set("deletion", serde_json::to_value(&done).map_err(internal)?)
                    .condition(
                        Condition::Equals("deleting".into(), json!(DELETING)),
                        "deleting",
                    )
                    .build(),
            )
            .await?;
    }
    // The tombstone: the id, the deletion's times and who asked; no anonymous reference, no
    // counts, no personal field; out of the due list.
    let tombstone = Member {
        followers_count: 0,
        following_count: 0,
        listings_count: 0,
        rating_sum: 0,
        rating_count: 0,
        ..stripped(
            member,
            Deletion {
                status: DeletionStatus::Deleted,
                anonymous_ref: None,
                im_deleted: true,
                deleted_at: Some(rfc3339(now)),
                ..state
            },
            now,
        )?
    };
    let mut writes = vec![Write::put_if(
        tombstone.to_item(keys::member(id), None)?,
        Condition::Equals("deleting".into(), json!(DELETING)),
        "deleting",
    )];
    let record = AuditRecord::by(
        Actor::System,
        now,
        "account.deleted",
        Target::member(id),
        None,
        "ok",
    );
    writes.extend(audit::writes(&record, app.config.audit_keep)?);
    app.store.transact(writes).await?;
    tracing::info!(user_id = %id, "account deletion finished");
    Ok(Step::Done)
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// One member's deletion work.
struct Work<'a> {
    app: &'a App,
    store: &'a DynStore,
    id: &'a UserId,
    anon: &'a UserId,
}

impl Work<'_> {
    /// The first `limit` items left in `partition` (and `sort`).
    async fn first(
        &self,
        partition: &str,
        sort: SortKey,
        limit: usize,
    ) -> Result<Vec<Item>, Error> {
        Ok(self
            .store
            .query(Query::partition(partition).sort(sort).limit(limit))
            .await?
            .items)
    }

    /// Deletes every item of `partition`, [`MAX_TRANSACTION_WRITES`] at a time.
    async fn drain(&self, meter: &mut Meter, partition: &str) -> Result<Step, Error> {
        self.drain_sorted(meter, partition, SortKey::Any).await
    }

    async fn drain_sorted(
        &self,
        meter: &mut Meter,
        partition: &str,
        sort: SortKey,
    ) -> Result<Step, Error> {
        let page = MAX_TRANSACTION_WRITES;
        self.batches(meter, partition, sort, page, |items| async move {
            let writes = items
                .iter()
                .filter_map(Key::of)
                .map(Write::delete)
                .collect();
            Ok(self.store.transact(writes).await?)
        })
        .await
    }

    /// Works through `partition` an item at a time until it is empty or the budget is spent;
    /// `work` handles one item (its own writes, one batch) and takes it out of the partition.
    async fn one_by_one<F, Fut>(
        &self,
        meter: &mut Meter,
        partition: &str,
        mut work: F,
    ) -> Result<Step, Error>
    where
        F: FnMut(Item) -> Fut,
        Fut: std::future::Future<Output = Result<(), Error>>,
    {
        loop {
            if meter.spent() {
                return Ok(Step::Paused);
            }
            let items = self.first(partition, SortKey::Any, 5).await?;
            if items.is_empty() {
                return Ok(Step::Done);
            }
            for item in items {
                if meter.spent() {
                    return Ok(Step::Paused);
                }
                work(item).await?;
                meter.batches += 1;
            }
        }
    }

    /// Pages through `partition` (`page` items at a time) until it is empty or the budget is
    /// spent; `batch` turns each page into one batch of writes, which takes it out of the
    /// partition.
    async fn batches<F, Fut>(
        &self,
        meter: &mut Meter,
        partition: &str,
        sort: SortKey,
        page: usize,
        mut batch: F,
    ) -> Result<Step, Error>
    where
        F: FnMut(Vec<Item>) -> Fut,
        Fut: std::future::Future<Output = Result<(), Error>>,
    {
        loop {
            if meter.spent() {
                return Ok(Step::Paused);
            }
            let items = self.first(partition, sort.clone(), page).await?;
            if items.is_empty() {
                return Ok(Step::Done);
            }
            batch(items).await?;
            meter.batches += 1;
        }
    }

    /// `USER#<id>` but the record itself: sessions, idempotency records, verification counts,
    /// payout accounts (their receivers removed at the providers first), and the verification
    /// record (its sealed name and number) with its identity claim released.
    async fn own_partition(&self, meter: &mut Meter) -> Result<Step, Error> {
        let user = keys::user(self.id);
        // A copy of their data: the document (and the one it replaced) deleted before its record.
        let export = keys::export(self.id);
        if let Some(record) = self
            .store
            .get_record::<crate::domain::exports::ExportRecord>(&export)
            .await?
        {
            if meter.spent() {
                return Ok(Step::Paused);
            }
            let archive = self.app.archive()?;
            for object in std::iter::once(&record.object).chain(record.previous.as_ref()) {
                archive.delete(object).await?;
            }
            self.store.write(Write::delete(export)).await?;
            meter.batches += 1;
        }
        // Their uploads: each page's objects deleted from the bucket (the CDN forgets them
        // within its cache lifetime), then their records, in one transaction.
        let uploads = SortKey::Prefix(keys::MEDIA_PREFIX.into());
        let step = self
            .batches(
                meter,
                &user,
                uploads,
                MAX_TRANSACTION_WRITES,
                |items| async move {
                    let bucket = self.app.media_bucket()?;
                    for item in &items {
                        let record = crate::domain::media::MediaRecord::from_item(item.clone())?;
                        bucket.delete(&record.key).await?;
                    }
                    let writes = items
                        .iter()
                        .filter_map(Key::of)
                        .map(Write::delete)
                        .collect();
                    Ok(self.store.transact(writes).await?)
                },
            )
            .await?;
        if step == Step::Paused {
            return Ok(Step::Paused);
        }
        // Their payout accounts: each receiver removed at its provider, then its record (an
        // unreachable provider fails the step; the next run resumes it).
        if meter.spent() {
            return Ok(Step::Paused);
        }
        if super::payouts::remove_all(self.app, self.id).await? > 0 {
            meter.batches += 1;
        }
        let verification = keys::verification(self.id);
        if let Some(record) = self.store.get_record::<Verification>(&verification).await? {
            if meter.spent() {
                return Ok(Step::Paused);
            }
            self.release_verification(&verification, &record).await?;
            meter.batches += 1;
        }
        for sort in [
            SortKey::Below("PROFILE".into()),
            SortKey::Above("PROFILE".into()),
        ] {
            if self.drain_sorted(meter, &user, sort).await? == Step::Paused {
                return Ok(Step::Paused);
            }
        }
        Ok(Step::Done)
    }

    /// The verification record deleted and, when it counted against its identity, the claim
    /// released in the same transaction (so at most once): decremented, or deleted when this
    /// account was its last (no item keeps the identity's tag then).
    async fn release_verification(&self, key: &Key, record: &Verification) -> Result<(), Error> {
        let delete = Write::delete_if(
            key.clone(),
            Condition::Equals("attempt_id".into(), json!(record.attempt_id)),
            "same_attempt",
        );
        let claim = match keeps_identity_claim() {
            true => None,
            false if record.status == verification::Status::Verified => {
                let ring = self.app.pii().await?;
                verification::counted_claim(self.app, &ring, self.id, record)?
            }
            false => None,
        };
        for _ in 0..5 {
            let mut writes = vec![delete.clone()];
            if let Some(claim) = &claim {
                let n = self
                    .store
                    .get(claim)
                    .await?
                    .and_then(|item| item.get("n").and_then(Value::as_i64))
                    .unwrap_or(0);
                if n == 1 {
                    writes.push(Write::delete_if(
                        claim.clone(),
                        Condition::Equals("n".into(), json!(1)),
                        "claimed",
                    ));
                } else if n > 1 {
                    writes.push(
                        Write::update(claim.clone())
                            .add("n", -1)
                            .condition(Condition::AtLeast("n".into(), 2), "claimed")
                            .build(),
                    );
                }
            }
            match self.store.transact(writes).await {
                Ok(())
                | Err(StoreError::ConditionFailed {
                    label: "same_attempt",
                }) => return Ok(()),
                // The count moved meanwhile: read it again.
                Err(StoreError::ConditionFailed { label: "claimed" } | StoreError::Conflict) => {
                    continue
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// `MINE#<id>`: each listing erased with its index entries and its review list.
    async fn listings(&self, meter: &mut Meter) -> Result<Step, Error> {
        let mine = keys::mine(self.id);
        loop {
            if meter.spent() {
                return Ok(Step::Paused);
            }
            let items = self.first(&mine, SortKey::Any, 5).await?;
            if items.is_empty() {
                return Ok(Step::Done);
            }
            for item in items {
                if meter.spent() {
                    return Ok(Step::Paused);
                }
                let Some(key) = Key::of(&item) else { continue };
                let entry = MineEntry::from_item(item)?;
                let reviews = keys::reviews_of("listing", entry.listing_id.as_str());
                if self.drain(meter, &reviews).await? == Step::Paused {
                    return Ok(Step::Paused);
                }
                listings::erase(self.store, &entry.listing_id, &key).await?;
                meter.batches += 1;
            }
        }
    }

    /// Deletes `keys` and moves `count` down by one on each of `counted` that holds at least 1
    /// (read first; a count changed meanwhile fails the batch, which is read again).
    async fn delete_counted(
        &self,
        deletes: Vec<Key>,
        counted: Vec<Key>,
        count: &'static str,
    ) -> Result<(), Error> {
        for _ in 0..5 {
            let found = self.store.get_many(&counted).await?;
            let mut writes: Vec<Write> = deletes.iter().cloned().map(Write::delete).collect();
            for (key, item) in counted.iter().zip(found) {
                let n = item
                    .as_ref()
                    .and_then(|i| i.get(count))
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if n >= 1 {
                    writes.push(
                        Write::update(key.clone())
                            .add(count, -1)
                            .condition(Condition::AtLeast(count.into(), 1), "count")
                            .build(),
                    );
                }
            }
            match self.store.transact(writes).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// `FAVS#<id>`: each favourite, and its listing's `favorites_count`.
    async fn favourites(&self, meter: &mut Meter) -> Result<Step, Error> {
        let favs = keys::favourites(self.id);
        let page = MAX_TRANSACTION_WRITES / 2;
        self.batches(meter, &favs, SortKey::Any, page, |items| async move {
            let (mut deletes, mut counted) = (Vec::new(), Vec::new());
            for item in items {
                let Some(key) = Key::of(&item) else { continue };
                let favourite = Favourite::from_item(item)?;
                deletes.push(key);
                counted.push(keys::listing(&favourite.listing_id));
            }
            counted.sort();
            counted.dedup();
            self.delete_counted(deletes, counted, "favorites_count")
                .await
        })
        .await
    }

    /// `FOLLOWING#<id>` (`following`) or `FOLLOWERS#<id>`: both edges of each follow, and the
    /// other member's count.
    async fn follows(&self, meter: &mut Meter, following: bool) -> Result<Step, Error> {
        let (partition, count) = match following {
            true => (keys::following(self.id), "followers_count"),
            false => (keys::followers(self.id), "following_count"),
        };
        let page = MAX_TRANSACTION_WRITES / 3;
        self.batches(meter, &partition, SortKey::Any, page, |items| async move {
            let (mut deletes, mut counted) = (Vec::new(), Vec::new());
            for item in items {
                let Some(key) = Key::of(&item) else { continue };
                let other = Edge::from_item(item)?.user_id;
                deletes.push(key);
                deletes.push(match following {
                    true => keys::follower_edge(&other, self.id),
                    false => keys::following_edge(&other, self.id),
                });
                counted.push(keys::member(&other));
            }
            counted.sort();
            counted.dedup();
            self.delete_counted(deletes, counted, count).await
        })
        .await
    }

    /// `BLOCKS#<id>`: whom the member blocks, with each reverse entry.
    async fn blocks(&self, meter: &mut Meter) -> Result<Step, Error> {
        self.block_pairs(meter, keys::blocks(self.id), |other, me| {
            keys::block_reverse(other, me)
        })
        .await
    }

    /// `BLOCKED#<id>`: who blocks the member, with each blocker's block.
    async fn blocked_by(&self, meter: &mut Meter) -> Result<Step, Error> {
        self.block_pairs(meter, keys::blocked_by(self.id), |other, me| {
            keys::block(other, me)
        })
        .await
    }

    async fn block_pairs(
        &self,
        meter: &mut Meter,
        partition: String,
        pair: impl Fn(&UserId, &UserId) -> Key,
    ) -> Result<Step, Error> {
        let page = MAX_TRANSACTION_WRITES / 2;
        let pair = &pair;
        self.batches(meter, &partition, SortKey::Any, page, |items| async move {
            let mut writes = Vec::new();
            for item in items {
                let Some(key) = Key::of(&item) else { continue };
                let other = Block::from_item(item)?.user_id;
                writes.push(Write::delete(key));
                writes.push(Write::delete(pair(&other, self.id)));
            }
            Ok(self.store.transact(writes).await?)
        })
        .await
    }

    /// `SHARES#<id>`: each share, and its listing's `shares_count`.
    async fn shares(&self, meter: &mut Meter) -> Result<Step, Error> {
        let shares = keys::shares(self.id);
        self.batches(meter, &shares, SortKey::Any, 40, |items| async move {
            let mut deletes = Vec::new();
            let mut per_listing: std::collections::BTreeMap<Key, i64> = Default::default();
            for item in items {
                let Some(key) = Key::of(&item) else { continue };
                let share = Share::from_item(item)?;
                deletes.push(key);
                *per_listing
                    .entry(keys::listing(&share.listing_id))
                    .or_default() += 1;
            }
            self.delete_shares(deletes, per_listing).await
        })
        .await
    }

    /// As [`Work::delete_counted`], moving each listing's `shares_count` by its shares here.
    async fn delete_shares(
        &self,
        deletes: Vec<Key>,
        per_listing: std::collections::BTreeMap<Key, i64>,
    ) -> Result<(), Error> {
        let listings: Vec<Key> = per_listing.keys().cloned().collect();
        for _ in 0..5 {
            let found = self.store.get_many(&listings).await?;
            let mut writes: Vec<Write> = deletes.iter().cloned().map(Write::delete).collect();
            for (key, item) in listings.iter().zip(found) {
                let n = item
                    .as_ref()
                    .and_then(|i| i.get("shares_count"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let by = per_listing.get(key).copied().unwrap_or(0).min(n);
                if by >= 1 {
                    writes.push(
                        Write::update(key.clone())
                            .add("shares_count", -by)
                            .condition(Condition::AtLeast("shares_count".into(), by), "count")
                            .build(),
                    );
                }
            }
            match self.store.transact(writes).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// `RATE#<class>#<id>`: the member's rate counters (they expire; deleted so none names them).
    async fn rate(&self, meter: &mut Meter, class: Class) -> Result<Step, Error> {
        self.drain(
            meter,
            &format!("{}{}#{}", keys::RATE, class.name(), self.id),
        )
        .await
    }

    /// `REVIEWS#author#<id>` or `REVIEWS#seller#<id>`: each review kept with the member
    /// replaced by the anonymous reference, the list entry deleted (the review stays in its
    /// listing's and seller's lists; no rating counter moves).
    async fn reviews(&self, meter: &mut Meter, list: &str) -> Result<Step, Error> {
        let partition = keys::reviews_of(list, self.id.as_str());
        let field = match list {
            "author" => "author_id",
            _ => "seller_id",
        };
        let page = MAX_TRANSACTION_WRITES / 2;
        self.batches(meter, &partition, SortKey::Any, page, |items| async move {
            let mut entries = Vec::new();
            for item in items {
                let Some(key) = Key::of(&item) else { continue };
                entries.push((key, ReviewEntry::from_item(item)?.review_id));
            }
            let found = self
                .store
                .get_many(
                    &entries
                        .iter()
                        .map(|(_, r)| keys::review(r))
                        .collect::<Vec<_>>(),
                )
                .await?;
            let mut writes = Vec::new();
            for ((key, review), item) in entries.into_iter().zip(found) {
                writes.push(Write::delete(key));
                let names_me = item
                    .as_ref()
                    .and_then(|i| i.get(field))
                    .and_then(Value::as_str)
                    == Some(self.id.as_str());
                if names_me {
                    writes.push(
                        Write::update(keys::review(&review))
                            .set(field, self.anon.as_str())
                            .add("version", 1)
                            .condition(Condition::Present, "review_exists")
                            .build(),
                    );
                }
            }
            Ok(self.store.transact(writes).await?)
        })
        .await
    }

    /// `TICKETS#<id>`: each ticket kept, the member replaced (as author, other party, the member
    /// it is about, the author of messages); the member's entry deleted, the other party's kept.
    async fn tickets(&self, meter: &mut Meter) -> Result<Step, Error> {
        let partition = keys::tickets_of(self.id);
        self.one_by_one(meter, &partition, |item| async move {
            let Some(key) = Key::of(&item) else {
                return Ok(());
            };
            let ticket_id = TicketEntry::from_item(item)?.ticket_id;
            self.anonymise_ticket(&ticket_id).await?;
            self.store.write(Write::delete(key)).await?;
            Ok(())
        })
        .await
    }

    async fn anonymise_ticket(&self, id: &TicketId) -> Result<(), Error> {
        let me = Some(self.id.as_str());
        if let Some(ticket) = self.store.get_record::<Ticket>(&keys::ticket(id)).await? {
            let mut update = Write::update(keys::ticket(id)).add("version", 1);
            let mut changed = false;
            for (name, value) in [
                ("author_id", Some(&ticket.author_id)),
                ("other_party", ticket.other_party.as_ref()),
                ("user_id", ticket.user_id.as_ref()),
            ] {
                if value.map(UserId::as_str) == me {
                    update = update.set(name, self.anon.as_str());
                    changed = true;
                }
            }
            if changed {
                self.store
                    .write(
                        update
                            .condition(Condition::Present, "ticket_exists")
                            .build(),
                    )
                    .await?;
            }
        }
        let partition = keys::ticket_partition(id);
        let messages = Query::partition(partition.as_str())
            .sort(SortKey::Prefix(keys::MESSAGE_SK_PREFIX.into()))
            .limit(MAX_TRANSACTION_WRITES);
        let mut cursor = None;
        loop {
            let page = self.store.query(messages.clone().after(cursor)).await?;
            let mut writes = Vec::new();
            for item in page.items {
                let Some(key) = Key::of(&item) else { continue };
                let message = TicketMessage::from_item(item)?;
                if message.user_id.as_ref().map(UserId::as_str) == me {
                    writes.push(
                        Write::update(key)
                            .set("user_id", self.anon.as_str())
                            .condition(Condition::Present, "message_exists")
                            .build(),
                    );
                }
            }
            if !writes.is_empty() {
                self.store.transact(writes).await?;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// `ORDERS#<id>#<role>`: each order kept with the member replaced by the anonymous reference
    /// (and the buyer's remark removed), every item of its partition and the other party's
    /// entries given a `ttl` [`Config::order_retention`] after its completion or closure; then the
    /// member's entries (all, and by status) deleted.
    ///
    /// [`Config::order_retention`]: crate::config::Config::order_retention
    async fn orders(&self, meter: &mut Meter, role: &str) -> Result<Step, Error> {
        let all = keys::orders_of(self.id, role, None);
        let done = self
            .one_by_one(meter, &all, |item| async move {
                let entry = OrderEntry::from_item(item)?;
                self.anonymise_order(&entry.order_id, role).await?;
                let mut deletes = vec![Write::delete(keys::order_entry(
                    self.id,
                    role,
                    None,
                    &entry.order_id,
                ))];
                for status in OrderStatus::ALL {
                    deletes.push(Write::delete(keys::order_entry(
                        self.id,
                        role,
                        Some(status.as_str()),
                        &entry.order_id,
                    )));
                }
                Ok(self.store.transact(deletes).await?)
            })
            .await?;
        if done == Step::Paused {
            return Ok(Step::Paused);
        }
        // Status entries without their "all" entry: none are written so, but none may stay.
        for status in OrderStatus::ALL {
            let partition = keys::orders_of(self.id, role, Some(status.as_str()));
            if self.drain(meter, &partition).await? == Step::Paused {
                return Ok(Step::Paused);
            }
        }
        Ok(Step::Done)
    }

    async fn anonymise_order(&self, id: &crate::ids::OrderId, role: &str) -> Result<(), Error> {
        let Some(order) = self.store.get_record::<Order>(&keys::order(id)).await? else {
            return Ok(());
        };
        let field = match role {
            "buyer" => "buyer_id",
            _ => "seller_id",
        };
        let closed = order
            .completed_at
            .as_deref()
            .unwrap_or(order.updated_at.as_str());
        let keep = i64::try_from(self.app.config.order_retention.as_secs()).unwrap_or(i64::MAX / 4);
        let ttl = epoch(closed).saturating_add(keep);
        let ttl_name = TABLE.ttl_attribute;
        let mut update = Write::update(keys::order(id)).set(ttl_name, ttl);
        let names_me = match role {
            "buyer" => order.buyer_id == *self.id,
            _ => order.seller_id == *self.id,
        };
        if names_me {
            update = update.set(field, self.anon.as_str()).add("version", 1);
            if role == "buyer" {
                update = update.set("remark", "");
            }
        }
        self.store
            .write(update.condition(Condition::Present, "order_exists").build())
            .await
            .or_else(ignore_condition)?;
        // The rest of the order's partition: payments, events, the review marker.
        let partition = keys::order_partition(id);
        let mut cursor = None;
        loop {
            let page = self
                .store
                .query(
                    Query::partition(partition.as_str())
                        .limit(MAX_TRANSACTION_WRITES)
                        .after(cursor),
                )
                .await?;
            let writes: Vec<Write> = page
                .items
                .iter()
                .filter_map(Key::of)
                .filter(|k| k != &keys::order(id))
                .map(|k| {
                    Write::update(k)
                        .set(ttl_name, ttl)
                        .condition(Condition::Present, "item_exists")
                        .build()
                })
                .collect();
            if !writes.is_empty() {
                match self.store.transact(writes).await {
                    Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        // The other party's entries go when the order does.
        let (other, other_role) = match role {
            "buyer" => (&order.seller_id, "seller"),
            _ => (&order.buyer_id, "buyer"),
        };
        if other != self.id && other != self.anon {
            for status in [None, Some(order.status.as_str())] {
                self.store
                    .write(
                        Write::update(keys::order_entry(other, other_role, status, id))
                            .set(ttl_name, ttl)
                            .condition(Condition::Present, "entry_exists")
                            .build(),
                    )
                    .await
                    .or_else(ignore_condition)?;
            }
        }
        Ok(())
    }
}

fn ignore_condition(e: StoreError) -> Result<Option<Item>, StoreError> {
    match e {
        StoreError::ConditionFailed { .. } => Ok(None),
        other => Err(other),
    }
}

/// Whether the member's identity claim is kept (as its keyed hash) instead of released: only for
/// an account staff banned for fraud. There is no ban yet; when there is, it reads the ban on the
/// member record here.
pub fn keeps_identity_claim() -> bool {
    false
}

/// What deletion does with each partition prefix of the table ([`keys::PARTITIONS`]) and of
/// `gsi1` ([`keys::GSI1_PARTITIONS`]): a later partition must say (tested).
pub const COVERAGE: &[(&str, &str)] = &[
    (keys::USER, "the member's: sessions, verification (sealed data), counts, idempotency records, consents, the guardian consent (sealed), the stored position, subscribe-message grants, push markers and notifications (sent or owed), held texts (TEXTCHECK#, with their DUE#texts queue entries) deleted; payout accounts (PAYOUT#) deleted, their receivers removed at WeChat Pay / Alipay first; uploads deleted, their objects from the media bucket first (the CDN forgets them within its 10-minute cache lifetime); the record becomes a tombstone"),
    (keys::OPENID, "the member's claim deleted when the deletion starts"),
    (keys::LISTING, "the member's listings deleted (listings::erase)"),
    (keys::MINE, "the member's entries deleted with their listings"),
    (keys::FEED, "the listings' entries deleted with them"),
    (keys::GEO, "the listings' entries deleted with them"),
    (keys::TERM, "the listings' entries deleted with them"),
    (keys::FAVS, "the member's favourites deleted, each listing's favorites_count moved"),
    (keys::FOLLOWING, "both edges of every follow deleted, the other member's count moved"),
    (keys::FOLLOWERS, "both edges of every follow deleted, the other member's count moved"),
    (keys::SHARES, "the member's shares deleted, each listing's shares_count moved"),
    (keys::SHARED, "the member's markers deleted"),
    (keys::RATE, "the member's counters deleted (they expire anyway)"),
    (keys::IDCLAIM, "released with the verification record: decremented, deleted at zero (kept for a fraud ban)"),
    (keys::PAYOUTCLAIM, "released with the member's payout accounts (their receivers removed at the providers)"),
    (keys::ORDER, "kept, the member replaced by the anonymous reference, remark removed; ttl RENJI_ORDER_RETENTION_DAYS after completion/closure"),
    (keys::ORDERS, "the member's entries deleted; the other party's get the order's ttl"),
    (keys::NOTICES, "names no member"),
    (keys::BLOCKS, "the member's blocks deleted, and other members' blocks of them"),
    (keys::BLOCKED, "deleted with the blocks they mirror"),
    (keys::REVIEW, "kept, the member replaced by the anonymous reference as author or seller"),
    (keys::REVIEWS, "the member's author and seller lists and their listings' lists deleted"),
    (keys::TICKET, "kept, the member replaced as author, other party, subject and message author"),
    (keys::TICKETS, "the member's entries deleted; the other party's kept"),
    (keys::QUEUE, "names tickets only; in gsi1, QUEUE#media lists uploads, going with their records"),
    (keys::MEDIACHECK, "image checks: ids and WeChat's verdict only, ended by their ttl (30 days after the check)"),
    (keys::STAFF, "staff's, not members'"),
    (keys::AUDIT, "kept (ids only) until RENJI_AUDIT_DAYS"),
    (keys::WXTOKEN, "the app's WeChat access token: names no member"),
    (keys::RECON, "the daily reconciliation's markers: a provider and a day, counts only"),
    (keys::OWNER, "gsi1 of the listings: goes with them"),
    (keys::VERIFY, "gsi1 of the verification record: goes with it"),
    (keys::DUE, "gsi1 of orders, their seller_paid ledger entries and tickets (kept with them), of deleting members (this job's list) and of owed notifications (deleted with the member's partition)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_has_a_deletion_rule() {
        for prefix in keys::PARTITIONS.iter().chain(keys::GSI1_PARTITIONS.iter()) {
            assert!(
                COVERAGE.iter().any(|(p, _)| p == prefix),
                "{prefix}: say in COVERAGE what account deletion does with it"
            );
        }
        for (prefix, _) in COVERAGE {
            assert!(
                keys::PARTITIONS.contains(prefix) || keys::GSI1_PARTITIONS.contains(prefix),
                "{prefix} is no partition"
            );
        }
    }

    #[test]
    fn the_deleting_record_keeps_no_personal_field() {
        let member: Member = serde_json::from_value(json!({
            "id": UserId::generate(), "openid": "o-secret", "unionid": "u-secret",
            "nickname": "朵拉", "avatar_url": "https://img.renji.world/a.png", "gender": "female",
            "birth_date": "1991-03-04",
            "verified": "person", "followers_count": 3, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap();
        assert!(member.gender.is_some());
        let state = Deletion {
            status: DeletionStatus::Deleting,
            requested_at: "2026-01-02T00:00:00Z".into(),
            requested_by: RequestedBy::Member,
            anonymous_ref: Some(UserId::generate()),
            im_deleted: false,
            deleted_at: None,
        };
        let record = stripped(&member, state, OffsetDateTime::now_utc()).unwrap();
        let text = serde_json::to_string(&record).unwrap();
        for secret in [
            "o-secret",
            "u-secret",
            "朵拉",
            "img.renji",
            "female",
            "1991",
            "person",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(
            (record.followers_count, record.deleting),
            (3, Some(DELETING))
        );
    }

    #[test]
    fn the_view_never_shows_the_anonymous_reference() {
        let state = Deletion {
            status: DeletionStatus::Deleting,
            requested_at: "2026-01-01T00:00:00Z".into(),
            requested_by: RequestedBy::Member,
            anonymous_ref: Some(UserId::generate()),
            im_deleted: false,
            deleted_at: None,
        };
        let view = state.view();
        assert_eq!(view["status"], "deleting");
        assert_eq!(view["requested_by"], "member");
        assert!(!view
            .to_string()
            .contains(state.anonymous_ref.unwrap().as_str()));
    }
}
