//! The application core both front ends drive. An [`Attache`] is a session of one account: a
//! small composition root that opens the account (a saved CRM login, or the built-in Demo
//! site), hands out the feature rooms (contacts, uploads, inbox, thumbnails, and media and
//! webhooks when the account has them), and starts and stops their background work through
//! [`Background`], the one lifecycle the desktop shell and the CLI share. See ARCHITECTURE.md.

pub mod accounts;
pub mod contacts;
pub mod desktop;
mod durable;
mod error;
pub mod inbox;
mod lifecycle;
pub mod media;
mod names;
pub mod thumbnails;
pub mod uploads;
pub mod webhooks;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use attache_core::{AccountInfo, AccountKind, AppHome, Capabilities, CrmBackend, Sensitive};
use attache_sandbox::{Sandbox, SandboxConfig};
use attache_vault::Vault;
use attache_wix::{WixAuth, WixClient};

pub use durable::StoreError;
pub use error::ServiceError;
pub use lifecycle::{Background, WebhookReceiver, Work};
pub use names::safe_file_name;

use contacts::Contacts;
use inbox::Inbox;
use media::Media;
use thumbnails::Thumbnails;
use uploads::Uploads;
use webhooks::Webhooks;

/// Points the Demo account at a running sandbox instead of starting one in-process.
pub const DEMO_URL_ENV: &str = "ATTACHE_DEMO_URL";

/// The Demo site's client budget: effectively unlimited.
const DEMO_REQUESTS_PER_MINUTE: u32 = 1_000_000;

/// Which protocol the Demo site is reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DemoCrm {
    Wix,
    Espo,
}

pub struct Attache {
    home: AppHome,
    account: AccountInfo,
    capabilities: Capabilities,
    contacts: Arc<Contacts>,
    uploads: Arc<Uploads>,
    inbox: Arc<Inbox>,
    thumbnails: Thumbnails,
    media: Option<Media>,
    webhooks: Option<Webhooks>,
    /// The in-process Demo site, kept alive as long as the session uses it.
    _demo: Option<Sandbox>,
}

impl Attache {
    /// Opens the app's state under `home` on the current account: a saved CRM account (its
    /// secret read from the OS keyring), or, with none, the built-in Demo site, started on a
    /// free loopback port with a real Wix client pointed at it, so the Demo site exercises
    /// exactly the code a Wix site does. Must be called inside a tokio runtime.
    pub async fn open(home: AppHome) -> Result<Self, ServiceError> {
        Self::open_account(home, None).await
    }

    /// Opens `home` on the account called `name` ("demo", "demo-espo" or a saved one) instead
    /// of the current one, for `attache --account NAME`.
    pub async fn open_account(home: AppHome, name: Option<&str>) -> Result<Self, ServiceError> {
        let config = accounts::Config::load(&home)?;
        let wanted = name.or(config.current.as_deref()).unwrap_or(accounts::DEMO);
        let saved = match wanted {
            accounts::DEMO | accounts::DEMO_ESPO => None,
            other => match config.find(other) {
                Some(saved) => Some(saved.clone()),
                None if name.is_some() => {
                    return Err(ServiceError::NotFound(format!(
                        "no account named {other:?}; see `attache accounts`"
                    )))
                }
                // A current account that is gone from the config: back to the Demo site.
                None => None,
            },
        };
        let Some(saved) = saved else {
            let running = std::env::var(DEMO_URL_ENV).ok().filter(|u| !u.is_empty());
            let crm = if wanted == accounts::DEMO_ESPO {
                DemoCrm::Espo
            } else {
                DemoCrm::Wix
            };
            return Self::open_demo(home, running, crm).await;
        };
        let vault = Vault::system().await?;
        let secret = vault.read_secret(saved.name()).await?;
        let (backend, media) = accounts::backend_for(&saved, secret)?;
        let mut app = Self::assemble(home, saved.info(), backend, media, None)?;
        // An app login knows its instance: webhooks for any other are not this account's.
        if let accounts::SavedAccount::WixApp { instance_id, .. } = &saved {
            app.webhooks = app
                .webhooks
                .map(|w| w.for_instance(Some(instance_id.clone())));
        }
        Ok(app)
    }

    /// Builds the rooms of one account around its CRM client. `media_client` is the same Wix
    /// client again when the account has a Media Manager.
    fn assemble(
        home: AppHome,
        account: AccountInfo,
        backend: Arc<dyn CrmBackend>,
        media_client: Option<WixClient>,
        demo: Option<Sandbox>,
    ) -> Result<Self, ServiceError> {
        let name = account.name.as_str();
        let capabilities = backend.capabilities();
        let contacts = Arc::new(Contacts::open(&home, name, backend.clone())?);
        let uploads = Arc::new(Uploads::open(&home, name, backend)?);
        let inbox = Arc::new(Inbox::open(&home, name, contacts.clone(), uploads.clone())?);
        let thumbnails = Thumbnails::new(&home, name, contacts.clone(), uploads.clone());
        let media = media_client
            .filter(|_| capabilities.media_manager)
            .map(|client| Media::new(name, client, uploads.queue().clone()));
        let webhooks = capabilities
            .webhooks
            .then(|| Webhooks::new(contacts.clone(), uploads.clone()));
        Ok(Self {
            home,
            capabilities,
            contacts,
            uploads,
            inbox,
            thumbnails,
            media,
            webhooks,
            account,
            _demo: demo,
        })
    }

    /// Opens `home` on the Demo account served by an already running sandbox at `base_url`
    /// (tests use this to inject faults; the saved accounts are ignored).
    pub async fn open_demo_at(home: AppHome, base_url: &str) -> Result<Self, ServiceError> {
        Self::open_demo(home, Some(base_url.to_owned()), DemoCrm::Wix).await
    }

    /// The same, through the Demo site's EspoCRM API (tests run one scenario on both CRMs).
    pub async fn open_demo_espo_at(home: AppHome, base_url: &str) -> Result<Self, ServiceError> {
        Self::open_demo(home, Some(base_url.to_owned()), DemoCrm::Espo).await
    }

    async fn open_demo(
        home: AppHome,
        running: Option<String>,
        crm: DemoCrm,
    ) -> Result<Self, ServiceError> {
        // A Demo site already running elsewhere (`attache sandbox`, with its published key),
        // e.g. one a test kills the client under, or one shared by several machines on a
        // training day; else our own, whose key is made for this run.
        let config = match running {
            Some(_) => SandboxConfig::demo(home.demo_dir()),
            None => SandboxConfig::in_app(home.demo_dir()),
        };
        let (api_key, site_id) = (config.api_key.clone(), config.site_id.clone());
        let (demo, base_url) = match running {
            Some(url) => (None, url),
            None => {
                let demo =
                    Sandbox::start(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
                let url = demo.base_url();
                (Some(demo), url)
            }
        };
        if crm == DemoCrm::Espo {
            let client = attache_espo::EspoClient::new(
                &base_url,
                attache_espo::EspoAuth::ApiKey {
                    key: Sensitive::new(api_key),
                },
            )
            .map_err(attache_core::BackendError::from)?;
            let account = AccountInfo {
                name: accounts::DEMO_ESPO.into(),
                kind: AccountKind::DemoEspo,
                label: "Demo site (EspoCRM)".into(),
                base_url,
                site_id: None,
            };
            return Self::assemble(home, account, Arc::new(client), None, demo);
        }
        // Wix's 200-a-minute budget belongs to Wix's servers; the Demo site is local and only
        // limits requests when told to (`--faults rate=200`).
        let client = WixClient::new(
            &base_url,
            WixAuth::ApiKey {
                key: Sensitive::new(api_key),
                site_id: site_id.clone(),
            },
        )
        .map_err(attache_core::BackendError::from)?
        .with_rate_limit(DEMO_REQUESTS_PER_MINUTE);
        let account = AccountInfo {
            name: accounts::DEMO.into(),
            kind: AccountKind::Demo,
            label: "Demo site".into(),
            base_url,
            site_id: Some(site_id),
        };
        let media = Some(client.clone());
        Self::assemble(home, account, Arc::new(client), media, demo)
    }

    pub fn account(&self) -> &AccountInfo {
        &self.account
    }

    /// What this account can do; the window offers exactly this.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    pub fn home(&self) -> &AppHome {
        &self.home
    }

    pub fn contacts(&self) -> &Contacts {
        &self.contacts
    }

    pub fn uploads(&self) -> &Uploads {
        &self.uploads
    }

    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.inbox
    }

    pub fn thumbnails(&self) -> &Thumbnails {
        &self.thumbnails
    }

    /// Sets the time one thumbnail render may take before it is given up (default 10 s).
    pub fn with_thumb_time_limit(mut self, limit: std::time::Duration) -> Self {
        self.thumbnails.set_time_limit(limit);
        self
    }

    /// The Media Manager of this account; accounts without one (EspoCRM) say so plainly.
    pub fn media(&self) -> Result<&Media, ServiceError> {
        self.media
            .as_ref()
            .ok_or_else(|| ServiceError::Unsupported(self.unsupported("Media Manager")))
    }

    /// The webhooks room of this account; accounts whose CRM sends none say so plainly.
    pub fn webhooks(&self) -> Result<&Webhooks, ServiceError> {
        self.webhooks
            .as_ref()
            .ok_or_else(|| ServiceError::Unsupported(self.unsupported("webhooks")))
    }

    fn unsupported(&self, what: &str) -> String {
        format!(
            "{} speaks {}, which has no {what}",
            self.account.label,
            self.account.kind.crm()
        )
    }
}
