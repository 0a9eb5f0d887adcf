//! Idempotency keys for writes a client may retry (api.md: order creation, payment start): the
//! client sends an `Idempotency-Key` header, and a repeat of the request with the same key gets
//! the first answer instead of a second effect.
//!
//! One record per (member, route, key): `USER#<member> / IDEMPOTENCY#<route>#<key>`
//! ([`keys::idempotency`]), holding the
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
use crate::store::record::json_text;
use crate::store::schema::TABLE;
use crate::store::{keys, Condition, DynStore, Key, Record, Records, StoreError, Write};

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

/// A key's record: what the request was and what it answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct IdempotencyRecord {
    /// The SHA-256 of route and body, in hex.
    request_sha256: String,
    /// Kept as JSON text: a body of any shape is stored as it was answered.
    #[serde(with = "json_text")]
    response: StoredResponse,
    /// For people reading the table; never read here.
    #[serde(default)]
    created_at: String,
    /// Epoch seconds; DynamoDB's TTL attribute. A record without one counts as expired.
    #[serde(default)]
    ttl: i64,
}

impl Record for IdempotencyRecord {
    const KIND: &'static str = "idempotency record";
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
    keys::idempotency(member, route, key.as_str())
}

/// The SHA-256 of the route and the body. A JSON body counts by its value (keys in order,
/// no whitespace), so a client that re-serialises its body for a retry is answered the same.
fn request_hash(route: &str, request: &[u8]) -> String {
    let canonical = serde_json::from_slice::<Value>(request)
        .ok()
        .and_then(|value| serde_json::to_vec(&value).ok());
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(route.as_bytes());
    context.update(&[0]);
    context.update(canonical.as_deref().unwrap_or(request));
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
fn live(record: Option<IdempotencyRecord>, now: i64) -> Option<(String, StoredResponse)> {
    record
        .filter(|r| r.ttl > now)
        .map(|r| (r.request_sha256, r.response))
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
    match live(store.get_record(&record_key).await?, now) {
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
        let item = IdempotencyRecord {
            request_sha256: self.request_hash.clone(),
            response: response.clone(),
            created_at: now_rfc3339(),
            ttl: self.now + KEEP_SECS,
        }
        .to_item(self.key.clone(), None)?;
        // Absent, or expired (its ttl at most now).
        let free = Condition::Under(TABLE.ttl_attribute.into(), self.now + 1);
        Ok(Write::put_if(item, free, LABEL))
    }

    /// When the effect's transaction failed because another request with this key committed
    /// first: that request's answer, or 422 if it carried another body.
    pub async fn settle(self, store: &DynStore) -> Result<Option<StoredResponse>, Error> {
        match live(store.get_record(&self.key).await?, now_secs()) {
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
    fn the_record_keeps_its_stored_layout() {
        let member = UserId::generate();
        let key = IdempotencyKey::parse("k-1").unwrap();
        let guard = Guard {
            key: record_key(&member, "POST /v1/orders", &key),
            request_hash: request_hash("POST /v1/orders", b"{}"),
            now: 1_000,
        };
        let response = StoredResponse {
            status: 201,
            body: serde_json::json!({"order_id": "o_1"}),
        };
        let Write::Put { item, .. } = guard.write(&response).unwrap() else {
            panic!("a put");
        };
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "created_at",
                "pk",
                "request_sha256",
                "response",
                "sk",
                "ttl"
            ]
        );
        assert_eq!(item["pk"], format!("USER#{member}").as_str());
        assert_eq!(item["sk"], "IDEMPOTENCY#POST /v1/orders#k-1");
        assert_eq!(item[TABLE.ttl_attribute], 1_000 + KEEP_SECS);
        // The response is JSON text, as records written before typed records hold it.
        let text = item["response"].as_str().unwrap();
        assert_eq!(
            serde_json::from_str::<StoredResponse>(text).unwrap(),
            response
        );
        let record = IdempotencyRecord::from_item(item).unwrap();
        assert_eq!(
            live(Some(record.clone()), 1_000 + KEEP_SECS - 1),
            Some((guard.request_hash.clone(), response))
        );
        assert_eq!(live(Some(record), 1_000 + KEEP_SECS), None, "expired");
    }

    #[test]
    fn the_request_hash_covers_route_and_body() {
        let a = request_hash("POST /v1/orders", b"{}");
        assert_eq!(a.len(), 64);
        assert_eq!(a, request_hash("POST /v1/orders", b"{}"));
        // A JSON body counts by its value: spacing and key order do not make another request.
        assert_eq!(a, request_hash("POST /v1/orders", b"{ }"));
        assert_eq!(
            request_hash("POST /v1/orders", br#"{"a":1,"b":"x"}"#),
            request_hash("POST /v1/orders", b"{ \"b\": \"x\",\n \"a\": 1 }")
        );
        assert_ne!(
            request_hash("POST /v1/orders", br#"{"a":1}"#),
            request_hash("POST /v1/orders", br#"{"a":1,"remark":""}"#)
        );
        assert_ne!(
            request_hash("POST /v1/orders", br#"{"a":1}"#),
            request_hash("POST /v1/orders", br#"{"a":2}"#)
        );
        assert_ne!(a, request_hash("POST /v1/payments", b"{}"));
        // The separator keeps route and body apart.
        assert_ne!(request_hash("a", b"b"), request_hash("ab", b""));
    }
}
