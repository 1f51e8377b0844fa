//! Named crash points: a test hook for the crash tests (`tests/crash.rs`), which must stop
//! the till at exact moments of an order's life that a kill from outside cannot hit.
//!
//! When `QRTILL_CRASH_AT` names a point, the process aborts the moment it gets there
//! (`std::process::abort`: no destructor, flush or ledger close runs, just as after a
//! `kill -9`). It costs one environment read, at the first point reached; unset, or naming
//! no point, it is inert.
//!
//! Invariant: a point is placed where the process could die for real (a crash, a power
//! cut); it changes nothing about what happens when it does not fire.

use std::sync::OnceLock;

/// The environment variable that names the point to abort at.
pub const ENV: &str = "QRTILL_CRASH_AT";

/// The moments the till can be stopped at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The order's row is committed; its create request has not left.
    BeforeCreate,
    /// The create request was sent and answered; the answer is not applied.
    AfterCreateSent,
    /// A callback passed its signature check; the ledger is not written.
    CallbackBeforeLedger,
    /// A callback was written to the ledger; the provider has not had its answer.
    CallbackAfterLedger,
}

impl CrashPoint {
    /// The name `QRTILL_CRASH_AT` gives it.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::BeforeCreate => "before_create",
            CrashPoint::AfterCreateSent => "after_create_sent",
            CrashPoint::CallbackBeforeLedger => "in_callback_before_ledger",
            CrashPoint::CallbackAfterLedger => "in_callback_after_ledger",
        }
    }
}

/// Aborts the process when `QRTILL_CRASH_AT` names `point`; otherwise does nothing.
pub fn reached(point: CrashPoint) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var(ENV).ok());
    if armed.as_deref() == Some(point.name()) {
        // Said on stderr so that a test can tell this abort from any other failure.
        eprintln!("qrtill: crash point `{}` reached: aborting", point.name());
        std::process::abort();
    }
}
