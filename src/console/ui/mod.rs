//! Drawing: a plain function of the [`App`] and the current time, one file per panel.

mod detail;
mod dialogs;
mod events;
mod header;
mod help;
mod json;
pub mod table;
pub mod theme;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::App;
use crate::model::ObjectRecord;
use theme::Theme;

/// Keys shown in the footer; the help overlay explains each.
pub const FOOTER_KEYS: &[(&str, &str)] = &[
    ("/", "filter"),
    ("s", "sort"),
    ("c", "call"),
    ("n", "new"),
    ("h", "hibernate"),
    ("w", "wake"),
    ("d", "delete"),
    ("i", "idle"),
    ("a", "alarm"),
    ("Tab", "focus"),
    ("?", "help"),
    ("q", "quit"),
];

/// Keys that still work with `--read-only`.
const READ_ONLY_KEYS: &[&str] = &["/", "s", "Tab", "?", "q"];

/// The position of each panel on a screen of a given size.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub header: Rect,
    pub table: Rect,
    pub detail: Rect,
    pub events: Rect,
    pub footer: Rect,
}

pub fn areas(screen: Rect) -> Areas {
    let events_height = (screen.height / 4).clamp(3, 10);
    let [header, body, events, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(5),
        Constraint::Length(events_height),
        Constraint::Length(1),
    ])
    .areas(screen);
    let [table, detail] =
        Layout::horizontal([Constraint::Percentage(68), Constraint::Percentage(32)]).areas(body);
    Areas {
        header,
        table,
        detail,
        events,
        footer,
    }
}

pub fn draw(frame: &mut Frame, app: &App, now: DateTime<Utc>, theme: &Theme) {
    let areas = areas(frame.area());
    header::draw(frame, areas.header, app, now, theme);
    table::draw(frame, areas.table, app, now, theme);
    detail::draw(frame, areas.detail, app, now, theme);
    events::draw(frame, areas.events, app, theme);
    draw_footer(frame, areas.footer, app, theme);
    if let Some(dialog) = &app.dialog {
        dialogs::draw(frame, dialog, theme);
    }
    if app.show_help {
        help::draw(frame, app.read_only, theme);
    }
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    if let Some(input) = &app.filter_input {
        let mut spans = vec![
            Span::styled(" filter ", theme.key()),
            Span::raw(format!(" {}", input.value())),
        ];
        match &app.filter_error {
            Some(err) => spans.push(Span::styled(format!("  {err}"), theme.error())),
            None => spans.push(Span::styled(
                "  Enter keep · Esc clear · status:active,failed",
                theme.dim(),
            )),
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
        let x = area.x + 9 + input.visual_cursor() as u16;
        frame.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
        return;
    }
    // The last action's outcome comes first, so a narrow screen cuts the key hints instead.
    let mut spans = Vec::new();
    if let Some((message, is_error)) = &app.message {
        let style = if *is_error {
            theme.error()
        } else {
            Style::default().add_modifier(Modifier::ITALIC)
        };
        spans.push(Span::styled(format!(" {message} "), style));
    }
    if app.read_only {
        spans.push(Span::styled(" read-only ", theme.error()));
    }
    for (key, what) in FOOTER_KEYS {
        if app.read_only && !READ_ONLY_KEYS.contains(key) {
            continue;
        }
        spans.push(Span::styled(format!(" {key} "), theme.key()));
        spans.push(Span::raw(format!("{what} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// "12s", "4m05s", "busy" or "due": the time left before hibernation.
pub fn countdown(object: &ObjectRecord, now: DateTime<Utc>) -> String {
    if object.calls_in_flight > 0 {
        return "busy".into();
    }
    if object.warm {
        return "warm".into();
    }
    match object.hibernate_at {
        Some(at) => time_left(at, now),
        None => "-".into(),
    }
}

/// "12s", "4m05s", "3h20m", "due" or "-": the time left before the alarm's next attempt.
pub fn alarm_countdown(object: &ObjectRecord, now: DateTime<Utc>) -> String {
    match &object.alarm {
        Some(alarm) => time_left(alarm.next_attempt_at, now),
        None => "-".into(),
    }
}

/// "12s", "4m05s", "3h20m" or "due".
fn time_left(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = (at - now).num_milliseconds();
    if left <= 0 {
        return "due".into();
    }
    let secs = (left + 999) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// "3s ago", "5m ago", "2h ago", "4d ago".
pub fn ago(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else { return "-".into() };
    let secs = (now - at).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// "512 B", "12.3 KB", "4.0 MB".
pub fn bytes(n: u64) -> String {
    match n {
        0..1000 => format!("{n} B"),
        1000..1_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.1} GB", n as f64 / 1e9),
    }
}

/// Returns a rectangle of `width` × `height` cells centred in `area`, clipped to it.
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
