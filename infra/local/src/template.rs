//! Reads template.yaml: the one definition of the table, the queues, the
//! routes and the event sources. The local stack is built from what this
//! returns, so local and AWS cannot describe different resources.

use anyhow::{bail, Context as _};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::Path;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";
/// `AWS::StackName` locally.
pub const STACK_NAME: &str = "portal-local";

/// `!Sub` of a plain string, with the pseudo parameters' local values.
pub fn substitute(template: &str) -> String {
    template.replace("${AWS::StackName}", STACK_NAME).replace("${AWS::Region}", REGION).replace("${AWS::AccountId}", ACCOUNT_ID)
}

/// A `AWS::DynamoDB::Table` resource, as CloudFormation properties (YAML values).
#[derive(Debug, Clone)]
pub struct TableDef {
    pub logical_id: String,
    pub properties: Value,
}

#[derive(Debug, Clone)]
pub struct QueueDef {
    pub logical_id: String,
    pub visibility_timeout: Option<u64>,
    pub message_retention: Option<u64>,
    /// (dead-letter queue's logical id, maxReceiveCount)
    pub redrive: Option<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
    /// `Auth: Authorizer: NONE`: no JWT needed (the claim route).
    pub public: bool,
}

#[derive(Debug, Clone)]
pub struct SqsSource {
    pub queue_logical_id: String,
    pub batch_size: u32,
    pub report_batch_item_failures: bool,
}

#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The cargo binary (Metadata.BuildProperties.Binary).
    pub binary: String,
    pub routes: Vec<Route>,
    pub sqs: Vec<SqsSource>,
    /// A `DynamoDB` event source: the table's change stream, with its batch size.
    pub table_stream: Option<u32>,
    /// The function's own environment variables (Globals merged in), unresolved values as text.
    pub environment: BTreeMap<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: BTreeMap<String, Value>,
    pub tables: Vec<TableDef>,
    pub queues: Vec<QueueDef>,
    pub functions: Vec<FunctionDef>,
    /// Logical ids of the `AWS::SecretsManager::Secret` resources.
    pub secrets: Vec<String>,
    /// Logical ids of the `AWS::SNS::Topic` resources.
    pub topics: Vec<String>,
    /// `AWS::SNS::Subscription`s of a queue to a topic: (topic, queue) logical ids.
    pub subscriptions: Vec<(String, String)>,
    /// Logical ids of the `AWS::SES::ConfigurationSet` resources (locally: named by their id).
    pub configuration_sets: Vec<String>,
    /// `AWS::Events::EventBus` resources: (logical id, name with the local stack name).
    pub event_buses: Vec<(String, String)>,
    pub raw: Value,
}

/// `!Ref X`'s target, if `v` is one.
pub fn ref_target(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str(),
        Value::Mapping(m) => m.get("Ref").and_then(Value::as_str),
        _ => None,
    }
}

/// `!GetAtt X.Attr`'s resource, if `v` is one.
pub fn getatt_resource(v: &Value) -> Option<&str> {
    let target = match v {
        Value::Tagged(t) if t.tag == "!GetAtt" => t.value.as_str(),
        Value::Mapping(m) => m.get("Fn::GetAtt").and_then(|a| a.get(0)).and_then(Value::as_str),
        _ => None,
    }?;
    Some(target.split('.').next().unwrap_or(target))
}

fn u64_of(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
}

impl Template {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    /// The repository's template.yaml (found from this crate's directory, or the working directory).
    pub fn load_default() -> anyhow::Result<Self> {
        Self::load(&crate::repo_root().join("template.yaml"))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let raw: Value = serde_yaml::from_str(text).context("template.yaml is not YAML")?;
        let resources = raw.get("Resources").and_then(Value::as_mapping).context("no Resources")?;
        let globals_env = raw
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let parameters = raw
            .get("Parameters")
            .and_then(Value::as_mapping)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone()))).collect())
            .unwrap_or_default();
        let (mut tables, mut queues, mut functions, mut secrets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut topics, mut subscriptions, mut configuration_sets, mut event_buses) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, resource) in resources {
            let id = id.as_str().context("resource id")?.to_owned();
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default();
            let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
            match kind {
                "AWS::DynamoDB::Table" => tables.push(TableDef { logical_id: id, properties: props }),
                "AWS::SQS::Queue" => {
                    let redrive = match props.get("RedrivePolicy") {
                        Some(r) => {
                            let dlq = r.get("deadLetterTargetArn").and_then(getatt_resource).context("redrive target")?;
                            let max = u64_of(r.get("maxReceiveCount")).context("maxReceiveCount")? as u32;
                            Some((dlq.to_owned(), max))
                        }
                        None => None,
                    };
                    queues.push(QueueDef {
                        logical_id: id,
                        visibility_timeout: u64_of(props.get("VisibilityTimeout")),
                        message_retention: u64_of(props.get("MessageRetentionPeriod")),
                        redrive,
                    });
                }
                "AWS::Serverless::Function" => {
                    let binary = resource
                        .get("Metadata")
                        .and_then(|m| m.get("BuildProperties"))
                        .and_then(|b| b.get("Binary"))
                        .and_then(Value::as_str)
                        .with_context(|| format!("{id}: Metadata.BuildProperties.Binary"))?
                        .to_owned();
                    let mut environment: BTreeMap<String, Value> = globals_env
                        .iter()
                        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
                        .collect();
                    if let Some(vars) = props.get("Environment").and_then(|e| e.get("Variables")).and_then(Value::as_mapping) {
                        for (k, v) in vars {
                            environment.insert(k.as_str().context("env name")?.to_owned(), v.clone());
                        }
                    }
                    let (mut routes, mut sqs, mut table_stream) = (Vec::new(), Vec::new(), None);
                    for (_, event) in props.get("Events").and_then(Value::as_mapping).into_iter().flatten() {
                        let ep = event.get("Properties").cloned().unwrap_or(Value::Null);
                        match event.get("Type").and_then(Value::as_str) {
                            Some("HttpApi") => routes.push(Route {
                                method: ep.get("Method").and_then(Value::as_str).context("Method")?.to_uppercase(),
                                path: ep.get("Path").and_then(Value::as_str).context("Path")?.to_owned(),
                                public: ep.get("Auth").and_then(|a| a.get("Authorizer")).and_then(Value::as_str) == Some("NONE"),
                            }),
                            Some("SQS") => sqs.push(SqsSource {
                                queue_logical_id: ep.get("Queue").and_then(getatt_resource).context("SQS Queue")?.to_owned(),
                                batch_size: u64_of(ep.get("BatchSize")).unwrap_or(10) as u32,
                                report_batch_item_failures: ep
                                    .get("FunctionResponseTypes")
                                    .and_then(Value::as_sequence)
                                    .is_some_and(|s| s.iter().any(|t| t.as_str() == Some("ReportBatchItemFailures"))),
                            }),
                            Some("DynamoDB") => table_stream = Some(u64_of(ep.get("BatchSize")).unwrap_or(100) as u32),
                            // Run on demand locally: POST /local/scheduler/run.
                            Some("Schedule") => {}
                            Some(other) => bail!("{id}: event type {other} is not served locally"),
                            None => bail!("{id}: event without Type"),
                        }
                    }
                    functions.push(FunctionDef { logical_id: id, binary, routes, sqs, table_stream, environment });
                }
                "AWS::SecretsManager::Secret" => secrets.push(id),
                "AWS::SNS::Topic" => topics.push(id),
                "AWS::SES::ConfigurationSet" => configuration_sets.push(id),
                "AWS::Events::EventBus" => {
                    let name = match props.get("Name") {
                        Some(Value::String(n)) => n.clone(),
                        Some(Value::Tagged(t)) if t.tag == "!Sub" => substitute(t.value.as_str().unwrap_or_default()),
                        _ => id.clone(),
                    };
                    event_buses.push((id, name));
                }
                "AWS::SNS::Subscription" if props.get("Protocol").and_then(Value::as_str) == Some("sqs") => {
                    let topic = props.get("TopicArn").and_then(ref_target).with_context(|| format!("{id}: TopicArn"))?;
                    let queue = props.get("Endpoint").and_then(getatt_resource).with_context(|| format!("{id}: Endpoint"))?;
                    subscriptions.push((topic.to_owned(), queue.to_owned()));
                }
                _ => {}
            }
        }
        Ok(Self { parameters, tables, queues, functions, secrets, topics, subscriptions, configuration_sets, event_buses, raw })
    }

    /// A parameter's Default as text.
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        let v = self.parameters.get(name)?.get("Default")?;
        v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|n| n.to_string()))
    }

    pub fn queue(&self, logical_id: &str) -> Option<&QueueDef> {
        self.queues.iter().find(|q| q.logical_id == logical_id)
    }

    pub fn function(&self, binary: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.binary == binary)
    }
}
