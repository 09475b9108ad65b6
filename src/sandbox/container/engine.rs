//! Talking to the container engine: finding its socket, naming and labelling containers, and
//! turning a class into the container's creation request.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, HostConfigLogConfig, PortBinding,
};

use crate::config::{ContainerSettings, Handler};
use crate::sandbox::{SandboxName, SandboxSpec};

/// The port a handler listens on inside its container.
pub const HANDLER_PORT: &str = "9333/tcp";

/// Labels every container of this driver carries.
pub const OWNER_LABEL: &str = "torpor.owner";
pub const SANDBOX_LABEL: &str = "torpor.sandbox";
/// A hash of the creation request, so a container made from an older class setting is
/// replaced rather than started.
const SPEC_LABEL: &str = "torpor.spec";

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Returns where the engine's API is: the configured socket, else `DOCKER_HOST`, else
/// Docker's default socket. The pair is the address as given and the socket path it names.
pub fn socket_address(settings: &ContainerSettings) -> (String, String) {
    let given = settings
        .socket
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"));
    let path = given.strip_prefix("unix://").unwrap_or(&given).to_owned();
    (given, path)
}

/// Connects to the engine and checks that it responds.
pub async fn connect(settings: &ContainerSettings) -> anyhow::Result<Docker> {
    let (given, path) = socket_address(settings);
    let hint = "start Docker, or Podman's API service \
                (`podman system service --time=0 unix:///PATH`), and point [container] socket \
                or DOCKER_HOST at its socket";
    if given.contains("://") && !given.starts_with("unix://") {
        anyhow::bail!(
            "container engine address {given:?} is not a Unix socket; torpor reaches the engine \
             only as unix:///PATH or a path"
        );
    }
    if !Path::new(&path).exists() {
        anyhow::bail!("the container engine socket {path} does not exist: {hint}");
    }
    let engine = Docker::connect_with_socket(&path, 120, bollard::API_DEFAULT_VERSION)
        .map_err(|e| anyhow::anyhow!("cannot use the container engine socket {path}: {e}"))?;
    match tokio::time::timeout(Duration::from_secs(10), engine.ping()).await {
        Ok(Ok(_)) => Ok(engine),
        Ok(Err(err)) => {
            anyhow::bail!("the container engine at {path} does not respond: {err}; {hint}")
        }
        Err(_) => {
            anyhow::bail!("the container engine at {path} did not respond within 10 s; {hint}")
        }
    }
}

/// Returns the engine's name for a sandbox's container: `torpor-{owner}-{class}.{oid}`. The owner part
/// keeps runtimes on different data directories apart on one engine.
pub fn container_name(owner: &str, sandbox: &SandboxName) -> String {
    format!("torpor-{owner}-{sandbox}")
}

/// Builds the creation request for a sandbox's container.
pub fn create_body(spec: &SandboxSpec, owner: &str) -> ContainerCreateBody {
    let class = &spec.class;
    let (image, command) = match &class.handler {
        Handler::Image { image, command } => (image.clone(), command.clone()),
        // Only image classes reach this driver; the process driver runs the others.
        _ => (String::new(), None),
    };
    let mut env: Vec<String> = class.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend([
        format!("TORPOR_CLASS={}", spec.key.class.as_str()),
        format!("TORPOR_OBJECT_ID={}", spec.key.id.as_str()),
        format!("TORPOR_SANDBOX={}", spec.name),
        "TORPOR_LISTEN=0.0.0.0:9333".to_owned(),
    ]);
    let memory = (class.memory_mb as i64).saturating_mul(1024 * 1024);
    let port_bindings = HashMap::from([(
        HANDLER_PORT.to_owned(),
        Some(vec![PortBinding {
            host_ip: Some("127.0.0.1".into()),
            // Empty: the engine picks a free port once, at creation, and keeps it.
            host_port: Some(String::new()),
        }]),
    )]);
    let host_config = HostConfig {
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some((class.vcpus * 1e9) as i64),
        pids_limit: Some(class.max_processes as i64),
        network_mode: Some(class.container_network.clone()),
        port_bindings: Some(port_bindings),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: None,
        }),
        ..Default::default()
    };
    let mut body = ContainerCreateBody {
        image: Some(image),
        cmd: command,
        env: Some(env),
        exposed_ports: Some(vec![HANDLER_PORT.to_owned()]),
        host_config: Some(host_config),
        labels: Some(HashMap::from([
            (OWNER_LABEL.to_owned(), owner.to_owned()),
            (SANDBOX_LABEL.to_owned(), spec.name.to_string()),
        ])),
        ..Default::default()
    };
    let fingerprint = fingerprint(&body);
    if let Some(labels) = body.labels.as_mut() {
        labels.insert(SPEC_LABEL.to_owned(), fingerprint);
    }
    body
}

/// Returns whether an existing container was made from this creation request.
pub fn made_from(info: &ContainerInspectResponse, body: &ContainerCreateBody) -> bool {
    let label = |labels: Option<&HashMap<String, String>>| {
        labels.and_then(|labels| labels.get(SPEC_LABEL)).cloned()
    };
    let existing = label(info.config.as_ref().and_then(|c| c.labels.as_ref()));
    existing.is_some() && existing == label(body.labels.as_ref())
}

fn fingerprint(body: &ContainerCreateBody) -> String {
    let text = serde_json::to_string(body).unwrap_or_default();
    // FNV-1a: stable across builds, unlike the standard library's hasher.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Returns the address the runtime reaches a started container's handler on: its published loopback
/// port, or else the container's own address on its network.
pub fn handler_address(info: &ContainerInspectResponse) -> Option<SocketAddr> {
    let settings = info.network_settings.as_ref()?;
    let published = settings
        .ports
        .as_ref()
        .and_then(|ports| ports.get(HANDLER_PORT).cloned().flatten())
        .and_then(|bindings| {
            bindings.iter().find_map(|binding| {
                let port: u16 = binding.host_port.as_deref()?.parse().ok()?;
                let ip = match binding.host_ip.as_deref() {
                    None | Some("") | Some("0.0.0.0") => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    Some(ip) => ip.parse().ok()?,
                };
                Some(SocketAddr::new(ip, port))
            })
        });
    published.or_else(|| {
        settings.networks.as_ref()?.values().find_map(|network| {
            let ip: IpAddr = network.ip_address.as_deref()?.parse().ok()?;
            Some(SocketAddr::new(ip, 9333))
        })
    })
}

/// Returns the host pid of a container's first process, when this host can see it. The pid
/// must be in a cgroup named after the container, so a pid from another machine's namespace
/// (an engine in a VM) is never taken for a local process.
pub fn local_pid(info: &ContainerInspectResponse) -> Option<u32> {
    let pid = info.state.as_ref()?.pid.filter(|pid| *pid > 0)? as u32;
    let id = info.id.as_deref()?;
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    cgroup.contains(id).then_some(pid)
}

/// Returns whether an engine error means the container or image does not exist.
pub fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Describes an engine error by the engine's own message, without bollard's wording.
pub fn describe(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (engine HTTP {status_code})"),
        other => other.to_string(),
    }
}
