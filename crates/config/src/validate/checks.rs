//! `[[check]]`: health checks, which instances name in `track_check`. A check nobody tracks is
//! valid: it still runs and shows in `tandem status`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml_edit::Value;

use super::{check_name, Ctx, KeySpec, Section};
use crate::duration::format_duration;
use crate::suggest::did_you_mean;
use crate::tree::{value_type_name, Field, Node, Span, TableRef};
use crate::{Check, CheckKind, DEFAULT_CHECK_INTERVAL, DEFAULT_CHECK_TIMEOUT};

/// What the cross-check rules need to know about one check.
pub(super) struct CheckOut {
    pub(super) check: Option<Check>,
    /// The name, if valid, and where it is.
    name: Option<(String, Option<Span>)>,
    /// The name as written, valid or not, for references from `track_check`.
    pub(super) name_text: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Http,
    Script,
}

const KINDS: [Kind; 3] = [Kind::Tcp, Kind::Http, Kind::Script];
const KIND_NAMES: &[&str] = &["tcp", "http", "script"];

/// Keys of every kind.
const COMMON_KEYS: &[&str] = &["name", "kind", "interval", "timeout", "rise", "fall"];

/// Keys people bring from keepalived's vrrp_script and checkers, with what to write instead.
const CHECK_NOTES: &[(&str, &str)] = &[
    (
        "weight",
        "the weight goes in the instance that tracks the check: \
         track_check = [{ check = \"NAME\", weight = -20 }]",
    ),
    ("delay_loop", "write interval = \"2s\""),
    ("connect_timeout", "write timeout = \"1s\""),
    ("status_code", "write expect_status = 200"),
    (
        "connect_port",
        "write the port in url, or port = N for kind = \"tcp\"",
    ),
    (
        "path",
        "write the whole URL in url, like url = \"http://127.0.0.1:8080/health\"",
    ),
    (
        "command",
        "write script = [\"/path/to/program\", \"argument\"]",
    ),
    (
        "program",
        "write script = [\"/path/to/program\", \"argument\"]",
    ),
];

const TCP_KEYS: KeySpec = KeySpec {
    valid: &[
        "name", "kind", "interval", "timeout", "rise", "fall", "host", "port",
    ],
    unsupported: &[],
    notes: CHECK_NOTES,
};

const HTTP_KEYS: KeySpec = KeySpec {
    valid: &[
        "name",
        "kind",
        "interval",
        "timeout",
        "rise",
        "fall",
        "url",
        "expect_status",
        "expect_body",
        "tls_verify",
        "ca_file",
    ],
    unsupported: &[],
    notes: CHECK_NOTES,
};

const SCRIPT_KEYS: KeySpec = KeySpec {
    valid: &[
        "name", "kind", "interval", "timeout", "rise", "fall", "script",
    ],
    unsupported: &[],
    notes: CHECK_NOTES,
};

/// When the kind is unknown (missing or wrong): every key of every kind.
const ANY_KEYS: KeySpec = KeySpec {
    valid: &[
        "name",
        "kind",
        "interval",
        "timeout",
        "rise",
        "fall",
        "host",
        "port",
        "url",
        "expect_status",
        "expect_body",
        "tls_verify",
        "ca_file",
        "script",
    ],
    unsupported: &[],
    notes: CHECK_NOTES,
};

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Script => "script",
        }
    }

    fn spec(self) -> &'static KeySpec {
        match self {
            Kind::Tcp => &TCP_KEYS,
            Kind::Http => &HTTP_KEYS,
            Kind::Script => &SCRIPT_KEYS,
        }
    }

    /// The keys only this kind has.
    fn own_keys(self) -> &'static [&'static str] {
        let all = self.spec().valid;
        &all[COMMON_KEYS.len()..]
    }
}

/// Keys that are not this check's: of another kind (named as such), or unknown.
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
        let hint = if kind == Kind::Http && matches!(f.key, "host" | "port") {
            format!(
                "the host and port go in url, like url = \"http://127.0.0.1:8080/health\"; \
                 valid keys: {valid}"
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
                "\"{}\" is for kind = \"{}\" checks, and this check is kind = \"{}\"",
                f.key,
                owner.name(),
                kind.name()
            ),
            Some(hint),
        );
    }
}

pub(super) fn check_section<'a>(
    ctx: &mut Ctx<'a>,
    table: TableRef<'a>,
    fallback: Option<Span>,
) -> CheckOut {
    let sec = Section::new(table, "[[check]]", fallback);

    let kind = sec
        .required(ctx, "kind", "kind = \"tcp\", \"http\" or \"script\"")
        .and_then(|f| parse_kind(ctx, f));
    check_keys(ctx, &sec, kind);

    let mut name_text = None;
    let name = sec
        .required(ctx, "name", "name = \"haproxy\" (unique on this node)")
        .and_then(|f| {
            let s = ctx.string(f)?;
            name_text = Some(s.to_string());
            check_name(ctx, f, s, "check").then(|| (s.to_string(), f.span()))
        });

    let (interval, timeout) = interval_and_timeout(ctx, &sec);
    let rise = count(ctx, &sec, "rise");
    let fall = count(ctx, &sec, "fall");

    let check_kind = kind.and_then(|k| match k {
        Kind::Tcp => tcp(ctx, &sec),
        Kind::Http => http(ctx, &sec),
        Kind::Script => script(ctx, &sec),
    });

    let check = (|| {
        Some(Check {
            name: name.as_ref()?.0.clone(),
            kind: check_kind?,
            interval: interval?,
            timeout: timeout?,
            rise: rise?,
            fall: fall?,
        })
    })();
    CheckOut {
        check,
        name,
        name_text,
    }
}

fn parse_kind<'a>(ctx: &mut Ctx<'a>, f: &Field<'a>) -> Option<Kind> {
    let s = ctx.string(f)?;
    if let Some(k) = KINDS.into_iter().find(|k| k.name() == s) {
        return Some(k);
    }
    // keepalived's checker names, then typos.
    let guess = match s.to_ascii_uppercase().as_str() {
        "TCP_CHECK" => Some("tcp"),
        "HTTP_GET" | "SSL_GET" | "HTTPS" => Some("http"),
        "MISC_CHECK" | "VRRP_SCRIPT" => Some("script"),
        _ => did_you_mean(s, KIND_NAMES),
    };
    let guess = guess
        .map(|g| format!("did you mean \"{g}\"? "))
        .unwrap_or_default();
    ctx.error(
        f.span(),
        format!("kind: unknown kind {s:?}"),
        Some(format!(
            "{guess}kind is \"tcp\", \"http\" (also for https:// URLs) or \"script\""
        )),
    );
    None
}

/// A duration longer than zero.
fn positive_duration<'a>(ctx: &mut Ctx<'a>, f: &Field<'a>) -> Option<(Duration, &'a str)> {
    let (d, text) = ctx.duration(f)?;
    if d.is_zero() {
        ctx.error(f.span(), format!("{}: must be longer than 0s", f.key), None);
        return None;
    }
    Some((d, text))
}

/// `interval` and `timeout`: a probe must be over before the next one is due.
fn interval_and_timeout<'a>(
    ctx: &mut Ctx<'a>,
    sec: &Section<'a>,
) -> (Option<Duration>, Option<Duration>) {
    let interval_field = sec.get("interval");
    let timeout_field = sec.get("timeout");
    let interval = match interval_field {
        None => Some((DEFAULT_CHECK_INTERVAL, None)),
        Some(f) => positive_duration(ctx, f).map(|(d, text)| (d, Some(text))),
    };
    let timeout = match timeout_field {
        None => Some((DEFAULT_CHECK_TIMEOUT, None)),
        Some(f) => positive_duration(ctx, f).map(|(d, text)| (d, Some(text))),
    };
    let (Some((i, i_text)), Some((t, t_text))) = (interval, timeout) else {
        return (interval.map(|(d, _)| d), timeout.map(|(d, _)| d));
    };
    if t < i {
        return (Some(i), Some(t));
    }
    let suggestion = format_duration(i / 2);
    match (timeout_field, t_text) {
        (Some(f), Some(t_text)) => {
            let interval = match i_text {
                Some(text) => format!("interval ({text})"),
                None => format!("the default interval ({})", format_duration(i)),
            };
            ctx.error(
                f.span(),
                format!("timeout: {t_text} is not shorter than {interval}"),
                Some(format!(
                    "a probe must be over before the next one starts: make timeout shorter \
                     than interval, like timeout = \"{suggestion}\""
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
                    "interval: {i_text} is not longer than the default timeout ({})",
                    format_duration(t)
                ),
                Some(format!(
                    "a probe must be over before the next one starts: set a shorter timeout, \
                     like timeout = \"{suggestion}\""
                )),
            );
        }
    }
    (None, None)
}

/// `rise` or `fall`: 1..=100, default 1.
fn count<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>, key: &str) -> Option<u32> {
    match sec.get(key) {
        None => Some(1),
        Some(f) => ctx
            .int_in(
                f,
                1,
                100,
                Some("the number of results in a row that change the check's state"),
            )
            .map(|n| n as u32),
    }
}

fn tcp<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Option<CheckKind> {
    let host = sec
        .required(
            ctx,
            "host",
            "host = \"127.0.0.1\" (an IP address or a host name)",
        )
        .and_then(|f| {
            let s = ctx.string(f)?;
            match host_problem(s) {
                None => Some(s.to_string()),
                Some((problem, hint)) => {
                    ctx.error(f.span(), format!("host: {problem}"), Some(hint));
                    None
                }
            }
        });
    let port = sec
        .required(ctx, "port", "port = 80 (1 to 65535)")
        .and_then(|f| ctx.int_in(f, 1, 65535, None))
        .map(|p| p as u16);
    Some(CheckKind::Tcp {
        host: host?,
        port: port?,
    })
}

fn http<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Option<CheckKind> {
    // Some(true) for https://, when the URL is good enough to tell.
    let mut https = None;
    let url = sec
        .required(
            ctx,
            "url",
            "url = \"http://127.0.0.1:8080/health\" (http:// or https://)",
        )
        .and_then(|f| {
            let s = ctx.string(f)?;
            https = scheme(s);
            match url_problem(s) {
                None => Some(s.to_string()),
                Some((problem, hint)) => {
                    ctx.error(f.span(), format!("url: {problem}"), Some(hint));
                    None
                }
            }
        });
    let expect_status = match sec.get("expect_status") {
        None => Some(200),
        Some(f) => ctx
            .int_in(
                f,
                100,
                599,
                Some("an HTTP status code, like 200 (the default)"),
            )
            .map(|n| n as u16),
    };
    let expect_body = match sec.get("expect_body") {
        None => Some(None),
        Some(f) => ctx.string(f).and_then(|s| {
            if s.is_empty() {
                ctx.error(
                    f.span(),
                    "expect_body: must not be empty".to_string(),
                    Some("remove it to accept any body".to_string()),
                );
                None
            } else {
                Some(Some(s.to_string()))
            }
        }),
    };
    let https_only = |ctx: &mut Ctx<'a>, f: &Field<'a>| {
        if https == Some(false) {
            ctx.error(
                f.span(),
                format!("{}: only applies to https:// URLs", f.key),
                Some("remove it, or make url an https:// URL".to_string()),
            );
            false
        } else {
            true
        }
    };
    let tls_verify = match sec.get("tls_verify") {
        None => Some(true),
        Some(f) => ctx.boolean(f).filter(|_| https_only(ctx, f)),
    };
    let ca_file = match sec.get("ca_file") {
        None => Some(None),
        Some(f) => ctx.string(f).and_then(|s| {
            if !s.starts_with('/') {
                ctx.error(
                    f.span(),
                    format!("ca_file: must be an absolute path, found {s:?}"),
                    Some(
                        "write the full path of a PEM file, like \"/etc/tandem/ca.pem\""
                            .to_string(),
                    ),
                );
                return None;
            }
            if !https_only(ctx, f) {
                return None;
            }
            if tls_verify == Some(false) {
                ctx.error(
                    f.span(),
                    "ca_file: unused with tls_verify = false, which accepts any certificate"
                        .to_string(),
                    Some(
                        "remove tls_verify = false to check the certificate against ca_file, \
                         or remove ca_file"
                            .to_string(),
                    ),
                );
                return None;
            }
            Some(Some(PathBuf::from(s)))
        }),
    };
    Some(CheckKind::Http {
        url: url?,
        expect_status: expect_status?,
        expect_body: expect_body?,
        tls_verify: tls_verify?,
        ca_file: ca_file?,
    })
}

fn script<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Option<CheckKind> {
    const ARRAY_HINT: &str = "write script = [\"/usr/bin/pgrep\", \"-x\", \"haproxy\"]";
    let f = sec.required(
        ctx,
        "script",
        "script = \"/usr/local/bin/check-haproxy\" (a program and its arguments)",
    )?;
    // The program (and where it is) and the arguments.
    let (command, program_span): (Vec<String>, Option<Span>) = match f.node {
        Node::Value(Value::String(s)) => {
            let text = s.value().as_str();
            // Split on spaces, run without a shell: shell syntax would silently become
            // literal arguments.
            if let Some(c) = text.chars().find(|c| {
                matches!(
                    c,
                    '"' | '\'' | '\\' | '|' | '&' | ';' | '<' | '>' | '$' | '`'
                )
            }) {
                ctx.error(
                    f.span(),
                    format!(
                        "script: {text:?} contains {}, but the string is split on spaces and \
                         run without a shell",
                        match c {
                            '"' => "a double quote".to_string(),
                            '\'' => "a single quote".to_string(),
                            '\\' => "a backslash".to_string(),
                            other => format!("\"{other}\""),
                        }
                    ),
                    Some(format!(
                        "write an array: script = [\"/bin/sh\", \"-c\", {:?}] to use a shell",
                        text
                    )),
                );
                return None;
            }
            let words: Vec<String> = text.split_ascii_whitespace().map(str::to_string).collect();
            (words, f.span())
        }
        Node::Value(Value::Array(arr)) => {
            let mut words = Vec::new();
            let mut ok = true;
            for v in arr.iter() {
                match v {
                    Value::String(s) => words.push(s.value().clone()),
                    other => {
                        ctx.type_error(f.key, other.span(), "a string", value_type_name(other));
                        ok = false;
                    }
                }
            }
            if !ok {
                return None;
            }
            (words, arr.get(0).and_then(Value::span).or_else(|| f.span()))
        }
        other => {
            ctx.error(
                f.span(),
                format!(
                    "script: expected a string or an array of strings, found {}",
                    other.type_name()
                ),
                Some(ARRAY_HINT.to_string()),
            );
            return None;
        }
    };
    let Some(program) = command.first().filter(|p| !p.is_empty()) else {
        ctx.error(
            f.span(),
            "script: must name a program".to_string(),
            Some(ARRAY_HINT.to_string()),
        );
        return None;
    };
    if !program.starts_with('/') {
        ctx.error(
            program_span,
            format!("script: the program must be an absolute path, found {program:?}"),
            Some(format!(
                "checks are run without a shell or a PATH search: write the full path, like \
                 \"/usr/bin/{program}\""
            )),
        );
        return None;
    }
    Some(CheckKind::Script { command })
}

/// Rules across checks: unique names.
pub(super) fn cross_check(ctx: &mut Ctx<'_>, checks: &[CheckOut]) {
    let mut names: Vec<(&str, &Option<Span>)> = Vec::new();
    for c in checks {
        let Some((n, span)) = &c.name else {
            continue;
        };
        if let Some((_, first)) = names.iter().find(|(m, _)| m == n) {
            let at = ctx.where_is(first);
            ctx.error(
                span.clone(),
                format!("name: check {n:?} is already defined"),
                Some(format!("check names are unique; the first is at {at}")),
            );
        } else {
            names.push((n, span));
        }
    }
}

/// Why `s` is neither an IP address nor a DNS name, with a hint; `None` if it is one.
pub(crate) fn host_problem(s: &str) -> Option<(String, String)> {
    const HINT: &str = "write an IP address or a host name, like \"127.0.0.1\" or \"lb.example\"";
    if s.is_empty() {
        return Some(("must not be empty".to_string(), HINT.to_string()));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        if ip.is_multicast() {
            return Some((
                format!("{ip} is a multicast address, which takes no connections"),
                HINT.to_string(),
            ));
        }
        return None;
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        if inner.parse::<IpAddr>().is_ok() {
            return Some((
                format!("{s:?} has brackets"),
                format!("write the address alone, like {inner:?}"),
            ));
        }
    }
    if let Some((h, p)) = s.rsplit_once(':') {
        if !h.contains(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            return Some((
                format!("{s:?} includes a port"),
                format!("write host = {h:?} and port = {p}"),
            ));
        }
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Some((
            format!("{s:?} is not a valid IPv4 address"),
            HINT.to_string(),
        ));
    }
    if s.len() > 253 {
        return Some((
            format!(
                "{s:?} is {} bytes, longer than a DNS name can be (253)",
                s.len()
            ),
            HINT.to_string(),
        ));
    }
    // A trailing dot (fully qualified) is fine.
    for label in s.strip_suffix('.').unwrap_or(s).split('.') {
        let problem = if label.is_empty() {
            format!("{s:?} has an empty label (\"..\" or a leading \".\")")
        } else if label.len() > 63 {
            format!("{s:?} has a label longer than 63 bytes")
        } else if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
        {
            format!(
                "{s:?} contains \"{}\", which a host name cannot contain",
                c.escape_debug()
            )
        } else if label.starts_with('-') || label.ends_with('-') {
            format!("{s:?} has a label that starts or ends with \"-\"")
        } else {
            continue;
        };
        return Some((problem, HINT.to_string()));
    }
    None
}

/// Whether a URL is https://, if it starts with either scheme.
fn scheme(url: &str) -> Option<bool> {
    if url.starts_with("https://") {
        Some(true)
    } else if url.starts_with("http://") {
        Some(false)
    } else {
        None
    }
}

/// Why `url` cannot be fetched by an http check, with a hint; `None` if it can:
/// `http[s]://host[:port][/path][?query]`, host an IP address (IPv6 in brackets) or a DNS name.
pub(crate) fn url_problem(url: &str) -> Option<(String, String)> {
    const EXAMPLE: &str = "like \"http://127.0.0.1:8080/health\"";
    let problem = |message: String, hint: &str| Some((message, hint.to_string()));
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return problem(
            format!("{url:?} contains {:?}", c),
            "percent-encode it, like %20 for a space",
        );
    }
    let rest = match url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    {
        Some(rest) => rest,
        None => {
            return match url.split_once("://") {
                Some((s, _))
                    if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") =>
                {
                    problem(
                        format!("{url:?}: write the scheme in lower case"),
                        "like \"http://\" or \"https://\"",
                    )
                }
                Some((s, _)) => Some((
                    format!("{url:?} is not an http:// or https:// URL"),
                    format!("a kind = \"http\" check fetches http:// or https:// URLs, not {s}://"),
                )),
                None => Some((
                    format!("{url:?} does not start with http:// or https://"),
                    format!("did you mean \"http://{}\"?", url.trim_start_matches('/')),
                )),
            };
        }
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() {
        return problem(
            format!("{url:?} has no host"),
            &format!("write a URL {EXAMPLE}"),
        );
    }
    if authority.contains('@') {
        // Not echoed: the part before "@" is likely a password, and messages end up in logs.
        return problem(
            "user info (\"user:password@\") in a URL is not supported".to_string(),
            "remove the part up to and including \"@\"",
        );
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((inner, after)) = bracketed.split_once(']') else {
            return problem(
                format!("{url:?} has no \"]\" after its IPv6 address"),
                "write IPv6 addresses in brackets, like \"http://[2001:db8::1]:8080/\"",
            );
        };
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return problem(
                format!("{url:?}: {inner:?} is not an IPv6 address"),
                "write IPv6 addresses in brackets, like \"http://[2001:db8::1]:8080/\"",
            );
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => {
                    return problem(
                        format!("{url:?} has {after:?} after its IPv6 address"),
                        "a port is written \":8080\" after the \"]\"",
                    )
                }
            },
        }
    } else {
        match authority.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return problem(
                    format!("{url:?} has an IPv6 address without brackets"),
                    "write IPv6 addresses in brackets, like \"http://[2001:db8::1]:8080/\"",
                );
            }
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(authority), None),
        }
    };
    if let Some(h) = host {
        if let Some((p, _)) = host_problem(h) {
            return problem(
                format!("{url:?}: host {p}"),
                &format!("write a URL {EXAMPLE}"),
            );
        }
    }
    if let Some(p) = port {
        let valid = !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n != 0);
        if !valid {
            return problem(
                format!("{url:?}: port {p:?} is not a number from 1 to 65535"),
                &format!("write a URL {EXAMPLE}"),
            );
        }
    }
    if tail.contains('#') {
        return problem(
            format!("{url:?} has a fragment (\"#...\")"),
            "a fragment is never sent to the server; remove it",
        );
    }
    if let Some(c) = tail.chars().find(|c| matches!(c, '"' | '<' | '>' | '`')) {
        return Some((
            format!("{url:?} contains \"{c}\""),
            format!("percent-encode it, like %{:02X}", c as u32),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_key_tables_agree() {
        for kind in KINDS {
            assert_eq!(&kind.spec().valid[..COMMON_KEYS.len()], COMMON_KEYS);
            for key in kind.spec().valid {
                assert!(ANY_KEYS.valid.contains(key), "{key}");
            }
        }
        let own: usize = KINDS.iter().map(|k| k.own_keys().len()).sum();
        assert_eq!(COMMON_KEYS.len() + own, ANY_KEYS.valid.len());
        assert_eq!(Kind::Http.own_keys()[0], "url");
    }

    #[test]
    fn urls_an_http_check_can_fetch() {
        for url in [
            "http://127.0.0.1:8404/health",
            "https://lb.example/",
            "http://lb.example",
            "http://lb.example.:80",
            "http://[::1]/a?b=c",
            "https://[2001:db8::1]:8443/health?full=1&x=%20",
            "http://host_name.internal/x{y}",
            "http://x/?q=\\",
            "http://x?q",
        ] {
            assert_eq!(url_problem(url), None, "{url}");
        }
    }

    #[test]
    fn urls_an_http_check_cannot_fetch() {
        let cases = [
            (
                "127.0.0.1/health",
                "does not start with http:// or https://",
            ),
            ("ftp://x/", "is not an http:// or https:// URL"),
            ("Https://x/", "write the scheme in lower case"),
            ("http://", "has no host"),
            ("http://?a", "has no host"),
            ("http://:80/", "host must not be empty"),
            ("http://u@x/", "user info"),
            ("http://x:0/", "port \"0\" is not a number from 1 to 65535"),
            ("http://x:65536/", "is not a number from 1 to 65535"),
            ("http://x:+80/", "is not a number"),
            ("http://x:8a/", "is not a number"),
            ("http://::1/", "IPv6 address without brackets"),
            ("http://[::1/", "no \"]\""),
            ("http://[::1]:/", "port \"\""),
            ("http://[zz]/", "is not an IPv6 address"),
            ("http://x y/", "contains ' '"),
            ("http://x/\ty", "contains '\\t'"),
            ("http://x/a#b", "has a fragment"),
            ("http://x/a`b", "contains \"`\""),
            ("http://x/?a>b", "contains \">\""),
            ("http://a..b/", "empty label"),
            ("http://224.0.0.1/", "multicast"),
        ];
        for (url, want) in cases {
            let (message, _) = url_problem(url).unwrap_or_else(|| panic!("{url} accepted"));
            assert!(
                message.contains(want),
                "{url}: wanted {want:?} in {message:?}"
            );
        }
        // The part before "@" may be a password: never echoed.
        let (message, _) = url_problem("https://admin:s3cret@x/").unwrap();
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn hosts() {
        for host in [
            "127.0.0.1",
            "::1",
            "fe80::1",
            "lb.example",
            "lb.example.",
            "db-1",
            "_srv.example",
            "0.0.0.0",
        ] {
            assert_eq!(host_problem(host), None, "{host}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["abcdefghi"; 26].join(".");
        let cases = [
            ("", "must not be empty"),
            ("lb.example:80", "includes a port"),
            ("[::1]", "has brackets"),
            ("1.2.3", "not a valid IPv4 address"),
            ("300.1.1.1", "not a valid IPv4 address"),
            (".lb", "empty label"),
            ("lb..example", "empty label"),
            (long_label.as_str(), "longer than 63 bytes"),
            (long_name.as_str(), "longer than a DNS name can be (253)"),
            ("lb-.example", "starts or ends with \"-\""),
            ("lb example", "contains \" \""),
            ("lb/24", "contains \"/\""),
            ("ff02::1", "multicast"),
        ];
        for (host, want) in cases {
            let (message, _) = host_problem(host).unwrap_or_else(|| panic!("{host} accepted"));
            assert!(
                message.contains(want),
                "{host}: wanted {want:?} in {message:?}"
            );
        }
    }
}
