//! A CRM in memory whose calls can be scripted to stop the world at any one of them: the upload
//! engine's crash windows tested one by one, deterministically (no processes, sockets or
//! sleeps to race).
//!
//! It models what the engine relies on in a real CRM: upload targets are single use (a second
//! send to one is refused as gone), an accepted send adds exactly one attachment, listings show
//! every attachment at once. A call can be made to stop for ever *before* its effect or *after*
//! it with its answer lost; the test then drops the engine's runtime, which is a crash as far as
//! the durable queue can tell, and starts again on the same CRM.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use attache_core::upload::{verified_body, UploadRules, UploadSource};
use attache_core::{
    Attachment, AttachmentKind, BackendError, Capabilities, Contact, CrmBackend, ErrorCode,
    SendError,
};
use futures::StreamExt;

/// The calls the engine makes, as the script counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    ListAttachments,
    RecentAttachments,
    Prepare,
    Send,
}

/// Where in a call the world stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Before the call has any effect.
    Before,
    /// After its effect (an accepted send has added its attachment), its answer never given.
    AfterEffect,
}

#[derive(Clone)]
pub struct ScriptedCrm {
    state: Arc<Mutex<State>>,
    stopped: Arc<tokio::sync::watch::Sender<Option<(usize, Op, Moment)>>>,
}

#[derive(Default)]
struct State {
    contacts: Vec<Contact>,
    attachments: HashMap<String, Vec<Attachment>>,
    /// Target → contact and whether a send has used it.
    targets: HashMap<String, (String, bool)>,
    next_id: u64,
    /// Every call so far, in order.
    calls: Vec<Op>,
    stop_at: Option<(usize, Moment)>,
    /// Lists leave sizes out (as Wix's do); `file_size` tells them, or fails while
    /// `size_failures` lasts.
    hide_sizes: bool,
    size_failures: usize,
}

impl ScriptedCrm {
    /// A CRM holding these contacts, with no attachments.
    pub fn with_contacts(names: &[&str]) -> Self {
        let contacts = names
            .iter()
            .enumerate()
            .map(|(i, name)| contact(&format!("c{}", i + 1), name))
            .collect();
        Self {
            state: Arc::new(Mutex::new(State {
                contacts,
                ..State::default()
            })),
            stopped: Arc::new(tokio::sync::watch::channel(None).0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contact(&self, name: &str) -> Contact {
        let state = self.state();
        state
            .contacts
            .iter()
            .find(|c| c.display_name == name)
            .cloned()
            .expect(name)
    }

    /// The world stops at call number `call` (counted from 0 over every call since the CRM was
    /// made), at `moment`. Cleared by [`ScriptedCrm::go_on`].
    pub fn stop_at(&self, call: usize, moment: Moment) {
        self.state().stop_at = Some((call, moment));
        self.stopped.send_replace(None);
    }

    /// No more stops: calls (new ones; a stopped call stays stopped) answer as usual.
    pub fn go_on(&self) {
        self.state().stop_at = None;
        self.stopped.send_replace(None);
    }

    /// Resolves once a call has stopped, with which call it was.
    pub async fn stopped(&self) -> (usize, Op, Moment) {
        let mut rx = self.stopped.subscribe();
        let seen = rx.wait_for(Option::is_some).await.expect("the CRM lives");
        seen.expect("checked")
    }

    pub fn calls(&self) -> Vec<Op> {
        self.state().calls.clone()
    }

    /// What the CRM holds for a contact, in order.
    pub fn attachments_of(&self, contact_id: &str) -> Vec<Attachment> {
        self.state()
            .attachments
            .get(contact_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Lists without sizes from now on, as Wix's do: the engine must ask `file_size`.
    pub fn hide_sizes(&self) {
        self.state().hide_sizes = true;
    }

    /// The next `n` size reads fail (a HEAD answered 503).
    pub fn fail_size_reads(&self, n: usize) {
        self.state().size_failures = n;
    }

    fn listed(&self, contact_id: &str) -> Vec<Attachment> {
        let hide = self.state().hide_sizes;
        let mut listed = self.attachments_of(contact_id);
        if hide {
            for a in &mut listed {
                a.size_bytes = None;
            }
        }
        listed
    }

    /// Someone else attaching a file (from the CRM's own site, another machine).
    pub fn attach_elsewhere(&self, contact_id: &str, file_name: &str, size: u64) -> String {
        let mut state = self.state();
        add_attachment(&mut state, contact_id, file_name, size)
    }

    /// Counts the call and stops the world there if the script says so (before its effect).
    /// Returns the call's number, for [`ScriptedCrm::after_effect`].
    async fn enter(&self, op: Op) -> usize {
        let (n, stop) = {
            let mut state = self.state();
            state.calls.push(op);
            let n = state.calls.len() - 1;
            (n, state.stop_at == Some((n, Moment::Before)))
        };
        if stop {
            self.halt(n, op, Moment::Before).await;
        }
        n
    }

    async fn after_effect(&self, n: usize, op: Op) {
        if self.state().stop_at == Some((n, Moment::AfterEffect)) {
            self.halt(n, op, Moment::AfterEffect).await;
        }
    }

    async fn halt(&self, n: usize, op: Op, moment: Moment) {
        self.stopped.send_replace(Some((n, op, moment)));
        std::future::pending::<()>().await;
    }
}

fn contact(id: &str, name: &str) -> Contact {
    let (first, last) = name.split_once(' ').unwrap_or((name, ""));
    Contact {
        id: id.into(),
        display_name: name.into(),
        first_name: Some(first.into()),
        last_name: Some(last.into()).filter(|l: &String| !l.is_empty()),
        email: None,
        phone: None,
        company: None,
        address: None,
        created_at: None,
    }
}

fn add_attachment(state: &mut State, contact_id: &str, file_name: &str, size: u64) -> String {
    state.next_id += 1;
    let id = format!("att-{}", state.next_id);
    state
        .attachments
        .entry(contact_id.to_owned())
        .or_default()
        .push(Attachment {
            id: id.clone(),
            contact_id: contact_id.into(),
            file_name: file_name.into(),
            mime_type: "application/pdf".into(),
            kind: AttachmentKind::Document,
            extension: Attachment::extension_of(file_name),
            size_bytes: Some(size),
            file_url: None,
            preview_url: None,
            created_at: None,
        });
    id
}

impl UploadRules for ScriptedCrm {
    fn crm_name(&self) -> &str {
        "the scripted CRM"
    }
    fn accepts_mime(&self, _mime: &str) -> bool {
        true
    }
    fn max_upload_bytes(&self) -> u64 {
        1 << 30
    }
}

#[async_trait]
impl CrmBackend for ScriptedCrm {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    async fn list_contacts(&self) -> Result<Vec<Contact>, BackendError> {
        Ok(self.state().contacts.clone())
    }

    async fn list_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, BackendError> {
        let n = self.enter(Op::ListAttachments).await;
        let listed = self.listed(contact_id);
        self.after_effect(n, Op::ListAttachments).await;
        Ok(listed)
    }

    async fn recent_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, BackendError> {
        let n = self.enter(Op::RecentAttachments).await;
        let listed = self.listed(contact_id);
        self.after_effect(n, Op::RecentAttachments).await;
        Ok(listed)
    }

    async fn file_size(&self, attachment: &Attachment) -> Result<Option<u64>, BackendError> {
        let mut state = self.state();
        if state.size_failures > 0 {
            state.size_failures -= 1;
            return Err(BackendError::new(
                ErrorCode::Unavailable,
                "HEAD answered 503",
            ));
        }
        Ok(state
            .attachments
            .values()
            .flatten()
            .find(|a| a.id == attachment.id)
            .and_then(|a| a.size_bytes))
    }

    async fn download_file(&self, _: &Attachment, _: &Path) -> Result<u64, BackendError> {
        Err(BackendError::new(ErrorCode::Unsupported, "not scripted"))
    }

    async fn download_preview(&self, _: &Attachment, _: &Path) -> Result<u64, BackendError> {
        Err(BackendError::new(ErrorCode::Unsupported, "not scripted"))
    }

    async fn prepare_upload(
        &self,
        contact_id: &str,
        _source: &UploadSource,
    ) -> Result<String, BackendError> {
        let n = self.enter(Op::Prepare).await;
        let target = format!("target-{n}");
        self.state()
            .targets
            .insert(target.clone(), (contact_id.to_owned(), false));
        self.after_effect(n, Op::Prepare).await;
        Ok(target)
    }

    async fn send_upload(&self, target: &str, source: &UploadSource) -> Result<(), SendError> {
        let n = self.enter(Op::Send).await;
        let contact_id = match self.state().targets.get(target) {
            None => {
                return Err(SendError::Failed(BackendError::new(
                    ErrorCode::NotFound,
                    "no such target",
                )))
            }
            Some((_, true)) => {
                return Err(SendError::TargetGone(BackendError::new(
                    ErrorCode::InvalidInput,
                    "this upload target was already used",
                )))
            }
            Some((contact, false)) => contact.clone(),
        };
        // The bytes go through the verified body like any CRM's, so a file that changed fails.
        let mut received = 0u64;
        let mut body = std::pin::pin!(verified_body(source));
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| {
                SendError::Failed(BackendError::new(ErrorCode::InvalidInput, e.to_string()))
            })?;
            received += piece.len() as u64;
        }
        {
            let mut state = self.state();
            state
                .targets
                .insert(target.to_owned(), (contact_id.clone(), true));
            add_attachment(&mut state, &contact_id, &source.file_name, received);
        }
        self.after_effect(n, Op::Send).await;
        Ok(())
    }
}
