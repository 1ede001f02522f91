//! The floor of a process per item in Rust, as a new user writes it: PAR threads, each
//! running `Command::new(PROG).args(ARGS).arg(ITEM)` for the next item with
//! `.status()`, or `.output()` with "capture" (stdout read to its end, the total printed).
//!
//!   spawn_loop_rs N PAR none|capture PROG [ARGS...]   (items are 1..N, appended last)
//!
//! Built by bench/run.sh with `rustc -O`.
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: {} N PAR none|capture PROG [ARGS...]", args[0]);
        std::process::exit(2);
    }
    let n: u64 = args[1].parse().expect("N");
    let par: usize = args[2].parse().expect("PAR");
    let capture = args[3] == "capture";
    let (prog, rest) = (&args[4], &args[5..]);
    let next = AtomicU64::new(1);
    let bytes = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..par {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i > n {
                    break;
                }
                let mut cmd = Command::new(prog);
                cmd.args(rest).arg(i.to_string()).stdin(Stdio::null());
                let ok = if capture {
                    let out = cmd.stderr(Stdio::inherit()).output().expect("spawn");
                    bytes.fetch_add(out.stdout.len() as u64, Ordering::Relaxed);
                    out.status.success()
                } else {
                    cmd.status().expect("spawn").success()
                };
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    if capture {
        println!("{} bytes captured", bytes.load(Ordering::Relaxed));
    }
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!("{failed} items failed");
        std::process::exit(1);
    }
}
