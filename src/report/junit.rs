//! `report --junit FILE`: each item a test case, so every CI that reads JUnit XML (GitLab,
//! Jenkins, …) shows a job's items: failed and timed-out ones with their error, ones that
//! passed only on a retry as flaky, skipped ones as skipped.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};
use serde_json::value::RawValue;

use super::item::{ItemResult, shown};
use crate::record::Status;
use crate::record::read::{ResultsVisitor, TaskInfo};

/// Builds the report as results stream by: a test suite a task.
pub struct Junit {
    report: Report,
    suite: Option<TestSuite>,
}

impl Junit {
    pub fn new(job: &str) -> Junit {
        Junit {
            report: Report::new(job),
            suite: None,
        }
    }

    /// The XML.
    pub fn finish(mut self) -> Result<String, String> {
        if let Some(suite) = self.suite.take() {
            self.report.add_test_suite(suite);
        }
        self.report.to_string().map_err(|e| e.to_string())
    }
}

impl ResultsVisitor for Junit {
    fn run(&mut self, _started_at: &str) {}

    fn task(&mut self, task: &TaskInfo) {
        if let Some(suite) = self.suite.take() {
            self.report.add_test_suite(suite);
        }
        self.suite = Some(TestSuite::new(task.name.as_str()));
    }

    fn result(&mut self, task: &TaskInfo, raw: &RawValue) -> Result<(), String> {
        let r = ItemResult::parse(raw)?;
        let error = r.error.as_deref().unwrap_or("");
        let first_line = error.lines().next().unwrap_or("");
        let mut status = match r.status {
            Status::Ok => TestCaseStatus::success(),
            Status::Skipped => TestCaseStatus::skipped(),
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
                rerun.set_message(format!("attempt {attempt} of {} failed", r.attempts));
                status.add_rerun(rerun);
            }
        }
        let name = format!("{}[{}] {}", task.name, r.index, shown(&r.input));
        let mut case = TestCase::new(name, status);
        case.set_classname(task.name.as_str())
            .set_time(Duration::from_secs_f64(r.duration_s.max(0.0)));
        if self.suite.is_none() {
            self.task(task);
        }
        if let Some(suite) = &mut self.suite {
            suite.add_test_case(case);
        }
        Ok(())
    }
}
