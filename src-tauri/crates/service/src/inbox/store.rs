//! The inbox's memory: one row per file it took on, in SQLite (see [`crate::durable`]).
//!
//! A file is known by its path, size and modification time, so a rescan skips what was already
//! handled (a kept file, one waiting for review) while a new file written to a used name is new.
//! Idempotence against the CRM comes from the upload queue's content key, not from here: after
//! a crash the same file is simply taken on again and the queue answers "already queued" or
//! "already attached".

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use attache_core::inbox::{InboxItem, InboxState, MatchReason, Suggestion};
use attache_core::{ErrorCode, ErrorPayload};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::uploads::now_ms;
use crate::StoreError;

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE inbox_items (
    id            INTEGER PRIMARY KEY,
    account       TEXT NOT NULL,
    inbox         TEXT NOT NULL,
    path          TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    size          INTEGER NOT NULL,
    modified_ns   INTEGER NOT NULL,
    state         TEXT NOT NULL,
    contact_id    TEXT,
    contact_name  TEXT,
    reason        TEXT,
    suggestions   TEXT,
    job_id        INTEGER,
    filed_path    TEXT,
    error_code    TEXT,
    error_message TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    retry_at      INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX inbox_items_by_file ON inbox_items (account, path, size, modified_ns);
CREATE INDEX inbox_items_by_state ON inbox_items (account, state);
CREATE INDEX inbox_items_by_update ON inbox_items (account, updated_at);
"#];

const COLUMNS: &str = "id, account, inbox, path, file_name, size, modified_ns, state, contact_id, contact_name, \
     reason, suggestions, job_id, filed_path, error_code, error_message, failures, retry_at, updated_at";

fn item_from_row(r: &Row<'_>) -> rusqlite::Result<InboxItem> {
    let reason: Option<MatchReason> = r
        .get::<_, Option<String>>(10)?
        .and_then(|s| serde_json::from_str(&s).ok());
    let code: Option<String> = r.get(14)?;
    let message: Option<String> = r.get(15)?;
    Ok(InboxItem {
        id: r.get(0)?,
        account: r.get(1)?,
        inbox: r.get::<_, String>(2)?.into(),
        path: r.get::<_, String>(3)?.into(),
        file_name: r.get(4)?,
        size: r.get::<_, i64>(5)? as u64,
        modified_ns: r.get(6)?,
        state: InboxState::parse(&r.get::<_, String>(7)?),
        contact_id: r.get(8)?,
        contact_name: r.get(9)?,
        reason_text: reason.as_ref().map(MatchReason::explain),
        reason,
        suggestions: r
            .get::<_, Option<String>>(11)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        job_id: r.get(12)?,
        filed_path: r.get::<_, Option<String>>(13)?.map(PathBuf::from),
        error: match (code, message) {
            (Some(c), Some(m)) => Some(ErrorPayload::new(
                serde_json::from_value(serde_json::Value::String(c)).unwrap_or(ErrorCode::Internal),
                m,
            )),
            _ => None,
        },
        failures: r.get::<_, i64>(16)? as u32,
        retry_at: r.get(17)?,
        updated_at: r.get(18)?,
    })
}

/// A file as found in an inbox folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    pub inbox: PathBuf,
    pub path: PathBuf,
    pub size: u64,
    pub modified_ns: i64,
}

pub struct InboxStore {
    conn: Mutex<Connection>,
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

impl InboxStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Mutex::new(crate::durable::prepare(
                Connection::open(path)?,
                MIGRATIONS,
            )?),
        })
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        Ok(Self {
            conn: Mutex::new(crate::durable::prepare(
                Connection::open_in_memory()?,
                MIGRATIONS,
            )?),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The row for exactly this file (same path, size and time), if it was taken on before.
    pub fn known(&self, account: &str, file: &FoundFile) -> Result<Option<InboxItem>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM inbox_items WHERE account = ?1 AND path = ?2 AND size = ?3 AND modified_ns = ?4"),
                params![account, text(&file.path), file.size as i64, file.modified_ns],
                item_from_row,
            )
            .optional()?)
    }

    pub fn item(&self, id: i64) -> Result<Option<InboxItem>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM inbox_items WHERE id = ?1"),
                [id],
                item_from_row,
            )
            .optional()?)
    }

    /// Records a file matched to a contact and queued as upload job `job_id`.
    pub fn record_uploading(
        &self,
        account: &str,
        file: &FoundFile,
        contact: (&str, &str),
        reason: &MatchReason,
        job_id: i64,
    ) -> Result<InboxItem, StoreError> {
        self.upsert(account, file, InboxState::Uploading, |conn, id| {
            conn.execute(
                "UPDATE inbox_items SET contact_id = ?2, contact_name = ?3, reason = ?4, job_id = ?5, suggestions = NULL,
                 error_code = NULL, error_message = NULL, retry_at = NULL WHERE id = ?1",
                params![id, contact.0, contact.1, serde_json::to_string(reason)?, job_id],
            )?;
            Ok(())
        })
    }

    /// Records a file that needs the user, with what to suggest.
    pub fn record_needs_filing(
        &self,
        account: &str,
        file: &FoundFile,
        suggestions: &[Suggestion],
    ) -> Result<InboxItem, StoreError> {
        self.upsert(account, file, InboxState::NeedsFiling, |conn, id| {
            conn.execute(
                "UPDATE inbox_items SET suggestions = ?2, contact_id = NULL, contact_name = NULL, reason = NULL, job_id = NULL
                 WHERE id = ?1",
                params![id, serde_json::to_string(suggestions)?],
            )?;
            Ok(())
        })
    }

    /// Records a file that could not be taken on (unreadable, refused type...); `retry_at` says
    /// when to try again by itself, if ever.
    pub fn record_failed(
        &self,
        account: &str,
        file: &FoundFile,
        error: &ErrorPayload,
        retry_at: Option<i64>,
    ) -> Result<InboxItem, StoreError> {
        self.upsert(account, file, InboxState::Failed, |conn, id| {
            set_error(conn, id, error, retry_at)?;
            Ok(())
        })
    }

    fn upsert(
        &self,
        account: &str,
        file: &FoundFile,
        state: InboxState,
        then: impl FnOnce(&Connection, i64) -> Result<(), StoreError>,
    ) -> Result<InboxItem, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let now = now_ms();
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        tx.execute(
            "INSERT INTO inbox_items (account, inbox, path, file_name, size, modified_ns, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
             ON CONFLICT (account, path, size, modified_ns) DO UPDATE SET state = ?7, updated_at = ?8",
            params![account, text(&file.inbox), text(&file.path), name, file.size as i64, file.modified_ns, state.as_str(), now],
        )?;
        let id: i64 = tx.query_row(
            "SELECT id FROM inbox_items WHERE account = ?1 AND path = ?2 AND size = ?3 AND modified_ns = ?4",
            params![account, text(&file.path), file.size as i64, file.modified_ns],
            |r| r.get(0),
        )?;
        then(&tx, id)?;
        let item = tx.query_row(
            &format!("SELECT {COLUMNS} FROM inbox_items WHERE id = ?1"),
            [id],
            item_from_row,
        )?;
        tx.commit()?;
        Ok(item)
    }

    /// The file was attached and put where the settings say (`filed_path`: where it went, if
    /// it was moved).
    pub fn mark_filed(&self, id: i64, filed_path: Option<&Path>) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE inbox_items SET state = 'filed', filed_path = ?2, error_code = NULL, error_message = NULL,
             retry_at = NULL, updated_at = ?3 WHERE id = ?1",
            params![id, filed_path.map(text), now_ms()],
        )?;
        Ok(())
    }

    /// The user chose the contact for a file that needed filing (or failed): it is uploading now.
    pub fn mark_chosen(
        &self,
        id: i64,
        contact: (&str, &str),
        job_id: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE inbox_items SET state = 'uploading', contact_id = ?2, contact_name = ?3, reason = ?4, job_id = ?5,
             error_code = NULL, error_message = NULL, retry_at = NULL, updated_at = ?6 WHERE id = ?1",
            params![id, contact.0, contact.1, serde_json::to_string(&MatchReason::Chosen)?, job_id, now_ms()],
        )?;
        Ok(())
    }

    /// Its upload job failed (or filing afterwards did); counts the failure.
    pub fn mark_failed(
        &self,
        id: i64,
        error: &ErrorPayload,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE inbox_items SET state = 'failed', updated_at = ?2 WHERE id = ?1",
            params![id, now_ms()],
        )?;
        set_error(&conn, id, error, retry_at)
    }

    /// Back to uploading (a retry of its job).
    pub fn mark_uploading(&self, id: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE inbox_items SET state = 'uploading', retry_at = NULL, updated_at = ?2 WHERE id = ?1",
            params![id, now_ms()],
        )?;
        Ok(())
    }

    /// The file vanished before it was filed (deleted by the user): nothing left to do.
    pub fn forget(&self, id: i64) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM inbox_items WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn in_state(&self, account: &str, state: InboxState) -> Result<Vec<InboxItem>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM inbox_items WHERE account = ?1 AND state = ?2 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![account, state.as_str()], item_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Failed files whose time to try again has come.
    pub fn due_retries(&self, account: &str, now: i64) -> Result<Vec<InboxItem>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM inbox_items WHERE account = ?1 AND state = 'failed' AND retry_at IS NOT NULL AND retry_at <= ?2 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![account, now], item_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest rows, newest change first (the Inbox panel).
    pub fn recent(&self, account: &str, limit: usize) -> Result<Vec<InboxItem>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare(&format!("SELECT {COLUMNS} FROM inbox_items WHERE account = ?1 ORDER BY updated_at DESC, id DESC LIMIT ?2"))?;
        let rows = stmt.query_map(params![account, limit as i64], item_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Rows changed after `since` (ms), for the panel's live updates.
    pub fn changed_since(&self, account: &str, since: i64) -> Result<Vec<InboxItem>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM inbox_items WHERE account = ?1 AND updated_at > ?2 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![account, since], item_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn forget_account(&self, account: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM inbox_items WHERE account = ?1", [account])?;
        Ok(())
    }
}

fn set_error(
    conn: &Connection,
    id: i64,
    error: &ErrorPayload,
    retry_at: Option<i64>,
) -> Result<(), StoreError> {
    let code = serde_json::to_value(error.code)?
        .as_str()
        .unwrap_or("internal")
        .to_owned();
    conn.execute(
        "UPDATE inbox_items SET error_code = ?2, error_message = ?3, retry_at = ?4, failures = failures + 1 WHERE id = ?1",
        params![id, code, error.message, retry_at],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &str, size: u64, mtime: i64) -> FoundFile {
        FoundFile {
            inbox: "/in".into(),
            path: path.into(),
            size,
            modified_ns: mtime,
        }
    }

    #[test]
    fn a_file_is_known_by_path_size_and_time() {
        let store = InboxStore::open_in_memory().unwrap();
        let f = found("/in/a.pdf", 10, 1);
        assert!(store.known("acc", &f).unwrap().is_none());
        let item = store
            .record_uploading("acc", &f, ("c1", "Ana"), &MatchReason::Chosen, 7)
            .unwrap();
        assert_eq!((item.state, item.job_id), (InboxState::Uploading, Some(7)));
        assert_eq!(store.known("acc", &f).unwrap().unwrap().id, item.id);
        // Same path, new content: a new file.
        assert!(store
            .known("acc", &found("/in/a.pdf", 11, 2))
            .unwrap()
            .is_none());
        assert!(store.known("other", &f).unwrap().is_none());

        // Recording again (after a crash) updates the one row.
        let again = store
            .record_uploading("acc", &f, ("c1", "Ana"), &MatchReason::Chosen, 8)
            .unwrap();
        assert_eq!((again.id, again.job_id), (item.id, Some(8)));
        store
            .mark_filed(item.id, Some(Path::new("/in/Filed/Ana/a.pdf")))
            .unwrap();
        let filed = store.item(item.id).unwrap().unwrap();
        assert_eq!(filed.state, InboxState::Filed);
        assert_eq!(filed.reason_text.as_deref(), Some("chosen by you"));
    }

    #[test]
    fn failures_count_and_come_due() {
        let store = InboxStore::open_in_memory().unwrap();
        let f = found("/in/b.pdf", 10, 1);
        let err = ErrorPayload::new(ErrorCode::Unavailable, "down");
        let item = store.record_failed("acc", &f, &err, Some(1_000)).unwrap();
        assert_eq!(
            (item.failures, item.error.as_ref().unwrap().code),
            (1, ErrorCode::Unavailable)
        );
        assert!(store.due_retries("acc", 999).unwrap().is_empty());
        assert_eq!(store.due_retries("acc", 1_000).unwrap().len(), 1);
        store.mark_failed(item.id, &err, None).unwrap();
        let item = store.item(item.id).unwrap().unwrap();
        assert_eq!((item.failures, item.retry_at), (2, None));
        assert!(store.due_retries("acc", i64::MAX).unwrap().is_empty());

        let sugg = [Suggestion {
            contact_id: "c".into(),
            contact_name: "C".into(),
            why: "w".into(),
        }];
        let waiting = store
            .record_needs_filing("acc", &found("/in/c.pdf", 1, 1), &sugg)
            .unwrap();
        assert_eq!(waiting.suggestions, sugg);
        assert_eq!(
            store
                .in_state("acc", InboxState::NeedsFiling)
                .unwrap()
                .len(),
            1
        );
        store.forget_account("acc").unwrap();
        assert!(store.recent("acc", 10).unwrap().is_empty());
    }
}
