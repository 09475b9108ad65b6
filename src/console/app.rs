//! The console's view model: everything the screen shows, changed only by feed updates, key
//! presses and finished actions. Drawing reads it and nothing else, so the same state always
//! draws the same screen.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tui_input::Input;

use super::dialogs::Dialog;
use super::fleet::Fleet;
use super::source::{CallResult, Feed};
use super::view::{self, Filter, Sort};
use crate::model::alarm::{ALARM_METHOD, AlarmRequest};
use crate::model::{Event, EventKind, ObjectKey, ObjectRecord};

/// Events kept for the event pane.
const EVENT_HISTORY: usize = 500;
/// Calls kept per object for the detail pane.
const CALLS_PER_OBJECT: usize = 50;

/// Whether the console can reach its runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    Live,
    Reconnecting(String),
}

/// The pane that arrow keys move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Objects,
    Detail,
}

/// The page of the detail pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailTab {
    Storage,
    Info,
    Calls,
    Log,
}

impl DetailTab {
    pub const ALL: [DetailTab; 4] = [
        DetailTab::Storage,
        DetailTab::Info,
        DetailTab::Calls,
        DetailTab::Log,
    ];

    pub fn title(self) -> &'static str {
        match self {
            DetailTab::Storage => "storage",
            DetailTab::Info => "info",
            DetailTab::Calls => "calls",
            DetailTab::Log => "log",
        }
    }
}

/// One call to an object, as the detail pane lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEntry {
    pub at: DateTime<Utc>,
    pub method: String,
    /// The handler's status, or the runtime's error.
    pub outcome: Result<u16, String>,
    pub duration_ms: Option<f64>,
}

/// An operation the console requests from the runtime, run in the background.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Call {
        key: ObjectKey,
        method: String,
        body: String,
    },
    Hibernate {
        key: ObjectKey,
        force: bool,
    },
    Wake(ObjectKey),
    Create(ObjectKey),
    Delete(ObjectKey),
    SetIdleTimeout {
        key: ObjectKey,
        timeout: Option<Duration>,
    },
    SetAlarm {
        key: ObjectKey,
        request: AlarmRequest,
    },
    ClearAlarm(ObjectKey),
    /// Fetch the object's record with its storage.
    LoadDetail(ObjectKey),
    LoadLog(ObjectKey),
    LoadClasses,
}

/// Why an action failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionFailure {
    /// The server accepts the console's token for reading only.
    ReadOnlyToken,
    Failed(String),
}

/// The outcome of an action.
#[derive(Debug)]
pub enum ActionResult {
    Called(Result<CallResult, String>),
    Done {
        /// The action as done, e.g. "woke counter/a", shown when it succeeded.
        done: String,
        /// The action as attempted, e.g. "wake counter/a", shown when it failed.
        attempt: String,
        result: Result<(), ActionFailure>,
    },
    Detail(Result<Box<ObjectRecord>, String>),
    Log {
        key: ObjectKey,
        result: Result<String, String>,
    },
    Classes(Result<Vec<String>, String>),
}

pub struct App {
    /// The runtime's location, shown in the header.
    pub source_label: String,
    pub read_only: bool,
    /// Whether the runtime is a server reached over the API, which client subcommands such
    /// as `torpor call` can reach too; an embedded runtime serves no API.
    pub remote: bool,
    /// Every object, in class then id order.
    pub objects: Vec<ObjectRecord>,
    /// The table's rows: indices into `objects`, filtered and sorted.
    pub rows: Vec<usize>,
    rows_stale: bool,
    pub sort: Sort,
    pub filter: Filter,
    /// The filter being typed, while the filter line is open.
    pub filter_input: Option<Input>,
    pub filter_error: Option<String>,
    /// The selected row, an index into `rows`.
    pub selected: usize,
    selected_key: Option<ObjectKey>,
    /// The first row on screen; drawing moves it to keep the selection visible.
    pub table_offset: Cell<usize>,
    pub focus: Focus,
    pub detail_tab: DetailTab,
    pub detail_scroll: u16,
    /// The selected object's record with storage, once loaded.
    pub detail: Option<ObjectRecord>,
    pub log: Option<(ObjectKey, String)>,
    pub calls: HashMap<ObjectKey, VecDeque<CallEntry>>,
    pub events: VecDeque<Event>,
    pub fleet: Fleet,
    pub classes: Vec<String>,
    /// Calls made from the call dialog, as (method, body), oldest first.
    pub call_history: Vec<(String, String)>,
    pub dialog: Option<Dialog>,
    pub show_help: bool,
    /// The last action's outcome, shown in the footer; `true` marks an error.
    pub message: Option<(String, bool)>,
    pub connection: Connection,
    pub quit: bool,
}

impl App {
    pub fn new(source_label: String, read_only: bool) -> Self {
        Self {
            source_label,
            read_only,
            remote: false,
            objects: Vec::new(),
            rows: Vec::new(),
            rows_stale: false,
            sort: Sort::default(),
            filter: Filter::default(),
            filter_input: None,
            filter_error: None,
            selected: 0,
            selected_key: None,
            table_offset: Cell::new(0),
            focus: Focus::Objects,
            detail_tab: DetailTab::Storage,
            detail_scroll: 0,
            detail: None,
            log: None,
            calls: HashMap::new(),
            events: VecDeque::new(),
            fleet: Fleet::default(),
            classes: Vec::new(),
            call_history: Vec::new(),
            dialog: None,
            show_help: false,
            message: None,
            connection: Connection::Live,
            quit: false,
        }
    }

    pub fn selected_object(&self) -> Option<&ObjectRecord> {
        self.rows.get(self.selected).map(|&i| &self.objects[i])
    }

    pub fn selected_key(&self) -> Option<ObjectKey> {
        self.selected_object().map(ObjectRecord::key)
    }

    /// Rebuilds the table's rows if objects, filter or sort changed, keeping the same object
    /// selected. Returns the detail to load if the selection moved to another object.
    pub fn refresh_rows(&mut self) -> Option<Action> {
        if !self.rows_stale {
            return None;
        }
        self.rows = view::rows(&self.objects, &self.filter, self.sort);
        self.rows_stale = false;
        let position = self.selected_key.as_ref().and_then(|key| {
            self.rows
                .iter()
                .position(|&i| self.objects[i].class == key.class && self.objects[i].id == key.id)
        });
        self.selected = position
            .unwrap_or(self.selected)
            .min(self.rows.len().saturating_sub(1));
        self.selection_changed()
    }

    /// Marks the rows for rebuilding, after a change to objects, filter or sort.
    pub fn rows_changed(&mut self) {
        self.rows_stale = true;
    }

    /// Records the selected key after the selection moved; returns what to load for it.
    fn selection_changed(&mut self) -> Option<Action> {
        let key = self.selected_key();
        if key == self.selected_key {
            return None;
        }
        self.selected_key = key.clone();
        self.detail = None;
        self.detail_scroll = 0;
        key.map(Action::LoadDetail)
    }

    /// Moves the selection by `delta` rows; returns the detail to load if it moved.
    pub fn move_selection(&mut self, delta: isize) -> Option<Action> {
        if self.rows.is_empty() {
            return None;
        }
        let last = self.rows.len() as isize - 1;
        self.selected = (self.selected as isize)
            .saturating_add(delta)
            .clamp(0, last) as usize;
        self.selection_changed()
    }

    /// Selects a row by its index in `rows`.
    pub fn select_row(&mut self, row: usize) -> Option<Action> {
        if row >= self.rows.len() {
            return None;
        }
        self.selected = row;
        self.selection_changed()
    }

    /// Applies a feed update; returns an action to run, such as reloading the selected
    /// object's storage when it changed.
    pub fn apply(&mut self, feed: Feed) -> Option<Action> {
        match feed {
            Feed::Snapshot(mut objects) => {
                objects.sort_by(|a, b| (&a.class, &a.id).cmp(&(&b.class, &b.id)));
                self.objects = objects;
                self.connection = Connection::Live;
                self.rows_changed();
                self.selected_key.clone().map(Action::LoadDetail)
            }
            Feed::Disconnected(reason) => {
                self.connection = Connection::Reconnecting(reason);
                None
            }
            Feed::Event(event) => self.apply_event(*event),
        }
    }

    fn apply_event(&mut self, event: Event) -> Option<Action> {
        let key = ObjectKey::parse(&event.class, &event.id).ok();
        match (&event.kind, &event.object, &key) {
            (EventKind::Deleted, _, Some(key)) => {
                self.remove(key);
                self.calls.remove(key);
            }
            (_, Some(record), _) => self.upsert(record.clone()),
            _ => {}
        }
        self.record_stats(&event, key.as_ref());
        self.events.push_back(event);
        while self.events.len() > EVENT_HISTORY {
            self.events.pop_front();
        }
        if key.is_some() && key == self.selected_key {
            return key.map(|key| match self.detail_tab {
                DetailTab::Log => Action::LoadLog(key),
                _ => Action::LoadDetail(key),
            });
        }
        None
    }

    fn record_stats(&mut self, event: &Event, key: Option<&ObjectKey>) {
        let entry = match &event.kind {
            EventKind::Woke { duration_ms, .. } => {
                self.fleet.record_wake(*duration_ms);
                return;
            }
            EventKind::Call {
                method,
                status,
                duration_ms,
            } => CallEntry {
                at: event.at,
                method: method.clone(),
                outcome: Ok(*status),
                duration_ms: Some(*duration_ms),
            },
            EventKind::CallFailed { method, error } => CallEntry {
                at: event.at,
                method: method.clone(),
                outcome: Err(error.clone()),
                duration_ms: None,
            },
            // Alarm deliveries are calls of the `alarm` method, reported by their own events.
            EventKind::AlarmDelivered { status, .. } => CallEntry {
                at: event.at,
                method: ALARM_METHOD.into(),
                outcome: Ok(*status),
                duration_ms: None,
            },
            EventKind::AlarmFailed { error, .. } => CallEntry {
                at: event.at,
                method: ALARM_METHOD.into(),
                outcome: Err(error.clone()),
                duration_ms: None,
            },
            _ => return,
        };
        self.fleet.record_call(event.at);
        if let Some(key) = key {
            let calls = self.calls.entry(key.clone()).or_default();
            if calls.len() == CALLS_PER_OBJECT {
                calls.pop_front();
            }
            calls.push_back(entry);
        }
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
        self.rows_changed();
    }

    fn remove(&mut self, key: &ObjectKey) {
        if let Ok(at) = self.position(key) {
            self.objects.remove(at);
            self.rows_changed();
        }
    }

    pub fn finish(&mut self, result: ActionResult) {
        match result {
            ActionResult::Called(result) => {
                if let Some(Dialog::Call(dialog)) = self.dialog.as_mut() {
                    dialog.show_result(result);
                    self.call_history = dialog.history.clone();
                }
            }
            ActionResult::Done {
                done,
                attempt,
                result,
            } => {
                self.message = Some(match result {
                    Ok(()) => (done, false),
                    Err(ActionFailure::ReadOnlyToken) => {
                        // Every other action would fail the same way.
                        self.read_only = true;
                        (
                            format!("cannot {attempt}: the token is read-only, so actions are off"),
                            true,
                        )
                    }
                    Err(ActionFailure::Failed(err)) => (format!("cannot {attempt}: {err}"), true),
                });
            }
            ActionResult::Detail(Ok(record)) => {
                if Some(record.key()) == self.selected_key {
                    self.detail = Some(*record);
                }
            }
            ActionResult::Detail(Err(_)) => self.detail = None,
            ActionResult::Log { key, result } => {
                let text = result.unwrap_or_else(|err| format!("cannot read the log: {err}"));
                self.log = Some((key, text));
            }
            ActionResult::Classes(Ok(classes)) => self.classes = classes,
            ActionResult::Classes(Err(err)) => {
                self.message = Some((format!("cannot list classes: {err}"), true))
            }
        }
    }
}
