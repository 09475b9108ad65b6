//! The object record: what the store keeps about an object and what the API and the console
//! show, with the lifecycle status.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alarm::Alarm;
use super::names::{ClassName, ObjectId, ObjectKey};

/// Where an object is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No sandbox runs; storage is in the store.
    Hibernated,
    /// A sandbox is starting and will receive the saved storage.
    Waking,
    /// The sandbox runs and takes calls.
    Active,
    /// Storage is being saved before the sandbox stops.
    Hibernating,
    /// The last wake or save failed; `last_error` says why. A failed save keeps the sandbox
    /// running and is retried; a failed wake leaves no sandbox and the next call tries again.
    Failed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Hibernated,
        Status::Waking,
        Status::Active,
        Status::Hibernating,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Hibernated => "hibernated",
            Status::Waking => "waking",
            Status::Active => "active",
            Status::Hibernating => "hibernating",
            Status::Failed => "failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A status string that is not one of the five statuses.
#[derive(Debug, thiserror::Error)]
#[error("invalid status {0:?}: expected one of hibernated, waking, active, hibernating, failed")]
pub struct StatusParseError(pub String);

impl FromStr for Status {
    type Err = StatusParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| StatusParseError(s.to_owned()))
    }
}

/// The sandbox an active object runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRef {
    /// The driver's name for the sandbox, unique per object for the store's lifetime.
    pub name: String,
    /// The driver that runs it (`process` or `container`).
    pub driver: String,
    /// Process id of the handler (of a container's first process), where this host sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Address the runtime reaches the handler on.
    pub address: String,
    /// The engine's name for the container, under the container driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Everything known about one object. Listings leave `storage` out; `show` includes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub class: ClassName,
    pub id: ObjectId,
    pub status: Status,
    /// Bumped by every wake; a checkpoint from an older generation is refused.
    pub generation: u64,
    /// The last saved storage; `null` before the first save.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<serde_json::Value>,
    /// Size of the last saved storage, in bytes of JSON.
    pub storage_bytes: u64,
    /// Idle time after the last call before the object hibernates.
    pub idle_timeout_ms: u64,
    /// Whether `idle_timeout_ms` was set for this object rather than taken from its class.
    pub idle_timeout_overridden: bool,
    /// When the object hibernates if no call arrives first (active objects only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hibernate_at: Option<DateTime<Utc>>,
    /// Whether its sandbox is frozen in the warm tier: hibernated, storage saved, but ready to
    /// wake in well under a millisecond.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warm: bool,
    /// Calls queued or running on the object right now.
    pub calls_in_flight: u32,
    /// Calls completed since the object was created.
    pub calls: u64,
    /// Calls that failed in the runtime (timeouts, sandbox failures) since it was created.
    pub errors: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_call_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_wake_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_hibernate_at: Option<DateTime<Utc>>,
    /// Why the last wake, save or call failed; cleared by the next success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxRef>,
    /// The pending alarm, if one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<Alarm>,
}

impl ObjectRecord {
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(self.class.clone(), self.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_text() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
        }
        let err = "sleeping".parse::<Status>().unwrap_err().to_string();
        assert!(err.contains("\"sleeping\""), "{err}");
    }
}
