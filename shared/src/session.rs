//! Session tokens: `<payload>.<signature>`, both URL-safe base64, signed with HMAC-SHA256 (ring).
//! The payload names the member, the session and the expiry; the session record in the store is
//! what makes revocation (logout, account deletion) take effect at once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lambda_http::Request;
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::config::Secret;
use crate::error::Error;
use crate::ids::{random_token, UserId};
use crate::store::{keys, Condition, DynStore, Item, Key, Query, Record, SortKey, Write};

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

/// Signs and checks tokens. Built once per process.
pub struct TokenSigner {
    key: hmac::Key,
}

const MAX_TOKEN_LEN: usize = 512;

impl TokenSigner {
    pub fn new(secret: &Secret) -> Self {
        TokenSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose()),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(json!(claims).to_string());
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The claims of a well-signed, unexpired token. The signature is checked (in constant time)
    /// before the payload is parsed.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, Error> {
        const BAD: Error = Error::Unauthorized("invalid session token");
        if token.len() > MAX_TOKEN_LEN {
            return Err(BAD);
        }
        let (payload, tag) = token.split_once('.').ok_or(BAD)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| BAD)?;
        hmac::verify(&self.key, payload.as_bytes(), &tag).map_err(|_| BAD)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| BAD)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| BAD)?;
        if claims.expires_at <= now {
            return Err(Error::Unauthorized("session expired"));
        }
        Ok(claims)
    }
}

/// A session as stored ([`keys::session`]): what makes a token good until logout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub expires_at: i64,
    /// DynamoDB's TTL removes the record some time after expiry; the checks here do not wait.
    pub ttl: i64,
}

impl Record for SessionRecord {
    const KIND: &'static str = "session";
}

/// A new session for `user`: its token, claims, and the write that records it (for callers that
/// put it in a transaction of their own).
pub fn prepare(
    signer: &TokenSigner,
    user: &UserId,
    ttl_secs: i64,
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
) -> Result<(String, Claims), Error> {
    let (token, claims, record) = prepare(signer, user, ttl_secs)?;
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

/// Revokes one session (logout). Idempotent.
pub async fn revoke(store: &DynStore, claims: &Claims) -> Result<(), Error> {
    store
        .write(Write::delete(keys::session(
            &claims.user_id,
            &claims.session_id,
        )))
        .await?;
    Ok(())
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
        TokenSigner::new(&Secret::new(secret.as_bytes().to_vec()).unwrap())
    }

    fn claims(expires_at: i64) -> Claims {
        Claims {
            user_id: UserId::generate(),
            session_id: random_token(),
            expires_at,
        }
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
}
