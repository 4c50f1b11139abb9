//! `faultline signatures`: what is loaded.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use faultline_signatures::Library;
use serde::Serialize;

#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    class: &'a str,
    severity: &'a str,
    title: &'a str,
    file: &'a str,
    line: usize,
}

/// Prints the loaded library as a table or as JSON lines.
pub fn run(dirs: &[PathBuf], json: bool) -> Result<ExitCode> {
    let library = match Library::load(dirs) {
        Ok(library) => library,
        Err(problems) => {
            eprintln!("{problems}");
            return Ok(ExitCode::from(1));
        }
    };
    let rows: Vec<Row> = library
        .signatures()
        .iter()
        .map(|s| Row {
            id: &s.id,
            class: s.class.as_str(),
            severity: s.severity.as_str(),
            title: &s.title,
            file: &s.location.file,
            line: s.location.line,
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        for row in &rows {
            serde_json::to_writer(&mut out, row)?;
            writeln!(out)?;
        }
    } else {
        let width = |f: fn(&Row) -> usize| rows.iter().map(f).max().unwrap_or(0);
        let (id_w, class_w, sev_w) = (
            width(|r| r.id.len()),
            width(|r| r.class.len()),
            width(|r| r.severity.len()),
        );
        writeln!(
            out,
            "{:id_w$}  {:class_w$}  {:sev_w$}  FILE",
            "ID", "CLASS", "SEVERITY"
        )?;
        for r in &rows {
            writeln!(
                out,
                "{:id_w$}  {:class_w$}  {:sev_w$}  {}:{}",
                r.id, r.class, r.severity, r.file, r.line
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
