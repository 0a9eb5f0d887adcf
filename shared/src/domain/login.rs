//! WeChat login and logout.

use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::members;
use crate::app::App;
use crate::error::Error;
use crate::ids::UserId;
use crate::session::{self, Claims};

/// `POST /v1/auth/wechat` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub code: String,
}

/// A `wx.login` code: short, printable ASCII (WeChat's are 32 characters).
fn check_code(code: &str) -> Result<(), Error> {
    let ok = !code.is_empty() && code.len() <= 128 && code.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(Error::invalid(
            "code",
            "must be the code from wx.login (1 to 128 printable ASCII characters)",
        ));
    }
    Ok(())
}

/// Exchanges the code with WeChat, finds or creates the member, starts a session.
pub async fn login(app: &App, request: LoginRequest) -> Result<Value, Error> {
    check_code(&request.code)?;
    let wechat = app
        .wechat
        .as_ref()
        .ok_or_else(|| Error::Config("WECHAT_APPID is not set for this function".into()))?;
    // The session keys first: a code is good once, so it is not spent when no session could be
    // signed.
    let tokens = app.tokens().await?;
    let identity = wechat.code_to_session(&request.code).await?;
    let ttl = i64::try_from(app.config.session_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    // A first login writes the member, its openid claim and its session in one transaction.
    let candidate = UserId::generate();
    let (token, claims, session) = session::prepare(&tokens, &candidate, ttl)?;
    let (member, new_user) =
        members::find_or_create(&app.store, &identity, candidate, vec![session]).await?;
    let (token, claims) = if new_user {
        (token, claims)
    } else {
        session::start(&app.store, &tokens, &member.id, ttl).await?
    };
    let expires_at = OffsetDateTime::from_unix_timestamp(claims.expires_at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| Error::Internal("session expiry out of range".into()))?;
    tracing::info!(user_id = %member.id, new_user, "login");
    Ok(json!({
        "token": token,
        "expires_at": expires_at,
        "user": member.private_view(&app.config.policy_versions),
        "new_user": new_user,
    }))
}

pub async fn logout(app: &App, claims: &Claims) -> Result<(), Error> {
    session::revoke(&app.store, claims).await
}
