//! The event pane: the newest lifecycle events and calls, failures in red.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::theme::Theme;
use crate::console::app::App;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let rows = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = app
        .events
        .iter()
        .rev()
        .take(rows)
        .rev()
        .map(|event| {
            let style = if event.kind.is_failure() {
                theme.error()
            } else {
                ratatui::style::Style::default()
            };
            Line::from(vec![
                Span::styled(event.at.format("%H:%M:%S%.3f ").to_string(), theme.dim()),
                Span::raw(format!("{}/{} ", event.class, event.id)),
                Span::styled(event.kind.describe(&event.at), style),
            ])
        })
        .collect();
    let block = Block::default().borders(Borders::ALL).title(" events ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
