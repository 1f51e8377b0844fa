//! `Secret`: a merchant key that cannot be printed by accident, and the constant-time
//! comparison used for every signature check.
//!
//! Invariant: the only way to read the inner text is [`Secret::expose`], which signing code
//! calls; `Debug` and `Display` print a fixed placeholder, so a key never reaches a log line,
//! an error message or a panic.

use std::fmt;

use subtle::ConstantTimeEq as _;

/// A secret string (a merchant key, token or app secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for signing. Never format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (a configuration mistake).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Compares a received signature with the expected one in constant time, ignoring ASCII case
/// (providers differ in hex case). Different lengths compare unequal.
pub fn signatures_match(received: &str, expected: &str) -> bool {
    let received = received.trim().to_ascii_lowercase();
    let expected = expected.to_ascii_lowercase();
    received.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let key = Secret::new("hunter2");
        assert!(!format!("{key:?} {key}").contains("hunter2"));
        assert_eq!(key.expose(), "hunter2");
    }

    #[test]
    fn compare() {
        assert!(signatures_match("ABCdef", "abcdef"));
        assert!(!signatures_match("abcdef", "abcdee"));
        assert!(!signatures_match("abc", "abcdef"));
    }
}
