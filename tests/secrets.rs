//! Secrets at run time, end to end: functions configured as `template.yaml` configures them
//! (secret ARNs only) read their secrets from a Secrets Manager stand-in through the production
//! adapter (SigV4 and all), on first need; rotations are picked up without a restart and log
//! nobody out; a secret that cannot be read is a 503, never a panic and never shown.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use base64::Engine as _;
use renji_local::sandbox::{secrets_manager, verifier, wechat};
use renji_local::template::Template;
use renji_shared::config::Config;
use renji_shared::secrets::{Secrets, SecretsManager};
use renji_shared::store::embedded::EmbeddedStore;
use renji_shared::store::schema::TABLE;
use renji_shared::App;
use serde_json::{json, Value};
use tokio::net::TcpListener;

const SESSION_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/session-AbCdEf";
const WECHAT_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/wechat-AbCdEf";
const VERIFIER_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/verifier-AbCdEf";
const PII_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/pii-AbCdEf";
const IM_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:renji/im-AbCdEf";

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// The stand-ins (Secrets Manager, WeChat, verifier) and a temporary store folder.
struct World {
    secrets: Arc<secrets_manager::Secrets>,
    endpoint: String,
    wechat_base: String,
    verifier_url: String,
    dir: tempfile::TempDir,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

impl World {
    async fn start() -> World {
        let (endpoint, secrets, sm) = secrets_manager::spawn(listener().await).unwrap();
        let (wechat_base, wx) = wechat::spawn(listener().await).unwrap();
        let (verifier_url, vf) = verifier::spawn(listener().await).unwrap();
        secrets.put(SESSION_ARN, &format!("k1:{}", key(1)));
        secrets.put(WECHAT_ARN, wechat::SECRET);
        secrets.put(VERIFIER_ARN, verifier::TOKEN);
        secrets.put(PII_ARN, &format!("p1:{}", key(9)));
        secrets.put(IM_ARN, "im-secret-from-secrets-manager");
        World {
            secrets,
            endpoint,
            wechat_base,
            verifier_url,
            dir: tempfile::TempDir::new().unwrap(),
            _tasks: vec![sm, wx, vf],
        }
    }

    /// A process of the functions, configured with the secrets' ARNs only, signing its requests
    /// to Secrets Manager with `secret_key`.
    fn app_signed_with(&self, ttl_secs: u64, secret_key: &str) -> App {
        let env: HashMap<&str, String> = HashMap::from([
            ("RENJI_SESSION_SECRET_ARN", SESSION_ARN.to_owned()),
            ("WECHAT_APPID", wechat::APPID.to_owned()),
            ("WECHAT_SECRET_ARN", WECHAT_ARN.to_owned()),
            ("WECHAT_API_BASE", self.wechat_base.clone()),
            ("RENJI_VERIFIER_URL", self.verifier_url.clone()),
            ("RENJI_VERIFIER_TOKEN_ARN", VERIFIER_ARN.to_owned()),
            ("RENJI_PII_KEYS_ARN", PII_ARN.to_owned()),
            ("TENCENT_IM_SDKAPPID", "1400000000".to_owned()),
            ("TENCENT_IM_SECRET_ARN", IM_ARN.to_owned()),
            ("RENJI_SECRETS_TTL_SECS", ttl_secs.to_string()),
        ]);
        let config = Config::from_lookup(|name| env.get(name).cloned()).unwrap();
        let credentials = SharedCredentialsProvider::new(Credentials::new(
            secrets_manager::ACCESS_KEY,
            secret_key,
            Some("session-token".into()),
            None,
            "test",
        ));
        let source = SecretsManager::new("us-east-1", Some(&self.endpoint), credentials).unwrap();
        let secrets = Secrets::new(Arc::new(source), config.secrets_ttl);
        let path = self.dir.path().join(format!("{}.redb", ulid::Ulid::new()));
        let store = Arc::new(EmbeddedStore::open(&path, TABLE).unwrap());
        App::with_secrets(config, store, &secrets).unwrap()
    }

    fn app(&self, ttl_secs: u64) -> App {
        self.app_signed_with(ttl_secs, secrets_manager::SECRET_KEY)
    }
}

/// `events/<name>.json` with `token` put in.
fn event(name: &str, token: Option<&str>) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../events/{name}.json"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    if let Some(token) = token {
        event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    }
    event
}

async fn invoke(app: &App, event: &Value) -> (u16, Value) {
    let route = event["routeKey"].as_str().unwrap();
    let function = Template::load()
        .unwrap()
        .routes()
        .into_iter()
        .find(|r| r.key() == route)
        .unwrap()
        .function;
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = renji_local::functions::invoke(&function, app, req)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        _ => Value::Null,
    };
    (status, body)
}

async fn login(app: &App) -> String {
    let (status, body) = invoke(app, &event("auth-login", None)).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn me(app: &App, token: &str) -> u16 {
    invoke(app, &event("users-get-me", Some(token))).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_read_on_first_need_from_secrets_manager() {
    let world = World::start().await;
    let app = world.app(300);
    assert_eq!(world.secrets.reads(), 0, "nothing is read at start");
    // A route that needs no secret reads none (an anonymous read of one listing).
    let (status, _) = invoke(&app, &event("listings-get", None)).await;
    assert_eq!(status, 404);
    assert_eq!(world.secrets.reads(), 0);
    // A list route reads the session keys (its cursors are sealed with a key derived from them).
    let (status, _) = invoke(&app, &event("listings-browse", None)).await;
    assert_eq!(status, 200);
    assert_eq!(world.secrets.reads(), 1);
    // A login reads the AppSecret (the sandbox checks it), once; the session keys are kept.
    let token = login(&app).await;
    assert!(token.starts_with("k1."), "{token}");
    assert_eq!(world.secrets.reads(), 2);
    assert_eq!(me(&app, &token).await, 200);
    login(&app).await;
    assert_eq!(world.secrets.reads(), 2, "kept, not read again");
    // A verification reads the PII keys and the verifier's token (the sandbox checks it).
    let (status, body) = invoke(&app, &event("verification-submit", Some(&token))).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (201, Some("verified")),
        "{body}"
    );
    assert_eq!(world.secrets.reads(), 4);
    // An IM UserSig reads the IM secret, once.
    for _ in 0..2 {
        let (status, body) = invoke(&app, &event("im-usersig", Some(&token))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(world.secrets.reads(), 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_session_keys_needs_no_restart_and_logs_nobody_out() {
    let world = World::start().await;
    // A ttl of 0: every use reads the secret again, so each step below is seen at once.
    let app = world.app(0);
    let old = login(&app).await;
    assert!(old.starts_with("k1."));
    // Step 1: k2 added at the end: still k1 signs.
    world
        .secrets
        .put(SESSION_ARN, &format!("k1:{},k2:{}", key(1), key(2)));
    assert!(login(&app).await.starts_with("k1."));
    // Step 2: k2 first: it signs, and k1's tokens still work.
    world
        .secrets
        .put(SESSION_ARN, &format!("k2:{},k1:{}", key(2), key(1)));
    let new = login(&app).await;
    assert!(new.starts_with("k2."), "{new}");
    assert_eq!(me(&app, &old).await, 200);
    assert_eq!(me(&app, &new).await, 200);
    // Step 3: k1 dropped: its tokens are refused, k2's still work.
    world.secrets.put(SESSION_ARN, &format!("k2:{}", key(2)));
    assert_eq!(me(&app, &old).await, 401);
    assert_eq!(me(&app, &new).await, 200);
    // A token naming a kid the ring does not have is a 401.
    let unknown = format!("k7.{}", new.split_once('.').unwrap().1);
    assert_eq!(me(&app, &unknown).await, 401);
    // The secret becoming unreadable later: the keys read before keep serving.
    world.secrets.remove(SESSION_ARN);
    assert_eq!(me(&app, &new).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_cannot_be_read_is_a_503_and_a_bad_one_a_500() {
    let world = World::start().await;
    world.secrets.remove(SESSION_ARN);
    let app = world.app(300);
    let (status, body) = invoke(&app, &event("users-get-me", Some("k1.x.y"))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("service_unavailable"))
    );
    let (status, _) = invoke(&app, &event("auth-login", None)).await;
    assert_eq!(status, 503);
    // Once it can be read again, the next request works: no restart.
    world.secrets.put(SESSION_ARN, &format!("k1:{}", key(1)));
    login(&app).await;

    // The IM secret unreadable: the UserSig is a 503, the rest works.
    world.secrets.remove(IM_ARN);
    let token = login(&app).await;
    let (status, body) = invoke(&app, &event("im-usersig", Some(&token))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("service_unavailable"))
    );
    assert_eq!(me(&app, &token).await, 200);

    // Requests signed with the wrong key are refused by the stand-in: 503 too.
    let forged = world.app_signed_with(300, "not-the-key");
    assert_eq!(invoke(&forged, &event("auth-login", None)).await.0, 503);

    // A value that is not a key ring: a 500, and the value appears nowhere in the answer.
    let fresh = World::start().await;
    fresh.secrets.put(SESSION_ARN, "k1:c2hvcnQ=");
    let app = fresh.app(300);
    let (status, body) = invoke(&app, &event("auth-login", None)).await;
    assert_eq!(status, 500);
    assert!(!body.to_string().contains("c2hvcnQ="), "{body}");

    // The verifier's token missing: the submission is a 503, and nothing is recorded.
    let fresh = World::start().await;
    fresh.secrets.remove(VERIFIER_ARN);
    let app = fresh.app(300);
    let token = login(&app).await;
    let (status, _) = invoke(&app, &event("verification-submit", Some(&token))).await;
    assert_eq!(status, 503);
    let (status, _) = invoke(&app, &event("verification-get", Some(&token))).await;
    assert_eq!(status, 404, "no attempt was recorded");
}
