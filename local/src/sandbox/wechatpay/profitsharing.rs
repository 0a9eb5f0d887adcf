//! WeChat Pay ordinary-merchant profit sharing, played by the stand-in (`settlement.md` §2, §5.13):
//!
//! - `POST /v3/profitsharing/receivers/add` needs `Wechatpay-Serial` = the stand-in's public key
//!   id and decrypts `name` (RSAES-OAEP SHA-1) with its private key; a MERCHANT_ID needs a name;
//!   a name containing `sandbox-mismatch` is refused (`PARAM_ERROR`, the name is not the
//!   account's), one containing `sandbox-outage` answers `SYSTEM_ERROR` (500).
//!   `…/receivers/delete`.
//! - `POST /v3/profitsharing/orders`: the trade must be paid with `settle_info.profit_sharing`,
//!   at least [`SPLIT_NOT_BEFORE`] ago ("too early / not settled": `INVALID_REQUEST 订单处理中`),
//!   the receivers' total within [`MAX_RATIO_BPS`] of the order and within what is unsplit; the
//!   same `out_order_no` with the same body answers the same split, with another body is
//!   `INVALID_REQUEST`. It answers PROCESSING/PENDING and finishes on the next query of it or on
//!   `POST /sandbox/profitsharing/tick`: each receiver SUCCESS, or CLOSED (`NO_RELATION` if never
//!   added, `ACCOUNT_ABNORMAL` if closed with `POST /sandbox/profitsharing/close-receiver
//!   {"type","account"}`) — a closed receiver's money stays with the merchant.
//! - `GET /v3/profitsharing/orders/{no}?transaction_id=`, `POST …/orders/unfreeze` (NOT_ENOUGH when
//!   nothing is left), `GET /v3/profitsharing/transactions/{id}/amounts` (`unsplit_amount`).
//! - `POST /v3/profitsharing/return-orders` (MERCHANT_ID receivers only, at most what it got:
//!   else FAILED BALANCE_NOT_ENOUGH), `GET …/return-orders/{no}?out_order_no=`.
//! - `GET /v3/profitsharing/bills?bill_date=` answers the download URL and SHA-1 of the day's bill
//!   (Beijing date): a CSV of every SUCCESS line of the splits that finished that day, in the
//!   domestic bill's columns (商户分账/回退单号, 分账接收方, 金额, 业务类型 …), amounts in yuan;
//!   `GET /v3/billdownload/file?token=` serves it, unsigned.
//! - A refund of a profit-sharing trade not yet finished may not exceed what is unsplit
//!   (`RULE_LIMIT`, in `refund`).

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{beijing, error, json_body, param_error, random_text, signed, State, Trade, DIGITS};
use crate::http_server::{self, HttpResponse};

/// The split ratio the stand-in's merchant was granted (万分比): high enough that the default
/// configuration's seller share fits (WeChat's default is 3000; ask for more).
pub const MAX_RATIO_BPS: i64 = 9000;
/// WeChat: no split within a minute of payment nor before the funds are settled. The stand-in
/// waits this long (a local flow should not wait a minute).
pub const SPLIT_NOT_BEFORE: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct Line {
    kind: String,
    account: String,
    amount: i64,
    description: String,
    result: &'static str,
    fail_reason: Option<&'static str>,
    detail_id: String,
}

#[derive(Clone)]
struct Split {
    request: Value,
    transaction_id: String,
    out_order_no: String,
    order_id: String,
    state: &'static str,
    lines: Vec<Line>,
    /// An unfreeze (no lines) or `unfreeze_unsplit`: the rest goes to the merchant when done.
    finishes: bool,
    /// When it finished (the day of its bill).
    finished_at: Option<OffsetDateTime>,
}

#[derive(Clone)]
struct Return {
    request: Value,
    out_order_no: String,
    out_return_no: String,
    return_id: String,
    order_id: String,
    return_mchid: String,
    amount: i64,
    description: String,
    result: &'static str,
    fail_reason: Option<&'static str>,
}

#[derive(Default)]
pub(super) struct Sharing {
    /// (type, account) → closed.
    receivers: HashMap<(String, String), bool>,
    /// (type, account) → the name it was added with, decrypted (`GET /sandbox/profitsharing/receivers`).
    names: HashMap<(String, String), Option<String>>,
    splits: HashMap<String, Split>,
    returns: HashMap<String, Return>,
}

impl Sharing {
    /// Split out (pending or done, not closed) of a transaction.
    fn split_total(&self, transaction_id: &str) -> i64 {
        self.splits
            .values()
            .filter(|s| s.transaction_id == transaction_id)
            .flat_map(|s| &s.lines)
            .filter(|l| l.result != "CLOSED")
            .map(|l| l.amount)
            .sum()
    }

    fn finished(&self, transaction_id: &str) -> bool {
        self.splits
            .values()
            .any(|s| s.transaction_id == transaction_id && s.finishes && s.state == "FINISHED")
    }
}

fn profit_sharing(trade: &Trade) -> bool {
    trade.request["settle_info"]["profit_sharing"] == json!(true)
}

fn unsplit(sharing: &Sharing, trade: &Trade) -> i64 {
    let id = trade.transaction_id.as_deref().unwrap_or_default();
    if !profit_sharing(trade) || sharing.finished(id) {
        return 0;
    }
    (trade.total - trade.refunded - sharing.split_total(id)).max(0)
}

/// What a refund may take from the frozen funds of a profit-sharing trade whose sharing is not
/// finished; `None`: no limit of that kind (not splittable, or finished: refunds come from the
/// merchant's available balance).
pub(super) fn frozen_unsplit(sharing: &Sharing, trade: &Trade) -> Option<i64> {
    let id = trade.transaction_id.as_deref()?;
    (profit_sharing(trade) && !sharing.finished(id)).then(|| unsplit(sharing, trade))
}

/// RSAES-OAEP (SHA-1) decryption with the stand-in's private key (RFC 8017 §7.1.2).
fn oaep_sha1_decrypt(key: &RsaPrivateKey, sealed: &[u8]) -> Option<Vec<u8>> {
    let k = key.size();
    if sealed.len() != k {
        return None;
    }
    let m = rsa::BigUint::from_bytes_be(sealed).modpow(key.d(), key.n());
    let mut em = m.to_bytes_be();
    if em.len() > k {
        return None;
    }
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
        let mut c = 0u32;
        while out.len() < len {
            out.extend(h(&[seed, &c.to_be_bytes()].concat()));
            c += 1;
        }
        out.truncate(len);
        out
    };
    if em[0] != 0 {
        return None;
    }
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
    if db[..20] != h(b"")[..] {
        return None;
    }
    let rest = &db[20..];
    let one = rest.iter().position(|b| *b != 0)?;
    (rest[one] == 1).then(|| rest[one + 1..].to_vec())
}

fn split_json(split: &Split) -> Value {
    json!({
        "transaction_id": split.transaction_id,
        "out_order_no": split.out_order_no,
        "order_id": split.order_id,
        "state": split.state,
        "receivers": split.lines.iter().map(|l| {
            let mut v = json!({
                "amount": l.amount,
                "description": l.description,
                "type": l.kind,
                "account": l.account,
                "result": l.result,
                "detail_id": l.detail_id,
                "create_time": beijing(OffsetDateTime::now_utc()),
            });
            if let Some(reason) = l.fail_reason {
                v["fail_reason"] = json!(reason);
            }
            v
        }).collect::<Vec<_>>(),
    })
}

fn return_json(r: &Return) -> Value {
    let mut v = json!({
        "order_id": r.order_id,
        "out_order_no": r.out_order_no,
        "out_return_no": r.out_return_no,
        "return_id": r.return_id,
        "return_mchid": r.return_mchid,
        "amount": r.amount,
        "description": r.description,
        "result": r.result,
        "create_time": beijing(OffsetDateTime::now_utc()),
    });
    if let Some(reason) = r.fail_reason {
        v["fail_reason"] = json!(reason);
    }
    v
}

/// Finishes every PROCESSING split (or only `only`).
fn finish(sharing: &mut Sharing, only: Option<&str>) -> usize {
    let receivers = sharing.receivers.clone();
    let mut n = 0;
    for split in sharing.splits.values_mut() {
        if split.state != "PROCESSING" || only.is_some_and(|o| o != split.out_order_no) {
            continue;
        }
        for line in &mut split.lines {
            match receivers.get(&(line.kind.clone(), line.account.clone())) {
                None => {
                    line.result = "CLOSED";
                    line.fail_reason = Some("NO_RELATION");
                }
                Some(true) => {
                    line.result = "CLOSED";
                    line.fail_reason = Some("ACCOUNT_ABNORMAL");
                }
                Some(false) => line.result = "SUCCESS",
            }
        }
        split.state = "FINISHED";
        split.finished_at = Some(OffsetDateTime::now_utc());
        n += 1;
    }
    n
}

fn valid_no(no: &str) -> bool {
    !no.is_empty()
        && no.len() <= 64
        && no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
}

pub(super) fn answer(
    state: &State,
    method: &str,
    path: &[&str],
    query: &HashMap<String, String>,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> HttpResponse {
    let Ok(mut book) = state.book.lock() else {
        return error(state, 500, "SYSTEM_ERROR", "stand-in state poisoned");
    };
    let book = &mut *book;
    let map = json_body(body).unwrap_or_default();
    let text = |name: &str| map.get(name).and_then(Value::as_str).unwrap_or_default();
    match (method, path) {
        ("POST", ["receivers", "add"]) | ("POST", ["receivers", "delete"]) => {
            let kind = text("type");
            let account = text("account");
            if !matches!(kind, "MERCHANT_ID" | "PERSONAL_OPENID") || account.is_empty() {
                return param_error(state, "type and account are required");
            }
            if text("appid") != state.merchant.appid {
                return param_error(state, "appid is not bound to this merchant");
            }
            let key = (kind.to_owned(), account.to_owned());
            if path[1] == "delete" {
                book.sharing.receivers.remove(&key);
                book.sharing.names.remove(&key);
                return signed(state, 200, Some(&json!({"type": kind, "account": account})));
            }
            if text("relation_type").is_empty() {
                return param_error(state, "relation_type is required");
            }
            let name = map.get("name").and_then(Value::as_str);
            if name.is_some() {
                let serial = headers
                    .get("wechatpay-serial")
                    .and_then(|v| v.to_str().ok());
                if serial != Some(state.provider.id.as_str()) {
                    return param_error(
                        state,
                        "Wechatpay-Serial must name the key the name is encrypted with",
                    );
                }
            }
            let plain = match name.map(|n| {
                STANDARD
                    .decode(n)
                    .ok()
                    .and_then(|c| oaep_sha1_decrypt(&state.provider.key, &c))
            }) {
                None => None,
                Some(Some(plain)) => match String::from_utf8(plain) {
                    Ok(p) if !p.trim().is_empty() => Some(p),
                    _ => return param_error(state, "name does not decrypt to a name"),
                },
                Some(None) => {
                    return param_error(state, "name does not decrypt with the WeChat Pay key")
                }
            };
            if kind == "MERCHANT_ID" && plain.is_none() {
                return param_error(state, "a MERCHANT_ID receiver needs its name");
            }
            // Markers in the name play WeChat's checks of it: a name that is not the account's
            // real (or registered) name, and an outage.
            let marked = |marker: &str| plain.as_deref().is_some_and(|p| p.contains(marker));
            if marked("sandbox-mismatch") {
                return param_error(state, "分账接收方姓名与实名不一致");
            }
            if marked("sandbox-outage") {
                return error(state, 500, "SYSTEM_ERROR", "系统繁忙，请稍后重试");
            }
            // Never the name in the log (a legal name): whether one came, decrypted.
            tracing::info!(
                kind,
                named = plain.is_some(),
                "sandbox WeChat Pay receiver added"
            );
            book.sharing.names.insert(key.clone(), plain.clone());
            book.sharing.receivers.insert(key, false);
            signed(
                state,
                200,
                Some(
                    &json!({"type": kind, "account": account, "relation_type": text("relation_type")}),
                ),
            )
        }
        ("POST", ["orders"]) => create_split(state, book, &map),
        ("POST", ["orders", "unfreeze"]) => {
            let (id, no) = (text("transaction_id"), text("out_order_no"));
            if !valid_no(no) || text("description").is_empty() {
                return param_error(
                    state,
                    "transaction_id, out_order_no and description are required",
                );
            }
            if let Some(existing) = book.sharing.splits.get(no) {
                return signed(state, 200, Some(&split_json(existing)));
            }
            let Some(trade) = book
                .trades
                .values()
                .find(|t| t.transaction_id.as_deref() == Some(id))
            else {
                return error(
                    state,
                    404,
                    "RESOURCE_NOT_EXISTS",
                    "the order does not exist",
                );
            };
            if unsplit(&book.sharing, trade) == 0 {
                return error(state, 403, "NOT_ENOUGH", "分账金额不足");
            }
            let split = Split {
                request: Value::Object(map.clone()),
                transaction_id: id.to_owned(),
                out_order_no: no.to_owned(),
                order_id: format!("30{}", random_text(26, DIGITS)),
                state: "PROCESSING",
                lines: Vec::new(),
                finishes: true,
                finished_at: None,
            };
            let answer = split_json(&split);
            book.sharing.splits.insert(no.to_owned(), split);
            signed(state, 200, Some(&answer))
        }
        ("GET", ["orders", no]) => {
            finish(&mut book.sharing, Some(no));
            match book.sharing.splits.get(*no) {
                Some(s) if query.get("transaction_id") == Some(&s.transaction_id) => {
                    signed(state, 200, Some(&split_json(s)))
                }
                _ => error(state, 404, "RESOURCE_NOT_EXISTS", "记录不存在"),
            }
        }
        ("GET", ["transactions", id, "amounts"]) => {
            match book
                .trades
                .values()
                .find(|t| t.transaction_id.as_deref() == Some(*id))
            {
                Some(trade) => signed(
                    state,
                    200,
                    Some(&json!({
                        "transaction_id": id,
                        "unsplit_amount": unsplit(&book.sharing, trade),
                    })),
                ),
                None => error(
                    state,
                    404,
                    "RESOURCE_NOT_EXISTS",
                    "the order does not exist",
                ),
            }
        }
        ("POST", ["return-orders"]) => {
            let (no, ret_no, mchid) = (
                text("out_order_no"),
                text("out_return_no"),
                text("return_mchid"),
            );
            let amount = map.get("amount").and_then(Value::as_i64).unwrap_or(0);
            if !valid_no(ret_no)
                || mchid.is_empty()
                || amount <= 0
                || text("description").is_empty()
            {
                return param_error(
                    state,
                    "out_return_no, return_mchid, amount and description are required",
                );
            }
            if let Some(existing) = book.sharing.returns.get(ret_no) {
                return match existing.request == Value::Object(map.clone()) {
                    true => signed(state, 200, Some(&return_json(existing))),
                    false => error(
                        state,
                        400,
                        "INVALID_REQUEST",
                        "out_return_no exists with other parameters",
                    ),
                };
            }
            let Some(split) = book.sharing.splits.get(no) else {
                return error(
                    state,
                    404,
                    "RESOURCE_NOT_EXISTS",
                    "the split does not exist",
                );
            };
            let got: i64 = split
                .lines
                .iter()
                .filter(|l| l.kind == "MERCHANT_ID" && l.account == mchid && l.result == "SUCCESS")
                .map(|l| l.amount)
                .sum();
            if !split
                .lines
                .iter()
                .any(|l| l.kind == "MERCHANT_ID" && l.account == mchid)
            {
                return error(
                    state,
                    400,
                    "INVALID_REQUEST",
                    "only a MERCHANT_ID receiver of the split can return",
                );
            }
            let returned: i64 = book
                .sharing
                .returns
                .values()
                .filter(|r| {
                    r.out_order_no == no && r.return_mchid == mchid && r.result == "SUCCESS"
                })
                .map(|r| r.amount)
                .sum();
            let enough = amount <= got - returned;
            let r = Return {
                request: Value::Object(map.clone()),
                out_order_no: no.to_owned(),
                out_return_no: ret_no.to_owned(),
                return_id: format!("30{}", random_text(26, DIGITS)),
                order_id: split.order_id.clone(),
                return_mchid: mchid.to_owned(),
                amount,
                description: text("description").to_owned(),
                result: if enough { "SUCCESS" } else { "FAILED" },
                fail_reason: (!enough).then_some("BALANCE_NOT_ENOUGH"),
            };
            let answer = return_json(&r);
            book.sharing.returns.insert(ret_no.to_owned(), r);
            signed(state, 200, Some(&answer))
        }
        ("GET", ["return-orders", no]) => match book.sharing.returns.get(*no) {
            Some(r) if query.get("out_order_no") == Some(&r.out_order_no) => {
                signed(state, 200, Some(&return_json(r)))
            }
            _ => error(state, 404, "RESOURCE_NOT_EXISTS", "记录不存在"),
        },
        ("GET", ["bills"]) => {
            let date = query.get("bill_date").map(String::as_str).unwrap_or("");
            if !valid_date(date) {
                return param_error(state, "bill_date must be yyyy-MM-dd");
            }
            let file = bill_text(book, &state.merchant.mchid, date);
            let digest =
                ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, file.as_bytes());
            let hash: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            signed(
                state,
                200,
                Some(&json!({
                    "download_url": format!("https://api.mch.weixin.qq.com/v3/billdownload/file?token={BILL_TOKEN}{date}"),
                    "hash_type": "SHA1",
                    "hash_value": hash,
                })),
            )
        }
        _ => error(state, 404, "NOT_FOUND", "no such API"),
    }
}

/// The download token of a profit-sharing bill (`<this><date>`).
pub(super) const BILL_TOKEN: &str = "PSBILL";

fn valid_date(date: &str) -> bool {
    time::Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .is_ok()
}

/// The bill of `date` (Beijing): every SUCCESS line of the splits that finished that day, as
/// WeChat Pay writes its bills (`shared::settlement::wechatpay::parse_bill` gives the sources):
/// the domestic bill's 13 columns, each datum behind a backtick, amounts in yuan, then the
/// totals. The values of 业务类型 (分账) and 处理状态 (成功) are the stand-in's guess; returns
/// and unfreezes, which the real bill may list too, are not written.
fn bill_text(book: &super::Book, mchid: &str, date: &str) -> String {
    let mut out = String::from(
        "分账时间,分账发起方,分账方,微信订单号,微信分账/回退单号,分账明细单号,商户分账/回退单号,订单金额,分账接收方,金额,业务类型,处理状态,备注\n",
    );
    let (mut count, mut total) = (0, 0);
    let mut splits: Vec<&Split> = book.sharing.splits.values().collect();
    splits.sort_by(|a, b| a.out_order_no.cmp(&b.out_order_no));
    let yuan = |fen: i64| format!("{}.{:02}", fen / 100, fen % 100);
    for split in splits {
        let Some(at) = split.finished_at else {
            continue;
        };
        let local = at.to_offset(time::macros::offset!(+8));
        if local.date().to_string() != date {
            continue;
        }
        let when = local
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .unwrap_or_default();
        let order_total = book
            .trades
            .values()
            .find(|t| t.transaction_id.as_deref() == Some(split.transaction_id.as_str()))
            .map_or(0, |t| t.total);
        for line in split.lines.iter().filter(|l| l.result == "SUCCESS") {
            count += 1;
            total += line.amount;
            out.push_str(&format!(
                "`{when},`{mchid},`{mchid},`{},`{},`{},`{},`{},`{},`{},`分账,`成功,`{}\n",
                split.transaction_id,
                split.order_id,
                line.detail_id,
                split.out_order_no,
                yuan(order_total),
                line.account,
                yuan(line.amount),
                line.description.replace(',', " "),
            ));
        }
    }
    out.push_str("总笔数,总金额(元)\n");
    out.push_str(&format!("`{count},`{}\n", yuan(total)));
    out
}

/// `GET /v3/billdownload/file?token=`: a bill's file (not signed, as WeChat Pay's files are not:
/// the bill's answer carries its hash).
pub(super) fn bill_file(state: &State, token: &str) -> HttpResponse {
    let Some(date) = token.strip_prefix(BILL_TOKEN).filter(|d| valid_date(d)) else {
        return error(state, 404, "RESOURCE_NOT_EXISTS", "no such bill");
    };
    let Ok(book) = state.book.lock() else {
        return error(state, 500, "SYSTEM_ERROR", "stand-in state poisoned");
    };
    let text = bill_text(&book, &state.merchant.mchid, date);
    hyper::Response::builder()
        .status(200)
        .header("content-type", "text/plain; charset=utf-8")
        .body(http_body_util::Full::new(bytes::Bytes::from(text)))
        .unwrap_or_default()
}

fn create_split(
    state: &State,
    book: &mut super::Book,
    map: &serde_json::Map<String, Value>,
) -> HttpResponse {
    let text = |name: &str| map.get(name).and_then(Value::as_str).unwrap_or_default();
    let (id, no) = (text("transaction_id"), text("out_order_no"));
    if !valid_no(no) || id.is_empty() {
        return param_error(state, "transaction_id and out_order_no are required");
    }
    let request = Value::Object(map.clone());
    if let Some(existing) = book.sharing.splits.get(no) {
        return match existing.request == request {
            true => signed(state, 200, Some(&split_json(existing))),
            false => error(
                state,
                400,
                "INVALID_REQUEST",
                "out_order_no exists with other parameters",
            ),
        };
    }
    let Some(receivers) = map.get("receivers").and_then(Value::as_array) else {
        return param_error(state, "receivers is required");
    };
    if receivers.is_empty() || receivers.len() > 50 {
        return param_error(state, "1 to 50 receivers");
    }
    let mut lines = Vec::new();
    for r in receivers {
        let (kind, account) = (
            r["type"].as_str().unwrap_or_default(),
            r["account"].as_str().unwrap_or_default(),
        );
        let amount = r["amount"]
            .as_i64()
            .filter(|_| !r["amount"].is_f64())
            .unwrap_or(0);
        let description = r["description"].as_str().unwrap_or_default();
        if !matches!(kind, "MERCHANT_ID" | "PERSONAL_OPENID")
            || account.is_empty()
            || amount <= 0
            || description.is_empty()
            || description.chars().count() > 80
        {
            return param_error(state, "each receiver needs type, account, a positive whole amount and a description of at most 80 characters");
        }
        if kind == "PERSONAL_OPENID" && text("appid") != state.merchant.appid {
            return param_error(state, "appid is required for PERSONAL_OPENID receivers");
        }
        lines.push(Line {
            kind: kind.to_owned(),
            account: account.to_owned(),
            amount,
            description: description.to_owned(),
            result: "PENDING",
            fail_reason: None,
            detail_id: format!("36{}", random_text(21, DIGITS)),
        });
    }
    let Some(trade) = book
        .trades
        .values()
        .find(|t| t.transaction_id.as_deref() == Some(id))
    else {
        return error(
            state,
            404,
            "RESOURCE_NOT_EXISTS",
            "the order does not exist",
        );
    };
    if !profit_sharing(trade) {
        return error(state, 400, "INVALID_REQUEST", "非分账订单不支持分账");
    }
    let paid_at = trade.success_time.as_deref().and_then(|t| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    });
    let too_early = paid_at.is_none_or(|at| OffsetDateTime::now_utc() - at < SPLIT_NOT_BEFORE);
    if too_early {
        return error(
            state,
            400,
            "INVALID_REQUEST",
            "订单处理中，暂时无法分账，请稍后再试",
        );
    }
    let total: i64 = lines.iter().map(|l| l.amount).sum();
    let already = book.sharing.split_total(id);
    if (already + total) * 10_000 > trade.total * MAX_RATIO_BPS {
        return error(state, 400, "INVALID_REQUEST", "分账金额超出最大分账比例");
    }
    if book.sharing.finished(id) || total > unsplit(&book.sharing, trade) {
        return error(state, 403, "NOT_ENOUGH", "分账金额不足");
    }
    let split = Split {
        request,
        transaction_id: id.to_owned(),
        out_order_no: no.to_owned(),
        order_id: format!("30{}", random_text(26, DIGITS)),
        state: "PROCESSING",
        lines,
        finishes: map.get("unfreeze_unsplit") == Some(&json!(true)),
        finished_at: None,
    };
    let answer = split_json(&split);
    book.sharing.splits.insert(no.to_owned(), split);
    signed(state, 200, Some(&answer))
}

/// `POST /sandbox/profitsharing/tick`: finishes every PROCESSING split and unfreeze.
pub(super) fn sandbox_tick(state: &State) -> HttpResponse {
    let Ok(mut book) = state.book.lock() else {
        return http_server::json(500, &json!({"error": "stand-in state poisoned"}));
    };
    let n = finish(&mut book.sharing, None);
    http_server::json(200, &json!({"finished": n}))
}

/// `GET /sandbox/profitsharing/receivers`: the merchant's receivers as WeChat Pay holds them —
/// `[{type, account, name (decrypted), closed}]`, sorted.
pub(super) fn sandbox_receivers(state: &State) -> HttpResponse {
    let Ok(book) = state.book.lock() else {
        return http_server::json(500, &json!({"error": "stand-in state poisoned"}));
    };
    let mut receivers: Vec<Value> = book
        .sharing
        .receivers
        .iter()
        .map(|((kind, account), closed)| {
            let name = book
                .sharing
                .names
                .get(&(kind.clone(), account.clone()))
                .cloned()
                .flatten();
            json!({"type": kind, "account": account, "name": name, "closed": closed})
        })
        .collect();
    receivers.sort_by_key(|r| r.to_string());
    http_server::json(200, &json!({ "receivers": receivers }))
}

/// `POST /sandbox/profitsharing/close-receiver {"type","account"}`: WeChat closes the receiver;
/// splits to it that finish from now on end CLOSED (ACCOUNT_ABNORMAL).
pub(super) fn sandbox_close_receiver(state: &State, body: &[u8]) -> HttpResponse {
    let Some(map) = json_body(body) else {
        return http_server::json(400, &json!({"error": "expected {\"type\", \"account\"}"}));
    };
    let (Some(kind), Some(account)) = (
        map.get("type").and_then(Value::as_str),
        map.get("account").and_then(Value::as_str),
    ) else {
        return http_server::json(400, &json!({"error": "expected {\"type\", \"account\"}"}));
    };
    let Ok(mut book) = state.book.lock() else {
        return http_server::json(500, &json!({"error": "stand-in state poisoned"}));
    };
    book.sharing
        .receivers
        .insert((kind.to_owned(), account.to_owned()), true);
    http_server::json(
        200,
        &json!({"type": kind, "account": account, "closed": true}),
    )
}
