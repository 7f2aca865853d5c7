//! Provider-owned verification: the provider (wiremock standing in for Twilio Verify,
//! Telnyx Verify, Plivo Verify, SignalWire MFA) generates, sends and checks the code;
//! the real binary keeps its own limits in front of it, through every front end.

use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, api, spawn_app_with, twilio_v2};

const A: &str = "+12015550123";
const API_KEY: &str = "owned-test-key-0123456";
const SERVICE: &str = "VA0123456789abcdef0123456789abcdef";
const SID: &str = "VEfedcba9876543210fedcba9876543210";
/// The code the provider "sent": its mock approves this one and no other.
const RIGHT: &str = "424242";
const WRONG: &str = "000000";

async fn spawn(env: Vec<(&'static str, String)>) -> TestApp {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_with(&env).await
}

fn twilio_verify_env(server: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("PHONE_VERIFY__CHANNELS__SMS", "twilio_verify".into()),
        ("PHONE_VERIFY__CHANNELS__CALL", "twilio_verify".into()),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO_VERIFY__ACCOUNT_SID",
            "AC123".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO_VERIFY__AUTH_TOKEN",
            "verify-token".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO_VERIFY__SERVICE_SID",
            SERVICE.into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO_VERIFY__BASE_URL",
            server.uri(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO_VERIFY__TIMEOUT_SECS",
            "2".into(),
        ),
        (
            "PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS",
            "0".into(),
        ),
        ("PHONE_VERIFY__API__KEYS", API_KEY.into()),
    ]
}

/// A Twilio Verify that starts verifications and approves `RIGHT` only.
async fn twilio_verify() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/Services/{SERVICE}/Verifications")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": SID, "service_sid": SERVICE, "status": "pending", "valid": false
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/Services/{SERVICE}/VerificationCheck")))
        .and(body_string_contains(format!("Code={RIGHT}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"sid": SID, "status": "approved", "valid": true})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/Services/{SERVICE}/VerificationCheck")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"sid": SID, "status": "pending", "valid": false})),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

/// The requests `server` received at paths ending in `suffix`, as form text.
async fn received(server: &MockServer, suffix: &str) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path().ends_with(suffix))
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

#[tokio::test]
async fn the_hosted_pages_run_a_twilio_verify_verification_with_our_attempt_count() {
    let server = twilio_verify().await;
    let app = spawn(twilio_verify_env(&server)).await;
    let browser = app.browser();
    let sent = browser.request_code(A, "sms").await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert!(app.messages().is_empty(), "nothing of ours was sent");
    let starts = received(&server, "/Verifications").await;
    assert_eq!(starts, ["To=%2B12015550123&Channel=sms&Locale=en"]);

    let form = browser.get("/verify").await;
    assert!(form.body.contains("5 attempts left"), "{}", form.body);
    let wrong = browser.submit_code(WRONG).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("4 attempts left"), "{}", wrong.body);
    let right = browser.submit_code(RIGHT).await;
    assert_eq!(right.status, 303, "{}", right.body);
    assert_eq!(right.location(), Some("/success"));
    assert_eq!(browser.get("/success").await.status, 200);
    let checks = received(&server, "/VerificationCheck").await;
    assert_eq!(
        checks,
        [
            format!("VerificationSid={SID}&Code={WRONG}"),
            format!("VerificationSid={SID}&Code={RIGHT}"),
        ]
    );
    assert!(
        !app.logs().contains(RIGHT) && !app.logs().contains(WRONG),
        "codes are never logged"
    );
}

#[tokio::test]
async fn our_attempts_and_lockout_hold_before_the_provider_is_asked() {
    let server = twilio_verify().await;
    let mut env = twilio_verify_env(&server);
    env.push(("PHONE_VERIFY__VERIFICATION__MAX_CHECK_ATTEMPTS", "6".into()));
    env.push(("PHONE_VERIFY__VERIFICATION__LOCKOUT_FAILURES", "10".into()));
    let app = spawn(env).await;
    let client = api(&app, API_KEY);

    // Six wrong codes use up the first verification; a seventh, right, is not asked.
    let first = client.start(A).await;
    assert_eq!(first.status, 201, "{:?}", first.json);
    assert_eq!(first.json["send_attempts"][0]["provider"], "twilio_verify");
    for left in (0..6).rev() {
        let reply = client.check(A, WRONG).await;
        assert_eq!(reply.status, 200, "{:?}", reply.json);
        assert_eq!(reply.json["valid"], false);
        assert_eq!(reply.json["attempts_remaining"], left);
    }
    let used_up = client.check(A, RIGHT).await;
    assert_eq!(used_up.status, 429, "{:?}", used_up.json);
    assert_eq!(used_up.json["code"], "max_attempts_reached");
    assert_eq!(received(&server, "/VerificationCheck").await.len(), 6);

    // Four more on a new verification: ten in a row lock the number. The provider would
    // approve the eleventh; it is never asked.
    assert_eq!(client.start(A).await.status, 201);
    for _ in 0..4 {
        assert_eq!(client.check(A, WRONG).await.json["valid"], false);
    }
    let locked = client.check(A, RIGHT).await;
    assert_eq!(locked.status, 429, "{:?}", locked.json);
    assert!(locked.header("retry-after").is_some());
    assert_eq!(received(&server, "/VerificationCheck").await.len(), 10);
    assert_eq!(client.start(A).await.status, 429, "no sends while locked");
    assert_eq!(received(&server, "/Verifications").await.len(), 2);
}

#[tokio::test]
async fn parallel_checks_never_reach_the_provider_more_often_than_the_attempts_allow() {
    let server = twilio_verify().await;
    let app = spawn(twilio_verify_env(&server)).await;
    let client = api(&app, API_KEY);
    assert_eq!(client.start(A).await.status, 201);
    let checks = (0..20).map(|_| client.check(A, WRONG));
    let replies = futures_util::future::join_all(checks).await;
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 429));
    assert_eq!(received(&server, "/VerificationCheck").await.len(), 5);
}

#[tokio::test]
async fn a_provider_that_cannot_check_costs_no_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/Verifications$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": SID})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/VerificationCheck$"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"code": 20503, "message": "Service unavailable"})),
        )
        .mount(&server)
        .await;
    let app = spawn(twilio_verify_env(&server)).await;
    let client = api(&app, API_KEY);
    let started = client.start(A).await;
    let id = started.json["id"].as_str().unwrap().to_string();
    let reply = client.check(A, RIGHT).await;
    assert_eq!(reply.status, 503, "{:?}", reply.json);
    assert_eq!(reply.json["code"], "provider_unavailable");
    let after = client.get(&format!("/api/v1/verifications/{id}")).await;
    assert_eq!(after.json["status"], "pending");
    assert_eq!(after.json["attempts_remaining"], 5);

    let browser = app.browser();
    browser.request_code("+12015550124", "sms").await;
    let page = browser.submit_code(RIGHT).await;
    assert_eq!(page.status, 503);
    assert!(
        page.body.contains("We can’t check codes right now"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_failing_verify_provider_fails_over_to_one_that_sends_our_code() {
    let verify = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(json!({"code": 20503, "message": "down"})),
        )
        .mount(&verify)
        .await;
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC999/Messages.json"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})),
        )
        .mount(&twilio)
        .await;
    let mut env = twilio_verify_env(&verify);
    env.extend([
        ("PHONE_VERIFY__CHANNELS__SMS", "twilio_verify,twilio".into()),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO__ACCOUNT_SID",
            "AC999".into(),
        ),
        ("PHONE_VERIFY__PROVIDERS__TWILIO__AUTH_TOKEN", "t".into()),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO__FROM",
            "+15550001111".into(),
        ),
        ("PHONE_VERIFY__PROVIDERS__TWILIO__BASE_URL", twilio.uri()),
    ]);
    let app = spawn(env).await;
    let client = api(&app, API_KEY);
    let started = client.start(A).await;
    assert_eq!(started.status, 201, "{:?}", started.json);
    let id = started.json["id"].as_str().unwrap();
    let stored = client.get(&format!("/api/v1/verifications/{id}")).await;
    let providers: Vec<_> = stored.json["send_attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap(),
                a["delivery_status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(providers, [("twilio_verify", "failed"), ("twilio", "sent")]);
    let body = received(&twilio, "/Messages.json").await.remove(0);
    let text: String = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "Body")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let code: String = text.rsplit('#').next().unwrap().to_string();
    let checked = client.check(A, &code).await;
    assert_eq!(checked.json["valid"], true, "{:?}", checked.json);
    assert!(
        received(&verify, "/VerificationCheck").await.is_empty(),
        "our own code is checked here"
    );
}

#[tokio::test]
async fn the_twilio_compatible_api_and_the_tutorial_routes_use_the_provider_too() {
    let server = twilio_verify().await;
    let mut env = twilio_verify_env(&server);
    env.push(("PHONE_VERIFY__COMPAT__SIGNALWIRE_ROUTES", "true".into()));
    env.extend(twilio_v2::ENV.map(|(key, value)| (key, value.to_string())));
    let app = spawn(env).await;
    let created = twilio_v2::post(
        &app,
        "Verifications",
        &[("To", A), ("Channel", "call"), ("Locale", "es-MX")],
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    assert_eq!(created.json["locale"], "es");
    assert_eq!(
        received(&server, "/Verifications").await,
        ["To=%2B12015550123&Channel=call&Locale=es"]
    );
    let wrong = twilio_v2::post(&app, "VerificationCheck", &[("To", A), ("Code", WRONG)]).await;
    assert_eq!(
        (wrong.status, wrong.json["status"].as_str()),
        (200, Some("pending"))
    );
    let right = twilio_v2::post(&app, "VerificationCheck", &[("To", A), ("Code", RIGHT)]).await;
    assert_eq!(
        (right.status, right.json["status"].as_str()),
        (200, Some("approved"))
    );

    // The SignalWire tutorial's routes.
    let client = reqwest::Client::new();
    let other = "+12015550125";
    let sent = client
        .get(app.url(&format!(
            "/request-auth?number={}",
            other.replace('+', "%2B")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let validate = |code: &str| {
        client
            .post(app.url("/validate-auth"))
            .form(&[("number", other), ("auth_code", code)])
            .send()
    };
    assert_eq!(validate(WRONG).await.unwrap().status(), 403);
    assert_eq!(validate(RIGHT).await.unwrap().status(), 200);
}

/// A provider's mock that starts at `start_path` (answering `start_body`) and, at
/// `check_path`, approves a request whose body contains `RIGHT` with `approved`, and
/// answers any other with `wrong`.
struct OwnedMock {
    start_path: &'static str,
    start_status: u16,
    start_body: serde_json::Value,
    check_path: &'static str,
    approved: (u16, serde_json::Value),
    wrong: (u16, serde_json::Value),
}

async fn mock(m: OwnedMock) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(m.start_path))
        .respond_with(ResponseTemplate::new(m.start_status).set_body_json(m.start_body))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(m.check_path))
        .and(body_string_contains(RIGHT))
        .respond_with(ResponseTemplate::new(m.approved.0).set_body_json(m.approved.1))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(m.check_path))
        .respond_with(ResponseTemplate::new(m.wrong.0).set_body_json(m.wrong.1))
        .with_priority(2)
        .mount(&server)
        .await;
    // Plivo reads a refused validation from the session.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "in-progress"})))
        .mount(&server)
        .await;
    server
}

/// Starts by SMS and by call through the API, then checks a wrong and a right code.
async fn round_trip(app: &TestApp, provider: &str, server: &MockServer, check_path: &str) {
    let client = api(app, API_KEY);
    for (to, channel) in [(A, "sms"), ("+12015550126", "call")] {
        let started = client
            .post(
                "/api/v1/verifications",
                json!({"to": to, "channel": channel, "locale": "de"}),
            )
            .await;
        assert_eq!(started.status, 201, "{provider}: {:?}", started.json);
        assert_eq!(started.json["send_attempts"][0]["provider"], provider);
        let wrong = client.check(to, WRONG).await;
        assert_eq!(
            (wrong.status, &wrong.json["valid"]),
            (200, &json!(false)),
            "{provider}: {:?}",
            wrong.json
        );
        let right = client.check(to, RIGHT).await;
        assert_eq!(right.json["valid"], true, "{provider}: {:?}", right.json);
        assert_eq!(right.json["status"], "approved");
    }
    let checks = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == check_path)
        .count();
    assert_eq!(checks, 4, "{provider}");
    assert!(app.messages().is_empty(), "{provider} sent its own code");
}

#[tokio::test]
async fn telnyx_verify_starts_and_checks_through_the_api() {
    let server = mock(OwnedMock {
        start_path: "/v2/verifications/sms",
        start_status: 200,
        start_body: json!({"data": {"id": "tv-1", "status": "pending"}}),
        check_path: "/v2/verifications/tv-1/actions/verify",
        approved: (200, json!({"data": {"response_code": "accepted"}})),
        wrong: (200, json!({"data": {"response_code": "rejected"}})),
    })
    .await;
    Mock::given(method("POST"))
        .and(path("/v2/verifications/call"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "tv-1"}})))
        .mount(&server)
        .await;
    let app = spawn(vec![
        ("PHONE_VERIFY__CHANNELS__SMS", "telnyx_verify".into()),
        ("PHONE_VERIFY__CHANNELS__CALL", "telnyx_verify".into()),
        (
            "PHONE_VERIFY__PROVIDERS__TELNYX_VERIFY__API_KEY",
            "KEY".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__TELNYX_VERIFY__VERIFY_PROFILE_ID",
            "profile-1".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__TELNYX_VERIFY__BASE_URL",
            server.uri(),
        ),
        ("PHONE_VERIFY__API__KEYS", API_KEY.into()),
    ])
    .await;
    round_trip(
        &app,
        "telnyx_verify",
        &server,
        "/v2/verifications/tv-1/actions/verify",
    )
    .await;
}

#[tokio::test]
async fn plivo_verify_starts_and_checks_through_the_api() {
    let uuid = "8e712097-8090-4644-81e7-8f4265d8354e";
    let server = mock(OwnedMock {
        start_path: "/v1/Account/MAXXXX/Verify/Session/",
        start_status: 202,
        start_body: json!({"api_id": "a", "message": "Session initiated", "session_uuid": uuid}),
        check_path: "/v1/Account/MAXXXX/Verify/Session/8e712097-8090-4644-81e7-8f4265d8354e/",
        approved: (
            200,
            json!({"message": "session validated successfully.", "session_uuid": uuid}),
        ),
        wrong: (400, json!({"api_id": "a", "error": "Invalid OTP"})),
    })
    .await;
    let app = spawn(vec![
        ("PHONE_VERIFY__CHANNELS__SMS", "plivo_verify".into()),
        ("PHONE_VERIFY__CHANNELS__CALL", "plivo_verify".into()),
        (
            "PHONE_VERIFY__PROVIDERS__PLIVO_VERIFY__AUTH_ID",
            "MAXXXX".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__PLIVO_VERIFY__AUTH_TOKEN",
            "plivo-token".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__PLIVO_VERIFY__BASE_URL",
            server.uri(),
        ),
        ("PHONE_VERIFY__API__KEYS", API_KEY.into()),
    ])
    .await;
    round_trip(
        &app,
        "plivo_verify",
        &server,
        &format!("/v1/Account/MAXXXX/Verify/Session/{uuid}/"),
    )
    .await;
}

#[tokio::test]
async fn signalwire_mfa_starts_and_checks_through_the_api() {
    let server = mock(OwnedMock {
        start_path: "/api/relay/rest/mfa/sms",
        start_status: 200,
        start_body: json!({"id": "mfa-1", "success": true, "channel": "sms"}),
        check_path: "/api/relay/rest/mfa/mfa-1/verify",
        approved: (200, json!({"success": true})),
        wrong: (200, json!({"success": false})),
    })
    .await;
    Mock::given(method("POST"))
        .and(path("/api/relay/rest/mfa/call"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "mfa-1", "success": true})),
        )
        .mount(&server)
        .await;
    let app = spawn(vec![
        ("PHONE_VERIFY__CHANNELS__SMS", "signalwire_mfa".into()),
        ("PHONE_VERIFY__CHANNELS__CALL", "signalwire_mfa".into()),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE_MFA__PROJECT_ID",
            "p-uuid".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE_MFA__API_TOKEN",
            "PTtoken".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE_MFA__SPACE_URL",
            "example.signalwire.com".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE_MFA__BASE_URL",
            server.uri(),
        ),
        ("PHONE_VERIFY__API__KEYS", API_KEY.into()),
    ])
    .await;
    round_trip(
        &app,
        "signalwire_mfa",
        &server,
        "/api/relay/rest/mfa/mfa-1/verify",
    )
    .await;
    let start = server.received_requests().await.unwrap().remove(0);
    let body: serde_json::Value = serde_json::from_slice(&start.body).unwrap();
    assert_eq!(
        body["message"], "Ihr Code für phone-verify lautet:",
        "in the person's language"
    );
}

#[tokio::test]
async fn check_config_knows_the_verify_providers() {
    let refused = crate::helpers::command(&[
        ("PHONE_VERIFY__CHANNELS__SMS", "twilio_verify"),
        ("PHONE_VERIFY__PROVIDERS__TWILIO_VERIFY__ACCOUNT_SID", "AC1"),
        ("PHONE_VERIFY__PROVIDERS__TWILIO_VERIFY__AUTH_TOKEN", "t"),
    ])
    .arg("check-config")
    .output()
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("providers.twilio_verify.service_sid"),
        "{stderr}"
    );

    let hex = crate::helpers::command(&[
        ("PHONE_VERIFY__CHANNELS__CALL", "signalwire_mfa"),
        ("PHONE_VERIFY__PROVIDERS__SIGNALWIRE_MFA__PROJECT_ID", "p"),
        ("PHONE_VERIFY__PROVIDERS__SIGNALWIRE_MFA__API_TOKEN", "t"),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE_MFA__SPACE_URL",
            "x.signalwire.com",
        ),
        ("PHONE_VERIFY__VERIFICATION__CODE_ALPHABET", "hex"),
    ])
    .arg("check-config")
    .output()
    .await
    .unwrap();
    assert_eq!(hex.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&hex.stderr);
    assert!(stderr.contains("verification.code_alphabet"), "{stderr}");

    let phlo = crate::helpers::command(&[
        ("PHONE_VERIFY__CHANNELS__SMS", "plivo_phlo"),
        ("PHONE_VERIFY__PROVIDERS__PLIVO_PHLO__AUTH_ID", "MA1"),
        ("PHONE_VERIFY__PROVIDERS__PLIVO_PHLO__AUTH_TOKEN", "t"),
        ("PHONE_VERIFY__PROVIDERS__PLIVO_PHLO__PHLO_ID", "p-1"),
        ("PHONE_VERIFY__PROVIDERS__PLIVO_PHLO__FROM", "+14155550100"),
    ])
    .arg("check-config")
    .output()
    .await
    .unwrap();
    assert_eq!(
        phlo.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&phlo.stderr)
    );
}
