//! The state a function builds once per process and hands to every request.

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use lambda_http::Request;

use crate::config::Config;
use crate::error::Error;
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
    /// Present in the functions configured with WeChat credentials.
    pub wechat: Option<WechatClient>,
    /// Present in the functions configured with a verifier (real-name verification).
    pub verifier: Option<Arc<dyn Verifier>>,
    /// Present in the functions configured with PII keys.
    pub pii: Option<KeyRing>,
}

impl App {
    pub fn new(config: Config, store: DynStore) -> Result<Self, Error> {
        Ok(App {
            tokens: TokenSigner::new(&config.session_secret),
            wechat: config.wechat.clone().map(WechatClient::new).transpose()?,
            verifier: match config.verifier.clone() {
                Some(c) => Some(Arc::new(HttpVerifier::new(c)?)),
                None => None,
            },
            pii: config.pii.as_ref().map(KeyRing::new).transpose()?,
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

/// A DynamoDB client on the ring-based rustls stack. With an `endpoint` (DynamoDB Local) it uses
/// fixed local credentials; otherwise the Lambda environment's credentials and region.
pub async fn dynamodb_client(endpoint: Option<&str>) -> aws_sdk_dynamodb::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
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
            let shared = aws_config::defaults(BehaviorVersion::latest())
                .http_client(http)
                .load()
                .await;
            aws_sdk_dynamodb::Client::new(&shared)
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
