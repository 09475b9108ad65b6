use bytes::Bytes;

use super::*;
use crate::store::{StoreError, Update};

fn key(class: &str, id: &str) -> ObjectKey {
    ObjectKey::parse(class, id).unwrap()
}

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("torpor.db")).unwrap()
}

#[tokio::test]
async fn wake_creates_then_bumps_generation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let first = store.begin_wake(&key("counter", "a")).await.unwrap();
    assert!(first.created);
    assert_eq!(first.generation, 1);
    assert!(first.storage.is_none());
    let second = store.begin_wake(&key("counter", "a")).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.generation, 2);
    assert_eq!(second.oid, first.oid);
}

#[tokio::test]
async fn stale_generation_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let k = key("counter", "a");
    let old = store.begin_wake(&k).await.unwrap().generation;
    let update = |data: &'static str| Update {
        storage: Some(Bytes::from(data)),
        ..Update::default()
    };
    store
        .update(&k, Some(old), update("{\"count\":1}"))
        .await
        .unwrap();
    let new = store.begin_wake(&k).await.unwrap().generation;
    let err = store
        .update(&k, Some(old), update("{\"count\":99}"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::StaleGeneration { attempted, current, .. } if attempted == old && current == new)
    );
    let saved = store.get(&k, true).await.unwrap().unwrap();
    assert_eq!(saved.storage.unwrap(), Bytes::from("{\"count\":1}"));
}

#[tokio::test]
async fn separator_lookalikes_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = store.begin_wake(&key("a-b", "c")).await.unwrap();
    let b = store.begin_wake(&key("a", "b-c")).await.unwrap();
    assert_ne!(a.oid, b.oid);
    store
        .update(
            &key("a-b", "c"),
            Some(a.generation),
            Update {
                storage: Some(Bytes::from("1")),
                ..Update::default()
            },
        )
        .await
        .unwrap();
    let other = store.get(&key("a", "b-c"), true).await.unwrap().unwrap();
    assert!(other.storage.is_none());
}

#[tokio::test]
async fn listing_pages_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..25 {
        store
            .begin_wake(&key("kv", &format!("k{i:02}")))
            .await
            .unwrap();
    }
    store.begin_wake(&key("counter", "z")).await.unwrap();
    let mut query = ListQuery {
        class: Some("kv".into()),
        limit: 10,
        ..ListQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.list(&query).await.unwrap();
        seen.extend(page.objects.iter().map(|o| o.key.id.to_string()));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn delete_removes_row_and_storage() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let k = key("kv", "gone");
    let ticket = store.begin_wake(&k).await.unwrap();
    store
        .update(
            &k,
            Some(ticket.generation),
            Update {
                storage: Some(Bytes::from("{}")),
                ..Update::default()
            },
        )
        .await
        .unwrap();
    assert!(store.delete(&k).await.unwrap());
    assert!(store.get(&k, true).await.unwrap().is_none());
    assert!(!store.delete(&k).await.unwrap());
    let again = store.begin_wake(&k).await.unwrap();
    assert!(again.storage.is_none());
    assert_ne!(again.oid, ticket.oid, "row ids are never reused");
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("counter", "a");
    {
        let store = open(&dir);
        let t = store.begin_wake(&k).await.unwrap();
        let update = Update {
            status: Some(Status::Hibernated),
            storage: Some(Bytes::from("{\"count\":5}")),
            ..Update::default()
        };
        store.update(&k, Some(t.generation), update).await.unwrap();
        store.close();
    }
    let store = open(&dir);
    let saved = store.get(&k, true).await.unwrap().unwrap();
    assert_eq!(saved.status, Status::Hibernated);
    assert_eq!(saved.storage_bytes, 11);
    assert_eq!(saved.storage.unwrap(), Bytes::from("{\"count\":5}"));
}

fn alarm(at_ms: i64, every_ms: Option<u64>) -> crate::model::Alarm {
    crate::model::Alarm::scheduled(at_ms, every_ms)
}

async fn set_alarm(store: &SqliteStore, k: &ObjectKey, alarm: Option<crate::model::Alarm>) {
    let update = Update {
        alarm: Some(alarm),
        ..Update::default()
    };
    store.update(k, None, update).await.unwrap();
}

#[tokio::test]
async fn alarm_round_trips_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let k = key("kv", "a");
    store.begin_wake(&k).await.unwrap();
    let mut retried = alarm(1_800_000_000_000, Some(1000));
    retried.attempt = 3;
    retried.next_attempt_at = chrono::DateTime::from_timestamp_millis(1_800_000_004_000).unwrap();
    retried.last_error = Some("HTTP 500".into());
    set_alarm(&store, &k, Some(retried.clone())).await;
    assert_eq!(
        store.get(&k, false).await.unwrap().unwrap().alarm,
        Some(retried)
    );
    assert_eq!(
        store.pending_alarms().await.unwrap(),
        vec![(k.clone(), 1_800_000_004_000)]
    );

    // A checkpoint that leaves the alarm alone keeps it.
    let update = Update {
        storage: Some(Bytes::from("{}")),
        ..Update::default()
    };
    store.update(&k, None, update).await.unwrap();
    assert!(store.get(&k, false).await.unwrap().unwrap().alarm.is_some());

    set_alarm(&store, &k, None).await;
    assert_eq!(store.get(&k, false).await.unwrap().unwrap().alarm, None);
    assert!(store.pending_alarms().await.unwrap().is_empty());
}

#[tokio::test]
async fn alarms_list_soonest_first_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let times = [("b", 300), ("a", 300), ("c", 100), ("d", 200), ("e", 50)];
    for (id, at) in times {
        let k = key("kv", id);
        store.begin_wake(&k).await.unwrap();
        set_alarm(&store, &k, Some(alarm(at, None))).await;
    }
    store.begin_wake(&key("kv", "none")).await.unwrap();
    let other = key("counter", "z");
    store.begin_wake(&other).await.unwrap();
    set_alarm(&store, &other, Some(alarm(10, None))).await;

    let mut query = crate::store::AlarmQuery {
        class: Some("kv".into()),
        limit: 2,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.list_alarms(&query).await.unwrap();
        assert!(page.objects.len() <= 2);
        seen.extend(page.objects.iter().map(|o| o.key.id.to_string()));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["e", "c", "d", "a", "b"], "by time, then by id");
    let all = crate::store::AlarmQuery {
        limit: 10,
        ..Default::default()
    };
    let page = store.list_alarms(&all).await.unwrap();
    assert_eq!(page.objects[0].key, other);
    assert_eq!(page.objects.len(), 6);
}

#[tokio::test]
async fn delete_removes_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let k = key("kv", "gone");
    store.begin_wake(&k).await.unwrap();
    set_alarm(&store, &k, Some(alarm(1000, None))).await;
    assert!(store.delete(&k).await.unwrap());
    assert!(store.pending_alarms().await.unwrap().is_empty());
}
