//! The container image, the way an operator runs it: built from `Dockerfile.prebuilt`
//! around this build's binary, run with `docker run --env-file`, probed, used through
//! the API, stopped. Needs a running `dockerd` and a `debian:bookworm-slim` image
//! (`deploy/docker-base` provides both offline); skipped without them, failed under `CI`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use phone_verify::testing::free_port;

use crate::helpers::{BIN, Reply};

const KEY: &str = "docker-test-key-0123456";

fn docker(args: &[&str]) -> Output {
    std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

fn ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Whether images can be built and run here; otherwise skip, or fail under `CI`.
fn docker_available() -> bool {
    let daemon = std::process::Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    let base = daemon
        && docker(&["image", "inspect", "debian:bookworm-slim"])
            .status
            .success();
    if base {
        return true;
    }
    let message = if daemon {
        "no debian:bookworm-slim image (run deploy/docker-base)"
    } else {
        "docker is not available or dockerd is not running (run deploy/docker-base)"
    };
    if std::env::var_os("CI").is_some() {
        panic!("{message}; CI must provide it");
    }
    eprintln!("skipped: {message}");
    false
}

/// A build context holding what `Dockerfile.prebuilt` copies: this build's binary as
/// `target/release/phone-verify`, and `static/`.
fn context() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("pv-docker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("target/release")).unwrap();
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::copy(BIN, dir.join("target/release/phone-verify")).unwrap();
    std::fs::copy(
        root.join("Dockerfile.prebuilt"),
        dir.join("Dockerfile.prebuilt"),
    )
    .unwrap();
    for entry in std::fs::read_dir(root.join("static")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join("static").join(entry.file_name())).unwrap();
    }
    dir
}

/// Removes the container and the build context however the test ends. The image stays,
/// tagged `phone-verify:test`, so the next build reuses its layers (the package layer
/// above all); the one it replaces is removed.
struct Cleanup {
    container: String,
    context: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.container]);
        let _ = std::fs::remove_dir_all(&self.context);
    }
}

fn image_id(tag: &str) -> Option<String> {
    let inspect = docker(&["image", "inspect", "--format", "{{.Id}}", tag]);
    inspect
        .status
        .success()
        .then(|| String::from_utf8_lossy(&inspect.stdout).trim().to_string())
}

#[tokio::test]
async fn the_image_serves_the_whole_flow_as_a_non_root_user_and_stops_cleanly() {
    if !docker_available() {
        return;
    }
    let context = context();
    let tag = "phone-verify:test";
    let name = format!("phone-verify-test-{}", std::process::id());
    let _cleanup = Cleanup {
        container: name.clone(),
        context: context.clone(),
    };
    let previous = image_id(tag);
    let context_arg = context.to_str().unwrap();
    ok(
        &docker(&[
            "build",
            "--network",
            "host",
            "-f",
            &format!("{context_arg}/Dockerfile.prebuilt"),
            "-t",
            tag,
            context_arg,
        ]),
        "docker build",
    );
    if let Some(old) = previous.filter(|old| image_id(tag).as_ref() != Some(old)) {
        docker(&["image", "rm", &old]);
    }

    // The same .env file a developer would use with `cargo run`.
    let port = free_port();
    let env_file = context.join(".env");
    std::fs::write(
        &env_file,
        format!(
            "# phone-verify in a container\nPHONE_VERIFY__SERVER__BIND=127.0.0.1:{port}\nPHONE_VERIFY__SERVER__PUBLIC_URL=http://127.0.0.1:{port}\nPHONE_VERIFY__API__KEYS={KEY}\n"
        ),
    )
    .unwrap();
    ok(
        &docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "host",
            "--env-file",
            env_file.to_str().unwrap(),
            "--health-interval",
            "1s",
            "--health-start-period",
            "1s",
            tag,
        ]),
        "docker run",
    );

    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let started = Instant::now();
    loop {
        let up = http.get(format!("{base}/healthz")).send().await;
        if up.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no /healthz: {}",
            ok(&docker(&["logs", &name]), "docker logs")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = loop {
        let status = ok(
            &docker(&["inspect", "--format", "{{.State.Health.Status}}", &name]),
            "inspect",
        );
        if status != "starting" || started.elapsed() > Duration::from_secs(20) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        health, "healthy",
        "the HEALTHCHECK (phone-verify healthcheck) passes"
    );

    let uid = ok(&docker(&["exec", &name, "id", "-u"]), "docker exec id");
    assert_eq!(uid, "10001", "not root");
    let pid1 = ok(
        &docker(&["exec", &name, "cat", "/proc/1/status"]),
        "status of pid 1",
    );
    assert!(
        pid1.lines()
            .any(|l| l.starts_with("Uid:") && l.contains("10001")),
        "{pid1}"
    );

    let start = Reply::read(
        http.post(format!("{base}/api/v1/verifications"))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"to": "+12015550123", "channel": "sms"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(start.status, 201, "{:?}", start.json);
    let logs = ok(&docker(&["logs", &name]), "docker logs");
    let code = logs
        .lines()
        .filter_map(|l| l.strip_prefix("@127.0.0.1 #"))
        .next_back()
        .unwrap_or_else(|| panic!("no code in the logs: {logs}"))
        .to_string();
    let check = Reply::read(
        http.post(format!("{base}/api/v1/verifications/check"))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"to": "+12015550123", "code": code}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(check.json["valid"], true, "{:?}", check.json);
    drop(http);

    let stopping = Instant::now();
    ok(&docker(&["stop", "--time", "10", &name]), "docker stop");
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(5), "docker stop took {took:?}");
    let exit = ok(
        &docker(&["inspect", "--format", "{{.State.ExitCode}}", &name]),
        "inspect",
    );
    assert_eq!(exit, "0", "a clean exit on SIGTERM");
    let logs = String::from_utf8_lossy(&docker(&["logs", &name]).stderr).into_owned();
    assert!(logs.contains("stopped"), "{logs}");
}
