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
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

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
