//! The media bucket's local stand-in: objects are files under the local server's data folder
//! (`<data-dir>/media/<key>`, beside each a `<key>.meta.json` with its content type and whether
//! it is public; owner-only files and folders), and the local server itself is the bucket:
//!
//! - `POST /local/media-upload` ([`UPLOAD_ROUTE`]) is the upload forms' `url`: it takes
//!   `multipart/form-data` as `wx.uploadFile` (or a browser form, or `curl -F`) sends it and
//!   enforces the POST policy as S3 does — the SigV4 signature with this server's own
//!   credentials (a session token included), the expiry, every condition (`bucket`, `eq`,
//!   `starts-with`, `content-length-range`), no field the policy does not name, `file` last —
//!   answering `204` or S3's XML errors (`400`/`403`).
//! - `GET /local/media/<key>` ([`SERVE_ROUTE`], `RENJI_MEDIA_BASE_URL` here) serves a public
//!   object to anyone, and one that is not public only through a link this adapter signed
//!   (`?expires=<epoch seconds>&sig=<HMAC>`), until it expires.
//!
//! These routes are the local server's own, like the sandbox stand-ins; they are not in
//! `template.yaml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use renji_shared::media_bucket::{
    self, MediaBucket, ObjectHead, PostForm, SignedLink, UploadPolicy,
};
use renji_shared::Error;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The upload forms' target.
pub const UPLOAD_ROUTE: &str = "/local/media-upload";
/// Where objects are served (`RENJI_MEDIA_BASE_URL` is the server's base + this).
pub const SERVE_ROUTE: &str = "/local/media";
/// The stand-in bucket's name (the policies' `bucket` condition).
pub const BUCKET: &str = "renji-local-media";
/// The stand-in's region (in the credential scope).
pub const REGION: &str = "cn-north-1";
/// The stand-in's access key id.
pub const ACCESS_KEY: &str = "ASIALOCALMEDIA";

/// An object's facts beside it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Meta {
    content_type: String,
    public: bool,
}

pub struct FileMediaBucket {
    /// `<data-dir>/media`.
    root: PathBuf,
    /// The local server's base URL.
    base_url: String,
    secret: String,
    token: String,
    links: ring::hmac::Key,
}

/// An S3-like refusal: status, code, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }

    fn policy(message: impl Into<String>) -> Self {
        Refusal::new(
            403,
            "AccessDenied",
            format!("Invalid according to Policy: {}", message.into()),
        )
    }

    /// S3's error document.
    pub fn xml(&self) -> String {
        let escape = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;");
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code,
            escape(&self.message)
        )
    }
}

fn internal(e: std::io::Error) -> Error {
    Error::Internal(format!("media file: {e}"))
}

impl FileMediaBucket {
    /// Objects under `data_dir/media/`, forms and links to `base_url`, credentials and link keys
    /// derived from `secret`.
    pub fn new(data_dir: &Path, base_url: &str, secret: &str) -> Self {
        let parent = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let derive = |label: &[u8]| URL_SAFE_NO_PAD.encode(ring::hmac::sign(&parent, label));
        let links = derive(b"renji-local-media-links-v1");
        FileMediaBucket {
            root: data_dir.join("media"),
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret: derive(b"renji-local-media-secret-v1"),
            token: derive(b"renji-local-media-session-v1"),
            links: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, links.as_bytes()),
        }
    }

    /// `RENJI_MEDIA_BASE_URL` for this stand-in.
    pub fn media_base_url(&self) -> String {
        format!("{}{SERVE_ROUTE}", self.base_url)
    }

    fn credentials(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            ACCESS_KEY,
            self.secret.clone(),
            Some(self.token.clone()),
            None,
            "local-media",
        )
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, Error> {
        let ok = key.starts_with("u/")
            && key.split('/').all(|part| {
                !part.is_empty()
                    && !part.starts_with('.')
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            })
            && !key.ends_with(".meta.json");
        if !ok {
            return Err(Error::Internal(format!("not an object key: {key:?}")));
        }
        Ok(self.root.join(key))
    }

    fn meta_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".meta.json");
        PathBuf::from(name)
    }

    fn read_meta(&self, key: &str) -> Result<Option<(PathBuf, Meta)>, Error> {
        let path = self.path_of(key)?;
        match std::fs::read(Self::meta_path(&path)) {
            Ok(bytes) => {
                let meta = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Internal(format!("media meta: {e}")))?;
                Ok(Some((path, meta)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(internal(e)),
        }
    }

    fn write_meta(path: &Path, meta: &Meta) -> Result<(), Error> {
        let bytes = serde_json::to_vec(meta).map_err(|e| Error::Internal(e.to_string()))?;
        write_file(&Self::meta_path(path), &bytes)
    }

    fn link_signature(&self, key: &str, expires: i64) -> String {
        let tag = ring::hmac::sign(&self.links, format!("{key}\n{expires}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// `GET /local/media/<key>[?expires=&sig=]` at `now`: the object's bytes and content type,
    /// or the status to answer (404 no such object, 403 not public and no good link).
    pub fn open(
        &self,
        path: &str,
        query: Option<&str>,
        now: i64,
    ) -> Result<(Vec<u8>, String), u16> {
        let key = path
            .strip_prefix(SERVE_ROUTE)
            .and_then(|k| k.strip_prefix('/'))
            .ok_or(404u16)?;
        let (file, meta) = self.read_meta(key).map_err(|_| 404u16)?.ok_or(404u16)?;
        if !meta.public {
            let params: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let expires: i64 = params
                .get("expires")
                .and_then(|e| e.parse().ok())
                .ok_or(403u16)?;
            let given = params
                .get("sig")
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                .ok_or(403u16)?;
            ring::hmac::verify(&self.links, format!("{key}\n{expires}").as_bytes(), &given)
                .map_err(|_| 403u16)?;
            if expires <= now {
                return Err(403);
            }
        }
        let bytes = std::fs::read(file).map_err(|_| 404u16)?;
        Ok((bytes, meta.content_type))
    }

    /// `POST /local/media-upload`: the form `body` (`content_type` its header) checked against
    /// its policy at `now`, and the file stored.
    pub fn receive(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), Refusal> {
        let boundary = content_type.and_then(boundary).ok_or_else(|| {
            Refusal::new(
                412,
                "PreconditionFailed",
                "Bucket POST must be of the enclosure-type multipart/form-data",
            )
        })?;
        let parts = multipart(body, &boundary).ok_or_else(|| {
            Refusal::new(
                400,
                "MalformedPOSTRequest",
                "The body of your POST request is not well-formed multipart/form-data.",
            )
        })?;
        // Fields up to the file; S3 ignores whatever follows it.
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut file: Option<&[u8]> = None;
        for part in parts {
            if part.name.eq_ignore_ascii_case("file") {
                file = Some(part.data);
                break;
            }
            let value = String::from_utf8(part.data.to_vec()).map_err(|_| {
                Refusal::new(
                    400,
                    "InvalidArgument",
                    format!("field {} is not UTF-8", part.name),
                )
            })?;
            if fields
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(&part.name))
            {
                return Err(Refusal::new(
                    400,
                    "InvalidArgument",
                    format!("POST requires exactly one value of {}", part.name),
                ));
            }
            fields.push((part.name.to_owned(), value));
        }
        let file = file.ok_or_else(|| {
            Refusal::new(
                400,
                "InvalidArgument",
                "POST requires exactly one file upload per request.",
            )
        })?;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let required = |name: &str| {
            field(name).ok_or_else(|| {
                Refusal::new(
                    400,
                    "InvalidArgument",
                    format!("Bucket POST must contain a field named '{name}'."),
                )
            })
        };
        let key = required("key")?;
        let policy_b64 = required("policy")?;
        let algorithm = required("x-amz-algorithm")?;
        let credential = required("x-amz-credential")?;
        let amz_date = required("x-amz-date")?;
        let signature = required("x-amz-signature")?;
        // The signature: this server's key, the scope the credential names, the policy as sent.
        if algorithm != "AWS4-HMAC-SHA256" {
            return Err(Refusal::new(
                400,
                "InvalidArgument",
                "unsupported x-amz-algorithm",
            ));
        }
        let scope: Vec<&str> = credential.split('/').collect();
        let bad_credential =
            || Refusal::new(403, "InvalidAccessKeyId", "The credential is not valid.");
        if scope.len() != 5 || scope[0] != ACCESS_KEY {
            return Err(bad_credential());
        }
        if scope[2] != REGION || scope[3] != "s3" || scope[4] != "aws4_request" {
            return Err(Refusal::new(
                400,
                "AuthorizationQueryParametersError",
                "the credential's scope is not this bucket's",
            ));
        }
        let day = parse_day(scope[1]).ok_or_else(bad_credential)?;
        if !amz_date.starts_with(scope[1]) {
            return Err(Refusal::new(
                400,
                "AuthorizationQueryParametersError",
                "x-amz-date is not the credential's day",
            ));
        }
        let expected = media_bucket::policy_signature(&self.secret, day, REGION, policy_b64);
        // A stand-in on loopback: a plain comparison is enough here.
        if expected != signature {
            return Err(Refusal::new(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ));
        }
        if field("x-amz-security-token") != Some(self.token.as_str()) {
            return Err(Refusal::new(
                403,
                "InvalidToken",
                "The provided token is malformed or otherwise invalid.",
            ));
        }
        // The policy document.
        let document: serde_json::Value = STANDARD
            .decode(policy_b64)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                Refusal::new(400, "InvalidPolicyDocument", "Invalid Policy: not JSON")
            })?;
        let expiration = document
            .get("expiration")
            .and_then(serde_json::Value::as_str)
            .and_then(|e| {
                OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).ok()
            })
            .ok_or_else(|| {
                Refusal::new(
                    400,
                    "InvalidPolicyDocument",
                    "Invalid Policy: no expiration",
                )
            })?;
        if now >= expiration {
            return Err(Refusal::policy("Policy expired."));
        }
        let conditions = document
            .get("conditions")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| {
                Refusal::new(
                    400,
                    "InvalidPolicyDocument",
                    "Invalid Policy: no conditions",
                )
            })?;
        let mut named: Vec<String> = Vec::new();
        let mut range: Option<(u64, u64)> = None;
        for condition in conditions {
            let (name, check) = parse_condition(condition).ok_or_else(|| {
                Refusal::new(
                    400,
                    "InvalidPolicyDocument",
                    format!("Invalid Policy: Invalid Condition: {condition}"),
                )
            })?;
            match check {
                Check::Range(min, max) => range = Some((min, max)),
                Check::Eq(value) | Check::StartsWith(value) if name == "bucket" => {
                    if value != BUCKET {
                        return Err(Refusal::policy(format!(
                            "Policy Condition failed: [\"eq\", \"$bucket\", \"{value}\"]"
                        )));
                    }
                }
                Check::Eq(value) => {
                    named.push(name.clone());
                    if field(&name) != Some(value.as_str()) {
                        return Err(Refusal::policy(format!(
                            "Policy Condition failed: [\"eq\", \"${name}\", \"{value}\"]"
                        )));
                    }
                }
                Check::StartsWith(prefix) => {
                    named.push(name.clone());
                    if !field(&name).is_some_and(|v| v.starts_with(&prefix)) {
                        return Err(Refusal::policy(format!(
                            "Policy Condition failed: [\"starts-with\", \"${name}\", \"{prefix}\"]"
                        )));
                    }
                }
            }
        }
        // Every field but these must be named by a condition.
        for (name, _) in &fields {
            let lower = name.to_ascii_lowercase();
            let exempt = ["x-amz-signature", "policy", "file"].contains(&lower.as_str())
                || lower.starts_with("x-ignore-");
            if !exempt && !named.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err(Refusal::policy(format!("Extra input fields: {name}")));
            }
        }
        let size = file.len() as u64;
        if let Some((min, max)) = range {
            if size > max {
                return Err(Refusal::new(
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size",
                ));
            }
            if size < min {
                return Err(Refusal::new(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size",
                ));
            }
        }
        let path = self
            .path_of(key)
            .map_err(|_| Refusal::new(400, "InvalidArgument", "not a key of this bucket"))?;
        let stored = (|| {
            if let Some(parent) = path.parent() {
                owner_dir(parent)?;
            }
            write_file(&path, file)?;
            Self::write_meta(
                &path,
                &Meta {
                    content_type: field("Content-Type")
                        .unwrap_or("binary/octet-stream")
                        .to_owned(),
                    public: false,
                },
            )
        })();
        stored.map_err(|e| Refusal::new(500, "InternalError", e.to_string()))
    }
}

enum Check {
    Eq(String),
    StartsWith(String),
    Range(u64, u64),
}

/// One policy condition: the field it names (without `$`, lower-cased but for `Content-Type`
/// matched case-insensitively anyway) and its check.
fn parse_condition(condition: &serde_json::Value) -> Option<(String, Check)> {
    use serde_json::Value;
    match condition {
        Value::Object(map) if map.len() == 1 => {
            let (name, value) = map.iter().next()?;
            Some((name.clone(), Check::Eq(value.as_str()?.to_owned())))
        }
        Value::Array(items) => match items.first()?.as_str()? {
            "content-length-range" if items.len() == 3 => Some((
                "content-length".into(),
                Check::Range(items[1].as_u64()?, items[2].as_u64()?),
            )),
            op @ ("eq" | "starts-with") if items.len() == 3 => {
                let name = items[1].as_str()?.strip_prefix('$')?.to_owned();
                let value = items[2].as_str()?.to_owned();
                Some((
                    name,
                    match op {
                        "eq" => Check::Eq(value),
                        _ => Check::StartsWith(value),
                    },
                ))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Midnight UTC of a `yyyymmdd` day.
fn parse_day(text: &str) -> Option<SystemTime> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = text[..4].parse().ok()?;
    let month: u8 = text[4..6].parse().ok()?;
    let day: u8 = text[6..].parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(date.midnight().assume_utc().into())
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

struct Part<'a> {
    name: String,
    data: &'a [u8],
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The parts of a `multipart/form-data` body, in order (RFC 7578), each with its field name.
fn multipart<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
    let delimiter = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        let rest = body.get(at..)?;
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        if !rest.starts_with(b"\r\n") {
            return None;
        }
        let headers_start = at + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start)?;
        let headers = std::str::from_utf8(&body[headers_start..headers_end]).ok()?;
        let name = headers.split("\r\n").find_map(|line| {
            let (header, value) = line.split_once(':')?;
            if !header.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            value.split(';').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
            })
        })?;
        let data_start = headers_end + 4;
        let end = find(body, next.as_bytes(), data_start)?;
        parts.push(Part {
            name,
            data: &body[data_start..end],
        });
        at = end + next.len();
    }
}

/// Creates `dir` and its parents, owner-only where new.
fn owner_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(internal)
}

/// Writes an owner-only (0600) file whole (aside, then renamed).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write as _;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial).map_err(internal)?;
    crate::server::owner_only(&file).map_err(internal)?;
    file.write_all(bytes).map_err(internal)?;
    std::fs::rename(&partial, path).map_err(internal)
}

#[async_trait]
impl MediaBucket for FileMediaBucket {
    async fn post_form(&self, policy: &UploadPolicy) -> Result<PostForm, Error> {
        self.path_of(&policy.key)?;
        media_bucket::post_form(
            &self.credentials(),
            REGION,
            BUCKET,
            &format!("{}{UPLOAD_ROUTE}", self.base_url),
            policy,
            OffsetDateTime::now_utc(),
        )
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, Error> {
        let Some((path, meta)) = self.read_meta(key)? else {
            return Ok(None);
        };
        let size = std::fs::metadata(path).map_err(internal)?.len();
        Ok(Some(ObjectHead {
            size,
            content_type: meta.content_type,
        }))
    }

    async fn set_public(&self, key: &str, public: bool) -> Result<(), Error> {
        let (path, meta) = self
            .read_meta(key)?
            .ok_or_else(|| Error::Unavailable(format!("no such object: {key}")))?;
        Self::write_meta(&path, &Meta { public, ..meta })
    }

    async fn link(&self, key: &str, lifetime: Duration) -> Result<SignedLink, Error> {
        self.path_of(key)?;
        let lifetime = lifetime.min(renji_shared::s3::MAX_LINK);
        let now = OffsetDateTime::now_utc();
        let expires_at = now + lifetime;
        let expires = expires_at.unix_timestamp();
        Ok(SignedLink {
            url: format!(
                "{}/{key}?expires={expires}&sig={}",
                self.media_base_url(),
                self.link_signature(key, expires)
            ),
            expires_at,
        })
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let path = self.path_of(key)?;
        for file in [Self::meta_path(&path), path.clone()] {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(internal(e)),
                _ => {}
            }
        }
        // Empty folders (they name the member) go with their last object.
        let mut folder = path.parent().map(Path::to_owned);
        while let Some(dir) = folder {
            if dir == self.root || std::fs::remove_dir(&dir).is_err() {
                break;
            }
            folder = dir.parent().map(Path::to_owned);
        }
        Ok(())
    }
}

/// The fields of a form, in the order given, then the file (for tests and the README's curl).
pub fn form_body(boundary: &str, fields: &[(&str, &str)], file: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some(bytes) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// The form of `form` as ordered pairs (its fields, as `BTreeMap` keeps them).
pub fn fields_of(form: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
