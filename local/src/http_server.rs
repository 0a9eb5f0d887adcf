//! A minimal HTTP/1.1 server on a bound listener, shared by the local API and the sandbox
//! provider stand-ins.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub type HttpRequest = hyper::Request<Incoming>;

/// The address of the connection a request came on, in the request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::SocketAddr);
pub type HttpResponse = hyper::Response<Full<Bytes>>;
pub type Handler =
    Arc<dyn Fn(HttpRequest) -> Pin<Box<dyn Future<Output = HttpResponse> + Send>> + Send + Sync>;

/// Serves `handler` on `listener` until the returned task is aborted or the runtime ends.
/// Connections belong to the task, so aborting it closes them too (and frees the state they hold).
pub fn spawn(listener: TcpListener, handler: Handler) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            let handler = Arc::clone(&handler);
            connections.spawn(async move {
                let service = service_fn(move |mut req: HttpRequest| {
                    let handler = Arc::clone(&handler);
                    req.extensions_mut().insert(Peer(peer));
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(ErrorShaped::new(stream)), service)
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

/// hyper answers a request it cannot parse by itself, with an empty body: 400 (a malformed
/// request line or header), 414 (a URI over 65,534 bytes) and 431 (more than 100 headers, or a
/// head over its buffer). This connection wrapper swaps such an answer for the same status in
/// the API's error shape. hyper writes it as a bare head with `content-length: 0` and no
/// `content-type` (no answer of ours has no content type), then closes the connection.
struct ErrorShaped<S> {
    inner: S,
    /// A replacement answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> ErrorShaped<S> {
    fn new(inner: S) -> Self {
        ErrorShaped {
            inner,
            pending: None,
        }
    }
}

/// The error-shaped answer for one of hyper's own bodiless error heads, if `buf` is one.
fn shaped_answer(buf: &[u8]) -> Option<Vec<u8>> {
    let (status, code, message) = match buf.get(..13)? {
        b"HTTP/1.1 400 " => (
            "400 Bad Request",
            "bad_request",
            "the request line or a header is malformed",
        ),
        b"HTTP/1.1 414 " => (
            "414 URI Too Long",
            "uri_too_long",
            "the request URI is over 65534 bytes",
        ),
        b"HTTP/1.1 431 " => (
            "431 Request Header Fields Too Large",
            "headers_too_large",
            "the request has too many headers, or they are too large",
        ),
        _ => return None,
    };
    let head = std::str::from_utf8(buf).ok()?.to_ascii_lowercase();
    let bare = head.ends_with("\r\n\r\n")
        && head.matches("\r\n\r\n").count() == 1
        && head.contains("\r\ncontent-length: 0\r\n")
        && !head.contains("\r\ncontent-type:");
    if !bare {
        return None;
    }
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    Some(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncWrite + Unpin> ErrorShaped<S> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ErrorShaped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ErrorShaped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(answer) = shaped_answer(buf) {
            self.pending = Some((answer, 0));
            // Taken whole: what is not written now is on the next write, flush or shutdown.
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Unvectored, hyper writes a head in one contiguous buffer that can be recognised.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_error_heads_are_reshaped() {
        let bare = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 04:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(shaped_answer(bare).unwrap()).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
            "{answer}"
        );
        let body: serde_json::Value =
            serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "uri_too_long");
        // Our own answers carry a content type (and a body): left alone.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(shaped_answer(ours).is_none());
        let with_body = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
        assert!(shaped_answer(with_body).is_none());
        assert!(shaped_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
