//! Starting a process per item, as cheaply as the kernel allows: `posix_spawn` (a vfork-style
//! clone, no copy of runjobs' memory) straight into a new process group, its stdout and
//! stderr on close-on-exec pipes, stdin from `/dev/null` or a pipe. Everything that is the
//! same for every item of a task (the environment block, the working folder, where each
//! program lives on `PATH`) is prepared once per slot, not once per item.
//!
//! With resource limits a plain fork runs setrlimit in the child before exec instead: a
//! limit set from outside after the spawn (prlimit) would leave the program running
//! unlimited for a moment.
//!
//! Knows no job files: it is handed argv, environment, folder and limits.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::raw::c_char;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::fs::{Access, OFlags};
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

use super::Limits;
use super::groups::Listed;
use super::spawn::{Tether, spawn_raw};
use super::watch::ItemChild;

/// Programs whose place on `PATH` a slot remembers; past this it starts afresh (a command
/// whose program is an input could otherwise grow it without end).
const PROGRAMS_KEPT: usize = 256;

/// Starts the processes of one slot: one `Launcher` per slot, one `launch` per item.
pub struct Launcher {
    /// `NAME=value` of the environment every item gets (runjobs' own, then the overrides).
    env: Vec<CString>,
    /// `PATH` as the children see it, to find programs the way execvp would.
    path: Option<OsString>,
    cwd: PathBuf,
    cwd_c: CString,
    limits: Limits,
    devnull: OwnedFd,
    /// Where each program named without a `/` was found.
    programs: HashMap<String, CString>,
}

impl Launcher {
    /// A launcher for processes running in `cwd` with runjobs' environment plus `env` (later
    /// pairs win) and `per_item` left out (each item sets those), under `limits`.
    pub fn new<'a>(
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
        per_item: &[&str],
        cwd: &Path,
        limits: Limits,
    ) -> io::Result<Launcher> {
        let mut vars: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        for (name, value) in env {
            vars.insert(name.into(), value.into());
        }
        // The guard finds every process runjobs started by this (see `groups`).
        vars.insert(
            "RUNJOBS_PARENT_PID".into(),
            std::process::id().to_string().into(),
        );
        for name in per_item {
            vars.remove(OsStr::new(name));
        }
        let path = vars.get(OsStr::new("PATH")).cloned();
        let env = vars
            .iter()
            .map(|(name, value)| {
                let mut pair = name.as_bytes().to_vec();
                pair.push(b'=');
                pair.extend_from_slice(value.as_bytes());
                no_nul(pair, "an environment variable")
            })
            .collect::<io::Result<_>>()?;
        let devnull = rustix::fs::open(
            "/dev/null",
            OFlags::RDONLY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        Ok(Launcher {
            env,
            path,
            cwd: cwd.to_owned(),
            cwd_c: no_nul(cwd.as_os_str().as_bytes().to_vec(), "the working folder")?,
            limits,
            devnull,
            programs: HashMap::new(),
        })
    }

    /// Starts `argv` with the item's own variables `item_env` added to the environment, its
    /// stdin a pipe when `stdin` is set (else `/dev/null`), in a new process group.
    pub fn launch(
        &mut self,
        argv: &[String],
        item_env: &[(&str, &str)],
        stdin: bool,
    ) -> io::Result<ItemChild> {
        let program = argv
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the command is empty"))?;
        let args: Vec<CString> = argv
            .iter()
            .map(|a| no_nul(a.as_bytes().into(), "an argument"))
            .collect::<io::Result<_>>()?;
        let item_env: Vec<CString> = item_env
            .iter()
            .map(|(name, value)| no_nul(format!("{name}={value}").into(), "the input"))
            .collect::<io::Result<_>>()?;
        let (out_read, out_write) = pipe_with(PipeFlags::CLOEXEC)?;
        let (err_read, err_write) = pipe_with(PipeFlags::CLOEXEC)?;
        let (in_read, in_write) = if stdin {
            let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
            // Only runjobs' end: the child reads a blocking pipe, as programs expect.
            rustix::fs::fcntl_setfl(&write, OFlags::NONBLOCK)?;
            (Some(read), Some(write))
        } else {
            (None, None)
        };
        let cached = self.programs.contains_key(program);
        let path = self.resolve(program)?;
        let fds = stdio(in_read.as_ref(), &self.devnull, &out_write, &err_write);
        let first = self.start(&path, &args, &item_env, fds);
        let pid = match first {
            // A program found earlier may have moved since: look again, once.
            Err(e) if cached && e.raw_os_error() == Some(libc::ENOENT) => {
                self.programs.remove(program);
                let path = self.resolve(program)?;
                let fds = stdio(in_read.as_ref(), &self.devnull, &out_write, &err_write);
                self.start(&path, &args, &item_env, fds)
            }
            started => started,
        }?;
        // The child holds its ends now; runjobs' copies must close, or the pipes never end.
        drop((out_write, err_write, in_read));
        let listed = Listed::new(pid.as_raw_nonzero().get());
        // No pidfd (a kernel before 5.3, or a sandbox refusing it): `ItemChild` polls.
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).ok();
        Ok(ItemChild::new(
            pid, pidfd, in_write, out_read, err_read, listed,
        ))
    }

    fn start(
        &self,
        path: &CStr,
        args: &[CString],
        item_env: &[CString],
        stdio: [BorrowedFd<'_>; 3],
    ) -> io::Result<Pid> {
        if self.limits == Limits::default() {
            let argv = pointers(args);
            let envp = pointers(self.env.iter().chain(item_env));
            posix_spawn(path, &argv, &envp, &self.cwd_c, stdio)
        } else {
            self.fork_with_limits(path, args, item_env, stdio)
        }
    }

    /// The path to exec for `program`: as given when it names a path (relative to the
    /// child's folder, as exec resolves it after the chdir), else the first executable
    /// file of that name on the children's `PATH`, as execvp finds it.
    fn resolve(&mut self, program: &str) -> io::Result<CString> {
        if program.contains('/') {
            return no_nul(program.as_bytes().into(), "the program");
        }
        if let Some(found) = self.programs.get(program) {
            return Ok(found.clone());
        }
        // execvp's default when PATH is unset.
        let path = self.path.clone().unwrap_or_else(|| "/bin:/usr/bin".into());
        let found = std::env::split_paths(&path)
            .map(|dir| {
                // An empty entry means the current folder: the child's.
                if dir.as_os_str().is_empty() {
                    PathBuf::from(".").join(program)
                } else {
                    dir.join(program)
                }
            })
            .find(|candidate| {
                let on_disk = self.cwd.join(candidate);
                on_disk.is_file() && rustix::fs::access(&on_disk, Access::EXEC_OK).is_ok()
            })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        let found = no_nul(found.into_os_string().into_vec(), "the program")?;
        if self.programs.len() >= PROGRAMS_KEPT {
            self.programs.clear();
        }
        self.programs.insert(program.to_owned(), found.clone());
        Ok(found)
    }

    /// fork, setrlimit, exec: the limits hold from the program's first instruction.
    fn fork_with_limits(
        &self,
        path: &CStr,
        args: &[CString],
        item_env: &[CString],
        stdio: [BorrowedFd<'_>; 3],
    ) -> io::Result<Pid> {
        let mut cmd = Command::new(OsStr::from_bytes(path.to_bytes()));
        cmd.arg0(OsStr::from_bytes(args[0].to_bytes()))
            .args(args[1..].iter().map(|a| OsStr::from_bytes(a.to_bytes())))
            .env_clear()
            .current_dir(&self.cwd);
        for pair in self.env.iter().chain(item_env) {
            let pair = pair.to_bytes();
            let at = memchr::memchr(b'=', pair).unwrap_or(pair.len());
            let value = pair.get(at + 1..).unwrap_or_default();
            cmd.env(OsStr::from_bytes(&pair[..at]), OsStr::from_bytes(value));
        }
        let [stdin, stdout, stderr] = stdio.map(|fd| fd.try_clone_to_owned());
        cmd.stdin(Stdio::from(stdin?))
            .stdout(Stdio::from(stdout?))
            .stderr(Stdio::from(stderr?));
        let child = spawn_raw(&mut cmd, &self.limits, Tether::Loose)?;
        // Reaped by `ItemChild` by pid; std's handle holds nothing else (no pipes of its own).
        Ok(Pid::from_child(&child))
    }
}

/// The child's fds 0, 1 and 2: its stdin pipe (else `/dev/null`), stdout and stderr.
fn stdio<'a>(
    stdin: Option<&'a OwnedFd>,
    devnull: &'a OwnedFd,
    stdout: &'a OwnedFd,
    stderr: &'a OwnedFd,
) -> [BorrowedFd<'a>; 3] {
    [
        stdin.unwrap_or(devnull).as_fd(),
        stdout.as_fd(),
        stderr.as_fd(),
    ]
}

fn no_nul(bytes: Vec<u8>, what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} holds a NUL byte, which no program can be given"),
        )
    })
}

/// The NULL-terminated pointer array exec takes, borrowing `strings`.
fn pointers<'a>(strings: impl IntoIterator<Item = &'a CString>) -> Vec<*const c_char> {
    strings
        .into_iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// posix_spawn(3) of `path` with `argv` and `envp` (NULL-terminated, see `pointers`), in a
/// new process group of its own, in the folder `cwd`, with `stdio` as its fds 0, 1 and 2 and
/// SIGPIPE back to its default (runjobs ignores it, and ignored signals survive exec).
#[allow(
    unsafe_code,
    reason = "posix_spawn has no safe wrapper in std, rustix or libc"
)]
fn posix_spawn(
    path: &CStr,
    argv: &[*const c_char],
    envp: &[*const c_char],
    cwd: &CStr,
    stdio: [BorrowedFd<'_>; 3],
) -> io::Result<Pid> {
    let check = |code: libc::c_int| match code {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    };
    assert!(argv.last().is_some_and(|p| p.is_null()) && envp.last().is_some_and(|p| p.is_null()));
    // SAFETY: the file actions and attributes are initialised before use and destroyed on
    // every path (the guards below); every pointer handed over (path, cwd, the argv and envp
    // arrays, NULL-terminated as asserted) borrows data that outlives the call, which
    // copies what it needs before returning; the fds are open (borrowed).
    unsafe {
        let mut actions = std::mem::MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        check(libc::posix_spawn_file_actions_init(actions.as_mut_ptr()))?;
        let mut actions = FileActions(actions.assume_init());
        for (fd, target) in stdio.iter().zip(0..) {
            // dup2 onto 0, 1 and 2 clears close-on-exec there; glibc also clears it when
            // source and target are the same fd.
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions.0,
                fd.as_raw_fd(),
                target,
            ))?;
        }
        check(libc::posix_spawn_file_actions_addchdir_np(
            &mut actions.0,
            cwd.as_ptr(),
        ))?;
        let mut attr = std::mem::MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        check(libc::posix_spawnattr_init(attr.as_mut_ptr()))?;
        let mut attr = SpawnAttr(attr.assume_init());
        let mut none = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(none.as_mut_ptr());
        let none = none.assume_init();
        let mut pipe = none;
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        check(libc::posix_spawnattr_setsigmask(&mut attr.0, &none))?;
        check(libc::posix_spawnattr_setsigdefault(&mut attr.0, &pipe))?;
        // Group 0: the child leads a new group whose id is its pid.
        check(libc::posix_spawnattr_setpgroup(&mut attr.0, 0))?;
        let flags = libc::POSIX_SPAWN_SETPGROUP
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        check(libc::posix_spawnattr_setflags(
            &mut attr.0,
            flags as libc::c_short,
        ))?;
        let mut pid: libc::pid_t = 0;
        check(libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &actions.0,
            &attr.0,
            argv.as_ptr().cast(),
            envp.as_ptr().cast(),
        ))?;
        Ok(Pid::from_raw(pid).expect("posix_spawn gives the new child's pid"))
    }
}

struct FileActions(libc::posix_spawn_file_actions_t);

impl Drop for FileActions {
    #[allow(unsafe_code, reason = "the pair of posix_spawn_file_actions_init")]
    fn drop(&mut self) {
        // SAFETY: initialised by posix_spawn_file_actions_init, destroyed once.
        unsafe {
            libc::posix_spawn_file_actions_destroy(&mut self.0);
        }
    }
}

struct SpawnAttr(libc::posix_spawnattr_t);

impl Drop for SpawnAttr {
    #[allow(unsafe_code, reason = "the pair of posix_spawnattr_init")]
    fn drop(&mut self) {
        // SAFETY: initialised by posix_spawnattr_init, destroyed once.
        unsafe {
            libc::posix_spawnattr_destroy(&mut self.0);
        }
    }
}
