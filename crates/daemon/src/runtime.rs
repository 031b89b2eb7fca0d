//! The event loop: one task owns every VRRP instance, its sockets and its timers.
//!
//! Order of work on each wake-up matters for two of tandem's promises:
//! - a stall (VM pause, scheduler hiccup) alone must never cause a takeover, so when a timer
//!   fires the loop first drains every advert already queued on the sockets, and only then
//!   lets the cores act on their deadlines;
//! - on takeover the advert goes out before the VIPs are configured and the gratuitous ARP /
//!   NA follows at once, which is the order the cores emit their actions in.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::net::{IpAddr, Ipv6Addr};
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tandem_config::{Authentication, Config, IpPrefix, VrrpInstance, VrrpVersion};
use tandem_netio::{vrrp_group, Gratuitous, InterfaceInfo, Netlink, RecvMeta, VrrpSocket};
use tandem_vrrp::{Action, Auth, Instance, InstanceConfig, State, Version};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::control::{self, Pending, Request, Response};
use crate::status::{InstanceStatus, SocketStatus, StatusReport};

/// Large enough for any VRRP packet with its IPv4 header (255 IPv6 addresses = 4088 bytes).
const RECV_BUF: usize = 8192;
const SEND_BUF: usize = tandem_vrrp::wire::MAX_LEN;

enum Wake {
    Stop(&'static str),
    Hup,
    Control(Pending),
    Packet(usize, std::io::Result<RecvMeta>),
    Timer,
}

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
}

/// Run the daemon until SIGTERM / SIGINT. On a clean stop every master sends priority 0 and
/// every VIP is removed; on a fatal error the VIPs are removed too before the error returns.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let nl = Netlink::new().context("opening netlink")?;
    let mut d = Daemon::build(&config, &nl).await?;
    let result = d.main_loop(&config, &nl, started).await;
    // Whatever happened, the VIPs must not stay behind: a node that is not running VRRP must
    // not answer for the virtual addresses.
    d.release_all(&nl).await;
    let _ = std::fs::remove_file(&config.node.control_socket);
    result
}

struct Daemon {
    insts: Vec<Inst>,
    sockets: Vec<Socket>,
    garps: Vec<Garp>,
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
    }
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
        let mut d = Daemon {
            insts: Vec::new(),
            sockets: Vec::new(),
            garps: Vec::new(),
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
            });
        }
        Ok(d)
    }

    async fn main_loop(
        &mut self,
        config: &Config,
        nl: &Netlink,
        started: Instant,
    ) -> anyhow::Result<()> {
        let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
        let listener = control::bind(&config.node.control_socket).with_context(|| {
            format!(
                "binding the control socket {}",
                config.node.control_socket.display()
            )
        })?;
        let (ctl_tx, mut ctl_rx) = mpsc::channel::<Pending>(16);
        let server = tokio::spawn(control::serve(listener, ctl_tx));

        let watchdog = watchdog_interval();
        let mut next_watchdog = watchdog.map(|w| Instant::now() + w);

        let now = Instant::now();
        for inst in &mut self.insts {
            inst.core.startup(now);
        }
        self.run_actions(nl).await;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        tracing::info!(
            node = %config.node.name,
            instances = self.insts.len(),
            "tandem running"
        );

        let mut rbuf = vec![0u8; RECV_BUF];
        loop {
            let mut deadline = self
                .insts
                .iter()
                .filter_map(|i| i.core.poll_timeout())
                .min();
            if let Some(w) = next_watchdog {
                deadline = Some(deadline.map_or(w, |d| d.min(w)));
            }
            let sleep = tokio::time::sleep_until(
                deadline
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
                    .into(),
            );
            tokio::pin!(sleep);
            let wake = {
                let sockets = &self.sockets;
                let rbuf = &mut rbuf;
                tokio::select! {
                    biased;
                    _ = sigterm.recv() => Wake::Stop("SIGTERM"),
                    _ = sigint.recv() => Wake::Stop("SIGINT"),
                    _ = sighup.recv() => Wake::Hup,
                    Some(p) = ctl_rx.recv() => Wake::Control(p),
                    (i, r) = poll_fn(|cx| {
                        for (i, s) in sockets.iter().enumerate() {
                            if let Poll::Ready(r) = s.sock.poll_recv(cx, rbuf) {
                                return Poll::Ready((i, r));
                            }
                        }
                        Poll::Pending
                    }) => Wake::Packet(i, r),
                    _ = &mut sleep => Wake::Timer,
                }
            };
            match wake {
                Wake::Stop(why) => {
                    tracing::info!("{why}: giving up mastership and leaving");
                    break;
                }
                Wake::Hup => {
                    tracing::warn!(
                        "SIGHUP: live reload is not supported yet; the running config stays, \
                         restart to apply changes"
                    );
                }
                Wake::Control(p) => {
                    let resp = match p.request {
                        Request::Status => Response {
                            ok: true,
                            error: None,
                            status: Some(self.status(config, started)),
                        },
                    };
                    let _ = p.reply.send(resp);
                }
                Wake::Packet(i, Ok(meta)) => self.dispatch(i, meta, &rbuf, Instant::now()),
                Wake::Packet(i, Err(e)) => {
                    tracing::warn!(interface = %self.sockets[i].ifname, error = %e, "VRRP receive failed");
                }
                Wake::Timer => {
                    // Adverts that arrived while we were not scheduled are older than the
                    // timers that now look expired: give them to the cores first.
                    self.drain_queued(&mut rbuf);
                    let now = Instant::now();
                    for inst in &mut self.insts {
                        if inst.core.poll_timeout().is_some_and(|t| t <= now) {
                            inst.core.handle_timeout(now);
                        }
                    }
                    if let (Some(w), Some(at)) = (watchdog, next_watchdog) {
                        if at <= now {
                            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                            next_watchdog = Some(now + w);
                        }
                    }
                }
            }
            self.run_actions(nl).await;
        }

        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        server.abort();
        let now = Instant::now();
        for inst in &mut self.insts {
            inst.core.shutdown(now);
        }
        self.run_actions(nl).await;
        Ok(())
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
        }
    }

    /// Execute every action the cores have queued, in order.
    async fn run_actions(&mut self, nl: &Netlink) {
        let mut sbuf = [0u8; SEND_BUF];
        for ii in 0..self.insts.len() {
            while let Some(action) = self.insts[ii].core.poll_action() {
                let inst = &mut self.insts[ii];
                match action {
                    Action::SendAdvert { priority } => {
                        let sock = &mut self.sockets[inst.socket];
                        for dst in &inst.dsts {
                            let n = inst.core.encode_advert(priority, inst.src, *dst, &mut sbuf);
                            if n == 0 {
                                // Only a config the validator should have refused gets here.
                                sock.send_errors += 1;
                                tracing::error!(instance = %inst.cfg.name, "advert does not fit on the wire; not sent");
                                continue;
                            }
                            if let Err(e) = sock.sock.send_to(&sbuf[..n], *dst).await {
                                sock.send_errors += 1;
                                tracing::warn!(instance = %inst.cfg.name, %dst, error = %e, "sending advert failed");
                            }
                        }
                    }
                    Action::AddVips => {
                        for p in &inst.cfg.virtual_ipaddress {
                            if let Err(e) = nl.add_address(inst.ifindex, p.addr, p.prefix_len).await
                            {
                                tracing::error!(instance = %inst.cfg.name, vip = %prefix_str(p), error = %e, "adding VIP failed");
                            }
                        }
                        inst.vips_held = true;
                    }
                    Action::RemoveVips => {
                        remove_vips(nl, inst).await;
                    }
                    Action::SendGratuitous { repeat } => {
                        let g = &mut self.garps[inst.garp].sender;
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
                    Action::Transition { from, to } => {
                        inst.state_since = Instant::now();
                        tracing::info!(
                            instance = %inst.cfg.name,
                            vrid = inst.cfg.virtual_router_id,
                            from = state_name(from),
                            to = state_name(to),
                            priority = inst.core.priority(),
                            master = ?inst.core.master_addr(),
                            "transition"
                        );
                    }
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
        }
    }
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
