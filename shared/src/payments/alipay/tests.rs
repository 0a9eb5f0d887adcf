//! The Alipay adapter checked from the provider's side: signatures verified and made by another
//! RSA implementation (the `rsa` crate), the signing content rebuilt the way the official Java
//! SDK builds it (`AlipaySignature.getSignContent` / `getSignCheckContentV1`) or the python and
//! npm SDKs do (empty values kept), and the gateway against an in-test HTTP server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ::rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use ::rsa::signature::{SignatureEncoding, Signer, Verifier};
use ::rsa::{RsaPrivateKey, RsaPublicKey};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use sha2::Sha256;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::config::AlipayConfig;
use crate::money::Fen;
use crate::payments::rsa::tests::{other_key, pkcs8_pem, spki_pem, test_key};
use crate::payments::rsa::{PrivateKey, PublicKey};
use crate::payments::{
    Channel, Gateway, GatewayError, Notice, Paid, PaymentStart, Provider, RefundRequest,
    RefundState, Trade,
};
use crate::secrets::Cached;

const APP_ID: &str = "2021000000000001";
const SELLER_ID: &str = "2088000000000001";
const NOTIFY_URL: &str = "https://api.renji.example/v1/payments/alipay/notify";

/// The app's key (ours) is `test_key`; Alipay's is `other_key`.
fn app_key() -> &'static RsaPrivateKey {
    test_key()
}

pub(crate) fn alipay_key() -> &'static RsaPrivateKey {
    other_key()
}

fn config(gateway: &str) -> AlipayConfig {
    AlipayConfig {
        app_id: APP_ID.into(),
        app_private_key: None,
        public_keys: vec![spki_pem(alipay_key())],
        seller_id: Some(SELLER_ID.into()),
        gateway: gateway.into(),
        notify_url: NOTIFY_URL.into(),
    }
}

pub(crate) fn gateway(url: &str) -> AlipayGateway {
    let key = PrivateKey::from_pem(&pkcs8_pem(app_key())).unwrap();
    AlipayGateway::with_key(
        &config(url),
        Cached::fixed("ALIPAY_APP_PRIVATE_KEY", key),
        vec![PublicKey::from_pem(&spki_pem(alipay_key())).unwrap()],
    )
    .unwrap()
}

fn start(channel: Channel) -> PaymentStart {
    PaymentStart {
        channel,
        order_no: "01JDQ8Z6W3K4M5N6P7Q8R9S0".into(),
        description: "上门保洁 & 收纳 = 2h +1".into(),
        amount: Fen::from_fen(12_345),
        expires_at: datetime!(2026-11-29 16:30:05 UTC),
        payer_openid: None,
        prepay_id: None,
    }
}

/// A form's fields, decoded once.
fn decode(form: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(form.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The Java SDK's content: sorted, `sign` (and for notifications `sign_type`) removed, empty
/// values skipped unless `keep_empty` (python and npm SDKs).
fn java_content(fields: &BTreeMap<String, String>, drop: &[&str], keep_empty: bool) -> String {
    fields
        .iter()
        .filter(|(k, v)| !drop.contains(&k.as_str()) && (keep_empty || !v.is_empty()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether `fields`' `sign` verifies, by the `rsa` crate, with `key`'s public half.
fn verifies(fields: &BTreeMap<String, String>, key: &RsaPrivateKey) -> bool {
    let content = java_content(fields, &["sign"], false);
    let sig = STANDARD.decode(&fields["sign"]).unwrap();
    let verifier = VerifyingKey::<Sha256>::new(RsaPublicKey::from(key));
    verifier
        .verify(
            content.as_bytes(),
            &Signature::try_from(sig.as_slice()).unwrap(),
        )
        .is_ok()
}

fn rsa_sign(key: &RsaPrivateKey, content: &str) -> String {
    let signer = SigningKey::<Sha256>::new(key.clone());
    STANDARD.encode(signer.sign(content.as_bytes()).to_vec())
}

pub(crate) fn check_common(fields: &BTreeMap<String, String>, method: &str) {
    assert_eq!(fields["app_id"], APP_ID);
    assert_eq!(fields["method"], method);
    assert_eq!(fields["format"], "JSON");
    assert_eq!(fields["charset"], "utf-8");
    assert_eq!(fields["sign_type"], "RSA2");
    assert_eq!(fields["version"], "1.0");
    let notify_url = fields.get("notify_url").map(String::as_str);
    match method.ends_with(".pay") {
        true => assert_eq!(notify_url, Some(NOTIFY_URL)),
        false => assert_eq!(notify_url, None),
    }
    // Beijing time, within a minute of now.
    let ts = &fields["timestamp"];
    let at = time::PrimitiveDateTime::parse(
        ts,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .unwrap()
    .assume_offset(time::macros::offset!(+8));
    assert!(
        (time::OffsetDateTime::now_utc() - at).abs() < time::Duration::minutes(1),
        "{ts}"
    );
}

pub(crate) fn biz(fields: &BTreeMap<String, String>) -> Value {
    serde_json::from_str(&fields["biz_content"]).unwrap()
}

#[tokio::test]
async fn the_app_order_string_verifies_with_another_implementation() {
    let started = gateway("https://openapi.alipay.com/gateway.do")
        .start(&start(Channel::Alipay))
        .await
        .unwrap();
    let order_string = started.client["order_string"].as_str().unwrap();
    assert_eq!(started.prepay_id, None);
    // The values are URL-encoded: no raw space, `&` or `=` inside a value.
    assert!(!order_string.contains(' ') && !order_string.contains('{'));
    let fields = decode(order_string);
    assert!(verifies(&fields, app_key()));
    check_common(&fields, "alipay.trade.app.pay");
    let biz = biz(&fields);
    assert_eq!(biz["out_trade_no"], "01JDQ8Z6W3K4M5N6P7Q8R9S0");
    assert_eq!(biz["total_amount"], "123.45");
    assert_eq!(biz["subject"], "上门保洁 & 收纳 = 2h +1");
    assert_eq!(biz["product_code"], "QUICK_MSECURITY_PAY");
    assert_eq!(biz["time_expire"], "2026-11-30 00:30:05");
    assert_eq!(biz["extend_params"]["royalty_freeze"], "true");

    // Any change to a signed value breaks the signature; another key's does not verify.
    let mut tampered = fields.clone();
    tampered.insert(
        "biz_content".into(),
        fields["biz_content"].replace("123.45", "0.01"),
    );
    assert!(!verifies(&tampered, app_key()));
    assert!(!verifies(&fields, alipay_key()));
}

#[tokio::test]
async fn the_wap_url_is_signed_on_the_gateway() {
    let gateway_url = "https://openapi.alipay.com/gateway.do";
    let started = gateway(gateway_url)
        .start(&start(Channel::AlipayWap))
        .await
        .unwrap();
    let url = started.client["url"].as_str().unwrap();
    let query = url.strip_prefix(&format!("{gateway_url}?")).unwrap();
    let fields = decode(query);
    assert!(verifies(&fields, app_key()));
    check_common(&fields, "alipay.trade.wap.pay");
    let biz = biz(&fields);
    assert_eq!(biz["product_code"], "QUICK_WAP_WAY");
    assert_eq!(biz["total_amount"], "123.45");
    assert_eq!(biz["extend_params"]["royalty_freeze"], "true");

    // A gateway URL with a query already gets the parameters after `&`.
    let started = gateway("https://openapi.alipay.com/gateway.do?charset=utf-8")
        .start(&start(Channel::AlipayWap))
        .await
        .unwrap();
    assert!(started.client["url"]
        .as_str()
        .unwrap()
        .starts_with("https://openapi.alipay.com/gateway.do?charset=utf-8&app_id="));
}

#[tokio::test]
async fn subjects_are_cut_to_256_characters_and_amounts_are_exact() {
    let mut long = start(Channel::Alipay);
    long.description = "支".repeat(300);
    long.amount = Fen::from_fen(10);
    let started = gateway("https://openapi.alipay.com/gateway.do")
        .start(&long)
        .await
        .unwrap();
    let fields = decode(started.client["order_string"].as_str().unwrap());
    let biz = biz(&fields);
    assert_eq!(biz["subject"].as_str().unwrap().chars().count(), 256);
    assert_eq!(biz["total_amount"], "0.10");
    assert!(verifies(&fields, app_key()));
}

#[tokio::test]
async fn without_a_public_base_url_no_notify_url_is_sent() {
    let mut config = config("https://openapi.alipay.com/gateway.do");
    config.notify_url = "/v1/payments/alipay/notify".into();
    let key = PrivateKey::from_pem(&pkcs8_pem(app_key())).unwrap();
    let gateway = AlipayGateway::with_key(
        &config,
        Cached::fixed("ALIPAY_APP_PRIVATE_KEY", key),
        vec![],
    )
    .unwrap();
    let started = gateway.start(&start(Channel::Alipay)).await.unwrap();
    let fields = decode(started.client["order_string"].as_str().unwrap());
    assert!(!fields.contains_key("notify_url"));
    assert!(verifies(&fields, app_key()));
}

// ---- notifications ----

fn verifier() -> NotifyVerifier {
    NotifyVerifier::from_config(&config("https://openapi.alipay.com/gateway.do"))
        .unwrap()
        .unwrap()
}

fn paid_fields() -> BTreeMap<String, String> {
    [
        ("notify_time", "2026-11-30 00:31:00"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", "ac05099524730693a8b330c5ecf72da9786"),
        ("app_id", APP_ID),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("sign_type", "RSA2"),
        ("trade_no", "2026113022001400000000000001"),
        ("out_trade_no", "01JDQ8Z6W3K4M5N6P7Q8R9S0"),
        (
            "buyer_open_id",
            "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5",
        ),
        ("seller_id", SELLER_ID),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", "123.45"),
        ("receipt_amount", "123.45"),
        ("buyer_pay_amount", "123.45"),
        ("subject", "上门保洁 & 收纳 = 2h +1"),
        ("gmt_create", "2026-11-30 00:30:55"),
        ("gmt_payment", "2026-11-30 00:30:59"),
        // Empty: the two SDK families sign differently around it.
        ("passback_params", ""),
        ("body", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A notification body as Alipay sends it: signed over the content of `keep_empty`'s form,
/// with `key`, then form-encoded.
fn notification(
    fields: &BTreeMap<String, String>,
    key: &RsaPrivateKey,
    keep_empty: bool,
) -> Vec<u8> {
    let sign = rsa_sign(
        key,
        &java_content(fields, &["sign", "sign_type"], keep_empty),
    );
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    form.append_pair("sign", &sign);
    form.finish().into_bytes()
}

fn expected_paid() -> Notice {
    Notice::Paid {
        provider: Provider::Alipay,
        order_no: "01JDQ8Z6W3K4M5N6P7Q8R9S0".into(),
        paid: Paid {
            transaction_id: "2026113022001400000000000001".into(),
            amount: Fen::from_fen(12_345),
            paid_at: Some("2026-11-29T16:30:59Z".into()),
        },
    }
}

#[test]
fn notifications_in_either_empty_field_form_verify() {
    let verifier = verifier();
    for keep_empty in [false, true] {
        let body = notification(&paid_fields(), alipay_key(), keep_empty);
        assert_eq!(verifier.verify(&body), Ok(expected_paid()), "{keep_empty}");
    }
    // TRADE_FINISHED is paid too; with no empty field there is one form only.
    let mut fields = paid_fields();
    fields.insert("trade_status".into(), "TRADE_FINISHED".into());
    fields.retain(|_, v| !v.is_empty());
    assert_eq!(
        verifier.verify(&notification(&fields, alipay_key(), false)),
        Ok(expected_paid())
    );
}

#[test]
fn any_one_configured_key_verifies() {
    let mut config = config("https://openapi.alipay.com/gateway.do");
    // A rotation: the new key listed beside the old one, as bare base64 (Alipay's console form).
    let bare: String = spki_pem(app_key())
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    config.public_keys.push(bare);
    let verifier = NotifyVerifier::from_config(&config).unwrap().unwrap();
    for key in [alipay_key(), app_key()] {
        assert_eq!(
            verifier.verify(&notification(&paid_fields(), key, false)),
            Ok(expected_paid())
        );
    }
}

#[test]
fn bad_notifications_are_rejected_without_echoing_them() {
    let verifier = verifier();
    let signed = |f: &BTreeMap<String, String>| notification(f, alipay_key(), false);
    let with = |k: &str, v: &str| {
        let mut f = paid_fields();
        f.insert(k.into(), v.into());
        f
    };
    let without = |k: &str| {
        let mut f = paid_fields();
        f.remove(k);
        f
    };
    let good = String::from_utf8(signed(&paid_fields())).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "tampered amount",
            good.replace("total_amount=123.45", "total_amount=1.00")
                .into_bytes(),
        ),
        (
            "tampered order",
            good.replace("01JDQ8Z6W3K4M5N6P7Q8R9S0", "01JDQ8Z6W3K4M5N6P7Q8R9S1")
                .into_bytes(),
        ),
        ("a field added", format!("{good}&extra=1").into_bytes()),
        ("wrong key", notification(&paid_fields(), app_key(), false)),
        (
            "missing sign",
            good.split('&')
                .filter(|p| !p.starts_with("sign="))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes(),
        ),
        (
            "empty sign",
            format!("{}&sign=", good.split("&sign=").next().unwrap()).into_bytes(),
        ),
        (
            "sign not base64",
            format!("{}&sign=%%%", good.split("&sign=").next().unwrap()).into_bytes(),
        ),
        (
            "repeated field",
            format!("{good}&trade_status=TRADE_CLOSED").into_bytes(),
        ),
        ("wrong app_id", signed(&with("app_id", "2021000000000002"))),
        (
            "wrong seller_id",
            signed(&with("seller_id", "2088000000000002")),
        ),
        ("no seller_id", signed(&without("seller_id"))),
        ("no out_trade_no", signed(&without("out_trade_no"))),
        ("no trade_no", signed(&without("trade_no"))),
        ("sign_type RSA", signed(&with("sign_type", "RSA"))),
        ("signed with sign_type in the content", {
            let f = paid_fields();
            let sign = rsa_sign(alipay_key(), &java_content(&f, &["sign"], false));
            format!(
                "{}&sign={}",
                String::from_utf8(signed(&f))
                    .unwrap()
                    .split("&sign=")
                    .next()
                    .unwrap(),
                url::form_urlencoded::byte_serialize(sign.as_bytes()).collect::<String>()
            )
            .into_bytes()
        }),
        ("", Vec::new()),
    ];
    for amount in [
        "1.234",
        "1e2",
        "-0.01",
        " 123.45",
        "",
        "１２３.４５",
        "123.450",
    ] {
        cases.push(("bad total_amount", signed(&with("total_amount", amount))));
    }
    for (what, body) in cases {
        match verifier.verify(&body) {
            Err(rejected) => {
                assert!(rejected.reason.len() < 60, "{what}: {}", rejected.reason);
                for secret in ["01JDQ8Z6W3K4M5N6P7Q8R9S0", "2088", "123.45", "sign="] {
                    assert!(
                        !rejected.reason.contains(secret),
                        "{what}: {}",
                        rejected.reason
                    );
                }
            }
            Ok(notice) => panic!("{what}: accepted {notice:?}"),
        }
    }
}

#[test]
fn a_seller_id_is_checked_only_when_configured() {
    let mut config = config("https://openapi.alipay.com/gateway.do");
    config.seller_id = None;
    let verifier = NotifyVerifier::from_config(&config).unwrap().unwrap();
    let mut fields = paid_fields();
    fields.insert("seller_id".into(), "2088000000000009".into());
    assert_eq!(
        verifier.verify(&notification(&fields, alipay_key(), false)),
        Ok(expected_paid())
    );
}

#[test]
fn unpaid_statuses_and_refunds_are_read() {
    let verifier = verifier();
    for status in ["WAIT_BUYER_PAY", "TRADE_CLOSED"] {
        let mut fields = paid_fields();
        fields.insert("trade_status".into(), status.into());
        fields.remove("gmt_payment");
        assert_eq!(
            verifier.verify(&notification(&fields, alipay_key(), true)),
            Ok(Notice::Other {
                provider: Provider::Alipay,
                order_no: "01JDQ8Z6W3K4M5N6P7Q8R9S0".into(),
                what: status.into(),
            })
        );
    }
    // A refund's notification: the refund request's number and amount, any trade status.
    let mut fields = paid_fields();
    fields.insert("out_biz_no".into(), "01JDQ8Z6W3K4M5N6P7Q8R9S0R01".into());
    fields.insert("refund_fee".into(), "23.45".into());
    fields.insert("gmt_refund".into(), "2026-12-01 10:00:00.123".into());
    assert_eq!(
        verifier.verify(&notification(&fields, alipay_key(), false)),
        Ok(Notice::Refund {
            provider: Provider::Alipay,
            order_no: "01JDQ8Z6W3K4M5N6P7Q8R9S0".into(),
            out_refund_no: "01JDQ8Z6W3K4M5N6P7Q8R9S0R01".into(),
            paid_total: Some(Fen::parse_yuan(&paid_fields()["total_amount"]).unwrap()),
            state: RefundState::Succeeded {
                refund_id: None,
                amount: None
            },
        })
    );
}

#[test]
fn values_are_decoded_once_before_verifying() {
    // passback_params arrives percent-encoded inside the form value (the merchant encoded it);
    // it is signed as Alipay holds it, decoded once only (alipay-sdk-nodejs-all#45).
    let mut fields = paid_fields();
    fields.insert(
        "passback_params".into(),
        "merchantBizType%3d3C%26no%3d1".into(),
    );
    fields.insert("subject".into(), "a+b c%20".into());
    assert_eq!(
        verifier().verify(&notification(&fields, alipay_key(), false)),
        Ok(expected_paid())
    );
}

// ---- the gateway against an in-test Alipay ----

/// A stand-in gateway: answers each connection with the next of `answers` (the last one
/// repeats) and keeps the requests' bodies.
pub(crate) async fn serve(answers: Vec<String>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gateway.do", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answers[n.min(answers.len() - 1)].clone();
            n += 1;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let body = loop {
                let read = stream.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..read]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length || read == 0 {
                        break body.to_owned();
                    }
                }
                if read == 0 {
                    break String::new();
                }
            };
            kept.lock().unwrap().push(body);
            let (status, body) = answer.split_once('\n').unwrap();
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/html;charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (url, seen)
}

/// An answer to `method` as Alipay writes it: the response object's text, then `sign` over that
/// exact text by `key`.
pub(crate) fn answer(method: &str, object: &str, key: &RsaPrivateKey) -> String {
    let sign = rsa_sign(key, object);
    format!(
        "200 OK\n{{\"{}_response\":{object},\"sign\":\"{sign}\"}}",
        method.replace('.', "_")
    )
}

pub(crate) fn request_fields(body: &str) -> BTreeMap<String, String> {
    let fields = decode(body);
    assert!(verifies(&fields, app_key()), "our request's signature");
    fields
}

#[tokio::test]
async fn a_query_is_signed_and_its_signed_answer_believed() {
    let object = r#"{"code":"10000","msg":"Success","buyer_logon_id":"tes***@x.com","out_trade_no":"01JDQ8Z6W3K4M5N6P7Q8R9S0","send_pay_date":"2026-11-30 00:30:59","total_amount":"123.45","trade_no":"2026113022001400000000000001","trade_status":"TRADE_SUCCESS","subject":"a \"}\" b \u4e2d"}"#;
    let (url, seen) = serve(vec![answer("alipay.trade.query", object, alipay_key())]).await;
    let trade = gateway(&url)
        .query("01JDQ8Z6W3K4M5N6P7Q8R9S0")
        .await
        .unwrap();
    let Trade::Paid(paid) = trade else {
        panic!("{trade:?}")
    };
    assert_eq!(
        paid,
        match expected_paid() {
            Notice::Paid { paid, .. } => paid,
            _ => unreachable!(),
        }
    );
    let fields = request_fields(&seen.lock().unwrap()[0]);
    check_common(&fields, "alipay.trade.query");
    assert_eq!(biz(&fields)["out_trade_no"], "01JDQ8Z6W3K4M5N6P7Q8R9S0");
}

#[tokio::test]
async fn query_states_map_to_trades() {
    for (object, expected) in [
        (
            r#"{"code":"10000","msg":"Success","trade_status":"WAIT_BUYER_PAY","total_amount":"1.00"}"#,
            Ok(Trade::Open),
        ),
        (
            r#"{"code":"10000","msg":"Success","trade_status":"TRADE_CLOSED","total_amount":"1.00"}"#,
            Ok(Trade::Closed),
        ),
        (
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#,
            Ok(Trade::NotFound),
        ),
        (
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.INVALID_PARAMETER","sub_msg":"参数无效"}"#,
            Err(GatewayError::Refused {
                code: "ACQ.INVALID_PARAMETER".into(),
                message: "参数无效".into(),
            }),
        ),
    ] {
        let (url, _) = serve(vec![answer("alipay.trade.query", object, alipay_key())]).await;
        assert_eq!(gateway(&url).query("o").await, expected, "{object}");
    }
    for busy in [
        r#"{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}"#,
        r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SYSTEM_ERROR"}"#,
        r#"{"code":"10000","msg":"Success","trade_status":"TRADE_SUCCESS","total_amount":"1.234","trade_no":"t"}"#,
        r#"{"code":"10000","msg":"Success","trade_status":"SOMETHING_NEW"}"#,
    ] {
        let (url, _) = serve(vec![answer("alipay.trade.query", busy, alipay_key())]).await;
        assert!(
            matches!(
                gateway(&url).query("o").await,
                Err(GatewayError::Unavailable(_))
            ),
            "{busy}"
        );
    }
}

#[tokio::test]
async fn answers_not_signed_by_alipay_are_not_believed() {
    let object = r#"{"code":"10000","msg":"Success","trade_status":"TRADE_SUCCESS","total_amount":"123.45","trade_no":"t"}"#;
    let good = answer("alipay.trade.query", object, alipay_key());
    let bad_answers = [
        // Signed by another key.
        answer("alipay.trade.query", object, app_key()),
        // Altered after signing.
        good.replace("123.45", "0.01"),
        // Re-serialised (a space added): the signature covers the bytes.
        good.replace("\"code\":\"10000\"", "\"code\": \"10000\""),
        // No signature.
        format!("200 OK\n{{\"alipay_trade_query_response\":{object}}}"),
        // The gateway's own error.
        "200 OK\n{\"error_response\":{\"code\":\"40002\",\"msg\":\"Invalid Arguments\",\"sub_code\":\"isv.invalid-signature\"},\"sign\":\"\"}".into(),
        // Another method's answer.
        answer("alipay.trade.close", object, alipay_key()),
        "200 OK\n<html>busy</html>".into(),
        "502 Bad Gateway\n".into(),
    ];
    for bad in bad_answers {
        let (url, _) = serve(vec![bad.clone()]).await;
        match gateway(&url).query("o").await {
            Err(GatewayError::Unavailable(why)) => {
                assert!(!why.contains("123.45") && !why.contains("sign\""), "{why}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // The unsigned refusal is named for the operator, still not believed.
    let (url, _) = serve(vec![
        "200 OK\n{\"alipay_trade_query_response\":{\"code\":\"40002\",\"msg\":\"Invalid Arguments\",\"sub_code\":\"isv.invalid-app-id\"}}".into(),
    ])
    .await;
    match gateway(&url).query("o").await {
        Err(GatewayError::Unavailable(why)) => assert!(why.contains("isv.invalid-app-id"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn escaped_slashes_verify_either_way() {
    // Alipay may escape `/` in its JSON; the Java SDK accepts a signature over either text.
    let object = r#"{"code":"10000","msg":"Success","trade_status":"WAIT_BUYER_PAY","qr_code":"https:\/\/qr.alipay.com\/x"}"#;
    let unescaped = object.replace("\\/", "/");
    for signed_text in [object.to_owned(), unescaped] {
        let sign = rsa_sign(alipay_key(), &signed_text);
        let body =
            format!("200 OK\n{{\"alipay_trade_query_response\":{object},\"sign\":\"{sign}\"}}");
        let (url, _) = serve(vec![body]).await;
        assert_eq!(gateway(&url).query("o").await, Ok(Trade::Open));
    }
}

#[tokio::test]
async fn closing_an_unknown_or_no_longer_open_trade_is_no_error() {
    for (object, expected) in [
        (
            r#"{"code":"10000","msg":"Success","out_trade_no":"o","trade_no":"t"}"#,
            Ok(()),
        ),
        (
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#,
            Ok(()),
        ),
        // Paid (or closed) meanwhile: not closed, and the caller's query finds out.
        (
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_STATUS_ERROR","sub_msg":"交易状态不合法"}"#,
            Ok(()),
        ),
        (
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.INVALID_PARAMETER","sub_msg":"参数无效"}"#,
            Err(GatewayError::Refused {
                code: "ACQ.INVALID_PARAMETER".into(),
                message: "参数无效".into(),
            }),
        ),
    ] {
        let (url, seen) = serve(vec![answer("alipay.trade.close", object, alipay_key())]).await;
        assert_eq!(
            gateway(&url).close("01JDQ8Z6W3K4M5N6P7Q8R9S0").await,
            expected
        );
        let fields = request_fields(&seen.lock().unwrap()[0]);
        assert_eq!(fields["method"], "alipay.trade.close");
        assert_eq!(biz(&fields)["out_trade_no"], "01JDQ8Z6W3K4M5N6P7Q8R9S0");
    }
}

fn refund_request() -> RefundRequest {
    RefundRequest {
        order_no: "01JDQ8Z6W3K4M5N6P7Q8R9S0".into(),
        out_refund_no: "01JDQ8Z6W3K4M5N6P7Q8R9S0R01".into(),
        amount: Fen::from_fen(2_345),
        total: Fen::from_fen(12_345),
        refunded_before: Fen::from_fen(0),
        reason: "卖家拒单".into(),
        royalty_back: None,
    }
}

#[tokio::test]
async fn refunds_that_move_money_succeed_at_once() {
    let object = r#"{"code":"10000","msg":"Success","fund_change":"Y","refund_fee":"23.45","out_trade_no":"01JDQ8Z6W3K4M5N6P7Q8R9S0","trade_no":"t"}"#;
    let (url, seen) = serve(vec![answer("alipay.trade.refund", object, alipay_key())]).await;
    assert_eq!(
        gateway(&url).refund(&refund_request()).await,
        Ok(RefundState::Succeeded {
            refund_id: None,
            amount: Some(Fen::from_fen(2_345))
        })
    );
    let fields = request_fields(&seen.lock().unwrap()[0]);
    check_common(&fields, "alipay.trade.refund");
    let biz = biz(&fields);
    assert_eq!(biz["out_trade_no"], "01JDQ8Z6W3K4M5N6P7Q8R9S0");
    assert_eq!(biz["refund_amount"], "23.45");
    assert_eq!(biz["out_request_no"], "01JDQ8Z6W3K4M5N6P7Q8R9S0R01");
    assert_eq!(biz["refund_reason"], "卖家拒单");
}

#[tokio::test]
async fn refunds_without_fund_change_ask_the_refund_query() {
    let refund = r#"{"code":"10000","msg":"Success","fund_change":"N","refund_fee":"23.45"}"#;
    for (query, expected) in [
        (
            r#"{"code":"10000","msg":"Success","out_request_no":"01JDQ8Z6W3K4M5N6P7Q8R9S0R01","refund_amount":"23.45","refund_status":"REFUND_SUCCESS"}"#,
            RefundState::Succeeded {
                refund_id: None,
                amount: Some(Fen::from_fen(2_345)),
            },
        ),
        (
            r#"{"code":"10000","msg":"Success","out_request_no":"01JDQ8Z6W3K4M5N6P7Q8R9S0R01","refund_amount":"23.45"}"#,
            RefundState::Processing,
        ),
        // Accepted a moment ago and not found yet: still in progress.
        (
            r#"{"code":"10000","msg":"Success"}"#,
            RefundState::Processing,
        ),
    ] {
        let (url, seen) = serve(vec![
            answer("alipay.trade.refund", refund, alipay_key()),
            answer("alipay.trade.fastpay.refund.query", query, alipay_key()),
        ])
        .await;
        assert_eq!(gateway(&url).refund(&refund_request()).await, Ok(expected));
        let seen = seen.lock().unwrap();
        let fields = request_fields(&seen[1]);
        assert_eq!(fields["method"], "alipay.trade.fastpay.refund.query");
        assert_eq!(
            biz(&fields)["out_request_no"],
            "01JDQ8Z6W3K4M5N6P7Q8R9S0R01"
        );
    }
    // A refused refund is the provider's word, with its sub_code.
    let refused = r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.REFUND_AMT_NOT_EQUAL_TOTAL","sub_msg":"退款金额超限"}"#;
    let (url, _) = serve(vec![answer("alipay.trade.refund", refused, alipay_key())]).await;
    assert_eq!(
        gateway(&url).refund(&refund_request()).await,
        Err(GatewayError::Refused {
            code: "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL".into(),
            message: "退款金额超限".into()
        })
    );
}

#[tokio::test]
async fn refund_queries_map_to_refund_states() {
    for (object, expected) in [
        (
            r#"{"code":"10000","msg":"Success","out_request_no":"r","refund_status":"REFUND_SUCCESS"}"#,
            RefundState::Succeeded {
                refund_id: None,
                amount: None,
            },
        ),
        (
            r#"{"code":"10000","msg":"Success","out_request_no":"r"}"#,
            RefundState::Processing,
        ),
        (r#"{"code":"10000","msg":"Success"}"#, RefundState::NotFound),
        (
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST"}"#,
            RefundState::NotFound,
        ),
    ] {
        let (url, _) = serve(vec![answer(
            "alipay.trade.fastpay.refund.query",
            object,
            alipay_key(),
        )])
        .await;
        assert_eq!(
            gateway(&url).refund_query("o", "r").await,
            Ok(expected),
            "{object}"
        );
    }
}

#[tokio::test]
async fn an_answer_over_the_cap_is_unavailable() {
    let object = format!(
        r#"{{"code":"10000","msg":"Success","pad":"{}"}}"#,
        "a".repeat(70_000)
    );
    let (url, _) = serve(vec![answer("alipay.trade.query", &object, alipay_key())]).await;
    assert!(matches!(
        gateway(&url).query("o").await,
        Err(GatewayError::Unavailable(m)) if m.contains("over")
    ));
}

#[test]
fn payments_are_built_from_the_configuration() {
    use crate::config::{Redacted, SecretSetting};
    let secrets = crate::secrets::Secrets::from_env(std::time::Duration::from_secs(60));
    // Only the public key: a notify function (a verifier, no gateway).
    let mut c = config("https://openapi.alipay.com/gateway.do");
    let built = |c: &AlipayConfig| {
        let mut config = crate::config::Config::from_lookup(|name| {
            (name == "RENJI_SESSION_SECRET").then(|| "0123456789abcdef0123456789abcdef".to_owned())
        })
        .unwrap();
        config.alipay = Some(c.clone());
        crate::payments::Payments::from_config(&config, &secrets)
    };
    let payments = built(&c).unwrap();
    assert!(payments.alipay.is_none() && payments.alipay_notify.is_some());
    // With the app private key: the gateway too.
    c.app_private_key = Some(SecretSetting::Value(Redacted(pkcs8_pem(app_key()))));
    let payments = built(&c).unwrap();
    assert!(payments.alipay.is_some() && payments.alipay_notify.is_some());
    // PKCS#1, `\n`-escaped as in an environment variable, is accepted too.
    use ::rsa::pkcs1::EncodeRsaPrivateKey;
    let pkcs1 = app_key()
        .to_pkcs1_pem(::rsa::pkcs8::LineEnding::LF)
        .unwrap()
        .replace('\n', "\\n");
    c.app_private_key = Some(SecretSetting::Value(Redacted(pkcs1)));
    assert!(built(&c).unwrap().alipay.is_some());
    // A stored key is read on first need only: building does not touch Secrets Manager.
    c.app_private_key = Some(SecretSetting::Stored("arn:aws:secretsmanager:x".into()));
    assert!(built(&c).unwrap().alipay.is_some());
    // A bad key is a start-up error that does not show the key.
    c.app_private_key = Some(SecretSetting::Value(Redacted("MIIsecretsecret".into())));
    let e = built(&c).err().unwrap().to_string();
    assert!(
        e.contains("ALIPAY_APP_PRIVATE_KEY") && !e.contains("MIIsecret"),
        "{e}"
    );
    c.app_private_key = None;
    c.public_keys = vec!["not a key".into()];
    assert!(built(&c).is_err());
    // A gateway without Alipay's public key could not check any answer.
    c.public_keys = vec![];
    c.app_private_key = Some(SecretSetting::Value(Redacted(pkcs8_pem(app_key()))));
    assert!(built(&c).is_err());
    c.app_private_key = None;
    let payments = built(&c).unwrap();
    assert!(payments.alipay.is_none() && payments.alipay_notify.is_none());
}

/// A secret store that counts its reads.
struct CountingStore {
    pem: String,
    reads: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl crate::secrets::SecretSource for CountingStore {
    async fn read(
        &self,
        _id: &str,
    ) -> Result<crate::config::Redacted, crate::secrets::SecretError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(crate::config::Redacted(self.pem.clone()))
    }
}

#[tokio::test]
async fn a_refused_signature_makes_the_next_call_read_the_key_again() {
    use crate::config::SecretSetting;
    let refused = "200 OK\n{\"error_response\":{\"code\":\"40002\",\"msg\":\"Invalid Arguments\",\"sub_code\":\"isv.invalid-signature\"},\"sign\":\"\"}".to_owned();
    let open = answer(
        "alipay.trade.query",
        r#"{"code":"10000","msg":"Success","trade_status":"WAIT_BUYER_PAY"}"#,
        alipay_key(),
    );
    for (answer, reads) in [(refused, 3), (open, 1)] {
        let store = Arc::new(CountingStore {
            pem: pkcs8_pem(app_key()),
            reads: Default::default(),
        });
        let secrets =
            crate::secrets::Secrets::new(store.clone(), std::time::Duration::from_secs(3600));
        let (url, _) = serve(vec![answer]).await;
        let mut config = config(&url);
        config.app_private_key = Some(SecretSetting::Stored("arn:alipay-app-key".into()));
        let gateway = AlipayGateway::from_config(&config, &secrets)
            .unwrap()
            .unwrap();
        for _ in 0..3 {
            let _ = gateway.query("o").await;
        }
        assert_eq!(store.reads.load(std::sync::atomic::Ordering::SeqCst), reads);
    }
}
