//! Schema migrations, applied in order at open and recorded in `schema_migrations`.
//!
//! A migration is never edited once released; changes go in a new one at the end.

use rusqlite::{Connection, params};

use crate::model::now_ms;

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "objects, snapshots and events",
        r#"
    CREATE TABLE objects (
        oid               INTEGER PRIMARY KEY AUTOINCREMENT,
        class             TEXT NOT NULL,
        id                TEXT NOT NULL,
        status            TEXT NOT NULL,
        generation        INTEGER NOT NULL DEFAULT 0,
        storage_bytes     INTEGER NOT NULL DEFAULT 0,
        idle_timeout_ms   INTEGER,
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL,
        last_call_at      INTEGER,
        last_wake_at      INTEGER,
        last_hibernate_at INTEGER,
        last_error        TEXT,
        calls             INTEGER NOT NULL DEFAULT 0,
        errors            INTEGER NOT NULL DEFAULT 0,
        sandbox           TEXT,
        UNIQUE (class, id)
    );
    CREATE INDEX objects_by_status ON objects (status, class, id);

    -- Storage lives apart from the record so that listings never read it.
    CREATE TABLE snapshots (
        oid        INTEGER PRIMARY KEY REFERENCES objects (oid) ON DELETE CASCADE,
        generation INTEGER NOT NULL,
        data       BLOB NOT NULL
    );

    CREATE TABLE events (
        seq   INTEGER PRIMARY KEY,
        at    INTEGER NOT NULL,
        class TEXT NOT NULL,
        id    TEXT NOT NULL,
        body  TEXT NOT NULL
    );
    "#,
    ),
    (
        "alarms",
        r#"
    -- One pending alarm per object. alarm_due_at is the next delivery attempt: alarm_at, or a
    -- retry time after a failed attempt. NULL alarm_at means no alarm.
    ALTER TABLE objects ADD COLUMN alarm_at INTEGER;
    ALTER TABLE objects ADD COLUMN alarm_every_ms INTEGER;
    ALTER TABLE objects ADD COLUMN alarm_attempt INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE objects ADD COLUMN alarm_due_at INTEGER;
    ALTER TABLE objects ADD COLUMN alarm_error TEXT;
    CREATE INDEX objects_by_alarm ON objects (alarm_due_at, class, id)
        WHERE alarm_due_at IS NOT NULL;
    "#,
    ),
];

/// Brings the schema up to date; returns how many migrations ran.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<usize> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         );",
    )?;
    let applied: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    let mut ran = 0;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= applied {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, now_ms()],
        )?;
        tx.commit()?;
        ran += 1;
    }
    Ok(ran)
}

/// Returns the newest schema version this build supports.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_columns_added_to_existing_store() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL
             );",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations VALUES (1, ?1, 0)",
            [MIGRATIONS[0].0],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO objects (class, id, status, created_at, updated_at)
             VALUES ('counter', 'old', 'hibernated', 0, 0)",
            [],
        )
        .unwrap();

        assert_eq!(migrate(&mut conn).unwrap(), 1);
        let (at, attempt): (Option<i64>, i64) = conn
            .query_row(
                "SELECT alarm_at, alarm_attempt FROM objects WHERE id = 'old'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((at, attempt), (None, 0), "an existing object has no alarm");
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT class, id FROM objects
                 WHERE alarm_due_at IS NOT NULL ORDER BY alarm_due_at, class, id",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("objects_by_alarm"), "{plan}");
        assert_eq!(migrate(&mut conn).unwrap(), 0, "migrations run once");
    }
}
