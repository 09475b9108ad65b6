//! Handler programs that cannot start: a program that does not exist and an argument the
//! sandbox's user cannot read. Each wake fails with a message that names the cause.

use std::os::unix::fs::PermissionsExt;

use libtest_mimic::Trial;
use torpor::runtime::RuntimeError;

use crate::named_trials;
use crate::support::{call, faulty, handler_program, key, ok, start};

pub fn trials() -> Vec<Trial> {
    named_trials![missing_program_is_not_found, unreadable_argument_names_user]
}

async fn wake_error(classes: &str, class: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), classes).await;
    let err = call(&runtime, &key(class, "x"), "get", "")
        .await
        .expect_err("the program cannot start");
    assert!(matches!(err, RuntimeError::WakeFailed { .. }), "{err}");
    runtime.shutdown().await;
    err.to_string()
}

async fn missing_program_is_not_found() {
    let classes = "[classes.absent]\ncommand = [\"/nonexistent/torpor-handler\"]\n\
                   [classes.unknown]\ncommand = [\"torpor-no-such-handler\"]\n";
    for (class, expected) in [
        (
            "absent",
            "cannot run \"/nonexistent/torpor-handler\": not found",
        ),
        (
            "unknown",
            "cannot run \"torpor-no-such-handler\": not found in PATH",
        ),
    ] {
        let message = wake_error(classes, class).await;
        assert!(message.contains(expected), "{message}");
        assert!(
            !message.contains("readable"),
            "a missing program got the permissions hint: {message}"
        );
    }
}

async fn unreadable_argument_names_user() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "skipping unreadable_argument_names_user: sandboxes run as their own users only \
             when the runtime is root"
        );
        return;
    }
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let script = private.path().join("handler.conf");
    std::fs::write(&script, "read by the handler").unwrap();
    let class = faulty("f", &[], "").replace(
        &format!("command = [\"{}\"]", handler_program().display()),
        &format!(
            "command = [\"{}\", \"{}\"]",
            handler_program().display(),
            script.display()
        ),
    );
    assert!(class.contains("handler.conf"), "{class}");

    let message = wake_error(&class, "f").await;
    assert!(
        message.contains(&format!("cannot read \"{}\" as uid", script.display())),
        "{message}"
    );
    assert!(message.contains("sandbox.user"), "{message}");

    // As the runtime's user, the same class starts.
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(
        dir.path(),
        &format!("{class}[sandbox]\nuser = \"runtime\"\n"),
    )
    .await;
    ok(&runtime, &key("f", "x"), "increment", "").await;
    runtime.shutdown().await;
}
