//! The `report` command: which files, which report, printed how; the exit code.

use std::path::{Path, PathBuf};

use super::compare::{self, Diff, Flips, Group, History, HistoryLine, Outcomes};
use super::csv_rows::CsvRows;
use super::html;
use super::junit::Junit;
use super::show::{self, counts, seconds, status_style};
use super::summary::{RunReport, Summarize};
use super::timeline::Timeline;
use crate::cron::history;
use crate::exit_code;
use crate::record::read::{self, ResultsVisitor};

/// How a report is given besides the terminal.
pub struct Extra<'a> {
    pub json: bool,
    pub html: Option<&'a Path>,
    pub junit: Option<&'a Path>,
    pub csv: Option<&'a Path>,
}

/// `runjobs report` as its command line says.
pub fn run(args: &crate::cli::ReportArgs) -> u8 {
    let extra = Extra {
        json: args.json,
        html: args.html.as_deref(),
        junit: args.junit.as_deref(),
        csv: args.csv.as_deref(),
    };
    report(&args.outputs, args.diff.as_deref(), &extra)
}

/// `runjobs report OUTPUT... [--json] [--html FILE] [--junit FILE] [--csv FILE]` and `runjobs report
/// --diff OLD NEW [--json]`.
pub fn report(outputs: &[PathBuf], diff: Option<&[PathBuf]>, extra: &Extra) -> u8 {
    let json = extra.json;
    let result = match diff {
        Some([old, new]) => run_diff(old, new, json),
        Some(_) => Err("`--diff` takes two results files: OLD NEW".to_owned()),
        None => files_of(outputs).and_then(|files| match files.as_slice() {
            [(one, _)] if !history::is_index(one) => one_run(one, extra),
            many if extra.junit.is_some() || extra.csv.is_some() => Err(format!(
                "`--{}` takes one results file, but {} were given",
                if extra.junit.is_some() {
                    "junit"
                } else {
                    "csv"
                },
                many.len()
            )),
            many => history(many, extra),
        }),
    };
    result.unwrap_or_else(|message| {
        say!("error: {message}");
        exit_code::INVALID
    })
}

/// The results files named, a folder standing for the results files and journals in it;
/// each with whether it was named (a file found in a folder that is not results is skipped
/// with a note, a file named is an error).
fn files_of(outputs: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>, String> {
    if outputs.is_empty() {
        return Err("name a results file (or several, or a folder) to report on".into());
    }
    let mut files = Vec::new();
    for path in outputs {
        if !path.is_dir() {
            files.push((path.clone(), true));
            continue;
        }
        let found = crate::cron::files_in(path, is_results_file)?;
        if found.is_empty() {
            return Err(format!("no results files in `{}`", path.display()));
        }
        files.extend(found.into_iter().map(|f| (f, false)));
    }
    Ok(files)
}

/// A results file (not a temporary one), the journal of a run that never wrote its own, or
/// a run index.
fn is_results_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.starts_with('.') || !path.is_file() {
        return false;
    }
    if history::is_index(path) {
        return true;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("json" | "toml" | "jsonl") => true,
        Some("journal") => {
            crate::record::journal::results_path_of(path).is_some_and(|results| !results.exists())
        }
        _ => false,
    }
}

/// Reads `path` into `visitor`; the error names the file.
fn read_into(path: &Path, visitor: &mut dyn ResultsVisitor) -> Result<read::FileInfo, String> {
    if !path.exists() {
        return Err(not_written(path));
    }
    let info =
        read::read(path, visitor).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if info.run.started_at.is_none() {
        return Err(format!(
            "cannot read `{}`: not a runjobs results file or journal",
            path.display()
        ));
    }
    Ok(info)
}

/// Why the results file `path` is not there: its run is going (`status` says how far), or
/// ended without writing it (its journal says what finished), or it never existed.
fn not_written(path: &Path) -> String {
    let shown = path.display();
    if let Some((job, holder)) = crate::status::running_output(path) {
        let pid = holder
            .pid
            .map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
        let started = holder
            .started_at
            .map_or_else(String::new, |at| format!(", started {at}"));
        return format!(
            "`{shown}` is not written yet: job `{job}` is running ({pid}{started}); \
             `runjobs status {shown}` shows how far it is"
        );
    }
    let journal = crate::record::journal::path_for(path);
    if journal.is_file() {
        return format!(
            "`{shown}` was never written: its run did not finish; `runjobs report {}` shows \
             what its journal holds",
            journal.display()
        );
    }
    format!("cannot read `{shown}`: no such file")
}

fn summarize(path: &Path) -> Result<RunReport, String> {
    let mut summarize = Summarize::default();
    let info = read_into(path, &mut summarize)?;
    Ok(summarize.finish(&path.display().to_string(), info))
}

/// One run's summary, and its HTML page and JUnit XML when asked.
fn one_run(path: &Path, extra: &Extra) -> Result<u8, String> {
    let mut summarize = Summarize::default();
    summarize.timeline = extra.html.map(|_| Timeline::new());
    let info = read_into(path, &mut summarize)?;
    let mut timeline = summarize.timeline.take();
    let report = summarize.finish(&path.display().to_string(), info);
    if let (Some(html), Some(timeline)) = (extra.html, &mut timeline) {
        write_file(html, &html::run_page(&report, timeline))?;
    }
    if let Some(junit_file) = extra.junit {
        let mut junit = Junit::new(
            report.job.as_deref().unwrap_or("runjobs"),
            report.duration_s.unwrap_or(report.span_s),
        );
        read_into(path, &mut junit)?;
        write_file(junit_file, &junit.finish()?)?;
    }
    if let Some(csv_file) = extra.csv {
        let mut rows = CsvRows::create(csv_file)?;
        read_into(path, &mut rows)?;
        rows.finish()
            .map_err(|e| format!("cannot write `{}`: {e}", csv_file.display()))?;
    }
    print_json_or(extra.json, &report, || show::print(&report));
    Ok(exit_code::OK)
}

/// Writes a report file, making its folder first (as the results' folder is made).
fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create the folder `{}`: {e}", folder.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

fn history(files: &[(PathBuf, bool)], extra: &Extra) -> Result<u8, String> {
    let (indexes, files): (Vec<_>, Vec<_>) = files.iter().partition(|(f, _)| history::is_index(f));
    let mut runs: Vec<(RunReport, &PathBuf)> = Vec::new();
    // A run index lists every run, those whose results `keep` removed and those the lock
    // refused too: it is the history, and the results files only say which items flipped.
    for (index, _) in &indexes {
        let lines = history::read_index(index)
            .map_err(|e| format!("cannot read `{}`: {e}", index.display()))?;
        runs.extend(
            lines
                .into_iter()
                .map(|line| (indexed_run(index, line), index)),
        );
    }
    for (file, named) in &files {
        if !indexes.is_empty() {
            break;
        }
        match summarize(file) {
            Ok(report) => runs.push((report, file)),
            Err(message) if !named => say!(
                "note: skipped {}",
                message.trim_start_matches("cannot read ")
            ),
            Err(message) => return Err(message),
        }
    }
    if runs.is_empty() {
        return Err("none of the files is a runjobs results file".into());
    }
    runs.sort_by(|a, b| a.0.started_at.cmp(&b.0.started_at));
    // Flakiness needs the runs in time order: a second pass, oldest first, over the results
    // files there still are.
    let mut flips = Flips::default();
    for (run, file) in &runs {
        let results = Path::new(&run.file);
        let results = if history::is_index(file) {
            results
        } else {
            file.as_path()
        };
        if results.is_file() && !history::is_index(results) {
            read_into(results, &mut flips)?;
        }
    }
    let mut lines: Vec<HistoryLine> = Vec::new();
    for (run, _) in runs {
        // A refused run changes nothing: the next one is compared with the one before it.
        let before = lines.iter().rev().find(|l| l.run.status != "locked");
        let change = match (run.status.as_str(), before) {
            ("locked", _) => "not run: another run held the lock".to_owned(),
            (_, Some(before)) => compare::change(&before.run, &run),
            (_, None) => "first run".to_owned(),
        };
        lines.push(HistoryLine { run, change });
    }
    let history = History {
        version: 1,
        runs: lines,
        flaky: flips.flaky,
    };
    if let Some(html) = extra.html {
        write_file(html, &html::history_page(&history))?;
    }
    print_json_or(extra.json, &history, || print_history(&history));
    Ok(exit_code::OK)
}

/// A run as its index line tells it (no task details: those are in its results file).
fn indexed_run(index: &Path, line: history::IndexLine) -> RunReport {
    RunReport {
        version: 1,
        file: line.results.unwrap_or_else(|| index.display().to_string()),
        job: Some(line.job),
        started_at: Some(line.started_at),
        duration_s: line.duration_s,
        span_s: 0.0,
        status: line.status,
        summary: line.summary.unwrap_or_default(),
        tasks: Vec::new(),
        slowest: Vec::new(),
        biggest_memory: Vec::new(),
        failures: Vec::new(),
        more_failures: 0,
        truncated: Vec::new(),
        more_truncated: 0,
    }
}

fn print_history(history: &History) {
    for line in &history.runs {
        let run = &line.run;
        let status = status_style(&run.status).apply_to(format!("{:<11}", run.status));
        out!(
            "{}  {:>9}  {status}  {}  ({})  {}",
            run.started_at.as_deref().unwrap_or("?"),
            run.duration_s.map_or("-".to_owned(), seconds),
            counts(&run.summary),
            line.change,
            run.file
        );
    }
    print_group("flaky (flipped between ok and failed)", &history.flaky);
}

fn run_diff(old: &Path, new: &Path, json: bool) -> Result<u8, String> {
    let (mut before, mut after) = (Outcomes::default(), Outcomes::default());
    read_into(old, &mut before)?;
    read_into(new, &mut after)?;
    let diff = compare::diff(
        &old.display().to_string(),
        before,
        &new.display().to_string(),
        after,
    );
    print_json_or(json, &diff, || print_diff(&diff));
    // A script or CI acts on new failures.
    Ok(if diff.new_failures > 0 {
        exit_code::ITEMS_FAILED
    } else {
        exit_code::OK
    })
}

fn print_diff(diff: &Diff) {
    out!("{} → {}", diff.old, diff.new);
    let groups = [
        ("newly failing", &diff.newly_failing),
        ("fixed", &diff.fixed),
        ("still failing", &diff.still_failing),
        ("added", &diff.added),
        ("removed", &diff.removed),
        ("over 2x slower", &diff.slower),
        ("over 2x faster", &diff.faster),
    ];
    out!(
        "  {}",
        groups
            .iter()
            .map(|(name, g)| format!("{} {name}", g.count))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, group) in groups {
        print_group(name, group);
    }
}

fn print_group(name: &str, group: &Group) {
    if group.count == 0 {
        return;
    }
    out!("\n{name} ({}):", group.count);
    for item in &group.items {
        out!(
            "  {}[{}] (input {}): {} in {}",
            item.task,
            item.index,
            item.input,
            super::item::status_name(item.status),
            seconds(item.duration_s)
        );
    }
    let more = group.count - group.items.len() as u64;
    if more > 0 {
        out!("  … and {more} more");
    }
}

fn print_json_or<T: serde::Serialize>(json: bool, value: &T, text: impl FnOnce()) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => out!("{text}"),
            Err(e) => say!("error: {e}"),
        }
    } else {
        text();
    }
}
