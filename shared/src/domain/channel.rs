//! The channels a message goes by: email and text (SMS).
//!
//! A portal says per kind which channels to use ([`Channels`], default
//! `["email"]` for every kind). Each message is its own entry of the contact's
//! Email/Text Log, addressed to a [`Recipient`]: an email address or a phone
//! number in E.164 form. A text's length is counted the way carriers bill it
//! ([`sms_info`]): GSM-7 septets when every character is in the GSM 03.38
//! alphabet (160 in one segment, 153 per segment when split), UCS-2 code
//! units otherwise (70, 67 when split).

use super::email::EmailKind;
use super::email_address::EmailAddress;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A phone number in E.164 form: `+`, a country code that does not start
/// with 0, and at most 15 digits in all (at least 8).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("is not a phone number in E.164 form (a + and 8 to 15 digits, e.g. +14155550123)")]
pub struct PhoneError;

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let raw = raw.trim();
        let digits = raw.strip_prefix('+').ok_or(PhoneError)?;
        let ok = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        ok.then(|| Self(raw.to_owned())).ok_or(PhoneError)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(raw: String) -> Result<Self, PhoneError> {
        Self::parse(&raw)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> Self {
        p.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

/// Where one message goes. Stored as the log entry's `to`: a phone number
/// starts with `+`, which no email address we accept does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Recipient {
    Email(EmailAddress),
    Sms(PhoneNumber),
}

impl Recipient {
    pub fn channel(&self) -> Channel {
        match self {
            Self::Email(_) => Channel::Email,
            Self::Sms(_) => Channel::Sms,
        }
    }

    pub fn email(&self) -> Option<&EmailAddress> {
        match self {
            Self::Email(e) => Some(e),
            Self::Sms(_) => None,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(e) => e.as_str(),
            Self::Sms(p) => p.as_str(),
        }
    }
}

impl From<EmailAddress> for Recipient {
    fn from(e: EmailAddress) -> Self {
        Self::Email(e)
    }
}

impl From<&EmailAddress> for Recipient {
    fn from(e: &EmailAddress) -> Self {
        Self::Email(e.clone())
    }
}

impl TryFrom<String> for Recipient {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        if raw.starts_with('+') {
            PhoneNumber::parse(&raw).map(Self::Sms).map_err(|e| e.to_string())
        } else {
            EmailAddress::parse(&raw).map(Self::Email).map_err(|e| e.to_string())
        }
    }
}

impl From<Recipient> for String {
    fn from(r: Recipient) -> Self {
        r.as_str().to_owned()
    }
}

/// A portal's channels per kind; a kind not named goes by email alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Channels(BTreeMap<EmailKind, Vec<Channel>>);

/// Why a portal's `channels` were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelsError {
    #[error("channels.{0}: name at least one channel (email, sms)")]
    Empty(&'static str),
    #[error("channels.{0}: each channel once")]
    Repeated(&'static str),
    #[error("channels.claim_confirmation: email only (the confirmation proves the address typed at claim)")]
    EmailOnly,
}

impl Channels {
    /// Checks staff input: at least one channel per kind named, none twice,
    /// and the claim confirmation by email alone.
    pub fn new(map: BTreeMap<EmailKind, Vec<Channel>>) -> Result<Self, ChannelsError> {
        for (kind, channels) in &map {
            if channels.is_empty() {
                return Err(ChannelsError::Empty(kind.as_str()));
            }
            let mut seen = channels.clone();
            seen.sort();
            seen.dedup();
            if seen.len() != channels.len() {
                return Err(ChannelsError::Repeated(kind.as_str()));
            }
            if *kind == EmailKind::ClaimConfirmation && channels != &[Channel::Email] {
                return Err(ChannelsError::EmailOnly);
            }
        }
        Ok(Self(map))
    }

    /// The channels a kind goes by.
    pub fn of(&self, kind: EmailKind) -> &[Channel] {
        self.0.get(&kind).map_or(&[Channel::Email], Vec::as_slice)
    }

    pub fn is_default(&self) -> bool {
        self.0.values().all(|c| c == &[Channel::Email])
    }
}

/// Where a contact can be reached for a kind, in the portal's order, and
/// why a channel it names cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub recipients: Vec<Recipient>,
    /// Channels named for the kind the contact cannot be reached by, and why.
    pub missing: Vec<Unreachable>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    NoEmail,
    /// The address bounced hard or was complained about (`domain::delivery`).
    EmailSuppressed(super::delivery::EmailProblem),
    NoPhone,
}

/// Who gets a kind's messages: one recipient per channel the contact can be reached by.
pub fn reach(channels: &[Channel], email: Option<&EmailAddress>, email_problem: Option<super::delivery::EmailProblem>, phone: Option<&PhoneNumber>) -> Reach {
    let mut out = Reach { recipients: Vec::new(), missing: Vec::new() };
    for channel in channels {
        match (channel, email, email_problem, phone) {
            (Channel::Email, None, _, _) => out.missing.push(Unreachable::NoEmail),
            (Channel::Email, Some(_), Some(problem), _) => out.missing.push(Unreachable::EmailSuppressed(problem)),
            (Channel::Email, Some(e), None, _) => out.recipients.push(Recipient::Email(e.clone())),
            (Channel::Sms, _, _, None) => out.missing.push(Unreachable::NoPhone),
            (Channel::Sms, _, _, Some(p)) => out.recipients.push(Recipient::Sms(p.clone())),
        }
    }
    out
}

/// How a text is encoded and billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum SmsEncoding {
    #[serde(rename = "GSM-7")]
    Gsm7,
    #[serde(rename = "UCS-2")]
    Ucs2,
}

/// A text's length in its encoding's units and the segments it is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SmsInfo {
    pub length: usize,
    pub segments: usize,
    pub encoding: SmsEncoding,
}

/// The most segments a text may take (a longer one is refused at save).
pub const MAX_SMS_SEGMENTS: usize = 10;

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters of the extension table: two septets each (an escape and the character).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Counts a text as a carrier does.
pub fn sms_info(text: &str) -> SmsInfo {
    let septets: Option<usize> = text
        .chars()
        .map(|c| if GSM7_BASIC.contains(c) { Some(1) } else if GSM7_EXTENDED.contains(c) { Some(2) } else { None })
        .sum();
    let (length, encoding, single, split) = match septets {
        Some(n) => (n, SmsEncoding::Gsm7, 160, 153),
        None => (text.encode_utf16().count(), SmsEncoding::Ucs2, 70, 67),
    };
    let segments = if length == 0 { 0 } else if length <= single { 1 } else { length.div_ceil(split) };
    SmsInfo { length, segments, encoding }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::EmailProblem;

    #[test]
    fn phone_numbers_must_be_e164() {
        assert_eq!(PhoneNumber::parse(" +14155550123 ").unwrap().as_str(), "+14155550123");
        for bad in ["14155550123", "+0155550123", "+1 415 555 0123", "+1234567", "+1234567890123456", "+", "+1415555012a", ""] {
            assert_eq!(PhoneNumber::parse(bad), Err(PhoneError), "{bad}");
        }
    }

    #[test]
    fn recipients_round_trip_through_their_stored_string() {
        for raw in ["+14155550123", "ann@example.org"] {
            let r = Recipient::try_from(raw.to_owned()).unwrap();
            assert_eq!(String::from(r.clone()), raw);
            assert_eq!(r.channel(), if raw.starts_with('+') { Channel::Sms } else { Channel::Email });
        }
        assert!(Recipient::try_from("+12".to_owned()).is_err());
    }

    #[test]
    fn channels_default_to_email_and_are_checked() {
        let c = Channels::default();
        assert_eq!(c.of(EmailKind::PickupCode), &[Channel::Email]);
        let both = Channels::new(BTreeMap::from([(EmailKind::PickupCode, vec![Channel::Email, Channel::Sms])])).unwrap();
        assert_eq!(both.of(EmailKind::PickupCode), &[Channel::Email, Channel::Sms]);
        assert_eq!(both.of(EmailKind::Reminder), &[Channel::Email]);
        assert!(!both.is_default());
        assert_eq!(Channels::new(BTreeMap::from([(EmailKind::Reminder, vec![])])), Err(ChannelsError::Empty("reminder")));
        assert_eq!(
            Channels::new(BTreeMap::from([(EmailKind::Reminder, vec![Channel::Sms, Channel::Sms])])),
            Err(ChannelsError::Repeated("reminder"))
        );
        assert_eq!(Channels::new(BTreeMap::from([(EmailKind::ClaimConfirmation, vec![Channel::Sms])])), Err(ChannelsError::EmailOnly));
        let json: Channels = serde_json::from_str(r#"{"pickup_code":["email","sms"]}"#).unwrap();
        assert_eq!(json, both);
        assert!(serde_json::from_str::<Channels>(r#"{"pickup_code":["fax"]}"#).is_err());
    }

    #[test]
    fn reach_names_every_channel_it_cannot_use() {
        let email = EmailAddress::parse("ann@example.org").unwrap();
        let phone = PhoneNumber::parse("+14155550123").unwrap();
        let both = [Channel::Email, Channel::Sms];
        assert_eq!(reach(&both, Some(&email), None, Some(&phone)).recipients.len(), 2);
        let r = reach(&both, None, None, Some(&phone));
        assert_eq!((r.recipients, r.missing), (vec![Recipient::Sms(phone.clone())], vec![Unreachable::NoEmail]));
        let r = reach(&both, Some(&email), Some(EmailProblem::Bounced), None);
        assert!(r.recipients.is_empty());
        assert_eq!(r.missing, vec![Unreachable::EmailSuppressed(EmailProblem::Bounced), Unreachable::NoPhone]);
    }

    #[test]
    fn texts_are_counted_as_carriers_bill_them() {
        assert_eq!(sms_info("Hello"), SmsInfo { length: 5, segments: 1, encoding: SmsEncoding::Gsm7 });
        assert_eq!(sms_info(&"a".repeat(160)).segments, 1);
        assert_eq!(sms_info(&"a".repeat(161)).segments, 2);
        assert_eq!(sms_info(&"a".repeat(306)).segments, 2);
        assert_eq!(sms_info(&"a".repeat(307)).segments, 3);
        // The extension table costs two septets.
        assert_eq!(sms_info("€[]").length, 6);
        // Spanish accents in GSM-7 stay GSM-7; others force UCS-2.
        assert_eq!(sms_info("¿Señor Müller?").encoding, SmsEncoding::Gsm7);
        let ucs = sms_info("Código: 7K3QD");
        assert_eq!((ucs.encoding, ucs.length, ucs.segments), (SmsEncoding::Ucs2, 13, 1));
        assert_eq!(sms_info(&"ó".repeat(71)).segments, 2);
        assert_eq!(sms_info("").segments, 0);
        assert_eq!(serde_json::to_value(sms_info("x")).unwrap()["encoding"], "GSM-7");
    }
}
