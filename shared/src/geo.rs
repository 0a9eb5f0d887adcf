//! Locations, distances and the geohash cells that make "nearby" a bounded best-first search over
//! index partitions instead of a scan (the search itself is `domain::listings::nearby`).
//!
//! - Coordinates are rounded to [`COORD_DECIMALS`] decimals on input (about 0.1 m): a value such as
//!   1e-131, below DynamoDB's number range, becomes 0.
//! - Points must lie in the configured bounding box ([`GeoBounds`], China by default).
//! - Others see a listing's point coarsened to a grid of [`COARSE_DECIMALS`] decimals (0.001°:
//!   111 m north–south, 70–110 m east–west within China); the nearby index holds only that point.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Geohash length of a nearby index partition: cells of about 156 × 156 km (× cos lat).
pub const PARTITION_PRECISION: usize = 3;
/// Geohash length of the point stored in the sort key: about 4.8 × 4.8 m, so every coarse grid
/// point has a cell of its own.
pub const POINT_PRECISION: usize = 9;
/// The largest radius a nearby query may ask for.
pub const MAX_RADIUS_KM: f64 = 50.0;
/// Decimals kept of every coordinate a client sends.
pub const COORD_DECIMALS: i32 = 6;
/// Decimals of the coarse point others see.
pub const COARSE_DECIMALS: i32 = 3;

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The geohash alphabet, in ascending byte order (so children sort as their sort keys do).
pub const BASE32: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// `x` rounded to `decimals` places; never `-0`.
fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    let rounded = (x * scale).round() / scale;
    if rounded == 0.0 {
        0.0
    } else {
        rounded
    }
}

/// Where listings and queries may be: `RENJI_GEO_BOUNDS` = `min_lat,min_lng,max_lat,max_lng`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoBounds {
    pub min_lat: f64,
    pub min_lng: f64,
    pub max_lat: f64,
    pub max_lng: f64,
}

impl GeoBounds {
    /// China's bounding box, about 3°–54° N and 73°–136° E.
    pub const CHINA: GeoBounds = GeoBounds {
        min_lat: 3.0,
        min_lng: 73.0,
        max_lat: 54.0,
        max_lng: 136.0,
    };

    /// Parses `min_lat,min_lng,max_lat,max_lng`. The box must not reach the poles (cells near
    /// them are slivers) nor cross the antimeridian (distances here do not wrap).
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<f64> = text
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| "must be min_lat,min_lng,max_lat,max_lng in degrees".to_owned())?;
        let [min_lat, min_lng, max_lat, max_lng] = parts[..] else {
            return Err("must be four numbers: min_lat,min_lng,max_lat,max_lng".into());
        };
        let ok = [min_lat, min_lng, max_lat, max_lng]
            .iter()
            .all(|v| v.is_finite())
            && -80.0 <= min_lat
            && min_lat < max_lat
            && max_lat <= 80.0
            && -180.0 <= min_lng
            && min_lng < max_lng
            && max_lng <= 180.0;
        if !ok {
            return Err(
                "needs -80 <= min_lat < max_lat <= 80 and -180 <= min_lng < max_lng <= 180".into(),
            );
        }
        Ok(GeoBounds {
            min_lat,
            min_lng,
            max_lat,
            max_lng,
        })
    }

    fn contains(&self, lat: f64, lng: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lng..=self.max_lng).contains(&lng)
    }
}

impl Default for GeoBounds {
    fn default() -> Self {
        GeoBounds::CHINA
    }
}

/// A point in decimal degrees. Bodies deserialize into it; [`Location::new`] validates and rounds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Location {
    pub lat: f64,
    pub lng: f64,
}

/// Only `{"lat", "lng"}`: serde's derived struct would also read `[lat, lng]`, a shape the
/// contract does not have.
impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            lat: f64,
            lng: f64,
        }
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object {lat, lng}")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Fields, A::Error> {
                Fields::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        let fields = deserializer.deserialize_map(ObjectOnly)?;
        Ok(Location {
            lat: fields.lat,
            lng: fields.lng,
        })
    }
}

impl Location {
    /// A client's point: finite, rounded to [`COORD_DECIMALS`], inside `bounds` (else 422).
    pub fn new(field: &str, lat: f64, lng: f64, bounds: &GeoBounds) -> Result<Self, Error> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(Error::invalid(field, "latitude must be from -90 to 90"));
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(Error::invalid(field, "longitude must be from -180 to 180"));
        }
        let (lat, lng) = (round_to(lat, COORD_DECIMALS), round_to(lng, COORD_DECIMALS));
        if !bounds.contains(lat, lng) {
            return Err(Error::invalid(
                field,
                format!(
                    "must be within the service area: latitude {} to {}, longitude {} to {}",
                    bounds.min_lat, bounds.max_lat, bounds.min_lng, bounds.max_lng
                ),
            ));
        }
        Ok(Location { lat, lng })
    }

    /// Parses `lat,lng` (the `near` query parameter).
    pub fn parse_pair(field: &str, text: &str, bounds: &GeoBounds) -> Result<Self, Error> {
        let bad = || Error::invalid(field, "must be `lat,lng` in decimal degrees");
        // Plain decimals only, as openapi.yaml's pattern says: an optional `-` (no `+`), digits
        // and one point; spaces and tabs around. Rust's float parser would also take `+5`, `5e1`,
        // `inf` and `NaN`, and `trim` other whitespace the pattern does not name.
        let number = |part: &str| -> Result<f64, Error> {
            let part = part.trim_matches([' ', '\t']);
            let decimal = !part.is_empty()
                && part
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| b.is_ascii_digit() || b == b'.' || (i == 0 && b == b'-'));
            decimal.then(|| part.parse().ok()).flatten().ok_or_else(bad)
        };
        let (lat, lng) = text.split_once(',').ok_or_else(bad)?;
        let (lat, lng) = (number(lat)?, number(lng)?);
        Location::new(field, lat, lng, bounds)
    }

    /// The point others see: snapped to the 0.001° grid. Every figure others get (radius
    /// filter, order, `distance_m`) is computed from it, so no series of queries can narrow the
    /// exact point down further than its grid cell.
    pub fn coarse(&self) -> Location {
        Location {
            lat: round_to(self.lat, COARSE_DECIMALS),
            lng: round_to(self.lng, COARSE_DECIMALS),
        }
    }

    pub fn geohash(&self, precision: usize) -> String {
        geohash::encode(
            geohash::Coord {
                x: self.lng,
                y: self.lat,
            },
            precision,
        )
        // Only out-of-range coordinates fail, and `new` rejects those.
        .unwrap_or_default()
    }

    /// Great-circle distance in metres (haversine).
    pub fn distance_m(&self, other: &Location) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlng = (other.lng - self.lng).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.min(1.0).sqrt().asin()
    }
}

/// A geohash cell's extent in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    pub min_lat: f64,
    pub max_lat: f64,
    pub min_lng: f64,
    pub max_lng: f64,
}

impl Cell {
    /// The cell of a geohash; `None` for text that is not one.
    pub fn of(hash: &str) -> Option<Cell> {
        let rect = geohash::decode_bbox(hash).ok()?;
        Some(Cell {
            min_lat: rect.min().y,
            max_lat: rect.max().y,
            min_lng: rect.min().x,
            max_lng: rect.max().x,
        })
    }

    /// The shortest distance in metres from `p` to any point of the cell, less a margin for
    /// rounding: never more than the distance to a point inside.
    pub fn min_distance_m(&self, p: &Location) -> f64 {
        let inside_lng = (self.min_lng..=self.max_lng).contains(&p.lng);
        if inside_lng && (self.min_lat..=self.max_lat).contains(&p.lat) {
            return 0.0;
        }
        let nearest = if inside_lng {
            // Along the meridian: the nearer parallel edge, at the point's own longitude.
            Location {
                lat: p.lat.clamp(self.min_lat, self.max_lat),
                lng: p.lng,
            }
        } else {
            // The nearer meridian edge. The closest point of a meridian is poleward of the
            // point's latitude (tan φm = tan φ / cos Δλ); the distance along it is unimodal, so
            // clamping to the edge gives the closest point of the edge. Parallels are nearest at
            // their nearest end, which is on this edge too.
            let lng = p.lng.clamp(self.min_lng, self.max_lng);
            let dlng = (p.lng - lng).to_radians();
            let lat = (p.lat.to_radians().tan() / dlng.cos())
                .atan()
                .to_degrees()
                .clamp(self.min_lat, self.max_lat);
            Location { lat, lng }
        };
        (p.distance_m(&nearest) - 0.5).max(0.0)
    }
}

/// The children of a geohash cell, in sort-key order.
pub fn children(hash: &str) -> impl Iterator<Item = String> + '_ {
    BASE32.iter().map(move |c| {
        let mut child = String::with_capacity(hash.len() + 1);
        child.push_str(hash);
        child.push(char::from(*c));
        child
    })
}

/// Whether `text` is a geohash of 1 to `POINT_PRECISION` characters.
pub fn is_geohash(text: &str) -> bool {
    (1..=POINT_PRECISION).contains(&text.len()) && text.bytes().all(|b| BASE32.contains(&b))
}

/// Height and width in degrees of a geohash cell of this precision.
fn cell_size(precision: usize) -> (f64, f64) {
    let bits = 5 * precision as i32;
    let lng_bits = (bits + 1) / 2;
    let lat_bits = bits / 2;
    (180.0 / 2f64.powi(lat_bits), 360.0 / 2f64.powi(lng_bits))
}

/// Every geohash cell of `precision` that comes within `radius_m` of `center`, sorted.
pub fn covering_cells(center: &Location, radius_m: f64, precision: usize) -> Vec<String> {
    // A bounding box a little larger than the circle; cells are then kept by true distance.
    let radius_km = radius_m / 1000.0 * 1.01 + 0.01;
    let dlat = radius_km / 111.0;
    let dlng = radius_km / (111.0 * center.lat.to_radians().cos().max(0.01));
    let (h, w) = cell_size(precision);
    let (lat0, lat1) = (
        (center.lat - dlat).max(-90.0),
        (center.lat + dlat).min(90.0),
    );
    let (lng0, lng1) = (
        (center.lng - dlng).max(-180.0),
        (center.lng + dlng).min(180.0),
    );
    let steps = |from: f64, to: f64, step: f64| {
        let n = ((to - from) / step).ceil() as usize;
        (0..=n).map(move |i| (from + i as f64 * step).min(to))
    };
    let mut cells: Vec<String> = steps(lat0, lat1, h)
        .flat_map(|lat| steps(lng0, lng1, w).map(move |lng| (lat, lng)))
        .map(|(lat, lng)| Location { lat, lng }.geohash(precision))
        .filter(|hash| Cell::of(hash).is_some_and(|c| c.min_distance_m(center) <= radius_m))
        .collect();
    cells.sort();
    cells.dedup();
    cells
}

/// The cells a nearby search starts from: the finest precision (down to the partition's) whose
/// cells within the radius are at most `MAX_START_CELLS`, so a sparse region costs few reads and
/// a dense one starts close to the point.
pub fn start_cells(center: &Location, radius_m: f64) -> Vec<String> {
    const MAX_START_CELLS: usize = 6;
    for precision in (PARTITION_PRECISION + 1..=7).rev() {
        let cells = covering_cells(center, radius_m, precision);
        if cells.len() <= MAX_START_CELLS {
            return cells;
        }
    }
    covering_cells(center, radius_m, PARTITION_PRECISION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lng: f64) -> Location {
        Location::new("near", lat, lng, &GeoBounds::CHINA).unwrap()
    }

    #[test]
    fn distances_match_known_values() {
        let tiananmen = at(39.9087, 116.3975);
        let shanghai = at(31.2304, 121.4737);
        let d = tiananmen.distance_m(&shanghai) / 1000.0;
        assert!((1060.0..1075.0).contains(&d), "{d}");
        assert_eq!(tiananmen.distance_m(&tiananmen), 0.0);
    }

    #[test]
    fn coordinates_are_rounded_and_bounded() {
        let p = at(39.123_456_789, 116.000_000_4);
        assert_eq!((p.lat, p.lng), (39.123457, 116.0));
        let bounds = GeoBounds {
            min_lat: -10.0,
            min_lng: -10.0,
            max_lat: 10.0,
            max_lng: 10.0,
        };
        let tiny = Location::new("location", 1e-131, -1e-131, &bounds).unwrap();
        assert_eq!((tiny.lat, tiny.lng), (0.0, 0.0));
        assert!(tiny.lng.is_sign_positive());
        // Outside China.
        for (lat, lng) in [(0.0, 0.0), (55.0, 116.0), (39.9, 140.0), (2.9, 100.0)] {
            assert!(Location::new("near", lat, lng, &GeoBounds::CHINA).is_err());
        }
        assert!(Location::parse_pair("near", "39.9,116.4", &GeoBounds::CHINA).is_ok());
        assert!(Location::parse_pair("near", " 39.90 , 116.4", &GeoBounds::CHINA).is_ok());
        assert!(Location::parse_pair("near", "\t39.,116.\t", &GeoBounds::CHINA).is_ok());
        for bad in [
            "",
            "39.9",
            "91,0",
            "0,181",
            "NaN,1",
            "a,b",
            "39.9;116.4",
            "inf,116",
            ".5e1,116",
            "39.9,1.164e2",
            "+39.9,116.4",
            "39.9,+116.4",
            "-,116",
            "\u{a0}39.9,116.4",
            "\u{1c}39.9,116.4",
            "39.9,116.4\n",
        ] {
            assert!(
                Location::parse_pair("near", bad, &GeoBounds::CHINA).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn locations_are_objects_only() {
        let read = |text: &str| serde_json::from_str::<Location>(text);
        assert_eq!(
            read(r#"{"lat": 39.9, "lng": 116.4}"#).unwrap(),
            Location {
                lat: 39.9,
                lng: 116.4
            }
        );
        for bad in [
            "[39.9, 116.4]",
            r#"{"lat": 39.9}"#,
            r#"{"lat": 1, "lng": 2, "x": 3}"#,
            "7",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounds_parse() {
        assert_eq!(GeoBounds::parse("3,73,54,136").unwrap(), GeoBounds::CHINA);
        for bad in [
            "",
            "3,73,54",
            "54,73,3,136",
            "3,73,90,136",
            "a,b,c,d",
            "3,170,54,-170",
        ] {
            assert!(GeoBounds::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_coarse_point_is_on_the_grid_and_near() {
        let p = at(39.908_749, 116.397_451);
        let c = p.coarse();
        assert_eq!((c.lat, c.lng), (39.909, 116.397));
        assert!(p.distance_m(&c) < 80.0);
        assert_eq!(c.coarse(), c);
    }

    #[test]
    fn min_distance_never_exceeds_a_point_inside() {
        let center = at(45.0, 120.0);
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..2000 {
            let p = Location {
                lat: 44.5 + next(),
                lng: 119.3 + 1.4 * next(),
            };
            for precision in 3..=7 {
                let hash = p.geohash(precision);
                let cell = Cell::of(&hash).unwrap();
                assert!(
                    cell.min_distance_m(&center) <= center.distance_m(&p),
                    "{hash}"
                );
            }
        }
    }

    #[test]
    fn covering_cells_contain_every_point_of_the_circle() {
        let center = at(39.9, 116.4);
        for radius in [0.5, 3.0, 10.0, 50.0] {
            let cells = start_cells(&center, radius * 1000.0);
            assert!(cells.len() <= 6, "{radius} km: {} cells", cells.len());
            for step in 0..72 {
                let bearing = f64::from(step * 5).to_radians();
                let p = Location {
                    lat: center.lat + radius * 0.999 / 111.32 * bearing.cos(),
                    lng: center.lng
                        + radius * 0.999 / (111.32 * center.lat.to_radians().cos()) * bearing.sin(),
                };
                assert!(
                    cells.iter().any(|c| p.geohash(9).starts_with(c.as_str())),
                    "{radius} km, {step}"
                );
            }
        }
    }
}
