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
    refused, BillLine, Receiver, ReceiverKind, ReturnAnswer, ReturnRequest, ReturnState,
    Settlement, ShareOutcome, ShareResult, SplitAnswer, SplitRequest, SplitState, UnfreezeRequest,
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
        let name = receiver
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
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
        let answer = self
            .gateway
            .call(Method::POST, path, None, Some(body))
            .await?;
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        answer.json()
    }

    /// A GET of one record: `None` when WeChat Pay answers, signed, that it does not exist.
    async fn get_found(
        &self,
        path: &[&str],
        query: (&str, &str),
    ) -> Result<Option<Value>, GatewayError> {
        let answer = self
            .gateway
            .call(Method::GET, path, Some(query), None)
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
        answer.json().map(Some)
    }
}

/// A profit-sharing bill (`GET /v3/profitsharing/bills`, then the file), as WeChat Pay's page
/// for it describes the file (https://pay.weixin.qq.com/doc/v3/merchant/4012529628, "申请分账
/// 账单", and its older copy wiki/doc/apiv3/apis/chapter8_1_11.shtml): CSV, a detail section
/// and a totals section, each a header line and data lines; every datum written behind a
/// backtick (fixed for all data since 2025-01-15); amounts in yuan; only successful splits; **each
/// detail line one split or one return** (回退).
///
/// The page names no columns. Those read here (商户分账/回退单号, 分账接收方, 金额, 业务类型) are
/// the domestic bill's as a third-party parser of real bills reads them (13 columns: 分账时间,
/// 分账发起方, 分账方, 微信订单号, 微信分账/回退单号, 分账明细单号, 商户分账/回退单号, 订单金额,
/// 分账接收方, 金额, 业务类型, 处理状态, 备注 — `AWechatShareBill`, found with find_string),
/// matching the cross-border bill's documented header (pay.weixin.qq.com/wiki/doc/api_external/
/// ch/apis/chapter4_1_9.shtml: …, order_id, out_order_no, detail_id, receiver_account, amount, …,
/// business_type, status, description). **Unconfirmed** by an official domestic source: the
/// columns are found by name (not position), the names before that reading (商户分账单号,
/// 分账金额) still accepted, and the values of 业务类型 are not known — a line whose type says
/// 回退 (a return) or 解冻 (an unfreeze to Renji itself) is not a split and is left out.
///
/// The detail section ends at the first line that is not data (no leading backtick: the totals'
/// header) or begins with 总.
pub fn parse_bill(text: &str) -> Result<Vec<BillLine>, GatewayError> {
    let bad = |why: &str| GatewayError::Unavailable(format!("unreadable bill: {why}"));
    let field = |f: &str| f.trim().trim_start_matches('`').trim().to_owned();
    let mut lines = text
        .lines()
        .map(|l| l.trim_start_matches('\u{feff}'))
        .filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| bad("empty"))?
        .split(',')
        .map(field)
        .collect();
    // The first of `names` the header has, exactly or (`分账金额(元)`) as a prefix.
    let column = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| {
                header
                    .iter()
                    .position(|h| h == name)
                    .or_else(|| header.iter().position(|h| h.starts_with(name)))
            })
            .ok_or_else(|| bad(names[0]))
    };
    let no = column(&["商户分账/回退单号", "商户分账单号"])?;
    let account = column(&["分账接收方"])?;
    let amount = column(&["金额", "分账金额"])?;
    let business = header.iter().position(|h| h == "业务类型");
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim_start();
        if line.starts_with('总') || !line.starts_with('`') {
            break;
        }
        let fields: Vec<String> = line.split(',').map(field).collect();
        let get = |i: usize| fields.get(i).cloned().ok_or_else(|| bad("a short line"));
        if let Some(i) = business {
            let kind = get(i)?;
            if kind.contains("回退") || kind.contains("解冻") {
                continue;
            }
        }
        out.push(BillLine {
            out_order_no: get(no)?,
            account: get(account)?,
            amount: Fen::parse_yuan(&get(amount)?).ok_or_else(|| bad("an amount"))?,
        });
    }
    Ok(out)
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
        let path = ["v3", "profitsharing", "orders", out_order_no];
        match self
            .get_found(&path, ("transaction_id", transaction_id))
            .await?
        {
            Some(answer) => split_answer(&answer, transaction_id, out_order_no).map(Some),
            None => Ok(None),
        }
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
        let path = ["v3", "profitsharing", "return-orders", out_return_no];
        match self
            .get_found(&path, ("out_order_no", out_order_no))
            .await?
        {
            Some(answer) => return_answer(&answer, out_return_no).map(Some),
            None => Ok(None),
        }
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

    async fn split_bill(&self, date: &str) -> Result<Option<Vec<BillLine>>, GatewayError> {
        // The download and its hash check are the gateway's (shared with the trade bill).
        let Some(file) = self
            .gateway
            .bill_file(&["v3", "profitsharing", "bills"], &[("bill_date", date)])
            .await?
        else {
            // NO_STATEMENT_EXIST: no split that day.
            return Ok(Some(Vec::new()));
        };
        let text = String::from_utf8(file)
            .map_err(|_| GatewayError::Unavailable("a bill that is not UTF-8".into()))?;
        parse_bill(&text).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn a_bill_is_read_by_its_header_backticks_and_totals_aside() {
        // The columns of the domestic bill as a parser of real bills reads them; a return line
        // and an unfreeze line are not splits.
        let bill = "分账时间,分账发起方,分账方,微信订单号,微信分账/回退单号,分账明细单号,商户分账/回退单号,订单金额,分账接收方,金额,业务类型,处理状态,备注\n\
`2026-11-28 10:00:00,`1230000109,`1230000109,`4208450740201411110007820472,`3008450740201411110007820472,`36011111111111111111111,`PSo1,`2880.00,`oSeller,`2592.00,`分账,`成功,`服务款\n\
`2026-11-28 10:30:00,`1230000109,`1230000109,`4208450740201411110007820473,`3008450740201411110007820474,`36011111111111111111112,`PRo1x1,`10.00,`1900000109,`0.03,`分账回退,`成功,`退款\n\
`2026-11-28 11:00:00,`1230000109,`1230000109,`4208450740201411110007820473,`3008450740201411110007820473,`36011111111111111111113,`PSo2,`10.00,`1900000109,`0.07,`分账,`成功,`服务款\n\
`2026-11-28 11:00:01,`1230000109,`1230000109,`4208450740201411110007820473,`3008450740201411110007820475,`36011111111111111111114,`PUo2,`10.00,`1230000109,`9.93,`解冻给分账方,`成功,`解冻\n\
总笔数,总金额\n`4,`2602.03\n";
        let lines = parse_bill(bill).unwrap();
        assert_eq!(
            lines,
            vec![
                BillLine {
                    out_order_no: "PSo1".into(),
                    account: "oSeller".into(),
                    amount: Fen::from_fen(259_200),
                },
                BillLine {
                    out_order_no: "PSo2".into(),
                    account: "1900000109".into(),
                    amount: Fen::from_fen(7),
                },
            ]
        );
        // The totals' header need not begin with 总: it is not data (no backtick).
        let other_totals = bill.replace("总笔数,总金额", "分账笔数,分账总金额");
        assert_eq!(parse_bill(&other_totals).unwrap(), lines);
        // The columns as named before (no 业务类型): still read.
        let older = "商户分账单号,分账接收方,分账金额(元)\n`PSo1,`oSeller,`2592.00\n";
        assert_eq!(parse_bill(older).unwrap(), lines[..1]);
        assert!(parse_bill("").is_err());
        assert!(parse_bill("a,b\n`1,`2\n").is_err());
        assert!(parse_bill("商户分账/回退单号,分账接收方,金额\n`PS1,`o,`x\n").is_err());
        assert!(parse_bill("商户分账/回退单号,分账接收方,金额\n`PS1,`o\n").is_err());
        assert_eq!(
            parse_bill("商户分账/回退单号,分账接收方,金额\n总条数\n`0\n").unwrap(),
            vec![]
        );
    }

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    use serde_json::json;

    use super::*;
    use crate::payments::rsa::tests::{pkcs8_pem, test_key};
    use crate::payments::wechatpay::tests::{
        check_authorization, gateway, signed, stand_in, Received, APPID, PUB_KEY_ID,
    };
    use crate::settlement::{return_no, split_no, unfreeze_no, Share};

    const TRANSACTION: &str = "4208450740201411110007820472";

    fn adapter(url: &str) -> WechatProfitSharing {
        WechatProfitSharing::new(Arc::new(gateway(url)))
    }

    fn seller() -> Receiver {
        Receiver {
            kind: ReceiverKind::WechatOpenid,
            account: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
            name: Some("张三".into()),
        }
    }

    fn split_request(finish: bool) -> SplitRequest {
        SplitRequest {
            order_no: "o01JDXK7Q4E8M2V6T9N3B5C".into(),
            transaction_id: TRANSACTION.into(),
            out_order_no: split_no("o01JDXK7Q4E8M2V6T9N3B5C"),
            shares: vec![Share {
                receiver: seller(),
                amount: Fen::from_fen(8_800),
                description: "人集订单 o01JDXK7Q4E8M2V6T9N3B5C 卖家所得".into(),
            }],
            finish,
        }
    }

    /// The documented `OrdersEntity` example (wechatpay-go `docs/profitsharing/OrdersEntity.md`,
    /// the API page's answer), for the split the tests ask.
    fn orders_entity(state: &str, result: &str) -> Value {
        json!({
            "transaction_id": TRANSACTION,
            "out_order_no": split_no("o01JDXK7Q4E8M2V6T9N3B5C"),
            "order_id": "3008450740201411110007820472",
            "state": state,
            "receivers": [{
                "amount": 8800,
                "description": "人集订单 o01JDXK7Q4E8M2V6T9N3B5C 卖家所得",
                "type": "PERSONAL_OPENID",
                "account": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                "result": result,
                "fail_reason": "ACCOUNT_ABNORMAL",
                "detail_id": "36011111111111111111111",
                "create_time": "2015-05-20T13:29:35.120+08:00",
                "finish_time": "2015-05-20T13:29:35.120+08:00"
            }]
        })
    }

    /// RSAES-OAEP (SHA-1) decryption written here from RFC 8017 §7.1.2, over the `rsa` crate's
    /// private key arithmetic: not the code that encrypted.
    fn oaep_sha1_decrypt(sealed: &[u8]) -> Vec<u8> {
        let key = test_key();
        let k = key.size();
        assert_eq!(sealed.len(), k, "the ciphertext is as long as the modulus");
        let m = rsa::BigUint::from_bytes_be(sealed).modpow(key.d(), key.n());
        let mut em = m.to_bytes_be();
        while em.len() < k {
            em.insert(0, 0);
        }
        let h = |data: &[u8]| {
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
                .as_ref()
                .to_vec()
        };
        let mgf = |seed: &[u8], len: usize| {
            let mut out = Vec::new();
            for c in 0u32.. {
                if out.len() >= len {
                    break;
                }
                out.extend(h(&[seed, &c.to_be_bytes()].concat()));
            }
            out.truncate(len);
            out
        };
        assert_eq!(em[0], 0);
        let (masked_seed, masked_db) = em[1..].split_at(20);
        let seed: Vec<u8> = masked_seed
            .iter()
            .zip(mgf(masked_db, 20))
            .map(|(a, b)| a ^ b)
            .collect();
        let db: Vec<u8> = masked_db
            .iter()
            .zip(mgf(&seed, k - 21))
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            &db[..20],
            h(b"").as_slice(),
            "the label hash is SHA-1 of nothing"
        );
        let rest = &db[20..];
        let one = rest.iter().position(|b| *b != 0).unwrap();
        assert_eq!(rest[one], 1);
        rest[one + 1..].to_vec()
    }

    /// The same with OpenSSL's command line, where it is installed (a third implementation).
    fn openssl_decrypt(sealed: &[u8]) -> Option<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let input = dir.path().join("in.bin");
        std::fs::write(&key, pkcs8_pem(test_key())).unwrap();
        std::fs::write(&input, sealed).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["pkeyutl", "-decrypt", "-inkey"])
            .arg(&key)
            .arg("-in")
            .arg(&input)
            .args([
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                "rsa_oaep_md:sha1",
                "-pkeyopt",
                "rsa_mgf1_md:sha1",
            ])
            .output()
            .ok()?;
        assert!(out.status.success(), "openssl could not decrypt");
        Some(out.stdout)
    }

    fn body(received: &Received) -> Value {
        serde_json::from_str(&received.body).unwrap()
    }

    #[tokio::test]
    async fn a_receiver_is_added_signed_with_its_name_encrypted_for_the_serial_sent() {
        let (url, mut rx) = stand_in(signed(
            200,
            json!({"type": "PERSONAL_OPENID", "account": seller().account, "relation_type": "USER"}),
        ))
        .await;
        adapter(&url).add_receiver(&seller()).await.unwrap();
        let received = rx.recv().await.unwrap();
        assert_eq!(received.method, "POST");
        assert_eq!(received.target, "/v3/profitsharing/receivers/add");
        check_authorization(&received);
        assert_eq!(received.headers["wechatpay-serial"], PUB_KEY_ID);
        let sent = body(&received);
        assert_eq!(sent["appid"], APPID);
        assert_eq!(sent["type"], "PERSONAL_OPENID");
        assert_eq!(sent["account"], seller().account);
        assert_eq!(sent["relation_type"], "USER");
        let sealed = STANDARD.decode(sent["name"].as_str().unwrap()).unwrap();
        assert_eq!(oaep_sha1_decrypt(&sealed), "张三".as_bytes());
        if let Some(plain) = openssl_decrypt(&sealed) {
            assert_eq!(plain, "张三".as_bytes());
        }
        // Randomized: the same name encrypts differently each time.
        let (_, a) = adapter(&url).add_receiver_body(&seller()).unwrap();
        let (b, _) = adapter(&url).add_receiver_body(&seller()).unwrap();
        assert_eq!(a.as_deref(), Some(PUB_KEY_ID));
        assert_ne!(b["name"], sent["name"]);
    }

    #[tokio::test]
    async fn a_merchant_receiver_needs_its_name_and_deletes_send_none() {
        let merchant = Receiver {
            kind: ReceiverKind::WechatMerchant,
            account: "86693852".into(),
            name: None,
        };
        let (url, mut rx) = stand_in(signed(200, json!({}))).await;
        let err = adapter(&url).add_receiver(&merchant).await.unwrap_err();
        assert!(matches!(err, GatewayError::Refused { .. }));
        adapter(&url).delete_receiver(&merchant).await.unwrap();
        let received = rx.recv().await.unwrap();
        assert_eq!(received.target, "/v3/profitsharing/receivers/delete");
        check_authorization(&received);
        assert_eq!(
            body(&received),
            json!({"appid": APPID, "type": "MERCHANT_ID", "account": "86693852"})
        );
        let alipay = Receiver {
            kind: ReceiverKind::AlipayUserId,
            ..merchant
        };
        assert!(adapter(&url).delete_receiver(&alipay).await.is_err());
    }

    #[tokio::test]
    async fn a_split_is_sent_as_documented_and_a_retry_sends_the_identical_request() {
        let (url, mut rx) = stand_in(signed(200, orders_entity("PROCESSING", "PENDING"))).await;
        let wechat = adapter(&url);
        let first = wechat.split(&split_request(true)).await.unwrap();
        assert_eq!(first.state, SplitState::Processing);
        assert_eq!(first.shares[0].result, ShareResult::Pending);
        assert_eq!(first.shares[0].amount, Fen::from_fen(8_800));
        assert_eq!(
            first.order_id.as_deref(),
            Some("3008450740201411110007820472")
        );
        let again = wechat.split(&split_request(true)).await.unwrap();
        assert_eq!(again, first);
        let (a, b) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
        for r in [&a, &b] {
            assert_eq!(r.target, "/v3/profitsharing/orders");
            check_authorization(r);
        }
        assert_eq!(a.body, b.body, "a retry is the identical body");
        assert_eq!(
            body(&a),
            json!({
                "appid": APPID,
                "transaction_id": TRANSACTION,
                "out_order_no": "PSo01JDXK7Q4E8M2V6T9N3B5C",
                "receivers": [{
                    "type": "PERSONAL_OPENID",
                    "account": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                    "amount": 8800,
                    "description": "人集订单 o01JDXK7Q4E8M2V6T9N3B5C 卖家所得",
                }],
                "unfreeze_unsplit": true,
            })
        );
    }

    #[test]
    fn split_answers_are_read_as_documented() {
        let finished = split_answer(
            &orders_entity("FINISHED", "SUCCESS"),
            TRANSACTION,
            "PSo01JDXK7Q4E8M2V6T9N3B5C",
        )
        .unwrap();
        assert_eq!(finished.state, SplitState::Finished);
        assert_eq!(finished.shares[0].kind, Some(ReceiverKind::WechatOpenid));
        assert_eq!(
            finished.shares[0].detail_id.as_deref(),
            Some("36011111111111111111111")
        );
        let closed = split_answer(
            &orders_entity("FINISHED", "CLOSED"),
            TRANSACTION,
            "PSo01JDXK7Q4E8M2V6T9N3B5C",
        )
        .unwrap();
        assert_eq!(
            closed.shares[0].result,
            ShareResult::Closed {
                reason: "ACCOUNT_ABNORMAL".into()
            }
        );
        // Another split's or transaction's answer, an unknown state: not believed.
        let entity = orders_entity("FINISHED", "SUCCESS");
        assert!(split_answer(&entity, TRANSACTION, "PSother").is_err());
        assert!(split_answer(&entity, "4200other", "PSo01JDXK7Q4E8M2V6T9N3B5C").is_err());
        let mut odd = entity.clone();
        odd["state"] = json!("DONE");
        assert!(split_answer(&odd, TRANSACTION, "PSo01JDXK7Q4E8M2V6T9N3B5C").is_err());
        let mut negative = entity;
        negative["receivers"][0]["amount"] = json!(-1);
        assert!(split_answer(&negative, TRANSACTION, "PSo01JDXK7Q4E8M2V6T9N3B5C").is_err());
    }

    #[test]
    fn bad_splits_are_refused_before_any_call() {
        let wechat = adapter("http://127.0.0.1:1");
        let mut none = split_request(false);
        none.shares.clear();
        assert!(wechat.split_body(&none).is_err());
        let mut many = split_request(false);
        many.shares = vec![many.shares[0].clone(); 51];
        assert!(wechat.split_body(&many).is_err());
        let mut zero = split_request(false);
        zero.shares[0].amount = Fen::from_fen(0);
        assert!(wechat.split_body(&zero).is_err());
        let mut long = split_request(false);
        long.shares[0].description = "分".repeat(100);
        let body = wechat.split_body(&long).unwrap();
        assert_eq!(
            body["receivers"][0]["description"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            80
        );
        assert_eq!(body["unfreeze_unsplit"], false);
    }

    #[tokio::test]
    async fn queries_unfreezes_returns_and_the_remaining_amount() {
        let order_no = "o01JDXK7Q4E8M2V6T9N3B5C";
        // Query.
        let (url, mut rx) = stand_in(signed(200, orders_entity("FINISHED", "SUCCESS"))).await;
        let got = adapter(&url)
            .query_split(TRANSACTION, &split_no(order_no))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.state, SplitState::Finished);
        let r = rx.recv().await.unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.target,
            format!("/v3/profitsharing/orders/PS{order_no}?transaction_id={TRANSACTION}")
        );
        check_authorization(&r);
        // Unknown number, signed.
        let (url, _rx) = stand_in(signed(
            404,
            json!({"code": "RESOURCE_NOT_EXISTS", "message": "记录不存在"}),
        ))
        .await;
        assert_eq!(
            adapter(&url)
                .query_split(TRANSACTION, &split_no(order_no))
                .await
                .unwrap(),
            None
        );
        // Unfreeze: a new number, answered as an OrdersEntity.
        let mut entity = orders_entity("PROCESSING", "PENDING");
        entity["out_order_no"] = json!(unfreeze_no(order_no));
        let (url, mut rx) = stand_in(signed(200, entity)).await;
        let unfrozen = adapter(&url)
            .unfreeze(&UnfreezeRequest {
                order_no: order_no.into(),
                transaction_id: TRANSACTION.into(),
                out_order_no: unfreeze_no(order_no),
                description: "解冻全部剩余资金".into(),
            })
            .await
            .unwrap();
        assert_eq!(unfrozen.state, SplitState::Processing);
        let r = rx.recv().await.unwrap();
        assert_eq!(r.target, "/v3/profitsharing/orders/unfreeze");
        assert_eq!(
            body(&r),
            json!({"transaction_id": TRANSACTION, "out_order_no": format!("PU{order_no}"),
                   "description": "解冻全部剩余资金"})
        );
        // Return, from a merchant receiver (the documented ReturnOrdersEntity).
        let (url, mut rx) = stand_in(signed(
            200,
            json!({
                "order_id": "3008450740201411110007820472",
                "out_order_no": split_no(order_no),
                "out_return_no": return_no(order_no, 1),
                "return_id": "3008450740201411110007820472",
                "return_mchid": "86693852",
                "amount": 10,
                "description": "用户退款",
                "result": "FAILED",
                "fail_reason": "BALANCE_NOT_ENOUGH",
                "create_time": "2015-05-20T13:29:35.120+08:00",
                "finish_time": "2015-05-20T13:29:35.120+08:00"
            }),
        ))
        .await;
        let merchant = Receiver {
            kind: ReceiverKind::WechatMerchant,
            account: "86693852".into(),
            name: Some("示例商户全称".into()),
        };
        let ret = ReturnRequest {
            out_order_no: split_no(order_no),
            out_return_no: return_no(order_no, 1),
            from: merchant,
            amount: Fen::from_fen(10),
            description: "用户退款".into(),
        };
        let answer = adapter(&url).return_share(&ret).await.unwrap();
        assert_eq!(
            answer.state,
            ReturnState::Failed {
                reason: "BALANCE_NOT_ENOUGH".into()
            }
        );
        let r = rx.recv().await.unwrap();
        assert_eq!(r.target, "/v3/profitsharing/return-orders");
        check_authorization(&r);
        assert_eq!(body(&r)["return_mchid"], "86693852");
        assert_eq!(body(&r)["amount"], 10);
        let q = adapter(&url)
            .query_return(&split_no(order_no), &return_no(order_no, 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(q.amount, Fen::from_fen(10));
        let r = rx.recv().await.unwrap();
        assert_eq!(
            r.target,
            format!("/v3/profitsharing/return-orders/PR{order_no}1?out_order_no=PS{order_no}")
        );
        // A personal receiver cannot be returned from: refused without a call.
        let personal = ReturnRequest {
            from: seller(),
            ..ret
        };
        assert!(matches!(
            adapter("http://127.0.0.1:1").return_share(&personal).await,
            Err(GatewayError::Refused { .. })
        ));
        // Remaining.
        let (url, mut rx) = stand_in(signed(
            200,
            json!({"transaction_id": TRANSACTION, "unsplit_amount": 1000}),
        ))
        .await;
        assert_eq!(
            adapter(&url).remaining(TRANSACTION).await.unwrap(),
            Fen::from_fen(1000)
        );
        let r = rx.recv().await.unwrap();
        assert_eq!(
            r.target,
            format!("/v3/profitsharing/transactions/{TRANSACTION}/amounts")
        );
    }

    #[tokio::test]
    async fn provider_errors_are_refusals_or_unavailability() {
        let cases: HashMap<u16, (&str, bool)> = HashMap::from([
            (403, ("NOT_ENOUGH", true)),
            (400, ("INVALID_REQUEST", true)),
            (429, ("RATELIMIT_EXCEED", false)),
            (500, ("SYSTEM_ERROR", false)),
        ]);
        for (status, (code, refusal)) in cases {
            let (url, _rx) = stand_in(signed(status, json!({"code": code, "message": "x"}))).await;
            let err = adapter(&url).split(&split_request(true)).await.unwrap_err();
            assert_eq!(
                matches!(err, GatewayError::Refused { .. }),
                refusal,
                "{status} {code}: {err}"
            );
        }
    }
}
