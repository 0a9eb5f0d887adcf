//! Page cursors: the key attributes of the last item a page returned, as opaque URL-safe text.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::schema::TableSpec;
use super::{Item, Query, PK, SK};

/// Where the next page starts: the table key (and index key) of the last item returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    attrs: Vec<(String, String)>,
}

impl Cursor {
    /// The cursor after `item` for `query`, or `None` if the item lacks a key attribute.
    pub fn after_item(item: &Item, query: &Query, table: &TableSpec) -> Option<Cursor> {
        let mut names = vec![PK, SK];
        if let Some(index) = query.index.and_then(|n| table.index(n)) {
            names.push(index.pk);
            names.push(index.sk);
        }
        let attrs = names
            .into_iter()
            .map(|n| Some((n.to_owned(), item.get(n)?.as_str()?.to_owned())))
            .collect::<Option<Vec<_>>>()?;
        Some(Cursor { attrs })
    }

    pub fn attrs(&self) -> &[(String, String)] {
        &self.attrs
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Opaque text for clients.
    pub fn encode(&self) -> String {
        let object: serde_json::Map<String, Value> = self
            .attrs
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect();
        URL_SAFE_NO_PAD.encode(Value::Object(object).to_string())
    }

    /// Reads a client's cursor for `query`; `None` when it is not one this query could have
    /// produced (so a client cannot start a page in another partition).
    pub fn decode(text: &str, query: &Query, table: &TableSpec) -> Option<Cursor> {
        if text.len() > 2048 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let Value::Object(object) = serde_json::from_slice(&bytes).ok()? else {
            return None;
        };
        let mut item = Item::new();
        for (name, value) in object {
            item.insert(name, Value::String(value.as_str()?.to_owned()));
        }
        let cursor = Cursor::after_item(&item, query, table)?;
        if cursor.attrs.len() != item.len() {
            return None;
        }
        let partition_attr = match query.index.and_then(|n| table.index(n)) {
            Some(index) => index.pk,
            None => PK,
        };
        (cursor.get(partition_attr) == Some(query.partition.as_str())).then_some(cursor)
    }
}
