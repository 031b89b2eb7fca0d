//! Property tests: the codec round-trips every valid advert and never panics on any input;
//! the state machine never panics and keeps its invariants under any sequence of inputs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tandem_vrrp::wire::{self, Addresses, Family, Packet, Repr, MAX_LEN};
use tandem_vrrp::{Action, Auth, Instance, InstanceConfig, State, Version};

fn addr(family: Family) -> BoxedStrategy<IpAddr> {
    match family {
        Family::V4 => any::<[u8; 4]>()
            .prop_map(|b| IpAddr::V4(Ipv4Addr::from(b)))
            .boxed(),
        Family::V6 => any::<[u8; 16]>()
            .prop_map(|b| IpAddr::V6(Ipv6Addr::from(b)))
            .boxed(),
    }
}

/// Everything a valid advert can be, plus the IP addresses it travels between.
#[derive(Debug, Clone)]
struct Valid {
    version: Version,
    family: Family,
    vrid: u8,
    priority: u8,
    advert_int: Duration,
    auth: Auth,
    addrs: Vec<IpAddr>,
    src: IpAddr,
    dst: IpAddr,
}

impl Valid {
    fn repr(&self) -> Repr<'_> {
        Repr {
            version: self.version,
            vrid: self.vrid,
            priority: self.priority,
            advert_int: self.advert_int,
            auth: self.auth,
            addresses: Addresses::from_ips(self.family, &self.addrs),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut buf = vec![0; MAX_LEN];
        let len = self.repr().emit(&mut buf, self.src, self.dst).unwrap();
        buf.truncate(len);
        buf
    }
}

fn valid() -> impl Strategy<Value = Valid> {
    prop_oneof![
        Just((Version::V2, Family::V4)),
        Just((Version::V3, Family::V4)),
        Just((Version::V3, Family::V6)),
    ]
    .prop_flat_map(|(version, family)| {
        let interval = match version {
            Version::V2 => (1u64..=255).prop_map(Duration::from_secs).boxed(),
            Version::V3 => (1u64..=4095)
                .prop_map(|cs| Duration::from_millis(cs * 10))
                .boxed(),
        };
        let auth = match version {
            Version::V2 => {
                prop_oneof![Just(Auth::None), any::<[u8; 8]>().prop_map(Auth::Simple)].boxed()
            }
            Version::V3 => Just(Auth::None).boxed(),
        };
        (
            any::<u8>(),
            any::<u8>(),
            interval,
            auth,
            proptest::collection::vec(addr(family), 0..=20),
            addr(family),
            addr(family),
        )
            .prop_map(
                move |(vrid, priority, advert_int, auth, addrs, src, dst)| Valid {
                    version,
                    family,
                    vrid,
                    priority,
                    advert_int,
                    auth,
                    addrs,
                    src,
                    dst,
                },
            )
    })
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::V4), Just(Family::V6)]
}

fn any_addr() -> impl Strategy<Value = IpAddr> {
    family().prop_flat_map(addr)
}

/// Reads every accessor; all must be panic-free on a checked view.
fn touch<T: AsRef<[u8]>>(packet: &Packet<T>) {
    let _ = (
        packet.version(),
        packet.msg_type(),
        packet.vrid(),
        packet.priority(),
        packet.addr_count(),
        packet.auth_type(),
        packet.adver_int_secs(),
        packet.max_adver_int_centis(),
        packet.reserved(),
        packet.checksum(),
        packet.addresses().len(),
        packet.auth_data().len(),
        packet.message_len(),
    );
}

#[derive(Debug, Clone)]
enum Mutation {
    Xor(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Xor(i, x)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..20).prop_map(Mutation::Append),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Xor(i, x) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] ^= x;
        }
        Mutation::Xor(..) => {}
        Mutation::Truncate(n) => bytes.truncate(n % (bytes.len() + 1)),
        Mutation::Append(extra) => bytes.extend_from_slice(extra),
    }
}

proptest! {
    #[test]
    fn emit_parse_round_trip(v in valid()) {
        let bytes = v.bytes();
        prop_assert_eq!(bytes.len(), v.repr().buffer_len());
        let parsed = wire::parse(&bytes, v.family, v.src, v.dst);
        prop_assert_eq!(parsed, Ok(v.repr()));
        let packet = Packet::new_checked(&bytes[..], v.family).unwrap();
        prop_assert!(packet.verify_checksum(v.src, v.dst));
        touch(&packet);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        family in family(),
        src in any_addr(),
        dst in any_addr(),
    ) {
        if let Ok(packet) = Packet::new_checked(&bytes[..], family) {
            touch(&packet);
            let _ = Repr::parse(&packet, src, dst);
        }
        if let Ok(repr) = wire::parse(&bytes, family, src, dst) {
            prop_assert_eq!(repr.buffer_len(), bytes.len());
            prop_assert!(repr.addresses.iter().count() == repr.addresses.len());
        }
    }

    #[test]
    fn parse_never_panics_on_mutated_adverts(
        v in valid(),
        mutations in proptest::collection::vec(mutation(), 1..4),
        family in family(),
    ) {
        let mut bytes = v.bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if let Ok(packet) = Packet::new_checked(&bytes[..], family) {
            touch(&packet);
        }
        // Whatever survives parsing re-emits to a message that parses to the same thing.
        if let Ok(repr) = wire::parse(&bytes, family, v.src, v.dst) {
            let mut buf = vec![0; MAX_LEN];
            let len = repr.emit(&mut buf, v.src, v.dst).unwrap();
            prop_assert_eq!(wire::parse(&buf[..len], family, v.src, v.dst), Ok(repr));
        }
    }
}

// ---------------- the state machine under arbitrary input ----------------

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));

#[derive(Debug, Clone)]
enum Input {
    Advance(u64),
    Timeout,
    /// A well-formed advert for our VRID (v3: any interval).
    Advert {
        priority: u8,
        src_octet: u8,
        centis: u16,
    },
    Garbage(Vec<u8>, u8),
    Mutated {
        priority: u8,
        mutation: Mutation,
    },
    Fault(bool),
    SetPriority(u8),
    Startup,
    Shutdown,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => (0u64..5000).prop_map(Input::Advance),
        4 => Just(Input::Timeout),
        6 => (any::<u8>(), 1u8..=4, 1u16..=400)
            .prop_map(|(priority, src_octet, centis)| Input::Advert { priority, src_octet, centis }),
        1 => (proptest::collection::vec(any::<u8>(), 0..40), any::<u8>())
            .prop_map(|(b, ttl)| Input::Garbage(b, ttl)),
        2 => (any::<u8>(), mutation()).prop_map(|(priority, mutation)| Input::Mutated { priority, mutation }),
        1 => any::<bool>().prop_map(Input::Fault),
        1 => any::<u8>().prop_map(Input::SetPriority),
        1 => Just(Input::Startup),
        1 => Just(Input::Shutdown),
    ]
}

fn instance_config() -> impl Strategy<Value = InstanceConfig> {
    (
        prop_oneof![Just(Version::V2), Just(Version::V3)],
        1u8..=255,
        any::<bool>(),
        0u64..5000,
        any::<bool>(),
        (0u64..4000, 0u32..4, 0u64..4000, 0u32..4, 0u32..3),
    )
        .prop_map(|(version, priority, preempt, delay_ms, answer, garp)| {
            let (garp_delay, garp_repeat, refresh, refresh_repeat, lower) = garp;
            InstanceConfig {
                name: "fuzz".into(),
                vrid: 51,
                priority,
                version,
                advert_int: match version {
                    Version::V2 => Duration::from_secs(1),
                    Version::V3 => Duration::from_millis(100),
                },
                preempt,
                preempt_delay: Duration::from_millis(delay_ms),
                accept_mode: false,
                vips: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100))],
                primary_addr: LOCAL,
                auth: match version {
                    Version::V2 => Auth::simple(b"pw"),
                    Version::V3 => Auth::None,
                },
                garp_master_delay: Duration::from_millis(garp_delay),
                garp_master_repeat: garp_repeat,
                garp_master_refresh: Duration::from_millis(refresh),
                garp_master_refresh_repeat: refresh_repeat,
                garp_lower_prio_repeat: lower,
                higher_prio_send_advert: answer,
                lease_gated: false,
                takeover_gated: false,
            }
        })
}

fn peer_advert(c: &InstanceConfig, priority: u8, src: IpAddr, centis: u16) -> Vec<u8> {
    let repr = Repr {
        version: c.version,
        vrid: c.vrid,
        priority,
        advert_int: match c.version {
            Version::V2 => c.advert_int,
            Version::V3 => Duration::from_millis(u64::from(centis) * 10),
        },
        auth: c.auth,
        addresses: Addresses::from_ips(Family::V4, &c.vips),
    };
    let mut buf = vec![0; MAX_LEN];
    let len = repr.emit(&mut buf, src, GROUP).unwrap();
    buf.truncate(len);
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn state_machine_invariants(
        config in instance_config(),
        inputs in proptest::collection::vec(input(), 1..80),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut inst = Instance::new(config.clone());
        let mut state = State::Initialize;
        let mut vips_held = false;
        let mut sends = 0u64;
        let mut buf = [0u8; MAX_LEN];

        for input in inputs {
            let before = inst.counters().clone();
            let mut timed_out = false;
            match input {
                Input::Advance(ms) => now += Duration::from_millis(ms),
                Input::Timeout => {
                    if let Some(t) = inst.poll_timeout() {
                        now = now.max(t);
                    }
                    inst.handle_timeout(now);
                    timed_out = true;
                }
                Input::Advert { priority, src_octet, centis } => {
                    let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, src_octet));
                    let bytes = peer_advert(&config, priority, src, centis);
                    prop_assert_eq!(inst.handle_packet(now, src, GROUP, 255, &bytes), Ok(()));
                }
                Input::Garbage(bytes, ttl) => {
                    let _ = inst.handle_packet(now, LOCAL, GROUP, ttl, &bytes);
                }
                Input::Mutated { priority, mutation } => {
                    let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
                    let mut bytes = peer_advert(&config, priority, src, 10);
                    apply(&mut bytes, &mutation);
                    let result = inst.handle_packet(now, src, GROUP, 255, &bytes);
                    if result.is_err() {
                        // A drop changes nothing but its counter.
                        prop_assert_eq!(inst.state(), state);
                        prop_assert_eq!(inst.counters().dropped(), before.dropped() + 1);
                        prop_assert_eq!(inst.counters().adverts_received, before.adverts_received);
                    }
                }
                Input::Fault(f) => inst.set_fault(now, f),
                Input::SetPriority(p) => inst.set_priority(now, p),
                Input::Startup => inst.startup(now),
                Input::Shutdown => inst.shutdown(now),
            }

            while let Some(action) = inst.poll_action() {
                match action {
                    Action::AddVips => {
                        prop_assert!(!vips_held, "AddVips twice");
                        vips_held = true;
                    }
                    Action::RemoveVips => {
                        prop_assert!(vips_held, "RemoveVips without AddVips");
                        vips_held = false;
                    }
                    Action::Transition { from, to } => {
                        prop_assert_eq!(from, state);
                        prop_assert_ne!(from, to);
                        state = to;
                    }
                    Action::SendAdvert { priority } => {
                        sends += 1;
                        if priority == 0 {
                            // Only when giving up Master; the Transition follows.
                            prop_assert_eq!(state, State::Master);
                        } else {
                            prop_assert_eq!(priority, inst.priority());
                        }
                        prop_assert!(inst.encode_advert(priority, LOCAL, GROUP, &mut buf) > 0);
                    }
                    Action::SendGratuitous { repeat } => {
                        prop_assert!(repeat > 0);
                        prop_assert!(vips_held);
                    }
                }
            }

            prop_assert_eq!(inst.state(), state);
            prop_assert_eq!(vips_held, state == State::Master);
            prop_assert_eq!(inst.counters().adverts_sent, sends);
            match state {
                State::Initialize | State::Fault => prop_assert_eq!(inst.poll_timeout(), None),
                State::Backup | State::Master => prop_assert!(inst.poll_timeout().is_some()),
            }
            if timed_out {
                // Every due timer fired and was re-armed in the future or cancelled.
                prop_assert!(inst.poll_timeout().is_none_or(|t| t > now));
            }
            if state == State::Master {
                prop_assert_eq!(inst.master_addr(), Some(LOCAL));
            }
        }
    }
}
