//! The selected object: its metadata and its saved storage as coloured, indented JSON.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use serde_json::Value;

use super::theme::{Theme, symbol};
use crate::console::app::App;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>, theme: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(" storage ");
    let Some(object) = app.objects.get(app.selected) else {
        let hint =
            Paragraph::new("No objects yet. Call one with `torpor call` or press c.").block(block);
        frame.render_widget(hint, area);
        return;
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{}/{} ", object.class, object.id), theme.header()),
            Span::styled(
                format!("{} {}", symbol(object.status), object.status),
                theme.status(object.status),
            ),
        ]),
        Line::from(format!(
            "generation {} · {} bytes · idle {} ms · hibernates in {}",
            object.generation,
            object.storage_bytes,
            object.idle_timeout_ms,
            super::countdown(object, now)
        )),
    ];
    if let Some(sandbox) = &object.sandbox {
        let pid = sandbox
            .pid
            .map(|p| format!("pid {p} · "))
            .unwrap_or_default();
        lines.push(Line::styled(
            format!("{pid}{}", sandbox.address),
            theme.dim(),
        ));
    }
    if let Some(error) = &object.last_error {
        lines.push(Line::styled(format!("last error: {error}"), theme.error()));
    }
    lines.push(Line::raw(""));
    match app.detail.as_ref().filter(|d| d.key() == object.key()) {
        Some(detail) => match &detail.storage {
            Some(storage) => json_lines(storage, 0, None, theme, &mut lines),
            None => lines.push(Line::styled("no storage saved yet", theme.dim())),
        },
        None => lines.push(Line::styled("loading…", theme.dim())),
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// Appends `value` as pretty JSON, one line per scalar, keys and literals coloured.
pub fn json_lines<'a>(
    value: &Value,
    indent: usize,
    key: Option<&str>,
    theme: &Theme,
    out: &mut Vec<Line<'a>>,
) {
    json_value(value, indent, key, false, theme, out);
}

fn prefix(indent: usize, key: Option<&str>, theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = vec![Span::raw("  ".repeat(indent))];
    if let Some(key) = key {
        spans.push(Span::styled(
            serde_json::to_string(key).unwrap_or_default(),
            theme.json_key(),
        ));
        spans.push(Span::raw(": "));
    }
    spans
}

fn json_value(
    value: &Value,
    indent: usize,
    key: Option<&str>,
    comma: bool,
    theme: &Theme,
    out: &mut Vec<Line<'_>>,
) {
    let tail = if comma { "," } else { "" };
    let mut spans = prefix(indent, key, theme);
    match value {
        Value::Object(map) if !map.is_empty() => {
            spans.push(Span::raw("{"));
            out.push(Line::from(spans));
            let last = map.len() - 1;
            for (i, (k, v)) in map.iter().enumerate() {
                json_value(v, indent + 1, Some(k), i < last, theme, out);
            }
            out.push(Line::raw(format!("{}}}{tail}", "  ".repeat(indent))));
        }
        Value::Array(items) if !items.is_empty() => {
            spans.push(Span::raw("["));
            out.push(Line::from(spans));
            let last = items.len() - 1;
            for (i, v) in items.iter().enumerate() {
                json_value(v, indent + 1, None, i < last, theme, out);
            }
            out.push(Line::raw(format!("{}]{tail}", "  ".repeat(indent))));
        }
        scalar => {
            let style: Style = match scalar {
                Value::String(_) => theme.json_string(),
                Value::Number(_) => theme.json_number(),
                Value::Bool(_) | Value::Null => theme.json_literal(),
                _ => Style::default(),
            };
            spans.push(Span::styled(scalar.to_string(), style));
            spans.push(Span::raw(tail.to_owned()));
            out.push(Line::from(spans));
        }
    }
}
