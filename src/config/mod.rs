//! Config in two stages: the raw TOML as written (`raw`), then one
//! validation pass into [`Config`], the only form the rest of the program
//! sees. Every mistake is reported as `FILE:LINE:COL: message`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;
use url::Url;

mod tables;

use tables::FeedText;

use crate::rules::{Action, Field, MAX_COMPILED, MAX_PATTERN, MAX_RULES, Rule, Rules};

/// Largest `?limit=` any output accepts, and the ceiling for `[output].items`.
pub const MAX_LIMIT: usize = 1000;

const DAY: u64 = 86_400;
/// The longest polling interval, `min_interval` or `max_interval`.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(365 * DAY);
/// The longest fetch `timeout` or `connect_timeout`.
pub const MAX_FETCH_TIME: Duration = Duration::from_secs(3600);
/// The longest `retention` or `item_comments_max_age`: a century is "keep
/// everything" for a news store, and keeps every date computed from it in
/// range.
pub const MAX_AGE: Duration = Duration::from_secs(36_500 * DAY);
/// The longest `header_timeout`.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(3600);
/// sled's page cache: at least 1 MiB (sled cannot run on less), at most 1 TiB.
pub const CACHE_BYTES: (u64, u64) = (1 << 20, 1 << 40);
/// A feed body: at least 1 KiB, at most 1 GiB.
pub const BODY_BYTES: (u64, u64) = (1 << 10, 1 << 30);
/// Stories kept per feed (and taken from one document), at most.
pub const MAX_ITEMS_PER_FEED: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this config came from; relative paths are resolved against
    /// its directory.
    pub file: PathBuf,
    /// 0 as loaded; each reload of a running daemon counts one up, so what
    /// was derived from an older config is known to be stale.
    pub version: u64,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub poll: PollConfig,
    pub output: OutputConfig,
    pub feeds: Vec<FeedConfig>,
    /// `[[rule]]` tables: what the outputs leave out (see `rules`).
    pub rules: Rules,
    pub websub: WebSubConfig,
    /// Where each feed's table was in the text, when the file was read
    /// table by table (see `tables`): what a reload may keep.
    pub(crate) feed_text: Option<Arc<FeedText>>,
}

/// `[websub]`: how Paddock's own outputs are pushed to readers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebSubConfig {
    /// The hub the outputs advertise; none: they advertise none.
    pub hub: Option<Hub>,
    /// Whether the built-in hub may call back loopback, private,
    /// link-local and other non-public addresses (for tests and LANs); the
    /// same rule holds for the hubs feeds advertise.
    pub allow_private_callbacks: bool,
    /// Where hubs reach this server, to push the feeds that advertise a
    /// hub (`{callback_base}websub/callback/...`); unset: no subscribing.
    pub callback_base: Option<Url>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Hub {
    /// Paddock is the hub of its own outputs, at `{base_url}websub`.
    Builtin,
    /// Another hub, pinged (`hub.mode=publish`) when an output changes.
    External(Url),
}

impl Config {
    /// The URL of the hub the outputs advertise, if any.
    pub fn hub_url(&self) -> Option<String> {
        match &self.websub.hub {
            Some(Hub::Builtin) => Some(
                self.server
                    .base_url
                    .join("websub")
                    .map(String::from)
                    .unwrap_or_default(),
            ),
            Some(Hub::External(url)) => Some(url.to_string()),
            None => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub base_url: Url,
    pub title: String,
    pub admin_token_env: String,
    /// A client must send a request's headers within this long of
    /// connecting or of its previous response (so it is also how long an
    /// idle keep-alive connection stays open).
    pub header_timeout: Duration,
    /// Open HTTP connections at most; more wait in the listen backlog.
    pub max_connections: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    pub path: PathBuf,
    pub retention: Duration,
    pub max_items_per_feed: usize,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    /// Free space the store's disk keeps: stories are not written when
    /// there is less.
    pub min_free_bytes: u64,
    /// A PostgreSQL database to keep everything in instead of sled at
    /// `path` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`).
    pub url: Option<String>,
    /// Most connections to that database at once.
    pub pool_size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PollConfig {
    pub interval: Duration,
    pub concurrency: usize,
    pub per_host: usize,
    /// How long a poll's claim on its feed (and a fetch's on a host slot)
    /// holds when instances share a database: a dead instance's feeds are
    /// polled by another once it runs out.
    pub lease: Duration,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_body_bytes: u64,
    pub max_redirects: usize,
    pub user_agent: String,
    /// Story comment feeds fetched per poll of one feed, at most.
    pub item_comment_feeds: usize,
    /// Only stories published this recently have their comment feeds read.
    pub item_comments_max_age: Duration,
    /// No feed is polled more often than this.
    pub min_interval: Duration,
    /// Servers' requests to wait (`Retry-After`, `max-age`, `<ttl>`) are
    /// honoured up to this long.
    pub max_interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputConfig {
    pub items: usize,
    pub recent_comments: usize,
    /// Comment excerpts are cut to this many characters.
    pub excerpt_chars: usize,
    /// Comments gained in this long make a story's heat (see `stories::heat`).
    pub heat_window: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    pub id: String,
    pub source: Source,
    pub title: Option<String>,
    /// Boxed: few feeds have one, and a `Source` is 96 bytes, which a
    /// million feeds would carry whether set or not.
    pub comments_url: Option<Box<Source>>,
    pub item_comments: bool,
    pub groups: Vec<String>,
    pub interval: Duration,
    pub enabled: bool,
}

impl FeedConfig {
    /// The operator's title, else the id (the feed's own title, once
    /// known, lives in the store).
    pub fn display_title(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }
}

/// Where a feed document comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    Http(Url),
    File(PathBuf),
}

impl Source {
    /// The URL form: `http(s)://...` or `file:///...`.
    pub fn url(&self) -> Url {
        match self {
            Source::Http(u) => u.clone(),
            Source::File(p) => Url::from_file_path(p)
                .unwrap_or_else(|_| Url::parse("file:///").expect("static URL parses")),
        }
    }

    /// The host key that per-host limits count against.
    pub fn host_key(&self) -> String {
        match self {
            Source::Http(u) => format!(
                "{}:{}",
                u.host_str().unwrap_or(""),
                u.port_or_known_default().unwrap_or(0)
            ),
            Source::File(_) => "file".to_string(),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Http(u) => write!(f, "{u}"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A config mistake, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the config file: {message}", file.display())]
    Read { file: PathBuf, message: String },
    #[error("{}:{line}:{column}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl Config {
    /// Reads and validates the config file at `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        Config::parse(&text, file)
    }

    /// Validates config text as if read from `file`.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        Config::parse_after(text, file, None)
    }

    /// Reads the config file again after `previous`: a `[[feed]]` table
    /// whose text did not change, in a file whose other settings did not
    /// change, is taken from `previous` without being read again.
    pub fn reload(previous: &Config) -> Result<Config, ConfigError> {
        let file = &previous.file;
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        Config::parse_after(&text, file, Some(previous))
    }

    fn parse_after(
        text: &str,
        file: &Path,
        previous: Option<&Config>,
    ) -> Result<Config, ConfigError> {
        let at = |span: Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            ConfigError::Invalid {
                file: file.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        if let Some(config) = tables::read(text, file, &dir, previous) {
            return config.map_err(|(span, msg)| at(span, msg));
        }
        let mut raw: raw::File = toml::from_str(text).map_err(|e| {
            at(
                e.span().unwrap_or(0..0),
                e.message().trim().replace('\n', " "),
            )
        })?;
        let tables = std::mem::take(&mut raw.feed);
        let feeds = Box::new(move |defaults: &FeedDefaults| {
            let mut seen = HashSet::new();
            let feeds = (tables.into_iter())
                .map(|f| feed(f, defaults, &mut seen))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((feeds, None))
        });
        validate(raw, &dir, file, text, feeds).map_err(|(span, msg)| at(span, msg))
    }

    pub fn feed(&self, id: &str) -> Option<&FeedConfig> {
        self.feeds.iter().find(|f| f.id == id)
    }

    /// Every group named by any feed, sorted.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self
            .feeds
            .iter()
            .flat_map(|f| f.groups.iter().cloned())
            .collect();
        groups.sort();
        groups.dedup();
        groups
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

type Invalid = (Range<usize>, String);

/// The longest `[output].heat_window`.
pub const MAX_HEAT_WINDOW: Duration = Duration::from_secs(30 * DAY);

/// The shortest `[poll].lease`: it is renewed every third of it.
const MIN_LEASE: Duration = Duration::from_secs(1);

/// What a feed table takes from the rest of the file.
pub(crate) struct FeedDefaults<'a> {
    dir: &'a Path,
    interval: Duration,
}

/// The feeds, built by `validate`'s caller from [`FeedDefaults`]: from the
/// whole file's tables, or table by table (`feed_text`).
type Feeds<'a> =
    dyn FnOnce(&FeedDefaults) -> Result<(Vec<FeedConfig>, Option<Arc<FeedText>>), Invalid> + 'a;

fn validate(
    raw: raw::File,
    dir: &Path,
    file: &Path,
    text: &str,
    feeds: Box<Feeds<'_>>,
) -> Result<Config, Invalid> {
    let server = raw.server.unwrap_or_default();
    let storage = raw.storage.unwrap_or_default();
    let poll = raw.poll.unwrap_or_default();
    let output = raw.output.unwrap_or_default();

    let listen = match &server.listen {
        Some(s) => s.get_ref().parse::<SocketAddr>().map_err(|_| {
            (
                s.span(),
                format!(
                    "`listen` must be an address like \"127.0.0.1:8080\", not {:?}",
                    s.get_ref()
                ),
            )
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let base_url = match &server.base_url {
        Some(s) => {
            let url = Url::parse(s.get_ref())
                .map_err(|e| (s.span(), format!("`base_url` must be an absolute URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err((s.span(), "`base_url` must be an http or https URL".into()));
            }
            // Output paths are joined onto it: "http://h/paddock" must mean
            // the folder, not a file in "/".
            if url.path().ends_with('/') {
                url
            } else {
                let mut url = url;
                url.set_path(&format!("{}/", url.path()));
                url
            }
        }
        None => Url::parse(&format!("http://{listen}/")).expect("socket address forms a URL"),
    };
    let user_agent = poll.user_agent.clone().unwrap_or_else(|| {
        format!(
            "paddock/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            base_url.as_str().trim_end_matches('/')
        )
    });

    let storage_cfg = StorageConfig {
        path: dir.join(storage.path.as_deref().unwrap_or("data")),
        retention: duration(&storage.retention, "90d", MAX_AGE)?,
        max_items_per_feed: bounded(&storage.max_items_per_feed, 1000, 1, MAX_ITEMS_PER_FEED)?,
        cache_bytes: bounded(&storage.cache_bytes, 64 << 20, CACHE_BYTES.0, CACHE_BYTES.1)?,
        min_free_bytes: bounded(&storage.min_free_bytes, 64 << 20, 0, 1 << 50)?,
        url: match &storage.url {
            Some(u) => Some(database_url(u)?),
            None => None,
        },
        pool_size: bounded(&storage.pool_size, 16, 1, 1000)?,
    };
    let poll_cfg = PollConfig {
        interval: duration(&poll.interval, "15m", MAX_POLL_WAIT)?,
        concurrency: bounded(&poll.concurrency, 16, 1, 10_000)?,
        per_host: bounded(&poll.per_host, 2, 1, 1000)?,
        lease: duration(&poll.lease, "60s", MAX_FETCH_TIME)?,
        timeout: duration(&poll.timeout, "20s", MAX_FETCH_TIME)?,
        connect_timeout: duration(&poll.connect_timeout, "10s", MAX_FETCH_TIME)?,
        max_body_bytes: bounded(&poll.max_body_bytes, 15 << 20, BODY_BYTES.0, BODY_BYTES.1)?,
        max_redirects: bounded(&poll.max_redirects, 5, 0, 20)?,
        user_agent,
        item_comment_feeds: bounded(&poll.item_comment_feeds, 10, 0, 100)?,
        item_comments_max_age: duration(&poll.item_comments_max_age, "7d", MAX_AGE)?,
        min_interval: duration(&poll.min_interval, "1m", MAX_POLL_WAIT)?,
        max_interval: duration(&poll.max_interval, "24h", MAX_POLL_WAIT)?,
    };
    if let Some(lease) = &poll.lease
        && poll_cfg.lease < MIN_LEASE
    {
        return Err((
            lease.span(),
            "`lease` must be at least \"1s\": it is renewed every third of it".into(),
        ));
    }
    let output_cfg = OutputConfig {
        items: bounded(&output.items, 50, 1, MAX_LIMIT)?,
        recent_comments: bounded(&output.recent_comments, 5, 0, 100)?,
        excerpt_chars: bounded(&output.excerpt_chars, 200, 20, 2000)?,
        heat_window: duration(&output.heat_window, "24h", MAX_HEAT_WINDOW)?,
    };

    let defaults = FeedDefaults {
        dir,
        interval: poll_cfg.interval,
    };
    let (feeds, feed_text) = feeds(&defaults)?;

    Ok(Config {
        file: file.to_path_buf(),
        version: 0,
        server: ServerConfig {
            listen,
            base_url,
            title: server.title.unwrap_or_else(|| "Auto news".into()),
            admin_token_env: server
                .admin_token_env
                .unwrap_or_else(|| "PADDOCK_ADMIN_TOKEN".into()),
            header_timeout: duration(&server.header_timeout, "10s", MAX_SERVER_WAIT)?,
            max_connections: bounded(&server.max_connections, 512, 1, 100_000)?,
        },
        storage: storage_cfg,
        poll: poll_cfg,
        output: output_cfg,
        rules: rules(raw.rule, &feeds, text)?,
        websub: websub(raw.websub.unwrap_or_default())?,
        feeds,
        feed_text,
    })
}

/// One `[[feed]]` table into its [`FeedConfig`]; `seen` holds the ids
/// before it.
fn feed(
    f: raw::Feed,
    defaults: &FeedDefaults,
    seen: &mut HashSet<String>,
) -> Result<FeedConfig, Invalid> {
    let id = f.id.get_ref();
    if !is_slug(id) {
        return Err((
            f.id.span(),
            format!("feed id {id:?} must be lowercase letters, digits, '-' or '_'"),
        ));
    }
    if !seen.insert(id.clone()) {
        return Err((f.id.span(), format!("duplicate feed id {id:?}")));
    }
    let mut groups = Vec::new();
    for g in f.groups.unwrap_or_default() {
        if !is_slug(g.get_ref()) {
            return Err((
                g.span(),
                format!(
                    "group {:?} must be lowercase letters, digits, '-' or '_'",
                    g.get_ref()
                ),
            ));
        }
        if !groups.contains(g.get_ref()) {
            groups.push(g.into_inner());
        }
    }
    Ok(FeedConfig {
        id: id.clone(),
        source: source(&f.url, defaults.dir)?,
        title: f.title.filter(|t| !t.trim().is_empty()),
        comments_url: (f.comments_url.as_ref())
            .map(|u| source(u, defaults.dir).map(Box::new))
            .transpose()?,
        item_comments: f.item_comments.unwrap_or(false),
        groups,
        interval: match &f.interval {
            Some(_) => duration(&f.interval, "", MAX_POLL_WAIT)?,
            None => defaults.interval,
        },
        enabled: f.enabled.unwrap_or(true),
    })
}

fn websub(raw: raw::WebSub) -> Result<WebSubConfig, Invalid> {
    let hub = match &raw.hub {
        None => None,
        Some(h) if h.get_ref() == "builtin" => Some(Hub::Builtin),
        Some(h) => {
            let url = Url::parse(h.get_ref())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"));
            match url {
                Some(url) => Some(Hub::External(url)),
                None => {
                    return Err((
                        h.span(),
                        format!(
                            "`hub` must be \"builtin\" or an http(s) URL, not {:?}",
                            h.get_ref()
                        ),
                    ));
                }
            }
        }
    };
    let callback_base = match &raw.callback_base {
        None => None,
        Some(c) => {
            let url = Url::parse(c.get_ref())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"));
            let Some(mut url) = url else {
                return Err((
                    c.span(),
                    "`callback_base` must be an absolute http(s) URL that hubs can reach".into(),
                ));
            };
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            Some(url)
        }
    };
    Ok(WebSubConfig {
        hub,
        allow_private_callbacks: raw.allow_private_callbacks.unwrap_or(false),
        callback_base,
    })
}

/// The `[[rule]]` tables, compiled: each pattern once, each scope resolved
/// to the feeds it covers.
fn rules(raw: Vec<raw::Rule>, feeds: &[FeedConfig], text: &str) -> Result<Rules, Invalid> {
    if let Some(extra) = raw.get(MAX_RULES) {
        return Err((
            extra.action.span(),
            format!("at most {MAX_RULES} [[rule]] tables; this is one more"),
        ));
    }
    let mut rules = Vec::with_capacity(raw.len());
    for r in raw {
        let action = match r.action.get_ref().as_str() {
            "block" => Action::Block,
            "keep" => Action::Keep,
            other => {
                return Err((
                    r.action.span(),
                    format!("`action` must be \"block\" or \"keep\", not {other:?}"),
                ));
            }
        };
        let given = [&r.title, &r.content, &r.author, &r.category, &r.url, &r.any];
        let mut patterns = Vec::new();
        for ((name, field), pattern) in Field::ALL.iter().zip(given) {
            let Some(pattern) = pattern else { continue };
            patterns.push((*field, compile(name, pattern)?));
        }
        let mut scope = None::<HashSet<String>>;
        let mut scope_feeds = Vec::new();
        for f in r.feeds.unwrap_or_default() {
            if !feeds.iter().any(|c| &c.id == f.get_ref()) {
                return Err((f.span(), format!("no feed has the id {:?}", f.get_ref())));
            }
            scope
                .get_or_insert_with(HashSet::new)
                .insert(f.get_ref().clone());
            scope_feeds.push(f.into_inner());
        }
        let mut scope_groups = Vec::new();
        for g in r.groups.unwrap_or_default() {
            let members: Vec<&FeedConfig> = (feeds.iter())
                .filter(|c| c.groups.contains(g.get_ref()))
                .collect();
            if members.is_empty() {
                return Err((
                    g.span(),
                    format!("no feed is in the group {:?}", g.get_ref()),
                ));
            }
            let set = scope.get_or_insert_with(HashSet::new);
            set.extend(members.iter().map(|c| c.id.clone()));
            scope_groups.push(g.into_inner());
        }
        let older_than = match &r.older_than {
            Some(_) => Some(duration(&r.older_than, "", MAX_AGE)?),
            None => None,
        };
        rules.push(Rule {
            action,
            line: line_col(text, r.action.span().start).0,
            patterns,
            feeds: scope_feeds,
            groups: scope_groups,
            scope,
            older_than,
        });
    }
    Ok(Rules(rules))
}

/// A rule's pattern, compiled with the `regex` crate (linear time on any
/// input), within [`MAX_PATTERN`] bytes and [`MAX_COMPILED`] compiled.
fn compile(key: &str, pattern: &Spanned<String>) -> Result<regex::Regex, Invalid> {
    let text = pattern.get_ref();
    if text.len() > MAX_PATTERN {
        return Err((
            pattern.span(),
            format!(
                "`{key}` is {} bytes long; a pattern may be at most {MAX_PATTERN}",
                text.len()
            ),
        ));
    }
    regex::RegexBuilder::new(text)
        .size_limit(MAX_COMPILED)
        .dfa_size_limit(MAX_COMPILED)
        .build()
        .map_err(|e| {
            let why = match e {
                regex::Error::CompiledTooBig(limit) => format!(
                    "`{key}` compiles to more than {limit} bytes; make the pattern smaller (fewer repetitions, fewer alternatives)"
                ),
                other => format!(
                    "`{key}` is not a regular expression: {}",
                    other.to_string().lines().last().unwrap_or("").trim()
                ),
            };
            (pattern.span(), why)
        })
}

/// A `[storage].url`: a PostgreSQL URL the driver can read. The message
/// never repeats the URL (it may hold a password).
fn database_url(u: &Spanned<String>) -> Result<String, Invalid> {
    let text = u.get_ref();
    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
        return Err((
            u.span(),
            "`url` must be a PostgreSQL URL like \"postgres://paddock@db.example:5432/paddock\""
                .into(),
        ));
    }
    match text.parse::<tokio_postgres::Config>() {
        Ok(c) if matches!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Disable | tokio_postgres::config::SslMode::Prefer) => {
            Ok(text.clone())
        }
        Ok(_) => Err((
            u.span(),
            "`url` asks for TLS (sslmode), which Paddock does not speak to the database: use sslmode=disable or prefer, on a trusted network or a Unix socket".into(),
        )),
        Err(e) => Err((u.span(), format!("`url` is not a PostgreSQL URL the driver reads: {e}"))),
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A duration key: more than zero and at most `max`.
fn duration(
    value: &Option<Spanned<String>>,
    default: &str,
    max: Duration,
) -> Result<Duration, Invalid> {
    let Some(s) = value else {
        return Ok(humantime::parse_duration(default).expect("default durations parse"));
    };
    let d = humantime::parse_duration(s.get_ref().trim()).map_err(|e| {
        (
            s.span(),
            format!(
                "{:?} is not a duration like \"90s\", \"15m\", \"2h\" or \"7d\": {e}",
                s.get_ref()
            ),
        )
    })?;
    if d.is_zero() {
        return Err((s.span(), "a duration must be more than zero".into()));
    }
    if d > max {
        return Err((
            s.span(),
            format!(
                "{:?} is longer than this key allows: at most {:?}",
                s.get_ref(),
                short(max)
            ),
        ));
    }
    Ok(d)
}

/// A bound as an operator writes it: "36500d", "1h", "90s".
fn short(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s % DAY == 0 => format!("{}d", s / DAY),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{s}s"),
    }
}

/// A number key within `min..=max`.
fn bounded<T>(value: &Option<Spanned<T>>, default: T, min: T, max: T) -> Result<T, Invalid>
where
    T: Copy + PartialOrd + std::fmt::Display,
{
    match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => Err((
            v.span(),
            format!("must be between {min} and {max}, not {}", v.get_ref()),
        )),
    }
}

fn source(value: &Spanned<String>, dir: &Path) -> Result<Source, Invalid> {
    let s = value.get_ref().trim();
    let bad = |msg: String| (value.span(), msg);
    if s.is_empty() {
        return Err(bad("a feed url must not be empty".into()));
    }
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let url = Url::parse(s).map_err(|e| bad(format!("{s:?} is not a valid URL: {e}")))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad(format!("{s:?} has no host")));
        }
        return Ok(Source::Http(url));
    }
    if lower.starts_with("file://") {
        let url = Url::parse(s).map_err(|e| bad(format!("{s:?} is not a valid URL: {e}")))?;
        let path = url
            .to_file_path()
            .map_err(|_| bad(format!("{s:?} must be an absolute file:/// URL")))?;
        return Ok(Source::File(path));
    }
    if let Some((scheme, _)) = s.split_once("://") {
        return Err(bad(format!(
            "unsupported URL scheme {scheme:?}: use http, https, file or a path"
        )));
    }
    Ok(Source::File(dir.join(s)))
}

/// The file as written. Every key is optional here but `[[feed]].id` and
/// `.url`; defaults are applied by `validate`.
mod raw {
    use serde::Deserialize;
    use toml::Spanned;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct File {
        pub server: Option<Server>,
        pub storage: Option<Storage>,
        pub poll: Option<Poll>,
        pub output: Option<Output>,
        #[serde(default)]
        pub feed: Vec<Feed>,
        #[serde(default)]
        pub rule: Vec<Rule>,
        pub websub: Option<WebSub>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct WebSub {
        pub hub: Option<Spanned<String>>,
        pub allow_private_callbacks: Option<bool>,
        pub callback_base: Option<Spanned<String>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Rule {
        pub action: Spanned<String>,
        pub title: Option<Spanned<String>>,
        pub content: Option<Spanned<String>>,
        pub author: Option<Spanned<String>>,
        pub category: Option<Spanned<String>>,
        pub url: Option<Spanned<String>>,
        pub any: Option<Spanned<String>>,
        pub feeds: Option<Vec<Spanned<String>>>,
        pub groups: Option<Vec<Spanned<String>>>,
        pub older_than: Option<Spanned<String>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Server {
        pub listen: Option<Spanned<String>>,
        pub base_url: Option<Spanned<String>>,
        pub title: Option<String>,
        pub admin_token_env: Option<String>,
        pub header_timeout: Option<Spanned<String>>,
        pub max_connections: Option<Spanned<usize>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Storage {
        pub path: Option<String>,
        pub retention: Option<Spanned<String>>,
        pub max_items_per_feed: Option<Spanned<usize>>,
        pub cache_bytes: Option<Spanned<u64>>,
        pub min_free_bytes: Option<Spanned<u64>>,
        pub url: Option<Spanned<String>>,
        pub pool_size: Option<Spanned<usize>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Poll {
        pub interval: Option<Spanned<String>>,
        pub concurrency: Option<Spanned<usize>>,
        pub per_host: Option<Spanned<usize>>,
        pub lease: Option<Spanned<String>>,
        pub timeout: Option<Spanned<String>>,
        pub connect_timeout: Option<Spanned<String>>,
        pub max_body_bytes: Option<Spanned<u64>>,
        pub max_redirects: Option<Spanned<usize>>,
        pub user_agent: Option<String>,
        pub item_comment_feeds: Option<Spanned<usize>>,
        pub item_comments_max_age: Option<Spanned<String>>,
        pub min_interval: Option<Spanned<String>>,
        pub max_interval: Option<Spanned<String>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Output {
        pub items: Option<Spanned<usize>>,
        pub recent_comments: Option<Spanned<usize>>,
        pub excerpt_chars: Option<Spanned<usize>>,
        pub heat_window: Option<Spanned<String>>,
    }

    /// A file's text from one `[[feed]]` line to the next (see `tables`).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Tables {
        #[serde(default)]
        pub feed: Vec<Feed>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Feed {
        pub id: Spanned<String>,
        pub url: Spanned<String>,
        pub title: Option<String>,
        pub comments_url: Option<Spanned<String>>,
        pub item_comments: Option<bool>,
        pub groups: Option<Vec<Spanned<String>>>,
        pub interval: Option<Spanned<String>>,
        pub enabled: Option<bool>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, Path::new("feeds.toml"))
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn defaults_fill_everything_but_id_and_url() {
        let c = Config::parse(
            "[[feed]]\nid = \"ttac\"\nurl = \"https://www.thetruthaboutcars.com/feed/\"\n",
            Path::new("/etc/paddock/feeds.toml"),
        )
        .unwrap();
        assert_eq!(c.poll.interval, Duration::from_secs(900));
        assert_eq!(c.storage.path, PathBuf::from("/etc/paddock/data"));
        assert_eq!(c.storage.retention, Duration::from_secs(90 * 86400));
        assert_eq!(c.feeds[0].interval, Duration::from_secs(900));
        assert!(c.poll.user_agent.starts_with("paddock/"));
        assert!(c.poll.user_agent.contains("(+http://127.0.0.1:8080)"));
        let c = Config::parse(
            "[server]\nbase_url = \"https://news.example/paddock\"\n",
            Path::new("feeds.toml"),
        )
        .unwrap();
        assert_eq!(
            c.server.base_url.join("feed.atom").unwrap().as_str(),
            "https://news.example/paddock/feed.atom"
        );
    }

    #[test]
    fn relative_and_file_urls_become_paths() {
        let c = Config::parse(
            "[[feed]]\nid = \"a\"\nurl = \"demo/a.rss\"\n[[feed]]\nid = \"b\"\nurl = \"file:///srv/b.xml\"\n",
            Path::new("/etc/paddock/feeds.toml"),
        )
        .unwrap();
        assert_eq!(
            c.feeds[0].source,
            Source::File("/etc/paddock/demo/a.rss".into())
        );
        assert_eq!(c.feeds[1].source, Source::File("/srv/b.xml".into()));
    }

    #[test]
    fn mistakes_are_located_by_line_and_column() {
        let cases = [
            (
                "[poll]\ninterval = \"15 parsecs\"\n",
                "feeds.toml:2:12:",
                "not a duration",
            ),
            (
                "[poll]\nintervall = \"15m\"\n",
                "feeds.toml:2:1:",
                "unknown field",
            ),
            (
                "[[feed]]\nid = \"a\"\nurl = \"https://a.example/\"\n[[feed]]\nid = \"a\"\nurl = \"https://b.example/\"\n",
                "feeds.toml:5:6:",
                "duplicate feed id",
            ),
            (
                "[[feed]]\nid = \"a\"\n",
                "feeds.toml:1:1:",
                "missing field `url`",
            ),
            (
                "[[feed]]\nid = \"A b\"\nurl = \"x.rss\"\n",
                "feeds.toml:2:6:",
                "lowercase",
            ),
            (
                "[[feed]]\nid = \"a\"\nurl = \"gopher://x\"\n",
                "feeds.toml:3:7:",
                "unsupported URL scheme",
            ),
            (
                "[server]\nlisten = \"localhost\"\n",
                "feeds.toml:2:10:",
                "listen",
            ),
            ("[output]\nitems = 0\n", "feeds.toml:2:9:", "between 1 and"),
            (
                "[poll]\nconcurrency = 0\n",
                "feeds.toml:2:15:",
                "between 1 and",
            ),
            // Values that once passed and then panicked or emptied the store.
            (
                "[storage]\nretention = \"400y\"\n",
                "feeds.toml:2:13:",
                "at most \"36500d\"",
            ),
            (
                "[poll]\ninterval = \"300000y\"\n",
                "feeds.toml:2:12:",
                "longer than this key allows",
            ),
            (
                "[poll]\nmin_interval = \"300000y\"\n",
                "feeds.toml:2:16:",
                "longer than",
            ),
            (
                "[[feed]]\nid = \"a\"\nurl = \"a.rss\"\ninterval = \"2y\"\n",
                "feeds.toml:4:12:",
                "longer than",
            ),
            (
                "[storage]\ncache_bytes = 1\n",
                "feeds.toml:2:15:",
                "between 1048576 and",
            ),
            (
                "[poll]\nmax_body_bytes = 0\n",
                "feeds.toml:2:18:",
                "between 1024 and",
            ),
            (
                "[server]\nheader_timeout = \"2h\"\n",
                "feeds.toml:2:18:",
                "longer than",
            ),
            // The database: a URL the driver reads, without TLS asked for,
            // and a lease a poll fits in. The message never repeats the URL.
            (
                "[storage]\nurl = \"mysql://u:hunter2@db/x\"\n",
                "feeds.toml:2:7:",
                "must be a PostgreSQL URL",
            ),
            (
                "[storage]\nurl = \"postgres://u:hunter2@db:99999999/x\"\n",
                "feeds.toml:2:7:",
                "not a PostgreSQL URL the driver reads",
            ),
            (
                "[storage]\nurl = \"postgres://u:hunter2@db/x?sslmode=require\"\n",
                "feeds.toml:2:7:",
                "sslmode",
            ),
            (
                "[storage]\npool_size = 0\n",
                "feeds.toml:2:13:",
                "between 1 and",
            ),
            ("[poll]\nlease = \"10ms\"\n", "feeds.toml:2:9:", "at least"),
            // Rules: a pattern, an action, a scope, each at its place.
            (
                "[[feed]]\nid = \"a\"\nurl = \"a.rss\"\n[[rule]]\naction = \"block\"\ntitle = \"(unclosed\"\n",
                "feeds.toml:6:9:",
                "`title` is not a regular expression: error: unclosed group",
            ),
            (
                "[[rule]]\naction = \"drop\"\n",
                "feeds.toml:2:10:",
                "must be \"block\" or \"keep\"",
            ),
            (
                "[[feed]]\nid = \"a\"\nurl = \"a.rss\"\n[[rule]]\naction = \"keep\"\nany = \"x\"\nfeeds = [\"a\", \"nope\"]\n",
                "feeds.toml:7:15:",
                "no feed has the id \"nope\"",
            ),
            (
                "[[feed]]\nid = \"a\"\nurl = \"a.rss\"\n[[rule]]\naction = \"keep\"\ngroups = [\"nope\"]\n",
                "feeds.toml:6:11:",
                "no feed is in the group \"nope\"",
            ),
            (
                "[[rule]]\naction = \"block\"\ncontent = \"\\\\w{1000}\"\n",
                "feeds.toml:3:11:",
                "compiles to more than",
            ),
            (
                "[[rule]]\naction = \"block\"\nolder_than = \"soon\"\n",
                "feeds.toml:3:14:",
                "is not a duration",
            ),
            (
                "[[rule]]\naction = \"block\"\nauthor = \"x\"\nwhen = 1\n",
                "feeds.toml:",
                "unknown field `when`",
            ),
        ];
        for (text, location, words) in cases {
            let e = err(text);
            assert!(
                e.starts_with(location),
                "{e:?} should start with {location:?}"
            );
            assert!(e.contains(words), "{e:?} should mention {words:?}");
            assert!(!e.contains("hunter2"), "{e:?} shows a password");
        }
    }

    #[test]
    fn rules_have_a_count_and_a_pattern_length_limit() {
        let rule = "[[rule]]\naction = \"block\"\ntitle = \"x\"\n";
        let many = rule.repeat(crate::rules::MAX_RULES);
        let c = Config::parse(&many, Path::new("feeds.toml")).unwrap();
        assert_eq!(c.rules.0.len(), crate::rules::MAX_RULES);
        assert_eq!(c.rules.0[1].line, 5, "a rule knows the line of its action");
        let e = err(&format!("{many}{rule}"));
        assert!(
            e.starts_with(&format!(
                "feeds.toml:{}:10:",
                3 * crate::rules::MAX_RULES + 2
            )),
            "{e}"
        );
        assert!(e.contains("at most 200 [[rule]]"), "{e}");
        let long = format!(
            "[[rule]]\naction = \"block\"\ntitle = \"{}\"\n",
            "a".repeat(1001)
        );
        let e = err(&long);
        assert!(
            e.starts_with("feeds.toml:3:9:") && e.contains("at most 1000"),
            "{e}"
        );
    }
}
