//! Favourites ("我的-收藏"): one record per member and listing, and the listing's count, always
//! changed in the same transaction, so the count equals the records and never goes negative.
//!
//! Store layout: `FAVS#<member> / <listing id>` ([`keys::favourite`]), ordered for the list by
//! `gsi1pk = FAVS#<member>`, `gsi1sk` = a time-ordered ULID ([`keys::favourite_listed`]).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::listings;
use super::members::now_rfc3339;
use crate::error::Error;
use crate::ids::{ListingId, UserId};
use crate::store::schema::GSI1;
use crate::store::{keys, Condition, DynStore, PageCursor, Query, Record, StoreError, Write};

/// A member's favourite listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Favourite {
    pub listing_id: ListingId,
    pub created_at: String,
}

impl Record for Favourite {
    const KIND: &'static str = "favourite";
}

impl listings::NamesListing for Favourite {
    fn listing_id(&self) -> &ListingId {
        &self.listing_id
    }
}

/// `PUT /v1/me/favorites/{listing_id}`: idempotent; only a published listing can be favourited.
pub async fn add(store: &DynStore, member: &UserId, listing: &ListingId) -> Result<(), Error> {
    let record = Favourite {
        listing_id: listing.clone(),
        created_at: now_rfc3339(),
    };
    let item = record.to_item(
        keys::favourite(member, listing),
        Some(keys::favourite_listed(member, &crate::ids::time_order())),
    )?;
    let result = store
        .transact(vec![
            Write::put_if(item, Condition::Absent, "not_favorited"),
            Write::update(keys::listing(listing))
                .add("favorites_count", 1)
                // Published, its text not held for staff (`domain::moderation`): as listed.
                .condition(
                    Condition::All(vec![
                        Condition::Equals("status".into(), json!("published")),
                        Condition::Lacks("text_review".into()),
                    ]),
                    "listing_published",
                )
                .build(),
        ])
        .await;
    match result {
        Ok(())
        | Err(StoreError::ConditionFailed {
            label: "not_favorited",
        }) => Ok(()),
        Err(StoreError::ConditionFailed {
            label: "listing_published",
        }) => Err(unavailable(store, listing).await),
        Err(e) => Err(e.into()),
    }
}

/// Why a listing cannot be favourited or shared: unknown or private (404), or not published.
pub async fn unavailable(store: &DynStore, listing: &ListingId) -> Error {
    match listings::get(store, listing).await {
        Ok(Some(l)) if l.view_for(None).is_some() => Error::Conflict {
            code: "listing_unavailable",
            message: "the listing is not published".into(),
        },
        Ok(_) => Error::NotFound("listing"),
        Err(e) => e,
    }
}

/// `DELETE /v1/me/favorites/{listing_id}`: idempotent; works on removed listings too.
pub async fn remove(store: &DynStore, member: &UserId, listing: &ListingId) -> Result<(), Error> {
    let result = store
        .transact(vec![
            Write::delete_if(
                keys::favourite(member, listing),
                Condition::Present,
                "favorited",
            ),
            Write::update(keys::listing(listing))
                .add("favorites_count", -1)
                .condition(
                    Condition::AtLeast("favorites_count".into(), 1),
                    "favorites_count",
                )
                .build(),
        ])
        .await;
    match result {
        Ok(()) | Err(StoreError::ConditionFailed { label: "favorited" }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/me/favorites`: newest first, with listing summaries.
pub async fn list(
    store: &DynStore,
    member: &UserId,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let query = Query::partition(keys::favourites(member))
        .index(GSI1)
        .descending()
        .limit(limit);
    let (page, next) = listings::page_with_listings(store, query, cursor).await?;
    let items = page
        .into_iter()
        .map(|(favourite, listing): (Favourite, _)| {
            json!({ "listing": listing, "favorited_at": favourite.created_at })
        })
        .collect();
    Ok((items, next))
}
