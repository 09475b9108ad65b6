use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = torpor::cli::Args::parse();
    match torpor::cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("torpor: {err:#}");
            ExitCode::FAILURE
        }
    }
}
