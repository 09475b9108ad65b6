use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> anyhow::Result<Config> {
    Config::parse(text, Path::new("/etc/torpor"))
}

fn error_of(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

#[test]
fn builtin_config_is_valid() {
    let config = Config::builtin();
    let counter = config.class(&ClassName::parse("counter").unwrap()).unwrap();
    assert_eq!(counter.handler, Handler::Builtin("counter".into()));
    assert!(counter.inherit_socket);
    assert_eq!(config.runtime.durability, Durability::PerCall);
    let notes = config.class(&ClassName::parse("notes").unwrap()).unwrap();
    let Handler::Command(argv) = &notes.handler else {
        panic!("notes is a command class")
    };
    assert_eq!(argv[..2], ["python3", "-c"]);
    assert_eq!(argv[2], NOTES_HANDLER, "the embedded copy runs, not a path");
}

#[test]
fn defaults_apply_to_classes() {
    let config = parse(
        r#"
        [defaults]
        idle_timeout = "2s"
        [classes.a]
        builtin = "counter"
        [classes.b]
        builtin = "kv"
        idle_timeout = "500ms"
        "#,
    )
    .unwrap();
    let a = config.class(&ClassName::parse("a").unwrap()).unwrap();
    let b = config.class(&ClassName::parse("b").unwrap()).unwrap();
    assert_eq!(a.idle_timeout, Duration::from_secs(2));
    assert_eq!(b.idle_timeout, Duration::from_millis(500));
    assert_eq!(a.wake_timeout, Duration::from_secs(10));
}

#[test]
fn relative_command_paths_resolve_against_file() {
    let config = parse("[classes.p]\ncommand = [\"python3\", \"./h.py\", \"plain\"]").unwrap();
    let p = config.class(&ClassName::parse("p").unwrap()).unwrap();
    assert_eq!(
        p.handler,
        Handler::Command(vec![
            "python3".into(),
            "/etc/torpor/./h.py".into(),
            "plain".into()
        ])
    );
    assert!(!p.inherit_socket);
}

#[test]
fn bad_values_are_named() {
    let cases = [
        (
            "[classes.a]\nbuiltin = \"nope\"",
            "\"nope\" is not a built-in class",
        ),
        (
            "[classes.A]\nbuiltin = \"counter\"",
            "invalid class name \"A\"",
        ),
        (
            "[classes.a]\nbuiltin = \"counter\"\nidle_timeout = \"1ms\"",
            "idle_timeout = 1ms is out of range",
        ),
        ("[classes.a]\ncommand = []", "command = [] is empty"),
        (
            "[classes.a]\nbuiltin = \"kv\"\ncommand = [\"x\"]",
            "not both",
        ),
        (
            "[classes.a]\nbuiltin = \"kv\"\nvcpus = 0.0",
            "vcpus = 0 is out of range",
        ),
        (
            "[classes.a]\nbuiltin = \"kv\"\nenv = { TORPOR_X = \"1\" }",
            "reserved",
        ),
        (
            "[classes.a]\nbuiltin = \"kv\"\nidel_timeout = \"1s\"",
            "idel_timeout",
        ),
        (
            "[runtime]\ndurability = \"fast\"",
            "\"fast\" is not a durability mode",
        ),
        (
            "[limits]\nmax_page_size = 0",
            "limits.max_page_size = 0 is out of range",
        ),
        (
            "[classes.a]\nbuiltin = \"kv\"\nidle_timeout = \"soon\"",
            "soon",
        ),
        (
            "[classes.a]\nimage = \"x\"\nbuiltin = \"kv\"",
            "either image or builtin",
        ),
        (
            "[classes.a]\nimage = \"a b\"",
            "\"a b\" is not an image reference",
        ),
        (
            "[classes.a]\nimage = \"x\"\ncommand = []",
            "command is empty",
        ),
        (
            "[classes.a]\nimage = \"x\"\ncontainer_network = \"host\"",
            "port 9333",
        ),
        (
            "[classes.a]\nimage = \"x\"\ncontainer_network = \"none\"",
            "unreachable",
        ),
        ("[container]\nsockett = \"x\"", "sockett"),
        (
            "[classes.a]\nbuiltin = \"kv\"\nalarm_max_attempts = 0",
            "alarm_max_attempts = 0 is out of range",
        ),
        (
            "[defaults]\nalarm_retry = \"5s\"\nalarm_retry_max = \"1s\"",
            "alarm_retry_max = 1s is out of range",
        ),
        (
            "[limits]\nmax_alarm_deliveries = 0",
            "limits.max_alarm_deliveries = 0 is out of range",
        ),
    ];
    for (text, expected) in cases {
        let err = error_of(text);
        assert!(
            err.contains(expected),
            "{text:?}: expected {expected:?} in {err:?}"
        );
    }
}

#[test]
fn image_classes_keep_their_command_as_written() {
    let text = "[classes.boxed]\nimage = \"localhost/demo:1\"\ncommand = [\"./run\", \"x\"]\n\
                keep_filesystem = false\ncontainer_network = \"torpor-net\"\n\
                [container]\nsocket = \"unix:///tmp/engine.sock\"";
    let config = Config::parse(text, Path::new("/etc/torpor")).unwrap();
    let class = config.class(&ClassName::parse("boxed").unwrap()).unwrap();
    match &class.handler {
        Handler::Image { image, command } => {
            assert_eq!(image, "localhost/demo:1");
            // Paths inside the image are not resolved against the configuration's folder.
            assert_eq!(
                command.as_deref(),
                Some(&["./run".to_owned(), "x".to_owned()][..])
            );
        }
        other => panic!("expected an image handler, got {other:?}"),
    }
    assert!(!class.keep_filesystem);
    assert_eq!(class.container_network, "torpor-net");
    assert_eq!(
        config.container.socket.as_deref(),
        Some("unix:///tmp/engine.sock")
    );
}

#[test]
fn relative_config_path_gives_absolute_commands() {
    // Tests run in the package folder, so this path is relative to it.
    let config = Config::load(Path::new("assets/torpor.toml")).unwrap();
    let notes = config.class(&ClassName::parse("notes").unwrap()).unwrap();
    let Handler::Command(argv) = &notes.handler else {
        panic!("notes is a command class")
    };
    let script = Path::new(&argv[1]);
    assert!(script.is_absolute(), "{argv:?}");
    assert!(script.ends_with("assets/classes/notes.py"), "{argv:?}");
    assert!(script.exists(), "{argv:?}");
}

#[test]
fn alarm_settings_default_and_override() {
    let config = parse(
        r#"
        [defaults]
        alarm_retry = "200ms"
        [classes.a]
        builtin = "session"
        alarm_max_attempts = 3
        "#,
    )
    .unwrap();
    let a = config.class(&ClassName::parse("a").unwrap()).unwrap();
    assert_eq!(a.alarm_retry, Duration::from_millis(200));
    assert_eq!(a.alarm_retry_max, Duration::from_secs(60));
    assert_eq!(a.alarm_max_attempts, 3);
    assert_eq!(config.limits.max_alarm_deliveries, 32);
    let builtin = Config::builtin();
    let session = builtin
        .class(&ClassName::parse("session").unwrap())
        .unwrap();
    assert_eq!(session.handler, Handler::Builtin("session".into()));
    assert_eq!(session.alarm_max_attempts, 6);
    assert_eq!(session.alarm_retry, Duration::from_secs(1));
}
