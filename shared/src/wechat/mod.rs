//! WeChat mini-program login: `jscode2session` exchanges a `wx.login` code for the member's
//! openid (and unionid when the app is bound to an Open Platform account).
//!
//! The session_key WeChat returns is dropped here: Renji does not need it, so it never reaches
//! the store, a response or a log.

pub mod api;
pub mod push;
pub mod token;

use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::config::{Redacted, WechatConfig};
use crate::error::Error;
use crate::secrets::{Cached, SecretError, Secrets};

/// What login needs from WeChat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WechatIdentity {
    pub openid: String,
    pub unionid: Option<String>,
}

/// Why WeChat did not give an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WechatError {
    /// 40029 / 40163: the code is wrong, expired or already used.
    InvalidCode,
    /// 45011: too many logins for this member.
    RateLimited,
    /// 40226: WeChat blocks this member as high-risk.
    Blocked,
    /// -1, a 5xx, a timeout, an unreadable or over-long answer: retrying may help.
    Unavailable(String),
    /// WeChat refused this app's own configuration or request (an invalid AppID or AppSecret, a
    /// server IP not on the whitelist, …): no retry helps until an operator fixes it.
    Misconfigured(i64),
    /// The AppSecret could not be read (503) or is empty (500).
    Secret(SecretError),
}

/// The errcodes that blame the app's configuration (or our request), not the member's code nor
/// WeChat's health: 40001 and 40125 (AppSecret), 40013 (AppID), 40002 (grant_type), 40066
/// (URL), 40164 (IP whitelist), 41002/41004 (AppID/AppSecret missing), 41008 (code missing),
/// 43002 (method), 48001 (API not authorised for this app).
const CONFIGURATION_ERRCODES: &[i64] = &[
    40001, 40002, 40013, 40066, 40125, 40164, 41002, 41004, 41008, 43002, 48001,
];

impl From<WechatError> for Error {
    fn from(e: WechatError) -> Self {
        match e {
            WechatError::InvalidCode => {
                Error::Unauthorized("the WeChat login code is invalid, expired or already used")
            }
            WechatError::RateLimited => Error::TooManyRequests {
                retry_after_secs: 60,
            },
            WechatError::Blocked => {
                Error::Forbidden("WeChat has restricted this account's logins".into())
            }
            WechatError::Unavailable(detail) => Error::Unavailable(detail),
            // A 500 (logged as an error where it becomes the response), not a retryable 503.
            WechatError::Misconfigured(errcode) => Error::Config(format!(
                "WeChat refused this app's configuration (errcode {errcode}): check WECHAT_APPID, \
                 WECHAT_SECRET and the server's IP whitelist"
            )),
            WechatError::Secret(e) => e.into(),
        }
    }
}

#[derive(Deserialize)]
struct Code2SessionReply {
    openid: Option<String>,
    unionid: Option<String>,
    #[serde(default)]
    errcode: i64,
}

/// The `jscode2session` client. Built once per process; its HTTP client (with its TLS
/// configuration) is built on the first login, not at start-up, since a function instance may
/// serve only logouts; reqwest's pool is then reused.
pub struct WechatClient {
    http: OnceLock<reqwest::Client>,
    config: WechatConfig,
    /// The AppSecret, read on the first login (from Secrets Manager in Lambda); shared with the
    /// server APIs' adapter (`api::HttpWechatApi`).
    secret: Arc<Cached<Redacted>>,
}

/// The AppSecret as every WeChat client reads it.
pub fn secret(
    setting: &crate::config::SecretSetting,
    secrets: &Secrets,
) -> Result<Cached<Redacted>, Error> {
    secrets.cached("WECHAT_SECRET", setting, credential)
}

/// A credential read from a secret: its text without surrounding blanks, not empty.
pub(crate) fn credential(value: &str) -> Result<Redacted, String> {
    match value.trim() {
        "" => Err("is empty".into()),
        v => Ok(Redacted(v.to_owned())),
    }
}

impl WechatClient {
    pub fn new(config: WechatConfig, secrets: &Secrets) -> Result<Self, Error> {
        let secret = Arc::new(secret(&config.secret, secrets)?);
        Ok(WechatClient::with_secret(config, secret))
    }

    pub fn with_secret(config: WechatConfig, secret: Arc<Cached<Redacted>>) -> Self {
        WechatClient {
            http: OnceLock::new(),
            secret,
            config,
        }
    }

    fn http(&self) -> Result<&reqwest::Client, WechatError> {
        crate::outbound::client(&self.http).map_err(WechatError::Unavailable)
    }

    pub async fn code_to_session(&self, code: &str) -> Result<WechatIdentity, WechatError> {
        let secret = self.secret.get().await.map_err(WechatError::Secret)?;
        // The path must be lowercase: WeChat answers 40066 to `jsCode2Session`.
        let url = format!(
            "{}/sns/jscode2session",
            self.config.api_base.trim_end_matches('/')
        );
        let response = self
            .http()?
            .get(url)
            .query(&[
                ("appid", self.config.appid.as_str()),
                ("secret", secret.0.as_str()),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            // The URL holds the app secret: never let it into an error message.
            .map_err(|e| WechatError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(WechatError::Unavailable(format!("HTTP {status}")));
        }
        // WeChat labels this JSON as text/plain, so read bytes rather than trusting the header.
        let body = crate::outbound::read_capped(response, crate::outbound::MAX_ANSWER_BYTES)
            .await
            .map_err(|e| WechatError::Unavailable(format!("jscode2session: {e}")))?;
        let reply: Code2SessionReply = serde_json::from_slice(&body)
            .map_err(|_| WechatError::Unavailable("unreadable jscode2session reply".into()))?;
        if matches!(reply.errcode, 40001 | 40125) {
            // The AppSecret may have been reset since it was read: read it again next time.
            self.secret.refresh_soon().await;
        }
        match reply.errcode {
            0 => {}
            40029 | 40163 => return Err(WechatError::InvalidCode),
            45011 => return Err(WechatError::RateLimited),
            40226 => return Err(WechatError::Blocked),
            code if CONFIGURATION_ERRCODES.contains(&code) => {
                return Err(WechatError::Misconfigured(code))
            }
            other => return Err(WechatError::Unavailable(format!("errcode {other}"))),
        }
        let openid = reply
            .openid
            .filter(|o| !o.is_empty() && o.len() <= 128)
            .ok_or_else(|| WechatError::Unavailable("reply without openid".into()))?;
        Ok(WechatIdentity {
            openid,
            unionid: reply.unionid.filter(|u| !u.is_empty() && u.len() <= 128),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Redacted;
    use crate::outbound::tests::{padded, serve};

    fn client(api_base: String) -> WechatClient {
        WechatClient::new(
            WechatConfig {
                appid: "wx-app".into(),
                secret: crate::config::SecretSetting::Value(Redacted("app-secret".into())),
                api_base,
                push: None,
                miniprogram_state: "formal".into(),
            },
            &crate::secrets::Secrets::from_env(std::time::Duration::from_secs(1)),
        )
        .unwrap()
    }

    fn reply(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn configuration_errors_are_not_retryable() {
        for errcode in [40013, 40125, 40164, 41002] {
            let base = serve(reply(&format!(r#"{{"errcode":{errcode},"errmsg":"x"}}"#))).await;
            let err = client(base).code_to_session("c").await.unwrap_err();
            assert_eq!(err, WechatError::Misconfigured(errcode));
            let err = Error::from(err);
            assert_eq!(err.status().as_u16(), 500, "{err:?}");
            assert!(!err.to_string().contains("app-secret"));
        }
        let base = serve(reply(r#"{"errcode":-1,"errmsg":"busy"}"#)).await;
        let err = client(base).code_to_session("c").await.unwrap_err();
        assert_eq!(Error::from(err).status().as_u16(), 503);
        let base = serve(reply(r#"{"openid":"o1","session_key":"k"}"#)).await;
        assert_eq!(
            client(base).code_to_session("c").await.unwrap().openid,
            "o1"
        );
    }

    #[tokio::test]
    async fn answers_are_read_with_a_cap() {
        for chunked in [false, true] {
            let base = serve(padded(r#"{"openid":"o1","#, 200_000, chunked)).await;
            match client(base).code_to_session("c").await {
                Err(WechatError::Unavailable(m)) => assert!(m.contains("over"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
