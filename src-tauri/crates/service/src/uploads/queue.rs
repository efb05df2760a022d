//! The durable upload queue: one row per job in SQLite (WAL, `synchronous=FULL`: a job's state
//! must survive power loss, not just a crash). Unlike the cache this file is never rebuilt;
//! the schema only migrates forward.
//!
//! A job is keyed by account + contact + content hash: queuing the same bytes for the same
//! contact again returns the existing job (or says it is already attached), so neither a
//! double drop nor a retry can attach twice.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use attache_core::upload::{InspectedFile, JobState, UploadJob};
use attache_core::{ErrorCode, ErrorPayload};

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE upload_jobs (
    id            INTEGER PRIMARY KEY,
    account       TEXT NOT NULL,
    contact_id    TEXT NOT NULL,
    contact_name  TEXT NOT NULL,
    path          TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    mime_type     TEXT NOT NULL,
    size          INTEGER NOT NULL,
    modified_ns   INTEGER NOT NULL,
    content_hash  TEXT NOT NULL,
    state         TEXT NOT NULL,
    -- JSON array: ids of same-named attachments the contact had before the first send. What is
    -- new beyond these (and not claimed by another job) is this job's attachment.
    baseline      TEXT,
    attachment_id TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    forced        INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX upload_jobs_by_key ON upload_jobs (account, contact_id, content_hash);
CREATE INDEX upload_jobs_by_state ON upload_jobs (account, state);
CREATE INDEX upload_jobs_by_update ON upload_jobs (account, updated_at);
"#,
    r#"
-- Where the bytes go (Wix: the generated upload URL), kept so a resend after a crash reuses
-- the same single-use target.
ALTER TABLE upload_jobs ADD COLUMN target TEXT;
"#,
    r#"
-- Filed as a document record linked to the contact (EspoCRM's Documents) instead of an
-- attachment of the contact.
ALTER TABLE upload_jobs ADD COLUMN as_document INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- Resumable (tus) uploads to the Wix Media Manager in progress: the file as it was checked,
-- and the session (upload URL, token, tus location) as JSON, so a later run resumes from the
-- server's offset. Keyed by account + content + path + folder.
CREATE TABLE resumable_uploads (
    account      TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    path         TEXT NOT NULL,
    folder       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    modified_ns  INTEGER NOT NULL,
    session      TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (account, content_hash, path, folder)
);
"#,
    r#"
-- Cleared from the tray by the user ("Clear finished"): hidden there, but kept, because the
-- inbox follows its files' jobs by id and "already attached" is known from them.
ALTER TABLE upload_jobs ADD COLUMN cleared INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- A job whose content is pinned sends exactly what was queued or fails: the inbox takes a
-- file written again as a new file of its own, so its job must not follow the change too.
ALTER TABLE upload_jobs ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
"#,
];

/// Which resumable upload: the same bytes from the same place to the same folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumableKey {
    pub account: String,
    pub content_hash: String,
    pub path: String,
    /// "" for the media root.
    pub folder: String,
}

pub struct UploadQueue {
    conn: Mutex<Connection>,
}

/// What queuing a file did.
#[derive(Debug, Clone)]
pub enum Enqueued {
    New(UploadJob),
    /// The same content for the same contact is already waiting or in flight.
    AlreadyQueued(UploadJob),
    /// The same content was already attached to this contact (queue it with `force` to add it
    /// again anyway).
    AlreadyAttached(UploadJob),
}

impl Enqueued {
    pub fn job(&self) -> &UploadJob {
        match self {
            Enqueued::New(j) | Enqueued::AlreadyQueued(j) | Enqueued::AlreadyAttached(j) => j,
        }
    }
}

/// Milliseconds since the epoch: the clock `updated_at` is written in.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long a job cleared from the tray is kept for the inbox to find (it looks within
/// seconds while running, and at its next start otherwise).
const CLEARED_KEPT_MS: i64 = 30 * 24 * 3600 * 1000;

/// A job with work left to do (the other states are final until the user retries).
const UNFINISHED: &str = "state IN ('queued', 'sending', 'verifying')";

const COLUMNS: &str = "id, account, contact_id, contact_name, path, file_name, mime_type, size, modified_ns, \
     content_hash, state, baseline, attachment_id, attempts, error_code, error_message, forced, created_at, updated_at, target, as_document";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<UploadJob> {
    let state: String = r.get(10)?;
    let baseline: Option<String> = r.get(11)?;
    let code: Option<String> = r.get(14)?;
    let message: Option<String> = r.get(15)?;
    Ok(UploadJob {
        id: r.get(0)?,
        account: r.get(1)?,
        contact_id: r.get(2)?,
        contact_name: r.get(3)?,
        path: r.get::<_, String>(4)?.into(),
        file_name: r.get(5)?,
        mime_type: r.get(6)?,
        size: r.get::<_, i64>(7)? as u64,
        modified_ns: r.get(8)?,
        content_hash: r.get(9)?,
        state: JobState::parse(&state),
        baseline: baseline.and_then(|b| serde_json::from_str(&b).ok()),
        attachment_id: r.get(12)?,
        attempts: r.get::<_, i64>(13)? as u32,
        error: match (code, message) {
            (Some(c), Some(m)) => Some(ErrorPayload::new(
                serde_json::from_value(serde_json::Value::String(c)).unwrap_or(ErrorCode::Internal),
                m,
            )),
            _ => None,
        },
        forced: r.get::<_, i64>(16)? != 0,
        created_at: r.get(17)?,
        updated_at: r.get(18)?,
        target: r.get(19)?,
        as_document: r.get::<_, i64>(20)? != 0,
    })
}

impl UploadQueue {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::init(Connection::open(path)?)
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Mutex::new(crate::durable::prepare(conn, MIGRATIONS)?),
        })
    }

    /// The saved session of a resumable upload, if the file is still as it was then.
    pub fn resumable(
        &self,
        key: &ResumableKey,
        size: u64,
        modified_ns: i64,
    ) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT session FROM resumable_uploads WHERE account = ?1 AND content_hash = ?2
                 AND path = ?3 AND folder = ?4 AND size = ?5 AND modified_ns = ?6",
                params![
                    key.account,
                    key.content_hash,
                    key.path,
                    key.folder,
                    size as i64,
                    modified_ns
                ],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records (or replaces) a resumable upload's session.
    pub fn save_resumable(
        &self,
        key: &ResumableKey,
        size: u64,
        modified_ns: i64,
        session: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO resumable_uploads
             (account, content_hash, path, folder, size, modified_ns, session, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                key.account,
                key.content_hash,
                key.path,
                key.folder,
                size as i64,
                modified_ns,
                session,
                now_ms()
            ],
        )?;
        Ok(())
    }

    pub fn forget_resumable(&self, key: &ResumableKey) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM resumable_uploads WHERE account = ?1 AND content_hash = ?2 AND path = ?3
             AND folder = ?4",
            params![key.account, key.content_hash, key.path, key.folder],
        )?;
        Ok(())
    }

    /// Resumable uploads still in progress for `account`.
    pub fn resumable_count(&self, account: &str) -> Result<usize, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM resumable_uploads WHERE account = ?1",
            params![account],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `file` for `contact`, unless the same content is already queued or attached there
    /// (then that job is returned). `force` adds it even when already attached.
    pub fn enqueue(
        &self,
        account: &str,
        contact_id: &str,
        contact_name: &str,
        file: &InspectedFile,
        force: bool,
    ) -> Result<Enqueued, StoreError> {
        let mut conn = self.conn();
        // IMMEDIATE: two processes queuing the same file serialize here, so only one inserts.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let done = Self::enqueue_in(&tx, account, contact_id, contact_name, file, force)?;
        tx.commit()?;
        Ok(done)
    }

    /// Many files for one contact in one transaction: one disk flush for a whole drop of a
    /// thousand files instead of one each, with the same checks file by file (the same content
    /// twice in the batch is queued once).
    pub fn enqueue_all(
        &self,
        account: &str,
        contact_id: &str,
        contact_name: &str,
        files: &[InspectedFile],
        force: bool,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let done = files
            .iter()
            .map(|f| Self::enqueue_in(&tx, account, contact_id, contact_name, f, force))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(done)
    }

    /// One file's enqueue inside the caller's transaction (the caller commits).
    fn enqueue_in(
        tx: &rusqlite::Transaction<'_>,
        account: &str,
        contact_id: &str,
        contact_name: &str,
        file: &InspectedFile,
        force: bool,
    ) -> Result<Enqueued, StoreError> {
        let existing: Vec<UploadJob> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {COLUMNS} FROM upload_jobs WHERE account = ?1 AND contact_id = ?2 AND content_hash = ?3 \
                 AND state NOT IN ('cancelled') ORDER BY id DESC"
            ))?;
            let rows = stmt.query_map(
                params![account, contact_id, file.content_hash],
                job_from_row,
            )?;
            rows.collect::<Result<_, _>>()?
        };
        if let Some(live) = existing.iter().find(|j| !j.state.is_finished()) {
            return Ok(Enqueued::AlreadyQueued(live.clone()));
        }
        if !force {
            if let Some(done) = existing.iter().find(|j| j.state == JobState::Done) {
                return Ok(Enqueued::AlreadyAttached(done.clone()));
            }
            // A failed job for the same content is retried rather than doubled.
            if let Some(failed) = existing.iter().find(|j| j.state == JobState::Failed) {
                tx.execute(
                    "UPDATE upload_jobs SET state = 'queued', error_code = NULL, error_message = NULL, attempts = 0, \
                     path = ?2, file_name = ?3, updated_at = ?4 WHERE id = ?1",
                    params![failed.id, file.path.to_string_lossy(), file.file_name, now_ms()],
                )?;
                let job = tx.query_row(
                    &format!("SELECT {COLUMNS} FROM upload_jobs WHERE id = ?1"),
                    [failed.id],
                    job_from_row,
                )?;
                return Ok(Enqueued::New(job));
            }
        }
        let now = now_ms();
        tx.execute(
            "INSERT INTO upload_jobs (account, contact_id, contact_name, path, file_name, mime_type, size, modified_ns, \
             content_hash, state, forced, created_at, updated_at, as_document) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'queued', ?10, ?11, ?11, ?12)",
            params![
                account,
                contact_id,
                contact_name,
                file.path.to_string_lossy(),
                file.file_name,
                file.mime_type,
                file.size as i64,
                file.modified_ns,
                file.content_hash,
                force as i64,
                now,
                file.as_document as i64
            ],
        )?;
        let id = tx.last_insert_rowid();
        let job = tx.query_row(
            &format!("SELECT {COLUMNS} FROM upload_jobs WHERE id = ?1"),
            [id],
            job_from_row,
        )?;
        Ok(Enqueued::New(job))
    }

    pub fn job(&self, id: i64) -> Result<Option<UploadJob>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM upload_jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()?)
    }

    /// Which of `ids` are still unfinished (queued, sending or verifying); ids no longer in
    /// the queue count as finished. One range scan on the key, however many ids: waiting
    /// for a batch of thousands re-asks this each time one of them ends.
    pub fn unfinished_among(&self, ids: &HashSet<i64>) -> Result<HashSet<i64>, StoreError> {
        let (Some(low), Some(high)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(HashSet::new());
        };
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id FROM upload_jobs WHERE id BETWEEN ?1 AND ?2 AND {UNFINISHED}"
        ))?;
        let rows = stmt.query_map(params![low, high], |r| r.get::<_, i64>(0))?;
        let mut unfinished = HashSet::new();
        for id in rows {
            let id = id?;
            if ids.contains(&id) {
                unfinished.insert(id);
            }
        }
        Ok(unfinished)
    }

    /// Jobs of `account` that still have work to do, oldest first.
    pub fn pending(&self, account: &str) -> Result<Vec<UploadJob>, StoreError> {
        self.jobs_where(
            &format!("account = ?1 AND {UNFINISHED} ORDER BY id"),
            [account],
        )
    }

    /// The first `limit` unfinished jobs of `account`, oldest first: what the scheduler needs
    /// to fill its free slots, without reading every waiting job each time one finishes (a
    /// thousand queued files would make that quadratic).
    pub fn pending_first(&self, account: &str, limit: usize) -> Result<Vec<UploadJob>, StoreError> {
        self.jobs_where(
            &format!("account = ?1 AND {UNFINISHED} ORDER BY id LIMIT ?2"),
            params![account, limit as i64],
        )
    }

    /// The most recent jobs of `account`, newest first (what the upload tray lists).
    pub fn recent(&self, account: &str, limit: usize) -> Result<Vec<UploadJob>, StoreError> {
        self.jobs_where(
            "account = ?1 AND cleared = 0 ORDER BY id DESC LIMIT ?2",
            params![account, limit as i64],
        )
    }

    /// Jobs of `account` written at or after `since_ms` (what changed since the last event).
    pub fn changed_since(
        &self,
        account: &str,
        since_ms: i64,
    ) -> Result<Vec<UploadJob>, StoreError> {
        self.jobs_where(
            "account = ?1 AND updated_at >= ?2 ORDER BY id",
            params![account, since_ms],
        )
    }

    /// Whole jobs matching `filter` (what follows `WHERE`, ordering included).
    fn jobs_where(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<UploadJob>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM upload_jobs WHERE {filter}"))?;
        let rows = stmt.query_map(params, job_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many jobs of `account` wait to start.
    pub fn waiting(&self, account: &str) -> Result<u32, StoreError> {
        Ok(self.conn().query_row(
            "SELECT count(*) FROM upload_jobs WHERE account = ?1 AND state = 'queued'",
            [account],
            |r| r.get::<_, i64>(0),
        )? as u32)
    }

    /// Jobs not finished (queued, or stopped while sending or verifying).
    pub fn unfinished_count(&self, account: &str) -> Result<u32, StoreError> {
        Ok(self.conn().query_row(
            &format!("SELECT count(*) FROM upload_jobs WHERE account = ?1 AND {UNFINISHED}"),
            [account],
            |r| r.get::<_, i64>(0),
        )? as u32)
    }

    /// Records the baseline and that bytes may now reach the CRM. Written before the first byte
    /// is sent, so after a crash the job knows to look before sending again. False (nothing
    /// written, nothing to send) when the job is no longer unfinished: cancelled meanwhile.
    pub fn begin_sending(
        &self,
        id: i64,
        baseline: &[String],
        target: &str,
    ) -> Result<bool, StoreError> {
        let baseline = serde_json::to_string(baseline)?;
        let changed = self.conn().execute(
            &format!("UPDATE upload_jobs SET state = 'sending', baseline = ?2, target = ?3, attempts = attempts + 1, updated_at = ?4 \
             WHERE id = ?1 AND {UNFINISHED}"),
            params![id, baseline, target, now_ms()],
        )?;
        Ok(changed == 1)
    }

    /// The target takes no more bytes: the next attempt prepares a new one.
    pub fn drop_target(&self, id: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE upload_jobs SET target = NULL, updated_at = ?2 WHERE id = ?1",
            params![id, now_ms()],
        )?;
        Ok(())
    }

    /// The bytes were accepted; the job now looks for its attachment. Not flushed to disk
    /// before going on (like [`UploadQueue::mark_done`]): if power fails first the job comes
    /// back as `sending`, whose first step is the same look (its baseline is on disk).
    pub fn mark_verifying(&self, id: i64) -> Result<(), StoreError> {
        Self::without_flush(&self.conn(), |conn| {
            conn.execute(
                "UPDATE upload_jobs SET state = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, JobState::Verifying.as_str(), now_ms()],
            )?;
            Ok(())
        })
    }

    /// Runs `write` with `synchronous=NORMAL` (committed, durable against a crash of the
    /// process, not against power loss), then goes back to `FULL`.
    fn without_flush<T>(
        conn: &Connection,
        write: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let written = write(conn);
        conn.pragma_update(None, "synchronous", "FULL")?;
        written
    }

    /// The file changed before or while sending: the job now carries the new content.
    /// Marks a job the inbox queued: pinned to the content it was queued with (see the
    /// `pinned` column), and, when `taken_over` (its file was claimed by a machine that
    /// vanished, which may have sent it already), given an empty baseline, so its first look
    /// takes a same-named attachment of its size as that machine's upload instead of sending
    /// again. One statement: one write to disk.
    pub fn mark_inbox_job(&self, id: i64, taken_over: bool) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE upload_jobs SET pinned = 1, \
             baseline = CASE WHEN ?2 AND baseline IS NULL THEN '[]' ELSE baseline END \
             WHERE id = ?1",
            params![id, taken_over],
        )?;
        Ok(())
    }

    pub fn is_pinned(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT pinned FROM upload_jobs WHERE id = ?1", [id], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            == Some(1))
    }

    /// The file changed since it was queued: the job now carries its new content. When the
    /// content itself changed, the baseline and target of earlier attempts (made for the old
    /// content) are dropped with it.
    pub fn update_content(&self, id: i64, file: &InspectedFile) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE upload_jobs SET size = ?2, modified_ns = ?3, \
             baseline = CASE WHEN content_hash = ?4 THEN baseline ELSE NULL END, \
             target = CASE WHEN content_hash = ?4 THEN target ELSE NULL END, \
             content_hash = ?4, mime_type = ?5, updated_at = ?6 WHERE id = ?1",
            params![
                id,
                file.size as i64,
                file.modified_ns,
                file.content_hash,
                file.mime_type,
                now_ms()
            ],
        )?;
        Ok(())
    }

    pub fn mark_done(&self, id: i64, attachment_id: &str) -> Result<(), StoreError> {
        // Need not reach the disk before we go on: if power fails first, the job comes back
        // as sending/verifying, and its recorded baseline finds the attachment it made, so it
        // is marked done again, never sent twice. Only "sending" (the baseline, before the
        // first byte leaves) is flushed per upload.
        Self::without_flush(&self.conn(), |conn| {
            Self::write_done(conn, id, attachment_id)
        })
    }

    fn write_done(conn: &Connection, id: i64, attachment_id: &str) -> Result<(), StoreError> {
        // Its upload target (a URL that takes one upload: a capability) is forgotten with the
        // job's end; `secure_delete` overwrites it in the file.
        // Only a job still running ends here: one cancelled meanwhile stays cancelled (a retry
        // finds its attachment if its bytes did land).
        conn.execute(
            &format!(
                "UPDATE upload_jobs SET state = 'done', attachment_id = ?2, error_code = NULL, error_message = NULL, \
                 target = NULL, updated_at = ?3 WHERE id = ?1 AND {UNFINISHED}"
            ),
            params![id, attachment_id, now_ms()],
        )?;
        Ok(())
    }

    /// Ends a job as failed. Its upload URL goes with it: a retry (by the user, or the inbox a
    /// minute later) prepares a new one, and its kept baseline still finds an attachment an
    /// earlier attempt made, the list having caught up by then.
    pub fn mark_failed(&self, id: i64, error: &ErrorPayload) -> Result<(), StoreError> {
        let code = serde_json::to_value(error.code)?
            .as_str()
            .unwrap_or("INTERNAL")
            .to_owned();
        // A job cancelled while its task was ending stays cancelled, not failed.
        self.conn().execute(
            &format!(
                "UPDATE upload_jobs SET state = 'failed', error_code = ?2, error_message = ?3, target = NULL, \
                 updated_at = ?4 WHERE id = ?1 AND {UNFINISHED}"
            ),
            params![id, code, error.message, now_ms()],
        )?;
        Ok(())
    }

    /// Puts a failed or cancelled job back in the queue. Its baseline is kept: if an earlier
    /// attempt did land, the retry finds it instead of sending again.
    pub fn retry(&self, id: i64) -> Result<bool, StoreError> {
        let changed = self.conn().execute(
            "UPDATE upload_jobs SET state = 'queued', attempts = 0, error_code = NULL, error_message = NULL, updated_at = ?2, \
             cleared = 0 WHERE id = ?1 AND state IN ('failed', 'cancelled')",
            params![id, now_ms()],
        )?;
        Ok(changed == 1)
    }

    /// Cancels a job that is not finished; returns whether it was.
    pub fn cancel(&self, id: i64) -> Result<bool, StoreError> {
        let changed = self.conn().execute(
            "UPDATE upload_jobs SET state = 'cancelled', target = NULL, updated_at = ?2 WHERE id = ?1 AND state IN ('queued', 'sending', 'verifying', 'failed')",
            params![id, now_ms()],
        )?;
        Ok(changed == 1)
    }

    /// Attachment ids jobs of this contact other than `except_job` already own: never mistaken
    /// for a new one.
    pub fn claimed_attachments(
        &self,
        account: &str,
        contact_id: &str,
        except_job: i64,
    ) -> Result<HashSet<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT attachment_id FROM upload_jobs WHERE account = ?1 AND contact_id = ?2 AND id != ?3 \
             AND attachment_id IS NOT NULL",
        )?;
        let rows = stmt.query_map(params![account, contact_id, except_job], |r| {
            r.get::<_, String>(0)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets finished jobs (done, cancelled) of `account`; the tray's "Clear".
    /// The tray's "Clear finished": done and cancelled jobs leave the tray. Their rows stay
    /// (an inbox file still waiting to see its job end must find it done, not missing, or its
    /// retry would attach it twice); cleared jobs that ended more than [`CLEARED_KEPT_MS`] ago go.
    pub fn clear_finished(&self, account: &str) -> Result<usize, StoreError> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM upload_jobs WHERE account = ?1 AND cleared = 1 AND updated_at < ?2",
            params![account, now_ms() - CLEARED_KEPT_MS],
        )?;
        Ok(conn.execute(
            "UPDATE upload_jobs SET cleared = 1 \
             WHERE account = ?1 AND cleared = 0 AND state IN ('done', 'cancelled')",
            [account],
        )?)
    }

    /// Drops every job of an account (on sign-out).
    pub fn forget_account(&self, account: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM upload_jobs WHERE account = ?1", [account])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(hash: &str) -> InspectedFile {
        InspectedFile {
            path: format!("/tmp/{hash}.pdf").into(),
            file_name: format!("{hash}.pdf"),
            mime_type: "application/pdf".into(),
            size: 10,
            modified_ns: 1,
            content_hash: hash.into(),
            as_document: false,
        }
    }

    #[test]
    fn clearing_the_tray_hides_finished_jobs_but_keeps_them_for_the_inbox() {
        let q = UploadQueue::open_in_memory().unwrap();
        let done = q
            .enqueue("acct", "c1", "Ann", &file("d1"), false)
            .unwrap()
            .job()
            .id;
        let cancelled = q
            .enqueue("acct", "c1", "Ann", &file("d2"), false)
            .unwrap()
            .job()
            .id;
        let waiting = q
            .enqueue("acct", "c1", "Ann", &file("d3"), false)
            .unwrap()
            .job()
            .id;
        q.begin_sending(done, &[], "url").unwrap();
        q.mark_done(done, "att-1").unwrap();
        assert!(q.cancel(cancelled).unwrap());
        assert_eq!(q.clear_finished("acct").unwrap(), 2);
        let shown: Vec<i64> = q.recent("acct", 10).unwrap().iter().map(|j| j.id).collect();
        assert_eq!(shown, vec![waiting]);
        // The inbox, following the job by id, still finds it done with its attachment.
        let job = q.job(done).unwrap().unwrap();
        assert_eq!(
            (job.state, job.attachment_id.as_deref()),
            (JobState::Done, Some("att-1"))
        );
        // And the same content is still known as attached.
        assert!(matches!(
            q.enqueue("acct", "c1", "Ann", &file("d1"), false).unwrap(),
            Enqueued::AlreadyAttached(ref j) if j.id == done
        ));
        // A cleared job retried is back in the tray.
        assert!(q.retry(cancelled).unwrap());
        let shown: Vec<i64> = q.recent("acct", 10).unwrap().iter().map(|j| j.id).collect();
        assert_eq!(shown, vec![waiting, cancelled]);
    }

    #[test]
    fn a_job_cancelled_while_its_task_ends_stays_cancelled() {
        // Cancel writes first and stops the task after: an outcome the task wrote in between
        // (its send refused as cancelled, or its bytes found) must not overwrite it.
        let q = UploadQueue::open_in_memory().unwrap();
        let failing = q
            .enqueue("acct", "c1", "Ann", &file("f1"), false)
            .unwrap()
            .job()
            .id;
        let landing = q
            .enqueue("acct", "c1", "Ann", &file("f2"), false)
            .unwrap()
            .job()
            .id;
        for id in [failing, landing] {
            q.begin_sending(id, &[], "url").unwrap();
            assert!(q.cancel(id).unwrap());
        }
        q.mark_failed(
            failing,
            &ErrorPayload::new(ErrorCode::InvalidInput, "f1.pdf was cancelled"),
        )
        .unwrap();
        q.mark_done(landing, "att-9").unwrap();
        for id in [failing, landing] {
            let job = q.job(id).unwrap().unwrap();
            assert_eq!(
                (job.state, job.error, job.attachment_id),
                (JobState::Cancelled, None, None)
            );
        }
        // A retry puts it back; it can then end either way.
        assert!(q.retry(landing).unwrap());
        q.mark_done(landing, "att-9").unwrap();
        assert_eq!(q.job(landing).unwrap().unwrap().state, JobState::Done);
    }

    #[test]
    fn same_content_for_the_same_contact_is_one_job() {
        let q = UploadQueue::open_in_memory().unwrap();
        let batch = q
            .enqueue_all(
                "acct",
                "c9",
                "Zed",
                &[file("b1"), file("b2"), file("b1")],
                false,
            )
            .unwrap();
        assert!(matches!(batch[0], Enqueued::New(_)) && matches!(batch[1], Enqueued::New(_)));
        assert!(
            matches!(batch[2], Enqueued::AlreadyQueued(_)),
            "the same content once per batch"
        );
        let first = q.enqueue("acct", "c1", "Ann", &file("h1"), false).unwrap();
        assert!(matches!(first, Enqueued::New(_)));
        assert!(matches!(
            q.enqueue("acct", "c1", "Ann", &file("h1"), false).unwrap(),
            Enqueued::AlreadyQueued(_)
        ));
        assert!(matches!(
            q.enqueue("acct", "c2", "Bob", &file("h1"), false).unwrap(),
            Enqueued::New(_)
        ));
        let id = first.job().id;
        q.begin_sending(id, &["old".into()], "url-1").unwrap();
        q.mark_done(id, "att-1").unwrap();
        let again = q.enqueue("acct", "c1", "Ann", &file("h1"), false).unwrap();
        assert!(matches!(again, Enqueued::AlreadyAttached(ref j) if j.id == id));
        assert!(
            matches!(
                q.enqueue("acct", "c1", "Ann", &file("h1"), true).unwrap(),
                Enqueued::New(_)
            ),
            "forced"
        );
        assert_eq!(
            q.claimed_attachments("acct", "c1", 0).unwrap(),
            HashSet::from(["att-1".to_string()])
        );
        assert!(
            q.claimed_attachments("acct", "c1", id).unwrap().is_empty(),
            "a job's own attachment is not someone else's"
        );
    }

    #[test]
    fn state_survives_reopening_and_failed_jobs_are_requeued_not_doubled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite3");
        let id = {
            let q = UploadQueue::open(&path).unwrap();
            let id = q
                .enqueue("acct", "c1", "Ann", &file("h2"), false)
                .unwrap()
                .job()
                .id;
            q.begin_sending(id, &[], "url-2").unwrap();
            id
        };
        let q = UploadQueue::open(&path).unwrap();
        let job = q.job(id).unwrap().unwrap();
        assert_eq!(job.state, JobState::Sending);
        assert_eq!(job.baseline, Some(vec![]));
        assert_eq!(job.target.as_deref(), Some("url-2"));
        assert_eq!(q.pending("acct").unwrap().len(), 1);
        q.mark_failed(id, &ErrorPayload::new(ErrorCode::Unavailable, "down"))
            .unwrap();
        let failed = q.job(id).unwrap().unwrap();
        assert_eq!(failed.error.unwrap().code, ErrorCode::Unavailable);
        let again = q.enqueue("acct", "c1", "Ann", &file("h2"), false).unwrap();
        assert!(matches!(again, Enqueued::New(ref j) if j.id == id && j.state == JobState::Queued));
        assert!(q.cancel(id).unwrap());
        assert!(q.retry(id).unwrap());
        assert_eq!(
            q.job(id).unwrap().unwrap().baseline,
            Some(vec![]),
            "baseline kept across retry"
        );
    }

    #[test]
    fn every_state_after_sending_is_recorded_and_the_unfinished_are_told_apart() {
        let q = UploadQueue::open_in_memory().unwrap();
        let ids: Vec<i64> = q
            .enqueue_all(
                "acct",
                "c1",
                "Ann",
                &[file("u1"), file("u2"), file("u3"), file("u4")],
                false,
            )
            .unwrap()
            .iter()
            .map(|e| e.job().id)
            .collect();
        // Another account's job in the middle of the range is not one of ours.
        let other = q
            .enqueue("acct2", "c1", "Ann", &file("u5"), false)
            .unwrap()
            .job()
            .id;
        assert!(q.begin_sending(ids[0], &[], "t0").unwrap());
        q.mark_verifying(ids[0]).unwrap();
        assert_eq!(q.job(ids[0]).unwrap().unwrap().state, JobState::Verifying);
        q.mark_done(ids[0], "a0").unwrap();
        q.mark_failed(ids[1], &ErrorPayload::new(ErrorCode::Unavailable, "down"))
            .unwrap();
        q.cancel(ids[2]).unwrap();
        assert!(
            !q.begin_sending(ids[2], &[], "t2").unwrap(),
            "a cancelled job is not sent"
        );
        assert_eq!(q.job(ids[2]).unwrap().unwrap().state, JobState::Cancelled);
        let asked: HashSet<i64> = ids.iter().copied().collect();
        assert_eq!(q.unfinished_among(&asked).unwrap(), HashSet::from([ids[3]]));
        q.mark_done(ids[3], "a3").unwrap();
        assert!(q.unfinished_among(&asked).unwrap().is_empty());
        assert_eq!(
            q.unfinished_among(&HashSet::from([other])).unwrap(),
            HashSet::from([other])
        );
        assert!(q.unfinished_among(&HashSet::new()).unwrap().is_empty());
        assert!(
            q.unfinished_among(&HashSet::from([9_999]))
                .unwrap()
                .is_empty(),
            "gone is finished"
        );
    }
}
