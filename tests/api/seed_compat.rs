//! The tutorials' routes: off by default, same rules when on.

use crate::helpers::{Reply, spawn_app, spawn_app_with};

const A: &str = "+12015550123";

async fn get(app: &crate::helpers::TestApp, path: &str) -> Reply {
    Reply::read(reqwest::get(app.url(path)).await.unwrap()).await
}

#[tokio::test]
async fn the_tutorial_routes_are_off_by_default() {
    let app = spawn_app().await;
    for path in [
        "/request-auth?number=%2B12015550123",
        "/verify/+12015550123",
        "/verify_voice/+12015550123",
        "/checkcode/+12015550123/123456",
    ] {
        assert_eq!(get(&app, path).await.status, 404, "{path}");
    }
    assert!(app.messages().is_empty());
}

#[tokio::test]
async fn signalwire_routes_send_and_validate_with_real_statuses() {
    let app = spawn_app_with(&[("PHONE_VERIFY__COMPAT__SIGNALWIRE_ROUTES", "true")]).await;
    let sent = get(&app, "/request-auth?number=%2B12015550123").await;
    assert_eq!(sent.status, 200, "{:?}", sent.json);
    let code = app.code_for(A).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let client = reqwest::Client::new();
    let validate = |code: String| {
        let request = client
            .post(app.url("/validate-auth"))
            .form(&[("number", A.to_string()), ("auth_code", code)]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(validate(wrong.to_string()).await, 403);
    assert_eq!(validate(code.clone()).await, 200);
    assert_eq!(validate(code).await, 403, "a code works once");
    let call = client
        .post(app.url("/request-auth"))
        .form(&[("number", "+12015550124"), ("channel", "voice")])
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200);
    assert_eq!(app.last_message_to("+12015550124").await.kind, "call");
    assert_eq!(get(&app, "/request-auth?number=nope").await.status, 400);
}

#[tokio::test]
async fn plivo_routes_answer_like_the_tutorial() {
    let app = spawn_app_with(&[("PHONE_VERIFY__COMPAT__PLIVO_ROUTES", "true")]).await;
    assert_eq!(get(&app, "/verify/+12015550123").await.status, 200);
    let code = app.code_for(A).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let rejected = get(&app, &format!("/checkcode/+12015550123/{wrong}")).await;
    assert_eq!(rejected.status, 404);
    assert_eq!(
        rejected.json,
        serde_json::json!({"status": "rejected", "message": "codes do not match, number not verified"})
    );
    let matched = get(&app, &format!("/checkcode/+12015550123/{code}")).await;
    assert_eq!(matched.status, 200);
    assert_eq!(
        matched.json,
        serde_json::json!({"status": "success", "message": "codes match, number verified"})
    );
    assert_eq!(get(&app, "/verify_voice/+12015550124").await.status, 200);
    assert_eq!(app.last_message_to("+12015550124").await.kind, "call");
    assert!(
        !app.logs().contains(&code),
        "codes in these URLs are not logged"
    );
}

#[tokio::test]
async fn tutorial_routes_obey_the_same_limits() {
    let app = spawn_app_with(&[("PHONE_VERIFY__COMPAT__PLIVO_ROUTES", "true")]).await;
    assert_eq!(get(&app, "/verify/+12015550123").await.status, 200);
    let limited = get(&app, "/verify/+12015550123").await;
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    assert_eq!(app.messages_to(A).len(), 1);
}

#[tokio::test]
async fn oversized_bodies_on_the_tutorial_routes_get_413_and_nothing_acts() {
    let app = spawn_app_with(&[("PHONE_VERIFY__COMPAT__SIGNALWIRE_ROUTES", "true")]).await;
    let client = reqwest::Client::new();
    let big = format!("padding={}", "x".repeat(20 * 1024));
    let oversized = |path: &str| {
        client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
    };
    let sent = oversized("/request-auth?number=%2B12015550123")
        .await
        .unwrap();
    assert_eq!(sent.status(), 413);
    assert!(app.messages().is_empty(), "the query's number got no code");
    // A real verification, then a check whose fields ride in the query of an oversized body.
    assert_eq!(
        get(&app, "/request-auth?number=%2B12015550123")
            .await
            .status,
        200
    );
    let code = app.code_for(A).await;
    let check = oversized(&format!(
        "/validate-auth?number=%2B12015550123&auth_code={code}"
    ))
    .await
    .unwrap();
    assert_eq!(check.status(), 413);
    let validate = client
        .post(app.url("/validate-auth"))
        .form(&[("number", A), ("auth_code", &code)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        validate.status(),
        200,
        "the refused request used up nothing"
    );
}
