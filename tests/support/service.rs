//! A small line-based TCP cache service, written the way services usually
//! are, for the tests of untracked work: every task is started with plain
//! `tokio::spawn` and the watcher thread with `std::thread::Builder`, never
//! through leakcheck's wrappers, so leakcheck sees them only as the README's
//! "What leakcheck can see" table says.
//!
//! - [`leaky::Service`] starts an accept loop, one handler task per client, a
//!   purge task ticking on `tokio::time::interval`, and a watcher thread whose
//!   handle is dropped. It has no way to stop any of them: the classic leak.
//! - [`fixed::Service`] starts the same work and has `shutdown().await`,
//!   which cancels everything with a `CancellationToken`, joins every task,
//!   sets the watcher's stop flag, wakes it and joins it.
//!
//! A leaky service still has to stop once its test has looked at the leak,
//! or it would run for the rest of the test binary. [`leaky::Service::kill`]
//! is that hidden kill switch: it is not part of the "service", and tests
//! call it only after their check has run.
//!
//! Every spawn line ends with a `// @spawn:NAME` marker; [`spawn_line`] finds
//! the line in this file's text, so a test can assert the exact line a
//! straggler was spawned at without hard-coding numbers that any edit moves.
//!
//! The protocol: the client sends one command per line and gets one line
//! back: `PING` → `PONG`, `PUT key` → `OK` (the key expires after the
//! service's TTL and the purge task removes it), `GET key` → `HIT` or
//! `MISS`. Only loopback addresses are used.
//!
//! Share it with `#[path = "support/service.rs"] mod service;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc as mpsc_async;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// This file's text, searched by [`spawn_line`].
pub const SOURCE: &str = include_str!("service.rs");

/// The line of this file that spawns `what`: the one ending with the marker
/// `// @spawn:<what>`. Panics unless exactly one line does.
pub fn spawn_line(what: &str) -> u32 {
    marker_line(SOURCE, what)
}

/// The line of `source` ending with `// @spawn:<what>`, counting from 1.
/// Panics unless exactly one line does. The marker is assembled here, so
/// the line that calls this function never matches itself.
pub fn marker_line(source: &str, what: &str) -> u32 {
    let marker = format!("// @{}:{what}", "spawn");
    let lines: Vec<u32> = source
        .lines()
        .zip(1..)
        .filter(|(line, _)| line.trim_end().ends_with(&marker))
        .map(|(_, number)| number)
        .collect();
    match lines.as_slice() {
        [line] => *line,
        _ => panic!("expected exactly one line ending with {marker:?}, found {lines:?}"),
    }
}

/// How a service is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// The watcher thread's name. Linux keeps 15 bytes of it, and tests that
    /// look for the thread by name give each service a name of its own.
    pub watcher_name: String,
    /// How often the purge task removes expired keys.
    pub purge_every: Duration,
    /// How long a key lives.
    pub ttl: Duration,
}

impl Config {
    /// A service whose watcher thread is called `watcher_name`.
    pub fn named(watcher_name: &str) -> Self {
        assert!(
            watcher_name.len() <= 15,
            "Linux cuts thread names to 15 bytes: {watcher_name:?}"
        );
        Config {
            watcher_name: watcher_name.to_owned(),
            purge_every: Duration::from_secs(1),
            ttl: Duration::from_secs(60),
        }
    }
}

/// What the tasks tell the watcher thread.
#[derive(Debug)]
enum Event {
    Accepted(SocketAddr),
    Closed(SocketAddr),
    Purged(usize),
    /// Sent by `fixed::Service::shutdown` after it sets the stop flag, so
    /// that a watcher blocked in `recv` wakes up and sees it.
    Wake,
}

/// Counters kept by the watcher thread.
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicUsize,
    pub closed: AtomicUsize,
    pub purged: AtomicUsize,
}

impl Stats {
    fn record(&self, event: Event) {
        let counter = match event {
            Event::Accepted(_) => &self.accepted,
            Event::Closed(_) => &self.closed,
            Event::Purged(n) => {
                self.purged.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Event::Wake => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the tasks of one service share.
struct Shared {
    cache: Mutex<HashMap<String, Instant>>,
    ttl: Duration,
    events: mpsc::Sender<Event>,
}

impl Shared {
    fn tell_watcher(&self, event: Event) {
        // The watcher may be gone already (a fixed service shutting down).
        let _ = self.events.send(event);
    }

    fn answer(&self, command: &str) -> &'static str {
        let mut words = command.split_whitespace();
        match (words.next(), words.next()) {
            (Some("PING"), None) => "PONG",
            (Some("PUT"), Some(key)) => {
                let expiry = Instant::now() + self.ttl;
                self.cache.lock().unwrap().insert(key.to_owned(), expiry);
                "OK"
            }
            (Some("GET"), Some(key)) => {
                let cache = self.cache.lock().unwrap();
                match cache.get(key) {
                    Some(expiry) if *expiry > Instant::now() => "HIT",
                    _ => "MISS",
                }
            }
            _ => "ERR",
        }
    }

    fn purge_expired(&self) -> usize {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap();
        let before = cache.len();
        cache.retain(|_, expiry| *expiry > now);
        before - cache.len()
    }
}

/// Serves one client until it hangs up.
async fn serve(socket: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(command)) = lines.next_line().await {
        let reply = shared.answer(&command);
        if write
            .write_all(format!("{reply}\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    shared.tell_watcher(Event::Closed(peer));
}

/// Removes expired keys on every tick, forever.
async fn purge(shared: Arc<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let purged = shared.purge_expired();
        if purged > 0 {
            shared.tell_watcher(Event::Purged(purged));
        }
    }
}

/// Binds a listener on a free loopback port.
async fn bind() -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// The state both services share, and the watcher's end of the channel.
fn shared(config: &Config) -> (Arc<Shared>, mpsc::Receiver<Event>, Arc<Stats>) {
    let (events, watcher_events) = mpsc::channel();
    let shared = Arc::new(Shared {
        cache: Mutex::new(HashMap::new()),
        ttl: config.ttl,
        events,
    });
    (shared, watcher_events, Arc::new(Stats::default()))
}

/// Waits until the watcher thread runs its own code. Until then Linux may
/// still show the thread under its creator's name, because std names a
/// thread from inside it; a service that waits for its watcher's first
/// scan does this anyway.
async fn watcher_started(ready: oneshot::Receiver<()>) -> io::Result<()> {
    ready
        .await
        .map_err(|_| io::Error::other("the watcher thread ended before it started"))
}

pub mod leaky {
    //! The service as it is often first written: nothing can stop it.

    use super::*;

    /// The leaky service. Dropping it stops nothing.
    pub struct Service {
        addr: SocketAddr,
        stats: Arc<Stats>,
        kill: KillSwitch,
        /// Ends (`None`) once every clone of `kill.alive` is gone.
        all_ended: mpsc_async::UnboundedReceiver<()>,
    }

    /// Test machinery, not part of the service: every task the service
    /// spawns, and its watcher thread, holds a clone of it, so that a test
    /// can stop the service once its check has looked at the leak, and wait
    /// until everything has ended.
    #[derive(Clone)]
    struct KillSwitch {
        token: CancellationToken,
        alive: mpsc_async::UnboundedSender<()>,
    }

    impl KillSwitch {
        /// `work`, made to end when the switch is thrown, and holding a
        /// clone of the switch until it has ended.
        fn wrap(
            &self,
            work: impl Future<Output = ()> + Send + 'static,
        ) -> impl Future<Output = ()> + Send + 'static {
            let switch = self.clone();
            async move {
                let _ = switch.token.run_until_cancelled(work).await;
                drop(switch);
            }
        }
    }

    impl Service {
        /// Starts the service on a free loopback port.
        pub async fn start(config: Config) -> io::Result<Service> {
            let (listener, addr) = bind().await?;
            let (shared, watcher_events, stats) = shared(&config);
            let (alive, all_ended) = mpsc_async::unbounded_channel();
            let kill = KillSwitch {
                token: CancellationToken::new(),
                alive,
            };

            // The watcher's handle is dropped: nothing will ever join it. It
            // returns only once every sender of its channel is gone, that is
            // once every task below has ended, which no code of the service
            // ever arranges.
            let (ready, started) = oneshot::channel();
            let (watcher_stats, switch) = (stats.clone(), kill.clone());
            let builder = std::thread::Builder::new().name(config.watcher_name.clone());
            builder.spawn(move || {
                // @spawn:leaky-watcher-body
                let _switch = switch;
                let _ = ready.send(());
                for event in watcher_events {
                    watcher_stats.record(event);
                }
            })?;
            watcher_started(started).await?;

            let accept = accept_loop(listener, shared.clone(), kill.clone());
            tokio::spawn(kill.wrap(accept)); // @spawn:leaky-accept
            tokio::spawn(kill.wrap(purge(shared, config.purge_every))); // @spawn:leaky-purge
            Ok(Service {
                addr,
                stats,
                kill,
                all_ended,
            })
        }

        /// Where the service listens.
        pub fn addr(&self) -> SocketAddr {
            self.addr
        }

        /// The watcher's counters.
        pub fn stats(&self) -> Arc<Stats> {
            self.stats.clone()
        }

        /// The hidden kill switch, for tests, after their check: stops every
        /// task, and waits until each has ended and the watcher thread has
        /// returned, which it does once the last task, and with it the last
        /// sender of its channel, is gone.
        pub async fn kill(self) {
            let Service {
                kill,
                mut all_ended,
                ..
            } = self;
            kill.token.cancel();
            drop(kill);
            while all_ended.recv().await.is_some() {}
        }
    }

    /// Accepts clients forever, one handler task each.
    async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, kill: KillSwitch) {
        loop {
            let Ok((socket, peer)) = listener.accept().await else {
                continue;
            };
            shared.tell_watcher(Event::Accepted(peer));
            let handler = serve(socket, peer, shared.clone());
            tokio::spawn(kill.wrap(handler)); // @spawn:leaky-handler
        }
    }
}

pub mod fixed {
    //! The same service with a shutdown that stops and joins everything.

    use super::*;
    use std::thread::JoinHandle as ThreadHandle;

    /// The fixed service: call [`Service::shutdown`] before it is dropped.
    pub struct Service {
        addr: SocketAddr,
        stats: Arc<Stats>,
        shared: Arc<Shared>,
        token: CancellationToken,
        accept: JoinHandle<()>,
        purge: JoinHandle<()>,
        watcher: ThreadHandle<()>,
        stop_watcher: Arc<AtomicBool>,
    }

    impl Service {
        /// Starts the service on a free loopback port.
        pub async fn start(config: Config) -> io::Result<Service> {
            let (listener, addr) = bind().await?;
            let (shared, watcher_events, stats) = shared(&config);
            let token = CancellationToken::new();

            let stop_watcher = Arc::new(AtomicBool::new(false));
            let (ready, started) = oneshot::channel();
            let (stop, watcher_stats) = (stop_watcher.clone(), stats.clone());
            let builder = std::thread::Builder::new().name(config.watcher_name.clone());
            let watcher = builder.spawn(move || {
                let _ = ready.send(());
                // Blocks in `recv` between events. The channel is FIFO, so
                // the shutdown's `Wake` comes after every event sent before
                // it, and all of them are counted.
                for event in watcher_events {
                    match event {
                        Event::Wake if stop.load(Ordering::Acquire) => break,
                        event => watcher_stats.record(event),
                    }
                }
            })?;
            watcher_started(started).await?;

            let accepting = accept_until_cancelled(listener, shared.clone(), token.clone());
            let accept = tokio::spawn(accepting); // @spawn:fixed-accept
            let purging = until_cancelled(&token, purge(shared.clone(), config.purge_every));
            let purge = tokio::spawn(purging); // @spawn:fixed-purge
            Ok(Service {
                addr,
                stats,
                shared,
                token,
                accept,
                purge,
                watcher,
                stop_watcher,
            })
        }

        /// Where the service listens.
        pub fn addr(&self) -> SocketAddr {
            self.addr
        }

        /// The watcher's counters.
        pub fn stats(&self) -> Arc<Stats> {
            self.stats.clone()
        }

        /// Stops accepting, ends every handler and the purge task and waits
        /// for them, then stops the watcher thread and joins it.
        pub async fn shutdown(self) {
            self.token.cancel();
            // The accept loop joins its handlers before it returns.
            self.accept.await.expect("the accept loop panicked");
            self.purge.await.expect("the purge task panicked");
            self.stop_watcher.store(true, Ordering::Release);
            self.shared.tell_watcher(Event::Wake);
            // The watcher returns as soon as it has seen the flag; joining
            // it blocks this worker only for that long.
            self.watcher.join().expect("the watcher thread panicked");
        }
    }

    /// `work`, ended early when `token` is cancelled.
    fn until_cancelled(
        token: &CancellationToken,
        work: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let token = token.clone();
        async move {
            let _ = token.run_until_cancelled(work).await;
        }
    }

    /// Accepts clients until cancelled, then joins every handler.
    async fn accept_until_cancelled(
        listener: TcpListener,
        shared: Arc<Shared>,
        token: CancellationToken,
    ) {
        let mut handlers: Vec<JoinHandle<()>> = Vec::new();
        loop {
            let (socket, peer) = tokio::select! {
                _ = token.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => continue,
                },
            };
            shared.tell_watcher(Event::Accepted(peer));
            handlers.retain(|handler| !handler.is_finished());
            let serving = until_cancelled(&token, serve(socket, peer, shared.clone()));
            let handler = tokio::spawn(serving); // @spawn:fixed-handler
            handlers.push(handler);
        }
        drop(listener);
        for handler in handlers {
            handler.await.expect("a connection handler panicked");
        }
    }
}

/// A test client: one connection, one command at a time.
pub struct Client {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

/// The longest a client waits for the service: a bound, so that a broken
/// service fails the test instead of hanging it. Healthy runs never get near
/// it. Not for use on paused time, where it would fire while the runtime
/// waits for the socket.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// Connects once, and makes one `PING` round trip: when this returns,
    /// the service has accepted the connection, its handler task exists, and
    /// that handler has answered and is waiting for the next command.
    pub async fn connect(addr: SocketAddr) -> Client {
        assert!(
            addr.ip().is_loopback(),
            "tests only talk to loopback: {addr}"
        );
        let stream = tokio::time::timeout(CLIENT_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connecting to the service timed out")
            .expect("connecting to the service failed");
        let (read, write) = stream.into_split();
        let mut client = Client {
            lines: BufReader::new(read).lines(),
            write,
        };
        assert_eq!(client.request("PING").await, "PONG");
        client
    }

    /// Sends one command and returns the reply line.
    pub async fn request(&mut self, command: &str) -> String {
        let exchange = async {
            self.write
                .write_all(format!("{command}\n").as_bytes())
                .await?;
            self.lines.next_line().await
        };
        tokio::time::timeout(CLIENT_TIMEOUT, exchange)
            .await
            .expect("the service did not answer in time")
            .expect("talking to the service failed")
            .expect("the service hung up")
    }

    /// The connection as a std socket, to keep it open where a tokio one
    /// cannot live (past the end of its runtime).
    pub fn into_std(self) -> std::net::TcpStream {
        let stream = self
            .lines
            .into_inner()
            .into_inner()
            .reunite(self.write)
            .expect("both halves come from one stream");
        stream.into_std().expect("the socket is still registered")
    }
}
