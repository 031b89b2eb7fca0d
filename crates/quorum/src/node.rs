//! One running member: the openraft node, its transport, the lease driver and the
//! coordinator, on a thread of their own.
//!
//! The Raft node gets its own thread and single-threaded runtime so that an fsync of the log
//! or a slow peer never delays the daemon's VRRP loop; the two talk over channels. What the
//! daemon needs to act on is one value, [`QuorumView`], published on a watch channel: for
//! every group its holder and, for groups this node holds, until when the lease is valid by
//! this node's monotonic clock. The daemon enforces that deadline itself.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, Raft, ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::coordinator::{Coordinator, LeaseTiming};
use crate::net::{
    self, Handler, MembershipChange, NetCounters, Network, Peer, ProposeError, Rpc, RpcReply,
};
use crate::state::{Command, FenceRecord, FenceStage, GroupReport, Reply};
use crate::store::{self, Applied};
use crate::types::{node_id, MemberNode, MemberRole, NodeId, TypeConfig};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Where its Raft transport listens.
    pub addr: SocketAddr,
    pub role: MemberRole,
}

/// Everything the quorum layer needs, taken from the validated config by the daemon.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub me: String,
    pub cluster_name: String,
    pub members: Vec<Member>,
    pub state_dir: PathBuf,
    pub key: Vec<u8>,
    pub timing: LeaseTiming,
    /// Fences a silent holder of a `fence_on_takeover` group when this node leads; without
    /// one such a fence fails (and is recorded as failed), so the group does not move.
    pub fencer: Option<Arc<dyn Fencer>>,
    /// `unfence = "auto"`: when a node this leader fenced is heard again, switch its devices
    /// on (it holds no lease, so it cannot take a VIP back by itself).
    pub unfence_auto: bool,
    /// Joining a running cluster (`tandem run --join`): with an empty store, wait to be added
    /// with `tandem node add` instead of bootstrapping from `members`.
    pub join: bool,
}

/// The daemon's fencing, as the coordinator uses it: switch `node` off through its fencing
/// levels and say whether that was verified.
pub trait Fencer: std::fmt::Debug + Send + Sync + 'static {
    fn fence(&self, node: String) -> Pin<Box<dyn Future<Output = FenceOutcome> + Send>>;
    /// Switch `node`'s devices on again (`unfence = "auto"`).
    fn unfence(&self, node: String) -> Pin<Box<dyn Future<Output = FenceOutcome> + Send>>;
}

/// The end of one fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceOutcome {
    /// The node was read back as off.
    pub verified: bool,
    /// One line: which level and devices, or why every level failed. No secrets.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] store::OpenError),
    #[error("{name} is not a member of [cluster] nodes")]
    NotAMember { name: String },
    #[error("cannot listen for Raft on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("Raft did not start: {0}")]
    Raft(String),
}

/// One group as this node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GroupView {
    pub holder: Option<String>,
    pub epoch: u64,
    pub releasing_to: Option<String>,
    pub preferred: Option<String>,
    pub renewals: u64,
    /// Set only for a group this node holds: the end of its lease by our monotonic clock
    /// (send time of the last committed renewal + lease − margin).
    #[serde(skip)]
    pub held_until: Option<Instant>,
}

/// A member for status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberView {
    pub name: String,
    pub role: MemberRole,
    pub standby: bool,
    /// Raft voter in the current membership config.
    pub voter: bool,
}

/// Every group as this node sees it: what the daemon's loop acts on. Published only when
/// it changes (a grant, a move, a renewal of ours), so the VRRP loop is not woken by Raft
/// heartbeats.
pub type Leases = BTreeMap<String, GroupView>;

/// What `tandem status` shows of the quorum layer, computed when asked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuorumView {
    pub state: String,
    pub term: u64,
    pub leader: Option<String>,
    /// Whether this node is connected to a majority (leader: acked by a quorum within the
    /// election timeout; follower: has a leader).
    pub quorum: bool,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub members: Vec<MemberView>,
    pub groups: Leases,
    pub fence_history: Vec<FenceRecord>,
    pub rpc: BTreeMap<String, u64>,
    /// Commit latency of this node's last successful lease renewals (at most 4096, oldest
    /// first), in microseconds: from sending the `Renew` (to our own Raft when we lead, else
    /// forwarded to the leader) to its committed reply. Empty on a node that has renewed
    /// nothing. For the benchmark (`scripts/bench`).
    pub renew_latency_us: Vec<u64>,
}

/// How many renewal latencies [`QuorumView::renew_latency_us`] keeps.
const RENEW_LATENCY_SAMPLES: usize = 4096;

/// The last `cap` durations in microseconds, oldest first; the oldest is dropped when full.
#[derive(Debug)]
struct LatencyRing {
    cap: usize,
    samples: VecDeque<u64>,
}

impl LatencyRing {
    fn new(cap: usize) -> LatencyRing {
        LatencyRing {
            cap,
            samples: VecDeque::with_capacity(cap),
        }
    }

    fn push(&mut self, d: Duration) {
        if self.samples.len() == self.cap {
            self.samples.pop_front();
        }
        self.samples
            .push_back(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    fn to_vec(&self) -> Vec<u64> {
        self.samples.iter().copied().collect()
    }
}

/// An operator or daemon request to the quorum layer.
#[derive(Debug, Clone)]
pub enum Op {
    Standby {
        node: String,
        standby: bool,
    },
    Prefer {
        group: String,
        node: Option<String>,
    },
    /// The daemon removed the VIPs of `group`: give up the lease of `epoch`.
    Release {
        group: String,
        epoch: u64,
    },
    RecordFence(FenceRecord),
    /// Add or remove a member (`tandem node add|remove`).
    Membership(MembershipChange),
}

/// The daemon's side. Cheap to clone.
#[derive(Clone)]
pub struct QuorumHandle {
    shared: Arc<Shared>,
    leases: watch::Receiver<Arc<Leases>>,
    reports: Arc<watch::Sender<BTreeMap<String, GroupReport>>>,
    ops: mpsc::Sender<(Op, oneshot::Sender<OpResult>)>,
}

/// A committed operation's place in the log (index, term), or why it did not commit.
pub type OpResult = Result<(u64, u64), String>;

impl QuorumHandle {
    /// The groups and our leases, for the event loop.
    pub fn leases(&self) -> watch::Receiver<Arc<Leases>> {
        self.leases.clone()
    }

    /// Raft state, members, leases and counters, for `tandem status`.
    pub fn status(&self) -> QuorumView {
        self.shared.status()
    }

    /// This node's groups and effective priorities (sent to the leader every renew
    /// interval; logged when they change).
    pub fn set_reports(&self, groups: BTreeMap<String, GroupReport>) {
        self.reports.send_if_modified(|cur| {
            if *cur == groups {
                false
            } else {
                *cur = groups;
                true
            }
        });
    }

    /// Runs `op` through the log (forwarded to the leader); `Err` says why it did not commit.
    pub async fn op(&self, op: Op) -> OpResult {
        let (tx, rx) = oneshot::channel();
        self.ops
            .send((op, tx))
            .await
            .map_err(|_| "the quorum layer has stopped".to_string())?;
        rx.await
            .unwrap_or_else(|_| Err("the quorum layer has stopped".to_string()))
    }
}

/// Starts the member on its own thread; returns once the store is open and the transport
/// listens, or with why not.
pub struct QuorumNode;

impl QuorumNode {
    pub fn start(cfg: QuorumConfig) -> Result<QuorumHandle, StartError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tandem-raft".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StartError::Raft(e.to_string())));
                        return;
                    }
                };
                rt.block_on(async move {
                    match boot(cfg).await {
                        Ok((handle, shared, ops_rx)) => {
                            let _ = ready_tx.send(Ok(handle));
                            run(shared, ops_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| StartError::Raft(e.to_string()))?;
        match ready_rx.recv() {
            Ok(r) => r,
            Err(_) => {
                let _ = thread.join();
                Err(StartError::Raft("the Raft thread exited".into()))
            }
        }
    }
}

struct Shared {
    cfg: QuorumConfig,
    raft: Raft<TypeConfig>,
    sm: watch::Receiver<Arc<Applied>>,
    commit_index: store::CommitIndex,
    coordinator: Mutex<Coordinator>,
    /// Per group we hold: (epoch, lease end).
    held: Mutex<BTreeMap<String, (u64, Instant)>>,
    peers: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<Peer>>>>,
    key: Arc<[u8]>,
    counters: Arc<NetCounters>,
    reports: watch::Receiver<BTreeMap<String, GroupReport>>,
    leases: watch::Sender<Arc<Leases>>,
    /// Our held leases changed (a renewal committed): republish.
    held_changed: Notify,
    /// Commit latencies of our successful renewals (`QuorumView::renew_latency_us`).
    renew_latency: Mutex<LatencyRing>,
    /// This process, drawn at start: a leader that fenced us tells our restart from our old
    /// process talking again by it.
    incarnation: u64,
}

type Boot = (
    QuorumHandle,
    Arc<Shared>,
    mpsc::Receiver<(Op, oneshot::Sender<OpResult>)>,
);

async fn boot(cfg: QuorumConfig) -> Result<Boot, StartError> {
    let me = cfg
        .members
        .iter()
        .find(|m| m.name == cfg.me)
        .cloned()
        .ok_or_else(|| StartError::NotAMember {
            name: cfg.me.clone(),
        })?;
    let (log, sm) = store::open(&cfg.state_dir)?;
    let sm_rx = sm.subscribe();
    let commit_index = log.commit_index();
    let listener = TcpListener::bind(me.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: me.addr,
            source,
        })?;
    let key: Arc<[u8]> = Arc::from(cfg.key.as_slice());
    // A leader change must fit inside one lease with room to spare: a member that comes
    // back from isolation with a higher term deposes the leader (openraft 0.9 has no
    // pre-vote), and the holder's renewals stall until the next leader is elected. With
    // elections at lease/8..lease/4 a leader change costs well under half the holder's
    // lease − margin, so the holder keeps its VIP through it.
    let election = (cfg.timing.lease.as_millis() / 8).clamp(100, 2000) as u64;
    let raft_config = openraft::Config {
        cluster_name: cfg.cluster_name.clone(),
        heartbeat_interval: (election / 3).max(20),
        election_timeout_min: election,
        election_timeout_max: election * 2,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(500),
        max_in_snapshot_log_to_keep: 50,
        ..Default::default()
    }
    .validate()
    .map_err(|e| StartError::Raft(e.to_string()))?;
    let raft = Raft::new(
        node_id(&cfg.me),
        Arc::new(raft_config),
        Network::new(key.clone()),
        log,
        sm,
    )
    .await
    .map_err(|e| StartError::Raft(e.to_string()))?;
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    if !initialized && cfg.join {
        tracing::info!("raft: empty store, joining: waiting to be added with `tandem node add`");
    } else if !initialized {
        // Every member bootstraps with the same membership from its config; openraft
        // accepts that on every node of an empty cluster. A node added later must not do
        // this (its membership would differ from the cluster's at the same log index): it
        // starts with `join`.
        let members: BTreeMap<NodeId, MemberNode> = cfg
            .members
            .iter()
            .map(|m| {
                let node = MemberNode {
                    name: m.name.clone(),
                    addr: m.addr.to_string(),
                    role: m.role,
                };
                (node_id(&m.name), node)
            })
            .collect();
        if let Err(e) = raft.initialize(members).await {
            tracing::info!(error = %e, "raft: not initialising (another member did first)");
        }
    }
    let (reports_tx, reports_rx) = watch::channel(BTreeMap::new());
    let (leases_tx, leases_rx) = watch::channel(Arc::new(Leases::new()));
    let (ops_tx, ops_rx) = mpsc::channel(64);
    let counters = Arc::new(NetCounters::default());
    let shared = Arc::new(Shared {
        coordinator: Mutex::new(Coordinator::new(cfg.me.clone(), cfg.timing)),
        cfg,
        raft,
        sm: sm_rx,
        commit_index,
        held: Mutex::new(BTreeMap::new()),
        peers: Mutex::new(HashMap::new()),
        key: key.clone(),
        counters: counters.clone(),
        reports: reports_rx,
        leases: leases_tx,
        held_changed: Notify::new(),
        renew_latency: Mutex::new(LatencyRing::new(RENEW_LATENCY_SAMPLES)),
        incarnation: new_incarnation()?,
    });
    tokio::spawn(net::serve(
        listener,
        key,
        counters,
        Arc::new(Server(shared.clone())),
    ));
    let handle = QuorumHandle {
        shared: shared.clone(),
        leases: leases_rx,
        reports: Arc::new(reports_tx),
        ops: ops_tx,
    };
    Ok((handle, shared, ops_rx))
}

/// How long `tandem node add` waits for the new member to catch up before it is made a voter.
const CATCH_UP: Duration = Duration::from_secs(20);

/// Fewest voters `tandem node remove` leaves: with two, one failure stops every lease.
const MIN_VOTERS: usize = 3;

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, MemberNode>>) -> ProposeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ProposeError::NotLeader {
            leader: f.leader_id,
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ProposeError::Failed(e.to_string())
        }
        e => ProposeError::Failed(e.to_string()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// A member of the current Raft membership (voter or learner).
    fn member(&self, id: NodeId) -> Option<MemberNode> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .cloned()
    }

    fn name(&self, id: NodeId) -> String {
        self.member(id)
            .map(|m| m.name)
            .or_else(|| {
                let m = self.cfg.members.iter().find(|m| node_id(&m.name) == id)?;
                Some(m.name.clone())
            })
            .unwrap_or_else(|| format!("#{id}"))
    }

    /// Per-RPC deadline for proposals and reports: short enough that a renewal stuck on a
    /// dead leader is given up before the next one is due.
    fn rpc_timeout(&self) -> Duration {
        (self.cfg.timing.renew / 2).max(Duration::from_millis(50))
    }

    /// The connection to a member for proposals and reports; its address comes from the
    /// Raft membership, so members added since our config was written are reachable.
    fn peer(&self, id: NodeId) -> Option<Arc<tokio::sync::Mutex<Peer>>> {
        let addr: SocketAddr = self.member(id)?.addr.parse().ok()?;
        let mut peers = lock(&self.peers);
        let peer = peers.entry(id).or_insert_with(|| {
            Arc::new(tokio::sync::Mutex::new(Peer::new(addr, self.key.clone())))
        });
        Some(peer.clone())
    }

    /// Proposes `cmd` locally, without forwarding (the transport's Propose handler).
    async fn propose_local(&self, cmd: Command) -> Result<Reply, ProposeError> {
        // A leader cut off from the majority does not learn it at once and its writes never
        // commit: give up after a lease rather than stall the renewals and the coordinator.
        let write =
            tokio::time::timeout(self.cfg.timing.lease, self.raft.client_write(cmd.clone()));
        let Ok(result) = write.await else {
            return Err(ProposeError::Failed(format!(
                "not committed within {:?}",
                self.cfg.timing.lease
            )));
        };
        match result {
            Ok(resp) => {
                if resp.data.is_ok() {
                    self.committed(&cmd);
                }
                Ok(resp.data)
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader {
                    leader: f.leader_id,
                })
            }
            Err(e) => Err(ProposeError::Failed(e.to_string())),
        }
    }

    /// Proposes `cmd` here if we lead, else through the leader.
    async fn propose(&self, cmd: Command) -> Result<Reply, ProposeError> {
        match self.propose_local(cmd.clone()).await {
            Err(ProposeError::NotLeader {
                leader: Some(leader),
            }) if leader != node_id(&self.cfg.me) => {
                let peer = self.peer(leader).ok_or_else(|| {
                    ProposeError::Failed(format!("leader {} is not in the config", leader))
                })?;
                let mut peer = peer.lock().await;
                match peer.call(&Rpc::Propose(cmd), self.rpc_timeout()).await {
                    Ok(RpcReply::Propose(r)) => r,
                    Ok(_) => Err(ProposeError::Failed("reply of the wrong kind".into())),
                    Err(e) => Err(ProposeError::Failed(format!(
                        "leader {}: {e}",
                        self.name(leader)
                    ))),
                }
            }
            other => other,
        }
    }

    /// Makes a membership change here if we lead, else through the leader.
    async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<(u64, u64), ProposeError> {
        match self.change_membership_local(change.clone()).await {
            Err(ProposeError::NotLeader {
                leader: Some(leader),
            }) if leader != node_id(&self.cfg.me) => {
                let addr: SocketAddr = self
                    .member(leader)
                    .and_then(|m| m.addr.parse().ok())
                    .ok_or_else(|| {
                        ProposeError::Failed(format!("leader #{leader} has no address"))
                    })?;
                // A connection of its own: the change may take as long as the new member
                // needs to catch up, and the shared one carries our renewals meanwhile.
                let mut peer = Peer::new(addr, self.key.clone());
                let timeout = CATCH_UP + self.cfg.timing.lease;
                match peer.call(&Rpc::Membership(change), timeout).await {
                    Ok(RpcReply::Membership(r)) => r,
                    Ok(_) => Err(ProposeError::Failed("reply of the wrong kind".into())),
                    Err(e) => Err(ProposeError::Failed(format!(
                        "leader {}: {e}",
                        self.name(leader)
                    ))),
                }
            }
            other => other,
        }
    }

    /// The membership change on the leader (the transport's Membership handler).
    async fn change_membership_local(
        &self,
        change: MembershipChange,
    ) -> Result<(u64, u64), ProposeError> {
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let membership = membership.membership();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        let result = match change {
            MembershipChange::Add { name, addr, role } => {
                let id = node_id(&name);
                if voters.contains(&id) {
                    return Err(ProposeError::Failed(format!("{name} is already a voter")));
                }
                // openraft keeps a known node's address when it is added again: a corrected
                // address after a failed add must go through a removal first.
                if let Some(known) = membership.get_node(&id).filter(|n| n.addr != addr) {
                    return Err(ProposeError::Failed(format!(
                        "{name} is already a learner at {}: `tandem node remove {name}` first to \
                         give it another address",
                        known.addr
                    )));
                }
                if let Some((_, other)) = membership
                    .nodes()
                    .find(|(nid, n)| **nid != id && n.addr == addr)
                {
                    return Err(ProposeError::Failed(format!(
                        "{addr} is already the address of {}",
                        other.name
                    )));
                }
                let node = MemberNode {
                    name: name.clone(),
                    addr,
                    role,
                };
                // As a learner first: it copies the log without counting towards the
                // quorum, so a new member that is slow or not yet running cannot stall
                // commits; only once it has caught up does it become a voter.
                let learner = tokio::time::timeout(CATCH_UP, self.raft.add_learner(id, node, true));
                match learner.await {
                    Err(_) => {
                        return Err(ProposeError::Failed(format!(
                            "{name} is a learner now but did not catch up within {CATCH_UP:?}: \
                             is `tandem run --join` running on it? Run `tandem node add` again \
                             once it is"
                        )))
                    }
                    Ok(r) => r.map_err(write_error)?,
                };
                let voters = ChangeMembers::AddVoterIds([id].into());
                self.raft.change_membership(voters, false).await
            }
            MembershipChange::Remove { name } => {
                let id = node_id(&name);
                if membership.get_node(&id).is_none() {
                    return Err(ProposeError::Failed(format!("no member is named {name}")));
                }
                let applied = self.sm.borrow().clone();
                let state = &applied.state;
                if let Some(g) = state
                    .groups()
                    .into_iter()
                    .find(|g| state.lease(g).holder.as_deref() == Some(name.as_str()))
                {
                    return Err(ProposeError::Failed(format!(
                        "{name} holds the lease of {g}: run `tandem standby {name}` and wait \
                         for the group to move before removing it"
                    )));
                }
                if voters.contains(&id) {
                    let left = voters.len() - 1;
                    if left < MIN_VOTERS {
                        return Err(ProposeError::Failed(format!(
                            "removing {name} would leave {left} voters; quorum mode needs at \
                             least {MIN_VOTERS}"
                        )));
                    }
                    let change = ChangeMembers::RemoveVoters([id].into());
                    self.raft.change_membership(change, false).await
                } else {
                    let change = ChangeMembers::RemoveNodes([id].into());
                    self.raft.change_membership(change, false).await
                }
            }
        };
        let resp = result.map_err(write_error)?;
        lock(&self.coordinator).forget_absent(&self.member_names());
        Ok((resp.log_id.index, resp.log_id.leader_id.term))
    }

    /// The names of the current Raft membership (voters and learners).
    fn member_names(&self) -> Vec<String> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership()
            .nodes()
            .map(|(_, n)| n.name.clone())
            .collect()
    }

    /// Whether `name` is a voter of the newest configuration, as the state machine's lease
    /// check counts it.
    fn is_voter(&self, name: &str) -> bool {
        let m = self.raft.metrics().borrow().membership_config.clone();
        store::newest_voter(m.membership(), name) == Some(true)
    }

    /// The leader committed `cmd`: feed the coordinator's clock.
    fn committed(&self, cmd: &Command) {
        let now = Instant::now();
        match cmd {
            Command::Renew { group, holder, .. } | Command::Grant { group, holder, .. } => {
                lock(&self.coordinator).renewed(group, holder, now);
            }
            _ => {}
        }
    }

    /// Every group from the applied state, with our lease end where we hold it.
    fn leases(&self, state: &crate::state::ClusterState) -> Leases {
        let held = lock(&self.held);
        state
            .groups()
            .into_iter()
            .map(|g| {
                let lease = state.lease(&g);
                let mine = lease.holder.as_deref() == Some(self.cfg.me.as_str())
                    && lease.releasing_to.is_none();
                let held_until = held
                    .get(&g)
                    .filter(|(epoch, _)| mine && *epoch == lease.epoch)
                    .map(|(_, until)| *until);
                let view = GroupView {
                    holder: lease.holder,
                    epoch: lease.epoch,
                    releasing_to: lease.releasing_to,
                    preferred: state.preferred.get(&g).cloned(),
                    renewals: lease.renewals,
                    held_until,
                };
                (g, view)
            })
            .collect()
    }

    /// Publishes the leases if they changed. The renewal count is left out: it changes with
    /// every renewal in the cluster and the event loop has no use for it (status has it).
    fn publish_leases(&self) {
        let applied = self.sm.borrow().clone();
        let mut leases = self.leases(&applied.state);
        for g in leases.values_mut() {
            g.renewals = 0;
        }
        self.leases.send_if_modified(|cur| {
            if **cur == leases {
                false
            } else {
                *cur = Arc::new(leases);
                true
            }
        });
    }

    fn status(&self) -> QuorumView {
        let m = self.raft.metrics().borrow().clone();
        let applied = self.sm.borrow().clone();
        let state = &applied.state;
        let leader_quorum = m.state == ServerState::Leader
            && m.millis_since_quorum_ack
                .is_some_and(|ms| u128::from(ms) < self.cfg.timing.lease.as_millis());
        let voters: Vec<NodeId> = m.membership_config.voter_ids().collect();
        let mut view = QuorumView {
            state: format!("{:?}", m.state),
            term: m.current_term,
            leader: m.current_leader.map(|id| self.name(id)),
            quorum: leader_quorum
                || (m.state == ServerState::Follower && m.current_leader.is_some()),
            last_log_index: m.last_log_index,
            commit_index: self.commit_index.get(),
            applied_index: m.last_applied.map(|l| l.index),
            members: m
                .membership_config
                .membership()
                .nodes()
                .map(|(id, mem)| MemberView {
                    name: mem.name.clone(),
                    role: mem.role,
                    standby: state.members.get(&mem.name).is_some_and(|s| s.standby),
                    voter: voters.contains(id),
                })
                .collect::<Vec<_>>(),
            groups: self.leases(state),
            fence_history: state.fence_history.clone(),
            rpc: self
                .counters
                .snapshot()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            renew_latency_us: lock(&self.renew_latency).to_vec(),
        };
        view.members.sort_by(|a, b| a.name.cmp(&b.name));
        view
    }
}

struct Server(Arc<Shared>);

impl Handler for Server {
    fn handle(&self, rpc: Rpc) -> Pin<Box<dyn Future<Output = RpcReply> + Send + '_>> {
        Box::pin(async move {
            let s = &self.0;
            match rpc {
                Rpc::AppendEntries(req) => {
                    RpcReply::AppendEntries(s.raft.append_entries(req).await)
                }
                Rpc::Vote(req) => RpcReply::Vote(s.raft.vote(req).await),
                Rpc::InstallSnapshot(req) => {
                    RpcReply::InstallSnapshot(s.raft.install_snapshot(req).await)
                }
                Rpc::Propose(cmd) => RpcReply::Propose(s.propose_local(cmd).await),
                Rpc::Membership(change) => {
                    RpcReply::Membership(s.change_membership_local(change).await)
                }
                Rpc::Report {
                    node,
                    incarnation,
                    groups,
                } => {
                    if !s.is_voter(&node) {
                        // A removed node that still runs must not be granted anything.
                        return RpcReply::Report(Err(ProposeError::Failed(format!(
                            "{node} is not a voter"
                        ))));
                    }
                    let mut c = lock(&s.coordinator);
                    if c.is_leader() {
                        c.reported(&node, incarnation, groups, Instant::now());
                        RpcReply::Report(Ok(()))
                    } else {
                        RpcReply::Report(Err(ProposeError::NotLeader {
                            leader: s.raft.metrics().borrow().current_leader,
                        }))
                    }
                }
            }
        })
    }
}

/// The member's background work, until the process exits.
async fn run(shared: Arc<Shared>, mut ops: mpsc::Receiver<(Op, oneshot::Sender<OpResult>)>) {
    tokio::spawn(renew_leases(shared.clone()));
    tokio::spawn(report(shared.clone()));
    tokio::spawn(coordinate(shared.clone()));
    tokio::spawn(publish(shared.clone()));
    while let Some((op, reply)) = ops.recv().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let cmd = match op {
                Op::Membership(change) => {
                    let r = shared.change_membership(change).await;
                    let _ = reply.send(r.map_err(|e| e.to_string()));
                    return;
                }
                Op::Standby { node, standby } => Command::SetStandby { node, standby },
                Op::Prefer { group, node } => Command::Prefer { group, node },
                Op::Release { group, epoch } => Command::Release {
                    group,
                    holder: shared.cfg.me.clone(),
                    epoch,
                },
                Op::RecordFence(r) => Command::Fence(r),
            };
            let r = match shared.propose(cmd).await {
                Ok(r) => match r.rejected {
                    None => Ok((r.index, r.term)),
                    Some(why) => Err(why),
                },
                Err(e) => Err(e.to_string()),
            };
            let _ = reply.send(r);
        });
    }
}

/// Renews the leases this node holds, each every `lease_renew`, at once after a grant, and
/// soon again after a failure. Sleeps while it holds nothing.
async fn renew_leases(s: Arc<Shared>) {
    let timing = s.cfg.timing;
    let mut sm = s.sm.clone();
    // Per group we hold: (epoch, when its next renewal is due).
    let mut next: BTreeMap<String, (u64, Instant)> = BTreeMap::new();
    loop {
        let applied = sm.borrow_and_update().clone();
        let state = &applied.state;
        let me = Some(s.cfg.me.as_str());
        // Drop at once what the log says we no longer hold.
        lock(&s.held).retain(|g, (epoch, _)| {
            let l = state.lease(g);
            l.holder.as_deref() == me && l.epoch == *epoch && l.releasing_to.is_none()
        });
        next.retain(|g, _| {
            let l = state.lease(g);
            l.holder.as_deref() == me && l.releasing_to.is_none()
        });
        for g in state.groups() {
            let l = state.lease(&g);
            if l.holder.as_deref() != me || l.releasing_to.is_some() {
                continue;
            }
            let now = Instant::now();
            let due = next
                .get(&g)
                .is_none_or(|(epoch, at)| *epoch != l.epoch || now >= *at);
            if !due {
                continue;
            }
            next.insert(g.clone(), (l.epoch, now + timing.renew));
            let cmd = Command::Renew {
                group: g.clone(),
                holder: s.cfg.me.clone(),
                epoch: l.epoch,
            };
            match s.propose(cmd).await {
                Ok(r) if r.is_ok() => {
                    // `now` is the send time: this is the renewal's commit latency.
                    lock(&s.renew_latency).push(now.elapsed());
                    let until = now + timing.holder_validity();
                    let mut held = lock(&s.held);
                    let entry = held.entry(g.clone()).or_insert((l.epoch, until));
                    if entry.0 != l.epoch || entry.1 < until {
                        *entry = (l.epoch, until);
                    }
                    drop(held);
                    s.held_changed.notify_one();
                }
                Ok(r) => {
                    tracing::debug!(group = %g, reason = ?r.rejected, "raft: renewal rejected")
                }
                Err(e) => {
                    // Most likely a leader change: try again soon rather than a whole renew
                    // interval later, so that the lease survives an election.
                    tracing::debug!(group = %g, error = %e, "raft: renewal failed");
                    let retry = (timing.renew / 8).max(Duration::from_millis(10));
                    next.insert(g.clone(), (l.epoch, Instant::now() + retry));
                }
            }
        }
        let wake = next.values().map(|(_, at)| *at).min();
        tokio::select! {
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now).into()), if wake.is_some() => {}
            r = sm.changed() => if r.is_err() { return },
        }
    }
}

/// Sends this node's groups to the leader every renew interval.
async fn report(s: Arc<Shared>) {
    let mut tick = tokio::time::interval(s.cfg.timing.renew);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reports = s.reports.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = reports.changed() => if r.is_err() { return },
        }
        let groups = reports.borrow_and_update().clone();
        let leader = s.raft.metrics().borrow().current_leader;
        let Some(leader) = leader else { continue };
        if leader == node_id(&s.cfg.me) {
            lock(&s.coordinator).reported(&s.cfg.me, s.incarnation, groups, Instant::now());
            continue;
        }
        let Some(peer) = s.peer(leader) else { continue };
        let rpc = Rpc::Report {
            node: s.cfg.me.clone(),
            incarnation: s.incarnation,
            groups,
        };
        let r = peer.lock().await.call(&rpc, s.rpc_timeout()).await;
        if let Err(e) = r {
            tracing::debug!(leader = %s.name(leader), error = %e, "raft: report failed");
        }
    }
}

/// Follows this node's leadership (the coordinator counts leases from its election) and,
/// while leading, proposes what the coordinator decides. A follower only waits.
async fn coordinate(s: Arc<Shared>) {
    let mut metrics = s.raft.metrics();
    let mut leading_term = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (state, term) = {
            let m = metrics.borrow_and_update();
            (m.state, m.current_term)
        };
        let leading = (state == ServerState::Leader).then_some(term);
        if leading != leading_term {
            let mut c = lock(&s.coordinator);
            match leading {
                Some(t) => {
                    tracing::info!(
                        term = t,
                        "raft: this node is the leader; leases are counted from now"
                    );
                    c.become_leader(Instant::now());
                    c.learn_fences(&s.sm.borrow().state);
                }
                None => c.step_down(),
            }
            leading_term = leading;
        }
        if leading.is_none() {
            if metrics.changed().await.is_err() {
                return;
            }
            continue;
        }
        let applied = s.sm.borrow().clone();
        let due = lock(&s.coordinator).fences_due(&applied.state, Instant::now());
        for (node, why) in due {
            tokio::spawn(fence(s.clone(), node, why));
        }
        for node in lock(&s.coordinator).take_unfence_due() {
            if s.cfg.unfence_auto {
                tokio::spawn(unfence(s.clone(), node));
            } else {
                tracing::info!(%node, "raft: the fenced node is back; unfence = \"manual\": its devices stay as they are");
            }
        }
        for node in lock(&s.coordinator).take_fence_defied() {
            tracing::warn!(%node, "raft: the fenced node is heard again from the process that was running when it was fenced (its devices were switched on by hand, or the fence cut it off without stopping it): no automatic unfence; a new silence fences it again");
        }
        let cmds = lock(&s.coordinator).decide(&applied.state, Instant::now());
        for cmd in cmds {
            tracing::info!(?cmd, "raft: coordinator proposes");
            match s.propose_local(cmd).await {
                Ok(r) if !r.is_ok() => {
                    tracing::info!(reason = ?r.rejected, "raft: coordinator proposal rejected")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::info!(error = %e, "raft: coordinator proposal failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tick.tick() => {}
            r = metrics.changed() => if r.is_err() { return },
        }
    }
}

/// Fences `node` for the coordinator: the attempt is committed to the log first (no record,
/// no fence), then the fencer runs, then its result is committed and handed to the
/// coordinator, which reassigns the node's groups on a verified fence.
async fn fence(s: Arc<Shared>, node: String, why: String) {
    tracing::warn!(%node, reason = %why, "raft: fencing");
    let process = lock(&s.coordinator).fenced_process(&node);
    let record = |ok: bool, detail: String, stage: FenceStage| {
        Command::Fence(FenceRecord {
            at_unix_ms: unix_ms(),
            node: node.clone(),
            by: s.cfg.me.clone(),
            action: "off".into(),
            ok,
            detail,
            stage,
            process,
        })
    };
    if let Err(e) = s
        .propose_local(record(false, why.clone(), FenceStage::Attempt))
        .await
    {
        tracing::warn!(%node, error = %e, "raft: fence not started: its attempt was not recorded");
        lock(&s.coordinator).fence_done(&node, false, Instant::now());
        return;
    }
    let outcome = match &s.cfg.fencer {
        Some(f) => f.fence(node.clone()).await,
        None => FenceOutcome {
            verified: false,
            detail: format!("{} has no fencing configured", s.cfg.me),
        },
    };
    if outcome.verified {
        tracing::warn!(%node, detail = %outcome.detail, "raft: fenced (verified)");
    } else {
        tracing::error!(%node, detail = %outcome.detail, "raft: fencing failed; its groups stay where they are");
    }
    let result = record(outcome.verified, outcome.detail, FenceStage::Result);
    if let Err(e) = s.propose_local(result).await {
        tracing::warn!(%node, error = %e, "raft: the fence result was not recorded");
    }
    lock(&s.coordinator).fence_done(&node, outcome.verified, Instant::now());
}

/// `unfence = "auto"`: switches a node we fenced back on once it is heard again, and records
/// the result.
async fn unfence(s: Arc<Shared>, node: String) {
    tracing::warn!(%node, "raft: the fenced node is back: switching its devices on (unfence = \"auto\")");
    let outcome = match &s.cfg.fencer {
        Some(f) => f.unfence(node.clone()).await,
        None => FenceOutcome {
            verified: false,
            detail: format!("{} has no fencing configured", s.cfg.me),
        },
    };
    let record = Command::Fence(FenceRecord {
        at_unix_ms: unix_ms(),
        node: node.clone(),
        by: s.cfg.me.clone(),
        action: "on".into(),
        ok: outcome.verified,
        detail: outcome.detail,
        stage: FenceStage::Result,
        process: None,
    });
    if let Err(e) = s.propose_local(record).await {
        tracing::warn!(%node, error = %e, "raft: the unfence result was not recorded");
    }
}

/// A random process id: a leader that fenced this node compares the one in our reports with
/// the one it saw before the fence.
fn new_incarnation() -> Result<u64, StartError> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b)
        .map_err(|e| StartError::Raft(format!("drawing the process incarnation: {e}")))?;
    Ok(u64::from_le_bytes(b))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Publishes the leases whenever the applied state or our held leases change.
async fn publish(s: Arc<Shared>) {
    let mut sm = s.sm.clone();
    loop {
        sm.borrow_and_update();
        s.publish_leases();
        tokio::select! {
            _ = s.held_changed.notified() => {}
            r = sm.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_ring_keeps_the_last_samples_in_microseconds() {
        let mut r = LatencyRing::new(3);
        assert!(r.to_vec().is_empty());
        for ms in 1..=5 {
            r.push(Duration::from_millis(ms));
        }
        assert_eq!(r.to_vec(), vec![3000, 4000, 5000]);
        r.push(Duration::from_nanos(1999));
        assert_eq!(r.to_vec(), vec![4000, 5000, 1]);
    }
}
