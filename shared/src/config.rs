//! Configuration from environment variables. Every variable is documented in the README with its
//! local default; secrets have no default outside the local server.

use std::time::Duration;

use crate::error::Error;
use crate::ratelimit::RateLimits;

/// A credential string that `Debug` never shows.
#[derive(Clone)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redacted")
    }
}

/// Where a secret comes from: Secrets Manager (a deployed function is given the secret's ARN,
/// `<NAME>_ARN`, and reads it at run time, see `secrets.rs`), or the value itself (`<NAME>`,
/// local runs and tests).
#[derive(Clone, Debug)]
pub enum SecretSetting {
    /// A Secrets Manager secret id: its ARN (or name).
    Stored(String),
    /// The value, from a variable or a file of the local server.
    Value(Redacted),
}

impl SecretSetting {
    /// `<name>_ARN` or `<name>`; neither is `None`, both is an error.
    fn lookup(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<Self>, Error> {
        let arn_name = format!("{name}_ARN");
        let get = |n: &str| lookup(n).filter(|v| !v.trim().is_empty());
        match (get(&arn_name), get(name)) {
            (Some(_), Some(_)) => Err(Error::Config(format!(
                "{name} and {arn_name} are both set: set one"
            ))),
            (Some(id), None) => Ok(Some(SecretSetting::Stored(id.trim().to_owned()))),
            (None, Some(value)) => Ok(Some(SecretSetting::Value(Redacted(value)))),
            (None, None) => Ok(None),
        }
    }

    fn required(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Self, Error> {
        Self::lookup(lookup, name)?
            .ok_or_else(|| Error::Config(format!("{name}_ARN (or {name}) is not set")))
    }
}

#[derive(Clone, Debug)]
pub struct WechatConfig {
    pub appid: String,
    /// The AppSecret (`WECHAT_SECRET_ARN` or `WECHAT_SECRET`).
    pub secret: SecretSetting,
    /// Base URL of the WeChat API; the local server points it at its sandbox stand-in.
    pub api_base: String,
    /// Message push (消息推送, safe mode): present when `WECHAT_PUSH_TOKEN` is set.
    pub push: Option<PushConfig>,
    /// Which version of the mini-program subscribe messages open (`WECHAT_MINIPROGRAM_STATE`:
    /// `developer`, `trial` or `formal`, the default).
    pub miniprogram_state: String,
}

/// The message push's Token (`WECHAT_PUSH_TOKEN_ARN` or `WECHAT_PUSH_TOKEN`) and
/// EncodingAESKey (`WECHAT_PUSH_AES_KEY_ARN` or `WECHAT_PUSH_AES_KEY`), both required together.
#[derive(Clone, Debug)]
pub struct PushConfig {
    pub token: SecretSetting,
    pub aes_key: SecretSetting,
}

/// The identity verifier's endpoint (see `verifier.rs` for the contract).
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    pub url: String,
    /// Its bearer token (`RENJI_VERIFIER_TOKEN_ARN` or `RENJI_VERIFIER_TOKEN`).
    pub token: SecretSetting,
}

/// WeCom (企业微信) web login for the staff console (`wecom.rs`). Present when `WECOM_CORP_ID` is
/// set.
#[derive(Clone, Debug)]
pub struct WecomConfig {
    pub corp_id: String,
    /// The app's Secret (`WECOM_SECRET_ARN` or `WECOM_SECRET`): only the `admin` function has it.
    pub secret: SecretSetting,
    /// `WECOM_API_BASE`; the local server points it at its stand-in.
    pub api_base: String,
}

/// Staff sign-in (`staff.rs`): who may sign in as what, and for how long.
#[derive(Clone, Debug)]
pub struct StaffConfig {
    pub wecom: WecomConfig,
    /// `RENJI_STAFF_ROLES`.
    pub roles: crate::staff::RoleMap,
    /// `RENJI_STAFF_SESSION_SECS` (default 7200).
    pub session_secs: u32,
}

/// Keys for personal data at rest (`pii.rs`): `kid:base64(32 bytes)` entries and the active kid.
#[derive(Clone, Debug)]
pub struct PiiConfig {
    /// `RENJI_PII_KEYS_ARN` or `RENJI_PII_KEYS`.
    pub keys: SecretSetting,
    /// `RENJI_PII_ACTIVE_KEY`; unset, the first key of the list is the active one (so a rotation
    /// is a change of the secret alone).
    pub active_key: Option<String>,
}

/// WeChat Pay API v3 (`WECHATPAY_*`; `payments/wechatpay/`). Present when `WECHATPAY_MCHID` is set.
#[derive(Clone, Debug)]
pub struct WechatPayConfig {
    pub mchid: String,
    /// `WECHATPAY_APPID`, default `WECHAT_APPID`.
    pub appid: String,
    /// The merchant API certificate's serial (`WECHATPAY_MERCHANT_SERIAL`).
    pub merchant_serial: Option<String>,
    /// The merchant private key, PKCS#8 PEM (`WECHATPAY_MERCHANT_KEY_ARN` or `…_KEY`): only the
    /// functions that call WeChat Pay (`payments`, `order-jobs`) are given it.
    pub merchant_key: Option<SecretSetting>,
    /// The APIv3 key, 32 characters (`WECHATPAY_APIV3_KEY_ARN` or `…_KEY`): the notify function.
    pub apiv3_key: Option<SecretSetting>,
    /// WeChat Pay public keys by id (`WECHATPAY_PUBLIC_KEY_ID` + `WECHATPAY_PUBLIC_KEY`, PEM); the
    /// local server adds its stand-in's own.
    pub public_keys: Vec<(String, String)>,
    /// Platform certificates, PEM, one or more (`WECHATPAY_PLATFORM_CERTS`).
    pub platform_certs: Option<String>,
    /// `WECHATPAY_API_BASE`; the local server points it at its stand-in.
    pub api_base: String,
    /// `<RENJI_PUBLIC_BASE_URL>/v1/payments/wechat/notify`.
    pub notify_url: String,
}

/// Alipay open API (`ALIPAY_*`; `payments/alipay/`). Present when `ALIPAY_APP_ID` is set.
#[derive(Clone, Debug)]
pub struct AlipayConfig {
    pub app_id: String,
    /// The app private key, PKCS#1 or PKCS#8 PEM (`ALIPAY_APP_PRIVATE_KEY_ARN` or `…_KEY`).
    pub app_private_key: Option<SecretSetting>,
    /// Alipay's public keys, PEM (`ALIPAY_PUBLIC_KEY`; the local server adds its stand-in's own).
    pub public_keys: Vec<String>,
    /// The merchant's Alipay user id (`ALIPAY_SELLER_ID`, `2088…`), checked on notifications.
    pub seller_id: Option<String>,
    /// `ALIPAY_GATEWAY`; the local server points it at its stand-in.
    pub gateway: String,
    /// `<RENJI_PUBLIC_BASE_URL>/v1/payments/alipay/notify`.
    pub notify_url: String,
}

/// Tencent IM (`TENCENT_IM_*`; `im.rs`). Present when `TENCENT_IM_SDKAPPID` is set.
#[derive(Clone, Debug)]
pub struct ImConfig {
    /// The IM application (`TENCENT_IM_SDKAPPID`).
    pub sdk_app_id: u64,
    /// Its secret key (`TENCENT_IM_SECRET_ARN` or `TENCENT_IM_SECRET`): the `im` function only.
    pub secret: SecretSetting,
    /// How long a UserSig is valid (`TENCENT_IM_USERSIG_DAYS`, 1 to 180, default 7).
    pub usersig_days: u32,
    /// The application's administrator account the REST API is called as (`TENCENT_IM_ADMIN`,
    /// default `administrator`).
    pub admin: String,
    /// The REST API's base (`TENCENT_IM_API_BASE`, default `https://console.tim.qq.com`, the
    /// China region's); the local server points it at its stand-in.
    pub api_base: String,
}

pub const DEFAULT_IM_ADMIN: &str = "administrator";
pub const DEFAULT_IM_API_BASE: &str = "https://console.tim.qq.com";

pub const DEFAULT_WECHATPAY_API_BASE: &str = "https://api.mch.weixin.qq.com";
pub const DEFAULT_ALIPAY_GATEWAY: &str = "https://openapi.alipay.com/gateway.do";
pub const WECHATPAY_NOTIFY_PATH: &str = "/v1/payments/wechat/notify";
pub const ALIPAY_NOTIFY_PATH: &str = "/v1/payments/alipay/notify";

/// A PEM value from an environment variable: `\n` escapes become newlines.
pub fn pem_text(value: &str) -> String {
    value.replace("\\n", "\n").trim().to_owned()
}

#[derive(Clone, Debug)]
pub struct Config {
    /// DynamoDB table name (`RENJI_TABLE`).
    pub table_name: String,
    /// A DynamoDB endpoint to use instead of AWS's (`RENJI_DYNAMODB_ENDPOINT`), e.g. DynamoDB Local.
    pub dynamodb_endpoint: Option<String>,
    /// The session-token HMAC keys (`RENJI_SESSION_SECRET_ARN` or `RENJI_SESSION_SECRET`; format
    /// in `session.rs`).
    /// Absent in the functions that serve no member (the notify functions, the order jobs),
    /// which then may not read the session keys at all.
    pub session_secret: Option<SecretSetting>,
    /// How long a secret read from Secrets Manager is used before it is read again
    /// (`RENJI_SECRETS_TTL_SECS`).
    pub secrets_ttl: Duration,
    /// A PEM file of the roots the DynamoDB client trusts (`RENJI_TLS_ROOTS`), instead of the
    /// compiled-in Amazon roots (global regions) or the system's (`cn-` regions).
    pub tls_roots: Option<String>,
    /// How long a session lasts (`RENJI_SESSION_TTL_SECS`).
    pub session_ttl: Duration,
    /// The largest request body accepted (`RENJI_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// The listing categories members may choose from (`RENJI_CATEGORIES`, comma-separated slugs).
    pub categories: Vec<String>,
    /// WeChat login credentials; only the functions that call WeChat are given them.
    pub wechat: Option<WechatConfig>,
    /// The identity verifier (`RENJI_VERIFIER_URL`, `RENJI_VERIFIER_TOKEN`); verification only.
    pub verifier: Option<VerifierConfig>,
    /// PII encryption keys (`RENJI_PII_KEYS`, `RENJI_PII_ACTIVE_KEY`); verification only.
    pub pii: Option<PiiConfig>,
    /// Verification submissions per member per UTC day (`RENJI_VERIFICATION_DAILY_LIMIT`).
    pub verification_daily_limit: u32,
    /// Per-client rate limits of each route class (`RENJI_RATE_LIMITS`).
    pub rate_limits: RateLimits,
    /// Accounts one identity may verify (`RENJI_ID_MAX_ACCOUNTS`, `RENJI_CREDIT_CODE_MAX_ACCOUNTS`).
    pub max_accounts: MaxAccounts,
    /// The PII key id whose key derives identity-claim HMACs (`RENJI_ID_CLAIM_KEY`; default the
    /// active PII key).
    pub id_claim_key: Option<String>,
    /// The first wait before a pending verification is asked again; doubles each time
    /// (`RENJI_VERIFICATION_RECHECK_SECS`).
    pub verification_recheck: Duration,
    /// Where listings and nearby queries may be (`RENJI_GEO_BOUNDS`); China by default.
    pub geo_bounds: crate::geo::GeoBounds,
    /// The API's public https base (`RENJI_PUBLIC_BASE_URL`): the providers' notify URLs.
    pub public_base_url: Option<String>,
    pub wechat_pay: Option<WechatPayConfig>,
    pub alipay: Option<AlipayConfig>,
    /// The order clock (`RENJI_ORDER_*`, `RENJI_REFUND_AUTO_APPROVE_DAYS`).
    pub orders: OrderTimes,
    /// Tencent IM, in the function that signs UserSigs.
    pub im: Option<ImConfig>,
    /// How long after completion a party may open a dispute (`RENJI_DISPUTE_DAYS`, 15).
    pub dispute_window: Duration,
    /// When a ticket other than a privacy request is due to staff (`RENJI_TICKET_DUE_HOURS`,
    /// 48); a privacy request is due 15 days after filing, by law (§八), whatever this says.
    pub ticket_due: Duration,
    /// How long after an order's completion its buyer may review it (`RENJI_REVIEW_DAYS`; `0`
    /// closes reviews).
    pub review_window: Duration,
    /// Staff sign-in with WeCom (`WECOM_*`, `RENJI_STAFF_*`); only the `admin` function has it.
    pub staff: Option<StaffConfig>,
    /// How long audit records are kept (`RENJI_AUDIT_DAYS`, 1095: the 3 years transaction records
    /// are kept; the Cybersecurity Law's minimum for logs is 6 months, so 180 to 3650).
    pub audit_keep: Duration,
    /// The current version of each policy document (`RENJI_POLICY_VERSIONS`,
    /// `privacy_policy=1.0,terms=1.0`, `major.minor` each): what a consent must name, and what
    /// `GET /v1/me` asks members to accept again when its major version moves.
    pub policy_versions: crate::domain::consents::PolicyVersions,
    /// Members' data exports (`RENJI_EXPORT_*`).
    pub media: MediaConfig,
    pub exports: ExportsConfig,
    /// How long an order (and its payments, events, review marker) is kept after its completion
    /// or closure once a deleted member's side is anonymised, before DynamoDB's TTL purges it
    /// (`RENJI_ORDER_RETENTION_DAYS`, 1095: the 3 years transaction records are kept; 1095 to
    /// 3650).
    pub order_retention: Duration,
    /// The subscribe-message template of each kind (`WECHAT_SUBSCRIBE_TEMPLATES`,
    /// `order_paid=<id>,order_refunded=<id>,order_declined=<id>,dispute_decided=<id>,ticket_answered=<id>,settlement_failed=<id>`;
    /// empty: no messages are sent, notifications are recorded as skipped).
    pub subscribe_templates: crate::domain::subscriptions::Templates,
    /// Paying sellers (`RENJI_COMMISSION_BPS`, `RENJI_SETTLE_*`; `settlement/config.rs`), checked
    /// against the order clock at start-up.
    pub settlement: crate::settlement::SettlementConfig,
}

/// Members' uploads (`domain/media`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaConfig {
    /// Where uploaded media is served from once public (`RENJI_MEDIA_BASE_URL`, the CDN's
    /// ICP-filed https origin; the local server serves its own). A media URL is this base, `/`,
    /// and the object key.
    pub base_url: String,
    /// The private bucket uploads go to (`RENJI_MEDIA_BUCKET`); only the functions that sign
    /// uploads or look at, publish or delete objects have it. The local server uses files.
    pub bucket: Option<String>,
    /// The largest image (`RENJI_UPLOAD_IMAGE_MAX_BYTES`, 10 MiB: what WeChat's image check
    /// takes).
    pub image_max_bytes: u64,
    /// The largest video (`RENJI_UPLOAD_VIDEO_MAX_BYTES`, 100 MiB).
    pub video_max_bytes: u64,
    /// How long an upload form may be used (`RENJI_UPLOAD_POLICY_SECS`, 300; 60 to 3600).
    pub policy: Duration,
    /// Upload forms a member may ask for per UTC day (`RENJI_UPLOADS_PER_DAY`, 200).
    pub per_day: u32,
}

/// `RENJI_MEDIA_BASE_URL`'s default.
pub const DEFAULT_MEDIA_BASE_URL: &str = "https://media.renji.world";
/// `RENJI_UPLOAD_IMAGE_MAX_BYTES`'s default (10 MiB).
pub const DEFAULT_UPLOAD_IMAGE_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// `RENJI_UPLOAD_VIDEO_MAX_BYTES`'s default (100 MiB).
pub const DEFAULT_UPLOAD_VIDEO_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// `RENJI_UPLOAD_POLICY_SECS`'s default.
pub const DEFAULT_UPLOAD_POLICY_SECS: u64 = 300;
/// `RENJI_UPLOADS_PER_DAY`'s default.
pub const DEFAULT_UPLOADS_PER_DAY: u64 = 200;
/// The most `RENJI_UPLOAD_IMAGE_MAX_BYTES` may be (what WeChat's image check takes).
pub const MAX_UPLOAD_IMAGE_BYTES: u64 = 10 * 1024 * 1024;
/// The most `RENJI_UPLOAD_VIDEO_MAX_BYTES` may be (1 GiB; S3's single POST allows far more).
pub const MAX_UPLOAD_VIDEO_BYTES: u64 = 1024 * 1024 * 1024;

/// Members' data exports (`domain/exports`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportsConfig {
    /// The S3 bucket exports are written to (`RENJI_EXPORT_BUCKET`); only the `exports` and
    /// `export-jobs` functions have it. The local server uses files instead.
    pub bucket: Option<String>,
    /// How long a download link lasts (`RENJI_EXPORT_LINK_SECS`, 900; 60 to 86400).
    pub link: Duration,
    /// Exports a member may request per UTC day (`RENJI_EXPORTS_PER_DAY`, 3).
    pub per_day: u32,
    /// How long a built export is kept (`RENJI_EXPORT_KEEP_DAYS`, 7; 1 to 30): the record's
    /// `ttl` and the bucket's lifecycle rule.
    pub keep: Duration,
}

/// `RENJI_EXPORT_LINK_SECS`'s default.
pub const DEFAULT_EXPORT_LINK_SECS: u64 = 900;
/// `RENJI_EXPORTS_PER_DAY`'s default.
pub const DEFAULT_EXPORTS_PER_DAY: u64 = 3;
/// `RENJI_EXPORT_KEEP_DAYS`'s default.
pub const DEFAULT_EXPORT_KEEP_DAYS: u64 = 7;

/// How long an order waits at each step before the order jobs act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderTimes {
    /// Unpaid orders expire after this (`RENJI_ORDER_PAY_MINUTES`, default 30).
    pub pay: Duration,
    /// A paid order not accepted within this is refunded (`RENJI_ORDER_ACCEPT_HOURS`, 24).
    pub accept: Duration,
    /// An accepted order completes itself after this (`RENJI_ORDER_AUTO_COMPLETE_DAYS`, 7).
    pub auto_complete: Duration,
    /// A refund request unanswered this long is approved (`RENJI_REFUND_AUTO_APPROVE_DAYS`, 3).
    pub refund_auto_approve: Duration,
    /// A completed order is split this long after its completion: the dispute window
    /// (`RENJI_DISPUTE_DAYS`) and the settle delay (`RENJI_SETTLE_DELAY_DAYS`).
    pub settle_after: Duration,
}

impl Default for OrderTimes {
    fn default() -> Self {
        OrderTimes {
            pay: Duration::from_secs(30 * 60),
            accept: Duration::from_secs(24 * 3600),
            auto_complete: Duration::from_secs(7 * 24 * 3600),
            refund_auto_approve: Duration::from_secs(3 * 24 * 3600),
            settle_after: Duration::from_secs((DEFAULT_DISPUTE_DAYS + 1) * 24 * 3600),
        }
    }
}

/// How many accounts one ID number, and one credit code, may verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxAccounts {
    pub person: u32,
    pub enterprise: u32,
}

pub const DEFAULT_TABLE: &str = "renji";
pub const DEFAULT_SESSION_TTL_SECS: u64 = 7 * 24 * 3600;
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_WECHAT_API_BASE: &str = "https://api.weixin.qq.com";
pub const DEFAULT_WECOM_API_BASE: &str = "https://qyapi.weixin.qq.com";
pub const DEFAULT_STAFF_SESSION_SECS: u64 = 7200;
pub const DEFAULT_CATEGORIES: &str = "photography,videography,makeup,styling,costume,venue,\
music,dance,acting,modeling,design,post_production,other";
pub const DEFAULT_VERIFICATION_DAILY_LIMIT: u64 = 5;
pub const DEFAULT_ID_MAX_ACCOUNTS: u64 = 1;
pub const DEFAULT_CREDIT_CODE_MAX_ACCOUNTS: u64 = 1;
pub const DEFAULT_VERIFICATION_RECHECK_SECS: u64 = 60;
pub const DEFAULT_SECRETS_TTL_SECS: u64 = 300;
pub const DEFAULT_DISPUTE_DAYS: u64 = 15;
pub const DEFAULT_TICKET_DUE_HOURS: u64 = 48;
pub const DEFAULT_REVIEW_DAYS: u64 = 15;
pub const DEFAULT_AUDIT_DAYS: u64 = 1095;
pub const DEFAULT_ORDER_RETENTION_DAYS: u64 = 1095;

impl Config {
    /// Reads the configuration of a deployed function; a missing secret is an error.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let number = |name: &str, default: u64| -> Result<u64, Error> {
            match lookup(name) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| Error::Config(format!("{name} is not a whole number"))),
            }
        };
        let at_least_one = |name: &str, default: u64| -> Result<u32, Error> {
            u32::try_from(number(name, default)?)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Error::Config(format!("{name} is a whole number from 1")))
        };
        let text = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let public_base_url =
            text("RENJI_PUBLIC_BASE_URL").map(|b| b.trim_end_matches('/').to_owned());
        let notify_url = |path: &str| format!("{}{path}", public_base_url.as_deref().unwrap_or(""));
        let wechat_pay = match text("WECHATPAY_MCHID") {
            None => None,
            Some(mchid) => Some(WechatPayConfig {
                mchid,
                appid: text("WECHATPAY_APPID")
                    .or_else(|| text("WECHAT_APPID"))
                    .ok_or_else(|| {
                        Error::Config("WECHATPAY_APPID (or WECHAT_APPID) is not set".into())
                    })?,
                merchant_serial: text("WECHATPAY_MERCHANT_SERIAL"),
                merchant_key: SecretSetting::lookup(&lookup, "WECHATPAY_MERCHANT_KEY")?,
                apiv3_key: SecretSetting::lookup(&lookup, "WECHATPAY_APIV3_KEY")?,
                public_keys: match (
                    text("WECHATPAY_PUBLIC_KEY_ID"),
                    text("WECHATPAY_PUBLIC_KEY"),
                ) {
                    (Some(id), Some(pem)) => vec![(id.trim().to_owned(), pem_text(&pem))],
                    (None, None) => Vec::new(),
                    _ => {
                        return Err(Error::Config(
                            "WECHATPAY_PUBLIC_KEY_ID and WECHATPAY_PUBLIC_KEY are set together"
                                .into(),
                        ))
                    }
                },
                platform_certs: text("WECHATPAY_PLATFORM_CERTS").map(|p| pem_text(&p)),
                api_base: text("WECHATPAY_API_BASE")
                    .unwrap_or_else(|| DEFAULT_WECHATPAY_API_BASE.into())
                    .trim_end_matches('/')
                    .to_owned(),
                notify_url: notify_url(WECHATPAY_NOTIFY_PATH),
            }),
        };
        let alipay = match text("ALIPAY_APP_ID") {
            None => None,
            Some(app_id) => Some(AlipayConfig {
                app_id,
                app_private_key: SecretSetting::lookup(&lookup, "ALIPAY_APP_PRIVATE_KEY")?,
                public_keys: text("ALIPAY_PUBLIC_KEY")
                    .map(|p| pem_text(&p))
                    .into_iter()
                    .collect(),
                seller_id: text("ALIPAY_SELLER_ID"),
                gateway: text("ALIPAY_GATEWAY").unwrap_or_else(|| DEFAULT_ALIPAY_GATEWAY.into()),
                notify_url: notify_url(ALIPAY_NOTIFY_PATH),
            }),
        };
        let usersig_days = u32::try_from(number(
            "TENCENT_IM_USERSIG_DAYS",
            u64::from(crate::im::DEFAULT_USERSIG_DAYS),
        )?)
        .ok()
        .filter(|d| (1..=crate::im::MAX_USERSIG_DAYS).contains(d))
        .ok_or_else(|| {
            Error::Config(format!(
                "TENCENT_IM_USERSIG_DAYS is a whole number from 1 to {}",
                crate::im::MAX_USERSIG_DAYS
            ))
        })?;
        let im = match text("TENCENT_IM_SDKAPPID") {
            None => {
                if SecretSetting::lookup(&lookup, "TENCENT_IM_SECRET")?.is_some() {
                    return Err(Error::Config(
                        "TENCENT_IM_SECRET is set without TENCENT_IM_SDKAPPID".into(),
                    ));
                }
                None
            }
            Some(id) => Some(ImConfig {
                sdk_app_id: id.trim().parse().ok().filter(|id| *id > 0).ok_or_else(|| {
                    Error::Config("TENCENT_IM_SDKAPPID is not an IM application id".into())
                })?,
                secret: SecretSetting::required(&lookup, "TENCENT_IM_SECRET")?,
                usersig_days,
                admin: text("TENCENT_IM_ADMIN")
                    .map(|a| a.trim().to_owned())
                    .unwrap_or_else(|| DEFAULT_IM_ADMIN.into()),
                api_base: text("TENCENT_IM_API_BASE")
                    .unwrap_or_else(|| DEFAULT_IM_API_BASE.into())
                    .trim()
                    .trim_end_matches('/')
                    .to_owned(),
            }),
        };
        let defaults = OrderTimes::default();
        let mut orders = OrderTimes {
            pay: Duration::from_secs(
                60 * u64::from(at_least_one(
                    "RENJI_ORDER_PAY_MINUTES",
                    defaults.pay.as_secs() / 60,
                )?),
            ),
            accept: Duration::from_secs(
                3600 * u64::from(at_least_one(
                    "RENJI_ORDER_ACCEPT_HOURS",
                    defaults.accept.as_secs() / 3600,
                )?),
            ),
            auto_complete: Duration::from_secs(
                86400
                    * u64::from(at_least_one(
                        "RENJI_ORDER_AUTO_COMPLETE_DAYS",
                        defaults.auto_complete.as_secs() / 86400,
                    )?),
            ),
            refund_auto_approve: Duration::from_secs(
                86400
                    * u64::from(at_least_one(
                        "RENJI_REFUND_AUTO_APPROVE_DAYS",
                        defaults.refund_auto_approve.as_secs() / 86400,
                    )?),
            ),
            settle_after: defaults.settle_after,
        };
        let dispute_window = Duration::from_secs(
            86400 * u64::from(at_least_one("RENJI_DISPUTE_DAYS", DEFAULT_DISPUTE_DAYS)?),
        );
        let ticket_due = Duration::from_secs(
            3600 * u64::from(at_least_one(
                "RENJI_TICKET_DUE_HOURS",
                DEFAULT_TICKET_DUE_HOURS,
            )?),
        );
        let review_days = number("RENJI_REVIEW_DAYS", DEFAULT_REVIEW_DAYS)?;
        // Beyond ten years is a typo, and would overflow nothing but mean nothing either.
        if review_days > 3650 {
            return Err(Error::Config(
                "RENJI_REVIEW_DAYS is a whole number from 0 to 3650".into(),
            ));
        }
        let audit_days = number("RENJI_AUDIT_DAYS", DEFAULT_AUDIT_DAYS)?;
        if !(180..=3650).contains(&audit_days) {
            return Err(Error::Config(
                "RENJI_AUDIT_DAYS is a whole number from 180 to 3650".into(),
            ));
        }
        let retention_days = number("RENJI_ORDER_RETENTION_DAYS", DEFAULT_ORDER_RETENTION_DAYS)?;
        if !(1095..=3650).contains(&retention_days) {
            return Err(Error::Config(
                "RENJI_ORDER_RETENTION_DAYS is a whole number from 1095 to 3650".into(),
            ));
        }
        // Parsed whether or not sign-in is on, so a bad mapping fails every start-up alike.
        let roles = crate::staff::RoleMap::parse(lookup("RENJI_STAFF_ROLES").as_deref())
            .map_err(|e| Error::Config(format!("RENJI_STAFF_ROLES: {e}")))?;
        let session_secs = number("RENJI_STAFF_SESSION_SECS", DEFAULT_STAFF_SESSION_SECS)?;
        let session_secs = u32::try_from(session_secs)
            .ok()
            .filter(|s| (60..=86_400).contains(s))
            .ok_or_else(|| {
                Error::Config("RENJI_STAFF_SESSION_SECS is from 60 to 86400 seconds".into())
            })?;
        let staff = match text("WECOM_CORP_ID") {
            None => None,
            Some(corp_id) => Some(StaffConfig {
                wecom: WecomConfig {
                    corp_id: corp_id.trim().to_owned(),
                    secret: SecretSetting::required(&lookup, "WECOM_SECRET")?,
                    api_base: text("WECOM_API_BASE")
                        .unwrap_or_else(|| DEFAULT_WECOM_API_BASE.into())
                        .trim_end_matches('/')
                        .to_owned(),
                },
                roles,
                session_secs,
            }),
        };
        let policy_versions = crate::domain::consents::PolicyVersions::parse(
            &text("RENJI_POLICY_VERSIONS")
                .unwrap_or_else(|| crate::domain::consents::DEFAULT_POLICY_VERSIONS.into()),
        )
        .map_err(|e| Error::Config(format!("RENJI_POLICY_VERSIONS: {e}")))?;
        let link_secs = number("RENJI_EXPORT_LINK_SECS", DEFAULT_EXPORT_LINK_SECS)?;
        if !(60..=86_400).contains(&link_secs) {
            return Err(Error::Config(
                "RENJI_EXPORT_LINK_SECS is from 60 to 86400 seconds".into(),
            ));
        }
        let keep_days = number("RENJI_EXPORT_KEEP_DAYS", DEFAULT_EXPORT_KEEP_DAYS)?;
        if !(1..=30).contains(&keep_days) {
            return Err(Error::Config(
                "RENJI_EXPORT_KEEP_DAYS is a whole number from 1 to 30".into(),
            ));
        }
        let exports = ExportsConfig {
            bucket: text("RENJI_EXPORT_BUCKET").map(|b| b.trim().to_owned()),
            link: Duration::from_secs(link_secs),
            per_day: at_least_one("RENJI_EXPORTS_PER_DAY", DEFAULT_EXPORTS_PER_DAY)?,
            keep: Duration::from_secs(keep_days * 86400),
        };
        let image_max_bytes = number(
            "RENJI_UPLOAD_IMAGE_MAX_BYTES",
            DEFAULT_UPLOAD_IMAGE_MAX_BYTES,
        )?;
        if !(1..=MAX_UPLOAD_IMAGE_BYTES).contains(&image_max_bytes) {
            return Err(Error::Config(format!(
                "RENJI_UPLOAD_IMAGE_MAX_BYTES is from 1 to {MAX_UPLOAD_IMAGE_BYTES}"
            )));
        }
        let video_max_bytes = number(
            "RENJI_UPLOAD_VIDEO_MAX_BYTES",
            DEFAULT_UPLOAD_VIDEO_MAX_BYTES,
        )?;
        if !(1..=MAX_UPLOAD_VIDEO_BYTES).contains(&video_max_bytes) {
            return Err(Error::Config(format!(
                "RENJI_UPLOAD_VIDEO_MAX_BYTES is from 1 to {MAX_UPLOAD_VIDEO_BYTES}"
            )));
        }
        let policy_secs = number("RENJI_UPLOAD_POLICY_SECS", DEFAULT_UPLOAD_POLICY_SECS)?;
        if !(60..=3600).contains(&policy_secs) {
            return Err(Error::Config(
                "RENJI_UPLOAD_POLICY_SECS is from 60 to 3600 seconds".into(),
            ));
        }
        let media = MediaConfig {
            base_url: text("RENJI_MEDIA_BASE_URL")
                .map(|b| b.trim().trim_end_matches('/').to_owned())
                .unwrap_or_else(|| DEFAULT_MEDIA_BASE_URL.into()),
            bucket: text("RENJI_MEDIA_BUCKET").map(|b| b.trim().to_owned()),
            image_max_bytes,
            video_max_bytes,
            policy: Duration::from_secs(policy_secs),
            per_day: at_least_one("RENJI_UPLOADS_PER_DAY", DEFAULT_UPLOADS_PER_DAY)?,
        };
        let subscribe_templates = crate::domain::subscriptions::Templates::parse(
            &lookup("WECHAT_SUBSCRIBE_TEMPLATES").unwrap_or_default(),
        )
        .map_err(|e| Error::Config(format!("WECHAT_SUBSCRIBE_TEMPLATES: {e}")))?;
        let categories =
            categories(&lookup("RENJI_CATEGORIES").unwrap_or_else(|| DEFAULT_CATEGORIES.into()))?;
        let settlement = crate::settlement::SettlementConfig::from_lookup(
            &lookup,
            &orders,
            dispute_window,
            &categories,
        )?;
        orders.settle_after = dispute_window + settlement.delay;
        Ok(Config {
            subscribe_templates,
            settlement,
            categories,
            policy_versions,
            media,
            exports,
            audit_keep: Duration::from_secs(audit_days * 86400),
            order_retention: Duration::from_secs(retention_days * 86400),
            staff,
            orders,
            im,
            dispute_window,
            ticket_due,
            review_window: Duration::from_secs(review_days * 86400),
            public_base_url,
            wechat_pay,
            alipay,
            table_name: lookup("RENJI_TABLE").unwrap_or_else(|| DEFAULT_TABLE.into()),
            dynamodb_endpoint: lookup("RENJI_DYNAMODB_ENDPOINT").filter(|v| !v.is_empty()),
            session_secret: SecretSetting::lookup(&lookup, "RENJI_SESSION_SECRET")?,
            secrets_ttl: Duration::from_secs(number(
                "RENJI_SECRETS_TTL_SECS",
                DEFAULT_SECRETS_TTL_SECS,
            )?),
            tls_roots: lookup("RENJI_TLS_ROOTS").filter(|v| !v.is_empty()),
            session_ttl: Duration::from_secs(number(
                "RENJI_SESSION_TTL_SECS",
                DEFAULT_SESSION_TTL_SECS,
            )?),
            max_body_bytes: usize::try_from(number(
                "RENJI_MAX_BODY_BYTES",
                DEFAULT_MAX_BODY_BYTES as u64,
            )?)
            .map_err(|_| Error::Config("RENJI_MAX_BODY_BYTES is too large".into()))?,
            wechat: match lookup("WECHAT_APPID").filter(|v| !v.is_empty()) {
                None => None,
                Some(appid) => Some(WechatConfig {
                    appid,
                    secret: SecretSetting::required(&lookup, "WECHAT_SECRET")?,
                    api_base: lookup("WECHAT_API_BASE")
                        .unwrap_or_else(|| DEFAULT_WECHAT_API_BASE.into()),
                    miniprogram_state: match lookup("WECHAT_MINIPROGRAM_STATE")
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty())
                    {
                        None => "formal".into(),
                        Some(v) if ["developer", "trial", "formal"].contains(&v.as_str()) => v,
                        Some(_) => {
                            return Err(Error::Config(
                                "WECHAT_MINIPROGRAM_STATE is developer, trial or formal".into(),
                            ))
                        }
                    },
                    push: match SecretSetting::lookup(&lookup, "WECHAT_PUSH_TOKEN")? {
                        None => None,
                        Some(token) => Some(PushConfig {
                            token,
                            aes_key: SecretSetting::required(&lookup, "WECHAT_PUSH_AES_KEY")?,
                        }),
                    },
                }),
            },
            verifier: match lookup("RENJI_VERIFIER_URL").filter(|v| !v.is_empty()) {
                None => None,
                Some(url) => Some(VerifierConfig {
                    url,
                    token: SecretSetting::required(&lookup, "RENJI_VERIFIER_TOKEN")?,
                }),
            },
            pii: SecretSetting::lookup(&lookup, "RENJI_PII_KEYS")?.map(|keys| PiiConfig {
                keys,
                active_key: lookup("RENJI_PII_ACTIVE_KEY").filter(|v| !v.is_empty()),
            }),
            verification_daily_limit: u32::try_from(number(
                "RENJI_VERIFICATION_DAILY_LIMIT",
                DEFAULT_VERIFICATION_DAILY_LIMIT,
            )?)
            .map_err(|_| Error::Config("RENJI_VERIFICATION_DAILY_LIMIT is too large".into()))?,
            rate_limits: RateLimits::parse(lookup("RENJI_RATE_LIMITS").as_deref())
                .map_err(|e| Error::Config(format!("RENJI_RATE_LIMITS: {e}")))?,
            max_accounts: MaxAccounts {
                person: at_least_one("RENJI_ID_MAX_ACCOUNTS", DEFAULT_ID_MAX_ACCOUNTS)?,
                enterprise: at_least_one(
                    "RENJI_CREDIT_CODE_MAX_ACCOUNTS",
                    DEFAULT_CREDIT_CODE_MAX_ACCOUNTS,
                )?,
            },
            id_claim_key: lookup("RENJI_ID_CLAIM_KEY").filter(|v| !v.is_empty()),
            verification_recheck: Duration::from_secs(number(
                "RENJI_VERIFICATION_RECHECK_SECS",
                DEFAULT_VERIFICATION_RECHECK_SECS,
            )?),
            geo_bounds: match lookup("RENJI_GEO_BOUNDS").filter(|v| !v.is_empty()) {
                None => crate::geo::GeoBounds::CHINA,
                Some(text) => crate::geo::GeoBounds::parse(&text)
                    .map_err(|e| Error::Config(format!("RENJI_GEO_BOUNDS {e}")))?,
            },
        })
    }
}

/// Category slugs: lowercase ASCII letters, digits and `_`, at most 32 bytes each.
fn categories(list: &str) -> Result<Vec<String>, Error> {
    let slugs: Vec<String> = list
        .split(',')
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let valid = |c: &String| {
        c.len() <= 32
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if slugs.is_empty() || !slugs.iter().all(valid) {
        return Err(Error::Config(
            "RENJI_CATEGORIES must be comma-separated slugs of a-z, 0-9 and _".into(),
        ));
    }
    Ok(slugs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_apply_and_secrets_are_required() {
        let c = Config::from_lookup(env(&[
            ("RENJI_SESSION_SECRET", SECRET),
            ("WECHAT_APPID", "wxapp"),
            ("WECHAT_SECRET", "wechat-app-secret"),
        ]))
        .unwrap();
        assert_eq!(c.table_name, DEFAULT_TABLE);
        assert_eq!(c.session_ttl.as_secs(), DEFAULT_SESSION_TTL_SECS);
        assert_eq!(c.wechat.as_ref().unwrap().api_base, DEFAULT_WECHAT_API_BASE);
        let shown = format!("{c:?}");
        assert!(!shown.contains(SECRET) && !shown.contains("wechat-app-secret"));

        assert_eq!(c.wechat.as_ref().map(|w| w.appid.as_str()), Some("wxapp"));
        // A function that serves no member (a notify function, a job) has no session keys.
        let missing =
            Config::from_lookup(env(&[("WECHAT_APPID", "a"), ("WECHAT_SECRET", "s")])).unwrap();
        assert!(missing.session_secret.is_none());
        let no_secret = Config::from_lookup(env(&[
            ("RENJI_SESSION_SECRET", SECRET),
            ("WECHAT_APPID", "a"),
        ]));
        assert!(matches!(no_secret, Err(Error::Config(m)) if m.contains("WECHAT_SECRET")));
        let no_wechat = Config::from_lookup(env(&[("RENJI_SESSION_SECRET", SECRET)])).unwrap();
        assert!(no_wechat.wechat.is_none());
        assert!(no_wechat.categories.contains(&"photography".to_owned()));
        let custom = Config::from_lookup(env(&[
            ("RENJI_SESSION_SECRET", SECRET),
            ("RENJI_CATEGORIES", "a, b_2"),
        ]))
        .unwrap();
        assert_eq!(custom.categories, ["a", "b_2"]);
        let bad = Config::from_lookup(env(&[
            ("RENJI_SESSION_SECRET", SECRET),
            ("RENJI_CATEGORIES", "Photo#1"),
        ]));
        assert!(bad.is_err());
    }

    #[test]
    fn secrets_come_from_an_arn_or_a_value_never_both() {
        let arn = "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:renji/session-AbCdEf";
        let c = Config::from_lookup(env(&[
            ("RENJI_SESSION_SECRET_ARN", arn),
            ("WECHAT_APPID", "wxapp"),
            ("WECHAT_SECRET_ARN", "renji/wechat"),
            ("RENJI_VERIFIER_URL", "https://verifier.example/v1/verify"),
            ("RENJI_VERIFIER_TOKEN_ARN", "renji/verifier"),
            ("RENJI_PII_KEYS_ARN", "renji/pii"),
            ("RENJI_SECRETS_TTL_SECS", "60"),
        ]))
        .unwrap();
        assert!(matches!(&c.session_secret, Some(SecretSetting::Stored(id)) if id == arn));
        assert!(
            matches!(&c.wechat.as_ref().unwrap().secret, SecretSetting::Stored(id) if id == "renji/wechat")
        );
        assert!(
            matches!(&c.verifier.as_ref().unwrap().token, SecretSetting::Stored(id) if id == "renji/verifier")
        );
        let pii = c.pii.as_ref().unwrap();
        assert!(matches!(&pii.keys, SecretSetting::Stored(id) if id == "renji/pii"));
        assert_eq!(pii.active_key, None);
        assert_eq!(c.secrets_ttl.as_secs(), 60);
        let default = Config::from_lookup(env(&[("RENJI_SESSION_SECRET", SECRET)])).unwrap();
        assert_eq!(default.secrets_ttl.as_secs(), DEFAULT_SECRETS_TTL_SECS);
        assert!(matches!(
            default.session_secret,
            Some(SecretSetting::Value(_))
        ));

        let both = Config::from_lookup(env(&[
            ("RENJI_SESSION_SECRET", SECRET),
            ("RENJI_SESSION_SECRET_ARN", arn),
        ]));
        assert!(matches!(both, Err(Error::Config(m)) if m.contains("both")));
        // A blank setting is no setting: the function has no session keys (its tokens() is a
        // configuration error, tested in app.rs's callers).
        let neither = Config::from_lookup(env(&[("RENJI_SESSION_SECRET_ARN", " ")])).unwrap();
        assert!(neither.session_secret.is_none());
    }

    #[test]
    fn staff_sign_in_is_on_with_a_corp_id_and_its_settings_are_checked() {
        let off = Config::from_lookup(env(&[("RENJI_SESSION_SECRET", SECRET)])).unwrap();
        assert!(off.staff.is_none());
        let on = Config::from_lookup(env(&[
            ("WECOM_CORP_ID", "ww-corp"),
            ("WECOM_SECRET_ARN", "renji/wecom"),
            ("RENJI_STAFF_ROLES", "user:alice=admin,dept:7=support"),
        ]))
        .unwrap();
        let staff = on.staff.unwrap();
        assert_eq!(staff.wecom.api_base, DEFAULT_WECOM_API_BASE);
        assert_eq!(u64::from(staff.session_secs), DEFAULT_STAFF_SESSION_SECS);
        assert!(matches!(&staff.wecom.secret, SecretSetting::Stored(id) if id == "renji/wecom"));
        let no_secret = Config::from_lookup(env(&[("WECOM_CORP_ID", "ww-corp")]));
        assert!(matches!(no_secret, Err(Error::Config(m)) if m.contains("WECOM_SECRET")));
        for (name, bad) in [
            ("RENJI_STAFF_ROLES", "user:alice=root"),
            ("RENJI_STAFF_ROLES", "group:1=admin"),
            ("RENJI_STAFF_SESSION_SECS", "10"),
            ("RENJI_STAFF_SESSION_SECS", "x"),
        ] {
            let e = Config::from_lookup(env(&[(name, bad)]));
            assert!(
                matches!(&e, Err(Error::Config(m)) if m.contains(name)),
                "{name}={bad}: {e:?}"
            );
        }
    }

    #[test]
    fn verification_settings_are_optional_groups() {
        let none = Config::from_lookup(env(&[("RENJI_SESSION_SECRET", SECRET)])).unwrap();
        assert!(none.verifier.is_none() && none.pii.is_none());
        assert_eq!(
            u64::from(none.verification_daily_limit),
            DEFAULT_VERIFICATION_DAILY_LIMIT
        );
        let c = Config::from_lookup(env(&[
            ("RENJI_SESSION_SECRET", SECRET),
            ("RENJI_VERIFIER_URL", "https://verifier.example/v1/verify"),
            ("RENJI_VERIFIER_TOKEN", "verifier-token-value"),
            ("RENJI_PII_KEYS", "k1:pii-key-value"),
            ("RENJI_PII_ACTIVE_KEY", "k1"),
            ("RENJI_VERIFICATION_DAILY_LIMIT", "2"),
        ]))
        .unwrap();
        assert_eq!(c.pii.as_ref().unwrap().active_key.as_deref(), Some("k1"));
        assert_eq!(c.verification_daily_limit, 2);
        let shown = format!("{c:?}");
        assert!(!shown.contains("verifier-token-value") && !shown.contains("pii-key-value"));
        assert_eq!(
            none.max_accounts,
            MaxAccounts {
                person: 1,
                enterprise: 1
            }
        );
        assert_eq!(none.verification_recheck.as_secs(), 60);
        assert_eq!(none.rate_limits, RateLimits::default());
        let tuned = Config::from_lookup(env(&[
            ("RENJI_SESSION_SECRET", SECRET),
            ("RENJI_ID_MAX_ACCOUNTS", "2"),
            ("RENJI_CREDIT_CODE_MAX_ACCOUNTS", "5"),
            ("RENJI_ID_CLAIM_KEY", "k0"),
            ("RENJI_VERIFICATION_RECHECK_SECS", "30"),
            ("RENJI_RATE_LIMITS", "off"),
        ]))
        .unwrap();
        assert_eq!(
            tuned.max_accounts,
            MaxAccounts {
                person: 2,
                enterprise: 5
            }
        );
        assert_eq!(tuned.id_claim_key.as_deref(), Some("k0"));
        assert_eq!(tuned.verification_recheck.as_secs(), 30);
        assert_eq!(tuned.rate_limits, RateLimits::off());
        assert_eq!(none.review_window.as_secs(), 15 * 86400);
        let closed = Config::from_lookup(env(&[
            ("RENJI_SESSION_SECRET", SECRET),
            ("RENJI_REVIEW_DAYS", "0"),
        ]))
        .unwrap();
        assert_eq!(closed.review_window.as_secs(), 0);
        for (name, bad) in [
            ("RENJI_ID_MAX_ACCOUNTS", "0"),
            ("RENJI_CREDIT_CODE_MAX_ACCOUNTS", "x"),
            ("RENJI_RATE_LIMITS", "login=0/60"),
            ("RENJI_REVIEW_DAYS", "-1"),
            ("RENJI_REVIEW_DAYS", "3651"),
            ("RENJI_POLICY_VERSIONS", "privacy_policy=1,terms=1.0"),
            ("RENJI_POLICY_VERSIONS", "privacy_policy=1.0"),
        ] {
            let e = Config::from_lookup(env(&[("RENJI_SESSION_SECRET", SECRET), (name, bad)]));
            assert!(
                matches!(e, Err(Error::Config(m)) if m.contains(name)),
                "{name}"
            );
        }
        let e = Config::from_lookup(env(&[
            ("RENJI_SESSION_SECRET", SECRET),
            ("RENJI_VERIFIER_URL", "x"),
        ]));
        assert!(matches!(e, Err(Error::Config(m)) if m.contains("RENJI_VERIFIER_TOKEN")));
    }

    #[test]
    fn tencent_im_settings() {
        let none = Config::from_lookup(env(&[])).unwrap();
        assert!(none.im.is_none());
        let local = Config::from_lookup(env(&[
            ("TENCENT_IM_SDKAPPID", "1400000000"),
            ("TENCENT_IM_SECRET", "key"),
        ]))
        .unwrap();
        let im = local.im.unwrap();
        assert_eq!((im.sdk_app_id, im.usersig_days), (1_400_000_000, 7));
        assert_eq!(
            (im.admin.as_str(), im.api_base.as_str()),
            ("administrator", "https://console.tim.qq.com")
        );
        assert!(matches!(im.secret, SecretSetting::Value(Redacted(v)) if v == "key"));
        let deployed = Config::from_lookup(env(&[
            ("TENCENT_IM_SDKAPPID", "1400000001"),
            (
                "TENCENT_IM_SECRET_ARN",
                "arn:aws-cn:secretsmanager:cn-north-1:1:secret:im",
            ),
            ("TENCENT_IM_USERSIG_DAYS", "180"),
        ]))
        .unwrap();
        let im = deployed.im.unwrap();
        assert_eq!(im.usersig_days, 180);
        assert!(matches!(im.secret, SecretSetting::Stored(id) if id.ends_with(":secret:im")));
        for (pairs, names) in [
            (
                vec![("TENCENT_IM_SDKAPPID", "1400000000")],
                "TENCENT_IM_SECRET",
            ),
            (vec![("TENCENT_IM_SECRET", "key")], "TENCENT_IM_SDKAPPID"),
            (
                vec![("TENCENT_IM_SDKAPPID", "14e8"), ("TENCENT_IM_SECRET", "k")],
                "TENCENT_IM_SDKAPPID",
            ),
            (
                vec![("TENCENT_IM_SDKAPPID", "0"), ("TENCENT_IM_SECRET", "k")],
                "TENCENT_IM_SDKAPPID",
            ),
            (
                vec![("TENCENT_IM_USERSIG_DAYS", "0")],
                "TENCENT_IM_USERSIG_DAYS",
            ),
            (
                vec![("TENCENT_IM_USERSIG_DAYS", "181")],
                "TENCENT_IM_USERSIG_DAYS",
            ),
        ] {
            let e = Config::from_lookup(env(&pairs));
            assert!(
                matches!(&e, Err(Error::Config(m)) if m.contains(names)),
                "{pairs:?}: {e:?}"
            );
        }
    }
}
