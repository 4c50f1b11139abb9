//! The manifests in deploy/kubernetes: each parses as its Kubernetes type
//! (k8s-openapi) with no field the type does not know, every kustomization
//! lists files that exist, the role is exactly the least-privilege set,
//! every faultline container runs locked down with probes and resources,
//! the config each one mounts passes `faultline config check`, and the
//! PrometheusRule passes a real `promtool`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde_json::Value;

fn kubernetes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// Every YAML file under `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// A YAML file as JSON, every scalar a string (YAML's view of them).
fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    marked_yaml::from_yaml(0, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Scalars as strings, for comparing YAML with typed JSON.
fn normalized(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

/// Parses `path` as `T`, and checks that nothing in the file was
/// unknown to `T` (a typo would be silently dropped by the API server).
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap();
    let object: T = marked_yaml::from_yaml(0, &text).unwrap_or_else(|e| {
        panic!(
            "{}: not a valid {}: {e}",
            path.display(),
            std::any::type_name::<T>()
        )
    });
    let back = normalized(&serde_json::to_value(&object).unwrap());
    let mut unknown = Vec::new();
    dropped(&normalized(&yaml(path)), &back, String::new(), &mut unknown);
    assert!(
        unknown.is_empty(),
        "{}: fields its type does not know: {unknown:?}",
        path.display()
    );
    object
}

/// The paths of what `original` has and `back` lost or changed.
fn dropped(original: &Value, back: &Value, at: String, lost: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(was), Value::Object(is)) => {
            for (key, value) in was {
                match is.get(key) {
                    Some(kept) => dropped(value, kept, format!("{at}.{key}"), lost),
                    None => lost.push(format!("{at}.{key}")),
                }
            }
        }
        (Value::Array(was), Value::Array(is)) => {
            for (i, value) in was.iter().enumerate() {
                match is.get(i) {
                    Some(kept) => dropped(value, kept, format!("{at}[{i}]"), lost),
                    None => lost.push(format!("{at}[{i}]")),
                }
            }
        }
        (was, is) if was != is => lost.push(format!("{at}: {was} became {is}")),
        _ => {}
    }
}

/// What the manifests hold, by kind.
#[derive(Default)]
struct Manifests {
    roles: Vec<ClusterRole>,
    bindings: Vec<ClusterRoleBinding>,
    accounts: Vec<ServiceAccount>,
    config_maps: Vec<ConfigMap>,
    /// (file, pod spec) of every workload.
    workloads: Vec<(PathBuf, PodSpec)>,
    rules: Vec<(PathBuf, Value)>,
}

fn manifests() -> Manifests {
    let mut found = Manifests::default();
    for path in yaml_files(&kubernetes_dir()) {
        let kind = yaml(&path)["kind"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "Kustomization" => check_kustomization(&path),
            "Namespace" => drop(typed::<Namespace>(&path)),
            "ServiceAccount" => found.accounts.push(typed(&path)),
            "ClusterRole" => found.roles.push(typed(&path)),
            "ClusterRoleBinding" => found.bindings.push(typed(&path)),
            "ConfigMap" => found.config_maps.push(typed(&path)),
            "Service" => drop(typed::<Service>(&path)),
            "PodDisruptionBudget" => drop(typed::<PodDisruptionBudget>(&path)),
            "Deployment" => {
                let spec = typed::<Deployment>(&path)
                    .spec
                    .unwrap()
                    .template
                    .spec
                    .unwrap();
                found.workloads.push((path, spec));
            }
            "DaemonSet" => {
                let spec = typed::<DaemonSet>(&path)
                    .spec
                    .unwrap()
                    .template
                    .spec
                    .unwrap();
                found.workloads.push((path, spec));
            }
            "StatefulSet" => {
                let spec = typed::<StatefulSet>(&path)
                    .spec
                    .unwrap()
                    .template
                    .spec
                    .unwrap();
                found.workloads.push((path, spec));
            }
            "ServiceMonitor" => {
                let monitor = yaml(&path);
                assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
                assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
            }
            "PrometheusRule" => found.rules.push((path.clone(), yaml(&path))),
            other => panic!("{}: unexpected kind {other:?}", path.display()),
        }
    }
    found
}

fn check_kustomization(path: &Path) {
    let kustomization = yaml(path);
    assert_eq!(
        kustomization["apiVersion"],
        "kustomize.config.k8s.io/v1beta1"
    );
    let dir = path.parent().unwrap();
    for resource in kustomization["resources"].as_array().unwrap() {
        let target = dir.join(resource.as_str().unwrap());
        let exists = if target.is_dir() {
            target.join("kustomization.yaml").is_file()
        } else {
            target.is_file()
        };
        assert!(
            exists,
            "{}: {} does not exist",
            path.display(),
            target.display()
        );
    }
}

#[test]
fn the_role_is_exactly_least_privilege() {
    let found = manifests();
    assert_eq!(found.roles.len(), 1);
    let mut granted = BTreeSet::new();
    for rule in found.roles[0].rules.iter().flatten() {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    granted.insert((group.as_str(), resource.as_str(), verb.as_str()));
                }
            }
        }
    }
    let mut wanted = BTreeSet::new();
    for (group, resource) in [
        ("", "pods"),
        ("", "persistentvolumeclaims"),
        ("", "persistentvolumes"),
        ("events.k8s.io", "events"),
    ] {
        for verb in ["get", "list", "watch"] {
            wanted.insert((group, resource, verb));
        }
    }
    wanted.insert(("", "pods/log", "get"));
    assert_eq!(granted, wanted);
    // Bound to the service account the workloads use.
    let binding = &found.bindings[0];
    assert_eq!(binding.role_ref.name, "faultline");
    let subject = &binding.subjects.as_ref().unwrap()[0];
    assert_eq!(
        (subject.kind.as_str(), subject.name.as_str()),
        ("ServiceAccount", "faultline")
    );
    assert_eq!(
        found.accounts[0].metadata.name.as_deref(),
        Some("faultline")
    );
}

fn faultline_container(spec: &PodSpec) -> &Container {
    spec.containers
        .iter()
        .find(|c| c.name == "faultline")
        .expect("a faultline container")
}

#[test]
fn every_faultline_container_is_locked_down_probed_and_sized() {
    let found = manifests();
    assert_eq!(found.workloads.len(), 3, "standalone, daemonset, sidecar");
    for (path, spec) in &found.workloads {
        let container = faultline_container(spec);
        let context = container.security_context.as_ref().unwrap();
        let name = path.display();
        assert_eq!(context.read_only_root_filesystem, Some(true), "{name}");
        assert_eq!(context.allow_privilege_escalation, Some(false), "{name}");
        assert_ne!(context.privileged, Some(true), "{name}");
        let capabilities = context.capabilities.as_ref().unwrap();
        assert_eq!(
            capabilities.drop.as_deref(),
            Some(&["ALL".to_string()][..]),
            "{name}"
        );
        if path.ends_with("daemonset/daemonset.yaml") {
            // Root only to read the kubelet's 0640 log files, with the one
            // capability that needs, and every host path read-only but
            // the state directory.
            assert_eq!(context.run_as_user, Some(0));
            assert_eq!(
                capabilities.add.as_deref(),
                Some(&["DAC_READ_SEARCH".to_string(), "SYSLOG".to_string()][..])
            );
            for mount in container.volume_mounts.iter().flatten() {
                let volume = spec
                    .volumes
                    .iter()
                    .flatten()
                    .find(|v| v.name == mount.name)
                    .unwrap();
                if volume.host_path.is_some() && mount.mount_path != "/var/lib/faultline" {
                    assert_eq!(
                        mount.read_only,
                        Some(true),
                        "{} must be read-only",
                        mount.mount_path
                    );
                }
            }
            assert!(
                spec.tolerations
                    .iter()
                    .flatten()
                    .any(|t| t.operator.as_deref() == Some("Exists"))
            );
        } else {
            assert_eq!(context.run_as_non_root, Some(true), "{name}");
            assert!(capabilities.add.is_none(), "{name}");
        }
        let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
            probe
                .as_ref()
                .and_then(|p| p.http_get.as_ref())
                .and_then(|h| h.path.clone())
        };
        assert_eq!(
            probe_path(&container.startup_probe).as_deref(),
            Some("/healthz"),
            "{name}"
        );
        assert_eq!(
            probe_path(&container.liveness_probe).as_deref(),
            Some("/healthz"),
            "{name}"
        );
        assert_eq!(
            probe_path(&container.readiness_probe).as_deref(),
            Some("/readyz"),
            "{name}"
        );
        let resources = container.resources.as_ref().unwrap();
        for what in ["cpu", "memory"] {
            assert!(
                resources.requests.as_ref().unwrap().contains_key(what),
                "{name}: {what} request"
            );
        }
        assert!(
            resources.limits.as_ref().unwrap().contains_key("memory"),
            "{name}: memory limit"
        );
        assert!(
            container
                .image
                .as_deref()
                .unwrap()
                .starts_with("ghcr.io/faultline/faultline:")
        );
    }
}

#[test]
fn every_mounted_config_passes_config_check() {
    let found = manifests();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for config_map in &found.config_maps {
        let text = &config_map.data.as_ref().unwrap()["faultline.yaml"];
        let file = dir.path().join(format!(
            "{}.yaml",
            config_map.metadata.name.as_deref().unwrap()
        ));
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(["config", "check", file.to_str().unwrap()])
            .env("NODE_NAME", "node-1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "standalone and daemonset");
    // Each workload that reads a config mounts the ConfigMap that holds it.
    for (path, spec) in &found.workloads {
        let container = faultline_container(spec);
        let args = container.args.clone().unwrap_or_default();
        if let Some(i) = args.iter().position(|a| a == "--config") {
            let config = Path::new(&args[i + 1]);
            let mount = container
                .volume_mounts
                .iter()
                .flatten()
                .find(|m| config.starts_with(&m.mount_path))
                .unwrap_or_else(|| panic!("{}: {} not mounted", path.display(), config.display()));
            let volume = spec
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == mount.name)
                .unwrap();
            let name = &volume.config_map.as_ref().unwrap().name;
            assert!(
                found
                    .config_maps
                    .iter()
                    .any(|c| c.metadata.name.as_ref() == Some(name))
            );
        }
    }
}

#[test]
fn the_prometheus_rules_pass_promtool() {
    let found = manifests();
    let (path, rule) = &found.rules[0];
    let alerts: Vec<&str> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["alert"].as_str())
        .collect();
    for wanted in [
        "FaultlineDown",
        "FaultlineSourceUnhealthy",
        "FaultlineFallbackActive",
        "FaultlineAlertsFailing",
    ] {
        assert!(alerts.contains(&wanted), "{}: no {wanted}", path.display());
    }
    let promtool = std::process::Command::new("promtool")
        .arg("--version")
        .output();
    if common::missing(promtool.is_ok(), "promtool (Debian package prometheus)") {
        return;
    }
    // promtool reads a plain rules file: the PrometheusRule's spec.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, serde_json::to_string(&rule["spec"]).unwrap()).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "rules", rules.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_binary_needs_nothing_but_the_c_library() {
    // The image links faultline statically (musl); that works because the
    // binary needs no system library but libc's own: TLS is rustls, the
    // compressors are compiled in. A new dependency on a system library
    // (OpenSSL, libz, libsystemd …) would break the static image: caught
    // here, where the build is the ordinary one.
    let out = std::process::Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_faultline"))
        .output();
    if common::missing(out.is_ok(), "ldd") {
        return;
    }
    let listing = String::from_utf8(out.unwrap().stdout).unwrap();
    let allowed = [
        "linux-vdso",
        "libgcc_s",
        "libm.so",
        "libc.so",
        "ld-linux",
        "libpthread",
        "libdl.so",
        "librt.so",
    ];
    for library in listing.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(
            allowed
                .iter()
                .any(|a| library.starts_with(a) || library.contains(&format!("/{a}"))),
            "faultline links {library}: the static image cannot provide it"
        );
    }
    // And the Dockerfile builds that binary for musl, as a non-root user
    // on a static base.
    let dockerfile = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/Dockerfile"),
    )
    .unwrap();
    for needed in [
        "rust:1-alpine",
        "distroless/static",
        "USER 65532:65532",
        "cargo build --release --locked -p faultline",
    ] {
        assert!(
            dockerfile.contains(needed),
            "the Dockerfile lacks {needed:?}"
        );
    }
}
