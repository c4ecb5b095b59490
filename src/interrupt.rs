//! SIGINT and SIGTERM: the first asks the run to stop cleanly, the second aborts at once.
//!
//! [`install`] starts a thread that waits for the signals (signal-hook's self-pipe: nothing
//! runs inside the signal handler but a write). The first signal is recorded, and the training
//! loop polls [`requested`] after every step and every evaluation batch: it finishes the step,
//! writes the checkpoint of the last finished epoch, marks the run folder `interrupted` and
//! exits with [`Signal::exit_code`] (130 or 143, the shell's 128 + signal number). A second
//! signal removes every temporary file the process has open and exits at once with the same
//! code, without waiting for the step.
//!
//! Before [`install`] is called (every verb but the training ones) the signals keep their
//! default action.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// A stop request: which signal asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM (`kill`, Slurm's preemption notice, a Kubernetes eviction).
    Term,
}

impl Signal {
    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        }
    }

    /// The exit code of a process stopped by this signal: 128 + its number.
    pub fn exit_code(self) -> i32 {
        128 + self.number()
    }

    fn number(self) -> i32 {
        match self {
            Signal::Int => SIGINT,
            Signal::Term => SIGTERM,
        }
    }

    fn from_number(n: i32) -> Option<Signal> {
        match n {
            SIGINT => Some(Signal::Int),
            SIGTERM => Some(Signal::Term),
            _ => None,
        }
    }
}

/// The first signal received (its number), 0 for none.
static REQUESTED: AtomicI32 = AtomicI32::new(0);

/// Routes SIGINT and SIGTERM to the stop request from now on. Idempotent. When the handler
/// cannot be installed (a sandbox without signals), a warning is printed and the signals keep
/// their default action.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut signals = match Signals::new([SIGINT, SIGTERM]) {
            Ok(s) => s,
            Err(e) => {
                crate::ewriteln!(
                    "warning: cannot handle SIGINT/SIGTERM ({e}): an interrupted run will not \
                     write its checkpoint"
                );
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("runner-signals".into())
            .spawn(move || {
                for n in signals.forever() {
                    let Some(signal) = Signal::from_number(n) else {
                        continue;
                    };
                    if REQUESTED
                        .compare_exchange(0, n, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        crate::ewriteln!(
                            "\nrunner: {} received: finishing the current step, then writing the \
                             checkpoint (a second signal aborts at once)",
                            signal.name()
                        );
                    } else {
                        crate::ewriteln!(
                            "\nrunner: second signal ({}): aborting now",
                            signal.name()
                        );
                        let first = Signal::from_number(REQUESTED.load(Ordering::SeqCst));
                        crate::report::abort(first.unwrap_or(signal).exit_code());
                    }
                }
            });
        if let Err(e) = spawned {
            crate::ewriteln!("warning: cannot start the signal thread ({e})");
        }
    });
}

/// The signal that asked the run to stop, if any.
pub fn requested() -> Option<Signal> {
    Signal::from_number(REQUESTED.load(Ordering::SeqCst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_shells() {
        assert_eq!(Signal::Int.exit_code(), 130);
        assert_eq!(Signal::Term.exit_code(), 143);
        assert_eq!(Signal::from_number(SIGTERM), Some(Signal::Term));
        assert_eq!(Signal::from_number(9), None);
    }
}
