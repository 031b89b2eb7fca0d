//! The Raft transport: request/response frames over TCP, every frame MACed with the cluster
//! key.
//!
//! Written here rather than taken from a crate because openraft leaves the transport to the
//! application and what we need is small: a framed request/response stream with a shared-key
//! MAC. TLS would need a PKI the operator does not have; the cluster key already exists.
//!
//! A connection starts with the server sending a random 16-byte nonce. Each frame is
//! `len (u32 BE) | payload (JSON) | HMAC-SHA256(key, "tandem-raft" | nonce | seq | dir | payload)`
//! where `seq` counts the frames of the connection from 1 and `dir` is 0 for requests, 1 for
//! replies. The nonce binds every frame to its connection and the sequence number to its
//! place in it, so a recorded frame replayed on another connection, or twice on the same one,
//! fails the MAC. A frame that fails is counted and the connection closed; nothing in it is
//! looked at.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::state::{Command, GroupReport, Reply};
use crate::types::{MemberNode, MemberRole, NodeId, TypeConfig};

/// Largest payload accepted (openraft sends snapshots in chunks well below this).
pub const MAX_FRAME: usize = 16 << 20;
const NONCE_LEN: usize = 16;
const MAC_LEN: usize = 32;
const DOMAIN: &[u8] = b"tandem-raft";

type HmacSha256 = Hmac<Sha256>;

/// A request between members.
#[derive(Debug, Serialize, Deserialize)]
pub enum Rpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A command for the leader to propose on the sender's behalf.
    Propose(Command),
    /// A voter's groups and priorities, for the leader's coordinator (not logged unless they
    /// changed).
    Report {
        node: String,
        /// The sender's process, drawn at its start.
        incarnation: u64,
        groups: std::collections::BTreeMap<String, GroupReport>,
    },
    /// A membership change (`tandem node add|remove`) for the leader to make.
    Membership(MembershipChange),
}

/// A change of the Raft membership, asked for by an operator on any member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add `name` as a learner, wait until it has caught up, then make it a voter.
    Add {
        name: String,
        addr: String,
        role: MemberRole,
    },
    /// Remove `name` (it must hold no lease).
    Remove { name: String },
}

/// Why a proposal forwarded to another node did not commit.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcReply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Propose(Result<Reply, ProposeError>),
    Report(Result<(), ProposeError>),
    /// The (index, term) of the committed membership entry.
    Membership(Result<(u64, u64), ProposeError>),
}

/// Counters of the server side (what others sent us).
#[derive(Debug, Default)]
pub struct NetCounters {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    /// Frames whose MAC did not verify (wrong key, forged, replayed).
    pub bad_auth: AtomicU64,
    /// Frames that verified but did not parse, or were larger than [`MAX_FRAME`].
    pub malformed: AtomicU64,
}

impl NetCounters {
    pub fn snapshot(&self) -> [(&'static str, u64); 4] {
        [
            ("connections", self.connections.load(Ordering::Relaxed)),
            ("requests", self.requests.load(Ordering::Relaxed)),
            ("bad_auth", self.bad_auth.load(Ordering::Relaxed)),
            ("malformed", self.malformed.load(Ordering::Relaxed)),
        ]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("frame of {0} bytes is larger than the limit")]
    TooLarge(usize),
    #[error("frame failed authentication")]
    BadAuth,
    #[error("frame did not parse: {0}")]
    Malformed(String),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
}

fn mac_state(key: &[u8], nonce: &[u8; NONCE_LEN], seq: u64, dir: u8, payload: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(DOMAIN);
    m.update(nonce);
    m.update(&seq.to_be_bytes());
    m.update(&[dir]);
    m.update(payload);
    m
}

fn mac(key: &[u8], nonce: &[u8; NONCE_LEN], seq: u64, dir: u8, payload: &[u8]) -> [u8; MAC_LEN] {
    mac_state(key, nonce, seq, dir, payload)
        .finalize()
        .into_bytes()
        .into()
}

/// One authenticated stream, either side.
struct Framed {
    stream: TcpStream,
    key: Arc<[u8]>,
    nonce: [u8; NONCE_LEN],
    /// Frames read and written so far (a request and its reply share a number).
    seq: u64,
}

impl Framed {
    async fn write(&mut self, dir: u8, payload: &[u8]) -> Result<(), FrameError> {
        let tag = mac(&self.key, &self.nonce, self.seq, dir, payload);
        let mut buf = Vec::with_capacity(4 + payload.len() + MAC_LEN);
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(payload);
        buf.extend_from_slice(&tag);
        self.stream.write_all(&buf).await?;
        Ok(())
    }

    async fn read(&mut self, dir: u8) -> Result<Vec<u8>, FrameError> {
        let len = self.stream.read_u32().await? as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        let mut buf = vec![0u8; len + MAC_LEN];
        self.stream.read_exact(&mut buf).await?;
        let (payload, tag) = buf.split_at(len);
        // verify_slice compares in constant time.
        let ok = mac_state(&self.key, &self.nonce, self.seq, dir, payload).verify_slice(tag);
        if ok.is_err() {
            return Err(FrameError::BadAuth);
        }
        buf.truncate(len);
        Ok(buf)
    }
}

/// Serves requests from one stream until it closes or sends a bad frame.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, rpc: Rpc) -> Pin<Box<dyn Future<Output = RpcReply> + Send + '_>>;
}

/// Accepts connections on `listener` and serves each on its own task. Runs until the task is
/// dropped.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    key: Arc<[u8]>,
    counters: Arc<NetCounters>,
    handler: Arc<H>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "raft transport: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let key = key.clone();
        let counters = counters.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_one(stream, key, &counters, &*handler).await {
                match e {
                    FrameError::BadAuth => {
                        counters.bad_auth.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%peer, "raft transport: dropped a frame that failed authentication");
                    }
                    FrameError::Malformed(ref why) => {
                        counters.malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%peer, reason = %why, "raft transport: dropped a malformed frame");
                    }
                    FrameError::TooLarge(n) => {
                        counters.malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%peer, bytes = n, "raft transport: dropped an oversized frame");
                    }
                    FrameError::Io(_) | FrameError::Timeout(_) => {}
                }
            }
        });
    }
}

async fn serve_one<H: Handler + ?Sized>(
    mut stream: TcpStream,
    key: Arc<[u8]>,
    counters: &NetCounters,
    handler: &H,
) -> Result<(), FrameError> {
    stream.set_nodelay(true)?;
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
    stream.write_all(&nonce).await?;
    let mut f = Framed {
        stream,
        key,
        nonce,
        seq: 0,
    };
    loop {
        f.seq += 1;
        let payload = match f.read(0).await {
            Ok(p) => p,
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let rpc: Rpc =
            serde_json::from_slice(&payload).map_err(|e| FrameError::Malformed(e.to_string()))?;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let reply = handler.handle(rpc).await;
        let bytes = serde_json::to_vec(&reply).map_err(|e| FrameError::Malformed(e.to_string()))?;
        f.write(1, &bytes).await?;
    }
}

/// The client side of one peer: a lazily (re)connected stream.
pub struct Peer {
    addr: SocketAddr,
    key: Arc<[u8]>,
    conn: Option<Framed>,
}

impl Peer {
    pub fn new(addr: SocketAddr, key: Arc<[u8]>) -> Peer {
        Peer {
            addr,
            key,
            conn: None,
        }
    }

    /// Sends `rpc` and waits for the reply, within `timeout` (connecting included). Any
    /// failure drops the connection; the next call reconnects.
    pub async fn call(&mut self, rpc: &Rpc, timeout: Duration) -> Result<RpcReply, FrameError> {
        match tokio::time::timeout(timeout, self.call_inner(rpc)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(FrameError::Timeout(timeout))
            }
        }
    }

    async fn call_inner(&mut self, rpc: &Rpc) -> Result<RpcReply, FrameError> {
        if self.conn.is_none() {
            let mut stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let mut nonce = [0u8; NONCE_LEN];
            stream.read_exact(&mut nonce).await?;
            self.conn = Some(Framed {
                stream,
                key: self.key.clone(),
                nonce,
                seq: 0,
            });
        }
        let f = self.conn.as_mut().expect("connected above");
        let payload = serde_json::to_vec(rpc).map_err(|e| FrameError::Malformed(e.to_string()))?;
        f.seq += 1;
        f.write(0, &payload).await?;
        let reply = f.read(1).await?;
        serde_json::from_slice(&reply).map_err(|e| FrameError::Malformed(e.to_string()))
    }
}

/// openraft's view of the transport: one [`Peer`] per target.
#[derive(Clone)]
pub struct Network {
    key: Arc<[u8]>,
}

impl Network {
    pub fn new(key: Arc<[u8]>) -> Network {
        Network { key }
    }
}

pub struct PeerClient {
    target: NodeId,
    peer: Peer,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &MemberNode) -> PeerClient {
        // An unparsable address cannot come from our own config; it fails every call
        // (Unreachable) instead of panicking the Raft core.
        let addr = node
            .addr
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        PeerClient {
            target,
            peer: Peer::new(addr, self.key.clone()),
        }
    }
}

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, MemberNode, E>>;

fn net_err<E: std::error::Error>(e: FrameError) -> RPCError<NodeId, MemberNode, E> {
    match e {
        FrameError::Io(ref io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            RPCError::Unreachable(Unreachable::new(&e))
        }
        other => RPCError::Network(NetworkError::new(&other)),
    }
}

fn unexpected<E: std::error::Error>() -> RPCError<NodeId, MemberNode, E> {
    let e = FrameError::Malformed("reply of the wrong kind".into());
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self
            .peer
            .call(&Rpc::AppendEntries(rpc), option.hard_ttl())
            .await
            .map_err(net_err)?
        {
            RpcReply::AppendEntries(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self
            .peer
            .call(&Rpc::InstallSnapshot(rpc), option.hard_ttl())
            .await
            .map_err(net_err)?
        {
            RpcReply::InstallSnapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self
            .peer
            .call(&Rpc::Vote(rpc), option.hard_ttl())
            .await
            .map_err(net_err)?
        {
            RpcReply::Vote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Handler for Echo {
        fn handle(&self, rpc: Rpc) -> Pin<Box<dyn Future<Output = RpcReply> + Send + '_>> {
            Box::pin(async move {
                match rpc {
                    Rpc::Propose(_) => RpcReply::Propose(Ok(Reply::default())),
                    _ => RpcReply::Report(Ok(())),
                }
            })
        }
    }

    async fn server(key: &[u8]) -> (SocketAddr, Arc<NetCounters>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(NetCounters::default());
        tokio::spawn(serve(
            listener,
            key.into(),
            counters.clone(),
            Arc::new(Echo),
        ));
        (addr, counters)
    }

    fn propose() -> Rpc {
        Rpc::Propose(Command::SetStandby {
            node: "lb1".into(),
            standby: true,
        })
    }

    #[tokio::test]
    async fn a_good_key_round_trips_many_requests_on_one_connection() {
        let (addr, counters) = server(b"secret").await;
        let mut peer = Peer::new(addr, Arc::from(&b"secret"[..]));
        for _ in 0..20 {
            let r = peer.call(&propose(), Duration::from_secs(5)).await.unwrap();
            assert!(matches!(r, RpcReply::Propose(Ok(_))));
        }
        assert_eq!(counters.connections.load(Ordering::Relaxed), 1);
        assert_eq!(counters.requests.load(Ordering::Relaxed), 20);
    }

    #[tokio::test]
    async fn a_wrong_key_is_counted_and_gets_no_reply() {
        let (addr, counters) = server(b"secret").await;
        let mut peer = Peer::new(addr, Arc::from(&b"wrong"[..]));
        assert!(peer.call(&propose(), Duration::from_secs(5)).await.is_err());
        // The server counts after it closed the stream; give its task a moment.
        for _ in 0..100 {
            if counters.bad_auth.load(Ordering::Relaxed) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counters.bad_auth.load(Ordering::Relaxed), 1);
        assert_eq!(counters.requests.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_replayed_frame_fails_authentication() {
        let (addr, counters) = server(b"secret").await;
        // Record a genuine first frame of one connection...
        let key: Arc<[u8]> = Arc::from(&b"secret"[..]);
        let mut s1 = TcpStream::connect(addr).await.unwrap();
        let mut nonce = [0u8; NONCE_LEN];
        s1.read_exact(&mut nonce).await.unwrap();
        let payload = serde_json::to_vec(&propose()).unwrap();
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(&mac(&key, &nonce, 1, 0, &payload));
        s1.write_all(&frame).await.unwrap();
        let mut len = [0u8; 4];
        s1.read_exact(&mut len).await.unwrap();
        // ...then send it again on the same connection (seq 2) and on a new one.
        s1.write_all(&frame).await.unwrap();
        let mut s2 = TcpStream::connect(addr).await.unwrap();
        s2.read_exact(&mut nonce).await.unwrap();
        s2.write_all(&frame).await.unwrap();
        for _ in 0..100 {
            if counters.bad_auth.load(Ordering::Relaxed) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counters.bad_auth.load(Ordering::Relaxed), 2);
        assert_eq!(counters.requests.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn garbage_and_oversized_frames_are_counted() {
        let (addr, counters) = server(b"secret").await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut nonce = [0u8; NONCE_LEN];
        s.read_exact(&mut nonce).await.unwrap();
        s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        // A frame that authenticates but is not an Rpc.
        let key: Arc<[u8]> = Arc::from(&b"secret"[..]);
        let mut s2 = TcpStream::connect(addr).await.unwrap();
        s2.read_exact(&mut nonce).await.unwrap();
        let payload = b"{not json";
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(&mac(&key, &nonce, 1, 0, payload));
        s2.write_all(&frame).await.unwrap();
        for _ in 0..100 {
            if counters.malformed.load(Ordering::Relaxed) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counters.malformed.load(Ordering::Relaxed), 2);
    }
}
