//! tandem's daemon runtime: the thin, single-owner event loop that wires the sans-IO cores
//! (`tandem-vrrp`) to the I/O shells (`tandem-netio`) and serves the control socket.
//!
//! Role: move bytes and deadlines between sockets, timers and cores, execute the actions the
//! cores return, and report state. One thread (the VRRP loop) owns all protocol state;
//! nothing else mutates it.
//!
//! Must never: make a protocol decision itself (that belongs in a sans-IO core), block the
//! event loop on anything but the short netlink / socket operations an action needs, or let
//! a malformed packet or control request panic the process.

mod changes;
pub mod control;
mod deadline;
mod events;
pub mod fencing;
mod membership;
mod notify;
mod pair_fence;
mod quorum;
mod runtime;
pub mod status;
pub mod tracking;

pub use runtime::{run, RunOptions};
