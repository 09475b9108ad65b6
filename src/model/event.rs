//! Lifecycle events: what the runtime publishes to the console, the API's event stream and
//! the log. Each event carries the object's record after the change, so a subscriber can keep
//! its own table without asking again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::record::ObjectRecord;

/// One lifecycle change or completed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increases by one per event within one runtime's life.
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
    /// The object after the change; `None` once it is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRecord>,
    /// The object's class and id, present even when `object` is `None`.
    pub class: String,
    pub id: String,
}

/// What happened. Serialised with a `type` tag, which is also the SSE event name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Waking,
    /// `warm`: thawed from the warm tier rather than started.
    Woke {
        duration_ms: f64,
        #[serde(default)]
        warm: bool,
    },
    WakeFailed {
        error: String,
    },
    Hibernating,
    /// `warm`: the sandbox was frozen and kept for a quick wake rather than stopped.
    Hibernated {
        duration_ms: f64,
        #[serde(default)]
        warm: bool,
    },
    HibernateFailed {
        error: String,
        retry_in_ms: u64,
    },
    Call {
        method: String,
        status: u16,
        duration_ms: f64,
    },
    CallFailed {
        method: String,
        error: String,
    },
    SandboxExited {
        detail: String,
    },
    Recovered,
    IdleTimeoutChanged {
        idle_timeout_ms: u64,
    },
    Deleted,
}

impl EventKind {
    /// The `type` tag, used as the SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Waking => "waking",
            EventKind::Woke { .. } => "woke",
            EventKind::WakeFailed { .. } => "wake_failed",
            EventKind::Hibernating => "hibernating",
            EventKind::Hibernated { .. } => "hibernated",
            EventKind::HibernateFailed { .. } => "hibernate_failed",
            EventKind::Call { .. } => "call",
            EventKind::CallFailed { .. } => "call_failed",
            EventKind::SandboxExited { .. } => "sandbox_exited",
            EventKind::Recovered => "recovered",
            EventKind::IdleTimeoutChanged { .. } => "idle_timeout_changed",
            EventKind::Deleted => "deleted",
        }
    }

    /// A one-line description for the console's event pane and the log.
    pub fn describe(&self) -> String {
        match self {
            EventKind::Created => "created".into(),
            EventKind::Waking => "waking".into(),
            EventKind::Woke {
                duration_ms,
                warm: false,
            } => format!("woke in {duration_ms:.1} ms"),
            EventKind::Woke {
                duration_ms,
                warm: true,
            } => format!("woke from the warm tier in {duration_ms:.2} ms"),
            EventKind::WakeFailed { error } => format!("wake failed: {error}"),
            EventKind::Hibernating => "hibernating".into(),
            EventKind::Hibernated {
                duration_ms,
                warm: false,
            } => format!("hibernated in {duration_ms:.1} ms"),
            EventKind::Hibernated {
                duration_ms,
                warm: true,
            } => {
                format!("hibernated in {duration_ms:.1} ms, sandbox kept warm")
            }
            EventKind::HibernateFailed { error, retry_in_ms } => {
                format!("hibernation failed, retry in {retry_in_ms} ms: {error}")
            }
            EventKind::Call {
                method,
                status,
                duration_ms,
            } => {
                format!("{method} → {status} in {duration_ms:.1} ms")
            }
            EventKind::CallFailed { method, error } => format!("{method} failed: {error}"),
            EventKind::SandboxExited { detail } => format!("sandbox exited: {detail}"),
            EventKind::Recovered => "recovered at start-up from its last checkpoint".into(),
            EventKind::IdleTimeoutChanged { idle_timeout_ms } => {
                format!("idle timeout set to {idle_timeout_ms} ms")
            }
            EventKind::Deleted => "deleted".into(),
        }
    }

    /// Whether the event reports a failure (drawn in red, logged as a warning).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            EventKind::WakeFailed { .. }
                | EventKind::HibernateFailed { .. }
                | EventKind::CallFailed { .. }
                | EventKind::SandboxExited { .. }
        )
    }
}
