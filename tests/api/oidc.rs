//! phone-verify as an OpenID Connect provider, driven by a real OIDC client library
//! (Python's authlib) and, for every refusal, by hand.

use std::io::{BufRead, Write};

use base64::Engine as _;
use phone_verify::testing::free_port;
use serde_json::Value;

use crate::helpers::{Browser, Page, TestApp, python_with, spawn_app_with};

pub const A: &str = "+12015550123";
pub const WEB_ID: &str = "webapp";
pub const WEB_SECRET: &str = "webapp-secret-0123456789";
pub const WEB_REDIRECT: &str = "http://127.0.0.1:9/callback";
const SPA_ID: &str = "spa";
const SPA_REDIRECT: &str = "http://localhost:3000/cb";
/// RFC 7636, Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The configuration file of the OIDC tests: two clients, a confidential and a public one.
pub fn oidc_config(extra: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "pv-oidc-{}-{}.toml",
        std::process::id(),
        free_port()
    ));
    let text = format!(
        r#"{extra}
[[oidc.clients]]
client_id = "{WEB_ID}"
client_secret = "{WEB_SECRET}"
redirect_uris = ["{WEB_REDIRECT}"]
name = "Example App"

[[oidc.clients]]
client_id = "{SPA_ID}"
redirect_uris = ["{SPA_REDIRECT}"]
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// An app serving the OIDC provider, its issuer the address it listens on.
pub async fn oidc_app(oidc_extra: &str, env: &[(&str, &str)]) -> TestApp {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let public = format!("http://{bind}");
    let config = oidc_config(&format!("[oidc]\nenabled = true\n{oidc_extra}"));
    let config = config.to_str().unwrap().to_string();
    let mut all = vec![
        ("PHONE_VERIFY_CONFIG", config.as_str()),
        ("PHONE_VERIFY__SERVER__BIND", bind.as_str()),
        ("PHONE_VERIFY__SERVER__PUBLIC_URL", public.as_str()),
    ];
    all.extend_from_slice(env);
    spawn_app_with(&all).await
}

/// `/oidc/authorize` with these parameters (the defaults of a good request of the web app).
pub fn authorize_path(overrides: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", WEB_ID),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid phone"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in overrides {
        params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            params.push((name, value));
        }
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/oidc/authorize?{query}")
}

/// The query of a redirect's `Location`.
pub fn redirect_query(page: &Page) -> Vec<(String, String)> {
    let location = page
        .location()
        .unwrap_or_else(|| panic!("no redirect: {} {}", page.status, page.body));
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

pub fn param(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Goes through the hosted pages of a sign-in that starts at `authorize`: the phone form
/// it shows, the code from the terminal. The answer to the right code.
pub async fn sign_in(app: &TestApp, browser: &Browser, authorize: &str, phone: &str) -> Page {
    sign_in_typed(app, browser, authorize, phone, phone).await
}

/// `sign_in`, typing the number as `typed`; the code goes to `e164`.
pub async fn sign_in_typed(
    app: &TestApp,
    browser: &Browser,
    authorize: &str,
    typed: &str,
    e164: &str,
) -> Page {
    let phone = typed;
    let form = browser.get(authorize).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let token = form.csrf_token().expect("the phone form");
    let sent = browser
        .post(
            "/request",
            &[("phone", phone), ("channel", "sms"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(sent.location(), Some("/verify"), "{}", sent.body);
    let code = app.code_for(e164).await;
    browser.submit_code(&code).await
}

/// Exchanges `code` at the token endpoint as the web app (Basic auth) with `verifier`.
pub async fn exchange(app: &TestApp, code: &str, verifier: &str, secret: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth(WEB_ID, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn claims_of(id_token: &str) -> Value {
    let payload = id_token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn an_oidc_client_library_gets_a_signed_id_token_with_the_verified_number() {
    let Some(python) = python_with("authlib") else {
        return;
    };
    let app = oidc_app("", &[]).await;
    let issuer = format!("http://{}", app.address);
    let mut child = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/oidc_client.py"
        ))
        .args([&issuer, WEB_ID, WEB_SECRET, WEB_REDIRECT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let authorize = line
        .strip_prefix("authorize ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .trim()
        .strip_prefix(&issuer)
        .unwrap()
        .to_string();
    let browser = app.browser();
    let approved = sign_in_typed(&app, &browser, &authorize, "(201) 555-0123", A).await;
    assert_eq!(approved.status, 303);
    let callback = approved.location().unwrap().to_string();
    assert!(callback.starts_with(WEB_REDIRECT), "{callback}");
    writeln!(child.stdin.take().unwrap(), "{callback}").unwrap();
    let rest: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{rest:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        rest,
        [
            "redirect state and iss ok",
            "id_token verified: phone +12015550123 True ['sms']",
            "userinfo +12015550123 same sub"
        ]
    );
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_provider() {
    let app = oidc_app("", &[]).await;
    let issuer = format!("http://{}", app.address);
    let discovery: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer);
    for (field, path) in [
        ("authorization_endpoint", "/oidc/authorize"),
        ("token_endpoint", "/oidc/token"),
        ("userinfo_endpoint", "/oidc/userinfo"),
        ("jwks_uri", "/oidc/jwks.json"),
    ] {
        assert_eq!(discovery[field], format!("{issuer}{path}"), "{field}");
    }
    let expect = |field: &str, value: Value| assert_eq!(discovery[field], value, "{field}");
    expect("response_types_supported", serde_json::json!(["code"]));
    expect(
        "grant_types_supported",
        serde_json::json!(["authorization_code"]),
    );
    expect("subject_types_supported", serde_json::json!(["public"]));
    expect(
        "id_token_signing_alg_values_supported",
        serde_json::json!(["ES256"]),
    );
    expect("scopes_supported", serde_json::json!(["openid", "phone"]));
    expect(
        "token_endpoint_auth_methods_supported",
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"]),
    );
    expect(
        "code_challenge_methods_supported",
        serde_json::json!(["S256"]),
    );
    expect(
        "authorization_response_iss_parameter_supported",
        Value::Bool(true),
    );
    let claims = discovery["claims_supported"].as_array().unwrap();
    assert!(
        claims.contains(&"phone_number".into()) && claims.contains(&"phone_number_verified".into())
    );
    let jwks: Value = reqwest::get(app.url("/oidc/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert_eq!(key["kid"].as_str().unwrap().len(), 43);
    assert!(key.get("d").is_none(), "no private part");
}

#[tokio::test]
async fn the_id_token_has_the_claims_and_verifies_against_the_jwks() {
    let app = oidc_app(
        "",
        &[("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")],
    )
    .await;
    let browser = app.browser();
    let approved = sign_in(&app, &browser, &authorize_path(&[]), A).await;
    let query = redirect_query(&approved);
    assert_eq!(param(&query, "state").as_deref(), Some("st-123"));
    assert_eq!(
        param(&query, "iss"),
        Some(format!("http://{}", app.address))
    );
    let code = param(&query, "code").unwrap();
    let (status, tokens) = exchange(&app, &code, VERIFIER, WEB_SECRET).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid phone");
    assert!(tokens["expires_in"].as_u64().unwrap() > 0);
    let id_token = tokens["id_token"].as_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(app.url("/oidc/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the JWKS");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[WEB_ID]);
    validation.set_issuer(&[format!("http://{}", app.address)]);
    let decoded = jsonwebtoken::decode::<Value>(
        id_token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("the signature and claims verify");
    let claims = decoded.claims;
    assert_eq!(claims["phone_number"], A);
    assert_eq!(claims["phone_number_verified"], true);
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["amr"], serde_json::json!(["sms"]));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        300
    );
    assert!(claims["auth_time"].as_u64().unwrap() <= claims["iat"].as_u64().unwrap());
    let sub = claims["sub"].as_str().unwrap();
    assert!(!sub.contains("5550123"), "the subject is not the number");
    // userinfo with the access token; without one, 401.
    let http = reqwest::Client::new();
    let info: Value = http
        .get(app.url("/oidc/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["sub"].as_str(), info["phone_number"].as_str()),
        (Some(sub), Some(A))
    );
    for bearer in [None, Some("not-a-token")] {
        let mut request = http.get(app.url("/oidc/userinfo"));
        if let Some(b) = bearer {
            request = request.bearer_auth(b);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{bearer:?}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    // The same number signs in again: the same subject.
    let again = app.browser();
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let relogin = oidc_resign(&app, &again).await;
    assert_eq!(relogin["sub"], sub);
}

/// A second sign-in of `A` (after the cooldown) and its ID token's claims.
async fn oidc_resign(app: &TestApp, browser: &Browser) -> Value {
    let approved = sign_in(app, browser, &authorize_path(&[]), A).await;
    let code = param(&redirect_query(&approved), "code").unwrap();
    let (_, tokens) = exchange(app, &code, VERIFIER, WEB_SECRET).await;
    claims_of(tokens["id_token"].as_str().unwrap())
}

#[tokio::test]
async fn a_call_is_amr_tel_and_the_login_hint_fills_the_form() {
    let app = oidc_app("", &[]).await;
    let browser = app.browser();
    let form = browser
        .get(&authorize_path(&[("login_hint", "+1 201 555 0177")]))
        .await;
    assert!(
        form.body.contains("value=\"+1 201 555 0177\""),
        "{}",
        form.body
    );
    assert!(
        form.body.contains("Example App"),
        "the application is named"
    );
    assert!(
        form.body.contains("action=\"/oidc/cancel\""),
        "a way to cancel"
    );
    let csp = form.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9"),
        "{csp}"
    );
    let token = form.csrf_token().unwrap();
    browser
        .post(
            "/request",
            &[
                ("phone", "+12015550177"),
                ("channel", "call"),
                ("csrf_token", &token),
            ],
        )
        .await;
    let code = app.code_for("+12015550177").await;
    let approved = browser.submit_code(&code).await;
    let code = param(&redirect_query(&approved), "code").unwrap();
    let (_, tokens) = exchange(&app, &code, VERIFIER, WEB_SECRET).await;
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["amr"],
        serde_json::json!(["tel"])
    );
}

#[tokio::test]
async fn an_unknown_client_or_unregistered_redirect_uri_is_never_redirected_to() {
    let app = oidc_app("", &[]).await;
    let browser = app.browser();
    for overrides in [
        vec![("client_id", "nobody")],
        vec![("redirect_uri", "http://127.0.0.1:9/callback/")],
        vec![("redirect_uri", "https://evil.example/callback")],
        vec![("redirect_uri", "")],
    ] {
        let page = browser.get(&authorize_path(&overrides)).await;
        assert_eq!(page.status, 400, "{overrides:?}");
        assert_eq!(page.location(), None);
        assert!(page.body.contains("<html"), "a page");
    }
}

#[tokio::test]
async fn other_invalid_requests_go_back_with_an_error_and_the_state() {
    let app = oidc_app("", &[]).await;
    let browser = app.browser();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("scope", "phone")], "invalid_scope"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (
            vec![
                ("client_id", SPA_ID),
                ("redirect_uri", SPA_REDIRECT),
                ("code_challenge", ""),
                ("code_challenge_method", ""),
            ],
            "invalid_request",
        ),
    ];
    for (overrides, error) in cases {
        let page = browser.get(&authorize_path(&overrides)).await;
        assert_eq!(page.status, 303, "{overrides:?}: {}", page.body);
        let query = redirect_query(&page);
        assert_eq!(
            param(&query, "error").as_deref(),
            Some(error),
            "{overrides:?}"
        );
        assert_eq!(param(&query, "state").as_deref(), Some("st-123"));
        assert_eq!(
            param(&query, "iss"),
            Some(format!("http://{}", app.address))
        );
    }
}

#[tokio::test]
async fn cancel_goes_back_with_access_denied() {
    let app = oidc_app("", &[]).await;
    let browser = app.browser();
    let form = browser.get(&authorize_path(&[])).await;
    let token = form.csrf_token().unwrap();
    let canceled = browser
        .post("/oidc/cancel", &[("csrf_token", &token)])
        .await;
    assert_eq!(canceled.status, 303);
    let query = redirect_query(&canceled);
    assert_eq!(param(&query, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&query, "state").as_deref(), Some("st-123"));
    assert!(param(&query, "code").is_none());
    // The sign-in is over: cancelling again or typing a code gets nothing back.
    let again = browser
        .post("/oidc/cancel", &[("csrf_token", &token)])
        .await;
    assert_ne!(again.status, 303);
    assert!(app.messages().is_empty());
}

#[tokio::test]
async fn a_code_works_once_for_its_client_its_redirect_and_its_verifier() {
    let app = oidc_app(
        "",
        &[("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")],
    )
    .await;
    let code = |n: u32| {
        let app = &app;
        async move {
            let browser = app.browser();
            let phone = format!("+1201555{:04}", 100 + n);
            let approved = sign_in(app, &browser, &authorize_path(&[]), &phone).await;
            param(&redirect_query(&approved), "code").unwrap()
        }
    };
    // Replay.
    let first = code(0).await;
    assert_eq!(exchange(&app, &first, VERIFIER, WEB_SECRET).await.0, 200);
    let replay = exchange(&app, &first, VERIFIER, WEB_SECRET).await;
    assert_eq!(
        (replay.0, replay.1["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // A wrong verifier burns the code.
    let second = code(1).await;
    let wrong = exchange(
        &app,
        &second,
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
        WEB_SECRET,
    )
    .await;
    assert_eq!(
        (wrong.0, wrong.1["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(exchange(&app, &second, VERIFIER, WEB_SECRET).await.0, 400);
    // A wrong client secret is invalid_client, and the code is not spent by it.
    let third = code(2).await;
    let response = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth(WEB_ID, Some("not-the-secret-0123456789"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", third.as_str()),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // Another client's code: the public client may not redeem it.
    let stolen = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", third.as_str()),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", SPA_ID),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 400);
    assert_eq!(
        stolen.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    // Another redirect URI than the request's.
    let fourth = code(3).await;
    let response = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth(WEB_ID, Some(WEB_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", fourth.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    // Client authentication in the form works too (client_secret_post).
    let fifth = code(4).await;
    let post = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", fifth.as_str()),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", WEB_ID),
            ("client_secret", WEB_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(post.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn a_public_client_signs_in_with_pkce_alone() {
    let app = oidc_app("", &[]).await;
    let browser = app.browser();
    let path = authorize_path(&[("client_id", SPA_ID), ("redirect_uri", SPA_REDIRECT)]);
    let approved = sign_in(&app, &browser, &path, A).await;
    assert!(approved.location().unwrap().starts_with(SPA_REDIRECT));
    let code = param(&redirect_query(&approved), "code").unwrap();
    let token = |verifier: &'static str| {
        let (app, code) = (&app, code.clone());
        async move {
            reqwest::Client::new()
                .post(app.url("/oidc/token"))
                .header("origin", "http://localhost:3000")
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", SPA_REDIRECT),
                    ("code_verifier", verifier),
                    ("client_id", SPA_ID),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let answer = token(VERIFIER).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "http://localhost:3000",
        "a browser application may read it"
    );
}

#[tokio::test]
async fn a_code_is_refused_after_code_ttl_secs() {
    let app = oidc_app("code_ttl_secs = 1", &[]).await;
    let browser = app.browser();
    let approved = sign_in(&app, &browser, &authorize_path(&[]), A).await;
    let code = param(&redirect_query(&approved), "code").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let late = exchange(&app, &code, VERIFIER, WEB_SECRET).await;
    assert_eq!(
        (late.0, late.1["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn another_browser_that_starts_the_same_number_gets_no_code() {
    let app = oidc_app(
        "",
        &[("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")],
    )
    .await;
    let (victim, attacker) = (app.browser(), app.browser());
    // The attacker opens a sign-in for the victim's number first, then the victim does.
    for browser in [&attacker, &victim] {
        let form = browser.get(&authorize_path(&[])).await;
        let token = form.csrf_token().unwrap();
        browser
            .post(
                "/request",
                &[("phone", A), ("channel", "sms"), ("csrf_token", &token)],
            )
            .await;
    }
    // The victim types the code their phone got: they get a code, the attacker nothing.
    let code = app.code_for(A).await;
    let approved = victim.submit_code(&code).await;
    assert!(param(&redirect_query(&approved), "code").is_some());
    let token = attacker.token("/").await;
    for attempt in [
        attacker
            .post("/verify", &[("code", &code), ("csrf_token", &token)])
            .await,
        attacker.get("/success").await,
    ] {
        assert!(
            !attempt.location().unwrap_or("").starts_with(WEB_REDIRECT),
            "the attacker's browser was sent to the application: {attempt:?}"
        );
    }
}

#[tokio::test]
async fn check_config_refuses_bad_clients_and_keys() {
    let cases = [
        (
            "[oidc]\nenabled = true\n[[oidc.clients]]\nclient_id = \"a\"\nredirect_uris = [\"http://app.example/cb\"]\n",
            "oidc.clients[0].redirect_uris",
        ),
        (
            "[oidc]\nenabled = true\n[[oidc.clients]]\nclient_id = \"a\"\nredirect_uris = [\"https://app.example/cb#x\"]\n",
            "oidc.clients[0].redirect_uris",
        ),
        (
            "[oidc]\nenabled = true\n[[oidc.clients]]\nclient_id = \"a\"\nredirect_uris = [\"https://a.example/cb\"]\n[[oidc.clients]]\nclient_id = \"a\"\nredirect_uris = [\"https://b.example/cb\"]\n",
            "oidc.clients[1].client_id",
        ),
        (
            "[oidc]\nenabled = true\n[[oidc.clients]]\nclient_id = \"a\"\nclient_secret = \"short\"\nredirect_uris = [\"https://a.example/cb\"]\n",
            "oidc.clients[0].client_secret",
        ),
        (
            "[oidc]\nenabled = true\nsigning_key = \"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\"\n[[oidc.clients]]\nclient_id = \"a\"\nredirect_uris = [\"https://a.example/cb\"]\n",
            "oidc.signing_key",
        ),
        ("[oidc]\nenabled = true\n", "oidc.clients"),
    ];
    for (toml, key) in cases {
        let path = std::env::temp_dir().join(format!(
            "pv-oidc-bad-{}-{}.toml",
            std::process::id(),
            free_port()
        ));
        std::fs::write(&path, toml).unwrap();
        let output = crate::helpers::command(&[])
            .args(["--config", path.to_str().unwrap(), "check-config"])
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{toml}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
    let good = oidc_config("[oidc]\nenabled = true\n");
    let output = crate::helpers::command(&[])
        .args(["--config", good.to_str().unwrap(), "check-config"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
