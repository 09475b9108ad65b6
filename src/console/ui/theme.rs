//! Colours and symbols. Every status has a symbol as well as a colour, so the console reads
//! the same with `NO_COLOR` set.

use ratatui::style::{Color, Modifier, Style};

use crate::model::Status;

pub fn symbol(status: Status) -> &'static str {
    match status {
        Status::Active => "●",
        Status::Waking => "◐",
        Status::Hibernating => "◑",
        Status::Hibernated => "○",
        Status::Failed => "✖",
    }
}

/// The console's styles; with `color` off, only bold and reverse are used.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to anything non-empty (no-color.org).
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    pub fn status(&self, status: Status) -> Style {
        match status {
            Status::Active => self.fg(Color::Green),
            Status::Waking | Status::Hibernating => self.fg(Color::Yellow),
            Status::Hibernated => self.fg(Color::Blue),
            Status::Failed => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }

    pub fn title(&self) -> Style {
        if self.color {
            Style::default()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    pub fn key(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Black).bg(Color::Gray)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn header(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn json_key(&self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn json_string(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn json_number(&self) -> Style {
        self.fg(Color::Magenta)
    }

    pub fn json_literal(&self) -> Style {
        self.fg(Color::Yellow)
    }
}
