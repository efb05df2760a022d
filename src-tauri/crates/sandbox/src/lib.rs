//! The Demo site and every test's server: an axum app that speaks the Wix wire contract
//! (`../shared/specs/wix-api.md`) for Contacts v4 and Contact Attachments v4, and serves the
//! files and previews at the URLs it hands out; and, on the same address and the same data,
//! the EspoCRM API under `/api/v1/` (`../shared/specs/espocrm-api.md`).
//!
//! Where the contract is UNCONFIRMED the sandbox is strict in the documented way (raw API key in
//! `Authorization`, `wix-site-id` required, 200 on every success, limits enforced) so a client
//! that passes here is not relying on leniency Wix may not have.

mod api;
mod errors;
mod espo;
pub mod faults;
mod files;
mod media;
pub mod pdf;
mod photo;
mod seed;
mod site;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use site::SiteError;

/// The key and site id the Demo site accepts unless told otherwise (documented in the README).
pub const DEMO_API_KEY: &str = "demo-api-key";
pub const DEMO_SITE_ID: &str = "5f0c1e2a-7d3b-4c8e-9a61-0d2b4e6f8a10";

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where the site persists: `site.json`, `files/`, `previews/`. Seeded when empty.
    pub data_dir: PathBuf,
    pub api_key: String,
    pub site_id: String,
    /// Failures to inject (none by default); switchable later through `/_admin/faults`.
    pub faults: faults::Faults,
    /// With a secret, the EspoCRM API also accepts HMAC logins (`X-Hmac-Authorization`) for
    /// `api_key`; `X-Api-Key: <api_key>` is accepted either way.
    pub hmac_secret: Option<String>,
    /// A Wix app installed on the site: `POST /oauth2/token` mints access tokens for these
    /// client credentials, valid for `app_token_ttl`, accepted in place of the API key.
    pub app: Option<AppCredentials>,
    /// Where to POST signed attachment webhooks (also settable at run time through
    /// `PUT /_admin/webhooks`).
    pub webhook_url: Option<String>,
    /// With a token, `/_admin/*` answers only requests that carry `Authorization: Bearer TOKEN`;
    /// without, it is open (the test server `attache sandbox`, documented in the README).
    pub admin_token: Option<String>,
    /// Answer only requests whose `Host` names this machine's loopback (`127.0.0.1`, `[::1]`,
    /// `localhost`): a web page that points its own host name at 127.0.0.1 (DNS rebinding)
    /// is refused instead of reaching the site from the browser.
    pub loopback_only: bool,
}

#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub app_id: String,
    pub app_secret: String,
    pub instance_id: String,
    pub token_ttl: std::time::Duration,
}

impl SandboxConfig {
    pub fn demo(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            api_key: DEMO_API_KEY.into(),
            site_id: DEMO_SITE_ID.into(),
            faults: Default::default(),
            hmac_secret: None,
            app: None,
            webhook_url: None,
            admin_token: None,
            loopback_only: false,
        }
    }

    /// The Demo site the app starts for itself: the same data, but a key and an admin token
    /// made for this run and known only to this process (the published `demo-api-key` opens
    /// nothing here, and no other local user or web page can switch faults on or read the
    /// request log), and only loopback host names answered.
    pub fn in_app(data_dir: PathBuf) -> Self {
        Self {
            api_key: run_secret(),
            admin_token: Some(run_secret()),
            loopback_only: true,
            ..Self::demo(data_dir)
        }
    }
}

/// 244 random bits from the OS generator (two v4 UUIDs), for secrets that live one run.
fn run_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A running sandbox. Dropping it (or calling [`Sandbox::shutdown`]) stops the server.
pub struct Sandbox {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sandbox {
    /// Opens (seeding if needed) the site under `config.data_dir` and serves it on `addr`
    /// (port 0 picks a free port). Must be called inside a tokio runtime.
    pub async fn start(config: SandboxConfig, addr: SocketAddr) -> Result<Self, SiteError> {
        let site = site::Site::open(&config.data_dir)?;
        let state = Arc::new(api::AppState::new(config, site));
        let listener = TcpListener::bind(addr).await.map_err(SiteError::Io)?;
        let addr = listener.local_addr().map_err(SiteError::Io)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = api::router(state);
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = served.await {
                tracing::error!("sandbox server stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the base URL a Wix client is pointed at.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until the task ends (used by `attache sandbox`, which serves until killed).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
