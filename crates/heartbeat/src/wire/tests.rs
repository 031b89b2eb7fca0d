use super::*;
use proptest::prelude::*;

fn mac() -> HmacSha256 {
    keyed_mac(b"cluster-key")
}

fn sample_echoes() -> Vec<EchoRepr<'static>> {
    vec![
        EchoRepr {
            node: b"lb2",
            incarnation: 0x1122_3344_5566_7788,
            seq: 41,
            hold_us: 1500,
        },
        EchoRepr {
            node: b"arb",
            incarnation: 7,
            seq: u64::MAX,
            hold_us: u32::MAX,
        },
    ]
}

fn sample(echoes: &[EchoRepr<'static>]) -> Vec<u8> {
    let echoes: &'static [EchoRepr<'static>] = Box::leak(echoes.to_vec().into_boxed_slice());
    Repr {
        flags: 0,
        channel: 2,
        cluster: "edge",
        node: "lb1",
        incarnation: 0x0102_0304_0506_0708,
        seq: 42,
        timestamp_us: 123_456,
        echoes: Echoes::List(echoes),
        held: None,
    }
    .encode(&mac())
    .unwrap()
}

#[test]
fn layout_matches_the_table() {
    let bytes = sample(&sample_echoes()[..1]);
    // Header.
    assert_eq!(&bytes[0..4], b"TNHB");
    assert_eq!(bytes[4], 1, "version");
    assert_eq!(bytes[5], 0, "flags");
    assert_eq!(bytes[6], 2, "channel");
    assert_eq!(bytes[7], 4, "cluster len");
    assert_eq!(bytes[8], 3, "node len");
    assert_eq!(bytes[9], 1, "echo count");
    assert_eq!(&bytes[10..18], &[1, 2, 3, 4, 5, 6, 7, 8], "incarnation");
    assert_eq!(&bytes[18..26], &42u64.to_be_bytes(), "seq");
    assert_eq!(&bytes[26..34], &123_456u64.to_be_bytes(), "timestamp");
    assert_eq!(&bytes[34..38], b"edge");
    assert_eq!(&bytes[38..41], b"lb1");
    // Echo entry.
    assert_eq!(bytes[41], 3);
    assert_eq!(&bytes[42..45], b"lb2");
    assert_eq!(&bytes[45..53], &0x1122_3344_5566_7788u64.to_be_bytes());
    assert_eq!(&bytes[53..61], &41u64.to_be_bytes());
    assert_eq!(&bytes[61..65], &1500u32.to_be_bytes());
    // Tag over everything before it.
    assert_eq!(bytes.len(), 65 + TAG_LEN);
    let mut m = mac();
    m.update(&bytes[..65]);
    assert_eq!(&bytes[65..], &m.finalize().into_bytes()[..]);
}

#[test]
fn round_trip() {
    let echoes = sample_echoes();
    let bytes = sample(&echoes);
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert!(packet.verify(&mac()));
    let repr = Repr::parse(&packet).unwrap();
    assert_eq!(repr.cluster, "edge");
    assert_eq!(repr.node, "lb1");
    assert_eq!(repr.channel, 2);
    assert_eq!(repr.seq, 42);
    assert_eq!(repr.incarnation, 0x0102_0304_0506_0708);
    assert_eq!(repr.timestamp_us, 123_456);
    assert!(!repr.leaving());
    assert_eq!(repr.echoes.iter().collect::<Vec<_>>(), echoes);
    assert_eq!(repr.echoes, Echoes::List(&echoes));
    assert_eq!(repr.buffer_len(), bytes.len());
    // Re-emitting the parsed form gives the same bytes.
    assert_eq!(repr.encode(&mac()).unwrap(), bytes);
}

/// The shortest frame: one-letter names, no echoes, no held list, sequence 1.
fn minimal() -> Repr<'static> {
    Repr {
        flags: 0,
        channel: 0,
        cluster: "c",
        node: "n",
        incarnation: 1,
        seq: 1,
        timestamp_us: 0,
        echoes: Echoes::List(&[]),
        held: None,
    }
}

#[test]
fn leaving_flag() {
    let repr = Repr {
        flags: FLAG_LEAVING,
        ..minimal()
    };
    let bytes = repr.encode(&mac()).unwrap();
    assert_eq!(bytes.len(), MIN_FRAME_LEN);
    let p = Packet::new_checked(&bytes[..]).unwrap();
    assert!(p.leaving());
    assert!(p.held().is_none());
    assert_eq!(Repr::parse(&p).unwrap(), repr);
}

#[test]
fn held_list_round_trips_beside_echoes_and_leaving() {
    let ids = [held_id("VI_1"), held_id("VI_2"), 7];
    for (flags, held) in [
        (0, Some(&ids[..])),
        (FLAG_LEAVING, Some(&ids[..])),
        (0, Some(&[][..])),
        (0, None),
    ] {
        let echoes = sample_echoes();
        let repr = Repr {
            flags,
            channel: 2,
            cluster: "c",
            node: "n",
            incarnation: 1,
            seq: 1,
            timestamp_us: 0,
            echoes: Echoes::List(&echoes),
            held: held.map(HeldIds::List),
        };
        let bytes = repr.encode(&mac()).unwrap();
        assert_eq!(bytes.len(), repr.buffer_len());
        assert_eq!(bytes[5] & FLAG_HELD != 0, held.is_some());
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert!(p.verify(&mac()));
        assert_eq!(p.leaving(), flags & FLAG_LEAVING != 0);
        assert_eq!(p.echoes().count(), echoes.len());
        assert_eq!(
            p.held().map(|h| h.iter().collect::<Vec<_>>()),
            held.map(<[u32]>::to_vec)
        );
        assert_eq!(Repr::parse(&p).unwrap(), repr);
    }
    // Names, not VRIDs: distinct names give distinct ids, and the id is stable.
    assert_ne!(held_id("VI_1"), held_id("VI_2"));
    assert_eq!(held_id("VI_1"), held_id("VI_1"));
    // FLAG_HELD given by hand without a list is not what gets sent.
    let repr = Repr {
        flags: FLAG_HELD,
        ..minimal()
    };
    assert_eq!(repr.encode(&mac()).unwrap()[5], 0);
    let many = vec![1u32; MAX_HELD + 1];
    assert_eq!(
        Repr {
            held: Some(HeldIds::List(&many)),
            ..repr
        }
        .encode(&mac()),
        Err(EmitError::TooManyHeld)
    );
    // A full list fits beside a pair's two echo entries (the peer's incarnation and a
    // candidate one) with the longest names.
    let long = "x".repeat(MAX_NAME_LEN);
    let echo = [
        EchoRepr {
            node: long.as_bytes(),
            incarnation: 1,
            seq: 1,
            hold_us: 0,
        },
        EchoRepr {
            node: long.as_bytes(),
            incarnation: 2,
            seq: 1,
            hold_us: 0,
        },
    ];
    let full = vec![3u32; MAX_HELD];
    let r = Repr {
        cluster: &long,
        node: &long,
        echoes: Echoes::List(&echo),
        held: Some(HeldIds::List(&full)),
        ..repr
    };
    assert!(r.buffer_len() <= MAX_FRAME_LEN);
    assert!(r.encode(&mac()).is_ok());
}

#[test]
fn held_list_length_is_checked() {
    let repr = Repr {
        held: Some(HeldIds::List(&[1, 2])),
        ..minimal()
    };
    let bytes = repr.encode(&mac()).unwrap();
    // The count says more ids than the frame has, or fewer: malformed either way.
    let at = bytes.len() - TAG_LEN - 9;
    for count in [3u8, 1, 255] {
        let mut b = bytes.clone();
        b[at] = count;
        assert!(Packet::new_checked(&b[..]).is_err(), "count {count}");
    }
    // The flag cleared: the list's bytes are trailing garbage.
    let mut b = bytes.clone();
    b[5] = 0;
    assert_eq!(
        Packet::new_checked(&b[..]).err(),
        Some(DecodeError::TooLong)
    );
    // The next flag bit up is still unknown.
    let mut b = bytes;
    b[5] |= 0x04;
    assert_eq!(
        Packet::new_checked(&b[..]).err(),
        Some(DecodeError::BadFlags)
    );
}

#[test]
fn wrong_key_or_any_flipped_bit_fails_authentication() {
    let bytes = sample(&sample_echoes());
    assert!(!Packet::new_checked(&bytes[..])
        .unwrap()
        .verify(&keyed_mac(b"other-key")));
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            if let Ok(p) = Packet::new_checked(&b[..]) {
                assert!(
                    !p.verify(&mac()),
                    "flip at byte {i} bit {bit:#x} still verifies"
                );
            }
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let bytes = sample(&sample_echoes());
    for len in 0..bytes.len() {
        let err = Packet::new_checked(&bytes[..len]).unwrap_err();
        assert!(matches!(err, DecodeError::Truncated), "len {len}: {err:?}");
    }
}

#[test]
fn structural_errors() {
    let good = sample(&sample_echoes());
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        Packet::new_checked(&b[..]).map(|_| ()).unwrap_err()
    };
    assert_eq!(with(&|b| b[0] = b'X'), DecodeError::BadMagic);
    assert_eq!(with(&|b| b[4] = 2), DecodeError::BadVersion);
    assert_eq!(with(&|b| b[5] = 0x04), DecodeError::BadFlags);
    assert_eq!(with(&|b| b[7] = 0), DecodeError::BadNameLength);
    assert_eq!(with(&|b| b[8] = 65), DecodeError::BadNameLength);
    assert_eq!(
        with(&|b| b[9] = MAX_ECHOES as u8 + 1),
        DecodeError::TooManyEchoes
    );
    assert_eq!(with(&|b| b.push(0)), DecodeError::TooLong);
    assert_eq!(with(&|b| b[18..26].fill(0)), DecodeError::ZeroSequence);
    // An echo name length of zero.
    assert_eq!(with(&|b| b[41] = 0), DecodeError::BadNameLength);
    // Fewer echoes than the bytes hold: trailing bytes.
    assert_eq!(with(&|b| b[9] = 1), DecodeError::TooLong);
    // Non-UTF-8 names pass the structural check but not Repr::parse.
    let mut b = good.clone();
    b[38] = 0xff;
    let p = Packet::new_checked(&b[..]).unwrap();
    assert_eq!(Repr::parse(&p).unwrap_err(), DecodeError::BadUtf8);
}

#[test]
fn emit_refuses_what_it_cannot_encode() {
    let base = Repr { ..minimal() };
    assert_eq!(
        Repr { seq: 0, ..base }.encode(&mac()),
        Err(EmitError::ZeroSequence)
    );
    assert_eq!(
        Repr { node: "", ..base }.encode(&mac()),
        Err(EmitError::BadNameLength)
    );
    let long = "x".repeat(65);
    assert_eq!(
        Repr {
            cluster: &long,
            ..base
        }
        .encode(&mac()),
        Err(EmitError::BadNameLength)
    );
    assert_eq!(
        Repr {
            flags: 0x80,
            ..base
        }
        .encode(&mac()),
        Err(EmitError::BadFlags)
    );
    let many = vec![
        EchoRepr {
            node: b"p",
            incarnation: 1,
            seq: 1,
            hold_us: 0
        };
        MAX_ECHOES + 1
    ];
    assert_eq!(
        Repr {
            echoes: Echoes::List(&many),
            held: None,
            ..base
        }
        .encode(&mac()),
        Err(EmitError::TooManyEchoes)
    );
    let name = [b'y'; 64];
    let big = vec![
        EchoRepr {
            node: &name,
            incarnation: 1,
            seq: 1,
            hold_us: 0
        };
        MAX_ECHOES
    ];
    assert_eq!(
        Repr {
            echoes: Echoes::List(&big),
            held: None,
            ..base
        }
        .encode(&mac()),
        Err(EmitError::TooLong)
    );
    let mut small = [0u8; 10];
    assert_eq!(
        base.emit(&mut small, &mac()),
        Err(EmitError::BufferTooSmall)
    );
}

fn name_strategy() -> impl Strategy<Value = String> {
    // 1..=64 bytes of UTF-8 (multi-byte characters included), trimmed to fit.
    "[a-zA-Z0-9é€-]{1,40}".prop_map(|s| {
        let mut s = s;
        while s.len() > MAX_NAME_LEN {
            s.pop();
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        if let Ok(p) = Packet::new_checked(&bytes[..]) {
            let _ = p.verify(&mac());
            let _ = p.echoes().count();
            let _ = Repr::parse(&p);
        }
    }

    #[test]
    fn decode_never_panics_on_mutated_frames(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut bytes = sample(&sample_echoes());
        for (at, value) in edits {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        let cut = cut % (bytes.len() + 1);
        bytes.truncate(cut);
        if let Ok(p) = Packet::new_checked(&bytes[..]) {
            let _ = p.verify(&mac());
            let _ = p.echoes().count();
            let _ = Repr::parse(&p);
        }
    }

    #[test]
    fn encode_decode_round_trip(
        cluster in name_strategy(),
        node in name_strategy(),
        channel in any::<u8>(),
        leaving in any::<bool>(),
        incarnation in any::<u64>(),
        seq in 1..u64::MAX,
        timestamp_us in any::<u64>(),
        echo_fields in proptest::collection::vec((name_strategy(), any::<u64>(), any::<u64>(), any::<u32>()), 0..8),
        held in proptest::option::of(proptest::collection::vec(any::<u32>(), 0..40)),
    ) {
        let echoes: Vec<EchoRepr<'_>> = echo_fields
            .iter()
            .map(|(n, i, s, h)| EchoRepr { node: n.as_bytes(), incarnation: *i, seq: *s, hold_us: *h })
            .collect();
        let repr = Repr {
            flags: if leaving { FLAG_LEAVING } else { 0 },
            channel,
            cluster: &cluster,
            node: &node,
            incarnation,
            seq,
            timestamp_us,
            echoes: Echoes::List(&echoes),
            held: held.as_deref().map(HeldIds::List),
        };
        let bytes = repr.encode(&mac()).unwrap();
        prop_assert_eq!(bytes.len(), repr.buffer_len());
        prop_assert_eq!(bytes[5] & FLAG_HELD != 0, held.is_some());
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        prop_assert!(packet.verify(&mac()));
        prop_assert_eq!(Repr::parse(&packet).unwrap(), repr);
    }
}
