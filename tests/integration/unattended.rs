//! Unattended runs (cron, a closed terminal, a shared folder): the modes of what a run
//! creates under the umask, SIGHUP, symlinks planted beside the results, and two live runs
//! writing one output.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// The permission bits of `path` (followed, for a link).
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Runs `runjobs ARGS` under `umask` (set in the shell that then execs runjobs).
fn run_with_umask(umask: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A job keeping its history (`latest`, the run index) whose one item prints the mode of the
/// journal its run is writing.
const JOURNAL_MODE_JOB: &str = "[output]\npath = \"out/{job}-{timestamp}.json\"\nkeep = 3\n\
    [functions.journal_mode]\n\
    command = [\"sh\", \"-c\", \"stat -c %a out/*.json.journal\"]\n\
    [[task]]\nfunction = \"journal_mode\"\ninputs = [1]\n";

/// Every file and folder a run and `report` create, under `umask`: (path, mode).
fn created_modes(umask: &str) -> Vec<(String, u32)> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "private.toml", JOURNAL_MODE_JOB);
    let output = run_with_umask(umask, dir.path(), &["private.toml"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let latest = dir.path().join("out/private-latest.json");
    let doc = read_json(&latest);
    let journal = results(&doc, 0)[0]["output"].as_str().unwrap().to_owned();
    let journal = u32::from_str_radix(&journal, 8).unwrap();
    let report = run_with_umask(
        umask,
        dir.path(),
        &[
            "report",
            "out/private-latest.json",
            "--html",
            "report/r.html",
            "--junit",
            "junit.xml",
        ],
    );
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    let out = dir.path().join("out");
    let results_file = cron_files(&out, "private-2");
    let mut modes = vec![
        ("journal".to_owned(), journal),
        ("latest".to_owned(), mode(&latest)),
        ("folder out".to_owned(), mode(&out)),
        ("folder report".to_owned(), mode(&dir.path().join("report"))),
    ];
    for (name, path) in [
        ("results", results_file),
        ("lock", out.join(".private.runjobs.lock")),
        ("output lock", out.join(".private-latest.json.output.lock")),
        ("run index", out.join("private.history.jsonl")),
        ("html", dir.path().join("report/r.html")),
        ("junit", dir.path().join("junit.xml")),
    ] {
        modes.push((name.to_owned(), mode(&path)));
    }
    modes
}

/// The one file in `folder` whose name starts with `prefix`.
fn cron_files(folder: &Path, prefix: &str) -> std::path::PathBuf {
    let found: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn every_file_and_folder_a_run_creates_obeys_the_umask() {
    for (name, mode) in created_modes("077") {
        assert_eq!(mode & 0o077, 0, "{name} is {mode:o} under umask 077");
        assert_eq!(mode & 0o600, 0o600, "{name} is {mode:o} under umask 077");
    }
    for (name, mode) in created_modes("022") {
        let expected = if name.starts_with("folder") {
            0o755
        } else {
            0o644
        };
        assert_eq!(mode, expected, "{name} is {mode:o} under umask 022");
    }
}

#[test]
fn a_results_file_replaced_under_a_tighter_umask_keeps_no_wider_mode() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "job.toml",
        "[output]\npath = \"r.json\"\n[[task]]\nfunction = \"square\"\ninputs = [1, 2]\n",
    );
    let output = run_with_umask("000", dir.path(), &["job.toml"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(mode(&dir.path().join("r.json")), 0o666);
    let output = run_with_umask("077", dir.path(), &["job.toml"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(mode(&dir.path().join("r.json")), 0o600);
    assert_eq!(outputs(&read_json(&dir.path().join("r.json")), 0), [1, 4]);
}

/// Who runs the job in `planted_links_*`: this user, or (as root) an unprivileged one.
#[derive(Clone, Copy, Debug)]
enum As {
    Me,
    Nobody,
}

/// `runjobs ARGS` in `dir` as `who` (`Nobody`: uid and gid 65534, through `setpriv`).
fn run_as(who: As, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = match who {
        As::Me => Command::new(BIN),
        As::Nobody => {
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            cmd
        }
    };
    cmd.args(args).current_dir(dir).output().unwrap()
}

/// A shared folder (anyone may write in it, as a group-writable project folder lets the
/// group) with a job whose one item leaves `ran.flag`, and a victim file of the job's user.
fn shared_folder(who: As) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    write(
        dir.path(),
        "s.toml",
        "[output]\npath = \"out.json\"\n\
         [functions.f]\ncommand = [\"sh\", \"-c\", \"touch ran.flag; echo $1\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"f\"\ninputs = [1, 2]\n",
    );
    let victim = write(dir.path(), "victim.txt", "precious\n");
    if let As::Nobody = who {
        for path in [dir.path().join("s.toml"), victim] {
            let status = Command::new("chown").arg("65534:65534").arg(&path).status();
            assert!(status.unwrap().success());
        }
    }
    dir
}

fn planted_links_stop_the_run_before_it_starts(who: As) {
    for (what, name) in [
        ("lock", ".s.runjobs.lock"),
        ("output lock", ".out.json.output.lock"),
        ("run index", "s.history.jsonl"),
        ("journal", "out.json.journal"),
    ] {
        for target in ["victim.txt", "missing.txt"] {
            let dir = shared_folder(who);
            std::os::unix::fs::symlink(target, dir.path().join(name)).unwrap();
            let output = run_as(who, dir.path(), &["s.toml"]);
            let err = stderr(&output);
            let case = format!("{what} -> {target} as {who:?}");
            assert_eq!(output.status.code(), Some(2), "{case}: {err}");
            assert!(
                err.contains("symbolic link") && err.contains(name),
                "{case}: {err}"
            );
            assert!(!dir.path().join("ran.flag").exists(), "{case}: an item ran");
            assert!(!dir.path().join("out.json").exists(), "{case}");
            let victim = std::fs::read_to_string(dir.path().join("victim.txt")).unwrap();
            assert_eq!(victim, "precious\n", "{case}: the target was written");
            assert!(
                !dir.path().join("missing.txt").exists(),
                "{case}: the link was followed"
            );
        }
    }
    // Without the links the same folder runs (the test itself is sound).
    let dir = shared_folder(who);
    let output = run_as(who, dir.path(), &["s.toml"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(dir.path().join("ran.flag").exists());
    assert_eq!(
        outputs(&read_json(&dir.path().join("out.json")), 0),
        ["1", "2"]
    );
}

#[test]
fn planted_links_beside_the_results_stop_the_run_and_leave_their_targets_alone() {
    planted_links_stop_the_run_before_it_starts(As::Me);
}

#[test]
fn planted_links_stop_an_unprivileged_users_run_too() {
    if !is_root() {
        eprintln!("skipped: running as another user needs root (setpriv)");
        return;
    }
    planted_links_stop_the_run_before_it_starts(As::Nobody);
}

#[test]
fn a_lock_path_holding_someone_elses_file_is_not_truncated() {
    let dir = shared_folder(As::Me);
    write(dir.path(), ".s.runjobs.lock", "not a lock\n");
    let output = run_as(As::Me, dir.path(), &["s.toml"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("did not write"),
        "{}",
        stderr(&output)
    );
    let kept = std::fs::read_to_string(dir.path().join(".s.runjobs.lock")).unwrap();
    assert_eq!(kept, "not a lock\n");
    assert!(!dir.path().join("ran.flag").exists());
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// A job named after its file writing `path`, whose items (inputs 1..=n) append to
/// `NAME.calls` and take `seconds`.
fn sharing_job(dir: &Path, name: &str, path: &str, n: u32, seconds: f64) -> std::path::PathBuf {
    write(
        dir,
        &format!("{name}.toml"),
        &format!(
            "workers = 1\n[output]\npath = \"{path}\"\n\
             [functions.f]\ncommand = [\"sh\", \"-c\", \"echo $1 >> {name}.calls; sleep {seconds}; echo {name}$1\", \"sh\", \"{{input}}\"]\n\
             [[task]]\nfunction = \"f\"\ninputs = {{ range = [1, {}] }}\n",
            n + 1
        ),
    )
}

/// Waits (up to 20 s) until `file` exists.
fn wait_for_file(file: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no {}",
            file.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Starts job `first` and, while it runs, `second`: the second must stop at once with exit 2,
/// naming the first job and its pid, and the first must finish with all its results in
/// `results` (relative to `dir`).
fn second_writer_is_refused(dir: &Path, first: &Path, second: &Path, results: &str) {
    let marker = marker("shared-output");
    let mut running = spawn_marked(first, None, &marker);
    wait_for_file(&dir.join("a.calls"));
    let output = runjobs().arg(second).output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("live run of another job"), "{err}");
    assert!(err.contains("job `a`"), "{err}");
    assert!(err.contains(&format!("pid {}", running.id())), "{err}");
    assert!(!dir.join("b.calls").exists(), "the second job ran an item");
    assert_eq!(running.wait().unwrap().code(), Some(0));
    let doc = read_json(&dir.join(results));
    assert_eq!(doc["job"], "a");
    assert_eq!(outputs(&doc, 0), ["a1", "a2", "a3"]);
    assert_eq!(
        wait_until_gone(&marker, std::time::Duration::from_secs(1)),
        Vec::<u32>::new()
    );
    // Once the first is done, the second may write there.
    let output = runjobs().arg(second).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn a_second_job_writing_the_same_results_stops_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = sharing_job(dir.path(), "a", "shared.json", 3, 0.6);
    let b = sharing_job(dir.path(), "b", "shared.json", 1, 0.0);
    second_writer_is_refused(dir.path(), &a, &b, "shared.json");
    assert_eq!(read_json(&dir.path().join("shared.json"))["job"], "b");
}

#[test]
fn a_second_job_sharing_the_latest_link_stops_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = sharing_job(dir.path(), "a", "out/{timestamp}.json", 3, 0.6);
    let b = sharing_job(dir.path(), "b", "out/{timestamp}.json", 1, 0.0);
    second_writer_is_refused(dir.path(), &a, &b, "out/latest.json");
    assert_eq!(read_json(&dir.path().join("out/latest.json"))["job"], "b");
}

#[test]
fn quiet_lists_failures_in_input_order_whatever_order_they_finish_in() {
    let dir = tempfile::tempdir().unwrap();
    // Input 0 takes a second on one worker while the other fails all the rest.
    let job = write(
        dir.path(),
        "late.toml",
        "workers = 2\n[output]\npath = \"r.json\"\n\
         [functions.f]\ncommand = [\"sh\", \"-c\", \"[ $1 = 0 ] && sleep 1; exit 3\", \"sh\", \"{input}\"]\n\
         [[task]]\nfunction = \"f\"\ninputs = { range = [0, 12] }\n\
         [[task]]\nname = \"again\"\nfunction = \"f\"\ninputs = [11, 10]\n",
    );
    let output = runjobs().arg("-q").arg(&job).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let listed: Vec<&str> = err
        .lines()
        .filter_map(|l| l.trim().strip_prefix("failed: "))
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("f[{i}]")).collect();
    assert_eq!(listed, expected, "{err}");
    assert!(err.contains("… and 4 more failures"), "{err}");
    // They did finish out of order: the results file says when each started.
    let doc = read_json(&dir.path().join("r.json"));
    let ends: Vec<f64> = results(&doc, 0)
        .iter()
        .map(|r| r["started_s"].as_f64().unwrap() + r["duration_s"].as_f64().unwrap())
        .collect();
    assert!(ends[11] < ends[0], "{ends:?}");
}
