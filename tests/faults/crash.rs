//! Crashes of the whole server: state survives idleness, SIGTERM and SIGKILL, no acknowledged
//! increment is lost over many kill points, and the relaxed durability mode loses exactly the
//! writes its documentation says it loses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use libtest_mimic::Trial;
use serde_json::json;

use crate::common::{Server, test_config};
use crate::named_trials;

pub fn trials() -> Vec<Trial> {
    named_trials![
        state_survives_idleness_and_restarts,
        crash_loses_no_acknowledged_increment,
        relaxed_durability_loses_unsaved_writes,
        call_counts_survive_kill,
    ]
}

async fn count(server: &Server, id: &str) -> i64 {
    let (status, body) = server.call("counter", id, "get", "").await;
    assert_eq!(status, 200, "{body}");
    body["count"].as_i64().unwrap()
}

async fn state_survives_idleness_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config("").replace("idle_timeout = \"30s\"", "idle_timeout = \"300ms\"");
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    for _ in 0..5 {
        server.call("counter", "x", "increment", "").await;
    }
    let mut hibernated = false;
    for _ in 0..100 {
        let (_, record) = server.get("/v1/objects/counter/x").await;
        if record["status"] == "hibernated" {
            hibernated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(hibernated, "the idle object hibernated");
    assert_eq!(
        server.call("counter", "x", "increment", "").await.1,
        json!({ "count": 6 })
    );

    let server = server.restart(libc::SIGTERM).await;
    assert_eq!(
        server.call("counter", "x", "increment", "").await.1,
        json!({ "count": 7 })
    );

    let acknowledged = Arc::new(AtomicU64::new(0));
    let stream = tokio::spawn(increment_forever(
        server.port,
        "x",
        Arc::clone(&acknowledged),
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let server = server.restart(libc::SIGKILL).await;
    stream.abort();
    let acknowledged = acknowledged.load(Ordering::SeqCst) as i64;
    assert!(
        acknowledged > 0,
        "no increment was acknowledged before the kill"
    );
    let after = count(&server, "x").await;
    assert!(
        after >= 7 + acknowledged,
        "{acknowledged} acknowledged after 7, but the count is {after}"
    );
    assert!(
        after <= 7 + acknowledged + 1,
        "at most the one unacknowledged call in flight may also count"
    );
}

/// Increments `id` one call at a time until aborted, counting the 200 responses.
async fn increment_forever(port: u16, id: &'static str, acknowledged: Arc<AtomicU64>) {
    let http = crate::common::authorized_client();
    let url = format!("http://127.0.0.1:{port}/v1/objects/counter/{id}/call/increment");
    loop {
        match http.post(&url).send().await {
            Ok(response) if response.status() == 200 => {
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            _ => return,
        }
    }
}

/// A pseudo-random kill delay in 50..550 ms, printed so a failing run can be repeated.
fn kill_delay(round: u64) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mixed =
        (nanos ^ (round.wrapping_mul(0x9E37_79B9_7F4A_7C15))).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    Duration::from_millis(50 + (mixed >> 33) % 500)
}

async fn crash_loses_no_acknowledged_increment() {
    const OBJECTS: [&str; 4] = ["o0", "o1", "o2", "o3"];
    const WRITERS_PER_OBJECT: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("data"), Some(&test_config(""))).await;
    let mut expected = [0i64; OBJECTS.len()];
    for round in 0..5 {
        let counters: Vec<Arc<AtomicU64>> = OBJECTS
            .iter()
            .map(|_| Arc::new(AtomicU64::new(0)))
            .collect();
        let mut writers = Vec::new();
        for (i, id) in OBJECTS.iter().enumerate() {
            for _ in 0..WRITERS_PER_OBJECT {
                writers.push(tokio::spawn(increment_forever(
                    server.port,
                    id,
                    Arc::clone(&counters[i]),
                )));
            }
        }
        let delay = kill_delay(round);
        eprintln!("crash round {round}: SIGKILL after {delay:?}");
        tokio::time::sleep(delay).await;
        server = server.restart(libc::SIGKILL).await;
        for writer in writers {
            writer.abort();
        }
        for (i, id) in OBJECTS.iter().enumerate() {
            let acknowledged = counters[i].load(Ordering::SeqCst) as i64;
            let after = count(&server, id).await;
            let floor = expected[i] + acknowledged;
            assert!(
                after >= floor,
                "round {round}, {id}: {acknowledged} acknowledged, count {after} < {floor}"
            );
            assert!(
                after <= floor + WRITERS_PER_OBJECT as i64,
                "round {round}, {id}: count {after} exceeds acknowledged plus calls in flight"
            );
            expected[i] = after;
        }
    }
}

async fn relaxed_durability_loses_unsaved_writes() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config("").replace(
        "[runtime]",
        "[runtime]\ndurability = \"hibernate-only-unsafe\"",
    );
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    for _ in 0..3 {
        server.call("counter", "saved", "increment", "").await;
    }
    server.post("/v1/objects/counter/saved/hibernate", "").await;
    for _ in 0..3 {
        server.call("counter", "unsaved", "increment", "").await;
    }
    let server = server.restart(libc::SIGKILL).await;
    assert_eq!(
        count(&server, "saved").await,
        3,
        "storage saved at hibernation survives"
    );
    assert_eq!(
        count(&server, "unsaved").await,
        0,
        "writes since the wake are lost, as the mode says"
    );
}

/// Call counts of calls that changed storage reach the store with the storage, so a crash
/// right after such a call keeps both.
async fn call_counts_survive_kill() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), Some(&test_config(""))).await;
    for _ in 0..3 {
        let (status, body) = server.call("counter", "c", "increment", "").await;
        assert_eq!(status, 200, "{body}");
    }

    let server = server.restart(libc::SIGKILL).await;
    let (status, record) = server.get("/v1/objects/counter/c").await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["storage"], json!({ "count": 3 }));
    assert_eq!(record["calls"], json!(3), "{record}");
    assert!(record["last_call_at"].is_string(), "{record}");
}
