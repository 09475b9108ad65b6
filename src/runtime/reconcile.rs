//! Start-up and shutdown.
//!
//! At start-up, sandboxes an earlier run left are stopped and objects it left active are
//! marked hibernated with their last checkpoint. At shutdown, new calls are refused, calls in
//! flight get the grace period to finish, and every active object is hibernated.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Inner;
use crate::model::{EventKind, Status};
use crate::store::Update;

impl Inner {
    pub(super) async fn reconcile(&self) -> anyhow::Result<()> {
        let mut reaped = Vec::new();
        for driver in self.drivers.all() {
            reaped.extend(driver.reap_orphans().await?);
        }
        if !reaped.is_empty() {
            tracing::warn!(
                count = reaped.len(),
                "stopped sandboxes left running by an earlier runtime"
            );
        }
        let stranded = self
            .store
            .with_status(&[
                Status::Waking,
                Status::Active,
                Status::Hibernating,
                Status::Failed,
            ])
            .await?;
        for object in stranded {
            // A failed wake left no sandbox and stays failed until the next wake.
            if object.status == Status::Failed && object.sandbox.is_none() {
                continue;
            }
            let update = Update {
                status: Some(Status::Hibernated),
                sandbox: Some(None),
                ..Update::default()
            };
            self.store.update(&object.key, None, update).await?;
            let slot = self.slots.get_or_create(&object.key);
            self.reload_record(&slot).await?;
            self.emit(&slot, EventKind::Recovered);
        }
        Ok(())
    }

    pub(super) async fn shutdown(self: &Arc<Self>) {
        if self.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        let grace = self.config.runtime.shutdown_grace;
        let mut in_flight = self.calls_in_flight.subscribe();
        let drained = tokio::time::timeout(grace, in_flight.wait_for(|n| *n == 0)).await;
        if drained.is_err() {
            tracing::warn!(grace = ?grace, "calls still running after the shutdown grace period; aborting them");
            for slot in self.slots.all() {
                self.abort_running(
                    &slot,
                    "the runtime is shutting down and its grace period ran out",
                );
            }
        }
        let hibernations = self.slots.all().into_iter().map(|slot| {
            let inner = Arc::clone(self);
            async move {
                let mut turn = slot.turn.lock().await;
                if turn.activation.is_some()
                    && let Err(err) = inner.hibernate_in_turn(&slot, &mut turn, false).await
                {
                    tracing::error!(object = %slot.key, error = %err, "hibernation at shutdown failed");
                    // The save failed, so the sandbox must not outlive us with unsaved state
                    // under a record that lists it as running; the next start recovers the checkpoint.
                    if let Some(activation) = turn.activation.take() {
                        let _ = activation.driver.stop(&activation.sandbox).await;
                    }
                }
            }
        });
        futures::future::join_all(hibernations).await;
        self.drivers.all().for_each(|driver| driver.close());
        self.flush_activity().await;
        self.events.flush().await;
        let _ = self.store.flush().await;
        self.sqlite.close();
    }

    /// Writes call counts gathered in memory to the store, in one batch.
    pub(super) async fn flush_activity(&self) {
        let keys: Vec<_> = match self.dirty.lock() {
            Ok(mut dirty) => dirty.drain().collect(),
            Err(_) => return,
        };
        if keys.is_empty() {
            return;
        }
        let batch: Vec<_> = keys
            .into_iter()
            .filter_map(|key| {
                let slot = self.slots.get(&key)?;
                let activity = std::mem::take(&mut slot.live().unflushed);
                drop(slot);
                self.slots.evict_if_idle(&key);
                Some((key, activity))
            })
            .collect();
        if let Err(err) = self.store.record_activity(batch).await {
            tracing::warn!(error = %err, "cannot write call counts to the store");
        }
    }
}
