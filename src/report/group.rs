//! Grouping stragglers by creation site, and writing one group in plain text.
//!
//! Shared by leak reports and snapshots: a hundred thousand stragglers from
//! one line become one paragraph with a count, not a hundred thousand
//! backtraces.

use super::{Site, Straggler};
use crate::capture::display_path;
use crate::registry::{Kind, State};
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::path::Path;
use std::time::Duration;

/// Stragglers of one kind spawned at one site.
pub(crate) struct Group<'a> {
    pub(crate) kind: Kind,
    pub(crate) location: Site,
    pub(crate) members: Vec<&'a Straggler>,
}

/// Groups by (kind, spawn site); largest groups first, then by site.
pub(crate) fn by_site(stragglers: &[Straggler]) -> Vec<Group<'_>> {
    let mut groups: HashMap<(Kind, &Site), Group<'_>> = HashMap::new();
    for straggler in stragglers {
        groups
            .entry((straggler.kind(), straggler.location()))
            .or_insert_with(|| Group {
                kind: straggler.kind(),
                location: straggler.location().clone(),
                members: Vec::new(),
            })
            .members
            .push(straggler);
    }
    let mut groups: Vec<_> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        b.members
            .len()
            .cmp(&a.members.len())
            .then_with(|| a.location.file().cmp(b.location.file()))
            .then_with(|| a.location.line().cmp(&b.location.line()))
            .then_with(|| a.kind.cmp(&b.kind))
    });
    groups
}

/// "3 tasks and 1 thread", in kind order.
pub(crate) fn count_by_kind(stragglers: &[Straggler]) -> String {
    let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
    for straggler in stragglers {
        *counts.entry(straggler.kind()).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(kind, n)| counted(n, kind))
        .collect();
    match parts.as_slice() {
        [] => "nothing".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

pub(crate) fn counted(n: usize, kind: Kind) -> String {
    if n == 1 {
        format!("1 {kind}")
    } else {
        format!("{n} {}", kind.plural())
    }
}

fn times(n: u64) -> String {
    match n {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    }
}

/// A short human duration: `850µs`, `12ms`, `1.25s`, `3m05s`.
pub(crate) fn human(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{}ms", micros / 1_000)
    } else if micros < 60_000_000 {
        format!("{:.2}s", duration.as_secs_f64())
    } else {
        let secs = duration.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// Writes one group: a header line, then state, names, figures and the
/// creation backtrace, indented.
pub(crate) fn write_group(
    f: &mut fmt::Formatter<'_>,
    group: &Group<'_>,
    show_test: bool,
) -> fmt::Result {
    let first = group.members[0];
    let site = &group.location;
    writeln!(
        f,
        "{} spawned at {}:{}:{}",
        counted(group.members.len(), group.kind),
        display_path(Path::new(site.file())),
        site.line(),
        site.column()
    )?;
    if show_test {
        let label = match first.test_name() {
            Some(test) => format!("test `{test}`"),
            None => match first.record().scope.kind {
                crate::registry::scope::ScopeKind::Background => {
                    "background (declared long-lived)".to_owned()
                }
                _ => "outside any check".to_owned(),
            },
        };
        writeln!(f, "  owner: {label}")?;
    }
    let mut states: BTreeMap<String, (State, usize)> = BTreeMap::new();
    for member in &group.members {
        states
            .entry(member.state().to_string())
            .or_insert((member.state(), 0))
            .1 += 1;
    }
    if states.len() == 1 {
        let (state, _) = states
            .values()
            .next()
            .copied()
            .unwrap_or((first.state(), 1));
        writeln!(f, "  state: {state}: {}", state.explanation())?;
    } else {
        let parts: Vec<String> = states
            .iter()
            .map(|(name, (_, n))| format!("{n} {name}"))
            .collect();
        writeln!(f, "  states: {}", parts.join(", "))?;
    }
    let mut names: Vec<&str> = group.members.iter().filter_map(|m| m.name()).collect();
    names.sort_unstable();
    names.dedup();
    if !names.is_empty() {
        let shown = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
        let more = names.len().saturating_sub(5);
        if more > 0 {
            writeln!(f, "  names: {shown} and {more} more")?;
        } else if names.len() > 1 {
            writeln!(f, "  names: {shown}")?;
        } else {
            writeln!(f, "  name: {shown}")?;
        }
    }
    let oldest = group
        .members
        .iter()
        .map(|m| m.age())
        .max()
        .unwrap_or_default();
    let mut figures = if group.members.len() == 1 {
        format!("  spawned {} ago", human(oldest))
    } else {
        format!("  oldest spawned {} ago", human(oldest))
    };
    if group.kind.is_async() && group.members.len() == 1 && first.state() != State::Unknown {
        let _ = write!(
            figures,
            "; polled {}, woken {}",
            times(first.polls()),
            times(first.wakes())
        );
        if let Some(idle) = first.idle_for() {
            let _ = write!(figures, ", idle for {}", human(idle));
        }
        if first.polls_while_settling() > 1 {
            let _ = write!(
                figures,
                ", polled {} while the check waited",
                times(first.polls_while_settling())
            );
        }
    }
    writeln!(f, "{figures}")?;
    if let (1, Some(detail)) = (group.members.len(), first.detail()) {
        writeln!(
            f,
            "  detail: mean poll {}, {} slow poll{}, idle {} in all, queued {} in all",
            human(detail.mean_poll_duration()),
            detail.slow_polls(),
            if detail.slow_polls() == 1 { "" } else { "s" },
            human(detail.total_idle()),
            human(detail.total_scheduled())
        )?;
    }
    if let Some(trace) = group.members.iter().find_map(|m| m.suspended_at()) {
        writeln!(f, "  suspended at (tokio task dump):")?;
        for line in trace.lines() {
            writeln!(f, "    {line}")?;
        }
    }
    match group.members.iter().find_map(|m| m.backtrace()) {
        Some(trace) => {
            let shared = trace.is_shared()
                || group.members.iter().any(|m| {
                    m.record()
                        .backtrace()
                        .is_some_and(|captured| captured.shared)
                });
            let note = if shared {
                " (captured at the first spawn from this line in this scope)"
            } else {
                ""
            };
            writeln!(f, "  created by{note}:")?;
            for frame in trace.frames() {
                for line in frame.to_string().lines() {
                    writeln!(f, "    {line}")?;
                }
            }
            writeln!(
                f,
                "    ({} frames from std, tokio, leakcheck and the test harness hidden)",
                trace.hidden_frames()
            )
        }
        None => writeln!(
            f,
            "  created by: (no backtrace: LEAKCHECK_BACKTRACE=off; set it to `site` or `full`)"
        ),
    }
}
