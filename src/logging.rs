//! Log set-up. The server and the client commands log to stderr; the console logs to
//! `DATA_DIR/logs/torpor.log`, never to the terminal it draws on. `TORPOR_LOG` (or `RUST_LOG`)
//! takes a `tracing` filter such as `info` or `torpor=debug`. Logs are coloured only on a
//! terminal, and never when `NO_COLOR` is set to a non-empty value.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

fn filter(default: &str) -> EnvFilter {
    std::env::var("TORPOR_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default))
}

pub fn to_stderr(default: &str) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(default))
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Logs to a file in the data directory; returns its path.
pub fn to_file(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let folder = data_dir.join("logs");
    std::fs::create_dir_all(&folder)?;
    let path = folder.join("torpor.log");
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter("info"))
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .try_init();
    Ok(path)
}
