//! Talking to Slurm's client commands: the checks made before anything is submitted, the
//! `sbatch` line of a submission, and running `sbatch`, `squeue` and `scancel`, each with
//! runjobs' own time limit (a client whose slurmctld is gone may otherwise wait for ever).

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use wait_timeout::ChildExt;

use super::spool::Spool;
use crate::job::{SlurmSettings, did_you_mean};

/// How long `sbatch` may take (a busy controller accepts jobs slowly).
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one call of `squeue`, `scancel` or `sinfo` may take: short enough that a
/// controller that stopped answering does not hold up a stop or the silent limit for long.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// The Slurm commands a submission uses.
const CLIENTS: [&str; 3] = ["sbatch", "squeue", "scancel"];

/// Checks what can be checked before submitting: the client commands, the partition, the
/// spool folder. `Err` is the message of a bad setting (exit 2, nothing submitted).
pub fn check(settings: &SlurmSettings, spool_base: &Path) -> Result<(), String> {
    for client in CLIENTS {
        if find_on_path(client).is_none() {
            return Err(format!(
                "`--executor slurm` needs Slurm's client commands, but there is no `{client}` \
                 on PATH\n  = help: run runjobs on a machine that can submit to the cluster \
                 (a login node), or use `--executor local`"
            ));
        }
    }
    if let Some(partition) = &settings.partition {
        check_partition(partition)?;
    }
    check_spool(spool_base)
}

/// The partition must be one `sinfo` knows.
fn check_partition(partition: &str) -> Result<(), String> {
    let listed = run_tool(
        "sinfo",
        &["-h".into(), "-o".into(), "%R".into()],
        CLIENT_TIMEOUT,
    )
    .map_err(|e| format!("cannot list the cluster's partitions (`sinfo`): {e}"))?;
    let known: Vec<&str> = listed.split_whitespace().collect();
    if known.contains(&partition) {
        return Ok(());
    }
    let close = did_you_mean(partition, known.iter().copied())
        .map(|d| format!("; {d}"))
        .unwrap_or_default();
    Err(format!(
        "`[executor] partition = \"{partition}\"`: the cluster has no such partition{close}\n  \
         = help: its partitions are: {}",
        if known.is_empty() {
            "(none listed)".to_owned()
        } else {
            known.join(", ")
        }
    ))
}

/// The spool folder must exist (or be creatable) and take files.
fn check_spool(base: &Path) -> Result<(), String> {
    std::fs::create_dir_all(base)
        .and_then(|()| tempfile::tempfile_in(base).map(drop))
        .map_err(|e| {
            format!(
                "the spool folder `{}` is not writable: {e}\n  = help: set `[executor] spool` \
                 to a folder on storage the cluster's nodes share",
                base.display()
            )
        })
}

/// What a submission asks of Slurm.
pub struct Request<'a> {
    pub settings: &'a SlurmSettings,
    pub spool: &'a Spool,
    /// `runjobs-JOB-TASK`.
    pub name: String,
    pub shards: usize,
    /// Array tasks running at once.
    pub throttle: u32,
    /// `--time` when `[executor] time` is not set: from the job's `deadline`.
    pub deadline: Option<Duration>,
    /// Where the array tasks start (the job file's folder).
    pub chdir: &'a Path,
}

impl Request<'_> {
    /// `sbatch`'s arguments, the script last.
    pub fn sbatch_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--parsable".into()];
        let last = self.shards.saturating_sub(1);
        let array = if (self.throttle as usize) < self.shards {
            format!("--array=0-{last}%{}", self.throttle)
        } else {
            format!("--array=0-{last}")
        };
        args.push(array.into());
        args.push(format!("--job-name={}", self.name).into());
        args.push(flag("--output=", self.spool.log_pattern()));
        args.push(flag("--chdir=", self.chdir.to_owned()));
        // A shard runs once: a requeued one would append a second run to its journal. What a
        // lost shard did not finish is failed with Slurm's reason and rerun by `--resume`.
        args.push("--no-requeue".into());
        let s = self.settings;
        let time = s.time.clone().or_else(|| self.deadline.map(minutes_for));
        for (name, value) in [
            ("--time=", time),
            ("--partition=", s.partition.clone()),
            ("--account=", s.account.clone()),
            ("--cpus-per-task=", s.cpus_per_task.map(|c| c.to_string())),
            ("--mem=", s.mem.clone()),
        ] {
            if let Some(value) = value {
                args.push(format!("{name}{value}").into());
            }
        }
        args.extend(s.sbatch_args.iter().map(OsString::from));
        args.push(self.spool.script().into());
        args
    }
}

fn flag(name: &str, path: PathBuf) -> OsString {
    let mut flag = OsString::from(name);
    flag.push(path);
    flag
}

/// Slurm's `--time` in whole minutes, rounded up, with a minute to spare for the shard to
/// stop its items and write its journal (runjobs itself ends the run at the deadline).
fn minutes_for(deadline: Duration) -> String {
    (deadline.as_secs().div_ceil(60) + 1).to_string()
}

/// A submitted job: its id, and its cluster when `sbatch` named one (`--clusters`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobId {
    pub id: u64,
    pub cluster: Option<String>,
}

impl JobId {
    /// `-M CLUSTER` for `squeue` and `scancel`, when the job is on another cluster.
    pub fn cluster_args(&self) -> Vec<OsString> {
        match &self.cluster {
            Some(cluster) => vec!["-M".into(), cluster.into()],
            None => Vec::new(),
        }
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id)
    }
}

/// Submits; returns the job id.
pub fn sbatch(args: &[OsString]) -> Result<JobId, String> {
    parse_parsable(&run_tool("sbatch", args, SUBMIT_TIMEOUT)?)
}

/// What `sbatch --parsable` prints: `ID` or `ID;CLUSTER`.
fn parse_parsable(out: &str) -> Result<JobId, String> {
    let mut parts = out.trim().splitn(2, ';');
    let id = parts.next().unwrap_or_default().trim();
    let id = id
        .parse()
        .map_err(|_| format!("sbatch printed `{}`, not a job id", out.trim()))?;
    let cluster = parts.next().map(str::trim).filter(|c| !c.is_empty());
    Ok(JobId {
        id,
        cluster: cluster.map(str::to_owned),
    })
}

/// Cancels the job (every array task); errors are the caller's to report.
pub fn scancel(job: &JobId) -> Result<(), String> {
    let mut args = job.cluster_args();
    args.push(job.id.to_string().into());
    run_tool("scancel", &args, CLIENT_TIMEOUT).map(drop)
}

/// Runs a Slurm client with a time limit; its standard output, or why it failed (with the
/// end of its standard error).
pub fn run_tool(program: &str, args: &[OsString], limit: Duration) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        // Its own process group: a Ctrl-C at the terminal is for runjobs, which decides
        // what to cancel; a client it interrupted may have done its work already.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    // Read on threads: a long `squeue` listing must not fill the pipe and stall the client.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = match child.wait_timeout(limit) {
        Ok(Some(status)) => status,
        Ok(None) | Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "`{program}` did not answer within {}",
                humantime::format_duration(limit)
            ));
        }
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    if status.success() {
        Ok(stdout)
    } else {
        let said = stderr.trim();
        let said = if said.is_empty() { stdout.trim() } else { said };
        Err(format!("`{program}` failed ({status}): {said}"))
    }
}

/// The first `name` among PATH's folders that is a file.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sbatch_line_carries_every_setting() {
        let settings = SlurmSettings {
            partition: Some("batch".into()),
            account: Some("lab".into()),
            cpus_per_task: Some(4),
            mem: Some("4G".into()),
            sbatch_args: vec!["--qos=short".into()],
            ..SlurmSettings::default()
        };
        let spool = Spool::new("/shared/spool".into());
        let request = Request {
            settings: &settings,
            spool: &spool,
            name: "runjobs-square-square".into(),
            shards: 8,
            throttle: 2,
            deadline: Some(Duration::from_secs(90)),
            chdir: Path::new("/shared/jobs"),
        };
        let args: Vec<String> = request
            .sbatch_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--parsable",
                "--array=0-7%2",
                "--job-name=runjobs-square-square",
                "--output=/shared/spool/shard-%a.log",
                "--chdir=/shared/jobs",
                "--no-requeue",
                "--time=3",
                "--partition=batch",
                "--account=lab",
                "--cpus-per-task=4",
                "--mem=4G",
                "--qos=short",
                "/shared/spool/shard.sh",
            ]
        );
    }

    #[test]
    fn a_job_on_another_cluster_keeps_its_cluster() {
        let here = parse_parsable("812\n").unwrap();
        assert_eq!((here.id, here.cluster_args().len()), (812, 0));
        let there = parse_parsable("813;gpu\n").unwrap();
        assert_eq!(there.id, 813);
        assert_eq!(there.cluster_args(), ["-M", "gpu"].map(OsString::from));
        assert!(parse_parsable("sbatch: error: nope").is_err());
    }

    #[test]
    fn no_throttle_when_every_shard_may_run() {
        let settings = SlurmSettings::default();
        let spool = Spool::new("/s".into());
        let request = Request {
            settings: &settings,
            spool: &spool,
            name: "n".into(),
            shards: 4,
            throttle: 4,
            deadline: None,
            chdir: Path::new("/"),
        };
        let args = request.sbatch_args();
        assert!(args.contains(&"--array=0-3".into()));
        assert!(
            !args
                .iter()
                .any(|a| a.to_string_lossy().starts_with("--time"))
        );
    }
}
