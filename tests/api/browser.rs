//! A real browser for the tests: Debian's Chromium, driven over WebDriver by
//! its chromedriver (both installed by `infra/bootstrap`), on loopback only,
//! with axe-core (from npm) for accessibility checks and screenshots into
//! `target/browser/`.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver of its own (its own process group, killed on drop) and a headless Chromium session.
pub struct Browser {
    pub client: Client,
    /// Where the browser saves downloads (a directory of its own).
    pub downloads: std::path::PathBuf,
    _driver: Killed,
}

impl Browser {
    /// A phone's width (390 × 844).
    pub async fn start() -> Self {
        Self::sized(390, 844).await
    }

    pub async fn sized(width: u32, height: u32) -> Self {
        use std::os::unix::process::CommandExt as _;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver is installed (infra/bootstrap: apt-get install chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let downloads = std::env::temp_dir().join(format!("portal-browser-downloads-{port}"));
        let _ = std::fs::remove_dir_all(&downloads);
        std::fs::create_dir_all(&downloads).unwrap();
        let mut caps = serde_json::Map::new();
        // A phone's viewport is emulated (headless Chromium keeps windows at least 500 px wide).
        let mut options = json!({"binary": "/usr/bin/chromium",
               "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", &format!("--window-size={width},{height}")],
               "prefs": {"download.default_directory": downloads, "download.prompt_for_download": false}});
        if width < 600 {
            options["mobileEmulation"] = json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": true, "mobile": true}});
        }
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a Chromium session");
        Self { client, downloads, _driver: Killed(driver) }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn heading(&self) -> String {
        self.client.find(Locator::Css("h1")).await.unwrap().text().await.unwrap()
    }

    pub async fn fill(&self, id: &str, value: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap_or_else(|_| panic!("no field #{id}"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// A date input takes its value as the browser's locale shows it; set it as the form sends it.
    pub async fn set_date(&self, id: &str, value: &str) {
        self.client.execute("document.getElementById(arguments[0]).value = arguments[1]", vec![json!(id), json!(value)]).await.unwrap();
    }

    /// Clicks a form's submit button and waits for the page it leads to (a new document, loaded).
    pub async fn click(&self, button_text: &str) {
        let xpath = format!("//button[normalize-space()='{button_text}']");
        self.eval("window.__portalOldPage = true", vec![]).await;
        self.client.find(Locator::XPath(&xpath)).await.unwrap_or_else(|_| panic!("no button {button_text}")).click().await.unwrap();
        let started = Instant::now();
        loop {
            let new_page = self.client.execute("return !window.__portalOldPage && document.readyState === 'complete'", vec![]).await;
            if new_page.ok().and_then(|v| v.as_bool()) == Some(true) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{button_text:?} led to no new page within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.client.wait().for_element(Locator::Css("h1")).await.unwrap();
    }

    /// axe-core's serious and critical violations on the page shown.
    async fn accessibility_violations(&self) -> Vec<Value> {
        let axe = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/node_modules/axe-core/axe.min.js"))
            .expect("axe-core is installed (infra/bootstrap: npm ci in infra)");
        self.client.execute(&axe, vec![]).await.unwrap();
        let script = "const done = arguments[arguments.length - 1];\
            axe.run(document).then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
              .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target)}))))\
              .catch(e => done([{id: 'axe-error', help: String(e)}]));";
        let found = self.client.execute_async(script, vec![]).await.unwrap();
        found.as_array().cloned().unwrap_or_default()
    }

    pub async fn assert_accessible(&self, what: &str) {
        let violations = self.accessibility_violations().await;
        assert!(violations.is_empty(), "{what}: {violations:#?}");
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/browser");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns its value.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits (at most `limit`) until the JavaScript expression `condition` is truthy; panics with `what` if it never is.
    pub async fn wait_until(&self, what: &str, limit: Duration, condition: &str) {
        let started = Instant::now();
        loop {
            if self.client.execute(&format!("return !!({condition});"), vec![]).await.ok().and_then(|v| v.as_bool()) == Some(true) {
                return;
            }
            if started.elapsed() > limit {
                let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
                // The page's text, with that of any shadow roots (the portlet's) after it.
                let text = self
                    .eval(
                        "return (document.body ? document.body.innerText.slice(0, 1500) : '') + [...document.querySelectorAll('*')]\
                           .filter(e => e.shadowRoot).map(e => `\n[${e.localName}'s shadow root] ` + e.shadowRoot.textContent.replace(/\\s+/g, ' ')).join('')",
                        vec![],
                    )
                    .await;
                panic!("{what}: not within {limit:?} (at {url}); the page reads:\n{}", text.as_str().unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Clicks the button reading `text` in the shadow root of the element `host` (a CSS selector).
    pub async fn click_in_shadow(&self, host: &str, text: &str) {
        let script = "const root = document.querySelector(arguments[0])?.shadowRoot;\
            const b = root && [...root.querySelectorAll('button')].find(b => b.textContent.trim() === arguments[1] && !b.disabled);\
            if (!b) return false; b.click(); return true;";
        let found = self.eval(script, vec![json!(host), json!(text)]).await;
        assert_eq!(found, json!(true), "no enabled button {text:?} in {host}'s shadow root");
    }

    /// The visible text of the element `host`'s shadow root.
    pub async fn shadow_text(&self, host: &str) -> String {
        let v = self.eval("const r = document.querySelector(arguments[0])?.shadowRoot; return r ? r.textContent : ''", vec![json!(host)]).await;
        v.as_str().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The text of the file `name` once the browser has saved it in [`Browser::downloads`].
    pub async fn downloaded(&self, name: &str, limit: Duration) -> String {
        let path = self.downloads.join(name);
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                return text;
            }
            assert!(started.elapsed() < limit, "{name} was not downloaded within {limit:?} (in {})", self.downloads.display());
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Presses Tab until the focused element (inside shadow roots too) is a button reading `text`;
    /// at most `limit` presses. The keyboard-only path to it.
    pub async fn tab_to(&self, text: &str, limit: usize) {
        let focused = "let e = document.activeElement; while (e && e.shadowRoot && e.shadowRoot.activeElement) e = e.shadowRoot.activeElement;\
            return e ? e.textContent.trim() : ''";
        for _ in 0..limit {
            self.press('\u{E004}').await;
            if self.eval(focused, vec![]).await == json!(text) {
                return;
            }
        }
        panic!("{text:?} is not reached with {limit} presses of Tab");
    }

    /// Presses Enter where the focus is.
    pub async fn press_enter(&self) {
        self.press('\u{E007}').await;
    }

    /// One key, down and up, as the keyboard sends it (to whatever has the focus, shadow roots included).
    async fn press(&self, key: char) {
        use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
        let keys = KeyActions::new("keyboard".into()).then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
        self.client.perform_actions(keys).await.unwrap();
    }

    /// Ends the session (Chromium quits), then chromedriver is killed.
    pub async fn close(self) {
        // Bounded: the driver is killed after it either way.
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.close()).await;
    }
}

/// Kills chromedriver's whole process group (Chromium with it), also when a test fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
    }
}

