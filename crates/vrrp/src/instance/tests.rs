//! RFC 5798 §6.4 walked bullet by bullet on a simulated clock: `Instant::now()` is read once
//! per test as the origin and every input happens at `t0 + offset`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::wire::{Addresses, Auth, Family, Repr, Version, MAX_LEN};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const PEER_LOW: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const PEER_HIGH: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100));
const GROUP4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
const GROUP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Skew_Time for priority 100 at a 1 s interval: 156/256 s.
const SKEW_100: Duration = Duration::from_nanos(609_375_000);
/// Master_Down_Interval for priority 100 at a 1 s interval.
const MDI_100: Duration = Duration::from_nanos(3_609_375_000);

/// VRRPv3 IPv4, 1 s adverts, one VIP, primary 10.0.0.2, extras off.
fn cfg(priority: u8) -> InstanceConfig {
    InstanceConfig {
        name: "VI_1".into(),
        vrid: 51,
        priority,
        version: Version::V3,
        advert_int: secs(1),
        preempt: true,
        preempt_delay: Duration::ZERO,
        accept_mode: false,
        vips: vec![VIP],
        primary_addr: LOCAL,
        auth: Auth::None,
        garp_master_delay: Duration::ZERO,
        garp_master_repeat: 5,
        garp_master_refresh: Duration::ZERO,
        garp_master_refresh_repeat: 1,
        garp_lower_prio_repeat: 0,
        higher_prio_send_advert: false,
        lease_gated: false,
        takeover_gated: false,
    }
}

fn cfg_v2(priority: u8) -> InstanceConfig {
    InstanceConfig {
        version: Version::V2,
        auth: Auth::simple(b"secret"),
        ..cfg(priority)
    }
}

fn cfg_v6(priority: u8, primary: IpAddr) -> InstanceConfig {
    InstanceConfig {
        vips: vec!["fd00::100".parse().unwrap()],
        primary_addr: primary,
        ..cfg(priority)
    }
}

fn group(c: &InstanceConfig) -> IpAddr {
    match c.primary_addr {
        IpAddr::V4(_) => GROUP4,
        IpAddr::V6(_) => GROUP6,
    }
}

/// An advert a peer configured like `c` would send, with another priority and interval.
fn advert_int(c: &InstanceConfig, priority: u8, src: IpAddr, interval: Duration) -> Vec<u8> {
    let repr = Repr {
        version: c.version,
        vrid: c.vrid,
        priority,
        advert_int: interval,
        auth: match c.version {
            Version::V2 => c.auth,
            Version::V3 => Auth::None,
        },
        addresses: Addresses::from_ips(Family::of(&c.primary_addr), &c.vips),
    };
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut buf, src, group(c)).unwrap();
    buf
}

fn advert(c: &InstanceConfig, priority: u8, src: IpAddr) -> Vec<u8> {
    advert_int(c, priority, src, c.advert_int)
}

/// Receive from `src` a well-formed advert with `priority`, as the runtime would deliver it.
fn rx(inst: &mut Instance, now: Instant, src: IpAddr, priority: u8) -> Result<(), DropReason> {
    let bytes = advert(inst.config(), priority, src);
    rx_bytes(inst, now, src, &bytes)
}

fn rx_bytes(
    inst: &mut Instance,
    now: Instant,
    src: IpAddr,
    bytes: &[u8],
) -> Result<(), DropReason> {
    let dst = group(inst.config());
    inst.handle_packet(now, src, dst, 255, bytes)
}

fn drain(inst: &mut Instance) -> Vec<Action> {
    std::iter::from_fn(|| inst.poll_action()).collect()
}

fn started(c: InstanceConfig, t0: Instant) -> Instance {
    let mut inst = Instance::new(c);
    inst.startup(t0);
    drain(&mut inst);
    inst
}

/// A non-owner that has become Master through its Master_Down_Timer at `t0 + MDI`.
fn master_via_timeout(c: InstanceConfig, t0: Instant) -> (Instance, Instant) {
    let mut inst = started(c, t0);
    let at = inst.poll_timeout().unwrap();
    inst.handle_timeout(at);
    assert_eq!(inst.state(), State::Master);
    drain(&mut inst);
    (inst, at)
}

fn become_master_actions(priority: u8, from: State, garp: u32) -> Vec<Action> {
    vec![
        Action::SendAdvert { priority },
        Action::AddVips,
        Action::SendGratuitous { repeat: garp },
        Action::Transition {
            from,
            to: State::Master,
        },
    ]
}

// ======================= §6.1 timers =======================

#[test]
fn skew_and_master_down_interval_v3() {
    let t0 = Instant::now();
    let inst = started(cfg(100), t0);
    assert_eq!(inst.master_adver_interval(), secs(1));
    assert_eq!(inst.skew_time(), SKEW_100);
    assert_eq!(inst.master_down_interval(), MDI_100);

    // REFERENCE.md: v3 100 ms, priority 100 → MDI 361 ms, skew 61 ms.
    let fast = started(
        InstanceConfig {
            advert_int: ms(100),
            ..cfg(100)
        },
        t0,
    );
    assert_eq!(fast.skew_time(), Duration::from_nanos(60_937_500));
    assert_eq!(
        fast.master_down_interval(),
        Duration::from_nanos(360_937_500)
    );

    let low = started(cfg(1), t0);
    assert_eq!(low.skew_time(), Duration::from_nanos(996_093_750));
    let high = started(cfg(254), t0);
    assert_eq!(high.skew_time(), Duration::from_nanos(7_812_500));
}

#[test]
fn skew_v2_is_independent_of_interval() {
    // RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256 seconds.
    let t0 = Instant::now();
    let inst = started(
        InstanceConfig {
            advert_int: secs(3),
            ..cfg_v2(100)
        },
        t0,
    );
    assert_eq!(inst.skew_time(), SKEW_100);
    assert_eq!(inst.master_down_interval(), secs(9) + SKEW_100);
}

// ======================= §6.4.1 Initialize =======================

#[test]
fn new_instance_is_idle() {
    let mut inst = Instance::new(cfg(100));
    assert_eq!(inst.state(), State::Initialize);
    assert_eq!(inst.poll_timeout(), None);
    assert_eq!(inst.poll_action(), None);
    assert_eq!(inst.master_addr(), None);
    assert_eq!(inst.priority(), 100);
    assert_eq!(inst.config().name, "VI_1");
}

#[test]
fn startup_owner_becomes_master_at_once() {
    // "If the Priority = 255: Send an ADVERTISEMENT, broadcast a gratuitous ARP, set the
    // Adver_Timer to Advertisement_Interval, transition to {Master}".
    let t0 = Instant::now();
    let mut inst = Instance::new(cfg(255));
    inst.startup(t0);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(255, State::Initialize, 5)
    );
    assert_eq!(inst.state(), State::Master);
    assert_eq!(inst.poll_timeout(), Some(t0 + secs(1)));
    assert_eq!(inst.master_addr(), Some(LOCAL));
    let c = inst.counters();
    assert_eq!((c.adverts_sent, c.became_master, c.transitions), (1, 1, 1));
}

#[test]
fn startup_non_owner_becomes_backup() {
    // "else: Set Master_Adver_Interval to Advertisement_Interval, set the Master_Down_Timer
    // to Master_Down_Interval, transition to {Backup}".
    let t0 = Instant::now();
    let mut inst = Instance::new(cfg(100));
    inst.startup(t0);
    assert_eq!(
        drain(&mut inst),
        [Action::Transition {
            from: State::Initialize,
            to: State::Backup
        }]
    );
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(inst.master_adver_interval(), secs(1));
    assert_eq!(inst.poll_timeout(), Some(t0 + MDI_100));
    assert_eq!(inst.master_addr(), None);
    assert_eq!(inst.counters().became_backup, 1);
    assert_eq!(inst.counters().adverts_sent, 0);
}

#[test]
fn startup_is_ignored_outside_initialize() {
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    inst.startup(t0 + secs(1));
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.poll_timeout(), Some(t0 + MDI_100));
}

#[test]
fn initialize_counts_but_ignores_adverts() {
    let t0 = Instant::now();
    let mut inst = Instance::new(cfg(100));
    assert_eq!(rx(&mut inst, t0, PEER_HIGH, 200), Ok(()));
    assert_eq!(inst.counters().adverts_received, 1);
    assert_eq!(inst.state(), State::Initialize);
    assert_eq!(inst.poll_timeout(), None);
    assert_eq!(drain(&mut inst), []);
}

// ======================= §6.4.2 Backup =======================

#[test]
fn backup_shutdown_goes_to_initialize() {
    // "If a Shutdown event is received, then: Cancel the Master_Down_Timer, transition to
    // {Initialize}".
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    inst.shutdown(t0 + secs(1));
    assert_eq!(
        drain(&mut inst),
        [Action::Transition {
            from: State::Backup,
            to: State::Initialize
        }]
    );
    assert_eq!(inst.state(), State::Initialize);
    assert_eq!(inst.poll_timeout(), None);
    // And it can start again.
    inst.startup(t0 + secs(2));
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(inst.poll_timeout(), Some(t0 + secs(2) + MDI_100));
}

#[test]
fn master_down_timer_fires_backup_becomes_master() {
    // "If the Master_Down_Timer fires, then: Send an ADVERTISEMENT, broadcast a gratuitous
    // ARP, set the Adver_Timer to Advertisement_Interval, transition to {Master}".
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    let deadline = t0 + MDI_100;
    inst.handle_timeout(deadline - Duration::from_nanos(1));
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Backup);

    inst.handle_timeout(deadline);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(100, State::Backup, 5)
    );
    assert_eq!(inst.poll_timeout(), Some(deadline + secs(1)));
    assert_eq!(inst.master_addr(), Some(LOCAL));
    assert_eq!(inst.counters().became_master, 1);
}

#[test]
fn backup_priority_zero_sets_down_timer_to_skew() {
    // "If the Priority in the ADVERTISEMENT is zero, then: Set the Master_Down_Timer to
    // Skew_Time".
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    rx(&mut inst, t0 + secs(1), PEER_HIGH, 200).unwrap();
    let now = t0 + ms(1500);
    rx(&mut inst, now, PEER_HIGH, 0).unwrap();
    assert_eq!(inst.poll_timeout(), Some(now + SKEW_100));
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.counters().priority_zero_received, 1);

    inst.handle_timeout(now + SKEW_100);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(100, State::Backup, 5)
    );
}

#[test]
fn backup_priority_zero_skew_uses_learned_interval() {
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    let bytes = advert_int(inst.config(), 200, PEER_HIGH, ms(100));
    rx_bytes(&mut inst, t0, PEER_HIGH, &bytes).unwrap();
    let now = t0 + ms(50);
    let prio0 = advert_int(inst.config(), 0, PEER_HIGH, ms(100));
    rx_bytes(&mut inst, now, PEER_HIGH, &prio0).unwrap();
    assert_eq!(
        inst.poll_timeout(),
        Some(now + Duration::from_nanos(60_937_500))
    );
}

#[test]
fn backup_higher_priority_resets_down_timer() {
    // "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is greater than or
    // equal to the local Priority, then: ... Reset the Master_Down_Timer to
    // Master_Down_Interval".
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    let now = t0 + secs(3);
    rx(&mut inst, now, PEER_HIGH, 200).unwrap();
    assert_eq!(inst.poll_timeout(), Some(now + MDI_100));
    assert_eq!(inst.master_addr(), Some(PEER_HIGH));
    inst.handle_timeout(t0 + MDI_100);
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(drain(&mut inst), []);
}

#[test]
fn backup_equal_priority_resets_down_timer() {
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    let now = t0 + secs(3);
    rx(&mut inst, now, PEER_LOW, 100).unwrap();
    assert_eq!(inst.poll_timeout(), Some(now + MDI_100));
}

#[test]
fn backup_learns_master_adver_interval_v3() {
    // "Set Master_Adver_Interval to Adver Interval contained in the ADVERTISEMENT,
    // Recompute the Skew_Time, Recompute the Master_Down_Interval".
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    let bytes = advert_int(inst.config(), 200, PEER_HIGH, secs(2));
    rx_bytes(&mut inst, t0 + secs(1), PEER_HIGH, &bytes).unwrap();
    assert_eq!(inst.master_adver_interval(), secs(2));
    assert_eq!(inst.skew_time(), Duration::from_nanos(1_218_750_000));
    assert_eq!(
        inst.master_down_interval(),
        Duration::from_nanos(7_218_750_000)
    );
    assert_eq!(
        inst.poll_timeout(),
        Some(t0 + secs(1) + Duration::from_nanos(7_218_750_000))
    );

    let bytes = advert_int(inst.config(), 200, PEER_HIGH, ms(100));
    rx_bytes(&mut inst, t0 + secs(2), PEER_HIGH, &bytes).unwrap();
    assert_eq!(inst.master_adver_interval(), ms(100));
    assert_eq!(
        inst.poll_timeout(),
        Some(t0 + secs(2) + Duration::from_nanos(360_937_500))
    );
    // Our own adverts keep our configured interval.
    assert_eq!(inst.advert_repr(100).advert_int, secs(1));
}

#[test]
fn backup_discards_lower_priority_with_preempt() {
    // "Otherwise, discard the ADVERTISEMENT": the timer runs out and we preempt.
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    rx(&mut inst, t0 + secs(1), PEER_LOW, 50).unwrap();
    rx(&mut inst, t0 + secs(2), PEER_LOW, 50).unwrap();
    assert_eq!(inst.poll_timeout(), Some(t0 + MDI_100));
    assert_eq!(inst.master_addr(), None);
    assert_eq!(inst.counters().adverts_received, 2);
    assert_eq!(inst.counters().dropped(), 0);
    inst.handle_timeout(t0 + MDI_100);
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn backup_nopreempt_accepts_lower_priority() {
    // Preempt_Mode False: any advert from a live Master holds us back.
    let t0 = Instant::now();
    let mut inst = started(
        InstanceConfig {
            preempt: false,
            ..cfg(200)
        },
        t0,
    );
    for s in 1..=10 {
        rx(&mut inst, t0 + secs(s), PEER_LOW, 50).unwrap();
        inst.handle_timeout(t0 + secs(s));
    }
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(
        inst.poll_timeout(),
        Some(t0 + secs(10) + inst.master_down_interval())
    );
    assert_eq!(inst.master_addr(), Some(PEER_LOW));
}

#[test]
fn backup_preempt_delay_counts_from_startup() {
    let t0 = Instant::now();
    let mut inst = started(
        InstanceConfig {
            preempt_delay: secs(10),
            ..cfg(100)
        },
        t0,
    );
    // Within the delay a lower-priority Master is treated like an equal one.
    for s in [3, 6, 9] {
        let now = t0 + secs(s);
        rx(&mut inst, now, PEER_LOW, 50).unwrap();
        assert_eq!(inst.poll_timeout(), Some(now + MDI_100));
        inst.handle_timeout(now);
    }
    let last_reset = t0 + ms(9500);
    rx(&mut inst, last_reset, PEER_LOW, 50).unwrap();
    // After it, its adverts are discarded and the last reset runs out.
    rx(&mut inst, t0 + ms(10_500), PEER_LOW, 50).unwrap();
    rx(&mut inst, t0 + ms(11_500), PEER_LOW, 50).unwrap();
    assert_eq!(inst.poll_timeout(), Some(last_reset + MDI_100));
    inst.handle_timeout(last_reset + MDI_100);
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn backup_preempt_delay_does_not_delay_dead_master_takeover() {
    let t0 = Instant::now();
    let mut inst = started(
        InstanceConfig {
            preempt_delay: secs(60),
            ..cfg(100)
        },
        t0,
    );
    inst.handle_timeout(t0 + MDI_100);
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn backup_raised_priority_preempts_lower_master() {
    // set_priority: once ours is above the Master's, its adverts no longer hold us back.
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    rx(&mut inst, t0 + secs(1), PEER_HIGH, 150).unwrap();
    inst.set_priority(t0 + secs(1), 200);
    assert_eq!(inst.priority(), 200);
    assert_eq!(drain(&mut inst), []);
    let deadline = inst.poll_timeout().unwrap();
    rx(&mut inst, t0 + secs(2), PEER_HIGH, 150).unwrap();
    assert_eq!(inst.poll_timeout(), Some(deadline));
    inst.handle_timeout(deadline);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(200, State::Backup, 5)
    );
}

// ======================= §6.4.3 Master =======================

#[test]
fn master_adver_timer_fires_sends_advert() {
    // "If the Adver_Timer fires, then: Send an ADVERTISEMENT, Reset the Adver_Timer to
    // Advertisement_Interval".
    let t0 = Instant::now();
    let mut inst = started(cfg(255), t0);
    for n in 1..=3 {
        inst.handle_timeout(t0 + secs(n) - Duration::from_nanos(1));
        assert_eq!(drain(&mut inst), []);
        inst.handle_timeout(t0 + secs(n));
        assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 255 }]);
        assert_eq!(inst.poll_timeout(), Some(t0 + secs(n + 1)));
    }
    assert_eq!(inst.counters().adverts_sent, 4);
}

#[test]
fn master_shutdown_sends_priority_zero() {
    // "If a Shutdown event is received, then: Cancel the Adver_Timer, Send an ADVERTISEMENT
    // with Priority = 0, transition to {Initialize}".
    let t0 = Instant::now();
    let mut inst = started(cfg(255), t0);
    inst.shutdown(t0 + ms(500));
    assert_eq!(
        drain(&mut inst),
        [
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Initialize
            },
        ]
    );
    assert_eq!(inst.state(), State::Initialize);
    assert_eq!(inst.poll_timeout(), None);
    assert_eq!(inst.master_addr(), None);
    let c = inst.counters();
    assert_eq!((c.adverts_sent, c.priority_zero_sent), (2, 1));
    // A second shutdown does nothing.
    inst.shutdown(t0 + secs(1));
    assert_eq!(drain(&mut inst), []);
}

#[test]
fn master_answers_priority_zero_at_once() {
    // "If the Priority in the ADVERTISEMENT is zero, then: Send an ADVERTISEMENT, Reset the
    // Adver_Timer to Advertisement_Interval".
    let t0 = Instant::now();
    let mut inst = started(cfg(255), t0);
    let now = t0 + ms(300);
    rx(&mut inst, now, PEER_HIGH, 0).unwrap();
    assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 255 }]);
    assert_eq!(inst.poll_timeout(), Some(now + secs(1)));
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn master_steps_down_on_higher_priority() {
    // "If the Priority in the ADVERTISEMENT is greater than the local Priority, ...: Cancel
    // Adver_Timer, Set Master_Adver_Interval to Adver Interval contained in the
    // ADVERTISEMENT, Recompute the Skew_Time, Recompute the Master_Down_Interval, Set
    // Master_Down_Timer to Master_Down_Interval, Transition to the {Backup} state".
    let t0 = Instant::now();
    let (mut inst, became) = master_via_timeout(cfg(100), t0);
    let now = became + ms(500);
    let bytes = advert_int(inst.config(), 200, PEER_HIGH, secs(2));
    rx_bytes(&mut inst, now, PEER_HIGH, &bytes).unwrap();
    assert_eq!(
        drain(&mut inst),
        [
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Backup
            }
        ]
    );
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(inst.master_adver_interval(), secs(2));
    assert_eq!(
        inst.poll_timeout(),
        Some(now + Duration::from_nanos(7_218_750_000))
    );
    assert_eq!(inst.master_addr(), Some(PEER_HIGH));
    // The Adver_Timer is cancelled.
    inst.handle_timeout(became + secs(1));
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.counters().became_backup, 2);
}

#[test]
fn master_equal_priority_greater_address_wins() {
    // "... or if the Priority in the ADVERTISEMENT is equal to the local Priority and the
    // primary IPvX Address of the sender is greater than the local primary IPvX Address".
    let t0 = Instant::now();
    let (mut inst, became) = master_via_timeout(cfg(100), t0);
    rx(&mut inst, became + ms(10), PEER_HIGH, 100).unwrap();
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(drain(&mut inst)[0], Action::RemoveVips);
}

#[test]
fn master_equal_priority_lower_address_discarded() {
    let t0 = Instant::now();
    let (mut inst, became) = master_via_timeout(cfg(100), t0);
    rx(&mut inst, became + ms(10), PEER_LOW, 100).unwrap();
    assert_eq!(inst.state(), State::Master);
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.poll_timeout(), Some(became + secs(1)));
}

#[test]
fn master_tie_break_compares_ipv4_numerically() {
    // 10.0.0.10 > 10.0.0.9 as numbers, though not as strings.
    let t0 = Instant::now();
    let local: IpAddr = "10.0.0.9".parse().unwrap();
    let peer: IpAddr = "10.0.0.10".parse().unwrap();
    let (mut inst, became) = master_via_timeout(
        InstanceConfig {
            primary_addr: local,
            ..cfg(100)
        },
        t0,
    );
    rx(&mut inst, became, peer, 100).unwrap();
    assert_eq!(inst.state(), State::Backup);
}

#[test]
fn master_tie_break_ipv6_link_local() {
    let t0 = Instant::now();
    let local: IpAddr = "fe80::2".parse().unwrap();
    let (mut inst, became) = master_via_timeout(cfg_v6(100, local), t0);
    rx(&mut inst, became, "fe80::1".parse().unwrap(), 100).unwrap();
    assert_eq!(inst.state(), State::Master);
    rx(&mut inst, became, "fe80::3".parse().unwrap(), 100).unwrap();
    assert_eq!(inst.state(), State::Backup);
}

#[test]
fn master_discards_lower_priority_by_default() {
    // "Otherwise, discard the ADVERTISEMENT".
    let t0 = Instant::now();
    let mut inst = started(cfg(255), t0);
    rx(&mut inst, t0 + ms(100), PEER_HIGH, 254).unwrap();
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Master);
    assert_eq!(inst.poll_timeout(), Some(t0 + secs(1)));
}

#[test]
fn master_answers_lower_priority_master() {
    // keepalived's partition-heal fix: answer a lower-priority Master at once.
    let t0 = Instant::now();
    let c = InstanceConfig {
        higher_prio_send_advert: true,
        garp_lower_prio_repeat: 3,
        ..cfg(200)
    };
    let (mut inst, became) = master_via_timeout(c, t0);
    let sent = inst.counters().adverts_sent;
    rx(&mut inst, became + ms(100), PEER_HIGH, 100).unwrap();
    assert_eq!(
        drain(&mut inst),
        [
            Action::SendAdvert { priority: 200 },
            Action::SendGratuitous { repeat: 3 }
        ]
    );
    assert_eq!(inst.counters().adverts_sent, sent + 1);
    assert_eq!(inst.state(), State::Master);
    // The periodic advert keeps its cadence.
    assert_eq!(inst.poll_timeout(), Some(became + secs(1)));
    // Equal priority, lower address: also a loser, also answered.
    rx(&mut inst, became + ms(200), PEER_LOW, 200).unwrap();
    assert_eq!(drain(&mut inst).len(), 2);
}

#[test]
fn master_stepping_down_says_a_last_word_when_asked() {
    // keepalived's higher_prio_send_advert on the losing side: the winner of a healed
    // partition must hear a lower-priority Master at least once, or it never re-announces.
    let t0 = Instant::now();
    let c = InstanceConfig {
        higher_prio_send_advert: true,
        ..cfg(100)
    };
    let (mut inst, became) = master_via_timeout(c, t0);
    rx(&mut inst, became + ms(100), PEER_HIGH, 200).unwrap();
    let actions = drain(&mut inst);
    assert_eq!(actions[0], Action::SendAdvert { priority: 100 });
    assert_eq!(actions[1], Action::RemoveVips);
    assert_eq!(inst.state(), State::Backup);
    // Without the option, no advert on the way down.
    let (mut inst, became) = master_via_timeout(cfg(100), t0);
    rx(&mut inst, became + ms(100), PEER_HIGH, 200).unwrap();
    assert!(!drain(&mut inst).contains(&Action::SendAdvert { priority: 100 }));
}

#[test]
fn master_lower_priority_gratuitous_without_advert() {
    let t0 = Instant::now();
    let c = InstanceConfig {
        garp_lower_prio_repeat: 2,
        ..cfg(255)
    };
    let mut inst = started(c, t0);
    rx(&mut inst, t0 + ms(100), PEER_HIGH, 100).unwrap();
    assert_eq!(drain(&mut inst), [Action::SendGratuitous { repeat: 2 }]);
}

#[test]
fn master_ignores_its_own_advert() {
    let t0 = Instant::now();
    let c = InstanceConfig {
        higher_prio_send_advert: true,
        garp_lower_prio_repeat: 3,
        ..cfg(255)
    };
    let mut inst = started(c, t0);
    rx(&mut inst, t0 + ms(100), LOCAL, 255).unwrap();
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn owner_startup_and_owner_tie() {
    // Two routers both configured as owner: the §6.4.3 tie-break by address settles it.
    let t0 = Instant::now();
    let mut inst = started(cfg(255), t0);
    rx(&mut inst, t0 + ms(10), PEER_LOW, 255).unwrap();
    assert_eq!(inst.state(), State::Master);
    rx(&mut inst, t0 + ms(20), PEER_HIGH, 255).unwrap();
    assert_eq!(inst.state(), State::Backup);
}

#[test]
fn master_set_priority_changes_adverts_only() {
    let t0 = Instant::now();
    let (mut inst, became) = master_via_timeout(cfg(200), t0);
    inst.set_priority(became, 50);
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Master);
    inst.handle_timeout(became + secs(1));
    assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 50 }]);
    // Priority 0 is not a standing priority.
    inst.set_priority(became, 0);
    assert_eq!(inst.priority(), 1);
}

// ======================= receive checks: drop, count, change nothing =======================

/// Everything a dropped packet must leave alone.
fn snapshot(inst: &Instance) -> (State, Option<Instant>, Option<IpAddr>, Duration, u64, u64) {
    let c = inst.counters();
    (
        inst.state(),
        inst.poll_timeout(),
        inst.master_addr(),
        inst.master_adver_interval(),
        c.adverts_received,
        c.transitions,
    )
}

fn counter_of(c: &Counters, reason: DropReason) -> u64 {
    match reason {
        DropReason::BadTtl => c.dropped_bad_ttl,
        DropReason::Truncated => c.dropped_truncated,
        DropReason::BadVersion => c.dropped_bad_version,
        DropReason::BadType => c.dropped_bad_type,
        DropReason::BadChecksum => c.dropped_bad_checksum,
        DropReason::AddressCountMismatch => c.dropped_address_count,
        DropReason::ZeroAdvertInterval => c.dropped_zero_advert_interval,
        DropReason::AuthMismatch => c.dropped_auth_mismatch,
        DropReason::UnknownVrid => c.dropped_unknown_vrid,
        DropReason::AdvertIntervalMismatch => c.dropped_advert_interval_mismatch,
    }
}

/// Feeds `bytes` to a Backup and to a Master built from `c` and checks the drop.
fn assert_dropped(c: &InstanceConfig, ttl: u8, bytes: &[u8], reason: DropReason) {
    let t0 = Instant::now();
    let backup = started(c.clone(), t0);
    let (master, _) = master_via_timeout(c.clone(), t0);
    for mut inst in [backup, master] {
        let before = snapshot(&inst);
        let dst = group(c);
        // Priority 0 or 255 from a greater address would move either state if accepted.
        let got = inst.handle_packet(t0 + secs(5), PEER_HIGH, dst, ttl, bytes);
        assert_eq!(got, Err(reason), "{:?}", inst.state());
        assert_eq!(snapshot(&inst), before);
        assert_eq!(drain(&mut inst), []);
        assert_eq!(counter_of(inst.counters(), reason), 1);
        assert_eq!(inst.counters().dropped(), 1);
    }
}

/// Recompute the checksum after editing bytes, so the edit alone is tested.
fn refill(c: &InstanceConfig, bytes: &mut [u8]) {
    let family = Family::of(&c.primary_addr);
    crate::wire::Packet::new_unchecked(bytes, family).fill_checksum(PEER_HIGH, group(c));
}

#[test]
fn drop_bad_ttl_checked_first() {
    // RFC 5798 §7.1: "MUST verify that the IPvX TTL/Hop Limit is 255".
    let c = cfg(100);
    let good = advert(&c, 255, PEER_HIGH);
    for ttl in [0, 1, 64, 254] {
        assert_dropped(&c, ttl, &good, DropReason::BadTtl);
    }
    assert_dropped(&c, 64, &[0xde, 0xad], DropReason::BadTtl);
}

#[test]
fn drop_truncated() {
    let c = cfg(100);
    let good = advert(&c, 255, PEER_HIGH);
    assert_dropped(&c, 255, &[], DropReason::Truncated);
    assert_dropped(&c, 255, &good[..7], DropReason::Truncated);
    assert_dropped(&c, 255, &good[..good.len() - 1], DropReason::Truncated);
}

#[test]
fn drop_bad_version() {
    // keepalived: "wrong version. Received 2 and expect 3", and the reverse.
    let v3 = cfg(100);
    let v2 = cfg_v2(100);
    assert_dropped(
        &v3,
        255,
        &advert(&v2, 255, PEER_HIGH),
        DropReason::BadVersion,
    );
    assert_dropped(
        &v2,
        255,
        &advert(&v3, 255, PEER_HIGH),
        DropReason::BadVersion,
    );
    let mut bytes = advert(&v3, 255, PEER_HIGH);
    bytes[0] = 0x41;
    assert_dropped(&v3, 255, &bytes, DropReason::BadVersion);
}

#[test]
fn drop_bad_type() {
    let c = cfg(100);
    let mut bytes = advert(&c, 255, PEER_HIGH);
    bytes[0] = 0x32;
    refill(&c, &mut bytes);
    assert_dropped(&c, 255, &bytes, DropReason::BadType);
}

#[test]
fn drop_bad_checksum() {
    // keepalived: "Invalid VRRPv3 checksum".
    let c = cfg(100);
    let mut bytes = advert(&c, 255, PEER_HIGH);
    bytes[7] ^= 0xff;
    assert_dropped(&c, 255, &bytes, DropReason::BadChecksum);
    // A v3 advert checksummed for another source.
    let other = advert(&c, 255, PEER_LOW);
    assert_dropped(&c, 255, &other, DropReason::BadChecksum);
}

#[test]
fn drop_address_count_mismatch() {
    let c = cfg(100);
    // Well formed, but two VIPs where we have one.
    let two = InstanceConfig {
        vips: vec![VIP, "192.168.1.101".parse().unwrap()],
        ..c.clone()
    };
    assert_dropped(
        &c,
        255,
        &advert(&two, 255, PEER_HIGH),
        DropReason::AddressCountMismatch,
    );
    // Count field disagreeing with the length.
    let mut long = advert(&c, 255, PEER_HIGH);
    long.push(0);
    assert_dropped(&c, 255, &long, DropReason::AddressCountMismatch);
}

#[test]
fn drop_zero_advert_interval() {
    let c = cfg(100);
    let mut bytes = advert(&c, 255, PEER_HIGH);
    bytes[4] = 0;
    bytes[5] = 0;
    refill(&c, &mut bytes);
    assert_dropped(&c, 255, &bytes, DropReason::ZeroAdvertInterval);
}

#[test]
fn drop_auth_mismatch_v2() {
    // RFC 3768 §7.1: Auth Type and password must match ours.
    let c = cfg_v2(100);
    let wrong_pw = InstanceConfig {
        auth: Auth::simple(b"guess"),
        ..c.clone()
    };
    assert_dropped(
        &c,
        255,
        &advert(&wrong_pw, 255, PEER_HIGH),
        DropReason::AuthMismatch,
    );
    let no_auth = InstanceConfig {
        auth: Auth::None,
        ..c.clone()
    };
    assert_dropped(
        &c,
        255,
        &advert(&no_auth, 255, PEER_HIGH),
        DropReason::AuthMismatch,
    );
    let mut ah = advert(&c, 255, PEER_HIGH);
    ah[4] = 2;
    refill(&c, &mut ah);
    assert_dropped(&c, 255, &ah, DropReason::AuthMismatch);
}

#[test]
fn drop_unknown_vrid() {
    let c = cfg(100);
    let other = InstanceConfig {
        vrid: 52,
        ..c.clone()
    };
    assert_dropped(
        &c,
        255,
        &advert(&other, 0, PEER_HIGH),
        DropReason::UnknownVrid,
    );
}

#[test]
fn drop_v2_advert_interval_mismatch() {
    // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as the
    // locally configured for this virtual router. If the above check fails, the receiver
    // MUST discard the packet".
    let c = cfg_v2(100);
    let bytes = advert_int(&c, 255, PEER_HIGH, secs(2));
    assert_dropped(&c, 255, &bytes, DropReason::AdvertIntervalMismatch);
}

#[test]
fn v3_accepts_another_interval() {
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    let bytes = advert_int(inst.config(), 200, PEER_HIGH, ms(30));
    assert_eq!(rx_bytes(&mut inst, t0, PEER_HIGH, &bytes), Ok(()));
    assert_eq!(inst.counters().dropped(), 0);
}

#[test]
fn drops_in_fault_and_initialize_are_counted() {
    let t0 = Instant::now();
    let mut inst = Instance::new(cfg(100));
    assert_eq!(
        inst.handle_packet(t0, PEER_HIGH, GROUP4, 1, &[]),
        Err(DropReason::BadTtl)
    );
    assert_eq!(inst.counters().dropped_bad_ttl, 1);
    assert_eq!(inst.state(), State::Initialize);
}

// ======================= gratuitous ARP / NA schedule =======================

#[test]
fn garp_on_takeover_then_after_delay() {
    // keepalived defaults: garp_master_delay 5 s, garp_master_repeat 5.
    let t0 = Instant::now();
    let c = InstanceConfig {
        garp_master_delay: secs(5),
        ..cfg(255)
    };
    let mut inst = Instance::new(c);
    inst.startup(t0);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(255, State::Initialize, 5)
    );
    for s in 1..=4 {
        inst.handle_timeout(t0 + secs(s));
        assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 255 }]);
    }
    inst.handle_timeout(t0 + secs(5));
    assert_eq!(
        drain(&mut inst),
        [
            Action::SendAdvert { priority: 255 },
            Action::SendGratuitous { repeat: 5 }
        ]
    );
    // One delayed round only.
    for s in 6..=12 {
        inst.handle_timeout(t0 + secs(s));
        assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 255 }]);
    }
}

#[test]
fn garp_delay_round_only_while_master() {
    let t0 = Instant::now();
    let c = InstanceConfig {
        garp_master_delay: secs(5),
        ..cfg(100)
    };
    let (mut inst, became) = master_via_timeout(c, t0);
    rx(&mut inst, became + secs(2), PEER_HIGH, 200).unwrap();
    drain(&mut inst);
    inst.handle_timeout(became + secs(5));
    assert_eq!(drain(&mut inst), []);
    assert!(inst.poll_timeout().unwrap() > became + secs(5));
}

#[test]
fn garp_refresh_while_master() {
    let t0 = Instant::now();
    let c = InstanceConfig {
        garp_master_refresh: ms(2500),
        garp_master_refresh_repeat: 2,
        ..cfg(255)
    };
    let mut inst = started(c, t0);
    let mut rounds = Vec::new();
    for tenth in 1..=80 {
        let now = t0 + ms(100 * tenth);
        inst.handle_timeout(now);
        for action in drain(&mut inst) {
            if action == (Action::SendGratuitous { repeat: 2 }) {
                rounds.push(now - t0);
            }
        }
    }
    assert_eq!(rounds, [ms(2500), ms(5000), ms(7500)]);
    inst.shutdown(t0 + secs(8));
    drain(&mut inst);
    inst.handle_timeout(t0 + secs(20));
    assert_eq!(drain(&mut inst), []);
}

#[test]
fn garp_zero_repeat_sends_nothing() {
    let t0 = Instant::now();
    let mut inst = Instance::new(InstanceConfig {
        garp_master_repeat: 0,
        ..cfg(255)
    });
    inst.startup(t0);
    assert!(!drain(&mut inst)
        .iter()
        .any(|a| matches!(a, Action::SendGratuitous { .. })));
}

// ======================= late timeouts (stalls) =======================

#[test]
fn stall_master_sends_one_advert_and_reschedules_from_now() {
    let t0 = Instant::now();
    let mut inst = started(cfg(255), t0);
    let late = t0 + ms(10_500);
    inst.handle_timeout(late);
    assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 255 }]);
    assert_eq!(inst.poll_timeout(), Some(late + secs(1)));
    inst.handle_timeout(late);
    assert_eq!(drain(&mut inst), []);
}

#[test]
fn slightly_late_advert_timer_keeps_its_phase() {
    // Scheduling latency of a few ms must not accumulate into advert drift.
    let t0 = Instant::now();
    let mut inst = started(cfg(255), t0);
    drain(&mut inst);
    for n in 1..=50u64 {
        let late = t0 + secs(n) + ms(3);
        inst.handle_timeout(late);
        assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 255 }]);
        assert_eq!(inst.poll_timeout(), Some(t0 + secs(n + 1)));
    }
}

#[test]
fn stall_backup_takes_over_once() {
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    let late = t0 + secs(60);
    inst.handle_timeout(late);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(100, State::Backup, 5)
    );
    assert_eq!(inst.poll_timeout(), Some(late + secs(1)));
    inst.handle_timeout(late);
    assert_eq!(drain(&mut inst), []);
}

#[test]
fn stall_every_master_timer_fires_once() {
    let t0 = Instant::now();
    let c = InstanceConfig {
        garp_master_delay: secs(2),
        garp_master_refresh: secs(1),
        garp_master_refresh_repeat: 3,
        ..cfg(255)
    };
    let mut inst = started(c, t0);
    let late = t0 + secs(30);
    inst.handle_timeout(late);
    assert_eq!(
        drain(&mut inst),
        [
            Action::SendAdvert { priority: 255 },
            Action::SendGratuitous { repeat: 5 },
            Action::SendGratuitous { repeat: 3 },
        ]
    );
    assert_eq!(inst.poll_timeout(), Some(late + secs(1)));
}

// ======================= Fault =======================

#[test]
fn fault_from_master_gives_up() {
    let t0 = Instant::now();
    let mut inst = started(cfg(255), t0);
    inst.set_fault(t0 + ms(500), true);
    assert_eq!(
        drain(&mut inst),
        [
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Fault
            },
        ]
    );
    assert_eq!(inst.state(), State::Fault);
    assert!(inst.is_faulted());
    assert_eq!(inst.poll_timeout(), None);
    assert_eq!(inst.counters().priority_zero_sent, 1);
    // No timers, and adverts change nothing.
    rx(&mut inst, t0 + secs(1), PEER_HIGH, 0).unwrap();
    inst.handle_timeout(t0 + secs(100));
    assert_eq!(drain(&mut inst), []);
    // Repeating the fault changes nothing.
    inst.set_fault(t0 + secs(2), true);
    assert_eq!(drain(&mut inst), []);
}

#[test]
fn fault_from_backup() {
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    inst.set_fault(t0 + secs(1), true);
    assert_eq!(
        drain(&mut inst),
        [Action::Transition {
            from: State::Backup,
            to: State::Fault
        }]
    );
    assert_eq!(inst.poll_timeout(), None);
}

#[test]
fn leaving_fault_goes_through_startup() {
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    inst.set_fault(t0 + secs(1), true);
    drain(&mut inst);
    let now = t0 + secs(10);
    inst.set_fault(now, false);
    assert_eq!(
        drain(&mut inst),
        [Action::Transition {
            from: State::Fault,
            to: State::Backup
        }]
    );
    assert_eq!(inst.poll_timeout(), Some(now + MDI_100));

    let mut owner = started(cfg(255), t0);
    owner.set_fault(t0 + secs(1), true);
    drain(&mut owner);
    owner.set_fault(now, false);
    assert_eq!(
        drain(&mut owner),
        become_master_actions(255, State::Fault, 5)
    );
    assert_eq!(owner.poll_timeout(), Some(now + secs(1)));
}

#[test]
fn leaving_fault_restarts_preempt_delay() {
    let t0 = Instant::now();
    let mut inst = started(
        InstanceConfig {
            preempt_delay: secs(5),
            ..cfg(100)
        },
        t0,
    );
    inst.set_fault(t0 + secs(1), true);
    let back = t0 + secs(20);
    inst.set_fault(back, false);
    let now = back + secs(1);
    rx(&mut inst, now, PEER_LOW, 50).unwrap();
    assert_eq!(inst.poll_timeout(), Some(now + MDI_100));
}

#[test]
fn fault_before_startup() {
    let t0 = Instant::now();
    let mut inst = Instance::new(cfg(100));
    inst.set_fault(t0, true);
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Initialize);
    inst.startup(t0);
    assert_eq!(
        drain(&mut inst),
        [Action::Transition {
            from: State::Initialize,
            to: State::Fault
        }]
    );
    assert_eq!(inst.poll_timeout(), None);
    inst.set_fault(t0 + secs(1), false);
    assert_eq!(inst.state(), State::Backup);
}

#[test]
fn shutdown_from_fault() {
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    inst.set_fault(t0, true);
    drain(&mut inst);
    inst.shutdown(t0 + secs(1));
    assert_eq!(
        drain(&mut inst),
        [Action::Transition {
            from: State::Fault,
            to: State::Initialize
        }]
    );
    // Still faulted: a restart lands in Fault again.
    inst.startup(t0 + secs(2));
    assert_eq!(inst.state(), State::Fault);
}

// ======================= encoding our adverts =======================

/// keepalived 2.2.7, v2, vrid 51, priority 150, PASS "secret", two VIPs, from 10.0.0.1
/// (see wire/tests.rs for the capture).
const KA_V2_PASS: [u8; 24] = [
    0x21, 0x33, 0x96, 0x02, 0x01, 0x01, 0x87, 0x62, 0xc0, 0xa8, 0x01, 0x64, 0xc0, 0xa8, 0x01, 0x65,
    b's', b'e', b'c', b'r', b'e', b't', 0x00, 0x00,
];

#[test]
fn encode_advert_matches_keepalived_v2() {
    let src = PEER_LOW;
    let c = InstanceConfig {
        priority: 150,
        primary_addr: src,
        vips: vec![VIP, "192.168.1.101".parse().unwrap()],
        ..cfg_v2(150)
    };
    let inst = Instance::new(c);
    let mut buf = [0u8; MAX_LEN];
    assert_eq!(inst.advert_len(), 24);
    let len = inst.encode_advert(150, src, GROUP4, &mut buf);
    assert_eq!(&buf[..len], &KA_V2_PASS);
}

#[test]
fn encode_advert_matches_keepalived_v3_ipv6() {
    let src: IpAddr = "fe80::ff:fe00:1".parse().unwrap();
    let c = InstanceConfig {
        vrid: 52,
        vips: vec!["fd00::100".parse().unwrap(), "fd00::101".parse().unwrap()],
        ..cfg_v6(100, src)
    };
    let inst = Instance::new(c);
    let mut buf = [0u8; MAX_LEN];
    let len = inst.encode_advert(0, src, GROUP6, &mut buf);
    assert_eq!(len, 40);
    // The priority-0 advert keepalived sent on SIGTERM, checksum by the kernel.
    assert_eq!(&buf[..8], &[0x31, 0x34, 0x00, 0x02, 0x00, 0x64, 0xd5, 0x33]);
}

#[test]
fn encode_advert_short_buffer_writes_nothing() {
    let inst = Instance::new(cfg(100));
    let mut buf = [0xaau8; 11];
    assert_eq!(inst.encode_advert(100, LOCAL, GROUP4, &mut buf), 0);
    assert!(buf.iter().all(|&b| b == 0xaa));
    assert_eq!(inst.advert_len(), 12);
}

#[test]
fn advertised_interval_is_what_the_wire_carries() {
    let v3 = Instance::new(InstanceConfig {
        advert_int: ms(15),
        ..cfg(100)
    });
    assert_eq!(v3.advertisement_interval(), ms(10));
    let v3_long = Instance::new(InstanceConfig {
        advert_int: secs(60),
        ..cfg(100)
    });
    assert_eq!(v3_long.advertisement_interval(), ms(40_950));
    let v2 = Instance::new(InstanceConfig {
        advert_int: ms(500),
        ..cfg_v2(100)
    });
    assert_eq!(v2.advertisement_interval(), secs(1));
    let mut buf = [0u8; MAX_LEN];
    assert_eq!(v2.encode_advert(100, LOCAL, GROUP4, &mut buf), 20);
}

// ======================= several routers on one LAN =======================

/// A zero-latency LAN: every advert an instance sends is encoded with `encode_advert` and
/// delivered, as bytes, to every other instance at the same instant.
struct Lan {
    t0: Instant,
    nodes: Vec<Instance>,
    connected: bool,
    /// (time since t0, node, action)
    log: Vec<(Duration, usize, Action)>,
}

impl Lan {
    fn new(t0: Instant, configs: Vec<InstanceConfig>) -> Lan {
        Lan {
            t0,
            nodes: configs.into_iter().map(Instance::new).collect(),
            connected: true,
            log: Vec::new(),
        }
    }

    fn settle(&mut self, now: Instant) {
        let mut buf = [0u8; MAX_LEN];
        loop {
            let mut idle = true;
            for i in 0..self.nodes.len() {
                while let Some(action) = self.nodes[i].poll_action() {
                    idle = false;
                    self.log.push((now - self.t0, i, action.clone()));
                    let Action::SendAdvert { priority } = action else {
                        continue;
                    };
                    let src = self.nodes[i].config().primary_addr;
                    let dst = group(self.nodes[i].config());
                    let len = self.nodes[i].encode_advert(priority, src, dst, &mut buf);
                    assert!(len > 0);
                    if !self.connected {
                        continue;
                    }
                    for j in (0..self.nodes.len()).filter(|&j| j != i) {
                        self.nodes[j]
                            .handle_packet(now, src, dst, 255, &buf[..len])
                            .unwrap();
                    }
                }
            }
            if idle {
                return;
            }
        }
    }

    fn at(&mut self, offset: Duration, f: impl FnOnce(&mut Vec<Instance>, Instant)) {
        let now = self.t0 + offset;
        self.run_until(offset);
        f(&mut self.nodes, now);
        self.settle(now);
    }

    fn run_until(&mut self, offset: Duration) {
        let end = self.t0 + offset;
        while let Some(next) = self.nodes.iter().filter_map(Instance::poll_timeout).min() {
            if next > end {
                break;
            }
            for node in &mut self.nodes {
                node.handle_timeout(next);
            }
            self.settle(next);
        }
    }

    fn states(&self) -> Vec<State> {
        self.nodes.iter().map(Instance::state).collect()
    }

    fn transitions_to_master(&self) -> Vec<(Duration, usize)> {
        self.log
            .iter()
            .filter(|(_, _, a)| {
                matches!(
                    a,
                    Action::Transition {
                        to: State::Master,
                        ..
                    }
                )
            })
            .map(|(t, i, _)| (*t, *i))
            .collect()
    }
}

fn node(priority: u8, last_octet: u8) -> InstanceConfig {
    InstanceConfig {
        primary_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last_octet)),
        ..cfg(priority)
    }
}

#[test]
fn lan_highest_priority_wins_the_first_election() {
    let t0 = Instant::now();
    let mut lan = Lan::new(t0, vec![node(100, 2), node(150, 1)]);
    lan.at(Duration::ZERO, |n, now| {
        n.iter_mut().for_each(|i| i.startup(now))
    });
    lan.run_until(secs(30));
    assert_eq!(lan.states(), [State::Backup, State::Master]);
    // Priority 150 runs out first: 3 s + 106/256 s.
    assert_eq!(
        lan.transitions_to_master(),
        [(Duration::from_nanos(3_414_062_500), 1)]
    );
    assert_eq!(
        lan.nodes[0].master_addr(),
        Some(lan.nodes[1].config().primary_addr)
    );
}

#[test]
fn lan_priority_zero_handover_at_skew_time() {
    let t0 = Instant::now();
    let mut lan = Lan::new(t0, vec![node(150, 1), node(100, 2), node(50, 3)]);
    lan.at(Duration::ZERO, |n, now| {
        n.iter_mut().for_each(|i| i.startup(now))
    });
    lan.run_until(secs(10));
    assert_eq!(lan.states(), [State::Master, State::Backup, State::Backup]);
    lan.at(ms(10_250), |n, now| n[0].shutdown(now));
    lan.run_until(secs(20));
    // The best Backup takes over one Skew_Time after the priority-0 advert; the other
    // stays Backup because it hears the new Master before its longer skew runs out.
    assert_eq!(
        lan.transitions_to_master().last(),
        Some(&(ms(10_250) + SKEW_100, 1))
    );
    assert_eq!(
        lan.states(),
        [State::Initialize, State::Master, State::Backup]
    );
}

#[test]
fn lan_equal_priorities_settle_on_greater_address() {
    let t0 = Instant::now();
    let mut lan = Lan::new(t0, vec![node(100, 1), node(100, 2)]);
    // Both start at once: equal timers, both become Master at the same instant, and the
    // exchange of adverts demotes the lower address.
    lan.at(Duration::ZERO, |n, now| {
        n.iter_mut().for_each(|i| i.startup(now))
    });
    lan.run_until(secs(10));
    assert_eq!(lan.states(), [State::Backup, State::Master]);
}

/// Two Masters after a partition heals. Returns the LAN at the moment of healing, and the
/// next advert instants of the weak and the strong side.
fn healed_partition(t0: Instant, strong: InstanceConfig) -> (Lan, Instant, Instant) {
    let mut lan = Lan::new(t0, vec![strong, node(100, 2)]);
    lan.at(Duration::ZERO, |n, now| {
        n.iter_mut().for_each(|i| i.startup(now))
    });
    lan.run_until(secs(5));
    assert_eq!(lan.states(), [State::Master, State::Backup]);
    lan.connected = false;
    lan.run_until(ms(10_500));
    assert_eq!(lan.states(), [State::Master, State::Master]);
    lan.connected = true;
    let strong_next = lan.nodes[0].poll_timeout().unwrap();
    let weak_next = lan.nodes[1].poll_timeout().unwrap();
    // The case that matters: the weak side speaks first after the heal.
    assert!(weak_next < strong_next);
    (lan, weak_next, strong_next)
}

#[test]
fn lan_partition_heal_answered_at_once() {
    let t0 = Instant::now();
    let strong = InstanceConfig {
        higher_prio_send_advert: true,
        garp_lower_prio_repeat: 1,
        ..node(200, 1)
    };
    let (mut lan, weak_next, _) = healed_partition(t0, strong);
    // The strong Master answers the weak one's advert at once, so the weak side steps down
    // within that instant.
    lan.run_until(weak_next - t0);
    assert_eq!(lan.states(), [State::Master, State::Backup]);
    assert!(lan
        .log
        .contains(&(weak_next - t0, 0, Action::SendGratuitous { repeat: 1 })));
}

#[test]
fn lan_partition_heal_without_answer_waits_for_the_next_advert() {
    let t0 = Instant::now();
    let (mut lan, weak_next, strong_next) = healed_partition(t0, node(200, 1));
    lan.run_until(weak_next - t0);
    assert_eq!(lan.states(), [State::Master, State::Master]);
    lan.run_until(strong_next - t0);
    assert_eq!(lan.states(), [State::Master, State::Backup]);
}

#[test]
fn lan_preempt_back_after_restart() {
    let t0 = Instant::now();
    let mut lan = Lan::new(t0, vec![node(150, 1), node(100, 2)]);
    lan.at(Duration::ZERO, |n, now| {
        n.iter_mut().for_each(|i| i.startup(now))
    });
    lan.run_until(secs(5));
    lan.at(secs(5), |n, now| n[0].shutdown(now));
    lan.run_until(secs(10));
    assert_eq!(lan.states(), [State::Initialize, State::Master]);
    // The higher priority returns and preempts after its own Master_Down_Interval.
    lan.at(secs(10), |n, now| n[0].startup(now));
    lan.run_until(secs(20));
    assert_eq!(lan.states(), [State::Master, State::Backup]);
    assert_eq!(
        lan.transitions_to_master().last(),
        Some(&(secs(10) + Duration::from_nanos(3_414_062_500), 0))
    );
}

#[test]
fn lan_nopreempt_keeps_the_live_master() {
    let t0 = Instant::now();
    let returning = InstanceConfig {
        preempt: false,
        ..node(150, 1)
    };
    let mut lan = Lan::new(t0, vec![returning, node(100, 2)]);
    lan.at(Duration::ZERO, |n, now| n[1].startup(now));
    lan.run_until(secs(5));
    lan.at(secs(5), |n, now| n[0].startup(now));
    lan.run_until(secs(30));
    assert_eq!(lan.states(), [State::Backup, State::Master]);
}

#[test]
fn counters_follow_a_lifecycle() {
    let t0 = Instant::now();
    let (mut inst, became) = master_via_timeout(cfg(100), t0);
    inst.handle_timeout(became + secs(1));
    rx(&mut inst, became + ms(1500), PEER_HIGH, 200).unwrap();
    rx(&mut inst, became + ms(1600), PEER_HIGH, 0).unwrap();
    inst.handle_timeout(became + secs(3));
    inst.shutdown(became + secs(4));
    let c = inst.counters();
    // Adverts: takeover, periodic, second takeover, shutdown priority 0.
    assert_eq!(c.adverts_sent, 4);
    assert_eq!(c.priority_zero_sent, 1);
    assert_eq!(c.adverts_received, 2);
    assert_eq!(c.priority_zero_received, 1);
    assert_eq!(c.became_master, 2);
    assert_eq!(c.became_backup, 2);
    // Init→Backup→Master→Backup→Master→Init.
    assert_eq!(c.transitions, 5);
}

// ======================= lease gate (quorum mode) =======================

/// `cfg(priority)` in quorum mode: Master only while the lease is held.
fn gated(priority: u8) -> InstanceConfig {
    InstanceConfig {
        lease_gated: true,
        ..cfg(priority)
    }
}

/// A gated instance that became Master when the lease was granted at `t0 + 100 ms`.
fn master_via_lease(c: InstanceConfig, t0: Instant) -> (Instance, Instant) {
    let mut inst = started(c, t0);
    let at = t0 + ms(100);
    inst.set_lease(at, true);
    assert_eq!(inst.state(), State::Master);
    drain(&mut inst);
    (inst, at)
}

fn lease_lost_actions() -> Vec<Action> {
    vec![
        Action::SendAdvert { priority: 0 },
        Action::RemoveVips,
        Action::Transition {
            from: State::Master,
            to: State::Backup,
        },
    ]
}

#[test]
fn lease_not_held_after_new() {
    let inst = Instance::new(gated(100));
    assert!(!inst.lease_held());
    assert_eq!(inst.counters().lease_blocked_takeovers, 0);
    assert_eq!(inst.counters().lease_conflicts, 0);
}

#[test]
fn gated_startup_without_lease_stays_backup_forever() {
    let t0 = Instant::now();
    let mut inst = Instance::new(gated(100));
    inst.startup(t0);
    assert_eq!(
        drain(&mut inst),
        [Action::Transition {
            from: State::Initialize,
            to: State::Backup
        }]
    );
    let mut at = t0 + MDI_100;
    assert_eq!(inst.poll_timeout(), Some(at));
    for n in 1..=50 {
        inst.handle_timeout(at);
        assert_eq!(drain(&mut inst), []);
        assert_eq!(inst.state(), State::Backup);
        assert_eq!(inst.counters().lease_blocked_takeovers, n);
        // Re-armed from the expiry: the instance keeps watching.
        at += MDI_100;
        assert_eq!(inst.poll_timeout(), Some(at));
    }
    let c = inst.counters();
    assert_eq!((c.adverts_sent, c.became_master), (0, 0));
}

#[test]
fn gated_blocked_takeover_keeps_the_learned_master() {
    let t0 = Instant::now();
    let mut inst = started(gated(100), t0);
    rx(&mut inst, t0 + secs(1), PEER_HIGH, 200).unwrap();
    assert_eq!(inst.master_addr(), Some(PEER_HIGH));
    // The Master goes quiet; its priority-0 advert too only sets the timer to Skew_Time.
    rx(&mut inst, t0 + secs(2), PEER_HIGH, 0).unwrap();
    assert_eq!(inst.poll_timeout(), Some(t0 + secs(2) + SKEW_100));
    inst.handle_timeout(t0 + secs(2) + SKEW_100);
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(inst.master_addr(), Some(PEER_HIGH));
    assert_eq!(inst.poll_timeout(), Some(t0 + secs(2) + SKEW_100 + MDI_100));
    assert_eq!(inst.counters().lease_blocked_takeovers, 1);
}

#[test]
fn gated_backup_follows_a_lower_priority_master() {
    // Preemption is the lease's business: a gated Backup does not discard a lower-priority
    // Master's adverts, so it reports it and does not count blocked takeovers while it
    // speaks.
    let t0 = Instant::now();
    let mut inst = started(gated(100), t0);
    for n in 1..=10 {
        rx(&mut inst, t0 + secs(n), PEER_LOW, 50).unwrap();
        inst.handle_timeout(t0 + secs(n));
    }
    assert_eq!(inst.master_addr(), Some(PEER_LOW));
    assert_eq!(inst.poll_timeout(), Some(t0 + secs(10) + MDI_100));
    assert_eq!(inst.counters().lease_blocked_takeovers, 0);
    assert_eq!(drain(&mut inst), []);
}

#[test]
fn gated_lease_granted_in_backup_becomes_master_at_once() {
    let t0 = Instant::now();
    let mut inst = started(gated(100), t0);
    rx(&mut inst, t0 + ms(50), PEER_HIGH, 200).unwrap();
    let now = t0 + ms(100);
    inst.set_lease(now, true);
    assert!(inst.lease_held());
    assert_eq!(
        drain(&mut inst),
        become_master_actions(100, State::Backup, 5)
    );
    assert_eq!(inst.state(), State::Master);
    assert_eq!(inst.poll_timeout(), Some(now + secs(1)));
    assert_eq!(inst.master_addr(), Some(LOCAL));
    assert_eq!(inst.master_adver_interval(), secs(1));
    assert_eq!(inst.counters().became_master, 1);
    // Granting again changes nothing.
    inst.set_lease(now + ms(10), true);
    assert_eq!(drain(&mut inst), []);
    // And it advertises as any Master.
    inst.handle_timeout(now + secs(1));
    assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 100 }]);
}

#[test]
fn gated_startup_with_lease_becomes_master_at_once() {
    let t0 = Instant::now();
    let mut inst = Instance::new(gated(100));
    // In Initialize the lease is only recorded.
    inst.set_lease(t0, true);
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Initialize);
    assert!(inst.lease_held());
    inst.startup(t0 + ms(1));
    assert_eq!(
        drain(&mut inst),
        become_master_actions(100, State::Initialize, 5)
    );
    assert_eq!(inst.poll_timeout(), Some(t0 + ms(1) + secs(1)));
}

#[test]
fn gated_lease_revoked_gives_up_like_priority_zero() {
    let t0 = Instant::now();
    let (mut inst, became) = master_via_lease(gated(100), t0);
    let now = became + ms(2500);
    inst.set_lease(now, false);
    assert!(!inst.lease_held());
    assert_eq!(drain(&mut inst), lease_lost_actions());
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(inst.master_addr(), None);
    assert_eq!(inst.poll_timeout(), Some(now + MDI_100));
    let c = inst.counters();
    assert_eq!((c.priority_zero_sent, c.became_backup), (1, 2));
    // Revoking again changes nothing; the down timer no longer makes it Master.
    inst.set_lease(now, false);
    assert_eq!(drain(&mut inst), []);
    inst.handle_timeout(now + MDI_100);
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(inst.counters().lease_blocked_takeovers, 1);
    // Granted back: Master at once.
    let back = now + secs(5);
    inst.set_lease(back, true);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(100, State::Backup, 5)
    );
}

#[test]
fn gated_owner_without_lease_stays_backup() {
    let t0 = Instant::now();
    let mut inst = Instance::new(gated(255));
    inst.startup(t0);
    assert_eq!(
        drain(&mut inst),
        [Action::Transition {
            from: State::Initialize,
            to: State::Backup
        }]
    );
    for _ in 0..10 {
        let at = inst.poll_timeout().unwrap();
        inst.handle_timeout(at);
        assert_eq!(inst.state(), State::Backup);
    }
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.counters().lease_blocked_takeovers, 10);
    inst.set_lease(t0 + secs(60), true);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(255, State::Backup, 5)
    );
}

#[test]
fn gated_master_holds_against_higher_priority() {
    let t0 = Instant::now();
    let (mut inst, became) = master_via_lease(gated(100), t0);
    let adver = inst.poll_timeout();
    rx(&mut inst, became + ms(300), PEER_HIGH, 200).unwrap();
    assert_eq!(inst.state(), State::Master);
    // Answered at once so the other side hears us; VIPs and timers untouched.
    assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 100 }]);
    assert_eq!(inst.poll_timeout(), adver);
    assert_eq!(inst.master_addr(), Some(LOCAL));
    assert_eq!(inst.counters().lease_conflicts, 1);
    assert_eq!(inst.counters().became_backup, 1);

    // Equal priority from a greater address: the same, but within one
    // Advertisement_Interval of the last answer it is counted, not answered again.
    rx(&mut inst, became + ms(400), PEER_HIGH, 100).unwrap();
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.counters().lease_conflicts, 2);
    rx(&mut inst, became + ms(1300), PEER_HIGH, 100).unwrap();
    assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 100 }]);
    assert_eq!(inst.counters().lease_conflicts, 3);
    assert_eq!(inst.state(), State::Master);

    // Lower priority and priority 0 are handled as without the gate.
    rx(&mut inst, became + ms(1400), PEER_LOW, 50).unwrap();
    assert_eq!(drain(&mut inst), []);
    let now = became + ms(1500);
    rx(&mut inst, now, PEER_HIGH, 0).unwrap();
    assert_eq!(drain(&mut inst), [Action::SendAdvert { priority: 100 }]);
    assert_eq!(inst.poll_timeout(), Some(now + secs(1)));
    assert_eq!(inst.counters().lease_conflicts, 3);
}

#[test]
fn gated_fault_wins_over_the_lease() {
    let t0 = Instant::now();
    let (mut inst, became) = master_via_lease(gated(100), t0);
    inst.set_fault(became + secs(1), true);
    assert_eq!(
        drain(&mut inst),
        [
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Fault
            },
        ]
    );
    assert!(inst.lease_held());
    assert_eq!(inst.poll_timeout(), None);
    // Lease changes in Fault are only recorded.
    inst.set_lease(became + secs(2), false);
    inst.set_lease(became + secs(3), true);
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Fault);
    // Leaving Fault with the lease: Master at once.
    let now = became + secs(4);
    inst.set_fault(now, false);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(100, State::Fault, 5)
    );
    assert_eq!(inst.poll_timeout(), Some(now + secs(1)));

    // Leaving Fault without it: Backup.
    let mut other = started(gated(100), t0);
    other.set_fault(t0 + secs(1), true);
    drain(&mut other);
    other.set_fault(t0 + secs(2), false);
    assert_eq!(
        drain(&mut other),
        [Action::Transition {
            from: State::Fault,
            to: State::Backup
        }]
    );

    // Faulted before startup with the lease: Fault, not Master.
    let mut early = Instance::new(gated(100));
    early.set_lease(t0, true);
    early.set_fault(t0, true);
    early.startup(t0);
    assert_eq!(early.state(), State::Fault);
}

#[test]
fn gated_shutdown_is_unchanged() {
    let t0 = Instant::now();
    let (mut inst, became) = master_via_lease(gated(100), t0);
    inst.shutdown(became + secs(1));
    assert_eq!(
        drain(&mut inst),
        [
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Initialize
            },
        ]
    );
    // The lease is still held: a restart goes straight back to Master.
    inst.startup(became + secs(2));
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn set_lease_on_ungated_instance_changes_nothing() {
    let t0 = Instant::now();
    // Two identical instances fed the same inputs; one also gets set_lease calls.
    let mut plain = started(cfg(100), t0);
    let mut poked = started(cfg(100), t0);
    poked.set_lease(t0 + ms(100), true);
    assert!(!poked.lease_held());
    assert_eq!(drain(&mut poked), []);
    assert_eq!(snapshot(&poked), snapshot(&plain));

    let at = plain.poll_timeout().unwrap();
    plain.handle_timeout(at);
    poked.handle_timeout(at);
    assert_eq!(drain(&mut poked), drain(&mut plain));
    assert_eq!(poked.state(), State::Master);
    poked.set_lease(at + ms(100), false);
    poked.set_lease(at + ms(200), true);
    assert_eq!(drain(&mut poked), []);
    rx(&mut plain, at + ms(300), PEER_HIGH, 200).unwrap();
    rx(&mut poked, at + ms(300), PEER_HIGH, 200).unwrap();
    assert_eq!(drain(&mut poked), drain(&mut plain));
    assert_eq!(poked.state(), State::Backup);
    assert_eq!(snapshot(&poked), snapshot(&plain));
    assert_eq!(poked.counters().lease_conflicts, 0);
    assert_eq!(poked.counters().lease_blocked_takeovers, 0);

    // The owner too.
    let mut owner = Instance::new(cfg(255));
    owner.set_lease(t0, false);
    owner.startup(t0);
    assert_eq!(owner.state(), State::Master);
}

#[test]
fn lan_lease_moves_the_master() {
    let t0 = Instant::now();
    let a = InstanceConfig {
        lease_gated: true,
        ..node(100, 1)
    };
    let b = InstanceConfig {
        lease_gated: true,
        ..node(200, 2)
    };
    let mut lan = Lan::new(t0, vec![a, b]);
    lan.at(Duration::ZERO, |n, now| {
        n.iter_mut().for_each(|i| i.startup(now))
    });
    lan.run_until(secs(30));
    // Nobody holds the lease: no Master, whatever the priorities.
    assert_eq!(lan.states(), [State::Backup, State::Backup]);
    let blocked = lan.nodes[1].counters().lease_blocked_takeovers;
    assert!(blocked > 0);
    lan.at(secs(30), |n, now| n[0].set_lease(now, true));
    assert_eq!(lan.transitions_to_master(), [(secs(30), 0)]);
    lan.run_until(secs(60));
    // The higher-priority Backup hears the Master and does not preempt it.
    assert_eq!(lan.states(), [State::Master, State::Backup]);
    assert_eq!(
        lan.nodes[1].master_addr(),
        Some(lan.nodes[0].config().primary_addr)
    );
    assert_eq!(lan.nodes[1].counters().lease_blocked_takeovers, blocked);
    // The coordinator moves the lease: revoke, then grant.
    lan.at(secs(60), |n, now| n[0].set_lease(now, false));
    lan.at(ms(60_010), |n, now| n[1].set_lease(now, true));
    assert_eq!(lan.states(), [State::Backup, State::Master]);
    lan.run_until(secs(90));
    assert_eq!(lan.states(), [State::Backup, State::Master]);
    assert_eq!(
        lan.transitions_to_master(),
        [(secs(30), 0), (ms(60_010), 1)]
    );
}

#[test]
fn lan_two_lease_holders_do_not_ping_pong() {
    // A stale holder and the new one both Master, each answering the other at once (the
    // lease conflict on the side that hears a higher advert, higher_prio_send_advert on the
    // other): the conflict answers are rate-limited, so the exchange does not run away.
    let t0 = Instant::now();
    let c = |last_octet| InstanceConfig {
        lease_gated: true,
        higher_prio_send_advert: true,
        ..node(100, last_octet)
    };
    let mut lan = Lan::new(t0, vec![c(1), c(2)]);
    lan.at(Duration::ZERO, |n, now| {
        for i in n.iter_mut() {
            i.set_lease(now, true);
            i.startup(now);
        }
    });
    lan.run_until(secs(10));
    assert_eq!(lan.states(), [State::Master, State::Master]);
    let (low, high) = (lan.nodes[0].counters(), lan.nodes[1].counters());
    // The lower side (conflict): the takeover, ten periodic adverts and at most one answer
    // per interval (eleven intervals begun in 0..=10 s).
    assert!(low.adverts_sent <= 22, "{low:?}");
    assert!(low.lease_conflicts > 0);
    // The higher side answers each of those once (higher_prio_send_advert, as without the
    // gate), on top of its takeover and periodic adverts.
    assert!(high.adverts_sent <= 11 + low.adverts_sent, "{high:?}");
}

mod lease_properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Event {
        Lease(bool),
        Fault(bool),
        /// An advert from PEER_LOW or PEER_HIGH with this priority.
        Advert {
            high: bool,
            priority: u8,
        },
        /// Let this much time pass, then handle_timeout.
        Wait(u64),
        /// Jump to the next deadline and handle it.
        Fire,
        Shutdown,
        Startup,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            3 => any::<bool>().prop_map(Event::Lease),
            2 => any::<bool>().prop_map(Event::Fault),
            3 => (any::<bool>(), prop_oneof![Just(0u8), Just(100), Just(255), any::<u8>()])
                .prop_map(|(high, priority)| Event::Advert { high, priority }),
            2 => (0u64..5000).prop_map(Event::Wait),
            3 => Just(Event::Fire),
            1 => Just(Event::Shutdown),
            1 => Just(Event::Startup),
        ]
    }

    proptest! {
        #[test]
        fn gated_master_only_with_lease_and_vips_follow_master(
            gated in any::<bool>(),
            priority in prop_oneof![Just(255u8), 1u8..=255],
            answer in any::<bool>(),
            events in proptest::collection::vec(event(), 1..80),
        ) {
            let t0 = Instant::now();
            let mut inst = Instance::new(InstanceConfig {
                lease_gated: gated,
                higher_prio_send_advert: answer,
                ..cfg(priority)
            });
            let mut now = t0;
            inst.startup(now);
            let mut vips = false;
            for event in events {
                match event {
                    Event::Lease(held) => inst.set_lease(now, held),
                    Event::Fault(fault) => inst.set_fault(now, fault),
                    Event::Advert { high, priority } => {
                        let src = if high { PEER_HIGH } else { PEER_LOW };
                        rx(&mut inst, now, src, priority).unwrap();
                    }
                    Event::Wait(n) => {
                        now += ms(n);
                        inst.handle_timeout(now);
                    }
                    Event::Fire => {
                        if let Some(at) = inst.poll_timeout() {
                            now = now.max(at);
                            inst.handle_timeout(now);
                        }
                    }
                    Event::Shutdown => inst.shutdown(now),
                    Event::Startup => inst.startup(now),
                }
                for action in drain(&mut inst) {
                    match action {
                        Action::AddVips => {
                            prop_assert!(!vips, "AddVips twice");
                            vips = true;
                        }
                        Action::RemoveVips => {
                            prop_assert!(vips, "RemoveVips without AddVips");
                            vips = false;
                        }
                        _ => {}
                    }
                }
                let master = inst.state() == State::Master;
                prop_assert_eq!(vips, master);
                if gated {
                    prop_assert!(!master || (inst.lease_held() && !inst.is_faulted()));
                    // The lease in Backup turns into Master at once.
                    prop_assert!(inst.state() != State::Backup || !inst.lease_held());
                } else {
                    prop_assert!(!inst.lease_held());
                    prop_assert_eq!(inst.counters().lease_blocked_takeovers, 0);
                    prop_assert_eq!(inst.counters().lease_conflicts, 0);
                }
                if inst.is_faulted() {
                    prop_assert!(matches!(inst.state(), State::Fault | State::Initialize));
                }
            }
        }
    }
}

// ======================= takeover gate (vrrp mode, fence_on_takeover) =======================

/// `cfg(priority)` with fence_on_takeover: Master_Down_Timer needs the runtime's allowance.
fn fence_gated(priority: u8) -> InstanceConfig {
    InstanceConfig {
        takeover_gated: true,
        ..cfg(priority)
    }
}

fn became_master(actions: &[Action]) -> bool {
    actions.contains(&Action::Transition {
        from: State::Backup,
        to: State::Master,
    })
}

#[test]
fn takeover_gate_blocks_master_down_until_allowed_then_takes_over_at_once() {
    let t0 = Instant::now();
    let mut inst = started(fence_gated(100), t0);
    rx(&mut inst, t0 + ms(100), PEER_HIGH, 200).unwrap();
    drain(&mut inst);
    let mut at = t0 + ms(100) + MDI_100;
    for n in 1..=5 {
        inst.handle_timeout(at);
        assert_eq!(drain(&mut inst), []);
        assert_eq!(inst.state(), State::Backup);
        assert!(inst.takeover_pending());
        assert_eq!(inst.counters().fence_blocked_takeovers, n);
        at += MDI_100;
        assert_eq!(inst.poll_timeout(), Some(at), "keeps watching");
    }
    // The peer was fenced: Master after Skew_Time (not a whole Master_Down_Interval), VIPs
    // added.
    let now = at - ms(900);
    inst.set_takeover_allowed(now, true);
    assert_eq!(drain(&mut inst), []);
    assert!(!inst.takeover_pending());
    assert_eq!(inst.poll_timeout(), Some(now + SKEW_100));
    inst.handle_timeout(now + SKEW_100);
    let actions = drain(&mut inst);
    assert!(became_master(&actions), "{actions:?}");
    assert!(actions.contains(&Action::AddVips));
    assert_eq!(inst.state(), State::Master);
}

#[test]
fn takeover_gate_allowed_takes_over_on_the_timer_as_usual() {
    let t0 = Instant::now();
    let mut inst = started(fence_gated(100), t0);
    inst.set_takeover_allowed(t0, true);
    assert_eq!(drain(&mut inst), []);
    inst.handle_timeout(t0 + MDI_100);
    assert!(became_master(&drain(&mut inst)));
    assert_eq!(inst.counters().fence_blocked_takeovers, 0);
}

#[test]
fn takeover_gate_a_master_heard_again_cancels_the_pending_takeover() {
    let t0 = Instant::now();
    let mut inst = started(fence_gated(100), t0);
    inst.handle_timeout(t0 + MDI_100);
    assert!(inst.takeover_pending());
    rx(&mut inst, t0 + MDI_100 + ms(10), PEER_HIGH, 200).unwrap();
    assert!(!inst.takeover_pending());
    inst.set_takeover_allowed(t0 + MDI_100 + ms(20), true);
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Backup);
}

#[test]
fn takeover_gate_never_demotes_a_master_and_leaves_the_election_alone() {
    let t0 = Instant::now();
    let mut inst = started(fence_gated(100), t0);
    inst.set_takeover_allowed(t0, true);
    inst.handle_timeout(t0 + MDI_100);
    assert_eq!(inst.state(), State::Master);
    drain(&mut inst);
    inst.set_takeover_allowed(t0 + secs(5), false);
    assert_eq!(drain(&mut inst), []);
    assert_eq!(inst.state(), State::Master);
    // A higher-priority Master still wins the wire election.
    rx(&mut inst, t0 + secs(6), PEER_HIGH, 200).unwrap();
    assert_eq!(inst.state(), State::Backup);
}

#[test]
fn takeover_gate_is_inert_without_the_flag() {
    let t0 = Instant::now();
    let mut inst = started(cfg(100), t0);
    inst.set_takeover_allowed(t0, false);
    inst.handle_timeout(t0 + MDI_100);
    assert_eq!(inst.state(), State::Master);
    assert_eq!(inst.counters().fence_blocked_takeovers, 0);
}

#[test]
fn takeover_gate_lets_a_preemption_of_a_live_lower_priority_master_through() {
    // The Master's priority fell below ours (a tracked check, a weight): its adverts are
    // discarded, and the expiry that follows preempts a Master that is there.
    let t0 = Instant::now();
    let mut inst = started(fence_gated(100), t0);
    rx(&mut inst, t0 + ms(100), PEER_HIGH, 200).unwrap();
    let mut t = t0 + ms(100);
    for _ in 0..3 {
        t += secs(1);
        rx(&mut inst, t, PEER_HIGH, 50).unwrap();
    }
    inst.handle_timeout(t0 + ms(100) + MDI_100);
    assert_eq!(inst.state(), State::Master, "preempted");
    assert_eq!(inst.counters().fence_blocked_takeovers, 0);
}

#[test]
fn takeover_gate_a_preemption_long_ago_does_not_excuse_a_silent_master() {
    let t0 = Instant::now();
    let mut inst = started(fence_gated(100), t0);
    rx(&mut inst, t0, PEER_HIGH, 50).unwrap();
    // The lower-priority Master falls silent for more than Master_Down_Interval... and
    // then a higher-priority one appears and goes silent too.
    rx(&mut inst, t0 + secs(2), PEER_HIGH, 200).unwrap();
    inst.handle_timeout(t0 + secs(2) + MDI_100);
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(inst.counters().fence_blocked_takeovers, 1);
}

#[test]
fn takeover_gate_lets_a_priority_zero_handover_through() {
    let t0 = Instant::now();
    let mut inst = started(fence_gated(100), t0);
    rx(&mut inst, t0 + ms(100), PEER_HIGH, 200).unwrap();
    rx(&mut inst, t0 + ms(200), PEER_HIGH, 0).unwrap();
    inst.handle_timeout(t0 + ms(200) + SKEW_100);
    assert_eq!(
        inst.state(),
        State::Master,
        "the Master left: no fence needed"
    );
    assert_eq!(inst.counters().fence_blocked_takeovers, 0);
}

#[test]
fn takeover_gate_a_master_back_after_priority_zero_is_gated_again() {
    let t0 = Instant::now();
    let mut inst = started(fence_gated(100), t0);
    rx(&mut inst, t0 + ms(100), PEER_HIGH, 0).unwrap();
    rx(&mut inst, t0 + ms(150), PEER_HIGH, 200).unwrap();
    inst.handle_timeout(t0 + ms(150) + MDI_100);
    assert_eq!(inst.state(), State::Backup);
    assert_eq!(inst.counters().fence_blocked_takeovers, 1);
}
