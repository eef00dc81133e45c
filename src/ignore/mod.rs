//! Ignore rules: what a straggler is matched against to be left out of a
//! report, whether the rule comes from [`Options`](crate::Options) or from
//! the project's ignore file.

pub(crate) mod file;

use crate::report::{Site, Straggler};

/// One rule: a name, a spawn site or a frame of the creation backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rule {
    /// A task or thread name; a trailing `*` matches a prefix.
    Name(String),
    Location(LocationPattern),
    /// Part of a function path in the creation backtrace.
    Frame(String),
}

impl Rule {
    /// A name rule, unless the pattern would match no name or every name.
    pub(crate) fn name(pattern: &str) -> Result<Self, &'static str> {
        if pattern.is_empty() || pattern == "*" {
            return Err(
                "it would match no name or every name; give a task or thread name, \
                        or a prefix followed by `*`",
            );
        }
        Ok(Rule::Name(pattern.to_owned()))
    }

    /// A frame rule, unless the pattern is empty.
    pub(crate) fn frame(pattern: &str) -> Result<Self, &'static str> {
        if pattern.is_empty() {
            return Err("it would match every frame; give part of a function path");
        }
        Ok(Rule::Frame(pattern.to_owned()))
    }

    pub(crate) fn matches(&self, straggler: &Straggler) -> bool {
        match self {
            Rule::Name(pattern) => straggler
                .name()
                .is_some_and(|name| name_matches(pattern, name)),
            Rule::Location(pattern) => pattern.matches(straggler.location()),
            Rule::Frame(pattern) => straggler
                .backtrace()
                .is_some_and(|trace| trace.mentions(pattern)),
        }
    }
}

fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// A spawn site to match: `file`, `file:line` or `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocationPattern {
    file: String,
    line: Option<u32>,
    column: Option<u32>,
}

/// What a location pattern may be, for error messages.
pub(crate) const LOCATION_FORMS: &str =
    "`file`, `file:line` or `file:line:col`, e.g. \"src/pool.rs:88\"";

impl LocationPattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        let mut parts = pattern.rsplitn(3, ':').collect::<Vec<_>>();
        parts.reverse();
        // Trailing numeric parts are line and column; anything else is file.
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (file, line, column) = match parts.as_slice() {
            [file, line, column] if numeric(line) && numeric(column) => {
                (file.to_string(), Some(*line), Some(*column))
            }
            [head @ .., line] if numeric(line) => (head.join(":"), Some(*line), None),
            _ => (pattern.to_owned(), None, None),
        };
        if file.is_empty() {
            return Err("the file part is empty".to_owned());
        }
        let number = |s: Option<&str>, what: &str| -> Result<Option<u32>, String> {
            s.map(|s| {
                s.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("the {what} must be a number from 1 to {}", u32::MAX))
            })
            .transpose()
        };
        Ok(Self {
            line: number(line, "line")?,
            column: number(column, "column")?,
            file,
        })
    }

    pub(crate) fn matches(&self, location: &Site) -> bool {
        let file = location.file();
        let file_matches = file == self.file
            || file
                .strip_suffix(self.file.as_str())
                .is_some_and(|rest| rest.ends_with('/') || rest.ends_with('\\'));
        file_matches
            && self.line.is_none_or(|line| line == location.line())
            && self.column.is_none_or(|column| column == location.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_patterns_parse_and_match() {
        let here = &Site::from(std::panic::Location::caller());
        let file = here.file();
        let line = here.line();
        assert!(LocationPattern::parse(file).unwrap().matches(here));
        assert!(LocationPattern::parse("mod.rs").unwrap().matches(here));
        assert!(!LocationPattern::parse("od.rs").unwrap().matches(here));
        let with_line = LocationPattern::parse(&format!("{file}:{line}")).unwrap();
        assert!(with_line.matches(here));
        let wrong_line = LocationPattern::parse(&format!("{file}:{}", line + 1)).unwrap();
        assert!(!wrong_line.matches(here));
        let full = format!("{file}:{line}:{}", here.column());
        assert!(LocationPattern::parse(&full).unwrap().matches(here));
    }

    #[test]
    fn bad_location_patterns_say_what_is_wrong() {
        for (bad, why) in [
            ("", "the file part is empty"),
            (":12", "the file part is empty"),
            ("src/a.rs:0", "the line must be a number"),
            ("src/a.rs:99999999999", "the line must be a number"),
            ("src/a.rs:3:0", "the column must be a number"),
        ] {
            let message = LocationPattern::parse(bad).unwrap_err();
            assert!(message.starts_with(why), "{bad:?}: {message}");
        }
    }

    #[test]
    fn names_match_exactly_or_by_prefix() {
        assert!(name_matches("reaper", "reaper"));
        assert!(!name_matches("reaper", "reaper-2"));
        assert!(name_matches("pool-*", "pool-7"));
        assert!(!name_matches("pool-*", "spool-7"));
        assert!(Rule::name("*").is_err());
        assert!(Rule::name("").is_err());
        assert!(Rule::frame("").is_err());
    }
}
