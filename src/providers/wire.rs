//! Reading provider answers and config tables: tolerant JSON, field access, and the config
//! helpers every provider's `from_table` uses.
//!
//! Tolerance is deliberate and narrow: the seed documents print `nil` for null, so a body
//! that only fails to parse because of a bare `nil` token is read with `null` in its place.
//! Nothing else is guessed.

use serde_json::Value;

use super::ProviderError;
use crate::model::Fen;

/// Parses a JSON body, accepting a bare `nil` as `null`.
///
/// # Errors
/// [`ProviderError::Decode`] when the body is not JSON (with a short excerpt of it).
pub fn parse_json(body: &[u8]) -> Result<Value, ProviderError> {
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(first) => {
            let text = String::from_utf8_lossy(body);
            let patched = replace_bare_nil(&text);
            serde_json::from_str(&patched).map_err(|_| ProviderError::Decode {
                reason: format!("not JSON ({first}): {}", excerpt(&text)),
            })
        }
    }
}

/// The first 200 characters of a body, for messages.
pub fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(200).collect();
    if text.chars().nth(200).is_some() {
        out.push('…');
    }
    out
}

/// Replaces `nil` tokens outside JSON strings with `null`.
fn replace_bare_nil(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(ch) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
        } else if ch == '"' {
            in_string = true;
        } else if rest.starts_with("nil")
            && !out.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !rest
                .get(3..)
                .unwrap_or_default()
                .starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            out.push_str("null");
            rest = rest.get(3..).unwrap_or_default();
            continue;
        }
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

/// A JSON value as text: strings as they are, numbers in their shortest form.
pub fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A JSON value (string or number) as an integer code.
pub fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value (string or number of yuan) as fen.
pub fn as_fen(value: &Value) -> Option<Fen> {
    as_text(value).and_then(|text| Fen::parse_wire(&text).ok())
}

/// A non-empty string value from a JSON object.
pub fn non_empty(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(as_text)
        .filter(|text| !text.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Config tables

/// Reads a provider's config table: checks that only `allowed` keys appear, then hands out
/// values with messages that name the key.
pub struct Table<'a> {
    table: &'a toml::Table,
}

impl<'a> Table<'a> {
    /// Checks the keys of `table` against `allowed`.
    ///
    /// # Errors
    /// A message naming the unknown key and listing the allowed ones.
    pub fn new(table: &'a toml::Table, allowed: &[super::Field]) -> Result<Self, String> {
        if let Some(unknown) = table
            .keys()
            .find(|key| !allowed.iter().any(|field| field.name == key.as_str()))
        {
            let names: Vec<&str> = allowed.iter().map(|field| field.name).collect();
            return Err(format!(
                "unknown key `{unknown}` (allowed: id, kind, {})",
                names.join(", ")
            ));
        }
        Ok(Table { table })
    }

    /// An optional string.
    ///
    /// # Errors
    /// When the key is present but not a string.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!(
                "key `{key}` must be a string in quotes, found {}",
                other.type_str()
            )),
        }
    }

    /// A required non-empty string.
    ///
    /// # Errors
    /// When the key is missing, empty or not a string.
    pub fn str(&self, key: &str) -> Result<String, String> {
        match self.opt_str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(format!("key `{key}` is empty")),
            None => Err(format!("missing key `{key}`")),
        }
    }

    /// A required http(s) URL, without a trailing slash.
    ///
    /// # Errors
    /// When the key is missing or not an absolute http(s) URL.
    pub fn url(&self, key: &str) -> Result<String, String> {
        let text = self.str(key)?;
        check_url(key, &text)
    }

    /// An optional http(s) URL.
    ///
    /// # Errors
    /// When the key is present but not an absolute http(s) URL.
    pub fn opt_url(&self, key: &str) -> Result<Option<String>, String> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => check_url(key, &text).map(Some),
        }
    }
}

fn check_url(key: &str, text: &str) -> Result<String, String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.trim_end_matches('/').to_string())
        }
        Ok(_) => Err(format!(
            "key `{key}` must be an http:// or https:// URL, found `{text}`"
        )),
        Err(err) => Err(format!("key `{key}` is not a valid URL ({err}): `{text}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nil_is_null_outside_strings_only() {
        let v = parse_json(br#"{"success": true, "errorMsg": nil, "note": "nil stays"}"#)
            .unwrap_or(Value::Null);
        assert_eq!(v["errorMsg"], Value::Null);
        assert_eq!(v["note"], "nil stays");
        assert!(parse_json(b"<html>502</html>").is_err());
    }

    #[test]
    fn amounts_from_json() {
        let v: Value =
            serde_json::json!({"a": 500, "b": 2000.00, "c": "12.30", "d": 12.3, "e": 0.1});
        assert_eq!(as_fen(&v["a"]), Some(Fen(50_000)));
        assert_eq!(as_fen(&v["b"]), Some(Fen(200_000)));
        assert_eq!(as_fen(&v["c"]), Some(Fen(1230)));
        assert_eq!(as_fen(&v["d"]), Some(Fen(1230)));
        assert_eq!(as_fen(&v["e"]), Some(Fen(10)));
    }
}
