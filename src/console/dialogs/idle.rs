//! Changing an object's idle timeout: a duration such as `45s` or `5m`, or `default` to
//! return to the class's.

use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::Outcome;
use crate::console::app::Action;
use crate::model::ObjectKey;
use crate::runtime::{MAX_IDLE_TIMEOUT, MIN_IDLE_TIMEOUT};

pub struct IdleDialog {
    pub key: ObjectKey,
    pub input: Input,
    pub error: Option<String>,
}

impl IdleDialog {
    /// Opens with the object's current timeout filled in.
    pub fn new(key: ObjectKey, current: Duration) -> Self {
        let text = humantime::format_duration(current).to_string();
        Self {
            key,
            input: Input::new(text),
            error: None,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Esc => Outcome::Close,
            KeyCode::Enter => match parse(self.input.value()) {
                Ok(timeout) => Outcome::RunAndClose(Action::SetIdleTimeout {
                    key: self.key.clone(),
                    timeout,
                }),
                Err(err) => {
                    self.error = Some(err);
                    Outcome::Stay
                }
            },
            _ => {
                self.input.handle_event(&TermEvent::Key(key));
                self.error = None;
                Outcome::Stay
            }
        }
    }
}

/// `default` (or nothing) means the class's timeout; anything else is a duration in range.
fn parse(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text.is_empty() || text == "default" {
        return Ok(None);
    }
    let timeout =
        humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration: {e}"))?;
    if !(MIN_IDLE_TIMEOUT..=MAX_IDLE_TIMEOUT).contains(&timeout) {
        return Err(format!(
            "{text} is out of range; it must be between {} and {}",
            humantime::format_duration(MIN_IDLE_TIMEOUT),
            humantime::format_duration(MAX_IDLE_TIMEOUT)
        ));
    }
    Ok(Some(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_default() {
        assert_eq!(parse("45s"), Ok(Some(Duration::from_secs(45))));
        assert_eq!(parse(" default "), Ok(None));
        assert_eq!(parse(""), Ok(None));
        assert!(parse("soon").unwrap_err().contains("\"soon\""));
        assert!(parse("1ms").unwrap_err().contains("out of range"));
    }
}
