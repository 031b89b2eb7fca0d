//! Gratuitous ARP and unsolicited Neighbor Advertisements over AF_PACKET.
//!
//! Frames are built by hand into fixed-size stack arrays: the layouts are short and fixed, and
//! this keeps sending allocation-free. The unit tests check them against an independent parser
//! (pnet_packet) and an independent checksum.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

use crate::sys;

/// Length of a gratuitous ARP frame (Ethernet header + ARP, no padding: the NIC pads).
pub const GARP_FRAME_LEN: usize = 14 + 28;
/// Length of an unsolicited NA frame (Ethernet + IPv6 + NA + target link-layer option).
pub const UNSOLICITED_NA_FRAME_LEN: usize = 14 + 40 + 24 + 8;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const BROADCAST: [u8; 6] = [0xff; 6];
/// 33:33 + low 32 bits of ff02::1 (RFC 2464 §7).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const NA_OVERRIDE: u8 = 0x20;

/// The gratuitous ARP frame keepalived sends: Ethernet broadcast from `mac`, ARP *request*
/// with sender MAC = `mac`, sender IP = target IP = `vip`, target MAC all zeros.
pub fn garp_frame(mac: [u8; 6], vip: Ipv4Addr) -> [u8; GARP_FRAME_LEN] {
    let mut f = [0u8; GARP_FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    let arp = &mut f[14..];
    arp[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    arp[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    arp[4] = 6; // hardware address length
    arp[5] = 4; // protocol address length
    arp[6..8].copy_from_slice(&1u16.to_be_bytes()); // operation: request
    arp[8..14].copy_from_slice(&mac);
    arp[14..18].copy_from_slice(&vip.octets());
    // arp[18..24]: target MAC stays zero
    arp[24..28].copy_from_slice(&vip.octets());
    f
}

/// An unsolicited Neighbor Advertisement (RFC 4861 §7.2.6) for `vip`: from link-local `src`
/// and `mac` to all nodes (ff02::1, 33:33:00:00:00:01), hop limit 255, flags Override only
/// (not Solicited, not Router), with a Target Link-Layer Address option = `mac`.
pub fn unsolicited_na_frame(
    mac: [u8; 6],
    src: Ipv6Addr,
    vip: Ipv6Addr,
) -> [u8; UNSOLICITED_NA_FRAME_LEN] {
    let mut f = [0u8; UNSOLICITED_NA_FRAME_LEN];
    f[0..6].copy_from_slice(&ALL_NODES_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    {
        let ip = &mut f[14..54];
        ip[0] = 0x60; // version 6, traffic class 0, flow label 0
        ip[4..6].copy_from_slice(&32u16.to_be_bytes()); // payload length: NA 24 + option 8
        ip[6] = 58; // next header: ICMPv6
        ip[7] = 255; // hop limit: receivers drop ND messages with anything else
        ip[8..24].copy_from_slice(&src.octets());
        ip[24..40].copy_from_slice(&ALL_NODES.octets());
    }
    {
        let na = &mut f[54..];
        na[0] = 136; // Neighbor Advertisement
        na[1] = 0; // code
                   // na[2..4] checksum, below
        na[4] = NA_OVERRIDE;
        na[8..24].copy_from_slice(&vip.octets());
        na[24] = 2; // option: Target Link-Layer Address
        na[25] = 1; // length in units of 8 bytes
        na[26..32].copy_from_slice(&mac);
    }
    let sum = icmpv6_checksum(src, ALL_NODES, &f[54..]);
    f[56..58].copy_from_slice(&sum.to_be_bytes());
    f
}

/// RFC 4443 §2.3 checksum: one's complement sum over the IPv6 pseudo-header and the ICMPv6
/// message (whose checksum field must be zero while summing).
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u32::from);
            sum += hi | lo;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// AF_PACKET sender for gratuitous ARP and unsolicited Neighbor Advertisements on one interface.
///
/// The packet socket is opened on first use and kept open; it is opened with protocol 0, so
/// it receives nothing (no queue of copies of every frame on the link to drain). After a send
/// error the socket is dropped and reopened by the next send.
pub struct Gratuitous {
    ifindex: u32,
    ifname: String,
    mac: [u8; 6],
    sock: Option<Socket>,
}

impl std::fmt::Debug for Gratuitous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gratuitous")
            .field("ifindex", &self.ifindex)
            .field("ifname", &self.ifname)
            .field("mac", &self.mac)
            .field("open", &self.sock.is_some())
            .finish()
    }
}

impl Gratuitous {
    /// Prepares the sender; the socket itself is opened by the first send. An all-zero `mac`
    /// is refused: a Linux bridge drops frames with an all-zero source MAC.
    pub fn open(ifindex: u32, ifname: &str, mac: [u8; 6]) -> io::Result<Self> {
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gratuitous ARP/NA on {ifname}: interface index 0"),
            ));
        }
        if mac == [0; 6] {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gratuitous ARP/NA on {ifname}: interface has no MAC address (all zeros)"),
            ));
        }
        Ok(Gratuitous {
            ifindex,
            ifname: ifname.to_owned(),
            mac,
            sock: None,
        })
    }

    /// The source MAC of the frames.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// One gratuitous ARP request: broadcast, sender = target = `vip`, sender MAC = ours.
    pub fn send_garp(&mut self, vip: Ipv4Addr) -> io::Result<()> {
        let frame = garp_frame(self.mac, vip);
        self.send(&frame, ETH_P_ARP, BROADCAST).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("gratuitous ARP for {vip} on {}: {e}", self.ifname),
            )
        })
    }

    /// One unsolicited NA to ff02::1 for `vip`, override flag set, target link-layer option.
    /// `src` is our link-local address.
    pub fn send_unsolicited_na(&mut self, vip: Ipv6Addr, src: Ipv6Addr) -> io::Result<()> {
        let frame = unsolicited_na_frame(self.mac, src, vip);
        self.send(&frame, ETH_P_IPV6, ALL_NODES_MAC).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("unsolicited NA for {vip} on {}: {e}", self.ifname),
            )
        })
    }

    fn socket(&mut self) -> io::Result<&Socket> {
        if self.sock.is_none() {
            // Protocol 0: a send-only packet socket, no receive hook is installed.
            let s = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))?;
            // Never block the daemon's executor; a full queue is reported as WouldBlock.
            s.set_nonblocking(true)?;
            self.sock = Some(s);
        }
        Ok(self.sock.as_ref().expect("just opened"))
    }

    fn send(&mut self, frame: &[u8], proto: u16, dst_mac: [u8; 6]) -> io::Result<()> {
        let ifindex = self.ifindex;
        let res = (|| {
            let fd = self.socket()?.as_raw_fd();
            // SAFETY: all-zero is a valid sockaddr_ll.
            let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto.to_be();
            sll.sll_ifindex = ifindex as i32;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&dst_mac);
            // SAFETY: frame and sll are live for the call with the lengths given.
            let n = sys::cvt_len(unsafe {
                libc::sendto(
                    fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            })?;
            if n != frame.len() {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write {n}/{}", frame.len()),
                ));
            }
            Ok(())
        })();
        if let Err(e) = &res {
            // A transient full queue keeps the socket; anything else (interface gone, ...)
            // gets a fresh socket next time.
            if e.kind() != io::ErrorKind::WouldBlock {
                self.sock = None;
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket};
    use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
    use pnet_packet::icmpv6::ndp::{NdpOptionTypes, NeighborAdvertFlags, NeighborAdvertPacket};
    use pnet_packet::icmpv6::{Icmpv6Packet, Icmpv6Types};
    use pnet_packet::ip::IpNextHeaderProtocols;
    use pnet_packet::ipv6::Ipv6Packet;
    use pnet_packet::Packet;

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    /// Independent RFC 1071 sum: 16-bit big-endian words, carries folded at the end.
    fn ones_complement_sum(chunks: &[&[u8]]) -> u16 {
        let mut all = Vec::new();
        for c in chunks {
            all.extend_from_slice(c);
        }
        if all.len() % 2 == 1 {
            all.push(0);
        }
        let mut sum: u64 = all
            .chunks_exact(2)
            .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn garp_bytes() {
        let f = garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 100));
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst broadcast
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, // src = our MAC
            0x08, 0x06,                         // ARP
            0x00, 0x01, 0x08, 0x00, 6, 4,       // Ethernet / IPv4, 6, 4
            0x00, 0x01,                         // request
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, // sender MAC
            192, 0, 2, 100,                     // sender IP = VIP
            0, 0, 0, 0, 0, 0,                   // target MAC zero
            192, 0, 2, 100,                     // target IP = VIP
        ];
        assert_eq!(f, expected);

        // And an independent parser agrees.
        let eth = EthernetPacket::new(&f).unwrap();
        assert_eq!(eth.get_ethertype(), EtherTypes::Arp);
        assert_eq!(eth.get_source().octets(), MAC);
        assert!(eth.get_destination().is_broadcast());
        let arp = ArpPacket::new(eth.payload()).unwrap();
        assert_eq!(arp.get_hardware_type(), ArpHardwareTypes::Ethernet);
        assert_eq!(arp.get_protocol_type(), EtherTypes::Ipv4);
        assert_eq!(arp.get_operation(), ArpOperations::Request);
        assert_eq!(arp.get_sender_hw_addr().octets(), MAC);
        assert_eq!(arp.get_sender_proto_addr(), Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(arp.get_target_hw_addr().octets(), [0; 6]);
        assert_eq!(arp.get_target_proto_addr(), Ipv4Addr::new(192, 0, 2, 100));
    }

    #[test]
    fn na_bytes() {
        let src: Ipv6Addr = "fe80::11:22ff:fe33:4455".parse().unwrap();
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let f = unsolicited_na_frame(MAC, src, vip);
        assert_eq!(f.len(), 86);
        #[rustfmt::skip]
        let head: [u8; 22] = [
            0x33, 0x33, 0, 0, 0, 1,             // dst all-nodes MAC
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, // src = our MAC
            0x86, 0xdd,                         // IPv6
            0x60, 0, 0, 0,                      // version 6
            0, 32,                              // payload length
            58, 255,                            // ICMPv6, hop limit 255
        ];
        assert_eq!(f[..22], head);
        assert_eq!(f[22..38], src.octets());
        assert_eq!(f[38..54], "ff02::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(f[54], 136);
        assert_eq!(f[55], 0);
        assert_eq!(f[58..62], [0x20, 0, 0, 0]); // Override only
        assert_eq!(f[62..78], vip.octets());
        assert_eq!(f[78..86], [2, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);

        // Checksum, independently: the sum over pseudo-header + message *including* the
        // transmitted checksum must be 0xffff.
        let pseudo_tail = [0, 0, 0, 32, 0, 0, 0, 58];
        let total = ones_complement_sum(&[&f[22..38], &f[38..54], &pseudo_tail, &f[54..86]]);
        assert_eq!(total, 0xffff, "ICMPv6 checksum does not verify");

        // And pnet agrees on every field and the checksum.
        let eth = EthernetPacket::new(&f).unwrap();
        assert_eq!(eth.get_ethertype(), EtherTypes::Ipv6);
        let ip = Ipv6Packet::new(eth.payload()).unwrap();
        assert_eq!(ip.get_version(), 6);
        assert_eq!(ip.get_hop_limit(), 255);
        assert_eq!(ip.get_next_header(), IpNextHeaderProtocols::Icmpv6);
        assert_eq!(ip.get_source(), src);
        assert_eq!(ip.get_destination(), "ff02::1".parse::<Ipv6Addr>().unwrap());
        let icmp = Icmpv6Packet::new(ip.payload()).unwrap();
        assert_eq!(icmp.get_icmpv6_type(), Icmpv6Types::NeighborAdvert);
        assert_eq!(
            pnet_packet::icmpv6::checksum(&icmp, &ip.get_source(), &ip.get_destination()),
            icmp.get_checksum()
        );
        let na = NeighborAdvertPacket::new(ip.payload()).unwrap();
        assert_eq!(na.get_flags(), NeighborAdvertFlags::Override);
        assert_eq!(na.get_target_addr(), vip);
        let opts = na.get_options();
        assert_eq!(opts.len(), 1);
        assert_eq!(opts[0].option_type, NdpOptionTypes::TargetLLAddr);
        assert_eq!(opts[0].length, 1);
        assert_eq!(opts[0].data, MAC);
    }

    #[test]
    fn na_checksum_changes_with_addresses() {
        let a = unsolicited_na_frame(
            MAC,
            "fe80::1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        );
        let b = unsolicited_na_frame(
            MAC,
            "fe80::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        assert_ne!(a[56..58], b[56..58]);
        // Odd-length input is padded with a zero byte (RFC 1071).
        assert_eq!(
            icmpv6_checksum(Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED, &[1]),
            !ones_complement_sum(&[&[0, 0, 0, 1, 0, 0, 0, 58], &[1, 0]])
        );
    }

    #[test]
    fn open_refuses_zero_mac() {
        assert!(Gratuitous::open(2, "eth0", [0; 6]).is_err());
        assert!(Gratuitous::open(0, "eth0", MAC).is_err());
        assert!(Gratuitous::open(2, "eth0", MAC).is_ok());
    }
}
