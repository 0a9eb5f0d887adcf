//! The embedded adapter: a persistent, transactional redb database inside the process, for local
//! runs and tests. It keeps DynamoDB's semantics (conditions, upserting updates, sparse indexes,
//! sort orders, cursors) so domain code behaves the same on both.
//!
//! Layout: one redb table of items keyed `pk 0x00 sk` (JSON values), and one key-only redb table
//! per secondary index keyed `ipk 0x00 isk 0x00 pk 0x00 sk`. Keys never hold 0x00, and UTF-8 never
//! holds 0xFF, so byte ranges over these keys are exactly DynamoDB's sort-key conditions. A third
//! table remembers client request tokens (`token` → expiry and the SHA-256 of the writes) for
//! [`TOKEN_WINDOW_SECS`], written in the same redb transaction as the writes they name.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde_json::Value;

use super::schema::{IndexSpec, TableSpec};
use super::{
    apply_write, fingerprint, validate_batch, validate_key, validate_token, validate_transaction,
    Cursor, Item, Key, Page, Query, SortKey, Store, StoreError, Write, PK, SK, TOKEN_WINDOW_SECS,
};

const ITEMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("items");
/// Client request token → expiry (epoch seconds, 8 bytes big-endian) then the writes' SHA-256.
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("client_request_tokens");
const SEP: u8 = 0x00;

pub struct EmbeddedStore {
    db: Arc<Database>,
    table: TableSpec,
}

impl EmbeddedStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path, table: TableSpec) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(unavailable)?;
        // Create every table up front so readers never meet a missing one.
        let txn = db.begin_write().map_err(unavailable)?;
        txn.open_table(ITEMS).map_err(unavailable)?;
        txn.open_table(TOKENS).map_err(unavailable)?;
        for index in table.indexes {
            txn.open_table(index_table(index)).map_err(unavailable)?;
        }
        txn.commit().map_err(unavailable)?;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            table,
        })
    }

    /// Runs blocking database work off the async executor.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database, &TableSpec) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        let table = self.table;
        tokio::task::spawn_blocking(move || work(&db, &table))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

fn index_table(index: &IndexSpec) -> TableDefinition<'static, &'static [u8], ()> {
    TableDefinition::new(index.name)
}

fn unavailable(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(e.into().to_string())
}

fn joined(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn check_part(part: &str) -> Result<(), StoreError> {
    if part.as_bytes().contains(&SEP) {
        return Err(StoreError::Invalid("key attribute holds a NUL".into()));
    }
    Ok(())
}

fn item_key(key: &Key) -> Result<Vec<u8>, StoreError> {
    validate_key(key)?;
    check_part(&key.pk)?;
    check_part(&key.sk)?;
    Ok(joined(&[&key.pk, &key.sk]))
}

/// The index entry of an item, if it carries both string index attributes (indexes are sparse).
fn index_entry(index: &IndexSpec, item: &Item, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
    let (Some(Value::String(ipk)), Some(Value::String(isk))) =
        (item.get(index.pk), item.get(index.sk))
    else {
        return Ok(None);
    };
    if ipk.is_empty() || isk.is_empty() {
        return Err(StoreError::Invalid("empty index key attribute".into()));
    }
    check_part(ipk)?;
    check_part(isk)?;
    Ok(Some(joined(&[ipk, isk, &key.pk, &key.sk])))
}

fn read_item(bytes: &[u8]) -> Result<Item, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Unavailable(format!("corrupt item: {e}")))
}

fn current(txn: &WriteTransaction, key: &Key) -> Result<Option<Item>, StoreError> {
    let items = txn.open_table(ITEMS).map_err(unavailable)?;
    let found = items.get(item_key(key)?.as_slice()).map_err(unavailable)?;
    found.map(|v| read_item(v.value())).transpose()
}

/// Replaces (or with `None`, deletes) the item at `key`, keeping every index in step.
fn store_item(
    txn: &WriteTransaction,
    table: &TableSpec,
    key: &Key,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Result<(), StoreError> {
    let raw_key = item_key(key)?;
    for index in table.indexes {
        let mut entries = txn.open_table(index_table(index)).map_err(unavailable)?;
        if let Some(old_entry) = old
            .map(|o| index_entry(index, o, key))
            .transpose()?
            .flatten()
        {
            entries.remove(old_entry.as_slice()).map_err(unavailable)?;
        }
        if let Some(new_entry) = new
            .map(|n| index_entry(index, n, key))
            .transpose()?
            .flatten()
        {
            entries
                .insert(new_entry.as_slice(), ())
                .map_err(unavailable)?;
        }
    }
    let mut items = txn.open_table(ITEMS).map_err(unavailable)?;
    match new {
        Some(item) => {
            let bytes = serde_json::to_vec(item)
                .map_err(|e| StoreError::Invalid(format!("unserialisable item: {e}")))?;
            items
                .insert(raw_key.as_slice(), bytes.as_slice())
                .map_err(unavailable)?;
        }
        None => {
            items.remove(raw_key.as_slice()).map_err(unavailable)?;
        }
    }
    Ok(())
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// What the token table says of `token` within its window: `Some(true)` the same writes
/// committed, `Some(false)` other writes did; `None` unknown or expired.
fn replayed(
    txn: &WriteTransaction,
    token: &str,
    hash: &[u8; 32],
    now: i64,
) -> Result<Option<bool>, StoreError> {
    let tokens = txn.open_table(TOKENS).map_err(unavailable)?;
    let Some(found) = tokens.get(token).map_err(unavailable)? else {
        return Ok(None);
    };
    let value = found.value();
    let expires = value
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_be_bytes)
        .ok_or_else(|| StoreError::Unavailable("corrupt token record".into()))?;
    Ok((expires > now).then(|| &value[8..] == hash.as_slice()))
}

/// Remembers `token` for the window, and forgets the tokens whose window has passed (so the
/// table holds about ten minutes of tokens).
fn remember(
    txn: &WriteTransaction,
    token: &str,
    hash: &[u8; 32],
    now: i64,
) -> Result<(), StoreError> {
    let mut tokens = txn.open_table(TOKENS).map_err(unavailable)?;
    tokens
        .retain(|_, value| {
            value
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .is_some_and(|b| i64::from_be_bytes(b) > now)
        })
        .map_err(unavailable)?;
    let mut value = (now + TOKEN_WINDOW_SECS).to_be_bytes().to_vec();
    value.extend_from_slice(hash);
    tokens
        .insert(token, value.as_slice())
        .map_err(unavailable)?;
    Ok(())
}

/// Runs the writes in one redb transaction: every condition is checked before anything changes,
/// and a failed one is reported by its label. With a client request token, a replay of committed
/// writes applies nothing and answers as the first call did; the token is remembered only with a
/// commit (a cancelled transaction changed nothing, so trying it again is safe).
fn run_writes(
    db: &Database,
    table: &TableSpec,
    writes: &[Write],
    token: Option<&str>,
) -> Result<Vec<Option<Item>>, StoreError> {
    let txn = db.begin_write().map_err(unavailable)?;
    let now = now_secs();
    let token = token.map(|t| Ok((t, fingerprint(writes)?))).transpose()?;
    if let Some((token, hash)) = &token {
        match replayed(&txn, token, hash, now)? {
            Some(true) => return Ok(Vec::new()),
            Some(false) => return Err(StoreError::IdempotentMismatch),
            None => {}
        }
    }
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        let key = write
            .key()
            .ok_or_else(|| StoreError::Invalid("item without key".into()))?;
        let old = current(&txn, &key)?;
        let new = apply_write(write, old.as_ref())?;
        results.push((key, old, new));
    }
    for (key, old, new) in &results {
        if let Some(new) = new {
            store_item(&txn, table, key, old.as_ref(), new.as_ref())?;
        }
    }
    if let Some((token, hash)) = &token {
        remember(&txn, token, hash, now)?;
    }
    txn.commit().map_err(unavailable)?;
    // What each write left: its new item, or for a check the item as it was.
    Ok(results
        .into_iter()
        .map(|(_, old, new)| new.unwrap_or(old))
        .collect())
}

/// The byte range of keys a sort-key condition selects within `partition`.
fn sort_range(partition: &str, sort: &SortKey) -> (Vec<u8>, Vec<u8>) {
    let mut base = partition.as_bytes().to_vec();
    base.push(SEP);
    let with = |s: &str, tail: &[u8]| {
        let mut v = base.clone();
        v.extend_from_slice(s.as_bytes());
        v.extend_from_slice(tail);
        v
    };
    let mut partition_end = partition.as_bytes().to_vec();
    partition_end.push(SEP + 1);
    match sort {
        SortKey::Any => (base.clone(), partition_end),
        SortKey::Prefix(p) => (with(p, &[]), with(p, &[0xFF])),
        SortKey::Between(a, b) => (with(a, &[]), with(b, &[SEP + 1])),
        SortKey::Below(b) => (base.clone(), with(b, &[])),
        SortKey::Above(a) => (with(a, &[SEP + 1]), partition_end),
    }
}

fn run_query(db: &Database, table: &TableSpec, query: &Query) -> Result<Page, StoreError> {
    check_part(&query.partition)?;
    let index = match query.index {
        Some(name) => Some(
            *table
                .index(name)
                .ok_or_else(|| StoreError::Invalid(format!("unknown index {name}")))?,
        ),
        None => None,
    };
    let (lo, hi) = sort_range(&query.partition, &query.sort);
    let mut lower = Bound::Included(lo);
    let mut upper = Bound::Excluded(hi);
    // A cursor narrows the query's range, never replaces it: the page starts after the cursor
    // and still ends where the sort-key condition ends, wherever the cursor points.
    if let Some(cursor) = &query.cursor {
        let get = |n: &str| cursor.get(n).unwrap_or_default();
        let at = match &index {
            Some(ix) => joined(&[get(ix.pk), get(ix.sk), get(PK), get(SK)]),
            None => joined(&[get(PK), get(SK)]),
        };
        if query.ascending {
            if matches!(&lower, Bound::Included(lo) if at >= *lo) {
                lower = Bound::Excluded(at);
            }
        } else if matches!(&upper, Bound::Excluded(hi) if at < *hi) {
            upper = Bound::Excluded(at);
        }
    }
    let empty = match (&lower, &upper) {
        (Bound::Included(lo), Bound::Excluded(hi)) => lo >= hi,
        (Bound::Excluded(lo), Bound::Excluded(hi)) => lo >= hi,
        _ => false,
    };
    if empty {
        return Ok(Page::default());
    }
    let bounds = (
        lower.as_ref().map(Vec::as_slice),
        upper.as_ref().map(Vec::as_slice),
    );
    let limit = query.limit.max(1);
    let txn = db.begin_read().map_err(unavailable)?;
    let items_table = txn.open_table(ITEMS).map_err(unavailable)?;
    let mut items = Vec::new();
    let mut more = false;
    let mut push = |bytes: &[u8]| -> Result<bool, StoreError> {
        if items.len() == limit {
            more = true;
            return Ok(false);
        }
        items.push(read_item(bytes)?);
        Ok(true)
    };
    match &index {
        None => {
            let range = items_table.range::<&[u8]>(bounds).map_err(unavailable)?;
            let iter: Box<dyn Iterator<Item = _>> = if query.ascending {
                Box::new(range)
            } else {
                Box::new(range.rev())
            };
            for entry in iter {
                let (_, value) = entry.map_err(unavailable)?;
                if !push(value.value())? {
                    break;
                }
            }
        }
        Some(ix) => {
            let entries = txn.open_table(index_table(ix)).map_err(unavailable)?;
            let range = entries.range::<&[u8]>(bounds).map_err(unavailable)?;
            let iter: Box<dyn Iterator<Item = _>> = if query.ascending {
                Box::new(range)
            } else {
                Box::new(range.rev())
            };
            for entry in iter {
                let (entry_key, _) = entry.map_err(unavailable)?;
                // The item key is the last two parts of the index entry.
                let parts: Vec<&[u8]> = entry_key.value().split(|b| *b == SEP).collect();
                let item_key = parts[parts.len().saturating_sub(2)..].join(&SEP);
                let found = items_table
                    .get(item_key.as_slice())
                    .map_err(unavailable)?
                    .ok_or_else(|| StoreError::Unavailable("index entry without item".into()))?;
                if !push(found.value())? {
                    break;
                }
            }
        }
    }
    let next = if more {
        items
            .last()
            .and_then(|i| Cursor::after_item(i, query, table))
    } else {
        None
    };
    Ok(Page { items, next })
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(unavailable)?;
            let items = txn.open_table(ITEMS).map_err(unavailable)?;
            let mut all = Vec::new();
            for entry in items.iter().map_err(unavailable)? {
                let (_, value) = entry.map_err(unavailable)?;
                all.push(read_item(value.value())?);
            }
            Ok(all)
        })
        .await
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let raw = item_key(key)?;
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(unavailable)?;
            let items = txn.open_table(ITEMS).map_err(unavailable)?;
            let found = items.get(raw.as_slice()).map_err(unavailable)?;
            found.map(|v| read_item(v.value())).transpose()
        })
        .await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        validate_batch(keys)?;
        let raw: Vec<Vec<u8>> = keys.iter().map(item_key).collect::<Result<_, _>>()?;
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(unavailable)?;
            let items = txn.open_table(ITEMS).map_err(unavailable)?;
            raw.iter()
                .map(|k| {
                    let found = items.get(k.as_slice()).map_err(unavailable)?;
                    found.map(|v| read_item(v.value())).transpose()
                })
                .collect()
        })
        .await
    }

    async fn write(&self, write: Write) -> Result<Option<Item>, StoreError> {
        if matches!(write, Write::Check { .. }) {
            return Err(StoreError::Invalid(
                "a condition check is only valid in a transaction".into(),
            ));
        }
        let mut left = self
            .blocking(move |db, table| run_writes(db, table, std::slice::from_ref(&write), None))
            .await?;
        Ok(left.pop().flatten())
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_transaction(&writes)?;
        // A fresh token could never be replayed: nothing to remember.
        self.blocking(move |db, table| run_writes(db, table, &writes, None))
            .await
            .map(drop)
    }

    async fn transact_with_token(&self, token: &str, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_token(token)?;
        validate_transaction(&writes)?;
        let token = token.to_owned();
        self.blocking(move |db, table| run_writes(db, table, &writes, Some(&token)))
            .await
            .map(drop)
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.blocking(move |db, table| run_query(db, table, &query))
            .await
    }
}
