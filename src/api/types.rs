//! JSON bodies the API exchanges, shared by the server and the client.

use serde::{Deserialize, Serialize};

use crate::config::{ClassConfig, Handler};
use crate::model::ObjectRecord;
use crate::model::alarm::PendingAlarm;

/// A class as `GET /v1/classes` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassInfo {
    pub name: String,
    /// `builtin:NAME` or the command line.
    pub handler: String,
    pub idle_timeout_ms: u64,
    pub wake_timeout_ms: u64,
    pub call_timeout_ms: u64,
    pub storage_read_timeout_ms: u64,
    pub storage_write_timeout_ms: u64,
    pub hibernate_retry_ms: u64,
    pub hibernate_retry_max_ms: u64,
    pub memory_mb: u64,
    pub vcpus: f64,
    pub max_processes: u64,
    pub network: bool,
    #[serde(default)]
    pub alarm_retry_ms: u64,
    #[serde(default)]
    pub alarm_retry_max_ms: u64,
    #[serde(default)]
    pub alarm_max_attempts: u32,
}

impl From<&ClassConfig> for ClassInfo {
    fn from(class: &ClassConfig) -> Self {
        Self {
            name: class.name.to_string(),
            handler: match &class.handler {
                Handler::Builtin(name) => format!("builtin:{name}"),
                Handler::Command(argv) => argv
                    .iter()
                    .map(|arg| match arg.as_str() {
                        // The built-in notes class passes its whole script as an argument.
                        crate::config::NOTES_HANDLER => "<embedded notes.py>",
                        other => other,
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                Handler::Image {
                    image,
                    command: None,
                } => format!("image:{image}"),
                Handler::Image {
                    image,
                    command: Some(argv),
                } => format!("image:{image} {}", argv.join(" ")),
            },
            idle_timeout_ms: class.idle_timeout.as_millis() as u64,
            wake_timeout_ms: class.wake_timeout.as_millis() as u64,
            call_timeout_ms: class.call_timeout.as_millis() as u64,
            storage_read_timeout_ms: class.storage_read_timeout.as_millis() as u64,
            storage_write_timeout_ms: class.storage_write_timeout.as_millis() as u64,
            hibernate_retry_ms: class.hibernate_retry.as_millis() as u64,
            hibernate_retry_max_ms: class.hibernate_retry_max.as_millis() as u64,
            memory_mb: class.memory_mb,
            vcpus: class.vcpus,
            max_processes: class.max_processes,
            network: class.network,
            alarm_retry_ms: class.alarm_retry.as_millis() as u64,
            alarm_retry_max_ms: class.alarm_retry_max.as_millis() as u64,
            alarm_max_attempts: class.alarm_max_attempts,
        }
    }
}

/// `GET /v1/health`, which needs no token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// `GET /v1/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Objects per status.
    pub objects: std::collections::BTreeMap<String, u64>,
    /// Objects the runtime holds in memory: active, recently called or waited for.
    pub resident_objects: usize,
    /// The largest `limit` that `GET /v1/objects` accepts (`limits.max_page_size`).
    #[serde(default)]
    pub max_page_size: Option<usize>,
}

/// `GET /v1/objects`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectPage {
    pub objects: Vec<ObjectRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `invalid_name`.
    pub code: String,
    pub message: String,
}

/// `PUT /v1/objects/{class}/{id}/idle-timeout`: `null` returns to the class's timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleTimeoutBody {
    pub idle_timeout_ms: Option<u64>,
}

/// `PUT /v1/objects/{class}/{id}/alarm`: exactly one of `in_ms`, `at_ms` or `at` (RFC 3339),
/// and `every_ms` for a recurring alarm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlarmBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
}

/// `GET /v1/alarms`: pending alarms, soonest next attempt first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlarmPage {
    pub alarms: Vec<PendingAlarm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}
