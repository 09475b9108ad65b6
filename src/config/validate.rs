//! Turns the parsed file into a [`Config`], applying defaults and checking every value
//! against its range. Errors name the key, the value and the limit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use super::file::{ClassSection, ClassSettings, ConfigFile, LimitsSection};
use super::{
    ClassConfig, Config, ContainerSettings, Durability, Handler, Limits, RuntimeSettings,
    SandboxSettings, SandboxUser,
};
use crate::host::BUILTIN_CLASSES;
use crate::model::ClassName;

const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_WAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_STORAGE_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_HIBERNATE_RETRY: Duration = Duration::from_secs(1);
const DEFAULT_HIBERNATE_RETRY_MAX: Duration = Duration::from_secs(60);
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(3);
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

const MIB: u64 = 1024 * 1024;
const DEFAULT_UID_BASE: u32 = 200_000;
/// Leaves room for a billion row ids below the largest 32-bit uid.
const MAX_UID_BASE: u32 = 3_000_000_000;
const DEFAULT_MEMORY_MB: u64 = 256;
const DEFAULT_VCPUS: f64 = 1.0;
const DEFAULT_MAX_PROCESSES: u64 = 64;
const DEFAULT_WARM_FOR: Duration = Duration::from_secs(60);
const DEFAULT_ALARM_RETRY: Duration = Duration::from_secs(1);
const DEFAULT_ALARM_RETRY_MAX: Duration = Duration::from_secs(60);
const DEFAULT_ALARM_MAX_ATTEMPTS: u64 = 6;

pub fn validate(raw: ConfigFile, base: &Path) -> anyhow::Result<Config> {
    let runtime = runtime_settings(&raw)?;
    let container = ContainerSettings {
        socket: raw.container.socket.clone(),
    };
    let sandbox = sandbox_settings(&raw)?;
    let limits = limits(&raw.limits)?;
    // Checked on their own first, so a bad default is reported where it is written rather
    // than under every class that inherits it.
    class_config(
        "defaults",
        &ClassSection::default_builtin(),
        &raw.defaults,
        base,
    )
    .context("in [defaults]")?;
    let mut classes = BTreeMap::new();
    for (name, section) in &raw.classes {
        let class = class_config(name, section, &raw.defaults, base)
            .with_context(|| format!("in [classes.{name}]"))?;
        classes.insert(class.name.clone(), Arc::new(class));
    }
    Ok(Config {
        runtime,
        sandbox,
        container,
        limits,
        classes,
        source: None,
    })
}

fn runtime_settings(raw: &ConfigFile) -> anyhow::Result<RuntimeSettings> {
    let durability = match raw.runtime.durability.as_deref() {
        None | Some("per-call") => Durability::PerCall,
        Some("hibernate-only-unsafe") => Durability::HibernateOnlyUnsafe,
        Some(other) => bail!(
            "runtime.durability = {other:?} is not a durability mode; use \"per-call\" (the \
             default) or \"hibernate-only-unsafe\""
        ),
    };
    let stop_grace = duration_in(
        "runtime.stop_grace",
        raw.runtime.stop_grace,
        DEFAULT_STOP_GRACE,
        Duration::ZERO,
        Duration::from_secs(300),
    )?;
    let shutdown_grace = duration_in(
        "runtime.shutdown_grace",
        raw.runtime.shutdown_grace,
        DEFAULT_SHUTDOWN_GRACE,
        Duration::ZERO,
        Duration::from_secs(3600),
    )?;
    Ok(RuntimeSettings {
        durability,
        stop_grace,
        shutdown_grace,
    })
}

fn sandbox_settings(raw: &ConfigFile) -> anyhow::Result<SandboxSettings> {
    let section = &raw.sandbox;
    let user = match section.user.as_deref() {
        None | Some("per-object") => SandboxUser::PerObject,
        Some("runtime") => SandboxUser::Runtime,
        Some(other) => bail!(
            "sandbox.user = {other:?} is not a sandbox user; use \"per-object\" (the default) or \"runtime\""
        ),
    };
    let uid_base = section.uid_base.unwrap_or(DEFAULT_UID_BASE);
    if !(1000..=MAX_UID_BASE).contains(&uid_base) {
        bail!(
            "sandbox.uid_base = {uid_base} is out of range; it must be between 1000 and {MAX_UID_BASE}"
        );
    }
    Ok(SandboxSettings {
        user,
        uid_base,
        namespaces: section.namespaces.unwrap_or(true),
        landlock: section.landlock.unwrap_or(true),
        cgroups: section.cgroups.unwrap_or(true),
    })
}

fn limits(raw: &LimitsSection) -> anyhow::Result<Limits> {
    Ok(Limits {
        max_request_bytes: int_in(
            "limits.max_request_bytes",
            raw.max_request_bytes,
            MIB,
            1,
            1024 * MIB,
        )?,
        max_response_bytes: int_in(
            "limits.max_response_bytes",
            raw.max_response_bytes,
            16 * MIB,
            1,
            1024 * MIB,
        )?,
        max_storage_bytes: int_in(
            "limits.max_storage_bytes",
            raw.max_storage_bytes,
            32 * MIB,
            2,
            1024 * MIB,
        )?,
        max_page_size: int_in("limits.max_page_size", raw.max_page_size, 1000, 1, 100_000)?,
        max_queued_calls: int_in(
            "limits.max_queued_calls",
            raw.max_queued_calls,
            1000,
            1,
            1_000_000,
        )? as u32,
        max_event_subscribers: int_in(
            "limits.max_event_subscribers",
            raw.max_event_subscribers,
            64,
            1,
            100_000,
        )?,
        max_active_objects: int_in(
            "limits.max_active_objects",
            raw.max_active_objects,
            1000,
            1,
            1_000_000,
        )?,
        max_connections: int_in(
            "limits.max_connections",
            raw.max_connections,
            4096,
            1,
            1_000_000,
        )?,
        max_warm_objects: int_in(
            "limits.max_warm_objects",
            raw.max_warm_objects,
            256,
            0,
            1_000_000,
        )?,
        max_alarm_deliveries: int_in(
            "limits.max_alarm_deliveries",
            raw.max_alarm_deliveries,
            32,
            1,
            100_000,
        )?,
    })
}

fn class_config(
    name: &str,
    section: &ClassSection,
    defaults: &ClassSettings,
    base: &Path,
) -> anyhow::Result<ClassConfig> {
    let class = ClassName::parse(name)?;
    let handler = match (&section.builtin, &section.command) {
        _ if section.image.is_some() => image_handler(section)?,
        (Some(builtin), None) => {
            if !BUILTIN_CLASSES.contains(&builtin.as_str()) {
                bail!(
                    "builtin = {builtin:?} is not a built-in class; the built-in classes are {}",
                    BUILTIN_CLASSES.join(", ")
                );
            }
            Handler::Builtin(builtin.clone())
        }
        (None, Some(command)) => Handler::Command(command_line(command, base)?),
        (Some(_), Some(_)) => bail!("set either builtin or command, not both"),
        (None, None) => {
            bail!("set builtin = \"NAME\", command = [\"PROGRAM\", ...] or image = \"IMAGE\"")
        }
    };
    for key in section.env.keys() {
        env_name(key)?;
    }
    let settings = section.settings_over(defaults);
    let hibernate_retry = duration_in(
        "hibernate_retry",
        settings.hibernate_retry,
        DEFAULT_HIBERNATE_RETRY,
        Duration::from_millis(10),
        Duration::from_secs(3600),
    )?;
    let hibernate_retry_max = duration_in(
        "hibernate_retry_max",
        settings.hibernate_retry_max,
        DEFAULT_HIBERNATE_RETRY_MAX.max(hibernate_retry),
        hibernate_retry,
        Duration::from_secs(86_400),
    )?;
    let alarm_retry = duration_in(
        "alarm_retry",
        settings.alarm_retry,
        DEFAULT_ALARM_RETRY,
        Duration::from_millis(10),
        Duration::from_secs(3600),
    )?;
    let alarm_retry_max = duration_in(
        "alarm_retry_max",
        settings.alarm_retry_max,
        DEFAULT_ALARM_RETRY_MAX.max(alarm_retry),
        alarm_retry,
        Duration::from_secs(86_400),
    )?;
    let alarm_max_attempts = int_in(
        "alarm_max_attempts",
        settings.alarm_max_attempts,
        DEFAULT_ALARM_MAX_ATTEMPTS,
        1,
        100,
    )? as u32;
    Ok(ClassConfig {
        name: class,
        inherit_socket: section
            .inherit_socket
            .unwrap_or(matches!(handler, Handler::Builtin(_))),
        handler,
        env: section.env.clone(),
        idle_timeout: duration_in(
            "idle_timeout",
            settings.idle_timeout,
            DEFAULT_IDLE_TIMEOUT,
            Duration::from_millis(50),
            Duration::from_secs(30 * 86_400),
        )?,
        wake_timeout: duration_in(
            "wake_timeout",
            settings.wake_timeout,
            DEFAULT_WAKE_TIMEOUT,
            Duration::from_millis(100),
            Duration::from_secs(600),
        )?,
        call_timeout: duration_in(
            "call_timeout",
            settings.call_timeout,
            DEFAULT_CALL_TIMEOUT,
            Duration::from_millis(10),
            Duration::from_secs(3600),
        )?,
        storage_read_timeout: duration_in(
            "storage_read_timeout",
            settings.storage_read_timeout,
            DEFAULT_STORAGE_TIMEOUT,
            Duration::from_millis(10),
            Duration::from_secs(600),
        )?,
        storage_write_timeout: duration_in(
            "storage_write_timeout",
            settings.storage_write_timeout,
            DEFAULT_STORAGE_TIMEOUT,
            Duration::from_millis(10),
            Duration::from_secs(600),
        )?,
        hibernate_retry,
        hibernate_retry_max,
        memory_mb: int_in(
            "memory_mb",
            settings.memory_mb,
            DEFAULT_MEMORY_MB,
            8,
            1024 * 1024,
        )? as u64,
        vcpus: match settings.vcpus.unwrap_or(DEFAULT_VCPUS) {
            v if v > 0.0 && v <= 1024.0 => v,
            v => bail!("vcpus = {v} is out of range; it must be above 0 and at most 1024"),
        },
        max_processes: int_in(
            "max_processes",
            settings.max_processes,
            DEFAULT_MAX_PROCESSES,
            1,
            100_000,
        )? as u64,
        network: settings.network.unwrap_or(false),
        keep_filesystem: section.keep_filesystem.unwrap_or(true),
        container_network: match &section.container_network {
            Some(mode) if mode.is_empty() || mode.contains(char::is_whitespace) => {
                bail!("container_network = {mode:?} is not a network mode; use e.g. \"bridge\"")
            }
            Some(mode) if mode == "host" => bail!(
                "container_network = \"host\" would have every object listen on the host's \
                 port 9333; use \"bridge\" or a named network"
            ),
            Some(mode) if mode == "none" => bail!(
                "container_network = \"none\" leaves the handler unreachable; use \"bridge\" \
                 or a named network"
            ),
            Some(mode) => mode.clone(),
            None => "bridge".into(),
        },
        warm_for: duration_in(
            "warm_for",
            settings.warm_for,
            DEFAULT_WARM_FOR,
            Duration::ZERO,
            Duration::from_secs(3600),
        )?,
        alarm_retry,
        alarm_retry_max,
        alarm_max_attempts,
    })
}

/// An image class: the image, and the command that replaces the image's own if given.
fn image_handler(section: &ClassSection) -> anyhow::Result<Handler> {
    let image = section.image.clone().unwrap_or_default();
    if section.builtin.is_some() {
        bail!("set either image or builtin, not both");
    }
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("image = {image:?} is not an image reference");
    }
    // Paths in the command are inside the image, so they are not resolved against the
    // configuration's folder.
    let command = match &section.command {
        Some(argv) if argv.first().is_none_or(String::is_empty) => bail!(
            "command is empty; give the program to run inside the image, or leave command out \
             to run the image's own"
        ),
        Some(argv) if argv.iter().any(|arg| arg.contains('\0')) => {
            bail!("command arguments must not contain NUL characters")
        }
        other => other.clone(),
    };
    Ok(Handler::Image { image, command })
}

/// Resolves arguments starting with `./` or `../` against the configuration's folder, so a
/// class runs the same program whatever the working directory.
fn command_line(command: &[String], base: &Path) -> anyhow::Result<Vec<String>> {
    let Some(program) = command.first() else {
        bail!("command = [] is empty; give the program and its arguments");
    };
    if program.is_empty() {
        bail!("command has an empty program name");
    }
    Ok(command
        .iter()
        .map(|arg| {
            if arg.starts_with("./") || arg.starts_with("../") {
                base.join(arg).to_string_lossy().into_owned()
            } else {
                arg.clone()
            }
        })
        .collect())
}

fn env_name(key: &str) -> anyhow::Result<()> {
    let valid = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        bail!("env key {key:?} is not a valid environment variable name");
    }
    if key.starts_with("TORPOR_") {
        bail!("env key {key:?} is reserved: the runtime sets TORPOR_* variables itself");
    }
    Ok(())
}

fn duration_in(
    key: &str,
    value: Option<Duration>,
    default: Duration,
    min: Duration,
    max: Duration,
) -> anyhow::Result<Duration> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        bail!(
            "{key} = {} is out of range; it must be between {} and {}",
            humantime::format_duration(value),
            humantime::format_duration(min),
            humantime::format_duration(max)
        );
    }
    Ok(value)
}

fn int_in(
    key: &str,
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> anyhow::Result<usize> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        bail!("{key} = {value} is out of range; it must be between {min} and {max}");
    }
    Ok(value as usize)
}
