//! Incident reports a person pastes into a post-mortem: Markdown, and one
//! self-contained HTML file with an inline SVG timeline.

use std::fmt::Write as _;
use std::io::{self, Write};

use faultline_correlate::{Report as Incident, State};

use super::output::{Report, rfc3339};

fn minute(ns: i64) -> String {
    let full = rfc3339(ns);
    format!("{}Z", full.get(..16).unwrap_or(&full))
}

/// Incidents that paged (firing or resolved after firing) first, then the
/// ones that never fired; each group by first sight.
fn ordered(incidents: &[Incident]) -> Vec<&Incident> {
    let mut out: Vec<&Incident> = incidents
        .iter()
        .filter(|r| r.incident.fired_at.is_some())
        .collect();
    out.extend(incidents.iter().filter(|r| r.incident.fired_at.is_none()));
    out
}

impl Report<'_> {
    /// The report as Markdown.
    pub fn write_markdown(&self, out: &mut impl Write) -> io::Result<()> {
        let mut md = String::new();
        let _ = writeln!(md, "# faultline incident report\n");
        let _ = writeln!(
            md,
            "{} incidents from {} hits in {} files ({} lines).\n",
            self.incidents.len(),
            self.hits,
            self.totals.files,
            self.totals.lines
        );
        let _ = writeln!(
            md,
            "| state | severity | what | since | fired |\n|---|---|---|---|---|"
        );
        for r in ordered(self.incidents) {
            let i = &r.incident;
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {} | {} |",
                i.state.as_str(),
                i.severity,
                r.key,
                minute(i.first_seen),
                i.fired_at.map_or("–".to_string(), minute)
            );
        }
        for r in ordered(self.incidents) {
            let i = &r.incident;
            let _ = writeln!(md, "\n## `{}` — {}\n", r.key, i.state.as_str());
            let _ = writeln!(md, "{}\n", r.summary);
            let _ = writeln!(
                md,
                "- **Seen:** {} to {} ({} hits{})",
                minute(i.first_seen),
                minute(i.last_seen),
                i.hits,
                i.resolved_at
                    .map(|t| format!(", resolved {}", minute(t)))
                    .unwrap_or_default()
            );
            if !i.related.is_empty() {
                let related: Vec<String> = i.related.iter().map(|k| format!("`{k}`")).collect();
                let _ = writeln!(md, "- **Same story:** {}", related.join(", "));
            }
            let signatures: Vec<String> = i
                .signatures
                .iter()
                .map(|(s, n)| format!("`{s}` ×{n}"))
                .collect();
            let _ = writeln!(md, "- **Signatures:** {}", signatures.join(", "));
            let _ = writeln!(md, "\n**What to do:** {}\n", r.remediation);
            let _ = writeln!(md, "Evidence:\n\n```");
            for line in i.evidence() {
                let _ = writeln!(md, "{}", line.replace("```", "'''"));
            }
            let _ = writeln!(md, "```");
        }
        out.write_all(md.as_bytes())?;
        out.flush()
    }

    /// The report as one self-contained HTML page (no scripts, no external
    /// resources) with a timeline of the incidents as inline SVG.
    pub fn write_html(&self, out: &mut impl Write) -> io::Result<()> {
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>faultline incident report</title>\n<style>");
        h.push_str(
            "body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#222}\
             table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}\
             code,pre{font-family:ui-monospace,monospace}pre{background:#f5f5f5;padding:.6rem;overflow-x:auto;font-size:.8rem}\
             .firing{color:#b00020;font-weight:bold}.resolved{color:#2e7d32}.pending{color:#b26a00}\
             section{border-top:1px solid #ddd;margin-top:1.5rem}",
        );
        h.push_str("</style></head><body>\n<h1>faultline incident report</h1>\n");
        let _ = writeln!(
            h,
            "<p>{} incidents from {} hits in {} files ({} lines).</p>",
            self.incidents.len(),
            self.hits,
            self.totals.files,
            self.totals.lines
        );
        h.push_str(&self.timeline_svg());
        h.push_str("<table><tr><th>state</th><th>severity</th><th>what</th><th>since</th><th>fired</th></tr>\n");
        for r in ordered(self.incidents) {
            let i = &r.incident;
            let _ = writeln!(
                h,
                "<tr><td class=\"{0}\">{0}</td><td>{1}</td><td><a href=\"#{2}\"><code>{2}</code></a></td><td>{3}</td><td>{4}</td></tr>",
                i.state.as_str(),
                i.severity,
                escape(&r.key),
                minute(i.first_seen),
                i.fired_at.map_or("–".to_string(), minute)
            );
        }
        h.push_str("</table>\n");
        for r in ordered(self.incidents) {
            let i = &r.incident;
            let _ = writeln!(
                h,
                "<section id=\"{0}\"><h2><code>{0}</code> — <span class=\"{1}\">{1}</span></h2>",
                escape(&r.key),
                i.state.as_str()
            );
            let _ = writeln!(h, "<p>{}</p>", escape(&r.summary));
            let _ = writeln!(
                h,
                "<p><b>Seen:</b> {} to {} ({} hits)</p>",
                minute(i.first_seen),
                minute(i.last_seen),
                i.hits
            );
            if !i.related.is_empty() {
                let links: Vec<String> = i
                    .related
                    .iter()
                    .map(|k| format!("<a href=\"#{0}\"><code>{0}</code></a>", escape(k)))
                    .collect();
                let _ = writeln!(h, "<p><b>Same story:</b> {}</p>", links.join(", "));
            }
            let _ = writeln!(h, "<p><b>What to do:</b> {}</p>", escape(&r.remediation));
            h.push_str("<pre>");
            for line in i.evidence() {
                let _ = writeln!(h, "{}", escape(line));
            }
            h.push_str("</pre></section>\n");
        }
        h.push_str("</body></html>\n");
        out.write_all(h.as_bytes())?;
        out.flush()
    }

    /// One bar per incident from first to last sight (to resolution),
    /// coloured by state, with a mark where it fired.
    fn timeline_svg(&self) -> String {
        let incidents = ordered(self.incidents);
        let (Some(start), Some(end)) = (
            incidents.iter().map(|r| r.incident.first_seen).min(),
            incidents
                .iter()
                .map(|r| r.incident.resolved_at.unwrap_or(r.incident.last_seen))
                .max(),
        ) else {
            return String::new();
        };
        let span = (end - start).max(1) as f64;
        let (label_w, chart_w, row_h) = (330.0, 560.0, 18.0);
        let height = row_h * incidents.len() as f64 + 30.0;
        let x = |t: i64| label_w + (t - start) as f64 / span * chart_w;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"incident timeline\" width=\"{}\" height=\"{height}\" font-size=\"11\">\n",
            label_w + chart_w + 10.0
        );
        for (row, r) in incidents.iter().enumerate() {
            let i = &r.incident;
            let y = row as f64 * row_h + 4.0;
            let colour = match i.state {
                State::Firing => "#d32f2f",
                State::Resolved => "#43a047",
                State::Pending => "#ffa000",
            };
            let until = i.resolved_at.unwrap_or(i.last_seen);
            let _ = writeln!(
                svg,
                "<text x=\"0\" y=\"{}\">{}</text>",
                y + 11.0,
                escape(&r.key)
            );
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"12\" fill=\"{colour}\"><title>{} {} → {}</title></rect>",
                x(i.first_seen),
                (x(until) - x(i.first_seen)).max(2.0),
                escape(&r.key),
                minute(i.first_seen),
                minute(until)
            );
            if let Some(fired) = i.fired_at {
                let _ = writeln!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{}\" width=\"2\" height=\"16\" fill=\"#000\"/>",
                    x(fired),
                    y - 2.0
                );
            }
        }
        let axis = height - 8.0;
        let _ = writeln!(
            svg,
            "<text x=\"{label_w}\" y=\"{axis}\">{}</text>",
            minute(start)
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{axis}\" text-anchor=\"end\">{}</text>",
            label_w + chart_w,
            minute(end)
        );
        svg.push_str("</svg>\n");
        svg
    }
}

/// `text` safe inside HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape(r#"<b a="1">&'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;&lt;/b&gt;"
        );
    }
}
