//! tandem's quorum layer: an openraft node whose log and state machine live in a redb
//! database under `state_dir`, an authenticated TCP transport between members, and the VIP
//! lease coordinator that runs on the leader.
//!
//! Its role: decide, through the replicated log, which node holds each `quorum` group, and
//! tell the daemon until when its own leases are valid. It must never touch a network
//! interface or a VIP (the daemon does that from the lease it is shown), never read a clock
//! inside apply, and never acknowledge a log entry that is not on disk.

pub mod coordinator;
pub mod net;
pub mod node;
pub mod state;
pub mod store;
pub mod types;

pub use coordinator::{Coordinator, LeaseTiming};
pub use node::{
    FenceOutcome, Fencer, GroupView, Leases, Member, QuorumConfig, QuorumHandle, QuorumNode,
    QuorumView, StartError,
};
pub use state::{ClusterState, Command, FenceRecord, FenceStage, GroupReport, Lease, Reply};
pub use types::{node_id, MemberNode, MemberRole, NodeId, TypeConfig};
