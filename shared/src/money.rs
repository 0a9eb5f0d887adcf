//! Money is an integer number of fen (1/100 yuan), never a float.

use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(i64);

impl Fen {
    /// The largest price a listing may ask: ¥1,000,000.
    pub const MAX_PRICE: i64 = 100_000_000;

    /// A listing price: at least 1 fen, at most [`Fen::MAX_PRICE`].
    pub fn price(field: &str, fen: i64) -> Result<Self, Error> {
        if !(1..=Self::MAX_PRICE).contains(&fen) {
            return Err(Error::invalid(
                field,
                format!(
                    "must be a whole number of fen from 1 to {}",
                    Self::MAX_PRICE
                ),
            ));
        }
        Ok(Fen(fen))
    }

    /// An amount computed by the server from amounts it holds (never from input).
    pub fn from_fen(fen: i64) -> Self {
        Fen(fen)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}
