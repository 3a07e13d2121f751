//! Counting the AWS requests a client sends (retries included), so tests and
//! benchmarks can hold operations to their request budgets.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An interceptor that adds one to its counter for every request sent.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(pub Arc<AtomicU64>);

impl RequestCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// CloudWatch metrics in Embedded Metric Format: one JSON line on stdout per
/// data point, which Lambda's log ingestion turns into a metric. No API call,
/// no permission, no latency.
pub mod emf {
    /// The namespace every metric of the service is under.
    pub const NAMESPACE: &str = "PortalAccess";

    /// The EMF line for `value` of `metric` (unit Count) with `dimensions`.
    pub fn line(metric: &str, value: f64, dimensions: &[(&str, &str)], timestamp_ms: i64) -> String {
        let mut doc = serde_json::json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                    "Metrics": [{ "Name": metric, "Unit": "Count" }],
                }],
            },
        });
        for (k, v) in dimensions {
            doc[*k] = serde_json::Value::from(*v);
        }
        doc[metric] = serde_json::Value::from(value);
        doc.to_string()
    }

    /// Emits `value` of `metric` now.
    pub fn put(metric: &str, value: f64, dimensions: &[(&str, &str)]) {
        // One println: a whole line at once (stdout is locked per call).
        println!("{}", line(metric, value, dimensions, chrono::Utc::now().timestamp_millis()));
    }

    /// Emits one occurrence of `metric`.
    pub fn count(metric: &str, dimensions: &[(&str, &str)]) {
        put(metric, 1.0, dimensions);
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn a_line_declares_its_metric_and_dimensions() {
            let v: serde_json::Value = serde_json::from_str(&super::line("ClaimsFailed", 1.0, &[("PortalId", "p1")], 5)).unwrap();
            assert_eq!(v["_aws"]["Timestamp"], 5);
            assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "PortalAccess");
            assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["PortalId"]]));
            assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "ClaimsFailed");
            assert_eq!(v["PortalId"], "p1");
            assert_eq!(v["ClaimsFailed"], 1.0);
        }
    }
}
