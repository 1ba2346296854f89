//! The command line: clap definitions and one function per command.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::config::Config;
use crate::poller::{Outcome, PollReport};
use crate::query::{self, DigestQuery};
use crate::store::{self, StoreError};

#[derive(Debug, Parser)]
#[command(
    name = "paddock",
    version,
    about = "Polls car-news feeds and republishes them merged, with their comments"
)]
pub struct Cli {
    /// The config file [default: $PADDOCK_CONFIG, else ./feeds.toml]
    #[arg(long, global = true, env = "PADDOCK_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll on schedule and serve HTTP until SIGINT or SIGTERM
    Serve,
    /// Poll every feed (or the named ones) once, print a summary and exit
    Poll {
        /// A feed id to poll; repeat for several
        #[arg(long = "feed", value_name = "ID")]
        feeds: Vec<String>,
    },
    /// Validate the config file
    Check {
        /// Also open the store and check its indexes (not while the daemon runs)
        #[arg(long)]
        store: bool,
    },
    /// Print the digest JSON (the same document as GET /digest.json)
    Digest {
        /// Window start: an RFC 3339 time or a duration back from now ("24h", "7d") [default: 24h]
        #[arg(long)]
        since: Option<String>,
        /// Only stories of this group
        #[arg(long)]
        group: Option<String>,
        /// Most stories to list (1 to 1000) [default: 100]
        #[arg(long)]
        limit: Option<String>,
        /// Ask a running daemon at this base URL instead of opening the store
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// OPML of the feed list
    Opml {
        #[command(subcommand)]
        action: OpmlAction,
    },
    /// Work on the store itself
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Keep and block rules
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesAction {
    /// Print which rule drops which stored story, and a count per rule
    Test {
        /// Only this feed's stories
        #[arg(long, value_name = "ID")]
        feed: Option<String>,
        /// Only this rule (1 for the first [[rule]] in the file)
        #[arg(long, value_name = "N")]
        rule: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Copy the sled store into an empty PostgreSQL database, ids and
    /// first_seen kept (stop the daemon first; then set [storage].url)
    Copy {
        /// The database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB
        #[arg(long, value_name = "URL")]
        to: String,
        /// The sled store's directory [default: the config's [storage].path]
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OpmlAction {
    /// Print the configured feeds as OPML
    Export,
    /// Print [[feed]] TOML for the feeds of an OPML file
    Import {
        /// The OPML file
        file: PathBuf,
    },
}

impl Cli {
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from("feeds.toml"))
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let path = cli.config_path();
    match cli.command {
        Command::Check { store } => check(&path, store),
        Command::Serve => serve(&path).await,
        Command::Poll { feeds } => poll(&path, &feeds).await,
        Command::Digest {
            since,
            group,
            limit,
            server,
        } => {
            let query = DigestQuery {
                since,
                group,
                limit,
            };
            match server {
                Some(base) => digest_from_server(&base, &query).await,
                None => digest(&path, &query),
            }
        }
        Command::Opml {
            action: OpmlAction::Export,
        } => opml_export(&path),
        Command::Store {
            action: StoreAction::Copy { to, from },
        } => store_copy(&path, &to, from),
        Command::Rules {
            action: RulesAction::Test { feed, rule },
        } => rules_test(&path, feed.as_deref(), rule),
        Command::Opml {
            action: OpmlAction::Import { file },
        } => {
            let xml = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let toml = crate::opml::import(&xml)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            print!("{toml}");
            Ok(())
        }
    }
}

fn check(path: &Path, store: bool) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    if store {
        let verified = store::open_configured(&config.storage)?.verify()?;
        for p in &verified.problems {
            println!("store: {p}");
        }
        let at = store::location(&config.storage);
        if !verified.problems.is_empty() {
            anyhow::bail!("the store at {at} has {} problems", verified.problems.len());
        }
        println!("{at}: ok, {} stories", verified.items);
        if verified.orphan_comments > 0 {
            println!(
                "store: {} comment records belong to removed stories; the next retention pass removes them",
                verified.orphan_comments
            );
        }
    }
    println!(
        "{}: ok, {} feeds ({} enabled), {} groups",
        path.display(),
        config.feeds.len(),
        config.feeds.iter().filter(|f| f.enabled).count(),
        config.groups().len()
    );
    Ok(())
}

fn rules_test(path: &Path, feed: Option<&str>, only: Option<usize>) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let file = path.display();
    if config.rules.is_empty() {
        println!("{file} has no [[rule]]: every stored story is in the outputs");
        return Ok(());
    }
    if let Some(n) = only
        && !(1..=config.rules.0.len()).contains(&n)
    {
        anyhow::bail!(
            "there is no rule {n}: {file} has {} rules, numbered from 1",
            config.rules.0.len()
        );
    }
    if let Some(id) = feed
        && config.feed(id).is_none()
    {
        anyhow::bail!("no feed with id {id:?}");
    }
    let store = store::open_configured(&config.storage)?;
    let now = chrono::Utc::now();
    let rules = &config.rules.0;
    let tally = query::rule_tally(store.as_ref(), &config, feed, now, &mut |item, dropping| {
        let Some(i) = dropping.filter(|i| only.is_none_or(|n| n == i + 1)) else {
            return;
        };
        let action = match rules[i].action {
            crate::rules::Action::Block => "block",
            crate::rules::Action::Keep => "keep ",
        };
        println!(
            "{file}:{}  {action}  {}  {}",
            rules[i].line, item.feed, item.title
        );
    })?;
    for (i, r) in rules.iter().enumerate() {
        if only.is_some_and(|n| n != i + 1) {
            continue;
        }
        let action = match r.action {
            crate::rules::Action::Block => "block",
            crate::rules::Action::Keep => "keep",
        };
        let warning = tally
            .warning(i)
            .map(|w| format!("; warning: {w}"))
            .unwrap_or_default();
        println!(
            "rule {} ({file}:{}, {action}): drops {} of {} stories in its scope{warning}",
            i + 1,
            r.line,
            tally.dropped[i],
            tally.in_scope[i]
        );
    }
    let dropped: usize = match only {
        Some(n) => tally.dropped[n - 1],
        None => tally.dropped.iter().sum(),
    };
    println!("{dropped} of {} stored stories dropped", tally.stories);
    Ok(())
}

fn store_copy(path: &Path, to: &str, from: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let from = from.unwrap_or_else(|| config.storage.path.clone());
    let (shown_from, shown_to) = (from.display().to_string(), store::redact(to));
    eprintln!("copying {shown_from} into {shown_to}");
    let copied = store::copy_to_postgres(
        &from,
        config.storage.cache_bytes,
        to,
        config.storage.pool_size,
        &|c| eprintln!("  {} stories", c.stories),
    )?;
    println!(
        "copied {} stories, {} tombstones, {} feed states, {} comments and {} waiting comments from {shown_from} into {shown_to}",
        copied.stories, copied.tombstones, copied.feed_states, copied.comments, copied.waiting
    );
    println!("set [storage].url = \"{shown_to}\" (with its password) and start Paddock");
    Ok(())
}

fn digest(path: &Path, query: &DigestQuery) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let store = store::open_configured(&config.storage).map_err(|e| match e {
        StoreError::Locked { .. } => anyhow::anyhow!(
            "{e}; or read it from the daemon with --server {}",
            config.server.base_url
        ),
        e => e.into(),
    })?;
    let json = query::digest_json(store.as_ref(), &config, query)?;
    println!("{json}");
    Ok(())
}

async fn digest_from_server(base: &str, query: &DigestQuery) -> anyhow::Result<()> {
    let mut url = url::Url::parse(base)
        .and_then(|b| b.join("digest.json"))
        .map_err(|e| {
            anyhow::anyhow!(
                "--server must be the daemon's base URL, like http://127.0.0.1:8080/: {e}"
            )
        })?;
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in [
            ("since", &query.since),
            ("group", &query.group),
            ("limit", &query.limit),
        ] {
            if let Some(v) = v {
                pairs.append_pair(k, v);
            }
        }
    }
    let body = crate::fetch::get_text(&url).await?;
    println!("{body}");
    Ok(())
}

fn opml_export(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let listed = crate::opml::listed(
        &config,
        |id| {
            config
                .feed(id)
                .map(|f| f.display_title().to_string())
                .unwrap_or_default()
        },
        |id| match config.feed(id).map(|f| &f.source) {
            Some(crate::config::Source::Http(u)) => u.to_string(),
            _ => query::url(&config, &format!("feeds/{id}/feed.rss")),
        },
        |_| None,
    );
    print!("{}", crate::opml::export(&config.server.title, &listed));
    Ok(())
}

async fn serve(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?;
    let shutdown = CancellationToken::new();
    app::cancel_on_signal(shutdown.clone());
    app::run(config, listener, shutdown).await
}

async fn poll(path: &Path, only: &[String]) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    for id in only {
        if config.feed(id).is_none() {
            anyhow::bail!("no feed with id {id:?} in {}", path.display());
        }
    }
    let feeds: Vec<_> = config
        .feeds
        .iter()
        .filter(|f| {
            if only.is_empty() {
                f.enabled
            } else {
                only.contains(&f.id)
            }
        })
        .cloned()
        .collect();
    let pipeline = app::pipeline(&config)?;
    // Drawn on stderr only when it is a terminal; hidden otherwise.
    let bar = indicatif::ProgressBar::new(feeds.len() as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} feeds  {msg}")
    {
        bar.set_style(style);
    }
    let reports = pipeline
        .poll_all(&feeds, |r| {
            bar.set_message(r.feed.clone());
            bar.inc(1);
        })
        .await;
    bar.finish_and_clear();
    pipeline.store.flush()?;
    print_summary(&reports);
    Ok(())
}

fn print_summary(reports: &[PollReport]) {
    let width = reports.iter().map(|r| r.feed.len()).max().unwrap_or(4);
    let mut out = std::io::stdout().lock();
    let (mut new, mut failed) = (0, 0);
    for r in reports {
        let ms = r.elapsed.as_millis();
        let line = match &r.outcome {
            Outcome::NotModified => format!("not modified ({ms} ms)"),
            Outcome::Elsewhere => "polled by another instance".to_string(),
            Outcome::Stored {
                new: n,
                updated,
                unchanged,
            } => {
                new += n;
                format!("{n} new, {updated} updated, {unchanged} unchanged ({ms} ms)")
            }
            Outcome::Failed(f) => {
                failed += 1;
                format!("FAILED {}: {}", f.kind.as_str(), f.message)
            }
        };
        let _ = writeln!(out, "{:width$}  {line}", r.feed);
    }
    let _ = writeln!(
        out,
        "{} feeds polled: {new} new stories, {failed} failed",
        reports.len()
    );
}
