//! Keys: what each press does to the view model, and which action it starts.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::app::{Action, App, DetailTab, Focus};
use super::dialogs::alarm::AlarmDialog;
use super::dialogs::call::CallDialog;
use super::dialogs::confirm::ConfirmDialog;
use super::dialogs::create::CreateDialog;
use super::dialogs::idle::IdleDialog;
use super::dialogs::{Dialog, Outcome};
use super::view::Filter;

/// Rows PgUp and PgDn move.
const PAGE_ROWS: isize = 10;

pub fn on_key(app: &mut App, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.quit = true;
        return None;
    }
    if app.filter_input.is_some() {
        return on_filter_key(app, key);
    }
    if app.show_help {
        match key.code {
            KeyCode::Esc | KeyCode::Char('?') => app.show_help = false,
            KeyCode::Char('q') => app.quit = true,
            _ => {}
        }
        return None;
    }
    if let Some(dialog) = app.dialog.as_mut() {
        return match dialog.on_key(key) {
            Outcome::Stay => None,
            Outcome::Close => {
                app.dialog = None;
                None
            }
            Outcome::Run(action) => Some(action),
            Outcome::RunAndClose(action) => {
                app.dialog = None;
                Some(action)
            }
        };
    }
    match key.code {
        KeyCode::Char('q') => {
            app.quit = true;
            None
        }
        KeyCode::Char('?') => {
            app.show_help = true;
            None
        }
        KeyCode::Char('/') => {
            app.filter_input = Some(Input::new(filter_text(&app.filter)));
            None
        }
        KeyCode::Tab => {
            app.focus = match app.focus {
                Focus::Objects => Focus::Detail,
                Focus::Detail => Focus::Objects,
            };
            None
        }
        KeyCode::Char('s') => {
            app.sort.column = app.sort.column.next();
            app.rows_changed();
            None
        }
        KeyCode::Char('S') => {
            app.sort.descending = !app.sort.descending;
            app.rows_changed();
            None
        }
        KeyCode::Char(digit @ '1'..='4') => {
            show_tab(app, DetailTab::ALL[digit as usize - '1' as usize])
        }
        KeyCode::Char('c' | 'n' | 'h' | 'H' | 'w' | 'd' | 'i' | 'a' | 'A') => {
            operator_action(app, key.code)
        }
        _ => match app.focus {
            Focus::Objects => move_in_table(app, key.code),
            Focus::Detail => move_in_detail(app, key.code),
        },
    }
}

fn filter_text(filter: &Filter) -> String {
    let mut parts = Vec::new();
    if !filter.text.is_empty() {
        parts.push(filter.text.clone());
    }
    if !filter.statuses.is_empty() {
        let names: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        parts.push(format!("status:{}", names.join(",")));
    }
    parts.join(" ")
}

/// Filters as the operator types; Enter keeps the filter, Esc clears it.
fn on_filter_key(app: &mut App, key: KeyEvent) -> Option<Action> {
    match key.code {
        KeyCode::Enter => {
            app.filter_input = None;
            return None;
        }
        KeyCode::Esc => {
            app.filter_input = None;
            app.filter = Filter::default();
            app.filter_error = None;
            app.rows_changed();
            return None;
        }
        _ => {}
    }
    let input = app.filter_input.as_mut()?;
    input.handle_event(&TermEvent::Key(key));
    match Filter::parse(input.value()) {
        Ok(filter) => {
            app.filter = filter;
            app.filter_error = None;
            app.rows_changed();
        }
        Err(err) => app.filter_error = Some(err),
    }
    None
}

fn show_tab(app: &mut App, tab: DetailTab) -> Option<Action> {
    app.detail_tab = tab;
    app.detail_scroll = 0;
    match tab {
        DetailTab::Log => app.selected_key().map(Action::LoadLog),
        _ => None,
    }
}

fn operator_action(app: &mut App, code: KeyCode) -> Option<Action> {
    if app.read_only {
        app.message = Some((
            "read-only: actions are turned off (started with --read-only)".into(),
            true,
        ));
        return None;
    }
    if code == KeyCode::Char('n') {
        if app.classes.is_empty() {
            app.message = Some(("no classes known yet; try again in a moment".into(), true));
            return Some(Action::LoadClasses);
        }
        app.dialog = Some(Dialog::Create(CreateDialog::new(app.classes.clone())));
        return None;
    }
    let Some(object) = app.selected_object() else {
        app.message = Some(("no object selected".into(), true));
        return None;
    };
    let key = object.key();
    let idle = std::time::Duration::from_millis(object.idle_timeout_ms);
    let alarm = object.alarm.clone();
    match code {
        KeyCode::Char('c') => {
            app.dialog = Some(Dialog::Call(CallDialog::new(key, app.call_history.clone())))
        }
        KeyCode::Char('h') => return Some(Action::Hibernate { key, force: false }),
        KeyCode::Char('H') => {
            let question = format!("Hibernate {key} now, aborting the call running on it?");
            let action = Action::Hibernate { key, force: true };
            app.dialog = Some(Dialog::Confirm(ConfirmDialog::new(
                "force hibernation",
                question,
                action,
            )));
        }
        KeyCode::Char('w') => return Some(Action::Wake(key)),
        KeyCode::Char('d') => {
            let question =
                format!("Delete {key}? Its storage and sandbox log are removed for good.");
            app.dialog = Some(Dialog::Confirm(ConfirmDialog::new(
                "delete",
                question,
                Action::Delete(key),
            )));
        }
        KeyCode::Char('i') => app.dialog = Some(Dialog::IdleTimeout(IdleDialog::new(key, idle))),
        KeyCode::Char('a') => {
            let dialog = AlarmDialog::new(key, alarm.as_ref(), chrono::Utc::now());
            app.dialog = Some(Dialog::Alarm(dialog));
        }
        KeyCode::Char('A') if alarm.is_none() => {
            app.message = Some((format!("{key} has no alarm to clear"), true));
        }
        KeyCode::Char('A') => {
            let question = format!("Clear the alarm of {key}? It will not be delivered.");
            app.dialog = Some(Dialog::Confirm(ConfirmDialog::new(
                "clear alarm",
                question,
                Action::ClearAlarm(key),
            )));
        }
        _ => {}
    }
    None
}

fn move_in_table(app: &mut App, code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Up | KeyCode::Char('k') => app.move_selection(-1),
        KeyCode::Down | KeyCode::Char('j') => app.move_selection(1),
        KeyCode::PageUp => app.move_selection(-PAGE_ROWS),
        KeyCode::PageDown => app.move_selection(PAGE_ROWS),
        KeyCode::Home | KeyCode::Char('g') => app.move_selection(isize::MIN),
        KeyCode::End | KeyCode::Char('G') => app.move_selection(isize::MAX),
        _ => None,
    }
}

fn move_in_detail(app: &mut App, code: KeyCode) -> Option<Action> {
    let tab_at = DetailTab::ALL
        .iter()
        .position(|t| *t == app.detail_tab)
        .unwrap_or(0);
    match code {
        KeyCode::Up | KeyCode::Char('k') => app.detail_scroll = app.detail_scroll.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => {
            app.detail_scroll = app.detail_scroll.saturating_add(1)
        }
        KeyCode::PageUp => app.detail_scroll = app.detail_scroll.saturating_sub(PAGE_ROWS as u16),
        KeyCode::PageDown => app.detail_scroll = app.detail_scroll.saturating_add(PAGE_ROWS as u16),
        KeyCode::Home | KeyCode::Char('g') => app.detail_scroll = 0,
        KeyCode::Left => return show_tab(app, DetailTab::ALL[(tab_at + 3) % 4]),
        KeyCode::Right => return show_tab(app, DetailTab::ALL[(tab_at + 1) % 4]),
        _ => {}
    }
    None
}
