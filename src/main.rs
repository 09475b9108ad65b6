use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let command_line: Vec<_> = std::env::args_os().collect();
    let result = match torpor::cli::run_internal(&command_line) {
        Some(result) => result.map(|()| ExitCode::SUCCESS),
        None => torpor::cli::run(torpor::cli::Args::parse_from(command_line)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("torpor: {err:#}");
            ExitCode::FAILURE
        }
    }
}
