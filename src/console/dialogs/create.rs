//! Creating an object: pick a class, type an id. The object is created by waking it.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::Outcome;
use crate::console::app::Action;
use crate::model::ObjectKey;

pub struct CreateDialog {
    pub classes: Vec<String>,
    pub class_index: usize,
    pub id: Input,
    /// The reason the last Enter was not accepted.
    pub error: Option<String>,
}

impl CreateDialog {
    pub fn new(classes: Vec<String>) -> Self {
        Self {
            classes,
            class_index: 0,
            id: Input::default(),
            error: None,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Esc => Outcome::Close,
            KeyCode::Up => {
                self.class_index = self.class_index.saturating_sub(1);
                Outcome::Stay
            }
            KeyCode::Down => {
                self.class_index = (self.class_index + 1).min(self.classes.len().saturating_sub(1));
                Outcome::Stay
            }
            KeyCode::Enter => self.submit(),
            _ => {
                self.id.handle_event(&TermEvent::Key(key));
                self.error = None;
                Outcome::Stay
            }
        }
    }

    fn submit(&mut self) -> Outcome {
        let Some(class) = self.classes.get(self.class_index) else {
            self.error = Some("no classes are configured".into());
            return Outcome::Stay;
        };
        match ObjectKey::parse(class, self.id.value().trim()) {
            Ok(key) => Outcome::RunAndClose(Action::Create(key)),
            Err(err) => {
                self.error = Some(err.to_string());
                Outcome::Stay
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyModifiers;

    use super::*;

    fn press(dialog: &mut CreateDialog, code: KeyCode) -> Outcome {
        dialog.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn picks_class_and_validates_id() {
        let mut dialog = CreateDialog::new(vec!["counter".into(), "kv".into()]);
        press(&mut dialog, KeyCode::Down);
        for c in "a b".chars() {
            press(&mut dialog, KeyCode::Char(c));
        }
        assert_eq!(press(&mut dialog, KeyCode::Enter), Outcome::Stay);
        assert!(dialog.error.as_deref().unwrap().contains("\"a b\""));
        press(&mut dialog, KeyCode::Backspace);
        press(&mut dialog, KeyCode::Backspace);
        let outcome = press(&mut dialog, KeyCode::Enter);
        assert_eq!(
            outcome,
            Outcome::RunAndClose(Action::Create(ObjectKey::parse("kv", "a").unwrap()))
        );
    }
}
