//! openraft's type configuration and the mapping from node names to Raft ids.

use std::io::Cursor;

use sha2::{Digest, Sha256};

use crate::state::{Command, Reply};

/// Raft node id. Derived from the node's name (see [`node_id`]), so every member computes the
/// same ids from its own config whatever order the `[cluster] nodes` list is written in.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// tandem's Raft types: entries carry a [`Command`], apply returns a [`Reply`].
    pub TypeConfig:
        D = Command,
        R = Reply,
        NodeId = NodeId,
        Node = MemberNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A member as the Raft membership records it: its name, where its transport listens, and
/// whether it may hold VIPs. Carried in the log so that a member added with `tandem node add`
/// is known by name and address to every other member without a config change.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberNode {
    pub name: String,
    pub addr: String,
    pub role: MemberRole,
}

impl std::fmt::Display for MemberNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {:?})", self.name, self.addr, self.role)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    /// Votes and may hold VIPs.
    #[default]
    Voter,
    /// Votes, never holds a VIP.
    Arbiter,
}

/// The first 8 bytes of SHA-256 of the name, big-endian.
pub fn node_id(name: &str) -> NodeId {
    let digest = Sha256::digest(name.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(super::node_id("lb1"), super::node_id("lb1"));
        assert_ne!(super::node_id("lb1"), super::node_id("lb2"));
    }
}
