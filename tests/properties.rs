//! Property tests for everything that parses untrusted input: names, the configuration file,
//! and the API's paths, query strings and bodies. `PROPTEST_CASES` sets how many cases each
//! property runs (256 by default); runs with 100,000 cases are recorded in the closing notes
//! of the work that added them.

mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use torpor::config::Config;
use torpor::model::{ClassName, MethodName, ObjectId};
use tower::ServiceExt;

proptest! {
    #[test]
    fn accepted_ids_are_safe(id in any::<String>()) {
        if let Ok(parsed) = ObjectId::parse(&id) {
            prop_assert!(!id.is_empty() && id.len() <= 256);
            prop_assert!(id != "." && id != "..");
            prop_assert!(!id.chars().any(|c| c.is_whitespace() || c.is_control() || "/\\\\?#%".contains(c)));
            prop_assert_eq!(parsed.as_str(), id.as_str());
        } else if id.len() <= 40 && !id.is_empty() {
            let message = ObjectId::parse(&id).unwrap_err().to_string();
            prop_assert!(message.contains(&format!("{id:?}")), "{} does not name {:?}", message, id);
        }
    }

    #[test]
    fn accepted_methods_are_never_reserved_or_paths(method in any::<String>()) {
        if MethodName::parse(&method).is_ok() {
            prop_assert!(!method.starts_with('_'));
            prop_assert!(method.len() <= 64 && method.is_ascii());
            prop_assert!(!method.contains('/') && !method.contains(".."));
        }
    }

    #[test]
    fn accepted_class_names_hold_no_separator(class in "[a-zA-Z0-9._/-]{0,70}") {
        if ClassName::parse(&class).is_ok() {
            prop_assert!(!class.contains('.') && !class.contains('/'));
        }
    }

    #[test]
    fn configuration_parser_never_panics(text in any::<String>()) {
        let _ = Config::parse(&text, Path::new("/"));
    }

    #[test]
    fn generated_configurations_validate_or_name_the_key(
        key in prop::sample::select(vec![
            "idle_timeout", "wake_timeout", "call_timeout", "storage_read_timeout",
            "memory_mb", "vcpus", "max_processes", "inherit_socket", "network", "bogus",
        ]),
        value in prop_oneof![
            "\"[0-9]{1,6}(ms|s|m|h|d)\"",
            "-?[0-9]{1,12}",
            "-?[0-9]{1,4}\\\\.[0-9]{1,3}",
            Just("true".to_owned()),
            "\"[a-z ]{0,8}\"",
        ],
    ) {
        let text = format!("[classes.c]\nbuiltin = \"counter\"\n{key} = {value}\n");
        match Config::parse(&text, Path::new("/")) {
            Ok(config) => {
                let class = config.classes.values().next().unwrap();
                prop_assert!(class.idle_timeout.as_millis() >= 50);
                prop_assert!(class.vcpus > 0.0 && class.vcpus <= 1024.0);
                prop_assert!(class.memory_mb >= 8);
            }
            Err(err) => {
                let message = format!("{err:#}");
                prop_assert!(message.contains(key) || message.contains("invalid type"), "{}", message);
            }
        }
    }
}

/// One segment of a request path: printable ASCII, percent-escapes and odd bytes.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_-]{0,8}",
        "[ -~]{0,20}".prop_map(|s| url_escape(&s)),
        prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect()),
        Just("..".to_owned()),
        Just("__storage".to_owned()),
    ]
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn api_answers_hostile_requests_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let config = "[sandbox]\ncgroups = false\nnamespaces = false\n[classes.c]\ncommand = [\"/nonexistent/handler\"]\nwake_timeout = \"1s\"\n";
    let runtime = tokio.block_on(common::runtime(dir.path(), config));
    let router = torpor::api::router(torpor::api::AppState::new(runtime.clone(), None));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    // Half the paths have the API's own shape, so the cases reach past routing into the
    // runtime; the rest are any segments at all.
    let shaped = (
        prop_oneof![3 => Just("c".to_owned()), 1 => segment()],
        prop_oneof![3 => "[a-z0-9.:@+=~-]{1,12}", 1 => segment()],
        prop::sample::select(vec![
            "call",
            "hibernate",
            "wake",
            "logs",
            "idle-timeout",
            "",
        ]),
        prop_oneof![3 => "[a-z][a-z0-9_.-]{0,10}", 1 => segment()],
    )
        .prop_map(|(class, id, action, method)| {
            let mut path = vec!["objects".to_owned(), class, id];
            match action {
                "" => {}
                "call" => path.extend(["call".to_owned(), method]),
                other => path.push(other.to_owned()),
            }
            path
        });
    let strategy = (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        prop_oneof![prop::collection::vec(segment(), 0..6), shaped],
        prop::option::of("[ -~]{0,30}"),
        prop::collection::vec(any::<u8>(), 0..64),
    );
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    runner
        .run(&strategy, |(method, segments, query, body)| {
            let mut uri = format!("/v1/{}", segments.join("/"));
            if let Some(query) = query {
                uri.push('?');
                uri.push_str(&url_escape(&query).replace("%3D", "=").replace("%26", "&"));
            }
            let Ok(request) = Request::builder()
                .method(method)
                .uri(&uri)
                .body(Body::from(body))
            else {
                return Ok(());
            };
            let response = tokio.block_on(router.clone().oneshot(request)).unwrap();
            let status = response.status().as_u16();
            *statuses.lock().unwrap().entry(status).or_default() += 1;
            prop_assert!(status != 500, "{} {} answered 500", method, uri);
            if status >= 400 {
                let bytes = tokio
                    .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
                    .unwrap();
                let error: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
                    TestCaseError::fail(format!("{method} {uri}: {status} without a JSON body"))
                })?;
                prop_assert!(
                    error["error"]["message"].is_string(),
                    "{} {}: {}",
                    method,
                    uri,
                    error
                );
            }
            Ok(())
        })
        .unwrap();
    eprintln!("statuses answered: {:?}", statuses.lock().unwrap());
    tokio.block_on(runtime.shutdown());
}
