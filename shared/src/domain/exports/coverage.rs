//! The coverage guard: for each partition family of the table ([`keys::PARTITIONS`]), whether
//! the export holds it and where, or why not. A unit test checks every family is here, so work
//! that adds a partition must decide.

use crate::store::keys;

/// Whether (and where) a partition family is exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// In the document, in these sections.
    Exported(&'static str),
    /// Not in the document, and why.
    Not(&'static str),
}

use Coverage::{Exported, Not};

/// Every partition prefix and what the export does with it.
pub const COVERAGE: &[(&str, Coverage)] = &[
    (
        keys::USER,
        Exported(
            "profile (the owner's view, without openid/unionid), verification (masked), consents, \
             consent_history, location, guardian_consent (when, its details sealed), payout_accounts (masked), sessions, \
             uploads (each upload's record and its URL, never a signed link), other_records \
             (kinds added later, generically: among them subscribe-message grants, `subscribe`, \
             and the notifications sent or owed with every attempt, `notify`); not idempotency \
             records, the export's own records, subscription push markers or the daily upload \
             counts",
        ),
    ),
    (
        keys::OPENID,
        Not("the openid claim: an internal WeChat identifier, never shown"),
    ),
    (keys::LISTING, Exported("listings (the owner's view)")),
    (keys::MINE, Exported("listings: every status")),
    (
        keys::FEED,
        Not("copies of published listings' summaries; the listings are exported"),
    ),
    (
        keys::GEO,
        Not("copies of published listings' summaries by place; the listings are exported"),
    ),
    (
        keys::TERM,
        Not("search index entries of published listings; the listings are exported"),
    ),
    (keys::FAVS, Exported("favourites")),
    (keys::FOLLOWING, Exported("following")),
    (keys::FOLLOWERS, Exported("followers")),
    (keys::SHARES, Exported("shares")),
    (
        keys::SHARED,
        Not("the day's first-share markers: copies of entries of the share history"),
    ),
    (
        keys::RATE,
        Not("rate-limit counters by client address: counters, not about a person"),
    ),
    (
        keys::PAYOUTCLAIM,
        Not(
            "a keyed hash of a payout account naming its member: derived from a secret; the \
             payout_accounts section shows the account masked",
        ),
    ),
    (
        keys::IDCLAIM,
        Not(
            "a keyed hash of an identity number counting accounts: derived from a secret; the \
             verification section shows the number masked",
        ),
    ),
    (
        keys::ORDER,
        Exported(
            "orders_as_buyer, orders_as_seller: each order as the party sees it, with its \
             timeline, payment and refunds; not the providers' raw records and notifications",
        ),
    ),
    (keys::ORDERS, Exported("orders_as_buyer, orders_as_seller")),
    (
        keys::NOTICES,
        Not("provider notifications that named no order: about no member"),
    ),
    (keys::BLOCKS, Exported("blocks")),
    (
        keys::BLOCKED,
        Not("the reverse of others' blocks (who blocks the member): theirs, not the member's"),
    ),
    (keys::REVIEW, Exported("reviews_written, reviews_received")),
    (keys::REVIEWS, Exported("reviews_written, reviews_received")),
    (keys::TICKET, Exported("tickets, with their messages")),
    (keys::TICKETS, Exported("tickets")),
    (
        keys::QUEUE,
        Not("staff queues: pointers to tickets, which are exported"),
    ),
    (
        keys::STAFF,
        Not("staff members' console sessions: not members'"),
    ),
    (
        keys::MEDIACHECK,
        Not(
            "WeChat's image checks by trace id: ids and WeChat's verdict, which the upload's \
             own status and reason (exported with the uploads) already show",
        ),
    ),
    (
        keys::AUDIT,
        Exported("audit_by_member, audit_about_member (the staff trail's other lists are not the member's)"),
    ),
    (
        keys::WXTOKEN,
        Not("the app's WeChat access token: names no member"),
    ),
    (
        keys::RECON,
        Not("the daily reconciliation's markers: a provider and a day, counts only"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_family_is_decided_once() {
        for prefix in keys::PARTITIONS {
            let found = COVERAGE.iter().filter(|(p, _)| *p == prefix).count();
            assert_eq!(
                found, 1,
                "{prefix} must be in exports::coverage::COVERAGE once"
            );
        }
        for (prefix, _) in COVERAGE {
            assert!(
                keys::PARTITIONS.contains(prefix),
                "{prefix} is no partition"
            );
        }
    }
}
