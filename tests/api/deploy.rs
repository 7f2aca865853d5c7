//! What `deploy/` offers operators, checked as they would use it: the systemd units pass
//! `systemd-analyze verify` and its security review, and `deploy/two-instances.sh` runs
//! two instances on one Redis, one verification across both.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};

use phone_verify::testing::free_port;

use crate::helpers::{BIN, Reply};

const KEY: &str = "deploy-test-key-0123456";

/// A tool's path, or (with a message) none: skipped, or failed under `CI`.
fn tool(name: &str, package: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let message = format!("{name} is not installed (apt-get install {package})");
        if std::env::var_os("CI").is_some() {
            panic!("{message}; CI must install it");
        }
        eprintln!("skipped: {message}");
    }
    found
}

#[test]
fn the_systemd_units_verify_and_pass_a_security_review() {
    if !tool("systemd-analyze", "systemd") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("pv-units-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The units name the installed binary; point them at this build's for the check.
    for unit in ["phone-verify.service", "phone-verify@.service"] {
        let text = std::fs::read_to_string(root.join("deploy").join(unit)).unwrap();
        assert!(text.contains("DynamicUser=yes") && text.contains("ProtectSystem=strict"));
        std::fs::write(
            dir.join(unit),
            text.replace("/usr/local/bin/phone-verify", BIN),
        )
        .unwrap();
    }
    for unit in ["phone-verify.service", "phone-verify@a.service"] {
        let path = dir.join(unit);
        let verify = std::process::Command::new("systemd-analyze")
            .args(["verify", path.to_str().unwrap()])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&verify.stderr).into_owned();
        assert!(verify.status.success(), "{unit}: {said}");
        assert!(said.trim().is_empty(), "{unit} has warnings: {said}");
    }
    // An exposure of at most 2.0 of 10 ("OK") in systemd's own review.
    let review = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(dir.join("phone-verify.service"))
        .output()
        .unwrap();
    assert!(
        review.status.success(),
        "{}",
        String::from_utf8_lossy(&review.stdout)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_two_instance_example_shares_one_redis() {
    if !tool("redis-server", "redis-server") || !tool("redis-cli", "redis-tools") {
        return;
    }
    let (a, b, redis) = (free_port(), free_port(), free_port());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/two-instances.sh");
    let isolated = crate::helpers::command(&[
        ("PHONE_VERIFY_BIN", BIN),
        ("PHONE_VERIFY__API__KEYS", KEY),
        ("PORT_A", &a.to_string()),
        ("PORT_B", &b.to_string()),
        ("REDIS_PORT", &redis.to_string()),
    ]);
    // The helper runs the binary; run the script in its place, with the same isolation.
    let mut script_cmd = tokio::process::Command::new("bash");
    script_cmd.arg(script);
    for (name, value) in isolated.as_std().get_envs() {
        match value {
            Some(value) => script_cmd.env(name, value),
            None => script_cmd.env_remove(name),
        };
    }
    let mut child = script_cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let printed = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = printed.clone();
    let stdout = child.stdout.take().unwrap();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });

    let http = reqwest::Client::new();
    let started = Instant::now();
    for port in [a, b] {
        loop {
            let up = http
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await;
            if up.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "instance on {port} not ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let start = Reply::read(
        http.post(format!("http://127.0.0.1:{a}/api/v1/verifications"))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"to": "+12015550123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(start.status, 201, "{:?}", start.json);
    let code = loop {
        let found = printed
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.strip_prefix("@127.0.0.1 #").map(String::from));
        if let Some(code) = found {
            break code;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no code printed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let check = Reply::read(
        http.post(format!("http://127.0.0.1:{b}/api/v1/verifications/check"))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"to": "+12015550123", "code": code}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        check.json["valid"], true,
        "checked on the other instance: {:?}",
        check.json
    );

    // SIGTERM to the script stops all three.
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the script stops")
        .unwrap();
    assert!(status.code().is_some(), "{status:?}");
    for port in [a, b, redis] {
        let open = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        assert!(!open, "port {port} still served after the script stopped");
    }
}
