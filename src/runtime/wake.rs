//! Waking an object: start its sandbox, wait for health, push its saved storage, and only
//! then mark it active. Any failure stops the half-started sandbox, so an object never runs
//! on empty storage that a later save would write over the real one.

use std::sync::Arc;

use tokio::time::Instant;

use super::handler::Channel;
use super::slot::{Activation, Place, Slot, Turn, WakeFailure};
use super::{Inner, RuntimeError};
use crate::config::{ClassConfig, Durability};
use crate::model::{EventKind, SandboxRef, Status};
use crate::sandbox::{Sandbox, SandboxDriver, SandboxName, SandboxSpec};
use crate::store::{Update, WakeTicket};

/// Log lines quoted in a wake failure, to show why a handler would not start.
const LOG_LINES_IN_ERRORS: usize = 5;

impl Inner {
    /// Makes sure the object has a live sandbox, waking it if needed. A sandbox that died
    /// since the last call is noticed here and replaced.
    pub(super) async fn ensure_active(
        self: &Arc<Self>,
        slot: &Slot,
        turn: &mut Turn,
        class: &Arc<ClassConfig>,
    ) -> Result<(), RuntimeError> {
        if let Some(activation) = &turn.activation {
            match activation.sandbox.exited() {
                None if activation.warm.is_some() => return self.thaw(slot, turn).await,
                None => return Ok(()),
                Some(_) => {
                    let detail = activation.sandbox.exit_detail().await;
                    self.sandbox_lost(slot, turn, &detail).await;
                }
            }
        }
        self.wake_in_turn(slot, turn, class).await
    }

    /// Wakes an object from the warm tier: its sandbox still holds the storage that was saved
    /// when it hibernated, so resuming it is the whole wake. The status write is queued, not
    /// waited for; after a crash, start-up finds the object hibernated with that same storage.
    async fn thaw(self: &Arc<Self>, slot: &Slot, turn: &mut Turn) -> Result<(), RuntimeError> {
        let started = Instant::now();
        let Some(activation) = turn.activation.as_mut() else {
            return Ok(());
        };
        if let Err(err) = activation.driver.thaw(&activation.sandbox).await {
            let reason = format!("cannot thaw its sandbox from the warm tier: {err}");
            self.retire(slot, turn, reason).await;
            return Err(RuntimeError::Internal(err.to_string()));
        }
        activation.warm = None;
        let sandbox = &activation.sandbox;
        let sandbox_ref = sandbox_ref(sandbox, activation.driver.kind());
        let update = Update {
            status: Some(Status::Active),
            sandbox: Some(Some(sandbox_ref.clone())),
            stamp_wake: true,
            ..Update::default()
        };
        self.store
            .update_nowait(&slot.key, Some(activation.generation), update);
        let idle_timeout = activation.idle_timeout;
        self.with_record(slot, |record| {
            record.status = Status::Active;
            record.sandbox = Some(sandbox_ref);
            record.warm = false;
            record.last_wake_at = Some(crate::model::now_utc());
        });
        self.start_idle_clock(slot, idle_timeout);
        self.emit(
            slot,
            EventKind::Woke {
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                warm: true,
            },
        );
        Ok(())
    }

    async fn wake_in_turn(
        self: &Arc<Self>,
        slot: &Slot,
        turn: &mut Turn,
        class: &Arc<ClassConfig>,
    ) -> Result<(), RuntimeError> {
        let started = Instant::now();
        {
            let mut live = slot.live();
            live.wake_attempts += 1;
            live.waking = true;
        }
        let result = self.wake_steps(slot, turn, class, started).await;
        slot.live().waking = false;
        result
    }

    async fn wake_steps(
        self: &Arc<Self>,
        slot: &Slot,
        turn: &mut Turn,
        class: &Arc<ClassConfig>,
        started: Instant,
    ) -> Result<(), RuntimeError> {
        let key = &slot.key;
        let limit = self.config.limits.max_active_objects;
        let place =
            Place::take(&self.active, limit).ok_or_else(|| RuntimeError::TooManyActive {
                key: key.clone(),
                limit,
            })?;
        let ticket = self.store.begin_wake(key).await?;
        self.reload_record(slot).await?;
        if ticket.created {
            self.emit(slot, EventKind::Created);
        }
        self.set_status(slot, Status::Waking);
        self.emit(slot, EventKind::Waking);

        let spec = SandboxSpec {
            name: SandboxName::new(key, ticket.oid),
            oid: ticket.oid,
            key: key.clone(),
            generation: ticket.generation,
            class: Arc::clone(class),
        };
        let driver = Arc::clone(self.drivers.for_class(class));
        let sandbox = match driver.start(&spec).await {
            Ok(sandbox) => sandbox,
            Err(err) => {
                return Err(self
                    .wake_failed(slot, &ticket, None, err.to_string(), false)
                    .await);
            }
        };
        let channel = Arc::new(Channel::new(sandbox.address));
        let health =
            tokio::time::timeout_at(started + class.wake_timeout, channel.wait_healthy(&sandbox));
        match health.await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                return Err(self
                    .wake_failed(slot, &ticket, Some(&sandbox), reason, false)
                    .await);
            }
            Err(_) => {
                let reason = format!(
                    "the handler did not answer GET /__health within the wake timeout of {}",
                    humantime::format_duration(class.wake_timeout)
                );
                return Err(self
                    .wake_failed(slot, &ticket, Some(&sandbox), reason, true)
                    .await);
            }
        }
        if let Some(storage) = &ticket.storage
            && let Err(reason) = channel
                .write_storage(storage.clone(), class.storage_write_timeout)
                .await
        {
            let reason = format!("cannot restore its saved storage: {reason}");
            return Err(self
                .wake_failed(slot, &ticket, Some(&sandbox), reason, false)
                .await);
        }

        let sandbox_ref = sandbox_ref(&sandbox, driver.kind());
        let update = Update {
            status: Some(Status::Active),
            sandbox: Some(Some(sandbox_ref.clone())),
            last_error: Some(None),
            stamp_wake: true,
            ..Update::default()
        };
        // Queued, not waited for: the generation bumped above is already saved, and after a
        // crash start-up marks the object hibernated whatever this write said.
        self.store
            .update_nowait(key, Some(ticket.generation), update);

        let idle_timeout = {
            let mut live = slot.live();
            live.save_failures = 0;
            live.wake_failure = None;
            let record = live
                .record
                .as_mut()
                .ok_or_else(|| RuntimeError::NotFound(key.clone()))?;
            record.status = Status::Active;
            record.generation = ticket.generation;
            record.sandbox = Some(sandbox_ref);
            record.last_error = None;
            record.last_wake_at = Some(crate::model::now_utc());
            std::time::Duration::from_millis(record.idle_timeout_ms)
        };
        turn.activation = Some(Activation {
            _place: place,
            warm: None,
            generation: ticket.generation,
            class: Arc::clone(class),
            sandbox: sandbox.clone(),
            channel,
            driver: Arc::clone(&driver),
            saved: ticket.storage,
            idle_timeout,
        });
        self.start_idle_clock(slot, idle_timeout);
        self.watch_exit(slot, ticket.generation, sandbox);
        self.emit(
            slot,
            EventKind::Woke {
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                warm: false,
            },
        );
        Ok(())
    }

    /// Stops what a failed wake started and marks the object failed with the reason.
    async fn wake_failed(
        &self,
        slot: &Slot,
        ticket: &WakeTicket,
        sandbox: Option<&Sandbox>,
        reason: String,
        timed_out: bool,
    ) -> RuntimeError {
        let mut reason = reason;
        if let Some(sandbox) = sandbox {
            let driver = self.drivers.for_class_name(&self.config, &slot.key.class);
            if let Err(err) = driver.stop(sandbox).await {
                tracing::warn!(object = %slot.key, error = %err, "cannot stop the sandbox of a failed wake");
            }
            if let Some(lines) = self.log_tail(driver.as_ref(), &sandbox.name).await {
                reason = format!("{reason}; last log lines: {lines}");
            }
        }
        let update = Update {
            status: Some(Status::Failed),
            last_error: Some(Some(reason.clone())),
            sandbox: Some(None),
            ..Update::default()
        };
        if let Err(err) = self
            .store
            .update(&slot.key, Some(ticket.generation), update)
            .await
        {
            tracing::warn!(object = %slot.key, error = %err, "cannot record a failed wake");
        }
        self.with_record(slot, |record| {
            record.status = Status::Failed;
            record.last_error = Some(reason.clone());
            record.sandbox = None;
        });
        {
            let mut live = slot.live();
            live.wake_failure = Some(WakeFailure {
                attempt: live.wake_attempts,
                reason: reason.clone(),
                timed_out,
            });
        }
        self.clear_deadline(slot);
        self.emit(
            slot,
            EventKind::WakeFailed {
                error: reason.clone(),
            },
        );
        RuntimeError::WakeFailed {
            key: slot.key.clone(),
            reason,
            timed_out,
        }
    }

    /// Forgets a sandbox that exited on its own; the object falls back to its last checkpoint
    /// and the next call wakes it again.
    pub(super) async fn sandbox_lost(&self, slot: &Slot, turn: &mut Turn, detail: &str) {
        let consequence = match self.config.runtime.durability {
            Durability::PerCall => "its storage is as of the last checkpoint",
            Durability::HibernateOnlyUnsafe => {
                "writes since its last wake are lost (durability = \"hibernate-only-unsafe\")"
            }
        };
        let reason = format!("its sandbox exited unexpectedly ({detail}); {consequence}");
        self.retire(slot, turn, reason).await;
        self.emit(
            slot,
            EventKind::SandboxExited {
                detail: detail.to_owned(),
            },
        );
    }

    /// Stops the sandbox without saving and marks the object hibernated with `reason`.
    pub(super) async fn retire(&self, slot: &Slot, turn: &mut Turn, reason: String) {
        let Some(activation) = turn.activation.take() else {
            return;
        };
        if let Err(err) = activation.driver.stop(&activation.sandbox).await {
            tracing::warn!(object = %slot.key, error = %err, "cannot stop a retired sandbox");
        }
        let update = Update {
            status: Some(Status::Hibernated),
            sandbox: Some(None),
            last_error: Some(Some(reason.clone())),
            ..Update::default()
        };
        if let Err(err) = self
            .store
            .update(&slot.key, Some(activation.generation), update)
            .await
        {
            tracing::warn!(object = %slot.key, error = %err, "cannot record a retired sandbox");
        }
        self.with_record(slot, |record| {
            record.status = Status::Hibernated;
            record.sandbox = None;
            record.last_error = Some(reason.clone());
        });
        self.clear_deadline(slot);
    }

    /// Notices a sandbox that exits while no call is running, so the object does not stay
    /// listed as active with a dead sandbox.
    fn watch_exit(self: &Arc<Self>, slot: &Slot, generation: u64, sandbox: Sandbox) {
        let inner = Arc::downgrade(self);
        let key = slot.key.clone();
        tokio::spawn(async move {
            let exit = sandbox.wait_exit().await;
            let Some(inner) = inner.upgrade() else { return };
            let Some(slot) = inner.slots.get(&key) else {
                return;
            };
            let mut turn = slot.turn.lock().await;
            // A hibernation or a newer wake has already dealt with this sandbox.
            if turn
                .activation
                .as_ref()
                .is_some_and(|a| a.generation == generation)
            {
                inner.sandbox_lost(&slot, &mut turn, &exit.detail).await;
            }
        });
    }

    async fn log_tail(&self, driver: &dyn SandboxDriver, name: &SandboxName) -> Option<String> {
        let text = driver.logs(name, 4096).await.ok()?;
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| !line.starts_with("--- "))
            .collect();
        if lines.is_empty() {
            return None;
        }
        Some(lines[lines.len().saturating_sub(LOG_LINES_IN_ERRORS)..].join(" | "))
    }
}

/// Describes a running sandbox for the object's record.
fn sandbox_ref(sandbox: &Sandbox, driver: &str) -> SandboxRef {
    SandboxRef {
        name: sandbox.name.to_string(),
        driver: driver.to_owned(),
        pid: sandbox.pid,
        address: sandbox.address.to_string(),
        container: sandbox.container.clone(),
    }
}
