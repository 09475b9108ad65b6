//! `counter`: a number that `increment` (optionally `{"by": n}`) raises, `get` reads and
//! `reset` sets to 0. Storage is `{"count": N}`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{BuiltinClass, body_json, unknown_method};

pub struct Counter;

fn count(storage: &Value) -> i64 {
    storage.get("count").and_then(Value::as_i64).unwrap_or(0)
}

impl BuiltinClass for Counter {
    fn initial(&self) -> Value {
        json!({ "count": 0 })
    }

    fn check_storage(&self, storage: &Value) -> Result<(), String> {
        match storage.get("count") {
            Some(Value::Number(n)) if n.is_i64() => Ok(()),
            _ => Err(format!(
                "counter storage must be {{\"count\": INTEGER}}, got {storage}"
            )),
        }
    }

    fn changes_storage(&self, method: &str) -> bool {
        method != "get"
    }

    fn call(&self, storage: &mut Value, method: &str, body: &[u8]) -> (StatusCode, Value) {
        match method {
            "increment" => {
                let by = match body_json(body) {
                    Ok(Value::Null) => 1,
                    Ok(body) => match body.get("by") {
                        None => 1,
                        Some(by) => match by.as_i64() {
                            Some(by) => by,
                            None => {
                                return (
                                    StatusCode::BAD_REQUEST,
                                    json!({ "error": format!("\"by\" must be an integer, got {by}") }),
                                );
                            }
                        },
                    },
                    Err(rejection) => return rejection,
                };
                let Some(next) = count(storage).checked_add(by) else {
                    return (
                        StatusCode::BAD_REQUEST,
                        json!({ "error": format!("count {} plus {by} overflows a 64-bit integer", count(storage)) }),
                    );
                };
                *storage = json!({ "count": next });
                (StatusCode::OK, json!({ "count": next }))
            }
            "get" => (StatusCode::OK, json!({ "count": count(storage) })),
            "reset" => {
                *storage = json!({ "count": 0 });
                (StatusCode::OK, json!({ "count": 0 }))
            }
            other => unknown_method("counter", other, "increment, get and reset"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(storage: &mut Value, method: &str, body: &str) -> (u16, Value) {
        let (status, value) = Counter.call(storage, method, body.as_bytes());
        (status.as_u16(), value)
    }

    #[test]
    fn increments_by_one_or_by() {
        let mut storage = Counter.initial();
        assert_eq!(
            call(&mut storage, "increment", ""),
            (200, json!({"count": 1}))
        );
        assert_eq!(
            call(&mut storage, "increment", "{\"by\": 5}"),
            (200, json!({"count": 6}))
        );
        assert_eq!(call(&mut storage, "get", ""), (200, json!({"count": 6})));
        assert_eq!(call(&mut storage, "reset", ""), (200, json!({"count": 0})));
        assert_eq!(storage, json!({"count": 0}));
    }

    #[test]
    fn bad_input_changes_nothing() {
        let mut storage = json!({"count": 3});
        assert_eq!(call(&mut storage, "increment", "{\"by\": \"x\"}").0, 400);
        assert_eq!(call(&mut storage, "increment", "not json").0, 400);
        assert_eq!(call(&mut storage, "fly", "").0, 404);
        let mut big = json!({"count": i64::MAX});
        assert_eq!(call(&mut big, "increment", "").0, 400);
        assert_eq!(storage, json!({"count": 3}));
    }
}
