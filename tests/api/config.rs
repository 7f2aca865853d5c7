//! The binary's configuration handling: exit codes and messages naming the key.

use std::process::Output;

use crate::helpers::command;

async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(env).args(args).output().await.unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("pv-test-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test]
async fn check_config_accepts_the_defaults() {
    let output = run(&["check-config"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[tokio::test]
async fn check_config_accepts_the_documented_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml.example");
    let output = run(&["--config", example, "check-config"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[tokio::test]
async fn invalid_settings_exit_2_with_one_line_naming_the_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("PHONE_VERIFY__VERIFICATION__CODE_LENGTH", "5")],
            "verification.code_length",
        ),
        (
            &[
                ("PHONE_VERIFY__VERIFICATION__CODE_ALPHABET", "hex"),
                ("PHONE_VERIFY__VERIFICATION__CODE_LENGTH", "4"),
            ],
            "verification.code_length",
        ),
        (
            &[("PHONE_VERIFY__VERIFICATION__TTL_SECS", "ten")],
            "verification.ttl_secs",
        ),
        (
            &[("PHONE_VERIFY__VERIFICATION__MAX_CHECK_ATTEMPTS", "0")],
            "verification.max_check_attempts",
        ),
        (&[("PHONE_VERIFY__SERVER__NOPE", "1")], "server.nope"),
        (&[("PHONE_VERIFY__CHANNELS__SMS", "pigeon")], "channels.sms"),
        (
            &[("PHONE_VERIFY__CHANNELS__SMS", "twilio")],
            "providers.twilio",
        ),
        (
            &[("PHONE_VERIFY__SERVER__SECRET", "short")],
            "server.secret",
        ),
    ];
    for (env, key) in cases {
        let output = run(&["check-config"], env).await;
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        let message = stderr(&output);
        assert_eq!(message.trim_end().lines().count(), 1, "{message}");
        assert!(message.contains(key), "{env:?}: {message}");
    }
}

#[tokio::test]
async fn a_bad_file_stops_start_up_with_exit_2() {
    let unknown = temp_file("unknown.toml", "[verification]\nttl = 60\n");
    let output = run(&["--config", unknown.to_str().unwrap()], &[]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("verification.ttl"),
        "{}",
        stderr(&output)
    );

    let typed = temp_file("typed.toml", "[verification]\nlockout_secs = \"soon\"\n");
    let output = run(&[], &[("PHONE_VERIFY_CONFIG", typed.to_str().unwrap())]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("verification.lockout_secs"));

    let broken = temp_file("broken.toml", "[verification\n");
    let output = run(&["--config", broken.to_str().unwrap()], &[]).await;
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim_end().lines().count(),
        1,
        "{}",
        stderr(&output)
    );

    let output = run(&["--config", "/nonexistent/phone-verify.toml"], &[]).await;
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test]
async fn a_port_in_use_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = run(&[], &[("PHONE_VERIFY__SERVER__BIND", &address)]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_from_start_up() {
    let app = crate::helpers::spawn_app_with(&[("PHONE_VERIFY__LOG__FORMAT", "json")]).await;
    app.browser().get("/").await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let logs = app.logs();
    assert!(logs.lines().count() >= 3);
    for line in logs.lines() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not JSON: {line}");
    }
}

#[tokio::test]
async fn readiness_and_metrics_are_served_with_the_memory_store() {
    let app = crate::helpers::spawn_app().await;
    let http = reqwest::Client::new();
    let ready = http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let browser = app.browser();
    browser.request_code("+12015550123", "sms").await;
    let code = app.code_for("+12015550123").await;
    browser
        .submit_code(if code == "000000" { "111111" } else { "000000" })
        .await;
    browser.submit_code(&code).await;
    let response = http.get(app.url("/metrics")).send().await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for line in [
        "phone_verify_verifications_started_total{channel=\"sms\"} 1",
        "phone_verify_checks_total{result=\"invalid\"} 1",
        "phone_verify_checks_total{result=\"valid\"} 1",
        "phone_verify_sends_total{provider=\"console\",outcome=\"sent\"} 1",
        "phone_verify_provider_request_seconds_count{provider=\"console\"} 1",
        "phone_verify_store_errors_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn start_up_warns_about_the_console_provider_and_a_missing_secret() {
    let development = crate::helpers::spawn_app().await;
    let logs = development.logs();
    assert!(logs.contains("console provider prints codes"), "{logs}");
    assert!(logs.contains("server.secret is empty"), "{logs}");
    let configured = crate::helpers::spawn_app_with(&[(
        "PHONE_VERIFY__SERVER__SECRET",
        "0123456789abcdef0123456789abcdef",
    )])
    .await;
    assert!(
        !configured.logs().contains("server.secret is empty"),
        "{}",
        configured.logs()
    );
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let mut child = command(&[]).spawn().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_front_end_enabled_without_its_credentials_does_not_start() {
    // The attack: /v2 on with empty credentials let `curl -u ":"` approve verifications.
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("PHONE_VERIFY__TWILIO_COMPAT__ENABLED", "true")],
            "twilio_compat.account_sid",
        ),
        (
            &[
                ("PHONE_VERIFY__TWILIO_COMPAT__ENABLED", "true"),
                ("PHONE_VERIFY__TWILIO_COMPAT__ACCOUNT_SID", "AC123"),
                ("PHONE_VERIFY__TWILIO_COMPAT__AUTH_TOKEN", "too-short"),
            ],
            "twilio_compat.auth_token",
        ),
        (&[("PHONE_VERIFY__API__KEYS", "short")], "api.keys"),
        (
            &[("PHONE_VERIFY__SERVER__METRICS_TOKEN", "short")],
            "server.metrics_token",
        ),
    ];
    for (env, key) in cases {
        for args in [&["check-config"][..], &[][..]] {
            let output = run(args, env).await;
            assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}");
            let message = stderr(&output);
            assert_eq!(message.trim_end().lines().count(), 1, "{message}");
            assert!(message.contains(key), "{env:?}: {message}");
        }
    }
}

#[tokio::test]
async fn a_key_prefix_that_would_move_keys_to_another_slot_is_refused() {
    for prefix in ["pv{x}:", "pv }:", "a b"] {
        let output = run(
            &["check-config"],
            &[("PHONE_VERIFY__STORE__KEY_PREFIX", prefix)],
        )
        .await;
        assert_eq!(output.status.code(), Some(2), "{prefix:?}");
        assert!(
            stderr(&output).contains("store.key_prefix"),
            "{}",
            stderr(&output)
        );
    }
    let output = run(
        &["check-config"],
        &[("PHONE_VERIFY__STORE__KEY_PREFIX", "app1:pv:")],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// A fresh working directory holding a `.env` with `contents`.
fn dir_with_env(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pv-env-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".env"), contents).unwrap();
    dir
}

async fn run_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(env)
        .current_dir(dir)
        .args(args)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dot_env_file_is_read_under_the_environment_and_the_command_line() {
    // The file alone: its (invalid) value is read.
    let dir = dir_with_env(
        "precedence",
        "# local settings\nPHONE_VERIFY__VERIFICATION__CODE_LENGTH=5\n",
    );
    let from_file = run_in(&dir, &["check-config"], &[]).await;
    assert_eq!(from_file.status.code(), Some(2), "{}", stderr(&from_file));
    assert!(stderr(&from_file).contains("verification.code_length"));
    // The environment wins over the file.
    let from_env = run_in(
        &dir,
        &["check-config"],
        &[("PHONE_VERIFY__VERIFICATION__CODE_LENGTH", "8")],
    )
    .await;
    assert_eq!(from_env.status.code(), Some(0), "{}", stderr(&from_env));
    let said = String::from_utf8_lossy(&from_env.stdout).into_owned();
    assert!(said.contains(".env"), "{said}");

    // --env-file names another file instead of ./.env.
    let other = dir.join("other.env");
    std::fs::write(&other, "PHONE_VERIFY__VERIFICATION__CODE_LENGTH=7\n").unwrap();
    let chosen = run_in(
        &dir,
        &["--env-file", other.to_str().unwrap(), "check-config"],
        &[],
    )
    .await;
    assert_eq!(chosen.status.code(), Some(0), "{}", stderr(&chosen));

    // The file may name the configuration file; the command line wins over it.
    std::fs::write(dir.join(".env"), "PHONE_VERIFY_CONFIG=missing.toml\n").unwrap();
    let named = run_in(&dir, &["check-config"], &[]).await;
    assert_eq!(named.status.code(), Some(2));
    assert!(
        stderr(&named).contains("missing.toml"),
        "{}",
        stderr(&named)
    );
    let valid = dir.join("valid.toml");
    std::fs::write(&valid, "[verification]\napp_name = \"Acme\"\n").unwrap();
    let cli = run_in(
        &dir,
        &["--config", valid.to_str().unwrap(), "check-config"],
        &[],
    )
    .await;
    assert_eq!(cli.status.code(), Some(0), "{}", stderr(&cli));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_missing_or_malformed_env_file_stops_start_up_with_exit_2() {
    let dir = dir_with_env("malformed", "PHONE_VERIFY__SERVER__BIND 127.0.0.1:0\n");
    let malformed = run_in(&dir, &["check-config"], &[]).await;
    assert_eq!(malformed.status.code(), Some(2));
    assert!(
        stderr(&malformed).contains("env-file"),
        "{}",
        stderr(&malformed)
    );
    let missing = run_in(&dir, &["--env-file", "nope.env", "check-config"], &[]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("nope.env"),
        "{}",
        stderr(&missing)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_env_example_is_a_valid_configuration() {
    let dir = std::env::temp_dir().join(format!("pv-env-example-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example");
    let output = run_in(&dir, &["--env-file", example, "check-config"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // docker run --env-file takes each line as it is: no quotes, no `export`.
    let text = std::fs::read_to_string(example).unwrap();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (name, value) = line.split_once('=').expect("KEY=value");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "{line}"
        );
        assert!(
            !value.starts_with('"') && !value.starts_with('\''),
            "{line}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
