//! The storage port: the few operations DynamoDB does well, written once for the domain and
//! implemented by two adapters (DynamoDB in production, an embedded database locally).
//!
//! Items are JSON objects whose `pk` and `sk` string attributes form the primary key; secondary
//! indexes are declared in `template.yaml` and mirrored by [`schema::TABLE`]. Every key format
//! is in [`keys`]; the domain stores typed [`Record`]s, which [`record`] turns into items and
//! back. Invariants are kept by conditions on writes and by [`Store::transact`], never by
//! read-then-write.

pub mod cursor;
pub mod dynamo;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod keys;
pub mod record;
pub mod schema;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

pub use cursor::{Cursor, PageCursor};
pub use record::{Record, Records};

/// One stored item: attribute name → value. Numbers are stored as DynamoDB `N`.
pub type Item = Map<String, Value>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";

/// A shared handle to whichever adapter the process was configured with.
pub type DynStore = Arc<dyn Store>;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of an item, if it has string `pk` and `sk` attributes.
    pub fn of(item: &Item) -> Option<Key> {
        Some(Key::new(item.get(PK)?.as_str()?, item.get(SK)?.as_str()?))
    }
}

/// A condition on the current state of one item, checked atomically with the write.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Condition {
    /// No item with this key exists.
    Absent,
    /// An item with this key exists.
    Present,
    /// The item exists and the attribute equals the value.
    Equals(String, Value),
    /// The item exists and the numeric attribute is at least the bound.
    AtLeast(String, i64),
    /// The numeric attribute is absent (or the item is) or below the bound: a capped counter.
    Under(String, i64),
    /// The item exists and has the attribute (any value).
    Has(String),
    /// The attribute is absent (or the whole item is).
    Lacks(String),
    /// Every condition holds.
    All(Vec<Condition>),
}

/// A condition and the label the domain gave it: a failed condition is reported by its label
/// ([`StoreError::ConditionFailed`]), never by its write's position in a transaction, so
/// reordering writes cannot change an answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Labelled {
    pub condition: Condition,
    /// Not part of what DynamoDB sees, so not part of a transaction's fingerprint either.
    #[serde(skip)]
    pub label: &'static str,
}

/// One write, alone or inside a transaction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Write {
    /// Replace the whole item.
    Put {
        item: Item,
        condition: Option<Labelled>,
    },
    /// Set, add to (numbers) and remove attributes; creates the item when absent, as DynamoDB does.
    Update {
        key: Key,
        set: Item,
        add: Vec<(String, i64)>,
        remove: Vec<String>,
        condition: Option<Labelled>,
    },
    Delete {
        key: Key,
        condition: Option<Labelled>,
    },
    /// Only check a condition (transactions only).
    Check {
        key: Key,
        condition: Condition,
        #[serde(skip)]
        label: &'static str,
    },
}

impl Write {
    pub fn put(item: Item) -> Self {
        Write::Put {
            item,
            condition: None,
        }
    }

    pub fn put_if(item: Item, condition: Condition, label: &'static str) -> Self {
        Write::Put {
            item,
            condition: Some(Labelled { condition, label }),
        }
    }

    pub fn update(key: Key) -> UpdateBuilder {
        UpdateBuilder {
            key,
            set: Item::new(),
            add: Vec::new(),
            remove: Vec::new(),
            condition: None,
        }
    }

    pub fn delete(key: Key) -> Self {
        Write::Delete {
            key,
            condition: None,
        }
    }

    pub fn delete_if(key: Key, condition: Condition, label: &'static str) -> Self {
        Write::Delete {
            key,
            condition: Some(Labelled { condition, label }),
        }
    }

    /// Only checks `condition` on the item at `key` (transactions only).
    pub fn check(key: Key, condition: Condition, label: &'static str) -> Self {
        Write::Check {
            key,
            condition,
            label,
        }
    }

    /// The write's condition and its label, if it has one.
    pub fn condition(&self) -> Option<(&Condition, &'static str)> {
        match self {
            Write::Put { condition, .. }
            | Write::Update { condition, .. }
            | Write::Delete { condition, .. } => {
                condition.as_ref().map(|l| (&l.condition, l.label))
            }
            Write::Check {
                condition, label, ..
            } => Some((condition, label)),
        }
    }

    /// The label of the write's condition ("" for an unconditional write).
    pub fn label(&self) -> &'static str {
        self.condition().map_or("", |(_, label)| label)
    }

    /// The key this write touches.
    pub fn key(&self) -> Option<Key> {
        match self {
            Write::Put { item, .. } => Key::of(item),
            Write::Update { key, .. } | Write::Delete { key, .. } | Write::Check { key, .. } => {
                Some(key.clone())
            }
        }
    }
}

/// Builds a [`Write::Update`] one attribute at a time.
#[derive(Clone, Debug)]
pub struct UpdateBuilder {
    key: Key,
    set: Item,
    add: Vec<(String, i64)>,
    remove: Vec<String>,
    condition: Option<Labelled>,
}

impl UpdateBuilder {
    pub fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.set.insert(name.to_owned(), value.into());
        self
    }

    pub fn add(mut self, name: &str, delta: i64) -> Self {
        self.add.push((name.to_owned(), delta));
        self
    }

    pub fn remove(mut self, name: &str) -> Self {
        self.remove.push(name.to_owned());
        self
    }

    pub fn condition(mut self, condition: Condition, label: &'static str) -> Self {
        self.condition = Some(Labelled { condition, label });
        self
    }

    pub fn build(self) -> Write {
        Write::Update {
            key: self.key,
            set: self.set,
            add: self.add,
            remove: self.remove,
            condition: self.condition,
        }
    }
}

/// Which sort keys a query returns.
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    Any,
    Prefix(String),
    /// Inclusive on both ends.
    Between(String, String),
    Below(String),
    Above(String),
}

impl SortKey {
    /// Where a sort-key value lies against this range, in ascending order: `Less` before it,
    /// `Equal` inside it, `Greater` after it. A cursor only ever narrows a query with this.
    pub fn locate(&self, value: &str) -> std::cmp::Ordering {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            SortKey::Any => Equal,
            // A value outside the prefix that sorts above it sorts above every value inside.
            SortKey::Prefix(p) if value.starts_with(p.as_str()) => Equal,
            SortKey::Prefix(p) => value.cmp(p.as_str()),
            SortKey::Between(a, _) if value < a.as_str() => Less,
            SortKey::Between(_, b) if value > b.as_str() => Greater,
            SortKey::Between(..) => Equal,
            SortKey::Below(b) if value < b.as_str() => Equal,
            SortKey::Below(_) => Greater,
            SortKey::Above(a) if value > a.as_str() => Equal,
            SortKey::Above(_) => Less,
        }
    }
}

/// A query of one partition of the table or of a secondary index.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// `None` queries the table; otherwise the index name from [`schema::TABLE`].
    pub index: Option<&'static str>,
    pub partition: String,
    pub sort: SortKey,
    pub ascending: bool,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl Query {
    pub fn partition(partition: impl Into<String>) -> Self {
        Query {
            index: None,
            partition: partition.into(),
            sort: SortKey::Any,
            ascending: true,
            limit: 100,
            cursor: None,
        }
    }

    pub fn index(mut self, index: &'static str) -> Self {
        self.index = Some(index);
        self
    }

    pub fn sort(mut self, sort: SortKey) -> Self {
        self.sort = sort;
        self
    }

    pub fn descending(mut self) -> Self {
        self.ascending = false;
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }
}

/// One page of a query; `next` is `None` exactly when nothing follows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A condition did not hold; `label` is the one the domain gave that write's condition.
    ConditionFailed { label: &'static str },
    /// Another transaction touched the same items, and the adapter's own retries (each a new
    /// attempt with a new client request token) did not get through.
    Conflict,
    /// A client request token was used again within its 10 minutes for other writes.
    IdempotentMismatch,
    /// Too many requests for the table's capacity.
    Throttled,
    /// The store could not be reached or failed.
    Unavailable(String),
    /// The request was malformed: a bug in the caller.
    Invalid(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::ConditionFailed { label } => write!(f, "condition {label:?} failed"),
            StoreError::Conflict => write!(f, "transaction conflict"),
            StoreError::IdempotentMismatch => {
                write!(f, "client request token reused for other writes")
            }
            StoreError::Throttled => write!(f, "throttled"),
            StoreError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            StoreError::Invalid(m) => write!(f, "invalid store request: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The most writes one transaction may hold (DynamoDB's limit).
pub const MAX_TRANSACTION_WRITES: usize = 100;

/// The most keys one `get_many` may ask for (DynamoDB's BatchGetItem limit).
pub const MAX_BATCH_GET: usize = 100;

#[async_trait]
pub trait Store: Send + Sync {
    /// Reads one item (strongly consistent).
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// Reads up to [`MAX_BATCH_GET`] items at once; the answer is in the order of `keys`.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError>;
    /// One conditional write; answers the item as the write left it (`None` after a delete), so
    /// an update needs no read to show its result. `Write::Check` is only valid in a transaction.
    async fn write(&self, write: Write) -> Result<Option<Item>, StoreError>;
    /// All writes or none; at most [`MAX_TRANSACTION_WRITES`], each key at most once. Each
    /// attempt the adapter makes (it retries a conflict itself) carries a new client request
    /// token.
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// As [`Store::transact`], with the caller's client request token (see
    /// [`validate_token`]): within [`TOKEN_WINDOW_SECS`] of a commit, the same token with the
    /// same writes answers `Ok` and applies nothing again; with other writes it answers
    /// [`StoreError::IdempotentMismatch`]. For a caller that retries a whole transaction.
    async fn transact_with_token(&self, token: &str, writes: Vec<Write>) -> Result<(), StoreError>;
    /// One page of a partition, ordered by sort key.
    async fn query(&self, query: Query) -> Result<Page, StoreError>;
    /// Every item of the table (a full scan): for tests and operators proving what the table
    /// holds (the account-deletion proof), never for a function's request — no IAM statement
    /// grants `Scan`. Adapters that cannot answer it refuse.
    async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        Err(StoreError::Invalid("this store does not scan".into()))
    }
}

/// How long a client request token is remembered after its transaction (DynamoDB's window).
pub const TOKEN_WINDOW_SECS: i64 = 600;

/// A fresh client request token: 128 random bits, URL-safe.
pub fn request_token() -> String {
    crate::ids::random_token()
}

/// DynamoDB's rule for a client request token: 1 to 36 characters; we also keep to URL-safe
/// ASCII, so a token is never a key part holding a separator.
pub fn validate_token(token: &str) -> Result<(), StoreError> {
    let ok = (1..=36).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(StoreError::Invalid(
            "a client request token is 1 to 36 of [A-Za-z0-9_-]".into(),
        ));
    }
    Ok(())
}

/// What a transaction asks for, as a SHA-256 (labels aside, which DynamoDB never sees): the
/// embedded store's check that a replayed token carries the same writes.
pub fn fingerprint(writes: &[Write]) -> Result<[u8; 32], StoreError> {
    let bytes = serde_json::to_vec(writes)
        .map_err(|e| StoreError::Invalid(format!("unserialisable writes: {e}")))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Ok(out)
}

/// Checks what both adapters require of a transaction before running it.
pub(crate) fn validate_transaction(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() || writes.len() > MAX_TRANSACTION_WRITES {
        return Err(StoreError::Invalid(format!(
            "a transaction holds 1 to {MAX_TRANSACTION_WRITES} writes, not {}",
            writes.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for write in writes {
        let key = write
            .key()
            .ok_or_else(|| StoreError::Invalid("write without a string pk and sk".into()))?;
        if !seen.insert(key) {
            return Err(StoreError::Invalid(
                "a transaction touches the same item twice".into(),
            ));
        }
    }
    Ok(())
}

/// Checks what both adapters require of a batch read.
pub(crate) fn validate_batch(keys: &[Key]) -> Result<(), StoreError> {
    if keys.len() > MAX_BATCH_GET {
        return Err(StoreError::Invalid(format!(
            "a batch read holds at most {MAX_BATCH_GET} keys, not {}",
            keys.len()
        )));
    }
    keys.iter().try_for_each(validate_key)
}

/// Checks what both adapters require of a key.
pub(crate) fn validate_key(key: &Key) -> Result<(), StoreError> {
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(StoreError::Invalid("empty key attribute".into()));
    }
    Ok(())
}

/// Evaluates a condition against the current item; shared by the embedded adapter and tests.
pub fn condition_holds(condition: &Condition, current: Option<&Item>) -> bool {
    match condition {
        Condition::Absent => current.is_none(),
        Condition::Present => current.is_some(),
        Condition::Equals(name, value) => current.and_then(|i| i.get(name)) == Some(value),
        Condition::Has(name) => current.is_some_and(|i| i.get(name).is_some_and(|v| !v.is_null())),
        Condition::Lacks(name) => current.and_then(|i| i.get(name)).is_none(),
        Condition::AtLeast(name, bound) => current
            .and_then(|i| i.get(name))
            .and_then(Value::as_i64)
            .is_some_and(|v| v >= *bound),
        Condition::Under(name, bound) => match current.and_then(|i| i.get(name)) {
            None => true,
            Some(v) => v.as_i64().is_some_and(|v| v < *bound),
        },
        Condition::All(all) => all.iter().all(|c| condition_holds(c, current)),
    }
}

/// DynamoDB's semantics of one write on the item it finds, for in-process stores: the item it
/// leaves (`Some(None)`: deleted; `None`: a check, nothing changes), or `ConditionFailed`.
pub fn apply_write(write: &Write, old: Option<&Item>) -> Result<Option<Option<Item>>, StoreError> {
    if let Some((condition, label)) = write.condition() {
        if !condition_holds(condition, old) {
            return Err(StoreError::ConditionFailed { label });
        }
    }
    Ok(match write {
        Write::Put { item, .. } => Some(Some(item.clone())),
        Write::Delete { .. } => Some(None),
        Write::Check { .. } => None,
        Write::Update {
            key,
            set,
            add,
            remove,
            ..
        } => {
            let touched = set.keys().chain(add.iter().map(|(n, _)| n)).chain(remove);
            if touched.into_iter().any(|n| n == PK || n == SK) {
                return Err(StoreError::Invalid(
                    "an update cannot change the key".into(),
                ));
            }
            if set.is_empty() && add.is_empty() && remove.is_empty() {
                return Err(StoreError::Invalid("an update that changes nothing".into()));
            }
            let mut item = old.cloned().unwrap_or_else(|| {
                let mut fresh = Item::new();
                fresh.insert(PK.into(), Value::String(key.pk.clone()));
                fresh.insert(SK.into(), Value::String(key.sk.clone()));
                fresh
            });
            for (name, value) in set {
                item.insert(name.clone(), value.clone());
            }
            for (name, delta) in add {
                let base = match item.get(name) {
                    None => 0,
                    Some(v) => v.as_i64().ok_or_else(|| {
                        StoreError::Invalid(format!("ADD to non-integer attribute {name}"))
                    })?,
                };
                item.insert(name.clone(), Value::from(base + delta));
            }
            for name in remove {
                item.remove(name);
            }
            Some(Some(item))
        }
    })
}
