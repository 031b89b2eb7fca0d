//! Serial-line shell: a tty in raw mode carrying `0x00 · COBS(frame · CRC-32) · 0x00`.
//!
//! The device is opened `O_RDWR | O_NOCTTY | O_NONBLOCK`, put in raw mode with
//! `cfmakeraw`, given the configured speed (`cfsetspeed`), `CLOCAL | CREAD`, no hardware
//! flow control, and flushed. A reader task feeds every byte to a [`SerialDecoder`] (line
//! noise costs at most the frame it hits; see [`super::framing`]); a writer task writes
//! whole frames, dropping frames older than one interval and giving up on a frame after
//! `write_timeout` (a half-written frame is just garbage the peer's decoder skips).
//! Read errors (e.g. `EIO` once the other side of a pty is gone) are counted and retried
//! every 100 ms; they never end the channel.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::termios::{self, BaudRate, ControlFlags, SetArg, SpecialCharacterIndices};
use tokio::io::unix::AsyncFd;
use tokio::time::timeout;

use super::framing::{encode_serial, SerialDecoder};
use super::{runtime_check, spawn_attached, ChannelIo, Counters, Deliverer, Outbound};

/// Timing knobs of the serial shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialOptions {
    pub write_timeout: Duration,
    /// Frames older than this are not written (one interval).
    pub stale_after: Duration,
}

impl SerialOptions {
    pub fn for_timing(interval: Duration, channel_timeout: Duration) -> SerialOptions {
        SerialOptions {
            write_timeout: channel_timeout,
            stale_after: interval,
        }
    }
}

/// The termios speed for a baud rate, `None` if unsupported.
pub fn baud_rate(baud: u32) -> Option<BaudRate> {
    Some(match baud {
        1200 => BaudRate::B1200,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19_200 => BaudRate::B19200,
        38_400 => BaudRate::B38400,
        57_600 => BaudRate::B57600,
        115_200 => BaudRate::B115200,
        230_400 => BaudRate::B230400,
        460_800 => BaudRate::B460800,
        500_000 => BaudRate::B500000,
        576_000 => BaudRate::B576000,
        921_600 => BaudRate::B921600,
        1_000_000 => BaudRate::B1000000,
        1_152_000 => BaudRate::B1152000,
        1_500_000 => BaudRate::B1500000,
        2_000_000 => BaudRate::B2000000,
        2_500_000 => BaudRate::B2500000,
        3_000_000 => BaudRate::B3000000,
        3_500_000 => BaudRate::B3500000,
        4_000_000 => BaudRate::B4000000,
        _ => return None,
    })
}

/// Put an open tty in raw mode at `baud`.
pub fn configure_raw(file: &File, baud: u32) -> io::Result<()> {
    let speed = baud_rate(baud).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsupported serial speed {baud}"),
        )
    })?;
    let mut t = termios::tcgetattr(file)?;
    termios::cfmakeraw(&mut t);
    termios::cfsetspeed(&mut t, speed)?;
    t.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD;
    t.control_flags &= !ControlFlags::CRTSCTS;
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    termios::tcsetattr(file, SetArg::TCSANOW, &t)?;
    termios::tcflush(file, termios::FlushArg::TCIOFLUSH)?;
    Ok(())
}

/// Open the serial channel. Must be called inside a tokio runtime.
pub fn open(
    label: String,
    device: &Path,
    baud: u32,
    options: SerialOptions,
) -> io::Result<ChannelIo> {
    runtime_check("serial channel")?;
    let ctx = |e: io::Error, step: &str| {
        io::Error::new(
            e.kind(),
            format!("serial {}: {step}: {e}", device.display()),
        )
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(device)
        .map_err(|e| ctx(e, "open"))?;
    configure_raw(&file, baud).map_err(|e| ctx(e, "termios"))?;
    // SAFETY: the File owns its descriptor and keeps it open until the AsyncFd (its owner)
    // is dropped; as_raw_fd always returns that same descriptor.
    let fd = unsafe { AsyncFd::register(file) }
        .map_err(|e| ctx(io::Error::from(e), "register with tokio"))?;
    let fd = Arc::new(fd);
    let (mut io, mut end) = ChannelIo::pair(label);
    let deliver = end.deliverer();
    spawn_attached(&mut io, reader(fd.clone(), deliver));
    let counters = end.counters.clone();
    spawn_attached(&mut io, async move {
        while let Some(out) = end.outbound.recv().await {
            write_frame(&fd, &out, &counters, options).await;
        }
    });
    Ok(io)
}

async fn reader(fd: Arc<AsyncFd<File>>, deliver: Deliverer) {
    let counters = deliver.counters.clone();
    let mut decoder = SerialDecoder::new();
    let mut buf = vec![0u8; super::RECV_BUF];
    loop {
        let mut guard = match fd.readable().await {
            Ok(g) => g,
            Err(e) => {
                counters.error(&counters.receive_errors, format_args!("poll: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match guard.try_io(|f| f.get_ref().read(&mut buf)) {
            Err(_would_block) => continue,
            Ok(Ok(0)) => {
                // End of file on a tty: the other side hung up. Wait for it to come back.
                guard.clear_ready();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Ok(n)) => decoder.push(&buf[..n], |r| match r {
                Ok(frame) => deliver.deliver(frame),
                Err(e) => counters.error(&counters.framing_errors, e),
            }),
            Ok(Err(e)) => {
                guard.clear_ready();
                counters.error(&counters.receive_errors, format_args!("read: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn write_frame(
    fd: &AsyncFd<File>,
    out: &Outbound,
    counters: &Counters,
    options: SerialOptions,
) {
    if out.is_stale(options.stale_after) {
        Counters::bump(&counters.stale_dropped);
        return;
    }
    let bytes = encode_serial(&out.frame);
    match timeout(options.write_timeout, write_all(fd, &bytes)).await {
        Ok(Ok(())) => Counters::bump(&counters.frames_sent),
        Ok(Err(e)) => {
            counters.error(&counters.send_errors, format_args!("write: {e}"));
            // EIO on a hung-up pty repeats at once: pace the retries.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(_) => counters.error(&counters.send_errors, "write: timed out (line stalled)"),
    }
}

async fn write_all(fd: &AsyncFd<File>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let mut guard = fd.writable().await?;
        match guard.try_io(|f| f.get_ref().write(bytes)) {
            Ok(Ok(0)) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote 0 bytes")),
            Ok(Ok(n)) => bytes = &bytes[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}
