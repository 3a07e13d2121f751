//! Timestamps: UTC, millisecond precision, always written as
//! `YYYY-MM-DDTHH:MM:SS.mmmZ` so that stored strings sort as times do.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// The current time, truncated to milliseconds like everything we store.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).expect("in range")
}

pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `#[serde(with = "time::rfc3339")]` for `DateTime<Utc>`.
pub mod rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "time::rfc3339_opt", default)]` for `Option<DateTime<Utc>>`.
pub mod rfc3339_opt {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&format(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|raw| DateTime::parse_from_rfc3339(&raw).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_times_sort_as_times() {
        let a: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let b: DateTime<Utc> = "2026-01-01T00:00:00.100Z".parse().unwrap();
        assert_eq!(format(&a), "2026-01-01T00:00:00.000Z");
        assert!(format(&a) < format(&b));
    }
}
