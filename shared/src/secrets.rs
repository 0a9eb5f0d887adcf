//! Secrets at run time: the session keys, the WeChat AppSecret, the identity verifier's token and
//! the PII keys.
//!
//! A deployed function is given the Secrets Manager ARNs of the secrets it uses, and only those
//! (`RENJI_SESSION_SECRET_ARN`, `WECHAT_SECRET_ARN`, `RENJI_VERIFIER_TOKEN_ARN`,
//! `RENJI_PII_KEYS_ARN`), never their values: a value is read on first need, kept for
//! `RENJI_SECRETS_TTL_SECS` and read again after that, so a rotated secret is picked up without a
//! redeploy. Local runs and tests give the values themselves (`RENJI_SESSION_SECRET`, …).
//!
//! - The port is [`SecretSource`]; [`SecretsManager`] is its adapter: one `GetSecretValue` call,
//!   signed with SigV4 by `aws-sigv4` (the crate the AWS SDK signs with, already in every
//!   binary through the DynamoDB client), sent with reqwest. The README says why not
//!   `aws-sdk-secretsmanager`.
//! - A secret that cannot be read is a 503 for the request and an error log; a secret that is
//!   read but does not parse is a 500 and an error log. Neither panics, and no error, log line or
//!   `Debug` output carries a secret's value.
//! - When a re-read fails, the value read before keeps serving (and an error is logged); the read
//!   is tried again [`RETRY_AFTER_FAILURE`] later. An outage of Secrets Manager does not stop a
//!   warm function.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

use crate::config::{Redacted, SecretSetting};
use crate::error::Error;

/// How long a failed re-read waits before the next try (while the old value serves).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// Why a secret could not be had. Never carries the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretError {
    /// Not read: the store is unreachable, throttled, refuses, or has no such secret (503).
    Unavailable(String),
    /// Read, but not usable: a configuration error (500).
    Malformed(String),
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretError::Unavailable(m) => write!(f, "unavailable: {m}"),
            SecretError::Malformed(m) => write!(f, "malformed: {m}"),
        }
    }
}

impl From<SecretError> for Error {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::Unavailable(m) => Error::Unavailable(m),
            SecretError::Malformed(m) => Error::Config(m),
        }
    }
}

/// The port: where stored secrets are read from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The current value of the secret `id` (an ARN or a name).
    async fn read(&self, id: &str) -> Result<Redacted, SecretError>;
}

type MakeSource =
    Box<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn SecretSource>, SecretError>> + Send + Sync>;

struct Shared {
    source: OnceCell<Arc<dyn SecretSource>>,
    make: MakeSource,
    ttl: Duration,
}

/// A process's access to stored secrets: the source (built on first need, so a function that
/// reads no secret, or not yet, pays nothing for it) and how long a value is kept.
#[derive(Clone)]
pub struct Secrets {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("ttl", &self.shared.ttl)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    fn with(make: MakeSource, ttl: Duration) -> Self {
        Secrets {
            shared: Arc::new(Shared {
                source: OnceCell::new(),
                make,
                ttl,
            }),
        }
    }

    /// Secrets read from `source`.
    pub fn new(source: Arc<dyn SecretSource>, ttl: Duration) -> Self {
        Self::with(
            Box::new(move || {
                let source = Arc::clone(&source);
                Box::pin(async move { Ok(source) })
            }),
            ttl,
        )
    }

    /// Secrets read from Secrets Manager, configured from the environment on first need.
    pub fn from_env(ttl: Duration) -> Self {
        Self::with(
            Box::new(|| {
                Box::pin(async {
                    let source: Arc<dyn SecretSource> = Arc::new(SecretsManager::from_env().await?);
                    Ok(source)
                })
            }),
            ttl,
        )
    }

    pub fn ttl(&self) -> Duration {
        self.shared.ttl
    }

    async fn source(&self) -> Result<&Arc<dyn SecretSource>, SecretError> {
        self.shared
            .source
            .get_or_try_init(|| (self.shared.make)())
            .await
    }

    /// The secret `setting` names, parsed with `parse`. A value given directly is parsed now (a
    /// bad one is a start-up error, as any configuration); a stored one on first need.
    pub fn cached<T: Send + Sync + 'static>(
        &self,
        variable: &'static str,
        setting: &SecretSetting,
        parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Cached<T>, Error> {
        let inner = match setting {
            SecretSetting::Value(value) => Inner::Fixed(Arc::new(
                parse(&value.0).map_err(|e| Error::Config(format!("{variable}: {e}")))?,
            )),
            SecretSetting::Stored(id) => Inner::Stored {
                id: id.clone(),
                secrets: self.clone(),
                parse: Box::new(parse),
                state: Mutex::new(None),
            },
        };
        Ok(Cached { variable, inner })
    }
}

struct Entry<T> {
    value: Arc<T>,
    /// When the value is read again.
    refresh_at: Instant,
}

type Parse<T> = Box<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

enum Inner<T> {
    Fixed(Arc<T>),
    Stored {
        id: String,
        secrets: Secrets,
        parse: Parse<T>,
        /// Held across a read, so concurrent first uses make one request.
        state: Mutex<Option<Entry<T>>>,
    },
}

/// One secret, parsed, as its users need it. `Debug` shows the variable only.
pub struct Cached<T> {
    /// The variable that names it (`RENJI_SESSION_SECRET`), for errors and logs.
    variable: &'static str,
    inner: Inner<T>,
}

impl<T> std::fmt::Debug for Cached<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cached({})", self.variable)
    }
}

impl<T: Send + Sync + 'static> Cached<T> {
    /// A value given directly (tests).
    pub fn fixed(variable: &'static str, value: T) -> Self {
        Cached {
            variable,
            inner: Inner::Fixed(Arc::new(value)),
        }
    }

    /// The current value: the one kept while it is fresh, else read (and parsed) again.
    pub async fn get(&self) -> Result<Arc<T>, SecretError> {
        let (id, secrets, parse, state) = match &self.inner {
            Inner::Fixed(value) => return Ok(Arc::clone(value)),
            Inner::Stored {
                id,
                secrets,
                parse,
                state,
            } => (id, secrets, parse, state),
        };
        let mut state = state.lock().await;
        let now = Instant::now();
        if let Some(entry) = state.as_ref().filter(|e| now < e.refresh_at) {
            return Ok(Arc::clone(&entry.value));
        }
        let read = async {
            let value = secrets.source().await?.read(id).await?;
            parse(&value.0).map_err(SecretError::Malformed)
        };
        let ttl = secrets.ttl();
        match read.await {
            Ok(value) => {
                let value = Arc::new(value);
                let first = state.is_none();
                *state = Some(Entry {
                    value: Arc::clone(&value),
                    refresh_at: now + ttl,
                });
                if first {
                    tracing::info!(secret = self.variable, "secret read");
                }
                Ok(value)
            }
            Err(e) => {
                // The id names the secret, never holds it; the error never carries the value.
                let message = format!("{}_ARN {id}: {e}", self.variable);
                match state.as_mut() {
                    Some(entry) => {
                        tracing::error!(
                            secret = self.variable,
                            error = %message,
                            "secret re-read failed; the value read before is used"
                        );
                        entry.refresh_at = now + RETRY_AFTER_FAILURE.min(ttl);
                        Ok(Arc::clone(&entry.value))
                    }
                    None => {
                        tracing::error!(secret = self.variable, error = %message, "secret unavailable");
                        Err(match e {
                            SecretError::Unavailable(_) => SecretError::Unavailable(message),
                            SecretError::Malformed(_) => SecretError::Malformed(message),
                        })
                    }
                }
            }
        }
    }

    /// Makes the next [`get`](Self::get) read the secret again (e.g. once a provider has refused
    /// it: the secret may have been rotated since it was read).
    pub async fn refresh_soon(&self) {
        if let Inner::Stored { state, .. } = &self.inner {
            if let Some(entry) = state.lock().await.as_mut() {
                entry.refresh_at = Instant::now();
            }
        }
    }
}

/// The `kid:base64` entries of a key ring (comma-separated; blanks ignored): each kid 1 to 32 of
/// `A-Z a-z 0-9 - _` and listed once, each key `min_len..=max_len` bytes. The order is kept (the
/// first entry is the active key where no other is named). Errors name kids, never keys.
pub fn key_entries(
    list: &str,
    min_len: usize,
    max_len: usize,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (kid, key) = entry
            .split_once(':')
            .ok_or_else(|| "each entry is kid:base64key".to_owned())?;
        let kid = kid.trim();
        let kid_ok = !kid.is_empty()
            && kid.len() <= 32
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !kid_ok {
            return Err("a key id is 1 to 32 of A-Z a-z 0-9 - _".into());
        }
        if keys.iter().any(|(k, _)| k == kid) {
            return Err(format!("key id {kid} is listed twice"));
        }
        let bytes = STANDARD
            .decode(key.trim())
            .ok()
            .filter(|b| (min_len..=max_len).contains(&b.len()))
            .ok_or_else(|| match min_len == max_len {
                true => format!("key {kid} is not base64 of {min_len} bytes"),
                false => format!("key {kid} is not base64 of at least {min_len} bytes"),
            })?;
        keys.push((kid.to_owned(), bytes));
    }
    if keys.is_empty() {
        return Err("no keys".into());
    }
    Ok(keys)
}

/// The largest answer read from Secrets Manager (a secret holds at most 64 KiB).
const MAX_REPLY_BYTES: usize = 256 * 1024;

/// The adapter: `GetSecretValue` over HTTPS, signed with SigV4.
pub struct SecretsManager {
    http: reqwest::Client,
    /// `https://secretsmanager.<region>.<suffix>/`, or the configured endpoint.
    endpoint: String,
    region: String,
    credentials: SharedCredentialsProvider,
}

impl std::fmt::Debug for SecretsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManager")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

#[derive(Deserialize)]
struct Fault {
    #[serde(rename = "__type")]
    kind: Option<String>,
}

/// One failed attempt, and whether another may succeed.
struct Failure {
    retry: bool,
    error: SecretError,
}

/// The domain of AWS endpoints in `region`: `amazonaws.com.cn` in the China regions (partition
/// `aws-cn`), else `amazonaws.com`. Shared by the hand-signed clients (this one, `archive.rs`).
pub fn aws_domain(region: &str) -> &'static str {
    match region.starts_with("cn-") {
        true => "amazonaws.com.cn",
        false => "amazonaws.com",
    }
}

/// A region name as AWS writes them (`cn-north-1`): what a hand-signed client may put in a host.
pub fn is_region(region: &str) -> bool {
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl SecretsManager {
    /// The regional endpoint.
    pub fn default_endpoint(region: &str) -> String {
        format!("https://secretsmanager.{region}.{}/", aws_domain(region))
    }

    /// `endpoint` overrides the regional one (an http(s) URL with a host; a stand-in in tests).
    pub fn new(
        region: &str,
        endpoint: Option<&str>,
        credentials: SharedCredentialsProvider,
    ) -> Result<Self, SecretError> {
        let bad = |m: String| SecretError::Malformed(m);
        if !is_region(region) {
            return Err(bad("AWS_REGION is not set or not a region name".into()));
        }
        let endpoint = match endpoint {
            Some(e) => e.to_owned(),
            None => Self::default_endpoint(region),
        };
        // Signing needs a host: checked here, so no request can reach the signer without one.
        let url = url::Url::parse(&endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| bad(format!("Secrets Manager endpoint {endpoint} is not a URL")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| SecretError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(SecretsManager {
            http,
            endpoint: url.to_string(),
            region: region.to_owned(),
            credentials,
        })
    }

    /// Configured as the AWS SDK would be: the region from `AWS_REGION`, the endpoint from
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL` (unless
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), credentials from the environment (where Lambda
    /// puts them) or else the SDK's default chain.
    pub async fn from_env() -> Result<Self, SecretError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_default();
        let ignore = var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = match ignore {
            true => None,
            false => var("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| var("AWS_ENDPOINT_URL")),
        };
        let credentials = match var("AWS_ACCESS_KEY_ID") {
            Some(_) => SharedCredentialsProvider::new(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ),
            None => {
                let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(crate::app::https_client(&crate::app::Roots::System))
                    .load()
                    .await;
                if region.is_empty() {
                    region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
                }
                sdk.credentials_provider().ok_or_else(|| {
                    SecretError::Unavailable("no AWS credentials to read secrets with".into())
                })?
            }
        };
        Self::new(&region, endpoint.as_deref(), credentials)
    }

    /// One signed request.
    async fn call(&self, id: &str) -> Result<Redacted, Failure> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let fail = |retry: bool, error: SecretError| Failure { retry, error };
        let unavailable = |m: String| SecretError::Unavailable(m);
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| fail(true, unavailable(format!("AWS credentials: {e}"))))?;
        let identity = credentials.into();
        let body = serde_json::json!({ "SecretId": id }).to_string();
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "secretsmanager.GetSecretValue"),
        ];
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("secretsmanager")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail(false, unavailable(format!("signing: {e}"))))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .and_then(|request| sign(request, &params))
        .map_err(|e| fail(false, unavailable(format!("signing: {e}"))))?;
        let (instructions, _) = signable.into_parts();
        let mut request = self.http.post(&self.endpoint).body(body);
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        let mut response = request.send().await.map_err(|e| {
            fail(
                true,
                unavailable(format!("Secrets Manager: {}", e.without_url())),
            )
        })?;
        let status = response.status();
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if bytes.len() + chunk.len() <= MAX_REPLY_BYTES => {
                    bytes.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => {
                    return Err(fail(false, unavailable("oversized reply".into())));
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(fail(
                        true,
                        unavailable(format!("Secrets Manager: {}", e.without_url())),
                    ))
                }
            }
        }
        if !status.is_success() {
            // `__type` names the error (`ResourceNotFoundException`, `AccessDeniedException`…);
            // the message is not kept: only the type and status are needed to act.
            let kind = serde_json::from_slice::<Fault>(&bytes)
                .ok()
                .and_then(|f| f.kind)
                .map(|k| k.rsplit('#').next().unwrap_or_default().to_owned())
                .unwrap_or_default();
            let retry = status.is_server_error()
                || matches!(
                    kind.as_str(),
                    "ThrottlingException" | "InternalServiceError" | "RequestTimeout"
                );
            return Err(fail(
                retry,
                unavailable(format!("Secrets Manager answered {status} {kind}")),
            ));
        }
        let reply: Reply = serde_json::from_slice(&bytes)
            .map_err(|_| fail(false, unavailable("unreadable GetSecretValue reply".into())))?;
        let value = reply.secret_string.ok_or_else(|| {
            fail(
                false,
                SecretError::Malformed("the secret has no SecretString (binary?)".into()),
            )
        })?;
        Ok(Redacted(value))
    }
}

#[async_trait]
impl SecretSource for SecretsManager {
    /// Tries twice when the first failure may pass (throttling, a 5xx, a dropped connection).
    async fn read(&self, id: &str) -> Result<Redacted, SecretError> {
        match self.call(id).await {
            Ok(value) => Ok(value),
            Err(Failure { retry: true, .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.call(id).await.map_err(|f| f.error)
            }
            Err(f) => Err(f.error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Values that tests change, and a count of reads.
    #[derive(Default)]
    struct FakeStore {
        values: std::sync::Mutex<HashMap<String, Result<String, SecretError>>>,
        reads: AtomicUsize,
    }

    impl FakeStore {
        fn set(&self, id: &str, value: Result<&str, SecretError>) {
            self.values
                .lock()
                .unwrap()
                .insert(id.into(), value.map(str::to_owned));
        }
    }

    #[async_trait]
    impl SecretSource for FakeStore {
        async fn read(&self, id: &str) -> Result<Redacted, SecretError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            match self.values.lock().unwrap().get(id) {
                Some(Ok(v)) => Ok(Redacted(v.clone())),
                Some(Err(e)) => Err(e.clone()),
                None => Err(SecretError::Unavailable("ResourceNotFoundException".into())),
            }
        }
    }

    fn parse(v: &str) -> Result<String, String> {
        match v.starts_with("ok") {
            true => Ok(v.to_owned()),
            false => Err("not ok".into()),
        }
    }

    fn setup(ttl: u64) -> (Arc<FakeStore>, Cached<String>) {
        let store = Arc::new(FakeStore::default());
        let secrets = Secrets::new(store.clone(), Duration::from_secs(ttl));
        let cached = secrets
            .cached("TEST_SECRET", &SecretSetting::Stored("s1".into()), parse)
            .unwrap();
        (store, cached)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stored_secret_is_read_on_first_use_kept_then_read_again() {
        let (store, cached) = setup(300);
        store.set("s1", Ok("ok-1"));
        assert_eq!(
            store.reads.load(Ordering::SeqCst),
            0,
            "nothing read up front"
        );
        assert_eq!(*cached.get().await.unwrap(), "ok-1");
        store.set("s1", Ok("ok-2"));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(*cached.get().await.unwrap(), "ok-1", "kept for the ttl");
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(*cached.get().await.unwrap(), "ok-2", "read again after it");
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_secret_is_a_503_and_a_bad_one_a_500_without_the_value() {
        let (store, cached) = setup(300);
        let e = Error::from(cached.get().await.unwrap_err());
        assert_eq!(e.status(), 503, "{e:?}");
        assert!(e.to_string().contains("TEST_SECRET_ARN s1"), "{e}");
        store.set("s1", Ok("bad-value-do-not-show"));
        let e = Error::from(cached.get().await.unwrap_err());
        assert_eq!(e.status(), 500, "{e:?}");
        assert!(!format!("{e:?}").contains("do-not-show"), "{e:?}");
        store.set("s1", Ok("ok-1"));
        assert_eq!(
            *cached.get().await.unwrap(),
            "ok-1",
            "each request tries again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_re_read_keeps_the_old_value_and_tries_again_later() {
        let (store, cached) = setup(60);
        store.set("s1", Ok("ok-1"));
        cached.get().await.unwrap();
        store.set("s1", Err(SecretError::Unavailable("throttled".into())));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(*cached.get().await.unwrap(), "ok-1");
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
        // Not again at once...
        cached.get().await.unwrap();
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
        // ...but after RETRY_AFTER_FAILURE; a bad new value is not taken either.
        store.set("s1", Ok("broken"));
        tokio::time::advance(RETRY_AFTER_FAILURE).await;
        assert_eq!(*cached.get().await.unwrap(), "ok-1");
        assert_eq!(store.reads.load(Ordering::SeqCst), 3);
        store.set("s1", Ok("ok-2"));
        tokio::time::advance(RETRY_AFTER_FAILURE).await;
        assert_eq!(*cached.get().await.unwrap(), "ok-2");
        // refresh_soon forces the next read.
        store.set("s1", Ok("ok-3"));
        cached.refresh_soon().await;
        assert_eq!(*cached.get().await.unwrap(), "ok-3");
    }

    #[tokio::test]
    async fn concurrent_first_uses_make_one_read() {
        let (store, cached) = setup(300);
        store.set("s1", Ok("ok-1"));
        let cached = Arc::new(cached);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let c = Arc::clone(&cached);
                tokio::spawn(async move { c.get().await.map(|v| (*v).clone()) })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "ok-1");
        }
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_value_given_directly_is_parsed_at_once() {
        let secrets = Secrets::new(Arc::new(FakeStore::default()), Duration::from_secs(1));
        let setting = SecretSetting::Value(Redacted("ok-local".into()));
        let cached = secrets.cached("TEST_SECRET", &setting, parse).unwrap();
        assert_eq!(*cached.get().await.unwrap(), "ok-local");
        let bad = SecretSetting::Value(Redacted("secret-value".into()));
        let e = secrets.cached("TEST_SECRET", &bad, parse).unwrap_err();
        assert!(matches!(&e, Error::Config(m) if m.starts_with("TEST_SECRET")));
        assert!(!e.to_string().contains("secret-value"));
    }

    #[test]
    fn endpoints_follow_the_partition() {
        assert_eq!(
            SecretsManager::default_endpoint("us-east-1"),
            "https://secretsmanager.us-east-1.amazonaws.com/"
        );
        assert_eq!(
            SecretsManager::default_endpoint("cn-northwest-1"),
            "https://secretsmanager.cn-northwest-1.amazonaws.com.cn/"
        );
        let creds = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "a", "b", None, None, "test",
        ));
        for (region, endpoint) in [
            ("", None),
            ("us-east-1", Some("not a url")),
            ("us-east-1", Some("file:///etc/passwd")),
            ("US EAST", None),
        ] {
            assert!(
                SecretsManager::new(region, endpoint, creds.clone()).is_err(),
                "{region} {endpoint:?}"
            );
        }
    }
}
