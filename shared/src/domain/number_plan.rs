//! Which numbers a deployment texts: the country a phone number is in, read
//! from its E.164 country code (and, in the North American plan, its area
//! code), against the deployment's `SmsCountries` (`PORTAL_SMS_COUNTRIES`,
//! ISO 3166 codes, default US, CA, GB), and the ranges no text should go to:
//! premium-rate and service numbers, and numbers too short to be a
//! subscriber's (short codes), which bill the sender or the tenant.
//!
//! The table holds the countries the service is sold in and their
//! neighbours; a number whose country it does not know is refused, like one
//! outside the list. Its premium ranges are those of the North American plan
//! (area 900, exchange 976, N11 service codes) and the UK's (09, 084, 087, 070, 118);
//! other countries' premium ranges are not modelled and say so here.

use super::channel::PhoneNumber;
use std::collections::BTreeSet;

/// The default of `SmsCountries`.
pub const DEFAULT_SMS_COUNTRIES: [&str; 3] = ["US", "CA", "GB"];

/// Country calling codes other than +1, longest first where they share digits.
const CALLING_CODES: [(&str, &str); 40] = [
    ("353", "IE"), ("351", "PT"), ("358", "FI"), ("420", "CZ"), ("852", "HK"), ("971", "AE"), ("972", "IL"),
    ("44", "GB"), ("33", "FR"), ("49", "DE"), ("34", "ES"), ("39", "IT"), ("31", "NL"), ("32", "BE"), ("41", "CH"),
    ("43", "AT"), ("45", "DK"), ("46", "SE"), ("47", "NO"), ("48", "PL"), ("30", "GR"), ("36", "HU"), ("40", "RO"),
    ("52", "MX"), ("55", "BR"), ("54", "AR"), ("56", "CL"), ("57", "CO"), ("61", "AU"), ("64", "NZ"), ("81", "JP"),
    ("82", "KR"), ("86", "CN"), ("91", "IN"), ("65", "SG"), ("27", "ZA"), ("90", "TR"), ("60", "MY"), ("63", "PH"),
    ("66", "TH"),
];

/// Canada's area codes in the North American plan.
const CANADA: [&str; 60] = [
    "204", "226", "236", "249", "250", "257", "263", "273", "289", "306", "343", "354", "365", "367", "368", "382", "387", "403", "416", "418", "428", "431", "437", "438", "450", "460", "468", "474", "506", "514", "519", "548", "579", "581", "584", "587", "600", "604", "613", "622", "639", "647", "672", "683", "705", "709", "742", "753", "778", "780", "782", "807", "819", "825", "867", "873", "879", "902", "905", "942",
];

/// The plan's other members (Caribbean states, US territories with codes of their own).
const NANP_OTHERS: [(&str, &str); 27] = [
    ("242", "BS"), ("246", "BB"), ("264", "AI"), ("268", "AG"), ("284", "VG"), ("340", "VI"), ("345", "KY"), ("441", "BM"), ("473", "GD"),
    ("649", "TC"), ("658", "JM"), ("664", "MS"), ("670", "MP"), ("671", "GU"), ("684", "AS"), ("721", "SX"), ("758", "LC"), ("767", "DM"),
    ("784", "VC"), ("787", "PR"), ("809", "DO"), ("829", "DO"), ("849", "DO"), ("868", "TT"), ("869", "KN"), ("876", "JM"), ("939", "PR"),
];

/// Why a number is not texted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("is in a country this deployment does not send text messages to (it sends to {0})")]
    Country(String),
    #[error("is a premium-rate or service number, which text messages are not sent to")]
    Premium,
    #[error("is too short to be a subscriber's number (a short code)")]
    Short,
}

/// The countries a deployment texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsCountries(BTreeSet<String>);

impl Default for SmsCountries {
    fn default() -> Self {
        Self(DEFAULT_SMS_COUNTRIES.iter().map(|c| (*c).to_owned()).collect())
    }
}

impl SmsCountries {
    /// `US,CA,GB` (any case, spaces allowed); empty or absent: the default.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let codes: Vec<String> = raw.unwrap_or_default().split(',').map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect();
        if codes.is_empty() {
            return Ok(Self::default());
        }
        match codes.iter().find(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase())) {
            Some(bad) => Err(format!("PORTAL_SMS_COUNTRIES: {bad:?} is not an ISO 3166 country code (two letters)")),
            None => Ok(Self(codes.into_iter().collect())),
        }
    }

    /// Whether a text may go to `phone`: its country is listed, and it is no premium or short number.
    pub fn admit(&self, phone: &PhoneNumber) -> Result<(), NumberError> {
        let digits = &phone.as_str()[1..];
        let (country, national) = country_of(digits).ok_or_else(|| NumberError::Country(self.listed()))?;
        if !self.0.contains(country) {
            return Err(NumberError::Country(self.listed()));
        }
        // The North American plan is every +1 number, whatever its country.
        check_range(digits.starts_with('1'), country, national)
    }

    fn listed(&self) -> String {
        self.0.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The country of an E.164 number's digits, and its national part.
fn country_of(digits: &str) -> Option<(&'static str, &str)> {
    if let Some(national) = digits.strip_prefix('1') {
        let area = national.get(..3)?;
        let country = NANP_OTHERS.iter().find(|(a, _)| *a == area).map(|(_, c)| *c).unwrap_or(if CANADA.contains(&area) { "CA" } else { "US" });
        return Some((country, national));
    }
    CALLING_CODES.iter().find(|(code, _)| digits.starts_with(code)).map(|(code, country)| (*country, &digits[code.len()..]))
}

fn check_range(north_american: bool, country: &str, national: &str) -> Result<(), NumberError> {
    match country {
        _ if national.len() < 7 => Err(NumberError::Short),
        _ if north_american => {
            if national.len() != 10 {
                return Err(NumberError::Short);
            }
            let (area, exchange) = (&national[..3], &national[3..6]);
            // N11 service codes as an area (211 … 911), premium area 900 and exchange 976.
            if area.as_bytes()[1..] == *b"11" || area == "900" || exchange == "976" {
                Err(NumberError::Premium)
            } else {
                Ok(())
            }
        }
        "GB" => {
            if national.len() < 9 {
                Err(NumberError::Short)
            } else if ["9", "84", "87", "70", "118"].iter().any(|p| national.starts_with(p)) {
                Err(NumberError::Premium)
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(countries: &SmsCountries, raw: &str) -> Result<(), NumberError> {
        countries.admit(&PhoneNumber::parse(raw).unwrap())
    }

    #[test]
    fn numbers_are_texted_only_in_the_deployment_s_countries() {
        let default = SmsCountries::default();
        assert_eq!(admit(&default, "+14155550123"), Ok(()), "San Francisco");
        assert_eq!(admit(&default, "+14165550123"), Ok(()), "Toronto");
        assert_eq!(admit(&default, "+447700900123"), Ok(()), "a UK mobile");
        for foreign in ["+33612345678", "+18765550123", "+4915112345678", "+99912345678"] {
            assert!(matches!(admit(&default, foreign), Err(NumberError::Country(_))), "{foreign}");
        }
        let canada_only = SmsCountries::parse(Some(" ca ")).unwrap();
        assert!(admit(&canada_only, "+14155550123").is_err());
        assert_eq!(admit(&canada_only, "+16045550123"), Ok(()), "Vancouver");
        assert_eq!(SmsCountries::parse(Some("")).unwrap(), default);
        assert!(SmsCountries::parse(Some("US,Canada")).is_err());
    }

    #[test]
    fn premium_service_and_short_numbers_are_refused() {
        let c = SmsCountries::parse(Some("US,CA,GB")).unwrap();
        for premium in ["+19005550123", "+14159760123", "+14115550123", "+19115550123", "+449098790123", "+448712345678", "+447012345678", "+441181234567"] {
            assert_eq!(admit(&c, premium), Err(NumberError::Premium), "{premium}");
        }
        for short in ["+1415555012", "+4477009001"] {
            assert_eq!(admit(&c, short), Err(NumberError::Short), "{short}");
        }
    }
}
