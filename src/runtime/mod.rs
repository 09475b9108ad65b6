//! The object lifecycle and the call router.
//!
//! [`Runtime`] is the handle everything else uses: the API server, the console and tests. It
//! owns the store, the sandbox driver, one slot per touched object, the deadline schedulers
//! that hibernate idle objects and deliver alarms, and the event bus. The lifecycle steps
//! live in `wake`, `call` and `hibernate`; alarms in `alarms` and `delivery`; start-up and
//! shutdown in `reconcile`.

mod actions;
mod alarms;
mod call;
mod checkpoint;
mod delivery;
mod drivers;
mod error;
mod events;
pub mod handler;
mod hibernate;
mod reconcile;
mod records;
mod scheduler;
mod slot;
mod wake;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::{ClassConfig, Config};
use crate::model::{ClassName, ObjectKey};
use crate::sandbox::{ContainerDriver, ProcessDriver, SandboxDriver};
use crate::store::{DataDirLock, SqliteStore, Store};

pub use actions::{MAX_IDLE_TIMEOUT, MIN_IDLE_TIMEOUT};
pub use alarms::{AlarmListing, parse_alarm_cursor};
pub use call::{CallReply, CallRequest};
pub use error::RuntimeError;
pub use records::Listing;
pub use scheduler::Deadlines;

use self::drivers::Drivers;
use self::events::EventBus;
use self::slot::Slots;

/// How often call counts kept in memory are written to the store.
const ACTIVITY_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Settings a runtime starts with.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub config: Config,
    pub data_dir: PathBuf,
    /// The torpor binary, run as `torpor object-host NAME` for built-in classes.
    pub host_program: PathBuf,
}

/// A running runtime. Cloning shares it.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: Arc<Config>,
    data_dir: PathBuf,
    store: Arc<dyn Store>,
    sqlite: Arc<SqliteStore>,
    drivers: Drivers,
    slots: Slots,
    events: EventBus,
    deadlines: Deadlines<ObjectKey>,
    /// Each pending alarm's next attempt.
    alarms: Deadlines<ObjectKey>,
    /// Alarm deliveries running at once, bounded by `limits.max_alarm_deliveries`.
    alarm_permits: Arc<tokio::sync::Semaphore>,
    closing: AtomicBool,
    /// Calls queued or running across all objects, watched by shutdown.
    calls_in_flight: watch::Sender<u64>,
    /// Objects with call counts not yet written to the store.
    dirty: Mutex<HashSet<ObjectKey>>,
    /// Objects with a running sandbox, bounded by `limits.max_active_objects`.
    active: Arc<std::sync::atomic::AtomicUsize>,
    /// Sandboxes frozen in the warm tier, bounded by `limits.max_warm_objects`.
    warm: Arc<std::sync::atomic::AtomicUsize>,
    _lock: DataDirLock,
}

impl Runtime {
    /// Locks the data directory, opens the store, reconciles what an earlier run left, and
    /// starts the background tasks.
    pub async fn start(options: RuntimeOptions) -> anyhow::Result<Runtime> {
        let lock = DataDirLock::acquire(&options.data_dir)?;
        Self::start_locked(options, lock).await
    }

    /// Starts like [`Runtime::start`] on a data directory the caller already locked.
    pub async fn start_locked(
        options: RuntimeOptions,
        lock: DataDirLock,
    ) -> anyhow::Result<Runtime> {
        // The store holds every object's state: only the runtime's user may read it.
        {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o700);
            if let Err(err) = std::fs::set_permissions(&options.data_dir, private) {
                tracing::warn!(data_dir = %options.data_dir.display(), error = %err, "cannot make the data directory private");
            }
        }
        // Checked before the store is opened, so a missing engine changes nothing on disk.
        let images = options
            .config
            .classes
            .values()
            .any(|class| class.handler.is_image());
        let container = if images {
            let driver = ContainerDriver::connect(
                &options.config.container,
                &options.data_dir,
                options.config.runtime.stop_grace,
            )
            .await
            .context("image classes need a container engine")?;
            Some(Arc::new(driver) as Arc<dyn SandboxDriver>)
        } else {
            None
        };
        let sqlite = Arc::new(SqliteStore::open(&options.data_dir.join("torpor.db"))?);

        let store: Arc<dyn Store> = sqlite.clone();
        let process: Arc<dyn SandboxDriver> = Arc::new(ProcessDriver::new(
            options.data_dir.join("sandboxes"),
            options.host_program.clone(),
            options.config.runtime.stop_grace,
            &options.config.sandbox,
        )?);
        let drivers = Drivers { process, container };
        for warning in drivers.process.warnings() {
            tracing::warn!("sandbox isolation: {warning}");
        }

        let last_seq = sqlite.last_event_seq()?;
        let recent = store.recent_events(200).await?;
        let events = EventBus::new(Arc::clone(&store), last_seq, recent);
        let (deadlines, fired) = Deadlines::start();
        let (alarm_deadlines, alarms_due) = Deadlines::start();
        let alarm_permits = Arc::new(tokio::sync::Semaphore::new(
            options.config.limits.max_alarm_deliveries,
        ));

        let inner = Arc::new(Inner {
            config: Arc::new(options.config),
            data_dir: options.data_dir,
            store,
            sqlite,
            drivers,
            slots: Slots::default(),
            events,
            deadlines,
            alarms: alarm_deadlines,
            alarm_permits,
            closing: AtomicBool::new(false),
            calls_in_flight: watch::channel(0).0,
            dirty: Mutex::new(HashSet::new()),
            active: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            warm: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            _lock: lock,
        });

        inner.reconcile().await?;
        inner.load_alarms().await?;
        tokio::spawn(dispatch_deadlines(Arc::downgrade(&inner), fired));
        tokio::spawn(alarms::dispatch_alarms(Arc::downgrade(&inner), alarms_due));
        tokio::spawn(flush_activity_periodically(Arc::downgrade(&inner)));
        Ok(Runtime { inner })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    /// Protections the host cannot give sandboxes, one line each.
    pub fn isolation_warnings(&self) -> Vec<String> {
        self.inner
            .drivers
            .all()
            .flat_map(|driver| driver.warnings())
            .collect()
    }

    /// Identifies this runtime's event numbering: sequence numbers compare only between events
    /// with the same value here.
    pub fn event_epoch(&self) -> u64 {
        self.inner.events.boot()
    }

    /// Subscribes to events: the recent history, then a live stream.
    pub fn subscribe(
        &self,
    ) -> (
        Vec<crate::model::Event>,
        tokio::sync::broadcast::Receiver<crate::model::Event>,
    ) {
        self.inner.events.subscribe()
    }

    /// Stops taking calls, lets calls in flight finish within the shutdown grace period,
    /// hibernates every active object and closes the store.
    pub async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}

impl Inner {
    fn class(&self, name: &ClassName) -> Result<Arc<ClassConfig>, RuntimeError> {
        self.config
            .class(name)
            .cloned()
            .ok_or_else(|| RuntimeError::UnknownClass {
                class: name.to_string(),
                known: self
                    .config
                    .classes
                    .keys()
                    .map(ClassName::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}

/// Hibernates each object whose deadline passed, each in its own task so a slow save never
/// delays another object's.
async fn dispatch_deadlines(
    inner: Weak<Inner>,
    mut fired: tokio::sync::mpsc::UnboundedReceiver<ObjectKey>,
) {
    while let Some(key) = fired.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        tokio::spawn(async move { inner.hibernate_when_due(key).await });
    }
}

async fn flush_activity_periodically(inner: Weak<Inner>) {
    let mut ticks = tokio::time::interval(ACTIVITY_FLUSH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.flush_activity().await;
    }
}
