//! One slot per object the runtime has touched: the turn that serialises its work and the
//! live state that listings read without waiting for that turn.
//!
//! Only the task holding `turn` may wake, call, hibernate or delete the object. Tokio's mutex
//! queues waiters in arrival order, which gives turn-based calls and a single wake however
//! many callers arrive at once. `live` is a plain mutex held only for short reads and writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::handler::Channel;
use crate::config::ClassConfig;
use crate::model::{ObjectKey, ObjectRecord};
use crate::sandbox::{Sandbox, SandboxDriver};
use crate::store::Activity;

/// One place in a bounded set (`limits.max_active_objects`, `limits.max_warm_objects`), given
/// back when dropped.
pub struct Place(Arc<AtomicUsize>);

impl Place {
    /// Takes a place if fewer than `limit` are taken.
    pub fn take(count: &Arc<AtomicUsize>, limit: usize) -> Option<Place> {
        let taken = count.fetch_add(1, Ordering::SeqCst);
        if taken >= limit {
            count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Place(Arc::clone(count)))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running sandbox and the runtime's facts about it.
pub struct Activation {
    /// Its place among the active objects.
    pub _place: Place,
    /// Its place in the warm tier, while its sandbox is frozen after hibernation.
    pub warm: Option<Place>,
    pub generation: u64,
    pub class: Arc<ClassConfig>,
    pub sandbox: Sandbox,
    /// The connection to its handler.
    pub channel: Arc<Channel>,
    /// The driver that runs its sandbox.
    pub driver: Arc<dyn SandboxDriver>,
    /// The storage last written to the store, to skip checkpoints that would change nothing.
    pub saved: Option<Bytes>,
    pub idle_timeout: Duration,
}

/// State only the holder of the turn reads or changes.
#[derive(Default)]
pub struct Turn {
    pub activation: Option<Activation>,
}

/// State listings and the scheduler read at any time.
#[derive(Default)]
pub struct Live {
    /// The object's record as last known; `None` before it is loaded or once deleted.
    pub record: Option<ObjectRecord>,
    /// Whether `record` reflects the store (a `None` then means the object does not exist).
    pub loaded: bool,
    /// Calls queued or running.
    pub in_flight: u32,
    /// When the last call ended (or the object woke): the start of the idle clock.
    pub idle_since: Option<Instant>,
    /// When the object hibernates (or retries a failed hibernation) if nothing comes first.
    pub deadline: Option<(Instant, DateTime<Utc>)>,
    /// Cancels the running call, for a forced hibernation, a delete or a shutdown.
    pub abort: Option<CancellationToken>,
    /// Why the running call was cancelled, for its caller's error.
    pub abort_reason: Option<String>,
    /// Whether a wake is under way, so a caller arriving now waits for that wake's outcome.
    pub waking: bool,
    /// Hibernation attempts that failed in a row, for backoff.
    pub save_failures: u32,
    /// Call counts not yet written to the store.
    pub unflushed: Activity,
    /// Set when the running call's checkpoint wrote the call's count along with its storage:
    /// the `last_call_at` it wrote, so the call is not counted a second time.
    pub counted_call_at: Option<i64>,
    /// Wakes started so far, so a queued caller can tell whether one ran while it waited.
    pub wake_attempts: u64,
    /// The last wake's failure, shared with every caller that waited for that wake.
    pub wake_failure: Option<WakeFailure>,
}

/// A failed wake, as callers that waited for it report it.
#[derive(Debug, Clone)]
pub struct WakeFailure {
    /// The value of `wake_attempts` for the wake that failed.
    pub attempt: u64,
    pub reason: String,
    pub timed_out: bool,
}

impl Live {
    /// Returns the record as the API shows it, with the in-memory fields filled in. Transitions and
    /// calls keep `record` current, so it is newer than the store's row.
    pub fn view(&self) -> Option<ObjectRecord> {
        let mut record = self.record.clone()?;
        record.calls_in_flight = self.in_flight;
        record.hibernate_at = self.deadline.map(|(_, at)| at);
        Some(record)
    }

    /// Returns whether the deadline has passed with no call waiting.
    pub fn due(&self, now: Instant) -> bool {
        self.in_flight == 0 && self.deadline.is_some_and(|(at, _)| at <= now)
    }
}

pub struct Slot {
    pub key: ObjectKey,
    pub turn: tokio::sync::Mutex<Turn>,
    pub live: Mutex<Live>,
}

impl Slot {
    fn new(key: ObjectKey) -> Self {
        Self {
            key,
            turn: tokio::sync::Mutex::new(Turn::default()),
            live: Mutex::new(Live::default()),
        }
    }

    /// Locks the live state. A panic elsewhere while it was held leaves it usable.
    pub fn live(&self) -> MutexGuard<'_, Live> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every slot, by key.
#[derive(Default)]
pub struct Slots {
    map: Mutex<HashMap<ObjectKey, Arc<Slot>>>,
}

impl Slots {
    fn map(&self) -> MutexGuard<'_, HashMap<ObjectKey, Arc<Slot>>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get_or_create(&self, key: &ObjectKey) -> Arc<Slot> {
        Arc::clone(
            self.map()
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Slot::new(key.clone()))),
        )
    }

    pub fn get(&self, key: &ObjectKey) -> Option<Arc<Slot>> {
        self.map().get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn all(&self) -> Vec<Arc<Slot>> {
        self.map().values().cloned().collect()
    }

    /// Drops a slot that is unused: no sandbox, no call, nothing unflushed, no other holder.
    /// The check runs under the map's lock, which every new holder must take, so no task can
    /// pick the slot up while it goes.
    pub fn evict_if_idle(&self, key: &ObjectKey) {
        let mut map = self.map();
        let Some(slot) = map.get(key) else { return };
        if Arc::strong_count(slot) != 1 {
            return;
        }
        let Ok(turn) = slot.turn.try_lock() else {
            return;
        };
        let idle = turn.activation.is_none() && {
            let live = slot.live();
            live.in_flight == 0 && live.deadline.is_none() && live.unflushed == Activity::default()
        };
        drop(turn);
        if idle {
            map.remove(key);
        }
    }
}
