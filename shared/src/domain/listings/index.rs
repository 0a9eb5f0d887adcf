//! The index entries that make browsing a published listing a partition query, never a scan.
//!
//! While a listing is published it has, written in the same transaction as the listing itself:
//! - 8 feed entries, one per subset of {kind, category, city}: `FEED#all`, `FEED#k=service`,
//!   `FEED#k=service#cat=photography#c=北京`, … so every combination of those three filters is
//!   one partition, newest first (sort key `<published_at>#<id>`);
//! - a geo entry `GEO#<geohash 4>` / `<geohash 9>#<id>` when it has a location (nearby);
//! - one term entry `TERM#<term>` / `<published_at>#<id>` per title term (keyword search).
//!
//! Each entry carries the listing's summary and its terms, so a page of results needs no further
//! reads and the filters an index does not serve are applied to the entries themselves.

use serde_json::{json, Value};

use super::fields::Kind;
use super::Listing;
use crate::geo::{Location, PARTITION_PRECISION, POINT_PRECISION};
use crate::store::{Item, Key};

/// At most this many title terms are indexed (bounds the transaction size).
pub const MAX_TERMS: usize = 24;

/// The feed partition serving exactly this filter combination.
pub fn feed_partition(kind: Option<Kind>, category: Option<&str>, city: Option<&str>) -> String {
    let mut partition = String::from("FEED");
    if let Some(kind) = kind {
        partition.push_str("#k=");
        partition.push_str(kind.as_str());
    }
    if let Some(category) = category {
        partition.push_str("#cat=");
        partition.push_str(category);
    }
    if let Some(city) = city {
        partition.push_str("#c=");
        partition.push_str(city);
    }
    if partition == "FEED" {
        partition.push_str("#all");
    }
    partition
}

pub fn geo_partition(cell: &str) -> String {
    format!("GEO#{}", &cell[..cell.len().min(PARTITION_PRECISION)])
}

pub fn term_partition(term: &str) -> String {
    format!("TERM#{term}")
}

/// The terms a listing is found by.
pub fn listing_terms(listing: &Listing) -> Vec<String> {
    crate::text::terms(&listing.title, MAX_TERMS)
}

/// Every index entry of a listing: none unless it is published.
pub fn entries(listing: &Listing) -> Vec<Item> {
    if !listing.is_published() {
        return Vec::new();
    }
    let published_at = listing.published_at.clone().unwrap_or_default();
    let order = format!("{published_at}#{}", listing.id);
    let terms = listing_terms(listing);
    let mut summary = listing.summary();
    summary["terms"] = json!(terms);
    let entry = |pk: String, sk: String| {
        let mut item = match summary.clone() {
            Value::Object(map) => map,
            _ => Item::new(),
        };
        item.insert("pk".into(), pk.into());
        item.insert("sk".into(), sk.into());
        item
    };
    let mut out = Vec::new();
    for mask in 0..8u8 {
        let partition = feed_partition(
            (mask & 1 != 0).then_some(listing.kind),
            (mask & 2 != 0).then_some(listing.category.as_str()),
            (mask & 4 != 0).then_some(listing.city.as_str()),
        );
        out.push(entry(partition, order.clone()));
    }
    if let Some(location) = &listing.location {
        let cell = location.geohash(POINT_PRECISION);
        out.push(entry(
            geo_partition(&cell),
            format!("{cell}#{}", listing.id),
        ));
    }
    for term in &terms {
        out.push(entry(term_partition(term), order.clone()));
    }
    out
}

/// The keys of a set of entries.
pub fn keys(entries: &[Item]) -> Vec<Key> {
    entries.iter().filter_map(Key::of).collect()
}

/// An entry's location, for nearby distances.
pub fn entry_location(entry: &Item) -> Option<Location> {
    let location = entry.get("location")?;
    Some(Location {
        lat: location.get("lat")?.as_f64()?,
        lng: location.get("lng")?.as_f64()?,
    })
}

/// What a client sees of an entry: the summary without the index bookkeeping.
pub fn entry_summary(entry: &Item) -> Value {
    let mut summary = entry.clone();
    for internal in ["pk", "sk", "terms"] {
        summary.remove(internal);
    }
    Value::Object(summary)
}
