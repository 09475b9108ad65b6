//! The HTTP API: the server `torpor --serve` runs (axum), and the client the command-line
//! subcommands and the console's remote mode use (reqwest). Both speak the JSON types in
//! [`types`].

mod alarms;
pub mod auth;
pub mod client;
mod error;
mod listen;
mod params;
mod routes;
pub mod server;
mod sse;
pub mod types;

pub use client::Client;
pub use server::{AppState, ServeOptions, bind, router, serve};
