//! Test support: Debian's headless Chromium driven over the DevTools protocol
//! (chromiumoxide), for tests that use calsync's pages as a person would.
//!
//! Every step is bounded (`STEP`, 20 s) and fails with what it was waiting
//! for; the browser is killed when its [`Browser`] drops, and each browser
//! has its own profile, so tests in one binary can run browsers side by side.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::browser::BrowserConfig;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::error::CdpError;
use chromiumoxide::page::ScreenshotParams;
use futures_util::StreamExt;
use serde_json::Value;

use crate::helpers::TempDir;

/// Where Debian's package puts the browser.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// How long one step (a navigation, a wait, a command) may take.
const STEP: Duration = Duration::from_secs(20);
/// Starting Chromium on a busy 2-core machine can take a while.
const LAUNCH: Duration = Duration::from_secs(30);
const WINDOW: (u32, u32) = (1280, 900);
/// Closing politely, before the kill.
const CLOSE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("no Chromium at {path} (apt-get install chromium, or set CALSYNC_CHROMIUM)")]
    NotFound { path: PathBuf },
    /// Chromium's stderr is in the source's message: it is shown only here.
    #[error("Chromium at {path} did not start: {source}")]
    Launch { path: PathBuf, source: CdpError },
    #[error("{what}: no answer after {after:?}{}", ended_note(.ended))]
    Timeout {
        what: String,
        after: Duration,
        ended: Option<String>,
    },
    #[error("{what}: {source}")]
    Cdp { what: String, source: CdpError },
    #[error("no element matches `{selector}`")]
    NoElement { selector: String },
    #[error("script `{script}` threw: {message}")]
    Script { script: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = BrowserError> = std::result::Result<T, E>;

/// The browser under test: one Chromium process with its own profile.
pub struct Browser {
    inner: chromiumoxide::Browser,
    /// Pumps the DevTools websocket; nothing moves without it.
    handler: tokio::task::JoinHandle<()>,
    /// Why the handler stopped, for timeouts to report.
    ended: Arc<Mutex<Option<String>>>,
    profile: TempDir,
}

impl Browser {
    /// The executable tests use: `CALSYNC_CHROMIUM`, else Debian's.
    pub fn executable() -> PathBuf {
        std::env::var_os("CALSYNC_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM))
    }

    /// Starts Chromium (new headless mode, no sandbox since tests run as
    /// root, a fresh profile, a 1280x900 window).
    pub async fn launch() -> Result<Self> {
        let path = Self::executable();
        if !path.is_file() {
            return Err(BrowserError::NotFound { path });
        }
        let profile = TempDir::new();
        let config = BrowserConfig::builder()
            .chrome_executable(&path)
            .new_headless_mode()
            .no_sandbox()
            .user_data_dir(&profile.0)
            .window_size(WINDOW.0, WINDOW.1)
            // No emulated viewport: the window is the viewport, so pages
            // and screenshots are 1280 wide.
            .viewport(None)
            .launch_timeout(LAUNCH)
            .request_timeout(STEP)
            // Nothing but loopback: no update checks.
            .arg("--disable-component-update")
            .build()
            .map_err(|message| BrowserError::Launch {
                path: path.clone(),
                source: CdpError::ChromeMessage(message),
            })?;
        let (inner, mut handler) =
            chromiumoxide::Browser::launch(config)
                .await
                .map_err(|source| BrowserError::Launch {
                    path: path.clone(),
                    source,
                })?;
        let ended = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&ended);
        let handler = tokio::spawn(async move {
            let why = loop {
                match handler.next().await {
                    Some(Ok(())) => {}
                    Some(Err(error)) => break error.to_string(),
                    None => break "closed".to_owned(),
                }
            };
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(why);
            }
        });
        Ok(Self {
            inner,
            handler,
            ended,
            profile,
        })
    }

    /// A browser for `test`, or `None` (loudly) when there is no Chromium
    /// outside CI; in CI (`CI` set) a missing browser fails the test.
    pub async fn for_test(test: &str) -> Option<Self> {
        match Self::launch().await {
            Ok(browser) => Some(browser),
            Err(BrowserError::NotFound { path }) if std::env::var_os("CI").is_none() => {
                eprintln!(
                    "SKIPPED: browser test {test}: no Chromium at {} (apt-get install chromium, or set CALSYNC_CHROMIUM)",
                    path.display()
                );
                None
            }
            Err(error @ BrowserError::NotFound { .. }) => {
                panic!("browser test {test}: {error}; CI must run the browser tests")
            }
            Err(error) => panic!("browser test {test}: {error}"),
        }
    }

    /// The profile folder, unique to this browser (every Chromium process
    /// of it names it on its command line).
    pub fn profile_dir(&self) -> &Path {
        &self.profile.0
    }

    /// A new tab at `url`, loaded.
    pub async fn new_page(&self, url: &str) -> Result<Page> {
        let inner = self
            .step("open a tab", self.inner.new_page("about:blank"))
            .await?;
        let page = Page {
            inner,
            limit: STEP,
            ended: Arc::clone(&self.ended),
        };
        page.goto(url).await?;
        Ok(page)
    }

    /// Closes the browser and waits for it to exit (killing it if it will
    /// not), so no Chromium process outlives the test.
    pub async fn close(mut self) {
        let closed = tokio::time::timeout(CLOSE, self.inner.close()).await;
        let exited = match closed {
            Ok(Ok(_)) => tokio::time::timeout(CLOSE, self.inner.wait())
                .await
                .is_ok_and(|status| status.is_ok()),
            _ => false,
        };
        if !exited {
            let _ = tokio::time::timeout(CLOSE, self.inner.kill()).await;
        }
        // Drop reaps whatever is left and stops the handler.
    }

    async fn step<T>(
        &self,
        what: &str,
        future: impl Future<Output = Result<T, CdpError>>,
    ) -> Result<T> {
        bounded(what, STEP, &self.ended, future).await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.handler.abort();
        // chromiumoxide only kills on drop and reaps "eventually"; kill and
        // reap now so neither a zombie nor a live Chromium outlives the test
        // (and the profile can be removed).
        if let Some(child) = self.inner.get_mut_child() {
            let child = child.as_mut_inner();
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.start_kill();
                for _ in 0..500 {
                    if !matches!(child.try_wait(), Ok(None)) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        // Its helpers (renderers, GPU, network) exit once the browser is
        // gone; wait for them, or the profile could not be removed.
        let profile = self.profile.0.to_string_lossy().into_owned();
        for _ in 0..300 {
            if processes_naming(&profile).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Live processes whose command line contains `needle` (a zombie's is
/// empty); each Chromium process names its profile folder.
pub fn processes_naming(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(needle))
        })
        .collect()
}

/// One tab. Selectors are CSS selectors; the first match is used.
#[derive(Clone)]
pub struct Page {
    inner: chromiumoxide::Page,
    limit: Duration,
    ended: Arc<Mutex<Option<String>>>,
}

/// A cookie as the browser holds it (HttpOnly ones included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub domain: String,
    pub path: String,
    pub http_only: bool,
    pub secure: bool,
    /// `Strict`, `Lax` or `None`; `None` when the cookie set none.
    pub same_site: Option<String>,
    /// Gone when the browser closes (no `Expires`/`Max-Age`).
    pub session: bool,
}

impl Page {
    /// How long each later step may take (default 20 s).
    pub fn set_step_timeout(&mut self, limit: Duration) {
        self.limit = limit;
    }

    /// Navigates to `url` and waits for the new document to load (so not
    /// for a link within the same document: `#fragment` only).
    pub async fn goto(&self, url: &str) -> Result<()> {
        let what = format!("open {url}");
        let marker = self.mark().await;
        self.step(&what, self.inner.goto(url)).await?;
        self.loaded(&what, marker.as_deref()).await
    }

    /// The document's URL.
    pub async fn url(&self) -> Result<String> {
        self.eval_as("location.href").await
    }

    /// The HTTP status the current document was served with.
    pub async fn status(&self) -> Result<u16> {
        self.eval_as("performance.getEntriesByType('navigation')[0]?.responseStatus ?? 0")
            .await
    }

    /// The rendered text of the first match (as a person reads it), trimmed.
    pub async fn text(&self, selector: &str) -> Result<String> {
        let value = self.on_element(selector, "e.innerText").await?;
        Ok(value.as_str().unwrap_or_default().trim().to_owned())
    }

    /// An attribute of the first match; `None` when it has no such attribute.
    pub async fn attr(&self, selector: &str, name: &str) -> Result<Option<String>> {
        let script = format!("e.getAttribute({})", js(name));
        let value = self.on_element(selector, &script).await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// How many elements match.
    pub async fn count(&self, selector: &str) -> Result<usize> {
        self.eval_as(&format!(
            "document.querySelectorAll({}).length",
            js(selector)
        ))
        .await
    }

    /// Sets an input's (or textarea's, or select's) value, firing `input`
    /// and `change` as typing would.
    pub async fn fill(&self, selector: &str, value: &str) -> Result<()> {
        let script = format!(
            "(e.focus(), e.value = {}, e.dispatchEvent(new Event('input', {{bubbles: true}})), \
             e.dispatchEvent(new Event('change', {{bubbles: true}})), true)",
            js(value)
        );
        self.on_element(selector, &script).await.map(drop)
    }

    /// Clicks the first match with the mouse (as a person would: scrolled
    /// into view, at its centre) and waits for the page it leads to (a
    /// form's answer, a link's target) to load.
    pub async fn click(&self, selector: &str) -> Result<()> {
        let what = format!("click `{selector}`");
        let marker = self.mark().await;
        self.press(selector).await?;
        self.loaded(&what, marker.as_deref()).await
    }

    /// Clicks the first match without expecting a navigation (a button
    /// that changes the page in place).
    pub async fn click_in_page(&self, selector: &str) -> Result<()> {
        self.press(selector).await
    }

    /// Waits until something matches `selector` (content a script adds).
    pub async fn wait_for(&self, selector: &str) -> Result<()> {
        let what = format!("wait for `{selector}`");
        let deadline = tokio::time::Instant::now() + self.limit;
        loop {
            if self.count(selector).await.is_ok_and(|n| n > 0) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.timed_out(what));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Evaluates a JavaScript expression (a promise is awaited) and returns
    /// its value as JSON; `undefined` is `null`.
    pub async fn eval(&self, script: &str) -> Result<Value> {
        let what = format!("evaluate `{script}`");
        match bounded(
            &what,
            self.limit,
            &self.ended,
            self.inner.evaluate_expression(script),
        )
        .await
        {
            Ok(result) => Ok(result.value().cloned().unwrap_or(Value::Null)),
            Err(BrowserError::Cdp {
                source: CdpError::JavascriptException(details),
                ..
            }) => Err(BrowserError::Script {
                script: script.to_owned(),
                message: details
                    .exception
                    .as_ref()
                    .and_then(|e| e.description.clone())
                    .unwrap_or_else(|| details.text.clone()),
            }),
            Err(other) => Err(other),
        }
    }

    /// Saves a PNG of the whole page (not only the window) at `path`,
    /// creating its folder, and returns the bytes.
    pub async fn screenshot(&self, path: &Path) -> Result<Vec<u8>> {
        let what = format!("screenshot to {}", path.display());
        let params = ScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Png)
            .full_page(true)
            .build();
        let png = self.step(&what, self.inner.screenshot(params)).await?;
        let io = |source| BrowserError::Io {
            what: what.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, &png).map_err(io)?;
        Ok(png)
    }

    /// The cookies the browser would send to the current document's URL.
    pub async fn cookies(&self) -> Result<Vec<Cookie>> {
        let cookies = self.step("read cookies", self.inner.get_cookies()).await?;
        Ok(cookies
            .into_iter()
            .map(|c| Cookie {
                name: c.name,
                value: c.value,
                domain: c.domain,
                path: c.path,
                http_only: c.http_only,
                secure: c.secure,
                same_site: c.same_site.map(|s| s.as_ref().to_owned()),
                session: c.session,
            })
            .collect())
    }

    async fn eval_as<T: serde::de::DeserializeOwned>(&self, script: &str) -> Result<T> {
        let value = self.eval(script).await?;
        serde_json::from_value(value.clone()).map_err(|error| BrowserError::Script {
            script: script.to_owned(),
            message: format!("unexpected value {value}: {error}"),
        })
    }

    /// Runs `script` with `e` bound to the first match of `selector`.
    async fn on_element(&self, selector: &str, script: &str) -> Result<Value> {
        let wrapped = format!(
            "(() => {{ const e = document.querySelector({}); \
             return e === null ? {{missing: true}} : {{value: {script}}}; }})()",
            js(selector)
        );
        let answer = self.eval(&wrapped).await?;
        if answer["missing"] == true {
            return Err(BrowserError::NoElement {
                selector: selector.to_owned(),
            });
        }
        Ok(answer["value"].clone())
    }

    async fn press(&self, selector: &str) -> Result<()> {
        let what = format!("click `{selector}`");
        let element = match bounded(
            &what,
            self.limit,
            &self.ended,
            self.inner.find_element(selector),
        )
        .await
        {
            Ok(element) => element,
            Err(BrowserError::Cdp { .. }) if self.count(selector).await.is_ok_and(|n| n == 0) => {
                return Err(BrowserError::NoElement {
                    selector: selector.to_owned(),
                });
            }
            Err(other) => return Err(other),
        };
        self.step(&what, element.click()).await.map(drop)
    }

    /// Tags the current document, so a wait can tell the next one from it.
    /// `None` when there is no document to tag yet.
    async fn mark(&self) -> Option<String> {
        let marker = uuid::Uuid::new_v4().simple().to_string();
        let script = format!("window.__calsyncDocument = {}", js(&marker));
        self.eval(&script).await.ok().map(|_| marker)
    }

    /// Waits until a document other than the tagged one has loaded.
    /// chromiumoxide's own wait answers at once when the old page is still
    /// loaded, so a click would race it; the tag cannot.
    async fn loaded(&self, what: &str, marker: Option<&str>) -> Result<()> {
        let check = format!(
            "window.__calsyncDocument !== {} && document.readyState === 'complete'",
            js(marker.unwrap_or_default())
        );
        let deadline = tokio::time::Instant::now() + self.limit;
        loop {
            // Errors are expected mid-navigation (the old context is gone).
            if matches!(self.eval(&check).await, Ok(Value::Bool(true))) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.timed_out(format!("{what}: wait for the next page to load")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn step<T>(
        &self,
        what: &str,
        future: impl Future<Output = Result<T, CdpError>>,
    ) -> Result<T> {
        bounded(what, self.limit, &self.ended, future).await
    }

    fn timed_out(&self, what: String) -> BrowserError {
        BrowserError::Timeout {
            what,
            after: self.limit,
            ended: ended(&self.ended),
        }
    }
}

/// `future`, or a timeout naming `what`.
async fn bounded<T>(
    what: &str,
    limit: Duration,
    slot: &Mutex<Option<String>>,
    future: impl Future<Output = Result<T, CdpError>>,
) -> Result<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(BrowserError::Cdp {
            what: what.to_owned(),
            source,
        }),
        Err(_) => Err(BrowserError::Timeout {
            what: what.to_owned(),
            after: limit,
            ended: ended(slot),
        }),
    }
}

fn ended_note(ended: &Option<String>) -> String {
    ended
        .as_ref()
        .map(|why| format!(" (the DevTools connection ended: {why})"))
        .unwrap_or_default()
}

fn ended(slot: &Mutex<Option<String>>) -> Option<String> {
    slot.lock().ok().and_then(|s| s.clone())
}

/// A JavaScript string literal (JSON strings are valid JavaScript).
fn js(text: &str) -> String {
    Value::from(text).to_string()
}

/// Where browser tests put their screenshots (kept by CI as artifacts):
/// `console-screenshots/` in Cargo's target folder, created if missing.
pub fn artifacts_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        // A relative target folder is the workspace's.
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let dir = target.join("console-screenshots");
    if let Err(error) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {error}", dir.display());
    }
    dir
}
