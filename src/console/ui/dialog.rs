//! The call dialog, drawn over the middle of the screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::theme::Theme;
use crate::console::dialog::{CallDialog, Field, Outcome};

pub fn draw(frame: &mut Frame, dialog: &CallDialog, theme: &Theme) {
    let area = super::centered(frame.area(), 72, 16);
    frame.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" call {} ", dialog.key))
        .title_bottom(" Enter send · Tab switch field · Esc close ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [method_area, body_area, outcome_area] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Min(1),
    ])
    .areas(inner);

    for (field, input, label, field_area) in [
        (Field::Method, &dialog.method, " method ", method_area),
        (
            Field::Body,
            &dialog.body,
            " JSON body (empty for none) ",
            body_area,
        ),
    ] {
        let focused = dialog.focus == field;
        let style = if focused { theme.header() } else { theme.dim() };
        let width = field_area.width.saturating_sub(2) as usize;
        let scroll = input.visual_scroll(width.saturating_sub(1));
        let text = Paragraph::new(input.value())
            .scroll((0, scroll as u16))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(label)
                    .border_style(style),
            );
        frame.render_widget(text, field_area);
        if focused {
            let x = field_area.x + 1 + (input.visual_cursor().saturating_sub(scroll)) as u16;
            frame.set_cursor_position(Position::new(x, field_area.y + 1));
        }
    }

    let lines = match &dialog.outcome {
        Outcome::None => vec![Line::styled("Enter sends the call.", theme.dim())],
        Outcome::Invalid(message) => {
            vec![Line::styled(format!("not sent: {message}"), theme.error())]
        }
        Outcome::Pending => vec![Line::styled("calling…", theme.dim())],
        Outcome::Answered {
            status,
            duration_ms,
            body,
        } => {
            let style = if *status >= 400 {
                theme.error()
            } else {
                theme.header()
            };
            vec![
                Line::from(vec![
                    Span::styled(format!("HTTP {status}"), style),
                    Span::raw(format!(" in {duration_ms:.1} ms")),
                ]),
                Line::raw(body.clone()),
            ]
        }
        Outcome::Failed(message) => vec![Line::styled(format!("failed: {message}"), theme.error())],
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }),
        outcome_area,
    );
}
