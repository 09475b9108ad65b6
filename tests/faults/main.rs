//! Failure scenarios replayed against torpor: real handler processes, a real SQLite file and
//! real servers, with crashes made by SIGKILL. Run with `cargo test --test faults`.
//!
//! The same executable is also the misbehaving handler the scenarios configure: started with
//! `FAULTY_HANDLER=1` in its environment, it serves the handler contract instead of running
//! tests.

#[path = "../common/mod.rs"]
mod common;

mod alarms;
mod containers;
mod crash;
mod handler;
mod images;
mod inputs;
mod lifecycle;
mod programs;
mod saves;
mod security;
mod stopping;
mod support;

use libtest_mimic::{Arguments, Trial};

fn main() {
    if std::env::var_os("FAULTY_HANDLER").is_some() {
        handler::serve();
        return;
    }
    let arguments = Arguments::from_args();
    let mut trials = Vec::new();
    trials.extend(lifecycle::trials());
    trials.extend(alarms::trials());
    trials.extend(saves::trials());
    trials.extend(inputs::trials());
    trials.extend(crash::trials());
    trials.extend(security::trials());
    trials.extend(containers::trials());
    trials.extend(stopping::trials());
    trials.extend(programs::trials());
    let conclusion = libtest_mimic::run(&arguments, trials);
    images::clean_up();
    let _ = std::fs::remove_dir_all(support::program_folder());
    conclusion.exit();
}

/// Lists async scenario functions as trials named after the functions.
#[macro_export]
macro_rules! named_trials {
    ($($scenario:ident),* $(,)?) => {
        vec![$($crate::trial(stringify!($scenario), $scenario)),*]
    };
}

/// Wraps an async scenario as a trial that runs on its own tokio runtime.
pub fn trial<F>(name: &'static str, scenario: fn() -> F) -> Trial
where
    F: std::future::Future<Output = ()> + 'static,
{
    Trial::test(name, move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(scenario());
        Ok(())
    })
}
