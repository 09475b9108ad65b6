//! `torpor alarm set|clear` and `torpor alarms`: an object's alarm from the command line.

use std::process::ExitCode;

use chrono::Utc;
use clap::Subcommand;

use super::Args;
use crate::api::types::AlarmBody;
use crate::model::alarm::{PendingAlarm, parse_duration_ms};
use crate::model::{Alarm, ObjectKey};

#[derive(Debug, Subcommand)]
pub enum AlarmAction {
    /// Set or replace an object's alarm; the object must exist.
    #[command(group(clap::ArgGroup::new("when").required(true).args(["in_", "at"])))]
    Set {
        class: String,
        id: String,
        /// Time from now, e.g. 5s, 10m or 2h, in whole milliseconds.
        #[arg(long = "in", value_name = "DURATION", value_parser = parse_duration_ms)]
        in_: Option<u64>,
        /// An RFC 3339 time, e.g. 2030-01-02T03:04:05Z.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Repeat with this period (at least 100ms), e.g. 1s or 1h.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
        every: Option<u64>,
    },
    /// Clear an object's alarm.
    Clear { class: String, id: String },
}

pub async fn run_action(action: AlarmAction, args: &Args) -> anyhow::Result<ExitCode> {
    match action {
        AlarmAction::Set {
            class,
            id,
            in_,
            at,
            every,
        } => {
            let key = ObjectKey::parse(&class, &id)?;
            let body = AlarmBody {
                in_ms: in_,
                at,
                every_ms: every,
                ..AlarmBody::default()
            };
            let record = args.client()?.set_alarm(&key, &body).await?;
            match &record.alarm {
                Some(alarm) => println!("{key} alarm {}", describe(alarm)),
                None => println!("{key} has no alarm"),
            }
            Ok(ExitCode::SUCCESS)
        }
        AlarmAction::Clear { class, id } => {
            let key = ObjectKey::parse(&class, &id)?;
            args.client()?.clear_alarm(&key).await?;
            println!("{key} alarm cleared");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn list(class: Option<String>, json: bool, args: &Args) -> anyhow::Result<ExitCode> {
    let alarms = args.client()?.list_all_alarms(class.as_deref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&alarms)?);
    } else {
        print_table(&alarms);
    }
    Ok(ExitCode::SUCCESS)
}

/// "at 2030-01-02T03:04:05.000Z (in 4.9s), every 1000 ms".
fn describe(alarm: &Alarm) -> String {
    let every = alarm
        .every_ms
        .map(|ms| format!(", every {ms} ms"))
        .unwrap_or_default();
    format!(
        "at {} (in {}){every}",
        crate::model::format_ms(alarm.at_ms()),
        seconds_until(alarm.next_attempt_ms())
    )
}

fn seconds_until(ms: i64) -> String {
    let left = (ms - Utc::now().timestamp_millis()).max(0);
    format!("{:.1}s", left as f64 / 1000.0)
}

fn print_table(alarms: &[PendingAlarm]) {
    println!(
        "{:<16} {:<24} {:<12} {:>10}  {:<24} {:>9} {:>7}  LAST ERROR",
        "CLASS", "ID", "STATUS", "DUE IN", "SCHEDULED FOR", "EVERY MS", "ATTEMPT"
    );
    for pending in alarms {
        let alarm = &pending.alarm;
        let every = alarm
            .every_ms
            .map(|ms| ms.to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<16} {:<24} {:<12} {:>10}  {:<24} {:>9} {:>7}  {}",
            pending.class,
            pending.id,
            pending.status,
            seconds_until(alarm.next_attempt_ms()),
            crate::model::format_ms(alarm.at_ms()),
            every,
            alarm.attempt,
            alarm.last_error.as_deref().unwrap_or("-")
        );
    }
}
