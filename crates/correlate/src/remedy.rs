//! The story of an incident in words, and what to do, with real names;
//! and rollups that tell one CloudNativePG cluster's story at once.

use std::collections::{BTreeMap, BTreeSet};

use faultline_core::Class;

use crate::incident::{Incident, State};
use crate::inventory::{ContainerRun, Inventory};
use crate::resolve::Subject;

fn when(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| format!("{t:.0}"))
        .unwrap_or_default()
}

/// Kill times one minute apart or less are one kill, reported twice (by
/// kubelet's log and by an Event).
const SAME_KILL_NS: i64 = 60_000_000_000;

/// Distinct kill times, sorted.
fn distinct_kills(kills: &std::collections::VecDeque<i64>) -> Vec<i64> {
    let mut distinct: Vec<i64> = Vec::new();
    let mut sorted: Vec<i64> = kills.iter().copied().collect();
    sorted.sort_unstable();
    for t in sorted {
        if distinct.last().is_none_or(|&last| t - last > SAME_KILL_NS) {
            distinct.push(t);
        }
    }
    distinct
}

/// The median time between distinct probe kills: the loop's period.
fn kill_interval_s(kills: &std::collections::VecDeque<i64>) -> Option<i64> {
    let distinct = distinct_kills(kills);
    let mut gaps: Vec<i64> = distinct
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000_000)
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied()
}

/// A kill and the run of the container it ended: the run whose last line
/// is within this of the kill.
const RUN_END_SLACK_NS: i64 = 90_000_000_000;

/// The runs of the container that probe kills ended: (kill time, run).
fn killed_runs(kills: &[i64], runs: &[ContainerRun]) -> Vec<(i64, ContainerRun)> {
    kills
        .iter()
        .filter_map(|&kill| {
            runs.iter()
                .filter(|r| (r.ended - kill).abs() <= RUN_END_SLACK_NS)
                .min_by_key(|r| (r.ended - kill).abs())
                .map(|r| (kill, r.clone()))
        })
        .collect()
}

/// The uptime, in seconds, at which probe kills end the container's runs
/// (the median over the kills whose run its log shows).
fn kill_uptime_s(incident: &Incident, runs: &[ContainerRun]) -> Option<i64> {
    let mut uptimes: Vec<i64> = killed_runs(&distinct_kills(&incident.kills), runs)
        .iter()
        .map(|(kill, run)| (kill - run.started) / 1_000_000_000)
        .collect();
    uptimes.sort_unstable();
    uptimes.get(uptimes.len() / 2).copied()
}

/// A run's last lines as `+8 s «…», +355 s «…»`.
fn tail_of(run: &ContainerRun) -> String {
    run.tail
        .iter()
        .map(|(ts, line)| {
            let line: String = line.trim().chars().take(160).collect();
            format!("+{} s «{line}»", (ts - run.started) / 1_000_000_000)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `6m0s`-style duration.
fn duration(seconds: i64) -> String {
    match seconds {
        s if s >= 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// A probe-kill loop in a sentence: how many kills, how often, at what
/// uptime.
fn probe_kill_summary(
    incident: &Incident,
    namespace: &str,
    kind: &str,
    name: &str,
    pod: &str,
    runs: &[ContainerRun],
    since: &str,
) -> String {
    let kills = incident
        .signatures
        .iter()
        .filter(|(s, _)| s.contains("probe-kill"))
        .map(|(_, n)| n)
        .sum::<u64>();
    // A gap of more than half an hour says more about gaps in the logs
    // than about the loop: leave it out.
    let every = kill_interval_s(&incident.kills)
        .filter(|&s| s <= 1800)
        .map(|s| format!(", as often as every {}", duration(s)))
        .unwrap_or_default();
    let uptime = kill_uptime_s(incident, runs)
        .map(|uptime| format!(", each about {uptime} s after the container started"))
        .unwrap_or_default();
    format!(
        "{kind} {namespace}/{name} (pod {pod}) is killed by its liveness probe and restarts in a loop: {kills} kills{every}{uptime} — since {since}"
    )
}

/// What to do about a probe-kill loop: the probe's start-up allowance
/// against the uptime at which kills come, and what the container's own
/// log shows it doing when killed.
fn probe_kill_remediation(
    incident: &Incident,
    liveness: Option<&crate::inventory::Probe>,
    runs: &[ContainerRun],
    edit: &str,
) -> String {
    let rhythm = kill_interval_s(&incident.kills).filter(|&s| s <= 1800);
    let uptime = kill_uptime_s(incident, runs);
    let log = killed_runs(&distinct_kills(&incident.kills), runs)
        .last()
        .map(|(kill, run)| {
            format!(
                " The container's own log shows what it was doing when killed (the run killed at {}): {}.",
                when(*kill),
                tail_of(run)
            )
        })
        .unwrap_or_default();
    match liveness {
        Some(probe) => {
            let allows = probe.allows_s();
            let period = probe.period_s.max(1);
            let threshold = (allows * 2)
                .max(600)
                .max(uptime.map_or(0, |u| u32::try_from(u * 2).unwrap_or(u32::MAX)))
                .div_ceil(period);
            let observed = match uptime {
                Some(u) => format!(
                    "; the kills come about {u} s after the container starts{}",
                    if (i64::from(allows) - u).abs() <= 30.max(i64::from(allows) / 6) {
                        ", which is that allowance: it never gets to finish starting"
                    } else {
                        ""
                    }
                ),
                None => rhythm
                    .map(|s| format!("; kills come as often as every {}", duration(s)))
                    .unwrap_or_default(),
            };
            format!(
                "The liveness probe allows {allows} s of start-up (initialDelaySeconds {} + failureThreshold {} × periodSeconds {}){observed}.{log} Add a startupProbe that allows more — the liveness probe's check with periodSeconds {period} and failureThreshold {threshold} ({} s) — so the liveness probe only starts once the container is up; or raise initialDelaySeconds/failureThreshold: {edit}.",
                probe.initial_delay_s,
                probe.failure_threshold,
                probe.period_s,
                threshold * period
            )
        }
        None => {
            let every = rhythm
                .map(|s| format!(", as often as every {}", duration(s)))
                .unwrap_or_default();
            let observed = uptime
                .map(|u| format!(", about {u} s after it starts"))
                .unwrap_or_default();
            format!(
                "The container is killed before it finishes starting{every}{observed}.{log} Give start-up the time it needs: add a startupProbe (failureThreshold × periodSeconds longer than the slowest start), or raise the liveness probe's initialDelaySeconds/failureThreshold: {edit}."
            )
        }
    }
}

/// Adds a `cnpg/<ns>/<cluster>` incident for every CloudNativePG cluster
/// with an instance volume in trouble, linking the instance incidents (or
/// enriches the one its own hits made).
pub fn add_rollups(incidents: &mut BTreeMap<String, Incident>, inventory: &Inventory) {
    let mut members: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (key, incident) in incidents.iter() {
        if let Subject::Pvc {
            namespace,
            cnpg: Some(cluster),
            ..
        } = &incident.subject
        {
            members
                .entry((namespace.clone(), cluster.clone()))
                .or_default()
                .push(key.clone());
        }
    }
    for ((namespace, cluster), keys) in members {
        let parts: Vec<Incident> = keys
            .iter()
            .filter_map(|k| incidents.get(k).cloned())
            .collect();
        let first_seen = parts.iter().map(|i| i.first_seen).min().unwrap_or_default();
        let key = format!("cnpg/{namespace}/{cluster}");
        let rollup = incidents.entry(key).or_insert_with(|| {
            Incident::new(
                Subject::Cnpg {
                    namespace: namespace.clone(),
                    cluster: cluster.clone(),
                },
                first_seen,
            )
        });
        rollup.first_seen = rollup.first_seen.min(first_seen);
        for part in &parts {
            rollup.hits += part.hits;
            rollup.severity = rollup.severity.max(part.severity);
            rollup.classes.extend(part.classes.iter().copied());
            rollup.last_seen = rollup.last_seen.max(part.last_seen);
            for (sig, n) in &part.signatures {
                *rollup.signatures.entry(sig.clone()).or_insert(0) += n;
            }
            rollup.fired_at = match (rollup.fired_at, part.fired_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            rollup.last_fired_at = rollup.last_fired_at.max(part.last_fired_at);
            // The cluster paged as often as its most paged instance.
            rollup.fired_count = rollup.fired_count.max(part.fired_count);
        }
        rollup.related.extend(keys.iter().cloned());
        rollup.state = if parts.iter().any(|p| p.state == State::Firing) {
            State::Firing
        } else if parts.iter().all(|p| p.state == State::Resolved) {
            State::Resolved
        } else {
            rollup.state
        };
        rollup.resolved_at = (rollup.state == State::Resolved)
            .then(|| parts.iter().filter_map(|p| p.resolved_at).max())
            .flatten();
        if rollup.evidence_first.is_empty() {
            rollup.evidence_first = parts
                .iter()
                .filter_map(|p| p.evidence_first.first().cloned())
                .take(3)
                .collect();
        }
        let total = inventory.cnpg_instances(&namespace, &cluster).len();
        rollup
            .captures
            .insert("instances".into(), BTreeSet::from([total.to_string()]));
    }
}

/// (summary, remediation) of `incident`; `all` holds the incidents it
/// may refer to.
pub fn story(
    incident: &Incident,
    all: &BTreeMap<String, Incident>,
    inventory: &Inventory,
) -> (String, String) {
    let since = when(incident.first_seen);
    let classes = &incident.classes;
    match &incident.subject {
        Subject::Pvc {
            namespace,
            name,
            pod,
            node,
            primary,
            cnpg,
            ..
        } => {
            let on = node
                .as_ref()
                .map(|n| format!(" on node {n}"))
                .unwrap_or_default();
            let read_only = classes.contains(&Class::VolumeReadOnly);
            let empty = classes.contains(&Class::PgControldata);
            let what = match (read_only, empty) {
                (true, true) => {
                    "the volume is read-only and PGDATA is empty or unreadable (pg_controldata finds no cluster)"
                }
                (false, true) => {
                    "PGDATA is empty or uninitialised (pg_controldata finds no cluster)"
                }
                (true, false) => "the volume is read-only: every write fails",
                _ if classes.contains(&Class::DiskIoError) => "I/O errors on the volume",
                _ if classes.contains(&Class::DiskFull) => "the volume is full",
                _ => "",
            };
            let summary = if what.is_empty() {
                format!(
                    "PVC {namespace}/{name} (pod {pod}{on}): {} — since {since}",
                    incident.first_summary
                )
            } else {
                format!("PVC {namespace}/{name} (pod {pod}{on}): {what} — since {since}")
            };
            let storage = node
                .as_ref()
                .map(|n| format!("First make sure the storage path to node {n} is healthy again (iSCSI sessions: `iscsiadm -m session -P 3`, the storage array). "))
                .unwrap_or_default();
            let remediation = if empty && cnpg.is_some() && !primary {
                format!(
                    "{storage}This replica's volume holds no usable data directory, so a restart cannot help. Delete the pod and its PVC so CloudNativePG provisions a new volume and re-clones it from the primary: `kubectl delete pod {pod} -n {namespace} && kubectl delete pvc {name} -n {namespace}`."
                )
            } else if empty && *primary {
                format!(
                    "{storage}This is the primary: do NOT delete PVC {name}. Promote a healthy replica (`kubectl cnpg promote <cluster> <instance> -n {namespace}`) or restore from backup, then rebuild this instance."
                )
            } else if read_only || classes.contains(&Class::DiskIoError) {
                format!(
                    "{storage}Then delete the pod so the CSI driver detaches and re-attaches the volume read-write: `kubectl delete pod {pod} -n {namespace}`. Do not delete PVC {name}: its data is intact."
                )
            } else {
                incident.first_remediation.clone()
            };
            (summary, remediation)
        }
        Subject::Node { name } => {
            let devices = incident
                .captures
                .get("device")
                .map(|d| d.iter().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            let pvcs: Vec<&String> = incident
                .related
                .iter()
                .filter(|r| r.starts_with("pvc/"))
                .collect();
            let mut sessions: Vec<u64> = incident
                .captures
                .get("session")
                .map(|s| s.iter().filter_map(|n| n.parse().ok()).collect())
                .unwrap_or_default();
            sessions.sort_unstable();
            let sessions = match sessions.len() {
                0 => String::new(),
                n => format!(
                    "; iSCSI sessions failing: {}{}",
                    sessions
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    if n >= crate::incident::CAPTURE_VALUES {
                        ", …"
                    } else {
                        ""
                    }
                ),
            };
            let mut worst_first: Vec<Class> = classes.iter().copied().collect();
            worst_first.sort_by_key(|c| c.headline_rank());
            let what: Vec<&str> = worst_first.into_iter().map(node_failure).collect();
            let summary = format!(
                "Node {name}: {} ({} hits){}{sessions} — since {since}",
                what.join(", "),
                incident.hits,
                if devices.is_empty() {
                    String::new()
                } else {
                    format!("; devices {devices}")
                }
            );
            let storage_path = classes.iter().any(|c| {
                matches!(
                    c,
                    Class::StorageTransport | Class::DiskIoError | Class::VolumeReadOnly
                )
            });
            let remediation = if !storage_path {
                incident.first_remediation.clone()
            } else {
                format!(
                    "Restore the node's storage path (iSCSI sessions: `iscsiadm -m session -P 3`; the storage array's health), then recover the volumes on it{}. {}",
                    if pvcs.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ": see {}",
                            pvcs.iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                    incident.first_remediation
                )
            };
            (summary, remediation)
        }
        Subject::Pipeline { name } => {
            let cause = incident.related.iter().find(|r| r.starts_with("pvc/"));
            let unhealthy = incident
                .signatures
                .get(Class::PipelineUnhealthy.as_str())
                .copied()
                .unwrap_or(0);
            let failures = incident.hits - unhealthy;
            let mut what = Vec::new();
            if failures > 0 {
                what.push(format!("{failures} push failures and storage errors"));
            }
            if unhealthy > 0 {
                what.push(format!(
                    "its API fails faultline's reads ({})",
                    incident.evidence().last().map_or("", String::as_str)
                ));
            }
            let summary = format!(
                "The log pipeline ({name}) is broken: {}, logs are being dropped — since {since}{}",
                what.join("; "),
                cause.map(|c| format!("; cause: {c}")).unwrap_or_default()
            );
            let remediation = match cause.and_then(|c| all.get(c)) {
                Some(Incident {
                    subject:
                        Subject::Pvc {
                            namespace,
                            name: pvc,
                            pod,
                            ..
                        },
                    ..
                }) => format!(
                    "Loki's volume {namespace}/{pvc} cannot be written. Once the storage is healthy, delete the Loki pod so the volume is re-attached read-write: `kubectl delete pod {pod} -n {namespace}`; then check that the shippers' pushes succeed again. Until then, read pod logs directly (`kubectl logs`)."
                ),
                _ if incident.first_remediation.is_empty() => format!(
                    "Check {name}'s pods, its /ready endpoint and its own log for write errors (a read-only or full WAL volume, an unreachable object store): `kubectl get pods -A -l app.kubernetes.io/name={name}`. While it is down, read pod logs directly (`kubectl logs`, or faultline watching /var/log/pods)."
                ),
                _ => incident.first_remediation.clone(),
            };
            (summary, remediation)
        }
        Subject::Workload {
            namespace,
            kind,
            name,
            pod,
            container,
            liveness,
        } => {
            let edit = format!(
                "`kubectl -n {namespace} edit {} {name}`",
                kind.to_lowercase()
            );
            let runs = inventory.container_runs(namespace, pod, container.as_deref());
            let termination = inventory.pod(namespace, pod).and_then(|p| match container {
                Some(c) => p.last_termination.get(c),
                None => (p.last_termination.len() == 1)
                    .then(|| p.last_termination.values().next())
                    .flatten(),
            });
            let previous = format!(
                "`kubectl logs -n {namespace} {pod}{} --previous`",
                container
                    .as_ref()
                    .map(|c| format!(" -c {c}"))
                    .unwrap_or_default()
            );
            if classes.contains(&Class::ProbeKill) {
                (
                    probe_kill_summary(incident, namespace, kind, name, pod, &runs, &since),
                    probe_kill_remediation(incident, liveness.as_ref(), &runs, &edit),
                )
            } else if classes.contains(&Class::OomKill)
                || termination.is_some_and(|t| t.reason == "OOMKilled")
            {
                (
                    format!(
                        "{kind} {namespace}/{name} (pod {pod}) is killed for memory — since {since}"
                    ),
                    format!("Raise the container's memory limit or reduce its usage: {edit}."),
                )
            } else if let Some(t) = termination.filter(|t| t.exit_code != 0) {
                let last = runs
                    .last()
                    .map(|r| format!(" The last lines of its last run: {}.", tail_of(r)))
                    .unwrap_or_default();
                (
                    format!(
                        "{kind} {namespace}/{name} (pod {pod}) crashes and restarts in a loop: its last run exited with code {} ({}) — since {since}",
                        t.exit_code, t.reason
                    ),
                    format!(
                        "The container exits by itself (exit code {}, {}); no probe killed it, so probe settings will not help. Read why in the previous run's log: {previous}.{last}",
                        t.exit_code, t.reason
                    ),
                )
            } else {
                (
                    format!(
                        "{kind} {namespace}/{name}: {} — since {since}",
                        incident.first_summary
                    ),
                    incident.first_remediation.clone(),
                )
            }
        }
        Subject::Stream { name } => {
            let again = match (incident.state, incident.resolved_at) {
                (State::Resolved, Some(at)) => format!("; it spoke again at {}", when(at)),
                _ => String::new(),
            };
            let summary = format!(
                "Log stream {name} went silent for longer than its limit ({} silences){again} — since {since}",
                incident.hits
            );
            let check = match name.split('/').collect::<Vec<_>>().as_slice() {
                [namespace, pod, container] => format!(
                    "Check whether the pod still runs and writes: `kubectl get pod -n {namespace} {pod}` and `kubectl logs -n {namespace} {pod} -c {container} --since=15m`. "
                ),
                _ => String::new(),
            };
            let remediation = format!(
                "{check}If it is running and writing, its lines are not reaching faultline's source: look at the log pipeline (the shipper on its node and Loki); if it was deleted or scaled down on purpose, the silence is expected."
            );
            (summary, remediation)
        }
        Subject::Cnpg { namespace, cluster } => {
            let members: Vec<&Incident> = incident
                .related
                .iter()
                .filter(|r| r.starts_with("pvc/"))
                .filter_map(|r| all.get(r))
                .collect();
            let total = incident
                .captures
                .get("instances")
                .and_then(|s| s.iter().next())
                .cloned()
                .unwrap_or_default();
            let primary = members
                .iter()
                .any(|m| matches!(m.subject, Subject::Pvc { primary: true, .. }));
            let read_only = members
                .iter()
                .filter(|m| {
                    m.classes.contains(&Class::VolumeReadOnly)
                        && !m.classes.contains(&Class::PgControldata)
                })
                .count();
            let empty = members
                .iter()
                .filter(|m| m.classes.contains(&Class::PgControldata))
                .count();
            let of = if total.is_empty() || total == "0" {
                String::new()
            } else {
                format!(" of {total}")
            };
            let mut parts = Vec::new();
            if read_only > 0 {
                parts.push(format!("{read_only}{of} instances on read-only volumes"));
            }
            if empty > 0 {
                parts.push(format!(
                    "{empty}{of} instances with an empty or unreadable PGDATA"
                ));
            }
            if parts.is_empty() {
                parts.push(incident.first_summary.clone());
            }
            let impact = if primary {
                " — primary affected, writes failing"
            } else {
                " — primary healthy, running without those replicas"
            };
            (
                format!(
                    "CloudNativePG cluster {namespace}/{cluster}: {}{impact} — since {since}",
                    parts.join(", ")
                ),
                format!(
                    "Recover each instance as its PVC incident says ({}).",
                    incident
                        .related
                        .iter()
                        .filter(|r| r.starts_with("pvc/"))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
        Subject::Pod { .. } | Subject::Unknown { .. } => (
            format!("{} — since {since}", incident.first_summary),
            incident.first_remediation.clone(),
        ),
    }
}

/// What a node's failures of `class` are, in a node incident's summary.
fn node_failure(class: Class) -> &'static str {
    match class {
        Class::VolumeReadOnly => "file systems gone read-only",
        Class::DiskIoError => "storage I/O errors",
        Class::DiskFull => "full file systems",
        Class::StorageTransport => "storage path (iSCSI/SCSI/NVMe/Ceph) failures",
        Class::NfsFailure => "NFS server failures",
        Class::RaidDegraded => "degraded RAID arrays",
        Class::VolumeMount => "volume mount failures",
        Class::OomKill => "out-of-memory kills",
        Class::NodePressure => "resource pressure and evictions",
        Class::KernelHang => "hung tasks and lockups",
        _ => "failures",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kill_rhythm_is_the_shortest_gap_between_distinct_kills() {
        let s = 1_000_000_000;
        let kills: std::collections::VecDeque<i64> =
            [0, 10 * s, 370 * s, 740 * s, 745 * s, 1110 * s]
                .into_iter()
                .collect();
        assert_eq!(kill_interval_s(&kills), Some(370));
        assert_eq!(kill_interval_s(&[5 * s].into_iter().collect()), None);
        assert_eq!(duration(370), "6m10s");
        assert_eq!(duration(7300), "2h1m");
    }
}
