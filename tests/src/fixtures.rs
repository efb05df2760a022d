//! The Demo site as a fixture, written once for every suite: a sandbox on loopback, the app
//! opened on it through either wire, what is really on the site read by a fresh client, faults
//! switched on and off, and small files whose bytes are unique.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use attache_core::{AppHome, Contact, CrmBackend, Sensitive};
use attache_espo::{EspoAuth, EspoClient};
use attache_sandbox::{Sandbox, SandboxConfig, DEMO_API_KEY, DEMO_SITE_ID};
use attache_service::Attache;
use attache_wix::{WixAuth, WixClient};

/// The CRM protocol the app talks to the Demo site through: the shared scenarios run on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crm {
    Wix,
    Espo,
}

/// The Demo site's sandbox on a free loopback port, storing its files under `site`.
pub async fn demo_sandbox(site: &Path) -> Sandbox {
    sandbox_with(SandboxConfig::demo(site.to_path_buf())).await
}

pub async fn sandbox_with(config: SandboxConfig) -> Sandbox {
    Sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("the sandbox starts on loopback")
}

/// The app with its home in `home`, its Demo account on the sandbox at `base_url` through `crm`.
pub async fn open_demo(home: &Path, base_url: &str, crm: Crm) -> Attache {
    let home = AppHome::at(home.to_path_buf()).unwrap();
    match crm {
        Crm::Wix => Attache::open_demo_at(home, base_url).await,
        Crm::Espo => Attache::open_demo_espo_at(home, base_url).await,
    }
    .unwrap()
}

/// The cached contact whose name search finds first (the cache must be filled).
pub fn contact_named(app: &Attache, name: &str) -> Contact {
    app.contacts()
        .search(name, 0, 1)
        .contacts
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no contact named {name} in the cache"))
}

/// A Wix client with the Demo site's API key, default retries.
pub fn demo_wix(base_url: &str) -> WixClient {
    WixClient::new(
        base_url,
        WixAuth::ApiKey {
            key: Sensitive::new(DEMO_API_KEY.into()),
            site_id: DEMO_SITE_ID.into(),
        },
    )
    .unwrap()
}

/// An EspoCRM client with the Demo site's API key, default retries.
pub fn demo_espo(base_url: &str) -> EspoClient {
    EspoClient::new(
        base_url,
        EspoAuth::ApiKey {
            key: Sensitive::new(DEMO_API_KEY.into()),
        },
    )
    .unwrap()
}

/// What is really attached to a contact on the site, by file name, read by a fresh client
/// (the site's contacts are the same through either wire).
pub async fn attachment_counts(base_url: &str, contact_id: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for a in CrmBackend::list_attachments(&demo_wix(base_url), contact_id)
        .await
        .unwrap()
    {
        *counts.entry(a.file_name).or_insert(0) += 1;
    }
    counts
}

/// Replaces the sandbox's faults (`{}` for none).
pub async fn set_faults(base_url: &str, faults: &impl serde::Serialize) {
    let resp = reqwest::Client::new()
        .put(format!("{base_url}/_admin/faults"))
        .json(faults)
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "faults refused: {}",
        resp.status()
    );
}

/// Inbox settings watching one folder (`poll`: `None` decides by file system), moving filed
/// files to `Filed/`, no rules.
pub fn watch_settings(folder: &Path, poll: Option<bool>) -> attache_core::inbox::InboxSettings {
    use attache_core::inbox::{AfterFiling, InboxFolder, InboxSettings};
    InboxSettings {
        folders: vec![InboxFolder {
            path: folder.to_path_buf(),
            poll,
        }],
        after: AfterFiling::Move,
        rules: vec![],
    }
}

/// Polls the app's inbox rows (newest first) until `done` holds for them, or fails with them
/// after `within`.
pub async fn inbox_items_until(
    app: &Attache,
    what: &str,
    within: std::time::Duration,
    done: impl Fn(&[attache_core::inbox::InboxItem]) -> bool,
) -> Vec<attache_core::inbox::InboxItem> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let items = app.inbox().items(5000).unwrap();
        if done(&items) {
            return items;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {items:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A small valid PDF whose bytes (and so content hash) are unique to `seed`.
pub fn pdf_bytes(seed: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {seed}\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n").into_bytes()
}

/// [`pdf_bytes`] written to `dir/name`.
pub fn write_pdf(dir: &Path, name: &str, seed: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pdf_bytes(seed)).unwrap();
    path
}
