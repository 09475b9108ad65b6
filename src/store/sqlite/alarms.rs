//! Alarm columns of the objects table: reading an alarm out of a row, writing one with an
//! update, and the two queries over pending alarms. Start-up reads all of them and the API
//! a page at a time, both through the partial index `objects_by_alarm`.

use chrono::DateTime;
use rusqlite::{Connection, Row, params};

use super::rows::{OBJECT_COLUMNS, corrupt, object_from_row};
use crate::model::{Alarm, ObjectKey};
use crate::store::{AlarmCursor, AlarmPage, AlarmQuery, StoreResult};

/// Reads the alarm from the five alarm columns starting at `first`, in the order of
/// [`OBJECT_COLUMNS`]: at, every_ms, attempt, due_at, error.
pub fn alarm_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Option<Alarm>> {
    let Some(at) = row.get::<_, Option<i64>>(first)? else {
        return Ok(None);
    };
    let time = |ms: i64| {
        DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| corrupt(format!("alarm time {ms} is out of range")))
    };
    let due: Option<i64> = row.get(first + 3)?;
    Ok(Some(Alarm {
        at: time(at)?,
        every_ms: row.get::<_, Option<i64>>(first + 1)?.map(|ms| ms as u64),
        attempt: row.get::<_, i64>(first + 2)?.max(1) as u32,
        next_attempt_at: time(due.unwrap_or(at))?,
        last_error: row.get(first + 4)?,
    }))
}

/// Writes `alarm` (or, with `None`, no alarm) into the row `oid`.
pub fn write_alarm(conn: &Connection, oid: i64, alarm: Option<&Alarm>) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE objects SET alarm_at = ?2, alarm_every_ms = ?3, alarm_attempt = ?4,
             alarm_due_at = ?5, alarm_error = ?6
         WHERE oid = ?1",
    )?
    .execute(params![
        oid,
        alarm.map(Alarm::at_ms),
        alarm.and_then(|a| a.every_ms).map(|ms| ms as i64),
        alarm.map_or(0, |a| a.attempt as i64),
        alarm.map(Alarm::next_attempt_ms),
        alarm.and_then(|a| a.last_error.clone()),
    ])?;
    Ok(())
}

pub fn pending(conn: &Connection) -> StoreResult<Vec<(ObjectKey, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT class, id, alarm_due_at FROM objects
         WHERE alarm_due_at IS NOT NULL ORDER BY alarm_due_at, class, id",
    )?;
    let rows = stmt.query_map([], |row| {
        let class: String = row.get(0)?;
        let id: String = row.get(1)?;
        let key = ObjectKey::parse(&class, &id).map_err(|e| corrupt(e.to_string()))?;
        Ok((key, row.get::<_, i64>(2)?))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn list(conn: &Connection, query: &AlarmQuery) -> StoreResult<AlarmPage> {
    let (after_ms, after_class, after_id) = match &query.after {
        Some(cursor) => (
            Some(cursor.next_attempt_ms),
            Some(cursor.key.class.as_str()),
            Some(cursor.key.id.as_str()),
        ),
        None => (None, None, None),
    };
    let sql = format!(
        "SELECT {OBJECT_COLUMNS} FROM objects o
         WHERE o.alarm_due_at IS NOT NULL
           AND (?1 IS NULL OR o.class = ?1)
           AND (?2 IS NULL OR (o.alarm_due_at, o.class, o.id) > (?2, ?3, ?4))
         ORDER BY o.alarm_due_at, o.class, o.id
         LIMIT ?5"
    );
    let limit = query.limit.max(1);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            query.class.as_deref(),
            after_ms,
            after_class,
            after_id,
            (limit + 1) as i64
        ],
        object_from_row,
    )?;
    let mut objects = rows.collect::<Result<Vec<_>, _>>()?;
    let next = if objects.len() > limit {
        objects.truncate(limit);
        objects.last().and_then(|o| {
            Some(AlarmCursor {
                next_attempt_ms: o.alarm.as_ref()?.next_attempt_ms(),
                key: o.key.clone(),
            })
        })
    } else {
        None
    };
    Ok(AlarmPage { objects, next })
}
