//! The options any level may set: durations, retries, the working folder, limits.

use super::*;

impl Resolver<'_> {
    /// The options one level sets, parsed and checked; `at` is where that level is written
    /// (`[]` for the job, `["functions", NAME]`, `["task", INDEX]`).
    pub(super) fn options(&mut self, at: &[&str], o: OptionsDef<'_>) -> Options {
        Options {
            timeout: o
                .timeout
                .and_then(|t| self.positive_duration(&sub(at, "timeout"), t)),
            retry: o.retries.and_then(|r| self.retry(&sub(at, "retries"), r)),
            kill_grace: o
                .kill_grace
                .and_then(|t| self.duration(&sub(at, "kill_grace"), t)),
            env: o.env.cloned().unwrap_or_default(),
            cwd: o.cwd.and_then(|c| self.cwd(&sub(at, "cwd"), c)),
            limits: o
                .limits
                .map(|l| self.limits(&sub(at, "limits"), l))
                .unwrap_or_default(),
            max_items_per_worker: o.max_items_per_worker,
            fingerprint: o.fingerprint,
            input: o.input,
        }
    }

    pub(super) fn duration(&mut self, at: &[&str], text: &str) -> Option<Duration> {
        // The schema's `duration` format is this same parser, so this fails only if they drift.
        match humantime::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                let msg = format!("invalid duration `{text}`: {e}");
                self.push(at, At::Value, msg, None);
                None
            }
        }
    }

    /// A duration that must not be zero (a timeout or deadline of zero stops everything
    /// before it starts).
    pub(super) fn positive_duration(&mut self, at: &[&str], text: &str) -> Option<Duration> {
        let d = self.duration(at, text)?;
        if d.is_zero() {
            let key = at.last().copied().unwrap_or("duration");
            let msg = format!("`{key}` of zero: every item would be stopped before it starts");
            let help = "use a duration such as `500ms`, `10s` or `2m`, or leave the key out";
            self.push(at, At::Value, msg, Some(help.into()));
            return None;
        }
        Some(d)
    }

    pub(super) fn retry(&mut self, at: &[&str], def: &RetriesDef) -> Option<RetryPolicy> {
        let t = match def {
            RetriesDef::Count(n) => return Some(RetryPolicy::count(*n)),
            RetriesDef::Table(t) => t,
        };
        let delay = match &t.delay {
            Some(d) => self.duration(&sub(at, "delay"), d)?,
            None => Duration::ZERO,
        };
        let max_delay = match &t.max_delay {
            Some(m) => self.duration(&sub(at, "max_delay"), m)?,
            // A lone `delay = "1m"` means a minute, not the default cap of 30s.
            None => delay.max(DEFAULT_MAX_DELAY),
        };
        let mut ok = true;
        if delay > max_delay {
            let msg = format!(
                "`delay` ({}) is longer than `max_delay` ({})",
                humantime::format_duration(delay),
                humantime::format_duration(max_delay)
            );
            let help = "the wait between attempts never exceeds `max_delay`; raise it or lower \
                        `delay`";
            self.push(&sub(at, "delay"), At::Value, msg, Some(help.into()));
            ok = false;
        }
        let mut on = Vec::new();
        for (i, entry) in t.on.iter().flatten().enumerate() {
            match retry_on(entry) {
                Ok(kind) if on.contains(&kind) => {}
                Ok(kind) => on.push(kind),
                Err((msg, help)) => {
                    let idx = i.to_string();
                    self.push(&[at, &["on", &idx]].concat(), At::Value, msg, Some(help));
                    ok = false;
                }
            }
        }
        let backoff = match t.backoff {
            Some(BackoffDef::Exponential) => Backoff::Exponential,
            Some(BackoffDef::Fixed) | None => Backoff::Fixed,
        };
        ok.then_some(RetryPolicy {
            count: t.count,
            backoff,
            delay,
            max_delay,
            on,
        })
    }

    /// `cwd`, resolved against the job's folder; it must be a folder we can enter.
    pub(super) fn cwd(&mut self, at: &[&str], written: &str) -> Option<PathBuf> {
        let path = join(&self.dir, written);
        let problem = match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => match access(&path, Access::EXEC_OK) {
                Ok(()) => return Some(path),
                Err(e) => format!("cannot be entered: {e}"),
            },
            Ok(_) => "is a file, not a folder".to_string(),
            Err(e) if e.kind() == ErrorKind::NotFound => "does not exist".to_string(),
            Err(e) => format!("cannot be used: {e}"),
        };
        let msg = format!("`cwd` folder `{written}` {problem}");
        let help = format!("looked at `{}`; {RELATIVE_HELP}", path.display());
        self.push(at, At::Value, msg, Some(help));
        None
    }

    pub(super) fn limits(&mut self, at: &[&str], l: &LimitsDef) -> Limits {
        let memory = l.memory.as_deref().and_then(|m| match memory_limit(m) {
            Ok(bytes) => Some(bytes),
            // The schema's `memory-limit` format is this same check.
            Err(why) => {
                let msg = format!("invalid memory limit `{m}`: {why}");
                self.push(&sub(at, "memory"), At::Value, msg, None);
                None
            }
        });
        let cpu = l.cpu.as_deref().and_then(|c| {
            let d = self.duration(&sub(at, "cpu"), c)?;
            // setrlimit counts whole seconds; round up so "1500ms" still allows 1.5 s.
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            if secs == 0 {
                let msg = format!("the `cpu` limit must be at least 1s, not `{c}`");
                let help = "the CPU-time limit counts whole seconds (rounded up); 0 would kill \
                            every process at once";
                self.push(&sub(at, "cpu"), At::Value, msg, Some(help.into()));
            }
            (secs > 0).then_some(secs)
        });
        Limits {
            memory,
            cpu,
            open_files: l.open_files,
        }
    }
}

/// One entry of `retries.on`, or (message, help).
pub(super) fn retry_on(entry: &str) -> Result<RetryOn, (String, String)> {
    match entry {
        "timeout" => return Ok(RetryOn::Timeout),
        "crash" => return Ok(RetryOn::Crash),
        "error" => return Ok(RetryOn::Error),
        _ => {}
    }
    if let Some(code) = entry.strip_prefix("exit:") {
        let digits = !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit());
        return match code.parse::<u8>() {
            Ok(n) if digits => Ok(RetryOn::Exit(i32::from(n))),
            _ => Err((
                format!("`{entry}` does not name an exit code from 0 to 255"),
                format!("write the code after `exit:`, e.g. `exit:75`; {RETRY_ON_HELP}"),
            )),
        };
    }
    let msg = format!("unknown failure kind `{entry}` in `on`");
    let help = if entry.starts_with("exit") {
        format!("write an exit code as `exit:N`, e.g. `exit:75`; {RETRY_ON_HELP}")
    } else {
        match did_you_mean(entry, RETRY_ON) {
            Some(d) => format!("{d} ({RETRY_ON_HELP})"),
            None => RETRY_ON_HELP.to_string(),
        }
    };
    Err((msg, help))
}
