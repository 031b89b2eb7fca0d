//! The Raft log, vote and state machine on disk, in one redb database under `state_dir`.
//!
//! redb is a pure-Rust embedded store with ACID write transactions; a transaction committed
//! with `Durability::Immediate` is fsynced before `commit` returns. That is the rule openraft
//! needs: the vote and appended entries are acknowledged only once they are on disk, and
//! they are written in order because every write is one transaction on one thread.
//!
//! The state machine is written with `Durability::None` (no fsync of its own): the next
//! log or vote write makes it durable, and if a crash loses it the node re-applies the
//! committed log on restart, which is deterministic.

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, Membership, RaftLogReader, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::state::{ClusterState, Command, Reply};
use crate::types::{node_id, MemberNode, NodeId, TypeConfig};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_PURGED: &str = "last_purged";
const KEY_SM: &str = "state_machine";
const KEY_SNAPSHOT: &str = "snapshot";

/// The file inside `state_dir`.
pub const DB_FILE: &str = "raft.redb";

type StoreResult<T> = Result<T, StorageError<NodeId>>;

fn any(e: impl std::fmt::Display) -> AnyError {
    AnyError::error(e.to_string())
}

/// Errors opening the store (before Raft runs).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the Raft store {path}: {detail}")]
    Db { path: String, detail: String },
}

/// Opens (or creates) the database in `state_dir`.
pub fn open(state_dir: &Path) -> Result<(LogStore, StateMachine), OpenError> {
    std::fs::create_dir_all(state_dir).map_err(|source| OpenError::Dir {
        path: state_dir.display().to_string(),
        source,
    })?;
    let path = state_dir.join(DB_FILE);
    let db_err = |e: &dyn std::fmt::Display| OpenError::Db {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let db = Database::create(&path).map_err(|e| db_err(&e))?;
    // Create the tables once so that read transactions never meet a missing table.
    let txn = db.begin_write().map_err(|e| db_err(&e))?;
    txn.open_table(LOG).map_err(|e| db_err(&e))?;
    txn.open_table(META).map_err(|e| db_err(&e))?;
    txn.commit().map_err(|e| db_err(&e))?;
    let db = Arc::new(db);
    let sm = StateMachine::load(db.clone()).map_err(|e| db_err(&e))?;
    let committed = Arc::new(AtomicU64::new(NOT_COMMITTED));
    Ok((LogStore { db, committed }, sm))
}

const NOT_COMMITTED: u64 = u64::MAX;

/// The Raft log and vote. Cheap to clone (the log reader is a clone).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    /// The last committed index openraft told us, for status (openraft 0.9's metrics do not
    /// carry it).
    committed: Arc<AtomicU64>,
}

/// Reads the commit index a [`LogStore`] was last told, from any thread.
#[derive(Clone)]
pub struct CommitIndex(Arc<AtomicU64>);

impl CommitIndex {
    pub fn get(&self) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            NOT_COMMITTED => None,
            i => Some(i),
        }
    }
}

impl LogStore {
    pub fn commit_index(&self) -> CommitIndex {
        CommitIndex(self.committed.clone())
    }

    fn get_meta<T: for<'a> Deserialize<'a>>(&self, key: &str) -> Result<Option<T>, AnyError> {
        let txn = self.db.begin_read().map_err(any)?;
        let table = txn.open_table(META).map_err(any)?;
        match table.get(key).map_err(any)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(any)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), AnyError> {
        let bytes = serde_json::to_vec(value).map_err(any)?;
        let mut txn = self.db.begin_write().map_err(any)?;
        txn.set_durability(Durability::Immediate);
        {
            let mut table = txn.open_table(META).map_err(any)?;
            table.insert(key, bytes.as_slice()).map_err(any)?;
        }
        txn.commit().map_err(any)
    }

    /// Removes log entries in `range` (and records `purged` when purging).
    fn delete_range(
        &self,
        range: impl RangeBounds<u64>,
        purged: Option<&LogId<NodeId>>,
    ) -> Result<(), AnyError> {
        let mut txn = self.db.begin_write().map_err(any)?;
        txn.set_durability(Durability::Immediate);
        {
            let mut table = txn.open_table(LOG).map_err(any)?;
            let keys: Vec<u64> = table
                .range(range)
                .map_err(any)?
                .map(|kv| kv.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()
                .map_err(any)?;
            for k in keys {
                table.remove(k).map_err(any)?;
            }
            if let Some(p) = purged {
                let mut meta = txn.open_table(META).map_err(any)?;
                let bytes = serde_json::to_vec(p).map_err(any)?;
                meta.insert(KEY_PURGED, bytes.as_slice()).map_err(any)?;
            }
        }
        txn.commit().map_err(any)
    }

    /// Every entry in the log, for tests and the durability check.
    pub fn entries(&self) -> Result<Vec<Entry<TypeConfig>>, AnyError> {
        self.read_range(..)
    }

    fn read_range(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry<TypeConfig>>, AnyError> {
        let txn = self.db.begin_read().map_err(any)?;
        let table = txn.open_table(LOG).map_err(any)?;
        let mut out = Vec::new();
        for kv in table.range(range).map_err(any)? {
            let (_, v) = kv.map_err(any)?;
            out.push(serde_json::from_slice(v.value()).map_err(any)?);
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<Entry<TypeConfig>>> {
        let range = (
            clone_bound(range.start_bound()),
            clone_bound(range.end_bound()),
        );
        self.read_range(range)
            .map_err(|e| StorageIOError::read_logs(e).into())
    }
}

fn clone_bound(b: Bound<&u64>) -> Bound<u64> {
    match b {
        Bound::Included(x) => Bound::Included(*x),
        Bound::Excluded(x) => Bound::Excluded(*x),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StoreResult<LogState<TypeConfig>> {
        let read = || -> Result<_, AnyError> {
            let purged: Option<LogId<NodeId>> = self.get_meta(KEY_PURGED)?;
            let txn = self.db.begin_read().map_err(any)?;
            let table = txn.open_table(LOG).map_err(any)?;
            let last = match table.last().map_err(any)? {
                Some((_, v)) => {
                    let e: Entry<TypeConfig> = serde_json::from_slice(v.value()).map_err(any)?;
                    Some(e.log_id)
                }
                None => purged,
            };
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last,
            })
        };
        read().map_err(|e| StorageIOError::read_logs(e).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StoreResult<()> {
        self.put_meta(KEY_VOTE, vote)
            .map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> StoreResult<Option<Vote<NodeId>>> {
        self.get_meta(KEY_VOTE)
            .map_err(|e| StorageIOError::read_vote(e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StoreResult<()> {
        self.put_meta(KEY_COMMITTED, &committed)
            .map_err(StorageIOError::write)?;
        self.committed.store(
            committed.map_or(NOT_COMMITTED, |c| c.index),
            Ordering::Relaxed,
        );
        Ok(())
    }

    async fn read_committed(&mut self) -> StoreResult<Option<LogId<NodeId>>> {
        self.get_meta::<Option<LogId<NodeId>>>(KEY_COMMITTED)
            .map(Option::flatten)
            .map_err(|e| StorageIOError::read(e).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StoreResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let write = || -> Result<(), AnyError> {
            let mut txn = self.db.begin_write().map_err(any)?;
            txn.set_durability(Durability::Immediate);
            {
                let mut table = txn.open_table(LOG).map_err(any)?;
                for entry in entries {
                    let bytes = serde_json::to_vec(&entry).map_err(any)?;
                    table
                        .insert(entry.log_id.index, bytes.as_slice())
                        .map_err(any)?;
                }
            }
            txn.commit().map_err(any)
        };
        // The commit above has fsynced: only now may openraft count the entries as stored.
        match write() {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        self.delete_range(log_id.index.., None)
            .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        self.delete_range(..=log_id.index, Some(&log_id))
            .map_err(|e| StorageIOError::write_logs(e).into())
    }
}

/// What is persisted of the state machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied {
    pub last_applied: Option<LogId<NodeId>>,
    pub last_membership: StoredMembership<NodeId, crate::types::MemberNode>,
    pub state: ClusterState,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, crate::types::MemberNode>,
    data: Vec<u8>,
}

/// The state machine. Every apply publishes the new state on a watch channel for the lease
/// driver and the daemon.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    applied: Arc<Mutex<Applied>>,
    published: watch::Sender<Arc<Applied>>,
}

impl StateMachine {
    fn load(db: Arc<Database>) -> Result<StateMachine, AnyError> {
        let applied: Applied = {
            let txn = db.begin_read().map_err(any)?;
            let table = txn.open_table(META).map_err(any)?;
            match table.get(KEY_SM).map_err(any)? {
                Some(v) => serde_json::from_slice(v.value()).map_err(any)?,
                None => Applied::default(),
            }
        };
        let (published, _) = watch::channel(Arc::new(applied.clone()));
        Ok(StateMachine {
            db,
            applied: Arc::new(Mutex::new(applied)),
            published,
        })
    }

    /// A receiver of every applied state.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Applied>> {
        self.published.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Applied> {
        // Apply never panics while holding the lock, so poisoning cannot happen; recover the
        // data anyway rather than take the daemon down.
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(
        &self,
        applied: &Applied,
        snapshot: Option<&StoredSnapshot>,
    ) -> Result<(), AnyError> {
        let bytes = serde_json::to_vec(applied).map_err(any)?;
        let mut txn = self.db.begin_write().map_err(any)?;
        txn.set_durability(if snapshot.is_some() {
            Durability::Immediate
        } else {
            Durability::None
        });
        {
            let mut meta = txn.open_table(META).map_err(any)?;
            meta.insert(KEY_SM, bytes.as_slice()).map_err(any)?;
            if let Some(s) = snapshot {
                let bytes = serde_json::to_vec(s).map_err(any)?;
                meta.insert(KEY_SNAPSHOT, bytes.as_slice()).map_err(any)?;
            }
        }
        txn.commit().map_err(any)
    }

    fn publish(&self, applied: &Applied) {
        self.published.send_replace(Arc::new(applied.clone()));
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<TypeConfig>> {
        let applied = self.lock().clone();
        let data = serde_json::to_vec(&applied.state)
            .map_err(|e| StorageIOError::read_state_machine(any(e)))?;
        let snapshot_id = match &applied.last_applied {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.last_membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        self.persist(&applied, Some(&stored))
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// Whether `name` is a voter of the newest configuration of `m` (the last of a joint
/// configuration: a node being removed stops counting from the joint configuration on);
/// `None` before any membership.
pub(crate) fn newest_voter(m: &Membership<NodeId, MemberNode>, name: &str) -> Option<bool> {
    let newest = m.get_joint_config().last()?;
    Some(newest.contains(&node_id(name)))
}

/// A lease granted or renewed for a node that is not a voter of the newest membership (in
/// log order, so every member decides alike) is refused: a node being removed (`tandem node
/// remove`, from the joint configuration on) must not be handed a group during the change or
/// keep one after it. A lease it got just before the change then runs out, as a silent
/// holder's does, and the group is reassigned. Before the first membership entry there is
/// nothing to check against.
fn refuse_leaving_holder(cmd: &Command, m: &Membership<NodeId, MemberNode>) -> Option<Reply> {
    let (Command::Grant { group, holder, .. } | Command::Renew { group, holder, .. }) = cmd else {
        return None;
    };
    if newest_voter(m, holder)? {
        return None;
    }
    Some(Reply::no(format!(
        "{holder} is not a voter of the newest membership: no lease of {group} for it"
    )))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> StoreResult<(
        Option<LogId<NodeId>>,
        StoredMembership<NodeId, crate::types::MemberNode>,
    )> {
        let a = self.lock();
        Ok((a.last_applied, a.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StoreResult<Vec<Reply>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        let snapshot = {
            let mut a = self.lock();
            for entry in entries {
                a.last_applied = Some(entry.log_id);
                let mut reply = match entry.payload {
                    EntryPayload::Blank => Reply::default(),
                    EntryPayload::Normal(cmd) => {
                        match refuse_leaving_holder(&cmd, a.last_membership.membership()) {
                            Some(no) => no,
                            None => a.state.apply(&cmd),
                        }
                    }
                    EntryPayload::Membership(m) => {
                        a.last_membership = StoredMembership::new(Some(entry.log_id), m);
                        Reply::default()
                    }
                };
                reply.index = entry.log_id.index;
                reply.term = entry.log_id.leader_id.term;
                replies.push(reply);
            }
            a.clone()
        };
        self.persist(&snapshot, None)
            .map_err(StorageIOError::write_state_machine)?;
        self.publish(&snapshot);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, crate::types::MemberNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StoreResult<()> {
        let data = snapshot.into_inner();
        let state: ClusterState = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any(e)))?;
        let applied = Applied {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
            state,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.persist(&applied, Some(&stored))
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        *self.lock() = applied.clone();
        self.publish(&applied);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<TypeConfig>>> {
        let read = || -> Result<Option<StoredSnapshot>, AnyError> {
            let txn = self.db.begin_read().map_err(any)?;
            let table = txn.open_table(META).map_err(any)?;
            match table.get(KEY_SNAPSHOT).map_err(any)? {
                Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(any)?)),
                None => Ok(None),
            }
        };
        let stored = read().map_err(|e| StorageIOError::read_snapshot(None, e))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// What [`inspect`] found.
#[derive(Debug, Serialize)]
pub struct Inspected {
    pub committed: Option<LogId<NodeId>>,
    pub entries: Vec<Entry<TypeConfig>>,
    pub applied: Applied,
}

/// Read-only view of a store on disk, for `tandem` diagnostics and the durability tests:
/// the committed log id, the entries and the applied state.
pub fn inspect(state_dir: &Path) -> Result<Inspected, OpenError> {
    let (log, sm) = open(state_dir)?;
    let err = |e: AnyError| OpenError::Db {
        path: state_dir.join(DB_FILE).display().to_string(),
        detail: e.to_string(),
    };
    let committed: Option<Option<LogId<NodeId>>> = log.get_meta(KEY_COMMITTED).map_err(err)?;
    let entries = log.entries().map_err(err)?;
    let applied = sm.lock().clone();
    Ok(Inspected {
        committed: committed.flatten(),
        entries,
        applied,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn ids(names: &[&str]) -> BTreeSet<NodeId> {
        names.iter().map(|n| node_id(n)).collect()
    }

    fn grant(holder: &str) -> Command {
        Command::Grant {
            group: "VI_1".into(),
            holder: holder.into(),
            epoch: 1,
        }
    }

    fn renew(holder: &str) -> Command {
        Command::Renew {
            group: "VI_1".into(),
            holder: holder.into(),
            epoch: 1,
        }
    }

    #[test]
    fn a_node_being_removed_gets_no_lease() {
        let uniform = Membership::<NodeId, MemberNode>::new(vec![ids(&["a", "b", "c"])], ());
        for cmd in [grant("c"), renew("c")] {
            assert!(refuse_leaving_holder(&cmd, &uniform).is_none(), "{cmd:?}");
        }
        // `tandem node remove c`: the joint configuration, then the new one.
        let joint = Membership::<NodeId, MemberNode>::new(
            vec![ids(&["a", "b", "c"]), ids(&["a", "b"])],
            (),
        );
        let after = Membership::<NodeId, MemberNode>::new(vec![ids(&["a", "b"])], ());
        for m in [&joint, &after] {
            for cmd in [grant("c"), renew("c")] {
                let no = refuse_leaving_holder(&cmd, m).expect("refused");
                assert!(no.rejected.unwrap().contains("c is not a voter"));
            }
            assert!(refuse_leaving_holder(&grant("a"), m).is_none());
        }
        // Letting go and everything else stays open to it.
        let release = Command::Release {
            group: "VI_1".into(),
            holder: "c".into(),
            epoch: 1,
        };
        assert!(refuse_leaving_holder(&release, &after).is_none());
    }

    /// A node being added is a voter of the newest configuration as soon as the joint one
    /// is in the log; a learner (not yet a voter) is not.
    #[test]
    fn a_node_being_added_may_hold_once_it_is_a_voter() {
        let learner = Membership::<NodeId, MemberNode>::new(vec![ids(&["a", "b"])], ids(&["d"]));
        assert!(refuse_leaving_holder(&grant("d"), &learner).is_some());
        let joint = Membership::<NodeId, MemberNode>::new(
            vec![ids(&["a", "b"]), ids(&["a", "b", "d"])],
            (),
        );
        assert!(refuse_leaving_holder(&grant("d"), &joint).is_none());
    }

    #[test]
    fn nothing_is_checked_before_the_first_membership() {
        let none = Membership::<NodeId, MemberNode>::default();
        assert!(refuse_leaving_holder(&grant("x"), &none).is_none());
    }
}
