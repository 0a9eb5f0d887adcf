//! The DynamoDB adapter (production, and DynamoDB Local in tests).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem,
    Update,
};
use aws_sdk_dynamodb::Client;
use serde_json::{Number, Value};

use super::schema::TableSpec;
use super::{
    request_token, validate_batch, validate_key, validate_token, validate_transaction, Condition,
    Cursor, Item, Key, Labelled, Page, Query, SortKey, Store, StoreError, Write, PK, SK,
};

/// How often a transaction cancelled by a conflict is tried again (each time as a new attempt,
/// with a new client request token unless the caller gave one).
const TRANSACTION_RETRIES: u32 = 3;

/// A random byte for backoff jitter, so retrying writers do not collide again in step.
fn ring_jitter() -> u8 {
    use ring::rand::SecureRandom;
    let mut byte = [0u8; 1];
    let _ = ring::rand::SystemRandom::new().fill(&mut byte);
    byte[0]
}

pub struct DynamoStore {
    client: Client,
    table_name: String,
    table: TableSpec,
}

impl DynamoStore {
    pub fn new(client: Client, table_name: impl Into<String>, table: TableSpec) -> Self {
        DynamoStore {
            client,
            table_name: table_name.into(),
            table,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn put(&self, item: &Item, condition: &Option<Labelled>) -> Result<Put, StoreError> {
        let key = Key::of(item).ok_or_else(|| StoreError::Invalid("item without key".into()))?;
        validate_key(&key)?;
        let mut expr = Expr::default();
        let condition = condition.as_ref().map(|c| expr.condition(&c.condition));
        Put::builder()
            .table_name(&self.table_name)
            .set_item(Some(to_attrs(item)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(invalid)
    }

    fn update(
        &self,
        key: &Key,
        set: &Item,
        add: &[(String, i64)],
        remove: &[String],
        condition: &Option<Labelled>,
    ) -> Result<Update, StoreError> {
        validate_key(key)?;
        let touches_key = set.keys().chain(add.iter().map(|(n, _)| n)).chain(remove);
        if touches_key.into_iter().any(|n| n == PK || n == SK) {
            return Err(StoreError::Invalid(
                "an update cannot change the key".into(),
            ));
        }
        let mut expr = Expr::default();
        let mut clauses = Vec::new();
        if !set.is_empty() {
            let parts: Vec<String> = set
                .iter()
                .map(|(n, v)| format!("{} = {}", expr.name(n), expr.value(to_attr(v))))
                .collect();
            clauses.push(format!("SET {}", parts.join(", ")));
        }
        if !add.is_empty() {
            let parts: Vec<String> = add
                .iter()
                .map(|(n, d)| {
                    format!(
                        "{} {}",
                        expr.name(n),
                        expr.value(AttributeValue::N(d.to_string()))
                    )
                })
                .collect();
            clauses.push(format!("ADD {}", parts.join(", ")));
        }
        if !remove.is_empty() {
            let parts: Vec<String> = remove.iter().map(|n| expr.name(n)).collect();
            clauses.push(format!("REMOVE {}", parts.join(", ")));
        }
        if clauses.is_empty() {
            return Err(StoreError::Invalid("an update that changes nothing".into()));
        }
        let condition = condition.as_ref().map(|c| expr.condition(&c.condition));
        Update::builder()
            .table_name(&self.table_name)
            .set_key(Some(key_attrs(key)))
            .update_expression(clauses.join(" "))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(invalid)
    }

    fn delete(&self, key: &Key, condition: &Option<Labelled>) -> Result<Delete, StoreError> {
        validate_key(key)?;
        let mut expr = Expr::default();
        let condition = condition.as_ref().map(|c| expr.condition(&c.condition));
        Delete::builder()
            .table_name(&self.table_name)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(invalid)
    }

    fn check(&self, key: &Key, condition: &Condition) -> Result<ConditionCheck, StoreError> {
        validate_key(key)?;
        let mut expr = Expr::default();
        let condition = expr.condition(condition);
        ConditionCheck::builder()
            .table_name(&self.table_name)
            .set_key(Some(key_attrs(key)))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(invalid)
    }

    async fn query_once(
        &self,
        query: &Query,
        start: Option<HashMap<String, AttributeValue>>,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let (pk_attr, sk_attr) = match query.index {
            Some(name) => {
                let index = self
                    .table
                    .index(name)
                    .ok_or_else(|| StoreError::Invalid(format!("unknown index {name}")))?;
                (index.pk, index.sk)
            }
            None => (PK, SK),
        };
        let mut expr = Expr::default();
        let mut key_condition = format!(
            "{} = {}",
            expr.name(pk_attr),
            expr.value(AttributeValue::S(query.partition.clone()))
        );
        let s = |v: &String| AttributeValue::S(v.clone());
        let sort = match &query.sort {
            SortKey::Any => None,
            SortKey::Prefix(p) => Some(format!(
                "begins_with({}, {})",
                expr.name(sk_attr),
                expr.value(s(p))
            )),
            SortKey::Between(a, b) => Some(format!(
                "{} BETWEEN {} AND {}",
                expr.name(sk_attr),
                expr.value(s(a)),
                expr.value(s(b))
            )),
            SortKey::Below(b) => Some(format!("{} < {}", expr.name(sk_attr), expr.value(s(b)))),
            SortKey::Above(a) => Some(format!("{} > {}", expr.name(sk_attr), expr.value(s(a)))),
        };
        if let Some(sort) = sort {
            key_condition = format!("{key_condition} AND {sort}");
        }
        let out = self
            .client
            .query()
            .table_name(&self.table_name)
            .set_index_name(query.index.map(str::to_owned))
            // Only the table offers strongly consistent queries.
            .consistent_read(query.index.is_none())
            .key_condition_expression(key_condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .scan_index_forward(query.ascending)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| map_error(e, &[]))?;
        let more = out.last_evaluated_key().is_some();
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_attrs)
            .collect();
        Ok((items, more))
    }
}

impl DynamoStore {
    /// Runs a transaction, trying again after a conflict. Every attempt carries a client request
    /// token, which the SDK's own retries of that attempt resend, so DynamoDB applies it at most
    /// once: a fresh token per attempt, or the caller's on every attempt (a cancelled attempt
    /// applied nothing and spent no token, so trying it again with the same one is safe).
    async fn transact_attempts(
        &self,
        token: Option<&str>,
        writes: &[Write],
    ) -> Result<(), StoreError> {
        validate_transaction(writes)?;
        let labels: Vec<&'static str> = writes.iter().map(Write::label).collect();
        let mut items = Vec::with_capacity(writes.len());
        for write in writes {
            let item = match write {
                Write::Put { item, condition } => {
                    TransactWriteItem::builder().put(self.put(item, condition)?)
                }
                Write::Update {
                    key,
                    set,
                    add,
                    remove,
                    condition,
                } => TransactWriteItem::builder()
                    .update(self.update(key, set, add, remove, condition)?),
                Write::Delete { key, condition } => {
                    TransactWriteItem::builder().delete(self.delete(key, condition)?)
                }
                Write::Check { key, condition, .. } => {
                    TransactWriteItem::builder().condition_check(self.check(key, condition)?)
                }
            };
            items.push(item.build());
        }
        // A transaction cancelled by a conflicting one applied nothing, so it is safe to retry;
        // concurrent favourites of one listing meet this on DynamoDB.
        let mut attempt = 0u32;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(token.map_or_else(request_token, str::to_owned))
                .send()
                .await
                .map(drop)
                .map_err(|e| map_error(e, &labels));
            match result {
                Err(StoreError::Conflict) if attempt < TRANSACTION_RETRIES => {
                    attempt += 1;
                    let jitter = u64::from(ring_jitter());
                    tokio::time::sleep(std::time::Duration::from_millis(
                        (10 << attempt) + jitter % 10,
                    ))
                    .await;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table_name)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| map_error(e, &[]))?;
            all.extend(out.items.unwrap_or_default().into_iter().map(from_attrs));
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(all),
            }
        }
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        validate_key(key)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_error(e, &[]))?;
        Ok(out.item.map(from_attrs))
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        validate_batch(keys)?;
        let mut found: HashMap<Key, Item> = HashMap::new();
        let mut unique: Vec<Key> = keys.to_vec();
        unique.sort();
        unique.dedup();
        let mut pending: Vec<HashMap<String, AttributeValue>> =
            unique.iter().map(key_attrs).collect();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(invalid)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table_name, request)
                .send()
                .await
                .map_err(|e| map_error(e, &[]))?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(&self.table_name))
                .unwrap_or_default()
            {
                let item = from_attrs(item);
                if let Some(key) = Key::of(&item) {
                    found.insert(key, item);
                }
            }
            // DynamoDB may leave keys unprocessed under load: retry them with a short backoff.
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table_name))
                .map(|k| k.keys)
                .unwrap_or_default();
            if !pending.is_empty() {
                attempt += 1;
                if attempt > 5 {
                    return Err(StoreError::Throttled);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn write(&self, write: Write) -> Result<Option<Item>, StoreError> {
        let c = &self.client;
        let labels = [write.label()];
        match &write {
            Write::Put { item, condition } => {
                let p = self.put(item, condition)?;
                c.put_item()
                    .table_name(p.table_name)
                    .set_item(Some(p.item))
                    .set_condition_expression(p.condition_expression)
                    .set_expression_attribute_names(p.expression_attribute_names)
                    .set_expression_attribute_values(p.expression_attribute_values)
                    .send()
                    .await
                    .map(|_| Some(item.clone()))
                    .map_err(|e| map_error(e, &labels))
            }
            Write::Update {
                key,
                set,
                add,
                remove,
                condition,
            } => {
                let u = self.update(key, set, add, remove, condition)?;
                c.update_item()
                    .table_name(u.table_name)
                    .set_key(Some(u.key))
                    .update_expression(u.update_expression)
                    .set_condition_expression(u.condition_expression)
                    .set_expression_attribute_names(u.expression_attribute_names)
                    .set_expression_attribute_values(u.expression_attribute_values)
                    .return_values(ReturnValue::AllNew)
                    .send()
                    .await
                    .map(|out| out.attributes.map(from_attrs))
                    .map_err(|e| map_error(e, &labels))
            }
            Write::Delete { key, condition } => {
                let d = self.delete(key, condition)?;
                c.delete_item()
                    .table_name(d.table_name)
                    .set_key(Some(d.key))
                    .set_condition_expression(d.condition_expression)
                    .set_expression_attribute_names(d.expression_attribute_names)
                    .set_expression_attribute_values(d.expression_attribute_values)
                    .send()
                    .await
                    .map(|_| None)
                    .map_err(|e| map_error(e, &labels))
            }
            Write::Check { .. } => Err(StoreError::Invalid(
                "a condition check is only valid in a transaction".into(),
            )),
        }
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.transact_attempts(None, &writes).await
    }

    async fn transact_with_token(&self, token: &str, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_token(token)?;
        self.transact_attempts(Some(token), &writes).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let limit = query.limit.max(1);
        // A cursor narrows the query's range, never widens it (DynamoDB would refuse a start key
        // outside the key condition): one before the range is no narrowing at all, one past its
        // end leaves nothing.
        let mut cursor = query.cursor.as_ref();
        if let Some(c) = cursor {
            let at = c.sort_value(&query, &self.table).unwrap_or_default();
            let before = if query.ascending {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            };
            match query.sort.locate(at) {
                std::cmp::Ordering::Equal => {}
                o if o == before => cursor = None,
                _ => return Ok(Page::default()),
            }
        }
        let mut start = cursor.map(|c| {
            c.attrs()
                .iter()
                .map(|(n, v)| (n.clone(), AttributeValue::S(v.clone())))
                .collect::<HashMap<_, _>>()
        });
        // Ask for one more than the page so `next` is exact; DynamoDB may stop early at 1 MB.
        let mut items: Vec<Item> = Vec::new();
        loop {
            let want = limit + 1 - items.len();
            let (got, more) = self.query_once(&query, start.take(), want).await?;
            items.extend(got);
            if items.len() > limit || !more {
                break;
            }
            let last = items
                .last()
                .and_then(|i| Cursor::after_item(i, &query, &self.table));
            match last {
                Some(c) => {
                    start = Some(
                        c.attrs()
                            .iter()
                            .map(|(n, v)| (n.clone(), AttributeValue::S(v.clone())))
                            .collect(),
                    )
                }
                None => break,
            }
        }
        let next = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .and_then(|i| Cursor::after_item(i, &query, &self.table))
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

/// Collects placeholder names and values for one expression.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, name: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, n)| n.as_str() == name) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), name.to_owned());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn condition(&mut self, condition: &Condition) -> String {
        match condition {
            Condition::Absent => format!("attribute_not_exists({})", self.name(PK)),
            Condition::Present => format!("attribute_exists({})", self.name(PK)),
            Condition::Equals(n, v) => format!("{} = {}", self.name(n), self.value(to_attr(v))),
            Condition::Has(n) => format!("attribute_exists({})", self.name(n)),
            Condition::Lacks(n) => format!("attribute_not_exists({})", self.name(n)),
            Condition::AtLeast(n, b) => format!(
                "{} >= {}",
                self.name(n),
                self.value(AttributeValue::N(b.to_string()))
            ),
            // Unparenthesised: `All` puts each part in parentheses, and DynamoDB refuses
            // redundant ones (`((a OR b))`).
            Condition::Under(n, b) => {
                let name = self.name(n);
                let bound = self.value(AttributeValue::N(b.to_string()));
                format!("attribute_not_exists({name}) OR {name} < {bound}")
            }
            Condition::All(all) if all.is_empty() => {
                let pk = self.name(PK);
                format!("(attribute_exists({pk}) OR attribute_not_exists({pk}))")
            }
            Condition::All(all) => all
                .iter()
                .map(|c| format!("({})", self.condition(c)))
                .collect::<Vec<_>>()
                .join(" AND "),
        }
    }

    // DynamoDB rejects empty maps, so absent placeholders are sent as nothing.
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn key_attrs(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn to_attrs(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()
}

fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attr).collect()),
        Value::Object(o) => AttributeValue::M(to_attrs(o)),
    }
}

fn from_attrs(attrs: HashMap<String, AttributeValue>) -> Item {
    attrs.into_iter().map(|(k, v)| (k, from_attr(v))).collect()
}

fn from_attr(value: AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::String(s),
        AttributeValue::N(n) => number(&n),
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::L(l) => Value::Array(l.into_iter().map(from_attr).collect()),
        AttributeValue::M(m) => Value::Object(from_attrs(m)),
        AttributeValue::Ss(ss) => Value::Array(ss.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(ns) => Value::Array(ns.iter().map(|n| number(n)).collect()),
        _ => Value::Null,
    }
}

fn number(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::Number(i.into());
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

/// A failed call as a [`StoreError`]; `labels` are the labels of the call's writes, in order
/// (DynamoDB names a failed condition by its position: this is the only place positions exist).
fn map_error<E>(err: aws_sdk_dynamodb::error::SdkError<E>, labels: &[&'static str]) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    aws_sdk_dynamodb::Error: From<aws_sdk_dynamodb::error::SdkError<E>>,
{
    classify(&err.into(), labels)
}

fn classify(err: &aws_sdk_dynamodb::Error, labels: &[&'static str]) -> StoreError {
    use aws_sdk_dynamodb::Error as E;
    let label = |i: usize| StoreError::ConditionFailed {
        label: labels.get(i).copied().unwrap_or_default(),
    };
    let throttling = |code: Option<&str>| {
        matches!(
            code,
            Some(
                "ThrottlingError"
                    | "ThrottlingException"
                    | "ProvisionedThroughputExceeded"
                    | "RequestLimitExceeded"
            )
        )
    };
    match err {
        E::ConditionalCheckFailedException(_) => label(0),
        E::TransactionCanceledException(e) => {
            let reasons = e.cancellation_reasons();
            // With several failed conditions, the first in the transaction's order is named.
            if let Some(i) = reasons
                .iter()
                .position(|r| r.code() == Some("ConditionalCheckFailed"))
            {
                label(i)
            } else if reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"))
            {
                StoreError::Conflict
            } else if reasons.iter().any(|r| throttling(r.code())) {
                StoreError::Throttled
            } else if reasons.iter().any(|r| r.code() == Some("ValidationError")) {
                StoreError::Invalid("a write was refused by DynamoDB validation".into())
            } else {
                StoreError::Unavailable(format!(
                    "transaction cancelled: {:?}",
                    reasons.iter().map(|r| r.code()).collect::<Vec<_>>()
                ))
            }
        }
        E::IdempotentParameterMismatchException(_) => StoreError::IdempotentMismatch,
        // Another transaction holds the items, or an attempt with this token is still running.
        E::TransactionConflictException(_) | E::TransactionInProgressException(_) => {
            StoreError::Conflict
        }
        E::ProvisionedThroughputExceededException(_)
        | E::RequestLimitExceeded(_)
        | E::ThrottlingException(_) => StoreError::Throttled,
        other if throttling(other.code()) => StoreError::Throttled,
        other if other.code() == Some("ValidationException") => StoreError::Invalid(format!(
            "rejected by DynamoDB validation {:?}",
            other.message()
        )),
        other => {
            StoreError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::error::{
        ConditionalCheckFailedException, IdempotentParameterMismatchException, InternalServerError,
        ProvisionedThroughputExceededException, RequestLimitExceeded, ThrottlingException,
        TransactionCanceledException, TransactionConflictException, TransactionInProgressException,
    };
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::Error as E;

    fn cancelled(codes: &[&str]) -> E {
        let reasons = codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect();
        E::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons))
                .build(),
        )
    }

    fn unhandled(code: &str) -> E {
        E::from(TransactWriteItemsError::generic(
            ErrorMetadata::builder().code(code).build(),
        ))
    }

    #[test]
    fn each_dynamodb_error_has_a_clear_store_error() {
        let labels = ["first", "second", "third"];
        let cases: Vec<(E, StoreError)> = vec![
            (
                E::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder().build(),
                ),
                StoreError::ConditionFailed { label: "first" },
            ),
            (
                cancelled(&["None", "ConditionalCheckFailed", "None"]),
                StoreError::ConditionFailed { label: "second" },
            ),
            (
                cancelled(&["None", "None", "ConditionalCheckFailed"]),
                StoreError::ConditionFailed { label: "third" },
            ),
            (
                cancelled(&["TransactionConflict", "None", "None"]),
                StoreError::Conflict,
            ),
            (
                cancelled(&["None", "ThrottlingError", "None"]),
                StoreError::Throttled,
            ),
            (
                cancelled(&["ProvisionedThroughputExceeded", "None", "None"]),
                StoreError::Throttled,
            ),
            (
                E::TransactionConflictException(TransactionConflictException::builder().build()),
                StoreError::Conflict,
            ),
            (
                E::TransactionInProgressException(
                    TransactionInProgressException::builder().build(),
                ),
                StoreError::Conflict,
            ),
            (
                E::IdempotentParameterMismatchException(
                    IdempotentParameterMismatchException::builder().build(),
                ),
                StoreError::IdempotentMismatch,
            ),
            (
                E::ThrottlingException(ThrottlingException::builder().build()),
                StoreError::Throttled,
            ),
            (
                E::ProvisionedThroughputExceededException(
                    ProvisionedThroughputExceededException::builder().build(),
                ),
                StoreError::Throttled,
            ),
            (
                E::RequestLimitExceeded(RequestLimitExceeded::builder().build()),
                StoreError::Throttled,
            ),
            (unhandled("ThrottlingException"), StoreError::Throttled),
        ];
        for (error, expected) in cases {
            assert_eq!(classify(&error, &labels), expected, "{error:?}");
        }
        assert!(matches!(
            classify(&unhandled("ValidationException"), &labels),
            StoreError::Invalid(_)
        ));
        assert!(matches!(
            classify(&cancelled(&["ValidationError", "None", "None"]), &labels),
            StoreError::Invalid(_)
        ));
        assert!(matches!(
            classify(
                &E::InternalServerError(InternalServerError::builder().build()),
                &labels
            ),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(&cancelled(&["None", "None", "None"]), &labels),
            StoreError::Unavailable(_)
        ));
    }
}
