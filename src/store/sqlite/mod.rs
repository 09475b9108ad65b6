//! The embedded store: one SQLite file in WAL mode, one writer thread that group-commits,
//! and one reader connection for lookups and listings.
//!
//! `synchronous = FULL` makes every commit fsync the WAL, so a checkpoint acknowledged to a
//! caller survives a power cut, not only a process crash.

mod alarms;
mod rows;
mod schema;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use self::writer::Write;
use super::{
    Activity, AlarmPage, AlarmQuery, ListQuery, Page, Store, StoreError, StoreResult, StoredObject,
    Update, WakeTicket,
};
use crate::model::{Event, ObjectKey, Status};

pub struct SqliteStore {
    path: PathBuf,
    writes: Mutex<Option<mpsc::Sender<Write>>>,
    reader: Arc<Mutex<Connection>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        // SQLite's errors repeat themselves through their source chain; flatten to one line.
        let failed = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!("cannot open the store {}: {e}", path.display())
        };
        let mut writer = open_connection(path).map_err(|e| failed(&e))?;
        let ran = schema::migrate(&mut writer).map_err(|e| failed(&e))?;
        if ran > 0 {
            tracing::info!(path = %path.display(), migrations = ran, "store schema updated");
        }
        let version: i64 = writer.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?;
        if version > schema::latest_version() {
            anyhow::bail!(
                "store {} has schema version {version}, newer than this torpor knows ({}); \
                 upgrade torpor",
                path.display(),
                schema::latest_version()
            );
        }
        let reader = open_connection(path).map_err(|e| failed(&e))?;
        let (sender, receiver) = mpsc::channel();
        let writer_path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(writer, receiver, writer_path))?;
        Ok(Self {
            path: path.to_path_buf(),
            writes: Mutex::new(Some(sender)),
            reader: Arc::new(Mutex::new(reader)),
            writer_thread: Mutex::new(Some(thread)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the highest event sequence number in the journal, so numbering continues after it.
    pub fn last_event_seq(&self) -> StoreResult<u64> {
        let conn = self.reader.lock().map_err(|_| StoreError::Closed)?;
        rows::last_event_seq(&conn)
    }

    /// Stops the writer thread after it has committed everything queued.
    pub fn close(&self) {
        if let Ok(mut writes) = self.writes.lock() {
            writes.take();
        }
        let thread = self.writer_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    async fn send<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Write,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        {
            let writes = self.writes.lock().map_err(|_| StoreError::Closed)?;
            let sender = writes.as_ref().ok_or(StoreError::Closed)?;
            sender.send(make(reply)).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().map_err(|_| StoreError::Closed)?;
            work(&conn)
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &ObjectKey, with_storage: bool) -> StoreResult<Option<StoredObject>> {
        let key = key.clone();
        self.read(move |conn| rows::get(conn, &key, with_storage))
            .await
    }

    async fn begin_wake(&self, key: &ObjectKey) -> StoreResult<WakeTicket> {
        self.send(|reply| Write::BeginWake {
            key: key.clone(),
            reply,
        })
        .await
    }

    async fn update(
        &self,
        key: &ObjectKey,
        generation: Option<u64>,
        update: Update,
    ) -> StoreResult<()> {
        self.send(|reply| Write::Update {
            key: key.clone(),
            generation,
            update: Box::new(update),
            durable: true,
            reply,
        })
        .await
    }

    fn update_nowait(&self, key: &ObjectKey, generation: Option<u64>, update: Update) {
        let (reply, _) = oneshot::channel();
        if let Ok(writes) = self.writes.lock()
            && let Some(sender) = writes.as_ref()
        {
            let _ = sender.send(Write::Update {
                key: key.clone(),
                generation,
                update: Box::new(update),
                durable: false,
                reply,
            });
        }
    }

    async fn delete(&self, key: &ObjectKey) -> StoreResult<bool> {
        self.send(|reply| Write::Delete {
            key: key.clone(),
            reply,
        })
        .await
    }

    async fn set_idle_timeout(
        &self,
        key: &ObjectKey,
        idle_timeout_ms: Option<u64>,
    ) -> StoreResult<bool> {
        self.send(|reply| Write::SetIdleTimeout {
            key: key.clone(),
            idle_timeout_ms,
            reply,
        })
        .await
    }

    async fn record_activity(&self, batch: Vec<(ObjectKey, Activity)>) -> StoreResult<()> {
        self.send(|reply| Write::Activity { batch, reply }).await
    }

    async fn append_events(&self, events: Vec<Event>) -> StoreResult<()> {
        self.send(|reply| Write::Events { events, reply }).await
    }

    async fn recent_events(&self, limit: usize) -> StoreResult<Vec<Event>> {
        self.read(move |conn| rows::recent_events(conn, limit))
            .await
    }

    async fn list(&self, query: &ListQuery) -> StoreResult<Page> {
        let query = query.clone();
        self.read(move |conn| rows::list(conn, &query)).await
    }

    async fn with_status(&self, statuses: &[Status]) -> StoreResult<Vec<StoredObject>> {
        let statuses = statuses.to_vec();
        self.read(move |conn| rows::with_status(conn, &statuses))
            .await
    }

    async fn count_by_status(&self) -> StoreResult<BTreeMap<Status, u64>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT status, COUNT(*) FROM objects GROUP BY status")?;
            let mut counts = BTreeMap::new();
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (status, n) = row?;
                if let Ok(status) = status.parse::<Status>() {
                    counts.insert(status, n as u64);
                }
            }
            Ok(counts)
        })
        .await
    }

    async fn pending_alarms(&self) -> StoreResult<Vec<(ObjectKey, i64)>> {
        self.read(alarms::pending).await
    }

    async fn list_alarms(&self, query: &AlarmQuery) -> StoreResult<AlarmPage> {
        let query = query.clone();
        self.read(move |conn| alarms::list(conn, &query)).await
    }

    async fn flush(&self) -> StoreResult<()> {
        self.send(|reply| Write::Flush { reply }).await
    }
}

#[cfg(test)]
mod tests;

impl SqliteStore {
    /// Inserts `count` hibernated objects of `class` named `{prefix}{n}` with `storage`, in one
    /// transaction. For benchmarks and imports that need a large store quickly; the objects
    /// must not exist yet.
    pub fn seed_hibernated(
        path: &Path,
        class: &str,
        prefix: &str,
        count: usize,
        storage: &[u8],
    ) -> anyhow::Result<()> {
        let mut conn = open_connection(path)?;
        schema::migrate(&mut conn)?;
        let tx = conn.transaction()?;
        {
            let now = crate::model::now_ms();
            let mut object = tx.prepare(
                "INSERT INTO objects (class, id, status, generation, storage_bytes, created_at, updated_at)
                 VALUES (?1, ?2, 'hibernated', 1, ?3, ?4, ?4)",
            )?;
            let mut snapshot =
                tx.prepare("INSERT INTO snapshots (oid, generation, data) VALUES (?1, 1, ?2)")?;
            for n in 0..count {
                object.execute(rusqlite::params![
                    class,
                    format!("{prefix}{n:06}"),
                    storage.len() as i64,
                    now
                ])?;
                snapshot.execute(rusqlite::params![tx.last_insert_rowid(), storage])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
