//! The dialogs, drawn over the middle of the screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};
use tui_input::Input;

use super::theme::Theme;
use crate::console::dialogs::Dialog;
use crate::console::dialogs::alarm::{AlarmDialog, AlarmField};
use crate::console::dialogs::call::{CallDialog, CallState, Field};
use crate::console::dialogs::confirm::ConfirmDialog;
use crate::console::dialogs::create::CreateDialog;
use crate::console::dialogs::idle::IdleDialog;

pub fn draw(frame: &mut Frame, dialog: &Dialog, theme: &Theme) {
    match dialog {
        Dialog::Call(dialog) => draw_call(frame, dialog, theme),
        Dialog::Create(dialog) => draw_create(frame, dialog, theme),
        Dialog::Confirm(dialog) => draw_confirm(frame, dialog, theme),
        Dialog::IdleTimeout(dialog) => draw_idle(frame, dialog, theme),
        Dialog::Alarm(dialog) => draw_alarm(frame, dialog, theme),
    }
}

/// Clears `area`, draws a titled box and returns its inside.
fn frame_box(frame: &mut Frame, area: Rect, title: String, hint: &str) -> Rect {
    frame.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .title_bottom(hint.to_owned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}

/// Draws one input field in a box, placing the cursor in it when focused.
fn draw_input(
    frame: &mut Frame,
    area: Rect,
    input: &Input,
    label: &str,
    focused: bool,
    theme: &Theme,
) {
    let style = if focused { theme.header() } else { theme.dim() };
    let width = area.width.saturating_sub(2) as usize;
    let scroll = input.visual_scroll(width.saturating_sub(1));
    let text = Paragraph::new(input.value())
        .scroll((0, scroll as u16))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(label.to_owned())
                .border_style(style),
        );
    frame.render_widget(text, area);
    if focused {
        let x = area.x + 1 + input.visual_cursor().saturating_sub(scroll) as u16;
        frame.set_cursor_position(Position::new(x, area.y + 1));
    }
}

fn draw_call(frame: &mut Frame, dialog: &CallDialog, theme: &Theme) {
    let area = super::centered(frame.area(), 76, 18);
    let hint = " Enter send · Tab switch field · ↑↓ earlier calls · Esc close ";
    let inner = frame_box(frame, area, format!(" call {} ", dialog.key), hint);
    let [method_area, body_area, outcome_area] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Min(1),
    ])
    .areas(inner);
    draw_input(
        frame,
        method_area,
        &dialog.method,
        " method ",
        dialog.focus == Field::Method,
        theme,
    );
    draw_input(
        frame,
        body_area,
        &dialog.body,
        " JSON body (empty for none) ",
        dialog.focus == Field::Body,
        theme,
    );

    let lines = match &dialog.state {
        CallState::None if dialog.history.is_empty() => {
            vec![Line::styled("Enter sends the call.", theme.dim())]
        }
        CallState::None => vec![Line::styled(
            format!(
                "Enter sends the call; {} earlier calls under ↑.",
                dialog.history.len()
            ),
            theme.dim(),
        )],
        CallState::Invalid(message) => {
            vec![Line::styled(format!("not sent: {message}"), theme.error())]
        }
        CallState::Pending => vec![Line::styled("calling…", theme.dim())],
        CallState::Answered {
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
                Line::raw(body.chars().take(4000).collect::<String>()),
            ]
        }
        CallState::Failed(message) => {
            vec![Line::styled(format!("failed: {message}"), theme.error())]
        }
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }),
        outcome_area,
    );
}

fn draw_create(frame: &mut Frame, dialog: &CreateDialog, theme: &Theme) {
    let height = (dialog.classes.len() as u16 + 9).min(20);
    let area = super::centered(frame.area(), 60, height);
    let inner = frame_box(
        frame,
        area,
        " new object ".into(),
        " ↑↓ class · Enter create · Esc close ",
    );
    let [list_area, id_area, error_area] = Layout::vertical([
        Constraint::Min(2),
        Constraint::Length(3),
        Constraint::Length(2),
    ])
    .areas(inner);
    let items: Vec<ListItem> = dialog
        .classes
        .iter()
        .map(|c| ListItem::new(c.clone()))
        .collect();
    let list = List::new(items)
        .block(Block::default().borders(Borders::ALL).title(" class "))
        .highlight_style(theme.selected())
        .highlight_symbol("▶ ");
    let mut state = ListState::default().with_selected(Some(dialog.class_index));
    frame.render_stateful_widget(list, list_area, &mut state);
    draw_input(frame, id_area, &dialog.id, " id ", true, theme);
    if let Some(error) = &dialog.error {
        frame.render_widget(
            Paragraph::new(error.clone())
                .style(theme.error())
                .wrap(Wrap { trim: true }),
            error_area,
        );
    }
}

fn draw_confirm(frame: &mut Frame, dialog: &ConfirmDialog, theme: &Theme) {
    let area = super::centered(frame.area(), 60, 6);
    let inner = frame_box(
        frame,
        area,
        format!(" {} ", dialog.title),
        " y yes · n or Esc no ",
    );
    let text = Paragraph::new(vec![
        Line::raw(dialog.question.clone()),
        Line::styled("Continue? (y/n)", theme.header()),
    ])
    .wrap(Wrap { trim: true });
    frame.render_widget(text, inner);
}

fn draw_idle(frame: &mut Frame, dialog: &IdleDialog, theme: &Theme) {
    let area = super::centered(frame.area(), 60, 8);
    let inner = frame_box(
        frame,
        area,
        format!(" idle timeout of {} ", dialog.key),
        " Enter set · Esc close ",
    );
    let [input_area, note_area] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(1)]).areas(inner);
    draw_input(
        frame,
        input_area,
        &dialog.input,
        " e.g. 45s, 5m, or default ",
        true,
        theme,
    );
    let hint = "\"default\" returns the object to its class's timeout.";
    draw_note(frame, note_area, dialog.error.as_deref(), hint, theme);
}

fn draw_alarm(frame: &mut Frame, dialog: &AlarmDialog, theme: &Theme) {
    let area = super::centered(frame.area(), 60, 11);
    let inner = frame_box(
        frame,
        area,
        format!(" alarm of {} ", dialog.key),
        " Enter set · Tab switch field · Esc close ",
    );
    let [in_area, every_area, note_area] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Min(1),
    ])
    .areas(inner);
    draw_input(
        frame,
        in_area,
        &dialog.in_,
        " in, e.g. 30s or 5m ",
        dialog.focus == AlarmField::In,
        theme,
    );
    draw_input(
        frame,
        every_area,
        &dialog.every,
        " every, e.g. 1s or 1h (empty: once) ",
        dialog.focus == AlarmField::Every,
        theme,
    );
    let hint = "The alarm replaces any pending one; A clears it.";
    draw_note(frame, note_area, dialog.error.as_deref(), hint, theme);
}

/// Draws a dialog's note: the input's error when there is one, else a dim hint.
fn draw_note(frame: &mut Frame, area: Rect, error: Option<&str>, hint: &str, theme: &Theme) {
    let note = match error {
        Some(error) => Line::styled(error.to_owned(), theme.error()),
        None => Line::styled(hint.to_owned(), theme.dim()),
    };
    frame.render_widget(Paragraph::new(note).wrap(Wrap { trim: true }), area);
}
