//! Where members' data exports are kept: the port ([`Archive`]) and its S3 adapter
//! ([`S3Archive`]). The local server has its own adapter (files under its data folder, served by
//! an HMAC-signed link of its own: `local/src/exports.rs`).
//!
//! An export is written as a multipart upload, one part at a time (every part but the last at
//! least [`Archive::min_part_bytes`]), so the job that builds it holds one part in memory however
//! large the document. The object is read only through a short-lived link ([`Archive::link`]).
//!
//! The S3 adapter signs its requests by hand with `aws-sigv4` (`s3.rs`, shared with the media
//! bucket), as `secrets.rs` signs Secrets Manager's: the SDK's S3 client would add minutes of
//! build and megabytes to every zip for the six calls used here (`CreateMultipartUpload`, `UploadPart`, `CompleteMultipartUpload`,
//! `AbortMultipartUpload`, `DeleteObject`, and a presigned `GetObject`). Every object is written
//! with SSE-KMS (`x-amz-server-side-encryption: aws:kms`; the bucket's default encryption is the
//! same, `template.yaml`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::error::Error;
use crate::s3::{encode, xml_field, S3Client};

/// One uploaded part: its number (from 1) and the ETag the store answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub etag: String,
}

/// The port: a private object store written by multipart upload and read by expiring links.
#[async_trait]
pub trait Archive: Send + Sync {
    /// The least size of every part but the last (S3: 5 MiB).
    fn min_part_bytes(&self) -> usize;
    /// Starts an upload of the object `key`; answers its upload id.
    async fn begin(&self, key: &str) -> Result<String, Error>;
    /// Uploads part `number` (from 1) of `upload`.
    async fn put_part(
        &self,
        key: &str,
        upload: &str,
        number: u32,
        bytes: Vec<u8>,
    ) -> Result<Part, Error>;
    /// Makes the object of `upload` from its `parts`, in order.
    async fn complete(&self, key: &str, upload: &str, parts: &[Part]) -> Result<(), Error>;
    /// Drops an upload and its parts (nothing is left of it).
    async fn abort(&self, key: &str, upload: &str) -> Result<(), Error>;
    /// A link anyone holding it may GET the object with, for `expires_in` from now.
    async fn link(&self, key: &str, expires_in: Duration) -> Result<String, Error>;
    /// Deletes the object (none is fine).
    async fn delete(&self, key: &str) -> Result<(), Error>;
}

/// The shared handle functions hold.
pub type DynArchive = Arc<dyn Archive>;

/// S3's least part size (but the last).
pub const S3_MIN_PART_BYTES: usize = 5 * 1024 * 1024;

pub use crate::s3::MAX_LINK;

/// The S3 adapter.
#[derive(Debug)]
pub struct S3Archive {
    s3: S3Client,
}

impl S3Archive {
    /// The regional base of `bucket`: `amazonaws.com.cn` in the China regions (partition
    /// `aws-cn`).
    pub fn default_base(bucket: &str, region: &str) -> String {
        S3Client::default_base(bucket, region)
    }

    /// `endpoint` (path style, `<endpoint>/<bucket>`) overrides the regional one.
    pub fn new(
        bucket: &str,
        region: &str,
        endpoint: Option<&str>,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<Self, Error> {
        Ok(S3Archive {
            s3: S3Client::new("RENJI_EXPORT_BUCKET", bucket, region, endpoint, credentials)?,
        })
    }

    /// Configured as the SDK would be (see [`S3Client::from_env`]).
    pub fn from_env(bucket: &str) -> Result<Self, Error> {
        Ok(S3Archive {
            s3: S3Client::from_env("RENJI_EXPORT_BUCKET", bucket)?,
        })
    }
}

const SSE: (&str, &str) = ("x-amz-server-side-encryption", "aws:kms");

#[async_trait]
impl Archive for S3Archive {
    fn min_part_bytes(&self) -> usize {
        S3_MIN_PART_BYTES
    }

    async fn begin(&self, key: &str) -> Result<String, Error> {
        let url = format!("{}?uploads", self.s3.object_url(key)?);
        let headers = [("content-type", "application/json; charset=utf-8"), SSE];
        let (_, _, text) = self.s3.send("POST", url, &headers, Vec::new()).await?;
        xml_field(&text, "UploadId")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::Unavailable("S3: no UploadId in its answer".into()))
    }

    async fn put_part(
        &self,
        key: &str,
        upload: &str,
        number: u32,
        bytes: Vec<u8>,
    ) -> Result<Part, Error> {
        let url = format!(
            "{}?partNumber={number}&uploadId={}",
            self.s3.object_url(key)?,
            encode(upload)
        );
        let (_, headers, _) = self.s3.send("PUT", url, &[], bytes).await?;
        let etag = headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Unavailable("S3: no ETag for a part".into()))?;
        Ok(Part {
            number,
            etag: etag.to_owned(),
        })
    }

    async fn complete(&self, key: &str, upload: &str, parts: &[Part]) -> Result<(), Error> {
        let url = format!("{}?uploadId={}", self.s3.object_url(key)?, encode(upload));
        let mut xml = String::from("<CompleteMultipartUpload>");
        for part in parts {
            let etag = part.etag.replace('&', "&amp;").replace('<', "&lt;");
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
                part.number
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let headers = [("content-type", "application/xml")];
        self.s3
            .send("POST", url, &headers, xml.into_bytes())
            .await?;
        Ok(())
    }

    async fn abort(&self, key: &str, upload: &str) -> Result<(), Error> {
        let url = format!("{}?uploadId={}", self.s3.object_url(key)?, encode(upload));
        self.s3.send("DELETE", url, &[], Vec::new()).await?;
        Ok(())
    }

    async fn link(&self, key: &str, expires_in: Duration) -> Result<String, Error> {
        self.s3.presign_get(key, expires_in).await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let url = self.s3.object_url(key)?;
        self.s3.send("DELETE", url, &[], Vec::new()).await?;
        Ok(())
    }
}
