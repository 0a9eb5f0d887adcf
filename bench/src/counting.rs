//! Counting what a route asks of the store: a decorator over the storage port (every adapter),
//! and an interceptor on the DynamoDB client (the HTTP requests DynamoDB really receives).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use renji_shared::store::{DynStore, Item, Key, Page, Query, Store, StoreError, Write};

/// One call on the port, named by its kind and the kind of item it touches (the sort key up to
/// its first `#`, e.g. `get SESSION`, `write PROFILE`).
pub type Op = String;

fn kind(key: &Key) -> &str {
    key.sk.split('#').next().unwrap_or("")
}

fn write_label(write: &Write) -> String {
    let verb = match write {
        Write::Put { .. } => "put",
        Write::Update { .. } => "update",
        Write::Delete { .. } => "delete",
        Write::Check { .. } => "check",
    };
    match write.key() {
        Some(key) => format!("{verb} {}", kind(&key)),
        None => verb.to_owned(),
    }
}

/// Wraps a store and records every call made through it.
pub struct CountingStore {
    inner: DynStore,
    ops: Mutex<Vec<Op>>,
}

impl CountingStore {
    pub fn new(inner: DynStore) -> Arc<Self> {
        Arc::new(CountingStore {
            inner,
            ops: Mutex::new(Vec::new()),
        })
    }

    /// The calls since the last `take`.
    pub fn take(&self) -> Vec<Op> {
        self.ops
            .lock()
            .map(|mut ops| std::mem::take(&mut *ops))
            .unwrap_or_default()
    }

    fn record(&self, op: String) {
        if let Ok(mut ops) = self.ops.lock() {
            ops.push(op);
        }
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.record(format!("get {}", kind(key)));
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let kinds: Vec<&str> = keys.iter().map(kind).collect();
        self.record(format!("get_many [{}]", kinds.join(", ")));
        self.inner.get_many(keys).await
    }

    async fn write(&self, write: Write) -> Result<Option<Item>, StoreError> {
        self.record(write_label(&write));
        self.inner.write(write).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let labels: Vec<String> = writes.iter().map(write_label).collect();
        self.record(format!("transact [{}]", labels.join(", ")));
        self.inner.transact(writes).await
    }

    async fn transact_with_token(&self, token: &str, writes: Vec<Write>) -> Result<(), StoreError> {
        let labels: Vec<String> = writes.iter().map(write_label).collect();
        self.record(format!("transact [{}]", labels.join(", ")));
        self.inner.transact_with_token(token, writes).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let on = query.index.unwrap_or("table");
        self.record(format!("query {on}"));
        self.inner.query(query).await
    }
}

/// Whether a port call reads or writes, for the per-route targets.
pub fn is_read(op: &str) -> bool {
    op.starts_with("get") || op.starts_with("query")
}

/// Records the operation of every request the DynamoDB client sends (`GetItem`, `Query`, …),
/// retries included.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter {
    requests: Arc<Mutex<Vec<String>>>,
}

impl RequestCounter {
    pub fn take(&self) -> Vec<String> {
        self.requests
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The JSON protocol names the operation in `x-amz-target: DynamoDB_20120810.GetItem`.
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
            .unwrap_or_else(|| "unknown".into());
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(target);
        }
        Ok(())
    }
}

/// Whether a DynamoDB operation reads.
pub fn is_read_request(op: &str) -> bool {
    matches!(op, "GetItem" | "BatchGetItem" | "Query" | "Scan")
}
