//! Tickets over HTTP against the local server, on both stores: every kind, who sees a ticket,
//! disputes (only from the allowed states, in the order's own transaction, and held from the
//! order jobs), privacy requests' 15 days and the overdue flag, the staff side's domain
//! functions, and bad input on every route writing nothing.

use std::collections::BTreeSet;

use renji_shared::domain::media::MediaStatus;
use renji_shared::domain::orders::{self, jobs, OrderStatus};
use renji_shared::domain::tickets::{self, staff, TicketKind, TicketStatus};
use renji_shared::ids::{OrderId, ReviewId, StaffId, TicketId, UserId};
use renji_shared::store::schema::GSI1;
use renji_shared::store::{keys, Item, Query, Write};
use renji_tests::{on_both_stores, Backend, Market, Member, Reply};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

/// The shared market (`renji_tests::Market`), with this file's steps on it.
struct World(Market);

impl std::ops::Deref for World {
    type Target = Market;

    fn deref(&self) -> &Market {
        &self.0
    }
}

impl World {
    async fn new(backend: Backend) -> Self {
        Self::with(backend, &[]).await
    }

    async fn with(backend: Backend, config: &[(&str, &str)]) -> Self {
        World(Market::start(backend, config).await)
    }

    fn store(&self) -> &renji_shared::store::DynStore {
        &self.server.app().store
    }

    /// An order of the buyer's, walked over HTTP to `status`: `paid`, `accepted` or
    /// `completed`.
    async fn order_in(&self, status: &str) -> String {
        let (buyer, seller) = (&self.buyer, &self.seller);
        match status {
            "completed" => {
                self.server
                    .completed_order(seller, buyer, &self.listing)
                    .await
            }
            _ => {
                let id = self.server.paid_order(buyer, &self.listing).await;
                if status == "accepted" {
                    let path = format!("/v1/orders/{id}/accept");
                    let reply = self.call(seller, "POST", &path, None).await;
                    assert_eq!(reply.body["status"], json!("accepted"), "{reply:?}");
                }
                id
            }
        }
    }

    /// An accepted order whose refund request the seller declined.
    async fn declined_refund(&self) -> String {
        let id = self.order_in("accepted").await;
        let ask = json!({"reason": "没有到场"});
        let reply = self
            .call(
                &self.buyer,
                "POST",
                &format!("/v1/orders/{id}/refund"),
                Some(ask),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let no = json!({"reason": "已经到场"});
        let path = format!("/v1/orders/{id}/refund/decline");
        let reply = self.call(&self.seller, "POST", &path, Some(no)).await;
        assert_eq!(
            (reply.status, &reply.body["status"]),
            (200, &json!("accepted")),
            "{reply:?}"
        );
        id
    }

    async fn call(&self, who: &Member, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.server
            .api
            .call(method, path, Some(&who.token), body)
            .await
    }

    async fn file(&self, who: &Member, body: Value) -> Reply {
        self.call(who, "POST", "/v1/tickets", Some(body)).await
    }

    /// Files `body` as `who`; must answer 201: the ticket.
    async fn filed(&self, who: &Member, body: Value) -> Value {
        let reply = self.file(who, body).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body
    }

    async fn order(&self, id: &str) -> orders::Order {
        orders::get(self.store(), &OrderId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    async fn partition(&self, pk: String) -> Vec<Item> {
        self.store()
            .query(Query::partition(pk))
            .await
            .unwrap()
            .items
    }

    /// Every ticket item a filing writes, and the orders': compared before and after a refusal.
    async fn written(&self, order: Option<&str>) -> Vec<Item> {
        let mut items = Vec::new();
        for who in [&self.buyer, &self.seller, &self.stranger] {
            let member = UserId::parse(&who.id).unwrap();
            items.extend(self.partition(keys::tickets_of(&member)).await);
        }
        for status in ["open", "closed"] {
            items.extend(self.partition(keys::queue(status, None)).await);
        }
        if let Some(order) = order {
            let id = OrderId::parse(order).unwrap();
            items.extend(self.partition(keys::order_partition(&id)).await);
        }
        items
    }
}

fn epoch(text: &Value) -> i64 {
    orders::epoch(text.as_str().unwrap())
}

fn ticket_id(ticket: &Value) -> TicketId {
    TicketId::parse(ticket["id"].as_str().unwrap()).unwrap()
}

fn agent() -> StaffId {
    StaffId::parse("zhang.san").unwrap()
}

async fn every_kind_is_filed_and_seen_only_by_who_may(backend: Backend) {
    let w = World::new(backend).await;
    let order = w.order_in("paid").await;

    // An order ticket: the buyer files it; the seller (the other party) sees and answers it.
    let before = OffsetDateTime::now_utc().unix_timestamp();
    let t = w
        .filed(
            &w.buyer,
            json!({"kind": "order", "subject": " 什么时候能接单 ", "text": "请尽快确认", "order_id": order}),
        )
        .await;
    assert_eq!(t["kind"], json!("order"));
    assert_eq!(t["subject"], json!("什么时候能接单"), "trimmed");
    assert_eq!(t["status"], json!("open"));
    assert_eq!(t["order_id"], json!(order));
    assert_eq!(t["author_id"], json!(w.buyer.id));
    let due = epoch(&t["due_at"]) - epoch(&t["created_at"]);
    assert_eq!(due, 48 * 3600, "RENJI_TICKET_DUE_HOURS' default");
    assert!(epoch(&t["created_at"]) >= before);
    let messages = t["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["text"], json!("请尽快确认"));
    assert_eq!(messages[0]["from"], json!("member"));
    assert_eq!(messages[0]["user_id"], json!(w.buyer.id));
    let id = t["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/tickets/{id}");
    for who in [&w.buyer, &w.seller] {
        let got = w.call(who, "GET", &path, None).await;
        assert_eq!((got.status, &got.body["id"]), (200, &json!(id)), "{got:?}");
        let list = w.call(who, "GET", "/v1/tickets", None).await;
        assert_eq!(list.body["items"][0]["id"], json!(id), "{list:?}");
    }
    // The seller's image, its check not ended: the seller and staff see it, the buyer not yet.
    let image = w.server.upload(&w.seller, "ticket_image", false).await;
    let reply = w
        .call(
            &w.seller,
            "POST",
            &format!("{path}/messages"),
            Some(json!({"text": "今天下午接单", "images": [image]})),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.body["user_id"], json!(w.seller.id));
    assert_eq!(reply.body["images"], json!([image]));
    let pending = json!({ image.as_str(): {"state": "pending"} });
    assert_eq!(reply.body["media_states"], pending);
    let seen = w.call(&w.seller, "GET", &path, None).await;
    assert_eq!(seen.body["messages"][1]["media_states"], pending);
    let staff_seen = staff::staff_view(w.store(), &ticket_id(&t), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(staff_seen["messages"][1]["images"], json!([image]));
    assert_eq!(staff_seen["messages"][1]["media_states"], pending);
    // A third member: nothing, as if it did not exist.
    let got = w.call(&w.stranger, "GET", &path, None).await;
    assert_eq!((got.status, got.error_code()), (404, "not_found"));
    let said = json!({"text": "我也想说"});
    let got = w
        .call(&w.stranger, "POST", &format!("{path}/messages"), Some(said))
        .await;
    assert_eq!((got.status, got.error_code()), (404, "not_found"));
    let list = w.call(&w.stranger, "GET", "/v1/tickets", None).await;
    assert_eq!(list.body["items"], json!([]));
    // Staff answer (through the domain, as the admin function will): the members see "staff".
    staff::staff_message(
        w.store(),
        &ticket_id(&t),
        &agent(),
        "已联系卖家",
        &[],
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let got = w.call(&w.buyer, "GET", &path, None).await;
    let history = got.body["messages"].as_array().unwrap();
    let from: Vec<&Value> = history.iter().map(|m| &m["from"]).collect();
    assert_eq!(from, [&json!("member"), &json!("member"), &json!("staff")]);
    assert_eq!(history[2]["text"], json!("已联系卖家"));
    assert!(!got.body.to_string().contains("zhang.san"), "{got:?}");
    assert_eq!(
        history[1]["images"],
        json!([]),
        "pending: not for the buyer"
    );
    assert!(history[1].get("media_states").is_none());
    // Its check passes: the buyer sees it too.
    renji_tests::end_check(w.server.app(), &image, MediaStatus::Passed, "").await;
    let got = w.call(&w.buyer, "GET", &path, None).await;
    assert_eq!(got.body["messages"][1]["images"], json!([image]));

    // Other kinds may name an order of the caller's (then only the author sees them), or none.
    let other = w
        .filed(
            &w.seller,
            json!({"kind": "other", "subject": "开票", "text": "需要发票", "order_id": order}),
        )
        .await;
    let got = w
        .call(
            &w.buyer,
            "GET",
            &format!("/v1/tickets/{}", other["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(got.status, 404, "an other ticket is its author's alone");
    let reply = w
        .file(
            &w.stranger,
            json!({"kind": "other", "subject": "s", "text": "t", "order_id": order}),
        )
        .await;
    assert_eq!((reply.status, reply.error_code()), (404, "not_found"));
    w.filed(
        &w.stranger,
        json!({"kind": "other", "subject": "建议", "text": "希望增加夜间模式"}),
    )
    .await;

    // Reports: a listing, a member, a review — each must exist.
    let report =
        |k: &str, v: &str| json!({"kind": "report", "subject": "违规", "text": "虚假宣传", k: v});
    let r = w.filed(&w.stranger, report("listing_id", &w.listing)).await;
    assert_eq!(r["listing_id"], json!(w.listing));
    w.filed(&w.stranger, report("user_id", &w.seller.id)).await;
    let review = ReviewId::generate();
    let reply = w
        .file(&w.stranger, report("review_id", review.as_str()))
        .await;
    assert_eq!(
        (reply.status, reply.body["error"]["message"].as_str()),
        (404, Some("review not found"))
    );
    let mut item = Item::new();
    let key = keys::review(&review);
    item.insert("pk".into(), json!(key.pk));
    item.insert("sk".into(), json!(key.sk));
    w.store().write(Write::put(item)).await.unwrap();
    w.filed(&w.stranger, report("review_id", review.as_str()))
        .await;
    for (k, v, what) in [
        (
            "listing_id",
            "l_0000000000000000000000000z".to_owned(),
            "listing",
        ),
        ("user_id", "u_0000000000000000000000000z".to_owned(), "user"),
    ] {
        let reply = w.file(&w.stranger, report(k, &v)).await;
        assert_eq!(
            (reply.status, reply.body["error"]["message"].as_str()),
            (404, Some(format!("{what} not found").as_str())),
            "{k}"
        );
    }

    // A privacy request: due 15 days after filing, whatever RENJI_TICKET_DUE_HOURS says.
    let p = w
        .filed(
            &w.buyer,
            json!({"kind": "privacy", "subject": "删除我的数据", "text": "请删除我的账号数据"}),
        )
        .await;
    assert_eq!(epoch(&p["due_at"]) - epoch(&p["created_at"]), 15 * 86400);
    let list = w.call(&w.buyer, "GET", "/v1/tickets?limit=1", None).await;
    assert_eq!(list.body["items"][0]["id"], p["id"], "newest first");
    let next = list.body["next_cursor"].as_str().unwrap();
    let list = w
        .call(
            &w.buyer,
            "GET",
            &format!("/v1/tickets?limit=1&cursor={next}"),
            None,
        )
        .await;
    assert_eq!(list.body["items"][0]["id"], json!(id));
    assert_eq!(list.body["next_cursor"], Value::Null);
    // The stranger's: two others, three reports.
    let list = w.call(&w.stranger, "GET", "/v1/tickets", None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 4);
}

async fn disputes_move_the_order_only_from_the_allowed_states(backend: Backend) {
    let w = World::with(backend, &[("RENJI_DISPUTE_DAYS", "3")]).await;
    let dispute = |order: &str| json!({"kind": "dispute", "subject": "未到场", "text": "摄影师没有来", "order_id": order});

    // Paid, or accepted with no refund asked: not disputable, and nothing is written.
    for status in ["paid", "accepted"] {
        let order = w.order_in(status).await;
        let before = w.written(Some(&order)).await;
        let reply = w.file(&w.buyer, dispute(&order)).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (409, "not_disputable"),
            "{status}"
        );
        assert!(reply.body["error"]["message"].as_str().unwrap().len() > 10);
        assert_eq!(w.written(Some(&order)).await, before, "{status}");
        let reply = w.file(&w.stranger, dispute(&order)).await;
        assert_eq!(reply.status, 404, "{status}");
    }

    // Accepted with its refund declined: the buyer disputes it; the seller sees the ticket.
    let order = w.declined_refund().await;
    let t = w.filed(&w.buyer, dispute(&order)).await;
    let stored = w.order(&order).await;
    assert_eq!(stored.status, OrderStatus::Disputed);
    assert_eq!(stored.before_dispute, Some(OrderStatus::Accepted));
    assert_eq!(stored.dispute_ticket, Some(ticket_id(&t)));
    assert_eq!(stored.due_at, None, "a disputed order has no due job");
    let got = w
        .call(&w.seller, "GET", &format!("/v1/orders/{order}"), None)
        .await;
    assert_eq!(got.body["status"], json!("disputed"));
    let got = w
        .call(
            &w.seller,
            "GET",
            &format!("/v1/tickets/{}", t["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(got.status, 200, "{got:?}");
    // Disputed already: refused, nothing written.
    let before = w.written(Some(&order)).await;
    let reply = w.file(&w.seller, dispute(&order)).await;
    assert_eq!((reply.status, reply.error_code()), (409, "not_disputable"));
    assert_eq!(w.written(Some(&order)).await, before);
    // Staff release it (their decision, through the machine): back to accepted, and not
    // disputed again.
    let disputed = w.order(&order).await;
    let release = orders::Change::new(
        orders::Action::StaffRelease,
        orders::Actor::Staff,
        OffsetDateTime::now_utc(),
    );
    let released = disputed
        .transition(&release, &w.server.app().config.orders)
        .unwrap();
    orders::commit(w.store(), &disputed, &released, vec![])
        .await
        .unwrap();
    assert_eq!(w.order(&order).await.status, OrderStatus::Accepted);
    let before = w.written(Some(&order)).await;
    let reply = w.file(&w.buyer, dispute(&order)).await;
    assert_eq!((reply.status, reply.error_code()), (409, "not_disputable"));
    assert_eq!(w.written(Some(&order)).await, before);

    // Completed: the seller may dispute too, within RENJI_DISPUTE_DAYS of completion.
    let order = w.order_in("completed").await;
    w.filed(&w.seller, dispute(&order)).await;
    let stored = w.order(&order).await;
    assert_eq!(stored.status, OrderStatus::Disputed);
    assert_eq!(stored.before_dispute, Some(OrderStatus::Completed));
    // Completed four days ago: too late.
    let order = w.order_in("completed").await;
    let mut stored = w.order(&order).await;
    let long_ago = OffsetDateTime::now_utc() - Duration::days(4);
    stored.completed_at = Some(orders::rfc3339(long_ago));
    w.store()
        .write(Write::put(stored.item().unwrap()))
        .await
        .unwrap();
    let before = w.written(Some(&order)).await;
    let reply = w.file(&w.buyer, dispute(&order)).await;
    assert_eq!((reply.status, reply.error_code()), (409, "not_disputable"));
    assert_eq!(w.written(Some(&order)).await, before);
}

async fn a_lost_race_disputes_once(backend: Backend) {
    let w = World::new(backend).await;
    let order = w.declined_refund().await;
    let body =
        json!({"kind": "dispute", "subject": "未到场", "text": "摄影师没有来", "order_id": order});
    let (a, b) = tokio::join!(w.file(&w.buyer, body.clone()), w.file(&w.seller, body));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let queue = w.partition(keys::queue("open", Some("dispute"))).await;
    assert_eq!(queue.len(), 1, "one dispute ticket written");
    let stored = w.order(&order).await;
    assert_eq!(
        stored.timeline.last().unwrap().status,
        OrderStatus::Disputed
    );
    assert_eq!(
        stored
            .timeline
            .iter()
            .filter(|s| s.status == OrderStatus::Disputed)
            .count(),
        1
    );
}

/// Both parties writing at once all get through (a message is conditioned on the ticket being
/// open, not on the version read), and the history holds every message once.
async fn messages_written_at_once_all_land(backend: Backend) {
    let w = World::new(backend).await;
    let order = w.order_in("accepted").await;
    let body = json!({"kind": "order", "subject": "时间", "text": "改时间", "order_id": order});
    let ticket = w.filed(&w.buyer, body).await;
    let path = format!("/v1/tickets/{}", ticket["id"].as_str().unwrap());
    let messages = format!("{path}/messages");
    let sends = (0..8).map(|n| {
        let who = if n % 2 == 0 { &w.buyer } else { &w.seller };
        w.call(
            who,
            "POST",
            &messages,
            Some(json!({"text": format!("第{n}条")})),
        )
    });
    for reply in futures_util::future::join_all(sends).await {
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    let read = w.call(&w.buyer, "GET", &path, None).await;
    let texts: BTreeSet<&str> = read.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 9, "{read:?}");
}

/// A close written over a message that landed after the close read the ticket fails (and a
/// close that reads again succeeds): the count of messages stays the history's.
async fn a_close_never_loses_a_message_that_landed_meanwhile(backend: Backend) {
    let w = World::new(backend).await;
    let ticket = w
        .filed(
            &w.buyer,
            json!({"kind": "other", "subject": "问", "text": "一"}),
        )
        .await;
    let id = ticket_id(&ticket);
    let now = OffsetDateTime::now_utc();
    let stale = tickets::get(w.store(), &id).await.unwrap().unwrap();
    let path = format!("/v1/tickets/{id}/messages");
    let reply = w
        .call(&w.buyer, "POST", &path, Some(json!({"text": "二"})))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let writes = staff::closing(&stale, &agent(), "好".into(), now).unwrap();
    assert_eq!(
        w.store().transact(writes).await,
        Err(renji_shared::store::StoreError::ConditionFailed {
            label: tickets::VERSION_LABEL
        })
    );
    staff::close(w.store(), &id, &agent(), "好", now)
        .await
        .unwrap();
    let closed = tickets::get(w.store(), &id).await.unwrap().unwrap();
    assert_eq!((closed.status, closed.messages), (TicketStatus::Closed, 2));
}

async fn the_order_jobs_leave_a_disputed_order_alone(backend: Backend) {
    let w = World::new(backend).await;
    let body = |order: &str| json!({"kind": "dispute", "subject": "未到场", "text": "摄影师没有来", "order_id": order});
    let disputed = w.declined_refund().await;
    w.filed(&w.buyer, body(&disputed)).await;
    // The same kind of order, not disputed: the jobs complete it (so they did run).
    let control = w.order_in("accepted").await;
    let before = w.order(&disputed).await;
    let later = OffsetDateTime::now_utc() + Duration::days(60);
    let report = jobs::run(w.server.app(), later, jobs::Budget::default())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(w.order(&control).await.status, OrderStatus::Completed);
    assert_eq!(w.order(&disputed).await, before, "untouched");
    let due = w
        .store()
        .query(Query::partition(keys::due_partition("complete")).index(GSI1))
        .await
        .unwrap();
    assert!(due.items.is_empty(), "{:?}", due.items);
}

async fn privacy_requests_are_flagged_once_overdue(backend: Backend) {
    let w = World::new(backend).await;
    let body =
        json!({"kind": "privacy", "subject": "查看我的数据", "text": "请告诉我你们保存了哪些数据"});
    let p = w.filed(&w.buyer, body.clone()).await;
    let closed_one = w.filed(&w.seller, body).await;
    let id = ticket_id(&p);
    let created = OffsetDateTime::from_unix_timestamp(epoch(&p["created_at"])).unwrap();
    let listed = || async {
        w.store()
            .query(Query::partition(keys::due_partition("privacy")).index(GSI1))
            .await
            .unwrap()
            .items
            .len()
    };
    assert_eq!(listed().await, 2);
    // Staff close one before it is due: it leaves the job's index.
    staff::close(
        w.store(),
        &ticket_id(&closed_one),
        &agent(),
        "已答复",
        created,
    )
    .await
    .unwrap();
    assert_eq!(listed().await, 1);
    // A day before its 15 days: nothing.
    let day14 = created + Duration::days(14);
    let report = tickets::jobs::flag_overdue(w.store(), day14, 50)
        .await
        .unwrap();
    assert_eq!((report.examined, report.flagged), (0, 0));
    // Past them: flagged once, and out of the index.
    let day15 = created + Duration::days(15) + Duration::seconds(1);
    let report = tickets::jobs::flag_overdue(w.store(), day15, 50)
        .await
        .unwrap();
    assert_eq!((report.examined, report.flagged), (1, 1));
    let ticket = tickets::get(w.store(), &id).await.unwrap().unwrap();
    assert_eq!(ticket.overdue_at, Some(orders::rfc3339(day15)));
    assert_eq!(ticket.status, TicketStatus::Open);
    assert_eq!(listed().await, 0);
    let report = tickets::jobs::flag_overdue(w.store(), day15, 50)
        .await
        .unwrap();
    assert_eq!((report.examined, report.flagged), (0, 0));
    // Staff see it overdue, first in the queue.
    let (items, _) = staff::queue(
        w.store(),
        TicketStatus::Open,
        Some(TicketKind::Privacy),
        None,
        20,
        None,
        day15,
    )
    .await
    .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["overdue"], json!(true));
    assert_eq!(items[0]["overdue_at"], json!(orders::rfc3339(day15)));
    // The scheduled order-jobs run does this too (nothing is due now).
    let job = w.server.running.function_app("OrderJobsFunction").unwrap();
    let report = renji_local::functions::run_job("OrderJobsFunction", job)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        report["privacy_overdue"],
        json!({"examined": 0, "flagged": 0, "more": false})
    );
}

async fn staff_triage_answer_and_close(backend: Backend) {
    let w = World::new(backend).await;
    let order = w.declined_refund().await;
    let now = OffsetDateTime::now_utc();
    let privacy = w
        .filed(
            &w.buyer,
            json!({"kind": "privacy", "subject": "更正", "text": "昵称有误"}),
        )
        .await;
    let dispute = w
        .filed(
            &w.buyer,
            json!({"kind": "dispute", "subject": "未到场", "text": "摄影师没有来", "order_id": order}),
        )
        .await;
    let report = w
        .filed(
            &w.stranger,
            json!({"kind": "report", "subject": "违规", "text": "虚假", "listing_id": w.listing}),
        )
        .await;
    // Earliest due first: the two 48-hour tickets, then the privacy request (15 days).
    let (items, next) = staff::queue(w.store(), TicketStatus::Open, None, None, 20, None, now)
        .await
        .unwrap();
    let ids: Vec<&Value> = items.iter().map(|i| &i["id"]).collect();
    assert_eq!(ids, [&dispute["id"], &report["id"], &privacy["id"]]);
    assert!(next.is_none());
    assert_eq!(items[0]["overdue"], json!(false));
    assert_eq!(items[0]["order_id"], json!(order));
    assert_eq!(items[1]["listing_id"], json!(w.listing));
    // Three days on, the 48-hour ones are overdue; due_before and kind narrow the queue.
    let later = now + Duration::days(3);
    let (items, _) = staff::queue(w.store(), TicketStatus::Open, None, None, 20, None, later)
        .await
        .unwrap();
    let overdue: Vec<&Value> = items.iter().map(|i| &i["overdue"]).collect();
    assert_eq!(overdue, [&json!(true), &json!(true), &json!(false)]);
    let (items, _) = staff::queue(
        w.store(),
        TicketStatus::Open,
        None,
        Some(later.unix_timestamp()),
        20,
        None,
        later,
    )
    .await
    .unwrap();
    assert_eq!(items.len(), 2);
    let (items, _) = staff::queue(
        w.store(),
        TicketStatus::Open,
        Some(TicketKind::Report),
        None,
        1,
        None,
        later,
    )
    .await
    .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], report["id"]);
    // Paged: one at a time, in order.
    let (first, cursor) = staff::queue(w.store(), TicketStatus::Open, None, None, 1, None, now)
        .await
        .unwrap();
    let (second, _) = staff::queue(
        w.store(),
        TicketStatus::Open,
        None,
        None,
        1,
        cursor.as_ref(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        (&first[0]["id"], &second[0]["id"]),
        (&dispute["id"], &report["id"])
    );

    // The dispute as staff see it: the author's card, the order's timeline, staff by id.
    let id = ticket_id(&dispute);
    staff::staff_message(w.store(), &id, &agent(), "请双方提供证据", &[], now)
        .await
        .unwrap();
    let view = staff::staff_view(w.store(), &id, now).await.unwrap();
    assert_eq!(view["author"]["id"], json!(w.buyer.id));
    assert_eq!(
        renji_tests::keys(&view["author"]),
        ["avatar_url", "id", "nickname"]
    );
    assert_eq!(view["order"]["status"], json!("disputed"));
    let timeline = view["order"]["timeline"].as_array().unwrap();
    assert_eq!(timeline.last().unwrap()["status"], json!("disputed"));
    assert_eq!(view["messages"][1]["staff_id"], json!("zhang.san"));
    assert_eq!(view["messages"][1]["from"], json!("staff"));

    // Closing: the ticket and its queue entries move together; once.
    let closed = staff::close(w.store(), &id, &agent(), "已退款", now)
        .await
        .unwrap();
    assert_eq!(closed["status"], json!("closed"));
    assert_eq!(closed["closed_by"], json!("zhang.san"));
    let (open, _) = staff::queue(w.store(), TicketStatus::Open, None, None, 20, None, now)
        .await
        .unwrap();
    assert!(!open.iter().any(|i| i["id"] == dispute["id"]));
    assert_eq!(
        w.partition(keys::queue("open", Some("dispute")))
            .await
            .len(),
        0
    );
    let (closed_queue, _) = staff::queue(
        w.store(),
        TicketStatus::Closed,
        Some(TicketKind::Dispute),
        None,
        20,
        None,
        now,
    )
    .await
    .unwrap();
    assert_eq!(closed_queue[0]["id"], dispute["id"]);
    assert_eq!(closed_queue[0]["overdue"], json!(false));
    let again = staff::close(w.store(), &id, &agent(), "再次", now).await;
    assert!(matches!(
        again,
        Err(renji_shared::Error::Conflict {
            code: "ticket_closed",
            ..
        })
    ));
    let late = staff::staff_message(w.store(), &id, &agent(), "补充", &[], now).await;
    assert!(matches!(
        late,
        Err(renji_shared::Error::Conflict {
            code: "ticket_closed",
            ..
        })
    ));
    let path = format!("/v1/tickets/{}", id);
    let reply = w
        .call(
            &w.seller,
            "POST",
            &format!("{path}/messages"),
            Some(json!({"text": "还有问题"})),
        )
        .await;
    assert_eq!((reply.status, reply.error_code()), (409, "ticket_closed"));
    let got = w.call(&w.buyer, "GET", &path, None).await;
    assert_eq!(
        (&got.body["status"], &got.body["resolution"]),
        (&json!("closed"), &json!("已退款"))
    );
    assert_eq!(
        got.body["messages"].as_array().unwrap().len(),
        2,
        "history kept"
    );
    // Staff's own refusals.
    let missing = TicketId::generate();
    assert!(matches!(
        staff::staff_view(w.store(), &missing, now).await,
        Err(renji_shared::Error::NotFound("ticket"))
    ));
    assert!(matches!(
        staff::close(w.store(), &ticket_id(&report), &agent(), " ", now).await,
        Err(renji_shared::Error::Invalid { field, .. }) if field == "resolution"
    ));
    let too_many: Vec<String> = (0..10)
        .map(|i| format!("https://img.renji.world/{i}.jpg"))
        .collect();
    assert!(matches!(
        staff::staff_message(w.store(), &ticket_id(&report), &agent(), "看图", &too_many, now).await,
        Err(renji_shared::Error::Invalid { field, .. }) if field == "images"
    ));
}

async fn bad_input_is_refused_and_writes_nothing(backend: Backend) {
    let w = World::new(backend).await;
    let order = w.order_in("paid").await;
    let before = w.written(Some(&order)).await;
    let ok = json!({"kind": "other", "subject": "s", "text": "t"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let long = |n: usize| json!("字".repeat(n));
    let cases: Vec<(String, u16, &str)> = vec![
        ("[]".into(), 422, "body"),
        (r#"[{"kind":"other"}]"#.into(), 422, "body"),
        ("{".into(), 400, ""),
        ("".into(), 400, ""),
        ("\"text\"".into(), 422, "body"),
        (with("extra", json!(1)).to_string(), 422, "extra"),
        (with("kind", json!("bug")).to_string(), 422, "kind"),
        (with("kind", json!(1)).to_string(), 422, "kind"),
        (json!({"subject": "s", "text": "t"}).to_string(), 422, "kind"),
        (json!({"kind": "other", "text": "t"}).to_string(), 422, "subject"),
        (with("subject", json!("")).to_string(), 422, "subject"),
        (with("subject", json!("  ")).to_string(), 422, "subject"),
        (with("subject", long(101)).to_string(), 422, "subject"),
        (with("subject", json!(["s"])).to_string(), 422, "subject"),
        (with("text", long(2001)).to_string(), 422, "text"),
        (with("text", json!("a\u{202e}b")).to_string(), 422, "text"),
        (with("text", json!(null)).to_string(), 422, "text"),
        (json!({"kind": "dispute", "subject": "s", "text": "t"}).to_string(), 422, "order_id"),
        (json!({"kind": "order", "subject": "s", "text": "t"}).to_string(), 422, "order_id"),
        (with("order_id", json!("o_1")).to_string(), 422, "order_id"),
        (with("order_id", json!(5)).to_string(), 422, "order_id"),
        (json!({"kind": "report", "subject": "s", "text": "t"}).to_string(), 422, "listing_id"),
        (with("listing_id", json!(w.listing)).to_string(), 422, "listing_id"),
        (
            json!({"kind": "report", "subject": "s", "text": "t", "user_id": "me"}).to_string(),
            422,
            "user_id",
        ),
        (
            json!({"kind": "report", "subject": "s", "text": "t", "user_id": w.buyer.id}).to_string(),
            422,
            "user_id",
        ),
        (
            json!({"kind": "report", "subject": "s", "text": "t", "review_id": "r_x"}).to_string(),
            422,
            "review_id",
        ),
        (
            json!({"kind": "order", "subject": "s", "text": "t", "order_id": "01KB5Q0Z3M8RWJ6PQ4N7T2XY"})
                .to_string(),
            404,
            "",
        ),
    ];
    for (body, status, named) in &cases {
        let body = (!body.is_empty()).then(|| body.clone());
        let reply = w
            .server
            .api
            .raw("POST", "/v1/tickets", Some(&w.buyer.token), body.clone())
            .await;
        assert_eq!(reply.status, *status, "{body:?}: {reply:?}");
        reply.error_code();
        assert_eq!(reply.field(), *named, "{body:?}");
    }
    let reply = w
        .server
        .api
        .raw("POST", "/v1/tickets", None, Some(ok.to_string()))
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(w.written(Some(&order)).await, before, "nothing written");

    // Messages.
    let t = w.filed(&w.buyer, ok.clone()).await;
    let path = format!("/v1/tickets/{}/messages", t["id"].as_str().unwrap());
    let before = w.partition(keys::ticket_partition(&ticket_id(&t))).await;
    let images = |n: usize| {
        json!((0..n)
            .map(|i| format!("https://img.renji.world/{i}.jpg"))
            .collect::<Vec<_>>())
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!([]), 422, "body"),
        (json!({}), 422, "text"),
        (json!({"text": ""}), 422, "text"),
        (json!({"text": long(2001)}), 422, "text"),
        (json!({"text": 1}), 422, "text"),
        (json!({"text": "t", "extra": 1}), 422, "extra"),
        (
            json!({"text": "t", "images": "https://img.renji.world/1.jpg"}),
            422,
            "images",
        ),
        (json!({"text": "t", "images": images(10)}), 422, "images"),
        (
            json!({"text": "t", "images": ["http://img.renji.world/1.jpg"]}),
            422,
            "images[0]",
        ),
        (json!({"text": "t", "images": [1]}), 422, "images[0]"),
    ];
    for (body, status, named) in &cases {
        let reply = w.call(&w.buyer, "POST", &path, Some(body.clone())).await;
        assert_eq!(
            (reply.status, reply.field()),
            (*status, *named),
            "{body}: {reply:?}"
        );
    }
    for bad in [
        "t_x",
        "01KB5Q0Z3M8RWJ6PQ4N7T2XY",
        "t_0000000000000000000000000z",
    ] {
        let reply = w
            .call(
                &w.buyer,
                "POST",
                &format!("/v1/tickets/{bad}/messages"),
                Some(json!({"text": "t"})),
            )
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (404, "not_found"),
            "{bad}"
        );
        let reply = w
            .call(&w.buyer, "GET", &format!("/v1/tickets/{bad}"), None)
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (404, "not_found"),
            "{bad}"
        );
    }
    assert_eq!(
        w.partition(keys::ticket_partition(&ticket_id(&t))).await,
        before,
        "nothing written"
    );
    // Lists.
    for query in ["?limit=0", "?limit=x", "?cursor=abc", "?kind=other"] {
        let reply = w
            .call(&w.buyer, "GET", &format!("/v1/tickets{query}"), None)
            .await;
        assert_eq!(reply.status, 422, "{query}: {reply:?}");
    }
    let reply = w.server.api.call("GET", "/v1/tickets", None, None).await;
    assert_eq!(reply.status, 401);
}

on_both_stores!(
    every_kind_is_filed_and_seen_only_by_who_may,
    disputes_move_the_order_only_from_the_allowed_states,
    a_lost_race_disputes_once,
    messages_written_at_once_all_land,
    a_close_never_loses_a_message_that_landed_meanwhile,
    the_order_jobs_leave_a_disputed_order_alone,
    privacy_requests_are_flagged_once_overdue,
    staff_triage_answer_and_close,
    bad_input_is_refused_and_writes_nothing,
);
