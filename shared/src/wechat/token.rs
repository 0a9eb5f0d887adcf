//! The app's WeChat access token, shared by every function through one store item
//! (`keys::wechat_token`), never fetched once per Lambda instance (`wechat-platform.md` §1).
//!
//! - A token is used until its `refresh_at`; then one caller is elected by a conditional write
//!   (a 10-second lease on the item) and fetches `stable_token` in normal mode; the others keep
//!   using the stored token while it is valid, or wait for the winner when there is none.
//! - A business API's 40001 / 42001 / 40014 expires the stored token only if it is the one that
//!   failed (its version), then the caller fetches again and retries once.
//! - Never `force_refresh`: it kills the token for every caller.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::api::PlatformError;
use crate::config::Redacted;
use crate::store::record::Records as _;
use crate::store::{keys, Condition, DynStore, Record, StoreError, Write};

/// How long an elected refresher holds the lease before another caller may try.
const LEASE_SECS: i64 = 10;
/// How long a caller without any valid token waits for the refresher.
const WAIT_FOR_REFRESH: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(50);

/// The stored token (`WXTOKEN#<appid> / ACCESS_TOKEN`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredToken {
    /// Absent until the first fetch completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Epoch seconds: WeChat's expiry (the token must not be used from then on).
    #[serde(default)]
    pub expires_at: i64,
    /// Epoch seconds: from then on a caller fetches again (before `expires_at`).
    #[serde(default)]
    pub refresh_at: i64,
    /// Bumped by every fetch: a failing token is expired only if it is still this version.
    #[serde(default)]
    pub version: i64,
    /// Epoch seconds: while in the future, a refresher is fetching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
}

impl Record for StoredToken {
    const KIND: &'static str = "WeChat access token";
}

/// A token in hand, with the version it was stored as.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: Redacted,
    pub version: i64,
    refresh_at: i64,
    expires_at: i64,
}

/// What `stable_token` answered.
pub struct Fetched {
    pub access_token: String,
    pub expires_in: i64,
}

/// When to fetch again after WeChat said `expires_in`: 5 minutes before expiry (WeChat renews
/// then, and both tokens work for those minutes), but never sooner than half the lifetime —
/// a normal-mode call near the end returns the same token with its remaining lifetime (≥ 300 s).
pub fn refresh_in(expires_in: i64) -> i64 {
    (expires_in - 300).max(expires_in / 2).max(1)
}

/// The shared token of one appid, with this process's copy.
pub struct SharedToken {
    store: DynStore,
    appid: String,
    local: Mutex<Option<Token>>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn store_error(e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Unavailable(format!("access token store: {e}"))
}

impl SharedToken {
    pub fn new(store: DynStore, appid: &str) -> Self {
        SharedToken {
            store,
            appid: appid.to_owned(),
            local: Mutex::new(None),
        }
    }

    fn local(&self) -> Option<Token> {
        self.local.lock().ok().and_then(|t| t.clone())
    }

    fn keep(&self, token: Option<Token>) {
        if let Ok(mut local) = self.local.lock() {
            *local = token;
        }
    }

    /// A token to call WeChat with; `fetch` is called (by one caller across all processes) when
    /// the stored one is due for a refresh.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<Token, PlatformError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Fetched, PlatformError>>,
    {
        if let Some(token) = self.local().filter(|t| now() < t.refresh_at) {
            return Ok(token);
        }
        let key = keys::wechat_token(&self.appid);
        let deadline = tokio::time::Instant::now() + WAIT_FOR_REFRESH;
        loop {
            let stored: Option<StoredToken> =
                self.store.get_record(&key).await.map_err(store_error)?;
            let t = now();
            let usable = stored.as_ref().and_then(|s| usable(s, t));
            if let Some(token) = usable.clone().filter(|u| t < u.refresh_at) {
                self.keep(Some(token.clone()));
                return Ok(token);
            }
            // Due (or none): try to become the refresher.
            let lease = match &stored {
                None => Write::put_if(
                    StoredToken {
                        token: None,
                        expires_at: 0,
                        refresh_at: 0,
                        version: 0,
                        lease_until: Some(t + LEASE_SECS),
                    }
                    .to_item(key.clone(), None)
                    .map_err(store_error)?,
                    Condition::Absent,
                    "token_absent",
                ),
                Some(s) => Write::update(key.clone())
                    .set("lease_until", t + LEASE_SECS)
                    .condition(
                        Condition::All(vec![
                            Condition::Equals("version".into(), s.version.into()),
                            Condition::Under("lease_until".into(), t),
                        ]),
                        "token_unleased",
                    )
                    .build(),
            };
            match self.store.write(lease).await {
                Ok(_) => {
                    let version = stored.as_ref().map_or(0, |s| s.version);
                    return self.refresh(version, fetch().await).await;
                }
                Err(StoreError::ConditionFailed { .. }) => {
                    // Another caller refreshes: use the current token while it is valid.
                    if let Some(token) = usable {
                        return Ok(token);
                    }
                }
                Err(e) => return Err(store_error(e)),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PlatformError::Unavailable(
                    "no WeChat access token yet: another caller is fetching it".into(),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stores what the elected refresher fetched (or releases the lease on a failure).
    async fn refresh(
        &self,
        version: i64,
        fetched: Result<Fetched, PlatformError>,
    ) -> Result<Token, PlatformError> {
        let key = keys::wechat_token(&self.appid);
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => {
                // Let the next caller try at once rather than after the lease.
                let release = Write::update(key)
                    .remove("lease_until")
                    .condition(
                        Condition::Equals("version".into(), version.into()),
                        "token_version",
                    )
                    .build();
                let _ = self.store.write(release).await;
                return Err(e);
            }
        };
        let t = now();
        let token = Token {
            value: Redacted(fetched.access_token),
            version: version + 1,
            refresh_at: t + refresh_in(fetched.expires_in),
            expires_at: t + fetched.expires_in,
        };
        let write = Write::update(key)
            .set("token", token.value.0.clone())
            .set("expires_at", token.expires_at)
            .set("refresh_at", token.refresh_at)
            .set("version", token.version)
            .remove("lease_until")
            .condition(
                Condition::Equals("version".into(), version.into()),
                "token_version",
            )
            .build();
        match self.store.write(write).await {
            // A slower refresher lost to a faster one: both tokens are valid (normal mode).
            Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(store_error(e)),
        }
        self.keep(Some(token.clone()));
        Ok(token)
    }

    /// WeChat refused `failed` as invalid or expired: expire the stored token if it is still
    /// that one (another caller may already have replaced it), and forget this process's copy.
    pub async fn expire(&self, failed: &Token) -> Result<(), PlatformError> {
        self.keep(None);
        // Not usable any more (not only due): the others wait for the new one rather than
        // failing with it.
        let write = Write::update(keys::wechat_token(&self.appid))
            .set("refresh_at", 0)
            .set("expires_at", 0)
            .condition(
                Condition::Equals("version".into(), failed.version.into()),
                "token_version",
            )
            .build();
        match self.store.write(write).await {
            Ok(_) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// The stored token if it may still be used at `t`.
fn usable(stored: &StoredToken, t: i64) -> Option<Token> {
    let value = stored.token.clone()?;
    (t < stored.expires_at).then_some(Token {
        value: Redacted(value),
        version: stored.version,
        refresh_at: stored.refresh_at,
        expires_at: stored.expires_at,
    })
}

impl Token {
    /// Epoch seconds until which WeChat accepts it.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_five_minutes_early_but_not_in_a_loop() {
        assert_eq!(refresh_in(7200), 6900);
        assert_eq!(refresh_in(600), 300);
        assert_eq!(refresh_in(345), 172);
        assert_eq!(refresh_in(0), 1);
    }
}
