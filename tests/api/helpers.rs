//! Runs the real `phone-verify` binary on a random port, reads what the console
//! provider prints, and drives the pages the way a browser does.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_phone-verify");

/// A running instance; killed when dropped.
pub struct TestApp {
    pub address: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    _child: Child,
}

/// A `phone-verify` command isolated from the developer's environment and `config.toml`.
pub fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("PHONE_VERIFY") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    // An empty working directory: no stray config.toml or .env is read.
    let cwd = std::env::temp_dir().join("phone-verify-tests-cwd");
    std::fs::create_dir_all(&cwd).expect("a working directory for the binary");
    cmd.current_dir(cwd)
        .env("PHONE_VERIFY__SERVER__BIND", "127.0.0.1:0")
        .env(
            "PHONE_VERIFY__SERVER__STATIC_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/static"),
        )
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

fn collect(reader: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Starts the app with default settings plus `env` overrides, and waits until it listens.
pub async fn spawn_app_with(env: &[(&str, &str)]) -> TestApp {
    let mut child = command(env).spawn().expect("failed to start phone-verify");
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let address = wait_for(Duration::from_secs(20), || {
        stderr.lock().unwrap().iter().find_map(|l| {
            l.split("listening on http://").nth(1).map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || ".:[]".contains(*c))
                    .collect::<String>()
            })
        })
    })
    .await
    .unwrap_or_else(|| panic!("phone-verify did not start: {:?}", stderr.lock().unwrap()));
    TestApp {
        address,
        stdout,
        stderr,
        _child: child,
    }
}

/// Starts the app with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

async fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One message the console provider printed.
#[derive(Debug, Clone)]
pub struct ConsoleMessage {
    pub kind: String,
    pub to: String,
    /// The body as printed, lines joined with `\n`.
    pub body: String,
}

impl ConsoleMessage {
    /// The code: from the SMS's `@HOST #CODE` line, or the digits a call reads.
    pub fn code(&self) -> String {
        if self.kind == "sms" {
            let last = self.body.lines().last().unwrap();
            last.rsplit_once(" #").unwrap().1.to_string()
        } else {
            let said = self.body.split(" code is ").nth(1).unwrap();
            said.split('.').next().unwrap().replace(", ", "")
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Every message the console provider printed so far, in order.
    pub fn messages(&self) -> Vec<ConsoleMessage> {
        let lines = self.stdout.lock().unwrap().clone();
        let mut messages: Vec<ConsoleMessage> = Vec::new();
        for line in lines {
            let header = line
                .strip_prefix("console: ")
                .and_then(|rest| rest.split_once(" to "))
                .and_then(|(kind, rest)| rest.split_once(": ").map(|(to, body)| (kind, to, body)));
            match header {
                Some((kind, to, body)) if !to.contains(' ') => messages.push(ConsoleMessage {
                    kind: kind.into(),
                    to: to.into(),
                    body: body.into(),
                }),
                _ => {
                    if let Some(last) = messages.last_mut() {
                        last.body.push('\n');
                        last.body.push_str(&line);
                    }
                }
            }
        }
        messages
    }

    /// Messages sent to `to`.
    pub fn messages_to(&self, to: &str) -> Vec<ConsoleMessage> {
        self.messages().into_iter().filter(|m| m.to == to).collect()
    }

    /// The latest complete message to `to`, waiting a little for it to be printed.
    pub async fn last_message_to(&self, to: &str) -> ConsoleMessage {
        wait_for(Duration::from_secs(5), || {
            self.messages_to(to)
                .into_iter()
                .next_back()
                .filter(|m| m.kind == "call" || m.body.contains(" #"))
        })
        .await
        .unwrap_or_else(|| panic!("no message to {to}: {:?}", self.stdout.lock().unwrap()))
    }

    /// The latest code sent to `to`.
    pub async fn code_for(&self, to: &str) -> String {
        self.last_message_to(to).await.code()
    }

    /// Everything the app logged so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// A new browser: its own cookie jar, redirects not followed.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.address)
    }

    /// A new browser that asks for pages in `languages` (an `Accept-Language` value).
    pub fn browser_speaking(&self, languages: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT_LANGUAGE,
            languages.parse().expect("a header value"),
        );
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        Browser {
            client,
            base: format!("http://{}", self.address),
        }
    }
}

/// A browser: keeps cookies, does not follow redirects, remembers the last form token.
pub struct Browser {
    pub client: reqwest::Client,
    base: String,
}

/// A response read whole.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of the page's first `csrf_token` field.
    pub fn csrf_token(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf_token\" value=\"")?;
        let rest = &self.body[at + "name=\"csrf_token\" value=\"".len()..];
        Some(rest[..rest.find('"')?].to_string())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect()
    }
}

impl Browser {
    pub fn new(address: &str) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            client,
            base: format!("http://{address}"),
        }
    }

    pub async fn read(response: reqwest::Response) -> Page {
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::read(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        Self::read(response).await
    }

    /// The CSRF token of the page at `path` (`/` for the phone form, `/verify` later).
    pub async fn token(&self, path: &str) -> String {
        let page = self.get(path).await;
        page.csrf_token()
            .unwrap_or_else(|| panic!("no csrf token on {path}: {} {}", page.status, page.body))
    }

    /// The same browser (same cookies) talking to another instance.
    pub fn at(&self, address: &str) -> Browser {
        Browser {
            client: self.client.clone(),
            base: format!("http://{address}"),
        }
    }

    /// Fills in the phone form and sends it.
    pub async fn request_code(&self, phone: &str, channel: &str) -> Page {
        let token = self.token("/").await;
        self.post(
            "/request",
            &[
                ("phone", phone),
                ("channel", channel),
                ("csrf_token", &token),
            ],
        )
        .await
    }

    /// Types `code` into the code form and sends it.
    pub async fn submit_code(&self, code: &str) -> Page {
        let token = self.token("/verify").await;
        self.post("/verify", &[("code", code), ("csrf_token", &token)])
            .await
    }

    /// Presses a resend button (`sms` or `call`).
    pub async fn resend(&self, channel: &str) -> Page {
        let token = self.token("/verify").await;
        self.post("/resend", &[("channel", channel), ("csrf_token", &token)])
            .await
    }
}

/// `python3`, if it can import `module`. Missing: skip with a message, or fail under `CI`.
pub fn python_with(module: &str) -> Option<&'static str> {
    let found = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("python3");
    }
    let message =
        format!("python3 with the `{module}` package is not available (pip install {module})");
    if std::env::var_os("CI").is_some() {
        panic!("{message}; CI must install it");
    }
    eprintln!("skipped: {message}");
    None
}

/// A JSON client for `/api/v1` with `key`.
pub fn api(app: &TestApp, key: &str) -> ApiClient {
    ApiClient {
        client: reqwest::Client::new(),
        base: app.url(""),
        key: key.to_string(),
    }
}

pub struct ApiClient {
    pub client: reqwest::Client,
    pub base: String,
    pub key: String,
}

/// A JSON answer read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: serde_json::Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Reply {
            status,
            headers,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl ApiClient {
    pub async fn post(&self, path: &str, body: serde_json::Value) -> Reply {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        Reply::read(response).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::read(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.key)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        Reply::read(
            self.client
                .delete(format!("{}{path}", self.base))
                .bearer_auth(&self.key)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn start(&self, to: &str) -> Reply {
        self.post(
            "/api/v1/verifications",
            serde_json::json!({"to": to, "channel": "sms"}),
        )
        .await
    }

    pub async fn check(&self, to: &str, code: &str) -> Reply {
        self.post(
            "/api/v1/verifications/check",
            serde_json::json!({"to": to, "code": code}),
        )
        .await
    }
}

/// The Twilio-compatible API (`/v2`) as the tests turn it on.
pub mod twilio_v2 {
    use super::{Reply, TestApp};

    pub const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    pub const TOKEN: &str = "compat-token-0123456789abcdef0123456789";
    pub const SERVICE: &str = "VAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// The settings that enable it with these credentials.
    pub const ENV: [(&str, &str); 4] = [
        ("PHONE_VERIFY__TWILIO_COMPAT__ENABLED", "true"),
        ("PHONE_VERIFY__TWILIO_COMPAT__ACCOUNT_SID", ACCOUNT),
        ("PHONE_VERIFY__TWILIO_COMPAT__AUTH_TOKEN", TOKEN),
        ("PHONE_VERIFY__TWILIO_COMPAT__SERVICE_SID", SERVICE),
    ];

    /// `POST /v2/Services/{SERVICE}/{resource}` with these credentials.
    pub async fn post(app: &TestApp, resource: &str, form: &[(&str, &str)]) -> Reply {
        let response = reqwest::Client::new()
            .post(app.url(&format!("/v2/Services/{SERVICE}/{resource}")))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .form(form)
            .send()
            .await
            .unwrap();
        Reply::read(response).await
    }
}
