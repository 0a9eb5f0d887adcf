//! Test support: both stores, the local server on either, and a small HTTP client.
//!
//! DynamoDB cases need DynamoDB Local: `scripts/test` starts it and sets
//! `RENJI_TEST_DYNAMODB_ENDPOINT`. Each test gets its own table (or embedded folder), so tests
//! run in parallel without seeing each other's data.

use std::ops::Deref;
use std::sync::Arc;

use renji_local::{Running, StoreChoice};
use renji_shared::store::dynamo::DynamoStore;
use renji_shared::store::embedded::EmbeddedStore;
use renji_shared::store::schema::TABLE;
use renji_shared::store::DynStore;
use serde_json::Value;
use tempfile::TempDir;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Dynamo,
}

/// Generates one `#[tokio::test]` per store for each `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    // Boxed: a long test's future is large, and a debug build's test thread
                    // stack (2 MiB) is not.
                    Box::pin(super::$name($crate::Backend::Embedded)).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    Box::pin(super::$name($crate::Backend::Dynamo)).await
                }
            )*
        }
    };
}

/// The DynamoDB Local endpoint `scripts/test` started.
pub fn dynamodb_endpoint() -> String {
    std::env::var("RENJI_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "RENJI_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test, which \
             starts DynamoDB Local"
        )
    })
}

/// A table name no other test uses.
pub fn fresh_table_name() -> String {
    format!(
        "test-{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    )
}

/// A store of either kind, empty, alive as long as this value.
pub struct TestStore {
    pub store: DynStore,
    _dir: Option<TempDir>,
}

impl TestStore {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Embedded => {
                let dir = TempDir::new().expect("temp dir");
                let store = EmbeddedStore::open(&dir.path().join("test.redb"), TABLE)
                    .expect("open embedded store");
                TestStore {
                    store: Arc::new(store),
                    _dir: Some(dir),
                }
            }
            Backend::Dynamo => {
                let client = renji_shared::app::dynamodb_client(Some(&dynamodb_endpoint())).await;
                let table = fresh_table_name();
                renji_local::tables::create_table(&client, &table)
                    .await
                    .expect("create table in DynamoDB Local");
                TestStore {
                    store: Arc::new(DynamoStore::new(client, table, TABLE)),
                    _dir: None,
                }
            }
        }
    }
}

impl Deref for TestStore {
    type Target = DynStore;
    fn deref(&self) -> &DynStore {
        &self.store
    }
}

/// The local server on either store, alive as long as this value.
pub struct LocalServer {
    pub running: Running,
    pub api: Api,
    pub data_dir: Option<TempDir>,
}

impl LocalServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// The local server with these configuration variables (e.g. `RENJI_RATE_LIMITS=off` for a
    /// test that makes many calls).
    pub async fn start_with(backend: Backend, config: &[(&str, &str)]) -> Self {
        let data_dir = TempDir::new().expect("temp dir");
        let store = match backend {
            Backend::Embedded => StoreChoice::Embedded {
                data_dir: data_dir.path().to_path_buf(),
            },
            Backend::Dynamo => StoreChoice::Dynamo {
                endpoint: dynamodb_endpoint(),
                table_name: fresh_table_name(),
            },
        };
        let running = Self::run_with(store, config).await;
        LocalServer {
            api: Api::new(running.url()),
            running,
            data_dir: Some(data_dir),
        }
    }

    pub async fn run(store: StoreChoice) -> Running {
        Self::run_with(store, &[]).await
    }

    /// The server with `config`; its timer for scheduled jobs is off unless `config` sets
    /// `RENJI_LOCAL_JOBS_SECS` (tests run the jobs themselves, when they choose).
    pub async fn run_with(store: StoreChoice, config: &[(&str, &str)]) -> Running {
        let mut config: std::collections::HashMap<String, String> = config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        config
            .entry("RENJI_LOCAL_JOBS_SECS".into())
            .or_insert_with(|| "0".into());
        renji_local::start(renji_local::Options {
            addr: "127.0.0.1:0".parse().expect("address"),
            store,
            session_secret: None,
            config,
        })
        .await
        .expect("start local server")
    }

    pub fn app(&self) -> &renji_shared::App {
        &self.running.app
    }

    /// An upload of `who` for `purpose`, issued through `POST /v1/uploads` (the file itself is
    /// not sent: attaching needs only the record), and with `passed` marked passed as the media
    /// check leaves it (public), else still `issued` (pending): its `media_url`.
    pub async fn upload(&self, who: &Member, purpose: &str, passed: bool) -> String {
        use renji_shared::domain::media::MediaStatus;
        let content_type = match purpose {
            "listing_video" => "video/mp4",
            _ => "image/jpeg",
        };
        let body = serde_json::json!({
            "purpose": purpose, "content_type": content_type, "size": 1024,
        });
        let reply = self
            .api
            .call("POST", "/v1/uploads", Some(&who.token), Some(body))
            .await;
        assert_eq!(reply.status, 201, "POST /v1/uploads: {reply:?}");
        let url = reply.body["media_url"]
            .as_str()
            .expect("media_url")
            .to_owned();
        if passed {
            let app = self.app();
            set_status(
                &app.store,
                &app.config.media.base_url,
                &url,
                MediaStatus::Passed,
            )
            .await;
        }
        url
    }

    /// Binds an Alipay payout account (`2088101126765726`, 张三: the name of the verification
    /// [`LocalServer::verify`] leaves) for `member` beside their own WeChat one, so buyers may
    /// pay them through either provider.
    pub async fn bind_alipay(&self, member: &Member) {
        let user = renji_shared::ids::UserId::parse(&member.id).expect("a member id");
        let alipay = renji_shared::domain::payouts::AlipayBody {
            account: "2088101126765726".into(),
            name: "张三".into(),
        }
        .validate()
        .expect("an Alipay account");
        renji_shared::domain::payouts::bind(
            self.app(),
            &user,
            renji_shared::payments::Provider::Alipay,
            alipay,
        )
        .await
        .expect("bind the seller's Alipay payout account");
    }

    /// Logs `name` in through the sandbox; with `verified`, sets the badge as a verified result
    /// sets it (so the member may publish; verification has its own tests), with the
    /// verification record such a result leaves (the name 张三, sealed), and binds the member's
    /// own WeChat payout account (registered at the WeChat Pay stand-in), so they may publish
    /// services and be paid through WeChat Pay ([`LocalServer::verified_only`]: without it).
    pub async fn member(&self, name: &str, verified: bool) -> Member {
        let member = match verified {
            true => self.verified_only(name).await,
            false => {
                let (token, login) = self.api.login(name).await;
                let id = login["user"]["id"].as_str().expect("user id").to_owned();
                return Member { token, id };
            }
        };
        let user = renji_shared::ids::UserId::parse(&member.id).expect("a member id");
        renji_shared::domain::payouts::bind(
            self.app(),
            &user,
            renji_shared::payments::Provider::Wechat,
            renji_shared::domain::payouts::Wanted::WechatOwn,
        )
        .await
        .expect("bind the member's own WeChat payout account");
        member
    }

    /// A member verified as the person 张三 (the badge and the verification record), with no
    /// payout account.
    pub async fn verified_only(&self, name: &str) -> Member {
        let (token, login) = self.api.login(name).await;
        let id = login["user"]["id"].as_str().expect("user id").to_owned();
        let member = Member { token, id };
        self.verify(&member).await;
        member
    }

    /// Verifies `member` as the person 张三, as a verified result leaves them: the badge and
    /// the verification record (the name sealed). Every payout account needs it (an Alipay
    /// account's `name` must then be 张三).
    pub async fn verify(&self, member: &Member) {
        use renji_shared::domain::members::VerifiedAs;
        use renji_shared::domain::verification::{Status, Verification, NAME_FIELD};
        use renji_shared::store::{keys, Record, Write};
        let user = renji_shared::ids::UserId::parse(&member.id).expect("a member id");
        let store = &self.app().store;
        store
            .write(
                Write::update(keys::member(&user))
                    .set("verified", "person")
                    .build(),
            )
            .await
            .expect("set the verified badge");
        let ring = self.app().pii().await.expect("PII keys");
        let now = renji_shared::domain::members::now_rfc3339();
        let record = Verification {
            status: Status::Verified,
            kind: VerifiedAs::Person,
            attempt_id: format!("va_{}", ulid::Ulid::new().to_string().to_ascii_lowercase()),
            name_shown: "*三".into(),
            number_masked: "11**************2X".into(),
            name_sealed: ring.seal(&user, NAME_FIELD, "张三").expect("seal"),
            number_sealed: ring
                .seal(&user, "verification.number", "11010519491231002X")
                .expect("seal"),
            reason: None,
            submitted_at: now.clone(),
            decided_at: Some(now),
            next_check_at: None,
            rechecks: 0,
        };
        store
            .write(Write::put(
                record
                    .to_item(keys::verification(&user), None)
                    .expect("an item"),
            ))
            .await
            .expect("store the verification");
    }

    /// An order of `listing` by `buyer` (quantity 1), paid with WeChat Pay at the sandbox
    /// stand-in, whose notification makes it `paid`: the order id. Many calls: start the server
    /// with `RENJI_RATE_LIMITS=off` when a test makes many orders.
    pub async fn paid_order(&self, buyer: &Member, listing: &str) -> String {
        self.paid_order_through(buyer, listing, "wechat").await
    }

    /// An order of `listing` by `buyer` (quantity 1), not paid yet: its id.
    pub async fn ordered(&self, buyer: &Member, listing: &str) -> String {
        let order = self
            .api
            .call(
                "POST",
                "/v1/orders",
                Some(&buyer.token),
                Some(serde_json::json!({"listing_id": listing, "quantity": 1})),
            )
            .await;
        assert_eq!(order.status, 201, "{order:?}");
        order.body["id"].as_str().expect("order id").to_owned()
    }

    /// An order of `listing` by `buyer`, paid through `channel` (`wechat` or `alipay`, the app's
    /// order string) at its stand-in, whose notification was applied: its id.
    pub async fn paid_order_through(&self, buyer: &Member, listing: &str, channel: &str) -> String {
        let id = self.ordered(buyer, listing).await;
        let started = self
            .api
            .call(
                "POST",
                &format!("/v1/orders/{id}/payments"),
                Some(&buyer.token),
                Some(serde_json::json!({ "channel": channel })),
            )
            .await;
        assert_eq!(started.status, 200, "{started:?}");
        let (base, body, notified) = match channel {
            "wechat" => (
                &self.running.wechatpay_base,
                serde_json::json!({ "out_trade_no": id }),
                "204",
            ),
            _ => (
                &self.running.alipay_base,
                serde_json::json!({"order_string": started.body["order_string"], "notify": true}),
                "success",
            ),
        };
        let paid: Value = reqwest::Client::new()
            .post(format!("{base}/sandbox/pay"))
            .json(&body)
            .send()
            .await
            .expect("sandbox pay")
            .json()
            .await
            .expect("sandbox pay answer");
        assert_eq!(paid["notified"], notified, "{paid}");
        id
    }

    /// [`LocalServer::paid_order`], accepted by `seller` and confirmed by `buyer`: a
    /// `completed` order's id.
    pub async fn completed_order(&self, seller: &Member, buyer: &Member, listing: &str) -> String {
        self.completed_order_through(seller, buyer, listing, "wechat")
            .await
    }

    /// [`LocalServer::completed_order`], paid through `channel`.
    pub async fn completed_order_through(
        &self,
        seller: &Member,
        buyer: &Member,
        listing: &str,
        channel: &str,
    ) -> String {
        let id = self.paid_order_through(buyer, listing, channel).await;
        for (who, action) in [(seller, "accept"), (buyer, "confirm")] {
            let reply = self
                .api
                .call(
                    "POST",
                    &format!("/v1/orders/{id}/{action}"),
                    Some(&who.token),
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{action}: {reply:?}");
        }
        id
    }
}

/// The body of a published service listing, as the HTTP tests publish them (no images: media
/// must be the member's own uploads, [`LocalServer::upload`]).
pub fn service(title: &str) -> Value {
    serde_json::json!({
        "kind": "service",
        "title": title,
        "description": "全天跟拍，含精修 50 张",
        "category": "photography",
        "city": "北京",
        "price_fen": 288_000,
        "status": "published",
    })
}

/// An upload of `owner` for `purpose` (`listing_image`, `avatar`…) in `status`, recorded as
/// `POST /v1/uploads` records it (written directly with the store: the route is the `uploads`
/// piece): its media URL under `base` (`RENJI_MEDIA_BASE_URL`).
pub async fn upload_record(
    store: &DynStore,
    base: &str,
    owner: &renji_shared::ids::UserId,
    purpose: &str,
    status: renji_shared::domain::media::MediaStatus,
) -> String {
    use renji_shared::domain::media::Purpose;
    use renji_shared::store::Record;
    let purpose = Purpose::parse(purpose).expect("a purpose");
    let record = renji_local::sandbox::fakes::upload(owner, purpose, status);
    let item = record
        .to_item(renji_shared::store::keys::media(owner, &record.id), None)
        .expect("an upload item");
    store
        .write(renji_shared::store::Write::put(item))
        .await
        .expect("write the upload");
    format!("{base}/{}", record.key)
}

/// Sets the status of the upload at `url` (as the media check or staff would).
pub async fn set_status(
    store: &DynStore,
    base: &str,
    url: &str,
    status: renji_shared::domain::media::MediaStatus,
) {
    let (owner, _, id) =
        renji_shared::domain::media::parse_url(base, url).expect("one of our URLs");
    store
        .write(
            renji_shared::store::Write::update(renji_shared::store::keys::media(&owner, &id))
                .set("status", serde_json::json!(status))
                .condition(renji_shared::store::Condition::Present, "upload_exists")
                .build(),
        )
        .await
        .expect("set the upload's status");
}

/// A check's end as the `checks` piece applies it: the upload at `url` becomes `status`, and
/// every entity in its `used_by` has the URL's hold set (`risky`/`rejected`: removed with
/// `reason`) or cleared (`passed`) through `media::holds::update`.
pub async fn end_check(
    app: &renji_shared::App,
    url: &str,
    status: renji_shared::domain::media::MediaStatus,
    reason: &str,
) {
    use renji_shared::domain::media::{holds, parse_url, Hold, MediaRecord, MediaStatus};
    use renji_shared::store::Records;
    let (owner, _, id) = parse_url(&app.config.media.base_url, url).expect("one of our URLs");
    let key = renji_shared::store::keys::media(&owner, &id);
    app.store
        .write(
            renji_shared::store::Write::update(key.clone())
                .set("status", serde_json::json!(status))
                .build(),
        )
        .await
        .expect("set the upload's status");
    let record: MediaRecord = app
        .store
        .get_record(&key)
        .await
        .expect("read the upload")
        .expect("the upload");
    let hold = match status {
        MediaStatus::Passed => None,
        MediaStatus::Risky | MediaStatus::Rejected => Some(Hold::Removed {
            reason: reason.into(),
        }),
        MediaStatus::Issued | MediaStatus::Checking => Some(Hold::Pending),
    };
    for subject in &record.used_by {
        holds::update(app, subject, url, hold.clone())
            .await
            .expect("fan the result out");
    }
}

/// A member of the local server: their session token and id.
pub struct Member {
    pub token: String,
    pub id: String,
}

/// The field names of a JSON object, sorted (empty for anything else).
pub fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// A status and parsed JSON body (Null when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl Reply {
    /// Asserts the api.md error shape and returns its code.
    pub fn error_code(&self) -> &str {
        let error = &self.body["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no error message in {self:?}"
        );
        error["code"].as_str().expect("error code")
    }

    /// The field a 422 names (empty when none).
    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: reqwest::Client,
}

impl Api {
    /// `POST /v1/listings` as `who`, which must answer 201: the listing created.
    pub async fn create_listing(&self, who: &Member, body: Value) -> Value {
        let reply = self
            .call("POST", "/v1/listings", Some(&who.token), Some(body))
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body
    }

    pub fn new(base: String) -> Self {
        Self::with_client(base, reqwest::Client::new())
    }

    pub fn with_client(base: String, client: reqwest::Client) -> Self {
        Api { base, client }
    }

    /// Sends a request; `body` is sent as-is with a JSON content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        self.send(method, path, token, body, &[]).await
    }

    /// [`Api::raw`] with more request headers (an `Idempotency-Key`, say).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let response = req.send().await.expect("request");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))
        };
        Reply {
            status,
            body,
            retry_after,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.raw(method, path, token, body.map(|b| b.to_string()))
            .await
    }

    /// Logs in through the sandbox WeChat as member `name`; returns (token, login reply body).
    pub async fn login(&self, name: &str) -> (String, Value) {
        let reply = self
            .call(
                "POST",
                "/v1/auth/wechat",
                None,
                Some(serde_json::json!({ "code": format!("sandbox:{name}") })),
            )
            .await;
        assert_eq!(reply.status, 200, "login failed: {reply:?}");
        let token = reply.body["token"].as_str().expect("token").to_owned();
        (token, reply.body)
    }

    /// Signs staff in through the sandbox WeCom with `code` (`staff:<name>:<role>`); their token.
    pub async fn staff_token(&self, code: &str) -> String {
        let reply = self
            .call(
                "POST",
                "/admin/v1/auth/wecom",
                None,
                Some(serde_json::json!({ "code": code })),
            )
            .await;
        assert_eq!(reply.status, 200, "staff sign-in failed: {reply:?}");
        reply.body["token"].as_str().expect("token").to_owned()
    }
}

/// Asserts that `function`'s IAM statements in `template.yaml` grant no DynamoDB action and no
/// `dynamodb:LeadingKeys` partition its requests in `running` did not use (the local server's
/// store enforcing those statements made the requests pass, so they are wide enough too).
pub fn assert_grants_all_used(running: &Running, function: &str) {
    let template = renji_local::template::Template::load().expect("template");
    let table = template.table_resource().expect("a table").to_owned();
    let policy = renji_local::policy::Policy::of(&template, function, &table).expect("policy");
    let (actions, partitions) = running.used(function).expect("function state");
    let unused_actions: Vec<_> = policy.actions().difference(&actions).cloned().collect();
    let unused_partitions: Vec<_> = policy
        .table_partitions()
        .difference(&partitions)
        .cloned()
        .collect();
    assert!(
        unused_actions.is_empty() && unused_partitions.is_empty(),
        "{function} is granted more than its requests here used: actions {unused_actions:?}, \
         partitions {unused_partitions:?}"
    );
}

/// A market to test orders on: a server without rate limits (these tests make many calls), a
/// verified seller with a published service, payable through WeChat Pay (their own account) and
/// Alipay, a buyer and a stranger (in no order).
pub struct Market {
    pub server: LocalServer,
    pub seller: Member,
    pub buyer: Member,
    pub stranger: Member,
    pub listing: String,
}

impl Market {
    pub async fn start(backend: Backend, config: &[(&str, &str)]) -> Self {
        let mut config = config.to_vec();
        config.push(("RENJI_RATE_LIMITS", "off"));
        let server = LocalServer::start_with(backend, &config).await;
        let seller = server.member("seller", true).await;
        server.bind_alipay(&seller).await;
        let buyer = server.member("buyer", false).await;
        let stranger = server.member("stranger", false).await;
        let listing = server
            .api
            .create_listing(&seller, service("婚礼跟拍"))
            .await["id"]
            .as_str()
            .expect("listing id")
            .to_owned();
        Market {
            server,
            seller,
            buyer,
            stranger,
            listing,
        }
    }
}

/// A stand-in for WeChat's content checks in domain-level tests, answering by the sandbox's
/// markers (`sandbox-risky`, `sandbox-review`, `sandbox-61010`, `sandbox-outage`) and counting
/// the texts it was asked about: the one the benchmark's fixture uses too.
pub use renji_local::sandbox::fakes::FakeWechat;

/// An API Gateway (HTTP API) request for `route` (`METHOD /path`, `{id}` filled with `id`, given
/// as the path parameter when not empty), from 198.51.100.9, with a bearer `token`, a JSON `body`
/// and `query` parameters: for calling a function's handler in-process.
pub fn gateway_request(
    route: &str,
    id: &str,
    token: Option<&str>,
    body: Option<Value>,
    query: &[(&str, &str)],
) -> lambda_http::Request {
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
    use lambda_http::aws_lambda_events::query_map::QueryMap;
    use lambda_http::request::RequestContext;
    use lambda_http::{Body, RequestExt};
    use std::collections::HashMap;
    let (method, template) = route.split_once(' ').expect("METHOD /path");
    let path = template.replace("{id}", id);
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route.to_owned());
    context.http.method = method.parse().expect("a method");
    context.http.path = Some(path.clone());
    context.http.source_ip = Some("198.51.100.9".to_owned());
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://api.example{path}"));
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(b) => {
            builder = builder.header("content-type", "application/json");
            Body::Text(b.to_string())
        }
        None => Body::Empty,
    };
    let query: HashMap<String, String> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut req = builder
        .body(body)
        .expect("a request")
        .with_request_context(RequestContext::ApiGatewayV2(context))
        .with_query_string_parameters(QueryMap::from(query));
    if !id.is_empty() {
        req = req.with_path_parameters(HashMap::from([("id".to_owned(), id.to_owned())]));
    }
    req
}

/// An unpaid order of `amount` fen for a photography service between two new members, created
/// at `at` and written as the orders function writes it (`orders::creation_writes`): the start
/// of the order-money and settlement tests that drive the domain directly.
pub async fn unpaid_order(
    app: &renji_shared::App,
    amount: i64,
    at: time::OffsetDateTime,
) -> renji_shared::domain::orders::Order {
    use renji_shared::domain::orders::{self, ListingSnapshot, Order, OrderStatus};
    use renji_shared::ids::{ListingId, OrderId, UserId};
    use renji_shared::money::Fen;
    let created = orders::rfc3339(at);
    let expires = at + time::Duration::minutes(30);
    let order = Order {
        id: OrderId::generate(),
        buyer_id: UserId::generate(),
        seller_id: UserId::generate(),
        listing: ListingSnapshot {
            id: ListingId::generate(),
            title: "婚礼跟拍".into(),
            kind: "service".into(),
            category: "photography".into(),
            city: "北京市".into(),
            price_fen: Fen::from_fen(amount),
            cover_url: None,
        },
        quantity: 1,
        amount_fen: Fen::from_fen(amount),
        refunded_fen: Fen::from_fen(0),
        remark: String::new(),
        service_date: None,
        status: OrderStatus::PendingPayment,
        created_at: created.clone(),
        updated_at: created.clone(),
        expires_at: orders::rfc3339(expires),
        payment: None,
        refund_request: None,
        refunds: Vec::new(),
        before_dispute: None,
        dispute_ticket: None,
        accepted_at: None,
        completed_at: None,
        timeline: vec![orders::Step {
            status: OrderStatus::PendingPayment,
            at: created,
            actor: orders::Actor::Buyer,
            reason: None,
        }],
        settle: Some(renji_shared::domain::settlement::SettleTerms::now(
            &app.config.settlement,
            "photography",
        )),
        split_deadline: None,
        settlement: None,
        due_at: Some(expires.unix_timestamp()),
        version: 1,
    };
    app.store
        .transact(orders::creation_writes(&order).expect("order writes"))
        .await
        .expect("order written");
    order
}
