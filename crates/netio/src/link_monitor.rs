//! Link state changes (RTMGRP_LINK), for tracking interfaces and for faulting an instance
//! whose own interface loses its link.
//!
//! Netlink multicast rather than polling: keepalived reacts to a link going down the moment
//! the kernel reports it, and so must we.

use std::io;
use std::task::{Context, Poll};

use futures::StreamExt;
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::sys::{AsyncSocket, SocketAddr};

use crate::netlink::link_facts;

/// One interface's link state as the kernel just reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub index: u32,
    pub name: String,
    /// Administratively up and carrier present; false when the link was deleted.
    pub up: bool,
}

type Messages =
    futures::channel::mpsc::UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// Subscription to link changes in the caller's network namespace.
pub struct LinkMonitor {
    messages: Messages,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LinkMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LinkMonitor {
    /// Must be called inside a tokio runtime.
    pub fn new() -> io::Result<Self> {
        let rt = tokio::runtime::Handle::try_current().map_err(|e| {
            io::Error::other(format!("LinkMonitor::new outside a tokio runtime: {e}"))
        })?;
        let (mut conn, _handle, messages) = rtnetlink::new_connection()
            .map_err(|e| io::Error::new(e.kind(), format!("open rtnetlink socket: {e}")))?;
        conn.socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, rtnetlink::constants::RTMGRP_LINK))
            .map_err(|e| io::Error::new(e.kind(), format!("subscribe to link events: {e}")))?;
        let task = rt.spawn(conn);
        Ok(LinkMonitor { messages, task })
    }

    /// Next link event; `Ready(None)` if the netlink connection ended.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<LinkEvent>> {
        loop {
            match self.messages.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some((msg, _))) => {
                    let (link, deleted) = match msg.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => (l, false),
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => (l, true),
                        _ => continue,
                    };
                    let (name, _mac, up) = link_facts(&link);
                    return Poll::Ready(Some(LinkEvent {
                        index: link.header.index,
                        name,
                        up: up && !deleted,
                    }));
                }
            }
        }
    }

    pub async fn next(&mut self) -> Option<LinkEvent> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}
