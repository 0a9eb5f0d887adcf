//! The index entries that make browsing a published listing a partition query, never a scan.
//!
//! While a listing is published it has, written in the same transaction as the listing itself
//! (keys: [`keys::feed_entry`], [`keys::geo_entry`], [`keys::term_entry`]):
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

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::fields::MAX_TITLE_CHARS;
use super::{Listing, Summary};
use crate::error::Error;
use crate::geo::{Location, POINT_PRECISION};
use crate::ids::ListingId;
use crate::store::{keys, Item, Key, Record};

/// A title of at most 40 characters has at most 39 bigrams: all are indexed.
pub const MAX_TERMS: usize = MAX_TITLE_CHARS - 1;

/// A term entry: the listing, and its folded title to check a query against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TermEntry {
    pub id: ListingId,
    /// The folded title; `None` in entries written before titles were kept in them (those held
    /// the summary instead), which are checked on the listing itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
}

impl Record for TermEntry {
    const KIND: &'static str = "term entry";
}

/// The terms a listing is found by: the bigrams of its folded title.
pub fn listing_terms(listing: &Listing) -> Vec<String> {
    let mut terms = crate::text::bigrams(&crate::text::fold(&listing.title));
    terms.truncate(MAX_TERMS);
    terms
}

/// Every index entry of a listing, by key: none unless it is published and its text is not held
/// for staff (`domain::moderation`).
pub fn entries(listing: &Listing) -> Result<HashMap<Key, Item>, Error> {
    if !listing.is_listed() {
        return Ok(HashMap::new());
    }
    let (id, published_at) = (
        &listing.id,
        listing.published_at.as_deref().unwrap_or_default(),
    );
    let summary = listing.summary_record();
    let mut items = Vec::new();
    for mask in 0..8u8 {
        let partition = keys::feed(
            (mask & 1 != 0).then_some(listing.kind.as_str()),
            (mask & 2 != 0).then_some(listing.category.as_str()),
            (mask & 4 != 0).then_some(listing.city_key()),
        );
        items.push(summary.to_item(keys::feed_entry(partition, published_at, id), None)?);
    }
    if let Some(location) = &listing.location {
        let cell = location.coarse().geohash(POINT_PRECISION);
        items.push(summary.to_item(keys::geo_entry(&cell, id), None)?);
    }
    let term_entry = TermEntry {
        id: id.clone(),
        t: Some(crate::text::fold(&listing.title)),
    };
    for term in listing_terms(listing) {
        items.push(term_entry.to_item(keys::term_entry(&term, published_at, id), None)?);
    }
    Ok(items
        .into_iter()
        .filter_map(|item| Some((Key::of(&item)?, item)))
        .collect())
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

/// What a client sees of a feed or geo entry: its summary, without the index bookkeeping. The
/// location is coarsened here too, so entries written before coarsening never show more.
pub fn entry_summary(entry: &Item) -> Result<Value, Error> {
    let mut summary = Summary::from_item(entry.clone())?;
    summary.location = summary.location.map(|l| l.coarse());
    Ok(json!(summary))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn listing() -> Listing {
        serde_json::from_value(json!({
            "id": ListingId::generate(), "owner_id": crate::ids::UserId::generate(),
            "kind": "service", "title": "婚礼摄影", "description": "", "category": "photography",
            "city": "北京市", "city_code": "110000", "location": {"lat": 39.912345, "lng": 116.412345},
            "images": ["https://img.renji.world/a.jpg"], "price_fen": 100, "status": "published",
            "version": 1, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "published_at": "2026-01-02T00:00:00Z",
        }))
        .unwrap()
    }

    fn names(item: &Item) -> BTreeSet<&str> {
        item.keys().map(String::as_str).collect()
    }

    /// The attributes entries were stored with before they were typed records: what is stored
    /// keeps being readable, and what is written is what was written.
    #[test]
    fn entries_keep_their_stored_layout() {
        let listing = listing();
        let all = entries(&listing).unwrap();
        let partitions: Vec<&str> = all.keys().map(|k| k.pk.as_str()).collect();
        let count = |prefix: &str| partitions.iter().filter(|p| p.starts_with(prefix)).count();
        assert_eq!((count("FEED#"), count("GEO#"), count("TERM#")), (8, 1, 3));
        let order = format!("2026-01-02T00:00:00Z#{}", listing.id);
        let feed = &all[&Key::new("FEED#k=service#cat=photography#c=110000", order.clone())];
        assert_eq!(
            names(feed),
            BTreeSet::from([
                "pk",
                "sk",
                "id",
                "kind",
                "title",
                "category",
                "city",
                "city_code",
                "price_fen",
                "cover_url",
                "location",
                "owner_id",
                "published_at",
            ])
        );
        let summary = listing.summary();
        assert_eq!(entry_summary(feed).unwrap(), summary);
        assert_eq!(summary["location"], json!({"lat": 39.912, "lng": 116.412}));
        let term = &all[&Key::new("TERM#摄影", order)];
        assert_eq!(names(term), BTreeSet::from(["pk", "sk", "id", "t"]));
        assert_eq!(term["t"], json!("婚礼摄影"));
        let geo = all.values().find(|e| e["pk"] == "GEO#wx4").unwrap();
        assert_eq!(entry_summary(geo).unwrap(), summary);
        // A draft has none.
        let draft = Listing {
            status: super::super::ListingStatus::Draft,
            ..listing
        };
        assert!(entries(&draft).unwrap().is_empty());
    }

    #[test]
    fn entries_written_before_cities_had_codes_still_read() {
        let listing = listing();
        let mut old = entries(&listing)
            .unwrap()
            .into_values()
            .find(|e| e["pk"] == "FEED#all")
            .unwrap();
        old.remove("city_code");
        old.insert("terms".into(), json!(["婚礼"]));
        old.insert(
            "location".into(),
            json!({"lat": 39.912345, "lng": 116.412345}),
        );
        let shown = entry_summary(&old).unwrap();
        assert_eq!(shown["city_code"], Value::Null);
        assert!(shown.get("terms").is_none());
        assert_eq!(shown["location"], json!({"lat": 39.912, "lng": 116.412}));
    }
}
