//! Just enough of the W3C WebDriver protocol to drive the Attaché window through tauri-driver.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::blocking::Client;
use serde_json::{json, Value};

/// The key W3C uses for element references in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

#[derive(Debug)]
pub struct WebDriverError(pub String);

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WebDriverError {}

pub type Result<T> = std::result::Result<T, WebDriverError>;

pub struct Session {
    http: Client,
    base: String,
    id: String,
}

#[derive(Debug, Clone)]
pub struct Element(pub String);

impl Element {
    /// The element as a script argument (`arguments[i]` in [`Session::execute`]).
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

fn request(
    http: &Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut req = http.request(method.clone(), url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req
        .send()
        .map_err(|e| WebDriverError(format!("{method} {url}: {e}")))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .map_err(|e| WebDriverError(format!("{method} {url}: bad JSON: {e}")))?;
    if !status.is_success() {
        return Err(WebDriverError(format!(
            "{method} {url}: {status}: {}",
            body["value"]
        )));
    }
    Ok(body["value"].clone())
}

/// Polls `GET /status` until the driver answers ready (tauri-driver does not wait for its
/// native driver to start).
pub fn wait_until_ready(base: &str, timeout: Duration) -> Result<()> {
    let http = Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(v) = request(&http, reqwest::Method::GET, &format!("{base}/status"), None) {
            if v["ready"].as_bool().unwrap_or(true) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(WebDriverError(format!(
                "{base} did not become ready in {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Session {
    /// Starts the app at `application` (absolute path) in a new session.
    pub fn start(base: &str, application: &str) -> Result<Self> {
        let http = Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "tauri:options": {"application": application, "args": []}
        }}});
        let value = request(
            &http,
            reqwest::Method::POST,
            &format!("{base}/session"),
            Some(caps),
        )?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| WebDriverError(format!("no sessionId in {value}")))?
            .to_string();
        Ok(Self {
            http,
            base: base.to_string(),
            id,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.id)
    }

    fn post(&self, path: &str, body: Value) -> Result<Value> {
        request(
            &self.http,
            reqwest::Method::POST,
            &self.url(path),
            Some(body),
        )
    }

    fn get(&self, path: &str) -> Result<Value> {
        request(&self.http, reqwest::Method::GET, &self.url(path), None)
    }

    pub fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let v = self.post("/elements", json!({"using": "css selector", "value": css}))?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|s| Element(s.into())))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub fn find(&self, css: &str) -> Result<Element> {
        self.find_all(css)?
            .into_iter()
            .next()
            .ok_or_else(|| WebDriverError(format!("no element matches {css}")))
    }

    pub fn text(&self, e: &Element) -> Result<String> {
        Ok(self
            .get(&format!("/element/{}/text", e.0))?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The DOM's `textContent`. WebDriver's rendered "text" leaves out text clipped by
    /// `overflow: hidden` (ellipsised e-mails), which is not what the tests mean.
    pub fn text_content(&self, e: &Element) -> Result<String> {
        let v = self.execute(
            "return arguments[0].textContent;",
            vec![json!({ELEMENT_KEY: e.0})],
        )?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub fn click(&self, e: &Element) -> Result<()> {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .map(|_| ())
    }

    pub fn clear(&self, e: &Element) -> Result<()> {
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .map(|_| ())
    }

    /// Types into an element. Sends both the W3C `text` and the legacy `value` (notes §1.7).
    pub fn send_keys(&self, e: &Element, text: &str) -> Result<()> {
        let value: Vec<String> = text.chars().map(String::from).collect();
        self.post(
            &format!("/element/{}/value", e.0),
            json!({"text": text, "value": value}),
        )
        .map(|_| ())
    }

    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
    }

    /// PNG bytes of the window.
    pub fn screenshot(&self) -> Result<Vec<u8>> {
        let b64 = self.get("/screenshot")?;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .map_err(|e| WebDriverError(format!("screenshot is not base64: {e}")))
    }

    /// Polls `check` until it returns `Some`, or fails with `what` after `timeout`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match check(self) {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => last_error = Some(e),
            }
            if Instant::now() > deadline {
                return Err(WebDriverError(format!(
                    "timed out after {timeout:?} waiting for {what}{}",
                    last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    pub fn end(self) -> Result<()> {
        request(
            &self.http,
            reqwest::Method::DELETE,
            &format!("{}/session/{}", self.base, self.id),
            None,
        )
        .map(|_| ())
    }
}
