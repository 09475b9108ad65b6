//! Query strings and small JSON bodies, read by hand so that every rejection names the
//! parameter, the value and what was expected.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;

/// A route's query parameters, checked against the names it takes.
pub struct Params {
    values: HashMap<String, String>,
}

impl Params {
    /// Parses `query`; a parameter the route does not take, or one given twice, is an error.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Params, ApiError> {
        let mut values = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "unknown query parameter {name:?}; this route takes {}",
                        allowed.join(", ")
                    ),
                ));
            }
            if values.insert(name.to_string(), value.to_string()).is_some() {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("query parameter {name:?} is given twice"),
                ));
            }
        }
        Ok(Params { values })
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.text(name) {
            None => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name} {value:?} is not a whole number"),
                )
            }),
        }
    }

    /// Returns the `limit` of a listing page, from 1 to `max` (`limits.max_page_size`). When
    /// absent it is 100, or `max` if that is smaller.
    pub fn page_limit(&self, max: usize) -> Result<usize, ApiError> {
        let limit = self.number("limit")?.unwrap_or(max.min(100) as u64);
        if limit == 0 || limit > max as u64 {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!(
                    "limit {limit} is out of range; it must be between 1 and {max} (limits.max_page_size)"
                ),
            ));
        }
        Ok(limit as usize)
    }

    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.text(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(value) => Err(ApiError::bad_request(
                "invalid_query",
                format!("{name} {value:?} is not a boolean; use true or false"),
            )),
        }
    }
}

/// Builds the error for a body over `limit` bytes, with its size when the request declared one.
pub fn body_too_large(headers: &HeaderMap, limit: usize) -> ApiError {
    let size = declared_length(headers)
        .map(|len| format!("of {len} bytes "))
        .unwrap_or_default();
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request body {size}is over the limit of {limit} bytes (limits.max_request_bytes)"),
    )
}

pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_name_parameter_and_value() {
        let err = Params::parse(Some("limit=-1"), &["limit"])
            .unwrap()
            .number("limit")
            .unwrap_err();
        assert!(err.message.contains("limit \"-1\""), "{}", err.message);
        let err = Params::parse(Some("force=1"), &["force"])
            .unwrap()
            .flag("force")
            .unwrap_err();
        assert!(err.message.contains("force \"1\""), "{}", err.message);
        let err = Params::parse(Some("limt=5"), &["limit", "after"])
            .err()
            .unwrap();
        assert!(
            err.message.contains("\"limt\"") && err.message.contains("limit, after"),
            "{}",
            err.message
        );
        let err = Params::parse(Some("limit=1&limit=2"), &["limit"])
            .err()
            .unwrap();
        assert!(err.message.contains("twice"), "{}", err.message);
        let params = Params::parse(Some("class=a%2Db&force=true"), &["class", "force"]).unwrap();
        assert_eq!(params.text("class"), Some("a-b"));
        assert!(params.flag("force").unwrap());
    }
}
