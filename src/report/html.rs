//! `report --html FILE`: one self-contained page (no fetches: no CDN scripts, fonts or
//! styles). The summary, a worker timeline, the running-items line and the duration histogram
//! are static SVG with `<title>` tooltips, so the page reads with JavaScript blocked (CSP-
//! strict viewers); the one script only sorts tables. Bounded at any scale: past a few
//! thousand items lanes are drawn from time bins, and tables keep the top N.

use std::fmt::Write as _;

use super::compare::History;
use super::draw::{self, LEFT, WIDTH, class, esc};
use super::item::status_name;
use super::show::{counts, kib_text, seconds, truncation_text};
use super::summary::{ItemLine, RunReport};
use super::timeline::Timeline;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f3f3f3;cursor:pointer}.ok{fill:#3a9d5d}.failed{fill:#d64541}.timed_out{fill:#e08a1e}.skipped{fill:#999}\
.status-ok{color:#2d7a48}.status-failed,.status-timed_out,.status-interrupted{color:#c0392b;font-weight:bold}\
svg text{font:11px system-ui,sans-serif;fill:#444}pre{margin:0;white-space:pre-wrap}";

/// Sorting tables by a column: the only script, and the page needs none of it.
const SCRIPT: &str = "document.querySelectorAll('table.sortable th').forEach(function(th,i){\
th.addEventListener('click',function(){var t=th.closest('table'),b=t.tBodies[0],r=Array.from(b.rows);\
var k=function(x){var v=x.cells[i].getAttribute('data-v')||x.cells[i].textContent;var n=parseFloat(v);return isNaN(n)?v:n};\
var d=th.dataset.d=th.dataset.d==='1'?'-1':'1';r.sort(function(a,c){var x=k(a),y=k(c);return (x>y?1:x<y?-1:0)*d});\
r.forEach(function(x){b.appendChild(x)})})});";

/// The page of one run.
pub fn run_page(report: &RunReport, timeline: &mut Timeline) -> String {
    let job = report.job.as_deref().unwrap_or("?");
    let mut page = head(&format!("runjobs report: {job}"));
    let _ = write!(
        page,
        "<h1>job <code>{}</code>: <span class=\"status-{}\">{}</span></h1>\n<p id=\"summary\">{}{}</p>\n",
        esc(job),
        esc(&report.status),
        esc(&report.status),
        esc(&counts(&report.summary)),
        report
            .started_at
            .as_deref()
            .map(|s| format!(
                "; started {}{}",
                esc(s),
                report
                    .duration_s
                    .map_or(String::new(), |d| format!(", took {}", seconds(d)))
            ))
            .unwrap_or_default()
    );
    tasks_table(&mut page, report);
    page.push_str("<h2>Workers over time</h2>\n");
    draw::timeline_svg(&mut page, timeline);
    page.push_str("<h2>Items running</h2>\n");
    draw::running_svg(&mut page, timeline);
    page.push_str("<h2>Item durations</h2>\n");
    draw::histograms_svg(&mut page, timeline);
    items_table(
        &mut page,
        "Failures",
        &report.failures,
        report.more_failures,
    );
    items_table(
        &mut page,
        "Truncated outputs",
        &report.truncated,
        report.more_truncated,
    );
    items_table(&mut page, "Slowest items", &report.slowest, 0);
    items_table(&mut page, "Biggest memory users", &report.biggest_memory, 0);
    tail(page)
}

/// The page of a history of runs.
pub fn history_page(history: &History) -> String {
    let mut page = head("runjobs report: history");
    let _ = writeln!(page, "<h1>{} runs</h1>", history.runs.len());
    let longest = history
        .runs
        .iter()
        .filter_map(|l| l.run.duration_s)
        .fold(0.0_f64, f64::max)
        .max(1e-6);
    let height = 140.0;
    let step = (WIDTH - LEFT) / history.runs.len().max(1) as f64;
    let _ = writeln!(
        page,
        "<svg id=\"history\" width=\"{WIDTH}\" height=\"{}\" role=\"img\"><text x=\"4\" y=\"12\">duration</text>",
        height + 20.0
    );
    for (i, line) in history.runs.iter().enumerate() {
        let run = &line.run;
        let d = run.duration_s.unwrap_or(0.0);
        let h = d / longest * height;
        let failed = run.summary.failed + run.summary.timed_out > 0;
        let _ = writeln!(
            page,
            "<rect class=\"run {}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}: {}, {}, {}</title></rect>",
            if failed { "failed" } else { "ok" },
            LEFT + i as f64 * step,
            height - h + 16.0,
            (step * 0.8).max(1.0),
            esc(run.started_at.as_deref().unwrap_or("?")),
            esc(&run.status),
            seconds(d),
            esc(&counts(&run.summary))
        );
    }
    page.push_str("</svg>\n<table class=\"sortable\"><thead><tr><th>started</th><th>duration</th><th>status</th><th>ok</th><th>failed</th><th>timed out</th><th>skipped</th><th>change</th><th>file</th></tr></thead><tbody>\n");
    for line in &history.runs {
        let run = &line.run;
        let s = &run.summary;
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td data-v=\"{}\">{}</td><td class=\"status-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(run.started_at.as_deref().unwrap_or("?")),
            run.duration_s.unwrap_or(0.0),
            run.duration_s.map_or("-".into(), seconds),
            esc(&run.status),
            esc(&run.status),
            s.ok,
            s.failed,
            s.timed_out,
            s.skipped,
            esc(&line.change),
            esc(&run.file)
        );
    }
    page.push_str("</tbody></table>\n");
    items_table(
        &mut page,
        "Flaky items (flipped between ok and failed)",
        &history.flaky.items,
        history.flaky.count - history.flaky.items.len() as u64,
    );
    tail(page)
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(title)
    )
}

fn tail(mut page: String) -> String {
    let _ = write!(page, "<script>{SCRIPT}</script>\n</body></html>\n");
    page
}

fn tasks_table(page: &mut String, report: &RunReport) {
    page.push_str("<table class=\"sortable\" id=\"tasks\"><thead><tr><th>task</th><th>function</th><th>ok</th><th>failed</th><th>timed out</th><th>skipped</th><th>wall</th><th>busy</th><th>utilisation</th><th>CPU</th><th>retried</th><th>flaky</th></tr></thead><tbody>\n");
    for t in &report.tasks {
        let s = &t.summary;
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td>{:.0}%</td><td data-v=\"{}\" title=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.name),
            esc(t.function.as_deref().unwrap_or("?")),
            s.ok,
            s.failed,
            s.timed_out,
            s.skipped,
            t.wall_s,
            seconds(t.wall_s),
            t.busy_s,
            seconds(t.busy_s),
            t.utilisation * 100.0,
            t.cpu_s,
            if t.worker_cpu_s.is_some() {
                "the workers' CPU time in all"
            } else {
                "the items' CPU time, summed"
            },
            seconds(t.cpu_s),
            t.retried,
            t.flaky
        );
    }
    page.push_str("</tbody></table>\n");
}

fn items_table(page: &mut String, title: &str, items: &[ItemLine], more: u64) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "<h2>{}</h2>\n<table class=\"sortable\"><thead><tr><th>task</th><th>index</th><th>input</th><th>status</th><th>duration</th><th>attempts</th><th>CPU</th><th>max RSS</th><th>error or note</th></tr></thead><tbody>",
        esc(title)
    );
    for item in items {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"status-{}\">{}</td><td data-v=\"{}\">{}</td><td>{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td><pre>{}</pre></td></tr>",
            esc(&item.task),
            item.index,
            esc(&item.input),
            class(item.status),
            status_name(item.status),
            item.duration_s,
            seconds(item.duration_s),
            item.attempts,
            item.cpu_s.unwrap_or(0.0),
            item.cpu_s.map_or_else(String::new, seconds),
            item.max_rss_kib.unwrap_or(0),
            item.max_rss_kib.map_or_else(String::new, kib_text),
            esc(&item_note(item))
        );
    }
    page.push_str("</tbody></table>\n");
    if more > 0 {
        let _ = writeln!(page, "<p>… and {more} more (see the results file)</p>");
    }
}

/// An item's error, and whether its output was cut at the cap.
fn item_note(item: &ItemLine) -> String {
    let cut = item.truncated.as_ref().map(truncation_text);
    match (item.error.as_deref(), cut) {
        (Some(error), Some(cut)) => format!("{error}\n{cut}"),
        (Some(error), None) => error.to_owned(),
        (None, Some(cut)) => cut,
        (None, None) => String::new(),
    }
}
