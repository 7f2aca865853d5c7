//! Send limits and lockouts, seen from the browser: 429 with Retry-After, nothing sent.

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const A: &str = "+12015550123";

fn retry_after(page: &crate::helpers::Page) -> u64 {
    page.header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}", page.status))
        .parse()
        .unwrap()
}

fn wrong_for(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

#[tokio::test]
async fn a_resend_within_the_cooldown_is_refused_with_retry_after() {
    let app = spawn_app().await;
    let browser = app.browser();
    browser.request_code(A, "sms").await;
    let refused = browser.resend("sms").await;
    assert_eq!(refused.status, 429);
    let wait = retry_after(&refused);
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(refused.body.contains("another code in"), "{}", refused.body);
    assert_eq!(app.messages_to(A).len(), 1, "nothing more was sent");
    // A second browser starting over does not get around it either.
    let other = app.browser().request_code(A, "sms").await;
    assert_eq!(other.status, 429);
    assert_eq!(app.messages_to(A).len(), 1);
}

#[tokio::test]
async fn sends_per_number_are_limited_per_window() {
    let app = spawn_app_with(&[
        ("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0"),
        ("PHONE_VERIFY__VERIFICATION__MAX_SENDS_PER_NUMBER", "2"),
        ("PHONE_VERIFY__VERIFICATION__SEND_WINDOW_SECS", "60"),
    ])
    .await;
    let browser = app.browser();
    assert_eq!(browser.request_code(A, "sms").await.status, 303);
    assert_eq!(browser.resend("call").await.status, 303);
    let refused = browser.resend("sms").await;
    assert_eq!(refused.status, 429);
    assert!((55..=60).contains(&retry_after(&refused)));
    assert_eq!(app.messages_to(A).len(), 2);
}

#[tokio::test]
async fn sends_per_client_address_are_limited_across_numbers() {
    let app = spawn_app_with(&[("PHONE_VERIFY__VERIFICATION__MAX_SENDS_PER_IP", "2")]).await;
    let browser = app.browser();
    assert_eq!(
        browser.request_code("+12015550101", "sms").await.status,
        303
    );
    assert_eq!(
        app.browser()
            .request_code("+12015550102", "sms")
            .await
            .status,
        303
    );
    let refused = app.browser().request_code("+12015550103", "sms").await;
    assert_eq!(refused.status, 429);
    assert!(retry_after(&refused) <= 300);
    assert!(
        refused.body.contains("Too many codes have been requested"),
        "{}",
        refused.body
    );
    assert!(app.messages_to("+12015550103").is_empty());
}

#[tokio::test]
async fn forwarded_for_headers_from_untrusted_clients_do_not_escape_the_address_limit() {
    let app = spawn_app_with(&[("PHONE_VERIFY__VERIFICATION__MAX_SENDS_PER_IP", "1")]).await;
    assert_eq!(
        app.browser()
            .request_code("+12015550101", "sms")
            .await
            .status,
        303
    );
    let browser = app.browser();
    let token = browser.token("/").await;
    let response = browser
        .client
        .post(app.url("/request"))
        .header("x-forwarded-for", "198.51.100.77")
        .form(&[
            ("phone", "+12015550102"),
            ("channel", "sms"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}

async fn fail(app: &TestApp, browser: &crate::helpers::Browser, times: usize) {
    let code = app.code_for(A).await;
    for _ in 0..times {
        let token = browser.token("/verify").await;
        browser
            .post(
                "/verify",
                &[("code", wrong_for(&code)), ("csrf_token", &token)],
            )
            .await;
    }
}

#[tokio::test]
async fn consecutive_failures_lock_the_number_across_resends_and_new_starts() {
    let app = spawn_app_with(&[
        ("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0"),
        ("PHONE_VERIFY__VERIFICATION__MAX_CHECK_ATTEMPTS", "3"),
        ("PHONE_VERIFY__VERIFICATION__LOCKOUT_FAILURES", "5"),
        ("PHONE_VERIFY__VERIFICATION__LOCKOUT_SECS", "120"),
    ])
    .await;
    let browser = app.browser();
    browser.request_code(A, "sms").await;
    fail(&app, &browser, 2).await;
    // A resend gives a new code but keeps the count of failures for the number.
    assert_eq!(browser.resend("sms").await.status, 303);
    fail(&app, &browser, 1).await;
    // Starting over in a new browser does not reset it either.
    let fresh = app.browser();
    assert_eq!(fresh.request_code(A, "sms").await.status, 303);
    let code = app.code_for(A).await;
    let token = fresh.token("/verify").await;
    let fourth = fresh
        .post(
            "/verify",
            &[("code", wrong_for(&code)), ("csrf_token", &token)],
        )
        .await;
    assert!(
        fourth.body.contains("2 attempts left"),
        "a new verification: {}",
        fourth.body
    );
    let fifth = fresh
        .post(
            "/verify",
            &[("code", wrong_for(&code)), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(fifth.status, 422, "the fifth wrong code is still evaluated");
    // Now locked: even the right code is refused, and nothing is sent.
    let locked = fresh
        .post("/verify", &[("code", &code), ("csrf_token", &token)])
        .await;
    assert_eq!(locked.status, 429);
    assert!(
        (100..=120).contains(&retry_after(&locked)),
        "{:?}",
        locked.header("retry-after")
    );
    assert!(locked.body.contains("Too many incorrect codes"));
    let sent_before = app.messages_to(A).len();
    let restart = app.browser().request_code(A, "sms").await;
    assert_eq!(restart.status, 429);
    assert!(retry_after(&restart) > 60);
    assert_eq!(
        app.messages_to(A).len(),
        sent_before,
        "nothing sent while locked"
    );
}

#[tokio::test]
async fn a_right_code_resets_the_failure_count() {
    let app = spawn_app_with(&[
        ("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0"),
        ("PHONE_VERIFY__VERIFICATION__LOCKOUT_FAILURES", "3"),
    ])
    .await;
    let browser = app.browser();
    browser.request_code(A, "sms").await;
    fail(&app, &browser, 2).await;
    let code = app.code_for(A).await;
    assert_eq!(
        browser.submit_code(&code).await.location(),
        Some("/success")
    );
    let again = app.browser();
    again.request_code(A, "sms").await;
    fail(&app, &again, 2).await;
    let code = app.code_for(A).await;
    assert_eq!(
        again.submit_code(&code).await.location(),
        Some("/success"),
        "not locked"
    );
}

#[tokio::test]
async fn limits_allow_sending_again_once_the_wait_is_over() {
    let app = spawn_app_with(&[("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "3")]).await;
    let browser = app.browser();
    browser.request_code(A, "sms").await;
    assert_eq!(browser.resend("sms").await.status, 429);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(browser.resend("sms").await.status, 303);
    assert_eq!(app.messages_to(A).len(), 2);
}

#[tokio::test]
async fn the_default_limits_hold_without_configuration() {
    let app = spawn_app().await;
    let browser = app.browser();
    browser.request_code(A, "sms").await;
    let code = app.code_for(A).await;
    fail(&app, &browser, 4).await;
    assert!(browser.get("/verify").await.body.contains("1 attempt left"));
    assert_eq!(
        browser.submit_code(&code).await.location(),
        Some("/success")
    );
}

/// Starts a verification of `to` from the page, as a client behind the trusted proxy at
/// 127.0.0.1 whose `X-Forwarded-For` is `forwarded`; the status.
async fn start_behind_proxy(app: &TestApp, forwarded: &str, to: &str) -> u16 {
    let browser = app.browser();
    let token = browser.token("/").await;
    browser
        .client
        .post(app.url("/request"))
        .header("x-forwarded-for", forwarded)
        .form(&[("phone", to), ("channel", "sms"), ("csrf_token", &token)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64_so_a_new_address_per_send_does_not_help() {
    let app = spawn_app_with(&[
        ("PHONE_VERIFY__VERIFICATION__MAX_SENDS_PER_IP", "2"),
        ("PHONE_VERIFY__SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    assert_eq!(
        start_behind_proxy(&app, "2001:db8:0:1::1", "+12015550101").await,
        303
    );
    assert_eq!(
        start_behind_proxy(&app, "2001:db8:0:1::2", "+12015550102").await,
        303
    );
    assert_eq!(
        start_behind_proxy(&app, "2001:db8:0:1:ffff:ffff:ffff:ffff", "+12015550103").await,
        429,
        "the same /64"
    );
    assert_eq!(
        start_behind_proxy(&app, "2001:db8:0:2::1", "+12015550104").await,
        303,
        "another /64 is another client"
    );
    assert!(app.messages_to("+12015550103").is_empty());
}

#[tokio::test]
async fn the_ipv6_prefix_is_configurable() {
    let app = spawn_app_with(&[
        ("PHONE_VERIFY__VERIFICATION__MAX_SENDS_PER_IP", "1"),
        ("PHONE_VERIFY__VERIFICATION__IPV6_PREFIX_LEN", "128"),
        ("PHONE_VERIFY__SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    assert_eq!(
        start_behind_proxy(&app, "2001:db8::1", "+12015550101").await,
        303
    );
    assert_eq!(
        start_behind_proxy(&app, "2001:db8::2", "+12015550102").await,
        303
    );
    assert_eq!(
        start_behind_proxy(&app, "2001:db8::1", "+12015550103").await,
        429
    );
}

#[tokio::test]
async fn forwarded_addresses_with_ports_are_the_client_not_the_proxy() {
    let app = spawn_app_with(&[
        ("PHONE_VERIFY__VERIFICATION__MAX_SENDS_PER_IP", "1"),
        ("PHONE_VERIFY__SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    assert_eq!(
        start_behind_proxy(&app, "198.51.100.1:5678", "+12015550101").await,
        303
    );
    assert_eq!(
        start_behind_proxy(&app, "198.51.100.2:5678", "+12015550102").await,
        303,
        "another client behind the same proxy"
    );
    assert_eq!(
        start_behind_proxy(&app, "[2001:db8::1]:443", "+12015550103").await,
        303
    );
    assert_eq!(
        start_behind_proxy(&app, "198.51.100.1:9999", "+12015550104").await,
        429,
        "the first client again, from another port"
    );
}
