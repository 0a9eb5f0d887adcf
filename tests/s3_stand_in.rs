//! What the S3 adapters' tests (`s3_media.rs`, `s3_archive.rs`) share: a bucket stand-in served
//! on loopback (path style, as `AWS_ENDPOINT_URL_S3` selects), the temporary credentials the
//! adapter signs with, S3's replies. Each test's `serve` speaks the part of S3's REST protocol
//! its adapter uses. Included with `#[path]` (its HTTP crates are the tests' dev-dependencies).

use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use bytes::Bytes;
use http_body_util::Full;
use renji_local::http_server::{self, HttpRequest, HttpResponse};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub fn reply(status: u16, body: &str) -> HttpResponse {
    hyper::Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// A presigned GET's answer: the object's bytes, or 404 `NoSuchKey`.
pub fn object(bytes: Option<&Vec<u8>>) -> HttpResponse {
    match bytes {
        Some(bytes) => hyper::Response::builder()
            .status(200)
            .body(Full::new(Bytes::from(bytes.clone())))
            .unwrap(),
        None => reply(404, "<Error><Code>NoSuchKey</Code></Error>"),
    }
}

/// A function role's temporary credentials: `AKIDEXAMPLE` with the session token
/// `session-token` (what the stand-ins look for in each request).
pub fn credentials() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("session-token".into()),
        None,
        "test",
    ))
}

/// Serves `serve` over `bucket` on a loopback port: the endpoint and the server's task (the
/// server stops when the task is dropped with the runtime).
pub async fn spawn<B, F, Fut>(bucket: &Arc<Mutex<B>>, serve: F) -> (String, JoinHandle<()>)
where
    B: Send + 'static,
    F: Fn(Arc<Mutex<B>>, HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::clone(bucket);
    let serve = Arc::new(serve);
    let task = http_server::spawn(
        listener,
        Arc::new(move |req| {
            let state = Arc::clone(&state);
            let serve = Arc::clone(&serve);
            Box::pin(async move { serve(state, req).await })
        }),
    );
    (endpoint, task)
}
