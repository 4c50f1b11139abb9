//! One broken thing over time: `pending → firing → resolved`, and again.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use faultline_core::{Class, Severity};

use crate::resolve::Subject;

/// Where an incident is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Seen, not (yet) enough to page.
    Pending,
    /// Paging.
    Firing,
    /// Quiet for the rule's quiet period after firing.
    Resolved,
}

impl State {
    /// `pending`, `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Firing => "firing",
            State::Resolved => "resolved",
        }
    }
}

/// When hits of one severity make an incident fire, and when it resolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Hits within `window_ns` that make it fire; `None`: never on their own.
    pub threshold: Option<u32>,
    /// The counting window.
    pub window_ns: i64,
}

/// Quiet time after the last hit after which a firing incident resolves.
pub const QUIET_NS: i64 = 60 * MINUTE;

const MINUTE: i64 = 60_000_000_000;

/// The default rules: a critical hit fires at once; warnings fire at 3
/// within 10 minutes; info hits are evidence only — except a restart
/// back-off, which fires at once whatever its severity: kubelet only backs
/// off after a container has already failed again and again. Every
/// incident resolves after an hour without hits.
pub fn default_rule(class: Class, severity: Severity) -> Rule {
    let threshold = match (class, severity) {
        (Class::RestartLoop, _) | (_, Severity::Critical) => Some(1),
        (_, Severity::Warning) => Some(3),
        (_, Severity::Info) => None,
    };
    Rule {
        threshold,
        window_ns: 10 * MINUTE,
    }
}

/// Evidence lines kept at each end of an incident.
pub const EVIDENCE: usize = 3;

/// One broken thing and what was seen of it.
#[derive(Clone, Debug)]
pub struct Incident {
    /// The entity and what is known of it.
    pub subject: Subject,
    /// Where it is in its life.
    pub state: State,
    /// The most severe hit seen.
    pub severity: Severity,
    /// Classes of the hits.
    pub classes: BTreeSet<Class>,
    /// Hits per signature id.
    pub signatures: BTreeMap<String, u64>,
    /// All hits.
    pub hits: u64,
    /// First hit (UTC ns).
    pub first_seen: i64,
    /// When it first fired.
    pub fired_at: Option<i64>,
    /// When it last started firing (after resolving, it can fire again).
    pub last_fired_at: Option<i64>,
    /// Last hit.
    pub last_seen: i64,
    /// When it resolved, if it has.
    pub resolved_at: Option<i64>,
    /// How many times it fired.
    pub fired_count: u32,
    /// Other incidents' keys it is part of or caused by.
    pub related: BTreeSet<String>,
    /// Capture values seen (devices, paths …), a few per name.
    pub captures: BTreeMap<String, BTreeSet<String>>,
    /// The first hit's summary and its signature's remediation.
    pub first_summary: String,
    pub first_remediation: String,
    /// The first and the latest few evidence lines.
    pub evidence_first: Vec<String>,
    pub evidence_last: VecDeque<String>,
    /// Times of recent hits per severity, for the rule's window.
    recent: BTreeMap<Severity, VecDeque<i64>>,
    /// Times of the latest liveness-probe kills (at most [`KILLS`]).
    pub kills: VecDeque<i64>,
}

/// Probe kills remembered per incident, to measure their rhythm.
pub const KILLS: usize = 64;

impl Incident {
    /// A new pending incident about `subject`, first seen at `ts`.
    pub fn new(subject: Subject, ts: i64) -> Incident {
        Incident {
            subject,
            state: State::Pending,
            severity: Severity::Info,
            classes: BTreeSet::new(),
            signatures: BTreeMap::new(),
            hits: 0,
            first_seen: ts,
            fired_at: None,
            last_fired_at: None,
            last_seen: ts,
            resolved_at: None,
            fired_count: 0,
            related: BTreeSet::new(),
            captures: BTreeMap::new(),
            first_summary: String::new(),
            first_remediation: String::new(),
            evidence_first: Vec::new(),
            evidence_last: VecDeque::new(),
            recent: BTreeMap::new(),
            kills: VecDeque::new(),
        }
    }

    /// Records one hit at `ts` (never earlier than the last one given).
    pub fn observe(&mut self, hit: &crate::Observation, rule: impl Fn(Class, Severity) -> Rule) {
        if self.hits == 0 {
            self.first_summary = hit.summary.to_string();
            self.first_remediation = hit.remediation.to_string();
        }
        self.hits += 1;
        self.last_seen = hit.ts;
        self.severity = self.severity.max(hit.severity);
        self.classes.insert(hit.class);
        if hit.class == Class::ProbeKill {
            if self.kills.len() == KILLS {
                self.kills.pop_front();
            }
            self.kills.push_back(hit.ts);
        }
        *self
            .signatures
            .entry(hit.signature.to_string())
            .or_insert(0) += 1;
        for (name, value) in hit.captures {
            let values = self.captures.entry(name.clone()).or_default();
            if values.len() < 16 {
                values.insert(value.clone());
            }
        }
        if self.evidence_first.len() < EVIDENCE {
            self.evidence_first.push(hit.evidence.to_string());
        } else {
            if self.evidence_last.len() == EVIDENCE {
                self.evidence_last.pop_front();
            }
            self.evidence_last.push_back(hit.evidence.to_string());
        }
        let rule = rule(hit.class, hit.severity);
        let Some(threshold) = rule.threshold else {
            return;
        };
        let recent = self.recent.entry(hit.severity).or_default();
        recent.push_back(hit.ts);
        while recent.front().is_some_and(|&t| t < hit.ts - rule.window_ns) {
            recent.pop_front();
        }
        // Pending or resolved: it fires (again) when its rule says so; hits
        // below the rule's threshold leave a resolved incident resolved.
        if self.state != State::Firing && recent.len() as u32 >= threshold {
            self.state = State::Firing;
            self.resolved_at = None;
            self.fired_at.get_or_insert(hit.ts);
            self.last_fired_at = Some(hit.ts);
            self.fired_count += 1;
        }
    }

    /// Moves time to `now`: a firing incident quiet for [`QUIET_NS`]
    /// resolves, at the end of that period.
    pub fn advance(&mut self, now: i64) {
        if self.state == State::Firing && now - self.last_seen >= QUIET_NS {
            self.state = State::Resolved;
            self.resolved_at = Some(self.last_seen + QUIET_NS);
            // A new cycle counts its hits afresh.
            self.recent.clear();
        }
    }

    /// Evidence lines, oldest first.
    pub fn evidence(&self) -> impl Iterator<Item = &String> {
        self.evidence_first.iter().chain(self.evidence_last.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Observation;

    fn subject() -> Subject {
        Subject::Node { name: "n1".into() }
    }

    fn at<'a>(
        ts: i64,
        severity: Severity,
        labels: &'a BTreeMap<String, String>,
    ) -> Observation<'a> {
        Observation {
            ts,
            signature: "sig",
            class: Class::DiskIoError,
            severity,
            labels,
            captures: &[],
            summary: "s",
            remediation: "r",
            evidence: "e",
        }
    }

    #[test]
    fn a_critical_hit_fires_at_once_and_resolves_after_the_quiet_period() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        incident.observe(&at(0, Severity::Critical, &l), default_rule);
        assert_eq!(
            (incident.state, incident.fired_at),
            (State::Firing, Some(0))
        );
        incident.advance(59 * MINUTE);
        assert_eq!(incident.state, State::Firing, "not quiet long enough");
        incident.advance(60 * MINUTE);
        assert_eq!(
            (incident.state, incident.resolved_at),
            (State::Resolved, Some(60 * MINUTE))
        );
    }

    #[test]
    fn warnings_fire_at_three_within_the_window_only() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        for ts in [0, 11 * MINUTE, 22 * MINUTE] {
            incident.observe(&at(ts, Severity::Warning, &l), default_rule);
        }
        assert_eq!(
            incident.state,
            State::Pending,
            "three warnings, but never three within 10 minutes"
        );
        incident.observe(&at(25 * MINUTE, Severity::Warning, &l), default_rule);
        incident.observe(&at(27 * MINUTE, Severity::Warning, &l), default_rule);
        assert_eq!(
            (incident.state, incident.fired_at),
            (State::Firing, Some(27 * MINUTE))
        );
    }

    #[test]
    fn info_hits_never_fire_and_a_pending_incident_never_resolves() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        for i in 0..100 {
            incident.observe(&at(i * MINUTE, Severity::Info, &l), default_rule);
        }
        incident.advance(1000 * MINUTE);
        assert_eq!((incident.state, incident.fired_count), (State::Pending, 0));
    }

    #[test]
    fn a_resolved_incident_fires_again_when_the_failure_returns() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        incident.observe(&at(0, Severity::Critical, &l), default_rule);
        incident.advance(120 * MINUTE);
        assert_eq!(incident.state, State::Resolved);
        incident.observe(&at(130 * MINUTE, Severity::Critical, &l), default_rule);
        assert_eq!(
            (incident.state, incident.fired_at, incident.fired_count),
            (State::Firing, Some(0), 2)
        );
        assert_eq!(incident.last_fired_at, Some(130 * MINUTE));
        assert_eq!(incident.resolved_at, None);
        assert_eq!(incident.first_seen, 0);
    }

    #[test]
    fn a_stray_warning_after_resolution_does_not_reopen_it() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        incident.observe(&at(0, Severity::Critical, &l), default_rule);
        incident.advance(61 * MINUTE);
        incident.observe(&at(70 * MINUTE, Severity::Warning, &l), default_rule);
        assert_eq!(
            (incident.state, incident.resolved_at),
            (State::Resolved, Some(60 * MINUTE))
        );
        for ts in [71, 72] {
            incident.observe(&at(ts * MINUTE, Severity::Warning, &l), default_rule);
        }
        assert_eq!(
            (incident.state, incident.resolved_at, incident.fired_count),
            (State::Firing, None, 2)
        );
    }

    #[test]
    fn a_restart_back_off_fires_at_once_even_as_a_warning() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        let mut hit = at(5, Severity::Warning, &l);
        hit.class = Class::RestartLoop;
        incident.observe(&hit, default_rule);
        assert_eq!(
            (incident.state, incident.fired_at),
            (State::Firing, Some(5))
        );
    }

    #[test]
    fn evidence_is_bounded_to_the_first_and_last_lines() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        for i in 0..1000 {
            let evidence = format!("line {i}");
            let mut hit = at(i, Severity::Info, &l);
            hit.evidence = &evidence;
            incident.observe(&hit, default_rule);
        }
        let kept: Vec<&String> = incident.evidence().collect();
        assert_eq!(
            kept,
            [
                "line 0", "line 1", "line 2", "line 997", "line 998", "line 999"
            ]
        );
        assert_eq!(incident.hits, 1000);
    }
}
