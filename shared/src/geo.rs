//! Locations, distances and the geohash cells that make "nearby" a set of index queries instead
//! of a scan.
//!
//! Listings with a location are indexed under their precision-4 geohash cell (about 39 × 20 km)
//! with the precision-9 geohash as sort key. A nearby query covers the circle's bounding box with
//! cells of a precision chosen from the radius, and reads each cell as a partition (precision 4)
//! or a sort-key prefix inside one (precision 5 and 6).

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Geohash length of the index partition.
pub const PARTITION_PRECISION: usize = 4;
/// Geohash length stored as the sort key.
pub const POINT_PRECISION: usize = 9;
/// The largest radius a nearby query may ask for.
pub const MAX_RADIUS_KM: f64 = 50.0;

const EARTH_RADIUS_M: f64 = 6_371_008.8;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub lat: f64,
    pub lng: f64,
}

impl Location {
    pub fn new(field: &str, lat: f64, lng: f64) -> Result<Self, Error> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(Error::invalid(field, "latitude must be from -90 to 90"));
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(Error::invalid(field, "longitude must be from -180 to 180"));
        }
        Ok(Location { lat, lng })
    }

    /// Parses `lat,lng` (the `near` query parameter).
    pub fn parse_pair(field: &str, text: &str) -> Result<Self, Error> {
        let bad = || Error::invalid(field, "must be `lat,lng` in decimal degrees");
        let (lat, lng) = text.split_once(',').ok_or_else(bad)?;
        let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
        let lng: f64 = lng.trim().parse().map_err(|_| bad())?;
        Location::new(field, lat, lng)
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
        2.0 * EARTH_RADIUS_M * a.sqrt().asin()
    }
}

/// The geohash precision to cover a circle of `radius_km` with a handful of cells.
pub fn query_precision(radius_km: f64) -> usize {
    if radius_km <= 1.0 {
        6
    } else if radius_km <= 5.0 {
        5
    } else {
        PARTITION_PRECISION
    }
}

/// Height and width in degrees of a geohash cell of this precision.
fn cell_size(precision: usize) -> (f64, f64) {
    let bits = 5 * precision as i32;
    let lng_bits = (bits + 1) / 2;
    let lat_bits = bits / 2;
    (180.0 / 2f64.powi(lat_bits), 360.0 / 2f64.powi(lng_bits))
}

/// Every geohash cell of `precision` that the circle's bounding box touches, sorted.
pub fn covering_cells(center: &Location, radius_km: f64, precision: usize) -> Vec<String> {
    let dlat = radius_km / 111.32;
    let dlng = radius_km / (111.32 * center.lat.to_radians().cos().max(0.01));
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
        .collect();
    cells.sort();
    cells.dedup();
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_known_values() {
        let tiananmen = Location::new("near", 39.9087, 116.3975).unwrap();
        let shanghai = Location::new("near", 31.2304, 121.4737).unwrap();
        let d = tiananmen.distance_m(&shanghai) / 1000.0;
        assert!((1060.0..1075.0).contains(&d), "{d}");
        assert_eq!(tiananmen.distance_m(&tiananmen), 0.0);
    }

    #[test]
    fn covering_cells_contain_every_point_of_the_circle() {
        let center = Location::new("near", 39.9, 116.4).unwrap();
        for radius in [0.5, 3.0, 10.0, 50.0] {
            let precision = query_precision(radius);
            let cells = covering_cells(&center, radius, precision);
            assert!(cells.len() <= 40, "{radius} km: {} cells", cells.len());
            // Points on the circle, in every direction, fall in a covering cell.
            for step in 0..36 {
                let bearing = f64::from(step * 10).to_radians();
                let p = Location {
                    lat: center.lat + radius * 0.999 / 111.32 * bearing.cos(),
                    lng: center.lng
                        + radius * 0.999 / (111.32 * center.lat.to_radians().cos()) * bearing.sin(),
                };
                assert!(cells.contains(&p.geohash(precision)), "{radius} km, {step}");
            }
        }
    }

    #[test]
    fn bad_coordinates_are_refused() {
        assert!(Location::parse_pair("near", "39.9,116.4").is_ok());
        for bad in ["", "39.9", "91,0", "0,181", "NaN,1", "a,b", "39.9;116.4"] {
            assert!(Location::parse_pair("near", bad).is_err(), "{bad}");
        }
    }
}
