//! Class names, object ids and method names, validated where they enter.
//!
//! The rules keep every name safe as a URL path segment, a log field and a SQLite key, and
//! make the sandbox name derived from a key injective (see `sandbox::SandboxName`). Each
//! rejection names the value and the rule it broke.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest class name, in bytes.
pub const MAX_CLASS_BYTES: usize = 63;
/// The longest object id, in bytes of UTF-8.
pub const MAX_ID_BYTES: usize = 256;
/// The longest method name, in bytes.
pub const MAX_METHOD_BYTES: usize = 64;
/// Punctuation allowed in object ids besides letters and digits.
pub const ID_PUNCTUATION: &str = "-_.:@+=~";

/// A name that failed validation; the message names the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NameError {
    message: String,
}

impl NameError {
    fn new(message: String) -> Self {
        Self { message }
    }
}

/// A class name: 1 to 63 bytes of lowercase ASCII letters, digits, `-` and `_`, starting with
/// a letter. It never contains `.`, which separates class from object in sandbox names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ClassName(String);

impl ClassName {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let rule =
            "class names are 1 to 63 characters of a-z, 0-9, '-' and '_', starting with a letter";
        if value.is_empty() || value.len() > MAX_CLASS_BYTES {
            return Err(NameError::new(format!(
                "invalid class name {value:?}: it is {} bytes long; {rule}",
                value.len()
            )));
        }
        if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(NameError::new(format!(
                "invalid class name {value:?}: {rule}"
            )));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(NameError::new(format!(
                "invalid class name {value:?}: character {bad:?} is not allowed; {rule}"
            )));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ClassName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// An object id: 1 to 256 bytes of Unicode letters and digits plus `-_.:@+=~`, and neither
/// `.` nor `..`. Spaces, `/`, `\`, `?`, `#`, `%` and control characters are rejected, so an
/// id is the same whether it arrives raw or percent-decoded and never forms a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ObjectId(String);

impl ObjectId {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let rule = format!(
            "object ids are 1 to {MAX_ID_BYTES} bytes of letters, digits and {ID_PUNCTUATION:?}, \
             and not '.' or '..'"
        );
        if value.is_empty() {
            return Err(NameError::new(format!(
                "invalid object id \"\": it is empty; {rule}"
            )));
        }
        if value.len() > MAX_ID_BYTES {
            let shown: String = value.chars().take(40).collect();
            return Err(NameError::new(format!(
                "invalid object id \"{shown}…\": it is {} bytes long; {rule}",
                value.len()
            )));
        }
        if value == "." || value == ".." {
            return Err(NameError::new(format!(
                "invalid object id {value:?}: {rule}"
            )));
        }
        if let Some((at, bad)) = value
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || ID_PUNCTUATION.contains(*c)))
        {
            return Err(NameError::new(format!(
                "invalid object id {value:?}: character {bad:?} at byte {at} is not allowed; {rule}"
            )));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A method name a caller may invoke: 1 to 64 bytes of ASCII letters, digits, `_`, `-` and
/// `.`, starting with a letter. Names starting with `__` are reserved for the runtime
/// (`__health`, `__storage`) and are never forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MethodName(String);

impl MethodName {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let rule = "method names are 1 to 64 characters of A-Z, a-z, 0-9, '_', '-' and '.', \
                    starting with a letter";
        if value.starts_with("__") {
            return Err(NameError::new(format!(
                "method {value:?} is reserved: names starting with \"__\" belong to the runtime \
                 and cannot be called"
            )));
        }
        if value.is_empty() || value.len() > MAX_METHOD_BYTES {
            return Err(NameError::new(format!(
                "invalid method name {value:?}: it is {} bytes long; {rule}",
                value.len()
            )));
        }
        if !value.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(NameError::new(format!(
                "invalid method name {value:?}: {rule}"
            )));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(NameError::new(format!(
                "invalid method name {value:?}: character {bad:?} is not allowed; {rule}"
            )));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClassName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// An object's address: its class and its id, shown as `class/id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    pub class: ClassName,
    pub id: ObjectId,
}

impl ObjectKey {
    pub fn new(class: ClassName, id: ObjectId) -> Self {
        Self { class, id }
    }

    /// Validates both parts; the error names the first bad one.
    pub fn parse(class: &str, id: &str) -> Result<Self, NameError> {
        Ok(Self::new(ClassName::parse(class)?, ObjectId::parse(id)?))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}/{}", self.class.0, self.id.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_accepted_and_rejected() {
        for ok in ["counter", "a-b", "kv_2", "a"] {
            assert!(ClassName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Counter", "1abc", "a.b", "a/b", "a b", &"a".repeat(64)] {
            let err = ClassName::parse(bad).unwrap_err().to_string();
            assert!(err.contains("invalid class name"), "{bad}: {err}");
        }
    }

    #[test]
    fn object_ids_accepted() {
        for ok in [
            "alice",
            "a+b",
            "ü-ñ",
            "user@example.com",
            "a.b",
            "x:y=z~1",
            &"a".repeat(256),
        ] {
            assert!(ObjectId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn object_ids_rejected_name_value() {
        for bad in [
            "", ".", "..", "a b", "a/b", "a?b", "a#b", "a%2Fb", "a\\b", "a\nb", "a\0b",
        ] {
            let err = ObjectId::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid object id"), "{bad:?}: {err}");
            assert!(
                err.contains(&format!("{bad:?}")),
                "{bad:?} not named in: {err}"
            );
        }
        let long = "x".repeat(300);
        let err = ObjectId::parse(&long).unwrap_err().to_string();
        assert!(err.contains("300 bytes"), "{err}");
    }

    #[test]
    fn reserved_methods_rejected() {
        for bad in ["__storage", "__health", "__anything"] {
            let err = MethodName::parse(bad).unwrap_err().to_string();
            assert!(err.contains("reserved"), "{err}");
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn method_names_checked() {
        for ok in ["increment", "get", "put-item", "v2.list", "do_it"] {
            assert!(MethodName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_x", "a/b", "../etc", "a b", "1st", &"m".repeat(65)] {
            assert!(MethodName::parse(bad).is_err(), "{bad}");
        }
    }
}
