//! Object records as callers see them: read from the store, overlaid with what only the
//! runtime's memory has (calls in flight, the hibernation deadline), and the helpers that keep
//! that memory current as the lifecycle moves.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;

use super::slot::Slot;
use super::{Inner, Runtime, RuntimeError};
use crate::model::{EventKind, ObjectKey, ObjectRecord, Status};
use crate::store::{ListQuery, StoredObject};

/// One page of objects.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub objects: Vec<ObjectRecord>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

fn timestamp(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Runtime {
    /// Returns one object's record with its last saved storage.
    pub async fn get(&self, key: &ObjectKey) -> Result<ObjectRecord, RuntimeError> {
        self.inner.known_or_stored(key).await?;
        self.inner.get(key).await
    }

    /// Lists a page of objects in (class, id) order, without storage.
    pub async fn list(&self, query: &ListQuery) -> Result<Listing, RuntimeError> {
        let inner = &self.inner;
        let limit = query.limit.clamp(1, inner.config.limits.max_page_size);
        let page = inner
            .store
            .list(&ListQuery {
                limit,
                ..query.clone()
            })
            .await?;
        // The store's status can trail memory's by a moment; show only what was asked for.
        let objects = page
            .objects
            .into_iter()
            .map(|stored| inner.current(stored))
            .filter(|record| query.status.is_none_or(|status| record.status == status))
            .collect();
        let next = page.next.map(|key| key.to_string());
        Ok(Listing { objects, next })
    }

    /// Counts the objects the runtime keeps in memory: those active, recently called, or
    /// waited for. The rest live only in the store.
    pub fn resident_objects(&self) -> usize {
        self.inner.slots.len()
    }

    /// Counts the objects in each status.
    pub async fn count_by_status(
        &self,
    ) -> Result<std::collections::BTreeMap<Status, u64>, RuntimeError> {
        Ok(self.inner.store.count_by_status().await?)
    }
}

impl Inner {
    pub(super) async fn get(&self, key: &ObjectKey) -> Result<ObjectRecord, RuntimeError> {
        let stored = self
            .store
            .get(key, true)
            .await?
            .ok_or_else(|| RuntimeError::NotFound(key.clone()))?;
        let storage = stored.storage.clone();
        let mut record = self.current(stored);
        record.storage = match storage {
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                RuntimeError::Store(crate::store::StoreError::Database(format!(
                    "saved storage of {key} is not JSON: {e}"
                )))
            })?),
            None => None,
        };
        Ok(record)
    }

    /// Returns the freshest record: memory's if the runtime has it, else the store's.
    pub(super) fn current(&self, stored: StoredObject) -> ObjectRecord {
        if let Some(slot) = self.slots.get(&stored.key)
            && let Some(record) = slot.live().view()
        {
            return record;
        }
        self.record_from_stored(stored)
    }

    pub(super) fn record_from_stored(&self, stored: StoredObject) -> ObjectRecord {
        let class_idle = self
            .config
            .class(&stored.key.class)
            .map(|class| class.idle_timeout)
            .unwrap_or(Duration::from_secs(30));
        ObjectRecord {
            class: stored.key.class,
            id: stored.key.id,
            status: stored.status,
            generation: stored.generation,
            storage: None,
            storage_bytes: stored.storage_bytes,
            idle_timeout_ms: stored
                .idle_timeout_ms
                .unwrap_or(class_idle.as_millis() as u64),
            idle_timeout_overridden: stored.idle_timeout_ms.is_some(),
            hibernate_at: None,
            warm: false,
            calls_in_flight: 0,
            calls: stored.calls,
            errors: stored.errors,
            created_at: timestamp(stored.created_at),
            updated_at: timestamp(stored.updated_at),
            last_call_at: stored.last_call_at.map(timestamp),
            last_wake_at: stored.last_wake_at.map(timestamp),
            last_hibernate_at: stored.last_hibernate_at.map(timestamp),
            last_error: stored.last_error,
            sandbox: stored.sandbox,
            alarm: stored.alarm,
        }
    }

    /// Reads the object's row into memory, keeping counts that are not yet flushed.
    pub(super) async fn reload_record(&self, slot: &Slot) -> Result<(), RuntimeError> {
        let stored = self.store.get(&slot.key, false).await?;
        let mut live = slot.live();
        let pending = live.unflushed.clone();
        live.record = stored.map(|stored| {
            let mut record = self.record_from_stored(stored);
            record.calls += pending.calls;
            record.errors += pending.errors;
            if let Some(at) = pending.last_call_at {
                record.last_call_at = Some(timestamp(at));
            }
            record
        });
        live.loaded = true;
        Ok(())
    }

    /// Loads the record once per slot.
    pub(super) async fn ensure_loaded(&self, slot: &Slot) -> Result<(), RuntimeError> {
        if slot.live().loaded {
            return Ok(());
        }
        self.reload_record(slot).await
    }

    pub(super) fn with_record(&self, slot: &Slot, change: impl FnOnce(&mut ObjectRecord)) {
        let mut live = slot.live();
        if let Some(record) = live.record.as_mut() {
            change(record);
            record.updated_at = crate::model::now_utc();
        }
    }

    pub(super) fn set_status(&self, slot: &Slot, status: Status) {
        self.with_record(slot, |record| record.status = status);
    }

    pub(super) fn emit(&self, slot: &Slot, kind: EventKind) {
        let view = slot.live().view();
        self.events.emit(&slot.key, kind, view);
    }

    pub(super) fn emit_at(&self, slot: &Slot, kind: EventKind, at: DateTime<Utc>) {
        let view = slot.live().view();
        self.events.emit_at(&slot.key, kind, view, at);
    }

    /// Starts the idle clock now: the object hibernates after `idle_timeout` unless a call
    /// comes first.
    pub(super) fn start_idle_clock(&self, slot: &Slot, idle_timeout: Duration) {
        let now = Instant::now();
        slot.live().idle_since = Some(now);
        self.set_deadline(slot, now + idle_timeout);
    }

    pub(super) fn set_deadline(&self, slot: &Slot, at: Instant) {
        let left = at.saturating_duration_since(Instant::now()).as_millis() as i64;
        let wall = timestamp(crate::model::now_ms() + left);
        slot.live().deadline = Some((at, wall));
        self.deadlines.set(slot.key.clone(), at);
    }

    pub(super) fn clear_deadline(&self, slot: &Slot) {
        slot.live().deadline = None;
        self.deadlines.clear(slot.key.clone());
    }

    /// Cancels the call running on the object, if any, giving `reason` to its caller.
    pub(super) fn abort_running(&self, slot: &Slot, reason: &str) {
        let mut live = slot.live();
        if let Some(abort) = live.abort.clone() {
            live.abort_reason = Some(reason.to_owned());
            abort.cancel();
        }
    }

    /// Returns the slot for `key` after checking that its class exists.
    pub(super) fn slot_for(&self, key: &ObjectKey) -> Result<Arc<Slot>, RuntimeError> {
        self.class(&key.class)?;
        Ok(self.slots.get_or_create(key))
    }

    /// Checks that the object's class is configured, or that the object is in the store.
    /// Showing, deleting and clearing an alarm need no sandbox, so they also work on objects
    /// of a class removed from the configuration. For any other object of an unknown class,
    /// the error lists the known classes.
    pub(super) async fn known_or_stored(&self, key: &ObjectKey) -> Result<(), RuntimeError> {
        let Err(unknown) = self.class(&key.class) else {
            return Ok(());
        };
        match self.store.get(key, false).await? {
            Some(_) => Ok(()),
            None => Err(unknown),
        }
    }
}
