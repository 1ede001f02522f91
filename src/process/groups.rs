//! Every live process group runjobs started, so that all of them can be paused together
//! (Ctrl-Z), and a guard so that none outlives runjobs, even a runjobs killed with SIGKILL.
//!
//! Long-lived workers die with runjobs through PR_SET_PDEATHSIG, but per-item commands are
//! started with posix_spawn (no code runs in the child before exec, see `process`), and the
//! children of any of them live in their own groups. So a small guard process (runjobs
//! itself, in its hidden `__guard` mode) holds the read end of a pipe. When runjobs ends
//! normally it says so; when it dies, however it dies, the pipe just closes, and the guard
//! stops every process group led by a process that carries `RUNJOBS_PARENT_PID=<runjobs>`
//! (every child runjobs starts does): SIGTERM, a moment's grace, SIGKILL. Nothing is sent
//! per item, so the guard costs a command nothing.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// How long the guard waits between SIGTERM and SIGKILL.
const GUARD_GRACE: Duration = Duration::from_millis(500);
/// What runjobs writes to the guard when it ends normally.
const DONE: &[u8] = b"done\n";

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
        .arg("--parent")
        .arg(std::process::id().to_string())
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
    if let Some(Guard {
        mut child,
        mut pipe,
    }) = locked(&GUARD).take()
    {
        let _ = pipe.write_all(DONE);
        drop(pipe);
        let _ = child.wait();
    }
}

/// A process group listed while its leader lives (see `signal_all`).
#[derive(Debug)]
pub struct Listed(i32);

impl Listed {
    /// Lists the group led by `pid` (which must lead its own group).
    pub fn new(pid: i32) -> Listed {
        let mut live = locked(&LIVE);
        live.insert(pid);
        // Started while a pause was being set up (after `signal_all` took its list): stop
        // it too. Under the lock, so either this or `signal_all` sees it.
        if crate::process::pause::is_paused()
            && let Some(pid) = Pid::from_raw(pid)
        {
            let _ = kill_process_group(pid, Signal::STOP);
        }
        Listed(pid)
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        locked(&LIVE).remove(&self.0);
    }
}

/// A child leading its own process group, listed while it lives.
#[derive(Debug)]
pub struct GroupChild(
    Child,
    #[expect(
        dead_code,
        reason = "held for its Drop: the listing ends with the child"
    )]
    Listed,
);

impl GroupChild {
    /// Lists `child` (which must lead its own group).
    pub fn new(child: Child) -> GroupChild {
        let listed = Listed::new(child.id() as i32);
        GroupChild(child, listed)
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

/// The guard process (`runjobs __guard --parent PID`): waits for runjobs to say it is done;
/// if the pipe closes without that, runjobs died, and every process group it left is stopped.
pub fn guard_main(parent: u32) -> u8 {
    let mut said = Vec::new();
    let _ = io::stdin().lock().read_to_end(&mut said);
    if said.ends_with(DONE) {
        return 0;
    }
    let pids: Vec<Pid> = groups_left_by(parent)
        .into_iter()
        .filter_map(Pid::from_raw)
        .collect();
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

/// Process groups (other than the guard's own) of the live processes started with
/// `RUNJOBS_PARENT_PID=parent` in their environment.
fn groups_left_by(parent: u32) -> BTreeSet<i32> {
    let needle = format!("RUNJOBS_PARENT_PID={parent}");
    let own = rustix::process::getpgrp().as_raw_nonzero().get();
    let mut groups = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
            continue;
        }
        // `stat`: "pid (comm) state ppid pgrp ...", comm may hold spaces and parentheses.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|g| g.parse::<i32>().ok());
        if let Some(pgrp) = pgrp.filter(|g| *g > 1 && *g != own) {
            groups.insert(pgrp);
        }
    }
    groups
}
