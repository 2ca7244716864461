//! Ctrl-C while a step runs: the first one cancels a model call in flight
//! (the step then ends `failed` with `provider_cancelled`, its tokens
//! counted, and is logged like any other); a second one exits at once with
//! status 130, as an interrupted program does (the next command finishes
//! the step from its crash journal).

use crate::propose::provider::Cancel;

/// A cancellation flag that the first Ctrl-C (SIGINT) sets.
pub fn cancel_on_ctrl_c() -> Cancel {
    let cancel = Cancel::default();
    let flag = cancel.flag();
    // Order matters: the conditional exit sees the flag as it was before
    // this signal, so it fires only on the second Ctrl-C.
    let _ = signal_hook::flag::register_conditional_shutdown(signal_hook::consts::SIGINT, 130, flag.clone());
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, flag);
    cancel
}
