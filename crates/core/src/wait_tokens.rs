//! The task tokens of the callback waits, kept until they are completed.
//!
//! WaitForTempCluster, WaitForTempInstances and WaitForSwappedCluster are
//! `lambda:invoke.waitForTaskToken` Tasks ("Wait for a Callback with Task
//! Token", AWS Step Functions Developer Guide,
//! <https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token>).
//! FetchStatus stores one [`WaitToken`] per resource the wait watches, keyed
//! by the resource (`cluster:<id>` / `instance:<id>`) and the kind of wait;
//! CompleteWait, started by an RDS event through EventBridge, finds the
//! tokens of the event's resource here. A wait that times out (no event, or
//! one that was lost) re-invokes FetchStatus, which overwrites the items
//! with its new token.
//!
//! The store is a DynamoDB table (template.yaml `WaitTokensTable`):
//! partition key `resource`, sort key `waitFor`, attributes `token`, `run`
//! (the run payload as JSON text), `resources` (every partition key stored
//! with the same token, so completing one deletes them all) and `expiresAt`
//! (epoch seconds, the table's time to live). DynamoDB deletes expired items
//! only eventually ("Using time to live", DynamoDB developer guide:
//! typically within a few days), so an expired item may still be read; its
//! token then answers `TaskTimedOut` and the item is deleted
//! ([`crate::steps::complete_wait`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::BoxFuture;

use crate::error::{DrError, DrResult};

/// How long a stored token is kept: well past the longest a token can be
/// waited on (the states' `TimeoutSeconds`, 300), so the time to live only
/// removes what nobody completed.
pub const KEEP_SECONDS: i64 = 3600;

/// Capacity units this process's [`DynamoWaitTokens`] consumed, as on-demand
/// tables bill them ("Read/write capacity mode", DynamoDB Developer Guide:
/// a write unit per 1 KB written, a strongly consistent read unit per 4 KB
/// read). A DeleteItem counts one unit (it bills the deleted item's size,
/// which the caller does not see; the items are well under 1 KB). The
/// drill reports them, the latency benchmark prices them.
static READ_UNITS: AtomicU64 = AtomicU64::new(0);
static WRITE_UNITS: AtomicU64 = AtomicU64::new(0);

/// `(read units, write units)` consumed so far by this process.
pub fn units_consumed() -> (u64, u64) {
    (READ_UNITS.load(Ordering::Relaxed), WRITE_UNITS.load(Ordering::Relaxed))
}

fn units(bytes: usize, per: usize) -> u64 {
    bytes.div_ceil(per).max(1) as u64
}

/// One stored task token: one resource of one wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitToken {
    /// `cluster:<id>` or `instance:<id>` (see [`cluster_key`], [`instance_key`]).
    pub resource: String,
    /// The FetchStatus kind (`tempCluster`, `tempInstances`, `existingCluster`).
    pub wait_for: String,
    pub token: String,
    /// The run payload the check needs, as JSON text.
    pub run: String,
    /// Every `resource` stored with this token (this one included).
    pub resources: Vec<String>,
    /// Epoch seconds after which the table's time to live may delete it.
    pub expires_at: i64,
}

/// The partition key of a cluster. RDS stores identifiers in lowercase
/// (DBClusterIdentifier, CreateDBCluster API reference), so keys are too.
pub fn cluster_key(id: &str) -> String {
    format!("cluster:{}", id.to_ascii_lowercase())
}

/// The partition key of a DB instance.
pub fn instance_key(id: &str) -> String {
    format!("instance:{}", id.to_ascii_lowercase())
}

/// A table name DynamoDB accepts: 3-255 characters of `a-z A-Z 0-9 _ - .`
/// (CreateTable API reference, `TableName`).
pub fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Where task tokens are kept (DynamoDB, or [`MemoryWaitTokens`] in tests).
pub trait WaitTokens: Send + Sync {
    /// Stores (or overwrites) one item.
    fn put<'a>(&'a self, item: &'a WaitToken) -> BoxFuture<'a, DrResult<()>>;
    /// Every item of one resource.
    fn query<'a>(&'a self, resource: &'a str) -> BoxFuture<'a, DrResult<Vec<WaitToken>>>;
    /// Deletes one item while it still holds `token`: a wait re-armed since
    /// keeps its newer token.
    fn delete<'a>(
        &'a self,
        resource: &'a str,
        wait_for: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, DrResult<()>>;
}

/// The DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoWaitTokens {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoWaitTokens {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> DrResult<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(DrError::UnexpectedResponse(format!("wait token item lacks the string attribute {name}"))),
    }
}

fn from_item(item: &HashMap<String, AttributeValue>) -> DrResult<WaitToken> {
    let resources = match item.get("resources") {
        Some(AttributeValue::L(l)) => l.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
        _ => Vec::new(),
    };
    let expires_at = match item.get("expiresAt") {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    };
    Ok(WaitToken {
        resource: text(item, "resource")?,
        wait_for: text(item, "waitFor")?,
        token: text(item, "token")?,
        run: text(item, "run")?,
        resources,
        expires_at,
    })
}

impl WaitTokens for DynamoWaitTokens {
    fn put<'a>(&'a self, item: &'a WaitToken) -> BoxFuture<'a, DrResult<()>> {
        Box::pin(async move {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("resource", s(&item.resource))
                .item("waitFor", s(&item.wait_for))
                .item("token", s(&item.token))
                .item("run", s(&item.run))
                .item("resources", AttributeValue::L(item.resources.iter().map(|r| s(r)).collect()))
                .item("expiresAt", AttributeValue::N(item.expires_at.to_string()))
                .send()
                .await
                .map_err(|e| DrError::from_sdk(&format!("PutItem {} {}", self.table, item.resource), e))?;
            let bytes = item.resource.len()
                + item.wait_for.len()
                + item.token.len()
                + item.run.len()
                + item.resources.iter().map(String::len).sum::<usize>()
                + 64; // attribute names and the number
            WRITE_UNITS.fetch_add(units(bytes, 1024), Ordering::Relaxed);
            Ok(())
        })
    }

    fn query<'a>(&'a self, resource: &'a str) -> BoxFuture<'a, DrResult<Vec<WaitToken>>> {
        Box::pin(async move {
            // A resource has at most one item per kind of wait: one page.
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#r = :r")
                .expression_attribute_names("#r", "resource")
                .expression_attribute_values(":r", s(resource))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| DrError::from_sdk(&format!("Query {} {resource}", self.table), e))?;
            let items: Vec<WaitToken> = out.items().iter().map(from_item).collect::<DrResult<_>>()?;
            let bytes = items.iter().map(|i| i.run.len() + i.token.len() + 128).sum::<usize>();
            READ_UNITS.fetch_add(units(bytes, 4096), Ordering::Relaxed);
            Ok(items)
        })
    }

    fn delete<'a>(
        &'a self,
        resource: &'a str,
        wait_for: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, DrResult<()>> {
        Box::pin(async move {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("resource", s(resource))
                .key("waitFor", s(wait_for))
                .condition_expression("#t = :t")
                .expression_attribute_names("#t", "token")
                .expression_attribute_values(":t", s(token))
                .send()
                .await;
            WRITE_UNITS.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(_) => Ok(()),
                // Gone already, or re-armed with a newer token: nothing to delete.
                Err(e)
                    if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(DrError::from_sdk(&format!("DeleteItem {} {resource}", self.table), e)),
            }
        })
    }
}

/// An in-memory store: the test double of the table, same semantics.
#[derive(Debug, Default)]
pub struct MemoryWaitTokens {
    items: Mutex<Vec<WaitToken>>,
}

impl MemoryWaitTokens {
    /// Every item, in the order stored.
    pub fn items(&self) -> Vec<WaitToken> {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl WaitTokens for MemoryWaitTokens {
    fn put<'a>(&'a self, item: &'a WaitToken) -> BoxFuture<'a, DrResult<()>> {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items.retain(|i| !(i.resource == item.resource && i.wait_for == item.wait_for));
        items.push(item.clone());
        Box::pin(async { Ok(()) })
    }

    fn query<'a>(&'a self, resource: &'a str) -> BoxFuture<'a, DrResult<Vec<WaitToken>>> {
        let found = self.items().into_iter().filter(|i| i.resource == resource).collect();
        Box::pin(async { Ok(found) })
    }

    fn delete<'a>(
        &'a self,
        resource: &'a str,
        wait_for: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, DrResult<()>> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|i| !(i.resource == resource && i.wait_for == wait_for && i.token == token));
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::delete_item::{DeleteItemError, DeleteItemOutput};
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;

    fn item() -> WaitToken {
        WaitToken {
            resource: cluster_key("Orders-DR-Next"),
            wait_for: "tempCluster".into(),
            token: "AAAA1".into(),
            run: "{}".into(),
            resources: vec![cluster_key("orders-dr-next")],
            expires_at: 1_800_000_000,
        }
    }

    #[test]
    fn keys_and_table_names() {
        assert_eq!(cluster_key("Orders-DR"), "cluster:orders-dr");
        assert_eq!(instance_key("orders-dr-1"), "instance:orders-dr-1");
        assert!(valid_table_name("aurora-dr-wait-tokens"));
        assert!(!valid_table_name("ab"));
        assert!(!valid_table_name("a table"));
    }

    #[tokio::test]
    async fn the_table_round_trips_an_item_and_a_lost_race_is_not_an_error() {
        let want = item();
        let stored = want.clone();
        let query = mock!(Client::query).then_output(move || {
            let mut m = HashMap::new();
            m.insert("resource".to_owned(), s(&stored.resource));
            m.insert("waitFor".to_owned(), s(&stored.wait_for));
            m.insert("token".to_owned(), s(&stored.token));
            m.insert("run".to_owned(), s(&stored.run));
            m.insert("resources".to_owned(), AttributeValue::L(vec![s(&stored.resources[0])]));
            m.insert("expiresAt".to_owned(), AttributeValue::N(stored.expires_at.to_string()));
            QueryOutput::builder().items(m).build()
        });
        let gone = mock!(Client::delete_item).then_error(|| {
            DeleteItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().message("newer token").build(),
            )
        });
        let deleted = mock!(Client::delete_item).then_output(|| DeleteItemOutput::builder().build());
        let client =
            mock_client!(aws_sdk_dynamodb, aws_smithy_mocks::RuleMode::Sequential, [&query, &gone, &deleted]);
        let table = DynamoWaitTokens::new(client, "tokens");
        assert_eq!(table.query(&want.resource).await.expect("query"), vec![want.clone()]);
        table.delete(&want.resource, &want.wait_for, "AAAA0").await.expect("a newer token is kept");
        table.delete(&want.resource, &want.wait_for, &want.token).await.expect("delete");
        assert_eq!((query.num_calls(), gone.num_calls(), deleted.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn the_memory_store_deletes_only_the_token_it_is_given() {
        let store = MemoryWaitTokens::default();
        store.put(&item()).await.expect("put");
        let newer = WaitToken { token: "AAAA2".into(), ..item() };
        store.put(&newer).await.expect("put overwrites");
        store.delete(&newer.resource, "tempCluster", "AAAA1").await.expect("delete");
        assert_eq!(store.items(), vec![newer.clone()]);
        store.delete(&newer.resource, "tempCluster", "AAAA2").await.expect("delete");
        assert!(store.items().is_empty());
    }
}
