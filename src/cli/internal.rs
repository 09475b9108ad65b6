//! The subcommands torpor runs for itself: `sandbox-init` and `sandbox-probe` (run by the
//! process driver) and `object-host`. They are parsed apart from [`super::Args`], whose
//! options also read `TORPOR_*` environment variables, so that no variable of the operator's
//! can change how they parse or make them fail.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "torpor")]
struct InternalArgs {
    #[command(subcommand)]
    command: Internal,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// Serve a built-in class as a handler, outside any sandbox.
    ObjectHost { name: String },
    /// Set up a sandbox and run its handler.
    SandboxInit { spec: String },
    /// Exit 0 if this host lets sandboxes have their own namespaces.
    SandboxProbe,
}

/// Names of the internal subcommands, as the first argument.
const NAMES: [&str; 3] = ["object-host", "sandbox-init", "sandbox-probe"];

/// Runs an internal subcommand if `args` (the whole command line, program name first) names
/// one; returns `None` for every other command line.
pub fn run(args: &[OsString]) -> Option<anyhow::Result<()>> {
    let first = args.get(1)?.to_str()?;
    if !NAMES.contains(&first) {
        return None;
    }
    let parsed = InternalArgs::parse_from(args);
    Some(match parsed.command {
        Internal::ObjectHost { name } => crate::host::serve(&name),
        Internal::SandboxInit { spec } => crate::sandbox::isolation::init::run(&spec),
        Internal::SandboxProbe => crate::sandbox::isolation::probe_in_child(),
    })
}
