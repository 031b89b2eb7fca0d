//! Sans-IO VRRP: the wire codec for VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798) and the
//! RFC 5798 state machine of one virtual router instance.
//!
//! Role: turn bytes + packet metadata + `Instant` into state changes, and state changes into
//! [`Action`]s and a next deadline. The daemon runtime owns sockets and clocks.
//!
//! This crate must never open a socket, read a clock, spawn a thread or touch tokio: every
//! input, including the current time, comes in as an argument. That is what lets the tests
//! walk the RFC's state descriptions case by case on a simulated clock.

pub mod instance;
pub mod wire;

pub use instance::{Action, Counters, DropReason, Instance, InstanceConfig, State};
pub use wire::{Auth, DecodeError, EmitError, Family, Version};
