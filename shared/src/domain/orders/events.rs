//! The record of what the providers said: every notification (verified or not) and every
//! provider answer about an order, so any state can be explained later. An event holds the kind,
//! the outcome, a short reason and the ids and amounts involved — never a key, a signature or a
//! body.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::rfc3339;
use crate::error::Error;
use crate::ids::OrderId;
use crate::money::Fen;
use crate::payments::Provider;
use crate::store::{keys, Record, Write};

/// How long a notice that named no order of ours is kept.
const UNMATCHED_KEEP_SECS: i64 = 90 * 24 * 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Notification,
    Start,
    Query,
    Close,
    Refund,
    RefundQuery,
    /// A mini-program shipping record sent to WeChat (`shipping`).
    Shipping,
    /// The seller's split (profit sharing / royalty) and the unfreeze of the rest.
    Split,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It changed the order or a payment.
    Applied,
    /// Already applied: nothing changed.
    Repeat,
    /// Refused (bad signature, wrong amount, unknown order…): nothing changed.
    Rejected,
    /// Verified or answered, and nothing to change.
    Recorded,
    /// The provider could not be reached or refused.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEvent {
    pub at: String,
    pub provider: Provider,
    pub kind: EventKind,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    /// What happened, briefly: the provider's state or the refusal's reason.
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_refund_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_fen: Option<Fen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

impl Record for ProviderEvent {
    const KIND: &'static str = "provider event";
}

impl ProviderEvent {
    pub fn new(
        provider: Provider,
        kind: EventKind,
        outcome: Outcome,
        at: OffsetDateTime,
        detail: impl Into<String>,
    ) -> Self {
        // Bounded and printable: a reason may quote a provider's message.
        let detail: String = detail
            .into()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        ProviderEvent {
            at: rfc3339(at),
            provider,
            kind,
            outcome,
            order_id: None,
            detail,
            transaction_id: None,
            out_refund_no: None,
            amount_fen: None,
            ttl: None,
        }
    }

    pub fn order(mut self, id: &OrderId) -> Self {
        self.order_id = Some(id.clone());
        self
    }

    pub fn transaction(mut self, id: Option<&str>) -> Self {
        self.transaction_id = id.map(str::to_owned);
        self
    }

    pub fn refund_no(mut self, no: &str) -> Self {
        self.out_refund_no = Some(no.to_owned());
        self
    }

    pub fn amount(mut self, amount: Fen) -> Self {
        self.amount_fen = Some(amount);
        self
    }

    /// The write that records it: under its order, or (naming none) under the day's unmatched
    /// notices, kept 90 days.
    pub fn write(mut self, now: OffsetDateTime) -> Result<Write, Error> {
        let order = crate::ids::time_order();
        let key = match &self.order_id {
            Some(id) => keys::order_event(id, &order),
            None => {
                self.ttl = Some(now.unix_timestamp() + UNMATCHED_KEEP_SECS);
                keys::unmatched_notice(&self.at[..self.at.len().min(10)], &order)
            }
        };
        Ok(Write::put(self.to_item(key, None)?))
    }
}

/// Records `event` on its own (a refusal, or an answer that changed nothing). A failure to
/// record is logged, never turned into a failure of the call that observed the event.
pub async fn record(store: &crate::store::DynStore, event: ProviderEvent, now: OffsetDateTime) {
    let outcome = event.outcome;
    let write = match event.write(now) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "provider event not recordable");
            return;
        }
    };
    if let Err(e) = store.transact(vec![write]).await {
        tracing::error!(error = %e, ?outcome, "provider event not recorded");
    }
}
