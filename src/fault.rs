//! The test-only fault hook: `RATCHET_TEST_FAULT=<point>` makes the process
//! kill itself with SIGKILL at that point (of a step, of the telemetry
//! outbox, of the agents API), so that tests can prove recovery from each
//! one. Every module that has a crash point calls [`fault`]; it lives apart
//! from `step` so that modules below the step need not name it.

/// The variable that names the point to die at.
pub const FAULT_ENV: &str = "RATCHET_TEST_FAULT";

/// Kills the process at `point` when the fault hook names it.
pub fn fault(point: &str) {
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == point) {
        let me = rustix::process::getpid();
        let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; this is never reached.
        std::process::abort();
    }
}
