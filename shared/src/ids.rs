//! Identifier newtypes. IDs are opaque to clients; ours are a short prefix and a lowercase ULID.

use serde::{Deserialize, Serialize};

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        /// Read back (from a stored record, a signed token) only in the shape we generate.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(into = "String", try_from = "String")]
        pub struct $name(String);

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> Result<Self, String> {
                $name::parse(&text).ok_or_else(|| {
                    format!(
                        "not {} id: {text:?}",
                        $crate::english::with_article(stringify!($name))
                    )
                })
            }
        }

        impl $name {
            const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                $name(format!(
                    "{}{}",
                    Self::PREFIX,
                    ulid::Ulid::new().to_string().to_ascii_lowercase()
                ))
            }

            /// Accepts only the shape we generate, so a path segment never becomes a store key
            /// unchecked.
            pub fn parse(text: &str) -> Option<Self> {
                let rest = text.strip_prefix(Self::PREFIX)?;
                let well_formed = rest.len() == 26
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
                well_formed.then(|| $name(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A member's id (`u_…`).
    UserId,
    "u_"
);
prefixed_id!(
    /// A listing's id (`l_…`).
    ListingId,
    "l_"
);

prefixed_id!(
    /// A review's id (`r_…`): time-ordered, so a list of review ids sorts newest last.
    ReviewId,
    "r_"
);
prefixed_id!(
    /// A customer-service ticket's id (`t_…`).
    TicketId,
    "t_"
);
prefixed_id!(
    /// An uploaded file's id (`m_…`): part of its object key and its URL.
    MediaId,
    "m_"
);

/// A staff member's id: their WeCom (企业微信) `userid` in the company's directory — 1 to 64
/// characters of letters, digits and `_ - @ .` (WeCom's own rule for account names).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct StaffId(String);

impl StaffId {
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@' | b'.'));
        well_formed.then(|| StaffId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<StaffId> for String {
    fn from(id: StaffId) -> String {
        id.0
    }
}

impl TryFrom<String> for StaffId {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        StaffId::parse(&text).ok_or_else(|| format!("not a staff id: {text:?}"))
    }
}

impl std::fmt::Display for StaffId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An order's id, which is also its `order_no`: both providers' `out_trade_no`. 24 characters
/// of `[0-9A-Z]` (the first 24 of an uppercase ULID: 48 bits of milliseconds and 70 random bits),
/// so ids sort by creation time and numbers derived from one (refunds, settlement) stay within
/// Alipay's 32. Uniqueness is also enforced by the creating write's condition.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct OrderId(String);

impl OrderId {
    pub const LEN: usize = 24;

    pub fn generate() -> Self {
        let mut id = ulid::Ulid::new().to_string();
        id.truncate(Self::LEN);
        OrderId(id)
    }

    /// Accepts only the shape we generate (uppercase Crockford base32), so a path segment or a
    /// provider's `out_trade_no` never becomes a store key unchecked.
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = text.len() == Self::LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
        well_formed.then(|| OrderId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<OrderId> for String {
    fn from(id: OrderId) -> String {
        id.0
    }
}

impl TryFrom<String> for OrderId {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        OrderId::parse(&text).ok_or_else(|| format!("not an order id: {text:?}"))
    }
}

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sort key that orders records by creation time to the millisecond (a ULID), for lists
/// shown newest first.
pub fn time_order() -> String {
    ulid::Ulid::new().to_string().to_ascii_lowercase()
}

/// A random, unguessable token part (128 bits, URL-safe base64).
pub fn random_token() -> String {
    use base64::Engine as _;
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // The system RNG failing leaves no safe way on; it does not happen on Linux.
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("system random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_shapes() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(id.as_str()), Some(id.clone()));
        for bad in [
            "",
            "u_",
            "x_01hzy",
            "u_../../etc",
            &id.as_str().to_uppercase(),
        ] {
            assert_eq!(UserId::parse(bad), None, "{bad}");
        }
        let listing = ListingId::generate();
        assert!(ListingId::parse(listing.as_str()).is_some());
        assert!(
            ListingId::parse(id.as_str()).is_none(),
            "a user id is no listing id"
        );
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn staff_ids_are_wecom_account_names() {
        for good in ["zhangsan", "Li.Si-2", "a@b_c", &"x".repeat(64)] {
            assert!(StaffId::parse(good).is_some(), "{good}");
        }
        for bad in ["", "a b", "a#b", "张三", &"x".repeat(65), "a/b"] {
            assert!(StaffId::parse(bad).is_none(), "{bad}");
        }
        let review = ReviewId::generate();
        assert!(ReviewId::parse(review.as_str()).is_some());
        assert!(TicketId::parse(review.as_str()).is_none());
    }

    #[test]
    fn order_ids_are_24_characters_of_the_providers_alphabet_in_time_order() {
        let first = OrderId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = OrderId::generate();
        assert!(first < second, "{first} then {second}");
        assert_eq!(first.as_str().len(), 24);
        assert_eq!(OrderId::parse(first.as_str()), Some(first.clone()));
        for bad in [
            "",
            "01HZY",
            &first.as_str().to_lowercase(),
            &format!("{first}0"),
            "0123456789ABCDEFGHIJKLM_",
        ] {
            assert_eq!(OrderId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_are_read_back_only_in_their_shape() {
        let id = UserId::generate();
        let text = serde_json::to_value(&id).unwrap();
        assert_eq!(text, serde_json::json!(id.as_str()));
        assert_eq!(serde_json::from_value::<UserId>(text).unwrap(), id);
        for bad in [
            serde_json::json!("u_1"),
            serde_json::json!(ListingId::generate()),
            serde_json::json!(7),
        ] {
            assert!(
                serde_json::from_value::<UserId>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
