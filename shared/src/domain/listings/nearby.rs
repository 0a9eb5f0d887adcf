//! `GET /v1/listings?near=lat,lng&radius_km=`: exactly the published listings within the radius
//! (that pass the other filters), nearest first, ties by id, across pages — with every page's work
//! bounded by [`BUDGET`], whatever the point, the radius and the density.
//!
//! A best-first search over the geohash trie of the geo index (`GEO#<geohash 3>` /
//! `<geohash 9>#<id>` of each listing's coarse point, see `index`):
//! - a priority queue holds cells still to read, keyed by their shortest distance to the point,
//!   and listings read but not yet returned ("hits"), keyed by their distance and id;
//! - the nearest item comes off first: a hit is then certain (no unread cell can hold anything
//!   nearer) and is returned; a cell is read with one sort-key prefix query of at most
//!   `per_query` entries. When a cell holds more, what was read is kept and the rest of the cell
//!   is split into its children (32 sub-cells, each keyed by its own distance) after the last
//!   entry read; a single point with more entries (one coarse point: all at one distance, in id
//!   order) is continued after the last id;
//! - the search stops when the page is full, when the nearest item is beyond the radius (the
//!   end), or when the page's budget of queries or items is spent: the page then holds what is
//!   certain and the cursor carries the search on.
//!
//! The cursor is the search's state: the last result returned and the cells still to read (cells
//! whose distance is recomputed, ranges already read whose hits were not yet returned, each with
//! the key of its nearest such hit). Every page either returns a result or reads a cell it has
//! never read, so paging always reaches the end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::index::{entry_location, entry_summary};
use crate::error::Error;
use crate::geo::{self, Cell, Location, BASE32, PARTITION_PRECISION, POINT_PRECISION};
use crate::store::schema::TABLE;
use crate::store::{keys, Cursor, DynStore, Item, PageCursor, Query, SortKey, PK, SK};

/// The most one page may ask of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Queries per page.
    pub queries: usize,
    /// Entries read per page, in all.
    pub items: usize,
    /// Entries one query reads at most.
    pub per_query: usize,
    /// The longest cursor (before sealing); a larger frontier is merged into fewer ranges.
    pub cursor_bytes: usize,
}

/// Per page: at most 10 queries of at most 50 entries (an entry is a summary of about 0.5 KB, so a
/// page reads at most about 250 KB, some 32 eventually consistent read units). Smaller reads split
/// dense cells sooner, so a page re-reads less of what earlier pages read (see the benchmark).
pub const BUDGET: Budget = Budget {
    queries: 10,
    items: 500,
    per_query: 50,
    cursor_bytes: MAX_CURSOR_BYTES,
};

/// The longest nearby cursor, in bytes: sealed, about 5.5 KB of the request's query string
/// (API Gateway allows 10 KB of request line and headers).
pub const MAX_CURSOR_BYTES: usize = 4096;

/// The most cells a cursor may carry (a page adds at most 32 per query).
const MAX_CURSOR_NODES: usize = 4096;

/// The order of the search: distance in whole millimetres, then rank (0: a cell, before
/// anything at its distance; 1: a hit or a point continued, by id), then id, then tail (a point
/// continued after id `x` comes after the hit `x`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Order {
    mm: i64,
    rank: u8,
    id: String,
    tail: u8,
}

impl Order {
    fn cell(mm: i64) -> Self {
        Order {
            mm,
            ..Order::default()
        }
    }

    fn hit(mm: i64, id: &str) -> Self {
        Order {
            mm,
            rank: 1,
            id: id.to_owned(),
            tail: 0,
        }
    }
}

/// A part of the geo index still to read: the entries of `hash` after `after` up to `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    hash: String,
    after: Option<String>,
    until: Option<String>,
    /// A lower bound of every entry's order, beyond the cell's geometry (ranges put back, points
    /// continued).
    floor: Option<Order>,
}

struct Hit {
    order: Order,
    summary: Value,
    /// The read it came from (put back in the cursor while it is not returned).
    read: usize,
}

enum Slot {
    Node(Node),
    Hit(Hit),
}

/// What the cursor carries between pages.
#[derive(Debug, Default, PartialEq)]
struct State {
    /// The last result returned: later pages return only what comes after it.
    last: Option<Order>,
    nodes: Vec<Node>,
}

/// One nearby query.
pub struct Near<'a> {
    pub center: Location,
    pub radius_m: f64,
    /// The other filters, applied to each entry.
    pub admit: &'a (dyn Fn(&Item) -> bool + Sync),
    /// The query's parameters, so a cursor is used only with the query that made it.
    pub binding: String,
}

/// What one page did, for tests and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub queries: usize,
    pub items: usize,
}

/// Millimetres of a distance: the unit of the order, and of `distance_m` after rounding.
fn mm(distance_m: f64) -> i64 {
    (distance_m * 1000.0).round() as i64
}

struct Search<'a> {
    near: &'a Near<'a>,
    radius_mm: i64,
    heap: BinaryHeap<Reverse<(Order, usize)>>,
    slots: Vec<Option<Slot>>,
    reads: Vec<Node>,
}

impl Search<'_> {
    /// Queues a node keyed by the larger of its geometry and its floor; one wholly beyond the
    /// radius is dropped.
    fn push_node(&mut self, node: Node) {
        let Some(cell) = Cell::of(&node.hash) else {
            return;
        };
        let geometric =
            Order::cell((cell.min_distance_m(&self.near.center) * 1000.0).floor() as i64);
        let order = match &node.floor {
            Some(floor) if *floor > geometric => floor.clone(),
            _ => geometric,
        };
        if order.mm > self.radius_mm {
            return;
        }
        self.slots.push(Some(Slot::Node(node)));
        self.heap.push(Reverse((order, self.slots.len() - 1)));
    }

    fn push_hit(&mut self, hit: Hit) {
        let order = hit.order.clone();
        self.slots.push(Some(Slot::Hit(hit)));
        self.heap.push(Reverse((order, self.slots.len() - 1)));
    }

    /// Reads one node with one query and queues what it found.
    async fn read(
        &mut self,
        store: &DynStore,
        node: Node,
        limit: usize,
        last: Option<&Order>,
    ) -> Result<usize, Error> {
        let partition = keys::geo(&node.hash);
        let sort = match &node.until {
            Some(until) => SortKey::Between(node.hash.clone(), until.clone()),
            None => SortKey::Prefix(node.hash.clone()),
        };
        let mut query = Query::partition(partition.clone()).sort(sort).limit(limit);
        if let Some(after) = &node.after {
            let mut at = Item::new();
            at.insert(PK.into(), partition.into());
            at.insert(SK.into(), after.clone().into());
            let cursor = Cursor::after_item(&at, &query, &TABLE);
            query = query.after(cursor);
        }
        let page = store.query(query).await?;
        let read = self.reads.len();
        let last_sk = page
            .items
            .last()
            .and_then(|e| e.get(SK))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let truncated = page.next.is_some() && last_sk.is_some();
        self.reads.push(Node {
            until: if truncated {
                last_sk.clone()
            } else {
                node.until.clone()
            },
            ..node.clone()
        });
        let mut last_point: Option<Order> = None;
        for entry in &page.items {
            let (Some(point), Some(id)) = (
                entry_location(entry),
                entry.get("id").and_then(Value::as_str),
            ) else {
                continue;
            };
            let distance = self.near.center.distance_m(&point);
            let order = Order::hit(mm(distance), id);
            last_point = Some(order.clone());
            let after_last = last.is_none_or(|l| order > *l);
            if distance <= self.near.radius_m && after_last && (self.near.admit)(entry) {
                let mut summary = entry_summary(entry)?;
                summary["distance_m"] = json!((order.mm + 500) / 1000);
                self.push_hit(Hit {
                    order,
                    summary,
                    read,
                });
            }
        }
        let count = page.items.len();
        let (true, Some(last_sk)) = (truncated, last_sk) else {
            return Ok(count);
        };
        let child_at = last_sk
            .as_bytes()
            .get(node.hash.len())
            .and_then(|b| BASE32.iter().position(|c| c == b));
        match (&node.until, child_at) {
            // A range read before: the rest of it, in order.
            (Some(_), _) => self.push_node(Node {
                after: Some(last_sk),
                ..node
            }),
            // A cell: the child holding the last entry read, after it, then the later children.
            (None, Some(j)) if node.hash.len() < POINT_PRECISION => {
                for (k, child) in geo::children(&node.hash).enumerate().skip(j) {
                    let after = (k == j).then(|| last_sk.clone());
                    self.push_node(Node {
                        hash: child,
                        after,
                        until: None,
                        floor: None,
                    });
                }
            }
            // A cell whose last key is not a geohash (never written so): the rest of it.
            (None, _) if node.hash.len() < POINT_PRECISION => self.push_node(Node {
                after: Some(last_sk),
                ..node
            }),
            // One point: the rest after the last id, all at its distance.
            _ => self.push_node(Node {
                after: Some(last_sk),
                floor: last_point.map(|o| Order { tail: 1, ..o }),
                ..node
            }),
        }
        Ok(count)
    }
}

/// One page of a nearby query: the results and the cursor of the next page, with what the
/// page asked of the store.
pub async fn page(
    store: &DynStore,
    near: &Near<'_>,
    limit: usize,
    cursor: Option<&PageCursor>,
    budget: Budget,
) -> Result<(Vec<Value>, Option<PageCursor>, Work), Error> {
    let state = match cursor {
        None => State {
            last: None,
            nodes: geo::start_cells(&near.center, near.radius_m)
                .into_iter()
                .map(|hash| Node {
                    hash,
                    after: None,
                    until: None,
                    floor: None,
                })
                .collect(),
        },
        Some(cursor) => decode_cursor(cursor, &near.binding)
            .ok_or_else(|| Error::invalid("cursor", "is not a cursor of this list"))?,
    };
    let mut search = Search {
        near,
        // Hits are kept by their exact distance; this only drops what is surely beyond.
        radius_mm: (near.radius_m * 1000.0).ceil() as i64 + 1,
        heap: BinaryHeap::new(),
        slots: Vec::new(),
        reads: Vec::new(),
    };
    for node in state.nodes {
        search.push_node(node);
    }
    let mut last = state.last;
    let mut out = Vec::new();
    let mut work = Work::default();
    let more = loop {
        let Some(Reverse((order, slot))) = search.heap.peek().cloned() else {
            break false;
        };
        if order.mm > search.radius_mm {
            break false;
        }
        if out.len() >= limit {
            break true;
        }
        let is_node = matches!(search.slots[slot], Some(Slot::Node(_)));
        if is_node && (work.queries >= budget.queries || work.items >= budget.items) {
            break true;
        }
        search.heap.pop();
        match search.slots[slot].take() {
            Some(Slot::Hit(hit)) => {
                out.push(hit.summary);
                last = Some(hit.order);
            }
            Some(Slot::Node(node)) => {
                let room = budget.per_query.min(budget.items - work.items).max(1);
                work.queries += 1;
                work.items += search.read(store, node, room, last.as_ref()).await?;
            }
            None => {}
        }
    };
    if !more {
        return Ok((out, None, work));
    }
    // The cursor: cells not read yet, and each read whose hits are not all returned yet (put
    // back as the range it was, keyed by its nearest hit left).
    let mut put_back: Vec<Option<Order>> = vec![None; search.reads.len()];
    let mut nodes = Vec::new();
    for Reverse((order, slot)) in search.heap.into_vec() {
        match search.slots[slot].take() {
            Some(Slot::Node(node)) => nodes.push(node),
            Some(Slot::Hit(hit)) => {
                let floor = &mut put_back[hit.read];
                if floor.as_ref().is_none_or(|f| order < *f) {
                    *floor = Some(order);
                }
            }
            None => {}
        }
    }
    for (read, floor) in search.reads.into_iter().zip(put_back) {
        if let Some(floor) = floor {
            nodes.push(Node {
                floor: Some(floor),
                ..read
            });
        }
    }
    let mut state = State { last, nodes };
    let mut cursor = encode_cursor(&state, &near.binding);
    // The nodes the next page reads first are kept as they are while anything else can merge, so
    // that page still makes progress.
    let mut protect = budget.queries + 1;
    while cursor.as_bytes().len() > budget.cursor_bytes {
        let before = state.nodes.len();
        state.nodes = compact(std::mem::take(&mut state.nodes), &near.center, protect);
        if state.nodes.len() == before {
            if protect == 0 {
                break;
            }
            protect = 0;
        }
        cursor = encode_cursor(&state, &near.binding);
    }
    Ok((out, Some(cursor), work))
}

/// Where a node's entries start and end in sort-key order: (after, until) bounds, `None` at the
/// ends of its cell. `~` sorts after every character of a sort key, so `cell~` ends a cell.
fn bounds(node: &Node) -> (String, String) {
    (
        node.after.clone().unwrap_or_else(|| node.hash.clone()),
        node.until
            .clone()
            .unwrap_or_else(|| format!("{}~", node.hash)),
    )
}

/// Shrinks a frontier too large for a cursor: pairs of neighbouring nodes (in sort-key order, in
/// one partition) become one range over both, keyed by the nearer; the farthest pairs first (up to
/// half of them a round), never the `protect` nearest nodes. The nodes of a
/// frontier never overlap, so a range over two neighbours holds only what they hold and what is
/// already done (filtered out again by the last result when read): exact, at the cost of
/// re-reading.
fn compact(mut nodes: Vec<Node>, center: &Location, protect: usize) -> Vec<Node> {
    let order = |n: &Node| {
        let geometric = Cell::of(&n.hash)
            .map(|c| Order::cell((c.min_distance_m(center) * 1000.0).floor() as i64))
            .unwrap_or_default();
        n.floor
            .clone()
            .filter(|f| *f > geometric)
            .unwrap_or(geometric)
    };
    nodes.sort_by_key(|n| (keys::geo(&n.hash), bounds(n).0));
    let orders: Vec<Order> = nodes.iter().map(order).collect();
    let mut nearest: Vec<&Order> = orders.iter().collect();
    nearest.sort();
    let kept = nearest
        .get(protect.min(nearest.len()))
        .map(|o| (*o).clone());
    let free = |i: usize| kept.as_ref().is_some_and(|k| orders[i] >= *k);
    let mut pairs: Vec<usize> = (0..nodes.len().saturating_sub(1))
        .filter(|&i| keys::geo(&nodes[i].hash) == keys::geo(&nodes[i + 1].hash))
        .filter(|&i| free(i) && free(i + 1))
        .collect();
    pairs.sort_by(|&a, &b| {
        orders[b + 1]
            .cmp(&orders[a + 1])
            .then(orders[b].cmp(&orders[a]))
    });
    let mut merge_with_next = vec![false; nodes.len()];
    let mut used = vec![false; nodes.len()];
    let mut merged = 0;
    let wanted = pairs.len().div_ceil(2);
    for i in pairs {
        if merged == wanted {
            break;
        }
        if !used[i] && !used[i + 1] {
            used[i] = true;
            used[i + 1] = true;
            merge_with_next[i] = true;
            merged += 1;
        }
    }
    let mut out = Vec::with_capacity(nodes.len() - merged);
    let mut iter = nodes.into_iter().zip(orders).enumerate();
    while let Some((i, (a, order_a))) = iter.next() {
        if !merge_with_next[i] {
            out.push(a);
            continue;
        }
        let Some((_, (b, order_b))) = iter.next() else {
            out.push(a);
            break;
        };
        let hash: String = a
            .hash
            .bytes()
            .zip(b.hash.bytes())
            .take_while(|(x, y)| x == y)
            .map(|(x, _)| char::from(x))
            .collect();
        let (lo, hi) = (bounds(&a).0, bounds(&b).1);
        out.push(Node {
            after: (lo != hash).then_some(lo),
            until: (hi != format!("{hash}~")).then_some(hi),
            floor: Some(order_a.min(order_b)),
            hash,
        });
    }
    out
}

/// The cursor's text: `{"b": binding, "l": last, "n": nodes}`, nodes sorted and written as
/// `<length shared with the previous hash><rest of the hash>`, then, for ranges and points,
/// `|floor|after|until` (after and until without the hash they start with). Opaque to clients.
fn cursor_text(state: &State, binding: &str) -> String {
    let mut nodes: Vec<&Node> = state.nodes.iter().collect();
    nodes.sort_by(|a, b| (&a.hash, &a.after).cmp(&(&b.hash, &b.after)));
    let mut previous = "";
    let mut parts = Vec::with_capacity(nodes.len());
    for node in nodes {
        let shared = node
            .hash
            .bytes()
            .zip(previous.bytes())
            .take_while(|(a, b)| a == b)
            .count()
            .min(9);
        let mut part = format!("{shared}{}", &node.hash[shared..]);
        if node.after.is_some() || node.until.is_some() || node.floor.is_some() {
            let rest = |sk: &Option<String>| {
                sk.as_deref()
                    .map(|s| s.get(node.hash.len()..).unwrap_or_default())
                    .unwrap_or_default()
                    .to_owned()
            };
            let floor = node
                .floor
                .as_ref()
                .map(|f| format!("{}.{}.{}.{}", f.mm, f.rank, f.id, f.tail))
                .unwrap_or_default();
            part.push_str(&format!(
                "|{floor}|{}|{}",
                rest(&node.after),
                rest(&node.until)
            ));
        }
        parts.push(part);
        previous = &node.hash;
    }
    json!({ "b": binding, "l": state.last, "n": parts.join(",") }).to_string()
}

/// Reads [`cursor_text`]; `None` for anything it could not have written for this query.
fn parse_cursor_text(text: &str, binding: &str) -> Option<State> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        b: String,
        l: Option<Order>,
        n: String,
    }
    let raw: Raw = serde_json::from_str(text).ok()?;
    // A cursor is only given while something is left to read, so its frontier is never empty.
    if raw.b != binding || raw.n.is_empty() {
        return None;
    }
    let sane = |o: &Order| o.mm >= 0 && o.rank <= 1 && o.tail <= 1 && o.id.len() <= 64;
    if raw.l.as_ref().is_some_and(|l| !sane(l)) {
        return None;
    }
    let mut nodes = Vec::new();
    let mut previous = String::new();
    for part in raw.n.split(',').filter(|p| !p.is_empty()) {
        if nodes.len() == MAX_CURSOR_NODES {
            return None;
        }
        let mut fields = part.split('|');
        let head = fields.next()?;
        let shared = head.get(..1)?.parse::<usize>().ok()?;
        let hash = format!("{}{}", previous.get(..shared)?, head.get(1..)?);
        if !geo::is_geohash(&hash) || hash.len() < PARTITION_PRECISION {
            return None;
        }
        let mut node = Node {
            hash: hash.clone(),
            after: None,
            until: None,
            floor: None,
        };
        if let (Some(floor), Some(after), Some(until), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        {
            if !floor.is_empty() {
                let f: Vec<&str> = floor.splitn(4, '.').collect();
                let [mm, rank, id, tail] = f[..] else {
                    return None;
                };
                let order = Order {
                    mm: mm.parse().ok()?,
                    rank: rank.parse().ok()?,
                    id: id.to_owned(),
                    tail: tail.parse().ok()?,
                };
                node.floor = Some(order).filter(sane);
                node.floor.as_ref()?;
            }
            let sk = |rest: &str| (!rest.is_empty()).then(|| format!("{hash}{rest}"));
            node.after = sk(after);
            node.until = sk(until);
        } else if fields.next().is_some() || part.contains('|') {
            return None;
        }
        previous = hash;
        nodes.push(node);
    }
    Some(State { last: raw.l, nodes })
}

/// The page cursor's bytes (the request edge seals them for the client).
fn encode_cursor(state: &State, binding: &str) -> PageCursor {
    PageCursor::new(cursor_text(state, binding).into_bytes())
}

/// A client's (unsealed) cursor, or `None` when it is not one of this query's.
fn decode_cursor(cursor: &PageCursor, binding: &str) -> Option<State> {
    if cursor.as_bytes().len() > 16 * 1024 {
        return None;
    }
    parse_cursor_text(std::str::from_utf8(cursor.as_bytes()).ok()?, binding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_text_round_trips() {
        let state = State {
            last: Some(Order::hit(1234, "01ABC")),
            nodes: vec![
                Node {
                    hash: "wx4g0".into(),
                    after: None,
                    until: None,
                    floor: None,
                },
                Node {
                    hash: "wx4g1".into(),
                    after: Some("wx4g1bcde#01X".into()),
                    until: Some("wx4g1zzzz#01Y".into()),
                    floor: Some(Order::hit(99, "01Z")),
                },
                Node {
                    hash: "wx4g1bcde".into(),
                    after: Some("wx4g1bcde#01Q".into()),
                    until: None,
                    floor: Some(Order {
                        tail: 1,
                        ..Order::hit(5, "01Q")
                    }),
                },
                Node {
                    hash: "wx5".into(),
                    after: None,
                    until: None,
                    floor: None,
                },
            ],
        };
        let text = cursor_text(&state, "b1");
        assert_eq!(parse_cursor_text(&text, "b1").unwrap(), state);
        assert!(parse_cursor_text(&text, "b2").is_none());
        for bad in [
            r#"{"b":"b1","l":null,"n":"0wa"}"#,
            r#"{"b":"b1","l":null,"n":"0wx4g|x"}"#,
            r#"{"b":"b1","l":null,"n":"9wx4g"}"#,
            r#"{"b":"b1","l":{"mm":-1,"rank":0,"id":"","tail":0},"n":""}"#,
            r#"{"b":"b1","l":null,"n":"0wx4g|1.2.x.0||"}"#,
            "not json",
        ] {
            assert!(parse_cursor_text(bad, "b1").is_none(), "{bad}");
        }
    }
}
