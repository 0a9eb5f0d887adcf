//! `renji-bench`: the benchmark (`scripts/bench` builds and runs it; see the README's
//! "Benchmarks"). Writes `<out>/latest.json` and `<out>/latest.md` and prints the tables.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use renji_bench::build::Workspace;
use renji_bench::events::{self, RouteEvent};
use renji_bench::lambda::{self, Bench, Run, Target};
use renji_bench::stats::{median, ms, percentile, ratio};
use renji_bench::throughput::Load;
use renji_bench::{cpu, fixture, limiter, report, requests, throughput};
use renji_shared::store::dynamo::DynamoStore;
use renji_shared::store::schema::TABLE;
use serde_json::{json, Value};

const USAGE: &str = "usage: renji-bench --dynamodb-endpoint URL [--cold-starts 30] [--warm 500] \
[--cpu-iterations 2000] [--seconds 10] [--out bench-results] [--no-build] \
[--only lambda,requests,nearby,cpu,api,limiter]";

struct Options {
    dynamodb_endpoint: String,
    cold_starts: usize,
    warm: usize,
    cpu_iterations: usize,
    load: Load,
    out: PathBuf,
    build: bool,
    /// The sections to run (all by default).
    only: Vec<String>,
}

impl Options {
    fn runs(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        dynamodb_endpoint: std::env::var("RENJI_TEST_DYNAMODB_ENDPOINT").unwrap_or_default(),
        cold_starts: 30,
        warm: 500,
        cpu_iterations: 2000,
        load: Load {
            threads: 2,
            connections: 32,
            seconds: 10,
        },
        out: PathBuf::from("bench-results"),
        build: true,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let number = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--dynamodb-endpoint" => options.dynamodb_endpoint = value()?,
            "--cold-starts" => options.cold_starts = number(value()?)?.max(1),
            "--warm" => options.warm = number(value()?)?.max(1),
            "--cpu-iterations" => options.cpu_iterations = number(value()?)?.max(10),
            "--seconds" => options.load.seconds = number(value()?)?.clamp(1, 60) as u32,
            "--out" => options.out = PathBuf::from(value()?),
            "--no-build" => options.build = false,
            "--only" => options.only = value()?.split(',').map(str::to_owned).collect(),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if options.dynamodb_endpoint.is_empty() {
        return Err(format!(
            "a DynamoDB Local endpoint is needed (scripts/bench starts one)\n{USAGE}"
        ));
    }
    Ok(options)
}

/// Logs go where a function's go, formatted the same way, then dropped: their cost counts.
fn quiet_logging() {
    renji_shared::logging::init_to(std::io::sink, renji_shared::logging::filter_from(None));
}

fn shell(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn mb(bytes: u64) -> f64 {
    (bytes as f64 / 1e6 * 100.0).round() / 100.0
}

/// Every binary's figures, as ratios to the first (hello).
fn lambda_figures(targets: &[Target], runs: &[Vec<Run>], sizes: &[(u64, u64)]) -> Vec<Value> {
    let figures: Vec<Value> = targets
        .iter()
        .zip(runs)
        .zip(sizes)
        .map(|((t, runs), (binary, zip))| {
            let inits: Vec<Duration> = runs.iter().map(|r| r.init).collect();
            let firsts: Vec<Duration> = runs.iter().map(|r| r.first).collect();
            let rss = runs.iter().map(|r| r.peak_rss_kb).max().unwrap_or(0);
            let warm: Vec<Value> = runs
                .iter()
                .flat_map(|r| &r.warm)
                .map(|(route, samples)| {
                    json!({
                        "route": route,
                        "invocations": samples.len(),
                        "p50_ms": ms(percentile(samples, 50.0)),
                        "p99_ms": ms(percentile(samples, 99.0)),
                    })
                })
                .collect();
            json!({
                "binary": t.binary,
                "function": t.function,
                "variant": t.variant,
                "init_ms": ms(median(&inits)),
                "init_ms_min": ms(inits.iter().min().copied().unwrap_or_default()),
                "init_ms_max": ms(inits.iter().max().copied().unwrap_or_default()),
                "first_invocation_ms": ms(median(&firsts)),
                "peak_rss_kb": rss,
                "peak_rss_mb": mb(rss * 1024),
                "binary_bytes": binary,
                "binary_mb": mb(*binary),
                "zip_bytes": zip,
                "zip_mb": mb(*zip),
                "warm": warm,
            })
        })
        .collect();
    let hello = figures[0].clone();
    let hello_p50 = hello["warm"][0]["p50_ms"].as_f64().unwrap_or(0.0);
    figures
        .into_iter()
        .map(|mut f| {
            let r = |k: &str| {
                ratio(
                    f[k].as_f64().unwrap_or(0.0),
                    hello[k].as_f64().unwrap_or(0.0),
                )
            };
            let ratios = json!({
                "init": r("init_ms"),
                "first_invocation": r("first_invocation_ms"),
                "peak_rss": r("peak_rss_kb"),
                "binary": r("binary_bytes"),
                "zip": r("zip_bytes"),
            });
            f["ratio_to_hello"] = ratios;
            if let Some(warm) = f["warm"].as_array_mut() {
                for w in warm {
                    w["p50_ratio_to_hello"] =
                        json!(ratio(w["p50_ms"].as_f64().unwrap_or(0.0), hello_p50));
                }
            }
            f
        })
        .collect()
}

fn worst<'a>(
    rows: impl Iterator<Item = &'a Value>,
    key: &str,
    label: impl Fn(&Value) -> String,
) -> Option<(f64, String)> {
    rows.filter_map(|r| Some((r[key].as_f64()?, label(r))))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

fn target_results(doc: &Value) -> Vec<Value> {
    let functions: Vec<&Value> = doc["lambda"]["binaries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| !b["function"].is_null() && b["variant"].is_null())
        .collect();
    let name = |b: &Value| b["binary"].as_str().unwrap_or("").to_owned();
    let mut out = Vec::new();
    let mut add = |target: &str, worst: String, met: bool| {
        out.push(json!({"target": target, "worst": worst, "met": met}));
    };
    let init_ratio = |f: &Value| f["ratio_to_hello"]["init"].as_f64().unwrap_or(0.0);
    if let Some(f) = functions
        .iter()
        .max_by(|a, b| init_ratio(a).total_cmp(&init_ratio(b)))
    {
        add(
            "init ≤ 1.2× hello's",
            format!(
                "{}: {:.2}× ({:.2} ms)",
                name(f),
                init_ratio(f),
                f["init_ms"].as_f64().unwrap_or(0.0)
            ),
            init_ratio(f) <= 1.2,
        );
    }
    if let Some((v, b)) = worst(functions.iter().copied(), "peak_rss_mb", name) {
        add(
            "peak RSS ≤ 32 MB per function",
            format!("{b}: {v:.2} MB"),
            v <= 32.0,
        );
    }
    if let Some((v, b)) = worst(functions.iter().copied(), "zip_mb", name) {
        add(
            "deployment zip ≤ 3 MB per function",
            format!("{b}: {v:.2} MB"),
            v <= 3.0,
        );
    }
    let store_rows: Vec<&Value> = doc["store_requests"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let above: Vec<String> = store_rows
        .iter()
        .filter(|r| r["within_target"] != true)
        .map(|r| {
            format!(
                "{} ({})",
                r["route"].as_str().unwrap_or(""),
                r["call"].as_str().unwrap_or("")
            )
        })
        .collect();
    let unexplained = store_rows.iter().any(|r| r["why"] == "UNEXPLAINED");
    add(
        "DynamoDB: GET = 1 read; change = 1 transaction or conditional write + needed reads; any route above says why",
        if above.is_empty() {
            "every route within".into()
        } else {
            format!("above, with the reason in the table: {}", above.join(", "))
        },
        !unexplained,
    );
    let label = |r: &Value| {
        format!(
            "{} ({})",
            r["route"].as_str().unwrap_or(""),
            r["call"].as_str().unwrap_or("")
        )
    };
    let cpu_rows = doc["handler_cpu"].as_array().into_iter().flatten();
    if let Some((v, r)) = worst(
        cpu_rows.filter(|r| r["outside_io"] != true),
        "p99_us",
        label,
    ) {
        add(
            "handler CPU p99 < 100 µs per warm request, without store I/O (routes without outside I/O; login's and verification's figures include their providers' exchange)",
            format!("{r}: {v:.1} µs"),
            v < 100.0,
        );
    }
    let api = doc["local_api"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["skipped"].is_null());
    let slowest = api
        .filter_map(|r| {
            Some((
                r["requests_per_sec"].as_f64()?,
                r["route"].as_str()?.to_owned(),
            ))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((v, r)) = slowest {
        add(
            "local API ≥ 10,000 GET requests/s (2 cores, embedded store)",
            format!("{r}: {v:.0}/s"),
            v >= 10_000.0,
        );
    }
    out
}

async fn run(options: Options) -> Result<Value, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let scratch = tempfile::TempDir::new().map_err(|e| e.to_string())?;
    // Nearby needs no binary: `--only nearby` measures it alone, without building anything.
    if options.only == ["nearby"] {
        quiet_logging();
        eprintln!("renji-bench: nearby in a dense city");
        let nearby =
            renji_bench::nearby::measure(&options.dynamodb_endpoint, scratch.path()).await?;
        return Ok(json!({
            "date": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| e.to_string())?,
            "command": "scripts/bench --only nearby",
            "git_commit": shell("git", &["rev-parse", "--short", "HEAD"]),
            "rustc": shell("rustc", &["--version"]),
            "machine": {
                "cpu": cpu_model(),
                "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            },
            "nearby": nearby,
        }));
    }
    let workspace = Workspace::load(&root)?;
    let template = renji_local::template::Template::load()?;
    let binaries = template.function_binaries();
    let mut builds = vec!["hello".to_owned(), "renji-local".to_owned()];
    builds.extend(binaries.values().cloned());
    // Only the Lambda and local API sections run the release binaries.
    let needs_binaries = options.runs("lambda") || options.runs("api");
    for binary in builds.iter().filter(|_| needs_binaries) {
        if options.build {
            workspace.build(&root, binary)?;
        } else if !workspace.release(binary).exists() {
            return Err(format!("{} is not built (drop --no-build)", binary));
        }
    }
    quiet_logging();

    let routes = events::load(&root)?;
    let (sandboxes, _sandbox_tasks) = fixture::Sandboxes::start().await?;

    // The functions' table in DynamoDB Local, a member and the state that makes sessions.
    let endpoint = options.dynamodb_endpoint.as_str();
    let table = format!("bench-{}", ulid::Ulid::new().to_string().to_lowercase());
    let client = renji_shared::app::dynamodb_client(Some(endpoint)).await;
    renji_local::tables::create_table(&client, &table).await?;
    let app = fixture::app(
        Arc::new(DynamoStore::new(client, table.clone(), TABLE)),
        &table,
        &sandboxes,
    )?;
    let member = fixture::login(&app, &routes, &sandboxes).await?;

    let mut by_function = lambda::routes_by_function(&routes);
    let any_event: Vec<RouteEvent> = routes.iter().take(1).cloned().collect();
    let mut targets = vec![Target {
        binary: "hello".into(),
        function: None,
        path: workspace.release("hello"),
        env: Vec::new(),
        routes: any_event,
        variant: None,
        strict: true,
    }];
    for (function, binary) in &binaries {
        // A scheduled function's "route" is its run (`SCHEDULE <binary>`).
        let mut own = by_function.remove(function).unwrap_or_default();
        if own.is_empty() {
            return Err(format!(
                "{function}: no route and no schedule to invoke it with"
            ));
        }
        own.sort_by(|a, b| a.name.cmp(&b.name));
        targets.push(Target {
            binary: binary.clone(),
            function: Some(function.clone()),
            path: workspace.release(binary),
            env: lambda::template_env(function, &table, &sandboxes)?,
            routes: own,
            variant: None,
            strict: true,
        });
    }
    // For comparison, each function cold started with its secrets' values in its environment
    // (the configuration before secrets were read at run time), and in a China region, where the
    // DynamoDB client loads the system's roots (the first invocation there cannot reach the
    // table, which DynamoDB Local keeps per region: only init counts).
    let literal = fixture::literal_secrets(&sandboxes);
    let functions: Vec<Target> = targets.iter().skip(1).map(Target::clone).collect();
    for base in functions {
        let in_env = base
            .env
            .iter()
            .map(|(name, value)| match name.strip_suffix("_ARN") {
                // An ARN set empty (a secret the function must not have) stays unset.
                Some(variable) if !value.is_empty() => {
                    (variable.to_owned(), literal[variable].clone())
                }
                _ => (name.clone(), value.clone()),
            })
            .collect();
        targets.push(Target {
            env: in_env,
            variant: Some(lambda::SECRETS_IN_ENV),
            ..base.clone()
        });
        let mut china = base.env.clone();
        china.push(("AWS_REGION".into(), "cn-north-1".into()));
        china.push(("AWS_DEFAULT_REGION".into(), "cn-north-1".into()));
        targets.push(Target {
            env: china,
            variant: Some(lambda::CHINA_REGION),
            strict: false,
            ..base
        });
    }
    let sizes = targets
        .iter()
        .filter(|_| options.runs("lambda"))
        .map(|t| {
            let size = std::fs::metadata(&t.path)
                .map_err(|e| format!("{}: {e}", t.path.display()))?
                .len();
            Ok((size, lambda::zip_size(&t.path, scratch.path())?))
        })
        .collect::<Result<Vec<_>, String>>()?;

    let bench = Bench {
        dynamodb_endpoint: endpoint,
        secrets_manager: &sandboxes.secrets_manager,
        app: &app,
        member: &member,
        scratch: scratch.path(),
    };
    let mut runs: Vec<Vec<Run>> = targets.iter().map(|_| Vec::new()).collect();
    let cold_starts = if options.runs("lambda") {
        options.cold_starts
    } else {
        0
    };
    // Rounds interleave the binaries, so a burst of load elsewhere hits them all alike.
    for round in 0..cold_starts {
        let warm = if round + 1 == cold_starts {
            options.warm
        } else {
            0
        };
        eprintln!(
            "renji-bench: cold start {}/{}{}",
            round + 1,
            options.cold_starts,
            if warm > 0 {
                format!(", then {warm} warm invocations per route")
            } else {
                String::new()
            }
        );
        // The order rotates too, so no binary always follows the same one.
        for i in 0..targets.len() {
            let k = (i + round) % targets.len();
            let warm = if targets[k].variant.is_some() {
                0
            } else {
                warm
            };
            runs[k].push(bench.run(&targets[k], warm).await?);
        }
    }
    let binaries_json = if cold_starts > 0 {
        lambda_figures(&targets, &runs, &sizes)
    } else {
        Vec::new()
    };

    let mut store_requests = Vec::new();
    if options.runs("requests") {
        eprintln!("renji-bench: DynamoDB requests per route");
        store_requests = requests::count(&routes, endpoint, &sandboxes, scratch.path()).await?;
    }
    let mut nearby = Value::Null;
    if options.runs("nearby") {
        eprintln!("renji-bench: nearby in a dense city");
        nearby = renji_bench::nearby::measure(endpoint, scratch.path()).await?;
    }
    let mut handler_cpu = Vec::new();
    if options.runs("cpu") {
        eprintln!(
            "renji-bench: handler CPU time ({} calls per route)",
            options.cpu_iterations
        );
        handler_cpu = cpu::handler_cpu(&routes, &sandboxes, options.cpu_iterations).await?;
    }
    let mut rate_limiter = Vec::new();
    if options.runs("limiter") {
        eprintln!("renji-bench: rate limiter per limited call");
        rate_limiter =
            limiter::measure(endpoint, scratch.path(), options.cpu_iterations.min(1000)).await?;
    }
    let mut local_api = Vec::new();
    if options.runs("api") {
        eprintln!(
            "renji-bench: local API throughput ({} s per route)",
            options.load.seconds
        );
        local_api = throughput::measure(
            &workspace.release("renji-local"),
            &root,
            scratch.path(),
            &options.load,
        )
        .await?;
    }

    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let mut doc = json!({
        "date": date,
        "command": "scripts/bench",
        "git_commit": shell("git", &["rev-parse", "--short", "HEAD"]),
        "rustc": shell("rustc", &["--version"]),
        "machine": {
            "cpu": cpu_model(),
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        },
        "lambda": {
            "cold_starts": options.cold_starts,
            "warm_invocations": options.warm,
            "binaries": binaries_json,
        },
        "store_requests": store_requests,
        "nearby": nearby,
        "handler_cpu": handler_cpu,
        "rate_limiter": rate_limiter,
        "local_api": local_api,
    });
    doc["targets"] = json!(target_results(&doc));
    Ok(doc)
}

fn write(out: &Path, doc: &Value, markdown: &str) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let json = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())?;
    std::fs::write(out.join("latest.json"), json + "\n").map_err(|e| e.to_string())?;
    std::fs::write(out.join("latest.md"), markdown).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let out = options.out.clone();
    let doc = match run(options).await {
        Ok(doc) => doc,
        Err(message) => {
            eprintln!("renji-bench: {message}");
            std::process::exit(1);
        }
    };
    let markdown = report::markdown(&doc);
    println!("{markdown}");
    if let Err(message) = write(&out, &doc, &markdown) {
        eprintln!("renji-bench: {message}");
        std::process::exit(1);
    }
    eprintln!(
        "renji-bench: wrote {} and {}",
        out.join("latest.json").display(),
        out.join("latest.md").display()
    );
}
