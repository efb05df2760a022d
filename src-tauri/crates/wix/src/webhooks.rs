//! Wix webhooks for contact attachments (spec §2b): the POST body is a compact JWT signed RS256
//! with the app's public key; its `data` claim is a JSON *string* holding an envelope whose own
//! `data` and `identity` are JSON strings again; the innermost object is the domain event
//! (`createdEvent.entity` / `deletedEvent`). Verified on the raw body, rejected with a reason
//! when the signature, the expiry or the shape is wrong, and deduplicated by event id (Wix
//! retries deliveries).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::wire::ContactAttachment;

pub const ATTACHMENT_CREATED: &str = "wix.contacts.v4.attachment_created";
pub const ATTACHMENT_DELETED: &str = "wix.contacts.v4.attachment_deleted";
/// Event ids remembered for deduplication (the oldest are forgotten first).
const REMEMBERED_EVENTS: usize = 10_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("the webhook's signature does not match the app's public key")]
    BadSignature,
    #[error("the webhook's token has expired")]
    Expired,
    /// Issued in the future or not valid yet (`iat` / `nbf` beyond the clock's leeway).
    #[error("the webhook's token is not valid yet")]
    NotYetValid,
    /// Signed for another installation of the app (another site) than this account's.
    #[error("the webhook is for app instance {got}, not this account's")]
    OtherInstance { got: String },
    #[error("the webhook body is not a well-formed Wix event: {0}")]
    Malformed(String),
    #[error("the public key is not an RSA key in PEM form: {0}")]
    BadKey(String),
}

/// What a verified webhook says.
#[derive(Debug, Clone, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum WebhookEvent {
    AttachmentCreated {
        event_id: String,
        attachment_id: String,
        /// Present only if Wix includes it (UNCONFIRMED: the documented entity has none).
        contact_id: Option<String>,
        attachment: Option<Box<ContactAttachment>>,
        instance_id: Option<String>,
        event_time: Option<String>,
    },
    AttachmentDeleted {
        event_id: String,
        attachment_id: String,
        contact_id: Option<String>,
        instance_id: Option<String>,
        event_time: Option<String>,
    },
    /// Any other event the app was subscribed to: verified, otherwise ignored.
    Other {
        event_id: String,
        event_type: String,
    },
}

impl WebhookEvent {
    pub fn event_id(&self) -> &str {
        match self {
            WebhookEvent::AttachmentCreated { event_id, .. }
            | WebhookEvent::AttachmentDeleted { event_id, .. }
            | WebhookEvent::Other { event_id, .. } => event_id,
        }
    }
}

/// A verified event, or the same event delivered again.
#[derive(Debug, Clone)]
pub enum Delivery {
    New(WebhookEvent),
    Duplicate(String),
}

#[derive(Deserialize)]
struct Claims {
    data: String,
    #[serde(default)]
    iat: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    event_type: String,
    #[serde(default)]
    instance_id: Option<String>,
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainEvent {
    id: String,
    #[serde(default)]
    entity_id: Option<String>,
    #[serde(default)]
    event_time: Option<String>,
    #[serde(default)]
    created_event: Option<serde_json::Value>,
    #[serde(default)]
    deleted_event: Option<serde_json::Value>,
}

pub struct WebhookVerifier {
    key: DecodingKey,
    /// The app instance (the installation on this account's site) deliveries must be for, when
    /// the account knows it (app logins do; API-key logins do not).
    instance: Option<String>,
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
}

/// Clock difference tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 60;

impl WebhookVerifier {
    /// `public_key`: the app's key from its dashboard, PEM (SPKI) or the bare base64 body, as
    /// the SDK accepts both.
    pub fn new(public_key: &str) -> Result<Self, WebhookError> {
        let pem = if public_key.contains("-----BEGIN") {
            public_key.trim().to_owned()
        } else {
            let body: String = public_key.split_whitespace().collect();
            format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
        };
        let key = DecodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| WebhookError::BadKey(e.to_string()))?;
        Ok(Self {
            key,
            instance: None,
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
        })
    }

    /// Accepts only deliveries for this app instance (`None`: any).
    pub fn for_instance(mut self, instance: Option<String>) -> Self {
        self.instance = instance.filter(|i| !i.is_empty());
        self
    }

    /// Verifies and decodes one delivery (the raw POST body), and remembers its event id.
    pub fn receive(&self, body: &str) -> Result<Delivery, WebhookError> {
        let event = self.verify(body)?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let id = event.event_id().to_owned();
        if !seen.0.insert(id.clone()) {
            return Ok(Delivery::Duplicate(id));
        }
        seen.1.push_back(id);
        if seen.1.len() > REMEMBERED_EVENTS {
            if let Some(old) = seen.1.pop_front() {
                seen.0.remove(&old);
            }
        }
        Ok(Delivery::New(event))
    }

    /// Verifies and decodes without deduplicating.
    pub fn verify(&self, body: &str) -> Result<WebhookEvent, WebhookError> {
        let mut validation = Validation::new(Algorithm::RS256);
        // Wix's claims are data/iat/exp; issuer and audience are checked only on request.
        validation.required_spec_claims = ["exp".to_string()].into_iter().collect();
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let token = jsonwebtoken::decode::<Claims>(body.trim(), &self.key, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => WebhookError::BadSignature,
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => WebhookError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => WebhookError::NotYetValid,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    WebhookError::Malformed("not signed RS256".into())
                }
                _ => WebhookError::Malformed(e.to_string()),
            },
        )?;
        // jsonwebtoken checks `nbf` but not `iat`: a token issued in the future is forged or
        // from a badly wrong clock.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if token
            .claims
            .iat
            .is_some_and(|iat| iat > now + LEEWAY_SECS as i64)
        {
            return Err(WebhookError::NotYetValid);
        }
        let envelope: Envelope = serde_json::from_str(&token.claims.data)
            .map_err(|e| WebhookError::Malformed(format!("envelope: {e}")))?;
        // An envelope without an instance is taken (what Wix always sends is UNCONFIRMED); one
        // naming another instance is not ours.
        if let (Some(ours), Some(got)) = (&self.instance, &envelope.instance_id) {
            if ours != got {
                return Err(WebhookError::OtherInstance { got: got.clone() });
            }
        }
        let event: DomainEvent = serde_json::from_str(&envelope.data)
            .map_err(|e| WebhookError::Malformed(format!("event: {e}")))?;
        let contact_of = |entity: &serde_json::Value| {
            entity
                .get("contactId")
                .or_else(|| entity.pointer("/metadata/contactId"))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Ok(match envelope.event_type.as_str() {
            ATTACHMENT_CREATED => {
                let entity = event
                    .created_event
                    .as_ref()
                    .and_then(|c| c.get("entity").or_else(|| c.get("entityAsJson")))
                    .cloned()
                    .ok_or_else(|| {
                        WebhookError::Malformed("createdEvent.entity is missing".into())
                    })?;
                // Some senders stringify the entity once more.
                let entity = match entity {
                    serde_json::Value::String(s) => serde_json::from_str(&s)
                        .map_err(|e| WebhookError::Malformed(format!("entity: {e}")))?,
                    v => v,
                };
                let attachment: Option<Box<ContactAttachment>> =
                    serde_json::from_value(entity.clone()).ok();
                let attachment_id = event
                    .entity_id
                    .clone()
                    .or_else(|| attachment.as_ref().map(|a| a.id.clone()))
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| WebhookError::Malformed("no attachment id".into()))?;
                WebhookEvent::AttachmentCreated {
                    event_id: event.id,
                    attachment_id,
                    contact_id: contact_of(&entity),
                    attachment,
                    instance_id: envelope.instance_id,
                    event_time: event.event_time,
                }
            }
            ATTACHMENT_DELETED => {
                let deleted = event.deleted_event.unwrap_or_default();
                let entity = deleted.get("deletedEntity").cloned().unwrap_or_default();
                let attachment_id = event
                    .entity_id
                    .clone()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| WebhookError::Malformed("no entityId".into()))?;
                WebhookEvent::AttachmentDeleted {
                    event_id: event.id,
                    attachment_id,
                    contact_id: contact_of(&entity),
                    instance_id: envelope.instance_id,
                    event_time: event.event_time,
                }
            }
            other => WebhookEvent::Other {
                event_id: event.id,
                event_type: other.to_owned(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attache_sandbox::webhooks::{envelope, sign, sign_claims, PUBLIC_KEY};
    use serde_json::json;

    fn created(event_id: &str) -> serde_json::Value {
        json!({
            "id": event_id, "entityFqdn": "wix.contacts.v4.attachment", "slug": "created",
            "entityId": "a-1", "eventTime": "2026-12-02T10:00:00Z",
            "createdEvent": {"entity": {"id": "a-1", "fileName": "deed.pdf",
                "mimeType": "application/pdf", "attachmentType": "OTHER",
                "document": {"id": "d", "url": "https://x/y"}}}
        })
    }

    #[test]
    fn a_signed_created_event_decodes_through_every_nested_string() {
        let v = WebhookVerifier::new(PUBLIC_KEY).unwrap();
        let jwt = sign(ATTACHMENT_CREATED, "inst-1", "site-1", &created("e-1"));
        match v.receive(&jwt).unwrap() {
            Delivery::New(WebhookEvent::AttachmentCreated {
                event_id,
                attachment_id,
                attachment,
                instance_id,
                contact_id,
                ..
            }) => {
                assert_eq!(event_id, "e-1");
                assert_eq!(attachment_id, "a-1");
                assert_eq!(attachment.unwrap().file_name, "deed.pdf");
                assert_eq!(instance_id.as_deref(), Some("inst-1"));
                assert_eq!(contact_id, None, "the documented entity names no contact");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(v.receive(&jwt).unwrap(), Delivery::Duplicate(id) if id == "e-1"),
            "a redelivery is recognised"
        );
        let deleted =
            json!({"id": "e-2", "slug": "deleted", "entityId": "a-1", "deletedEvent": {}});
        let jwt = sign(ATTACHMENT_DELETED, "inst-1", "site-1", &deleted);
        assert!(matches!(
            v.receive(&jwt).unwrap(),
            Delivery::New(WebhookEvent::AttachmentDeleted { attachment_id, .. }) if attachment_id == "a-1"
        ));
    }

    #[test]
    fn forged_expired_and_malformed_deliveries_are_refused() {
        // The key as the dashboard's bare base64 works too.
        let bare: String = PUBLIC_KEY
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let v = WebhookVerifier::new(&bare).unwrap();
        let jwt = sign(ATTACHMENT_CREATED, "i", "s", &created("e-9"));
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        // Another payload under the same signature.
        parts[1] = sign(ATTACHMENT_CREATED, "i", "s", &created("e-10"))
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        assert_eq!(
            v.verify(&parts.join(".")).unwrap_err(),
            WebhookError::BadSignature
        );

        let data = envelope(ATTACHMENT_CREATED, "i", "s", &created("e-11")).to_string();
        let old = sign_claims(&json!({"data": data, "iat": 1_000, "exp": 2_000}));
        assert_eq!(v.verify(&old).unwrap_err(), WebhookError::Expired);

        assert!(matches!(
            v.verify("not a jwt").unwrap_err(),
            WebhookError::Malformed(_)
        ));
        let far = 4_000_000_000u64;
        let not_json = sign_claims(&json!({"data": "{nope", "iat": 1, "exp": far}));
        assert!(matches!(
            v.verify(&not_json).unwrap_err(),
            WebhookError::Malformed(_)
        ));
        let no_entity = envelope(
            ATTACHMENT_CREATED,
            "i",
            "s",
            &json!({"id": "e", "createdEvent": {}}),
        );
        let jwt = sign_claims(&json!({"data": no_entity.to_string(), "iat": 1, "exp": far}));
        assert!(matches!(
            v.verify(&jwt).unwrap_err(),
            WebhookError::Malformed(_)
        ));
        let no_exp = sign_claims(&json!({"data": data, "iat": 1}));
        assert!(
            v.verify(&no_exp).is_err(),
            "a token without expiry is refused"
        );

        assert!(matches!(
            WebhookVerifier::new("garbage"),
            Err(WebhookError::BadKey(_))
        ));
    }

    #[test]
    fn tokens_from_the_future_or_for_another_instance_are_refused() {
        let v = WebhookVerifier::new(PUBLIC_KEY)
            .unwrap()
            .for_instance(Some("inst-ours".into()));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let data = envelope(ATTACHMENT_CREATED, "inst-ours", "s", &created("e-20")).to_string();
        let ok = sign_claims(&json!({"data": data, "iat": now, "exp": now + 300}));
        assert!(v.verify(&ok).is_ok());
        let ahead = sign_claims(&json!({"data": data, "iat": now + 3600, "exp": now + 7200}));
        assert_eq!(v.verify(&ahead).unwrap_err(), WebhookError::NotYetValid);
        let later =
            sign_claims(&json!({"data": data, "iat": now, "nbf": now + 3600, "exp": now + 7200}));
        assert_eq!(v.verify(&later).unwrap_err(), WebhookError::NotYetValid);
        // Within the clock leeway is fine.
        let skewed = sign_claims(&json!({"data": data, "iat": now + 30, "exp": now + 300}));
        assert!(v.verify(&skewed).is_ok());

        let theirs = sign(ATTACHMENT_CREATED, "inst-theirs", "s", &created("e-21"));
        assert_eq!(
            v.verify(&theirs).unwrap_err(),
            WebhookError::OtherInstance {
                got: "inst-theirs".into()
            }
        );
        // Without an expected instance (an API-key account), any instance is taken.
        let any = WebhookVerifier::new(PUBLIC_KEY).unwrap();
        assert!(any.verify(&theirs).is_ok());
    }

    // Fuzzing by property (cargo-fuzz needs a nightly toolchain this machine cannot fetch):
    // whatever arrives at the webhook URL gets an answer, never a panic.
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any text, and text shaped like a JWT (three dot-separated base64url parts), is refused
        /// as malformed or badly signed.
        #[test]
        fn any_body_is_refused_plainly(
            body in "\\PC{0,300}|[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,90}"
        ) {
            let v = WebhookVerifier::new(PUBLIC_KEY).unwrap();
            proptest::prop_assert!(v.verify(&body).is_err());
        }

        /// Correctly signed tokens whose content is anything at all: decoded or refused as
        /// malformed, never a panic, never another error.
        #[test]
        fn any_signed_content_is_decoded_or_refused_as_malformed(
            data in "\\PC{0,200}",
            event_type in "wix\\.contacts\\.v4\\.attachment_(created|deleted)|\\PC{0,20}",
            entity in proptest::option::of("\\PC{0,80}"),
            entity_id in proptest::option::of("[a-z0-9-]{0,12}"),
        ) {
            let v = WebhookVerifier::new(PUBLIC_KEY).unwrap();
            let exp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 600;
            // The envelope itself arbitrary...
            let raw = sign_claims(&json!({"data": data, "exp": exp}));
            let outcome = v.verify(&raw);
            proptest::prop_assert!(
                matches!(outcome, Err(WebhookError::Malformed(_))) || outcome.is_ok(),
                "{:?}", outcome
            );
            // ...and a well-formed envelope around an arbitrary event.
            let event = json!({
                "id": "e", "entityId": entity_id,
                "createdEvent": {"entity": entity},
                "deletedEvent": {"deletedEntity": entity},
            });
            let jwt = sign(&event_type, "inst", "site", &event);
            let outcome = v.verify(&jwt);
            proptest::prop_assert!(
                matches!(outcome, Err(WebhookError::Malformed(_))) || outcome.is_ok(),
                "{:?}", outcome
            );
        }
    }
}
