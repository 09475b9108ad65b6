//! Snapshots of every panel and dialog, drawn on ratatui's `TestBackend` from a fixed view
//! model at a fixed time, plus the drawing cost of a table of 100,000 objects.

use chrono::{DateTime, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

use super::theme::Theme;
use crate::console::app::{Action, ActionResult, App, DetailTab, Focus};
use crate::console::dialogs::Dialog;
use crate::console::dialogs::alarm::AlarmDialog;
use crate::console::dialogs::call::{CallDialog, CallState};
use crate::console::dialogs::confirm::ConfirmDialog;
use crate::console::dialogs::create::CreateDialog;
use crate::console::dialogs::idle::IdleDialog;
use crate::console::source::Feed;
use crate::console::view::{Filter, SortColumn};
use crate::model::{
    Alarm, ClassName, Event, EventKind, ObjectId, ObjectKey, ObjectRecord, SandboxRef, Status,
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
        warm: false,
        calls_in_flight: 0,
        calls: 42,
        errors: 0,
        created_at: at(-600),
        updated_at: at(-1),
        last_call_at: Some(at(-75)),
        last_wake_at: Some(at(-60)),
        last_hibernate_at: None,
        last_error: None,
        sandbox: (status == Status::Active).then(|| SandboxRef {
            name: format!("{class}.7"),
            driver: "process".into(),
            pid: Some(4242),
            address: "127.0.0.1:40001".into(),
            container: None,
        }),
        alarm: None,
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

fn key(class: &str, id: &str) -> ObjectKey {
    ObjectKey::parse(class, id).unwrap()
}

fn fixture() -> App {
    let mut app = App::new("embedded · /data/torpor".into(), false);
    let mut failed = record("kv", "broken", Status::Failed);
    failed.last_error =
        Some("wake failed: handler exited before it became healthy (exit status 1)".into());
    failed.errors = 3;
    failed.alarm = Some(Alarm {
        attempt: 3,
        next_attempt_at: at(4),
        last_error: Some("the alarm method answered HTTP 500".into()),
        ..Alarm::scheduled(at(-8).timestamp_millis(), None)
    });
    let mut big = record("kv", "shelf", Status::Waking);
    big.storage_bytes = 2_500_000;
    let mut alice = record("counter", "alice", Status::Active);
    alice.alarm = Some(Alarm::scheduled(at(45).timestamp_millis(), Some(60_000)));
    app.apply(Feed::Snapshot(vec![
        alice,
        record("counter", "bob", Status::Hibernated),
        failed,
        big,
    ]));
    app.refresh_rows();
    let mut detail = record("counter", "alice", Status::Active);
    detail.alarm = Some(Alarm::scheduled(at(45).timestamp_millis(), Some(60_000)));
    detail.storage =
        Some(json!({ "count": 3, "history": [1, 2, 3], "owner": "alice", "note": null }));
    app.finish(ActionResult::Detail(Ok(Box::new(detail))));
    for (seq, class, id, kind) in [
        (
            1,
            "counter",
            "alice",
            EventKind::Woke {
                duration_ms: 4.2,
                warm: false,
            },
        ),
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
            EventKind::Hibernated {
                duration_ms: 2.5,
                warm: false,
            },
        ),
        (
            4,
            "kv",
            "broken",
            EventKind::WakeFailed {
                error: "handler exited (exit status 1)".into(),
            },
        ),
        (
            5,
            "counter",
            "alice",
            EventKind::CallFailed {
                method: "fly".into(),
                error: "call fly on counter/alice timed out after 30s".into(),
            },
        ),
        (
            6,
            "kv",
            "broken",
            EventKind::AlarmFailed {
                scheduled_at: at(-8),
                attempt: 2,
                error: "the alarm method answered HTTP 500".into(),
                retry_at: Some(at(4)),
                next_at: None,
            },
        ),
        (
            7,
            "counter",
            "alice",
            EventKind::AlarmDelivered {
                scheduled_at: at(-15),
                attempt: 1,
                status: 200,
                late_ms: 2.5,
                next_at: Some(at(45)),
            },
        ),
    ] {
        app.apply(Feed::Event(Box::new(event(seq, class, id, kind))));
    }
    app.classes = vec!["counter".into(), "kv".into(), "notes".into()];
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
    insta::assert_snapshot!(render(&fixture(), 130, 30));
}

#[test]
fn narrow_screen_drops_columns() {
    insta::assert_snapshot!(render(&fixture(), 80, 24));
}

#[test]
fn empty_screen() {
    let mut app = App::new("remote · http://127.0.0.1:7070".into(), false);
    app.remote = true;
    insta::assert_snapshot!(render(&app, 100, 20));
}

#[test]
fn empty_screen_hint_by_source() {
    let embedded = render(&App::new("embedded · /data/torpor".into(), false), 300, 20);
    assert!(embedded.contains("Press n to create one."), "{embedded}");
    assert!(!embedded.contains("torpor call"), "{embedded}");

    let mut remote = App::new("remote · http://127.0.0.1:7070".into(), false);
    remote.remote = true;
    let remote = render(&remote, 300, 20);
    assert!(remote.contains("torpor call"), "{remote}");

    let read_only = render(&App::new("embedded · /data/torpor".into(), true), 300, 20);
    assert!(read_only.contains("No objects yet."), "{read_only}");
    assert!(!read_only.contains("Press n"), "{read_only}");
}

#[test]
fn detail_info_page() {
    let mut app = fixture();
    app.detail_tab = DetailTab::Info;
    app.focus = Focus::Detail;
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn detail_calls_page() {
    let mut app = fixture();
    app.detail_tab = DetailTab::Calls;
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn detail_log_page() {
    let mut app = fixture();
    app.detail_tab = DetailTab::Log;
    let log =
        "--- 2026-01-02T03:03:05.000Z starting counter/alice generation 3 ---\nready on fd 3\n";
    app.finish(ActionResult::Log {
        key: key("counter", "alice"),
        result: Ok(log.into()),
    });
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn filtered_and_sorted() {
    let mut app = fixture();
    app.filter = Filter::parse("status:failed,waking").unwrap();
    app.sort.column = SortColumn::Storage;
    app.sort.descending = true;
    app.rows_changed();
    app.refresh_rows();
    app.filter_input = Some("status:failed,waking".into());
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn read_only_footer() {
    let app = App::new("remote · http://127.0.0.1:7070".into(), true);
    let screen = render(&app, 100, 20);
    let footer = screen.lines().last().unwrap();
    assert!(footer.contains("read-only"), "{footer}");
    assert!(!footer.contains("hibernate"), "{footer}");
}

#[test]
fn call_dialog_with_answer() {
    let mut app = fixture();
    let mut dialog = CallDialog::new(
        key("counter", "alice"),
        vec![("increment".into(), "{\"by\": 2}".into())],
    );
    dialog.state = CallState::Answered {
        status: 200,
        duration_ms: 1.25,
        body: "{\"count\":5}".into(),
    };
    app.dialog = Some(Dialog::Call(dialog));
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn call_dialog_rejecting_json() {
    let mut app = fixture();
    let mut dialog = CallDialog::new(key("counter", "alice"), Vec::new());
    dialog.method = "increment".into();
    dialog.body = "{by: 2}".into();
    dialog.state = CallState::Invalid(
        "body is not valid JSON: key must be a string at line 1 column 2".into(),
    );
    app.dialog = Some(Dialog::Call(dialog));
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn create_dialog() {
    let mut app = fixture();
    let mut dialog = CreateDialog::new(app.classes.clone());
    dialog.class_index = 1;
    dialog.id = "shelf-2".into();
    app.dialog = Some(Dialog::Create(dialog));
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn delete_confirmation() {
    let mut app = fixture();
    let question = "Delete counter/alice? Its storage and sandbox log are removed for good.";
    app.dialog = Some(Dialog::Confirm(ConfirmDialog::new(
        "delete",
        question,
        Action::Delete(key("counter", "alice")),
    )));
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn idle_timeout_dialog() {
    let mut app = fixture();
    let mut dialog = IdleDialog::new(key("counter", "alice"), std::time::Duration::from_secs(30));
    dialog.error = Some("1ms is out of range; it must be between 50ms and 30days".into());
    app.dialog = Some(Dialog::IdleTimeout(dialog));
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn alarm_dialog() {
    let mut app = fixture();
    let alarm = Alarm::scheduled(at(90).timestamp_millis(), Some(1000));
    let mut dialog = AlarmDialog::new(key("counter", "alice"), Some(&alarm), at(0));
    dialog.error = Some("every: 10ms is out of range; it must be between 100ms and 365days".into());
    app.dialog = Some(Dialog::Alarm(dialog));
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn alarm_countdown_formats() {
    let mut object = record("counter", "a", Status::Hibernated);
    assert_eq!(super::alarm_countdown(&object, at(0)), "-");
    object.alarm = Some(Alarm::scheduled(at(125).timestamp_millis(), None));
    assert_eq!(super::alarm_countdown(&object, at(0)), "2m05s");
    assert_eq!(super::alarm_countdown(&object, at(130)), "due");
    object.alarm = Some(Alarm::scheduled(at(7200).timestamp_millis(), None));
    assert_eq!(super::alarm_countdown(&object, at(0)), "2h00m");
}

#[test]
fn help_overlay() {
    let mut app = fixture();
    app.show_help = true;
    insta::assert_snapshot!(render(&app, 130, 30));
}

#[test]
fn disconnected_header() {
    let mut app = fixture();
    app.apply(Feed::Disconnected("connection refused".into()));
    let screen = render(&app, 130, 30);
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

#[test]
fn hundred_thousand_objects_draw_visible_rows() {
    let objects: Vec<ObjectRecord> = (0..100_000)
        .map(|i| {
            let status = if i % 10 == 0 {
                Status::Active
            } else {
                Status::Hibernated
            };
            record("counter", &format!("obj-{i:06}"), status)
        })
        .collect();
    let mut app = App::new("embedded".into(), false);
    app.apply(Feed::Snapshot(objects));
    app.refresh_rows();
    app.move_selection(54_321);
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
    let theme = Theme { color: true };
    let frames = 50;
    let started = std::time::Instant::now();
    for _ in 0..frames {
        terminal
            .draw(|frame| super::draw(frame, &app, at(0), &theme))
            .unwrap();
    }
    let per_frame = started.elapsed() / frames;
    eprintln!(
        "frame time with 100,000 objects: {per_frame:?} (debug build unless run with --release)"
    );
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("▶ counter"), "selection drawn");
    assert!(
        screen.contains("obj-054321"),
        "the selected object is on screen"
    );
    assert!(
        screen.contains("objects 54322/100000"),
        "{}",
        screen.lines().nth(3).unwrap()
    );

    let started = std::time::Instant::now();
    app.sort.column = SortColumn::HibernatesIn;
    app.rows_changed();
    app.refresh_rows();
    eprintln!("re-sorting 100,000 objects: {:?}", started.elapsed());
    assert_eq!(
        app.selected_key(),
        Some(key("counter", "obj-054321")),
        "selection kept across a sort"
    );
}

#[test]
fn read_only_token_turns_actions_off() {
    let mut app = fixture();
    app.finish(ActionResult::Done {
        done: "woke counter/alice".into(),
        attempt: "wake counter/alice".into(),
        result: Err(crate::console::app::ActionFailure::ReadOnlyToken),
    });
    assert!(app.read_only, "actions stay on after a 403");
    let (message, is_error) = app.message.clone().unwrap();
    assert!(is_error);
    assert!(
        message.starts_with("cannot wake counter/alice"),
        "{message}"
    );

    let screen = render(&app, 80, 24);
    let footer = screen
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap();
    assert!(footer.contains(&message), "{footer}");
}

#[test]
fn detail_names_the_container() {
    let mut app = App::new("embedded · /data/torpor".into(), false);
    let mut boxed = record("counter", "alice", Status::Active);
    if let Some(sandbox) = boxed.sandbox.as_mut() {
        sandbox.driver = "container".into();
        sandbox.container = Some("torpor-0123456789ab-counter.7".into());
    }
    app.apply(Feed::Snapshot(vec![boxed]));
    app.refresh_rows();
    app.detail_tab = DetailTab::Info;
    let screen = render(&app, 160, 40);
    assert!(screen.contains("counter.7 (container)"), "{screen}");
    assert!(screen.contains("torpor-0123456789ab-counter.7"), "{screen}");
}
