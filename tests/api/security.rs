//! CSRF, cookies, headers, body limits and error pages.

use crate::helpers::{Browser, spawn_app, spawn_app_with};

const A: &str = "+12015550123";

#[tokio::test]
async fn posts_without_the_right_csrf_token_are_forbidden() {
    let app = spawn_app().await;
    let browser = app.browser();
    browser.get("/").await;
    for (path, form) in [
        ("/request", vec![("phone", A), ("channel", "sms")]),
        ("/verify", vec![("code", "123456")]),
        ("/resend", vec![("channel", "sms")]),
    ] {
        let missing = browser.post(path, &form).await;
        assert_eq!(missing.status, 403, "{path} without token");
        let mut wrong = form.clone();
        wrong.push(("csrf_token", "0123456789abcdef0123456789abcdef"));
        assert_eq!(
            browser.post(path, &wrong).await.status,
            403,
            "{path} with a wrong token"
        );
    }
    // A token without its cookie (another browser's) is refused too.
    let token = browser.token("/").await;
    let stranger = Browser::new(&app.address);
    let forged = stranger
        .post(
            "/request",
            &[("phone", A), ("channel", "sms"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(app.messages().is_empty());
}

#[tokio::test]
async fn an_opaque_origin_is_accepted_because_the_token_is_the_defense() {
    let app = spawn_app().await;
    let browser = app.browser();
    let token = browser.token("/").await;
    let response = browser
        .client
        .post(app.url("/request"))
        .header("origin", "null")
        .form(&[("phone", A), ("channel", "sms"), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn the_session_cookie_is_signed_http_only_and_strict() {
    let app = spawn_app().await;
    let page = app.browser().get("/").await;
    let cookie = page
        .set_cookies()
        .into_iter()
        .next()
        .expect("a session cookie");
    assert!(cookie.starts_with("pv_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(!cookie.contains("Secure"), "plain http in development");
}

#[tokio::test]
async fn behind_https_the_cookie_is_secure_and_host_prefixed() {
    let app = spawn_app_with(&[(
        "PHONE_VERIFY__SERVER__PUBLIC_URL",
        "https://verify.example.com",
    )])
    .await;
    let page = app.browser().get("/").await;
    let cookie = page.set_cookies().into_iter().next().unwrap();
    assert!(cookie.starts_with("__Host-pv_session="), "{cookie}");
    assert!(cookie.contains("Secure"));
    assert!(page.header("strict-transport-security").is_some());
}

#[tokio::test]
async fn a_tampered_session_cookie_is_ignored() {
    let app = spawn_app().await;
    let browser = app.browser();
    // The browser's real cookie, bound to a real pending verification.
    let started = browser.request_code(A, "sms").await;
    let (name, value) = cookie_pair(&started)
        .split_once('=')
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .unwrap();
    let untouched = with_cookie(
        &app,
        reqwest::Method::GET,
        "/verify",
        &format!("{name}={value}"),
        &[],
    )
    .await;
    assert_eq!(untouched.status, 200, "the real cookie opens the code form");
    // The same cookie with one character changed, anywhere in it.
    for at in [0, value.len() / 2, value.len() - 2] {
        let mut bytes = value.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
        let response = with_cookie(&app, reqwest::Method::GET, "/verify", &tampered, &[]).await;
        assert_eq!(response.status, 303, "tampered at {at}");
        assert_eq!(response.location(), Some("/"));
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let browser = app.browser();
    let pages = [
        browser.get("/").await,
        browser.request_code(A, "sms").await,
        browser.get("/verify").await,
        browser.get("/no-such-page").await,
        browser.get("/static/app.css").await,
        browser.get("/healthz").await,
    ];
    for page in &pages {
        let csp = page
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("no CSP on {}", page.status));
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    }
    for page in &pages[..4] {
        assert_eq!(
            page.header("cache-control"),
            Some("no-store"),
            "{}",
            page.status
        );
    }
}

#[tokio::test]
async fn the_code_never_appears_in_a_response() {
    let app = spawn_app().await;
    let browser = app.browser();
    let mut seen = vec![browser.request_code(A, "sms").await];
    let code = app.code_for(A).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    seen.push(browser.get("/verify").await);
    seen.push(browser.submit_code(wrong).await);
    seen.push(browser.submit_code(&code).await);
    seen.push(browser.get("/success").await);
    for page in seen {
        assert!(!page.body.contains(&code), "code in a {} body", page.status);
        for (name, value) in &page.headers {
            assert!(
                !value.to_str().unwrap_or("").contains(&code),
                "code in header {name}"
            );
        }
    }
    assert!(!app.logs().contains(&code), "code in the logs");
    assert!(!app.logs().contains("5550123"), "full number in the logs");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_app().await;
    let browser = app.browser();
    let token = browser.token("/").await;
    let big = "1".repeat(20 * 1024);
    let page = browser
        .post(
            "/request",
            &[("phone", &big), ("channel", "sms"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(page.status, 413);
    assert!(page.body.contains("<html"), "a page, not a bare error");
    assert!(app.messages().is_empty());
}

#[tokio::test]
async fn unknown_routes_get_a_404_page_and_wrong_methods_405() {
    let app = spawn_app().await;
    let browser = app.browser();
    let missing = browser.get("/nope").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Page not found"));
    let wrong = browser
        .client
        .delete(app.url("/verify"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
    let wrong = browser
        .client
        .get(app.url("/request"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
}

#[tokio::test]
async fn pages_are_accessible_forms() {
    let app = spawn_app().await;
    let page = app.browser().get("/").await;
    assert!(page.body.contains("<html lang=\"en\""));
    assert!(page.body.contains("<label for=\"phone\""));
    assert!(page.body.contains("aria-describedby=\"phone-hint\""));
    assert!(page.body.contains("<legend>"));
    assert!(page.body.contains("name=\"viewport\""));
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "no external assets"
    );
}

/// The attack: browser B starts the number browser A has pending, hoping to be confirmed
/// when A types the code. A runs on `one`, B on `two` (the same app, or two instances
/// sharing a store).
pub async fn a_second_browser_cannot_ride_on_the_first_ones_verification(
    one: &crate::helpers::TestApp,
    two: &crate::helpers::TestApp,
) {
    let alice = one.browser();
    let mallory = two.browser();
    assert_eq!(
        alice.request_code(A, "sms").await.location(),
        Some("/verify")
    );
    let first = one.code_for(A).await;
    let alice_token = alice.token("/verify").await;
    let started = mallory.request_code(A, "sms").await;
    assert_eq!(started.location(), Some("/verify"));
    let cookie = started.set_cookies().concat();
    let hex_run = cookie
        .split(|c: char| !matches!(c, '0'..='9' | 'a'..='f'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(hex_run < 32, "the cookie shows an id: {cookie}");
    // Mallory's start sent the number a new code; Alice's browser holds the first one.
    let second = two.code_for(A).await;
    for code in [&first, &second] {
        let page = alice
            .post("/verify", &[("code", code), ("csrf_token", &alice_token)])
            .await;
        assert_eq!(page.status, 422, "{}", page.body);
        assert!(page.body.contains("new code"), "{}", page.body);
    }
    assert_eq!(mallory.get("/success").await.location(), Some("/"));
    // Alice asks for a new code from the page that says hers ended, and verifies.
    let token = alice.token("/").await;
    let restarted = alice
        .post(
            "/request",
            &[("phone", A), ("channel", "sms"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(restarted.location(), Some("/verify"));
    let third = one.code_for(A).await;
    assert_eq!(alice.submit_code(&third).await.location(), Some("/success"));
    assert_eq!(alice.get("/success").await.status, 200);
    // Mallory gets nothing: no success page, no code form.
    assert_eq!(mallory.get("/success").await.location(), Some("/"));
    assert_eq!(mallory.get("/verify").await.location(), Some("/"));
}

#[tokio::test]
async fn a_second_browser_starting_the_same_number_gets_its_own_verification() {
    let app = spawn_app_with(&[("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")]).await;
    a_second_browser_cannot_ride_on_the_first_ones_verification(&app, &app).await;
}

fn cookie_pair(page: &crate::helpers::Page) -> String {
    let set = page
        .set_cookies()
        .into_iter()
        .next()
        .expect("a session cookie");
    set.split(';').next().unwrap().to_string()
}

/// A client sending exactly `cookie`, as a stolen or stale copy would.
async fn with_cookie(
    app: &crate::helpers::TestApp,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> crate::helpers::Page {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .request(method, app.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    Browser::read(response).await
}

#[tokio::test]
async fn an_old_copy_of_the_cookie_does_nothing_after_success() {
    let app = spawn_app_with(&[("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")]).await;
    let browser = app.browser();
    let started = browser.request_code(A, "sms").await;
    let old = cookie_pair(&started);
    let old_token = with_cookie(&app, reqwest::Method::GET, "/verify", &old, &[])
        .await
        .csrf_token()
        .expect("the old copy works before success");
    let code = app.code_for(A).await;
    let approved = browser.submit_code(&code).await;
    assert_eq!(approved.location(), Some("/success"));
    let renewed = cookie_pair(&approved);
    assert_ne!(renewed, old, "success renews the session");
    assert_eq!(
        with_cookie(&app, reqwest::Method::GET, "/success", &renewed, &[])
            .await
            .status,
        200
    );
    let success = with_cookie(&app, reqwest::Method::GET, "/success", &old, &[]).await;
    assert_eq!(success.location(), Some("/"), "the old copy opens nothing");
    let sent = app.messages_to(A).len();
    let resend = with_cookie(
        &app,
        reqwest::Method::POST,
        "/resend",
        &old,
        &[("channel", "sms"), ("csrf_token", &old_token)],
    )
    .await;
    assert_ne!(resend.location(), Some("/verify"), "{}", resend.status);
    assert_eq!(app.messages_to(A).len(), sent, "the old copy sends no code");
}

#[tokio::test]
async fn a_session_ends_on_the_server_after_its_lifetime() {
    let app = spawn_app_with(&[("PHONE_VERIFY__SERVER__SESSION_TTL_SECS", "3")]).await;
    let browser = app.browser();
    let started = browser.request_code(A, "sms").await;
    assert_eq!(started.location(), Some("/verify"));
    let token = browser.token("/verify").await;
    let copy = cookie_pair(&started);
    // Three seconds, so that a loaded machine still reads the page before the end.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    // The cookie is still sent (its own expiry is the browser's business), but means nothing.
    let page = with_cookie(&app, reqwest::Method::GET, "/verify", &copy, &[]).await;
    assert_eq!(page.location(), Some("/"));
    let resend = with_cookie(
        &app,
        reqwest::Method::POST,
        "/resend",
        &copy,
        &[("channel", "sms"), ("csrf_token", &token)],
    )
    .await;
    assert_eq!(resend.status, 403);
    assert_eq!(app.messages_to(A).len(), 1, "nothing more was sent");
}

#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    const TOKEN: &str = "metrics-token-0123456789";
    let app = spawn_app_with(&[("PHONE_VERIFY__SERVER__METRICS_TOKEN", TOKEN)]).await;
    let http = reqwest::Client::new();
    for presented in [
        None,
        Some(""),
        Some("metrics-token-012345678"),
        Some("wrong"),
    ] {
        let mut request = http.get(app.url("/metrics"));
        if let Some(token) = presented {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{presented:?}");
        assert!(!response.text().await.unwrap().contains("phone_verify_"));
    }
    let allowed = http
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert!(
        allowed
            .text()
            .await
            .unwrap()
            .contains("phone_verify_store_errors_total")
    );
}

#[tokio::test]
async fn metrics_can_have_their_own_address_and_leave_the_public_one() {
    let app = spawn_app_with(&[("PHONE_VERIFY__SERVER__METRICS_BIND", "127.0.0.1:0")]).await;
    let logs = app.logs();
    let metrics = logs
        .split("metrics on http://")
        .nth(1)
        .and_then(|rest| rest.split("/metrics").next())
        .unwrap_or_else(|| panic!("no metrics address in {logs}"))
        .to_string();
    let http = reqwest::Client::new();
    let public = http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    let private = http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    assert!(private.text().await.unwrap().contains("phone_verify_"));
    let page = http.get(format!("http://{metrics}/")).send().await.unwrap();
    assert_eq!(page.status(), 404, "the metrics address serves no pages");
    assert_eq!(
        http.get(format!("http://{metrics}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.browser().get("/").await.status, 200);
}

#[tokio::test]
async fn an_upper_case_https_public_url_still_gets_secure_cookies_and_hsts() {
    let app = spawn_app_with(&[(
        "PHONE_VERIFY__SERVER__PUBLIC_URL",
        "HTTPS://Verify.Example.com",
    )])
    .await;
    let page = app.browser().get("/").await;
    let cookie = page.set_cookies().into_iter().next().unwrap();
    assert!(cookie.starts_with("__Host-pv_session="), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(page.header("strict-transport-security").is_some());
}

#[tokio::test]
async fn a_wrong_method_gets_405_with_allow_on_every_front_end() {
    let app = spawn_app_with(&[
        ("PHONE_VERIFY__TWILIO_COMPAT__ENABLED", "true"),
        ("PHONE_VERIFY__TWILIO_COMPAT__ACCOUNT_SID", "AC1"),
        (
            "PHONE_VERIFY__TWILIO_COMPAT__AUTH_TOKEN",
            "compat-token-0123456789abcdef0123456789",
        ),
        ("PHONE_VERIFY__TWILIO_COMPAT__SERVICE_SID", "VA1"),
        ("PHONE_VERIFY__COMPAT__SIGNALWIRE_ROUTES", "true"),
        ("PHONE_VERIFY__COMPAT__PLIVO_ROUTES", "true"),
    ])
    .await;
    let http = reqwest::Client::new();
    let cases = [
        (reqwest::Method::DELETE, "/verify", "GET, POST"),
        (reqwest::Method::GET, "/request", "POST"),
        (reqwest::Method::PUT, "/api/v1/verifications", "POST"),
        (reqwest::Method::GET, "/api/v1/verifications/check", "POST"),
        (
            reqwest::Method::PATCH,
            "/api/v1/verifications/0123456789abcdef0123456789abcdef",
            "GET, DELETE",
        ),
        (reqwest::Method::POST, "/api/openapi.json", "GET"),
        (
            reqwest::Method::GET,
            "/v2/Services/VA1/Verifications",
            "POST",
        ),
        (reqwest::Method::DELETE, "/request-auth", "GET, POST"),
        (reqwest::Method::POST, "/checkcode/1/2", "GET"),
        (reqwest::Method::GET, "/webhooks/twilio", "POST"),
        (reqwest::Method::TRACE, "/healthz", "GET"),
    ];
    for (method, path, allow) in cases {
        let response = http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(
            response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn api_answers_and_redirects_are_never_cached() {
    let app = spawn_app_with(&[("PHONE_VERIFY__API__KEYS", "cache-test-key-0123456")]).await;
    let client = crate::helpers::api(&app, "cache-test-key-0123456");
    let started = client.start(A).await;
    let refused = client.start(A).await;
    let missing = client.get("/api/v1/verifications/nope").await;
    for reply in [&started, &refused, &missing] {
        assert_eq!(
            reply.header("cache-control"),
            Some("no-store"),
            "{}",
            reply.status
        );
    }
    let redirect = app.browser().get("/verify").await;
    assert_eq!(redirect.status, 303);
    assert_eq!(redirect.header("cache-control"), Some("no-store"));
    let css = app.browser().get("/static/app.css").await;
    assert_eq!(css.header("cache-control"), Some("public, max-age=3600"));
}
