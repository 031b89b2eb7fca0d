//! VRRP advertisement codec, smoltcp style.
//!
//! Two layers, as in smoltcp's `src/wire/*.rs`:
//!
//! * [`Packet`] is a zero-copy view over a buffer. [`Packet::new_checked`] validates the
//!   lengths once, after which every accessor is panic-free; the setters write fields in
//!   place.
//! * [`Repr`] is the high-level meaning of one advertisement. [`Repr::parse`] validates
//!   everything a receiver must check on the message itself and borrows the address list
//!   from the buffer (no allocation); [`Repr::emit`] writes a message and its checksum into
//!   a caller-provided buffer (no allocation).
//!
//! Formats:
//!
//! ```text
//! VRRPv2 (RFC 3768 §5.1)                    VRRPv3 (RFC 5798 §5.1)
//! 0        8        16       24       32    0        8        16       24       32
//! |ver|type| VRID   |Priority|Count IP|     |ver|type| VRID   |Priority|Count IP|
//! |AuthType|AdverInt|   Checksum      |     |rsvd|Max Adver Int |   Checksum      |
//! |      IPv4 address(es) ...         |     |   IPv4 or IPv6 address(es) ...    |
//! |      Authentication Data (8)      |
//! ```
//!
//! Rules and where they come from:
//!
//! * Version 2 or 3, type 1 (ADVERTISEMENT) only (RFC 3768 §5.3.1–5.3.2, RFC 5798
//!   §5.2.1–5.2.2). VRRPv2 is IPv4 only; IPv6 is VRRPv3 only (RFC 5798 §1).
//! * The message must be exactly header + addresses (+ 8 bytes of authentication data for
//!   v2): keepalived drops any length mismatch, and a receiver "MUST verify that the received
//!   packet contains the complete VRRP packet" (RFC 3768 §7.1, RFC 5798 §7.1). Shorter than
//!   that is [`DecodeError::Truncated`]; longer is [`DecodeError::AddressCountMismatch`].
//! * v2 checksum: Internet checksum over the VRRP message (RFC 3768 §5.3.8). v3 checksum:
//!   the same over an IPv4 or IPv6 pseudo-header followed by the message (RFC 5798 §5.2.8,
//!   RFC 2460 §8.1 for the IPv6 layout).
//! * v2 Adver Int is in whole seconds (RFC 3768 §5.3.7); v3 Max Adver Int is 12 bits of
//!   centiseconds after 4 reserved bits that are sent as zero and ignored on receipt
//!   (RFC 5798 §5.2.6–5.2.7). Zero is refused: it would make every timer fire at once.
//! * v2 authentication (RFC 3768 §5.3.6): 0 = none (data sent as zero, ignored on receipt),
//!   1 = simple text password (8 bytes, zero padded). Type 2 (IP Authentication Header) is
//!   historic and refused, as is any other value; VRRPv3 has no authentication.
//!
//! The caller supplies what the IP layer knows and the message does not: the address family
//! (the size of each address) and the source / destination addresses (the v3 pseudo-header).

use core::fmt;
use core::ops::Range;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// IP protocol number of VRRP (RFC 5798 §5.1.1.3).
pub const PROTOCOL: u8 = 112;
/// TTL / hop limit every advertisement is sent with and a receiver demands (RFC 5798 §5.1.1.3).
pub const TTL: u8 = 255;
/// Fixed header: version/type, VRID, priority, count, interval (+ auth type in v2), checksum.
pub const HEADER_LEN: usize = 8;
/// VRRPv2 authentication data after the addresses (RFC 3768 §5.3.10).
pub const AUTH_DATA_LEN: usize = 8;
/// The only VRRP message type (RFC 5798 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// The count field is one byte.
pub const MAX_ADDRESSES: usize = u8::MAX as usize;
/// Largest valid message: VRRPv3 over IPv6 with 255 addresses.
pub const MAX_LEN: usize = HEADER_LEN + MAX_ADDRESSES * 16;

/// v2 auth type values (RFC 3768 §5.3.6).
const AUTH_TYPE_NONE: u8 = 0;
const AUTH_TYPE_SIMPLE: u8 = 1;

/// The v3 interval field keeps its top 4 bits reserved (RFC 5798 §5.2.6).
const MAX_ADVER_INT_MASK: u16 = 0x0fff;

/// VRRP version on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    /// The value of the version nibble.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    pub const fn from_number(number: u8) -> Option<Version> {
        match number {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

/// Address family of an advertisement: the family of the IP packet carrying it, which the
/// message itself does not encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Bytes per address in the message.
    pub const fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    pub const fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// VRRPv2 authentication (RFC 3768 §5.3.6). Type 2 (IP AH) is historic and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    /// Simple text password, zero-padded to 8 bytes.
    Simple([u8; 8]),
}

impl Auth {
    /// A simple text password as keepalived stores it: the first 8 bytes, zero padded.
    pub fn simple(password: &[u8]) -> Auth {
        let mut data = [0u8; AUTH_DATA_LEN];
        let n = password.len().min(AUTH_DATA_LEN);
        data[..n].copy_from_slice(&password[..n]);
        Auth::Simple(data)
    }

    /// The Auth Type field value.
    pub const fn auth_type(&self) -> u8 {
        match self {
            Auth::None => AUTH_TYPE_NONE,
            Auth::Simple(_) => AUTH_TYPE_SIMPLE,
        }
    }

    /// The 8 bytes of Authentication Data (zero for `None`, RFC 3768 §5.3.10).
    pub const fn data(&self) -> [u8; AUTH_DATA_LEN] {
        match self {
            Auth::None => [0; AUTH_DATA_LEN],
            Auth::Simple(data) => *data,
        }
    }
}

/// One variant per malformed case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated packet")]
    Truncated,
    #[error("bad version")]
    BadVersion,
    #[error("bad type")]
    BadType,
    #[error("bad checksum")]
    BadChecksum,
    #[error("address count does not match the packet length")]
    AddressCountMismatch,
    #[error("zero advertisement interval")]
    ZeroAdvertInterval,
    #[error("authentication mismatch")]
    AuthMismatch,
    #[error("wrong VRID for this socket")]
    WrongVrid,
}

/// Why a [`Repr`] cannot be written. These are caller mistakes (configuration the wire
/// cannot carry, a short buffer), never properties of received data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("buffer shorter than the advertisement")]
    BufferTooSmall,
    #[error(
        "address family does not fit the advertisement (VRRPv2 is IPv4 only, or mixed families)"
    )]
    FamilyMismatch,
    #[error("more than 255 addresses")]
    TooManyAddresses,
    #[error("advertisement interval not representable (v2: 1..=255 s; v3: 10 ms steps, 10 ms..=40.95 s)")]
    BadAdvertInterval,
    #[error("VRRPv3 carries no authentication")]
    AuthNotSupported,
}

/// Byte offsets of the header fields (RFC 3768 §5.1, RFC 5798 §5.1).
mod field {
    pub type Field = core::ops::Range<usize>;

    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT_IP_ADDRS: usize = 3;
    /// v2 only.
    pub const AUTH_TYPE: usize = 4;
    /// v2 only: seconds.
    pub const ADVER_INT: usize = 5;
    /// v3 only: 4 reserved bits + 12 bits of centiseconds; overlays AUTH_TYPE/ADVER_INT.
    pub const MAX_ADVER_INT: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const ADDRESSES: usize = 8;

    pub const fn addresses(count: usize, addr_len: usize) -> Field {
        ADDRESSES..ADDRESSES + count * addr_len
    }

    /// v2 only: the authentication data follows the addresses.
    pub const fn auth_data(count: usize, addr_len: usize) -> Field {
        let start = ADDRESSES + count * addr_len;
        start..start + super::AUTH_DATA_LEN
    }
}

/// Length of a complete message with `count` addresses.
const fn message_len(version: Version, family: Family, count: usize) -> usize {
    let addrs = HEADER_LEN + count * family.addr_len();
    match version {
        Version::V2 => addrs + AUTH_DATA_LEN,
        Version::V3 => addrs,
    }
}

/// A read/write view of a VRRP message (no IP header).
///
/// The family is not in the message; it comes with the view because it sets the size of
/// every address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks: accessors may panic on a short buffer. Use for emitting into a
    /// buffer sized with [`Repr::buffer_len`].
    pub const fn new_unchecked(buffer: T, family: Family) -> Packet<T> {
        Packet { buffer, family }
    }

    /// A view whose accessors cannot panic; see [`Packet::check_len`].
    pub fn new_checked(buffer: T, family: Family) -> Result<Packet<T>, DecodeError> {
        let packet = Packet::new_unchecked(buffer, family);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the buffer holds exactly one complete message of a known version.
    ///
    /// The version is checked here rather than in [`Repr::parse`] because it decides the
    /// length (v2 carries 8 bytes of authentication data) and whether IPv6 is allowed.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        let version = Version::from_number(self.version()).ok_or(DecodeError::BadVersion)?;
        if version == Version::V2 && self.family == Family::V6 {
            // RFC 5798 §1: VRRP over IPv6 exists only as version 3.
            return Err(DecodeError::BadVersion);
        }
        let expected = message_len(version, self.family, usize::from(self.addr_count()));
        match len.cmp(&expected) {
            core::cmp::Ordering::Less => Err(DecodeError::Truncated),
            core::cmp::Ordering::Greater => Err(DecodeError::AddressCountMismatch),
            core::cmp::Ordering::Equal => Ok(()),
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// The version nibble as sent (2 or 3 once checked).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// The type nibble as sent (1 for an advertisement).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT_IP_ADDRS]
    }

    /// v2: Auth Type.
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// v2: Adver Int in seconds.
    pub fn adver_int_secs(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT]
    }

    /// v3: Max Adver Int in centiseconds (reserved bits masked off).
    pub fn max_adver_int_centis(&self) -> u16 {
        self.raw_u16(field::MAX_ADVER_INT) & MAX_ADVER_INT_MASK
    }

    /// v3: the 4 reserved bits before Max Adver Int.
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::MAX_ADVER_INT.start] >> 4
    }

    pub fn checksum(&self) -> u16 {
        self.raw_u16(field::CHECKSUM)
    }

    /// The address list as raw bytes, `addr_count × family.addr_len()` long.
    pub fn addresses(&self) -> &[u8] {
        &self.buffer.as_ref()[self.addresses_range()]
    }

    /// v2: the 8 bytes of Authentication Data; empty for v3.
    pub fn auth_data(&self) -> &[u8] {
        match self.auth_data_range() {
            Some(range) => &self.buffer.as_ref()[range],
            None => &[],
        }
    }

    /// Length of the message as the header describes it.
    pub fn message_len(&self) -> usize {
        match Version::from_number(self.version()) {
            Some(version) => message_len(version, self.family, usize::from(self.addr_count())),
            None => HEADER_LEN,
        }
    }

    /// Checks the checksum: v2 over the message alone (RFC 3768 §5.3.8), v3 over the
    /// pseudo-header for `src` → `dst` and the message (RFC 5798 §5.2.8).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        self.checksum_sum(src, dst) == !0
    }

    fn checksum_sum(&self, src: IpAddr, dst: IpAddr) -> u16 {
        // Unchecked views may be short; sum what is there rather than panic.
        let data = self.buffer.as_ref();
        let message = data.get(..self.message_len()).unwrap_or(data);
        let data = checksum::data(message);
        if self.version() == Version::V3.number() {
            let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
            checksum::combine(&[checksum::pseudo_header(&src, &dst, PROTOCOL, len), data])
        } else {
            data
        }
    }

    fn raw_u16(&self, range: Range<usize>) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[range.start], data[range.start + 1]])
    }

    fn addresses_range(&self) -> Range<usize> {
        field::addresses(usize::from(self.addr_count()), self.family.addr_len())
    }

    fn auth_data_range(&self) -> Option<Range<usize>> {
        (self.version() == Version::V2.number())
            .then(|| field::auth_data(usize::from(self.addr_count()), self.family.addr_len()))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The address list, borrowed for the buffer's lifetime rather than the view's.
    fn addresses_ref(&self) -> &'a [u8] {
        let range = self.addresses_range();
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_version_and_type(&mut self, version: Version, msg_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version.number() << 4) | (msg_type & 0x0f);
    }

    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    pub fn set_addr_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT_IP_ADDRS] = count;
    }

    /// v2.
    pub fn set_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = auth_type;
    }

    /// v2.
    pub fn set_adver_int_secs(&mut self, secs: u8) {
        self.buffer.as_mut()[field::ADVER_INT] = secs;
    }

    /// v3: writes the interval with the reserved bits zero (RFC 5798 §5.2.6).
    pub fn set_max_adver_int_centis(&mut self, centis: u16) {
        self.set_raw_u16(field::MAX_ADVER_INT, centis & MAX_ADVER_INT_MASK);
    }

    pub fn set_checksum(&mut self, checksum: u16) {
        self.set_raw_u16(field::CHECKSUM, checksum);
    }

    /// The address list, sized by the count field: set the count first.
    pub fn addresses_mut(&mut self) -> &mut [u8] {
        let range = self.addresses_range();
        &mut self.buffer.as_mut()[range]
    }

    /// v2: the authentication data, placed by the count field: set the count first.
    /// Empty for v3.
    pub fn auth_data_mut(&mut self) -> &mut [u8] {
        match self.auth_data_range() {
            Some(range) => &mut self.buffer.as_mut()[range],
            None => &mut [],
        }
    }

    /// Computes and stores the checksum; every other field must be written already.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let sum = self.checksum_sum(src, dst);
        self.set_checksum(!sum);
    }

    fn set_raw_u16(&mut self, range: Range<usize>, value: u16) {
        let bytes = value.to_be_bytes();
        self.buffer.as_mut()[range].copy_from_slice(&bytes);
    }
}

/// The address list of an advertisement: borrowed from a received message, or from the
/// caller's slice when emitting. Either way nothing is copied or allocated.
#[derive(Clone, Copy)]
pub struct Addresses<'a> {
    family: Family,
    inner: AddressesInner<'a>,
}

#[derive(Clone, Copy)]
enum AddressesInner<'a> {
    /// Packed addresses, `family.addr_len()` bytes each.
    Wire(&'a [u8]),
    Ips(&'a [IpAddr]),
}

impl<'a> Addresses<'a> {
    /// Addresses to emit. Each must be of `family` or [`Repr::emit`] refuses.
    pub const fn from_ips(family: Family, ips: &'a [IpAddr]) -> Addresses<'a> {
        Addresses {
            family,
            inner: AddressesInner::Ips(ips),
        }
    }

    const fn from_wire(family: Family, bytes: &'a [u8]) -> Addresses<'a> {
        Addresses {
            family,
            inner: AddressesInner::Wire(bytes),
        }
    }

    pub const fn family(&self) -> Family {
        self.family
    }

    pub const fn len(&self) -> usize {
        match self.inner {
            AddressesInner::Wire(bytes) => bytes.len() / self.family.addr_len(),
            AddressesInner::Ips(ips) => ips.len(),
        }
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> AddressIter<'a> {
        let inner = match self.inner {
            AddressesInner::Wire(bytes) => {
                AddressIterInner::Wire(bytes.chunks_exact(self.family.addr_len()))
            }
            AddressesInner::Ips(ips) => AddressIterInner::Ips(ips.iter()),
        };
        AddressIter {
            family: self.family,
            inner,
        }
    }
}

impl<'a> IntoIterator for Addresses<'a> {
    type Item = IpAddr;
    type IntoIter = AddressIter<'a>;

    fn into_iter(self) -> AddressIter<'a> {
        self.iter()
    }
}

/// Equal when the same family and the same addresses in the same order, whatever the
/// storage: a parsed list equals the slice it was emitted from.
impl PartialEq for Addresses<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.family == other.family && self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Addresses<'_> {}

impl fmt::Debug for Addresses<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over [`Addresses`].
#[derive(Clone)]
pub struct AddressIter<'a> {
    family: Family,
    inner: AddressIterInner<'a>,
}

#[derive(Clone)]
enum AddressIterInner<'a> {
    Wire(core::slice::ChunksExact<'a, u8>),
    Ips(core::slice::Iter<'a, IpAddr>),
}

impl Iterator for AddressIter<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        match &mut self.inner {
            AddressIterInner::Ips(ips) => ips.next().copied(),
            // chunks_exact yields exactly addr_len bytes, so the conversions cannot fail.
            AddressIterInner::Wire(chunks) => {
                let chunk = chunks.next()?;
                match self.family {
                    Family::V4 => <[u8; 4]>::try_from(chunk)
                        .ok()
                        .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
                    Family::V6 => <[u8; 16]>::try_from(chunk)
                        .ok()
                        .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            AddressIterInner::Wire(chunks) => chunks.size_hint(),
            AddressIterInner::Ips(ips) => ips.size_hint(),
        }
    }
}

impl ExactSizeIterator for AddressIter<'_> {}

/// The meaning of one advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// v2: Adver Int (whole seconds); v3: Max Adver Int (10 ms steps).
    pub advert_int: Duration,
    /// Always [`Auth::None`] for v3.
    pub auth: Auth,
    /// Also carries the family of the advertisement.
    pub addresses: Addresses<'a>,
}

impl<'a> Repr<'a> {
    /// Validates a message received from `src` to `dst` (the addresses feed the v3
    /// pseudo-header checksum and are not otherwise looked at).
    ///
    /// Checks, in order: lengths and version ([`Packet::check_len`]), type, checksum,
    /// a non-zero interval, and for v2 a known auth type. VRID and password are checked
    /// against what the receiver expects with [`Repr::check_vrid`] / [`Repr::check_auth`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<Repr<'a>, DecodeError> {
        packet.check_len()?;
        let version = Version::from_number(packet.version()).ok_or(DecodeError::BadVersion)?;
        // RFC 5798 §5.2.2: "A packet with unknown type MUST be discarded."
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(DecodeError::BadType);
        }
        if !packet.verify_checksum(src, dst) {
            return Err(DecodeError::BadChecksum);
        }
        let (advert_int, auth) = match version {
            Version::V2 => {
                let auth = match packet.auth_type() {
                    AUTH_TYPE_NONE => Auth::None,
                    AUTH_TYPE_SIMPLE => {
                        let mut data = [0u8; AUTH_DATA_LEN];
                        data.copy_from_slice(packet.auth_data());
                        Auth::Simple(data)
                    }
                    // 2 = IP AH (historic, RFC 3768 §5.3.6.3) and anything unknown: we can
                    // never share such a configuration, so it can never match ours.
                    _ => return Err(DecodeError::AuthMismatch),
                };
                (
                    Duration::from_secs(u64::from(packet.adver_int_secs())),
                    auth,
                )
            }
            Version::V3 => (
                Duration::from_millis(u64::from(packet.max_adver_int_centis()) * 10),
                Auth::None,
            ),
        };
        if advert_int.is_zero() {
            return Err(DecodeError::ZeroAdvertInterval);
        }
        Ok(Repr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            advert_int,
            auth,
            addresses: Addresses::from_wire(packet.family(), packet.addresses_ref()),
        })
    }

    /// RFC 5798 §7.1: "MUST verify that the VRID is configured on the receiving interface".
    pub fn check_vrid(&self, vrid: u8) -> Result<(), DecodeError> {
        if self.vrid == vrid {
            Ok(())
        } else {
            Err(DecodeError::WrongVrid)
        }
    }

    /// RFC 3768 §7.1: "MUST verify that the Auth Type matches the locally configured
    /// authentication method" and, for simple text, that the password matches.
    pub fn check_auth(&self, expected: &Auth) -> Result<(), DecodeError> {
        if self.auth == *expected {
            Ok(())
        } else {
            Err(DecodeError::AuthMismatch)
        }
    }

    pub fn family(&self) -> Family {
        self.addresses.family()
    }

    /// Length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        message_len(self.version, self.family(), self.addresses.len())
    }

    /// Writes the message for sending from `src` to `dst` into the start of `buf`, checksum
    /// included, and returns its length. Everything is validated before the first write, so
    /// on error `buf` is untouched.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<usize, EmitError> {
        let family = self.family();
        if self.version == Version::V2 && family == Family::V6 {
            return Err(EmitError::FamilyMismatch);
        }
        let count = u8::try_from(self.addresses.len()).map_err(|_| EmitError::TooManyAddresses)?;
        if self.addresses.iter().any(|a| Family::of(&a) != family) {
            return Err(EmitError::FamilyMismatch);
        }
        let interval = match self.version {
            Version::V2 => u16::from(v2_interval_secs(self.advert_int)?),
            Version::V3 => v3_interval_centis(self.advert_int)?,
        };
        if self.version == Version::V3 && self.auth != Auth::None {
            return Err(EmitError::AuthNotSupported);
        }
        let len = self.buffer_len();
        let buf = buf.get_mut(..len).ok_or(EmitError::BufferTooSmall)?;

        let mut packet = Packet::new_unchecked(buf, family);
        packet.set_version_and_type(self.version, TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_addr_count(count);
        match self.version {
            Version::V2 => {
                packet.set_auth_type(self.auth.auth_type());
                // Fits: v2_interval_secs returned a u8.
                packet.set_adver_int_secs(interval as u8);
                packet.auth_data_mut().copy_from_slice(&self.auth.data());
            }
            Version::V3 => packet.set_max_adver_int_centis(interval),
        }
        let addr_len = family.addr_len();
        for (slot, addr) in packet
            .addresses_mut()
            .chunks_exact_mut(addr_len)
            .zip(self.addresses.iter())
        {
            match addr {
                IpAddr::V4(a) => slot.copy_from_slice(&a.octets()),
                IpAddr::V6(a) => slot.copy_from_slice(&a.octets()),
            }
        }
        packet.fill_checksum(src, dst);
        Ok(len)
    }
}

/// The v2 Adver Int field for `interval`: whole seconds, 1..=255 (RFC 3768 §5.3.7).
pub fn v2_interval_secs(interval: Duration) -> Result<u8, EmitError> {
    if interval.subsec_nanos() != 0 {
        return Err(EmitError::BadAdvertInterval);
    }
    match u8::try_from(interval.as_secs()) {
        Ok(secs) if secs > 0 => Ok(secs),
        _ => Err(EmitError::BadAdvertInterval),
    }
}

/// The v3 Max Adver Int field for `interval`: centiseconds, 1..=4095 (RFC 5798 §5.2.7).
pub fn v3_interval_centis(interval: Duration) -> Result<u16, EmitError> {
    const CENTI_NANOS: u128 = 10_000_000;
    let nanos = interval.as_nanos();
    let centis = nanos / CENTI_NANOS;
    // Written without `u128::is_multiple_of`, which is newer than the workspace's MSRV.
    if centis * CENTI_NANOS != nanos {
        return Err(EmitError::BadAdvertInterval);
    }
    match u16::try_from(centis) {
        Ok(centis) if (1..=MAX_ADVER_INT_MASK).contains(&centis) => Ok(centis),
        _ => Err(EmitError::BadAdvertInterval),
    }
}

/// The VRID of a received message, read before any validation, so that a runtime serving
/// several instances on one socket can hand the message to the instance owning that VRID
/// (which then validates it and counts any drop). `None` if the message is too short to
/// carry one.
pub fn peek_vrid(buf: &[u8]) -> Option<u8> {
    buf.get(field::VRID).copied()
}

/// Parses a message as a receiver of `family` does; shorthand for [`Packet::new_checked`]
/// then [`Repr::parse`].
pub fn parse(
    buf: &[u8],
    family: Family,
    src: IpAddr,
    dst: IpAddr,
) -> Result<Repr<'_>, DecodeError> {
    let packet = Packet::new_checked(buf, family)?;
    Repr::parse(&packet, src, dst)
}

/// The Internet checksum (RFC 1071), as smoltcp's `ip::checksum` lays it out: sums are
/// folded one's-complement sums, the field stores the complement of their combination.
pub mod checksum {
    use std::net::IpAddr;

    /// Folded one's-complement sum of `data` as big-endian 16-bit words, an odd last byte
    /// padded with zero.
    pub fn data(data: &[u8]) -> u16 {
        let mut chunks = data.chunks_exact(2);
        // u64 cannot overflow for any slice that fits in memory.
        let mut sum: u64 = chunks
            .by_ref()
            .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        if let [last] = chunks.remainder() {
            sum += u64::from(*last) << 8;
        }
        fold(sum)
    }

    /// One's-complement sum of partial sums.
    pub fn combine(sums: &[u16]) -> u16 {
        fold(sums.iter().map(|&s| u64::from(s)).sum())
    }

    /// Sum of the pseudo-header. The IPv4 layout (src, dst, zero, protocol, 16-bit length,
    /// RFC 768) and the IPv6 one (src, dst, 32-bit length, zeros, next header, RFC 2460
    /// §8.1) hold the same 16-bit words apart from zeros, so one sum serves both.
    pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, length: u32) -> u16 {
        let addr_sum = |addr: &IpAddr| match addr {
            IpAddr::V4(a) => data(&a.octets()),
            IpAddr::V6(a) => data(&a.octets()),
        };
        let len = length.to_be_bytes();
        combine(&[
            addr_sum(src),
            addr_sum(dst),
            u16::from(protocol),
            u16::from_be_bytes([len[0], len[1]]),
            u16::from_be_bytes([len[2], len[3]]),
        ])
    }

    fn fold(mut sum: u64) -> u16 {
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        // The loop leaves at most 0xffff.
        sum as u16
    }
}

#[cfg(test)]
mod tests;
