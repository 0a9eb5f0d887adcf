//! The export archive's local stand-in: files under the local server's data folder
//! (`<data-dir>/exports/<member>/<id>.json`, owner-only: 0600 files in 0700 folders), written
//! part by part as S3's multipart upload is, and served by the local server itself at
//! `GET /local/exports/<member>/<id>.json?expires=<epoch seconds>&sig=<HMAC>` — a link signed
//! with a key derived from the session secret, refused once `expires` has passed (this route is
//! the local server's own, like the sandbox stand-ins; it is not in `template.yaml`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use renji_shared::archive::{Archive, Part, S3_MIN_PART_BYTES};
use renji_shared::Error;

/// The path the local server serves documents at.
pub const ROUTE: &str = "/local/exports/";

/// Uploads in progress, beside the documents (no member id starts with a dot).
const UPLOADS: &str = ".uploads";

pub struct FileArchive {
    /// The folder the object keys (`exports/…`) are relative to: the data folder.
    root: PathBuf,
    /// The local server's base URL.
    base_url: String,
    key: ring::hmac::Key,
}

impl FileArchive {
    /// Documents under `root/exports/`, links to `base_url`, signed with a key derived from
    /// `secret`.
    pub fn new(root: &Path, base_url: &str, secret: &str) -> Self {
        let parent = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let derived = ring::hmac::sign(&parent, b"renji-local-export-links-v1");
        FileArchive {
            root: root.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, Error> {
        let ok = key.starts_with("exports/")
            && key.split('/').all(|part| {
                !part.is_empty()
                    && !part.starts_with('.')
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            });
        if !ok {
            return Err(Error::Internal(format!("not an object key: {key:?}")));
        }
        Ok(self.root.join(key))
    }

    fn upload_dir(&self, upload: &str) -> Result<PathBuf, Error> {
        if upload.is_empty() || !upload.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::Internal("not an upload id".into()));
        }
        Ok(self.root.join("exports").join(UPLOADS).join(upload))
    }

    fn signature(&self, key: &str, expires: i64) -> String {
        let tag = ring::hmac::sign(&self.key, format!("{key}\n{expires}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// The document a link names, if the link is good at `now`: `path` is the request's path
    /// (`/local/exports/…`), `query` its query string. `Err` is the status to answer.
    pub fn open(&self, path: &str, query: Option<&str>, now: i64) -> Result<Vec<u8>, u16> {
        let rest = path.strip_prefix(ROUTE).ok_or(404u16)?;
        let key = format!("exports/{rest}");
        let file = self.path_of(&key).map_err(|_| 404u16)?;
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let expires: i64 = params
            .get("expires")
            .and_then(|e| e.parse().ok())
            .ok_or(403u16)?;
        let sig = params.get("sig").ok_or(403u16)?;
        let given = URL_SAFE_NO_PAD.decode(sig).map_err(|_| 403u16)?;
        ring::hmac::verify(&self.key, format!("{key}\n{expires}").as_bytes(), &given)
            .map_err(|_| 403u16)?;
        if expires <= now {
            return Err(403);
        }
        std::fs::read(file).map_err(|_| 404u16)
    }
}

fn internal(e: std::io::Error) -> Error {
    Error::Internal(format!("export file: {e}"))
}

/// Creates `dir` and its parents, owner-only where new.
fn owner_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(internal)
}

/// A new owner-only (0600) file.
fn owner_file(path: &Path) -> Result<std::fs::File, Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(internal)?;
    crate::server::owner_only(&file).map_err(internal)?;
    Ok(file)
}

#[async_trait]
impl Archive for FileArchive {
    fn min_part_bytes(&self) -> usize {
        S3_MIN_PART_BYTES
    }

    async fn begin(&self, key: &str) -> Result<String, Error> {
        self.path_of(key)?;
        let upload = ulid::Ulid::new().to_string();
        owner_dir(&self.upload_dir(&upload)?)?;
        Ok(upload)
    }

    async fn put_part(
        &self,
        key: &str,
        upload: &str,
        number: u32,
        bytes: Vec<u8>,
    ) -> Result<Part, Error> {
        self.path_of(key)?;
        let path = self.upload_dir(upload)?.join(format!("{number:05}"));
        let mut file = owner_file(&path)?;
        file.write_all(&bytes).map_err(internal)?;
        Ok(Part {
            number,
            etag: format!("\"{number}-{}\"", bytes.len()),
        })
    }

    async fn complete(&self, key: &str, upload: &str, parts: &[Part]) -> Result<(), Error> {
        let target = self.path_of(key)?;
        let dir = self.upload_dir(upload)?;
        if let Some(parent) = target.parent() {
            owner_dir(parent)?;
        }
        // Written aside and renamed: a reader never sees half a document.
        let partial = dir.join("document");
        let mut out = owner_file(&partial)?;
        for part in parts {
            let mut input =
                std::fs::File::open(dir.join(format!("{:05}", part.number))).map_err(internal)?;
            std::io::copy(&mut input, &mut out).map_err(internal)?;
        }
        out.sync_all().map_err(internal)?;
        std::fs::rename(&partial, &target).map_err(internal)?;
        std::fs::remove_dir_all(&dir).map_err(internal)
    }

    async fn abort(&self, _key: &str, upload: &str) -> Result<(), Error> {
        match std::fs::remove_dir_all(self.upload_dir(upload)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(internal(e)),
            _ => Ok(()),
        }
    }

    async fn link(&self, key: &str, expires_in: Duration) -> Result<String, Error> {
        self.path_of(key)?;
        let expires = time::OffsetDateTime::now_utc().unix_timestamp()
            + i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX / 4);
        let rest = key.strip_prefix("exports/").unwrap_or(key);
        Ok(format!(
            "{}{ROUTE}{rest}?expires={expires}&sig={}",
            self.base_url,
            self.signature(key, expires)
        ))
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let path = self.path_of(key)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(internal(e)),
            _ => {
                // The member's folder goes with their last document (it names them).
                if let Some(folder) = path.parent() {
                    let _ = std::fs::remove_dir(folder);
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_document_is_written_in_parts_and_read_by_a_good_link_only() {
        let dir = tempfile::TempDir::new().unwrap();
        let archive = FileArchive::new(dir.path(), "http://127.0.0.1:1", "secret");
        let key = "exports/u_1/01J.json";
        let upload = archive.begin(key).await.unwrap();
        let a = archive
            .put_part(key, &upload, 1, b"{\"a\":".to_vec())
            .await
            .unwrap();
        let b = archive
            .put_part(key, &upload, 2, b"1}".to_vec())
            .await
            .unwrap();
        archive.complete(key, &upload, &[a, b]).await.unwrap();
        let file = dir.path().join(key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let link = archive.link(key, Duration::from_secs(60)).await.unwrap();
        let url = url::Url::parse(&link).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert_eq!(
            archive.open(url.path(), url.query(), now).unwrap(),
            b"{\"a\":1}"
        );
        // Expired, altered, or another document's: refused.
        assert_eq!(archive.open(url.path(), url.query(), now + 61), Err(403));
        let other = url.path().replace("01J", "01K");
        assert_eq!(archive.open(&other, url.query(), now), Err(403));
        let longer = url.query().unwrap().replace("expires=", "expires=9");
        assert_eq!(archive.open(url.path(), Some(&longer), now), Err(403));
        assert_eq!(
            archive.open("/local/exports/../x", url.query(), now),
            Err(404)
        );
        archive.delete(key).await.unwrap();
        assert!(!file.exists());
        archive.delete(key).await.unwrap();
    }
}
