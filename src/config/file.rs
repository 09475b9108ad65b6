//! The configuration file as written, before validation. Unknown keys are rejected so that a
//! misspelt setting is an error rather than silently ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub runtime: RuntimeSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub sandbox: SandboxSection,
    #[serde(default)]
    pub container: ContainerSection,
    #[serde(default)]
    pub defaults: ClassSettings,
    #[serde(default)]
    pub classes: BTreeMap<String, ClassSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    pub durability: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub stop_grace: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub shutdown_grace: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    pub user: Option<String>,
    pub uid_base: Option<u32>,
    pub namespaces: Option<bool>,
    pub landlock: Option<bool>,
    pub cgroups: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSection {
    pub socket: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_request_bytes: Option<u64>,
    pub max_response_bytes: Option<u64>,
    pub max_storage_bytes: Option<u64>,
    pub max_page_size: Option<u64>,
    pub max_queued_calls: Option<u64>,
    pub max_event_subscribers: Option<u64>,
    pub max_active_objects: Option<u64>,
    pub max_connections: Option<u64>,
    pub max_warm_objects: Option<u64>,
    pub max_alarm_deliveries: Option<u64>,
}

/// Settings a class may set, and `[defaults]` may set for every class.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSettings {
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub wake_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub call_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub storage_read_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub storage_write_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub hibernate_retry: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub hibernate_retry_max: Option<Duration>,
    pub memory_mb: Option<u64>,
    pub vcpus: Option<f64>,
    pub max_processes: Option<u64>,
    pub network: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    pub warm_for: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub alarm_retry: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub alarm_retry_max: Option<Duration>,
    pub alarm_max_attempts: Option<u64>,
}

/// One `[classes.NAME]` table. The settings are repeated from [`ClassSettings`] rather than
/// flattened, because serde cannot reject unknown keys in a flattened struct.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSection {
    pub builtin: Option<String>,
    pub command: Option<Vec<String>>,
    pub image: Option<String>,
    pub keep_filesystem: Option<bool>,
    pub container_network: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub inherit_socket: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub wake_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub call_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub storage_read_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub storage_write_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub hibernate_retry: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub hibernate_retry_max: Option<Duration>,
    pub memory_mb: Option<u64>,
    pub vcpus: Option<f64>,
    pub max_processes: Option<u64>,
    pub network: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    pub warm_for: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub alarm_retry: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub alarm_retry_max: Option<Duration>,
    pub alarm_max_attempts: Option<u64>,
}

impl ClassSection {
    /// A class that takes every setting from `[defaults]`, for checking the defaults alone.
    pub fn default_builtin() -> ClassSection {
        ClassSection {
            builtin: Some("counter".into()),
            ..ClassSection::default()
        }
    }

    /// The class's own settings, each falling back to `defaults` where unset.
    pub fn settings_over(&self, defaults: &ClassSettings) -> ClassSettings {
        ClassSettings {
            idle_timeout: self.idle_timeout.or(defaults.idle_timeout),
            wake_timeout: self.wake_timeout.or(defaults.wake_timeout),
            call_timeout: self.call_timeout.or(defaults.call_timeout),
            storage_read_timeout: self.storage_read_timeout.or(defaults.storage_read_timeout),
            storage_write_timeout: self
                .storage_write_timeout
                .or(defaults.storage_write_timeout),
            hibernate_retry: self.hibernate_retry.or(defaults.hibernate_retry),
            hibernate_retry_max: self.hibernate_retry_max.or(defaults.hibernate_retry_max),
            memory_mb: self.memory_mb.or(defaults.memory_mb),
            vcpus: self.vcpus.or(defaults.vcpus),
            max_processes: self.max_processes.or(defaults.max_processes),
            network: self.network.or(defaults.network),
            warm_for: self.warm_for.or(defaults.warm_for),
            alarm_retry: self.alarm_retry.or(defaults.alarm_retry),
            alarm_retry_max: self.alarm_retry_max.or(defaults.alarm_retry_max),
            alarm_max_attempts: self.alarm_max_attempts.or(defaults.alarm_max_attempts),
        }
    }
}
