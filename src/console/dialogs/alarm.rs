//! Setting an object's alarm: the time from now (`30s`, `5m`) and, for a recurring alarm,
//! the period (`1s`, `1h`; empty for a one-shot alarm). Tab moves between the two fields.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::Outcome;
use crate::console::app::Action;
use crate::model::alarm::{
    AlarmRequest, AlarmTime, MAX_ALARM_AHEAD_MS, MAX_ALARM_PERIOD_MS, MIN_ALARM_PERIOD_MS,
    parse_duration_ms,
};
use crate::model::{Alarm, ObjectKey};

/// The field being typed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmField {
    In,
    Every,
}

pub struct AlarmDialog {
    pub key: ObjectKey,
    pub in_: Input,
    pub every: Input,
    pub focus: AlarmField,
    /// The reason the last Enter was not accepted.
    pub error: Option<String>,
}

impl AlarmDialog {
    /// Opens with the object's pending alarm filled in, or 30 seconds from now.
    pub fn new(key: ObjectKey, current: Option<&Alarm>, now: DateTime<Utc>) -> Self {
        let (in_, every) = match current {
            Some(alarm) => {
                let left = (alarm.next_attempt_at - now).num_seconds().max(0) as u64;
                let every = alarm
                    .every_ms
                    .map(|ms| humantime::format_duration(Duration::from_millis(ms)).to_string())
                    .unwrap_or_default();
                (format!("{left}s"), every)
            }
            None => ("30s".to_owned(), String::new()),
        };
        Self {
            key,
            in_: Input::new(in_),
            every: Input::new(every),
            focus: AlarmField::In,
            error: None,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Esc => Outcome::Close,
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
                self.focus = match self.focus {
                    AlarmField::In => AlarmField::Every,
                    AlarmField::Every => AlarmField::In,
                };
                Outcome::Stay
            }
            KeyCode::Enter => match parse(self.in_.value(), self.every.value()) {
                Ok(request) => Outcome::RunAndClose(Action::SetAlarm {
                    key: self.key.clone(),
                    request,
                }),
                Err(err) => {
                    self.error = Some(err);
                    Outcome::Stay
                }
            },
            _ => {
                let input = match self.focus {
                    AlarmField::In => &mut self.in_,
                    AlarmField::Every => &mut self.every,
                };
                input.handle_event(&TermEvent::Key(key));
                self.error = None;
                Outcome::Stay
            }
        }
    }
}

/// Parses the two fields into a request; the error names the field and the value.
fn parse(in_: &str, every: &str) -> Result<AlarmRequest, String> {
    let in_ = in_.trim();
    let after = parse_duration_ms(in_).map_err(|e| format!("in: {e}"))?;
    if after > MAX_ALARM_AHEAD_MS {
        return Err(format!("in: {in_} is more than 10 years ahead"));
    }
    let every = every.trim();
    let every_ms = if every.is_empty() {
        None
    } else {
        let ms = parse_duration_ms(every).map_err(|e| format!("every: {e}"))?;
        if !(MIN_ALARM_PERIOD_MS..=MAX_ALARM_PERIOD_MS).contains(&ms) {
            return Err(format!(
                "every: {every} is out of range; it must be between {MIN_ALARM_PERIOD_MS}ms \
                 and 365days"
            ));
        }
        Some(ms)
    };
    Ok(AlarmRequest {
        time: AlarmTime::In(after),
        every_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_in_and_every() {
        assert_eq!(
            parse(" 5m ", ""),
            Ok(AlarmRequest {
                time: AlarmTime::In(300_000),
                every_ms: None
            })
        );
        assert_eq!(parse("0s", "1s").map(|r| r.every_ms), Ok(Some(1000)));
        assert!(parse("soon", "").unwrap_err().contains("\"soon\""));
        assert!(parse("1s", "10ms").unwrap_err().contains("out of range"));
        assert!(parse("1s", "often").unwrap_err().starts_with("every:"));
        let fraction = parse("1.5ms", "").unwrap_err();
        assert!(
            fraction.contains("\"1.5ms\" is not a whole number of milliseconds"),
            "{fraction}"
        );
        assert!(
            parse("999us", "").is_err(),
            "below a millisecond is not now"
        );
        assert!(parse("1s", "100ms 500us").is_err());
    }
}
