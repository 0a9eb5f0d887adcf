//! `GET /v1/listings`: published listings, newest first, by kind, category, city, keyword or
//! distance — each served by index partitions (see [`super::index`]), never by a scan.
//!
//! - kind / category / city, in any combination: one feed partition, exact cursor pages.
//! - `q` (2 to 50 characters): every listing whose folded title (NFKC, lowercase) contains the
//!   folded query, newest first: the term partition of one of the query's bigrams, each entry
//!   checked by substring, the page's listings read in one batch (the other filters are checked
//!   on them); a page examines at most [`MAX_EXAMINED`] entries and may come back short with a
//!   cursor to go on. A one-character query is 422: it has no bigram.
//! - `near` + `radius_km` (≤ 50): [`super::nearby`], exact and bounded, nearest first.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::fields::Kind;
use super::index::{entry_summary, TermEntry};
use super::nearby::{self, Near};
use super::{Listing, Rules};
use crate::error::Error;
use crate::geo::{Location, MAX_RADIUS_KM};
use crate::store::schema::TABLE;
use crate::store::MAX_BATCH_GET;
use crate::store::{keys, Cursor, DynStore, Item, Key, PageCursor, Query, Record, Records};

/// Keyword pages examine at most this many term entries.
pub const MAX_EXAMINED: usize = 500;
pub const DEFAULT_RADIUS_KM: f64 = 5.0;
/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 50;

#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub kind: Option<Kind>,
    pub category: Option<String>,
    /// The city's adcode.
    pub city: Option<String>,
    /// The folded query (`text::fold`), at least 2 characters.
    pub q: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Browse {
    pub filters: Filters,
    pub near: Option<(Location, f64)>,
    pub limit: usize,
    pub cursor: Option<PageCursor>,
}

/// The query parameters `GET /v1/listings` accepts.
pub const PARAMS: &[&str] = &[
    "kind",
    "category",
    "city",
    "near",
    "radius_km",
    "q",
    "limit",
    "cursor",
];

impl Browse {
    /// Reads and validates the query parameters; `param` looks one up.
    pub fn parse(
        param: impl Fn(&str) -> Option<String>,
        rules: &Rules<'_>,
        limit: usize,
        cursor: Option<PageCursor>,
    ) -> Result<Self, Error> {
        let kind = param("kind")
            .map(|k| {
                Kind::parse(&k)
                    .ok_or_else(|| Error::invalid("kind", "must be service or recruitment"))
            })
            .transpose()?;
        let category = param("category")
            .map(|c| super::fields::category(&c, rules.categories))
            .transpose()?;
        let city = param("city")
            .map(|c| super::fields::city(&c).map(|c| c.adcode.to_owned()))
            .transpose()?;
        let q = match param("q") {
            None => None,
            Some(q) => {
                let q = crate::domain::profile::bounded_text("q", &q, MAX_QUERY_CHARS)?;
                let folded = crate::text::fold(&q);
                if folded.chars().count() < 2 {
                    return Err(Error::invalid(
                        "q",
                        "must be at least 2 characters (titles are searched by character pairs)",
                    ));
                }
                Some(folded)
            }
        };
        let near = match (param("near"), param("radius_km")) {
            (None, None) => None,
            (None, Some(_)) => return Err(Error::invalid("radius_km", "needs near=lat,lng")),
            (Some(near), radius) => {
                let center = Location::parse_pair("near", &near, &rules.bounds)?;
                let radius = match radius {
                    None => DEFAULT_RADIUS_KM,
                    Some(r) => r
                        .parse::<f64>()
                        .ok()
                        .filter(|r| r.is_finite() && *r > 0.0 && *r <= MAX_RADIUS_KM)
                        .ok_or_else(|| {
                            Error::invalid(
                                "radius_km",
                                format!("must be above 0 and at most {MAX_RADIUS_KM}"),
                            )
                        })?,
                };
                Some((center, radius))
            }
        };
        Ok(Browse {
            filters: Filters {
                kind,
                category,
                city,
                q,
            },
            near,
            limit,
            cursor,
        })
    }
}

impl Filters {
    /// Whether a feed or geo entry (a listing's summary) passes every filter.
    pub fn admit(&self, entry: &Item) -> bool {
        let text = |name: &str| entry.get(name).and_then(Value::as_str);
        let kind_ok = self.kind.is_none_or(|k| text("kind") == Some(k.as_str()));
        let category_ok = self
            .category
            .as_deref()
            .is_none_or(|c| text("category") == Some(c));
        let city_ok = self
            .city
            .as_deref()
            .is_none_or(|c| text("city_code") == Some(c));
        let q_ok = self.q.as_deref().is_none_or(|q| {
            text("title").is_some_and(|title| crate::text::fold(title).contains(q))
        });
        kind_ok && category_ok && city_ok && q_ok
    }

    /// The parameters a cursor is bound to.
    fn binding(&self, near: &Location, radius_km: f64) -> String {
        let text = format!(
            "{},{},{radius_km}|{:?}|{:?}|{:?}|{:?}",
            near.lat, near.lng, self.kind, self.category, self.city, self.q
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        URL_SAFE_NO_PAD.encode(&digest.as_ref()[..9])
    }
}

/// One page of results and the cursor of the next.
pub async fn browse(
    store: &DynStore,
    browse: &Browse,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    if let Some((center, radius_km)) = &browse.near {
        let filters = &browse.filters;
        let admit = |entry: &Item| filters.admit(entry);
        let near = Near {
            center: *center,
            radius_m: radius_km * 1000.0,
            admit: &admit,
            binding: filters.binding(center, *radius_km),
        };
        let (items, next, _) = nearby::page(
            store,
            &near,
            browse.limit,
            browse.cursor.as_ref(),
            nearby::BUDGET,
        )
        .await?;
        return Ok((items, next));
    }
    if browse.filters.q.is_some() {
        return keyword(store, browse).await;
    }
    let f = &browse.filters;
    let query = Query::partition(keys::feed(
        f.kind.map(Kind::as_str),
        f.category.as_deref(),
        f.city.as_deref(),
    ))
    .descending()
    .limit(browse.limit);
    let cursor = crate::domain::cursor_for(&query, browse.cursor.as_ref())?;
    let page = store.query(query.after(cursor)).await?;
    Ok((
        page.items
            .iter()
            .map(entry_summary)
            .collect::<Result<_, _>>()?,
        page.next.map(PageCursor::from),
    ))
}

/// The bigram whose partition a query reads: any of them finds every match; the last is taken
/// (in a word, later pairs are usually rarer than its first, e.g. 影师 against 摄影).
fn anchor(q: &str) -> Option<String> {
    crate::text::bigrams(q).pop()
}

async fn keyword(
    store: &DynStore,
    browse: &Browse,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let f = &browse.filters;
    let q = f.q.as_deref().unwrap_or_default();
    let anchor = anchor(q).ok_or_else(|| Error::invalid("q", "must be at least 2 characters"))?;
    let query = Query::partition(keys::term(&anchor)).descending();
    let mut cursor = crate::domain::cursor_for(&query, browse.cursor.as_ref())?;
    let mut found = Vec::new();
    let mut examined = 0;
    loop {
        let page = store
            .query(query.clone().limit(MAX_BATCH_GET).after(cursor.take()))
            .await?;
        examined += page.items.len();
        // Entries whose folded title holds the query (entries written before titles were kept
        // in them are checked on the listing itself).
        let mut matching = Vec::new();
        for item in &page.items {
            let entry = TermEntry::from_item(item.clone())?;
            if entry.t.as_deref().is_none_or(|t| t.contains(q)) {
                matching.push((item, entry.id));
            }
        }
        let listing_keys: Vec<Key> = matching.iter().map(|(_, id)| keys::listing(id)).collect();
        let listings: Vec<Option<Listing>> = store.get_records(&listing_keys).await?;
        let count = matching.len();
        for (i, ((entry, _), listing)) in matching.iter().zip(listings).enumerate() {
            let Some(listing) = listing else { continue };
            let summary = listing.summary();
            let Value::Object(summary_item) = &summary else {
                continue;
            };
            if listing.is_published() && f.admit(summary_item) {
                found.push(summary);
                if found.len() == browse.limit {
                    let last_of_all =
                        i + 1 == count && page.next.is_none() && matching.len() == page.items.len();
                    let next = (!last_of_all)
                        .then(|| Cursor::after_item(entry, &query, &TABLE))
                        .flatten();
                    return Ok((found, next.map(PageCursor::from)));
                }
            }
        }
        match page.next {
            None => return Ok((found, None)),
            Some(next) if examined >= MAX_EXAMINED => return Ok((found, Some(next.into()))),
            Some(next) => cursor = Some(next),
        }
    }
}
