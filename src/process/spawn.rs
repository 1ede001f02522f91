//! Child processes: spawn each in its own process group, drain its pipes on threads, stop the
//! whole group (SIGTERM, grace, SIGKILL) and reap it.
//!
//! Knows nothing of job files or items. Never installs a SIGCHLD handler: wait-timeout owns it.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::{self, Pid, Signal, kill_process_group};

use super::Limits;
use super::lines::LineSplitter;
use super::reap::{Reaped, exited_within, reap};
use crate::process::groups::GroupChild;

/// How much of a child's stderr is kept for error messages.
pub const STDERR_TAIL_BYTES: usize = 4096;

/// Whether a child must die with runjobs even when runjobs is killed with SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tether {
    /// Long-lived workers: the kernel kills them when runjobs dies (PR_SET_PDEATHSIG).
    DieWithRunjobs,
    /// Per-item commands: tethering them would force a fork for every item (instead of a
    /// vfork-based posix_spawn), which doubles runjobs' cost per command. The guard process
    /// (see `groups`) stops them if runjobs is killed.
    Loose,
}

/// Spawns `cmd` (stdio already configured) in a new process group of its own, so a timeout
/// or an interrupt can signal everything it starts, with `limits` applied and tethered to
/// runjobs as `tether` says. The group is listed (see `groups`) while the child lives.
pub fn spawn_in_group(
    cmd: &mut Command,
    limits: &Limits,
    tether: Tether,
) -> io::Result<GroupChild> {
    spawn_raw(cmd, limits, tether).map(GroupChild::new)
}

/// `spawn_in_group` without the listing: the caller lists the group itself.
pub(super) fn spawn_raw(cmd: &mut Command, limits: &Limits, tether: Tether) -> io::Result<Child> {
    cmd.process_group(0)
        .env("RUNJOBS_PARENT_PID", std::process::id().to_string());
    let limits = *limits;
    if tether == Tether::Loose && limits == Limits::default() {
        // Nothing to do in the child before exec: std can use posix_spawn.
        return cmd.spawn();
    }
    let tethered = tether == Tether::DieWithRunjobs;
    #[allow(
        unsafe_code,
        reason = "pre_exec is the only way to set rlimits in the child"
    )]
    // SAFETY: the closure runs between fork and exec, so it may only make async-signal-safe
    // calls: rustix issues raw prctl/setrlimit syscalls, with no allocation or locking.
    unsafe {
        cmd.pre_exec(move || {
            // The kernel kills the child when the thread that spawned it dies (runjobs
            // killed with SIGKILL included): no orphans.
            if tethered {
                process::set_parent_process_death_signal(Some(Signal::KILL))?;
            }
            let set = |resource, value: Option<u64>, hard_extra: u64| match value {
                Some(v) => process::setrlimit(
                    resource,
                    process::Rlimit {
                        current: Some(v),
                        maximum: Some(v.saturating_add(hard_extra)),
                    },
                ),
                None => Ok(()),
            };
            set(process::Resource::As, limits.memory, 0)?;
            // SIGXCPU at the soft limit, SIGKILL a second later at the hard one.
            set(process::Resource::Cpu, limits.cpu, 1)?;
            set(process::Resource::Nofile, limits.open_files, 0)?;
            Ok(())
        });
    }
    cmd.spawn()
}

/// Stops the child's whole process group: SIGTERM, up to `grace` for it to exit (cut short
/// when `hurry` returns true), then SIGKILL, then reaps the child (with its CPU time).
pub fn stop_group(child: &mut Child, grace: Duration, hurry: &dyn Fn() -> bool) -> Reaped {
    let group = Pid::from_child(child);
    // The group may already be gone (the child exited and had no children): ESRCH is fine.
    let _ = kill_process_group(group, Signal::TERM);
    let deadline = Instant::now() + grace;
    loop {
        let now = Instant::now();
        if now >= deadline || hurry() {
            break;
        }
        if exited_within(child, (deadline - now).min(Duration::from_millis(50))) {
            break;
        }
    }
    // SIGKILL even when the leader exited: grandchildren in the group may still hold pipes.
    let _ = kill_process_group(group, Signal::KILL);
    reap(child)
}

/// Describes how a process ended: `exit code 3` or `killed by signal 9 (SIGKILL)`.
pub fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exit code {code}")
    } else if let Some(sig) = status.signal() {
        format!("killed by signal {sig} ({})", signal_name(sig))
    } else {
        "ended for an unknown reason".to_owned()
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => "signal",
    }
}

/// The last few KiB a child wrote to stderr, shared with the thread that drains it.
#[derive(Debug, Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<u8>>>);

impl StderrTail {
    pub(super) fn push(&self, bytes: &[u8]) {
        let mut tail = self.0.lock().expect("stderr tail lock is never poisoned");
        tail.extend(bytes);
        let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
        tail.drain(..excess);
    }

    /// The kept text, lossily decoded and trimmed.
    pub fn text(&self) -> String {
        let tail = self.0.lock().expect("stderr tail lock is never poisoned");
        let (a, b) = tail.as_slices();
        let mut bytes = a.to_vec();
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }
}

/// Drains `stderr` on a thread: keeps the tail, and hands each line to `on_line` (the run
/// relays it to the user). Ends when every holder of the pipe has closed it.
pub fn drain_stderr(
    stderr: impl Read + Send + 'static,
    tail: StderrTail,
    on_line: impl Fn(String) + Send + 'static,
) -> JoinHandle<()> {
    thread::Builder::new()
        .name("stderr".into())
        .spawn(move || relay_stderr(stderr, &tail, &on_line))
        .expect("spawning a thread only fails when the system is out of resources")
}

/// Reads `stderr` to its end: keeps the tail, hands each line to `on_line` (cut as
/// `LineSplitter` cuts them).
pub fn relay_stderr(mut stderr: impl Read, tail: &StderrTail, on_line: &dyn Fn(String)) {
    let mut lines = LineSplitter::default();
    let mut emit = |text: String| {
        tail.push(text.as_bytes());
        tail.push(b"\n");
        on_line(text);
    };
    let mut buf = [0u8; 8192];
    loop {
        match stderr.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => lines.feed(&buf[..n], &mut emit),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    lines.finish(&mut emit);
}
