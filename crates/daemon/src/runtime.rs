//! The event loop: one thread owns every VRRP instance, its sockets and its timers.
//!
//! Two threads, because an idle node's work is almost all adverts:
//! - the VRRP loop, on the thread that called [`run`], waits in a plain epoll set on the
//!   VRRP sockets, one timerfd and one eventfd, and runs the cores. An advert sent or
//!   received costs one `epoll_wait`, one `recv` or `sendmsg` and one `timerfd_settime`,
//!   and touches only the cores and the loop's own state.
//! - a tokio runtime thread runs everything else: control socket, netlink, heartbeats,
//!   health checks, fencing, Raft. Its rarely-ready sources (signals, control requests, link,
//!   health, membership and quorum events, fence results) are forwarded to the VRRP loop over
//!   a channel, with the eventfd rung after each.
//!
//! Why not one tokio task, as before: every wake-up then went through tokio's reactor, timer
//! wheel and scheduler, cold after 100 ms of sleep. perf put tandem's user time at 12.6 % of
//! an idle master's CPU against keepalived's 8.7 %, half of it tokio's park / turn / wake
//! path, which left tandem's idle 1-instance CPU above keepalived's. The loop still calls
//! into the runtime (`Handle::block_on`) for the little async work it has: VIP changes over
//! rtnetlink, a status's heartbeat snapshot, lease releases at exit.
//!
//! Order of work on each wake-up matters for two of tandem's promises:
//! - a stall (VM pause, scheduler hiccup) alone must never cause a takeover, so when a timer
//!   fires the loop first drains every advert already queued on the sockets, and only then
//!   lets the cores act on their deadlines;
//! - on takeover the advert goes out before the VIPs are configured and the gratuitous ARP /
//!   NA follows at once, which is the order the cores emit their actions in.

use std::collections::{BTreeMap, HashMap};
use std::future::poll_fn;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use tandem_config::{Authentication, CheckKind, Config, IpPrefix, Mode, VrrpInstance, VrrpVersion};
use tandem_fence::FenceAction;
use tandem_health::{HealthEvent, HealthHandle, HealthRunner, Status as CheckVerdict};
use tandem_netio::{
    vrrp_group, Gratuitous, InterfaceInfo, LinkEvent, LinkMonitor, Netlink, RecvMeta, VrrpSocket,
};
use tandem_quorum::net::MembershipChange;
use tandem_quorum::node::Op;
use tandem_quorum::{FenceOutcome, FenceRecord, FenceStage, Leases, QuorumHandle};
use tandem_vrrp::{Action, Auth, Instance, InstanceConfig, State, Version};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::changes::Changes;
use crate::control::{self, Pending, Request, Response};
use crate::deadline::Deadline;
use crate::events::EventLog;
use crate::fencing;
use crate::membership::{self, Peers};
use crate::notify::Notifier;
use crate::pair_fence::PairFence;
use crate::quorum;
use crate::status::{InstanceStatus, SocketStatus, StatusReport};
use crate::tracking::{self, Effective, Item, ItemKind, ItemState};

/// How often track_file files are read (keepalived watches them; a second is what an
/// operator flipping a weight file expects).
const FILE_POLL: Duration = Duration::from_secs(1);

/// A timer wake-up this late means the daemon was not running (VM pause, scheduler stall):
/// queued adverts are read before any timer is acted on.
const STALL: Duration = Duration::from_millis(5);

/// Large enough for any VRRP packet with its IPv4 header (255 IPv6 addresses = 4088 bytes).
const RECV_BUF: usize = 8192;
const SEND_BUF: usize = tandem_vrrp::wire::MAX_LEN;

/// Something from the runtime thread for the VRRP loop (see [`Sources`]).
enum Wake {
    Stop(&'static str),
    Hup,
    Control(Pending),
    Health(HealthEvent),
    Membership(Option<tandem_heartbeat::Event>),
    Link(Option<LinkEvent>),
    /// The quorum layer published a new view (false: it stopped).
    Quorum(bool),
    /// A pair fence (off) or unfence (on) ended.
    Fenced((FenceAction, FenceOutcome)),
}

impl Wake {
    /// The loop stops on it, or its source has ended: nothing more will come.
    fn is_last(&self) -> bool {
        matches!(
            self,
            Wake::Stop(_) | Wake::Link(None) | Wake::Membership(None) | Wake::Quorum(false)
        )
    }
}

/// epoll tokens of the VRRP loop's two descriptors besides the sockets (whose token is their
/// index).
const TOKEN_TIMER: u64 = u64::MAX;
const TOKEN_BELL: u64 = u64::MAX - 1;

struct Socket {
    sock: VrrpSocket,
    ifindex: u32,
    ifname: String,
    v6: bool,
    received: u64,
    dropped_truncated: u64,
    dropped_unknown_vrid: u64,
    own_ignored: u64,
    send_errors: u64,
}

struct Garp {
    ifindex: u32,
    sender: Gratuitous,
}

struct Inst {
    core: Instance,
    cfg: VrrpInstance,
    socket: usize,
    garp: usize,
    ifindex: u32,
    src: IpAddr,
    /// Where adverts go: the multicast group, or every unicast peer.
    dsts: Vec<IpAddr>,
    link_local: Option<Ipv6Addr>,
    vips_held: bool,
    state_since: Instant,
    /// Everything this instance tracks (its own interface, its track_* lists, and those of
    /// the other members of its sync group).
    items: Vec<Item>,
    effective: Effective,
    sync_group: Option<String>,
    /// Set when this instance took over on Master_Down_Interval while a peer was still up
    /// on some heartbeat channel: a network split, not a dead peer.
    split: Option<String>,
    /// priority_zero_received when last looked at: tells a handover from a timeout.
    prio0_seen: u64,
    /// A peer master this backup has heard since it last changed state: only a takeover
    /// from a master that was there can be a split (not the first election at start-up).
    heard_master: Option<IpAddr>,
    /// This instance in the pair's heartbeat held lists (`wire::held_id` of its name).
    held_id: u32,
    /// Quorum mode: the end of our lease by our clock while we hold it.
    lease_until: Option<Instant>,
}

/// How the daemon was asked to start (`tandem run` flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// `--join`: a new member of a running quorum cluster; with an empty Raft store it waits
    /// to be added (`tandem node add`) instead of bootstrapping from the config.
    pub join: bool,
}

/// Run the daemon until SIGTERM / SIGINT. On a clean stop every master sends priority 0 and
/// every VIP is removed; on a fatal error the VIPs are removed too before the error returns.
///
/// Blocks the calling thread, which becomes the VRRP loop; it starts the runtime thread
/// itself.
pub fn run(config: Config, opts: RunOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // The VRRP loop spawns tasks (fences, Raft operations) onto the runtime.
    let _entered = rt.enter();
    let Started {
        mut d,
        nl,
        links,
        health_rx,
        mut hb,
    } = rt.block_on(start(&config, opts))?;
    let result = match rt.block_on(d.open_sources(&config, links, health_rx, hb.as_mut())) {
        Ok((sources, server)) => {
            let r = d.run_loops(&rt, &config, &nl, started, sources, hb.as_ref());
            server.abort();
            r
        }
        Err(e) => Err(e),
    };
    rt.block_on(stop(d, &config, &nl, hb));
    result
}

/// What the event loop runs with, set up before it.
struct Started {
    d: Daemon,
    nl: Netlink,
    links: LinkMonitor,
    health_rx: mpsc::Receiver<HealthEvent>,
    hb: Option<tandem_heartbeat::Heartbeat>,
}

async fn start(config: &Config, opts: RunOptions) -> anyhow::Result<Started> {
    let nl = Netlink::new().context("opening netlink")?;
    let links = LinkMonitor::new().context("subscribing to link events")?;
    // Heartbeats first, so peers are known before any instance can take over.
    let hb = membership::start(config)?;
    let mut d = Daemon::build(config, &nl).await?;
    // Quorum instances start lease-gated (Backup): nothing is held before Raft says so.
    if let Some(h) = quorum::start(config, opts.join)? {
        d.leases = Some(h.leases());
        d.quorum = Some(h);
    }
    let (health, health_rx) = HealthRunner::spawn(health_specs(config))
        .map_err(|e| anyhow::anyhow!("health checks: {e}"))?;
    d.health = Some(health);
    Ok(Started {
        d,
        nl,
        links,
        health_rx,
        hb,
    })
}

/// After the event loop, whatever ended it.
async fn stop(
    mut d: Daemon,
    config: &Config,
    nl: &Netlink,
    hb: Option<tandem_heartbeat::Heartbeat>,
) {
    // Whatever happened, the VIPs must not stay behind: a node that is not running VRRP must
    // not answer for the virtual addresses.
    d.release_all(nl).await;
    d.publish_held(hb.as_ref());
    let _ = std::fs::remove_file(&config.node.control_socket);
    if let Some(h) = d.health.take() {
        h.shutdown().await;
    }
    if let Some(hb) = hb {
        // After the VIPs are gone: peers see our LEAVING frames only once we hold nothing.
        hb.shutdown().await;
    }
    let notifier = std::mem::replace(&mut d.notifier, Notifier::spawn());
    notifier.finish(Duration::from_secs(30)).await;
}

struct Daemon {
    insts: Vec<Inst>,
    sockets: Vec<Socket>,
    garps: Vec<Garp>,
    /// Link state by interface name (own and tracked interfaces).
    links: HashMap<String, bool>,
    /// Verdict of every check by name.
    checks: HashMap<String, CheckVerdict>,
    /// Value of every tracked file.
    files: HashMap<PathBuf, i64>,
    next_file_poll: Option<Instant>,
    health: Option<HealthHandle>,
    notifier: Notifier,
    events: EventLog,
    peers: Peers,
    me: String,
    quorum: Option<QuorumHandle>,
    leases: Option<watch::Receiver<std::sync::Arc<Leases>>>,
    /// Per quorum group, the epoch whose lease we already gave back after a move.
    released: HashMap<String, u64>,
    /// vrrp mode with `fence_on_takeover`: the pair's fencing policy.
    pair: Option<PairFence>,
    /// `[node] fence_random_delay`: the bound of the random part of a pair fence's delay.
    fence_random_delay: Duration,
    /// Results of the pair fences (off) and unfences (on) this node started.
    fence_tx: mpsc::Sender<(FenceAction, FenceOutcome)>,
    /// Taken by [`Sources`] when the loops start.
    fence_rx: Option<mpsc::Receiver<(FenceAction, FenceOutcome)>>,
    /// `[cluster] unfence = "auto"`.
    unfence_auto: bool,
    /// Fences this node ran outside the Raft log (vrrp mode), newest last, bounded.
    fence_history: std::collections::VecDeque<FenceRecord>,
    /// Where adverts are encoded: allocated once, not zeroed on every wake-up.
    sbuf: Vec<u8>,
    /// The runtime, for the VRRP loop's few async calls.
    rt: tokio::runtime::Handle,
}

/// The pair fencing policy when an instance has `fence_on_takeover` in vrrp mode (validation
/// guarantees a two-node cluster then).
fn pair_fence(config: &Config, now: Instant) -> Option<PairFence> {
    let gated = config
        .vrrp_instances
        .iter()
        .any(|i| i.mode == Mode::Vrrp && i.fence_on_takeover);
    let peer = config.cluster.as_ref()?.peers(&config.node.name).next()?;
    gated.then(|| PairFence::new(peer.name.clone(), config.node.fence_delay, now))
}

/// A random duration up to `max`. Not cryptographic: it only has to differ between the two
/// nodes of a pair, and std's per-process hash seed does that without another dependency.
fn jitter(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    let r = h.finish();
    Duration::from_nanos(r % (max.as_nanos() as u64 + 1))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn to_core_config(c: &VrrpInstance, primary: IpAddr, family_v6: bool) -> InstanceConfig {
    let vips = c
        .virtual_ipaddress
        .iter()
        .filter(|p| p.addr.is_ipv6() == family_v6)
        .map(|p| p.addr)
        .collect();
    let auth = match &c.authentication {
        Some(Authentication::Pass(p)) => {
            let mut b = [0u8; 8];
            let n = p.len().min(8);
            b[..n].copy_from_slice(&p.as_bytes()[..n]);
            Auth::Simple(b)
        }
        None => Auth::None,
    };
    InstanceConfig {
        name: c.name.clone(),
        vrid: c.virtual_router_id,
        priority: c.priority,
        version: match c.version {
            VrrpVersion::V2 => Version::V2,
            VrrpVersion::V3 => Version::V3,
        },
        advert_int: c.advert_int,
        preempt: c.preempt,
        preempt_delay: c.preempt_delay,
        accept_mode: c.accept_mode,
        vips,
        primary_addr: primary,
        auth,
        garp_master_delay: c.garp_master_delay,
        garp_master_repeat: c.garp_master_repeat,
        garp_master_refresh: c.garp_master_refresh,
        garp_master_refresh_repeat: c.garp_master_refresh_repeat,
        garp_lower_prio_repeat: c.garp_lower_prio_repeat,
        higher_prio_send_advert: c.higher_prio_send_advert,
        lease_gated: c.mode == Mode::Quorum,
        takeover_gated: c.mode == Mode::Vrrp && c.fence_on_takeover,
    }
}

fn health_specs(config: &Config) -> Vec<tandem_health::CheckSpec> {
    config
        .checks
        .iter()
        .map(|c| tandem_health::CheckSpec {
            name: c.name.clone(),
            kind: match &c.kind {
                CheckKind::Tcp { host, port } => {
                    tandem_health::CheckKind::Tcp(tandem_health::TcpCheck {
                        host: host.clone(),
                        port: *port,
                    })
                }
                CheckKind::Http {
                    url,
                    expect_status,
                    expect_body,
                    tls_verify,
                    ca_file,
                } => tandem_health::CheckKind::Http(tandem_health::HttpCheck {
                    url: url.clone(),
                    expect_status: *expect_status,
                    expect_body: expect_body.clone(),
                    tls_verify: *tls_verify,
                    ca_file: ca_file.clone(),
                }),
                CheckKind::Script { command } => {
                    tandem_health::CheckKind::Script(tandem_health::ScriptCheck {
                        program: PathBuf::from(&command[0]),
                        args: command[1..].to_vec(),
                    })
                }
            },
            interval: c.interval,
            timeout: c.timeout,
            rise: c.rise,
            fall: c.fall,
        })
        .collect()
}

/// The tracked items of one instance on its own, without its sync group.
fn own_items(c: &VrrpInstance) -> Vec<Item> {
    let mut items = vec![Item {
        kind: ItemKind::OwnInterface,
        target: c.interface.clone(),
        weight: 0,
    }];
    let lists = [
        (ItemKind::Interface, &c.track_interface),
        (ItemKind::Check, &c.track_check),
        (ItemKind::File, &c.track_file),
    ];
    for (kind, list) in lists {
        items.extend(list.iter().map(|t| Item {
            kind,
            target: t.target.clone(),
            weight: t.weight,
        }));
    }
    items
}

/// Read a track_file: an integer, or 0 when the file is missing, empty or not a number
/// (keepalived's reading), with the reason logged once per change by the caller.
fn read_track_file(path: &std::path::Path) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|w| w.parse().ok()))
        .unwrap_or(0)
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

fn prefix_str(p: &IpPrefix) -> String {
    format!("{}/{}", p.addr, p.prefix_len)
}

impl Daemon {
    async fn build(config: &Config, nl: &Netlink) -> anyhow::Result<Daemon> {
        let (fence_tx, fence_rx) = mpsc::channel(4);
        let mut d = Daemon {
            insts: Vec::new(),
            sockets: Vec::new(),
            garps: Vec::new(),
            links: HashMap::new(),
            checks: HashMap::new(),
            files: HashMap::new(),
            next_file_poll: None,
            health: None,
            notifier: Notifier::spawn(),
            events: EventLog::new(),
            peers: Peers::new(config),
            me: config.node.name.clone(),
            quorum: None,
            leases: None,
            released: HashMap::new(),
            pair: pair_fence(config, Instant::now()),
            fence_random_delay: config.node.fence_random_delay,
            fence_tx,
            fence_rx: Some(fence_rx),
            unfence_auto: config
                .cluster
                .as_ref()
                .is_some_and(|c| c.unfence == tandem_config::Unfence::Auto),
            fence_history: std::collections::VecDeque::new(),
            sbuf: vec![0u8; SEND_BUF],
            rt: tokio::runtime::Handle::current(),
        };
        let mut ifaces: BTreeMap<String, InterfaceInfo> = BTreeMap::new();
        let now = Instant::now();
        for c in &config.vrrp_instances {
            if !ifaces.contains_key(&c.interface) {
                let info = nl
                    .interface(&c.interface)
                    .await
                    .with_context(|| format!("instance {}: interface {}", c.name, c.interface))?;
                ifaces.insert(c.interface.clone(), info);
            }
            let info = &ifaces[&c.interface];
            let family_v6 = c.virtual_ipaddress[0].addr.is_ipv6();
            let primary: IpAddr = match (family_v6, c.unicast_src_ip) {
                (_, Some(ip)) => ip,
                (false, None) => match info.primary_v4 {
                    Some(a) => IpAddr::V4(a),
                    None => bail!(
                        "instance {}: interface {} has no IPv4 address to send adverts from \
                         (give it one, or set unicast_src_ip)",
                        c.name,
                        c.interface
                    ),
                },
                (true, None) => match info.link_local_v6 {
                    Some(a) => IpAddr::V6(a),
                    None => bail!(
                        "instance {}: interface {} has no IPv6 link-local address to send \
                         adverts from",
                        c.name,
                        c.interface
                    ),
                },
            };
            let socket = match d
                .sockets
                .iter()
                .position(|s| s.ifindex == info.index && s.v6 == family_v6)
            {
                Some(i) => i,
                None => {
                    let sock =
                        VrrpSocket::open(info.index, &info.name, primary).with_context(|| {
                            format!("opening the VRRP socket on {} for {}", c.interface, c.name)
                        })?;
                    d.sockets.push(Socket {
                        sock,
                        ifindex: info.index,
                        ifname: info.name.clone(),
                        v6: family_v6,
                        received: 0,
                        dropped_truncated: 0,
                        dropped_unknown_vrid: 0,
                        own_ignored: 0,
                        send_errors: 0,
                    });
                    d.sockets.len() - 1
                }
            };
            let garp = match d.garps.iter().position(|g| g.ifindex == info.index) {
                Some(i) => i,
                None => {
                    let sender = Gratuitous::open(info.index, &info.name, info.mac)
                        .with_context(|| format!("opening AF_PACKET on {}", c.interface))?;
                    d.garps.push(Garp {
                        ifindex: info.index,
                        sender,
                    });
                    d.garps.len() - 1
                }
            };
            let dsts = if c.unicast_peer.is_empty() {
                vec![vrrp_group(family_v6)]
            } else {
                c.unicast_peer.clone()
            };
            // A VIP left behind by a previous run that died (kill -9, crash) would make this
            // node answer for it while another node is master: clear it before starting.
            for p in &c.virtual_ipaddress {
                nl.del_address(info.index, p.addr, p.prefix_len)
                    .await
                    .with_context(|| {
                        format!("removing stale VIP {} from {}", prefix_str(p), c.interface)
                    })?;
            }
            d.insts.push(Inst {
                core: Instance::new(to_core_config(c, primary, family_v6)),
                cfg: c.clone(),
                socket,
                garp,
                ifindex: info.index,
                src: primary,
                dsts,
                link_local: info.link_local_v6,
                vips_held: false,
                state_since: now,
                items: own_items(c),
                effective: tracking::effective(c.priority, &[]),
                sync_group: None,
                split: None,
                prio0_seen: 0,
                heard_master: None,
                held_id: tandem_heartbeat::wire::held_id(&c.name),
                lease_until: None,
            });
        }

        // A sync group moves together because its members share what they track: a fault
        // or a weight of one member applies to every member, so all of them make the same
        // decision at the same time (keepalived's vrrp_sync_group, where tracking a group
        // member faults the whole group).
        for g in &config.sync_groups {
            let members: Vec<usize> = d
                .insts
                .iter()
                .enumerate()
                .filter(|(_, i)| g.group.contains(&i.cfg.name))
                .map(|(n, _)| n)
                .collect();
            let mut union: Vec<Item> = Vec::new();
            for &m in &members {
                for it in own_items(&d.insts[m].cfg) {
                    if !union.contains(&it) {
                        union.push(it);
                    }
                }
            }
            for &m in &members {
                d.insts[m].items = union.clone();
                d.insts[m].sync_group = Some(g.name.clone());
            }
        }

        // Initial link state of every own and tracked interface; a tracked interface that
        // does not exist counts as down until it appears.
        let mut names: Vec<String> = Vec::new();
        for inst in &d.insts {
            for it in &inst.items {
                if matches!(it.kind, ItemKind::Interface | ItemKind::OwnInterface)
                    && !names.contains(&it.target)
                {
                    names.push(it.target.clone());
                }
            }
        }
        for name in names {
            let up = match ifaces.get(&name) {
                Some(info) => info.up,
                None => match nl.interface(&name).await {
                    Ok(info) => info.up,
                    Err(e) => {
                        tracing::warn!(interface = %name, error = %e, "tracked interface not found: counted as down");
                        false
                    }
                },
            };
            d.links.insert(name, up);
        }
        if d.insts
            .iter()
            .any(|i| i.items.iter().any(|it| it.kind == ItemKind::File))
        {
            d.poll_files();
            d.next_file_poll = Some(now + FILE_POLL);
        }
        Ok(d)
    }

    fn item_state(&self, item: &Item) -> ItemState {
        match item.kind {
            ItemKind::Interface | ItemKind::OwnInterface => match self.links.get(&item.target) {
                Some(true) => ItemState::Good,
                _ => ItemState::Bad,
            },
            ItemKind::Check => match self.checks.get(&item.target) {
                Some(CheckVerdict::Up) => ItemState::Good,
                Some(CheckVerdict::Down) => ItemState::Bad,
                _ => ItemState::Unknown,
            },
            ItemKind::File => ItemState::Value(
                self.files
                    .get(&PathBuf::from(&item.target))
                    .copied()
                    .unwrap_or(0),
            ),
        }
    }

    /// Re-read every tracked file; true if a value changed.
    fn poll_files(&mut self) -> bool {
        let mut changed = false;
        let paths: Vec<String> = self
            .insts
            .iter()
            .flat_map(|i| i.items.iter())
            .filter(|it| it.kind == ItemKind::File)
            .map(|it| it.target.clone())
            .collect();
        for p in paths {
            let path = PathBuf::from(&p);
            let v = read_track_file(&path);
            if self.files.insert(path, v) != Some(v) {
                tracing::info!(file = %p, value = v, "track_file value");
                changed = true;
            }
        }
        changed
    }

    /// Recompute every instance's effective priority and fault state and hand changes to
    /// the cores.
    #[inline(never)]
    fn retrack(&mut self, now: Instant) {
        for ii in 0..self.insts.len() {
            let states: Vec<(Item, ItemState)> = self.insts[ii]
                .items
                .iter()
                .map(|it| (it.clone(), self.item_state(it)))
                .collect();
            let eff = tracking::effective(self.insts[ii].cfg.priority, &states);
            let inst = &mut self.insts[ii];
            if eff.fault != inst.effective.fault {
                let why: Vec<String> = eff
                    .contributions
                    .iter()
                    .filter(|c| c.faults)
                    .map(|c| format!("{:?} {} {}", c.kind, c.target, c.state))
                    .collect();
                tracing::warn!(instance = %inst.cfg.name, fault = eff.fault, reason = %why.join(", "), "tracking");
                inst.core.set_fault(now, eff.fault);
            }
            if eff.priority != inst.effective.priority {
                tracing::info!(instance = %inst.cfg.name, from = inst.effective.priority, to = eff.priority, "effective priority");
                inst.core.set_priority(now, eff.priority);
            }
            if eff.fault != inst.effective.fault || eff.priority != inst.effective.priority {
                self.events.emit(serde_json::json!({
                    "type": "priority",
                    "instance": inst.cfg.name,
                    "priority": eff.priority,
                    "fault": eff.fault,
                }));
            }
            inst.effective = eff;
        }
        self.report_quorum();
    }

    /// Our quorum groups and effective priorities, for the coordinator.
    fn report_quorum(&self) {
        if let Some(h) = &self.quorum {
            h.set_reports(quorum::reports(
                self.insts
                    .iter()
                    .filter(|i| i.cfg.mode == Mode::Quorum)
                    .map(|i| {
                        (
                            i.cfg.name.as_str(),
                            quorum::report(
                                i.effective.priority,
                                i.effective.fault,
                                i.cfg.preempt,
                                i.cfg.fence_on_takeover,
                            ),
                        )
                    }),
            ));
        }
    }

    /// Hand the quorum layer's view to the lease-gated instances: each may be Master only
    /// while our lease is valid by our own clock.
    #[inline(never)]
    fn apply_quorum(&mut self, now: Instant) {
        let Some(rx) = self.leases.as_mut() else {
            return;
        };
        let leases = rx.borrow_and_update().clone();
        for inst in &mut self.insts {
            if inst.cfg.mode != Mode::Quorum {
                continue;
            }
            let g = leases.get(&inst.cfg.name);
            let until = g.and_then(|g| g.held_until).filter(|t| *t > now);
            inst.lease_until = until;
            let held = until.is_some();
            if held != inst.core.lease_held() {
                let holder = g.and_then(|g| g.holder.clone());
                let epoch = g.map_or(0, |g| g.epoch);
                tracing::info!(instance = %inst.cfg.name, held, epoch, holder = ?holder, "lease");
                self.events.emit(serde_json::json!({
                    "type": "lease", "instance": inst.cfg.name, "held": held,
                    "epoch": epoch, "holder": holder,
                }));
                inst.core.set_lease(now, held);
            }
        }
    }

    /// vrrp mode with `fence_on_takeover`: start a fence when the policy says so, and tell
    /// the gated instances whether they may take over.
    #[inline(never)]
    fn pair_step(&mut self, config: &Config) {
        let Some(pf) = self.pair.as_mut() else {
            return;
        };
        let now = Instant::now();
        // Fence only when VRRP agrees that the Master is gone (a blocked Master_Down
        // expiry): with the heartbeats cut but adverts still arriving, the Master is alive.
        let wants = self.insts.iter().any(|i| i.core.takeover_pending());
        // The jitter only counts when a takeover waits (it sets the delay of a fence about to
        // start): no random draw on every other wake-up.
        let jitter = if wants {
            jitter(self.fence_random_delay)
        } else {
            Duration::ZERO
        };
        let start = pf.poll(now, wants, jitter);
        let allowed = pf.takeover_allowed();
        let fence = start.then(|| pf.peer().to_string());
        for inst in &mut self.insts {
            // With the peer up, no Master heard and the peer not saying it is Master of this
            // instance, the timer running out is the first election, not a takeover.
            let first_election = pf.first_election(inst.held_id) && inst.heard_master.is_none();
            inst.core
                .set_takeover_allowed(now, allowed || first_election);
        }
        if let Some(node) = fence {
            let why = format!(
                "{node} is silent on every heartbeat channel and this node would take its VIPs"
            );
            tracing::warn!(%node, reason = %why, "fencing the peer before taking over");
            self.record_fence(&node, "off", false, why, FenceStage::Attempt);
            let (config, tx) = (config.clone(), self.fence_tx.clone());
            tokio::spawn(async move {
                let outcome = fencing::fence_node(&config, &node, FenceAction::Off).await;
                let _ = tx.send((FenceAction::Off, outcome)).await;
            });
        }
    }

    /// vrrp mode with `fence_on_takeover`: the instances this node is Master of go into
    /// every heartbeat frame, so a peer that cannot hear our adverts does not hold a first
    /// election for them (see `PairFence::first_election`).
    fn publish_held(&self, hb: Option<&tandem_heartbeat::Heartbeat>) {
        if let (Some(hb), Some(_)) = (hb, self.pair.as_ref()) {
            let held = self.insts.iter().filter(|i| i.vips_held).map(|i| i.held_id);
            hb.set_held(Some(held.collect()));
        }
    }

    /// The peer we fenced came back as a new process: with `unfence = "auto"`, switch its
    /// devices on again.
    fn pair_unfence(&mut self, config: &Config) {
        let Some(pf) = self.pair.as_ref() else {
            return;
        };
        let node = pf.peer().to_string();
        if !self.unfence_auto {
            tracing::info!(%node, "the fenced peer is back; unfence = \"manual\": its devices stay as they are");
            return;
        }
        tracing::warn!(%node, "the fenced peer is back as a new process: switching its devices on (unfence = \"auto\")");
        let (config, tx) = (config.clone(), self.fence_tx.clone());
        tokio::spawn(async move {
            let outcome = fencing::fence_node(&config, &node, FenceAction::On).await;
            let _ = tx.send((FenceAction::On, outcome)).await;
        });
    }

    #[inline(never)]
    fn pair_fenced(&mut self, (action, outcome): (FenceAction, FenceOutcome), now: Instant) {
        let Some(pf) = self.pair.as_mut() else {
            return;
        };
        if action == FenceAction::On {
            let node = pf.peer().to_string();
            if outcome.verified {
                tracing::warn!(%node, detail = %outcome.detail, "peer unfenced (verified on)");
            } else {
                tracing::error!(%node, detail = %outcome.detail, "switching the peer's devices on failed");
            }
            self.record_fence(
                &node,
                "on",
                outcome.verified,
                outcome.detail,
                FenceStage::Result,
            );
            return;
        }
        let node = pf.peer().to_string();
        pf.fence_done(now, outcome.verified, &outcome.detail);
        if outcome.verified {
            tracing::warn!(%node, detail = %outcome.detail, "peer fenced (verified): taking over");
        } else {
            tracing::error!(%node, detail = %outcome.detail, "fencing the peer failed: its VIPs are not taken");
        }
        self.record_fence(
            &node,
            "off",
            outcome.verified,
            outcome.detail,
            FenceStage::Result,
        );
    }

    /// Keeps a fence of ours in the local history (vrrp mode has no replicated log) and
    /// announces it on the event stream.
    fn record_fence(
        &mut self,
        node: &str,
        action: &str,
        ok: bool,
        detail: String,
        stage: FenceStage,
    ) {
        let record = FenceRecord {
            at_unix_ms: unix_ms(),
            node: node.to_string(),
            by: self.me.clone(),
            action: action.into(),
            ok,
            detail,
            stage,
            process: None,
        };
        self.keep_fence(record);
    }

    fn keep_fence(&mut self, record: FenceRecord) {
        self.events.emit(serde_json::json!({
            "type": "fence", "node": record.node, "by": record.by, "stage": record.stage,
            "ok": record.ok, "detail": record.detail,
        }));
        self.fence_history.push_back(record);
        while self.fence_history.len() > tandem_quorum::state::FENCE_HISTORY_LEN {
            self.fence_history.pop_front();
        }
    }

    /// After a planned move asked us to let go: once the VIPs are gone, give the lease back
    /// so the new holder does not have to wait for it to run out.
    #[inline(never)]
    fn send_releases(&mut self) {
        let (Some(h), Some(rx)) = (&self.quorum, &self.leases) else {
            return;
        };
        let leases = rx.borrow().clone();
        for inst in &self.insts {
            if inst.cfg.mode != Mode::Quorum || inst.vips_held || inst.core.lease_held() {
                continue;
            }
            let Some(g) = leases.get(&inst.cfg.name) else {
                continue;
            };
            if g.holder.as_deref() != Some(self.me.as_str())
                || g.releasing_to.is_none()
                || self.released.get(&inst.cfg.name) == Some(&g.epoch)
            {
                continue;
            }
            self.released.insert(inst.cfg.name.clone(), g.epoch);
            let (h, group, epoch) = (h.clone(), inst.cfg.name.clone(), g.epoch);
            tokio::spawn(async move {
                if let Err(e) = h
                    .op(Op::Release {
                        group: group.clone(),
                        epoch,
                    })
                    .await
                {
                    tracing::warn!(%group, epoch, error = %e, "lease release failed; it will run out instead");
                }
            });
        }
    }

    /// Runs the VRRP loop on this thread and the runtime on a thread of its own until the
    /// VRRP loop ends, then stops the runtime thread (dropping the forwarded sources).
    fn run_loops(
        &mut self,
        rt: &tokio::runtime::Runtime,
        config: &Config,
        nl: &Netlink,
        started: Instant,
        mut sources: Sources,
        hb: Option<&tandem_heartbeat::Heartbeat>,
    ) -> anyhow::Result<()> {
        let bell = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .context("creating the event loop's eventfd")?;
        let (tx, rx) = std::sync::mpsc::channel::<Wake>();
        // Dropped when this function returns or unwinds: the runtime thread then leaves.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::scope(|s| {
            let bell = &bell;
            std::thread::Builder::new()
                .name("tandem-rt".into())
                .spawn_scoped(s, move || {
                    rt.block_on(async {
                        tokio::select! {
                            _ = done_rx => {}
                            () = sources.forward(&tx, bell) => {}
                        }
                    })
                })
                .context("starting the runtime thread")?;
            let result = self.vrrp_loop(config, nl, started, hb, &rx, bell);
            drop(done_tx);
            result
        })
    }

    /// The VRRP loop. On an idle node it wakes once per advert sent or received, and such a
    /// wake-up touches the cores, the socket and the timer only: everything rare arrives
    /// through the bell and is handled out of line.
    fn vrrp_loop(
        &mut self,
        config: &Config,
        nl: &Netlink,
        started: Instant,
        hb: Option<&tandem_heartbeat::Heartbeat>,
        wakes: &std::sync::mpsc::Receiver<Wake>,
        bell: &EventFd,
    ) -> anyhow::Result<()> {
        let watchdog = watchdog_interval();
        let mut next_watchdog = watchdog.map(|w| Instant::now() + w);
        let mut rbuf = vec![0u8; RECV_BUF];
        let mut timer = Deadline::new().context("creating the event loop's timerfd")?;
        // Level-triggered: a socket with more than one packet queued is simply reported
        // again, and one `recv` per socket and wake-up never needs a second, empty one.
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .context("creating the event loop's epoll set")?;
        for (i, s) in self.sockets.iter().enumerate() {
            epoll
                .add(&s.sock, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                .with_context(|| format!("watching the VRRP socket on {}", s.ifname))?;
        }
        epoll
            .add(&timer, EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_TIMER))
            .context("watching the event loop's timerfd")?;
        epoll
            .add(bell, EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_BELL))
            .context("watching the event loop's eventfd")?;
        let mut ready = vec![EpollEvent::empty(); self.sockets.len() + 2];

        self.loop_startup(config, nl);
        self.publish_held(hb);
        loop {
            let mut deadline = self
                .insts
                .iter()
                .filter_map(|i| i.core.poll_timeout())
                .min();
            let lease_end = self.insts.iter().filter_map(|i| i.lease_until).min();
            let pair_next = self.pair.as_ref().and_then(|p| p.next_deadline());
            for extra in [next_watchdog, self.next_file_poll, lease_end, pair_next]
                .into_iter()
                .flatten()
            {
                deadline = Some(deadline.map_or(extra, |d| d.min(extra)));
            }
            let armed_for = deadline;
            timer
                .arm(deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)))
                .context("arming the event loop's timerfd")?;
            let n = match epoll.wait(&mut ready, EpollTimeout::NONE) {
                Ok(n) => n,
                // A signal handled on this thread (tokio's handlers run on any thread).
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("waiting on the VRRP sockets and timer"),
            };
            let ready = &ready[..n];
            // The rare sources first, then the sockets, then the timer: adverts that arrived
            // while we were not scheduled are older than the timers that now look expired.
            if ready.iter().any(|e| e.data() == TOKEN_BELL) {
                let _ = bell.read();
                while let Ok(w) = wakes.try_recv() {
                    if !self.rare(config, started, hb, w)? {
                        self.loop_shutdown(nl);
                        return Ok(());
                    }
                    self.after_wake(config, nl, hb);
                }
            }
            let mut socket_ready = false;
            for e in ready {
                let i = e.data() as usize;
                if i < self.sockets.len() {
                    socket_ready = true;
                    match self.sockets[i].sock.try_recv(&mut rbuf) {
                        Ok(Some(meta)) => self.dispatch(i, meta, &rbuf, Instant::now()),
                        Ok(None) => continue,
                        Err(e) => self.receive_failed(i, e),
                    }
                    self.after_wake(config, nl, hb);
                }
            }
            if ready.iter().any(|e| e.data() == TOKEN_TIMER) {
                timer.fired();
                // Every queued advert goes to the cores before a timer is acted on. A socket
                // that was ready beside the timer may hold more than the one packet read
                // above (many instances share a socket); late by a stall, readiness may not
                // have been seen yet. On time and alone, the timer needs no extra reads.
                let mut now = Instant::now();
                if socket_ready
                    || armed_for.is_some_and(|d| now.saturating_duration_since(d) > STALL)
                {
                    self.drain_queued(&mut rbuf);
                    now = Instant::now();
                }
                for inst in &mut self.insts {
                    if inst.core.poll_timeout().is_some_and(|t| t <= now) {
                        inst.core.handle_timeout(now);
                    }
                }
                if self
                    .insts
                    .iter()
                    .any(|i| i.lease_until.is_some_and(|t| t <= now))
                {
                    self.apply_quorum(now);
                }
                if self.next_file_poll.is_some_and(|t| t <= now) {
                    self.file_poll(now);
                }
                if let (Some(w), Some(at)) = (watchdog, next_watchdog) {
                    if at <= now {
                        watchdog_ping();
                        next_watchdog = Some(now + w);
                    }
                }
                self.after_wake(config, nl, hb);
            }
        }
    }

    /// What every wake-up ends with: the pair policy, the cores' actions, lease releases.
    fn after_wake(
        &mut self,
        config: &Config,
        nl: &Netlink,
        hb: Option<&tandem_heartbeat::Heartbeat>,
    ) {
        if self.pair.is_some() {
            self.pair_step(config);
        }
        // Adverts are most of the actions; the held list changes only with the VIPs.
        if self.insts.iter().any(|i| i.core.has_actions()) && self.run_actions(nl) {
            self.publish_held(hb);
        }
        if self.quorum.is_some() {
            self.send_releases();
        }
    }

    /// One forwarded event. False: stop (the loop then shuts down cleanly).
    #[inline(never)]
    fn rare(
        &mut self,
        config: &Config,
        started: Instant,
        hb: Option<&tandem_heartbeat::Heartbeat>,
        w: Wake,
    ) -> anyhow::Result<bool> {
        match w {
            Wake::Stop(why) => {
                log_stop(why);
                return Ok(false);
            }
            Wake::Hup => log_hup(),
            Wake::Control(p) => {
                if let Control::Status(st, reply) = self.control(config, started, p) {
                    self.rt.block_on(send_status(st, hb, reply));
                }
            }
            Wake::Link(Some(ev)) => self.link_changed(ev),
            Wake::Link(None) => {
                bail!(
                    "the netlink link-event subscription ended; interface tracking would go blind"
                );
            }
            Wake::Membership(Some(ev)) => self.membership_event(config, ev),
            Wake::Membership(None) => {
                bail!("the heartbeat driver stopped");
            }
            Wake::Fenced(outcome) => self.pair_fenced(outcome, Instant::now()),
            Wake::Quorum(true) => self.apply_quorum(Instant::now()),
            Wake::Quorum(false) => {
                bail!("the Raft member stopped; no lease can be renewed");
            }
            Wake::Health(ev) => self.check_changed(ev),
        }
        Ok(true)
    }

    /// Before the loops, on the runtime: signal handlers, the control socket, and every
    /// source the runtime thread forwards.
    async fn open_sources(
        &mut self,
        config: &Config,
        links: LinkMonitor,
        health_rx: mpsc::Receiver<HealthEvent>,
        hb: Option<&mut tandem_heartbeat::Heartbeat>,
    ) -> anyhow::Result<(Sources, tokio::task::JoinHandle<()>)> {
        let sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        let sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
        let listener = control::bind(&config.node.control_socket).with_context(|| {
            format!(
                "binding the control socket {}",
                config.node.control_socket.display()
            )
        })?;
        let (ctl_tx, ctl_rx) = mpsc::channel::<Pending>(16);
        let server = tokio::spawn(control::serve(listener, ctl_tx, self.events.clone()));
        let sources = Sources {
            sigterm,
            sigint,
            sighup,
            ctl_rx,
            links,
            health_rx,
            membership: hb.map(|h| h.take_events()),
            lease_changes: self.leases.clone().map(Changes::new),
            fence_rx: self.fence_rx.take(),
        };
        Ok((sources, server))
    }

    /// The VRRP loop's start: the cores' start-up.
    fn loop_startup(&mut self, config: &Config, nl: &Netlink) {
        let now = Instant::now();
        for inst in &mut self.insts {
            inst.core.startup(now);
        }
        self.retrack(now);
        self.run_actions(nl);
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        tracing::info!(
            node = %config.node.name,
            instances = self.insts.len(),
            "tandem running"
        );
    }

    /// The VRRP loop's end on a clean stop: priority 0 from every master, VIPs and leases
    /// given back.
    fn loop_shutdown(&mut self, nl: &Netlink) {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        let now = Instant::now();
        for inst in &mut self.insts {
            inst.core.shutdown(now);
        }
        self.run_actions(nl);
        self.rt.clone().block_on(self.release_leases());
    }

    /// A control request: answered here, spawned through the Raft log, or (status) handed
    /// back for the heartbeat snapshot the loop awaits.
    #[inline(never)]
    fn control(&mut self, config: &Config, started: Instant, p: Pending) -> Control {
        let op = match p.request {
            Request::Status => {
                return Control::Status(Box::new(self.status(config, started)), p.reply);
            }
            // Served by the control task straight from the event log.
            Request::Events { .. } => Err("events are streamed by the control task".to_string()),
            Request::Standby { node, standby } => {
                self.quorum_op(config, Op::Standby { node, standby })
            }
            Request::Move { group, node } => self.quorum_op(config, Op::Prefer { group, node }),
            Request::NodeAdd {
                name,
                address,
                role,
            } => quorum::node_add(config, name, &address, role)
                .and_then(|op| self.quorum_op(config, op)),
            Request::RecordFence { record } => {
                if self.quorum.is_some() {
                    Ok(Op::RecordFence(record))
                } else {
                    self.keep_fence(record);
                    let _ = p.reply.send(Response {
                        ok: true,
                        error: None,
                        status: None,
                        committed: None,
                    });
                    return Control::Done;
                }
            }
            Request::NodeRemove { name } => {
                let op = Op::Membership(MembershipChange::Remove { name });
                self.quorum_op(config, op)
            }
        };
        match op {
            Ok(op) => {
                self.spawn_op(op, p.reply);
                Control::Spawned
            }
            Err(e) => {
                let _ = p.reply.send(Response::error(e));
                Control::Done
            }
        }
    }

    #[inline(never)]
    fn link_changed(&mut self, ev: LinkEvent) {
        if let Some(old) = self.links.get(&ev.name).copied() {
            if old != ev.up {
                tracing::info!(interface = %ev.name, up = ev.up, "link");
                self.events.emit(serde_json::json!({
                    "type": "link", "interface": ev.name, "up": ev.up,
                }));
                self.links.insert(ev.name, ev.up);
                self.retrack(Instant::now());
            }
        }
    }

    #[inline(never)]
    fn membership_event(&mut self, config: &Config, ev: tandem_heartbeat::Event) {
        let json = self.peers.apply(&ev.kind);
        tracing::info!(event = %json, "membership");
        self.events.emit(json);
        let came_back = self
            .pair
            .as_mut()
            .is_some_and(|pf| pair_peer_event(pf, &ev));
        if came_back {
            self.pair_unfence(config);
        }
    }

    #[inline(never)]
    fn check_changed(&mut self, ev: HealthEvent) {
        tracing::info!(
            check = %ev.check,
            from = ?ev.transition.from,
            to = ?ev.transition.to,
            message = %ev.outcome.message,
            "check"
        );
        self.events.emit(serde_json::json!({
            "type": "check",
            "check": ev.check,
            "from": ev.transition.from,
            "to": ev.transition.to,
            "message": ev.outcome.message,
        }));
        self.checks.insert(ev.check, ev.transition.to);
        self.retrack(Instant::now());
    }

    #[cold]
    #[inline(never)]
    fn receive_failed(&self, i: usize, e: std::io::Error) {
        tracing::warn!(interface = %self.sockets[i].ifname, error = %e, "VRRP receive failed");
    }

    /// track_file: time to read the files again.
    #[inline(never)]
    fn file_poll(&mut self, now: Instant) {
        self.next_file_poll = Some(now + FILE_POLL);
        if self.poll_files() {
            self.retrack(now);
        }
    }

    /// Read every packet already queued, without waiting.
    fn drain_queued(&mut self, rbuf: &mut [u8]) {
        for i in 0..self.sockets.len() {
            // Bounded: a flood must not keep the timers from ever running.
            for _ in 0..1024 {
                match self.sockets[i].sock.try_recv(rbuf) {
                    Ok(Some(meta)) => self.dispatch(i, meta, rbuf, Instant::now()),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(interface = %self.sockets[i].ifname, error = %e, "VRRP receive failed");
                        break;
                    }
                }
            }
        }
    }

    /// Hand one received packet to the instance that serves its VRID.
    fn dispatch(&mut self, si: usize, meta: RecvMeta, buf: &[u8], now: Instant) {
        let sock = &mut self.sockets[si];
        sock.received += 1;
        tracing::trace!(src = %meta.src, len = meta.len, ttl = meta.ttl, interface = %sock.ifname, "packet");
        let end = (meta.payload_offset + meta.len).min(buf.len());
        let payload = &buf[meta.payload_offset.min(end)..end];
        if payload.len() < 2 {
            sock.dropped_truncated += 1;
            tracing::debug!(src = %meta.src, "dropped: too short to name a VRID");
            return;
        }
        let vrid = payload[1];
        if self
            .insts
            .iter()
            .any(|i| i.src == meta.src && i.socket == si)
        {
            sock.own_ignored += 1;
            return;
        }
        let Some(inst) = self
            .insts
            .iter_mut()
            .find(|i| i.socket == si && i.cfg.virtual_router_id == vrid)
        else {
            sock.dropped_unknown_vrid += 1;
            tracing::debug!(src = %meta.src, vrid, interface = %sock.ifname, "dropped: no instance for this VRID");
            return;
        };
        if let Err(reason) = inst
            .core
            .handle_packet(now, meta.src, meta.dst, meta.ttl, payload)
        {
            tracing::debug!(instance = %inst.cfg.name, src = %meta.src, ?reason, "dropped advert");
        } else if inst.core.state() == State::Backup {
            if let Some(m) = inst.core.master_addr().filter(|m| *m != inst.src) {
                inst.heard_master = Some(m);
            }
        }
    }

    /// Execute every action the cores have queued, in order. Returns whether VIPs were added
    /// or removed (what a pair's heartbeat held list follows).
    fn run_actions(&mut self, nl: &Netlink) -> bool {
        let mut vips_changed = false;
        for ii in 0..self.insts.len() {
            while let Some(action) = self.insts[ii].core.poll_action() {
                let inst = &mut self.insts[ii];
                match action {
                    Action::SendAdvert { priority } => {
                        let sock = &mut self.sockets[inst.socket];
                        let sbuf = &mut self.sbuf[..];
                        for dst in &inst.dsts {
                            let n = inst.core.encode_advert(priority, inst.src, *dst, sbuf);
                            if n == 0 {
                                // Only a config the validator should have refused gets here.
                                sock.send_errors += 1;
                                tracing::error!(instance = %inst.cfg.name, "advert does not fit on the wire; not sent");
                                continue;
                            }
                            if let Err(e) = sock.sock.send_to(&sbuf[..n], *dst) {
                                sock.send_errors += 1;
                                tracing::warn!(instance = %inst.cfg.name, %dst, error = %e, "sending advert failed");
                            }
                        }
                    }
                    Action::AddVips => {
                        self.rt.block_on(add_vips(nl, inst));
                        vips_changed = true;
                    }
                    Action::RemoveVips => {
                        self.rt.block_on(remove_vips(nl, inst));
                        vips_changed = true;
                    }
                    Action::SendGratuitous { repeat } => {
                        send_gratuitous(&mut self.garps[inst.garp].sender, inst, repeat)
                    }
                    Action::Transition { from, to } => self.transition(ii, from, to),
                }
            }
        }
        vips_changed
    }

    /// A core changed state: log it, announce it, run the notify script.
    #[inline(never)]
    fn transition(&mut self, ii: usize, from: State, to: State) {
        let inst = &mut self.insts[ii];
        inst.state_since = Instant::now();
        let prio0 = inst.core.counters().priority_zero_received;
        let handover = prio0 != inst.prio0_seen;
        inst.prio0_seen = prio0;
        let had_master = inst.heard_master.take();
        if from == State::Backup && to == State::Master && !handover && had_master.is_some() {
            let alive = self.peers.alive();
            if !alive.is_empty() {
                let who: Vec<String> = alive
                    .iter()
                    .map(|(n, ch)| format!("{n} (channels {ch:?})"))
                    .collect();
                let msg = format!(
                    "took over on Master_Down_Interval from master {} while {} \
                     still up on heartbeat: a network split, not a dead peer",
                    had_master.map(|a| a.to_string()).unwrap_or_default(),
                    who.join(", ")
                );
                tracing::warn!(instance = %inst.cfg.name, "{msg}");
                self.events.emit(serde_json::json!({
                    "type": "split_suspected", "instance": inst.cfg.name, "message": msg,
                }));
                inst.split = Some(msg);
            }
        } else if to != State::Master {
            inst.split = None;
        }
        tracing::info!(
            instance = %inst.cfg.name,
            vrid = inst.cfg.virtual_router_id,
            from = state_name(from),
            to = state_name(to),
            priority = inst.core.priority(),
            master = ?inst.core.master_addr(),
            "transition"
        );
        // keepalived's notify states; Initialize is only reached on stop.
        let word = match to {
            State::Initialize => "STOP",
            other => state_name(other),
        };
        self.events.emit(serde_json::json!({
            "type": "transition",
            "instance": inst.cfg.name,
            "from": state_name(from),
            "to": word,
            "priority": inst.core.priority(),
        }));
        if let Some(script) = &inst.cfg.notify {
            self.notifier.notify(
                script.clone(),
                "INSTANCE",
                &inst.cfg.name,
                word,
                inst.core.priority(),
                inst.cfg.notify_timeout,
            );
        }
    }

    /// Checks an operator's quorum request against the config before it goes to the log.
    fn quorum_op(&self, config: &Config, op: Op) -> Result<Op, String> {
        if self.quorum.is_none() {
            return Err(
                "this node runs no quorum: [cluster] with a mode = \"quorum\" instance or an \
                 arbiter is needed"
                    .to_string(),
            );
        }
        // From the Raft membership, not the config: members added with `tandem node add`
        // are not in this node's config.
        let members = self
            .quorum
            .as_ref()
            .map(|q| q.status().members)
            .unwrap_or_default();
        let voter = |n: &str| {
            members
                .iter()
                .any(|m| m.name == n && m.voter && m.role == tandem_quorum::MemberRole::Voter)
        };
        match &op {
            Op::Standby { node, .. } if !voter(node) => {
                Err(format!("{node} is not a voter of the cluster"))
            }
            Op::Prefer { group, node } => {
                let known = self
                    .leases
                    .as_ref()
                    .is_some_and(|v| v.borrow().contains_key(group))
                    || config
                        .vrrp_instances
                        .iter()
                        .any(|i| &i.name == group && i.mode == Mode::Quorum);
                if !known {
                    return Err(format!("{group} is not a quorum group"));
                }
                match node {
                    Some(n) if !voter(n) => Err(format!("{n} is not a voter of the cluster")),
                    _ => Ok(op),
                }
            }
            _ => Ok(op),
        }
    }

    /// Runs `op` through the log without holding up the event loop; replies when committed.
    fn spawn_op(&self, op: Op, reply: tokio::sync::oneshot::Sender<Response>) {
        let Some(h) = self.quorum.clone() else {
            return;
        };
        tokio::spawn(async move {
            let resp = match h.op(op).await {
                Ok(at) => Response {
                    ok: true,
                    error: None,
                    status: None,
                    committed: Some(at),
                },
                Err(e) => Response::error(e),
            };
            let _ = reply.send(resp);
        });
    }

    /// On a clean stop, after the VIPs are gone: give back every lease we hold so another
    /// node takes over at once instead of after the lease runs out. Bounded in time.
    async fn release_leases(&mut self) {
        let (Some(h), Some(rx)) = (&self.quorum, &self.leases) else {
            return;
        };
        let leases = rx.borrow().clone();
        for (group, g) in leases.iter() {
            if g.holder.as_deref() != Some(self.me.as_str()) {
                continue;
            }
            let op = Op::Release {
                group: group.clone(),
                epoch: g.epoch,
            };
            match tokio::time::timeout(Duration::from_secs(1), h.op(op)).await {
                Ok(Ok(_)) => tracing::info!(%group, epoch = g.epoch, "lease released"),
                Ok(Err(e)) => {
                    tracing::warn!(%group, error = %e, "lease release failed; it will run out instead")
                }
                Err(_) => {
                    tracing::warn!(%group, "lease release timed out; it will run out instead")
                }
            }
        }
    }

    async fn release_all(&mut self, nl: &Netlink) {
        for inst in &mut self.insts {
            if inst.vips_held {
                remove_vips(nl, inst).await;
            }
        }
    }

    fn status(&self, config: &Config, started: Instant) -> StatusReport {
        let now = Instant::now();
        let ms = |d: Duration| d.as_millis() as u64;
        let instances = self
            .insts
            .iter()
            .map(|i| {
                let counters = match serde_json::to_value(i.core.counters()) {
                    Ok(serde_json::Value::Object(m)) => m
                        .into_iter()
                        .filter_map(|(k, v)| v.as_u64().map(|n| (k, n)))
                        .collect(),
                    _ => BTreeMap::new(),
                };
                InstanceStatus {
                    name: i.cfg.name.clone(),
                    interface: i.cfg.interface.clone(),
                    vrid: i.cfg.virtual_router_id,
                    version: match i.cfg.version {
                        VrrpVersion::V2 => "v2".into(),
                        VrrpVersion::V3 => "v3".into(),
                    },
                    family: if i.src.is_ipv6() { "ipv6" } else { "ipv4" }.into(),
                    state: state_name(i.core.state()).into(),
                    priority: i.core.priority(),
                    configured_priority: i.cfg.priority,
                    preempt: i.cfg.preempt,
                    master: i.core.master_addr().map(|a| a.to_string()),
                    advert_int_ms: ms(i.cfg.advert_int),
                    master_adver_interval_ms: ms(i.core.master_adver_interval()),
                    master_down_interval_ms: ms(i.core.master_down_interval()),
                    skew_time_ms: ms(i.core.skew_time()),
                    vips: i.cfg.virtual_ipaddress.iter().map(prefix_str).collect(),
                    vips_held: i.vips_held,
                    in_state_ms: ms(now.saturating_duration_since(i.state_since)),
                    counters,
                    fault: i.effective.fault,
                    split: i.split.clone(),
                    tracked: i.effective.contributions.clone(),
                    sync_group: i.sync_group.clone(),
                    notify: i.cfg.notify.as_ref().map(|p| p.display().to_string()),
                }
            })
            .collect();
        let sockets = self
            .sockets
            .iter()
            .map(|s| SocketStatus {
                interface: s.ifname.clone(),
                family: if s.v6 { "ipv6" } else { "ipv4" }.into(),
                received: s.received,
                dropped_truncated: s.dropped_truncated,
                dropped_unknown_vrid: s.dropped_unknown_vrid,
                own_ignored: s.own_ignored,
                send_errors: s.send_errors,
            })
            .collect();
        StatusReport {
            node: config.node.name.clone(),
            pid: std::process::id(),
            uptime_ms: ms(now.saturating_duration_since(started)),
            instances,
            sockets,
            membership: None,
            quorum: self
                .quorum
                .as_ref()
                .map(|h| quorum::status_json(&h.status(), now)),
            checks: self
                .health
                .as_ref()
                .map(|h| h.snapshot())
                .unwrap_or_default(),
            fencing: self
                .pair
                .as_ref()
                .and_then(|p| p.status(now, self.insts.iter().any(|i| i.core.takeover_pending()))),
            pair_fences: self.pair.as_ref().map(|p| p.counters()),
            fence_history: self.fence_history.iter().cloned().collect(),
        }
    }
}

/// The sources the runtime thread watches for the VRRP loop: everything but the VRRP
/// sockets and the timer.
struct Sources {
    sigterm: Signal,
    sigint: Signal,
    sighup: Signal,
    ctl_rx: mpsc::Receiver<Pending>,
    links: LinkMonitor,
    health_rx: mpsc::Receiver<HealthEvent>,
    membership: Option<mpsc::UnboundedReceiver<tandem_heartbeat::Event>>,
    lease_changes: Option<Changes<std::sync::Arc<Leases>>>,
    fence_rx: Option<mpsc::Receiver<(FenceAction, FenceOutcome)>>,
}

impl Sources {
    /// Hands every event to the VRRP loop, in the order of [`poll`](Self::poll), ringing the
    /// bell after each. Once a last event is sent (stop, or a source that ended), waits to
    /// be dropped: the loop leaves on it.
    async fn forward(&mut self, tx: &std::sync::mpsc::Sender<Wake>, bell: &EventFd) {
        loop {
            let w = poll_fn(|cx| self.poll(cx)).await;
            let last = w.is_last();
            if tx.send(w).is_err() {
                break;
            }
            if let Err(e) = bell.write(1) {
                tracing::error!(error = %e, "cannot wake the VRRP loop");
            }
            if last {
                break;
            }
        }
        std::future::pending::<()>().await;
    }

    /// In priority order. A closed channel counts as pending (it used to be a `select!`
    /// branch whose `Some(..)` pattern failed).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Wake> {
        if self.sigterm.poll_recv(cx).is_ready() {
            return Poll::Ready(Wake::Stop("SIGTERM"));
        }
        if self.sigint.poll_recv(cx).is_ready() {
            return Poll::Ready(Wake::Stop("SIGINT"));
        }
        if self.sighup.poll_recv(cx).is_ready() {
            return Poll::Ready(Wake::Hup);
        }
        if let Poll::Ready(Some(p)) = self.ctl_rx.poll_recv(cx) {
            return Poll::Ready(Wake::Control(p));
        }
        if let Poll::Ready(ev) = self.links.poll_next(cx) {
            return Poll::Ready(Wake::Link(ev));
        }
        if let Poll::Ready(Some(ev)) = self.health_rx.poll_recv(cx) {
            return Poll::Ready(Wake::Health(ev));
        }
        if let Some(m) = self.membership.as_mut() {
            if let Poll::Ready(ev) = m.poll_recv(cx) {
                return Poll::Ready(Wake::Membership(ev));
            }
        }
        if let Some(l) = self.lease_changes.as_mut() {
            if let Poll::Ready(ok) = l.poll_changed(cx) {
                return Poll::Ready(Wake::Quorum(ok));
            }
        }
        if let Some(f) = self.fence_rx.as_mut() {
            if let Poll::Ready(Some(outcome)) = f.poll_recv(cx) {
                return Poll::Ready(Wake::Fenced(outcome));
            }
        }
        Poll::Pending
    }
}

/// What the loop still has to do for a control request.
enum Control {
    /// Answered.
    Done,
    /// Handed to a task that answers once the log has committed it.
    Spawned,
    /// A status, to be completed with the heartbeat snapshot and sent.
    Status(Box<StatusReport>, tokio::sync::oneshot::Sender<Response>),
}

/// Completes a status with the heartbeat layer's snapshot and sends it.
async fn send_status(
    mut st: Box<StatusReport>,
    hb: Option<&tandem_heartbeat::Heartbeat>,
    reply: tokio::sync::oneshot::Sender<Response>,
) {
    if let Some(h) = hb {
        st.membership = h
            .snapshot()
            .await
            .and_then(|s| serde_json::to_value(s).ok());
    }
    let _ = reply.send(Response {
        ok: true,
        error: None,
        status: Some(*st),
        committed: None,
    });
}

#[cold]
#[inline(never)]
fn log_stop(why: &str) {
    tracing::info!("{why}: giving up mastership and leaving");
}

#[cold]
#[inline(never)]
fn log_hup() {
    tracing::warn!(
        "SIGHUP: live reload is not supported yet; the running config stays, restart to \
         apply changes"
    );
}

#[inline(never)]
fn watchdog_ping() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
}

#[inline(never)]
fn send_gratuitous(g: &mut Gratuitous, inst: &Inst, repeat: u32) {
    for _ in 0..repeat {
        for p in &inst.cfg.virtual_ipaddress {
            let r = match (p.addr, inst.link_local) {
                (IpAddr::V4(v4), _) => g.send_garp(v4),
                (IpAddr::V6(v6), Some(ll)) => g.send_unsolicited_na(v6, ll),
                (IpAddr::V6(_), None) => Ok(()),
            };
            if let Err(e) = r {
                tracing::warn!(instance = %inst.cfg.name, vip = %p.addr, error = %e, "gratuitous ARP/NA failed");
            }
        }
    }
}

async fn add_vips(nl: &Netlink, inst: &mut Inst) {
    for p in &inst.cfg.virtual_ipaddress {
        if let Err(e) = nl.add_address(inst.ifindex, p.addr, p.prefix_len).await {
            tracing::error!(instance = %inst.cfg.name, vip = %prefix_str(p), error = %e, "adding VIP failed");
        }
    }
    inst.vips_held = true;
}

async fn remove_vips(nl: &Netlink, inst: &mut Inst) {
    for p in &inst.cfg.virtual_ipaddress {
        if let Err(e) = nl.del_address(inst.ifindex, p.addr, p.prefix_len).await {
            tracing::error!(instance = %inst.cfg.name, vip = %prefix_str(p), error = %e, "removing VIP failed");
        }
    }
    inst.vips_held = false;
}

/// systemd's watchdog period (WATCHDOG_USEC), pinged at half of it from the event loop
/// itself so a wedged loop stops the pings.
fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec / 2))
    } else {
        None
    }
}

/// Feeds a heartbeat verdict to the pair policy: up on any channel, or down on all of them
/// (left cleanly or silent). Returns true when a peer we fenced came back as a new process.
fn pair_peer_event(pf: &mut PairFence, ev: &tandem_heartbeat::Event) -> bool {
    use tandem_heartbeat::{DownReason, EventKind};
    if ev.kind.peer() != pf.peer() {
        return false;
    }
    match &ev.kind {
        EventKind::PeerUp { incarnation, .. } => pf.peer_incarnation(*incarnation),
        EventKind::PeerRestarted {
            new_incarnation, ..
        } => pf.peer_incarnation(*new_incarnation),
        EventKind::ChannelUp { .. } => {
            pf.peer_up();
            false
        }
        EventKind::PeerDown { reason, .. } => {
            pf.peer_down(ev.at, *reason == DownReason::Left);
            false
        }
        // The last channel going down is followed by PeerDown.
        EventKind::ChannelDown { .. } => false,
        EventKind::PeerHeld { held, .. } => {
            pf.set_peer_held(held.clone());
            false
        }
    }
}
