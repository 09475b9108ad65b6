//! The mouse: click a row to select it, click a column title to sort by it, scroll the table
//! or the detail pane with the wheel.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::app::{Action, App, Focus};
use super::ui::{self, Areas};

/// Rows one wheel step moves.
const WHEEL_ROWS: isize = 3;

pub fn on_mouse(app: &mut App, event: MouseEvent, screen: Rect) -> Option<Action> {
    let areas = ui::areas(screen);
    let at = Position::new(event.column, event.row);
    match event.kind {
        MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
            let step = if event.kind == MouseEventKind::ScrollDown {
                WHEEL_ROWS
            } else {
                -WHEEL_ROWS
            };
            if areas.table.contains(at) {
                return app.move_selection(step);
            }
            if areas.detail.contains(at) {
                app.detail_scroll = (app.detail_scroll as isize + step).max(0) as u16;
            }
            None
        }
        MouseEventKind::Down(MouseButton::Left) => click(app, at, &areas),
        _ => None,
    }
}

fn click(app: &mut App, at: Position, areas: &Areas) -> Option<Action> {
    if areas.detail.contains(at) {
        app.focus = Focus::Detail;
        return None;
    }
    if !areas.table.contains(at) {
        return None;
    }
    app.focus = Focus::Objects;
    // Inside the border: the column titles, then the rows.
    let header_row = areas.table.y + 1;
    if at.y == header_row {
        let column = ui::table::column_at(areas.table, at.x)?;
        if app.sort.column == column {
            app.sort.descending = !app.sort.descending;
        } else {
            app.sort.column = column;
            app.sort.descending = false;
        }
        app.rows_changed();
        return None;
    }
    if at.y > header_row && at.y < areas.table.bottom().saturating_sub(1) {
        let row = app.table_offset.get() + (at.y - header_row - 1) as usize;
        return app.select_row(row);
    }
    None
}
