//! Values that are stored and sent as themselves but never printed: their
//! `Debug` (what `tracing`'s `?field` and `{:?}` show) reads `[redacted]`.
//! For data that must serialize, such as a pending code on its item or an
//! email's variables; the deployment's keys are `secrecy::SecretString`
//! instead, which also zeroes them on drop but cannot be serialized.

use serde::{Deserialize, Serialize};
use std::ops::{Deref, DerefMut};

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted<T>(pub T);

impl<T> Redacted<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> Deref for Redacted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Redacted<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl From<&str> for Redacted<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// `Debug` for a struct some of whose fields hold a code, a token or a fact
/// of the record: those print `[redacted]`, the rest as themselves, so a
/// `{:?}` or a `tracing` `?field` of the whole value never carries a secret.
///
/// ```ignore
/// debug_redacting!(ClaimRequest { email, portal_id } hiding { code, token });
/// ```
#[macro_export]
macro_rules! debug_redacting {
    ($ty:ident { $($shown:ident),* $(,)? } hiding { $($hidden:ident),* $(,)? }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct(stringify!($ty));
                $( d.field(stringify!($shown), &self.$shown); )*
                $( let _ = &self.$hidden; d.field(stringify!($hidden), &$crate::domain::redacted::Redacted(())); )*
                d.finish()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_serializes_as_itself_and_prints_as_redacted() {
        let code = Redacted("ABCDE-FGHJK".to_owned());
        assert_eq!(format!("{code:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(code.clone())), "Some([redacted])");
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"ABCDE-FGHJK\"");
        let back: Redacted<String> = serde_json::from_str("\"ABCDE-FGHJK\"").unwrap();
        assert_eq!(back, code);
    }
}
