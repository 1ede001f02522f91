//! Every live process group runjobs started, so that all of them can be paused together
//! (Ctrl-Z) and none outlives runjobs, even a runjobs killed with SIGKILL.
//!
//! Long-lived workers die with runjobs through PR_SET_PDEATHSIG, but per-item commands are
//! started with posix_spawn (no code runs in the child before exec, see `process`), and the
//! children of any of them live in their own groups. So a small guard process (runjobs
//! itself, in its hidden `__guard` mode) is told of every group as it starts and ends, over
//! a pipe. When runjobs dies, however it dies, the pipe closes and the guard stops every
//! group still listed: SIGTERM, a moment's grace, SIGKILL.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// How long the guard waits between SIGTERM and SIGKILL.
const GUARD_GRACE: Duration = Duration::from_millis(500);

static LIVE: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
static GUARD: Mutex<Option<Guard>> = Mutex::new(None);

struct Guard {
    child: Child,
    pipe: ChildStdin,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every operation leaves the state whole; a panicking holder changes nothing.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts the guard process. Without one (it could not start), workers still die with
/// runjobs, but a per-item command may finish after a runjobs killed with SIGKILL.
pub fn start_guard() -> io::Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("__guard")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        // Its own group: a terminal's Ctrl-C is for runjobs, not for the guard.
        .process_group(0)
        .spawn()?;
    let pipe = child.stdin.take().expect("stdin is piped");
    *locked(&GUARD) = Some(Guard { child, pipe });
    Ok(())
}

/// Ends the guard after a run (every group already ended) and reaps it.
pub fn stop_guard() {
    if let Some(Guard { mut child, pipe }) = locked(&GUARD).take() {
        drop(pipe);
        let _ = child.wait();
    }
}

fn tell_guard(line: std::fmt::Arguments<'_>) {
    let mut guard = locked(&GUARD);
    if let Some(g) = guard.as_mut()
        && g.pipe.write_fmt(line).is_err()
    {
        // The guard is gone; runjobs goes on without it.
        *guard = None;
    }
}

/// A child leading its own process group, listed while it lives.
#[derive(Debug)]
pub struct GroupChild(Child);

impl GroupChild {
    /// Lists `child` (which must lead its own group).
    pub fn new(child: Child) -> GroupChild {
        let id = child.id() as i32;
        {
            let mut live = locked(&LIVE);
            live.insert(id);
            // Started while a pause was being set up (after `signal_all` took its list):
            // stop it too. Under the lock, so either this or `signal_all` sees it.
            if crate::pause::is_paused()
                && let Some(pid) = Pid::from_raw(id)
            {
                let _ = kill_process_group(pid, Signal::STOP);
            }
        }
        tell_guard(format_args!("+{id}\n"));
        GroupChild(child)
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        let id = self.0.id() as i32;
        locked(&LIVE).remove(&id);
        tell_guard(format_args!("-{id}\n"));
    }
}

impl Deref for GroupChild {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for GroupChild {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Sends `signal` to every live group (SIGSTOP and SIGCONT for Ctrl-Z and `fg`).
pub fn signal_all(signal: Signal) {
    for id in locked(&LIVE).iter() {
        if let Some(pid) = Pid::from_raw(*id) {
            let _ = kill_process_group(pid, signal);
        }
    }
}

/// The guard process (`runjobs __guard`): keeps the list runjobs sends on stdin; when stdin
/// closes, stops every group still on it.
pub fn guard_main() -> u8 {
    let mut groups = BTreeSet::new();
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (sign, id) = line.split_at(line.len().min(1));
        match (sign, id.parse::<i32>()) {
            ("+", Ok(id)) if id > 1 => {
                groups.insert(id);
            }
            ("-", Ok(id)) => {
                groups.remove(&id);
            }
            _ => {}
        }
    }
    let pids: Vec<Pid> = groups.into_iter().filter_map(Pid::from_raw).collect();
    for pid in &pids {
        let _ = kill_process_group(*pid, Signal::TERM);
        // A stopped group (runjobs died while paused) must run to act on SIGTERM.
        let _ = kill_process_group(*pid, Signal::CONT);
    }
    let until = Instant::now() + GUARD_GRACE;
    while Instant::now() < until && pids.iter().any(|p| test_kill_process_group(*p).is_ok()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in &pids {
        let _ = kill_process_group(*pid, Signal::KILL);
    }
    0
}
