//! A yes/no question before an action that cannot be undone.

use crossterm::event::{KeyCode, KeyEvent};

use super::Outcome;
use crate::console::app::Action;

pub struct ConfirmDialog {
    pub title: String,
    pub question: String,
    pub action: Action,
}

impl ConfirmDialog {
    pub fn new(title: impl Into<String>, question: impl Into<String>, action: Action) -> Self {
        Self {
            title: title.into(),
            question: question.into(),
            action,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Outcome::RunAndClose(self.action.clone()),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Outcome::Close,
            _ => Outcome::Stay,
        }
    }
}
