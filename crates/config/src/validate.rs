//! The walk over the parsed TOML: every section, key and value is checked and every problem is
//! recorded, so one `tandem check` run shows them all instead of one per edit-and-retry.
//!
//! Values that fail a check become `None` and the checks that depend on them are skipped, so a
//! single mistake is reported once rather than echoed by every rule that reads it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{Table, Value};

use crate::duration::parse_duration;
use crate::position::LineIndex;
use crate::suggest::did_you_mean;
use crate::tree::{value_type_name, Field, Node, Span, TableRef};
use crate::{
    format_duration, AddressFamily, Authentication, Cluster, Config, Diagnostic, IpPrefix, Mode,
    NodeConfig, Origin, Role, VrrpInstance, VrrpVersion, DEFAULT_CONTROL_SOCKET, DEFAULT_STATE_DIR,
    MAX_FENCE_DELAY,
};

mod checks;
mod cluster;
mod fencing;
mod tracking;

/// Collects diagnostics for one file.
pub(crate) struct Ctx<'a> {
    file: String,
    index: LineIndex<'a>,
    pub(crate) diags: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &Path, text: &'a str) -> Self {
        Ctx {
            file: file.display().to_string(),
            index: LineIndex::new(text),
            diags: Vec::new(),
        }
    }

    /// Record a problem at `span` (the start of the document when nothing better is known).
    pub(crate) fn error(&mut self, span: Option<Span>, message: String, hint: Option<String>) {
        let (line, col) = self.index.line_col(span.map_or(0, |s| s.start));
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            line,
            col,
            message,
            hint,
        });
    }

    /// "line 7, column 3" of a span, for hints that point back at an earlier definition.
    fn where_is(&self, span: &Option<Span>) -> String {
        let (line, col) = self.index.line_col(span.as_ref().map_or(0, |s| s.start));
        format!("line {line}, column {col}")
    }

    /// "FILE:LINE:COL" of a span, for values the daemon quotes in its own messages.
    fn origin(&self, span: &Option<Span>) -> String {
        let (line, col) = self.index.line_col(span.as_ref().map_or(0, |s| s.start));
        format!("{}:{line}:{col}", self.file)
    }

    /// [`Ctx::origin`] as an [`Origin`].
    fn origin_at(&self, span: &Option<Span>) -> Origin {
        let (line, col) = self.index.line_col(span.as_ref().map_or(0, |s| s.start));
        Origin {
            file: self.file.clone(),
            line,
            col,
        }
    }

    fn line_of(&self, span: &Option<Span>) -> usize {
        self.index.line_col(span.as_ref().map_or(0, |s| s.start)).0
    }

    fn type_error(&mut self, key: &str, span: Option<Span>, expected: &str, found: &str) {
        self.error(
            span,
            format!("{key}: expected {expected}, found {found}"),
            None,
        );
    }

    fn string(&mut self, f: &Field<'a>) -> Option<&'a str> {
        match f.node {
            Node::Value(Value::String(s)) => Some(s.value().as_str()),
            other => {
                self.type_error(f.key, f.span(), "a string", other.type_name());
                None
            }
        }
    }

    fn integer(&mut self, f: &Field<'a>) -> Option<i64> {
        match f.node {
            Node::Value(Value::Integer(i)) => Some(*i.value()),
            other => {
                self.type_error(f.key, f.span(), "an integer", other.type_name());
                None
            }
        }
    }

    fn boolean(&mut self, f: &Field<'a>) -> Option<bool> {
        match f.node {
            Node::Value(Value::Boolean(b)) => Some(*b.value()),
            other => {
                self.type_error(f.key, f.span(), "true or false", other.type_name());
                None
            }
        }
    }

    fn array(&mut self, f: &Field<'a>) -> Option<&'a toml_edit::Array> {
        match f.node {
            Node::Value(Value::Array(a)) => Some(a),
            other => {
                self.type_error(f.key, f.span(), "an array", other.type_name());
                None
            }
        }
    }

    /// An integer within `lo..=hi`.
    fn int_in(&mut self, f: &Field<'a>, lo: i64, hi: i64, hint: Option<&str>) -> Option<i64> {
        let n = self.integer(f)?;
        if (lo..=hi).contains(&n) {
            Some(n)
        } else {
            self.error(
                f.span(),
                format!("{}: must be {lo} to {hi}, found {n}", f.key),
                hint.map(str::to_string),
            );
            None
        }
    }

    /// A duration string; with the original text, which messages quote as the user wrote it.
    fn duration(&mut self, f: &Field<'a>) -> Option<(Duration, &'a str)> {
        const FORMAT: &str =
            "durations are strings like \"100ms\", \"1.5s\" or \"2m\" (units ms, s, m, h)";
        match f.node {
            Node::Value(Value::String(s)) => {
                let text = s.value().as_str();
                match parse_duration(text) {
                    Ok(d) => Some((d, text)),
                    Err(e) => {
                        self.error(
                            f.span(),
                            format!("{}: invalid duration {text:?}: {e}", f.key),
                            Some(FORMAT.to_string()),
                        );
                        None
                    }
                }
            }
            Node::Value(Value::Integer(i)) => {
                // A bare number is most likely keepalived's seconds; say how to write that.
                self.error(
                    f.span(),
                    format!("{}: expected a duration string, found an integer", f.key),
                    Some(format!(
                        "{FORMAT}; write \"{}s\" if you mean seconds",
                        i.value()
                    )),
                );
                None
            }
            other => {
                self.error(
                    f.span(),
                    format!(
                        "{}: expected a duration string, found {}",
                        f.key,
                        other.type_name()
                    ),
                    Some(FORMAT.to_string()),
                );
                None
            }
        }
    }

    /// A string that must be one of `choices`.
    fn choice(&mut self, f: &Field<'a>, what: &str, choices: &[&str]) -> Option<&'a str> {
        let s = self.string(f)?;
        if choices.contains(&s) {
            return Some(s);
        }
        let list = quoted_list(choices);
        let hint = match did_you_mean(s, choices) {
            Some(c) => format!("did you mean \"{c}\"? {} is {list}", f.key),
            None => format!("{} is {list}", f.key),
        };
        self.error(
            f.span(),
            format!("{}: unknown {what} {s:?}", f.key),
            Some(hint),
        );
        None
    }
}

/// `"a", "b" or "c"`
fn quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// What a table accepts, for the unknown-key check.
struct KeySpec {
    /// Accepted keys, in the order the hint lists them.
    valid: &'static [&'static str],
    /// Keys from the documented format that this build does not implement yet: refused with a
    /// message saying so, rather than "unknown", so nobody hunts for a typo.
    unsupported: &'static [&'static str],
    /// Keys people bring from keepalived, with what to write instead.
    notes: &'static [(&'static str, &'static str)],
}

const NODE_KEYS: KeySpec = KeySpec {
    valid: &[
        "name",
        "role",
        "state_dir",
        "control_socket",
        "fence_delay",
        "fence_random_delay",
    ],
    unsupported: &[],
    notes: &[],
};

const INSTANCE_KEYS: KeySpec = KeySpec {
    valid: &[
        "name",
        "interface",
        "virtual_router_id",
        "priority",
        "version",
        "advert_int",
        "virtual_ipaddress",
        "preempt",
        "preempt_delay",
        "accept_mode",
        "mode",
        "unicast_src_ip",
        "unicast_peer",
        "authentication",
        "garp_master_delay",
        "garp_master_repeat",
        "garp_master_refresh",
        "garp_master_refresh_repeat",
        "garp_lower_prio_repeat",
        "higher_prio_send_advert",
        "track_interface",
        "track_check",
        "track_file",
        "notify",
        "notify_timeout",
        "fence_on_takeover",
    ],
    unsupported: &[],
    notes: &[
        (
            "state",
            "tandem has no initial state: the instance with the highest priority becomes master",
        ),
        ("nopreempt", "write preempt = false"),
        ("vrrp_version", "write version = 2 or version = 3"),
        ("vrid", "did you mean \"virtual_router_id\"?"),
        (
            "virtual_ipaddress_excluded",
            "list these addresses in virtual_ipaddress: those of the other family than the \
             first are carried along like keepalived's virtual_ipaddress_excluded",
        ),
        (
            "auth_type",
            "write authentication = { auth_type = \"PASS\", auth_pass = \"...\" }",
        ),
        (
            "auth_pass",
            "write authentication = { auth_type = \"PASS\", auth_pass = \"...\" }",
        ),
        (
            "track_script",
            "use track_check with a [[check]] of kind = \"script\"",
        ),
        ("notify_master", NOTIFY_NOTE),
        ("notify_backup", NOTIFY_NOTE),
        ("notify_fault", NOTIFY_NOTE),
        ("notify_stop", NOTIFY_NOTE),
        ("notify_master_rx_lower_pri", NOTIFY_NOTE),
    ],
};

/// For keepalived's per-state notify keys.
const NOTIFY_NOTE: &str =
    "tandem runs one notify script with the state as argument: write notify = \"/path/to/script\"";

const AUTH_KEYS: KeySpec = KeySpec {
    valid: &["auth_type", "auth_pass"],
    unsupported: &[],
    notes: &[],
};

const SECTIONS: &[&str] = &[
    "node",
    "cluster",
    "heartbeat",
    "vrrp_instance",
    "check",
    "vrrp_sync_group",
    "fence_device",
    "fence_level",
];
/// The sections written `[[name]]`: a node may have several.
const ARRAY_SECTIONS: &[&str] = &[
    "heartbeat",
    "vrrp_instance",
    "check",
    "vrrp_sync_group",
    "fence_device",
    "fence_level",
];
const SECTIONS_TEXT: &str = "[node], [cluster], [[heartbeat]], [[vrrp_instance]], [[check]], \
                             [[vrrp_sync_group]], [[fence_device]], [[fence_level]]";
/// Top-level sections people bring from keepalived.conf: the section that replaces each, and
/// what to write instead.
const SECTION_NOTES: &[(&str, &str, &str)] = &[(
    "vrrp_script",
    "check",
    "keepalived's vrrp_script is a [[check]] with kind = \"script\", which instances name in \
     track_check",
)];

/// One table being validated.
struct Section<'a> {
    /// How messages name it: "[node]", "[[vrrp_instance]]", "authentication".
    title: &'static str,
    /// Where "missing key" errors point: the table's header or `{`, else its key.
    header: Option<Span>,
    fields: Vec<Field<'a>>,
}

impl<'a> Section<'a> {
    fn new(table: TableRef<'a>, title: &'static str, fallback: Option<Span>) -> Self {
        Section {
            title,
            header: table.span().or(fallback),
            fields: table.fields(),
        }
    }

    fn get(&self, key: &str) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.key == key)
    }

    fn required(&self, ctx: &mut Ctx<'a>, key: &str, example: &str) -> Option<&Field<'a>> {
        let f = self.get(key);
        if f.is_none() {
            ctx.error(
                self.header.clone(),
                format!("{} is missing the required key \"{key}\"", self.title),
                Some(format!("add {example}")),
            );
        }
        f
    }

    fn check_keys(&self, ctx: &mut Ctx<'a>, spec: &KeySpec) {
        for f in &self.fields {
            if !spec.valid.contains(&f.key) {
                self.report_key(ctx, f, spec);
            }
        }
    }

    /// Report a key that `spec` does not accept: not supported yet, a keepalived habit with
    /// its replacement, or unknown with a did-you-mean.
    fn report_key(&self, ctx: &mut Ctx<'a>, f: &Field<'a>, spec: &KeySpec) {
        let valid = format!("valid keys: {}", spec.valid.join(", "));
        if spec.unsupported.contains(&f.key) {
            let why = spec
                .notes
                .iter()
                .find(|(k, _)| *k == f.key)
                .map(|(_, n)| format!("{n}; "))
                .unwrap_or_default();
            ctx.error(
                f.key_span.clone(),
                format!(
                    "\"{}\" in {} is not supported by this build yet",
                    f.key, self.title
                ),
                Some(format!("{why}remove it; {valid}")),
            );
            return;
        }
        let note = spec
            .notes
            .iter()
            .find(|(k, _)| *k == f.key)
            .map(|(_, n)| n.to_string())
            .or_else(|| did_you_mean(f.key, spec.valid).map(|c| format!("did you mean \"{c}\"?")));
        let hint = match note {
            // "did you mean "x"? valid keys: ..." reads better without a semicolon.
            Some(n) if n.ends_with('?') => format!("{n} {valid}"),
            Some(n) => format!("{n}; {valid}"),
            None => valid,
        };
        ctx.error(
            f.key_span.clone(),
            format!("unknown key \"{}\" in {}", f.key, self.title),
            Some(hint),
        );
    }
}

/// Validate a parsed document. Returns the config only when no diagnostic was recorded.
pub(crate) fn check<'a>(root: &'a Table, ctx: &mut Ctx<'a>, path: &Path) -> Option<Config> {
    let mut node_field = None;
    let mut cluster_field = None;
    let mut heartbeat_field = None;
    let mut instances_field = None;
    let mut checks_field = None;
    let mut groups_field = None;
    let mut fence_devices_field = None;
    let mut fence_levels_field = None;
    // Sections reported as "did you mean [x]?": their absence is the same mistake, not a
    // second one.
    let mut misspelt: Vec<&str> = Vec::new();
    for f in TableRef::Table(root).fields() {
        match f.key {
            "node" => node_field = Some(f),
            "cluster" => cluster_field = Some(f),
            "heartbeat" => heartbeat_field = Some(f),
            "vrrp_instance" => instances_field = Some(f),
            "check" => checks_field = Some(f),
            "vrrp_sync_group" => groups_field = Some(f),
            "fence_device" => fence_devices_field = Some(f),
            "fence_level" => fence_levels_field = Some(f),
            other => misspelt.extend(unknown_top_level(ctx, &f, other)),
        }
    }

    let node = node_section(ctx, node_field.as_ref(), !misspelt.contains(&"node"));

    let cluster_out = cluster_field
        .as_ref()
        .map(|f| cluster::cluster_section(ctx, f, &node));
    let hb = cluster::heartbeats(
        ctx,
        heartbeat_field.as_ref(),
        cluster_field.as_ref(),
        cluster_out.as_ref(),
        cluster::Misspelt {
            cluster: misspelt.contains(&"cluster"),
            heartbeat: misspelt.contains(&"heartbeat"),
        },
    );

    // Checks first: instances name them in track_check.
    let (checks, checks_complete) = match &checks_field {
        Some(f) => {
            let tables = section_tables(ctx, f);
            let outs: Vec<checks::CheckOut> = tables
                .tables
                .into_iter()
                .map(|(t, fallback)| checks::check_section(ctx, t, fallback))
                .collect();
            (outs, tables.complete)
        }
        None => (Vec::new(), true),
    };
    checks::cross_check(ctx, &checks);
    // Unknown names in track_check are only reported when every check's name is known: a
    // reference to a check whose name is itself wrong would be the same mistake twice.
    let check_names: Option<Vec<&str>> = if checks_complete && !misspelt.contains(&"check") {
        checks.iter().map(|c| c.name_text.as_deref()).collect()
    } else {
        None
    };

    let (instances, instances_complete) = match &instances_field {
        Some(f) => {
            let tables = section_tables(ctx, f);
            let outs: Vec<InstanceOut> = tables
                .tables
                .into_iter()
                .map(|(t, fallback)| instance(ctx, t, fallback, check_names.as_deref()))
                .collect();
            (outs, tables.complete)
        }
        None => (Vec::new(), true),
    };

    match node.role {
        Some(Role::Arbiter) => {
            if cluster_field.is_none() && !misspelt.contains(&"cluster") {
                // The role is only arbiter when written, so the role field is there to point at.
                let span = node.role_field.as_ref().and_then(Field::span);
                ctx.error(
                    span.or_else(|| node.header.clone()),
                    "role: an arbiter needs a [cluster] section".to_string(),
                    Some(
                        "an arbiter only votes in the cluster's Raft quorum: add [cluster] with \
                         name, key_file and nodes (this node among them with role = \"arbiter\"), \
                         and a [[heartbeat]]"
                            .to_string(),
                    ),
                );
            }
            if let Some(f) = &instances_field {
                ctx.error(
                    f.span(),
                    "an arbiter never holds a virtual IP, so it has no [[vrrp_instance]]"
                        .to_string(),
                    Some(
                        "remove the [[vrrp_instance]] sections, or set role = \"voter\" in [node]"
                            .to_string(),
                    ),
                );
            }
        }
        Some(Role::Voter) if instances_field.is_none() && !misspelt.contains(&"vrrp_instance") => {
            ctx.error(
                node.header.clone(),
                "no [[vrrp_instance]]: a voter needs at least one".to_string(),
                Some(
                    "add [[vrrp_instance]] with name, interface, virtual_router_id and \
                     virtual_ipaddress"
                        .to_string(),
                ),
            );
        }
        _ => {}
    }

    cross_check(ctx, &instances);

    let quorum_modes: Vec<Option<Span>> =
        instances.iter().filter_map(|i| i.quorum.clone()).collect();
    cluster::quorum_rules(
        ctx,
        &quorum_modes,
        cluster_field.as_ref(),
        cluster_out.as_ref(),
        misspelt.contains(&"cluster"),
    );
    if let Some(c) = &cluster_out {
        // Arbiter or quorum instance: the Raft transport listens next to the heartbeats.
        if !quorum_modes.is_empty() || c.has_arbiter {
            cluster::raft_port_is_free(ctx, c, &hb.tcp_ports);
        }
    }

    let instance_names: Option<Vec<&str>> =
        if instances_complete && !misspelt.contains(&"vrrp_instance") {
            instances.iter().map(|i| i.name_text.as_deref()).collect()
        } else {
            None
        };
    let groups = match &groups_field {
        Some(f) => section_tables(ctx, f)
            .tables
            .into_iter()
            .map(|(t, fallback)| tracking::sync_group(ctx, t, fallback, instance_names.as_deref()))
            .collect(),
        None => Vec::new(),
    };
    tracking::sync_cross_check(ctx, &groups);

    let (devices, devices_complete) = match &fence_devices_field {
        Some(f) => {
            let tables = section_tables(ctx, f);
            let outs: Vec<fencing::DeviceOut> = tables
                .tables
                .into_iter()
                .map(|(t, fallback)| fencing::device(ctx, t, fallback))
                .collect();
            (outs, tables.complete)
        }
        None => (Vec::new(), true),
    };
    fencing::devices_cross_check(ctx, &devices);
    let device_names: Option<Vec<&str>> = if devices_complete && !misspelt.contains(&"fence_device")
    {
        devices.iter().map(|d| d.name_text.as_deref()).collect()
    } else {
        None
    };
    let node_names: Option<Vec<&str>> = cluster_out
        .as_ref()
        .and_then(|c| c.cluster.as_ref())
        .map(|c| c.nodes.iter().map(|n| n.name.as_str()).collect());
    let (levels, levels_complete): (Vec<fencing::LevelOut>, bool) = match &fence_levels_field {
        Some(f) => {
            let tables = section_tables(ctx, f);
            let outs = tables
                .tables
                .into_iter()
                .map(|(t, fallback)| {
                    fencing::level(
                        ctx,
                        t,
                        fallback,
                        device_names.as_deref(),
                        node_names.as_deref(),
                    )
                })
                .collect();
            (outs, tables.complete)
        }
        None => (Vec::new(), true),
    };
    fencing::levels_cross_check(ctx, &levels);
    // The nodes with a [[fence_level]]; `None` when some level could not be read (its node
    // unknown), so no node is reported as having none.
    let fenced_nodes: Option<Vec<&str>> = if levels_complete && !misspelt.contains(&"fence_level") {
        levels.iter().map(|l| l.node.as_deref()).collect()
    } else {
        None
    };
    for (mode, span) in instances.iter().filter_map(|i| i.fence.clone()) {
        fence_on_takeover_rules(
            ctx,
            mode,
            span,
            cluster_out.as_ref().and_then(|c| c.cluster.as_ref()),
            cluster_field.is_some() || misspelt.contains(&"cluster"),
            node.config.as_ref().map(|n| n.name.as_str()),
            fenced_nodes.as_deref(),
        );
    }

    if !ctx.diags.is_empty() {
        return None;
    }
    let node = node.config?;
    let vrrp_instances = instances
        .into_iter()
        .map(|i| i.instance)
        .collect::<Option<Vec<_>>>()?;
    let checks = checks
        .into_iter()
        .map(|c| c.check)
        .collect::<Option<Vec<_>>>()?;
    let sync_groups = groups
        .into_iter()
        .map(|g| g.group)
        .collect::<Option<Vec<_>>>()?;
    let fence_devices = devices
        .into_iter()
        .map(|d| d.device)
        .collect::<Option<Vec<_>>>()?;
    let fence_levels = levels
        .into_iter()
        .map(|l| l.level)
        .collect::<Option<Vec<_>>>()?;
    let cluster = match cluster_out {
        Some(c) => Some(c.cluster?),
        None => None,
    };
    Some(Config {
        path: path.to_path_buf(),
        node,
        vrrp_instances,
        checks,
        sync_groups,
        cluster,
        heartbeats: hb.list?,
        fence_devices,
        fence_levels,
    })
}

/// `fence_on_takeover`: a cluster to know the peers from, the pair shape in vrrp mode, and a
/// way to fence every node this one may have to fence. `cluster_written`: a [cluster] is
/// there (maybe with errors already reported), so only its absence is reported here.
/// `fenced_nodes`: the nodes with a `[[fence_level]]` (`None`: not all levels could be read).
/// Every error points at the instance's `fence_on_takeover` value.
fn fence_on_takeover_rules(
    ctx: &mut Ctx<'_>,
    mode: Mode,
    span: Option<Span>,
    cluster: Option<&Cluster>,
    cluster_written: bool,
    me: Option<&str>,
    fenced_nodes: Option<&[&str]>,
) {
    let Some(cluster) = cluster else {
        if !cluster_written {
            ctx.error(
                span,
                "fence_on_takeover: needs a [cluster] section".to_string(),
                Some(
                    "fencing acts on a node the heartbeats declared silent: add [cluster] with \
                     the nodes and a [[heartbeat]], and a [[fence_level]] for the peer"
                        .to_string(),
                ),
            );
        }
        return;
    };
    if mode == Mode::Vrrp {
        let arbiter = cluster.nodes.iter().any(|n| n.role == Role::Arbiter);
        if cluster.nodes.len() != 2 || arbiter {
            ctx.error(
                span.clone(),
                format!(
                    "fence_on_takeover: in vrrp mode it is for a pair without an arbiter; \
                     [cluster] has {} nodes{}",
                    cluster.nodes.len(),
                    if arbiter { " with an arbiter" } else { "" }
                ),
                Some(
                    "with three or more members use mode = \"quorum\", where the majority \
                     decides who fences (fence_on_takeover works there too)"
                        .to_string(),
                ),
            );
            return;
        }
    }
    let (Some(me), Some(fenced_nodes)) = (me, fenced_nodes) else {
        return;
    };
    for n in &cluster.nodes {
        if n.name == me || n.role != Role::Voter || fenced_nodes.contains(&n.name.as_str()) {
            continue;
        }
        let which = match mode {
            Mode::Vrrp => "the node this one would fence",
            Mode::Quorum => "a node this one may have to fence (as the Raft leader)",
        };
        ctx.error(
            span.clone(),
            format!(
                "fence_on_takeover: no [[fence_level]] for {}, {which}",
                n.name
            ),
            Some(format!(
                "add a [[fence_device]] for {0} (its BMC, PDU outlet or switch port) and \
                 [[fence_level]] node = \"{0}\", level = 1, devices = [{{ device = \"...\" }}]",
                n.name
            )),
        );
    }
}

/// Report a top-level key that is not a supported section. Returns the section it looks like a
/// misspelling of, if any.
fn unknown_top_level(ctx: &mut Ctx<'_>, f: &Field<'_>, key: &str) -> Option<&'static str> {
    let (open, close) = match f.node {
        Node::TableArray(_) => ("[[", "]]"),
        Node::Value(Value::Array(a)) if a.iter().all(|v| v.is_inline_table()) && !a.is_empty() => {
            ("[[", "]]")
        }
        _ => ("[", "]"),
    };
    let is_section = f.node.as_table().is_some() || open == "[[";
    let (suggestion, guess) = match SECTION_NOTES.iter().find(|(k, _, _)| *k == key) {
        Some((_, section, note)) => (Some(*section), format!("{note}; ")),
        None => {
            let suggestion = did_you_mean(key, SECTIONS);
            let guess = suggestion.map(|s| {
                if ARRAY_SECTIONS.contains(&s) {
                    format!("did you mean [[{s}]]? ")
                } else {
                    format!("did you mean [{s}]? ")
                }
            });
            (suggestion, guess.unwrap_or_default())
        }
    };
    if is_section {
        ctx.error(
            f.span(),
            format!("unknown section {open}{key}{close}"),
            Some(format!("{guess}valid sections: {SECTIONS_TEXT}")),
        );
    } else {
        ctx.error(
            f.key_span.clone(),
            format!("unknown key \"{key}\" at the top level"),
            Some(format!(
                "{guess}keys belong in a section; valid sections: {SECTIONS_TEXT}"
            )),
        );
    }
    suggestion
}

struct NodeOut<'a> {
    config: Option<NodeConfig>,
    /// Known even when other [node] keys are wrong, for the instance-count rule.
    role: Option<Role>,
    header: Option<Span>,
    /// The name, if valid, and where it is, for the [cluster] membership rule.
    name: Option<(String, Option<Span>)>,
    /// The `role` key, if written.
    role_field: Option<Field<'a>>,
}

fn node_section<'a>(
    ctx: &mut Ctx<'a>,
    field: Option<&Field<'a>>,
    report_missing: bool,
) -> NodeOut<'a> {
    let Some(field) = field else {
        if report_missing {
            ctx.error(
                None,
                "missing [node] section".to_string(),
                Some("every config needs [node] with at least name = \"...\"".to_string()),
            );
        }
        // Still check the instances as for the default role.
        return NodeOut {
            config: None,
            role: Some(Role::Voter),
            header: None,
            name: None,
            role_field: None,
        };
    };
    let Some(table) = field.node.as_table() else {
        ctx.error(
            field.span(),
            format!("node: expected a table, found {}", field.node.type_name()),
            Some("write [node] on a line of its own, followed by its keys".to_string()),
        );
        return NodeOut {
            config: None,
            role: None,
            header: field.span(),
            name: None,
            role_field: None,
        };
    };
    let sec = Section::new(table, "[node]", field.key_span.clone());
    sec.check_keys(ctx, &NODE_KEYS);

    let name = sec
        .required(ctx, "name", "name = \"lb1\" (unique in the cluster)")
        .and_then(|f| {
            let s = ctx.string(f)?;
            check_name(ctx, f, s, "node").then(|| (s.to_string(), f.span()))
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
    let state_dir = abs_path(ctx, sec.get("state_dir"), DEFAULT_STATE_DIR);
    let control_socket = abs_path(ctx, sec.get("control_socket"), DEFAULT_CONTROL_SOCKET);
    if let (Some(p), Some(f)) = (&control_socket, sec.get("control_socket")) {
        // sun_path is 108 bytes including the terminating NUL; a longer path cannot be bound.
        let len = p.as_os_str().len();
        if len > 107 {
            ctx.error(
                f.span(),
                format!("control_socket: the path is {len} bytes, longer than a Unix socket path can be (107)"),
                Some("choose a shorter path, e.g. the default \"/run/tandem/tandem.sock\"".to_string()),
            );
        }
    }

    let fence_delay = fence_delay_key(ctx, sec.get("fence_delay"));
    let fence_random_delay = fence_delay_key(ctx, sec.get("fence_random_delay"));

    let config = (|| {
        Some(NodeConfig {
            name: name.as_ref()?.0.clone(),
            role: role?,
            state_dir: state_dir?,
            control_socket: control_socket.filter(|p| p.as_os_str().len() <= 107)?,
            fence_delay: fence_delay?,
            fence_random_delay: fence_random_delay?,
        })
    })();
    let role_field = sec.get("role").cloned();
    NodeOut {
        config,
        role,
        header: sec.header,
        name,
        role_field,
    }
}

/// `fence_delay` / `fence_random_delay`: 0 when absent, at most [`MAX_FENCE_DELAY`].
fn fence_delay_key<'a>(ctx: &mut Ctx<'a>, f: Option<&Field<'a>>) -> Option<Duration> {
    let Some(f) = f else {
        return Some(Duration::ZERO);
    };
    let (d, text) = ctx.duration(f)?;
    if d > MAX_FENCE_DELAY {
        ctx.error(
            f.span(),
            format!(
                "{}: {text} is longer than the maximum of {}",
                f.key,
                format_duration(MAX_FENCE_DELAY)
            ),
            Some(
                "the delay only has to outlast the other node's fence (seconds); a longer one \
                 keeps the VIPs down that long when the peer really failed"
                    .to_string(),
            ),
        );
        return None;
    }
    Some(d)
}

/// An absolute path, or `default` when the key is absent. Relative paths are refused because
/// the daemon's working directory is whatever systemd or the shell gave it.
fn abs_path<'a>(ctx: &mut Ctx<'a>, f: Option<&Field<'a>>, default: &str) -> Option<PathBuf> {
    let Some(f) = f else {
        return Some(PathBuf::from(default));
    };
    let s = ctx.string(f)?;
    if !s.starts_with('/') {
        ctx.error(
            f.span(),
            format!("{}: must be an absolute path, found {s:?}", f.key),
            Some(format!("the default is \"{default}\"")),
        );
        return None;
    }
    Some(PathBuf::from(s))
}

/// Node and instance names: they appear in status tables, logs and CLI arguments, so they are
/// kept to characters that need no quoting anywhere.
fn check_name(ctx: &mut Ctx<'_>, f: &Field<'_>, s: &str, what: &str) -> bool {
    let hint = Some(format!(
        "{what} names use letters, digits, \"_\", \".\" and \"-\""
    ));
    if s.is_empty() {
        ctx.error(f.span(), format!("{}: must not be empty", f.key), hint);
        return false;
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        ctx.error(
            f.span(),
            format!(
                "{}: {s:?} contains \"{}\", which is not allowed",
                f.key,
                bad.escape_debug()
            ),
            hint,
        );
        return false;
    }
    true
}

/// The kernel's rule (`dev_valid_name`): 1 to 15 bytes, not "." or "..", no "/", ":" or
/// whitespace.
fn check_ifname(ctx: &mut Ctx<'_>, f: &Field<'_>, s: &str) -> bool {
    check_ifname_at(ctx, f.key, f.span(), s)
}

/// [`check_ifname`] for a value that is not a whole field (an entry of a list).
fn check_ifname_at(ctx: &mut Ctx<'_>, key: &str, span: Option<Span>, s: &str) -> bool {
    let problem = if s.is_empty() {
        Some("must not be empty".to_string())
    } else if s.len() > 15 {
        Some(format!(
            "{s:?} is {} bytes, longer than a Linux interface name can be (15)",
            s.len()
        ))
    } else if s == "." || s == ".." {
        Some(format!("{s:?} is not a valid interface name"))
    } else {
        s.chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
            .map(|c| {
                format!(
                    "{s:?} contains \"{}\", which an interface name cannot contain",
                    c.escape_debug()
                )
            })
    };
    match problem {
        Some(p) => {
            ctx.error(
                span,
                format!("{key}: {p}"),
                Some("use the name `ip link` shows, like \"eth0\" or \"bond0.100\"".to_string()),
            );
            false
        }
        None => true,
    }
}

/// What the cross-instance checks need to know about one instance.
struct InstanceOut {
    instance: Option<VrrpInstance>,
    name: Option<(String, Option<Span>)>,
    /// The name as written, valid or not, for references from sync groups.
    name_text: Option<String>,
    interface: Option<String>,
    vrid: Option<(u8, Option<Span>)>,
    family: Option<AddressFamily>,
    vips: Vec<(IpAddr, Option<Span>)>,
    /// Where `mode = "quorum"` is, for the rules about the cluster it needs.
    quorum: Option<Option<Span>>,
    /// `fence_on_takeover = true`: the instance's mode and where the key is.
    fence: Option<(Mode, Option<Span>)>,
}

/// The tables of a `[[section]]`, however it was written.
struct Tables<'a> {
    /// Each table, with where to point when it has no span of its own.
    tables: Vec<(TableRef<'a>, Option<Span>)>,
    /// False when some entry was not a table (and was reported): names declared there are
    /// unknown, so references to them are not judged.
    complete: bool,
}

fn section_tables<'a>(ctx: &mut Ctx<'a>, f: &Field<'a>) -> Tables<'a> {
    let key = f.key;
    match f.node {
        Node::TableArray(a) => Tables {
            tables: a
                .iter()
                .map(|t| (TableRef::Table(t), f.key_span.clone()))
                .collect(),
            complete: true,
        },
        // key = [{ ... }, { ... }] is the same thing written inline.
        Node::Value(Value::Array(a)) => {
            let mut complete = true;
            let tables = a
                .iter()
                .filter_map(|v| match v {
                    Value::InlineTable(t) => Some((TableRef::Inline(t), v.span())),
                    other => {
                        ctx.type_error(key, other.span(), "a table", value_type_name(other));
                        complete = false;
                        None
                    }
                })
                .collect();
            Tables { tables, complete }
        }
        Node::Table(t) => {
            ctx.error(
                f.span(),
                format!("{key}: expected an array of tables, found a table"),
                Some(format!(
                    "write [[{key}]] with double brackets: a node may have several"
                )),
            );
            // Check its contents anyway, so the next run does not reveal a second round.
            Tables {
                tables: vec![(TableRef::Table(t), f.key_span.clone())],
                complete: true,
            }
        }
        other => {
            ctx.error(
                f.span(),
                format!(
                    "{key}: expected an array of tables, found {}",
                    other.type_name()
                ),
                Some(format!(
                    "write [[{key}]] on a line of its own, followed by its keys"
                )),
            );
            Tables {
                tables: Vec::new(),
                complete: false,
            }
        }
    }
}

const CS: Duration = Duration::from_millis(10);
const V3_MAX_ADVERT: Duration = Duration::from_millis(40_950);

/// One `[[vrrp_instance]]`. `check_names`: the declared checks, for `track_check`; `None` when
/// they are not all known (see [`check`]).
fn instance<'a>(
    ctx: &mut Ctx<'a>,
    table: TableRef<'a>,
    fallback: Option<Span>,
    check_names: Option<&[&str]>,
) -> InstanceOut {
    let sec = Section::new(table, "[[vrrp_instance]]", fallback);
    sec.check_keys(ctx, &INSTANCE_KEYS);

    let mut name_text = None;
    let name = sec
        .required(ctx, "name", "name = \"VI_1\" (unique on this node)")
        .and_then(|f| {
            let s = ctx.string(f)?;
            name_text = Some(s.to_string());
            check_name(ctx, f, s, "instance").then(|| (s.to_string(), f.span()))
        });
    let interface = sec
        .required(ctx, "interface", "interface = \"eth0\"")
        .and_then(|f| {
            let s = ctx.string(f)?;
            check_ifname(ctx, f, s).then(|| s.to_string())
        });
    let vrid = sec
        .required(ctx, "virtual_router_id", "virtual_router_id = 51 (1 to 255, the same on every node of the group)")
        .and_then(|f| {
            let n = ctx.int_in(
                f,
                1,
                255,
                Some("the VRID names the virtual router on the wire; every node of the group uses the same one"),
            )?;
            Some((n as u8, f.span()))
        });
    let priority = match sec.get("priority") {
        None => Some(100),
        Some(f) => match ctx.integer(f) {
            Some(0) => {
                ctx.error(
                    f.span(),
                    "priority: 0 is reserved for a master that is leaving".to_string(),
                    Some(
                        "use 1 to 255 (255 means the address owner; the default is 100)"
                            .to_string(),
                    ),
                );
                None
            }
            Some(n) if !(1..=255).contains(&n) => {
                ctx.error(
                    f.span(),
                    format!("priority: must be 1 to 255, found {n}"),
                    Some("255 means the address owner; the default is 100".to_string()),
                );
                None
            }
            Some(n) => Some(n as u8),
            None => None,
        },
    };
    let version = match sec.get("version") {
        None => Some(VrrpVersion::V3),
        Some(f) => match ctx.integer(f) {
            Some(2) => Some(VrrpVersion::V2),
            Some(3) => Some(VrrpVersion::V3),
            Some(n) => {
                ctx.error(
                    f.span(),
                    format!("version: must be 2 or 3, found {n}"),
                    Some(
                        "2 is RFC 3768 (IPv4, whole-second adverts, PASS authentication); \
                         3 is RFC 5798 (IPv4 and IPv6, centisecond adverts)"
                            .to_string(),
                    ),
                );
                None
            }
            None => None,
        },
    };
    let advert_int = match sec.get("advert_int") {
        None => Some(Duration::from_secs(1)),
        Some(f) => ctx
            .duration(f)
            .and_then(|(d, text)| check_advert_int(ctx, f, d, text, version)),
    };

    let Vips {
        list: vips,
        family,
        spans: vip_spans,
    } = virtual_ipaddress(ctx, &sec, version);

    let preempt = bool_or(ctx, &sec, "preempt", true);
    let preempt_delay = match sec.get("preempt_delay") {
        None => Some(Duration::ZERO),
        Some(f) => ctx.duration(f).and_then(|(d, text)| {
            // keepalived's limit; a longer delay is more likely a unit slip than intent.
            if d > Duration::from_secs(1000) {
                ctx.error(
                    f.span(),
                    format!("preempt_delay: {text} is longer than the maximum of 1000s"),
                    None,
                );
                None
            } else {
                Some(d)
            }
        }),
    };
    let accept_mode = match sec.get("accept_mode") {
        None => Some(true),
        Some(f) => match ctx.boolean(f) {
            // Refusing traffic to the VIPs while still answering ARP for them takes packet
            // filter rules (keepalived installs nftables rules under vrrp_strict); without
            // them the setting would be silently ignored, so it is refused instead.
            Some(false) => {
                ctx.error(
                    f.span(),
                    "accept_mode: false is not supported by this build yet".to_string(),
                    Some(
                        "a non-owner master accepts traffic to its VIPs (RFC 5798 Accept_Mode \
                         True, keepalived's default); remove the key"
                            .to_string(),
                    ),
                );
                None
            }
            other => other,
        },
    };
    let mut quorum = None;
    let mode = match sec.get("mode") {
        None => Some(Mode::Vrrp),
        Some(f) => ctx.choice(f, "mode", &["vrrp", "quorum"]).map(|m| match m {
            "quorum" => {
                quorum = Some(f.span());
                Mode::Quorum
            }
            _ => Mode::Vrrp,
        }),
    };

    let first_vip = vip_spans.first().map(|(a, s)| (*a, s.clone()));
    let unicast_src_ip = match sec.get("unicast_src_ip") {
        None => Some(None),
        Some(f) => ctx.string(f).and_then(|s| {
            let ip = plain_ip(ctx, f.key, f.span(), s)?;
            let ok = check_family(ctx, f.key, f.span(), ip, family, &first_vip);
            if vip_spans.iter().any(|(a, _)| *a == ip) {
                ctx.error(
                    f.span(),
                    format!("unicast_src_ip: {ip} is one of this instance's virtual IPs"),
                    Some(
                        "adverts come from the interface's own address, never from a virtual IP"
                            .to_string(),
                    ),
                );
                return None;
            }
            ok.then_some(Some(ip))
        }),
    };
    let unicast_peer = match sec.get("unicast_peer") {
        None => Some(Vec::new()),
        Some(f) => ctx.array(f).and_then(|arr| {
            let mut peers = Vec::new();
            let mut seen: HashMap<IpAddr, Option<Span>> = HashMap::new();
            let mut ok = true;
            for v in arr.iter() {
                let Value::String(s) = v else {
                    ctx.type_error(f.key, v.span(), "a string", value_type_name(v));
                    ok = false;
                    continue;
                };
                let Some(ip) = plain_ip(ctx, f.key, v.span(), s.value()) else {
                    ok = false;
                    continue;
                };
                if let Some(first) = seen.get(&ip) {
                    let at = ctx.where_is(first);
                    ctx.error(
                        v.span(),
                        format!("unicast_peer: {ip} is listed twice"),
                        Some(format!("first listed at {at}")),
                    );
                    ok = false;
                    continue;
                }
                seen.insert(ip, v.span());
                if let Some(Some(src)) = unicast_src_ip {
                    if src == ip {
                        ctx.error(
                            v.span(),
                            format!("unicast_peer: {ip} is this node's own unicast_src_ip"),
                            Some("list the other nodes of the group".to_string()),
                        );
                        ok = false;
                        continue;
                    }
                }
                ok &= check_family(ctx, f.key, v.span(), ip, family, &first_vip);
                peers.push(ip);
            }
            ok.then_some(peers)
        }),
    };

    let authentication = match sec.get("authentication") {
        None => Some(None),
        Some(f) => authentication(ctx, f, version).map(Some),
    };

    let garp_master_delay = duration_or(ctx, &sec, "garp_master_delay", Duration::from_secs(5));
    let garp_master_repeat = int_or(ctx, &sec, "garp_master_repeat", 5, 1);
    let garp_master_refresh = match sec.get("garp_master_refresh") {
        None => Some(Duration::ZERO),
        Some(f) => ctx.duration(f).and_then(|(d, text)| {
            // A sub-second refresh would flood the segment with gratuitous ARP.
            if !d.is_zero() && d < Duration::from_secs(1) {
                ctx.error(
                    f.span(),
                    format!("garp_master_refresh: {text} is too frequent"),
                    Some("use \"0s\" (off, the default) or at least \"1s\"".to_string()),
                );
                None
            } else {
                Some(d)
            }
        }),
    };
    let garp_master_refresh_repeat = int_or(ctx, &sec, "garp_master_refresh_repeat", 1, 1);
    // 0 is allowed here: it means "answer a lower-priority master with adverts only".
    let garp_lower_prio_repeat = int_or(ctx, &sec, "garp_lower_prio_repeat", 5, 0);
    let higher_prio_send_advert = bool_or(ctx, &sec, "higher_prio_send_advert", true);
    let fence_field = sec.get("fence_on_takeover");
    let fence_on_takeover = bool_or(ctx, &sec, "fence_on_takeover", false);
    let fence = match (fence_on_takeover, fence_field, mode) {
        (Some(true), Some(f), Some(m)) => Some((m, f.span())),
        _ => None,
    };
    let tracks = tracking::instance_tracks(ctx, &sec, priority, check_names);
    let notify = tracking::notify(ctx, &sec);

    let instance = (|| {
        Some(VrrpInstance {
            name: name.as_ref()?.0.clone(),
            interface: interface.clone()?,
            virtual_router_id: vrid.as_ref()?.0,
            priority: priority?,
            version: version?,
            advert_int: advert_int?,
            virtual_ipaddress: vips?,
            preempt: preempt?,
            preempt_delay: preempt_delay?,
            accept_mode: accept_mode?,
            mode: mode?,
            unicast_src_ip: unicast_src_ip?,
            unicast_peer: unicast_peer?,
            authentication: authentication?,
            garp_master_delay: garp_master_delay?,
            garp_master_repeat: garp_master_repeat?,
            garp_master_refresh: garp_master_refresh?,
            garp_master_refresh_repeat: garp_master_refresh_repeat?,
            garp_lower_prio_repeat: garp_lower_prio_repeat?,
            higher_prio_send_advert: higher_prio_send_advert?,
            fence_on_takeover: fence_on_takeover?,
            track_interface: tracks.interface?,
            track_check: tracks.check?,
            track_file: tracks.file?,
            notify: notify.path?,
            notify_timeout: notify.timeout?,
        })
    })();
    InstanceOut {
        instance,
        name,
        name_text,
        interface,
        vrid,
        family,
        vips: vip_spans,
        quorum,
        fence,
    }
}

fn bool_or<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>, key: &str, default: bool) -> Option<bool> {
    match sec.get(key) {
        None => Some(default),
        Some(f) => ctx.boolean(f),
    }
}

fn duration_or<'a>(
    ctx: &mut Ctx<'a>,
    sec: &Section<'a>,
    key: &str,
    default: Duration,
) -> Option<Duration> {
    match sec.get(key) {
        None => Some(default),
        Some(f) => ctx.duration(f).map(|(d, _)| d),
    }
}

/// A repeat count in `lo..=255`.
fn int_or<'a>(
    ctx: &mut Ctx<'a>,
    sec: &Section<'a>,
    key: &str,
    default: u32,
    lo: i64,
) -> Option<u32> {
    match sec.get(key) {
        None => Some(default),
        Some(f) => ctx.int_in(f, lo, 255, None).map(|n| n as u32),
    }
}

/// The advert interval must fit the version's wire field: VRRPv3 carries 12 bits of
/// centiseconds, VRRPv2 8 bits of whole seconds. keepalived silently replaces what does not
/// fit; we refuse, because a silently different interval changes the failover time.
fn check_advert_int(
    ctx: &mut Ctx<'_>,
    f: &Field<'_>,
    d: Duration,
    text: &str,
    version: Option<VrrpVersion>,
) -> Option<Duration> {
    use crate::duration::format_duration;
    match version? {
        VrrpVersion::V3 => {
            if d < CS || d > V3_MAX_ADVERT {
                ctx.error(
                    f.span(),
                    format!("advert_int: {text} is out of range for VRRPv3 (10ms to 40.95s)"),
                    Some("VRRPv3 carries the interval in centiseconds, 1 to 4095".to_string()),
                );
                return None;
            }
            let cs_nanos = CS.as_nanos();
            let rem = d.as_nanos() % cs_nanos;
            if rem != 0 {
                let below = Duration::from_nanos((d.as_nanos() - rem) as u64);
                let above = below + CS;
                ctx.error(
                    f.span(),
                    format!("advert_int: {text} is not a multiple of 10 ms (VRRPv3 carries centiseconds)"),
                    Some(format!(
                        "the nearest valid values are \"{}\" and \"{}\"",
                        format_duration(below),
                        format_duration(above)
                    )),
                );
                return None;
            }
            Some(d)
        }
        VrrpVersion::V2 => {
            if d.subsec_nanos() != 0 {
                ctx.error(
                    f.span(),
                    format!("advert_int: {text} is not a whole number of seconds (VRRPv2 carries whole seconds)"),
                    Some("use version = 3 for sub-second adverts, or \"1s\" to \"255s\"".to_string()),
                );
                return None;
            }
            if !(1..=255).contains(&d.as_secs()) {
                ctx.error(
                    f.span(),
                    format!("advert_int: {text} is out of range for VRRPv2 (1s to 255s)"),
                    None,
                );
                return None;
            }
            Some(d)
        }
    }
}

/// What `virtual_ipaddress` yields for the rest of the instance's checks.
#[derive(Default)]
struct Vips {
    /// The whole list, if every entry is valid.
    list: Option<Vec<IpPrefix>>,
    /// The advert family: the first address's, if that one is valid.
    family: Option<AddressFamily>,
    /// Every valid address (each once) with its position, for the cross-instance checks.
    spans: Vec<(IpAddr, Option<Span>)>,
}

fn virtual_ipaddress<'a>(
    ctx: &mut Ctx<'a>,
    sec: &Section<'a>,
    version: Option<VrrpVersion>,
) -> Vips {
    let mut spans = Vec::new();
    let Some(f) = sec.required(
        ctx,
        "virtual_ipaddress",
        "virtual_ipaddress = [\"192.0.2.100/24\"]",
    ) else {
        return Vips::default();
    };
    let Some(arr) = ctx.array(f) else {
        return Vips::default();
    };
    if arr.is_empty() {
        ctx.error(
            f.span(),
            "virtual_ipaddress: must list at least one address".to_string(),
            Some("like virtual_ipaddress = [\"192.0.2.100/24\"]".to_string()),
        );
        return Vips::default();
    }
    let mut ok = true;
    let mut family = None;
    let mut list = Vec::new();
    let mut advertised = 0usize;
    for (i, v) in arr.iter().enumerate() {
        let Value::String(s) = v else {
            ctx.type_error(f.key, v.span(), "a string", value_type_name(v));
            ok = false;
            continue;
        };
        let p: IpPrefix = match s.value().parse() {
            Ok(p) => p,
            Err(e) => {
                ctx.error(
                    v.span(),
                    format!("virtual_ipaddress: {e}"),
                    Some(
                        "write an address with an optional prefix length, like \
                         \"192.0.2.100/24\" or \"2001:db8::100/64\""
                            .to_string(),
                    ),
                );
                ok = false;
                continue;
            }
        };
        if let Some(problem) = unusable_vip(p.addr) {
            ctx.error(
                v.span(),
                format!(
                    "virtual_ipaddress: {} is {problem}, which cannot be a virtual IP",
                    p.addr
                ),
                None,
            );
            ok = false;
            continue;
        }
        if i == 0 {
            family = Some(p.family());
        }
        if p.addr.is_ipv6() && version == Some(VrrpVersion::V2) {
            ctx.error(
                v.span(),
                format!(
                    "virtual_ipaddress: {} is IPv6, which needs version = 3",
                    p.addr
                ),
                Some("VRRPv2 (RFC 3768) carries IPv4 addresses only".to_string()),
            );
            ok = false;
            continue;
        }
        if let Some((_, first)) = spans.iter().find(|(a, _)| *a == p.addr) {
            let at = ctx.where_is(first);
            ctx.error(
                v.span(),
                format!("virtual_ipaddress: {} is listed twice", p.addr),
                Some(format!("first listed at {at}")),
            );
            ok = false;
            continue;
        }
        if Some(p.family()) == family {
            advertised += 1;
            if advertised == 256 {
                ctx.error(
                    v.span(),
                    format!("virtual_ipaddress: more than 255 {} addresses", p.family()),
                    Some(
                        "an advert's address count is one byte; split them over several instances"
                            .to_string(),
                    ),
                );
                ok = false;
            }
        }
        spans.push((p.addr, v.span()));
        list.push(p);
    }
    Vips {
        list: ok.then_some(list),
        family,
        spans,
    }
}

fn unusable_vip(addr: IpAddr) -> Option<&'static str> {
    if addr.is_unspecified() {
        Some("the unspecified address")
    } else if addr.is_multicast() {
        Some("a multicast address")
    } else if addr.is_loopback() {
        Some("a loopback address")
    } else if addr == IpAddr::from([255, 255, 255, 255]) {
        Some("the broadcast address")
    } else {
        None
    }
}

/// A unicast source or peer: an address without a prefix length.
fn plain_ip(ctx: &mut Ctx<'_>, key: &str, span: Option<Span>, s: &str) -> Option<IpAddr> {
    match s.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
            ctx.error(
                span,
                format!("{key}: {ip} cannot be a unicast address"),
                Some("use the address of a node's interface".to_string()),
            );
            None
        }
        Ok(ip) => Some(ip),
        Err(_) => {
            let (message, hint) = if s.contains('/') {
                (
                    format!("{key}: {s:?} has a prefix length"),
                    "write the address alone, like \"10.0.0.1\"",
                )
            } else {
                (
                    format!("{key}: {s:?} is not an IPv4 or IPv6 address"),
                    "write an address like \"10.0.0.1\" or \"fe80::1\"",
                )
            };
            ctx.error(span, message, Some(hint.to_string()));
            None
        }
    }
}

/// Unicast adverts are sent in the advert family, so source and peers must be of it.
fn check_family(
    ctx: &mut Ctx<'_>,
    key: &str,
    span: Option<Span>,
    ip: IpAddr,
    family: Option<AddressFamily>,
    first_vip: &Option<(IpAddr, Option<Span>)>,
) -> bool {
    let Some(family) = family else {
        return true;
    };
    let ip_family = AddressFamily::of(ip);
    if ip_family == family {
        return true;
    }
    let first = match first_vip {
        Some((addr, s)) => format!(
            "the first virtual_ipaddress ({addr}, line {})",
            ctx.line_of(s)
        ),
        None => "the first virtual_ipaddress".to_string(),
    };
    ctx.error(
        span,
        format!("{key}: {ip} is {ip_family} but this instance advertises {family}"),
        Some(format!("{first} decides the advert family")),
    );
    false
}

fn authentication<'a>(
    ctx: &mut Ctx<'a>,
    f: &Field<'a>,
    version: Option<VrrpVersion>,
) -> Option<Authentication> {
    let Some(table) = f.node.as_table() else {
        ctx.error(
            f.span(),
            format!(
                "authentication: expected a table, found {}",
                f.node.type_name()
            ),
            Some(
                "write authentication = { auth_type = \"PASS\", auth_pass = \"...\" }".to_string(),
            ),
        );
        return None;
    };
    let mut ok = true;
    if version == Some(VrrpVersion::V3) {
        ctx.error(
            f.span(),
            "authentication: VRRPv3 has no authentication (RFC 5798 removed it)".to_string(),
            Some(
                "remove it, or set version = 2 to interoperate with VRRPv2 peers that use PASS \
                 (version defaults to 3)"
                    .to_string(),
            ),
        );
        ok = false;
    }
    // Keep checking the contents: both mistakes are worth knowing in one run.
    let sec = Section::new(table, "authentication", f.key_span.clone());
    sec.check_keys(ctx, &AUTH_KEYS);
    let auth_type = sec
        .required(ctx, "auth_type", "auth_type = \"PASS\"")
        .and_then(|f| match ctx.string(f)? {
            "PASS" => Some(()),
            "AH" => {
                ctx.error(
                    f.span(),
                    "auth_type: \"AH\" is historic (RFC 3768 removed it) and not supported"
                        .to_string(),
                    Some("use auth_type = \"PASS\", or no authentication".to_string()),
                );
                None
            }
            other => {
                let guess = if other.eq_ignore_ascii_case("pass") {
                    "did you mean \"PASS\"? "
                } else {
                    ""
                };
                ctx.error(
                    f.span(),
                    format!("auth_type: unknown type {other:?}"),
                    Some(format!("{guess}auth_type is \"PASS\"")),
                );
                None
            }
        });
    let pass = sec
        .required(ctx, "auth_pass", "auth_pass = \"...\" (1 to 8 bytes)")
        .and_then(|f| {
            let p = ctx.string(f)?;
            // The password itself is never echoed: messages end up in logs.
            if p.is_empty() {
                ctx.error(f.span(), "auth_pass: must not be empty".to_string(), None);
                return None;
            }
            if p.len() > 8 {
                ctx.error(
                    f.span(),
                    format!(
                        "auth_pass: the password is {} bytes, longer than the 8 that VRRPv2 carries",
                        p.len()
                    ),
                    Some("keepalived silently uses only the first 8 bytes; write just those".to_string()),
                );
                return None;
            }
            Some(p.to_string())
        });
    let pass = pass?;
    auth_type?;
    ok.then_some(Authentication::Pass(pass))
}

/// Rules across instances: unique names, unique VRID per interface and family (they would be
/// the same virtual router on the wire), and a virtual IP in one instance only.
fn cross_check(ctx: &mut Ctx<'_>, instances: &[InstanceOut]) {
    let mut names: HashMap<&str, &Option<Span>> = HashMap::new();
    let mut vrids: HashMap<(&str, AddressFamily, u8), (&str, &Option<Span>)> = HashMap::new();
    let mut vips: HashMap<IpAddr, (&str, &Option<Span>)> = HashMap::new();
    for inst in instances {
        let name = inst.name.as_ref().map(|(n, _)| n.as_str());
        if let Some((n, span)) = &inst.name {
            if let Some(first) = names.get(n.as_str()) {
                let at = ctx.where_is(first);
                ctx.error(
                    span.clone(),
                    format!("name: instance \"{n}\" is already defined"),
                    Some(format!("instance names are unique; the first is at {at}")),
                );
            } else {
                names.insert(n, span);
            }
        }
        if let (Some(ifname), Some(family), Some((vrid, span))) =
            (&inst.interface, inst.family, &inst.vrid)
        {
            let key = (ifname.as_str(), family, *vrid);
            if let Some((other, first)) = vrids.get(&key) {
                let at = ctx.where_is(first);
                ctx.error(
                    span.clone(),
                    format!(
                        "virtual_router_id: {vrid} is already used on {ifname} for {family} by instance \"{other}\""
                    ),
                    Some(format!(
                        "instances on the same interface and address family need different \
                         virtual_router_ids; \"{other}\" sets it at {at}"
                    )),
                );
            } else {
                vrids.insert(key, (name.unwrap_or("?"), span));
            }
        }
        for (addr, span) in &inst.vips {
            // `inst.vips` holds each address once (duplicates within an instance were reported
            // and left out), so a hit here is always another instance.
            if let Some((other, first)) = vips.get(addr) {
                let at = ctx.where_is(first);
                ctx.error(
                    span.clone(),
                    format!("virtual_ipaddress: {addr} is also in instance \"{other}\""),
                    Some(format!(
                        "a virtual IP belongs to one instance (\"{other}\" lists it at {at})"
                    )),
                );
            } else {
                vips.insert(*addr, (name.unwrap_or("?"), span));
            }
        }
    }
}
