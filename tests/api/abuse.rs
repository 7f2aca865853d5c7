//! Limits that fit real integrations, and the guard against SMS pumping and runaway
//! cost: per-person addresses from the APIs, test numbers, the fraud guard, the
//! per-country cap and the daily budget.

use serde_json::json;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ApiClient, Reply, TestApp, api, python_with, spawn_app_with, twilio_v2};

const KEY: &str = "abuse-test-key-0123456789";

async fn app_with(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![("PHONE_VERIFY__API__KEYS", KEY)];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.json);
    assert_eq!(reply.json["code"], code, "{:?}", reply.json);
}

async fn start_from(client: &ApiClient, to: &str, ip: &str) -> Reply {
    client
        .post(
            "/api/v1/verifications",
            json!({"to": to, "channel": "sms", "client_ip": ip}),
        )
        .await
}

/// A number in the prefix `+1201{exchange}` (a prefix is a number without its last 4
/// digits).
fn in_prefix(exchange: u32, line: u32) -> String {
    format!("+1201{exchange}{line:04}")
}

#[tokio::test]
async fn a_backend_starting_200_verifications_with_default_limits_is_not_throttled() {
    let app = app_with(&[]).await;
    let client = api(&app, KEY);
    for i in 0..200 {
        let to = in_prefix(200 + i, 123);
        let reply = client.start(&to).await;
        assert_eq!(reply.status, 201, "start {i}: {:?}", reply.json);
    }
    assert_eq!(app.messages().len(), 200);
}

#[tokio::test]
async fn the_26th_send_from_one_vouched_address_is_refused() {
    let app = app_with(&[]).await;
    let client = api(&app, KEY);
    for i in 0..25 {
        let reply = start_from(&client, &in_prefix(200 + i, 123), "203.0.113.7").await;
        assert_eq!(reply.status, 201, "start {i}: {:?}", reply.json);
    }
    let refused = start_from(&client, &in_prefix(300, 123), "203.0.113.7").await;
    assert_problem(&refused, 429, "rate_limited");
    assert!(refused.header("retry-after").is_some());
    assert!(app.messages_to(&in_prefix(300, 123)).is_empty());
    let other = start_from(&client, &in_prefix(301, 123), "2001:db8::7").await;
    assert_eq!(other.status, 201, "another person: {:?}", other.json);
    for bad in ["not an address", "", "203.0.113.999", "2001:db8::g"] {
        assert_problem(
            &start_from(&client, &in_prefix(302, 123), bad).await,
            400,
            "invalid_parameter",
        );
    }
    assert!(app.messages_to(&in_prefix(302, 123)).is_empty());
}

async fn compat_app(extra: &[(&str, &str)]) -> TestApp {
    let mut env = twilio_v2::ENV.to_vec();
    env.extend_from_slice(extra);
    app_with(&env).await
}

async fn v2_start(app: &TestApp, form: &[(&str, &str)]) -> Reply {
    twilio_v2::post(app, "Verifications", form).await
}

#[tokio::test]
async fn twilios_library_passes_the_persons_address_in_rate_limits() {
    let Some(python) = python_with("twilio") else {
        return;
    };
    let app = compat_app(&[]).await;
    let output = tokio::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/twilio_rate_limits.py"
        ))
        .args([
            &format!("http://{}", app.address),
            twilio_v2::ACCOUNT,
            twilio_v2::TOKEN,
            twilio_v2::SERVICE,
            "203.0.113.9",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["created 25", "refused 429 60203", "another address pending"]
    );
    // A malformed RateLimits is Twilio's invalid parameter, and sends nothing.
    for bad in ["not json", "[1]", "{\"end_user_ip_address\": \"nowhere\"}"] {
        let reply = v2_start(
            &app,
            &[
                ("To", "+12019990123"),
                ("Channel", "sms"),
                ("RateLimits", bad),
            ],
        )
        .await;
        assert_eq!(
            (reply.status, reply.json["code"].as_u64()),
            (400, Some(60200)),
            "{bad}"
        );
    }
    assert!(app.messages_to("+12019990123").is_empty());
}

#[tokio::test]
async fn a_test_number_is_never_sent_anything_and_takes_its_code() {
    let provider = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1"})))
        .mount(&provider)
        .await;
    let base = provider.uri();
    let app = app_with(&[
        ("PHONE_VERIFY__CHANNELS__SMS", "twilio"),
        ("PHONE_VERIFY__CHANNELS__CALL", "twilio"),
        ("PHONE_VERIFY__PROVIDERS__TWILIO__ACCOUNT_SID", "AC123"),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO__AUTH_TOKEN",
            "twilio-token",
        ),
        ("PHONE_VERIFY__PROVIDERS__TWILIO__FROM", "+15550001111"),
        ("PHONE_VERIFY__PROVIDERS__TWILIO__BASE_URL", &base),
        (
            "PHONE_VERIFY__VERIFICATION__TEST_NUMBERS",
            "+15005550006=246810",
        ),
        ("PHONE_VERIFY__VERIFICATION__MAX_CHECK_ATTEMPTS", "2"),
    ])
    .await;
    assert!(
        app.logs().contains("verification.test_numbers is set"),
        "{}",
        app.logs()
    );
    let client = api(&app, KEY);
    let started = client.start("+15005550006").await;
    assert_eq!(started.status, 201, "{:?}", started.json);
    assert_eq!(started.json["send_attempts"][0]["provider"], "test");
    assert_eq!(started.json["send_attempts"][0]["delivery_status"], "sent");
    // Every other rule holds: the cooldown, the attempts, single use.
    assert_problem(&client.start("+15005550006").await, 429, "rate_limited");
    let wrong = client.check("+15005550006", "000000").await;
    assert_eq!(wrong.json["valid"], false);
    let right = client.check("+15005550006", "246810").await;
    assert_eq!(right.json["valid"], true, "{:?}", right.json);
    assert_problem(
        &client.check("+15005550006", "246810").await,
        404,
        "not_found",
    );
    assert!(
        provider.received_requests().await.unwrap().is_empty(),
        "no provider request"
    );
    // An ordinary number still goes to the provider.
    assert_eq!(client.start("+12015550123").await.status, 201);
    assert_eq!(provider.received_requests().await.unwrap().len(), 1);
}

/// Starts `count` verifications of numbers in one prefix, approving the first `approve`.
async fn send_to_prefix(app: &TestApp, exchange: u32, count: u32, approve: u32) {
    let client = api(app, KEY);
    for line in 0..count {
        let to = in_prefix(exchange, line);
        let reply = client.start(&to).await;
        assert_eq!(reply.status, 201, "{to}: {:?}", reply.json);
        if line < approve {
            let code = app.code_for(&to).await;
            assert_eq!(client.check(&to, &code).await.json["valid"], true);
        }
    }
}

#[tokio::test]
async fn a_prefix_that_never_converts_is_blocked_and_another_still_works() {
    let app = compat_app(&[]).await;
    let client = api(&app, KEY);
    // The defaults: 30 sends in an hour with under 20% approved block the prefix.
    send_to_prefix(&app, 555, 30, 0).await;
    let blocked = client.start(&in_prefix(555, 100)).await;
    assert_problem(&blocked, 403, "fraud_blocked");
    assert!(
        app.messages_to(&in_prefix(555, 100)).is_empty(),
        "nothing sent"
    );
    // Every front end refuses it.
    let v2 = v2_start(&app, &[("To", &in_prefix(555, 101)), ("Channel", "sms")]).await;
    assert_eq!((v2.status, v2.json["code"].as_u64()), (403, Some(60410)));
    let page = app
        .browser()
        .request_code(&in_prefix(555, 102), "sms")
        .await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("can’t send a code to this number now"),
        "{}",
        page.body
    );
    // Another prefix is not affected, and a prefix whose codes are used stays open.
    assert_eq!(client.start(&in_prefix(556, 0)).await.status, 201);
    send_to_prefix(&app, 557, 30, 6).await;
    assert_eq!(client.start(&in_prefix(557, 100)).await.status, 201);
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("phone_verify_fraud_blocks_total{country=\"US\"} 3"),
        "{metrics}"
    );
    let logs = app.logs();
    assert!(logs.contains("prefix blocked for low conversion"), "{logs}");
    assert!(!logs.contains("+1201555"), "the prefix is masked in logs");
}

#[tokio::test]
async fn sends_to_one_country_are_capped_per_hour() {
    let app = app_with(&[("PHONE_VERIFY__FRAUD__MAX_SENDS_PER_COUNTRY_PER_HOUR", "3")]).await;
    let client = api(&app, KEY);
    for i in 0..3 {
        assert_eq!(client.start(&in_prefix(200 + i, 1)).await.status, 201);
    }
    let capped = client.start(&in_prefix(210, 1)).await;
    assert_problem(&capped, 429, "rate_limited");
    let wait: u64 = capped.header("retry-after").unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&wait), "{wait}");
    assert_eq!(
        client.start("+447400123456").await.status,
        201,
        "another country"
    );
}

fn seconds_to_utc_midnight() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    86_400 - now % 86_400
}

#[tokio::test]
async fn the_budget_refuses_the_send_that_would_exceed_it() {
    let app = app_with(&[
        ("PHONE_VERIFY__SPEND__DAILY_LIMIT", "0.02"),
        ("PHONE_VERIFY__SPEND__COUNTRIES__GB__SMS", "0.05"),
    ])
    .await;
    let client = api(&app, KEY);
    // 0.0079 each: two fit in 0.02, a third would not.
    assert_eq!(client.start(&in_prefix(200, 1)).await.status, 201);
    assert_eq!(client.start(&in_prefix(201, 1)).await.status, 201);
    let refused = client.start(&in_prefix(202, 1)).await;
    assert_problem(&refused, 429, "spend_limit_reached");
    let wait: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (wait - seconds_to_utc_midnight() as i64).abs() <= 5,
        "until midnight UTC: {wait}"
    );
    assert!(app.messages_to(&in_prefix(202, 1)).is_empty());
    // A country's own cost counts: GB's 0.05 alone exceeds what is left.
    assert_problem(
        &client.start("+447400123456").await,
        429,
        "spend_limit_reached",
    );
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains("phone_verify_estimated_spend_total{country=\"US\",channel=\"sms\"} 0.0158"),
        "{metrics}"
    );
}
