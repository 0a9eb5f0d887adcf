//! What staff see of a member (`GET /admin/v1/members/{id}`): the public profile, the
//! verification status as the member sees it (name and number masked: the sealed values never
//! leave `verification`), and the first page of their listings (every status, with a take-down's
//! reason) and of their orders as buyer and as seller, and the suspension if any (when, by whom,
//! why: `domain::suspension`). No openid, birth date or residence.

use serde_json::{json, Value};

use super::listings;
use super::members;
use super::orders::{list as orders_list, Role};
use super::verification::Verification;
use crate::error::Error;
use crate::http::DEFAULT_PAGE_LIMIT;
use crate::ids::UserId;
use crate::store::{keys, DynStore, Records};

/// The member look-up; 404 for a member who does not exist.
pub async fn member(store: &DynStore, id: &UserId) -> Result<Value, Error> {
    let member = members::get(store, id)
        .await?
        .ok_or(Error::NotFound("member"))?;
    let verification: Option<Verification> = store.get_record(&keys::verification(id)).await?;
    let (listings, more_listings) =
        listings::for_staff(store, id, DEFAULT_PAGE_LIMIT, None).await?;
    let (bought, more_bought) =
        orders_list::list(store, id, Role::Buyer, None, DEFAULT_PAGE_LIMIT, None).await?;
    let (sold, more_sold) =
        orders_list::list(store, id, Role::Seller, None, DEFAULT_PAGE_LIMIT, None).await?;
    // The nickname and avatar even while suspended (the public view hides them then).
    let mut profile = member.profile_view();
    profile["created_at"] = json!(member.created_at);
    Ok(json!({
        "profile": profile,
        "suspension": member.suspension,
        "verification": verification.map(|v| v.view()),
        "listings": {"items": listings, "more": more_listings.is_some()},
        "orders_as_buyer": {"items": bought, "more": more_bought.is_some()},
        "orders_as_seller": {"items": sold, "more": more_sold.is_some()},
    }))
}
