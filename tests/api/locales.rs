//! Languages end to end: the locale of a verification from each input (the API's
//! `locale`, `/v2`'s `Locale`, the pages' `Accept-Language`, `default_locale`), and the
//! SMS, the call and the pages in it.

use serde_json::json;

use crate::helpers::{TestApp, api, spawn_app_with, twilio_v2};

const A: &str = "+12015550123";
const B: &str = "+12015550124";
const API_KEY: &str = "locales-test-key-01234";

async fn app(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("PHONE_VERIFY__API__KEYS", API_KEY),
        ("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0"),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

/// The code a call read out, whatever the words around it: its digits "1, 2, 3, ...".
fn spoken_code(text: &str) -> String {
    let start = text.find(|c: char| c.is_ascii_digit()).unwrap();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == ' ')
        .filter(char::is_ascii_digit)
        .collect()
}

#[tokio::test]
async fn the_api_sends_in_the_locale_asked_for_and_falls_back_by_region_then_default() {
    let app = app(&[]).await;
    let client = api(&app, API_KEY);
    let spanish = client
        .post("/api/v1/verifications", json!({"to": A, "locale": "es-MX"}))
        .await;
    assert_eq!(spanish.status, 201, "{:?}", spanish.json);
    assert_eq!(spanish.json["locale"], "es");
    let sms = app.last_message_to(A).await;
    let code = sms.code();
    assert_eq!(
        sms.body,
        format!(
            "Tu código de phone-verify es {code}. Es válido durante 10 minutos.\n\n@127.0.0.1 #{code}"
        )
    );
    let id = spanish.json["id"].as_str().unwrap();
    let read = client.get(&format!("/api/v1/verifications/{id}")).await;
    assert_eq!(read.json["locale"], "es");

    let german = client
        .post(
            "/api/v1/verifications",
            json!({"to": B, "channel": "call", "locale": "de"}),
        )
        .await;
    assert_eq!(german.json["locale"], "de");
    let call = app.last_message_to(B).await;
    let digits = spoken_code(&call.body);
    let spoken: Vec<String> = digits.chars().map(String::from).collect();
    let said = format!("Ihr Code für phone-verify lautet {}.", spoken.join(", "));
    assert_eq!(call.body, format!("{said} {said}"));
    assert_eq!(client.check(B, &digits).await.json["valid"], true);

    let unknown = client
        .post(
            "/api/v1/verifications",
            json!({"to": "+12015550125", "locale": "xx"}),
        )
        .await;
    assert_eq!(unknown.status, 201);
    assert_eq!(unknown.json["locale"], "en");
    assert!(
        app.last_message_to("+12015550125")
            .await
            .body
            .starts_with("Your phone-verify code is")
    );

    let sent = app.messages().len();
    for bad in ["es_MX", "", "not a tag", "e"] {
        let refused = client
            .post(
                "/api/v1/verifications",
                json!({"to": "+12015550126", "locale": bad}),
            )
            .await;
        assert_eq!(refused.status, 400, "{bad:?}: {:?}", refused.json);
        assert_eq!(refused.json["code"], "invalid_locale");
    }
    assert_eq!(
        app.messages().len(),
        sent,
        "nothing sent for an invalid tag"
    );
}

#[tokio::test]
async fn the_twilio_compatible_api_takes_locale() {
    let app = app(&twilio_v2::ENV).await;
    let create = |form: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move { twilio_v2::post(app, "Verifications", &form).await }
    };
    let german = create(vec![("To", A), ("Channel", "sms"), ("Locale", "de")]).await;
    assert_eq!(german.status, 201, "{:?}", german.json);
    assert_eq!(german.json["locale"], "de");
    let sms = app.last_message_to(A).await;
    assert!(
        sms.body.starts_with("Ihr Code für phone-verify lautet "),
        "{}",
        sms.body
    );
    assert!(sms.body.contains("Er ist 10 Minuten gültig."));

    let invalid = create(vec![("To", B), ("Channel", "sms"), ("Locale", "de_DE!")]).await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.json["code"], 60200);
    assert!(app.messages_to(B).is_empty());
}

#[tokio::test]
async fn the_pages_speak_the_browsers_language_and_so_does_its_sms() {
    let app = app(&[]).await;
    let spanish = app.browser_speaking("es-MX,es;q=0.9,en;q=0.5");
    let form = spanish.get("/").await;
    assert!(form.body.contains("<html lang=\"es\">"), "{}", form.body);
    assert!(
        form.body
            .contains("<h1>Verifica tu número de teléfono</h1>")
    );
    assert!(form.body.contains("Saltar al contenido"));
    let invalid = spanish.request_code("12", "sms").await;
    assert_eq!(invalid.status, 422);
    assert!(
        invalid.body.contains("Ese número es demasiado corto."),
        "{}",
        invalid.body
    );

    assert_eq!(spanish.request_code(A, "sms").await.status, 303);
    let sms = app.last_message_to(A).await;
    assert!(
        sms.body.starts_with("Tu código de phone-verify es "),
        "{}",
        sms.body
    );
    let code_form = spanish.get("/verify").await;
    assert!(code_form.body.contains("Enviamos un SMS al <strong class=\"number\">+1201*****23</strong> con un código de 6 dígitos. Es válido durante 10 minutos."), "{}", code_form.body);
    assert!(code_form.body.contains("Te quedan 5 intentos."));
    let wrong = if sms.code() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let rejected = spanish.submit_code(wrong).await;
    assert!(
        rejected.body.contains("Ese código no es correcto."),
        "{}",
        rejected.body
    );
    assert_eq!(
        rejected.body.matches("Te quedan 4 intentos.").count(),
        1,
        "the attempts left are said once"
    );
    let done = spanish.submit_code(&sms.code()).await;
    assert_eq!(done.location(), Some("/success"));
    let success = spanish.get("/success").await;
    assert!(
        success.body.contains("<h1>Verificación completada</h1>"),
        "{}",
        success.body
    );

    let german = app.browser_speaking("de-CH, de;q=0.9");
    assert_eq!(german.request_code(B, "call").await.status, 303);
    let call = app.last_message_to(B).await;
    assert!(
        call.body.starts_with("Ihr Code für phone-verify lautet "),
        "{}",
        call.body
    );
    let page = german.get("/verify").await;
    assert!(page.body.contains("<html lang=\"de\">"));
    assert!(
        page.body
            .contains("Wir rufen <strong class=\"number\">+1201*****24</strong> an"),
        "{}",
        page.body
    );
    let resent = german.resend("call").await;
    assert_eq!(resent.status, 303, "{}", resent.body);

    let unknown = app.browser_speaking("xx, nl;q=0.8");
    let english = unknown.get("/").await;
    assert!(english.body.contains("<html lang=\"en\">"));
    assert!(english.body.contains("Verify your phone number"));
    let missing = unknown.get("/nowhere").await;
    assert_eq!(missing.status, 404);
    let lost = german.get("/nowhere").await;
    assert!(lost.body.contains("Seite nicht gefunden"), "{}", lost.body);
}

#[tokio::test]
async fn the_default_locale_and_per_locale_templates_are_the_operators() {
    let app = app(&[
        ("PHONE_VERIFY__VERIFICATION__DEFAULT_LOCALE", "de"),
        (
            "PHONE_VERIFY__VERIFICATION__TEMPLATES__ES__SMS",
            "Código {code} para {app_name}, {minutes} min.",
        ),
        (
            "PHONE_VERIFY__VERIFICATION__TEMPLATES__ES__CALL",
            "Hola. {code}.",
        ),
    ])
    .await;
    let client = api(&app, API_KEY);
    let default = client.start(A).await;
    assert_eq!(default.json["locale"], "de");
    assert!(
        app.last_message_to(A)
            .await
            .body
            .starts_with("Ihr Code für phone-verify lautet")
    );
    let page = app.browser().get("/").await;
    assert!(
        page.body.contains("<html lang=\"de\">"),
        "no Accept-Language: the default"
    );

    client
        .post("/api/v1/verifications", json!({"to": B, "locale": "es"}))
        .await;
    let sms = app.last_message_to(B).await;
    let code = sms.code();
    assert_eq!(
        sms.body,
        format!("Código {code} para phone-verify, 10 min.\n\n@127.0.0.1 #{code}")
    );
    client
        .post(
            "/api/v1/verifications",
            json!({"to": B, "channel": "call", "locale": "es"}),
        )
        .await;
    let call = app.last_message_to(B).await;
    let digits = spoken_code(&call.body);
    let said = format!(
        "Hola. {}.",
        digits
            .chars()
            .map(String::from)
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_eq!(call.body, format!("{said} {said}"));
}

#[tokio::test]
async fn one_sms_template_overrides_every_locale() {
    let app = app(&[(
        "PHONE_VERIFY__VERIFICATION__SMS_TEMPLATE",
        "{app_name}: {code}",
    )])
    .await;
    let client = api(&app, API_KEY);
    client
        .post("/api/v1/verifications", json!({"to": A, "locale": "fr"}))
        .await;
    let sms = app.last_message_to(A).await;
    let code = sms.code();
    assert_eq!(
        sms.body,
        format!("phone-verify: {code}\n\n@127.0.0.1 #{code}")
    );
    // Calls keep their language.
    client
        .post(
            "/api/v1/verifications",
            json!({"to": B, "channel": "call", "locale": "fr"}),
        )
        .await;
    assert!(
        app.last_message_to(B)
            .await
            .body
            .starts_with("Votre code phone-verify est ")
    );
}

#[tokio::test]
async fn locale_settings_are_checked_at_start_up() {
    for (key, value, named) in [
        (
            "PHONE_VERIFY__VERIFICATION__DEFAULT_LOCALE",
            "nl",
            "verification.default_locale",
        ),
        (
            "PHONE_VERIFY__VERIFICATION__DEFAULT_LOCALE",
            "e_",
            "verification.default_locale",
        ),
        (
            "PHONE_VERIFY__VERIFICATION__TEMPLATES__NL__SMS",
            "{code}",
            "verification.templates.nl",
        ),
        (
            "PHONE_VERIFY__VERIFICATION__TEMPLATES__ES__SMS",
            "no code",
            "verification.templates.es.sms",
        ),
    ] {
        let output = crate::helpers::command(&[(key, value)])
            .arg("check-config")
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{key}={value}: {stderr}");
    }
}

/// What a Spanish or German SMS and call begin with.
fn opening(locale: &str) -> &'static str {
    match locale {
        "es" => "Tu código de phone-verify es ",
        "de" => "Ihr Code für phone-verify lautet ",
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn every_input_gives_spanish_and_german_sms_and_calls() {
    let app = app(&twilio_v2::ENV).await;
    let client = api(&app, API_KEY);
    let mut n = 200;
    for locale in ["es", "de"] {
        for channel in ["sms", "call"] {
            n += 1;
            let to = format!("+12015550{n}");
            let started = client
                .post(
                    "/api/v1/verifications",
                    json!({"to": to, "channel": channel, "locale": locale}),
                )
                .await;
            assert_eq!(started.json["locale"], locale);
            let message = app.last_message_to(&to).await;
            assert_eq!(message.kind, channel);
            assert!(
                message.body.starts_with(opening(locale)),
                "api {locale} {channel}: {}",
                message.body
            );

            n += 1;
            let to = format!("+12015550{n}");
            let created = twilio_v2::post(
                &app,
                "Verifications",
                &[
                    ("To", to.as_str()),
                    ("Channel", channel),
                    ("Locale", locale),
                ],
            )
            .await;
            assert_eq!(created.json["locale"], locale);
            let message = app.last_message_to(&to).await;
            assert!(
                message.body.starts_with(opening(locale)),
                "v2 {locale} {channel}: {}",
                message.body
            );

            n += 1;
            let to = format!("+12015550{n}");
            let browser = app.browser_speaking(locale);
            assert_eq!(browser.request_code(&to, channel).await.status, 303);
            let message = app.last_message_to(&to).await;
            assert!(
                message.body.starts_with(opening(locale)),
                "pages {locale} {channel}: {}",
                message.body
            );
            let page = browser.get("/verify").await;
            assert!(page.body.contains(&format!("<html lang=\"{locale}\">")));
        }
    }
}
