//! `summary` and `remediation` templates: text with `{name}` placeholders.

use std::fmt::Write as _;

/// A parsed template. `{name}` is a placeholder; `{name|wording}` one with
/// the words to show when the value is not known (`{pod|the pod}`); `{{`
/// and `}}` are literal braces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A placeholder and its wording for a missing value.
    Field(String, Option<String>),
}

impl Template {
    /// Parses `text`. The error says what is malformed (an unclosed `{`, a
    /// stray `}`, an empty or badly spelled placeholder name).
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("unclosed '{{' at byte {at}"));
                    };
                    let inner = &rest[..end];
                    let (name, wording) = match inner.split_once('|') {
                        Some((name, wording)) => (name, Some(wording)),
                        None => (inner, None),
                    };
                    if name.is_empty()
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    {
                        return Err(format!(
                            "placeholder {{{inner}}} must be a lowercase name such as {{path}} or {{path|the file}}"
                        ));
                    }
                    if wording.is_some_and(|w| w.contains('{')) {
                        return Err(format!(
                            "placeholder {{{inner}}}: its wording cannot hold a '{{'"
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(name.to_string(), wording.map(str::to_string)));
                    for _ in 0..=inner.chars().count() {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "stray '}}' at byte {at} (write '}}}}' for a brace)"
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The placeholder names, in order of appearance.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Field(name, _) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The placeholders with no wording for a missing value, in order.
    pub fn fields_without_wording(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Field(name, None) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Fills the template. A placeholder `lookup` knows nothing of shows
    /// its wording; one without wording is kept as `{name}` (`check`
    /// rejects templates where that can happen).
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(name, wording) => match (lookup(name), wording) {
                    (Some(value), _) => out.push_str(value),
                    (None, Some(wording)) => out.push_str(wording),
                    (None, None) => {
                        let _ = write!(out, "{{{name}}}");
                    }
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_fields_and_keeps_unknown_ones_visible() {
        let t = Template::parse("cannot {op} {path} on {node}").unwrap();
        let out = t.render(|name| match name {
            "op" => Some("open"),
            "path" => Some("pg_wal/0001"),
            _ => None,
        });
        assert_eq!(out, "cannot open pg_wal/0001 on {node}");
        assert_eq!(t.fields().collect::<Vec<_>>(), ["op", "path", "node"]);
    }

    #[test]
    fn a_missing_value_shows_its_wording() {
        let t = Template::parse("restart {pod|the pod} in {namespace}").unwrap();
        assert_eq!(t.render(|_| None), "restart the pod in {namespace}");
        assert_eq!(
            t.render(|n| (n == "pod").then_some("pg-1")),
            "restart pg-1 in {namespace}"
        );
        assert_eq!(t.fields().collect::<Vec<_>>(), ["pod", "namespace"]);
        assert_eq!(
            t.fields_without_wording().collect::<Vec<_>>(),
            ["namespace"]
        );
        assert!(Template::parse("{pod|a {x}}").is_err());
    }

    #[test]
    fn doubled_braces_are_literal() {
        let t = Template::parse("{{not a field}} {x}").unwrap();
        assert_eq!(t.render(|_| Some("v")), "{not a field} v");
    }

    #[test]
    fn malformed_templates_are_rejected_with_a_reason() {
        assert!(
            Template::parse("open {path")
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(Template::parse("a } b").unwrap_err().contains("stray"));
        assert!(Template::parse("{Path}").unwrap_err().contains("lowercase"));
        assert!(Template::parse("{}").unwrap_err().contains("lowercase"));
    }
}
