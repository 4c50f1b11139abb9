//! faultline's sinks: where incidents go.
//!
//! [`alertmanager`] sends each incident to Prometheus Alertmanager (API v2)
//! as one alert, named for what broke, labelled with where
//! (`namespace`, `pvc`, `pod`, `node`, `cnpg_cluster`), annotated with the
//! story and the fix. [`webhook`] sends the same alerts to any HTTP
//! endpoint in Alertmanager's webhook payload, signed or with a token.

pub mod alertmanager;
pub mod webhook;
