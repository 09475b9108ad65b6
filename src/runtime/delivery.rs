//! Alarm deliveries and the `torpor-alarm` response header.
//!
//! A due alarm becomes a call of the reserved `alarm` method that queues for the object's
//! turn like any other call, then takes one of the `limits.max_alarm_deliveries` permits.
//! The alarm is cleared (or moved to its next tick) only when a delivery succeeds, in the
//! same transaction as the delivery's checkpoint, so a crash before that delivers it again.
//! A failed attempt is retried with backoff until the class's attempts run out.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::time::Instant;

use super::alarms::AlarmChange;
use super::call::CallRequest;
use super::handler::{HandlerReply, preview};
use super::slot::{Slot, Turn};
use super::{Inner, RuntimeError};
use crate::config::{ClassConfig, Durability};
use crate::model::alarm::{ALARM_METHOD, ALARM_RULE, AfterFailure, AlarmHeader};
use crate::model::{Alarm, AlarmSource, EventKind, MethodName, ObjectKey, now_ms};
use crate::store::Update;

/// The sender of a call: a caller, or the runtime delivering an alarm.
pub(super) enum Origin {
    Caller,
    Alarm(Delivery),
}

/// One delivery attempt of an alarm.
pub(super) struct Delivery {
    alarm: Alarm,
    /// When the `alarm` request was sent, after any wake.
    sent_at: DateTime<Utc>,
    /// The event of the attempt's outcome, held until the call is finished so that it shows
    /// the object no longer busy.
    event: Mutex<Option<EventKind>>,
}

impl Origin {
    /// Returns the event to emit now: a caller's alarm change is reported at once, a
    /// delivery's outcome once the delivery is finished.
    pub(super) fn report(&self, event: EventKind) -> Option<EventKind> {
        match self {
            Origin::Caller => Some(event),
            Origin::Alarm(delivery) => {
                *delivery.event.lock().unwrap_or_else(|p| p.into_inner()) = Some(event);
                None
            }
        }
    }

    fn take_event(&self) -> Option<EventKind> {
        match self {
            Origin::Caller => None,
            Origin::Alarm(delivery) => delivery
                .event
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        }
    }
}

impl Delivery {
    /// Builds the `alarm` request. Its body contains the scheduled time (RFC 3339 and Unix
    /// milliseconds), the attempt number from 1, and the period of a recurring alarm.
    fn request(&self) -> CallRequest {
        let alarm = &self.alarm;
        let body = json!({
            "scheduled_at": crate::model::format_ms(alarm.at_ms()),
            "scheduled_at_ms": alarm.at_ms(),
            "attempt": alarm.attempt,
            "every_ms": alarm.every_ms,
        });
        CallRequest {
            method: alarm_method(),
            body: Bytes::from(body.to_string()),
            content_type: None,
        }
    }

    fn late_ms(&self) -> f64 {
        let late = self.sent_at - self.alarm.at;
        late.num_microseconds()
            .map_or(late.num_milliseconds() as f64, |us| us as f64 / 1000.0)
    }
}

fn alarm_method() -> MethodName {
    #[allow(clippy::expect_used)]
    MethodName::parse(ALARM_METHOD).expect("the alarm method's name is valid")
}

/// Quotes a header value for messages, at most 200 bytes of it.
fn quoted(value: &[u8]) -> String {
    format!("{:?}", preview(value))
}

impl Inner {
    /// Delivers the object's alarm if it is still pending and due. Runs when its deadline
    /// fires; the alarm is checked again in the object's turn, since an operator or a call
    /// may have changed it meanwhile.
    pub(super) async fn deliver_alarm(self: &Arc<Self>, key: ObjectKey) {
        if self.is_closing() {
            return;
        }
        let class = match self.class(&key.class) {
            Ok(class) => class,
            Err(err) => {
                tracing::warn!(object = %key, error = %err, "alarm stays pending: its class is not configured");
                return;
            }
        };
        let slot = self.slots.get_or_create(&key);
        self.deliver_in_turn(&slot, &class).await;
        drop(slot);
        self.slots.evict_if_idle(&key);
    }

    async fn deliver_in_turn(self: &Arc<Self>, slot: &Arc<Slot>, class: &Arc<ClassConfig>) {
        let Ok(in_flight) = self.enter_call(slot) else {
            tracing::debug!(object = %slot.key, "alarm delivery deferred: the object's queue is full");
            self.defer_alarm(&slot.key);
            return;
        };
        let mut turn = slot.turn.lock().await;
        slot.live().counted_call_at = None;
        // The permit is taken in the object's turn, so a delivery waiting behind a long call
        // holds none, and the alarms of other objects go on.
        let Ok(_permit) = Arc::clone(&self.alarm_permits).acquire_owned().await else {
            return;
        };
        // Shutdown hibernates objects in turn; the alarm stays in the store for the next run.
        if self.is_closing() && turn.activation.is_none() {
            return;
        }
        if let Err(err) = self.ensure_loaded(slot).await {
            tracing::warn!(object = %slot.key, error = %err, "alarm delivery deferred: cannot read the object");
            self.defer_alarm(&slot.key);
            return;
        }
        let pending = slot.live().record.as_ref().and_then(|r| r.alarm.clone());
        let Some(alarm) = pending else {
            return;
        };
        if alarm.next_attempt_ms() > now_ms() {
            self.schedule_alarm(&slot.key, &alarm);
            return;
        }

        let started = Instant::now();
        let woken = self.ensure_active(slot, &mut turn, class).await;
        if let Err(RuntimeError::TooManyActive { .. }) = &woken {
            tracing::debug!(object = %slot.key, "alarm delivery deferred: too many active objects");
            self.defer_alarm(&slot.key);
            return;
        }
        let delivery = Delivery {
            alarm: alarm.clone(),
            sent_at: Utc::now(),
            event: Mutex::new(None),
        };
        let request = delivery.request();
        let origin = Origin::Alarm(delivery);
        let outcome = match woken {
            Ok(()) => {
                self.call_in_turn(slot, &mut turn, class, &request, &origin)
                    .await
            }
            Err(err) => Err(err),
        };
        let mut event = origin.take_event();
        if let Err(err) = &outcome {
            event = self
                .record_failed_attempt(slot, class, &alarm, err.to_string())
                .await;
        }
        let method = alarm_method();
        let duration = started.elapsed();
        self.finish_call(slot, &turn, in_flight, &method, &outcome, duration, false);
        if let Some(event) = event {
            self.emit(slot, event);
        }
    }

    /// Records a failed attempt that no checkpoint carried (a wake, a timeout, a dead
    /// sandbox); returns the event to report.
    async fn record_failed_attempt(
        &self,
        slot: &Slot,
        class: &ClassConfig,
        alarm: &Alarm,
        error: String,
    ) -> Option<EventKind> {
        let change = failure_change(class, alarm, error, now_ms());
        let update = Update {
            alarm: Some(change.alarm.clone()),
            last_error: change.object_error.clone().map(Some),
            ..Update::default()
        };
        if let Err(err) = self.store.update(&slot.key, None, update).await {
            tracing::error!(object = %slot.key, error = %err, "cannot record a failed alarm delivery; trying it again shortly");
            self.defer_alarm(&slot.key);
            return None;
        }
        let event = change.event.clone();
        self.apply_alarm(slot, change, None);
        Some(event)
    }

    /// Decides what a handler's response does to the object's alarm: the `torpor-alarm`
    /// header of a call, or the outcome of a delivery. An invalid header discards the call's
    /// changes and fails the call.
    pub(super) async fn alarm_after_reply(
        &self,
        slot: &Slot,
        turn: &mut Turn,
        class: &ClassConfig,
        method: &str,
        origin: &Origin,
        reply: &HandlerReply,
    ) -> Result<Option<AlarmChange>, RuntimeError> {
        let now = now_ms();
        let delivery = match origin {
            Origin::Caller => return self.header_change(slot, turn, method, reply, now).await,
            Origin::Alarm(delivery) => delivery,
        };
        let alarm = &delivery.alarm;
        // A failed delivery is tried again, whatever its header requested.
        if !(200..300).contains(&reply.status) {
            let error = format!(
                "the alarm method answered HTTP {}: {}",
                reply.status,
                preview(&reply.body)
            );
            return Ok(Some(failure_change(class, alarm, error, now)));
        }
        let next = match &reply.alarm {
            None => alarm.after_success(now),
            Some(raw) => match AlarmHeader::resolve(raw, now) {
                Ok(next) => next,
                Err(reason) => {
                    let error = self.invalid_alarm(slot, turn, method, raw, reason, true);
                    return Err(error.await);
                }
            },
        };
        let event = EventKind::AlarmDelivered {
            scheduled_at: alarm.at,
            attempt: alarm.attempt,
            status: reply.status,
            late_ms: delivery.late_ms(),
            next_at: next.as_ref().map(|a| a.next_attempt_at),
        };
        Ok(Some(AlarmChange {
            alarm: next,
            event,
            object_error: None,
        }))
    }

    /// Returns the change a caller's call requests with its `torpor-alarm` header, if any.
    async fn header_change(
        &self,
        slot: &Slot,
        turn: &mut Turn,
        method: &str,
        reply: &HandlerReply,
        now: i64,
    ) -> Result<Option<AlarmChange>, RuntimeError> {
        let Some(raw) = &reply.alarm else {
            return Ok(None);
        };
        let alarm = match AlarmHeader::resolve(raw, now) {
            Ok(alarm) => alarm,
            Err(reason) => {
                let error = self.invalid_alarm(slot, turn, method, raw, reason, false);
                return Err(error.await);
            }
        };
        let change = match alarm {
            Some(alarm) => AlarmChange {
                event: EventKind::AlarmSet {
                    scheduled_at: alarm.at,
                    every_ms: alarm.every_ms,
                    by: AlarmSource::Handler,
                },
                alarm: Some(alarm),
                object_error: None,
            },
            None => {
                // Clearing an object that has no alarm changes nothing, so nothing is written.
                let pending = slot
                    .live()
                    .record
                    .as_ref()
                    .is_some_and(|r| r.alarm.is_some());
                if !pending {
                    return Ok(None);
                }
                AlarmChange {
                    alarm: None,
                    event: EventKind::AlarmCleared {
                        by: AlarmSource::Handler,
                    },
                    object_error: None,
                }
            }
        };
        Ok(Some(change))
    }

    /// Fails a call whose response carried an invalid `torpor-alarm` header. Its changes
    /// must not be saved, because its caller gets an error. So in the per-call mode the
    /// sandbox, which contains them, is stopped unsaved, as for an aborted call. For a
    /// `delivery` the error counts as a failed attempt of the alarm.
    async fn invalid_alarm(
        &self,
        slot: &Slot,
        turn: &mut Turn,
        method: &str,
        raw: &[u8],
        reason: String,
        delivery: bool,
    ) -> RuntimeError {
        let value = quoted(raw);
        let discarded = self.config.runtime.durability == Durability::PerCall;
        if discarded {
            let stopped = format!("{method} responded with an invalid torpor-alarm header {value}");
            self.retire(slot, turn, stopped).await;
        }
        let consequence = match (delivery, discarded) {
            (false, true) => {
                "the call's changes were discarded with its sandbox, and the alarm is unchanged"
            }
            (false, false) => "the alarm is unchanged",
            (true, true) => {
                "the delivery's changes were discarded with its sandbox, and it counts as a \
                 failed attempt"
            }
            (true, false) => "the delivery counts as a failed attempt",
        };
        RuntimeError::InvalidAlarm {
            key: slot.key.clone(),
            method: method.to_owned(),
            detail: format!("{value}: {reason}; {consequence}. The rule: {ALARM_RULE}"),
        }
    }
}

/// Returns the change after a failed attempt: the alarm is retried with backoff, moved to
/// its next tick, or dropped once the class's attempts are used up.
fn failure_change(class: &ClassConfig, alarm: &Alarm, error: String, now: i64) -> AlarmChange {
    let policy = class.alarm_retry_policy();
    let (next, retry_at, next_at, object_error) = match alarm.after_failure(&error, &policy, now) {
        AfterFailure::Retry(next) => {
            let retry_at = Some(next.next_attempt_at);
            (Some(next), retry_at, None, None)
        }
        AfterFailure::NextTick(next) => {
            let next_at = Some(next.at);
            (Some(next), None, next_at, None)
        }
        AfterFailure::Dropped => {
            let dropped = format!(
                "the alarm for {} was dropped after {} failed attempts; the last: {error}",
                crate::model::format_ms(alarm.at_ms()),
                alarm.attempt
            );
            (None, None, None, Some(dropped))
        }
    };
    AlarmChange {
        alarm: next,
        event: EventKind::AlarmFailed {
            scheduled_at: alarm.at,
            attempt: alarm.attempt,
            error,
            retry_at,
            next_at,
        },
        object_error,
    }
}
