//! RFC 5798 §6.4 state machine for one virtual router (one VRID on one interface, one family).
//!
//! Sans-IO in the manner of quinn-proto: inputs are method calls carrying the current
//! `Instant` ([`Instance::startup`], [`Instance::handle_packet`], [`Instance::handle_timeout`],
//! ...); outputs are [`Action`]s drained with [`Instance::poll_action`] and the next deadline
//! from [`Instance::poll_timeout`]. No clock is read here.
//!
//! The rules, by source:
//!
//! * Timers (RFC 5798 §6.1): Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256
//!   for v3; (256 − Priority) / 256 s for v2 (RFC 3768 §6.1). Master_Down_Interval =
//!   3 × Master_Adver_Interval + Skew_Time. Priority is our current priority.
//! * Initialize (§6.4.1): on Startup the owner (priority 255) sends an advert, announces its
//!   addresses and becomes Master; anyone else sets Master_Adver_Interval to its own
//!   Advertisement_Interval, arms Master_Down_Timer and becomes Backup.
//! * Backup (§6.4.2): Master_Down_Timer fires → Master. A priority-0 advert sets
//!   Master_Down_Timer to Skew_Time. An advert with priority ≥ ours, or any advert when
//!   preemption is off, sets Master_Adver_Interval from the advert and resets the timer; a
//!   lower-priority advert with preemption on is discarded, so the timer runs out and we
//!   preempt.
//! * Master (§6.4.3): Adver_Timer fires → advert. A priority-0 advert is answered with an
//!   advert at once. A higher priority, or an equal priority from a greater primary address,
//!   sends us to Backup; anything lower is discarded.
//! * Receive checks (RFC 5798 §7.1, RFC 3768 §7.1), in order, each with its own
//!   [`DropReason`] counter and no other effect: TTL 255, message well formed (the codec:
//!   length, version, type, checksum, interval), version equal to ours, VRID, v2
//!   authentication, address count equal to our VIP count (keepalived), and for v2 an
//!   advertisement interval equal to ours (RFC 3768 §7.1 "MUST discard").
//!
//! Deliberate choices where the RFC is silent or keepalived differs:
//!
//! * The §7.1 rule that an address owner discards every advert for its VRID is not applied:
//!   two routers configured with priority 255 would then both stay Master forever. The §6.4.3
//!   tie-break (greater primary address wins) settles it instead.
//! * A Master hearing its own advert (source = our primary address, e.g. multicast loop)
//!   neither steps down nor answers it.
//! * keepalived extensions, as configured in [`InstanceConfig`]: `preempt_delay` (a
//!   lower-priority Master is not preempted until that long after startup; before then its
//!   adverts reset the down timer like equal ones), `higher_prio_send_advert` and
//!   `garp_lower_prio_repeat` (a Master hearing a lower-priority Master answers at once, so
//!   the other side steps down promptly when a partition heals), and the gratuitous ARP /
//!   unsolicited NA schedule (`garp_master_delay`, `garp_master_refresh`).
//! * Fault (keepalived's FAULT) is entered and left only with [`Instance::set_fault`]; it
//!   holds no VIPs and arms no timers, and leaving it goes through Startup again.
//! * Timers fire at most once per [`Instance::handle_timeout`] call however late it comes,
//!   and periodic timers are re-armed from `now`: after a stall a Master sends one advert,
//!   not a burst of the ones it missed.
//! * Lease gate (`lease_gated`, the cluster's `quorum` mode): the right to be Master is a
//!   lease granted through the Raft log, reported with [`Instance::set_lease`], not the wire
//!   election. Why: in `quorum` mode the VIP must follow the majority's decision, and the wire
//!   election cannot see a partition — both sides of a split would each win their own
//!   election and hold the VIP. So a gated instance becomes Master at once when the lease
//!   arrives (Backup or Startup; no Master_Down_Interval to wait, the majority has decided),
//!   gives up exactly as with priority 0 when it is revoked, and never takes over through
//!   Master_Down_Timer or priority 255 without it (the expiry is re-armed and counted in
//!   `lease_blocked_takeovers`). A gated Master does not step down for a higher-priority
//!   advert either: the other side is misconfigured or a stale holder, so it is counted in
//!   `lease_conflicts` and answered with an advert at once so that a VRRP peer hears us —
//!   at most one answer per Advertisement_Interval, so that two routers that both refuse to
//!   yield (two gated holders, or a keepalived peer answering with
//!   `higher_prio_send_advert`) cannot ping-pong adverts at wire speed. Fault still wins:
//!   a faulted instance holds nothing, lease or not. A gated Backup accepts every Master's
//!   adverts as with preemption off (it cannot preempt anyway), so status shows the Master
//!   and `lease_blocked_takeovers` counts only a Master that fell silent while we lacked the
//!   lease; the rest of the advert handling is as without the gate.
//! * Takeover gate (`takeover_gated`, `fence_on_takeover` in `vrrp` mode): the wire election
//!   works as usual, but a Backup whose Master_Down_Timer runs out becomes Master only if the
//!   runtime allows it ([`Instance::set_takeover_allowed`]: the peer left cleanly, or was
//!   fenced and the fence verified, or no Master was there to take over from). Why: a silent
//!   Master's VIPs may still be configured (a hung or half-dead node); only a verified fence
//!   proves they are gone. A Master that announced its departure with priority 0 removed its
//!   VIPs first, so the Skew_Time takeover after it is never gated. A blocked expiry
//!   is counted in `fence_blocked_takeovers` and remembered; when the takeover is allowed
//!   later and no Master was heard meanwhile, the instance takes over after Skew_Time (so
//!   that of two Backups allowed at once, the higher priority wins as in a normal election).
//!   Preemption is not gated either: the expiry that follows discarding a live lower-priority
//!   Master's adverts takes over from a Master that is there and yields to our advert. A
//!   Master is never sent to Backup by the gate.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::wire::{self, Addresses, Auth, DecodeError, Family, Packet, Repr, Version};

/// Static configuration of one instance, already validated by the config crate.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub name: String,
    pub vrid: u8,
    /// Configured priority 1..=255 (255 = address owner).
    pub priority: u8,
    pub version: Version,
    /// Configured advertisement interval. v3: multiple of 10 ms, 10 ms ..= 40.95 s;
    /// v2: whole seconds 1..=255 s.
    pub advert_int: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub accept_mode: bool,
    /// Addresses carried in adverts (all of the advert family: the instance's family).
    pub vips: Vec<IpAddr>,
    /// Our primary address on the interface for this family: the IPv4 primary address or the
    /// IPv6 link-local address. Source of our adverts; used to break priority ties
    /// (RFC 5798 §6.4.3: the higher primary address wins).
    pub primary_addr: IpAddr,
    /// v2 only: authentication (None or simple text password).
    pub auth: Auth,
    /// keepalived's garp_master_delay: delay before the second round of GARP/NA after
    /// becoming master (zero = no second round).
    pub garp_master_delay: Duration,
    /// keepalived's garp_master_repeat: packets per round.
    pub garp_master_repeat: u32,
    /// keepalived's garp_master_refresh: periodic round while master (zero = off).
    pub garp_master_refresh: Duration,
    /// keepalived's garp_master_refresh_repeat.
    pub garp_master_refresh_repeat: u32,
    /// keepalived's garp_lower_prio_repeat: packets sent when a master hears a lower
    /// priority master (partition heal); zero = none.
    pub garp_lower_prio_repeat: u32,
    /// keepalived's higher_prio_send_advert: a master stepping down for a higher-priority
    /// one sends one last advert first (so the winner hears a lower-priority master and
    /// re-announces); and a master hearing a lower-priority master answers at once.
    pub higher_prio_send_advert: bool,
    /// Quorum mode: the instance may be Master only while the runtime says the lease is held
    /// ([`Instance::set_lease`]); the wire election no longer makes it Master or Backup.
    pub lease_gated: bool,
    /// `fence_on_takeover` in vrrp mode: Master_Down_Timer makes us Master only while the
    /// runtime allows takeovers ([`Instance::set_takeover_allowed`]).
    pub takeover_gated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum State {
    Initialize,
    Backup,
    Master,
    /// Administratively faulted (tracked interface down, health check): no VIPs, no adverts.
    Fault,
}

/// What the runtime must do, drained with [`Instance::poll_action`] in order.
///
/// The actions caused by one input come in the order they must be carried out; a
/// `Transition` comes last, after the actions of entering the new state (becoming Master:
/// `SendAdvert`, `AddVips`, `SendGratuitous`, then `Transition`; leaving it: `SendAdvert`
/// with priority 0 when giving up, `RemoveVips`, then `Transition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send one advertisement with this priority (to the multicast group, or to every
    /// unicast peer). Priority 0 = we are leaving Master.
    SendAdvert { priority: u8 },
    /// Configure all VIPs of the instance on the interface.
    AddVips,
    /// Remove all VIPs of the instance from the interface.
    RemoveVips,
    /// Send one round of `repeat` gratuitous ARPs (IPv4 VIPs) / unsolicited NAs (IPv6 VIPs).
    SendGratuitous { repeat: u32 },
    /// The instance changed state (for logs, notify scripts and status).
    Transition { from: State, to: State },
}

/// Why a received packet was dropped. One counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DropReason {
    /// TTL / hop limit other than 255 (RFC 5798 §7.1).
    BadTtl,
    Truncated,
    BadVersion,
    BadType,
    BadChecksum,
    /// The count field disagrees with the packet length, or with our configured VIP count.
    AddressCountMismatch,
    ZeroAdvertInterval,
    /// v2: auth type or password differ from ours (RFC 3768 §7.1).
    AuthMismatch,
    /// A VRID that no instance on this interface serves.
    UnknownVrid,
    /// v2: advertisement interval differs from ours (RFC 3768 §7.1 MUST discard).
    AdvertIntervalMismatch,
}

/// Per-instance counters; `Serialize` so status can print them as they are.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counters {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub priority_zero_sent: u64,
    pub priority_zero_received: u64,
    pub became_master: u64,
    pub became_backup: u64,
    pub transitions: u64,
    pub dropped_bad_ttl: u64,
    pub dropped_truncated: u64,
    pub dropped_bad_version: u64,
    pub dropped_bad_type: u64,
    pub dropped_bad_checksum: u64,
    pub dropped_address_count: u64,
    pub dropped_zero_advert_interval: u64,
    pub dropped_auth_mismatch: u64,
    pub dropped_unknown_vrid: u64,
    pub dropped_advert_interval_mismatch: u64,
    /// Lease gate: Master_Down_Timer expiries that did not make us Master for want of the
    /// lease.
    pub lease_blocked_takeovers: u64,
    /// Lease gate: adverts that would have sent us, a lease-holding Master, to Backup.
    pub lease_conflicts: u64,
    /// Takeover gate: Master_Down_Timer expiries that did not make us Master because the
    /// peer was neither alive nor fenced.
    pub fence_blocked_takeovers: u64,
}

fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

impl Counters {
    pub fn count_drop(&mut self, reason: DropReason) {
        bump(match reason {
            DropReason::BadTtl => &mut self.dropped_bad_ttl,
            DropReason::Truncated => &mut self.dropped_truncated,
            DropReason::BadVersion => &mut self.dropped_bad_version,
            DropReason::BadType => &mut self.dropped_bad_type,
            DropReason::BadChecksum => &mut self.dropped_bad_checksum,
            DropReason::AddressCountMismatch => &mut self.dropped_address_count,
            DropReason::ZeroAdvertInterval => &mut self.dropped_zero_advert_interval,
            DropReason::AuthMismatch => &mut self.dropped_auth_mismatch,
            DropReason::UnknownVrid => &mut self.dropped_unknown_vrid,
            DropReason::AdvertIntervalMismatch => &mut self.dropped_advert_interval_mismatch,
        });
    }

    /// Sum of all drop counters.
    pub fn dropped(&self) -> u64 {
        [
            self.dropped_bad_ttl,
            self.dropped_truncated,
            self.dropped_bad_version,
            self.dropped_bad_type,
            self.dropped_bad_checksum,
            self.dropped_address_count,
            self.dropped_zero_advert_interval,
            self.dropped_auth_mismatch,
            self.dropped_unknown_vrid,
            self.dropped_advert_interval_mismatch,
        ]
        .iter()
        .fold(0u64, |acc, &n| acc.saturating_add(n))
    }
}

impl From<DecodeError> for DropReason {
    fn from(err: DecodeError) -> DropReason {
        match err {
            DecodeError::Truncated => DropReason::Truncated,
            DecodeError::BadVersion => DropReason::BadVersion,
            DecodeError::BadType => DropReason::BadType,
            DecodeError::BadChecksum => DropReason::BadChecksum,
            DecodeError::AddressCountMismatch => DropReason::AddressCountMismatch,
            DecodeError::ZeroAdvertInterval => DropReason::ZeroAdvertInterval,
            DecodeError::AuthMismatch => DropReason::AuthMismatch,
            DecodeError::WrongVrid => DropReason::UnknownVrid,
        }
    }
}

/// What the state machine needs from a valid advert, copied out of the receive buffer.
#[derive(Debug, Clone, Copy)]
struct Advert {
    src: IpAddr,
    priority: u8,
    interval: Duration,
}

/// Priority a Master sends when it gives up mastership (RFC 5798 §6.4.3).
const PRIORITY_STOP: u8 = 0;
/// The address owner's priority (RFC 5798 §5.2.4).
const PRIORITY_OWNER: u8 = 255;

/// Advertisement_Interval as the wire can carry it, so that our own timers run on exactly
/// the interval peers read from our adverts. The config crate already validates the range;
/// this only keeps an out-of-range value from producing an advert we cannot encode.
fn wire_interval(version: Version, configured: Duration) -> Duration {
    match version {
        Version::V2 => Duration::from_secs(configured.as_secs().clamp(1, 255)),
        Version::V3 => {
            Duration::from_millis((configured.as_millis() / 10).clamp(1, 4095) as u64 * 10)
        }
    }
}

/// `None` (never) only for a duration beyond the platform's clock range, which a validated
/// configuration cannot produce.
fn deadline(now: Instant, after: Duration) -> Option<Instant> {
    now.checked_add(after)
}

/// Next deadline of a periodic timer that fired at `now`: one period after the previous
/// deadline while that is still ahead, else one period from `now`.
fn rearm(previous: Option<Instant>, now: Instant, period: Duration) -> Option<Instant> {
    match previous.and_then(|p| p.checked_add(period)) {
        Some(next) if next > now => Some(next),
        _ => deadline(now, period),
    }
}

/// One VRRP virtual router.
pub struct Instance {
    config: InstanceConfig,
    family: Family,
    /// Advertisement_Interval (RFC 5798 §6.1), rounded to what the wire carries.
    advert_interval: Duration,
    state: State,
    priority: u8,
    /// Set by [`Instance::set_fault`]; Startup then leads to Fault instead of Backup/Master.
    faulted: bool,
    /// Set by [`Instance::set_lease`]; only ever true when `config.lease_gated`.
    lease: bool,
    /// Takeover gate: whether a takeover is allowed now (only read when `takeover_gated`).
    takeover_allowed: bool,
    /// The Master_Down_Timer runs to Skew_Time after a priority-0 advert: the Master left and
    /// removed its VIPs, so the takeover needs no fence.
    handover: bool,
    /// When we last discarded a lower-priority Master's advert to preempt it: an expiry soon
    /// after is a preemption of a live Master, not a takeover from a silent one.
    preempting_since: Option<Instant>,
    /// Takeover gate: the Master_Down_Timer ran out while blocked and no Master was heard
    /// since; allowing the takeover then makes us Master at once.
    takeover_pending: bool,
    /// Lease gate: when we last answered a [`Counters::lease_conflicts`] advert.
    conflict_answered: Option<Instant>,
    master_adver_interval: Duration,
    master_addr: Option<IpAddr>,
    /// Before this instant a lower-priority Master is not preempted (keepalived
    /// preempt_delay, counted from startup).
    preempt_after: Option<Instant>,
    adver_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    garp_delay_timer: Option<Instant>,
    garp_refresh_timer: Option<Instant>,
    actions: VecDeque<Action>,
    counters: Counters,
}

impl Instance {
    /// Starts in `Initialize`; nothing happens until [`Instance::startup`].
    pub fn new(config: InstanceConfig) -> Self {
        let advert_interval = wire_interval(config.version, config.advert_int);
        Instance {
            family: Family::of(&config.primary_addr),
            advert_interval,
            state: State::Initialize,
            // Priority 0 on the wire means "leaving"; it can never be our standing priority.
            priority: config.priority.max(1),
            faulted: false,
            lease: false,
            takeover_allowed: false,
            takeover_pending: false,
            handover: false,
            preempting_since: None,
            conflict_answered: None,
            master_adver_interval: advert_interval,
            master_addr: None,
            preempt_after: None,
            adver_timer: None,
            master_down_timer: None,
            garp_delay_timer: None,
            garp_refresh_timer: None,
            // Enough for the longest burst one input causes, so that the advert path does
            // not allocate as long as the runtime drains the queue.
            actions: VecDeque::with_capacity(8),
            counters: Counters::default(),
            config,
        }
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// RFC 5798 §6.4.1 Startup event: owner (priority 255) goes Master at once, else Backup.
    /// Ignored unless in `Initialize`. While faulted, goes to `Fault` instead.
    ///
    /// Lease-gated: Master at once if the lease is held (whatever the priority), else Backup.
    pub fn startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        if self.faulted {
            self.clear_timers();
            self.transition(State::Fault);
            return;
        }
        self.start(now);
    }

    /// Shutdown event: a master sends priority 0 and removes its VIPs; then Initialize.
    pub fn shutdown(&mut self, now: Instant) {
        let _ = now;
        match self.state {
            State::Initialize => return,
            // RFC 5798 §6.4.3: "Cancel the Adver_Timer, Send an ADVERTISEMENT with Priority
            // = 0, Transition to the {Initialize} state".
            State::Master => self.give_up_mastership(),
            // RFC 5798 §6.4.2: "Cancel the Master_Down_Timer, Transition to {Initialize}".
            State::Backup | State::Fault => {}
        }
        self.clear_timers();
        self.master_addr = None;
        self.transition(State::Initialize);
    }

    /// A received VRRP packet for this instance. `payload` is the VRRP message only (IPv4
    /// header stripped), `src`/`dst` the IP addresses (for the v3 pseudo-header checksum),
    /// `ttl` the received TTL / hop limit. Validates everything, counts drops, and runs the
    /// state machine on a valid advert. Returns the drop reason if dropped.
    ///
    /// A valid advert is counted and then ignored in `Initialize` and `Fault`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
    ) -> Result<(), DropReason> {
        let advert = match self.validate(src, dst, ttl, payload) {
            Ok(advert) => advert,
            Err(reason) => {
                self.counters.count_drop(reason);
                return Err(reason);
            }
        };
        bump(&mut self.counters.adverts_received);
        if advert.priority == PRIORITY_STOP {
            bump(&mut self.counters.priority_zero_received);
        }
        match self.state {
            State::Backup => self.backup_receive(now, advert),
            State::Master => self.master_receive(now, advert),
            State::Initialize | State::Fault => {}
        }
        Ok(())
    }

    /// Fire every timer whose deadline is `<= now`.
    ///
    /// Each timer fires at most once per call. A periodic timer keeps its phase (re-armed
    /// from its own deadline, so scheduling latency does not accumulate into drift), unless
    /// the call is a whole period late (the process was stopped, the host stalled): then it
    /// is re-armed from `now` and the missed periods are not replayed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |timer: Option<Instant>| timer.is_some_and(|t| t <= now);
        match self.state {
            State::Backup => {
                if due(self.master_down_timer) {
                    if self.config.lease_gated && !self.lease {
                        // Lease gate: the Master may well be gone, but the majority has not
                        // given us the lease. Keep watching (and keep reporting the master
                        // we last heard).
                        bump(&mut self.counters.lease_blocked_takeovers);
                        self.master_down_timer = deadline(now, self.master_down_interval());
                    } else if self.config.takeover_gated
                        && !self.takeover_allowed
                        && !self.handover
                        && !self.preempting(now)
                    {
                        // Takeover gate: the Master is silent, and so is the peer on every
                        // heartbeat channel; its VIPs may still be up until it is fenced.
                        bump(&mut self.counters.fence_blocked_takeovers);
                        self.takeover_pending = true;
                        self.master_down_timer = deadline(now, self.master_down_interval());
                    } else {
                        // RFC 5798 §6.4.2: Master_Down_Timer fires.
                        self.become_master(now);
                    }
                }
            }
            State::Master => {
                if due(self.adver_timer) {
                    // RFC 5798 §6.4.3: "Send an ADVERTISEMENT, Reset the Adver_Timer to
                    // Advertisement_Interval".
                    self.send_advert(self.priority);
                    self.adver_timer = rearm(self.adver_timer, now, self.advert_interval);
                }
                if due(self.garp_delay_timer) {
                    self.garp_delay_timer = None;
                    self.send_gratuitous(self.config.garp_master_repeat);
                }
                if due(self.garp_refresh_timer) {
                    self.send_gratuitous(self.config.garp_master_refresh_repeat);
                    self.garp_refresh_timer = rearm(
                        self.garp_refresh_timer,
                        now,
                        self.config.garp_master_refresh,
                    );
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    /// Earliest deadline, `None` when no timer is armed (Initialize / Fault).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.adver_timer,
            self.master_down_timer,
            self.garp_delay_timer,
            self.garp_refresh_timer,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether [`poll_action`](Self::poll_action) has something to return.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Write the advertisement with `priority` into `buf` for sending from `src` to `dst`
    /// (the v3 checksum covers the pseudo-header); returns the length. No allocation.
    ///
    /// Returns 0, writing nothing, when `buf` is shorter than [`Instance::advert_len`] or the
    /// configuration cannot be put on the wire (VIPs of another family than `primary_addr`,
    /// more than 255 VIPs, VRRPv2 over IPv6): the config crate rejects those.
    pub fn encode_advert(&self, priority: u8, src: IpAddr, dst: IpAddr, buf: &mut [u8]) -> usize {
        self.advert_repr(priority).emit(buf, src, dst).unwrap_or(0)
    }

    /// Length of our advertisements: the buffer size [`Instance::encode_advert`] needs.
    pub fn advert_len(&self) -> usize {
        self.advert_repr(self.priority).buffer_len()
    }

    /// Our advertisement with `priority`, borrowing the VIPs from the configuration.
    pub fn advert_repr(&self, priority: u8) -> Repr<'_> {
        Repr {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            // A Master advertises its own interval, not one it learned (RFC 5798 §6.4.3).
            advert_int: self.advert_interval,
            auth: match self.config.version {
                Version::V2 => self.config.auth,
                Version::V3 => Auth::None,
            },
            addresses: Addresses::from_ips(self.family, &self.config.vips),
        }
    }

    /// The advert family, that of `primary_addr`.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Advertisement_Interval: the configured interval as carried on the wire.
    pub fn advertisement_interval(&self) -> Duration {
        self.advert_interval
    }

    pub fn state(&self) -> State {
        self.state
    }
    /// Priority currently advertised (configured, or as changed by set_priority).
    pub fn priority(&self) -> u8 {
        self.priority
    }
    /// Change the effective priority at runtime (health checks, tracking).
    ///
    /// Takes effect from the next advert and the next timer computation; nothing is sent
    /// at once. 0 is raised to 1 (0 on the wire means "Master leaving").
    pub fn set_priority(&mut self, now: Instant, priority: u8) {
        let _ = now;
        self.priority = priority.max(1);
    }
    /// Enter/leave Fault (tracked interface down...). Entering from Master gives up mastership
    /// with priority 0 and removes the VIPs; leaving goes through Startup again.
    ///
    /// In `Initialize` only the flag is recorded: a later [`Instance::startup`] goes to Fault.
    pub fn set_fault(&mut self, now: Instant, fault: bool) {
        if fault == self.faulted {
            return;
        }
        self.faulted = fault;
        if fault {
            match self.state {
                State::Master => self.give_up_mastership(),
                State::Backup => {}
                State::Initialize | State::Fault => return,
            }
            self.clear_timers();
            self.master_addr = None;
            self.transition(State::Fault);
        } else if self.state == State::Fault {
            self.start(now);
        }
    }
    /// Lease gate (quorum mode): the runtime reports whether this node holds the group's
    /// lease. No-op unless `lease_gated`; not held after [`Instance::new`].
    ///
    /// Granted in Backup: Master at once (no Master_Down_Interval to wait). Revoked in
    /// Master: priority 0, VIPs removed, Backup with Master_Down_Timer armed. In
    /// Initialize and Fault only the flag is recorded; [`Instance::startup`] and leaving
    /// Fault act on it.
    pub fn set_lease(&mut self, now: Instant, held: bool) {
        if !self.config.lease_gated || held == self.lease {
            return;
        }
        self.lease = held;
        match (self.state, held) {
            (State::Backup, true) => self.become_master(now),
            (State::Master, false) => {
                self.give_up_mastership();
                self.clear_timers();
                self.master_adver_interval = self.advert_interval;
                self.master_down_timer = deadline(now, self.master_down_interval());
                self.master_addr = None;
                bump(&mut self.counters.became_backup);
                self.transition(State::Backup);
            }
            _ => {}
        }
    }
    /// Takeover gate (vrrp mode with `fence_on_takeover`): whether a Backup may take over on
    /// Master_Down_Timer. No-op unless `takeover_gated`; not allowed after [`Instance::new`].
    /// Allowed in Backup after a blocked expiry with no Master heard since: Master after
    /// Skew_Time.
    pub fn set_takeover_allowed(&mut self, now: Instant, allowed: bool) {
        if !self.config.takeover_gated || allowed == self.takeover_allowed {
            return;
        }
        self.takeover_allowed = allowed;
        if allowed && self.state == State::Backup && self.takeover_pending && !self.faulted {
            self.takeover_pending = false;
            let at = deadline(now, self.skew_time());
            self.master_down_timer = match (self.master_down_timer, at) {
                (Some(t), Some(a)) => Some(t.min(a)),
                (t, a) => a.or(t),
            };
        }
    }

    /// Takeover gate: whether a takeover is waiting for [`Instance::set_takeover_allowed`].
    pub fn takeover_pending(&self) -> bool {
        self.takeover_pending
    }

    /// Whether the lease is held, as last told by [`Instance::set_lease`] (always false when
    /// not `lease_gated`).
    pub fn lease_held(&self) -> bool {
        self.lease
    }
    /// Whether [`Instance::set_fault`] holds the instance in Fault.
    pub fn is_faulted(&self) -> bool {
        self.faulted
    }
    /// Source address of the current master as last heard (ourselves when Master).
    pub fn master_addr(&self) -> Option<IpAddr> {
        self.master_addr
    }
    /// Master_Adver_Interval as learned from the master (v3) or configured.
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }
    pub fn master_down_interval(&self) -> Duration {
        // RFC 5798 §6.1: (3 * Master_Adver_Interval) + Skew_time.
        self.master_adver_interval
            .saturating_mul(3)
            .saturating_add(self.skew_time())
    }
    pub fn skew_time(&self) -> Duration {
        let weight = 256 - u32::from(self.priority);
        match self.config.version {
            // RFC 3768 §6.1: (256 - Priority) / 256 seconds; 1 s / 256 is exactly 3906250 ns.
            Version::V2 => Duration::from_nanos(u64::from(weight) * 3_906_250),
            // RFC 5798 §6.1: ((256 - priority) * Master_Adver_Interval) / 256.
            Version::V3 => self
                .master_adver_interval
                .checked_mul(weight)
                .map_or(Duration::MAX, |d| d / 256),
        }
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    // ---- receive path ----

    /// The receive checks of RFC 5798 §7.1 / RFC 3768 §7.1, in order. Allocation-free.
    fn validate(
        &self,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
    ) -> Result<Advert, DropReason> {
        // First: anything else may have crossed a router (RFC 5798 §7.1 "MUST verify that
        // the IPvX TTL/Hop Limit is 255").
        if ttl != wire::TTL {
            return Err(DropReason::BadTtl);
        }
        let packet = Packet::new_checked(payload, self.family)?;
        if packet.version() != self.config.version.number() {
            return Err(DropReason::BadVersion);
        }
        let repr = Repr::parse(&packet, src, dst)?;
        repr.check_vrid(self.config.vrid)?;
        if self.config.version == Version::V2 {
            repr.check_auth(&self.config.auth)?;
        }
        // keepalived drops adverts whose count differs from its own VIP list: they come
        // from a router configured differently for the same VRID.
        if repr.addresses.len() != self.config.vips.len() {
            return Err(DropReason::AddressCountMismatch);
        }
        // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as
        // the locally configured for this virtual router"; v3 learns it instead.
        if self.config.version == Version::V2 && repr.advert_int != self.advert_interval {
            return Err(DropReason::AdvertIntervalMismatch);
        }
        Ok(Advert {
            src,
            priority: repr.priority,
            interval: repr.advert_int,
        })
    }

    /// RFC 5798 §6.4.2, ADVERTISEMENT received in Backup.
    fn backup_receive(&mut self, now: Instant, advert: Advert) {
        if advert.priority == PRIORITY_STOP {
            // The Master is leaving: take over after Skew_Time only, so that the
            // highest-priority Backup (shortest skew) wins the race.
            self.master_down_timer = deadline(now, self.skew_time());
            self.handover = true;
            return;
        }
        let in_preempt_delay = self.preempt_after.is_some_and(|t| now < t);
        // Lease gate: preemption is the lease's business, so any Master is the current one
        // (status shows it, and Master_Down_Timer runs out only when it falls silent).
        if self.config.lease_gated
            || !self.config.preempt
            || advert.priority >= self.priority
            || in_preempt_delay
        {
            self.learn_master(now, advert);
        } else {
            // Discard: the lower-priority Master's adverts no longer hold our timer back, so
            // Master_Down_Timer fires and we preempt it.
            self.preempting_since = Some(now);
        }
    }

    /// A lower-priority Master was heard (and ignored) within the last Master_Down_Interval.
    fn preempting(&self, now: Instant) -> bool {
        self.preempting_since
            .is_some_and(|t| now.saturating_duration_since(t) <= self.master_down_interval())
    }

    /// RFC 5798 §6.4.3, ADVERTISEMENT received in Master.
    fn master_receive(&mut self, now: Instant, advert: Advert) {
        if advert.priority == PRIORITY_STOP {
            // Another router just gave up Master for this VRID; re-assert at once so its
            // backups do not take over after their Skew_Time.
            self.send_advert(self.priority);
            self.adver_timer = deadline(now, self.advert_interval);
            return;
        }
        let ours = self.config.primary_addr;
        // Addresses of one family compare numerically (IPv4 and IPv6 alike).
        let higher = advert.priority > self.priority
            || (advert.priority == self.priority && advert.src > ours);
        if higher && self.config.lease_gated {
            // Lease gate: the lease, not the wire, says who is Master. The other side is
            // misconfigured or a stale holder; make sure it hears us, but at most once per
            // Advertisement_Interval so that two routers that both refuse to yield cannot
            // answer each other at wire speed.
            bump(&mut self.counters.lease_conflicts);
            let quiet = self
                .conflict_answered
                .and_then(|t| t.checked_add(self.advert_interval))
                .is_some_and(|until| now < until);
            if !quiet {
                self.conflict_answered = Some(now);
                self.send_advert(self.priority);
            }
        } else if higher {
            if self.config.higher_prio_send_advert {
                // keepalived's higher_prio_send_advert: one last advert before stepping down.
                // After a partition heals, the winner may speak first and silence us before
                // it ever hears a lower-priority Master; this advert makes it hear one, so it
                // answers with its gratuitous round and pulls the ARP caches that still point
                // at us back to itself.
                self.send_advert(self.priority);
            }
            self.adver_timer = None;
            self.garp_delay_timer = None;
            self.garp_refresh_timer = None;
            self.learn_master(now, advert);
            self.actions.push_back(Action::RemoveVips);
            bump(&mut self.counters.became_backup);
            self.transition(State::Backup);
        } else if advert.src != ours {
            // A lower-priority Master: typically a healed partition where the other side
            // took over. It steps down as soon as it hears us; answering now rather than at
            // our next Adver_Timer shortens the dual-Master window, and the gratuitous
            // round pulls switches and ARP caches back to us.
            if self.config.higher_prio_send_advert {
                self.send_advert(self.priority);
            }
            self.send_gratuitous(self.config.garp_lower_prio_repeat);
        }
        // Our own advert looped back: nothing to do.
    }

    /// Accept `advert` as coming from the current Master: "Set Master_Adver_Interval to Adver
    /// Interval contained in the ADVERTISEMENT, Recompute the Skew_Time, Recompute the
    /// Master_Down_Interval, Reset the Master_Down_Timer to Master_Down_Interval".
    fn learn_master(&mut self, now: Instant, advert: Advert) {
        self.takeover_pending = false;
        self.handover = false;
        self.preempting_since = None;
        self.master_adver_interval = match self.config.version {
            Version::V3 => advert.interval,
            // v2 adverts with another interval were dropped; ours is the Master's.
            Version::V2 => self.advert_interval,
        };
        self.master_down_timer = deadline(now, self.master_down_interval());
        self.master_addr = Some(advert.src);
    }

    // ---- transitions ----

    /// Startup (RFC 5798 §6.4.1), also used when leaving Fault.
    fn start(&mut self, now: Instant) {
        self.preempt_after = deadline(now, self.config.preempt_delay);
        self.master_adver_interval = self.advert_interval;
        let master_now = if self.config.lease_gated {
            self.lease
        } else {
            self.priority == PRIORITY_OWNER
        };
        if master_now {
            self.become_master(now);
        } else {
            self.clear_timers();
            self.master_down_timer = deadline(now, self.master_down_interval());
            self.master_addr = None;
            bump(&mut self.counters.became_backup);
            self.transition(State::Backup);
        }
    }

    /// Entering Master from Initialize (§6.4.1), Backup (§6.4.2) or Fault.
    fn become_master(&mut self, now: Instant) {
        self.conflict_answered = None;
        self.send_advert(self.priority);
        self.actions.push_back(Action::AddVips);
        // RFC 5798 §6.4.1/§6.4.2: broadcast a gratuitous ARP (IPv4) / unsolicited Neighbor
        // Advertisement (IPv6) for each address, so that switches and hosts move to us.
        self.send_gratuitous(self.config.garp_master_repeat);
        self.master_down_timer = None;
        self.adver_timer = deadline(now, self.advert_interval);
        // keepalived repeats the round after garp_master_delay for hosts that missed or
        // ignored the first (e.g. still holding a stale entry being refreshed).
        self.garp_delay_timer = (!self.config.garp_master_delay.is_zero())
            .then(|| deadline(now, self.config.garp_master_delay))
            .flatten();
        self.garp_refresh_timer = (!self.config.garp_master_refresh.is_zero())
            .then(|| deadline(now, self.config.garp_master_refresh))
            .flatten();
        self.master_addr = Some(self.config.primary_addr);
        // As Master our own interval is the one in force (and the one status reports).
        self.master_adver_interval = self.advert_interval;
        bump(&mut self.counters.became_master);
        self.transition(State::Master);
    }

    /// Leaving Master other than to Backup: tell the Backups (priority 0, so they take over
    /// after Skew_Time instead of Master_Down_Interval) and release the VIPs.
    fn give_up_mastership(&mut self) {
        self.send_advert(PRIORITY_STOP);
        self.actions.push_back(Action::RemoveVips);
    }

    fn clear_timers(&mut self) {
        self.adver_timer = None;
        self.master_down_timer = None;
        self.garp_delay_timer = None;
        self.garp_refresh_timer = None;
    }

    fn transition(&mut self, to: State) {
        let from = self.state;
        self.state = to;
        if to != State::Backup {
            self.takeover_pending = false;
            self.handover = false;
            self.preempting_since = None;
        }
        bump(&mut self.counters.transitions);
        self.actions.push_back(Action::Transition { from, to });
    }

    fn send_advert(&mut self, priority: u8) {
        bump(&mut self.counters.adverts_sent);
        if priority == PRIORITY_STOP {
            bump(&mut self.counters.priority_zero_sent);
        }
        self.actions.push_back(Action::SendAdvert { priority });
    }

    fn send_gratuitous(&mut self, repeat: u32) {
        if repeat > 0 {
            self.actions.push_back(Action::SendGratuitous { repeat });
        }
    }
}

#[cfg(test)]
mod tests;
