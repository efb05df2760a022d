//! Saved CRM accounts. Metadata (name, kind, base URL, site id) lives in `config.json`; the secret
//! lives only in the OS keyring ([`attache_vault`]). Connecting checks the login with real calls
//! before anything is saved, and saves the secret before the metadata, so a failure at any step
//! leaves no half-connected account behind.

use std::net::IpAddr;

use attache_core::inbox::InboxSettings;
use attache_core::{AccountInfo, AccountKind, AppHome, BackendError, ErrorCode, Sensitive};
use attache_espo::{EspoAuth, EspoClient, EspoError};
use attache_transport::{TransportError, TransportKind};
use attache_vault::Vault;
use attache_wix::wire::Paging;
use attache_wix::{WixAuth, WixClient, WixError};
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
use crate::safe_file_name;

/// The name the built-in Demo site goes by (`attache use demo`).
pub const DEMO: &str = "demo";
/// The Demo site reached through its EspoCRM API (`attache use demo-espo`).
pub const DEMO_ESPO: &str = "demo-espo";

/// The CRM client for a saved account and its secret from the keyring (with, for Wix sites,
/// the same client for the Media Manager). An HMAC login keeps the API key and the secret in
/// one keyring entry, `key:secret` (EspoCRM keys are hex).
pub fn backend_for(
    saved: &SavedAccount,
    secret: Sensitive<String>,
) -> Result<
    (
        std::sync::Arc<dyn attache_core::CrmBackend>,
        Option<WixClient>,
    ),
    ServiceError,
> {
    let wix = |auth| WixClient::new(saved.base_url(), auth).map_err(BackendError::from);
    let espo = |auth| {
        EspoClient::new(saved.base_url(), auth)
            .map(|client| (std::sync::Arc::new(client) as _, None))
            .map_err(BackendError::from)
    };
    Ok(match saved {
        SavedAccount::EspoApiKey { .. } => espo(EspoAuth::ApiKey { key: secret })?,
        SavedAccount::EspoHmac { .. } => espo(hmac_auth(secret)?)?,
        SavedAccount::WixApp {
            app_id,
            instance_id,
            ..
        } => {
            let client = wix(WixAuth::App {
                app_id: app_id.clone(),
                app_secret: secret,
                instance_id: instance_id.clone(),
            })?;
            (std::sync::Arc::new(client.clone()), Some(client))
        }
        SavedAccount::WixApiKey { site_id, .. } => {
            let client = wix(WixAuth::ApiKey {
                key: secret,
                site_id: site_id.clone(),
            })?;
            (std::sync::Arc::new(client.clone()), Some(client))
        }
    })
}

fn hmac_auth(secret: Sensitive<String>) -> Result<EspoAuth, ServiceError> {
    let (key, hmac) = secret.expose().split_once(':').ok_or_else(|| {
        ServiceError::Config(
            "the keyring entry of this HMAC login is damaged; sign out and connect again".into(),
        )
    })?;
    Ok(EspoAuth::Hmac {
        key: Sensitive::new(key.to_owned()),
        secret: Sensitive::new(hmac.to_owned()),
    })
}

/// A saved login: which CRM, where, and the identifiers that are not secret, each kind with
/// exactly its fields (the secret is in the keyring under `name`). Stored in `config.json` with
/// `kind` as the tag: the shape earlier builds wrote, whose empty fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum SavedAccount {
    /// A Wix site reached with an API key and its site id.
    WixApiKey {
        name: String,
        base_url: String,
        site_id: String,
    },
    /// A Wix site reached as an installed Wix app: the app's ID and its installation's ID.
    WixApp {
        name: String,
        base_url: String,
        app_id: String,
        instance_id: String,
    },
    /// An EspoCRM server reached with an API user's key.
    EspoApiKey { name: String, base_url: String },
    /// An EspoCRM server reached with an API user's key and HMAC secret.
    EspoHmac { name: String, base_url: String },
}

impl SavedAccount {
    pub fn name(&self) -> &str {
        match self {
            SavedAccount::WixApiKey { name, .. }
            | SavedAccount::WixApp { name, .. }
            | SavedAccount::EspoApiKey { name, .. }
            | SavedAccount::EspoHmac { name, .. } => name,
        }
    }

    pub fn base_url(&self) -> &str {
        match self {
            SavedAccount::WixApiKey { base_url, .. }
            | SavedAccount::WixApp { base_url, .. }
            | SavedAccount::EspoApiKey { base_url, .. }
            | SavedAccount::EspoHmac { base_url, .. } => base_url,
        }
    }

    pub fn kind(&self) -> AccountKind {
        match self {
            SavedAccount::WixApiKey { .. } => AccountKind::WixApiKey,
            SavedAccount::WixApp { .. } => AccountKind::WixApp,
            SavedAccount::EspoApiKey { .. } => AccountKind::EspoApiKey,
            SavedAccount::EspoHmac { .. } => AccountKind::EspoHmac,
        }
    }

    pub fn info(&self) -> AccountInfo {
        AccountInfo {
            name: self.name().to_owned(),
            kind: self.kind(),
            label: self.name().to_owned(),
            base_url: self.base_url().to_owned(),
            site_id: match self {
                SavedAccount::WixApiKey { site_id, .. } => Some(site_id.clone()),
                _ => None,
            },
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// The account the app opens on; `None` is the Demo site.
    pub current: Option<String>,
    #[serde(default)]
    pub accounts: Vec<SavedAccount>,
    /// Each account's watched inbox folders, rules and what happens to filed files, by account
    /// name: a rule names a contact of one account and means nothing (or the wrong client) on
    /// another.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub inboxes: std::collections::BTreeMap<String, InboxSettings>,
    /// Earlier builds kept one set of inbox settings for every account: read once, given to the
    /// account that was current (see [`Config::load`]), never written again.
    #[serde(default, skip_serializing)]
    inbox: InboxSettings,
    /// A Wix webhook receiver the app serves while open (live refresh); without one it polls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<WebhookSettings>,
    /// The installed app's settings (tray, start at login, notifications, pauses).
    #[serde(default)]
    pub desktop: attache_core::desktop::DesktopSettings,
}

/// `"webhooks": {"addr": "127.0.0.1:8787", "publicKeyFile": "/path/app-key.pem"}` in
/// config.json: where the receiver listens (register it as the app's callback URL, behind
/// whatever tunnel or proxy makes it reachable) and the app's public key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSettings {
    pub addr: std::net::SocketAddr,
    pub public_key_file: std::path::PathBuf,
}

impl Config {
    pub fn load(home: &AppHome) -> Result<Self, ServiceError> {
        match std::fs::read(home.config_file()) {
            Ok(bytes) => {
                let mut config: Self = serde_json::from_slice(&bytes).map_err(|e| {
                    ServiceError::Config(format!(
                        "{} is not valid: {e}",
                        home.config_file().display()
                    ))
                })?;
                let legacy = std::mem::take(&mut config.inbox);
                if legacy != InboxSettings::default() && config.inboxes.is_empty() {
                    let owner = config.current.clone().unwrap_or_else(|| DEMO.to_owned());
                    config.inboxes.insert(owner, legacy);
                }
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Written through a temporary file and a rename: a crash leaves the old or the new file.
    pub fn save(&self, home: &AppHome) -> Result<(), ServiceError> {
        let path = home.config_file();
        let tmp = path.with_extension("json.tmp");
        let bytes =
            serde_json::to_vec_pretty(self).map_err(|e| ServiceError::Config(e.to_string()))?;
        std::fs::write(&tmp, bytes)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    /// The inbox settings of one account (none saved: nothing watched).
    pub fn inbox_of(&self, account: &str) -> InboxSettings {
        self.inboxes.get(account).cloned().unwrap_or_default()
    }

    pub fn find(&self, name: &str) -> Option<&SavedAccount> {
        self.accounts.iter().find(|a| a.name() == name)
    }

    pub fn current_account(&self) -> Option<&SavedAccount> {
        self.current.as_deref().and_then(|n| self.find(n))
    }
}

/// A login to check and save, of any kind: what both front ends hand to [`login`].
pub enum Login {
    Wix(WixLogin),
    WixApp(WixAppLogin),
    Espo(EspoLogin),
}

/// Checks a login with real calls, keeps its secrets in the system keyring only, saves the
/// account and makes it current. Nothing is saved when any step fails.
pub async fn login(home: &AppHome, login: Login) -> Result<AccountInfo, ServiceError> {
    let vault = Vault::system().await?;
    match login {
        Login::Wix(l) => login_wix(home, &vault, l).await,
        Login::WixApp(l) => login_wix_app(home, &vault, l).await,
        Login::Espo(l) => login_espo(home, &vault, l).await,
    }
}

/// What a Wix API-key login needs. The key is read by the caller from stdin or a password field,
/// never from a command line.
pub struct WixLogin {
    pub name: String,
    pub base_url: String,
    pub site_id: String,
    pub api_key: Sensitive<String>,
}

/// Refuses plain `http://` except to loopback (the sandbox), and anything not http(s).
pub fn check_base_url(base_url: &str) -> Result<url::Url, ServiceError> {
    let url = url::Url::parse(base_url)
        .map_err(|e| ServiceError::Invalid(format!("{base_url:?} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ServiceError::Invalid(format!(
            "{base_url} uses plain http://, which would send the login unencrypted; use https://"
        ))),
        other => Err(ServiceError::Invalid(format!(
            "{other}:// is not a web address; use https://"
        ))),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn check_name(name: &str, config: &Config) -> Result<(), ServiceError> {
    if name.trim().is_empty() || name != name.trim() || name.len() > 64 {
        return Err(ServiceError::Invalid(
            "an account name is 1 to 64 characters, no outer spaces".into(),
        ));
    }
    if name == DEMO || name == DEMO_ESPO || safe_file_name(name) != name {
        return Err(ServiceError::Invalid(format!(
            "{name:?} cannot be an account name; pick another"
        )));
    }
    if config.find(name).is_some() {
        return Err(ServiceError::Invalid(format!(
            "an account named {name:?} exists; sign out of it first or pick another name"
        )));
    }
    Ok(())
}

/// What a Wix app login needs: the app's ID and secret (from the app's OAuth settings in the
/// Wix Dev Center) and the instance ID of its installation on the agent's site.
pub struct WixAppLogin {
    pub name: String,
    pub base_url: String,
    pub app_id: String,
    pub instance_id: String,
    pub app_secret: Sensitive<String>,
}

/// Connects a Wix site as an installed app: mints a token and reads contacts with it before
/// saving anything; the secret goes to the keyring, the IDs to the config.
pub async fn login_wix_app(
    home: &AppHome,
    vault: &Vault,
    login: WixAppLogin,
) -> Result<AccountInfo, ServiceError> {
    let config = Config::load(home)?;
    check_name(&login.name, &config)?;
    let url = check_base_url(&login.base_url)?;
    for (what, value) in [
        ("an app ID", &login.app_id),
        ("an instance ID", &login.instance_id),
    ] {
        if value.trim().is_empty() {
            return Err(ServiceError::Invalid(format!("{what} is needed")));
        }
    }
    if login.app_secret.expose().trim().is_empty() {
        return Err(ServiceError::Invalid("the app secret is empty".into()));
    }
    let client = WixClient::new(
        url.as_str(),
        WixAuth::App {
            app_id: login.app_id.trim().to_owned(),
            app_secret: login.app_secret.clone(),
            instance_id: login.instance_id.trim().to_owned(),
        },
    )
    .map_err(BackendError::from)?;
    verify_wix(&client).await.map_err(|e| match e {
        ServiceError::Backend(mut b) if b.status == Some(401) => {
            b.message = "Wix refused the app's credentials: check the app ID and secret (Dev Center → OAuth)".into();
            ServiceError::Backend(b)
        }
        ServiceError::Backend(mut b) if b.status == Some(404) => {
            b.message = "the app is not installed on a site with that instance ID".into();
            ServiceError::Backend(b)
        }
        other => other,
    })?;

    let account = SavedAccount::WixApp {
        name: login.name.clone(),
        base_url: url.as_str().trim_end_matches('/').to_string(),
        app_id: login.app_id.trim().to_owned(),
        instance_id: login.instance_id.trim().to_owned(),
    };
    save_new_account(home, vault, config, account, &login.app_secret).await
}

/// Checks a Wix login with real calls and says in plain words why it fails.
pub async fn verify_wix(client: &WixClient) -> Result<(), ServiceError> {
    let page = client
        .list_contacts(
            Paging {
                limit: Some(1),
                offset: None,
            },
            None,
        )
        .await
        .map_err(|e| explain_wix(e, "contacts"))?;
    if let Some(first) = page.contacts.first() {
        client
            .list_attachments(
                &first.id,
                Paging {
                    limit: Some(1),
                    offset: None,
                },
            )
            .await
            .map_err(|e| explain_wix(e, "contact attachments"))?;
    }
    Ok(())
}

fn explain_wix(e: WixError, what: &str) -> ServiceError {
    let plain = match &e {
        WixError::Api { status: 401, .. } => {
            "Wix refused the API key: check that it is complete and not revoked".to_string()
        }
        WixError::Api { status: 403, .. } => {
            format!("the API key lacks permission to read {what}: add it in Wix's API Keys Manager")
        }
        WixError::Api {
            status: 404,
            application_code,
            ..
        } if application_code.as_deref() == Some("SITE_NOT_FOUND") => {
            "Wix knows no site with that site ID for this API key".to_string()
        }
        WixError::Transport(t) => transport_advice(t),
        _ => format!("the check of {what} failed: {e}"),
    };
    let mut err = BackendError::from(e);
    err.message = plain;
    ServiceError::Backend(err)
}

/// Connects a Wix site: checks the login, stores the key in the keyring, then saves the account
/// and makes it current. Nothing is saved when any step fails.
pub async fn login_wix(
    home: &AppHome,
    vault: &Vault,
    login: WixLogin,
) -> Result<AccountInfo, ServiceError> {
    let config = Config::load(home)?;
    check_name(&login.name, &config)?;
    let url = check_base_url(&login.base_url)?;
    if login.site_id.trim().is_empty() {
        return Err(ServiceError::Invalid(
            "a site ID is needed (Wix dashboard → Settings → Advanced)".into(),
        ));
    }
    if login.api_key.expose().trim().is_empty() {
        return Err(ServiceError::Invalid("the API key is empty".into()));
    }
    let client = WixClient::new(
        url.as_str(),
        WixAuth::ApiKey {
            key: login.api_key.clone(),
            site_id: login.site_id.clone(),
        },
    )
    .map_err(BackendError::from)?;
    verify_wix(&client).await?;

    let account = SavedAccount::WixApiKey {
        name: login.name.clone(),
        base_url: url.as_str().trim_end_matches('/').to_string(),
        site_id: login.site_id.clone(),
    };
    save_new_account(home, vault, config, account, &login.api_key).await
}

/// What an EspoCRM login needs: the site address and an API user's key, plus its HMAC secret
/// for an HMAC login. Secrets come from stdin or a password field, never a command line.
pub struct EspoLogin {
    pub name: String,
    pub site_url: String,
    pub api_key: Sensitive<String>,
    pub hmac_secret: Option<Sensitive<String>>,
}

/// Checks an EspoCRM login with real calls (who the API user is, then one page of contacts
/// and one contact's stream files) and says in plain words why it fails.
pub async fn verify_espo(client: &EspoClient) -> Result<(), ServiceError> {
    client
        .app_user()
        .await
        .map_err(|e| explain_espo(e, "the API user"))?;
    let page = client
        .list_contacts(0, 1, None)
        .await
        .map_err(|e| explain_espo(e, "contacts"))?;
    if let Some(first) = page.list.first() {
        client
            .stream_attachments(&first.id, 0, 1, true)
            .await
            .map_err(|e| explain_espo(e, "contacts' streams"))?;
    }
    Ok(())
}

fn explain_espo(e: EspoError, what: &str) -> ServiceError {
    let plain = match &e {
        EspoError::Api { status: 401, .. } => {
            "EspoCRM refused the login: check the API key (and HMAC secret) of the API user in Administration > API Users".to_string()
        }
        EspoError::Api { status: 403, reason: None, .. } => {
            "EspoCRM refused this computer: too many failed logins in the last minute, or its address is not allowed; wait a minute and check the key".to_string()
        }
        EspoError::Api { status: 403, reason: Some(r), .. } => format!(
            "the API user's role lacks permission to read {what} (EspoCRM: {r}); give its role read and stream access to Contacts"
        ),
        EspoError::Api { status: 404, .. } => {
            "no EspoCRM API answers at that address: check the URL (the address EspoCRM opens at)".to_string()
        }
        EspoError::Transport(t) => transport_advice(t),
        EspoError::Decode(_) => {
            "the address answers, but not as EspoCRM does: check the URL".to_string()
        }
        _ => format!("the check of {what} failed: {e}"),
    };
    let mut err = BackendError::from(e);
    err.message = plain;
    ServiceError::Backend(err)
}

/// Connects an EspoCRM server: checks the login, stores the secret in the keyring, then saves
/// the account and makes it current. Nothing is saved when any step fails.
pub async fn login_espo(
    home: &AppHome,
    vault: &Vault,
    login: EspoLogin,
) -> Result<AccountInfo, ServiceError> {
    let config = Config::load(home)?;
    check_name(&login.name, &config)?;
    let url = check_base_url(&login.site_url)?;
    let key = login.api_key.expose().trim().to_owned();
    if key.is_empty() {
        return Err(ServiceError::Invalid("the API key is empty".into()));
    }
    if key.contains(':') {
        return Err(ServiceError::Invalid(
            "an EspoCRM API key has no ':'".into(),
        ));
    }
    let (hmac, auth, secret) = match &login.hmac_secret {
        None => (
            false,
            EspoAuth::ApiKey {
                key: Sensitive::new(key.clone()),
            },
            Sensitive::new(key.clone()),
        ),
        Some(hmac) => {
            let hmac = hmac.expose().trim().to_owned();
            if hmac.is_empty() {
                return Err(ServiceError::Invalid("the HMAC secret is empty".into()));
            }
            (
                true,
                EspoAuth::Hmac {
                    key: Sensitive::new(key.clone()),
                    secret: Sensitive::new(hmac.clone()),
                },
                Sensitive::new(format!("{key}:{hmac}")),
            )
        }
    };
    let client = EspoClient::new(url.as_str(), auth).map_err(BackendError::from)?;
    verify_espo(&client).await?;

    let (name, base_url) = (
        login.name.clone(),
        client.site_url().as_str().trim_end_matches('/').to_string(),
    );
    let account = if hmac {
        SavedAccount::EspoHmac { name, base_url }
    } else {
        SavedAccount::EspoApiKey { name, base_url }
    };
    save_new_account(home, vault, config, account, &secret).await
}

/// The last step of every login, once the check passed: the secret into the keyring, then the
/// account into the config as the current one. A failure to save takes the secret back out, so
/// no secret is left that no account refers to.
async fn save_new_account(
    home: &AppHome,
    vault: &Vault,
    mut config: Config,
    account: SavedAccount,
    secret: &Sensitive<String>,
) -> Result<AccountInfo, ServiceError> {
    vault.store_secret(account.name(), secret).await?;
    config.accounts.push(account.clone());
    config.current = Some(account.name().to_owned());
    if let Err(e) = config.save(home) {
        let _ = vault.delete_secret(account.name()).await;
        return Err(e);
    }
    Ok(account.info())
}

/// Makes `name` (or the Demo site, "demo" / "demo-espo") the account the app opens on.
pub fn use_account(home: &AppHome, name: &str) -> Result<(), ServiceError> {
    let mut config = Config::load(home)?;
    if name == DEMO {
        config.current = None;
    } else if name == DEMO_ESPO {
        config.current = Some(DEMO_ESPO.to_string());
    } else if config.find(name).is_some() {
        config.current = Some(name.to_string());
    } else {
        return Err(ServiceError::NotFound(format!(
            "no account named {name:?}; see `attache accounts`"
        )));
    }
    config.save(home)
}

/// Signs out: the secret leaves the keyring, the account leaves the config, and its cached
/// contacts, attachments, upload jobs, inbox rows and every local copy of its documents
/// (downloads, previews, thumbnails, converted images) are deleted.
pub async fn logout(home: &AppHome, vault: &Vault, name: &str) -> Result<(), ServiceError> {
    let mut config = Config::load(home)?;
    if config.find(name).is_none() {
        return Err(ServiceError::NotFound(format!(
            "no account named {name:?}; see `attache accounts`"
        )));
    }
    vault.delete_secret(name).await?;
    config.accounts.retain(|a| a.name() != name);
    config.inboxes.remove(name);
    if config.current.as_deref() == Some(name) {
        config.current = None;
    }
    config.save(home)?;
    crate::contacts::Store::open(&home.cache_db())?.forget_account(name)?;
    // Its upload jobs and inbox rows go too: they could only run with the login now gone.
    crate::uploads::UploadQueue::open(&home.queue_db())?.forget_account(name)?;
    crate::inbox::InboxStore::open(&home.inbox_db())?.forget_account(name)?;
    forget_local_copies(home, name)
}

/// Deletes every copy of an account's documents the app made: downloads, previews, rendered
/// thumbnails and converted images.
fn forget_local_copies(home: &AppHome, name: &str) -> Result<(), ServiceError> {
    for dir in crate::names::account_folders(home, name) {
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

/// What to tell someone whose login check could not reach the server.
fn transport_advice(t: &TransportError) -> String {
    let TransportError { kind, host, reason } = t;
    match kind {
        TransportKind::Tls => format!(
            "{host} did not prove it is who it says (its TLS certificate is not valid, or it does not speak https): {reason}"
        ),
        TransportKind::Dns => {
            format!("{host} could not be reached: no server has that name; check the address")
        }
        TransportKind::Refused => format!(
            "{host} could not be reached: nothing answers at that address and port (connection refused)"
        ),
        _ => format!("{host} could not be reached ({reason})"),
    }
}

pub fn is_auth_error(e: &ServiceError) -> bool {
    e.code() == ErrorCode::Unauthenticated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_out_deletes_every_local_copy_of_the_accounts_documents_and_no_other() {
        let root = tempfile::tempdir().unwrap();
        let home = AppHome::at(root.path().join("home")).unwrap();
        for account in ["office", "demo"] {
            for dir in crate::names::account_folders(&home, account) {
                std::fs::create_dir_all(dir.join("sub")).unwrap();
                std::fs::write(dir.join("sub/copy.pdf"), "%PDF").unwrap();
            }
        }
        forget_local_copies(&home, "office").unwrap();
        for dir in crate::names::account_folders(&home, "office") {
            assert!(!dir.exists(), "{} is left", dir.display());
        }
        for dir in crate::names::account_folders(&home, "demo") {
            assert!(
                dir.join("sub/copy.pdf").is_file(),
                "{} went too",
                dir.display()
            );
        }
        // Twice is fine (nothing left to delete).
        forget_local_copies(&home, "office").unwrap();
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_base_url("https://www.wixapis.com").is_ok());
        assert!(check_base_url("http://127.0.0.1:4321").is_ok());
        assert!(check_base_url("http://localhost:8080").is_ok());
        assert!(check_base_url("http://[::1]:8080").is_ok());
        let err = check_base_url("http://crm.example.com").unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        assert!(err.to_string().contains("unencrypted"));
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("not a url").is_err());
    }

    #[test]
    fn config_round_trips_and_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let home = AppHome::at(dir.path().to_path_buf()).unwrap();
        assert_eq!(Config::load(&home).unwrap(), Config::default());
        let config = Config {
            current: Some("office".into()),
            accounts: vec![SavedAccount::WixApiKey {
                name: "office".into(),
                base_url: "https://www.wixapis.com".into(),
                site_id: "s".into(),
            }],
            ..Config::default()
        };
        config.save(&home).unwrap();
        assert_eq!(Config::load(&home).unwrap(), config);
        assert!(check_name("office", &config).is_err(), "taken");
        assert!(check_name("demo", &config).is_err(), "reserved");
        assert!(check_name("../x", &config).is_err(), "path-like");
        assert!(check_name(" x", &config).is_err());
        assert!(check_name("Bayview Realty", &config).is_ok());
        use_account(&home, "demo").unwrap();
        assert_eq!(Config::load(&home).unwrap().current, None);
        assert!(use_account(&home, "nope").is_err());
    }

    #[test]
    fn accounts_saved_by_earlier_builds_load_as_their_kind_and_their_inbox_goes_to_the_current_one()
    {
        let dir = tempfile::tempdir().unwrap();
        let home = AppHome::at(dir.path().to_path_buf()).unwrap();
        // The flat shape of earlier builds: every field on every kind, one inbox for all.
        std::fs::write(
            home.config_file(),
            r#"{"current": "office", "accounts": [
                {"name": "office", "kind": "wixApiKey", "baseUrl": "https://www.wixapis.com", "siteId": "s1"},
                {"name": "app", "kind": "wixApp", "baseUrl": "https://www.wixapis.com", "siteId": null, "appId": "a1", "instanceId": "i1"},
                {"name": "crm", "kind": "espoHmac", "baseUrl": "https://crm.example.com", "siteId": null}],
              "inbox": {"folders": [{"path": "/scans"}], "after": "keep",
                        "rules": [{"pattern": "*Harbor*", "kind": "glob", "contactId": "c7"}]}}"#,
        )
        .unwrap();
        let config = Config::load(&home).unwrap();
        assert_eq!(
            config.accounts,
            vec![
                SavedAccount::WixApiKey {
                    name: "office".into(),
                    base_url: "https://www.wixapis.com".into(),
                    site_id: "s1".into(),
                },
                SavedAccount::WixApp {
                    name: "app".into(),
                    base_url: "https://www.wixapis.com".into(),
                    app_id: "a1".into(),
                    instance_id: "i1".into(),
                },
                SavedAccount::EspoHmac {
                    name: "crm".into(),
                    base_url: "https://crm.example.com".into(),
                },
            ]
        );
        assert_eq!(config.accounts[1].kind(), AccountKind::WixApp);
        assert_eq!(config.accounts[0].info().site_id.as_deref(), Some("s1"));
        assert_eq!(config.accounts[2].info().site_id, None);
        // The rule names a contact of the account that was current: it stays with that one.
        let office = config.inbox_of("office");
        assert_eq!(office.rules[0].contact_id, "c7");
        assert_eq!(office.after, attache_core::inbox::AfterFiling::Keep);
        assert_eq!(config.inbox_of("crm"), InboxSettings::default());
        assert_eq!(config.inbox_of(DEMO), InboxSettings::default());

        config.save(&home).unwrap();
        let written = std::fs::read_to_string(home.config_file()).unwrap();
        assert!(
            !written.contains("\"inbox\""),
            "the shared form is not written again"
        );
        assert!(
            !written.contains("siteId\": null"),
            "each kind holds only its fields"
        );
        assert_eq!(Config::load(&home).unwrap(), config);
    }

    #[test]
    fn a_config_with_an_unknown_account_kind_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let home = AppHome::at(dir.path().to_path_buf()).unwrap();
        std::fs::write(
            home.config_file(),
            r#"{"accounts": [{"name": "x", "kind": "salesforce", "baseUrl": "https://x"}]}"#,
        )
        .unwrap();
        let e = Config::load(&home).unwrap_err().to_string();
        assert!(e.contains("config.json is not valid"), "{e}");
    }
}
