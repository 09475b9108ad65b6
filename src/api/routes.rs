//! Route handlers. Each validates its input into domain types first, so the runtime only
//! ever sees well-formed names and sizes, and every rejection names the value.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;
use super::params::{Params, body_too_large};
use super::server::AppState;
use super::types::{ClassInfo, Health, ObjectPage, Stats};
use crate::model::{ClassName, MethodName, ObjectKey, ObjectRecord, Status};
use crate::runtime::CallRequest;
use crate::store::ListQuery;

pub(super) type ApiResult<T> = Result<T, ApiError>;

/// The most of a sandbox log one request returns.
const MAX_LOG_BYTES: u64 = 1024 * 1024;

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request("invalid_path", format!("invalid path: {rejection}"))
}

pub(super) fn object_key(
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<ObjectKey> {
    let Path((class, id)) = path.map_err(path_error)?;
    Ok(ObjectKey::parse(&class, &id)?)
}

/// Reads a body the extractor already bounded, turning its rejection into 413 or 400.
pub(super) fn body(
    body: Result<Bytes, BytesRejection>,
    headers: &HeaderMap,
    limit: usize,
) -> ApiResult<Bytes> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            body_too_large(headers, limit)
        } else {
            ApiError::bad_request(
                "invalid_body",
                format!("cannot read the request body: {rejection}"),
            )
        }
    })
}

/// Reads a JSON body of at most `limit` bytes; anything that is not JSON is 400 `invalid_body`.
pub(super) fn json_body(
    raw: Result<Bytes, BytesRejection>,
    headers: &HeaderMap,
    limit: usize,
) -> ApiResult<Value> {
    let raw = body(raw, headers, limit)?;
    serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("body is not JSON: {e}")))
}

pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

pub async fn stats(State(state): State<AppState>) -> ApiResult<Json<Stats>> {
    let counts = state.runtime.count_by_status().await?;
    let objects = Status::ALL
        .into_iter()
        .map(|status| {
            (
                status.to_string(),
                counts.get(&status).copied().unwrap_or(0),
            )
        })
        .collect();
    Ok(Json(Stats {
        objects,
        resident_objects: state.runtime.resident_objects(),
        max_page_size: Some(state.runtime.config().limits.max_page_size),
    }))
}

pub async fn classes(State(state): State<AppState>) -> Json<Vec<ClassInfo>> {
    Json(
        state
            .runtime
            .config()
            .classes
            .values()
            .map(|class| ClassInfo::from(class.as_ref()))
            .collect(),
    )
}

pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ObjectPage>> {
    let params = Params::parse(query.as_deref(), &["class", "status", "limit", "after"])?;
    let limit = params.page_limit(state.runtime.config().limits.max_page_size)?;
    let class = params.text("class").map(ClassName::parse).transpose()?;
    let status = match params.text("status") {
        Some(status) => Some(
            status
                .parse::<Status>()
                .map_err(|e| ApiError::bad_request("invalid_status", e.to_string()))?,
        ),
        None => None,
    };
    let after = match params.text("after") {
        Some(after) => {
            let (class, id) = after.split_once('/').ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_cursor",
                    format!("after {after:?} is not a CLASS/ID cursor"),
                )
            })?;
            Some(ObjectKey::parse(class, id)?)
        }
        None => None,
    };
    let query = ListQuery {
        class: class.map(|c| c.to_string()),
        status,
        after,
        limit,
    };
    let listing = state.runtime.list(&query).await?;
    Ok(Json(ObjectPage {
        objects: listing.objects,
        next: listing.next,
    }))
}

pub async fn show(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<ObjectRecord>> {
    let key = object_key(path)?;
    Ok(Json(state.runtime.get(&key).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let key = object_key(path)?;
    state.runtime.delete(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn hibernate(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ObjectRecord>> {
    let key = object_key(path)?;
    let force = Params::parse(query.as_deref(), &["force"])?.flag("force")?;
    Ok(Json(state.runtime.hibernate(&key, force).await?))
}

pub async fn wake(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<ObjectRecord>> {
    let key = object_key(path)?;
    Ok(Json(state.runtime.wake(&key).await?))
}

/// `{"idle_timeout_ms": N}` sets the object's own timeout; `{"idle_timeout_ms": null}` returns
/// it to its class's. The key is required and no other key is taken.
pub async fn set_idle_timeout(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ObjectRecord>> {
    let key = object_key(path)?;
    let limit = state.runtime.config().limits.max_request_bytes;
    let value = json_body(raw, &headers, limit)?;
    let invalid = |message: String| ApiError::bad_request("invalid_body", message);
    let Value::Object(fields) = value else {
        return Err(invalid(format!(
            "body must be {{\"idle_timeout_ms\": N or null}}, got {value}"
        )));
    };
    if let Some(other) = fields.keys().find(|k| *k != "idle_timeout_ms") {
        return Err(invalid(format!(
            "unknown field {other:?}; the body takes only \"idle_timeout_ms\""
        )));
    }
    let timeout = match fields.get("idle_timeout_ms") {
        None => {
            return Err(invalid(
                "missing field \"idle_timeout_ms\" (a number of milliseconds, or null)".into(),
            ));
        }
        Some(Value::Null) => None,
        Some(value) => Some(Duration::from_millis(value.as_u64().ok_or_else(|| {
            invalid(format!(
                "idle_timeout_ms {value} is not a whole number of milliseconds or null"
            ))
        })?)),
    };
    Ok(Json(state.runtime.set_idle_timeout(&key, timeout).await?))
}

pub async fn logs(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let key = object_key(path)?;
    let bytes = Params::parse(query.as_deref(), &["bytes"])?
        .number("bytes")?
        .unwrap_or(16 * 1024);
    if bytes > MAX_LOG_BYTES {
        return Err(ApiError::bad_request(
            "invalid_bytes",
            format!("bytes {bytes} is over the limit of {MAX_LOG_BYTES}"),
        ));
    }
    let text = state.runtime.logs(&key, bytes as usize).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

pub async fn call(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let Path((class, id, method)) = path.map_err(path_error)?;
    let key = ObjectKey::parse(&class, &id)?;
    let method = MethodName::parse(&method)?;
    let body = body(
        raw,
        &headers,
        state.runtime.config().limits.max_request_bytes,
    )?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method_name = method.to_string();
    let reply = state
        .runtime
        .call(
            &key,
            CallRequest {
                method,
                body,
                content_type,
            },
        )
        .await?;
    // A final 1xx would leave the client's connection in a protocol state the call never
    // asked for, and HTTP defines no status above 599.
    if !(200..=599).contains(&reply.status) {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "invalid_handler_status",
            format!(
                "the handler of {key} answered {method_name} with HTTP status {}, which a call \
                 cannot return; handlers must answer 200 to 599",
                reply.status
            ),
        ));
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::builder()
        .status(status)
        .header("x-torpor-generation", reply.generation)
        .header(
            "x-torpor-duration-ms",
            format!("{:.3}", reply.duration.as_secs_f64() * 1000.0),
        );
    if let Some(content_type) = reply.content_type {
        response = response.header(header::CONTENT_TYPE, content_type);
    }
    response
        .body(Body::from(reply.body))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such route; the API lives under /v1 (see the README)",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that HTTP method",
    )
}
