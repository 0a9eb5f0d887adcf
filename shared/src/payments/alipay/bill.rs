//! Alipay's trade bill (`alipay.data.dataservice.bill.downloadurl.query`, `bill_type` `trade`),
//! read for the daily reconciliation of the provider's fee.
//!
//! Confirmed:
//! - the method, `{bill_type, bill_date}` (`yyyy-MM-dd`) and the answer's `bill_download_url`
//!   (valid 30 s): alipay-sdk-java-all `v3/docs/AlipayDataDataserviceBillDownloadurlApi.md`
//!   (which also says a day's bill is ready "一般于次日 9 点前"), Alipay's Easy SDK
//!   `AlipayDataDataserviceBillDownloadurlQueryResponse` (`bill_download_url`), LayGit/antsdk and
//!   smartwalle/alipay's response types;
//! - no bill for the day: `sub_code` `isp.bill_not_exist` — what clients match (smartwalle's
//!   `IsBillNotExist`, several reconcilers) and what one SDK reports observing in production,
//!   where Alipay's own OpenAPI spec names `BILL_NOT_EXIST`: both are taken;
//! - the file: a zip of CSVs in GBK — the detail `…_业务明细.csv` and a summary `…_业务明细(汇总).csv`;
//!   the detail opens with `#` lines (#支付宝业务明细查询, #账号, #起始日期, a `#---业务明细列表---`
//!   rule), then the header 支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,
//!   操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,
//!   商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,
//!   服务费（元）,分润（元）,备注, rows whose ids end with a tab, and `#` lines again at the end
//!   (the list's end, the totals, the export time). 业务类型 is 交易 or 退款; a refund's amounts are
//!   negative. Sources: parsers quoting real bills (ibase4j-style `AlipayBillServiceImpl` comments,
//!   a 2019 test bill with masked accounts) — not an official page.
//!
//! Not confirmed: the sign Alipay writes 服务费 with on a payment and on a refund. The line's kind
//! decides it here (a payment costs its fee, a refund gives some back), whatever the file writes.
//! Fields are not quoted by Alipay as far as the samples show; a comma in the product name shifts
//! the row, which is found again by the creation time's column.

use crate::money::Fen;
use crate::payments::{bill_fen, GatewayError, TradeBillKind, TradeBillLine};

/// Entries of a bill zip, and what they may unpack to in all.
const MAX_ENTRIES: usize = 16;
const MAX_UNPACKED_BYTES: usize = 64 * 1024 * 1024;

fn bad(why: &str) -> GatewayError {
    GatewayError::Unavailable(format!("unreadable Alipay bill: {why}"))
}

/// CRC-32 (IEEE 802.3, reflected 0xEDB88320), as zip checks each entry.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for b in data {
        crc = TABLE[((crc ^ u32::from(*b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 2)
        .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// A zip entry: its name's bytes (GBK in Alipay's zips) and its contents.
pub type ZipEntry = (Vec<u8>, Vec<u8>);

/// The entries of a zip archive, read by its central directory: stored or deflated entries, each
/// checked against its size and CRC-32. No ZIP64, no encryption.
pub fn unzip(zip: &[u8]) -> Result<Vec<ZipEntry>, GatewayError> {
    const EOCD: u32 = 0x0605_4b50;
    const CENTRAL: u32 = 0x0201_4b50;
    const LOCAL: u32 = 0x0403_4b50;
    let last = zip.len().checked_sub(22).ok_or_else(|| bad("not a zip"))?;
    let eocd = (last.saturating_sub(65_535)..=last)
        .rev()
        .find(|i| u32_at(zip, *i) == Some(EOCD))
        .ok_or_else(|| bad("not a zip"))?;
    let count = u16_at(zip, eocd + 10).ok_or_else(|| bad("not a zip"))?;
    let mut at = u32_at(zip, eocd + 16).ok_or_else(|| bad("not a zip"))? as usize;
    if count > MAX_ENTRIES {
        return Err(bad("too many entries"));
    }
    let mut out = Vec::new();
    let mut unpacked = 0usize;
    for _ in 0..count {
        let field = |off: usize| u16_at(zip, at + off).ok_or_else(|| bad("a short directory"));
        if u32_at(zip, at) != Some(CENTRAL) {
            return Err(bad("a broken directory"));
        }
        let flags = field(8)?;
        let method = field(10)?;
        let crc = u32_at(zip, at + 16).ok_or_else(|| bad("a short directory"))?;
        let packed = u32_at(zip, at + 20).ok_or_else(|| bad("a short directory"))? as usize;
        let size = u32_at(zip, at + 24).ok_or_else(|| bad("a short directory"))? as usize;
        let (name_len, extra_len, comment_len) = (field(28)?, field(30)?, field(32)?);
        let local = u32_at(zip, at + 42).ok_or_else(|| bad("a short directory"))? as usize;
        let name = zip
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| bad("a short directory"))?
            .to_vec();
        at += 46 + name_len + extra_len + comment_len;
        if flags & 1 != 0 {
            return Err(bad("an encrypted entry"));
        }
        unpacked = unpacked.saturating_add(size);
        if unpacked > MAX_UNPACKED_BYTES {
            return Err(bad("too large"));
        }
        if u32_at(zip, local) != Some(LOCAL) {
            return Err(bad("a broken entry"));
        }
        let start = local
            + 30
            + u16_at(zip, local + 26).ok_or_else(|| bad("a broken entry"))?
            + u16_at(zip, local + 28).ok_or_else(|| bad("a broken entry"))?;
        let data = zip
            .get(start..start + packed)
            .ok_or_else(|| bad("a cut entry"))?;
        let contents = match method {
            0 => data.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, size)
                .map_err(|_| bad("an entry that does not inflate"))?,
            _ => return Err(bad("an entry packed another way")),
        };
        if contents.len() != size || crc32(&contents) != crc {
            return Err(bad("an entry that fails its CRC"));
        }
        out.push((name, contents));
    }
    Ok(out)
}

/// Reads the bill's zip: the detail CSV (the entry whose header names 商户订单号 and 业务类型),
/// decoded from GBK.
pub fn parse_trade_zip(zip: &[u8]) -> Result<Vec<TradeBillLine>, GatewayError> {
    let mut details = Vec::new();
    for (_, contents) in unzip(zip)? {
        let (text, _) = encoding_rs::GBK.decode_without_bom_handling(&contents);
        let header = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        if header.is_some_and(|h| h.contains("商户订单号") && h.contains("业务类型")) {
            details.push(text.into_owned());
        }
    }
    match details.as_slice() {
        [one] => parse_detail(one),
        [] => Err(bad("no detail file")),
        _ => Err(bad("two detail files")),
    }
}

/// `yyyy-MM-dd HH:mm:ss`.
fn is_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Reads the detail CSV (text): its rows of 交易 and 退款 with their 服务费.
pub fn parse_detail(text: &str) -> Result<Vec<TradeBillLine>, GatewayError> {
    let mut lines = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| bad("no header"))?
        .split(',')
        .map(str::trim)
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.starts_with(name))
            .ok_or_else(|| bad(name))
    };
    let (order_no, kind, created, amount, refund_no, fee) = (
        column("商户订单号")?,
        column("业务类型")?,
        column("创建时间")?,
        column("订单金额")?,
        column("退款批次号")?,
        column("服务费")?,
    );
    if [order_no, kind].iter().any(|c| *c >= created) {
        return Err(bad("an unexpected column order"));
    }
    let mut out = Vec::new();
    for line in lines {
        let row: Vec<&str> = line.split(',').map(str::trim).collect();
        // A comma in the product name (before 创建时间) shifts what follows it.
        let extra = row
            .len()
            .checked_sub(header.len())
            .ok_or_else(|| bad("a short row"))?;
        let shift = (0..=extra)
            .find(|s| row.get(created + s).is_some_and(|t| is_time(t)))
            .ok_or_else(|| bad("a row without its creation time"))?;
        let get = |i: usize| {
            let i = if i >= created { i + shift } else { i };
            row.get(i).copied().ok_or_else(|| bad("a short row"))
        };
        let money = |i: usize| bill_fen(get(i)?).ok_or_else(|| bad("an amount"));
        let fee_fen = money(fee)?.abs();
        let (kind, fee_fen) = match get(kind)? {
            "交易" => (TradeBillKind::Payment, fee_fen),
            "退款" => (
                TradeBillKind::Refund {
                    out_refund_no: get(refund_no)?.to_owned(),
                },
                -fee_fen,
            ),
            // Other business types carry no trade of ours.
            _ => continue,
        };
        out.push(TradeBillLine {
            order_no: get(order_no)?.to_owned(),
            kind,
            amount: Fen::from_fen(money(amount)?.abs()),
            fee_fen,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bill zip made with Python's `zipfile` (deflated), its two CSVs and their names in GBK,
    /// laid out as Alipay's: see `testdata/README.md`.
    const FIXTURE: &[u8] = include_bytes!("testdata/20881234567890120156_20261128.csv.zip");

    fn lines() -> Vec<TradeBillLine> {
        vec![
            TradeBillLine {
                order_no: "o01JDXK7Q4E8M2V6T9N3B5C".into(),
                kind: TradeBillKind::Payment,
                amount: Fen::from_fen(288_000),
                fee_fen: 1_728,
            },
            TradeBillLine {
                order_no: "o01JDXK7Q4E8M2V6T9N3B5D".into(),
                kind: TradeBillKind::Payment,
                amount: Fen::from_fen(1_000),
                fee_fen: 6,
            },
            TradeBillLine {
                order_no: "o01JDXK7Q4E8M2V6T9N3B5C".into(),
                kind: TradeBillKind::Refund {
                    out_refund_no: "o01JDXK7Q4E8M2V6T9N3B5CR01".into(),
                },
                amount: Fen::from_fen(10_000),
                fee_fen: -60,
            },
        ]
    }

    #[test]
    fn an_alipay_bill_zip_is_unpacked_and_its_gbk_detail_read() {
        let entries = unzip(FIXTURE).unwrap();
        assert_eq!(entries.len(), 2);
        let names: Vec<String> = entries
            .iter()
            .map(|(n, _)| {
                encoding_rs::GBK
                    .decode_without_bom_handling(n)
                    .0
                    .into_owned()
            })
            .collect();
        assert!(names[0].ends_with("_业务明细.csv"), "{names:?}");
        assert!(names[1].ends_with("_业务明细(汇总).csv"), "{names:?}");
        assert_eq!(parse_trade_zip(FIXTURE).unwrap(), lines());
    }

    #[test]
    fn a_broken_zip_is_refused() {
        assert!(unzip(b"").is_err());
        assert!(unzip(b"PK\x03\x04 not a zip at all, really not").is_err());
        // A flipped byte inside the deflated data: it fails to inflate or its CRC.
        let mut broken = FIXTURE.to_vec();
        broken[80] ^= 0x55;
        assert!(parse_trade_zip(&broken).is_err());
        // Cut short: no directory.
        assert!(parse_trade_zip(&FIXTURE[..FIXTURE.len() - 30]).is_err());
    }

    #[test]
    fn the_detail_is_read_by_its_header_and_a_comma_in_a_name_is_found_again() {
        let text = "#支付宝业务明细查询\n#账号：[20881234567890120156]\n\
#起始日期：[2026年11月28日 00:00:00]   终止日期：[2026年11月29日 00:00:00]\n\
#-----------------------------------------业务明细列表----------------------------------------\n\
支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n\
2026112822001400000000000001\t,o1\t,交易\t,婚礼,跟拍,2026-11-28 10:00:00,2026-11-28 10:00:05,\t,\t,\t,\t,*三(zha***@example.com)\t,10.00,10.00,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,-0.06,0.00,婚礼,跟拍\n\
2026112822001400000000000001\t,o1\t,退款\t,婚礼跟拍,2026-11-28 10:00:00,2026-11-28 11:00:05,\t,\t,\t,\t,*三(zha***@example.com)\t,-10.00,-10.00,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,o1R01\t,0.06,0.00,\n\
#-----------------------------------------业务明细列表结束------------------------------------\n\
#交易合计：1笔，退款合计：1笔\n#导出时间：[2026年11月29日 08:53:13]\n";
        let got = parse_detail(text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].kind.clone(), got[0].amount.get(), got[0].fee_fen),
            (TradeBillKind::Payment, 1_000, 6)
        );
        assert_eq!(
            (got[1].kind.clone(), got[1].amount.get(), got[1].fee_fen),
            (
                TradeBillKind::Refund {
                    out_refund_no: "o1R01".into()
                },
                1_000,
                -6
            )
        );
        assert!(parse_detail("#only comments\n").is_err());
        assert!(parse_detail("支付宝交易号,商户订单号\n1,2\n").is_err());
    }

    #[test]
    fn crc32_is_the_zip_one() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
