//! The cold-start floor of a function that reads DynamoDB on its first event:
//! hello-world plus the SDK client every function builds at start
//! (`portal::aws::sdk_config`) and one bare Query of the partition the event
//! names (`{"pk": "..."}`), answered with the item count. No handler, no
//! validation, no logging: what any Rust Lambda pays before our code, when
//! its first answer needs one DynamoDB round trip on a fresh connection.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let client = aws_sdk_dynamodb::Client::new(&portal::aws::sdk_config().await?);
    let (client, table) = (&client, table.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let pk = event.payload.get("pk").and_then(Value::as_str).unwrap_or("cold-start-floor").to_owned();
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .send()
            .await?;
        Ok::<_, Error>(json!({"count": out.count()}))
    }))
    .await
}
