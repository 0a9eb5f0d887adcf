//! What a party sees of an order: [`Order::view`] and the other party's public profile (`seller`
//! for the buyer, `buyer` for the seller: id, nickname and avatar only — nothing private, privacy
//! policy §二(一)2). A list reads the profiles of its page in one batch.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Order, Role};
use crate::domain::members::Member;
use crate::error::Error;
use crate::ids::UserId;
use crate::store::{keys, DynStore, Key, Records};

/// The other party of `role`.
pub fn other(order: &Order, role: Role) -> (&'static str, &UserId) {
    match role {
        Role::Buyer => ("seller", &order.seller_id),
        Role::Seller => ("buyer", &order.buyer_id),
    }
}

/// A member's public card: id, nickname, avatar. A member who is gone shows as the id alone.
pub fn card(id: &UserId, member: Option<&Member>) -> Value {
    json!({
        "id": id,
        "nickname": member.map(|m| json!(m.nickname)),
        "avatar_url": member.map(|m| json!(m.public_avatar())),
    })
}

/// A member's card where others may see it outside an order (a review's author, a blocked list):
/// a suspended member's shows the id alone, as their profile shows neither nickname nor avatar.
/// (An order's parties keep seeing each other's card: the order goes on.)
pub fn public_card(id: &UserId, member: Option<&Member>) -> Value {
    card(id, member.filter(|m| m.suspension.is_none()))
}

/// The order as `role` sees it, with the other party's card.
pub fn with_card(order: &Order, role: Role, member: Option<&Member>) -> Value {
    let mut view = order.view();
    let (name, id) = other(order, role);
    view[name] = card(id, member);
    view
}

/// One order as `role` sees it (one read of the other party's profile).
pub async fn view(store: &DynStore, order: &Order, role: Role) -> Result<Value, Error> {
    let (_, id) = other(order, role);
    let member: Option<Member> = store.get_record(&keys::member(id)).await?;
    Ok(with_card(order, role, member.as_ref()))
}

/// Orders as `role` sees them, the other parties' profiles read in one batch.
pub async fn views(store: &DynStore, orders: &[Order], role: Role) -> Result<Vec<Value>, Error> {
    let ids: Vec<&UserId> = orders.iter().map(|o| other(o, role).1).collect();
    let mut unique: Vec<&UserId> = ids.clone();
    unique.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    unique.dedup();
    let member_keys: Vec<Key> = unique.iter().map(|id| keys::member(id)).collect();
    let found: Vec<Option<Member>> = store.get_records(&member_keys).await?;
    let members: BTreeMap<&str, Member> = unique
        .iter()
        .zip(found)
        .filter_map(|(id, m)| m.map(|m| (id.as_str(), m)))
        .collect();
    Ok(orders
        .iter()
        .map(|order| {
            let (_, id) = other(order, role);
            with_card(order, role, members.get(id.as_str()))
        })
        .collect())
}
