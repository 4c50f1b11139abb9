use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use tokio::sync::mpsc;

use super::*;
use crate::alertmanager::{Sender, Target};

fn alert(ends_at: &str) -> Alert {
    Alert {
        labels: BTreeMap::from([
            (
                "alertname".to_string(),
                "FaultlineVolumeReadOnly".to_string(),
            ),
            ("pvc".to_string(), "db-2".to_string()),
        ]),
        annotations: BTreeMap::from([("summary".to_string(), "read-only".to_string())]),
        starts_at: "2026-02-19T03:04:07.000Z".into(),
        ends_at: ends_at.into(),
        generator_url: String::new(),
    }
}

/// A receiver that hands each request's headers and body to the test.
async fn receiver() -> (String, mpsc::Receiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = mpsc::channel(8);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body)).await;
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

#[tokio::test]
async fn a_signed_webhook_carries_alertmanagers_payload() {
    let (url, mut requests) = receiver().await;
    let secret = b"shared-secret".to_vec();
    let sender = Sender::start(Target::Webhook(Webhook {
        url,
        auth: WebhookAuth::Hmac(secret.clone()),
    }));
    sender.queue([alert("2999-01-01T00:00:00.000Z")]);
    let (headers, body) = tokio::time::timeout(Duration::from_secs(20), requests.recv())
        .await
        .unwrap()
        .unwrap();
    let signed = headers[SIGNATURE_HEADER].to_str().unwrap();
    assert_eq!(
        signed,
        signature(&secret, &body),
        "the receiver can verify it"
    );
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["version"], "4");
    assert_eq!(payload["status"], "firing");
    assert_eq!(payload["commonLabels"]["pvc"], "db-2");
    assert_eq!(
        payload["alerts"][0]["labels"]["alertname"],
        "FaultlineVolumeReadOnly"
    );
    assert_eq!(payload["alerts"][0]["status"], "firing");
    assert_eq!(
        payload["alerts"][0]["fingerprint"].as_str().unwrap().len(),
        16
    );
}

#[tokio::test]
async fn a_token_webhook_and_a_resolved_alert() {
    let (url, mut requests) = receiver().await;
    let sender = Sender::start(Target::Webhook(Webhook {
        url,
        auth: WebhookAuth::Bearer("t0ken".into()),
    }));
    sender.queue([alert("2001-01-01T00:00:00.000Z")]);
    let (headers, body) = tokio::time::timeout(Duration::from_secs(20), requests.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(headers["authorization"], "Bearer t0ken");
    assert!(headers.get(SIGNATURE_HEADER).is_none());
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["status"], "resolved");
    assert!(!format!("{:?}", WebhookAuth::Bearer("t0ken".into())).contains("t0ken"));
}
