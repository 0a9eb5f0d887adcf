//! Idempotency keys for writes a client may retry (api.md: order creation, payment start): the
//! client sends an `Idempotency-Key` header, and a repeat of the request with the same key gets
//! the first answer instead of a second effect.
//!
//! One record per (member, route, key): `USER#<member> / IDEMPOTENCY#<route>#<key>`, holding the
//! SHA-256 of the request (route and body) and the response (status and body), kept 24 hours
//! (`ttl`; an expired record counts as absent everywhere, since DynamoDB deletes late and the
//! embedded store never does). The record is a write in the effect's own transaction, conditioned
//! on no live record holding the key, so the effect and its record commit together or not at all:
//!
//! ```text
//! match idempotency::begin(store, member, "POST /v1/orders", &key, body).await? {
//!     Begin::Replay(stored) => answer(stored),
//!     Begin::Fresh(guard) => answer(guard.commit(store, effect_writes, response, map).await?),
//! }
//! ```
//!
//! Two requests racing with one key: one transaction commits; the other's fails on the record's
//! condition (label [`LABEL`]) and answers the winner's response (or 422 if its body differed).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::members::now_rfc3339;
use crate::error::Error;
use crate::ids::UserId;
use crate::store::schema::TABLE;
use crate::store::{Condition, DynStore, Item, Key, StoreError, Write};

/// The request header that carries a key.
pub const HEADER: &str = "Idempotency-Key";
/// How long a key is remembered.
pub const KEEP_SECS: i64 = 24 * 60 * 60;
/// The label of the record's condition in the effect's transaction.
pub const LABEL: &str = "idempotency_key";
const MAX_KEY_LEN: usize = 64;

/// A client's idempotency key: 1 to 64 printable ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Reads a key from text or from a header's raw bytes.
    pub fn parse(text: impl AsRef<[u8]>) -> Result<Self, Error> {
        let bytes = text.as_ref();
        let printable = bytes.iter().all(|b| (0x20..=0x7e).contains(b));
        match std::str::from_utf8(bytes) {
            Ok(text) if printable && (1..=MAX_KEY_LEN).contains(&text.len()) => {
                Ok(IdempotencyKey(text.to_owned()))
            }
            _ => Err(Error::invalid(
                HEADER,
                format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A response as kept for repeats: its status and JSON body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Value,
}

/// What [`begin`] found.
#[derive(Debug)]
pub enum Begin {
    /// This key already answered this request: answer the same.
    Replay(StoredResponse),
    /// The key is new (or its record expired): do the effect through the guard.
    Fresh(Guard),
}

/// The key of a member's record for `route` (method and path as requested, path parameters
/// filled in, e.g. `POST /v1/orders`) and `key`.
pub fn record_key(member: &UserId, route: &str, key: &IdempotencyKey) -> Key {
    Key::new(
        format!("USER#{member}"),
        format!("IDEMPOTENCY#{route}#{}", key.as_str()),
    )
}

fn request_hash(route: &str, request: &[u8]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(route.as_bytes());
    context.update(&[0]);
    context.update(request);
    context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A live record's request hash and response; `None` when absent or expired.
fn live(record: Option<Item>, now: i64) -> Result<Option<(String, StoredResponse)>, Error> {
    let Some(record) = record else {
        return Ok(None);
    };
    let ttl = record.get(TABLE.ttl_attribute).and_then(Value::as_i64);
    if ttl.is_none_or(|ttl| ttl <= now) {
        return Ok(None);
    }
    let corrupt = || Error::Internal("stored idempotency record unreadable".into());
    let hash = record
        .get("request_sha256")
        .and_then(Value::as_str)
        .ok_or_else(corrupt)?;
    let response = record
        .get("response")
        .and_then(Value::as_str)
        .and_then(|r| serde_json::from_str(r).ok())
        .ok_or_else(corrupt)?;
    Ok(Some((hash.to_owned(), response)))
}

fn reused() -> Error {
    Error::Unprocessable {
        code: "idempotency_key_reused",
        field: HEADER,
        message: "this Idempotency-Key was used for a request with another body".into(),
    }
}

/// Looks the key up for this request (`request`: the body as received): the stored answer, 422
/// `idempotency_key_reused` when the key answered another body, or a guard for a new effect.
pub async fn begin(
    store: &DynStore,
    member: &UserId,
    route: &str,
    key: &IdempotencyKey,
    request: &[u8],
) -> Result<Begin, Error> {
    let record_key = record_key(member, route, key);
    let request_hash = request_hash(route, request);
    let now = now_secs();
    match live(store.get(&record_key).await?, now)? {
        Some((hash, response)) if hash == request_hash => Ok(Begin::Replay(response)),
        Some(_) => Err(reused()),
        None => Ok(Begin::Fresh(Guard {
            key: record_key,
            request_hash,
            now,
        })),
    }
}

/// A key no live record holds yet: its record goes in the effect's transaction.
#[derive(Debug)]
pub struct Guard {
    key: Key,
    request_hash: String,
    now: i64,
}

impl Guard {
    /// The record of `response`, for the effect's transaction: it commits only while no live
    /// record holds the key (an expired one is replaced), labelled [`LABEL`].
    pub fn write(&self, response: &StoredResponse) -> Result<Write, Error> {
        let mut item = Item::new();
        item.insert("pk".into(), self.key.pk.clone().into());
        item.insert("sk".into(), self.key.sk.clone().into());
        item.insert("request_sha256".into(), self.request_hash.clone().into());
        let text = serde_json::to_string(response).map_err(|e| Error::Internal(e.to_string()))?;
        item.insert("response".into(), text.into());
        item.insert("created_at".into(), now_rfc3339().into());
        item.insert(TABLE.ttl_attribute.into(), (self.now + KEEP_SECS).into());
        // Absent, or expired (its ttl at most now).
        let free = Condition::Under(TABLE.ttl_attribute.into(), self.now + 1);
        Ok(Write::put_if(item, free, LABEL))
    }

    /// When the effect's transaction failed because another request with this key committed
    /// first: that request's answer, or 422 if it carried another body.
    pub async fn settle(self, store: &DynStore) -> Result<Option<StoredResponse>, Error> {
        match live(store.get(&self.key).await?, now_secs())? {
            Some((hash, response)) if hash == self.request_hash => Ok(Some(response)),
            Some(_) => Err(reused()),
            None => Ok(None),
        }
    }

    /// Commits the effect's `writes` with the record of `response` in one transaction and
    /// answers `response`; a concurrent request with the same key that won is answered as a
    /// replay. Other store errors go through `map` (the caller's labels, say).
    pub async fn commit(
        self,
        store: &DynStore,
        mut writes: Vec<Write>,
        response: StoredResponse,
        map: impl FnOnce(StoreError) -> Error,
    ) -> Result<StoredResponse, Error> {
        writes.push(self.write(&response)?);
        match store.transact(writes).await {
            Ok(()) => Ok(response),
            Err(StoreError::ConditionFailed { label: LABEL }) => {
                let won = self.settle(store).await?;
                // Expired again between the two reads: only a 24-hour-old race gets here.
                won.ok_or_else(|| StoreError::Conflict.into())
            }
            // The adapter retried and still met another transaction: most likely the one with
            // this key, in which case its record answers.
            Err(StoreError::Conflict) => match self.settle(store).await? {
                Some(won) => Ok(won),
                None => Err(StoreError::Conflict.into()),
            },
            Err(e) => Err(map(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_64_printable_ascii_characters() {
        for good in [
            "a",
            "order-2026-01-01T00:00:00Z#1",
            "with space",
            &"k".repeat(64),
        ] {
            assert_eq!(IdempotencyKey::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            &"k".repeat(65),
            "é",
            "tab\there",
            "line\n",
            "\u{7f}",
            "中文",
        ] {
            let err = IdempotencyKey::parse(bad).unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field, .. } if field == HEADER),
                "{bad:?}: {err:?}"
            );
            assert_eq!(err.status().as_u16(), 422);
        }
    }

    #[test]
    fn the_request_hash_covers_route_and_body() {
        let a = request_hash("POST /v1/orders", b"{}");
        assert_eq!(a.len(), 64);
        assert_eq!(a, request_hash("POST /v1/orders", b"{}"));
        assert_ne!(a, request_hash("POST /v1/orders", b"{ }"));
        assert_ne!(a, request_hash("POST /v1/payments", b"{}"));
        // The separator keeps route and body apart.
        assert_ne!(request_hash("a", b"b"), request_hash("ab", b""));
    }
}
