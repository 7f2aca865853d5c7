//! The native JSON API, `/api/v1`, over HTTP.

use serde_json::json;

use crate::helpers::{Reply, api, python_with, spawn_app, spawn_app_with};

const A: &str = "+12015550123";
const KEY: &str = "test-key-1-0123456789";

async fn app_with(extra: &[(&str, &str)]) -> crate::helpers::TestApp {
    let mut env = vec![(
        "PHONE_VERIFY__API__KEYS",
        "other-key-0123456789, test-key-1-0123456789",
    )];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.json);
    assert_eq!(reply.json["code"], code, "{:?}", reply.json);
    assert_eq!(reply.json["status"], status);
    assert!(
        reply.json["type"].is_string()
            && reply.json["title"].is_string()
            && reply.json["detail"].is_string()
    );
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/problem+json")
    );
}

fn wrong(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

#[tokio::test]
async fn without_configured_keys_the_api_says_how_to_configure_one() {
    let app = spawn_app().await;
    let reply = api(&app, "anything").start(A).await;
    assert_problem(&reply, 401, "unauthorized");
    assert!(reply.json["detail"].as_str().unwrap().contains("api.keys"));
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_refused() {
    let app = app_with(&[]).await;
    assert_problem(&api(&app, "nope").start(A).await, 401, "unauthorized");
    let bare = reqwest::Client::new()
        .post(app.url("/api/v1/verifications"))
        .json(&json!({"to": A}))
        .send()
        .await
        .unwrap();
    let reply = Reply::read(bare).await;
    assert_problem(&reply, 401, "unauthorized");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert!(app.messages().is_empty());
}

#[tokio::test]
async fn a_verification_is_started_checked_and_approved() {
    let app = app_with(&[]).await;
    let client = api(&app, KEY);
    let started = client.start(A).await;
    assert_eq!(started.status, 201, "{:?}", started.json);
    let v = &started.json;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(
        (
            v["to"].as_str(),
            v["channel"].as_str(),
            v["status"].as_str()
        ),
        (Some(A), Some("sms"), Some("pending"))
    );
    for field in ["created_at", "expires_at"] {
        let at = v[field].as_str().unwrap();
        assert!(
            at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
            "{field}: {at}"
        );
    }
    assert_eq!(v["send_attempts"][0]["provider"], "console");
    assert_eq!(v["send_attempts"][0]["channel"], "sms");
    assert!(v["send_attempts"][0]["at"].is_string());
    assert_eq!(v["send_attempts"][0]["delivery_status"], "sent");
    let code = app.code_for(A).await;
    assert!(
        !started.json.to_string().contains(&code),
        "the code is never in a response"
    );

    let missed = client.check(A, wrong(&code)).await;
    assert_eq!(missed.status, 200);
    assert_eq!(
        (
            missed.json["valid"].as_bool(),
            missed.json["status"].as_str()
        ),
        (Some(false), Some("pending"))
    );
    assert_eq!(missed.json["attempts_remaining"], 4);

    let by_id = client
        .post(
            "/api/v1/verifications/check",
            json!({"id": id, "code": code}),
        )
        .await;
    assert_eq!(by_id.status, 200);
    assert_eq!(
        (by_id.json["valid"].as_bool(), by_id.json["status"].as_str()),
        (Some(true), Some("approved"))
    );
    assert_eq!(
        client
            .get(&format!("/api/v1/verifications/{id}"))
            .await
            .json["status"],
        "approved"
    );
    assert_problem(&client.check(A, &code).await, 404, "not_found");
}

#[tokio::test]
async fn the_last_attempt_says_so_and_later_checks_get_429() {
    let app = app_with(&[("PHONE_VERIFY__VERIFICATION__MAX_CHECK_ATTEMPTS", "2")]).await;
    let client = api(&app, KEY);
    client.start(A).await;
    let code = app.code_for(A).await;
    client.check(A, wrong(&code)).await;
    let last = client.check(A, wrong(&code)).await;
    assert_eq!(last.status, 200);
    assert_eq!(last.json["valid"], false);
    assert_eq!(last.json["status"], "max_attempts_reached");
    assert_eq!(last.json["attempts_remaining"], 0);
    assert_problem(&client.check(A, &code).await, 429, "max_attempts_reached");
}

#[tokio::test]
async fn bad_input_gets_a_clear_problem_and_sends_nothing() {
    let app = app_with(&[("PHONE_VERIFY__VERIFICATION__ALLOWED_COUNTRIES", "US")]).await;
    let client = api(&app, KEY);
    assert_problem(&client.start("not a number").await, 400, "invalid_phone");
    assert_problem(&client.start("").await, 400, "invalid_phone");
    assert_problem(
        &client
            .post("/api/v1/verifications", json!({"to": A, "channel": "fax"}))
            .await,
        400,
        "invalid_channel",
    );
    assert_problem(
        &client
            .post("/api/v1/verifications", json!({"channel": "sms"}))
            .await,
        400,
        "malformed_json",
    );
    assert_problem(
        &client.start("+44 7400 123456").await,
        403,
        "country_not_allowed",
    );
    let raw = client
        .client
        .post(app.url("/api/v1/verifications"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{\"to\":")
        .send()
        .await
        .unwrap();
    assert_problem(&Reply::read(raw).await, 400, "malformed_json");
    let form = client
        .client
        .post(app.url("/api/v1/verifications"))
        .bearer_auth(KEY)
        .form(&[("to", A)])
        .send()
        .await
        .unwrap();
    assert_problem(&Reply::read(form).await, 415, "unsupported_media_type");
    let big = json!({"to": A, "padding": "x".repeat(20 * 1024)});
    assert_problem(
        &client.post("/api/v1/verifications", big).await,
        413,
        "payload_too_large",
    );
    assert_problem(&client.check(A, "12 34 56").await, 400, "invalid_code");
    assert_problem(
        &client
            .post("/api/v1/verifications/check", json!({"code": "123456"}))
            .await,
        400,
        "invalid_parameter",
    );
    assert!(app.messages().is_empty());
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let app = app_with(&[]).await;
    let reply = api(&app, KEY)
        .post(
            "/api/v1/verifications",
            json!({"to": A, "channel": "call", "locale": "fr", "extra": {"x": 1}}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.json);
    assert_eq!(reply.json["channel"], "call");
}

#[tokio::test]
async fn unknown_ids_and_checks_without_a_verification_are_404() {
    let app = app_with(&[]).await;
    let client = api(&app, KEY);
    assert_problem(
        &client
            .get("/api/v1/verifications/0123456789abcdef0123456789abcdef")
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &client
            .delete("/api/v1/verifications/0123456789abcdef0123456789abcdef")
            .await,
        404,
        "not_found",
    );
    assert_problem(&client.check(A, "123456").await, 404, "not_found");
    assert_problem(&client.get("/api/v1/nothing-here").await, 404, "not_found");
    let wrong_method = Reply::read(
        client
            .client
            .put(app.url("/api/v1/verifications"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&wrong_method, 405, "method_not_allowed");
}

#[tokio::test]
async fn a_canceled_verification_no_longer_takes_codes() {
    let app = app_with(&[]).await;
    let client = api(&app, KEY);
    let id = client.start(A).await.json["id"]
        .as_str()
        .unwrap()
        .to_string();
    let code = app.code_for(A).await;
    let canceled = client.delete(&format!("/api/v1/verifications/{id}")).await;
    assert_eq!(canceled.status, 200);
    assert_eq!(canceled.json["status"], "canceled");
    assert_problem(&client.check(A, &code).await, 404, "not_found");
}

#[tokio::test]
async fn send_limits_answer_429_with_retry_after_and_send_nothing() {
    let app = app_with(&[]).await;
    let client = api(&app, KEY);
    assert_eq!(client.start(A).await.status, 201);
    let limited = client.start(A).await;
    assert_problem(&limited, 429, "rate_limited");
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            <= 30
    );
    assert_eq!(app.messages_to(A).len(), 1);
}

#[tokio::test]
async fn an_idempotent_replay_returns_the_first_answer_and_sends_nothing() {
    let app = app_with(&[("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")]).await;
    let client = api(&app, KEY);
    let send = |key: &'static str, body: serde_json::Value| {
        let request = client
            .client
            .post(app.url("/api/v1/verifications"))
            .bearer_auth(KEY)
            .header("idempotency-key", key)
            .json(&body);
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    let first = send("order-42", json!({"to": A, "channel": "sms"})).await;
    let again = send("order-42", json!({"to": A, "channel": "sms"})).await;
    assert_eq!(first.status, 201);
    assert_eq!(again.status, 201);
    assert_eq!(again.json, first.json);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.messages_to(A).len(), 1, "the replay sent nothing");
    let conflict = send("order-42", json!({"to": "+12015550124", "channel": "sms"})).await;
    assert_problem(&conflict, 422, "idempotency_key_reused");
    // Another key is another request.
    assert_eq!(
        send("order-43", json!({"to": A, "channel": "sms"}))
            .await
            .status,
        201
    );
    assert_eq!(app.messages_to(A).len(), 2);
}

/// Through the API the per-address limit counts the person's address, which the backend
/// vouches for in `client_ip` (its own connection, or a proxy's header, says nothing about
/// the person; the pages' tests check `X-Forwarded-For`).
#[tokio::test]
async fn the_api_counts_the_address_its_caller_vouches_for() {
    let app = app_with(&[
        ("PHONE_VERIFY__VERIFICATION__MAX_SENDS_PER_IP", "1"),
        ("PHONE_VERIFY__SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let client = api(&app, KEY);
    let send = |from: &'static str, to: &'static str| {
        let request = client
            .client
            .post(app.url("/api/v1/verifications"))
            .bearer_auth(KEY)
            .json(&json!({"to": to, "client_ip": from}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send("198.51.100.1", "+12015550101").await, 201);
    assert_eq!(
        send("198.51.100.2", "+12015550102").await,
        201,
        "another person behind the same backend"
    );
    assert_eq!(
        send("198.51.100.1", "+12015550103").await,
        429,
        "the first person again"
    );
    // Without client_ip, neither the backend's address nor a forwarded one is counted.
    for to in ["+12015550104", "+12015550105"] {
        let reply = client
            .client
            .post(app.url("/api/v1/verifications"))
            .bearer_auth(KEY)
            .header("x-forwarded-for", "198.51.100.1")
            .json(&json!({"to": to}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201, "{to}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_api_and_validates() {
    let app = spawn_app().await;
    let document = reqwest::get(app.url("/api/openapi.json"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert!(parsed["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/verifications",
        "/api/v1/verifications/check",
        "/api/v1/verifications/{id}",
    ] {
        assert!(parsed["paths"][path].is_object(), "{path} missing");
    }
    let Some(python) = python_with("openapi_spec_validator") else {
        return;
    };
    let mut child = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/validate_openapi.py"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("valid"));
}

#[tokio::test]
async fn a_start_for_a_locked_number_is_answered_like_any_other_send_limit() {
    let app = app_with(&[
        ("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0"),
        ("PHONE_VERIFY__VERIFICATION__LOCKOUT_FAILURES", "2"),
    ])
    .await;
    let client = api(&app, KEY);
    client.start(A).await;
    let code = app.code_for(A).await;
    client.check(A, wrong(&code)).await;
    client.check(A, wrong(&code)).await;
    let sent = app.messages_to(A).len();
    let refused = client.start(A).await;
    assert_problem(&refused, 429, "rate_limited");
    assert!(
        !refused.json["detail"]
            .as_str()
            .unwrap()
            .contains("incorrect"),
        "the refusal does not say why: {:?}",
        refused.json
    );
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 3000, "honest about when to retry: {wait}");
    assert_eq!(app.messages_to(A).len(), sent, "nothing sent");
}

#[tokio::test]
async fn the_openapi_document_tells_the_truth_under_schemathesis() {
    let Some(python) = python_with("schemathesis") else {
        return;
    };
    let app = app_with(&[
        ("PHONE_VERIFY__VERIFICATION__MAX_SENDS_PER_IP", "100000000"),
        ("PHONE_VERIFY__VERIFICATION__MAX_SENDS_PER_NUMBER", "1000"),
        ("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0"),
    ])
    .await;
    let support = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support");
    // Every check (two left out, for the reasons in schemathesis.toml), a quick run.
    let output = tokio::process::Command::new(python)
        .current_dir(support)
        .env("PYTHONPATH", support)
        .args([
            "-c",
            "import sys, schemathesis.cli; sys.argv[0] = 'schemathesis'; schemathesis.cli.schemathesis()",
            "--config-file",
            "schemathesis.toml",
            "run",
            &app.url("/api/openapi.json"),
            "--checks",
            "all",
            "--exclude-checks",
            "use_after_free,ensure_resource_availability",
            "-H",
            &format!("Authorization: Bearer {KEY}"),
            "--max-examples",
            "25",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}

#[tokio::test]
async fn concurrent_sends_print_each_message_once_and_whole() {
    // A hundred unconverted sends to one prefix would trip the fraud guard.
    let app = app_with(&[("PHONE_VERIFY__FRAUD__ENABLED", "false")]).await;
    let client = api(&app, KEY);
    let numbers: Vec<String> = (0..100)
        .map(|n| format!("+1201555{:04}", 1000 + n))
        .collect();
    let replies = futures_util::future::join_all(
        numbers
            .iter()
            .map(|to| client.post("/api/v1/verifications", json!({"to": to, "channel": "sms"}))),
    )
    .await;
    assert!(
        replies.iter().all(|r| r.status == 201),
        "{:?}",
        replies[0].json
    );
    for to in &numbers {
        // Printed before its answer; waits only for the test's reader of the pipe.
        let message = app.last_message_to(to).await;
        let lines: Vec<&str> = message.body.lines().collect();
        assert_eq!(lines.len(), 3, "{to}: {:?}", message.body);
        assert!(lines[2].starts_with("@127.0.0.1") && lines[2].contains(" #"));
        assert_eq!(app.messages_to(to).len(), 1, "{to} printed once");
    }
}
