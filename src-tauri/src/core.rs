//! The one [`Attache`] the window uses: opened on first need, reopened when the user switches
//! or signs out of an account.

use std::sync::Arc;

use attache_core::{AppHome, ErrorCode, ErrorPayload};
use attache_service::Attache;
use tokio::sync::RwLock;

type Opened = Result<Arc<Attache>, ErrorPayload>;

#[derive(Default)]
pub struct Core(RwLock<Option<Opened>>);

pub fn home() -> Result<AppHome, ErrorPayload> {
    AppHome::discover().map_err(|e| ErrorPayload::new(ErrorCode::Io, e.to_string()))
}

async fn open() -> Opened {
    Ok(Arc::new(Attache::open(home()?).await?))
}

impl Core {
    /// The opened core; the first caller opens it, the others wait for that.
    pub async fn get(&self) -> Opened {
        if let Some(opened) = self.0.read().await.as_ref() {
            return opened.clone();
        }
        let mut slot = self.0.write().await;
        if slot.is_none() {
            *slot = Some(open().await);
        }
        slot.as_ref().expect("just filled").clone()
    }

    /// Closes the current account (stopping the Demo site if it ran) and opens the one the
    /// config now names.
    pub async fn reopen(&self) -> Opened {
        let mut slot = self.0.write().await;
        // Drop the old core first: the Demo site's server must stop before another starts on
        // the same data folder.
        *slot = None;
        let opened = open().await;
        *slot = Some(opened.clone());
        opened
    }
}
