//! Durable state: object records, storage snapshots fenced by generation, and the event
//! journal.
//!
//! [`Store`] is the seam between the runtime and the database. It speaks only domain types, so
//! a shared PostgreSQL store can sit behind it later; [`SqliteStore`] is the embedded one.

mod lock;
mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;

use crate::model::{Alarm, Event, ObjectKey, SandboxRef, Status};

pub use lock::{DataDirLock, LockError};
pub use sqlite::SqliteStore;

/// Failures a caller branches on; anything else is `Database`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write carried a generation older than the object's: a stale activation tried to
    /// write and was refused.
    #[error("stale write refused for {key}: generation {attempted} is older than {current}")]
    StaleGeneration {
        key: ObjectKey,
        attempted: u64,
        current: u64,
    },
    #[error("object {0} not found")]
    NotFound(ObjectKey),
    #[error("store error: {0}")]
    Database(String),
    #[error("the store is closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Database(err.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An object's row as stored, without the in-memory details the runtime adds.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub key: ObjectKey,
    /// Row id: unique for the store's lifetime and never reused, so sandbox names derived
    /// from it never collide.
    pub oid: i64,
    pub status: Status,
    pub generation: u64,
    /// The saved storage as JSON text; only loaded when asked for.
    pub storage: Option<Bytes>,
    pub storage_bytes: u64,
    /// Set for this object; `None` means its class's idle timeout.
    pub idle_timeout_ms: Option<u64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_call_at: Option<i64>,
    pub last_wake_at: Option<i64>,
    pub last_hibernate_at: Option<i64>,
    pub last_error: Option<String>,
    pub calls: u64,
    pub errors: u64,
    pub sandbox: Option<SandboxRef>,
    pub alarm: Option<Alarm>,
}

/// The data a wake needs from the store: the new generation and the storage to push.
#[derive(Debug, Clone)]
pub struct WakeTicket {
    pub oid: i64,
    pub generation: u64,
    pub storage: Option<Bytes>,
    /// Whether this wake created the object.
    pub created: bool,
}

/// A set of changes to one object's row. `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub status: Option<Status>,
    /// New storage snapshot (JSON bytes).
    pub storage: Option<Bytes>,
    /// `Some(None)` clears the last error.
    pub last_error: Option<Option<String>>,
    /// `Some(None)` clears the sandbox.
    pub sandbox: Option<Option<SandboxRef>>,
    pub stamp_wake: bool,
    pub stamp_hibernate: bool,
    /// The time written to `updated_at` and the stamped fields, in Unix milliseconds; the
    /// store's clock when `None`.
    pub at: Option<i64>,
    /// Call counts to add in the same transaction, as [`Store::record_activity`] adds them.
    pub activity: Option<Activity>,
    /// `Some(None)` clears the alarm; `Some(Some(alarm))` sets or replaces it.
    pub alarm: Option<Option<Alarm>>,
}

/// Call bookkeeping gathered in memory and written in batches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    pub calls: u64,
    pub errors: u64,
    pub last_call_at: Option<i64>,
}

/// The filter and position of one listing page.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub class: Option<String>,
    pub status: Option<Status>,
    /// Resume after this key (exclusive), in (class, id) order.
    pub after: Option<ObjectKey>,
    pub limit: usize,
}

/// The filter and position of one page of pending alarms.
#[derive(Debug, Clone, Default)]
pub struct AlarmQuery {
    pub class: Option<String>,
    /// Resume after this position (exclusive), in (next attempt, class, id) order.
    pub after: Option<AlarmCursor>,
    pub limit: usize,
}

/// A position in the list of pending alarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmCursor {
    /// The alarm's next attempt, in Unix milliseconds.
    pub next_attempt_ms: i64,
    pub key: ObjectKey,
}

/// One page of pending alarms, soonest next attempt first.
#[derive(Debug, Clone)]
pub struct AlarmPage {
    /// Objects with an alarm, each with `alarm` set.
    pub objects: Vec<StoredObject>,
    pub next: Option<AlarmCursor>,
}

/// One page of a listing, in (class, id) order.
#[derive(Debug, Clone)]
pub struct Page {
    pub objects: Vec<StoredObject>,
    /// The key to pass as `after` for the next page; `None` on the last page.
    pub next: Option<ObjectKey>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Loads one object; storage bytes are included only when `with_storage` is set.
    async fn get(&self, key: &ObjectKey, with_storage: bool) -> StoreResult<Option<StoredObject>>;

    /// Creates the object if it is new, bumps its generation, marks it waking and returns
    /// the saved storage, in one transaction.
    async fn begin_wake(&self, key: &ObjectKey) -> StoreResult<WakeTicket>;

    /// Applies `update` if the object's generation is still `generation` (when given).
    async fn update(
        &self,
        key: &ObjectKey,
        generation: Option<u64>,
        update: Update,
    ) -> StoreResult<()>;

    /// Queues `update` like [`Store::update`] without waiting for its commit, for bookkeeping
    /// that a crash may lose (start-up reconciles it). Queued writes keep their order.
    fn update_nowait(&self, key: &ObjectKey, generation: Option<u64>, update: Update);

    /// Removes the object and its storage; returns whether it existed.
    async fn delete(&self, key: &ObjectKey) -> StoreResult<bool>;

    /// Sets (or with `None` clears) an object's own idle timeout; returns whether it exists.
    async fn set_idle_timeout(
        &self,
        key: &ObjectKey,
        idle_timeout_ms: Option<u64>,
    ) -> StoreResult<bool>;

    /// Adds call counts and the last call time, for many objects at once.
    async fn record_activity(&self, batch: Vec<(ObjectKey, Activity)>) -> StoreResult<()>;

    /// Appends lifecycle events to the journal.
    async fn append_events(&self, events: Vec<Event>) -> StoreResult<()>;

    /// Returns the newest `limit` journal events, oldest first.
    async fn recent_events(&self, limit: usize) -> StoreResult<Vec<Event>>;

    async fn list(&self, query: &ListQuery) -> StoreResult<Page>;

    /// Objects in any of `statuses`, for reconciliation at start-up.
    async fn with_status(&self, statuses: &[Status]) -> StoreResult<Vec<StoredObject>>;

    async fn count_by_status(&self) -> StoreResult<BTreeMap<Status, u64>>;

    /// Returns every pending alarm's object and next attempt (Unix milliseconds), for
    /// scheduling them at start-up.
    async fn pending_alarms(&self) -> StoreResult<Vec<(ObjectKey, i64)>>;

    /// Lists a page of objects with a pending alarm, soonest next attempt first.
    async fn list_alarms(&self, query: &AlarmQuery) -> StoreResult<AlarmPage>;

    /// Waits until every write sent so far is committed.
    async fn flush(&self) -> StoreResult<()>;
}
