//! The call dialog: a method field and a JSON body field (tui-input), checked before
//! anything is sent, and the handler's answer shown in place.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::app::Action;
use super::source::CallResult;
use crate::model::{MethodName, ObjectKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Method,
    Body,
}

/// What the dialog shows under its fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    None,
    /// The input was not sent; the message says why.
    Invalid(String),
    Pending,
    Answered {
        status: u16,
        duration_ms: f64,
        body: String,
    },
    Failed(String),
}

pub struct CallDialog {
    pub key: ObjectKey,
    pub method: Input,
    pub body: Input,
    pub focus: Field,
    pub outcome: Outcome,
}

impl CallDialog {
    pub fn new(key: ObjectKey, method: &str) -> Self {
        Self {
            key,
            method: Input::new(method.to_owned()),
            body: Input::default(),
            focus: Field::Method,
            outcome: Outcome::None,
        }
    }

    /// Handles a key; returns the call to make when the input is valid and Enter was pressed.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
                self.focus = match self.focus {
                    Field::Method => Field::Body,
                    Field::Body => Field::Method,
                };
                None
            }
            KeyCode::Enter => self.submit(),
            _ => {
                let field = match self.focus {
                    Field::Method => &mut self.method,
                    Field::Body => &mut self.body,
                };
                field.handle_event(&TermEvent::Key(key));
                None
            }
        }
    }

    fn submit(&mut self) -> Option<Action> {
        if self.outcome == Outcome::Pending {
            return None;
        }
        let method = self.method.value().trim().to_owned();
        if let Err(err) = MethodName::parse(&method) {
            self.outcome = Outcome::Invalid(err.to_string());
            self.focus = Field::Method;
            return None;
        }
        let body = self.body.value().trim().to_owned();
        if !body.is_empty()
            && let Err(err) = serde_json::from_str::<serde_json::Value>(&body)
        {
            self.outcome = Outcome::Invalid(format!("body is not valid JSON: {err}"));
            self.focus = Field::Body;
            return None;
        }
        self.outcome = Outcome::Pending;
        Some(Action::Call {
            key: self.key.clone(),
            method,
            body,
        })
    }

    pub fn show_result(&mut self, result: Result<CallResult, String>) {
        self.outcome = match result {
            Ok(answer) => Outcome::Answered {
                status: answer.status,
                duration_ms: answer.duration.as_secs_f64() * 1000.0,
                body: String::from_utf8_lossy(&answer.body).into_owned(),
            },
            Err(err) => Outcome::Failed(err),
        };
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyModifiers;

    use super::*;

    fn press(dialog: &mut CallDialog, code: KeyCode) -> Option<Action> {
        dialog.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn type_text(dialog: &mut CallDialog, text: &str) {
        for c in text.chars() {
            press(dialog, KeyCode::Char(c));
        }
    }

    #[test]
    fn invalid_json_is_refused_in_place() {
        let key = ObjectKey::parse("counter", "a").unwrap();
        let mut dialog = CallDialog::new(key, "increment");
        press(&mut dialog, KeyCode::Tab);
        type_text(&mut dialog, "{\"by\": ");
        assert_eq!(press(&mut dialog, KeyCode::Enter), None);
        assert!(matches!(&dialog.outcome, Outcome::Invalid(m) if m.contains("not valid JSON")));
        type_text(&mut dialog, "2}");
        let action = press(&mut dialog, KeyCode::Enter);
        assert!(
            matches!(action, Some(Action::Call { ref method, ref body, .. }) if method == "increment" && body == "{\"by\": 2}")
        );
        assert_eq!(dialog.outcome, Outcome::Pending);
    }

    #[test]
    fn reserved_method_is_refused() {
        let key = ObjectKey::parse("counter", "a").unwrap();
        let mut dialog = CallDialog::new(key, "");
        type_text(&mut dialog, "__storage");
        assert_eq!(press(&mut dialog, KeyCode::Enter), None);
        assert!(matches!(&dialog.outcome, Outcome::Invalid(m) if m.contains("reserved")));
    }
}
