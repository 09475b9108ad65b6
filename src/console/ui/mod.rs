//! Drawing: a plain function of the [`App`] and the current time, one file per panel.

mod detail;
mod dialog;
mod events;
mod help;
mod table;
pub mod theme;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{App, Connection};
use crate::model::Status;
use theme::Theme;

/// Key hints in the footer; the help overlay explains each.
pub const FOOTER_KEYS: &[(&str, &str)] = &[
    ("↑↓", "select"),
    ("c", "call"),
    ("h", "hibernate"),
    ("w", "wake"),
    ("?", "help"),
    ("q", "quit"),
];

pub fn draw(frame: &mut Frame, app: &App, now: DateTime<Utc>, theme: &Theme) {
    let [header, body, events_area, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(8),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [table_area, detail_area] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body);

    draw_header(frame, header, app, theme);
    table::draw(frame, table_area, app, now, theme);
    detail::draw(frame, detail_area, app, now, theme);
    events::draw(frame, events_area, app, theme);
    draw_footer(frame, footer, app, theme);
    if let Some(dialog) = &app.dialog {
        dialog::draw(frame, dialog, theme);
    }
    if app.show_help {
        help::draw(frame, theme);
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut spans = vec![
        Span::styled(" torpor ", theme.title()),
        Span::raw(format!(" {} ", app.source_label)),
    ];
    if let Connection::Reconnecting(reason) = &app.connection {
        spans.push(Span::styled(
            format!(" ✖ disconnected, reconnecting: {reason} "),
            theme.error(),
        ));
    }
    let mut counts = [0usize; 5];
    for object in &app.objects {
        counts[Status::ALL
            .iter()
            .position(|s| *s == object.status)
            .unwrap_or(0)] += 1;
    }
    spans.push(Span::raw(format!(" {} objects:", app.objects.len())));
    for (status, count) in Status::ALL.iter().zip(counts) {
        if count > 0 {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                format!("{} {count} {status}", theme::symbol(*status)),
                theme.status(*status),
            ));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut spans = Vec::new();
    for (key, what) in FOOTER_KEYS {
        spans.push(Span::styled(format!(" {key} "), theme.key()));
        spans.push(Span::raw(format!("{what} ")));
    }
    if let Some((message, is_error)) = &app.message {
        let style = if *is_error {
            theme.error()
        } else {
            Style::default().add_modifier(Modifier::ITALIC)
        };
        spans.push(Span::styled(format!(" {message}"), style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// "12s", "4m05s", "busy" or "due": the time left before hibernation.
pub fn countdown(object: &crate::model::ObjectRecord, now: DateTime<Utc>) -> String {
    if object.calls_in_flight > 0 {
        return "busy".into();
    }
    let Some(at) = object.hibernate_at else {
        return "-".into();
    };
    let left = (at - now).num_milliseconds();
    if left <= 0 {
        return "due".into();
    }
    let secs = (left + 999) / 1000;
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// A rectangle of `width` × `height` cells centred in `area`, clipped to it.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

#[cfg(test)]
mod tests;
