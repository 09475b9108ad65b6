//! The single writer thread. Every task's writes queue here, and the thread commits all that
//! are waiting in one transaction, so many objects' checkpoints share one fsync (group
//! commit). Each write runs inside its own savepoint, so one failed write does not undo the
//! others.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::oneshot;

use super::rows;
use crate::model::{Event, ObjectKey, now_ms};
use crate::store::{Activity, StoreError, StoreResult, Update, WakeTicket};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// Journal events kept; older ones are pruned as new ones arrive.
const JOURNAL_KEEP: i64 = 10_000;

pub enum Write {
    BeginWake {
        key: ObjectKey,
        reply: oneshot::Sender<StoreResult<WakeTicket>>,
    },
    Update {
        key: ObjectKey,
        generation: Option<u64>,
        // Boxed: it is several times larger than every other write.
        update: Box<Update>,
        /// Whether the caller is notified of the write only once it is on disk.
        durable: bool,
        reply: oneshot::Sender<StoreResult<()>>,
    },
    Delete {
        key: ObjectKey,
        reply: oneshot::Sender<StoreResult<bool>>,
    },
    SetIdleTimeout {
        key: ObjectKey,
        idle_timeout_ms: Option<u64>,
        reply: oneshot::Sender<StoreResult<bool>>,
    },
    Activity {
        batch: Vec<(ObjectKey, Activity)>,
        reply: oneshot::Sender<StoreResult<()>>,
    },
    Events {
        events: Vec<Event>,
        reply: oneshot::Sender<StoreResult<()>>,
    },
    Flush {
        reply: oneshot::Sender<StoreResult<()>>,
    },
}

impl Write {
    /// Returns whether the write is acknowledged to someone as saved, so its commit must reach
    /// the disk first. A wake's start, status changes, activity counts and events need not. The
    /// next durable commit syncs the whole write-ahead log, them included, and a crash before
    /// it loses only bookkeeping that nothing was acknowledged on.
    fn durable(&self) -> bool {
        match self {
            Write::BeginWake { .. } | Write::Activity { .. } | Write::Events { .. } => false,
            Write::Update { durable, .. } => *durable,
            Write::Delete { .. } | Write::SetIdleTimeout { .. } | Write::Flush { .. } => true,
        }
    }
}

/// Runs until every sender is dropped.
pub fn run(mut conn: Connection, jobs: mpsc::Receiver<Write>, path: PathBuf) {
    let mut syncing = true;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // `synchronous = FULL` fsyncs the log at each commit. NORMAL leaves that to the next
        // FULL commit, which covers everything written before it.
        let durable = batch.iter().any(Write::durable);
        if durable != syncing {
            let mode = if durable { "FULL" } else { "NORMAL" };
            match conn.pragma_update(None, "synchronous", mode) {
                Ok(()) => syncing = durable,
                Err(err) => {
                    tracing::warn!(error = %err, mode, "cannot change SQLite's synchronous mode")
                }
            }
        }
        commit_batch(&mut conn, batch, &path);
    }
}

/// A write's result, held until the transaction commits.
enum Done {
    Wake(
        oneshot::Sender<StoreResult<WakeTicket>>,
        StoreResult<WakeTicket>,
    ),
    Unit(oneshot::Sender<StoreResult<()>>, StoreResult<()>),
    Bool(oneshot::Sender<StoreResult<bool>>, StoreResult<bool>),
}

impl Done {
    fn send(self) {
        match self {
            Done::Wake(reply, result) => drop(reply.send(result)),
            Done::Unit(reply, result) => drop(reply.send(result)),
            Done::Bool(reply, result) => drop(reply.send(result)),
        }
    }

    /// Replaces a successful result with `err`, for a transaction that failed to commit.
    fn fail(self, err: &StoreError) -> Self {
        let err = || match err {
            StoreError::Database(message) => StoreError::Database(message.clone()),
            other => StoreError::Database(other.to_string()),
        };
        match self {
            Done::Wake(reply, _) => Done::Wake(reply, Err(err())),
            Done::Unit(reply, _) => Done::Unit(reply, Err(err())),
            Done::Bool(reply, _) => Done::Bool(reply, Err(err())),
        }
    }

    fn error(&self) -> Option<StoreError> {
        let message = match self {
            Done::Wake(_, Err(e)) => e.to_string(),
            Done::Unit(_, Err(e)) => e.to_string(),
            Done::Bool(_, Err(e)) => e.to_string(),
            _ => return None,
        };
        Some(StoreError::Database(message))
    }
}

/// Describes a SQLite failure with the file it happened in.
fn database_error(err: rusqlite::Error, path: &Path) -> StoreError {
    StoreError::Database(format!("{err} (store {})", path.display()))
}

fn commit_batch(conn: &mut Connection, batch: Vec<Write>, path: &Path) {
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(err) => {
            let err = database_error(err, path);
            batch
                .into_iter()
                .map(apply_none)
                .for_each(|d| d.fail(&err).send());
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    for job in jobs.by_ref() {
        let result = apply_in_savepoint(&mut tx, job);
        // Some failures (a full disk, for one) make SQLite roll back the whole transaction,
        // undoing the writes before this one too: they must not be reported as saved.
        if tx.is_autocommit() {
            let err = result.error().unwrap_or_else(|| {
                StoreError::Database(format!(
                    "the transaction was rolled back (store {})",
                    path.display()
                ))
            });
            tracing::error!(error = %err, "store transaction rolled back");
            done.push(result);
            done.into_iter()
                .chain(jobs.map(apply_none))
                .for_each(|d| d.fail(&err).send());
            return;
        }
        done.push(result);
    }
    match tx.commit() {
        Ok(()) => done.into_iter().for_each(Done::send),
        Err(err) => {
            let err = database_error(err, path);
            tracing::error!(error = %err, "store commit failed");
            done.into_iter().for_each(|d| d.fail(&err).send());
        }
    }
}

/// Builds the result of a write that never ran, with a placeholder that `Done::fail` replaces.
fn apply_none(job: Write) -> Done {
    match job {
        Write::BeginWake { reply, .. } => Done::Wake(reply, Err(StoreError::Closed)),
        Write::Update { reply, .. }
        | Write::Activity { reply, .. }
        | Write::Events { reply, .. }
        | Write::Flush { reply } => Done::Unit(reply, Ok(())),
        Write::Delete { reply, .. } | Write::SetIdleTimeout { reply, .. } => {
            Done::Bool(reply, Ok(false))
        }
    }
}

fn apply_in_savepoint(tx: &mut Transaction<'_>, job: Write) -> Done {
    let mut sp = match tx.savepoint() {
        Ok(sp) => sp,
        Err(err) => return apply_none(job).fail(&StoreError::from(err)),
    };
    let done = match job {
        Write::BeginWake { key, reply } => Done::Wake(reply, begin_wake(&sp, &key)),
        Write::Update {
            key,
            generation,
            update,
            reply,
            ..
        } => Done::Unit(reply, apply_update(&sp, &key, generation, &update)),
        Write::Delete { key, reply } => Done::Bool(reply, delete(&sp, &key)),
        Write::SetIdleTimeout {
            key,
            idle_timeout_ms,
            reply,
        } => Done::Bool(reply, set_idle_timeout(&sp, &key, idle_timeout_ms)),
        Write::Activity { batch, reply } => Done::Unit(reply, record_activity(&sp, &batch)),
        Write::Events { events, reply } => Done::Unit(reply, append_events(&sp, &events)),
        Write::Flush { reply } => Done::Unit(reply, Ok(())),
    };
    let failed = match &done {
        Done::Wake(_, r) => r.is_err(),
        Done::Unit(_, r) => r.is_err(),
        Done::Bool(_, r) => r.is_err(),
    };
    if failed {
        // The write's own error is the one to report; if SQLite already ended the transaction,
        // the rollback fails too, and the caller sees that through `is_autocommit`.
        let _ = sp.rollback().and_then(|()| sp.commit());
        return done;
    }
    if let Err(err) = sp.commit() {
        return done.fail(&StoreError::from(err));
    }
    done
}

fn begin_wake(conn: &Connection, key: &ObjectKey) -> StoreResult<WakeTicket> {
    let now = now_ms();
    let created = conn
        .prepare_cached(
            "INSERT INTO objects (class, id, status, generation, created_at, updated_at)
             VALUES (?1, ?2, 'waking', 0, ?3, ?3)
             ON CONFLICT (class, id) DO NOTHING",
        )?
        .execute(params![key.class.as_str(), key.id.as_str(), now])?
        > 0;
    let (oid, generation): (i64, i64) = conn
        .prepare_cached(
            "UPDATE objects SET generation = generation + 1, status = 'waking', updated_at = ?3
             WHERE class = ?1 AND id = ?2
             RETURNING oid, generation",
        )?
        .query_row(params![key.class.as_str(), key.id.as_str(), now], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let storage = rows::storage(conn, oid)?;
    Ok(WakeTicket {
        oid,
        generation: generation as u64,
        storage,
        created,
    })
}

fn current_generation(conn: &Connection, key: &ObjectKey) -> StoreResult<(i64, u64)> {
    conn.prepare_cached("SELECT oid, generation FROM objects WHERE class = ?1 AND id = ?2")?
        .query_row(params![key.class.as_str(), key.id.as_str()], |row| {
            Ok((row.get(0)?, row.get::<_, i64>(1)? as u64))
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(key.clone()))
}

fn apply_update(
    conn: &Connection,
    key: &ObjectKey,
    generation: Option<u64>,
    update: &Update,
) -> StoreResult<()> {
    let (oid, current) = current_generation(conn, key)?;
    if let Some(attempted) = generation
        && attempted != current
    {
        return Err(StoreError::StaleGeneration {
            key: key.clone(),
            attempted,
            current,
        });
    }
    let now = update.at.unwrap_or_else(now_ms);
    if let Some(storage) = &update.storage {
        write_snapshot(conn, oid, current, storage)?;
    }
    let sandbox = match &update.sandbox {
        Some(Some(sandbox)) => Some(Some(
            serde_json::to_string(sandbox).map_err(|e| StoreError::Database(e.to_string()))?,
        )),
        Some(None) => Some(None),
        None => None,
    };
    conn.prepare_cached(
        "UPDATE objects SET
             status = COALESCE(?2, status),
             storage_bytes = COALESCE(?3, storage_bytes),
             last_error = CASE WHEN ?4 THEN ?5 ELSE last_error END,
             sandbox = CASE WHEN ?6 THEN ?7 ELSE sandbox END,
             last_wake_at = CASE WHEN ?8 THEN ?10 ELSE last_wake_at END,
             last_hibernate_at = CASE WHEN ?9 THEN ?10 ELSE last_hibernate_at END,
             updated_at = ?10
         WHERE oid = ?1",
    )?
    .execute(params![
        oid,
        update.status.map(|s| s.as_str()),
        update.storage.as_ref().map(|s| s.len() as i64),
        update.last_error.is_some(),
        update.last_error.clone().flatten(),
        sandbox.is_some(),
        sandbox.flatten(),
        update.stamp_wake,
        update.stamp_hibernate,
        now,
    ])?;
    if let Some(activity) = &update.activity {
        record_activity(conn, &[(key.clone(), activity.clone())])?;
    }
    if let Some(alarm) = &update.alarm {
        super::alarms::write_alarm(conn, oid, alarm.as_ref())?;
    }
    Ok(())
}

fn write_snapshot(
    conn: &Connection,
    oid: i64,
    generation: u64,
    storage: &Bytes,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO snapshots (oid, generation, data) VALUES (?1, ?2, ?3)
         ON CONFLICT (oid) DO UPDATE SET generation = excluded.generation, data = excluded.data",
    )?
    .execute(params![oid, generation as i64, storage.as_ref()])?;
    Ok(())
}

fn delete(conn: &Connection, key: &ObjectKey) -> StoreResult<bool> {
    let oid: Option<i64> = conn
        .prepare_cached("SELECT oid FROM objects WHERE class = ?1 AND id = ?2")?
        .query_row(params![key.class.as_str(), key.id.as_str()], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(oid) = oid else { return Ok(false) };
    conn.prepare_cached("DELETE FROM snapshots WHERE oid = ?1")?
        .execute([oid])?;
    conn.prepare_cached("DELETE FROM objects WHERE oid = ?1")?
        .execute([oid])?;
    Ok(true)
}

fn set_idle_timeout(conn: &Connection, key: &ObjectKey, ms: Option<u64>) -> StoreResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE objects SET idle_timeout_ms = ?3, updated_at = ?4 WHERE class = ?1 AND id = ?2",
        )?
        .execute(params![
            key.class.as_str(),
            key.id.as_str(),
            ms.map(|v| v as i64),
            now_ms()
        ])?;
    Ok(changed > 0)
}

fn record_activity(conn: &Connection, batch: &[(ObjectKey, Activity)]) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE objects SET calls = calls + ?3, errors = errors + ?4,
             last_call_at = COALESCE(?5, last_call_at)
         WHERE class = ?1 AND id = ?2",
    )?;
    for (key, activity) in batch {
        stmt.execute(params![
            key.class.as_str(),
            key.id.as_str(),
            activity.calls as i64,
            activity.errors as i64,
            activity.last_call_at
        ])?;
    }
    Ok(())
}

fn append_events(conn: &Connection, events: &[Event]) -> StoreResult<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO events (seq, at, class, id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut newest = 0;
    for event in events {
        // The journal keeps what happened, not the object's full record at the time.
        let mut stored = event.clone();
        stored.object = None;
        let body =
            serde_json::to_string(&stored).map_err(|e| StoreError::Database(e.to_string()))?;
        insert.execute(params![
            event.seq as i64,
            event.at.timestamp_millis(),
            event.class,
            event.id,
            body
        ])?;
        newest = newest.max(event.seq as i64);
    }
    if newest > JOURNAL_KEEP {
        conn.prepare_cached("DELETE FROM events WHERE seq <= ?1")?
            .execute([newest - JOURNAL_KEEP])?;
    }
    Ok(())
}
