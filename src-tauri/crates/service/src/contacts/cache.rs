//! The local cache: contacts, attachment metadata and downloaded files, per account, in SQLite
//! (WAL). The window paints from here at once and a background refresh replaces the rows.
//!
//! Typing-speed search does not run here: [`super::ContactIndex`] is built from
//! [`Store::all_contacts`] and answers from memory.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

use attache_core::normalize::fold;
use attache_core::{Attachment, Contact};

use crate::StoreError;

/// Bumped whenever the schema below changes; older caches are rebuilt (it is only a cache).
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = r#"
CREATE TABLE contacts (
    account   TEXT NOT NULL,
    id        TEXT NOT NULL,
    data      TEXT NOT NULL,
    email_key TEXT NOT NULL,
    PRIMARY KEY (account, id)
) WITHOUT ROWID;
CREATE INDEX contacts_by_email ON contacts (account, email_key);
CREATE TABLE attachments (
    account    TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    id         TEXT NOT NULL,
    position   INTEGER NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (account, contact_id, id)
) WITHOUT ROWID;
CREATE TABLE downloads (
    account       TEXT NOT NULL,
    attachment_id TEXT NOT NULL,
    variant       TEXT NOT NULL,
    path          TEXT NOT NULL,
    size          INTEGER NOT NULL,
    fetched_at    INTEGER NOT NULL,
    PRIMARY KEY (account, attachment_id, variant)
) WITHOUT ROWID;
CREATE TABLE refreshed (
    account TEXT NOT NULL,
    scope   TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (account, scope)
) WITHOUT ROWID;
"#;

/// Which local copy of an attachment a download row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadVariant {
    File,
    Preview,
}

impl DownloadVariant {
    fn as_str(self) -> &'static str {
        match self {
            DownloadVariant::File => "file",
            DownloadVariant::Preview => "preview",
        }
    }
}

pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version != SCHEMA_VERSION {
            // A cache: drop whatever an older build left and start clean.
            conn.execute_batch(
                "DROP TABLE IF EXISTS contacts; DROP TABLE IF EXISTS contacts_fts;
                 DROP TABLE IF EXISTS attachments; DROP TABLE IF EXISTS downloads;
                 DROP TABLE IF EXISTS refreshed;",
            )?;
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the account's cached contacts with `contacts` in one transaction.
    pub fn replace_contacts(&self, account: &str, contacts: &[Contact]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM contacts WHERE account = ?1", [account])?;
        {
            let mut put = tx.prepare(
                "INSERT OR REPLACE INTO contacts (account, id, data, email_key)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for c in contacts {
                put.execute(params![
                    account,
                    c.id,
                    serde_json::to_string(c)?,
                    fold(c.email.as_deref().unwrap_or("")),
                ])?;
            }
        }
        stamp(&tx, account, "contacts")?;
        tx.commit()?;
        Ok(())
    }

    pub fn contact(&self, account: &str, id: &str) -> Result<Option<Contact>, StoreError> {
        let conn = self.conn();
        let data: Option<String> = conn
            .query_row(
                "SELECT data FROM contacts WHERE account = ?1 AND id = ?2",
                params![account, id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
    }

    /// Contacts whose e-mail is exactly `email` (case-insensitive).
    pub fn contacts_by_email(
        &self,
        account: &str,
        email: &str,
    ) -> Result<Vec<Contact>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT data FROM contacts WHERE account = ?1 AND email_key = ?2")?;
        let rows = stmt.query_map(params![account, fold(email)], |r| r.get::<_, String>(0))?;
        decode_all(rows)
    }

    /// When the account's contacts were last refreshed (seconds since the epoch).
    pub fn refreshed_at(&self, account: &str, scope: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT at FROM refreshed WHERE account = ?1 AND scope = ?2",
                params![account, scope],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every cached contact of the account (the search index is built from these).
    pub fn all_contacts(&self, account: &str) -> Result<Vec<Contact>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT data FROM contacts WHERE account = ?1")?;
        let rows = stmt.query_map([account], |r| r.get::<_, String>(0))?;
        decode_all(rows)
    }

    /// Deletes everything cached for an account (sign-out). Downloaded files are removed by the
    /// caller, which knows where they live.
    pub fn forget_account(&self, account: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for table in ["contacts", "attachments", "downloads", "refreshed"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE account = ?1"),
                [account],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Replaces one contact's cached attachments, keeping the CRM's order.
    pub fn replace_attachments(
        &self,
        account: &str,
        contact_id: &str,
        attachments: &[Attachment],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM attachments WHERE account = ?1 AND contact_id = ?2",
            params![account, contact_id],
        )?;
        {
            let mut put = tx.prepare(
                "INSERT OR REPLACE INTO attachments (account, contact_id, id, position, data)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (i, a) in attachments.iter().enumerate() {
                put.execute(params![
                    account,
                    contact_id,
                    a.id,
                    i as i64,
                    serde_json::to_string(a)?
                ])?;
            }
        }
        stamp(&tx, account, &format!("attachments:{contact_id}"))?;
        tx.commit()?;
        Ok(())
    }

    pub fn attachments(
        &self,
        account: &str,
        contact_id: &str,
    ) -> Result<Vec<Attachment>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT data FROM attachments WHERE account = ?1 AND contact_id = ?2 ORDER BY position",
        )?;
        let rows = stmt.query_map(params![account, contact_id], |r| r.get::<_, String>(0))?;
        decode_all(rows)
    }

    pub fn attachment(
        &self,
        account: &str,
        contact_id: &str,
        id: &str,
    ) -> Result<Option<Attachment>, StoreError> {
        let conn = self.conn();
        let data: Option<String> = conn
            .query_row(
                "SELECT data FROM attachments WHERE account = ?1 AND contact_id = ?2 AND id = ?3",
                params![account, contact_id, id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
    }

    /// The contact a cached attachment belongs to (a webhook names only the attachment).
    pub fn contact_of_attachment(
        &self,
        account: &str,
        attachment_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT contact_id FROM attachments WHERE account = ?1 AND id = ?2",
                params![account, attachment_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records a completed download so the next request is served from disk.
    pub fn record_download(
        &self,
        account: &str,
        attachment_id: &str,
        variant: DownloadVariant,
        path: &Path,
        size: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO downloads (account, attachment_id, variant, path, size, fetched_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                account,
                attachment_id,
                variant.as_str(),
                path.to_string_lossy(),
                size as i64,
                now()
            ],
        )?;
        Ok(())
    }

    /// The local copy recorded for this attachment, if it is still on disk with its size.
    pub fn download(
        &self,
        account: &str,
        attachment_id: &str,
        variant: DownloadVariant,
    ) -> Result<Option<(PathBuf, u64)>, StoreError> {
        let row: Option<(String, i64)> = self
            .conn()
            .query_row(
                "SELECT path, size FROM downloads
                 WHERE account = ?1 AND attachment_id = ?2 AND variant = ?3",
                params![account, attachment_id, variant.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(path, size)| {
            let path = PathBuf::from(path);
            let on_disk = std::fs::metadata(&path).map(|m| m.len()).ok()?;
            (on_disk == size as u64).then_some((path, size as u64))
        }))
    }

    /// Sizes learnt from downloads, for attachments whose CRM does not report one.
    pub fn known_size(
        &self,
        account: &str,
        attachment_id: &str,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self
            .download(account, attachment_id, DownloadVariant::File)?
            .map(|(_, size)| size))
    }
}

fn stamp(conn: &Connection, account: &str, scope: &str) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT OR REPLACE INTO refreshed (account, scope, at) VALUES (?1, ?2, ?3)",
        params![account, scope, now()],
    )?;
    Ok(())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn decode_all<T: serde::de::DeserializeOwned>(
    rows: impl Iterator<Item = rusqlite::Result<String>>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        out.push(serde_json::from_str(&row?)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use attache_core::AttachmentKind;

    fn contact(id: &str, first: &str, last: &str, email: &str, phone: &str) -> Contact {
        Contact {
            id: id.into(),
            display_name: format!("{first} {last}"),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: Some(email.into()),
            phone: Some(phone.into()),
            company: None,
            address: None,
            created_at: None,
        }
    }

    fn sample() -> Store {
        let store = Store::open_in_memory().unwrap();
        store
            .replace_contacts(
                "demo",
                &[
                    contact(
                        "1",
                        "Ana",
                        "Silva",
                        "ana.silva@example.com",
                        "+1 (207) 555-0142",
                    ),
                    contact(
                        "2",
                        "José",
                        "Álvarez",
                        "jalvarez@example.org",
                        "207-555-0199",
                    ),
                    contact("3", "Anton", "Berg", "anton@berg.example", "(415) 555-2671"),
                ],
            )
            .unwrap();
        store
    }

    fn ids(store: &Store, account: &str) -> Vec<String> {
        let mut ids: Vec<String> = store
            .all_contacts(account)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn contacts_round_trip_and_accounts_are_separate() {
        let store = sample();
        assert_eq!(ids(&store, "demo"), ["1", "2", "3"]);
        assert!(ids(&store, "other").is_empty());
        assert_eq!(
            store.contact("demo", "2").unwrap().unwrap().display_name,
            "José Álvarez"
        );
        assert_eq!(
            store
                .contacts_by_email("demo", "ANA.SILVA@example.com")
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn refresh_replaces_rather_than_accumulates() {
        let store = sample();
        store
            .replace_contacts("demo", &[contact("9", "Zed", "Ng", "z@n.example", "1")])
            .unwrap();
        assert_eq!(ids(&store, "demo"), ["9"]);
        assert!(store
            .contacts_by_email("demo", "ana.silva@example.com")
            .unwrap()
            .is_empty());
        assert!(store.refreshed_at("demo", "contacts").unwrap().is_some());
    }

    #[test]
    fn attachments_keep_order_and_downloads_must_exist_on_disk() {
        let store = sample();
        let att = |id: &str| Attachment {
            id: id.into(),
            contact_id: "1".into(),
            file_name: format!("{id}.pdf"),
            mime_type: "application/pdf".into(),
            kind: AttachmentKind::Document,
            extension: "pdf".into(),
            size_bytes: None,
            file_url: None,
            preview_url: None,
            created_at: None,
        };
        store
            .replace_attachments("demo", "1", &[att("b"), att("a")])
            .unwrap();
        let got: Vec<_> = store
            .attachments("demo", "1")
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(got, ["b", "a"]);
        assert!(store.attachment("demo", "1", "a").unwrap().is_some());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pdf");
        std::fs::write(&path, b"12345").unwrap();
        store
            .record_download("demo", "a", DownloadVariant::File, &path, 5)
            .unwrap();
        assert_eq!(store.known_size("demo", "a").unwrap(), Some(5));
        std::fs::write(&path, b"123").unwrap(); // changed on disk: no longer trusted
        assert_eq!(
            store.download("demo", "a", DownloadVariant::File).unwrap(),
            None
        );
    }

    #[test]
    fn lookup_by_email_is_case_insensitive() {
        let store = sample();
        let found = store
            .contacts_by_email("demo", "ANA.SILVA@example.com")
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "1");
    }
}
