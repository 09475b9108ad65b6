//! `torpor bench`: starts servers on a temporary data directory and measures the built-in
//! counter: warm calls through torpor against the same calls sent straight to the handler, in
//! both durability modes; wakes; hibernation and alarm lateness; a stampede on hibernated
//! objects; and listing and memory with a large store. Prints a table, or JSON with `--json`.
//!
//! The load generator runs in this process and the server in another, on the same machine,
//! so on a small machine they compete for the same cores: compare ratios within one run.

mod alarms;
mod containers;
pub mod load;
mod scenarios;
mod server;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

pub use self::containers::ContainerBench;
use self::containers::ContainerReport;
use self::load::{Measured, percentile};
use self::server::BenchServer;

/// How much work each measurement does.
struct Sizes {
    sequential_calls: usize,
    objects: usize,
    connections: usize,
    load_time: Duration,
    wakes: usize,
    warm_wakes: usize,
    container_wakes: usize,
    idle_objects: usize,
    alarms: usize,
    stampede: usize,
    stored: usize,
}

const QUICK: Sizes = Sizes {
    sequential_calls: 400,
    objects: 100,
    connections: 64,
    load_time: Duration::from_secs(2),
    wakes: 30,
    warm_wakes: 10,
    container_wakes: 10,
    idle_objects: 40,
    alarms: 60,
    stampede: 200,
    stored: 20_000,
};

const FULL: Sizes = Sizes {
    sequential_calls: 3000,
    objects: 100,
    connections: 64,
    load_time: Duration::from_secs(10),
    wakes: 200,
    warm_wakes: 50,
    container_wakes: 50,
    idle_objects: 300,
    alarms: 300,
    stampede: 1000,
    stored: 100_000,
};

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub count: usize,
}

impl Latency {
    fn of(samples: &[Duration]) -> Latency {
        Latency {
            p50_us: percentile(samples, 50.0),
            p99_us: percentile(samples, 99.0),
            count: samples.len(),
        }
    }

    fn measured(measured: &Measured) -> Latency {
        Latency::of(&measured.latencies)
    }
}

/// One durability mode's warm figures.
#[derive(Debug, Serialize)]
pub struct Warm {
    pub increment_through: Latency,
    pub increment_direct: Latency,
    pub get_through: Latency,
    pub get_direct: Latency,
    pub throughput_through_per_s: f64,
    pub throughput_direct_per_s: f64,
    pub errors: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub quick: bool,
    pub per_call: Warm,
    pub hibernate_only: Warm,
    pub wake: Latency,
    pub warm_wake: Latency,
    pub first_call: Latency,
    pub hibernation_lateness: Latency,
    /// Delivery time minus scheduled time of alarms on hibernated objects.
    pub alarm_lateness: Latency,
    /// The same on active objects: the scheduler's share without the wake.
    pub alarm_lateness_active: Latency,
    pub stampede_objects: usize,
    pub stampede_ms: f64,
    pub stampede_failed: usize,
    pub stored_objects: usize,
    pub list_first_page_us: f64,
    pub list_middle_page_us: f64,
    pub bytes_per_hibernated_object: f64,
    /// With `--image`: the same wakes under the container driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerReport>,
}

/// Runs every measurement and prints the report.
pub async fn run(quick: bool, json: bool, container: Option<ContainerBench>) -> anyhow::Result<()> {
    let sizes = if quick { QUICK } else { FULL };
    let program = std::env::current_exe()?;
    let root = std::env::temp_dir().join(format!("torpor-bench-{}", std::process::id()));
    let report = measure(&program, &root, &sizes, quick, container.as_ref()).await;
    let _ = std::fs::remove_dir_all(&root);
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// What `torpor load` sends.
pub struct LoadOptions {
    pub url: String,
    pub objects: usize,
    pub connections: usize,
    pub seconds: u64,
    pub sequential: Option<usize>,
    pub first_calls: Option<usize>,
    pub first_id: usize,
}

/// Splits `http://HOST:PORT/path` into the address and the path.
fn target(url: &str) -> anyhow::Result<load::Target> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("invalid URL {url:?}: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("URL {url:?} has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let address = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {host:?}"))?;
    let mut path = parsed.path().to_owned();
    if let Some(query) = parsed.query() {
        path = format!("{path}?{query}");
    }
    Ok(load::Target { address, path })
}

/// Runs `torpor load` and prints its figures as JSON.
pub async fn run_load(options: LoadOptions) -> anyhow::Result<()> {
    let url = |n: usize| options.url.replace("{id}", &n.to_string());
    let measured = if let Some(count) = options.sequential {
        load::sequential(&target(&url(0))?, count, b"").await?
    } else if let Some(count) = options.first_calls {
        let mut all = Measured::default();
        for n in options.first_id..options.first_id + count {
            let one = load::sequential(&target(&url(n))?, 1, b"").await?;
            all.latencies.extend(one.latencies);
            all.errors += one.errors;
            all.elapsed += one.elapsed;
        }
        all
    } else {
        let targets = (0..options.objects)
            .map(|n| target(&url(n)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        load::run(
            &targets,
            options.connections,
            Duration::from_secs(options.seconds),
            b"",
        )
        .await
    };
    let report = serde_json::json!({
        "requests": measured.latencies.len(),
        "errors": measured.errors,
        "per_second": measured.per_second(),
        "p50_us": measured.percentile_us(50.0),
        "p99_us": measured.percentile_us(99.0),
    });
    println!("{report}");
    Ok(())
}

pub(crate) fn progress(step: &str) {
    eprintln!("bench: {step}");
}

async fn warm(
    program: &Path,
    root: &Path,
    durability: &str,
    sizes: &Sizes,
) -> anyhow::Result<(Warm, BenchServer)> {
    let server =
        BenchServer::start(program, &root.join(durability), &server::config(durability)).await?;
    progress(&format!("{durability}: warm calls"));
    let (get_through, get_direct) =
        scenarios::warm_latency(&server, "get", sizes.sequential_calls).await?;
    let (increment_through, increment_direct) =
        scenarios::warm_latency(&server, "increment", sizes.sequential_calls).await?;
    progress(&format!(
        "{durability}: throughput over {} objects",
        sizes.objects
    ));
    let (through, direct) =
        scenarios::throughput(&server, sizes.objects, sizes.connections, sizes.load_time).await?;
    let warm = Warm {
        increment_through: Latency::measured(&increment_through),
        increment_direct: Latency::measured(&increment_direct),
        get_through: Latency::measured(&get_through),
        get_direct: Latency::measured(&get_direct),
        throughput_through_per_s: through.per_second(),
        throughput_direct_per_s: direct.per_second(),
        errors: through.errors + direct.errors + increment_through.errors + get_through.errors,
    };
    Ok((warm, server))
}

async fn measure(
    program: &Path,
    root: &Path,
    sizes: &Sizes,
    quick: bool,
    container: Option<&ContainerBench>,
) -> anyhow::Result<Report> {
    let (per_call, server) = warm(program, root, "per-call", sizes).await?;
    let empty_rss = server.resident_bytes();
    progress("wakes");
    let wake = Latency::of(&scenarios::wake_latency(&server, "counter", sizes.wakes).await?);
    progress("wakes from the warm tier");
    let warm_wake = Latency::of(&scenarios::warm_wake_latency(&server, sizes.warm_wakes).await?);
    progress("first calls to new objects");
    let first_call =
        Latency::of(&scenarios::first_call_latency(&server, "counter", sizes.wakes).await?);
    progress("hibernation lateness");
    let lateness =
        Latency::of(&scenarios::hibernation_lateness(&server, sizes.idle_objects).await?);
    progress(&format!(
        "alarm lateness over {} hibernated objects",
        sizes.alarms
    ));
    let alarm_lateness = Latency::of(&alarms::alarm_lateness(&server, sizes.alarms, false).await?);
    progress(&format!(
        "alarm lateness over {} active objects",
        sizes.alarms
    ));
    let alarm_lateness_active =
        Latency::of(&alarms::alarm_lateness(&server, sizes.alarms, true).await?);
    progress(&format!("stampede of {} objects", sizes.stampede));
    let (stampede, stampede_failed) = scenarios::stampede(&server, sizes.stampede).await?;
    server.stop();

    let (hibernate_only, server) = warm(program, root, "hibernate-only-unsafe", sizes).await?;
    server.stop();

    progress(&format!("a store of {} hibernated objects", sizes.stored));
    let scale = root.join("scale");
    std::fs::create_dir_all(&scale)?;
    crate::store::SqliteStore::seed_hibernated(
        &scale.join("torpor.db"),
        "counter",
        "scale-",
        sizes.stored,
        b"{\"count\":1}",
    )?;
    let server = BenchServer::start(program, &scale, &server::config("per-call")).await?;
    let (first_page, middle_page) = scenarios::listing(&server, sizes.stored, 20).await?;
    server.client.list_all(None, None).await?;
    let walked_rss = server.resident_bytes();
    server.stop();

    let container = match container {
        Some(bench) => {
            Some(containers::measure(program, root, bench, sizes.container_wakes).await?)
        }
        None => None,
    };

    Ok(Report {
        quick,
        per_call,
        hibernate_only,
        wake,
        warm_wake,
        first_call,
        hibernation_lateness: lateness,
        alarm_lateness,
        alarm_lateness_active,
        stampede_objects: sizes.stampede,
        stampede_ms: stampede.as_secs_f64() * 1000.0,
        stampede_failed,
        stored_objects: sizes.stored,
        list_first_page_us: first_page,
        list_middle_page_us: middle_page,
        bytes_per_hibernated_object: walked_rss.saturating_sub(empty_rss) as f64
            / sizes.stored as f64,
        container,
    })
}

fn ms(us: f64) -> String {
    format!("{:.3} ms", us / 1000.0)
}

fn print_table(report: &Report) {
    println!(
        "torpor bench{} — built-in counter, process driver",
        if report.quick { " --quick" } else { "" }
    );
    println!();
    println!(
        "{:<44} {:>14} {:>14} {:>8}",
        "measurement", "through torpor", "direct", "ratio"
    );
    for (mode, warm) in [
        ("per-call", &report.per_call),
        ("hibernate-only-unsafe", &report.hibernate_only),
    ] {
        let rows = [
            (
                "increment p50",
                warm.increment_through.p50_us,
                warm.increment_direct.p50_us,
            ),
            (
                "increment p99",
                warm.increment_through.p99_us,
                warm.increment_direct.p99_us,
            ),
            ("get p50", warm.get_through.p50_us, warm.get_direct.p50_us),
            ("get p99", warm.get_through.p99_us, warm.get_direct.p99_us),
        ];
        for (name, through, direct) in rows {
            let label = format!("{mode}: {name}");
            println!(
                "{label:<44} {:>14} {:>14} {:>7.2}×",
                ms(through),
                ms(direct),
                through / direct.max(1e-9)
            );
        }
        let label = format!("{mode}: increments/s, 100 objects, 64 conns");
        println!(
            "{label:<44} {:>14.0} {:>14.0} {:>7.2}×",
            warm.throughput_through_per_s,
            warm.throughput_direct_per_s,
            warm.throughput_through_per_s / warm.throughput_direct_per_s.max(1e-9)
        );
    }
    println!();
    println!("{:<44} {:>14} {:>14}", "measurement", "p50", "p99");
    let row = |label: &str, latency: &Latency| {
        let (p50, p99) = (ms(latency.p50_us), ms(latency.p99_us));
        println!("{label:<44} {p50:>14} {p99:>14}");
    };
    row("wake (hibernated → first response)", &report.wake);
    row(
        "wake from the warm tier (frozen sandbox)",
        &report.warm_wake,
    );
    row("first call to a new object", &report.first_call);
    if let Some(container) = &report.container {
        row(
            "container wake (hibernated → first response)",
            &container.wake,
        );
        row(
            "first call to a new container object",
            &container.first_call,
        );
    }
    row("hibernation lateness", &report.hibernation_lateness);
    let hibernated = report.alarm_lateness.count;
    row(
        &format!("alarm lateness, {hibernated} hibernated objects"),
        &report.alarm_lateness,
    );
    let active = report.alarm_lateness_active.count;
    row(
        &format!("alarm lateness, {active} active objects"),
        &report.alarm_lateness_active,
    );
    println!();
    println!(
        "stampede: {} hibernated objects called at once, all answered in {:.0} ms ({} failed)",
        report.stampede_objects, report.stampede_ms, report.stampede_failed
    );
    println!(
        "store of {} hibernated objects: first page of 100 in {}, a middle page in {}; {:.0} bytes of runtime memory per hibernated object",
        report.stored_objects,
        ms(report.list_first_page_us),
        ms(report.list_middle_page_us),
        report.bytes_per_hibernated_object
    );
}
