//! Figures drawn with plotters' bitmap backend and encoded as PNG: line charts (a metric
//! over time, forecast vs actual), histograms (time-to-boost distributions) and interval
//! charts (an A/B table's means with their 95 % intervals).
//!
//! Every chart checks its data first: a chart with nothing finite to draw is
//! [`ReportError::EmptyFigure`], never an empty frame that looks like a result.

use crate::{Figure, ReportError, Result};
use plotters::prelude::*;
use std::sync::OnceLock;

/// The font every figure's text is drawn with (shipped in `assets/`, Bitstream Vera license).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ReportError::Draw {
            name: "font".into(),
            reason: "the shipped DejaVu Sans font did not load".into(),
        })
    }
}

/// Colours of the series, in order (colour-blind-safe Okabe–Ito palette).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// One named line of a [`LineChart`].
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// (x, y) points in x order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from its name and points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
        }
    }
}

/// Lines over a shared x axis.
#[derive(Clone, Debug)]
pub struct LineChart {
    /// Title drawn above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Fixed y range; `None` fits the data with a margin.
    pub y_range: Option<(f64, f64)>,
    /// Shaded x intervals (e.g. highlights), drawn behind the lines.
    pub bands: Vec<(f64, f64)>,
    /// Size in pixels.
    pub size: (u32, u32),
}

impl LineChart {
    /// A chart with its labels and default size 900×420.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        LineChart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            y_range: None,
            bands: Vec::new(),
            size: (900, 420),
        }
    }

    /// Adds a line.
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Fixes the y range.
    pub fn with_y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    /// Adds a shaded x interval.
    pub fn with_band(mut self, from: f64, to: f64) -> Self {
        self.bands.push((from, to));
        self
    }

    /// Draws the chart as a [`Figure`] named `name` with `caption`.
    pub fn render(&self, name: &str, caption: &str) -> Result<Figure> {
        let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let all: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter(finite).copied())
            .collect();
        if all.is_empty() {
            return Err(ReportError::EmptyFigure(name.into()));
        }
        let (x0, x1) = span(all.iter().map(|p| p.0));
        let (y0, y1) = match self.y_range {
            Some(r) => r,
            None => padded(span(all.iter().map(|p| p.1))),
        };
        draw(name, caption, self.size, |root| {
            let mut chart = ChartBuilder::on(root)
                .caption(&self.title, (FAMILY, 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(64)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(text)?;
            chart
                .configure_mesh()
                .x_desc(self.x_label.as_str())
                .y_desc(self.y_label.as_str())
                .label_style((FAMILY, 13))
                .draw()
                .map_err(text)?;
            for &(from, to) in &self.bands {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(from.max(x0), y0), (to.min(x1), y1)],
                        RGBColor(255, 215, 0).mix(0.18).filled(),
                    )))
                    .map_err(text)?;
            }
            for (i, series) in self.series.iter().enumerate() {
                let c = color(i);
                let points: Vec<(f64, f64)> =
                    series.points.iter().filter(finite).copied().collect();
                chart
                    .draw_series(LineSeries::new(points, c.stroke_width(2)))
                    .map_err(text)?
                    .label(series.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
            }
            if self.series.len() > 1 || !self.series[0].name.is_empty() {
                chart
                    .configure_series_labels()
                    .label_font((FAMILY, 13))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.4))
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()
                    .map_err(text)?;
            }
            Ok(())
        })
    }
}

/// Overlaid histograms of several samples on shared bins.
#[derive(Clone, Debug)]
pub struct Histogram {
    /// Title drawn above the plot.
    pub title: String,
    /// X axis label (the values' unit).
    pub x_label: String,
    /// Named samples; non-finite values are skipped.
    pub samples: Vec<(String, Vec<f64>)>,
    /// Number of bins over the pooled range.
    pub bins: usize,
    /// Size in pixels.
    pub size: (u32, u32),
}

impl Histogram {
    /// A histogram with 20 bins and size 900×420.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>) -> Self {
        Histogram {
            title: title.into(),
            x_label: x_label.into(),
            samples: Vec::new(),
            bins: 20,
            size: (900, 420),
        }
    }

    /// Adds a named sample.
    pub fn with_sample(mut self, name: impl Into<String>, values: Vec<f64>) -> Self {
        self.samples.push((name.into(), values));
        self
    }

    /// Counts of each sample per bin, with the bin edges: `(edges, counts[sample][bin])`.
    /// The last bin is closed on the right, so the maximum is counted.
    pub fn counts(&self) -> Option<(Vec<f64>, Vec<Vec<u64>>)> {
        let pooled: Vec<f64> = self
            .samples
            .iter()
            .flat_map(|(_, v)| v.iter().copied().filter(|x| x.is_finite()))
            .collect();
        if pooled.is_empty() || self.bins == 0 {
            return None;
        }
        let (lo, mut hi) = span(pooled.iter().copied());
        if hi <= lo {
            hi = lo + 1.0;
        }
        let width = (hi - lo) / self.bins as f64;
        let edges: Vec<f64> = (0..=self.bins).map(|i| lo + width * i as f64).collect();
        let counts = self
            .samples
            .iter()
            .map(|(_, values)| {
                let mut c = vec![0u64; self.bins];
                for &v in values.iter().filter(|x| x.is_finite()) {
                    let bin = (((v - lo) / width) as usize).min(self.bins - 1);
                    c[bin] += 1;
                }
                c
            })
            .collect();
        Some((edges, counts))
    }

    /// Draws the histogram as a [`Figure`].
    pub fn render(&self, name: &str, caption: &str) -> Result<Figure> {
        let Some((edges, counts)) = self.counts() else {
            return Err(ReportError::EmptyFigure(name.into()));
        };
        let top = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
        let (x0, x1) = (edges[0], edges[edges.len() - 1]);
        let k = self.samples.len().max(1) as f64;
        draw(name, caption, self.size, |root| {
            let mut chart = ChartBuilder::on(root)
                .caption(&self.title, (FAMILY, 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(x0..x1, 0.0..top)
                .map_err(text)?;
            chart
                .configure_mesh()
                .x_desc(self.x_label.as_str())
                .y_desc("count")
                .label_style((FAMILY, 13))
                .draw()
                .map_err(text)?;
            for (s, (sample_name, _)) in self.samples.iter().enumerate() {
                let c = color(s);
                // Side by side inside each bin, so overlapping samples stay readable.
                let bars = counts[s].iter().enumerate().map(|(b, &n)| {
                    let w = (edges[b + 1] - edges[b]) / k;
                    let left = edges[b] + w * s as f64;
                    Rectangle::new([(left, 0.0), (left + w * 0.92, n as f64)], c.filled())
                });
                chart
                    .draw_series(bars)
                    .map_err(text)?
                    .label(sample_name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled())
                    });
            }
            chart
                .configure_series_labels()
                .label_font((FAMILY, 13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()
                .map_err(text)?;
            Ok(())
        })
    }
}

/// Means with intervals, one per named arm (an A/B table's metric).
#[derive(Clone, Debug)]
pub struct IntervalChart {
    /// Title drawn above the plot.
    pub title: String,
    /// Y axis label.
    pub y_label: String,
    /// (arm, mean, low, high).
    pub items: Vec<(String, f64, f64, f64)>,
    /// Size in pixels.
    pub size: (u32, u32),
}

impl IntervalChart {
    /// An empty chart of size 700×380.
    pub fn new(title: impl Into<String>, y_label: impl Into<String>) -> Self {
        IntervalChart {
            title: title.into(),
            y_label: y_label.into(),
            items: Vec::new(),
            size: (700, 380),
        }
    }

    /// Adds an arm.
    pub fn with_item(mut self, arm: impl Into<String>, mean: f64, low: f64, high: f64) -> Self {
        self.items.push((arm.into(), mean, low, high));
        self
    }

    /// Draws the chart as a [`Figure`].
    pub fn render(&self, name: &str, caption: &str) -> Result<Figure> {
        let items: Vec<&(String, f64, f64, f64)> = self
            .items
            .iter()
            .filter(|i| i.1.is_finite() && i.2.is_finite() && i.3.is_finite())
            .collect();
        if items.is_empty() {
            return Err(ReportError::EmptyFigure(name.into()));
        }
        let (y0, y1) = padded(span(items.iter().flat_map(|i| [i.2, i.3, i.1])));
        let n = items.len();
        let labels: Vec<String> = items.iter().map(|i| i.0.clone()).collect();
        draw(name, caption, self.size, |root| {
            let mut chart = ChartBuilder::on(root)
                .caption(&self.title, (FAMILY, 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(64)
                .build_cartesian_2d(-0.5..(n as f64 - 0.5), y0..y1)
                .map_err(text)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n)
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                        labels[i as usize].clone()
                    } else {
                        String::new()
                    }
                })
                .y_desc(self.y_label.as_str())
                .label_style((FAMILY, 13))
                .draw()
                .map_err(text)?;
            for (i, item) in items.iter().enumerate() {
                let c = color(i);
                let x = i as f64;
                chart
                    .draw_series(std::iter::once(ErrorBar::new_vertical(
                        x,
                        item.2,
                        item.1,
                        item.3,
                        c.stroke_width(2),
                        16,
                    )))
                    .map_err(text)?;
                chart
                    .draw_series(std::iter::once(Circle::new((x, item.1), 5, c.filled())))
                    .map_err(text)?;
            }
            Ok(())
        })
    }
}

/// Error text of a plotters drawing error.
fn text<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Min and max of finite values (callers pass at least one).
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

/// A range widened by 5 % on each side.
fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

/// Runs `paint` on a white RGB canvas and encodes the result as PNG.
fn draw(
    name: &str,
    caption: &str,
    (width, height): (u32, u32),
    paint: impl FnOnce(
        &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<Figure> {
    register_font()?;
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| ReportError::Draw {
            name: name.into(),
            reason: text(e),
        })?;
        paint(&root).map_err(|reason| ReportError::Draw {
            name: name.into(),
            reason,
        })?;
        root.present().map_err(|e| ReportError::Draw {
            name: name.into(),
            reason: text(e),
        })?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let encode = |source| ReportError::Encode {
            name: name.into(),
            source,
        };
        let mut writer = encoder.write_header().map_err(encode)?;
        writer.write_image_data(&rgb).map_err(encode)?;
        writer.finish().map_err(encode)?;
    }
    Ok(Figure {
        name: name.into(),
        caption: caption.into(),
        png: png_bytes,
        width,
        height,
    })
}
