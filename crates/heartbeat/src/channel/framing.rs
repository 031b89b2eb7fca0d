//! Byte-stream framing for the stream transports.
//!
//! * TCP: `u16` big-endian length, then the frame. A length of 0 or above
//!   [`MAX_FRAME_LEN`] is a protocol error and the connection is closed (TCP never loses
//!   sync by itself, so there is nothing to resynchronise).
//! * Serial: `0x00 · COBS(frame · CRC-32/IEEE little-endian) · 0x00`. COBS (Cheshire &
//!   Baker, 1999) removes every zero byte from the body, so `0x00` only ever delimits
//!   frames: after line noise or a cut, the receiver is back in sync at the next zero. The
//!   leading zero ends any garbage before the frame, so garbage costs at most the frame it
//!   hit. The CRC tells line noise ([`FramingError::BadCrc`]) from a wrong cluster key
//!   (which the core reports as bad authentication).

use crate::wire::MAX_FRAME_LEN;

/// Bytes of CRC after the frame inside the COBS body.
const CRC_LEN: usize = 4;
/// Longest COBS body a valid frame can produce (one code byte per 254 data bytes, plus one).
pub const MAX_SERIAL_BODY: usize = MAX_FRAME_LEN + CRC_LEN + (MAX_FRAME_LEN + CRC_LEN) / 254 + 2;

/// What was wrong with a delimited serial chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// Not valid COBS.
    BadCobs,
    /// Shorter than a CRC.
    TooShort,
    /// CRC mismatch: line noise, or a frame cut by garbage.
    BadCrc,
    /// More than [`MAX_SERIAL_BODY`] bytes without a delimiter.
    Oversized,
    /// TCP length prefix 0 or above [`MAX_FRAME_LEN`].
    BadLength,
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FramingError::BadCobs => "invalid COBS encoding",
            FramingError::TooShort => "frame shorter than its CRC",
            FramingError::BadCrc => "CRC mismatch",
            FramingError::Oversized => "oversized frame",
            FramingError::BadLength => "bad length prefix",
        })
    }
}

/// CRC-32/IEEE (the Ethernet / zlib polynomial, reflected, init and final XOR all ones).
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// COBS-encode `data`, appending to `out` (no delimiter).
pub fn cobs_encode(data: &[u8], out: &mut Vec<u8>) {
    let mut code_at = out.len();
    out.push(0);
    let mut code: u8 = 1;
    for &b in data {
        if b == 0 {
            out[code_at] = code;
            code_at = out.len();
            out.push(0);
            code = 1;
        } else {
            out.push(b);
            code += 1;
            if code == 0xff {
                out[code_at] = code;
                code_at = out.len();
                out.push(0);
                code = 1;
            }
        }
    }
    out[code_at] = code;
}

/// Decode one COBS body (without delimiters); `None` if it is not valid COBS.
pub fn cobs_decode(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let code = data[i];
        if code == 0 {
            return None;
        }
        i += 1;
        for _ in 1..code {
            let &b = data.get(i)?;
            if b == 0 {
                return None;
            }
            out.push(b);
            i += 1;
        }
        if code < 0xff && i < data.len() {
            out.push(0);
        }
    }
    Some(out)
}

/// A frame as it goes on the serial line: `0x00 · COBS(frame · CRC-32 LE) · 0x00`.
pub fn encode_serial(frame: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(frame.len() + CRC_LEN);
    body.extend_from_slice(frame);
    body.extend_from_slice(&crc32(frame).to_le_bytes());
    let mut out = Vec::with_capacity(body.len() + body.len() / 254 + 4);
    out.push(0);
    cobs_encode(&body, &mut out);
    out.push(0);
    out
}

fn decode_serial_body(body: &[u8]) -> Result<Vec<u8>, FramingError> {
    let mut data = cobs_decode(body).ok_or(FramingError::BadCobs)?;
    if data.len() < CRC_LEN {
        return Err(FramingError::TooShort);
    }
    let split = data.len() - CRC_LEN;
    let mut crc = [0u8; CRC_LEN];
    crc.copy_from_slice(&data[split..]);
    data.truncate(split);
    if crc32(&data) != u32::from_le_bytes(crc) {
        return Err(FramingError::BadCrc);
    }
    Ok(data)
}

/// Streaming decoder for the serial line: feed it whatever `read` returned.
#[derive(Debug, Default)]
pub struct SerialDecoder {
    buf: Vec<u8>,
    /// Skipping an oversized chunk until the next delimiter.
    skipping: bool,
}

impl SerialDecoder {
    pub fn new() -> SerialDecoder {
        SerialDecoder::default()
    }

    /// Feed bytes; `on_frame` gets every complete chunk, decoded or with its error. Empty
    /// chunks (two delimiters in a row) are not reported.
    pub fn push(&mut self, bytes: &[u8], mut on_frame: impl FnMut(Result<Vec<u8>, FramingError>)) {
        for &b in bytes {
            if b == 0 {
                if self.skipping {
                    self.skipping = false;
                } else if !self.buf.is_empty() {
                    on_frame(decode_serial_body(&self.buf));
                }
                self.buf.clear();
            } else if !self.skipping {
                if self.buf.len() >= MAX_SERIAL_BODY {
                    self.buf.clear();
                    self.skipping = true;
                    on_frame(Err(FramingError::Oversized));
                } else {
                    self.buf.push(b);
                }
            }
        }
    }
}

/// A frame with its TCP length prefix.
pub fn encode_length_prefixed(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 2);
    // Frames are at most MAX_FRAME_LEN (< u16::MAX); a longer one gets a prefix the
    // receiver refuses rather than a silently wrapped one.
    let len = u16::try_from(frame.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(frame);
    out
}

/// Streaming decoder for length-prefixed frames. After an error the stream is unusable
/// (the caller closes the connection).
#[derive(Debug, Default)]
pub struct LengthPrefixedDecoder {
    buf: Vec<u8>,
}

impl LengthPrefixedDecoder {
    pub fn new() -> LengthPrefixedDecoder {
        LengthPrefixedDecoder::default()
    }

    /// Feed bytes; complete frames go to `on_frame`. Stops at the first bad length.
    pub fn push(
        &mut self,
        bytes: &[u8],
        mut on_frame: impl FnMut(Vec<u8>),
    ) -> Result<(), FramingError> {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        let result = loop {
            let Some(prefix) = self.buf.get(at..at + 2) else {
                break Ok(());
            };
            let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
            if len == 0 || len > MAX_FRAME_LEN {
                break Err(FramingError::BadLength);
            }
            let Some(frame) = self.buf.get(at + 2..at + 2 + len) else {
                break Ok(());
            };
            on_frame(frame.to_vec());
            at += 2 + len;
        };
        self.buf.drain(..at);
        if result.is_err() {
            self.buf.clear();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn cobs_known_vectors() {
        // From the COBS paper / Wikipedia examples.
        let cases: &[(&[u8], &[u8])] = &[
            (&[0x00], &[0x01, 0x01]),
            (&[0x00, 0x00], &[0x01, 0x01, 0x01]),
            (&[0x11, 0x22, 0x00, 0x33], &[0x03, 0x11, 0x22, 0x02, 0x33]),
            (&[0x11, 0x22, 0x33, 0x44], &[0x05, 0x11, 0x22, 0x33, 0x44]),
            (&[0x11, 0x00, 0x00, 0x00], &[0x02, 0x11, 0x01, 0x01, 0x01]),
        ];
        for (raw, enc) in cases {
            let mut out = Vec::new();
            cobs_encode(raw, &mut out);
            assert_eq!(&out[..], *enc, "{raw:02x?}");
            assert_eq!(cobs_decode(enc).as_deref(), Some(*raw));
        }
        // 254 non-zero bytes: one full block.
        let raw: Vec<u8> = (1..=254u8).collect();
        let mut out = Vec::new();
        cobs_encode(&raw, &mut out);
        assert_eq!(out[0], 0xff);
        assert!(!out.contains(&0));
        assert_eq!(cobs_decode(&out), Some(raw));
        assert_eq!(cobs_decode(&[0x05, 0x11]), None);
        assert_eq!(cobs_decode(&[0x03, 0x11, 0x00]), None);
    }

    #[test]
    fn serial_resyncs_after_garbage() {
        let frames: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i, 0, 0xff, i, 7, 0]).collect();
        let mut stream = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            if i == 2 {
                // Garbage without a zero, then garbage inside the third frame.
                stream.extend_from_slice(&[0x55; 40]);
                let enc = encode_serial(f);
                stream.extend_from_slice(&enc[..4]);
                stream.extend_from_slice(&[0xAA, 0x01, 0x02]);
                stream.extend_from_slice(&enc[4..]);
            } else {
                stream.extend_from_slice(&encode_serial(f));
            }
        }
        let mut dec = SerialDecoder::new();
        let mut good = Vec::new();
        let mut bad = 0;
        // Feed in odd-sized pieces.
        for chunk in stream.chunks(7) {
            dec.push(chunk, |r| match r {
                Ok(f) => good.push(f),
                Err(_) => bad += 1,
            });
        }
        assert_eq!(
            good,
            vec![
                frames[0].clone(),
                frames[1].clone(),
                frames[3].clone(),
                frames[4].clone()
            ]
        );
        assert!(bad >= 1);
    }

    #[test]
    fn serial_oversized_is_skipped() {
        let mut dec = SerialDecoder::new();
        let mut results = Vec::new();
        dec.push(&vec![1u8; MAX_SERIAL_BODY + 100], |r| results.push(r));
        dec.push(&encode_serial(b"ok"), |r| results.push(r));
        assert_eq!(
            results,
            vec![Err(FramingError::Oversized), Ok(b"ok".to_vec())]
        );
    }

    #[test]
    fn length_prefixed_stream() {
        let mut dec = LengthPrefixedDecoder::new();
        let mut got = Vec::new();
        let mut stream = encode_length_prefixed(b"hello");
        stream.extend(encode_length_prefixed(b"w"));
        for b in &stream {
            dec.push(std::slice::from_ref(b), |f| got.push(f)).unwrap();
        }
        assert_eq!(got, vec![b"hello".to_vec(), b"w".to_vec()]);
        assert_eq!(dec.push(&[0, 0], |_| {}), Err(FramingError::BadLength));
        let mut dec = LengthPrefixedDecoder::new();
        assert_eq!(
            dec.push(&[0xff, 0xff, 1], |_| {}),
            Err(FramingError::BadLength)
        );
    }

    proptest! {
        #[test]
        fn cobs_round_trip(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let mut enc = Vec::new();
            cobs_encode(&data, &mut enc);
            prop_assert!(!enc.contains(&0));
            prop_assert!(enc.len() <= data.len() + data.len() / 254 + 1);
            prop_assert_eq!(cobs_decode(&enc), Some(data));
        }

        #[test]
        fn serial_decoder_never_panics_and_recovers(
            garbage in proptest::collection::vec(any::<u8>(), 0..3000),
            frame in proptest::collection::vec(any::<u8>(), 1..MAX_FRAME_LEN),
        ) {
            let mut dec = SerialDecoder::new();
            dec.push(&garbage, |_| {});
            let mut got = Vec::new();
            dec.push(&encode_serial(&frame), |r| if let Ok(f) = r { got.push(f) });
            // Whatever came before, the frame after it decodes (the CRC makes a false
            // positive from the garbage tail astronomically unlikely, and the leading
            // delimiter ends the garbage).
            prop_assert_eq!(got.last(), Some(&frame));
        }

        #[test]
        fn length_prefixed_decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..4000)) {
            let mut dec = LengthPrefixedDecoder::new();
            let _ = dec.push(&data, |f| assert!(!f.is_empty() && f.len() <= MAX_FRAME_LEN));
        }
    }
}
