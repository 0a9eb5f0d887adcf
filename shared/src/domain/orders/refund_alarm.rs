//! A refund the provider will not make leaves the buyer's money held (`refund_failed`) until staff
//! ask again (`POST /admin/v1/orders/{id}/refund`, admin): staff must learn of it without knowing
//! the order. The transition into `refund_failed` ([`super::payments::apply_refund`], whatever
//! told it: the refund's answer, a notification, the order jobs' query) writes in its own
//! transaction a **staff alarm**: an audit record [`ACTION`] (actor system) in the list
//! `settlement:alarms` — where the settlement's reconciliation alarms are, read with `GET
//! /admin/v1/audit?target=settlement:alarms` — and the same record in the order's trail
//! (`order:<id>`); once written, an ERROR log line. Ids, numbers and the provider's code only,
//! never personal data (nor the provider's free-text message). The transition is conditioned on
//! the order's version and a repeat of the failure finds no refund under way, so it is raised
//! once per failed refund.

use std::time::Duration;

use time::OffsetDateTime;

use super::Refund;
use crate::domain::audit::{self, AuditRecord, Target};
use crate::domain::settlement::reconcile::ALARMS;
use crate::error::Error;
use crate::ids::OrderId;
use crate::money::Fen;
use crate::payments::Provider;
use crate::store::Write;

/// The audit action of the alarm.
pub const ACTION: &str = "order.refund_failed";
/// The longest provider code kept.
const MAX_CODE: usize = 40;

/// The alarm of one failed refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundAlarm {
    pub order_id: OrderId,
    pub out_refund_no: String,
    pub amount_fen: Fen,
    pub provider: Provider,
    /// The provider's reason code ([`reason_code`]).
    pub code: String,
}

impl RefundAlarm {
    pub fn new(order_id: &OrderId, refund: &Refund, provider: Provider, reason: &str) -> Self {
        RefundAlarm {
            order_id: order_id.clone(),
            out_refund_no: refund.out_refund_no.clone(),
            amount_fen: refund.amount_fen,
            provider,
            code: reason_code(reason),
        }
    }

    fn detail(&self) -> String {
        format!(
            "order {} refund {} of {} fen failed at {}: {}; staff retry POST /admin/v1/orders/{}/refund",
            self.order_id,
            self.out_refund_no,
            self.amount_fen.get(),
            self.provider.as_str(),
            self.code,
            self.order_id,
        )
    }

    /// The alarm's audit copies (`settlement:alarms` and `order:<id>`), for the transition's
    /// transaction.
    pub fn writes(&self, at: OffsetDateTime, keep: Duration) -> Result<Vec<Write>, Error> {
        let alarms = Target::new(ALARMS.0, ALARMS.1)
            .ok_or_else(|| Error::Internal("the alarms' audit target".into()))?;
        let order = Target::new("order", self.order_id.as_str())
            .ok_or_else(|| Error::Internal("an order id that is not an audit target".into()))?;
        let mut writes = Vec::new();
        for target in [alarms, order] {
            let record = AuditRecord::by(
                audit::Actor::System,
                at,
                ACTION,
                target,
                Some(self.detail()),
                "failed",
            );
            writes.extend(audit::writes(&record, keep)?);
        }
        Ok(writes)
    }

    /// The ERROR line on-call is alarmed by (after the transition is written).
    pub fn log(&self) {
        tracing::error!(
            order_id = %self.order_id,
            out_refund_no = %self.out_refund_no,
            amount_fen = self.amount_fen.get(),
            provider = self.provider.as_str(),
            code = %self.code,
            "a refund failed at the provider: the order is refund_failed, staff alarm"
        );
    }
}

/// The provider's code in a failure's reason: a refusal's (`provider refused: <CODE> <message>`,
/// or `<CODE> <message>`) or a refund's final state (`ABNORMAL`, `CLOSED`) — the first word, when
/// it is a code (letters, digits, `_ . -`); else `unknown`. The message after it is the
/// provider's free text: not copied.
pub fn reason_code(reason: &str) -> String {
    let rest = reason.strip_prefix("provider refused:").unwrap_or(reason);
    let code = rest.split_whitespace().next().unwrap_or_default();
    let is_code = (1..=MAX_CODE).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    match is_code {
        true => code.to_owned(),
        false => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::orders::{Actor, OrderStatus, RefundStatus};
    use crate::store::Record;

    #[test]
    fn the_code_is_the_first_word_of_a_reason_and_nothing_else() {
        assert_eq!(
            reason_code("provider refused: ACQ.SELLER_BALANCE_NOT_ENOUGH 卖家余额不足"),
            "ACQ.SELLER_BALANCE_NOT_ENOUGH"
        );
        assert_eq!(reason_code("ABNORMAL"), "ABNORMAL");
        assert_eq!(reason_code("NOT_ENOUGH 余额不足"), "NOT_ENOUGH");
        for odd in ["", "provider refused: ", "张三 退款", &"X".repeat(41)] {
            assert_eq!(reason_code(odd), "unknown", "{odd:?}");
        }
    }

    #[test]
    fn the_alarm_is_in_the_alarms_list_and_the_orders_trail() {
        let id = OrderId::generate();
        let refund = Refund {
            seq: 1,
            out_refund_no: format!("{id}R01"),
            amount_fen: Fen::from_fen(288_000),
            reason: Some("那天已有安排".into()),
            from: OrderStatus::Paid,
            actor: Actor::Seller,
            status: RefundStatus::Pending,
            requested_at: String::new(),
            refund_id: None,
            failure: None,
            finished_at: None,
            attempts: 0,
            after_split: None,
            after_expiry: None,
        };
        let alarm = RefundAlarm::new(
            &id,
            &refund,
            Provider::Alipay,
            "provider refused: ACQ.SELLER_BALANCE_NOT_ENOUGH 卖家余额不足",
        );
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let writes = alarm.writes(at, Duration::from_secs(86400)).unwrap();
        let items: Vec<_> = writes
            .into_iter()
            .map(|w| match w {
                Write::Put { item, .. } => item,
                other => panic!("{other:?}"),
            })
            .collect();
        let lists: Vec<&str> = items.iter().map(|i| i["pk"].as_str().unwrap()).collect();
        assert_eq!(
            lists,
            [
                "AUDIT#target#settlement:alarms".to_owned(),
                format!("AUDIT#target#order:{id}")
            ]
        );
        let record = AuditRecord::from_item(items[0].clone()).unwrap();
        assert_eq!(
            (record.action.as_str(), record.actor()),
            (ACTION, "system".into())
        );
        let detail = record.reason.unwrap();
        for part in [
            id.as_str(),
            refund.out_refund_no.as_str(),
            "288000 fen",
            "alipay",
            "ACQ.SELLER_BALANCE_NOT_ENOUGH",
        ] {
            assert!(detail.contains(part), "{detail} lacks {part}");
        }
        // Neither the buyer's reason nor the provider's message.
        assert!(
            !detail.contains("那天") && !detail.contains("余额"),
            "{detail}"
        );
    }
}
