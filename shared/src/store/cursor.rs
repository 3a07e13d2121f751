//! Opaque page cursors: a Query's LastEvaluatedKey, as URL-safe base64 JSON.
//! A cursor is accepted only for the index partition it came from, so one
//! tenant's cursor can never read another tenant's keys. The API hands these out signed
//! (`domain::page_cursor`), so what reaches here came from us.

use super::dynamo::Item;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use std::collections::HashMap;

pub fn encode_cursor(key: &Item) -> anyhow::Result<String> {
    let plain: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
        .collect();
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain)?))
}

/// The key back, if the cursor is well-formed and `index_pk_attr` holds `expected`.
pub fn decode_cursor(raw: &str, index_pk_attr: &str, expected: &str) -> Option<Item> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let plain: HashMap<String, String> = serde_json::from_slice(&bytes).ok()?;
    let keys_ok = plain.len() == 4 && plain.contains_key("pk") && plain.contains_key("sk");
    (keys_ok && plain.get(index_pk_attr).map(String::as_str) == Some(expected))
        .then(|| plain.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
}
