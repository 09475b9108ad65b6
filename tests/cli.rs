//! The command line as an operator runs it: the real binary's client subcommands against a
//! real `torpor --serve`. The tests cover tokens from flags, environment variables and data
//! directories, a server with a small page size, and a data directory already in use.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Server, TOKEN, test_config};
use serde_json::Value;

const READ_TOKEN: &str = "read-only-token-0123456789";

/// The torpor variables a client or server reads, removed from every command so the tests do
/// not depend on the environment they run in.
const TORPOR_VARS: [&str; 5] = [
    "TORPOR_TOKEN",
    "TORPOR_READ_TOKEN",
    "TORPOR_DATA_DIR",
    "TORPOR_SERVER",
    "TORPOR_CONFIG",
];

/// Builds a `torpor` command with no torpor variables set and `home` as its home folder, so
/// the default data directory is an empty one under it.
fn torpor(home: &Path) -> Command {
    let mut command = Command::new(common::bin());
    for var in TORPOR_VARS {
        command.env_remove(var);
    }
    command
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("share"))
        .stdin(Stdio::null());
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts `torpor --serve` with `vars` in its environment and no token of its own unless
/// `vars` sets one, and waits until it accepts connections.
async fn serve(data: &Path, home: &Path, vars: &[(&str, &str)]) -> (std::process::Child, u16) {
    let port = common::free_port();
    std::fs::write(data.with_extension("toml"), test_config("")).unwrap();
    let log = std::fs::File::create(data.with_extension("log")).unwrap();
    let mut command = torpor(home);
    command
        .args(["--serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(data.with_extension("toml"))
        .envs(vars.iter().copied())
        .stderr(log);
    let child = command.spawn().unwrap();
    let ready = common::eventually(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    assert!(
        ready,
        "server did not start: {}",
        std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
    );
    (child, port)
}

fn stop(mut child: std::process::Child) {
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
}

#[tokio::test]
async fn read_token_variable_breaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, port) = serve(
        &data,
        dir.path(),
        &[("TORPOR_TOKEN", TOKEN), ("TORPOR_READ_TOKEN", READ_TOKEN)],
    )
    .await;
    let url = format!("http://127.0.0.1:{port}");

    let call = torpor(dir.path())
        .args(["call", "counter", "a", "increment", "--server", &url])
        .env("TORPOR_TOKEN", TOKEN)
        .env("TORPOR_READ_TOKEN", READ_TOKEN)
        .output()
        .unwrap();
    assert!(call.status.success(), "{}", stderr(&call));
    assert_eq!(stdout(&call), "{\"count\":1}");

    // With only the read-only token, a client can read but not call.
    let ls = torpor(dir.path())
        .args(["ls", "--json"])
        .env("TORPOR_SERVER", &url)
        .env("TORPOR_READ_TOKEN", READ_TOKEN)
        .output()
        .unwrap();
    assert!(ls.status.success(), "{}", stderr(&ls));
    let listed: Value = serde_json::from_str(&stdout(&ls)).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let refused = torpor(dir.path())
        .args(["call", "counter", "a", "increment", "--server", &url])
        .args(["--read-token", READ_TOKEN])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("HTTP 403"),
        "{}",
        stderr(&refused)
    );

    stop(server);
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(!log.contains("required arguments"), "{log}");
    assert!(log.contains("serving the torpor API"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(
            !log.contains("no namespaces"),
            "the read-only token turned namespaces off: {log}"
        );
    }
}

#[tokio::test]
async fn client_finds_token_in_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, port) = serve(&data, dir.path(), &[]).await;
    let url = format!("http://127.0.0.1:{port}");
    let data_arg = data.display().to_string();

    let placements: [&[&str]; 2] = [
        &["--data-dir", &data_arg, "call", "counter", "a", "increment"],
        &["call", "counter", "a", "increment", "--data-dir", &data_arg],
    ];
    for (expected, args) in [1, 2].into_iter().zip(placements) {
        let output = torpor(dir.path())
            .args(args)
            .env("TORPOR_SERVER", &url)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), format!("{{\"count\":{expected}}}"));
    }
    // --server, like --data-dir, goes before or after the subcommand.
    let placements: [&[&str]; 2] = [
        &[
            "--server", &url, "alarm", "set", "counter", "a", "--in", "1h",
        ],
        &[
            "alarm", "set", "counter", "a", "--in", "2h", "--server", &url,
        ],
    ];
    for args in placements {
        let output = torpor(dir.path())
            .args(args)
            .env("TORPOR_DATA_DIR", &data)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert!(
            stdout(&output).starts_with("counter/a alarm"),
            "{}",
            stdout(&output)
        );
    }
    let output = torpor(dir.path())
        .args(["show", "counter", "a"])
        .env("TORPOR_SERVER", &url)
        .env("TORPOR_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    // The default data directory has no token file; the error names it and the fix.
    let output = torpor(dir.path())
        .args(["ls"])
        .env("TORPOR_SERVER", &url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    let default_file = dir.path().join("share/torpor/api-token");
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(
        message.contains(&default_file.display().to_string()),
        "{message}"
    );
    assert!(message.contains("--data-dir"), "{message}");

    let output = torpor(dir.path())
        .args(["ls", "--token", "wrong-token-0123456789"])
        .env("TORPOR_SERVER", &url)
        .output()
        .unwrap();
    let message = stderr(&output);
    assert!(message.contains("--token or TORPOR_TOKEN"), "{message}");
    stop(server);
}

#[tokio::test]
async fn busy_data_dir_gets_no_token_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, _) = serve(&data, dir.path(), &[("TORPOR_TOKEN", TOKEN)]).await;

    let output = torpor(dir.path())
        .args([
            "--serve",
            "--listen",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("in use by another torpor process"),
        "{}",
        stderr(&output)
    );
    assert!(!data.join("api-token").exists(), "a full token was written");
    assert!(
        !data.join("api-token-read").exists(),
        "a read-only token was written"
    );
    stop(server);
}

#[tokio::test]
async fn clients_page_past_small_page_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = test_config("[limits]\nmax_page_size = 2\n");
    let server = Server::start(&data, Some(&config)).await;
    for id in ["a", "b", "c", "d", "e"] {
        let (status, body) = server.call("counter", id, "increment", "").await;
        assert_eq!(status, 200, "{body}");
    }

    let output = torpor(dir.path())
        .args(["ls", "--json", "--server", &server.url("")])
        .env("TORPOR_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);

    // The console's remote mode lists through the same client.
    let client = torpor::api::Client::new(&server.url(""), Some(TOKEN)).unwrap();
    let objects = client.list_all(Some("counter"), None).await.unwrap();
    assert_eq!(objects.len(), 5);
    let (_, stats) = server.get("/v1/stats").await;
    assert_eq!(stats["max_page_size"], 2, "{stats}");
}
