//! The call dialog: a method field and a JSON body field (tui-input), checked before anything
//! is sent, earlier calls recalled with ↑ and ↓, and the handler's response shown in place.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::Outcome;
use crate::console::app::Action;
use crate::console::source::CallResult;
use crate::model::{MethodName, ObjectKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Method,
    Body,
}

/// The text under the dialog's fields.
#[derive(Debug, Clone, PartialEq)]
pub enum CallState {
    None,
    /// The input was not sent, for the reason in the message.
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
    pub state: CallState,
    /// Earlier calls as (method, body), oldest first.
    pub history: Vec<(String, String)>,
    /// The history entry shown, counted from the newest; `None` for the text being typed.
    pub recalled: Option<usize>,
}

impl CallDialog {
    pub fn new(key: ObjectKey, history: Vec<(String, String)>) -> Self {
        let (method, body) = history.last().cloned().unwrap_or_default();
        Self {
            key,
            method: Input::new(method),
            body: Input::new(body),
            focus: Field::Method,
            state: CallState::None,
            history,
            recalled: None,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Esc => Outcome::Close,
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Field::Method => Field::Body,
                    Field::Body => Field::Method,
                };
                Outcome::Stay
            }
            KeyCode::Up => {
                self.recall(1);
                Outcome::Stay
            }
            KeyCode::Down => {
                self.recall(-1);
                Outcome::Stay
            }
            KeyCode::Enter => match self.submit() {
                Some(action) => Outcome::Run(action),
                None => Outcome::Stay,
            },
            _ => {
                let field = match self.focus {
                    Field::Method => &mut self.method,
                    Field::Body => &mut self.body,
                };
                field.handle_event(&TermEvent::Key(key));
                Outcome::Stay
            }
        }
    }

    /// Steps `by` entries back (positive) or forward (negative) through earlier calls.
    fn recall(&mut self, by: isize) {
        if self.history.is_empty() {
            return;
        }
        let newest = self.history.len() - 1;
        let next = match self.recalled {
            None if by > 0 => 0,
            None => return,
            Some(at) => (at as isize + by).clamp(0, newest as isize) as usize,
        };
        self.recalled = Some(next);
        let (method, body) = self.history[newest - next].clone();
        self.method = Input::new(method);
        self.body = Input::new(body);
    }

    fn submit(&mut self) -> Option<Action> {
        if self.state == CallState::Pending {
            return None;
        }
        let method = self.method.value().trim().to_owned();
        if let Err(err) = MethodName::parse(&method) {
            self.state = CallState::Invalid(err.to_string());
            self.focus = Field::Method;
            return None;
        }
        let body = self.body.value().trim().to_owned();
        if !body.is_empty()
            && let Err(err) = serde_json::from_str::<serde_json::Value>(&body)
        {
            self.state = CallState::Invalid(format!("body is not valid JSON: {err}"));
            self.focus = Field::Body;
            return None;
        }
        self.state = CallState::Pending;
        if self.history.last() != Some(&(method.clone(), body.clone())) {
            self.history.push((method.clone(), body.clone()));
        }
        self.recalled = None;
        Some(Action::Call {
            key: self.key.clone(),
            method,
            body,
        })
    }

    pub fn show_result(&mut self, result: Result<CallResult, String>) {
        self.state = match result {
            Ok(answer) => CallState::Answered {
                status: answer.status,
                duration_ms: answer.duration.as_secs_f64() * 1000.0,
                body: String::from_utf8_lossy(&answer.body).into_owned(),
            },
            Err(err) => CallState::Failed(err),
        };
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyModifiers;

    use super::*;

    fn press(dialog: &mut CallDialog, code: KeyCode) -> Outcome {
        dialog.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn type_text(dialog: &mut CallDialog, text: &str) {
        for c in text.chars() {
            press(dialog, KeyCode::Char(c));
        }
    }

    fn key() -> ObjectKey {
        ObjectKey::parse("counter", "a").unwrap()
    }

    #[test]
    fn invalid_json_is_refused_in_place() {
        let mut dialog = CallDialog::new(key(), Vec::new());
        type_text(&mut dialog, "increment");
        press(&mut dialog, KeyCode::Tab);
        type_text(&mut dialog, "{\"by\": ");
        assert_eq!(press(&mut dialog, KeyCode::Enter), Outcome::Stay);
        assert!(matches!(&dialog.state, CallState::Invalid(m) if m.contains("not valid JSON")));
        type_text(&mut dialog, "2}");
        let outcome = press(&mut dialog, KeyCode::Enter);
        let expected = Action::Call {
            key: key(),
            method: "increment".into(),
            body: "{\"by\": 2}".into(),
        };
        assert_eq!(outcome, Outcome::Run(expected));
        assert_eq!(dialog.state, CallState::Pending);
    }

    #[test]
    fn reserved_method_is_refused() {
        let mut dialog = CallDialog::new(key(), Vec::new());
        type_text(&mut dialog, "__storage");
        assert_eq!(press(&mut dialog, KeyCode::Enter), Outcome::Stay);
        assert!(matches!(&dialog.state, CallState::Invalid(m) if m.contains("reserved")));
    }

    #[test]
    fn history_recalls_earlier_calls() {
        let history = vec![
            ("get".to_owned(), String::new()),
            ("increment".to_owned(), "{\"by\": 3}".to_owned()),
        ];
        let mut dialog = CallDialog::new(key(), history);
        assert_eq!(
            dialog.method.value(),
            "increment",
            "opens on the newest call"
        );
        press(&mut dialog, KeyCode::Up);
        press(&mut dialog, KeyCode::Up);
        assert_eq!(dialog.method.value(), "get");
        press(&mut dialog, KeyCode::Down);
        assert_eq!(
            (dialog.method.value(), dialog.body.value()),
            ("increment", "{\"by\": 3}")
        );
    }
}
