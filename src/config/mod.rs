//! The configuration file: runtime settings, limits, and the classes objects are made from.
//!
//! The file is TOML. Without `--config`, the built-in `assets/torpor.toml` is used. Raw TOML is
//! parsed into the `file` structs first and then validated into [`Config`], so that every bad
//! value is reported with its key, the value and the allowed range.

mod file;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::model::ClassName;

/// The built-in configuration, the same text as `assets/torpor.toml`.
pub const BUILTIN_CONFIG: &str = include_str!("../../assets/torpor.toml");

/// The example Python handler, `assets/classes/notes.py`. The built-in `notes` class runs
/// this copy with `python3 -c`, so it works wherever the binary is installed and whichever
/// user a sandbox runs as.
pub const NOTES_HANDLER: &str = include_str!("../../assets/classes/notes.py");

/// When storage is written to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// After every call that changed storage, before the caller gets the response. A crash
    /// of the sandbox or the host loses no acknowledged write.
    PerCall,
    /// Only when the object hibernates. Faster, but a crash loses every write since the wake.
    HibernateOnlyUnsafe,
}

/// How the runtime behaves as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeSettings {
    pub durability: Durability,
    /// Time a sandbox gets between SIGTERM and SIGKILL.
    #[serde(with = "humantime_serde")]
    pub stop_grace: Duration,
    /// Time calls in flight get to finish at shutdown before objects are hibernated anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

/// Size limits on what enters the runtime.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Largest request body a call may send, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body a handler may return, in bytes.
    pub max_response_bytes: usize,
    /// Largest storage snapshot an object may save, in bytes of JSON.
    pub max_storage_bytes: usize,
    /// Most objects one listing page returns.
    pub max_page_size: usize,
    /// Most calls that may wait on one object at once; more are rejected with 503.
    pub max_queued_calls: u32,
    /// Most event streams (`GET /v1/events`) open at once; more are rejected with 429.
    pub max_event_subscribers: usize,
    /// Most objects with a running sandbox; a wake beyond it is rejected with 503.
    pub max_active_objects: usize,
    /// Most API connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Most hibernated sandboxes kept frozen in the warm tier; more are stopped.
    pub max_warm_objects: usize,
    /// Maximum number of alarm deliveries running at once; more due alarms wait their turn.
    pub max_alarm_deliveries: usize,
}

/// What runs in an object's sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Handler {
    /// A demo class served by this binary (`torpor object-host NAME`).
    Builtin(String),
    /// A program and its arguments, run with the sandbox folder as working directory.
    Command(Vec<String>),
    /// A container image, run through the container engine; `command` replaces the image's.
    Image {
        image: String,
        command: Option<Vec<String>>,
    },
}

impl Handler {
    pub fn is_image(&self) -> bool {
        matches!(self, Handler::Image { .. })
    }
}

/// How containers of image classes are run.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerSettings {
    /// The engine's API socket: `unix:///PATH` or a path. `None` uses `DOCKER_HOST`, then
    /// `/var/run/docker.sock`.
    pub socket: Option<String>,
}

/// One class of objects and the settings its objects share.
#[derive(Debug, Clone, Serialize)]
pub struct ClassConfig {
    pub name: ClassName,
    pub handler: Handler,
    /// Extra environment variables for the handler.
    pub env: BTreeMap<String, String>,
    /// Whether the handler is passed a listening socket as file descriptor 3
    /// (`TORPOR_LISTEN_FD=3`) rather than binding `TORPOR_LISTEN` itself.
    pub inherit_socket: bool,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub wake_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Time `GET /__storage` may take (checkpoints and hibernation).
    #[serde(with = "humantime_serde")]
    pub storage_read_timeout: Duration,
    /// Time `POST /__storage` may take (wake).
    #[serde(with = "humantime_serde")]
    pub storage_write_timeout: Duration,
    /// Pause before the first retry of a failed hibernation; it doubles with each failure.
    #[serde(with = "humantime_serde")]
    pub hibernate_retry: Duration,
    /// Longest pause between hibernation retries.
    #[serde(with = "humantime_serde")]
    pub hibernate_retry_max: Duration,
    /// Memory limit of each sandbox, in MiB.
    pub memory_mb: u64,
    /// CPU limit of each sandbox, in CPUs (0.5 is half of one CPU's time).
    pub vcpus: f64,
    /// Most processes and threads in each sandbox.
    pub max_processes: u64,
    /// Whether handlers may open outbound network connections.
    pub network: bool,
    /// Image classes: whether a container's filesystem outlives hibernation (it is removed
    /// only on delete), or the container is removed at every hibernation.
    pub keep_filesystem: bool,
    /// Image classes: the engine network mode (`bridge` by default).
    pub container_network: String,
    /// How long an idle object's sandbox stays frozen after hibernation, so a call wakes it
    /// by thawing instead of starting it again; zero stops it at once.
    #[serde(with = "humantime_serde")]
    pub warm_for: Duration,
    /// Pause before the first retry of a failed alarm delivery; it doubles with each failure.
    #[serde(with = "humantime_serde")]
    pub alarm_retry: Duration,
    /// Maximum pause between alarm delivery retries.
    #[serde(with = "humantime_serde")]
    pub alarm_retry_max: Duration,
    /// Delivery attempts a scheduled alarm gets before it is given up.
    pub alarm_max_attempts: u32,
}

impl ClassConfig {
    /// Returns how this class's failed alarm deliveries are retried.
    pub fn alarm_retry_policy(&self) -> crate::model::alarm::RetryPolicy {
        crate::model::alarm::RetryPolicy {
            first_ms: self.alarm_retry.as_millis() as u64,
            max_ms: self.alarm_retry_max.as_millis() as u64,
            max_attempts: self.alarm_max_attempts,
        }
    }
}

/// Who sandboxes run as when the runtime runs as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxUser {
    /// Each object's sandbox runs as its own unprivileged uid: `uid_base` plus its row id.
    PerObject,
    /// Sandboxes run as the runtime's own user.
    Runtime,
}

/// How sandboxes are isolated. Each mechanism is used where the host has it; the runtime
/// warns at start-up about those it cannot use.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxSettings {
    pub user: SandboxUser,
    pub uid_base: u32,
    /// Own pid, mount, ipc and uts namespaces, and a network namespace for handlers on an
    /// inherited socket (needs root).
    pub namespaces: bool,
    /// Landlock: writes only under the sandbox's folder, no outbound TCP, no signals to
    /// processes outside the sandbox.
    pub landlock: bool,
    /// Memory, CPU and process limits through cgroups (v1 or v2).
    pub cgroups: bool,
}

/// A validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub runtime: RuntimeSettings,
    pub sandbox: SandboxSettings,
    pub container: ContainerSettings,
    pub limits: Limits,
    pub classes: BTreeMap<ClassName, Arc<ClassConfig>>,
    /// The file it was read from; `None` for the built-in configuration.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        // Made absolute now: a relative base would resolve against each sandbox's working
        // directory instead.
        let absolute = std::path::absolute(path)
            .with_context(|| format!("cannot resolve configuration file {}", path.display()))?;
        let base = absolute
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let mut config = Self::parse(&text, &base)
            .with_context(|| format!("invalid configuration file {}", path.display()))?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// The built-in configuration, with the `notes` class running the embedded handler.
    pub fn builtin() -> Config {
        #[allow(clippy::expect_used)]
        let mut config = Self::parse(BUILTIN_CONFIG, Path::new("/"))
            .expect("assets/torpor.toml is valid; a unit test checks it");
        if let Ok(notes) = ClassName::parse("notes")
            && let Some(class) = config.classes.get_mut(&notes)
        {
            let mut class_config = ClassConfig::clone(class);
            class_config.handler =
                Handler::Command(vec!["python3".into(), "-c".into(), NOTES_HANDLER.into()]);
            *class = Arc::new(class_config);
        }
        config
    }

    /// Parses and validates configuration text; relative command paths resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Config> {
        let raw: file::ConfigFile = toml::from_str(text)?;
        validate::validate(raw, base)
    }

    pub fn class(&self, name: &ClassName) -> Option<&Arc<ClassConfig>> {
        self.classes.get(name)
    }
}

#[cfg(test)]
mod tests;
