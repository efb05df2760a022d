//! Signed webhooks, as Wix sends them (spec §2b): when an attachment is created or deleted
//! through the Wix API, the sandbox POSTs a compact JWT (RS256, body `text/plain`) to the
//! registered callback URL (`--webhook-url`, or `PUT /_admin/webhooks {"callbackUrl"}`). The
//! `data` claim is the envelope as a JSON string, whose `data` and `identity` are JSON strings
//! again. The signing key is a fixed demo key; its public half is served at
//! `GET /_admin/webhooks/public-key` (what an app's dashboard shows).

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::api::Shared;

const PRIVATE_KEY: &str = include_str!("webhook-demo-key.pem");
/// The public key that verifies the sandbox's webhooks.
pub const PUBLIC_KEY: &str = include_str!("webhook-demo-key.pub.pem");
/// How long a webhook token is valid (Wix's is UNCONFIRMED; its sample spans days).
const TOKEN_LIFE_SECS: u64 = 3600;
const DELIVERY_ATTEMPTS: u32 = 3;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The JWT for one domain event, nested the way Wix nests it.
pub fn sign(event_type: &str, instance_id: &str, site_id: &str, domain_event: &Value) -> String {
    let iat = now_secs();
    sign_claims(&json!({
        "data": envelope(event_type, instance_id, site_id, domain_event).to_string(),
        "iat": iat,
        "exp": iat + TOKEN_LIFE_SECS,
    }))
}

/// The envelope Wix puts in the `data` claim (its `data` and `identity` are JSON strings).
pub fn envelope(event_type: &str, instance_id: &str, site_id: &str, domain_event: &Value) -> Value {
    json!({
        "eventType": event_type,
        "instanceId": instance_id,
        "data": domain_event.to_string(),
        "identity": json!({"identityType": "APP", "appId": "attache-sandbox"}).to_string(),
        "accountInfo": {"siteId": site_id},
    })
}

/// Any claims, signed RS256 with the demo key (tests forge expired or malformed events).
pub fn sign_claims(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("attache-demo".into());
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).expect("the demo key is valid");
    jsonwebtoken::encode(&header, claims, &key).expect("RS256 signing")
}

/// `attachment_created` / `attachment_deleted` for `attachment_id`, delivered in the
/// background (a slow receiver never holds up the API call that caused it).
pub fn announce(state: &Shared, slug: &str, attachment_id: &str, entity: Option<Value>) {
    let Some(url) = state.webhook_url() else {
        return;
    };
    let event_type = format!("wix.contacts.v4.attachment_{slug}");
    let mut event = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "entityFqdn": "wix.contacts.v4.attachment",
        "slug": slug,
        "entityId": attachment_id,
        "eventTime": crate::site::now_iso(),
        "triggeredByAnonymizeRequest": false,
        "originatedFrom": null,
    });
    match entity {
        Some(entity) => event["createdEvent"] = json!({ "entity": entity }),
        None => event["deletedEvent"] = json!({}),
    }
    let instance = state
        .config
        .app
        .as_ref()
        .map(|a| a.instance_id.clone())
        .unwrap_or_else(|| state.config.site_id.clone());
    let jwt = sign(&event_type, &instance, &state.config.site_id, &event);
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        for attempt in 1..=DELIVERY_ATTEMPTS {
            let sent = http
                .post(&url)
                .header("content-type", "text/plain")
                .timeout(Duration::from_secs(10))
                .body(jwt.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::info!("webhook to {url}: HTTP {}", r.status()),
                Err(e) => tracing::info!("webhook to {url}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    });
}
