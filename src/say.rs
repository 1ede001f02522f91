//! Printing that never panics. `eprintln!`/`println!` panic when the stream is closed (a
//! `… 2>&1 | head` whose reader went away, a log collector that died); a panic in the
//! collector would leave the pool blocked on a full event channel for ever. These drop
//! the text instead: a run whose stderr is gone still finishes, writes its results and
//! honours signals.

/// A line on stderr; dropped when stderr is closed.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A line on stdout; dropped when stdout is closed (`runjobs functions | head -1`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
