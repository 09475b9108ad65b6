//! The console's dialogs, each a small state machine over key presses: call a method, create
//! an object, change an idle timeout, set an alarm, and confirm a destructive action.

pub mod alarm;
pub mod call;
pub mod confirm;
pub mod create;
pub mod idle;

use crossterm::event::KeyEvent;

use super::app::Action;

/// The effect of a key press on a dialog.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The dialog stays open.
    Stay,
    /// The dialog closes without doing anything.
    Close,
    /// The dialog requests `Action` and stays open to show its result.
    Run(Action),
    /// The dialog requests `Action` and closes.
    RunAndClose(Action),
}

pub enum Dialog {
    Call(call::CallDialog),
    Create(create::CreateDialog),
    Confirm(confirm::ConfirmDialog),
    IdleTimeout(idle::IdleDialog),
    Alarm(alarm::AlarmDialog),
}

impl Dialog {
    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        match self {
            Dialog::Call(dialog) => dialog.on_key(key),
            Dialog::Create(dialog) => dialog.on_key(key),
            Dialog::Confirm(dialog) => dialog.on_key(key),
            Dialog::IdleTimeout(dialog) => dialog.on_key(key),
            Dialog::Alarm(dialog) => dialog.on_key(key),
        }
    }
}
