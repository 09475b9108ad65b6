//! Routing a call: wait for the object's turn, wake it if needed, forward the call, and in
//! the default durability mode checkpoint its storage before the caller sees the response.
//! Alarm deliveries take the same path, so they queue with the object's other calls.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::delivery::Origin;
use super::handler::{CallFailure, HandlerReply};
use super::slot::{Slot, Turn};
use super::{Inner, Runtime, RuntimeError};
use crate::config::{ClassConfig, Durability};
use crate::model::alarm::ALARM_METHOD;
use crate::model::{EventKind, MethodName, ObjectKey, now_ms};

/// Time a refused connection is given to show up as a sandbox exit before it counts as a
/// handler fault.
const EXIT_NOTICE: Duration = Duration::from_millis(200);

/// A method call as the caller sends it.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub method: MethodName,
    pub body: Bytes,
    /// Passed to the handler; `application/json` when absent.
    pub content_type: Option<String>,
}

/// The handler's response, passed back as it is.
#[derive(Debug, Clone)]
pub struct CallReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
    /// The generation of the activation that served the call.
    pub generation: u64,
    /// Time from arrival to response, including any wait and wake.
    pub duration: Duration,
}

impl Runtime {
    /// Calls `method` on the object, creating and waking it as needed.
    pub async fn call(
        &self,
        key: &ObjectKey,
        request: CallRequest,
    ) -> Result<CallReply, RuntimeError> {
        self.inner.call(key, request).await
    }
}

/// Counts a call as in flight, on its object and on the runtime, until dropped.
pub(super) struct InFlight {
    inner: Arc<Inner>,
    slot: Arc<Slot>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.slot.live().in_flight -= 1;
        self.inner.calls_in_flight.send_modify(|n| *n -= 1);
    }
}

impl Inner {
    pub(super) fn enter_call(self: &Arc<Self>, slot: &Arc<Slot>) -> Result<InFlight, RuntimeError> {
        {
            let mut live = slot.live();
            // One call runs; the rest of those in flight wait.
            if live.in_flight > self.config.limits.max_queued_calls {
                return Err(RuntimeError::Overloaded {
                    key: slot.key.clone(),
                    queued: live.in_flight - 1,
                });
            }
            live.in_flight += 1;
        }
        self.calls_in_flight.send_modify(|n| *n += 1);
        Ok(InFlight {
            inner: Arc::clone(self),
            slot: Arc::clone(slot),
        })
    }

    async fn call(
        self: &Arc<Self>,
        key: &ObjectKey,
        request: CallRequest,
    ) -> Result<CallReply, RuntimeError> {
        let class = self.class(&key.class)?;
        if request.method.as_str() == ALARM_METHOD {
            return Err(RuntimeError::ReservedMethod {
                method: ALARM_METHOD.to_owned(),
            });
        }
        let limit = self.config.limits.max_request_bytes;
        if request.body.len() > limit {
            return Err(RuntimeError::BodyTooLarge {
                size: request.body.len(),
                limit,
            });
        }
        if self.closing.load(Ordering::SeqCst) {
            return Err(RuntimeError::ShuttingDown);
        }
        let slot = self.slots.get_or_create(key);
        let in_flight = self.enter_call(&slot)?;
        // A wake already under way counts as one this call waits for.
        let wakes_before = {
            let live = slot.live();
            live.wake_attempts - u64::from(live.waking)
        };
        let started = Instant::now();
        let mut turn = slot.turn.lock().await;
        // Left set only by a call whose caller went away before finish_call.
        slot.live().counted_call_at = None;
        // Shutdown hibernates objects in turn; a call queued behind that must not wake one again.
        if self.is_closing() && turn.activation.is_none() {
            return Err(RuntimeError::ShuttingDown);
        }
        self.ensure_loaded(&slot).await?;
        let outcome = match self.failed_while_waiting(&slot, &turn, wakes_before) {
            Some(failure) => Err(failure),
            None => {
                self.call_in_turn(&slot, &mut turn, &class, &request, &Origin::Caller)
                    .await
            }
        };
        let duration = started.elapsed();
        let method = &request.method;
        self.finish_call(&slot, &turn, in_flight, method, &outcome, duration, true);
        drop(turn);
        outcome.map(|reply| CallReply {
            status: reply.status,
            content_type: reply.content_type,
            body: reply.body,
            generation: slot.live().record.as_ref().map_or(0, |r| r.generation),
            duration,
        })
    }

    /// The failure of a wake that started and failed while this call waited for its turn. All
    /// callers queued for one wake share its outcome, so a handler that cannot start costs
    /// them one wake timeout, not one each.
    fn failed_while_waiting(
        &self,
        slot: &Slot,
        turn: &Turn,
        wakes_before: u64,
    ) -> Option<RuntimeError> {
        if turn.activation.is_some() {
            return None;
        }
        let live = slot.live();
        let failure = live
            .wake_failure
            .as_ref()
            .filter(|f| f.attempt > wakes_before)?;
        Some(RuntimeError::WakeFailed {
            key: slot.key.clone(),
            reason: failure.reason.clone(),
            timed_out: failure.timed_out,
        })
    }

    /// Forwards the call in the object's turn, waking it first if needed, and checkpoints
    /// its storage and any alarm change.
    pub(super) async fn call_in_turn(
        self: &Arc<Self>,
        slot: &Slot,
        turn: &mut Turn,
        class: &Arc<ClassConfig>,
        request: &CallRequest,
        origin: &Origin,
    ) -> Result<HandlerReply, RuntimeError> {
        let method = request.method.as_str();
        let failed = |reason: String| RuntimeError::SandboxFailed {
            key: slot.key.clone(),
            method: method.to_owned(),
            reason,
        };
        let mut retried = false;
        loop {
            self.ensure_active(slot, turn, class).await?;
            let Some(activation) = turn.activation.as_ref() else {
                return Err(RuntimeError::NotFound(slot.key.clone()));
            };
            let sandbox = activation.sandbox.clone();
            let abort = CancellationToken::new();
            slot.live().abort = Some(abort.clone());
            let channel = Arc::clone(&activation.channel);
            let forwarded = channel.call(
                method,
                request.body.clone(),
                request.content_type.as_deref(),
                class.call_timeout,
                self.config.limits.max_response_bytes,
            );
            let result = tokio::select! {
                _ = abort.cancelled() => None,
                result = forwarded => Some(result),
            };
            slot.live().abort = None;
            let Some(result) = result else {
                return Err(self.aborted(slot, turn, method).await);
            };
            let failure = match result {
                Ok(reply) => {
                    let alarm = self
                        .alarm_after_reply(slot, turn, class, method, origin, &reply)
                        .await?;
                    // A delivery's success clears its alarm, so it is checkpointed in every
                    // mode: the alarm never leaves the store without the delivery's effect.
                    let delivery = matches!(origin, Origin::Alarm(_));
                    if self.config.runtime.durability == Durability::PerCall || delivery {
                        self.checkpoint_after(
                            slot,
                            turn,
                            class,
                            method,
                            &reply.storage,
                            alarm.as_ref(),
                        )
                        .await?;
                    } else {
                        self.commit_alarm(slot, turn, method, alarm.as_ref())
                            .await?;
                    }
                    if let Some(change) = alarm {
                        let event = origin.report(change.event.clone());
                        self.apply_alarm(slot, change, event);
                    }
                    return Ok(reply);
                }
                Err(failure) => failure,
            };
            // A refused or broken connection usually means the sandbox died; give its exit a
            // moment to be reported, then replace it.
            let exit = sandbox.exit_within(EXIT_NOTICE).await;
            if let Some(exit) = &exit {
                self.sandbox_lost(slot, turn, &exit.detail).await;
            }
            match failure {
                CallFailure::NotSent(_) if exit.is_some() && !retried => retried = true,
                CallFailure::NotSent(reason) | CallFailure::Failed(reason) => {
                    return Err(failed(match exit {
                        Some(exit) => {
                            format!("the sandbox exited during the call ({})", exit.detail)
                        }
                        None => reason,
                    }));
                }
                CallFailure::Timeout => {
                    return Err(self.timed_out(slot, turn, method, class.call_timeout).await);
                }
                CallFailure::TooLarge => {
                    return Err(RuntimeError::ResponseTooLarge {
                        key: slot.key.clone(),
                        method: method.to_owned(),
                        limit: self.config.limits.max_response_bytes,
                    });
                }
            }
        }
    }

    /// Ends a call that was cancelled. Its changes must not be saved, because its caller is
    /// told it failed: in the per-call durability mode the sandbox, which may already hold
    /// them, is stopped unsaved, and the next call wakes from the last checkpoint. In the
    /// hibernate-only mode that would lose every write since the wake, so the sandbox stays.
    async fn aborted(&self, slot: &Slot, turn: &mut Turn, method: &str) -> RuntimeError {
        let reason = slot
            .live()
            .abort_reason
            .take()
            .unwrap_or_else(|| "the call was cancelled".into());
        let reason = match self.config.runtime.durability {
            Durability::PerCall => {
                let note = format!("{reason}; the call's changes were discarded with its sandbox");
                self.retire(slot, turn, format!("a call was aborted: {note}"))
                    .await;
                note
            }
            Durability::HibernateOnlyUnsafe => {
                format!("{reason}; its changes may still be saved when the object hibernates")
            }
        };
        RuntimeError::Aborted {
            key: slot.key.clone(),
            method: method.to_owned(),
            reason,
        }
    }

    /// Ends a call that outlived its timeout. In the per-call mode its sandbox is stopped
    /// unsaved, so the call's changes (its caller got an error) are discarded, the next call
    /// never runs beside it and starts from the last checkpoint. In the hibernate-only mode
    /// that would discard every write since the wake, so the call keeps running.
    async fn timed_out(
        &self,
        slot: &Slot,
        turn: &mut Turn,
        method: &str,
        timeout: Duration,
    ) -> RuntimeError {
        let then = match self.config.runtime.durability {
            Durability::PerCall => {
                let reason = format!(
                    "{method} timed out after {}",
                    humantime::format_duration(timeout)
                );
                self.retire(slot, turn, reason).await;
                "its sandbox was stopped and the call's changes discarded"
            }
            Durability::HibernateOnlyUnsafe => {
                "it keeps running in the sandbox, beside the calls after it"
            }
        };
        RuntimeError::CallTimeout {
            key: slot.key.clone(),
            method: method.to_owned(),
            timeout,
            then,
        }
    }

    /// Counts the call, restarts the idle clock, ends the call's in-flight count and, with
    /// `report`, reports the call, in that order: the object is never idle with a deadline
    /// missing, and the event shows it no longer busy. Alarm deliveries report their own
    /// events instead.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish_call(
        &self,
        slot: &Slot,
        turn: &Turn,
        in_flight: InFlight,
        method: &MethodName,
        outcome: &Result<HandlerReply, RuntimeError>,
        duration: Duration,
        report: bool,
    ) {
        {
            let mut live = slot.live();
            let now = match live.counted_call_at.take() {
                // Its checkpoint already wrote the count.
                Some(at) => at,
                None => {
                    let now = now_ms();
                    live.unflushed.calls += 1;
                    live.unflushed.last_call_at = Some(now);
                    now
                }
            };
            if outcome.is_err() {
                live.unflushed.errors += 1;
            }
            if let Some(record) = live.record.as_mut() {
                record.calls += 1;
                record.last_call_at = chrono::DateTime::from_timestamp_millis(now);
                if outcome.is_err() {
                    record.errors += 1;
                }
            }
        }
        if let Ok(mut dirty) = self.dirty.lock() {
            dirty.insert(slot.key.clone());
        }
        if let Some(activation) = &turn.activation {
            self.start_idle_clock(slot, activation.idle_timeout);
        }
        drop(in_flight);
        if !report {
            return;
        }
        let kind = match outcome {
            Ok(reply) => EventKind::Call {
                method: method.to_string(),
                status: reply.status,
                duration_ms: duration.as_secs_f64() * 1000.0,
            },
            Err(err) => EventKind::CallFailed {
                method: method.to_string(),
                error: err.to_string(),
            },
        };
        self.emit(slot, kind);
    }
}
