//! What a `[[vrrp_instance]]` watches and runs (`track_interface`, `track_check`, `track_file`,
//! `notify`, `notify_timeout`), and `[[vrrp_sync_group]]`.

use std::path::PathBuf;
use std::time::Duration;

use toml_edit::Value;

use super::{check_ifname_at, check_name, Ctx, KeySpec, Section, NOTIFY_NOTE};
use crate::duration::format_duration;
use crate::suggest::did_you_mean;
use crate::tree::{value_type_name, Field, Node, Span, TableRef};
use crate::{SyncGroup, Track, DEFAULT_NOTIFY_TIMEOUT};

/// The three track lists of an instance; `None` where a list has a problem (reported).
pub(super) struct Tracks {
    pub(super) interface: Option<Vec<Track>>,
    pub(super) check: Option<Vec<Track>>,
    pub(super) file: Option<Vec<Track>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TrackKind {
    Interface,
    Check,
    File,
}

const TRACK_INTERFACE_KEYS: KeySpec = KeySpec {
    valid: &["interface", "weight"],
    unsupported: &[],
    notes: &[("name", "write interface = \"eth1\"")],
};

const TRACK_CHECK_KEYS: KeySpec = KeySpec {
    valid: &["check", "weight"],
    unsupported: &[],
    notes: &[
        ("name", "write check = \"NAME\", the name of a [[check]]"),
        (
            "script",
            "a script is a [[check]] with kind = \"script\"; name it here with check = \"NAME\"",
        ),
    ],
};

const TRACK_FILE_KEYS: KeySpec = KeySpec {
    valid: &["file", "weight"],
    unsupported: &[],
    notes: &[
        ("path", "write file = \"/run/tandem/weight\""),
        ("name", "write file = \"/run/tandem/weight\""),
    ],
};

const WEIGHT_HINT: &str = "a positive weight is added to the priority while the item is good, a \
                           negative one while it is bad; 0 (the default) puts the instance in \
                           FAULT while the item is bad";

impl TrackKind {
    fn list_key(self) -> &'static str {
        match self {
            TrackKind::Interface => "track_interface",
            TrackKind::Check => "track_check",
            TrackKind::File => "track_file",
        }
    }

    /// The key of an entry's table that names what is tracked.
    fn target_key(self) -> &'static str {
        match self {
            TrackKind::Interface => "interface",
            TrackKind::Check => "check",
            TrackKind::File => "file",
        }
    }

    fn title(self) -> &'static str {
        match self {
            TrackKind::Interface => "a track_interface entry",
            TrackKind::Check => "a track_check entry",
            TrackKind::File => "a track_file entry",
        }
    }

    fn keys(self) -> &'static KeySpec {
        match self {
            TrackKind::Interface => &TRACK_INTERFACE_KEYS,
            TrackKind::Check => &TRACK_CHECK_KEYS,
            TrackKind::File => &TRACK_FILE_KEYS,
        }
    }

    /// For "missing the required key" hints.
    fn required_example(self) -> &'static str {
        match self {
            TrackKind::Interface => "interface = \"eth1\"",
            TrackKind::Check => "check = \"NAME\" (the name of a [[check]])",
            TrackKind::File => "file = \"/run/tandem/weight\" (an absolute path)",
        }
    }

    /// How one entry is written, for type-error hints.
    fn entry_example(self) -> &'static str {
        match self {
            TrackKind::Interface => "\"eth1\" or { interface = \"eth1\", weight = -20 }",
            TrackKind::Check => "{ check = \"haproxy\", weight = -20 }",
            TrackKind::File => "{ file = \"/run/tandem/weight\", weight = 10 }",
        }
    }
}

/// One element of a track list, before it is judged.
enum Entry<'a> {
    Str(&'a str),
    Table(TableRef<'a>),
    Other(&'static str),
}

/// `track_interface`, `track_check` and `track_file` of one instance. `priority`: the
/// instance's, if valid (an address owner's priority cannot move). `check_names`: the declared
/// checks, `None` when they are not all known.
pub(super) fn instance_tracks<'a>(
    ctx: &mut Ctx<'a>,
    sec: &Section<'a>,
    priority: Option<u8>,
    check_names: Option<&[&str]>,
) -> Tracks {
    let owner = priority == Some(255);
    let mut list = |kind: TrackKind| match sec.get(kind.list_key()) {
        None => Some(Vec::new()),
        Some(f) => track_list(ctx, f, kind, owner, check_names),
    };
    Tracks {
        interface: list(TrackKind::Interface),
        check: list(TrackKind::Check),
        file: list(TrackKind::File),
    }
}

fn track_list<'a>(
    ctx: &mut Ctx<'a>,
    f: &Field<'a>,
    kind: TrackKind,
    owner: bool,
    check_names: Option<&[&str]>,
) -> Option<Vec<Track>> {
    let entries: Vec<(Entry<'a>, Option<Span>)> = match f.node {
        Node::Value(Value::Array(a)) => a
            .iter()
            .map(|v| {
                let entry = match v {
                    Value::String(s) => Entry::Str(s.value().as_str()),
                    Value::InlineTable(t) => Entry::Table(TableRef::Inline(t)),
                    other => Entry::Other(value_type_name(other)),
                };
                (entry, v.span())
            })
            .collect(),
        // [[vrrp_instance.track_check]] tables are the same list written long-hand.
        Node::TableArray(a) => a
            .iter()
            .map(|t| {
                let span = t.span().or_else(|| f.key_span.clone());
                (Entry::Table(TableRef::Table(t)), span)
            })
            .collect(),
        other => {
            ctx.error(
                f.span(),
                format!("{}: expected an array, found {}", f.key, other.type_name()),
                Some(format!("write {} = [{}]", f.key, kind.entry_example())),
            );
            return None;
        }
    };

    let mut ok = true;
    let mut seen: Vec<(String, Option<Span>)> = Vec::new();
    let mut tracks = Vec::new();
    for (entry, span) in entries {
        let (target, weight) = match entry {
            Entry::Str(s) => (
                string_entry(ctx, f.key, kind, span.clone(), s, check_names),
                Some(0),
            ),
            Entry::Table(t) => table_entry(ctx, t, kind, span.clone(), owner, check_names),
            Entry::Other(found) => {
                let expected = match kind {
                    TrackKind::Interface => "an interface name or a table",
                    _ => "a table",
                };
                ctx.error(
                    span.clone(),
                    format!("{}: expected {expected}, found {found}", f.key),
                    Some(format!("write {}", kind.entry_example())),
                );
                (None, None)
            }
        };
        // A duplicate is worth reporting even when the entry's weight is wrong.
        let Some((target, target_span)) = target else {
            ok = false;
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(t, _)| *t == target) {
            let at = ctx.where_is(first);
            ctx.error(
                target_span,
                format!("{}: {target:?} is listed twice", f.key),
                Some(format!("first listed at {at}")),
            );
            ok = false;
            continue;
        }
        seen.push((target.clone(), target_span));
        let Some(weight) = weight else {
            ok = false;
            continue;
        };
        tracks.push(Track {
            target,
            weight,
            origin: ctx.origin(&span),
        });
    }
    ok.then_some(tracks)
}

/// keepalived writes `eth1 weight -20` in one line: the name and the weight, if `s` is that.
fn keepalived_weight(s: &str) -> Option<(&str, &str)> {
    let words: Vec<&str> = s.split_ascii_whitespace().collect();
    match words[..] {
        [target, "weight", w] if w.parse::<i64>().is_ok() => Some((target, w)),
        _ => None,
    }
}

/// A bare string in a track list: an interface name (weight 0) in `track_interface`, a mistake
/// elsewhere. Returns the target and where it is.
fn string_entry(
    ctx: &mut Ctx<'_>,
    key: &str,
    kind: TrackKind,
    span: Option<Span>,
    s: &str,
    check_names: Option<&[&str]>,
) -> Option<(String, Option<Span>)> {
    let target_key = kind.target_key();
    if let Some((target, w)) = keepalived_weight(s) {
        ctx.error(
            span,
            format!("{key}: {s:?} is keepalived's syntax"),
            Some(format!(
                "write {{ {target_key} = {target:?}, weight = {w} }}"
            )),
        );
        return None;
    }
    if kind != TrackKind::Interface {
        // Still say whether the name itself is right, so the fix is done in one go.
        if kind == TrackKind::Check {
            check_target(ctx, kind, key, span.clone(), s, check_names);
        }
        ctx.error(
            span,
            format!("{key}: expected a table, found a string"),
            Some(format!("write {{ {target_key} = {s:?}, weight = 0 }}")),
        );
        return None;
    }
    check_target(ctx, kind, key, span.clone(), s, check_names).then(|| (s.to_string(), span))
}

/// A `{ target = "...", weight = N }` entry: the target and where it is, and the weight.
type Parsed = (Option<(String, Option<Span>)>, Option<i32>);

fn table_entry<'a>(
    ctx: &mut Ctx<'a>,
    table: TableRef<'a>,
    kind: TrackKind,
    span: Option<Span>,
    owner: bool,
    check_names: Option<&[&str]>,
) -> Parsed {
    let sec = Section::new(table, kind.title(), span);
    sec.check_keys(ctx, kind.keys());
    let target = sec
        .required(ctx, kind.target_key(), kind.required_example())
        .and_then(|f| {
            let s = ctx.string(f)?;
            // Named after the list: "interface: ..." would read as the instance's own.
            check_target(ctx, kind, kind.list_key(), f.span(), s, check_names)
                .then(|| (s.to_string(), f.span()))
        });
    let weight = match sec.get("weight") {
        None => Some(0),
        Some(f) => weight(ctx, f, owner),
    };
    (target, weight)
}

fn weight<'a>(ctx: &mut Ctx<'a>, f: &Field<'a>, owner: bool) -> Option<i32> {
    let w = ctx.int_in(f, -254, 254, Some(WEIGHT_HINT))?;
    if owner && w != 0 {
        // keepalived ignores such weights; a silently ignored setting is worse than an error.
        ctx.error(
            f.span(),
            format!("weight: {w} would move the priority of an address owner (priority = 255)"),
            Some(
                "an address owner's priority stays 255: use weight = 0 (FAULT while the item \
                 is bad), or a priority below 255"
                    .to_string(),
            ),
        );
        return None;
    }
    Some(w as i32)
}

/// Is `s` something this kind of entry can track? Reports why not.
fn check_target(
    ctx: &mut Ctx<'_>,
    kind: TrackKind,
    key: &str,
    span: Option<Span>,
    s: &str,
    check_names: Option<&[&str]>,
) -> bool {
    match kind {
        TrackKind::Interface => check_ifname_at(ctx, key, span, s),
        TrackKind::Check => {
            let Some(names) = check_names else {
                return true;
            };
            if names.contains(&s) {
                return true;
            }
            let hint = if names.is_empty() {
                format!("this config declares no [[check]]; add one with name = {s:?}")
            } else {
                let guess = did_you_mean(s, names)
                    .map(|c| format!("did you mean \"{c}\"? "))
                    .unwrap_or_default();
                format!("{guess}declared checks: {}", quoted(names))
            };
            ctx.error(
                span,
                format!("{key}: no [[check]] is named {s:?}"),
                Some(hint),
            );
            false
        }
        TrackKind::File => {
            if s.starts_with('/') {
                return true;
            }
            let message = if s.is_empty() {
                format!("{key}: must not be empty")
            } else {
                format!("{key}: must be an absolute path, found {s:?}")
            };
            ctx.error(
                span,
                message,
                Some("write the full path, like \"/run/tandem/weight\"".to_string()),
            );
            false
        }
    }
}

/// `"a", "b", "c"`
fn quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}

/// `notify` and `notify_timeout` of one instance; `None` where a value has a problem.
pub(super) struct Notify {
    pub(super) path: Option<Option<PathBuf>>,
    pub(super) timeout: Option<Duration>,
}

const MIN_NOTIFY_TIMEOUT: Duration = Duration::from_millis(100);

pub(super) fn notify<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Notify {
    let path = match sec.get("notify") {
        None => Some(None),
        Some(f) => ctx.string(f).and_then(|s| {
            let problem = if s.is_empty() {
                Some(("must not be empty".to_string(), NOTIFY_NOTE.to_string()))
            } else if !s.starts_with('/') {
                Some((
                    format!("must be an absolute path, found {s:?}"),
                    "write the full path, like \"/etc/tandem/notify.sh\": it is run without a \
                     shell or a PATH search"
                        .to_string(),
                ))
            } else if s.contains(|c: char| c.is_ascii_whitespace()) {
                // keepalived takes `notify "/path/script arg"`; here the path is the program.
                Some((
                    format!("{s:?} contains a space"),
                    "notify is the program alone, run as PROGRAM INSTANCE NAME STATE PRIORITY; \
                     to pass more, write a wrapper script"
                        .to_string(),
                ))
            } else {
                None
            };
            match problem {
                Some((message, hint)) => {
                    ctx.error(f.span(), format!("notify: {message}"), Some(hint));
                    None
                }
                None => Some(Some(PathBuf::from(s))),
            }
        }),
    };
    let timeout = match sec.get("notify_timeout") {
        None => Some(DEFAULT_NOTIFY_TIMEOUT),
        Some(f) => ctx.duration(f).and_then(|(d, text)| {
            if d < MIN_NOTIFY_TIMEOUT {
                ctx.error(
                    f.span(),
                    format!(
                        "notify_timeout: {text} is shorter than the minimum of {}",
                        format_duration(MIN_NOTIFY_TIMEOUT)
                    ),
                    Some(format!(
                        "a notify script still running at the timeout is killed; the default \
                         is \"{}\"",
                        format_duration(DEFAULT_NOTIFY_TIMEOUT)
                    )),
                );
                None
            } else {
                Some(d)
            }
        }),
    };
    Notify { path, timeout }
}

const SYNC_GROUP_KEYS: KeySpec = KeySpec {
    valid: &["name", "group"],
    unsupported: &[],
    notes: &[
        ("notify", SYNC_NOTIFY_NOTE),
        ("notify_master", SYNC_NOTIFY_NOTE),
        ("notify_backup", SYNC_NOTIFY_NOTE),
        ("notify_fault", SYNC_NOTIFY_NOTE),
        ("notify_stop", SYNC_NOTIFY_NOTE),
        ("track_interface", SYNC_TRACK_NOTE),
        ("track_script", SYNC_TRACK_NOTE),
        ("track_file", SYNC_TRACK_NOTE),
        ("track_check", SYNC_TRACK_NOTE),
    ],
};

const SYNC_NOTIFY_NOTE: &str = "set notify in the group's [[vrrp_instance]] sections: tandem runs \
                                one notify script with the state as argument";
const SYNC_TRACK_NOTE: &str = "track items in the group's [[vrrp_instance]] sections";

/// What the cross-group checks need to know about one sync group.
pub(super) struct SyncOut {
    pub(super) group: Option<SyncGroup>,
    /// The name, if valid, and where it is.
    name: Option<(String, Option<Span>)>,
    /// Each instance listed, once, with where.
    members: Vec<(String, Option<Span>)>,
}

/// One `[[vrrp_sync_group]]`. `instance_names`: the declared instances, `None` when they are
/// not all known.
pub(super) fn sync_group<'a>(
    ctx: &mut Ctx<'a>,
    table: TableRef<'a>,
    fallback: Option<Span>,
    instance_names: Option<&[&str]>,
) -> SyncOut {
    let sec = Section::new(table, "[[vrrp_sync_group]]", fallback);
    sec.check_keys(ctx, &SYNC_GROUP_KEYS);
    let name = sec
        .required(ctx, "name", "name = \"G1\" (unique on this node)")
        .and_then(|f| {
            let s = ctx.string(f)?;
            check_name(ctx, f, s, "sync group").then(|| (s.to_string(), f.span()))
        });
    let mut members: Vec<(String, Option<Span>)> = Vec::new();
    let group = sec
        .required(
            ctx,
            "group",
            "group = [\"VI_1\", \"VI_2\"] (the instances that move together)",
        )
        .and_then(|f| {
            let arr = ctx.array(f)?;
            let mut ok = true;
            if arr.len() < 2 {
                let found = match arr.len() {
                    0 => "none".to_string(),
                    n => n.to_string(),
                };
                ctx.error(
                    f.span(),
                    format!("group: a sync group needs at least two instances, found {found}"),
                    Some(
                        "an instance alone needs no sync group: add the instances that must \
                         move with it, or remove this [[vrrp_sync_group]]"
                            .to_string(),
                    ),
                );
                ok = false;
            }
            for v in arr.iter() {
                let Value::String(s) = v else {
                    ctx.type_error(f.key, v.span(), "a string", value_type_name(v));
                    ok = false;
                    continue;
                };
                let s = s.value().as_str();
                if let Some((_, first)) = members.iter().find(|(m, _)| m == s) {
                    let at = ctx.where_is(first);
                    ctx.error(
                        v.span(),
                        format!("group: {s:?} is listed twice"),
                        Some(format!("first listed at {at}")),
                    );
                    ok = false;
                    continue;
                }
                if let Some(names) = instance_names {
                    if !names.contains(&s) {
                        let hint = if names.is_empty() {
                            "this config declares no [[vrrp_instance]]".to_string()
                        } else {
                            let guess = did_you_mean(s, names)
                                .map(|c| format!("did you mean \"{c}\"? "))
                                .unwrap_or_default();
                            format!("{guess}declared instances: {}", quoted(names))
                        };
                        ctx.error(
                            v.span(),
                            format!("group: no [[vrrp_instance]] is named {s:?}"),
                            Some(hint),
                        );
                        ok = false;
                        continue;
                    }
                }
                members.push((s.to_string(), v.span()));
            }
            ok.then(|| members.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>())
        });
    let group = (|| {
        Some(SyncGroup {
            name: name.as_ref()?.0.clone(),
            group: group?,
        })
    })();
    SyncOut {
        group,
        name,
        members,
    }
}

/// Rules across sync groups: unique names, and an instance in one group at most.
pub(super) fn sync_cross_check(ctx: &mut Ctx<'_>, groups: &[SyncOut]) {
    let mut names: Vec<(&str, &Option<Span>)> = Vec::new();
    let mut owners: Vec<(&str, Option<&str>, &Option<Span>)> = Vec::new();
    for g in groups {
        let group_name = g.name.as_ref().map(|(n, _)| n.as_str());
        if let Some((n, span)) = &g.name {
            if let Some((_, first)) = names.iter().find(|(m, _)| m == n) {
                let at = ctx.where_is(first);
                ctx.error(
                    span.clone(),
                    format!("name: sync group {n:?} is already defined"),
                    Some(format!("sync group names are unique; the first is at {at}")),
                );
            } else {
                names.push((n, span));
            }
        }
        for (member, span) in &g.members {
            if let Some((_, other, first)) = owners.iter().find(|(m, _, _)| m == member) {
                let at = ctx.where_is(first);
                let other = match other {
                    Some(o) => format!("sync group {o:?}"),
                    None => "another sync group".to_string(),
                };
                ctx.error(
                    span.clone(),
                    format!("group: instance {member:?} is already in {other}"),
                    Some(format!(
                        "an instance belongs to one sync group at most; {other} lists it at {at}"
                    )),
                );
            } else {
                owners.push((member, group_name, span));
            }
        }
    }
}
