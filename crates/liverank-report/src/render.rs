//! HTML and Markdown renderers of a [`Report`].

use crate::{Block, Report, Table};
use base64::Engine;
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;\
max-width:1100px;margin:2em auto;padding:0 1em;color:#1d1d1f;line-height:1.45}\
h1{margin-bottom:.2em}.subtitle{color:#555;margin-top:0}\
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}\
p.summary{color:#333;font-style:italic}\
table{border-collapse:collapse;margin:1em 0;font-size:.92em}\
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}\
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}\
dl.facts dt{font-weight:600}dl.facts dd{margin:0}\
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{color:#444;font-size:.92em}nav ol{columns:2}";

/// Anchor of a section: its index, so headings with the same text stay distinct.
fn anchor(index: usize) -> String {
    format!("s{}", index + 1)
}

pub(crate) fn html(report: &Report) -> String {
    let mut out = String::new();
    let title = escape_html(&report.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    if !report.subtitle.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"subtitle\">{}</p>",
            escape_html(&report.subtitle)
        );
    }
    if report.sections.len() > 1 {
        out.push_str("<nav><ol>\n");
        for (i, section) in report.sections.iter().enumerate() {
            let _ = writeln!(
                out,
                "<li><a href=\"#{}\">{}</a></li>",
                anchor(i),
                escape_html(&section.title)
            );
        }
        out.push_str("</ol></nav>\n");
    }
    for (i, section) in report.sections.iter().enumerate() {
        let _ = writeln!(
            out,
            "<section id=\"{}\">\n<h2>{}</h2>",
            anchor(i),
            escape_html(&section.title)
        );
        if !section.summary.is_empty() {
            let _ = writeln!(
                out,
                "<p class=\"summary\">{}</p>",
                escape_html(&section.summary)
            );
        }
        for block in &section.blocks {
            match block {
                Block::Text(text) => {
                    let _ = writeln!(out, "<p>{}</p>", escape_html(text));
                }
                Block::Facts(facts) => {
                    out.push_str("<dl class=\"facts\">\n");
                    for (name, value) in facts {
                        let _ = writeln!(
                            out,
                            "<dt>{}</dt><dd>{}</dd>",
                            escape_html(name),
                            escape_html(value)
                        );
                    }
                    out.push_str("</dl>\n");
                }
                Block::Table(table) => html_table(&mut out, table),
                Block::Figure(figure) => {
                    let data = base64::engine::general_purpose::STANDARD.encode(&figure.png);
                    let _ = writeln!(
                        out,
                        "<figure id=\"fig-{name}\">\n<img alt=\"{alt}\" width=\"{w}\" height=\"{h}\" \
                         src=\"data:image/png;base64,{data}\">\n<figcaption>{alt}</figcaption>\n</figure>",
                        name = escape_html(&figure.name),
                        alt = escape_html(&figure.caption),
                        w = figure.width,
                        h = figure.height,
                    );
                }
            }
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn html_table(out: &mut String, table: &Table) {
    out.push_str("<table>\n<thead><tr>");
    for name in &table.header {
        let _ = write!(out, "<th>{}</th>", escape_html(name));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape_html(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// A Markdown table cell: pipes escaped, line breaks folded.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub(crate) fn markdown(report: &Report, figure_dir: &str) -> String {
    let mut out = format!("# {}\n\n", report.title);
    if !report.subtitle.is_empty() {
        let _ = writeln!(out, "{}\n", report.subtitle);
    }
    for section in &report.sections {
        let _ = writeln!(out, "## {}\n", section.title);
        if !section.summary.is_empty() {
            let _ = writeln!(out, "*{}*\n", section.summary);
        }
        for block in &section.blocks {
            match block {
                Block::Text(text) => {
                    let _ = writeln!(out, "{text}\n");
                }
                Block::Facts(facts) => {
                    for (name, value) in facts {
                        let _ = writeln!(out, "- **{name}**: {value}");
                    }
                    out.push('\n');
                }
                Block::Table(table) => {
                    let header: Vec<String> = table.header.iter().map(|h| cell(h)).collect();
                    let _ = writeln!(out, "| {} |", header.join(" | "));
                    let rule: Vec<&str> = table
                        .header
                        .iter()
                        .enumerate()
                        .map(|(i, _)| if i == 0 { "---" } else { "---:" })
                        .collect();
                    let _ = writeln!(out, "|{}|", rule.join("|"));
                    for row in &table.rows {
                        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
                        let _ = writeln!(out, "| {} |", cells.join(" | "));
                    }
                    out.push('\n');
                }
                Block::Figure(figure) => {
                    let _ = writeln!(
                        out,
                        "![{caption}]({figure_dir}/{name}.png)\n\n*{caption}*\n",
                        caption = figure.caption.replace(['[', ']'], ""),
                        name = figure.name
                    );
                }
            }
        }
    }
    out
}
