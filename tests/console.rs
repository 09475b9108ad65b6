//! The real binary's console in a real terminal (tmux): embedded on a data directory and
//! attached to a remote server, driven by key presses, with the server's state and the
//! terminal's state checked afterwards. Skipped, with a message, where tmux is not installed.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;

struct Tmux {
    socket: String,
    session: &'static str,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn start(name: &str, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("torpor-test-{}-{name}", std::process::id()),
            session: "console",
        };
        let status = tmux
            .command()
            .args([
                "new-session",
                "-d",
                "-s",
                tmux.session,
                "-x",
                "120",
                "-y",
                "32",
                command,
            ])
            .status()
            .unwrap();
        assert!(status.success());
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    fn send(&self, keys: &[&str]) {
        let mut command = self.command();
        command.args(["send-keys", "-t", self.session]).args(keys);
        assert!(command.status().unwrap().success());
    }

    fn screen(&self) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p", "-t", self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn query(&self, format: &str) -> String {
        let output = self
            .command()
            .args(["display-message", "-p", "-t", self.session, format])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Waits until the screen shows `text`; panics with the screen if it never does.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("screen never showed {text:?}:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

/// Builds the shell command that runs the console, then reports its exit status and terminal modes.
fn console_command(args: &str) -> String {
    format!(
        "{} {args}; echo EXITED:$?; echo MODES:$(stty -a | grep -ow -e '-\\?icanon' -e '-\\?echo'); sleep 60",
        common::bin().display()
    )
}

/// Checks the terminal is back to normal after the console exited.
fn assert_restored(tmux: &Tmux) {
    let screen = tmux.wait_for("EXITED:0");
    assert_eq!(
        tmux.query("#{alternate_on}"),
        "0",
        "alternate screen left:\n{screen}"
    );
    assert_eq!(tmux.query("#{cursor_flag}"), "1", "cursor shown again");
    assert_eq!(
        tmux.query("#{mouse_any_flag}"),
        "0",
        "mouse reporting turned off"
    );
    let screen = tmux.wait_for("MODES:");
    assert!(
        screen.contains("MODES:icanon echo"),
        "raw mode left on:\n{screen}"
    );
}

#[tokio::test]
async fn embedded_console_filters_calls_hibernates() {
    if !Tmux::available() {
        eprintln!("skipping: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let mut server = Server::start(&data, None).await;
        server
            .call("counter", "alice", "increment", "{\"by\": 41}")
            .await;
        server.call("counter", "bob", "increment", "").await;
        server.stop(libc::SIGTERM);
    }

    let tmux = Tmux::start(
        "embedded",
        &console_command(&format!("--data-dir {}", data.display())),
    );
    let screen = tmux.wait_for("alice");
    assert!(screen.contains("bob"), "{screen}");
    assert!(screen.contains("○ hibernated"), "{screen}");
    assert_eq!(
        tmux.query("#{alternate_on}"),
        "1",
        "the console draws on the alternate screen"
    );
    assert_eq!(
        tmux.query("#{mouse_any_flag}"),
        "1",
        "the console reads the mouse"
    );

    // A left click (SGR mouse report, 1-based column;row) on the second table row.
    tmux.send(&["-l", "\x1b[<0;20;7M\x1b[<0;20;7m"]);
    tmux.wait_for("objects 2/2");
    // The wheel moves the selection back up.
    tmux.send(&["-l", "\x1b[<64;20;7M"]);
    tmux.wait_for("objects 1/2");

    tmux.send(&["/"]);
    tmux.send(&["-l", "ali"]);
    tmux.wait_for("showing 1 matching the filter");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("objects 1/1");
    let table: Vec<&str> = screen
        .lines()
        .take_while(|line| !line.contains("events"))
        .collect();
    assert!(
        !table.iter().any(|line| line.contains("bob")),
        "the filter hides bob:\n{screen}"
    );

    tmux.send(&["c"]);
    tmux.wait_for("call counter/alice");
    tmux.send(&["-l", "increment"]);
    tmux.send(&["Tab"]);
    tmux.send(&["-l", "{oops"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("not sent: body is not valid JSON");
    for _ in 0..5 {
        tmux.send(&["BSpace"]);
    }
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("HTTP 200");
    assert!(screen.contains("{\"count\":42}"), "{screen}");
    tmux.send(&["Escape"]);
    tmux.wait_for("● active");

    tmux.send(&["h"]);
    tmux.wait_for("hibernated counter/alice");
    let screen = tmux.wait_for("○ hibernated");
    assert!(
        screen.contains("\"count\": 42"),
        "storage panel shows the saved storage:\n{screen}"
    );

    tmux.send(&["q"]);
    assert_restored(&tmux);
}

#[tokio::test]
async fn remote_console_creates_changes_deletes() {
    if !Tmux::available() {
        eprintln!("skipping: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, None).await;
    server.call("counter", "seed", "increment", "").await;

    let tmux = Tmux::start(
        "remote",
        &console_command(&format!(
            "--token {} --connect {}",
            common::TOKEN,
            server.url("")
        )),
    );
    tmux.wait_for("seed");
    tmux.send(&["n"]);
    tmux.wait_for("new object");
    tmux.send(&["Down"]);
    tmux.send(&["-l", "made-here"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("created kv/made-here");
    let (status, record) = server.get("/v1/objects/kv/made-here").await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["status"], "active");

    tmux.send(&["G"]);
    tmux.send(&["i"]);
    tmux.wait_for("idle timeout of kv/made-here");
    tmux.send(&["C-u"]);
    tmux.send(&["-l", "45s"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("set to 45s");
    let (_, record) = server.get("/v1/objects/kv/made-here").await;
    assert_eq!(record["idle_timeout_ms"], 45000);

    tmux.send(&["d"]);
    tmux.wait_for("Delete kv/made-here?");
    tmux.send(&["y"]);
    tmux.wait_for("deleted kv/made-here");
    let (status, _) = server.get("/v1/objects/kv/made-here").await;
    assert_eq!(status, 404);

    let server = server.restart(libc::SIGKILL).await;
    tmux.wait_for("● connected");
    server
        .call("counter", "after-restart", "increment", "")
        .await;
    tmux.wait_for("after-restart");

    tmux.send(&["q"]);
    assert_restored(&tmux);
}

#[tokio::test]
async fn read_only_console_changes_nothing() {
    if !Tmux::available() {
        eprintln!("skipping: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    server.call("counter", "watched", "increment", "").await;
    let tmux = Tmux::start(
        "read-only",
        &console_command(&format!(
            "--token {} --read-only --connect {}",
            common::TOKEN,
            server.url("")
        )),
    );
    tmux.wait_for("watched");
    tmux.wait_for("read-only");
    tmux.send(&["h"]);
    tmux.wait_for("read-only: actions are turned off");
    tmux.send(&["d"]);
    let (_, record) = server.get("/v1/objects/counter/watched").await;
    assert_eq!(record["status"], "active", "nothing was hibernated");
    tmux.send(&["q"]);
    assert_restored(&tmux);
}

#[tokio::test]
async fn console_sets_and_clears_alarm() {
    if !Tmux::available() {
        eprintln!("skipping: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    server.call("counter", "alarmed", "increment", "").await;
    let tmux = Tmux::start(
        "alarm",
        &console_command(&format!(
            "--token {} --connect {}",
            common::TOKEN,
            server.url("")
        )),
    );
    let screen = tmux.wait_for("alarmed");
    assert!(
        screen.contains("ALARM IN"),
        "the alarm column is shown:\n{screen}"
    );

    tmux.send(&["a"]);
    tmux.wait_for("alarm of counter/alarmed");
    tmux.send(&["C-u"]);
    tmux.send(&["-l", "10m"]);
    tmux.send(&["Tab"]);
    tmux.send(&["-l", "1h"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("alarm of counter/alarmed set");
    let (_, record) = server.get("/v1/objects/counter/alarmed").await;
    assert_eq!(record["alarm"]["every_ms"], 3_600_000, "{record}");
    let screen = tmux.wait_for("9m5");
    let row = screen
        .lines()
        .find(|line| line.contains("alarmed"))
        .unwrap();
    assert!(
        row.contains("9m5"),
        "the row counts down to the alarm: {row}"
    );
    tmux.wait_for("by the operator");

    tmux.send(&["A"]);
    tmux.wait_for("Clear the alarm of counter/alarmed?");
    tmux.send(&["y"]);
    tmux.wait_for("alarm of counter/alarmed cleared");
    let (_, record) = server.get("/v1/objects/counter/alarmed").await;
    assert!(record.get("alarm").is_none(), "{record}");

    // The counter has no alarm method, so a delivery fails and shows in the event pane.
    tmux.send(&["a"]);
    tmux.wait_for("alarm of counter/alarmed");
    tmux.send(&["C-u"]);
    tmux.send(&["-l", "0s"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("failed, attempt 1");
    let (_, record) = server.get("/v1/objects/counter/alarmed").await;
    let error = record["alarm"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("HTTP 404"), "{record}");
    tmux.send(&["A"]);
    tmux.wait_for("Clear the alarm of counter/alarmed?");
    tmux.send(&["y"]);
    tmux.wait_for("alarm of counter/alarmed cleared");

    tmux.send(&["q"]);
    assert_restored(&tmux);
}
