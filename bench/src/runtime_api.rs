//! A stand-in for the Lambda Runtime API (the documented HTTP interface a custom runtime polls),
//! on loopback, driven one invocation at a time by the benchmark:
//!
//! - `GET  /2018-06-01/runtime/invocation/next`: long-polls until the driver hands out an event;
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `.../{id}/error`: the outcome;
//! - `POST /2018-06-01/runtime/init/error`: the function could not start.
//!
//! Every poll is reported to the driver with the instant it arrived, so "process start → first
//! poll" is the function's init time and "event handed out → response arrived" its latency.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use renji_local::http_server::{self, HttpRequest, HttpResponse};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

const PREFIX: &str = "/2018-06-01/runtime/";

/// A poll of `/invocation/next` waiting for its event.
struct Poll {
    at: Instant,
    reply: oneshot::Sender<(String, Bytes)>,
}

/// What the function answered to one invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Bytes),
    Error(Bytes),
}

enum Report {
    Poll(Poll),
    InitError(Bytes),
}

#[derive(Default)]
struct Shared {
    waiting: Mutex<HashMap<String, oneshot::Sender<(Instant, Outcome)>>>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    reports: mpsc::UnboundedReceiver<Report>,
    shared: Arc<Shared>,
    /// The poll the function is blocked in, once it has polled.
    ready: Option<Poll>,
    task: JoinHandle<()>,
    counter: u64,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn text(status: u16, body: &'static str) -> HttpResponse {
    hyper::Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap_or_default()
}

async fn serve(
    req: HttpRequest,
    reports: mpsc::UnboundedSender<Report>,
    shared: Arc<Shared>,
) -> HttpResponse {
    let at = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return text(404, "not found");
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(400, "unreadable body"),
    };
    let arrived = Instant::now().max(at);
    match (method.as_str(), rest) {
        ("GET", "invocation/next") => {
            let (reply, event) = oneshot::channel();
            if reports.send(Report::Poll(Poll { at, reply })).is_err() {
                return text(500, "driver gone");
            }
            let Ok((id, event)) = event.await else {
                return text(500, "driver gone");
            };
            let deadline = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 10_000;
            hyper::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", id)
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:bench",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
                )
                .body(Full::new(event))
                .unwrap_or_default()
        }
        ("POST", "init/error") => {
            let _ = reports.send(Report::InitError(body));
            text(202, "")
        }
        ("POST", rest) => {
            let Some(rest) = rest.strip_prefix("invocation/") else {
                return text(404, "not found");
            };
            let (id, outcome) = match rest.split_once('/') {
                Some((id, "response")) => (id, Outcome::Response(body)),
                Some((id, "error")) => (id, Outcome::Error(body)),
                _ => return text(404, "not found"),
            };
            let waiter = shared.waiting.lock().ok().and_then(|mut w| w.remove(id));
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send((arrived, outcome));
                    text(202, "")
                }
                None => text(400, "unknown request id"),
            }
        }
        _ => text(404, "not found"),
    }
}

impl RuntimeApi {
    pub async fn start() -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("runtime API stand-in: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, reports) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let for_server = Arc::clone(&shared);
        let task = http_server::spawn(
            listener,
            Arc::new(move |req| {
                let tx = tx.clone();
                let shared = Arc::clone(&for_server);
                Box::pin(serve(req, tx, shared))
            }),
        );
        Ok(RuntimeApi {
            addr,
            reports,
            shared,
            ready: None,
            task,
            counter: 0,
        })
    }

    /// Waits for the function's next poll; returns when it arrived.
    pub async fn next_poll(&mut self, timeout: Duration) -> Result<Instant, String> {
        if let Some(poll) = &self.ready {
            return Ok(poll.at);
        }
        let report = tokio::time::timeout(timeout, self.reports.recv())
            .await
            .map_err(|_| format!("the function did not poll for an event within {timeout:?}"))?
            .ok_or("runtime API stand-in stopped")?;
        match report {
            Report::Poll(poll) => {
                let at = poll.at;
                self.ready = Some(poll);
                Ok(at)
            }
            Report::InitError(body) => Err(format!(
                "the function reported an init error: {}",
                String::from_utf8_lossy(&body)
            )),
        }
    }

    /// Hands `event` to the waiting poll; returns the time until the outcome arrived, and it.
    pub async fn invoke(
        &mut self,
        event: Bytes,
        timeout: Duration,
    ) -> Result<(Duration, Outcome), String> {
        self.next_poll(timeout).await?;
        let poll = self.ready.take().ok_or("no poll waiting")?;
        self.counter += 1;
        let id = format!("bench-{:08}", self.counter);
        let (tx, rx) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .map_err(|_| "runtime API state poisoned")?
            .insert(id.clone(), tx);
        let start = Instant::now();
        poll.reply
            .send((id, event))
            .map_err(|_| "the function's poll went away")?;
        let (arrived, outcome) = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| format!("no response within {timeout:?}"))?
            .map_err(|_| "runtime API stand-in stopped")?;
        Ok((arrived.saturating_duration_since(start), outcome))
    }
}

/// The HTTP status inside a lambda_http (API Gateway v2) response, or why there is none.
pub fn status_of(outcome: &Outcome) -> Result<u16, String> {
    match outcome {
        Outcome::Error(body) => Err(format!(
            "invocation error: {}",
            String::from_utf8_lossy(body)
        )),
        Outcome::Response(body) => {
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| format!("response is not JSON ({e})"))?;
            value
                .get("statusCode")
                .and_then(serde_json::Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| format!("response without statusCode: {value}"))
        }
    }
}
