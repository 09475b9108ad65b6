//! Alarm routes: set and clear one object's alarm, and list pending alarms soonest first.
//! Setting and clearing need the full token; listing takes the read-only one too.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};

use super::error::ApiError;
use super::params::Params;
use super::routes::{ApiResult, json_body, object_key};
use super::server::AppState;
use super::types::AlarmPage;
use crate::model::alarm::AlarmRequest;
use crate::model::{ClassName, ObjectRecord};
use crate::runtime::parse_alarm_cursor;
use crate::store::AlarmQuery;

/// `{"in_ms": N}`, `{"at_ms": N}` or `{"at": "RFC3339"}`, with an optional `"every_ms": P`.
pub async fn set(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ObjectRecord>> {
    let key = object_key(path)?;
    let limit = state.runtime.config().limits.max_request_bytes;
    let value = json_body(raw, &headers, limit)?;
    let request = AlarmRequest::from_json(&value, true).map_err(|reason| {
        ApiError::bad_request("invalid_body", format!("invalid alarm {value}: {reason}"))
    })?;
    Ok(Json(state.runtime.set_alarm(&key, request).await?))
}

pub async fn clear(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let key = object_key(path)?;
    state.runtime.clear_alarm(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<AlarmPage>> {
    let params = Params::parse(query.as_deref(), &["class", "limit", "after"])?;
    let limit = params.page_limit(state.runtime.config().limits.max_page_size)?;
    let class = params.text("class").map(ClassName::parse).transpose()?;
    let after = params
        .text("after")
        .map(parse_alarm_cursor)
        .transpose()
        .map_err(|message| ApiError::bad_request("invalid_cursor", message))?;
    let query = AlarmQuery {
        class: class.map(|c| c.to_string()),
        after,
        limit,
    };
    let listing = state.runtime.list_alarms(&query).await?;
    Ok(Json(AlarmPage {
        alarms: listing.alarms,
        next: listing.next,
    }))
}
