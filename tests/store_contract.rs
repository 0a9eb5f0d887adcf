//! The storage port's contract, run on both adapters: the same cases must give the same answers
//! on the embedded store and on DynamoDB Local.

use renji_shared::store::schema::{GSI1, TABLE};
use renji_shared::store::{Condition, Cursor, Item, Key, Query, SortKey, StoreError, Write};
use renji_tests::{on_both_stores, Backend, TestStore};
use serde_json::{json, Value};

fn item(pk: &str, sk: &str, extra: Value) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), pk.into());
    item.insert("sk".into(), sk.into());
    if let Value::Object(extra) = extra {
        item.extend(extra);
    }
    item
}

fn sks(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i["sk"].as_str().unwrap()).collect()
}

async fn round_trip_keeps_every_type(backend: Backend) {
    let s = TestStore::new(backend).await;
    let original = item(
        "P#1",
        "A",
        json!({
            "text": "婚礼摄影师 🎥", "int": -42, "big": 9_007_199_254_740_993_i64, "float": 1.5,
            "yes": true, "nothing": null, "list": [1, "two", {"three": 3}],
            "map": {"nested": {"deep": "x"}}, "empty": ""
        }),
    );
    let put = s.write(Write::put(original.clone())).await.unwrap();
    assert_eq!(put.as_ref(), Some(&original));
    assert_eq!(s.get(&Key::new("P#1", "A")).await.unwrap(), Some(original));
    assert_eq!(s.get(&Key::new("P#1", "B")).await.unwrap(), None);
    let deleted = s.write(Write::delete(Key::new("P#1", "A"))).await.unwrap();
    assert_eq!(deleted, None);
    assert_eq!(s.get(&Key::new("P#1", "A")).await.unwrap(), None);
    // Deleting what is not there is not an error, as in DynamoDB.
    s.write(Write::delete(Key::new("P#1", "A"))).await.unwrap();
}

async fn conditions_guard_writes(backend: Backend) {
    let s = TestStore::new(backend).await;
    let key = Key::new("C#1", "X");
    let failed = |label| Err(StoreError::ConditionFailed { label });
    let v1 = item("C#1", "X", json!({"version": 1, "count": 2}));
    assert_eq!(
        s.write(Write::put_if(v1.clone(), Condition::Present, "present"))
            .await,
        failed("present")
    );
    s.write(Write::put_if(v1.clone(), Condition::Absent, "absent"))
        .await
        .unwrap();
    assert_eq!(
        s.write(Write::put_if(v1.clone(), Condition::Absent, "absent"))
            .await,
        failed("absent")
    );

    let v2 = item("C#1", "X", json!({"version": 2, "count": 2}));
    let wrong_version = Condition::Equals("version".into(), json!(7));
    assert_eq!(
        s.write(Write::put_if(v2.clone(), wrong_version, "version"))
            .await,
        failed("version")
    );
    let right_version = Condition::Equals("version".into(), json!(1));
    s.write(Write::put_if(v2.clone(), right_version, "version"))
        .await
        .unwrap();
    assert_eq!(s.get(&key).await.unwrap(), Some(v2));

    // `Lacks`: the attribute is not there (a missing item lacks every attribute).
    for (key, name, holds) in [
        (&key, "count", false),
        (&key, "scope", true),
        (&Key::new("C#1", "NONE"), "count", true),
    ] {
        let check = s
            .transact(vec![
                Write::check(key.clone(), Condition::Lacks(name.into()), "lacks"),
                Write::put(item("C#1", "LACKS", json!({"n": 1}))),
            ])
            .await;
        match holds {
            true => check.unwrap(),
            false => assert_eq!(
                check,
                Err(StoreError::ConditionFailed { label: "lacks" }),
                "{name}"
            ),
        }
    }

    // `Has`: the attribute is there (any value); a missing one, or a missing item, fails.
    let missing = Key::new("C#1", "NONE");
    for (key, name, holds) in [
        (&key, "count", true),
        (&key, "scope", false),
        (&missing, "count", false),
    ] {
        let check = s
            .transact(vec![
                Write::check(key.clone(), Condition::Has(name.into()), "has"),
                Write::put(item("C#1", "HAS", json!({"n": 1}))),
            ])
            .await;
        match holds {
            true => check.unwrap(),
            false => assert_eq!(
                check,
                Err(StoreError::ConditionFailed { label: "has" }),
                "{name}"
            ),
        }
    }
    s.write(Write::delete(Key::new("C#1", "HAS")))
        .await
        .unwrap();

    assert_eq!(
        s.write(Write::delete_if(
            key.clone(),
            Condition::AtLeast("count".into(), 3),
            "count"
        ))
        .await,
        failed("count")
    );
    let both = Condition::All(vec![
        Condition::Present,
        Condition::AtLeast("count".into(), 2),
    ]);
    s.write(Write::delete_if(key.clone(), both, "both"))
        .await
        .unwrap();
    assert_eq!(s.get(&key).await.unwrap(), None);
}

async fn updates_set_add_remove_and_upsert(backend: Backend) {
    let s = TestStore::new(backend).await;
    let key = Key::new("U#1", "X");
    // An update of a missing item creates it (DynamoDB's UpdateItem), and ADD starts from zero.
    s.write(
        Write::update(key.clone())
            .set("name", "a")
            .add("count", 2)
            .build(),
    )
    .await
    .unwrap();
    let after = s
        .write(
            Write::update(key.clone())
                .add("count", 3)
                .remove("name")
                .set("tags", json!(["x"]))
                .build(),
        )
        .await
        .unwrap();
    let expected = Some(item("U#1", "X", json!({"count": 5, "tags": ["x"]})));
    assert_eq!(after, expected, "a write answers the item it left");
    assert_eq!(s.get(&key).await.unwrap(), expected);
    // A counter that must not go negative.
    let never_negative = Write::update(key.clone())
        .add("count", -6)
        .condition(Condition::AtLeast("count".into(), 6), "count")
        .build();
    assert_eq!(
        s.write(never_negative).await,
        Err(StoreError::ConditionFailed { label: "count" })
    );
    let missing = Write::update(Key::new("U#1", "NONE"))
        .set("a", 1)
        .condition(Condition::Present, "exists")
        .build();
    assert_eq!(
        s.write(missing).await,
        Err(StoreError::ConditionFailed { label: "exists" })
    );
    assert_eq!(s.get(&Key::new("U#1", "NONE")).await.unwrap(), None);
    let rekey = Write::update(key.clone()).set("pk", "other").build();
    assert!(matches!(s.write(rekey).await, Err(StoreError::Invalid(_))));
}

async fn a_racing_conditional_write_has_one_winner(backend: Backend) {
    let s = TestStore::new(backend).await;
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let store = s.store.clone();
            tokio::spawn(async move {
                let claim = item("CLAIM#openid", "CLAIM", json!({ "by": n }));
                store
                    .write(Write::put_if(claim, Condition::Absent, "unclaimed"))
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(_) => winners.push(n),
            Err(e) => assert_eq!(e, StoreError::ConditionFailed { label: "unclaimed" }),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim wins");
    let stored = s
        .get(&Key::new("CLAIM#openid", "CLAIM"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored["by"], json!(winners[0]));
}

async fn concurrent_counter_updates_all_count(backend: Backend) {
    let s = TestStore::new(backend).await;
    let key = Key::new("N#1", "COUNT");
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = s.store.clone();
            let key = key.clone();
            tokio::spawn(async move { store.write(Write::update(key).add("n", 1).build()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(s.get(&key).await.unwrap().unwrap()["n"], json!(40));
}

async fn a_transaction_rolls_back_as_a_whole(backend: Backend) {
    let s = TestStore::new(backend).await;
    s.write(Write::put(item("T#1", "COUNTER", json!({"n": 0}))))
        .await
        .unwrap();
    let result = s
        .transact(vec![
            Write::put_if(item("T#1", "RECORD", json!({})), Condition::Absent, "new"),
            Write::update(Key::new("T#1", "COUNTER"))
                .add("n", 1)
                .build(),
            // Fails: OTHER does not exist.
            Write::update(Key::new("T#1", "OTHER"))
                .set("x", 1)
                .condition(Condition::Present, "other")
                .build(),
        ])
        .await;
    assert_eq!(result, Err(StoreError::ConditionFailed { label: "other" }));
    assert_eq!(s.get(&Key::new("T#1", "RECORD")).await.unwrap(), None);
    assert_eq!(
        s.get(&Key::new("T#1", "COUNTER")).await.unwrap().unwrap()["n"],
        json!(0)
    );
    assert_eq!(s.get(&Key::new("T#1", "OTHER")).await.unwrap(), None);

    // The same transaction with a check that holds commits every write.
    s.transact(vec![
        Write::put_if(item("T#1", "RECORD", json!({})), Condition::Absent, "new"),
        Write::update(Key::new("T#1", "COUNTER"))
            .add("n", 1)
            .build(),
        Write::Check {
            key: Key::new("T#1", "NOPE"),
            condition: Condition::Absent,
            label: "nope",
        },
    ])
    .await
    .unwrap();
    assert!(s.get(&Key::new("T#1", "RECORD")).await.unwrap().is_some());
    assert_eq!(
        s.get(&Key::new("T#1", "COUNTER")).await.unwrap().unwrap()["n"],
        json!(1)
    );
    // The first write's condition fails this time.
    let again = s
        .transact(vec![
            Write::put_if(item("T#1", "RECORD", json!({})), Condition::Absent, "new"),
            Write::update(Key::new("T#1", "COUNTER"))
                .add("n", 1)
                .build(),
        ])
        .await;
    assert_eq!(again, Err(StoreError::ConditionFailed { label: "new" }));
}

async fn malformed_requests_are_refused(backend: Backend) {
    let s = TestStore::new(backend).await;
    let twice = s
        .transact(vec![
            Write::put(item("D#1", "X", json!({}))),
            Write::delete(Key::new("D#1", "X")),
        ])
        .await;
    assert!(matches!(twice, Err(StoreError::Invalid(_))), "{twice:?}");
    assert!(matches!(
        s.transact(vec![]).await,
        Err(StoreError::Invalid(_))
    ));
    let check_alone = Write::check(Key::new("D#1", "X"), Condition::Absent, "absent");
    assert!(matches!(
        s.write(check_alone).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.get(&Key::new("", "X")).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(s.get(&Key::new("D#1", "X")).await.unwrap(), None);
}

async fn seed_partition(s: &TestStore) {
    let writes = ["a", "b1", "b2", "b3", "c", "d"]
        .iter()
        .map(|sk| Write::put(item("Q#1", sk, json!({}))))
        .chain([Write::put(item("Q#2", "a", json!({})))])
        .collect();
    s.transact(writes).await.unwrap();
}

async fn queries_select_and_order_by_sort_key(backend: Backend) {
    let s = TestStore::new(backend).await;
    seed_partition(&s).await;
    let run = |q: Query| {
        let store = s.store.clone();
        async move { store.query(q).await.unwrap() }
    };
    let all = run(Query::partition("Q#1")).await;
    assert_eq!(sks(&all.items), ["a", "b1", "b2", "b3", "c", "d"]);
    assert_eq!(all.next, None);
    let desc = run(Query::partition("Q#1").descending()).await;
    assert_eq!(sks(&desc.items), ["d", "c", "b3", "b2", "b1", "a"]);
    let prefix = run(Query::partition("Q#1").sort(SortKey::Prefix("b".into()))).await;
    assert_eq!(sks(&prefix.items), ["b1", "b2", "b3"]);
    let prefix_desc = run(Query::partition("Q#1")
        .sort(SortKey::Prefix("b".into()))
        .descending())
    .await;
    assert_eq!(sks(&prefix_desc.items), ["b3", "b2", "b1"]);
    let between =
        run(Query::partition("Q#1").sort(SortKey::Between("b2".into(), "c".into()))).await;
    assert_eq!(sks(&between.items), ["b2", "b3", "c"]);
    let below = run(Query::partition("Q#1").sort(SortKey::Below("b2".into()))).await;
    assert_eq!(sks(&below.items), ["a", "b1"]);
    let above = run(Query::partition("Q#1")
        .sort(SortKey::Above("b3".into()))
        .descending())
    .await;
    assert_eq!(sks(&above.items), ["d", "c"]);
    let other = run(Query::partition("Q#2")).await;
    assert_eq!(sks(&other.items), ["a"]);
    assert!(run(Query::partition("Q#3")).await.items.is_empty());
}

async fn cursors_page_exactly_in_both_directions(backend: Backend) {
    let s = TestStore::new(backend).await;
    seed_partition(&s).await;
    for descending in [false, true] {
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let mut q = Query::partition("Q#1").limit(4).after(cursor.take());
            if descending {
                q = q.descending();
            }
            let page = s.query(q).await.unwrap();
            pages += 1;
            seen.extend(sks(&page.items).into_iter().map(str::to_owned));
            match page.next {
                Some(next) => {
                    // A cursor survives the trip through a client as text.
                    let mut probe = Query::partition("Q#1");
                    if descending {
                        probe = probe.descending();
                    }
                    cursor = Some(Cursor::from_bytes(&next.to_bytes(), &probe, &TABLE).unwrap());
                }
                None => break,
            }
        }
        let mut expected = vec!["a", "b1", "b2", "b3", "c", "d"];
        if descending {
            expected.reverse();
        }
        assert_eq!(seen, expected);
        assert_eq!(
            pages, 2,
            "6 items in pages of 4; the last page says nothing follows"
        );
    }
    // An exact fit leaves no next page.
    let exact = s.query(Query::partition("Q#1").limit(6)).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (6, None));
    // A cursor from another partition is not accepted for this one.
    let page = s.query(Query::partition("Q#2").limit(1)).await.unwrap();
    assert!(page.next.is_none());
    let foreign = s
        .query(Query::partition("Q#1").limit(1))
        .await
        .unwrap()
        .next
        .unwrap();
    assert!(Cursor::from_bytes(&foreign.to_bytes(), &Query::partition("Q#2"), &TABLE).is_none());
    assert!(Cursor::from_bytes(b"not-a-cursor", &Query::partition("Q#1"), &TABLE).is_none());
}

async fn secondary_indexes_are_sparse_and_kept_in_step(backend: Backend) {
    let s = TestStore::new(backend).await;
    let indexed = |pk: &str, group: &str, order: &str| {
        item(pk, "ITEM", json!({"gsi1pk": group, "gsi1sk": order}))
    };
    s.transact(vec![
        Write::put(indexed("I#1", "G#city", "2026-01-03")),
        Write::put(indexed("I#2", "G#city", "2026-01-01")),
        Write::put(indexed("I#3", "G#city", "2026-01-02")),
        Write::put(indexed("I#4", "G#other", "2026-01-01")),
        Write::put(item("I#5", "ITEM", json!({"gsi1pk": "G#city"}))),
    ])
    .await
    .unwrap();
    let pks = |items: &[Item]| -> Vec<String> {
        items
            .iter()
            .map(|i| i["pk"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest_first = Query::partition("G#city").index(GSI1).descending();
    let page = s.query(newest_first.clone()).await.unwrap();
    assert_eq!(
        pks(&page.items),
        ["I#1", "I#3", "I#2"],
        "I#5 lacks gsi1sk: not indexed"
    );

    // Moving an item in the index, and deleting one, shows at once.
    s.write(
        Write::update(Key::new("I#2", "ITEM"))
            .set("gsi1sk", "2026-01-09")
            .build(),
    )
    .await
    .unwrap();
    s.write(Write::delete(Key::new("I#3", "ITEM")))
        .await
        .unwrap();
    s.write(
        Write::update(Key::new("I#1", "ITEM"))
            .remove("gsi1pk")
            .build(),
    )
    .await
    .unwrap();
    let page = s.query(newest_first.clone()).await.unwrap();
    assert_eq!(pks(&page.items), ["I#2"]);

    // Paging over an index.
    let writes = (0..5)
        .map(|n| Write::put(indexed(&format!("J#{n}"), "G#page", &format!("k{n}"))))
        .collect();
    s.transact(writes).await.unwrap();
    let first = s
        .query(Query::partition("G#page").index(GSI1).limit(3))
        .await
        .unwrap();
    assert_eq!(pks(&first.items), ["J#0", "J#1", "J#2"]);
    let second = s
        .query(
            Query::partition("G#page")
                .index(GSI1)
                .limit(3)
                .after(first.next.clone()),
        )
        .await
        .unwrap();
    assert_eq!(pks(&second.items), ["J#3", "J#4"]);
    assert_eq!(second.next, None);
    let ranged = s
        .query(
            Query::partition("G#page")
                .index(GSI1)
                .sort(SortKey::Between("k1".into(), "k3".into()))
                .descending(),
        )
        .await
        .unwrap();
    assert_eq!(pks(&ranged.items), ["J#3", "J#2", "J#1"]);
}

async fn batch_reads_answer_in_key_order(backend: Backend) {
    let s = TestStore::new(backend).await;
    let writes = (0..30)
        .map(|n| Write::put(item(&format!("B#{n}"), "X", json!({ "n": n }))))
        .collect();
    s.transact(writes).await.unwrap();
    let mut keys: Vec<Key> = (0..30)
        .rev()
        .map(|n| Key::new(format!("B#{n}"), "X"))
        .collect();
    keys.insert(3, Key::new("B#missing", "X"));
    keys.push(Key::new("B#7", "X")); // asked twice
    let got = s.get_many(&keys).await.unwrap();
    assert_eq!(got.len(), keys.len());
    assert_eq!(got[3], None);
    assert_eq!(got[0].as_ref().unwrap()["n"], json!(29));
    assert_eq!(got[4].as_ref().unwrap()["n"], json!(26));
    assert_eq!(got.last().unwrap().as_ref().unwrap()["n"], json!(7));
    assert_eq!(s.get_many(&[]).await.unwrap(), vec![]);
    let too_many: Vec<Key> = (0..101).map(|n| Key::new(format!("B#{n}"), "X")).collect();
    assert!(matches!(
        s.get_many(&too_many).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn capped_counters_stop_at_their_bound(backend: Backend) {
    let s = TestStore::new(backend).await;
    let key = Key::new("R#1", "DAY");
    let bump = || {
        Write::update(key.clone())
            .add("n", 1)
            .condition(Condition::Under("n".into(), 3), "cap")
            .build()
    };
    for _ in 0..3 {
        s.write(bump()).await.unwrap();
    }
    assert_eq!(
        s.write(bump()).await,
        Err(StoreError::ConditionFailed { label: "cap" })
    );
    assert_eq!(s.get(&key).await.unwrap().unwrap()["n"], json!(3));

    // A cap among other conditions (a ticket's message count while it is open), alone and in
    // a transaction.
    let capped = || {
        Write::update(key.clone())
            .add("m", 1)
            .condition(
                Condition::All(vec![
                    Condition::Equals("n".into(), json!(3)),
                    Condition::Under("m".into(), 2),
                ]),
                "open_and_capped",
            )
            .build()
    };
    s.write(capped()).await.unwrap();
    s.transact(vec![capped(), Write::put(item("R#1", "OTHER", json!({})))])
        .await
        .unwrap();
    assert_eq!(
        s.write(capped()).await,
        Err(StoreError::ConditionFailed {
            label: "open_and_capped"
        })
    );
    assert_eq!(s.get(&key).await.unwrap().unwrap()["m"], json!(2));
}

async fn a_failed_condition_is_named_by_its_label_in_any_order(backend: Backend) {
    let s = TestStore::new(backend).await;
    s.write(Write::put(item("L#1", "COUNTER", json!({"n": 5}))))
        .await
        .unwrap();
    let writes = vec![
        Write::put_if(
            item("L#1", "RECORD", json!({})),
            Condition::Absent,
            "record_new",
        ),
        Write::update(Key::new("L#1", "COUNTER"))
            .add("n", 1)
            .condition(Condition::AtLeast("n".into(), 1), "counter_positive")
            .build(),
        // The one that fails: MEMBER does not exist.
        Write::check(
            Key::new("L#1", "MEMBER"),
            Condition::Present,
            "member_exists",
        ),
        Write::delete_if(Key::new("L#1", "GONE"), Condition::Absent, "gone"),
    ];
    // Every rotation and its reverse: the failed write sits at each position in turn.
    for shift in 0..writes.len() {
        let mut order = writes.clone();
        order.rotate_left(shift);
        for order in [order.clone(), order.into_iter().rev().collect()] {
            assert_eq!(
                s.transact(order).await,
                Err(StoreError::ConditionFailed {
                    label: "member_exists"
                }),
                "shift {shift}"
            );
        }
    }
    assert_eq!(s.get(&Key::new("L#1", "RECORD")).await.unwrap(), None);
    assert_eq!(
        s.get(&Key::new("L#1", "COUNTER")).await.unwrap().unwrap()["n"],
        json!(5)
    );
}

async fn a_replayed_token_applies_its_transaction_once(backend: Backend) {
    let s = TestStore::new(backend).await;
    let counter = Key::new("K#1", "COUNTER");
    let writes = || {
        vec![
            Write::update(counter.clone()).add("n", 1).build(),
            Write::put(item("K#1", "RECORD", json!({"by": "first"}))),
        ]
    };
    let token = renji_shared::store::request_token();
    s.transact_with_token(&token, writes()).await.unwrap();
    // A replay (a retry after a lost answer, say) answers success and applies nothing again.
    for _ in 0..3 {
        s.transact_with_token(&token, writes()).await.unwrap();
    }
    let n = |s: &TestStore| {
        let store = s.store.clone();
        let counter = counter.clone();
        async move { store.get(&counter).await.unwrap().unwrap()["n"].clone() }
    };
    assert_eq!(n(&s).await, json!(1));
    // The same token with other writes is refused, and applies nothing.
    let other = vec![
        Write::update(counter.clone()).add("n", 5).build(),
        Write::put(item("K#1", "RECORD", json!({"by": "second"}))),
    ];
    assert_eq!(
        s.transact_with_token(&token, other).await,
        Err(StoreError::IdempotentMismatch)
    );
    assert_eq!(n(&s).await, json!(1));
    assert_eq!(
        s.get(&Key::new("K#1", "RECORD")).await.unwrap().unwrap()["by"],
        json!("first")
    );
    // Another token is another transaction; plain transactions are never taken for replays.
    s.transact_with_token(&renji_shared::store::request_token(), writes())
        .await
        .unwrap();
    s.transact(writes()).await.unwrap();
    s.transact(writes()).await.unwrap();
    assert_eq!(n(&s).await, json!(4));
    // A cancelled transaction applied nothing, so its token is not spent: once its condition
    // holds, the same token and writes commit (as DynamoDB Local does).
    let gated = || {
        vec![
            Write::update(counter.clone()).add("n", 10).build(),
            Write::check(Key::new("K#1", "GATE"), Condition::Present, "gate"),
        ]
    };
    let gated_token = renji_shared::store::request_token();
    assert_eq!(
        s.transact_with_token(&gated_token, gated()).await,
        Err(StoreError::ConditionFailed { label: "gate" })
    );
    s.write(Write::put(item("K#1", "GATE", json!({}))))
        .await
        .unwrap();
    s.transact_with_token(&gated_token, gated()).await.unwrap();
    s.transact_with_token(&gated_token, gated()).await.unwrap();
    assert_eq!(n(&s).await, json!(14));
    // DynamoDB's rule for tokens: 1 to 36 characters.
    for bad in ["", &"t".repeat(37), "a token"] {
        assert!(
            matches!(
                s.transact_with_token(bad, writes()).await,
                Err(StoreError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(n(&s).await, json!(14));
}

async fn a_cursor_narrows_a_query_never_widens_it(backend: Backend) {
    let s = TestStore::new(backend).await;
    seed_partition(&s).await;
    let prefix_b = Query::partition("Q#1").sort(SortKey::Prefix("b".into()));
    let at =
        |sk: &str, query: &Query| Cursor::after_item(&item("Q#1", sk, json!({})), query, &TABLE);
    let run = |query: Query, after: &str| {
        let store = s.store.clone();
        let cursor = at(after, &query);
        async move { store.query(query.after(cursor)).await.unwrap() }
    };
    // Cursors past either end of the prefix, in both directions: nothing outside it.
    let page = run(prefix_b.clone().descending(), "d").await;
    assert_eq!(sks(&page.items), ["b3", "b2", "b1"]);
    let page = run(prefix_b.clone(), "a").await;
    assert_eq!(sks(&page.items), ["b1", "b2", "b3"]);
    let page = run(prefix_b.clone(), "c").await;
    assert_eq!((sks(&page.items).len(), page.next), (0, None));
    let page = run(prefix_b.clone().descending(), "a").await;
    assert_eq!((sks(&page.items).len(), page.next), (0, None));
    // Inside the range a cursor still pages.
    let page = run(prefix_b.clone(), "b1").await;
    assert_eq!(sks(&page.items), ["b2", "b3"]);
    let page = run(prefix_b.clone().descending().limit(1), "b3").await;
    assert_eq!(sks(&page.items), ["b2"]);
    assert!(page.next.is_some());
    let page = run(
        Query::partition("Q#1")
            .sort(SortKey::Between("b1".into(), "b3".into()))
            .descending(),
        "d",
    )
    .await;
    assert_eq!(sks(&page.items), ["b3", "b2", "b1"]);
    let page = run(
        Query::partition("Q#1").sort(SortKey::Below("b2".into())),
        "b2",
    )
    .await;
    assert_eq!(sks(&page.items).len(), 0);
    let page = run(
        Query::partition("Q#1").sort(SortKey::Above("b2".into())),
        "a",
    )
    .await;
    assert_eq!(sks(&page.items), ["b3", "c", "d"]);

    // On an index, too.
    let writes = (0..5)
        .map(|n| {
            Write::put(item(
                &format!("J#{n}"),
                "ITEM",
                json!({"gsi1pk": "G#page", "gsi1sk": format!("k{n}")}),
            ))
        })
        .collect();
    s.transact(writes).await.unwrap();
    let ranged = Query::partition("G#page")
        .index(GSI1)
        .sort(SortKey::Between("k1".into(), "k3".into()))
        .descending();
    let last = item("J#4", "ITEM", json!({"gsi1pk": "G#page", "gsi1sk": "k4"}));
    let cursor = Cursor::after_item(&last, &ranged, &TABLE);
    let page = s.query(ranged.clone().after(cursor)).await.unwrap();
    let pks: Vec<&str> = page
        .items
        .iter()
        .map(|i| i["pk"].as_str().unwrap())
        .collect();
    assert_eq!(pks, ["J#3", "J#2", "J#1"]);
}

async fn cursor_bytes_are_checked_against_their_query(backend: Backend) {
    let s = TestStore::new(backend).await;
    seed_partition(&s).await;
    let query = Query::partition("Q#1")
        .sort(SortKey::Prefix("b".into()))
        .limit(1);
    let next = s.query(query.clone()).await.unwrap().next.unwrap();
    let bytes = next.to_bytes();
    assert_eq!(Cursor::from_bytes(&bytes, &query, &TABLE), Some(next));
    for (what, bad) in [
        ("empty sort key", json!({"pk": "Q#1", "sk": ""})),
        ("empty partition", json!({"pk": "", "sk": "b1"})),
        ("another partition", json!({"pk": "Q#2", "sk": "b1"})),
        ("outside the prefix", json!({"pk": "Q#1", "sk": "c"})),
        ("a missing key part", json!({"pk": "Q#1"})),
        (
            "an extra attribute",
            json!({"pk": "Q#1", "sk": "b1", "gsi1pk": "x"}),
        ),
        ("a number", json!({"pk": "Q#1", "sk": 1})),
        ("not an object", json!(["Q#1", "b1"])),
    ] {
        let bytes = bad.to_string().into_bytes();
        assert_eq!(Cursor::from_bytes(&bytes, &query, &TABLE), None, "{what}");
    }
    let index = Query::partition("G#x").index(GSI1);
    let empty_index_key = json!({"pk": "I#1", "sk": "ITEM", "gsi1pk": "G#x", "gsi1sk": ""});
    assert_eq!(
        Cursor::from_bytes(&empty_index_key.to_string().into_bytes(), &index, &TABLE),
        None
    );
}

on_both_stores!(
    a_failed_condition_is_named_by_its_label_in_any_order,
    a_replayed_token_applies_its_transaction_once,
    a_cursor_narrows_a_query_never_widens_it,
    cursor_bytes_are_checked_against_their_query,
    batch_reads_answer_in_key_order,
    capped_counters_stop_at_their_bound,
    round_trip_keeps_every_type,
    conditions_guard_writes,
    updates_set_add_remove_and_upsert,
    a_racing_conditional_write_has_one_winner,
    concurrent_counter_updates_all_count,
    a_transaction_rolls_back_as_a_whole,
    malformed_requests_are_refused,
    queries_select_and_order_by_sort_key,
    cursors_page_exactly_in_both_directions,
    secondary_indexes_are_sparse_and_kept_in_step,
);
