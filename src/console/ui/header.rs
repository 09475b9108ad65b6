//! The header: where the runtime is and whether it is reachable, the fleet's call rate and
//! wake latency, the counts by status, and the filter and sort in force.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use super::theme::{Theme, symbol};
use crate::console::app::{App, Connection};
use crate::model::Status;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>, theme: &Theme) {
    let [title, fleet, summary] = Layout::vertical([Constraint::Length(1); 3]).areas(area);

    let mut spans = vec![
        Span::styled(" torpor ", theme.title()),
        Span::raw(format!(" {} ", app.source_label)),
    ];
    match &app.connection {
        Connection::Live => spans.push(Span::styled("● connected", theme.status(Status::Active))),
        Connection::Reconnecting(reason) => spans.push(Span::styled(
            format!("✖ disconnected, reconnecting: {reason}"),
            theme.error(),
        )),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), title);

    let rates = app.fleet.rates(now);
    let last = rates.iter().rev().nth(1).copied().unwrap_or(0);
    let wakes = match app.fleet.wake_percentiles() {
        Some((p50, p99)) => format!("wake p50 {p50:.1} ms  p99 {p99:.1} ms"),
        None => "wake p50 -  p99 -".into(),
    };
    let [label, spark, figures] = Layout::horizontal([
        Constraint::Length(10),
        Constraint::Length(rates.len() as u16),
        Constraint::Fill(1),
    ])
    .areas(fleet);
    frame.render_widget(Paragraph::new(" calls/s "), label);
    frame.render_widget(
        Sparkline::default().data(&rates).style(theme.json_key()),
        spark,
    );
    frame.render_widget(Paragraph::new(format!(" {last}/s   {wakes}")), figures);

    let mut counts = [0usize; 5];
    for object in &app.objects {
        counts[Status::ALL
            .iter()
            .position(|s| *s == object.status)
            .unwrap_or(0)] += 1;
    }
    let mut spans = vec![Span::raw(format!(" {} objects", app.objects.len()))];
    for (status, count) in Status::ALL.iter().zip(counts) {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            format!("{} {count} {status}", symbol(*status)),
            theme.status(*status),
        ));
    }
    if !app.filter.is_empty() {
        spans.push(Span::styled(
            format!("   showing {} matching the filter", app.rows.len()),
            theme.header(),
        ));
    }
    let order = if app.sort.descending { "▼" } else { "▲" };
    spans.push(Span::styled(
        format!(
            "   sorted by {} {order}",
            app.sort.column.title().to_lowercase()
        ),
        theme.dim(),
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), summary);
}
