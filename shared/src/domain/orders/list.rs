//! `GET /v1/orders?role=&status=` ("我买订单" and the seller's orders) and `GET /v1/orders/{id}`.
//! A list is one query of the member's entries (`ORDERS#<member>#<role>[#<status>]`, newest first:
//! order ids sort by time) and one batch read of the orders, and one of the other parties'
//! profiles — never a scan, never a filter over more than the page.

use serde_json::Value;

use super::view;
use super::{for_party, Order, OrderEntry, OrderStatus, Role};
use crate::error::Error;
use crate::ids::{OrderId, UserId};
use crate::store::{keys, DynStore, Key, PageCursor, Query, Record, Records};

/// `?role=`: `buyer` (the default) or `seller`; anything else is 422 naming `role`.
pub fn role(text: Option<&str>) -> Result<Role, Error> {
    match text {
        None | Some("buyer") => Ok(Role::Buyer),
        Some("seller") => Ok(Role::Seller),
        Some(other) => Err(Error::invalid(
            "role",
            format!("must be buyer or seller, not {other:?}"),
        )),
    }
}

/// `?status=`: one of the order states; anything else is 422 naming `status`.
pub fn status(text: Option<&str>) -> Result<Option<OrderStatus>, Error> {
    text.map(|text| {
        OrderStatus::parse(text).ok_or_else(|| {
            let names: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
            Error::invalid(
                "status",
                format!("must be one of {}, not {text:?}", names.join(", ")),
            )
        })
    })
    .transpose()
}

/// One page of `member`'s orders as `role`, newest first, in `status` when given.
pub async fn list(
    store: &DynStore,
    member: &UserId,
    role: Role,
    status: Option<OrderStatus>,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let query = Query::partition(keys::orders_of(
        member,
        role.as_str(),
        status.map(OrderStatus::as_str),
    ))
    .descending()
    .limit(limit);
    let cursor = crate::domain::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let order_keys = page
        .items
        .into_iter()
        .map(|entry| OrderEntry::from_item(entry).map(|e| keys::order(&e.order_id)))
        .collect::<Result<Vec<Key>, _>>()?;
    let found: Vec<Option<Order>> = store.get_records(&order_keys).await?;
    let orders: Vec<Order> = found
        .into_iter()
        .flatten()
        // The entries move with the order in one transaction, but a query may read before a
        // batch read sees a later transition: the order itself decides.
        .filter(|o| o.role_of(member) == Some(role))
        .filter(|o| status.is_none_or(|s| s == o.status))
        .collect();
    let items = view::views(store, &orders, role).await?;
    Ok((items, page.next.map(PageCursor::from)))
}

/// `GET /v1/orders/{id}`: the order as its buyer or seller sees it; 404 for anyone else.
pub async fn read(store: &DynStore, id: &OrderId, member: &UserId) -> Result<Value, Error> {
    let (order, role) = for_party(store, id, member).await?;
    view::view(store, &order, role).await
}
