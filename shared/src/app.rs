//! The state a function builds once per process and hands to every request.

use std::sync::Arc;

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
use lambda_http::Request;

use crate::config::Config;
use crate::error::Error;
use crate::http::CursorKey;
use crate::pii::KeyRing;
use crate::session::{self, Claims, TokenSigner};
use crate::store::dynamo::DynamoStore;
use crate::store::schema::TABLE;
use crate::store::DynStore;
use crate::verifier::{HttpVerifier, Verifier};
use crate::wechat::WechatClient;

pub struct App {
    pub config: Config,
    pub store: DynStore,
    pub tokens: TokenSigner,
    /// Seals page cursors (a sub-key of the session secret, so every instance shares it).
    pub cursors: CursorKey,
    /// Present in the functions configured with WeChat credentials.
    pub wechat: Option<WechatClient>,
    /// Present in the functions configured with a verifier (real-name verification).
    pub verifier: Option<Arc<dyn Verifier>>,
    /// Present in the functions configured with PII keys.
    pub pii: Option<KeyRing>,
}

impl App {
    pub fn new(config: Config, store: DynStore) -> Result<Self, Error> {
        let pii = config.pii.as_ref().map(KeyRing::new).transpose()?;
        if let (Some(ring), Some(kid)) = (&pii, &config.id_claim_key) {
            if !ring.has(kid) {
                return Err(Error::Config(
                    "RENJI_ID_CLAIM_KEY does not name a key of RENJI_PII_KEYS".into(),
                ));
            }
        }
        Ok(App {
            tokens: TokenSigner::new(&config.session_secret),
            cursors: CursorKey::derive(config.session_secret.expose()),
            wechat: config.wechat.clone().map(WechatClient::new).transpose()?,
            verifier: match config.verifier.clone() {
                Some(c) => Some(Arc::new(HttpVerifier::new(c)?)),
                None => None,
            },
            pii,
            store,
            config,
        })
    }

    /// A deployed function's state: configuration from the environment, DynamoDB as the store.
    pub async fn from_env() -> Result<Self, Error> {
        let config = Config::from_env()?;
        let client = dynamodb_client(config.dynamodb_endpoint.as_deref()).await;
        let store = Arc::new(DynamoStore::new(client, config.table_name.clone(), TABLE));
        App::new(config, store)
    }

    /// The caller's session, or 401.
    pub async fn authenticate(&self, req: &Request) -> Result<Claims, Error> {
        session::authenticate(&self.store, &self.tokens, req).await
    }

    /// The caller's session and one more item of theirs, read together (one request).
    pub async fn authenticate_with(
        &self,
        req: &Request,
        key: impl FnOnce(&Claims) -> crate::store::Key,
    ) -> Result<(Claims, Option<crate::store::Item>), Error> {
        session::authenticate_with(&self.store, &self.tokens, req, key).await
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

/// The roots AWS service endpoints chain to (Amazon Trust Services), compiled in.
const AWS_ROOTS_PEM: &str = include_str!("aws_roots.pem");

/// An HTTPS client on the ring-based rustls stack. With `aws_roots_only` it trusts only the
/// Amazon Trust Services roots: loading and parsing the system's whole store (about 150 roots)
/// took about 3.5 ms of every cold start (see the README's "Benchmarks").
fn https_client(aws_roots_only: bool) -> SharedHttpClient {
    let builder =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring));
    if !aws_roots_only {
        return builder.build_https();
    }
    let roots = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AWS_ROOTS_PEM.as_bytes());
    builder
        .tls_context(
            TlsContext::builder()
                .with_trust_store(roots)
                .build()
                .unwrap_or_default(),
        )
        .build_https()
}

/// A DynamoDB client on the ring-based rustls stack. With an `endpoint` (DynamoDB Local) it uses
/// fixed local credentials and the system's roots; otherwise the Lambda environment's
/// credentials and region, and only AWS's roots.
pub async fn dynamodb_client(endpoint: Option<&str>) -> aws_sdk_dynamodb::Client {
    let http = https_client(endpoint.is_none());
    match endpoint {
        Some(endpoint) => {
            let config = aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("local", "local", None, None, "local"))
                .endpoint_url(endpoint)
                .http_client(http)
                .build();
            aws_sdk_dynamodb::Client::from_conf(config)
        }
        None => {
            let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
            // Lambda gives every function its region and credentials in the environment, which
            // is where the default chains look first; using them directly skips building those
            // chains (profile files, SSO, web identity, containers, IMDS): 0.2 ms of each cold
            // start. Elsewhere the default chains still apply.
            if let Ok(region) = std::env::var("AWS_REGION") {
                loader = loader.region(Region::new(region));
            }
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
                loader = loader.credentials_provider(
                    aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
                );
            }
            aws_sdk_dynamodb::Client::new(&loader.load().await)
        }
    }
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
            .http_client(https_client(true))
            .build();
        let _ = aws_sdk_dynamodb::Client::from_conf(config);
    }
}
