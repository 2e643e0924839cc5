//! `liverank inspect`: summarise an event file, with the realism statistics of the
//! simulator when its tables and ground truth sit beside the events.

use crate::{Failure, IngestContext, InputContext};
use clap::Args;
use liverank_ingest::{DeadLetterWriter, EventFormat, read_events, read_table};
use liverank_sim::TruthExposure;
use liverank_sim::realism::{RealismContext, RealismStats, TruthHighlight};
use liverank_types::{Live, Product, Video};
use std::path::{Path, PathBuf};

/// Arguments of `liverank inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Event file (.parquet or .jsonl).
    events: PathBuf,
    /// Write records that fail to parse or validate here (JSON Lines).
    #[arg(long, value_name = "FILE")]
    dead_letters: Option<PathBuf>,
    /// Print the statistics as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn sibling<T: serde::de::DeserializeOwned>(
    dir: &Path,
    stem: &str,
    ext: &str,
) -> Result<Option<Vec<T>>, Failure> {
    let path = dir.join(format!("{stem}.{ext}"));
    if !path.exists() {
        return Ok(None);
    }
    read_table(&path)
        .map(Some)
        .ingest_err(&format!("reading {}", path.display()))
}

/// Runs the command.
pub fn run(args: InspectArgs) -> Result<(), Failure> {
    let format = EventFormat::from_path(&args.events).input_err("unsupported event file")?;
    let dir = args.events.parent().unwrap_or(Path::new(".")).to_path_buf();
    let ext = format.extension();
    let videos: Vec<Video> = sibling(&dir, "videos", ext)?.unwrap_or_default();
    let lives: Vec<Live> = sibling(&dir, "lives", ext)?.unwrap_or_default();
    let products: Vec<Product> = sibling(&dir, "products", ext)?.unwrap_or_default();
    let highlights: Option<Vec<TruthHighlight>> = sibling(&dir, "truth_highlights", ext)?;
    let truth: Option<Vec<TruthExposure>> = sibling(&dir, "truth_exposures", ext)?;
    let context = RealismContext::new(
        &videos,
        &lives,
        highlights.as_deref().unwrap_or_default(),
        products,
    );
    let mut stats = RealismStats::new(&context);
    let mut dead = match &args.dead_letters {
        Some(p) => Some(DeadLetterWriter::create(p).ingest_err("opening the dead-letter file")?),
        None => None,
    };
    let read = read_events(&args.events, dead.as_mut(), |e| stats.add(&context, &e))
        .ingest_err(&format!("reading {}", args.events.display()))?;
    if let Some(d) = dead {
        d.finish().ingest_err("writing the dead-letter file")?;
    }
    let truth_triples: Option<Vec<(u64, u64, f64)>> = truth.map(|t| {
        t.iter()
            .map(|x| (x.request_id.0, x.live.0, x.p_click))
            .collect()
    });
    let report = stats.finish(truth_triples.as_deref());
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?;
        println!("{text}");
        return Ok(());
    }
    println!("{}", args.events.display());
    println!(
        "records: {} events, {} malformed, {} invalid",
        read.events, read.malformed, read.invalid
    );
    println!("{:<18} {:>12}", "event type", "count");
    for (name, n) in &report.counts {
        println!("{name:<18} {n:>12}");
    }
    println!();
    println!(
        "video:live exposures        {:>10.2}",
        report.video_per_live
    );
    if highlights.is_some() {
        println!(
            "live CTR in highlights      {:>10.4}   outside {:.4}   lift {:.2}x",
            report.ctr_in_highlight, report.ctr_outside_highlight, report.highlight_lift
        );
    } else {
        println!("live CTR in highlights      (no truth_highlights.{ext} beside the events)");
    }
    let g = report.gift_delay_min;
    println!(
        "gift delay after enter      p10 {:.1} min   p50 {:.1} min   p90 {:.1} min",
        g[0], g[1], g[2]
    );
    println!(
        "next product shares c2      {:>10.3}   (random product of the same c1: {:.3})",
        report.next_product_same_c2, report.random_same_c1_baseline
    );
    println!(
        "interest transfer           {:>10.2}x  (live CTR of category c, top quartile of c's video plays vs bottom half; median over {} categories)",
        report.interest_transfer_median,
        report.interest_transfer.len()
    );
    println!(
        "sanity                      {} leave without enter, {} of {} room events outside their live",
        report.leave_without_enter, report.room_event_outside_live, report.room_events
    );
    if let Some(auc) = report.oracle_click_auc {
        println!("oracle click AUC            {auc:>10.4}   (true probabilities vs what happened)");
    }
    Ok(())
}
