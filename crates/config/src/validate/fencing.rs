//! `[[fence_device]]` and `[[fence_level]]`.
//!
//! Secrets are never written in the file: a literal `password`, `community`, `auth_pass` or
//! `priv_pass` is an error that says which `*_file` / `*_env` key to write instead, and the
//! message never quotes the value.

use std::path::PathBuf;
use std::time::Duration;

use toml_edit::Value;

use super::{check_name, quoted_list, Ctx, KeySpec, Section};
use crate::suggest::did_you_mean;
use crate::tree::{value_type_name, Field, Node, Span, TableRef};
use crate::{
    FenceDeviceConfig, FenceDriverConfig, FenceLevelConfig, PlugRef, SecretRef, SnmpCredentials,
    DEFAULT_FENCE_RETRIES, DEFAULT_FENCE_TIMEOUT, DEFAULT_IPMI_CIPHER, DEFAULT_IPMI_PORT,
    DEFAULT_SNMP_PORT,
};

const DRIVERS: &[&str] = &["ipmi", "pdu-snmp", "switch-snmp", "fence-agent"];
const PRIVILEGES: &[&str] = &["CALLBACK", "USER", "OPERATOR", "ADMINISTRATOR"];
const PDU_MODELS: &[&str] = &["apc-rpdu", "apc-masterswitch"];
const AUTH_PROTOCOLS: &[&str] = &["MD5", "SHA", "SHA-256", "SHA-512"];
const PRIV_PROTOCOLS: &[&str] = &["DES", "AES"];

/// Keys that would hold a secret literally, and the key family to use instead.
const LITERAL_SECRETS: &[(&str, &str)] = &[
    ("password", "password"),
    ("passwd", "password"),
    ("community", "community"),
    ("auth_pass", "auth_pass"),
    ("auth_password", "auth_pass"),
    ("priv_pass", "priv_pass"),
    ("priv_password", "priv_pass"),
];

/// Every key of some driver, for a device whose driver is unknown.
const ANY_DRIVER_KEYS: KeySpec = KeySpec {
    valid: &[
        "name",
        "driver",
        "timeout",
        "retries",
        "address",
        "username",
        "password_file",
        "password_env",
        "cipher",
        "privilege",
        "outlet",
        "model",
        "port",
        "snmp_version",
        "community_file",
        "community_env",
        "user",
        "auth_protocol",
        "auth_pass_file",
        "auth_pass_env",
        "priv_protocol",
        "priv_pass_file",
        "priv_pass_env",
        "program",
        "options",
        "secret_files",
    ],
    unsupported: &[],
    notes: &[],
};

const IPMI_KEYS: KeySpec = KeySpec {
    valid: &[
        "name",
        "driver",
        "timeout",
        "retries",
        "address",
        "username",
        "password_file",
        "password_env",
        "cipher",
        "privilege",
    ],
    unsupported: &[],
    notes: &[
        ("user", "write username = \"...\""),
        ("login", "write username = \"...\""),
        ("lanplus", "tandem always uses IPMI v2.0 RMCP+ (lanplus)"),
    ],
};

const PDU_KEYS: KeySpec = KeySpec {
    valid: &[
        "name",
        "driver",
        "timeout",
        "retries",
        "address",
        "outlet",
        "model",
        "snmp_version",
        "community_file",
        "community_env",
        "user",
        "auth_protocol",
        "auth_pass_file",
        "auth_pass_env",
        "priv_protocol",
        "priv_pass_file",
        "priv_pass_env",
    ],
    unsupported: &[],
    notes: &[("plug", "write outlet = NUMBER or outlet = \"NAME\"")],
};

const SWITCH_KEYS: KeySpec = KeySpec {
    valid: &[
        "name",
        "driver",
        "timeout",
        "retries",
        "address",
        "port",
        "snmp_version",
        "community_file",
        "community_env",
        "user",
        "auth_protocol",
        "auth_pass_file",
        "auth_pass_env",
        "priv_protocol",
        "priv_pass_file",
        "priv_pass_env",
    ],
    unsupported: &[],
    notes: &[("plug", "write port = IFINDEX or port = \"IFNAME\"")],
};

const AGENT_KEYS: KeySpec = KeySpec {
    valid: &[
        "name",
        "driver",
        "timeout",
        "retries",
        "program",
        "options",
        "secret_files",
    ],
    unsupported: &[],
    notes: &[],
};

const LEVEL_KEYS: KeySpec = KeySpec {
    valid: &["node", "level", "devices"],
    unsupported: &[],
    notes: &[("device", "write devices = [{ device = \"NAME\" }]")],
};

const LEVEL_DEVICE_KEYS: KeySpec = KeySpec {
    valid: &["device"],
    unsupported: &[],
    notes: &[("name", "write { device = \"NAME\" }")],
};

/// What the cross checks need to know about one device.
pub(super) struct DeviceOut {
    pub(super) device: Option<FenceDeviceConfig>,
    /// The name as written, valid or not, for references from levels.
    pub(super) name_text: Option<String>,
    name: Option<(String, Option<Span>)>,
}

/// One `[[fence_device]]`.
pub(super) fn device<'a>(
    ctx: &mut Ctx<'a>,
    table: TableRef<'a>,
    fallback: Option<Span>,
) -> DeviceOut {
    let sec = Section::new(table, "[[fence_device]]", fallback);
    let origin = ctx.origin_at(&sec.header);

    // Literal secrets first: they are refused whatever the driver.
    let mut literal = Vec::new();
    for f in &sec.fields {
        if let Some((_, family)) = LITERAL_SECRETS.iter().find(|(k, _)| *k == f.key) {
            ctx.error(
                f.key_span.clone(),
                format!(
                    "\"{}\" in [[fence_device]]: secrets are never written in the config",
                    f.key
                ),
                Some(format!(
                    "put the secret in a file readable only by root and write \
                     {family}_file = \"/etc/tandem/secrets/NAME\", or name an environment \
                     variable of the daemon with {family}_env = \"VARIABLE\""
                )),
            );
            literal.push(f.key);
        }
    }

    let mut name_text = None;
    let name = sec
        .required(
            ctx,
            "name",
            "name = \"lb2-bmc\" (unique among the fence devices)",
        )
        .and_then(|f| {
            let s = ctx.string(f)?;
            name_text = Some(s.to_string());
            check_name(ctx, f, s, "fence device").then(|| (s.to_string(), f.span()))
        });
    let driver = sec
        .required(
            ctx,
            "driver",
            "driver = \"ipmi\" (or \"pdu-snmp\", \"switch-snmp\", \"fence-agent\")",
        )
        .and_then(|f| ctx.choice(f, "fence driver", DRIVERS));

    let timeout = match sec.get("timeout") {
        None => Some(DEFAULT_FENCE_TIMEOUT),
        Some(f) => ctx.duration(f).and_then(|(d, text)| {
            if d.is_zero() || d > Duration::from_secs(600) {
                ctx.error(
                    f.span(),
                    format!("timeout: must be more than 0 and at most \"10m\", found {text:?}"),
                    Some("the limit for one fencing attempt; the default is \"20s\"".to_string()),
                );
                None
            } else {
                Some(d)
            }
        }),
    };
    let retries = match sec.get("retries") {
        None => Some(DEFAULT_FENCE_RETRIES),
        Some(f) => ctx
            .int_in(
                f,
                0,
                10,
                Some("further attempts after a failed one; the default is 1"),
            )
            .map(|n| n as u32),
    };

    let spec = match driver {
        Some("ipmi") => Some(&IPMI_KEYS),
        Some("pdu-snmp") => Some(&PDU_KEYS),
        Some("switch-snmp") => Some(&SWITCH_KEYS),
        Some("fence-agent") => Some(&AGENT_KEYS),
        _ => None,
    };
    if let Some(spec) = spec {
        for f in &sec.fields {
            if !spec.valid.contains(&f.key) && !literal.contains(&f.key) {
                let note = other_driver_note(f.key, driver.unwrap_or_default());
                match note {
                    Some(n) => ctx.error(
                        f.key_span.clone(),
                        format!(
                            "key \"{}\" does not apply to driver = {:?}",
                            f.key,
                            driver.unwrap_or_default()
                        ),
                        Some(format!("{n}; valid keys: {}", spec.valid.join(", "))),
                    ),
                    None => sec.report_key(ctx, f, spec),
                }
            }
        }
    } else {
        // Unknown driver: judge only the keys no driver has.
        for f in &sec.fields {
            if !ANY_DRIVER_KEYS.valid.contains(&f.key) && !literal.contains(&f.key) {
                sec.report_key(ctx, f, &ANY_DRIVER_KEYS);
            }
        }
    }

    let driver_config = match driver {
        Some("ipmi") => ipmi(ctx, &sec),
        Some("pdu-snmp") => pdu(ctx, &sec),
        Some("switch-snmp") => switch(ctx, &sec),
        Some("fence-agent") => agent(ctx, &sec),
        _ => None,
    };

    let device = (|| {
        if !literal.is_empty() {
            return None;
        }
        Some(FenceDeviceConfig {
            name: name.as_ref()?.0.clone(),
            driver: driver_config?,
            timeout: timeout?,
            retries: retries?,
            origin,
        })
    })();
    DeviceOut {
        device,
        name_text,
        name,
    }
}

/// A note for a key that belongs to another driver.
fn other_driver_note(key: &str, driver: &str) -> Option<String> {
    let owners: Vec<&str> = [
        ("ipmi", &IPMI_KEYS),
        ("pdu-snmp", &PDU_KEYS),
        ("switch-snmp", &SWITCH_KEYS),
        ("fence-agent", &AGENT_KEYS),
    ]
    .iter()
    .filter(|(d, s)| *d != driver && s.valid.contains(&key))
    .map(|(d, _)| *d)
    .collect();
    if owners.is_empty() {
        return None;
    }
    let drivers: Vec<String> = owners.iter().map(|d| format!("\"{d}\"")).collect();
    Some(format!(
        "\"{key}\" is a key of driver {}",
        drivers.join(", ")
    ))
}

/// "host", "host:port", "[v6]:port" or a bare IPv6 address.
fn address<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>, default_port: u16) -> Option<(String, u16)> {
    let f = sec.required(
        ctx,
        "address",
        &format!("address = \"10.0.9.2\" (or \"HOST:PORT\"; the port defaults to {default_port})"),
    )?;
    let s = ctx.string(f)?;
    let bad = |ctx: &mut Ctx<'_>, why: &str| {
        ctx.error(
            f.span(),
            format!("address: {why}, found {s:?}"),
            Some(format!(
                "write \"HOST\" or \"HOST:PORT\" (IPv6 as \"[ADDR]:PORT\"); the port defaults \
                 to {default_port}"
            )),
        );
        None
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((h, tail)) = rest.split_once(']') else {
            return bad(ctx, "no closing \"]\"");
        };
        match tail.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if tail.is_empty() => (h, None),
            None => return bad(ctx, "unexpected text after \"]\""),
        }
    } else if s.matches(':').count() > 1 {
        (s, None)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || host.starts_with('-')
        || host
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')))
    {
        return bad(ctx, "not a host name or IP address");
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return bad(ctx, "the port must be 1 to 65535"),
        },
    };
    Some((host.to_string(), port))
}

/// `FAMILY_file` or `FAMILY_env`: exactly one, required.
fn secret<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>, family: &str) -> Option<SecretRef> {
    let file_key = format!("{family}_file");
    let env_key = format!("{family}_env");
    let file = sec.get(&file_key);
    let env = sec.get(&env_key);
    match (file, env) {
        (Some(_), Some(e)) => {
            ctx.error(
                e.key_span.clone(),
                format!("{env_key}: {file_key} is also set"),
                Some(format!("write one of {file_key} and {env_key}")),
            );
            None
        }
        (None, None) => {
            // A literal secret of this family was reported already, with the same advice.
            if LITERAL_SECRETS
                .iter()
                .any(|(k, fam)| *fam == family && sec.get(k).is_some())
            {
                return None;
            }
            ctx.error(
                sec.header.clone(),
                format!("[[fence_device]] is missing the required key \"{file_key}\""),
                Some(format!(
                    "add {file_key} = \"/etc/tandem/secrets/NAME\" (a file readable only by \
                     root), or {env_key} = \"VARIABLE\""
                )),
            );
            None
        }
        (Some(f), None) => secret_file(ctx, f),
        (None, Some(f)) => {
            let s = ctx.string(f)?;
            let ok = !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                ctx.error(
                    f.span(),
                    format!("{}: not an environment variable name, found {s:?}", f.key),
                    Some("variable names use letters, digits and \"_\"".to_string()),
                );
                return None;
            }
            Some(SecretRef::Env(s.to_string()))
        }
    }
}

fn secret_file<'a>(ctx: &mut Ctx<'a>, f: &Field<'a>) -> Option<SecretRef> {
    let s = ctx.string(f)?;
    if !s.starts_with('/') {
        ctx.error(
            f.span(),
            format!("{}: must be an absolute path, found {s:?}", f.key),
            Some("e.g. \"/etc/tandem/secrets/lb2-bmc\"".to_string()),
        );
        return None;
    }
    Some(SecretRef::File(PathBuf::from(s)))
}

fn ipmi<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Option<FenceDriverConfig> {
    let addr = address(ctx, sec, DEFAULT_IPMI_PORT);
    let username = sec
        .required(ctx, "username", "username = \"admin\"")
        .and_then(|f| {
            let s = ctx.string(f)?;
            if s.is_empty() || s.starts_with('-') || s.contains(['\n', '\r', '\0']) {
                ctx.error(
                    f.span(),
                    format!("username: not a usable user name, found {s:?}"),
                    Some("the BMC user, e.g. \"admin\"".to_string()),
                );
                return None;
            }
            Some(s.to_string())
        });
    let password = secret(ctx, sec, "password");
    let cipher = match sec.get("cipher") {
        None => Some(DEFAULT_IPMI_CIPHER),
        Some(f) => ctx
            .int_in(
                f,
                0,
                17,
                Some("the RMCP+ cipher suite (ipmitool -C); the default 3 is HMAC-SHA1 / AES-128"),
            )
            .map(|n| n as u8),
    };
    let privilege = match sec.get("privilege") {
        None => Some("ADMINISTRATOR".to_string()),
        Some(f) => ctx.choice(f, "privilege", PRIVILEGES).map(str::to_string),
    };
    let (host, port) = addr?;
    Some(FenceDriverConfig::Ipmi {
        host,
        port,
        username: username?,
        password: password?,
        cipher: cipher?,
        privilege: privilege?,
    })
}

/// An outlet or port: a positive number or a non-empty name.
fn plug<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>, key: &str, example: &str) -> Option<PlugRef> {
    let f = sec.required(ctx, key, example)?;
    match f.node {
        Node::Value(Value::Integer(i)) => {
            let n = *i.value();
            if (1..=i64::from(u32::MAX)).contains(&n) {
                Some(PlugRef::Number(n as u32))
            } else {
                ctx.error(
                    f.span(),
                    format!("{key}: must be 1 or more, found {n}"),
                    Some("numbers start at 1".to_string()),
                );
                None
            }
        }
        Node::Value(Value::String(s)) => {
            let s = s.value().as_str();
            if s.is_empty() || s.contains(['\n', '\r', '\0']) {
                ctx.error(
                    f.span(),
                    format!("{key}: not a usable name, found {s:?}"),
                    Some(format!("write {example}")),
                );
                return None;
            }
            Some(PlugRef::Name(s.to_string()))
        }
        other => {
            ctx.type_error(key, f.span(), "a number or a name", other.type_name());
            None
        }
    }
}

fn snmp<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Option<SnmpCredentials> {
    let version = sec
        .required(ctx, "snmp_version", "snmp_version = \"2c\" (or \"3\")")
        .and_then(|f| {
            if let Node::Value(Value::Integer(i)) = f.node {
                if *i.value() == 3 || *i.value() == 2 {
                    let hint = if *i.value() == 3 { "\"3\"" } else { "\"2c\"" };
                    ctx.error(
                        f.span(),
                        "snmp_version: expected a string, found an integer".to_string(),
                        Some(format!("write snmp_version = {hint}")),
                    );
                    return None;
                }
            }
            ctx.choice(f, "SNMP version", &["2c", "3"])
        });
    let v3_keys = [
        "user",
        "auth_protocol",
        "auth_pass_file",
        "auth_pass_env",
        "priv_protocol",
        "priv_pass_file",
        "priv_pass_env",
    ];
    match version? {
        "2c" => {
            for f in &sec.fields {
                if v3_keys.contains(&f.key) {
                    ctx.error(
                        f.key_span.clone(),
                        format!("{}: applies to snmp_version = \"3\" only", f.key),
                        Some("remove it, or set snmp_version = \"3\"".to_string()),
                    );
                }
            }
            Some(SnmpCredentials::V2c {
                community: secret(ctx, sec, "community")?,
            })
        }
        _ => {
            for f in &sec.fields {
                if f.key == "community_file" || f.key == "community_env" {
                    ctx.error(
                        f.key_span.clone(),
                        format!("{}: applies to snmp_version = \"2c\" only", f.key),
                        Some("SNMPv3 uses user, auth_pass_file and priv_pass_file".to_string()),
                    );
                }
            }
            let user = sec
                .required(ctx, "user", "user = \"fenceuser\" (the SNMPv3 user)")
                .and_then(|f| {
                    let s = ctx.string(f)?;
                    if s.is_empty() || s.contains(char::is_whitespace) || s.starts_with('-') {
                        ctx.error(
                            f.span(),
                            format!("user: not a usable SNMPv3 user name, found {s:?}"),
                            None,
                        );
                        return None;
                    }
                    Some(s.to_string())
                });
            let auth_protocol = match sec.get("auth_protocol") {
                None => Some("SHA"),
                Some(f) => ctx.choice(f, "SNMPv3 authentication protocol", AUTH_PROTOCOLS),
            };
            let priv_protocol = match sec.get("priv_protocol") {
                None => Some("AES"),
                Some(f) => ctx.choice(f, "SNMPv3 privacy protocol", PRIV_PROTOCOLS),
            };
            let auth_pass = secret(ctx, sec, "auth_pass");
            let priv_pass = secret(ctx, sec, "priv_pass");
            Some(SnmpCredentials::V3 {
                user: user?,
                auth_protocol: auth_protocol?.to_string(),
                auth_pass: auth_pass?,
                priv_protocol: priv_protocol?.to_string(),
                priv_pass: priv_pass?,
            })
        }
    }
}

fn pdu<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Option<FenceDriverConfig> {
    let addr = address(ctx, sec, DEFAULT_SNMP_PORT);
    let outlet = plug(
        ctx,
        sec,
        "outlet",
        "outlet = 4 (or the outlet's name, \"lb2-psu1\")",
    );
    let model = match sec.get("model") {
        None => Some("apc-rpdu"),
        Some(f) => ctx.choice(f, "PDU model", PDU_MODELS),
    };
    let snmp = snmp(ctx, sec);
    let (host, port) = addr?;
    Some(FenceDriverConfig::PduSnmp {
        host,
        port,
        outlet: outlet?,
        model: model?.to_string(),
        snmp: snmp?,
    })
}

fn switch<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Option<FenceDriverConfig> {
    let addr = address(ctx, sec, DEFAULT_SNMP_PORT);
    let port = plug(
        ctx,
        sec,
        "port",
        "port = 12 (the ifIndex, or the ifName, \"ge-0/0/12\")",
    );
    let snmp = snmp(ctx, sec);
    let (host, udp) = addr?;
    Some(FenceDriverConfig::SwitchSnmp {
        host,
        port: udp,
        switch_port: port?,
        snmp: snmp?,
    })
}

/// Option names of fence agents that carry a secret: they go in `secret_files`.
fn secret_like(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["passw", "community", "secret", "priv_pass", "auth_pass"]
        .iter()
        .any(|s| k.contains(s))
        && !k.ends_with("_script")
}

fn option_key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn agent<'a>(ctx: &mut Ctx<'a>, sec: &Section<'a>) -> Option<FenceDriverConfig> {
    let program = sec
        .required(ctx, "program", "program = \"/usr/sbin/fence_ipmilan\"")
        .and_then(|f| {
            let s = ctx.string(f)?;
            if !s.starts_with('/') {
                ctx.error(
                    f.span(),
                    format!("program: must be an absolute path, found {s:?}"),
                    Some(format!(
                        "e.g. \"/usr/sbin/{}\"",
                        if s.is_empty() { "fence_ipmilan" } else { s }
                    )),
                );
                return None;
            }
            Some(PathBuf::from(s))
        });
    let mut ok = true;
    let mut options = Vec::new();
    if let Some(f) = sec.get("options") {
        match f.node.as_table() {
            None => {
                ctx.type_error(f.key, f.span(), "a table", f.node.type_name());
                ok = false;
            }
            Some(t) => {
                for o in t.fields() {
                    let Node::Value(Value::String(v)) = o.node else {
                        ctx.type_error(
                            &format!("options.{}", o.key),
                            o.span(),
                            "a string",
                            o.node.type_name(),
                        );
                        ok = false;
                        continue;
                    };
                    if secret_like(o.key) {
                        ctx.error(
                            o.key_span.clone(),
                            format!("options.{}: secrets are never written in the config", o.key),
                            Some(format!(
                                "move it to secret_files = {{ {} = \"/etc/tandem/secrets/NAME\" }}",
                                o.key
                            )),
                        );
                        ok = false;
                        continue;
                    }
                    if !option_key_ok(o.key) || o.key == "action" {
                        ctx.error(
                            o.key_span.clone(),
                            format!("options.{}: not a usable fence agent option", o.key),
                            Some(
                                "option names use letters, digits, \"_\" and \"-\"; tandem sets \
                                 \"action\" itself"
                                    .to_string(),
                            ),
                        );
                        ok = false;
                        continue;
                    }
                    let v = v.value().as_str();
                    if v.contains(['\n', '\r', '\0']) {
                        ctx.error(
                            o.span(),
                            format!("options.{}: must be one line", o.key),
                            None,
                        );
                        ok = false;
                        continue;
                    }
                    options.push((o.key.to_string(), v.to_string()));
                }
            }
        }
    }
    let mut secret_options = Vec::new();
    if let Some(f) = sec.get("secret_files") {
        match f.node.as_table() {
            None => {
                ctx.type_error(f.key, f.span(), "a table", f.node.type_name());
                ok = false;
            }
            Some(t) => {
                for o in t.fields() {
                    if !option_key_ok(o.key) {
                        ctx.error(
                            o.key_span.clone(),
                            format!("secret_files.{}: not a usable fence agent option", o.key),
                            Some("option names use letters, digits, \"_\" and \"-\"".to_string()),
                        );
                        ok = false;
                        continue;
                    }
                    match secret_file(ctx, &o) {
                        Some(s) => secret_options.push((o.key.to_string(), s)),
                        None => ok = false,
                    }
                }
            }
        }
    }
    let program = program?;
    ok.then_some(FenceDriverConfig::FenceAgent {
        program,
        options,
        secret_options,
    })
}

/// Unique device names.
pub(super) fn devices_cross_check(ctx: &mut Ctx<'_>, devices: &[DeviceOut]) {
    let mut seen: Vec<(&str, &Option<Span>)> = Vec::new();
    for d in devices {
        if let Some((n, span)) = &d.name {
            if let Some((_, first)) = seen.iter().find(|(m, _)| m == n) {
                let at = ctx.where_is(first);
                ctx.error(
                    span.clone(),
                    format!("name: fence device {n:?} is already defined"),
                    Some(format!(
                        "fence device names are unique; the first is at {at}"
                    )),
                );
            } else {
                seen.push((n, span));
            }
        }
    }
}

pub(super) struct LevelOut {
    pub(super) level: Option<FenceLevelConfig>,
    /// The `node` the level is for, when that key is valid (even if the rest of the level is
    /// not), so a level with a bad device does not also count as no level for its node.
    pub(super) node: Option<String>,
    key: Option<(String, u8, Option<Span>)>,
}

/// One `[[fence_level]]`. `device_names`: the declared devices (`None` when not all are
/// known); `node_names`: the `[cluster]` members (`None` without a valid `[cluster]`).
pub(super) fn level<'a>(
    ctx: &mut Ctx<'a>,
    table: TableRef<'a>,
    fallback: Option<Span>,
    device_names: Option<&[&str]>,
    node_names: Option<&[&str]>,
) -> LevelOut {
    let sec = Section::new(table, "[[fence_level]]", fallback);
    sec.check_keys(ctx, &LEVEL_KEYS);
    let node = sec
        .required(ctx, "node", "node = \"lb2\" (the node this level fences)")
        .and_then(|f| {
            let s = ctx.string(f)?;
            if !check_name(ctx, f, s, "node") {
                return None;
            }
            if let Some(names) = node_names {
                if !names.contains(&s) {
                    let guess = did_you_mean(s, names)
                        .map(|c| format!("did you mean \"{c}\"? "))
                        .unwrap_or_default();
                    ctx.error(
                        f.span(),
                        format!("node: {s:?} is not a node of [cluster]"),
                        Some(format!("{guess}cluster nodes: {}", quoted_list(names))),
                    );
                    return None;
                }
            }
            Some((s.to_string(), f.span()))
        });
    let level = sec
        .required(ctx, "level", "level = 1 (1 is tried first)")
        .and_then(|f| {
            ctx.int_in(
                f,
                1,
                9,
                Some("levels are tried in ascending order, 1 first"),
            )
            .map(|n| (n as u8, f.span()))
        });
    let devices = sec
        .required(ctx, "devices", "devices = [{ device = \"lb2-bmc\" }]")
        .and_then(|f| {
            let arr = ctx.array(f)?;
            if arr.is_empty() {
                ctx.error(
                    f.span(),
                    "devices: a level needs at least one device".to_string(),
                    Some("write devices = [{ device = \"NAME\" }]".to_string()),
                );
                return None;
            }
            let mut ok = true;
            let mut names: Vec<(String, Option<Span>)> = Vec::new();
            for v in arr.iter() {
                let Value::InlineTable(t) = v else {
                    let hint = match v {
                        Value::String(s) => {
                            format!("write {{ device = \"{}\" }}", s.value())
                        }
                        _ => "write { device = \"NAME\" }".to_string(),
                    };
                    ctx.error(
                        v.span(),
                        format!("devices: expected a table, found {}", value_type_name(v)),
                        Some(hint),
                    );
                    ok = false;
                    continue;
                };
                let dsec = Section::new(TableRef::Inline(t), "a devices entry", v.span());
                dsec.check_keys(ctx, &LEVEL_DEVICE_KEYS);
                let Some(df) = dsec.required(ctx, "device", "device = \"NAME\"") else {
                    ok = false;
                    continue;
                };
                let Some(s) = ctx.string(df) else {
                    ok = false;
                    continue;
                };
                if let Some((_, first)) = names.iter().find(|(m, _)| m == s) {
                    let at = ctx.where_is(first);
                    ctx.error(
                        df.span(),
                        format!("devices: {s:?} is listed twice"),
                        Some(format!("first listed at {at}")),
                    );
                    ok = false;
                    continue;
                }
                if let Some(known) = device_names {
                    if !known.contains(&s) {
                        let hint = if known.is_empty() {
                            "this config declares no [[fence_device]]".to_string()
                        } else {
                            let guess = did_you_mean(s, known)
                                .map(|c| format!("did you mean \"{c}\"? "))
                                .unwrap_or_default();
                            format!("{guess}declared fence devices: {}", quoted_list(known))
                        };
                        ctx.error(
                            df.span(),
                            format!("devices: no [[fence_device]] is named {s:?}"),
                            Some(hint),
                        );
                        ok = false;
                        continue;
                    }
                }
                names.push((s.to_string(), df.span()));
            }
            ok.then(|| names.into_iter().map(|(n, _)| n).collect::<Vec<_>>())
        });
    let key = match (&node, &level) {
        (Some((n, _)), Some((l, span))) => Some((n.clone(), *l, span.clone())),
        _ => None,
    };
    let node_name = node.as_ref().map(|(n, _)| n.clone());
    let level = (|| {
        Some(FenceLevelConfig {
            node: node?.0,
            level: level?.0,
            devices: devices?,
        })
    })();
    LevelOut {
        level,
        node: node_name,
        key,
    }
}

/// One level number per node.
pub(super) fn levels_cross_check(ctx: &mut Ctx<'_>, levels: &[LevelOut]) {
    let mut seen: Vec<(&str, u8, &Option<Span>)> = Vec::new();
    for l in levels {
        if let Some((node, level, span)) = &l.key {
            if let Some((_, _, first)) = seen.iter().find(|(n, m, _)| n == node && m == level) {
                let at = ctx.where_is(first);
                ctx.error(
                    span.clone(),
                    format!("level: node {node:?} already has a fence level {level}"),
                    Some(format!(
                        "each level of a node is one [[fence_level]] listing all its devices; \
                         the first is at {at}"
                    )),
                );
            } else {
                seen.push((node, *level, span));
            }
        }
    }
}
