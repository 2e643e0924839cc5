//! Report rendering: the Markdown twin against a golden text, the HTML page's
//! self-containment and escaping, figures decoded back from their PNG bytes.

use liverank_report::plot::{Histogram, IntervalChart, LineChart, Series};
use liverank_report::{Block, Report, ReportError, Section, Table};

/// Decodes a PNG: (width, height, RGB or RGBA bytes, bytes per pixel).
fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    buf.truncate(info.buffer_size());
    let bpp = info.color_type.samples();
    (info.width, info.height, buf, bpp)
}

/// Share of pixels that are not white.
fn ink(png_bytes: &[u8]) -> f64 {
    let (_, _, buf, bpp) = decode(png_bytes);
    let pixels = buf.len() / bpp;
    let inked = buf
        .chunks(bpp)
        .filter(|p| p[..3].iter().any(|&c| c < 250))
        .count();
    inked as f64 / pixels as f64
}

fn sample_report() -> Report {
    let mut report = Report::new("liverank run").with_subtitle("preset tiny, seed 7");
    report.push(
        Section::new("Offline evaluation", "AUC per task on the held-out slice.")
            .with(Block::Facts(vec![("samples".into(), "1,234".into())]))
            .with(Block::Table(
                Table::new(vec!["task".into(), "AUC".into(), "note".into()]).with_row(vec![
                    "click".into(),
                    "0.8095".into(),
                    "a|b".into(),
                ]),
            ))
            .with(Block::Text("Higher is better <always>.".into())),
    );
    report
}

#[test]
fn markdown_matches_the_golden_text() {
    let md = sample_report().to_markdown("figures");
    let expected = "# liverank run\n\npreset tiny, seed 7\n\n## Offline evaluation\n\n\
*AUC per task on the held-out slice.*\n\n- **samples**: 1,234\n\n\
| task | AUC | note |\n|---|---:|---:|\n| click | 0.8095 | a\\|b |\n\n\
Higher is better <always>.\n\n";
    assert_eq!(md, expected);
}

#[test]
fn html_escapes_text_and_references_nothing_outside() {
    let mut report = sample_report();
    let fig = LineChart::new("AUC over the day", "hour", "AUC")
        .with_series(Series::new(
            "realtime",
            vec![(0.0, 0.6), (1.0, 0.7), (2.0, 0.75)],
        ))
        .render("auc", "Prequential click AUC per hour.")
        .expect("figure");
    report.sections[0].push(Block::Figure(fig));
    let html = report.to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Higher is better &lt;always&gt;."));
    assert!(!html.contains("<always>"));
    assert!(html.contains("src=\"data:image/png;base64,"));
    // Self-contained: no external script, stylesheet or image.
    for needle in ["http://", "https://", "<script", "<link", "src=\"figures/"] {
        assert!(!html.contains(needle), "{needle} in the page");
    }
    assert!(html.contains("width=\"900\" height=\"420\""));
}

#[test]
fn line_chart_png_has_the_asked_size_and_draws_something() {
    let fig = LineChart::new("t", "x", "y")
        .with_series(Series::new("a", vec![(0.0, 1.0), (10.0, 3.0)]))
        .with_series(Series::new(
            "b",
            vec![(0.0, 2.0), (10.0, f64::NAN), (5.0, 1.5)],
        ))
        .with_band(2.0, 4.0)
        .render("lines", "Two lines.")
        .expect("figure");
    let (w, h, _, _) = decode(&fig.png);
    assert_eq!((w, h), (900, 420));
    assert_eq!((fig.width, fig.height), (900, 420));
    // LIVERANK_REPORT_DUMP=DIR keeps the figure for a look.
    if let Ok(dir) = std::env::var("LIVERANK_REPORT_DUMP") {
        std::fs::write(std::path::Path::new(&dir).join("lines.png"), &fig.png).expect("dump");
    }
    let share = ink(&fig.png);
    assert!(share > 0.01 && share < 0.6, "ink share {share}");
}

#[test]
fn a_figure_without_finite_data_is_an_error_not_an_empty_frame() {
    let err = LineChart::new("t", "x", "y")
        .with_series(Series::new("a", vec![(f64::NAN, 1.0)]))
        .render("empty", "Nothing.")
        .expect_err("no data");
    assert!(matches!(err, ReportError::EmptyFigure(ref n) if n == "empty"));
    assert!(matches!(
        Histogram::new("h", "s").render("h", "c"),
        Err(ReportError::EmptyFigure(_))
    ));
    assert!(matches!(
        IntervalChart::new("i", "y").render("i", "c"),
        Err(ReportError::EmptyFigure(_))
    ));
}

#[test]
fn histogram_counts_match_a_hand_count() {
    // Values 0..=10 over 5 bins of width 2: [0,2) [2,4) [4,6) [6,8) [8,10], the last closed.
    let values: Vec<f64> = (0..=10).map(f64::from).collect();
    let h = Histogram {
        bins: 5,
        ..Histogram::new("h", "s")
    }
    .with_sample("a", values)
    .with_sample("b", vec![10.0, f64::INFINITY, 0.5]);
    let (edges, counts) = h.counts().expect("data");
    assert_eq!(edges, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    assert_eq!(counts[0], vec![2, 2, 2, 2, 3]);
    assert_eq!(counts[1], vec![1, 0, 0, 0, 1]);
    let fig = h.render("hist", "Counts.").expect("figure");
    assert!(ink(&fig.png) > 0.01);
}

#[test]
fn interval_chart_draws_each_arm() {
    let fig = IntervalChart::new("clicks per user", "clicks")
        .with_item("realtime", 1.2, 1.1, 1.3)
        .with_item("popular", 0.9, 0.8, 1.0)
        .render("ab", "Clicks per user by arm.")
        .expect("figure");
    let (w, h, _, _) = decode(&fig.png);
    assert_eq!((w, h), (700, 380));
    assert!(ink(&fig.png) > 0.01);
}

#[test]
fn validate_rejects_ragged_tables_and_duplicate_figure_names() {
    let mut report = Report::new("r");
    report.push(Section::new("s", "").with(Block::Table(
        Table::new(vec!["a".into(), "b".into()]).with_row(vec!["1".into()]),
    )));
    assert!(matches!(report.validate(), Err(ReportError::Table { .. })));

    let fig = LineChart::new("t", "x", "y")
        .with_series(Series::new("a", vec![(0.0, 1.0), (1.0, 2.0)]))
        .render("same", "c")
        .expect("figure");
    let mut report = Report::new("r");
    report.push(
        Section::new("s", "")
            .with(Block::Figure(fig.clone()))
            .with(Block::Figure(fig)),
    );
    assert!(matches!(report.validate(), Err(ReportError::FigureName(_))));
}

#[test]
fn write_puts_html_markdown_and_figures_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut report = sample_report();
    let fig = LineChart::new("t", "x", "y")
        .with_series(Series::new("a", vec![(0.0, 1.0), (1.0, 2.0)]))
        .render("line_1", "A line.")
        .expect("figure");
    report.sections[0].push(Block::Figure(fig.clone()));
    let files = report.write(dir.path(), "report").expect("write");
    assert_eq!(std::fs::read(&files.figures[0]).expect("png"), fig.png);
    let md = std::fs::read_to_string(&files.markdown).expect("md");
    assert!(md.contains("![A line.](figures/line_1.png)"));
    let html = std::fs::read_to_string(&files.html).expect("html");
    assert_eq!(html, report.to_html());
    // No temporary file left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, vec!["figures", "report.html", "report.md"]);
}
