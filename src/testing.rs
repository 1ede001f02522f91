//! Helpers of the unit tests.

/// Cases per property-test run: a short run in the test suite; `RUNJOBS_FUZZ_CASES=5000000
/// cargo test --release NAME` is the long one (a fuzzing session).
pub fn fuzz_cases(default: u32) -> u32 {
    std::env::var("RUNJOBS_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}
