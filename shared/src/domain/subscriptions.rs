//! Subscribe messages (订阅消息, `wechat-platform.md` §5): what members granted, and the
//! messages Renji sends them about their orders and tickets.
//!
//! **Grants.** Each acceptance of a template in `wx.requestSubscribeMessage` allows one message,
//! acceptances accumulate, and WeChat reports no balance: Renji keeps a [`Grant`] per (member,
//! template) at `USER#<member> / SUBSCRIBE#<template id>` with two counters of acceptances —
//! `hinted` (what the client reported, `POST /v1/me/subscriptions`) and `confirmed` (WeChat's own
//! `subscribe_msg_popup_event` push, [`on_popup`]) — and `spent` (messages that used one).
//! **One acceptance counts once whichever way it is heard:** every real acceptance produces at
//! most one hint and at most one push, so the acceptances known are `max(hinted, confirmed)`,
//! never their sum; what remains is that minus `spent`. Counting the larger source keeps working
//! when one source is missing (a client that never reports, a push that is not configured) and
//! never counts one acceptance twice; it may count too few (a hint lost for one acceptance and
//! the push lost for another), which costs a message, never a 43101. A push WeChat retries is
//! counted once (a marker `SUBPUSH#<CreateTime>#<template id>` written with the count, on
//! absence). When WeChat answers 43101 the grant was not there: the counters are lowered to
//! what was spent, so nothing remains until the member accepts again.
//!
//! **Outbox.** An order or ticket change that a member should hear about writes a
//! [`Notification`] (`USER#<member> / NOTIFY#<id>`, listed in `gsi1` under `DUE#notify` while it
//! must be sent) in the change's own transaction ([`order_writes`], [`ticket_answer_writes`]):
//! nothing is lost and sending never fails the change. The `notification-jobs` function
//! ([`run`]) sends them: it claims a notification and spends a grant in one transaction
//! conditioned on both versions read (so 20 runs at once send it once), then sends through
//! [`WechatApi::send_subscribe_message`](crate::wechat::api::WechatApi); every attempt is
//! recorded on the notification (what, to which member, outcome) — never the openid.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::app::App;
use crate::domain::members::{Member, OpenidClaim};
use crate::domain::orders::{rfc3339, Actor, Order, OrderStatus};
use crate::domain::tickets::{Sender, Ticket, TicketMessage};
use crate::error::Error;
use crate::ids::UserId;
use crate::money::Fen;
use crate::store::schema::GSI1;
use crate::store::{keys, Condition, DynStore, Item, Query, Record, Records, SortKey, Write};
use crate::wechat::api::{PlatformError, SubscribeMessage};

/// What a member can be told by subscribe message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An order of theirs was paid (to the seller).
    OrderPaid,
    /// Money of an order came back (to the buyer; each refund that succeeds).
    OrderRefunded,
    /// The seller declined the paid order (or did not accept it in time), or declined the
    /// buyer's refund request (to the buyer).
    OrderDeclined,
    /// Staff decided a dispute (to both parties).
    DisputeDecided,
    /// Staff answered a ticket (to its author).
    TicketAnswered,
    /// The split of a sold order failed at the seller's payout account (closed by the provider,
    /// or none bound): the seller must bind one again before the split deadline (to the seller).
    SettlementFailed,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::OrderPaid,
        Kind::OrderRefunded,
        Kind::OrderDeclined,
        Kind::DisputeDecided,
        Kind::TicketAnswered,
        Kind::SettlementFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OrderPaid => "order_paid",
            Kind::OrderRefunded => "order_refunded",
            Kind::OrderDeclined => "order_declined",
            Kind::DisputeDecided => "dispute_decided",
            Kind::TicketAnswered => "ticket_answered",
            Kind::SettlementFailed => "settlement_failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// The template of each kind (`WECHAT_SUBSCRIBE_TEMPLATES`,
/// `order_paid=<id>,order_refunded=<id>,…`): a kind not named sends nothing (its notifications
/// are recorded as skipped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Templates {
    by_kind: BTreeMap<Kind, String>,
}

impl Templates {
    /// Reads `kind=template_id` pairs separated by commas: each kind at most once, each template
    /// for one kind only (its grants are counted per template), ids of 1 to 64 letters, digits,
    /// `-` and `_`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut by_kind = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, id) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not kind=template_id"))?;
            let kind = Kind::parse(kind.trim()).ok_or_else(|| {
                format!(
                    "{:?} is no message kind (one of {})",
                    kind.trim(),
                    Kind::ALL.map(Kind::as_str).join(", ")
                )
            })?;
            let id = id.trim();
            if !valid_template_id(id) {
                return Err(format!(
                    "{}: {id:?} is not a template id (1 to 64 letters, digits, - and _)",
                    kind.as_str()
                ));
            }
            if by_kind.values().any(|other: &String| other == id) {
                return Err(format!("template {id:?} is named for two kinds"));
            }
            if by_kind.insert(kind, id.to_owned()).is_some() {
                return Err(format!("{} is named twice", kind.as_str()));
            }
        }
        Ok(Templates { by_kind })
    }

    pub fn template(&self, kind: Kind) -> Option<&str> {
        self.by_kind.get(&kind).map(String::as_str)
    }

    pub fn kind_of(&self, template_id: &str) -> Option<Kind> {
        self.by_kind
            .iter()
            .find(|(_, id)| id.as_str() == template_id)
            .map(|(kind, _)| *kind)
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Kind, &str)> {
        self.by_kind.iter().map(|(k, id)| (*k, id.as_str()))
    }
}

fn valid_template_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// Grants.

/// A member's acceptances of one template, and the messages that spent them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub member_id: UserId,
    pub template_id: String,
    /// Acceptances the client reported.
    #[serde(default)]
    pub hinted: i64,
    /// Acceptances WeChat's push confirmed.
    #[serde(default)]
    pub confirmed: i64,
    /// Messages claimed against this template.
    #[serde(default)]
    pub spent: i64,
    /// The last answer heard (`accept`, `reject`, `ban`, `filter`, or `not_subscribed` after a
    /// 43101) and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Grows with every write (added, so concurrent counts never lose one).
    #[serde(default)]
    pub version: i64,
}

impl Record for Grant {
    const KIND: &'static str = "subscription grant";
}

impl Grant {
    /// Messages the member may still be sent with this template.
    pub fn remaining(&self) -> i64 {
        (self.hinted.max(self.confirmed) - self.spent).max(0)
    }
}

/// The answer `wx.requestSubscribeMessage` gives per template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Accept,
    Reject,
    Ban,
    Filter,
}

impl Answer {
    fn as_str(self) -> &'static str {
        match self {
            Answer::Accept => "accept",
            Answer::Reject => "reject",
            Answer::Ban => "ban",
            Answer::Filter => "filter",
        }
    }
}

/// `POST /v1/me/subscriptions`: the result of one `wx.requestSubscribeMessage` call, template id
/// → answer (at most 3 templates, as WeChat allows per call).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HintBody {
    pub results: BTreeMap<String, Answer>,
}

/// The most templates one `wx.requestSubscribeMessage` asks about.
pub const MAX_PER_CALL: usize = 3;

impl HintBody {
    /// The answers, each for a configured template (422 naming `results` or `results.<id>`).
    pub fn validate(&self, templates: &Templates) -> Result<Vec<(String, Answer)>, Error> {
        if self.results.is_empty() || self.results.len() > MAX_PER_CALL {
            return Err(Error::invalid(
                "results",
                format!("must name 1 to {MAX_PER_CALL} template ids"),
            ));
        }
        self.results
            .iter()
            .map(|(id, answer)| match templates.kind_of(id) {
                Some(_) => Ok((id.clone(), *answer)),
                None => Err(Error::invalid(
                    &format!("results.{}", printable(id)),
                    "is not a template id Renji sends (GET /v1/me/subscriptions lists them)",
                )),
            })
            .collect()
    }
}

/// A client's key, safe to echo in an error (at most 64 characters, printable).
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The write that adds `accepted` acceptances from `source` (`hinted` or `confirmed`) and the
/// last answer to the grant of (`member`, `template`), creating it when absent.
fn grant_update(
    member: &UserId,
    template: &str,
    source: &str,
    accepted: i64,
    answer: &str,
    at: &str,
) -> Write {
    let mut update = Write::update(keys::subscription_grant(member, template))
        .set("member_id", member.as_str())
        .set("template_id", template)
        .set("last_result", answer)
        .set("updated_at", at)
        .add("version", 1);
    if accepted > 0 {
        update = update.add(source, accepted);
    }
    update.build()
}

/// Records what the client says `wx.requestSubscribeMessage` answered (a hint: see the module).
pub async fn record_hints(
    store: &DynStore,
    member: &UserId,
    answers: &[(String, Answer)],
    now: OffsetDateTime,
) -> Result<(), Error> {
    let at = rfc3339(now);
    let writes: Vec<Write> = answers
        .iter()
        .map(|(template, answer)| {
            let accepted = i64::from(*answer == Answer::Accept);
            grant_update(member, template, "hinted", accepted, answer.as_str(), &at)
        })
        .collect();
    store.transact(writes).await.map_err(Error::from)
}

/// `GET /v1/me/subscriptions`: each configured kind, its template and what remains of the
/// member's grants.
pub async fn view(
    store: &DynStore,
    templates: &Templates,
    member: &UserId,
) -> Result<Value, Error> {
    let configured: Vec<(Kind, &str)> = templates.iter().collect();
    let keys: Vec<_> = configured
        .iter()
        .map(|(_, id)| keys::subscription_grant(member, id))
        .collect();
    let grants: Vec<Option<Grant>> = store.get_records(&keys).await?;
    let list: Vec<Value> = configured
        .iter()
        .zip(grants)
        .map(|((kind, id), grant)| {
            json!({
                "kind": kind.as_str(),
                "template_id": id,
                "remaining": grant.as_ref().map_or(0, Grant::remaining),
                "last_result": grant.as_ref().and_then(|g| g.last_result.clone()),
                "updated_at": grant.as_ref().and_then(|g| g.updated_at.clone()),
            })
        })
        .collect();
    Ok(json!({ "subscriptions": list }))
}

/// How long a push's marker is kept (WeChat retries within seconds).
const PUSH_MARKER_SECS: i64 = 7 * 86400;

/// WeChat's `subscribe_msg_popup_event` push for `openid` (verified and decrypted by the events
/// route): each accepted, configured template's `confirmed` count grows by one, once per push
/// (`CreateTime` + template id); a rejection only records the answer. `List` is an object for one
/// template and an array for several; `CreateTime` an integer or a string. An openid of no member
/// (or of one being deleted) and templates Renji does not send are ignored.
pub async fn on_popup(app: &App, openid: &str, event: &Value) -> Result<(), Error> {
    let created = match event.get("CreateTime") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| Error::invalid("CreateTime", "must be a whole number"))?;
    let entries: Vec<&Value> = match event.get("List") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err(Error::invalid("List", "must be an object or an array")),
    };
    let templates = &app.config.subscribe_templates;
    let mut answers: BTreeMap<String, bool> = BTreeMap::new();
    for entry in entries {
        let text = |name: &str| entry.get(name).and_then(Value::as_str).map(str::trim);
        let (Some(template), Some(status)) = (text("TemplateId"), text("SubscribeStatusString"))
        else {
            return Err(Error::invalid(
                "List",
                "each entry has TemplateId and SubscribeStatusString",
            ));
        };
        if templates.kind_of(template).is_none() {
            continue;
        }
        answers.insert(template.to_owned(), status == "accept");
    }
    if answers.is_empty() {
        return Ok(());
    }
    let store = &app.store;
    let Some(claim) = store
        .get_record::<OpenidClaim>(&keys::openid(openid))
        .await?
    else {
        tracing::info!("subscription push for an openid of no member: ignored");
        return Ok(());
    };
    let member = claim.user_id;
    let at = rfc3339(OffsetDateTime::now_utc());
    let ttl = OffsetDateTime::now_utc().unix_timestamp() + PUSH_MARKER_SECS;
    for (template, accepted) in answers {
        let answer = if accepted { "accept" } else { "reject" };
        let marker = keys::subscription_push(&member, created, &template);
        let mut marker_item = Item::new();
        marker_item.insert("pk".into(), marker.pk.clone().into());
        marker_item.insert("sk".into(), marker.sk.clone().into());
        marker_item.insert("ttl".into(), ttl.into());
        let writes = vec![
            Write::put_if(marker_item, Condition::Absent, PUSH_SEEN_LABEL),
            grant_update(
                &member,
                &template,
                "confirmed",
                i64::from(accepted),
                answer,
                &at,
            ),
        ];
        match store.transact(writes).await {
            Ok(()) => {
                tracing::info!(member = %member, template = %template, answer, "subscription push counted")
            }
            Err(crate::store::StoreError::ConditionFailed {
                label: PUSH_SEEN_LABEL,
            }) => {
                tracing::info!(member = %member, template = %template, "subscription push seen before")
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

const PUSH_SEEN_LABEL: &str = "subscription_push_new";

// The outbox.

/// Where a notification is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteStatus {
    /// Written with the change; the job has not sent it yet (or will try again).
    Pending,
    /// Claimed by a run (its grant spent) until its lease ends.
    Sending,
    Sent,
    /// Nothing sent: no grant, no template configured, or no WeChat openid.
    Skipped,
    /// WeChat said 43101: the member had no grant after all.
    NotSubscribed,
    /// WeChat refused it, or it could not be sent after the last attempt.
    Failed,
}

impl NoteStatus {
    fn is_final(self) -> bool {
        !matches!(self, NoteStatus::Pending | NoteStatus::Sending)
    }
}

/// One attempt at a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: String,
    /// `sent`, `no_grant`, `not_configured`, `no_openid`, `not_subscribed`, `refused`,
    /// `unavailable`, `gave_up`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errcode: Option<i64>,
}

/// A subscribe message to send one member: what happened, rendered when it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// `<order id>.<order version>.<kind>` or `<ticket id>.<message id>`: one per change.
    pub id: String,
    pub member_id: UserId,
    pub kind: Kind,
    /// `order:<id>` or `ticket:<id>`.
    pub subject: String,
    /// The mini-program page it opens.
    pub page: String,
    /// The template's data: keyword → value, within WeChat's value rules.
    pub data: BTreeMap<String, String>,
    pub status: NoteStatus,
    /// A grant was spent on it (a retry sends without spending another).
    #[serde(default)]
    pub holds_grant: bool,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    pub created_at: String,
    pub updated_at: String,
    /// When the job acts on it next (epoch seconds), while not final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
    #[serde(default)]
    pub version: i64,
}

impl Record for Notification {
    const KIND: &'static str = "notification";
}

impl Notification {
    fn new(
        id: String,
        member: &UserId,
        kind: Kind,
        subject: String,
        page: String,
        data: BTreeMap<String, String>,
        at: &str,
    ) -> Self {
        Notification {
            id,
            member_id: member.clone(),
            kind,
            subject,
            page,
            data,
            status: NoteStatus::Pending,
            holds_grant: false,
            attempts: Vec::new(),
            created_at: at.to_owned(),
            updated_at: at.to_owned(),
            due_at: Some(crate::domain::orders::epoch(at)),
            version: 0,
        }
    }

    fn key(&self) -> crate::store::Key {
        keys::notification(&self.member_id, &self.id)
    }

    fn item(&self) -> Result<Item, Error> {
        let listed = match (self.status.is_final(), self.due_at) {
            (false, Some(at)) => Some(keys::notification_listed(at, &self.member_id, &self.id)),
            _ => None,
        };
        self.to_item(self.key(), listed)
    }

    /// As the member's export and the tests see it.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": self.created_at,
        })
    }
}

/// At most 20 characters (WeChat's `thing`), control characters dropped, `…` when cut.
pub fn thing(text: &str) -> String {
    let clean: Vec<char> = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .chars()
        .collect();
    match clean.len() {
        0 => "-".into(),
        n if n <= 20 => clean.into_iter().collect(),
        _ => clean[..19].iter().chain(std::iter::once(&'…')).collect(),
    }
}

/// An amount in 元 from integer fen (WeChat's `amount`: digits, 2 decimals, ending in 元).
pub fn amount(fen: Fen) -> String {
    let fen = fen.get().max(0);
    format!("{}.{:02}元", fen / 100, fen % 100)
}

/// A time as WeChat's `time` shows it, in China Standard Time: `2026年11月29日 19:49`.
pub fn time_text(rfc: &str) -> String {
    let at = OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8));
    format!(
        "{}年{}月{}日 {:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// The mini-program page of an order.
pub fn order_page(order: &Order) -> String {
    format!("pages/orders/detail?id={}", order.id)
}

fn order_data(after: &Order, third: (&str, String), at: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("character_string1".to_owned(), after.id.to_string()),
        ("thing2".to_owned(), thing(&after.listing.title)),
        (third.0.to_owned(), third.1),
        ("time4".to_owned(), time_text(at)),
    ])
}

/// The notifications an order's transition from `before` to `after` owes its parties, as writes
/// for the transition's own transaction: paid → the seller (`order_paid`); a refund that
/// succeeded → the buyer (`order_refunded`); the seller declining the paid order (or not
/// accepting it in time) or the buyer's refund request → the buyer (`order_declined`); staff's decision of a dispute → both
/// (`dispute_decided`). Data keywords: `character_string1` order no, `thing2` listing title,
/// `amount3` / `thing3` what happened, `time4` when.
pub fn order_writes(before: &Order, after: &Order) -> Result<Vec<Write>, Error> {
    use OrderStatus as S;
    let at = after.updated_at.as_str();
    let actor = after.timeline.last().map(|step| step.actor);
    let seller_acted = actor == Some(Actor::Seller);
    // The seller declined the paid order, or let the acceptance deadline pass (the job
    // refunds it): either way the order is not taken.
    let not_taken = seller_acted || actor == Some(Actor::System);
    let mut notes: Vec<(Kind, &UserId, BTreeMap<String, String>)> = Vec::new();
    match (before.status, after.status) {
        (S::PendingPayment, S::Paid) => notes.push((
            Kind::OrderPaid,
            &after.seller_id,
            order_data(after, ("amount3", amount(after.amount_fen)), at),
        )),
        // Out of `refunding` but not failed: the refund succeeded (the order also writes itself
        // while refunding, e.g. when the provider accepts the refund: no message then).
        (S::Refunding, to) if !matches!(to, S::Refunding | S::RefundFailed) => {
            let refunded = after
                .refunds
                .last()
                .map_or(after.refunded_fen, |r| r.amount_fen);
            notes.push((
                Kind::OrderRefunded,
                &after.buyer_id,
                order_data(after, ("amount3", amount(refunded)), at),
            ))
        }
        (S::Paid, S::Refunding) if not_taken => notes.push((
            Kind::OrderDeclined,
            &after.buyer_id,
            order_data(after, ("thing3", thing("卖家未接单，款项将原路退回")), at),
        )),
        (S::RefundRequested, S::Accepted) if seller_acted => notes.push((
            Kind::OrderDeclined,
            &after.buyer_id,
            order_data(after, ("thing3", thing("卖家拒绝了退款申请")), at),
        )),
        (S::Disputed, to) if to != S::Disputed => {
            let decision = match after.refunds.last() {
                Some(r) if to == S::Refunding => format!("退款{}", amount(r.amount_fen)),
                _ => "维持订单，不退款".to_owned(),
            };
            for member in [&after.buyer_id, &after.seller_id] {
                notes.push((
                    Kind::DisputeDecided,
                    member,
                    order_data(after, ("thing3", thing(&decision)), at),
                ));
            }
        }
        _ => {}
    }
    notes
        .into_iter()
        .map(|(kind, member, data)| {
            Notification::new(
                format!("{}.{}.{}", after.id, after.version, kind.as_str()),
                member,
                kind,
                format!("order:{}", after.id),
                order_page(after),
                data,
                at,
            )
            .item()
            .map(Write::put)
        })
        .collect()
}

/// The notification a failed split of `after` (its version just written `settle_failed`, for
/// that write's own transaction) owes the seller (`settlement_failed`: `character_string1` order
/// no, `thing2` listing title, `thing3` what to do — bind a payout account again before the split
/// deadline, `time4` when it failed). Its id names the order's version, so it is written once per
/// failure: the job's write of the failure is conditioned on the version it read, and a rerun
/// that finds the split failed already writes nothing.
pub fn settlement_failed_writes(after: &Order, no_account: bool) -> Result<Vec<Write>, Error> {
    let at = after.updated_at.as_str();
    let verb = match no_account {
        true => "绑定",
        false => "重新绑定",
    };
    let todo = match after.split_deadline.as_deref() {
        Some(deadline) => format!("请于{}前{verb}收款账户", date_text(deadline)),
        None => format!("请{verb}收款账户"),
    };
    let kind = Kind::SettlementFailed;
    let note = Notification::new(
        format!("{}.{}.{}", after.id, after.version, kind.as_str()),
        &after.seller_id,
        kind,
        format!("order:{}", after.id),
        order_page(after),
        order_data(after, ("thing3", thing(&todo)), at),
        at,
    );
    Ok(vec![Write::put(note.item()?)])
}

/// A date as the seller reads it, in China Standard Time: `12月25日`.
fn date_text(rfc: &str) -> String {
    let at = OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8));
    format!("{}月{}日", u8::from(at.month()), at.day())
}

/// The notification staff's answer `message` on `ticket` owes its author (`ticket_answered`:
/// `thing1` the ticket's subject, `thing2` the answer's beginning, `time3` when), for the
/// message's own transaction; nothing for a member's message.
pub fn ticket_answer_writes(ticket: &Ticket, message: &TicketMessage) -> Result<Vec<Write>, Error> {
    if message.from != Sender::Staff {
        return Ok(Vec::new());
    }
    let data = BTreeMap::from([
        ("thing1".to_owned(), thing(&ticket.subject)),
        ("thing2".to_owned(), thing(&message.text)),
        ("time3".to_owned(), time_text(&message.created_at)),
    ]);
    let note = Notification::new(
        format!("{}.{}", ticket.id, message.id),
        &ticket.author_id,
        Kind::TicketAnswered,
        format!("ticket:{}", ticket.id),
        format!("pages/tickets/detail?id={}", ticket.id),
        data,
        &message.created_at,
    );
    Ok(vec![Write::put(note.item()?)])
}

/// A member's notifications, newest last (tests and tools).
pub async fn notifications(store: &DynStore, member: &UserId) -> Result<Vec<Notification>, Error> {
    let page = store
        .query(
            Query::partition(keys::user(member))
                .sort(SortKey::Prefix(keys::NOTIFY_PREFIX.into()))
                .limit(1000),
        )
        .await?;
    page.items
        .into_iter()
        .map(Notification::from_item)
        .collect()
}

// The job.

/// How long a claim keeps other runs off a notification (a send times out well before).
pub const LEASE_SECS: i64 = 120;
/// Attempts at a send WeChat could not take before it is given up.
pub const MAX_ATTEMPTS: usize = 5;

/// What one run may do.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub per_run: usize,
    pub time: std::time::Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            per_run: 100,
            time: std::time::Duration::from_secs(40),
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub examined: u32,
    pub sent: u32,
    /// Recorded without a send (no grant, no template, no openid).
    pub skipped: u32,
    pub not_subscribed: u32,
    /// Tried again later.
    pub retrying: u32,
    /// Refused by WeChat, or given up.
    pub failed: u32,
    /// Another run had it.
    pub lost: u32,
    pub more: bool,
}

const NOTE_LABEL: &str = "notification_version";
const GRANT_LABEL: &str = "subscription_grant_version";

/// One run at `now`: every notification due, claimed, sent and recorded.
pub async fn run(app: &App, now: OffsetDateTime, budget: Budget) -> Result<Report, Error> {
    let started = Instant::now();
    let mut report = Report::default();
    let page = app
        .store
        .query(
            Query::partition(keys::due_partition(DUE_KIND))
                .index(GSI1)
                .sort(SortKey::Below(keys::due(now.unix_timestamp() + 1)))
                .limit(budget.per_run),
        )
        .await?;
    report.more = page.next.is_some();
    for item in page.items {
        if started.elapsed() >= budget.time {
            report.more = true;
            break;
        }
        report.examined += 1;
        let note = Notification::from_item(item)?;
        if note.status.is_final() {
            continue;
        }
        match one(app, note, now).await {
            Ok(outcome) => match outcome {
                Outcome::Sent => report.sent += 1,
                Outcome::Skipped => report.skipped += 1,
                Outcome::NotSubscribed => report.not_subscribed += 1,
                Outcome::Retrying => report.retrying += 1,
                Outcome::Failed => report.failed += 1,
                Outcome::Lost => report.lost += 1,
            },
            Err(e) => {
                tracing::warn!(error = %e, "notification not handled");
                report.lost += 1;
            }
        }
    }
    Ok(report)
}

/// The `gsi1` due-list kind of notifications (`DUE#notify`).
pub const DUE_KIND: &str = "notify";

enum Outcome {
    Sent,
    Skipped,
    NotSubscribed,
    Retrying,
    Failed,
    Lost,
}

/// Writes `next` (the note after an attempt) conditioned on the version `read`: whether it
/// landed (a lost race is another run's).
async fn save(
    store: &DynStore,
    read: i64,
    mut next: Notification,
    extra: Option<Write>,
) -> Result<bool, Error> {
    next.version = read + 1;
    let mut writes = vec![Write::put_if(
        next.item()?,
        Condition::Equals("version".into(), read.into()),
        NOTE_LABEL,
    )];
    writes.extend(extra);
    match store.transact(writes).await {
        Ok(()) => Ok(true),
        Err(crate::store::StoreError::ConditionFailed { .. })
        | Err(crate::store::StoreError::Conflict) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

fn attempt(
    now: OffsetDateTime,
    outcome: &str,
    template: Option<&str>,
    errcode: Option<i64>,
) -> Attempt {
    Attempt {
        at: rfc3339(now),
        outcome: outcome.to_owned(),
        template_id: template.map(str::to_owned),
        errcode,
    }
}

/// Records a final outcome without a send (nothing spent).
async fn finish(
    store: &DynStore,
    note: &Notification,
    status: NoteStatus,
    record: Attempt,
) -> Result<Outcome, Error> {
    let mut next = note.clone();
    log_attempt(&next, &record);
    next.status = status;
    next.due_at = None;
    next.updated_at = record.at.clone();
    next.attempts.push(record);
    Ok(match save(store, note.version, next, None).await? {
        true => Outcome::Skipped,
        false => Outcome::Lost,
    })
}

fn log_attempt(note: &Notification, record: &Attempt) {
    tracing::info!(
        member = %note.member_id,
        notification = %note.id,
        kind = note.kind.as_str(),
        outcome = %record.outcome,
        errcode = ?record.errcode,
        "subscribe message"
    );
}

async fn one(app: &App, note: Notification, now: OffsetDateTime) -> Result<Outcome, Error> {
    let store = &app.store;
    let Some(template) = app
        .config
        .subscribe_templates
        .template(note.kind)
        .map(str::to_owned)
    else {
        return finish(
            store,
            &note,
            NoteStatus::Skipped,
            attempt(now, "not_configured", None, None),
        )
        .await;
    };
    let member: Option<Member> = store.get_record(&keys::member(&note.member_id)).await?;
    let Some(openid) = member.map(|m| m.openid).filter(|o| !o.is_empty()) else {
        return finish(
            store,
            &note,
            NoteStatus::Skipped,
            attempt(now, "no_openid", Some(&template), None),
        )
        .await;
    };
    // Claim: the lease, and (the first time) a grant spent, in one transaction conditioned on
    // both versions read.
    let mut claimed = note.clone();
    claimed.status = NoteStatus::Sending;
    claimed.due_at = Some(now.unix_timestamp() + LEASE_SECS);
    claimed.updated_at = rfc3339(now);
    let spend = match note.holds_grant {
        true => None,
        false => {
            let key = keys::subscription_grant(&note.member_id, &template);
            let grant: Option<Grant> = store.get_record(&key).await?;
            let Some(grant) = grant.filter(|g| g.remaining() > 0) else {
                return finish(
                    store,
                    &note,
                    NoteStatus::Skipped,
                    attempt(now, "no_grant", Some(&template), None),
                )
                .await;
            };
            claimed.holds_grant = true;
            Some(
                Write::update(key)
                    .add("spent", 1)
                    .add("version", 1)
                    .condition(
                        Condition::Equals("version".into(), grant.version.into()),
                        GRANT_LABEL,
                    )
                    .build(),
            )
        }
    };
    if !save(store, note.version, claimed.clone(), spend).await? {
        return Ok(Outcome::Lost);
    }
    claimed.version = note.version + 1;
    let message = SubscribeMessage {
        touser: openid,
        template_id: template.clone(),
        page: Some(note.page.clone()),
        data: Value::Object(
            note.data
                .iter()
                .map(|(k, v)| (k.clone(), json!({ "value": v })))
                .collect(),
        ),
    };
    let result = match app.wechat_api() {
        Ok(api) => api.send_subscribe_message(&message).await,
        Err(e) => Err(PlatformError::Unavailable(e.to_string())),
    };
    let mut next = claimed.clone();
    // WeChat refused the message outright (a bad openid, template, data, page; a sensitive
    // word): nothing was delivered, so the grant is given back.
    let mut give_back = None;
    let (status, outcome, record) = match result {
        Ok(()) => (
            NoteStatus::Sent,
            Outcome::Sent,
            attempt(now, "sent", Some(&template), None),
        ),
        Err(PlatformError::NotSubscribed) => {
            forget_grant(store, &note.member_id, &template, now).await?;
            (
                NoteStatus::NotSubscribed,
                Outcome::NotSubscribed,
                attempt(now, "not_subscribed", Some(&template), Some(43101)),
            )
        }
        Err(PlatformError::Refused(code)) => {
            give_back = Some(code);
            (
                NoteStatus::Failed,
                Outcome::Failed,
                attempt(now, "refused", Some(&template), Some(code)),
            )
        }
        Err(PlatformError::NotRecentlyActive) => {
            give_back = Some(61010);
            (
                NoteStatus::Failed,
                Outcome::Failed,
                attempt(now, "refused", Some(&template), Some(61010)),
            )
        }
        Err(PlatformError::Unavailable(_)) | Err(PlatformError::Misconfigured(_)) => {
            let code = match &result {
                Err(PlatformError::Misconfigured(code)) => Some(*code),
                _ => None,
            };
            let tries = note
                .attempts
                .iter()
                .filter(|a| a.outcome == "unavailable")
                .count()
                + 1;
            if tries >= MAX_ATTEMPTS {
                (
                    NoteStatus::Failed,
                    Outcome::Failed,
                    attempt(now, "gave_up", Some(&template), code),
                )
            } else {
                // 1, 2, 4, 8 minutes.
                let wait = 60i64 << (tries - 1).min(6);
                next.due_at = Some(now.unix_timestamp() + wait);
                (
                    NoteStatus::Pending,
                    Outcome::Retrying,
                    attempt(now, "unavailable", Some(&template), code),
                )
            }
        }
    };
    log_attempt(&next, &record);
    next.status = status;
    if status.is_final() {
        next.due_at = None;
    }
    next.updated_at = record.at.clone();
    next.attempts.push(record);
    if give_back.is_some() {
        next.holds_grant = false;
    }
    let returned = give_back.map(|_| {
        Write::update(keys::subscription_grant(&note.member_id, &template))
            .add("spent", -1)
            .add("version", 1)
            .build()
    });
    // Our own lease: only a crash past it lets another run in, so this lands.
    save(store, claimed.version, next, returned).await?;
    Ok(outcome)
}

/// After a 43101: nothing remains of the grant until the member accepts again.
async fn forget_grant(
    store: &DynStore,
    member: &UserId,
    template: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let key = keys::subscription_grant(member, template);
    for _ in 0..3 {
        let Some(grant) = store.get_record::<Grant>(&key).await? else {
            return Ok(());
        };
        let write = Write::update(key.clone())
            .set("hinted", grant.hinted.min(grant.spent))
            .set("confirmed", grant.confirmed.min(grant.spent))
            .set("last_result", "not_subscribed")
            .set("updated_at", rfc3339(now))
            .add("version", 1)
            .condition(
                Condition::Equals("version".into(), grant.version.into()),
                GRANT_LABEL,
            )
            .build();
        match store.write(write).await {
            Ok(_) => return Ok(()),
            Err(crate::store::StoreError::ConditionFailed { .. })
            | Err(crate::store::StoreError::Conflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_with_clear_errors() {
        let t = Templates::parse("order_paid=AbC-1_x, ticket_answered=T2").unwrap();
        assert_eq!(t.template(Kind::OrderPaid), Some("AbC-1_x"));
        assert_eq!(t.kind_of("T2"), Some(Kind::TicketAnswered));
        assert_eq!(t.template(Kind::OrderRefunded), None);
        assert!(Templates::parse("").unwrap().is_empty());
        for (bad, says) in [
            ("order_paid", "kind=template_id"),
            ("paid=x", "no message kind"),
            ("order_paid=a b", "not a template id"),
            ("order_paid=x,order_paid=y", "named twice"),
            ("order_paid=x,order_refunded=x", "two kinds"),
        ] {
            let e = Templates::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn values_keep_wechats_rules() {
        assert_eq!(thing("短"), "短");
        let long = "一二三四五六七八九十一二三四五六七八九十一";
        assert_eq!(thing(long).chars().count(), 20);
        assert!(thing(long).ends_with('…'));
        assert_eq!(thing(&"a".repeat(20)), "a".repeat(20));
        assert_eq!(thing("a\nb"), "a b");
        assert_eq!(amount(Fen::from_fen(12345)), "123.45元");
        assert_eq!(amount(Fen::from_fen(5)), "0.05元");
        assert_eq!(time_text("2026-11-29T16:05:00Z"), "2026年11月30日 00:05");
        assert_eq!(date_text("2026-12-24T16:05:00Z"), "12月25日");
        // The longest advice fits a `thing` uncut.
        let todo = format!(
            "请于{}前重新绑定收款账户",
            date_text("2026-12-24T16:05:00Z")
        );
        assert_eq!(thing(&todo), todo);
    }

    #[test]
    fn remaining_counts_one_acceptance_once() {
        let mut g = Grant {
            member_id: UserId::generate(),
            template_id: "t".into(),
            hinted: 1,
            confirmed: 1,
            spent: 0,
            last_result: None,
            updated_at: None,
            version: 2,
        };
        assert_eq!(g.remaining(), 1);
        g.confirmed = 3;
        assert_eq!(g.remaining(), 3);
        g.spent = 4;
        assert_eq!(g.remaining(), 0);
    }
}
