//! Settlement: moving a seller's share of a paid order through the provider's own settlement
//! product (WeChat Pay 分账, Alipay 分账/royalty), never through Renji's balance (`settlement.md`).
//!
//! One port, [`Settlement`], with an adapter per product:
//! - `wechatpay`: WeChat Pay ordinary-merchant profit sharing (`/v3/profitsharing/*`), Renji the
//!   payee, the seller's share split out — over the payment gateway's signed HTTP calls.
//! - `alipay`: Alipay royalty (`alipay.trade.royalty.relation.bind`/`unbind`,
//!   `alipay.trade.order.settle`, `.settle.query`, `.onsettle.query`) — over the Alipay client.
//!
//! **Modes.** Which product settles an order, and therefore who the payee is and what is split
//! out, is the order's [`SettleMode`], recorded when the order is created: `ordinary` (Renji is
//! payee; the seller's share is split out to the seller's receiver) or `platform` (平台收付通 /
//! 直付通: the seller, a sub-merchant, is payee; only Renji's commission is split out, to Renji).
//! The domain asks the mode [`SettleMode::split_out`] what to split and to whom, and sends the
//! same [`SplitRequest`] to whichever adapter the mode names; a platform adapter is a new
//! implementation of this trait, and orders made under the ordinary mode keep settling through
//! the ordinary adapter. Nothing in an order names a provider URL or a product API.
//!
//! **Identifiers** are derived from the order ([`split_no`], [`unfreeze_no`], [`return_no`]):
//! a retry reuses the number with the identical body, and the provider treats it as one request
//! ("同一分账单号多次请求等同一次").

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::money::Fen;
use crate::payments::{GatewayError, Provider};

pub mod alipay;
pub mod config;
pub mod wechatpay;

pub use config::SettlementConfig;

/// Which settlement product an order's money goes through, recorded on the order at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettleMode {
    /// Renji's own merchant account is payee (WeChat 普通商户分账, Alipay 商家分账); the seller's
    /// share is split out, within the provider's ratio cap and freeze deadline.
    Ordinary,
    /// The seller is payee as a sub-merchant (WeChat 平台收付通, Alipay 直付通); Renji's
    /// commission is split out to Renji. No adapter yet.
    Platform,
}

/// Who receives the split of an order, given its mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitOut {
    /// Ordinary mode: the seller's share goes to the seller's receiver.
    SellerShare,
    /// Platform mode: the commission goes to Renji's receiver.
    Commission,
}

impl SettleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SettleMode::Ordinary => "ordinary",
            SettleMode::Platform => "platform",
        }
    }

    /// Who is payee of the payment: Renji (ordinary) or the seller (platform).
    pub fn seller_is_payee(self) -> bool {
        self == SettleMode::Platform
    }

    pub fn split_out(self) -> SplitOut {
        match self {
            SettleMode::Ordinary => SplitOut::SellerShare,
            SettleMode::Platform => SplitOut::Commission,
        }
    }
}

/// The split number of an order (`PS<order_no>`): WeChat `out_order_no`, Alipay `out_request_no`.
pub fn split_no(order_no: &str) -> String {
    format!("PS{order_no}")
}

/// The split number of an order's `attempt`-th split (after a closed receiver was replaced): the
/// first is [`split_no`]; a later one `PS<order_no>_<attempt>` — a new number (a closed split's
/// number cannot be reused with another receiver), still derived from the order, ≤ 32
/// `[A-Za-z0-9_]` for attempts below 100.
pub fn split_no_attempt(order_no: &str, attempt: u32) -> String {
    match attempt {
        0 | 1 => split_no(order_no),
        n => format!("PS{order_no}_{n}"),
    }
}

/// The number of the request that unfreezes what an order has left (`PU<order_no>`).
pub fn unfreeze_no(order_no: &str) -> String {
    format!("PU{order_no}")
}

/// The number of an order's `n`-th return (`PR<order_no><n>`, n from 1).
pub fn return_no(order_no: &str, n: u32) -> String {
    format!("PR{order_no}{n}")
}

/// The number of one bind/unbind request at Alipay (`RB`/`RU` + a hash of the receiver and
/// `request`), ≤ 32 `[A-Za-z0-9_]`. Alipay wants every request's number unique at the merchant:
/// a bind after an unbind of the same receiver must not reuse the first bind's number (it could be
/// answered as that earlier request), so each call names its own `request` (a fresh ULID); a
/// repeated bind of a bound receiver is harmless at Alipay.
pub fn relation_no(receiver: &Receiver, bind: bool, request: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!(
            "{}\n{}\n{request}",
            receiver.kind.as_str(),
            receiver.account
        )
        .as_bytes(),
    );
    let hex: String = digest.as_ref()[..14]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}{hex}", if bind { "RB" } else { "RU" })
}

/// The kind of a receiver's account, per provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverKind {
    /// WeChat `PERSONAL_OPENID`: an openid under the appid bound to the merchant.
    WechatOpenid,
    /// WeChat `MERCHANT_ID`: a merchant number (its full name is required).
    WechatMerchant,
    /// Alipay `userId` (2088…).
    AlipayUserId,
    /// Alipay `loginName` (phone or e-mail; the name is required).
    AlipayLoginName,
    /// Alipay `openId`.
    AlipayOpenId,
}

impl ReceiverKind {
    pub fn provider(self) -> Provider {
        match self {
            ReceiverKind::WechatOpenid | ReceiverKind::WechatMerchant => Provider::Wechat,
            _ => Provider::Alipay,
        }
    }

    /// The provider's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverKind::WechatOpenid => "PERSONAL_OPENID",
            ReceiverKind::WechatMerchant => "MERCHANT_ID",
            ReceiverKind::AlipayUserId => "userId",
            ReceiverKind::AlipayLoginName => "loginName",
            ReceiverKind::AlipayOpenId => "openId",
        }
    }

    pub fn parse(provider_word: &str) -> Option<Self> {
        [
            ReceiverKind::WechatOpenid,
            ReceiverKind::WechatMerchant,
            ReceiverKind::AlipayUserId,
            ReceiverKind::AlipayLoginName,
            ReceiverKind::AlipayOpenId,
        ]
        .into_iter()
        .find(|k| k.as_str() == provider_word)
    }

    /// Whether the provider can take money back from it (WeChat: only merchants that enabled
    /// 同意分账回退; personal receivers never).
    pub fn returnable(self) -> bool {
        self == ReceiverKind::WechatMerchant
    }
}

/// A receiver (a payout account at the provider).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receiver {
    pub kind: ReceiverKind,
    pub account: String,
    /// The real name (personal) or full merchant name; sent encrypted to WeChat Pay.
    pub name: Option<String>,
}

/// One receiver's share of a split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub receiver: Receiver,
    pub amount: Fen,
    /// WeChat `description` (≤ 80 characters), Alipay `desc`.
    pub description: String,
}

/// A split of a paid order. Every field is derived from the stored order, so a retry sends the
/// identical request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitRequest {
    pub order_no: String,
    /// The provider's transaction id (WeChat `transaction_id`, Alipay `trade_no`).
    pub transaction_id: String,
    /// [`split_no`] of the order.
    pub out_order_no: String,
    pub shares: Vec<Share>,
    /// Unfreeze what is not split to the payee in the same request (WeChat `unfreeze_unsplit`,
    /// Alipay `extend_params.royalty_finish`): no later split of the order is possible.
    pub finish: bool,
}

/// A split's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitState {
    /// Accepted, not done: query again later (personal receivers get no notification).
    Processing,
    Finished,
}

/// One receiver's result in a split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShareResult {
    Pending,
    Success,
    /// The receiver's money went back to the payee: WeChat CLOSED, Alipay FAIL (with the
    /// provider's reason, e.g. ACCOUNT_ABNORMAL, NO_RELATION).
    Closed {
        reason: String,
    },
}

/// One line of a split's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareOutcome {
    /// The receiver's kind as the provider reported it, when it did.
    pub kind: Option<ReceiverKind>,
    pub account: String,
    pub amount: Fen,
    pub result: ShareResult,
    pub detail_id: Option<String>,
}

/// A split (or unfreeze) as the provider reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitAnswer {
    pub out_order_no: String,
    /// The provider's number for it (WeChat `order_id`, Alipay `settle_no`).
    pub order_id: Option<String>,
    pub state: SplitState,
    pub shares: Vec<ShareOutcome>,
}

/// Unfreezing what an order has left to the payee (no more splits after it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnfreezeRequest {
    pub order_no: String,
    pub transaction_id: String,
    /// [`unfreeze_no`] of the order: a new number, not the split's.
    pub out_order_no: String,
    pub description: String,
}

/// Taking a split share back from a receiver (回退).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnRequest {
    /// The split's [`split_no`].
    pub out_order_no: String,
    /// [`return_no`] of the order: retried with the same number.
    pub out_return_no: String,
    /// The receiver it comes back from (WeChat: a merchant receiver's `mchid`).
    pub from: Receiver,
    pub amount: Fen,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReturnState {
    Processing,
    Success,
    /// ACCOUNT_ABNORMAL, BALANCE_NOT_ENOUGH, TIME_OUT_CLOSED …
    Failed {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnAnswer {
    pub out_return_no: String,
    pub return_id: Option<String>,
    pub amount: Fen,
    pub state: ReturnState,
}

/// A settlement product's API. Every call is idempotent at the provider by its number.
#[async_trait]
pub trait Settlement: Send + Sync {
    /// Registers a receiver with the merchant (re-adding one is no error).
    async fn add_receiver(&self, receiver: &Receiver) -> Result<(), GatewayError>;
    /// Removes it (an unknown receiver is no error).
    async fn delete_receiver(&self, receiver: &Receiver) -> Result<(), GatewayError>;
    async fn split(&self, split: &SplitRequest) -> Result<SplitAnswer, GatewayError>;
    /// A split's (or an unfreeze's) state; `Ok(None)`: the provider knows no such number.
    async fn query_split(
        &self,
        transaction_id: &str,
        out_order_no: &str,
    ) -> Result<Option<SplitAnswer>, GatewayError>;
    async fn unfreeze(&self, unfreeze: &UnfreezeRequest) -> Result<SplitAnswer, GatewayError>;
    async fn return_share(&self, ret: &ReturnRequest) -> Result<ReturnAnswer, GatewayError>;
    async fn query_return(
        &self,
        out_order_no: &str,
        out_return_no: &str,
    ) -> Result<Option<ReturnAnswer>, GatewayError>;
    /// What of the payment is still frozen and may be split (WeChat `unsplit_amount`).
    async fn remaining(&self, transaction_id: &str) -> Result<Fen, GatewayError>;
    /// The provider's bill of the successful splits of `date` (`yyyy-MM-dd`, Beijing time:
    /// WeChat `GET /v3/profitsharing/bills`, ready after 10:00 the next day); `Ok(None)`: this
    /// product has no such bill — the reconciliation queries each split instead.
    async fn split_bill(&self, date: &str) -> Result<Option<Vec<BillLine>>, GatewayError> {
        let _ = date;
        Ok(None)
    }
}

/// One line of a split bill: a receiver's successful share of one split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillLine {
    /// The split's number (ours: [`split_no`] …).
    pub out_order_no: String,
    pub account: String,
    pub amount: Fen,
}

/// A provider's amount in fen: not negative.
pub(crate) fn fen(amount: i64) -> Option<Fen> {
    (amount >= 0).then(|| Fen::from_fen(amount))
}

pub(crate) fn refused(code: &str, message: &str) -> GatewayError {
    GatewayError::Refused {
        code: code.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_derived_from_the_order_and_fit_both_providers() {
        let order_no = "o01JDXK7Q4E8M2V6T9N3B5C7DZ";
        for n in [
            split_no(order_no),
            unfreeze_no(order_no),
            return_no(order_no, 3),
            split_no_attempt(order_no, 99),
        ] {
            assert!(n.len() <= 32, "{n}");
            assert!(n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        }
        assert_eq!(split_no(order_no), split_no(order_no));
        assert_ne!(split_no(order_no), unfreeze_no(order_no));
        assert_eq!(split_no_attempt(order_no, 1), split_no(order_no));
        assert_ne!(split_no_attempt(order_no, 2), split_no(order_no));
        assert_ne!(split_no_attempt(order_no, 2), split_no_attempt(order_no, 3));
        let r = Receiver {
            kind: ReceiverKind::AlipayUserId,
            account: "2088101126765726".into(),
            name: None,
        };
        let no = relation_no(&r, true, "01JDXK7Q4E8M2V6T9N3B5C7DZA");
        assert_eq!(no.len(), 30);
        assert_eq!(no, relation_no(&r, true, "01JDXK7Q4E8M2V6T9N3B5C7DZA"));
        assert_ne!(no, relation_no(&r, false, "01JDXK7Q4E8M2V6T9N3B5C7DZA"));
        // A bind after an unbind is a new request with a new number.
        assert_ne!(no, relation_no(&r, true, "01JDXK7Q4E8M2V6T9N3B5C7DZB"));
    }

    #[test]
    fn the_mode_says_who_is_payee_and_what_is_split() {
        assert_eq!(SettleMode::Ordinary.split_out(), SplitOut::SellerShare);
        assert!(!SettleMode::Ordinary.seller_is_payee());
        assert_eq!(SettleMode::Platform.split_out(), SplitOut::Commission);
        assert_eq!(
            serde_json::to_value(SettleMode::Ordinary).unwrap(),
            "ordinary"
        );
        for k in [ReceiverKind::WechatOpenid, ReceiverKind::AlipayLoginName] {
            assert_eq!(ReceiverKind::parse(k.as_str()), Some(k));
        }
        assert!(ReceiverKind::WechatMerchant.returnable());
        assert!(!ReceiverKind::WechatOpenid.returnable());
    }
}
