//! Route handlers. Each validates its input into domain types first, so the runtime only
//! ever sees well-formed names and sizes.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use super::server::AppState;
use super::types::{ClassInfo, Health, IdleTimeoutBody, ObjectPage};
use crate::model::{MethodName, ObjectKey, ObjectRecord, Status};
use crate::runtime::CallRequest;
use crate::store::ListQuery;

type ApiResult<T> = Result<T, ApiError>;

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request("invalid_path", format!("invalid path: {rejection}"))
}

fn object_key(path: Result<Path<(String, String)>, PathRejection>) -> ApiResult<ObjectKey> {
    let Path((class, id)) = path.map_err(path_error)?;
    Ok(ObjectKey::parse(&class, &id)?)
}

pub async fn health(State(state): State<AppState>) -> ApiResult<Json<Health>> {
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
    Ok(Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        objects,
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

#[derive(Debug, Deserialize)]
pub struct ListParams {
    class: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<ObjectPage>> {
    let Query(params) = params
        .map_err(|e| ApiError::bad_request("invalid_query", format!("invalid query: {e}")))?;
    let max = state.runtime.config().limits.max_page_size;
    let limit = params.limit.unwrap_or(max.min(100));
    if limit == 0 || limit > max {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!(
                "limit {limit} is out of range; it must be between 1 and {max} (limits.max_page_size)"
            ),
        ));
    }
    if let Some(class) = &params.class {
        crate::model::ClassName::parse(class)?;
    }
    let status = match params.status.as_deref() {
        Some(status) => Some(
            status
                .parse::<Status>()
                .map_err(|e| ApiError::bad_request("invalid_status", e.to_string()))?,
        ),
        None => None,
    };
    let after = match params.after.as_deref() {
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
        class: params.class,
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

#[derive(Debug, Deserialize)]
pub struct HibernateParams {
    #[serde(default)]
    force: bool,
}

pub async fn hibernate(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Result<Query<HibernateParams>, QueryRejection>,
) -> ApiResult<Json<ObjectRecord>> {
    let key = object_key(path)?;
    let Query(params) = params
        .map_err(|e| ApiError::bad_request("invalid_query", format!("invalid query: {e}")))?;
    Ok(Json(state.runtime.hibernate(&key, params.force).await?))
}

pub async fn wake(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<ObjectRecord>> {
    let key = object_key(path)?;
    Ok(Json(state.runtime.wake(&key).await?))
}

pub async fn set_idle_timeout(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<IdleTimeoutBody>, JsonRejection>,
) -> ApiResult<Json<ObjectRecord>> {
    let key = object_key(path)?;
    let Json(body) =
        body.map_err(|e| ApiError::bad_request("invalid_body", format!("invalid body: {e}")))?;
    let timeout = body.idle_timeout_ms.map(Duration::from_millis);
    Ok(Json(state.runtime.set_idle_timeout(&key, timeout).await?))
}

#[derive(Debug, Deserialize)]
pub struct LogParams {
    bytes: Option<usize>,
}

/// The most of a sandbox log one request returns.
const MAX_LOG_BYTES: usize = 1024 * 1024;

pub async fn logs(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Result<Query<LogParams>, QueryRejection>,
) -> ApiResult<Response> {
    let key = object_key(path)?;
    let Query(params) = params
        .map_err(|e| ApiError::bad_request("invalid_query", format!("invalid query: {e}")))?;
    let bytes = params.bytes.unwrap_or(16 * 1024);
    if bytes > MAX_LOG_BYTES {
        return Err(ApiError::bad_request(
            "invalid_bytes",
            format!("bytes {bytes} is over the limit of {MAX_LOG_BYTES}"),
        ));
    }
    let text = state.runtime.logs(&key, bytes).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

pub async fn call(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let Path((class, id, method)) = path.map_err(path_error)?;
    let key = ObjectKey::parse(&class, &id)?;
    let method = MethodName::parse(&method)?;
    let limit = state.runtime.config().limits.max_request_bytes;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let size = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .map(|len| format!("of {len} bytes "))
                .unwrap_or_default();
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body {size}is over the limit of {limit} bytes (limits.max_request_bytes)"),
            )
        } else {
            ApiError::bad_request("invalid_body", format!("cannot read the request body: {rejection}"))
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
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
