//! WeChat login and logout; the member's sessions (listed with their devices, revoked).

use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::members;
use crate::app::App;
use crate::error::Error;
use crate::ids::UserId;
use crate::session::{self, Claims, Device};
use crate::store::{keys, StoreError, Write};

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

/// Exchanges the code with WeChat, finds or creates the member, starts a session recording
/// `device` (the request's platform, user agent and address), and audits the login — all in one
/// transaction: a first login's writes the member, its openid claim, the session and the audit
/// record; a returning member's the session, the audit record (and a unionid WeChat sends for the
/// first time).
pub async fn login(app: &App, request: LoginRequest, device: &Device) -> Result<Value, Error> {
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
    let keep = app.config.audit_keep;
    let candidate = UserId::generate();
    let (token, claims, session) = session::prepare(&tokens, &candidate, ttl, device)?;
    let mut first = vec![session];
    first.extend(session::audited(&candidate, "login", keep)?);
    let (member, new_user, pending) =
        members::find_or_create_deferred(&app.store, &identity, candidate, first).await?;
    let (token, claims) = if new_user {
        (token, claims)
    } else {
        // A suspended member is refused (`domain::suspension`); the transaction checks it again,
        // so a login racing the suspension either lands first (and the suspension revokes its
        // session) or is refused.
        if member.suspension.is_some() {
            return Err(members::account_suspended());
        }
        let (token, claims, session) = session::prepare(&tokens, &member.id, ttl, device)?;
        let mut writes = vec![session];
        if pending.is_empty() {
            writes.push(Write::check(
                keys::member(&member.id),
                members::not_suspended(),
                members::NOT_SUSPENDED_LABEL,
            ));
        }
        writes.extend(pending);
        writes.extend(session::audited(&member.id, "login", keep)?);
        match app.store.transact(writes).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed {
                label: members::NOT_SUSPENDED_LABEL,
            }) => return Err(members::account_suspended()),
            Err(e) => return Err(e.into()),
        }
        (token, claims)
    };
    let expires_at = OffsetDateTime::from_unix_timestamp(claims.expires_at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| Error::Internal("session expiry out of range".into()))?;
    // The device facts are never logged.
    tracing::info!(user_id = %member.id, new_user, "login");
    Ok(json!({
        "token": token,
        "expires_at": expires_at,
        "user": member.private_view(&app.config.policy_versions),
        "new_user": new_user,
    }))
}

/// Signs the caller's session out, audited.
pub async fn logout(app: &App, claims: &Claims) -> Result<(), Error> {
    session::revoke(&app.store, claims, app.config.audit_keep).await
}
