//! `vrrp-inject`: send hand-built (and deliberately broken) VRRP adverts from a lab namespace.
//!
//! The bytes are laid out here by hand from RFC 3768 / RFC 5798 rather than with
//! `tandem-vrrp`'s encoder, so the end-to-end tests check tandem's decoder against an
//! independent reading of the RFCs instead of against itself.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{bail, Context};
use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};

#[derive(Parser)]
#[command(about = "Send one or more crafted VRRP adverts (IPv4)")]
struct Args {
    /// VRRP version (2 or 3); also sets the ver/type byte unless --ver-type is given.
    #[arg(long, default_value_t = 3)]
    version: u8,
    /// Raw ver/type byte override (e.g. 0x32 for a bad type).
    #[arg(long, value_parser = parse_u8)]
    ver_type: Option<u8>,
    #[arg(long)]
    vrid: u8,
    #[arg(long, default_value_t = 100)]
    priority: u8,
    /// Advert interval: seconds for v2, centiseconds for v3.
    #[arg(long, default_value_t = 1)]
    advert_int: u16,
    /// Address carried in the advert (repeatable).
    #[arg(long = "addr", required = true)]
    addrs: Vec<Ipv4Addr>,
    /// Override the address count field.
    #[arg(long)]
    count_field: Option<u8>,
    /// v2 simple-text password (sets auth type 1).
    #[arg(long)]
    auth_pass: Option<String>,
    /// Source address (must be ours; used for the v3 pseudo-header checksum).
    #[arg(long)]
    src: Ipv4Addr,
    #[arg(long, default_value = "224.0.0.18")]
    dst: Ipv4Addr,
    /// TTL to send with (RFC: 255).
    #[arg(long, default_value_t = 255)]
    ttl: u32,
    /// Flip the checksum.
    #[arg(long)]
    bad_checksum: bool,
    /// Send only the first N bytes.
    #[arg(long)]
    truncate: Option<usize>,
    /// How many copies to send.
    #[arg(long, default_value_t = 1)]
    count: u32,
}

fn parse_u8(s: &str) -> Result<u8, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u8::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| e.to_string())
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for c in chunks {
        for &b in c.iter() {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn build(a: &Args) -> anyhow::Result<Vec<u8>> {
    let mut p = Vec::new();
    let vt = a.ver_type.unwrap_or(match a.version {
        2 => 0x21,
        3 => 0x31,
        v => bail!("--version must be 2 or 3, not {v}"),
    });
    p.push(vt);
    p.push(a.vrid);
    p.push(a.priority);
    p.push(a.count_field.unwrap_or(a.addrs.len() as u8));
    if a.version == 2 {
        p.push(if a.auth_pass.is_some() { 1 } else { 0 });
        p.push(a.advert_int as u8);
    } else {
        let v = a.advert_int & 0x0fff;
        p.extend_from_slice(&v.to_be_bytes());
    }
    p.extend_from_slice(&[0, 0]);
    for ad in &a.addrs {
        p.extend_from_slice(&ad.octets());
    }
    if a.version == 2 {
        let mut auth = [0u8; 8];
        if let Some(pw) = &a.auth_pass {
            let b = pw.as_bytes();
            let n = b.len().min(8);
            auth[..n].copy_from_slice(&b[..n]);
        }
        p.extend_from_slice(&auth);
    }
    let ck = if a.version == 2 {
        checksum(&[&p])
    } else {
        let len = (p.len() as u16).to_be_bytes();
        let pseudo = [
            &a.src.octets()[..],
            &a.dst.octets()[..],
            &[0, 112],
            &len[..],
        ]
        .concat();
        checksum(&[&pseudo, &p])
    };
    let ck = if a.bad_checksum { ck ^ 0x5a5a } else { ck };
    p[6..8].copy_from_slice(&ck.to_be_bytes());
    if let Some(n) = a.truncate {
        p.truncate(n);
    }
    Ok(p)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let pkt = build(&a)?;
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))
        .context("raw socket (needs root / CAP_NET_RAW)")?;
    s.bind(&SocketAddr::new(IpAddr::V4(a.src), 0).into())
        .with_context(|| format!("binding to {}", a.src))?;
    s.set_ttl_v4(a.ttl)?;
    s.set_multicast_ttl_v4(a.ttl)?;
    s.set_multicast_if_v4(&a.src)?;
    for _ in 0..a.count {
        s.send_to(&pkt, &SocketAddr::new(IpAddr::V4(a.dst), 0).into())
            .context("send")?;
    }
    Ok(())
}
