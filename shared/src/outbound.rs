//! Answers of the outside services Renji calls (WeChat, the identity verifier), read with a size
//! cap: a provider (or whatever answers at its address) cannot make a function buffer an
//! unbounded body.

use std::sync::OnceLock;
use std::time::Duration;

/// A provider adapter's HTTP client, built on its first call rather than at init (rustls and its
/// roots: a cold start that never calls the provider never pays for them): 5 s per call, 2 s to
/// connect.
pub fn client(cell: &OnceLock<reqwest::Client>) -> Result<&reqwest::Client, String> {
    if let Some(http) = cell.get() {
        return Ok(http);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    Ok(cell.get_or_init(|| http))
}

/// The largest answer read from a provider; theirs are a few hundred bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The body of `response`, or why it could not be read: over `cap` bytes (by its
/// `Content-Length` or as it streams in), or a transport error (without the URL, which may hold
/// a secret).
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("answer over {cap} bytes");
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves `response` (raw HTTP/1.1 bytes) to every connection on a loopback port; returns
    /// its base URL.
    pub(crate) async fn serve(response: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let _ = stream.read(&mut buf).await;
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        url
    }

    /// A 200 answer whose JSON body is padded to `size` bytes, with a `Content-Length` or chunked.
    pub(crate) fn padded(json_prefix: &str, size: usize, chunked: bool) -> Vec<u8> {
        let pad = size.saturating_sub(json_prefix.len() + 12);
        let body = format!("{json_prefix}\"pad\":\"{}\"}}", "a".repeat(pad));
        let mut out = if chunked {
            let mut out =
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                    .to_vec();
            for part in body.as_bytes().chunks(4096) {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            return out;
        } else {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes()
        };
        out.extend_from_slice(body.as_bytes());
        out
    }

    #[tokio::test]
    async fn answers_are_read_up_to_the_cap() {
        for chunked in [false, true] {
            let small = serve(padded("{", 1000, chunked)).await;
            let response = reqwest::get(&small).await.unwrap();
            assert!(read_capped(response, 2048).await.unwrap().len() >= 990);

            let large = serve(padded("{", 100_000, chunked)).await;
            let response = reqwest::get(&large).await.unwrap();
            let err = read_capped(response, MAX_ANSWER_BYTES).await.unwrap_err();
            assert!(err.contains("over"), "{err}");
        }
    }
}
