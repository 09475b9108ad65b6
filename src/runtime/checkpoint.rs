//! The checkpoint after a call: in the default durability mode, storage that changed is
//! committed before the caller sees the response (the output gate), together with the call's
//! count and any change the call made to the object's alarm. An alarm delivery is
//! checkpointed in every mode, because its success clears the alarm. In the hibernate-only
//! mode a caller's call commits only its alarm change, still before the response.

use super::alarms::AlarmChange;
use super::handler::{StorageFailure, StorageHint};
use super::slot::{Slot, Turn};
use super::{Inner, RuntimeError};
use crate::config::ClassConfig;
use crate::model::{Status, now_ms};
use crate::store::{StoreError, Update};

impl Inner {
    /// Saves storage that changed before the response is released (the output gate), in the
    /// per-call durability mode, and after every alarm delivery, with the call's change to
    /// the alarm if it made one. Storage over the limit is discarded with the sandbox.
    pub(super) async fn checkpoint_after(
        &self,
        slot: &Slot,
        turn: &mut Turn,
        class: &ClassConfig,
        method: &str,
        hint: &StorageHint,
        change: Option<&AlarmChange>,
    ) -> Result<(), RuntimeError> {
        let Some(activation) = turn.activation.as_mut() else {
            return self.commit_alarm(slot, turn, method, change).await;
        };

        let alarm_error = change.and_then(|change| change.object_error.clone());
        let alarm = change.map(|change| change.alarm.clone());
        let limit = self.config.limits.max_storage_bytes;
        let checkpoint_failed = |reason: String| RuntimeError::CheckpointFailed {
            key: slot.key.clone(),
            method: method.to_owned(),
            reason,
        };
        let recovering = slot
            .live()
            .record
            .as_ref()
            .is_some_and(|r| r.status == Status::Failed);

        // Storage the handler reported unchanged is not read; the alarm may still need writing.
        let unchanged = *hint == StorageHint::Unchanged && !recovering;
        if unchanged && alarm.is_none() {
            return Ok(());
        }

        let storage = match hint {
            _ if unchanged => Ok(None),
            StorageHint::Snapshot(storage) if storage.len() <= limit => Ok(Some(storage.clone())),
            StorageHint::Snapshot(_) => Err(StorageFailure::TooLarge),
            StorageHint::None | StorageHint::Unchanged => activation
                .channel
                .read_storage(class.storage_read_timeout, limit)
                .await
                .map(Some),
        };
        let storage = match storage {
            Ok(storage) => storage,
            Err(StorageFailure::TooLarge) => {
                let error = RuntimeError::StorageTooLarge {
                    key: slot.key.clone(),
                    method: method.to_owned(),
                    limit,
                };
                self.retire(slot, turn, error.to_string()).await;
                return Err(error);
            }
            Err(StorageFailure::Failed(reason)) => return Err(checkpoint_failed(reason)),
        };

        let changed = storage
            .as_ref()
            .is_some_and(|storage| activation.saved.as_ref() != Some(storage));
        if !changed && !recovering && alarm.is_none() {
            return Ok(());
        }

        // The call's count, and those not yet flushed, go into the same transaction as its
        // storage, so a crash never keeps the call's changes but loses its count.
        let call_at = now_ms();
        let activity = {
            let mut activity = std::mem::take(&mut slot.live().unflushed);
            activity.calls += 1;
            activity.last_call_at = Some(call_at);
            activity
        };
        let update = Update {
            storage: storage.clone().filter(|_| changed),
            status: recovering.then_some(Status::Active),
            last_error: match alarm_error {
                Some(error) => Some(Some(error)),
                None => recovering.then_some(None),
            },
            activity: Some(activity.clone()),
            alarm,
            ..Update::default()
        };
        let result = self
            .store
            .update(&slot.key, Some(activation.generation), update)
            .await;
        {
            let mut live = slot.live();
            match &result {
                Ok(()) => live.counted_call_at = Some(call_at),
                Err(_) => {
                    // Returned to memory for the next flush, without this call, which
                    // finish_call counts as failed.
                    live.unflushed.calls += activity.calls - 1;
                    live.unflushed.errors += activity.errors;
                }
            }
        }
        match result {
            Ok(()) => {
                let bytes = storage.as_ref().map(|storage| storage.len() as u64);
                if storage.is_some() {
                    activation.saved = storage;
                }
                slot.live().save_failures = 0;
                self.with_record(slot, |record| {
                    if let Some(bytes) = bytes {
                        record.storage_bytes = bytes;
                    }
                    if recovering {
                        record.status = Status::Active;
                        record.last_error = None;
                    }
                });
                Ok(())
            }
            Err(err @ StoreError::StaleGeneration { .. }) => {
                let reason = err.to_string();
                self.retire(slot, turn, reason.clone()).await;
                Err(checkpoint_failed(reason))
            }
            Err(err) => Err(checkpoint_failed(err.to_string())),
        }
    }

    /// Commits a call's alarm change on its own, when no checkpoint carries it: a caller's
    /// call in the hibernate-only mode, still before the response.
    pub(super) async fn commit_alarm(
        &self,
        slot: &Slot,
        turn: &mut Turn,
        method: &str,
        change: Option<&AlarmChange>,
    ) -> Result<(), RuntimeError> {
        let Some(change) = change else {
            return Ok(());
        };
        let generation = turn.activation.as_ref().map(|a| a.generation);
        let update = Update {
            alarm: Some(change.alarm.clone()),
            last_error: change.object_error.clone().map(Some),
            ..Update::default()
        };
        let failed = |reason: String| RuntimeError::CheckpointFailed {
            key: slot.key.clone(),
            method: method.to_owned(),
            reason,
        };
        match self.store.update(&slot.key, generation, update).await {
            Ok(()) => Ok(()),
            Err(err @ StoreError::StaleGeneration { .. }) => {
                let reason = err.to_string();
                self.retire(slot, turn, reason.clone()).await;
                Err(failed(reason))
            }
            Err(err) => Err(failed(err.to_string())),
        }
    }
}
