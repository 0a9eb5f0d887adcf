//! What a client may send about a listing, validated into values the domain can trust. Owner,
//! counts, `removed`/`taken_down` and timestamps are not fields here: bodies naming them are
//! refused by `deny_unknown_fields` (mass assignment).

use serde::{Deserialize, Serialize};

use crate::cities::City;
use crate::domain::profile::{bounded_text, https_url, not_null, patch_field};
use crate::error::Error;
use crate::geo::{GeoBounds, Location};
use crate::money::Fen;

pub const MAX_TITLE_CHARS: usize = 40;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_IMAGES: usize = 9;
pub const MAX_MEDIA_URL_LEN: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 服务: sold at a price.
    Service,
    /// 招募: a call for people; no price.
    Recruitment,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Recruitment => "recruitment",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "service" => Some(Kind::Service),
            "recruitment" => Some(Kind::Recruitment),
            _ => None,
        }
    }
}

/// The statuses a client may ask for; `removed` is `DELETE`, `taken_down` is staff's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestedStatus {
    Draft,
    Published,
    Closed,
}

/// `POST /v1/listings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewListing {
    pub kind: Kind,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    pub city: String,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub video_url: Option<String>,
    /// The video's cover (an upload for `video_cover`): required with a video.
    #[serde(default)]
    pub video_cover_url: Option<String>,
    #[serde(default)]
    pub price_fen: Option<i64>,
    /// `draft` (default) or `published`.
    #[serde(default)]
    pub status: Option<RequestedStatus>,
}

/// `PATCH /v1/listings/{id}`: absent fields stay; `null` clears the optional ones (location,
/// video_url, video_cover_url) and is refused, naming the field, on the others.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListingPatch {
    #[serde(default, deserialize_with = "not_null")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub city: Option<String>,
    #[serde(default, deserialize_with = "patch_field")]
    pub location: Option<Option<Location>>,
    #[serde(default, deserialize_with = "not_null")]
    pub images: Option<Vec<String>>,
    #[serde(default, deserialize_with = "patch_field")]
    pub video_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch_field")]
    pub video_cover_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub price_fen: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    pub status: Option<RequestedStatus>,
}

/// A title, NFKC-normalised (full-width letters and digits become plain ones) before its length
/// is counted, so it is stored and searched in one form.
pub fn title(text: &str) -> Result<String, Error> {
    bounded_text("title", &crate::text::nfkc(text), MAX_TITLE_CHARS)
}

pub fn description(text: &str) -> Result<String, Error> {
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    // Descriptions may hold line breaks; other control characters are refused.
    let lines: Result<Vec<String>, Error> = text
        .trim()
        .split('\n')
        .map(|line| {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                Ok(String::new())
            } else {
                bounded_text("description", line, MAX_DESCRIPTION_CHARS)
            }
        })
        .collect();
    let joined = lines?.join("\n");
    let chars = joined.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters, not {chars}"),
        ));
    }
    Ok(joined)
}

pub fn category(text: &str, allowed: &[String]) -> Result<String, Error> {
    if allowed.iter().any(|c| c == text) {
        Ok(text.to_owned())
    } else {
        Err(Error::invalid(
            "category",
            format!("must be one of: {}", allowed.join(", ")),
        ))
    }
}

/// A city of `cities.rs`, named by its name (北京市), short name (北京) or adcode (110000).
pub fn city(text: &str) -> Result<City, Error> {
    crate::cities::lookup(text).ok_or_else(|| {
        Error::invalid(
            "city",
            "is not a known city: give a prefecture-level city or municipality by its name \
             (北京市), short name (北京) or adcode (110000)",
        )
    })
}

pub fn images(urls: &[String]) -> Result<Vec<String>, Error> {
    if urls.len() > MAX_IMAGES {
        return Err(Error::invalid(
            "images",
            format!("at most {MAX_IMAGES} images, not {}", urls.len()),
        ));
    }
    urls.iter()
        .enumerate()
        .map(|(i, u)| https_url(&format!("images[{i}]"), u, MAX_MEDIA_URL_LEN))
        .collect()
}

pub fn video_url(url: &str) -> Result<String, Error> {
    https_url("video_url", url, MAX_MEDIA_URL_LEN)
}

pub fn video_cover_url(url: &str) -> Result<String, Error> {
    https_url("video_cover_url", url, MAX_MEDIA_URL_LEN)
}

/// A service has a price; a recruitment has none.
pub fn price(kind: Kind, price_fen: Option<i64>) -> Result<Option<Fen>, Error> {
    match (kind, price_fen) {
        (Kind::Service, Some(fen)) => Fen::price("price_fen", fen).map(Some),
        (Kind::Service, None) => Err(Error::invalid("price_fen", "a service needs a price")),
        (Kind::Recruitment, None) => Ok(None),
        (Kind::Recruitment, Some(_)) => {
            Err(Error::invalid("price_fen", "a recruitment has no price"))
        }
    }
}

/// A listing's point: rounded to 6 decimals, inside the service area.
pub fn location(location: Location, bounds: &GeoBounds) -> Result<Location, Error> {
    Location::new("location", location.lat, location.lng, bounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_have_prices_and_recruitments_do_not() {
        assert_eq!(price(Kind::Service, Some(1)).unwrap().unwrap().get(), 1);
        assert!(price(Kind::Service, None).is_err());
        assert!(price(Kind::Service, Some(0)).is_err());
        assert!(price(Kind::Service, Some(-5)).is_err());
        assert!(price(Kind::Service, Some(Fen::MAX_PRICE + 1)).is_err());
        assert_eq!(price(Kind::Recruitment, None).unwrap(), None);
        assert!(price(Kind::Recruitment, Some(100)).is_err());
    }

    #[test]
    fn media_must_be_https_and_few() {
        let ok = vec!["https://img.renji.world/1.jpg".to_owned(); 9];
        assert_eq!(images(&ok).unwrap().len(), 9);
        assert!(images(&vec!["https://img.renji.world/1.jpg".to_owned(); 10]).is_err());
        let err = images(&["https://a.cn/1.jpg".into(), "http://a.cn/2.jpg".into()]).unwrap_err();
        assert!(matches!(err, Error::Invalid { ref field, .. } if field == "images[1]"));
        assert!(video_url("https://v.renji.world/a.mp4").is_ok());
        assert!(video_url("rtmp://v.renji.world/a").is_err());
    }

    #[test]
    fn text_fields_are_bounded_in_characters() {
        assert_eq!(title("  婚礼摄影师 ").unwrap(), "婚礼摄影师");
        assert!(title(&"摄".repeat(41)).is_err());
        assert_eq!(
            description("第一行\r\n\n第二行").unwrap(),
            "第一行\n\n第二行"
        );
        assert!(description("bad\u{0007}bell").is_err());
        assert!(description("line\u{2028}separator").is_err());
        assert!(description("第一行\n\u{3164}").is_err());
        assert!(title("\u{3164}\u{3164}").is_err());
        assert!(title("婚礼\u{200B}摄影").is_err());
        assert!(title("\u{FE0F}").is_err());
        assert!(description(&"字".repeat(2001)).is_err());
        assert_eq!(title("Ｃａｎｏｎ　摄影").unwrap(), "Canon 摄影");
        assert_eq!(city("北京").unwrap().adcode, "110000");
        assert!(city("北#京").is_err());
        assert!(city("火星").is_err());
        let allowed = vec!["photography".to_owned()];
        assert!(category("photography", &allowed).is_ok());
        assert!(category("weapons", &allowed).is_err());
    }
}
