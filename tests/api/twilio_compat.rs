//! The Twilio Verify v2 compatible API, checked by hand and by Twilio's own library.

use std::io::{BufRead, Write};

use crate::helpers::twilio_v2::{self, ACCOUNT, SERVICE, TOKEN};
use crate::helpers::{Reply, python_with, spawn_app_with};

const A: &str = "+12015550123";
async fn app_with(extra: &[(&str, &str)]) -> crate::helpers::TestApp {
    let mut env = twilio_v2::ENV.to_vec();
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

async fn post(app: &crate::helpers::TestApp, path: &str, form: &[(&str, &str)]) -> Reply {
    post_as(app, path, form, ACCOUNT, TOKEN).await
}

async fn post_as(
    app: &crate::helpers::TestApp,
    path: &str,
    form: &[(&str, &str)],
    user: &str,
    password: &str,
) -> Reply {
    let response = reqwest::Client::new()
        .post(app.url(path))
        .basic_auth(user, Some(password))
        .form(form)
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

fn verifications() -> String {
    format!("/v2/Services/{SERVICE}/Verifications")
}

fn check_path() -> String {
    format!("/v2/Services/{SERVICE}/VerificationCheck")
}

fn assert_twilio_error(reply: &Reply, status: u16, code: u64) {
    assert_eq!(reply.status, status, "{:?}", reply.json);
    assert_eq!(reply.json["code"], code, "{:?}", reply.json);
    assert_eq!(reply.json["status"], status);
    assert!(reply.json["message"].is_string());
    assert_eq!(
        reply.json["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
}

#[tokio::test]
async fn the_v2_api_is_off_unless_enabled() {
    let app = spawn_app_with(&[]).await;
    let reply = post(&app, &verifications(), &[("To", A), ("Channel", "sms")]).await;
    assert_eq!(reply.status, 404);
    assert!(app.messages().is_empty());
}

#[tokio::test]
async fn a_verification_resource_has_twilios_shape() {
    let app = app_with(&[]).await;
    let created = post(&app, &verifications(), &[("To", A), ("Channel", "sms")]).await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    let v = &created.json;
    let sid = v["sid"].as_str().unwrap();
    assert!(
        sid.starts_with("VE") && sid.len() == 34 && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{sid}"
    );
    assert_eq!(v["service_sid"], SERVICE);
    assert_eq!(v["account_sid"], ACCOUNT);
    assert_eq!(
        (
            v["to"].as_str(),
            v["channel"].as_str(),
            v["status"].as_str()
        ),
        (Some(A), Some("sms"), Some("pending"))
    );
    assert_eq!(v["valid"], false);
    assert_eq!(v["send_code_attempts"][0]["channel"], "sms");
    assert!(
        v["send_code_attempts"][0]["attempt_sid"]
            .as_str()
            .unwrap()
            .starts_with("VL")
    );
    assert!(v["date_created"].as_str().unwrap().ends_with('Z'));
    assert!(
        v["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v2/Services/{SERVICE}/Verifications/{sid}"))
    );

    let fetched = Reply::read(
        reqwest::Client::new()
            .get(app.url(&format!("{}/{sid}", verifications())))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json["sid"], sid);

    let code = app.code_for(A).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let pending = post(&app, &check_path(), &[("To", A), ("Code", wrong)]).await;
    assert_eq!(
        (
            pending.status,
            pending.json["status"].as_str(),
            pending.json["valid"].as_bool()
        ),
        (200, Some("pending"), Some(false))
    );
    let approved = post(
        &app,
        &check_path(),
        &[("VerificationSid", sid), ("Code", &code)],
    )
    .await;
    assert_eq!(
        (
            approved.status,
            approved.json["status"].as_str(),
            approved.json["valid"].as_bool()
        ),
        (200, Some("approved"), Some(true))
    );
    assert_twilio_error(
        &post(&app, &check_path(), &[("To", A), ("Code", &code)]).await,
        404,
        20404,
    );
}

#[tokio::test]
async fn authentication_and_service_errors_use_twilio_codes() {
    let app = app_with(&[]).await;
    assert_twilio_error(
        &post_as(
            &app,
            &verifications(),
            &[("To", A), ("Channel", "sms")],
            ACCOUNT,
            "wrong",
        )
        .await,
        401,
        20003,
    );
    let anonymous = Reply::read(
        reqwest::Client::new()
            .post(app.url(&verifications()))
            .form(&[("To", A)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_twilio_error(&anonymous, 401, 20003);
    let other_service = post(
        &app,
        "/v2/Services/VA00000000000000000000000000000000/Verifications",
        &[("To", A), ("Channel", "sms")],
    )
    .await;
    assert_twilio_error(&other_service, 404, 20404);
    assert_twilio_error(
        &post(
            &app,
            &verifications(),
            &[("To", "garbage"), ("Channel", "sms")],
        )
        .await,
        400,
        60200,
    );
    assert_twilio_error(
        &post(&app, &verifications(), &[("To", A), ("Channel", "email")]).await,
        400,
        60200,
    );
    assert!(app.messages().is_empty());
}

#[tokio::test]
async fn limits_and_geo_permissions_use_twilio_codes() {
    let app = app_with(&[
        ("PHONE_VERIFY__VERIFICATION__MAX_CHECK_ATTEMPTS", "1"),
        ("PHONE_VERIFY__VERIFICATION__ALLOWED_COUNTRIES", "US"),
    ])
    .await;
    assert_twilio_error(
        &post(
            &app,
            &verifications(),
            &[("To", "+447400123456"), ("Channel", "sms")],
        )
        .await,
        403,
        60605,
    );
    assert_eq!(
        post(&app, &verifications(), &[("To", A), ("Channel", "sms")])
            .await
            .status,
        201
    );
    let resend = post(&app, &verifications(), &[("To", A), ("Channel", "sms")]).await;
    assert_twilio_error(&resend, 429, 60203);
    assert!(resend.header("retry-after").is_some());
    let code = app.code_for(A).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    post(&app, &check_path(), &[("To", A), ("Code", wrong)]).await;
    assert_twilio_error(
        &post(&app, &check_path(), &[("To", A), ("Code", &code)]).await,
        429,
        60202,
    );
}

#[tokio::test]
async fn a_status_update_cancels_or_approves() {
    let app = app_with(&[]).await;
    let first = post(&app, &verifications(), &[("To", A), ("Channel", "sms")])
        .await
        .json["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let canceled = post(
        &app,
        &format!("{}/{first}", verifications()),
        &[("Status", "canceled")],
    )
    .await;
    assert_eq!(
        (canceled.status, canceled.json["status"].as_str()),
        (200, Some("canceled"))
    );
    assert_twilio_error(
        &post(
            &app,
            &format!("{}/{first}", verifications()),
            &[("Status", "approved")],
        )
        .await,
        404,
        20404,
    );

    let other = "+12015550124";
    let second = post(
        &app,
        &verifications(),
        &[("To", other), ("Channel", "call")],
    )
    .await
    .json["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let approved = post(
        &app,
        &format!("{}/{second}", verifications()),
        &[("Status", "approved")],
    )
    .await;
    assert_eq!(
        (
            approved.status,
            approved.json["status"].as_str(),
            approved.json["valid"].as_bool()
        ),
        (200, Some("approved"), Some(true))
    );
    assert_twilio_error(
        &post(
            &app,
            &format!("{}/{second}", verifications()),
            &[("Status", "paused")],
        )
        .await,
        400,
        60200,
    );
}

#[tokio::test]
async fn twilios_own_helper_library_completes_a_verification() {
    let Some(python) = python_with("twilio") else {
        return;
    };
    let app = app_with(&[]).await;
    let mut child = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/twilio_sdk_check.py"
        ))
        .args([
            &format!("http://{}", app.address),
            ACCOUNT,
            TOKEN,
            SERVICE,
            A,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut created = String::new();
    stdout.read_line(&mut created).unwrap();
    assert!(
        created.starts_with("created VE") && created.contains("pending sms"),
        "{created:?}"
    );
    let code = app.code_for(A).await;
    writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
    let rest: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        rest,
        [
            "wrong pending False",
            "checked approved True",
            "fetched approved",
            "error 404 20404"
        ]
    );
}
