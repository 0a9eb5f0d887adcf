"""Writes the Alipay trade bill fixture with Python's zipfile (deflated), names and CSVs in GBK,
laid out as Alipay's bill zip: an independent implementation of what the adapter unpacks."""
import zipfile

PID, DAY = "20881234567890120156", "20261128"
HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
          "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,"
          "券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


def row(trade_no, order_no, kind, created, finished, amount, refund_no, fee):
    return ",".join([
        trade_no + "\t", order_no + "\t", kind + "\t", "婚礼跟拍", created, finished,
        "\t", "\t", "\t", "\t", "*三(zha***@example.com)\t", amount, amount,
        "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00\t", "0.00",
        (refund_no + "\t") if refund_no else "\t", fee, "0.00", ""])


detail = "\r\n".join([
    "#支付宝业务明细查询",
    f"#账号：[{PID}]",
    "#起始日期：[2026年11月28日 00:00:00]   终止日期：[2026年11月29日 00:00:00]",
    "#-----------------------------------------业务明细列表----------------------------------------",
    HEADER,
    row("2026112822001400000000000001", "o01JDXK7Q4E8M2V6T9N3B5C", "交易",
        "2026-11-28 10:00:00", "2026-11-28 10:00:05", "2880.00", "", "-17.28"),
    row("2026112822001400000000000002", "o01JDXK7Q4E8M2V6T9N3B5D", "交易",
        "2026-11-28 10:30:00", "2026-11-28 10:30:04", "10.00", "", "-0.06"),
    row("2026112822001400000000000001", "o01JDXK7Q4E8M2V6T9N3B5C", "退款",
        "2026-11-28 10:00:00", "2026-11-28 11:00:05", "-100.00", "o01JDXK7Q4E8M2V6T9N3B5CR01", "0.60"),
    "#-----------------------------------------业务明细列表结束------------------------------------",
    "#交易合计：2笔，退款合计：1笔",
    "#导出时间：[2026年11月29日 08:53:13]",
]) + "\r\n"
summary = "\r\n".join([
    "#支付宝业务汇总查询",
    f"#账号：[{PID}]",
    "#起始日期：[2026年11月28日 00:00:00]   终止日期：[2026年11月29日 00:00:00]",
    "#-----------------------------------------业务汇总列表----------------------------------------",
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,"
    "卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）",
    ",,2,1,2790.00,2790.00,0.00,0.00,0.00,-16.74,0.00,2773.26",
    "#-----------------------------------------业务汇总列表结束------------------------------------",
    "#导出时间：[2026年11月29日 08:53:13]",
]) + "\r\n"


class GbkInfo(zipfile.ZipInfo):
    """Names stored as their GBK bytes, without the UTF-8 flag, as Alipay stores them."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("latin-1"), self.flag_bits


with zipfile.ZipFile(f"{PID}_{DAY}.csv.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for name, text in [(f"{PID}_{DAY}_业务明细.csv", detail), (f"{PID}_{DAY}_业务明细(汇总).csv", summary)]:
        info = GbkInfo(name.encode("gbk").decode("latin-1"), (2026, 11, 29, 8, 53, 13))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, text.encode("gbk"))
