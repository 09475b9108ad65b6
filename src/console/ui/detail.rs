//! The selected object in four pages: its saved storage as coloured JSON, its metadata, its
//! recent calls with status and latency, and the end of its sandbox log. Each page scrolls.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Tabs, Wrap};

use super::theme::{Theme, symbol};
use crate::console::app::{App, DetailTab, Focus};
use crate::model::ObjectRecord;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>, theme: &Theme) {
    let border = if app.focus == Focus::Detail {
        theme.header()
    } else {
        theme.dim()
    };
    let block = Block::default().borders(Borders::ALL).border_style(border);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [tabs_area, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);

    let selected = DetailTab::ALL
        .iter()
        .position(|t| *t == app.detail_tab)
        .unwrap_or(0);
    let titles = DetailTab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title()));
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(theme.selected()),
        tabs_area,
    );

    let Some(object) = app.selected_object() else {
        let hint = if !app.objects.is_empty() {
            "No object matches the filter."
        } else if app.read_only {
            "No objects yet."
        } else if app.remote {
            "No objects yet. Press n to create one, or call one with `torpor call`."
        } else {
            "No objects yet. Press n to create one."
        };
        frame.render_widget(Paragraph::new(hint).wrap(Wrap { trim: true }), body);
        return;
    };
    let wanted = app.detail_scroll as usize + body.height as usize;
    let lines = match app.detail_tab {
        DetailTab::Storage => storage_lines(app, object, wanted, theme),
        DetailTab::Info => info_lines(object, now, theme),
        DetailTab::Calls => call_lines(app, object, theme),
        DetailTab::Log => log_lines(app, object, theme),
    };
    let paragraph = Paragraph::new(lines).scroll((app.detail_scroll, 0));
    let paragraph = if app.detail_tab == DetailTab::Storage {
        paragraph
    } else {
        paragraph.wrap(Wrap { trim: false })
    };
    frame.render_widget(paragraph, body);
}

fn storage_lines(
    app: &App,
    object: &ObjectRecord,
    wanted: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    match app.detail.as_ref().filter(|d| d.key() == object.key()) {
        Some(detail) => match &detail.storage {
            Some(storage) => {
                let mut lines = Vec::new();
                super::json::lines(storage, wanted, theme, &mut lines);
                lines
            }
            None => vec![Line::styled("no storage saved yet", theme.dim())],
        },
        None => vec![Line::styled("loading…", theme.dim())],
    }
}

fn info_lines(object: &ObjectRecord, now: DateTime<Utc>, theme: &Theme) -> Vec<Line<'static>> {
    let time = |at: Option<DateTime<Utc>>| match at {
        Some(at) => format!(
            "{} ({})",
            at.format("%m-%d %H:%M:%S"),
            super::ago(Some(at), now)
        ),
        None => "-".into(),
    };
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{name:>14} "), theme.dim()),
            Span::raw(value),
        ])
    };
    let idle = format!(
        "{} ms{}",
        object.idle_timeout_ms,
        if object.idle_timeout_overridden {
            " (set for this object)"
        } else {
            " (from its class)"
        }
    );
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{}/{} ", object.class, object.id), theme.header()),
            Span::styled(
                format!("{} {}", symbol(object.status), object.status),
                theme.status(object.status),
            ),
        ]),
        field("generation", object.generation.to_string()),
        field("storage", super::bytes(object.storage_bytes)),
        field("idle timeout", idle),
        field("hibernates in", super::countdown(object, now)),
        field(
            "calls",
            format!(
                "{} ({} in flight, {} failed)",
                object.calls, object.calls_in_flight, object.errors
            ),
        ),
        field("created", time(Some(object.created_at))),
        field("updated", time(Some(object.updated_at))),
        field("last call", time(object.last_call_at)),
        field("last wake", time(object.last_wake_at)),
        field("last hibernate", time(object.last_hibernate_at)),
    ];
    lines.extend(alarm_lines(object, now, theme));
    match &object.sandbox {
        Some(sandbox) => {
            lines.push(field(
                "sandbox",
                format!("{} ({})", sandbox.name, sandbox.driver),
            ));
            let pid = sandbox
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into());
            lines.push(field("pid", pid));
            lines.push(field("address", sandbox.address.clone()));
            if let Some(container) = &sandbox.container {
                lines.push(field("container", container.clone()));
            }
        }
        None => lines.push(field("sandbox", "none (not running)".into())),
    }
    if let Some(error) = &object.last_error {
        lines.push(Line::from(vec![
            Span::styled(format!("{:>14} ", "last error"), theme.dim()),
            Span::styled(error.clone(), theme.error()),
        ]));
    }
    lines
}

/// Builds the lines of the pending alarm: when, how often, and the failed attempts so far.
fn alarm_lines(object: &ObjectRecord, now: DateTime<Utc>, theme: &Theme) -> Vec<Line<'static>> {
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{name:>14} "), theme.dim()),
            Span::raw(value),
        ])
    };
    let Some(alarm) = &object.alarm else {
        return vec![field("alarm", "none".into())];
    };
    let every = alarm
        .every_ms
        .map(|ms| format!(", every {ms} ms"))
        .unwrap_or_default();
    let mut lines = vec![field(
        "alarm",
        format!(
            "{} (in {}){every}",
            alarm.at.format("%m-%d %H:%M:%S%.3f"),
            super::alarm_countdown(object, now)
        ),
    )];
    if alarm.attempt > 1 {
        lines.push(field(
            "alarm attempt",
            format!(
                "{} at {}",
                alarm.attempt,
                alarm.next_attempt_at.format("%H:%M:%S%.3f")
            ),
        ));
    }
    if let Some(error) = &alarm.last_error {
        lines.push(Line::from(vec![
            Span::styled(format!("{:>14} ", "alarm error"), theme.dim()),
            Span::styled(error.clone(), theme.error()),
        ]));
    }
    lines
}

fn call_lines(app: &App, object: &ObjectRecord, theme: &Theme) -> Vec<Line<'static>> {
    let Some(calls) = app.calls.get(&object.key()).filter(|c| !c.is_empty()) else {
        return vec![Line::styled(
            "no calls seen since the console started",
            theme.dim(),
        )];
    };
    calls
        .iter()
        .rev()
        .map(|call| {
            let when = Span::styled(call.at.format("%H:%M:%S%.3f ").to_string(), theme.dim());
            match &call.outcome {
                Ok(status) => {
                    let style = if *status >= 400 {
                        theme.error()
                    } else {
                        theme.status(crate::model::Status::Active)
                    };
                    let ms = call
                        .duration_ms
                        .map(|ms| format!(" {ms:.1} ms"))
                        .unwrap_or_default();
                    Line::from(vec![
                        when,
                        Span::raw(format!("{} ", call.method)),
                        Span::styled(status.to_string(), style),
                        Span::raw(ms),
                    ])
                }
                Err(error) => Line::from(vec![
                    when,
                    Span::raw(format!("{} ", call.method)),
                    Span::styled(format!("failed: {error}"), theme.error()),
                ]),
            }
        })
        .collect()
}

fn log_lines(app: &App, object: &ObjectRecord, theme: &Theme) -> Vec<Line<'static>> {
    match &app.log {
        Some((key, text)) if *key == object.key() => {
            if text.is_empty() {
                return vec![Line::styled("the sandbox has written nothing", theme.dim())];
            }
            text.lines()
                .map(|line| Line::raw(line.to_owned()))
                .collect()
        }
        _ => vec![Line::styled("loading…", theme.dim())],
    }
}
