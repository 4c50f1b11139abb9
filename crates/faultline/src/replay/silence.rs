//! Absence: log streams that were active and went quiet for longer than
//! their limit (`--silence`). A stream is a pod's container (all its run
//! files together) or, for other inputs, the input itself. Silence is
//! measured between dated lines, by event time, exactly as `watch`
//! measures it against the clock; a stream still silent at the end of the
//! replay (the latest dated line of any input) is silent until then.

use std::collections::BTreeMap;

use faultline_formats::Labels;

/// `--silence LIMIT[@LABEL=VALUE,…]`: streams whose path labels include
/// every `LABEL=VALUE` are silent after `LIMIT` without a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilenceRule {
    /// The limit, ns.
    pub limit_ns: i64,
    /// Labels a stream must have (none: every stream).
    pub selector: Vec<(String, String)>,
}

impl std::str::FromStr for SilenceRule {
    type Err = String;

    fn from_str(text: &str) -> Result<SilenceRule, String> {
        let (limit, selector) = text.split_once('@').unwrap_or((text, ""));
        let limit_ns = faultline_signatures::parse_duration(limit)
            .filter(|&ns| ns > 0)
            .ok_or_else(|| {
                format!("{limit:?} is not a duration longer than 0 (examples: 90s, 15m, 1h)")
            })?;
        let selector = selector
            .split(',')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| format!("{pair:?} is not LABEL=VALUE"))
            })
            .collect::<Result<_, _>>()?;
        Ok(SilenceRule { limit_ns, selector })
    }
}

/// The shortest limit among `rules` that apply to a stream with `labels`.
pub fn limit_for(rules: &[SilenceRule], labels: &Labels) -> Option<i64> {
    rules
        .iter()
        .filter(|r| r.selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .map(|r| r.limit_ns)
        .min()
}

/// The name a stream goes by in `stream/<name>` incidents: its pod's
/// `<namespace>/<pod>/<container>` when its labels say, else its origin.
pub fn stream_name(labels: &Labels, origin: &str) -> String {
    match (
        labels.get("namespace"),
        labels.get("pod"),
        labels.get("container"),
    ) {
        (Some(ns), Some(pod), Some(container)) => format!("{ns}/{pod}/{container}"),
        _ => origin.to_string(),
    }
}

/// Gaps remembered per stream; beyond, later ones are not reported.
const MAX_GAPS: usize = 10_000;

/// When one stream spoke: its first and last dated lines and the gaps
/// longer than its limit between them.
#[derive(Clone, Debug)]
pub struct Activity {
    limit_ns: i64,
    first: Option<i64>,
    last: Option<i64>,
    /// (last line before, first line after).
    gaps: Vec<(i64, i64)>,
}

impl Activity {
    /// A stream that is silent after `limit_ns`.
    pub fn new(limit_ns: i64) -> Activity {
        Activity {
            limit_ns,
            first: None,
            last: None,
            gaps: Vec::new(),
        }
    }

    /// A dated line at `ts`, in stream order (a line dated before the
    /// latest is activity already seen).
    pub fn line(&mut self, ts: i64) {
        match self.last {
            None => self.first = Some(ts),
            Some(last) if ts <= last => return,
            Some(last) => {
                if ts - last > self.limit_ns && self.gaps.len() < MAX_GAPS {
                    self.gaps.push((last, ts));
                }
            }
        }
        self.last = Some(ts);
    }

    /// Continues this stream with `next`: the next part of the same file,
    /// or the next run file of the same container.
    pub fn follow(&mut self, next: Activity) {
        if let Some(first) = next.first {
            self.line(first);
        }
        for gap in next.gaps {
            if self.gaps.len() < MAX_GAPS {
                self.gaps.push(gap);
            }
        }
        if let Some(last) = next.last {
            self.line(last);
        }
    }
}

/// A change in a stream's silence, at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: i64,
    pub stream: String,
    pub change: Change,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Silent since `last_line`, for `limit_ns`.
    Silent { last_line: i64, limit_ns: i64 },
    /// Spoke again.
    Resumed,
}

/// The silences of `streams` (name, activity — several per name are
/// joined in time order) as events in time order; `end` is the end of
/// the replay.
pub fn events(streams: Vec<(String, Activity)>, end: i64) -> Vec<Event> {
    let mut by_name: BTreeMap<String, Vec<Activity>> = BTreeMap::new();
    for (name, activity) in streams {
        by_name.entry(name).or_default().push(activity);
    }
    let mut events = Vec::new();
    for (name, mut parts) in by_name {
        parts.sort_by_key(|a| a.first);
        let mut parts = parts.into_iter().filter(|a| a.first.is_some());
        let Some(mut stream) = parts.next() else {
            continue;
        };
        for next in parts {
            stream.follow(next);
        }
        let limit_ns = stream.limit_ns;
        let mut silent = |last_line: i64, resumed: Option<i64>| {
            events.push(Event {
                at: last_line + limit_ns,
                stream: name.clone(),
                change: Change::Silent {
                    last_line,
                    limit_ns,
                },
            });
            if let Some(at) = resumed {
                events.push(Event {
                    at,
                    stream: name.clone(),
                    change: Change::Resumed,
                });
            }
        };
        for &(before, after) in &stream.gaps {
            silent(before, Some(after));
        }
        if let Some(last) = stream.last
            && end - last > limit_ns
        {
            silent(last, None);
        }
    }
    events.sort_by(|a, b| (a.at, &a.stream).cmp(&(b.at, &b.stream)));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000_000_000;

    #[test]
    fn rules_parse_limits_and_selectors_and_say_what_is_wrong() {
        let rule: SilenceRule = "15m@namespace=monitoring,pod=loki-0".parse().unwrap();
        assert_eq!(rule.limit_ns, 15 * M);
        assert_eq!(
            rule.selector,
            [
                ("namespace".to_string(), "monitoring".to_string()),
                ("pod".to_string(), "loki-0".to_string())
            ]
        );
        assert_eq!("90s".parse::<SilenceRule>().unwrap().selector, []);
        assert!(
            "soon"
                .parse::<SilenceRule>()
                .unwrap_err()
                .contains("\"soon\" is not a duration")
        );
        assert!(
            "5m@namespace"
                .parse::<SilenceRule>()
                .unwrap_err()
                .contains("\"namespace\" is not LABEL=VALUE")
        );
        let labels: Labels = [("namespace".to_string(), "monitoring".to_string())].into();
        let rules = [
            "1h".parse().unwrap(),
            "10m@namespace=monitoring".parse().unwrap(),
            "1m@namespace=other".parse().unwrap(),
        ];
        assert_eq!(limit_for(&rules, &labels), Some(10 * M));
        assert_eq!(limit_for(&rules[2..], &labels), None);
    }

    #[test]
    fn gaps_across_lines_parts_and_run_files_become_events_in_time_order() {
        // Run 0 speaks every minute until minute 10; run 1 (a new file of
        // the same container) starts at minute 40 and stops at minute 50.
        let mut run0 = Activity::new(15 * M);
        for m in 0..=10 {
            run0.line(m * M);
        }
        let mut run1 = Activity::new(15 * M);
        for m in [40, 45, 50] {
            run1.line(m * M);
        }
        // Another stream with a gap inside one file.
        let mut other = Activity::new(5 * M);
        for m in [0, 1, 20, 21, 19] {
            other.line(m * M);
        }
        let events = events(
            vec![
                ("ns/pod/c".into(), run1),
                ("ns/pod/c".into(), run0),
                ("other.log".into(), other),
            ],
            100 * M,
        );
        let seen: Vec<(i64, &str, bool)> = events
            .iter()
            .map(|e| {
                (
                    e.at / M,
                    e.stream.as_str(),
                    matches!(e.change, Change::Silent { .. }),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (6, "other.log", true),
                (20, "other.log", false),
                (25, "ns/pod/c", true),
                (26, "other.log", true),
                (40, "ns/pod/c", false),
                (65, "ns/pod/c", true),
            ]
        );
    }
}
