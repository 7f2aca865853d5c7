//! The real binary delivering through providers (wiremock standing in for their APIs),
//! failing over, serving call instructions and accepting signed delivery reports.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, spawn_app_with};

const A: &str = "+12015550123";
/// Reachable-looking, but plain http so the test browser keeps its cookie.
const PUBLIC: &str = "http://verify.example.com";
const API_KEY: &str = "providers-test-key-0123";

fn twilio_env(server: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("PHONE_VERIFY__SERVER__PUBLIC_URL", PUBLIC.into()),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO__ACCOUNT_SID",
            "AC123".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO__AUTH_TOKEN",
            "twilio-token".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__TWILIO__FROM",
            "+15550001111".into(),
        ),
        ("PHONE_VERIFY__PROVIDERS__TWILIO__BASE_URL", server.uri()),
        ("PHONE_VERIFY__PROVIDERS__TWILIO__TIMEOUT_SECS", "2".into()),
    ]
}

fn plivo_env(server: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("PHONE_VERIFY__PROVIDERS__PLIVO__AUTH_ID", "MAXXXX".into()),
        (
            "PHONE_VERIFY__PROVIDERS__PLIVO__AUTH_TOKEN",
            "plivo-token".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__PLIVO__FROM",
            "+14155550100".into(),
        ),
        ("PHONE_VERIFY__PROVIDERS__PLIVO__BASE_URL", server.uri()),
    ]
}

async fn spawn(env: Vec<(&'static str, String)>) -> TestApp {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_with(&env).await
}

async fn twilio_answering(status: u16, body: serde_json::Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    server
}

/// The form fields of the last request the provider received.
async fn last_form(server: &MockServer) -> Vec<(String, String)> {
    let requests = server.received_requests().await.unwrap();
    let last = requests.last().expect("the provider received a request");
    url::form_urlencoded::parse(&last.body)
        .into_owned()
        .collect()
}

fn field(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name} in {form:?}"))
}

fn twilio_signature(key: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let message: String = std::iter::once(url.to_string())
        .chain(sorted.iter().map(|(k, v)| format!("{k}{v}")))
        .collect();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn the_hosted_flow_sends_through_twilio_and_the_delivered_code_verifies() {
    let server = twilio_answering(
        201,
        serde_json::json!({"sid": "SM0001", "status": "queued"}),
    )
    .await;
    let mut env = twilio_env(&server);
    env.push(("PHONE_VERIFY__CHANNELS__SMS", "twilio".into()));
    let app = spawn(env).await;
    let browser = app.browser();
    assert_eq!(
        browser.request_code(A, "sms").await.location(),
        Some("/verify")
    );

    let form = last_form(&server).await;
    assert_eq!(field(&form, "To"), A);
    assert_eq!(field(&form, "From"), "+15550001111");
    let body = field(&form, "Body");
    let code = body.rsplit_once(" #").unwrap().1.to_string();
    assert!(
        body.ends_with(&format!("\n\n@verify.example.com #{code}")),
        "{body}"
    );
    let callback = field(&form, "StatusCallback");
    assert!(
        callback.starts_with("http://verify.example.com/webhooks/twilio?v="),
        "{callback}"
    );
    assert!(!callback.contains(&code));
    assert!(app.messages().is_empty(), "nothing printed to the console");

    assert_eq!(
        browser.submit_code(&code).await.location(),
        Some("/success")
    );
    assert!(!app.logs().contains(&code), "the code is never logged");
}

#[tokio::test]
async fn a_failing_first_provider_fails_over_to_the_second() {
    let plivo = twilio_answering(
        503,
        serde_json::json!({"api_id": "x", "error": "unavailable"}),
    )
    .await;
    let twilio = twilio_answering(201, serde_json::json!({"sid": "SM0002"})).await;
    let mut env = twilio_env(&twilio);
    env.extend(plivo_env(&plivo));
    env.push(("PHONE_VERIFY__CHANNELS__SMS", "plivo,twilio".into()));
    let app = spawn(env).await;
    let browser = app.browser();
    assert_eq!(
        browser.request_code(A, "sms").await.location(),
        Some("/verify")
    );
    assert_eq!(plivo.received_requests().await.unwrap().len(), 1);
    let code = field(&last_form(&twilio).await, "Body")
        .rsplit_once(" #")
        .unwrap()
        .1
        .to_string();
    assert_eq!(
        browser.submit_code(&code).await.location(),
        Some("/success")
    );
    assert!(
        app.logs().contains("plivo"),
        "the failure is logged with its provider"
    );
}

#[tokio::test]
async fn a_rejected_number_stops_without_failover() {
    let twilio = twilio_answering(400, serde_json::json!({"code": 21211, "message": "The 'To' number 2015550123 is not a valid phone number.", "status": 400})).await;
    let plivo = twilio_answering(202, serde_json::json!({"message_uuid": ["m"]})).await;
    let mut env = twilio_env(&twilio);
    env.extend(plivo_env(&plivo));
    env.push(("PHONE_VERIFY__CHANNELS__SMS", "twilio,plivo".into()));
    let app = spawn(env).await;
    let page = app.browser().request_code(A, "sms").await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains("can’t receive verification codes"),
        "{}",
        page.body
    );
    assert!(
        plivo.received_requests().await.unwrap().is_empty(),
        "no failover"
    );
    assert!(app.logs().contains("21211"));
    assert!(
        !app.logs().contains("2015550123"),
        "numbers are masked in logs"
    );
}

#[tokio::test]
async fn when_every_provider_fails_the_person_is_told_with_a_502() {
    let twilio = twilio_answering(
        500,
        serde_json::json!({"code": 20500, "message": "Internal"}),
    )
    .await;
    let plivo = twilio_answering(429, serde_json::json!({"error": "too many"})).await;
    let mut env = twilio_env(&twilio);
    env.extend(plivo_env(&plivo));
    env.push(("PHONE_VERIFY__CHANNELS__SMS", "twilio,plivo".into()));
    let app = spawn(env).await;
    let page = app.browser().request_code(A, "sms").await;
    assert_eq!(page.status, 502);
    assert!(
        page.body.contains("couldn’t send your code"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_signalwire_call_reads_the_code_from_a_signed_unguessable_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/laml/2010-04-01/Accounts/proj/Calls"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"sid": "call-1"})),
        )
        .mount(&server)
        .await;
    let app = spawn(vec![
        ("PHONE_VERIFY__SERVER__PUBLIC_URL", PUBLIC.into()),
        ("PHONE_VERIFY__CHANNELS__CALL", "signalwire".into()),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE__PROJECT_ID",
            "proj".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE__API_TOKEN",
            "PT".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE__SPACE_URL",
            "example.signalwire.com".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE__FROM",
            "+15550002222".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE__SIGNING_KEY",
            "PSKsecret".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__SIGNALWIRE__BASE_URL",
            server.uri(),
        ),
    ])
    .await;
    let browser = app.browser();
    assert_eq!(
        browser.request_code(A, "call").await.location(),
        Some("/verify")
    );
    let answer_url = field(&last_form(&server).await, "Url");
    let path_and_query = answer_url
        .strip_prefix(PUBLIC)
        .expect("the answer URL is public");
    assert!(path_and_query.starts_with("/voice/"));
    assert!(
        path_and_query.len() > "/voice/".len() + 64,
        "an unguessable id"
    );

    let http = reqwest::Client::new();
    let unsigned = http.get(app.url(path_and_query)).send().await.unwrap();
    assert_eq!(unsigned.status(), 403);
    let forged = http
        .get(app.url(path_and_query))
        .header("x-signalwire-signature", "bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    let signature = twilio_signature("PSKsecret", &answer_url, &[]);
    let signed = http
        .get(app.url(path_and_query))
        .header("x-signalwire-signature", &signature)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    assert!(
        signed.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("xml")
    );
    let xml = signed.text().await.unwrap();
    let spoken = xml
        .split("code is ")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        xml.matches(&format!("code is {spoken}.")).count(),
        2,
        "{xml}"
    );
    let code = spoken.replace(", ", "");
    assert_eq!(code.len(), 6);
    assert!(!answer_url.contains(&code), "the code is not in the URL");

    let unknown = http.get(app.url("/voice/00000000000000000000000000000000ffffffffffffffffffffffffffffffff?provider=signalwire"));
    let signature_for_unknown = twilio_signature(
        "PSKsecret",
        &format!(
            "{PUBLIC}/voice/00000000000000000000000000000000ffffffffffffffffffffffffffffffff?provider=signalwire"
        ),
        &[],
    );
    assert_eq!(
        unknown
            .header("x-signalwire-signature", signature_for_unknown)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    assert_eq!(
        browser.submit_code(&code).await.location(),
        Some("/success")
    );
    let after = http
        .get(app.url(path_and_query))
        .header("x-signalwire-signature", &signature)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        404,
        "the call id dies with the verification"
    );
}

#[tokio::test]
async fn twilio_calls_carry_the_instructions_inline() {
    let server = twilio_answering(201, serde_json::json!({"sid": "CA1"})).await;
    let mut env = twilio_env(&server);
    env.push(("PHONE_VERIFY__CHANNELS__CALL", "twilio".into()));
    let app = spawn(env).await;
    let browser = app.browser();
    assert_eq!(
        browser.request_code(A, "call").await.location(),
        Some("/verify")
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[0].url.path(),
        "/2010-04-01/Accounts/AC123/Calls.json"
    );
    let form = last_form(&server).await;
    let twiml = field(&form, "Twiml");
    assert!(
        twiml.starts_with("<?xml")
            && twiml.contains("<Say>")
            && twiml.ends_with("<Hangup/></Response>"),
        "{twiml}"
    );
    assert!(form.iter().all(|(k, _)| k != "Url"));
    let code = twiml
        .split("code is ")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .replace(", ", "");
    assert_eq!(
        browser.submit_code(&code).await.location(),
        Some("/success")
    );
}

#[tokio::test]
async fn signed_twilio_status_callbacks_are_recorded_and_forged_ones_refused() {
    let server = twilio_answering(201, serde_json::json!({"sid": "SM0009"})).await;
    let mut env = twilio_env(&server);
    env.push(("PHONE_VERIFY__CHANNELS__SMS", "twilio".into()));
    env.push(("PHONE_VERIFY__API__KEYS", API_KEY.into()));
    let app = spawn(env).await;
    app.browser().request_code(A, "sms").await;
    let callback = field(&last_form(&server).await, "StatusCallback");
    let id = callback.rsplit_once("?v=").unwrap().1.to_string();
    let delivery_status = || async {
        let reply = crate::helpers::api(&app, API_KEY)
            .get(&format!("/api/v1/verifications/{id}"))
            .await;
        reply.json["send_attempts"][0]["delivery_status"].clone()
    };
    assert_eq!(delivery_status().await, "sent", "before any report");
    let path_and_query = callback.strip_prefix(PUBLIC).unwrap();
    let params = [
        ("MessageSid", "SM0009"),
        ("MessageStatus", "delivered"),
        ("AccountSid", "AC123"),
    ];
    let http = reqwest::Client::new();
    let post = |signature: String, params: Vec<(&'static str, &'static str)>| {
        http.post(app.url(path_and_query))
            .header("x-twilio-signature", signature)
            .form(&params)
            .send()
    };
    let good = twilio_signature("twilio-token", &callback, &params);
    assert_eq!(
        post(good.clone(), params.to_vec()).await.unwrap().status(),
        204
    );
    let tampered = vec![
        ("MessageSid", "SM0009"),
        ("MessageStatus", "failed"),
        ("AccountSid", "AC123"),
    ];
    assert_eq!(post(good, tampered).await.unwrap().status(), 403);
    let wrong_key = twilio_signature("not-the-token", &callback, &params);
    assert_eq!(
        post(wrong_key, params.to_vec()).await.unwrap().status(),
        403
    );
    let unsigned = http
        .post(app.url(path_and_query))
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    assert!(
        app.logs().contains("status=\"delivered\"") || app.logs().contains("status=delivered"),
        "{}",
        app.logs()
    );
    assert_eq!(
        delivery_status().await,
        "delivered",
        "the signed report is recorded; the forged ones changed nothing"
    );
}

#[tokio::test]
async fn telnyx_status_callbacks_need_a_fresh_ed25519_signature() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/messages"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": {"id": "msg-1"}})),
        )
        .mount(&server)
        .await;
    let seed = [7u8; 32];
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public =
        base64::engine::general_purpose::STANDARD.encode(signing.verifying_key().to_bytes());
    let app = spawn(vec![
        ("PHONE_VERIFY__SERVER__PUBLIC_URL", PUBLIC.into()),
        ("PHONE_VERIFY__CHANNELS__SMS", "telnyx".into()),
        ("PHONE_VERIFY__PROVIDERS__TELNYX__API_KEY", "KEY".into()),
        (
            "PHONE_VERIFY__PROVIDERS__TELNYX__FROM",
            "+18445550001".into(),
        ),
        ("PHONE_VERIFY__PROVIDERS__TELNYX__PUBLIC_KEY", public),
        ("PHONE_VERIFY__PROVIDERS__TELNYX__BASE_URL", server.uri()),
    ])
    .await;
    app.browser().request_code(A, "sms").await;
    let requests = server.received_requests().await.unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    let callback = sent["webhook_url"].as_str().unwrap().to_string();
    let path_and_query = callback.strip_prefix(PUBLIC).unwrap().to_string();
    let body = r#"{"data":{"event_type":"message.finalized","payload":{"id":"msg-1","to":[{"status":"delivered"}]}}}"#;
    let send = |timestamp: u64| {
        use ed25519_dalek::Signer;
        let signature = signing.sign(format!("{timestamp}|{body}").as_bytes());
        reqwest::Client::new()
            .post(app.url(&path_and_query))
            .header("content-type", "application/json")
            .header("telnyx-timestamp", timestamp.to_string())
            .header(
                "telnyx-signature-ed25519",
                base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
            )
            .body(body)
            .send()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(send(now).await.unwrap().status(), 204);
    assert_eq!(send(now - 301).await.unwrap().status(), 403, "stale");
}

#[tokio::test]
async fn providers_without_credentials_stop_start_up_naming_the_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("PHONE_VERIFY__CHANNELS__CALL", "signalwire")],
            "providers.signalwire.project_id",
        ),
        (
            &[
                ("PHONE_VERIFY__CHANNELS__SMS", "plivo"),
                ("PHONE_VERIFY__PROVIDERS__PLIVO__AUTH_ID", "MA1"),
            ],
            "providers.plivo.auth_token",
        ),
        (
            &[
                ("PHONE_VERIFY__CHANNELS__CALL", "telnyx"),
                ("PHONE_VERIFY__PROVIDERS__TELNYX__API_KEY", "k"),
                ("PHONE_VERIFY__PROVIDERS__TELNYX__FROM", "+18445550001"),
            ],
            "providers.telnyx.texml_application_id",
        ),
    ];
    for (env, key) in cases {
        let output = crate::helpers::command(env)
            .arg("check-config")
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{env:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_provider_message_cannot_forge_log_lines_or_leak_the_number() {
    let server = twilio_answering(
        400,
        serde_json::json!({
            "code": 21606,
            "message": "Refused for +1 201-555-0123\r\n2026-12-01T00:00:00.000000Z  INFO phone_verify: forged line\u{1b}[2K"
        }),
    )
    .await;
    let mut env = twilio_env(&server);
    env.push(("PHONE_VERIFY__CHANNELS__SMS", "twilio".into()));
    let app = spawn(env).await;
    let page = app.browser().request_code(A, "sms").await;
    assert_eq!(page.status, 502);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = app.logs();
    assert!(logs.contains("code 21606"), "{logs}");
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("INFO phone_verify: forged") && !l.contains("send failed")),
        "a forged line: {logs}"
    );
    assert!(!logs.contains('\u{1b}'), "raw escape sequence in {logs}");
    assert!(
        !logs.contains("555-0123") && !logs.contains("5550123"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_plivo_phlo_delivers_our_code_by_sms_and_by_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path_regex(
            r"^/v1/account/MAXXXX/phlo/4c1a9f23-phlo/?$",
        ))
        .and(wiremock::matchers::basic_auth("MAXXXX", "phlo-token"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "phlo_id": "4c1a9f23-phlo", "api_id": "run-1", "message": "executed"
        })))
        .mount(&server)
        .await;
    let app = spawn(vec![
        ("PHONE_VERIFY__CHANNELS__SMS", "plivo_phlo".into()),
        ("PHONE_VERIFY__CHANNELS__CALL", "plivo_phlo".into()),
        (
            "PHONE_VERIFY__PROVIDERS__PLIVO_PHLO__AUTH_ID",
            "MAXXXX".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__PLIVO_PHLO__AUTH_TOKEN",
            "phlo-token".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__PLIVO_PHLO__PHLO_ID",
            "4c1a9f23-phlo".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__PLIVO_PHLO__FROM",
            "+14155550100".into(),
        ),
        (
            "PHONE_VERIFY__PROVIDERS__PLIVO_PHLO__BASE_URL",
            server.uri(),
        ),
    ])
    .await;
    let payload = |n: usize| {
        let server = &server;
        async move {
            let requests = server.received_requests().await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&requests[n].body).unwrap()
        }
    };
    let browser = app.browser();
    assert_eq!(browser.request_code(A, "sms").await.status, 303);
    let sms = payload(0).await;
    let otp = sms["otp"].as_str().unwrap().to_string();
    assert_eq!(
        sms,
        serde_json::json!({"from": "+14155550100", "to": A, "otp": otp, "mode": "sms"})
    );
    assert!(app.messages().is_empty());
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    assert_eq!(browser.submit_code(wrong).await.status, 422);
    let done = browser.submit_code(&otp).await;
    assert_eq!(done.location(), Some("/success"), "{}", done.body);

    let caller = app.browser();
    assert_eq!(
        caller.request_code("+12015550124", "call").await.status,
        303
    );
    let call = payload(1).await;
    assert_eq!(call["mode"], "call");
    assert_eq!(call["to"], "+12015550124");
    let page = caller.get("/verify").await;
    assert!(page.body.contains("We are calling"), "{}", page.body);
    assert!(!app.logs().contains(&otp), "codes are never logged");
}

#[tokio::test]
async fn calls_are_spoken_in_the_verifications_language() {
    let server = twilio_answering(201, serde_json::json!({"sid": "CA1"})).await;
    let mut env = twilio_env(&server);
    env.push(("PHONE_VERIFY__CHANNELS__CALL", "twilio".into()));
    let app = spawn(env).await;
    let browser = app.browser_speaking("es-ES,es");
    assert_eq!(
        browser.request_code(A, "call").await.location(),
        Some("/verify")
    );
    let twiml = field(&last_form(&server).await, "Twiml");
    let said = twiml
        .split("<Say language=\"es-ES\">Tu código de phone-verify es ")
        .nth(1)
        .unwrap_or_else(|| panic!("{twiml}"))
        .split('.')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        twiml
            .matches(&format!(
                "<Say language=\"es-ES\">Tu código de phone-verify es {said}.</Say>"
            ))
            .count(),
        2,
        "{twiml}"
    );
    let code = said.replace(", ", "");
    assert_eq!(code.len(), 6);
    assert_eq!(
        browser.submit_code(&code).await.location(),
        Some("/success")
    );
}
