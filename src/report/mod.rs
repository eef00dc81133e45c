//! The leak report: what was still alive, where it was created, and what it
//! was doing.
//!
//! [`LeakReport`] displays as plain text meant for a failing test's output;
//! its [`Straggler`]s carry the same facts as data.

mod group;
mod straggler;

pub(crate) use group::{by_site, count_by_kind, human, write_group};
pub use straggler::Straggler;

pub use crate::capture::{Backtrace, Frame};
pub use crate::registry::{Kind, State};

use std::fmt;
use std::time::Duration;

/// The stragglers a failed check found, grouped by creation site when shown.
///
/// Returned by [`LeakGuard::check`](crate::LeakGuard::check) and
/// [`LeakGuard::check_async`](crate::LeakGuard::check_async); the guard's
/// `Drop` panics with its text.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let guard = leakcheck::verify_none();
/// leakcheck::spawn(std::future::pending::<()>()); // nothing can ever wake it
/// let report = guard.check_async().await.unwrap_err();
/// assert_eq!(report.stragglers().len(), 1);
/// assert_eq!(report.stragglers()[0].state(), leakcheck::State::Stuck);
/// let text = report.to_string();
/// assert!(text.contains("1 task spawned at"), "{text}");
/// # }
/// ```
#[derive(Clone)]
pub struct LeakReport {
    test: Option<String>,
    stragglers: Vec<Straggler>,
    waited: Duration,
    notes: Vec<String>,
}

impl LeakReport {
    pub(crate) fn new(test: Option<String>, stragglers: Vec<Straggler>, waited: Duration) -> Self {
        Self {
            test,
            stragglers,
            waited,
            notes: Vec::new(),
        }
    }

    pub(crate) fn add_note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Everything that was still alive, ungrouped.
    pub fn stragglers(&self) -> &[Straggler] {
        &self.stragglers
    }

    /// The test that leaked: the name of the thread that opened the guard,
    /// which is the test's path under `cargo test` and nextest.
    pub fn test_name(&self) -> Option<&str> {
        self.test.as_deref()
    }

    /// How long the check waited for stragglers to finish before giving up.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// How many distinct creation sites the stragglers came from.
    pub fn sites(&self) -> usize {
        by_site(&self.stragglers).len()
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups = by_site(&self.stragglers);
        let who = match &self.test {
            Some(test) => format!("test `{test}` leaked"),
            None => "leaked".to_owned(),
        };
        writeln!(
            f,
            "leakcheck: {who} {}, still alive after waiting {} ({} from {} creation site{})",
            count_by_kind(&self.stragglers),
            human(self.waited),
            if self.stragglers.len() == 1 {
                "1 straggler".to_owned()
            } else {
                format!("{} stragglers", self.stragglers.len())
            },
            groups.len(),
            if groups.len() == 1 { "" } else { "s" },
        )?;
        for group in &groups {
            writeln!(f)?;
            write_group(f, group, false)?;
        }
        for note in &self.notes {
            writeln!(f, "\nnote: {note}")?;
        }
        Ok(())
    }
}

// Debug shows the report itself, so that `check().unwrap()` fails readably.
impl fmt::Debug for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for LeakReport {}
