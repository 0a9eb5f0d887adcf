//! What a rate limit adds to a limited call: `ratelimit::check` as a function runs it before the
//! handler (the token's signature checked for the subject, then the counter's conditional
//! UpdateItem), timed on DynamoDB Local and on the embedded store, for a call under the limit
//! (the counter grows) and one over it (the condition fails: 429, nothing written).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use renji_shared::config::Config;
use renji_shared::ids::UserId;
use renji_shared::ratelimit::{self, Class, Limit};
use renji_shared::session::Claims;
use renji_shared::store::dynamo::DynamoStore;
use renji_shared::store::embedded::EmbeddedStore;
use renji_shared::store::schema::TABLE;
use renji_shared::store::DynStore;
use renji_shared::App;
use serde_json::{json, Value};

use crate::stats::{ms, percentile};

/// A member's `PATCH /v1/me`, as API Gateway hands it over.
fn request(token: &str) -> Request {
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some("PATCH /v1/me".into());
    context.http.source_ip = Some("203.0.113.10".into());
    lambda_http::http::Request::builder()
        .method("PATCH")
        .uri("https://api.renji.world/v1/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::Empty)
        .unwrap_or_default()
        .with_request_context(RequestContext::ApiGatewayV2(context))
}

async fn time_calls(app: &App, limit: Limit, token: &str, iterations: usize) -> Vec<Duration> {
    let req = request(token);
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let _ = ratelimit::check(app, limit, &req).await;
        samples.push(started.elapsed());
    }
    samples
}

async fn measure_on(store: DynStore, name: &str, iterations: usize) -> Result<Vec<Value>, String> {
    // `write` never runs out here; `share` is spent after its first call.
    let config = Config::from_lookup(|var| match var {
        "RENJI_SESSION_SECRET" => Some("renji-bench-rate-limit-secret-32-bytes!".into()),
        "RENJI_RATE_LIMITS" => Some("write=1000000000/86400,share=1/86400".into()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    let app = App::new(config, store).map_err(|e| e.to_string())?;
    let token = app
        .tokens()
        .await
        .map_err(|e| e.to_string())?
        .sign(&Claims {
            user_id: UserId::generate(),
            session_id: "bench".into(),
            expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
        });
    let warm_up = iterations / 10 + 1;
    let mut rows = Vec::new();
    for (call, limit) in [
        (
            "under the limit (counter grows)",
            Limit::Member(Class::Write),
        ),
        (
            "over the limit (429, nothing written)",
            Limit::Member(Class::Share),
        ),
    ] {
        time_calls(&app, limit, &token, warm_up).await;
        let samples = time_calls(&app, limit, &token, iterations).await;
        rows.push(json!({
            "store": name,
            "call": call,
            "p50_ms": ms(percentile(&samples, 50.0)),
            "p99_ms": ms(percentile(&samples, 99.0)),
            "iterations": iterations,
        }));
    }
    Ok(rows)
}

/// Times the limiter on both stores.
pub async fn measure(
    dynamodb_endpoint: &str,
    scratch: &std::path::Path,
    iterations: usize,
) -> Result<Vec<Value>, String> {
    let embedded = EmbeddedStore::open(&scratch.join("limiter.redb"), TABLE)
        .map_err(|e| format!("embedded store: {e}"))?;
    let mut rows = measure_on(Arc::new(embedded), "embedded", iterations).await?;
    let client = renji_shared::app::dynamodb_client(Some(dynamodb_endpoint)).await;
    let table = format!(
        "bench-limiter-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    renji_local::tables::create_table(&client, &table).await?;
    let dynamo = DynamoStore::new(client, table, TABLE);
    rows.extend(measure_on(Arc::new(dynamo), "DynamoDB Local", iterations).await?);
    Ok(rows)
}
