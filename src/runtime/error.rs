//! Errors the runtime returns to its callers. The API maps each kind to an HTTP status; every
//! message names the object and the value or limit involved.

use std::time::Duration;

use crate::model::{NameError, ObjectKey};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("unknown class {class:?}; the configured classes are {known}")]
    UnknownClass { class: String, known: String },
    #[error("object {0} not found")]
    NotFound(ObjectKey),
    #[error(
        "request body of {size} bytes is over the limit of {limit} bytes (limits.max_request_bytes)"
    )]
    BodyTooLarge { size: usize, limit: usize },
    #[error("invalid value: {0}")]
    InvalidValue(String),
    #[error(
        "method {method:?} is reserved: the runtime calls it to deliver alarms; set an alarm \
         with the torpor-alarm response header or PUT /v1/objects/CLASS/ID/alarm"
    )]
    ReservedMethod { method: String },
    #[error(
        "{key} already has {queued} calls waiting, the limit (limits.max_queued_calls); try again later"
    )]
    Overloaded { key: ObjectKey, queued: u32 },
    #[error("the runtime is shutting down and takes no new calls")]
    ShuttingDown,
    #[error(
        "cannot wake {key}: {limit} objects are active, the limit (limits.max_active_objects); \
         try again when some have hibernated"
    )]
    TooManyActive { key: ObjectKey, limit: usize },
    #[error("wake of {key} failed: {reason}")]
    WakeFailed {
        key: ObjectKey,
        reason: String,
        timed_out: bool,
    },
    #[error("call {method} on {key} timed out after {}; {then}", humantime::format_duration(*.timeout))]
    CallTimeout {
        key: ObjectKey,
        method: String,
        timeout: Duration,
        /// The call's outcome: stopped with its sandbox, or still running in it.
        then: &'static str,
    },
    #[error("call {method} on {key} failed in its sandbox: {reason}")]
    SandboxFailed {
        key: ObjectKey,
        method: String,
        reason: String,
    },
    #[error(
        "response of {method} on {key} is over the limit of {limit} bytes (limits.max_response_bytes)"
    )]
    ResponseTooLarge {
        key: ObjectKey,
        method: String,
        limit: usize,
    },
    #[error(
        "storage of {key} is over the limit of {limit} bytes (limits.max_storage_bytes) after \
         {method}; the call's changes were discarded and the last saved storage is kept"
    )]
    StorageTooLarge {
        key: ObjectKey,
        method: String,
        limit: usize,
    },
    #[error("checkpoint of {key} failed, so the result of {method} is withheld: {reason}")]
    CheckpointFailed {
        key: ObjectKey,
        method: String,
        reason: String,
    },
    #[error("call {method} on {key} was aborted: {reason}")]
    Aborted {
        key: ObjectKey,
        method: String,
        reason: String,
    },
    /// `detail` names the header value, what is wrong with it and what became of the call.
    #[error("the handler of {key} answered {method} with an invalid torpor-alarm header {detail}")]
    InvalidAlarm {
        key: ObjectKey,
        method: String,
        detail: String,
    },
    #[error("hibernation of {key} failed: {reason}")]
    HibernateFailed { key: ObjectKey, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl RuntimeError {
    /// Returns a stable, machine-readable name for the error.
    pub fn code(&self) -> &'static str {
        match self {
            RuntimeError::InvalidName(_) => "invalid_name",
            RuntimeError::UnknownClass { .. } => "unknown_class",
            RuntimeError::NotFound(_) => "not_found",
            RuntimeError::BodyTooLarge { .. } => "body_too_large",
            RuntimeError::InvalidValue(_) => "invalid_value",
            RuntimeError::ReservedMethod { .. } => "reserved_method",
            RuntimeError::InvalidAlarm { .. } => "invalid_alarm",
            RuntimeError::Overloaded { .. } => "overloaded",
            RuntimeError::ShuttingDown => "shutting_down",
            RuntimeError::TooManyActive { .. } => "too_many_active",
            RuntimeError::WakeFailed {
                timed_out: true, ..
            } => "wake_timeout",
            RuntimeError::WakeFailed { .. } => "wake_failed",
            RuntimeError::CallTimeout { .. } => "call_timeout",
            RuntimeError::SandboxFailed { .. } => "sandbox_failed",
            RuntimeError::ResponseTooLarge { .. } => "response_too_large",
            RuntimeError::StorageTooLarge { .. } => "storage_too_large",
            RuntimeError::CheckpointFailed { .. } => "checkpoint_failed",
            RuntimeError::Aborted { .. } => "aborted",
            RuntimeError::HibernateFailed { .. } => "hibernate_failed",
            RuntimeError::Store(StoreError::NotFound(_)) => "not_found",
            RuntimeError::Store(_) => "store_error",
            RuntimeError::Internal(_) => "internal",
        }
    }

    /// Returns the HTTP status the API responds with.
    pub fn http_status(&self) -> u16 {
        match self {
            RuntimeError::InvalidName(_)
            | RuntimeError::InvalidValue(_)
            | RuntimeError::ReservedMethod { .. } => 400,
            RuntimeError::UnknownClass { .. } | RuntimeError::NotFound(_) => 404,
            RuntimeError::Store(StoreError::NotFound(_)) => 404,
            RuntimeError::BodyTooLarge { .. } | RuntimeError::StorageTooLarge { .. } => 413,
            RuntimeError::SandboxFailed { .. }
            | RuntimeError::ResponseTooLarge { .. }
            | RuntimeError::InvalidAlarm { .. } => 502,
            RuntimeError::Overloaded { .. }
            | RuntimeError::ShuttingDown
            | RuntimeError::TooManyActive { .. }
            | RuntimeError::WakeFailed {
                timed_out: false, ..
            }
            | RuntimeError::CheckpointFailed { .. }
            | RuntimeError::Aborted { .. }
            | RuntimeError::HibernateFailed { .. } => 503,
            RuntimeError::WakeFailed {
                timed_out: true, ..
            }
            | RuntimeError::CallTimeout { .. } => 504,
            RuntimeError::Store(_) | RuntimeError::Internal(_) => 500,
        }
    }
}
