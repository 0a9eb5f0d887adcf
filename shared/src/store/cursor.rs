//! Page cursors: the key attributes of the last item a page returned.
//!
//! The store works with [`Cursor`]; the domain turns one into [`PageCursor`] bytes and back,
//! checking them against its query. A client never sees those bytes as they are: the request
//! edge seals them (`crate::http::CursorKey`, HMAC-SHA256) and opens only what it sealed.

use serde_json::Value;

use super::schema::TableSpec;
use super::{Item, Query, PK, SK};

/// Where the next page starts: the table key (and index key) of the last item returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    attrs: Vec<(String, String)>,
}

/// The largest cursor, in bytes, the domain reads: key attributes are at most 2 KB in all.
const MAX_CURSOR_BYTES: usize = 2048;

impl Cursor {
    /// The cursor after `item` for `query`, or `None` if the item lacks a key attribute.
    pub fn after_item(item: &Item, query: &Query, table: &TableSpec) -> Option<Cursor> {
        let attrs = key_names(query, table)
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

    /// The sort-key value the cursor stands at in `query`'s terms (the index's sort key when
    /// the query reads an index).
    pub fn sort_value(&self, query: &Query, table: &TableSpec) -> Option<&str> {
        self.get(sort_attr(query, table))
    }

    /// The cursor as bytes, for the edge to seal.
    pub fn to_bytes(&self) -> Vec<u8> {
        let object: serde_json::Map<String, Value> = self
            .attrs
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect();
        Value::Object(object).to_string().into_bytes()
    }

    /// Reads cursor bytes for `query`; `None` unless they are a cursor this query could have
    /// produced: exactly its key attributes, each a non-empty string, in its partition, at a
    /// sort key inside its range. So even a well-sealed cursor cannot start a page in another
    /// partition or outside the query's range, and an empty key part never reaches DynamoDB
    /// (which would refuse it).
    pub fn from_bytes(bytes: &[u8], query: &Query, table: &TableSpec) -> Option<Cursor> {
        if bytes.len() > MAX_CURSOR_BYTES {
            return None;
        }
        let Value::Object(object) = serde_json::from_slice(bytes).ok()? else {
            return None;
        };
        let mut item = Item::new();
        for (name, value) in object {
            let value = value.as_str().filter(|v| !v.is_empty())?;
            item.insert(name, Value::String(value.to_owned()));
        }
        let cursor = Cursor::after_item(&item, query, table)?;
        if cursor.attrs.len() != item.len() {
            return None;
        }
        let partition_attr = match query.index.and_then(|n| table.index(n)) {
            Some(index) => index.pk,
            None => PK,
        };
        let in_partition = cursor.get(partition_attr) == Some(query.partition.as_str());
        let in_range = cursor
            .sort_value(query, table)
            .is_some_and(|v| query.sort.locate(v).is_eq());
        (in_partition && in_range).then_some(cursor)
    }
}

/// The key attributes a cursor of `query` holds: the table's, and the index's when it reads one.
fn key_names(query: &Query, table: &TableSpec) -> Vec<&'static str> {
    let mut names = vec![PK, SK];
    if let Some(index) = query.index.and_then(|n| table.index(n)) {
        names.push(index.pk);
        names.push(index.sk);
    }
    names
}

fn sort_attr(query: &Query, table: &TableSpec) -> &'static str {
    match query.index.and_then(|n| table.index(n)) {
        Some(index) => index.sk,
        None => SK,
    }
}

/// A page cursor between the domain and the request edge: bytes only the domain makes (from a
/// [`Cursor`], or a position of its own such as nearby's) and only the edge seals for clients;
/// a client's cursor becomes one only after its seal is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageCursor(Vec<u8>);

impl PageCursor {
    pub fn new(bytes: Vec<u8>) -> Self {
        PageCursor(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<Cursor> for PageCursor {
    fn from(cursor: Cursor) -> Self {
        PageCursor(cursor.to_bytes())
    }
}
