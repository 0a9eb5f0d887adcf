//! Alipay royalty (商家分账), played by the stand-in (`settlement.md` §3):
//! `alipay.trade.royalty.relation.bind`/`unbind` (a loginName needs its name),
//! `alipay.trade.order.settle` (synchronous: the trade paid with `royalty_freeze`, every
//! receiver bound, the total within [`MAX_RATIO_BPS`] of the trade and within what is unsettled;
//! the same `out_request_no` with the same body answers the same settle, another body is refused;
//! `extend_params.royalty_finish` unfreezes the rest), `alipay.trade.order.settle.query`,
//! `alipay.trade.order.onsettle.query` (`unsettled_amount`).
//!
//! Its refusals' sub_codes, and where each comes from (no official page's error table could be
//! read here; the adapter, `shared::settlement::alipay`, says the same):
//! - `ACQ.TRADE_NOT_EXIST`, `ACQ.TRADE_STATUS_ERROR`, `ACQ.DISCORDANT_REPEAT_REQUEST` (the same
//!   `out_request_no` with other details): the settle page's error table as transcribed by an
//!   SDK of the old docs.open.alipay.com (`export const error = {…}` beside the settle request,
//!   with `ACQ.TRADE_SETTLE_ERROR`); DISCORDANT_REPEAT_REQUEST and ALLOC_AMOUNT_VALIDATE_ERROR
//!   are also seen in a production project's notes on failed Alipay splits.
//! - `ACQ.ROYALTY_RECEIVER_INVALID` 收入方不在分账关系内 (a receiver not bound) and
//!   `ACQ.ALLOC_AMOUNT_VALIDATE_ERROR` 分账金额超过最大可分账金额 (over the ratio, or over what is
//!   unsettled): an Alipay mock's code list (`AlipayReturnNo`, a course project's, transcribing
//!   the settle page) — not confirmed by an official source.
//! - `ACQ.TRADE_NOT_EXIST` for a settle query of an unknown `out_request_no`: the same mock's
//!   answer; unconfirmed (the adapter also reads `ACQ.TRADE_SETTLE_NOT_EXIST`, which no source
//!   names).
//! - `ACQ.ALLOC_AMOUNT_VALIDATE_ERROR` 退分账金额超限 for a refund taking back more than the
//!   receiver got: `alipay.trade.refund`'s error table, transcribed alike by several SDKs.
//! - `ACQ.TRADE_NOT_ALLOW_SETTLE` (a trade not frozen for royalty): the stand-in's own,
//!   unconfirmed.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::{beijing, failure, fen, random_text, success, yuan, State, DIGITS};

/// The royalty ratio the stand-in's app was granted (万分比): Alipay's default is 30 %.
pub const MAX_RATIO_BPS: i64 = 9000;

pub(super) const METHODS: &[&str] = &[
    "alipay.trade.royalty.relation.bind",
    "alipay.trade.royalty.relation.unbind",
    "alipay.trade.order.settle",
    "alipay.trade.order.settle.query",
    "alipay.trade.order.onsettle.query",
];

#[derive(Clone)]
struct Settle {
    request: Value,
    trade_no: String,
    settle_no: String,
    lines: Vec<(String, String, i64)>,
    finish: bool,
    at: String,
}

#[derive(Default)]
pub(super) struct Royalty {
    /// (type, account).
    relations: HashSet<(String, String)>,
    /// By out_request_no.
    settles: HashMap<String, Settle>,
    /// (trade_no, account) → taken back by refunds (`refund_royalty_parameters`).
    returned: HashMap<(String, String), i64>,
}

impl Royalty {
    fn settled(&self, trade_no: &str) -> i64 {
        self.settles
            .values()
            .filter(|s| s.trade_no == trade_no)
            .flat_map(|s| &s.lines)
            .map(|l| l.2)
            .sum()
    }

    /// What `account` may still give back of `trade_no`'s royalties.
    fn returnable(&self, trade_no: &str, account: &str) -> i64 {
        let got: i64 = self
            .settles
            .values()
            .filter(|s| s.trade_no == trade_no)
            .flat_map(|s| &s.lines)
            .filter(|l| l.1 == account)
            .map(|l| l.2)
            .sum();
        let back = self
            .returned
            .get(&(trade_no.to_owned(), account.to_owned()))
            .copied()
            .unwrap_or(0);
        got - back
    }

    /// A refund's `refund_royalty_parameters` (`[{trans_out, amount}]`): each receiver gives
    /// back what is asked of it, or none does (`Err`: the refusal) when one got less.
    pub(super) fn take_back(&mut self, trade_no: &str, params: &Value) -> Result<(), Value> {
        let Some(list) = params.as_array() else {
            return Err(failure(
                "40002",
                "isv.invalid-parameter",
                "refund_royalty_parameters must be a list",
            ));
        };
        let mut takes = Vec::new();
        for p in list {
            let account = p["trans_out"].as_str().unwrap_or_default();
            let Some(amount) = p["amount"].as_str().and_then(fen).filter(|a| *a >= 1) else {
                return Err(failure(
                    "40002",
                    "isv.invalid-parameter",
                    "amount must be a yuan string from 0.01",
                ));
            };
            if account.is_empty() || amount > self.returnable(trade_no, account) {
                // alipay.trade.refund's error table (see the module's note).
                return Err(failure(
                    "40004",
                    "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR",
                    "退分账金额超限",
                ));
            }
            takes.push((account.to_owned(), amount));
        }
        for (account, amount) in takes {
            *self
                .returned
                .entry((trade_no.to_owned(), account))
                .or_insert(0) += amount;
        }
        Ok(())
    }

    fn finished(&self, trade_no: &str) -> bool {
        self.settles
            .values()
            .any(|s| s.trade_no == trade_no && s.finish)
    }
}

fn settle_answer(s: &Settle) -> Value {
    success(json!({"trade_no": s.trade_no, "settle_no": s.settle_no}))
}

pub(super) fn answer(state: &State, api: &str, biz: &serde_json::Map<String, Value>) -> Value {
    let get = |k: &str| biz.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let Ok(mut book) = state.book.lock() else {
        return failure("20000", "aop.unknow-error", "stand-in state poisoned");
    };
    let book = &mut *book;
    match api {
        "alipay.trade.royalty.relation.bind" | "alipay.trade.royalty.relation.unbind" => {
            let no = get("out_request_no");
            if no.is_empty()
                || no.len() > 32
                || !no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return failure(
                    "40002",
                    "isv.invalid-parameter",
                    "out_request_no must be 1-32 of [A-Za-z0-9_]",
                );
            }
            let Some(list) = biz
                .get("receiver_list")
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty() && l.len() <= 20)
            else {
                return failure(
                    "40002",
                    "isv.invalid-parameter",
                    "receiver_list must hold 1 to 20 receivers",
                );
            };
            for r in list {
                let kind = r["type"].as_str().unwrap_or_default();
                let account = r["account"].as_str().unwrap_or_default();
                if !matches!(kind, "userId" | "loginName" | "openId") || account.is_empty() {
                    return failure(
                        "40002",
                        "isv.invalid-parameter",
                        "each receiver needs type and account",
                    );
                }
                if kind == "loginName" && r["name"].as_str().is_none_or(str::is_empty) {
                    return failure(
                        "40002",
                        "isv.invalid-parameter",
                        "a loginName receiver needs its name",
                    );
                }
                let key = (kind.to_owned(), account.to_owned());
                match api.ends_with(".bind") {
                    true => book.royalty.relations.insert(key),
                    false => book.royalty.relations.remove(&key),
                };
            }
            success(json!({"result_code": "SUCCESS"}))
        }
        "alipay.trade.order.settle" => {
            let (no, trade_no) = (get("out_request_no"), get("trade_no"));
            if no.is_empty() || no.len() > 64 || trade_no.is_empty() {
                return failure(
                    "40002",
                    "isv.invalid-parameter",
                    "out_request_no and trade_no are required",
                );
            }
            let request = Value::Object(biz.clone());
            if let Some(existing) = book.royalty.settles.get(&no) {
                return match existing.request == request {
                    true => settle_answer(existing),
                    false => failure("40004", "ACQ.DISCORDANT_REPEAT_REQUEST", "请求被篡改"),
                };
            }
            let Some(trade) = book.trades.values().find(|t| t.trade_no == trade_no) else {
                return failure("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在");
            };
            if trade.paid_at.is_none() {
                return failure("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法");
            }
            if !trade.royalty_freeze {
                return failure("40004", "ACQ.TRADE_NOT_ALLOW_SETTLE", "非冻结分账交易");
            }
            let finish = biz
                .get("extend_params")
                .and_then(|e| e.get("royalty_finish"))
                .and_then(Value::as_str)
                == Some("true");
            let params = biz
                .get("royalty_parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if params.len() > 5 || (params.is_empty() && !finish) {
                return failure(
                    "40002",
                    "isv.invalid-parameter",
                    "1 to 5 royalty_parameters in a synchronous settle",
                );
            }
            let mut lines = Vec::new();
            for p in &params {
                let kind = p["trans_in_type"].as_str().unwrap_or_default();
                let account = p["trans_in"].as_str().unwrap_or_default();
                let Some(amount) = p["amount"].as_str().and_then(fen).filter(|a| *a >= 1) else {
                    return failure(
                        "40002",
                        "isv.invalid-parameter",
                        "amount must be a yuan string from 0.01",
                    );
                };
                if p["royalty_type"].as_str().unwrap_or("transfer") != "transfer" {
                    return failure(
                        "40002",
                        "isv.invalid-parameter",
                        "royalty_type must be transfer",
                    );
                }
                if !book
                    .royalty
                    .relations
                    .contains(&(kind.to_owned(), account.to_owned()))
                {
                    return failure(
                        "40004",
                        "ACQ.ROYALTY_RECEIVER_INVALID",
                        "收入方不在分账关系内",
                    );
                }
                lines.push((kind.to_owned(), account.to_owned(), amount));
            }
            let total: i64 = lines.iter().map(|l| l.2).sum();
            let settled = book.royalty.settled(&trade_no);
            if (settled + total) * 10_000 > trade.total * MAX_RATIO_BPS {
                return failure(
                    "40004",
                    "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR",
                    "分账金额超过最大可分账金额",
                );
            }
            if book.royalty.finished(&trade_no) || total > trade.total - trade.refunded - settled {
                return failure(
                    "40004",
                    "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR",
                    "分账金额超过可分账金额",
                );
            }
            let settle = Settle {
                request,
                trade_no: trade_no.clone(),
                settle_no: format!("2023{}", random_text(28, DIGITS)),
                lines,
                finish,
                at: beijing(time::OffsetDateTime::now_utc()),
            };
            let answer = settle_answer(&settle);
            book.royalty.settles.insert(no, settle);
            answer
        }
        "alipay.trade.order.settle.query" => {
            let (no, trade_no) = (get("out_request_no"), get("trade_no"));
            match book
                .royalty
                .settles
                .get(&no)
                .filter(|s| s.trade_no == trade_no)
            {
                Some(s) => success(json!({
                    "out_request_no": no,
                    "operation_dt": s.at,
                    "settle_no": s.settle_no,
                    "royalty_detail_list": s.lines.iter().map(|(kind, account, amount)| json!({
                        "operation_type": "transfer",
                        "execute_dt": s.at,
                        "trans_in": account,
                        "trans_in_type": kind,
                        "amount": yuan(*amount),
                        "state": "SUCCESS",
                        "detail_id": format!("2023{}", random_text(24, DIGITS)),
                    })).collect::<Vec<_>>(),
                })),
                None => failure("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"),
            }
        }
        "alipay.trade.order.onsettle.query" => {
            let trade_no = get("trade_no");
            let Some(trade) = book.trades.values().find(|t| t.trade_no == trade_no) else {
                return failure("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在");
            };
            let left = match trade.royalty_freeze && !book.royalty.finished(&trade_no) {
                true => (trade.total - trade.refunded - book.royalty.settled(&trade_no)).max(0),
                false => 0,
            };
            success(json!({"unsettled_amount": yuan(left)}))
        }
        _ => failure(
            "40004",
            "isv.invalid-method",
            "this method is not in the sandbox",
        ),
    }
}

/// `GET /sandbox/royalty/relations`: the royalty receivers bound to the app —
/// `[{type, account}]`, sorted.
pub(super) fn sandbox_relations(state: &State) -> crate::http_server::HttpResponse {
    let Ok(book) = state.book.lock() else {
        return crate::http_server::json(500, &json!({"error": "stand-in state poisoned"}));
    };
    let mut relations: Vec<(String, String)> = book.royalty.relations.iter().cloned().collect();
    relations.sort();
    let relations: Vec<Value> = relations
        .into_iter()
        .map(|(kind, account)| json!({"type": kind, "account": account}))
        .collect();
    crate::http_server::json(200, &json!({ "relations": relations }))
}
