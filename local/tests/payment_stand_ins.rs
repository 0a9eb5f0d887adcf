//! The local server's WeChat Pay and Alipay stand-ins, driven as the provider's clients would:
//! requests signed here with RustCrypto's `rsa` (not our ring-based code), notifications caught
//! by a server of the test's own and checked independently (signature, AES-256-GCM).

use std::collections::BTreeMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use renji_local::http_server::{self, HttpRequest};
use renji_local::{start, Options, Running, StoreChoice};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, LineEnding};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use tokio::sync::mpsc;

struct Server {
    running: Running,
    _dir: tempfile::TempDir,
    keys: Value,
}

async fn server(config: &[(&str, &str)]) -> Server {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let running = start(Options {
        addr: "127.0.0.1:0".parse().expect("address"),
        store: StoreChoice::Embedded {
            data_dir: dir.path().to_owned(),
        },
        session_secret: None,
        config: config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    })
    .await
    .expect("start local server");
    let keys: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("payment-keys")).expect("payment-keys file"),
    )
    .expect("payment-keys JSON");
    Server {
        running,
        _dir: dir,
        keys,
    }
}

fn private(pem: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .expect("private key PEM")
}

fn rsa_sign(key: &RsaPrivateKey, message: &[u8]) -> String {
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    STANDARD.encode(signer.sign(message).to_bytes())
}

fn rsa_verify(key: &RsaPublicKey, message: &[u8], signature: &str) -> bool {
    let Ok(bytes) = STANDARD.decode(signature) else {
        return false;
    };
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(bytes.as_slice()) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone())
        .verify(message, &signature)
        .is_ok()
}

/// A notify endpoint of the test's own: every request's headers and body, answered with `reply`.
async fn catcher(
    reply: &'static str,
) -> (String, mpsc::UnboundedReceiver<(hyper::HeaderMap, Vec<u8>)>) {
    use http_body_util::BodyExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/notify", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    let _task = http_server::spawn(
        listener,
        Arc::new(move |req: HttpRequest| {
            let tx = tx.clone();
            Box::pin(async move {
                let headers = req.headers().clone();
                let body = req.into_body().collect().await.expect("body").to_bytes();
                let _ = tx.send((headers, body.to_vec()));
                let status = if reply.is_empty() { 204 } else { 200 };
                hyper::Response::builder()
                    .status(status)
                    .body(http_body_util::Full::new(bytes::Bytes::from(reply)))
                    .expect("response")
            })
        }),
    );
    (url, rx)
}

async fn next(
    rx: &mut mpsc::UnboundedReceiver<(hyper::HeaderMap, Vec<u8>)>,
) -> (hyper::HeaderMap, Vec<u8>) {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a notification within 10 s")
        .expect("catcher open")
}

// --- WeChat Pay -----------------------------------------------------------------------------

struct Merchant {
    mchid: String,
    serial: String,
    key: RsaPrivateKey,
}

fn authorization(m: &Merchant, method: &str, path: &str, body: &str, timestamp: i64) -> String {
    let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
    let message = format!("{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n");
    let signature = rsa_sign(&m.key, message.as_bytes());
    format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
        m.mchid, m.serial
    )
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A signed call; the answer's status, WeChat Pay signature headers checked, and JSON body.
async fn wx_call(
    s: &Server,
    m: &Merchant,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timestamp: i64,
) -> (u16, Value) {
    let text = body.map(Value::to_string).unwrap_or_default();
    let url = format!("{}{path}", s.running.wechatpay_base);
    let client = reqwest::Client::new();
    let request = match method {
        "GET" => client.get(url),
        _ => client
            .post(url)
            .body(text.clone())
            .header("content-type", "application/json"),
    };
    let response = request
        .header(
            "authorization",
            authorization(m, method, path, &text, timestamp),
        )
        .header("accept", "application/json")
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    assert_wechatpay_signed(s, &headers, body.as_bytes());
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).expect("JSON answer")
    };
    (status, json)
}

/// The stand-in's WeChat Pay public key as the functions are configured to trust it.
fn wechatpay_public(s: &Server, serial: &str) -> RsaPublicKey {
    let pay = s
        .running
        .app
        .config
        .wechat_pay
        .as_ref()
        .expect("WeChat Pay on");
    let (_, pem) = pay
        .public_keys
        .iter()
        .find(|(id, _)| id == serial)
        .expect("Wechatpay-Serial is a configured public key id");
    RsaPublicKey::from_public_key_pem(pem).expect("public key PEM")
}

fn assert_wechatpay_signed(s: &Server, headers: &hyper::HeaderMap, body: &[u8]) {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{name} header"))
            .to_owned()
    };
    let serial = h("wechatpay-serial");
    assert!(
        serial.starts_with("PUB_KEY_ID_") && serial.len() == 43,
        "{serial}"
    );
    let mut message =
        format!("{}\n{}\n", h("wechatpay-timestamp"), h("wechatpay-nonce")).into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    assert!(
        rsa_verify(
            &wechatpay_public(s, &serial),
            &message,
            &h("wechatpay-signature")
        ),
        "the answer's signature verifies with the stand-in's WeChat Pay public key"
    );
}

fn generated_merchant(s: &Server) -> Merchant {
    Merchant {
        mchid: "1900000109".into(),
        serial: s.keys["merchant_serial"].as_str().expect("serial").into(),
        key: private(s.keys["merchant_key"].as_str().expect("key")),
    }
}

fn jsapi(no: &str, notify_url: &str, total: i64) -> Value {
    let expire = (time::OffsetDateTime::now_utc() + time::Duration::minutes(30))
        .replace_nanosecond(0)
        .expect("ns")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    json!({
        "appid": "wx-sandbox-appid",
        "mchid": "1900000109",
        "description": "人像摄影 · 2 小时",
        "out_trade_no": no,
        "time_expire": expire,
        "notify_url": notify_url,
        "amount": {"total": total, "currency": "CNY"},
        "payer": {"openid": "o-test-buyer"},
        "settle_info": {"profit_sharing": true},
    })
}

fn decrypt(apiv3_key: &str, envelope: &Value) -> Value {
    let resource = &envelope["resource"];
    assert_eq!(resource["algorithm"], "AEAD_AES_256_GCM");
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(apiv3_key.as_bytes()).expect("32-byte key");
    let nonce = resource["nonce"].as_str().expect("nonce");
    let plain = cipher
        .decrypt(
            aes_gcm::Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: &STANDARD
                    .decode(resource["ciphertext"].as_str().expect("ciphertext"))
                    .expect("base64"),
                aad: resource["associated_data"]
                    .as_str()
                    .unwrap_or("")
                    .as_bytes(),
            },
        )
        .expect("the GCM tag checks with the APIv3 key");
    serde_json::from_slice(&plain).expect("JSON resource")
}

async fn sandbox_post(url: String, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.expect("text");
    (status, serde_json::from_str(&text).expect("JSON"))
}

#[tokio::test]
async fn wechatpay_refuses_a_bad_request_signature() {
    let s = server(&[]).await;
    let m = generated_merchant(&s);
    let body = jsapi(
        "ORDER0000000000000000001",
        "https://example.com/notify",
        100,
    );
    let path = "/v3/pay/transactions/jsapi";

    let other = Merchant {
        key: private(s.keys["alipay_key"].as_str().expect("key")),
        ..generated_merchant(&s)
    };
    let (status, answer) = wx_call(&s, &other, "POST", path, Some(&body), now()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("SIGN_ERROR")),
        "{answer}"
    );

    let (status, answer) = wx_call(&s, &m, "POST", path, Some(&body), now() - 360).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("SIGN_ERROR")),
        "6 minutes old: {answer}"
    );

    let wrong_serial = Merchant {
        serial: "0".repeat(40),
        ..generated_merchant(&s)
    };
    let (status, _) = wx_call(&s, &wrong_serial, "POST", path, Some(&body), now()).await;
    assert_eq!(status, 401);

    // Signed over another body than the one sent.
    let response = reqwest::Client::new()
        .post(format!("{}{path}", s.running.wechatpay_base))
        .header(
            "authorization",
            authorization(&m, "POST", path, "{}", now()),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 401);

    // Nothing was created: the correctly signed query does not know the trade.
    let (status, answer) = wx_call(
        &s,
        &m,
        "GET",
        "/v3/pay/transactions/out-trade-no/ORDER0000000000000000001?mchid=1900000109",
        None,
        now(),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (404, Some("ORDER_NOT_EXIST"))
    );
}

#[tokio::test]
async fn wechatpay_creates_pays_notifies_and_refunds() {
    let s = server(&[]).await;
    let m = generated_merchant(&s);
    let apiv3 = s.keys["apiv3_key"].as_str().expect("APIv3 key").to_owned();
    let (notify_url, mut notices) = catcher("").await;
    let no = "ORDER0000000000000000002";
    let path = "/v3/pay/transactions/jsapi";
    let body = jsapi(no, &notify_url, 2500);

    let mut unsplittable = body.clone();
    unsplittable["settle_info"]["profit_sharing"] = json!(false);
    let (status, answer) = wx_call(&s, &m, "POST", path, Some(&unsplittable), now()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
    let mut float = body.clone();
    float["amount"]["total"] = json!(25.0);
    let (status, answer) = wx_call(&s, &m, "POST", path, Some(&float), now()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("PARAM_ERROR"))
    );

    let (status, created) = wx_call(&s, &m, "POST", path, Some(&body), now()).await;
    assert_eq!(status, 200, "{created}");
    let prepay_id = created["prepay_id"].as_str().expect("prepay_id").to_owned();
    let (_, again) = wx_call(&s, &m, "POST", path, Some(&body), now()).await;
    assert_eq!(
        again["prepay_id"],
        prepay_id.as_str(),
        "same content, same prepay_id"
    );
    let mut changed = body.clone();
    changed["amount"]["total"] = json!(2600);
    let (status, answer) = wx_call(&s, &m, "POST", path, Some(&changed), now()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );

    let query = format!("/v3/pay/transactions/out-trade-no/{no}?mchid=1900000109");
    let (_, trade) = wx_call(&s, &m, "GET", &query, None, now()).await;
    assert_eq!(trade["trade_state"], "NOTPAY");

    // Pay without notifying: the lost notification; the query knows.
    let pay_url = format!("{}/sandbox/pay", s.running.wechatpay_base);
    let (status, paid) = sandbox_post(
        pay_url.clone(),
        json!({"out_trade_no": no, "notify": false}),
    )
    .await;
    assert_eq!(status, 200, "{paid}");
    assert!(notices.try_recv().is_err(), "no notification was sent");
    let (_, trade) = wx_call(&s, &m, "GET", &query, None, now()).await;
    assert_eq!(trade["trade_state"], "SUCCESS");
    assert_eq!(trade["amount"]["payer_total"], 2500);

    // Paying again resends the notification: signed over the raw body, encrypted to the APIv3 key.
    let (status, paid) = sandbox_post(pay_url, json!({"out_trade_no": no})).await;
    assert_eq!(
        (status, paid["notified"].as_str()),
        (200, Some("204")),
        "{paid}"
    );
    let (headers, raw) = next(&mut notices).await;
    assert_wechatpay_signed(&s, &headers, &raw);
    let envelope: Value = serde_json::from_slice(&raw).expect("JSON notification");
    assert_eq!(envelope["event_type"], "TRANSACTION.SUCCESS");
    let resource = decrypt(&apiv3, &envelope);
    assert_eq!(resource["out_trade_no"], no);
    assert_eq!(resource["mchid"], "1900000109");
    assert_eq!(resource["appid"], "wx-sandbox-appid");
    assert_eq!(resource["trade_state"], "SUCCESS");
    assert_eq!(resource["amount"]["total"], 2500);
    assert_eq!(resource["transaction_id"], trade["transaction_id"]);

    // Closing a paid trade is refused.
    let close = format!("/v3/pay/transactions/out-trade-no/{no}/close");
    let (status, _) = wx_call(
        &s,
        &m,
        "POST",
        &close,
        Some(&json!({"mchid": "1900000109"})),
        now(),
    )
    .await;
    assert_eq!(status, 400);

    // A partial refund: PROCESSING, then a REFUND.SUCCESS notification and a SUCCESS query.
    let refund = json!({
        "out_trade_no": no,
        "out_refund_no": format!("{no}R01"),
        "reason": "买家取消",
        "notify_url": notify_url,
        "amount": {"refund": 1000, "total": 2500, "currency": "CNY"},
    });
    let (status, answer) = wx_call(
        &s,
        &m,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&refund),
        now(),
    )
    .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("PROCESSING")),
        "{answer}"
    );
    let (_, repeat) = wx_call(
        &s,
        &m,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&refund),
        now(),
    )
    .await;
    assert_eq!(
        repeat["refund_id"], answer["refund_id"],
        "same out_refund_no, same refund"
    );
    let (headers, raw) = next(&mut notices).await;
    assert_wechatpay_signed(&s, &headers, &raw);
    let envelope: Value = serde_json::from_slice(&raw).expect("JSON");
    assert_eq!(envelope["event_type"], "REFUND.SUCCESS");
    let resource = decrypt(&apiv3, &envelope);
    assert_eq!(resource["refund_status"], "SUCCESS");
    assert_eq!(resource["out_refund_no"], format!("{no}R01"));
    assert_eq!(resource["amount"]["refund"], 1000);
    let (_, queried) = wx_call(
        &s,
        &m,
        "GET",
        &format!("/v3/refund/domestic/refunds/{no}R01"),
        None,
        now(),
    )
    .await;
    assert_eq!(queried["status"], "SUCCESS");

    // More than what remains is refused; with refunds made to fail, the next one ends ABNORMAL.
    let mut too_much = refund.clone();
    too_much["out_refund_no"] = json!(format!("{no}R02"));
    too_much["amount"]["refund"] = json!(1501);
    let (status, _) = wx_call(
        &s,
        &m,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&too_much),
        now(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = sandbox_post(
        format!("{}/sandbox/fail-refunds", s.running.wechatpay_base),
        json!({"out_trade_no": no}),
    )
    .await;
    assert_eq!(status, 200);
    too_much["amount"]["refund"] = json!(1500);
    let (status, _) = wx_call(
        &s,
        &m,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&too_much),
        now(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, raw) = next(&mut notices).await;
    let envelope: Value = serde_json::from_slice(&raw).expect("JSON");
    assert_eq!(envelope["event_type"], "REFUND.ABNORMAL");
    let (_, queried) = wx_call(
        &s,
        &m,
        "GET",
        &format!("/v3/refund/domestic/refunds/{no}R02"),
        None,
        now(),
    )
    .await;
    assert_eq!(queried["status"], "ABNORMAL");
}

// --- Alipay -----------------------------------------------------------------------------------

fn alipay_timestamp() -> String {
    let at = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8));
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

/// Signed Alipay parameters (the published algorithm: all but `sign`, empty dropped, sorted).
fn alipay_signed(
    key: &RsaPrivateKey,
    app_id: &str,
    method: &str,
    biz: &Value,
    notify_url: Option<&str>,
) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = [
        ("app_id", app_id.to_owned()),
        ("method", method.to_owned()),
        ("format", "JSON".into()),
        ("charset", "utf-8".into()),
        ("sign_type", "RSA2".into()),
        ("timestamp", alipay_timestamp()),
        ("version", "1.0".into()),
        ("biz_content", biz.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(url) = notify_url {
        params.insert("notify_url".into(), url.into());
    }
    let content = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    params.insert("sign".into(), rsa_sign(key, content.as_bytes()));
    params
}

fn form(params: &BTreeMap<String, String>) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish()
}

fn alipay_public(s: &Server) -> RsaPublicKey {
    let alipay = s.running.app.config.alipay.as_ref().expect("Alipay on");
    let pem = alipay
        .public_keys
        .last()
        .expect("the stand-in's key is configured");
    RsaPublicKey::from_public_key_pem(pem).expect("PEM")
}

/// A gateway call; the response object, its signature checked over the exact JSON text sent.
async fn alipay_call(s: &Server, key: &RsaPrivateKey, method: &str, biz: Value) -> Value {
    let app_id = s
        .running
        .app
        .config
        .alipay
        .as_ref()
        .expect("Alipay")
        .app_id
        .clone();
    let params = alipay_signed(key, &app_id, method, &biz, None);
    let text = reqwest::Client::new()
        .post(&s.running.alipay_gateway)
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(form(&params))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    let name = format!("\"{}_response\":", method.replace('.', "_"));
    let start = text.find(&name).expect("response key") + name.len();
    let end = text.rfind(",\"sign\":\"").expect("sign");
    let raw = &text[start..end];
    let whole: Value = serde_json::from_str(&text).expect("JSON");
    assert!(
        rsa_verify(
            &alipay_public(s),
            raw.as_bytes(),
            whole["sign"].as_str().expect("sign")
        ),
        "the answer's sign verifies over the raw response text"
    );
    serde_json::from_str(raw).expect("response object")
}

fn order_biz(no: &str, amount: &str, product_code: &str) -> Value {
    json!({
        "out_trade_no": no,
        "total_amount": amount,
        "subject": "人像摄影",
        "product_code": product_code,
        "extend_params": {"royalty_freeze": "true"},
    })
}

#[tokio::test]
async fn alipay_refuses_a_bad_signature_and_pays_with_a_verified_notification() {
    let s = server(&[]).await;
    let app_key = private(s.keys["alipay_app_key"].as_str().expect("app key"));
    let wrong_key = private(s.keys["merchant_key"].as_str().expect("key"));
    let no = "ORDER0000000000000000003";

    let refused = alipay_call(
        &s,
        &wrong_key,
        "alipay.trade.query",
        json!({"out_trade_no": no}),
    )
    .await;
    assert_eq!(refused["code"], "40002");
    assert_eq!(refused["sub_code"], "isv.invalid-signature");
    let unknown = alipay_call(
        &s,
        &app_key,
        "alipay.trade.query",
        json!({"out_trade_no": no}),
    )
    .await;
    assert_eq!(unknown["sub_code"], "ACQ.TRADE_NOT_EXIST");

    // The app's order string, as the payments function would sign it.
    let (notify_url, mut notices) = catcher("success").await;
    let order = form(&alipay_signed(
        &app_key,
        "9021000100000001",
        "alipay.trade.app.pay",
        &order_biz(no, "25.00", "QUICK_MSECURITY_PAY"),
        Some(&notify_url),
    ));
    let pay_url = format!("{}/sandbox/pay", s.running.alipay_base);
    let tampered = order.replace("25.00", "0.01");
    let (status, _) = sandbox_post(pay_url.clone(), json!({"order_string": tampered})).await;
    assert_eq!(status, 400, "a tampered order string is refused");
    let (status, paid) = sandbox_post(pay_url, json!({"order_string": order})).await;
    assert_eq!(
        (status, paid["notified"].as_str()),
        (200, Some("success")),
        "{paid}"
    );

    let (_, raw) = next(&mut notices).await;
    let params: BTreeMap<String, String> = url::form_urlencoded::parse(&raw).into_owned().collect();
    let content = params
        .iter()
        .filter(|(k, v)| *k != "sign" && *k != "sign_type" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    assert!(rsa_verify(
        &alipay_public(&s),
        content.as_bytes(),
        &params["sign"]
    ));
    assert_eq!(params["trade_status"], "TRADE_SUCCESS");
    assert_eq!(params["total_amount"], "25.00");
    assert_eq!(params["out_trade_no"], no);
    assert_eq!(params["app_id"], "9021000100000001");
    assert_eq!(params["seller_id"], "2088000000000001");

    let trade = alipay_call(
        &s,
        &app_key,
        "alipay.trade.query",
        json!({"out_trade_no": no}),
    )
    .await;
    assert_eq!(
        (trade["code"].as_str(), trade["trade_status"].as_str()),
        (Some("10000"), Some("TRADE_SUCCESS"))
    );

    let refund =
        json!({"out_trade_no": no, "refund_amount": "10.00", "out_request_no": format!("{no}R01")});
    let first = alipay_call(&s, &app_key, "alipay.trade.refund", refund.clone()).await;
    assert_eq!(
        (first["code"].as_str(), first["fund_change"].as_str()),
        (Some("10000"), Some("Y")),
        "{first}"
    );
    let again = alipay_call(&s, &app_key, "alipay.trade.refund", refund).await;
    assert_eq!(
        (again["code"].as_str(), again["fund_change"].as_str()),
        (Some("10000"), Some("N"))
    );
    assert_eq!(again["refund_fee"], "10.00", "the repeat moved no money");
    let queried = alipay_call(
        &s,
        &app_key,
        "alipay.trade.fastpay.refund.query",
        json!({"out_trade_no": no, "out_request_no": format!("{no}R01")}),
    )
    .await;
    assert_eq!(queried["refund_status"], "REFUND_SUCCESS");
    assert_eq!(queried["refund_amount"], "10.00");
    let unknown = alipay_call(
        &s,
        &app_key,
        "alipay.trade.fastpay.refund.query",
        json!({"out_trade_no": no, "out_request_no": format!("{no}R09")}),
    )
    .await;
    assert_eq!(
        unknown,
        json!({"code": "10000", "msg": "Success"}),
        "a refund Alipay has not received: a bare success"
    );
    let (_, raw) = next(&mut notices).await;
    let params: BTreeMap<String, String> = url::form_urlencoded::parse(&raw).into_owned().collect();
    assert_eq!(
        params["refund_fee"], "10.00",
        "the refund's own notification"
    );

    let too_much = alipay_call(
        &s,
        &app_key,
        "alipay.trade.refund",
        json!({"out_trade_no": no, "refund_amount": "15.01", "out_request_no": format!("{no}R02")}),
    )
    .await;
    assert_eq!(too_much["code"], "40004");
    let (status, _) = sandbox_post(
        format!("{}/sandbox/fail-refunds", s.running.alipay_base),
        json!({"out_trade_no": no}),
    )
    .await;
    assert_eq!(status, 200);
    let failed = alipay_call(
        &s,
        &app_key,
        "alipay.trade.refund",
        json!({"out_trade_no": no, "refund_amount": "15.00", "out_request_no": format!("{no}R02")}),
    )
    .await;
    assert_eq!(failed["sub_code"], "ACQ.SELLER_BALANCE_NOT_ENOUGH");
}

#[tokio::test]
async fn alipay_wap_url_is_recorded_and_closed() {
    let s = server(&[]).await;
    let app_key = private(s.keys["alipay_app_key"].as_str().expect("app key"));
    let no = "ORDER0000000000000000004";
    let url = format!(
        "{}?{}",
        s.running.alipay_gateway,
        form(&alipay_signed(
            &app_key,
            "9021000100000001",
            "alipay.trade.wap.pay",
            &order_biz(no, "0.01", "QUICK_WAP_WAY"),
            Some("http://127.0.0.1:9/notify"),
        ))
    );
    let page = reqwest::get(&url).await.expect("GET");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.expect("page").contains("/sandbox/pay"));
    let trade = alipay_call(
        &s,
        &app_key,
        "alipay.trade.query",
        json!({"out_trade_no": no}),
    )
    .await;
    assert_eq!(trade["trade_status"], "WAIT_BUYER_PAY");
    let closed = alipay_call(
        &s,
        &app_key,
        "alipay.trade.close",
        json!({"out_trade_no": no}),
    )
    .await;
    assert_eq!(closed["code"], "10000");
    let (status, _) = sandbox_post(
        format!("{}/sandbox/pay", s.running.alipay_base),
        json!({"url": url, "notify": false}),
    )
    .await;
    assert_eq!(status, 409, "a closed trade cannot be paid");
}

#[tokio::test]
async fn an_outside_tests_keys_win_and_the_stand_ins_keys_are_trusted_besides() {
    let generate = || RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("key");
    let merchant_key = generate();
    let app_key = generate();
    let outside_platform = generate();
    let pem = |k: &RsaPrivateKey| k.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string();
    let public_pem = |k: &RsaPrivateKey| {
        use rsa::pkcs8::EncodePublicKey as _;
        RsaPublicKey::from(k)
            .to_public_key_pem(LineEnding::LF)
            .expect("pem")
    };
    let apiv3 = "0123456789abcdef0123456789ABCDEF";
    let merchant_pem = pem(&merchant_key).replace('\n', "\\n");
    let platform_public = public_pem(&outside_platform);
    // Bare base64 DER, as Alipay's key tool shows it.
    let app_pem = STANDARD.encode(app_key.to_pkcs8_der().expect("der").as_bytes());
    let alipay_public = public_pem(&outside_platform);
    let s = server(&[
        ("WECHATPAY_MCHID", "1600000001"),
        (
            "WECHATPAY_MERCHANT_SERIAL",
            "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        ),
        ("WECHATPAY_MERCHANT_KEY", &merchant_pem),
        ("WECHATPAY_APIV3_KEY", apiv3),
        (
            "WECHATPAY_PUBLIC_KEY_ID",
            "PUB_KEY_ID_01142321349124100000000000000000",
        ),
        ("WECHATPAY_PUBLIC_KEY", &platform_public),
        ("ALIPAY_APP_ID", "2021000000000042"),
        ("ALIPAY_APP_PRIVATE_KEY", &app_pem),
        ("ALIPAY_PUBLIC_KEY", &alipay_public),
    ])
    .await;
    let pay = s
        .running
        .app
        .config
        .wechat_pay
        .as_ref()
        .expect("WeChat Pay");
    assert_eq!(pay.mchid, "1600000001");
    let ids: Vec<&str> = pay.public_keys.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 2, "the outside key and the stand-in's: {ids:?}");
    // Both verify answers and notifications (by the serial they name); the stand-in's comes first
    // because it is the one a receiver's name is encrypted with: the local server always sends
    // WeChat Pay's API calls to its stand-in, which holds only its own private key.
    assert!(ids.contains(&"PUB_KEY_ID_01142321349124100000000000000000"));
    assert_ne!(ids[0], "PUB_KEY_ID_01142321349124100000000000000000");
    assert_eq!(
        s.running
            .app
            .config
            .alipay
            .as_ref()
            .expect("Alipay")
            .public_keys
            .len(),
        2
    );

    // The stand-in checks the outside merchant key and encrypts with the outside APIv3 key.
    let m = Merchant {
        mchid: "1600000001".into(),
        serial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1".into(),
        key: merchant_key,
    };
    let (notify_url, mut notices) = catcher("").await;
    let mut body = jsapi("ORDER0000000000000000005", &notify_url, 1);
    body["mchid"] = json!("1600000001");
    let (status, answer) = wx_call(
        &s,
        &m,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(&body),
        now(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let generated = generated_merchant(&s);
    let (status, _) = wx_call(
        &s,
        &Merchant {
            mchid: "1600000001".into(),
            ..generated
        },
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(&body),
        now(),
    )
    .await;
    assert_eq!(
        status, 401,
        "the generated merchant key is not the configured one"
    );
    sandbox_post(
        format!("{}/sandbox/pay", s.running.wechatpay_base),
        json!({"out_trade_no": "ORDER0000000000000000005"}),
    )
    .await;
    let (_, raw) = next(&mut notices).await;
    let resource = decrypt(apiv3, &serde_json::from_slice(&raw).expect("JSON"));
    assert_eq!(resource["mchid"], "1600000001");

    let queried = alipay_call(
        &s,
        &app_key,
        "alipay.trade.query",
        json!({"out_trade_no": "X1"}),
    )
    .await;
    assert_eq!(
        queried["sub_code"], "ACQ.TRADE_NOT_EXIST",
        "the outside app key verifies"
    );
}

#[tokio::test]
async fn the_sandbox_payment_keys_are_kept_owner_only_and_reused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::TempDir::new().expect("temp dir");
    let options = Options {
        addr: "127.0.0.1:0".parse().expect("address"),
        store: StoreChoice::Embedded {
            data_dir: dir.path().to_owned(),
        },
        session_secret: None,
        config: Default::default(),
    };
    let path = dir.path().join("payment-keys");
    let first = start(options.clone()).await.expect("start");
    let written = std::fs::read_to_string(&path).expect("written");
    assert_eq!(
        std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    let trusted = first
        .app
        .config
        .wechat_pay
        .as_ref()
        .expect("on")
        .public_keys
        .clone();
    drop(first);
    // The database is released once the first server's tasks have ended.
    let restart = || async {
        loop {
            match start(options.clone()).await {
                Err(e) if e.contains("already open") => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                other => break other,
            }
        }
    };
    let second = restart().await.expect("restart");
    assert_eq!(std::fs::read_to_string(&path).expect("kept"), written);
    assert_eq!(
        second
            .app
            .config
            .wechat_pay
            .as_ref()
            .expect("on")
            .public_keys,
        trusted,
        "a restart trusts the same WeChat Pay key (payments started before it still verify)"
    );
    drop(second);
    std::fs::write(&path, "not keys").expect("write");
    let refused = restart()
        .await
        .err()
        .expect("a damaged key file is a start-up error");
    assert!(refused.contains("payment-keys"), "{refused}");
}

// --- Our adapters (shared/src/payments, on ring) against the stand-ins -------------------------

/// The local server with the notifications sent to the test's catcher instead of the API.
async fn server_notifying(
    reply: &'static str,
) -> (Server, mpsc::UnboundedReceiver<(hyper::HeaderMap, Vec<u8>)>) {
    let (url, rx) = catcher(reply).await;
    let base = url.trim_end_matches("/notify").to_owned();
    (server(&[("RENJI_PUBLIC_BASE_URL", &base)]).await, rx)
}

fn payment(
    channel: renji_shared::payments::Channel,
    order_no: &str,
    fen: i64,
) -> renji_shared::payments::PaymentStart {
    renji_shared::payments::PaymentStart {
        channel,
        order_no: order_no.into(),
        description: "人像摄影".repeat(20),
        amount: renji_shared::money::Fen::from_fen(fen),
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
        payer_openid: Some("o-test-buyer".into()),
        prepay_id: None,
    }
}

#[tokio::test]
async fn our_wechatpay_adapter_and_verifier_work_against_the_stand_in() {
    use renji_shared::money::Fen;
    use renji_shared::payments::{Channel, Notice, RefundRequest, RefundState, Trade};
    let (s, mut notices) = server_notifying("").await;
    let payments = &s.running.app.payments;
    let gateway = payments.wechat.as_ref().expect("a WeChat Pay gateway");
    let verifier = payments
        .wechat_notify
        .as_ref()
        .expect("a WeChat Pay notify verifier");
    let no = "01KB0000000000000000000A";

    let started = gateway
        .start(&payment(Channel::Wechat, no, 2500))
        .await
        .expect("start");
    assert!(started.prepay_id.is_some());
    assert_eq!(gateway.query(no).await.expect("query"), Trade::Open);
    assert_eq!(
        gateway
            .query("01KB0000000000000000000Z")
            .await
            .expect("query"),
        Trade::NotFound
    );

    let (status, _) = sandbox_post(
        format!("{}/sandbox/pay", s.running.wechatpay_base),
        json!({"out_trade_no": no}),
    )
    .await;
    assert_eq!(status, 200);
    let (headers, raw) = next(&mut notices).await;
    let notice = verifier
        .verify(&headers, &raw, time::OffsetDateTime::now_utc())
        .await
        .expect("our verifier accepts the stand-in's notification");
    let Notice::Paid { order_no, paid, .. } = notice else {
        panic!("a payment notice: {notice:?}")
    };
    assert_eq!((order_no.as_str(), paid.amount), (no, Fen::from_fen(2500)));
    let Trade::Paid(queried) = gateway.query(no).await.expect("query") else {
        panic!("paid")
    };
    assert_eq!(queried.transaction_id, paid.transaction_id);

    let refund = RefundRequest {
        order_no: no.into(),
        out_refund_no: format!("{no}R01"),
        amount: Fen::from_fen(1000),
        total: Fen::from_fen(2500),
        refunded_before: Fen::from_fen(0),
        reason: "买家取消".into(),
        royalty_back: None,
    };
    let state = gateway.refund(&refund).await.expect("refund");
    assert_eq!(state, RefundState::Processing);
    let (headers, raw) = next(&mut notices).await;
    let notice = verifier
        .verify(&headers, &raw, time::OffsetDateTime::now_utc())
        .await
        .expect("the refund notification verifies");
    assert!(
        matches!(&notice, Notice::Refund { state: RefundState::Succeeded { .. }, out_refund_no, .. } if *out_refund_no == refund.out_refund_no),
        "{notice:?}"
    );
    assert!(matches!(
        gateway
            .refund_query(no, &refund.out_refund_no)
            .await
            .expect("refund query"),
        RefundState::Succeeded { .. }
    ));

    let other = "01KB0000000000000000000B";
    gateway
        .start(&payment(Channel::Wechat, other, 100))
        .await
        .expect("start");
    gateway.close(other).await.expect("close");
    assert_eq!(gateway.query(other).await.expect("query"), Trade::Closed);
}

#[tokio::test]
async fn our_alipay_adapter_and_verifier_work_against_the_stand_in() {
    use renji_shared::money::Fen;
    use renji_shared::payments::{Channel, Notice, RefundRequest, RefundState, Trade};
    let (s, mut notices) = server_notifying("success").await;
    let payments = &s.running.app.payments;
    let gateway = payments.alipay.as_ref().expect("an Alipay gateway");
    let verifier = payments
        .alipay_notify
        .as_ref()
        .expect("an Alipay notify verifier");
    let no = "01KB0000000000000000000C";

    let started = gateway
        .start(&payment(Channel::Alipay, no, 2500))
        .await
        .expect("start");
    let order_string = started.client["order_string"]
        .as_str()
        .expect("order_string");
    assert_eq!(
        gateway.query(no).await.expect("query"),
        Trade::NotFound,
        "app pay not opened yet"
    );
    let (status, paid) = sandbox_post(
        format!("{}/sandbox/pay", s.running.alipay_base),
        json!({"order_string": order_string}),
    )
    .await;
    assert_eq!(status, 200, "the stand-in accepts our order string: {paid}");
    let (_, raw) = next(&mut notices).await;
    let notice = verifier
        .verify(&raw)
        .expect("our verifier accepts the stand-in's notification");
    let Notice::Paid { order_no, paid, .. } = notice else {
        panic!("a payment notice: {notice:?}")
    };
    assert_eq!((order_no.as_str(), paid.amount), (no, Fen::from_fen(2500)));
    assert!(matches!(
        gateway.query(no).await.expect("query"),
        Trade::Paid(_)
    ));

    let refund = RefundRequest {
        order_no: no.into(),
        out_refund_no: format!("{no}R01"),
        amount: Fen::from_fen(1000),
        total: Fen::from_fen(2500),
        refunded_before: Fen::from_fen(0),
        reason: "买家取消".into(),
        royalty_back: None,
    };
    assert!(matches!(
        gateway.refund(&refund).await.expect("refund"),
        RefundState::Succeeded { .. }
    ));
    assert!(
        matches!(
            gateway.refund(&refund).await.expect("again"),
            RefundState::Succeeded { .. }
        ),
        "a retry (fund_change N) is confirmed by the refund query"
    );
    assert!(matches!(
        gateway
            .refund_query(no, &refund.out_refund_no)
            .await
            .expect("refund query"),
        RefundState::Succeeded { .. }
    ));
    assert_eq!(
        gateway
            .refund_query(no, &format!("{no}R02"))
            .await
            .expect("refund query"),
        RefundState::NotFound
    );
    let (_, raw) = next(&mut notices).await;
    let notice = verifier
        .verify(&raw)
        .expect("the refund's notification verifies");
    assert!(
        matches!(&notice, Notice::Refund { out_refund_no, .. } if *out_refund_no == refund.out_refund_no),
        "a refund's notification is read as the refund, not as a payment: {notice:?}"
    );

    let wap = "01KB0000000000000000000D";
    let started = gateway
        .start(&payment(Channel::AlipayWap, wap, 1))
        .await
        .expect("start");
    let url = started.client["url"].as_str().expect("url");
    let page = reqwest::get(url).await.expect("open the wap URL");
    assert_eq!(
        page.status().as_u16(),
        200,
        "{}",
        page.text().await.unwrap_or_default()
    );
    assert_eq!(gateway.query(wap).await.expect("query"), Trade::Open);
    gateway.close(wap).await.expect("close");
    assert_eq!(gateway.query(wap).await.expect("query"), Trade::Closed);
}
