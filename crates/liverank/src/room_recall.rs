//! `liverank recall rooms`: recall@K of the next room a user enters, per serving recall
//! source and for their merge, against popularity — on a simulated world replayed in
//! event time through the serving world (live registry, history, follows, author graph),
//! so every query sees exactly what a request at that instant would.
//!
//! A query is an `Enter` in the evaluation window: just before it is ingested, each
//! source proposes its top K rooms on air for that user, and the query hits when the
//! entered room is among them. The merge (every source at its `[serve.recall]` quota,
//! deduplicated, at most `serve.max_candidates`) is scored the same way. Every row is also
//! set against popularity at the same number of rooms for the same query, since a larger
//! set finds more by its size alone.

use crate::serve::{empty_world, load_checkpoint};
use crate::settings::Settings;
use crate::{Failure, InputContext};
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use liverank_model::features::{KeyKind, key};
use liverank_serve::graph::seed_authors;
use liverank_serve::recall::{self, ExactIndex, RecallContext, RecallSource};
use liverank_serve::{EventIngest, OnAirRoom, ServedModel, World};
use liverank_sim::{Preset, SimConfig, Simulation, VecSink};
use liverank_types::{AuthorId, EventKind, EventTime};
use serde::Serialize;
use std::path::PathBuf;

/// Arguments of `liverank recall rooms`.
#[derive(Debug, Args)]
pub struct RoomsArgs {
    /// Simulated world (tiny, small, large). Default: the settings' [sim] section.
    #[arg(long)]
    preset: Option<Preset>,
    /// Root seed of the simulated world.
    #[arg(long)]
    seed: Option<u64>,
    /// The evaluation window starts this many simulated hours in (what comes before only
    /// builds the world's state).
    #[arg(long, default_value_t = 12.0)]
    from_hour: f64,
    /// Cutoff K of each source.
    #[arg(long = "k", default_value_t = 50)]
    k: usize,
    /// Query every this many enters of the window (1 = all).
    #[arg(long, default_value_t = 5)]
    every: usize,
    /// Stop after this many queries.
    #[arg(long, default_value_t = 20_000)]
    max_queries: usize,
    /// A `liverank train` checkpoint whose embeddings feed the embedding source (without
    /// one that source proposes nothing: there is no user vector).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Hits of one recall list over the queries.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceRecall {
    /// Source name (`merge`, `popular@merge`).
    pub source: String,
    /// Queries whose entered room was proposed.
    pub hits: u64,
    /// Rooms proposed, summed over the queries.
    pub proposed: u64,
    /// Queries whose entered room is among the most popular rooms on air, as many as
    /// this list proposed for that query.
    pub popular_same_size: u64,
}

/// The report of a run.
#[derive(Clone, Debug, Serialize)]
pub struct RoomRecallReport {
    /// K of the per-source lists.
    pub k: usize,
    /// Queries evaluated.
    pub queries: u64,
    /// Rooms on air, summed over the queries.
    pub on_air: u64,
    /// Per source at K, then the merge.
    pub rows: Vec<SourceRecall>,
}

impl std::fmt::Display for RoomRecallReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = self.queries.max(1) as f64;
        writeln!(
            f,
            "{} queries, {:.0} rooms on air on average",
            self.queries,
            self.on_air as f64 / q
        )?;
        writeln!(
            f,
            "| source | recall@{} | rooms proposed (mean) | popularity, same rooms per query |",
            self.k
        )?;
        writeln!(f, "|---|---|---|---|")?;
        for r in &self.rows {
            writeln!(
                f,
                "| {} | {:.4} | {:.1} | {:.4} |",
                r.source,
                r.hits as f64 / q,
                r.proposed as f64 / q,
                r.popular_same_size as f64 / q
            )?;
        }
        Ok(())
    }
}

/// Runs the command.
pub fn run(settings: &Settings, args: RoomsArgs) -> Result<(), Failure> {
    if args.k == 0 || args.every == 0 {
        return Err(Failure::Input(anyhow::anyhow!(
            "--k and --every must be positive"
        )));
    }
    let mut config = match args.preset {
        Some(p) => SimConfig {
            seed: settings.sim.seed,
            ..SimConfig::preset(p)
        },
        None => settings.sim.clone(),
    };
    config.seed = args.seed.unwrap_or(config.seed);
    let model = args
        .checkpoint
        .as_deref()
        .map(|p| load_checkpoint(p, 1))
        .transpose()
        .input_err("loading the checkpoint")?;
    let started = std::time::Instant::now();
    let report = evaluate(settings, config, &args, model.as_ref())?;
    print!("{report}");
    println!("({:.1} s)", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).map_err(anyhow::Error::from)?;
        liverank_fs::write_atomic_bytes(path, &json).map_err(anyhow::Error::from)?;
    }
    Ok(())
}

/// Replays the simulation and scores every source on the window's enters.
pub fn evaluate(
    settings: &Settings,
    config: SimConfig,
    args: &RoomsArgs,
    model: Option<&ServedModel>,
) -> anyhow::Result<RoomRecallReport> {
    let start_ms = config.start_ms;
    let sim = Simulation::new(config).context("simulator config")?;
    let (world, _history) = empty_world(settings, &sim)?;
    let mut sink = VecSink::default();
    sim.run(&mut sink, |_| {}).context("simulating")?;
    let mut events = sink.events;
    // Delivery order may run late events behind; the world is fed in event time.
    events.sort_by_key(|e| e.ts);
    let from = EventTime(start_ms + (args.from_hour * 3_600_000.0) as i64);

    let serve = &settings.serve;
    let sources = recall::default_sources();
    let mut rows: Vec<SourceRecall> = sources
        .iter()
        .map(|s| SourceRecall {
            source: s.source().as_str().to_string(),
            ..SourceRecall::default()
        })
        .collect();
    let mut merged = SourceRecall {
        source: "merge".into(),
        ..SourceRecall::default()
    };
    let (mut queries, mut on_air_total, mut enters) = (0u64, 0u64, 0usize);
    let mut rooms: Vec<OnAirRoom> = Vec::new();
    let (mut follows, mut buf): (Vec<AuthorId>, Vec<usize>) = (Vec::new(), Vec::new());
    let progress = ProgressBar::new(events.len() as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} replaying [{bar:30}] {pos}/{len} events · {msg} · {elapsed}",
        )?
        .progress_chars("=> "),
    );
    // `ingested`: the first event not in the world yet; `scan`: the next one to look at.
    let (mut ingested, mut scan) = (0usize, 0usize);
    while scan < events.len() && (queries as usize) < args.max_queries {
        // Up to the next query: an enter in the window, every `every`-th.
        let mut query = None;
        while scan < events.len() {
            let e = &events[scan];
            scan += 1;
            if let EventKind::Enter { user, live, .. } = e.kind
                && e.ts >= from
            {
                enters += 1;
                if enters.is_multiple_of(args.every) {
                    query = Some((user, live, e.ts, scan - 1));
                    break;
                }
            }
        }
        let Some((user, live, ts, q)) = query else {
            break;
        };
        // Everything before the enter is in; the enter itself goes in with the next run.
        world.ingest(&events[ingested..q])?;
        ingested = q;
        progress.set_position(q as u64);

        world.on_air(user, ts, &mut rooms);
        let Some(target) = rooms.iter().position(|r| r.live == live) else {
            continue; // not on air for the registry: no source could propose it
        };
        world.follows(user, &mut follows);
        let history = world.history().visible_shared(user, ts)?;
        let ranker = model.map(|m| m.ranker.as_ref());
        let user_vector = ranker.and_then(|r| r.embedding(key(KeyKind::User, user.0)));
        let vectors: Vec<Option<&[f32]>> = match (ranker, user_vector) {
            (Some(r), Some(_)) => rooms
                .iter()
                .map(|room| r.embedding(key(KeyKind::Live, room.live.0)))
                .collect(),
            _ => Vec::new(),
        };
        let index = ExactIndex::new(vectors);
        let related = if serve.recall.graph > 0 {
            world.related_authors(
                &seed_authors(&follows, &history, serve.graph.seeds),
                serve.recall.graph.max(args.k),
            )
        } else {
            Vec::new()
        };
        let ctx = RecallContext {
            user,
            rooms: &rooms,
            follows: &follows,
            history: &history,
            user_vector,
            index: &index,
            top_categories: serve.recall.top_categories,
            related: &related,
        };
        // The entered room's place among all rooms on air by popularity.
        let popular = sources
            .iter()
            .find(|s| s.source() == RecallSource::Popular)
            .context("the popular source")?;
        popular.recall(&ctx, rooms.len(), &mut buf);
        let popular_rank = buf.iter().position(|&i| i == target).unwrap_or(usize::MAX);
        for (source, row) in sources.iter().zip(&mut rows) {
            source.recall(&ctx, args.k, &mut buf);
            row.hits += u64::from(buf.contains(&target));
            row.proposed += buf.len() as u64;
            row.popular_same_size += u64::from(popular_rank < buf.len());
        }
        let all = recall::merge(&sources, &ctx, &serve.recall, serve.max_candidates);
        merged.hits += u64::from(all.iter().any(|r| r.room == target));
        merged.proposed += all.len() as u64;
        merged.popular_same_size += u64::from(popular_rank < all.len());
        queries += 1;
        on_air_total += rooms.len() as u64;
        progress.set_message(format!("{queries} queries"));
    }
    progress.finish_and_clear();
    rows.push(merged);
    Ok(RoomRecallReport {
        k: args.k,
        queries,
        on_air: on_air_total,
        rows,
    })
}
