//! WeChat Pay ordinary-merchant profit sharing (`/v3/profitsharing/*`, `settlement.md` §2) over
//! the payment gateway's signed calls: the same `Authorization`, the same answer verification,
//! the same `Wechatpay-Serial` — whose key also encrypts a receiver's `name` (RSAES-OAEP SHA-1).
//! Shapes follow wechatpay-go `services/profitsharing`.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    refused, Receiver, ReceiverKind, ReturnAnswer, ReturnRequest, ReturnState, Settlement,
    ShareOutcome, ShareResult, SplitAnswer, SplitRequest, SplitState, UnfreezeRequest,
};
use crate::money::Fen;
use crate::payments::wechatpay::sign::cut_chars;
use crate::payments::wechatpay::WechatPayGateway;
use crate::payments::GatewayError;

/// `description` of a split line, an unfreeze and a return: ≤ 80 characters.
pub const MAX_DESCRIPTION_CHARS: usize = 80;
/// Receivers in one split request.
pub const MAX_RECEIVERS: usize = 50;

/// The adapter: the merchant's payment gateway, which signs and verifies.
pub struct WechatProfitSharing {
    gateway: Arc<WechatPayGateway>,
}

impl WechatProfitSharing {
    pub fn new(gateway: Arc<WechatPayGateway>) -> Self {
        WechatProfitSharing { gateway }
    }

    /// The `receivers/add` body and the serial of the key its name is encrypted with.
    pub fn add_receiver_body(
        &self,
        receiver: &Receiver,
    ) -> Result<(Value, Option<String>), GatewayError> {
        let mut body = json!({
            "appid": self.gateway.appid(),
            "type": wechat_kind(receiver)?,
            "account": receiver.account,
            // Renji's sellers are its users: WeChat's relation type USER (用户).
            "relation_type": "USER",
        });
        let name = receiver.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if receiver.kind == ReceiverKind::WechatMerchant && name.is_none() {
            return Err(refused(
                "PARAM_ERROR",
                "a MERCHANT_ID receiver needs its full name",
            ));
        }
        let mut serial = None;
        if let Some(name) = name {
            let (s, sealed) = self.gateway.encrypt_sensitive(name)?;
            body["name"] = json!(sealed);
            serial = Some(s);
        }
        Ok((body, serial))
    }

    /// The `orders` body of a split.
    pub fn split_body(&self, split: &SplitRequest) -> Result<Value, GatewayError> {
        if split.shares.is_empty() || split.shares.len() > MAX_RECEIVERS {
            return Err(refused("PARAM_ERROR", "1 to 50 receivers per split"));
        }
        let mut receivers = Vec::new();
        for share in &split.shares {
            if share.amount.get() <= 0 {
                return Err(refused("PARAM_ERROR", "a share must be positive"));
            }
            // The name of a split line is optional; it is not sent (no encryption needed).
            receivers.push(json!({
                "type": wechat_kind(&share.receiver)?,
                "account": share.receiver.account,
                "amount": share.amount.get(),
                "description": cut_chars(&share.description, MAX_DESCRIPTION_CHARS),
            }));
        }
        Ok(json!({
            "appid": self.gateway.appid(),
            "transaction_id": split.transaction_id,
            "out_order_no": split.out_order_no,
            "receivers": receivers,
            "unfreeze_unsplit": split.finish,
        }))
    }

    async fn post(&self, path: &[&str], body: Value) -> Result<Value, GatewayError> {
        let answer = self.gateway.call(Method::POST, path, None, Some(body)).await?;
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        answer.json()
    }
}

fn wechat_kind(receiver: &Receiver) -> Result<&'static str, GatewayError> {
    match receiver.kind {
        ReceiverKind::WechatOpenid | ReceiverKind::WechatMerchant => Ok(receiver.kind.as_str()),
        _ => Err(refused("RECEIVER", "not a WeChat Pay receiver")),
    }
}

#[derive(Deserialize)]
struct OrderEntity {
    #[serde(default)]
    transaction_id: Option<String>,
    out_order_no: String,
    #[serde(default)]
    order_id: Option<String>,
    state: String,
    #[serde(default)]
    receivers: Vec<ReceiverDetail>,
}

#[derive(Deserialize)]
struct ReceiverDetail {
    amount: i64,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    account: String,
    result: String,
    #[serde(default)]
    fail_reason: Option<String>,
    #[serde(default)]
    detail_id: Option<String>,
}

/// Reads an `OrdersEntity` (split, query, unfreeze answers).
pub fn split_answer(
    body: &Value,
    transaction_id: &str,
    out_order_no: &str,
) -> Result<SplitAnswer, GatewayError> {
    let unreadable = |why: &str| GatewayError::Unavailable(format!("profit sharing answer: {why}"));
    let entity: OrderEntity =
        serde_json::from_value(body.clone()).map_err(|_| unreadable("unreadable"))?;
    if entity.out_order_no != out_order_no
        || entity
            .transaction_id
            .as_deref()
            .is_some_and(|t| t != transaction_id)
    {
        return Err(unreadable("about another split"));
    }
    let state = match entity.state.as_str() {
        "PROCESSING" => SplitState::Processing,
        "FINISHED" => SplitState::Finished,
        _ => return Err(unreadable("unknown state")),
    };
    let mut shares = Vec::new();
    for r in entity.receivers {
        let result = match r.result.as_str() {
            "PENDING" => ShareResult::Pending,
            "SUCCESS" => ShareResult::Success,
            "CLOSED" => ShareResult::Closed {
                reason: r.fail_reason.unwrap_or_default(),
            },
            _ => return Err(unreadable("unknown receiver result")),
        };
        shares.push(ShareOutcome {
            kind: r.kind.as_deref().and_then(ReceiverKind::parse),
            account: r.account,
            amount: super::fen(r.amount).ok_or_else(|| unreadable("bad amount"))?,
            result,
            detail_id: r.detail_id,
        });
    }
    Ok(SplitAnswer {
        out_order_no: entity.out_order_no,
        order_id: entity.order_id,
        state,
        shares,
    })
}

#[derive(Deserialize)]
struct ReturnEntity {
    out_return_no: String,
    #[serde(default)]
    return_id: Option<String>,
    amount: i64,
    result: String,
    #[serde(default)]
    fail_reason: Option<String>,
}

/// Reads a `ReturnOrdersEntity`.
pub fn return_answer(body: &Value, out_return_no: &str) -> Result<ReturnAnswer, GatewayError> {
    let unreadable = |why: &str| GatewayError::Unavailable(format!("return answer: {why}"));
    let entity: ReturnEntity =
        serde_json::from_value(body.clone()).map_err(|_| unreadable("unreadable"))?;
    if entity.out_return_no != out_return_no {
        return Err(unreadable("about another return"));
    }
    let state = match entity.result.as_str() {
        "PROCESSING" => ReturnState::Processing,
        "SUCCESS" => ReturnState::Success,
        "FAILED" => ReturnState::Failed {
            reason: entity.fail_reason.unwrap_or_default(),
        },
        _ => return Err(unreadable("unknown result")),
    };
    Ok(ReturnAnswer {
        out_return_no: entity.out_return_no,
        return_id: entity.return_id,
        amount: super::fen(entity.amount).ok_or_else(|| unreadable("bad amount"))?,
        state,
    })
}

#[async_trait]
impl Settlement for WechatProfitSharing {
    async fn add_receiver(&self, receiver: &Receiver) -> Result<(), GatewayError> {
        let (body, _serial) = self.add_receiver_body(receiver)?;
        // The gateway sends the serial of the key the name was encrypted with as
        // `Wechatpay-Serial` on every request.
        self.post(&["v3", "profitsharing", "receivers", "add"], body)
            .await
            .map(|_| ())
    }

    async fn delete_receiver(&self, receiver: &Receiver) -> Result<(), GatewayError> {
        let body = json!({
            "appid": self.gateway.appid(),
            "type": wechat_kind(receiver)?,
            "account": receiver.account,
        });
        self.post(&["v3", "profitsharing", "receivers", "delete"], body)
            .await
            .map(|_| ())
    }

    async fn split(&self, split: &SplitRequest) -> Result<SplitAnswer, GatewayError> {
        let body = self.split_body(split)?;
        let answer = self.post(&["v3", "profitsharing", "orders"], body).await?;
        split_answer(&answer, &split.transaction_id, &split.out_order_no)
    }

    async fn query_split(
        &self,
        transaction_id: &str,
        out_order_no: &str,
    ) -> Result<Option<SplitAnswer>, GatewayError> {
        let answer = self
            .gateway
            .call(
                Method::GET,
                &["v3", "profitsharing", "orders", out_order_no],
                Some(("transaction_id", transaction_id)),
                None,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND
            && answer.code().as_deref() == Some("RESOURCE_NOT_EXISTS")
            && answer.verified
        {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        split_answer(&answer.json()?, transaction_id, out_order_no).map(Some)
    }

    async fn unfreeze(&self, unfreeze: &UnfreezeRequest) -> Result<SplitAnswer, GatewayError> {
        let body = json!({
            "transaction_id": unfreeze.transaction_id,
            "out_order_no": unfreeze.out_order_no,
            "description": cut_chars(&unfreeze.description, MAX_DESCRIPTION_CHARS),
        });
        let answer = self
            .post(&["v3", "profitsharing", "orders", "unfreeze"], body)
            .await?;
        split_answer(&answer, &unfreeze.transaction_id, &unfreeze.out_order_no)
    }

    async fn return_share(&self, ret: &ReturnRequest) -> Result<ReturnAnswer, GatewayError> {
        if !ret.from.kind.returnable() {
            return Err(refused(
                "INVALID_REQUEST",
                "only a merchant receiver's share can be returned",
            ));
        }
        let body = json!({
            "out_order_no": ret.out_order_no,
            "out_return_no": ret.out_return_no,
            "return_mchid": ret.from.account,
            "amount": ret.amount.get(),
            "description": cut_chars(&ret.description, MAX_DESCRIPTION_CHARS),
        });
        let answer = self
            .post(&["v3", "profitsharing", "return-orders"], body)
            .await?;
        return_answer(&answer, &ret.out_return_no)
    }

    async fn query_return(
        &self,
        out_order_no: &str,
        out_return_no: &str,
    ) -> Result<Option<ReturnAnswer>, GatewayError> {
        let answer = self
            .gateway
            .call(
                Method::GET,
                &["v3", "profitsharing", "return-orders", out_return_no],
                Some(("out_order_no", out_order_no)),
                None,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND
            && answer.code().as_deref() == Some("RESOURCE_NOT_EXISTS")
            && answer.verified
        {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        return_answer(&answer.json()?, out_return_no).map(Some)
    }

    async fn remaining(&self, transaction_id: &str) -> Result<Fen, GatewayError> {
        let answer = self
            .gateway
            .call(
                Method::GET,
                &[
                    "v3",
                    "profitsharing",
                    "transactions",
                    transaction_id,
                    "amounts",
                ],
                None,
                None,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        #[derive(Deserialize)]
        struct Amounts {
            transaction_id: String,
            unsplit_amount: i64,
        }
        let amounts: Amounts = answer.json()?;
        if amounts.transaction_id != transaction_id {
            return Err(GatewayError::Unavailable(
                "amounts answer about another transaction".into(),
            ));
        }
        super::fen(amounts.unsplit_amount)
            .ok_or_else(|| GatewayError::Unavailable("bad unsplit_amount".into()))
    }
}
