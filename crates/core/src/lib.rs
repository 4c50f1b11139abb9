//! faultline's shared vocabulary.
//!
//! Every other crate speaks in these terms: how bad a failure is
//! ([`Severity`]), what kind of thing broke ([`Class`]), where a log record
//! came from ([`SourceKind`]) and which record labels a template may name
//! ([`LABEL_NAMES`]), plus the retry schedule every network client uses
//! ([`Backoff`]). The crate does no I/O, so it can be shared by the
//! matcher, the correlator, the sources and the sinks without dragging
//! anything along.
//!
//! The names are part of faultline's contracts (signature files, JSON output,
//! alert labels): renaming one is a breaking change.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Declares a closed vocabulary: an enum whose variants print and parse as
/// fixed kebab-case names, with the full list available for error messages.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+ }

        impl $name {
            /// Every name of the vocabulary, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name used in files, output and alert labels.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The accepted names, comma-separated, for error messages.
            pub fn expected() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName { given: s.to_string(), expected: Self::expected() }),
                }
            }
        }
    };
}

/// A name outside a closed vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What was given.
    pub given: String,
    /// The accepted names, comma-separated.
    pub expected: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown value {:?}; expected one of: {}",
            self.given, self.expected
        )
    }
}

impl std::error::Error for UnknownName {}

vocabulary! {
    /// How urgent a failure is. Ordered: `Info < Warning < Critical`.
    pub enum Severity {
        /// Evidence that only matters next to other hits.
        Info => "info",
        /// Needs attention soon.
        Warning => "warning",
        /// Pages: data at risk or a service down.
        Critical => "critical",
    }
}

vocabulary! {
    /// What kind of thing broke. Correlation and alert names key on it.
    pub enum Class {
        /// A filesystem or volume is read-only.
        VolumeReadOnly => "volume-read-only",
        /// Block-device or filesystem I/O error, journal abort, corruption.
        DiskIoError => "disk-io-error",
        /// iSCSI / SCSI transport trouble: session drops, offline devices, write protect.
        StorageTransport => "storage-transport",
        /// Volume attach or mount failure.
        VolumeMount => "volume-mount",
        /// No space left on a volume.
        DiskFull => "disk-full",
        /// `pg_controldata` fails: missing, empty or unreadable PGDATA.
        PgControldata => "pg-controldata",
        /// CloudNativePG cannot read an instance's status.
        PgInstanceStatus => "pg-instance-status",
        /// PostgreSQL WAL archiving fails.
        PgWalArchive => "pg-wal-archive",
        /// The log pipeline refuses or fails pushes.
        LogPushFailure => "log-push-failure",
        /// A liveness, readiness or startup probe fails.
        ProbeFailure => "probe-failure",
        /// A container is killed because its liveness probe failed.
        ProbeKill => "probe-kill",
        /// A container is in restart back-off.
        RestartLoop => "restart-loop",
        /// A container or process is killed for memory.
        OomKill => "oom-kill",
        /// Node-level resource pressure and evictions.
        NodePressure => "node-pressure",
        /// Hung tasks and soft lockups.
        KernelHang => "kernel-hang",
        /// A PostgreSQL standby cannot follow or rejoin its primary (WAL
        /// segment removed, timeline divergence, a different system
        /// identifier, pg_rewind or pg_basebackup failing).
        PgReplication => "pg-replication",
        /// PostgreSQL's data directory is empty, partial or not a cluster.
        PgDataMissing => "pg-data-missing",
        /// A log or metrics store cannot write its own data (WAL, index,
        /// chunks, compaction).
        LogStoreFailure => "log-store-failure",
        /// An NFS server does not answer, or a file handle went stale.
        NfsFailure => "nfs-failure",
        /// A software RAID array lost a disk and runs degraded.
        RaidDegraded => "raid-degraded",
        /// A log stream that should speak has been silent past its limit.
        StreamSilent => "stream-silent",
        /// A log pipeline source (Loki) refuses, fails or ingests nothing.
        PipelineUnhealthy => "pipeline-unhealthy",
    }
}

impl Class {
    /// How bad it is next to the others, 0 the worst: an incident is known
    /// by its worst class (a PVC that is read-only *and* whose PGDATA is
    /// gone is a `pg-controldata` incident, and its alert is named so).
    pub fn headline_rank(self) -> u8 {
        match self {
            Class::PgControldata => 0,
            Class::PgDataMissing => 1,
            Class::VolumeReadOnly => 2,
            Class::DiskFull => 3,
            Class::DiskIoError => 4,
            Class::StorageTransport => 5,
            Class::NfsFailure => 6,
            Class::RaidDegraded => 7,
            Class::VolumeMount => 8,
            Class::PgReplication => 9,
            Class::PgWalArchive => 10,
            Class::PgInstanceStatus => 11,
            Class::LogStoreFailure => 12,
            Class::LogPushFailure => 13,
            Class::PipelineUnhealthy => 14,
            Class::ProbeKill => 15,
            Class::OomKill => 16,
            Class::RestartLoop => 17,
            Class::ProbeFailure => 18,
            Class::NodePressure => 19,
            Class::KernelHang => 20,
            Class::StreamSilent => 21,
        }
    }

    /// The Alertmanager `alertname` of an incident known by this class.
    pub fn alert_name(self) -> &'static str {
        match self {
            Class::PgControldata => "FaultlinePostgresControlData",
            Class::PgDataMissing => "FaultlinePostgresDataMissing",
            Class::PgReplication => "FaultlinePostgresReplication",
            Class::LogStoreFailure => "FaultlineLogStoreFailing",
            Class::NfsFailure => "FaultlineNFSFailure",
            Class::RaidDegraded => "FaultlineRaidDegraded",
            Class::VolumeReadOnly => "FaultlineVolumeReadOnly",
            Class::DiskFull => "FaultlineDiskFull",
            Class::DiskIoError => "FaultlineDiskIOError",
            Class::StorageTransport => "FaultlineStorageTransport",
            Class::VolumeMount => "FaultlineVolumeMountFailed",
            Class::PgWalArchive => "FaultlinePostgresWalArchive",
            Class::PgInstanceStatus => "FaultlinePostgresInstance",
            Class::LogPushFailure | Class::PipelineUnhealthy => "FaultlineLogPipelineDown",
            Class::ProbeKill => "FaultlineProbeRestartLoop",
            Class::OomKill => "FaultlineOOMKilled",
            Class::RestartLoop => "FaultlineCrashLoop",
            Class::ProbeFailure => "FaultlineProbeFailing",
            Class::NodePressure => "FaultlineNodePressure",
            Class::KernelHang => "FaultlineKernelHang",
            Class::StreamSilent => "FaultlineStreamSilent",
        }
    }
}

vocabulary! {
    /// Where a record came from, as far as signature scoping is concerned.
    pub enum SourceKind {
        /// The kernel ring buffer (dmesg, `/dev/kmsg`, journald kernel transport).
        Kernel => "kernel",
        /// A node service: kubelet, containerd, iscsid, systemd units.
        Node => "node",
        /// A container's own log.
        Pod => "pod",
        /// Kubernetes Events.
        Events => "events",
    }
}

/// When an incident fires and when it resolves, for the hits of one class
/// and/or severity. Rules come from the `rules:` sections of signature
/// files; the first rule that applies to a hit is its rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The class it applies to; `None`: any.
    pub class: Option<Class>,
    /// The severity it applies to; `None`: any.
    pub severity: Option<Severity>,
    /// Hits within `window_ns` that arm the incident; `None`: hits under
    /// this rule never fire it (evidence only).
    pub threshold: Option<u32>,
    /// The counting window, ns.
    pub window_ns: i64,
    /// How long the incident must stay armed (hits keep coming within the
    /// window) before it fires, ns; 0 fires at once.
    pub for_ns: i64,
    /// Quiet time after the last hit after which a firing incident
    /// resolves, ns.
    pub resolve_after_ns: i64,
}

impl Rule {
    /// Whether the rule applies to a hit of `class` and `severity`.
    pub fn applies(&self, class: Class, severity: Severity) -> bool {
        self.class.is_none_or(|c| c == class) && self.severity.is_none_or(|s| s == severity)
    }
}

/// Record labels that signature templates may name besides their captures.
pub const LABEL_NAMES: &[&str] = &["namespace", "pod", "container", "node", "pvc", "source"];

/// Jittered exponential backoff: 250 ms doubling to 30 s, each wait
/// between 80 % and 120 % of the step so clients do not retry in lockstep.
#[derive(Debug)]
pub struct Backoff {
    step: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(30);

    pub fn new() -> Backoff {
        Backoff { step: Self::FIRST }
    }

    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.step.mul_f64(0.8 + 0.4 * fastrand::f64());
        self.step = (self.step * 2).min(Self::MAX);
        wait
    }

    /// After a success: start again from the shortest wait.
    pub fn reset(&mut self) {
        self.step = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_own_rank_and_an_alert_name() {
        let mut ranks: Vec<u8> = Class::ALL.iter().map(|c| c.headline_rank()).collect();
        ranks.sort_unstable();
        ranks.dedup();
        assert_eq!(ranks.len(), Class::ALL.len(), "ranks are a total order");
        for class in Class::ALL {
            let name = class.alert_name();
            assert!(
                name.starts_with("Faultline") && name.chars().all(|c| c.is_ascii_alphanumeric()),
                "{class}: {name}"
            );
        }
        let mut worst_first = Class::ALL.to_vec();
        worst_first.sort_by_key(|c| c.headline_rank());
        assert_eq!(worst_first[0], Class::PgControldata);
        assert_eq!(worst_first.last(), Some(&Class::StreamSilent));
    }

    #[test]
    fn backoff_grows_with_jitter_caps_and_resets() {
        let mut backoff = Backoff::new();
        let first = backoff.next_wait();
        assert!((200..=300).contains(&first.as_millis()), "{first:?}");
        for _ in 0..20 {
            let wait = backoff.next_wait();
            assert!(wait <= Duration::from_secs(36), "{wait:?}");
        }
        assert!(
            backoff.next_wait() >= Duration::from_secs(24),
            "capped at 30 s ± 20 %"
        );
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_millis(300));
    }

    #[test]
    fn names_round_trip() {
        for class in Class::ALL {
            assert_eq!(class.as_str().parse::<Class>(), Ok(*class));
        }
        for severity in Severity::ALL {
            assert_eq!(severity.to_string().parse::<Severity>(), Ok(*severity));
        }
    }

    #[test]
    fn unknown_name_lists_the_vocabulary() {
        let err = "fatal".parse::<Severity>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown value \"fatal\"; expected one of: info, warning, critical"
        );
    }

    #[test]
    fn severities_are_ordered_by_urgency() {
        assert!(Severity::Info < Severity::Warning);
        assert!(Severity::Warning < Severity::Critical);
    }
}
