//! Nearby in a dense city: the store queries and index entries one `GET /v1/listings?near=`
//! request costs at 1, 5 and 50 km, on the embedded store and on DynamoDB Local, counted on the
//! storage port (`counting.rs`). The search's budget bounds every request whatever the density;
//! these figures show what requests actually cost in a city of 5,000 listings.

use std::sync::Arc;

use renji_shared::domain::listings::fields::Kind;
use renji_shared::domain::listings::nearby::{self, Near};
use renji_shared::domain::listings::{index, Listing, ListingStatus};
use renji_shared::geo::{GeoBounds, Location};
use renji_shared::http::CursorKey;
use renji_shared::ids::{ListingId, UserId};
use renji_shared::store::dynamo::DynamoStore;
use renji_shared::store::embedded::EmbeddedStore;
use renji_shared::store::schema::TABLE;
use renji_shared::store::{keys, DynStore, Item, PageCursor, Write};
use serde_json::{json, Value};

use crate::counting::CountingStore;

/// Listings in the city.
pub const LISTINGS: usize = 5000;
/// Results per page (the API's default).
pub const LIMIT: usize = 20;
pub const RADII_KM: [f64; 3] = [1.0, 5.0, 50.0];
const CENTER: (f64, f64) = (39.9087, 116.3975);

fn listing(lat: f64, lng: f64) -> Result<Listing, String> {
    let now = "2026-11-29T00:00:00Z".to_owned();
    let location =
        Location::new("location", lat, lng, &GeoBounds::CHINA).map_err(|e| e.to_string())?;
    Ok(Listing {
        id: ListingId::generate(),
        owner_id: UserId::generate(),
        kind: Kind::Service,
        title: "摄影棚出租".into(),
        description: String::new(),
        category: "venue".into(),
        city: "北京市".into(),
        city_code: Some("110000".into()),
        location: Some(location),
        images: Vec::new(),
        video_url: None,
        video_cover_url: None,
        holds: Default::default(),
        price_fen: None,
        status: ListingStatus::Published,
        takedown_reason: None,
        taken_down_from: None,
        hidden_by_suspension: false,
        retiring: false,
        text_review: None,
        favorites_count: 0,
        shares_count: 0,
        rating_sum: 0,
        rating_count: 0,
        version: 1,
        created_at: now.clone(),
        updated_at: now.clone(),
        published_at: Some(now),
    })
}

/// 5,000 listings: 70 % around the centre (normal, σ 3 km), 200 at one building 400 m away,
/// 20 % spread evenly to 60 km. Deterministic.
fn city() -> Result<Vec<Listing>, String> {
    let mut seed = 2026u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let (lat0, lng0) = CENTER;
    let km_lat = 1.0 / 111.195;
    let km_lng = km_lat / lat0.to_radians().cos();
    let mut out = Vec::with_capacity(LISTINGS);
    for _ in 0..200 {
        out.push(listing(lat0 + 0.4 * km_lat, lng0)?);
    }
    while out.len() < LISTINGS {
        let (dlat, dlng) = if out.len() % 5 == 0 {
            ((next() * 120.0 - 60.0), (next() * 120.0 - 60.0))
        } else {
            let mut normal = || (0..12).map(|_| next()).sum::<f64>() - 6.0;
            (normal() * 3.0, normal() * 3.0)
        };
        out.push(listing(lat0 + dlat * km_lat, lng0 + dlng * km_lng)?);
    }
    Ok(out)
}

async fn seed(store: &DynStore, listings: &[Listing]) -> Result<(), String> {
    let mut entries: Vec<Item> = Vec::new();
    for listing in listings {
        let all = index::entries(listing).map_err(|e| format!("index entries: {e}"))?;
        entries.extend(
            all.into_values()
                .filter(|e| e["pk"].as_str().is_some_and(|pk| pk.starts_with(keys::GEO))),
        );
    }
    for chunk in entries.chunks(100) {
        store
            .transact(chunk.iter().cloned().map(Write::put).collect())
            .await
            .map_err(|e| format!("seeding the city: {e}"))?;
    }
    Ok(())
}

async fn measure_on(store_name: &str, inner: DynStore) -> Result<Vec<Value>, String> {
    let counting = CountingStore::new(inner);
    let store: DynStore = counting.clone();
    seed(&store, &city()?).await?;
    let center =
        Location::new("near", CENTER.0, CENTER.1, &GeoBounds::CHINA).map_err(|e| e.to_string())?;
    let admit = |_: &Item| true;
    let sealer = CursorKey::derive(b"a session secret of at least 32 bytes");
    let mut rows = Vec::new();
    for radius_km in RADII_KM {
        let near = Near {
            center,
            radius_m: radius_km * 1000.0,
            admit: &admit,
            binding: String::new(),
        };
        counting.take();
        let mut cursor: Option<PageCursor> = None;
        let (mut pages, mut results, mut longest_cursor) = (0usize, 0usize, 0usize);
        let (mut queries, mut items): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        loop {
            let (page, next, work) =
                nearby::page(&store, &near, LIMIT, cursor.as_ref(), nearby::BUDGET)
                    .await
                    .map_err(|e| format!("nearby on {store_name}: {e}"))?;
            let port_queries = counting
                .take()
                .iter()
                .filter(|op| op.starts_with("query"))
                .count();
            if port_queries != work.queries {
                return Err(format!(
                    "nearby counted {} queries, the port saw {port_queries}",
                    work.queries
                ));
            }
            pages += 1;
            results += page.len();
            queries.push(port_queries);
            items.push(work.items);
            match next {
                Some(next) => {
                    // As the client gets it: sealed at the request edge.
                    longest_cursor = longest_cursor.max(sealer.seal(&next).len());
                    cursor = Some(next)
                }
                None => break,
            }
        }
        let mean =
            |v: &[usize]| (v.iter().sum::<usize>() as f64 / v.len() as f64 * 10.0).round() / 10.0;
        let max = |v: &[usize]| v.iter().copied().max().unwrap_or(0);
        rows.push(json!({
            "store": store_name,
            "radius_km": radius_km,
            "results": results,
            "pages": pages,
            "first_page_queries": queries[0],
            "first_page_items": items[0],
            "mean_queries": mean(&queries),
            "mean_items": mean(&items),
            "max_queries": max(&queries),
            "max_items": max(&items),
            "longest_cursor": longest_cursor,
        }));
    }
    Ok(rows)
}

/// The figures on both stores.
pub async fn measure(dynamodb_endpoint: &str, scratch: &std::path::Path) -> Result<Value, String> {
    let embedded = EmbeddedStore::open(&scratch.join("nearby.redb"), TABLE)
        .map_err(|e| format!("embedded store: {e}"))?;
    let mut rows = measure_on("embedded", Arc::new(embedded)).await?;
    let client = renji_shared::app::dynamodb_client(Some(dynamodb_endpoint)).await;
    let table = format!(
        "bench-nearby-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    renji_local::tables::create_table(&client, &table).await?;
    let dynamo = DynamoStore::new(client, table, TABLE);
    rows.extend(measure_on("DynamoDB Local", Arc::new(dynamo)).await?);
    Ok(json!({
        "listings": LISTINGS,
        "limit": LIMIT,
        "budget": {
            "queries": nearby::BUDGET.queries,
            "items": nearby::BUDGET.items,
            "per_query": nearby::BUDGET.per_query,
        },
        "rows": rows,
    }))
}
