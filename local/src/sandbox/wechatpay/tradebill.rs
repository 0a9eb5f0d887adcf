//! WeChat Pay's trade bill, played by the stand-in (`GET /v3/bill/tradebill`, 申请交易账单):
//!
//! - Each payment's fee is recorded when it is paid, at the stand-in's rate (万分比, default
//!   [`DEFAULT_FEE_BPS`] = Renji's default estimate; `POST /sandbox/fee-rate {"bps": n}` on the
//!   stand-in's port changes it for the payments after it, so a test can make the real fee differ
//!   from Renji's estimate), rounded half up to the fen. A refund gives back the fee in proportion
//!   (cumulatively: `round(fee × refunded so far / total)` less what earlier refunds gave back, so
//!   a full refund gives back the whole fee), recorded when it succeeds.
//! - `GET /v3/bill/tradebill?bill_date=yyyy-MM-dd&bill_type=ALL|SUCCESS|REFUND` answers
//!   `{hash_type: "SHA1", hash_value, download_url}` for the day's bill (Beijing time): every
//!   payment paid and every refund that succeeded that day; a day with neither is
//!   `400 NO_STATEMENT_EXIST` (账单文件不存在), a date that is not one `400 PARAM_ERROR`, a
//!   `tar_type` other than none `400 PARAM_ERROR` (the stand-in serves the plain file only).
//!   `GET /v3/billdownload/file?token=` serves the file, unsigned, as WeChat Pay's files are.
//! - The file as WeChat Pay writes it: the header of names, one row per payment (`SUCCESS`) or
//!   refund (`REFUND`, its fee negative), each field behind a backtick, amounts in yuan, the fee
//!   to five decimals, then the summary's header and its row.

use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{error, param_error, signed, State, TradeState};
use crate::http_server::{self, HttpResponse};

/// The stand-in's fee rate until a test sets another: Renji's default estimate (0.6 %).
pub const DEFAULT_FEE_BPS: i64 = 60;
/// The download token of a trade bill (`<this><bill_type>_<date>`).
pub(super) const TOKEN: &str = "TRADEBILL";

const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
const SUMMARY: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

/// `amount × bps / 10 000` rounded half up (fen).
pub(super) fn fee_of(amount: i64, bps: i64) -> i64 {
    (amount * bps + 5_000) / 10_000
}

/// What a refund gives back of a payment's `fee`: the proportional fee of everything refunded
/// so far (`refunded_after`) less what was given back before.
pub(super) fn fee_back(fee: i64, total: i64, refunded_after: i64, returned_before: i64) -> i64 {
    if total <= 0 {
        return 0;
    }
    (fee * refunded_after * 2 + total) / (total * 2) - returned_before
}

fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

/// A fee in yuan to five decimals, as the bill writes it.
fn fee_yuan(fen: i64) -> String {
    format!("{}000", yuan(fen))
}

fn rate(bps: i64) -> String {
    format!("{}.{:02}%", bps / 100, bps % 100)
}

fn valid_date(date: &str) -> bool {
    time::Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .is_ok()
}

fn on_day(at: Option<OffsetDateTime>, date: &str) -> bool {
    at.is_some_and(|at| at.to_offset(time::macros::offset!(+8)).date().to_string() == date)
}

fn time_text(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::macros::offset!(+8));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The day's bill, or `None` when nothing was paid or refunded that day.
fn bill_text(state: &State, date: &str, bill_type: &str) -> Option<String> {
    let book = state.book.lock().ok()?;
    let m = &state.merchant;
    // (time, row, settled, refunded, fee)
    let mut rows: Vec<(OffsetDateTime, String, i64, i64, i64)> = Vec::new();
    if bill_type != "REFUND" {
        for trade in book.trades.values() {
            if !matches!(trade.state, TradeState::Success | TradeState::Refund)
                || !on_day(trade.paid_at, date)
            {
                continue;
            }
            let Some(at) = trade.paid_at else { continue };
            let name = trade.request["description"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let row = format!(
                "`{},`{},`{},`0,`,`{},`{},`{},`JSAPI,`SUCCESS,`OTHERS,`CNY,`{},`0.00,`0,`0,`0.00,`0.00,`,`,`{},`,`{},`{},`{},`0.00,`",
                time_text(at),
                trade.appid,
                m.mchid,
                trade.transaction_id.as_deref().unwrap_or_default(),
                trade.out_trade_no,
                trade.openid,
                yuan(trade.total),
                name,
                fee_yuan(trade.fee),
                rate(trade.fee_bps),
                yuan(trade.total),
            );
            rows.push((at, row, trade.total, 0, trade.fee));
        }
    }
    if bill_type != "SUCCESS" {
        for refund in book.refunds.values() {
            if refund.status != "SUCCESS" || !on_day(refund.succeeded_at, date) {
                continue;
            }
            let Some(at) = refund.succeeded_at else {
                continue;
            };
            let Some(trade) = book.trades.get(&refund.out_trade_no) else {
                continue;
            };
            let name = trade.request["description"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let row = format!(
                "`{},`{},`{},`0,`,`{},`{},`{},`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`{},`{},`{},`0.00,`ORIGINAL,`SUCCESS,`{},`,`{},`{},`0.00,`{},`",
                time_text(at),
                trade.appid,
                m.mchid,
                refund.transaction_id,
                refund.out_trade_no,
                trade.openid,
                refund.refund_id,
                refund.out_refund_no,
                yuan(refund.refund),
                name,
                fee_yuan(-refund.fee_back),
                rate(trade.fee_bps),
                yuan(refund.refund),
            );
            rows.push((at, row, 0, refund.refund, -refund.fee_back));
        }
    }
    if rows.is_empty() {
        return None;
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut out = format!("{HEADER}\n");
    for (_, row, ..) in &rows {
        out.push_str(row);
        out.push('\n');
    }
    let settled: i64 = rows.iter().map(|r| r.2).sum();
    let refunded: i64 = rows.iter().map(|r| r.3).sum();
    let fees: i64 = rows.iter().map(|r| r.4).sum();
    out.push_str(&format!(
        "{SUMMARY}\n`{},`{},`{},`0.00,`{},`{},`{}\n",
        rows.len(),
        yuan(settled),
        yuan(refunded),
        fee_yuan(fees),
        yuan(settled),
        yuan(refunded),
    ));
    Some(out)
}

/// `GET /v3/bill/tradebill`.
pub(super) fn answer(
    state: &State,
    query: &std::collections::HashMap<String, String>,
) -> HttpResponse {
    let date = query.get("bill_date").map(String::as_str).unwrap_or("");
    if !valid_date(date) {
        return param_error(state, "bill_date must be yyyy-MM-dd");
    }
    let bill_type = query.get("bill_type").map(String::as_str).unwrap_or("ALL");
    if !matches!(bill_type, "ALL" | "SUCCESS" | "REFUND") {
        return param_error(state, "bill_type must be ALL, SUCCESS or REFUND");
    }
    if query.contains_key("tar_type") {
        return param_error(
            state,
            "the sandbox serves the plain file only (no tar_type)",
        );
    }
    let Some(file) = bill_text(state, date, bill_type) else {
        return error(state, 400, "NO_STATEMENT_EXIST", "账单文件不存在");
    };
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, file.as_bytes());
    let hash: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    signed(
        state,
        200,
        Some(&json!({
            "download_url": format!("https://api.mch.weixin.qq.com/v3/billdownload/file?token={TOKEN}{bill_type}_{date}"),
            "hash_type": "SHA1",
            "hash_value": hash,
        })),
    )
}

/// The file of a trade bill token (`None`: not a trade bill's token).
pub(super) fn file(state: &State, token: &str) -> Option<HttpResponse> {
    let rest = token.strip_prefix(TOKEN)?;
    let (bill_type, date) = rest.split_once('_')?;
    let text = match valid_date(date) {
        true => bill_text(state, date, bill_type),
        false => None,
    };
    Some(match text {
        Some(text) => hyper::Response::builder()
            .status(200)
            .header("content-type", "text/plain; charset=utf-8")
            .body(http_body_util::Full::new(bytes::Bytes::from(text)))
            .unwrap_or_default(),
        None => error(state, 404, "RESOURCE_NOT_EXISTS", "no such bill"),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateCall {
    bps: i64,
}

/// `POST /sandbox/fee-rate {"bps": n}`: the rate of the payments from now on.
pub(super) fn sandbox_fee_rate(state: &State, body: &[u8]) -> HttpResponse {
    let Ok(call) = serde_json::from_slice::<RateCall>(body) else {
        return http_server::json(400, &json!({"error": "expected {\"bps\": 0..10000}"}));
    };
    if !(0..=10_000).contains(&call.bps) {
        return http_server::json(400, &json!({"error": "bps must be 0..10000"}));
    }
    let Ok(mut bps) = state.fee_bps.lock() else {
        return http_server::json(500, &json!({"error": "stand-in state poisoned"}));
    };
    *bps = call.bps;
    http_server::json(200, &json!({"fee_bps": call.bps}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_round_half_up_and_refunds_give_back_in_proportion() {
        assert_eq!(fee_of(288_000, 60), 1_728);
        assert_eq!(fee_of(250, 60), 2); // 1.5
        assert_eq!(fee_of(83, 60), 0); // 0.498
                                       // 1 % of 333 is 3.33 → 3; a third, a third, a third back: 1 + 1 + 1, all of it.
        let fee = fee_of(333, 100);
        let a = fee_back(fee, 333, 111, 0);
        let b = fee_back(fee, 333, 222, a);
        let c = fee_back(fee, 333, 333, a + b);
        assert_eq!((a, b, c), (1, 1, 1));
        assert_eq!(fee_yuan(-60), "-0.60000");
        assert_eq!(rate(60), "0.60%");
    }
}
