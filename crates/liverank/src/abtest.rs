//! `liverank abtest`: the closed-loop A/B test. The simulator runs a day in which the
//! feed's live slots are no longer filled by its own recommender: each user, split into an
//! arm by a seeded hash, is shown what that arm's serving API answers (a real HTTP call per
//! feed page, one server per arm), and reacts by the simulator's ground truth. Every event
//! of the day also flows, in time order, into the one serving world all arms read (room
//! statistics, on-air registry, users' history), so features are as fresh as the stream:
//! a visit sees everything up to its start.
//!
//! Arms: `popularity` (the server's `ranking = "popularity"`), `checkpoint:FILE` (a
//! `liverank train` checkpoint, fixed), `model:DIR` (the newest version of a published
//! model directory). The test window starts at `--from-hour`, by default where the model
//! arms' held-out slice starts (their `evaluation.json`), so no arm is shown a room at a
//! time it trained on; before it the platform's own recommender fills every slot.
//!
//! Per arm: clicks, watch time, gifts, purchases per user, click-through (observed and
//! true) and the highlight share of what was shown, each with the 95 % bootstrap interval
//! of its difference to the first arm (`liverank_eval::abtest`). `--repeats N` reruns the
//! test N times (another simulated day per repeat when no arm holds a model, otherwise the
//! same day with another user split) and counts how often each interval covers 0: the
//! A/A check of the harness.

use crate::Failure;
use crate::InputContext;
use crate::http_client::HttpClient;
use crate::settings::Settings;
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use liverank_eval::abtest::{self, ArmRow, Metric, ShownExposure, UserOutcome};
use liverank_serve::{
    EventIngest, LocalWorld, ModelDirFeed, ModelFeed, ModelSlot, Ranker, RankingMode, ServeConfig,
    ServedModel,
};
use liverank_sim::{EventSink, FeedPolicy, FeedSlot, MalformedRecord, Preset, SimConfig};
use liverank_types::{Event, EventKind, LiveId, RequestId, UserId};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `liverank abtest`.
#[derive(Debug, Args)]
pub struct AbtestArgs {
    /// Simulator preset of the test day (the world the model arms were trained on).
    #[arg(long, default_value = "small")]
    pub preset: Preset,
    /// Root seed of the simulated day.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Hours of simulated time (default: the preset's).
    #[arg(long)]
    pub hours: Option<u32>,
    /// An arm, `NAME=SPEC` with SPEC `popularity`, `checkpoint:FILE` or `model:DIR`;
    /// repeat for each arm. The first is the control.
    #[arg(long = "arm", value_name = "NAME=SPEC", required = true)]
    pub arms: Vec<String>,
    /// Seed of the user split.
    #[arg(long, default_value_t = 1)]
    pub split_seed: u64,
    /// Start of the test window, hours after the day's start (default: the latest start
    /// of the model arms' held-out slices, or the day's start).
    #[arg(long)]
    pub from_hour: Option<f64>,
    /// Length of the test window in hours (default: to the day's end); after it the
    /// platform's recommender fills the slots again and nothing is counted.
    #[arg(long)]
    pub window_hours: Option<f64>,
    /// Rooms asked of the API per feed page.
    #[arg(long, default_value_t = 10)]
    pub page_rooms: usize,
    /// Runs of the test (the A/A check counts interval coverage over them).
    #[arg(long, default_value_t = 1)]
    pub repeats: u64,
    /// Bootstrap replicates per interval.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Where abtest.json and abtest.md go.
    #[arg(long, default_value = "data/abtest")]
    pub out: PathBuf,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What an arm serves.
#[derive(Clone, Debug)]
enum ArmSpec {
    Popularity,
    Checkpoint(PathBuf),
    ModelDir(PathBuf),
}

impl ArmSpec {
    fn parse(spec: &str) -> anyhow::Result<Self> {
        if spec == "popularity" {
            return Ok(Self::Popularity);
        }
        if let Some(path) = spec.strip_prefix("checkpoint:") {
            return Ok(Self::Checkpoint(path.into()));
        }
        if let Some(path) = spec.strip_prefix("model:") {
            return Ok(Self::ModelDir(path.into()));
        }
        anyhow::bail!("`{spec}` is not popularity, checkpoint:FILE or model:DIR")
    }

    fn describe(&self) -> String {
        match self {
            Self::Popularity => "popularity".into(),
            Self::Checkpoint(p) => format!("checkpoint {}", p.display()),
            Self::ModelDir(p) => format!("model dir {}", p.display()),
        }
    }
}

/// An arm ready to serve: its name, spec, ranker (none for popularity) and where its
/// held-out slice starts, when known.
struct Arm {
    name: String,
    spec: ArmSpec,
    ranker: Option<Arc<dyn Ranker>>,
    eval_from_ms: Option<i64>,
}

fn load_arm(text: &str) -> Result<Arm, Failure> {
    let (name, spec) = text
        .split_once('=')
        .with_context(|| format!("--arm `{text}`: expected NAME=SPEC"))
        .input_err("--arm")?;
    let spec = ArmSpec::parse(spec).input_err(&format!("--arm {name}"))?;
    let (ranker, eval_from_ms) = match &spec {
        ArmSpec::Popularity => (None, None),
        ArmSpec::Checkpoint(path) => {
            let model = crate::serve::load_checkpoint(path, 1)
                .input_err(&format!("--arm {name}: {}", path.display()))?;
            let from = path
                .parent()
                .and_then(|d| eval_from(&d.join("evaluation.json")));
            (Some(model.ranker), from)
        }
        ArmSpec::ModelDir(dir) => {
            let model = ModelDirFeed::new(dir)
                .poll(None)
                .map_err(anyhow::Error::from)
                .input_err(&format!("--arm {name}: {}", dir.display()))?
                .with_context(|| format!("{}: no published version", dir.display()))
                .input_err(&format!("--arm {name}"))?;
            (Some(model.ranker), None)
        }
    };
    Ok(Arm {
        name: name.to_string(),
        spec,
        ranker,
        eval_from_ms,
    })
}

/// `eval_from_ms` of a `liverank train` evaluation file, if there is one.
fn eval_from(path: &Path) -> Option<i64> {
    let text = std::fs::read(path).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&text).ok()?;
    json["eval_from_ms"].as_i64()
}

/// Calls and fallbacks of one arm's policy.
#[derive(Clone, Debug, Default, Serialize)]
struct ArmCalls {
    /// Recommend calls made.
    calls: u64,
    /// Slots the arm filled.
    filled: u64,
    /// Slots none of the arm's rooms could fill (all shown already or off air by the
    /// simulator's clock): the platform's recommender filled them.
    fallbacks: u64,
    /// Latency of each call, ms.
    #[serde(skip)]
    latencies_ms: Vec<f64>,
}

/// One feed page's answer.
struct PageAnswer {
    request: RequestId,
    lives: Vec<LiveId>,
    shown: Vec<LiveId>,
}

/// The policy the simulator asks: the arm's API, one call per feed page.
struct ApiFeed {
    clients: Vec<HttpClient>,
    split_seed: u64,
    /// The test window: slots outside it are the platform's, and nothing there counts.
    window: std::ops::Range<i64>,
    page_rooms: usize,
    world: Arc<LocalWorld>,
    pending: Rc<RefCell<Vec<Event>>>,
    pages: HashMap<UserId, PageAnswer>,
    calls: Vec<ArmCalls>,
    error: Option<anyhow::Error>,
}

impl ApiFeed {
    /// Applies the events the simulator released since the last slot.
    fn flush(&mut self) -> anyhow::Result<()> {
        let events = std::mem::take(&mut *self.pending.borrow_mut());
        if !events.is_empty() {
            self.world.ingest(&events).map_err(anyhow::Error::from)?;
        }
        Ok(())
    }

    fn ask(&mut self, arm: usize, slot: &FeedSlot<'_>) -> anyhow::Result<Vec<LiveId>> {
        let body = format!(
            r#"{{"user_id": {}, "count": {}, "ts": {}}}"#,
            slot.user.0, self.page_rooms, slot.ts.0
        );
        let started = Instant::now();
        let answer = self.clients[arm].post_json("/v1/recommend", &body)?;
        let stats = &mut self.calls[arm];
        stats.calls += 1;
        stats
            .latencies_ms
            .push(started.elapsed().as_secs_f64() * 1e3);
        let lives = answer["lives"]
            .as_array()
            .context("recommend answer without `lives`")?
            .iter()
            .filter_map(|l| l["live_id"].as_u64().map(LiveId))
            .collect();
        Ok(lives)
    }
}

impl FeedPolicy for ApiFeed {
    fn pick(&mut self, slot: &FeedSlot<'_>) -> Option<LiveId> {
        if self.error.is_some() {
            return None;
        }
        if let Err(e) = self.flush() {
            self.error = Some(e.context("ingesting the simulated events into the world"));
            return None;
        }
        if !self.window.contains(&slot.ts.0) {
            return None;
        }
        let arm = abtest::arm_of(self.split_seed, slot.user, self.clients.len());
        let fresh = self
            .pages
            .get(&slot.user)
            .is_none_or(|p| p.request != slot.request);
        if fresh {
            match self.ask(arm, slot) {
                Ok(lives) => {
                    self.pages.insert(
                        slot.user,
                        PageAnswer {
                            request: slot.request,
                            lives,
                            shown: Vec::new(),
                        },
                    );
                }
                Err(e) => {
                    self.error = Some(e.context(format!("arm {arm}")));
                    return None;
                }
            }
        }
        let page = self.pages.get_mut(&slot.user)?;
        let choice = page
            .lives
            .iter()
            .copied()
            .find(|l| slot.on_air.contains(l) && !page.shown.contains(l));
        match choice {
            Some(live) => {
                page.shown.push(live);
                self.calls[arm].filled += 1;
                Some(live)
            }
            None => {
                self.calls[arm].fallbacks += 1;
                None
            }
        }
    }

    fn refused(&mut self, _slot: &FeedSlot<'_>, _live: LiveId) {
        // `pick` only returns rooms of `slot.on_air`: a refusal is a bug of this harness.
        self.error
            .get_or_insert_with(|| anyhow::anyhow!("the simulator refused a room on air"));
    }
}

/// Passes every event to the world (through the feed's queue) and keeps those of the
/// test window that the outcomes count.
struct WindowSink {
    pending: Rc<RefCell<Vec<Event>>>,
    window: std::ops::Range<i64>,
    kept: Vec<Event>,
}

impl EventSink for WindowSink {
    type Error = std::convert::Infallible;
    fn event(&mut self, event: &Event) -> Result<(), Self::Error> {
        self.pending.borrow_mut().push(event.clone());
        let counted = matches!(
            event.kind,
            EventKind::Enter { .. }
                | EventKind::Leave { .. }
                | EventKind::Gift { .. }
                | EventKind::Purchase { .. }
        );
        if counted && self.window.contains(&event.ts.0) {
            self.kept.push(event.clone());
        }
        Ok(())
    }
    fn malformed(&mut self, _record: &MalformedRecord) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// One arm's part of a test's result.
#[derive(Debug, Serialize)]
struct ArmResult {
    name: String,
    serves: String,
    calls: ArmCalls,
    p50_ms: f64,
    p99_ms: f64,
    row: ArmRow,
}

/// One run of the test.
#[derive(Debug, Serialize)]
struct TestRun {
    sim_seed: u64,
    split_seed: u64,
    start_ms: i64,
    from_ms: i64,
    until_ms: i64,
    seconds: f64,
    arms: Vec<ArmResult>,
}

/// The command's result file.
#[derive(Debug, Serialize)]
struct AbtestResult {
    preset: String,
    hours: u32,
    resamples: usize,
    metrics: Vec<&'static str>,
    runs: Vec<TestRun>,
    /// Per non-control arm and metric, in how many runs the interval covered 0.
    coverage: Vec<(String, Vec<(&'static str, u64)>)>,
}

/// Runs the command.
pub fn run(settings: &Settings, args: AbtestArgs) -> Result<(), Failure> {
    let result = test(settings, &args)?;
    std::fs::create_dir_all(&args.out).input_err("creating --out")?;
    let json = serde_json::to_vec_pretty(&result).map_err(anyhow::Error::from)?;
    liverank_fs::write_atomic_bytes(&args.out.join("abtest.json"), &json)
        .map_err(anyhow::Error::from)?;
    let markdown = to_markdown(&result);
    liverank_fs::write_atomic_bytes(&args.out.join("abtest.md"), markdown.as_bytes())
        .map_err(anyhow::Error::from)?;
    println!("{markdown}");
    println!("abtest → {}", args.out.join("abtest.json").display());
    Ok(())
}

/// Loads the arms and runs the test `args.repeats` times.
fn test(settings: &Settings, args: &AbtestArgs) -> Result<AbtestResult, Failure> {
    if args.arms.len() < 2 {
        return Err(Failure::Input(anyhow::anyhow!(
            "an A/B test needs at least two --arm"
        )));
    }
    if args.page_rooms == 0 || args.repeats == 0 || args.resamples == 0 {
        return Err(Failure::Input(anyhow::anyhow!(
            "--page-rooms, --repeats and --resamples must be positive"
        )));
    }
    let arms: Vec<Arm> = args
        .arms
        .iter()
        .map(|a| load_arm(a))
        .collect::<Result<_, _>>()?;
    let mut config = SimConfig {
        seed: args.seed,
        ..SimConfig::preset(args.preset)
    };
    if let Some(h) = args.hours {
        config.hours = h;
    }
    let any_model = arms.iter().any(|a| a.ranker.is_some());
    let from_ms = match args.from_hour {
        Some(h) => config.start_ms + (h * 3_600_000.0) as i64,
        None => arms
            .iter()
            .filter_map(|a| a.eval_from_ms)
            .max()
            .unwrap_or(config.start_ms),
    };
    if args.from_hour.is_none()
        && arms
            .iter()
            .any(|a| a.ranker.is_some() && a.eval_from_ms.is_none())
    {
        eprintln!(
            "warning: a model arm has no evaluation.json with eval_from_ms beside it: the window starts at hour {:.1}, which may overlap what it trained on (set --from-hour)",
            (from_ms - config.start_ms) as f64 / 3.6e6
        );
    }
    let until_ms = match args.window_hours {
        Some(h) if h > 0.0 => (from_ms + (h * 3_600_000.0) as i64).min(config.end_ms()),
        Some(h) => {
            return Err(Failure::Input(anyhow::anyhow!(
                "--window-hours must be positive, got {h}"
            )));
        }
        None => config.end_ms(),
    };
    if from_ms >= config.end_ms() {
        return Err(Failure::Input(anyhow::anyhow!(
            "the test window starts at or after the day's end ({} h of {})",
            (from_ms - config.start_ms) as f64 / 3.6e6,
            config.hours
        )));
    }
    let mut runs = Vec::new();
    for r in 0..args.repeats {
        // Without a model every repeat can be another day; a model knows one world only.
        let sim_seed = if any_model { args.seed } else { args.seed + r };
        let sim = SimConfig {
            seed: sim_seed,
            ..config.clone()
        };
        if !args.quiet && args.repeats > 1 {
            println!("== run {}/{}", r + 1, args.repeats);
        }
        runs.push(run_once(
            settings,
            &arms,
            sim,
            args.split_seed + r,
            from_ms..until_ms,
            args,
        )?);
    }
    let metrics: Vec<&'static str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let coverage = arms
        .iter()
        .enumerate()
        .skip(1)
        .map(|(a, arm)| {
            let counts = Metric::ALL
                .iter()
                .enumerate()
                .map(|(k, m)| {
                    let covered = runs
                        .iter()
                        .filter(|run| run.arms[a].row.metrics[k].covers_zero())
                        .count() as u64;
                    (m.name(), covered)
                })
                .collect();
            (arm.name.clone(), counts)
        })
        .collect();
    Ok(AbtestResult {
        preset: args.preset.to_string(),
        hours: config.hours,
        resamples: args.resamples,
        metrics,
        runs,
        coverage,
    })
}

/// One closed-loop day: servers up, the simulation driven through them, outcomes compared.
fn run_once(
    settings: &Settings,
    arms: &[Arm],
    config: SimConfig,
    split_seed: u64,
    window: std::ops::Range<i64>,
    args: &AbtestArgs,
) -> Result<TestRun, Failure> {
    let (from_ms, until_ms) = (window.start, window.end);
    let clock = Instant::now();
    let sim = liverank_sim::Simulation::new(config.clone()).input_err("simulator settings")?;
    let (world, _history) = crate::serve::empty_world(settings, &sim)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let mut stops = Vec::new();
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for arm in arms {
        let mut serve: ServeConfig = settings.serve.clone();
        let slot = Arc::new(ModelSlot::new());
        match &arm.ranker {
            Some(ranker) => {
                slot.publish(ServedModel::new(1, Arc::clone(ranker), None))
                    .map_err(anyhow::Error::from)?;
            }
            None => serve.ranking = RankingMode::Popularity,
        }
        let state = crate::serve::state(&Arc::new(serve), &world, &slot);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("binding a loopback port")?;
        addrs.push(listener.local_addr().context("local address")?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        servers.push(runtime.spawn(liverank_serve::serve(listener, state, async {
            let _ = stopped.await;
        })));
    }
    let clients = addrs
        .iter()
        .map(|&a| HttpClient::connect(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pending = Rc::new(RefCell::new(Vec::new()));
    let mut feed = ApiFeed {
        clients,
        split_seed,
        window: window.clone(),
        page_rooms: args.page_rooms,
        world: Arc::clone(&world),
        pending: Rc::clone(&pending),
        pages: HashMap::new(),
        calls: vec![ArmCalls::default(); arms.len()],
        error: None,
    };
    let mut sink = WindowSink {
        pending,
        window: window.clone(),
        kept: Vec::new(),
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} closed loop [{bar:30}] {pos}/{len} visits · {msg} · {elapsed}",
        )
        .map_err(anyhow::Error::from)?
        .progress_chars("=> "),
    );
    let (truth, _summary) = sim
        .run_with_feed(&mut sink, &mut feed, |p| {
            bar.set_length(p.visits_total);
            bar.set_position(p.visits_done);
            bar.set_message(format!("{} events", p.events));
        })
        .map_err(|e| anyhow::anyhow!("closed-loop simulation: {e}"))?;
    bar.finish_and_clear();
    let made: u64 = feed.calls.iter().map(|c| c.calls).sum();
    if let Some(e) = feed.error.take() {
        return Err(Failure::Runtime(e));
    }
    for stop in stops {
        let _ = stop.send(());
    }
    for server in servers {
        runtime
            .block_on(server)
            .context("server task")?
            .map_err(anyhow::Error::from)?;
    }

    let shown: Vec<ShownExposure> = truth
        .iter()
        .filter(|t| window.contains(&t.ts.0))
        .map(|t| ShownExposure {
            user: t.user,
            p_click: t.p_click,
            in_highlight: t.in_highlight,
        })
        .collect();
    let users: Vec<UserId> = sim.world().users.iter().map(|u| u.profile.user).collect();
    let outcomes = abtest::outcomes(&sink.kept, &shown, &users);
    let mut by_arm: Vec<(String, Vec<UserOutcome>)> =
        arms.iter().map(|a| (a.name.clone(), Vec::new())).collect();
    for &u in &users {
        let a = abtest::arm_of(split_seed, u, arms.len());
        by_arm[a]
            .1
            .push(outcomes.get(&u).copied().unwrap_or_default());
    }
    let rows = abtest::compare(&by_arm, 0, args.resamples, split_seed ^ 0xA5A5);
    let arms_out = arms
        .iter()
        .zip(rows)
        .zip(feed.calls)
        .map(|((arm, row), calls)| {
            let mut lat = calls.latencies_ms.clone();
            lat.sort_by(f64::total_cmp);
            ArmResult {
                name: arm.name.clone(),
                serves: arm.spec.describe(),
                p50_ms: abtest::quantile(&lat, 0.5),
                p99_ms: abtest::quantile(&lat, 0.99),
                calls,
                row,
            }
        })
        .collect();
    if !args.quiet {
        println!(
            "closed loop: {} recommend calls over {} arms in {:.1} s",
            made,
            arms.len(),
            clock.elapsed().as_secs_f64()
        );
    }
    Ok(TestRun {
        sim_seed: config.seed,
        split_seed,
        start_ms: config.start_ms,
        from_ms,
        until_ms,
        seconds: clock.elapsed().as_secs_f64(),
        arms: arms_out,
    })
}

fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

/// The first run's table (each cell: value, then difference to the control with its
/// interval), the runs' summary and, over several runs, the coverage counts.
fn to_markdown(result: &AbtestResult) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let Some(run) = result.runs.first() else {
        return md;
    };
    let _ = writeln!(
        md,
        "Closed-loop A/B test on `{}` (seed {}, split seed {}): hours {:.1}–{:.1} of the day, {} bootstrap replicates; each cell is the arm's value, then its difference to `{}` with the 95 % interval.\n",
        result.preset,
        run.sim_seed,
        run.split_seed,
        (run.from_ms - run.start_ms) as f64 / 3.6e6,
        (run.until_ms - run.start_ms) as f64 / 3.6e6,
        result.resamples,
        run.arms.first().map_or("", |a| a.name.as_str()),
    );
    let _ = write!(md, "| arm | serves | users | shown |");
    for m in Metric::ALL {
        let _ = write!(md, " {} |", m.name());
    }
    let _ = write!(md, " calls | p99 ms |\n|---|---|---|---|");
    for _ in Metric::ALL {
        let _ = write!(md, "---|");
    }
    let _ = writeln!(md, "---|---|");
    for (a, arm) in run.arms.iter().enumerate() {
        let _ = write!(
            md,
            "| {} | {} | {} | {:.0} |",
            arm.name, arm.serves, arm.row.users, arm.row.total.shown
        );
        for cell in &arm.row.metrics {
            if a == 0 {
                let _ = write!(md, " {} |", fmt_value(cell.value));
            } else {
                let _ = write!(
                    md,
                    " {} ({:+.4} [{:+.4}, {:+.4}]) |",
                    fmt_value(cell.value),
                    cell.diff,
                    cell.ci.0,
                    cell.ci.1
                );
            }
        }
        let _ = writeln!(md, " {} | {:.1} |", arm.calls.calls, arm.p99_ms);
    }
    let fallbacks: u64 = run.arms.iter().map(|a| a.calls.fallbacks).sum();
    let filled: u64 = run.arms.iter().map(|a| a.calls.filled).sum();
    let _ = writeln!(
        md,
        "\n{filled} live slots filled by the arms' APIs, {fallbacks} by the platform's recommender because no answered room was still on air and unshown; {:.1} s.",
        run.seconds
    );
    if result.runs.len() > 1 {
        let _ = writeln!(
            md,
            "\nOver {} runs, how often each metric's interval of the difference covered 0:\n",
            result.runs.len()
        );
        let _ = write!(md, "| arm |");
        for m in Metric::ALL {
            let _ = write!(md, " {} |", m.name());
        }
        let _ = write!(md, "\n|---|");
        for _ in Metric::ALL {
            let _ = write!(md, "---|");
        }
        let _ = writeln!(md);
        for (arm, counts) in &result.coverage {
            let _ = write!(md, "| {arm} |");
            for (_, c) in counts {
                let _ = write!(md, " {c}/{} |", result.runs.len());
            }
            let _ = writeln!(md);
        }
    }
    md
}
