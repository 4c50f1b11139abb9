//! What a stream shows besides its hits, for correlation to name things
//! by: the run of the container whose log it is (when it started, when it
//! last spoke, its last lines) and, in a node's kernel log, which disk
//! each iSCSI session is. `replay` and `watch` collect them the same way
//! from the same buffers; `watch` puts them into the inventory as they
//! grow, `replay` once each stream is read.

mod iscsi;
mod runs;

use std::path::Path;

use faultline_core::SourceKind;
use faultline_correlate::Inventory;
use faultline_correlate::inventory::ContainerRun;
use faultline_formats::{Decoder, Labels};

pub use iscsi::IscsiTracker;
pub use runs::RunTracker;

pub use faultline_sources::overlap::ContainerKey;

/// The facts one stream shows.
#[derive(Debug, Default)]
pub struct Facts {
    /// The run of the container whose log this is, when the labels name
    /// one.
    run: Option<(ContainerKey, RunTracker)>,
    /// iSCSI sessions and their disks, for a node's kernel log: (node, …).
    iscsi: Option<(String, IscsiTracker)>,
}

impl Facts {
    /// What to track of a stream with these labels, read from `path` if
    /// it is a file: the run of a container whose log file holds one run
    /// ([`is_run_file`]), the iSCSI sessions of a node's log.
    pub fn of(labels: &Labels, path: Option<&Path>) -> Facts {
        let one_run = path.is_some_and(is_run_file);
        Facts {
            run: container_key(labels)
                .filter(|_| one_run)
                .map(|key| (key, RunTracker::default())),
            iscsi: labels
                .get("node")
                .map(|node| (node.clone(), IscsiTracker::default())),
        }
    }

    /// Takes in one buffer of whole lines, in stream order.
    pub fn buffer(&mut self, decoder: &Decoder, buf: &[u8]) {
        if let Some((_, run)) = &mut self.run {
            run.buffer(decoder, buf);
        }
        if let Some((_, iscsi)) = &mut self.iscsi
            && decoder.format.source_kind() == Some(SourceKind::Kernel)
        {
            iscsi.buffer(buf);
        }
    }

    /// Continues these facts with `next`, the next part of the same file.
    pub fn follow(&mut self, next: Facts) {
        if let (Some((_, run)), Some((_, more))) = (&mut self.run, next.run) {
            run.follow(more);
        }
        if let (Some((_, iscsi)), Some((_, more))) = (&mut self.iscsi, next.iscsi) {
            iscsi.follow(more);
        }
    }

    /// The container's run so far, if the stream is a container's log
    /// with a dated line.
    pub fn run(&self) -> Option<(&ContainerKey, ContainerRun)> {
        let (key, run) = self.run.as_ref()?;
        Some((key, run.current()?))
    }

    /// The iSCSI sessions seen: (node, session, disks).
    pub fn iscsi(&self) -> Vec<(String, u32, Vec<String>)> {
        self.iscsi
            .iter()
            .flat_map(|(node, iscsi)| {
                iscsi
                    .sessions()
                    .into_iter()
                    .map(|(session, disks)| (node.clone(), session, disks))
            })
            .collect()
    }

    /// Takes its run out of `inventory` again (its stream is let go, so
    /// that what the inventory holds stays bounded by the streams kept).
    pub fn withdraw(&self, inventory: &mut Inventory) {
        if let Some(((namespace, pod, container), _)) = &self.run {
            inventory.forget_runs(namespace, pod, container);
        }
    }

    /// Puts what is known so far into `inventory` (again as it grows: a
    /// run is replaced by its longer self).
    pub fn apply(&self, inventory: &mut Inventory) {
        if let Some(((namespace, pod, container), run)) = self.run() {
            inventory.add_run(namespace, pod, container, run);
        }
        for (node, session, disks) in self.iscsi() {
            for disk in disks {
                inventory.add_iscsi_disk(&node, session, &disk);
            }
        }
    }
}

/// Whether `path` is one run of a container, as the kubelet writes them:
/// `<container>/<restart count>.log`, or that file rotated
/// (`0.log.20260219-030405`, `….gz`). A stream from Loki or a push
/// carries every run of a container, and tells no run apart.
pub fn is_run_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.split_once(".log")
        .is_some_and(|(count, _)| !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()))
}

/// (namespace, pod, container) when the labels name all three: a pod's
/// container log in the kubelet layout.
fn container_key(labels: &Labels) -> Option<ContainerKey> {
    Some((
        labels.get("namespace")?.clone(),
        labels.get("pod")?.clone(),
        labels.get("container")?.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_file_is_a_restart_count_in_the_kubelet_layout() {
        for run in [
            "/var/log/pods/ns_pod_uid/postgres/0.log",
            "/var/log/pods/ns_pod_uid/postgres/3387.log",
            "/var/log/pods/ns_pod_uid/postgres/0.log.20260219-030405",
            "/var/log/pods/ns_pod_uid/postgres/0.log.20260219-030405.gz",
        ] {
            assert!(is_run_file(Path::new(run)), "{run}");
        }
        for not in [
            "/var/log/containers/pod_ns_c-abc.log",
            "/var/log/syslog",
            "-",
            "app.log",
        ] {
            assert!(!is_run_file(Path::new(not)), "{not}");
        }
    }
}
