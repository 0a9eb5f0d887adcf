//! A zero-latency store for timing handlers without store I/O: a map behind a mutex, with the
//! port's conditions and update semantics, and simple (cursor-less) queries.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use renji_shared::store::schema::TABLE;
use renji_shared::store::{
    condition_holds, Item, Key, Page, Query, SortKey, Store, StoreError, Write, PK, SK,
};
use serde_json::Value;

#[derive(Default)]
pub struct MemStore {
    items: Mutex<BTreeMap<Key, Item>>,
}

fn locked<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, StoreError> {
    m.lock()
        .map_err(|_| StoreError::Unavailable("poisoned".into()))
}

/// The item after `write`, `Some(None)` when deleted, `None` when unchanged.
fn apply(write: &Write, old: Option<&Item>) -> Result<Option<Option<Item>>, StoreError> {
    let condition = match write {
        Write::Put { condition, .. }
        | Write::Update { condition, .. }
        | Write::Delete { condition, .. } => condition.as_ref(),
        Write::Check { condition, .. } => Some(condition),
    };
    if condition.is_some_and(|c| !condition_holds(c, old)) {
        return Err(StoreError::ConditionFailed { index: None });
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
                let base = item.get(name).and_then(Value::as_i64).unwrap_or(0);
                item.insert(name.clone(), Value::from(base + delta));
            }
            for name in remove {
                item.remove(name);
            }
            Some(Some(item))
        }
    })
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

    async fn write(&self, write: Write) -> Result<(), StoreError> {
        let key = write
            .key()
            .ok_or_else(|| StoreError::Invalid("write without a key".into()))?;
        let mut items = locked(&self.items)?;
        match apply(&write, items.get(&key))? {
            Some(Some(item)) => {
                items.insert(key, item);
            }
            Some(None) => {
                items.remove(&key);
            }
            None => {}
        }
        Ok(())
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut items = locked(&self.items)?;
        let mut changes = Vec::new();
        for (i, write) in writes.iter().enumerate() {
            let key = write
                .key()
                .ok_or_else(|| StoreError::Invalid("write without a key".into()))?;
            match apply(write, items.get(&key)) {
                Ok(change) => changes.push((key, change)),
                Err(StoreError::ConditionFailed { .. }) => {
                    return Err(StoreError::ConditionFailed { index: Some(i) })
                }
                Err(e) => return Err(e),
            }
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
        let text =
            |item: &Item, name: &str| item.get(name).and_then(Value::as_str).map(str::to_owned);
        let mut found: Vec<(String, Item)> = items
            .values()
            .filter(|item| text(item, pk).as_deref() == Some(query.partition.as_str()))
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
