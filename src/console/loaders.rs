//! Background loads of the selected object's storage and log, one of each at a time. A load
//! requested while one runs waits, replacing any other waiting load of its kind. A burst of
//! events for the selected object so costs two requests, not one per event.

use super::app::{Action, ActionResult};
use crate::model::ObjectKey;

#[derive(Default)]
pub struct Loaders {
    detail: Slot,
    log: Slot,
}

#[derive(Default)]
struct Slot {
    running: bool,
    waiting: Option<ObjectKey>,
}

impl Slot {
    fn admit(&mut self, key: ObjectKey) -> Option<ObjectKey> {
        if self.running {
            self.waiting = Some(key);
            return None;
        }
        self.running = true;
        Some(key)
    }
}

impl Loaders {
    /// Returns the action to start now, or `None` if it has to wait.
    pub fn admit(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::LoadDetail(key) => self.detail.admit(key).map(Action::LoadDetail),
            Action::LoadLog(key) => self.log.admit(key).map(Action::LoadLog),
            other => Some(other),
        }
    }

    pub fn finished(&mut self, result: &ActionResult) {
        match result {
            ActionResult::Detail(_) => self.detail.running = false,
            ActionResult::Log { .. } => self.log.running = false,
            _ => {}
        }
    }

    /// Returns the loads that waited for the ones just finished; `admit` starts them.
    pub fn next(&mut self) -> Vec<Action> {
        let mut next = Vec::new();
        if !self.detail.running {
            next.extend(self.detail.waiting.take().map(Action::LoadDetail));
        }
        if !self.log.running {
            next.extend(self.log.waiting.take().map(Action::LoadLog));
        }
        next
    }
}
