//! Nearby search against a brute-force oracle on dense data, with every page's store work counted;
//! the privacy coarsening, the service area and coordinate rounding; keyword search by bigrams;
//! cities by name, short name or adcode — on both stores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use renji_shared::domain::listings::fields::{Kind, ListingPatch};
use renji_shared::domain::listings::nearby::{self, Budget, Near};
use renji_shared::domain::listings::{self, index, Listing, ListingStatus, Rules};
use renji_shared::geo::{GeoBounds, Location};
use renji_shared::ids::{ListingId, UserId};
use renji_shared::store::{
    keys, DynStore, Item, Key, Page, PageCursor, Query, Store, StoreError, Write,
};
use renji_tests::{on_both_stores, Api, Backend, LocalServer, TestStore};
use serde_json::{json, Value};

/// Counts what goes through the store: queries, entries they returned, and every write.
struct Counting {
    inner: DynStore,
    queries: AtomicUsize,
    items: AtomicUsize,
    writes: Mutex<Vec<Key>>,
}

impl Counting {
    fn new(inner: DynStore) -> Arc<Self> {
        Arc::new(Counting {
            inner,
            queries: AtomicUsize::new(0),
            items: AtomicUsize::new(0),
            writes: Mutex::new(Vec::new()),
        })
    }

    /// (queries, items) since the last call.
    fn take(&self) -> (usize, usize) {
        (
            self.queries.swap(0, Ordering::SeqCst),
            self.items.swap(0, Ordering::SeqCst),
        )
    }

    fn take_writes(&self) -> Vec<Key> {
        std::mem::take(&mut *self.writes.lock().unwrap())
    }
}

#[async_trait]
impl Store for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.inner.get_many(keys).await
    }
    async fn write(&self, write: Write) -> Result<Option<Item>, StoreError> {
        self.writes.lock().unwrap().extend(write.key());
        self.inner.write(write).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.writes
            .lock()
            .unwrap()
            .extend(writes.iter().filter_map(Write::key));
        self.inner.transact(writes).await
    }
    async fn transact_with_token(&self, token: &str, writes: Vec<Write>) -> Result<(), StoreError> {
        self.writes
            .lock()
            .unwrap()
            .extend(writes.iter().filter_map(Write::key));
        self.inner.transact_with_token(token, writes).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        let page = self.inner.query(query).await?;
        self.items.fetch_add(page.items.len(), Ordering::SeqCst);
        Ok(page)
    }
}

/// A small deterministic generator (tests must not flake).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, standard deviation 1.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.next()).sum::<f64>() - 6.0
    }
}

const CENTER: (f64, f64) = (39.9, 116.4);
const KM_LAT: f64 = 1.0 / 111.195;
fn km_lng(lat: f64) -> f64 {
    1.0 / (111.195 * lat.to_radians().cos())
}

fn point(lat: f64, lng: f64) -> Location {
    Location::new("location", lat, lng, &GeoBounds::CHINA).unwrap()
}

fn published(location: Location, kind: Kind) -> Listing {
    let now = "2026-11-29T00:00:00Z".to_owned();
    Listing {
        id: ListingId::generate(),
        owner_id: UserId::generate(),
        kind,
        title: "摄影棚".into(),
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
    }
}

/// A dense city: `n` listings around Beijing's centre (most within a few km), clusters at single
/// points larger than one query's reads, and a sparse spread to 60 km.
fn dense_city(n: usize, seed: u64) -> Vec<Listing> {
    let mut rng = Rng(seed);
    let (lat0, lng0) = CENTER;
    let mut out = Vec::new();
    let kind = |i: usize| {
        if i.is_multiple_of(3) {
            Kind::Recruitment
        } else {
            Kind::Service
        }
    };
    // Clusters: 130 listings at one point 300 m away, 60 at one point 2 km away, 40 at exact
    // points that share one coarse point.
    for i in 0..130 {
        out.push(published(
            point(lat0 + 0.3 * KM_LAT, lng0),
            kind(out.len() + i),
        ));
    }
    for _ in 0..60 {
        let k = kind(out.len());
        out.push(published(point(lat0, lng0 + 2.0 * km_lng(lat0)), k));
    }
    for _ in 0..40 {
        let k = kind(out.len());
        let (dlat, dlng) = (rng.next() * 0.0008 - 0.0004, rng.next() * 0.0008 - 0.0004);
        out.push(published(point(39.905 + dlat, 116.41 + dlng), k));
    }
    let rest = n.saturating_sub(out.len());
    for i in 0..rest {
        let k = kind(out.len());
        let (lat, lng) = if i % 5 == 4 {
            // Sparse, up to 60 km.
            (
                lat0 + (rng.next() * 120.0 - 60.0) * KM_LAT,
                lng0 + (rng.next() * 120.0 - 60.0) * km_lng(lat0),
            )
        } else {
            (
                lat0 + rng.normal() * 2.5 * KM_LAT,
                lng0 + rng.normal() * 2.5 * km_lng(lat0),
            )
        };
        out.push(published(point(lat, lng), k));
    }
    out
}

/// Writes the listings' geo entries, 100 to a transaction.
async fn seed(store: &DynStore, listings: &[Listing]) {
    let entries: Vec<Item> = listings
        .iter()
        .flat_map(|l| index::entries(l).unwrap().into_values())
        .filter(|e| e["pk"].as_str().is_some_and(|pk| pk.starts_with("GEO#")))
        .collect();
    for chunk in entries.chunks(100) {
        store
            .transact(chunk.iter().cloned().map(Write::put).collect())
            .await
            .unwrap();
    }
}

/// The answer by brute force: (distance in metres as shown, id), nearest first, ties by id.
fn oracle(
    listings: &[Listing],
    center: &Location,
    radius_m: f64,
    kind: Option<Kind>,
) -> Vec<(i64, String)> {
    let mut hits: Vec<(i64, String)> = listings
        .iter()
        .filter(|l| kind.is_none_or(|k| l.kind == k))
        .filter_map(|l| {
            let d = center.distance_m(&l.location?.coarse());
            (d <= radius_m).then(|| ((d * 1000.0).round() as i64, l.id.to_string()))
        })
        .collect();
    hits.sort();
    hits.into_iter()
        .map(|(mm, id)| ((mm + 500) / 1000, id))
        .collect()
}

/// Pages a nearby query to its end, checking each page's work against the budget.
async fn page_to_end(
    counting: &Arc<Counting>,
    center: Location,
    radius_km: f64,
    kind: Option<Kind>,
    limit: usize,
    budget: Budget,
) -> Vec<(i64, String)> {
    let store: DynStore = counting.clone();
    let admit = move |e: &Item| kind.is_none_or(|k| e["kind"] == json!(k));
    let near = Near {
        center,
        radius_m: radius_km * 1000.0,
        admit: &admit,
        binding: "test".into(),
    };
    let mut out = Vec::new();
    let mut cursor: Option<PageCursor> = None;
    counting.take();
    for pages in 0.. {
        assert!(pages < 20_000, "paging does not end");
        let (items, next, work) = nearby::page(&store, &near, limit, cursor.as_ref(), budget)
            .await
            .unwrap();
        let (queries, read) = counting.take();
        assert_eq!((work.queries, work.items), (queries, read));
        assert!(
            queries <= budget.queries && read <= budget.items,
            "a page made {queries} queries and read {read} entries"
        );
        assert!(items.len() <= limit);
        for item in &items {
            assert!(item.get("pk").is_none() && item.get("sk").is_none());
            out.push((
                item["distance_m"].as_i64().unwrap(),
                item["id"].as_str().unwrap().to_owned(),
            ));
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out
}

async fn check_against_oracle(
    counting: &Arc<Counting>,
    listings: &[Listing],
    cases: &[(Location, f64, Option<Kind>, usize, Budget)],
) {
    for (center, radius_km, kind, limit, budget) in cases {
        let expected = oracle(listings, center, radius_km * 1000.0, *kind);
        let got = page_to_end(counting, *center, *radius_km, *kind, *limit, *budget).await;
        assert_eq!(
            got.len(),
            expected.len(),
            "count at {center:?} {radius_km} km {kind:?} limit {limit} {budget:?}"
        );
        assert!(
            got == expected,
            "order at {center:?} {radius_km} km {kind:?} limit {limit} {budget:?}"
        );
    }
}

const TINY: Budget = Budget {
    queries: 2,
    items: 25,
    per_query: 10,
    cursor_bytes: nearby::MAX_CURSOR_BYTES,
};

/// A cursor too small for the frontier: it is merged into ranges, and stays exact.
const SMALL_CURSOR: Budget = Budget {
    cursor_bytes: 600,
    ..nearby::BUDGET
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearby_is_exact_and_bounded_on_a_dense_city_embedded() {
    let store = TestStore::new(Backend::Embedded).await;
    let listings = dense_city(2000, 11);
    seed(&store, &listings).await;
    let counting = Counting::new(store.store.clone());
    let center = point(CENTER.0, CENTER.1);
    let cluster = point(CENTER.0 + 0.3 * KM_LAT, CENTER.1);
    let away = point(39.7, 116.0);
    let mut cases = Vec::new();
    for radius in [0.05, 0.31, 1.0, 3.7, 8.0, 20.0, 50.0] {
        cases.push((center, radius, None, 20, nearby::BUDGET));
    }
    cases.push((center, 50.0, None, 100, nearby::BUDGET));
    cases.push((center, 50.0, Some(Kind::Recruitment), 20, nearby::BUDGET));
    cases.push((away, 30.0, None, 20, nearby::BUDGET));
    for radius in [1.0, 5.0] {
        cases.push((center, radius, None, 7, nearby::BUDGET));
        cases.push((cluster, radius * 10.0, None, 20, nearby::BUDGET));
        cases.push((center, radius * 2.5, None, 20, SMALL_CURSOR));
    }
    for radius in [0.3, 2.0, 8.0] {
        cases.push((center, radius, None, 7, TINY));
        cases.push((cluster, radius, Some(Kind::Service), 3, TINY));
    }
    check_against_oracle(&counting, &listings, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearby_is_exact_and_bounded_on_dynamodb() {
    let store = TestStore::new(Backend::Dynamo).await;
    let listings = dense_city(450, 12);
    seed(&store, &listings).await;
    let counting = Counting::new(store.store.clone());
    let center = point(CENTER.0, CENTER.1);
    let mut cases = Vec::new();
    for radius in [0.3, 1.0, 5.0, 50.0] {
        cases.push((center, radius, None, 20, nearby::BUDGET));
    }
    cases.push((center, 5.0, Some(Kind::Recruitment), 20, nearby::BUDGET));
    cases.push((center, 2.0, None, 7, TINY));
    cases.push((center, 5.0, None, 20, SMALL_CURSOR));
    check_against_oracle(&counting, &listings, &cases).await;
}

/// A verified member of the local server.
async fn seller(server: &LocalServer, name: &str) -> (String, String) {
    let member = server.member(name, true).await;
    (member.token, member.id)
}

fn body(title: &str, city: &str, location: Option<Value>) -> Value {
    json!({
        "kind": "service",
        "title": title,
        "category": "venue",
        "city": city,
        "price_fen": 10_000,
        "location": location,
        "status": "published",
    })
}

async fn post(api: &Api, token: &str, body: Value) -> Value {
    let reply = api
        .call("POST", "/v1/listings", Some(token), Some(body))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {body}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn others_see_a_coarse_point_and_distances_from_it(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, owner) = seller(&server, "coarse-owner").await;
    let (other, _) = server.api.login("coarse-viewer").await;
    let exact = json!({"lat": 39.9087494, "lng": 116.3974506});
    let made = post(api, &token, body("摄影棚", "北京", Some(exact))).await;
    let id = made["id"].as_str().unwrap().to_owned();
    // The owner's view: the exact point, rounded to 6 decimals on input.
    assert_eq!(
        made["location"],
        json!({"lat": 39.908749, "lng": 116.397451})
    );
    let coarse = json!({"lat": 39.909, "lng": 116.397});
    let path = format!("/v1/listings/{id}");
    let owner_view = api.call("GET", &path, Some(&token), None).await.body;
    assert_eq!(owner_view["location"], made["location"]);
    for viewer in [None, Some(other.as_str())] {
        let seen = api.call("GET", &path, viewer, None).await.body;
        assert_eq!(seen["location"], coarse, "{viewer:?}");
    }
    let lists = [
        "/v1/listings".to_owned(),
        format!("/v1/users/{owner}/listings"),
        "/v1/listings?q=摄影".to_owned(),
    ];
    for list in lists {
        let page = api.call("GET", &list, None, None).await.body;
        assert_eq!(page["items"][0]["location"], coarse, "{list}");
    }
    // Standing on the exact point: the distance shown is to the coarse point, and a radius
    // smaller than that does not find it.
    let here = "near=39.908749,116.397451";
    let near = api
        .call(
            "GET",
            &format!("/v1/listings?{here}&radius_km=1"),
            None,
            None,
        )
        .await
        .body;
    assert_eq!(ids(&near), vec![id.clone()]);
    let item = &near["items"][0];
    assert_eq!(item["location"], coarse);
    let from_coarse = point(39.908749, 116.397451).distance_m(&point(39.909, 116.397));
    assert_eq!(item["distance_m"], json!(from_coarse.round() as i64));
    assert!(from_coarse > 40.0);
    let closer = api
        .call(
            "GET",
            &format!("/v1/listings?{here}&radius_km=0.03"),
            None,
            None,
        )
        .await
        .body;
    assert!(ids(&closer).is_empty(), "{closer}");
    // And the index entry itself holds only the coarse point.
    let raw = server
        .app()
        .store
        .query(Query::partition(keys::geo("wx4")))
        .await
        .unwrap();
    assert_eq!(raw.items.len(), 1);
    assert_eq!(raw.items[0]["location"], coarse);
    assert!(raw.items[0]["sk"]
        .as_str()
        .unwrap()
        .starts_with(&point(39.909, 116.397).geohash(9)));
}

/// `near` is read as openapi.yaml's pattern for it says: plain decimals with an optional `-`,
/// spaces or tabs around; a `+` sign (sent as `%2B`) or other whitespace is 422 naming `near`.
/// A literal `+` in a query string is a space, so `+39.9,+116.4` is ` 39.9, 116.4`.
async fn near_is_read_as_its_pattern_says(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    for near in [
        "39.9,116.4",
        "+39.9,+116.4",
        "%2039.9%20,%09116.4%09",
        "39.,116.",
        "039.90,116.40",
    ] {
        let reply = api
            .call("GET", &format!("/v1/listings?near={near}"), None, None)
            .await;
        assert_eq!(reply.status, 200, "{near}: {reply:?}");
    }
    for near in [
        "%2B39.9,116.4",
        "39.9,%2B116.4",
        "%2B39.9,%2B116.4",
        "%C2%A039.9,116.4",
        "%1C39.9,116.4",
        "39.9,116.4%0A",
        "39.9%0D,116.4",
    ] {
        let reply = api
            .call("GET", &format!("/v1/listings?near={near}"), None, None)
            .await;
        assert_eq!(
            (reply.status, reply.field()),
            (422, "near"),
            "{near}: {reply:?}"
        );
    }
}

async fn points_outside_the_service_area_are_refused(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, _) = seller(&server, "area-owner").await;
    for location in [
        json!({"lat": 0.0, "lng": 0.0}),
        json!({"lat": 1e-131, "lng": 1e-131}),
        json!({"lat": 39.9, "lng": 140.0}),
        json!({"lat": 60.0, "lng": 116.4}),
    ] {
        let reply = api
            .call(
                "POST",
                "/v1/listings",
                Some(&token),
                Some(body("摄影棚", "北京", Some(location.clone()))),
            )
            .await;
        assert_eq!(
            (reply.status, reply.body["error"]["field"].clone()),
            (422, json!("location")),
            "{location}: {reply:?}"
        );
    }
    for near in [
        "1e-131,1e-131",
        "0,0",
        "35,140",
        "-1e-200,116.4",
        "39.9,200",
        // Plain decimals only: the exponent form of a point inside is refused too.
        ".399e2,116.4",
    ] {
        let reply = api
            .call("GET", &format!("/v1/listings?near={near}"), None, None)
            .await;
        assert_eq!(
            (reply.status, reply.body["error"]["field"].clone()),
            (422, json!("near")),
            "{near}: {reply:?}"
        );
    }
    let inside = api
        .call(
            "GET",
            "/v1/listings?near=39.9,116.4&radius_km=50",
            None,
            None,
        )
        .await;
    assert_eq!(inside.status, 200);
}

/// Where the service area includes 0° (another deployment's configuration), a coordinate below
/// DynamoDB's number range is stored and queried as 0 (it would be a 500 on DynamoDB).
async fn tiny_coordinates_round_to_zero(backend: Backend) {
    let store = TestStore::new(backend).await;
    let world = GeoBounds::parse("-60,-170,60,170").unwrap();
    let tiny = Location::new("location", 1e-131, -1e-131, &world).unwrap();
    assert_eq!((tiny.lat, tiny.lng), (0.0, 0.0));
    let listing = published(tiny, Kind::Service);
    seed(&store, std::slice::from_ref(&listing)).await;
    let near = Location::new("near", 1e-131, 1e-131, &world).unwrap();
    let admit = |_: &Item| true;
    let (items, next, _) = nearby::page(
        &store,
        &Near {
            center: near,
            radius_m: 1000.0,
            admit: &admit,
            binding: String::new(),
        },
        20,
        None,
        nearby::BUDGET,
    )
    .await
    .unwrap();
    assert_eq!(ids(&json!({ "items": items })), [listing.id.to_string()]);
    assert_eq!(items[0]["distance_m"], json!(0));
    assert!(next.is_none());
}

async fn keyword_search_finds_every_title_containing_the_query(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, _) = seller(&server, "words-owner").await;
    let mut made = Vec::new();
    for title in ["婚礼摄影师范", "Canon 相机出租", "摄影 师", "影楼化妆"] {
        made.push(post(api, &token, body(title, "上海", None)).await["id"].clone());
    }
    let search = |q: &str| {
        let path = format!("/v1/listings?q={}", urlencode(q));
        async move { api.call("GET", &path, None, None).await }
    };
    for (q, expected) in [
        ("摄影师", vec![0]),
        ("影师", vec![0]),
        ("师范", vec![0]),
        ("婚礼摄影师范", vec![0]),
        ("摄影", vec![2, 0]),
        ("影", vec![]),
        ("ＣＡＮＯＮ", vec![1]),
        ("anon", vec![1]),
        ("n 相", vec![1]),
        ("摄影 师", vec![2]),
        ("影楼化妆师", vec![]),
        ("礼摄影师范x", vec![]),
    ] {
        let reply = search(q).await;
        if q.chars().count() < 2 {
            assert_eq!(
                (reply.status, reply.body["error"]["field"].clone()),
                (422, json!("q")),
                "{q}"
            );
            continue;
        }
        assert_eq!(reply.status, 200, "{q}: {reply:?}");
        let want: Vec<Value> = expected.iter().map(|i| made[*i].clone()).collect();
        let got: Vec<Value> = ids(&reply.body).into_iter().map(Value::from).collect();
        assert_eq!(got, want, "{q}");
    }
    // Titles are stored NFKC-normalised.
    let wide = post(api, &token, body("ＲＥＤ　摄影机", "上海", None)).await;
    assert_eq!(wide["title"], json!("RED 摄影机"));
    assert_eq!(
        ids(&search("red").await.body),
        [wide["id"].as_str().unwrap().to_owned()]
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An edit writes only the index entries it changes, and the worst edit stays within one
/// DynamoDB transaction.
async fn edits_write_only_the_entries_that_change(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let (token, owner) = seller(&server, "edits-owner").await;
    // 40 characters, 39 distinct bigrams, none shared with the second title.
    let title = "婚礼摄影师跟拍化妆造型主持灯光音响舞台布置花艺甜品摄像剪辑航拍直播场地租赁服务好";
    let made = post(
        &server.api,
        &token,
        body(title, "北京", Some(json!({"lat": 39.9, "lng": 116.4}))),
    )
    .await;
    let id = ListingId::parse(made["id"].as_str().unwrap()).unwrap();
    let owner = UserId::parse(&owner).unwrap();
    let counting = Counting::new(server.app().store.clone());
    let store: DynStore = counting.clone();
    let config = &server.app().config;
    let rules = Rules::of(config);
    let patch = |v: Value| serde_json::from_value::<ListingPatch>(v).unwrap();

    // The price: feed and geo entries carry it; term entries do not change.
    listings::update(
        &store,
        &renji_tests::FakeWechat::default(),
        &rules,
        &owner,
        &id,
        patch(json!({"price_fen": 20_000})),
    )
    .await
    .unwrap();
    let writes = counting.take_writes();
    assert!(
        !writes.iter().any(|k| k.pk.starts_with("TERM#")),
        "{writes:?}"
    );
    assert_eq!(writes.len(), 1 + 8 + 1, "{writes:?}");

    // Everything at once: title, category, city and location.
    let other = "商业广告片导演编剧制片美术道具服装梳头选角场记录音混音调色特效包装动画配乐作曲家";
    listings::update(
        &store,
        &renji_tests::FakeWechat::default(),
        &rules,
        &owner,
        &id,
        patch(json!({
            "title": other, "category": "photography", "city": "上海",
            "location": {"lat": 31.2, "lng": 121.5},
        })),
    )
    .await
    .unwrap();
    let writes = counting.take_writes();
    assert!(writes.len() <= 100, "{}", writes.len());
    assert_eq!(writes.len(), 1 + 78 + 14 + 2, "{writes:?}");
    let listing = listings::get(&store, &id).await.unwrap().unwrap();
    assert_eq!(
        (listing.city.as_str(), listing.city_code.as_deref()),
        ("上海市", Some("310000"))
    );
    let raw = server.app().store.get(&keys::listing(&id)).await.unwrap();
    assert!(raw.is_some());
}

async fn a_city_is_one_feed_by_name_short_name_or_adcode(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, _) = seller(&server, "city-owner").await;
    let mut made = Vec::new();
    for city in ["北京", "北京市", "110000", " 北京 "] {
        let listing = post(api, &token, body("摄影棚", city, None)).await;
        assert_eq!(
            (listing["city"].clone(), listing["city_code"].clone()),
            (json!("北京市"), json!("110000")),
            "{city}"
        );
        made.push(listing["id"].as_str().unwrap().to_owned());
    }
    post(api, &token, body("摄影棚", "上海", None)).await;
    made.reverse();
    for city in ["北京", "北京市", "110000"] {
        let feed = api
            .call(
                "GET",
                &format!("/v1/listings?city={}", urlencode(city)),
                None,
                None,
            )
            .await;
        assert_eq!(ids(&feed.body), made, "{city}");
        let kind = api
            .call(
                "GET",
                &format!("/v1/listings?kind=service&city={}", urlencode(city)),
                None,
                None,
            )
            .await;
        assert_eq!(ids(&kind.body), made, "{city}");
    }
    let unknown = api
        .call(
            "POST",
            "/v1/listings",
            Some(&token),
            Some(body("摄影棚", "火星", None)),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.body["error"]["field"].clone()),
        (422, json!("city"))
    );
    let query = api
        .call(
            "GET",
            &format!("/v1/listings?city={}", urlencode("北京朝阳")),
            None,
            None,
        )
        .await;
    assert_eq!(
        (query.status, query.body["error"]["field"].clone()),
        (422, json!("city"))
    );
}

/// A listing stored with a free-text city keeps its old feeds and moves to the city's adcode feed
/// on its next edit.
async fn a_listing_stored_with_free_text_city_moves_on_its_next_edit(backend: Backend) {
    let server = LocalServer::start(backend).await;
    let api = &server.api;
    let (token, owner) = seller(&server, "legacy-owner").await;
    let mut old = published(point(39.9, 116.4), Kind::Service);
    old.owner_id = UserId::parse(&owner).unwrap();
    old.city = "北京".into();
    old.city_code = None;
    old.price_fen = Some(renji_shared::money::Fen::price("price_fen", 100).unwrap());
    let Value::Object(mut item) = serde_json::to_value(&old).unwrap() else {
        panic!()
    };
    let key = keys::listing(&old.id);
    item.insert("pk".into(), key.pk.clone().into());
    item.insert("sk".into(), key.sk.clone().into());
    let store = &server.app().store;
    let mut writes = vec![Write::put(item)];
    writes.extend(index::entries(&old).unwrap().into_values().map(Write::put));
    store.transact(writes).await.unwrap();
    let feed = |city: &'static str| async move {
        ids(&api
            .call(
                "GET",
                &format!("/v1/listings?city={}", urlencode(city)),
                None,
                None,
            )
            .await
            .body)
    };
    let id = old.id.to_string();
    assert_eq!(
        ids(&api.call("GET", "/v1/listings", None, None).await.body),
        vec![id.clone()]
    );
    assert!(feed("北京").await.is_empty());
    let view = api
        .call("GET", &format!("/v1/listings/{id}"), None, None)
        .await
        .body;
    assert_eq!(
        (view["city"].clone(), view["city_code"].clone()),
        (json!("北京"), Value::Null)
    );
    let edited = api
        .call(
            "PATCH",
            &format!("/v1/listings/{id}"),
            Some(&token),
            Some(json!({"price_fen": 200})),
        )
        .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    assert_eq!(edited.body["city_code"], json!("110000"));
    assert_eq!(feed("北京").await, vec![id]);
    // Its free-text feed entries are gone.
    let stale = store.query(Query::partition("FEED#c=北京")).await.unwrap();
    assert!(stale.items.is_empty());
}

on_both_stores!(
    others_see_a_coarse_point_and_distances_from_it,
    points_outside_the_service_area_are_refused,
    near_is_read_as_its_pattern_says,
    tiny_coordinates_round_to_zero,
    keyword_search_finds_every_title_containing_the_query,
    edits_write_only_the_entries_that_change,
    a_city_is_one_feed_by_name_short_name_or_adcode,
    a_listing_stored_with_free_text_city_moves_on_its_next_edit,
);
