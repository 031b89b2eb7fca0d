//! RFC 5798 §6.4 state machine for one virtual router (one VRID on one interface, one family).
//!
//! API CONTRACT (the daemon codes against exactly this; the bodies are to be written):

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::wire::{Auth, Version};

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
    /// keepalived's higher_prio_send_advert: a master hearing a lower-priority master
    /// answers at once with its own advert.
    pub higher_prio_send_advert: bool,
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
}

impl Counters {
    pub fn count_drop(&mut self, reason: DropReason) {
        let _ = reason;
        unimplemented!()
    }
}

/// One VRRP virtual router.
pub struct Instance {
    _private: (),
}

impl Instance {
    /// Starts in `Initialize`; nothing happens until [`Instance::startup`].
    pub fn new(config: InstanceConfig) -> Self {
        let _ = config;
        unimplemented!()
    }

    pub fn config(&self) -> &InstanceConfig {
        unimplemented!()
    }

    /// RFC 5798 §6.4.1 Startup event: owner (priority 255) goes Master at once, else Backup.
    pub fn startup(&mut self, now: Instant) {
        let _ = now;
        unimplemented!()
    }

    /// Shutdown event: a master sends priority 0 and removes its VIPs; then Initialize.
    pub fn shutdown(&mut self, now: Instant) {
        let _ = now;
        unimplemented!()
    }

    /// A received VRRP packet for this instance. `payload` is the VRRP message only (IPv4
    /// header stripped), `src`/`dst` the IP addresses (for the v3 pseudo-header checksum),
    /// `ttl` the received TTL / hop limit. Validates everything, counts drops, and runs the
    /// state machine on a valid advert. Returns the drop reason if dropped.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
    ) -> Result<(), DropReason> {
        let _ = (now, src, dst, ttl, payload);
        unimplemented!()
    }

    /// Fire every timer whose deadline is `<= now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        unimplemented!()
    }

    /// Earliest deadline, `None` when no timer is armed (Initialize / Fault).
    pub fn poll_timeout(&self) -> Option<Instant> {
        unimplemented!()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        unimplemented!()
    }

    /// Write the advertisement with `priority` into `buf` for sending from `src` to `dst`
    /// (the v3 checksum covers the pseudo-header); returns the length. No allocation.
    pub fn encode_advert(&self, priority: u8, src: IpAddr, dst: IpAddr, buf: &mut [u8]) -> usize {
        let _ = (priority, src, dst, buf);
        unimplemented!()
    }

    pub fn state(&self) -> State {
        unimplemented!()
    }
    /// Priority currently advertised (configured, or as changed by set_priority).
    pub fn priority(&self) -> u8 {
        unimplemented!()
    }
    /// Change the effective priority at runtime (health checks, tracking).
    pub fn set_priority(&mut self, now: Instant, priority: u8) {
        let _ = (now, priority);
        unimplemented!()
    }
    /// Enter/leave Fault (tracked interface down...). Entering from Master gives up mastership
    /// with priority 0 and removes the VIPs; leaving goes through Startup again.
    pub fn set_fault(&mut self, now: Instant, fault: bool) {
        let _ = (now, fault);
        unimplemented!()
    }
    /// Source address of the current master as last heard (ourselves when Master).
    pub fn master_addr(&self) -> Option<IpAddr> {
        unimplemented!()
    }
    /// Master_Adver_Interval as learned from the master (v3) or configured.
    pub fn master_adver_interval(&self) -> Duration {
        unimplemented!()
    }
    pub fn master_down_interval(&self) -> Duration {
        unimplemented!()
    }
    pub fn skew_time(&self) -> Duration {
        unimplemented!()
    }
    pub fn counters(&self) -> &Counters {
        unimplemented!()
    }
}
