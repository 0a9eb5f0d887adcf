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
//! The IM REST client (the account deleted with the member) belongs here too.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::ids::UserId;

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
