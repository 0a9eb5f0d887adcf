//! The state a function builds once per process and hands to every request.

use std::sync::Arc;

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
use aws_types::endpoint_config::AccountIdEndpointMode;
use lambda_http::Request;

use crate::config::Config;
use crate::error::Error;
use crate::im::UserSigner;
use crate::pii::KeyRing;
use crate::secrets::{Cached, Secrets};
use crate::session::{self, Claims, TokenSigner};
use crate::store::dynamo::DynamoStore;
use crate::store::schema::TABLE;
use crate::store::DynStore;
use crate::verifier::{HttpVerifier, Verifier};
use crate::wechat::WechatClient;

/// The message push's two secrets, read on first need.
struct PushSecrets {
    token: Cached<crate::config::Redacted>,
    aes_key: Cached<crate::config::Redacted>,
}

pub struct App {
    pub config: Config,
    pub store: DynStore,
    /// The session keys (`tokens()`); absent in functions that serve no member.
    tokens: Option<Cached<TokenSigner>>,
    /// Present in the functions configured with WeChat credentials.
    pub wechat: Option<WechatClient>,
    /// WeChat's server APIs (content security, subscribe messages), present with the WeChat
    /// configuration (`wechat_api()`).
    wechat_api: Option<Arc<dyn crate::wechat::api::WechatApi>>,
    /// The message push's Token and EncodingAESKey (`push_keys()`), with `WECHAT_PUSH_TOKEN`.
    push: Option<PushSecrets>,
    /// Present in the functions configured with a verifier (real-name verification).
    pub verifier: Option<Arc<dyn Verifier>>,
    /// Present in the functions configured with PII keys (`pii()`).
    pii: Option<Cached<KeyRing>>,
    /// The WeCom directory staff sign in with; present when `WECOM_CORP_ID` is set.
    pub wecom: Option<Arc<dyn crate::wecom::Directory>>,
    /// The payment providers' gateways and notification verifiers this function is configured
    /// with.
    pub payments: crate::payments::Payments,
    /// Present in the function configured with Tencent IM (`im()`).
    im: Option<Arc<Cached<UserSigner>>>,
    /// IM's account REST API (`im_accounts()`), present with the IM application: the function
    /// that deletes accounts is given the IM secret for it.
    im_accounts: Option<Arc<dyn crate::im::ImAccounts>>,
    /// Where data exports are kept (`archive()`): S3 in the functions given
    /// `RENJI_EXPORT_BUCKET`; the local server sets its file stand-in.
    pub archive: Option<crate::archive::DynArchive>,
    /// The bucket of members' uploads (`media_bucket()`): S3 in the functions given
    /// `RENJI_MEDIA_BUCKET`; the local server sets its file stand-in.
    pub media_bucket: Option<crate::media_bucket::DynMediaBucket>,
    /// The clock's offset from the real time in seconds ([`App::now`]): none in Lambda; the local
    /// server shares its moved clock (`POST /sandbox/clock`) with every function's state, so the
    /// routes that read time-based lists see what its scheduled jobs see.
    clock_offset: Option<Arc<std::sync::atomic::AtomicI64>>,
}

impl App {
    /// The state over `store`; secrets stored in Secrets Manager are read through the
    /// environment's AWS configuration, on first need.
    pub fn new(config: Config, store: DynStore) -> Result<Self, Error> {
        let secrets = Secrets::from_env(config.secrets_ttl);
        App::with_secrets(config, store, &secrets)
    }

    /// The state over `store`, reading stored secrets from `secrets`. Values given directly are
    /// parsed now (a bad one is a start-up error); stored ones are read on first need only.
    pub fn with_secrets(config: Config, store: DynStore, secrets: &Secrets) -> Result<Self, Error> {
        let pii = match &config.pii {
            None => None,
            Some(pii) => {
                let active = pii.active_key.clone();
                let claim_kid = config.id_claim_key.clone();
                Some(secrets.cached("RENJI_PII_KEYS", &pii.keys, move |keys| {
                    let ring = KeyRing::new(keys, active.as_deref())?;
                    match &claim_kid {
                        Some(kid) if !ring.has(kid) => {
                            Err(format!("RENJI_ID_CLAIM_KEY {kid} is not one of its keys"))
                        }
                        _ => Ok(ring),
                    }
                })?)
            }
        };
        let im = match &config.im {
            Some(im) => {
                let app_id = im.sdk_app_id;
                Some(Arc::new(secrets.cached(
                    "TENCENT_IM_SECRET",
                    &im.secret,
                    move |secret| UserSigner::new(app_id, secret),
                )?))
            }
            None => None,
        };
        // One AppSecret for login and the server APIs (one read of it per process).
        let (wechat, wechat_api) = match &config.wechat {
            Some(c) => {
                let secret = Arc::new(crate::wechat::secret(&c.secret, secrets)?);
                let api: Arc<dyn crate::wechat::api::WechatApi> =
                    Arc::new(crate::wechat::api::HttpWechatApi::new(
                        c,
                        secret.clone(),
                        store.clone(),
                        &c.miniprogram_state,
                    ));
                (
                    Some(WechatClient::with_secret(c.clone(), secret)),
                    Some(api),
                )
            }
            None => (None, None),
        };
        Ok(App {
            tokens: match &config.session_secret {
                Some(setting) => {
                    Some(secrets.cached("RENJI_SESSION_SECRET", setting, TokenSigner::new)?)
                }
                None => None,
            },
            wechat,
            wechat_api,
            push: match config.wechat.as_ref().and_then(|c| c.push.as_ref()) {
                Some(push) => Some(PushSecrets {
                    token: secrets.cached("WECHAT_PUSH_TOKEN", &push.token, |v| {
                        Ok(crate::config::Redacted(v.to_owned()))
                    })?,
                    aes_key: secrets.cached("WECHAT_PUSH_AES_KEY", &push.aes_key, |v| {
                        Ok(crate::config::Redacted(v.to_owned()))
                    })?,
                }),
                None => None,
            },
            verifier: match config.verifier.clone() {
                Some(c) => Some(Arc::new(HttpVerifier::new(c, secrets)?)),
                None => None,
            },
            pii,
            wecom: match &config.staff {
                Some(staff) => Some(Arc::new(crate::wecom::HttpDirectory::new(
                    staff.wecom.clone(),
                    secrets,
                )?)),
                None => None,
            },
            payments: crate::payments::Payments::from_config(&config, secrets)?,
            im: im.clone(),
            im_accounts: match (&config.im, im) {
                (Some(c), Some(signer)) => Some(Arc::new(crate::im::HttpImAccounts::new(
                    signer,
                    &c.admin,
                    &c.api_base,
                ))),
                _ => None,
            },
            archive: match &config.exports.bucket {
                Some(bucket) => Some(Arc::new(crate::archive::S3Archive::from_env(bucket)?)),
                None => None,
            },
            media_bucket: match &config.media.bucket {
                Some(bucket) => Some(Arc::new(crate::media_bucket::S3MediaBucket::from_env(
                    bucket,
                )?)),
                None => None,
            },
            store,
            config,
            clock_offset: None,
        })
    }

    /// The time as this function's clock has it: the real time, moved by the local server's
    /// `POST /sandbox/clock` there.
    pub fn now(&self) -> time::OffsetDateTime {
        let offset = self
            .clock_offset
            .as_ref()
            .map_or(0, |o| o.load(std::sync::atomic::Ordering::SeqCst));
        time::OffsetDateTime::now_utc() + time::Duration::seconds(offset)
    }

    /// Shares `offset` (seconds from the real time) as this function's clock (the local server).
    pub fn set_clock_offset(&mut self, offset: Arc<std::sync::atomic::AtomicI64>) {
        self.clock_offset = Some(offset);
    }

    /// A deployed function's state: configuration from the environment, DynamoDB as the store.
    pub async fn from_env() -> Result<Self, Error> {
        let config = Config::from_env()?;
        let client = dynamodb_client_for(&config).await?;
        let store = Arc::new(DynamoStore::new(client, config.table_name.clone(), TABLE));
        App::new(config, store)
    }

    /// The session keys: signs and checks tokens. Stored keys are read on first need, so a
    /// secret that cannot be read is a 503 for this request, not a failed start.
    pub async fn tokens(&self) -> Result<Arc<TokenSigner>, Error> {
        let tokens = self.tokens.as_ref().ok_or_else(|| {
            Error::Config(
                "RENJI_SESSION_SECRET_ARN (or RENJI_SESSION_SECRET) is not set for this function"
                    .into(),
            )
        })?;
        Ok(tokens.get().await?)
    }

    /// The PII keys; a 500 in a function not configured with them.
    pub async fn pii(&self) -> Result<Arc<KeyRing>, Error> {
        let pii = self.pii.as_ref().ok_or_else(|| {
            Error::Config(
                "RENJI_PII_KEYS_ARN (or RENJI_PII_KEYS) is not set for this function".into(),
            )
        })?;
        Ok(pii.get().await?)
    }

    /// The Tencent IM UserSig signer; a 500 in a function not configured with IM.
    pub async fn im(&self) -> Result<Arc<UserSigner>, Error> {
        let im = self.im.as_ref().ok_or_else(|| {
            Error::Config(
                "TENCENT_IM_SDKAPPID and TENCENT_IM_SECRET_ARN (or TENCENT_IM_SECRET) are not set \
                 for this function"
                    .into(),
            )
        })?;
        Ok(im.get().await?)
    }

    /// WeChat's server APIs; a 500 in a function not configured with WeChat.
    pub fn wechat_api(&self) -> Result<&dyn crate::wechat::api::WechatApi, Error> {
        self.wechat_api.as_deref().ok_or_else(|| {
            Error::Config(
                "WECHAT_APPID and WECHAT_SECRET_ARN (or WECHAT_SECRET) are not set for this function"
                    .into(),
            )
        })
    }

    /// The message push's keys; a 500 in a function not configured with them, a 503 when a
    /// stored one cannot be read.
    pub async fn push_keys(&self) -> Result<crate::wechat::push::PushKeys, Error> {
        let push = self.push.as_ref().ok_or_else(|| {
            Error::Config(
                "WECHAT_PUSH_TOKEN and WECHAT_PUSH_AES_KEY (or their _ARN) are not set for this \
                 function"
                    .into(),
            )
        })?;
        let token = push.token.get().await?;
        let aes_key = push.aes_key.get().await?;
        crate::wechat::push::PushKeys::new(&token.0, &aes_key.0)
            .map_err(|e| Error::Config(format!("WECHAT_PUSH_TOKEN / WECHAT_PUSH_AES_KEY: {e}")))
    }

    /// Replaces WeChat's server APIs (tests: a fake that records or fails).
    pub fn set_wechat_api(&mut self, api: Arc<dyn crate::wechat::api::WechatApi>) {
        self.wechat_api = Some(api);
    }

    /// IM's account REST API; a 500 in a function not configured with IM.
    pub fn im_accounts(&self) -> Result<&dyn crate::im::ImAccounts, Error> {
        self.im_accounts.as_deref().ok_or_else(|| {
            Error::Config(
                "TENCENT_IM_SDKAPPID and TENCENT_IM_SECRET_ARN (or TENCENT_IM_SECRET) are not set \
                 for this function"
                    .into(),
            )
        })
    }

    /// Replaces the IM account API (tests: a fake that records or fails).
    pub fn with_im_accounts(mut self, accounts: Arc<dyn crate::im::ImAccounts>) -> Self {
        self.im_accounts = Some(accounts);
        self
    }

    /// The export archive; a 500 in a function not configured with one.
    pub fn archive(&self) -> Result<&crate::archive::DynArchive, Error> {
        self.archive
            .as_ref()
            .ok_or_else(|| Error::Config("RENJI_EXPORT_BUCKET is not set for this function".into()))
    }

    /// The media bucket; a 500 in a function not configured with one.
    pub fn media_bucket(&self) -> Result<&crate::media_bucket::DynMediaBucket, Error> {
        self.media_bucket
            .as_ref()
            .ok_or_else(|| Error::Config("RENJI_MEDIA_BUCKET is not set for this function".into()))
    }

    /// The caller's session, or 401.
    pub async fn authenticate(&self, req: &Request) -> Result<Claims, Error> {
        session::authenticate(&self.store, &*self.tokens().await?, req).await
    }

    /// The caller's session and one more item of theirs, read together (one request).
    pub async fn authenticate_with(
        &self,
        req: &Request,
        key: impl FnOnce(&Claims) -> crate::store::Key,
    ) -> Result<(Claims, Option<crate::store::Item>), Error> {
        session::authenticate_with(&self.store, &*self.tokens().await?, req, key).await
    }

    /// For routes anyone may call: the caller when a token is sent (a bad one is still 401).
    pub async fn viewer(&self, req: &Request) -> Result<Option<Claims>, Error> {
        match req
            .headers()
            .contains_key(lambda_http::http::header::AUTHORIZATION)
        {
            true => self.authenticate(req).await.map(Some),
            false => Ok(None),
        }
    }
}

/// The roots AWS service endpoints of the global partition chain to (Amazon Trust Services),
/// compiled in.
const AWS_ROOTS_PEM: &str = include_str!("aws_roots.pem");

/// The roots the DynamoDB client trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The compiled-in Amazon Trust Services roots: the global regions. Loading the system's
    /// whole store instead took about 3.5 ms of every cold start (README, "Benchmarks").
    Amazon,
    /// The system's store: the China regions, whose endpoints need not chain to the Amazon
    /// roots, and local endpoints (DynamoDB Local).
    System,
    /// The certificates of a PEM file (`RENJI_TLS_ROOTS`), checked when read.
    Pem(Vec<u8>),
}

impl Roots {
    /// `RENJI_TLS_ROOTS` when set; else the system's for a local endpoint or a `cn-` region; else
    /// Amazon's.
    pub fn choose(
        tls_roots: Option<&str>,
        endpoint: Option<&str>,
        region: Option<&str>,
    ) -> Result<Roots, Error> {
        if let Some(path) = tls_roots {
            return Roots::from_pem_file(path);
        }
        let china = region.is_some_and(|r| r.starts_with("cn-"));
        Ok(match endpoint.is_some() || china {
            true => Roots::System,
            false => Roots::Amazon,
        })
    }

    /// A PEM file of one or more certificates, each one a usable trust anchor. Checked here:
    /// the HTTP client would panic on a certificate it cannot parse.
    pub fn from_pem_file(path: &str) -> Result<Roots, Error> {
        use rustls_pki_types::pem::PemObject as _;
        let bad = |why: String| Error::Config(format!("RENJI_TLS_ROOTS {path}: {why}"));
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not PEM certificates ({e})")))?;
        if certs.is_empty() {
            return Err(bad("holds no certificate".into()));
        }
        let mut store = rustls::RootCertStore::empty();
        for cert in certs {
            store
                .add(cert)
                .map_err(|e| bad(format!("a certificate is not a usable root ({e})")))?;
        }
        Ok(Roots::Pem(pem))
    }
}

/// An HTTPS client on the ring-based rustls stack, trusting `roots`.
pub(crate) fn https_client(roots: &Roots) -> SharedHttpClient {
    let builder =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring));
    let pem = match roots {
        Roots::System => return builder.build_https(),
        Roots::Amazon => AWS_ROOTS_PEM.as_bytes().to_vec(),
        Roots::Pem(pem) => pem.clone(),
    };
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem);
    builder
        .tls_context(
            TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .unwrap_or_default(),
        )
        .build_https()
}

/// A DynamoDB client on the ring-based rustls stack. With an `endpoint` (DynamoDB Local) it uses
/// fixed local credentials and the system's roots; otherwise the Lambda environment's
/// credentials and region, and only AWS's roots.
pub async fn dynamodb_client(endpoint: Option<&str>) -> aws_sdk_dynamodb::Client {
    let roots = match endpoint {
        Some(_) => Roots::System,
        None => Roots::Amazon,
    };
    dynamodb_client_with(endpoint, &roots).await
}

/// A deployed function's DynamoDB client: `RENJI_DYNAMODB_ENDPOINT`, `RENJI_TLS_ROOTS` and the
/// region choose its endpoint and roots.
pub async fn dynamodb_client_for(config: &Config) -> Result<aws_sdk_dynamodb::Client, Error> {
    let region = std::env::var("AWS_REGION").ok();
    let roots = Roots::choose(
        config.tls_roots.as_deref(),
        config.dynamodb_endpoint.as_deref(),
        region.as_deref(),
    )?;
    Ok(dynamodb_client_with(config.dynamodb_endpoint.as_deref(), &roots).await)
}

/// Account-based endpoints (`<account>.ddb.<region>.amazonaws.com`) stay off: they exist in the
/// global partition only, and the regional endpoint is the one the roots and IAM are set for.
const ACCOUNT_ID_ENDPOINTS: AccountIdEndpointMode = AccountIdEndpointMode::Disabled;

async fn dynamodb_client_with(endpoint: Option<&str>, roots: &Roots) -> aws_sdk_dynamodb::Client {
    let http = https_client(roots);
    match endpoint {
        Some(endpoint) => {
            let config = aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("local", "local", None, None, "local"))
                .endpoint_url(endpoint)
                .account_id_endpoint_mode(ACCOUNT_ID_ENDPOINTS)
                .http_client(http)
                .build();
            aws_sdk_dynamodb::Client::from_conf(config)
        }
        None => aws_sdk_dynamodb::Client::new(&aws_loader(http).load().await),
    }
}

/// The SDK configuration of a deployed function.
fn aws_loader(http: SharedHttpClient) -> aws_config::ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .account_id_endpoint_mode(ACCOUNT_ID_ENDPOINTS);
    // Lambda gives every function its region and credentials in the environment, which is where
    // the default chains look first; using them directly skips building those chains (profile
    // files, SSO, web identity, containers, IMDS): 0.2 ms of each cold start. Elsewhere the
    // default chains still apply.
    if let Ok(region) = std::env::var("AWS_REGION") {
        loader = loader.region(Region::new(region));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    loader
}

/// A Lambda function's `main`: JSON logs, state built once, then the lambda_http loop.
pub async fn run_lambda<F, Fut>(handle: F) -> Result<(), lambda_http::Error>
where
    F: Fn(&'static App, Request) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    crate::logging::init();
    // Built once per execution environment and shared by every invocation.
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    lambda_http::run(lambda_http::service_fn(move |req| async move {
        Ok::<_, std::convert::Infallible>(handle(app, req).await)
    }))
    .await
}

/// A scheduled job's `main`: JSON logs, state built once, then the Lambda runtime loop; each
/// invocation (the schedule's event, ignored) runs `job`, whose report is the function's result.
pub async fn run_job<F, Fut>(job: F) -> Result<(), lambda_http::Error>
where
    F: Fn(&'static App) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = Result<serde_json::Value, Error>> + Send,
{
    use lambda_http::lambda_runtime::{self, LambdaEvent};
    crate::logging::init();
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            job(app).await.map_err(|e| {
                tracing::error!(error = %e, "job failed");
                lambda_http::Error::from(e.to_string())
            })
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_compiled_in_aws_roots_load() {
        assert_eq!(AWS_ROOTS_PEM.matches("BEGIN CERTIFICATE").count(), 5);
        // Building a client loads its trust store; a certificate that does not parse panics.
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .http_client(https_client(&Roots::Amazon))
            .build();
        let _ = aws_sdk_dynamodb::Client::from_conf(config);
    }

    #[test]
    fn roots_follow_the_region_unless_a_file_is_given() {
        let choose = |roots, endpoint, region| Roots::choose(roots, endpoint, region).unwrap();
        assert_eq!(choose(None, None, Some("us-east-1")), Roots::Amazon);
        assert_eq!(choose(None, None, Some("cn-north-1")), Roots::System);
        assert_eq!(choose(None, None, Some("cn-northwest-1")), Roots::System);
        assert_eq!(
            choose(None, Some("http://127.0.0.1:8000"), Some("us-east-1")),
            Roots::System
        );
        let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/src/aws_roots.pem");
        assert!(matches!(
            choose(Some(pem), None, Some("cn-north-1")),
            Roots::Pem(_)
        ));
        // A missing, empty or broken file is a configuration error, not a panic in the client.
        let dir = tempfile::TempDir::new().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for path in [dir.path().join("missing.pem"), empty, broken] {
            let e = Roots::choose(path.to_str(), None, None).unwrap_err();
            assert!(
                matches!(&e, Error::Config(m) if m.contains("RENJI_TLS_ROOTS")),
                "{e}"
            );
        }
    }

    #[tokio::test]
    async fn a_client_trusting_a_pem_file_builds() {
        let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/src/aws_roots.pem");
        let roots = Roots::from_pem_file(pem).unwrap();
        let _ = dynamodb_client_with(Some("https://127.0.0.1:1"), &roots).await;
    }

    /// Records the URL of the first request and stops it there.
    #[derive(Debug, Default, Clone)]
    struct FirstUrl(std::sync::Arc<std::sync::Mutex<Option<String>>>);

    impl aws_sdk_dynamodb::config::Intercept for FirstUrl {
        fn name(&self) -> &'static str {
            "FirstUrl"
        }

        fn read_before_transmit(
            &self,
            context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<
                '_,
            >,
            _: &aws_sdk_dynamodb::config::RuntimeComponents,
            _: &mut aws_sdk_dynamodb::config::ConfigBag,
        ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
            *self.0.lock().unwrap() = Some(context.request().uri().to_owned());
            Err("stopped before sending".into())
        }
    }

    /// The host a GetItem goes to, with credentials that name an account.
    async fn dynamodb_host(loader: aws_config::ConfigLoader) -> String {
        let credentials = Credentials::builder()
            .access_key_id("AKID")
            .secret_access_key("secret")
            .account_id("123456789012")
            .provider_name("test")
            .build();
        let sdk = loader
            .region(Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await;
        let seen = FirstUrl::default();
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(seen.clone())
            .build();
        let _ = aws_sdk_dynamodb::Client::from_conf(config)
            .get_item()
            .table_name("renji")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("a".into()))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("b".into()))
            .send()
            .await;
        let url = seen.0.lock().unwrap().clone().expect("a request was made");
        url::Url::parse(&url)
            .unwrap()
            .host_str()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn account_id_endpoints_stay_off() {
        let http = || https_client(&Roots::Amazon);
        assert_eq!(
            dynamodb_host(aws_loader(http())).await,
            "dynamodb.us-east-1.amazonaws.com"
        );
        // The SDK's default would use the account's endpoint: the setting is what keeps it off.
        let default = aws_config::defaults(BehaviorVersion::latest()).http_client(http());
        assert_eq!(
            dynamodb_host(default).await,
            "123456789012.ddb.us-east-1.amazonaws.com"
        );
    }
}
