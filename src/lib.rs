//! torpor: a durable-object runtime and its operations console in one binary.
//!
//! The parts, each in its own folder: [`store`] keeps object records and storage in SQLite,
//! [`sandbox`] starts and stops the processes that run handlers, [`runtime`] owns the object
//! lifecycle and routes calls, [`api`] serves and consumes the HTTP API, [`console`] is the
//! ratatui front end, and [`host`] serves the built-in demo classes.

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod host;
pub mod logging;
pub mod model;
pub mod runtime;
pub mod sandbox;
pub mod store;
