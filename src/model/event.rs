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
    /// The object's alarm was set or replaced. (Named `scheduled_at` because the event's own
    /// `at` is the time of the change.)
    AlarmSet {
        scheduled_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every_ms: Option<u64>,
        by: AlarmSource,
    },
    AlarmCleared {
        by: AlarmSource,
    },
    /// The handler's `alarm` method returned 2xx. `late_ms` is the time the delivery was sent
    /// minus `scheduled_at`, and `next_at` is the alarm pending afterwards, if any.
    AlarmDelivered {
        scheduled_at: DateTime<Utc>,
        attempt: u32,
        /// The handler's status, 200 to 299.
        status: u16,
        late_ms: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_at: Option<DateTime<Utc>>,
    },
    /// A delivery attempt failed. `retry_at` is set when the attempt will be repeated.
    /// Otherwise the attempts ran out: `next_at` is then the next tick of a recurring alarm,
    /// or absent for a one-shot alarm, which is dropped.
    AlarmFailed {
        scheduled_at: DateTime<Utc>,
        attempt: u32,
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_at: Option<DateTime<Utc>>,
    },
}

/// The origin of an alarm change: the object's handler, with the `torpor-alarm` response
/// header, or an operator or client through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmSource {
    Handler,
    Operator,
}

impl AlarmSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmSource::Handler => "handler",
            AlarmSource::Operator => "operator",
        }
    }
}

/// Formats a time for an event's description, in UTC to the millisecond. A time on the
/// event's own day is a time of day, as the console and the log show event times. Other
/// times carry their date, because an alarm can be years ahead.
fn clock(at: &DateTime<Utc>, day_of: &DateTime<Utc>) -> String {
    if at.date_naive() == day_of.date_naive() {
        at.format("%H:%M:%S%.3f").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    }
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
            EventKind::AlarmSet { .. } => "alarm_set",
            EventKind::AlarmCleared { .. } => "alarm_cleared",
            EventKind::AlarmDelivered { .. } => "alarm_delivered",
            EventKind::AlarmFailed { .. } => "alarm_failed",
        }
    }

    /// Describes the event in one line for the console's event pane and the log; `at` is
    /// when the event happened.
    pub fn describe(&self, at: &DateTime<Utc>) -> String {
        let clock = |time: &DateTime<Utc>| clock(time, at);
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
            EventKind::AlarmSet {
                scheduled_at,
                every_ms: None,
                by,
            } => format!(
                "alarm set for {} by the {}",
                clock(scheduled_at),
                by.as_str()
            ),
            EventKind::AlarmSet {
                scheduled_at,
                every_ms: Some(every),
                by,
            } => format!(
                "alarm set for {}, every {every} ms, by the {}",
                clock(scheduled_at),
                by.as_str()
            ),
            EventKind::AlarmCleared { by } => format!("alarm cleared by the {}", by.as_str()),
            EventKind::AlarmDelivered {
                scheduled_at,
                attempt,
                late_ms,
                next_at,
                ..
            } => {
                let next = match next_at {
                    Some(at) => format!("; next at {}", clock(at)),
                    None => String::new(),
                };
                format!(
                    "alarm for {} delivered, attempt {attempt}, {late_ms:.1} ms late{next}",
                    clock(scheduled_at)
                )
            }
            EventKind::AlarmFailed {
                scheduled_at,
                attempt,
                error,
                retry_at,
                next_at,
            } => {
                let then = match (retry_at, next_at) {
                    (Some(at), _) => format!("retry at {}", clock(at)),
                    (None, Some(at)) => format!("attempts used up; next tick at {}", clock(at)),
                    (None, None) => "attempts used up; the alarm is dropped".into(),
                };
                format!(
                    "alarm for {} failed, attempt {attempt}, {then}: {error}",
                    clock(scheduled_at)
                )
            }
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
                | EventKind::AlarmFailed { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind is flattened into the event, so a field of a kind named like one of the
    /// event's own (`at`, `seq`, `class`, `id`, `object`) would be lost or duplicated.
    #[test]
    fn alarm_events_round_trip_through_json() {
        let at = DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
        let later = DateTime::from_timestamp_millis(1_800_000_060_000).unwrap();
        let kinds = [
            EventKind::AlarmSet {
                scheduled_at: later,
                every_ms: Some(1000),
                by: AlarmSource::Handler,
            },
            EventKind::AlarmCleared {
                by: AlarmSource::Operator,
            },
            EventKind::AlarmDelivered {
                scheduled_at: later,
                attempt: 2,
                status: 204,
                late_ms: 1.5,
                next_at: Some(later),
            },
            EventKind::AlarmFailed {
                scheduled_at: later,
                attempt: 6,
                error: "boom".into(),
                retry_at: None,
                next_at: None,
            },
        ];
        for kind in kinds {
            let event = Event {
                seq: 7,
                at,
                kind,
                object: None,
                class: "session".into(),
                id: "s1".into(),
            };
            let text = serde_json::to_string(&event).unwrap();
            let back: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(back, event, "{text}");
            assert!(!event.kind.describe(&event.at).is_empty());
        }
    }

    #[test]
    fn alarm_descriptions_give_the_date_of_other_days() {
        let set_at = DateTime::from_timestamp_millis(1_796_415_676_774).unwrap();
        let ten_years = DateTime::from_timestamp_millis(2_112_034_876_774).unwrap();
        let set = EventKind::AlarmSet {
            scheduled_at: ten_years,
            every_ms: None,
            by: AlarmSource::Operator,
        };
        assert_eq!(
            set.describe(&set_at),
            "alarm set for 2036-12-04 20:21:16.774 by the operator"
        );
        let failed = EventKind::AlarmFailed {
            scheduled_at: set_at,
            attempt: 1,
            error: "boom".into(),
            retry_at: Some(ten_years),
            next_at: None,
        };
        let text = failed.describe(&set_at);
        assert!(
            text.starts_with("alarm for 20:21:16.774 failed")
                && text.contains("retry at 2036-12-04 20:21:16.774"),
            "{text}"
        );
    }
}
