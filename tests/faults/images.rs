//! The container engine the container scenarios run against, and the images they use: the
//! demo image of built-in handlers, and one holding this test executable as a faulty handler.
//! Both are built with `assets/images/build.sh` and imported through the engine's API.
//!
//! The engine's socket is `TORPOR_TEST_CONTAINER_SOCKET`, else `DOCKER_HOST`, else Docker's or
//! rootful Podman's default socket. Where none responds, the scenarios skip and say why.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    CreateImageOptions, ListContainersOptions, RemoveContainerOptions,
};
use futures::StreamExt;

pub struct Engine {
    /// `unix:///PATH`, as a class configuration names it.
    pub socket: String,
    pub demo_image: String,
    pub faulty_image: String,
}

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// Returns the engine with both images imported, or why the container scenarios cannot run.
pub fn engine() -> Result<&'static Engine, &'static str> {
    ENGINE
        .get_or_init(|| {
            // Images are built once, on a thread of their own: scenarios run on separate tokio
            // runtimes, and the first one to ask waits here.
            std::thread::spawn(prepare)
                .join()
                .unwrap_or_else(|_| Err("image set-up panicked".into()))
        })
        .as_ref()
        .map_err(String::as_str)
}

/// Connects a client to the scenarios' engine, on the caller's tokio runtime.
pub fn client(engine: &Engine) -> Docker {
    let path = engine.socket.trim_start_matches("unix://");
    Docker::connect_with_socket(path, 60, bollard::API_DEFAULT_VERSION).unwrap()
}

fn socket_candidates() -> Vec<String> {
    let mut sockets = Vec::new();
    for name in ["TORPOR_TEST_CONTAINER_SOCKET", "DOCKER_HOST"] {
        if let Ok(value) = std::env::var(name)
            && !value.is_empty()
        {
            sockets.push(value);
        }
    }
    sockets.push("unix:///var/run/docker.sock".into());
    sockets.push("unix:///run/podman/podman.sock".into());
    sockets
}

fn prepare() -> Result<Engine, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut tried = Vec::new();
    let socket = socket_candidates().into_iter().find(|socket| {
        let path = socket.trim_start_matches("unix://");
        let answered = Path::new(path).exists()
            && runtime.block_on(async {
                let Ok(docker) =
                    Docker::connect_with_socket(path, 10, bollard::API_DEFAULT_VERSION)
                else {
                    return false;
                };
                matches!(
                    tokio::time::timeout(Duration::from_secs(10), docker.ping()).await,
                    Ok(Ok(_))
                )
            });
        tried.push(path.to_owned());
        answered
    });

    let Some(socket) = socket else {
        return Err(format!(
            "no container engine answers on {}; set TORPOR_TEST_CONTAINER_SOCKET to one",
            tried.join(", ")
        ));
    };
    let socket = if socket.starts_with("unix://") {
        socket
    } else {
        format!("unix://{socket}")
    };

    let tag = std::process::id();
    let engine = Engine {
        demo_image: format!("localhost/torpor-test-demo:{tag}"),
        faulty_image: format!("localhost/torpor-test-faulty:{tag}"),
        socket,
    };
    let docker = client(&engine);
    let torpor = Path::new(env!("CARGO_BIN_EXE_torpor"));
    let faulty = crate::support::handler_program();
    runtime.block_on(async {
        import(&docker, torpor, &engine.demo_image).await?;
        import(&docker, faulty, &engine.faulty_image).await
    })?;
    Ok(engine)
}

/// Builds a root filesystem holding `program` with `build.sh --tar` and imports it as `image`.
async fn import(docker: &Docker, program: &Path, image: &str) -> Result<(), String> {
    let folder = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tarball = folder.path().join("rootfs.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/images/build.sh");
    let output = std::process::Command::new(&script)
        .arg("--program")
        .arg(program)
        .arg("--tar")
        .arg(&tarball)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // The tag goes inside `repo`: Podman ignores a separate `tag` on imports.
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(image.into()),
        changes: vec!["EXPOSE 9333".into()],
        ..Default::default()
    };
    let body = std::fs::read(&tarball).map_err(|e| e.to_string())?;
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_full(body.into())), None);
    while let Some(step) = progress.next().await {
        step.map_err(|e| format!("cannot import {image}: {e}"))?;
    }
    Ok(())
}

/// Removes the scenarios' containers and images, whatever the scenarios left.
pub fn clean_up() {
    let Some(Ok(engine)) = ENGINE.get() else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async {
        let docker = client(engine);
        for image in [&engine.demo_image, &engine.faulty_image] {
            let options = ListContainersOptions {
                all: true,
                filters: Some([("ancestor".to_owned(), vec![image.clone()])].into()),
                ..Default::default()
            };
            for container in docker
                .list_containers(Some(options))
                .await
                .unwrap_or_default()
            {
                if let Some(id) = container.id {
                    let options = RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    };
                    let _ = docker.remove_container(&id, Some(options)).await;
                }
            }
            let _ = docker
                .remove_image(
                    image,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await;
        }
    });
}
