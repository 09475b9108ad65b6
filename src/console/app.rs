//! The console's view model: everything the screen shows, changed only by feed updates, key
//! presses and finished actions. Drawing reads it and nothing else, so the same state always
//! draws the same screen.

use std::collections::VecDeque;

use crate::model::{Event, EventKind, ObjectKey, ObjectRecord};

use super::dialog::CallDialog;
use super::source::{CallResult, Feed};

/// Events kept for the event pane.
const EVENT_HISTORY: usize = 200;

/// Whether the console can reach its runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    Live,
    Reconnecting(String),
}

/// Something the console asked the runtime to do, run in the background.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Call {
        key: ObjectKey,
        method: String,
        body: String,
    },
    Hibernate(ObjectKey),
    Wake(ObjectKey),
    /// Fetch the selected object's record with its storage.
    LoadDetail(ObjectKey),
}

/// The outcome of an action.
#[derive(Debug)]
pub enum ActionResult {
    Called(Result<CallResult, String>),
    Done {
        what: String,
        result: Result<(), String>,
    },
    Detail(Result<Box<ObjectRecord>, String>),
}

pub struct App {
    /// The runtime's location, shown in the header.
    pub source_label: String,
    /// Every object, sorted by class then id.
    pub objects: Vec<ObjectRecord>,
    pub selected: usize,
    /// The selected object's record with storage, once loaded.
    pub detail: Option<ObjectRecord>,
    pub events: VecDeque<Event>,
    pub dialog: Option<CallDialog>,
    pub show_help: bool,
    /// The last action's outcome, shown in the footer; `true` marks an error.
    pub message: Option<(String, bool)>,
    pub connection: Connection,
    pub quit: bool,
}

impl App {
    pub fn new(source_label: String) -> Self {
        Self {
            source_label,
            objects: Vec::new(),
            selected: 0,
            detail: None,
            events: VecDeque::new(),
            dialog: None,
            show_help: false,
            message: None,
            connection: Connection::Live,
            quit: false,
        }
    }

    pub fn selected_key(&self) -> Option<ObjectKey> {
        self.objects.get(self.selected).map(ObjectRecord::key)
    }

    /// Applies a feed update; returns an action to run (reloading the selected object's
    /// storage when it changed).
    pub fn apply(&mut self, feed: Feed) -> Option<Action> {
        let before = self.selected_key();
        match feed {
            Feed::Snapshot(mut objects) => {
                objects.sort_by(|a, b| (&a.class, &a.id).cmp(&(&b.class, &b.id)));
                self.objects = objects;
                self.connection = Connection::Live;
                self.keep_selection(before.as_ref());
                return self.selected_key().map(Action::LoadDetail);
            }
            Feed::Disconnected(reason) => {
                self.connection = Connection::Reconnecting(reason);
                return None;
            }
            Feed::Event(event) => {
                let key = ObjectKey::parse(&event.class, &event.id).ok();
                match (&event.kind, &event.object) {
                    (EventKind::Deleted, _) => {
                        if let Some(key) = &key {
                            self.remove(key);
                        }
                    }
                    (_, Some(record)) => self.upsert(record.clone()),
                    _ => {}
                }
                self.events.push_back(*event);
                while self.events.len() > EVENT_HISTORY {
                    self.events.pop_front();
                }
                self.keep_selection(before.as_ref());
                let selected = self.selected_key();
                if key.is_some() && key == selected {
                    return selected.map(Action::LoadDetail);
                }
            }
        }
        None
    }

    fn position(&self, key: &ObjectKey) -> Result<usize, usize> {
        self.objects
            .binary_search_by(|o| (&o.class, &o.id).cmp(&(&key.class, &key.id)))
    }

    fn upsert(&mut self, record: ObjectRecord) {
        match self.position(&record.key()) {
            Ok(at) => self.objects[at] = record,
            Err(at) => self.objects.insert(at, record),
        }
    }

    fn remove(&mut self, key: &ObjectKey) {
        if let Ok(at) = self.position(key) {
            self.objects.remove(at);
        }
    }

    /// Keeps the same object selected when rows are added or removed around it.
    fn keep_selection(&mut self, key: Option<&ObjectKey>) {
        if let Some(key) = key
            && let Ok(at) = self.position(key)
        {
            self.selected = at;
        }
        self.selected = self.selected.min(self.objects.len().saturating_sub(1));
    }

    /// Moves the selection by `delta` rows; returns the detail to load if it moved.
    pub fn move_selection(&mut self, delta: isize) -> Option<Action> {
        if self.objects.is_empty() {
            return None;
        }
        let last = self.objects.len() - 1;
        let next = (self.selected as isize + delta).clamp(0, last as isize) as usize;
        if next == self.selected {
            return None;
        }
        self.selected = next;
        self.detail = None;
        self.selected_key().map(Action::LoadDetail)
    }

    pub fn finish(&mut self, result: ActionResult) {
        match result {
            ActionResult::Called(result) => {
                if let Some(dialog) = self.dialog.as_mut() {
                    dialog.show_result(result);
                }
            }
            ActionResult::Done { what, result } => {
                self.message = Some(match result {
                    Ok(()) => (what, false),
                    Err(err) => (format!("{what} failed: {err}"), true),
                });
            }
            ActionResult::Detail(Ok(record)) => {
                if Some(record.key()) == self.selected_key() {
                    self.detail = Some(*record);
                }
            }
            ActionResult::Detail(Err(_)) => self.detail = None,
        }
    }
}
