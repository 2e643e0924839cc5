//! `liverank history build|query`: fill an interaction history store from an event file
//! (appending to what it holds), and read one user's point-in-time history back as JSON.
//! Also `liverank bench history`: append throughput, query and GSU latency per backend.

use crate::settings::Settings;
use crate::{Failure, IngestContext, InputContext};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use liverank_history::synthetic::SyntheticHistory;
use liverank_history::{
    BackendKind, Domain, EmbeddedStore, GsuAssembler, GsuRequest, GsuScratch, HistoryBuilder,
    HistoryConfig, HistoryError, HistoryRecord, HistoryStore, MemoryStore, RedisStore,
};
use liverank_ingest::{ReadError, open_events, read_table};
use liverank_types::stats::quantile_sorted;
use liverank_types::{AuthorId, EventTime, Live, UserId, Video};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `liverank history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    what: HistoryCommand,
}

/// Which store, overriding the settings' `[history]`.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Directory of the embedded store (default: the settings' history.path).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Backend: embedded or redis (default: the settings' history.backend).
    #[arg(long)]
    pub backend: Option<BackendKind>,
    /// Redis server, with --backend redis (default: the settings' history.redis_url).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Prefix of the store's Redis keys (default: the settings' history.redis_prefix).
    #[arg(long)]
    pub redis_prefix: Option<String>,
}

impl StoreArgs {
    fn config(&self, settings: &Settings) -> HistoryConfig {
        let mut config = settings.history.clone();
        if let Some(path) = &self.store {
            config.path = path.clone();
        }
        if let Some(backend) = self.backend {
            config.backend = backend;
        }
        if let Some(url) = &self.redis_url {
            config.redis_url = url.clone();
        }
        if let Some(prefix) = &self.redis_prefix {
            config.redis_prefix = prefix.clone();
        }
        config
    }
}

#[derive(Debug, Subcommand)]
enum HistoryCommand {
    /// Build the store from an event file, appending to what it already holds.
    Build {
        /// Event file (.parquet or .jsonl), in time order.
        #[arg(long)]
        events: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// Videos table (author and category of each video). Default: videos.<ext>
        /// beside the events.
        #[arg(long)]
        videos: Option<PathBuf>,
        /// Lives table, for rooms whose LiveStart is not in the stream. Default:
        /// lives.<ext> beside the events, if present.
        #[arg(long)]
        lives: Option<PathBuf>,
        /// Records per append (one durable transaction).
        #[arg(long, default_value_t = 20_000)]
        batch: usize,
        /// After every durable append print `acked <batches> <records>` (for crash tests).
        #[arg(long)]
        print_acks: bool,
        /// Start from an empty store: delete the embedded store's file first (Redis: the
        /// keys under the prefix).
        #[arg(long)]
        fresh: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print one user's visible history as JSON, newest first.
    Query {
        #[command(flatten)]
        store: StoreArgs,
        /// The user.
        #[arg(long)]
        user: u64,
        /// Only records available strictly before this instant (ms since the epoch).
        /// Default: everything.
        #[arg(long)]
        before_ts: Option<i64>,
        /// At most this many records.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only one domain: video or live.
        #[arg(long)]
        domain: Option<Domain>,
    },
}

/// A store error as the CLI's failure: bad input (a bad record or setting, a store that is
/// not where the flags point) exits 2, anything else 1.
fn runtime(e: HistoryError) -> Failure {
    let not_found = matches!(&e, HistoryError::Io { source, .. }
        if source.kind() == std::io::ErrorKind::NotFound);
    if not_found || e.class() == liverank_history::ErrorClass::BadInput {
        Failure::Input(e.into())
    } else {
        Failure::Runtime(e.into())
    }
}

fn open(config: &HistoryConfig) -> Result<Box<dyn HistoryStore>, Failure> {
    config.validate().map_err(|e| Failure::Input(e.into()))?;
    liverank_history::open_store(config).map_err(runtime)
}

/// The entity table `stem` beside `events`, in the events' format.
fn beside(events: &Path, stem: &str) -> PathBuf {
    let ext = events
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("parquet");
    events.with_file_name(format!("{stem}.{ext}"))
}

/// Runs `liverank history`.
pub fn run(settings: &Settings, args: HistoryArgs) -> Result<(), Failure> {
    match args.what {
        HistoryCommand::Build {
            events,
            store,
            videos,
            lives,
            batch,
            print_acks,
            fresh,
            quiet,
        } => build(
            settings,
            &BuildArgs {
                events,
                store,
                videos,
                lives,
                batch: batch.max(1),
                print_acks,
                fresh,
                quiet,
            },
        ),
        HistoryCommand::Query {
            store,
            user,
            before_ts,
            limit,
            domain,
        } => {
            let config = store.config(settings);
            // Read-only, so a query works beside running trainings (not beside a build).
            let store: Box<dyn HistoryStore> = match config.backend {
                BackendKind::Embedded => {
                    Box::new(EmbeddedStore::open_read_only(&config.path, &config).map_err(runtime)?)
                }
                BackendKind::Redis => open(&config)?,
            };
            let before = EventTime(before_ts.unwrap_or(i64::MAX));
            let user = UserId(user);
            let records = store.latest(user, domain, before, limit).map_err(runtime)?;
            /// The printed answer, fields in this order.
            #[derive(serde::Serialize)]
            struct Answer<'a> {
                user: UserId,
                before_ts: Option<i64>,
                domain: Option<Domain>,
                stored: usize,
                returned: usize,
                records: &'a [HistoryRecord],
            }
            let out = Answer {
                user,
                before_ts,
                domain,
                stored: store.count(user).map_err(runtime)?,
                returned: records.len(),
                records: &records,
            };
            let text = serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?;
            println!("{text}");
            Ok(())
        }
    }
}

/// What `liverank history build` does (its flags; `batch` ≥ 1).
#[derive(Debug)]
pub struct BuildArgs {
    pub events: PathBuf,
    pub store: StoreArgs,
    pub videos: Option<PathBuf>,
    pub lives: Option<PathBuf>,
    pub batch: usize,
    pub print_acks: bool,
    pub fresh: bool,
    pub quiet: bool,
}

/// Runs `liverank history build`: appends the events' records to the store.
pub fn build(settings: &Settings, args: &BuildArgs) -> Result<(), Failure> {
    let config = args.store.config(settings);
    let videos_path = args
        .videos
        .clone()
        .unwrap_or_else(|| beside(&args.events, "videos"));
    let videos: Vec<Video> = read_table(&videos_path).ingest_err(&format!(
        "reading the videos table {} (pass --videos)",
        videos_path.display()
    ))?;
    let lives_path = args
        .lives
        .clone()
        .unwrap_or_else(|| beside(&args.events, "lives"));
    let lives: Vec<Live> = if args.lives.is_some() || lives_path.exists() {
        read_table(&lives_path)
            .ingest_err(&format!("reading the lives table {}", lives_path.display()))?
    } else {
        Vec::new()
    };
    let reader = open_events(&args.events).ingest_err("opening the events")?;
    if args.fresh {
        match config.backend {
            BackendKind::Embedded => {
                let file = config.path.join(liverank_history::embedded::FILE_NAME);
                if file.exists() {
                    std::fs::remove_file(&file).input_err("--fresh: removing the old store")?;
                }
            }
            BackendKind::Redis => {
                RedisStore::connect(&config)
                    .and_then(|r| r.delete_all())
                    .map_err(runtime)?;
            }
        }
    }
    let store = open(&config)?;
    let mut builder = HistoryBuilder::new(settings.samples.long_view_ms)
        .with_videos(&videos)
        .with_lives(&lives);
    drop((videos, lives));

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "history {spinner} {human_pos} events ({per_sec}) {elapsed_precise} {msg}",
        )
        .map_err(anyhow::Error::from)?,
    );
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut pending: Vec<(UserId, HistoryRecord)> = Vec::new();
    let mut users: HashSet<UserId> = HashSet::new();
    let (mut read, mut unreadable, mut appended, mut batches) = (0u64, 0u64, 0u64, 0u64);
    let mut flush = |pending: &mut Vec<(UserId, HistoryRecord)>| -> Result<(), Failure> {
        if pending.is_empty() {
            return Ok(());
        }
        store.append(pending).map_err(runtime)?;
        appended += pending.len() as u64;
        batches += 1;
        users.extend(pending.iter().map(|(u, _)| *u));
        pending.clear();
        if args.print_acks {
            let mut out = stdout.lock();
            writeln!(out, "acked {batches} {appended}")
                .and_then(|()| out.flush())
                .map_err(anyhow::Error::from)?;
        }
        Ok(())
    };
    for item in reader {
        match item {
            Ok(event) => {
                read += 1;
                builder.push(&event, &mut pending);
            }
            Err(ReadError::Record(_)) => unreadable += 1,
            Err(ReadError::Fatal(e)) => return Err(Failure::ingest(e, "reading the events")),
        }
        if pending.len() >= args.batch {
            flush(&mut pending)?;
        }
        if read.is_multiple_of(50_000) {
            bar.set_position(read);
        }
    }
    flush(&mut pending)?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let counters = builder.counters();
    if !args.print_acks {
        let where_ = match config.backend {
            BackendKind::Embedded => config.path.display().to_string(),
            BackendKind::Redis => format!("{} prefix {}", config.redis_url, config.redis_prefix),
        };
        println!("history store      {} ({where_})", config.backend);
        println!("events read        {read} ({unreadable} unreadable records skipped)");
        println!(
            "records appended   {} ({} video plays, {} live sessions; {} closed by LiveEnd)",
            counters.video_records + counters.live_records,
            counters.video_records,
            counters.live_records,
            counters.closed_by_live_end
        );
        println!("users              {}", users.len());
        println!(
            "skipped            {} interactions with unknown items, {} orphan video reactions",
            counters.unknown_items, counters.orphan_reactions
        );
        println!(
            "open sessions      {} (still in a room at the end of the input: not recorded)",
            builder.open_sessions()
        );
        println!(
            "seconds            {secs:.2} ({:.0} records/s, {batches} appends)",
            appended as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}

/// Arguments of `liverank bench history`.
#[derive(Debug, Args)]
pub struct BenchHistoryArgs {
    /// Users, each given `--records` records.
    #[arg(long, default_value_t = 20)]
    users: u64,
    /// Records per user (the default retention).
    #[arg(long, default_value_t = 10_000)]
    records: usize,
    /// Records per append (one durable transaction), users interleaved as in a stream.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Timed queries per kind.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Dimension of the item vectors of soft search (default: the settings'
    /// model.embedding_dim).
    #[arg(long)]
    dim: Option<usize>,
    /// Backends to measure: memory, embedded, redis (repeatable; default all three).
    #[arg(long = "backend")]
    backends: Vec<String>,
    /// Redis server of the redis backend (default: the settings' history.redis_url).
    #[arg(long)]
    redis_url: Option<String>,
}

/// Times `f` `n` times; returns (p50, p99) in microseconds.
fn latency(
    n: usize,
    mut f: impl FnMut(usize) -> Result<(), Failure>,
) -> Result<(f64, f64), Failure> {
    let mut us = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i)?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    us.sort_by(f64::total_cmp);
    Ok((quantile_sorted(&us, 0.5), quantile_sorted(&us, 0.99)))
}

/// Runs `liverank bench history`.
pub fn bench(settings: &Settings, args: &BenchHistoryArgs) -> Result<(), Failure> {
    let backends: Vec<String> = if args.backends.is_empty() {
        vec!["memory".into(), "embedded".into(), "redis".into()]
    } else {
        args.backends.clone()
    };
    let shape = SyntheticHistory::new(args.users, args.records);
    let stream = shape.records();
    let dim = args.dim.unwrap_or(settings.model.embedding_dim);
    let vectors = shape.vectors(dim);
    let end = stream.last().map_or(EventTime(0), |(_, r)| r.available_at);
    let dir = tempfile::tempdir().map_err(anyhow::Error::from)?;
    for backend in &backends {
        let mut config = HistoryConfig::new(args.records.max(1));
        let store: Box<dyn HistoryStore> = match backend.as_str() {
            "memory" => Box::new(MemoryStore::new(&config).map_err(runtime)?),
            "embedded" => Box::new(
                EmbeddedStore::open(&dir.path().join("embedded"), &config).map_err(runtime)?,
            ),
            "redis" => {
                config.redis_url = args
                    .redis_url
                    .clone()
                    .unwrap_or_else(|| settings.history.redis_url.clone());
                config.redis_prefix = format!("liverank-bench:{}", std::process::id());
                match RedisStore::connect(&config) {
                    Ok(s) => Box::new(s),
                    Err(e) => {
                        println!("RESULT task=history backend=redis skipped=\"{e}\"");
                        continue;
                    }
                }
            }
            other => {
                return Err(Failure::Input(anyhow::anyhow!(
                    "unknown backend `{other}`: memory, embedded or redis"
                )));
            }
        };
        let t = Instant::now();
        for chunk in stream.chunks(args.batch.max(1)) {
            store.append(chunk).map_err(runtime)?;
        }
        let append_secs = t.elapsed().as_secs_f64();
        let n = args.queries.max(1);
        let user = |i: usize| UserId(i as u64 % args.users + 1);
        // Point in time: mostly "now", sometimes the middle of the history.
        let before = |i: usize| {
            if i.is_multiple_of(4) {
                EventTime(end.0 / 2 + stream[0].1.available_at.0 / 2)
            } else {
                EventTime(end.0 + 1)
            }
        };
        let mut buf = Vec::new();
        let (read50, read99) = latency(n, |i| {
            store
                .read_visible(user(i), before(i), &mut buf)
                .map_err(runtime)
        })?;
        let (latest50, latest99) = latency(n, |i| {
            store
                .latest(user(i), Some(Domain::Video), before(i), 50)
                .map(drop)
                .map_err(runtime)
        })?;
        let (author50, author99) = latency(n, |i| {
            store
                .by_author(
                    user(i),
                    Some(Domain::Video),
                    AuthorId(i as u64 % 600 + 1),
                    before(i),
                    50,
                )
                .map(drop)
                .map_err(runtime)
        })?;
        let query: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let (soft50, soft99) = latency(n, |i| {
            store
                .soft_search(user(i), Domain::Video, &query, &vectors, before(i), 50)
                .map(drop)
                .map_err(runtime)
        })?;
        let assembler = GsuAssembler::new(settings.model.history_len);
        let mut scratch = GsuScratch::default();
        let mut filled = 0usize;
        let (gsu50, gsu99) = latency(n, |i| {
            let request = GsuRequest {
                user: user(i),
                target_author: AuthorId(i as u64 % 600 + 1),
                before_ts: before(i),
                query: &query,
            };
            let gsu = assembler
                .assemble_with(store.as_ref(), &request, &vectors, &mut scratch)
                .map_err(runtime)?;
            filled += gsu.iter().map(|(_, s)| s.filled()).sum::<usize>();
            Ok(())
        })?;
        // The five searches alone, over records already read: the assembler's own cost.
        let records = store.visible(user(0), before(1)).map_err(runtime)?;
        let (cpu50, cpu99) = latency(n, |i| {
            let request = GsuRequest {
                user: user(0),
                target_author: AuthorId(i as u64 % 600 + 1),
                before_ts: before(1),
                query: &query,
            };
            assembler
                .assemble_from(&records, &request, &vectors)
                .map(drop)
                .map_err(runtime)
        })?;
        println!(
            "RESULT task=history backend={backend} users={} records_per_user={} batch={} \
             append_records_per_s={:.0} read_us_p50={read50:.0} read_us_p99={read99:.0} \
             latest50_us_p50={latest50:.0} latest50_us_p99={latest99:.0} \
             by_author_us_p50={author50:.0} by_author_us_p99={author99:.0} \
             soft_search_us_p50={soft50:.0} soft_search_us_p99={soft99:.0} \
             gsu_us_p50={gsu50:.0} gsu_us_p99={gsu99:.0} gsu_searches_only_us_p50={cpu50:.0} \
             gsu_searches_only_us_p99={cpu99:.0} dim={} L={} mean_filled={:.1}",
            args.users,
            args.records,
            args.batch,
            stream.len() as f64 / append_secs,
            dim,
            assembler.len(),
            filled as f64 / n as f64 / 5.0,
        );
        if let Some(redis) = (backend == "redis").then_some(&config) {
            // Leave nothing behind on a shared server.
            if let Ok(r) = RedisStore::connect(redis) {
                r.delete_all().map_err(runtime)?;
            }
        }
    }
    Ok(())
}
