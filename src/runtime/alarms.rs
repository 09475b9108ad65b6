//! Alarms as operators and clients see them: set, clear and list. Every alarm change goes
//! to the store first, then to memory, the scheduler and an event. Pending alarms are
//! loaded into the scheduler at start-up.
//!
//! Alarms use a second [`Deadlines`](super::Deadlines) queue, the same mechanism as
//! hibernation: each pending alarm is one timer, keyed by its object, and nothing polls the
//! store. Every alarm change is committed before it shows in memory, so the store is the
//! source of truth after a crash.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::slot::Slot;
use super::{Inner, Runtime, RuntimeError};
use crate::model::alarm::{AlarmRequest, PendingAlarm};
use crate::model::{Alarm, AlarmSource, EventKind, ObjectKey, ObjectRecord, now_ms};
use crate::store::{AlarmCursor, AlarmQuery, Update};

/// The maximum timer the scheduler holds, because its timer wheel has a finite range. An
/// alarm further ahead is scheduled for this long and scheduled again when it fires early.
const MAX_TIMER: Duration = Duration::from_secs(365 * 86_400);
/// The pause before an alarm whose delivery could not start is tried again, because the
/// object's queue or the set of active objects was full. It does not count as an attempt.
pub(super) const ALARM_DEFER: Duration = Duration::from_secs(1);

/// One page of pending alarms.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmListing {
    pub alarms: Vec<PendingAlarm>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A change to an object's alarm, applied to memory once the store has it.
pub(super) struct AlarmChange {
    pub alarm: Option<Alarm>,
    pub event: EventKind,
    /// The reason an alarm was dropped, written as the object's `last_error` with the change.
    pub object_error: Option<String>,
}

/// Formats a listing position as `NEXT_ATTEMPT_MS/CLASS/ID`.
fn format_cursor(cursor: &AlarmCursor) -> String {
    format!("{}/{}", cursor.next_attempt_ms, cursor.key)
}

/// Parses a listing position written by [`format_cursor`].
pub fn parse_alarm_cursor(text: &str) -> Result<AlarmCursor, String> {
    let invalid = || format!("after {text:?} is not a NEXT_ATTEMPT_MS/CLASS/ID cursor");
    let mut parts = text.splitn(3, '/');
    let (Some(ms), Some(class), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let next_attempt_ms = ms.parse().map_err(|_| invalid())?;
    let key = ObjectKey::parse(class, id).map_err(|e| format!("{}: {e}", invalid()))?;
    Ok(AlarmCursor {
        next_attempt_ms,
        key,
    })
}

/// Returns the monotonic deadline of a wall-clock time in Unix milliseconds, at most
/// [`MAX_TIMER`] ahead.
// NOTE: a jump of the system clock after this moves nothing: the alarm fires after the time
// it had left, and a delivery that finds the wall clock short of the alarm's time waits.
fn deadline_of(ms: i64) -> Instant {
    let left = (ms - now_ms()).max(0) as u64;
    Instant::now() + Duration::from_millis(left).min(MAX_TIMER)
}

impl Runtime {
    /// Sets or replaces the object's alarm. The object must exist.
    pub async fn set_alarm(
        &self,
        key: &ObjectKey,
        request: AlarmRequest,
    ) -> Result<ObjectRecord, RuntimeError> {
        let inner = &self.inner;
        inner.class(&key.class)?;
        let alarm = request
            .resolve(now_ms())
            .map_err(|reason| RuntimeError::InvalidValue(format!("alarm for {key}: {reason}")))?;
        let event = EventKind::AlarmSet {
            scheduled_at: alarm.at,
            every_ms: alarm.every_ms,
            by: AlarmSource::Operator,
        };
        inner.change_alarm_in_turn(key, Some(alarm), event).await?;
        inner.get(key).await
    }

    /// Clears the object's alarm, if it has one. The object must exist.
    pub async fn clear_alarm(&self, key: &ObjectKey) -> Result<(), RuntimeError> {
        let inner = &self.inner;
        inner.known_or_stored(key).await?;
        let event = EventKind::AlarmCleared {
            by: AlarmSource::Operator,
        };
        inner.change_alarm_in_turn(key, None, event).await
    }

    /// Lists a page of pending alarms, soonest next attempt first.
    pub async fn list_alarms(&self, query: &AlarmQuery) -> Result<AlarmListing, RuntimeError> {
        let inner = &self.inner;
        let limit = query.limit.clamp(1, inner.config.limits.max_page_size);
        let page = inner
            .store
            .list_alarms(&AlarmQuery {
                limit,
                ..query.clone()
            })
            .await?;
        let alarms = page
            .objects
            .into_iter()
            .filter_map(|stored| {
                let record = inner.current(stored);
                Some(PendingAlarm {
                    alarm: record.alarm?,
                    class: record.class,
                    id: record.id,
                    status: record.status,
                })
            })
            .collect();
        Ok(AlarmListing {
            alarms,
            next: page.next.as_ref().map(format_cursor),
        })
    }
}

impl Inner {
    /// Sets (or with `None` clears) an object's alarm in its turn, after the calls queued
    /// before. `event` is emitted only if something changed. The caller has checked the key.
    async fn change_alarm_in_turn(
        &self,
        key: &ObjectKey,
        alarm: Option<Alarm>,
        event: EventKind,
    ) -> Result<(), RuntimeError> {
        let slot = self.slots.get_or_create(key);
        let result = async {
            let _turn = slot.turn.lock().await;
            self.ensure_loaded(&slot).await?;
            let current = match slot.live().record.as_ref() {
                Some(record) => record.alarm.clone(),
                None => return Err(RuntimeError::NotFound(key.clone())),
            };
            if current.is_none() && alarm.is_none() {
                return Ok(());
            }
            let update = Update {
                alarm: Some(alarm.clone()),
                ..Update::default()
            };
            self.store.update(key, None, update).await?;
            let change = AlarmChange {
                alarm,
                event: event.clone(),
                object_error: None,
            };
            self.apply_alarm(&slot, change, Some(event));
            Ok(())
        }
        .await;
        drop(slot);
        self.slots.evict_if_idle(key);
        result
    }

    /// Shows a committed alarm change in memory and the scheduler, and reports it with
    /// `event` when given.
    pub(super) fn apply_alarm(&self, slot: &Slot, change: AlarmChange, event: Option<EventKind>) {
        match &change.alarm {
            Some(alarm) => self.schedule_alarm(&slot.key, alarm),
            None => self.alarms.clear(slot.key.clone()),
        }
        self.with_record(slot, |record| {
            record.alarm = change.alarm;
            if let Some(error) = change.object_error {
                record.last_error = Some(error);
            }
        });
        if let Some(event) = event {
            self.emit(slot, event);
        }
    }

    /// Schedules the alarm's next attempt.
    pub(super) fn schedule_alarm(&self, key: &ObjectKey, alarm: &Alarm) {
        self.alarms
            .set(key.clone(), deadline_of(alarm.next_attempt_ms()));
    }

    /// Tries an alarm again after [`ALARM_DEFER`], without counting an attempt.
    pub(super) fn defer_alarm(&self, key: &ObjectKey) {
        self.alarms.set(key.clone(), Instant::now() + ALARM_DEFER);
    }

    /// Schedules every pending alarm in the store, at start-up. Alarms that fell due while no
    /// runtime ran are due at once, and fire once each.
    pub(super) async fn load_alarms(&self) -> anyhow::Result<()> {
        let pending = self.store.pending_alarms().await?;
        let mut unconfigured = 0;
        for (key, next_attempt_ms) in &pending {
            if self.config.class(&key.class).is_none() {
                unconfigured += 1;
                continue;
            }
            self.alarms.set(key.clone(), deadline_of(*next_attempt_ms));
        }
        if unconfigured > 0 {
            tracing::warn!(
                count = unconfigured,
                "alarms of objects whose class is not configured stay pending and are not delivered"
            );
        }
        if !pending.is_empty() {
            tracing::info!(
                count = pending.len() - unconfigured,
                "scheduled pending alarms"
            );
        }
        Ok(())
    }
}

/// Delivers each alarm that falls due, each in its own task; the tasks share the
/// `limits.max_alarm_deliveries` permits.
pub(super) async fn dispatch_alarms(
    inner: std::sync::Weak<Inner>,
    mut fired: tokio::sync::mpsc::UnboundedReceiver<ObjectKey>,
) {
    while let Some(key) = fired.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        tokio::spawn(async move { inner.deliver_alarm(key).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let cursor = AlarmCursor {
            next_attempt_ms: 1_800_000_000_000,
            key: ObjectKey::parse("kv", "a:b").unwrap(),
        };
        let text = format_cursor(&cursor);
        assert_eq!(text, "1800000000000/kv/a:b");
        assert_eq!(parse_alarm_cursor(&text), Ok(cursor));
        for bad in ["", "12", "x/kv/a", "12/kv", "12/Kv/a"] {
            let err = parse_alarm_cursor(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }
}
