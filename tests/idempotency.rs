//! Idempotency keys at the domain level, on both stores: a small effect (a counter) behind a key,
//! as order creation and payment start will use it.

use renji_shared::domain::idempotency::{self, Begin, IdempotencyKey, StoredResponse};
use renji_shared::ids::UserId;
use renji_shared::store::{DynStore, Item, Key, Write};
use renji_shared::Error;
use renji_tests::{on_both_stores, Backend, TestStore};
use serde_json::json;

const ROUTE: &str = "POST /v1/orders";

fn counter() -> Key {
    Key::new("COUNTER#orders", "N")
}

async fn count(store: &DynStore) -> i64 {
    store
        .get(&counter())
        .await
        .unwrap()
        .and_then(|i| i["n"].as_i64())
        .unwrap_or(0)
}

/// The effect behind a key: counts one order and answers 201 with a new order id.
async fn create_order(
    store: &DynStore,
    member: &UserId,
    key: &str,
    body: &str,
) -> Result<StoredResponse, Error> {
    let key = IdempotencyKey::parse(key)?;
    match idempotency::begin(store, member, ROUTE, &key, body.as_bytes()).await? {
        Begin::Replay(stored) => Ok(stored),
        Begin::Fresh(guard) => {
            let response = StoredResponse {
                status: 201,
                body: json!({ "order_id": ulid::Ulid::new().to_string(), "body": body }),
            };
            let effect = vec![Write::update(counter()).add("n", 1).build()];
            guard.commit(store, effect, response, Error::from).await
        }
    }
}

fn member(n: u8) -> UserId {
    UserId::parse(&format!("u_01m8k0bg49zfx0qv4ka1m49bc{n}")).unwrap()
}

async fn a_repeated_request_gets_the_first_answer_and_one_effect(backend: Backend) {
    let s = TestStore::new(backend).await;
    let alice = member(1);
    let first = create_order(&s, &alice, "key-1", r#"{"listing":"l_1"}"#)
        .await
        .unwrap();
    assert_eq!(first.status, 201);
    for _ in 0..3 {
        let again = create_order(&s, &alice, "key-1", r#"{"listing":"l_1"}"#)
            .await
            .unwrap();
        assert_eq!(again, first, "the stored response, not a new order");
    }
    assert_eq!(count(&s).await, 1);
    // Another key, another member or another route is another request.
    let second = create_order(&s, &alice, "key-2", r#"{"listing":"l_1"}"#)
        .await
        .unwrap();
    assert_ne!(second.body["order_id"], first.body["order_id"]);
    create_order(&s, &member(2), "key-1", r#"{"listing":"l_1"}"#)
        .await
        .unwrap();
    assert_eq!(count(&s).await, 3);
    let key = IdempotencyKey::parse("key-1").unwrap();
    let other_route = idempotency::begin(&s, &alice, "POST /v1/payments", &key, b"{}")
        .await
        .unwrap();
    assert!(matches!(other_route, Begin::Fresh(_)));
}

async fn the_same_key_with_another_body_is_refused(backend: Backend) {
    let s = TestStore::new(backend).await;
    let alice = member(1);
    let first = create_order(&s, &alice, "key-1", r#"{"listing":"l_1"}"#)
        .await
        .unwrap();
    let err = create_order(&s, &alice, "key-1", r#"{"listing":"l_2"}"#)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status().as_u16(), err.code()),
        (422, "idempotency_key_reused")
    );
    assert_eq!(count(&s).await, 1);
    // The key still answers its own request.
    let again = create_order(&s, &alice, "key-1", r#"{"listing":"l_1"}"#)
        .await
        .unwrap();
    assert_eq!(again, first);
    // A malformed key is a 422 naming the header, before anything is read or written.
    for bad in ["", &"k".repeat(65), "ключ"] {
        let err = create_order(&s, &alice, bad, "{}").await.unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "Idempotency-Key"),
            "{bad:?}: {err:?}"
        );
    }
    assert_eq!(count(&s).await, 1);
}

async fn concurrent_requests_with_one_key_make_one_effect(backend: Backend) {
    let s = TestStore::new(backend).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = s.store.clone();
            tokio::spawn(async move {
                create_order(&store, &member(1), "race", r#"{"listing":"l_1"}"#).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().unwrap());
    }
    assert_eq!(count(&s).await, 1, "exactly one effect");
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "every request answered as the winner: {answers:?}"
    );
}

async fn an_expired_record_no_longer_holds_its_key(backend: Backend) {
    let s = TestStore::new(backend).await;
    let alice = member(1);
    let key = IdempotencyKey::parse("old").unwrap();
    // A record a day and a second old that the store has not deleted yet (DynamoDB's TTL is
    // late; the embedded store has none), for another body.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let record_key = idempotency::record_key(&alice, ROUTE, &key);
    let mut stale = Item::new();
    stale.insert("pk".into(), record_key.pk.clone().into());
    stale.insert("sk".into(), record_key.sk.clone().into());
    stale.insert("request_sha256".into(), "0".repeat(64).into());
    stale.insert(
        "response".into(),
        json!({"status": 201, "body": {"order_id": "stale"}})
            .to_string()
            .into(),
    );
    stale.insert("ttl".into(), (now - 1).into());
    s.write(Write::put(stale)).await.unwrap();

    let fresh = create_order(&s, &alice, "old", r#"{"listing":"l_9"}"#)
        .await
        .unwrap();
    assert_ne!(fresh.body["order_id"], json!("stale"));
    assert_eq!(count(&s).await, 1);
    // The new record holds the key for a day.
    let record = s.get(&record_key).await.unwrap().unwrap();
    let ttl = record["ttl"].as_i64().unwrap();
    assert!((now + idempotency::KEEP_SECS..=now + idempotency::KEEP_SECS + 5).contains(&ttl));
    let again = create_order(&s, &alice, "old", r#"{"listing":"l_9"}"#)
        .await
        .unwrap();
    assert_eq!(again, fresh);
    assert_eq!(count(&s).await, 1);
}

on_both_stores!(
    a_repeated_request_gets_the_first_answer_and_one_effect,
    the_same_key_with_another_body_is_refused,
    concurrent_requests_with_one_key_make_one_effect,
    an_expired_record_no_longer_holds_its_key,
);
