//! `GET /v1/listings`: published listings, newest first, by kind, category, city, keyword or
//! distance — each served by index partitions (see [`super::index`]), never by a scan.
//!
//! - kind / category / city, in any combination: one feed partition, exact cursor pages.
//! - `q`: the partition of the query's longest term; the other terms and filters are checked on
//!   the entries, examining at most [`MAX_EXAMINED`] entries per page (a page may then come back
//!   short, with a cursor to go on).
//! - `near` + `radius_km` (≤ 50): the geohash cells covering the circle, at most
//!   [`MAX_NEARBY_CANDIDATES`] entries, filtered to the radius and the other filters, nearest first.

use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::fields::Kind;
use super::index::{entry_location, entry_summary, feed_partition, geo_partition, term_partition};
use crate::error::Error;
use crate::geo::{self, Location, MAX_RADIUS_KM, PARTITION_PRECISION};
use crate::store::schema::TABLE;
use crate::store::{Cursor, DynStore, Item, PageCursor, Query, SortKey};

/// Keyword pages examine at most this many entries.
pub const MAX_EXAMINED: usize = 500;
/// A nearby query reads at most this many entries in all.
pub const MAX_NEARBY_CANDIDATES: usize = 1000;
pub const DEFAULT_RADIUS_KM: f64 = 5.0;
/// At most this many words of `q` are used.
const MAX_QUERY_TERMS: usize = 8;

#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub kind: Option<Kind>,
    pub category: Option<String>,
    pub city: Option<String>,
    pub terms: Vec<String>,
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
        categories: &[String],
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
            .map(|c| super::fields::category(&c, categories))
            .transpose()?;
        let city = param("city").map(|c| super::fields::city(&c)).transpose()?;
        let terms = match param("q") {
            None => Vec::new(),
            Some(q) => {
                let q = crate::domain::profile::bounded_text("q", &q, 50)?;
                let terms = crate::text::terms(&q, MAX_QUERY_TERMS);
                if terms.is_empty() {
                    return Err(Error::invalid("q", "has no searchable words"));
                }
                terms
            }
        };
        let near = match (param("near"), param("radius_km")) {
            (None, None) => None,
            (None, Some(_)) => return Err(Error::invalid("radius_km", "needs near=lat,lng")),
            (Some(near), radius) => {
                let center = Location::parse_pair("near", &near)?;
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
                terms,
            },
            near,
            limit,
            cursor,
        })
    }
}

impl Filters {
    /// Whether an index entry passes every filter.
    fn admit(&self, entry: &Item) -> bool {
        let text = |name: &str| entry.get(name).and_then(Value::as_str);
        let kind_ok = self.kind.is_none_or(|k| text("kind") == Some(k.as_str()));
        let category_ok = self
            .category
            .as_deref()
            .is_none_or(|c| text("category") == Some(c));
        let city_ok = self.city.as_deref().is_none_or(|c| text("city") == Some(c));
        let terms_ok = self.terms.iter().all(|term| {
            entry
                .get("terms")
                .and_then(Value::as_array)
                .is_some_and(|ts| ts.iter().any(|t| t.as_str() == Some(term)))
        });
        kind_ok && category_ok && city_ok && terms_ok
    }
}

/// One page of results and the cursor of the next.
pub async fn browse(
    store: &DynStore,
    browse: &Browse,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    if let Some((center, radius)) = &browse.near {
        return nearby(store, browse, center, *radius).await;
    }
    if !browse.filters.terms.is_empty() {
        return keyword(store, browse).await;
    }
    let f = &browse.filters;
    let query = Query::partition(feed_partition(
        f.kind,
        f.category.as_deref(),
        f.city.as_deref(),
    ))
    .descending()
    .limit(browse.limit);
    let cursor = crate::domain::cursor_for(&query, browse.cursor.as_ref())?;
    let page = store.query(query.after(cursor)).await?;
    Ok((
        page.items.iter().map(entry_summary).collect(),
        page.next.map(PageCursor::from),
    ))
}

async fn keyword(
    store: &DynStore,
    browse: &Browse,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let f = &browse.filters;
    // The longest term is likely the rarest: its partition is the one read.
    let anchor = f
        .terms
        .iter()
        .max_by_key(|t| t.chars().count())
        .ok_or_else(|| Error::invalid("q", "has no searchable words"))?;
    let query = Query::partition(term_partition(anchor)).descending();
    let mut cursor = crate::domain::cursor_for(&query, browse.cursor.as_ref())?;
    let mut found = Vec::new();
    let mut examined = 0;
    loop {
        let page = store
            .query(query.clone().limit(100).after(cursor.take()))
            .await?;
        let count = page.items.len();
        for (i, entry) in page.items.iter().enumerate() {
            examined += 1;
            if f.admit(entry) {
                found.push(entry_summary(entry));
                if found.len() == browse.limit {
                    let last_of_all = i + 1 == count && page.next.is_none();
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

/// Where a nearby page starts: after this distance (whole millimetres, so it survives the trip
/// through text exactly) and id.
#[derive(Serialize, Deserialize)]
struct NearCursor {
    mm: i64,
    id: String,
}

async fn nearby(
    store: &DynStore,
    browse: &Browse,
    center: &Location,
    radius_km: f64,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let after = browse
        .cursor
        .as_ref()
        .map(|c| {
            serde_json::from_slice::<NearCursor>(c.as_bytes())
                .ok()
                .filter(|c| !c.id.is_empty())
                .ok_or_else(|| Error::invalid("cursor", "is not a cursor of this list"))
        })
        .transpose()?;
    let precision = geo::query_precision(radius_km);
    let cells = geo::covering_cells(center, radius_km, precision);
    let per_cell = (MAX_NEARBY_CANDIDATES / cells.len().max(1)).max(1);
    let reads = cells.iter().map(|cell| {
        let sort = if precision > PARTITION_PRECISION {
            SortKey::Prefix(cell.clone())
        } else {
            SortKey::Any
        };
        store.query(
            Query::partition(geo_partition(cell))
                .sort(sort)
                .limit(per_cell),
        )
    });
    let pages = try_join_all(reads).await?;
    let radius_m = radius_km * 1000.0;
    let mut hits: Vec<(i64, String, &Item)> = pages
        .iter()
        .flat_map(|p| p.items.iter())
        .filter(|entry| browse.filters.admit(entry))
        .filter_map(|entry| {
            let distance = center.distance_m(&entry_location(entry)?);
            let id = entry.get("id")?.as_str()?.to_owned();
            (distance <= radius_m).then_some(((distance * 1000.0).round() as i64, id, entry))
        })
        .collect();
    hits.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    if let Some(after) = &after {
        hits.retain(|(mm, id, _)| (*mm, id.as_str()) > (after.mm, after.id.as_str()));
    }
    let more = hits.len() > browse.limit;
    hits.truncate(browse.limit);
    let next = match hits.last() {
        Some((mm, id, _)) if more => {
            let cursor = json!(NearCursor {
                mm: *mm,
                id: id.clone()
            })
            .to_string();
            Some(PageCursor::new(cursor.into_bytes()))
        }
        _ => None,
    };
    let items = hits
        .iter()
        .map(|(mm, _, entry)| {
            let mut summary = entry_summary(entry);
            summary["distance_m"] = json!((mm + 500) / 1000);
            summary
        })
        .collect();
    Ok((items, next))
}
