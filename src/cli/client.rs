//! The client subcommands: each makes one request to a server and prints the answer, exiting
//! non-zero when the request or the handler failed.

use std::io::Write;
use std::process::ExitCode;

use bytes::Bytes;

use super::{Args, Command};
use crate::model::{ObjectKey, ObjectRecord};

impl Args {
    /// Builds a client of `--server` with the token these arguments select.
    pub(super) fn client(&self) -> anyhow::Result<crate::api::Client> {
        self.client_token(&self.server).client(&self.server)
    }
}

pub async fn run(command: Command, args: &Args) -> anyhow::Result<ExitCode> {
    match command {
        Command::Call {
            class,
            id,
            method,
            body,
        } => {
            let client = args.client()?;
            let key = ObjectKey::parse(&class, &id)?;
            let body = match body {
                Some(text) => {
                    serde_json::from_str::<serde_json::Value>(&text)
                        .map_err(|e| anyhow::anyhow!("body {text:?} is not valid JSON: {e}"))?;
                    Bytes::from(text)
                }
                None => Bytes::new(),
            };
            let outcome = client.call(&key, &method, body).await?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&outcome.body)?;
            if !outcome.body.ends_with(b"\n") {
                writeln!(stdout)?;
            }
            if outcome.status >= 400 {
                eprintln!("torpor: {key} {method} answered HTTP {}", outcome.status);
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ls {
            class,
            status,
            json,
        } => {
            let client = args.client()?;
            let objects = client.list_all(class.as_deref(), status.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&objects)?);
            } else {
                print_table(&objects);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { class, id } => {
            let record = args.client()?.show(&ObjectKey::parse(&class, &id)?).await?;
            println!("{}", serde_json::to_string_pretty(&record)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Hibernate { class, id, force } => {
            let record = args
                .client()?
                .hibernate(&ObjectKey::parse(&class, &id)?, force)
                .await?;
            println!("{}/{} {}", record.class, record.id, record.status);
            Ok(ExitCode::SUCCESS)
        }
        Command::Wake { class, id } => {
            let record = args.client()?.wake(&ObjectKey::parse(&class, &id)?).await?;
            println!("{}/{} {}", record.class, record.id, record.status);
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete { class, id } => {
            let key = ObjectKey::parse(&class, &id)?;
            args.client()?.delete(&key).await?;
            println!("{key} deleted");
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs { class, id } => {
            let text = args
                .client()?
                .logs(&ObjectKey::parse(&class, &id)?, 64 * 1024)
                .await?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Alarm { action } => super::alarms::run_action(action, args).await,
        Command::Alarms { class, json } => super::alarms::list(class, json, args).await,
        Command::Bench { .. } | Command::Load { .. } => {
            unreachable!("handled before the async runtime starts")
        }
    }
}

fn print_table(objects: &[ObjectRecord]) {
    let now = chrono::Utc::now();
    println!(
        "{:<16} {:<24} {:<12} {:>5} {:>7}  HIBERNATES IN",
        "CLASS", "ID", "STATUS", "GEN", "CALLS"
    );
    for object in objects {
        let countdown = object
            .hibernate_at
            .map(|at| {
                format!(
                    "{:.1}s",
                    (at - now).num_milliseconds().max(0) as f64 / 1000.0
                )
            })
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<16} {:<24} {:<12} {:>5} {:>7}  {}",
            object.class, object.id, object.status, object.generation, object.calls, countdown
        );
    }
}
