//! `kv`: a string-keyed map of JSON values. `put {"key","value"}`, `get {"key"}`,
//! `delete {"key"}` and `list`. Storage is the map itself.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{BuiltinClass, body_json, unknown_method};

pub struct Kv;

fn key_of(body: &Value) -> Result<String, (StatusCode, Value)> {
    match body.get("key") {
        Some(Value::String(key)) => Ok(key.clone()),
        _ => Err((
            StatusCode::BAD_REQUEST,
            json!({ "error": format!("body must have a string \"key\", got {body}") }),
        )),
    }
}

fn entries(storage: &mut Value) -> &mut Map<String, Value> {
    if !storage.is_object() {
        *storage = Value::Object(Map::new());
    }
    match storage {
        Value::Object(map) => map,
        _ => unreachable!("storage was just made an object"),
    }
}

impl BuiltinClass for Kv {
    fn initial(&self) -> Value {
        json!({})
    }

    fn check_storage(&self, storage: &Value) -> Result<(), String> {
        if storage.is_object() {
            Ok(())
        } else {
            Err(format!("kv storage must be a JSON object, got {storage}"))
        }
    }

    fn changes_storage(&self, method: &str) -> bool {
        !matches!(method, "get" | "list")
    }

    fn call(&self, storage: &mut Value, method: &str, body: &[u8]) -> (StatusCode, Value) {
        let body = match body_json(body) {
            Ok(body) => body,
            Err(rejection) => return rejection,
        };
        let key = || key_of(&body);
        match method {
            "put" => {
                let key = match key() {
                    Ok(key) => key,
                    Err(rejection) => return rejection,
                };
                let Some(value) = body.get("value").cloned() else {
                    return (
                        StatusCode::BAD_REQUEST,
                        json!({ "error": "body must have a \"value\"" }),
                    );
                };
                entries(storage).insert(key.clone(), value.clone());
                (StatusCode::OK, json!({ "key": key, "value": value }))
            }
            "get" => match key() {
                Ok(key) => match entries(storage).get(&key) {
                    Some(value) => (StatusCode::OK, json!({ "key": key, "value": value })),
                    None => (
                        StatusCode::NOT_FOUND,
                        json!({ "error": format!("no key {key:?}") }),
                    ),
                },
                Err(rejection) => rejection,
            },
            "delete" => match key() {
                Ok(key) => {
                    let deleted = entries(storage).remove(&key).is_some();
                    (StatusCode::OK, json!({ "key": key, "deleted": deleted }))
                }
                Err(rejection) => rejection,
            },
            "list" => {
                let keys: Vec<&String> = entries(storage).keys().collect();
                (StatusCode::OK, json!({ "keys": keys }))
            }
            other => unknown_method("kv", other, "put, get, delete and list"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete_list() {
        let mut storage = Kv.initial();
        let (status, _) = Kv.call(&mut storage, "put", br#"{"key":"b","value":[1,2]}"#);
        assert_eq!(status, StatusCode::OK);
        Kv.call(&mut storage, "put", br#"{"key":"a","value":"x"}"#);
        assert_eq!(
            Kv.call(&mut storage, "get", br#"{"key":"b"}"#).1,
            json!({"key":"b","value":[1,2]})
        );
        assert_eq!(
            Kv.call(&mut storage, "list", b"").1,
            json!({"keys":["a","b"]})
        );
        assert_eq!(
            Kv.call(&mut storage, "delete", br#"{"key":"a"}"#).1,
            json!({"key":"a","deleted":true})
        );
        assert_eq!(
            Kv.call(&mut storage, "get", br#"{"key":"a"}"#).0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(storage, json!({"b":[1,2]}));
    }

    #[test]
    fn missing_key_is_rejected() {
        let mut storage = Kv.initial();
        assert_eq!(
            Kv.call(&mut storage, "put", br#"{"value":1}"#).0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(Kv.call(&mut storage, "get", b"").0, StatusCode::BAD_REQUEST);
        assert_eq!(storage, json!({}));
    }
}
