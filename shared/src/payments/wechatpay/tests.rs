//! WeChat Pay played by the tests with other libraries than ours: RustCrypto's `rsa` + `sha2`
//! sign notifications and answers and check our signatures, `aes-gcm` encrypts resources.

use std::collections::HashMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::Sha256;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::config::{Redacted, SecretSetting, WechatPayConfig};
use crate::money::Fen;
use crate::payments::rsa::tests::{certificate_pem, other_key, pkcs8_pem, spki_pem, test_key};
use crate::payments::rsa::PrivateKey;
use crate::payments::{
    Channel, Gateway, GatewayError, Notice, Paid, PaymentStart, Provider, RefundRequest,
    RefundState, Trade,
};
use crate::secrets::{SecretError, SecretSource, Secrets};

pub(crate) const MCHID: &str = "1900000109";
pub(crate) const APPID: &str = "wxd678efh567hg6787";
const APIV3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
pub(crate) const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
const CERT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A72";
pub(crate) const MERCHANT_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD********";

fn cert_serial_bytes() -> Vec<u8> {
    (0..CERT_SERIAL.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&CERT_SERIAL[i..i + 2], 16).unwrap())
        .collect()
}

/// WeChat Pay's keys: the public key (`test_key`, by id) and a platform certificate
/// (`other_key`, by serial), configured together as during a switch.
fn config(api_base: &str) -> WechatPayConfig {
    WechatPayConfig {
        mchid: MCHID.into(),
        appid: APPID.into(),
        merchant_serial: Some(MERCHANT_SERIAL.into()),
        merchant_key: None,
        apiv3_key: None,
        public_keys: vec![(PUB_KEY_ID.into(), spki_pem(test_key()))],
        platform_certs: Some(certificate_pem(other_key(), &cert_serial_bytes())),
        api_base: api_base.into(),
        notify_url: "https://renji.example/v1/payments/wechat/notify".into(),
    }
}

fn verifier() -> NotifyVerifier {
    NotifyVerifier::with_key(
        &config("http://127.0.0.1:1"),
        ApiV3Key::parse(APIV3_KEY).unwrap(),
    )
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn rsa_sign(key: &RsaPrivateKey, message: &[u8]) -> String {
    STANDARD.encode(
        SigningKey::<Sha256>::new(key.clone())
            .sign(message)
            .to_vec(),
    )
}

fn rsa_verify(key: &RsaPrivateKey, message: &[u8], b64: &str) -> bool {
    let Ok(sig) = STANDARD.decode(b64) else {
        return false;
    };
    let Ok(sig) = Signature::try_from(sig.as_slice()) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(RsaPublicKey::from(key))
        .verify(message, &sig)
        .is_ok()
}

/// WeChat Pay's signature headers for `body` at `timestamp`, signed with `key` under `serial`.
fn signed_headers(body: &[u8], timestamp: i64, key: &RsaPrivateKey, serial: &str) -> HeaderMap {
    let nonce = "fdasflkja484w";
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    };
    put("Wechatpay-Serial", serial.into());
    put("Wechatpay-Signature", rsa_sign(key, &message));
    put("Wechatpay-Timestamp", timestamp.to_string());
    put("Wechatpay-Nonce", nonce.into());
    put(
        "Wechatpay-Signature-Type",
        "WECHATPAY2-SHA256-RSA2048".into(),
    );
    headers
}

/// The envelope WeChat Pay posts: `resource` encrypted with AES-256-GCM under `apiv3_key`.
fn envelope(event_type: &str, resource: &Value, apiv3_key: &str) -> String {
    let nonce = "fdasflkja484";
    let aad = "transaction";
    let cipher = Aes256Gcm::new_from_slice(apiv3_key.as_bytes()).unwrap();
    let sealed = cipher
        .encrypt(
            aes_gcm::Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: resource.to_string().as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .unwrap();
    // WeChat's own layout and spacing; what is signed is these bytes.
    format!(
        "{{\"id\":\"EV-2018022511223320873\",\"create_time\":\"2015-05-20T13:29:35+08:00\",\
         \"resource_type\":\"encrypt-resource\",\"event_type\":\"{event_type}\",\
         \"summary\":\"支付成功\",\"resource\":{{\"original_type\":\"transaction\",\
         \"algorithm\":\"AEAD_AES_256_GCM\",\"ciphertext\":\"{}\",\
         \"associated_data\":\"{aad}\",\"nonce\":\"{nonce}\"}}}}",
        STANDARD.encode(sealed)
    )
}

fn transaction() -> Value {
    json!({
        "appid": APPID,
        "mchid": MCHID,
        "out_trade_no": "01JDQ8ZK3M5N7P9R1S3T5V7X",
        "transaction_id": "4200000001201811080000000001",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "CMC",
        "attach": "",
        "success_time": "2023-11-15T06:13:20+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 9900, "payer_total": 9900, "currency": "CNY", "payer_currency": "CNY"}
    })
}

/// A paid notification as WeChat Pay sends it: (headers, body).
fn paid_notification(resource: &Value) -> (HeaderMap, String) {
    let body = envelope("TRANSACTION.SUCCESS", resource, APIV3_KEY);
    let headers = signed_headers(
        body.as_bytes(),
        now().unix_timestamp(),
        test_key(),
        PUB_KEY_ID,
    );
    (headers, body)
}

async fn rejected(headers: &HeaderMap, body: &[u8]) -> String {
    match verifier().verify(headers, body, now()).await {
        Ok(notice) => panic!("accepted: {notice:?}"),
        Err(r) => {
            // Short, and never the body or a key.
            assert!(r.reason.len() < 120, "{}", r.reason);
            assert!(!r.reason.contains("ciphertext") && !r.reason.contains(APIV3_KEY));
            r.reason
        }
    }
}

#[tokio::test]
async fn a_paid_notification_is_verified_and_read() {
    let (headers, body) = paid_notification(&transaction());
    let notice = verifier()
        .verify(&headers, body.as_bytes(), now())
        .await
        .unwrap();
    assert_eq!(
        notice,
        Notice::Paid {
            provider: Provider::Wechat,
            order_no: "01JDQ8ZK3M5N7P9R1S3T5V7X".into(),
            paid: Paid {
                transaction_id: "4200000001201811080000000001".into(),
                amount: Fen::from_fen(9900),
                paid_at: Some("2023-11-14T22:13:20Z".into()),
            },
        }
    );
}

#[tokio::test]
async fn a_platform_certificate_verifies_by_its_serial_beside_the_public_key() {
    let body = envelope("TRANSACTION.SUCCESS", &transaction(), APIV3_KEY);
    let by_cert = signed_headers(
        body.as_bytes(),
        now().unix_timestamp(),
        other_key(),
        CERT_SERIAL,
    );
    assert!(matches!(
        verifier().verify(&by_cert, body.as_bytes(), now()).await,
        Ok(Notice::Paid { .. })
    ));
    // The certificate's key under the public key's id (and the reverse) does not verify.
    let crossed = signed_headers(
        body.as_bytes(),
        now().unix_timestamp(),
        other_key(),
        PUB_KEY_ID,
    );
    assert_eq!(
        rejected(&crossed, body.as_bytes()).await,
        "signature does not verify"
    );
    let crossed = signed_headers(
        body.as_bytes(),
        now().unix_timestamp(),
        test_key(),
        CERT_SERIAL,
    );
    assert_eq!(
        rejected(&crossed, body.as_bytes()).await,
        "signature does not verify"
    );
}

#[tokio::test]
async fn a_tampered_or_reserialised_body_is_rejected() {
    let (headers, body) = paid_notification(&transaction());
    let tampered = body.replacen("EV-2018", "EV-2019", 1);
    assert_eq!(
        rejected(&headers, tampered.as_bytes()).await,
        "signature does not verify"
    );
    // The same JSON, re-serialised: other whitespace, other key order.
    let value: Value = serde_json::from_str(&body).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    assert_eq!(
        rejected(&headers, pretty.as_bytes()).await,
        "signature does not verify"
    );
    let compact = value.to_string(); // serde_json sorts keys: another order than WeChat's
    assert_ne!(compact, body);
    assert_eq!(
        rejected(&headers, compact.as_bytes()).await,
        "signature does not verify"
    );
    // A trailing newline is a different body too.
    let newline = format!("{body}\n");
    assert_eq!(
        rejected(&headers, newline.as_bytes()).await,
        "signature does not verify"
    );
}

#[tokio::test]
async fn a_wrong_key_or_an_unknown_serial_is_rejected() {
    let body = envelope("TRANSACTION.SUCCESS", &transaction(), APIV3_KEY);
    let stranger = RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let wrong = signed_headers(
        body.as_bytes(),
        now().unix_timestamp(),
        &stranger,
        PUB_KEY_ID,
    );
    assert_eq!(
        rejected(&wrong, body.as_bytes()).await,
        "signature does not verify"
    );
    let unknown = signed_headers(
        body.as_bytes(),
        now().unix_timestamp(),
        test_key(),
        "ABC123",
    );
    assert_eq!(
        rejected(&unknown, body.as_bytes()).await,
        "unknown Wechatpay-Serial ABC123"
    );
}

#[tokio::test]
async fn timestamps_more_than_five_minutes_away_are_rejected() {
    let body = envelope("TRANSACTION.SUCCESS", &transaction(), APIV3_KEY);
    for skew in [-360, 360, -300, 300] {
        let ts = now().unix_timestamp() + skew;
        let headers = signed_headers(body.as_bytes(), ts, test_key(), PUB_KEY_ID);
        let reason = rejected(&headers, body.as_bytes()).await;
        assert!(reason.contains("5 minutes"), "{skew}: {reason}");
    }
    for skew in [-299, -240, 0, 240, 299] {
        let ts = now().unix_timestamp() + skew;
        let headers = signed_headers(body.as_bytes(), ts, test_key(), PUB_KEY_ID);
        assert!(
            verifier()
                .verify(&headers, body.as_bytes(), now())
                .await
                .is_ok(),
            "{skew}"
        );
    }
    let mut headers = signed_headers(
        body.as_bytes(),
        now().unix_timestamp(),
        test_key(),
        PUB_KEY_ID,
    );
    headers.insert("Wechatpay-Timestamp", HeaderValue::from_static("16e8"));
    assert!(rejected(&headers, body.as_bytes())
        .await
        .contains("not a number"));
}

#[tokio::test]
async fn signtest_probes_are_rejected() {
    let (mut headers, body) = paid_notification(&transaction());
    let real = headers["Wechatpay-Signature"].to_str().unwrap().to_owned();
    headers.insert(
        "Wechatpay-Signature",
        HeaderValue::from_str(&format!("WECHATPAY/SIGNTEST/{real}")).unwrap(),
    );
    assert!(rejected(&headers, body.as_bytes())
        .await
        .contains("SIGNTEST"));
}

#[tokio::test]
async fn every_signature_header_is_required_and_the_type_must_be_rsa() {
    let (headers, body) = paid_notification(&transaction());
    for name in [
        "Wechatpay-Serial",
        "Wechatpay-Signature",
        "Wechatpay-Timestamp",
        "Wechatpay-Nonce",
    ] {
        let mut missing = headers.clone();
        missing.remove(name);
        assert_eq!(
            rejected(&missing, body.as_bytes()).await,
            format!("{name} header missing")
        );
        let mut empty = headers.clone();
        empty.insert(name, HeaderValue::from_static(" "));
        assert_eq!(
            rejected(&empty, body.as_bytes()).await,
            format!("{name} header missing")
        );
    }
    // As in wechatpay-go, an absent Signature-Type means the RSA one; another is refused.
    let mut untyped = headers.clone();
    untyped.remove("Wechatpay-Signature-Type");
    assert!(verifier()
        .verify(&untyped, body.as_bytes(), now())
        .await
        .is_ok());
    let mut other = headers.clone();
    other.insert(
        "Wechatpay-Signature-Type",
        HeaderValue::from_static("WECHATPAY2-SM2-WITH-SM3"),
    );
    assert!(rejected(&other, body.as_bytes())
        .await
        .contains("Signature-Type"));
}

#[tokio::test]
async fn a_bad_gcm_tag_or_another_apiv3_key_is_rejected() {
    let body = envelope("TRANSACTION.SUCCESS", &transaction(), APIV3_KEY);
    let value: Value = serde_json::from_str(&body).unwrap();
    let ciphertext = value["resource"]["ciphertext"].as_str().unwrap();
    let mut sealed = STANDARD.decode(ciphertext).unwrap();
    let last = sealed.len() - 1;
    sealed[last] ^= 0x01;
    // Signed correctly: only the tag is wrong.
    let bad_tag = body.replace(ciphertext, &STANDARD.encode(&sealed));
    let headers = signed_headers(
        bad_tag.as_bytes(),
        now().unix_timestamp(),
        test_key(),
        PUB_KEY_ID,
    );
    assert!(rejected(&headers, bad_tag.as_bytes())
        .await
        .contains("decrypt"));

    let other_key = envelope("TRANSACTION.SUCCESS", &transaction(), &"k".repeat(32));
    let headers = signed_headers(
        other_key.as_bytes(),
        now().unix_timestamp(),
        test_key(),
        PUB_KEY_ID,
    );
    assert!(rejected(&headers, other_key.as_bytes())
        .await
        .contains("decrypt"));

    // Other associated data than was sealed.
    let other_aad = body.replace(
        "\"associated_data\":\"transaction\"",
        "\"associated_data\":\"refund\"",
    );
    let headers = signed_headers(
        other_aad.as_bytes(),
        now().unix_timestamp(),
        test_key(),
        PUB_KEY_ID,
    );
    assert!(rejected(&headers, other_aad.as_bytes())
        .await
        .contains("decrypt"));

    let other_algorithm = body.replace("AEAD_AES_256_GCM", "AEAD_SM4_GCM");
    let headers = signed_headers(
        other_algorithm.as_bytes(),
        now().unix_timestamp(),
        test_key(),
        PUB_KEY_ID,
    );
    assert!(rejected(&headers, other_algorithm.as_bytes())
        .await
        .contains("algorithm"));
}

#[tokio::test]
async fn another_merchant_or_app_is_rejected() {
    let mut resource = transaction();
    resource["mchid"] = json!("1900000110");
    let (headers, body) = paid_notification(&resource);
    assert_eq!(
        rejected(&headers, body.as_bytes()).await,
        "mchid is not ours"
    );

    let mut resource = transaction();
    resource["appid"] = json!("wx0000000000000000");
    let (headers, body) = paid_notification(&resource);
    assert_eq!(
        rejected(&headers, body.as_bytes()).await,
        "appid is not ours"
    );

    let mut resource = transaction();
    resource.as_object_mut().unwrap().remove("appid");
    let (headers, body) = paid_notification(&resource);
    assert_eq!(rejected(&headers, body.as_bytes()).await, "appid missing");

    let mut resource = transaction();
    resource["amount"]["currency"] = json!("USD");
    let (headers, body) = paid_notification(&resource);
    assert!(rejected(&headers, body.as_bytes()).await.contains("CNY"));
}

fn refund_resource(status: &str) -> Value {
    json!({
        "mchid": MCHID,
        "out_trade_no": "01JDQ8ZK3M5N7P9R1S3T5V7X",
        "transaction_id": "4200000001201811080000000001",
        "out_refund_no": "01JDQ8ZK3M5N7P9R1S3T5V7XR01",
        "refund_id": "50000000382019052709732678859",
        "refund_status": status,
        "success_time": "2018-06-08T10:34:56+08:00",
        "user_received_account": "招商银行信用卡0403",
        "amount": {"total": 9900, "refund": 9900, "payer_total": 9900, "payer_refund": 9900}
    })
}

#[tokio::test]
async fn refund_notifications_move_refunds_and_other_events_are_recorded() {
    for (event, status, state) in [
        (
            "REFUND.SUCCESS",
            "SUCCESS",
            RefundState::Succeeded {
                refund_id: Some("50000000382019052709732678859".into()),
                amount: Some(Fen::from_fen(9900)),
            },
        ),
        (
            "REFUND.ABNORMAL",
            "ABNORMAL",
            RefundState::Failed {
                reason: "ABNORMAL".into(),
            },
        ),
        (
            "REFUND.CLOSED",
            "CLOSED",
            RefundState::Failed {
                reason: "CLOSED".into(),
            },
        ),
    ] {
        let body = envelope(event, &refund_resource(status), APIV3_KEY);
        let headers = signed_headers(
            body.as_bytes(),
            now().unix_timestamp(),
            test_key(),
            PUB_KEY_ID,
        );
        assert_eq!(
            verifier()
                .verify(&headers, body.as_bytes(), now())
                .await
                .unwrap(),
            Notice::Refund {
                provider: Provider::Wechat,
                order_no: "01JDQ8ZK3M5N7P9R1S3T5V7X".into(),
                out_refund_no: "01JDQ8ZK3M5N7P9R1S3T5V7XR01".into(),
                state,
                paid_total: Some(Fen::from_fen(9900)),
            }
        );
    }
    // A refund resource is still checked for its merchant.
    let mut other = refund_resource("SUCCESS");
    other["mchid"] = json!("1900000110");
    let body = envelope("REFUND.SUCCESS", &other, APIV3_KEY);
    let headers = signed_headers(
        body.as_bytes(),
        now().unix_timestamp(),
        test_key(),
        PUB_KEY_ID,
    );
    assert_eq!(
        rejected(&headers, body.as_bytes()).await,
        "mchid is not ours"
    );

    // Verified, but not a payment: recorded only.
    let mut unpaid = transaction();
    unpaid["trade_state"] = json!("NOTPAY");
    let (headers, body) = paid_notification(&unpaid);
    assert!(matches!(
        verifier().verify(&headers, body.as_bytes(), now()).await.unwrap(),
        Notice::Other { what, .. } if what == "TRANSACTION.SUCCESS NOTPAY"
    ));
}

struct OneSecret(Result<String, SecretError>);

#[async_trait::async_trait]
impl SecretSource for OneSecret {
    async fn read(&self, _: &str) -> Result<Redacted, SecretError> {
        self.0.clone().map(Redacted)
    }
}

fn secrets(value: Result<&str, SecretError>) -> Secrets {
    Secrets::new(
        Arc::new(OneSecret(value.map(str::to_owned))),
        std::time::Duration::from_secs(300),
    )
}

#[tokio::test]
async fn configuration_faults_are_errors_of_the_request_never_panics() {
    let (headers, body) = paid_notification(&transaction());
    let stored = |c: &mut WechatPayConfig| c.apiv3_key = Some(SecretSetting::Stored("arn".into()));

    // A stored APIv3 key of the wrong length: a configuration error at first use.
    let mut c = config("http://127.0.0.1:1");
    stored(&mut c);
    let v = NotifyVerifier::from_config(&c, &secrets(Ok("short")))
        .unwrap()
        .unwrap();
    assert!(matches!(
        v.ready().await,
        Err(crate::error::Error::Config(_))
    ));
    let r = v
        .verify(&headers, body.as_bytes(), now())
        .await
        .unwrap_err();
    assert!(!r.reason.contains("short"));
    // Unreadable: 503.
    let v = NotifyVerifier::from_config(&c, &secrets(Err(SecretError::Unavailable("down".into()))))
        .unwrap()
        .unwrap();
    assert!(matches!(
        v.ready().await,
        Err(crate::error::Error::Unavailable(_))
    ));
    // Read and good: verifies.
    let v = NotifyVerifier::from_config(&c, &secrets(Ok(&format!("{APIV3_KEY}\n"))))
        .unwrap()
        .unwrap();
    v.ready().await.unwrap();
    assert!(v.verify(&headers, body.as_bytes(), now()).await.is_ok());

    // A key given as a value is checked at start-up, as every other secret.
    let mut c = config("http://127.0.0.1:1");
    c.apiv3_key = Some(SecretSetting::Value(Redacted("x".repeat(31))));
    assert!(NotifyVerifier::from_config(&c, &secrets(Ok(""))).is_err());
    c.apiv3_key = None;
    assert!(NotifyVerifier::from_config(&c, &secrets(Ok("")))
        .unwrap()
        .is_none());

    // Bad public keys: an error of the first request.
    let mut c = config("http://127.0.0.1:1");
    stored(&mut c);
    c.public_keys = vec![(
        PUB_KEY_ID.into(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into(),
    )];
    let v = NotifyVerifier::from_config(&c, &secrets(Ok(APIV3_KEY)))
        .unwrap()
        .unwrap();
    assert!(
        matches!(v.ready().await, Err(crate::error::Error::Config(m)) if m.contains("WECHATPAY_PUBLIC_KEY"))
    );
    assert!(v.verify(&headers, body.as_bytes(), now()).await.is_err());
    c.public_keys.clear();
    c.platform_certs = None;
    let v = NotifyVerifier::from_config(&c, &secrets(Ok(APIV3_KEY)))
        .unwrap()
        .unwrap();
    assert!(v.ready().await.is_err());

    // A bad merchant key: start-up error as a value, 503 of the call when stored.
    let mut c = config("http://127.0.0.1:1");
    c.merchant_key = Some(SecretSetting::Value(Redacted("not a key".into())));
    assert!(WechatPayGateway::from_config(&c, &secrets(Ok(""))).is_err());
    c.merchant_key = Some(SecretSetting::Stored("arn".into()));
    let g = WechatPayGateway::from_config(&c, &secrets(Ok("not a key")))
        .unwrap()
        .unwrap();
    assert!(
        matches!(g.query("X").await, Err(GatewayError::Unavailable(m)) if m.contains("merchant key"))
    );
    c.merchant_key = None;
    assert!(WechatPayGateway::from_config(&c, &secrets(Ok("")))
        .unwrap()
        .is_none());
}

// --- The gateway against a stand-in WeChat Pay on loopback. ---

/// A request as the stand-in received it.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

/// An answer the stand-in gives: status, body, and whether (and with which key) it is signed.
#[derive(Clone)]
pub(crate) struct Reply {
    status: u16,
    body: String,
    signer: Option<(&'static RsaPrivateKey, &'static str)>,
}

pub(crate) fn signed(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body: body.to_string(),
        signer: Some((test_key(), PUB_KEY_ID)),
    }
}

fn raw_answer(reply: &Reply) -> Vec<u8> {
    let body = match reply.status {
        204 => String::new(),
        _ => reply.body.clone(),
    };
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nrequest-id: 08F78BB5AF0610D302\r\n",
        reply.status,
        body.len()
    );
    if let Some((key, serial)) = reply.signer {
        let ts = OffsetDateTime::now_utc().unix_timestamp();
        for (name, value) in &signed_headers(body.as_bytes(), ts, key, serial) {
            head.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap()));
        }
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// An answer without WeChat Pay's signature (a bill file).
pub(crate) fn unsigned(status: u16, body: &str) -> Reply {
    Reply {
        status,
        body: body.to_owned(),
        signer: None,
    }
}

/// Serves `reply` to each request on a loopback port; the requests come out of the receiver.
pub(crate) async fn stand_in(
    reply: Reply,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<Received>) {
    stand_in_serving(vec![reply]).await
}

/// Serves `replies` in turn (the last one again once they are used up).
pub(crate) async fn stand_in_serving(
    replies: Vec<Reply>,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut served = 0usize;
        while let Ok((mut stream, _)) = listener.accept().await {
            let reply = &replies[served.min(replies.len() - 1)];
            served += 1;
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 16 * 1024];
            let (head_end, length) = loop {
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (None, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    break (Some(end + 4), length);
                }
            };
            let Some(head_end) = head_end else { continue };
            while buf.len() < head_end + length {
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut request_line = lines.next().unwrap().split(' ');
            let method = request_line.next().unwrap().to_owned();
            let target = request_line.next().unwrap().to_owned();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                .collect();
            let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
            let _ = tx.send(Received {
                method,
                target,
                headers,
                body,
            });
            let _ = stream.write_all(&raw_answer(reply)).await;
            let _ = stream.shutdown().await;
        }
    });
    (url, rx)
}

/// Our merchant key, made by the `rsa` crate; WeChat Pay checks our signatures with its public
/// half (here: another implementation than ours).
fn merchant_key() -> &'static RsaPrivateKey {
    test_key()
}

pub(crate) fn gateway(url: &str) -> WechatPayGateway {
    WechatPayGateway::with_key(
        &config(url),
        PrivateKey::from_pem(&pkcs8_pem(merchant_key())).unwrap(),
    )
}

/// Checks our `Authorization` the way WeChat Pay does, with the `rsa` crate.
pub(crate) fn check_authorization(received: &Received) {
    let auth = &received.headers["authorization"];
    let params = auth
        .strip_prefix("WECHATPAY2-SHA256-RSA2048 ")
        .expect("the scheme");
    let fields: HashMap<&str, &str> = params
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k, v.trim_matches('"'))
        })
        .collect();
    assert_eq!(fields["mchid"], MCHID);
    assert_eq!(fields["serial_no"], MERCHANT_SERIAL);
    assert_eq!(fields["nonce_str"].len(), 32);
    let ts: i64 = fields["timestamp"].parse().unwrap();
    assert!((OffsetDateTime::now_utc().unix_timestamp() - ts).abs() < 60);
    let message = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        received.method, received.target, fields["timestamp"], fields["nonce_str"], received.body
    );
    assert!(
        rsa_verify(merchant_key(), message.as_bytes(), fields["signature"]),
        "our Authorization does not verify"
    );
    // Another request line would not verify: the signature covers the path and query.
    let other = message.replacen(&received.target, "/v3/other", 1);
    assert!(!rsa_verify(
        merchant_key(),
        other.as_bytes(),
        fields["signature"]
    ));
}

/// Checks `wx.requestPayment` parameters the way the WeChat client does.
fn check_pay_sign(client: &Value, prepay_id: &str) {
    assert_eq!(client["package"], format!("prepay_id={prepay_id}"));
    assert_eq!(client["signType"], "RSA");
    let ts = client["timeStamp"].as_str().expect("timeStamp is a string");
    assert!(ts.parse::<i64>().is_ok());
    let nonce = client["nonceStr"].as_str().unwrap();
    assert!(nonce.len() <= 32);
    let message = format!("{APPID}\n{ts}\n{nonce}\nprepay_id={prepay_id}\n");
    assert!(rsa_verify(
        merchant_key(),
        message.as_bytes(),
        client["paySign"].as_str().unwrap()
    ));
    assert_eq!(client.as_object().unwrap().len(), 5);
}

fn start(prepay_id: Option<&str>) -> PaymentStart {
    PaymentStart {
        channel: Channel::Wechat,
        order_no: "01JDQ8ZK3M5N7P9R1S3T5V7X".into(),
        // 60 three-byte characters: 180 bytes, cut to 42 characters (126 bytes).
        description: "上门保洁服务".repeat(10),
        amount: Fen::from_fen(9900),
        expires_at: OffsetDateTime::from_unix_timestamp(1_764_419_400).unwrap()
            + time::Duration::milliseconds(250),
        payer_openid: Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into()),
        prepay_id: prepay_id.map(str::to_owned),
    }
}

#[tokio::test]
async fn a_jsapi_payment_is_created_signed_and_its_client_parameters_verify() {
    let prepay_id = "wx201410272009395522657a690389285100";
    let (url, mut requests) = stand_in(signed(200, json!({"prepay_id": prepay_id}))).await;
    let started = gateway(&url).start(&start(None)).await.unwrap();
    assert_eq!(started.prepay_id.as_deref(), Some(prepay_id));
    check_pay_sign(&started.client, prepay_id);

    let received = requests.recv().await.unwrap();
    assert_eq!(received.method, "POST");
    assert_eq!(received.target, "/v3/pay/transactions/jsapi");
    assert_eq!(received.headers["content-type"], "application/json");
    assert_eq!(received.headers["accept"], "application/json");
    assert!(!received.headers["user-agent"].is_empty());
    assert_eq!(received.headers["wechatpay-serial"], PUB_KEY_ID);
    check_authorization(&received);
    let body: Value = serde_json::from_str(&received.body).unwrap();
    assert_eq!(
        body,
        json!({
            "appid": APPID,
            "mchid": MCHID,
            "description": "上门保洁服务".repeat(7),
            "out_trade_no": "01JDQ8ZK3M5N7P9R1S3T5V7X",
            "time_expire": "2025-11-29T20:30:00+08:00",
            "notify_url": "https://renji.example/v1/payments/wechat/notify",
            "amount": {"total": 9900, "currency": "CNY"},
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "settle_info": {"profit_sharing": true},
        })
    );
    assert_eq!(body["description"].as_str().unwrap().len(), 126);
}

#[tokio::test]
async fn a_kept_prepay_id_is_signed_again_without_calling_wechat_pay() {
    // Nothing listens there: a call would fail.
    let started = gateway("http://127.0.0.1:1")
        .start(&start(Some("wx_kept")))
        .await
        .unwrap();
    assert_eq!(started.prepay_id.as_deref(), Some("wx_kept"));
    check_pay_sign(&started.client, "wx_kept");
}

#[tokio::test]
async fn answers_that_are_unsigned_or_signed_by_another_key_are_unavailable() {
    let unsigned = Reply {
        signer: None,
        ..signed(200, json!({"prepay_id": "wx1"}))
    };
    let stranger: &'static RsaPrivateKey = other_key();
    let wrong_key = Reply {
        signer: Some((stranger, PUB_KEY_ID)),
        ..signed(200, json!({"prepay_id": "wx1"}))
    };
    let unknown_serial = Reply {
        signer: Some((test_key(), "PUB_KEY_ID_OTHER")),
        ..signed(200, json!({"prepay_id": "wx1"}))
    };
    for reply in [unsigned, wrong_key, unknown_serial] {
        let (url, _requests) = stand_in(reply).await;
        let err = gateway(&url).start(&start(None)).await.unwrap_err();
        assert!(
            matches!(&err, GatewayError::Unavailable(m) if m.contains("not verified")),
            "{err:?}"
        );
    }
    // The platform certificate's key verifies by its serial.
    let (url, _requests) = stand_in(Reply {
        signer: Some((other_key(), CERT_SERIAL)),
        ..signed(200, json!({"prepay_id": "wx1"}))
    })
    .await;
    assert!(gateway(&url).start(&start(None)).await.is_ok());
}

#[tokio::test]
async fn queries_read_the_trade_state() {
    let paid = json!({
        "appid": APPID, "mchid": MCHID, "out_trade_no": "01JDQ8ZK3M5N7P9R1S3T5V7X",
        "transaction_id": "4200000001", "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "success_time": "2025-11-29T20:10:00+08:00",
        "amount": {"total": 9900, "payer_total": 9900, "currency": "CNY", "payer_currency": "CNY"}
    });
    let (url, mut requests) = stand_in(signed(200, paid)).await;
    let trade = gateway(&url)
        .query("01JDQ8ZK3M5N7P9R1S3T5V7X")
        .await
        .unwrap();
    assert_eq!(
        trade,
        Trade::Paid(Paid {
            transaction_id: "4200000001".into(),
            amount: Fen::from_fen(9900),
            paid_at: Some("2025-11-29T12:10:00Z".into()),
        })
    );
    let received = requests.recv().await.unwrap();
    assert_eq!(received.method, "GET");
    assert_eq!(
        received.target,
        format!("/v3/pay/transactions/out-trade-no/01JDQ8ZK3M5N7P9R1S3T5V7X?mchid={MCHID}")
    );
    assert_eq!(received.body, "");
    assert!(!received.headers.contains_key("content-type"));
    check_authorization(&received);

    for (state, expected) in [
        ("NOTPAY", Trade::Open),
        ("USERPAYING", Trade::Open),
        ("CLOSED", Trade::Closed),
        ("REVOKED", Trade::Closed),
        ("PAYERROR", Trade::Closed),
    ] {
        let (url, _r) = stand_in(signed(
            200,
            json!({"trade_state": state, "out_trade_no": "N1"}),
        ))
        .await;
        assert_eq!(
            gateway(&url).query("N1").await.unwrap(),
            expected,
            "{state}"
        );
    }
    // Another order's answer is not believed.
    let (url, _r) = stand_in(signed(
        200,
        json!({"trade_state": "NOTPAY", "out_trade_no": "N2"}),
    ))
    .await;
    assert!(gateway(&url).query("N1").await.is_err());

    let not_found = json!({"code": "ORDER_NOT_EXIST", "message": "订单不存在"});
    let (url, _r) = stand_in(signed(404, not_found.clone())).await;
    assert_eq!(gateway(&url).query("N1").await.unwrap(), Trade::NotFound);
    // Unsigned, "no such order" is not believed: it would let a paid order expire.
    let (url, _r) = stand_in(Reply {
        signer: None,
        ..signed(404, not_found)
    })
    .await;
    assert!(matches!(
        gateway(&url).query("N1").await,
        Err(GatewayError::Unavailable(_))
    ));
}

#[tokio::test]
async fn errors_are_refusals_or_unavailability() {
    // A 4xx with {code, message}, unsigned as WeChat Pay may send it: a refusal.
    let (url, _r) = stand_in(Reply {
        signer: None,
        ..signed(
            400,
            json!({"code": "PARAM_ERROR", "message": "description 字段规则校验失败"}),
        )
    })
    .await;
    assert_eq!(
        gateway(&url).start(&start(None)).await.unwrap_err(),
        GatewayError::Refused {
            code: "PARAM_ERROR".into(),
            message: "description 字段规则校验失败".into()
        }
    );
    for reply in [
        signed(500, json!({"code": "SYSTEM_ERROR", "message": "系统错误"})),
        signed(
            429,
            json!({"code": "FREQUENCY_LIMITED", "message": "频率超限"}),
        ),
        signed(403, json!({"code": "SYSTEM_ERROR", "message": "系统错误"})),
        Reply {
            signer: None,
            ..signed(502, json!("bad gateway"))
        },
    ] {
        let (url, _r) = stand_in(reply).await;
        assert!(matches!(
            gateway(&url).start(&start(None)).await,
            Err(GatewayError::Unavailable(_))
        ));
    }
    // An error answer that is signed must verify.
    let (url, _r) = stand_in(Reply {
        signer: Some((other_key(), PUB_KEY_ID)),
        ..signed(400, json!({"code": "PARAM_ERROR", "message": "x"}))
    })
    .await;
    assert!(matches!(
        gateway(&url).start(&start(None)).await,
        Err(GatewayError::Unavailable(_))
    ));
    // Nobody listening.
    assert!(matches!(
        gateway("http://127.0.0.1:1").query("N1").await,
        Err(GatewayError::Unavailable(_))
    ));
}

#[tokio::test]
async fn close_posts_the_mchid_and_settled_trades_are_fine() {
    let (url, mut requests) = stand_in(signed(204, json!(null))).await;
    gateway(&url)
        .close("01JDQ8ZK3M5N7P9R1S3T5V7X")
        .await
        .unwrap();
    let received = requests.recv().await.unwrap();
    assert_eq!(received.method, "POST");
    assert_eq!(
        received.target,
        "/v3/pay/transactions/out-trade-no/01JDQ8ZK3M5N7P9R1S3T5V7X/close"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&received.body).unwrap(),
        json!({"mchid": MCHID})
    );
    check_authorization(&received);

    let (url, _r) = stand_in(signed(
        400,
        json!({"code": "ORDER_CLOSED", "message": "订单已关闭"}),
    ))
    .await;
    assert!(gateway(&url).close("N1").await.is_ok());
    let (url, _r) = stand_in(signed(
        400,
        json!({"code": "INVALID_REQUEST", "message": "x"}),
    ))
    .await;
    assert!(matches!(
        gateway(&url).close("N1").await,
        Err(GatewayError::Refused { .. })
    ));
    // A 204 without a signature is not believed.
    let (url, _r) = stand_in(Reply {
        signer: None,
        ..signed(204, json!(null))
    })
    .await;
    assert!(matches!(
        gateway(&url).close("N1").await,
        Err(GatewayError::Unavailable(_))
    ));
}

#[tokio::test]
async fn refunds_are_asked_and_queried() {
    let answer = json!({
        "refund_id": "50000000382019052709732678859",
        "out_refund_no": "01JDQ8ZK3M5N7P9R1S3T5V7XR01",
        "transaction_id": "4200000001",
        "out_trade_no": "01JDQ8ZK3M5N7P9R1S3T5V7X",
        "channel": "ORIGINAL",
        "status": "PROCESSING",
        "amount": {"total": 9900, "refund": 5000, "payer_total": 9900, "payer_refund": 5000, "currency": "CNY"}
    });
    let (url, mut requests) = stand_in(signed(200, answer.clone())).await;
    let request = RefundRequest {
        order_no: "01JDQ8ZK3M5N7P9R1S3T5V7X".into(),
        out_refund_no: "01JDQ8ZK3M5N7P9R1S3T5V7XR01".into(),
        amount: Fen::from_fen(5000),
        total: Fen::from_fen(9900),
        refunded_before: Fen::from_fen(0),
        reason: "服务未完成".repeat(20),
        royalty_back: None,
    };
    assert_eq!(
        gateway(&url).refund(&request).await.unwrap(),
        RefundState::Processing
    );
    let received = requests.recv().await.unwrap();
    assert_eq!(received.method, "POST");
    assert_eq!(received.target, "/v3/refund/domestic/refunds");
    check_authorization(&received);
    let body: Value = serde_json::from_str(&received.body).unwrap();
    assert_eq!(
        body,
        json!({
            "out_trade_no": "01JDQ8ZK3M5N7P9R1S3T5V7X",
            "out_refund_no": "01JDQ8ZK3M5N7P9R1S3T5V7XR01",
            "reason": "服务未完成".repeat(16),
            "notify_url": "https://renji.example/v1/payments/wechat/notify",
            "amount": {"refund": 5000, "total": 9900, "currency": "CNY"},
        })
    );

    let mut succeeded = answer.clone();
    succeeded["status"] = json!("SUCCESS");
    let (url, mut requests) = stand_in(signed(200, succeeded)).await;
    assert_eq!(
        gateway(&url)
            .refund_query("01JDQ8ZK3M5N7P9R1S3T5V7X", "01JDQ8ZK3M5N7P9R1S3T5V7XR01")
            .await
            .unwrap(),
        RefundState::Succeeded {
            refund_id: Some("50000000382019052709732678859".into()),
            amount: Some(Fen::from_fen(5000)),
        }
    );
    let received = requests.recv().await.unwrap();
    assert_eq!(received.method, "GET");
    assert_eq!(
        received.target,
        "/v3/refund/domestic/refunds/01JDQ8ZK3M5N7P9R1S3T5V7XR01"
    );
    check_authorization(&received);

    let (url, _r) = stand_in(signed(
        404,
        json!({"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}),
    ))
    .await;
    assert_eq!(
        gateway(&url).refund_query("N1", "N1R01").await.unwrap(),
        RefundState::NotFound
    );
    let (url, _r) = stand_in(signed(
        403,
        json!({"code": "NOT_ENOUGH", "message": "基本账户余额不足"}),
    ))
    .await;
    assert!(matches!(
        gateway(&url).refund(&request).await,
        Err(GatewayError::Refused { code, .. }) if code == "NOT_ENOUGH"
    ));
}

#[tokio::test]
async fn an_api_base_with_a_path_is_signed_as_sent() {
    let (url, mut requests) = stand_in(signed(200, json!({"trade_state": "NOTPAY"}))).await;
    let g = gateway(&format!("{url}/wechatpay/"));
    assert_eq!(g.query("N1").await.unwrap(), Trade::Open);
    let received = requests.recv().await.unwrap();
    assert_eq!(
        received.target,
        format!("/wechatpay/v3/pay/transactions/out-trade-no/N1?mchid={MCHID}")
    );
    check_authorization(&received);
}

#[test]
fn debug_output_shows_no_key() {
    let g = gateway("http://127.0.0.1:1");
    let shown = format!("{g:?} {:?}", verifier());
    assert!(
        !shown.contains("BEGIN") && !shown.contains(APIV3_KEY),
        "{shown}"
    );
    assert!(!shown.contains("MII"));
}

#[tokio::test]
async fn payments_get_a_gateway_with_the_merchant_key_and_a_verifier_with_the_apiv3_key() {
    let merchant_pem = pkcs8_pem(merchant_key()).replace('\n', "\\n");
    let public_pem = spki_pem(test_key());
    let base = [
        ("RENJI_SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
        ("WECHATPAY_MCHID", MCHID),
        ("WECHATPAY_APPID", APPID),
        ("WECHATPAY_MERCHANT_SERIAL", MERCHANT_SERIAL),
        ("WECHATPAY_PUBLIC_KEY_ID", PUB_KEY_ID),
        ("WECHATPAY_PUBLIC_KEY", public_pem.as_str()),
    ];
    let payments = |extra: &[(&str, &str)]| {
        let vars: HashMap<String, String> = base
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = crate::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        crate::payments::Payments::from_config(&config, &secrets(Ok("")))
    };
    // The payments function: the merchant key, no APIv3 key.
    let p = payments(&[("WECHATPAY_MERCHANT_KEY", &merchant_pem)]).unwrap();
    assert!(p.wechat.is_some() && p.wechat_notify.is_none());
    // The notify function: the APIv3 key and WeChat Pay's public key, no merchant key.
    let p = payments(&[("WECHATPAY_APIV3_KEY", APIV3_KEY)]).unwrap();
    assert!(p.wechat.is_none());
    let (headers, body) = paid_notification(&transaction());
    let verifier = p.wechat_notify.unwrap();
    verifier.ready().await.unwrap();
    assert!(verifier
        .verify(&headers, body.as_bytes(), now())
        .await
        .is_ok());
    // Neither: nothing (and not a start-up error).
    let p = payments(&[]).unwrap();
    assert!(p.wechat.is_none() && p.wechat_notify.is_none());
    // A bad value is a configuration error, not a panic.
    assert!(payments(&[("WECHATPAY_APIV3_KEY", "too short")]).is_err());
}

#[tokio::test]
async fn a_silent_provider_is_unavailable_after_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream); // accepted, never answered
        }
    });
    let started = std::time::Instant::now();
    let err = gateway(&url).query("N1").await.unwrap_err();
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(4) && waited < std::time::Duration::from_secs(8),
        "{waited:?}"
    );
}
