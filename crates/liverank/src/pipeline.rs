//! `liverank run`: the whole system on the embedded defaults — simulate a preset, build
//! realtime, fast/slow and complete samples, build the users' interaction history store,
//! train the ranker on the realtime samples (with the Cross sequences read from the store)
//! and print the evaluation on the later slice's complete labels (and train the two
//! comparison models: fast/slow samples with the PU loss, and no Cross), stream the same
//! day through the online pipeline (test-then-train, published versions), start the
//! serving API on a free loopback port with the streamed model and print a few `recommend`
//! answers, run the closed-loop A/B test of the three models against popularity on the
//! held-out hours, and write the HTML report. Each stage is its subcommand's own function,
//! called with its arguments built here (no argv round trip), with its own progress.

use crate::Failure;
use crate::history::{BuildArgs, StoreArgs};
use crate::samples::SamplesArgs;
use crate::settings::Settings;
use crate::simulate::SimulateArgs;
use crate::train::TrainArgs;
use clap::Args;
use liverank_history::BackendKind;
use liverank_sim::Preset;
use liverank_types::Policy;
use std::path::PathBuf;

/// Arguments of `liverank run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Simulator preset.
    #[arg(long, default_value = "small")]
    preset: Preset,
    /// Root seed of the simulator and the model.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Working directory: <out>/sim, <out>/samples, <out>/history, <out>/model.
    #[arg(long, default_value = "data/run")]
    out: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Skip the online stage (stream + the API on its model): the offline half only.
    #[arg(long)]
    no_stream: bool,
    /// Also stream the day with this training policy into <out>/stream-<policy> (for the
    /// report's per-policy prequential AUC; each adds a stream stage's time).
    #[arg(long, value_name = "POLICY")]
    also_stream: Vec<Policy>,
    /// Also run this `liverank experiment` file (ablations) on the run's samples and
    /// history (its `[data]` paths are replaced; its training settings stay), into
    /// <out>/experiments/<file stem>/; the report shows its table. Repeatable.
    #[arg(long, value_name = "FILE")]
    experiment: Vec<PathBuf>,
    /// Hours of the closed-loop A/B test, from the start of the held-out slice (0 = skip).
    #[arg(long, default_value_t = 2.0)]
    abtest_hours: f64,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
}

const STAGES: usize = 9;

/// Runs the command.
pub fn run(settings: &Settings, args: RunArgs) -> Result<(), Failure> {
    let dir = |name: &str| args.out.join(name);
    let quiet = args.quiet;
    let mut clock = StageClock::new();

    clock.start("simulate");
    println!(
        "== 1/{STAGES} simulate: preset {}, seed {}, into {}",
        args.preset,
        args.seed,
        dir("sim").display()
    );
    crate::simulate::run(
        settings,
        SimulateArgs {
            preset: Some(args.preset),
            seed: Some(args.seed),
            users: None,
            hours: None,
            out: Some(dir("sim")),
            format: "parquet".into(),
            out_of_order: None,
            late: None,
            duplicate: None,
            malformed: None,
            quiet,
        },
    )?;

    let events = dir("sim").join("events.parquet");
    clock.start("samples");
    println!(
        "== 2/{STAGES} samples: every policy (realtime, fast/slow, naive 30 s, complete) and their label consistency, into {}",
        dir("samples").display()
    );
    crate::samples::run(
        settings,
        SamplesArgs {
            events: Some(events.clone()),
            out: dir("samples"),
            policies: vec![Policy::Realtime, Policy::Fastslow, Policy::Complete],
            checkpoint_every: 500_000,
            fresh: true,
            format: "parquet".into(),
            no_features: false,
            // All four policies, and the label-consistency table for the report.
            report: true,
            quiet,
            kafka: false,
            partitions: Vec::new(),
            tables: None,
            follow: false,
        },
    )?;

    clock.start("history");
    println!(
        "== 3/{STAGES} history: embedded store in {}",
        dir("history").display()
    );
    crate::history::build(
        settings,
        &BuildArgs {
            events,
            store: StoreArgs {
                store: Some(dir("history")),
                backend: Some(BackendKind::Embedded),
                redis_url: None,
                redis_prefix: None,
            },
            videos: None,
            lives: None,
            batch: 20_000,
            print_acks: false,
            fresh: true,
            quiet,
        },
    )?;

    clock.start("train");
    println!(
        "== 4/{STAGES} train + evaluate: realtime samples, {} epochs, into {}",
        args.epochs,
        dir("model").display()
    );
    let train_args = |policy: Policy, out: &str| TrainArgs {
        train_samples: dir("samples"),
        eval_samples: None,
        policy,
        model_config: None,
        trunk: None,
        seed: Some(args.seed),
        epochs: Some(args.epochs),
        batch_size: None,
        train_fraction: None,
        history: Some(dir("history")),
        truth: Some(dir("sim").join("truth_exposures.parquet")),
        out: Some(dir(out)),
        resume: false,
        quiet,
    };
    crate::train::run(settings, train_args(Policy::Realtime, "model"))?;
    // The A/B test's comparison arms: the legacy windows' samples with the PU loss, and
    // the realtime model without the Cross history inputs.
    println!(
        "-- comparison model: fast/slow samples (PU loss), into {}",
        dir("model-fastslow").display()
    );
    crate::train::run(settings, train_args(Policy::Fastslow, "model-fastslow"))?;
    println!(
        "-- comparison model: realtime samples without Cross, into {}",
        dir("model-nocross").display()
    );
    let mut no_cross = settings.clone();
    no_cross.model.history_sequences.clear();
    no_cross.model.history_profile = false;
    crate::train::run(&no_cross, train_args(Policy::Realtime, "model-nocross"))?;
    for file in &args.experiment {
        let stem = file
            .file_stem()
            .map_or_else(|| "experiment".into(), |s| s.to_string_lossy().into_owned());
        let out = dir("experiments").join(stem);
        println!(
            "-- ablation: {} on this run's samples and history, into {}",
            file.display(),
            out.display()
        );
        crate::experiment::run_file(
            settings,
            file,
            &out,
            Some(crate::experiment::DataOverride {
                train_samples: dir("samples"),
                history: dir("history"),
            }),
        )?;
    }

    clock.start("stream");
    let model_dir = if args.no_stream {
        println!("== 5/{STAGES} stream: skipped (--no-stream)");
        None
    } else {
        println!(
            "== 5/{STAGES} stream: the day through the online pipeline (realtime, test-then-train), into {}",
            dir("stream").display()
        );
        let stream_args = crate::stream::StreamArgs {
            events: Some(dir("sim").join("events.parquet")),
            preset: None,
            seed: Some(args.seed),
            out: dir("stream"),
            resume: false,
            policy: Some(Policy::Realtime),
            pace: Some(0.0),
            no_live_stats: false,
            quiet,
        };
        let summary = crate::stream::stream(settings, &stream_args)?;
        crate::stream::print_summary(&summary);
        for &policy in &args.also_stream {
            let out = dir(&format!("stream-{}", policy.as_str()));
            println!(
                "-- the same day streamed with the {} policy, into {}",
                policy.as_str(),
                out.display()
            );
            let summary = crate::stream::stream(
                settings,
                &crate::stream::StreamArgs {
                    out,
                    policy: Some(policy),
                    ..stream_args.clone()
                },
            )?;
            crate::stream::print_summary(&summary);
        }
        Some(dir("stream").join("model"))
    };

    clock.start("serve");
    println!("== 6/{STAGES} serve: the API on a free loopback port, a few recommend calls");
    match &model_dir {
        Some(model) => serve_stage(settings, args.preset, args.seed, model)?,
        None => println!("skipped: no streamed model (--no-stream)"),
    }

    clock.start("forecast");
    println!(
        "== 7/{STAGES} forecast: LiveForesighter trained on the rooms of the first part of the day, evaluated on the rest, into {}",
        dir("forecast").display()
    );
    crate::forecast::train(
        settings,
        crate::forecast::TrainArgs {
            samples: dir("samples"),
            out: dir("forecast"),
            seed: None,
            epochs: None,
            quiet,
        },
    )?;
    crate::forecast::eval(
        settings,
        crate::forecast::EvalArgs {
            samples: dir("samples"),
            model: dir("forecast"),
            truth: Some(dir("sim").join("truth_highlights.parquet")),
            json: Some(dir("forecast").join("eval.json")),
            plot: Some(dir("forecast").join("plots")),
        },
    )?;

    clock.start("abtest");
    if args.abtest_hours > 0.0 {
        println!(
            "== 8/{STAGES} abtest: closed loop on the held-out hours, {} h, into {}",
            args.abtest_hours,
            dir("abtest").display()
        );
        let arm = |name: &str, model: &str| {
            format!(
                "{name}=checkpoint:{}",
                dir(model).join("model.ckpt").display()
            )
        };
        crate::abtest::run(
            settings,
            crate::abtest::AbtestArgs {
                preset: args.preset,
                seed: args.seed,
                hours: None,
                arms: vec![
                    "popularity=popularity".into(),
                    arm("realtime", "model"),
                    arm("fastslow", "model-fastslow"),
                    arm("realtime-no-cross", "model-nocross"),
                ],
                split_seed: 1,
                from_hour: None,
                window_hours: Some(args.abtest_hours),
                page_rooms: 10,
                repeats: 1,
                resamples: 1000,
                out: dir("abtest"),
                quiet,
            },
        )?;
    } else {
        println!("== 8/{STAGES} abtest: skipped (--abtest-hours 0)");
    }

    println!(
        "== 9/{STAGES} report: {}",
        args.out.join("report.html").display()
    );
    // The report reads timings.json, so the stages before it are written first; the
    // report's own time is added to the summary printed after it.
    clock.stop();
    clock.write(&args.out.join("timings.json"))?;
    clock.start("report");
    crate::report::run(crate::report::ReportArgs::of(args.out.clone()))?;
    clock.stop();
    clock.print();
    Ok(())
}

/// Wall time per stage of the main job, printed at the end and written to
/// `<out>/timings.json` for the report.
struct StageClock {
    started: std::time::Instant,
    current: Option<(&'static str, std::time::Instant)>,
    done: Vec<(&'static str, f64)>,
}

impl StageClock {
    fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            current: None,
            done: Vec::new(),
        }
    }

    fn start(&mut self, stage: &'static str) {
        self.stop();
        self.current = Some((stage, std::time::Instant::now()));
    }

    fn stop(&mut self) {
        if let Some((stage, at)) = self.current.take() {
            self.done.push((stage, at.elapsed().as_secs_f64()));
        }
    }

    fn write(&self, path: &std::path::Path) -> Result<(), Failure> {
        let stages: Vec<serde_json::Value> = self
            .done
            .iter()
            .map(|(stage, s)| serde_json::json!({ "stage": stage, "seconds": s }))
            .collect();
        let json = serde_json::json!({
            "stages": stages,
            "total_seconds": self.started.elapsed().as_secs_f64(),
        });
        std::fs::write(path, format!("{json:#}\n"))
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("writing {}: {e}", path.display())))
    }

    fn print(&self) {
        let parts: Vec<String> = self
            .done
            .iter()
            .map(|(stage, s)| format!("{stage} {s:.0} s"))
            .collect();
        println!(
            "main job done in {:.0} s: {}",
            self.started.elapsed().as_secs_f64(),
            parts.join(" · ")
        );
    }
}

/// Starts the API over the preset's world (warmed up to its busiest minute) with the
/// newest version in `model_dir`, sends three `POST /v1/recommend` over a real socket,
/// prints the answers and stops the server gracefully.
fn serve_stage(
    settings: &Settings,
    preset: Preset,
    seed: u64,
    model_dir: &std::path::Path,
) -> Result<(), Failure> {
    use anyhow::Context;
    use liverank_serve::{ModelDirFeed, ModelFeed, ModelSlot};
    use std::sync::Arc;

    let sim = liverank_sim::SimConfig {
        seed,
        ..liverank_sim::SimConfig::preset(preset)
    };
    let demo = crate::serve::demo(settings, sim)?;
    let model = ModelDirFeed::new(model_dir)
        .poll(None)
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| anyhow::anyhow!("{}: no published version", model_dir.display()))?;
    let version = model.version;
    let slot = Arc::new(ModelSlot::new());
    slot.publish(model).map_err(anyhow::Error::from)?;
    let config = Arc::new(settings.serve.clone());
    let state = crate::serve::state(&config, &demo.world, &slot);
    // Users with some history first: their answers show the personal recall sources.
    let mut users: Vec<u64> = demo
        .users
        .iter()
        .copied()
        .filter(|&u| {
            demo.history
                .count(liverank_types::UserId(u))
                .is_ok_and(|n| n > 20)
        })
        .take(3)
        .collect();
    if users.is_empty() {
        users = demo.users.iter().copied().take(3).collect();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a loopback port")?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(liverank_serve::serve(listener, state, async {
            let _ = stopped.await;
        }));
        println!(
            "API on http://{addr} · model v{version} from {} · {} rooms on air",
            model_dir.display(),
            demo.world.on_air_count()
        );
        for user in users {
            let body = format!(r#"{{"user_id": {user}, "count": 3}}"#);
            let started = std::time::Instant::now();
            let answer = post(addr, "/v1/recommend", &body).await?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            print_recommendation(user, &answer, ms);
        }
        let _ = stop.send(());
        server
            .await
            .context("server task")?
            .map_err(anyhow::Error::from)?;
        println!("API stopped (requests drained)");
        anyhow::Ok(())
    })?;
    Ok(())
}

/// One `POST` over a loopback connection, as an outside caller would make it (the blocking
/// client on tokio's blocking pool); the response body as JSON.
async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    body: &str,
) -> anyhow::Result<serde_json::Value> {
    let (path, body) = (path.to_string(), body.to_string());
    tokio::task::spawn_blocking(move || {
        crate::http_client::HttpClient::connect(addr)?.post_json(&path, &body)
    })
    .await?
}

fn print_recommendation(user: u64, answer: &serde_json::Value, ms: f64) {
    let rooms = answer["lives"].as_array().cloned().unwrap_or_default();
    println!(
        "user {user}: {} candidates, model v{}, {ms:.1} ms",
        answer["candidates"], answer["model_version"]
    );
    for room in rooms {
        let sources: Vec<&str> = room["sources"]
            .as_array()
            .map(|s| s.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        println!(
            "  live {:>6}  score {:.3}  click {:.3}  long_view {:.3}  gift {:.4}  via {}",
            room["live_id"],
            room["score"].as_f64().unwrap_or(f64::NAN),
            room["predictions"]["click"].as_f64().unwrap_or(f64::NAN),
            room["predictions"]["long_view"]
                .as_f64()
                .unwrap_or(f64::NAN),
            room["predictions"]["gift"].as_f64().unwrap_or(f64::NAN),
            sources.join("+")
        );
    }
}
