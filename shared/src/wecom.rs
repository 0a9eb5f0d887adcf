//! WeCom (企业微信) directory: who a staff member signing in is. The console shows WeCom's web
//! login (QR code); WeCom redirects back with a `code`, which the `admin` function exchanges here
//! for the member's `userid` and, when the role mapping names departments, their department ids.
//!
//! The calls, as WeCom documents them (developer.work.weixin.qq.com/document/path/91039
//! "获取access_token", /91023 and /98176 "获取访问用户身份" for web login, /90196 "读取成员",
//! /90313 global errcodes) and as the C# SDK Mud.Wechat declares them
//! (`IWechatWorkIdentityService.GetUserInfoAsync`: `GET /cgi-bin/auth/getuserinfo`, "userid for a
//! member of the company, openid otherwise"; code at most 512 bytes, single use, 5 minutes):
//! - `GET /cgi-bin/gettoken?corpid=&corpsecret=` → `{access_token, expires_in}` (7200 s); one
//!   token serves every call, so it is cached until shortly before it expires, and fetched again
//!   when a call says it is invalid or expired (40014, 42001, 40001).
//! - `GET /cgi-bin/auth/getuserinfo?access_token=&code=` → `{userid}` for a member of the
//!   company, `{openid}` for anyone else (refused here); 40029: the code is invalid.
//! - `GET /cgi-bin/user/get?access_token=&userid=` → `{department: [ids]}`.
//!
//! Every answer is JSON with `errcode` (0: success), read with a size cap (`outbound.rs`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{Redacted, WecomConfig};
use crate::error::Error;
use crate::ids::StaffId;
use crate::secrets::{Cached, SecretError, Secrets};

/// Why WeCom named nobody.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WecomError {
    /// 40029: the code is wrong, expired or already used (401).
    InvalidCode,
    /// The code is someone's outside the company (an `openid` answer), or a userid we cannot use
    /// as a staff id: not staff (403).
    NotMember,
    /// A 5xx, a timeout, an unreadable answer, -1 (busy): retrying may help (503).
    Unavailable(String),
    /// WeCom refused our own configuration (corp id, secret, IP allow-list, app not authorised):
    /// an operator must fix it (500).
    Misconfigured(i64),
    /// The secret could not be read.
    Secret(SecretError),
}

/// The errcodes that blame our configuration: 40013 (corpid), 40001/40091 (secret), 41001
/// (token missing), 41002/41004 (corpid/secret missing), 48002 (API not allowed), 50001
/// (redirect domain not the app's), 60020 (IP not allowed), 301002 (API not allowed for the
/// app), 60011 (member not in the app's visible range).
const CONFIGURATION_ERRCODES: &[i64] = &[
    40001, 40013, 40091, 41001, 41002, 41004, 48002, 50001, 60011, 60020, 301002,
];

/// The errcodes that mean the access token is no good any more: fetch a new one and retry.
const STALE_TOKEN_ERRCODES: &[i64] = &[40001, 40014, 42001];

impl From<WecomError> for Error {
    fn from(e: WecomError) -> Self {
        match e {
            WecomError::InvalidCode => {
                Error::Unauthorized("the WeCom login code is invalid, expired or already used")
            }
            WecomError::NotMember => not_staff(),
            WecomError::Unavailable(detail) => Error::Unavailable(format!("WeCom: {detail}")),
            WecomError::Misconfigured(errcode) => Error::Config(format!(
                "WeCom refused this app's configuration (errcode {errcode}): check \
                 WECOM_CORP_ID, WECOM_SECRET and the app's trusted IPs and domain"
            )),
            WecomError::Secret(e) => e.into(),
        }
    }
}

/// 403 `not_staff`: signed in with WeCom, but no staff role is configured for them.
pub fn not_staff() -> Error {
    Error::Denied {
        code: "not_staff",
        message: "this WeCom account has no staff role".into(),
    }
}

/// The port the sign-in sees: a web-login code → the company member's userid → (asked only
/// when the role mapping needs them) their departments.
#[async_trait]
pub trait Directory: Send + Sync {
    /// The member of the company behind a web-login `code`.
    async fn identify(&self, code: &str) -> Result<StaffId, WecomError>;
    /// The ids of the departments `userid` belongs to.
    async fn departments(&self, userid: &StaffId) -> Result<Vec<u64>, WecomError>;
}

/// The HTTP adapter against `WECOM_API_BASE`.
pub struct HttpDirectory {
    http: OnceLock<reqwest::Client>,
    config: WecomConfig,
    secret: Cached<Redacted>,
    /// The access token and when to stop using it.
    token: Mutex<Option<(Redacted, Instant)>>,
}

/// A token is fetched again this long before WeCom says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    errcode: i64,
    access_token: Option<String>,
    #[serde(default)]
    expires_in: u64,
}

#[derive(Deserialize)]
struct UserInfoReply {
    #[serde(default)]
    errcode: i64,
    userid: Option<String>,
    openid: Option<String>,
}

#[derive(Deserialize)]
struct UserReply {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    department: Vec<u64>,
}

/// What every answer has.
trait Errcode {
    fn errcode(&self) -> i64;
}

impl Errcode for UserInfoReply {
    fn errcode(&self) -> i64 {
        self.errcode
    }
}

impl Errcode for UserReply {
    fn errcode(&self) -> i64 {
        self.errcode
    }
}

impl HttpDirectory {
    pub fn new(config: WecomConfig, secrets: &Secrets) -> Result<Self, Error> {
        Ok(HttpDirectory {
            http: OnceLock::new(),
            secret: secrets.cached("WECOM_SECRET", &config.secret, crate::wechat::credential)?,
            config,
            token: Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.api_base.trim_end_matches('/'))
    }

    /// GETs `path` with `query` and reads the JSON answer (capped).
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, WecomError> {
        let http = crate::outbound::client(&self.http).map_err(WecomError::Unavailable)?;
        let response = http
            .get(self.url(path))
            .query(query)
            .send()
            .await
            // The URL holds the secret or the token: never in an error message.
            .map_err(|e| WecomError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(WecomError::Unavailable(format!("{path}: HTTP {status}")));
        }
        let body = crate::outbound::read_capped(response, crate::outbound::MAX_ANSWER_BYTES)
            .await
            .map_err(|e| WecomError::Unavailable(format!("{path}: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|_| WecomError::Unavailable(format!("{path}: unreadable answer")))
    }

    /// The cached access token, or a new one.
    async fn access_token(&self) -> Result<Redacted, WecomError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let secret = self.secret.get().await.map_err(WecomError::Secret)?;
        let reply: TokenReply = self
            .get(
                "/cgi-bin/gettoken",
                &[
                    ("corpid", self.config.corp_id.as_str()),
                    ("corpsecret", secret.0.as_str()),
                ],
            )
            .await?;
        if matches!(reply.errcode, 40001 | 40091) {
            // The secret may have been reset since it was read: read it again next time.
            self.secret.refresh_soon().await;
        }
        check(reply.errcode)?;
        let token = reply
            .access_token
            .filter(|t| !t.is_empty() && t.len() <= 1024)
            .ok_or_else(|| WecomError::Unavailable("gettoken answer without a token".into()))?;
        let lifetime = Duration::from_secs(reply.expires_in.max(60));
        let until = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN).max(lifetime / 2);
        let token = Redacted(token);
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// A call with the access token, repeated once with a new token when WeCom says the cached
    /// one is no good.
    async fn call<T: DeserializeOwned + Errcode>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, WecomError> {
        for attempt in 0..2 {
            let token = self.access_token().await?;
            let mut params = vec![("access_token", token.0.as_str())];
            params.extend_from_slice(query);
            let reply: T = self.get(path, &params).await?;
            if attempt == 0 && STALE_TOKEN_ERRCODES.contains(&reply.errcode()) {
                self.forget_token().await;
                continue;
            }
            return Ok(reply);
        }
        Err(WecomError::Unavailable(format!(
            "{path}: the access token was refused twice"
        )))
    }
}

/// errcode 0 is success; the others are sorted into what they mean for us.
fn check(errcode: i64) -> Result<(), WecomError> {
    match errcode {
        0 => Ok(()),
        40029 => Err(WecomError::InvalidCode),
        code if CONFIGURATION_ERRCODES.contains(&code) => Err(WecomError::Misconfigured(code)),
        other => Err(WecomError::Unavailable(format!("errcode {other}"))),
    }
}

/// Longest code passed on (WeCom's are at most 512 bytes).
const MAX_CODE_BYTES: usize = 512;

#[async_trait]
impl Directory for HttpDirectory {
    async fn identify(&self, code: &str) -> Result<StaffId, WecomError> {
        if code.is_empty() || code.len() > MAX_CODE_BYTES {
            return Err(WecomError::InvalidCode);
        }
        let info: UserInfoReply = self
            .call("/cgi-bin/auth/getuserinfo", &[("code", code)])
            .await?;
        check(info.errcode)?;
        match (info.userid.filter(|u| !u.is_empty()), info.openid) {
            (Some(userid), _) => StaffId::parse(&userid).ok_or(WecomError::NotMember),
            // Someone outside the company scanned the code.
            (None, Some(_)) => Err(WecomError::NotMember),
            (None, None) => Err(WecomError::Unavailable(
                "getuserinfo answer without userid".into(),
            )),
        }
    }

    async fn departments(&self, userid: &StaffId) -> Result<Vec<u64>, WecomError> {
        let user: UserReply = self
            .call("/cgi-bin/user/get", &[("userid", userid.as_str())])
            .await?;
        check(user.errcode)?;
        Ok(user.department)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretSetting;
    use crate::outbound::tests::{padded, serve};

    fn directory(api_base: String) -> HttpDirectory {
        HttpDirectory::new(
            WecomConfig {
                corp_id: "corp".into(),
                secret: SecretSetting::Value(Redacted("corp-secret".into())),
                api_base,
            },
            &Secrets::from_env(Duration::from_secs(1)),
        )
        .unwrap()
    }

    fn reply(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn configuration_errors_are_500_and_never_show_the_secret() {
        for errcode in [40013, 40001, 60020] {
            let base = serve(reply(&format!(r#"{{"errcode":{errcode},"errmsg":"x"}}"#))).await;
            let err = directory(base).identify("c").await.unwrap_err();
            assert_eq!(err, WecomError::Misconfigured(errcode));
            let err = Error::from(err);
            assert_eq!(err.status().as_u16(), 500);
            assert!(!format!("{err:?}").contains("corp-secret"));
        }
        let base = serve(reply(r#"{"errcode":-1,"errmsg":"busy"}"#)).await;
        let err = directory(base).identify("c").await.unwrap_err();
        assert_eq!(Error::from(err).status().as_u16(), 503);
    }

    #[tokio::test]
    async fn answers_are_read_with_a_cap_and_codes_are_bounded() {
        let base = serve(padded(r#"{"errcode":0,"#, 200_000, false)).await;
        match directory(base).identify("c").await {
            Err(WecomError::Unavailable(m)) => assert!(m.contains("over"), "{m}"),
            other => panic!("{other:?}"),
        }
        let base = serve(reply("{}")).await;
        let d = directory(base);
        assert_eq!(d.identify("").await, Err(WecomError::InvalidCode));
        assert_eq!(
            d.identify(&"c".repeat(513)).await,
            Err(WecomError::InvalidCode)
        );
    }
}
