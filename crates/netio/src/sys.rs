//! Small libc helpers shared by the socket types.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

/// `setsockopt` for the options socket2 does not cover (ip_mreqn for IP_MULTICAST_IF,
/// IPV6_RECVPKTINFO).
pub(crate) fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(crate) fn in_addr(a: Ipv4Addr) -> libc::in_addr {
    // s_addr is in network byte order: the octets in memory order.
    libc::in_addr {
        s_addr: u32::from_ne_bytes(a.octets()),
    }
}

pub(crate) fn in6_addr(a: Ipv6Addr) -> libc::in6_addr {
    libc::in6_addr {
        s6_addr: a.octets(),
    }
}

/// Aligned scratch space for control messages; lives on the stack so that sending and
/// receiving allocate nothing. 128 bytes hold IPV6_PKTINFO + IPV6_HOPLIMIT with room to spare.
#[repr(C, align(8))]
pub(crate) struct CmsgBuf(pub [u8; 128]);

impl CmsgBuf {
    pub(crate) fn new() -> Self {
        CmsgBuf([0; 128])
    }
}

/// Attach one control message holding `value` to `msg`, whose control buffer is `buf`.
///
/// # Safety
/// `msg.msg_control` must point to `buf`, which must outlive the use of `msg`.
pub(crate) unsafe fn put_single_cmsg<T>(
    msg: &mut libc::msghdr,
    buf: &mut CmsgBuf,
    level: libc::c_int,
    ty: libc::c_int,
    value: T,
) {
    let space = libc::CMSG_SPACE(mem::size_of::<T>() as u32) as usize;
    assert!(space <= buf.0.len(), "control buffer too small");
    msg.msg_control = buf.0.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let cmsg = libc::CMSG_FIRSTHDR(msg);
    (*cmsg).cmsg_level = level;
    (*cmsg).cmsg_type = ty;
    (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<T>() as u32) as _;
    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<T>(), value);
}

/// Return value of a byte-count syscall as a Result.
pub(crate) fn cvt_len(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
