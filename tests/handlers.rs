//! Handler tests fed from `events/`: each sample event, as API Gateway would deliver it to the
//! Lambda, goes through `lambda_http`'s own parsing into the function's handler. Every event in
//! the folder must be exercised here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use renji_local::template::Template;
use renji_shared::domain::orders::jobs;
use renji_tests::{on_both_stores, Backend, LocalServer};
use serde_json::{json, Value};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// Reads `events/<name>.json` with this test's bearer token and path parameters put in.
fn event(name: &str, token: Option<&str>, params: &[(&str, &str)]) -> Value {
    let path = events_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut event: Value = serde_json::from_str(&text).unwrap();
    if let (Some(token), Some(_)) = (token, event["headers"].get("authorization")) {
        event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    }
    let route = event["routeKey"].as_str().unwrap().to_owned();
    let mut raw_path = route.split_once(' ').unwrap().1.to_owned();
    for (name, value) in params {
        assert!(
            event["pathParameters"].get(name).is_some(),
            "{name} not in {route}"
        );
        event["pathParameters"][name] = json!(value);
        raw_path = raw_path.replace(&format!("{{{name}}}"), value);
    }
    event["rawPath"] = json!(raw_path);
    event["requestContext"]["http"]["path"] = json!(raw_path);
    event
}

/// `event` with its body's media URLs (`avatar_url`, `images`) replaced by uploads of `member`
/// for `purpose`, passed their check: only an upload's owner may attach it, so a sample's URLs
/// (shaped as media URLs are) are put in as this test's member's own.
async fn with_uploads(
    server: &LocalServer,
    mut event: Value,
    member: &str,
    purpose: &str,
) -> Value {
    let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    let owner = renji_shared::ids::UserId::parse(member).unwrap();
    let app = server.app();
    let passed = renji_shared::domain::media::MediaStatus::Passed;
    let base = &app.config.media.base_url;
    if body.get("avatar_url").is_some() {
        let url = renji_tests::upload_record(&app.store, base, &owner, purpose, passed).await;
        body["avatar_url"] = json!(url);
    }
    let count = body["images"].as_array().map_or(0, Vec::len);
    for i in 0..count {
        let url = renji_tests::upload_record(&app.store, base, &owner, purpose, passed).await;
        body["images"][i] = json!(url);
    }
    event["body"] = json!(body.to_string());
    event
}

async fn invoke(server: &LocalServer, event: &Value) -> (u16, Value) {
    let route = event["routeKey"].as_str().unwrap();
    let function = Template::load()
        .unwrap()
        .routes()
        .into_iter()
        .find(|r| r.key() == route)
        .unwrap_or_else(|| panic!("{route} is not in template.yaml"))
        .function;
    let req =
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event");
    // The function's own state: its store enforces its IAM statements in template.yaml.
    let app = server
        .running
        .function_app(&function)
        .expect("function exists");
    let response = Box::pin(renji_local::functions::invoke(&function, app, req))
        .await
        .expect("function exists");
    let status = response.status().as_u16();
    let text = response
        .headers()
        .get("content-type")
        .is_some_and(|t| t.as_bytes().starts_with(b"text/plain"));
    let body = match response.body() {
        // Alipay's notify route answers its text (`success`).
        lambda_http::Body::Text(t) if text => json!(t),
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        lambda_http::Body::Empty => Value::Null,
        other => panic!("unexpected body {other:?}"),
    };
    (status, body)
}

/// Calls a payment stand-in's sandbox pay (`base` is its base URL): the buyer pays.
async fn sandbox_pay(base: &str, call: Value) -> Value {
    let reply = reqwest::Client::new()
        .post(format!("{base}/sandbox/pay"))
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "sandbox pay {call}");
    reply.json().await.unwrap()
}

/// A new order of `listing` by the member of `token` (through the API): the order.
async fn new_order(server: &LocalServer, token: &str, listing: &str) -> Value {
    let reply = server
        .api
        .call(
            "POST",
            "/v1/orders",
            Some(token),
            Some(json!({"listing_id": listing, "quantity": 1, "remark": ""})),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body
}

async fn start_payment(server: &LocalServer, token: &str, order: &str, channel: &str) -> Value {
    let reply = server
        .api
        .call(
            "POST",
            &format!("/v1/orders/{order}/payments"),
            Some(token),
            Some(json!({ "channel": channel })),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

async fn order_status(server: &LocalServer, token: &str, order: &str) -> String {
    let reply = server
        .api
        .call("GET", &format!("/v1/orders/{order}"), Some(token), None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["status"].as_str().unwrap().to_owned()
}

/// The order's status once it has left `from` (a provider's notification arrives on its own),
/// waiting up to 5 s.
async fn settled_status(server: &LocalServer, token: &str, order: &str, from: &str) -> String {
    let mut status = String::new();
    for _ in 0..100 {
        status = order_status(server, token, order).await;
        if status != from {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    status
}

/// The providers' keys the local server trusts (its sandbox keys, generated into its data
/// folder; in this process's memory on a DynamoDB endpoint), to sign the notification events
/// here with RustCrypto as the providers would.
struct Keys(renji_local::sandbox::payment_keys::PaymentKeys);

impl Keys {
    async fn of(server: &LocalServer, backend: Backend) -> Self {
        let dir = match backend {
            Backend::Embedded => server.data_dir.as_ref().map(|d| d.path()),
            Backend::Dynamo => None,
        };
        Keys(
            renji_local::sandbox::payment_keys::load(dir)
                .await
                .expect("the local server's payment keys"),
        )
    }

    /// SHA256withRSA (PKCS#1 v1.5), base64, as both providers sign (the stand-ins' signer).
    fn sign(pem: &str, message: &[u8]) -> String {
        use rsa::pkcs8::DecodePrivateKey as _;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("a PKCS#8 key");
        renji_local::sandbox::payment_keys::sign(&key, message)
    }

    /// The `wechat-pay-notify` event for `order` paid as `transaction_id`: its resource
    /// encrypted with the APIv3 key (AES-256-GCM, the event's nonce and associated data), the
    /// body signed with WeChat Pay's key now, under that key's id.
    fn wechat_notification(&self, server: &LocalServer, order: &Value, transaction: &str) -> Value {
        use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
        let pay = server.app().config.wechat_pay.as_ref().expect("WeChat Pay");
        let mut event = event("wechat-pay-notify", None, &[]);
        let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
        let amount = order["amount_fen"].clone();
        let transaction = json!({
            "appid": pay.appid,
            "mchid": pay.mchid,
            "out_trade_no": order["id"],
            "transaction_id": transaction,
            "trade_type": "JSAPI",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "OTHERS",
            "attach": "",
            "success_time": "2026-11-29T12:00:05+08:00",
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {
                "total": amount,
                "payer_total": amount,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        });
        let resource = &body["resource"];
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(self.0.apiv3_key.as_bytes()).unwrap();
        let sealed = cipher
            .encrypt(
                aes_gcm::Nonce::from_slice(resource["nonce"].as_str().unwrap().as_bytes()),
                Payload {
                    msg: transaction.to_string().as_bytes(),
                    aad: resource["associated_data"].as_str().unwrap().as_bytes(),
                },
            )
            .unwrap();
        body["resource"]["ciphertext"] =
            json!(base64::engine::general_purpose::STANDARD.encode(sealed));
        let text = body.to_string();
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let headers = &mut event["headers"];
        let nonce = headers["wechatpay-nonce"].as_str().unwrap().to_owned();
        let message = format!("{timestamp}\n{nonce}\n{text}\n");
        headers["wechatpay-signature"] =
            json!(Self::sign(&self.0.wechatpay_key, message.as_bytes()));
        headers["wechatpay-timestamp"] = json!(timestamp);
        headers["wechatpay-serial"] = json!(self.0.wechatpay_key_id);
        headers["content-length"] = json!(text.len().to_string());
        event["body"] = json!(text);
        event
    }

    /// The `alipay-notify` event for `order` paid as `trade_no`: this app's ids, the order's
    /// number and amount, signed (RSA2) with Alipay's key over the sorted non-empty parameters
    /// but `sign` and `sign_type`.
    fn alipay_notification(&self, server: &LocalServer, order: &Value, trade_no: &str) -> Value {
        let alipay = server.app().config.alipay.as_ref().expect("Alipay");
        let mut event = event("alipay-notify", None, &[]);
        let fen = order["amount_fen"].as_i64().unwrap();
        let yuan = format!("{}.{:02}", fen / 100, fen % 100);
        let seller = alipay.seller_id.clone().unwrap_or_default();
        let mut fields: Vec<(String, String)> =
            url::form_urlencoded::parse(event["body"].as_str().unwrap().as_bytes())
                .into_owned()
                .filter(|(k, _)| k != "sign")
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "out_trade_no" => order["id"].as_str().unwrap().to_owned(),
                        "trade_no" => trade_no.to_owned(),
                        "app_id" | "auth_app_id" => alipay.app_id.clone(),
                        "seller_id" => seller.clone(),
                        "total_amount" | "receipt_amount" | "invoice_amount"
                        | "buyer_pay_amount" => yuan.clone(),
                        "fund_bill_list" => {
                            json!([{"amount": yuan, "fundChannel": "ALIPAYACCOUNT"}]).to_string()
                        }
                        _ => v,
                    };
                    (k, v)
                })
                .collect();
        let params: std::collections::BTreeMap<String, String> = fields.iter().cloned().collect();
        let content = renji_local::sandbox::alipay::signing_string(&params, false);
        let sign = Self::sign(&self.0.alipay_key, content.as_bytes());
        fields.push(("sign".into(), sign));
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&fields)
            .finish();
        event["headers"]["content-length"] = json!(body.len().to_string());
        event["body"] = json!(body);
        event
    }
}

/// Runs `work` to its end on a new thread with a 16 MiB stack, on this test's runtime (its
/// workers keep serving the local server meanwhile).
fn on_a_larger_stack<F>(work: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let runtime = tokio::runtime::Handle::current();
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn_scoped(scope, || runtime.block_on(work))
            .expect("a thread")
            .join()
            .expect("the work finished")
    })
}

fn nonce_of(event: &Value) -> String {
    event["queryStringParameters"]["nonce"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Media checks' events: the push URL's handshake; a signed, encrypted `wxa_media_check` push
/// (the sample's placeholders replaced, as WeChat would send it now) applied to an image the job
/// asked about; the staff media queue and a decision rejecting a video; the media job's run.
async fn media_checks(server: &LocalServer, staff: &str) {
    use renji_local::sandbox::wechat::SignedPush;
    use renji_shared::domain::media::{object_key, MediaRecord, MediaStatus, Purpose};
    use renji_shared::ids::{MediaId, UserId};
    use renji_shared::store::{keys, Record, Write};
    use renji_shared::wechat::push::PushKeys;

    let (status, echoed) = invoke(server, &event("wechat-events-handshake", None, &[])).await;
    assert_eq!((status, echoed), (200, json!("4375120948345356249")));

    let owner = UserId::generate();
    let now = time::OffsetDateTime::now_utc();
    let at = renji_shared::domain::members::rfc3339(now);
    let upload = |purpose: Purpose, content_type: &str, ext: &str| {
        let id = MediaId::generate();
        MediaRecord {
            key: object_key(&owner, purpose, &id, ext),
            id,
            owner: owner.clone(),
            purpose,
            content_type: content_type.into(),
            size: 1_000,
            status: MediaStatus::Checking,
            upload_expires_at: at.clone(),
            trace_id: None,
            reason: None,
            cover: None,
            approved_by_staff: None,
            used_by: Vec::new(),
            created_at: at.clone(),
            updated_at: at.clone(),
        }
    };
    let store = &server.app().store;
    // An image the job asked about (its trace id stored and linked) …
    let mut image = upload(Purpose::ListingImage, "image/jpeg", "jpg");
    image.trace_id = Some("handlers-trace-1".into());
    let item = image
        .to_item(
            keys::media(&owner, &image.id),
            Some(keys::media_listed(
                now.unix_timestamp() + 1_800,
                &owner,
                &image.id,
            )),
        )
        .unwrap();
    store.write(Write::put(item)).await.unwrap();
    store
        .write(
            Write::update(keys::media_check("handlers-trace-1"))
                .set("trace_id", "handlers-trace-1")
                .set("owner", owner.as_str())
                .set("media", image.id.as_str())
                .set("ttl", now.unix_timestamp() + 86_400)
                .build(),
        )
        .await
        .unwrap();

    let keys = PushKeys::new(
        renji_local::sandbox::wechat::PUSH_TOKEN,
        renji_local::sandbox::wechat::PUSH_AES_KEY,
    )
    .unwrap();
    let message = json!({
        "ToUserName": "gh_97417a04a28d", "FromUserName": "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
        "CreateTime": now.unix_timestamp(), "MsgType": "event", "Event": "wxa_media_check",
        "appid": renji_local::sandbox::wechat::APPID, "trace_id": "handlers-trace-1",
        "version": 2, "errcode": 0, "errmsg": "ok",
        "result": {"suggest": "risky", "label": "20002"}, "detail": [],
    });
    let sample = event("wechat-events-push", None, &[]);
    let ts = now.unix_timestamp().to_string();
    let nonce = nonce_of(&sample);
    let signed = |message: &Value, random| {
        SignedPush::new(
            &keys,
            message,
            "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
            &ts,
            &nonce,
            random,
        )
        .event(&sample)
    };
    let push = signed(&message, [9; 16]);
    // As shipped, the placeholders are refused.
    let mut shipped = push.clone();
    shipped["body"] = sample["body"].clone();
    let (status, _) = invoke(server, &shipped).await;
    assert_eq!(status, 401);
    let (status, answer) = invoke(server, &push).await;
    assert_eq!((status, answer), (200, json!("success")));
    let risky: MediaRecord = MediaRecord::from_item(
        store
            .get(&keys::media(&owner, &image.id))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(risky.status, MediaStatus::Risky);
    assert_eq!(risky.reason.as_deref(), Some("risky_pornography"));

    // A subscribe pop-up push (the same sample, another message): the member's grant counted.
    let (_, popped) = server.api.login("popup").await;
    let member = UserId::parse(popped["user"]["id"].as_str().unwrap()).unwrap();
    let openid = renji_shared::domain::members::Member::from_item(
        store.get(&keys::member(&member)).await.unwrap().unwrap(),
    )
    .unwrap()
    .openid;
    let popup = json!({
        "ToUserName": "gh_97417a04a28d", "FromUserName": openid,
        "CreateTime": now.unix_timestamp(), "MsgType": "event",
        "Event": "subscribe_msg_popup_event",
        "List": {"TemplateId": "sandbox-order-paid", "SubscribeStatusString": "accept",
                 "PopupScene": "0"},
    });
    let push = signed(&popup, [8; 16]);
    let (status, answer) = invoke(server, &push).await;
    assert_eq!((status, answer), (200, json!("success")));
    let grant = store
        .get(&keys::subscription_grant(&member, "sandbox-order-paid"))
        .await
        .unwrap()
        .expect("the pop-up's grant");
    assert_eq!(grant.get("confirmed"), Some(&json!(1)), "{grant:?}");

    let (status, queue) = invoke(server, &event("admin-media-queue", Some(staff), &[])).await;
    assert_eq!((status, &queue["items"]), (200, &json!([])), "{queue}");
    // A video in the staff queue.
    let video = upload(Purpose::ListingVideo, "video/mp4", "mp4");
    let mut item = video
        .to_item(
            keys::media(&owner, &video.id),
            Some(keys::media_queued(&video.id)),
        )
        .unwrap();
    item.insert("review".into(), json!("video"));
    store.write(Write::put(item)).await.unwrap();
    let (status, decided) = invoke(
        server,
        &event(
            "admin-media-decision",
            Some(staff),
            &[("id", video.id.as_str())],
        ),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], json!("rejected"));
    assert_eq!(decided["reason"], json!("视频含有不当内容"));

    let text = std::fs::read_to_string(events_dir().join("media-jobs-schedule.json")).unwrap();
    let scheduled: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(scheduled["detail-type"], json!("Scheduled Event"));
    let job = server
        .running
        .function_app("MediaJobsFunction")
        .expect("job exists");
    let report = renji_local::functions::run_job("MediaJobsFunction", job)
        .await
        .expect("job exists")
        .expect("job runs");
    assert!(report["examined"].as_u64().is_some(), "{report}");
}

/// Account deletion's events: bob has orders that are not final (409, naming them); carol, who
/// asked customer service for it in a ticket (`ticket`: the ticket-filing event, its body
/// replaced), is deleted by staff for it; dave deletes his own account (202 each); the deletion
/// job's run completes both, their IM accounts deleted at the IM stand-in.
async fn delete_accounts(server: &LocalServer, bob_token: &str, staff: &str, ticket: Value) {
    let filed = |body: Value| {
        let mut create = ticket.clone();
        create["body"] = json!(body.to_string());
        create
    };
    let (status, refused) =
        invoke(server, &event("deletion-delete-me", Some(bob_token), &[])).await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("deletion_blocked")),
        "{refused}"
    );
    assert!(!refused["error"]["blocking"].as_array().unwrap().is_empty());
    let (carol_token, carol_login) = server.api.login("carol").await;
    let carol = carol_login["user"]["id"].as_str().unwrap().to_owned();
    let mut carols =
        filed(json!({"kind": "other", "subject": "注销账号", "text": "请注销我的账号"}));
    carols["headers"]["authorization"] = json!(format!("Bearer {carol_token}"));
    let (status, request) = invoke(server, &carols).await;
    assert_eq!(status, 201, "{request}");
    let mut deletion = event("admin-member-deletion", Some(staff), &[("id", &carol)]);
    deletion["body"] = json!(
        json!({"ticket_id": request["id"], "reason": "会员通过客服申请注销账号"}).to_string()
    );
    let (status, deleting) = invoke(server, &deletion).await;
    assert_eq!(
        (status, &deleting["status"], &deleting["requested_by"]),
        (202, &json!("deleting"), &json!("staff")),
        "{deleting}"
    );
    let (dave_token, dave_login) = server.api.login("dave").await;
    let dave = dave_login["user"]["id"].as_str().unwrap().to_owned();
    let (status, deleting) =
        invoke(server, &event("deletion-delete-me", Some(&dave_token), &[])).await;
    assert_eq!(
        (status, &deleting["status"]),
        (202, &json!("deleting")),
        "{deleting}"
    );
    let schedule = "deletion-jobs-schedule";
    let text = std::fs::read_to_string(events_dir().join(format!("{schedule}.json"))).unwrap();
    let scheduled: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(scheduled["detail-type"], json!("Scheduled Event"));
    let job = server
        .running
        .function_app("DeletionJobsFunction")
        .expect("job exists");
    // Both finish in one run, their IM accounts deleted at the IM stand-in.
    let report = renji_local::functions::run_job("DeletionJobsFunction", job)
        .await
        .expect("job exists")
        .expect("job runs");
    assert_eq!(report["finished"], json!(2), "{report}");
    let deleted: Value = reqwest::get(format!("{}/sandbox/im/deleted", server.running.im_base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for member in [&carol, &dave] {
        assert!(
            deleted["deleted"]
                .as_array()
                .unwrap()
                .contains(&json!(member)),
            "{deleted}"
        );
    }
}

/// A member's nickname held for staff (the sandbox's review marker), found in the text queue and
/// approved by the sample events.
async fn decide_held_text(
    server: &LocalServer,
    bob_token: &str,
    staff: &str,
    run: &mut impl FnMut(&'static str) -> &'static str,
) {
    let held = server
        .api
        .call(
            "PATCH",
            "/v1/me",
            Some(bob_token),
            Some(json!({"nickname": "小波 sandbox-review"})),
        )
        .await;
    assert_eq!(held.status, 200, "{held:?}");
    assert_eq!(held.body["nickname_review"]["state"], json!("under_review"));
    let (status, texts) = invoke(server, &event(run("admin-held-texts"), Some(staff), &[])).await;
    assert_eq!(status, 200, "{texts}");
    assert_eq!(
        texts["items"][0]["subject"]["kind"],
        json!("nickname"),
        "{texts}"
    );
    let text = texts["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, decided) = invoke(
        server,
        &event(run("admin-text-decision"), Some(staff), &[("id", &text)]),
    )
    .await;
    assert_eq!(
        (status, &decided["decided"]["decision"]),
        (200, &json!("approve")),
        "{decided}"
    );
}

async fn every_event_runs_through_its_handler(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let mut ran = BTreeSet::new();
    let mut run = |name: &'static str| {
        ran.insert(name.to_owned());
        name
    };

    // The login event logs in as its sandbox member; the others act as that member.
    let (status, login) = invoke(&server, &event(run("auth-login"), None, &[])).await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();
    let alice = login["user"]["id"].as_str().unwrap().to_owned();
    // A second session of hers (her devices are listed, this one signed out, below).
    let (status, second) = invoke(&server, &event("auth-login", None, &[])).await;
    assert_eq!(status, 200, "{second}");
    // And a third, for "everywhere else" to sign out.
    let (status, third) = invoke(&server, &event("auth-login", None, &[])).await;
    assert_eq!(status, 200, "{third}");
    let second_session = {
        let token = second["token"].as_str().unwrap();
        let payload = token.split('.').rev().nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["s"].as_str().unwrap().to_owned()
    };
    let (bob_token, bob_login) = server.api.login("bob").await;
    let bob = bob_login["user"]["id"].as_str().unwrap().to_owned();

    let me = invoke(&server, &event(run("users-get-me"), Some(&token), &[])).await;
    assert_eq!((me.0, me.1["id"].as_str()), (200, Some(alice.as_str())));
    let patch = event(run("users-patch-me"), Some(&token), &[]);
    let patch = Box::pin(with_uploads(&server, patch, &alice, "avatar")).await;
    let sent: Value = serde_json::from_str(patch["body"].as_str().unwrap()).unwrap();
    let (status, patched) = invoke(&server, &patch).await;
    assert_eq!(status, 200, "{patched}");
    for field in [
        "nickname",
        "gender",
        "birth_date",
        "residence",
        "avatar_url",
    ] {
        assert_eq!(patched[field], sent[field], "{field}");
    }
    let (status, public) = invoke(
        &server,
        &event(run("users-get-user"), None, &[("id", &alice)]),
    )
    .await;
    assert_eq!((status, &public["nickname"]), (200, &sent["nickname"]));
    assert!(public.get("birth_date").is_none());

    // The sample person is verified by the sandbox verifier, shown masked, and may then publish.
    let (status, submitted) = invoke(
        &server,
        &event(run("verification-submit"), Some(&token), &[]),
    )
    .await;
    assert_eq!(
        (status, &submitted["status"]),
        (201, &json!("verified")),
        "{submitted}"
    );
    let (status, got) = invoke(&server, &event(run("verification-get"), Some(&token), &[])).await;
    assert_eq!((status, &got), (200, &submitted));
    assert_eq!(got["number"], json!("11**************2X"));

    // Payout accounts (a service is published only by a seller who can be paid): her Alipay
    // account (the sample), her own WeChat account (no body: her login's openid and her
    // verified name), both listed masked; the Alipay one unbound, and bound again.
    let (status, bound) = invoke(&server, &event(run("payouts-bind"), Some(&token), &[])).await;
    assert_eq!(status, 200, "{bound}");
    assert_eq!(bound["account"], json!("2088********5726"));
    let mut own = event(run("payouts-bind"), Some(&token), &[("channel", "wechat")]);
    own["body"] = json!("{}");
    let (status, bound) = invoke(&server, &own).await;
    assert_eq!(
        (status, &bound["type"]),
        (200, &json!("wechat_personal")),
        "{bound}"
    );
    assert_eq!(bound["name"], json!("*三"));
    let (status, listed) = invoke(&server, &event(run("payouts-list"), Some(&token), &[])).await;
    assert_eq!(status, 200, "{listed}");
    let channels: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["channel"])
        .collect();
    assert_eq!(channels, [&json!("alipay"), &json!("wechat")]);
    let (status, _) = invoke(&server, &event(run("payouts-unbind"), Some(&token), &[])).await;
    assert_eq!(status, 204);
    let (status, _) = invoke(&server, &event(run("payouts-bind"), Some(&token), &[])).await;
    assert_eq!(status, 200);

    // An upload form for a listing image: exact key under her prefix, the S3 POST fields.
    let (status, form) = invoke(&server, &event(run("media-upload"), Some(&token), &[])).await;
    assert_eq!(status, 201, "{form}");
    assert!(form["fields"]["key"]
        .as_str()
        .unwrap()
        .starts_with(&format!("u/{alice}/listing_image/")));
    assert_eq!(form["fields"]["Content-Type"], json!("image/jpeg"));
    assert!(form["media_url"]
        .as_str()
        .unwrap()
        .ends_with(form["fields"]["key"].as_str().unwrap()));

    let create = event(run("listings-create"), Some(&token), &[]);
    let create = Box::pin(with_uploads(&server, create, &alice, "listing_image")).await;
    let (status, listing) = invoke(&server, &create).await;
    assert_eq!(status, 201, "{listing}");
    let l = listing["id"].as_str().unwrap().to_owned();
    // Orders: bob orders alice's listing (the sample body names another listing: this one is
    // put in), lists and reads it; a provider's confirmation (through the domain) makes it paid;
    // alice accepts, bob asks a refund, and then cannot confirm.
    let mut create = event(run("orders-create"), Some(&bob_token), &[]);
    let mut sent: Value = serde_json::from_str(create["body"].as_str().unwrap()).unwrap();
    sent["listing_id"] = json!(l);
    create["body"] = json!(sent.to_string());
    let (status, order) = invoke(&server, &create).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["quantity"], sent["quantity"]);
    assert!(create["headers"]["idempotency-key"].is_string());
    let (status, again) = invoke(&server, &create).await;
    assert_eq!((status, &again), (200, &order), "the same Idempotency-Key");
    let o = order["id"].as_str().unwrap().to_owned();
    let (status, listed) = invoke(&server, &event(run("orders-list"), Some(&bob_token), &[])).await;
    assert_eq!(
        (status, &listed["items"][0]["id"]),
        (200, &json!(o)),
        "{listed}"
    );
    let (status, got) = invoke(
        &server,
        &event(run("orders-get"), Some(&bob_token), &[("id", &o)]),
    )
    .await;
    assert_eq!((status, &got), (200, &order));
    // Nothing paid yet: the seller's earnings are empty.
    let (status, earned) = invoke(&server, &event(run("orders-earnings"), Some(&token), &[])).await;
    assert_eq!(
        (status, &earned["items"], &earned["totals"]["pending_fen"]),
        (200, &json!([]), &json!(0)),
        "{earned}"
    );

    // Payments. The order is paid with WeChat Pay (the sample event); the sandbox takes the
    // money without notifying, and the notification event, signed and encrypted here with the
    // keys the local server trusts, makes it paid. Alice accepts, bob asks a refund (and then
    // cannot confirm), alice approves it: refunded through the provider.
    let keys = Keys::of(&server, backend).await;
    let (status, started) = invoke(
        &server,
        &event(run("payments-start"), Some(&bob_token), &[("id", &o)]),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(
        (&started["channel"], &started["signType"]),
        (&json!("wechat"), &json!("RSA"))
    );
    let paid = sandbox_pay(
        &server.running.wechatpay_base,
        json!({"out_trade_no": o, "notify": false}),
    )
    .await;
    assert_eq!(
        order_status(&server, &bob_token, &o).await,
        "pending_payment"
    );
    let transaction = paid["transaction_id"].as_str().unwrap();
    // As shipped, the notification's placeholders are refused (and recorded, naming no order).
    let (status, refused) = invoke(&server, &event(run("wechat-pay-notify"), None, &[])).await;
    assert_eq!(
        (status, &refused["code"]),
        (401, &json!("FAIL")),
        "{refused}"
    );
    let notify = keys.wechat_notification(&server, &order, transaction);
    let (status, body) = invoke(&server, &notify).await;
    assert_eq!((status, &body), (204, &Value::Null), "{body}");
    let (status, again) = invoke(&server, &notify).await;
    assert_eq!(
        (status, &again),
        (204, &Value::Null),
        "a repeat is a success"
    );
    assert_eq!(order_status(&server, &bob_token, &o).await, "paid");
    for (name, who, status, state) in [
        ("orders-accept", &token, 200, "accepted"),
        ("orders-refund", &bob_token, 200, "refund_requested"),
        ("orders-confirm", &bob_token, 409, "refund_requested"),
        ("payments-refund-approve", &token, 200, "refunding"),
    ] {
        let (got, body) = invoke(&server, &event(run(name), Some(who), &[("id", &o)])).await;
        assert_eq!(got, status, "{name}: {body}");
        if status == 200 {
            assert_eq!(body["status"], json!(state), "{name}");
        }
    }

    // A second order, paid with Alipay (the start event with the alipay channel, the
    // notification event signed here); alice declines bob's refund request.
    let order2 = new_order(&server, &bob_token, &l).await;
    let o2 = order2["id"].as_str().unwrap().to_owned();
    let mut start = event("payments-start", Some(&bob_token), &[("id", &o2)]);
    start["body"] = json!(json!({"channel": "alipay"}).to_string());
    let (status, started) = invoke(&server, &start).await;
    assert_eq!(status, 200, "{started}");
    let paid = sandbox_pay(
        &server.running.alipay_base,
        json!({"order_string": started["order_string"], "notify": false}),
    )
    .await;
    assert_eq!(
        order_status(&server, &bob_token, &o2).await,
        "pending_payment"
    );
    let (status, refused) = invoke(&server, &event(run("alipay-notify"), None, &[])).await;
    assert_eq!((status, &refused), (400, &json!("fail")), "as shipped");
    let notify = keys.alipay_notification(&server, &order2, paid["trade_no"].as_str().unwrap());
    let (status, body) = invoke(&server, &notify).await;
    assert_eq!((status, &body), (200, &json!("success")));
    assert_eq!(order_status(&server, &bob_token, &o2).await, "paid");
    for (name, who, status, state) in [
        ("orders-accept", &token, 200, "accepted"),
        ("orders-refund", &bob_token, 200, "refund_requested"),
        ("payments-refund-decline", &token, 200, "accepted"),
    ] {
        let (got, body) = invoke(&server, &event(run(name), Some(who), &[("id", &o2)])).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["status"], json!(state), "{name}");
    }

    // Tickets: bob disputes the second order (its refund was declined) with the sample event
    // (this order's id put in): the order waits for staff. Alice, the seller, reads the ticket
    // and answers it (the sample message); bob's list shows it. A report naming a review that
    // does not exist is refused; a privacy request is filed (the order jobs flag it below).
    let mut create = event(run("tickets-create"), Some(&bob_token), &[]);
    let mut sent: Value = serde_json::from_str(create["body"].as_str().unwrap()).unwrap();
    sent["order_id"] = json!(o2);
    create["body"] = json!(sent.to_string());
    let (status, ticket) = invoke(&server, &create).await;
    assert_eq!(
        (status, &ticket["kind"]),
        (201, &json!("dispute")),
        "{ticket}"
    );
    assert_eq!(order_status(&server, &bob_token, &o2).await, "disputed");
    let t = ticket["id"].as_str().unwrap().to_owned();
    let (status, got) = invoke(
        &server,
        &event(run("tickets-get"), Some(&token), &[("id", &t)]),
    )
    .await;
    assert_eq!((status, &got["id"]), (200, &json!(t)), "{got}");
    let said = event(run("tickets-message"), Some(&token), &[("id", &t)]);
    let said = Box::pin(with_uploads(&server, said, &alice, "ticket_image")).await;
    let (status, said) = invoke(&server, &said).await;
    assert_eq!((status, &said["from"]), (201, &json!("member")), "{said}");
    let (status, listed) =
        invoke(&server, &event(run("tickets-list"), Some(&bob_token), &[])).await;
    assert_eq!(
        (status, &listed["items"][0]["id"]),
        (200, &json!(t)),
        "{listed}"
    );
    let filed = |body: Value| {
        let mut create = create.clone();
        create["body"] = json!(body.to_string());
        create
    };
    let review = renji_shared::ids::ReviewId::generate();
    let report = json!({"kind": "report", "subject": "违规", "text": "虚假宣传",
        "listing_id": l, "review_id": review.as_str()});
    let (status, refused) = invoke(&server, &filed(report)).await;
    assert_eq!(status, 404, "{refused}");
    let privacy =
        json!({"kind": "privacy", "subject": "查看我的数据", "text": "请告诉我保存了哪些数据"});
    let (status, privacy) = invoke(&server, &filed(privacy)).await;
    assert_eq!(status, 201, "{privacy}");

    // A third, paid (the sandbox notifies the running server): alice declines it, refunded.
    let o3 = new_order(&server, &bob_token, &l).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    start_payment(&server, &bob_token, &o3, "wechat").await;
    let paid = sandbox_pay(&server.running.wechatpay_base, json!({"out_trade_no": o3})).await;
    assert_eq!(paid["notified"], json!("204"), "{paid}");
    let (status, declined) = invoke(
        &server,
        &event(run("payments-decline"), Some(&token), &[("id", &o3)]),
    )
    .await;
    assert_eq!(
        (status, &declined["status"]),
        (200, &json!("refunding")),
        "{declined}"
    );

    // Two more paid, whose refunds the providers fail: bob cancels each. Alipay refuses at
    // once (the payments function makes the order refund_failed), WeChat Pay ends the refund
    // ABNORMAL and notifies (the notify function does): each raises its staff alarm in
    // settlement:alarms.
    let fail_refunds = |base: String, id: String| async move {
        let reply = reqwest::Client::new()
            .post(format!("{base}/sandbox/fail-refunds"))
            .json(&json!({ "out_trade_no": id }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    };
    let mut failed = Vec::new();
    for channel in ["alipay", "wechat"] {
        let id = new_order(&server, &bob_token, &l).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let started = start_payment(&server, &bob_token, &id, channel).await;
        let base = match channel {
            "alipay" => {
                let base = server.running.alipay_base.clone();
                sandbox_pay(&base, json!({"order_string": started["order_string"]})).await;
                base
            }
            _ => {
                let base = server.running.wechatpay_base.clone();
                sandbox_pay(&base, json!({"out_trade_no": id})).await;
                base
            }
        };
        let paid = settled_status(&server, &bob_token, &id, "pending_payment").await;
        assert_eq!(paid, "paid", "{channel}");
        fail_refunds(base, id.clone()).await;
        let reply = server
            .api
            .call(
                "POST",
                &format!("/v1/orders/{id}/cancel"),
                Some(&bob_token),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{channel}: {reply:?}");
        let status = settled_status(&server, &bob_token, &id, "refunding").await;
        assert_eq!(status, "refund_failed", "{channel}");
        failed.push(id);
    }
    let alarms = server
        .app()
        .store
        .query(renji_shared::store::Query::partition(
            "AUDIT#target#settlement:alarms",
        ))
        .await
        .unwrap();
    for id in &failed {
        let named = alarms
            .items
            .iter()
            .filter(|a| {
                a["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(id.as_str()))
            })
            .count();
        assert_eq!(named, 1, "{id}: {:?}", alarms.items);
    }

    // A fourth, with a payment started and not made: bob cancels it (closed at the provider).
    let o4 = new_order(&server, &bob_token, &l).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    start_payment(&server, &bob_token, &o4, "wechat").await;
    let (status, cancelled) = invoke(
        &server,
        &event(run("payments-cancel"), Some(&bob_token), &[("id", &o4)]),
    )
    .await;
    assert_eq!(
        (status, &cancelled["status"]),
        (200, &json!("cancelled")),
        "{cancelled}"
    );

    // A fifth, left unpaid with an Alipay payment started: the order job expires it.
    let o5 = new_order(&server, &bob_token, &l).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    start_payment(&server, &bob_token, &o5, "alipay_wap").await;

    // A seventh, paid and never accepted: a day on, the order job refunds it (audited).
    let o7 = new_order(&server, &bob_token, &l).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    start_payment(&server, &bob_token, &o7, "wechat").await;
    let paid = sandbox_pay(&server.running.wechatpay_base, json!({"out_trade_no": o7})).await;
    assert_eq!(paid["notified"], json!("204"), "{paid}");

    // A sixth, paid, accepted and confirmed: bob reviews it (the sample body), alice answers,
    // and anyone reads the listing's reviews and hers.
    let o6 = new_order(&server, &bob_token, &l).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    start_payment(&server, &bob_token, &o6, "wechat").await;
    sandbox_pay(&server.running.wechatpay_base, json!({"out_trade_no": o6})).await;
    // WeChat is down when alice accepts: the order's shipping record waits for the order jobs.
    let outage = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/wechat/shipping-outage",
            server.running.wechat_base
        ))
        .json(&json!({"calls": 1}))
        .send()
        .await
        .unwrap();
    assert!(outage.status().is_success());
    for (who, action) in [(&token, "accept"), (&bob_token, "confirm")] {
        let reply = server
            .api
            .call(
                "POST",
                &format!("/v1/orders/{o6}/{action}"),
                Some(who),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{action}: {reply:?}");
    }
    let review = event(run("reviews-create"), Some(&bob_token), &[("id", &o6)]);
    let review = Box::pin(with_uploads(&server, review, &bob, "review_image")).await;
    let (status, review) = invoke(&server, &review).await;
    assert_eq!((status, &review["rating"]), (201, &json!(5)), "{review}");
    let r = review["id"].as_str().unwrap().to_owned();
    let (status, answered) = invoke(
        &server,
        &event(run("reviews-reply"), Some(&token), &[("id", &r)]),
    )
    .await;
    assert_eq!(status, 200, "{answered}");
    assert!(answered["reply"]["text"].is_string(), "{answered}");
    for (name, id) in [("reviews-of-listing", &l), ("reviews-of-member", &alice)] {
        let (status, page) = invoke(&server, &event(run(name), None, &[("id", id)])).await;
        assert_eq!(
            (status, &page["items"][0]["id"]),
            (200, &json!(r)),
            "{name}: {page}"
        );
    }
    // The staff console: an admin signs in through the WeCom stand-in (the sample code), looks
    // alice up, takes her listing down and restores it, works the tickets queue (bob's dispute of
    // the second order: read, answered), decides that dispute with a refund (which closes its
    // ticket), closes another ticket bob files, reads the audit trail and signs out.
    let (status, signed_in) = invoke(&server, &event(run("admin-sign-in"), None, &[])).await;
    assert_eq!(status, 200, "{signed_in}");
    assert_eq!(signed_in["staff"], json!({"id": "alice", "role": "admin"}));
    let staff = signed_in["token"].as_str().unwrap().to_owned();
    let (status, me) = invoke(&server, &event(run("admin-me"), Some(&staff), &[])).await;
    assert_eq!((status, &me["role"]), (200, &json!("admin")), "{me}");
    let (status, member) = invoke(
        &server,
        &event(run("admin-member"), Some(&staff), &[("id", &alice)]),
    )
    .await;
    assert_eq!(status, 200, "{member}");
    assert_eq!(member["profile"]["id"], json!(alice));
    assert_eq!(
        member["verification"]["number"],
        json!("11**************2X")
    );
    assert_eq!(member["listings"]["items"][0]["id"], json!(l));
    for (name, state) in [
        ("admin-takedown", "taken_down"),
        ("admin-restore", "published"),
    ] {
        let (status, body) = invoke(&server, &event(run(name), Some(&staff), &[("id", &l)])).await;
        assert_eq!(
            (status, &body["status"]),
            (200, &json!(state)),
            "{name}: {body}"
        );
    }
    // A member suspended, then restored (her sessions end; she signs in again).
    let carla = server.member("handlers-suspended", true).await;
    let (status, body) = invoke(
        &server,
        &event(
            run("admin-member-suspend"),
            Some(&staff),
            &[("id", &carla.id)],
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["suspension"]["by"], json!("alice"), "{body}");
    let me = server
        .api
        .call("GET", "/v1/me", Some(&carla.token), None)
        .await;
    assert_eq!(me.status, 401);
    let (status, body) = invoke(
        &server,
        &event(
            run("admin-member-restore"),
            Some(&staff),
            &[("id", &carla.id)],
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["suspension"], Value::Null, "{body}");
    // Bob's review of the sixth order is hidden: it leaves the listing's reviews.
    let (status, hidden) = invoke(
        &server,
        &event(run("admin-review-hide"), Some(&staff), &[("id", &r)]),
    )
    .await;
    assert_eq!(status, 200, "{hidden}");
    assert!(hidden["hidden"]["reason"].is_string(), "{hidden}");
    let reviews = server
        .api
        .call("GET", &format!("/v1/listings/{l}/reviews"), None, None)
        .await;
    assert_eq!(reviews.body["items"], json!([]), "{reviews:?}");
    // Bob's new nickname is held for staff: the text queue lists it, the sample decision
    // approves it (boxed: this walk's future is large).
    Box::pin(decide_held_text(&server, &bob_token, &staff, &mut run)).await;
    let (status, queue) = invoke(&server, &event(run("admin-tickets"), Some(&staff), &[])).await;
    assert_eq!(
        (status, &queue["items"][0]["id"]),
        (200, &json!(t)),
        "{queue}"
    );
    let (status, seen) = invoke(
        &server,
        &event(run("admin-ticket"), Some(&staff), &[("id", &t)]),
    )
    .await;
    assert_eq!((status, &seen["order"]["id"]), (200, &json!(o2)), "{seen}");
    let (status, answered) = invoke(
        &server,
        &event(run("admin-ticket-message"), Some(&staff), &[("id", &t)]),
    )
    .await;
    assert_eq!(
        (status, &answered["from"], &answered["staff_id"]),
        (201, &json!("staff"), &json!("alice")),
        "{answered}"
    );
    let (status, decided) = invoke(
        &server,
        &event(run("admin-decision"), Some(&staff), &[("id", &o2)]),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["refunds"].as_array().unwrap().len(), 1, "{decided}");
    // A refund after the split is for a completed, split order only: this one is refunding.
    let (status, refused) = invoke(
        &server,
        &event(run("admin-settled-refund"), Some(&staff), &[("id", &o2)]),
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("invalid_order_state")),
        "{refused}"
    );
    let (status, seen) = invoke(&server, &event("admin-ticket", Some(&staff), &[("id", &t)])).await;
    assert_eq!((status, &seen["status"]), (200, &json!("closed")), "{seen}");
    let other = json!({"kind": "other", "subject": "发票", "text": "请开具发票"});
    let (status, filed_other) = invoke(&server, &filed(other)).await;
    assert_eq!(status, 201, "{filed_other}");
    let other = filed_other["id"].as_str().unwrap().to_owned();
    let (status, closed) = invoke(
        &server,
        &event(run("admin-ticket-close"), Some(&staff), &[("id", &other)]),
    )
    .await;
    assert_eq!(
        (status, &closed["status"]),
        (200, &json!("closed")),
        "{closed}"
    );
    let (status, trail) = invoke(&server, &event(run("admin-audit"), Some(&staff), &[])).await;
    assert_eq!(status, 200, "{trail}");
    assert_eq!(
        trail["items"][0]["action"],
        json!("POST /admin/v1/tickets/{id}/close")
    );
    let (status, alarms) =
        invoke(&server, &event(run("admin-settlements"), Some(&staff), &[])).await;
    assert_eq!((status, &alarms["items"]), (200, &json!([])), "{alarms}");
    // Account deletion, on a thread of its own: this test's future is large enough already for
    // the test thread's 2 MiB stack in a debug build.
    let names = [
        "deletion-delete-me",
        "admin-member-deletion",
        "deletion-jobs-schedule",
    ];
    for name in names {
        run(name);
    }
    on_a_larger_stack(delete_accounts(
        &server,
        &bob_token,
        &staff,
        filed(json!({})),
    ));
    for name in [
        "wechat-events-handshake",
        "wechat-events-push",
        "admin-media-queue",
        "admin-media-decision",
        "media-jobs-schedule",
    ] {
        run(name);
    }
    on_a_larger_stack(media_checks(&server, &staff));
    let (status, body) = invoke(&server, &event(run("admin-sign-out"), Some(&staff), &[])).await;
    assert_eq!((status, &body), (204, &Value::Null));
    assert_eq!(
        invoke(&server, &event("admin-me", Some(&staff), &[]))
            .await
            .0,
        401,
        "signed out"
    );

    let expect = |name: &'static str, token: Option<&str>, params: &[(&str, &str)], status: u16| {
        (
            name,
            token.map(str::to_owned),
            params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
            status,
        )
    };
    let steps = [
        expect("listings-get", None, &[("id", &l)], 200),
        expect("listings-edit", Some(&token), &[("id", &l)], 200),
        expect("listings-browse", None, &[], 200),
        expect("listings-of-member", None, &[("id", &alice)], 200),
        expect("listings-mine", Some(&token), &[], 200),
        expect("listings-share", Some(&bob_token), &[("id", &l)], 201),
        expect("listings-share-history", Some(&bob_token), &[], 200),
        expect(
            "favorites-add",
            Some(&bob_token),
            &[("listing_id", &l)],
            204,
        ),
        expect("favorites-list", Some(&bob_token), &[], 200),
        expect(
            "favorites-remove",
            Some(&bob_token),
            &[("listing_id", &l)],
            204,
        ),
        expect(
            "users-follow",
            Some(&bob_token),
            &[("user_id", &alice)],
            204,
        ),
        expect("users-followers", None, &[("id", &alice)], 200),
        expect("users-following", None, &[("id", &bob)], 200),
        // Alice blocks bob: his follow ends; she lists and then unblocks him.
        expect("users-block", Some(&token), &[("user_id", &bob)], 204),
        expect("users-blocks", Some(&token), &[], 200),
        expect("users-unblock", Some(&token), &[("user_id", &bob)], 204),
        expect(
            "users-unfollow",
            Some(&bob_token),
            &[("user_id", &alice)],
            204,
        ),
        expect("im-usersig", Some(&token), &[], 200),
        // Alice accepts the order_paid message (and rejects ticket_answered): one grant.
        expect("notifications-record", Some(&token), &[], 200),
        expect("notifications-list", Some(&token), &[], 200),
        expect("consents-give", Some(&token), &[], 201),
        expect("consents-list", Some(&token), &[], 200),
        // Alice is verified as born in 1949: a guardian's consent is not hers to record.
        expect("consents-guardian", Some(&token), &[], 409),
        // A copy of her data: asked for (pending until the export job below builds it).
        expect("exports-request", Some(&token), &[], 202),
        expect("exports-get", Some(&token), &[], 200),
        expect("listings-remove", Some(&token), &[("id", &l)], 204),
        expect("auth-sessions", Some(&token), &[], 200),
        expect(
            "auth-session-revoke",
            Some(&token),
            &[("id", &second_session)],
            204,
        ),
        expect("auth-sessions-revoke-others", Some(&token), &[], 204),
        expect("auth-logout", Some(&token), &[], 204),
    ];
    // Alice grants `location`; a nearby browse of hers records her coarse position, which
    // near=me then uses; withdrawing (the event) deletes it.
    let granted = server
        .api
        .call(
            "POST",
            "/v1/me/consents",
            Some(&token),
            Some(json!({"scope": "location"})),
        )
        .await;
    assert_eq!(granted.status, 201, "{granted:?}");
    for near in ["39.9087,116.3975", "me"] {
        let nearby = server
            .api
            .call(
                "GET",
                &format!("/v1/listings?near={near}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(nearby.status, 200, "{near}: {nearby:?}");
    }
    run("consents-withdraw");
    let (status, body) = invoke(
        &server,
        &event("consents-withdraw", Some(&token), &[("scope", "location")]),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    // A query the route does not take is refused after the session is read (a signed-out token
    // is 401 whatever its query), with the function's own grants.
    let mut queried = event("consents-withdraw", Some(&token), &[("scope", "location")]);
    queried["rawQueryString"] = json!("zz=1");
    queried["queryStringParameters"] = json!({"zz": "1"});
    let (status, body) = invoke(&server, &queried).await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (422, &json!("zz")),
        "{body}"
    );
    let mut bodies = std::collections::HashMap::new();
    for (name, token, params, status) in &steps {
        run(name);
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (got, body) = invoke(&server, &event(name, token.as_deref(), &params)).await;
        assert_eq!(got, *status, "{name}: {body}");
        bodies.insert(*name, body);
    }
    // Her sessions, each with the sample's device facts (WeChat on Windows, its source IP).
    let sessions = bodies["auth-sessions"]["items"].as_array().unwrap();
    assert!(sessions.len() >= 2, "{sessions:?}");
    assert!(
        sessions.iter().any(|s| s["id"] == json!(second_session)),
        "{sessions:?}"
    );
    for session in sessions {
        assert_eq!(
            (&session["platform"], &session["ip"]),
            (&json!("windows"), &json!("203.0.113.10")),
            "{session}"
        );
    }
    // The browse event (city 北京, kind service, q 摄影) finds the listing it created.
    assert_eq!(bodies["listings-browse"]["items"][0]["id"], json!(l));
    assert_eq!(bodies["users-followers"]["items"][0]["id"], json!(bob));
    assert_eq!(bodies["users-blocks"]["items"][0]["id"], json!(bob));
    assert_eq!(bodies["im-usersig"]["user_id"], json!(alice));
    let granted = &bodies["notifications-list"]["subscriptions"];
    assert_eq!(
        (&granted[0]["kind"], &granted[0]["remaining"]),
        (&json!("order_paid"), &json!(1)),
        "{granted}"
    );
    assert_eq!(
        bodies["consents-list"]["documents"][0]["accepted_version"],
        json!("1.0")
    );
    assert_eq!(
        bodies["consents-guardian"]["error"]["code"],
        json!("not_a_minor")
    );
    // The owner's list (status=published) shows the listing as its owner sees it.
    assert_eq!(bodies["listings-mine"]["items"][0]["id"], json!(l));
    assert!(bodies["listings-mine"]["items"][0]
        .as_object()
        .unwrap()
        .contains_key("takedown_reason"));

    // As shipped (for `sam local invoke -e`), the events carry a placeholder token: refused.
    for name in [
        "users-get-me",
        "listings-create",
        "favorites-list",
        "verification-get",
        "im-usersig",
        "exports-get",
    ] {
        assert_eq!(
            invoke(&server, &event(name, None, &[])).await.0,
            401,
            "{name}"
        );
    }
    let me_again = invoke(&server, &event("users-get-me", Some(&token), &[])).await;
    assert_eq!(me_again.0, 401, "logged out");

    // The scheduled job's event: the job ignores its content and reports what it did.
    let schedule = run("verification-jobs-schedule");
    let text = std::fs::read_to_string(events_dir().join(format!("{schedule}.json"))).unwrap();
    let scheduled: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(scheduled["detail-type"], json!("Scheduled Event"));
    let job = server
        .running
        .function_app("VerificationJobsFunction")
        .expect("job exists");
    let report = renji_local::functions::run_job("VerificationJobsFunction", job)
        .await
        .expect("job exists")
        .expect("job runs");
    assert_eq!(report["examined"], json!(0), "{report}");

    // The order jobs' event likewise: nothing is due yet. An hour on (the clock moved, not
    // slept), the fifth order's time to pay has passed: its payment is closed at Alipay and it
    // is expired. Those runs used every permission the job's IAM statements grant, and no more.
    let schedule = run("order-jobs-schedule");
    let text = std::fs::read_to_string(events_dir().join(format!("{schedule}.json"))).unwrap();
    let scheduled: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(scheduled["detail-type"], json!("Scheduled Event"));
    let job = server
        .running
        .function_app("OrderJobsFunction")
        .expect("job exists");
    let report = renji_local::functions::run_job("OrderJobsFunction", job)
        .await
        .expect("job exists")
        .expect("job runs");
    assert_eq!(report["examined"], json!(0), "{report}");
    // The access token is replaced meanwhile (WeChat answers the stored one 40001): the run that
    // sends the sixth order's shipping record refreshes it (the shared token's every write).
    let rotated = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/wechat/rotate-token",
            server.running.wechat_base
        ))
        .send()
        .await
        .unwrap();
    assert!(rotated.status().is_success());
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let report = jobs::run(job, later, jobs::Budget::default())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(order_status(&server, &bob_token, &o5).await, "expired");
    let shipped: Value = reqwest::Client::new()
        .get(format!(
            "{}/sandbox/wechat/shipping",
            server.running.wechat_base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        shipped["shipments"][0]["order_key"]["order_number_type"],
        json!(2),
        "{shipped}"
    );
    // The order the accept event accepted, sent at once; the sixth, sent by this run.
    assert_eq!(
        shipped["shipments"].as_array().map(Vec::len),
        Some(2),
        "{shipped}"
    );
    // A day on, the seventh (paid, never accepted) is refunded by the job, which records it in
    // the order's audit list (actor system) and owes the buyer the order_declined message.
    let day_on = time::OffsetDateTime::now_utc() + time::Duration::hours(25);
    let report = jobs::run(job, day_on, jobs::Budget::default())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    assert_ne!(order_status(&server, &bob_token, &o7).await, "paid");
    let audited = server
        .app()
        .store
        .query(renji_shared::store::Query::partition(format!(
            "AUDIT#target#order:{o7}"
        )))
        .await
        .unwrap();
    assert_eq!(audited.items.len(), 1, "{:?}", audited.items);
    assert_eq!(
        (
            &audited.items[0]["action"],
            audited.items[0].get("member_id")
        ),
        (&json!("order.refund_unaccepted"), None)
    );
    // Sixteen days on, the privacy request is past its 15 days: flagged (what every run does
    // after the order jobs).
    let overdue = time::OffsetDateTime::now_utc() + time::Duration::days(16);
    let flagged = renji_shared::domain::tickets::jobs::flag_overdue(&job.store, overdue, 50)
        .await
        .unwrap();
    assert_eq!(flagged.flagged, 1, "{flagged:?}");
    // The daily reconciliation (a step of the runs from 11:00 Beijing time): a seller_paid entry
    // the provider's side does not show, on a day of its own, is one staff alarm, once.
    let seventh = renji_shared::ids::OrderId::parse(&o7).unwrap();
    let provider = renji_shared::domain::orders::get(&server.app().store, &seventh)
        .await
        .unwrap()
        .and_then(|o| o.payment)
        .map(|p| p.channel.provider())
        .expect("the seventh order was paid");
    let entry = renji_shared::domain::settlement::LedgerEntry::new(
        &seventh,
        renji_shared::domain::settlement::LedgerKind::SellerPaid,
        format!("split:PS{o7}"),
        renji_shared::money::Fen::from_fen(100),
        "2026-01-15T04:00:00Z",
    );
    server
        .app()
        .store
        .transact(vec![entry.write().unwrap()])
        .await
        .unwrap();
    use renji_shared::domain::settlement::reconcile;
    let reconciled = reconcile::day_of(job, provider, "2026-01-15", later)
        .await
        .unwrap()
        .expect("reconciled");
    assert_eq!(reconciled.mismatches.len(), 1, "{reconciled:?}");
    assert!(reconcile::day_of(job, provider, "2026-01-15", later)
        .await
        .unwrap()
        .is_none());
    renji_tests::assert_grants_all_used(&server.running, "OrderJobsFunction");

    // The notification job's event: alice, the seller, is owed the order_paid message of each
    // order bob paid, and holds one grant (the record event above): one is claimed with it and
    // sent through the WeChat stand-in, the others are recorded as skipped. Those runs used every permission the job's IAM statements grant.
    let schedule = run("notification-jobs-schedule");
    let text = std::fs::read_to_string(events_dir().join(format!("{schedule}.json"))).unwrap();
    let scheduled: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(scheduled["detail-type"], json!("Scheduled Event"));
    let job = server
        .running
        .function_app("NotificationJobsFunction")
        .expect("job exists");
    let report = renji_local::functions::run_job("NotificationJobsFunction", job)
        .await
        .expect("job exists")
        .expect("job runs");
    assert!(report["examined"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["lost"], json!(0), "{report}");
    assert_eq!(report["sent"], json!(1), "{report}");
    // The WeChat stand-in recorded it (what the README shows how to see).
    let recorded: Value = reqwest::Client::new()
        .get(format!(
            "{}/sandbox/wechat/messages",
            server.running.wechat_base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recorded = recorded["messages"].as_array().unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["template_id"], json!("sandbox-order-paid"));
    renji_tests::assert_grants_all_used(&server.running, "NotificationJobsFunction");

    // The export job's event: alice's export is built.
    let schedule = run("export-jobs-schedule");
    let text = std::fs::read_to_string(events_dir().join(format!("{schedule}.json"))).unwrap();
    let scheduled: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(scheduled["detail-type"], json!("Scheduled Event"));
    let job = server
        .running
        .function_app("ExportJobsFunction")
        .expect("job exists");
    let report = renji_local::functions::run_job("ExportJobsFunction", job)
        .await
        .expect("job exists")
        .expect("job runs");
    assert_eq!(report["built"], json!(1), "{report}");

    // A returning member whose unionid WeChat sends for the first time (the login route's one
    // update), so the check below sees every request the routes make.
    server.api.login("union:bob").await;

    // A refund staff make after o6's split to a personal receiver (recorded as the split job
    // records it): WeChat Pay's notice of its success applies it, with the audit record of the
    // part the seller owes.
    {
        use renji_shared::domain::orders::{self, OrderStatus};
        use renji_shared::domain::settlement::{OrderSettlement, SettleState, Shares};
        use renji_shared::settlement::{split_no, Receiver, ReceiverKind};
        let id = renji_shared::ids::OrderId::parse(&o6).unwrap();
        let store = &server.app().store;
        let order = orders::get(store, &id).await.unwrap().unwrap();
        let at = orders::rfc3339(time::OffsetDateTime::now_utc());
        let mut next = order.clone();
        next.version += 1;
        next.settlement = Some(OrderSettlement {
            state: SettleState::Paid,
            provider: renji_shared::payments::Provider::Wechat,
            attempt: 1,
            out_order_no: split_no(&o6),
            receiver: Some(Receiver {
                kind: ReceiverKind::WechatOpenid,
                account: "oHandlersSeller000000000001".into(),
                name: None,
            }),
            shares: Shares::of(order.refundable(), &order.settle.unwrap()),
            failure: None,
            requested_at: Some(at.clone()),
            shared_at: Some(at.clone()),
            unfreeze_no: None,
            finished_at: Some(at),
            checks: 1,
        });
        orders::commit(store, &order, &next, Vec::new())
            .await
            .unwrap();
        let admin = server.api.staff_token("staff:ada:admin").await;
        let reply = server
            .api
            .call(
                "POST",
                &format!("/admin/v1/orders/{o6}/refund"),
                Some(&admin),
                Some(json!({"amount_fen": 100, "reason": "差价"})),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let mut status = OrderStatus::Refunding;
        for _ in 0..100 {
            status = orders::get(store, &id).await.unwrap().unwrap().status;
            if status != OrderStatus::Refunding {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            status,
            OrderStatus::Completed,
            "the notification applied it"
        );
    }

    // Each route function's IAM statements grant nothing its handler did not use here (the
    // verification job's are checked where it settles attempts, tests/verification.rs; the
    // order jobs' above).
    for (function, _) in renji_local::functions::FUNCTIONS {
        renji_tests::assert_grants_all_used(&server.running, function);
    }

    let shipped: BTreeSet<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        ran, shipped,
        "every event in events/ runs through its handler here"
    );
}

on_both_stores!(every_event_runs_through_its_handler);
