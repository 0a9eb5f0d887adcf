//! The DynamoDB permissions `template.yaml` gives each function, enforced in the local server: a
//! function's handler reads and writes through a store that refuses what its deployed IAM role
//! would refuse — an action its statements do not list, a partition outside their
//! `dynamodb:LeadingKeys`, an index it may not query. So every test over HTTP, on both stores,
//! also checks that the template's IAM is wide enough, and `tests/drift.rs` that it is no wider
//! than the code needs.
//!
//! A refusal is a `StoreError::Invalid` naming the function, the action and the partition (a 500,
//! logged), as `AccessDeniedException` is a 500 in Lambda.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use renji_shared::store::{DynStore, Item, Key, Page, Query, Store, StoreError, Write};
use serde_yaml::Value;

use crate::template::Template;

/// Where a statement applies.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Resource {
    Table,
    Index(String),
}

#[derive(Clone, Debug)]
struct Statement {
    actions: Vec<String>,
    resources: Vec<Resource>,
    /// `ForAllValues:StringLike` patterns of `dynamodb:LeadingKeys`; `None`: any partition.
    leading_keys: Option<Vec<String>>,
}

/// One function's DynamoDB statements (its other statements are not the store's concern).
#[derive(Clone, Debug)]
pub struct Policy {
    function: String,
    statements: Vec<Statement>,
}

/// `value`, or each element of it when it is a list.
fn each(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// `!GetAtt <table>.Arn` is the table; `!Sub "${<table>.Arn}/index/<name>"` an index.
fn resource(value: &Value, table: &str) -> Option<Resource> {
    let Value::Tagged(tagged) = value else {
        return None;
    };
    let text = tagged.value.as_str()?;
    match tagged.tag.to_string().as_str() {
        "!GetAtt" if text == format!("{table}.Arn") => Some(Resource::Table),
        "!Sub" => text
            .strip_prefix(&format!("${{{table}.Arn}}/index/"))
            .map(|index| Resource::Index(index.to_owned())),
        _ => None,
    }
}

/// IAM's `StringLike`: `*` any run of characters, `?` any one.
fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

impl Policy {
    /// The statements of `function` in `template` on the table `table` (its logical id).
    pub fn of(template: &Template, function: &str, table: &str) -> Result<Policy, String> {
        let resource_of = template
            .resource(function)
            .ok_or_else(|| format!("no resource {function}"))?;
        let mut statements = Vec::new();
        let policies = resource_of
            .get("Properties")
            .and_then(|p| p.get("Policies"))
            .map(each)
            .unwrap_or_default();
        for policy in policies {
            for statement in policy.get("Statement").map(each).unwrap_or_default() {
                if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
                    return Err(format!("{function}: only Allow statements are understood"));
                }
                let actions: Vec<String> = statement
                    .get("Action")
                    .map(each)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|a| a.as_str()?.strip_prefix("dynamodb:").map(str::to_owned))
                    .collect();
                if actions.is_empty() {
                    continue;
                }
                let resources: Vec<Resource> = statement
                    .get("Resource")
                    .map(each)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| {
                        resource(r, table).ok_or_else(|| {
                            format!("{function}: a DynamoDB resource that is not {table}'s: {r:?}")
                        })
                    })
                    .collect::<Result<_, _>>()?;
                let leading_keys = match statement.get("Condition") {
                    None => None,
                    Some(condition) => {
                        let keys = condition
                            .get("ForAllValues:StringLike")
                            .and_then(|c| c.get("dynamodb:LeadingKeys"))
                            .filter(|_| condition.as_mapping().is_some_and(|m| m.len() == 1))
                            .ok_or_else(|| {
                                format!(
                                    "{function}: only ForAllValues:StringLike dynamodb:LeadingKeys \
                                     conditions are understood"
                                )
                            })?;
                        Some(
                            each(keys)
                                .into_iter()
                                .filter_map(|k| k.as_str().map(str::to_owned))
                                .collect(),
                        )
                    }
                };
                statements.push(Statement {
                    actions,
                    resources,
                    leading_keys,
                });
            }
        }
        Ok(Policy {
            function: function.to_owned(),
            statements,
        })
    }

    /// Whether `action` on `resource` for partition `pk` is allowed.
    fn allows(&self, action: &str, resource: &Resource, pk: &str) -> bool {
        self.statements.iter().any(|s| {
            s.actions.iter().any(|a| a == action)
                && s.resources.contains(resource)
                && s.leading_keys
                    .as_ref()
                    .is_none_or(|patterns| patterns.iter().any(|p| like(p, pk)))
        })
    }

    /// The `LeadingKeys` patterns of the statements on the table (for the drift test).
    pub fn table_partitions(&self) -> BTreeSet<String> {
        self.statements
            .iter()
            .filter(|s| s.resources.contains(&Resource::Table))
            .flat_map(|s| s.leading_keys.clone().unwrap_or_else(|| vec!["*".into()]))
            .collect()
    }

    /// The actions granted, with `index/<name>` for an index's (for the drift test).
    pub fn actions(&self) -> BTreeSet<String> {
        self.statements
            .iter()
            .flat_map(|s| {
                s.resources.iter().flat_map(move |r| {
                    s.actions.iter().map(move |a| match r {
                        Resource::Table => a.clone(),
                        Resource::Index(i) => format!("{a} index/{i}"),
                    })
                })
            })
            .collect()
    }
}

/// What a function's requests used: actions (as [`Policy::actions`] names them) and the
/// patterns of its `LeadingKeys` that matched.
#[derive(Debug, Default)]
pub struct Used {
    pub actions: BTreeSet<String>,
    pub partitions: BTreeSet<String>,
}

/// A store that refuses what `policy` does not allow, and records what was used.
pub struct PolicyStore {
    inner: DynStore,
    policy: Arc<Policy>,
    used: Arc<Mutex<Used>>,
}

impl PolicyStore {
    pub fn new(inner: DynStore, policy: Policy, used: Arc<Mutex<Used>>) -> Self {
        PolicyStore {
            inner,
            policy: Arc::new(policy),
            used,
        }
    }

    fn check(&self, action: &str, resource: Resource, pk: &str) -> Result<(), StoreError> {
        if !self.policy.allows(action, &resource, pk) {
            let on = match &resource {
                Resource::Table => "the table".to_owned(),
                Resource::Index(i) => format!("index {i}"),
            };
            let message = format!(
                "IAM (template.yaml): {} may not dynamodb:{action} on {on} for partition {pk}",
                self.policy.function
            );
            // Always a bug (the template's statements or the code): said where a test shows it,
            // since tests run without a log subscriber.
            eprintln!("renji-local: {message}");
            return Err(StoreError::Invalid(message));
        }
        if let Ok(mut used) = self.used.lock() {
            used.actions.insert(match &resource {
                Resource::Table => action.to_owned(),
                Resource::Index(i) => format!("{action} index/{i}"),
            });
            if resource == Resource::Table {
                for s in &self.policy.statements {
                    for p in s.leading_keys.iter().flatten() {
                        if s.actions.iter().any(|a| a == action) && like(p, pk) {
                            used.partitions.insert(p.clone());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn check_write(&self, write: &Write, alone: bool) -> Result<(), StoreError> {
        let (action, key) = match write {
            Write::Put { item, .. } => ("PutItem", Key::of(item)),
            Write::Update { key, .. } => ("UpdateItem", Some(key.clone())),
            Write::Delete { key, .. } => ("DeleteItem", Some(key.clone())),
            Write::Check { key, .. } if !alone => ("ConditionCheckItem", Some(key.clone())),
            Write::Check { .. } => return Ok(()),
        };
        let pk = key.map(|k| k.pk).unwrap_or_default();
        self.check(action, Resource::Table, &pk)
    }
}

#[async_trait]
impl Store for PolicyStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.check("GetItem", Resource::Table, &key.pk)?;
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        for key in keys {
            self.check("BatchGetItem", Resource::Table, &key.pk)?;
        }
        self.inner.get_many(keys).await
    }

    async fn write(&self, write: Write) -> Result<Option<Item>, StoreError> {
        self.check_write(&write, true)?;
        self.inner.write(write).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        for write in &writes {
            self.check_write(write, false)?;
        }
        self.inner.transact(writes).await
    }

    async fn transact_with_token(&self, token: &str, writes: Vec<Write>) -> Result<(), StoreError> {
        for write in &writes {
            self.check_write(write, false)?;
        }
        self.inner.transact_with_token(token, writes).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let resource = match query.index {
            None => Resource::Table,
            Some(index) => Resource::Index(index.to_owned()),
        };
        self.check("Query", resource, &query.partition)?;
        self.inner.query(query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_like_matches_as_iam_does() {
        assert!(like("USER#*", "USER#u_1"));
        assert!(like("USER#*", "USER#"));
        assert!(!like("USER#*", "OPENID#o"));
        assert!(like("A?C", "ABC") && !like("A?C", "AC"));
        assert!(like("*", ""));
    }

    #[test]
    fn every_function_of_the_template_has_a_policy_it_can_read() {
        let template = Template::load().unwrap();
        for function in template.function_binaries().keys() {
            let policy = Policy::of(&template, function, "RenjiTable").unwrap();
            assert!(!policy.statements.is_empty(), "{function}");
            // Every function reads some item (alone or in a batch): a member's, or an order
            // (the notify functions, which serve no member).
            assert!(
                ["USER#u_1", "ORDER#01M8KK26ZSJF93T54E36AT91"]
                    .iter()
                    .any(|pk| ["GetItem", "BatchGetItem"]
                        .iter()
                        .any(|action| policy.allows(action, &Resource::Table, pk))),
                "{function}"
            );
            assert!(
                !policy.allows("Scan", &Resource::Table, "USER#u_1"),
                "{function}"
            );
        }
        let auth = Policy::of(&template, "AuthFunction", "RenjiTable").unwrap();
        assert!(auth.allows("GetItem", &Resource::Table, "USER#u_1"));
        assert!(!auth.allows("PutItem", &Resource::Table, "LISTING#l_1"));
        // The notification functions serve no member: no member's data.
        for function in ["WechatPayNotifyFunction", "AlipayNotifyFunction"] {
            let notify = Policy::of(&template, function, "RenjiTable").unwrap();
            assert!(notify.allows(
                "GetItem",
                &Resource::Table,
                "ORDER#01M8KK26ZSJF93T54E36AT91"
            ));
            assert!(
                !notify.allows("GetItem", &Resource::Table, "USER#u_1"),
                "{function}"
            );
        }
    }
}
