//! The `watch` config file (`--config faultline.yaml`): the same settings
//! as the flags, which override it. Unknown fields are errors; every
//! problem is reported at once as `FILE:LINE: FIELD: message`; `${NAME}`
//! in a value is replaced by the environment variable NAME (for secrets,
//! which faultline never prints). `faultline config check FILE` reports
//! the problems without starting anything.

use std::collections::BTreeMap;

use faultline_signatures::{Problem, Problems};
use marked_yaml::{LoaderOptions, Node, types::MarkedMappingNode};

/// A value read from the config, with its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Bool(bool),
    List(Vec<String>),
}

/// The settings a config file gives, by the flag they stand for
/// (`files`, `loki`, `alertmanager` …): the same names and values as the
/// flags, with `_` for `-`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub values: BTreeMap<&'static str, Value>,
}

/// What a setting takes.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Bool,
    List,
}

/// Every setting, by name (the flag's name with `_` for `-`).
const SETTINGS: &[(&str, Kind)] = &[
    ("files", Kind::List),
    ("stdin", Kind::Bool),
    ("kmsg", Kind::Text),
    ("journald", Kind::Bool),
    ("journal_directory", Kind::Text),
    ("node", Kind::Text),
    ("mounts", Kind::Text),
    ("loki", Kind::Text),
    ("selector", Kind::Text),
    ("loki_org_id", Kind::Text),
    ("loki_token", Kind::Text),
    ("loki_token_file", Kind::Text),
    ("loki_user", Kind::Text),
    ("loki_password", Kind::Text),
    ("loki_password_file", Kind::Text),
    ("loki_poll", Kind::Text),
    ("loki_lookback", Kind::Text),
    ("loki_late", Kind::Text),
    ("loki_max_lag", Kind::Text),
    ("loki_tail", Kind::Bool),
    ("kubernetes", Kind::Bool),
    ("kubernetes_inventory_only", Kind::Bool),
    ("kubeconfig", Kind::Text),
    ("namespace", Kind::Text),
    ("pod_selector", Kind::Text),
    ("max_log_streams", Kind::Text),
    ("fallback_recover", Kind::Text),
    ("listen_push", Kind::Text),
    ("push_max_body", Kind::Text),
    ("push_timeout", Kind::Text),
    ("alertmanager", Kind::List),
    ("webhook", Kind::List),
    ("webhook_token", Kind::Text),
    ("webhook_token_file", Kind::Text),
    ("webhook_secret", Kind::Text),
    ("webhook_secret_file", Kind::Text),
    ("resend_interval", Kind::Text),
    ("runbook_base", Kind::Text),
    ("listen", Kind::Text),
    ("format", Kind::Text),
    ("state_dir", Kind::Text),
    ("read_existing", Kind::Bool),
    ("poll", Kind::Text),
    ("max_files", Kind::Text),
    ("max_streams", Kind::Text),
    ("max_incidents", Kind::Text),
    ("signatures", Kind::List),
    ("inventory", Kind::List),
    ("silence", Kind::List),
    ("label", Kind::List),
];

/// Whether `name` is a setting of the config file.
pub fn is_setting(name: &str) -> bool {
    SETTINGS.iter().any(|(n, _)| *n == name)
}

/// Replaces `${NAME}` with the environment variable NAME; a variable that
/// is not set is a problem.
fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "an unclosed ${".to_string())?;
        let name = &after[..end];
        let value =
            env(name).ok_or_else(|| format!("the environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Config {
    /// Parses the config in `text` (named `file` in problems), with `env`
    /// for `${NAME}`; `check` says what is wrong with a setting's value,
    /// if anything (a duration that is not one, an address …).
    pub fn parse(
        file: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        check: &dyn Fn(&Config) -> Result<(), String>,
    ) -> Result<Config, Problems> {
        let mut problems = Vec::new();
        let mut add = |line: Option<usize>, field: &str, message: String| {
            problems.push(Problem {
                file: file.to_string(),
                line,
                field: (!field.is_empty()).then(|| field.to_string()),
                message,
            });
        };
        let options = LoaderOptions::default().error_on_duplicate_keys(true);
        let root = match marked_yaml::parse_yaml_with_options(0, text, options) {
            Ok(root) => root,
            Err(err) => {
                add(None, "", format!("not valid YAML: {err}"));
                return Err(Problems(problems));
            }
        };
        let Some(top): Option<&MarkedMappingNode> = root.as_mapping() else {
            add(None, "", "the config must be a mapping of settings".into());
            return Err(Problems(problems));
        };
        let mut config = Config::default();
        for (key, node) in top.iter() {
            let line = key.span().start().map(|m| m.line());
            let name = key.as_str();
            let Some((name, kind)) = SETTINGS.iter().find(|(n, _)| *n == name) else {
                add(
                    line,
                    name,
                    format!(
                        "unknown setting; expected one of: {}",
                        SETTINGS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            };
            let text_of = |node: &Node| -> Option<String> {
                node.as_scalar().map(|s| s.as_str().to_string())
            };
            let value = match kind {
                Kind::Bool => match text_of(node).as_deref() {
                    Some("true") => Some(Value::Bool(true)),
                    Some("false") => Some(Value::Bool(false)),
                    _ => {
                        add(line, name, "must be true or false".into());
                        None
                    }
                },
                Kind::Text => match text_of(node) {
                    Some(text) => match interpolate(&text, env) {
                        Ok(text) => Some(Value::Text(text)),
                        Err(err) => {
                            add(line, name, err);
                            None
                        }
                    },
                    None => {
                        add(line, name, "must be a single value".into());
                        None
                    }
                },
                Kind::List => {
                    let items: Option<Vec<String>> = match node {
                        Node::Sequence(items) => items.iter().map(text_of).collect(),
                        other => text_of(other).map(|t| vec![t]),
                    };
                    match items {
                        Some(items) => {
                            let mut out = Vec::new();
                            for item in items {
                                match interpolate(&item, env) {
                                    Ok(item) => out.push(item),
                                    Err(err) => add(line, name, err),
                                }
                            }
                            Some(Value::List(out))
                        }
                        None => {
                            add(line, name, "must be a value or a list of values".into());
                            None
                        }
                    }
                }
            };
            if let Some(value) = value {
                let alone = Config {
                    values: BTreeMap::from([(*name, value.clone())]),
                };
                if let Err(message) = check(&alone) {
                    add(line, name, message);
                }
                config.values.insert(name, value);
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(Problems(problems))
        }
    }

    /// The settings as command-line arguments, leaving out those for which
    /// `given(flag id)` says the command line has its own, and the secrets
    /// (which are never put on a command line: see [`Config::secret`]).
    pub fn as_args(&self, given: impl Fn(&str) -> bool) -> Vec<String> {
        let mut args = Vec::new();
        for (name, value) in &self.values {
            if SECRETS.contains(name) || given(flag_id(name)) {
                continue;
            }
            let flag = format!("--{}", name.replace('_', "-"));
            match (name, value) {
                (&"stdin", Value::Bool(true)) => args.push("-".to_string()),
                (_, Value::Bool(true)) => args.push(flag),
                (_, Value::Bool(false)) => {}
                (_, Value::Text(text)) => args.extend([flag, text.clone()]),
                (_, Value::List(items)) => {
                    for item in items {
                        args.extend([flag.clone(), item.clone()]);
                    }
                }
            }
        }
        args
    }

    /// The secret setting `name` (`loki_token`, `loki_password`,
    /// `webhook_token`, `webhook_secret`), if set.
    pub fn secret(&self, name: &str) -> Option<String> {
        match self.values.get(name) {
            Some(Value::Text(text)) => Some(text.clone()),
            _ => None,
        }
    }
}

/// Settings that hold secrets: kept out of command lines and output.
const SECRETS: &[&str] = &[
    "loki_token",
    "loki_password",
    "webhook_token",
    "webhook_secret",
];

/// The id clap gives the flag a setting stands for.
fn flag_id(name: &str) -> &str {
    match name {
        "alertmanager" => "alertmanagers",
        "webhook" => "webhooks",
        "signatures" => "signature_dirs",
        "label" => "labels",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "LOKI_TOKEN").then(|| "s3cr3t".to_string())
    }

    #[test]
    fn a_config_reads_every_kind_of_setting_and_interpolates_the_environment() {
        let text = "files:\n  - /var/log/pods/*/*/*.log\nloki: http://loki:3100\nloki_token: ${LOKI_TOKEN}\njournald: true\nalertmanager: http://am:9093\n";
        let config = Config::parse("faultline.yaml", text, &env, &|_| Ok(())).unwrap();
        assert_eq!(config.secret("loki_token").as_deref(), Some("s3cr3t"));
        // The command line's own --loki wins; the secret stays off it.
        assert_eq!(
            config.as_args(|id| id == "loki"),
            [
                "--alertmanager",
                "http://am:9093",
                "--files",
                "/var/log/pods/*/*/*.log",
                "--journald",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "files: /a\nlokki: http://x\njournald: yes\nwebhook_secret: ${MISSING}\n";
        let err = Config::parse("f.yaml", text, &env, &|_| Ok(()))
            .unwrap_err()
            .to_string();
        for expected in [
            "f.yaml:2: lokki: unknown setting",
            "f.yaml:3: journald: must be true or false",
            "f.yaml:4: webhook_secret: the environment variable MISSING is not set",
        ] {
            assert!(err.contains(expected), "{expected} not in:\n{err}");
        }
    }
}
