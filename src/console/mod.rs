//! The operations console: a ratatui front end over an embedded runtime or a remote server.
//!
//! One loop owns the [`App`] view model. It redraws only after something changed (a key, a
//! mouse event, feed updates, a finished action) or when a visible countdown or the call-rate
//! chart reaches the next second, and at most [`MAX_FPS`] times a second. Actions run in
//! background tasks and report back through a channel, so drawing never waits for the
//! runtime. The terminal is restored on quit, on panic and on SIGTERM, SIGINT or SIGHUP.

pub mod app;
pub mod dialogs;
pub mod fleet;
mod input;
mod loaders;
mod mouse;
pub mod source;
mod terminal;
pub mod ui;
pub mod view;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, DurationRound, Utc};
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use app::App;
pub use source::Source;
pub use terminal::require as require_terminal;

use crate::api::client::ClientError;
use app::{Action, ActionFailure, ActionResult};
use loaders::Loaders;
use ui::theme::Theme;

/// Most frames drawn per second while updates stream in.
pub const MAX_FPS: u32 = 30;
/// Bytes of a sandbox log the log page shows.
const LOG_BYTES: usize = 32 * 1024;

/// Runs the console until the operator quits; an embedded runtime is then shut down, which
/// hibernates its active objects.
pub async fn run(source: Source, read_only: bool) -> anyhow::Result<()> {
    let theme = Theme::from_env();
    let mut app = App::new(source.describe(), read_only);
    app.remote = matches!(source, Source::Remote(_));
    let (feed_sender, mut feed) = mpsc::unbounded_channel();
    let feed_task = tokio::spawn(source.clone().run_feed(feed_sender));
    let (done_sender, mut done) = mpsc::unbounded_channel();
    let mut loaders = Loaders::default();
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(perform(
        source.clone(),
        Action::LoadClasses,
        done_sender.clone(),
    ));

    let mut terminal = terminal::enter()?;
    let mut keys = EventStream::new();
    let mut redraw = true;
    let mut last_draw = Instant::now() - Duration::from_secs(1);
    let frame_interval = Duration::from_secs(1) / MAX_FPS;
    let outcome = loop {
        let mut actions = Vec::new();
        if let Some(action) = app.refresh_rows() {
            actions.push(action);
        }
        if redraw && last_draw.elapsed() >= frame_interval {
            let now = display_clock();
            if let Err(err) = terminal.draw(|frame| ui::draw(frame, &app, now, &theme)) {
                break Err(err.into());
            }
            redraw = false;
            last_draw = Instant::now();
        }
        if app.quit {
            break Ok(());
        }
        let wait = if redraw {
            frame_interval.saturating_sub(last_draw.elapsed())
        } else {
            next_tick(&app).unwrap_or(Duration::from_secs(3600))
        };
        tokio::select! {
            event = keys.next() => match event {
                Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => {
                    actions.extend(input::on_key(&mut app, key));
                }
                Some(Ok(TermEvent::Mouse(mouse))) => {
                    let size = terminal.size().unwrap_or_default();
                    let screen = ratatui::layout::Rect::new(0, 0, size.width, size.height);
                    actions.extend(mouse::on_mouse(&mut app, mouse, screen));
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => break Err(err.into()),
                None => break Ok(()),
            },
            Some(update) = feed.recv() => {
                actions.extend(app.apply(update));
                // Take every update already waiting, so a burst costs one frame.
                while let Ok(update) = feed.try_recv() {
                    actions.extend(app.apply(update));
                }
            }
            Some(result) = done.recv() => {
                loaders.finished(&result);
                app.finish(result);
                actions.extend(loaders.next());
            }
            _ = tokio::time::sleep(wait) => {}
            _ = term.recv() => app.quit = true,
            _ = interrupt.recv() => app.quit = true,
            _ = hangup.recv() => app.quit = true,
        }
        redraw = true;
        for action in actions {
            if let Some(action) = loaders.admit(action) {
                tokio::spawn(perform(source.clone(), action, done_sender.clone()));
            }
        }
    };
    terminal::leave();
    feed_task.abort();
    if let Source::Embedded(runtime) = &source {
        eprintln!("torpor: hibernating active objects before exit…");
        runtime.shutdown().await;
    }
    outcome
}

/// Returns the time countdowns are drawn against: now, truncated to the second, so that every
/// countdown on screen changes at the same moment and the screen redraws once a second.
fn display_clock() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(chrono::Duration::seconds(1))
        .unwrap_or(now)
}

/// Time until the next whole second if anything on screen changes with time.
fn next_tick(app: &App) -> Option<Duration> {
    let now = Utc::now();
    let visible = app.rows.iter().skip(app.table_offset.get()).take(200);
    let counting = visible
        .map(|&i| &app.objects[i])
        .any(|o| o.hibernate_at.is_some() || o.last_call_at.is_some() || o.alarm.is_some());
    if !counting && !app.fleet.active(now) {
        return None;
    }
    let into_second = now.timestamp_subsec_millis() as u64;
    Some(Duration::from_millis(1000 - into_second.min(999)))
}

/// Describes why an action failed; a 403 from a server means the console's token is the
/// read-only one.
fn action_failure(err: anyhow::Error) -> ActionFailure {
    match err.downcast_ref::<ClientError>() {
        Some(ClientError::Api { status: 403, .. }) => ActionFailure::ReadOnlyToken,
        _ => ActionFailure::Failed(format!("{err:#}")),
    }
}

async fn perform(source: Source, action: Action, done: mpsc::UnboundedSender<ActionResult>) {
    let text = |e: anyhow::Error| format!("{e:#}");
    let result = match action {
        Action::Call { key, method, body } => ActionResult::Called(
            source
                .call(&key, &method, Bytes::from(body))
                .await
                .map_err(text),
        ),
        Action::Hibernate { key, force } => ActionResult::Done {
            done: format!("hibernated {key}"),
            attempt: format!("hibernate {key}"),
            result: source
                .hibernate(&key, force)
                .await
                .map(|_| ())
                .map_err(action_failure),
        },
        Action::Wake(key) => ActionResult::Done {
            done: format!("woke {key}"),
            attempt: format!("wake {key}"),
            result: source.wake(&key).await.map(|_| ()).map_err(action_failure),
        },
        Action::Create(key) => ActionResult::Done {
            done: format!("created {key}"),
            attempt: format!("create {key}"),
            result: source.wake(&key).await.map(|_| ()).map_err(action_failure),
        },
        Action::Delete(key) => ActionResult::Done {
            done: format!("deleted {key}"),
            attempt: format!("delete {key}"),
            result: source.delete(&key).await.map_err(action_failure),
        },
        Action::SetIdleTimeout { key, timeout } => ActionResult::Done {
            done: match timeout {
                Some(t) => format!(
                    "idle timeout of {key} set to {}",
                    humantime::format_duration(t)
                ),
                None => format!("idle timeout of {key} returned to its class's"),
            },
            attempt: format!("change the idle timeout of {key}"),
            result: source
                .set_idle_timeout(&key, timeout)
                .await
                .map(|_| ())
                .map_err(action_failure),
        },
        Action::SetAlarm { key, request } => ActionResult::Done {
            done: format!("alarm of {key} set"),
            attempt: format!("set the alarm of {key}"),
            result: source
                .set_alarm(&key, request)
                .await
                .map(|_| ())
                .map_err(action_failure),
        },
        Action::ClearAlarm(key) => ActionResult::Done {
            done: format!("alarm of {key} cleared"),
            attempt: format!("clear the alarm of {key}"),
            result: source.clear_alarm(&key).await.map_err(action_failure),
        },
        Action::LoadDetail(key) => {
            ActionResult::Detail(source.show(&key).await.map(Box::new).map_err(text))
        }
        Action::LoadLog(key) => {
            let result = source.logs(&key, LOG_BYTES).await.map_err(text);
            ActionResult::Log { key, result }
        }
        Action::LoadClasses => ActionResult::Classes(source.classes().await.map_err(text)),
    };
    let _ = done.send(result);
}
