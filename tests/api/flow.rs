//! The hosted flow as a person goes through it.

use crate::helpers::{Browser, spawn_app, spawn_app_with};

const A: &str = "+12015550123";
const B: &str = "+12015550124";

#[tokio::test]
async fn a_person_verifies_their_number_with_the_code_from_the_terminal() {
    // Arrange
    let app = spawn_app().await;
    let browser = app.browser();

    // Act: the phone form
    let form = browser.get("/").await;
    assert_eq!(form.status, 200);
    for needle in [
        "name=\"phone\"",
        "type=\"tel\"",
        "autocomplete=\"tel\"",
        "name=\"channel\"",
        "value=\"sms\"",
        "value=\"call\"",
        "name=\"csrf_token\"",
    ] {
        assert!(form.body.contains(needle), "phone form lacks {needle}");
    }
    let sent = browser.request_code("(201) 555-0123", "sms").await;
    assert_eq!(sent.status, 303);
    assert_eq!(sent.location(), Some("/verify"));

    // The code form
    let code_form = browser.get("/verify").await;
    assert_eq!(code_form.status, 200);
    assert!(
        code_form.body.contains("+1201*****23"),
        "masked number shown"
    );
    assert!(
        !code_form.body.contains("5550123"),
        "full number never shown"
    );
    assert!(code_form.body.contains("5 attempts left"));
    for needle in [
        "name=\"code\"",
        "autocomplete=\"one-time-code\"",
        "inputmode=\"numeric\"",
        "action=\"/resend\"",
        "Call me instead",
        "aria-describedby=\"code-hint\"",
    ] {
        assert!(code_form.body.contains(needle), "code form lacks {needle}");
    }

    // A wrong code, then the right one
    let code = app.code_for(A).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let rejected = browser.submit_code(wrong).await;
    assert_eq!(rejected.status, 422);
    assert!(
        rejected.body.contains("4 attempts left"),
        "{}",
        rejected.body
    );
    assert!(
        rejected
            .body
            .contains("aria-describedby=\"code-hint code-error\"")
    );
    let accepted = browser.submit_code(&code).await;
    assert_eq!(accepted.status, 303);
    assert_eq!(accepted.location(), Some("/success"));

    // Assert
    let success = browser.get("/success").await;
    assert_eq!(success.status, 200);
    assert!(success.body.contains("verified"), "{}", success.body);
    assert!(success.body.contains("+1201*****23"));
}

#[tokio::test]
async fn the_sms_ends_with_the_origin_bound_code_line_and_no_newline() {
    let app = spawn_app_with(&[(
        "PHONE_VERIFY__SERVER__PUBLIC_URL",
        "https://verify.example.com:8443",
    )])
    .await;
    app.browser().request_code(A, "sms").await;
    let message = app.last_message_to(A).await;
    let code = message.code();
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        message.body,
        format!(
            "Your phone-verify code is {code}. It expires in 10 minutes.\n\n@verify.example.com #{code}"
        )
    );
}

#[tokio::test]
async fn a_call_reads_the_code_digit_by_digit_twice() {
    let app = spawn_app().await;
    let browser = app.browser();
    assert_eq!(browser.request_code(A, "call").await.status, 303);
    let message = app.last_message_to(A).await;
    assert_eq!(message.kind, "call");
    let code = message.code();
    let spoken = code
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(message.body.matches(&spoken).count(), 2, "{}", message.body);
    assert!(
        browser
            .get("/verify")
            .await
            .body
            .contains("Text me instead")
    );
    assert_eq!(
        browser.submit_code(&code).await.location(),
        Some("/success")
    );
}

#[tokio::test]
async fn call_me_instead_sends_a_new_code_by_voice_and_the_old_one_stops_working() {
    let app = spawn_app_with(&[("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")]).await;
    let browser = app.browser();
    browser.request_code(A, "sms").await;
    let first = app.code_for(A).await;
    let resent = browser.resend("call").await;
    assert_eq!(resent.status, 303);
    assert_eq!(resent.location(), Some("/verify"));
    let message = app.last_message_to(A).await;
    assert_eq!(message.kind, "call");
    let second = message.code();
    if first != second {
        assert_eq!(
            browser.submit_code(&first).await.status,
            422,
            "the replaced code is refused"
        );
    }
    assert_eq!(
        browser.submit_code(&second).await.location(),
        Some("/success")
    );
}

#[tokio::test]
async fn a_code_for_one_number_is_refused_in_the_browser_of_another() {
    let app = spawn_app().await;
    let (alice, bob) = (app.browser(), app.browser());
    alice.request_code(A, "sms").await;
    bob.request_code(B, "sms").await;
    let (code_a, code_b) = (app.code_for(A).await, app.code_for(B).await);
    if code_a != code_b {
        let refused = bob.submit_code(&code_a).await;
        assert_eq!(refused.status, 422);
    }
    assert_eq!(bob.submit_code(&code_b).await.location(), Some("/success"));
    assert_eq!(
        alice.submit_code(&code_a).await.location(),
        Some("/success")
    );
}

#[tokio::test]
async fn a_browser_without_a_session_cannot_use_a_code() {
    let app = spawn_app().await;
    app.browser().request_code(A, "sms").await;
    let code = app.code_for(A).await;
    let stranger = app.browser();
    let token = stranger.token("/").await;
    let attempt = stranger
        .post("/verify", &[("code", &code), ("csrf_token", &token)])
        .await;
    assert_eq!(attempt.status, 303);
    assert_eq!(attempt.location(), Some("/"));
}

#[tokio::test]
async fn a_used_code_is_refused_for_a_new_verification_of_the_same_number() {
    let app = spawn_app_with(&[("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")]).await;
    let first = app.browser();
    first.request_code(A, "sms").await;
    let used = app.code_for(A).await;
    assert_eq!(first.submit_code(&used).await.location(), Some("/success"));
    let second = app.browser();
    second.request_code(A, "sms").await;
    let fresh = app.code_for(A).await;
    if fresh != used {
        assert_eq!(second.submit_code(&used).await.status, 422);
    }
    assert_eq!(
        second.submit_code(&fresh).await.location(),
        Some("/success")
    );
}

#[tokio::test]
async fn an_expired_code_is_refused_and_a_new_one_is_offered() {
    let app = spawn_app_with(&[
        ("PHONE_VERIFY__VERIFICATION__TTL_SECS", "3"),
        ("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0"),
    ])
    .await;
    let browser = app.browser();
    browser.request_code(A, "sms").await;
    let code = app.code_for(A).await;
    let token = browser.token("/verify").await;
    tokio::time::sleep(std::time::Duration::from_millis(3300)).await;
    let expired = browser
        .post("/verify", &[("code", &code), ("csrf_token", &token)])
        .await;
    assert_eq!(expired.status, 422);
    assert!(expired.body.contains("expired"), "{}", expired.body);
    assert!(
        expired.body.contains("action=\"/resend\""),
        "offers a new code"
    );
    // The code page is gone: the browser goes back to the start.
    assert_eq!(browser.get("/verify").await.location(), Some("/"));
    // The offered button works.
    let token = expired.csrf_token().unwrap();
    let resent = browser
        .post("/resend", &[("channel", "sms"), ("csrf_token", &token)])
        .await;
    assert_eq!(resent.location(), Some("/verify"));
    let fresh = app.code_for(A).await;
    assert_eq!(
        browser.submit_code(&fresh).await.location(),
        Some("/success")
    );
}

#[tokio::test]
async fn the_last_wrong_attempt_ends_the_verification() {
    let app = spawn_app_with(&[("PHONE_VERIFY__VERIFICATION__MAX_CHECK_ATTEMPTS", "3")]).await;
    let browser = app.browser();
    browser.request_code(A, "sms").await;
    let code = app.code_for(A).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert!(
        browser
            .submit_code(wrong)
            .await
            .body
            .contains("2 attempts left")
    );
    assert!(
        browser
            .submit_code(wrong)
            .await
            .body
            .contains("1 attempt left")
    );
    let token = browser.token("/verify").await;
    let last = browser
        .post("/verify", &[("code", wrong), ("csrf_token", &token)])
        .await;
    assert_eq!(last.status, 422);
    assert!(
        last.body.contains("Too many incorrect codes"),
        "{}",
        last.body
    );
    let after = browser
        .post("/verify", &[("code", &code), ("csrf_token", &token)])
        .await;
    assert_eq!(after.status, 422, "the right code no longer works");
    assert_eq!(browser.get("/success").await.location(), Some("/"));
}

#[tokio::test]
async fn malformed_codes_get_a_clear_error_and_cost_no_attempt() {
    let app = spawn_app().await;
    let browser = app.browser();
    browser.request_code(A, "sms").await;
    let long = "1".repeat(500);
    let cases = [
        ("", "Enter the code"),
        ("abcdef", "6 digits"),
        (&long, "6 digits"),
        ("١٢٣٤٥٦", "6 digits"),
        ("123 456", "6 digits"),
    ];
    for (input, message) in cases {
        let page = browser.submit_code(input).await;
        assert_eq!(page.status, 422, "{input:?}");
        assert!(page.body.contains(message), "{input:?}: {}", page.body);
        assert!(
            page.body.contains("5 attempts left"),
            "{input:?} cost an attempt"
        );
    }
    let code = app.code_for(A).await;
    assert_eq!(
        browser.submit_code(&format!(" {code} ")).await.location(),
        Some("/success")
    );
}

#[tokio::test]
async fn invalid_phone_numbers_get_the_form_again_and_nothing_is_sent() {
    let app = spawn_app().await;
    let browser = app.browser();
    let long = "9".repeat(500);
    let cases = [
        ("", "Enter your phone number"),
        ("call me maybe", "only digits"),
        ("١٢٣٤٥٦٧٨٩٠", "only digits"),
        ("123", "too short"),
        (&long, "too long"),
        ("+1 011 555 0123", "not a valid phone number"),
    ];
    for (input, message) in cases {
        let page = browser.request_code(input, "sms").await;
        assert_eq!(page.status, 422, "{input:?}");
        assert!(page.body.contains(message), "{input:?}: {}", page.body);
        assert!(page.body.contains("aria-invalid=\"true\""));
        assert!(page.body.contains("phone-error"));
    }
    let bad_channel = browser.request_code(A, "fax").await;
    assert_eq!(bad_channel.status, 422);
    assert!(app.messages().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn numbers_outside_the_allowed_countries_are_refused() {
    let app = spawn_app_with(&[("PHONE_VERIFY__VERIFICATION__ALLOWED_COUNTRIES", "GB")]).await;
    let browser = app.browser();
    let refused = browser.request_code(A, "sms").await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("country"), "{}", refused.body);
    assert!(app.messages().is_empty());
    assert_eq!(
        browser.request_code("+44 7400 123456", "sms").await.status,
        303
    );
}

#[tokio::test]
async fn hex_codes_are_accepted_in_either_case() {
    let app = spawn_app_with(&[("PHONE_VERIFY__VERIFICATION__CODE_ALPHABET", "hex")]).await;
    let browser = app.browser();
    browser.request_code(A, "sms").await;
    let code = app.code_for(A).await;
    assert_eq!(code.len(), 6);
    assert!(code.chars().all(|c| c.is_ascii_hexdigit()), "{code}");
    let page = browser.get("/verify").await;
    assert!(
        !page.body.contains("inputmode=\"numeric\""),
        "hex codes have letters"
    );
    assert_eq!(
        browser.submit_code(&code.to_lowercase()).await.location(),
        Some("/success")
    );
}

#[tokio::test]
async fn the_verify_page_without_a_session_sends_the_browser_to_the_start() {
    let app = spawn_app().await;
    let page = app.browser().get("/verify").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/"));
}

#[tokio::test]
async fn the_success_page_needs_an_approved_verification() {
    let app = spawn_app().await;
    let browser = app.browser();
    assert_eq!(
        browser.get("/success").await.location(),
        Some("/"),
        "no session"
    );
    browser.request_code(A, "sms").await;
    assert_eq!(
        browser.get("/success").await.location(),
        Some("/"),
        "pending"
    );
}

#[tokio::test]
async fn sixteen_parallel_right_codes_approve_exactly_once() {
    let app = spawn_app().await;
    let browser = std::sync::Arc::new(app.browser());
    browser.request_code(A, "sms").await;
    let code = app.code_for(A).await;
    let token = browser.token("/verify").await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (browser, code, token) = (browser.clone(), code.clone(), token.clone());
            tokio::spawn(async move {
                browser
                    .post("/verify", &[("code", &code), ("csrf_token", &token)])
                    .await
            })
        })
        .collect();
    let mut approvals = 0;
    for task in tasks {
        let page = task.await.unwrap();
        assert_eq!(page.location(), Some("/success"));
        // Only the request that approved starts the new (rotated) session.
        approvals += usize::from(!page.set_cookies().is_empty());
    }
    assert_eq!(approvals, 1);
    assert_eq!(app.logs().matches("valid=true").count(), 1);
}

#[tokio::test]
async fn fifty_parallel_wrong_codes_evaluate_at_most_the_maximum() {
    let app = spawn_app().await;
    let browser = std::sync::Arc::new(app.browser());
    browser.request_code(A, "sms").await;
    let code = app.code_for(A).await;
    let wrong = if code == "000000" {
        "111111".to_string()
    } else {
        "000000".to_string()
    };
    let token = browser.token("/verify").await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (browser, wrong, token) = (browser.clone(), wrong.clone(), token.clone());
            tokio::spawn(async move {
                browser
                    .post("/verify", &[("code", &wrong), ("csrf_token", &token)])
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().status, 422);
    }
    assert_eq!(
        app.logs().matches("valid=false").count(),
        5,
        "{}",
        app.logs()
    );
    let after = browser
        .post("/verify", &[("code", &code), ("csrf_token", &token)])
        .await;
    assert_eq!(after.status, 422, "the verification has ended");
}

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let page = Browser::new(&app.address).get("/healthz").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("ok"));
}
