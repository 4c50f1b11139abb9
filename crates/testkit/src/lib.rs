//! Test servers for faultline's test suites, where no real server can run
//! here: a Loki ([`loki`]) and a Kubernetes API server ([`kubernetes`]).
//! Each follows the project's documented HTTP API — paths, query
//! parameters, bodies, status codes and error bodies — and can be switched
//! into the failure modes the real one shows.

pub mod kubernetes;
pub mod loki;

/// Serves `app` on loopback port `port` (0: a free one); returns its base
/// URL.
async fn serve(app: axum::Router, port: u16) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Whether `labels` satisfy a LogQL stream selector such as
/// `{a="x", b=~"re", c!="y", d!~"re"}` (a missing label is empty).
pub fn selector_matches(selector: &str, labels: &dyn Fn(&str) -> Option<String>) -> bool {
    let inner = selector
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}');
    inner.split(',').filter(|m| !m.trim().is_empty()).all(|m| {
        let (name, op, value) = ["=~", "!~", "!=", "="]
            .iter()
            .find_map(|op| m.split_once(op).map(|(n, v)| (n, *op, v)))
            .expect("a matcher with an operator");
        let value = value.trim().trim_matches('"');
        let have = labels(name.trim()).unwrap_or_default();
        let regex = || {
            regex::Regex::new(&format!("^(?:{value})$"))
                .expect("a valid regex")
                .is_match(&have)
        };
        match op {
            "=~" => regex(),
            "!~" => !regex(),
            "!=" => have != value,
            _ => have == value,
        }
    })
}
