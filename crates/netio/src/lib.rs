//! Thin Linux I/O for tandem.
//!
//! This crate is the only place where tandem touches the Linux network stack directly:
//!
//! * [`VrrpSocket`]: one raw IP protocol 112 socket per (interface, address family), set up
//!   the way VRRP needs (TTL / hop limit 255, joined to 224.0.0.18 / ff02::12 on that interface
//!   only, multicast loop off), non-blocking, for the caller to wait on. It hands back the bytes of each received
//!   VRRP message together with the facts that only the IP layer knows (source, destination,
//!   TTL / hop limit).
//! * [`Netlink`]: interface facts (index, MAC, up, primary IPv4, IPv6 link-local) and
//!   idempotent add / remove of virtual addresses over rtnetlink.
//! * [`Gratuitous`]: gratuitous ARP requests and unsolicited IPv6 Neighbor Advertisements sent
//!   through an `AF_PACKET` socket, so that switches and neighbours learn a moved VIP at once.
//!
//! # What this crate must never do
//!
//! It is deliberately dumb, so that every protocol decision lives in `tandem-vrrp` where it can
//! be tested without root and without a kernel:
//!
//! * it never decides state (master / backup / fault) and never chooses *whether* to send, add
//!   or remove anything: it does exactly what it is told, once;
//! * it never parses VRRP beyond the IP header: it does not check the TTL, the version, the
//!   VRID or the checksum. In particular `IPV6_CHECKSUM` is **not** set on the IPv6 socket, so
//!   the kernel neither fills in nor silently drops bad VRRPv3 checksums: the caller computes
//!   them, verifies them, and counts the bad ones (RFC 5798 statistics need that);
//! * it holds no timers and does not retry: a failed send is reported to the caller, who knows
//!   whether and when to try again.
//!
//! Hot paths (`send_to`, `recv`, `try_recv`, the GARP / NA senders) allocate nothing per
//! packet: addresses, control messages and frames live on the stack.
//!
//! All sockets are created in the network namespace of the calling thread, which is what makes
//! the namespace-based integration tests (`tests/`) possible.

mod gratuitous;
mod link_monitor;
mod netlink;
mod sys;
mod vrrp_socket;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use gratuitous::{
    garp_frame, unsolicited_na_frame, Gratuitous, GARP_FRAME_LEN, UNSOLICITED_NA_FRAME_LEN,
};
pub use link_monitor::{LinkEvent, LinkMonitor};
pub use netlink::Netlink;
pub use vrrp_socket::VrrpSocket;

/// IP protocol number of VRRP (RFC 3768 / RFC 5798).
pub const IPPROTO_VRRP: u8 = 112;

/// TTL / hop limit every VRRP packet is sent with, and the only one a receiver may accept.
pub const VRRP_TTL: u8 = 255;

/// Facts about one interface, read through netlink.
#[derive(Debug, Clone)]
pub struct InterfaceInfo {
    pub name: String,
    pub index: u32,
    /// Hardware address (`IFLA_ADDRESS`); all zeros for interfaces without a 6-byte one.
    pub mac: [u8; 6],
    /// Primary (first, non-secondary) IPv4 address, if any.
    pub primary_v4: Option<Ipv4Addr>,
    /// IPv6 link-local address, if any (a usable one is preferred over a tentative one).
    pub link_local_v6: Option<Ipv6Addr>,
    /// Administratively up **and** running (carrier present): the interface can carry
    /// traffic. This is keepalived's notion of "up" (`IFF_UP && IFF_RUNNING`).
    pub up: bool,
}

/// Metadata of one received VRRP packet.
///
/// The VRRP message itself is `buf[meta.payload_offset..meta.payload_offset + meta.len]`.
#[derive(Debug, Clone, Copy)]
pub struct RecvMeta {
    /// Source address of the IP packet.
    pub src: IpAddr,
    /// Destination address of the IP packet (IPv4 header, or `IPV6_PKTINFO`; `::` if the
    /// kernel gave no `IPV6_PKTINFO`, which it always does on Linux).
    pub dst: IpAddr,
    /// TTL (IPv4 header) or hop limit (IPV6_HOPLIMIT control message; 0 if missing, so the
    /// caller's TTL check rejects it).
    pub ttl: u8,
    /// Offset of the VRRP message inside the receive buffer (IPv4: after the IP header).
    pub payload_offset: usize,
    /// Length of the VRRP message (without the IP header) that is in the buffer. If the buffer
    /// was too small the message is cut to what fitted; the caller's length checks catch that.
    pub len: usize,
}

impl RecvMeta {
    /// The VRRP message inside the buffer the metadata was received into.
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.payload_offset..self.payload_offset + self.len]
    }
}

/// The VRRP multicast group for a family.
pub fn vrrp_group(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12))
    } else {
        IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18))
    }
}
