//! Hand-signed S3 requests (`aws-sigv4`), shared by the export archive (`archive.rs`) and the
//! media bucket (`media_bucket.rs`): the SDK's S3 client would add minutes of build and megabytes
//! to every zip for the few calls used. [`S3Client`] is one bucket (virtual-hosted, or path style
//! behind a configured endpoint); [`sign`] signs a request or a link as S3 wants it.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::OnceCell;

use crate::error::Error;

/// The most a presigned S3 link may last (SigV4: 7 days).
pub const MAX_LINK: Duration = Duration::from_secs(7 * 24 * 3600);

/// The largest answer read from S3 (the XML of a multipart call).
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// A client of one S3 bucket: its endpoint, credentials, and signed requests.
pub struct S3Client {
    http: reqwest::Client,
    bucket: String,
    region: String,
    /// `https://<bucket>.s3.<region>.amazonaws.com[.cn]` (virtual-hosted), or a configured
    /// endpoint followed by `/<bucket>` (path style: a stand-in).
    base: String,
    credentials: OnceCell<SharedCredentialsProvider>,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// What to sign: a request sent now, or a link.
pub(crate) enum Signing {
    Headers,
    Presign(Duration),
}

/// A request signed: the URL to call (with its query) and the headers to send.
#[derive(Debug)]
pub struct Signed {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl S3Client {
    /// The regional base of `bucket`: `amazonaws.com.cn` in the China regions (partition
    /// `aws-cn`).
    pub fn default_base(bucket: &str, region: &str) -> String {
        let domain = crate::secrets::aws_domain(region);
        format!("https://{bucket}.s3.{region}.{domain}")
    }

    /// `endpoint` (path style, `<endpoint>/<bucket>`) overrides the regional one; `variable` names
    /// the setting the bucket came from (in errors).
    pub fn new(
        variable: &str,
        bucket: &str,
        region: &str,
        endpoint: Option<&str>,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<Self, Error> {
        let bad = |m: String| Error::Config(m);
        // DNS-compatible bucket names only, so the virtual-hosted name is a valid host.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !bucket.starts_with('-')
            && !bucket.ends_with('-');
        if !bucket_ok {
            return Err(bad(format!(
                "{variable} {bucket:?} is not a bucket name of a-z 0-9 -"
            )));
        }
        if !crate::secrets::is_region(region) {
            return Err(bad("AWS_REGION is not set or not a region name".into()));
        }
        let base = match endpoint {
            None => Self::default_base(bucket, region),
            Some(e) => {
                let url = url::Url::parse(e)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                    .ok_or_else(|| bad(format!("S3 endpoint {e} is not a URL")))?;
                format!("{}/{bucket}", url.as_str().trim_end_matches('/'))
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::Unavailable(format!("HTTP client: {e}")))?;
        let cell = OnceCell::new();
        if let Some(c) = credentials {
            let _ = cell.set(c);
        }
        Ok(S3Client {
            http,
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            base,
            credentials: cell,
        })
    }

    /// Configured as the SDK would be: `AWS_REGION`, `AWS_ENDPOINT_URL_S3` (unless
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), credentials from the environment (where
    /// Lambda puts them) or else the SDK's default chain, on first need.
    pub fn from_env(variable: &str, bucket: &str) -> Result<Self, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_default();
        let ignore = var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = match ignore {
            true => None,
            false => var("AWS_ENDPOINT_URL_S3"),
        };
        Self::new(variable, bucket, &region, endpoint.as_deref(), None)
    }

    pub async fn credentials(&self) -> Result<aws_credential_types::Credentials, Error> {
        let provider = self
            .credentials
            .get_or_try_init(|| async {
                if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
                    return Ok::<_, Error>(SharedCredentialsProvider::new(
                        aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
                    ));
                }
                let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(crate::app::https_client(&crate::app::Roots::System))
                    .load()
                    .await;
                sdk.credentials_provider()
                    .ok_or_else(|| Error::Unavailable("no AWS credentials for S3".into()))
            })
            .await?;
        provider
            .provide_credentials()
            .await
            .map_err(|e| Error::Unavailable(format!("AWS credentials: {e}")))
    }

    /// The bucket's URL (S3's POST Object target).
    pub fn bucket_url(&self) -> &str {
        &self.base
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The object's URL (keys are made of URL-safe characters only: `exports/<member>/<id>.json`,
    /// `u/<member>/<purpose>/<id>.<ext>`).
    pub fn object_url(&self, key: &str) -> Result<String, Error> {
        let ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
        if !ok {
            return Err(Error::Internal(format!("not an object key: {key:?}")));
        }
        Ok(format!("{}/{key}", self.base))
    }

    /// Sends a signed request; any answer but a success (or a 200 with an error in it) is an
    /// error.
    pub async fn send(
        &self,
        method: &str,
        url: String,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, String), Error> {
        let (status, headers, text) = self.send_raw(method, url, headers, body).await?;
        // CompleteMultipartUpload may answer 200 with an error in its body.
        if !status.is_success() || text.contains("<Error>") {
            let code = xml_field(&text, "Code").unwrap_or_default();
            return Err(Error::Unavailable(format!("S3 answered {status} {code}")));
        }
        Ok((status, headers, text))
    }

    /// Sends a signed request and answers whatever S3 answered.
    pub async fn send_raw(
        &self,
        method: &str,
        url: String,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, String), Error> {
        let credentials = self.credentials().await?;
        let signed = sign(
            &credentials,
            &self.region,
            method,
            &url,
            headers,
            &body,
            Signing::Headers,
            SystemTime::now(),
        )?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut request = self.http.request(method, &signed.url).body(body);
        for (name, value) in &signed.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let unavailable =
            |e: reqwest::Error| Error::Unavailable(format!("S3: {}", e.without_url()));
        let mut response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(Error::Unavailable("S3: oversized reply".into()));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    }

    /// A presigned GET of `key`, good for `expires_in` (at most [`MAX_LINK`]) from `now`.
    pub async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String, Error> {
        let credentials = self.credentials().await?;
        let url = self.object_url(key)?;
        let signed = sign(
            &credentials,
            &self.region,
            "GET",
            &url,
            &[],
            &[],
            Signing::Presign(expires_in.min(MAX_LINK)),
            SystemTime::now(),
        )?;
        Ok(signed.url)
    }
}

/// The text of the first `<name>…</name>` in `xml` (S3's answers are flat enough for this).
pub(crate) fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml[start..end].to_owned())
}

pub(crate) fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Signs one S3 request (headers, with `x-amz-content-sha256`) or a link (query string,
/// `X-Amz-Expires`, `UNSIGNED-PAYLOAD`), as S3 wants it: no path normalisation, the path
/// encoded once.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sign(
    credentials: &aws_credential_types::Credentials,
    region: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    signing: Signing,
    time: SystemTime,
) -> Result<Signed, Error> {
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
        SignatureLocation, SigningSettings, UriPathNormalizationMode,
    };
    let failed = |e: String| Error::Internal(format!("signing: {e}"));
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let body = match signing {
        Signing::Headers => {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            SignableBody::Bytes(body)
        }
        Signing::Presign(expires) => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
            SignableBody::UnsignedPayload
        }
    };
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| failed(e.to_string()))?
        .into();
    let signable = SignableRequest::new(method, url, headers.iter().copied(), body)
        .map_err(|e| failed(e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(e.to_string()))?
        .into_parts();
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .map_err(|e| failed(e.to_string()))?;
    for (name, value) in headers {
        let value = http::HeaderValue::from_str(value).map_err(|e| failed(e.to_string()))?;
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| failed(e.to_string()))?,
            value,
        );
    }
    instructions.apply_to_request_http1x(&mut request);
    Ok(Signed {
        url: request.uri().to_string(),
        headers: request
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_credentials() -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        )
    }

    fn example_time() -> SystemTime {
        // 2013-05-24T00:00:00Z, the time of AWS's published S3 SigV4 examples.
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    /// AWS's published example of a presigned URL ("Authenticating Requests: Using Query
    /// Parameters (AWS Signature Version 4)", Amazon S3 API Reference).
    #[test]
    fn a_link_is_signed_as_in_the_s3_documentation() {
        let signed = sign(
            &example_credentials(),
            "us-east-1",
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[],
            &[],
            Signing::Presign(Duration::from_secs(86400)),
            example_time(),
        )
        .unwrap();
        let url = url::Url::parse(&signed.url).unwrap();
        let query: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/test.txt");
        assert_eq!(query["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(
            query["X-Amz-Credential"],
            "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
        );
        assert_eq!(query["X-Amz-Date"], "20130524T000000Z");
        assert_eq!(query["X-Amz-Expires"], "86400");
        assert_eq!(query["X-Amz-SignedHeaders"], "host");
        assert_eq!(
            query["X-Amz-Signature"],
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    /// AWS's published example of a signed GET Object ("Authenticating Requests: Using the
    /// Authorization Header", example "GET Object").
    #[test]
    fn a_request_is_signed_as_in_the_s3_documentation() {
        let signed = sign(
            &example_credentials(),
            "us-east-1",
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[("range", "bytes=0-9")],
            &[],
            Signing::Headers,
            example_time(),
        )
        .unwrap();
        let header = |name: &str| {
            signed
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            header("x-amz-content-sha256"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            header("authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn the_endpoint_follows_the_partition_and_bad_names_are_refused() {
        assert_eq!(
            S3Client::default_base("renji-exports", "cn-north-1"),
            "https://renji-exports.s3.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            S3Client::default_base("renji-exports", "ap-east-1"),
            "https://renji-exports.s3.ap-east-1.amazonaws.com"
        );
        let archive = S3Client::new(
            "RENJI_EXPORT_BUCKET",
            "b-1x",
            "cn-north-1",
            Some("http://127.0.0.1:9/"),
            None,
        )
        .unwrap();
        assert_eq!(
            archive.object_url("exports/u_1/x.json").unwrap(),
            "http://127.0.0.1:9/b-1x/exports/u_1/x.json"
        );
        assert!(archive.object_url("exports/../x?y").is_err());
        assert!(
            S3Client::new("RENJI_EXPORT_BUCKET", "Bad_Bucket", "us-east-1", None, None).is_err()
        );
        assert!(S3Client::new("RENJI_EXPORT_BUCKET", "bucket", "", None, None).is_err());
        assert_eq!(
            xml_field("<a><UploadId>x.y-z</UploadId></a>", "UploadId").as_deref(),
            Some("x.y-z")
        );
    }
}
