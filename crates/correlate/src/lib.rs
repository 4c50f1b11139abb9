//! faultline's correlator: from hits to incidents.
//!
//! A hit is one line matching one signature; an incident is one broken
//! thing — a PVC, a node, the log pipeline, a workload — with everything
//! seen about it. The correlator resolves each hit to the entity it is about
//! ([`resolve`]), keeps one [`Incident`] per entity key moving through
//! `pending → firing → resolved` by the [`Rule`]s it is given (the
//! `rules:` of the signature library),
//! links incidents that are one story (a PVC, its node, its CloudNativePG
//! cluster, the log pipeline it carries) and writes the remediation with the
//! real names.
//!
//! It never reads a clock: time is what the hits say (replay) or what the
//! caller passes to [`Correlator::advance`] (watch). So replay reproduces
//! exactly what live watching would have done, and tests are exact.

pub mod incident;
pub mod inventory;
pub mod mounts;
mod remedy;
pub mod resolve;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use faultline_core::{Class, Severity};

pub use faultline_core::Rule;
pub use incident::{Incident, State};
pub use inventory::Inventory;
pub use resolve::Subject;

/// One hit, as the correlator needs it.
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    /// When the line was written, UTC ns.
    pub ts: i64,
    /// The signature id.
    pub signature: &'a str,
    /// Its class.
    pub class: Class,
    /// Its severity.
    pub severity: Severity,
    /// The record's labels (namespace, pod, container, node …).
    pub labels: &'a BTreeMap<String, String>,
    /// The signature's captures.
    pub captures: &'a [(String, String)],
    /// The signature's summary, filled in.
    pub summary: &'a str,
    /// The signature's remediation, filled in.
    pub remediation: &'a str,
    /// A line of evidence: where it was seen and what it said.
    pub evidence: &'a str,
}

/// An incident ready to report: its key, state, story and remedy.
#[derive(Clone, Debug)]
pub struct Report {
    /// The entity key.
    pub key: String,
    /// The incident (or the rollup built for it).
    pub incident: Incident,
    /// One sentence: what broke, where, since when.
    pub summary: String,
    /// What to do, with the real names.
    pub remediation: String,
}

/// The keys of the `n` entries with the least ranks, in no order: a
/// linear selection, not a sort, so bounding a table of a hundred
/// thousand entries stays cheap.
pub fn least<'a, R: Ord>(entries: impl Iterator<Item = (R, &'a String)>, n: usize) -> Vec<String> {
    let mut ranked: Vec<(R, &String)> = entries.collect();
    if n < ranked.len() {
        ranked.select_nth_unstable_by(n, |a, b| a.cmp(b));
        ranked.truncate(n);
    }
    ranked.into_iter().map(|(_, key)| key.clone()).collect()
}

/// Most incidents kept at once by default.
pub const MAX_INCIDENTS: usize = 100_000;

/// Turns hits, in time order, into incidents.
#[derive(Debug)]
pub struct Correlator {
    inventory: Inventory,
    rules: Vec<Rule>,
    incidents: HashMap<String, Incident>,
    /// No incident changes by the passing of time before this.
    next_deadline: i64,
    max_incidents: usize,
    /// Incidents dropped to stay within `max_incidents`.
    pub evicted: u64,
    /// What [`Correlator::changes`] last said of each incident: its state
    /// and how many times it had fired.
    announced: HashMap<String, (State, u32)>,
    /// Incidents whose state may have changed since the last
    /// [`Correlator::changes`]: only these (and their neighbours) are
    /// looked at then, so a change costs the same with ten incidents or a
    /// hundred thousand.
    dirty: BTreeSet<String>,
    /// The other way of the links: for each key, the incidents whose
    /// `related` names it (a node's PVCs, a CloudNativePG cluster's
    /// instances).
    linked_from: HashMap<String, BTreeSet<String>>,
}

impl Correlator {
    /// A correlator that resolves entities with `inventory` and fires and
    /// resolves incidents by `rules` (a hit's rule is the first that
    /// applies to it; hits no rule applies to are evidence only).
    pub fn new(inventory: Inventory, rules: &[Rule]) -> Correlator {
        Correlator {
            inventory,
            rules: rules.to_vec(),
            incidents: HashMap::new(),
            next_deadline: i64::MAX,
            announced: HashMap::new(),
            max_incidents: MAX_INCIDENTS,
            evicted: 0,
            dirty: BTreeSet::new(),
            linked_from: HashMap::new(),
        }
    }

    /// Fires and resolves by `rules` from now on (a reload): incidents keep
    /// what they have seen.
    pub fn set_rules(&mut self, rules: &[Rule]) {
        self.rules = rules.to_vec();
    }

    /// Keeps at most `max` incidents; beyond it the one seen longest ago
    /// that is not firing is dropped (and counted in `evicted`).
    pub fn with_max_incidents(mut self, max: usize) -> Correlator {
        self.max_incidents = max.max(1);
        self
    }

    /// Records one hit and returns the key of the entity it is about. Hits
    /// must come in time order.
    pub fn observe(&mut self, hit: &Observation) -> String {
        self.advance(hit.ts);
        let subject = resolve::resolve(hit, &self.inventory);
        let key = subject.key();
        let mut related = subject.related(hit.signature);
        related.extend(resolve::session_volume(hit, &self.inventory));
        if !self.incidents.contains_key(&key) && self.incidents.len() >= self.max_incidents {
            self.evict();
        }
        let incident = self
            .incidents
            .entry(key.clone())
            .or_insert_with(|| Incident::new(subject, hit.ts));
        for other in &related {
            self.linked_from
                .entry(other.clone())
                .or_default()
                .insert(key.clone());
        }
        incident.related.extend(related);
        self.dirty.insert(key.clone());
        let (index, rule) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.applies(hit.class, hit.severity))
            .map_or((usize::MAX, &incident::EVIDENCE_ONLY), |(i, r)| (i, r));
        incident.observe(hit, index, rule);
        if let Some(deadline) = incident.next_deadline() {
            self.next_deadline = self.next_deadline.min(deadline);
        }
        key
    }

    /// Stream `name` (e.g. `<namespace>/<pod>/<container>`) has been silent
    /// since its last line at `last_line` for its limit `limit_ns`: called
    /// at `last_line + limit_ns`, in time order with the hits. Its
    /// `stream/<name>` incident fires at once and stays firing until
    /// [`Correlator::stream_resumed`].
    pub fn stream_silent(&mut self, name: &str, last_line: i64, limit_ns: i64) -> String {
        let evidence = format!(
            "no line from {name} since {} (limit {} s)",
            jiff::Timestamp::from_nanosecond(i128::from(last_line))
                .map(|t| format!("{t:.0}"))
                .unwrap_or_default(),
            limit_ns / 1_000_000_000
        );
        self.condition_began(
            Subject::Stream { name: name.into() },
            Class::StreamSilent,
            last_line.saturating_add(limit_ns),
            evidence,
        )
    }

    /// Stream `name` spoke again at `at`: its silence incident resolves.
    pub fn stream_resumed(&mut self, name: &str, at: i64) {
        self.condition_ended(&Subject::Stream { name: name.into() }, at);
    }

    /// The log source `name` (`loki`) turned unhealthy at `at` for
    /// `reason`: the `pipeline/<name>` incident fires at once and stays
    /// firing until [`Correlator::source_healthy`].
    pub fn source_unhealthy(&mut self, name: &str, at: i64, reason: &str) -> String {
        self.condition_began(
            Subject::Pipeline { name: name.into() },
            Class::PipelineUnhealthy,
            at,
            format!("{name} is unhealthy: {reason}"),
        )
    }

    /// The log source `name` is healthy again at `at`.
    pub fn source_healthy(&mut self, name: &str, at: i64) {
        self.condition_ended(&Subject::Pipeline { name: name.into() }, at);
    }

    fn condition_began(
        &mut self,
        subject: Subject,
        class: Class,
        at: i64,
        evidence: String,
    ) -> String {
        self.advance(at);
        let key = subject.key();
        if !self.incidents.contains_key(&key) && self.incidents.len() >= self.max_incidents {
            self.evict();
        }
        let incident = self
            .incidents
            .entry(key.clone())
            .or_insert_with(|| Incident::new(subject, at));
        incident.condition_began(class, at, evidence);
        self.dirty.insert(key.clone());
        key
    }

    fn condition_ended(&mut self, subject: &Subject, at: i64) {
        self.advance(at);
        let key = subject.key();
        if let Some(incident) = self.incidents.get_mut(&key) {
            incident.condition_ended(at);
            self.dirty.insert(key);
        }
    }

    /// How many incidents fire now, by kind (the key's first part: `pvc`,
    /// `node`, `pipeline` …), headline class (`none` for an incident of
    /// no known class) and severity.
    pub fn firing(&self) -> BTreeMap<(&str, &'static str, Severity), usize> {
        let mut counts = BTreeMap::new();
        for (key, incident) in &self.incidents {
            if incident.state == State::Firing {
                let kind = key.split('/').next().unwrap_or(key);
                let class = incident.headline_class().map_or("none", Class::as_str);
                *counts.entry((kind, class, incident.severity)).or_insert(0) += 1;
            }
        }
        counts
    }

    /// The inventory, to add what is learnt as hits arrive (object lists
    /// and mount tables found among replayed inputs).
    pub fn inventory_mut(&mut self) -> &mut Inventory {
        &mut self.inventory
    }

    /// Moves time to `now`: incidents fire at the end of their rule's
    /// `for` and resolve after their quiet period.
    pub fn advance(&mut self, now: i64) {
        if now < self.next_deadline {
            return;
        }
        self.next_deadline = i64::MAX;
        for (key, incident) in self.incidents.iter_mut() {
            let was = (incident.state, incident.fired_count);
            incident.advance(now);
            if (incident.state, incident.fired_count) != was {
                self.dirty.insert(key.clone());
            }
            if let Some(deadline) = incident.next_deadline() {
                self.next_deadline = self.next_deadline.min(deadline);
            }
        }
    }

    /// Drops the incidents seen longest ago — not firing ones first — a
    /// hundredth of the limit at a time, so a flood of new keys costs one
    /// pass per batch, not per key.
    fn evict(&mut self) {
        let batch = (self.max_incidents / 100).max(1);
        let oldest = least(
            self.incidents
                .iter()
                .map(|(k, i)| ((i.state == State::Firing, i.last_seen), k)),
            batch,
        );
        for key in oldest {
            let Some(incident) = self.incidents.remove(&key) else {
                continue;
            };
            self.evicted += 1;
            self.dirty.remove(&key);
            self.announced.remove(&key);
            for other in &incident.related {
                let Some(from) = self.linked_from.get_mut(other) else {
                    continue;
                };
                from.remove(&key);
                if from.is_empty() {
                    self.linked_from.remove(other);
                    // A rollup lives as long as one of its instances.
                    if other.starts_with("cnpg/") {
                        self.announced.remove(other);
                    }
                }
            }
        }
    }

    /// The incidents that fired, fired again or resolved since the last
    /// call (pending ones are not news), with their story: what `watch`
    /// prints and sends as it happens.
    pub fn changes(&mut self) -> Vec<Report> {
        let mut keys = std::mem::take(&mut self.dirty);
        // A CloudNativePG rollup changes with its instances.
        let rollups: Vec<String> = keys
            .iter()
            .filter_map(|k| self.incidents.get(k))
            .flat_map(|i| i.related.iter().filter(|r| r.starts_with("cnpg/")).cloned())
            .collect();
        keys.extend(rollups);
        let mut changed = Vec::new();
        for report in self.reports_of(&keys) {
            let now = (report.incident.state, report.incident.fired_count);
            if report.incident.state == State::Pending
                || self.announced.get(&report.key) == Some(&now)
            {
                continue;
            }
            self.announced.insert(report.key.clone(), now);
            changed.push(report);
        }
        changed
    }

    /// Every incident with its story, rollups per CloudNativePG cluster
    /// included, links made both ways, ordered by first sight.
    pub fn reports(&self) -> Vec<Report> {
        let incidents = self
            .incidents
            .iter()
            .map(|(k, i)| (k.clone(), i.clone()))
            .collect();
        self.tell(incidents, None)
    }

    /// The reports of `keys` (incidents and rollups), as
    /// [`Correlator::reports`] has them, built from their neighbourhood
    /// only: what they link to, what links to them, and the instances of
    /// the CloudNativePG clusters among those.
    pub fn reports_of(&self, keys: &BTreeSet<String>) -> Vec<Report> {
        let linked = |key: &String| -> Vec<String> {
            let to = self.incidents.get(key).into_iter().flat_map(|i| &i.related);
            let from = self.linked_from.get(key).into_iter().flatten();
            to.chain(from).cloned().collect()
        };
        let mut near: BTreeSet<String> = keys.clone();
        for key in keys {
            near.extend(linked(key));
        }
        let clusters: Vec<String> = near
            .iter()
            .flat_map(linked)
            .filter(|k| k.starts_with("cnpg/"))
            .collect();
        for cluster in &clusters {
            near.extend(self.linked_from.get(cluster).into_iter().flatten().cloned());
        }
        let incidents = near
            .iter()
            .filter_map(|k| Some((k.clone(), self.incidents.get(k)?.clone())))
            .collect();
        self.tell(incidents, Some(keys))
    }

    /// Adds the rollups to `incidents`, makes the links go both ways
    /// among them and tells the story of each — of those in `only`, if
    /// given — ordered by first sight.
    fn tell(
        &self,
        mut incidents: BTreeMap<String, Incident>,
        only: Option<&BTreeSet<String>>,
    ) -> Vec<Report> {
        remedy::add_rollups(&mut incidents, &self.inventory);
        // Links go both ways: a PVC that names its node makes the node name it.
        let links: Vec<(String, String)> = incidents
            .iter()
            .flat_map(|(k, i)| i.related.iter().map(move |r| (r.clone(), k.clone())))
            .collect();
        for (from, to) in links {
            if let Some(incident) = incidents.get_mut(&from) {
                incident.related.insert(to);
            }
        }
        let keys: BTreeSet<String> = incidents.keys().cloned().collect();
        for incident in incidents.values_mut() {
            incident.related.retain(|r| keys.contains(r));
        }
        let mut reports: Vec<Report> = incidents
            .iter()
            .filter(|(key, _)| only.is_none_or(|only| only.contains(*key)))
            .map(|(key, incident)| {
                let (summary, remediation) = remedy::story(incident, &incidents, &self.inventory);
                Report {
                    key: key.clone(),
                    incident: incident.clone(),
                    summary,
                    remediation,
                }
            })
            .collect();
        reports
            .sort_by(|a, b| (a.incident.first_seen, &a.key).cmp(&(b.incident.first_seen, &b.key)));
        reports
    }
}

#[cfg(test)]
mod tests;
