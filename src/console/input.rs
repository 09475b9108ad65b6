//! Keys: what each press does to the view model, and which action it starts.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Action, App};
use super::dialog::CallDialog;

/// Rows PgUp and PgDn move.
const PAGE_ROWS: isize = 10;

pub fn on_key(app: &mut App, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.quit = true;
        return None;
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
        if key.code == KeyCode::Esc {
            app.dialog = None;
            return None;
        }
        return dialog.on_key(key);
    }
    match key.code {
        KeyCode::Char('q') => {
            app.quit = true;
            None
        }
        KeyCode::Up | KeyCode::Char('k') => app.move_selection(-1),
        KeyCode::Down | KeyCode::Char('j') => app.move_selection(1),
        KeyCode::PageUp => app.move_selection(-PAGE_ROWS),
        KeyCode::PageDown => app.move_selection(PAGE_ROWS),
        KeyCode::Home | KeyCode::Char('g') => app.move_selection(isize::MIN / 2),
        KeyCode::End | KeyCode::Char('G') => app.move_selection(isize::MAX / 2),
        KeyCode::Char('?') => {
            app.show_help = true;
            None
        }
        KeyCode::Char('c') => {
            match app.selected_key() {
                Some(key) => app.dialog = Some(CallDialog::new(key, "")),
                None => app.message = Some(("no object selected to call".into(), true)),
            }
            None
        }
        KeyCode::Char('h') => selected(app, Action::Hibernate),
        KeyCode::Char('w') => selected(app, Action::Wake),
        _ => None,
    }
}

fn selected(app: &mut App, action: fn(crate::model::ObjectKey) -> Action) -> Option<Action> {
    match app.selected_key() {
        Some(key) => Some(action(key)),
        None => {
            app.message = Some(("no object selected".into(), true));
            None
        }
    }
}
