//! What a benchmark run sets up before measuring: an application over a given store (the
//! functions' own state, built as `App::from_env` would), a logged-in member and fresh sessions.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use renji_local::sandbox::fakes::FakeWechat;
use renji_shared::config::Config;
use renji_shared::domain::listings;
use renji_shared::domain::members;
use renji_shared::domain::orders::{self, create, Action, Actor, Change};
use renji_shared::domain::payouts;
use renji_shared::domain::reviews;
use renji_shared::domain::suspension;
use renji_shared::domain::tickets;
use renji_shared::ids::{ListingId, OrderId, UserId};
use renji_shared::payments::{Channel, Provider};
use renji_shared::store::{keys, DynStore, Write};
use renji_shared::wechat::WechatIdentity;
use renji_shared::App;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::events::{self, Ids, RouteEvent};

use crate::pay;

/// The fixture's own seed data is written by the bench, not by a member: its texts (no sandbox
/// marker in them) pass the in-process check (the requests measured are sent to WeChat's check
/// through the local server's sandbox).
fn seeding() -> FakeWechat {
    FakeWechat::default()
}

/// The session keys of every benchmark run: the in-process state is given them, the functions
/// read the same from the Secrets Manager stand-in.
pub const SECRET: &str = "bench:cmVuamktYmVuY2gtc2Vzc2lvbi1rZXktMzItYnl0ZXM=";

/// The secrets' ARNs the functions are given, as the template gives them.
const SESSION_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-session-AbCdEf";
const WECHAT_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-wechat-AbCdEf";
const VERIFIER_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-verifier-AbCdEf";
/// The message push's Token and EncodingAESKey (the sandbox's, as the local server has them).
const PUSH_TOKEN_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-wechat-push-token-AbCdEf";
const PUSH_AES_KEY_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-wechat-push-aes-AbCdEf";
const IM_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-im-AbCdEf";
const PII_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-pii-AbCdEf";

const WECHATPAY_KEY_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-wechatpay-key-AbCdEf";
const APIV3_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-wechatpay-apiv3-AbCdEf";
const ALIPAY_KEY_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-alipay-key-AbCdEf";
const WECOM_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/bench-wecom-AbCdEf";

/// The stand-ins every run talks to: the providers' (as the local server's) and Secrets
/// Manager's, holding the secrets above.
#[derive(Clone, Debug)]
pub struct Sandboxes {
    pub wechat_base: String,
    /// The WeCom stand-in (`WECOM_API_BASE`): staff sign-in.
    pub wecom_base: String,
    pub verifier_url: String,
    /// The Secrets Manager stand-in (`AWS_ENDPOINT_URL_SECRETS_MANAGER` of the functions).
    pub secrets_manager: String,
    /// The WeChat Pay stand-in (`WECHATPAY_API_BASE`; its `/sandbox/pay`).
    pub wechatpay_base: String,
    /// The Alipay stand-in's root (its `/sandbox/pay`) and gateway (`ALIPAY_GATEWAY`).
    pub alipay_base: String,
    pub alipay_gateway: String,
    /// `RENJI_PUBLIC_BASE_URL`: a sink answering `success` to what the stand-ins send on their
    /// own (refund notifications); the benchmark delivers the notifications it measures itself.
    pub public_base: String,
    /// The local server's sandbox payment keys.
    pub keys: Arc<pay::Keys>,
    /// A loopback address nothing listens on: a service the benchmark does not stand in for
    /// (IM's REST API) fails there at once.
    pub closed_base: String,
    /// An empty S3 bucket on loopback (`AWS_ENDPOINT_URL_S3`).
    pub s3_base: String,
}

impl Sandboxes {
    pub async fn start() -> Result<(Sandboxes, Vec<JoinHandle<()>>), String> {
        use renji_local::sandbox::{alipay, payment_keys, wechat, wechatpay};
        let bind = || async {
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("sandbox: {e}"))
        };
        let (wechat_base, wechat) =
            renji_local::sandbox::wechat::spawn(bind().await?).map_err(|e| e.to_string())?;
        let (wecom_base, wecom) =
            renji_local::sandbox::wecom::spawn(bind().await?).map_err(|e| e.to_string())?;
        let (verifier_url, verifier) =
            renji_local::sandbox::verifier::spawn(bind().await?).map_err(|e| e.to_string())?;
        let (secrets_manager, secrets, stand_in) =
            renji_local::sandbox::secrets_manager::spawn(bind().await?)
                .map_err(|e| e.to_string())?;
        let keys = pay::Keys::generated().await?;
        let (wechatpay_base, wechatpay_task) = wechatpay::spawn(
            bind().await?,
            wechatpay::Merchant {
                mchid: payment_keys::MCHID.into(),
                appid: wechat::APPID.into(),
                serial: keys.text.merchant_serial.clone(),
                public_key: Some(keys.merchant_public.clone()),
                apiv3_key: Some(keys.text.apiv3_key.clone()),
            },
            wechatpay::ProviderKey {
                id: keys.text.wechatpay_key_id.clone(),
                key: keys.wechatpay.clone(),
            },
        )
        .map_err(|e| e.to_string())?;
        let (alipay_base, alipay_task) = alipay::spawn(
            bind().await?,
            alipay::App {
                app_id: payment_keys::ALIPAY_APP_ID.into(),
                seller_id: payment_keys::ALIPAY_SELLER_ID.into(),
                public_key: Some(keys.alipay_app_public.clone()),
            },
            keys.alipay.clone(),
        )
        .map_err(|e| e.to_string())?;
        let sink = bind().await?;
        let public_base = format!("http://{}", sink.local_addr().map_err(|e| e.to_string())?);
        let sink = renji_local::http_server::spawn(
            sink,
            Arc::new(|_| {
                Box::pin(async {
                    hyper::Response::new(http_body_util::Full::new(Bytes::from_static(b"success")))
                })
            }),
        );
        // The media bucket (`AWS_ENDPOINT_URL_S3`, path style): an empty bucket, so the media
        // job's look at an upload never made is S3's quick 404 (without it the SDK's global
        // endpoint, DynamoDB Local, answered every S3 call after retries, seconds per step).
        let s3 = bind().await?;
        let s3_base = format!("http://{}", s3.local_addr().map_err(|e| e.to_string())?);
        let s3 = renji_local::http_server::spawn(
            s3,
            Arc::new(|req| {
                let status = match *req.method() {
                    hyper::Method::HEAD | hyper::Method::GET => 404,
                    _ => 204,
                };
                Box::pin(async move {
                    hyper::Response::builder()
                        .status(status)
                        .body(http_body_util::Full::new(Bytes::new()))
                        .unwrap_or_default()
                })
            }),
        );
        // A port bound and released: connections to it are refused.
        let closed_base = {
            let listener = bind().await?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            format!("http://{addr}")
        };
        let sandboxes = Sandboxes {
            closed_base,
            s3_base,
            wechat_base,
            wecom_base,
            verifier_url,
            secrets_manager,
            wechatpay_base,
            alipay_gateway: format!("{alipay_base}{}", alipay::GATEWAY_PATH),
            alipay_base,
            public_base,
            keys,
        };
        let literal = literal_secrets(&sandboxes);
        for (arn, variable) in [
            (SESSION_ARN, "RENJI_SESSION_SECRET"),
            (WECHAT_ARN, "WECHAT_SECRET"),
            (VERIFIER_ARN, "RENJI_VERIFIER_TOKEN"),
            (PII_ARN, "RENJI_PII_KEYS"),
            (WECHATPAY_KEY_ARN, "WECHATPAY_MERCHANT_KEY"),
            (APIV3_ARN, "WECHATPAY_APIV3_KEY"),
            (ALIPAY_KEY_ARN, "ALIPAY_APP_PRIVATE_KEY"),
            (WECOM_ARN, "WECOM_SECRET"),
            (IM_ARN, "TENCENT_IM_SECRET"),
            (PUSH_TOKEN_ARN, "WECHAT_PUSH_TOKEN"),
            (PUSH_AES_KEY_ARN, "WECHAT_PUSH_AES_KEY"),
        ] {
            secrets.put(arn, &literal[variable]);
        }
        Ok((
            sandboxes,
            vec![
                wechat,
                wecom,
                verifier,
                stand_in,
                wechatpay_task,
                alipay_task,
                sink,
                s3,
            ],
        ))
    }
}

/// The secrets' values, by the variable that gives one directly.
pub fn literal_secrets(sandboxes: &Sandboxes) -> HashMap<&'static str, String> {
    use renji_local::sandbox::{im, verifier, wechat, wecom};
    let keys = &sandboxes.keys.text;
    HashMap::from([
        ("RENJI_SESSION_SECRET", SECRET.to_owned()),
        ("WECHAT_SECRET", wechat::SECRET.to_owned()),
        ("WECOM_SECRET", wecom::SECRET.to_owned()),
        ("TENCENT_IM_SECRET", im::secret(SECRET)),
        ("WECHAT_PUSH_TOKEN", wechat::PUSH_TOKEN.to_owned()),
        ("WECHAT_PUSH_AES_KEY", wechat::PUSH_AES_KEY.to_owned()),
        ("RENJI_VERIFIER_TOKEN", verifier::TOKEN.to_owned()),
        ("RENJI_PII_KEYS", PII_KEYS.to_owned()),
        ("WECHATPAY_MERCHANT_KEY", keys.merchant_key.clone()),
        ("WECHATPAY_APIV3_KEY", keys.apiv3_key.clone()),
        ("ALIPAY_APP_PRIVATE_KEY", keys.alipay_app_key.clone()),
    ])
}

/// The variables a function of `template.yaml` gets in the benchmark, by name: secrets by ARN,
/// read from the Secrets Manager stand-in as in Lambda.
pub fn function_env(table: &str, sandboxes: &Sandboxes) -> HashMap<&'static str, String> {
    use renji_local::sandbox::{payment_keys, wechat, wecom};
    use renji_shared::settlement::config as settlement;
    let keys = &sandboxes.keys;
    HashMap::from([
        ("RENJI_TABLE", table.to_owned()),
        ("RENJI_SESSION_SECRET_ARN", SESSION_ARN.to_owned()),
        ("RENJI_SECRETS_TTL_SECS", "300".to_owned()),
        ("RUST_LOG", "info".to_owned()),
        ("WECHAT_APPID", wechat::APPID.to_owned()),
        ("WECHAT_SECRET_ARN", WECHAT_ARN.to_owned()),
        ("WECHAT_API_BASE", sandboxes.wechat_base.clone()),
        // The message push (safe mode) with the sandbox's Token and EncodingAESKey: the
        // benchmark signs and encrypts the pushes it sends with them.
        ("WECHAT_PUSH_TOKEN_ARN", PUSH_TOKEN_ARN.to_owned()),
        ("WECHAT_PUSH_AES_KEY_ARN", PUSH_AES_KEY_ARN.to_owned()),
        // Staff sign-in against the WeCom stand-in, its departments mapped to roles.
        ("WECOM_CORP_ID", wecom::CORP_ID.to_owned()),
        ("WECOM_SECRET_ARN", WECOM_ARN.to_owned()),
        ("WECOM_API_BASE", sandboxes.wecom_base.clone()),
        ("RENJI_STAFF_ROLES", wecom::ROLES.to_owned()),
        ("RENJI_STAFF_SESSION_SECS", "7200".to_owned()),
        ("RENJI_VERIFIER_URL", sandboxes.verifier_url.clone()),
        ("RENJI_VERIFIER_TOKEN_ARN", VERIFIER_ARN.to_owned()),
        ("RENJI_PII_KEYS_ARN", PII_ARN.to_owned()),
        ("RENJI_ID_CLAIM_KEY", "bench".to_owned()),
        // Every verification call verifies a new member with the sample event's ID number.
        ("RENJI_ID_MAX_ACCOUNTS", "1000000000".to_owned()),
        ("RENJI_CREDIT_CODE_MAX_ACCOUNTS", "1000000000".to_owned()),
        // Hundreds of calls per route from one member: rate limits are measured on their own.
        ("RENJI_RATE_LIMITS", "off".to_owned()),
        // The order clock, at the template's defaults.
        ("RENJI_ORDER_PAY_MINUTES", "30".to_owned()),
        ("RENJI_ORDER_ACCEPT_HOURS", "24".to_owned()),
        ("RENJI_ORDER_AUTO_COMPLETE_DAYS", "7".to_owned()),
        ("RENJI_REFUND_AUTO_APPROVE_DAYS", "3".to_owned()),
        ("RENJI_REVIEW_DAYS", "15".to_owned()),
        ("RENJI_DISPUTE_DAYS", "15".to_owned()),
        ("RENJI_TICKET_DUE_HOURS", "48".to_owned()),
        ("RENJI_AUDIT_DAYS", "1095".to_owned()),
        (
            "RENJI_POLICY_VERSIONS",
            renji_shared::domain::consents::DEFAULT_POLICY_VERSIONS.to_owned(),
        ),
        ("RENJI_ORDER_RETENTION_DAYS", "1095".to_owned()),
        // The local server's sandbox subscribe-message templates: the sample event of
        // POST /v1/me/subscriptions names them.
        (
            "WECHAT_SUBSCRIBE_TEMPLATES",
            "order_paid=sandbox-order-paid,order_refunded=sandbox-order-refunded,\
order_declined=sandbox-order-declined,dispute_decided=sandbox-dispute-decided,\
ticket_answered=sandbox-ticket-answered,\
settlement_failed=sandbox-settlement-failed"
                .to_owned(),
        ),
        // The export bucket, at the template's defaults. Nothing reaches S3 from the benchmark:
        // a request and its status write and read the table only; a build (the export job's
        // run) fails at S3's first call and is counted as a failed attempt.
        ("RENJI_EXPORT_BUCKET", "renji-bench-exports".to_owned()),
        // The media bucket, by name: nothing reaches S3 from the benchmark (an upload form is
        // signed locally).
        ("RENJI_MEDIA_BUCKET", "renji-bench-media".to_owned()),
        // The upload limits at the template's defaults.
        ("RENJI_UPLOAD_IMAGE_MAX_BYTES", "10485760".to_owned()),
        ("RENJI_UPLOAD_VIDEO_MAX_BYTES", "104857600".to_owned()),
        ("RENJI_UPLOAD_POLICY_SECS", "300".to_owned()),
        ("RENJI_UPLOADS_PER_DAY", "200".to_owned()),
        // Media URLs at the template's default base (the CDN's domain in a deployment).
        (
            "RENJI_MEDIA_BASE_URL",
            renji_shared::config::DEFAULT_MEDIA_BASE_URL.to_owned(),
        ),
        ("RENJI_EXPORT_LINK_SECS", "900".to_owned()),
        ("RENJI_EXPORTS_PER_DAY", "3".to_owned()),
        ("RENJI_EXPORT_KEEP_DAYS", "7".to_owned()),
        // UserSigs for the sandbox IM application, its secret read by ARN.
        (
            "TENCENT_IM_SDKAPPID",
            renji_local::sandbox::im::SDKAPPID.to_owned(),
        ),
        ("TENCENT_IM_SECRET_ARN", IM_ARN.to_owned()),
        ("TENCENT_IM_USERSIG_DAYS", "7".to_owned()),
        // The payment stand-ins with the local server's sandbox keys (WeChat Pay in public-key
        // mode, as the local server configures it).
        ("WECHATPAY_MCHID", payment_keys::MCHID.to_owned()),
        ("WECHATPAY_APPID", wechat::APPID.to_owned()),
        (
            "WECHATPAY_MERCHANT_SERIAL",
            keys.text.merchant_serial.clone(),
        ),
        ("WECHATPAY_MERCHANT_KEY_ARN", WECHATPAY_KEY_ARN.to_owned()),
        ("WECHATPAY_APIV3_KEY_ARN", APIV3_ARN.to_owned()),
        (
            "WECHATPAY_PUBLIC_KEY_ID",
            keys.text.wechatpay_key_id.clone(),
        ),
        ("WECHATPAY_PUBLIC_KEY", keys.wechatpay_public_pem.clone()),
        ("WECHATPAY_PLATFORM_CERTS", String::new()),
        ("WECHATPAY_API_BASE", sandboxes.wechatpay_base.clone()),
        ("ALIPAY_APP_ID", payment_keys::ALIPAY_APP_ID.to_owned()),
        ("ALIPAY_APP_PRIVATE_KEY_ARN", ALIPAY_KEY_ARN.to_owned()),
        ("ALIPAY_PUBLIC_KEY", keys.alipay_public_pem.clone()),
        (
            "ALIPAY_SELLER_ID",
            payment_keys::ALIPAY_SELLER_ID.to_owned(),
        ),
        ("ALIPAY_GATEWAY", sandboxes.alipay_gateway.clone()),
        ("RENJI_PUBLIC_BASE_URL", sandboxes.public_base.clone()),
        // Settlement at its defaults (the stand-ins grant the default split ratio).
        (
            "RENJI_COMMISSION_BPS",
            settlement::DEFAULT_COMMISSION_BPS.to_string(),
        ),
        ("RENJI_COMMISSION_BPS_BY_CATEGORY", String::new()),
        (
            "RENJI_SETTLE_MAX_RATIO_BPS",
            settlement::DEFAULT_MAX_RATIO_BPS.to_string(),
        ),
        (
            "RENJI_SETTLE_DEADLINE_DAYS",
            settlement::DEFAULT_DEADLINE_DAYS.to_string(),
        ),
        (
            "RENJI_SETTLE_DELAY_DAYS",
            settlement::DEFAULT_DELAY_DAYS.to_string(),
        ),
        (
            "RENJI_PROVIDER_FEE_BPS",
            settlement::DEFAULT_FEE_BPS.to_string(),
        ),
    ])
}

/// A fixed 32-byte key for the benchmark's sealed personal data.
const PII_KEYS: &str = "bench:cmVuamktYmVuY2gtcGlpLWtleS0zMi1ieXRlcy1vayE=";

/// The functions' state over `store`, configured as the benchmarked functions are but with the
/// secrets' values given directly (the runner reads no secret from the stand-in).
pub fn app(store: DynStore, table: &str, sandboxes: &Sandboxes) -> Result<App, String> {
    let mut env: HashMap<&str, String> = function_env(table, sandboxes)
        .into_iter()
        .filter(|(name, _)| !name.ends_with("_ARN"))
        // In-process calls never reach the archive (and this process has no AWS region).
        .filter(|(name, _)| !["RENJI_EXPORT_BUCKET", "RENJI_MEDIA_BUCKET"].contains(name))
        .collect();
    env.extend(literal_secrets(sandboxes));
    let config = Config::from_lookup(|name| env.get(name).cloned()).map_err(|e| e.to_string())?;
    let bucket = function_env(table, sandboxes)["RENJI_MEDIA_BUCKET"].clone();
    let mut app = App::new(config, store).map_err(|e| e.to_string())?;
    // The media bucket by name, in the functions' region with their fake credentials: an upload
    // form is signed locally, as in a function (nothing reaches S3).
    let credentials = aws_credential_types::provider::SharedCredentialsProvider::new(
        aws_credential_types::Credentials::new("local", "local", None, None, "bench"),
    );
    let media = renji_shared::media_bucket::S3MediaBucket::new(
        &bucket,
        "us-east-1",
        None,
        Some(credentials),
    )
    .map_err(|e| e.to_string())?;
    app.media_bucket = Some(Arc::new(media));
    Ok(app)
}

/// A new upload record of `owner` for `purpose` (1 kB: a JPEG, an MP4 for a video) in `status`:
/// its public URL and the record.
fn new_upload(
    app: &App,
    owner: &UserId,
    purpose: renji_shared::domain::media::Purpose,
    status: renji_shared::domain::media::MediaStatus,
) -> (String, renji_shared::domain::media::MediaRecord) {
    let record = renji_local::sandbox::fakes::upload(owner, purpose, status);
    let url = format!("{}/{}", app.config.media.base_url, record.key);
    (url, record)
}

/// `event`'s body with its media URLs (`avatar_url`, `images`) replaced by new uploads of
/// `owner` for `purpose` that passed their check (as `POST /v1/uploads` and the media check
/// leave them): only an upload's owner may attach it.
async fn own_media(
    app: &App,
    owner: &UserId,
    event: &mut Value,
    purpose: &str,
) -> Result<(), String> {
    use renji_shared::domain::media::{MediaStatus, Purpose};
    use renji_shared::store::Record;
    let Some(text) = event["body"].as_str() else {
        return Ok(());
    };
    let mut body: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let purpose = Purpose::parse(purpose).ok_or("an unknown purpose")?;
    let upload = || {
        let (url, record) = new_upload(app, owner, purpose, MediaStatus::Passed);
        record
            .to_item(keys::media(owner, &record.id), None)
            .map(|item| (url, item))
            .map_err(|e| e.to_string())
    };
    let mut items = Vec::new();
    if body.get("avatar_url").is_some_and(|v| !v.is_null()) {
        let (url, item) = upload()?;
        body["avatar_url"] = json!(url);
        items.push(item);
    }
    for i in 0..body["images"].as_array().map_or(0, Vec::len) {
        let (url, item) = upload()?;
        body["images"][i] = json!(url);
        items.push(item);
    }
    for item in items {
        app.store
            .write(Write::put(item))
            .await
            .map_err(|e| e.to_string())?;
    }
    let body = body.to_string();
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["body"] = json!(body);
    Ok(())
}

/// Digits of `member`'s own (one member per payout account: each seeded member binds its own).
fn digits_of(member: &UserId, len: u32) -> String {
    let hash = member.as_str().bytes().fold(0_u64, |h, b| {
        h.wrapping_mul(1_099_511_628_211).wrapping_add(u64::from(b))
    });
    format!("{:0width$}", hash % 10_u64.pow(len), width = len as usize)
}

/// The Alipay account number of `member`'s own.
fn alipay_login(member: &UserId) -> String {
    format!("2088{}", digits_of(member, 12))
}

/// An Alipay payout account of `member`'s own.
fn alipay_account(member: &UserId) -> Result<payouts::Wanted, String> {
    payouts::AlipayBody {
        account: alipay_login(member),
        name: "张三".into(),
    }
    .validate()
    .map_err(|e| e.to_string())
}

/// Binds `wanted` (at the payment stand-in) and an Alipay account of `member`'s own.
async fn payable(app: &App, member: &UserId, wanted: payouts::Wanted) -> Result<(), String> {
    use renji_shared::payments::Provider;
    payouts::bind(app, member, Provider::Wechat, wanted)
        .await
        .map_err(|e| format!("payout account: {e}"))?;
    bind_alipay(app, member).await
}

/// Binds an Alipay account of `member`'s own.
async fn bind_alipay(app: &App, member: &UserId) -> Result<(), String> {
    let provider = renji_shared::payments::Provider::Alipay;
    payouts::bind(app, member, provider, alipay_account(member)?)
        .await
        .map_err(|e| format!("payout account: {e}"))?;
    Ok(())
}

/// Verifies `member` as the person 张三, as a verified result leaves them (the badge and the
/// verification record, the name sealed): every payout account is a verified member's, and an
/// Alipay account's name is the verified one ([`alipay_account`]'s 张三).
async fn verified(app: &App, member: &UserId) -> Result<(), String> {
    use renji_shared::domain::members::VerifiedAs;
    use renji_shared::domain::verification::{Status, Verification, NAME_FIELD};
    use renji_shared::store::Record;
    let ring = app.pii().await.map_err(|e| e.to_string())?;
    let seal =
        |field: &str, value: &str| ring.seal(member, field, value).map_err(|e| e.to_string());
    let now = members::now_rfc3339();
    let record = Verification {
        status: Status::Verified,
        kind: VerifiedAs::Person,
        attempt_id: format!("va_{}", ulid::Ulid::new().to_string().to_ascii_lowercase()),
        name_shown: "*三".into(),
        number_masked: "11**************2X".into(),
        name_sealed: seal(NAME_FIELD, "张三")?,
        number_sealed: seal("verification.number", "11010519491231002X")?,
        reason: None,
        submitted_at: now.clone(),
        decided_at: Some(now),
        next_check_at: None,
        rechecks: 0,
    };
    let item = record
        .to_item(keys::verification(member), None)
        .map_err(|e| e.to_string())?;
    app.store
        .transact(vec![
            Write::update(keys::member(member))
                .set("verified", "person")
                .build(),
            Write::put(item),
        ])
        .await
        .map_err(|e| e.to_string())
}

/// A logged-in member: their token and the ids events need.
pub struct Member {
    pub user_id: UserId,
    pub token: String,
    pub ids: Ids,
    /// The body of `POST /v1/listings`'s sample event, to make listings that calls consume.
    new_listing: String,
    /// Another verified member with a published listing: the seller of this member's orders,
    /// and the buyer of the orders this member sells.
    other: Option<(UserId, ListingId)>,
    /// The payment stand-ins, to pay orders at and to sign notifications with their keys.
    sandboxes: Sandboxes,
    /// The client of the buyer's side at the stand-ins (one, on the runtime that logged in).
    http: reqwest::Client,
    /// An admin's staff session (the staff console's routes).
    staff_token: String,
}

/// Runs the handler of `route`'s function on `event`; the status and JSON body.
/// A scheduled function's run answers 200 with its report, or 500 with its error.
pub async fn invoke(app: &App, route: &RouteEvent, event: &Value) -> Result<(u16, Value), String> {
    if route.is_scheduled() {
        let ran = renji_local::functions::run_job(&route.function, app)
            .await
            .ok_or_else(|| format!("no scheduled function {} in renji-local", route.function))?;
        return Ok(match ran {
            Ok(report) => (200, report),
            Err(e) => (500, json!({"error": e.to_string()})),
        });
    }
    let req = lambda_http::request::from_str(&event.to_string())
        .map_err(|e| format!("{}: not an API Gateway event: {e}", route.name))?;
    let response = renji_local::functions::invoke(&route.function, app, req)
        .await
        .ok_or_else(|| format!("no function {} in renji-local", route.function))?;
    Ok(events::status_and_body(&response))
}

/// Logs in through the login route's handler with its sample event (a sandbox member).
pub async fn login(
    app: &App,
    routes: &[RouteEvent],
    sandboxes: &Sandboxes,
) -> Result<Member, String> {
    let login = routes
        .iter()
        .find(|r| r.route == "POST /v1/auth/wechat")
        .ok_or("template.yaml has no POST /v1/auth/wechat")?;
    let (status, body) = invoke(app, login, &login.event).await?;
    if status != 200 {
        return Err(format!("login answered {status}: {body}"));
    }
    let token = body["token"]
        .as_str()
        .ok_or("login without token")?
        .to_owned();
    let id = body["user"]["id"].as_str().ok_or("login without user id")?;
    let user_id = UserId::parse(id).ok_or("login returned a bad user id")?;
    let ids = Ids::from([("users".to_owned(), id.to_owned())]);
    let mut member = Member {
        user_id,
        token,
        ids,
        new_listing: String::new(),
        other: None,
        sandboxes: sandboxes.clone(),
        http: reqwest::Client::new(),
        staff_token: String::new(),
    };
    member.create_objects(app, routes).await?;
    Ok(member)
}

impl Member {
    /// What the events name: a published listing of this (verified) member, made through
    /// `POST /v1/listings` with its sample event, and another member to follow.
    async fn create_objects(&mut self, app: &App, routes: &[RouteEvent]) -> Result<(), String> {
        // Verified through the verification route with its sample submission (the sandbox
        // verifier accepts it), as a member must be to publish.
        let submit = routes
            .iter()
            .find(|r| r.route == "POST /v1/me/verification")
            .ok_or("template.yaml has no POST /v1/me/verification")?;
        let event = events::prepare(submit, Some(&self.token), &self.ids)?;
        let (status, body) = invoke(app, submit, &event).await?;
        if body["status"] != "verified" {
            return Err(format!(
                "POST /v1/me/verification answered {status}: {body}"
            ));
        }
        // Payout accounts (a service is published only by a seller with one; buyers pay only
        // through the seller's channels): the member's own WeChat account and an Alipay one.
        payable(app, &self.user_id, payouts::Wanted::WechatOwn).await?;
        let create = routes
            .iter()
            .find(|r| r.route == "POST /v1/listings")
            .ok_or("template.yaml has no POST /v1/listings")?;
        let mut event = events::prepare(create, Some(&self.token), &self.ids)?;
        // The listings made through the domain (this member's, the other member's) carry no
        // images: media must be the owner's own uploads.
        let mut body: Value =
            serde_json::from_str(event["body"].as_str().unwrap_or("{}")).unwrap_or_default();
        body["images"] = json!([]);
        self.new_listing = body.to_string();
        own_media(app, &self.user_id, &mut event, "listing_image").await?;
        let (status, body) = invoke(app, create, &event).await?;
        let id = body["id"].as_str().filter(|_| status == 201);
        let id = id.ok_or_else(|| format!("POST /v1/listings answered {status}: {body}"))?;
        self.ids.insert("listings".to_owned(), id.to_owned());
        let (other, _) = new_member(app).await?;
        self.ids.insert("others".to_owned(), other.to_string());
        // The member the block routes block: not `other`, who must still be able to deal with
        // this member in the orders routes.
        let (blocked, _) = new_member(app).await?;
        self.ids.insert("blocked".to_owned(), blocked.to_string());
        // The orders routes: the other member, verified, publishes the same listing; this
        // member has bought it once (`{id}` of `GET /v1/orders/{id}`).
        verified(app, &other).await?;
        let merchant = payouts::WechatBody {
            merchant_id: Some(format!("19{}", digits_of(&other, 8))),
            merchant_name: Some("某某摄影有限公司".into()),
        }
        .validate()
        .map_err(|e| e.to_string())?;
        payable(app, &other, merchant).await?;
        let new = serde_json::from_str(&self.new_listing).map_err(|e| e.to_string())?;
        let rules = listings::Rules::of(&app.config);
        let listing = listings::create(&app.store, &seeding(), &rules, &other, new)
            .await
            .map_err(|e| e.to_string())?;
        self.other = Some((other, listing.id));
        let order = self.fresh_order(app, true, &[]).await?;
        self.ids.insert("orders".to_owned(), order);
        // The tickets routes: a ticket of this member's (`{id}` of `GET /v1/tickets/{id}`).
        let id = self.fresh_ticket(app).await?;
        self.ids.insert("tickets".to_owned(), id);
        // `GET /v1/me/export`: this member has asked for a copy of their data (pending: the
        // export job's builds fail at S3, which the benchmark does not reach).
        renji_shared::domain::exports::request(app, &self.user_id, time::OffsetDateTime::now_utc())
            .await
            .map_err(|e| e.to_string())?;
        // The staff console: an admin, and this member to look up.
        self.staff_token = self.fresh_staff_token(app).await?;
        self.ids
            .insert("members".to_owned(), self.user_id.to_string());
        Ok(())
    }

    /// A new open ticket of this member's: its id.
    async fn fresh_ticket(&self, app: &App) -> Result<String, String> {
        let body = tickets::create::NewTicket {
            kind: "other".into(),
            subject: "发票".into(),
            text: "请开具发票".into(),
            order_id: None,
            listing_id: None,
            user_id: None,
            review_id: None,
        };
        let now = time::OffsetDateTime::now_utc();
        let ticket = tickets::create::create(
            &app.store,
            &seeding(),
            &app.config,
            &self.user_id,
            &body,
            now,
        )
        .await
        .map_err(|e| e.to_string())?;
        let id = ticket["id"].as_str().ok_or("a ticket without an id")?;
        Ok(id.to_owned())
    }

    /// A new admin staff session, signed in through the WeCom stand-in.
    async fn fresh_staff_token(&self, app: &App) -> Result<String, String> {
        let now = time::OffsetDateTime::now_utc();
        let signed = renji_shared::staff::sign_in(app, "staff:bench:admin", now)
            .await
            .map_err(|e| e.to_string())?;
        Ok(signed.token)
    }

    /// A new order, this member its buyer (`buying`) or its seller, moved by `steps` as the
    /// state machine would move it: for a call that changes an order's state.
    async fn fresh_order(
        &self,
        app: &App,
        buying: bool,
        steps: &[(Action, Actor)],
    ) -> Result<String, String> {
        self.fresh_order_at(app, buying, steps, time::OffsetDateTime::now_utc())
            .await
    }

    /// A fresh order made at `now` (in the past, for one the job finds due).
    async fn fresh_order_at(
        &self,
        app: &App,
        buying: bool,
        steps: &[(Action, Actor)],
        now: time::OffsetDateTime,
    ) -> Result<String, String> {
        let (other, other_listing) = self.other.as_ref().ok_or("no other member")?;
        let own_listing = self
            .ids
            .get("listings")
            .and_then(|l| ListingId::parse(l))
            .ok_or("no listing")?;
        let (buyer, listing) = match buying {
            true => (&self.user_id, other_listing.clone()),
            false => (other, own_listing),
        };
        let body = create::NewOrder {
            listing_id: listing.to_string(),
            quantity: 1,
            remark: String::new(),
            service_date: None,
        };
        let made = create::create(&app.store, &app.config, buyer, &body, None, now)
            .await
            .map_err(|e| e.to_string())?;
        let id = made.body["id"]
            .as_str()
            .and_then(OrderId::parse)
            .ok_or("an order without an id")?;
        move_order(app, &id, steps, now).await?;
        Ok(id.to_string())
    }

    /// A fresh order paid through `channel` at its stand-in (started through the domain, paid
    /// as the buyer would, confirmed as the job's query would find it), then moved by `steps`:
    /// for a call that refunds it there.
    async fn paid_order(
        &self,
        app: &App,
        buying: bool,
        channel: Channel,
        steps: &[(Action, Actor)],
    ) -> Result<String, String> {
        let id = self.fresh_order(app, buying, &[]).await?;
        let order_id = OrderId::parse(&id).ok_or("a bad order id")?;
        let now = time::OffsetDateTime::now_utc();
        let client = pay::start(app, &order_id, channel, now).await?;
        let paid =
            pay::pay_at_stand_in(&self.http, self.stand_in(channel), channel, &id, &client).await?;
        pay::confirm(app, &order_id, channel, paid, now).await?;
        move_order(app, &order_id, steps, now).await?;
        Ok(id)
    }

    /// The stand-in's root for `channel`'s sandbox calls.
    fn stand_in(&self, channel: Channel) -> &str {
        match channel.provider() {
            Provider::Wechat => &self.sandboxes.wechatpay_base,
            Provider::Alipay => &self.sandboxes.alipay_base,
        }
    }

    /// A fresh published listing of this member (the sample event's), for a call that removes one.
    async fn fresh_listing(&self, app: &App) -> Result<String, String> {
        let new = serde_json::from_str(&self.new_listing).map_err(|e| e.to_string())?;
        let listing = listings::create(
            &app.store,
            &seeding(),
            &listings::Rules::of(&app.config),
            &self.user_id,
            new,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(listing.id.to_string())
    }

    /// A new video upload of this member's awaiting staff's decision in the media queue (a
    /// video is never sent to WeChat's check): its id.
    async fn queued_video(&self, app: &App) -> Result<String, String> {
        use renji_shared::domain::media::{MediaStatus, Purpose};
        use renji_shared::store::Record;
        let (_, video) = new_upload(
            app,
            &self.user_id,
            Purpose::ListingVideo,
            MediaStatus::Checking,
        );
        let mut item = video
            .to_item(
                keys::media(&video.owner, &video.id),
                Some(keys::media_queued(&video.id)),
            )
            .map_err(|e| e.to_string())?;
        item.insert("review".into(), json!("video"));
        app.store
            .write(Write::put(item))
            .await
            .map_err(|e| e.to_string())?;
        Ok(video.id.to_string())
    }

    /// WeChat's push of an image check's result (passed), signed and encrypted with the
    /// sandbox's push keys as WeChat sends it now, for a new upload of this member's that the
    /// media job asked about (awaiting its check, linked to a new trace id).
    async fn media_check_push(&self, app: &App, route: &RouteEvent) -> Result<Value, String> {
        use renji_local::sandbox::wechat::{SignedPush, APPID, PUSH_AES_KEY, PUSH_TOKEN};
        use renji_shared::domain::media::{MediaStatus, Purpose};
        use renji_shared::store::Record;
        let now = time::OffsetDateTime::now_utc();
        let trace_id = format!("bench-{}", ulid::Ulid::new());
        let (_, mut upload) = new_upload(
            app,
            &self.user_id,
            Purpose::ListingImage,
            MediaStatus::Checking,
        );
        upload.trace_id = Some(trace_id.clone());
        let listed = keys::media_listed(now.unix_timestamp() + 1_800, &upload.owner, &upload.id);
        let item = upload
            .to_item(keys::media(&upload.owner, &upload.id), Some(listed))
            .map_err(|e| e.to_string())?;
        let link = Write::update(keys::media_check(&trace_id))
            .set("trace_id", trace_id.as_str())
            .set("owner", upload.owner.as_str())
            .set("media", upload.id.as_str())
            .set("ttl", now.unix_timestamp() + 86_400)
            .build();
        for write in [Write::put(item), link] {
            app.store.write(write).await.map_err(|e| e.to_string())?;
        }
        let openid = route.event["queryStringParameters"]["openid"]
            .as_str()
            .unwrap_or("o9AgO5Kd5ggOC-bXrbNODIiE3bGY");
        let message = json!({
            "ToUserName": "gh_97417a04a28d", "FromUserName": openid,
            "CreateTime": now.unix_timestamp(), "MsgType": "event", "Event": "wxa_media_check",
            "appid": APPID, "trace_id": trace_id, "version": 2, "errcode": 0, "errmsg": "ok",
            "result": {"suggest": "pass", "label": "100"},
            "detail": [{"strategy": "content_model", "errcode": 0, "suggest": "pass",
                "label": 100, "prob": 90}],
        });
        let keys = renji_shared::wechat::push::PushKeys::new(PUSH_TOKEN, PUSH_AES_KEY)?;
        let random = ulid::Ulid::new().to_bytes();
        let nonce = (now.unix_timestamp_nanos() % 1_000_000_000).to_string();
        let push = SignedPush::new(
            &keys,
            &message,
            openid,
            &now.unix_timestamp().to_string(),
            &nonce,
            random,
        );
        Ok(push.event(&route.event))
    }

    /// A new session of this member, recorded in `app`'s store.
    pub async fn fresh_token(&self, app: &App) -> Result<String, String> {
        let tokens = app.tokens().await.map_err(|e| e.to_string())?;
        let (token, _) = renji_shared::session::start(
            &app.store,
            &tokens,
            &self.user_id,
            3600,
            &Default::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(token)
    }

    /// `route`'s event for this member, with fresh state where the call consumes it: a session
    /// for logout, a listing for its removal, an unverified member for a verification, an order
    /// in the state an action leaves from; a route's first variant (see [`variants`]).
    pub async fn event(&self, app: &App, route: &RouteEvent) -> Result<Value, String> {
        let variant = variants(&route.route).first().copied().unwrap_or(TYPICAL);
        self.event_for(app, route, variant).await
    }

    /// `route`'s event for the call `variant` (one of [`variants`], or `typical`).
    pub async fn event_for(
        &self,
        app: &App,
        route: &RouteEvent,
        variant: &str,
    ) -> Result<Value, String> {
        if let Some(event) = self.money_event(app, route, variant).await? {
            return Ok(event);
        }
        if route.route == "POST /v1/wechat/events" {
            return self.media_check_push(app, route).await;
        }
        let mut ids = self.ids.clone();
        let token = match route.route.as_str() {
            "POST /v1/auth/logout" => self.fresh_token(app).await?,
            // A new member each call: the deletion signs them out for good.
            "POST /v1/me/verification" | "DELETE /v1/me" => new_member(app).await?.1,
            // A guardian's consent is a minor's: a new member whose profile says ten years old.
            "POST /v1/me/guardian-consent" => {
                let (id, token) = new_member(app).await?;
                let year = time::OffsetDateTime::now_utc().year() - 10;
                app.store
                    .write(
                        Write::update(keys::member(&id))
                            .set("birth_date", format!("{year:04}-01-01"))
                            .build(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                token
            }
            // A member asks for one export at a time (then 409, and 429 after three a day).
            "POST /v1/me/export" => new_member(app).await?.1,
            // Upload forms are capped per member per day (RENJI_UPLOADS_PER_DAY): a fresh member
            // each, so a long run measures the form, not the 429.
            "POST /v1/uploads" => new_member(app).await?.1,
            // Each unbinding, a new verified member's Alipay account: this member's accounts
            // stay bound for the payments the other routes make.
            "DELETE /v1/me/payout-accounts/{channel}" => {
                let (id, token) = new_member(app).await?;
                verified(app, &id).await?;
                bind_alipay(app, &id).await?;
                token
            }
            "POST /admin/v1/auth/logout" => self.fresh_staff_token(app).await?,
            staff if staff.contains(" /admin/v1/") => self.staff_token.clone(),
            _ => self.token.clone(),
        };
        match route.route.as_str() {
            "PUT /v1/me/blocks/{user_id}" | "DELETE /v1/me/blocks/{user_id}" => {
                let blocked = ids.get("blocked").cloned().ok_or("no member to block")?;
                ids.insert("others".to_owned(), blocked);
            }
            // The scope withdrawn (idempotent: each call withdraws it, granted or not).
            "DELETE /v1/me/consents/{scope}" => {
                ids.insert("consents".to_owned(), "location".to_owned());
            }
            // An Alipay account: the member's own bound again (the same account, answered as
            // bound); a new member's unbound.
            "PUT /v1/me/payout-accounts/{channel}" | "DELETE /v1/me/payout-accounts/{channel}" => {
                ids.insert("payout-accounts".to_owned(), "alipay".to_owned());
            }
            "DELETE /v1/listings/{id}" | "POST /admin/v1/listings/{id}/takedown" => {
                ids.insert("listings".to_owned(), self.fresh_listing(app).await?);
            }
            // Each message or close gets an open ticket of its own (a closed one takes neither,
            // a ticket holds 200 messages, and a run makes 500).
            "POST /v1/tickets/{id}/messages"
            | "POST /admin/v1/tickets/{id}/messages"
            | "POST /admin/v1/tickets/{id}/close" => {
                ids.insert("tickets".to_owned(), self.fresh_ticket(app).await?);
            }
            // Each sign-out of one session gets a session of its own to sign out.
            "DELETE /v1/me/sessions/{id}" => {
                let tokens = app.tokens().await.map_err(|e| e.to_string())?;
                let (_, claims) = renji_shared::session::start(
                    &app.store,
                    &tokens,
                    &self.user_id,
                    3600,
                    &Default::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
                ids.insert("sessions".to_owned(), claims.session_id);
            }
            // Each decision gets a held text of its own (a new member's nickname held for staff).
            "POST /admin/v1/moderation/texts/{id}/decision" => {
                let (member, _) = new_member(app).await?;
                let patch: members::ProfilePatch =
                    serde_json::from_value(json!({"nickname": "待审昵称"}))
                        .map_err(|e| e.to_string())?;
                let held = members::update_profile(
                    &app.store,
                    &FakeWechat::holding(),
                    &app.config.media.base_url,
                    &member,
                    patch,
                )
                .await
                .map_err(|e| e.to_string())?;
                let check = held
                    .nickname_review
                    .map(|h| h.check_id)
                    .ok_or("the nickname was not held")?;
                ids.insert("texts".to_owned(), check);
            }
            // Each decision gets a video of its own in the staff media queue.
            "POST /admin/v1/moderation/media/{id}/decision" => {
                ids.insert("media".to_owned(), self.queued_video(app).await?);
            }
            "POST /admin/v1/listings/{id}/restore" => {
                let id = self.fresh_listing(app).await?;
                let listing = ListingId::parse(&id).ok_or("a bad listing id")?;
                listings::take_down(&app.store, &listing, "bench")
                    .await
                    .map_err(|e| e.to_string())?;
                ids.insert("listings".to_owned(), id);
            }
            _ => {}
        }
        // An order in the state the action leaves from, made for the call.
        let paid = (Action::ConfirmPayment, Actor::Provider);
        let accepted = [paid, (Action::Accept, Actor::Seller)];
        let completed = [
            paid,
            (Action::Accept, Actor::Seller),
            (Action::Confirm, Actor::Buyer),
        ];
        let order = match route.route.as_str() {
            "POST /v1/orders/{id}/accept" => Some(self.fresh_order(app, false, &[paid]).await?),
            "POST /v1/orders/{id}/confirm" | "POST /v1/orders/{id}/refund" => {
                Some(self.fresh_order(app, true, &accepted).await?)
            }
            // A completed order this member bought, not yet reviewed.
            "POST /v1/orders/{id}/reviews" => Some(self.fresh_order(app, true, &completed).await?),
            _ => None,
        };
        if [
            "POST /v1/reviews/{id}/reply",
            "POST /admin/v1/reviews/{id}/hide",
        ]
        .contains(&route.route.as_str())
        {
            // A review, not yet answered (nor hidden), of a completed order this member sold.
            let order = self.fresh_order(app, false, &completed).await?;
            let (other, _) = self.other.as_ref().ok_or("no other member")?;
            let body: reviews::NewReview =
                serde_json::from_value(json!({"rating": 5, "text": "很准时"}))
                    .map_err(|e| e.to_string())?;
            let order = OrderId::parse(&order).ok_or("a bad order id")?;
            let now = time::OffsetDateTime::now_utc();
            let window = app.config.review_window;
            let review = reviews::create(
                &app.store,
                &seeding(),
                &app.config.media.base_url,
                window,
                &order,
                other,
                &body,
                now,
            )
            .await
            .map_err(|e| e.to_string())?;
            ids.insert("reviews".to_owned(), review.id.to_string());
        }
        if let Some(order) = order {
            ids.insert("orders".to_owned(), order);
        }
        if route.route == "POST /admin/v1/members/{id}/deletion" {
            // A new member who asked customer service for it in a ticket of theirs.
            let (member, _) = new_member(app).await?;
            ids.insert("members".to_owned(), member.to_string());
        }
        // A suspension ends the member's sessions: each call suspends a new member of its own;
        // each restore, a new member suspended for it.
        if route.route == "POST /admin/v1/members/{id}/suspend"
            || route.route == "POST /admin/v1/members/{id}/restore"
        {
            let (member, _) = new_member(app).await?;
            if route.route.ends_with("/restore") {
                let staff = renji_shared::ids::StaffId::parse("bench").ok_or("a bad staff id")?;
                let now = time::OffsetDateTime::now_utc();
                suspension::suspend(&app.store, &member, &staff, "bench", now)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            ids.insert("members".to_owned(), member.to_string());
        }
        let mut event = events::prepare(route, Some(&token), &ids)?;
        if route.route == "POST /admin/v1/members/{id}/deletion" {
            let member = ids
                .get("members")
                .and_then(|id| UserId::parse(id))
                .ok_or("no member to delete")?;
            let body = tickets::create::NewTicket {
                kind: "other".into(),
                subject: "注销账号".into(),
                text: "请注销我的账号".into(),
                order_id: None,
                listing_id: None,
                user_id: None,
                review_id: None,
            };
            let now = time::OffsetDateTime::now_utc();
            let ticket =
                tickets::create::create(&app.store, &seeding(), &app.config, &member, &body, now)
                    .await
                    .map_err(|e| e.to_string())?;
            let body = json!({"ticket_id": ticket["id"], "reason": "会员通过客服申请注销账号"})
                .to_string();
            event["headers"]["content-length"] = json!(body.len().to_string());
            event["body"] = json!(body);
        }
        if route.route == "PUT /v1/me/payout-accounts/{channel}" {
            let body = json!({
                "account": alipay_login(&self.user_id),
                "name": "张三",
            })
            .to_string();
            event["headers"]["content-length"] = json!(body.len().to_string());
            event["body"] = json!(body);
        }
        if route.route == "POST /v1/tickets" {
            // The sample's dispute, of an order of this member's whose refund the seller
            // declined, made for the call (a dispute moves it).
            let declined = [
                paid,
                (Action::Accept, Actor::Seller),
                (Action::RequestRefund, Actor::Buyer),
                (Action::DeclineRefund, Actor::Seller),
            ];
            let order = self.fresh_order(app, true, &declined).await?;
            let mut body: Value =
                serde_json::from_str(event["body"].as_str().unwrap_or("{}")).unwrap_or_default();
            body["order_id"] = json!(order);
            let body = body.to_string();
            event["headers"]["content-length"] = json!(body.len().to_string());
            event["body"] = json!(body);
        }
        if route.route == "POST /v1/orders" {
            // The other member's listing, and a new Idempotency-Key: each call makes an order
            // (a repeat would measure the replay).
            let (_, listing) = self.other.as_ref().ok_or("no other member")?;
            let mut body: Value =
                serde_json::from_str(event["body"].as_str().unwrap_or("{}")).unwrap_or_default();
            body["listing_id"] = json!(listing);
            let body = body.to_string();
            event["headers"]["content-length"] = json!(body.len().to_string());
            event["body"] = json!(body);
            if event["headers"].get("idempotency-key").is_some() {
                event["headers"]["idempotency-key"] = json!(ulid::Ulid::new().to_string());
            }
        }
        // Media the call attaches: uploads of this member's, passed their check.
        let purpose = match route.route.as_str() {
            "POST /v1/listings" => Some("listing_image"),
            "PATCH /v1/me" => Some("avatar"),
            "POST /v1/tickets/{id}/messages" => Some("ticket_image"),
            "POST /v1/orders/{id}/reviews" => Some("review_image"),
            _ => None,
        };
        if let Some(purpose) = purpose {
            own_media(app, &self.user_id, &mut event, purpose).await?;
        }
        Ok(event)
    }

    /// The events of the calls that move money (the `payments` function's routes, the
    /// notifications, the order job); `None` for another route.
    async fn money_event(
        &self,
        app: &App,
        route: &RouteEvent,
        variant: &str,
    ) -> Result<Option<Value>, String> {
        let now = time::OffsetDateTime::now_utc();
        let paid = (Action::ConfirmPayment, Actor::Provider);
        let accept = (Action::Accept, Actor::Seller);
        let ask_refund = (Action::RequestRefund, Actor::Buyer);
        let channel_of = |v: &str| match v.starts_with("Alipay") || v.contains("(Alipay)") {
            true => Channel::Alipay,
            false => Channel::Wechat,
        };
        let order = match route.route.as_str() {
            "POST /v1/orders/{id}/payments" => self.fresh_order(app, true, &[]).await?,
            "POST /v1/orders/{id}/cancel" if variant.starts_with("unpaid") => {
                let id = self.fresh_order(app, true, &[]).await?;
                let order_id = OrderId::parse(&id).ok_or("a bad order id")?;
                pay::start(app, &order_id, Channel::Wechat, now).await?;
                id
            }
            "POST /v1/orders/{id}/cancel" => {
                self.paid_order(app, true, channel_of(variant), &[]).await?
            }
            "POST /v1/orders/{id}/decline" => {
                self.paid_order(app, false, channel_of(variant), &[])
                    .await?
            }
            "POST /v1/orders/{id}/refund/approve" => {
                self.paid_order(app, false, channel_of(variant), &[accept, ask_refund])
                    .await?
            }
            "POST /v1/orders/{id}/refund/decline" => {
                self.fresh_order(app, false, &[paid, accept, ask_refund])
                    .await?
            }
            // A completed order, paid through WeChat Pay, whose split to a personal receiver is
            // recorded as paid; the sample refund takes it all back.
            "POST /admin/v1/orders/{id}/refund" => {
                let confirm = (Action::Confirm, Actor::Buyer);
                let id = self
                    .paid_order(app, true, Channel::Wechat, &[accept, confirm])
                    .await?;
                split_recorded(app, &id, now).await?;
                id
            }
            // A paid order its buyer disputes once accepted; the sample decision refunds it all.
            "POST /admin/v1/orders/{id}/decision" => {
                let dispute = (Action::OpenDispute, Actor::Buyer);
                self.paid_order(app, true, channel_of(variant), &[accept, dispute])
                    .await?
            }
            "POST /v1/payments/wechat/notify" | "POST /v1/payments/alipay/notify" => {
                return self.notification(app, route, variant, now).await.map(Some)
            }
            "SCHEDULE order-jobs" => {
                return self.due_work(app, route, variant, now).await.map(Some)
            }
            _ => return Ok(None),
        };
        let mut ids = self.ids.clone();
        ids.insert("orders".to_owned(), order);
        let token = match route.route.starts_with("POST /admin/v1/") {
            true => &self.staff_token,
            false => &self.token,
        };
        let mut event = events::prepare(route, Some(token), &ids)?;
        if route.route == "POST /v1/orders/{id}/payments" {
            // The variant's channel, and a new Idempotency-Key (a repeat would be the replay).
            let body = json!({ "channel": variant }).to_string();
            event["headers"]["content-length"] = json!(body.len().to_string());
            event["body"] = json!(body);
            if event["headers"].get("idempotency-key").is_some() {
                event["headers"]["idempotency-key"] = json!(ulid::Ulid::new().to_string());
            }
        }
        Ok(Some(event))
    }

    /// A provider's notification that this member's new order was paid, signed (and for WeChat
    /// Pay encrypted) with the stand-in's keys; for a repeat, applied once before.
    async fn notification(
        &self,
        app: &App,
        route: &RouteEvent,
        variant: &str,
        now: time::OffsetDateTime,
    ) -> Result<Value, String> {
        let wechat = route.route == "POST /v1/payments/wechat/notify";
        let channel = match wechat {
            true => Channel::Wechat,
            false => Channel::Alipay,
        };
        let id = self.fresh_order(app, true, &[]).await?;
        let order_id = OrderId::parse(&id).ok_or("a bad order id")?;
        // Started as the buyer would have (the notification finds its payment record).
        pay::start(app, &order_id, channel, now).await?;
        let order = orders::get(&app.store, &order_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the order is gone")?;
        let amount = order.amount_fen.get();
        let transaction = format!("42000{}", &ulid::Ulid::new().to_string()[..20]);
        let notification = match wechat {
            true => pay::wechat_paid(
                &self.sandboxes.keys,
                renji_local::sandbox::wechat::APPID,
                &id,
                amount,
                &transaction,
            )?,
            false => pay::alipay_paid(&self.sandboxes.keys, &id, amount, &transaction)?,
        };
        let event = notification.into_event(&route.event);
        if variant.starts_with("repeat") {
            let (status, body) = invoke(app, route, &event).await?;
            if !(200..300).contains(&status) {
                return Err(format!("{} answered {status}: {body}", route.route));
            }
        }
        Ok(event)
    }

    /// Work the order job finds due now: an unpaid order past its expiry, or a payment started
    /// three minutes ago and paid at the stand-in with its notification lost; or nothing.
    async fn due_work(
        &self,
        app: &App,
        route: &RouteEvent,
        variant: &str,
        now: time::OffsetDateTime,
    ) -> Result<Value, String> {
        if variant.starts_with("an unpaid order") {
            let then = now - app.config.orders.pay - time::Duration::minutes(1);
            self.fresh_order_at(app, true, &[], then).await?;
        } else if variant.starts_with("a lost") {
            let then = now - time::Duration::minutes(3);
            let id = self.fresh_order_at(app, true, &[], then).await?;
            let order_id = OrderId::parse(&id).ok_or("a bad order id")?;
            let client = pay::start(app, &order_id, Channel::Wechat, then).await?;
            pay::pay_at_stand_in(
                &self.http,
                self.stand_in(Channel::Wechat),
                Channel::Wechat,
                &id,
                &client,
            )
            .await?;
        }
        Ok(route.event.clone())
    }

    pub async fn event_bytes(&self, app: &App, route: &RouteEvent) -> Result<Bytes, String> {
        Ok(Bytes::from(self.event(app, route).await?.to_string()))
    }
}

/// Moves order `id` by `steps` as the state machine would, one committed transition each.
/// Records the split of the completed order `id` as the split job does once the seller's share
/// arrived at a WeChat personal receiver (the settlement `paid`; the provider is not asked: its
/// stand-in holds the whole payment unsplit, so a refund of it all goes through).
async fn split_recorded(app: &App, id: &str, now: time::OffsetDateTime) -> Result<(), String> {
    use renji_shared::domain::settlement::{OrderSettlement, SettleState, Shares};
    use renji_shared::settlement::{split_no, Receiver, ReceiverKind};
    let order_id = OrderId::parse(id).ok_or("a bad order id")?;
    let order = orders::get(&app.store, &order_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the order is gone")?;
    let terms = order.settle.ok_or("an order without settlement terms")?;
    let at = orders::rfc3339(now);
    let mut next = order.clone();
    next.version += 1;
    next.settlement = Some(OrderSettlement {
        state: SettleState::Paid,
        provider: Provider::Wechat,
        attempt: 1,
        out_order_no: split_no(id),
        receiver: Some(Receiver {
            kind: ReceiverKind::WechatOpenid,
            account: "oBenchSeller0000000000000001".into(),
            name: None,
        }),
        shares: Shares::of(order.refundable(), &terms),
        failure: None,
        requested_at: Some(at.clone()),
        shared_at: Some(at.clone()),
        unfreeze_no: None,
        finished_at: Some(at),
        checks: 1,
    });
    orders::commit(&app.store, &order, &next, Vec::new())
        .await
        .map_err(|e| e.to_string())
}

async fn move_order(
    app: &App,
    id: &OrderId,
    steps: &[(Action, Actor)],
    now: time::OffsetDateTime,
) -> Result<(), String> {
    let mut order = orders::get(&app.store, id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the order is gone")?;
    for (action, actor) in steps {
        let reason = (*action == Action::RequestRefund).then(|| "服务未按约定提供".to_owned());
        let change = Change::new(*action, *actor, now).reason(reason);
        let next = order
            .transition(&change, &app.config.orders)
            .map_err(|e| e.to_string())?;
        orders::commit(&app.store, &order, &next, Vec::new())
            .await
            .map_err(|e| e.to_string())?;
        order = next;
    }
    Ok(())
}

/// The call of a route without named variants.
pub const TYPICAL: &str = "typical";

/// The calls measured of a route beyond `typical`, the first being the one the Lambda section's
/// warm invocations make: each payment channel; cancel before and after payment; each
/// provider's refund; a notification applied and its repeat; the order job with due work.
pub fn variants(route: &str) -> &'static [&'static str] {
    match route {
        "POST /v1/orders/{id}/payments" => &["wechat", "alipay", "alipay_wap"],
        "POST /v1/orders/{id}/cancel" => &[
            "unpaid, a WeChat Pay payment open",
            "paid (Alipay): refunded at once",
        ],
        "POST /v1/orders/{id}/decline" => &["paid (WeChat Pay): refunded"],
        "POST /v1/orders/{id}/refund/approve" => &["WeChat Pay refund", "Alipay refund"],
        "POST /v1/payments/wechat/notify" => {
            &["TRANSACTION.SUCCESS applied", "repeat of an applied one"]
        }
        "POST /v1/payments/alipay/notify" => &["TRADE_SUCCESS applied", "repeat of an applied one"],
        "POST /admin/v1/orders/{id}/decision" => &["refund all (WeChat Pay)"],
        "SCHEDULE order-jobs" => &[
            "an unpaid order expires",
            "a lost WeChat Pay notification: queried, paid",
            "nothing due",
        ],
        _ => &[],
    }
}

/// A member never seen before, with a session: their id and token.
async fn new_member(app: &App) -> Result<(UserId, String), String> {
    let identity = WechatIdentity {
        openid: format!("bench-{}", ulid::Ulid::new()),
        unionid: None,
    };
    let (member, _) = members::find_or_create(&app.store, &identity, UserId::generate(), vec![])
        .await
        .map_err(|e| e.to_string())?;
    let tokens = app.tokens().await.map_err(|e| e.to_string())?;
    let (token, _) =
        renji_shared::session::start(&app.store, &tokens, &member.id, 3600, &Default::default())
            .await
            .map_err(|e| e.to_string())?;
    Ok((member.id, token))
}
