//! SQLite, shared by the rooms that keep rows: the one storage error, and opening the files
//! whose rows are the user's work in progress (the upload queue, the inbox): WAL with `synchronous=FULL`, so a row survives power loss and not just a crash, and a
//! schema that only migrates forward (unlike the cache, these files are never rebuilt).

use rusqlite::{Connection, TransactionBehavior};

use attache_core::{ErrorCode, ErrorPayload};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the local cache could not be used: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the local cache holds a record it cannot read: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl From<StoreError> for ErrorPayload {
    fn from(e: StoreError) -> Self {
        ErrorPayload::new(ErrorCode::Storage, e.to_string())
    }
}

/// Applies the pragmas and whichever of `migrations` the file has not seen yet (tracked in
/// `user_version`), in one transaction.
pub(crate) fn prepare(mut conn: Connection, migrations: &[&str]) -> Result<Connection, StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // What is deleted or replaced (an upload URL once its job ends) is overwritten in the file,
    // not left readable in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // The app and a CLI may share the file; writers wait for each other.
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: usize =
        tx.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    for migration in migrations.iter().skip(version) {
        tx.execute_batch(migration)?;
    }
    tx.pragma_update(None, "user_version", migrations.len() as i64)?;
    tx.commit()?;
    Ok(conn)
}
