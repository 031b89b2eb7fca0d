//! The root-only Unix control socket: one JSON request line in, one JSON response line out.
//!
//! The socket file is created mode 0600 and every connection's peer credentials are checked
//! (root or the daemon's own uid), so file permissions are not the only guard. Requests are
//! bounded in size and time; a malformed one gets an error answer and is counted.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::events::EventLog;
use crate::status::StatusReport;

/// Longest request line accepted; requests are tiny.
const MAX_REQUEST: usize = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// The kept events, then (with `follow`) every new one, one JSON object per line.
    Events {
        #[serde(default)]
        follow: bool,
    },
    /// Quorum mode: set or clear a node's standby flag through the Raft log.
    Standby {
        node: String,
        standby: bool,
    },
    /// Quorum mode: prefer `node` for `group` (a graceful move), or clear the preference.
    Move {
        group: String,
        node: Option<String>,
    },
    /// Quorum mode: add a member through a Raft membership change. `address` is an IP (the
    /// cluster's `raft_port` is used) or an IP:port.
    NodeAdd {
        name: String,
        address: String,
        role: tandem_quorum::MemberRole,
    },
    /// Quorum mode: remove a member through a Raft membership change.
    NodeRemove {
        name: String,
    },
    /// An operator's `tandem fence NODE` ran: keep it in the fence history (the Raft log in
    /// quorum mode, the daemon's own otherwise).
    RecordFence {
        record: tandem_quorum::FenceRecord,
    },
}

impl Request {
    /// How long the client waits for the answer: a new member may need a while to catch up
    /// before it becomes a voter.
    fn answer_within(&self) -> Duration {
        match self {
            Request::NodeAdd { .. } | Request::NodeRemove { .. } => Duration::from_secs(60),
            _ => IO_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
    /// A write through the Raft log: where it was committed (index, term).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<(u64, u64)>,
}

impl Response {
    pub fn error(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(msg.into()),
            status: None,
            committed: None,
        }
    }
}

/// A request handed to the event loop, with the channel for its answer.
pub(crate) struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to the control socket {path}: {source} (is `tandem run` running, and are you root?)")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: unreadable answer: {source}")]
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the daemon refused the request: {0}")]
    Refused(String),
}

/// Send one request and wait for its answer (used by the CLI).
pub fn request(path: &Path, req: &Request) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_owned(),
        source,
    };
    let stream = send(path, req, Some(req.answer_within()))?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    let resp: Response = serde_json::from_str(&answer).map_err(|source| ClientError::Decode {
        path: path.to_owned(),
        source,
    })?;
    if !resp.ok {
        return Err(ClientError::Refused(
            resp.error.unwrap_or_else(|| "no reason given".into()),
        ));
    }
    Ok(resp)
}

/// Bind the control socket: parent directory created, stale socket replaced, mode 0600.
pub(crate) fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Create with a restrictive umask so there is no window where the socket is open to all.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = listener?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accept connections forever, forwarding requests to the event loop.
pub(crate) async fn serve(
    listener: UnixListener,
    to_loop: mpsc::Sender<Pending>,
    events: EventLog,
) {
    let my_uid = nix::unistd::Uid::effective().as_raw();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let allowed = match stream.peer_cred() {
            Ok(cred) => cred.uid() == 0 || cred.uid() == my_uid,
            Err(_) => false,
        };
        let to_loop = to_loop.clone();
        let events = events.clone();
        tokio::spawn(handle(stream, allowed, to_loop, events));
    }
}

async fn handle(
    stream: UnixStream,
    allowed: bool,
    to_loop: mpsc::Sender<Pending>,
    events: EventLog,
) {
    let (rd, mut wr) = stream.into_split();
    let mut reader = TokioBufReader::new(rd).take(MAX_REQUEST as u64);
    let mut line = String::new();
    let request = if !allowed {
        Err(Response::error(
            "permission denied: the control socket is for root only",
        ))
    } else {
        match tokio::time::timeout(IO_TIMEOUT, reader.read_line(&mut line)).await {
            Err(_) => Err(Response::error("no request within 5 s")),
            Ok(Err(e)) => Err(Response::error(format!("unreadable request: {e}"))),
            Ok(Ok(_)) if !line.ends_with('\n') => Err(Response::error(format!(
                "request too long or not newline-terminated (limit {MAX_REQUEST} bytes)"
            ))),
            Ok(Ok(_)) => serde_json::from_str::<Request>(&line)
                .map_err(|e| Response::error(format!("malformed request: {e}"))),
        }
    };
    let resp = match request {
        Err(resp) => resp,
        Ok(Request::Events { follow }) => {
            stream_events(&mut wr, &events, follow).await;
            return;
        }
        Ok(request) => {
            let (tx, rx) = oneshot::channel();
            if to_loop.send(Pending { request, reply: tx }).await.is_err() {
                Response::error("daemon is shutting down")
            } else {
                rx.await
                    .unwrap_or_else(|_| Response::error("daemon is shutting down"))
            }
        }
    };
    let mut out = serde_json::to_vec(&resp).expect("responses always serialize");
    out.push(b'\n');
    let _ = tokio::time::timeout(IO_TIMEOUT, wr.write_all(&out)).await;
}

/// Write the kept events, then, when following, every new one until the client goes away.
async fn stream_events(wr: &mut tokio::net::unix::OwnedWriteHalf, events: &EventLog, follow: bool) {
    let (backlog, mut rx) = events.subscribe();
    for line in backlog {
        if write_line(wr, &line).await.is_err() {
            return;
        }
    }
    if !follow {
        return;
    }
    loop {
        match rx.recv().await {
            Ok(line) => {
                if write_line(wr, &line).await.is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                let note = format!("{{\"type\":\"lagged\",\"missed\":{n}}}");
                if write_line(wr, &note).await.is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn write_line(wr: &mut tokio::net::unix::OwnedWriteHalf, line: &str) -> std::io::Result<()> {
    // A client that stops reading must not hold a task forever.
    tokio::time::timeout(IO_TIMEOUT, async {
        wr.write_all(line.as_bytes()).await?;
        wr.write_all(b"\n").await
    })
    .await
    .map_err(|_| std::io::Error::other("client stopped reading"))?
}

/// Open an event stream (used by the CLI): returns the reader of JSON lines.
pub fn events(path: &Path, follow: bool) -> Result<BufReader<StdUnixStream>, ClientError> {
    // No read timeout: a followed stream is quiet for as long as nothing happens.
    Ok(BufReader::new(send(
        path,
        &Request::Events { follow },
        None,
    )?))
}

/// Connect and send one request line; the stream is left for reading the answer.
fn send(
    path: &Path,
    req: &Request,
    read_timeout: Option<Duration>,
) -> Result<StdUnixStream, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_owned(),
        source,
    };
    let mut stream = StdUnixStream::connect(path).map_err(|source| ClientError::Connect {
        path: path.to_owned(),
        source,
    })?;
    stream.set_read_timeout(read_timeout).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let mut line = serde_json::to_string(req).expect("requests always serialize");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    Ok(stream)
}
