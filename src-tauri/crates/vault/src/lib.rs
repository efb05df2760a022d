//! Secrets (API keys, app secrets, HMAC secrets) live only in the OS keyring: the Secret Service
//! on Linux (gnome-keyring, KWallet), the Keychain on macOS, the Credential Manager on Windows.
//! There is no fallback to a file: when the keyring is missing or locked, the caller gets an
//! error that names the remedy.
//!
//! Keyring calls are blocking D-Bus round trips (and may wait on an unlock prompt), so every
//! call runs on tokio's blocking pool, never on the UI thread or an async worker.

use std::sync::Arc;

use attache_core::{ErrorCode, ErrorPayload, Sensitive};
use keyring_core::{CredentialStore, Entry};

/// The keyring "service" every Attaché secret is filed under; the account name is the "user".
pub const SERVICE: &str = "app.attache.desktop";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "no system keyring is available ({0}). Attaché keeps CRM logins only in the keyring: \
         start one (GNOME Keyring or KWallet, with a desktop session) and try again"
    )]
    Unavailable(String),
    #[error(
        "the system keyring is locked ({0}). Unlock it (log in to the desktop, or open \
         \"Passwords and Keys\") and try again"
    )]
    Locked(String),
    #[error("no login is stored in the system keyring for account {0:?}; sign in again")]
    Missing(String),
    #[error("the system keyring failed: {0}")]
    Failed(String),
}

impl VaultError {
    pub fn code(&self) -> ErrorCode {
        match self {
            VaultError::Unavailable(_) => ErrorCode::KeyringUnavailable,
            VaultError::Locked(_) => ErrorCode::KeyringLocked,
            VaultError::Missing(_) => ErrorCode::Unauthenticated,
            VaultError::Failed(_) => ErrorCode::KeyringUnavailable,
        }
    }

    fn from_keyring(account: &str, e: keyring_core::Error) -> Self {
        use keyring_core::Error as K;
        match e {
            K::NoEntry => VaultError::Missing(account.to_string()),
            K::NoStorageAccess(inner) => VaultError::Locked(inner.to_string()),
            K::NoDefaultStore => VaultError::Unavailable("no credential store".into()),
            K::PlatformFailure(inner) => VaultError::Failed(inner.to_string()),
            other => VaultError::Failed(other.to_string()),
        }
    }
}

impl From<VaultError> for ErrorPayload {
    fn from(e: VaultError) -> Self {
        ErrorPayload::new(e.code(), e.to_string())
    }
}

#[derive(Clone)]
pub struct Vault {
    store: Arc<CredentialStore>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

impl Vault {
    /// The platform keyring. Connecting is itself a D-Bus call, hence async.
    pub async fn system() -> Result<Self, VaultError> {
        tokio::task::spawn_blocking(Self::system_blocking)
            .await
            .map_err(|e| VaultError::Failed(format!("keyring task: {e}")))?
    }

    fn system_blocking() -> Result<Self, VaultError> {
        #[cfg(target_os = "linux")]
        let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()
            .map_err(|e| VaultError::Unavailable(e.to_string()))?;
        #[cfg(target_os = "macos")]
        let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()
            .map_err(|e| VaultError::Unavailable(e.to_string()))?;
        #[cfg(target_os = "windows")]
        let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new()
            .map_err(|e| VaultError::Unavailable(e.to_string()))?;
        Ok(Self { store })
    }

    /// A vault over any keyring-core store (tests use `keyring_core::mock::Store`).
    pub fn with_store(store: Arc<CredentialStore>) -> Self {
        Self { store }
    }

    fn entry(&self, account: &str) -> Result<Entry, VaultError> {
        self.store
            .build(SERVICE, account, None)
            .map_err(|e| VaultError::from_keyring(account, e))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        account: &str,
        op: impl FnOnce(Entry) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<T, VaultError> {
        let entry = self.entry(account)?;
        let name = account.to_string();
        tokio::task::spawn_blocking(move || {
            op(entry).map_err(|e| VaultError::from_keyring(&name, e))
        })
        .await
        .map_err(|e| VaultError::Failed(format!("keyring task: {e}")))?
    }

    pub async fn store_secret(
        &self,
        account: &str,
        secret: &Sensitive<String>,
    ) -> Result<(), VaultError> {
        let secret = secret.expose().clone();
        self.blocking(account, move |e| e.set_password(&secret))
            .await
    }

    pub async fn read_secret(&self, account: &str) -> Result<Sensitive<String>, VaultError> {
        self.blocking(account, |e| e.get_password())
            .await
            .map(Sensitive::new)
    }

    /// Removes the account's secret; already gone is fine (sign-out must always complete).
    pub async fn delete_secret(&self, account: &str) -> Result<(), VaultError> {
        match self.blocking(account, |e| e.delete_credential()).await {
            Err(VaultError::Missing(_)) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mock() -> Vault {
        Vault::with_store(keyring_core::mock::Store::new().unwrap())
    }

    #[tokio::test]
    async fn missing_secret_is_a_clear_error_and_delete_is_idempotent() {
        let vault = mock();
        let err = vault.read_secret("nobody").await.unwrap_err();
        assert!(matches!(err, VaultError::Missing(_)));
        assert_eq!(err.code(), ErrorCode::Unauthenticated);
        vault.delete_secret("nobody").await.unwrap();
    }

    #[test]
    fn errors_name_the_remedy() {
        let locked = VaultError::Locked("collection is locked".into());
        assert!(locked.to_string().contains("Unlock it"));
        assert_eq!(locked.code(), ErrorCode::KeyringLocked);
        let gone = VaultError::Unavailable("org.freedesktop.secrets was not provided".into());
        assert!(gone.to_string().contains("start one"));
        assert_eq!(ErrorPayload::from(gone).code, ErrorCode::KeyringUnavailable);
    }
}
