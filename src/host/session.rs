//! `session`: a session that expires on its own, to show alarms. `open {"ttl_ms", "data"}`
//! starts it and sets an alarm `ttl_ms` ahead, `touch` pushes the alarm back, `get` reads it,
//! `close` ends it and clears the alarm, and the runtime's `alarm` call expires it: its data
//! is removed and its state becomes `expired`.
//!
//! Storage is `{"state", "data", "ttl_ms", "opened_at_ms", "expires_at_ms", "expired_at_ms"}`
//! with `state` one of `new`, `open`, `closed` and `expired`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{BuiltinClass, body_json, unknown_method};

pub struct Session;

/// The time to live of a session opened without `ttl_ms`.
const DEFAULT_TTL_MS: u64 = 30_000;
/// The minimum and maximum time to live: 100 ms, the minimum alarm period, to 30 days.
const MIN_TTL_MS: u64 = 100;
const MAX_TTL_MS: u64 = 30 * 86_400_000;

fn now_ms() -> u64 {
    crate::model::now_ms().max(0) as u64
}

fn field(storage: &Value, name: &str) -> u64 {
    storage.get(name).and_then(Value::as_u64).unwrap_or(0)
}

fn is_open(storage: &Value) -> bool {
    storage.get("state").and_then(Value::as_str) == Some("open")
}

/// Returns the alarm header for a session expiring at `expires_at_ms`.
fn expire_at(expires_at_ms: u64) -> Option<String> {
    Some(json!({ "at_ms": expires_at_ms }).to_string())
}

impl Session {
    fn open(&self, storage: &mut Value, body: &Value) -> (StatusCode, Value, Option<String>) {
        let ttl_ms = match body.get("ttl_ms") {
            None | Some(Value::Null) => DEFAULT_TTL_MS,
            Some(ttl) => match ttl.as_u64() {
                Some(ttl) if (MIN_TTL_MS..=MAX_TTL_MS).contains(&ttl) => ttl,
                _ => {
                    let error = format!(
                        "ttl_ms {ttl} is not a whole number of milliseconds between \
                         {MIN_TTL_MS} and {MAX_TTL_MS}"
                    );
                    return (StatusCode::BAD_REQUEST, json!({ "error": error }), None);
                }
            },
        };
        let now = now_ms();
        *storage = json!({
            "state": "open",
            "data": body.get("data").cloned().unwrap_or(Value::Null),
            "ttl_ms": ttl_ms,
            "opened_at_ms": now,
            "expires_at_ms": now + ttl_ms,
        });
        (StatusCode::OK, storage.clone(), expire_at(now + ttl_ms))
    }

    fn touch(&self, storage: &mut Value) -> (StatusCode, Value, Option<String>) {
        if !is_open(storage) {
            let error = format!("the session is not open: {storage}");
            return (StatusCode::CONFLICT, json!({ "error": error }), None);
        }
        let expires_at_ms = now_ms() + field(storage, "ttl_ms");
        storage["expires_at_ms"] = json!(expires_at_ms);
        (StatusCode::OK, storage.clone(), expire_at(expires_at_ms))
    }

    /// Expires an open session whose time is up. An alarm can arrive more than once, or
    /// after a `touch` moved the expiry, so it checks the time rather than trusting the call.
    fn expire(&self, storage: &mut Value) -> (StatusCode, Value, Option<String>) {
        if !is_open(storage) {
            return (StatusCode::OK, json!({ "expired": false }), None);
        }
        let now = now_ms();
        let expires_at_ms = field(storage, "expires_at_ms");
        if expires_at_ms > now {
            return (
                StatusCode::OK,
                json!({ "expired": false }),
                expire_at(expires_at_ms),
            );
        }
        storage["state"] = json!("expired");
        storage["data"] = Value::Null;
        storage["expired_at_ms"] = json!(now);
        (StatusCode::OK, json!({ "expired": true }), None)
    }
}

impl BuiltinClass for Session {
    fn initial(&self) -> Value {
        json!({ "state": "new" })
    }

    fn check_storage(&self, storage: &Value) -> Result<(), String> {
        match storage.get("state").and_then(Value::as_str) {
            Some("new" | "open" | "closed" | "expired") => Ok(()),
            _ => Err(format!(
                "session storage must have \"state\": new, open, closed or expired; got {storage}"
            )),
        }
    }

    fn changes_storage(&self, method: &str) -> bool {
        method != "get"
    }

    fn call(&self, storage: &mut Value, method: &str, body: &[u8]) -> (StatusCode, Value) {
        let (status, value, _) = self.call_with_alarm(storage, method, body);
        (status, value)
    }

    fn call_with_alarm(
        &self,
        storage: &mut Value,
        method: &str,
        body: &[u8],
    ) -> (StatusCode, Value, Option<String>) {
        let body = match body_json(body) {
            Ok(body) => body,
            Err((status, error)) => return (status, error, None),
        };
        match method {
            "open" => self.open(storage, &body),
            "touch" => self.touch(storage),
            "get" => (StatusCode::OK, storage.clone(), None),
            "close" => {
                storage["state"] = json!("closed");
                storage["data"] = Value::Null;
                (StatusCode::OK, storage.clone(), Some("clear".into()))
            }
            crate::model::alarm::ALARM_METHOD => self.expire(storage),
            other => {
                let (status, error) =
                    unknown_method("session", other, "open, touch, get and close");
                (status, error, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_touch_expire() {
        let mut storage = Session.initial();
        let (status, _, alarm) = Session.call_with_alarm(
            &mut storage,
            "open",
            br#"{"ttl_ms": 5000, "data": {"u": 1}}"#,
        );
        assert_eq!(status, StatusCode::OK);
        let expires = field(&storage, "expires_at_ms");
        assert_eq!(alarm, Some(format!("{{\"at_ms\":{expires}}}")));
        assert_eq!(storage["data"], json!({"u": 1}));

        let (status, _, alarm) = Session.call_with_alarm(&mut storage, "touch", b"");
        assert_eq!(status, StatusCode::OK);
        assert!(alarm.is_some());

        // Early: the alarm is set again for the real expiry.
        let (_, reply, alarm) = Session.call_with_alarm(&mut storage, "alarm", b"{}");
        assert_eq!(reply, json!({"expired": false}));
        assert!(alarm.is_some());
        assert_eq!(storage["state"], "open");

        storage["expires_at_ms"] = json!(1);
        let (_, reply, alarm) = Session.call_with_alarm(&mut storage, "alarm", b"{}");
        assert_eq!(reply, json!({"expired": true}));
        assert_eq!(alarm, None);
        assert_eq!(storage["state"], "expired");
        assert_eq!(storage["data"], Value::Null);

        let (status, _, _) = Session.call_with_alarm(&mut storage, "touch", b"");
        assert_eq!(status, StatusCode::CONFLICT);
    }

    #[test]
    fn close_clears_alarm_and_bad_ttl_is_rejected() {
        let mut storage = Session.initial();
        let (status, _, _) = Session.call_with_alarm(&mut storage, "open", br#"{"ttl_ms": 5}"#);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(storage, Session.initial());
        Session.call_with_alarm(&mut storage, "open", b"");
        assert_eq!(field(&storage, "ttl_ms"), DEFAULT_TTL_MS);
        let (_, _, alarm) = Session.call_with_alarm(&mut storage, "close", b"");
        assert_eq!(alarm.as_deref(), Some("clear"));
        assert_eq!(storage["state"], "closed");
    }
}
