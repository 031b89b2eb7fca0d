//! rtnetlink: interface facts and idempotent VIP add / remove.

use std::fmt::Display;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::{AddressMessageBuilder, Handle};

use crate::InterfaceInfo;

/// Netlink handle for interface facts and VIP add/remove.
///
/// The connection task runs on the runtime that was current in [`Netlink::new`] and ends when
/// the `Netlink` is dropped.
pub struct Netlink {
    handle: Handle,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").finish_non_exhaustive()
    }
}

/// The errno of a netlink NACK, if that is what the error is.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()),
        _ => None,
    }
}

/// io::Error carrying the kernel's errno kind and a message naming what was attempted.
fn nl_err(e: rtnetlink::Error, what: impl Display) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => {
            let os = m.to_io();
            io::Error::new(os.kind(), format!("{what}: {os}"))
        }
        other => io::Error::other(format!("{what}: {other}")),
    }
}

fn v4_of(attrs: &[AddressAttribute]) -> Option<Ipv4Addr> {
    // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on point-to-point).
    let local = attrs.iter().find_map(|a| match a {
        AddressAttribute::Local(IpAddr::V4(v)) => Some(*v),
        _ => None,
    });
    local.or_else(|| {
        attrs.iter().find_map(|a| match a {
            AddressAttribute::Address(IpAddr::V4(v)) => Some(*v),
            _ => None,
        })
    })
}

fn v6_of(attrs: &[AddressAttribute]) -> Option<Ipv6Addr> {
    attrs.iter().find_map(|a| match a {
        AddressAttribute::Address(IpAddr::V6(v)) => Some(*v),
        _ => None,
    })
}

/// All address flags: IFA_FLAGS (32 bits) when present, else the 8 bits of the header.
fn flags_of(msg: &AddressMessage) -> AddressFlags {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits())))
}

fn is_link_local_v6(a: Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

fn check_prefix(addr: IpAddr, prefix_len: u8, op: &str, ifindex: u32) -> io::Result<()> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{op} {addr}/{prefix_len} on ifindex {ifindex}: prefix length above {max}"),
        ));
    }
    Ok(())
}

pub(crate) fn link_facts(link: &LinkMessage) -> (String, [u8; 6], bool) {
    let mut name = String::new();
    let mut mac = [0u8; 6];
    for attr in &link.attributes {
        match attr {
            LinkAttribute::IfName(n) => name.clone_from(n),
            LinkAttribute::Address(a) if a.len() == 6 => mac.copy_from_slice(a),
            _ => {}
        }
    }
    let f = link.header.flags;
    let up = f.contains(LinkFlags::Up) && f.contains(LinkFlags::Running);
    (name, mac, up)
}

impl Netlink {
    /// Must be called inside a tokio runtime (spawns the netlink connection task).
    ///
    /// The netlink socket belongs to the network namespace of the calling thread.
    pub fn new() -> io::Result<Self> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| io::Error::other(format!("Netlink::new outside a tokio runtime: {e}")))?;
        let (conn, handle, _unsolicited) = rtnetlink::new_connection()
            .map_err(|e| io::Error::new(e.kind(), format!("open rtnetlink socket: {e}")))?;
        rt.spawn(conn);
        Ok(Netlink { handle })
    }

    pub async fn interface(&self, name: &str) -> io::Result<InterfaceInfo> {
        let what = || format!("netlink: get interface {name}");
        let link = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute()
            .try_next()
            .await
            .map_err(|e| {
                if errno(&e) == Some(libc::ENODEV) {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{}: no such interface", what()),
                    )
                } else {
                    nl_err(e, what())
                }
            })?
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: no such interface", what()),
                )
            })?;
        let index = link.header.index;
        let (ifname, mac, up) = link_facts(&link);

        let mut primary_v4 = None;
        let mut ll_ok = None;
        let mut ll_tentative = None;
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(msg) = addrs
            .try_next()
            .await
            .map_err(|e| nl_err(e, format!("netlink: list addresses of {name}")))?
        {
            let flags = flags_of(&msg);
            if let Some(v4) = v4_of(&msg.attributes) {
                // The kernel lists an interface's IPv4 addresses primary first.
                if primary_v4.is_none() && !flags.contains(AddressFlags::Secondary) {
                    primary_v4 = Some(v4);
                }
            } else if let Some(v6) = v6_of(&msg.attributes) {
                if !is_link_local_v6(v6) || flags.contains(AddressFlags::Dadfailed) {
                    continue;
                }
                // A tentative address cannot be a source yet; prefer one that can.
                if flags.contains(AddressFlags::Tentative) {
                    ll_tentative.get_or_insert(v6);
                } else {
                    ll_ok.get_or_insert(v6);
                }
            }
        }
        Ok(InterfaceInfo {
            name: if ifname.is_empty() {
                name.to_owned()
            } else {
                ifname
            },
            index,
            mac,
            primary_v4,
            link_local_v6: ll_ok.or(ll_tentative),
            up,
        })
    }

    /// Add `addr/prefix_len` to the interface; already present is success. IPv6 VIPs are
    /// added with IFA_F_NODAD so they answer at once.
    pub async fn add_address(&self, ifindex: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        check_prefix(addr, prefix_len, "add address", ifindex)?;
        let mut req = self.handle.address().add(ifindex, addr, prefix_len);
        if addr.is_ipv6() {
            // Without NODAD the VIP stays tentative (unusable) for a second or more.
            let msg = req.message_mut();
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(nl_err(
                e,
                format!("netlink: add address {addr}/{prefix_len} to ifindex {ifindex}"),
            )),
        }
    }

    /// Remove it; already absent is success.
    pub async fn del_address(&self, ifindex: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        check_prefix(addr, prefix_len, "delete address", ifindex)?;
        let msg = match addr {
            IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(ifindex)
                .address(a, prefix_len)
                .build(),
            IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(ifindex)
                .address(a, prefix_len)
                .build(),
        };
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            // EADDRNOTAVAIL is what both families answer for an absent address.
            Err(e)
                if matches!(
                    errno(&e),
                    Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ESRCH)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(nl_err(
                e,
                format!("netlink: delete address {addr}/{prefix_len} from ifindex {ifindex}"),
            )),
        }
    }
}
