//! A small HTTP/1.1 load generator: a number of connections, each sending requests one after
//! another for a fixed time, with every latency recorded. It keeps one connection per target
//! address per worker, so the same loop drives torpor's API or handlers directly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request to send: where, and the path to POST.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: SocketAddr,
    pub path: String,
}

/// What a load run measured.
#[derive(Debug, Default, Clone)]
pub struct Measured {
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`th percentile latency (0 to 100), in microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        percentile(&self.latencies, p)
    }
}

/// The `p`th percentile of `samples` in microseconds; 0 for none.
pub fn percentile(samples: &[Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<Duration> = samples.to_vec();
    sorted.sort();
    let at = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[at].as_secs_f64() * 1e6
}

async fn connect(address: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one POST and reads the whole answer; returns its status.
pub async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    path: &str,
    body: &'static [u8],
) -> anyhow::Result<u16> {
    sender.ready().await?;
    let request = Request::post(path)
        .header("host", "bench")
        .body(Full::new(Bytes::from_static(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

/// Runs `connections` workers for `duration`; worker `w` sends to targets `w`, `w + connections`,
/// … in turn, so every target gets requests.
pub async fn run(
    targets: &[Target],
    connections: usize,
    duration: Duration,
    body: &'static [u8],
) -> Measured {
    let started = Instant::now();
    let deadline = started + duration;
    let workers = (0..connections).map(|worker| {
        let mine: Vec<Target> = targets
            .iter()
            .skip(worker)
            .step_by(connections)
            .cloned()
            .collect();
        let mine = if mine.is_empty() {
            vec![targets[worker % targets.len()].clone()]
        } else {
            mine
        };
        tokio::spawn(async move {
            let mut senders: HashMap<SocketAddr, SendRequest<Full<Bytes>>> = HashMap::new();
            let mut measured = Measured::default();
            let mut next = 0;
            while Instant::now() < deadline {
                let target = &mine[next % mine.len()];
                next += 1;
                let sent = Instant::now();
                let outcome = async {
                    let sender = match senders.entry(target.address) {
                        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                        std::collections::hash_map::Entry::Vacant(entry) => {
                            entry.insert(connect(target.address).await?)
                        }
                    };
                    post(sender, &target.path, body).await
                }
                .await;
                match outcome {
                    Ok(status) if status < 400 => measured.latencies.push(sent.elapsed()),
                    _ => {
                        measured.errors += 1;
                        senders.remove(&target.address);
                    }
                }
            }
            measured
        })
    });
    let mut total = Measured::default();
    for worker in futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        total.latencies.extend(worker.latencies);
        total.errors += worker.errors;
    }
    total.elapsed = started.elapsed();
    total
}

/// Sends `count` requests to one target over one connection, one at a time.
pub async fn sequential(
    target: &Target,
    count: usize,
    body: &'static [u8],
) -> anyhow::Result<Measured> {
    let mut sender = connect(target.address).await?;
    let started = Instant::now();
    let mut measured = Measured::default();
    for _ in 0..count {
        let sent = Instant::now();
        let status = post(&mut sender, &target.path, body).await?;
        if status >= 400 {
            measured.errors += 1;
        } else {
            measured.latencies.push(sent.elapsed());
        }
    }
    measured.elapsed = started.elapsed();
    Ok(measured)
}
