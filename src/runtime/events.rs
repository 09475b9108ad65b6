//! The event bus: every lifecycle change and call is numbered, kept in a short in-memory
//! history, broadcast to live subscribers (console, SSE), logged, and, except for calls,
//! appended to the store's journal in batches.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::model::{Event, EventKind, ObjectKey, ObjectRecord};
use crate::store::Store;

/// Events kept in memory for subscribers that join late.
const HISTORY: usize = 500;
/// Events a slow subscriber may fall behind before it receives a lag notice.
const CHANNEL_CAPACITY: usize = 4096;

pub struct EventBus {
    /// When this bus started, in Unix milliseconds. Sequence numbers are only comparable
    /// between events of one bus, so stream positions carry it too.
    boot: u64,
    seq: AtomicU64,
    live: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
    journal: mpsc::UnboundedSender<JournalEntry>,
}

enum JournalEntry {
    Event(Box<Event>),
    Flush(oneshot::Sender<()>),
}

impl EventBus {
    /// Starts numbering after `last_seq` and seeds the history with the journal's tail.
    pub fn new(store: Arc<dyn Store>, last_seq: u64, recent: Vec<Event>) -> Self {
        let (live, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (journal, pending) = mpsc::unbounded_channel();
        tokio::spawn(write_journal(store, pending));
        let mut history: VecDeque<Event> = recent.into();
        while history.len() > HISTORY {
            history.pop_front();
        }
        Self {
            boot: crate::model::now_ms() as u64,
            seq: AtomicU64::new(last_seq),
            live,
            history: Mutex::new(history),
            journal,
        }
    }

    pub fn emit(&self, key: &ObjectKey, kind: EventKind, object: Option<ObjectRecord>) {
        self.emit_at(key, kind, object, crate::model::now_utc());
    }

    /// Emits an event stamped `at`, for a change whose record carries the same time.
    pub fn emit_at(
        &self,
        key: &ObjectKey,
        kind: EventKind,
        object: Option<ObjectRecord>,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let mut event = Event {
            seq: 0,
            at,
            class: key.class.to_string(),
            id: key.id.to_string(),
            kind,
            object,
        };
        // Numbering and publishing under one lock keeps subscribers' sequence in order, so one
        // resuming after a number misses nothing below it.
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        event.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
        if !matches!(event.kind, EventKind::Call { .. }) {
            let _ = self
                .journal
                .send(JournalEntry::Event(Box::new(event.clone())));
        }
        let _ = self.live.send(event.clone());
        drop(history);
        log(&event);
    }

    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// Subscribes to new events, returning the recent history to show first.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        // Taken under the history lock, so no event falls between the two.
        let history = self
            .history
            .lock()
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default();
        (history, self.live.subscribe())
    }

    /// Waits until every event emitted so far is in the journal.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.journal.send(JournalEntry::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

fn log(event: &Event) {
    let object = format!("{}/{}", event.class, event.id);
    match &event.kind {
        EventKind::Call { .. } => tracing::debug!(object, "{}", event.kind.describe(&event.at)),
        kind if kind.is_failure() => tracing::warn!(object, "{}", kind.describe(&event.at)),
        kind => tracing::info!(object, "{}", kind.describe(&event.at)),
    }
}

async fn write_journal(store: Arc<dyn Store>, mut pending: mpsc::UnboundedReceiver<JournalEntry>) {
    let mut entries = Vec::new();
    while pending.recv_many(&mut entries, 256).await > 0 {
        let mut events = Vec::new();
        let mut waiting = Vec::new();
        for entry in entries.drain(..) {
            match entry {
                JournalEntry::Event(event) => events.push(*event),
                JournalEntry::Flush(done) => waiting.push(done),
            }
        }
        if !events.is_empty()
            && let Err(err) = store.append_events(events).await
        {
            tracing::warn!(error = %err, "cannot append events to the journal");
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}
