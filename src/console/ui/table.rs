//! The objects table. Only the rows on screen are built, so drawing costs the same for ten
//! objects or a hundred thousand. Narrow screens drop the right-hand columns first.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, HighlightSpacing, Row, Table, TableState};

use super::theme::{Theme, symbol};
use crate::console::app::{App, Focus};
use crate::console::view::SortColumn;
use crate::model::ObjectRecord;

const HIGHLIGHT: &str = "▶ ";
const SPACING: u16 = 1;

/// A table column: its title, what it sorts by, and its width.
struct Column {
    sort: Option<SortColumn>,
    title: &'static str,
    width: Constraint,
}

const fn column(sort: Option<SortColumn>, title: &'static str, width: Constraint) -> Column {
    Column { sort, title, width }
}

/// Columns in order; each after the first five is shown only if the table is at least
/// `min_width` cells wide.
const COLUMNS: [(u16, Column); 10] = [
    (
        0,
        column(Some(SortColumn::Class), "CLASS", Constraint::Fill(1)),
    ),
    (0, column(Some(SortColumn::Id), "ID", Constraint::Fill(2))),
    (
        0,
        column(Some(SortColumn::Status), "STATUS", Constraint::Length(13)),
    ),
    (
        0,
        column(
            Some(SortColumn::HibernatesIn),
            "HIBERNATE IN",
            Constraint::Length(12),
        ),
    ),
    (
        0,
        column(Some(SortColumn::Calls), "CALLS", Constraint::Length(7)),
    ),
    (
        70,
        column(Some(SortColumn::AlarmIn), "ALARM IN", Constraint::Length(9)),
    ),
    (
        86,
        column(Some(SortColumn::Errors), "ERRORS", Constraint::Length(6)),
    ),
    (
        98,
        column(
            Some(SortColumn::LastCall),
            "LAST CALL",
            Constraint::Length(9),
        ),
    ),
    (
        110,
        column(Some(SortColumn::Storage), "STORAGE", Constraint::Length(9)),
    ),
    (120, column(None, "PID", Constraint::Length(7))),
];

fn visible_columns(width: u16) -> impl Iterator<Item = &'static Column> {
    COLUMNS
        .iter()
        .filter(move |(min, _)| width >= *min)
        .map(|(_, c)| c)
}

/// Lays out the visible columns inside the table's border, after the highlight column.
fn column_areas(area: Rect) -> Vec<(&'static Column, Rect)> {
    let inner = Block::default().borders(Borders::ALL).inner(area);
    let highlight = HIGHLIGHT.chars().count() as u16;
    let rows = Rect {
        x: inner.x + highlight,
        width: inner.width.saturating_sub(highlight),
        ..inner
    };
    let columns: Vec<&Column> = visible_columns(area.width).collect();
    let rects = Layout::horizontal(columns.iter().map(|c| c.width))
        .flex(Flex::Start)
        .spacing(SPACING)
        .split(rows);
    columns.into_iter().zip(rects.iter().copied()).collect()
}

/// Returns the sort column under screen column `x`, for clicks on the titles.
pub fn column_at(area: Rect, x: u16) -> Option<SortColumn> {
    column_areas(area)
        .into_iter()
        .find(|(_, rect)| x >= rect.x && x < rect.right())
        .and_then(|(c, _)| c.sort)
}

fn cell(
    column: &Column,
    object: &ObjectRecord,
    now: DateTime<Utc>,
    theme: &Theme,
) -> Line<'static> {
    match column.title {
        "CLASS" => Line::from(object.class.to_string()),
        "ID" => Line::from(object.id.to_string()),
        "STATUS" => Line::from(Span::styled(
            format!("{} {}", symbol(object.status), object.status),
            theme.status(object.status),
        )),
        "HIBERNATE IN" => Line::from(super::countdown(object, now)),
        "CALLS" => Line::from(object.calls.to_string()),
        "ALARM IN" => {
            let text = super::alarm_countdown(object, now);
            // An alarm whose last delivery failed shows in the error style until one succeeds.
            match object.alarm.as_ref().and_then(|a| a.last_error.as_ref()) {
                Some(_) => Line::from(Span::styled(text, theme.error())),
                None => Line::from(text),
            }
        }
        "ERRORS" if object.errors > 0 => {
            Line::from(Span::styled(object.errors.to_string(), theme.error()))
        }
        "ERRORS" => Line::from("0"),
        "LAST CALL" => Line::from(super::ago(object.last_call_at, now)),
        "STORAGE" => Line::from(super::bytes(object.storage_bytes)),
        _ => Line::from(
            object
                .sandbox
                .as_ref()
                .and_then(|s| s.pid)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>, theme: &Theme) {
    let border = if app.focus == Focus::Objects {
        theme.header()
    } else {
        theme.dim()
    };
    let title = format!(
        " objects {}/{} ",
        app.rows.len().min(app.selected + 1),
        app.rows.len()
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(border);

    // Keep the selection on screen, moving the window no more than needed.
    let visible = area.height.saturating_sub(3).max(1) as usize;
    let mut offset = app.table_offset.get().min(app.rows.len().saturating_sub(1));
    if app.selected < offset {
        offset = app.selected;
    } else if app.selected >= offset + visible {
        offset = app.selected + 1 - visible;
    }
    app.table_offset.set(offset);

    let columns: Vec<&Column> = visible_columns(area.width).collect();
    let rows = app.rows.iter().skip(offset).take(visible).map(|&i| {
        let object = &app.objects[i];
        Row::new(
            columns
                .iter()
                .map(|c| cell(c, object, now, theme))
                .collect::<Vec<_>>(),
        )
    });
    let titles = columns.iter().map(|c| {
        let mark = match c.sort {
            Some(sort) if sort == app.sort.column => {
                if app.sort.descending {
                    " ▼"
                } else {
                    " ▲"
                }
            }
            _ => "",
        };
        format!("{}{mark}", c.title)
    });
    let table = Table::new(rows, columns.iter().map(|c| c.width))
        .header(Row::new(titles).style(theme.header()))
        .block(block)
        .flex(Flex::Start)
        .column_spacing(SPACING)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(theme.selected())
        .highlight_symbol(HIGHLIGHT);
    let mut state = TableState::default();
    if !app.rows.is_empty() {
        state.select(Some(app.selected - offset));
    }
    frame.render_stateful_widget(table, area, &mut state);
}
