//! Creates the template's table, queues (with DLQ redrive) and SES sender
//! identity on the local stack. Safe to run again: what exists is kept when it
//! matches and rebuilt when the template changed.

use crate::local::{parameter_value, Endpoints};
use crate::template::{TableDef, Template};
use anyhow::Context as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml::Value;
use std::collections::HashMap;

fn s<'a>(v: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    v.get(key).and_then(Value::as_str).with_context(|| format!("{key} missing"))
}

fn key_schema(v: Option<&Value>) -> anyhow::Result<Vec<KeySchemaElement>> {
    v.and_then(Value::as_sequence)
        .context("KeySchema missing")?
        .iter()
        .map(|k| {
            Ok(KeySchemaElement::builder()
                .attribute_name(s(k, "AttributeName")?)
                .key_type(KeyType::from(s(k, "KeyType")?))
                .build()?)
        })
        .collect()
}

/// The table's definition as the DynamoDB API takes it.
pub struct TableSpec {
    pub attributes: Vec<AttributeDefinition>,
    pub keys: Vec<KeySchemaElement>,
    pub indexes: Vec<GlobalSecondaryIndex>,
    pub ttl_attribute: Option<String>,
    /// StreamSpecification.StreamViewType, when the table has a change stream.
    pub stream_view: Option<String>,
}

pub fn table_spec(def: &TableDef) -> anyhow::Result<TableSpec> {
    let p = &def.properties;
    let attributes = p
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .context("AttributeDefinitions missing")?
        .iter()
        .map(|a| {
            Ok(AttributeDefinition::builder()
                .attribute_name(s(a, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(s(a, "AttributeType")?))
                .build()?)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut indexes = Vec::new();
    for g in p.get("GlobalSecondaryIndexes").and_then(Value::as_sequence).into_iter().flatten() {
        let projection = g.get("Projection").context("Projection")?;
        let mut proj = Projection::builder().projection_type(ProjectionType::from(s(projection, "ProjectionType")?));
        for a in projection.get("NonKeyAttributes").and_then(Value::as_sequence).into_iter().flatten() {
            proj = proj.non_key_attributes(a.as_str().context("NonKeyAttributes")?);
        }
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(s(g, "IndexName")?)
                .set_key_schema(Some(key_schema(g.get("KeySchema"))?))
                .projection(proj.build())
                .build()?,
        );
    }
    let ttl = p.get("TimeToLiveSpecification");
    let ttl_attribute = ttl
        .filter(|t| t.get("Enabled").and_then(Value::as_bool) == Some(true))
        .and_then(|t| t.get("AttributeName"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let stream_view = p.get("StreamSpecification").and_then(|s| s.get("StreamViewType")).and_then(Value::as_str).map(str::to_owned);
    Ok(TableSpec { attributes, keys: key_schema(p.get("KeySchema"))?, indexes, ttl_attribute, stream_view })
}

fn stream_spec(view: &str) -> anyhow::Result<aws_sdk_dynamodb::types::StreamSpecification> {
    Ok(aws_sdk_dynamodb::types::StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::from(view))
        .build()?)
}

async fn ensure_table(endpoints: &Endpoints, def: &TableDef) -> anyhow::Result<()> {
    let ddb = aws_sdk_dynamodb::Client::new(&endpoints.dynamodb);
    let spec = table_spec(def)?;
    let name = &def.logical_id;
    if let Ok(existing) = ddb.describe_table().table_name(name).send().await {
        let t = existing.table.context("table description")?;
        let same_keys = t.key_schema() == spec.keys.as_slice();
        let mut have: Vec<String> = t.global_secondary_indexes().iter().filter_map(|g| g.index_name().map(str::to_owned)).collect();
        let mut want: Vec<String> = spec.indexes.iter().map(|g| g.index_name().to_owned()).collect();
        have.sort();
        want.sort();
        if same_keys && have == want {
            let streaming = t.stream_specification().is_some_and(|s| s.stream_enabled());
            if let (Some(view), false) = (&spec.stream_view, streaming) {
                ddb.update_table().table_name(name).stream_specification(stream_spec(view)?).send().await.context("enabling the table's stream")?;
                println!("table {name}: stream enabled");
            }
            println!("table {name}: up to date");
            return Ok(());
        }
        println!("table {name}: template changed; recreating (local data is dropped)");
        ddb.delete_table().table_name(name).send().await?;
    }
    ddb.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(spec.attributes))
        .set_key_schema(Some(spec.keys))
        .set_global_secondary_indexes((!spec.indexes.is_empty()).then_some(spec.indexes))
        .set_stream_specification(spec.stream_view.as_deref().map(stream_spec).transpose()?)
        .send()
        .await
        .with_context(|| format!("creating table {name}"))?;
    if let Some(attr) = spec.ttl_attribute {
        ddb.update_time_to_live()
            .table_name(name)
            .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name(attr).enabled(true).build()?)
            .send()
            .await
            .context("enabling TTL")?;
    }
    println!("table {name}: created");
    Ok(())
}

/// The template's queues; answers their ARNs by logical id.
async fn ensure_queues(endpoints: &Endpoints, t: &Template) -> anyhow::Result<HashMap<String, String>> {
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    // Dead-letter queues first: the others' redrive policies name their ARNs.
    let mut ordered: Vec<_> = t.queues.iter().collect();
    ordered.sort_by_key(|q| q.redrive.is_some());
    let mut arns: HashMap<String, String> = HashMap::new();
    for q in ordered {
        let mut attrs = HashMap::new();
        if let Some(v) = q.visibility_timeout {
            attrs.insert(QueueAttributeName::VisibilityTimeout, v.to_string());
        }
        if let Some(v) = q.message_retention {
            attrs.insert(QueueAttributeName::MessageRetentionPeriod, v.to_string());
        }
        if let Some((dlq, max)) = &q.redrive {
            let arn = arns.get(dlq).with_context(|| format!("{}: dead-letter queue {dlq} is not in the template", q.logical_id))?;
            let policy = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max.to_string() });
            attrs.insert(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = match sqs.get_queue_url().queue_name(&q.logical_id).send().await {
            Ok(found) => {
                let url = found.queue_url.context("queue url")?;
                sqs.set_queue_attributes().queue_url(&url).set_attributes(Some(attrs)).send().await?;
                url
            }
            Err(_) => sqs
                .create_queue()
                .queue_name(&q.logical_id)
                .set_attributes(Some(attrs))
                .send()
                .await
                .with_context(|| format!("creating queue {}", q.logical_id))?
                .queue_url
                .context("queue url")?,
        };
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .context("queue ARN")?;
        println!("queue {}: {url}", q.logical_id);
        arns.insert(q.logical_id.clone(), arn);
    }
    Ok(arns)
}

/// The template's EventBridge buses, in moto.
async fn ensure_buses(endpoints: &Endpoints, t: &Template) -> anyhow::Result<()> {
    let events = aws_sdk_eventbridge::Client::new(&endpoints.moto);
    for (id, name) in &t.event_buses {
        if events.describe_event_bus().name(name).send().await.is_ok() {
            println!("event bus {id}: {name} (exists)");
            continue;
        }
        events.create_event_bus().name(name).send().await.with_context(|| format!("creating event bus {name}"))?;
        println!("event bus {id}: {name}");
    }
    Ok(())
}

/// The template's SNS topics, named by logical id, and their queue subscriptions (SNS
/// notifications, not raw delivery: moto wraps each published message as AWS does).
async fn ensure_topics(endpoints: &Endpoints, t: &Template, queue_arns: &HashMap<String, String>) -> anyhow::Result<()> {
    let sns = aws_sdk_sns::Client::new(&endpoints.moto);
    let mut topic_arns = HashMap::new();
    for id in &t.topics {
        let arn = sns.create_topic().name(id).send().await.with_context(|| format!("creating topic {id}"))?.topic_arn.context("topic ARN")?;
        println!("topic {id}: {arn}");
        topic_arns.insert(id.clone(), arn);
    }
    for (topic, queue) in &t.subscriptions {
        let topic_arn = topic_arns.get(topic).with_context(|| format!("subscription to {topic}, which is not a topic of the template"))?;
        let queue_arn = queue_arns.get(queue).with_context(|| format!("subscription of {queue}, which is not a queue of the template"))?;
        let existing = sns.list_subscriptions_by_topic().topic_arn(topic_arn).send().await?;
        if existing.subscriptions().iter().any(|s| s.endpoint() == Some(queue_arn.as_str())) {
            continue;
        }
        sns.subscribe().topic_arn(topic_arn).protocol("sqs").endpoint(queue_arn).send().await.with_context(|| format!("subscribing {queue} to {topic}"))?;
        println!("subscription: {queue} ← {topic}");
    }
    Ok(())
}

async fn ensure_identity(endpoints: &Endpoints, t: &Template) -> anyhow::Result<()> {
    let from = parameter_value(t, "MailFrom").context("template has no MailFrom default")?;
    let ses = aws_sdk_sesv2::Client::new(&endpoints.moto);
    match ses.create_email_identity().email_identity(&from).send().await {
        Ok(_) => println!("SES identity {from}: created"),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_already_exists_exception()) => {
            println!("SES identity {from}: exists")
        }
        Err(e) => return Err(anyhow::Error::new(e).context("creating the SES identity")),
    }
    Ok(())
}

/// Creates everything the template defines that the local stack emulates.
pub async fn run(endpoints: &Endpoints, t: &Template) -> anyhow::Result<()> {
    for table in &t.tables {
        ensure_table(endpoints, table).await?;
    }
    let queue_arns = ensure_queues(endpoints, t).await?;
    ensure_topics(endpoints, t, &queue_arns).await?;
    ensure_buses(endpoints, t).await?;
    ensure_secrets(endpoints, t).await?;
    ensure_identity(endpoints, t).await
}

/// The template's secrets, in moto (the code hash key: the local key), unless there already.
async fn ensure_secrets(endpoints: &Endpoints, t: &Template) -> anyhow::Result<()> {
    let sm = aws_sdk_secretsmanager::Client::new(&endpoints.moto);
    for id in &t.secrets {
        let name = crate::local::secret_name(id);
        if sm.describe_secret().secret_id(&name).send().await.is_ok() {
            println!("secret {id}: {name} (exists)");
            continue;
        }
        sm.create_secret()
            .name(&name)
            .secret_string(crate::local::secret_initial_value(t, id))
            .send()
            .await
            .with_context(|| format!("creating the secret {name}"))?;
        println!("secret {id}: {name}");
    }
    Ok(())
}
