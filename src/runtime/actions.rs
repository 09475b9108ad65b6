//! Operator and client actions on an object besides calls: wake it, hibernate it
//! (optionally aborting the call in flight), delete it, and change its idle timeout.

use std::time::Duration;

use super::{Runtime, RuntimeError};
use crate::model::{EventKind, ObjectKey, ObjectRecord};
use crate::sandbox::SandboxName;

/// The shortest and longest idle timeout an object may be given.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_millis(50);
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 86_400);

impl Runtime {
    /// Wakes the object now, creating it if it is new.
    pub async fn wake(&self, key: &ObjectKey) -> Result<ObjectRecord, RuntimeError> {
        let inner = &self.inner;
        let class = inner.class(&key.class)?;
        if inner.is_closing() {
            return Err(RuntimeError::ShuttingDown);
        }
        let slot = inner.slot_for(key)?;
        let mut turn = slot.turn.lock().await;
        inner.ensure_loaded(&slot).await?;
        inner.ensure_active(&slot, &mut turn, &class).await?;
        drop(turn);
        inner.get(key).await
    }

    /// Hibernates the object after the calls queued before this request. With `force`, the
    /// call running now is aborted first (its caller gets an error and its result is not
    /// saved) instead of being waited for.
    pub async fn hibernate(
        &self,
        key: &ObjectKey,
        force: bool,
    ) -> Result<ObjectRecord, RuntimeError> {
        let inner = &self.inner;
        inner.class(&key.class)?;
        let Some(slot) = inner.slots.get(key) else {
            // Never touched by this runtime, so no sandbox runs: nothing to do.
            return inner.get(key).await;
        };
        if force {
            inner.abort_running(&slot, "an operator forced the object to hibernate");
        }
        let mut turn = slot.turn.lock().await;
        inner.ensure_loaded(&slot).await?;
        inner.hibernate_in_turn(&slot, &mut turn, false).await?;
        drop(turn);
        drop(slot);
        inner.slots.evict_if_idle(key);
        inner.get(key).await
    }

    /// Stops the object's sandbox without saving, and removes its record, storage, alarm and
    /// logs. A call running on it is aborted.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), RuntimeError> {
        let inner = &self.inner;
        inner.known_or_stored(key).await?;
        let slot = inner.slots.get_or_create(key);
        inner.abort_running(&slot, "an operator deleted the object");

        let mut turn = slot.turn.lock().await;
        if let Some(activation) = turn.activation.take()
            && let Err(err) = activation.driver.stop(&activation.sandbox).await
        {
            tracing::warn!(object = %key, error = %err, "cannot stop the sandbox of a deleted object");
        }
        inner.clear_deadline(&slot);

        let stored = inner.store.get(key, false).await?;
        let Some(stored) = stored else {
            slot.live().loaded = false;
            drop(turn);
            drop(slot);
            inner.slots.evict_if_idle(key);
            return Err(RuntimeError::NotFound(key.clone()));
        };

        inner.store.delete(key).await?;
        inner.alarms.clear(key.clone());
        if let Err(err) = inner
            .drivers
            .for_class_name(&inner.config, &key.class)
            .destroy(&SandboxName::new(key, stored.oid))
            .await
        {
            tracing::warn!(object = %key, error = %err, "cannot remove the sandbox folder of a deleted object");
        }

        {
            let mut live = slot.live();
            live.record = None;
            live.loaded = true;
            live.unflushed = Default::default();
            live.save_failures = 0;
            live.idle_since = None;
        }
        if let Ok(mut dirty) = inner.dirty.lock() {
            dirty.remove(key);
        }

        inner.emit(&slot, EventKind::Deleted);
        drop(turn);
        drop(slot);
        inner.slots.evict_if_idle(key);
        Ok(())
    }

    /// Gives the object its own idle timeout, or with `None` returns it to its class's. An
    /// active object's deadline moves at once, counted from its last call.
    pub async fn set_idle_timeout(
        &self,
        key: &ObjectKey,
        timeout: Option<Duration>,
    ) -> Result<ObjectRecord, RuntimeError> {
        let inner = &self.inner;
        let class = inner.class(&key.class)?;
        if let Some(timeout) = timeout
            && !(MIN_IDLE_TIMEOUT..=MAX_IDLE_TIMEOUT).contains(&timeout)
        {
            return Err(RuntimeError::InvalidValue(format!(
                "idle timeout {} is out of range; it must be between {} and {}",
                humantime::format_duration(timeout),
                humantime::format_duration(MIN_IDLE_TIMEOUT),
                humantime::format_duration(MAX_IDLE_TIMEOUT)
            )));
        }

        let slot = inner.slot_for(key)?;
        let mut turn = slot.turn.lock().await;
        let ms = timeout.map(|t| t.as_millis() as u64);
        if !inner.store.set_idle_timeout(key, ms).await? {
            drop(turn);
            drop(slot);
            inner.slots.evict_if_idle(key);
            return Err(RuntimeError::NotFound(key.clone()));
        }

        let effective = timeout.unwrap_or(class.idle_timeout);
        inner.reload_record(&slot).await?;
        if let Some(activation) = turn.activation.as_mut() {
            activation.idle_timeout = effective;
            let since = slot.live().idle_since;
            if let Some(since) = since {
                inner.set_deadline(&slot, since + effective);
            }
        }

        inner.emit(
            &slot,
            EventKind::IdleTimeoutChanged {
                idle_timeout_ms: effective.as_millis() as u64,
            },
        );
        drop(turn);
        inner.get(key).await
    }
}

impl Runtime {
    /// Returns the end of the object's sandbox log, at most `max_bytes`.
    pub async fn logs(&self, key: &ObjectKey, max_bytes: usize) -> Result<String, RuntimeError> {
        let inner = &self.inner;
        inner.class(&key.class)?;
        let stored = inner
            .store
            .get(key, false)
            .await?
            .ok_or_else(|| RuntimeError::NotFound(key.clone()))?;
        inner
            .drivers
            .for_class_name(&inner.config, &key.class)
            .logs(&SandboxName::new(key, stored.oid), max_bytes)
            .await
            .map_err(|e| RuntimeError::Internal(e.to_string()))
    }
}
