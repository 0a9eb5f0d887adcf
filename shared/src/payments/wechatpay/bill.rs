//! WeChat Pay's trade bill (`GET /v3/bill/tradebill?bill_date=&bill_type=ALL`, 申请交易账单), read
//! for the daily reconciliation of the provider's fee.
//!
//! Confirmed (see also `client.rs` `bill_file` for the answer and its codes):
//! - the API page (pay.weixin.qq.com/docs/merchant/apis/mini-program-payment/get-trade-bill.html):
//!   bills of the day before are made after 10:00; amounts in yuan; `bill_type` ALL = the day's
//!   successful payments and its refunds in one file; `tar_type` absent = the plain file;
//! - the file's shape, from bills quoted in WxJava's `WxPayBillResultTest` and wechatpay-go's
//!   `TestClientDownloadOriginalTradeBill`: a header row of plain names (交易时间,公众账号ID,商户号,
//!   特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,
//!   代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,
//!   手续费,费率,订单金额,申请退款金额,费率备注), then one row per payment (交易状态 `SUCCESS`) or refund
//!   (`REFUND`, with 商户退款单号 and 退款金额), every field behind a backtick, the fee to five
//!   decimals (`0.04000`); then the summary: a header row 总交易单数,应结订单总金额,退款总金额,
//!   充值券退款总金额,手续费总金额,订单总金额,申请退款总金额 and one backticked row. A refund's fee is
//!   written negative (WxJava's refund bill totals `-0.02000`).
//!
//! Columns are found by name (a column WeChat adds moves nothing). The summary is checked: its
//! count of lines and its fee total must be the rows' (a truncated or garbled file is refused, as a
//! file that fails its hash is).

use crate::payments::{bill_fen, GatewayError, TradeBillKind, TradeBillLine};

fn bad(why: &str) -> GatewayError {
    GatewayError::Unavailable(format!("unreadable trade bill: {why}"))
}

/// A row's fields. A header row is plain names split at commas; a data row has every field
/// behind a backtick, so it is split at `,` + backtick: a comma inside a field (a product name,
/// the attach text) does not cut it.
fn fields(line: &str) -> Vec<&str> {
    let line = line.trim();
    match line.strip_prefix('`') {
        Some(rest) => rest.split(",`").map(str::trim).collect(),
        None => line.split(',').map(str::trim).collect(),
    }
}

/// Reads a trade bill (ALL): each payment and refund row, the summary checked.
pub fn parse_trade_bill(text: &str) -> Result<Vec<TradeBillLine>, GatewayError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = fields(lines.next().ok_or_else(|| bad("empty"))?);
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| bad(name))
    };
    let (order_no, state, refund_no, settled, refunded, fee) = (
        column("商户订单号")?,
        column("交易状态")?,
        column("商户退款单号")?,
        column("应结订单金额")?,
        column("退款金额")?,
        column("手续费")?,
    );
    let mut out = Vec::new();
    let mut summary = None;
    while let Some(line) = lines.next() {
        // Data rows begin with a backtick; the summary's header does not.
        if !line.trim_start().starts_with('`') {
            let names = fields(line);
            let values = fields(lines.next().ok_or_else(|| bad("no summary row"))?);
            summary = Some((names.join(","), values.join(",")));
            break;
        }
        let row = fields(line);
        let get = |i: usize| row.get(i).copied().ok_or_else(|| bad("a short row"));
        let amount = |i: usize| bill_fen(get(i)?).ok_or_else(|| bad("an amount"));
        let fee_fen = amount(fee)?.abs();
        let (kind, amount, fee_fen) = match get(state)? {
            "SUCCESS" => (TradeBillKind::Payment, amount(settled)?, fee_fen),
            "REFUND" => (
                TradeBillKind::Refund {
                    out_refund_no: get(refund_no)?.to_owned(),
                },
                amount(refunded)?,
                -fee_fen,
            ),
            // REVOKED (a payment code trade revoked) and the like: no money, no fee.
            _ => continue,
        };
        if amount < 0 {
            return Err(bad("a negative amount"));
        }
        out.push(TradeBillLine {
            order_no: get(order_no)?.to_owned(),
            kind,
            amount: crate::money::Fen::from_fen(amount),
            fee_fen,
        });
    }
    let (names, values) = summary.ok_or_else(|| bad("no summary"))?;
    let names: Vec<&str> = names.split(',').collect();
    let values: Vec<&str> = values.split(',').collect();
    let total = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get(i))
            .copied()
            .ok_or_else(|| bad(name))
    };
    let count: usize = total("总交易单数")?
        .parse()
        .map_err(|_| bad("总交易单数"))?;
    let fees = bill_fen(total("手续费总金额")?).ok_or_else(|| bad("手续费总金额"))?;
    if count != out.len() || fees != out.iter().map(|l| l.fee_fen).sum::<i64>() {
        return Err(bad("the summary does not add up"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::money::Fen;
    use crate::payments::wechatpay::tests::{
        check_authorization, gateway, signed, stand_in, stand_in_serving, unsigned,
    };
    use crate::payments::Gateway;

    fn sha1_hex(text: &str) -> String {
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn bill_answer(hash: &str) -> serde_json::Value {
        json!({
            "hash_type": "SHA1",
            "hash_value": hash,
            "download_url": "https://api.mch.weixin.qq.com/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA_Cv_isgaUtBzp4QtiozLO",
        })
    }

    /// The gateway asks for the day's ALL bill (signed), then fetches the file with the answer's
    /// token from its own API base, and believes it only when its SHA-1 is the answer's.
    #[tokio::test]
    async fn the_trade_bill_is_asked_signed_downloaded_and_hash_checked() {
        let file = bill("16.68000", "2");
        let (url, mut rx) = stand_in_serving(vec![
            signed(200, bill_answer(&sha1_hex(&file))),
            unsigned(200, &file),
        ])
        .await;
        let lines = gateway(&url)
            .trade_bill("2026-11-28")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].fee_fen, -60);
        let asked = rx.recv().await.unwrap();
        assert_eq!(asked.method, "GET");
        assert_eq!(
            asked.target,
            "/v3/bill/tradebill?bill_date=2026-11-28&bill_type=ALL"
        );
        check_authorization(&asked);
        let fetched = rx.recv().await.unwrap();
        assert_eq!(
            fetched.target,
            "/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA_Cv_isgaUtBzp4QtiozLO"
        );
        check_authorization(&fetched);
        // A file that is not the one hashed: refused (asked again on a later run).
        let (url, _rx) = stand_in_serving(vec![
            signed(200, bill_answer(&sha1_hex(&file))),
            unsigned(200, &file.replace("17.28000", "1.28000")),
        ])
        .await;
        let err = gateway(&url).trade_bill("2026-11-28").await.unwrap_err();
        assert!(
            matches!(&err, GatewayError::Unavailable(why) if why.contains("hash")),
            "{err:?}"
        );
        // An answer whose signature is missing is not believed either.
        let (url, _rx) = stand_in(unsigned(200, &bill_answer(&sha1_hex(&file)).to_string())).await;
        assert!(gateway(&url).trade_bill("2026-11-28").await.is_err());
    }

    /// No trades that day: `NO_STATEMENT_EXIST` (signed) is no bill; a bill still being made is
    /// asked again later.
    #[tokio::test]
    async fn no_statement_is_no_bill_and_a_bill_being_made_is_not_yet() {
        let (url, _rx) = stand_in(signed(
            400,
            json!({"code": "NO_STATEMENT_EXIST", "message": "账单文件不存在"}),
        ))
        .await;
        assert_eq!(gateway(&url).trade_bill("2026-11-28").await.unwrap(), None);
        let (url, _rx) = stand_in(signed(
            400,
            json!({"code": "STATEMENT_CREATING", "message": "账单生成中"}),
        ))
        .await;
        assert!(matches!(
            gateway(&url).trade_bill("2026-11-28").await,
            Err(GatewayError::Unavailable(_))
        ));
        let (url, _rx) = stand_in(signed(
            400,
            json!({"code": "INVALID_REQUEST", "message": "参数错误"}),
        ))
        .await;
        assert!(matches!(
            gateway(&url).trade_bill("2026-13-01").await,
            Err(GatewayError::Refused { .. })
        ));
    }

    const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";

    /// A day of the documented shape: a payment, a refund of it (its fee negative), the summary.
    fn bill(fee_total: &str, count: &str) -> String {
        format!(
            "{HEADER}\n\
`2026-11-28 10:00:00,`wx8888888888888888,`1900000109,`0,`,`4200000925202611284997714292,`o01JDXK7Q4E8M2V6T9N3B5C,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`2880.00,`0.00,`0,`0,`0.00,`0.00,`,`,`婚礼跟拍,`,`17.28000,`0.60%,`2880.00,`0.00,`\n\
`2026-11-28 11:00:00,`wx8888888888888888,`1900000109,`0,`,`4200000925202611284997714292,`o01JDXK7Q4E8M2V6T9N3B5C,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000000000000000000000000,`o01JDXK7Q4E8M2V6T9N3B5CR01,`100.00,`0.00,`ORIGINAL,`SUCCESS,`婚礼跟拍,`,`-0.60000,`0.60%,`0.00,`100.00,`\n\
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n\
`{count},`2880.00,`100.00,`0.00,`{fee_total},`2880.00,`100.00\n"
        )
    }

    #[test]
    fn a_trade_bill_is_read_by_its_header_with_refunds_and_the_summary_checked() {
        let lines = parse_trade_bill(&bill("16.68000", "2")).unwrap();
        assert_eq!(
            lines,
            vec![
                TradeBillLine {
                    order_no: "o01JDXK7Q4E8M2V6T9N3B5C".into(),
                    kind: TradeBillKind::Payment,
                    amount: Fen::from_fen(288_000),
                    fee_fen: 1_728,
                },
                TradeBillLine {
                    order_no: "o01JDXK7Q4E8M2V6T9N3B5C".into(),
                    kind: TradeBillKind::Refund {
                        out_refund_no: "o01JDXK7Q4E8M2V6T9N3B5CR01".into()
                    },
                    amount: Fen::from_fen(10_000),
                    fee_fen: -60,
                },
            ]
        );
        // A BOM and CRLF line ends change nothing.
        let crlf = format!("\u{feff}{}", bill("16.68000", "2").replace('\n', "\r\n"));
        assert_eq!(parse_trade_bill(&crlf).unwrap(), lines);
        // A summary that does not add up, a missing summary, a missing column: refused.
        assert!(parse_trade_bill(&bill("17.28000", "2")).is_err());
        assert!(parse_trade_bill(&bill("16.68000", "3")).is_err());
        let cut: String = bill("16.68000", "2")
            .lines()
            .take(3)
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(parse_trade_bill(&cut).is_err());
        assert!(parse_trade_bill(&bill("16.68000", "2").replace("手续费,", "费用,")).is_err());
        assert!(parse_trade_bill("").is_err());
        // A comma in the product name stays in its field.
        let comma = bill("16.68000", "2").replace("婚礼跟拍", "婚礼,跟拍");
        assert_eq!(parse_trade_bill(&comma).unwrap(), lines);
        // A day with no rows: the header and a zero summary.
        let empty = format!(
            "{HEADER}\n总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n`0,`0.00,`0.00,`0.00,`0.00000,`0.00,`0.00\n"
        );
        assert_eq!(parse_trade_bill(&empty).unwrap(), vec![]);
    }

    /// WxJava's `WxPayBillResultTest` ALL bill, as it quotes it (a real bill with its ids masked).
    #[test]
    fn the_bill_wxjava_quotes_reads() {
        let text = format!(
            "{HEADER}\n\
`2019-07-25 08:35:41,`WWWW,`XXXXXXXX,`0,`,`XXXXXXXXXXXXX,`XXXXXXXXXX,`XXXXXXXXXXX,`JSAPI,`SUCCESS,`PSBC_DEBIT,`CNY,`6.00,`0.00,`0,`0,`0.00,`0.00,`,`,`XXXXXX,`XXXXXXX,`0.04000,`0.60%,`6.00,`0.00,`\n\
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n\
`1,`6.00,`0.00,`0.00,`0.04000,`6.00,`0.00\n"
        );
        let lines = parse_trade_bill(&text).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].amount.get(), lines[0].fee_fen), (600, 4));
    }

    #[test]
    fn bill_amounts_are_fen() {
        for (text, fen) in [
            ("0.04000", Some(4)),
            ("-0.60000", Some(-60)),
            ("17.28", Some(1_728)),
            ("12", Some(1_200)),
            ("0.00500", Some(1)),
            ("-0.00500", Some(-1)),
            ("0.00499", Some(0)),
            ("", None),
            ("1e3", None),
            ("1.", None),
            ("--1", None),
            (".5", None),
        ] {
            assert_eq!(bill_fen(text), fen, "{text}");
        }
    }
}
