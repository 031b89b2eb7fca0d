//! API CONTRACT for the daemon (bodies to be written).
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Facts about one interface, read through netlink.
#[derive(Debug, Clone)]
pub struct InterfaceInfo {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    /// Primary (first, non-secondary) IPv4 address, if any.
    pub primary_v4: Option<Ipv4Addr>,
    /// IPv6 link-local address, if any.
    pub link_local_v6: Option<Ipv6Addr>,
    pub up: bool,
}

/// Metadata of one received VRRP packet.
#[derive(Debug, Clone, Copy)]
pub struct RecvMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4 header) or hop limit (IPV6_HOPLIMIT control message).
    pub ttl: u8,
    /// Offset of the VRRP message inside the receive buffer (IPv4: after the IP header).
    pub payload_offset: usize,
    pub len: usize,
}

/// Raw IP protocol 112 socket bound to one interface and one family. Sends with TTL / hop
/// limit 255, joined to 224.0.0.18 / ff02::12 on the interface, multicast loop off.
pub struct VrrpSocket {
    _private: (),
}

impl VrrpSocket {
    /// `src` is the source address for sending (IPv4 primary / unicast_src_ip, or the IPv6
    /// link-local address). Must be called inside a tokio runtime.
    pub fn open(ifindex: u32, ifname: &str, src: IpAddr) -> io::Result<Self> {
        let _ = (ifindex, ifname, src);
        unimplemented!()
    }
    /// Send one VRRP message (no IP header) to `dst` (multicast group or unicast peer).
    pub async fn send_to(&self, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        let _ = (payload, dst);
        unimplemented!()
    }
    /// Wait for and receive one packet.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        let _ = buf;
        unimplemented!()
    }
    /// Receive one already-queued packet without waiting (`Ok(None)` when the queue is empty).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<RecvMeta>> {
        let _ = buf;
        unimplemented!()
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

/// Netlink handle for interface facts and VIP add/remove.
pub struct Netlink {
    _private: (),
}

impl Netlink {
    /// Must be called inside a tokio runtime (spawns the netlink connection task).
    pub fn new() -> io::Result<Self> {
        unimplemented!()
    }
    pub async fn interface(&self, name: &str) -> io::Result<InterfaceInfo> {
        let _ = name;
        unimplemented!()
    }
    /// Add `addr/prefix_len` to the interface; already present is success. IPv6 VIPs are
    /// added with IFA_F_NODAD so they answer at once.
    pub async fn add_address(&self, ifindex: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        let _ = (ifindex, addr, prefix_len);
        unimplemented!()
    }
    /// Remove it; already absent is success.
    pub async fn del_address(&self, ifindex: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        let _ = (ifindex, addr, prefix_len);
        unimplemented!()
    }
}

/// AF_PACKET sender for gratuitous ARP and unsolicited Neighbor Advertisements on one interface.
pub struct Gratuitous {
    _private: (),
}

impl Gratuitous {
    pub fn open(ifindex: u32, ifname: &str, mac: [u8; 6]) -> io::Result<Self> {
        let _ = (ifindex, ifname, mac);
        unimplemented!()
    }
    /// One gratuitous ARP request: broadcast, sender = target = `vip`, sender MAC = ours.
    pub fn send_garp(&mut self, vip: Ipv4Addr) -> io::Result<()> {
        let _ = vip;
        unimplemented!()
    }
    /// One unsolicited NA to ff02::1 for `vip`, override flag set, target link-layer option.
    /// `src` is our link-local address.
    pub fn send_unsolicited_na(&mut self, vip: Ipv6Addr, src: Ipv6Addr) -> io::Result<()> {
        let _ = (vip, src);
        unimplemented!()
    }
}
