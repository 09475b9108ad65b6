//! The objects table. Only the rows that fit are built, so drawing costs the same for ten
//! objects or a hundred thousand.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Row, Table, TableState};

use super::theme::{Theme, symbol};
use crate::console::app::App;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>, theme: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(" objects ");
    let visible = area.height.saturating_sub(3) as usize;
    let offset = app.selected.saturating_sub(visible.saturating_sub(1));
    let rows = app
        .objects
        .iter()
        .skip(offset)
        .take(visible.max(1))
        .map(|object| {
            Row::new(vec![
                Line::from(object.class.to_string()),
                Line::from(object.id.to_string()),
                Line::from(Span::styled(
                    format!("{} {}", symbol(object.status), object.status),
                    theme.status(object.status),
                )),
                Line::from(super::countdown(object, now)),
                Line::from(object.calls.to_string()),
            ])
        });
    let header =
        Row::new(["CLASS", "ID", "STATUS", "HIBERNATES IN", "CALLS"]).style(theme.header());
    let widths = [
        Constraint::Percentage(20),
        Constraint::Percentage(30),
        Constraint::Length(13),
        Constraint::Length(13),
        Constraint::Length(7),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶ ");
    let mut state = TableState::default();
    if !app.objects.is_empty() {
        state.select(Some(app.selected - offset));
    }
    frame.render_stateful_widget(table, area, &mut state);
}
