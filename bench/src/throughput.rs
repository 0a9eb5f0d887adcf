//! Local API throughput: the release `renji-local` on the embedded store, loaded by `wrk` on
//! loopback for a bounded time per route.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::Command;

/// The routes measured. `GET /v1/listings/{id}` is measured once the template has it; until
/// then its row says so. `GET /v1/users/{id}` is today's public GET of one object.
pub const ROUTES: &[&str] = &["GET /v1/listings/{id}", "GET /v1/me", "GET /v1/users/{id}"];

/// wrk prints its summary as one JSON line through this script.
const WRK_SCRIPT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"#;

pub struct Load {
    pub threads: u32,
    pub connections: u32,
    pub seconds: u32,
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &str,
) -> Result<Value, String> {
    send_json(client, reqwest::Method::POST, url, token, body).await
}

async fn send_json(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: &str,
) -> Result<Value, String> {
    let mut req = client
        .request(method.clone(), url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let response = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if !(200..300).contains(&status) {
        return Err(format!("{method} {url} answered {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}"))
}

/// Runs the measurement; `binary` is the release `renji-local`, `root` the checkout (events/).
pub async fn measure(
    binary: &Path,
    root: &Path,
    scratch: &Path,
    load: &Load,
) -> Result<Vec<Value>, String> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let data_dir = scratch.join("local-data");
    let mut server = Command::new(binary)
        .args(["--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&data_dir)
        .env("RUST_LOG", "info")
        .env("RENJI_RATE_LIMITS", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let result = measure_on(&base, root, scratch, load).await;
    let _ = server.kill().await;
    result
}

async fn measure_on(
    base: &str,
    root: &Path,
    scratch: &Path,
    load: &Load,
) -> Result<Vec<Value>, String> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let login_url = format!("{base}/v1/auth/wechat");
    let login = loop {
        match post_json(&client, &login_url, None, r#"{"code":"sandbox:bench"}"#).await {
            Ok(v) => break v,
            Err(e) if started.elapsed() > Duration::from_secs(30) => {
                return Err(format!("renji-local did not answer: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let token = login["token"]
        .as_str()
        .ok_or("login without token")?
        .to_owned();
    let user_id = login["user"]["id"]
        .as_str()
        .ok_or("login without user")?
        .to_owned();
    let template_routes: Vec<String> = renji_local::template::Template::load()?
        .routes()
        .iter()
        .map(|r| r.key())
        .collect();
    let script = scratch.join("wrk-report.lua");
    std::fs::write(&script, WRK_SCRIPT).map_err(|e| e.to_string())?;

    let mut rows = Vec::new();
    for route in ROUTES {
        if !template_routes.iter().any(|r| r == route) {
            rows.push(json!({"route": route, "skipped": "not in template.yaml yet"}));
            continue;
        }
        let path = match *route {
            "GET /v1/me" => "/v1/me".to_owned(),
            "GET /v1/users/{id}" => format!("/v1/users/{user_id}"),
            "GET /v1/listings/{id}" => {
                let id = create_listing(&client, base, root, &token).await?;
                format!("/v1/listings/{id}")
            }
            other => return Err(format!("no path for {other}")),
        };
        let url = format!("{base}{path}");
        // One request first: the load must be of successful answers.
        let check = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .status();
        if !check.is_success() {
            return Err(format!("{route} answered {check}"));
        }
        rows.push(run_wrk(route, &url, &token, &script, load).await?);
    }
    Ok(rows)
}

/// Creates a listing through the API with the body of `POST /v1/listings`'s sample event.
async fn create_listing(
    client: &reqwest::Client,
    base: &str,
    root: &Path,
    token: &str,
) -> Result<String, String> {
    let events = crate::events::load(root)?;
    let create = events
        .iter()
        .find(|e| e.route == "POST /v1/listings")
        .ok_or(
            "GET /v1/listings/{id} needs a listing, and template.yaml has no POST /v1/listings",
        )?;
    // Only a verified member publishes: verify through the API with the sample submission
    // (the sandbox verifier accepts it).
    let verify = events
        .iter()
        .find(|e| e.route == "POST /v1/me/verification")
        .ok_or("publishing needs POST /v1/me/verification")?;
    let submission = verify.event["body"].as_str().unwrap_or("{}");
    let url = format!("{base}/v1/me/verification");
    let verified = post_json(client, &url, Some(token), submission).await?;
    if verified["status"] != "verified" {
        return Err(format!("verification answered {verified}"));
    }
    // A priced service is published once its seller can be paid: their own WeChat account.
    let url = format!("{base}/v1/me/payout-accounts/wechat");
    send_json(client, reqwest::Method::PUT, &url, Some(token), "{}").await?;
    // Without the sample's images: a listing's media must be the member's own uploads.
    let mut body: Value = serde_json::from_str(create.event["body"].as_str().unwrap_or("{}"))
        .map_err(|e| format!("POST /v1/listings's sample body: {e}"))?;
    body["images"] = json!([]);
    let body = body.to_string();
    let listing = post_json(client, &format!("{base}/v1/listings"), Some(token), &body).await?;
    listing["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("POST /v1/listings answered no id: {listing}"))
}

async fn run_wrk(
    route: &str,
    url: &str,
    token: &str,
    script: &Path,
    load: &Load,
) -> Result<Value, String> {
    let output = Command::new("wrk")
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.seconds))
        .arg("--timeout")
        .arg("5s")
        .arg("-H")
        .arg(format!("authorization: Bearer {token}"))
        .arg("-s")
        .arg(script)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("wrk: {e} (scripts/bench installs it)"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let summary: Value = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("wrk printed no summary: {stdout}"))?;
    let number = |k: &str| summary[k].as_f64().unwrap_or(0.0);
    if number("status_errors") > 0.0 || number("socket_errors") > 0.0 {
        return Err(format!("{route}: wrk saw errors: {summary}"));
    }
    let seconds = number("duration_us") / 1e6;
    Ok(json!({
        "route": route,
        "requests": number("requests"),
        "seconds": (seconds * 100.0).round() / 100.0,
        "requests_per_sec": (number("requests") / seconds).round(),
        "p50_ms": number("p50_us") / 1e3,
        "p99_ms": number("p99_us") / 1e3,
        "max_ms": number("max_us") / 1e3,
        "threads": load.threads,
        "connections": load.connections,
    }))
}
