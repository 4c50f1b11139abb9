//! Problems found while loading signature files, reported all at once.

use std::fmt;

/// One problem in one signature file, located as precisely as it can be.
///
/// Displays as `FILE:LINE: FIELD: message`, or with the parts that are not
/// known left out (`FILE: message` for an unreadable file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file, as the user named it (built-in files as `signatures/NAME`).
    pub file: String,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// The field path, such as `match` or `examples.match[2].captures.path`.
    pub field: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a set of signature files. Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
