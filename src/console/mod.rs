//! The operations console: a ratatui front end over an embedded runtime or a remote server.
//!
//! One loop owns the [`App`] view model and redraws only after something changed: a key, a
//! feed update, a finished action, or a countdown reaching its next second. Actions run in
//! background tasks and report back through a channel, so drawing never waits for the
//! runtime. The terminal is restored on quit, on panic (ratatui's hook) and on SIGTERM.

pub mod app;
pub mod dialog;
mod input;
pub mod source;
pub mod ui;

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::StreamExt;
use tokio::sync::mpsc;

pub use app::App;
pub use source::Source;

use app::{Action, ActionResult};
use ui::theme::Theme;

/// Runs the console until the operator quits; an embedded runtime is then shut down, which
/// hibernates its active objects.
pub async fn run(source: Source) -> anyhow::Result<()> {
    let theme = Theme::from_env();
    let mut app = App::new(source.describe());
    let (feed_sender, mut feed) = mpsc::unbounded_channel();
    let feed_task = tokio::spawn(source.clone().run_feed(feed_sender));
    let (done_sender, mut done) = mpsc::unbounded_channel();
    let mut detail = DetailLoader::default();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;

    let mut terminal = ratatui::init();
    let mut keys = EventStream::new();
    let mut redraw = true;
    let outcome = loop {
        if redraw {
            if let Err(err) = terminal.draw(|frame| ui::draw(frame, &app, Utc::now(), &theme)) {
                break Err(err.into());
            }
            redraw = false;
        }
        if app.quit {
            break Ok(());
        }
        let tick = next_countdown_change(&app).unwrap_or(Duration::from_secs(3600));
        let action = tokio::select! {
            key = keys.next() => match key {
                Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => {
                    redraw = true;
                    input::on_key(&mut app, key)
                }
                Some(Ok(TermEvent::Resize(..))) => {
                    redraw = true;
                    None
                }
                Some(Ok(_)) => None,
                Some(Err(err)) => break Err(err.into()),
                None => break Ok(()),
            },
            Some(update) = feed.recv() => {
                redraw = true;
                app.apply(update)
            }
            Some(result) = done.recv() => {
                redraw = true;
                if let ActionResult::Detail(_) = &result {
                    detail.loading = false;
                }
                app.finish(result);
                detail.next()
            }
            _ = tokio::time::sleep(tick) => {
                redraw = true;
                None
            }
            _ = sigterm.recv() => {
                app.quit = true;
                None
            }
        };
        if let Some(action) = action {
            let action = match action {
                Action::LoadDetail(key) => detail.request(key),
                other => Some(other),
            };
            if let Some(action) = action {
                tokio::spawn(perform(source.clone(), action, done_sender.clone()));
            }
        }
    };
    ratatui::restore();
    feed_task.abort();
    if let Source::Embedded(runtime) = &source {
        eprintln!("torpor: hibernating active objects before exit…");
        runtime.shutdown().await;
    }
    outcome
}

/// Loads the selected object's storage one request at a time: a request made while one is
/// running replaces any other waiting one.
#[derive(Default)]
struct DetailLoader {
    loading: bool,
    waiting: Option<crate::model::ObjectKey>,
}

impl DetailLoader {
    fn request(&mut self, key: crate::model::ObjectKey) -> Option<Action> {
        if self.loading {
            self.waiting = Some(key);
            return None;
        }
        self.loading = true;
        Some(Action::LoadDetail(key))
    }

    /// Returns the request that waited for the one just finished, to pass to `request`.
    fn next(&mut self) -> Option<Action> {
        self.waiting.take().map(Action::LoadDetail)
    }
}

async fn perform(source: Source, action: Action, done: mpsc::UnboundedSender<ActionResult>) {
    let result = match action {
        Action::Call { key, method, body } => ActionResult::Called(
            source
                .call(&key, &method, Bytes::from(body))
                .await
                .map_err(|e| format!("{e:#}")),
        ),
        Action::Hibernate(key) => ActionResult::Done {
            what: format!("hibernated {key}"),
            result: source
                .hibernate(&key)
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:#}")),
        },
        Action::Wake(key) => ActionResult::Done {
            what: format!("woke {key}"),
            result: source
                .wake(&key)
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:#}")),
        },
        Action::LoadDetail(key) => ActionResult::Detail(
            source
                .show(&key)
                .await
                .map(Box::new)
                .map_err(|e| format!("{e:#}")),
        ),
    };
    let _ = done.send(result);
}

/// Time until the soonest countdown on screen shows a different second.
fn next_countdown_change(app: &App) -> Option<Duration> {
    let now = Utc::now();
    app.objects
        .iter()
        .filter_map(|object| object.hibernate_at)
        .map(|at| (at - now).num_milliseconds())
        .filter(|left| *left > -1000)
        .map(|left| Duration::from_millis((left.rem_euclid(1000) + 1) as u64))
        .min()
}
