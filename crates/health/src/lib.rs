//! tandem's health checks: run TCP, HTTP(S) and script probes and decide, with keepalived's
//! rise/fall hysteresis, whether each check is up or down.
//!
//! Role: for every `[[check]]` of the config ([`CheckSpec`]), probe on its interval with its
//! timeout, feed each result to a sans-IO core ([`CheckState`]) that applies rise/fall, report
//! every status change as a [`HealthEvent`], and keep a [`CheckStatus`] snapshot of every
//! check for `tandem status`. What a check's status *means* (a fault, a priority change via
//! `track_check`) is the daemon's policy, not this crate's.
//!
//! Layers, in the style of the rest of tandem:
//! * [`state`]: [`CheckState`], plain data fed with `Instant`s and [`Outcome`]s; the rise/fall
//!   rules and the start-to-start schedule, unit-tested to the edge cases.
//! * [`probe`]: one probe of each kind, bounded by its timeout ([`Probe::run`]).
//! * [`runner`]: the tokio shell ([`HealthRunner::spawn`]): one task per check, an event
//!   channel, and a [`HealthView`] to read snapshots from any task.
//!
//! Must never:
//! * change VRRP state (or any ownership state) itself: it only reports;
//! * block the daemon's loop: probes run on their own tasks, a hung probe is cancelled and
//!   counts as failed at its timeout, and probes of one check never overlap;
//! * leave a child process behind: a script runs in its own process group, and that whole
//!   group is killed with SIGKILL when the script exits, when it times out, and when the
//!   runner is stopped; the script itself is always reaped.

#![forbid(unsafe_code)]

pub mod probe;
pub mod runner;
pub mod spec;
pub mod state;

pub use crate::probe::{Probe, ProbeError};
pub use crate::runner::{CheckStatus, HealthEvent, HealthHandle, HealthRunner, HealthView};
pub use crate::spec::{CheckKind, CheckSpec, HttpCheck, ScriptCheck, SpecError, TcpCheck};
pub use crate::state::{CheckState, Outcome, Status, Transition};
