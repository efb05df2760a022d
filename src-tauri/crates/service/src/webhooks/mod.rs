//! Live refresh from Wix webhooks: `attache webhooks listen` receives `attachment_created` /
//! `attachment_deleted` deliveries, verifies them (RS256 with the app's public key), drops
//! redeliveries, and refreshes the contact they concern, so the cache shows the change without
//! waiting for the next poll. Without a receiver the app refreshes by polling, as before.

use std::net::SocketAddr;
use std::sync::Arc;

use attache_wix::webhooks::{Delivery, WebhookError, WebhookEvent, WebhookVerifier};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::contacts::Contacts;
use crate::uploads::Uploads;
use crate::ServiceError;

/// What became of one delivery (printed as a JSON line by the CLI).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOutcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<WebhookEvent>,
    /// The contact refreshed, when it could be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    /// Its attachments after the refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The webhooks room of a Wix account: which contact a verified event concerns, and the refresh
/// it calls for. Cheap to clone; the receiver holds one.
#[derive(Clone)]
pub struct Webhooks {
    contacts: Arc<Contacts>,
    uploads: Arc<Uploads>,
    /// The app instance this account's deliveries come from, when the login knows it.
    instance: Option<String>,
}

/// A delivery is a small JWT: anything larger is refused unread.
const MAX_BODY: usize = 256 << 10;
/// How long one delivery may take to arrive whole (a sender trickling bytes is cut off).
const DELIVERY_TIME: std::time::Duration = std::time::Duration::from_secs(10);
/// Deliveries handled at once; more wait their turn.
const DELIVERIES_AT_ONCE: usize = 32;
/// Connections open at once; more are closed at once (a sender opening connections and never
/// finishing its headers cannot hold more than this).
const CONNECTIONS_AT_ONCE: usize = 64;
/// How long a sender may take to send a request's headers.
const HEADER_TIME: std::time::Duration = std::time::Duration::from_secs(5);
/// How long one connection may stay open, keep-alive included (Wix sends one delivery each).
const CONNECTION_TIME: std::time::Duration = std::time::Duration::from_secs(60);

impl Webhooks {
    pub fn new(contacts: Arc<Contacts>, uploads: Arc<Uploads>) -> Self {
        Self {
            contacts,
            uploads,
            instance: None,
        }
    }

    /// Deliveries must be for this app instance (an app login's).
    pub fn for_instance(mut self, instance: Option<String>) -> Self {
        self.instance = instance;
        self
    }

    /// The contact an event concerns: named in it (if Wix ever does), the owner of the cached
    /// attachment, or the contact of our own upload of that file.
    pub fn contact_for_event(&self, event: &WebhookEvent) -> Result<Option<String>, ServiceError> {
        let (attachment_id, named, file_name) = match event {
            WebhookEvent::AttachmentCreated {
                attachment_id,
                contact_id,
                attachment,
                ..
            } => (
                attachment_id,
                contact_id,
                attachment.as_ref().map(|a| a.file_name.clone()),
            ),
            WebhookEvent::AttachmentDeleted {
                attachment_id,
                contact_id,
                ..
            } => (attachment_id, contact_id, None),
            WebhookEvent::Other { .. } => return Ok(None),
        };
        if let Some(c) = named {
            return Ok(Some(c.clone()));
        }
        if let Some(c) = self.contacts.contact_of_attachment(attachment_id)? {
            return Ok(Some(c));
        }
        let jobs = self.uploads.recent_jobs(200)?;
        let ours = jobs.iter().find(|j| {
            j.attachment_id.as_deref() == Some(attachment_id.as_str())
                || (file_name.as_deref() == Some(j.file_name.as_str()) && j.attachment_id.is_none())
        });
        Ok(ours.map(|j| j.contact_id.clone()))
    }

    /// Acts on one verified event: refreshes its contact's attachments.
    pub async fn apply(&self, event: WebhookEvent) -> WebhookOutcome {
        let mut outcome = WebhookOutcome {
            event: Some(event.clone()),
            contact_id: None,
            attachments: None,
            duplicate: None,
            rejected: None,
            error: None,
        };
        match self.contact_for_event(&event) {
            Ok(Some(contact)) => match self.contacts.refresh_attachments(&contact).await {
                Ok(list) => {
                    outcome.attachments = Some(list.len());
                    outcome.contact_id = Some(contact);
                }
                Err(e) => {
                    outcome.contact_id = Some(contact);
                    outcome.error = Some(e.to_string());
                }
            },
            Ok(None) => {}
            Err(e) => outcome.error = Some(e.to_string()),
        }
        outcome
    }
}

struct Receiver {
    webhooks: Webhooks,
    verifier: WebhookVerifier,
    report: Box<dyn Fn(&WebhookOutcome) + Send + Sync>,
}

/// Serves the webhook receiver on `addr` (every path accepts POST) until the task is dropped
/// or aborted; returns the bound address and the serving task.
pub async fn listen(
    webhooks: Webhooks,
    addr: SocketAddr,
    verifier: WebhookVerifier,
    report: impl Fn(&WebhookOutcome) + Send + Sync + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServiceError> {
    let verifier = match &webhooks.instance {
        Some(instance) => verifier.for_instance(Some(instance.clone())),
        None => verifier,
    };
    let receiver = Arc::new(Receiver {
        webhooks,
        verifier,
        report: Box::new(report),
    });
    let router = axum::Router::new()
        .fallback(axum::routing::post(deliver))
        .with_state(receiver)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            DELIVERY_TIME,
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            DELIVERIES_AT_ONCE,
        ));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(serve(listener, router));
    Ok((bound, task))
}

/// Accepts connections, at most [`CONNECTIONS_AT_ONCE`], each with [`HEADER_TIME`] to send its
/// headers and [`CONNECTION_TIME`] in all: what the body limit and the delivery timeout cannot
/// bound, a sender that opens many connections and trickles its headers.
async fn serve(listener: tokio::net::TcpListener, router: axum::Router) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let open = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_AT_ONCE));
    let mut refusing = false;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait a moment rather than spin.
                tracing::warn!("webhook receiver: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            // Dropped, so closed. Said once per flood: a line per refused connection would
            // let a flood of connections flood the log too.
            if !refusing {
                tracing::warn!("webhook receiver: {CONNECTIONS_AT_ONCE} connections open; more are closed until some end");
                refusing = true;
            }
            continue;
        };
        refusing = false;
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIME)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIME, connection).await {
                Ok(Err(e)) => tracing::debug!("webhook connection: {e}"),
                Ok(Ok(())) | Err(_) => {}
            }
        });
    }
}

async fn deliver(State(r): State<Arc<Receiver>>, body: Bytes) -> impl IntoResponse {
    let body = String::from_utf8_lossy(&body);
    match r.verifier.receive(&body) {
        Ok(Delivery::New(event)) => {
            // Answer at once (Wix expects a quick 200) and refresh in the background.
            let r = r.clone();
            tokio::spawn(async move {
                let outcome = r.webhooks.apply(event).await;
                (r.report)(&outcome);
            });
            StatusCode::OK
        }
        Ok(Delivery::Duplicate(id)) => {
            (r.report)(&WebhookOutcome {
                event: None,
                contact_id: None,
                attachments: None,
                duplicate: Some(id),
                rejected: None,
                error: None,
            });
            StatusCode::OK
        }
        Err(e) => {
            (r.report)(&WebhookOutcome {
                event: None,
                contact_id: None,
                attachments: None,
                duplicate: None,
                rejected: Some(e.to_string()),
                error: None,
            });
            match e {
                WebhookError::BadSignature
                | WebhookError::Expired
                | WebhookError::NotYetValid
                | WebhookError::OtherInstance { .. } => StatusCode::UNAUTHORIZED,
                _ => StatusCode::BAD_REQUEST,
            }
        }
    }
}
