//! A signature's regular expressions, checked when loaded and compiled
//! when first used.

use std::sync::{Arc, OnceLock};

use regex::bytes::Regex;

/// When a loaded pattern is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compile {
    /// While loading: every error, the compiled size limit included, is
    /// reported with the file and line. For files a user gives.
    Now,
    /// On first use; only the syntax is checked while loading. For the
    /// built-in library, whose every pattern the test suite compiles: a
    /// run tries few of its hundreds of signatures, and compiling them all
    /// was most of faultline's start-up.
    OnFirstUse,
}

/// A regular expression over bytes, compiled at most once and shared by
/// every clone.
#[derive(Clone, Debug)]
pub struct LazyRegex {
    pattern: String,
    compiled: Arc<OnceLock<Regex>>,
}

impl LazyRegex {
    /// Checks `pattern` (compiling it too with [`Compile::Now`]). The
    /// error is the regex crate's message.
    pub fn new(pattern: &str, compile: Compile) -> Result<LazyRegex, String> {
        let compiled = OnceLock::new();
        match compile {
            Compile::Now => {
                let regex = Regex::new(pattern).map_err(|err| err.to_string())?;
                let _ = compiled.set(regex);
            }
            Compile::OnFirstUse => {
                regex_syntax::ParserBuilder::new()
                    .utf8(false)
                    .build()
                    .parse(pattern)
                    .map_err(|err| err.to_string())?;
            }
        }
        Ok(LazyRegex {
            pattern: pattern.to_string(),
            compiled: Arc::new(compiled),
        })
    }

    /// The compiled expression.
    ///
    /// # Panics
    /// If a pattern loaded with [`Compile::OnFirstUse`] parses but does not
    /// compile (it exceeds the compiled size limit): only the built-in
    /// library is loaded that way, and its tests compile every pattern.
    pub fn get(&self) -> &Regex {
        self.compiled.get_or_init(|| {
            Regex::new(&self.pattern).unwrap_or_else(|err| {
                panic!(
                    "built-in pattern {:?} does not compile: {err}",
                    self.pattern
                )
            })
        })
    }

    /// The pattern, as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl From<Regex> for LazyRegex {
    /// An expression compiled already.
    fn from(regex: Regex) -> LazyRegex {
        LazyRegex {
            pattern: regex.as_str().to_string(),
            compiled: Arc::new(OnceLock::from(regex)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_found_either_way_and_read_the_same() {
        let now = LazyRegex::new("(unclosed", Compile::Now).unwrap_err();
        let later = LazyRegex::new("(unclosed", Compile::OnFirstUse).unwrap_err();
        assert_eq!(now, later);
        assert!(now.contains("unclosed group"), "{now}");
    }

    #[test]
    fn a_pattern_too_big_to_compile_is_an_error_when_compiled_now() {
        let err = LazyRegex::new(r"\w{1000}\w{1000}", Compile::Now).unwrap_err();
        assert!(err.contains("exceeds size limit"), "{err}");
    }

    #[test]
    fn clones_share_one_compilation() {
        let regex = LazyRegex::new("a(?P<b>b)", Compile::OnFirstUse).unwrap();
        let clone = regex.clone();
        assert!(regex.get().is_match(b"xab"));
        assert!(std::ptr::eq(regex.get(), clone.get()));
        assert_eq!(clone.as_str(), "a(?P<b>b)");
    }
}
