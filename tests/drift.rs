//! Keeps `template.yaml`, the code, `openapi.yaml`, `events/`, the table mirror and the README's
//! data layout in step: a route or item kind added in one place and missing in another fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use renji_local::functions::{FUNCTIONS, JOBS};
use renji_local::template::Template;
use renji_shared::store::keys;
use renji_shared::store::schema::TABLE;
use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template_routes() -> BTreeSet<String> {
    Template::load()
        .unwrap()
        .routes()
        .iter()
        .map(|r| r.key())
        .collect()
}

fn openapi() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(root().join("openapi.yaml")).unwrap()).unwrap()
}

#[test]
fn every_template_route_is_served_by_its_function_and_nothing_else() {
    let template = Template::load().unwrap();
    let mut served = BTreeSet::new();
    for route in template.routes() {
        let (_, routes) = FUNCTIONS
            .iter()
            .find(|(name, _)| *name == route.function)
            .unwrap_or_else(|| panic!("{} has no handler in the local server", route.function));
        assert!(
            routes.iter().any(|r| r.key == route.key()),
            "{} routes {} but its handler does not serve it",
            route.function,
            route.key()
        );
        served.insert(route.key());
    }
    let handled: BTreeSet<String> = FUNCTIONS
        .iter()
        .flat_map(|(_, routes)| routes.iter().map(|r| r.key.to_owned()))
        .collect();
    assert_eq!(
        handled, served,
        "handlers serve routes template.yaml does not declare"
    );
}

#[test]
fn every_function_binary_is_a_crate_of_the_workspace() {
    let binaries = Template::load().unwrap().function_binaries();
    assert_eq!(binaries.len(), FUNCTIONS.len() + JOBS.len());
    for (function, binary) in binaries {
        let manifest = root().join("functions").join(&binary).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap_or_else(|_| {
            panic!(
                "{function} builds {binary}, but {} is missing",
                manifest.display()
            )
        });
        assert!(
            text.contains(&format!("name = \"{binary}\"")),
            "{binary} bin target"
        );
    }
}

#[test]
fn openapi_describes_exactly_the_template_routes() {
    let spec = openapi();
    let mut described = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if ["get", "put", "post", "patch", "delete"].contains(&method) {
                described.insert(format!(
                    "{} {}",
                    method.to_uppercase(),
                    path.as_str().unwrap()
                ));
            }
        }
    }
    assert_eq!(described, template_routes());
}

#[test]
fn openapi_profile_schemas_match_the_views() {
    let spec = openapi();
    let keys = |schema: &str| -> BTreeSet<String> {
        spec["components"]["schemas"][schema]["properties"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    };
    let member = renji_shared::domain::members::Member::new(
        renji_shared::ids::UserId::generate(),
        &renji_shared::wechat::WechatIdentity {
            openid: "o".into(),
            unionid: None,
        },
    );
    let view_keys = |v: serde_json::Value| -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(
        keys("Me"),
        view_keys(member.private_view(&Default::default()))
    );
    assert_eq!(keys("PublicUser"), view_keys(member.public_view()));

    let listing: renji_shared::domain::listings::Listing = serde_json::from_value(serde_json::json!({
        "id": renji_shared::ids::ListingId::generate(), "owner_id": member.id, "kind": "service",
        "title": "t", "description": "", "category": "photography", "city": "北京",
        "status": "published", "version": 1, "created_at": "", "updated_at": "",
    }))
    .unwrap();
    assert_eq!(keys("Listing"), view_keys(listing.owner_view()));
    let mut summary_keys = view_keys(listing.summary());
    summary_keys.insert("distance_m".into());
    assert_eq!(keys("ListingSummary"), summary_keys);
}

/// Scheduled functions: each has exactly its `Schedule` events in the template, is run by the
/// local server's timer (`JOBS`), serves no route, and has a sample event named after its binary.
#[test]
fn every_scheduled_function_is_a_local_job_with_a_sample_event() {
    let template = Template::load().unwrap();
    let scheduled: BTreeSet<String> = template.schedules().into_iter().map(|(f, _)| f).collect();
    let jobs: BTreeSet<String> = JOBS.iter().map(|j| j.to_string()).collect();
    assert_eq!(
        scheduled, jobs,
        "template Schedule events and the local JOBS differ"
    );
    let binaries = template.function_binaries();
    for job in JOBS {
        assert!(
            template.routes().iter().all(|r| r.function != *job),
            "{job} serves routes"
        );
        let binary = &binaries[*job];
        let path = root()
            .join("events")
            .join(format!("{binary}-schedule.json"));
        let event: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("{job}: {} is missing", path.display())),
        )
        .unwrap();
        assert_eq!(
            event["detail-type"],
            "Scheduled Event",
            "{}",
            path.display()
        );
        assert_eq!(event["source"], "aws.events", "{}", path.display());
    }
    for (_, expression) in template.schedules() {
        assert!(
            expression.starts_with("rate(") || expression.starts_with("cron("),
            "{expression}"
        );
    }
}

#[test]
fn every_route_has_exactly_one_sample_event() {
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if event["detail-type"] == "Scheduled Event" {
            // A scheduled function's event (checked above).
            continue;
        }
        let route = event["routeKey"].as_str().unwrap().to_owned();
        assert_eq!(
            event["requestContext"]["routeKey"],
            event["routeKey"],
            "{}",
            path.display()
        );
        assert_eq!(event["version"], "2.0", "{}", path.display());
        assert!(seen.insert(route.clone()), "two events for {route}");
    }
    assert_eq!(
        seen,
        template_routes(),
        "events/ and template.yaml routes differ"
    );
}

#[test]
fn the_table_mirror_matches_the_template() {
    let template = Template::load().unwrap();
    let props = template
        .table_properties(TABLE.resource)
        .expect("table declared");
    let keys = |schema: &Value| -> Vec<(String, String)> {
        schema
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["AttributeName"].as_str().unwrap().to_owned(),
                    k["KeyType"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |pk: &str, sk: &str| {
        vec![
            (pk.to_owned(), "HASH".to_owned()),
            (sk.to_owned(), "RANGE".to_owned()),
        ]
    };
    assert_eq!(keys(&props["KeySchema"]), pair("pk", "sk"));
    let declared: Vec<(String, Vec<(String, String)>)> = props["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["IndexName"].as_str().unwrap().to_owned(),
                keys(&g["KeySchema"]),
            )
        })
        .collect();
    let mirrored: Vec<(String, Vec<(String, String)>)> = TABLE
        .indexes
        .iter()
        .map(|i| (i.name.to_owned(), pair(i.pk, i.sk)))
        .collect();
    assert_eq!(declared, mirrored);
    assert_eq!(
        props["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(TABLE.ttl_attribute)
    );
}

/// The answers every route of a kind can give are documented on each: a body route can refuse
/// its body (400 malformed or missing, 413 too large, 415 not JSON, 422 a bad field), a member
/// route its token (401), a route with an id in its path an id that names nothing (404), a list
/// route its page parameters (422). schemathesis (scripts/contract) checks the rest at run time.
#[test]
fn openapi_documents_the_answers_every_route_of_its_kind_can_give() {
    let spec = openapi();
    let mut missing = Vec::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        let path = path.as_str().unwrap();
        for (method, op) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if !["get", "put", "post", "patch", "delete"].contains(&method) {
                continue;
            }
            let responses = op["responses"].as_mapping().unwrap();
            let mut need = Vec::new();
            // The providers' notifications are answered in the provider's own terms (WeChat
            // Pay: 204 or FAIL; Alipay: success or fail), whatever their body.
            let callback = path.starts_with("/v1/payments/");
            if !op["requestBody"].is_null() && !callback {
                need.extend(["400", "413", "415", "422"]);
            }
            // A token, required or optional (`{}` among the options), can be refused.
            if op["security"].as_sequence().is_some() {
                need.push("401");
            }
            if path.contains('{') {
                need.push("404");
            }
            let params = |op: &Value| -> Vec<String> {
                op["parameters"]
                    .as_sequence()
                    .map(|ps| {
                        ps.iter()
                            .filter_map(|p| p["$ref"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if params(op)
                .iter()
                .any(|p| p.ends_with("/Cursor") || p.ends_with("/Limit"))
            {
                need.push("422");
            }
            for status in need {
                if !responses.contains_key(status) {
                    missing.push(format!("{} {path}: {status}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented answers: {missing:#?}");
}

/// The README's data layout table names exactly the partitions of `shared/src/store/keys.rs`: an
/// item kind added there and not in the table (or the other way round) fails here.
#[test]
fn the_readme_data_layout_names_the_partitions_of_the_keys_module() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("### Data layout")
        .nth(1)
        .expect("a data layout section");
    let rows: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .collect();
    assert!(rows.len() > 10, "{rows:?}");
    let mut named = BTreeSet::new();
    for row in rows {
        let pk = row.split(" | ").nth(1).expect("a pk column");
        // Each `code` span of the pk column, up to its first `#`.
        for code in pk.split('`').skip(1).step_by(2) {
            let prefix = code.split_inclusive('#').next().unwrap_or(code);
            assert!(prefix.ends_with('#'), "{row}: {code}");
            named.insert(prefix.to_owned());
        }
    }
    let partitions: BTreeSet<String> = keys::PARTITIONS.iter().map(|p| p.to_string()).collect();
    assert_eq!(named, partitions);
}

/// Every `<NAME>_ARN` variable a function gets names a secret it may read, and it may read no
/// other: its `secretsmanager:GetSecretValue` resources are exactly its secrets' ARNs. No secret
/// value is put in an environment (no `{{resolve:secretsmanager:…}}`), and each function's
/// configuration reads (with every secret stored) as the code expects.
#[test]
fn each_function_reads_exactly_its_own_secrets_at_run_time() {
    let template = Template::load().unwrap();
    assert!(
        !renji_local::template::TEMPLATE.contains("resolve:secretsmanager"),
        "a secret value resolved into the template"
    );
    let refs = |v: &Value| -> BTreeSet<String> {
        let items = match v {
            Value::Sequence(s) => s.clone(),
            other => vec![other.clone()],
        };
        items
            .iter()
            .map(|v| match v {
                Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str().unwrap().to_owned(),
                other => panic!("a secret resource that is not a !Ref: {other:?}"),
            })
            .collect()
    };
    let root: Value = serde_yaml::from_str(renji_local::template::TEMPLATE).unwrap();
    let parameters = &root["Parameters"];
    for function in template.function_binaries().keys() {
        let env = template.function_env(function);
        let wanted: BTreeSet<String> = env
            .iter()
            // An empty value takes a Globals secret away from a function that needs none.
            .filter(|(name, v)| name.ends_with("_ARN") && v.as_str() != Some(""))
            .flat_map(|(_, v)| refs(v))
            .collect();
        let statements = template.resource(function).unwrap()["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().unwrap().clone())
            .filter(|s| s["Action"].as_str() == Some("secretsmanager:GetSecretValue"))
            .collect::<Vec<_>>();
        // One statement naming exactly its secrets; none for a function without secrets.
        assert_eq!(
            statements.len(),
            usize::from(!wanted.is_empty()),
            "{function}: one GetSecretValue statement, or none"
        );
        if let Some(statement) = statements.first() {
            assert_eq!(refs(&statement["Resource"]), wanted, "{function}");
        }

        for literal in [
            "RENJI_SESSION_SECRET",
            "WECHAT_SECRET",
            "WECOM_SECRET",
            "RENJI_VERIFIER_TOKEN",
            "RENJI_PII_KEYS",
            "TENCENT_IM_SECRET",
        ] {
            assert!(
                env.iter().all(|(name, _)| name != literal),
                "{function}: {literal} holds a secret value; give {literal}_ARN"
            );
        }
        let values: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(name, v)| {
                // A !Ref parameter stands for its default, or else a value of its kind (as_str
                // would give the parameter's name).
                let default = match v {
                    Value::Tagged(t) if t.tag == "!Ref" => {
                        let param = &parameters[t.value.as_str().unwrap()];
                        match (&param["Default"], &param["MinValue"]) {
                            (Value::String(d), _) => Some(d.clone()),
                            (Value::Number(n), _) => Some(n.to_string()),
                            // A number without a default: its least value.
                            (_, Value::Number(min)) => Some(min.to_string()),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let value = match (v, default) {
                    (Value::String(plain), _) => plain.to_owned(),
                    (_, Some(default)) => default,
                    _ if name.ends_with("_ARN") => {
                        "arn:aws:secretsmanager:us-east-1:123456789012:secret:x".into()
                    }
                    _ => "https://example.test".into(),
                };
                (name.clone(), value)
            })
            .collect();
        let config = renji_shared::config::Config::from_lookup(|n| values.get(n).cloned())
            .unwrap_or_else(|e| panic!("{function}: {e}"));
        // Functions that serve members read the session keys; the others may not.
        let serves_members = template.routes().iter().any(|r| {
            r.function == *function
                && !r.key().starts_with("POST /v1/payments/")
                && !r.key().ends_with(" /v1/wechat/events")
        });
        assert_eq!(
            matches!(
                config.session_secret,
                Some(renji_shared::config::SecretSetting::Stored(_))
            ),
            serves_members,
            "{function}"
        );
    }
}

/// Every `dynamodb:LeadingKeys` pattern of the template names a partition family of the keys
/// module (`store/keys.rs`), so a renamed prefix cannot leave a grant behind that matches nothing.
#[test]
fn iam_partitions_are_the_keys_modules() {
    let template = Template::load().unwrap();
    let table = template.table_resource().unwrap().to_owned();
    for function in template.function_binaries().keys() {
        let policy = renji_local::policy::Policy::of(&template, function, &table).unwrap();
        for pattern in policy.table_partitions() {
            assert!(
                keys::PARTITIONS
                    .iter()
                    .any(|prefix| pattern.starts_with(prefix) && pattern.ends_with('*')),
                "{function}: {pattern} is not a partition family of store/keys.rs"
            );
        }
    }
}

/// The `Order` schema of `openapi.yaml` names exactly the fields of an order's view, and the
/// other party's card (`buyer` for the seller, `seller` for the buyer).
#[test]
fn openapi_order_schema_matches_the_view() {
    use renji_shared::domain::orders::{create, view, Role};
    let spec = openapi();
    let names = |schema: &Value| -> BTreeSet<String> {
        schema["properties"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    };
    let seller = renji_shared::ids::UserId::generate();
    let listing: renji_shared::domain::listings::Listing =
        serde_json::from_value(serde_json::json!({
            "id": renji_shared::ids::ListingId::generate(), "owner_id": seller, "kind": "service",
            "title": "t", "description": "", "category": "photography", "city": "北京",
            "price_fen": 100, "images": ["https://img.renji.world/l/1.jpg"],
            "status": "published", "version": 1, "created_at": "", "updated_at": "",
        }))
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let body: create::NewOrder = serde_json::from_value(serde_json::json!({
        "listing_id": listing.id, "quantity": 1, "remark": "",
    }))
    .unwrap();
    let checked = body.check(now).unwrap();
    let buyer = renji_shared::ids::UserId::generate();
    let order = create::new_order(
        &listing,
        &buyer,
        &checked,
        &Default::default(),
        &Default::default(),
        now,
    )
    .unwrap();
    let mut viewed = BTreeSet::new();
    for role in [Role::Buyer, Role::Seller] {
        let v = view::with_card(&order, role, None);
        viewed.extend(v.as_object().unwrap().keys().cloned());
    }
    let schemas = &spec["components"]["schemas"];
    assert_eq!(names(&schemas["Order"]), viewed);
    assert_eq!(
        names(&schemas["OrderListing"]),
        order.view()["listing"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    );
}

/// The ticket schemas of `openapi.yaml` name exactly the fields of what a member is shown: a
/// ticket (its summary, and the history besides) and a message, a member's or staff's.
#[test]
fn openapi_ticket_schemas_match_the_views() {
    use renji_shared::domain::tickets::{list, Sender, Ticket, TicketMessage};
    let spec = openapi();
    let names = |schema: &Value| -> BTreeSet<String> {
        schema["properties"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    };
    let keys = |value: &serde_json::Value| -> BTreeSet<String> {
        value.as_object().unwrap().keys().cloned().collect()
    };
    let author = renji_shared::ids::UserId::generate();
    let ticket: Ticket = serde_json::from_value(serde_json::json!({
        "id": renji_shared::ids::TicketId::generate(), "kind": "other", "subject": "s",
        "author_id": author, "status": "open", "created_at": "", "updated_at": "",
        "due_at": 0, "messages": 1, "version": 1,
    }))
    .unwrap();
    let message = |from| TicketMessage {
        id: "01j".into(),
        from,
        user_id: (from == Sender::Member).then(|| author.clone()),
        staff_id: renji_shared::ids::StaffId::parse("zhangsan"),
        text: "t".into(),
        images: vec![],
        holds: Default::default(),
        created_at: String::new(),
        text_review: None,
    };
    let messages = [message(Sender::Member), message(Sender::Staff)];
    let schemas = &spec["components"]["schemas"];
    assert_eq!(names(&schemas["TicketSummary"]), keys(&ticket.summary()));
    let mut full = names(&schemas["TicketSummary"]);
    full.extend(names(&schemas["Ticket"]["allOf"][1]));
    assert_eq!(full, keys(&list::member_view(&ticket, &messages, &author)));
    let shown: BTreeSet<String> = messages
        .iter()
        // As the writer sees their own message: with its `text_review` and `media_states`.
        .flat_map(|m| keys(&m.member_view(Some(&author))))
        .collect();
    assert_eq!(names(&schemas["TicketMessage"]), shown);
}

/// The `Review` schema of `openapi.yaml` names exactly the fields of a review's author's view
/// (the public view, `text_review` and `media_states`).
#[test]
fn openapi_review_schema_matches_the_view() {
    use renji_shared::domain::reviews::Review;
    let spec = openapi();
    let names: BTreeSet<String> = spec["components"]["schemas"]["Review"]["properties"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let author = renji_shared::ids::UserId::generate();
    let review: Review = serde_json::from_value(serde_json::json!({
        "id": renji_shared::ids::ReviewId::generate(), "order_id": "01KB5Q0Z3M8RWJ6PQ4N7T2XY",
        "listing_id": renji_shared::ids::ListingId::generate(), "listing_title": "t",
        "seller_id": renji_shared::ids::UserId::generate(),
        "author_id": author, "rating": 5, "text": "",
        "created_at": "2026-11-29T12:00:00Z", "version": 1,
    }))
    .unwrap();
    let public: BTreeSet<String> = review
        // As others see it: no `text_review` state, no `media_states`.
        .view(None, None)
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        names.difference(&public).collect::<Vec<_>>(),
        ["media_states", "text_review"],
        "only the author sees more"
    );
    let viewed: BTreeSet<String> = review
        .author_view(None)
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(names, viewed);
}
