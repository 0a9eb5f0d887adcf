//! Alipay's trade bill, played by the stand-in (`alipay.data.dataservice.bill.downloadurl.query`):
//!
//! - Each payment's 服务费 is recorded when it is paid, at the stand-in's rate (万分比, default
//!   [`DEFAULT_FEE_BPS`] = Renji's default estimate; `POST /sandbox/fee-rate {"bps": n}` on the
//!   stand-in's port changes it for later payments), rounded half up to the fen; a refund gives
//!   back the fee in proportion to what has been refunded in all (a full refund all of it).
//! - `biz_content {bill_type: "trade", bill_date: "yyyy-MM-dd"}` answers `bill_download_url` for
//!   the day's bill (Beijing time); a day with no payment and no refund is `40004
//!   isp.bill_not_exist`; another bill type or a date that is not one `40002
//!   isv.invalid_arguments`. The URL (on the stand-in, `GET /downloadBillFile.resource?…`) serves
//!   the zip, unsigned.
//! - The zip as Alipay's: `<pid>_<yyyyMMdd>_业务明细.csv` and `…_业务明细(汇总).csv`, names and
//!   contents in GBK (the zip's UTF-8 flag unset), deflated. The detail: `#` lines, the header,
//!   a 交易 row per payment and a 退款 row per refund (amounts negative), ids followed by a tab,
//!   the `#` lines of its end. 服务费 is written negative on a payment and positive on a refund
//!   (what the merchant pays and gets back: the sign Alipay uses is not confirmed; Renji reads
//!   the line's kind, not the sign).

use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{failure, success, State};
use crate::http_server::{self, HttpResponse};

/// The stand-in's fee rate until a test sets another: Renji's default estimate (0.6 %).
pub const DEFAULT_FEE_BPS: i64 = 60;
/// The path the bill's download URL names.
pub(super) const DOWNLOAD_PATH: &str = "/downloadBillFile.resource";

const HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";
const RULE: &str = "-----------------------------------------";

/// `amount × bps / 10 000` rounded half up (fen).
pub(super) fn fee_of(amount: i64, bps: i64) -> i64 {
    (amount * bps + 5_000) / 10_000
}

/// What a refund gives back of a payment's `fee` (cumulative, proportional).
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

fn parse_date(date: &str) -> Option<time::Date> {
    time::Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

fn on_day(at: Option<OffsetDateTime>, date: time::Date) -> bool {
    at.is_some_and(|at| at.to_offset(time::macros::offset!(+8)).date() == date)
}

fn compact(date: time::Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn chinese(date: time::Date) -> String {
    format!(
        "{:04}年{:02}月{:02}日",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The day's two CSVs (detail, summary), or `None` when nothing was paid or refunded that day.
fn csvs(state: &State, date: time::Date) -> Option<(String, String)> {
    let book = state.book.lock().ok()?;
    let pid = &state.app.seller_id;
    // (time, row, amount, fee the merchant pays (negative) or gets back)
    let mut rows: Vec<(String, String, i64, i64, bool)> = Vec::new();
    for trade in book.trades.values() {
        if trade.paid_at.is_none() || !on_day(trade.paid_time, date) {
            continue;
        }
        let paid = trade.paid_at.clone().unwrap_or_default();
        let row = [
            format!("{}\t", trade.trade_no),
            format!("{}\t", trade.out_trade_no),
            "交易\t".into(),
            trade.subject.clone(),
            trade.created.clone(),
            paid.clone(),
            "\t".into(),
            "\t".into(),
            "\t".into(),
            "\t".into(),
            format!("{}\t", trade.buyer_id),
            yuan(trade.total),
            yuan(trade.total),
            "0.00".into(),
            "0.00".into(),
            "0.00".into(),
            "0.00".into(),
            "0.00".into(),
            String::new(),
            "0.00\t".into(),
            "0.00".into(),
            "\t".into(),
            yuan(-trade.fee),
            "0.00".into(),
            String::new(),
        ]
        .join(",");
        rows.push((paid, row, trade.total, -trade.fee, false));
    }
    for ((out_trade_no, out_request_no), refund) in &book.refunds {
        if !on_day(Some(refund.at_time), date) {
            continue;
        }
        let Some(trade) = book.trades.get(out_trade_no) else {
            continue;
        };
        let row = [
            format!("{}\t", trade.trade_no),
            format!("{}\t", trade.out_trade_no),
            "退款\t".into(),
            trade.subject.clone(),
            trade.created.clone(),
            refund.at.clone(),
            "\t".into(),
            "\t".into(),
            "\t".into(),
            "\t".into(),
            format!("{}\t", trade.buyer_id),
            yuan(-refund.amount),
            yuan(-refund.amount),
            "0.00".into(),
            "0.00".into(),
            "0.00".into(),
            "0.00".into(),
            "0.00".into(),
            String::new(),
            "0.00\t".into(),
            "0.00".into(),
            format!("{out_request_no}\t"),
            yuan(refund.fee_back),
            "0.00".into(),
            String::new(),
        ]
        .join(",");
        rows.push((
            refund.at.clone(),
            row,
            -refund.amount,
            refund.fee_back,
            true,
        ));
    }
    if rows.is_empty() {
        return None;
    }
    rows.sort();
    let next = date.next_day().unwrap_or(date);
    let period = format!(
        "#起始日期：[{} 00:00:00]   终止日期：[{} 00:00:00]",
        chinese(date),
        chinese(next)
    );
    let exported = format!("#导出时间：[{} 08:53:13]", chinese(next));
    let (trades, refunds) = (
        rows.iter().filter(|r| !r.4).count(),
        rows.iter().filter(|r| r.4).count(),
    );
    let mut detail = vec![
        "#支付宝业务明细查询".to_owned(),
        format!("#账号：[{pid}0156]"),
        period.clone(),
        format!("#{RULE}业务明细列表{RULE}"),
        HEADER.to_owned(),
    ];
    detail.extend(rows.iter().map(|r| r.1.clone()));
    detail.push(format!("#{RULE}业务明细列表结束{RULE}"));
    detail.push(format!("#交易合计：{trades}笔，退款合计：{refunds}笔"));
    detail.push(exported.clone());
    let amount: i64 = rows.iter().map(|r| r.2).sum();
    let fees: i64 = rows.iter().map(|r| r.3).sum();
    let summary = [
        "#支付宝业务汇总查询".to_owned(),
        format!("#账号：[{pid}0156]"),
        period,
        format!("#{RULE}业务汇总列表{RULE}"),
        "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）".to_owned(),
        format!(
            ",,{trades},{refunds},{},{},0.00,0.00,0.00,{},0.00,{}",
            yuan(amount),
            yuan(amount),
            yuan(fees),
            yuan(amount + fees)
        ),
        format!("#{RULE}业务汇总列表结束{RULE}"),
        exported,
    ];
    Some((detail.join("\r\n") + "\r\n", summary.join("\r\n") + "\r\n"))
}

/// A zip of `entries` (name, contents), deflated, names as given (GBK bytes, no UTF-8 flag).
fn zip(entries: &[renji_shared::payments::alipay::bill::ZipEntry]) -> Vec<u8> {
    // 2026-11-29 08:53:13 in MS-DOS form.
    let (dos_time, dos_date): (u16, u16) = (
        (8 << 11) | (53 << 5) | (13 / 2),
        ((2026 - 1980) << 9) | (11 << 5) | 29,
    );
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, contents) in entries {
        let packed = miniz_oxide::deflate::compress_to_vec(contents, 6);
        let crc = renji_shared::payments::alipay::bill::crc32(contents);
        let offset = out.len() as u32;
        let sizes = |v: &mut Vec<u8>| {
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&(packed.len() as u32).to_le_bytes());
            v.extend_from_slice(&(contents.len() as u32).to_le_bytes());
            v.extend_from_slice(&(name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for v in [20u16, 0, 8, dos_time, dos_date] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        sizes(&mut out);
        out.extend_from_slice(name);
        out.extend_from_slice(&packed);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        for v in [20u16, 20, 0, 8, dos_time, dos_date] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        sizes(&mut central);
        for v in [0u16, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let at = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    let n = entries.len() as u16;
    for v in [0u16, 0, n, n] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn gbk(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}

/// `alipay.data.dataservice.bill.downloadurl.query`.
pub(super) fn answer(state: &State, biz: &serde_json::Map<String, Value>) -> Value {
    let get = |k: &str| biz.get(k).and_then(Value::as_str).unwrap_or("");
    if get("bill_type") != "trade" {
        return failure(
            "40002",
            "isv.invalid_arguments",
            "the sandbox serves bill_type trade only",
        );
    }
    let Some(date) = parse_date(get("bill_date")) else {
        return failure(
            "40002",
            "isv.invalid_arguments",
            "bill_date must be yyyy-MM-dd",
        );
    };
    if csvs(state, date).is_none() {
        return failure("40004", "isp.bill_not_exist", "账单不存在");
    }
    let day = compact(date);
    success(json!({
        "bill_download_url": format!(
            "{}{DOWNLOAD_PATH}?bizType=trade&userId={}&fileType=csv.zip&bizDates={day}&downloadFileName={}_{day}.csv.zip",
            state.base, state.app.seller_id, state.app.seller_id
        ),
    }))
}

/// `GET /downloadBillFile.resource?bizDates=yyyyMMdd`: the day's zip.
pub(super) fn download(state: &State, query: Option<&str>) -> HttpResponse {
    let day = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "bizDates")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let date = (day.len() == 8)
        .then(|| parse_date(&format!("{}-{}-{}", &day[..4], &day[4..6], &day[6..])))
        .flatten();
    let Some((detail, summary)) = date.and_then(|d| csvs(state, d)) else {
        return http_server::json(404, &json!({"error": "no such bill"}));
    };
    let pid = &state.app.seller_id;
    let body = zip(&[
        (gbk(&format!("{pid}_{day}_业务明细.csv")), gbk(&detail)),
        (
            gbk(&format!("{pid}_{day}_业务明细(汇总).csv")),
            gbk(&summary),
        ),
    ]);
    hyper::Response::builder()
        .status(200)
        .header("content-type", "application/zip")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap_or_default()
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

/// A trade's fee when it is paid (the rate of the moment).
pub(super) fn on_paid(state: &State, trade: &mut super::Trade, now: OffsetDateTime) {
    let bps = state.fee_bps.lock().map(|b| *b).unwrap_or_default();
    trade.paid_time = Some(now);
    trade.fee = fee_of(trade.total, bps);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The zip the stand-in writes reads back with the adapter's reader (and carries its names
    /// in GBK).
    #[test]
    fn the_zip_reads_back() {
        let entries = vec![
            (
                gbk("2088_20261128_业务明细.csv"),
                gbk("#支付宝业务明细查询\r\n"),
            ),
            (gbk("2088_20261128_业务明细(汇总).csv"), gbk("#汇总\r\n")),
        ];
        let packed = zip(&entries);
        assert_eq!(
            renji_shared::payments::alipay::bill::unzip(&packed).unwrap(),
            entries
        );
        assert_eq!(fee_back(fee_of(333, 100), 333, 333, 0), 3);
    }
}
