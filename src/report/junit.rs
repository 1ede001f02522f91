//! `report --junit FILE`: each item a test case, so every CI that reads JUnit XML (GitLab,
//! Jenkins, …) shows a job's items: failed and timed-out ones with their error and what
//! they printed, ones that passed only on a retry as flaky, skipped ones as skipped.
//!
//! The XML keeps to `junit-10.xsd`, the schema strict importers (Jenkins' xunit plugin)
//! check: it allows `time` but neither `skipped` nor `timestamp` on `<testsuites>`, gives
//! suites both, and wants a `type` on every flaky attempt.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};
use quick_xml::events::{BytesStart, Event};
use serde_json::value::RawValue;

use super::item::{ItemResult, shown};
use crate::record::Status;
use crate::record::read::{ResultsVisitor, TaskInfo};

/// At most this much of each stream a failed item printed goes into the XML (its end, where
/// the reason usually is); the results file keeps what runjobs captured.
const PRINTED_BYTES: usize = 64 * 1024;

/// Builds the report as results stream by: a test suite a task.
pub struct Junit {
    report: Report,
    suite: Option<Suite>,
    /// When the run being read started (a journal may hold several runs).
    run_start: Option<DateTime<FixedOffset>>,
}

/// A task's suite, and the span of its items on the run's clock.
struct Suite {
    suite: TestSuite,
    run_start: Option<DateTime<FixedOffset>>,
    first_start_s: f64,
    last_end_s: f64,
}

impl Junit {
    /// `duration_s`: the run's wall time, the `time` of `<testsuites>`.
    pub fn new(job: &str, duration_s: f64) -> Junit {
        let mut report = Report::new(job);
        report.set_time(seconds(duration_s));
        Junit {
            report,
            suite: None,
            run_start: None,
        }
    }

    /// The XML.
    pub fn finish(mut self) -> Result<String, String> {
        self.close_suite();
        let xml = self.report.to_string().map_err(|e| e.to_string())?;
        without_root_attribute(&xml, b"skipped")
    }

    fn close_suite(&mut self) {
        let Some(Suite {
            mut suite,
            run_start,
            first_start_s,
            last_end_s,
        }) = self.suite.take()
        else {
            return;
        };
        let first_start_s = if first_start_s.is_finite() {
            first_start_s
        } else {
            0.0
        };
        if let Some(run_start) = run_start {
            let offset = chrono::Duration::microseconds((first_start_s * 1e6) as i64);
            suite.set_timestamp(run_start + offset);
        }
        suite.set_time(seconds(last_end_s - first_start_s));
        self.report.add_test_suite(suite);
    }
}

impl ResultsVisitor for Junit {
    fn run(&mut self, started_at: &str) {
        self.run_start = DateTime::parse_from_rfc3339(started_at).ok();
    }

    fn task(&mut self, task: &TaskInfo) {
        self.close_suite();
        self.suite = Some(Suite {
            suite: TestSuite::new(task.name.as_str()),
            run_start: self.run_start,
            first_start_s: f64::INFINITY,
            last_end_s: 0.0,
        });
    }

    fn result(&mut self, task: &TaskInfo, raw: &RawValue) -> Result<(), String> {
        let r = ItemResult::parse(raw)?;
        let case = test_case(task, &r);
        if self.suite.is_none() {
            self.task(task);
        }
        if let Some(suite) = &mut self.suite {
            // A skipped item never ran: its zero start says nothing of the suite's span.
            if r.status != Status::Skipped {
                suite.first_start_s = suite.first_start_s.min(r.started_s);
                suite.last_end_s = suite.last_end_s.max(r.started_s + r.duration_s);
            }
            suite.suite.add_test_case(case);
        }
        Ok(())
    }
}

/// An item as a test case: `task[index] input`, its status, and for a failure what it
/// printed.
fn test_case(task: &TaskInfo, r: &ItemResult) -> TestCase {
    let error = r.error.as_deref().unwrap_or("");
    let first_line = error.lines().next().unwrap_or("");
    let mut status = match r.status {
        Status::Ok => TestCaseStatus::success(),
        Status::Skipped => {
            let mut status = TestCaseStatus::skipped();
            if !error.is_empty() {
                status.set_message(first_line);
            }
            status
        }
        Status::Failed | Status::TimedOut => {
            let kind = if r.status == Status::Failed {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut status = TestCaseStatus::non_success(kind);
            status.set_message(first_line).set_description(error);
            if r.status == Status::TimedOut {
                status.set_type("timeout");
            }
            status
        }
    };
    if r.status == Status::Ok && r.attempts > 1 {
        // Passed only on a retry: flaky. The failed attempts' errors are not kept.
        for attempt in 1..r.attempts {
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            rerun
                .set_type("failed attempt")
                .set_message(format!("attempt {attempt} of {} failed", r.attempts));
            status.add_rerun(rerun);
        }
    }
    let name = format!("{}[{}] {}", task.name, r.index, shown(&r.input));
    let mut case = TestCase::new(name, status);
    case.set_classname(task.name.as_str())
        .set_time(seconds(r.duration_s));
    if matches!(r.status, Status::Failed | Status::TimedOut) {
        if let Some(stdout) = &r.stdout {
            case.set_system_out(tail(stdout));
        }
        if let Some(stderr) = &r.stderr {
            case.set_system_err(tail(stderr));
        }
    }
    case
}

/// Seconds as a duration; a negative or broken figure (a hand-edited file) is zero.
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or_default()
}

/// The last `PRINTED_BYTES` of a text, marked when cut.
fn tail(text: &str) -> String {
    if text.len() <= PRINTED_BYTES {
        return text.to_owned();
    }
    let mut cut = text.len() - PRINTED_BYTES;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    format!("…[{cut} earlier bytes cut]\n{}", &text[cut..])
}

/// The XML with one attribute taken off its root element, by rewriting the root's tag as
/// the XML reader parsed it (so no attribute value can be mistaken for it).
fn without_root_attribute(xml: &str, name: &[u8]) -> Result<String, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(xml.len()));
    let mut at_root = true;
    let broken = |e: &dyn std::fmt::Display| format!("the JUnit XML is not well formed: {e}");
    loop {
        let event = reader.read_event().map_err(|e| broken(&e))?;
        let event = match event {
            Event::Eof => break,
            Event::Start(tag) if at_root => {
                at_root = false;
                Event::Start(root_without(&tag, name).map_err(|e| broken(&e))?)
            }
            Event::Empty(tag) if at_root => {
                at_root = false;
                Event::Empty(root_without(&tag, name).map_err(|e| broken(&e))?)
            }
            other => other,
        };
        writer.write_event(event).map_err(|e| broken(&e))?;
    }
    String::from_utf8(writer.into_inner()).map_err(|e| broken(&e))
}

/// A copy of a tag without one attribute.
fn root_without(tag: &BytesStart<'_>, name: &[u8]) -> Result<BytesStart<'static>, String> {
    let tag_name = std::str::from_utf8(tag.name().as_ref())
        .map_err(|e| e.to_string())?
        .to_owned();
    let mut root = BytesStart::new(tag_name);
    for attribute in tag.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        if attribute.key.as_ref() != name {
            root.push_attribute(attribute);
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_loses_only_the_named_attribute() {
        let xml = "<?xml version=\"1.0\"?>\n<testsuites name=\"a skipped=&quot;1&quot;\" tests=\"2\" skipped=\"0\" failures=\"1\">\n    <testsuite name=\"t\" tests=\"2\" skipped=\"0\"/>\n</testsuites>\n";
        let out = without_root_attribute(xml, b"skipped").unwrap();
        assert_eq!(
            out,
            "<?xml version=\"1.0\"?>\n<testsuites name=\"a skipped=&quot;1&quot;\" tests=\"2\" failures=\"1\">\n    <testsuite name=\"t\" tests=\"2\" skipped=\"0\"/>\n</testsuites>\n"
        );
    }

    #[test]
    fn a_long_text_keeps_its_end() {
        let text = format!("{}é{}", "a".repeat(PRINTED_BYTES), "the reason");
        let cut = tail(&text);
        assert!(cut.ends_with("the reason"), "{cut}");
        assert!(cut.starts_with("…["), "{cut}");
        assert!(cut.len() < PRINTED_BYTES + 40);
        assert_eq!(tail("short"), "short");
    }
}
