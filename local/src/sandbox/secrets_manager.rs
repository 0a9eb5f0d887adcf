//! A stand-in for AWS Secrets Manager's `GetSecretValue` (JSON 1.1 protocol), on loopback, so the
//! production adapter (`renji_shared::secrets::SecretsManager`) runs against it: the benchmark
//! points the functions at it with `AWS_ENDPOINT_URL_SECRETS_MANAGER`, tests rotate and remove
//! its secrets.
//!
//! - Each request must be SigV4-signed for `secretsmanager` with [`ACCESS_KEY`]/[`SECRET_KEY`]:
//!   the signature is computed again here from what arrived (403 otherwise).
//! - A secret it holds answers `{"ARN", "Name", "SecretString", "VersionId"}`; an unknown one
//!   `400 ResourceNotFoundException`, as the service does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http_server::{self, HttpRequest, HttpResponse};

/// The credentials requests must be signed with (the benchmark gives them to the functions).
pub const ACCESS_KEY: &str = "local";
pub const SECRET_KEY: &str = "local";

/// The secrets held, by id, and the reads served.
#[derive(Default)]
pub struct Secrets {
    values: Mutex<HashMap<String, String>>,
    reads: AtomicUsize,
}

impl Secrets {
    /// Sets (or rotates) a secret.
    pub fn put(&self, id: &str, value: &str) {
        if let Ok(mut values) = self.values.lock() {
            values.insert(id.to_owned(), value.to_owned());
        }
    }

    /// Removes a secret: reads of it fail as for a secret that does not exist.
    pub fn remove(&self, id: &str) {
        if let Ok(mut values) = self.values.lock() {
            values.remove(id);
        }
    }

    /// `GetSecretValue` calls answered with a value.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    fn get(&self, id: &str) -> Option<String> {
        self.values.lock().ok()?.get(id).cloned()
    }
}

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "SecretId")]
    secret_id: String,
}

fn fault(status: u16, kind: &str, message: &str) -> HttpResponse {
    http_server::json(status, &json!({"__type": kind, "message": message}))
}

/// Whether `req` (with its `body`) carries a valid SigV4 signature for `secretsmanager`.
fn signed(parts: &hyper::http::request::Parts, body: &[u8]) -> bool {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return false;
    };
    let field = |name: &str| {
        auth.split([' ', ','])
            .find_map(|p| p.strip_prefix(name))
            .map(str::to_owned)
    };
    let (Some(credential), Some(signed_headers), Some(signature)) = (
        field("Credential="),
        field("SignedHeaders="),
        field("Signature="),
    ) else {
        return false;
    };
    // Credential=<key>/<date>/<region>/secretsmanager/aws4_request
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[0] != ACCESS_KEY || scope[3] != "secretsmanager" {
        return false;
    }
    let Some(time) = header("x-amz-date").and_then(parse_amz_date) else {
        return false;
    };
    let Some(host) = header("host") else {
        return false;
    };
    let headers: Vec<(&str, &str)> = signed_headers
        .split(';')
        .filter(|h| !matches!(*h, "x-amz-date" | "x-amz-security-token"))
        .filter_map(|h| Some((h, header(h)?)))
        .collect();
    let session_token = header("x-amz-security-token").map(str::to_owned);
    let identity = aws_credential_types::Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        session_token,
        None,
        "stand-in",
    )
    .into();
    let Ok(params) = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(scope[2])
        .name("secretsmanager")
        .time(time)
        .settings(SigningSettings::default())
        .build()
    else {
        return false;
    };
    let params = params.into();
    let uri = format!("http://{host}{}", parts.uri.path());
    let Ok(request) = SignableRequest::new(
        parts.method.as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(body),
    ) else {
        return false;
    };
    sign(request, &params).is_ok_and(|out| out.signature() == signature)
}

/// `20260101T120000Z`.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at = time::PrimitiveDateTime::parse(text, &format).ok()?;
    Some(at.assume_utc().into())
}

async fn answer(req: HttpRequest, secrets: &Secrets) -> HttpResponse {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return fault(413, "InvalidRequestException", "too large"),
    };
    if parts.method != hyper::Method::POST
        || target.as_deref() != Some("secretsmanager.GetSecretValue")
    {
        return fault(400, "InvalidAction", "only GetSecretValue is served");
    }
    if !signed(&parts, &body) {
        return fault(403, "InvalidSignatureException", "bad signature");
    }
    let Ok(request) = serde_json::from_slice::<Request>(&body) else {
        return fault(400, "InvalidParameterException", "no SecretId");
    };
    match secrets.get(&request.secret_id) {
        None => fault(
            400,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        ),
        Some(value) => {
            secrets.reads.fetch_add(1, Ordering::SeqCst);
            http_server::json(
                200,
                &json!({
                    "ARN": request.secret_id,
                    "Name": request.secret_id,
                    "SecretString": value,
                    "VersionId": "stand-in",
                    "VersionStages": ["AWSCURRENT"],
                }),
            )
        }
    }
}

/// Starts the stand-in on `listener`; returns its endpoint URL, its secrets and its task.
pub fn spawn(listener: TcpListener) -> std::io::Result<(String, Arc<Secrets>, JoinHandle<()>)> {
    let url = format!("http://{}/", listener.local_addr()?);
    let secrets = Arc::new(Secrets::default());
    let served = Arc::clone(&secrets);
    let task = http_server::spawn(
        listener,
        Arc::new(move |req| {
            let secrets = Arc::clone(&served);
            Box::pin(async move { answer(req, &secrets).await })
        }),
    );
    Ok((url, secrets, task))
}
