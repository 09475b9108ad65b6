//! Snapshots of every panel and dialog, drawn on ratatui's `TestBackend` from a fixed view
//! model at a fixed time.

use chrono::{DateTime, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

use super::theme::Theme;
use crate::console::app::App;
use crate::console::dialog::{CallDialog, Outcome};
use crate::console::source::Feed;
use crate::model::{
    ClassName, Event, EventKind, ObjectId, ObjectKey, ObjectRecord, SandboxRef, Status,
};

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::seconds(seconds)
}

fn record(class: &str, id: &str, status: Status) -> ObjectRecord {
    ObjectRecord {
        class: ClassName::parse(class).unwrap(),
        id: ObjectId::parse(id).unwrap(),
        status,
        generation: 3,
        storage: None,
        storage_bytes: 11,
        idle_timeout_ms: 30_000,
        idle_timeout_overridden: false,
        hibernate_at: (status == Status::Active).then(|| at(12)),
        calls_in_flight: 0,
        calls: 42,
        errors: 0,
        created_at: at(-600),
        updated_at: at(-1),
        last_call_at: Some(at(-1)),
        last_wake_at: Some(at(-60)),
        last_hibernate_at: None,
        last_error: None,
        sandbox: (status == Status::Active).then(|| SandboxRef {
            name: format!("{class}.7"),
            driver: "process".into(),
            pid: Some(4242),
            address: "127.0.0.1:40001".into(),
        }),
    }
}

fn event(seq: u64, class: &str, id: &str, kind: EventKind) -> Event {
    Event {
        seq,
        at: at(seq as i64 - 10),
        kind,
        object: None,
        class: class.into(),
        id: id.into(),
    }
}

fn fixture() -> App {
    let mut app = App::new("embedded · /data/torpor".into());
    let mut failed = record("kv", "broken", Status::Failed);
    failed.last_error =
        Some("wake failed: handler exited before it became healthy (exit status 1)".into());
    app.apply(Feed::Snapshot(vec![
        record("counter", "alice", Status::Active),
        record("counter", "bob", Status::Hibernated),
        failed,
        record("kv", "shelf", Status::Waking),
    ]));
    let mut detail = record("counter", "alice", Status::Active);
    detail.storage =
        Some(json!({ "count": 3, "history": [1, 2, 3], "owner": "alice", "note": null }));
    app.detail = Some(detail);
    for (seq, class, id, kind) in [
        (1, "counter", "alice", EventKind::Woke { duration_ms: 4.2 }),
        (
            2,
            "counter",
            "alice",
            EventKind::Call {
                method: "increment".into(),
                status: 200,
                duration_ms: 0.8,
            },
        ),
        (
            3,
            "counter",
            "bob",
            EventKind::Hibernated { duration_ms: 2.5 },
        ),
        (
            4,
            "kv",
            "broken",
            EventKind::WakeFailed {
                error: "handler exited (exit status 1)".into(),
            },
        ),
    ] {
        app.apply(Feed::Event(Box::new(event(seq, class, id, kind))));
    }
    app
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| super::draw(frame, app, at(0), &Theme { color: false }))
        .unwrap();
    format!("{}", terminal.backend())
}

#[test]
fn main_screen() {
    insta::assert_snapshot!(render(&fixture(), 110, 24));
}

#[test]
fn empty_screen() {
    insta::assert_snapshot!(render(
        &App::new("remote · http://127.0.0.1:7070".into()),
        90,
        16
    ));
}

#[test]
fn call_dialog_with_answer() {
    let mut app = fixture();
    let mut dialog = CallDialog::new(ObjectKey::parse("counter", "alice").unwrap(), "increment");
    dialog.body = "{\"by\": 2}".into();
    dialog.outcome = Outcome::Answered {
        status: 200,
        duration_ms: 1.25,
        body: "{\"count\":5}".into(),
    };
    app.dialog = Some(dialog);
    insta::assert_snapshot!(render(&app, 100, 24));
}

#[test]
fn call_dialog_rejecting_json() {
    let mut app = fixture();
    let mut dialog = CallDialog::new(ObjectKey::parse("counter", "alice").unwrap(), "increment");
    dialog.body = "{by: 2}".into();
    dialog.outcome =
        Outcome::Invalid("body is not valid JSON: key must be a string at line 1 column 2".into());
    app.dialog = Some(dialog);
    insta::assert_snapshot!(render(&app, 100, 24));
}

#[test]
fn help_overlay() {
    let mut app = fixture();
    app.show_help = true;
    insta::assert_snapshot!(render(&app, 100, 24));
}

#[test]
fn disconnected_header() {
    let mut app = fixture();
    app.apply(Feed::Disconnected("connection refused".into()));
    let screen = render(&app, 110, 24);
    let header = screen.lines().next().unwrap();
    assert!(
        header.contains("disconnected, reconnecting: connection refused"),
        "{header}"
    );
}

#[test]
fn countdown_formats() {
    let mut object = record("counter", "a", Status::Active);
    assert_eq!(super::countdown(&object, at(0)), "12s");
    object.hibernate_at = Some(at(125));
    assert_eq!(super::countdown(&object, at(0)), "2m05s");
    assert_eq!(super::countdown(&object, at(200)), "due");
    object.calls_in_flight = 1;
    assert_eq!(super::countdown(&object, at(0)), "busy");
    object.calls_in_flight = 0;
    object.hibernate_at = None;
    assert_eq!(super::countdown(&object, at(0)), "-");
}
