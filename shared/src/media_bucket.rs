//! Where members' uploads are kept: the port ([`MediaBucket`]) and its S3 adapter
//! ([`S3MediaBucket`]). The local server has its own adapter (files under its data folder, with a
//! loopback upload endpoint that checks the same POST policy S3 would: `local/src/media.rs`).
//!
//! - **Uploads** go straight from the client to the bucket with S3's POST Object ([`post_form`]:
//!   a policy naming the exact key, the exact `Content-Type`, a `content-length-range`, the
//!   `x-amz-*` credential fields and a short expiry, signed with SigV4 — the Rust SDK has no POST
//!   policy signer).
//! - **Public** is an object tag, [`PUBLIC_TAG`] (`public=true`): the bucket policy lets the CDN
//!   (CloudFront with origin access control) read an object only while it carries that tag
//!   (`s3:ExistingObjectTag/public`), and nobody else reads it at all but through a signed link.
//!   Making an object public or not public is a `PutObjectTagging`.
//! - **Removal from the CDN** is by its short cache lifetime, not by invalidation: the
//!   distribution caches an object at most [`CDN_MAX_TTL_SECS`], so an object made not public or
//!   deleted is gone from every edge within that (invalidations are billed per path, are
//!   themselves asynchronous, and would need a second hand-signed API in both partitions).
//! - **Signed GET links** ([`MediaBucket::link`]) let the owner preview an object that is not
//!   public yet and WeChat's image check fetch it. A presigned S3 URL made with temporary (role)
//!   credentials stops working when those credentials' session ends, whatever its own expiry
//!   says, so the link's `expires_at` is the earlier of the asked lifetime and the credentials'
//!   expiry when the provider reports one (Lambda's environment credentials report none: they
//!   are the execution environment's, refreshed by Lambda with a new environment).
//!
//! IAM, for the functions given `RENJI_MEDIA_BUCKET`: a form carries its signer's
//! `s3:PutObject`, a link its signer's `s3:GetObject`; [`MediaBucket::set_public`] needs
//! `s3:PutObjectTagging`, [`MediaBucket::delete`] `s3:DeleteObject`, and [`MediaBucket::head`]
//! `s3:GetObject` plus `s3:ListBucket` on the bucket (without it S3 answers a missing object
//! with 403, which this adapter reports as an error rather than as absent).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use time::OffsetDateTime;

use crate::error::Error;
use crate::s3::{S3Client, MAX_LINK};

/// The tag the bucket policy lets the CDN read by.
pub const PUBLIC_TAG: (&str, &str) = ("public", "true");

/// The longest the CDN keeps an object (its cache policy's `MaxTTL`, `template.yaml`): how long
/// an object made not public or deleted may still be served from an edge.
pub const CDN_MAX_TTL_SECS: u64 = 600;

/// One upload's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPolicy {
    /// The exact object key.
    pub key: String,
    /// The exact `Content-Type` the form must send.
    pub content_type: String,
    /// The most bytes the file may have (the least is 1).
    pub max_bytes: u64,
    /// How long the form may be used.
    pub expires_in: Duration,
}

/// A presigned POST: send `fields` then the file (last, named `file`) as `multipart/form-data`
/// to `url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostForm {
    pub url: String,
    pub fields: BTreeMap<String, String>,
    pub expires_at: OffsetDateTime,
}

/// What the store says of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    pub content_type: String,
}

/// A link anyone holding it may GET an object with until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedLink {
    pub url: String,
    pub expires_at: OffsetDateTime,
}

/// The port: the private bucket of members' uploads.
#[async_trait]
pub trait MediaBucket: Send + Sync {
    /// A presigned POST for exactly `policy`'s key, type and size range.
    async fn post_form(&self, policy: &UploadPolicy) -> Result<PostForm, Error>;
    /// The object's size and content type; `None` when there is no such object.
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, Error>;
    /// Makes the object readable through the CDN (`public`) or not (tag [`PUBLIC_TAG`]).
    async fn set_public(&self, key: &str, public: bool) -> Result<(), Error>;
    /// A link to GET the object for `lifetime` (or less: see the module's notes).
    async fn link(&self, key: &str, lifetime: Duration) -> Result<SignedLink, Error>;
    /// Deletes the object (none is fine); the CDN forgets it within [`CDN_MAX_TTL_SECS`].
    async fn delete(&self, key: &str) -> Result<(), Error>;
}

/// The shared handle functions hold.
pub type DynMediaBucket = Arc<dyn MediaBucket>;

fn amz_date(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn policy_expiration(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// SigV4's signature of a POST policy: `hex(HMAC(kSigning, base64 policy))`, the signing key of
/// `secret`, the day of `date`, `region` and `s3`.
pub fn policy_signature(secret: &str, date: SystemTime, region: &str, policy_b64: &str) -> String {
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, date, region, "s3");
    aws_sigv4::sign::v4::calculate_signature(key, policy_b64.as_bytes())
}

/// The presigned POST form of `policy` for `bucket` at `url`, signed with `credentials` for
/// `region` at `now`. The form expires after `policy.expires_in`, or when the credentials do if
/// sooner.
pub fn post_form(
    credentials: &aws_credential_types::Credentials,
    region: &str,
    bucket: &str,
    url: &str,
    policy: &UploadPolicy,
    now: OffsetDateTime,
) -> Result<PostForm, Error> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let mut expires_at = now + policy.expires_in;
    if let Some(end) = credentials.expiry() {
        expires_at = expires_at.min(OffsetDateTime::from(end));
    }
    if expires_at <= now || policy.max_bytes == 0 {
        return Err(Error::Unavailable(
            "AWS credentials expire too soon to sign an upload".into(),
        ));
    }
    let date = amz_date(now);
    let credential = format!(
        "{}/{}/{region}/s3/aws4_request",
        credentials.access_key_id(),
        &date[..8]
    );
    let mut fields = BTreeMap::from([
        ("key".to_owned(), policy.key.clone()),
        ("Content-Type".to_owned(), policy.content_type.clone()),
        ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential".to_owned(), credential.clone()),
        ("x-amz-date".to_owned(), date),
    ]);
    if let Some(token) = credentials.session_token() {
        fields.insert("x-amz-security-token".into(), token.to_owned());
    }
    let mut conditions = vec![
        serde_json::json!({"bucket": bucket}),
        serde_json::json!(["eq", "$key", policy.key]),
        serde_json::json!(["eq", "$Content-Type", policy.content_type]),
        serde_json::json!(["content-length-range", 1, policy.max_bytes]),
    ];
    for (name, value) in &fields {
        if name.starts_with("x-amz-") {
            conditions.push(serde_json::json!({ name: value }));
        }
    }
    let document = serde_json::json!({
        "expiration": policy_expiration(expires_at),
        "conditions": conditions,
    });
    let policy_b64 = STANDARD.encode(document.to_string());
    let signature = policy_signature(
        credentials.secret_access_key(),
        now.into(),
        region,
        &policy_b64,
    );
    fields.insert("policy".into(), policy_b64);
    fields.insert("x-amz-signature".into(), signature);
    Ok(PostForm {
        url: url.to_owned(),
        fields,
        expires_at,
    })
}

/// The S3 adapter.
#[derive(Debug)]
pub struct S3MediaBucket {
    s3: S3Client,
}

impl S3MediaBucket {
    /// `endpoint` (path style, `<endpoint>/<bucket>`) overrides the regional one.
    pub fn new(
        bucket: &str,
        region: &str,
        endpoint: Option<&str>,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<Self, Error> {
        Ok(S3MediaBucket {
            s3: S3Client::new("RENJI_MEDIA_BUCKET", bucket, region, endpoint, credentials)?,
        })
    }

    /// Configured as the SDK would be (see [`S3Client::from_env`]).
    pub fn from_env(bucket: &str) -> Result<Self, Error> {
        Ok(S3MediaBucket {
            s3: S3Client::from_env("RENJI_MEDIA_BUCKET", bucket)?,
        })
    }
}

/// The `Tagging` document of an object public or not.
fn tagging(public: bool) -> String {
    let value = if public { PUBLIC_TAG.1 } else { "false" };
    format!(
        "<Tagging><TagSet><Tag><Key>{}</Key><Value>{value}</Value></Tag></TagSet></Tagging>",
        PUBLIC_TAG.0
    )
}

#[async_trait]
impl MediaBucket for S3MediaBucket {
    async fn post_form(&self, policy: &UploadPolicy) -> Result<PostForm, Error> {
        self.s3.object_url(&policy.key)?;
        let credentials = self.s3.credentials().await?;
        post_form(
            &credentials,
            self.s3.region(),
            self.s3.bucket(),
            self.s3.bucket_url(),
            policy,
            OffsetDateTime::now_utc(),
        )
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, Error> {
        let url = self.s3.object_url(key)?;
        let (status, headers, _) = self.s3.send_raw("HEAD", url, &[], Vec::new()).await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Error::Unavailable(format!("S3 answered {status} to HEAD")));
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let size = header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::Unavailable("S3: HEAD without a Content-Length".into()))?;
        Ok(Some(ObjectHead {
            size,
            content_type: header("content-type").unwrap_or_default().to_owned(),
        }))
    }

    async fn set_public(&self, key: &str, public: bool) -> Result<(), Error> {
        let url = format!("{}?tagging", self.s3.object_url(key)?);
        let body = tagging(public).into_bytes();
        // PutObjectTagging requires an integrity checksum (Content-MD5 or a flexible one).
        let checksum = STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, &body));
        let headers = [
            ("content-type", "application/xml"),
            ("x-amz-checksum-sha256", checksum.as_str()),
            ("x-amz-sdk-checksum-algorithm", "SHA256"),
        ];
        self.s3.send("PUT", url, &headers, body).await?;
        Ok(())
    }

    async fn link(&self, key: &str, lifetime: Duration) -> Result<SignedLink, Error> {
        let now = OffsetDateTime::now_utc();
        let mut lifetime = lifetime.min(MAX_LINK);
        let credentials = self.s3.credentials().await?;
        if let Some(end) = credentials.expiry() {
            let left = OffsetDateTime::from(end) - now;
            lifetime = lifetime.min(left.try_into().unwrap_or(Duration::ZERO));
        }
        if lifetime.is_zero() {
            return Err(Error::Unavailable("AWS credentials have expired".into()));
        }
        Ok(SignedLink {
            url: self.s3.presign_get(key, lifetime).await?,
            expires_at: now + lifetime,
        })
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let url = self.s3.object_url(key)?;
        self.s3.send("DELETE", url, &[], Vec::new()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's worked example of a POST policy signature ("Example: Browser-Based Upload using
    /// HTTP POST (Using AWS Signature Version 4)", Amazon S3 API Reference,
    /// `sigv4-post-example.html`): its base64 policy, credentials, day and region, and the
    /// signature it shows.
    #[test]
    fn a_policy_is_signed_as_in_the_s3_documentation() {
        let policy = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
        // The policy is the example's document (with its CRLF line ends).
        let text = String::from_utf8(STANDARD.decode(policy).unwrap()).unwrap();
        assert!(text.starts_with("{ \"expiration\": \"2015-12-30T12:00:00.000Z\",\r\n"));
        assert!(text.contains(
            "{\"x-amz-credential\": \"AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request\"}"
        ));
        // 2015-12-29T00:00:00Z.
        let day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_451_347_200);
        assert_eq!(
            policy_signature(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                day,
                "us-east-1",
                policy
            ),
            "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
        );
    }

    #[test]
    fn a_form_binds_the_key_type_size_and_session_token() {
        let credentials = aws_credential_types::Credentials::new(
            "ASIAEXAMPLE",
            "secret",
            Some("session-token".into()),
            None,
            "test",
        );
        // 2026-11-29T20:00:00Z
        let now = OffsetDateTime::from_unix_timestamp(1_795_982_400).unwrap();
        let policy = UploadPolicy {
            key: "u/u_1/avatar/m_1.jpg".into(),
            content_type: "image/jpeg".into(),
            max_bytes: 1000,
            expires_in: Duration::from_secs(300),
        };
        let form = post_form(
            &credentials,
            "cn-north-1",
            "media-b",
            "https://media-b.s3.cn-north-1.amazonaws.com.cn",
            &policy,
            now,
        )
        .unwrap();
        assert_eq!(form.expires_at, now + Duration::from_secs(300));
        let f = |name: &str| form.fields[name].as_str();
        assert_eq!(f("key"), "u/u_1/avatar/m_1.jpg");
        assert_eq!(f("Content-Type"), "image/jpeg");
        assert_eq!(f("x-amz-date"), "20261129T200000Z");
        assert_eq!(
            f("x-amz-credential"),
            "ASIAEXAMPLE/20261129/cn-north-1/s3/aws4_request"
        );
        assert_eq!(f("x-amz-security-token"), "session-token");
        let document: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(f("policy")).unwrap()).unwrap();
        assert_eq!(document["expiration"], "2026-11-29T20:05:00.000Z");
        let conditions = document["conditions"].as_array().unwrap();
        for expected in [
            serde_json::json!({"bucket": "media-b"}),
            serde_json::json!(["eq", "$key", "u/u_1/avatar/m_1.jpg"]),
            serde_json::json!(["eq", "$Content-Type", "image/jpeg"]),
            serde_json::json!(["content-length-range", 1, 1000]),
            serde_json::json!({"x-amz-security-token": "session-token"}),
            serde_json::json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}),
            serde_json::json!({"x-amz-date": "20261129T200000Z"}),
        ] {
            assert!(conditions.contains(&expected), "{expected} missing");
        }
        assert_eq!(
            f("x-amz-signature"),
            policy_signature("secret", now.into(), "cn-north-1", f("policy"))
        );
        // Credentials ending sooner shorten the form's life.
        let short = aws_credential_types::Credentials::new(
            "ASIAEXAMPLE",
            "secret",
            Some("t".into()),
            Some((now + Duration::from_secs(60)).into()),
            "test",
        );
        let form = post_form(&short, "cn-north-1", "media-b", "https://x", &policy, now).unwrap();
        assert_eq!(form.expires_at, now + Duration::from_secs(60));
        assert_eq!(
            tagging(true),
            "<Tagging><TagSet><Tag><Key>public</Key><Value>true</Value></Tag></TagSet></Tagging>"
        );
    }
}
