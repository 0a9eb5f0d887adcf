//! A split that fails and expires, end to end over HTTP against the local server and its WeChat
//! Pay stand-in, on both stores, with the local clock (`POST /sandbox/clock`) moved past the
//! dispute window and to the split deadline: the seller is told by subscribe message when the
//! provider closes their receiver; staff see the order in `GET /admin/v1/settlements?state=alarm`
//! at the moved clock, then under `?state=expired`; an administrator refunds the buyer the
//! seller's share (`POST /admin/v1/orders/{id}/refund`), which resolves it: the split is
//! `nothing`, the ledger balances, the order leaves the expired list, the audit trail has it.
//! A disputed order left undecided past its deadline is resolved by the dispute's refund
//! decision the same way.

use renji_shared::domain::orders::{self, Order};
use renji_shared::domain::settlement::{ledger, SettleState, Shares, Totals};
use renji_shared::ids::{OrderId, UserId};
use renji_shared::money::Fen;
use renji_tests::{on_both_stores, service, Backend, LocalServer};
use serde_json::{json, Value};
use time::OffsetDateTime;

on_both_stores!(a_failed_split_is_told_alarmed_expired_and_resolved_by_staff);

/// The local server's own routes (`/sandbox/clock`, `/sandbox/jobs/run`).
async fn local(server: &LocalServer, path: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}{path}", server.running.url()))
        .json(&body)
        .send()
        .await
        .expect(path)
        .json()
        .await
        .expect(path)
}

/// Moves the local clock to `at` (forward only) and runs the scheduled jobs once there.
async fn jobs_at(server: &LocalServer, at: OffsetDateTime) {
    let clock = local(server, "/sandbox/clock", json!({"advance_secs": 0})).await;
    let now = OffsetDateTime::parse(
        clock["now"].as_str().expect("now"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("a time");
    let secs = (at - now).whole_seconds();
    if secs > 0 {
        local(server, "/sandbox/clock", json!({"advance_secs": secs})).await;
    }
    local(server, "/sandbox/jobs/run", json!({})).await;
}

async fn order(server: &LocalServer, id: &OrderId) -> Order {
    orders::get(&server.app().store, id).await.unwrap().unwrap()
}

async fn totals(server: &LocalServer, id: &OrderId) -> Totals {
    Totals::of(&ledger::entries(&server.app().store, id).await.unwrap())
}

/// The seller's earnings item of the order `id` (`GET /v1/me/earnings`).
async fn earning(server: &LocalServer, token: &str, id: &OrderId) -> Value {
    let reply = server
        .api
        .call("GET", "/v1/me/earnings", Some(token), None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["order_id"] == json!(id))
        .cloned()
        .expect("the order's earning")
}

/// Whether staff's list `state` names the order `id` (and its item).
async fn listed(server: &LocalServer, staff: &str, state: &str, id: &OrderId) -> Option<Value> {
    let reply = server
        .api
        .call(
            "GET",
            &format!("/admin/v1/settlements?state={state}"),
            Some(staff),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["order_id"] == json!(id))
        .cloned()
}

async fn a_failed_split_is_told_alarmed_expired_and_resolved_by_staff(backend: Backend) {
    let server = LocalServer::start_with(backend, &[("RENJI_RATE_LIMITS", "off")]).await;
    let seller = server.member("seller", true).await;
    let buyer = server.member("buyer", false).await;
    let staff = server.api.staff_token("staff:ann:admin").await;
    let listing = server
        .api
        .create_listing(&seller, service("婚礼跟拍"))
        .await["id"]
        .as_str()
        .expect("listing id")
        .to_owned();
    // The seller accepted the message about a failed split.
    let granted = server
        .api
        .call(
            "POST",
            "/v1/me/subscriptions",
            Some(&seller.token),
            Some(json!({"results": {"sandbox-settlement-failed": "accept"}})),
        )
        .await;
    assert_eq!(granted.status, 200, "{granted:?}");
    let id = server.completed_order(&seller, &buyer, &listing).await;
    let id = OrderId::parse(&id).unwrap();
    // A second order, disputed by the buyer and never decided before its deadline.
    let disputed = server.completed_order(&seller, &buyer, &listing).await;
    let ticket = server
        .api
        .call(
            "POST",
            "/v1/tickets",
            Some(&buyer.token),
            Some(json!({"kind": "dispute", "subject": "摄影师未到场",
                        "text": "约定上午十点，没有来", "order_id": disputed})),
        )
        .await;
    assert_eq!(ticket.status, 201, "{ticket:?}");
    let disputed = OrderId::parse(&disputed).unwrap();
    // WeChat closes the seller's receiver (their own openid).
    let seller_id = UserId::parse(&seller.id).unwrap();
    let openid = renji_shared::domain::members::get(&server.app().store, &seller_id)
        .await
        .unwrap()
        .unwrap()
        .openid;
    let closed: Value = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/profitsharing/close-receiver",
            server.running.wechatpay_base
        ))
        .json(&json!({"type": "PERSONAL_OPENID", "account": openid}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(closed["closed"], json!(true), "{closed}");

    // Past the dispute window and the delay: the split is asked, then ends CLOSED.
    let config = &server.app().config.orders;
    let due = OffsetDateTime::now_utc()
        + time::Duration::seconds(config.settle_after.as_secs() as i64 + 120);
    // (The stand-in takes no split within a second of the payment, at the real time.)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut at = due;
    for _ in 0..8 {
        jobs_at(&server, at).await;
        let s = order(&server, &id).await.settlement.map(|s| s.state);
        if s == Some(SettleState::SettleFailed) {
            break;
        }
        at += time::Duration::minutes(10);
    }
    let failed = order(&server, &id).await;
    let s = failed.settlement.clone().expect("a split");
    assert_eq!(s.state, SettleState::SettleFailed, "{s:?}");
    assert_eq!(s.failure.as_deref(), Some("ACCOUNT_ABNORMAL"));
    // The seller was told, once (the notification job runs at the moved clock too).
    jobs_at(&server, at + time::Duration::minutes(1)).await;
    let messages: Value = reqwest::Client::new()
        .get(format!(
            "{}/sandbox/wechat/messages",
            server.running.wechat_base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let told: Vec<&Value> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["template_id"] == "sandbox-settlement-failed")
        .collect();
    assert_eq!(told.len(), 1, "{messages}");
    assert_eq!(told[0]["touser"], json!(openid));
    assert_eq!(
        told[0]["data"]["character_string1"]["value"],
        json!(id.to_string())
    );
    assert_eq!(told[0]["data"]["thing2"]["value"], "婚礼跟拍");
    let advice = told[0]["data"]["thing3"]["value"].as_str().unwrap();
    assert!(advice.ends_with("前重新绑定收款账户"), "{advice}");

    // Not alarmed while the deadline is far; at the moved clock within 3 days of it, alarmed.
    let deadline = orders::epoch(failed.split_deadline.as_deref().unwrap());
    let deadline = OffsetDateTime::from_unix_timestamp(deadline).unwrap();
    assert!(listed(&server, &staff, "alarm", &id).await.is_none());
    jobs_at(&server, deadline - time::Duration::days(2)).await;
    let shares = Shares::of(
        Fen::from_fen(failed.amount_fen.get()),
        &failed.settle.unwrap(),
    );
    let seller_share = shares.seller_fen.get();
    let item = listed(&server, &staff, "alarm", &id)
        .await
        .expect("alarmed at the moved clock");
    assert_eq!(item["settlement"], "settle_failed");
    assert_eq!(item["held_fen"], json!(seller_share));

    // Past the deadline: expired, listed for staff to decide.
    jobs_at(&server, deadline + time::Duration::minutes(1)).await;
    assert_eq!(
        order(&server, &id).await.settlement.map(|s| s.state),
        Some(SettleState::Expired)
    );
    assert!(listed(&server, &staff, "alarm", &id).await.is_none());
    let item = listed(&server, &staff, "expired", &id)
        .await
        .expect("listed as expired");
    assert_eq!(item["held_fen"], json!(seller_share), "the seller's share");
    // The seller's earnings say what happened: expired (not a payout account to fix).
    let earned = earning(&server, &seller.token, &id).await;
    assert_eq!(
        (
            &earned["state"],
            &earned["settlement"],
            &earned["seller_fen"]
        ),
        (&json!("expired"), &json!("expired"), &json!(seller_share)),
        "{earned}"
    );
    assert_eq!(
        earned["ledger"]["held_fen"],
        json!(seller_share),
        "{earned}"
    );

    // Bad input first: nothing changes.
    let path = format!("/admin/v1/orders/{id}/refund");
    let bad = server
        .api
        .call(
            "POST",
            &path,
            Some(&staff),
            Some(json!({"amount_fen": failed.amount_fen.get() + 1, "reason": "too much"})),
        )
        .await;
    assert_eq!(bad.status, 422, "{bad:?}");
    assert_eq!(bad.field(), "amount_fen");
    assert!(listed(&server, &staff, "expired", &id).await.is_some());

    // An administrator refunds the buyer the seller's share: resolved.
    let reply = server
        .api
        .call(
            "POST",
            &path,
            Some(&staff),
            Some(json!({"amount_fen": seller_share, "reason": "分账已过期，卖家份额退回买家"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body["refunds"][0]["after_expiry"]["seller_part_fen"],
        json!(seller_share),
        "the seller's share first"
    );
    // The stand-in refunds asynchronously (half a second later, then its notification).
    assert_eq!(reply.body["status"], "refunding", "{reply:?}");
    assert_eq!(
        reply.body["settlement"]["state"], "expired",
        "until it succeeds"
    );
    let mut resolved = order(&server, &id).await;
    for _ in 0..50 {
        if resolved.status != orders::OrderStatus::Refunding {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        resolved = order(&server, &id).await;
    }
    assert_eq!(resolved.status, orders::OrderStatus::Completed);
    assert_eq!(resolved.refunded_fen.get(), seller_share);
    assert_eq!(
        resolved.settlement.map(|s| s.state),
        Some(SettleState::Nothing)
    );
    let t = totals(&server, &id).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(t.refunded, seller_share);
    assert_eq!(t.seller_paid, 0);
    // The provider gave its fee back in proportion: the ledger carries the fee of what is kept.
    let kept = Shares::of(
        Fen::from_fen(failed.amount_fen.get() - seller_share),
        &failed.settle.unwrap(),
    );
    assert_eq!(t.fee, kept.fee_fen.get(), "{t:?}");
    assert!(listed(&server, &staff, "expired", &id).await.is_none());
    let earned = earning(&server, &seller.token, &id).await;
    assert_eq!(
        (
            &earned["state"],
            &earned["settlement"],
            &earned["seller_fen"]
        ),
        (&json!("refunded"), &json!("nothing"), &json!(0)),
        "{earned}"
    );
    assert_eq!(earned["fee_fen"], json!(t.fee), "{earned}");
    assert_eq!(earned["ledger"]["balances"], json!(true), "{earned}");
    // Audited: staff's request and the resolution.
    let audit = server
        .api
        .call(
            "GET",
            &format!("/admin/v1/audit?target=order:{id}"),
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(audit.status, 200, "{audit:?}");
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["action"].as_str())
        .collect();
    assert!(actions.contains(&"settlement.resolve"), "{actions:?}");
    assert!(actions.contains(&"settlement.expired"), "{actions:?}");
    // The disputed order expired too: the dispute's refund decision resolves it (all that
    // remains: the seller's share first, then Renji's commission).
    assert_eq!(
        order(&server, &disputed).await.settlement.map(|s| s.state),
        Some(SettleState::Expired)
    );
    let decided = server
        .api
        .call(
            "POST",
            &format!("/admin/v1/orders/{disputed}/decision"),
            Some(&staff),
            Some(json!({"action": "refund", "reason": "分账已过期，全额退回买家"})),
        )
        .await;
    assert_eq!(decided.status, 200, "{decided:?}");
    let mut refunded = order(&server, &disputed).await;
    for _ in 0..50 {
        if refunded.status != orders::OrderStatus::Refunding {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        refunded = order(&server, &disputed).await;
    }
    assert_eq!(refunded.status, orders::OrderStatus::Refunded);
    assert_eq!(
        refunded.settlement.map(|s| s.state),
        Some(SettleState::Nothing)
    );
    let t = totals(&server, &disputed).await;
    assert!(t.balances(), "{t:?}");
    assert_eq!(t.refunded, failed.amount_fen.get());
    assert!(listed(&server, &staff, "expired", &disputed)
        .await
        .is_none());
    let audit = server
        .api
        .call(
            "GET",
            &format!("/admin/v1/audit?target=order:{disputed}"),
            Some(&staff),
            None,
        )
        .await;
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["action"] == "settlement.resolve"),
        "{audit:?}"
    );

    // Again: the split is no longer expired.
    let again = server
        .api
        .call(
            "POST",
            &path,
            Some(&staff),
            Some(json!({"reason": "again"})),
        )
        .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(again.error_code(), "not_settled");
}
