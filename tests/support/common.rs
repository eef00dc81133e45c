//! Helpers shared by the guard, runtime and fault suites.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use leakcheck::LeakReport;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The running test's name: libtest names each test's thread after it.
pub fn me() -> String {
    std::thread::current()
        .name()
        .expect("libtest names its threads")
        .to_owned()
}

/// The names of a report's stragglers, sorted; `-` for unnamed ones.
pub fn names(report: &LeakReport) -> Vec<&str> {
    let mut names: Vec<&str> = report
        .stragglers()
        .iter()
        .map(|s| s.name().unwrap_or("-"))
        .collect();
    names.sort_unstable();
    names
}

/// A named, tracked thread that blocks until it is finished or dropped.
pub struct BlockedThread {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl BlockedThread {
    /// Spawns it; the spawn is charged to the caller's line.
    #[track_caller]
    pub fn named(name: &str) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = leakcheck::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _ = stopped.recv();
            })
            .expect("the OS starts the thread");
        Self {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops the thread and joins it, which must end cleanly.
    pub fn finish(mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.handle.take() {
            handle.join().expect("the blocked thread ends cleanly");
        }
    }
}

impl Drop for BlockedThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.handle.take() {
            // Possibly while unwinding: never a second panic.
            let _ = handle.join();
        }
    }
}

/// A current-thread runtime with I/O and time, as `#[tokio::test]` builds.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

/// A multi-thread runtime with `workers` worker threads, I/O and time.
pub fn multi_thread_runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}
