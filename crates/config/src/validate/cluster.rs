//! `[cluster]` (the members, the key, the lease timing and the Raft port), `[[heartbeat]]` (the
//! channels nodes see each other on) and what quorum mode needs of them. The heartbeat rules
//! are at least as strict as tandem-heartbeat's `ClusterSpec::validate` and
//! `ChannelSpec::validate`, so a config accepted here never fails when the daemon builds its
//! heartbeat from it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml_edit::Value;

use super::{
    check_ifname, check_name, plain_ip, quoted_list, section_tables, Ctx, KeySpec, NodeOut, Section,
};
use crate::duration::format_duration;
use crate::suggest::did_you_mean;
use crate::tree::{value_type_name, Field, Node, Span, TableRef};
use crate::{
    Cluster, ClusterNode, Heartbeat, HeartbeatKind, Role, Unfence, DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_LEASE, DEFAULT_RAFT_PORT, DEFAULT_SERIAL_BAUD,
    MAX_HEARTBEATS, MAX_LEASE, MIN_HEARTBEAT_INTERVAL, MIN_LEASE, MIN_LEASE_RENEW,
    SERIAL_BAUD_RATES,
};

/// tandem-heartbeat's `wire::MAX_NAME_LEN`: cluster and node names in a frame.
const MAX_NAME_LEN: usize = 64;
/// tandem-heartbeat's wire sizes, for the frame-size rule of `ClusterSpec::validate`: the fixed
/// header, the HMAC tag, one echo entry without its name, the largest frame and the most echo
/// entries a frame carries (two per peer).
const HEADER_LEN: usize = 34;
const TAG_LEN: usize = 32;
const ECHO_FIXED_LEN: usize = 1 + 8 + 8 + 4;
const MAX_FRAME_LEN: usize = 1400;
const MAX_ECHOES: usize = 32;

/// A Raft majority that survives one failure.
const MIN_QUORUM_MEMBERS: usize = 3;

const CLUSTER_KEYS: KeySpec = KeySpec {
    valid: &[
        "name",
        "key_file",
        "nodes",
        "lease",
        "lease_renew",
        "lease_margin",
        "raft_port",
        "unfence",
    ],
    unsupported: &[],
    notes: &[
        ("key", KEY_NOTE),
        ("authkey", KEY_NOTE),
        ("secret", KEY_NOTE),
        ("members", NODES_NOTE),
        ("peers", NODES_NOTE),
    ],
};

const KEY_NOTE: &str =
    "the key is read from a file, never written in the config: key_file = \"/etc/tandem/cluster.key\"";
const NODES_NOTE: &str =
    "write nodes = [{ name = \"lb1\", address = \"10.0.0.1\" }, { name = \"lb2\", address = \"10.0.0.2\" }]";

const NODE_ENTRY_KEYS: KeySpec = KeySpec {
    valid: &["name", "address", "role"],
    unsupported: &[],
    notes: &[
        ("addr", "write address = \"10.0.0.1\""),
        ("ip", "write address = \"10.0.0.1\""),
    ],
};

/// What the heartbeat and quorum rules need from `[cluster]`.
pub(super) struct ClusterOut {
    pub(super) cluster: Option<Cluster>,
    /// This node's address and every other node's, when all are known.
    addresses: Option<Addresses>,
    /// How many entries `nodes` has, valid or not; `None` when it is missing or not a list.
    member_count: Option<usize>,
    /// Some entry says role = "arbiter": the Raft layer runs.
    pub(super) has_arbiter: bool,
    /// `raft_port` and where it is written (`None`: the default).
    raft_port: Option<(u16, Option<Span>)>,
}

struct Addresses {
    own: IpAddr,
    /// (name, address) of every other node, in config order.
    peers: Vec<(String, IpAddr)>,
}

/// Sections reported as misspelt: their absence is that same mistake.
pub(super) struct Misspelt {
    pub(super) cluster: bool,
    pub(super) heartbeat: bool,
}

/// One `nodes` entry as far as it could be read.
struct EntryOut {
    /// The name, if valid, and where it is.
    name: Option<(String, Option<Span>)>,
    address: Option<(IpAddr, Option<Span>)>,
    role: Option<Role>,
    /// Where the entry is.
    span: Option<Span>,
}

pub(super) fn cluster_section<'a>(
    ctx: &mut Ctx<'a>,
    field: &Field<'a>,
    node: &NodeOut<'a>,
) -> ClusterOut {
    let failed = ClusterOut {
        cluster: None,
        addresses: None,
        member_count: None,
        has_arbiter: false,
        raft_port: None,
    };
    let Some(table) = field.node.as_table() else {
        let hint = match field.node {
            Node::TableArray(_) => "write [cluster] with single brackets: a node is in one cluster",
            _ => "write [cluster] on a line of its own, followed by its keys",
        };
        ctx.error(
            field.span(),
            format!(
                "cluster: expected a table, found {}",
                field.node.type_name()
            ),
            Some(hint.to_string()),
        );
        return failed;
    };
    let sec = Section::new(table, "[cluster]", field.key_span.clone());
    sec.check_keys(ctx, &CLUSTER_KEYS);

    let name = sec
        .required(ctx, "name", "name = \"edge\" (the same on every node)")
        .and_then(|f| {
            let s = ctx.string(f)?;
            (check_name(ctx, f, s, "cluster") && check_name_len(ctx, f.key, f.span(), s))
                .then(|| s.to_string())
        });
    let key_file = sec
        .required(
            ctx,
            "key_file",
            "key_file = \"/etc/tandem/cluster.key\" (the same key on every node)",
        )
        .and_then(|f| {
            let s = ctx.string(f)?;
            let problem = if s.is_empty() {
                Some("must not be empty".to_string())
            } else if !s.starts_with('/') {
                Some(format!("must be an absolute path, found {s:?}"))
            } else {
                None
            };
            match problem {
                Some(p) => {
                    ctx.error(
                        f.span(),
                        format!("key_file: {p}"),
                        Some(
                            "write the full path, like \"/etc/tandem/cluster.key\" (a file only \
                             root can read, the same on every node)"
                                .to_string(),
                        ),
                    );
                    None
                }
                None => Some((PathBuf::from(s), ctx.origin_at(&f.span()))),
            }
        });

    let nodes_field = sec.required(
        ctx,
        "nodes",
        "nodes = [{ name = \"lb1\", address = \"10.0.0.1\" }, { name = \"lb2\", address = \"10.0.0.2\" }] \
         (every member, this node included)",
    );
    let (entries, complete, member_count) = match nodes_field {
        Some(f) => node_entries(ctx, f),
        None => (Vec::new(), false, None),
    };
    let enough = member_count.is_some_and(|n| n >= 2);
    let nodes_ok = unique_nodes(ctx, &entries) && complete && enough;
    let has_arbiter = entries.iter().any(|e| e.role == Some(Role::Arbiter));
    let lease = lease_timing(ctx, &sec);
    let unfence = match sec.get("unfence") {
        None => Some(Unfence::Manual),
        Some(f) => ctx
            .choice(f, "unfence", &["manual", "auto"])
            .map(|u| match u {
                "auto" => Unfence::Auto,
                _ => Unfence::Manual,
            }),
    };
    let raft_port = match sec.get("raft_port") {
        None => Some((DEFAULT_RAFT_PORT, None)),
        Some(f) => ctx
            .int_in(
                f,
                1,
                65535,
                Some(&format!(
                    "the TCP port the Raft transport listens on at every member's address, the \
                     same on every node; the default is {DEFAULT_RAFT_PORT}"
                )),
            )
            .map(|p| (p as u16, f.span())),
    };

    // Rules that need every name: membership, role, frame size.
    let names: Option<Vec<&str>> = if complete && !entries.is_empty() {
        entries
            .iter()
            .map(|e| e.name.as_ref().map(|(n, _)| n.as_str()))
            .collect()
    } else {
        None
    };
    let mut member_ok = true;
    let mut own_index = None;
    if let (Some(names), Some((own, own_span))) = (&names, &node.name) {
        match names.iter().position(|n| n == own) {
            Some(i) => {
                own_index = Some(i);
                member_ok = same_role(ctx, node, &entries[i]);
            }
            None => {
                let guess = did_you_mean(own, names)
                    .map(|c| format!("did you mean \"{c}\"? "))
                    .unwrap_or_default();
                ctx.error(
                    own_span.clone(),
                    format!("name: {own:?} is not one of the [cluster] nodes"),
                    Some(format!(
                        "{guess}[cluster] nodes lists {}; every member, this node included, \
                         must be listed there",
                        quoted(names)
                    )),
                );
                member_ok = false;
            }
        }
    }
    let mut size_ok = true;
    if let (Some(names), Some(cluster_name), Some(f)) = (&names, &name, nodes_field) {
        size_ok = frame_fits(ctx, f, cluster_name, names);
    }

    let addresses = match (own_index, nodes_ok) {
        (Some(i), true) => {
            let addr = |e: &EntryOut| e.address.as_ref().map(|(a, _)| *a);
            let peers: Option<Vec<(String, IpAddr)>> = entries
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, e)| Some((e.name.as_ref()?.0.clone(), addr(e)?)))
                .collect();
            match (addr(&entries[i]), peers) {
                (Some(own), Some(peers)) => Some(Addresses { own, peers }),
                _ => None,
            }
        }
        _ => None,
    };

    let nodes: Option<Vec<ClusterNode>> = if nodes_ok && size_ok && member_ok {
        entries
            .iter()
            .map(|e| {
                Some(ClusterNode {
                    name: e.name.as_ref()?.0.clone(),
                    address: e.address.as_ref()?.0,
                    role: e.role?,
                })
            })
            .collect()
    } else {
        None
    };
    let cluster = (|| {
        let (key_file, key_file_origin) = key_file?;
        let lease = lease?;
        Some(Cluster {
            name: name?,
            key_file,
            nodes: nodes?,
            key_file_origin,
            lease: lease.lease,
            lease_renew: lease.renew,
            lease_margin: lease.margin,
            raft_port: raft_port.as_ref()?.0,
            unfence: unfence?,
        })
    })();
    ClusterOut {
        cluster,
        addresses,
        member_count,
        has_arbiter,
        raft_port,
    }
}

struct LeaseTiming {
    lease: Duration,
    renew: Duration,
    margin: Duration,
}

/// A lease key as written: its value, its text and where it is; `None` inside when absent.
type Written<'a, 'f> = Option<(Duration, &'a str, &'f Field<'a>)>;

/// `lease`, `lease_renew` and `lease_margin` with their defaults, and the rules between them
/// (see [`Cluster`]). Each key's own range is judged even when another key is wrong.
fn lease_timing<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Option<LeaseTiming> {
    let lease: Option<Written<'a, '_>> = match sec.get("lease") {
        None => Some(None),
        Some(f) => ctx.duration(f).and_then(|(d, text)| {
            let (problem, why) = if d < MIN_LEASE {
                (
                    format!(
                        "lease: {text} is shorter than the minimum of {}",
                        format_duration(MIN_LEASE)
                    ),
                    "the holder renews several times per lease, and each renewal is a Raft \
                     commit written to disk on a majority",
                )
            } else if d > MAX_LEASE {
                (
                    format!(
                        "lease: {text} is longer than the maximum of {}",
                        format_duration(MAX_LEASE)
                    ),
                    "the VIPs of a failed holder stay down for about one lease",
                )
            } else {
                return Some(Some((d, text, f)));
            };
            ctx.error(
                f.span(),
                problem,
                Some(format!(
                    "{why}; the default is \"{}\"",
                    format_duration(DEFAULT_LEASE)
                )),
            );
            None
        }),
    };
    let renew: Option<Written<'a, '_>> = match sec.get("lease_renew") {
        None => Some(None),
        Some(f) => ctx.duration(f).and_then(|(d, text)| {
            if d >= MIN_LEASE_RENEW {
                return Some(Some((d, text, f)));
            }
            ctx.error(
                f.span(),
                format!(
                    "lease_renew: {text} is shorter than the minimum of {}",
                    format_duration(MIN_LEASE_RENEW)
                ),
                Some(
                    "every renewal is a Raft commit written to disk on a majority; the default \
                     is lease / 4"
                        .to_string(),
                ),
            );
            None
        }),
    };
    let margin: Option<Written<'a, '_>> = match sec.get("lease_margin") {
        None => Some(None),
        Some(f) => ctx.duration(f).and_then(|(d, text)| {
            if !d.is_zero() {
                return Some(Some((d, text, f)));
            }
            ctx.error(
                f.span(),
                "lease_margin: must be longer than 0s".to_string(),
                Some(
                    "the margin absorbs the difference between the holder's and the leader's \
                     clock rates: without it both could hold a VIP at once; the default is \
                     lease / 10"
                        .to_string(),
                ),
            );
            None
        }),
    };
    let (lease, renew, margin) = (lease?, renew?, margin?);

    let l = lease.map_or(DEFAULT_LEASE, |(d, _, _)| d);
    let of_lease = match lease {
        Some((_, text, _)) => format!("lease = \"{text}\""),
        None => format!("the default lease of {}", format_duration(l)),
    };
    // Suggestions in whole milliseconds, which read better and stay within the rules (the
    // lease is at least 100ms).
    let suggest = |d: Duration| format_duration(Duration::from_millis(d.as_millis() as u64));
    let (renew_default, margin_default) = (l / 4, l / 10);
    let mut ok = true;
    if let Some((r, text, f)) = renew {
        if r.saturating_mul(2) >= l {
            ctx.error(
                f.span(),
                format!(
                    "lease_renew: {text} is too long for {of_lease}: the renew interval must be \
                     shorter than half the lease"
                ),
                Some(format!(
                    "a lost renewal needs a retry before the lease runs out; like lease_renew = \
                     \"{}\" (lease / 4, the default)",
                    suggest(renew_default)
                )),
            );
            ok = false;
        }
    }
    if let Some((m, text, f)) = margin {
        if m.saturating_mul(2) >= l {
            ctx.error(
                f.span(),
                format!(
                    "lease_margin: {text} is too big for {of_lease}: the margin must be shorter \
                     than half the lease"
                ),
                Some(format!(
                    "the holder gives its VIPs up one margin before its lease ends, and clocks \
                     drift far less than half a lease; like lease_margin = \"{}\" (lease / 10, \
                     the default)",
                    suggest(margin_default)
                )),
            );
            ok = false;
        }
    }
    let r = renew.map_or(renew_default, |(d, _, _)| d);
    let m = margin.map_or(margin_default, |(d, _, _)| d);
    // Saturating: a written value may be as large as a duration string allows.
    if ok && r.saturating_add(m).saturating_mul(2) >= l {
        // The defaults (lease / 4 + lease / 10) always pass, so one of the two is written:
        // point at it.
        let (key, text, other, f) = match (renew, margin) {
            (Some((_, text, f)), Some((_, other, _))) => (
                "lease_renew",
                text,
                format!("lease_margin = \"{other}\""),
                f,
            ),
            (Some((_, text, f)), None) => (
                "lease_renew",
                text,
                format!("the default lease_margin of {}", format_duration(m)),
                f,
            ),
            (None, Some((_, text, f))) => (
                "lease_margin",
                text,
                format!("the default lease_renew of {}", format_duration(r)),
                f,
            ),
            // Not reached; no panic in the daemon's reload path all the same.
            (None, None) => {
                return Some(LeaseTiming {
                    lease: l,
                    renew: r,
                    margin: m,
                })
            }
        };
        ctx.error(
            f.span(),
            format!(
                "{key}: {text} with {other} leaves no time to retry a lost renewal before the \
                 holder must let go ({of_lease})"
            ),
            Some(format!(
                "the retry goes out 2 × lease_renew after the last committed renewal and must \
                 still have a margin to commit before lease − lease_margin: keep \
                 2 × (lease_renew + lease_margin) below the lease, like lease_renew = \"{}\" \
                 and lease_margin = \"{}\" (the defaults)",
                suggest(renew_default),
                suggest(margin_default)
            )),
        );
        ok = false;
    }
    ok.then_some(LeaseTiming {
        lease: l,
        renew: r,
        margin: m,
    })
}

/// Quorum mode grants VIPs through the Raft log, which needs a `[cluster]` whose majority
/// survives one failure. `modes`: where each `mode = "quorum"` is.
pub(super) fn quorum_rules(
    ctx: &mut Ctx<'_>,
    modes: &[Option<Span>],
    cluster_field: Option<&Field<'_>>,
    cluster: Option<&ClusterOut>,
    cluster_misspelt: bool,
) {
    let problem = match (cluster_field, cluster) {
        // A misspelt [cluster] was reported as such.
        (None, _) if !cluster_misspelt => (
            "mode: \"quorum\" needs a [cluster] section".to_string(),
            format!(
                "quorum mode hands out VIP leases through the cluster's Raft log: add [cluster] \
                 with at least {MIN_QUORUM_MEMBERS} nodes (two load balancers and an arbiter) \
                 and a [[heartbeat]], or use mode = \"vrrp\""
            ),
        ),
        // Fewer than two was reported already; two is a cluster, but not a quorum one.
        (Some(_), Some(c))
            if c.member_count
                .is_some_and(|n| (2..MIN_QUORUM_MEMBERS).contains(&n)) =>
        {
            (
                format!(
                    "mode: \"quorum\" needs at least {MIN_QUORUM_MEMBERS} [cluster] nodes (voters \
                 and arbiters), found {}",
                    c.member_count.unwrap_or(0)
                ),
                "with two nodes the Raft majority is both of them, so losing either stops every \
             lease: add an arbiter node, which votes but never holds a VIP, to [cluster] nodes, \
             like { name = \"arb\", address = \"...\", role = \"arbiter\" }"
                    .to_string(),
            )
        }
        _ => return,
    };
    for span in modes {
        ctx.error(span.clone(), problem.0.clone(), Some(problem.1.clone()));
    }
}

/// The Raft transport listens on this node's `[cluster]` address at `raft_port`: a TCP
/// heartbeat bound there on the same port would keep one of the two from starting.
pub(super) fn raft_port_is_free(ctx: &mut Ctx<'_>, cluster: &ClusterOut, tcp: &[TcpPort]) {
    let (Some((raft_port, raft_span)), Some(addrs)) = (&cluster.raft_port, &cluster.addresses)
    else {
        return;
    };
    let own = addrs.own;
    let Some(hb) = tcp
        .iter()
        .find(|t| t.port == *raft_port && t.bind.is_none_or(|b| b == own || b.is_unspecified()))
    else {
        return;
    };
    match raft_span {
        Some(span) => {
            let at = ctx.where_is(&hb.span);
            ctx.error(
                Some(span.clone()),
                format!("raft_port: {raft_port} is also the port of a tcp [[heartbeat]]"),
                Some(format!(
                    "both listen on TCP at this node's [cluster] address ({own}); the heartbeat's \
                     port is at {at}: give one of them another port"
                )),
            );
        }
        None => ctx.error(
            hb.span.clone(),
            format!("port: {raft_port} is the Raft transport's TCP port (the default raft_port)"),
            Some(format!(
                "both listen on TCP at this node's [cluster] address ({own}): choose another \
                 port for this heartbeat, or set raft_port in [cluster]"
            )),
        ),
    }
}

/// Frames carry names of at most 64 bytes.
fn check_name_len(ctx: &mut Ctx<'_>, key: &str, span: Option<Span>, s: &str) -> bool {
    if s.len() <= MAX_NAME_LEN {
        return true;
    }
    ctx.error(
        span,
        format!(
            "{key}: {s:?} is {} bytes, longer than the {MAX_NAME_LEN} a heartbeat frame carries",
            s.len()
        ),
        Some("choose a shorter name".to_string()),
    );
    false
}

/// The entries of `nodes`, each checked on its own; whether every entry was a table (else the
/// names are not all known); and how many entries there are (`None`: not a list). Fewer than
/// two is reported here.
fn node_entries<'a>(ctx: &mut Ctx<'a>, f: &Field<'a>) -> (Vec<EntryOut>, bool, Option<usize>) {
    const ENTRY: &str = "{ name = \"lb1\", address = \"10.0.0.1\" }";
    let mut complete = true;
    let tables: Vec<(TableRef<'a>, Option<Span>)> = match f.node {
        Node::Value(Value::Array(a)) => {
            let mut tables = Vec::new();
            for v in a.iter() {
                match v {
                    Value::InlineTable(t) => tables.push((TableRef::Inline(t), v.span())),
                    Value::String(s) => {
                        let s = s.value();
                        let hint = if s.parse::<IpAddr>().is_ok() {
                            format!("write {{ name = \"NAME\", address = {s:?} }}")
                        } else {
                            format!("write {{ name = {s:?}, address = \"10.0.0.1\" }}")
                        };
                        ctx.error(
                            v.span(),
                            "nodes: expected a table, found a string".to_string(),
                            Some(hint),
                        );
                        complete = false;
                    }
                    other => {
                        ctx.error(
                            other.span(),
                            format!("nodes: expected a table, found {}", value_type_name(other)),
                            Some(format!("write {ENTRY}")),
                        );
                        complete = false;
                    }
                }
            }
            tables
        }
        // [[cluster.nodes]] tables are the same list written long-hand.
        Node::TableArray(a) => a
            .iter()
            .map(|t| (TableRef::Table(t), t.span().or_else(|| f.key_span.clone())))
            .collect(),
        other => {
            ctx.error(
                f.span(),
                format!("nodes: expected an array, found {}", other.type_name()),
                Some(format!("write nodes = [{ENTRY}, ...]")),
            );
            return (Vec::new(), false, None);
        }
    };
    let count = match f.node {
        Node::Value(Value::Array(a)) => a.len(),
        _ => tables.len(),
    };
    if count < 2 {
        let found = match count {
            0 => "none".to_string(),
            n => n.to_string(),
        };
        ctx.error(
            f.span(),
            format!("nodes: a cluster needs at least two nodes, found {found}"),
            Some(format!(
                "list every member, this node included: nodes = [{ENTRY}, \
                 {{ name = \"lb2\", address = \"10.0.0.2\" }}]"
            )),
        );
    }
    let entries = tables
        .into_iter()
        .map(|(t, span)| node_entry(ctx, t, span))
        .collect();
    (entries, complete, Some(count))
}

fn node_entry<'a>(ctx: &mut Ctx<'a>, table: TableRef<'a>, span: Option<Span>) -> EntryOut {
    let sec = Section::new(table, "a [cluster] nodes entry", span.clone());
    sec.check_keys(ctx, &NODE_ENTRY_KEYS);
    let name = sec
        .required(ctx, "name", "name = \"lb1\" (the node's [node] name)")
        .and_then(|f| {
            let s = ctx.string(f)?;
            (check_name(ctx, f, s, "node") && check_name_len(ctx, f.key, f.span(), s))
                .then(|| (s.to_string(), f.span()))
        });
    let address = sec
        .required(
            ctx,
            "address",
            "address = \"10.0.0.1\" (the node's own address)",
        )
        .and_then(|f| {
            let s = ctx.string(f)?;
            let ip = plain_ip(ctx, f.key, f.span(), s)?;
            if ip == IpAddr::from([255, 255, 255, 255]) {
                ctx.error(
                    f.span(),
                    format!("{}: {ip} is the broadcast address", f.key),
                    Some("use the address of a node's interface".to_string()),
                );
                return None;
            }
            Some((ip, f.span()))
        });
    let role = match sec.get("role") {
        None => Some(Role::Voter),
        Some(f) => ctx
            .choice(f, "role", &["voter", "arbiter"])
            .map(|r| match r {
                "arbiter" => Role::Arbiter,
                _ => Role::Voter,
            }),
    };
    EntryOut {
        name,
        address,
        role,
        span,
    }
}

/// Unique names and addresses. False when a duplicate was reported.
fn unique_nodes(ctx: &mut Ctx<'_>, entries: &[EntryOut]) -> bool {
    let mut ok = true;
    for (i, e) in entries.iter().enumerate() {
        let earlier = &entries[..i];
        if let Some((name, span)) = &e.name {
            if let Some((_, first)) = earlier
                .iter()
                .filter_map(|o| o.name.as_ref())
                .find(|(n, _)| n == name)
            {
                let at = ctx.where_is(first);
                ctx.error(
                    span.clone(),
                    format!("name: node {name:?} is listed twice in [cluster] nodes"),
                    Some(format!("node names are unique; the first is at {at}")),
                );
                ok = false;
            }
        }
        if let Some((addr, span)) = &e.address {
            if let Some(other) = earlier
                .iter()
                .find(|o| o.address.as_ref().is_some_and(|(a, _)| a == addr))
            {
                let first = other.address.as_ref().and_then(|(_, s)| s.clone());
                let at = ctx.where_is(&first);
                let owner = match &other.name {
                    Some((n, _)) => format!("node {n:?}"),
                    None => "another node".to_string(),
                };
                ctx.error(
                    span.clone(),
                    format!("address: {addr} is also the address of {owner}"),
                    Some(format!(
                        "every node has its own address (heartbeats are sent to it); \
                         {owner}'s is at {at}"
                    )),
                );
                ok = false;
            }
        }
    }
    ok
}

/// `[node] role` and this node's `nodes` entry agree.
fn same_role(ctx: &mut Ctx<'_>, node: &NodeOut<'_>, entry: &EntryOut) -> bool {
    let (Some(here), Some(there)) = (node.role, entry.role) else {
        return true;
    };
    if here == there {
        return true;
    }
    let at = ctx.where_is(&entry.span);
    match &node.role_field {
        Some(f) => ctx.error(
            f.span(),
            format!(
                "role: {:?} here, but {:?} in this node's [cluster] nodes entry",
                here.name(),
                there.name()
            ),
            Some(format!(
                "the two must agree; the entry is at {at}: change one of them"
            )),
        ),
        None => ctx.error(
            node.header.clone(),
            format!(
                "[node] role is \"voter\" (the default), but this node's [cluster] nodes entry \
                 says {:?}",
                there.name()
            ),
            Some(format!(
                "add role = {:?} to [node], or change the entry at {at}",
                there.name()
            )),
        ),
    }
    false
}

/// tandem-heartbeat's frame-size rule (`ClusterSpec::validate`): a frame names the cluster
/// and its sender and carries up to two echo entries per peer, and must fit 1400 bytes. Judged
/// for every member as sender, not only this node: the cluster is the same on every node.
fn frame_fits(ctx: &mut Ctx<'_>, f: &Field<'_>, cluster: &str, names: &[&str]) -> bool {
    let peers = names.len().saturating_sub(1);
    if 2 * peers > MAX_ECHOES {
        ctx.error(
            f.span(),
            format!(
                "nodes: {} nodes are more than a heartbeat frame can report on (at most {})",
                names.len(),
                MAX_ECHOES / 2 + 1
            ),
            None,
        );
        return false;
    }
    let frame_len = |sender: usize| {
        let echoes: usize = names
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != sender)
            .map(|(_, n)| 2 * (ECHO_FIXED_LEN + n.len()))
            .sum();
        HEADER_LEN + cluster.len() + names[sender].len() + echoes + TAG_LEN
    };
    // The first of equals: names messages by the earliest such node.
    let Some((sender, len)) = (0..names.len())
        .map(|i| (i, frame_len(i)))
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
    else {
        return true;
    };
    if len <= MAX_FRAME_LEN {
        return true;
    }
    ctx.error(
        f.span(),
        format!(
            "nodes: a heartbeat frame from {:?} would be {len} bytes, more than the \
             {MAX_FRAME_LEN} that fit",
            names[sender]
        ),
        Some(format!(
            "use fewer nodes or shorter names: every frame carries {} bytes plus the name for \
             each peer",
            2 * ECHO_FIXED_LEN
        )),
    );
    false
}

/// `"a", "b", "c"`
fn quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    UdpMulticast,
    UdpUnicast,
    Tcp,
    Serial,
}

const KINDS: [Kind; 4] = [
    Kind::UdpMulticast,
    Kind::UdpUnicast,
    Kind::Tcp,
    Kind::Serial,
];
const KIND_NAMES: &[&str] = &["udp-multicast", "udp-unicast", "tcp", "serial"];

/// Keys of every kind.
const COMMON_KEYS: &[&str] = &["kind", "interval", "timeout"];

/// Keys people bring from Linux-HA heartbeat's ha.cf and corosync.conf, with what to write.
const HEARTBEAT_NOTES: &[(&str, &str)] = &[
    ("peers", PEERS_NOTE),
    ("peer", PEERS_NOTE),
    ("address", PEERS_NOTE),
    (
        "name",
        "a heartbeat has no name: its position among the [[heartbeat]] entries is its id",
    ),
    ("mcastaddr", "write group = \"239.192.0.1:5405\""),
    ("mcastport", "write group = \"239.192.0.1:5405\""),
    ("multicast_group", "write group = \"239.192.0.1:5405\""),
    ("speed", "write baud = 115200"),
    ("baudrate", "write baud = 115200"),
    ("keepalive", "write interval = \"100ms\""),
    ("deadtime", "write timeout = \"500ms\""),
];

const PEERS_NOTE: &str = "a udp-unicast or tcp heartbeat sends to the other [cluster] nodes' \
                          addresses on its port; bind sets this node's local address";

const MULTICAST_KEYS: KeySpec = KeySpec {
    valid: &["kind", "interval", "timeout", "interface", "group"],
    unsupported: &[],
    notes: HEARTBEAT_NOTES,
};

const UNICAST_KEYS: KeySpec = KeySpec {
    valid: &["kind", "interval", "timeout", "port", "bind"],
    unsupported: &[],
    notes: HEARTBEAT_NOTES,
};

const TCP_KEYS: KeySpec = KeySpec {
    valid: &["kind", "interval", "timeout", "port", "bind"],
    unsupported: &[],
    notes: HEARTBEAT_NOTES,
};

const SERIAL_KEYS: KeySpec = KeySpec {
    valid: &["kind", "interval", "timeout", "device", "baud"],
    unsupported: &[],
    notes: HEARTBEAT_NOTES,
};

/// When the kind is unknown (missing or wrong): every key of every kind.
const ANY_KEYS: KeySpec = KeySpec {
    valid: &[
        "kind",
        "interval",
        "timeout",
        "interface",
        "group",
        "port",
        "bind",
        "device",
        "baud",
    ],
    unsupported: &[],
    notes: HEARTBEAT_NOTES,
};

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::UdpMulticast => "udp-multicast",
            Kind::UdpUnicast => "udp-unicast",
            Kind::Tcp => "tcp",
            Kind::Serial => "serial",
        }
    }

    fn spec(self) -> &'static KeySpec {
        match self {
            Kind::UdpMulticast => &MULTICAST_KEYS,
            Kind::UdpUnicast => &UNICAST_KEYS,
            Kind::Tcp => &TCP_KEYS,
            Kind::Serial => &SERIAL_KEYS,
        }
    }

    /// The keys only this kind (and kinds like it) has.
    fn own_keys(self) -> &'static [&'static str] {
        &self.spec().valid[COMMON_KEYS.len()..]
    }
}

/// What the rules across channels need to know about one entry.
struct HeartbeatOut {
    heartbeat: Option<Heartbeat>,
    kind: Option<Kind>,
    port: Option<(u16, Option<Span>)>,
    group: Option<(SocketAddr, Option<Span>)>,
    device: Option<(String, Option<Span>)>,
}

/// A valid tcp heartbeat's port, for the Raft port rule.
pub(super) struct TcpPort {
    port: u16,
    span: Option<Span>,
    bind: Option<IpAddr>,
}

pub(super) struct HeartbeatsOut {
    /// `None` when there is a problem (reported).
    pub(super) list: Option<Vec<Heartbeat>>,
    pub(super) tcp_ports: Vec<TcpPort>,
}

/// Every `[[heartbeat]]`, and the rules between them and `[cluster]`.
pub(super) fn heartbeats<'a>(
    ctx: &mut Ctx<'a>,
    field: Option<&Field<'a>>,
    cluster_field: Option<&Field<'a>>,
    cluster: Option<&ClusterOut>,
    misspelt: Misspelt,
) -> HeartbeatsOut {
    let list = heartbeat_list(ctx, field, cluster_field, cluster, misspelt);
    let tcp_ports = list.outs.iter().filter_map(|o| {
        let (Some(hb), Some((port, span))) = (&o.heartbeat, &o.port) else {
            return None;
        };
        let HeartbeatKind::Tcp { bind, .. } = hb.kind else {
            return None;
        };
        Some(TcpPort {
            port: *port,
            span: span.clone(),
            bind,
        })
    });
    let tcp_ports = tcp_ports.collect();
    HeartbeatsOut {
        list: list
            .ok
            .then(|| list.outs.into_iter().map(|o| o.heartbeat).collect())
            .flatten(),
        tcp_ports,
    }
}

struct HeartbeatList {
    outs: Vec<HeartbeatOut>,
    /// False when a problem was reported.
    ok: bool,
}

fn heartbeat_list<'a>(
    ctx: &mut Ctx<'a>,
    field: Option<&Field<'a>>,
    cluster_field: Option<&Field<'a>>,
    cluster: Option<&ClusterOut>,
    misspelt: Misspelt,
) -> HeartbeatList {
    let Some(field) = field else {
        // A [cluster] that is not a table was reported as such.
        if let Some(cf) = cluster_field.filter(|f| f.node.as_table().is_some()) {
            if !misspelt.heartbeat {
                ctx.error(
                    cf.span(),
                    "[cluster] has no [[heartbeat]]: the nodes would never hear from each other"
                        .to_string(),
                    Some(
                        "add at least one [[heartbeat]] channel (kind = \"udp-multicast\", \
                         \"udp-unicast\", \"tcp\" or \"serial\"); two independent ones, like \
                         udp-multicast and serial, are recommended: a peer is down only when \
                         every channel says so"
                            .to_string(),
                    ),
                );
                return HeartbeatList {
                    outs: Vec::new(),
                    ok: false,
                };
            }
        }
        return HeartbeatList {
            outs: Vec::new(),
            ok: true,
        };
    };
    let tables = section_tables(ctx, field);
    let mut ok = tables.complete;
    let addresses = cluster.and_then(|c| c.addresses.as_ref());
    let mut outs = Vec::new();
    for (i, (table, fallback)) in tables.tables.into_iter().enumerate() {
        let header = table.span().or_else(|| fallback.clone());
        if cluster_field.is_none() && !misspelt.cluster {
            ctx.error(
                header.clone(),
                "[[heartbeat]] without a [cluster] section".to_string(),
                Some(
                    "heartbeats authenticate with the cluster key: add a [cluster] section"
                        .to_string(),
                ),
            );
            ok = false;
        }
        if i == MAX_HEARTBEATS {
            ctx.error(
                header,
                format!("more than {MAX_HEARTBEATS} [[heartbeat]] entries"),
                Some("a channel's id on the wire is one byte".to_string()),
            );
            ok = false;
        }
        outs.push(heartbeat(ctx, table, fallback, addresses));
    }
    ok &= cross_check(ctx, &outs);
    HeartbeatList { outs, ok }
}

fn heartbeat<'a>(
    ctx: &mut Ctx<'a>,
    table: TableRef<'a>,
    fallback: Option<Span>,
    addresses: Option<&Addresses>,
) -> HeartbeatOut {
    let sec = Section::new(table, "[[heartbeat]]", fallback);
    let kind_field = sec.required(
        ctx,
        "kind",
        "kind = \"udp-multicast\", \"udp-unicast\", \"tcp\" or \"serial\"",
    );
    let kind = kind_field.and_then(|f| parse_kind(ctx, f));
    check_keys(ctx, &sec, kind);
    let (interval, timeout) = timing(ctx, &sec);

    let mut out = HeartbeatOut {
        heartbeat: None,
        kind,
        port: None,
        group: None,
        device: None,
    };
    let hb_kind = match kind {
        None => None,
        Some(Kind::UdpMulticast) => multicast(ctx, &sec, &mut out),
        Some(k @ (Kind::UdpUnicast | Kind::Tcp)) => {
            let port = port(ctx, &sec);
            out.port = port.clone();
            let bind = bind(ctx, &sec, k, kind_field, addresses);
            (|| {
                let port = port?.0;
                let bind = bind?;
                Some(if k == Kind::Tcp {
                    HeartbeatKind::Tcp { port, bind }
                } else {
                    HeartbeatKind::UdpUnicast { port, bind }
                })
            })()
        }
        Some(Kind::Serial) => serial(ctx, &sec, &mut out),
    };
    let origin = ctx.origin_at(&sec.header);
    let device_origin = out.device.as_ref().map(|(_, s)| ctx.origin_at(s));
    out.heartbeat = (|| {
        Some(Heartbeat {
            kind: hb_kind?,
            interval: interval?,
            timeout: timeout?,
            origin,
            device_origin,
        })
    })();
    out
}

fn parse_kind<'a>(ctx: &mut Ctx<'a>, f: &Field<'a>) -> Option<Kind> {
    let s = ctx.string(f)?;
    if let Some(k) = KINDS.into_iter().find(|k| k.name() == s) {
        return Some(k);
    }
    // ha.cf and corosync words, then typos.
    let guess = match s.to_ascii_lowercase().as_str() {
        "udp" => Some("did you mean \"udp-multicast\" or \"udp-unicast\"? ".to_string()),
        "mcast" | "multicast" | "udpm" => Some("did you mean \"udp-multicast\"? ".to_string()),
        "ucast" | "unicast" | "udpu" => Some("did you mean \"udp-unicast\"? ".to_string()),
        "bcast" | "broadcast" => Some(
            "broadcast is not supported: use \"udp-multicast\" or \"udp-unicast\"; ".to_string(),
        ),
        _ => did_you_mean(s, KIND_NAMES).map(|g| format!("did you mean \"{g}\"? ")),
    };
    ctx.error(
        f.span(),
        format!("kind: unknown kind {s:?}"),
        Some(format!(
            "{}kind is {}",
            guess.unwrap_or_default(),
            quoted_list(KIND_NAMES)
        )),
    );
    None
}

/// Keys that are not this heartbeat's: of another kind (named as such), or unknown.
fn check_keys<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>, kind: Option<Kind>) {
    let spec = kind.map_or(&ANY_KEYS, Kind::spec);
    for f in &sec.fields {
        if spec.valid.contains(&f.key) {
            continue;
        }
        let (Some(kind), Some(owner)) = (
            kind,
            KINDS.into_iter().find(|k| k.own_keys().contains(&f.key)),
        ) else {
            sec.report_key(ctx, f, spec);
            continue;
        };
        let valid = spec.valid.join(", ");
        let hint = if kind == Kind::UdpMulticast && f.key == "port" {
            format!(
                "the port goes in group, like group = \"239.192.0.1:5405\"; valid keys: {valid}"
            )
        } else {
            format!(
                "remove it, or set kind = \"{}\"; valid keys: {valid}",
                owner.name()
            )
        };
        ctx.error(
            f.key_span.clone(),
            format!(
                "\"{}\" is for kind = \"{}\" heartbeats, and this heartbeat is kind = \"{}\"",
                f.key,
                owner.name(),
                kind.name()
            ),
            Some(hint),
        );
    }
}

/// `interval` (default 100ms, at least 10ms) and `timeout` (default 500ms, longer than the
/// interval).
fn timing<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> (Option<Duration>, Option<Duration>) {
    let interval_field = sec.get("interval");
    let timeout_field = sec.get("timeout");
    let interval = match interval_field {
        None => Some((DEFAULT_HEARTBEAT_INTERVAL, None)),
        Some(f) => ctx.duration(f).and_then(|(d, text)| {
            if d < MIN_HEARTBEAT_INTERVAL {
                ctx.error(
                    f.span(),
                    format!(
                        "interval: {text} is shorter than the minimum of {}",
                        format_duration(MIN_HEARTBEAT_INTERVAL)
                    ),
                    Some(format!(
                        "faster frames are noise on a serial line and a CPU cost elsewhere; \
                         the default is \"{}\"",
                        format_duration(DEFAULT_HEARTBEAT_INTERVAL)
                    )),
                );
                None
            } else {
                Some((d, Some(text)))
            }
        }),
    };
    let timeout = match timeout_field {
        None => Some((DEFAULT_HEARTBEAT_TIMEOUT, None)),
        Some(f) => ctx.duration(f).map(|(d, text)| (d, Some(text))),
    };
    let (Some((i, i_text)), Some((t, t_text))) = (interval, timeout) else {
        return (interval.map(|(d, _)| d), timeout.map(|(d, _)| d));
    };
    if t > i {
        return (Some(i), Some(t));
    }
    let suggestion = format_duration(i * 3);
    match (timeout_field, t_text) {
        (Some(f), Some(t_text)) => {
            let interval = match i_text {
                Some(text) => format!("interval ({text})"),
                None => format!("the default interval ({})", format_duration(i)),
            };
            ctx.error(
                f.span(),
                format!("timeout: {t_text} is not longer than {interval}"),
                Some(format!(
                    "a peer is down on this channel after timeout without a frame: make it at \
                     least 3 × interval, like timeout = \"{suggestion}\""
                )),
            );
        }
        _ => {
            // Only the interval was written: it is the one to point at.
            let f = interval_field.or(timeout_field);
            let i_text = i_text.map_or_else(|| format_duration(i), str::to_string);
            ctx.error(
                f.and_then(Field::span),
                format!(
                    "interval: {i_text} is not shorter than the default timeout ({})",
                    format_duration(t)
                ),
                Some(format!(
                    "a peer is down on this channel after timeout without a frame: set a \
                     timeout of at least 3 × interval, like timeout = \"{suggestion}\""
                )),
            );
        }
    }
    (None, None)
}

fn multicast<'a>(
    ctx: &mut Ctx<'a>,
    sec: &Section<'a>,
    out: &mut HeartbeatOut,
) -> Option<HeartbeatKind> {
    let interface = sec
        .required(ctx, "interface", "interface = \"eth0\"")
        .and_then(|f| {
            let s = ctx.string(f)?;
            check_ifname(ctx, f, s).then(|| s.to_string())
        });
    let group = sec
        .required(
            ctx,
            "group",
            "group = \"239.192.0.1:5405\" (a multicast address and a port)",
        )
        .and_then(|f| {
            let s = ctx.string(f)?;
            match parse_group(s) {
                Ok(g) => {
                    out.group = Some((g, f.span()));
                    Some(g)
                }
                Err((problem, hint)) => {
                    ctx.error(f.span(), format!("group: {problem}"), Some(hint));
                    None
                }
            }
        });
    Some(HeartbeatKind::UdpMulticast {
        interface: interface?,
        group: group?,
    })
}

const GROUP_FORMAT: &str =
    "write the group as IP:port, like \"239.192.0.1:5405\" (IPv6 in brackets: \"[ff12::1]:5405\")";

/// `"239.192.0.1:5405"` or `"[ff12::1]:5405"`: a multicast address and a port 1 to 65535.
fn parse_group(s: &str) -> Result<SocketAddr, (String, String)> {
    if let Ok(g) = s.parse::<SocketAddr>() {
        if !g.ip().is_multicast() {
            return Err((
                format!("{} is not a multicast address", g.ip()),
                "use an IPv4 multicast address, best in 239.0.0.0/8 (organization-local), like \
                 \"239.192.0.1:5405\", or an IPv6 one like \"[ff12::1]:5405\""
                    .to_string(),
            ));
        }
        if g.port() == 0 {
            return Err((
                "port 0 is not allowed".to_string(),
                "use a port from 1 to 65535, like \"239.192.0.1:5405\"".to_string(),
            ));
        }
        return Ok(g);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        let example = match ip {
            IpAddr::V4(_) => format!("\"{ip}:5405\""),
            IpAddr::V6(_) => format!("\"[{ip}]:5405\""),
        };
        return Err((
            format!("{s:?} has no port"),
            format!("write the address and the port, like {example} (IPv6 in brackets)"),
        ));
    }
    if let Some((host, port)) = s.rsplit_once(':') {
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => host.parse::<std::net::Ipv4Addr>().is_ok(),
        };
        if host_ok && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return Err((
                format!("port {port} is out of range (1 to 65535)"),
                GROUP_FORMAT.to_string(),
            ));
        }
        if host_ok {
            return Err((
                format!("port {port:?} is not a number"),
                GROUP_FORMAT.to_string(),
            ));
        }
    }
    Err((
        format!("{s:?} is not an IP address and port"),
        GROUP_FORMAT.to_string(),
    ))
}

fn port<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Option<(u16, Option<Span>)> {
    let f = sec.required(
        ctx,
        "port",
        "port = 5406 (1 to 65535, the same on every node)",
    )?;
    let p = ctx.int_in(
        f,
        1,
        65535,
        Some("the port this node listens on and sends to on the other nodes"),
    )?;
    Some((p as u16, f.span()))
}

/// `bind` of a udp-unicast or tcp heartbeat: `Some(None)` when absent (this node's own
/// address). Checked against the peers, which are the other nodes' addresses.
fn bind<'a>(
    ctx: &mut Ctx<'a>,
    sec: &Section<'a>,
    kind: Kind,
    kind_field: Option<&Field<'a>>,
    addresses: Option<&Addresses>,
) -> Option<Option<IpAddr>> {
    let explicit = match sec.get("bind") {
        None => None,
        Some(f) => {
            let s = ctx.string(f)?;
            let ip = bind_ip(ctx, f, s)?;
            Some((ip, f))
        }
    };
    let Some(addrs) = addresses else {
        return Some(explicit.map(|(ip, _)| ip));
    };
    let local = explicit.map_or(addrs.own, |(ip, _)| ip);
    if let Some((ip, f)) = explicit {
        if let Some((peer, _)) = addrs.peers.iter().find(|(_, a)| *a == ip) {
            ctx.error(
                f.span(),
                format!("bind: {ip} is the address of node {peer:?}"),
                Some(format!(
                    "bind is an address of this node (by default its [cluster] address, {})",
                    addrs.own
                )),
            );
            return None;
        }
    }
    let family = crate::AddressFamily::of(local);
    let Some((peer, peer_ip)) = addrs
        .peers
        .iter()
        .find(|(_, a)| crate::AddressFamily::of(*a) != family)
    else {
        return Some(explicit.map(|(ip, _)| ip));
    };
    let peer_family = crate::AddressFamily::of(*peer_ip);
    match explicit {
        Some((ip, f)) => ctx.error(
            f.span(),
            format!(
                "bind: {ip} is {family} but node {peer:?} has the {peer_family} address {peer_ip}"
            ),
            Some(
                "this channel sends to the other nodes' [cluster] addresses: bind an address of \
                 their family"
                    .to_string(),
            ),
        ),
        None => ctx.error(
            kind_field.and_then(Field::span),
            format!(
                "kind: a {:?} heartbeat sends to the other nodes' [cluster] addresses, and node \
                 {peer:?}'s ({peer_ip}) is {peer_family} while this node's ({}) is {family}",
                kind.name(),
                addrs.own
            ),
            Some("give every node an address of the same family in [cluster] nodes".to_string()),
        ),
    }
    None
}

/// A local address to bind: any unicast address, or the unspecified one (every address).
fn bind_ip(ctx: &mut Ctx<'_>, f: &Field<'_>, s: &str) -> Option<IpAddr> {
    let hint = "an address of this node, or leave bind out to use its [cluster] address";
    let problem = match s.parse::<IpAddr>() {
        Ok(ip) if ip.is_multicast() => format!("{ip} is a multicast address"),
        Ok(ip) if ip == IpAddr::from([255, 255, 255, 255]) => {
            format!("{ip} is the broadcast address")
        }
        Ok(ip) => return Some(ip),
        Err(_) if s.contains('/') => format!("{s:?} has a prefix length"),
        Err(_) => format!("{s:?} is not an IPv4 or IPv6 address"),
    };
    ctx.error(f.span(), format!("bind: {problem}"), Some(hint.to_string()));
    None
}

fn serial<'a>(
    ctx: &mut Ctx<'a>,
    sec: &Section<'a>,
    out: &mut HeartbeatOut,
) -> Option<HeartbeatKind> {
    let device = sec
        .required(ctx, "device", "device = \"/dev/ttyS1\"")
        .and_then(|f| {
            let s = ctx.string(f)?;
            let problem = if s.is_empty() {
                Some("must not be empty".to_string())
            } else if !s.starts_with('/') {
                Some(format!("must be an absolute path, found {s:?}"))
            } else {
                None
            };
            match problem {
                Some(p) => {
                    ctx.error(
                        f.span(),
                        format!("device: {p}"),
                        Some("write the full path, like \"/dev/ttyS1\"".to_string()),
                    );
                    None
                }
                None => {
                    out.device = Some((s.to_string(), f.span()));
                    Some(PathBuf::from(s))
                }
            }
        });
    let baud = match sec.get("baud") {
        None => Some(DEFAULT_SERIAL_BAUD),
        Some(f) => ctx.integer(f).and_then(|n| {
            if let Some(b) = SERIAL_BAUD_RATES.iter().find(|b| i64::from(**b) == n) {
                return Some(*b);
            }
            // Within 5 %: a slip of a digit or a rounded rate.
            let guess = SERIAL_BAUD_RATES
                .iter()
                .min_by_key(|b| (i64::from(**b) - n).unsigned_abs())
                .filter(|b| (i64::from(**b) - n).unsigned_abs() * 20 <= u64::from(**b))
                .map(|b| format!("did you mean {b}? "))
                .unwrap_or_default();
            let rates: Vec<String> = SERIAL_BAUD_RATES.iter().map(u32::to_string).collect();
            ctx.error(
                f.span(),
                format!("baud: {n} is not a standard serial speed"),
                Some(format!(
                    "{guess}baud is one of {} (the default is {DEFAULT_SERIAL_BAUD})",
                    rates.join(", ")
                )),
            );
            None
        }),
    };
    Some(HeartbeatKind::Serial {
        device: device?,
        baud: baud?,
    })
}

/// Rules across channels: a port once per kind, a multicast group once, a serial device once.
fn cross_check(ctx: &mut Ctx<'_>, outs: &[HeartbeatOut]) -> bool {
    let mut ok = true;
    for (i, o) in outs.iter().enumerate() {
        let earlier = &outs[..i];
        if let (Some(kind), Some((port, span))) = (o.kind, &o.port) {
            if let Some(first) = earlier
                .iter()
                .filter(|e| e.kind == Some(kind))
                .find_map(|e| e.port.as_ref().filter(|(p, _)| p == port))
            {
                let at = ctx.where_is(&first.1);
                ctx.error(
                    span.clone(),
                    format!(
                        "port: {port} is already used by another {} heartbeat",
                        kind.name()
                    ),
                    Some(format!(
                        "each {} channel needs its own port; the other is at {at}",
                        kind.name()
                    )),
                );
                ok = false;
            }
        }
        if let Some((group, span)) = &o.group {
            if let Some(first) = earlier
                .iter()
                .find_map(|e| e.group.as_ref().filter(|(g, _)| g == group))
            {
                let at = ctx.where_is(&first.1);
                ctx.error(
                    span.clone(),
                    format!("group: {group} is already used by another udp-multicast heartbeat"),
                    Some(format!(
                        "each multicast channel needs its own group address or port, so one \
                         channel's frames never arrive on another; the other is at {at}"
                    )),
                );
                ok = false;
            }
        }
        if let Some((device, span)) = &o.device {
            if let Some(first) = earlier
                .iter()
                .find_map(|e| e.device.as_ref().filter(|(d, _)| d == device))
            {
                let at = ctx.where_is(&first.1);
                ctx.error(
                    span.clone(),
                    format!("device: {device:?} is already used by another serial heartbeat"),
                    Some(format!(
                        "a serial line carries one channel; the other is at {at}"
                    )),
                );
                ok = false;
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse, Config, Mode, Origin};
    use std::path::Path;

    /// A voter lb1 with one instance, as in lib.rs's tests.
    const MINIMAL: &str = r#"
[node]
name = "lb1"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/24"]
"#;

    const CLUSTER: &str = r#"
[cluster]
name = "edge"
key_file = "/etc/tandem/cluster.key"
nodes = [
  { name = "lb1", address = "10.0.0.1" },
  { name = "lb2", address = "10.0.0.2" },
]
"#;

    const MCAST: &str =
        "\n[[heartbeat]]\nkind = \"udp-multicast\"\ninterface = \"eth0\"\ngroup = \"239.192.0.1:5405\"\n";

    fn parse_ok(text: &str) -> Config {
        match parse(text, Path::new("t.toml")) {
            Ok(c) => c,
            Err(d) => panic!("unexpected diagnostics:\n{d}\nin:\n{text}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match parse(text, Path::new("t.toml")) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(d) => d.to_string(),
        }
    }

    /// Exactly one diagnostic, containing `want`.
    fn assert_one_error(text: &str, want: &str, what: &str) {
        let got = parse_err(text);
        assert!(got.contains(want), "{what}: wanted {want:?} in\n{got}");
        assert_eq!(
            got.matches("t.toml:").count(),
            1,
            "{what}: one diagnostic\n{got}"
        );
    }

    #[test]
    fn cluster_and_heartbeats_with_their_defaults() {
        let c = parse_ok(&format!(
            r#"{MINIMAL}{CLUSTER}{MCAST}
[[heartbeat]]
kind = "tcp"
port = 5406

[[heartbeat]]
kind = "udp-unicast"
port = 5406
bind = "10.0.0.1"
interval = "10ms"
timeout = "11ms"

[[heartbeat]]
kind = "serial"
device = "/dev/ttyS1"

[[heartbeat]]
kind = "serial"
device = "/dev/ttyUSB0"
baud = 9600

[[heartbeat]]
kind = "udp-multicast"
interface = "eth1"
group = "[ff12::1]:5405"
"#
        ));
        let cluster = c.cluster.as_ref().unwrap();
        assert_eq!(cluster.name, "edge");
        assert_eq!(cluster.key_file, Path::new("/etc/tandem/cluster.key"));
        // MINIMAL is lines 1-9, CLUSTER 10-17 (both start with an empty line).
        assert_eq!(
            cluster.key_file_origin,
            Origin {
                file: "t.toml".into(),
                line: 13,
                col: 12
            }
        );
        assert_eq!(cluster.key_file_origin.to_string(), "t.toml:13:12");
        assert_eq!(
            cluster.nodes,
            [
                ClusterNode {
                    name: "lb1".into(),
                    address: "10.0.0.1".parse().unwrap(),
                    role: Role::Voter
                },
                ClusterNode {
                    name: "lb2".into(),
                    address: "10.0.0.2".parse().unwrap(),
                    role: Role::Voter
                },
            ]
        );
        assert_eq!(c.cluster_node().unwrap().name, "lb1");
        assert_eq!(cluster.node("lb2").unwrap().address.to_string(), "10.0.0.2");
        let peers: Vec<&str> = cluster.peers("lb1").map(|n| n.name.as_str()).collect();
        assert_eq!(peers, ["lb2"]);
        assert_eq!(cluster.unfence, Unfence::Manual);

        let kinds: Vec<&HeartbeatKind> = c.heartbeats.iter().map(|h| &h.kind).collect();
        assert_eq!(
            kinds,
            [
                &HeartbeatKind::UdpMulticast {
                    interface: "eth0".into(),
                    group: "239.192.0.1:5405".parse().unwrap()
                },
                &HeartbeatKind::Tcp {
                    port: 5406,
                    bind: None
                },
                &HeartbeatKind::UdpUnicast {
                    port: 5406,
                    bind: Some("10.0.0.1".parse().unwrap())
                },
                &HeartbeatKind::Serial {
                    device: "/dev/ttyS1".into(),
                    baud: DEFAULT_SERIAL_BAUD
                },
                &HeartbeatKind::Serial {
                    device: "/dev/ttyUSB0".into(),
                    baud: 9600
                },
                &HeartbeatKind::UdpMulticast {
                    interface: "eth1".into(),
                    group: "[ff12::1]:5405".parse().unwrap()
                },
            ]
        );
        let names: Vec<&str> = c.heartbeats.iter().map(|h| h.kind.name()).collect();
        assert_eq!(
            names,
            [
                "udp-multicast",
                "tcp",
                "udp-unicast",
                "serial",
                "serial",
                "udp-multicast"
            ]
        );
        let hb = &c.heartbeats;
        assert_eq!(hb[0].interval, DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(hb[0].timeout, DEFAULT_HEARTBEAT_TIMEOUT);
        assert_eq!(
            (hb[2].interval, hb[2].timeout),
            (Duration::from_millis(10), Duration::from_millis(11))
        );
        assert_eq!(hb[0].origin.to_string(), "t.toml:19:1");
        assert_eq!(hb[0].device_origin, None);
        assert_eq!(
            hb[3].device_origin.as_ref().unwrap().to_string(),
            "t.toml:37:10"
        );

        // Peers and bind of unicast channels come from [cluster] nodes.
        let lb2: SocketAddr = "10.0.0.2:5406".parse().unwrap();
        assert_eq!(c.heartbeat_peers(&hb[1]), [lb2]);
        assert_eq!(c.heartbeat_peers(&hb[2]), [lb2]);
        assert!(c.heartbeat_peers(&hb[0]).is_empty());
        let own: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(c.heartbeat_bind(&hb[1]), Some(own));
        assert_eq!(c.heartbeat_bind(&hb[2]), Some(own));
        assert_eq!(c.heartbeat_bind(&hb[3]), None);
    }

    #[test]
    fn nodes_may_be_written_as_tables_and_roles_agree() {
        let long = r#"
[cluster]
name = "edge"
key_file = "/etc/tandem/cluster.key"

[[cluster.nodes]]
name = "lb1"
address = "10.0.0.1"

[[cluster.nodes]]
name = "lb2"
address = "10.0.0.2"
"#;
        let a = parse_ok(&format!("{MINIMAL}{long}{MCAST}"));
        let b = parse_ok(&format!("{MINIMAL}{CLUSTER}{MCAST}"));
        assert_eq!(a.cluster.as_ref().unwrap().nodes, b.cluster.unwrap().nodes);

        // An arbiter is a member too, with the same role in both places.
        let c = parse_ok(&format!(
            "[node]\nname = \"arb\"\nrole = \"arbiter\"\n{}{MCAST}",
            CLUSTER.replace(
                "  { name = \"lb2\", address = \"10.0.0.2\" },",
                "  { name = \"lb2\", address = \"10.0.0.2\" },\n  { name = \"arb\", address = \"10.0.0.3\", role = \"arbiter\" },"
            )
        ));
        assert_eq!(c.cluster_node().unwrap().role, Role::Arbiter);
        assert_eq!(c.cluster.unwrap().nodes.len(), 3);
    }

    /// Each case edits CLUSTER and gives one diagnostic.
    #[test]
    fn cluster_rules() {
        let lb2 = "  { name = \"lb2\", address = \"10.0.0.2\" },\n";
        let cases: &[(&str, &str, &str)] = &[
            ("name = \"edge\"", "name = \"\"", "name: must not be empty"),
            (
                "name = \"edge\"",
                "name = \"e d\"",
                "name: \"e d\" contains \" \", which is not allowed\n  hint: cluster names use",
            ),
            (
                "name = \"edge\"",
                &format!("name = \"{}\"", "e".repeat(65)),
                "is 65 bytes, longer than the 64 a heartbeat frame carries",
            ),
            (
                "name = \"edge\"\n",
                "",
                "[cluster] is missing the required key \"name\"",
            ),
            (
                "\"/etc/tandem/cluster.key\"",
                "\"cluster.key\"",
                "key_file: must be an absolute path, found \"cluster.key\"",
            ),
            (
                "\"/etc/tandem/cluster.key\"",
                "\"\"",
                "key_file: must not be empty",
            ),
            (
                "key_file = \"/etc/tandem/cluster.key\"\n",
                "",
                "[cluster] is missing the required key \"key_file\"",
            ),
            (
                "key_file = \"/etc/tandem/cluster.key\"",
                "key = \"s3cret\"\nkey_file = \"/etc/tandem/cluster.key\"",
                "unknown key \"key\" in [cluster]\n  hint: the key is read from a file",
            ),
            (
                "name = \"edge\"",
                "name = \"edge\"\nmembers = []",
                "write nodes = [{ name = \"lb1\"",
            ),
            (lb2, "", "nodes: a cluster needs at least two nodes, found 1"),
            (
                "\"lb1\", address",
                "\"lb3\", address",
                "t.toml:3:8: name: \"lb1\" is not one of the [cluster] nodes\n  hint: did you mean \
                 \"lb3\"? [cluster] nodes lists \"lb3\", \"lb2\"; every member, this node included, \
                 must be listed there",
            ),
            (
                lb2,
                "  \"lb2\",\n",
                "nodes: expected a table, found a string\n  hint: write { name = \"lb2\", address",
            ),
            (
                lb2,
                "  \"10.0.0.2\",\n",
                "hint: write { name = \"NAME\", address = \"10.0.0.2\" }",
            ),
            (lb2, "  2,\n", "nodes: expected a table, found an integer"),
            (
                lb2,
                "  { name = \"lb2\" },\n",
                "a [cluster] nodes entry is missing the required key \"address\"",
            ),
            (
                lb2,
                "  { address = \"10.0.0.2\" },\n",
                "a [cluster] nodes entry is missing the required key \"name\"",
            ),
            (
                "\"10.0.0.2\"",
                "\"10.0.0.2/24\"",
                "address: \"10.0.0.2/24\" has a prefix length",
            ),
            (
                "\"10.0.0.2\"",
                "\"lb2.example\"",
                "address: \"lb2.example\" is not an IPv4 or IPv6 address",
            ),
            (
                "\"10.0.0.2\"",
                "\"239.1.1.1\"",
                "address: 239.1.1.1 cannot be a unicast address",
            ),
            (
                "\"10.0.0.2\"",
                "\"255.255.255.255\"",
                "address: 255.255.255.255 is the broadcast address",
            ),
            (
                "\"10.0.0.2\" }",
                "\"10.0.0.2\", role = \"witness\" }",
                "role: unknown role \"witness\"",
            ),
            (
                "\"10.0.0.2\" }",
                "\"10.0.0.2\", addr = \"10.0.0.2\" }",
                "unknown key \"addr\" in a [cluster] nodes entry\n  hint: write address",
            ),
            (
                "\"lb2\"",
                "\"lb1\"",
                "name: node \"lb1\" is listed twice in [cluster] nodes\n  hint: node names are \
                 unique; the first is at line 15, column 12",
            ),
            (
                "\"lb2\"",
                "\"l b\"",
                "name: \"l b\" contains \" \"",
            ),
            (
                "nodes = [\n  { name = \"lb1\", address = \"10.0.0.1\" },\n  { name = \"lb2\", address = \"10.0.0.2\" },\n]",
                "nodes = []",
                "nodes: a cluster needs at least two nodes, found none",
            ),
            (
                "nodes = [\n  { name = \"lb1\", address = \"10.0.0.1\" },\n  { name = \"lb2\", address = \"10.0.0.2\" },\n]",
                "nodes = \"lb1 lb2\"",
                "nodes: expected an array, found a string",
            ),
            (
                "\"10.0.0.1\" }",
                "\"10.0.0.1\", role = \"arbiter\" }",
                "[node] role is \"voter\" (the default), but this node's [cluster] nodes entry \
                 says \"arbiter\"\n  hint: add role = \"arbiter\" to [node], or change the entry at \
                 line 15, column 3",
            ),
        ];
        for (from, to, want) in cases {
            let cluster = CLUSTER.replacen(from, to, 1);
            assert_ne!(cluster, CLUSTER, "{from:?} is in CLUSTER");
            assert_one_error(&format!("{MINIMAL}{cluster}{MCAST}"), want, to);
        }
        // A role written in [node] is where the disagreement is reported.
        let got = parse_err(&format!(
            "[node]\nname = \"lb1\"\nrole = \"arbiter\"\n{CLUSTER}{MCAST}"
        ));
        assert_eq!(
            got,
            "t.toml:3:8: role: \"arbiter\" here, but \"voter\" in this node's [cluster] nodes \
             entry\n  hint: the two must agree; the entry is at line 9, column 3: change one of \
             them\n"
        );
        // Too few nodes, and this node not among them: both are said at once.
        let got = parse_err(&format!(
            "{MINIMAL}{}{MCAST}",
            CLUSTER.replace("  { name = \"lb1\", address = \"10.0.0.1\" },\n", "")
        ));
        assert!(got.contains("at least two nodes, found 1"), "{got}");
        assert!(
            got.contains("\"lb1\" is not one of the [cluster] nodes"),
            "{got}"
        );
        // A misspelt [node] name gets a suggestion.
        assert_one_error(
            &format!("{}{CLUSTER}{MCAST}", MINIMAL.replace("\"lb1\"", "\"lb-1\"")),
            "hint: did you mean \"lb1\"? [cluster] nodes lists \"lb1\", \"lb2\"",
            "lb-1",
        );
        assert_one_error(
            &format!("{MINIMAL}[[cluster]]\nname = \"edge\"\n{MCAST}"),
            "cluster: expected a table, found an array of tables\n  hint: write [cluster] with \
             single brackets",
            "[[cluster]]",
        );
        assert_one_error(
            &format!("cluster = \"edge\"\n{MINIMAL}{MCAST}"),
            "cluster: expected a table, found a string",
            "cluster = string",
        );
    }

    /// tandem-heartbeat's frame limit: at most 17 nodes, and names short enough that a frame
    /// with two echo entries per peer fits 1400 bytes.
    #[test]
    fn the_cluster_fits_a_heartbeat_frame() {
        let cluster = |names: &[String]| {
            let nodes: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{{ name = \"{n}\", address = \"10.0.1.{}\" }}", i + 1))
                .collect();
            format!(
                "[node]\nname = \"{}\"\n\n[cluster]\nname = \"edge\"\nkey_file = \"/k\"\n\
                 nodes = [{}]\n{MCAST}{}",
                names[0],
                nodes.join(", "),
                MINIMAL
                    .split("\n[[vrrp_instance]]")
                    .nth(1)
                    .map_or(String::new(), |i| format!("\n[[vrrp_instance]]{i}"))
            )
        };
        let short: Vec<String> = (0..17).map(|i| format!("n{i}")).collect();
        parse_ok(&cluster(&short));
        let many: Vec<String> = (0..18).map(|i| format!("n{i}")).collect();
        assert_one_error(
            &cluster(&many),
            "nodes: 18 nodes are more than a heartbeat frame can report on (at most 17)",
            "18 nodes",
        );
        // 16 peers × 2 × (21 + 40) bytes of echoes alone are 1952 bytes.
        let long: Vec<String> = (0..17).map(|i| format!("{i:040}")).collect();
        assert_one_error(
            &cluster(&long),
            "nodes: a heartbeat frame from \"0000000000000000000000000000000000000000\" would \
             be 2062 bytes, more than the 1400 that fit",
            "long names",
        );
        // The largest frame is the one sent by the node with the shortest name.
        let mut mixed: Vec<String> = (0..12).map(|i| format!("{i:040}")).collect();
        mixed.push("a".into());
        let got = parse_err(&cluster(&mixed));
        assert!(got.contains("a heartbeat frame from \"a\""), "{got}");
    }

    /// Each case is the body of one [[heartbeat]] after CLUSTER and gives one diagnostic.
    #[test]
    fn heartbeat_rules() {
        let cases: &[(&str, &str)] = &[
            (
                "interface = \"eth0\"",
                "[[heartbeat]] is missing the required key \"kind\"",
            ),
            ("kind = 1", "kind: expected a string, found an integer"),
            (
                "kind = \"udp\"",
                "did you mean \"udp-multicast\" or \"udp-unicast\"?",
            ),
            ("kind = \"udp_unicast\"", "did you mean \"udp-unicast\"?"),
            ("kind = \"ucast\"", "did you mean \"udp-unicast\"?"),
            ("kind = \"TCP\"", "did you mean \"tcp\"?"),
            ("kind = \"bcast\"", "broadcast is not supported"),
            (
                "kind = \"udp-multicast\"\ninterface = \"eth0\"",
                "[[heartbeat]] is missing the required key \"group\"",
            ),
            (
                "kind = \"udp-multicast\"\ngroup = \"239.192.0.1:5405\"",
                "[[heartbeat]] is missing the required key \"interface\"",
            ),
            (
                "kind = \"udp-multicast\"\ninterface = \"eth0:1\"\ngroup = \"239.192.0.1:5405\"",
                "interface: \"eth0:1\" contains \":\"",
            ),
            (
                "kind = \"udp-multicast\"\ninterface = \"eth0\"\ngroup = \"239.192.0.1:0\"",
                "group: port 0 is not allowed",
            ),
            (
                "kind = \"udp-multicast\"\ninterface = \"eth0\"\ngroup = 5405",
                "group: expected a string, found an integer",
            ),
            (
                "kind = \"udp-multicast\"\ninterface = \"eth0\"\ngroup = \"239.192.0.1:5405\"\nport = 5405",
                "\"port\" is for kind = \"udp-unicast\" heartbeats, and this heartbeat is kind = \
                 \"udp-multicast\"\n  hint: the port goes in group",
            ),
            (
                "kind = \"tcp\"\nport = 5406\ndevice = \"/dev/ttyS1\"",
                "\"device\" is for kind = \"serial\" heartbeats, and this heartbeat is kind = \"tcp\"\n  \
                 hint: remove it, or set kind = \"serial\"",
            ),
            (
                "kind = \"tcp\"",
                "[[heartbeat]] is missing the required key \"port\"",
            ),
            ("kind = \"tcp\"\nport = 0", "port: must be 1 to 65535, found 0"),
            (
                "kind = \"udp-unicast\"\nport = 65536",
                "port: must be 1 to 65535, found 65536",
            ),
            (
                "kind = \"tcp\"\nport = 5406\nbind = \"224.0.0.1\"",
                "bind: 224.0.0.1 is a multicast address",
            ),
            (
                "kind = \"tcp\"\nport = 5406\nbind = \"10.0.0.1/24\"",
                "bind: \"10.0.0.1/24\" has a prefix length",
            ),
            (
                "kind = \"tcp\"\nport = 5406\nbind = \"lb1\"",
                "bind: \"lb1\" is not an IPv4 or IPv6 address",
            ),
            (
                "kind = \"tcp\"\nport = 5406\nbind = \"10.0.0.2\"",
                "bind: 10.0.0.2 is the address of node \"lb2\"\n  hint: bind is an address of \
                 this node (by default its [cluster] address, 10.0.0.1)",
            ),
            (
                "kind = \"udp-unicast\"\nport = 5406\nbind = \"fd00::1\"",
                "bind: fd00::1 is IPv6 but node \"lb2\" has the IPv4 address 10.0.0.2",
            ),
            (
                "kind = \"udp-unicast\"\nport = 5406\npeers = [\"10.0.0.2:5406\"]",
                "unknown key \"peers\" in [[heartbeat]]\n  hint: a udp-unicast or tcp heartbeat \
                 sends to the other [cluster] nodes' addresses",
            ),
            (
                "kind = \"serial\"",
                "[[heartbeat]] is missing the required key \"device\"",
            ),
            (
                "kind = \"serial\"\ndevice = \"ttyS1\"",
                "device: must be an absolute path, found \"ttyS1\"",
            ),
            ("kind = \"serial\"\ndevice = \"\"", "device: must not be empty"),
            (
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\nbaud = \"115200\"",
                "baud: expected an integer, found a string",
            ),
            (
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\nbaud = 0",
                "baud: 0 is not a standard serial speed",
            ),
            (
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\nbaud = 9601",
                "did you mean 9600?",
            ),
            (
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\nspeed = 9600",
                "write baud = 115200",
            ),
            (
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\ninterval = \"9ms\"\ntimeout = \"1s\"",
                "interval: 9ms is shorter than the minimum of 10ms",
            ),
            (
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\ninterval = 1",
                "interval: expected a duration string, found an integer",
            ),
            (
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\ntimeout = \"50ms\"",
                "timeout: 50ms is not longer than the default interval (100ms)\n  hint: a peer is \
                 down on this channel after timeout without a frame: make it at least 3 × \
                 interval, like timeout = \"300ms\"",
            ),
            (
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\ntimeout = \"fast\"",
                "timeout: invalid duration \"fast\"",
            ),
            (
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\nname = \"hb0\"",
                "a heartbeat has no name",
            ),
            (
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\nintervall = \"1s\"",
                "did you mean \"interval\"?",
            ),
        ];
        for (body, want) in cases {
            let text = format!("{MINIMAL}{CLUSTER}\n[[heartbeat]]\n{body}\n");
            assert_one_error(&text, want, body);
        }
        assert_one_error(
            &format!(
                "{MINIMAL}{CLUSTER}\n[heartbeat]\nkind = \"serial\"\ndevice = \"/dev/ttyS1\"\n"
            ),
            "heartbeat: expected an array of tables, found a table",
            "[heartbeat]",
        );
        // An unknown kind still has its other keys checked, against every kind's keys.
        let got = parse_err(&format!(
            "{MINIMAL}{CLUSTER}\n[[heartbeat]]\nkind = \"mcast\"\ngroupp = \"x\"\n"
        ));
        assert!(got.contains("did you mean \"udp-multicast\"?"), "{got}");
        assert!(
            got.contains(
                "unknown key \"groupp\" in [[heartbeat]]\n  hint: did you mean \"group\"?"
            ),
            "{got}"
        );
    }

    /// Rules between channels.
    #[test]
    fn channels_do_not_collide() {
        let two = |a: &str, b: &str| {
            format!("{MINIMAL}{CLUSTER}\n[[heartbeat]]\n{a}\n\n[[heartbeat]]\n{b}\n")
        };
        assert_one_error(
            &two("kind = \"tcp\"\nport = 5406", "kind = \"tcp\"\nport = 5406"),
            "t.toml:25:8: port: 5406 is already used by another tcp heartbeat\n  hint: each tcp \
             channel needs its own port; the other is at line 21, column 8",
            "tcp ports",
        );
        assert_one_error(
            &two(
                "kind = \"udp-unicast\"\nport = 5406",
                "kind = \"udp-unicast\"\nport = 5406\nbind = \"0.0.0.0\"",
            ),
            "port: 5406 is already used by another udp-unicast heartbeat",
            "udp ports",
        );
        // UDP and TCP ports are separate spaces.
        parse_ok(&two(
            "kind = \"udp-unicast\"\nport = 5406",
            "kind = \"tcp\"\nport = 5406",
        ));
        assert_one_error(
            &two(
                "kind = \"udp-multicast\"\ninterface = \"eth0\"\ngroup = \"239.192.0.1:5405\"",
                "kind = \"udp-multicast\"\ninterface = \"eth1\"\ngroup = \"239.192.0.1:5405\"",
            ),
            "group: 239.192.0.1:5405 is already used by another udp-multicast heartbeat",
            "groups",
        );
        parse_ok(&two(
            "kind = \"udp-multicast\"\ninterface = \"eth0\"\ngroup = \"239.192.0.1:5405\"",
            "kind = \"udp-multicast\"\ninterface = \"eth1\"\ngroup = \"239.192.0.2:5405\"",
        ));
        assert_one_error(
            &two(
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"",
                "kind = \"serial\"\ndevice = \"/dev/ttyS1\"\nbaud = 9600",
            ),
            "device: \"/dev/ttyS1\" is already used by another serial heartbeat",
            "devices",
        );
        // A wire channel id is one byte.
        let mut text = format!("{MINIMAL}{CLUSTER}");
        for i in 0..=MAX_HEARTBEATS {
            text.push_str(&format!(
                "\n[[heartbeat]]\nkind = \"tcp\"\nport = {}\n",
                1000 + i
            ));
        }
        assert_one_error(&text, "more than 256 [[heartbeat]] entries", "257 channels");
        text.truncate(text.rfind("\n[[heartbeat]]").unwrap());
        assert_eq!(parse_ok(&text).heartbeats.len(), 256);
    }

    #[test]
    fn unicast_channels_need_one_address_family() {
        let mixed = CLUSTER.replace("\"10.0.0.2\"", "\"fd00::2\"");
        // Multicast and serial channels do not use the node addresses.
        parse_ok(&format!("{MINIMAL}{mixed}{MCAST}"));
        assert_one_error(
            &format!("{MINIMAL}{mixed}\n[[heartbeat]]\nkind = \"tcp\"\nport = 5406\n"),
            "t.toml:20:8: kind: a \"tcp\" heartbeat sends to the other nodes' [cluster] \
             addresses, and node \"lb2\"'s (fd00::2) is IPv6 while this node's (10.0.0.1) is IPv4",
            "mixed families",
        );
        // An explicit bind of the peers' family is fine.
        let c = parse_ok(&format!(
            "{MINIMAL}{mixed}\n[[heartbeat]]\nkind = \"tcp\"\nport = 5406\nbind = \"fd00::1\"\n"
        ));
        assert_eq!(
            c.heartbeat_bind(&c.heartbeats[0]),
            Some("fd00::1".parse().unwrap())
        );
    }

    #[test]
    fn cluster_and_heartbeats_need_each_other() {
        assert_eq!(
            parse_err(&format!("{MINIMAL}{CLUSTER}")),
            "t.toml:11:1: [cluster] has no [[heartbeat]]: the nodes would never hear from each \
             other\n  hint: add at least one [[heartbeat]] channel (kind = \"udp-multicast\", \
             \"udp-unicast\", \"tcp\" or \"serial\"); two independent ones, like udp-multicast \
             and serial, are recommended: a peer is down only when every channel says so\n"
        );
        // The entries are still checked, and each one is reported.
        let got = parse_err(&format!(
            "{MINIMAL}{MCAST}\n[[heartbeat]]\nkind = \"tcp\"\n"
        ));
        assert_eq!(
            got.matches(
                "without a [cluster] section\n  hint: heartbeats authenticate with the \
                         cluster key: add a [cluster] section"
            )
            .count(),
            2,
            "{got}"
        );
        assert!(got.contains("missing the required key \"port\""), "{got}");
        // A misspelt section is one mistake, not two.
        assert_one_error(
            &format!(
                "{MINIMAL}{}{MCAST}",
                CLUSTER.replace("[cluster]", "[clustre]")
            ),
            "unknown section [clustre]\n  hint: did you mean [cluster]?",
            "[clustre]",
        );
        assert_one_error(
            &format!(
                "{MINIMAL}{CLUSTER}{}",
                MCAST.replace("[[heartbeat]]", "[[heartbeats]]")
            ),
            "unknown section [[heartbeats]]\n  hint: did you mean [[heartbeat]]?",
            "[[heartbeats]]",
        );
        // A [cluster] that is not a table is reported once.
        assert_one_error(
            &format!("cluster = 1\n{MINIMAL}"),
            "cluster: expected a table, found an integer",
            "cluster = 1",
        );
    }

    const ARB: &str = "  { name = \"arb\", address = \"10.0.0.3\", role = \"arbiter\" },\n";

    /// CLUSTER with an arbiter as third member.
    fn three() -> String {
        CLUSTER.replace("10.0.0.2\" },\n", &format!("10.0.0.2\" }},\n{ARB}"))
    }

    /// MINIMAL with its instance in quorum mode (`mode` is on line 9, column 8).
    fn quorum() -> String {
        MINIMAL.replace(
            "virtual_router_id = 51",
            "virtual_router_id = 51\nmode = \"quorum\"",
        )
    }

    /// A quorum instance in the three-node cluster with `keys` added to [cluster].
    fn with_lease_keys(keys: &str) -> String {
        format!(
            "{}{}{MCAST}",
            quorum(),
            three().replace("nodes = [", &format!("{keys}\nnodes = ["))
        )
    }

    #[test]
    fn quorum_mode_gets_the_lease_defaults() {
        let c = parse_ok(&format!("{}{}{MCAST}", quorum(), three()));
        assert_eq!(c.vrrp_instances[0].mode, Mode::Quorum);
        assert_eq!(c.vrrp_instances[0].mode.name(), "quorum");
        assert!(c.raft_enabled());
        let cluster = c.cluster.as_ref().unwrap();
        assert_eq!(
            (
                cluster.lease,
                cluster.lease_renew,
                cluster.lease_margin,
                cluster.raft_port
            ),
            (
                Duration::from_secs(1),
                Duration::from_millis(250),
                Duration::from_millis(100),
                5410
            )
        );
        let voters: Vec<&str> = cluster.voters().map(|n| n.name.as_str()).collect();
        assert_eq!(voters, ["lb1", "lb2"]);
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            c.raft_peers(),
            [
                ("lb1", sa("10.0.0.1:5410"), Role::Voter),
                ("lb2", sa("10.0.0.2:5410"), Role::Voter),
                ("arb", sa("10.0.0.3:5410"), Role::Arbiter),
            ]
        );
        // The derived defaults follow the lease.
        let c = parse_ok(&with_lease_keys("lease = \"2s\"\nraft_port = 7000"));
        let cluster = c.cluster.as_ref().unwrap();
        assert_eq!(
            (cluster.lease_renew, cluster.lease_margin),
            (Duration::from_millis(500), Duration::from_millis(200))
        );
        assert_eq!(c.raft_peers()[2].1, sa("10.0.0.3:7000"));
        // Written values are taken as they are, up to the edges of the rules.
        let c = parse_ok(&with_lease_keys(
            "lease = \"100ms\"\nlease_renew = \"10ms\"\nlease_margin = \"39ms\"",
        ));
        let cluster = c.cluster.unwrap();
        assert_eq!(
            (cluster.lease, cluster.lease_renew, cluster.lease_margin),
            (
                Duration::from_millis(100),
                Duration::from_millis(10),
                Duration::from_millis(39)
            )
        );
        parse_ok(&with_lease_keys("lease = \"60s\""));
        parse_ok(&with_lease_keys(
            "lease_renew = \"399ms\"\nlease_margin = \"100ms\"",
        ));
    }

    #[test]
    fn raft_runs_for_a_quorum_instance_or_an_arbiter() {
        // A pure-VRRP pair: no Raft, yet the lease keys are accepted as cluster-wide facts.
        let c = parse_ok(&format!(
            "{MINIMAL}{}{MCAST}",
            CLUSTER.replace("nodes = [", "lease = \"3s\"\nnodes = [")
        ));
        assert!(!c.raft_enabled());
        assert_eq!(c.cluster.as_ref().unwrap().lease, Duration::from_secs(3));
        assert_eq!(c.raft_peers().len(), 2);
        // An arbiter among the members runs Raft on every node, whatever the modes.
        assert!(parse_ok(&format!("{MINIMAL}{}{MCAST}", three())).raft_enabled());
        // Three voters, no arbiter.
        let voters = three().replace(", role = \"arbiter\"", "");
        let c = parse_ok(&format!("{}{voters}{MCAST}", quorum()));
        assert!(c.raft_enabled());
        assert_eq!(c.cluster.as_ref().unwrap().voters().count(), 3);
        let c = parse_ok(MINIMAL);
        assert!(!c.raft_enabled());
        assert!(c.raft_peers().is_empty());
    }

    #[test]
    fn quorum_mode_needs_a_cluster_of_three() {
        assert_eq!(
            parse_err(&quorum()),
            "t.toml:9:8: mode: \"quorum\" needs a [cluster] section\n  hint: quorum mode hands \
             out VIP leases through the cluster's Raft log: add [cluster] with at least 3 nodes \
             (two load balancers and an arbiter) and a [[heartbeat]], or use mode = \"vrrp\"\n"
        );
        assert_eq!(
            parse_err(&format!("{}{CLUSTER}{MCAST}", quorum())),
            "t.toml:9:8: mode: \"quorum\" needs at least 3 [cluster] nodes (voters and \
             arbiters), found 2\n  hint: with two nodes the Raft majority is both of them, so \
             losing either stops every lease: add an arbiter node, which votes but never holds \
             a VIP, to [cluster] nodes, like { name = \"arb\", address = \"...\", role = \
             \"arbiter\" }\n"
        );
        // Each quorum instance is pointed at.
        let second = "\n[[vrrp_instance]]\nname = \"VI_2\"\ninterface = \"eth1\"\n\
                      virtual_router_id = 52\nvirtual_ipaddress = [\"192.0.2.101/24\"]\n\
                      mode = \"quorum\"\n";
        let got = parse_err(&format!("{}{second}", quorum()));
        assert_eq!(got.matches("needs a [cluster] section").count(), 2, "{got}");
        // Mistakes about the cluster itself are not echoed by the mode.
        assert_one_error(
            &format!(
                "{}{}{MCAST}",
                quorum(),
                CLUSTER.replace("  { name = \"lb2\", address = \"10.0.0.2\" },\n", "")
            ),
            "nodes: a cluster needs at least two nodes, found 1",
            "one node",
        );
        assert_one_error(
            &format!(
                "{}{}{MCAST}",
                quorum(),
                three().replace("[cluster]", "[clustre]")
            ),
            "unknown section [clustre]",
            "misspelt cluster",
        );
        assert_one_error(
            &format!("cluster = 1\n{}", quorum()),
            "cluster: expected a table, found an integer",
            "cluster not a table",
        );
        assert_one_error(
            &format!("{}{}{MCAST}", quorum(), three().replace(ARB, "  2,\n")),
            "nodes: expected a table, found an integer",
            "three entries, one broken",
        );
        // A misspelt mode gets a suggestion among both.
        assert_one_error(
            &MINIMAL.replace(
                "virtual_router_id = 51",
                "virtual_router_id = 51\nmode = \"qorum\"",
            ),
            "mode: unknown mode \"qorum\"\n  hint: did you mean \"quorum\"? mode is \"vrrp\" or \
             \"quorum\"",
            "qorum",
        );
    }

    #[test]
    fn an_arbiter_needs_a_cluster() {
        let arbiter = "[node]\nname = \"arb\"\nrole = \"arbiter\"\n";
        assert_eq!(
            parse_err(arbiter),
            "t.toml:3:8: role: an arbiter needs a [cluster] section\n  hint: an arbiter only \
             votes in the cluster's Raft quorum: add [cluster] with name, key_file and nodes \
             (this node among them with role = \"arbiter\"), and a [[heartbeat]]\n"
        );
        let c = parse_ok(&format!("{arbiter}{}{MCAST}", three()));
        assert!(c.raft_enabled());
        assert!(c.vrrp_instances.is_empty());
        assert_one_error(
            &format!(
                "{arbiter}{}{MCAST}",
                three().replace("[cluster]", "[clustr]")
            ),
            "unknown section [clustr]",
            "misspelt cluster",
        );
    }

    /// Each case adds keys to the [cluster] of a three-node quorum config and gives one
    /// diagnostic.
    #[test]
    fn lease_rules() {
        let cases: &[(&str, &str)] = &[
            (
                "lease = \"50ms\"",
                "t.toml:15:9: lease: 50ms is shorter than the minimum of 100ms\n  hint: the \
                 holder renews several times per lease, and each renewal is a Raft commit \
                 written to disk on a majority; the default is \"1s\"",
            ),
            (
                "lease = \"61s\"",
                "lease: 61s is longer than the maximum of 1m\n  hint: the VIPs of a failed \
                 holder stay down for about one lease; the default is \"1s\"",
            ),
            ("lease = 1", "write \"1s\" if you mean seconds"),
            ("lease = \"1 s\"", "lease: invalid duration \"1 s\""),
            (
                "lease_renew = \"500ms\"",
                "lease_renew: 500ms is too long for the default lease of 1s: the renew interval \
                 must be shorter than half the lease\n  hint: a lost renewal needs a retry \
                 before the lease runs out; like lease_renew = \"250ms\" (lease / 4, the \
                 default)",
            ),
            (
                "lease = \"2s\"\nlease_renew = \"1.5s\"",
                "lease_renew: 1.5s is too long for lease = \"2s\"",
            ),
            (
                "lease = \"333ms\"\nlease_renew = \"200ms\"",
                "like lease_renew = \"83ms\"",
            ),
            (
                "lease_renew = \"5ms\"",
                "lease_renew: 5ms is shorter than the minimum of 10ms",
            ),
            (
                "lease_margin = \"0s\"",
                "lease_margin: must be longer than 0s\n  hint: the margin absorbs",
            ),
            (
                "lease_margin = \"500ms\"",
                "lease_margin: 500ms is too big for the default lease of 1s: the margin must be \
                 shorter than half the lease",
            ),
            (
                "lease_renew = \"300ms\"\nlease_margin = \"250ms\"",
                "t.toml:15:15: lease_renew: 300ms with lease_margin = \"250ms\" leaves no time to \
                 retry a lost renewal before the holder must let go (the default lease of 1s)\n  \
                 hint: the retry goes out 2 × lease_renew after the last committed renewal and \
                 must still have a margin to commit before lease − lease_margin: keep \
                 2 × (lease_renew + lease_margin) below the lease, like lease_renew = \"250ms\" \
                 and lease_margin = \"100ms\" (the defaults)",
            ),
            (
                "lease_renew = \"400ms\"",
                "lease_renew: 400ms with the default lease_margin of 100ms leaves no time",
            ),
            (
                "lease = \"2s\"\nlease_margin = \"800ms\"",
                "lease_margin: 800ms with the default lease_renew of 500ms leaves no time to \
                 retry a lost renewal before the holder must let go (lease = \"2s\")",
            ),
            (
                "raft_port = 0",
                "raft_port: must be 1 to 65535, found 0\n  hint: the TCP port the Raft transport \
                 listens on at every member's address, the same on every node; the default is \
                 5410",
            ),
            (
                "raft_port = 65536",
                "raft_port: must be 1 to 65535, found 65536",
            ),
            (
                "raft_port = \"5410\"",
                "raft_port: expected an integer, found a string",
            ),
            ("lease_renw = \"1s\"", "did you mean \"lease_renew\"?"),
            (
                "lease_renew = \"10000000000000000000s\"",
                "lease_renew: 10000000000000000000s is too long",
            ),
            (
                "lease_margin = \"10000000000000000000s\"",
                "lease_margin: 10000000000000000000s is too big",
            ),
        ];
        for (keys, want) in cases {
            assert_one_error(&with_lease_keys(keys), want, keys);
        }
        // Each key's own mistake is reported even when another key is wrong too.
        let got = parse_err(&with_lease_keys(
            "lease = \"10ms\"\nlease_renew = \"1ms\"\nlease_margin = \"0s\"\nraft_port = 0",
        ));
        assert_eq!(got.matches("t.toml:").count(), 4, "{got}");
    }

    #[test]
    fn the_raft_port_is_not_a_tcp_heartbeat_port() {
        let tcp = |port: u16, extra: &str| {
            format!("\n[[heartbeat]]\nkind = \"tcp\"\nport = {port}\n{extra}\n")
        };
        let base = format!("{}{}", quorum(), three());
        assert_one_error(
            &format!("{base}{}", tcp(5410, "")),
            "t.toml:23:8: port: 5410 is the Raft transport's TCP port (the default raft_port)\n  \
             hint: both listen on TCP at this node's [cluster] address (10.0.0.1): choose \
             another port for this heartbeat, or set raft_port in [cluster]",
            "default raft port",
        );
        assert_one_error(
            &format!(
                "{}{}{}",
                quorum(),
                three().replace("nodes = [", "raft_port = 5406\nnodes = ["),
                tcp(5406, "bind = \"0.0.0.0\"")
            ),
            "t.toml:15:13: raft_port: 5406 is also the port of a tcp [[heartbeat]]\n  hint: both \
             listen on TCP at this node's [cluster] address (10.0.0.1); the heartbeat's port is \
             at line 24, column 8: give one of them another port",
            "explicit raft port",
        );
        // Another local address, another protocol, or no Raft at all: no clash.
        parse_ok(&format!("{base}{}", tcp(5410, "bind = \"10.0.9.1\"")));
        parse_ok(&format!(
            "{base}\n[[heartbeat]]\nkind = \"udp-unicast\"\nport = 5410\n"
        ));
        parse_ok(&format!("{MINIMAL}{CLUSTER}{}", tcp(5410, "")));
    }

    #[test]
    fn kind_key_tables_agree() {
        for k in KINDS {
            assert_eq!(&k.spec().valid[..COMMON_KEYS.len()], COMMON_KEYS);
            for key in k.spec().valid {
                assert!(ANY_KEYS.valid.contains(key), "{key}");
            }
        }
        assert_eq!(
            KINDS.map(Kind::name).as_slice(),
            KIND_NAMES,
            "KIND_NAMES follows KINDS"
        );
    }

    #[test]
    fn groups() {
        let ok = |s: &str| parse_group(s).unwrap().to_string();
        assert_eq!(ok("239.192.0.1:5405"), "239.192.0.1:5405");
        assert_eq!(ok("[ff12::1]:5405"), "[ff12::1]:5405");
        let err = |s: &str| parse_group(s).unwrap_err().0;
        assert_eq!(err("10.0.0.1:5405"), "10.0.0.1 is not a multicast address");
        assert_eq!(err("[fd00::1]:5405"), "fd00::1 is not a multicast address");
        assert_eq!(err("239.192.0.1:0"), "port 0 is not allowed");
        assert_eq!(err("239.192.0.1"), "\"239.192.0.1\" has no port");
        assert!(parse_group("ff12::1")
            .unwrap_err()
            .1
            .contains("\"[ff12::1]:5405\""));
        assert_eq!(
            err("239.192.0.1:70000"),
            "port 70000 is out of range (1 to 65535)"
        );
        assert_eq!(err("239.192.0.1:x"), "port \"x\" is not a number");
        assert_eq!(err("[ff12::1]:"), "port \"\" is not a number");
        assert_eq!(
            err("mcast.example:5405"),
            "\"mcast.example:5405\" is not an IP address and port"
        );
        assert_eq!(err(""), "\"\" is not an IP address and port");
    }

    /// A `[[fence_device]]` for `node` and its level 1.
    fn fence_for(node: &str) -> String {
        format!(
            "\n[[fence_device]]\nname = \"{node}-bmc\"\ndriver = \"ipmi\"\naddress = \"10.0.9.9\"\n\
             username = \"admin\"\npassword_file = \"/etc/tandem/secrets/{node}-bmc\"\n\n\
             [[fence_level]]\nnode = \"{node}\"\nlevel = 1\ndevices = [{{ device = \"{node}-bmc\" }}]\n"
        )
    }

    /// `instance` (MINIMAL or quorum()) with `fence_on_takeover = true` as its last key: line
    /// 10 for MINIMAL, 11 for quorum(), the value at column 21.
    fn fencing(instance: &str) -> String {
        format!("{instance}fence_on_takeover = true\n")
    }

    #[test]
    fn fence_on_takeover_in_a_pair() {
        let c = parse_ok(&format!(
            "{}{}{MCAST}{}",
            fencing(MINIMAL),
            CLUSTER.replace("nodes = [", "unfence = \"auto\"\nnodes = ["),
            fence_for("lb2")
        ));
        assert!(c.vrrp_instances[0].fence_on_takeover);
        assert_eq!(c.vrrp_instances[0].mode, Mode::Vrrp);
        assert_eq!(c.cluster.as_ref().unwrap().unfence, Unfence::Auto);
        assert_eq!(Unfence::Auto.name(), "auto");
        assert_eq!(Unfence::default(), Unfence::Manual);
        assert_eq!(c.fence_levels_of("lb2").len(), 1);
        // false is the default and asks for nothing.
        let c = parse_ok(&format!("{MINIMAL}fence_on_takeover = false\n"));
        assert!(!c.vrrp_instances[0].fence_on_takeover);
        let c = parse_ok(&format!(
            "{MINIMAL}{}{MCAST}",
            CLUSTER.replace("nodes = [", "unfence = \"manual\"\nnodes = [")
        ));
        assert_eq!(c.cluster.as_ref().unwrap().unfence, Unfence::Manual);
    }

    #[test]
    fn fence_on_takeover_rules() {
        assert_eq!(
            parse_err(&fencing(MINIMAL)),
            "t.toml:10:21: fence_on_takeover: needs a [cluster] section\n  hint: fencing acts \
             on a node the heartbeats declared silent: add [cluster] with the nodes and a \
             [[heartbeat]], and a [[fence_level]] for the peer\n"
        );
        // A misspelt [cluster] is reported once, as such.
        assert_one_error(
            &format!(
                "{}{}{MCAST}{}",
                fencing(MINIMAL),
                CLUSTER.replace("[cluster]", "[clustre]"),
                fence_for("lb2")
            ),
            "unknown section [clustre]",
            "misspelt cluster",
        );
        // vrrp mode: a pair, no arbiter.
        assert_eq!(
            parse_err(&format!(
                "{}{}{MCAST}{}",
                fencing(MINIMAL),
                three(),
                fence_for("lb2")
            )),
            "t.toml:10:21: fence_on_takeover: in vrrp mode it is for a pair without an arbiter; \
             [cluster] has 3 nodes with an arbiter\n  hint: with three or more members use \
             mode = \"quorum\", where the majority decides who fences (fence_on_takeover works \
             there too)\n"
        );
        let three_voters = CLUSTER.replace(
            "10.0.0.2\" },\n",
            "10.0.0.2\" },\n  { name = \"lb3\", address = \"10.0.0.3\" },\n",
        );
        assert_one_error(
            &format!(
                "{}{three_voters}{MCAST}{}{}",
                fencing(MINIMAL),
                fence_for("lb2"),
                fence_for("lb3")
            ),
            "t.toml:10:21: fence_on_takeover: in vrrp mode it is for a pair without an arbiter; \
             [cluster] has 3 nodes\n",
            "three voters",
        );
        // The peer needs a fence level; one for this node does not count.
        let no_level = "t.toml:10:21: fence_on_takeover: no [[fence_level]] for lb2, the node \
                        this one would fence\n  hint: add a [[fence_device]] for lb2 (its BMC, \
                        PDU outlet or switch port) and [[fence_level]] node = \"lb2\", level = 1, \
                        devices = [{ device = \"...\" }]\n";
        assert_eq!(
            parse_err(&format!("{}{CLUSTER}{MCAST}", fencing(MINIMAL))),
            no_level
        );
        assert_eq!(
            parse_err(&format!(
                "{}{CLUSTER}{MCAST}{}",
                fencing(MINIMAL),
                fence_for("lb1")
            )),
            no_level
        );
        // A level for the peer with a mistake in it is that mistake only.
        assert_one_error(
            &format!(
                "{}{CLUSTER}{MCAST}{}",
                fencing(MINIMAL),
                fence_for("lb2").replace(
                    "devices = [{ device = \"lb2-bmc\"",
                    "devices = [{ device = \"lb2-bcm\""
                )
            ),
            "devices: no [[fence_device]] is named \"lb2-bcm\"",
            "level with an unknown device",
        );
        // Quorum mode: every other voter, not the arbiter.
        let q = format!("{}{}{MCAST}", fencing(&quorum()), three());
        assert_one_error(
            &q,
            "t.toml:11:21: fence_on_takeover: no [[fence_level]] for lb2, a node this one may \
             have to fence (as the Raft leader)\n",
            "quorum without levels",
        );
        let c = parse_ok(&format!("{q}{}", fence_for("lb2")));
        assert!(c.vrrp_instances[0].fence_on_takeover);
        assert_eq!(c.vrrp_instances[0].mode, Mode::Quorum);
        // Each instance with the key is pointed at.
        let second = "\n[[vrrp_instance]]\nname = \"VI_2\"\ninterface = \"eth1\"\n\
                      virtual_router_id = 52\nvirtual_ipaddress = [\"192.0.2.101/24\"]\n\
                      fence_on_takeover = true\n";
        let got = parse_err(&format!("{}{second}", fencing(MINIMAL)));
        assert_eq!(got.matches("needs a [cluster] section").count(), 2, "{got}");
        // Not a boolean: the type error only.
        assert_one_error(
            &format!("{MINIMAL}fence_on_takeover = \"yes\"\n"),
            "t.toml:10:21: fence_on_takeover: expected true or false, found a string",
            "string",
        );
    }

    #[test]
    fn unfence_is_manual_or_auto() {
        assert_one_error(
            &format!(
                "{MINIMAL}{}{MCAST}",
                CLUSTER.replace("nodes = [", "unfence = \"sometimes\"\nnodes = [")
            ),
            "t.toml:14:11: unfence: unknown unfence \"sometimes\"\n  hint: unfence is \
             \"manual\" or \"auto\"\n",
            "unknown value",
        );
        assert_one_error(
            &format!(
                "{MINIMAL}{}{MCAST}",
                CLUSTER.replace("nodes = [", "unfence = \"atuo\"\nnodes = [")
            ),
            "did you mean \"auto\"?",
            "misspelt value",
        );
        assert_one_error(
            &format!(
                "{MINIMAL}{}{MCAST}",
                CLUSTER.replace("nodes = [", "unfence = true\nnodes = [")
            ),
            "unfence: expected a string, found a boolean",
            "boolean",
        );
    }
}
