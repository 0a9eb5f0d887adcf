//! The index entries that make browsing a published listing a partition query, never a scan.
//!
//! While a listing is published it has, written in the same transaction as the listing itself:
//! - 8 feed entries, one per subset of {kind, category, city}: `FEED#all`, `FEED#k=service`,
//!   `FEED#k=service#cat=photography#c=110000`, … so every combination of those three filters is
//!   one partition, newest first (sort key `<published_at>#<id>`); the city is its adcode;
//! - a geo entry `GEO#<geohash 3>` / `<geohash 9>#<id>` of its coarse point when it has a location
//!   (nearby: `super::nearby`);
//! - one term entry `TERM#<bigram>` / `<published_at>#<id>` per distinct bigram of its folded
//!   title (keyword search), holding only the id and the folded title.
//!
//! Feed and geo entries carry the listing's summary (coarse location), so a page of results
//! needs no further reads. Term entries depend on the title alone, so an edit that leaves the
//! title alone leaves them alone; a keyword page reads its listings in one batch.
//!
//! A save writes only the entries that change. Worst case, an edit of a published listing that
//! changes its title entirely (39 bigrams out, 39 in), its category and city (6 feed keys out, 6
//! in, 2 rewritten) and its location (geo out and in) is 1 + 78 + 14 + 2 = 95 writes; publishing
//! or unpublishing is at most 1 + 8 + 1 + 39 + the owner's count and entry = 51. DynamoDB allows 100.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::fields::{Kind, MAX_TITLE_CHARS};
use super::Listing;
use crate::geo::{Location, PARTITION_PRECISION, POINT_PRECISION};
use crate::store::{Item, Key};

/// A title of at most 40 characters has at most 39 bigrams: all are indexed.
pub const MAX_TERMS: usize = MAX_TITLE_CHARS - 1;

/// The feed partition serving exactly this filter combination (`city`: the adcode, or the text
/// of a listing stored before cities had codes).
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

/// The geo partition of a geohash (its first [`PARTITION_PRECISION`] characters).
pub fn geo_partition(cell: &str) -> String {
    format!("GEO#{}", &cell[..cell.len().min(PARTITION_PRECISION)])
}

pub fn term_partition(term: &str) -> String {
    format!("TERM#{term}")
}

/// The terms a listing is found by: the bigrams of its folded title.
pub fn listing_terms(listing: &Listing) -> Vec<String> {
    let mut terms = crate::text::bigrams(&crate::text::fold(&listing.title));
    terms.truncate(MAX_TERMS);
    terms
}

fn with_key(mut item: Item, pk: String, sk: String) -> Item {
    item.insert("pk".into(), pk.into());
    item.insert("sk".into(), sk.into());
    item
}

/// Every index entry of a listing, by key: none unless it is published.
pub fn entries(listing: &Listing) -> HashMap<Key, Item> {
    let mut out = HashMap::new();
    if !listing.is_published() {
        return out;
    }
    let published_at = listing.published_at.clone().unwrap_or_default();
    let order = format!("{published_at}#{}", listing.id);
    let summary = match listing.summary() {
        Value::Object(map) => map,
        _ => Item::new(),
    };
    let mut add = |item: Item| {
        if let Some(key) = Key::of(&item) {
            out.insert(key, item);
        }
    };
    for mask in 0..8u8 {
        let partition = feed_partition(
            (mask & 1 != 0).then_some(listing.kind),
            (mask & 2 != 0).then_some(listing.category.as_str()),
            (mask & 4 != 0).then_some(listing.city_key()),
        );
        add(with_key(summary.clone(), partition, order.clone()));
    }
    if let Some(location) = &listing.location {
        let cell = location.coarse().geohash(POINT_PRECISION);
        add(with_key(
            summary.clone(),
            geo_partition(&cell),
            format!("{cell}#{}", listing.id),
        ));
    }
    let folded = crate::text::fold(&listing.title);
    for term in listing_terms(listing) {
        let mut item = Item::new();
        item.insert("id".into(), json!(listing.id));
        item.insert("t".into(), json!(folded));
        add(with_key(item, term_partition(&term), order.clone()));
    }
    out
}

/// An entry's point as others see it: coarse, whatever the entry holds.
pub fn entry_location(entry: &Item) -> Option<Location> {
    let location = entry.get("location")?;
    Some(
        Location {
            lat: location.get("lat")?.as_f64()?,
            lng: location.get("lng")?.as_f64()?,
        }
        .coarse(),
    )
}

/// What a client sees of a feed or geo entry: the summary without the index bookkeeping. The
/// location is coarsened here too, so entries written before coarsening never show more.
pub fn entry_summary(entry: &Item) -> Value {
    let mut summary = entry.clone();
    for internal in ["pk", "sk", "terms"] {
        summary.remove(internal);
    }
    if let Some(location) = entry_location(entry) {
        summary.insert("location".into(), json!(location));
    }
    // Entries written before cities had codes carry none.
    summary.entry("city_code").or_insert(Value::Null);
    Value::Object(summary)
}
