//! The WeChat server API adapter (`renji_shared::wechat::api::HttpWechatApi`) against the
//! sandbox stand-in, on both stores: one shared access token however many processes ask at once,
//! refreshed once on 40001 and never with `force_refresh`; the content checks' verdicts and
//! errors; subscribe messages; the stand-in's signed, encrypted media check push; shipping
//! records.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use renji_local::http_server::{self, HttpRequest, HttpResponse};
use renji_local::sandbox::wechat;
use renji_shared::config::{Redacted, SecretSetting, WechatConfig};
use renji_shared::store::record::Records as _;
use renji_shared::store::{keys, DynStore};
use renji_shared::wechat::api::{
    upload_time, HttpWechatApi, ImageCheck, PlatformError, Scene, Shipped, ShippingInfo,
    ShippingOrderKey, SubscribeMessage, Suggest, TextCheck, WechatApi,
};
use renji_shared::wechat::push::PushKeys;
use renji_shared::wechat::token::StoredToken;
use renji_tests::{on_both_stores, Backend, TestStore};
use serde_json::{json, Value};
use tokio::net::TcpListener;

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// A new adapter (as a new Lambda instance would build) over `store`.
fn adapter(base: &str, store: &DynStore) -> HttpWechatApi {
    let config = WechatConfig {
        appid: wechat::APPID.into(),
        secret: SecretSetting::Value(Redacted(wechat::SECRET.into())),
        api_base: base.into(),
        push: None,
        miniprogram_state: "developer".into(),
    };
    let secrets = renji_shared::secrets::Secrets::from_env(std::time::Duration::from_secs(60));
    let secret = Arc::new(renji_shared::wechat::secret(&config.secret, &secrets).unwrap());
    HttpWechatApi::new(&config, secret, store.clone(), &config.miniprogram_state)
}

async fn stats(base: &str) -> Value {
    reqwest::get(format!("{base}/sandbox/wechat/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn text(content: &str) -> TextCheck<'_> {
    TextCheck {
        openid: "o-author",
        scene: Scene::Forum,
        content,
        title: None,
        nickname: None,
    }
}

async fn one_token_for_everyone(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (base, _task) = wechat::spawn(listener().await).unwrap();
    // 20 cold instances at once: one stable_token fetch between them.
    let calls = (0..20).map(|_| {
        let api = adapter(&base, &store.store);
        async move { api.check_text(&text("你好")).await }
    });
    for verdict in futures_util::future::join_all(calls).await {
        assert_eq!(verdict.unwrap().suggest, Suggest::Pass);
    }
    let s = stats(&base).await;
    assert_eq!(s["token_fetches"], 1, "{s}");
    assert_eq!(s["text_checks"], 20, "{s}");
    let stored: StoredToken = store
        .get_record(&keys::wechat_token(wechat::APPID))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 1);
    assert!(stored.token.is_some() && stored.lease_until.is_none());
    assert!(stored.refresh_at > time::OffsetDateTime::now_utc().unix_timestamp() + 6000);

    // WeChat invalidates the token: the next call sees 40001, expires the stored token (it is the
    // failing one), fetches once more and retries once. Others then use the new one.
    reqwest::Client::new()
        .post(format!("{base}/sandbox/wechat/rotate-token"))
        .send()
        .await
        .unwrap();
    let api = adapter(&base, &store.store);
    assert_eq!(
        api.check_text(&text("你好")).await.unwrap().suggest,
        Suggest::Pass
    );
    let again = adapter(&base, &store.store);
    again.check_text(&text("再见")).await.unwrap();
    let s = stats(&base).await;
    assert_eq!(s["token_fetches"], 2, "{s}");
    assert_eq!(s["force_refreshes"], 0, "never force_refresh: {s}");

    // A process holding an outdated token (version 2 is stored now) does not expire the new one.
    let stale = adapter(&base, &store.store);
    stale.check_text(&text("一")).await.unwrap();
    reqwest::Client::new()
        .post(format!("{base}/sandbox/wechat/rotate-token"))
        .send()
        .await
        .unwrap();
    let racing = (0..5).map(|_| {
        let api = adapter(&base, &store.store);
        async move { api.check_text(&text("二")).await }
    });
    for verdict in futures_util::future::join_all(racing).await {
        verdict.unwrap();
    }
    let s = stats(&base).await;
    assert_eq!(
        s["token_fetches"], 3,
        "one fetch after the second rotation: {s}"
    );
}

async fn verdicts_and_errors(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (base, _task) = wechat::spawn(listener().await).unwrap();
    let api = adapter(&base, &store.store);
    let risky = api.check_text(&text("买 sandbox-risky 的")).await.unwrap();
    assert_eq!((risky.suggest, risky.label), (Suggest::Risky, 20001));
    assert!(!risky.trace_id.is_empty());
    let review = api.check_text(&text("sandbox-review")).await.unwrap();
    assert_eq!((review.suggest, review.label), (Suggest::Review, 21000));
    assert_eq!(
        api.check_text(&text("sandbox-61010")).await,
        Err(PlatformError::NotRecentlyActive)
    );
    assert!(matches!(
        api.check_text(&text("sandbox-outage")).await,
        Err(PlatformError::Unavailable(_))
    ));
    assert_eq!(
        api.check_text(&TextCheck {
            openid: "",
            ..text("x")
        })
        .await,
        Err(PlatformError::Refused(40003))
    );

    let message = SubscribeMessage {
        touser: "o-seller".into(),
        template_id: "tpl-paid".into(),
        page: Some("pages/order/detail?id=1".into()),
        data: json!({"thing1": {"value": "摄影服务"}, "amount2": {"value": "¥12.50"}}),
    };
    api.send_subscribe_message(&message).await.unwrap();
    assert_eq!(
        api.send_subscribe_message(&SubscribeMessage {
            touser: "o-sandbox-43101".into(),
            ..message.clone()
        })
        .await,
        Err(PlatformError::NotSubscribed)
    );
    let sent: Value = reqwest::get(format!("{base}/sandbox/wechat/messages"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = sent["messages"].as_array().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["touser"], "o-seller");
    assert_eq!(sent[0]["page"], "pages/order/detail?id=1");
    assert_eq!(sent[0]["miniprogram_state"], "developer");
    assert_eq!(sent[0]["data"]["thing1"]["value"], "摄影服务");

    // A wrong AppSecret is the app's configuration, not an outage.
    let wrong = {
        let config = WechatConfig {
            appid: wechat::APPID.into(),
            secret: SecretSetting::Value(Redacted("wrong".into())),
            api_base: base.clone(),
            push: None,
            miniprogram_state: "formal".into(),
        };
        let secrets = renji_shared::secrets::Secrets::from_env(std::time::Duration::from_secs(60));
        let secret = Arc::new(renji_shared::wechat::secret(&config.secret, &secrets).unwrap());
        let other = TestStore::new(backend).await;
        HttpWechatApi::new(&config, secret, other.store.clone(), "formal")
    };
    assert_eq!(
        wrong.check_text(&text("x")).await,
        Err(PlatformError::Misconfigured(40125))
    );
}

/// What the fake events route received.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn media_checks_are_pushed_signed_and_encrypted(backend: Backend) {
    let store = TestStore::new(backend).await;
    // The file WeChat fetches, and the events route it pushes to.
    let received = Received::default();
    let sink = received.clone();
    let files = listener().await;
    let files_base = format!("http://{}", files.local_addr().unwrap());
    let _files = http_server::spawn(
        files,
        Arc::new(move |req: HttpRequest| {
            let sink = sink.clone();
            Box::pin(async move { serve(req, sink).await })
        }),
    );
    let keys = PushKeys::new(wechat::PUSH_TOKEN, wechat::PUSH_AES_KEY).unwrap();
    let (base, _task) = wechat::spawn_pushing(
        listener().await,
        Some(wechat::PushTarget {
            events_url: format!("{files_base}/events"),
            keys: keys.clone(),
        }),
    )
    .unwrap();
    let api = adapter(&base, &store.store);
    let mut traces = Vec::new();
    for file in ["clean.png", "risky.png", "missing.png"] {
        let trace = api
            .check_image(&ImageCheck {
                openid: "o-author",
                scene: Scene::Forum,
                media_url: &format!("{files_base}/files/{file}"),
            })
            .await
            .unwrap();
        traces.push(trace);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while received.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pushes = received.lock().unwrap().clone();
    assert_eq!(pushes.len(), 3, "{pushes:?}");
    let mut verdicts = std::collections::HashMap::new();
    for (query, body) in pushes {
        let q: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        let encrypt = body["Encrypt"].as_str().unwrap();
        assert_eq!(q["encrypt_type"], "aes");
        assert!(keys.verify_signature(&q["signature"], &q["timestamp"], &q["nonce"]));
        assert!(keys.verify_msg_signature(
            &q["msg_signature"],
            &q["timestamp"],
            &q["nonce"],
            encrypt
        ));
        let event: Value =
            serde_json::from_slice(&keys.decrypt(encrypt, wechat::APPID).unwrap()).unwrap();
        assert_eq!(event["Event"], "wxa_media_check");
        assert_eq!(event["FromUserName"], "o-author");
        assert_eq!(q["openid"], "o-author");
        verdicts.insert(
            event["trace_id"].as_str().unwrap().to_owned(),
            (
                event["errcode"].as_i64().unwrap(),
                event["result"]["suggest"].as_str().unwrap().to_owned(),
            ),
        );
    }
    assert_eq!(verdicts[&traces[0]], (0, "pass".to_owned()));
    assert_eq!(verdicts[&traces[1]], (0, "risky".to_owned()));
    assert_eq!(verdicts[&traces[2]].0, -1008);
}

async fn serve(req: HttpRequest, received: Received) -> HttpResponse {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let (status, bytes): (u16, Vec<u8>) = match path.as_str() {
        "/events" => {
            received
                .lock()
                .unwrap()
                .push((query, serde_json::from_slice(&body).unwrap()));
            (200, b"success".to_vec())
        }
        "/files/clean.png" => (200, b"\x89PNG a clean picture".to_vec()),
        "/files/risky.png" => (200, b"\x89PNG sandbox-risky".to_vec()),
        _ => (404, Vec::new()),
    };
    hyper::Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(bytes)))
        .unwrap()
}

/// `upload_shipping_info` through the shared token: the body WeChat documents for virtual goods
/// (checked by the stand-in), a token WeChat no longer takes refreshed once, WeChat's one
/// re-shipping and then "already held" as success, a refusal and an outage told apart.
async fn shipping_records(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (base, _task) = wechat::spawn(listener().await).unwrap();
    let api = adapter(&base, &store.store);
    // 2026-11-29T23:59:58.5Z is 07:59:58.500 on the 30th in China.
    let at = time::macros::datetime!(2026-11-29 23:59:58.5 UTC);
    assert_eq!(upload_time(at), "2026-11-30T07:59:58.500+08:00");
    let info = ShippingInfo {
        order_key: ShippingOrderKey::Transaction("4200000000202611290000000001".into()),
        payer_openid: "o-buyer".into(),
        item_desc: "跟".repeat(130),
        upload_time: at,
    };
    assert_eq!(api.upload_shipping_info(&info).await, Ok(Shipped::Now));
    let sent: Value = reqwest::get(format!("{base}/sandbox/wechat/shipping"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = &sent["shipments"][0];
    assert_eq!(sent["logistics_type"], 3);
    assert_eq!(sent["delivery_mode"], 1);
    assert_eq!(sent["payer"]["openid"], "o-buyer");
    assert_eq!(sent["upload_time"], "2026-11-30T07:59:58.500+08:00");
    // item_desc is cut to WeChat's 120 characters.
    let desc = sent["shipping_list"][0]["item_desc"].as_str().unwrap();
    assert_eq!(desc.chars().count(), 120);
    // A token WeChat no longer takes: refreshed once, the call goes through.
    reqwest::Client::new()
        .post(format!("{base}/sandbox/wechat/rotate-token"))
        .send()
        .await
        .unwrap();
    // Again: WeChat's one re-shipping; a third time it already holds it (10060003): success.
    assert_eq!(api.upload_shipping_info(&info).await, Ok(Shipped::Now));
    assert_eq!(
        api.upload_shipping_info(&info).await,
        Ok(Shipped::Before(10060003))
    );
    let s = stats(&base).await;
    assert_eq!(
        (&s["token_fetches"], &s["shipping_uploads"]),
        (&json!(2), &json!(2)),
        "{s}"
    );
    // By merchant number (order_number_type 1) too.
    let by_merchant = ShippingInfo {
        order_key: ShippingOrderKey::Merchant {
            mchid: "1230000109".into(),
            out_trade_no: "01KB0000000000000000000000".into(),
        },
        item_desc: "跟拍".into(),
        ..info.clone()
    };
    assert_eq!(
        api.upload_shipping_info(&by_merchant).await,
        Ok(Shipped::Now)
    );
    // Refused for good (10060004, not shippable) vs an outage (-1): retry only the latter.
    let refused = ShippingInfo {
        item_desc: "sandbox-refuse".into(),
        ..by_merchant.clone()
    };
    assert_eq!(
        api.upload_shipping_info(&refused).await,
        Err(PlatformError::Refused(10060004))
    );
    let down = ShippingInfo {
        item_desc: "sandbox-outage".into(),
        ..by_merchant.clone()
    };
    assert!(matches!(
        api.upload_shipping_info(&down).await,
        Err(PlatformError::Unavailable(_))
    ));
    // A body WeChat would refuse: the stand-in checks the shape (an empty item_desc: 10060008).
    let empty = ShippingInfo {
        item_desc: " ".into(),
        ..by_merchant
    };
    assert_eq!(
        api.upload_shipping_info(&empty).await,
        Err(PlatformError::Refused(10060008))
    );
}

on_both_stores!(
    one_token_for_everyone,
    verdicts_and_errors,
    media_checks_are_pushed_signed_and_encrypted,
    shipping_records,
);
