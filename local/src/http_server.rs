//! A minimal HTTP/1.1 server on a bound listener, shared by the local API and the sandbox
//! provider stand-ins.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub type HttpRequest = hyper::Request<Incoming>;
pub type HttpResponse = hyper::Response<Full<Bytes>>;
pub type Handler =
    Arc<dyn Fn(HttpRequest) -> Pin<Box<dyn Future<Output = HttpResponse> + Send>> + Send + Sync>;

/// Serves `handler` on `listener` until the returned task is aborted or the runtime ends.
/// Connections belong to the task, so aborting it closes them too (and frees the state they hold).
pub fn spawn(listener: TcpListener, handler: Handler) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            let handler = Arc::clone(&handler);
            connections.spawn(async move {
                let service = service_fn(move |req| {
                    let handler = Arc::clone(&handler);
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// A response with a JSON body.
pub fn json(status: u16, body: &serde_json::Value) -> HttpResponse {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}
