//! A zero-latency store for timing handlers without store I/O: a map behind a mutex, with the
//! port's conditions and update semantics, and simple (cursor-less) queries. Items are also
//! listed by partition (the table's and each index's), so a query reads its partition only, as
//! DynamoDB's does, and its cost does not grow with what earlier calls wrote elsewhere (the
//! order job's six `DUE#` queries run beside thousands of orders).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use renji_shared::store::schema::TABLE;
use renji_shared::store::{
    apply_write, Item, Key, Page, Query, SortKey, Store, StoreError, Write, PK, SK,
};
use serde_json::Value;

#[derive(Default)]
pub struct MemStore {
    items: Mutex<Items>,
}

/// The items, and their keys by (partition attribute, partition value).
#[derive(Default)]
struct Items {
    by_key: BTreeMap<Key, Item>,
    partitions: HashMap<(&'static str, String), BTreeSet<Key>>,
}

/// The partition attributes: the table's and each index's.
fn partition_attributes() -> impl Iterator<Item = &'static str> {
    std::iter::once(PK).chain(TABLE.indexes.iter().map(|i| i.pk))
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(Value::as_str).map(str::to_owned)
}

impl Items {
    fn get(&self, key: &Key) -> Option<&Item> {
        self.by_key.get(key)
    }

    fn insert(&mut self, key: Key, item: Item) {
        self.remove(&key);
        for attribute in partition_attributes() {
            if let Some(value) = text(&item, attribute) {
                self.partitions
                    .entry((attribute, value))
                    .or_default()
                    .insert(key.clone());
            }
        }
        self.by_key.insert(key, item);
    }

    fn remove(&mut self, key: &Key) {
        let Some(old) = self.by_key.remove(key) else {
            return;
        };
        for attribute in partition_attributes() {
            if let Some(value) = text(&old, attribute) {
                if let Some(keys) = self.partitions.get_mut(&(attribute, value)) {
                    keys.remove(key);
                }
            }
        }
    }

    /// The items whose `attribute` is `value`.
    fn partition<'a>(&'a self, attribute: &'static str, value: &str) -> Vec<&'a Item> {
        self.partitions
            .get(&(attribute, value.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|k| self.by_key.get(k))
            .collect()
    }
}

fn locked<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, StoreError> {
    m.lock()
        .map_err(|_| StoreError::Unavailable("poisoned".into()))
}

fn sort_matches(sort: &SortKey, value: &str) -> bool {
    match sort {
        SortKey::Any => true,
        SortKey::Prefix(p) => value.starts_with(p.as_str()),
        SortKey::Between(a, b) => a.as_str() <= value && value <= b.as_str(),
        SortKey::Below(b) => value < b.as_str(),
        SortKey::Above(a) => value > a.as_str(),
    }
}

#[async_trait]
impl Store for MemStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        Ok(locked(&self.items)?.get(key).cloned())
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let items = locked(&self.items)?;
        Ok(keys.iter().map(|k| items.get(k).cloned()).collect())
    }

    async fn write(&self, write: Write) -> Result<Option<Item>, StoreError> {
        let key = write
            .key()
            .ok_or_else(|| StoreError::Invalid("write without a key".into()))?;
        let mut items = locked(&self.items)?;
        match apply_write(&write, items.get(&key))? {
            Some(Some(item)) => {
                items.insert(key, item.clone());
                Ok(Some(item))
            }
            Some(None) => {
                items.remove(&key);
                Ok(None)
            }
            None => Ok(items.get(&key).cloned()),
        }
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut items = locked(&self.items)?;
        let mut changes = Vec::new();
        for write in &writes {
            let key = write
                .key()
                .ok_or_else(|| StoreError::Invalid("write without a key".into()))?;
            changes.push((key.clone(), apply_write(write, items.get(&key))?));
        }
        for (key, change) in changes {
            match change {
                Some(Some(item)) => {
                    items.insert(key, item);
                }
                Some(None) => {
                    items.remove(&key);
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Tokens are not remembered: the benchmarks never replay a transaction.
    async fn transact_with_token(
        &self,
        _token: &str,
        writes: Vec<Write>,
    ) -> Result<(), StoreError> {
        self.transact(writes).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let (pk, sk) = match query.index {
            None => (PK, SK),
            Some(name) => {
                let index = TABLE
                    .index(name)
                    .ok_or_else(|| StoreError::Invalid(format!("no index {name}")))?;
                (index.pk, index.sk)
            }
        };
        let items = locked(&self.items)?;
        if query.index.is_none() {
            // A table partition's keys are already in sort-key order: read from the end the query
            // starts at and stop at its limit, as DynamoDB does (a partition that grows with every
            // call — the audit trail — would otherwise charge each call for all of it).
            let keys = items.partitions.get(&(PK, query.partition.clone()));
            let keys = keys.into_iter().flatten();
            let ordered: Box<dyn Iterator<Item = &Key>> = match query.ascending {
                true => Box::new(keys),
                false => Box::new(keys.rev()),
            };
            return Ok(Page {
                items: ordered
                    .filter(|k| sort_matches(&query.sort, &k.sk))
                    .take(query.limit)
                    .filter_map(|k| items.get(k).cloned())
                    .collect(),
                next: None,
            });
        }
        let mut found: Vec<(String, Item)> = items
            .partition(pk, &query.partition)
            .into_iter()
            .filter_map(|item| Some((text(item, sk)?, item.clone())))
            .filter(|(s, _)| sort_matches(&query.sort, s))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        if !query.ascending {
            found.reverse();
        }
        Ok(Page {
            items: found
                .into_iter()
                .take(query.limit)
                .map(|(_, item)| item)
                .collect(),
            next: None,
        })
    }
}
