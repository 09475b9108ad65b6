//! Wakes of an image class under the container driver, beside the process driver's, for
//! `torpor bench --image IMAGE`: the same counter, started as a container through the engine.

use std::path::Path;

use serde::Serialize;

use super::server::{self, BenchServer};
use super::{Latency, progress, scenarios};

/// Settings of the container measurements.
pub struct ContainerBench {
    /// An image serving the counter on port 9333, e.g. from `assets/images/build.sh`.
    pub image: String,
    /// The engine's socket; `None` uses `DOCKER_HOST`, then Docker's default socket.
    pub socket: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ContainerReport {
    pub image: String,
    pub wake: Latency,
    pub first_call: Latency,
}

/// Measures wakes and first calls of containers; removes every container it made.
pub async fn measure(
    program: &Path,
    root: &Path,
    bench: &ContainerBench,
    count: usize,
) -> anyhow::Result<ContainerReport> {
    let socket = match &bench.socket {
        Some(socket) => format!("[container]\nsocket = {socket:?}\n"),
        None => String::new(),
    };
    let config = format!(
        "{socket}{}\n[classes.boxed]\nimage = {:?}\nidle_timeout = \"10m\"\nwarm_for = \"0s\"\n",
        server::config("per-call"),
        bench.image
    );
    let server = BenchServer::start(program, &root.join("containers"), &config).await?;
    progress("container wakes");
    let wake = scenarios::wake_latency(&server, "boxed", count).await;
    progress("first calls to new container objects");
    let first_call = match &wake {
        Ok(_) => scenarios::first_call_latency(&server, "boxed", count).await,
        Err(_) => Ok(Vec::new()),
    };
    // Deleting the objects removes their containers from the engine.
    let objects = server.client.list_all(None, None).await.unwrap_or_default();
    for object in objects {
        let _ = server.client.delete(&object.key()).await;
    }
    server.stop();
    Ok(ContainerReport {
        image: bench.image.clone(),
        wake: Latency::of(&wake?),
        first_call: Latency::of(&first_call?),
    })
}
