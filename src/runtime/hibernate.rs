//! Hibernating an object: snapshot its storage, save it, and only then stop the sandbox. A
//! snapshot or save that fails leaves the sandbox running, marks the object failed and retries
//! with backoff, so nothing unsaved is thrown away.
//!
//! An object that hibernates for being idle may keep its sandbox frozen for the class's
//! `warm_for` (the warm tier): its storage is saved all the same, and a call within that time
//! wakes it by thawing the sandbox. When `warm_for` runs out the sandbox is stopped.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::handler::StorageFailure;
use super::slot::{Place, Slot, Turn};
use super::{Inner, RuntimeError};
use crate::model::{EventKind, ObjectKey, Status};
use crate::store::{StoreError, Update};

impl Inner {
    /// Hibernates the object if its deadline passed and no call is waiting, checked again
    /// once the turn is ours because a call may have come in meanwhile.
    pub(super) async fn hibernate_when_due(self: &Arc<Self>, key: ObjectKey) {
        let Some(slot) = self.slots.get(&key) else {
            return;
        };
        if !slot.live().due(Instant::now()) {
            return;
        }
        let mut turn = slot.turn.lock().await;
        if !slot.live().due(Instant::now()) {
            return;
        }
        let _ = self.hibernate_in_turn(&slot, &mut turn, true).await;
        drop(turn);
        drop(slot);
        self.slots.evict_if_idle(&key);
    }

    /// Hibernates the object; with `keep_warm`, its sandbox may be frozen rather than stopped.
    pub(super) async fn hibernate_in_turn(
        self: &Arc<Self>,
        slot: &Slot,
        turn: &mut Turn,
        keep_warm: bool,
    ) -> Result<(), RuntimeError> {
        self.clear_deadline(slot);
        let Some(activation) = turn.activation.as_ref() else {
            return Ok(());
        };
        if activation.warm.is_some() {
            // Already hibernated; only the frozen sandbox is left to stop.
            self.stop_warm(slot, turn).await;
            return Ok(());
        }
        if let Some(exit) = activation.sandbox.exited() {
            self.sandbox_lost(slot, turn, &exit.detail).await;
            return Ok(());
        }
        let started = Instant::now();
        let storage_timeout = activation.class.storage_read_timeout;
        let limit = self.config.limits.max_storage_bytes;
        // Recorded so that listings by status and the counts find it while it saves.
        let generation = activation.generation;
        let update = Update {
            status: Some(Status::Hibernating),
            ..Update::default()
        };
        self.store
            .update_nowait(&slot.key, Some(generation), update);
        self.set_status(slot, Status::Hibernating);
        self.emit(slot, EventKind::Hibernating);

        let storage = match activation
            .channel
            .read_storage(storage_timeout, limit)
            .await
        {
            Ok(storage) => storage,
            Err(StorageFailure::TooLarge) => {
                let reason = format!(
                    "its storage is over the limit of {limit} bytes (limits.max_storage_bytes)"
                );
                return Err(self.hibernate_failed(slot, turn, reason).await);
            }
            Err(StorageFailure::Failed(reason)) => {
                return Err(self.hibernate_failed(slot, turn, reason).await);
            }
        };
        let changed = activation.saved.as_ref() != Some(&storage);
        // One time for the stored record, the record in memory and the event.
        let hibernated_at = crate::model::now_utc();
        let update = Update {
            status: Some(Status::Hibernated),
            storage: changed.then(|| storage.clone()),
            sandbox: Some(None),
            last_error: Some(None),
            stamp_hibernate: true,
            at: Some(hibernated_at.timestamp_millis()),
            ..Update::default()
        };
        match self
            .store
            .update(&slot.key, Some(activation.generation), update)
            .await
        {
            Ok(()) => {}
            Err(err @ StoreError::StaleGeneration { .. }) => {
                tracing::error!(object = %slot.key, error = %err, "a stale activation tried to hibernate; stopping it unsaved");
                self.retire(slot, turn, err.to_string()).await;
                self.reload_record(slot).await?;
                return Ok(());
            }
            Err(err) => {
                let reason = format!("cannot save its storage: {err}");
                return Err(self.hibernate_failed(slot, turn, reason).await);
            }
        }

        let warm = keep_warm && self.freeze(slot, turn).await;
        if !warm
            && let Some(activation) = turn.activation.take()
            && let Err(err) = activation.driver.stop(&activation.sandbox).await
        {
            tracing::warn!(object = %slot.key, error = %err, "cannot stop a hibernated sandbox");
        }
        slot.live().save_failures = 0;
        let bytes = storage.len() as u64;
        self.with_record(slot, |record| {
            record.status = Status::Hibernated;
            record.sandbox = None;
            record.last_error = None;
            record.storage_bytes = bytes;
            record.last_hibernate_at = Some(hibernated_at);
            record.warm = warm;
        });
        self.emit_at(
            slot,
            EventKind::Hibernated {
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                warm,
            },
            hibernated_at,
        );
        Ok(())
    }

    /// Freezes the sandbox of a just-saved object into the warm tier, if its class keeps one
    /// and the tier has room; returns whether it did. The sandbox is stopped when the class's
    /// `warm_for` runs out.
    async fn freeze(&self, slot: &Slot, turn: &mut Turn) -> bool {
        let Some(activation) = turn.activation.as_mut() else {
            return false;
        };
        let warm_for = activation.class.warm_for;
        if warm_for.is_zero() {
            return false;
        }
        let Some(place) = Place::take(&self.warm, self.config.limits.max_warm_objects) else {
            return false;
        };
        if let Err(err) = activation.driver.freeze(&activation.sandbox).await {
            tracing::warn!(object = %slot.key, error = %err, "cannot freeze a sandbox; stopping it instead");
            return false;
        }
        activation.warm = Some(place);
        self.set_deadline(slot, Instant::now() + warm_for);
        true
    }

    /// Stops a frozen sandbox whose object is already hibernated.
    pub(super) async fn stop_warm(&self, slot: &Slot, turn: &mut Turn) {
        let Some(activation) = turn.activation.take() else {
            return;
        };
        if let Err(err) = activation.driver.stop(&activation.sandbox).await {
            tracing::warn!(object = %slot.key, error = %err, "cannot stop a warm sandbox");
        }
        self.with_record(slot, |record| record.warm = false);
    }

    /// Keeps the sandbox, marks the object failed, and schedules another attempt.
    async fn hibernate_failed(&self, slot: &Slot, turn: &Turn, reason: String) -> RuntimeError {
        let failures = {
            let mut live = slot.live();
            live.save_failures += 1;
            live.save_failures
        };
        let (first, max) = match &turn.activation {
            Some(activation) => (
                activation.class.hibernate_retry,
                activation.class.hibernate_retry_max,
            ),
            None => (Duration::from_secs(1), Duration::from_secs(60)),
        };
        let backoff = first.saturating_mul(1 << (failures - 1).min(16)).min(max);
        // The retry time is left out: a call before it moves the next attempt to the end of
        // its idle timeout. The record's hibernate_at shows when the next attempt is due.
        let message = format!(
            "hibernation failed: {reason}; the sandbox keeps running and the save will be retried"
        );
        if let Some(activation) = &turn.activation {
            let update = Update {
                status: Some(Status::Failed),
                last_error: Some(Some(message.clone())),
                ..Update::default()
            };
            if let Err(err) = self
                .store
                .update(&slot.key, Some(activation.generation), update)
                .await
            {
                tracing::warn!(object = %slot.key, error = %err, "cannot record a failed hibernation");
            }
        }
        self.with_record(slot, |record| {
            record.status = Status::Failed;
            record.last_error = Some(message.clone());
        });
        self.set_deadline(slot, Instant::now() + backoff);
        self.emit(
            slot,
            EventKind::HibernateFailed {
                error: reason.clone(),
                retry_in_ms: backoff.as_millis() as u64,
            },
        );
        RuntimeError::HibernateFailed {
            key: slot.key.clone(),
            reason,
        }
    }
}
