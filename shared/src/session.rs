//! Session tokens: `<kid>.<payload>.<signature>`, payload and signature URL-safe base64, the
//! signature an HMAC-SHA256 (ring) of `<kid>.<payload>` with the key `kid` names. The payload
//! names the member, the session and the expiry; the session record in the store is what makes
//! revocation (logout, account deletion) take effect at once.
//!
//! The keys (`RENJI_SESSION_SECRET[_ARN]`) are a ring like the PII keys': `kid:base64(≥ 32
//! bytes)` entries, comma-separated. The first entry signs; every entry verifies, so a new key is
//! rotated in without logging anybody out: add it at the end, make it first once every function
//! has read it (`RENJI_SECRETS_TTL_SECS`), drop the old one once the tokens it signed have expired
//! (`RENJI_SESSION_TTL_SECS`). A token whose kid is not in the ring is refused.
//!
//! The old single-secret form, a value without `:` (at least 32 bytes, used as the key as is),
//! still works: its tokens are `<payload>.<signature>` without a kid, as before key ids. Such
//! tokens are checked against every key of the ring, so moving to the ring form keeps them valid
//! when the old secret is listed (`kid:` + the base64 of its bytes).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lambda_http::Request;
use ring::hmac;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;
use time::OffsetDateTime;

use crate::domain::audit::{self, Actor, AuditRecord, Target};
use crate::error::Error;
use crate::http::CursorKey;
use crate::ids::{random_token, UserId};
use crate::store::{
    keys, Condition, DynStore, Item, Key, Query, Record, SortKey, StoreError, Write,
};

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "u")]
    pub user_id: UserId,
    #[serde(rename = "s")]
    pub session_id: String,
    /// Expiry, epoch seconds.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// The session keys: signs with the active key and checks with every one. `Debug` shows kids only.
pub struct TokenSigner {
    /// `(kid, key)`; the old single-secret form has one key and no kid.
    keys: Vec<(Option<String>, hmac::Key)>,
    /// The page cursors' keys, derived from these (`http::CursorKey`).
    cursors: CursorKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self
            .keys
            .iter()
            .map(|(kid, _)| kid.as_deref().unwrap_or("(single secret)"))
            .collect();
        f.debug_struct("TokenSigner")
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

const MAX_TOKEN_LEN: usize = 512;

/// The shortest HMAC key accepted: SHA-256's output size.
pub const MIN_KEY_LEN: usize = 32;

impl TokenSigner {
    /// Parses the ring (or the old single secret). Errors name kids, never keys.
    pub fn new(secret: &str) -> Result<Self, String> {
        // The old form's bytes are the key exactly as given (blanks included), as before.
        if !secret.contains(':') {
            if secret.len() < MIN_KEY_LEN {
                return Err(format!(
                    "a single secret needs at least {MIN_KEY_LEN} bytes, not {}",
                    secret.len()
                ));
            }
            return Ok(Self::with_keys(vec![(
                None,
                hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            )]));
        }
        let keys = crate::secrets::key_entries(secret.trim(), MIN_KEY_LEN, 1024)?
            .into_iter()
            .map(|(kid, bytes)| (Some(kid), hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
            .collect();
        Ok(Self::with_keys(keys))
    }

    fn with_keys(keys: Vec<(Option<String>, hmac::Key)>) -> Self {
        let cursors = CursorKey::from_session_keys(keys.iter().map(|(_, key)| key));
        TokenSigner { keys, cursors }
    }

    /// The keys that seal and open page cursors.
    pub fn cursors(&self) -> &CursorKey {
        &self.cursors
    }

    /// The kid new tokens carry (none in the old single-secret form).
    pub fn active_kid(&self) -> Option<&str> {
        self.keys[0].0.as_deref()
    }

    /// A signer for another kind of token: each key replaced by a sub-key (the HMAC of `label`
    /// under it, as the cursor keys are), kids kept. A token one signs never verifies with the
    /// other, so a member's token is never a staff token, nor the reverse.
    pub fn for_domain(&self, label: &[u8]) -> TokenSigner {
        let keys = self
            .keys
            .iter()
            .map(|(kid, parent)| {
                let sub = hmac::sign(parent, label);
                (kid.clone(), hmac::Key::new(hmac::HMAC_SHA256, sub.as_ref()))
            })
            .collect();
        TokenSigner::with_keys(keys)
    }

    pub fn sign(&self, claims: &Claims) -> String {
        self.sign_payload(claims)
    }

    /// A token carrying `payload` (JSON), signed with the active key.
    pub fn sign_payload<T: Serialize>(&self, payload: &T) -> String {
        let payload = URL_SAFE_NO_PAD.encode(json!(payload).to_string());
        let (kid, key) = &self.keys[0];
        let signed = match kid {
            Some(kid) => format!("{kid}.{payload}"),
            None => payload,
        };
        let tag = hmac::sign(key, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The claims of a well-signed, unexpired token. The signature is checked (in constant time)
    /// before the payload is parsed.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, Error> {
        let claims: Claims = self.verify_payload(token)?;
        if claims.expires_at <= now {
            return Err(Error::Unauthorized("session expired"));
        }
        Ok(claims)
    }

    /// The payload of a well-signed token (expiry is the caller's to check). The signature is
    /// checked (in constant time) before the payload is parsed.
    pub fn verify_payload<T: DeserializeOwned>(&self, token: &str) -> Result<T, Error> {
        const BAD: Error = Error::Unauthorized("invalid session token");
        if token.len() > MAX_TOKEN_LEN {
            return Err(BAD);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(BAD)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| BAD)?;
        let payload = match signed.split_once('.') {
            // A kid: only that key may have signed it; an unknown kid is refused.
            Some((kid, payload)) => {
                let (_, key) = self
                    .keys
                    .iter()
                    .find(|(k, _)| k.as_deref() == Some(kid))
                    .ok_or(BAD)?;
                hmac::verify(key, signed.as_bytes(), &tag).map_err(|_| BAD)?;
                payload
            }
            // A token from before key ids: any key of the ring.
            None => {
                self.keys
                    .iter()
                    .find(|(_, key)| hmac::verify(key, signed.as_bytes(), &tag).is_ok())
                    .ok_or(BAD)?;
                signed
            }
        };
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| BAD)?;
        serde_json::from_slice(&json).map_err(|_| BAD)
    }
}

/// A session as stored ([`keys::session`]): what makes a token good until logout, with the
/// device and network facts of the login that started it (shown to the member in
/// `GET /v1/me/sessions`, never logged). They live and end with the session: deleted with it on
/// logout or revocation, expired with it by `ttl` (`RENJI_SESSION_TTL_SECS`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub expires_at: i64,
    /// DynamoDB's TTL removes the record some time after expiry; the checks here do not wait.
    pub ttl: i64,
    /// The client platform the login's `User-Agent` names (none on sessions from before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The login's `User-Agent`, cleaned ([`clean_user_agent`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The login's source address as API Gateway saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

impl Record for SessionRecord {
    const KIND: &'static str = "session";
}

/// The client platform of a login, from its `User-Agent`. The WeChat mini-program's requests
/// carry `MicroMessenger` (and `miniProgram` / `MiniProgramEnv/<platform>`); WeChat's developer
/// tools carry `wechatdevtools`. Anything that is not the mini-program (a browser, a script) is
/// `other`, whatever system it runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Ios,
    Android,
    Windows,
    Mac,
    Devtools,
    Other,
}

impl Platform {
    pub fn of_user_agent(user_agent: &str) -> Platform {
        let ua = user_agent.to_ascii_lowercase();
        if ua.contains("wechatdevtools") {
            return Platform::Devtools;
        }
        if !(ua.contains("micromessenger") || ua.contains("miniprogram")) {
            return Platform::Other;
        }
        // `MiniProgramEnv/<platform>` says it outright; else the system the UA names (iOS
        // before Mac: an iPhone's UA says "like Mac OS X").
        if let Some(at) = ua.find("miniprogramenv/") {
            let env: String = ua[at + "miniprogramenv/".len()..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            match env.as_str() {
                "ios" => return Platform::Ios,
                "android" => return Platform::Android,
                "windows" => return Platform::Windows,
                "mac" | "macos" => return Platform::Mac,
                _ => {}
            }
        }
        if ["iphone", "ipad", "ipod", "ios"]
            .iter()
            .any(|w| ua.contains(w))
        {
            Platform::Ios
        } else if ua.contains("android") {
            Platform::Android
        } else if ua.contains("windows") {
            Platform::Windows
        } else if ["macintosh", "mac os", "macwechat"]
            .iter()
            .any(|w| ua.contains(w))
        {
            Platform::Mac
        } else {
            Platform::Other
        }
    }
}

/// The longest user agent kept, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// A `User-Agent` as kept: control characters dropped, blanks trimmed, at most
/// [`MAX_USER_AGENT_CHARS`]; none when nothing is left.
pub fn clean_user_agent(raw: &str) -> Option<String> {
    // Control characters, and the invisible format characters that could make a device name
    // read otherwise (bidi overrides, zero widths, line/paragraph separators, BOM).
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
    };
    let kept: String = raw.chars().filter(|c| !invisible(*c)).collect();
    let kept: String = kept.trim().chars().take(MAX_USER_AGENT_CHARS).collect();
    let kept = kept.trim_end().to_owned();
    (!kept.is_empty()).then_some(kept)
}

/// The device and network facts of a login request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub platform: Platform,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl Default for Device {
    fn default() -> Self {
        Device {
            platform: Platform::Other,
            user_agent: None,
            ip: None,
        }
    }
}

impl Device {
    /// The facts of `req`: its `User-Agent` header and API Gateway's `sourceIp`.
    pub fn of(req: &Request) -> Device {
        // Bytes that are not UTF-8 are replaced, not refused: a login never fails on its UA.
        // The platform is read from the header's first 2 KB, before the cut to 256 characters
        // (WeChat's `MiniProgramEnv/…` is at its end).
        let raw = req
            .headers()
            .get(lambda_http::http::header::USER_AGENT)
            .map(|v| {
                let bytes = v.as_bytes();
                String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).into_owned()
            })
            .unwrap_or_default();
        Device {
            platform: Platform::of_user_agent(&raw),
            user_agent: clean_user_agent(&raw),
            ip: crate::ratelimit::source_ip(req).map(|ip| ip.to_string()),
        }
    }
}

/// A new session for `user` from `device`: its token, claims, and the write that records it (for
/// callers that put it in a transaction of their own).
pub fn prepare(
    signer: &TokenSigner,
    user: &UserId,
    ttl_secs: i64,
    device: &Device,
) -> Result<(String, Claims, Write), Error> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claims = Claims {
        user_id: user.clone(),
        session_id: random_token(),
        expires_at: now + ttl_secs,
    };
    let record = SessionRecord {
        created_at: now,
        expires_at: claims.expires_at,
        ttl: claims.expires_at,
        platform: Some(device.platform),
        user_agent: device.user_agent.clone(),
        ip: device.ip.clone(),
    };
    let item = record.to_item(keys::session(user, &claims.session_id), None)?;
    Ok((
        signer.sign(&claims),
        claims,
        Write::put_if(item, Condition::Absent, "session_new"),
    ))
}

/// A new session for `user`, recorded in the store; returns the token and its claims.
pub async fn start(
    store: &DynStore,
    signer: &TokenSigner,
    user: &UserId,
    ttl_secs: i64,
    device: &Device,
) -> Result<(String, Claims), Error> {
    let (token, claims, record) = prepare(signer, user, ttl_secs, device)?;
    store.write(record).await?;
    Ok((token, claims))
}

/// The session a request's bearer token names: well-signed, unexpired and not revoked.
pub async fn authenticate(
    store: &DynStore,
    signer: &TokenSigner,
    req: &Request,
) -> Result<Claims, Error> {
    let claims = signed_claims(signer, req)?;
    let record = store
        .get(&keys::session(&claims.user_id, &claims.session_id))
        .await?;
    match record {
        Some(_) => Ok(claims),
        None => Err(Error::Unauthorized("session revoked")),
    }
}

/// As [`authenticate`], reading one more item of the caller's in the same request (one
/// BatchGetItem on DynamoDB): `GET /v1/me` costs one read.
pub async fn authenticate_with(
    store: &DynStore,
    signer: &TokenSigner,
    req: &Request,
    key: impl FnOnce(&Claims) -> Key,
) -> Result<(Claims, Option<Item>), Error> {
    let claims = signed_claims(signer, req)?;
    let keys = [
        keys::session(&claims.user_id, &claims.session_id),
        key(&claims),
    ];
    let mut found = store.get_many(&keys).await?.into_iter();
    match (found.next().flatten(), found.next().flatten()) {
        (Some(_), item) => Ok((claims, item)),
        (None, _) => Err(Error::Unauthorized("session revoked")),
    }
}

fn signed_claims(signer: &TokenSigner, req: &Request) -> Result<Claims, Error> {
    let token =
        crate::http::bearer_token(req).ok_or(Error::Unauthorized("a bearer token is required"))?;
    signer.verify(token, OffsetDateTime::now_utc().unix_timestamp())
}

/// The audit copies of the member's own session action (`login`, `logout`, `sessions.revoke`),
/// for the transaction that does it: target the member, so one copy, in their actor list.
pub fn audited(member: &UserId, action: &str, keep: Duration) -> Result<Vec<Write>, Error> {
    let record = AuditRecord::by(
        Actor::Member(member.clone()),
        OffsetDateTime::now_utc(),
        action,
        Target::member(member),
        None,
        "ok",
    );
    audit::writes(&record, keep)
}

/// Revokes one session (logout), audited in the same transaction. Idempotent.
pub async fn revoke(store: &DynStore, claims: &Claims, keep: Duration) -> Result<(), Error> {
    let mut writes = vec![Write::delete(keys::session(
        &claims.user_id,
        &claims.session_id,
    ))];
    writes.extend(audited(&claims.user_id, "logout", keep)?);
    store.transact(writes).await?;
    Ok(())
}

/// Whether `text` has the shape of a session id ([`random_token`]: 22 URL-safe base64
/// characters).
pub fn is_session_id(text: &str) -> bool {
    text.len() == 22
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The most sessions `GET /v1/me/sessions` reads (a member has a handful; logins are
/// rate-limited and sessions expire after `RENJI_SESSION_TTL_SECS`).
pub const MAX_LISTED: usize = 500;

/// `GET /v1/me/sessions`: the caller's unexpired sessions, newest first, each with the device
/// facts of its login and whether it is the one asking.
pub async fn list(store: &DynStore, claims: &Claims) -> Result<Vec<Value>, Error> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut sessions = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query(
                Query::partition(keys::user(&claims.user_id))
                    .sort(SortKey::Prefix(keys::SESSION_PREFIX.into()))
                    .limit(100)
                    .after(cursor),
            )
            .await?;
        for item in page.items {
            let id = Key::of(&item)
                .and_then(|k| k.sk.strip_prefix(keys::SESSION_PREFIX).map(str::to_owned))
                .ok_or_else(|| Error::Internal("a session item without its key".into()))?;
            let record = SessionRecord::from_item(item)?;
            // TTL deletes some time after expiry; an expired session is no longer one.
            if record.expires_at > now {
                sessions.push((id, record));
            }
        }
        match page.next {
            Some(next) if sessions.len() < MAX_LISTED => cursor = Some(next),
            _ => break,
        }
    }
    sessions.sort_by(|(a_id, a), (b_id, b)| {
        b.created_at.cmp(&a.created_at).then_with(|| a_id.cmp(b_id))
    });
    sessions
        .into_iter()
        .map(|(id, record)| record.view(&id, id == claims.session_id))
        .collect()
}

impl SessionRecord {
    /// How the member is shown session `id` (`GET /v1/me/sessions`, their data export).
    pub fn view(&self, id: &str, current: bool) -> Result<Value, Error> {
        let time = |secs: i64| {
            OffsetDateTime::from_unix_timestamp(secs)
                .map(crate::domain::members::rfc3339)
                .map_err(|_| Error::Internal("session time out of range".into()))
        };
        Ok(json!({
            "current": current,
            "id": id,
            "platform": self.platform.unwrap_or(Platform::Other),
            "user_agent": self.user_agent,
            "ip": self.ip,
            "created_at": time(self.created_at)?,
            "expires_at": time(self.expires_at)?,
        }))
    }
}

/// `DELETE /v1/me/sessions/{id}`: signs out one of the caller's sessions (their current one
/// too: that is a logout), audited in the same transaction; 404 for an id that is not one of
/// theirs.
pub async fn revoke_one(
    store: &DynStore,
    claims: &Claims,
    session_id: &str,
    keep: Duration,
) -> Result<(), Error> {
    if !is_session_id(session_id) {
        return Err(Error::NotFound("session"));
    }
    let mut writes = vec![Write::delete_if(
        keys::session(&claims.user_id, session_id),
        Condition::Present,
        "session_exists",
    )];
    writes.extend(audited(&claims.user_id, "sessions.revoke", keep)?);
    store.transact(writes).await.map_err(|e| match e {
        StoreError::ConditionFailed {
            label: "session_exists",
        } => Error::NotFound("session"),
        other => other.into(),
    })
}

/// `DELETE /v1/me/sessions`: signs out every session of the caller but the current one
/// ("everywhere else"), audited with the first batch that signs one out. Each batch requires the
/// caller's own session: of two racing calls from two sessions, the one whose session the other
/// revoked first answers 401 instead of a 204 it did not achieve.
pub async fn revoke_others(store: &DynStore, claims: &Claims, keep: Duration) -> Result<(), Error> {
    let mut audit = Some(audited(&claims.user_id, "sessions.revoke", keep)?);
    let mut cursor = None;
    loop {
        let page = store
            .query(
                Query::partition(keys::user(&claims.user_id))
                    .sort(SortKey::Prefix(keys::SESSION_PREFIX.into()))
                    .limit(crate::store::MAX_TRANSACTION_WRITES - 2)
                    .after(cursor),
            )
            .await?;
        let current = keys::session(&claims.user_id, &claims.session_id);
        let mut writes: Vec<Write> = page
            .items
            .iter()
            .filter_map(Key::of)
            .filter(|key| *key != current)
            .map(Write::delete)
            .collect();
        if !writes.is_empty() {
            writes.extend(audit.take().unwrap_or_default());
            writes.push(Write::check(current, Condition::Present, "session_current"));
            store.transact(writes).await.map_err(|e| match e {
                StoreError::ConditionFailed {
                    label: "session_current",
                } => Error::Unauthorized("session revoked"),
                other => other.into(),
            })?;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// Revokes every session of a member (account deletion, "log out everywhere").
pub async fn revoke_all(store: &DynStore, user: &UserId) -> Result<(), Error> {
    loop {
        let page = store
            .query(
                Query::partition(keys::user(user))
                    .sort(SortKey::Prefix(keys::SESSION_PREFIX.into()))
                    .limit(crate::store::MAX_TRANSACTION_WRITES),
            )
            .await?;
        if page.items.is_empty() {
            return Ok(());
        }
        let writes = page
            .items
            .iter()
            .filter_map(Key::of)
            .map(Write::delete)
            .collect();
        store.transact(writes).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &str) -> TokenSigner {
        TokenSigner::new(secret).unwrap()
    }

    fn key(byte: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    }

    fn claims(expires_at: i64) -> Claims {
        Claims {
            user_id: UserId::generate(),
            session_id: random_token(),
            expires_at,
        }
    }

    #[test]
    fn the_platform_is_read_from_the_mini_program_user_agent() {
        for (ua, platform) in [
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) \
                 NetType/WIFI Language/zh_CN miniProgram/wx1234567890abcdef",
                Platform::Ios,
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) \
                 AppleWebKit/537.36 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/5317 \
                 MMWEBSDK/20230805 MicroMessenger/8.0.42.2460(0x28002A35) WeChat/arm64 \
                 Weixin NetType/5G Language/zh_CN ABI/arm64 miniProgram/wx1234567890abcdef",
                Platform::Android,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; WOW64) MicroMessenger/7.0.20.1781(0x6700143B) \
                 NetType/WIFI MiniProgramEnv/Windows WindowsWechat/WMPF",
                Platform::Windows,
            ),
            (
                "Mozilla/5.0 MiniProgramEnv/Windows WindowsWechat",
                Platform::Windows,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) MicroMessenger/3.8.5 \
                 MacWechat/3.8.5(0x13080510) MiniProgramEnv/Mac",
                Platform::Mac,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
                 wechatdevtools/1.06.2310080 MicroMessenger/8.0.5 Language/zh_CN webview/",
                Platform::Devtools,
            ),
            // Not the mini-program, whatever the system.
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Safari/604.1",
                Platform::Other,
            ),
            ("curl/8.4.0", Platform::Other),
            ("", Platform::Other),
        ] {
            assert_eq!(Platform::of_user_agent(ua), platform, "{ua}");
        }
    }

    #[test]
    fn user_agents_are_kept_trimmed_capped_and_without_control_characters() {
        assert_eq!(
            clean_user_agent("  curl/8\r\n\u{7}x  "),
            Some("curl/8x".into())
        );
        assert_eq!(clean_user_agent(" \t "), None);
        let long = "界".repeat(300);
        assert_eq!(
            clean_user_agent(&long).map(|s| s.chars().count()),
            Some(MAX_USER_AGENT_CHARS)
        );
        assert!(is_session_id(&random_token()));
        for bad in ["", "a", "a/b", &"a".repeat(23), "a+aaaaaaaaaaaaaaaaaaaa"] {
            assert!(!is_session_id(bad), "{bad}");
        }
        // Invisible format characters (bidi override, zero width, line separator, BOM) go too.
        assert_eq!(
            clean_user_agent("Dev\u{202E}ice\u{200B} 1\u{2028}\u{FEFF}").as_deref(),
            Some("Device 1")
        );
    }

    #[test]
    fn tokens_verify_only_unaltered_unexpired_and_with_the_right_key() {
        let s = signer("0123456789abcdef0123456789abcdef");
        let c = claims(2_000);
        let token = s.sign(&c);
        assert_eq!(s.verify(&token, 1_000), Ok(c.clone()));
        assert_eq!(
            s.verify(&token, 2_000),
            Err(Error::Unauthorized("session expired"))
        );

        // A payload naming another member, kept with the old signature, is refused.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(json!(claims(9_999)).to_string());
        assert!(s.verify(&format!("{forged}.{tag}"), 1_000).is_err());
        // One flipped character anywhere is refused.
        let mut bytes = token.clone().into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        assert!(s.verify(&String::from_utf8(bytes).unwrap(), 1_000).is_err());
        // Another key's token is refused.
        let other = signer("fedcba9876543210fedcba9876543210");
        assert!(other.verify(&token, 1_000).is_err());
        for junk in ["", ".", "abc", "a.b.c", &"x".repeat(600)] {
            assert!(s.verify(junk, 1_000).is_err(), "{junk}");
        }
    }

    #[test]
    fn rotating_the_keys_logs_nobody_out() {
        let old = signer(&format!("k1:{}", key(1)));
        assert_eq!(old.active_kid(), Some("k1"));
        let c = claims(2_000);
        let token = old.sign(&c);
        assert!(token.starts_with("k1."), "{token}");

        // k2 is added (first: it signs); k1's tokens still verify.
        let rotated = signer(&format!("k2:{},k1:{}", key(2), key(1)));
        assert_eq!(rotated.verify(&token, 1_000), Ok(c.clone()));
        let new_token = rotated.sign(&c);
        assert!(new_token.starts_with("k2."));
        assert_eq!(rotated.verify(&new_token, 1_000), Ok(c.clone()));
        // A function that has not read the new ring yet refuses k2's tokens, hence the order of
        // a rotation: add k2 at the end first, make it first later.
        assert!(old.verify(&new_token, 1_000).is_err());
        let added = signer(&format!("k1:{},k2:{}", key(1), key(2)));
        assert!(added.sign(&c).starts_with("k1."));
        assert_eq!(added.verify(&new_token, 1_000), Ok(c.clone()));

        // Once k1 is dropped its tokens are refused.
        let dropped = signer(&format!("k2:{}", key(2)));
        assert_eq!(
            dropped.verify(&token, 1_000),
            Err(Error::Unauthorized("invalid session token"))
        );
        // A kid the ring does not know, or a known kid put on another key's token, is refused.
        let unknown = format!("k9.{}", token.split_once('.').unwrap().1);
        assert!(rotated.verify(&unknown, 1_000).is_err());
        let relabelled = format!("k2.{}", token.split_once('.').unwrap().1);
        assert!(rotated.verify(&relabelled, 1_000).is_err());
    }

    #[test]
    fn the_old_single_secret_still_works_and_moves_into_a_ring() {
        let single = "0123456789abcdef0123456789abcdef";
        let s = signer(single);
        assert_eq!(s.active_kid(), None);
        let c = claims(2_000);
        let token = s.sign(&c);
        assert_eq!(token.matches('.').count(), 1, "{token}");
        assert_eq!(s.verify(&token, 1_000), Ok(c.clone()));
        // The old secret listed in a ring (its bytes in base64) keeps its tokens valid.
        let ring = signer(&format!(
            "k1:{},old:{}",
            key(1),
            base64::engine::general_purpose::STANDARD.encode(single)
        ));
        assert_eq!(ring.verify(&token, 1_000), Ok(c.clone()));
        assert!(signer(&format!("k1:{}", key(1)))
            .verify(&token, 1_000)
            .is_err());
    }

    #[test]
    fn bad_keys_are_refused_without_showing_them() {
        let k = key(7);
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        for bad in [
            "short".to_owned(),
            format!("k1:{short}"),
            format!("k1:{k},k1:{k}"),
            format!("bad.kid:{k}"),
            format!("k1:{k},nokey"),
            ":".to_owned(),
        ] {
            let e = TokenSigner::new(&bad).unwrap_err();
            assert!(!e.contains(&k), "{e}");
        }
        let ok = signer(&format!("k1:{k}, k2:{}", key(8)));
        let shown = format!("{ok:?}");
        assert!(shown.contains("k2") && !shown.contains(&k), "{shown}");
    }

    #[test]
    fn page_cursors_survive_a_rotation_of_the_session_keys() {
        let cursor = crate::store::PageCursor::new(br#"{"pk":"A","sk":"B"}"#.to_vec());
        let old = signer(&format!("k1:{}", key(1)));
        let sealed = old.cursors().seal(&cursor);
        let rotated = signer(&format!("k2:{},k1:{}", key(2), key(1)));
        assert_eq!(rotated.cursors().open(&sealed), Ok(cursor.clone()));
        assert_ne!(rotated.cursors().seal(&cursor), sealed, "the new key seals");
        assert!(signer(&format!("k2:{}", key(2)))
            .cursors()
            .open(&sealed)
            .is_err());
        // The old single secret keeps the cursor key it had before key ids.
        let single = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            signer(single).cursors().seal(&cursor),
            CursorKey::derive(single.as_bytes()).seal(&cursor)
        );
    }
}
