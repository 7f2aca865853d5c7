//! Debian's Chromium, driven through chromedriver (fantoccini speaks WebDriver), for the
//! browser tests: a fresh profile per session, headless, and one driver at a time on
//! this 2-core machine. Without Chromium or chromedriver the tests are skipped with a
//! message, and fail under `CI`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

/// Browser tests take turns: two Chromiums at once would starve the app under test.
static TURN: Mutex<()> = Mutex::const_new(());

/// How a session looks at the pages.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub width: u32,
    pub height: u32,
    pub dark: bool,
    /// The browser's language (`--lang`, `Accept-Language`).
    pub lang: Option<&'static str>,
}

pub const DESKTOP: Look = Look {
    width: 1280,
    height: 800,
    dark: false,
    lang: None,
};
pub const PHONE: Look = Look {
    width: 390,
    height: 844,
    dark: false,
    lang: None,
};

impl Look {
    pub fn dark(self) -> Self {
        Self { dark: true, ..self }
    }

    pub fn speaking(self, lang: &'static str) -> Self {
        Self {
            lang: Some(lang),
            ..self
        }
    }

    /// `desktop-light`, `phone-dark`, ...
    pub fn name(&self) -> String {
        let size = if self.width >= 1000 {
            "desktop"
        } else {
            "phone"
        };
        let scheme = if self.dark { "dark" } else { "light" };
        format!("{size}-{scheme}")
    }
}

fn on_path(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A running chromedriver (and the turn to use it), stopped with its browsers on drop.
pub struct Driver {
    child: Child,
    url: String,
    profiles: Vec<PathBuf>,
    _turn: MutexGuard<'static, ()>,
}

impl Driver {
    /// Starts chromedriver, or says why not: `None` means skip (outside `CI`).
    pub async fn start() -> Option<Driver> {
        if !on_path("chromium") || !on_path("chromedriver") {
            let message = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)";
            if std::env::var_os("CI").is_some() {
                panic!("{message}; CI must install them");
            }
            eprintln!("skipped: {message}");
            return None;
        }
        let turn = TURN.lock().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new("chromedriver");
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so the browsers it starts go down with it.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(Driver {
            child,
            url,
            profiles: Vec::new(),
            _turn: turn,
        })
    }

    /// A new browser session with a fresh profile.
    pub async fn session(&mut self, look: Look) -> Page {
        let profile = std::env::temp_dir().join(format!(
            "pv-chrome-{}-{}",
            std::process::id(),
            self.profiles.len()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--no-first-run".into(),
            "--disable-dev-shm-usage".into(),
            "--force-device-scale-factor=1".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={},{}", look.width, look.height),
            // 0: dark, 1: light, for prefers-color-scheme.
            format!(
                "--blink-settings=preferredColorScheme={}",
                if look.dark { 0 } else { 1 }
            ),
        ];
        let mut options = json!({"binary": chromium(), "args": []});
        if look.width < 1000 {
            // A phone: its viewport (a desktop window cannot be made this narrow).
            options["mobileEmulation"] = json!({"deviceMetrics": {
                "width": look.width, "height": look.height, "pixelRatio": 1.0, "touch": true
            }});
        }
        if let Some(lang) = look.lang {
            args.push(format!("--lang={lang}"));
            options["prefs"] = json!({"intl.accept_languages": lang});
        }
        options["args"] = json!(args);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::rustls()
            .expect("TLS for the WebDriver client")
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session");
        self.profiles.push(profile);
        Page { client, look }
    }
}

fn chromium() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        for profile in &self.profiles {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

/// One browser session.
pub struct Page {
    pub client: Client,
    pub look: Look,
}

impl Page {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Waits for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        match tokio::time::timeout(
            Duration::from_secs(10),
            self.client.wait().for_element(Locator::Css(css)),
        )
        .await
        {
            Ok(found) => found.unwrap(),
            Err(_) => {
                let source = self.client.source().await.unwrap_or_default();
                panic!("no {css} on {}: {source}", self.path().await)
            }
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks `css` and waits for the next page to load.
    pub async fn click_and_wait(&self, css: &str) {
        let before = self.client.find(Locator::Css("html")).await.unwrap();
        self.wait_for(css).await.click().await.unwrap();
        let started = Instant::now();
        // The old document's root goes stale once the next one has loaded.
        while before.tag_name().await.is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{css} led nowhere"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.wait_for("body").await;
    }

    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap()
    }

    /// The whole visible text of the page.
    pub async fn body_text(&self) -> String {
        self.text("body").await
    }

    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Saves what the browser shows as `target/screenshots/{name}-{look}.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{}.png", self.look.name()));
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Runs axe-core in the page for WCAG 2.1 A and AA; the violations, by rule id and
    /// the elements they concern.
    pub async fn axe_violations(&self, axe: &str) -> Vec<String> {
        self.client.execute(axe, vec![]).await.unwrap();
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                   .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        result
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// axe-core's script, from npm (`.ci/run` installs it under `target/npm`), or from where
/// `AXE_CORE_JS` says; without it, skip (outside `CI`).
pub fn axe_source() -> Option<String> {
    let candidates = [
        std::env::var("AXE_CORE_JS").ok().map(PathBuf::from),
        Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/npm/node_modules/axe-core/axe.min.js"),
        ),
        Some(PathBuf::from("/usr/lib/node_modules/axe-core/axe.min.js")),
        Some(PathBuf::from(
            "/usr/local/lib/node_modules/axe-core/axe.min.js",
        )),
    ];
    for path in candidates.into_iter().flatten() {
        if let Ok(source) = std::fs::read_to_string(&path) {
            return Some(source);
        }
    }
    let message = "axe-core is not installed (npm install --prefix target/npm --no-save axe-core, or set AXE_CORE_JS)";
    if std::env::var_os("CI").is_some() {
        panic!("{message}; CI must install it");
    }
    eprintln!("skipped: {message}");
    None
}
