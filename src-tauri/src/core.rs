//! The one [`Attache`] the window uses, opened once on first need.

use std::sync::Arc;

use attache_core::{AppHome, ErrorCode, ErrorPayload};
use attache_service::Attache;
use tokio::sync::OnceCell;

#[derive(Default)]
pub struct Core(OnceCell<Result<Arc<Attache>, ErrorPayload>>);

impl Core {
    /// The opened core; the first caller opens it, the others wait for that.
    pub async fn get(&self) -> Result<Arc<Attache>, ErrorPayload> {
        self.0
            .get_or_init(|| async {
                let home = AppHome::discover().map_err(|e| ErrorPayload::new(ErrorCode::Io, e.to_string()))?;
                Ok(Arc::new(Attache::open(home).await?))
            })
            .await
            .clone()
    }
}
