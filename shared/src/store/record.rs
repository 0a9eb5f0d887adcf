//! Typed records: each stored entity is a serde type, and this is the one place where a record
//! becomes an item (its attributes, plus the key and index attributes from [`super::keys`]) and
//! an item becomes a record again. The port itself stays item-based, so both adapters keep
//! handling one representation, JSON objects.
//!
//! Why not `serde_dynamo` (the well-kept crate for serde types ↔ DynamoDB items): it maps to the
//! SDK's `HashMap<String, AttributeValue>`, which only the DynamoDB adapter sees. The port's items
//! are JSON objects that both adapters take (the DynamoDB adapter converts them in one place,
//! `dynamo.rs`), and serde_json already maps a record to and from those; serde_dynamo would add a
//! dependency and a second item representation, and the embedded store could not use it.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::schema::{GSI1, TABLE};
use super::{DynStore, Item, Key, PK, SK};
use crate::error::Error;

/// A stored entity. Its fields are the item's attributes, by their serde names; the key (and
/// the `gsi1` key of a record listed there) comes from [`super::keys`] and is not a field. A
/// field that is absent on old items needs `#[serde(default)]`; a `ttl` field (epoch seconds) is
/// the table's TTL attribute.
pub trait Record: Serialize + DeserializeOwned {
    /// What errors call an item of this kind ("member", "favourite").
    const KIND: &'static str;

    /// The item storing this record at `key`, listed in `gsi1` at `gsi1` when given.
    fn to_item(&self, key: Key, gsi1: Option<Key>) -> Result<Item, Error> {
        let Value::Object(mut item) = serde_json::to_value(self)
            .map_err(|e| Error::Internal(format!("{} not serialisable: {e}", Self::KIND)))?
        else {
            return Err(Error::Internal(format!(
                "{} is not an object",
                crate::english::with_article(Self::KIND)
            )));
        };
        let (index_pk, index_sk) = gsi1_names();
        // A field named like a key attribute would be overwritten, or index the item, silently.
        if let Some(name) = [PK, SK, index_pk, index_sk]
            .into_iter()
            .find(|name| item.contains_key(*name))
        {
            return Err(Error::Internal(format!(
                "{} has a field named {name}, a key attribute",
                crate::english::with_article(Self::KIND)
            )));
        }
        item.insert(PK.into(), key.pk.into());
        item.insert(SK.into(), key.sk.into());
        if let Some(listed) = gsi1 {
            item.insert(index_pk.into(), listed.pk.into());
            item.insert(index_sk.into(), listed.sk.into());
        }
        Ok(item)
    }

    /// The record an item holds; an item that does not parse is corrupt (500, naming the kind).
    fn from_item(item: Item) -> Result<Self, Error> {
        serde_json::from_value(Value::Object(item))
            .map_err(|e| Error::Internal(format!("stored {} unreadable: {e}", Self::KIND)))
    }
}

fn gsi1_names() -> (&'static str, &'static str) {
    TABLE
        .index(GSI1)
        .map_or(("gsi1pk", "gsi1sk"), |index| (index.pk, index.sk))
}

/// Reading records through the port.
#[async_trait]
pub trait Records {
    /// The record at `key`, if any.
    async fn get_record<R: Record>(&self, key: &Key) -> Result<Option<R>, Error>;
    /// The records at `keys` (at most [`super::MAX_BATCH_GET`]), in their order; none asked,
    /// none read.
    async fn get_records<R: Record>(&self, keys: &[Key]) -> Result<Vec<Option<R>>, Error>;
}

#[async_trait]
impl Records for DynStore {
    async fn get_record<R: Record>(&self, key: &Key) -> Result<Option<R>, Error> {
        self.get(key).await?.map(R::from_item).transpose()
    }

    async fn get_records<R: Record>(&self, keys: &[Key]) -> Result<Vec<Option<R>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.get_many(keys)
            .await?
            .into_iter()
            .map(|item| item.map(R::from_item).transpose())
            .collect()
    }
}

/// A field kept as JSON text in one string attribute (`#[serde(with = "json_text")]`): what a
/// record stores verbatim, such as a response to replay, whatever its shape.
pub mod json_text {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        serde_json::to_string(value)
            .map_err(S::Error::custom)?
            .serialize(s)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        serde_json::from_str(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Note {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        #[serde(with = "json_text")]
        body: Value,
        ttl: i64,
    }

    impl Record for Note {
        const KIND: &'static str = "note";
    }

    fn note() -> Note {
        Note {
            text: "hi".into(),
            tag: None,
            body: json!({"status": 201, "body": {"id": 1}}),
            ttl: 7,
        }
    }

    #[test]
    fn a_record_round_trips_with_its_keys_beside_its_fields() {
        let item = note()
            .to_item(Key::new("N#1", "NOTE"), Some(Key::new("G#1", "0001")))
            .unwrap();
        assert_eq!(
            Value::Object(item.clone()),
            json!({
                "pk": "N#1", "sk": "NOTE", "gsi1pk": "G#1", "gsi1sk": "0001",
                "text": "hi", "body": r#"{"body":{"id":1},"status":201}"#, "ttl": 7,
            })
        );
        assert_eq!(Note::from_item(item).unwrap(), note());
        let plain = note().to_item(Key::new("N#1", "NOTE"), None).unwrap();
        assert!(!plain.contains_key("gsi1pk") && !plain.contains_key("gsi1sk"));
        assert_eq!(Key::of(&plain), Some(Key::new("N#1", "NOTE")));
        assert_eq!(Note::from_item(plain).unwrap(), note());
        // The TTL attribute is the field named like it.
        assert_eq!(TABLE.ttl_attribute, "ttl");
    }

    #[test]
    fn an_unreadable_item_is_an_internal_error_naming_its_kind() {
        let mut item = note().to_item(Key::new("N#1", "NOTE"), None).unwrap();
        item.insert("ttl".into(), json!("soon"));
        let err = Note::from_item(item).unwrap_err();
        assert!(
            matches!(&err, Error::Internal(m) if m.starts_with("stored note unreadable")),
            "{err:?}"
        );
        assert_eq!(err.status().as_u16(), 500);
    }

    #[test]
    fn a_field_named_like_a_key_attribute_is_refused() {
        #[derive(Serialize, Deserialize)]
        struct Clash {
            gsi1sk: String,
        }
        impl Record for Clash {
            const KIND: &'static str = "clash";
        }
        let err = Clash { gsi1sk: "x".into() }
            .to_item(Key::new("C#1", "C"), None)
            .unwrap_err();
        assert!(matches!(err, Error::Internal(m) if m.contains("gsi1sk")));
    }
}
