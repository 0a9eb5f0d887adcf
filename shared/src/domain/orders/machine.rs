//! The order state machine: the table of `api.md` ("Orders"), here and nowhere else. Every
//! transition is looked up in [`RULES`]; a pair not in it is refused — 403 when the actor may
//! never take the action, 409 when the order is in another state — and changes nothing.

use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Accepted,
    Completed,
    RefundRequested,
    Refunding,
    Refunded,
    RefundFailed,
    Cancelled,
    Expired,
    Disputed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 11] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Accepted,
        OrderStatus::Completed,
        OrderStatus::RefundRequested,
        OrderStatus::Refunding,
        OrderStatus::Refunded,
        OrderStatus::RefundFailed,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::Disputed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Accepted => "accepted",
            OrderStatus::Completed => "completed",
            OrderStatus::RefundRequested => "refund_requested",
            OrderStatus::Refunding => "refunding",
            OrderStatus::Refunded => "refunded",
            OrderStatus::RefundFailed => "refund_failed",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::Disputed => "disputed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// No transition leaves it (`completed` is final for the machine once its dispute window
    /// has passed; the after-sale issue's disputes still leave it).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Cancelled | OrderStatus::Expired | OrderStatus::Refunded
        )
    }
}

/// Who acts on an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Buyer,
    Seller,
    /// A payment provider, through a verified notification or a query.
    Provider,
    /// The order jobs.
    System,
    Staff,
}

/// What can happen to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The provider confirms the payment.
    ConfirmPayment,
    Cancel,
    /// Unpaid past `expires_at`.
    Expire,
    Accept,
    Decline,
    /// Paid and not accepted in time.
    AcceptTimeout,
    Confirm,
    AutoComplete,
    RequestRefund,
    ApproveRefund,
    /// A refund request unanswered in time.
    AutoApproveRefund,
    DeclineRefund,
    OpenDispute,
    /// Staff decide a dispute with a refund (all or part).
    StaffRefund,
    /// Staff decide a dispute for the seller.
    StaffRelease,
    /// Staff refund a completed order whose split is done (the dispute window is over; the
    /// seller's share is taken back or becomes a receivable: `domain::settlement::refunds`).
    StaffRefundSettled,
    /// Staff (an administrator) ask again for a refund the provider failed: the same amount,
    /// under a new refund number.
    StaffRetryRefund,
    /// The provider confirms the refund.
    RefundSucceeded,
    /// The provider reports the refund failed.
    RefundFailed,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Action::ConfirmPayment,
        Action::Cancel,
        Action::Expire,
        Action::Accept,
        Action::Decline,
        Action::AcceptTimeout,
        Action::Confirm,
        Action::AutoComplete,
        Action::RequestRefund,
        Action::ApproveRefund,
        Action::AutoApproveRefund,
        Action::DeclineRefund,
        Action::OpenDispute,
        Action::StaffRefund,
        Action::StaffRelease,
        Action::StaffRefundSettled,
        Action::StaffRetryRefund,
        Action::RefundSucceeded,
        Action::RefundFailed,
    ];
}

/// Where a transition leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    To(OrderStatus),
    /// A refund succeeded: `refunded` when all the money is back, else the state the refund
    /// began from (the state before the dispute, for a dispute's refund).
    AfterRefund,
    /// The state before the dispute.
    BeforeDispute,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub from: &'static [OrderStatus],
    pub action: Action,
    pub actors: &'static [Actor],
    pub to: Target,
}

use Action as A;
use Actor::*;
use OrderStatus as S;
use Target::*;

/// `api.md`'s table, row by row.
pub const RULES: &[Rule] = &[
    Rule {
        from: &[S::PendingPayment],
        action: A::ConfirmPayment,
        actors: &[Provider],
        to: To(S::Paid),
    },
    Rule {
        from: &[S::PendingPayment],
        action: A::Cancel,
        actors: &[Buyer],
        to: To(S::Cancelled),
    },
    Rule {
        from: &[S::PendingPayment],
        action: A::Expire,
        actors: &[System],
        to: To(S::Expired),
    },
    Rule {
        from: &[S::Paid],
        action: A::Accept,
        actors: &[Seller],
        to: To(S::Accepted),
    },
    Rule {
        from: &[S::Paid],
        action: A::Decline,
        actors: &[Seller],
        to: To(S::Refunding),
    },
    Rule {
        from: &[S::Paid],
        action: A::Cancel,
        actors: &[Buyer],
        to: To(S::Refunding),
    },
    Rule {
        from: &[S::Paid],
        action: A::AcceptTimeout,
        actors: &[System],
        to: To(S::Refunding),
    },
    Rule {
        from: &[S::Accepted],
        action: A::Confirm,
        actors: &[Buyer],
        to: To(S::Completed),
    },
    Rule {
        from: &[S::Accepted],
        action: A::AutoComplete,
        actors: &[System],
        to: To(S::Completed),
    },
    Rule {
        from: &[S::Accepted],
        action: A::RequestRefund,
        actors: &[Buyer],
        to: To(S::RefundRequested),
    },
    Rule {
        from: &[S::RefundRequested],
        action: A::ApproveRefund,
        actors: &[Seller],
        to: To(S::Refunding),
    },
    Rule {
        from: &[S::RefundRequested],
        action: A::AutoApproveRefund,
        actors: &[System],
        to: To(S::Refunding),
    },
    Rule {
        from: &[S::RefundRequested],
        action: A::DeclineRefund,
        actors: &[Seller],
        to: To(S::Accepted),
    },
    Rule {
        from: &[S::Accepted, S::Completed],
        action: A::OpenDispute,
        actors: &[Buyer, Seller],
        to: To(S::Disputed),
    },
    Rule {
        from: &[S::Disputed],
        action: A::StaffRefund,
        actors: &[Staff],
        to: To(S::Refunding),
    },
    Rule {
        from: &[S::Disputed],
        action: A::StaffRelease,
        actors: &[Staff],
        to: BeforeDispute,
    },
    Rule {
        from: &[S::Completed],
        action: A::StaffRefundSettled,
        actors: &[Staff],
        to: To(S::Refunding),
    },
    Rule {
        from: &[S::RefundFailed],
        action: A::StaffRetryRefund,
        actors: &[Staff],
        to: To(S::Refunding),
    },
    Rule {
        from: &[S::Refunding],
        action: A::RefundSucceeded,
        actors: &[Provider],
        to: AfterRefund,
    },
    Rule {
        from: &[S::Refunding],
        action: A::RefundFailed,
        actors: &[Provider],
        to: To(S::RefundFailed),
    },
];

/// Why a transition is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The actor may never take this action (403).
    WrongActor,
    /// Not from this state (409).
    WrongState,
}

impl Refusal {
    pub fn into_error(self, from: OrderStatus, action: Action) -> Error {
        match self {
            Refusal::WrongActor => Error::Forbidden(format!(
                "only the {} may do this",
                RULES
                    .iter()
                    .find(|r| r.action == action)
                    .and_then(|r| r.actors.first())
                    .map_or("other party", |a| match a {
                        Buyer => "buyer",
                        Seller => "seller",
                        Provider => "payment provider",
                        System => "system",
                        Staff => "staff",
                    })
            )),
            Refusal::WrongState => Error::Conflict {
                code: "invalid_order_state",
                message: format!("not possible while the order is {}", from.as_str()),
            },
        }
    }
}

/// The rule for `action` by `actor` on an order in `from`.
pub fn rule(from: OrderStatus, action: Action, actor: Actor) -> Result<&'static Rule, Refusal> {
    let mut any_for_actor = false;
    for rule in RULES.iter().filter(|r| r.action == action) {
        if rule.actors.contains(&actor) {
            any_for_actor = true;
            if rule.from.contains(&from) {
                return Ok(rule);
            }
        }
    }
    Err(match any_for_actor {
        true => Refusal::WrongState,
        false => Refusal::WrongActor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_name_that_parses_back() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(OrderStatus::parse("PAID"), None);
    }

    /// The table as `api.md` prints it, written out independently of [`RULES`]: every
    /// (state, action, actor) triple is checked against it.
    #[test]
    fn the_machine_is_exactly_the_table_of_api_md() {
        let allowed: &[(OrderStatus, Action, Actor, Target)] = &[
            (S::PendingPayment, A::ConfirmPayment, Provider, To(S::Paid)),
            (S::PendingPayment, A::Cancel, Buyer, To(S::Cancelled)),
            (S::PendingPayment, A::Expire, System, To(S::Expired)),
            (S::Paid, A::Accept, Seller, To(S::Accepted)),
            (S::Paid, A::Decline, Seller, To(S::Refunding)),
            (S::Paid, A::Cancel, Buyer, To(S::Refunding)),
            (S::Paid, A::AcceptTimeout, System, To(S::Refunding)),
            (S::Accepted, A::Confirm, Buyer, To(S::Completed)),
            (S::Accepted, A::AutoComplete, System, To(S::Completed)),
            (S::Accepted, A::RequestRefund, Buyer, To(S::RefundRequested)),
            (
                S::RefundRequested,
                A::ApproveRefund,
                Seller,
                To(S::Refunding),
            ),
            (
                S::RefundRequested,
                A::AutoApproveRefund,
                System,
                To(S::Refunding),
            ),
            (
                S::RefundRequested,
                A::DeclineRefund,
                Seller,
                To(S::Accepted),
            ),
            (S::Accepted, A::OpenDispute, Buyer, To(S::Disputed)),
            (S::Accepted, A::OpenDispute, Seller, To(S::Disputed)),
            (S::Completed, A::OpenDispute, Buyer, To(S::Disputed)),
            (S::Completed, A::OpenDispute, Seller, To(S::Disputed)),
            (S::Disputed, A::StaffRefund, Staff, To(S::Refunding)),
            (S::Disputed, A::StaffRelease, Staff, BeforeDispute),
            (S::Completed, A::StaffRefundSettled, Staff, To(S::Refunding)),
            (
                S::RefundFailed,
                A::StaffRetryRefund,
                Staff,
                To(S::Refunding),
            ),
            (S::Refunding, A::RefundSucceeded, Provider, AfterRefund),
            (S::Refunding, A::RefundFailed, Provider, To(S::RefundFailed)),
        ];
        let actors = [Buyer, Seller, Provider, System, Staff];
        let mut checked = 0;
        for from in OrderStatus::ALL {
            for action in Action::ALL {
                for actor in actors {
                    let expected = allowed
                        .iter()
                        .find(|(f, a, who, _)| *f == from && *a == action && *who == actor);
                    match (rule(from, action, actor), expected) {
                        (Ok(rule), Some((.., to))) => assert_eq!(rule.to, *to),
                        (Err(refusal), None) => {
                            let actor_ever = allowed
                                .iter()
                                .any(|(_, a, who, _)| *a == action && *who == actor);
                            let want = if actor_ever {
                                Refusal::WrongState
                            } else {
                                Refusal::WrongActor
                            };
                            assert_eq!(refusal, want, "{from:?} {action:?} {actor:?}");
                        }
                        (got, want) => panic!("{from:?} {action:?} {actor:?}: {got:?} vs {want:?}"),
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 11 * 19 * 5);
        // Final states have no way out.
        for from in OrderStatus::ALL.into_iter().filter(|s| s.is_final()) {
            assert!(RULES.iter().all(|r| !r.from.contains(&from)), "{from:?}");
        }
    }

    #[test]
    fn refusals_are_403_for_the_wrong_actor_and_409_for_the_wrong_state() {
        let e = rule(S::Paid, A::Accept, Buyer)
            .unwrap_err()
            .into_error(S::Paid, A::Accept);
        assert_eq!(e.status().as_u16(), 403);
        let e = rule(S::Accepted, A::Accept, Seller)
            .unwrap_err()
            .into_error(S::Accepted, A::Accept);
        assert_eq!(e.status().as_u16(), 409);
        assert_eq!(e.code(), "invalid_order_state");
    }
}
