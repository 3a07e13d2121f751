//! The table's change stream, read as Lambda's DynamoDB event source mapping
//! reads it: each shard in order, a batch of records handed to the function
//! as a DynamoDB stream event, and on a reported batch item failure the same
//! shard read again from that record (ReportBatchItemFailures), after a short
//! pause, until the function takes it. DynamoDB Local keeps the stream of the
//! table `setup` created with its StreamSpecification.
//!
//! Local data outlives a gateway, so the loop starts at the stream's end
//! (LATEST) for the shards open when it starts, and at the start
//! (TRIM_HORIZON) of shards that open later.

use anyhow::Context as _;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Pause between reads of a shard with nothing new, and after a failed batch.
const IDLE: Duration = Duration::from_millis(150);
/// How often the stream's shards are listed again (DynamoDB Local rolls them over).
const RESCAN: Duration = Duration::from_secs(5);

/// DynamoDB Streams' JSON protocol, spoken directly: the Rust SDK's GetRecords refuses
/// DynamoDB Local's records (an empty map comes as `{}`: "Union did not contain a valid
/// variant"; see [`empty_map_fix`]), and the records' JSON is the shape Lambda hands a
/// function anyway. DynamoDB Local checks no
/// signature; the header says who is asking.
pub struct StreamSource {
    http: reqwest::Client,
    endpoint: String,
    arn: String,
    batch_size: u32,
}

/// Where a shard is read from next.
enum Position {
    Iterator(String),
    /// Closed and read to its end.
    Done,
}

impl StreamSource {
    /// The change stream of `table` (its latest stream).
    pub async fn of_table(endpoints: &crate::local::Endpoints, table: &str, batch_size: u32) -> anyhow::Result<Self> {
        let ddb = aws_sdk_dynamodb::Client::new(&endpoints.dynamodb);
        let described = ddb.describe_table().table_name(table).send().await.with_context(|| format!("table {table} (run setup first)"))?;
        let arn = described.table.and_then(|t| t.latest_stream_arn).with_context(|| format!("table {table} has no stream (run setup)"))?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { http, endpoint: crate::local::dynamodb_endpoint(), arn, batch_size: batch_size.clamp(1, 1000) })
    }

    async fn call(&self, operation: &str, body: Value) -> anyhow::Result<Value> {
        let answer = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDBStreams_20120810.{operation}"))
            .header("authorization", "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
            .json(&body)
            .send()
            .await
            .with_context(|| format!("{operation}: DynamoDB Local did not answer"))?;
        let status = answer.status();
        let value: Value = answer.json().await.with_context(|| format!("{operation}: not JSON"))?;
        anyhow::ensure!(status.is_success(), "{operation}: {status} {value}");
        Ok(value)
    }

    async fn iterator(&self, shard: &str, kind: &str, sequence: Option<&str>) -> anyhow::Result<Option<String>> {
        let mut body = json!({"StreamArn": self.arn, "ShardId": shard, "ShardIteratorType": kind});
        if let Some(seq) = sequence {
            body["SequenceNumber"] = json!(seq);
        }
        let out = self.call("GetShardIterator", body).await?;
        Ok(out["ShardIterator"].as_str().map(str::to_owned))
    }

    /// Adds the shards not known yet: at their end when the run starts, else from their start.
    async fn rescan(&self, shards: &mut BTreeMap<String, Position>, at_start_of_run: bool) -> anyhow::Result<()> {
        let described = self.call("DescribeStream", json!({"StreamArn": self.arn})).await?;
        for shard in described["StreamDescription"]["Shards"].as_array().into_iter().flatten() {
            let Some(id) = shard["ShardId"].as_str() else { continue };
            if shards.contains_key(id) {
                continue;
            }
            let open = shard["SequenceNumberRange"]["EndingSequenceNumber"].is_null();
            if at_start_of_run && !open {
                shards.insert(id.to_owned(), Position::Done);
                continue;
            }
            let kind = if at_start_of_run { "LATEST" } else { "TRIM_HORIZON" };
            let position = self.iterator(id, kind, None).await?.map_or(Position::Done, Position::Iterator);
            shards.insert(id.to_owned(), position);
        }
        Ok(())
    }

    /// Reads every shard and hands each batch to `handle` until `shutdown` says stop.
    pub async fn run<F, Fut>(&self, handle: F, mut shutdown: watch::Receiver<bool>)
    where
        F: Fn(Event) -> Fut,
        Fut: Future<Output = DynamoDbEventResponse>,
    {
        let mut shards = BTreeMap::new();
        if let Err(e) = self.rescan(&mut shards, true).await {
            eprintln!("stream {}: {e:#}", self.arn);
        }
        let mut scanned = Instant::now();
        while !*shutdown.borrow() {
            if scanned.elapsed() > RESCAN {
                if let Err(e) = self.rescan(&mut shards, false).await {
                    eprintln!("stream {}: {e:#}", self.arn);
                }
                scanned = Instant::now();
            }
            let mut busy = false;
            for (shard, position) in shards.iter_mut() {
                let Position::Iterator(iterator) = position else { continue };
                match self.read(shard, iterator, &handle).await {
                    Ok((next, had_records)) => {
                        busy |= had_records;
                        *position = next.map_or(Position::Done, Position::Iterator);
                    }
                    Err(e) => eprintln!("stream shard {shard}: {e:#}"),
                }
            }
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// One batch of one shard: where to read next, and whether there were records.
    async fn read<F, Fut>(&self, shard: &str, iterator: &str, handle: &F) -> anyhow::Result<(Option<String>, bool)>
    where
        F: Fn(Event) -> Fut,
        Fut: Future<Output = DynamoDbEventResponse>,
    {
        let out = self.call("GetRecords", json!({"ShardIterator": iterator, "Limit": self.batch_size})).await?;
        let next = out["NextShardIterator"].as_str().map(str::to_owned);
        let mut raw = out["Records"].clone();
        for record in raw.as_array_mut().into_iter().flatten() {
            for image in ["Keys", "NewImage", "OldImage"] {
                if let Some(Value::Object(attributes)) = record["dynamodb"].get_mut(image) {
                    attributes.values_mut().for_each(empty_map_fix);
                }
            }
        }
        let records: Vec<EventRecord> = serde_json::from_value(raw).context("GetRecords: records not in the shape Lambda hands over")?;
        if records.is_empty() {
            return Ok((next, false));
        }
        let mut event = Event::default();
        event.records = records
            .into_iter()
            .map(|mut r| {
                r.event_source_arn = Some(self.arn.clone());
                r.aws_region = crate::local::REGION.into();
                r
            })
            .collect();
        let response = handle(event).await;
        match response.batch_item_failures.first().and_then(|f| f.item_identifier.clone()) {
            None => Ok((next, true)),
            Some(sequence) => {
                // Lambda retries from the failed record; so does this, after a pause.
                tokio::time::sleep(IDLE).await;
                Ok((self.iterator(shard, "AT_SEQUENCE_NUMBER", Some(&sequence)).await?, true))
            }
        }
    }
}

/// DynamoDB Local writes an empty map attribute into its stream as `{}`, not `{"M":{}}` as
/// DynamoDB does (and Lambda hands over); put it right, at any depth.
fn empty_map_fix(value: &mut Value) {
    let Value::Object(typed) = value else { return };
    if typed.is_empty() {
        *value = json!({"M": {}});
        return;
    }
    if let Some(Value::Object(m)) = typed.get_mut("M") {
        m.values_mut().for_each(empty_map_fix);
    }
    if let Some(Value::Array(l)) = typed.get_mut("L") {
        l.iter_mut().for_each(empty_map_fix);
    }
}
