//! Which containers stand in for a Loki stream selector.
//!
//! When Loki is down, faultline reads straight from the Kubernetes API the
//! containers whose streams `--selector` chose. A container's labels are
//! the ones log agents give it: `namespace`, `pod`, `container`,
//! `node_name` (and `node`), and its pod's own labels. Matchers on labels
//! an agent makes up itself (`job`, `cluster`, `stream`, `filename`,
//! `instance`, `host`, `service_name`) cannot be told from the API and
//! are not applied, so the fallback reads more rather than less. Any
//! other label a pod lacks is empty, as in LogQL.

/// Labels that agents make up and the Kubernetes API cannot tell.
const AGENT_LABELS: [&str; 7] = [
    "job",
    "cluster",
    "stream",
    "filename",
    "instance",
    "host",
    "service_name",
];

#[derive(Clone, Debug)]
enum Op {
    Equal(String),
    NotEqual(String),
    Matches(regex::Regex),
    NotMatches(regex::Regex),
}

/// A parsed LogQL stream selector, e.g. `{namespace=~"db-.*", app!="x"}`.
#[derive(Clone, Debug)]
pub struct StreamSelector {
    matchers: Vec<(String, Op)>,
}

impl StreamSelector {
    /// Parses `{name op "value", …}` with `=`, `!=`, `=~` and `!~`; the
    /// error says what is wrong and where.
    pub fn parse(text: &str) -> Result<StreamSelector, String> {
        let inner = text
            .trim()
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| format!("{text:?}: a stream selector is {{label=\"value\", …}}"))?;
        let mut matchers = Vec::new();
        let mut rest = inner.trim_start();
        while !rest.is_empty() {
            let name_end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..name_end];
            if name.is_empty() {
                return Err(format!("{text:?}: expected a label name at {rest:?}"));
            }
            rest = rest[name_end..].trim_start();
            let op = ["=~", "!~", "!=", "="]
                .into_iter()
                .find(|op| rest.starts_with(op))
                .ok_or_else(|| format!("{text:?}: expected =, !=, =~ or !~ after {name}"))?;
            rest = rest[op.len()..].trim_start();
            let (value, after) = quoted(rest)
                .ok_or_else(|| format!("{text:?}: the value of {name} must be a quoted string"))?;
            let regex = || {
                regex::Regex::new(&format!("^(?:{value})$"))
                    .map_err(|err| format!("{text:?}: the regex of {name}: {err}"))
            };
            let op = match op {
                "=" => Op::Equal(value),
                "!=" => Op::NotEqual(value),
                "=~" => Op::Matches(regex()?),
                _ => Op::NotMatches(regex()?),
            };
            matchers.push((name.to_string(), op));
            rest = after.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        Ok(StreamSelector { matchers })
    }

    /// Whether a container with these labels is selected (`label` gives
    /// a label's value, or `None` when it has no such label).
    pub fn matches(&self, label: &dyn Fn(&str) -> Option<String>) -> bool {
        self.matchers.iter().all(|(name, op)| {
            if AGENT_LABELS.contains(&name.as_str()) {
                return true;
            }
            let value = label(name).unwrap_or_default();
            match op {
                Op::Equal(v) => value == *v,
                Op::NotEqual(v) => value != *v,
                Op::Matches(r) => r.is_match(&value),
                Op::NotMatches(r) => !r.is_match(&value),
            }
        })
    }
}

/// A double-quoted (with `\` escapes) or backquoted string at the start of
/// `text`: its value and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    if let Some(raw) = text.strip_prefix('`') {
        let end = raw.find('`')?;
        return Some((raw[..end].to_string(), &raw[end + 1..]));
    }
    let body = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[i + 1..])),
            '\\' => value.push(match chars.next()?.1 {
                'n' => '\n',
                't' => '\t',
                other => other,
            }),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn selectors_choose_containers_as_loki_would() {
        let db = [
            ("namespace", "linkding-prod"),
            ("pod", "db-1"),
            ("app", "db"),
        ];
        let loki = [("namespace", "monitoring"), ("pod", "loki-0")];
        let any = StreamSelector::parse(r#"{namespace=~".+"}"#).unwrap();
        assert!(any.matches(&labels(&db)) && any.matches(&labels(&loki)));
        let prod = StreamSelector::parse(r#"{namespace=~".*-prod", app != "web"}"#).unwrap();
        assert!(prod.matches(&labels(&db)));
        assert!(!prod.matches(&labels(&loki)));
        let not_db = StreamSelector::parse(r#"{app!~"d.",namespace!="x"}"#).unwrap();
        assert!(!not_db.matches(&labels(&db)));
        assert!(not_db.matches(&labels(&loki)), "a missing label is empty");
        // A label an agent made up is not applied.
        let job = StreamSelector::parse(r#"{job="monitoring/loki", pod="loki-0"}"#).unwrap();
        assert!(job.matches(&labels(&loki)));
        let escaped = StreamSelector::parse(r#"{pod=~"loki-\\d+"}"#).unwrap();
        assert!(escaped.matches(&labels(&loki)));
        let raw = StreamSelector::parse(r#"{pod=~`loki-\d+`}"#).unwrap();
        assert!(raw.matches(&labels(&loki)));
    }

    #[test]
    fn a_bad_selector_says_what_is_wrong() {
        assert!(
            StreamSelector::parse("namespace=x")
                .unwrap_err()
                .contains("a stream selector is")
        );
        assert!(
            StreamSelector::parse(r#"{namespace~"x"}"#)
                .unwrap_err()
                .contains("after namespace")
        );
        assert!(
            StreamSelector::parse(r#"{pod=loki}"#)
                .unwrap_err()
                .contains("quoted")
        );
        assert!(
            StreamSelector::parse(r#"{pod=~"("}"#)
                .unwrap_err()
                .contains("regex of pod")
        );
    }
}
