//! The daemon's polling: one task holds every enabled feed in a queue
//! ordered by due time and starts a poll when one is due and the limits
//! have room. A feed costs a few dozen bytes while it waits (its slot and
//! its queue entry), not a sleeping task; a poll waiting for a limit is an
//! entry in its host's line, not a task either.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Outcome, Pipeline, PollReport, on_store};
use crate::config::Config;

/// Feed states read from the store in one go when feeds join the queue
/// (at start, or when a reload adds or changes them), so a million feeds
/// start polling while the rest are still being read.
const STATE_BATCH: usize = 2048;

/// The daemon's poller: a handle on the scheduler task.
/// [`Poller::apply`] hands it a new config; feeds whose settings did not
/// change keep their place in the queue.
pub struct Poller {
    pipeline: Pipeline,
    commands: mpsc::UnboundedSender<Command>,
    scheduler: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
}

enum Command {
    Apply(Arc<Config>),
    Reconfigure(Pipeline, Arc<Config>),
}

impl Poller {
    pub fn new(pipeline: Pipeline, shutdown: CancellationToken) -> Poller {
        let (commands, inbox) = mpsc::unbounded_channel();
        let scheduler = Scheduler::new(pipeline.clone());
        let task = tokio::spawn(scheduler.run(inbox, shutdown.clone()));
        Poller {
            pipeline,
            commands,
            scheduler: task,
            shutdown,
        }
    }

    /// Polls the enabled feeds of `config` from now on: new and changed
    /// feeds are due when their stored state says, removed ones stop.
    pub fn apply(&mut self, config: Arc<Config>) {
        let _ = self.commands.send(Command::Apply(config));
    }

    /// Swaps in a pipeline built from new settings; every feed keeps its
    /// place in the queue.
    pub fn reconfigure(&mut self, pipeline: Pipeline, config: Arc<Config>) {
        self.pipeline = pipeline.clone();
        let _ = self.commands.send(Command::Reconfigure(pipeline, config));
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Stops scheduling and waits up to `grace` for polls in flight.
    /// Returns whether they all finished.
    pub async fn stop(self, grace: Duration) -> bool {
        self.shutdown.cancel();
        let _ = self.scheduler.await;
        let polls = &self.pipeline.in_flight.tasks;
        polls.close();
        tokio::time::timeout(grace, polls.wait()).await.is_ok()
    }
}

/// Where a feed of the current config stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Disabled, or gone (410) until its config changes.
    Off,
    /// Its stored state (when it is due) is still to be read.
    Unread,
    /// In the queue, due at `Slot::due`.
    Queued,
    /// Due, waiting in its host's line for a slot.
    Waiting,
    Polling,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Due time, milliseconds since the epoch.
    due: i64,
    /// Whether the due time is one a poll asked for: a feed never polled
    /// is due at once, and its first poll is not counted as late.
    asked: bool,
    /// Bumped whenever the slot is queued again, so a queue entry left
    /// from an earlier turn is known as stale.
    turn: u32,
    standing: Standing,
}

/// A queue entry: due time, feed index in the config, the slot's turn.
type Entry = Reverse<(i64, u32, u32)>;

/// A host's polls in flight and the due feeds waiting for one of its
/// `[poll].per_host` slots, oldest first.
#[derive(Default)]
struct Host {
    polling: usize,
    waiting: VecDeque<(u32, u32)>,
}

struct Scheduler {
    pipeline: Pipeline,
    config: Option<Arc<Config>>,
    /// One per feed of `config`, in its order.
    slots: Vec<Slot>,
    queue: BinaryHeap<Entry>,
    hosts: HashMap<String, Host>,
    /// Polls in flight, by feed id: the slot they belong to now (a reload
    /// moves feeds) and the host they count against.
    polling: HashMap<String, (Option<u32>, String)>,
    /// Feeds whose host had room while every global slot was taken.
    ready: VecDeque<(u32, u32)>,
    /// Slots still `Unread`, from this index on (a hint, checked).
    unread_from: usize,
    /// Since when new feeds' states are being read, and how many so far.
    reading_since: Option<(std::time::Instant, usize)>,
}

type Running = BoxFuture<'static, (Option<i64>, PollReport)>;

impl Scheduler {
    fn new(pipeline: Pipeline) -> Scheduler {
        Scheduler {
            pipeline,
            config: None,
            slots: Vec::new(),
            queue: BinaryHeap::new(),
            hosts: HashMap::new(),
            polling: HashMap::new(),
            ready: VecDeque::new(),
            unread_from: 0,
            reading_since: None,
        }
    }

    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>, stop: CancellationToken) {
        let mut running: FuturesUnordered<Running> = FuturesUnordered::new();
        let mut reading: Option<Reading> = None;
        loop {
            self.launch(&mut running);
            if reading.is_none() {
                reading = self.next_batch();
            }
            let wait = self.next_wait();
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                Some(command) = inbox.recv() => match command {
                    Command::Apply(config) => self.apply(config),
                    Command::Reconfigure(pipeline, config) => {
                        self.pipeline = pipeline;
                        self.apply(config);
                    }
                },
                Some((due, report)) = running.next(), if !running.is_empty() => {
                    self.finished(due, report)
                }
                read = next_of(&mut reading), if reading.is_some() => {
                    reading = None;
                    self.queue_read(read);
                }
                _ = sleep(wait), if wait.is_some() => {}
            }
        }
    }

    /// How long until the next queued feed is due; `None` when the queue
    /// is empty or the global limit is full (a finished poll wakes us).
    fn next_wait(&self) -> Option<Duration> {
        if self.polling.len() >= self.pipeline.limits.global_size() {
            return None;
        }
        let Reverse((due, _, _)) = self.queue.peek()?;
        Some(Duration::from_millis(
            due.saturating_sub(now_ms()).max(0) as u64
        ))
    }

    /// Starts every due poll the limits have room for.
    fn launch(&mut self, running: &mut FuturesUnordered<Running>) {
        let global = self.pipeline.limits.global_size();
        while self.polling.len() < global {
            if let Some((index, turn)) = self.ready.pop_front() {
                self.start(index, turn, running);
                continue;
            }
            let now = now_ms();
            let Some(&Reverse((due, index, turn))) = self.queue.peek() else {
                return;
            };
            if due > now {
                return;
            }
            self.queue.pop();
            let Some(slot) = self.slots.get(index as usize) else {
                continue;
            };
            if slot.turn != turn || slot.standing != Standing::Queued {
                continue;
            }
            let host = self.feed(index).source.host_key();
            let per_host = self.pipeline.options.per_host;
            let line = self.hosts.entry(host).or_default();
            if line.polling >= per_host {
                line.waiting.push_back((index, turn));
                self.slots[index as usize].standing = Standing::Waiting;
                continue;
            }
            line.polling += 1;
            self.start(index, turn, running);
        }
    }

    /// Starts the poll of feed `index`, whose host slot is already counted.
    fn start(&mut self, index: u32, turn: u32, running: &mut FuturesUnordered<Running>) {
        let feed = self.feed(index).clone();
        if self.slots[index as usize].turn != turn {
            // Its host slot was counted for a turn a reload ended.
            self.free_host(&feed.source.host_key());
            return;
        }
        if self.polling.contains_key(&feed.id) {
            // A reload changed the feed while a poll with its old settings
            // runs: this one waits a second and asks again.
            self.free_host(&feed.source.host_key());
            let asked = self.slots[index as usize].asked;
            let due = self.slots[index as usize].due;
            self.queue_at(index, due.max(now_ms() + 1000), asked);
            return;
        }
        let slot = &mut self.slots[index as usize];
        slot.standing = Standing::Polling;
        let due = slot.asked.then_some(slot.due);
        let pipeline = self.pipeline.clone();
        self.polling
            .insert(feed.id.clone(), (Some(index), feed.source.host_key()));
        running.push(Box::pin(
            async move { (due, pipeline.poll_due(&feed).await) },
        ));
    }

    /// A poll ended: its feed is queued again for the report's next poll,
    /// and its host slot goes to the next in line.
    fn finished(&mut self, due: Option<i64>, report: PollReport) {
        let Some((index, host)) = self.polling.remove(&report.feed) else {
            return;
        };
        self.free_host(&host);
        if let Some(due) = due
            && report.outcome != Outcome::Elsewhere
        {
            // How late the poll began against its due time (queueing for
            // the limits included).
            let began = crate::model::earlier(chrono::Utc::now(), report.elapsed);
            let late = began.timestamp_millis().saturating_sub(due).max(0);
            self.pipeline
                .metrics
                .record_lateness(Duration::from_millis(late as u64));
        }
        let Some(index) = index else { return };
        if report.gone {
            tracing::warn!(feed = %report.feed, "gone (410): not polled again until its url changes");
            self.slots[index as usize].standing = Standing::Off;
            return;
        }
        self.queue_at(index, report.next_poll.timestamp_millis(), true);
    }

    /// Gives `host`'s freed slot to the first feed in its line.
    fn free_host(&mut self, host: &str) {
        let Some(line) = self.hosts.get_mut(host) else {
            return;
        };
        line.polling = line.polling.saturating_sub(1);
        while let Some((index, turn)) = line.waiting.pop_front() {
            let current = self.slots.get(index as usize);
            if current.is_some_and(|s| s.turn == turn && s.standing == Standing::Waiting) {
                line.polling += 1;
                self.ready.push_back((index, turn));
                return;
            }
        }
        if line.polling == 0 {
            self.hosts.remove(host);
        }
    }

    fn queue_at(&mut self, index: u32, due: i64, asked: bool) {
        let slot = &mut self.slots[index as usize];
        slot.turn = slot.turn.wrapping_add(1);
        slot.due = due;
        slot.asked = asked;
        slot.standing = Standing::Queued;
        self.queue.push(Reverse((due, index, slot.turn)));
    }

    fn feed(&self, index: u32) -> &crate::config::FeedConfig {
        let config = self
            .config
            .as_ref()
            .expect("slots exist only with a config");
        &config.feeds[index as usize]
    }

    /// Takes in a new config. A feed with the same settings keeps its
    /// slot (its due time, its poll in flight); a new or changed one is
    /// read from the store; a removed one is dropped (a poll of it in
    /// flight is let finish).
    fn apply(&mut self, config: Arc<Config>) {
        let old: HashMap<&str, u32> = match &self.config {
            Some(c) => (c.feeds.iter().enumerate())
                .map(|(i, f)| (f.id.as_str(), i as u32))
                .collect(),
            None => HashMap::new(),
        };
        let mut slots = Vec::with_capacity(config.feeds.len());
        let mut moved: HashMap<u32, u32> = HashMap::new();
        for (i, feed) in config.feeds.iter().enumerate() {
            let kept = old.get(feed.id.as_str()).and_then(|&o| {
                let before = self.feed(o);
                (before == feed && feed.enabled).then_some(o)
            });
            let slot = match kept {
                Some(o) => {
                    moved.insert(o, i as u32);
                    self.slots[o as usize]
                }
                None => Slot {
                    due: 0,
                    asked: false,
                    turn: 0,
                    standing: match feed.enabled {
                        true => Standing::Unread,
                        false => Standing::Off,
                    },
                },
            };
            slots.push(slot);
        }
        drop(old);
        // Polls in flight follow their feed to its new place, or are let
        // finish without a place when it changed or went.
        for (index, _) in self.polling.values_mut() {
            *index = index.and_then(|o| moved.get(&o).copied());
        }
        // Kept feeds queued or waiting are queued afresh at their due time:
        // the queue and the hosts' lines refer to the old places.
        for line in self.hosts.values_mut() {
            line.waiting.clear();
        }
        for (index, _) in std::mem::take(&mut self.ready) {
            // Each held a slot of its host, counted when it left the line.
            let host = self.feed(index).source.host_key();
            if let Some(line) = self.hosts.get_mut(&host) {
                line.polling = line.polling.saturating_sub(1);
            }
        }
        self.queue.clear();
        for (i, slot) in slots.iter_mut().enumerate() {
            if matches!(slot.standing, Standing::Queued | Standing::Waiting) {
                slot.turn = slot.turn.wrapping_add(1);
                slot.standing = Standing::Queued;
                self.queue.push(Reverse((slot.due, i as u32, slot.turn)));
            }
        }
        self.hosts.retain(|_, line| line.polling > 0);
        self.slots = slots;
        self.config = Some(config);
        self.unread_from = 0;
        self.reading_since = Some((std::time::Instant::now(), 0));
    }

    /// Starts reading the stored state of the next batch of new feeds.
    fn next_batch(&mut self) -> Option<Reading> {
        let config = self.config.clone()?;
        let mut batch: Vec<u32> = Vec::new();
        let mut i = self.unread_from;
        while i < self.slots.len() && batch.len() < STATE_BATCH {
            if self.slots[i].standing == Standing::Unread {
                batch.push(i as u32);
            }
            i += 1;
        }
        self.unread_from = i;
        if batch.is_empty() {
            if let Some((since, read)) = self.reading_since.take()
                && read > 0
            {
                let seconds = since.elapsed().as_secs_f64();
                tracing::info!(
                    feeds = read,
                    seconds,
                    "queued every new feed by its stored state"
                );
            }
            return None;
        }
        let store = self.pipeline.store.clone();
        Some(Box::pin(async move {
            let ids: Vec<String> = (batch.iter())
                .map(|&b| config.feeds[b as usize].id.clone())
                .collect();
            let states = on_store(&store, move |s| {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                s.feed_states(&ids)
            })
            .await;
            let states = states.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read feed states; polling those feeds now");
                Vec::new()
            });
            Read {
                config,
                batch,
                states,
            }
        }))
    }

    /// Queues a batch of new feeds: due when the store says (now if never
    /// polled); a feed that answered 410 Gone at its current URL stays
    /// off. A batch read for a config since replaced is dropped: its
    /// feeds are read again.
    fn queue_read(&mut self, read: Read) {
        let current = self.config.as_ref();
        if !current.is_some_and(|c| Arc::ptr_eq(c, &read.config)) {
            return;
        }
        if let Some((_, read_so_far)) = &mut self.reading_since {
            *read_so_far += read.batch.len();
        }
        let now = now_ms();
        for (n, &index) in read.batch.iter().enumerate() {
            if self.slots[index as usize].standing != Standing::Unread {
                continue;
            }
            let feed = &read.config.feeds[index as usize];
            let state = read.states.get(n);
            let gone = state.and_then(|s| s.gone.as_deref());
            if gone == Some(feed.source.to_string().as_str()) {
                self.slots[index as usize].standing = Standing::Off;
                continue;
            }
            match state.and_then(|s| s.next_poll) {
                Some(due) => self.queue_at(index, due.timestamp_millis(), true),
                None => self.queue_at(index, now, false),
            }
        }
    }
}

/// Stored feed states being read for a batch of new feeds.
type Reading = BoxFuture<'static, Read>;

struct Read {
    config: Arc<Config>,
    batch: Vec<u32>,
    states: Vec<crate::model::FeedState>,
}

async fn next_of(reading: &mut Option<Reading>) -> Read {
    match reading {
        Some(r) => r.await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn sleep(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    /// A loopback origin whose answers take 100 ms; it records how many
    /// requests were in flight at most, per host header, and when each
    /// path was fetched.
    #[derive(Default)]
    struct Origin {
        now: AtomicUsize,
        most: AtomicUsize,
        fetched: Mutex<Vec<(String, Instant)>>,
    }

    async fn serve(origin: Arc<Origin>) -> u16 {
        let app = axum::Router::new().route(
            "/{name}",
            axum::routing::get(
                |axum::extract::State(o): axum::extract::State<Arc<Origin>>,
                 axum::extract::Path(name): axum::extract::Path<String>| async move {
                    let n = o.now.fetch_add(1, Ordering::SeqCst) + 1;
                    o.most.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    o.now.fetch_sub(1, Ordering::SeqCst);
                    o.fetched.lock().unwrap().push((name, Instant::now()));
                    "<rss version=\"2.0\"><channel><title>t</title></channel></rss>"
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app.with_state(origin)).await });
        port
    }

    fn config(dir: &std::path::Path, poll: &str, feeds: &[(String, String)]) -> Arc<Config> {
        let mut toml = format!("[poll]\n{poll}\n");
        for (id, url) in feeds {
            toml.push_str(&format!("[[feed]]\nid = \"{id}\"\nurl = \"{url}\"\n"));
        }
        let path = dir.join("feeds.toml");
        std::fs::write(&path, toml).unwrap();
        Arc::new(Config::load(&path).unwrap())
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out: {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_host_waits_in_its_line_while_other_hosts_are_polled() {
        let origin = Arc::new(Origin::default());
        let port = serve(origin.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        // Two host keys on one server: `127.0.0.1:port` and `localhost:port`.
        let mut feeds: Vec<(String, String)> = (0..8)
            .map(|i| {
                (
                    format!("busy{i}"),
                    format!("http://127.0.0.1:{port}/busy{i}"),
                )
            })
            .collect();
        feeds.push(("other".into(), format!("http://localhost:{port}/other")));
        let config = config(dir.path(), "concurrency = 16\nper_host = 2", &feeds);
        let pipeline = crate::app::pipeline(&config).unwrap();
        let stop = CancellationToken::new();
        let mut poller = Poller::new(pipeline, stop.clone());
        poller.apply(config);
        until("every feed fetched", || {
            origin.fetched.lock().unwrap().len() == 9
        })
        .await;
        let fetched = origin.fetched.lock().unwrap().clone();
        let last_busy = (fetched.iter().filter(|(n, _)| n.starts_with("busy")))
            .map(|(_, t)| *t)
            .max()
            .unwrap();
        let other = fetched.iter().find(|(n, _)| n == "other").unwrap().1;
        assert!(
            other < last_busy,
            "the other host waited for the busy host's line"
        );
        // Two for the busy host, one for the other: never more.
        assert_eq!(origin.most.load(Ordering::SeqCst), 3);
        assert!(poller.stop(Duration::from_secs(5)).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_feed_is_a_queue_entry_not_a_task() {
        let origin = Arc::new(Origin::default());
        let port = serve(origin.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let feeds: Vec<(String, String)> = (0..5000)
            .map(|i| (format!("f{i}"), format!("http://127.0.0.1:{port}/f{i}")))
            .collect();
        let config = config(dir.path(), "", &feeds);
        let pipeline = crate::app::pipeline(&config).unwrap();
        // Every feed but the last was polled a moment ago and is due in
        // an hour; the last was never polled.
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        for (id, _) in &feeds[..feeds.len() - 1] {
            let state = crate::model::FeedState {
                next_poll: Some(later),
                ..Default::default()
            };
            pipeline.store.put_feed_state(id, &state).unwrap();
        }
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let before = tasks();
        let stop = CancellationToken::new();
        let mut poller = Poller::new(pipeline, stop.clone());
        poller.apply(config);
        until("the never-polled feed fetched", || {
            origin.fetched.lock().unwrap().len() == 1
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(origin.fetched.lock().unwrap()[0].0, "f4999");
        let during = tasks();
        assert!(
            during <= before + 4,
            "{during} tasks alive for 5000 feeds ({before} before)"
        );
        assert!(poller.stop(Duration::from_secs(5)).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_feed_changed_while_it_is_polled_keeps_its_hosts_slots_counted() {
        let origin = Arc::new(Origin::default());
        let port = serve(origin.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let url = |name: &str| format!("http://127.0.0.1:{port}/{name}");
        let poll = "concurrency = 16\nper_host = 2";
        let first = config(dir.path(), poll, &[("a".into(), url("a"))]);
        let pipeline = crate::app::pipeline(&first).unwrap();
        let stop = CancellationToken::new();
        let mut poller = Poller::new(pipeline, stop.clone());
        poller.apply(first);
        until("a's poll in flight", || {
            origin.now.load(Ordering::SeqCst) == 1
        })
        .await;
        // The same feed at another URL, while its first poll runs.
        let changed = config(dir.path(), poll, &[("a".into(), url("a2"))]);
        poller.apply(changed);
        until("a polled with its new url", || {
            origin
                .fetched
                .lock()
                .unwrap()
                .iter()
                .any(|(n, _)| n == "a2")
        })
        .await;
        // Two new feeds on the same host: both of its slots are free.
        origin.most.store(0, Ordering::SeqCst);
        let feeds = [("a", "a2"), ("b", "b"), ("c", "c")].map(|(id, n)| (id.to_string(), url(n)));
        poller.apply(config(dir.path(), poll, &feeds));
        until("b and c fetched", || {
            origin.fetched.lock().unwrap().len() == 4
        })
        .await;
        assert_eq!(
            origin.most.load(Ordering::SeqCst),
            2,
            "both host slots were used"
        );
        assert!(poller.stop(Duration::from_secs(5)).await);
    }
}
