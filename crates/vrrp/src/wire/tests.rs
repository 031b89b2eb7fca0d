//! Codec tests on adverts captured from keepalived 2.2.7 (Debian 12) in a network namespace:
//! one node on a veth, 10.0.0.1/24, link-local fe80::ff:fe00:1, `tcpdump -w` on the
//! interface. The IPv6 checksums were filled in by the kernel (IPV6_CHECKSUM), so they are an
//! independent known answer for the pseudo-header sum.

use super::*;

const V4_SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const V4_GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
const V6_SRC: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1));
const V6_GROUP: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

/// `vrrp_instance { virtual_router_id 51 priority 150 advert_int 1
///  authentication { auth_type PASS auth_pass secret }
///  virtual_ipaddress { 192.168.1.100/24 192.168.1.101/24 } }`, 10.0.0.1 > 224.0.0.18.
const KA_V2_PASS: [u8; 24] = [
    0x21, 0x33, 0x96, 0x02, 0x01, 0x01, 0x87,
    0x62, // ver 2 type 1, vrid 51, prio 150, 2 addrs, PASS, 1 s, csum
    0xc0, 0xa8, 0x01, 0x64, 0xc0, 0xa8, 0x01, 0x65, // 192.168.1.100, 192.168.1.101
    b's', b'e', b'c', b'r', b'e', b't', 0x00, 0x00, // auth data
];

/// The same instance on SIGTERM: priority 0.
const KA_V2_PASS_PRIO0: [u8; 24] = [
    0x21, 0x33, 0x00, 0x02, 0x01, 0x01, 0x1d, 0x63, //
    0xc0, 0xa8, 0x01, 0x64, 0xc0, 0xa8, 0x01, 0x65, //
    b's', b'e', b'c', b'r', b'e', b't', 0x00, 0x00,
];

/// `vrrp_version 3`, vrid 51, priority 200, advert_int 0.1, VIP 192.168.1.100.
const KA_V3_V4: [u8; 12] = [
    0x31, 0x33, 0xc8, 0x01, 0x00, 0x0a, 0x5a,
    0x24, // ver 3, vrid 51, prio 200, 1 addr, 10 cs, csum
    0xc0, 0xa8, 0x01, 0x64,
];

const KA_V3_V4_PRIO0: [u8; 12] = [
    0x31, 0x33, 0x00, 0x01, 0x00, 0x0a, 0x22, 0x25, 0xc0, 0xa8, 0x01, 0x64,
];

/// IPv6 instance, vrid 52, priority 100, advert_int 1, VIPs fd00::100 and fd00::101,
/// fe80::ff:fe00:1 > ff02::12.
const KA_V3_V6: [u8; 40] = [
    0x31, 0x34, 0x64, 0x02, 0x00, 0x64, 0x71,
    0x33, // ver 3, vrid 52, prio 100, 2 addrs, 100 cs
    0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, // fd00::100
    0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, // fd00::101
];

const KA_V3_V6_PRIO0_CSUM: u16 = 0xd533;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(segments: [u16; 8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(segments))
}

/// Recomputes the checksum after a test edits a field, so that the edit alone is tested.
fn refill(buf: &mut [u8], family: Family, src: IpAddr, dst: IpAddr) {
    Packet::new_unchecked(buf, family).fill_checksum(src, dst);
}

// ---- parsing captured adverts ----

#[test]
fn packet_accessors_on_keepalived_v2() {
    let packet = Packet::new_checked(&KA_V2_PASS[..], Family::V4).unwrap();
    assert_eq!(packet.version(), 2);
    assert_eq!(packet.msg_type(), 1);
    assert_eq!(packet.vrid(), 51);
    assert_eq!(packet.priority(), 150);
    assert_eq!(packet.addr_count(), 2);
    assert_eq!(packet.auth_type(), 1);
    assert_eq!(packet.adver_int_secs(), 1);
    assert_eq!(packet.checksum(), 0x8762);
    assert_eq!(packet.addresses(), &KA_V2_PASS[8..16]);
    assert_eq!(packet.auth_data(), b"secret\0\0");
    assert_eq!(packet.message_len(), 24);
    assert!(packet.verify_checksum(V4_SRC, V4_GROUP));
}

#[test]
fn parse_keepalived_v2_pass() {
    let repr = parse(&KA_V2_PASS, Family::V4, V4_SRC, V4_GROUP).unwrap();
    assert_eq!(repr.version, Version::V2);
    assert_eq!(repr.vrid, 51);
    assert_eq!(repr.priority, 150);
    assert_eq!(repr.advert_int, Duration::from_secs(1));
    assert_eq!(repr.auth, Auth::simple(b"secret"));
    assert_eq!(repr.family(), Family::V4);
    let addrs: Vec<IpAddr> = repr.addresses.iter().collect();
    assert_eq!(addrs, [v4(192, 168, 1, 100), v4(192, 168, 1, 101)]);
    assert_eq!(repr.addresses.len(), 2);
    assert_eq!(repr.buffer_len(), KA_V2_PASS.len());
    repr.check_vrid(51).unwrap();
    repr.check_auth(&Auth::simple(b"secret")).unwrap();
}

#[test]
fn v2_checksum_ignores_ip_addresses() {
    // RFC 3768 §5.3.8: the v2 checksum covers the VRRP message only.
    let other = v4(192, 0, 2, 7);
    parse(&KA_V2_PASS, Family::V4, other, other).unwrap();
}

#[test]
fn parse_keepalived_v2_priority_zero() {
    let repr = parse(&KA_V2_PASS_PRIO0, Family::V4, V4_SRC, V4_GROUP).unwrap();
    assert_eq!(repr.priority, 0);
    assert_eq!(repr.auth, Auth::simple(b"secret"));
}

#[test]
fn parse_keepalived_v3_ipv4() {
    let packet = Packet::new_checked(&KA_V3_V4[..], Family::V4).unwrap();
    assert_eq!(packet.max_adver_int_centis(), 10);
    assert_eq!(packet.reserved(), 0);
    assert!(packet.auth_data().is_empty());
    let repr = Repr::parse(&packet, V4_SRC, V4_GROUP).unwrap();
    assert_eq!(repr.version, Version::V3);
    assert_eq!(repr.vrid, 51);
    assert_eq!(repr.priority, 200);
    assert_eq!(repr.advert_int, Duration::from_millis(100));
    assert_eq!(repr.auth, Auth::None);
    assert_eq!(
        repr.addresses.iter().collect::<Vec<_>>(),
        [v4(192, 168, 1, 100)]
    );

    let prio0 = parse(&KA_V3_V4_PRIO0, Family::V4, V4_SRC, V4_GROUP).unwrap();
    assert_eq!(prio0.priority, 0);
}

#[test]
fn parse_keepalived_v3_ipv6() {
    let repr = parse(&KA_V3_V6, Family::V6, V6_SRC, V6_GROUP).unwrap();
    assert_eq!(repr.version, Version::V3);
    assert_eq!(repr.vrid, 52);
    assert_eq!(repr.priority, 100);
    assert_eq!(repr.advert_int, Duration::from_secs(1));
    assert_eq!(repr.family(), Family::V6);
    assert_eq!(
        repr.addresses.iter().collect::<Vec<_>>(),
        [
            v6([0xfd00, 0, 0, 0, 0, 0, 0, 0x100]),
            v6([0xfd00, 0, 0, 0, 0, 0, 0, 0x101])
        ]
    );
}

#[test]
fn v3_checksum_covers_pseudo_header() {
    // Same bytes, another destination (a unicast peer): the pseudo-header differs.
    assert_eq!(
        parse(&KA_V3_V4, Family::V4, V4_SRC, v4(10, 0, 0, 2)),
        Err(DecodeError::BadChecksum)
    );
    assert_eq!(
        parse(
            &KA_V3_V6,
            Family::V6,
            v6([0xfe80, 0, 0, 0, 0, 0, 0, 2]),
            V6_GROUP
        ),
        Err(DecodeError::BadChecksum)
    );
}

#[test]
fn v3_reserved_bits_ignored_on_receipt() {
    // RFC 5798 §5.2.6: reserved bits "MUST be ignored on receipt".
    let mut buf = KA_V3_V4;
    buf[4] |= 0xf0;
    refill(&mut buf, Family::V4, V4_SRC, V4_GROUP);
    let repr = parse(&buf, Family::V4, V4_SRC, V4_GROUP).unwrap();
    assert_eq!(repr.advert_int, Duration::from_millis(100));
}

#[test]
fn v2_auth_none_ignores_auth_data() {
    // RFC 3768 §5.3.10: with no authentication the data is ignored on receipt.
    let mut buf = KA_V2_PASS;
    buf[4] = 0;
    refill(&mut buf, Family::V4, V4_SRC, V4_GROUP);
    let repr = parse(&buf, Family::V4, V4_SRC, V4_GROUP).unwrap();
    assert_eq!(repr.auth, Auth::None);
}

// ---- checksum known answers ----

#[test]
fn checksum_rfc1071_example() {
    // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
    let sum = checksum::data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    assert_eq!(sum, 0xddf2);
    assert_eq!(!sum, 0x220d);
}

#[test]
fn checksum_odd_length_pads_with_zero() {
    assert_eq!(checksum::data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    assert_eq!(checksum::data(&[]), 0);
}

#[test]
fn checksum_matches_keepalived_and_kernel() {
    for (bytes, family, src, dst, expected) in [
        (&KA_V2_PASS[..], Family::V4, V4_SRC, V4_GROUP, 0x8762),
        (&KA_V2_PASS_PRIO0[..], Family::V4, V4_SRC, V4_GROUP, 0x1d63),
        (&KA_V3_V4[..], Family::V4, V4_SRC, V4_GROUP, 0x5a24),
        (&KA_V3_V4_PRIO0[..], Family::V4, V4_SRC, V4_GROUP, 0x2225),
        (&KA_V3_V6[..], Family::V6, V6_SRC, V6_GROUP, 0x7133),
    ] {
        let mut buf = bytes.to_vec();
        buf[6] = 0xaa;
        buf[7] = 0x55;
        let mut packet = Packet::new_checked(&mut buf[..], family).unwrap();
        packet.fill_checksum(src, dst);
        assert_eq!(packet.checksum(), expected);
        assert_eq!(buf, bytes);
    }
    let mut prio0 = KA_V3_V6;
    prio0[2] = 0;
    refill(&mut prio0, Family::V6, V6_SRC, V6_GROUP);
    assert_eq!(
        u16::from_be_bytes([prio0[6], prio0[7]]),
        KA_V3_V6_PRIO0_CSUM
    );
}

// ---- emitting ----

#[test]
fn emit_reproduces_keepalived_v2() {
    let vips = [v4(192, 168, 1, 100), v4(192, 168, 1, 101)];
    let repr = Repr {
        version: Version::V2,
        vrid: 51,
        priority: 150,
        advert_int: Duration::from_secs(1),
        auth: Auth::simple(b"secret"),
        addresses: Addresses::from_ips(Family::V4, &vips),
    };
    let mut buf = [0xffu8; 64];
    let len = repr.emit(&mut buf, V4_SRC, V4_GROUP).unwrap();
    assert_eq!(len, 24);
    assert_eq!(&buf[..len], &KA_V2_PASS);
    assert!(
        buf[len..].iter().all(|&b| b == 0xff),
        "wrote past the message"
    );

    let prio0 = Repr {
        priority: 0,
        ..repr
    };
    let len = prio0.emit(&mut buf, V4_SRC, V4_GROUP).unwrap();
    assert_eq!(&buf[..len], &KA_V2_PASS_PRIO0);
}

#[test]
fn emit_reproduces_keepalived_v3() {
    let vips = [v4(192, 168, 1, 100)];
    let repr = Repr {
        version: Version::V3,
        vrid: 51,
        priority: 200,
        advert_int: Duration::from_millis(100),
        auth: Auth::None,
        addresses: Addresses::from_ips(Family::V4, &vips),
    };
    let mut buf = [0u8; 12];
    assert_eq!(repr.emit(&mut buf, V4_SRC, V4_GROUP), Ok(12));
    assert_eq!(buf, KA_V3_V4);

    let vips6 = [
        v6([0xfd00, 0, 0, 0, 0, 0, 0, 0x100]),
        v6([0xfd00, 0, 0, 0, 0, 0, 0, 0x101]),
    ];
    let repr6 = Repr {
        vrid: 52,
        priority: 100,
        advert_int: Duration::from_secs(1),
        addresses: Addresses::from_ips(Family::V6, &vips6),
        ..repr
    };
    let mut buf6 = [0u8; MAX_LEN];
    let len = repr6.emit(&mut buf6, V6_SRC, V6_GROUP).unwrap();
    assert_eq!(&buf6[..len], &KA_V3_V6);
}

#[test]
fn emit_errors_leave_buffer_untouched() {
    let vips = [v4(192, 168, 1, 100)];
    let vips6 = [v6([0xfd00, 0, 0, 0, 0, 0, 0, 1])];
    let mixed = [v4(192, 168, 1, 100), v6([0xfd00, 0, 0, 0, 0, 0, 0, 1])];
    let many = [v4(192, 168, 1, 100); 256];
    let base = Repr {
        version: Version::V3,
        vrid: 1,
        priority: 100,
        advert_int: Duration::from_secs(1),
        auth: Auth::None,
        addresses: Addresses::from_ips(Family::V4, &vips),
    };
    let cases = [
        (
            Repr {
                version: Version::V2,
                addresses: Addresses::from_ips(Family::V6, &vips6),
                ..base
            },
            EmitError::FamilyMismatch,
        ),
        (
            Repr {
                addresses: Addresses::from_ips(Family::V4, &mixed),
                ..base
            },
            EmitError::FamilyMismatch,
        ),
        (
            Repr {
                addresses: Addresses::from_ips(Family::V6, &vips),
                ..base
            },
            EmitError::FamilyMismatch,
        ),
        (
            Repr {
                addresses: Addresses::from_ips(Family::V4, &many),
                ..base
            },
            EmitError::TooManyAddresses,
        ),
        (
            Repr {
                advert_int: Duration::ZERO,
                ..base
            },
            EmitError::BadAdvertInterval,
        ),
        (
            Repr {
                advert_int: Duration::from_millis(15),
                ..base
            },
            EmitError::BadAdvertInterval,
        ),
        (
            Repr {
                advert_int: Duration::from_millis(40_960),
                ..base
            },
            EmitError::BadAdvertInterval,
        ),
        (
            Repr {
                version: Version::V2,
                advert_int: Duration::from_millis(1500),
                ..base
            },
            EmitError::BadAdvertInterval,
        ),
        (
            Repr {
                version: Version::V2,
                advert_int: Duration::from_secs(256),
                ..base
            },
            EmitError::BadAdvertInterval,
        ),
        (
            Repr {
                auth: Auth::simple(b"pw"),
                ..base
            },
            EmitError::AuthNotSupported,
        ),
    ];
    for (repr, err) in cases {
        let mut buf = [0x5au8; MAX_LEN + 16];
        assert_eq!(repr.emit(&mut buf, V4_SRC, V4_GROUP), Err(err), "{repr:?}");
        assert!(buf.iter().all(|&b| b == 0x5a));
    }
    let mut short = [0x5au8; 11];
    assert_eq!(
        base.emit(&mut short, V4_SRC, V4_GROUP),
        Err(EmitError::BufferTooSmall)
    );
    assert!(short.iter().all(|&b| b == 0x5a));
}

#[test]
fn interval_field_limits() {
    assert_eq!(v2_interval_secs(Duration::from_secs(1)), Ok(1));
    assert_eq!(v2_interval_secs(Duration::from_secs(255)), Ok(255));
    assert_eq!(v3_interval_centis(Duration::from_millis(10)), Ok(1));
    assert_eq!(v3_interval_centis(Duration::from_millis(40_950)), Ok(4095));
    assert!(v3_interval_centis(Duration::from_nanos(10_000_001)).is_err());
}

#[test]
fn auth_simple_pads_and_truncates() {
    assert_eq!(Auth::simple(b"secret"), Auth::Simple(*b"secret\0\0"));
    assert_eq!(Auth::simple(b"0123456789"), Auth::Simple(*b"01234567"));
    assert_eq!(Auth::None.data(), [0; 8]);
}

// ---- one test per error ----

#[test]
fn error_truncated() {
    assert_eq!(
        parse(&[], Family::V4, V4_SRC, V4_GROUP),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        parse(&KA_V3_V4[..7], Family::V4, V4_SRC, V4_GROUP),
        Err(DecodeError::Truncated)
    );
    // Every cut of a complete advert is short of what its count field promises.
    for cut in 0..KA_V2_PASS.len() {
        assert_eq!(
            parse(&KA_V2_PASS[..cut], Family::V4, V4_SRC, V4_GROUP),
            Err(DecodeError::Truncated),
            "cut at {cut}"
        );
    }
    for cut in 0..KA_V3_V6.len() {
        assert_eq!(
            parse(&KA_V3_V6[..cut], Family::V6, V6_SRC, V6_GROUP),
            Err(DecodeError::Truncated)
        );
    }
    // v2 without its 8 bytes of authentication data.
    let no_auth = &KA_V2_PASS[..16];
    assert_eq!(
        parse(no_auth, Family::V4, V4_SRC, V4_GROUP),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn error_bad_version() {
    for version_type in [0x01, 0x11, 0x41, 0xf1] {
        let mut buf = KA_V3_V4;
        buf[0] = version_type;
        assert_eq!(
            parse(&buf, Family::V4, V4_SRC, V4_GROUP),
            Err(DecodeError::BadVersion)
        );
    }
    // VRRPv2 does not exist over IPv6.
    let mut buf = KA_V3_V6;
    buf[0] = 0x21;
    assert_eq!(
        parse(&buf, Family::V6, V6_SRC, V6_GROUP),
        Err(DecodeError::BadVersion)
    );
}

#[test]
fn error_bad_type() {
    for msg_type in [0, 2, 15] {
        let mut buf = KA_V2_PASS;
        buf[0] = 0x20 | msg_type;
        refill(&mut buf, Family::V4, V4_SRC, V4_GROUP);
        assert_eq!(
            parse(&buf, Family::V4, V4_SRC, V4_GROUP),
            Err(DecodeError::BadType)
        );
    }
}

#[test]
fn error_bad_checksum() {
    let mut buf = KA_V2_PASS;
    buf[2] = 151;
    assert_eq!(
        parse(&buf, Family::V4, V4_SRC, V4_GROUP),
        Err(DecodeError::BadChecksum)
    );
    // The v2 checksum covers the authentication data too.
    let mut buf = KA_V2_PASS;
    buf[23] = 1;
    assert_eq!(
        parse(&buf, Family::V4, V4_SRC, V4_GROUP),
        Err(DecodeError::BadChecksum)
    );
    let mut buf = KA_V3_V6;
    buf[39] ^= 0x01;
    assert_eq!(
        parse(&buf, Family::V6, V6_SRC, V6_GROUP),
        Err(DecodeError::BadChecksum)
    );
}

#[test]
fn error_address_count_mismatch() {
    // A trailing byte after a complete advert.
    let mut long = KA_V3_V4.to_vec();
    long.push(0);
    assert_eq!(
        parse(&long, Family::V4, V4_SRC, V4_GROUP),
        Err(DecodeError::AddressCountMismatch)
    );
    // Count says 1 but two addresses (and the auth data) follow.
    let mut buf = KA_V2_PASS;
    buf[3] = 1;
    refill(&mut buf[..20], Family::V4, V4_SRC, V4_GROUP);
    assert_eq!(
        parse(&buf, Family::V4, V4_SRC, V4_GROUP),
        Err(DecodeError::AddressCountMismatch)
    );
    // The IPv6 advert read as IPv4 is far longer than 2 × 4 bytes.
    assert_eq!(
        parse(&KA_V3_V6, Family::V4, V6_SRC, V6_GROUP),
        Err(DecodeError::AddressCountMismatch)
    );
}

#[test]
fn error_zero_advert_interval() {
    let mut buf = KA_V2_PASS;
    buf[5] = 0;
    refill(&mut buf, Family::V4, V4_SRC, V4_GROUP);
    assert_eq!(
        parse(&buf, Family::V4, V4_SRC, V4_GROUP),
        Err(DecodeError::ZeroAdvertInterval)
    );

    // Reserved bits set do not make a zero interval non-zero.
    let mut buf = KA_V3_V4;
    buf[4] = 0xf0;
    buf[5] = 0;
    refill(&mut buf, Family::V4, V4_SRC, V4_GROUP);
    assert_eq!(
        parse(&buf, Family::V4, V4_SRC, V4_GROUP),
        Err(DecodeError::ZeroAdvertInterval)
    );
}

#[test]
fn error_auth_mismatch() {
    let repr = parse(&KA_V2_PASS, Family::V4, V4_SRC, V4_GROUP).unwrap();
    assert_eq!(
        repr.check_auth(&Auth::simple(b"Secret")),
        Err(DecodeError::AuthMismatch)
    );
    assert_eq!(repr.check_auth(&Auth::None), Err(DecodeError::AuthMismatch));
    // Type 2 (IP AH) and unknown types are refused outright.
    for auth_type in [2, 3, 255] {
        let mut buf = KA_V2_PASS;
        buf[4] = auth_type;
        refill(&mut buf, Family::V4, V4_SRC, V4_GROUP);
        assert_eq!(
            parse(&buf, Family::V4, V4_SRC, V4_GROUP),
            Err(DecodeError::AuthMismatch)
        );
    }
    // A v3 advert has no authentication to match a password.
    let v3 = parse(&KA_V3_V4, Family::V4, V4_SRC, V4_GROUP).unwrap();
    v3.check_auth(&Auth::None).unwrap();
    assert_eq!(
        v3.check_auth(&Auth::simple(b"secret")),
        Err(DecodeError::AuthMismatch)
    );
}

#[test]
fn error_wrong_vrid() {
    let repr = parse(&KA_V3_V6, Family::V6, V6_SRC, V6_GROUP).unwrap();
    assert_eq!(repr.check_vrid(51), Err(DecodeError::WrongVrid));
    repr.check_vrid(52).unwrap();
}

#[test]
fn peek_vrid_before_validation() {
    assert_eq!(peek_vrid(&KA_V3_V6), Some(52));
    assert_eq!(peek_vrid(&[0x31, 7]), Some(7));
    assert_eq!(peek_vrid(&[0x31]), None);
}

#[test]
fn max_addresses_round_trip() {
    let vips: Vec<IpAddr> = (0..=254u8)
        .map(|i| v6([0xfd00, 0, 0, 0, 0, 0, 0, u16::from(i)]))
        .collect();
    let repr = Repr {
        version: Version::V3,
        vrid: 255,
        priority: 255,
        advert_int: Duration::from_millis(40_950),
        auth: Auth::None,
        addresses: Addresses::from_ips(Family::V6, &vips),
    };
    assert_eq!(repr.buffer_len(), MAX_LEN);
    let mut buf = [0u8; MAX_LEN];
    repr.emit(&mut buf, V6_SRC, V6_GROUP).unwrap();
    assert_eq!(parse(&buf, Family::V6, V6_SRC, V6_GROUP), Ok(repr));
}
