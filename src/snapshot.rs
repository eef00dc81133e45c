//! [`snapshot`]: every live tracked task and thread, like a goroutine dump.

use crate::registry::{self, Kind};
use crate::report::{by_site, count_by_kind, write_group, Straggler};
use std::fmt;

/// Every live tracked task and thread in the process, in every scope.
///
/// This is the counterpart of Go's `runtime.NumGoroutine()` and of the pprof
/// goroutine dump: compare [`Snapshot::len`] before and after, or print it to
/// see everything grouped by creation site, with the test that owns it.
///
/// Tracking starts with the first call to this function or the first guard;
/// work spawned before then is not registered.
///
/// ```
/// let (stop, rx) = std::sync::mpsc::channel::<()>();
/// let before = leakcheck::snapshot().len();
/// let worker = leakcheck::thread::spawn(move || { let _ = rx.recv(); });
///
/// let snapshot = leakcheck::snapshot();
/// assert_eq!(snapshot.len(), before + 1);
/// assert!(snapshot.to_string().contains("1 thread spawned at"));
///
/// drop(stop);
/// worker.join().unwrap();
/// ```
pub fn snapshot() -> Snapshot {
    registry::start_tracking();
    let now = crate::clock::precise_nanos();
    let live = registry::all_records()
        .into_iter()
        .filter(|record| !crate::probe::thread_hook::is_runtime_thread(record))
        .map(|record| Straggler::observe(record, now, None))
        .collect();
    Snapshot { live }
}

/// The result of [`snapshot`].
#[derive(Clone)]
pub struct Snapshot {
    live: Vec<Straggler>,
}

impl Snapshot {
    /// How many tasks and threads were alive.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when nothing tracked was alive.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// How many of one kind were alive.
    pub fn count(&self, kind: Kind) -> usize {
        self.live.iter().filter(|s| s.kind() == kind).count()
    }

    /// Every live task and thread, ungrouped.
    pub fn entries(&self) -> &[Straggler] {
        &self.live
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups = by_site(&self.live);
        writeln!(
            f,
            "leakcheck snapshot: {} alive, from {} creation site{}",
            count_by_kind(&self.live),
            groups.len(),
            if groups.len() == 1 { "" } else { "s" }
        )?;
        for group in &groups {
            writeln!(f)?;
            write_group(f, group, true)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
