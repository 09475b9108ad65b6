//! Domain types shared by every part: object keys and names with their validation, lifecycle
//! statuses, object records as the store and the API see them, alarms, and lifecycle events.

pub mod alarm;
mod event;
mod names;
mod record;

pub use alarm::Alarm;
pub use event::{AlarmSource, Event, EventKind};
pub use names::{ClassName, MethodName, NameError, ObjectId, ObjectKey};
pub use record::{ObjectRecord, SandboxRef, Status, StatusParseError};

/// Milliseconds since the Unix epoch, the unit of every timestamp torpor stores.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The current time truncated to milliseconds, so records and events show one precision.
pub fn now_utc() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(now_ms()).unwrap_or_default()
}

/// Formats a Unix-epoch millisecond timestamp as RFC 3339 (UTC, millisecond precision).
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}
