//! A command's process from spawn to reaping, on the slot's own thread: one poll loop waits
//! for its exit (a pidfd), drains its stdout and stderr as they fill, feeds its stdin, and
//! enforces the timeout and the run's stop; no thread per pipe, no SIGCHLD.
//!
//! Every child is reaped, with its resource usage (`wait4`). When its leader exits, its
//! process group is killed before the leader is reaped: the zombie still holds the group's
//! id, so the signal cannot reach a stranger that reused it.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group, waitid};

use super::StderrTail;
use super::groups::Listed;
use super::lines::LineSplitter;
use super::usage::Usage;

/// How often the supervisor is asked about the run while the child runs.
const TICK: Duration = Duration::from_millis(50);
/// Without a pidfd, how often the child is checked for its exit.
const NO_PIDFD_TICK: Duration = Duration::from_millis(2);
/// After the leader's group was killed, how long its pipes may take to reach their end once
/// the item's time is up (what still holds them left the group).
const LINGER: Duration = Duration::from_millis(100);

/// What a watched child asks of the run around it.
pub trait Supervisor {
    /// When the item's time is up (moved later by pauses); `None`: no timeout.
    fn deadline(&self) -> Option<Instant>;
    /// The run is stopping (a signal, its deadline): stop the child now.
    fn must_stop(&self) -> bool;
    /// Skip the grace period (a second signal).
    fn forced(&self) -> bool;
    /// Between SIGTERM and SIGKILL.
    fn grace(&self) -> Duration;
    /// Called about every 50 ms while the child runs.
    fn waiting(&mut self);
    /// A line the child wrote to stderr.
    fn line(&mut self, line: String);
    /// Bytes the child wrote to stdout, as read, before the capture's cap cuts them (a
    /// one-liner relays them in input order); by default nothing.
    fn stdout(&mut self, bytes: &[u8]) {
        let _ = bytes;
    }
}

/// How a watched child's item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The child exited (or was killed by a signal) on its own.
    Exited,
    /// Its time was up: its group got SIGTERM, then SIGKILL after the grace.
    TimedOut,
    /// The run stopped: its group got SIGTERM, then SIGKILL after the grace.
    Stopped,
}

/// A watched child, reaped.
#[derive(Debug)]
pub struct Finished {
    pub ending: Ending,
    pub status: ExitStatus,
    /// `None` only when the child could not be waited for (someone else reaped it).
    pub usage: Option<Usage>,
    /// Its stdout, up to the cap.
    pub stdout: Vec<u8>,
    /// Bytes of stdout past the cap, counted and dropped.
    pub stdout_dropped: u64,
    /// The last few KiB of its stderr (as relayed).
    pub stderr_tail: String,
}

/// A process started for an item (see `Launcher`): leads its own group, listed while it lives.
#[derive(Debug)]
pub struct ItemChild {
    pid: Pid,
    pidfd: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    reaped: bool,
    _listed: Listed,
}

/// The state of one watch.
struct Drain<'a> {
    sup: &'a mut dyn Supervisor,
    stdin: &'a [u8],
    stdout: Vec<u8>,
    cap: usize,
    dropped: u64,
    lines: LineSplitter,
    tail: StderrTail,
}

impl ItemChild {
    pub(super) fn new(
        pid: Pid,
        pidfd: Option<OwnedFd>,
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
        listed: Listed,
    ) -> ItemChild {
        ItemChild {
            pid,
            pidfd,
            stdin,
            stdout: Some(stdout),
            stderr: Some(stderr),
            reaped: false,
            _listed: listed,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get() as u32
    }

    /// Runs the child to its end: writes `stdin` to it (when it has a stdin pipe), keeps up
    /// to `stdout_cap` bytes of its stdout, relays its stderr lines, stops its group when its
    /// time is up or the run stops, and reaps it. Returns once it is reaped and its pipes
    /// reached their end. `buf` is scratch space for reading.
    pub fn watch(
        mut self,
        stdin: &[u8],
        stdout_cap: usize,
        sup: &mut dyn Supervisor,
        buf: &mut [u8],
    ) -> Finished {
        let mut drain = Drain {
            sup,
            stdin,
            stdout: Vec::new(),
            cap: stdout_cap,
            dropped: 0,
            lines: LineSplitter::default(),
            tail: StderrTail::default(),
        };
        let mut ending = Ending::Exited;
        let mut kill_at: Option<Instant> = None;
        let mut reaped: Option<(ExitStatus, Option<Usage>, Instant)> = None;
        let mut last_tick = Instant::now();
        loop {
            let now = Instant::now();
            let deadline = drain.sup.deadline();
            match &reaped {
                Some(_) if self.stdout.is_none() && self.stderr.is_none() => break,
                Some((_, _, at)) => {
                    // Whatever still holds the pipes is outside the group: wait for it only
                    // as long as the item may run.
                    let time_up = drain.sup.must_stop() || deadline.is_some_and(|d| now >= d);
                    if time_up && now >= *at + LINGER {
                        break;
                    }
                }
                None => {
                    if ending == Ending::Exited && kill_at.is_none() {
                        if deadline.is_some_and(|d| now >= d) {
                            ending = Ending::TimedOut;
                        } else if drain.sup.must_stop() {
                            ending = Ending::Stopped;
                        }
                        if ending != Ending::Exited {
                            self.signal_group(Signal::TERM);
                            kill_at = Some(now + drain.sup.grace());
                        }
                    }
                    if let Some(at) = kill_at
                        && (now >= at || drain.sup.forced())
                    {
                        self.signal_group(Signal::KILL);
                        kill_at = None;
                    }
                }
            }
            if now >= last_tick + TICK {
                drain.sup.waiting();
                last_tick = now;
            }
            let mut wait = TICK.saturating_sub(now - last_tick);
            for until in [deadline, kill_at, reaped.as_ref().map(|r| r.2 + LINGER)]
                .into_iter()
                .flatten()
            {
                wait = wait.min(until.saturating_duration_since(now));
            }
            if reaped.is_none() && self.pidfd.is_none() {
                wait = wait.min(NO_PIDFD_TICK);
            }
            let exited = self.poll_once(&mut drain, wait, buf);
            if reaped.is_none() && (exited || (self.pidfd.is_none() && self.has_exited())) {
                // SIGKILL even though the leader exited: what it left running in its group
                // (a backgrounded grandchild holding the pipes) goes now.
                self.signal_group(Signal::KILL);
                let (status, usage) = self.reap();
                reaped = Some((status, usage, Instant::now()));
                // A reaped child's pidfd stays readable: polling it again would spin.
                self.pidfd = None;
                // Nobody is left to read what was not written yet.
                self.stdin = None;
            }
        }
        let Drain {
            sup,
            mut lines,
            tail,
            stdout,
            dropped,
            ..
        } = drain;
        lines.finish(&mut |text| relay(&tail, sup, text));
        let (status, usage, _) = reaped.expect("the loop ends only once the child is reaped");
        Finished {
            ending,
            status,
            usage,
            stdout,
            stdout_dropped: dropped,
            stderr_tail: tail.text(),
        }
    }

    /// One poll of the pipes and the pidfd for up to `wait`; reads and writes what is ready.
    /// True when the pidfd says the child exited.
    fn poll_once(&mut self, drain: &mut Drain<'_>, wait: Duration, buf: &mut [u8]) -> bool {
        #[derive(Clone, Copy)]
        enum Which {
            Exit,
            Stdin,
            Stdout,
            Stderr,
        }
        let mut which = Vec::with_capacity(4);
        let mut fds = Vec::with_capacity(4);
        for (fd, flags, what) in [
            (&self.pidfd, PollFlags::IN, Which::Exit),
            (&self.stdin, PollFlags::OUT, Which::Stdin),
            (&self.stdout, PollFlags::IN, Which::Stdout),
            (&self.stderr, PollFlags::IN, Which::Stderr),
        ] {
            if let Some(fd) = fd {
                fds.push(PollFd::new(fd, flags));
                which.push(what);
            }
        }
        let timeout = Timespec {
            tv_sec: wait.as_secs() as i64,
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        // EINTR (a signal handler ran) is one more round of the loop.
        if poll(&mut fds, Some(&timeout)).unwrap_or(0) == 0 {
            return false;
        }
        let ready: Vec<(Which, bool)> = fds
            .iter()
            .zip(&which)
            .map(|(fd, what)| (*what, !fd.revents().is_empty()))
            .collect();
        drop(fds);
        let mut exited = false;
        for (what, ready) in ready {
            if !ready {
                continue;
            }
            match what {
                Which::Exit => exited = true,
                Which::Stdin => self.feed(drain),
                Which::Stdout => {
                    if let Some(n) = read_some(&mut self.stdout, buf) {
                        drain.sup.stdout(&buf[..n]);
                        let kept = n.min(drain.cap.saturating_sub(drain.stdout.len()));
                        drain.stdout.extend_from_slice(&buf[..kept]);
                        drain.dropped += (n - kept) as u64;
                    }
                }
                Which::Stderr => {
                    if let Some(n) = read_some(&mut self.stderr, buf) {
                        let (lines, tail, sup) = (&mut drain.lines, &drain.tail, &mut *drain.sup);
                        lines.feed(&buf[..n], &mut |text| relay(tail, sup, text));
                    }
                }
            }
        }
        exited
    }

    /// Writes what the pipe takes of the rest of stdin; closes it once all is written (the
    /// child then reads its end) or the child stopped reading.
    fn feed(&mut self, drain: &mut Drain<'_>) {
        let Some(fd) = &self.stdin else {
            return;
        };
        match rustix::io::write(fd, drain.stdin) {
            Ok(n) => drain.stdin = &drain.stdin[n..],
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => return,
            // EPIPE: the child closed its stdin (or exited); what it did not read is dropped.
            Err(_) => drain.stdin = &[],
        }
        if drain.stdin.is_empty() {
            self.stdin = None;
        }
    }

    fn signal_group(&self, signal: Signal) {
        // ESRCH: the group is already gone.
        let _ = kill_process_group(self.pid, signal);
    }

    /// Without a pidfd: whether the child exited, leaving it a zombie (not reaped yet).
    fn has_exited(&self) -> bool {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        matches!(waitid(WaitId::Pid(self.pid), options), Ok(Some(_)) | Err(_))
    }

    /// Waits for the child (it has exited, or is about to after SIGKILL) and takes its
    /// resource usage.
    fn reap(&mut self) -> (ExitStatus, Option<Usage>) {
        self.reaped = true;
        match wait4(self.pid) {
            Ok((status, usage)) => (ExitStatus::from_raw(status), Some(usage)),
            // Only when it was already reaped: report the SIGKILL that was sent (a raw wait
            // status of 9 reads "killed by signal 9").
            Err(_) => (ExitStatus::from_raw(9), None),
        }
    }
}

impl Drop for ItemChild {
    /// A child never outlives its watch unreaped: a watch cut short (a panic) still kills
    /// the group and reaps it.
    fn drop(&mut self) {
        if !self.reaped {
            self.signal_group(Signal::KILL);
            let _ = wait4(self.pid);
        }
    }
}

/// Keeps `text` in the tail and hands it on.
fn relay(tail: &StderrTail, sup: &mut dyn Supervisor, text: String) {
    tail.push(text.as_bytes());
    tail.push(b"\n");
    sup.line(text);
}

/// Reads what the pipe holds into `buf`; at its end (or on an error) closes it and gives `None`.
fn read_some(pipe: &mut Option<OwnedFd>, buf: &mut [u8]) -> Option<usize> {
    let fd = pipe.as_ref()?;
    match rustix::io::read(fd, &mut *buf) {
        Ok(0) => {}
        Ok(n) => return Some(n),
        Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => return Some(0),
        Err(_) => {}
    }
    *pipe = None;
    None
}

/// wait4(2) for `pid`: its raw wait status and its resource usage (which includes that of
/// the descendants it waited for).
#[allow(
    unsafe_code,
    reason = "wait4 (the only wait that gives a child's rusage) has no safe wrapper in std or rustix"
)]
fn wait4(pid: Pid) -> io::Result<(i32, Usage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data, valid when zeroed; both pointers are to live locals that
    // wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: as above.
        let got = unsafe { libc::wait4(pid.as_raw_nonzero().get(), &mut status, 0, &mut usage) };
        if got >= 0 {
            return Ok((status, Usage::of(&usage)));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
