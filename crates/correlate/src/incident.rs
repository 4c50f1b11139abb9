//! One broken thing over time: `pending → firing → resolved`, and again.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use faultline_core::{Class, Rule, Severity};

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

/// The rule for hits no rule applies to: evidence only; an incident they
/// belong to resolves an hour after its last hit.
pub const EVIDENCE_ONLY: Rule = Rule {
    class: None,
    severity: None,
    threshold: None,
    window_ns: 10 * MINUTE,
    for_ns: 0,
    resolve_after_ns: 60 * MINUTE,
};

const MINUTE: i64 = 60_000_000_000;

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
    /// Times of recent hits per rule (by its index), for the rule's window.
    recent: BTreeMap<usize, VecDeque<i64>>,
    /// Set when a rule's threshold was met: the incident fires at
    /// `fire_at` if that rule's hits keep coming within its window.
    armed: Option<Armed>,
    /// The quiet period of the current cycle: the longest `resolve_after`
    /// among the rules of its hits.
    quiet_ns: i64,
    /// Times of the latest liveness-probe kills (at most [`KILLS`]).
    pub kills: VecDeque<i64>,
}

/// An incident whose rule's threshold was met, waiting out the rule's `for`.
#[derive(Clone, Copy, Debug)]
struct Armed {
    rule: usize,
    fire_at: i64,
    window_ns: i64,
}

/// Values kept per capture name (devices, sessions, paths …).
pub const CAPTURE_VALUES: usize = 16;

/// Probe kills remembered per incident, to measure their rhythm.
pub const KILLS: usize = 64;

impl Incident {
    /// The class the incident is known by: the worst of its classes
    /// ([`Class::headline_rank`]).
    pub fn headline_class(&self) -> Option<Class> {
        self.classes
            .iter()
            .copied()
            .min_by_key(|c| c.headline_rank())
    }

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
            armed: None,
            quiet_ns: 0,
            kills: VecDeque::new(),
        }
    }

    /// Records one hit at `ts` (never earlier than the last one given)
    /// under `rule`, the rule at index `rule_index` of the rule set.
    pub fn observe(&mut self, hit: &crate::Observation, rule_index: usize, rule: &Rule) {
        self.advance(hit.ts);
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
            if values.len() < CAPTURE_VALUES {
                values.insert(value.clone());
            }
        }
        self.keep_evidence(hit.evidence.to_string());
        self.quiet_ns = self.quiet_ns.max(rule.resolve_after_ns);
        let Some(threshold) = rule.threshold else {
            return;
        };
        let recent = self.recent.entry(rule_index).or_default();
        recent.push_back(hit.ts);
        while recent.front().is_some_and(|&t| t < hit.ts - rule.window_ns) {
            recent.pop_front();
        }
        // Pending or resolved: it arms (again) when its rule's threshold is
        // met; hits below it leave a resolved incident resolved.
        if self.state != State::Firing && recent.len() as u32 >= threshold {
            let fire_at = hit.ts + rule.for_ns;
            if self.armed.is_none_or(|a| fire_at < a.fire_at) {
                self.armed = Some(Armed {
                    rule: rule_index,
                    fire_at,
                    window_ns: rule.window_ns,
                });
            }
        }
        self.advance(hit.ts);
    }

    /// Moves time to `now`: an armed incident whose rule's hits kept
    /// coming fires at the end of its `for`; one whose hits stopped for a
    /// window disarms; a firing incident quiet for its quiet period
    /// resolves, at the end of that period.
    pub fn advance(&mut self, now: i64) {
        if let Some(armed) = self.armed {
            let last = self.last_hit_of(armed.rule);
            let still_coming = last.saturating_add(armed.window_ns) >= armed.fire_at;
            if armed.fire_at <= now && still_coming {
                self.armed = None;
                self.fire(armed.fire_at);
            } else if !still_coming && now.saturating_sub(last) >= armed.window_ns {
                self.armed = None;
            }
        }
        if self.state == State::Firing && now - self.last_seen >= self.quiet_ns {
            self.state = State::Resolved;
            self.resolved_at = Some(self.last_seen + self.quiet_ns);
            // A new cycle counts its hits afresh.
            self.recent.clear();
            self.quiet_ns = 0;
        }
    }

    /// The next time [`Incident::advance`] may change something, if any.
    pub fn next_deadline(&self) -> Option<i64> {
        let armed = self.armed.map(|a| {
            a.fire_at
                .min(self.last_hit_of(a.rule).saturating_add(a.window_ns))
        });
        let resolve = (self.state == State::Firing).then(|| self.last_seen + self.quiet_ns);
        match (armed, resolve) {
            (Some(a), Some(r)) => Some(a.min(r)),
            (a, r) => a.or(r),
        }
    }

    /// A condition of class `class` began at `at` (a stream went silent, a
    /// source turned unhealthy): the incident fires at once and stays
    /// firing until [`Incident::condition_ended`].
    pub fn condition_began(&mut self, class: Class, at: i64, evidence: String) {
        self.hits += 1;
        self.last_seen = at;
        self.severity = self.severity.max(Severity::Warning);
        self.classes.insert(class);
        *self
            .signatures
            .entry(class.as_str().to_string())
            .or_insert(0) += 1;
        self.keep_evidence(evidence);
        // Only the condition ending resolves it.
        self.quiet_ns = i64::MAX / 4;
        if self.state != State::Firing {
            self.fire(at);
        }
    }

    /// The condition ended at `at`: the incident resolves then.
    pub fn condition_ended(&mut self, at: i64) {
        if self.state == State::Firing {
            self.state = State::Resolved;
            self.resolved_at = Some(at);
            self.quiet_ns = 0;
        }
    }

    /// Keeps `evidence` if it is among the first or the latest lines.
    fn keep_evidence(&mut self, evidence: String) {
        if self.evidence_first.len() < EVIDENCE {
            self.evidence_first.push(evidence);
        } else {
            if self.evidence_last.len() == EVIDENCE {
                self.evidence_last.pop_front();
            }
            self.evidence_last.push_back(evidence);
        }
    }

    /// Time of the latest hit under the rule at `rule_index` this cycle.
    fn last_hit_of(&self, rule_index: usize) -> i64 {
        self.recent
            .get(&rule_index)
            .and_then(|r| r.back().copied())
            .unwrap_or(i64::MIN)
    }

    fn fire(&mut self, at: i64) {
        self.state = State::Firing;
        self.resolved_at = None;
        self.fired_at.get_or_insert(at);
        self.last_fired_at = Some(at);
        self.fired_count += 1;
    }

    /// When a firing incident resolves if no hit comes before then.
    pub fn resolves_at(&self) -> Option<i64> {
        (self.state == State::Firing).then(|| self.last_seen.saturating_add(self.quiet_ns))
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

    /// The built-in rules, written out: critical at once, warnings at 3
    /// within 10 minutes, info never, restart loops at once; 1 h quiet.
    const RULES: [Rule; 4] = [
        Rule {
            class: Some(Class::RestartLoop),
            threshold: Some(1),
            ..EVIDENCE_ONLY
        },
        Rule {
            severity: Some(Severity::Critical),
            threshold: Some(1),
            ..EVIDENCE_ONLY
        },
        Rule {
            severity: Some(Severity::Warning),
            threshold: Some(3),
            ..EVIDENCE_ONLY
        },
        EVIDENCE_ONLY,
    ];

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

    /// Observes `hit` under the first of `rules` that applies.
    fn observe_with(incident: &mut Incident, hit: &Observation, rules: &[Rule]) {
        let (i, rule) = rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.applies(hit.class, hit.severity))
            .unwrap();
        incident.observe(hit, i, rule);
    }

    fn observe(incident: &mut Incident, hit: &Observation) {
        observe_with(incident, hit, &RULES);
    }

    #[test]
    fn a_critical_hit_fires_at_once_and_resolves_after_the_quiet_period() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        observe(&mut incident, &at(0, Severity::Critical, &l));
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
            observe(&mut incident, &at(ts, Severity::Warning, &l));
        }
        assert_eq!(
            incident.state,
            State::Pending,
            "three warnings, but never three within 10 minutes"
        );
        observe(&mut incident, &at(25 * MINUTE, Severity::Warning, &l));
        observe(&mut incident, &at(27 * MINUTE, Severity::Warning, &l));
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
            observe(&mut incident, &at(i * MINUTE, Severity::Info, &l));
        }
        incident.advance(1000 * MINUTE);
        assert_eq!((incident.state, incident.fired_count), (State::Pending, 0));
    }

    #[test]
    fn a_resolved_incident_fires_again_when_the_failure_returns() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        observe(&mut incident, &at(0, Severity::Critical, &l));
        incident.advance(120 * MINUTE);
        assert_eq!(incident.state, State::Resolved);
        observe(&mut incident, &at(130 * MINUTE, Severity::Critical, &l));
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
        observe(&mut incident, &at(0, Severity::Critical, &l));
        incident.advance(61 * MINUTE);
        observe(&mut incident, &at(70 * MINUTE, Severity::Warning, &l));
        assert_eq!(
            (incident.state, incident.resolved_at),
            (State::Resolved, Some(60 * MINUTE))
        );
        for ts in [71, 72] {
            observe(&mut incident, &at(ts * MINUTE, Severity::Warning, &l));
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
        observe(&mut incident, &hit);
        assert_eq!(
            (incident.state, incident.fired_at),
            (State::Firing, Some(5))
        );
    }

    /// Warnings arm at 2 within 5 minutes and fire once armed for 10
    /// minutes with hits still coming; resolve after 15 quiet minutes.
    const PATIENT: [Rule; 1] = [Rule {
        class: None,
        severity: None,
        threshold: Some(2),
        window_ns: 5 * MINUTE,
        for_ns: 10 * MINUTE,
        resolve_after_ns: 15 * MINUTE,
    }];

    #[test]
    fn a_rule_with_for_fires_only_if_hits_keep_coming_for_that_long() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        // Armed at minute 1; hits every 4 minutes keep it armed.
        for m in [0, 1, 5, 9] {
            observe_with(
                &mut incident,
                &at(m * MINUTE, Severity::Warning, &l),
                &PATIENT,
            );
        }
        assert_eq!(incident.state, State::Pending);
        assert_eq!(incident.next_deadline(), Some(11 * MINUTE));
        incident.advance(11 * MINUTE);
        assert_eq!(
            (incident.state, incident.fired_at),
            (State::Firing, Some(11 * MINUTE)),
            "fires at the end of `for`, not at the next hit"
        );
        // Its own quiet period: 15 minutes after the last hit (minute 9).
        incident.advance(23 * MINUTE);
        assert_eq!(incident.state, State::Firing);
        incident.advance(24 * MINUTE);
        assert_eq!(
            (incident.state, incident.resolved_at),
            (State::Resolved, Some(24 * MINUTE))
        );
    }

    #[test]
    fn an_armed_incident_whose_hits_stop_disarms_and_rearms_afresh() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        // Armed at minute 1, then nothing for more than the 5-minute window.
        for m in [0, 1] {
            observe_with(
                &mut incident,
                &at(m * MINUTE, Severity::Warning, &l),
                &PATIENT,
            );
        }
        incident.advance(7 * MINUTE);
        assert_eq!(incident.next_deadline(), None, "disarmed");
        // The failure comes back at minute 20: armed again from minute 21.
        for m in [20, 21, 25, 29] {
            observe_with(
                &mut incident,
                &at(m * MINUTE, Severity::Warning, &l),
                &PATIENT,
            );
        }
        assert_eq!(incident.state, State::Pending, "not at the old fire time");
        incident.advance(31 * MINUTE);
        assert_eq!(incident.fired_at, Some(31 * MINUTE));
    }

    #[test]
    fn evidence_is_bounded_to_the_first_and_last_lines() {
        let l = BTreeMap::new();
        let mut incident = Incident::new(subject(), 0);
        for i in 0..1000 {
            let evidence = format!("line {i}");
            let mut hit = at(i, Severity::Info, &l);
            hit.evidence = &evidence;
            observe(&mut incident, &hit);
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
