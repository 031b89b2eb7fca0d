//! Heartbeat frame codec, smoltcp style.
//!
//! Two layers, as in smoltcp's `src/wire/*.rs` and `tandem-vrrp`'s codec:
//!
//! * [`Packet`] is a zero-copy view over a buffer. [`Packet::new_checked`] walks every length
//!   field once; after it succeeds every accessor is panic-free.
//! * [`Repr`] is the meaning of one frame. [`Repr::parse`] borrows names and the echo list
//!   from the buffer (no allocation); [`Repr::emit`] writes a frame and its HMAC into a
//!   caller-provided buffer; [`Repr::encode`] does the same into a new `Vec`.
//!
//! # Byte layout (version 1)
//!
//! All integers are big-endian. `C`, `N`, `E` and `L` are the lengths and count read from the
//! header and from each echo entry.
//!
//! | offset | size | field | rules on receipt |
//! |---|---|---|---|
//! | 0 | 4 | magic `"TNHB"` | else malformed |
//! | 4 | 1 | version = 1 | else [`DecodeError::BadVersion`] |
//! | 5 | 1 | flags: bit 0 = LEAVING (sender is shutting down cleanly), bit 1 = HELD (a held list follows the echo entries) | other bits set: malformed |
//! | 6 | 1 | channel id (index of the `[[heartbeat]]` channel, same on every node) | must be the channel it arrived on |
//! | 7 | 1 | `C` = cluster name length | 1 ..= 64 |
//! | 8 | 1 | `N` = sender node name length | 1 ..= 64 |
//! | 9 | 1 | `E` = number of echo entries | 0 ..= 32 |
//! | 10 | 8 | sender incarnation (new on every start of the sender) | |
//! | 18 | 8 | sequence number, per (sender incarnation, channel), first = 1 | 0: malformed |
//! | 26 | 8 | sender timestamp, µs of the sender's monotonic clock since it started | opaque: shown in status, never used for liveness |
//! | 34 | `C` | cluster name, UTF-8 | |
//! | 34+`C` | `N` | sender node name, UTF-8 | |
//! | 34+`C`+`N` | `E` × (21 + `L`) | echo entries, each: | |
//! | +0 | 1 | `L` = echoed node name length | 1 ..= 64 |
//! | +1 | `L` | echoed node name: a node this sender heard on this channel | |
//! | +1+`L` | 8 | incarnation of that node, as this sender heard it | |
//! | +9+`L` | 8 | that node's last sequence number this sender received on this channel | |
//! | +17+`L` | 4 | hold: µs between receiving that frame and building this one (saturating) | |
//! | end − 32 − 1 − 4`H` | 1 | only with HELD: `H` = number of held ids | 0 ..= 255 |
//! | +1 | 4`H` | held ids: the VRRP instances whose VIPs the sender has configured, each [`held_id`] of the instance name | |
//! | end − 32 | 32 | HMAC-SHA256 with the cluster key over every byte before it | else [`DecodeError`]-free, but the caller drops it as unauthenticated |
//!
//! The frame must end exactly after the tag: trailing bytes are malformed, and so is a frame
//! longer than [`MAX_FRAME_LEN`] (which keeps every frame inside one UDP datagram on a
//! 1500-byte MTU, IPv4 or IPv6). Names are compared as bytes; [`Repr::parse`] additionally
//! demands UTF-8.
//!
//! The held list tells a `fence_on_takeover` pair's node which instances its peer is Master
//! of. A node that starts while the peer's adverts do not reach it would otherwise see an
//! empty segment and hold a first election for VIPs the peer still has. It came after the
//! rest of version 1 and a frame without it is unchanged, but a node built before it drops
//! the frames that carry it (unknown flag) and sees the peer down: upgrade both nodes of a
//! pair together.
//!
//! The echo entries give round-trip times without synchronised clocks: the node named in an
//! entry looks up when it sent the echoed sequence number and computes
//! `rtt = now − send_time − hold`, every term on its own monotonic clock or a duration
//! measured on the sender's. They also prove that a frame was built after its sender heard
//! a recent frame of ours, which is how the liveness core tells a live new incarnation from
//! a replayed recording (see [`crate::liveness`]).

use core::fmt;
use core::ops::Range;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256, keyed with the cluster key.
pub type HmacSha256 = Hmac<Sha256>;

/// First four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"TNHB";
/// The version this codec reads and writes.
pub const VERSION: u8 = 1;
/// Fixed header before the cluster name.
pub const HEADER_LEN: usize = 34;
/// HMAC-SHA256 tag at the end of every frame.
pub const TAG_LEN: usize = 32;
/// Longest cluster or node name.
pub const MAX_NAME_LEN: usize = 64;
/// Most echo entries in one frame.
pub const MAX_ECHOES: usize = 32;
/// Echo entry without its name.
pub const ECHO_FIXED_LEN: usize = 1 + 8 + 8 + 4;
/// Longest frame: fits a UDP datagram over IPv6 on a 1500-byte MTU (1500 − 40 − 8 = 1452)
/// with room to spare.
pub const MAX_FRAME_LEN: usize = 1400;
/// Shortest possible frame: header, one-byte names, no echoes, tag.
pub const MIN_FRAME_LEN: usize = HEADER_LEN + 2 + TAG_LEN;

/// Flag bit: the sender is shutting down cleanly; its links may be marked down at once.
pub const FLAG_LEAVING: u8 = 0x01;
/// Flag bit: a held list follows the echo entries (see the module doc).
pub const FLAG_HELD: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_LEAVING | FLAG_HELD;
/// Most ids in a held list (its count is one byte). With a pair's echo entries (at most two:
/// the peer's current and candidate incarnations) and the longest names, a full list still
/// fits [`MAX_FRAME_LEN`].
pub const MAX_HELD: usize = 255;

/// The id that stands for a VRRP instance in a held list: the first four bytes of the
/// SHA-256 of its name. Names, not VRIDs: a pair may run one VRID on two interfaces, and the
/// names are what both nodes' configs share (as in quorum mode, where they name the groups).
/// A list of names would not fit a frame; two names of one pair sharing an id only make one
/// instance's first election wait for its peer.
pub fn held_id(instance: &str) -> u32 {
    use sha2::Digest;
    let d = Sha256::digest(instance.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Byte ranges of the fixed header.
mod field {
    use core::ops::Range;

    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const FLAGS: usize = 5;
    pub const CHANNEL: usize = 6;
    pub const CLUSTER_LEN: usize = 7;
    pub const NODE_LEN: usize = 8;
    pub const ECHO_COUNT: usize = 9;
    pub const INCARNATION: Range<usize> = 10..18;
    pub const SEQ: Range<usize> = 18..26;
    pub const TIMESTAMP: Range<usize> = 26..34;
    pub const NAMES: usize = 34;
}

/// Why a buffer is not a well-formed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// Shorter than its own length fields say.
    Truncated,
    /// Not the heartbeat magic.
    BadMagic,
    /// Magic right, version unknown (e.g. a newer tandem during a rolling upgrade).
    BadVersion,
    /// Unknown flag bits set.
    BadFlags,
    /// A name length of 0 or above [`MAX_NAME_LEN`].
    BadNameLength,
    /// More than [`MAX_ECHOES`] echo entries.
    TooManyEchoes,
    /// Bytes after the tag, or longer than [`MAX_FRAME_LEN`].
    TooLong,
    /// Sequence number 0.
    ZeroSequence,
    /// A name that is not UTF-8 ([`Repr::parse`] only).
    BadUtf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::Truncated => "truncated frame",
            DecodeError::BadMagic => "bad magic",
            DecodeError::BadVersion => "unsupported version",
            DecodeError::BadFlags => "unknown flag bits",
            DecodeError::BadNameLength => "bad name length",
            DecodeError::TooManyEchoes => "too many echo entries",
            DecodeError::TooLong => "trailing bytes or frame too long",
            DecodeError::ZeroSequence => "sequence number 0",
            DecodeError::BadUtf8 => "name is not UTF-8",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Why a [`Repr`] cannot be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmitError {
    /// The buffer is shorter than [`Repr::buffer_len`].
    BufferTooSmall,
    /// A name is empty or longer than [`MAX_NAME_LEN`].
    BadNameLength,
    /// More than [`MAX_ECHOES`] echo entries.
    TooManyEchoes,
    /// The frame would exceed [`MAX_FRAME_LEN`].
    TooLong,
    /// Sequence number 0.
    ZeroSequence,
    /// Unknown flag bits.
    BadFlags,
    /// More than [`MAX_HELD`] held ids.
    TooManyHeld,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmitError::BufferTooSmall => "buffer too small",
            EmitError::BadNameLength => "bad name length",
            EmitError::TooManyEchoes => "too many echo entries",
            EmitError::TooLong => "frame too long",
            EmitError::ZeroSequence => "sequence number 0",
            EmitError::BadFlags => "unknown flag bits",
            EmitError::TooManyHeld => "too many held ids",
        })
    }
}

impl std::error::Error for EmitError {}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn name_len_ok(len: usize) -> bool {
    (1..=MAX_NAME_LEN).contains(&len)
}

/// Zero-copy view of one frame.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking; accessors may panic on a short buffer. Use
    /// [`Packet::new_checked`] on anything received.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap and validate every length field, the magic, the version, the flags and the
    /// sequence number. After this every accessor is panic-free. The tag is **not**
    /// verified here: see [`Packet::verify`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DecodeError> {
        let packet = Packet { buffer };
        packet.check()?;
        Ok(packet)
    }

    fn check(&self) -> Result<(), DecodeError> {
        let b = self.buffer.as_ref();
        if b.len() < field::MAGIC.end {
            return Err(DecodeError::Truncated);
        }
        if b[field::MAGIC] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if b.len() <= field::VERSION {
            return Err(DecodeError::Truncated);
        }
        if b[field::VERSION] != VERSION {
            return Err(DecodeError::BadVersion);
        }
        if b.len() < HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        if b[field::FLAGS] & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::BadFlags);
        }
        let cluster_len = usize::from(b[field::CLUSTER_LEN]);
        let node_len = usize::from(b[field::NODE_LEN]);
        if !name_len_ok(cluster_len) || !name_len_ok(node_len) {
            return Err(DecodeError::BadNameLength);
        }
        let echo_count = usize::from(b[field::ECHO_COUNT]);
        if echo_count > MAX_ECHOES {
            return Err(DecodeError::TooManyEchoes);
        }
        let mut at = field::NAMES + cluster_len + node_len;
        for _ in 0..echo_count {
            let Some(&len) = b.get(at) else {
                return Err(DecodeError::Truncated);
            };
            let len = usize::from(len);
            if !name_len_ok(len) {
                return Err(DecodeError::BadNameLength);
            }
            at += ECHO_FIXED_LEN + len;
        }
        if b[field::FLAGS] & FLAG_HELD != 0 {
            let Some(&count) = b.get(at) else {
                return Err(DecodeError::Truncated);
            };
            at += 1 + 4 * usize::from(count);
        }
        let total = at + TAG_LEN;
        if b.len() < total {
            return Err(DecodeError::Truncated);
        }
        if b.len() > total || total > MAX_FRAME_LEN {
            return Err(DecodeError::TooLong);
        }
        if self.seq() == 0 {
            return Err(DecodeError::ZeroSequence);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The sender is shutting down cleanly.
    pub fn leaving(&self) -> bool {
        self.flags() & FLAG_LEAVING != 0
    }

    /// The held list's ids (bytes, 4 per id), when the frame has one.
    fn held_bytes(&self) -> Option<&[u8]> {
        if self.flags() & FLAG_HELD == 0 {
            return None;
        }
        let b = self.buffer.as_ref();
        let echoes_end = self.node_range().end
            + self
                .echoes()
                .map(|e| ECHO_FIXED_LEN + e.node.len())
                .sum::<usize>();
        let count = usize::from(b[echoes_end]);
        Some(&b[echoes_end + 1..echoes_end + 1 + 4 * count])
    }

    /// The held list, when the frame has one.
    pub fn held(&self) -> Option<HeldIds<'_>> {
        self.held_bytes().map(HeldIds::Wire)
    }

    pub fn channel(&self) -> u8 {
        self.buffer.as_ref()[field::CHANNEL]
    }

    pub fn incarnation(&self) -> u64 {
        be_u64(&self.buffer.as_ref()[field::INCARNATION])
    }

    pub fn seq(&self) -> u64 {
        be_u64(&self.buffer.as_ref()[field::SEQ])
    }

    pub fn timestamp_us(&self) -> u64 {
        be_u64(&self.buffer.as_ref()[field::TIMESTAMP])
    }

    fn cluster_range(&self) -> Range<usize> {
        let len = usize::from(self.buffer.as_ref()[field::CLUSTER_LEN]);
        field::NAMES..field::NAMES + len
    }

    fn node_range(&self) -> Range<usize> {
        let start = self.cluster_range().end;
        start..start + usize::from(self.buffer.as_ref()[field::NODE_LEN])
    }

    /// Cluster name bytes.
    pub fn cluster_name(&self) -> &[u8] {
        &self.buffer.as_ref()[self.cluster_range()]
    }

    /// Sender node name bytes.
    pub fn node_name(&self) -> &[u8] {
        &self.buffer.as_ref()[self.node_range()]
    }

    pub fn echo_count(&self) -> u8 {
        self.buffer.as_ref()[field::ECHO_COUNT]
    }

    /// The echo entries.
    pub fn echoes(&self) -> EchoIter<'_> {
        let b = self.buffer.as_ref();
        let start = self.node_range().end;
        EchoIter {
            bytes: &b[start..b.len() - TAG_LEN],
            remaining: self.echo_count(),
        }
    }

    /// Every byte the tag covers.
    pub fn signed_part(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..b.len() - TAG_LEN]
    }

    pub fn tag(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[b.len() - TAG_LEN..]
    }

    /// Verify the HMAC-SHA256 tag in constant time. `mac` is a keyed prototype (see
    /// [`keyed_mac`]); it is cloned, not consumed.
    pub fn verify(&self, mac: &HmacSha256) -> bool {
        let mut mac = mac.clone();
        mac.update(self.signed_part());
        mac.verify_slice(self.tag()).is_ok()
    }
}

/// A keyed HMAC-SHA256 prototype for [`Packet::verify`] and [`Repr::emit`]. HMAC accepts
/// keys of any length.
pub fn keyed_mac(key: &[u8]) -> HmacSha256 {
    // new_from_slice only fails for fixed-length-key MACs; HMAC takes any length. The
    // fallback (empty key) is unreachable and documented rather than panicking.
    HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()))
}

/// One echo entry: "I last heard `node` (incarnation `incarnation`) on this channel with
/// sequence number `seq`, `hold_us` µs before I built this frame".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRepr<'a> {
    pub node: &'a [u8],
    pub incarnation: u64,
    pub seq: u64,
    pub hold_us: u32,
}

/// Iterator over the echo entries of a checked [`Packet`].
#[derive(Debug, Clone)]
pub struct EchoIter<'a> {
    bytes: &'a [u8],
    remaining: u8,
}

impl<'a> Iterator for EchoIter<'a> {
    type Item = EchoRepr<'a>;

    fn next(&mut self) -> Option<EchoRepr<'a>> {
        if self.remaining == 0 {
            return None;
        }
        let len = usize::from(*self.bytes.first()?);
        let entry = self.bytes.get(..ECHO_FIXED_LEN + len)?;
        let fixed = &entry[1 + len..];
        let echo = EchoRepr {
            node: &entry[1..1 + len],
            incarnation: be_u64(&fixed[0..8]),
            seq: be_u64(&fixed[8..16]),
            hold_us: be_u32(&fixed[16..20]),
        };
        self.bytes = &self.bytes[entry.len()..];
        self.remaining -= 1;
        Some(echo)
    }
}

/// The echo list of a [`Repr`]: borrowed from a received frame, or a slice to emit.
#[derive(Debug, Clone, Copy)]
pub enum Echoes<'a> {
    /// Raw entries of a checked frame and their count.
    Wire { bytes: &'a [u8], count: u8 },
    /// Entries to emit.
    List(&'a [EchoRepr<'a>]),
}

impl<'a> Echoes<'a> {
    /// Iterate the entries, whichever form the list has.
    pub fn iter(&self) -> EchoesIter<'a> {
        match *self {
            Echoes::Wire { bytes, count } => EchoesIter::Wire(EchoIter {
                bytes,
                remaining: count,
            }),
            Echoes::List(list) => EchoesIter::List(list.iter()),
        }
    }

    /// Number of entries (for a `Wire` list: the entries its bytes actually hold, at most
    /// `count`, so a hand-built inconsistent list cannot make [`Repr::emit`] write a count
    /// that disagrees with the entries).
    pub fn len(&self) -> usize {
        match *self {
            Echoes::Wire { .. } => self.iter().count(),
            Echoes::List(list) => list.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn wire_len(&self) -> usize {
        self.iter().map(|e| ECHO_FIXED_LEN + e.node.len()).sum()
    }
}

/// Iterator over [`Echoes`].
#[derive(Debug, Clone)]
pub enum EchoesIter<'a> {
    Wire(EchoIter<'a>),
    List(core::slice::Iter<'a, EchoRepr<'a>>),
}

impl<'a> Iterator for EchoesIter<'a> {
    type Item = EchoRepr<'a>;

    fn next(&mut self) -> Option<EchoRepr<'a>> {
        match self {
            EchoesIter::Wire(it) => it.next(),
            EchoesIter::List(it) => it.next().copied(),
        }
    }
}

impl PartialEq for Echoes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Echoes<'_> {}

/// A held list: borrowed from a received frame (4 bytes per id), or ids to emit.
#[derive(Debug, Clone, Copy)]
pub enum HeldIds<'a> {
    Wire(&'a [u8]),
    List(&'a [u32]),
}

impl<'a> HeldIds<'a> {
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        let (wire, list): (&'a [u8], &'a [u32]) = match *self {
            HeldIds::Wire(b) => (b, &[]),
            HeldIds::List(l) => (&[], l),
        };
        wire.chunks_exact(4).map(be_u32).chain(list.iter().copied())
    }

    pub fn len(&self) -> usize {
        match *self {
            HeldIds::Wire(b) => b.len() / 4,
            HeldIds::List(l) => l.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PartialEq for HeldIds<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for HeldIds<'_> {}

/// The meaning of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// [`FLAG_LEAVING`] or 0. [`FLAG_HELD`] is not kept here: `held` says it, and
    /// [`Repr::emit`] sets the bit from it.
    pub flags: u8,
    pub channel: u8,
    pub cluster: &'a str,
    pub node: &'a str,
    pub incarnation: u64,
    pub seq: u64,
    pub timestamp_us: u64,
    pub echoes: Echoes<'a>,
    /// The VRRP instances whose VIPs the sender has configured ([`held_id`]s); `None`: the
    /// sender does not say (not a `fence_on_takeover` pair).
    pub held: Option<HeldIds<'a>>,
}

impl<'a> Repr<'a> {
    /// Parse a checked packet. Does not verify the tag.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &'a Packet<&'a T>,
    ) -> Result<Repr<'a>, DecodeError> {
        let cluster =
            core::str::from_utf8(packet.cluster_name()).map_err(|_| DecodeError::BadUtf8)?;
        let node = core::str::from_utf8(packet.node_name()).map_err(|_| DecodeError::BadUtf8)?;
        let echoes = packet.echoes();
        for e in echoes.clone() {
            core::str::from_utf8(e.node).map_err(|_| DecodeError::BadUtf8)?;
        }
        Ok(Repr {
            flags: packet.flags() & !FLAG_HELD,
            channel: packet.channel(),
            cluster,
            node,
            incarnation: packet.incarnation(),
            seq: packet.seq(),
            timestamp_us: packet.timestamp_us(),
            echoes: Echoes::Wire {
                bytes: echoes.bytes,
                count: echoes.remaining,
            },
            held: packet.held_bytes().map(HeldIds::Wire),
        })
    }

    /// Length of the emitted frame, tag included.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self.cluster.len()
            + self.node.len()
            + self.echoes.wire_len()
            + self.held.map_or(0, |h| 1 + 4 * h.len())
            + TAG_LEN
    }

    /// The flags as emitted: [`FLAG_HELD`] set exactly when there is a held list.
    fn wire_flags(&self) -> u8 {
        let held = if self.held.is_some() { FLAG_HELD } else { 0 };
        (self.flags & !FLAG_HELD) | held
    }

    fn validate(&self) -> Result<(), EmitError> {
        if !name_len_ok(self.cluster.len()) || !name_len_ok(self.node.len()) {
            return Err(EmitError::BadNameLength);
        }
        if self.echoes.len() > MAX_ECHOES {
            return Err(EmitError::TooManyEchoes);
        }
        if !self.echoes.iter().all(|e| name_len_ok(e.node.len())) {
            return Err(EmitError::BadNameLength);
        }
        if self.seq == 0 {
            return Err(EmitError::ZeroSequence);
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(EmitError::BadFlags);
        }
        if self.held.is_some_and(|h| h.len() > MAX_HELD) {
            return Err(EmitError::TooManyHeld);
        }
        if self.buffer_len() > MAX_FRAME_LEN {
            return Err(EmitError::TooLong);
        }
        Ok(())
    }

    /// Write the frame and its tag into `buf`; returns the length written.
    pub fn emit(&self, buf: &mut [u8], mac: &HmacSha256) -> Result<usize, EmitError> {
        self.validate()?;
        let len = self.buffer_len();
        let buf = buf.get_mut(..len).ok_or(EmitError::BufferTooSmall)?;
        buf[field::MAGIC].copy_from_slice(&MAGIC);
        buf[field::VERSION] = VERSION;
        buf[field::FLAGS] = self.wire_flags();
        buf[field::CHANNEL] = self.channel;
        // validate() bounds every length below, so the casts are exact.
        buf[field::CLUSTER_LEN] = self.cluster.len() as u8;
        buf[field::NODE_LEN] = self.node.len() as u8;
        buf[field::ECHO_COUNT] = self.echoes.len() as u8;
        buf[field::INCARNATION].copy_from_slice(&self.incarnation.to_be_bytes());
        buf[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        buf[field::TIMESTAMP].copy_from_slice(&self.timestamp_us.to_be_bytes());
        let mut at = field::NAMES;
        for name in [self.cluster.as_bytes(), self.node.as_bytes()] {
            buf[at..at + name.len()].copy_from_slice(name);
            at += name.len();
        }
        for e in self.echoes.iter() {
            buf[at] = e.node.len() as u8;
            at += 1;
            buf[at..at + e.node.len()].copy_from_slice(e.node);
            at += e.node.len();
            buf[at..at + 8].copy_from_slice(&e.incarnation.to_be_bytes());
            buf[at + 8..at + 16].copy_from_slice(&e.seq.to_be_bytes());
            buf[at + 16..at + 20].copy_from_slice(&e.hold_us.to_be_bytes());
            at += 20;
        }
        if let Some(held) = self.held {
            buf[at] = held.len() as u8;
            at += 1;
            for id in held.iter() {
                buf[at..at + 4].copy_from_slice(&id.to_be_bytes());
                at += 4;
            }
        }
        let mut mac = mac.clone();
        mac.update(&buf[..at]);
        buf[at..at + TAG_LEN].copy_from_slice(&mac.finalize().into_bytes());
        Ok(len)
    }

    /// [`Repr::emit`] into a new buffer of exactly the right length.
    pub fn encode(&self, mac: &HmacSha256) -> Result<Vec<u8>, EmitError> {
        let mut buf = vec![0u8; self.buffer_len()];
        let len = self.emit(&mut buf, mac)?;
        buf.truncate(len);
        Ok(buf)
    }

    /// The sender is shutting down cleanly.
    pub fn leaving(&self) -> bool {
        self.flags & FLAG_LEAVING != 0
    }
}

#[cfg(test)]
mod tests;
