//! A Kubernetes API server that answers what faultline asks as the
//! Kubernetes API documents it:
//!
//! * `GET /api/v1/{pods,persistentvolumeclaims,persistentvolumes,nodes}`
//!   and `/apis/events.k8s.io/v1/events` (also under
//!   `namespaces/{ns}/`): lists with `metadata.resourceVersion`,
//!   `labelSelector`, `limit` and `continue`; with `watch=true`, a stream
//!   of `{"type":…,"object":…}` lines from `resourceVersion` on, ended
//!   after `timeoutSeconds`; a version older than the last compaction gets
//!   an `ERROR` event carrying a 410 `Expired` Status, as etcd compaction
//!   does;
//! * `GET /api/v1/namespaces/{ns}/pods/{name}/log` with `container`,
//!   `follow`, `timestamps` (RFC 3339 with nanoseconds), `sinceTime`,
//!   `sinceSeconds`, `tailLines` and `previous` (the container's last
//!   terminated instance), as plain text; a follow ends when the container
//!   does;
//! * errors as `Status` objects: 401 without the bearer token, 403 for a
//!   verb on a resource the role does not allow, 404, 400 for logs of a
//!   container that has none, and 429 with `Retry-After` when throttling.
//!
//! Every request is recorded as (verb, resource), so a test can check
//! that faultline needs no more than its least-privilege role.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;

/// The bearer token the test server accepts.
pub const TOKEN: &str = "faultline-test-token";

/// One run of a container: its log lines (time in ns, text).
#[derive(Debug, Default)]
struct Instance {
    lines: Vec<(i64, String)>,
    running: bool,
}

/// A watch event as stored: (resourceVersion, resource, type, object).
type Change = (u64, &'static str, &'static str, Value);

#[derive(Debug, Default)]
struct Cluster {
    /// The last resourceVersion given out.
    version: u64,
    /// Watches from before this version get 410 Gone (compaction).
    oldest: u64,
    /// Ends open watches when it changes.
    generation: u64,
    /// (resource, namespace, name) → object.
    objects: BTreeMap<(&'static str, String, String), Value>,
    history: Vec<Change>,
    /// (namespace, pod, container) → its runs, the current one last.
    logs: BTreeMap<(String, String, String), Vec<Instance>>,
    /// The next requests answered 429.
    throttle: u32,
    /// Requests answered 429 so far.
    throttled: u32,
    /// (verb, resource) of every request.
    requests: Vec<(String, String)>,
    /// What the role allows, as (verb, resource); everything when `None`.
    allowed: Option<HashSet<(String, String)>>,
}

/// The test server.
pub struct TestKubernetes {
    cluster: Mutex<Cluster>,
    /// Bumped on every change, for watches and follows to wake up.
    changed: watch::Sender<u64>,
}

/// The resource of a kind.
fn resource_of(kind: &str) -> &'static str {
    match kind {
        "Pod" => "pods",
        "PersistentVolumeClaim" => "persistentvolumeclaims",
        "PersistentVolume" => "persistentvolumes",
        "Node" => "nodes",
        "Event" => "events",
        other => panic!("the test Kubernetes API has no kind {other}"),
    }
}

fn kind_of(resource: &str) -> &'static str {
    match resource {
        "pods" => "Pod",
        "persistentvolumeclaims" => "PersistentVolumeClaim",
        "persistentvolumes" => "PersistentVolume",
        "nodes" => "Node",
        _ => "Event",
    }
}

fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A `Status` error response, as the API server sends them.
fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason,
        "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

/// Whether `labels` satisfy an equality-based label selector
/// (`a=b,c!=d,e`).
fn label_selector_matches(selector: &str, labels: &Value) -> bool {
    let get = |key: &str| labels.get(key).and_then(Value::as_str);
    selector
        .split(',')
        .filter(|r| !r.is_empty())
        .all(|requirement| {
            if let Some((k, v)) = requirement.split_once("!=") {
                get(k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = requirement.split_once('=') {
                get(k.trim()) == Some(v.trim_start_matches('=').trim())
            } else {
                get(requirement.trim()).is_some()
            }
        })
}

impl TestKubernetes {
    /// Starts one on loopback; returns it and its base URL.
    pub async fn start() -> (Arc<TestKubernetes>, String) {
        let server = Arc::new(TestKubernetes {
            cluster: Mutex::default(),
            changed: watch::channel(0).0,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(server.clone());
        (server, crate::serve(app, 0).await)
    }

    /// A kubeconfig for `url` with the accepted token, written in `dir`.
    pub fn kubeconfig(url: &str, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n\
             users:\n- name: faultline\n  user:\n    token: {TOKEN}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: faultline\n    namespace: default\n\
             current-context: test\n"
        );
        std::fs::write(&path, text).expect("writing the kubeconfig");
        path
    }

    fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().expect("the test cluster")
    }

    fn wake(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Creates or replaces an object (it must carry `kind` and
    /// `metadata.name`); watchers see ADDED or MODIFIED.
    pub fn apply(&self, mut object: Value) {
        let kind = object["kind"].as_str().expect("a kind").to_string();
        let resource = resource_of(&kind);
        let name = object["metadata"]["name"].as_str().expect("a name");
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        let key = (resource, namespace.to_string(), name.to_string());
        let mut cluster = self.cluster();
        // A running container has a log, if an empty one.
        for status in object["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["state"]["running"].is_object())
        {
            let container = status["name"].as_str().unwrap_or_default().to_string();
            let runs = cluster
                .logs
                .entry((namespace.to_string(), name.to_string(), container))
                .or_default();
            if runs.is_empty() {
                runs.push(Instance {
                    lines: Vec::new(),
                    running: true,
                });
            }
        }
        cluster.version += 1;
        object["metadata"]["resourceVersion"] = json!(cluster.version.to_string());
        let kind = if cluster.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let version = cluster.version;
        cluster
            .history
            .push((version, resource, kind, object.clone()));
        cluster.objects.insert(key, object);
        drop(cluster);
        self.wake();
    }

    /// Deletes an object; watchers see DELETED.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let resource = resource_of(kind);
        let mut cluster = self.cluster();
        let Some(mut object) =
            cluster
                .objects
                .remove(&(resource, namespace.to_string(), name.to_string()))
        else {
            return;
        };
        cluster.version += 1;
        object["metadata"]["resourceVersion"] = json!(cluster.version.to_string());
        let version = cluster.version;
        cluster.history.push((version, resource, "DELETED", object));
        drop(cluster);
        self.wake();
    }

    /// The object stored under (kind, namespace, name).
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (resource_of(kind), namespace.to_string(), name.to_string());
        self.cluster().objects.get(&key).cloned()
    }

    /// Appends a line (at `ts`, ns) to the running instance of a container.
    pub fn log(&self, namespace: &str, pod: &str, container: &str, ts: i64, line: &str) {
        let key = (
            namespace.to_string(),
            pod.to_string(),
            container.to_string(),
        );
        let mut cluster = self.cluster();
        let runs = cluster.logs.entry(key).or_default();
        if runs.last().is_none_or(|run| !run.running) {
            runs.push(Instance {
                lines: Vec::new(),
                running: true,
            });
        }
        if let Some(run) = runs.last_mut() {
            run.lines.push((ts, line.to_string()));
        }
        drop(cluster);
        self.wake();
    }

    /// The container exits (`exit_code`, `reason`) at `ts` and the kubelet
    /// starts it again: its log so far becomes `previous`, and the pod's
    /// status shows one more restart and the last termination.
    pub fn restart(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        ts: i64,
        exit_code: i32,
        reason: &str,
    ) {
        {
            let key = (
                namespace.to_string(),
                pod.to_string(),
                container.to_string(),
            );
            let mut cluster = self.cluster();
            let runs = cluster.logs.entry(key).or_default();
            if let Some(run) = runs.last_mut() {
                run.running = false;
            }
            runs.push(Instance {
                lines: Vec::new(),
                running: true,
            });
        }
        let mut object = self.get("Pod", namespace, pod).expect("the pod exists");
        if let Some(statuses) = object["status"]["containerStatuses"].as_array_mut() {
            for status in statuses.iter_mut().filter(|s| s["name"] == container) {
                let restarts = status["restartCount"].as_u64().unwrap_or(0) + 1;
                status["restartCount"] = json!(restarts);
                status["containerID"] = json!(format!("containerd://{container}-{restarts}"));
                status["lastState"] = json!({"terminated": {
                    "exitCode": exit_code, "reason": reason,
                    "startedAt": status["state"]["running"]["startedAt"].clone(),
                    "finishedAt": rfc3339(ts - ts % 1_000_000_000),
                    "containerID": format!("containerd://{container}-{}", restarts - 1),
                }});
                status["state"] =
                    json!({"running": {"startedAt": rfc3339(ts - ts % 1_000_000_000)}});
            }
        }
        self.apply(object);
    }

    /// Compacts the history and ends every open watch, as an API server
    /// restart does: a watch resumed from an older resourceVersion gets
    /// 410 Gone and must list again.
    pub fn expire_watches(&self) {
        let mut cluster = self.cluster();
        cluster.oldest = cluster.version + 1;
        cluster.history.clear();
        cluster.generation += 1;
        drop(cluster);
        self.wake();
    }

    /// Answers the next `count` requests with 429 Too Many Requests.
    pub fn throttle(&self, count: u32) {
        self.cluster().throttle = count;
    }

    /// How many requests were answered 429.
    pub fn throttled(&self) -> u32 {
        self.cluster().throttled
    }

    /// Allows only these (verb, resource) pairs, e.g. ("get", "pods/log").
    pub fn allow_only(&self, allowed: &[(&str, &str)]) {
        self.cluster().allowed = Some(
            allowed
                .iter()
                .map(|(v, r)| (v.to_string(), r.to_string()))
                .collect(),
        );
    }

    /// (verb, resource) of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.cluster().requests.clone()
    }
}

/// What a request asks for, from its path.
enum Target {
    Collection {
        resource: &'static str,
        namespace: Option<String>,
    },
    Log {
        namespace: String,
        pod: String,
    },
}

fn target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let resource = |name: &str| match name {
        "pods" => Some("pods"),
        "persistentvolumeclaims" => Some("persistentvolumeclaims"),
        "persistentvolumes" => Some("persistentvolumes"),
        "nodes" => Some("nodes"),
        _ => None,
    };
    match parts.as_slice() {
        ["api", "v1", name] => Some(Target::Collection {
            resource: resource(name)?,
            namespace: None,
        }),
        ["api", "v1", "namespaces", ns, name] => Some(Target::Collection {
            resource: resource(name)?,
            namespace: Some(ns.to_string()),
        }),
        ["api", "v1", "namespaces", ns, "pods", pod, "log"] => Some(Target::Log {
            namespace: ns.to_string(),
            pod: pod.to_string(),
        }),
        ["apis", "events.k8s.io", "v1", "events"] => Some(Target::Collection {
            resource: "events",
            namespace: None,
        }),
        ["apis", "events.k8s.io", "v1", "namespaces", ns, "events"] => Some(Target::Collection {
            resource: "events",
            namespace: Some(ns.to_string()),
        }),
        _ => None,
    }
}

async fn handle(
    State(server): State<Arc<TestKubernetes>>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
        );
    }
    let Some(target) = target(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
        );
    };
    let watching = params.get("watch").is_some_and(|w| w == "true" || w == "1");
    let (verb, resource) = match &target {
        Target::Collection { resource, .. } if watching => ("watch", resource.to_string()),
        Target::Collection { resource, .. } => ("list", resource.to_string()),
        Target::Log { .. } => ("get", "pods/log".to_string()),
    };
    {
        let mut cluster = server.cluster();
        cluster.requests.push((verb.to_string(), resource.clone()));
        if cluster.throttle > 0 {
            cluster.throttle -= 1;
            cluster.throttled += 1;
            let mut response = status(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests, please try again later.".into(),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return response;
        }
        if let Some(allowed) = &cluster.allowed
            && !allowed.contains(&(verb.to_string(), resource.clone()))
        {
            return status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "{resource} is forbidden: User \"system:serviceaccount:monitoring:faultline\" cannot {verb} resource \"{resource}\" at the cluster scope"
                ),
            );
        }
    }
    match target {
        Target::Collection {
            resource,
            namespace,
        } if watching => watch_collection(server, resource, namespace, &params),
        Target::Collection {
            resource,
            namespace,
        } => list(&server, resource, namespace.as_deref(), &params),
        Target::Log { namespace, pod } => pod_log(server, namespace, pod, &params),
    }
}

/// Whether a stored object is in the asked collection.
fn selected(object: &Value, namespace: Option<&str>, params: &BTreeMap<String, String>) -> bool {
    namespace.is_none_or(|ns| object["metadata"]["namespace"] == ns)
        && params
            .get("labelSelector")
            .is_none_or(|s| label_selector_matches(s, &object["metadata"]["labels"]))
}

fn list(
    server: &TestKubernetes,
    resource: &'static str,
    namespace: Option<&str>,
    params: &BTreeMap<String, String>,
) -> Response {
    let cluster = server.cluster();
    let (version, offset) = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let parsed = token
                .split_once(':')
                .and_then(|(v, o)| Some((v.parse::<u64>().ok()?, o.parse::<usize>().ok()?)));
            match parsed {
                Some((v, o)) if v >= cluster.oldest => (v, o),
                _ => {
                    return status(
                        StatusCode::GONE,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
                    );
                }
            }
        }
        None => (cluster.version, 0),
    };
    let all: Vec<&Value> = cluster
        .objects
        .iter()
        .filter(|((r, _, _), object)| *r == resource && selected(object, namespace, params))
        .map(|(_, object)| object)
        .collect();
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0)
        .unwrap_or(usize::MAX);
    let items: Vec<&Value> = all.iter().skip(offset).take(limit).copied().collect();
    let mut metadata = json!({"resourceVersion": version.to_string()});
    if offset.saturating_add(limit) < all.len() {
        metadata["continue"] = json!(format!("{version}:{}", offset + limit));
    }
    let api_version = if resource == "events" {
        "events.k8s.io/v1"
    } else {
        "v1"
    };
    axum::Json(json!({
        "kind": format!("{}List", kind_of(resource)),
        "apiVersion": api_version,
        "metadata": metadata,
        "items": items,
    }))
    .into_response()
}

fn watch_collection(
    server: Arc<TestKubernetes>,
    resource: &'static str,
    namespace: Option<String>,
    params: &BTreeMap<String, String>,
) -> Response {
    let from: u64 = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let deadline = tokio::time::Instant::now() + timeout;
    let params = params.clone();
    let (generation, expired) = {
        let cluster = server.cluster();
        (cluster.generation, from != 0 && from < cluster.oldest)
    };
    let mut pending: VecDeque<Value> = VecDeque::new();
    if expired {
        pending.push_back(json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": "Expired", "code": 410,
            "message": format!("too old resource version: {from} ({})", server.cluster().oldest),
        }}));
    }
    let changed = server.changed.subscribe();
    let state = (server, changed, from, pending, expired);
    let events = futures_util::stream::unfold(
        state,
        move |(server, mut changed, mut seen, mut pending, mut done)| {
            let params = params.clone();
            let namespace = namespace.clone();
            async move {
                loop {
                    if let Some(event) = pending.pop_front() {
                        let mut line = event.to_string();
                        line.push('\n');
                        let chunk = Ok::<_, std::io::Error>(line);
                        return Some((chunk, (server, changed, seen, pending, done)));
                    }
                    if done {
                        return None;
                    }
                    {
                        let cluster = server.cluster();
                        if cluster.generation != generation {
                            return None;
                        }
                        for (version, r, kind, object) in &cluster.history {
                            if *version > seen
                                && *r == resource
                                && selected(object, namespace.as_deref(), &params)
                            {
                                pending.push_back(json!({"type": kind, "object": object}));
                            }
                        }
                        seen = seen.max(cluster.version);
                    }
                    if !pending.is_empty() {
                        continue;
                    }
                    let wait = tokio::time::timeout_at(deadline, changed.changed());
                    if !matches!(wait.await, Ok(Ok(()))) {
                        done = true;
                    }
                }
            }
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(events))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn pod_log(
    server: Arc<TestKubernetes>,
    namespace: String,
    pod: String,
    params: &BTreeMap<String, String>,
) -> Response {
    let Some(object) = server.get("Pod", &namespace, &pod) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("pods \"{pod}\" not found"),
        );
    };
    let containers: Vec<String> = object["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let container = match params.get("container") {
        Some(c) => c.clone(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "a container name must be specified for pod {pod}, choose one of: [{}]",
                    containers.join(" ")
                ),
            );
        }
    };
    let flag = |name: &str| params.get(name).is_some_and(|v| v == "true" || v == "1");
    let (follow, timestamps, previous) = (flag("follow"), flag("timestamps"), flag("previous"));
    let since = params
        .get("sinceTime")
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX))
        .or_else(|| {
            let seconds = params.get("sinceSeconds")?.parse::<i64>().ok()?;
            let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).ok()?;
            Some(now - seconds * 1_000_000_000)
        })
        .unwrap_or(i64::MIN);
    let tail = params
        .get("tailLines")
        .and_then(|t| t.parse::<usize>().ok());
    let key = (namespace, pod.clone(), container.clone());
    let instance = {
        let cluster = server.cluster();
        let runs = cluster.logs.get(&key).map_or(0, Vec::len);
        match (previous, runs) {
            (true, n) if n >= 2 => n - 2,
            (true, _) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!(
                        "previous terminated container \"{container}\" in pod \"{pod}\" not found"
                    ),
                );
            }
            (false, 0) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!(
                        "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
                    ),
                );
            }
            (false, n) => n - 1,
        }
    };
    let render = move |ts: i64, line: &str| {
        if timestamps {
            format!("{} {line}\n", rfc3339(ts))
        } else {
            format!("{line}\n")
        }
    };
    // Lines already there (after sinceTime, the last tailLines of them).
    let (mut text, mut next) = {
        let cluster = server.cluster();
        let lines = &cluster.logs[&key][instance].lines;
        let kept: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].0 >= since).collect();
        let skip = tail.map_or(0, |t| kept.len().saturating_sub(t));
        let text: String = kept[skip..]
            .iter()
            .map(|&i| render(lines[i].0, &lines[i].1))
            .collect();
        (text, lines.len())
    };
    if !follow {
        return text.into_response();
    }
    let changed = server.changed.subscribe();
    let body = futures_util::stream::unfold(
        (server, changed, false),
        move |(server, mut changed, mut done)| {
            let key = key.clone();
            let mut chunk = std::mem::take(&mut text);
            async move {
                loop {
                    if !chunk.is_empty() {
                        return Some((Ok::<_, std::io::Error>(chunk), (server, changed, done)));
                    }
                    if done {
                        return None;
                    }
                    {
                        let cluster = server.cluster();
                        let run = &cluster.logs[&key][instance];
                        for (ts, line) in &run.lines[next..] {
                            chunk.push_str(&render(*ts, line));
                        }
                        next = run.lines.len();
                        // A follow ends when its container does.
                        done = !run.running;
                    }
                    if chunk.is_empty() && !done && changed.changed().await.is_err() {
                        return None;
                    }
                }
            }
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A running pod with these containers, on `node`, mounting PVCs
/// `claims` as (volume, claim) at `/data/<volume>`, in the shape the API
/// returns.
pub fn pod(
    namespace: &str,
    name: &str,
    node: &str,
    containers: &[&str],
    claims: &[(&str, &str)],
) -> Value {
    let mounts: Vec<Value> = claims
        .iter()
        .map(|(volume, _)| json!({"name": volume, "mountPath": format!("/data/{volume}")}))
        .collect();
    let volumes: Vec<Value> = claims
        .iter()
        .map(|(volume, claim)| json!({"name": volume, "persistentVolumeClaim": {"claimName": claim}}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace,
            "uid": format!("{name}-uid"),
            "labels": {"app": name.split('-').next().unwrap_or(name)},
        },
        "spec": {
            "nodeName": node,
            "containers": containers.iter().map(|c| json!({
                "name": c, "image": format!("example/{c}:1"), "volumeMounts": mounts,
            })).collect::<Vec<_>>(),
            "volumes": volumes,
        },
        "status": {
            "phase": "Running",
            "containerStatuses": containers.iter().map(|c| json!({
                "name": c, "ready": true, "restartCount": 0,
                "containerID": format!("containerd://{c}-0"),
                "image": format!("example/{c}:1"),
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                "lastState": {},
            })).collect::<Vec<_>>(),
        },
    })
}
