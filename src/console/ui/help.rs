//! The help overlay: every key and what it does.

use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::theme::Theme;

const KEYS: &[(&str, &str)] = &[
    ("↑ ↓ / j k", "select an object"),
    ("PgUp PgDn", "move a page"),
    ("Home End / g G", "first or last object"),
    ("c", "call a method on the selected object"),
    (
        "h",
        "hibernate the selected object (after its running call)",
    ),
    ("w", "wake the selected object"),
    ("?", "show or hide this help"),
    ("Esc", "close a dialog or this help"),
    (
        "q / Ctrl-C",
        "quit (an embedded runtime hibernates its objects first)",
    ),
];

pub fn draw(frame: &mut Frame, theme: &Theme) {
    let area = super::centered(frame.area(), 70, KEYS.len() as u16 + 4);
    frame.render_widget(Clear, area);
    let mut lines = vec![Line::raw("")];
    for (key, what) in KEYS {
        lines.push(Line::from(vec![
            Span::styled(format!(" {key:>16} "), theme.header()),
            Span::raw(format!(" {what}")),
        ]));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" keys ")
        .title_bottom(" ? or Esc to close ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
