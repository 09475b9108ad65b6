//! Reading object rows and journal events out of SQLite.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::model::{Event, ObjectKey, Status};
use crate::store::{ListQuery, Page, StoreError, StoreResult, StoredObject};

pub const OBJECT_COLUMNS: &str = "o.oid, o.class, o.id, o.status, o.generation, \
    o.storage_bytes, o.idle_timeout_ms, o.created_at, o.updated_at, o.last_call_at, \
    o.last_wake_at, o.last_hibernate_at, o.last_error, o.calls, o.errors, o.sandbox, \
    o.alarm_at, o.alarm_every_ms, o.alarm_attempt, o.alarm_due_at, o.alarm_error";

/// Returns the error for a stored value that cannot be read back, with `message` saying why.
pub(super) fn corrupt(message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::new(StoreError::Database(message)),
    )
}

/// Maps a row selected with [`OBJECT_COLUMNS`] (storage not included).
pub fn object_from_row(row: &Row<'_>) -> rusqlite::Result<StoredObject> {
    let class: String = row.get(1)?;
    let id: String = row.get(2)?;
    let key = ObjectKey::parse(&class, &id).map_err(|e| corrupt(e.to_string()))?;
    let status: String = row.get(3)?;
    let status: Status = status
        .parse()
        .map_err(|e: crate::model::StatusParseError| corrupt(e.to_string()))?;
    let sandbox: Option<String> = row.get(15)?;
    let sandbox = match sandbox {
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?),
        None => None,
    };
    Ok(StoredObject {
        key,
        oid: row.get(0)?,
        status,
        generation: row.get::<_, i64>(4)? as u64,
        storage: None,
        storage_bytes: row.get::<_, i64>(5)? as u64,
        idle_timeout_ms: row.get::<_, Option<i64>>(6)?.map(|ms| ms as u64),
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        last_call_at: row.get(9)?,
        last_wake_at: row.get(10)?,
        last_hibernate_at: row.get(11)?,
        last_error: row.get(12)?,
        calls: row.get::<_, i64>(13)? as u64,
        errors: row.get::<_, i64>(14)? as u64,
        sandbox,
        alarm: super::alarms::alarm_from_row(row, 16)?,
    })
}

pub fn get(
    conn: &Connection,
    key: &ObjectKey,
    with_storage: bool,
) -> StoreResult<Option<StoredObject>> {
    let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects o WHERE o.class = ?1 AND o.id = ?2");
    let found = conn
        .prepare_cached(&sql)?
        .query_row(
            params![key.class.as_str(), key.id.as_str()],
            object_from_row,
        )
        .optional()?;
    let Some(mut object) = found else {
        return Ok(None);
    };
    if with_storage {
        object.storage = storage(conn, object.oid)?;
    }
    Ok(Some(object))
}

pub fn storage(conn: &Connection, oid: i64) -> StoreResult<Option<Bytes>> {
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM snapshots WHERE oid = ?1")?
        .query_row([oid], |row| row.get(0))
        .optional()?;
    Ok(data.map(Bytes::from))
}

pub fn list(conn: &Connection, query: &ListQuery) -> StoreResult<Page> {
    let (after_class, after_id) = match &query.after {
        Some(key) => (Some(key.class.as_str()), Some(key.id.as_str())),
        None => (None, None),
    };
    let sql = format!(
        "SELECT {OBJECT_COLUMNS} FROM objects o
         WHERE (?1 IS NULL OR o.class = ?1)
           AND (?2 IS NULL OR o.status = ?2)
           AND (?3 IS NULL OR (o.class, o.id) > (?3, ?4))
         ORDER BY o.class, o.id
         LIMIT ?5"
    );
    let limit = query.limit.max(1);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            query.class.as_deref(),
            query.status.map(Status::as_str),
            after_class,
            after_id,
            (limit + 1) as i64
        ],
        object_from_row,
    )?;
    let mut objects = rows.collect::<Result<Vec<_>, _>>()?;
    let next = if objects.len() > limit {
        objects.truncate(limit);
        objects.last().map(|o| o.key.clone())
    } else {
        None
    };
    Ok(Page { objects, next })
}

pub fn with_status(conn: &Connection, statuses: &[Status]) -> StoreResult<Vec<StoredObject>> {
    let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects o WHERE o.status = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = Vec::new();
    for status in statuses {
        let rows = stmt.query_map([status.as_str()], object_from_row)?;
        found.extend(rows.collect::<Result<Vec<_>, _>>()?);
    }
    Ok(found)
}

pub fn recent_events(conn: &Connection, limit: usize) -> StoreResult<Vec<Event>> {
    let mut stmt = conn.prepare_cached("SELECT body FROM events ORDER BY seq DESC LIMIT ?1")?;
    let bodies = stmt
        .query_map([limit as i64], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut events = bodies
        .iter()
        .filter_map(|body| serde_json::from_str::<Event>(body).ok())
        .collect::<Vec<_>>();
    events.reverse();
    Ok(events)
}

pub fn last_event_seq(conn: &Connection) -> StoreResult<u64> {
    let seq: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    Ok(seq as u64)
}
