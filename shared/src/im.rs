//! Tencent IM (腾讯云即时通信 IM): the UserSig a member's client signs in to IM with.
//!
//! TLSSigAPIv2, as Tencent's server SDKs compute it (`protocols.md`): the HMAC-SHA256, keyed
//! with the application's IM secret, of
//! `TLS.identifier:<id>\nTLS.sdkappid:<app>\nTLS.time:<now>\nTLS.expire:<secs>\n`, base64; the
//! JSON `{"TLS.ver":"2.0","TLS.identifier","TLS.sdkappid","TLS.expire","TLS.time","TLS.sig"}`;
//! zlib; base64 with `+` → `*`, `/` → `-`, `=` → `_`.
//!
//! The zlib stream is written here with stored (uncompressed) deflate blocks, as Tencent's Go
//! SDK writes it by default (`zlib.NoCompression`): any zlib reader takes it, the JSON is some
//! 200 bytes, and no compression crate goes into the Lambda binary.
//!
//! The IM REST client is here too: [`ImAccounts`], the port account deletion deletes a member's
//! IM account through, and [`HttpImAccounts`], its adapter over IM's REST API
//! (`v4/im_open_login_svc/account_delete`, called as the application's administrator with a
//! UserSig this signer makes).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::ids::UserId;
use crate::secrets::Cached;

/// The longest a UserSig may be asked to live (`TENCENT_IM_USERSIG_DAYS`), in days: Tencent's
/// examples sign for 180 days.
pub const MAX_USERSIG_DAYS: u32 = 180;
pub const DEFAULT_USERSIG_DAYS: u32 = 7;

/// Signs UserSigs for one IM application. `Debug` shows the application, never the secret.
pub struct UserSigner {
    sdk_app_id: u64,
    key: ring::hmac::Key,
}

impl std::fmt::Debug for UserSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSigner")
            .field("sdk_app_id", &self.sdk_app_id)
            .finish_non_exhaustive()
    }
}

/// The signed document, its fields in the order Tencent's SDKs write them.
#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "TLS.ver")]
    ver: &'static str,
    #[serde(rename = "TLS.identifier")]
    identifier: &'a str,
    #[serde(rename = "TLS.sdkappid")]
    sdk_app_id: u64,
    #[serde(rename = "TLS.expire")]
    expire: i64,
    #[serde(rename = "TLS.time")]
    time: i64,
    #[serde(rename = "TLS.sig")]
    sig: String,
}

impl UserSigner {
    /// A signer for `sdk_app_id` with its secret key (the console's "密钥", used as text: its
    /// bytes key the HMAC, as in Tencent's SDKs).
    pub fn new(sdk_app_id: u64, secret: &str) -> Result<Self, String> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err("the IM secret is empty".into());
        }
        Ok(UserSigner {
            sdk_app_id,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()),
        })
    }

    pub fn sdk_app_id(&self) -> u64 {
        self.sdk_app_id
    }

    /// The UserSig of `identifier`, signed at `time` (Unix seconds) and valid `expire` seconds.
    pub fn sign(&self, identifier: &str, time: i64, expire: i64) -> String {
        let content = format!(
            "TLS.identifier:{identifier}\nTLS.sdkappid:{}\nTLS.time:{time}\nTLS.expire:{expire}\n",
            self.sdk_app_id
        );
        let sig = STANDARD.encode(ring::hmac::sign(&self.key, content.as_bytes()));
        let document = Document {
            ver: "2.0",
            identifier,
            sdk_app_id: self.sdk_app_id,
            expire,
            time,
            sig,
        };
        // A struct of strings and integers always serialises.
        let json = serde_json::to_vec(&document).unwrap_or_default();
        im_base64(&zlib_stored(&json))
    }

    /// `GET /v1/im/usersig`: the member's UserSig (their IM user id is their member id), valid
    /// `days` from `now`.
    pub fn issue(&self, member: &UserId, now: OffsetDateTime, days: u32) -> Value {
        let time = now.unix_timestamp();
        let expire = i64::from(days) * 86_400;
        let expires_at = OffsetDateTime::from_unix_timestamp(time + expire)
            .map(crate::domain::members::rfc3339)
            .unwrap_or_default();
        json!({
            "sdk_app_id": self.sdk_app_id,
            "user_id": member,
            "user_sig": self.sign(member.as_str(), time, expire),
            "expires_at": expires_at,
        })
    }
}

/// The IM accounts Renji manages (a member's IM user id is their member id).
#[async_trait]
pub trait ImAccounts: Send + Sync {
    /// Deletes the member's IM account (its contacts, profile, conversations go with it).
    /// Idempotent: an account IM does not know (never signed in, or deleted already) is success.
    async fn delete_account(&self, member: &UserId) -> Result<(), ImError>;
}

/// Why IM did not delete an account. Retry later: nothing is half done on our side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImError {
    /// No answer, an HTTP error, an unreadable answer, or the secret could not be read.
    Unavailable(String),
    /// IM answered with an error code (the request's, or the account's result code).
    Refused { code: i64, info: String },
}

impl std::fmt::Display for ImError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImError::Unavailable(why) => write!(f, "Tencent IM unavailable: {why}"),
            ImError::Refused { code, info } => write!(f, "Tencent IM error {code}: {info}"),
        }
    }
}

impl From<ImError> for crate::error::Error {
    fn from(e: ImError) -> Self {
        crate::error::Error::Unavailable(e.to_string())
    }
}

/// `account_delete`'s result code for an account IM does not have
/// (`Err_TLS_PT_Open_Login_Account_Not_Exist`): already gone, so success.
pub const ACCOUNT_NOT_FOUND: i64 = 70107;
/// The REST API's path for deleting accounts.
pub const ACCOUNT_DELETE_PATH: &str = "/v4/im_open_login_svc/account_delete";
/// How long the administrator's UserSig made for one call is valid.
const ADMIN_SIG_SECS: i64 = 300;

/// `account_delete`'s answer: `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"",
/// "ResultItem":[{"ResultCode":0,"ResultInfo":"","UserID":"…"}]}`.
#[derive(Deserialize)]
struct DeleteAnswer {
    #[serde(rename = "ActionStatus")]
    action_status: String,
    #[serde(rename = "ErrorCode")]
    error_code: i64,
    #[serde(rename = "ErrorInfo", default)]
    error_info: String,
    #[serde(rename = "ResultItem", default)]
    result_item: Vec<DeleteResult>,
}

#[derive(Deserialize)]
struct DeleteResult {
    #[serde(rename = "ResultCode")]
    result_code: i64,
    #[serde(rename = "ResultInfo", default)]
    result_info: String,
    #[serde(rename = "UserID")]
    user_id: String,
}

/// The adapter over IM's REST API (`TENCENT_IM_API_BASE`), as `TENCENT_IM_ADMIN`.
pub struct HttpImAccounts {
    signer: Arc<Cached<UserSigner>>,
    admin: String,
    api_base: String,
    /// Built on the first call (`outbound::client`: 5 s per call).
    http: OnceLock<reqwest::Client>,
}

impl HttpImAccounts {
    pub fn new(signer: Arc<Cached<UserSigner>>, admin: &str, api_base: &str) -> Self {
        HttpImAccounts {
            signer,
            admin: admin.to_owned(),
            api_base: api_base.trim_end_matches('/').to_owned(),
            http: OnceLock::new(),
        }
    }
}

/// A random 32-bit unsigned integer, the `random` of each call.
fn random_u32() -> u32 {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 4];
    // The system RNG does not fail on the platforms we run on; a zero is still a valid value.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

/// Reads `account_delete`'s answer for `member`: success, or the code that says why not.
fn delete_outcome(body: &[u8], member: &UserId) -> Result<(), ImError> {
    let answer: DeleteAnswer = serde_json::from_slice(body)
        .map_err(|_| ImError::Unavailable("unreadable account_delete answer".into()))?;
    if answer.action_status != "OK" || answer.error_code != 0 {
        return Err(ImError::Refused {
            code: answer.error_code,
            info: answer.error_info,
        });
    }
    let result = answer
        .result_item
        .iter()
        .find(|r| r.user_id == member.as_str())
        .ok_or_else(|| ImError::Unavailable("account_delete answered no result for it".into()))?;
    match result.result_code {
        0 | ACCOUNT_NOT_FOUND => Ok(()),
        code => Err(ImError::Refused {
            code,
            info: result.result_info.clone(),
        }),
    }
}

#[async_trait]
impl ImAccounts for HttpImAccounts {
    async fn delete_account(&self, member: &UserId) -> Result<(), ImError> {
        let signer = (self.signer.get().await)
            .map_err(|e| ImError::Unavailable(format!("TENCENT_IM_SECRET: {e}")))?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let usersig = signer.sign(&self.admin, now, ADMIN_SIG_SECS);
        let response = crate::outbound::client(&self.http)
            .map_err(ImError::Unavailable)?
            .post(format!("{}{ACCOUNT_DELETE_PATH}", self.api_base))
            .query(&[
                ("sdkappid", signer.sdk_app_id().to_string()),
                ("identifier", self.admin.clone()),
                ("usersig", usersig),
                ("random", random_u32().to_string()),
                ("contenttype", "json".to_owned()),
            ])
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json!({"DeleteItem": [{"UserID": member}]}).to_string())
            .send()
            .await
            .map_err(|e| ImError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ImError::Unavailable(format!("HTTP {status}")));
        }
        let body = crate::outbound::read_capped(response, crate::outbound::MAX_ANSWER_BYTES)
            .await
            .map_err(ImError::Unavailable)?;
        delete_outcome(&body, member)
    }
}

/// IM's base64: the standard alphabet with `+` → `*`, `/` → `-` and padding `=` → `_`.
fn im_base64(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            other => other,
        })
        .collect()
}

/// `data` as a zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (fastest; 0x7801 is a multiple of 31).
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&[0x78, 0x01]);
    let mut blocks = data.chunks(usize::from(u16::MAX)).peekable();
    if blocks.peek().is_none() {
        // An empty input is one empty final block.
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = blocks.peek().is_none();
        // Chunks are at most u16::MAX long.
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % MOD;
        b = (b + a) % MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::tests::serve;

    fn http_json(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn accounts(base: &str) -> HttpImAccounts {
        let signer = UserSigner::new(1_400_000_000, "k").unwrap();
        HttpImAccounts::new(
            Arc::new(Cached::fixed("TENCENT_IM_SECRET", signer)),
            "administrator",
            base,
        )
    }

    const MEMBER: &str = "u_01m8jsg6njf1pg15cd7be868vz";

    #[tokio::test]
    async fn deleting_an_account_reads_its_result_code() {
        let member = UserId::parse(MEMBER).unwrap();
        let item = |code: i64| {
            format!(
                r#"{{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{{"ResultCode":{code},"ResultInfo":"","UserID":"{MEMBER}"}}]}}"#
            )
        };
        // Deleted, and not known to IM (already deleted): both success.
        for code in [0, ACCOUNT_NOT_FOUND] {
            let base = serve(http_json("200 OK", &item(code))).await;
            accounts(&base).delete_account(&member).await.unwrap();
        }
        // Another result code, a request error, HTTP errors, an answer about someone else, junk
        // and an oversized answer are errors naming what went wrong.
        let refused = serve(http_json("200 OK", &item(70169))).await;
        let e = accounts(&refused)
            .delete_account(&member)
            .await
            .unwrap_err();
        assert!(matches!(&e, ImError::Refused { code: 70169, .. }), "{e}");
        assert!(e.to_string().contains("70169"));
        let request = serve(http_json(
            "200 OK",
            r#"{"ActionStatus":"FAIL","ErrorCode":70003,"ErrorInfo":"usersig is invalid"}"#,
        ))
        .await;
        let e = accounts(&request)
            .delete_account(&member)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            ImError::Refused {
                code: 70003,
                info: "usersig is invalid".into()
            }
        );
        let other = serve(http_json(
            "200 OK",
            r#"{"ActionStatus":"OK","ErrorCode":0,"ResultItem":[{"ResultCode":0,"UserID":"u_other"}]}"#,
        ))
        .await;
        for base in [
            other,
            serve(http_json("500 Internal Server Error", "{}")).await,
            serve(http_json("200 OK", "<html>")).await,
            serve(crate::outbound::tests::padded("{", 100_000, false)).await,
        ] {
            let e = accounts(&base).delete_account(&member).await.unwrap_err();
            assert!(matches!(e, ImError::Unavailable(_)), "{e}");
        }
        // Nobody listening.
        let e = accounts("http://127.0.0.1:1")
            .delete_account(&member)
            .await
            .unwrap_err();
        assert!(matches!(e, ImError::Unavailable(_)), "{e}");
    }

    #[tokio::test]
    async fn the_request_is_the_documented_one() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = vec![0u8; 16 * 1024];
            // Read until the whole body (it follows a blank line, and ends with "]}").
            while !String::from_utf8_lossy(&request).ends_with("]}") {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let body = format!(
                r#"{{"ActionStatus":"OK","ErrorCode":0,"ResultItem":[{{"ResultCode":0,"UserID":"{MEMBER}"}}]}}"#
            );
            let _ = stream.write_all(&http_json("200 OK", &body)).await;
            String::from_utf8(request).unwrap()
        });
        let member = UserId::parse(MEMBER).unwrap();
        accounts(&base).delete_account(&member).await.unwrap();
        let request = seen.await.unwrap();
        let line = request.lines().next().unwrap();
        assert!(
            line.starts_with("POST /v4/im_open_login_svc/account_delete?sdkappid=1400000000&identifier=administrator&usersig="),
            "{line}"
        );
        let query: std::collections::HashMap<String, String> = url::form_urlencoded::parse(
            line.split_once('?')
                .unwrap()
                .1
                .split(' ')
                .next()
                .unwrap()
                .as_bytes(),
        )
        .into_owned()
        .collect();
        assert!(query["random"].parse::<u32>().is_ok());
        assert_eq!(query["contenttype"], "json");
        assert!(!query["usersig"].is_empty());
        assert!(request.ends_with(&format!(r#"{{"DeleteItem":[{{"UserID":"{MEMBER}"}}]}}"#)));
    }

    #[test]
    fn adler32_of_known_inputs() {
        // RFC 1950's definition; "Wikipedia" is the worked example of its article.
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn stored_blocks_frame_every_length() {
        for len in [0usize, 1, 200, 65_535, 65_536, 140_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let z = zlib_stored(&data);
            assert_eq!(&z[..2], &[0x78, 0x01]);
            assert_eq!(
                u16::from_be_bytes([z[0], z[1]]) % 31,
                0,
                "header check bits"
            );
            let blocks = len.div_ceil(65_535).max(1);
            assert_eq!(z.len(), 2 + 5 * blocks + len + 4, "{len}");
            // Walk the blocks: lengths, their complements, the final bit on the last only.
            let (mut at, mut seen) = (2, Vec::new());
            loop {
                let last = z[at] == 1;
                let n = u16::from_le_bytes([z[at + 1], z[at + 2]]);
                assert_eq!(!n, u16::from_le_bytes([z[at + 3], z[at + 4]]));
                seen.extend_from_slice(&z[at + 5..at + 5 + usize::from(n)]);
                at += 5 + usize::from(n);
                if last {
                    break;
                }
            }
            assert_eq!(seen, data);
            assert_eq!(&z[at..], adler32(&data).to_be_bytes());
        }
    }

    #[test]
    fn im_base64_swaps_the_three_characters() {
        // 0xfb 0xff → "+/8=" in standard base64.
        assert_eq!(im_base64(&[0xfb, 0xff]), "*-8_");
    }

    #[test]
    fn the_secret_stays_out_of_debug_and_must_be_set() {
        let signer = UserSigner::new(1_400_000_000, "s3cr3t-key").unwrap();
        let shown = format!("{signer:?}");
        assert!(
            shown.contains("1400000000") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        assert!(UserSigner::new(1, "  ").is_err());
    }

    #[test]
    fn issue_answers_the_member_and_the_expiry() {
        let signer = UserSigner::new(1_400_000_000, "k").unwrap();
        let member = UserId::parse("u_01m8jsg6njf1pg15cd7be868vz").unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_795_924_800).unwrap();
        let issued = signer.issue(&member, now, 7);
        assert_eq!(issued["sdk_app_id"], json!(1_400_000_000u64));
        assert_eq!(issued["user_id"], json!("u_01m8jsg6njf1pg15cd7be868vz"));
        assert_eq!(issued["expires_at"], json!("2026-12-06T04:00:00Z"));
        assert_eq!(
            issued["user_sig"],
            json!(signer.sign(member.as_str(), 1_795_924_800, 7 * 86_400))
        );
    }
}
