//! The real binary's console in a real terminal (tmux): open it on a data directory, call
//! `increment` through the dialog, hibernate, quit, and check the terminal is restored.
//! Skipped, with a message, where tmux is not installed.

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

    fn start(command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("torpor-test-{}", std::process::id()),
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

#[tokio::test]
async fn console_calls_hibernates_and_restores_terminal() {
    if !Tmux::available() {
        eprintln!("skipping: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let server = Server::start(&data, None).await;
        server
            .call("counter", "alice", "increment", "{\"by\": 41}")
            .await;
        let mut server = server;
        server.stop(libc::SIGTERM);
    }

    let command = format!(
        "TORPOR_DATA_DIR={} {}; echo EXITED:$?; echo MODES:$(stty -a | grep -ow -e '-\\?icanon' -e '-\\?echo'); sleep 60",
        data.display(),
        common::bin().display()
    );
    let tmux = Tmux::start(&command);
    let screen = tmux.wait_for("alice");
    assert!(screen.contains("counter"), "{screen}");
    assert!(screen.contains("○ hibernated"), "{screen}");
    assert_eq!(
        tmux.query("#{alternate_on}"),
        "1",
        "the console draws on the alternate screen"
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
    let screen = tmux.wait_for("EXITED:0");
    assert_eq!(
        tmux.query("#{alternate_on}"),
        "0",
        "alternate screen left:\n{screen}"
    );
    assert_eq!(tmux.query("#{cursor_flag}"), "1", "cursor shown again");
    let screen = tmux.wait_for("MODES:");
    assert!(
        screen.contains("MODES:icanon echo"),
        "raw mode left on:\n{screen}"
    );
}
