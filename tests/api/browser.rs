//! The hosted pages in a real browser (Chromium through chromedriver): the flow as a
//! person goes through it, with the keyboard alone too, in Spanish, as the login page of
//! an OpenID Connect sign-in; axe-core's WCAG 2.1 A/AA review of every page; and
//! screenshots of every page and state under `target/screenshots/`.

use std::time::{Duration, Instant};

use fantoccini::key::Key;

use crate::chrome::{DESKTOP, Driver, Look, PHONE, Page, axe_source};
use crate::helpers::{TestApp, spawn_app_with};

const A: &str = "+12015550123";

async fn app(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

const SHOP_ID: &str = "shop";
const SHOP_SECRET: &str = "a-long-client-secret-0123456789";

/// A relying party's two pages, served by the test on a random port: `/` with a
/// "Sign in" link to phone-verify, and `/callback`, which thanks whoever arrives. Every
/// callback's query is kept.
struct Shop {
    port: u16,
    callbacks: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Shop {
    async fn open(authorize: impl Fn(u16) -> String + Send + 'static) -> Shop {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let callbacks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = callbacks.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = vec![0; 8192];
                let n = stream.read(&mut request).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&request[..n]).into_owned();
                let target = head.split(' ').nth(1).unwrap_or("/").to_string();
                let body = if let Some(query) = target.strip_prefix("/callback?") {
                    seen.lock().unwrap().push(query.to_string());
                    "<!doctype html><html lang=en><title>Example Shop</title><h1>Back at Example Shop</h1>".to_string()
                } else {
                    format!(
                        "<!doctype html><html lang=en><title>Example Shop</title><h1>Example Shop</h1><a id=sign-in href=\"{}\">Sign in with your phone</a>",
                        authorize(port)
                    )
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        Shop { port, callbacks }
    }

    fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }
}

/// The app with the shop registered as an OpenID Connect client.
async fn app_for_shop(shop_port: u16, extra: &[(&str, &str)]) -> TestApp {
    let config = std::env::temp_dir().join(format!(
        "pv-browser-{}-{shop_port}.toml",
        std::process::id()
    ));
    std::fs::write(
        &config,
        format!(
            "[oidc]\nenabled = true\n[[oidc.clients]]\nclient_id = \"{SHOP_ID}\"\nclient_secret = \"{SHOP_SECRET}\"\nredirect_uris = [\"http://127.0.0.1:{shop_port}/callback\"]\nname = \"Example Shop\"\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let mut env = vec![
        ("PHONE_VERIFY_CONFIG", config.as_str()),
        (
            "PHONE_VERIFY__SERVER__SECRET",
            "0123456789abcdef0123456789abcdef-browser",
        ),
    ];
    env.extend_from_slice(extra);
    app(&env).await
}

fn authorize_url(app_address: &str, shop_port: u16, state: &str) -> String {
    let redirect = format!("http://127.0.0.1:{shop_port}/callback");
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", SHOP_ID),
            ("redirect_uri", redirect.as_str()),
            ("scope", "openid phone"),
            ("state", state),
            ("nonce", "n-1"),
        ])
        .finish();
    format!("http://{app_address}/oidc/authorize?{query}")
}

fn wrong(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

/// Types a number on the phone form the way people write it, and sends it by `channel`.
async fn request(page: &Page, app: &TestApp, typed: &str, channel: &str) {
    page.goto(&app.url("/")).await;
    page.type_into("#phone", typed).await;
    page.wait_for(&format!("input[name=channel][value={channel}]"))
        .await
        .click()
        .await
        .unwrap();
    page.click_and_wait("form[action='/request'] button[type=submit]")
        .await;
}

async fn submit_code(page: &Page, code: &str) {
    page.type_into("#code", code).await;
    page.click_and_wait("form[action='/verify'] button[type=submit]")
        .await;
}

#[tokio::test]
async fn a_person_types_their_number_their_way_and_is_verified() {
    let Some(mut driver) = Driver::start().await else {
        return;
    };
    let app = app(&[]).await;
    let page = driver.session(DESKTOP).await;
    request(&page, &app, "(201) 555-0123", "sms").await;
    assert_eq!(page.path().await, "/verify");
    let lead = page.text(".lead").await;
    assert!(lead.contains("+1201*****23"), "{lead}");
    let code = app.code_for(A).await;
    submit_code(&page, &code).await;
    assert_eq!(page.path().await, "/success");
    assert_eq!(page.text("h1").await, "You’re verified");

    // Back does not bring the code form back: the verification is over.
    page.client.back().await.unwrap();
    page.wait_for("body").await;
    assert!(!page.exists("#code").await, "{}", page.path().await);
    page.close().await;
}

#[tokio::test]
async fn a_wrong_code_is_said_once_next_to_the_field_which_keeps_the_focus() {
    let Some(mut driver) = Driver::start().await else {
        return;
    };
    let app = app(&[]).await;
    let page = driver.session(PHONE).await;
    request(&page, &app, "2015550123", "sms").await;
    let code = app.code_for(A).await;
    submit_code(&page, wrong(&code)).await;
    let error = page.text("#code-error").await;
    assert_eq!(error, "That code isn’t right.");
    assert_eq!(page.text("#code-hint").await, "4 attempts left.");
    let text = page.body_text().await;
    assert_eq!(
        text.matches("attempts left").count(),
        1,
        "said once: {text}"
    );
    let focused = page
        .eval("return [document.activeElement.id, document.activeElement.getAttribute('aria-invalid'), document.activeElement.getAttribute('aria-describedby')]")
        .await;
    assert_eq!(
        focused,
        serde_json::json!(["code", "true", "code-hint code-error"])
    );
    submit_code(&page, &code).await;
    assert_eq!(page.path().await, "/success");
    page.close().await;
}

#[tokio::test]
async fn resend_waits_for_the_cooldown_and_the_old_code_stops_working() {
    let Some(mut driver) = Driver::start().await else {
        return;
    };
    let app = app(&[("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "4")]).await;
    let page = driver.session(DESKTOP).await;
    request(&page, &app, "201-555-0123", "sms").await;
    let first = app.code_for(A).await;
    let resend = "form[action='/resend'] button";
    let button = page.wait_for(resend).await;
    assert!(
        !button.is_enabled().await.unwrap(),
        "disabled during the cooldown"
    );
    let label = button.text().await.unwrap();
    assert!(label.starts_with("Send a new code ("), "{label}");
    let started = Instant::now();
    while !button.is_enabled().await.unwrap() {
        assert!(started.elapsed() < Duration::from_secs(7), "still disabled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(button.text().await.unwrap(), "Send a new code");
    page.click_and_wait(resend).await;
    let started = Instant::now();
    let second = loop {
        let latest = app.code_for(A).await;
        if app.messages_to(A).len() == 2 {
            break latest;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no second code");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if first != second {
        submit_code(&page, &first).await;
        assert!(page.exists("#code-error").await, "the old code fails");
    }
    submit_code(&page, &second).await;
    assert_eq!(page.path().await, "/success");
    page.close().await;
}

#[tokio::test]
async fn call_me_instead_places_a_call() {
    let Some(mut driver) = Driver::start().await else {
        return;
    };
    let app = app(&[]).await;
    let page = driver.session(PHONE).await;
    request(&page, &app, "(201) 555-0123", "sms").await;
    page.click_and_wait("form[action='/resend'] input[value=call] + button")
        .await;
    let call = app.last_message_to(A).await;
    assert_eq!(call.kind, "call");
    assert!(page.text(".lead").await.starts_with("We are calling"));
    submit_code(&page, &call.code()).await;
    assert_eq!(page.path().await, "/success");
    page.close().await;
}

#[tokio::test]
async fn a_second_browser_cannot_reach_the_first_ones_verification() {
    let Some(mut driver) = Driver::start().await else {
        return;
    };
    let app = app(&[]).await;
    let first = driver.session(DESKTOP).await;
    request(&first, &app, "(201) 555-0123", "sms").await;
    let code = app.code_for(A).await;
    let second = driver.session(DESKTOP).await;
    for path in ["/verify", "/success"] {
        second.goto(&app.url(path)).await;
        assert_eq!(
            second.path().await,
            "/",
            "{path} leads a stranger to the start"
        );
        assert!(!second.exists("#code").await);
    }
    submit_code(&first, &code).await;
    assert_eq!(first.path().await, "/success");
    second.goto(&app.url("/success")).await;
    assert_eq!(second.path().await, "/");
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn the_flow_completes_with_the_keyboard_alone() {
    let Some(mut driver) = Driver::start().await else {
        return;
    };
    let app = app(&[]).await;
    let page = driver.session(DESKTOP).await;
    page.goto(&app.url("/")).await;
    let keys = |text: String| {
        let client = page.client.clone();
        async move {
            client
                .active_element()
                .await
                .unwrap()
                .send_keys(&text)
                .await
                .unwrap();
        }
    };
    // Tab: the skip link, then the phone field.
    keys(Key::Tab.to_string()).await;
    let first = page.eval("return document.activeElement.className").await;
    assert_eq!(first, "skip", "the skip link comes first");
    keys(Key::Tab.to_string()).await;
    assert_eq!(page.eval("return document.activeElement.id").await, "phone");
    keys("2015550123".into()).await;
    // The radio group (text message is chosen), then the button; Enter sends.
    keys(Key::Tab.to_string()).await;
    keys(Key::Tab.to_string()).await;
    let label = page.eval("return document.activeElement.textContent").await;
    assert_eq!(label, "Send code");
    keys(Key::Enter.to_string()).await;
    page.wait_for("#code").await;
    // The code field has the focus; typing and Enter finish.
    assert_eq!(page.eval("return document.activeElement.id").await, "code");
    let code = app.code_for(A).await;
    keys(format!("{code}{}", Key::Enter)).await;
    page.wait_for(".done").await;
    assert_eq!(page.path().await, "/success");
    page.close().await;
}

#[tokio::test]
async fn a_spanish_browser_gets_spanish_pages() {
    let Some(mut driver) = Driver::start().await else {
        return;
    };
    let app = app(&[]).await;
    let page = driver.session(PHONE.speaking("es")).await;
    page.goto(&app.url("/")).await;
    assert_eq!(
        page.eval("return document.documentElement.lang").await,
        "es"
    );
    assert_eq!(page.text("h1").await, "Verifica tu número de teléfono");
    request(&page, &app, "(201) 555-0123", "sms").await;
    let sms = app.last_message_to(A).await;
    assert!(
        sms.body.starts_with("Tu código de phone-verify es "),
        "{}",
        sms.body
    );
    assert_eq!(page.text("h1").await, "Escribe tu código");
    page.screenshot("es-code").await;
    submit_code(&page, &sms.code()).await;
    assert_eq!(page.text("h1").await, "Verificación completada");
    page.close().await;
}

#[tokio::test]
async fn the_script_formats_us_numbers_and_fills_the_code_by_web_otp() {
    let Some(mut driver) = Driver::start().await else {
        return;
    };
    let app = app(&[]).await;
    let page = driver.session(DESKTOP).await;
    page.goto(&app.url("/")).await;
    page.type_into("#phone", "2015550123").await;
    let value = page
        .eval("return document.getElementById('phone').value")
        .await;
    assert_eq!(value, "(201) 555-0123", "formatted as typed");
    page.type_into("#phone", "+44 7400 123456").await;
    let value = page
        .eval("return document.getElementById('phone').value")
        .await;
    assert_eq!(value, "+44 7400 123456", "a country code is left as typed");

    request(&page, &app, "2015550123", "sms").await;
    let code = app.code_for(A).await;
    // A browser that supports WebOTP hands the script the code from the SMS; the script
    // fills it in and sends the form.
    page.eval(&format!(
        "window.OTPCredential = function () {{}};
         phoneVerify.webOtp(document.getElementById('code'), {{
           get: (options) => options.otp.transport[0] === 'sms'
             ? Promise.resolve({{code: '{code}'}}) : Promise.reject(new Error('no'))
         }});
         return true;"
    ))
    .await;
    let started = Instant::now();
    while page.path().await != "/success" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "WebOTP did not finish the flow"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Submitting by hand cancels a pending request.
    page.goto(&app.url("/")).await;
    request(&page, &app, "2015550124", "sms").await;
    let aborted = page
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.OTPCredential = function () {};
             let signal;
             phoneVerify.webOtp(document.getElementById('code'), {
               get: (options) => { signal = options.otp && options.signal; return new Promise(() => {}); }
             });
             document.getElementById('code').form.dispatchEvent(new Event('submit'));
             done(signal.aborted);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(aborted, true);
    page.close().await;
}

/// Every page and state, in `look`: screenshots, and axe-core's findings by page.
async fn every_page(
    driver: &mut Driver,
    app: &TestApp,
    oidc: &str,
    look: Look,
    axe: &str,
) -> Vec<String> {
    let page = driver.session(look).await;
    let mut findings = Vec::new();
    let mut visit = async |name: &str, page: &Page| {
        page.screenshot(name).await;
        for violation in page.axe_violations(axe).await {
            findings.push(format!("{name} ({}): {violation}", look.name()));
        }
    };
    page.goto(&app.url("/")).await;
    visit("phone", &page).await;
    page.type_into("#phone", "12").await;
    page.click_and_wait("form[action='/request'] button[type=submit]")
        .await;
    visit("phone-invalid", &page).await;
    request(&page, app, "(201) 555-0123", "sms").await;
    visit("code", &page).await;
    let code = app.code_for(A).await;
    submit_code(&page, wrong(&code)).await;
    visit("code-wrong", &page).await;
    submit_code(&page, wrong(&code)).await;
    visit("ended", &page).await;
    // A new code; one more wrong one makes three in a row, which locks the number.
    page.click_and_wait("form[action='/resend'] button").await;
    let code = app.code_for(A).await;
    submit_code(&page, wrong(&code)).await;
    submit_code(&page, &code).await;
    assert_eq!(page.text("h1").await, "Too many incorrect codes");
    assert!(
        page.body_text()
            .await
            .contains("can’t be checked right now")
    );
    visit("locked", &page).await;
    request(&page, app, "(201) 555-0124", "call").await;
    let call = app.last_message_to("+12015550124").await;
    submit_code(&page, &call.code()).await;
    visit("success", &page).await;
    page.goto(&app.url("/nowhere")).await;
    visit("not-found", &page).await;
    page.goto(&app.url("/")).await;
    page.client.delete_all_cookies().await.unwrap();
    page.type_into("#phone", "(201) 555-0125").await;
    page.click_and_wait("form[action='/request'] button[type=submit]")
        .await;
    visit("error", &page).await;
    page.goto(oidc).await;
    visit("sign-in", &page).await;
    page.close().await;

    let spanish = driver.session(look.speaking("es")).await;
    spanish.goto(&app.url("/")).await;
    visit("es-phone", &spanish).await;
    spanish.close().await;
    findings
}

#[tokio::test]
async fn every_page_passes_axe_and_is_photographed_in_each_size_and_scheme() {
    let Some(mut driver) = Driver::start().await else {
        return;
    };
    let Some(axe) = axe_source() else {
        return;
    };
    let mut findings = Vec::new();
    for look in [DESKTOP, DESKTOP.dark(), PHONE, PHONE.dark()] {
        // A fresh instance per look, so the same number goes through the same states.
        let app = app_for_shop(
            9,
            &[
                ("PHONE_VERIFY__VERIFICATION__MAX_CHECK_ATTEMPTS", "2"),
                ("PHONE_VERIFY__VERIFICATION__LOCKOUT_FAILURES", "3"),
            ],
        )
        .await;
        let oidc = authorize_url(&app.address, 9, "s-1");
        findings.extend(every_page(&mut driver, &app, &oidc, look, &axe).await);
    }
    assert!(findings.is_empty(), "axe found:\n{}", findings.join("\n"));
}

#[tokio::test]
async fn an_application_signs_a_person_in_through_the_pages_and_a_cancel_goes_back() {
    let Some(mut driver) = Driver::start().await else {
        return;
    };
    let address = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let for_shop = address.clone();
    let state = std::sync::Arc::new(std::sync::Mutex::new("st-1".to_string()));
    let for_link = state.clone();
    let shop = Shop::open(move |port| {
        authorize_url(&for_shop.lock().unwrap(), port, &for_link.lock().unwrap())
    })
    .await;
    let app = app_for_shop(shop.port, &[]).await;
    *address.lock().unwrap() = app.address.clone();
    let page = driver.session(DESKTOP).await;
    page.goto(&format!("http://127.0.0.1:{}/", shop.port)).await;
    page.click_and_wait("#sign-in").await;
    let banner = page.text(".sign-in").await;
    assert_eq!(
        banner,
        "Example Shop asks you to verify your phone number to sign in."
    );
    page.type_into("#phone", "(201) 555-0123").await;
    page.click_and_wait("form[action='/request'] button[type=submit]")
        .await;
    let code = app.code_for(A).await;
    submit_code(&page, &code).await;
    assert_eq!(page.text("h1").await, "Back at Example Shop");
    let query = shop.callbacks.lock().unwrap().last().cloned().unwrap();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("state").as_deref(), Some("st-1"));
    let token = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth(SHOP_ID, Some(SHOP_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", get("code").expect("a code").as_str()),
            ("redirect_uri", shop.redirect_uri().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token: serde_json::Value = token.json().await.unwrap();
    assert!(token["id_token"].is_string(), "{token}");

    // A second sign-in, canceled: back at the shop with access_denied.
    *state.lock().unwrap() = "st-2".into();
    page.goto(&format!("http://127.0.0.1:{}/", shop.port)).await;
    page.click_and_wait("#sign-in").await;
    page.click_and_wait("form[action='/oidc/cancel'] button")
        .await;
    assert_eq!(page.text("h1").await, "Back at Example Shop");
    let query = shop.callbacks.lock().unwrap().last().cloned().unwrap();
    assert!(
        query.contains("error=access_denied") && query.contains("state=st-2"),
        "{query}"
    );
    page.close().await;
}
