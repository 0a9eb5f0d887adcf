//! China's city-level divisions and their adcodes (`data/cities.tsv`: source, licence and the
//! choice of rows are in its header). A listing stores a city's canonical name and adcode; a
//! client may name a city by its name (`北京市`), its short name (`北京`) or its adcode
//! (`110000`), which are one city and so one feed.

use std::collections::HashMap;
use std::sync::OnceLock;

const DATA: &str = include_str!("../data/cities.tsv");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct City {
    /// The six-digit administrative division code, e.g. `110000`.
    pub adcode: &'static str,
    /// The canonical (official) name, e.g. `北京市`.
    pub name: &'static str,
    pub province: &'static str,
}

struct Table {
    cities: Vec<City>,
    /// Adcode, name and short name → index in `cities`.
    by_key: HashMap<&'static str, usize>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut cities = Vec::new();
        let mut by_key = HashMap::new();
        // The file is ours and checked by the tests below; a malformed line is skipped.
        for line in DATA.lines().filter(|l| !l.starts_with('#')).skip(1) {
            let mut cols = line.split('\t');
            let (Some(adcode), Some(name), Some(province), short) =
                (cols.next(), cols.next(), cols.next(), cols.next())
            else {
                continue;
            };
            let index = cities.len();
            cities.push(City {
                adcode,
                name,
                province,
            });
            by_key.insert(adcode, index);
            by_key.insert(name, index);
            if let Some(short) = short.filter(|s| !s.is_empty()) {
                by_key.insert(short, index);
            }
        }
        Table { cities, by_key }
    })
}

/// The city a client means by `text` (adcode, name or short name, NFKC-normalised and trimmed).
pub fn lookup(text: &str) -> Option<City> {
    let text = crate::text::nfkc(text.trim());
    let table = table();
    table.by_key.get(text.as_str()).map(|&i| table.cities[i])
}

/// The city of an adcode.
pub fn by_adcode(adcode: &str) -> Option<City> {
    lookup(adcode).filter(|c| c.adcode == adcode)
}

pub fn all() -> &'static [City] {
    &table().cities
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_loads_whole_and_keys_are_unique() {
        let lines = DATA.lines().filter(|l| !l.starts_with('#')).skip(1).count();
        assert_eq!(all().len(), lines);
        assert!(all().len() > 360, "{}", all().len());
        let mut keys = std::collections::HashSet::new();
        for line in DATA.lines().filter(|l| !l.starts_with('#')).skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "{line}");
            assert!(cols[0].len() == 6 && cols[0].bytes().all(|b| b.is_ascii_digit()));
            for key in cols
                .iter()
                .take(2)
                .chain(cols.get(3))
                .filter(|k| !k.is_empty())
            {
                assert!(keys.insert(*key), "{key} names two cities");
                assert!(!key.contains('#'), "{key}");
            }
        }
    }

    #[test]
    fn a_city_has_three_names() {
        for text in ["北京", "北京市", "110000", " 北京 "] {
            let city = lookup(text).unwrap();
            assert_eq!((city.adcode, city.name), ("110000", "北京市"), "{text}");
        }
        assert_eq!(lookup("延边").unwrap().name, "延边朝鲜族自治州");
        assert_eq!(lookup("吉林").unwrap().adcode, "220200");
        assert_eq!(lookup("仙桃").unwrap().adcode, "429004");
        assert_eq!(lookup("１１００００").unwrap().adcode, "110000");
        for unknown in ["海南", "广东省", "Beijing", "", "110001", "北京朝阳"] {
            assert!(lookup(unknown).is_none(), "{unknown}");
        }
        assert_eq!(by_adcode("310000").unwrap().name, "上海市");
        assert!(by_adcode("上海").is_none());
    }
}
