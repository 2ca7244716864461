//! The sandbox's own cost per child: spawn-to-exit of `true`, confined
//! against unconfined, measured in the same run (interleaved, so drift hits
//! both alike).
//!
//!     cargo bench --bench sandbox            # 300 rounds (RUNS=N to change)
//!     CASES=confined cargo bench --bench sandbox   # only some cases (for a profiler)
//!
//! Each round runs, through `process::run_captured` as the providers do:
//! - `bare`: a plain `Command` (today's path: a process group);
//! - `off`: `Policy::confine` with `mode = "off"` (environment scrubbed);
//! - `confined`: the default policy of a workspace (no network);
//! - `confined+net`: the same with `network = true` (no network namespace).
//!
//! "prepare" is `Policy::confine` alone (paths, work directory, Landlock
//! ruleset); "run" is spawn to exit; "total" both, which is what a step pays.
//! "cpu" is the processor time the round cost, ratchet's side and the
//! child's processes together (user + system, `getrusage`): unlike wall
//! time it does not grow when other work on the machine delays the child's
//! processes in the run queue, so both are shown, with the load average.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ratchet::process::run_captured;
use ratchet::sandbox::{Mode, Policy, probe};

fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(300);
    let support = probe();
    println!("machine: {support}");
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path().join("repo");
    for d in [".git", "config", "intents", "golden", "logs", ".ratchet", "src"] {
        std::fs::create_dir_all(root.join(d)).expect("the tree");
    }
    let workspace = ratchet::workspace::Workspace::at(&root, "");
    let policy = Policy::for_workspace(&workspace);
    let only = std::env::var("CASES").unwrap_or_default();
    let cases: Vec<(&str, Option<Policy>)> = [
        ("bare", None),
        ("off", Some(policy.clone().mode(Mode::Off))),
        ("confined", Some(policy.clone())),
        ("confined+net", Some(policy.clone().network(true))),
    ]
    .into_iter()
    .filter(|(name, _)| only.is_empty() || only.split(',').any(|o| o == *name))
    .collect();
    let mut prepare = vec![Vec::with_capacity(runs); cases.len()];
    let mut run = vec![Vec::with_capacity(runs); cases.len()];
    let mut total = vec![Vec::with_capacity(runs); cases.len()];
    let mut cpu = vec![Vec::with_capacity(runs); cases.len()];
    // Warm-up: the probe, the seccomp programs, the page cache.
    for (_, p) in &cases {
        for _ in 0..10 {
            one(&root, p.as_ref());
        }
    }
    for round in 0..runs {
        // A different case goes first in each round.
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            let p = &cases[i].1;
            let before = cpu_time();
            let (prep, ran) = one(&root, p.as_ref());
            cpu[i].push(cpu_time() - before);
            prepare[i].push(prep);
            run[i].push(ran);
            total[i].push(prep + ran);
        }
    }
    let bare = median(&mut total[0].clone());
    let bare_cpu = median(&mut cpu[0].clone());
    let peer = cases[0].0;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\n{runs} rounds; load average {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    println!(
        "milliseconds, median (p90); ratio and overhead of the median total, and of the median cpu, against {peer}\n"
    );
    println!(
        "{:<13} {:>15} {:>15} {:>15} {:>7} {:>8} {:>15} {:>7} {:>8}",
        "case", "prepare", "run", "total", "ratio", "+ms", "cpu", "ratio", "+ms"
    );
    for (i, (name, _)) in cases.iter().enumerate() {
        let t = median(&mut total[i]);
        let c = median(&mut cpu[i]);
        println!(
            "{:<13} {:>15} {:>15} {:>15} {:>6.2}x {:>+8.3} {:>15} {:>6.2}x {:>+8.3}",
            name,
            pair(&mut prepare[i]),
            pair(&mut run[i]),
            pair(&mut total[i]),
            t.as_secs_f64() / bare.as_secs_f64(),
            (t.as_secs_f64() - bare.as_secs_f64()) * 1e3,
            pair(&mut cpu[i]),
            c.as_secs_f64() / bare_cpu.as_secs_f64(),
            (c.as_secs_f64() - bare_cpu.as_secs_f64()) * 1e3,
        );
    }
}

/// One child: (prepare, spawn-to-exit).
fn one(root: &Path, policy: Option<&Policy>) -> (Duration, Duration) {
    let mut cmd = Command::new("/bin/true");
    cmd.current_dir(root);
    let start = Instant::now();
    let ended = match policy {
        None => {
            let prepared = start.elapsed();
            let c = run_captured(cmd, b"", Duration::from_secs(10), 1024).expect("true runs");
            (prepared, c)
        }
        Some(p) => {
            let confined = p.confine(cmd).expect("the sandbox is available");
            let prepared = start.elapsed();
            let c = run_captured(confined, b"", Duration::from_secs(10), 1024).expect("true runs");
            (prepared, c)
        }
    };
    assert!(ended.1.ended.success(), "{:?}", ended.1.ended);
    let all = start.elapsed();
    (ended.0, all - ended.0)
}

/// Processor time used so far by this process and its reaped children.
fn cpu_time() -> Duration {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let mut sum = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage fills the struct.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        sum += tv(u.ru_utime) + tv(u.ru_stime);
    }
    sum
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pair(v: &mut [Duration]) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!("{:.3} ({:.3})", ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]))
}
