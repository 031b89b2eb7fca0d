//! VRRP codec, smoltcp style. API CONTRACT (bodies to be written).

/// VRRP version on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Version {
    V2,
    V3,
}

/// VRRPv2 authentication (RFC 3768 §5.3.6). Type 2 (IP AH) is historic and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    /// Simple text password, zero-padded to 8 bytes.
    Simple([u8; 8]),
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
