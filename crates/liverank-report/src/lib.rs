//! Reports of liverank runs: one self-contained HTML file (figures inlined as PNG data
//! URIs, CSS inline, no script, nothing fetched from the network) and a Markdown twin
//! whose figures are PNG files beside it.
//!
//! A report is plain data — [`Report`] → [`Section`]s → [`Block`]s (text, key figures,
//! tables, figures) — so whoever computes the numbers (the binary, `liverank-eval`) builds
//! it, and this crate only renders. Figures are drawn by [`plot`] with plotters' bitmap
//! backend; text is rendered with the DejaVu Sans font this crate ships, so a report looks
//! the same on a machine without system fonts.
//!
//! ```
//! use liverank_report::{Block, Report, Section, Table};
//! let mut report = Report::new("Run of seed 7");
//! report.push(Section::new("Offline evaluation", "AUC of each task on the held-out slice.")
//!     .with(Block::Table(Table::new(vec!["task".into(), "AUC".into()])
//!         .with_row(vec!["click".into(), "0.8095".into()]))));
//! let html = report.to_html();
//! assert!(html.contains("<td>0.8095</td>"));
//! assert!(report.to_markdown("figures").contains("| click | 0.8095 |"));
//! ```
//!
//! Design decision: rendering never fails half-way. Figures are rendered to PNG bytes
//! when a block is built ([`plot`] returns an error for a figure without data, and the
//! caller decides what the section says instead), so writing a report is string
//! formatting plus file writes.

mod error;
pub mod plot;
mod render;

pub use error::{ReportError, Result};
pub use render::escape_html;

use std::path::{Path, PathBuf};

/// A whole report: a title, a line under it, and sections in reading order.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Title of the page.
    pub title: String,
    /// One line under the title (what was run, when, on which commit).
    pub subtitle: String,
    /// Sections in order.
    pub sections: Vec<Section>,
}

/// One section: a heading, the one sentence saying what it shows, then blocks.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// What the section shows, in one sentence.
    pub summary: String,
    /// Content in order.
    pub blocks: Vec<Block>,
}

/// A piece of a section.
#[derive(Clone, Debug)]
pub enum Block {
    /// A paragraph of plain text.
    Text(String),
    /// Key figures as name → value pairs.
    Facts(Vec<(String, String)>),
    /// A table.
    Table(Table),
    /// A figure.
    Figure(Figure),
}

/// A table of strings (numbers are formatted by whoever builds it).
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows; each as long as the header.
    pub rows: Vec<Vec<String>>,
}

/// A rendered figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// File stem of the PNG in the Markdown twin (`figures/<name>.png`); unique per report.
    pub name: String,
    /// What the figure shows, in one sentence.
    pub caption: String,
    /// The PNG bytes.
    pub png: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Figure {
    /// A figure from a PNG drawn elsewhere (another command's plot file); its size is read
    /// from the image header.
    pub fn from_png(
        name: impl Into<String>,
        caption: impl Into<String>,
        png: Vec<u8>,
    ) -> Result<Self> {
        let name = name.into();
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let reader = decoder.read_info().map_err(|source| ReportError::Decode {
            name: name.clone(),
            source,
        })?;
        let (width, height) = (reader.info().width, reader.info().height);
        Ok(Figure {
            name,
            caption: caption.into(),
            png,
            width,
            height,
        })
    }
}

/// Where [`Report::write`] put the files.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    /// The self-contained HTML page.
    pub html: PathBuf,
    /// The Markdown twin.
    pub markdown: PathBuf,
    /// The figures' PNG files (used by the Markdown twin).
    pub figures: Vec<PathBuf>,
}

impl Report {
    /// An empty report with a title.
    pub fn new(title: impl Into<String>) -> Self {
        Report {
            title: title.into(),
            ..Report::default()
        }
    }

    /// Sets the line under the title.
    pub fn with_subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = subtitle.into();
        self
    }

    /// Appends a section.
    pub fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    /// Every figure of the report, in order.
    pub fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.sections.iter().flat_map(|s| {
            s.blocks.iter().filter_map(|b| match b {
                Block::Figure(f) => Some(f),
                _ => None,
            })
        })
    }

    /// Checks what rendering relies on: tables are rectangular, figure names are unique
    /// file stems.
    pub fn validate(&self) -> Result<()> {
        let mut names = std::collections::BTreeSet::new();
        for section in &self.sections {
            for block in &section.blocks {
                match block {
                    Block::Table(t) => {
                        if let Some(i) = t.rows.iter().position(|r| r.len() != t.header.len()) {
                            return Err(ReportError::Table {
                                section: section.title.clone(),
                                reason: format!(
                                    "row {i} has {} cells, the header {}",
                                    t.rows[i].len(),
                                    t.header.len()
                                ),
                            });
                        }
                    }
                    Block::Figure(f) => {
                        let valid = !f.name.is_empty()
                            && f.name
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                        if !valid || !names.insert(f.name.clone()) {
                            return Err(ReportError::FigureName(f.name.clone()));
                        }
                    }
                    Block::Text(_) | Block::Facts(_) => {}
                }
            }
        }
        Ok(())
    }

    /// The HTML page: one file, figures inlined.
    pub fn to_html(&self) -> String {
        render::html(self)
    }

    /// The Markdown twin; figures are linked as `<figure_dir>/<name>.png`.
    pub fn to_markdown(&self, figure_dir: &str) -> String {
        render::markdown(self, figure_dir)
    }

    /// Writes `<dir>/<stem>.html`, `<dir>/<stem>.md` and `<dir>/figures/*.png`, each file
    /// through a temporary file renamed into place (a reader never sees half a report).
    pub fn write(&self, dir: &Path, stem: &str) -> Result<ReportFiles> {
        self.validate()?;
        let figure_dir = dir.join("figures");
        std::fs::create_dir_all(&figure_dir).map_err(|e| ReportError::io(&figure_dir, e))?;
        let mut figures = Vec::new();
        for figure in self.figures() {
            let path = figure_dir.join(format!("{}.png", figure.name));
            write_atomic(&path, &figure.png)?;
            figures.push(path);
        }
        let markdown = dir.join(format!("{stem}.md"));
        write_atomic(&markdown, self.to_markdown("figures").as_bytes())?;
        let html = dir.join(format!("{stem}.html"));
        write_atomic(&html, self.to_html().as_bytes())?;
        Ok(ReportFiles {
            html,
            markdown,
            figures,
        })
    }
}

impl Section {
    /// A section with its heading and one-sentence summary.
    pub fn new(title: impl Into<String>, summary: impl Into<String>) -> Self {
        Section {
            title: title.into(),
            summary: summary.into(),
            blocks: Vec::new(),
        }
    }

    /// Appends a block.
    pub fn with(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }

    /// Appends a block in place.
    pub fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }
}

impl Table {
    /// A table with its column names and no rows.
    pub fn new(header: Vec<String>) -> Self {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn with_row(mut self, row: Vec<String>) -> Self {
        self.rows.push(row);
        self
    }

    /// Appends a row in place.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    liverank_fs::write_atomic_bytes(path, bytes).map_err(|e| ReportError::io(path, e))
}
