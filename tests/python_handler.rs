//! The example Python handler (`assets/classes/notes.py`) under the built-in configuration,
//! which shows the handler contract is language-neutral. Skipped, with a message, where no
//! `python3` is installed.

mod common;

use common::Server;
use serde_json::json;

fn python_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn notes_class_keeps_notes_across_hibernation() {
    if !python_available() {
        eprintln!("skipping: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    let (status, body) = server
        .call("notes", "todo", "add", r#"{"text": "water the plants"}"#)
        .await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    assert_eq!(body["count"], 1);
    server
        .call("notes", "todo", "add", r#"{"text": "call Ada"}"#)
        .await;
    let (status, body) = server
        .call("notes", "todo", "add", r#"{"txt": "typo"}"#)
        .await;
    assert_eq!(
        status, 400,
        "the handler's own error passes through: {body}"
    );

    let (_, record) = server.post("/v1/objects/notes/todo/hibernate", "").await;
    assert_eq!(record["status"], "hibernated");
    let (_, body) = server.call("notes", "todo", "list", "").await;
    let texts: Vec<&str> = body["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["water the plants", "call Ada"]);

    assert_eq!(body["title"], "notes");

    let (_, body) = server.call("notes", "todo", "clear", "").await;
    assert_eq!(body, json!({ "removed": 2 }));
}

#[tokio::test]
async fn notes_class_serves_on_inherited_socket() {
    if !python_available() {
        eprintln!("skipping: python3 is not installed");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/classes/notes.py");
    let config = common::test_config(&format!(
        "[classes.notes]\ncommand = [\"python3\", \"{script}\"]\ninherit_socket = true\n\
         env = {{ NOTES_TITLE = \"todo\" }}\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    let (status, body) = server
        .call("notes", "fd", "add", r#"{"text": "from fd 3"}"#)
        .await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    let (_, record) = server.get("/v1/objects/notes/fd").await;
    assert_eq!(record["storage"]["notes"][0]["text"], "from fd 3");
    let (_, body) = server.call("notes", "fd", "list", "").await;
    assert_eq!(body["title"], "todo", "the class's env reaches the handler");
}
