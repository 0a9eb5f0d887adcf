//! Each function binary as Lambda runs it: spawned with Lambda's environment against the Runtime
//! API stand-in, cold started several times, then invoked warm with each of its routes' events.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use renji_shared::App;
use tokio::process::{Child, Command};

use crate::events::RouteEvent;
use crate::fixture::{self, Member, Sandboxes};
use crate::runtime_api::{status_of, Outcome, RuntimeApi};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The variants measured beside each function's template configuration.
pub const SECRETS_IN_ENV: &str = "secrets in env";
pub const CHINA_REGION: &str = "cn-north-1";

/// One binary to benchmark.
#[derive(Clone)]
pub struct Target {
    /// The binary's name (`users`, or `hello` for the baseline).
    pub binary: String,
    /// Its function's logical id in `template.yaml` (none for the baseline).
    pub function: Option<String>,
    pub path: PathBuf,
    /// Its configuration variables, as `template.yaml` gives them, with local values.
    pub env: Vec<(String, String)>,
    /// Its routes, each with its event; the first is the cold starts' event.
    pub routes: Vec<RouteEvent>,
    /// A variant of a function's configuration, measured for comparison only (cold starts, no
    /// warm invocations): what differs from the template's, e.g. `secrets in env`.
    pub variant: Option<&'static str>,
    /// Whether its first invocation must answer 2xx (a variant may not reach its data).
    pub strict: bool,
}

/// What one process did.
pub struct Run {
    pub init: Duration,
    pub first: Duration,
    /// Warm latencies, per route (empty on runs that only cold start).
    pub warm: Vec<(String, Vec<Duration>)>,
    /// VmHWM, kB, read just before the process was stopped.
    pub peak_rss_kb: u64,
}

/// The variables `template.yaml` gives `function` (globals and its own), with local values:
/// the benchmark's table and secret, the sandbox WeChat. An unknown variable is an error, so a
/// new one is not silently left out.
pub fn template_env(
    function: &str,
    table: &str,
    sandboxes: &Sandboxes,
) -> Result<Vec<(String, String)>, String> {
    let names = renji_local::template::Template::load()?.function_env(function);
    let local = fixture::function_env(table, sandboxes);
    let mut env = Vec::new();
    for (name, value) in names {
        let value = match (local.get(name.as_str()), &value) {
            // Set empty on purpose (a notify function's `RENJI_SESSION_SECRET_ARN: ""`).
            (_, serde_yaml::Value::String(plain)) if plain.is_empty() => String::new(),
            (Some(v), _) => v.clone(),
            (None, serde_yaml::Value::String(plain)) => plain.to_owned(),
            (None, _) => {
                return Err(format!(
                    "{function}: the benchmark has no local value for {name} (bench/src/fixture.rs)"
                ))
            }
        };
        // The providers' API addresses are not in the template (production's are the
        // defaults): the stand-ins' are given beside the variable that turns each on.
        let base = match name.as_str() {
            "WECHAT_APPID" => Some(("WECHAT_API_BASE", &sandboxes.wechat_base)),
            "WECOM_CORP_ID" => Some(("WECOM_API_BASE", &sandboxes.wecom_base)),
            "WECHATPAY_MCHID" => Some(("WECHATPAY_API_BASE", &sandboxes.wechatpay_base)),
            "ALIPAY_APP_ID" => Some(("ALIPAY_GATEWAY", &sandboxes.alipay_gateway)),
            // IM's REST API (the deletion job's account deletion): a closed loopback port, so a
            // call fails at once and is retried by a later run, as an outage would be.
            "TENCENT_IM_SDKAPPID" => Some(("TENCENT_IM_API_BASE", &sandboxes.closed_base)),
            "RENJI_MEDIA_BUCKET" => Some(("AWS_ENDPOINT_URL_S3", &sandboxes.s3_base)),
            _ => None,
        };
        if let Some((variable, url)) = base {
            env.push((variable.to_owned(), url.clone()));
        }
        env.push((name, value));
    }
    Ok(env)
}

/// The environment Lambda gives every function (`provided.al2023`, 128 MB), with fake
/// credentials, DynamoDB pointed at `dynamodb_endpoint` and Secrets Manager at its stand-in
/// through the SDK's standard variables, so the production configuration path (`aws_config`
/// loading, the secrets adapter) is the one measured.
fn lambda_env(
    api: &RuntimeApi,
    binary: &str,
    dynamodb_endpoint: &str,
    secrets_manager: &str,
    home: &Path,
) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("renji-{binary}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/renji-{binary}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]bench".into(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        // DynamoDB Local keeps one database per access key and region: the runner's client
        // (`dynamodb_client`, which created the table) uses `local` in us-east-1.
        ("AWS_ACCESS_KEY_ID", "local".into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
        ("AWS_SESSION_TOKEN", "bench-session-token".into()),
        ("AWS_ENDPOINT_URL", dynamodb_endpoint.into()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint.into()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_manager.into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
        ("HOME", home.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn peak_rss_kb(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM in /proc/<pid>/status".into())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Context shared by every run of every binary.
pub struct Bench<'a> {
    pub dynamodb_endpoint: &'a str,
    /// The Secrets Manager stand-in.
    pub secrets_manager: &'a str,
    /// The functions' state over the same table: makes sessions for the events.
    pub app: &'a App,
    pub member: &'a Member,
    pub scratch: &'a Path,
}

impl Bench<'_> {
    async fn event(&self, route: &RouteEvent) -> Result<Bytes, String> {
        self.member.event_bytes(self.app, route).await
    }

    /// Starts `target` cold, invokes it once, then `warm` times per route; stops it.
    pub async fn run(&self, target: &Target, warm: usize) -> Result<Run, String> {
        let first_route = target
            .routes
            .first()
            .ok_or_else(|| format!("{}: no route to invoke", target.binary))?;
        let first_event = self.event(first_route).await?;
        let log = self.scratch.join(format!("{}.log", target.binary));
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut api = RuntimeApi::start().await?;
        let mut command = Command::new(&target.path);
        command
            .env_clear()
            .envs(lambda_env(
                &api,
                &target.binary,
                self.dynamodb_endpoint,
                self.secrets_manager,
                self.scratch,
            ))
            .envs(target.env.iter().cloned())
            .current_dir(self.scratch)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", target.path.display()))?;
        let result = self
            .drive(&mut api, &mut child, target, spawned, first_event, warm)
            .await;
        let _ = child.kill().await;
        result.map_err(|e| format!("{}: {e}\n{}", target.binary, log_tail(&log)))
    }

    async fn drive(
        &self,
        api: &mut RuntimeApi,
        child: &mut Child,
        target: &Target,
        spawned: Instant,
        first_event: Bytes,
        warm: usize,
    ) -> Result<Run, String> {
        let polled = tokio::select! {
            polled = api.next_poll(TIMEOUT) => polled?,
            status = child.wait() => {
                return Err(format!("exited before polling for an event ({})",
                    status.map(|s| s.to_string()).unwrap_or_default()))
            }
        };
        let init = polled.saturating_duration_since(spawned);
        let (first, outcome) = api.invoke(first_event, TIMEOUT).await?;
        if target.strict {
            check(&target.routes[0], &outcome)?;
        }
        let mut warm_runs = Vec::new();
        if warm > 0 {
            for route in &target.routes {
                let mut samples = Vec::with_capacity(warm);
                for _ in 0..warm {
                    let event = self.event(route).await?;
                    let (latency, outcome) = api.invoke(event, TIMEOUT).await?;
                    check(route, &outcome)?;
                    samples.push(latency);
                }
                warm_runs.push((route.route.clone(), samples));
            }
        }
        let pid = child.id().ok_or("the process is gone")?;
        Ok(Run {
            init,
            first,
            warm: warm_runs,
            peak_rss_kb: peak_rss_kb(pid)?,
        })
    }
}

/// Every measured invocation must succeed: a benchmark of error answers is worthless.
/// A scheduled function's run succeeds when it answers (its result is its report).
fn check(route: &RouteEvent, outcome: &Outcome) -> Result<(), String> {
    if route.is_scheduled() {
        return status_of(outcome).map(|_| ()).or_else(|e| match outcome {
            Outcome::Response(_) => Ok(()),
            Outcome::Error(_) => Err(format!("{}: {e}", route.route)),
        });
    }
    match status_of(outcome)? {
        s if (200..300).contains(&s) => Ok(()),
        s => Err(format!("{} answered {s}", route.route)),
    }
}

/// The size of `binary` zipped as `bootstrap` (deflate), as Lambda deploys it.
pub fn zip_size(binary: &Path, scratch: &Path) -> Result<u64, String> {
    let dir = scratch.join("zip");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::copy(binary, dir.join("bootstrap"))
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let status = std::process::Command::new("zip")
        .args(["-q", "-X", "bootstrap.zip", "bootstrap"])
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("zip: {e} (scripts/bench installs it)"))?;
    if !status.success() {
        return Err(format!("zip failed: {status}"));
    }
    std::fs::metadata(dir.join("bootstrap.zip"))
        .map(|m| m.len())
        .map_err(|e| e.to_string())
}

/// Groups routes by the function serving them.
pub fn routes_by_function(routes: &[RouteEvent]) -> HashMap<String, Vec<RouteEvent>> {
    let mut map: HashMap<String, Vec<RouteEvent>> = HashMap::new();
    for r in routes {
        map.entry(r.function.clone()).or_default().push(r.clone());
    }
    map
}
