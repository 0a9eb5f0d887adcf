//! Alipay royalty (商家分账, `settlement.md` §3) over the Alipay client's signed calls and
//! verified answers: `alipay.trade.royalty.relation.bind`/`unbind`, `alipay.trade.order.settle`
//! (synchronous: all-or-nothing, ≤ 5 receivers, its answer final), `alipay.trade.order.settle.query`,
//! `alipay.trade.order.onsettle.query`. Shapes follow alipay-sdk-java-all
//! (`AlipayTradeRoyaltyRelationBindModel`, `RoyaltyEntity`, `AlipayTradeOrderSettleModel`,
//! `OpenApiRoyaltyDetailInfoPojo`, `SettleExtendParams`, `RoyaltyDetail`).
//!
//! Alipay has no 回退 for 商家分账: a royalty is taken back by the refund itself
//! (`refund_royalty_parameters`), so `return_share` and `query_return` are refusals here.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    refused, relation_no, Receiver, ReceiverKind, ReturnAnswer, ReturnRequest, Settlement,
    ShareOutcome, ShareResult, SplitAnswer, SplitRequest, SplitState, UnfreezeRequest,
};
use crate::money::Fen;
use crate::payments::alipay::answer::Status;
use crate::payments::alipay::client::{refusal, succeeded};
use crate::payments::alipay::AlipayGateway;
use crate::payments::GatewayError;

/// Receivers in one synchronous settle.
pub const MAX_SYNC_RECEIVERS: usize = 5;
/// `desc` of a royalty line: Alipay's limit, in characters.
pub const MAX_DESC_CHARS: usize = 128;
/// Alipay's answer to a settle query of a number it does not know. Unconfirmed: no official
/// error table of `alipay.trade.order.settle.query` could be read; `ACQ.TRADE_NOT_EXIST` (交易不
/// 存在) is what an Alipay mock answers there (`AlipayReturnNo`/`querySettle` of a course
/// project that transcribes the royalty pages) and is the settle page's own code for an unknown
/// trade; `ACQ.TRADE_SETTLE_NOT_EXIST` no source names, kept so that either reads as "no such
/// settle" (then the split is asked again with the same number, which Alipay answers
/// idempotently).
const NOT_EXIST: &[&str] = &["ACQ.TRADE_NOT_EXIST", "ACQ.TRADE_SETTLE_NOT_EXIST"];
/// A settle answered with this may or may not have happened: "如果接口调用超时或者返回
/// ACQ.SYSTEM_ERROR ACQ.TRADE_SETTLE_ERROR 当前请求可能成功也可能失败。请使用相同的参数再次重试
/// 调用" (the notes of `alipay.trade.order.settle`, as mirrored at zhifubao.apifox.cn/api-126563053;
/// the code, 分账处理失败, is also in the page's older error table). So it is the provider being
/// unavailable, tried again with the same body — never the seller's account refused.
const SETTLE_UNCERTAIN: &str = "ACQ.TRADE_SETTLE_ERROR";

/// The adapter: the app's Alipay client, which signs and verifies.
pub struct AlipayRoyalty {
    client: Arc<AlipayGateway>,
}

impl AlipayRoyalty {
    pub fn new(client: Arc<AlipayGateway>) -> Self {
        AlipayRoyalty { client }
    }
}

fn alipay_kind(receiver: &Receiver) -> Result<&'static str, GatewayError> {
    match receiver.kind {
        ReceiverKind::AlipayUserId | ReceiverKind::AlipayOpenId | ReceiverKind::AlipayLoginName => {
            Ok(receiver.kind.as_str())
        }
        _ => Err(refused("RECEIVER", "not an Alipay receiver")),
    }
}

/// The `biz_content` of a bind or unbind.
pub fn relation_body(receiver: &Receiver, bind: bool) -> Result<Value, GatewayError> {
    let mut entity = json!({
        "type": alipay_kind(receiver)?,
        "account": receiver.account,
    });
    let name = receiver
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    match name {
        Some(name) => entity["name"] = json!(name),
        None if receiver.kind == ReceiverKind::AlipayLoginName => {
            return Err(refused(
                "PARAM_ERROR",
                "a loginName receiver needs its real name",
            ))
        }
        None => {}
    }
    Ok(json!({
        "out_request_no": relation_no(receiver, bind, &crate::ids::time_order()),
        "receiver_list": [entity],
    }))
}

/// The `biz_content` of a settle (synchronous).
pub fn settle_body(split: &SplitRequest) -> Result<Value, GatewayError> {
    if split.shares.is_empty() || split.shares.len() > MAX_SYNC_RECEIVERS {
        return Err(refused("PARAM_ERROR", "1 to 5 receivers per settle"));
    }
    let mut parameters = Vec::new();
    for share in &split.shares {
        if share.amount.get() <= 0 {
            return Err(refused("PARAM_ERROR", "a share must be positive"));
        }
        let mut line = json!({
            "royalty_type": "transfer",
            "trans_in_type": alipay_kind(&share.receiver)?,
            "trans_in": share.receiver.account,
            "amount": share.amount.to_yuan(),
            "desc": share.description.chars().take(MAX_DESC_CHARS).collect::<String>(),
        });
        if let Some(name) = share.receiver.name.as_deref().filter(|n| !n.is_empty()) {
            line["trans_in_name"] = json!(name);
        }
        parameters.push(line);
    }
    let mut body = json!({
        "out_request_no": split.out_order_no,
        "trade_no": split.transaction_id,
        "royalty_parameters": parameters,
    });
    if split.finish {
        body["extend_params"] = json!({"royalty_finish": "true"});
    }
    Ok(body)
}

#[derive(Deserialize)]
struct SettleAnswer {
    #[serde(default)]
    trade_no: String,
    #[serde(default)]
    settle_no: String,
}

#[derive(Deserialize)]
struct SettleQueryAnswer {
    #[serde(default)]
    out_request_no: String,
    #[serde(default)]
    settle_no: String,
    #[serde(default)]
    royalty_detail_list: Vec<RoyaltyDetail>,
}

#[derive(Deserialize)]
struct RoyaltyDetail {
    #[serde(default)]
    operation_type: String,
    #[serde(default)]
    state: String,
    /// A yuan string in the documentation, a number in some examples.
    #[serde(default)]
    amount: Value,
    #[serde(default)]
    trans_in: String,
    #[serde(default)]
    trans_in_type: String,
    #[serde(default)]
    detail_id: String,
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    error_desc: String,
}

fn yuan(value: &Value) -> Option<Fen> {
    match value {
        Value::String(s) => Fen::parse_yuan(s),
        // A number is read through its text, never through a float.
        Value::Number(n) => Fen::parse_yuan(&n.to_string()),
        _ => None,
    }
}

/// Reads a settle query's answer: the transfers (a `transfer_refund` or `replenish` line is not
/// a share of the split). All lines final → finished.
fn settle_query_answer(
    answer: SettleQueryAnswer,
    out_order_no: &str,
) -> Result<SplitAnswer, GatewayError> {
    let unreadable = |why: &str| GatewayError::Unavailable(format!("settle query answer: {why}"));
    if !answer.out_request_no.is_empty() && answer.out_request_no != out_order_no {
        return Err(unreadable("about another settle"));
    }
    let mut shares = Vec::new();
    for d in answer
        .royalty_detail_list
        .into_iter()
        .filter(|d| d.operation_type == "transfer")
    {
        let result = match d.state.as_str() {
            "SUCCESS" => ShareResult::Success,
            "PROCESSING" => ShareResult::Pending,
            "FAIL" => ShareResult::Closed {
                reason: match d.error_desc.is_empty() {
                    true => d.error_code,
                    false => format!("{} {}", d.error_code, d.error_desc),
                },
            },
            _ => return Err(unreadable("unknown state")),
        };
        shares.push(ShareOutcome {
            kind: ReceiverKind::parse(&d.trans_in_type),
            account: d.trans_in,
            amount: yuan(&d.amount).ok_or_else(|| unreadable("bad amount"))?,
            result,
            detail_id: Some(d.detail_id).filter(|d| !d.is_empty()),
        });
    }
    let state = match shares.iter().any(|s| s.result == ShareResult::Pending) {
        true => SplitState::Processing,
        false => SplitState::Finished,
    };
    Ok(SplitAnswer {
        out_order_no: out_order_no.to_owned(),
        order_id: Some(answer.settle_no).filter(|s| !s.is_empty()),
        state,
        shares,
    })
}

/// A settle's refusal. Confirmed there beside the generic ones (`ACQ.SYSTEM_ERROR`,
/// `ACQ.INVALID_PARAMETER`, `ACQ.TRADE_NOT_EXIST`, `ACQ.TRADE_STATUS_ERROR`): the same
/// `out_request_no` with other details is `ACQ.DISCORDANT_REPEAT_REQUEST` (the page's error
/// table); a receiver not bound (`ACQ.ROYALTY_RECEIVER_INVALID` 收入方不在分账关系内) and an
/// amount over what may be split (`ACQ.ALLOC_AMOUNT_VALIDATE_ERROR`) only by a mock's code list
/// and a production project's notes — the split job reads a code naming a RECEIVER as the
/// seller's account refused.
fn settle_refusal(status: &Status) -> GatewayError {
    if status.sub_code == SETTLE_UNCERTAIN {
        return GatewayError::Unavailable(format!(
            "Alipay settle uncertain ({SETTLE_UNCERTAIN}): retried with the same body"
        ));
    }
    refusal(status)
}

impl AlipayRoyalty {
    async fn settle(&self, body: Value, split: &SplitRequest) -> Result<SplitAnswer, GatewayError> {
        let (status, answer): (Status, SettleAnswer) =
            self.client.call("alipay.trade.order.settle", body).await?;
        if !succeeded(&status) {
            return Err(settle_refusal(&status));
        }
        if !answer.trade_no.is_empty() && answer.trade_no != split.transaction_id {
            return Err(GatewayError::Unavailable(
                "settle answer about another trade".into(),
            ));
        }
        // Synchronous: 10000 means every line was transferred.
        Ok(SplitAnswer {
            out_order_no: split.out_order_no.clone(),
            order_id: Some(answer.settle_no).filter(|s| !s.is_empty()),
            state: SplitState::Finished,
            shares: split
                .shares
                .iter()
                .map(|s| ShareOutcome {
                    kind: Some(s.receiver.kind),
                    account: s.receiver.account.clone(),
                    amount: s.amount,
                    result: ShareResult::Success,
                    detail_id: None,
                })
                .collect(),
        })
    }

    async fn relation(&self, receiver: &Receiver, bind: bool) -> Result<(), GatewayError> {
        let method = match bind {
            true => "alipay.trade.royalty.relation.bind",
            false => "alipay.trade.royalty.relation.unbind",
        };
        let (status, _): (Status, Value) = self
            .client
            .call(method, relation_body(receiver, bind)?)
            .await?;
        match succeeded(&status) {
            true => Ok(()),
            false => Err(refusal(&status)),
        }
    }
}

#[async_trait]
impl Settlement for AlipayRoyalty {
    async fn add_receiver(&self, receiver: &Receiver) -> Result<(), GatewayError> {
        self.relation(receiver, true).await
    }

    async fn delete_receiver(&self, receiver: &Receiver) -> Result<(), GatewayError> {
        self.relation(receiver, false).await
    }

    async fn split(&self, split: &SplitRequest) -> Result<SplitAnswer, GatewayError> {
        self.settle(settle_body(split)?, split).await
    }

    async fn query_split(
        &self,
        transaction_id: &str,
        out_order_no: &str,
    ) -> Result<Option<SplitAnswer>, GatewayError> {
        let body = json!({"out_request_no": out_order_no, "trade_no": transaction_id});
        let (status, answer): (Status, SettleQueryAnswer) = self
            .client
            .call("alipay.trade.order.settle.query", body)
            .await?;
        if !succeeded(&status) {
            if NOT_EXIST.contains(&status.sub_code.as_str()) {
                return Ok(None);
            }
            return Err(refusal(&status));
        }
        settle_query_answer(answer, out_order_no).map(Some)
    }

    /// A settle with no royalty line and `royalty_finish`: the rest unfreezes to Renji.
    async fn unfreeze(&self, unfreeze: &UnfreezeRequest) -> Result<SplitAnswer, GatewayError> {
        let body = json!({
            "out_request_no": unfreeze.out_order_no,
            "trade_no": unfreeze.transaction_id,
            "extend_params": {"royalty_finish": "true"},
        });
        let split = SplitRequest {
            order_no: unfreeze.order_no.clone(),
            transaction_id: unfreeze.transaction_id.clone(),
            out_order_no: unfreeze.out_order_no.clone(),
            shares: Vec::new(),
            finish: true,
        };
        self.settle(body, &split).await
    }

    async fn return_share(&self, _ret: &ReturnRequest) -> Result<ReturnAnswer, GatewayError> {
        Err(refused(
            "UNSUPPORTED",
            "Alipay takes a royalty back with the refund (refund_royalty_parameters)",
        ))
    }

    async fn query_return(
        &self,
        _out_order_no: &str,
        _out_return_no: &str,
    ) -> Result<Option<ReturnAnswer>, GatewayError> {
        Err(refused(
            "UNSUPPORTED",
            "Alipay takes a royalty back with the refund (refund_royalty_parameters)",
        ))
    }

    async fn remaining(&self, transaction_id: &str) -> Result<Fen, GatewayError> {
        #[derive(Deserialize)]
        struct Onsettle {
            #[serde(default)]
            unsettled_amount: String,
        }
        let (status, answer): (Status, Onsettle) = self
            .client
            .call(
                "alipay.trade.order.onsettle.query",
                json!({"trade_no": transaction_id}),
            )
            .await?;
        if !succeeded(&status) {
            return Err(refusal(&status));
        }
        Fen::parse_yuan(&answer.unsettled_amount)
            .ok_or_else(|| GatewayError::Unavailable("bad unsettled_amount".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settlement::{split_no, Share};

    fn receiver() -> Receiver {
        Receiver {
            kind: ReceiverKind::AlipayUserId,
            account: "2088101126708402".into(),
            name: Some("张三".into()),
        }
    }

    #[test]
    fn binds_name_the_receiver_and_a_number_of_its_own() {
        let body = relation_body(&receiver(), true).unwrap();
        assert_eq!(body["receiver_list"][0]["type"], "userId");
        assert_eq!(body["receiver_list"][0]["account"], "2088101126708402");
        assert_eq!(body["receiver_list"][0]["name"], "张三");
        let no = body["out_request_no"].as_str().unwrap();
        assert!(no.len() <= 32 && no.bytes().all(|b| b.is_ascii_alphanumeric()));
        let login = Receiver {
            kind: ReceiverKind::AlipayLoginName,
            account: "seller@example.com".into(),
            name: None,
        };
        assert!(relation_body(&login, true).is_err());
        let wechat = Receiver {
            kind: ReceiverKind::WechatOpenid,
            ..receiver()
        };
        assert!(relation_body(&wechat, true).is_err());
    }

    #[test]
    fn a_settle_sends_yuan_strings_and_finishes_when_asked() {
        let split = SplitRequest {
            order_no: "o1".into(),
            transaction_id: "2026112922001".into(),
            out_order_no: split_no("o1"),
            shares: vec![Share {
                receiver: receiver(),
                amount: Fen::from_fen(8_801),
                description: "人集 订单 o1".into(),
            }],
            finish: true,
        };
        let body = settle_body(&split).unwrap();
        assert_eq!(
            body,
            json!({
                "out_request_no": "PSo1",
                "trade_no": "2026112922001",
                "royalty_parameters": [{
                    "royalty_type": "transfer",
                    "trans_in_type": "userId",
                    "trans_in": "2088101126708402",
                    "trans_in_name": "张三",
                    "amount": "88.01",
                    "desc": "人集 订单 o1",
                }],
                "extend_params": {"royalty_finish": "true"},
            })
        );
        let mut six = split.clone();
        six.shares = vec![split.shares[0].clone(); 6];
        assert!(settle_body(&six).is_err());
        let mut zero = split.clone();
        zero.shares[0].amount = Fen::from_fen(0);
        assert!(settle_body(&zero).is_err());
    }

    #[test]
    fn settle_query_answers_are_read_as_documented() {
        // The documented example (alipay.trade.order.settle.query), with a failed line added.
        let answer: SettleQueryAnswer = serde_json::from_value(json!({
            "code": "10000",
            "msg": "Success",
            "out_request_no": "PSo1",
            "operation_dt": "2023-06-01 10:00:00",
            "royalty_detail_list": [
                {"amount": "10.00", "detail_id": "2023060122001462650500142964",
                 "operation_type": "transfer", "state": "SUCCESS", "trans_in": "208872****140864",
                 "trans_in_type": "userId"},
                {"amount": 10, "operation_type": "transfer", "state": "FAIL",
                 "trans_in": "2088111111112222", "error_code": "TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH",
                 "error_desc": "分账余额不足"},
                {"amount": "1.00", "operation_type": "transfer_refund", "state": "SUCCESS",
                 "trans_in": "2088111111112222"}
            ],
            "settle_no": "20230601002530020065620300064709"
        }))
        .unwrap();
        let read = settle_query_answer(answer, "PSo1").unwrap();
        assert_eq!(read.state, SplitState::Finished);
        assert_eq!(read.shares.len(), 2);
        assert_eq!(read.shares[0].amount, Fen::from_fen(1000));
        assert_eq!(read.shares[0].result, ShareResult::Success);
        assert_eq!(read.shares[1].amount, Fen::from_fen(1000));
        assert!(
            matches!(&read.shares[1].result, ShareResult::Closed { reason } if reason.contains("BALANCE_NOT_ENOUGH"))
        );
        assert_eq!(
            read.order_id.as_deref(),
            Some("20230601002530020065620300064709")
        );

        let processing: SettleQueryAnswer = serde_json::from_value(json!({
            "out_request_no": "PSo1",
            "royalty_detail_list": [{"amount": "1.00", "operation_type": "transfer",
                                     "state": "PROCESSING", "trans_in": "2088"}]
        }))
        .unwrap();
        assert_eq!(
            settle_query_answer(processing, "PSo1").unwrap().state,
            SplitState::Processing
        );
        let other: SettleQueryAnswer =
            serde_json::from_value(json!({"out_request_no": "PSo2"})).unwrap();
        assert!(settle_query_answer(other, "PSo1").is_err());
    }
}

/// The adapter against an in-test Alipay: our requests' signatures checked by the `rsa` crate,
/// Alipay's answers signed by it.
#[cfg(test)]
mod against_a_stand_in {
    use super::*;
    use crate::payments::alipay::tests::{
        alipay_key, answer, biz, check_common, gateway, request_fields, serve,
    };
    use crate::settlement::{split_no, unfreeze_no, Share};

    fn adapter(url: &str) -> AlipayRoyalty {
        AlipayRoyalty::new(Arc::new(gateway(url)))
    }

    fn seller() -> Receiver {
        Receiver {
            kind: ReceiverKind::AlipayUserId,
            account: "2088101126708402".into(),
            name: Some("张三".into()),
        }
    }

    fn split() -> SplitRequest {
        SplitRequest {
            order_no: "o01JDXK7Q4E8M2V6T9N3B5C".into(),
            transaction_id: "2026112922001400000000000001".into(),
            out_order_no: split_no("o01JDXK7Q4E8M2V6T9N3B5C"),
            shares: vec![Share {
                receiver: seller(),
                amount: Fen::from_fen(8_800),
                description: "卖家所得".into(),
            }],
            finish: true,
        }
    }

    #[tokio::test]
    async fn bind_settle_query_and_remaining_are_signed_calls_with_signed_answers() {
        let bind = "alipay.trade.royalty.relation.bind";
        let settle = "alipay.trade.order.settle";
        let query = "alipay.trade.order.settle.query";
        let onsettle = "alipay.trade.order.onsettle.query";
        let (url, seen) = serve(vec![
            answer(bind, r#"{"code":"10000","msg":"Success","result_code":"SUCCESS"}"#, alipay_key()),
            answer(settle, r#"{"code":"10000","msg":"Success","trade_no":"2026112922001400000000000001","settle_no":"20230601002530020065620300064709"}"#, alipay_key()),
            answer(settle, r#"{"code":"10000","msg":"Success","trade_no":"2026112922001400000000000001","settle_no":"20230601002530020065620300064709"}"#, alipay_key()),
            answer(query, r#"{"code":"10000","msg":"Success","out_request_no":"PSo01JDXK7Q4E8M2V6T9N3B5C","royalty_detail_list":[{"amount":"88.00","operation_type":"transfer","state":"SUCCESS","trans_in":"2088101126708402","trans_in_type":"userId","detail_id":"2023060122001462650500142964"}],"settle_no":"20230601002530020065620300064709"}"#, alipay_key()),
            answer(onsettle, r#"{"code":"10000","msg":"Success","unsettled_amount":"12.00"}"#, alipay_key()),
            answer(query, r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#, alipay_key()),
            answer(query, r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_SETTLE_NOT_EXIST","sub_msg":"分账单据不存在"}"#, alipay_key()),
            answer(query, r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.INVALID_PARAMETER","sub_msg":"参数无效"}"#, alipay_key()),
        ])
        .await;
        let royalty = adapter(&url);
        royalty.add_receiver(&seller()).await.unwrap();
        let done = royalty.split(&split()).await.unwrap();
        assert_eq!(done.state, SplitState::Finished);
        assert_eq!(done.shares[0].result, ShareResult::Success);
        // A retry: the same number and the identical biz_content.
        assert_eq!(royalty.split(&split()).await.unwrap(), done);
        let queried = royalty
            .query_split(&split().transaction_id, &split().out_order_no)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(queried.shares[0].amount, Fen::from_fen(8_800));
        assert_eq!(
            royalty.remaining(&split().transaction_id).await.unwrap(),
            Fen::from_fen(1_200)
        );
        // A settle Alipay does not know, by either code: none.
        for _ in 0..2 {
            assert_eq!(
                royalty
                    .query_split(&split().transaction_id, "PSunknown")
                    .await
                    .unwrap(),
                None
            );
        }
        // Another refusal is one.
        assert!(matches!(
            royalty.query_split(&split().transaction_id, "PSunknown").await,
            Err(GatewayError::Refused { code, .. }) if code == "ACQ.INVALID_PARAMETER"
        ));
        let seen = seen.lock().unwrap().clone();
        let fields: Vec<_> = seen.iter().map(|b| request_fields(b)).collect();
        check_common(&fields[0], bind);
        assert_eq!(
            biz(&fields[0])["receiver_list"][0]["account"],
            "2088101126708402"
        );
        check_common(&fields[1], settle);
        assert_eq!(biz(&fields[1]), settle_body(&split()).unwrap());
        assert_eq!(
            fields[1]["biz_content"], fields[2]["biz_content"],
            "a retry is the identical request"
        );
        check_common(&fields[3], query);
        assert_eq!(
            biz(&fields[3]),
            json!({"out_request_no": "PSo01JDXK7Q4E8M2V6T9N3B5C",
                   "trade_no": "2026112922001400000000000001"})
        );
        check_common(&fields[4], onsettle);
        assert_eq!(
            biz(&fields[4]),
            json!({"trade_no": "2026112922001400000000000001"})
        );
    }

    #[tokio::test]
    async fn refusals_unfreezing_and_no_return() {
        let settle = "alipay.trade.order.settle";
        let (url, seen) = serve(vec![
            answer(settle, r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.ALLOC_AMOUNT_VALIDATE_ERROR","sub_msg":"分账金额超过最大可分账金额"}"#, alipay_key()),
            answer(settle, r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_SETTLE_ERROR","sub_msg":"分账处理失败"}"#, alipay_key()),
            answer(settle, r#"{"code":"10000","msg":"Success","trade_no":"2026112922001400000000000001","settle_no":"2023"}"#, alipay_key()),
        ])
        .await;
        let royalty = adapter(&url);
        let err = royalty.split(&split()).await.unwrap_err();
        assert!(
            matches!(&err, GatewayError::Refused { code, .. } if code == "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR"),
            "{err}"
        );
        // "May have happened, may not": asked again with the same body, not refused.
        let err = royalty.split(&split()).await.unwrap_err();
        assert!(
            matches!(&err, GatewayError::Unavailable(m) if m.contains("ACQ.TRADE_SETTLE_ERROR")),
            "{err}"
        );
        let unfrozen = royalty
            .unfreeze(&UnfreezeRequest {
                order_no: "o1".into(),
                transaction_id: "2026112922001400000000000001".into(),
                out_order_no: unfreeze_no("o1"),
                description: "分账完结".into(),
            })
            .await
            .unwrap();
        assert_eq!(unfrozen.state, SplitState::Finished);
        let body = seen.lock().unwrap()[2].clone();
        assert_eq!(
            biz(&request_fields(&body)),
            json!({"out_request_no": "PUo1", "trade_no": "2026112922001400000000000001",
                   "extend_params": {"royalty_finish": "true"}})
        );
        let ret = ReturnRequest {
            out_order_no: "PSo1".into(),
            out_return_no: "PRo11".into(),
            from: seller(),
            amount: Fen::from_fen(1),
            description: String::new(),
        };
        assert!(royalty.return_share(&ret).await.is_err());
        // An answer Alipay did not sign is not believed.
        let (url, _) = serve(vec![answer(
            settle,
            r#"{"code":"10000","msg":"Success","trade_no":"2026112922001400000000000001"}"#,
            crate::payments::rsa::tests::test_key(),
        )])
        .await;
        assert!(matches!(
            adapter(&url).split(&split()).await,
            Err(GatewayError::Unavailable(_))
        ));
    }
}
