//! A webhook: the alerts in Alertmanager's webhook payload (version 4),
//! `POST`ed to a URL, so any receiver of Alertmanager notifications can
//! take faultline's directly.
//!
//! Authentication, when configured: a bearer token
//! (`Authorization: Bearer …`), or an HMAC-SHA256 of the body with a
//! shared secret in `X-Faultline-Signature: sha256=<hex>` (verify it by
//! computing the same over the raw body). Secrets come from a file or an
//! environment variable and are never printed.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::alertmanager::Alert;

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Faultline-Signature";

/// How a webhook proves the request is faultline's.
#[derive(Clone)]
pub enum WebhookAuth {
    None,
    Bearer(String),
    Hmac(Vec<u8>),
}

impl std::fmt::Debug for WebhookAuth {
    /// Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WebhookAuth::None => "None",
            WebhookAuth::Bearer(_) => "Bearer(***)",
            WebhookAuth::Hmac(_) => "Hmac(***)",
        })
    }
}

/// A webhook target.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub url: String,
    pub auth: WebhookAuth,
}

#[derive(Serialize)]
struct Payload<'a> {
    version: &'static str,
    #[serde(rename = "groupKey")]
    group_key: String,
    #[serde(rename = "truncatedAlerts")]
    truncated_alerts: u32,
    status: &'static str,
    receiver: &'static str,
    #[serde(rename = "groupLabels")]
    group_labels: BTreeMap<String, String>,
    #[serde(rename = "commonLabels")]
    common_labels: BTreeMap<String, String>,
    #[serde(rename = "commonAnnotations")]
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'static str,
    alerts: Vec<PayloadAlert<'a>>,
}

#[derive(Serialize)]
struct PayloadAlert<'a> {
    status: &'static str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: &'a str,
    #[serde(rename = "endsAt")]
    ends_at: &'a str,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

/// Whether an alert has ended by `now` (its `endsAt` is not in the
/// future): resolved.
fn resolved(alert: &Alert, now: &str) -> bool {
    alert.ends_at.as_str() <= now
}

/// A stable fingerprint of an alert's labels (hex of their SHA-256).
fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    use sha2::Digest;
    let mut hash = Sha256::new();
    for (k, v) in labels {
        hash.update(k.as_bytes());
        hash.update([0xff]);
        hash.update(v.as_bytes());
        hash.update([0xff]);
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The labels every alert of `alerts` shares.
fn common(maps: impl Iterator<Item = BTreeMap<String, String>>) -> BTreeMap<String, String> {
    maps.reduce(|mut shared, next| {
        shared.retain(|k, v| next.get(k) == Some(v));
        shared
    })
    .unwrap_or_default()
}

/// The webhook payload for `alerts`, as of `now` (RFC 3339).
pub fn payload(alerts: &[Alert], now: &str) -> Vec<u8> {
    let alerts_out: Vec<PayloadAlert> = alerts
        .iter()
        .map(|alert| PayloadAlert {
            status: if resolved(alert, now) {
                "resolved"
            } else {
                "firing"
            },
            labels: &alert.labels,
            annotations: &alert.annotations,
            starts_at: &alert.starts_at,
            ends_at: &alert.ends_at,
            generator_url: &alert.generator_url,
            fingerprint: fingerprint(&alert.labels),
        })
        .collect();
    let status = if alerts_out.iter().any(|a| a.status == "firing") {
        "firing"
    } else {
        "resolved"
    };
    let common_labels = common(alerts.iter().map(|a| a.labels.clone()));
    let payload = Payload {
        version: "4",
        group_key: format!("faultline:{}", fingerprint(&common_labels)),
        truncated_alerts: 0,
        status,
        receiver: "faultline",
        group_labels: BTreeMap::new(),
        common_annotations: common(alerts.iter().map(|a| a.annotations.clone())),
        common_labels,
        external_url: "",
        alerts: alerts_out,
    };
    serde_json::to_vec(&payload).expect("a payload serialises")
}

/// `sha256=<hex>` of `body` keyed with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

impl Webhook {
    /// The request delivering `alerts`.
    pub(crate) fn request(
        &self,
        client: &reqwest::Client,
        alerts: &[Alert],
    ) -> reqwest::RequestBuilder {
        let now = jiff::Timestamp::now();
        let body = payload(alerts, &format!("{now:.3}"));
        let request = client
            .post(&self.url)
            .header("Content-Type", "application/json");
        let request = match &self.auth {
            WebhookAuth::None => request,
            WebhookAuth::Bearer(token) => request.bearer_auth(token),
            WebhookAuth::Hmac(secret) => request.header(SIGNATURE_HEADER, signature(secret, &body)),
        };
        request.body(body)
    }
}

#[cfg(test)]
mod tests;
