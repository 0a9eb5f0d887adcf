//! `renji-local`: serves the whole API on loopback. See the README for options.

use std::net::SocketAddr;
use std::path::PathBuf;

use renji_local::logs::{self, Format};
use renji_local::{start, Options, StoreChoice};

const USAGE: &str = "usage: renji-local [--addr 127.0.0.1:3000] [--data-dir .renji-data] \
[--dynamodb-endpoint http://127.0.0.1:8000 [--table renji]] [--log-format auto|text|json]";

/// The options, and the folder `sandbox.json` is written to: the data folder (with
/// `--dynamodb-endpoint`, only one given by `--data-dir` or `RENJI_DATA_DIR`), and the log format.
fn parse_args() -> Result<(Options, Option<PathBuf>, Format), String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut addr = env("RENJI_LOCAL_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
    let mut given_dir = env("RENJI_DATA_DIR");
    let mut endpoint = env("RENJI_DYNAMODB_ENDPOINT");
    let mut log_format = env("RENJI_LOG_FORMAT");
    let mut table =
        env("RENJI_TABLE").unwrap_or_else(|| renji_shared::config::DEFAULT_TABLE.into());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--addr" => addr = value()?,
            "--data-dir" => given_dir = Some(value()?),
            "--dynamodb-endpoint" => endpoint = Some(value()?),
            "--table" => table = value()?,
            "--log-format" => log_format = Some(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("--addr {addr} is not host:port"))?;
    if !addr.ip().is_loopback() {
        return Err("the local server only listens on a loopback address".into());
    }
    let (store, sandbox_dir) = match endpoint {
        Some(endpoint) => (
            StoreChoice::Dynamo {
                endpoint,
                table_name: table,
            },
            given_dir.map(PathBuf::from),
        ),
        None => {
            let data_dir = PathBuf::from(given_dir.unwrap_or_else(|| ".renji-data".into()));
            (
                StoreChoice::Embedded {
                    data_dir: data_dir.clone(),
                },
                Some(data_dir),
            )
        }
    };
    let options = Options {
        addr,
        store,
        session_secret: env("RENJI_SESSION_SECRET"),
        config: Default::default(),
    };
    let format = logs::choose(log_format.as_deref())?;
    Ok((options, sandbox_dir, format))
}

#[tokio::main]
async fn main() {
    let (options, sandbox_dir, format) = match parse_args() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    logs::init(format);
    let running = match start(options.clone()).await {
        Ok(r) => r,
        Err(message) => {
            eprintln!("renji-local: {message}");
            std::process::exit(1);
        }
    };
    let store = match &options.store {
        StoreChoice::Embedded { data_dir } => format!("embedded store in {}", data_dir.display()),
        StoreChoice::Dynamo {
            endpoint,
            table_name,
        } => format!("DynamoDB {endpoint}, table {table_name}"),
    };
    println!("Renji API on {} ({store})", running.url());
    println!("Sandbox WeChat login on {}: any code logs in as one test member; `sandbox:<name>` as member <name> (`sandbox:union:<name>`: the same member, with a unionid)", running.wechat_base);
    println!("Sandbox WeChat server APIs on the same port: content checks (text with sandbox-risky is risky, sandbox-review goes to review; an image holding the bytes sandbox-risky is pushed risky), subscribe messages sent: curl -s {}/sandbox/wechat/messages; shipping records of accepted WeChat-paid orders: curl -s {}/sandbox/wechat/shipping", running.wechat_base, running.wechat_base);
    println!("Sandbox verifier on {}: a name starting with 拒绝 is rejected, 待定 pending until the verification job's next run (every few seconds here), 故障 an outage", running.verifier_url);
    println!("Sandbox WeChat Pay on {base}: pay a created payment with curl -s -X POST {base}/sandbox/pay -H 'content-type: application/json' -d '{{\"out_trade_no\":\"<order_no>\"}}' (\"notify\":false pays without notifying; POST {base}/sandbox/fail-refunds {{\"out_trade_no\"}} makes its refunds fail)", base = running.wechatpay_base);
    println!("Sandbox Alipay gateway {}: pay with curl -s -X POST {base}/sandbox/pay -H 'content-type: application/json' -d '{{\"order_string\":\"<the app's order string>\"}}' (or {{\"url\":\"<the wap URL>\"}}, {{\"out_trade_no\"}}; \"notify\":false; POST {base}/sandbox/fail-refunds {{\"out_trade_no\"}})", running.alipay_gateway, base = running.alipay_base);
    println!("Staff console: {}/console/ (sign in with staff:<name>:support, :moderator or :admin); API reference: {}/docs/", running.url(), running.url());
    println!("Try: curl -s -X POST {}/v1/auth/wechat -H 'content-type: application/json' -d '{{\"code\":\"sandbox:alice\"}}'", running.url());
    // The ports are chosen at start: scripts (the README's order-and-pay flow, the contract
    // step's seed) read them here.
    if let Some(dir) = sandbox_dir {
        let path = dir.join("sandbox.json");
        let urls = serde_json::json!({
            "api": running.url(),
            "wechat_login": running.wechat_base,
            "wechat": running.wechat_base,
            "verifier": running.verifier_url,
            "wechatpay": running.wechatpay_base,
            "alipay": running.alipay_base,
            "alipay_gateway": running.alipay_gateway,
        });
        match std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, format!("{urls:#}\n")))
        {
            Ok(()) => println!("Sandbox URLs in {}", path.display()),
            Err(e) => eprintln!("renji-local: {}: {e}", path.display()),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
