//! The local API: every route of `template.yaml`, translated into the API Gateway v2 request the
//! function's handler receives in Lambda.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use renji_shared::config::{Config, SecretSetting};
use renji_shared::secrets::Secrets;
use renji_shared::store::schema::TABLE;
use renji_shared::store::{dynamo::DynamoStore, embedded::EmbeddedStore, DynStore};
use renji_shared::App;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http_server::{self, HttpRequest, HttpResponse};
use crate::policy::{Policy, PolicyStore, Used};
use crate::router::{self, Match};
use crate::template::{Route, Template};
use crate::{functions, sandbox, tables};

/// Lambda's synchronous payload limit: larger requests never reach a function.
const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// How often the scheduled jobs run here unless `RENJI_LOCAL_JOBS_SECS` says otherwise (0: never).
const DEFAULT_JOBS_SECS: u64 = 5;

/// Local defaults the process environment may override.
const OVERRIDABLE: &[&str] = &[
    "RENJI_SESSION_TTL_SECS",
    "RENJI_VERIFICATION_RECHECK_SECS",
    // Staff sign-in: a developer may point it at a real WeCom corp, or map roles otherwise.
    "WECOM_CORP_ID",
    "WECOM_SECRET",
    "WECOM_API_BASE",
    "RENJI_STAFF_ROLES",
    "RENJI_UPLOAD_POLICY_SECS",
    // An outside test may sign its own message pushes.
    "WECHAT_PUSH_TOKEN",
    "WECHAT_PUSH_AES_KEY",
    // A developer may try their own subscribe-message templates.
    "WECHAT_SUBSCRIBE_TEMPLATES",
];

/// The subscribe-message templates here unless configured otherwise: one per kind, so every
/// notification is sent to the sandbox stand-in (`GET /sandbox/wechat/messages`).
pub const SANDBOX_SUBSCRIBE_TEMPLATES: &str = "order_paid=sandbox-order-paid,\
order_refunded=sandbox-order-refunded,order_declined=sandbox-order-declined,\
dispute_decided=sandbox-dispute-decided,ticket_answered=sandbox-ticket-answered,\
settlement_failed=sandbox-settlement-failed";

#[derive(Clone, Debug)]
pub enum StoreChoice {
    /// The embedded database in this folder (created if missing).
    Embedded { data_dir: PathBuf },
    /// A DynamoDB endpoint such as DynamoDB Local; the table is created from the template.
    Dynamo {
        endpoint: String,
        table_name: String,
    },
}

#[derive(Clone, Debug)]
pub struct Options {
    pub addr: SocketAddr,
    pub store: StoreChoice,
    /// The session HMAC key; the embedded store keeps a generated one in its data folder.
    pub session_secret: Option<String>,
    /// Configuration variables that win over the environment and the local defaults (tests).
    pub config: HashMap<String, String>,
}

pub struct Running {
    pub addr: SocketAddr,
    pub wechat_base: String,
    /// The WeChat Pay stand-in (`WECHATPAY_API_BASE` unless set outside); `/sandbox/pay` here.
    pub wechatpay_base: String,
    /// The Alipay stand-in's gateway (`ALIPAY_GATEWAY` unless set outside).
    pub alipay_gateway: String,
    /// The Alipay stand-in's base URL: `/sandbox/pay` and `/sandbox/fail-refunds` here.
    pub alipay_base: String,
    pub verifier_url: String,
    /// The IM REST API stand-in's base URL (`TENCENT_IM_API_BASE` with the sandbox
    /// application); `GET /sandbox/im/deleted` there lists the accounts deleted.
    pub im_base: String,
    /// The WeCom stand-in's base URL (`WECOM_API_BASE` unless set outside).
    pub wecom_base: String,
    /// The functions' state over the whole store (for tests that look behind the API).
    pub app: Arc<App>,
    /// Each function's state, its store limited by its IAM statements in `template.yaml`.
    functions: Arc<Functions>,
    tasks: Vec<JoinHandle<()>>,
}

/// Each function's own state and what its requests used of its permissions, by logical id.
type Functions = HashMap<String, (Arc<App>, Arc<Mutex<Used>>)>;

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The state `function`'s handler gets: the store enforces the function's IAM statements.
    pub fn function_app(&self, function: &str) -> Option<&App> {
        self.functions.get(function).map(|(app, _)| app.as_ref())
    }

    /// The actions and `LeadingKeys` patterns `function`'s requests have used so far.
    pub fn used(&self, function: &str) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
        let (_, used) = self.functions.get(function)?;
        let used = used.lock().ok()?;
        Some((used.actions.clone(), used.partitions.clone()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The session keys in `data_dir/session-secret`, generated on first run so tokens survive
/// restarts. Only its owner may read the file (mode 0600, set again on a file found more open):
/// it signs every local session. A file of the old form (one secret of 32 bytes or more) is
/// still used as it is.
fn local_secret(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join("session-secret");
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let found = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(failed(e)),
    };
    match found {
        Some(text) if !text.trim().is_empty() => {
            owner_only(&std::fs::File::open(&path).map_err(failed)?).map_err(failed)?;
            renji_shared::session::TokenSigner::new(&text).map_err(|e| {
                format!(
                    "{}: {e} (fix it, or delete it for a new one)",
                    path.display()
                )
            })?;
            Ok(text.trim().to_owned())
        }
        _ => {
            use base64::Engine as _;
            use ring::rand::SecureRandom as _;
            let mut key = [0u8; 32];
            ring::rand::SystemRandom::new()
                .fill(&mut key)
                .map_err(|_| "the system random number generator failed".to_owned())?;
            let secret = format!(
                "local:{}",
                base64::engine::general_purpose::STANDARD.encode(key)
            );
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path).map_err(failed)?;
            // `mode` applies to a new file only; an empty one found may be more open.
            owner_only(&file).map_err(failed)?;
            std::io::Write::write_all(&mut file, secret.as_bytes()).map_err(failed)?;
            Ok(secret)
        }
    }
}

/// Makes `file` readable and writable by its owner only (0600), when others may read it.
pub(crate) fn owner_only(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o177 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Creates the data folder (and its parents), owner-only (0700) where it is new: it holds the
/// session keys and the database.
fn create_data_dir(data_dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(data_dir)
}

/// The local PII key, derived from the session secret so it persists exactly as that does.
fn local_pii_keys(secret: &str) -> String {
    use base64::Engine as _;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let derived = ring::hmac::sign(&key, b"renji-local-pii-key-v1");
    format!(
        "local:{}",
        base64::engine::general_purpose::STANDARD.encode(derived.as_ref())
    )
}

/// Opens the store, starts the sandbox providers and the API; returns once both listen.
pub async fn start(options: Options) -> Result<Running, String> {
    let (store, secret): (DynStore, String) = match &options.store {
        StoreChoice::Embedded { data_dir } => {
            create_data_dir(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
            let store = EmbeddedStore::open(&data_dir.join("renji.redb"), TABLE)
                .map_err(|e| format!("embedded store: {e}"))?;
            let secret = match &options.session_secret {
                Some(s) => s.clone(),
                None => local_secret(data_dir)?,
            };
            (Arc::new(store), secret)
        }
        StoreChoice::Dynamo {
            endpoint,
            table_name,
        } => {
            let client = renji_shared::app::dynamodb_client(Some(endpoint)).await;
            tables::create_table(&client, table_name).await?;
            let secret = options.session_secret.clone().unwrap_or_else(|| {
                format!(
                    "{}{}",
                    renji_shared::ids::random_token(),
                    renji_shared::ids::random_token()
                )
            });
            (
                Arc::new(DynamoStore::new(client, table_name.clone(), TABLE)),
                secret,
            )
        }
    };

    let wechat_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("sandbox WeChat: {e}"))?;
    // Started once the configuration is known: it pushes with the server's push keys.
    let wechat_base = format!(
        "http://{}",
        wechat_listener.local_addr().map_err(|e| e.to_string())?
    );
    let wecom_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("sandbox WeCom: {e}"))?;
    let (wecom_base, wecom_task) =
        sandbox::wecom::spawn(wecom_listener).map_err(|e| e.to_string())?;
    let verifier_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("sandbox verifier: {e}"))?;
    let (verifier_url, verifier_task) =
        sandbox::verifier::spawn(verifier_listener).map_err(|e| e.to_string())?;
    let im_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("sandbox IM: {e}"))?;
    let (im_base, im_task) = sandbox::im::spawn(im_listener).map_err(|e| e.to_string())?;

    // Bound first: the providers' notifications come back to it (RENJI_PUBLIC_BASE_URL).
    let listener = TcpListener::bind(options.addr)
        .await
        .map_err(|e| format!("{}: {e}", options.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let payment_keys = sandbox::payment_keys::load(match &options.store {
        StoreChoice::Embedded { data_dir } => Some(data_dir.as_path()),
        StoreChoice::Dynamo { .. } => None,
    })
    .await?;
    let provider_keys = payment_keys.parse()?;
    let wechatpay_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("sandbox WeChat Pay: {e}"))?;
    let wechatpay_base = format!(
        "http://{}",
        wechatpay_listener.local_addr().map_err(|e| e.to_string())?
    );
    let alipay_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("sandbox Alipay: {e}"))?;
    let alipay_base = format!(
        "http://{}",
        alipay_listener.local_addr().map_err(|e| e.to_string())?
    );
    let alipay_gateway = format!("{alipay_base}{}", sandbox::alipay::GATEWAY_PATH);

    // Data exports: files under the data folder (a folder of its own in the temp dir on
    // DynamoDB), behind links this server signs and serves (`exports.rs`).
    let export_root = match &options.store {
        StoreChoice::Embedded { data_dir } => data_dir.clone(),
        StoreChoice::Dynamo { .. } => {
            std::env::temp_dir().join(format!("renji-local-{}", ulid::Ulid::new()))
        }
    };
    let archive = Arc::new(crate::exports::FileArchive::new(
        &export_root,
        &format!("http://{addr}"),
        &secret,
    ));
    // Members' uploads: files under the same folder, this server standing in for the bucket
    // (its upload endpoint checks the POST policy) and for the CDN (`media.rs`).
    let media = Arc::new(crate::media::FileMediaBucket::new(
        &export_root,
        &format!("http://{addr}"),
        &secret,
    ));
    let table_name = match &options.store {
        StoreChoice::Dynamo { table_name, .. } => table_name.clone(),
        StoreChoice::Embedded { .. } => renji_shared::config::DEFAULT_TABLE.into(),
    };
    // The sandbox IM application, unless one is configured outside (then it alone is used).
    let im_outside = sandbox::im::VARIABLES.iter().any(|name| {
        options.config.contains_key(*name)
            || std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
    });
    let im_sandbox = [
        ("TENCENT_IM_SDKAPPID", sandbox::im::SDKAPPID.to_owned()),
        ("TENCENT_IM_SECRET", sandbox::im::secret(&secret)),
        ("TENCENT_IM_API_BASE", im_base.clone()),
    ];
    let mut env: HashMap<&str, String> = HashMap::from([
        ("RENJI_TABLE", table_name),
        ("RENJI_PII_KEYS", local_pii_keys(&secret)),
        ("RENJI_PII_ACTIVE_KEY", "local".into()),
        ("RENJI_SESSION_SECRET", secret),
        ("RENJI_VERIFIER_URL", verifier_url.clone()),
        ("RENJI_VERIFIER_TOKEN", sandbox::verifier::TOKEN.into()),
        ("WECHAT_APPID", sandbox::wechat::APPID.into()),
        ("WECHAT_SECRET", sandbox::wechat::SECRET.into()),
        ("WECHAT_API_BASE", wechat_base.clone()),
        // Upload forms last a minute here (5 in Lambda): the media job checks an image once its
        // form has expired.
        ("RENJI_UPLOAD_POLICY_SECS", "60".into()),
        // Message push in safe mode; the WeChat stand-in pushes media check results with them.
        ("WECHAT_PUSH_TOKEN", sandbox::wechat::PUSH_TOKEN.into()),
        ("WECHAT_PUSH_AES_KEY", sandbox::wechat::PUSH_AES_KEY.into()),
        (
            "WECHAT_SUBSCRIBE_TEMPLATES",
            SANDBOX_SUBSCRIBE_TEMPLATES.into(),
        ),
        // Staff sign-in against the WeCom stand-in (`staff:<name>:<role>` codes).
        ("WECOM_CORP_ID", sandbox::wecom::CORP_ID.into()),
        ("WECOM_SECRET", sandbox::wecom::SECRET.into()),
        ("WECOM_API_BASE", wecom_base.clone()),
        ("RENJI_STAFF_ROLES", sandbox::wecom::ROLES.into()),
        // Pending verifications are asked again after 5 s here (a minute in Lambda).
        ("RENJI_VERIFICATION_RECHECK_SECS", "5".into()),
        // The payment stand-ins and their sandbox keys; the stand-ins' own provider public keys
        // are added below, besides any an outside test configures.
        ("WECHATPAY_MCHID", sandbox::payment_keys::MCHID.into()),
        (
            "WECHATPAY_MERCHANT_SERIAL",
            payment_keys.merchant_serial.clone(),
        ),
        ("WECHATPAY_MERCHANT_KEY", payment_keys.merchant_key.clone()),
        ("WECHATPAY_APIV3_KEY", payment_keys.apiv3_key.clone()),
        ("WECHATPAY_API_BASE", wechatpay_base.clone()),
        ("ALIPAY_APP_ID", sandbox::payment_keys::ALIPAY_APP_ID.into()),
        (
            "ALIPAY_APP_PRIVATE_KEY",
            payment_keys.alipay_app_key.clone(),
        ),
        (
            "ALIPAY_SELLER_ID",
            sandbox::payment_keys::ALIPAY_SELLER_ID.into(),
        ),
        ("ALIPAY_GATEWAY", alipay_gateway.clone()),
        ("RENJI_PUBLIC_BASE_URL", format!("http://{addr}")),
        ("RENJI_MEDIA_BASE_URL", media.media_base_url()),
    ]);
    if !im_outside {
        env.extend(im_sandbox);
    }
    // The process environment may override the local defaults (e.g. RENJI_SESSION_TTL_SECS, or
    // an outside test's payment keys).
    let outside = |name: &str| {
        options.config.get(name).cloned().or_else(|| {
            std::env::var(name).ok().filter(|_| {
                !env.contains_key(name)
                    || OVERRIDABLE.contains(&name)
                    || sandbox::payment_keys::VARIABLES.contains(&name)
            })
        })
    };
    let mut config = Config::from_lookup(|name| {
        outside(name).or_else(|| {
            // A secret given outside by its ARN: the generated value would make it set twice.
            let by_arn = (sandbox::payment_keys::SECRET_VARIABLES.contains(&name)
                || name == "WECOM_SECRET")
                && outside(&format!("{name}_ARN")).is_some_and(|v| !v.trim().is_empty());
            env.get(name).cloned().filter(|_| !by_arn)
        })
    })
    .map_err(|e| e.to_string())?;
    let (wechatpay_task, alipay_task) = spawn_payment_stand_ins(
        &mut config,
        &payment_keys,
        provider_keys,
        wechatpay_listener,
        alipay_listener,
    )?;
    let push_keys = match config.wechat.as_ref().and_then(|w| w.push.as_ref()) {
        Some(renji_shared::config::PushConfig {
            token: SecretSetting::Value(token),
            aes_key: SecretSetting::Value(aes_key),
        }) => Some(
            renji_shared::wechat::push::PushKeys::new(&token.0, &aes_key.0)
                .map_err(|e| format!("WECHAT_PUSH_TOKEN / WECHAT_PUSH_AES_KEY: {e}"))?,
        ),
        _ => None,
    };
    let (_, wechat_task) = sandbox::wechat::spawn_pushing(
        wechat_listener,
        push_keys.map(|keys| sandbox::wechat::PushTarget {
            events_url: format!("http://{addr}/v1/wechat/events"),
            keys,
        }),
    )
    .map_err(|e| e.to_string())?;
    let template = Template::load()?;
    let secrets = Secrets::from_env(config.secrets_ttl);
    let table = template
        .table_resource()
        .ok_or("template.yaml declares no table")?
        .to_owned();
    // The scheduled jobs' clock offset (`POST /sandbox/clock`), shared with the timer and with
    // every function's state (`App::now`: the routes that list by deadline read it).
    let clock = Arc::new(AtomicI64::new(0));
    let mut functions = Functions::new();
    for function in template.function_binaries().keys() {
        let policy = Policy::of(&template, function, &table)?;
        let used = Arc::new(Mutex::new(Used::default()));
        let limited = Arc::new(PolicyStore::new(
            Arc::clone(&store),
            policy,
            Arc::clone(&used),
        ));
        let mut app =
            App::with_secrets(config.clone(), limited, &secrets).map_err(|e| e.to_string())?;
        app.set_clock_offset(Arc::clone(&clock));
        // As in Lambda, only the functions given the export bucket have it.
        if EXPORT_FUNCTIONS.contains(&function.as_str()) {
            let archive: renji_shared::archive::DynArchive = archive.clone();
            app.archive = Some(archive);
        }
        // As in Lambda, only the functions given the media bucket have it.
        if template
            .function_env(function)
            .iter()
            .any(|(name, _)| name == "RENJI_MEDIA_BUCKET")
        {
            let media: renji_shared::media_bucket::DynMediaBucket = media.clone();
            app.media_bucket = Some(media);
        }
        functions.insert(function.clone(), (Arc::new(app), used));
    }
    let functions = Arc::new(functions);
    let mut app = App::with_secrets(config, store, &secrets).map_err(|e| e.to_string())?;
    app.set_clock_offset(Arc::clone(&clock));
    app.archive = Some(archive.clone());
    app.media_bucket = Some(media.clone());
    let upload_limit = usize::try_from(
        app.config
            .media
            .video_max_bytes
            .max(app.config.media.image_max_bytes),
    )
    .unwrap_or(usize::MAX)
    .saturating_add(1024 * 1024);
    let app = Arc::new(app);
    let jobs_secs = match options
        .config
        .get("RENJI_LOCAL_JOBS_SECS")
        .cloned()
        .or_else(|| std::env::var("RENJI_LOCAL_JOBS_SECS").ok())
    {
        None => DEFAULT_JOBS_SECS,
        Some(v) => v
            .parse()
            .map_err(|_| "RENJI_LOCAL_JOBS_SECS is not a whole number".to_owned())?,
    };

    let routes = Arc::new(template.routes());
    let api_functions = Arc::clone(&functions);
    let api_archive = Arc::clone(&archive);
    let dist = Arc::new(crate::static_files::dist_dir());
    let api_media = Arc::clone(&media);
    let api_clock = Arc::clone(&clock);
    let api_task = http_server::spawn(
        listener,
        Arc::new(move |req| {
            let functions = Arc::clone(&api_functions);
            let routes = Arc::clone(&routes);
            let archive = Arc::clone(&api_archive);
            let dist = Arc::clone(&dist);
            let media = Arc::clone(&api_media);
            let clock = Arc::clone(&api_clock);
            Box::pin(async move {
                if req.uri().path().starts_with(crate::exports::ROUTE) {
                    return serve_export(&archive, &req);
                }
                if crate::static_files::is_static(req.uri().path()) {
                    return crate::static_files::serve(&dist, &req);
                }
                if req.uri().path() == crate::media::UPLOAD_ROUTE {
                    return receive_upload(&media, req, upload_limit).await;
                }
                if req.uri().path() == CLOCK_ROUTE {
                    return move_clock(&clock, req).await;
                }
                if req.uri().path() == RUN_JOBS_ROUTE {
                    return run_jobs_now(&functions, &clock, req).await;
                }
                if req
                    .uri()
                    .path()
                    .starts_with(&format!("{}/", crate::media::SERVE_ROUTE))
                {
                    return serve_media(&media, &req);
                }
                serve(&functions, &routes, req).await
            })
        }),
    );
    let mut tasks = vec![
        wechat_task,
        wecom_task,
        verifier_task,
        im_task,
        wechatpay_task,
        alipay_task,
        api_task,
    ];
    if jobs_secs > 0 {
        tasks.push(spawn_jobs(
            Arc::clone(&functions),
            std::time::Duration::from_secs(jobs_secs),
            Arc::clone(&clock),
        ));
    }
    Ok(Running {
        addr,
        wechat_base,
        wechatpay_base,
        alipay_gateway,
        alipay_base,
        verifier_url,
        im_base,
        wecom_base,
        app,
        functions,
        tasks,
    })
}

/// Starts the WeChat Pay and Alipay stand-ins for the merchant as `config` has it (the generated
/// sandbox keys, or an outside test's), and makes the functions trust the stand-ins' own provider
/// keys besides any configured: in production only the configured ones exist.
fn spawn_payment_stand_ins(
    config: &mut Config,
    keys: &sandbox::payment_keys::PaymentKeys,
    provider: sandbox::payment_keys::Parsed,
    wechatpay_listener: TcpListener,
    alipay_listener: TcpListener,
) -> Result<(JoinHandle<()>, JoinHandle<()>), String> {
    use renji_shared::config::SecretSetting;
    use sandbox::payment_keys::private_key_pem;
    let public_of = |setting: Option<&SecretSetting>, name: &str| match setting {
        Some(SecretSetting::Value(pem)) => match private_key_pem(&pem.0) {
            Ok(key) => Some(rsa::RsaPublicKey::from(&key)),
            Err(e) => {
                tracing::warn!(name, error = %e, "the payment stand-in cannot check signatures");
                None
            }
        },
        _ => {
            tracing::warn!(
                name,
                "not a value here: the payment stand-in refuses every request"
            );
            None
        }
    };
    let merchant = match &mut config.wechat_pay {
        Some(pay) => {
            let id = keys.wechatpay_key_id.clone();
            // First: the key the stand-in holds is the one a receiver's name is encrypted with
            // (the preferred one), also when a test configures keys of its own beside it.
            if !pay.public_keys.iter().any(|(known, _)| *known == id) {
                pay.public_keys
                    .insert(0, (id, keys.wechatpay_public_pem()?));
            }
            sandbox::wechatpay::Merchant {
                mchid: pay.mchid.clone(),
                appid: pay.appid.clone(),
                serial: pay.merchant_serial.clone().unwrap_or_default(),
                public_key: public_of(pay.merchant_key.as_ref(), "WECHATPAY_MERCHANT_KEY"),
                apiv3_key: match &pay.apiv3_key {
                    Some(SecretSetting::Value(key)) => Some(key.0.clone()),
                    _ => None,
                },
            }
        }
        // WeChat Pay is off (WECHATPAY_MCHID set empty outside): the stand-in serves nobody.
        None => sandbox::wechatpay::Merchant {
            mchid: String::new(),
            appid: String::new(),
            serial: String::new(),
            public_key: None,
            apiv3_key: None,
        },
    };
    let app = match &mut config.alipay {
        Some(alipay) => {
            let pem = keys.alipay_public_pem()?;
            if !alipay.public_keys.contains(&pem) {
                alipay.public_keys.push(pem);
            }
            sandbox::alipay::App {
                app_id: alipay.app_id.clone(),
                seller_id: alipay
                    .seller_id
                    .clone()
                    .unwrap_or_else(|| sandbox::payment_keys::ALIPAY_SELLER_ID.into()),
                public_key: public_of(alipay.app_private_key.as_ref(), "ALIPAY_APP_PRIVATE_KEY"),
            }
        }
        None => sandbox::alipay::App {
            app_id: String::new(),
            seller_id: String::new(),
            public_key: None,
        },
    };
    let (_, wechatpay_task) = sandbox::wechatpay::spawn(
        wechatpay_listener,
        merchant,
        sandbox::wechatpay::ProviderKey {
            id: keys.wechatpay_key_id.clone(),
            key: provider.wechatpay,
        },
    )
    .map_err(|e| e.to_string())?;
    let (_, alipay_task) =
        sandbox::alipay::spawn(alipay_listener, app, provider.alipay).map_err(|e| e.to_string())?;
    Ok((wechatpay_task, alipay_task))
}

/// Runs every scheduled function every `every`, as their schedules would in Lambda, each with its
/// own state (its IAM statements enforced).
fn spawn_jobs(
    functions: Arc<Functions>,
    every: std::time::Duration,
    clock: Arc<AtomicI64>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            run_jobs(&functions, &clock).await;
        }
    })
}

/// Every scheduled function once, at the moved clock; what each answered.
async fn run_jobs(functions: &Functions, clock: &AtomicI64) -> serde_json::Value {
    let now = clock_now(clock);
    let mut ran = serde_json::Map::new();
    for job in functions::JOBS {
        let Some((app, _)) = functions.get(*job) else {
            tracing::warn!(job, "scheduled job has no function state");
            continue;
        };
        let answer = match functions::run_job_at(job, app, now).await {
            Some(Ok(value)) => value,
            Some(Err(e)) => {
                tracing::warn!(job, error = %e, "scheduled job failed");
                json!({"error": e.to_string()})
            }
            None => continue,
        };
        ran.insert((*job).to_owned(), answer);
    }
    serde_json::Value::Object(ran)
}

/// `/sandbox/clock`: the scheduled jobs' clock (local only).
const CLOCK_ROUTE: &str = "/sandbox/clock";
/// `/sandbox/jobs/run`: runs the scheduled jobs once, now (local only).
const RUN_JOBS_ROUTE: &str = "/sandbox/jobs/run";

/// The real time moved by the offset.
fn clock_now(clock: &AtomicI64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::seconds(clock.load(Ordering::SeqCst))
}

fn clock_view(clock: &AtomicI64) -> HttpResponse {
    let now = clock_now(clock);
    http_server::json(
        200,
        &json!({
            "offset_secs": clock.load(Ordering::SeqCst),
            "now": renji_shared::domain::orders::rfc3339(now),
        }),
    )
}

/// `GET /sandbox/clock`: the jobs' clock; `POST /sandbox/clock {"advance_secs": N}` moves it
/// forward (so a walkthrough does not wait out the dispute window), `{"reset": true}` back to
/// the real time. Requests keep the real time, but for staff's settlement lists (`App::now`:
/// an order nearing its split deadline shows in `?state=alarm`); the order and notification jobs
/// (the timer's and `POST /sandbox/jobs/run`'s) run at it. The providers' stand-ins keep the
/// real time.
async fn move_clock(clock: &AtomicI64, req: HttpRequest) -> HttpResponse {
    if req.method() == hyper::Method::GET {
        return clock_view(clock);
    }
    if req.method() != hyper::Method::POST {
        return error(405, "method_not_allowed", "GET or POST");
    }
    let body = match Limited::new(req.into_body(), 4096).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error(413, "payload_too_large", "at most 4 KiB"),
    };
    // Not JSON (or not UTF-8) is named as the API's routes name it.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return error(400, "malformed_json", "the body is not valid JSON");
    };
    let serde_json::Value::Object(map) = value else {
        return error(
            400,
            "bad_request",
            "expected {\"advance_secs\": N} or {\"reset\": true}",
        );
    };
    match (
        map.get("advance_secs").and_then(serde_json::Value::as_i64),
        map.get("reset"),
    ) {
        (Some(secs), None) if secs >= 0 && map.len() == 1 => {
            clock.fetch_add(secs, Ordering::SeqCst);
        }
        (None, Some(serde_json::Value::Bool(true))) if map.len() == 1 => {
            clock.store(0, Ordering::SeqCst);
        }
        _ => {
            return error(
                400,
                "bad_request",
                "expected {\"advance_secs\": N} (N ≥ 0) or {\"reset\": true}",
            )
        }
    }
    clock_view(clock)
}

/// `POST /sandbox/jobs/run`: every scheduled function once, at the jobs' clock; their reports.
async fn run_jobs_now(functions: &Functions, clock: &AtomicI64, req: HttpRequest) -> HttpResponse {
    if req.method() != hyper::Method::POST {
        return error(405, "method_not_allowed", "only POST");
    }
    let ran = run_jobs(functions, clock).await;
    http_server::json(
        200,
        &json!({"now": renji_shared::domain::orders::rfc3339(clock_now(clock)), "ran": ran}),
    )
}

/// The functions given the export bucket in `template.yaml` (`RENJI_EXPORT_BUCKET`; deletion-jobs
/// deletes a member's copy).
const EXPORT_FUNCTIONS: &[&str] = &[
    "ExportsFunction",
    "ExportJobsFunction",
    "DeletionJobsFunction",
];

/// `GET /local/exports/…?expires=&sig=`: a document, for a link the export function made.
fn serve_export(archive: &crate::exports::FileArchive, req: &HttpRequest) -> HttpResponse {
    if req.method() != hyper::Method::GET {
        return error(405, "method_not_allowed", "only GET");
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match archive.open(req.uri().path(), req.uri().query(), now) {
        Ok(bytes) => hyper::Response::builder()
            .status(200)
            .header("content-type", "application/json; charset=utf-8")
            .header("cache-control", "no-store")
            .body(Full::new(Bytes::from(bytes)))
            .unwrap_or_else(|_| error(500, "internal_error", "response")),
        Err(403) => error(403, "forbidden", "the link is not valid, or has expired"),
        Err(_) => error(404, "not_found", "no such export"),
    }
}

/// `POST /local/media-upload`: an upload form, checked as S3 checks its POST policy (204, or
/// S3's XML error).
async fn receive_upload(
    media: &crate::media::FileMediaBucket,
    req: HttpRequest,
    limit: usize,
) -> HttpResponse {
    let xml = |status: u16, body: String| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/xml")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| error(500, "internal_error", "response"))
    };
    if req.method() != hyper::Method::POST {
        return error(405, "method_not_allowed", "only POST");
    }
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let refusal = crate::media::Refusal {
                status: 400,
                code: "EntityTooLarge",
                message: "Your proposed upload exceeds the maximum allowed size".into(),
            };
            return xml(400, refusal.xml());
        }
    };
    let now = time::OffsetDateTime::now_utc();
    match media.receive(content_type.as_deref(), &body, now) {
        Ok(()) => hyper::Response::builder()
            .status(204)
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| error(500, "internal_error", "response")),
        Err(refusal) => xml(refusal.status, refusal.xml()),
    }
}

/// `GET /local/media/<key>`: a public object, or one that is not through a signed link.
fn serve_media(media: &crate::media::FileMediaBucket, req: &HttpRequest) -> HttpResponse {
    if req.method() != hyper::Method::GET {
        return error(405, "method_not_allowed", "only GET");
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match media.open(req.uri().path(), req.uri().query(), now) {
        Ok((bytes, content_type)) => hyper::Response::builder()
            .status(200)
            .header("content-type", content_type)
            .header(
                "cache-control",
                format!(
                    "max-age={}",
                    renji_shared::media_bucket::CDN_MAX_TTL_SECS
                ),
            )
            .body(Full::new(Bytes::from(bytes)))
            .unwrap_or_else(|_| error(500, "internal_error", "response")),
        Err(403) => hyper::Response::builder()
            .status(403)
            .header("content-type", "application/xml")
            .body(Full::new(Bytes::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
            )))
            .unwrap_or_else(|_| error(500, "internal_error", "response")),
        Err(_) => error(404, "not_found", "no such object"),
    }
}

fn error(status: u16, code: &str, message: &str) -> HttpResponse {
    http_server::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// One request: match the route, build the Lambda request, run the function, answer.
async fn serve(functions: &Functions, routes: &[Route], req: HttpRequest) -> HttpResponse {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let (route, params) = match router::find(routes, &method, &path) {
        Match::Found(route, params) => (route.clone(), params),
        Match::WrongMethod(allowed) => {
            let allow = allowed.join(", ");
            let mut response = error(
                405,
                "method_not_allowed",
                &format!("method not allowed on this path; allowed: {allow}"),
            );
            // RFC 9110 §15.5.6: a 405 lists the methods the path does support.
            if let Ok(value) = hyper::header::HeaderValue::from_str(&allow) {
                response.headers_mut().insert(hyper::header::ALLOW, value);
            }
            return response;
        }
        Match::NotFound => return error(404, "not_found", "no such route"),
    };
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error(413, "payload_too_large", "request body is too large"),
    };
    let query: HashMap<String, Vec<String>> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .fold(HashMap::new(), |mut map, (k, v)| {
                map.entry(k).or_default().push(v);
                map
            });
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route.key());
    context.request_id = Some(ulid::Ulid::new().to_string());
    context.stage = Some("$default".into());
    let mut http_description = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_description.method = parts.method.clone();
    http_description.path = Some(path);
    // API Gateway's `sourceIp`: the peer of the connection (rate limits count by it).
    http_description.source_ip = Some(
        parts
            .extensions
            .get::<http_server::Peer>()
            .map_or_else(|| "127.0.0.1".to_owned(), |peer| peer.0.ip().to_string()),
    );
    context.http = http_description;

    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(_) => Body::Binary(body.to_vec()),
    };
    let mut lambda_req = lambda_http::http::Request::new(body);
    *lambda_req.method_mut() = parts.method;
    *lambda_req.uri_mut() = parts.uri;
    *lambda_req.headers_mut() = parts.headers;
    let lambda_req = lambda_req
        .with_path_parameters(params)
        .with_query_string_parameters(query)
        .with_request_context(RequestContext::ApiGatewayV2(context));

    let Some((app, _)) = functions.get(&route.function) else {
        return error(500, "internal_error", "route has no function");
    };
    let Some(response) = functions::invoke(&route.function, app, lambda_req).await else {
        return error(500, "internal_error", "route has no function");
    };
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        #[allow(unreachable_patterns)]
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}
