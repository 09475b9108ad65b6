//! The command line: `torpor` opens the console on an embedded runtime, `--serve` runs the
//! API headless, `--connect` opens the console on a server, and the subcommands are a
//! scriptable client of a server.

mod alarms;
mod client;
mod internal;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::runtime::{Runtime, RuntimeOptions};
use crate::store::DataDirLock;

pub use internal::run as run_internal;
pub use token::{ClientToken, TokenSource};

/// The server client subcommands talk to when neither --server nor TORPOR_SERVER is set.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";

/// A durable-object runtime and its operations console.
///
/// Without a subcommand, torpor opens the console with a runtime embedded. With --serve it
/// runs headless behind an HTTP API; with --connect it opens the console on such a server.
/// The subcommands are a client of a server.
#[derive(Debug, Parser)]
#[command(name = "torpor", version, about, long_about)]
pub struct Args {
    /// Configuration file (TOML); the built-in assets/torpor.toml when absent.
    #[arg(long, env = "TORPOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Folder for the store, sandbox folders, logs and token files [default: the user's data
    /// folder + /torpor]. Clients read the token of a server on this machine from here.
    #[arg(long, env = "TORPOR_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Run headless and serve the HTTP API.
    #[arg(long, conflicts_with = "connect")]
    pub serve: bool,

    /// Address the API listens on, with --serve.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:7070",
        requires = "serve"
    )]
    pub listen: SocketAddr,

    /// Open the console on a running server instead of an embedded runtime.
    #[arg(long, value_name = "URL")]
    pub connect: Option<String>,

    /// The server the client subcommands talk to.
    #[arg(
        long,
        env = "TORPOR_SERVER",
        value_name = "URL",
        default_value = DEFAULT_SERVER,
        global = true
    )]
    pub server: String,

    /// API token: with --serve, the full token to require; for the client subcommands and
    /// --connect, the token to send [default: DATA_DIR/api-token, for a server on this machine].
    #[arg(
        long,
        env = "TORPOR_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,

    /// Read-only API token. With --serve, a second token that may only read (list, show,
    /// logs, events). The client subcommands and --connect send it when no --token is given.
    #[arg(
        long,
        env = "TORPOR_READ_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub read_token: Option<String>,

    /// With --serve on a loopback address: serve the API without authentication.
    #[arg(long, requires = "serve")]
    pub no_auth: bool,

    /// Console only: show everything, but turn off every action that changes an object.
    #[arg(long, conflicts_with = "serve")]
    pub read_only: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Args {
    /// Returns the token a client of the server at `base` sends, and where it came from.
    pub fn client_token(&self, base: &str) -> ClientToken {
        ClientToken::resolve(
            base,
            self.token.as_deref(),
            self.read_token.as_deref(),
            self.data_dir.as_deref(),
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Call a method on an object and print the handler's response.
    Call {
        /// Class name, e.g. counter.
        class: String,
        /// Object id, e.g. alice.
        id: String,
        /// Method name, e.g. increment.
        method: String,
        /// JSON body; empty when absent.
        body: Option<String>,
    },
    /// List objects.
    Ls {
        #[arg(long)]
        class: Option<String>,
        /// hibernated, waking, active, hibernating or failed.
        #[arg(long)]
        status: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one object with its storage, as JSON.
    Show { class: String, id: String },
    /// Hibernate an object now.
    Hibernate {
        class: String,
        id: String,
        /// Abort the call running on it instead of waiting for it.
        #[arg(long)]
        force: bool,
    },
    /// Wake an object now (creating it if new).
    Wake { class: String, id: String },
    /// Delete an object, its storage and its logs.
    Delete { class: String, id: String },
    /// Print the end of an object's sandbox log.
    Logs { class: String, id: String },
    /// Set or clear an object's alarm.
    Alarm {
        #[command(subcommand)]
        action: alarms::AlarmAction,
    },
    /// List pending alarms, soonest first.
    Alarms {
        #[arg(long)]
        class: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure the built-in counter: warm calls, throughput, wakes, hibernation and alarm
    /// lateness, a stampede and a large store, on a temporary data directory.
    Bench {
        /// A short run (well under a minute) for CI.
        #[arg(long)]
        quick: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also measure wakes of this image's counter under the container driver (e.g.
        /// localhost/torpor-demo:latest from assets/images/build.sh).
        #[arg(long, value_name = "IMAGE")]
        image: Option<String>,
        /// The container engine's socket for --image; default $DOCKER_HOST, then
        /// /var/run/docker.sock.
        #[arg(long, value_name = "SOCKET", requires = "image")]
        engine_socket: Option<String>,
    },
    /// Send load to any HTTP endpoint and print throughput and latency as JSON: the load
    /// generator of `torpor bench`, for comparing other runtimes on the same machine.
    Load {
        /// URL to POST to; `{id}` is replaced by the object number (0 to --objects - 1).
        url: String,
        /// Objects the load is spread over.
        #[arg(long, default_value_t = 100)]
        objects: usize,
        /// Connections sending at once.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Instead of load: one connection, this many calls to object 0, one at a time.
        #[arg(long)]
        sequential: Option<usize>,
        /// Instead of load: one call to each of this many objects that never existed, with
        /// ids starting at --first-id.
        #[arg(long)]
        first_calls: Option<usize>,
        #[arg(long, default_value_t = 0)]
        first_id: usize,
    },
}

/// Runs what the arguments ask for and returns the process's exit code.
pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = std::env::var("TORPOR_WORKER_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build()?;
    let command = args.command.take();
    runtime.block_on(async move {
        match command {
            Some(Command::Load {
                url,
                objects,
                connections,
                seconds,
                sequential,
                first_calls,
                first_id,
            }) => {
                crate::logging::to_stderr("warn");
                let options = crate::bench::LoadOptions {
                    url,
                    objects,
                    connections,
                    seconds,
                    sequential,
                    first_calls,
                    first_id,
                };
                crate::bench::run_load(options).await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(Command::Bench {
                quick,
                json,
                image,
                engine_socket,
            }) => {
                crate::logging::to_stderr("warn");
                let container = image.map(|image| crate::bench::ContainerBench {
                    image,
                    socket: engine_socket,
                });
                crate::bench::run(quick, json, container).await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(command) => {
                crate::logging::to_stderr("warn");
                client::run(command, &args).await
            }
            None if args.serve => {
                crate::logging::to_stderr("info");
                // Refuse a data directory in use, a missing token and a busy port before the
                // runtime starts anything. The lock comes first, so a refused server writes
                // no token file into another runtime's data directory.
                let data_dir = data_dir(&args)?;
                std::fs::create_dir_all(&data_dir).with_context(|| {
                    format!("cannot create data directory {}", data_dir.display())
                })?;
                let lock = DataDirLock::acquire(&data_dir)?;
                let request = crate::api::auth::AuthRequest {
                    token: args.token.clone(),
                    read_token: args.read_token.clone(),
                    no_auth: args.no_auth,
                };
                let auth = crate::api::auth::resolve(request, args.listen, &data_dir)?;
                let listener = crate::api::bind(args.listen).await?;
                let runtime = start_runtime(&args, lock).await?;
                crate::api::serve(runtime, listener, crate::api::ServeOptions { auth }).await?;
                Ok(ExitCode::SUCCESS)
            }
            None => {
                // Checked before a runtime starts, so a console without a terminal stops
                // before it takes the data directory.
                crate::console::require_terminal()?;
                let data_dir = data_dir(&args)?;
                crate::logging::to_file(&data_dir)?;
                let source = match &args.connect {
                    Some(url) => {
                        crate::console::Source::Remote(args.client_token(url).client(url)?)
                    }
                    None => {
                        let lock = DataDirLock::acquire(&data_dir)?;
                        crate::console::Source::Embedded(start_runtime(&args, lock).await?)
                    }
                };
                crate::console::run(source, args.read_only).await?;
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn data_dir(args: &Args) -> anyhow::Result<PathBuf> {
    match &args.data_dir {
        Some(dir) => Ok(dir.clone()),
        None => dirs::data_dir()
            .map(|dir| dir.join("torpor"))
            .context("cannot find the user's data folder; pass --data-dir"),
    }
}

async fn start_runtime(args: &Args, lock: DataDirLock) -> anyhow::Result<Runtime> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::builtin(),
    };
    let host_program =
        std::env::current_exe().context("cannot find the torpor binary to run built-in classes")?;
    let options = RuntimeOptions {
        config,
        data_dir: data_dir(args)?,
        host_program,
    };
    Runtime::start_locked(options, lock).await
}
