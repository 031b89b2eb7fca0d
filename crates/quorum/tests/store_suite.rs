//! openraft's own storage conformance suite against the redb store: log state, vote,
//! truncation, purge, apply, membership and snapshots, each on a fresh database.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use tandem_quorum::store::{self, LogStore, StateMachine};
use tandem_quorum::{NodeId, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (log, sm) = store::open(dir.path()).expect("a fresh store opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("the store passes openraft's suite");
}
