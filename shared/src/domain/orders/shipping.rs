//! Mini-program shipping records (`wechat-platform.md` §6): WeChat holds a mini-program
//! payment's funds until the order's delivery is recorded with `upload_shipping_info`. A service
//! is virtual goods (`logistics_type` 3, no tracking number) delivered when the seller accepts
//! the order, so an order paid through the `wechat` channel owes one record from its acceptance
//! on; Alipay orders owe none.
//!
//! - The accept's own transaction writes `ORDER#<id> / SHIPPING` ([`ShippingRecord`], `pending`,
//!   the WeChat Pay transaction id, the listing title as `item_desc`, the buyer's openid), so an
//!   accepted WeChat order always has it and a refused accept has none.
//! - Right after the accept commits, one upload is tried ([`after_accept`]): its failure is logged
//!   and recorded, never the accept's (the order is accepted).
//! - While pending, the record is listed in `gsi1` under `DUE#shipping`; the order jobs retry it
//!   with backoff ([`retry`]). Every attempt first claims the record (attempts + 1, due again
//!   after the backoff, conditioned on the version read), so two runs — or the accept and a run —
//!   never send it twice, and an attempt that dies mid-call is retried when its claim ends.
//! - WeChat took it (or says it holds this payment's shipping already: 10060002, 10060003) →
//!   `uploaded`. A refusal a retry cannot fix (its errcode), or "payment not found" (10060001,
//!   transient for a minute after the payment) still after [`NOT_FOUND_ATTEMPTS`] attempts →
//!   `failed`, an `error` log line and a provider event on the order for staff. Anything else
//!   (-1, quotas, network, a token, the app's configuration) → retried, backing off up to
//!   [`MAX_WAIT_SECS`]. An order refunded in full before WeChat took it → `dropped` (not sent).
//!   The openid is dropped from the record once it is final.
//! - WeChat allows one re-shipping per payment, and an upload whose answer was lost (a crash
//!   after the call, a failed write of its answer, a timeout) may have been taken: every attempt
//!   after the first asks `get_order` first and uploads only if the payment is not shipped
//!   ([`before_upload`]).
//! - A mini-program not under shipping management (`is_trade_managed` false, asked once per
//!   process) owes nothing: `not_managed`, not sent.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::events::{EventKind, Outcome, ProviderEvent};
use super::{rfc3339, Order};
use crate::app::App;
use crate::error::Error;
use crate::ids::OrderId;
use crate::payments::{Channel, Provider};
use crate::store::{keys, Condition, Key, Record, Records, StoreError, Write};
use crate::wechat::api::{
    self, PlatformError, Shipped, ShippingInfo, ShippingOrderKey, ShippingStatus,
    SHIPPING_NOT_FOUND,
};

/// The label of a shipping record's conditions (new: absent; later: its version).
pub const SHIPPING_LABEL: &str = "shipping_version";
/// The due kind of pending shipping records (`gsi1` `DUE#shipping`).
pub const DUE_KIND: &str = "shipping";
/// The first retry after a failed attempt (and how long an attempt's claim holds the record).
pub const FIRST_WAIT_SECS: i64 = 300;
/// Retries back off by doubling up to this.
pub const MAX_WAIT_SECS: i64 = 6 * 3600;
/// Attempts answered 10060001 (payment not found) before it counts as a refusal: WeChat stores a
/// payment within a minute; after this many (≈ 10 hours of backoff) it is not coming.
pub const NOT_FOUND_ATTEMPTS: u32 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShippingState {
    /// Owed: not yet taken by WeChat.
    Pending,
    /// WeChat took it (or already held it).
    Uploaded,
    /// WeChat refused it for good: staff attention (the mini-program admin can enter it by hand).
    Failed,
    /// The order was refunded in full before WeChat took it: nothing to ship any more.
    Dropped,
    /// The mini-program is not under shipping management (`is_trade_managed` false): WeChat
    /// holds none of its payments for a shipping record, so none is sent.
    NotManaged,
}

/// The shipping info one WeChat-paid order owes (`ORDER#<id> / SHIPPING`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingRecord {
    pub order_id: OrderId,
    /// WeChat Pay's transaction id: the `order_key` (`order_number_type` 2).
    pub transaction_id: String,
    /// The buyer's openid (`payer.openid`) while the upload is owed; dropped once final.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub payer_openid: String,
    /// The listing's title as ordered, cut to 120 characters.
    pub item_desc: String,
    pub state: ShippingState,
    /// Uploads tried (each claimed first).
    #[serde(default)]
    pub attempts: u32,
    pub created_at: String,
    /// When WeChat took it (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    /// The `upload_time` sent with the upload WeChat took (a later update must be newer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_time: Option<String>,
    /// The last attempt's failure (errcode and WeChat's message, or why it was not sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// While pending: when an attempt is due (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
    pub version: i64,
}

impl Record for ShippingRecord {
    const KIND: &'static str = "shipping record";
}

impl ShippingRecord {
    pub fn key(&self) -> Key {
        keys::order_shipping(&self.order_id)
    }

    /// The write of this version over `before` (absent: a new record, in the accept's
    /// transaction), listed under `DUE#shipping` while pending.
    pub fn write(&self, before: Option<&ShippingRecord>) -> Result<Write, Error> {
        let listed = match (self.state, self.due_at) {
            (ShippingState::Pending, Some(at)) => {
                Some(keys::due_listed(DUE_KIND, at, &self.order_id, None))
            }
            _ => None,
        };
        let item = self.to_item(self.key(), listed)?;
        let condition = match before {
            None => Condition::Absent,
            Some(b) => Condition::Equals("version".into(), b.version.into()),
        };
        Ok(Write::put_if(item, condition, SHIPPING_LABEL))
    }

    /// What is sent to WeChat at `now`.
    pub fn info(&self, now: OffsetDateTime) -> ShippingInfo {
        ShippingInfo {
            order_key: ShippingOrderKey::Transaction(self.transaction_id.clone()),
            payer_openid: self.payer_openid.clone(),
            item_desc: self.item_desc.clone(),
            upload_time: now,
        }
    }
}

/// When an attempt that was just claimed is due again (`attempts` counts it): doubling from
/// [`FIRST_WAIT_SECS`] up to [`MAX_WAIT_SECS`].
pub fn backoff(now: i64, attempts: u32) -> i64 {
    let wait = FIRST_WAIT_SECS.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    now + wait.min(MAX_WAIT_SECS)
}

/// The record `order` owes once accepted at `now` (its next version `accepted`): one for an
/// order paid through the `wechat` channel, none otherwise. Reads the buyer's openid.
pub async fn owed(
    app: &App,
    order: &Order,
    now: OffsetDateTime,
) -> Result<Option<ShippingRecord>, Error> {
    let Some(payment) = order.payment.as_ref() else {
        return Ok(None);
    };
    if payment.channel != Channel::Wechat {
        return Ok(None);
    }
    let openid = crate::domain::members::get(&app.store, &order.buyer_id)
        .await?
        .map(|m| m.openid)
        .unwrap_or_default();
    Ok(Some(ShippingRecord {
        order_id: order.id.clone(),
        transaction_id: payment.transaction_id.clone(),
        payer_openid: openid,
        item_desc: order
            .listing
            .title
            .chars()
            .take(api::ITEM_DESC_MAX_CHARS)
            .collect(),
        state: ShippingState::Pending,
        attempts: 0,
        created_at: rfc3339(now),
        uploaded_at: None,
        upload_time: None,
        last_error: None,
        // The upload right after the accept comes first; the job only if that one failed or
        // never ran.
        due_at: Some(now.unix_timestamp() + FIRST_WAIT_SECS),
        version: 1,
    }))
}

/// The order's shipping record, if it owes or owed one.
pub async fn get(
    store: &crate::store::DynStore,
    id: &OrderId,
) -> Result<Option<ShippingRecord>, Error> {
    store.get_record(&keys::order_shipping(id)).await
}

/// The upload right after the accept committed `record`: never an error (the order is accepted;
/// a failure is on the record, and the job retries).
pub async fn after_accept(app: &App, record: &ShippingRecord, now: OffsetDateTime) {
    if let Err(e) = attempt(app, record, now).await {
        tracing::warn!(order_id = %record.order_id, error = %e, "shipping upload after accept failed: the order jobs retry it");
    }
}

/// The order jobs' turn on a `DUE#shipping` entry: `Ok(false)` when it turned out not to be due
/// (uploaded meanwhile, or claimed by another run).
pub async fn retry(app: &App, id: &OrderId, now: OffsetDateTime) -> Result<bool, Error> {
    let Some(record) = get(&app.store, id).await? else {
        return Ok(false);
    };
    if record.state != ShippingState::Pending
        || record.due_at.is_none_or(|at| at > now.unix_timestamp())
    {
        return Ok(false);
    }
    // Refunded in full meanwhile: WeChat would refuse it (10060004), and nothing is owed.
    let refunded = super::get(&app.store, id)
        .await?
        .is_some_and(|o| o.status == super::OrderStatus::Refunded);
    if refunded {
        let mut next = record.clone();
        next.state = ShippingState::Dropped;
        next.due_at = None;
        next.payer_openid.clear();
        next.version = record.version + 1;
        let event = ProviderEvent::new(
            Provider::Wechat,
            EventKind::Shipping,
            Outcome::Recorded,
            now,
            "refunded in full before WeChat took the shipping info: not sent",
        )
        .order(id)
        .transaction(Some(&record.transaction_id));
        return match app
            .store
            .transact(vec![next.write(Some(&record))?, event.write(now)?])
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed {
                label: SHIPPING_LABEL,
            }) => Ok(false),
            Err(e) => Err(e.into()),
        };
    }
    Ok(attempt(app, &record, now).await?.is_some())
}

/// What one attempt came to.
enum Answer {
    Taken(Shipped),
    Retry(String),
    Refused(String),
    NotManaged,
}

/// What is known before an upload (`None`: upload). A mini-program not under shipping
/// management needs none (WeChat's answer, cached for the process by the adapter; unknown when
/// WeChat cannot say: uploaded as before). And when an earlier attempt was claimed (`tried`), its
/// upload may have reached WeChat with its answer lost — a crash, a failed write of the answer, a
/// timeout: WeChat is asked first (`get_order`), because a second upload of a shipped payment is
/// its one re-shipping. Shipped → taken, nothing sent; not shipped or not found → upload; WeChat
/// unreachable → asked again later (never an upload in the dark); a refusal of the question →
/// upload (the upload's own answer decides).
async fn before_upload(
    wechat: &dyn api::WechatApi,
    record: &ShippingRecord,
    tried: bool,
) -> Option<Answer> {
    if let Ok(false) = wechat.is_trade_managed().await {
        return Some(Answer::NotManaged);
    }
    if !tried {
        return None;
    }
    match wechat.shipping_status(&record.transaction_id).await {
        Ok(ShippingStatus::Shipped) => Some(Answer::Taken(Shipped::Found)),
        Ok(ShippingStatus::NotShipped | ShippingStatus::NotFound) => None,
        Err(PlatformError::Refused(code)) => {
            tracing::warn!(order_id = %record.order_id, code, "get_order refused: uploading");
            None
        }
        Err(e) => Some(Answer::Retry(format!(
            "get_order (asked before uploading again): {e:?}"
        ))),
    }
}

/// The upload of the claimed record, and what its answer means.
async fn upload(
    wechat: &dyn api::WechatApi,
    claimed: &ShippingRecord,
    now: OffsetDateTime,
) -> Answer {
    match wechat.upload_shipping_info(&claimed.info(now)).await {
        Ok(shipped) => Answer::Taken(shipped),
        Err(PlatformError::Refused(SHIPPING_NOT_FOUND))
            if claimed.attempts < NOT_FOUND_ATTEMPTS =>
        {
            Answer::Retry(format!(
                "errcode {SHIPPING_NOT_FOUND}: WeChat does not know the payment (yet)"
            ))
        }
        Err(PlatformError::Refused(code)) => Answer::Refused(format!("errcode {code}")),
        Err(PlatformError::Unavailable(why)) => Answer::Retry(why),
        Err(PlatformError::Misconfigured(code)) => {
            Answer::Retry(format!("errcode {code}: this app's WeChat configuration"))
        }
        Err(other) => Answer::Retry(format!("{other:?}")),
    }
}

/// Claims `record` and sends it once: the record as it is afterwards, or `None` when another
/// attempt had claimed it (nothing sent).
pub async fn attempt(
    app: &App,
    record: &ShippingRecord,
    now: OffsetDateTime,
) -> Result<Option<ShippingRecord>, Error> {
    if record.state != ShippingState::Pending {
        return Ok(None);
    }
    let now_secs = now.unix_timestamp();
    let mut claimed = record.clone();
    claimed.attempts = record.attempts.saturating_add(1);
    claimed.due_at = Some(backoff(now_secs, claimed.attempts));
    claimed.version = record.version + 1;
    match app.store.transact(vec![claimed.write(Some(record))?]).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed {
            label: SHIPPING_LABEL,
        }) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let answer = match app.wechat_api() {
        Err(e) => Answer::Retry(e.to_string()),
        Ok(wechat) => match before_upload(wechat, record, record.attempts > 0).await {
            Some(known) => known,
            None => upload(wechat, &claimed, now).await,
        },
    };
    let mut next = claimed.clone();
    next.version = claimed.version + 1;
    let event = |outcome, detail: String| {
        ProviderEvent::new(Provider::Wechat, EventKind::Shipping, outcome, now, detail)
            .order(&record.order_id)
            .transaction(Some(&record.transaction_id))
    };
    let event = match answer {
        Answer::Taken(shipped) => {
            next.state = ShippingState::Uploaded;
            next.uploaded_at = Some(rfc3339(now));
            next.upload_time = Some(api::upload_time(now));
            next.last_error = None;
            next.due_at = None;
            next.payer_openid.clear();
            let detail = match shipped {
                Shipped::Now => "shipping info uploaded".to_owned(),
                Shipped::Before(code) => {
                    format!("WeChat holds the shipping already (errcode {code})")
                }
                Shipped::Found => {
                    "WeChat holds the shipping already (get_order): not sent again".to_owned()
                }
            };
            event(Outcome::Applied, detail)
        }
        Answer::NotManaged => {
            next.state = ShippingState::NotManaged;
            next.last_error = None;
            next.due_at = None;
            next.payer_openid.clear();
            event(
                Outcome::Recorded,
                "the mini-program is not under shipping management (is_trade_managed false): \
                 not sent"
                    .to_owned(),
            )
        }
        Answer::Retry(why) => {
            // Due again when the claim's backoff ends.
            next.last_error = Some(bounded(&why));
            event(
                Outcome::Failed,
                format!(
                    "shipping upload attempt {} failed: {why}; retried",
                    claimed.attempts
                ),
            )
        }
        Answer::Refused(why) => {
            tracing::error!(
                order_id = %record.order_id,
                attempts = claimed.attempts,
                why,
                "WeChat refused the order's shipping info: staff attention (enter it in the \
                 mini-program admin)"
            );
            next.state = ShippingState::Failed;
            next.last_error = Some(bounded(&why));
            next.due_at = None;
            next.payer_openid.clear();
            event(
                Outcome::Rejected,
                format!("shipping refused: {why}; staff attention"),
            )
        }
    };
    app.store
        .transact(vec![next.write(Some(&claimed))?, event.write(now)?])
        .await
        .map_err(|e| match e {
            // Nothing else writes a claimed record before its claim ends.
            StoreError::ConditionFailed { .. } => super::order_changed(),
            other => other.into(),
        })?;
    Ok(Some(next))
}

fn bounded(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_minutes_to_six_hours() {
        let waits: Vec<i64> = (1..=9).map(|n| backoff(1_000, n) - 1_000).collect();
        assert_eq!(
            waits,
            [300, 600, 1200, 2400, 4800, 9600, 19200, 21600, 21600]
        );
        assert_eq!(backoff(0, u32::MAX), MAX_WAIT_SECS);
    }

    #[test]
    fn upload_time_is_china_time_with_millis() {
        let at = time::macros::datetime!(2022-12-15 05:29:35.12 UTC);
        assert_eq!(api::upload_time(at), "2022-12-15T13:29:35.120+08:00");
    }
}
