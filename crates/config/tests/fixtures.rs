//! Runs the config fixtures in `tests/configs/` at the workspace root: every `valid/*.toml`
//! must parse, and every `broken/NAME.toml` must produce exactly the diagnostics written in
//! `broken/NAME.expected`.
//!
//! The broken files are parsed under the relative name `tests/configs/broken/NAME.toml` (the
//! form `tandem check` prints when run from the repository root), so the expected text does
//! not depend on where the repository is checked out.
//!
//! After an intended change of wording, `TANDEM_BLESS=1 cargo test -p tandem-config --test
//! fixtures` rewrites the `.expected` files; review the diff before committing it.

use std::fs;
use std::path::{Path, PathBuf};

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/configs")
}

/// The `.toml` files of a fixture directory, sorted so failures come in a stable order.
fn tomls(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(configs_dir().join(dir))
        .unwrap_or_else(|e| panic!("reading tests/configs/{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn valid_configs_parse() {
    let files = tomls("valid");
    assert!(files.len() >= 4, "valid fixtures missing");
    for path in files {
        let shown = format!("tests/configs/valid/{}.toml", stem(&path));
        if let Err(d) = tandem_config::load(&path) {
            panic!("{shown} should be valid:\n{d}");
        }
    }
}

#[test]
fn broken_configs_give_the_expected_diagnostics() {
    let bless = std::env::var_os("TANDEM_BLESS").is_some();
    let files = tomls("broken");
    assert!(files.len() >= 16, "broken fixtures missing");
    let mut failures = Vec::new();
    for path in files {
        let name = stem(&path);
        let shown = format!("tests/configs/broken/{name}.toml");
        let text = fs::read_to_string(&path).unwrap();
        let actual = match tandem_config::parse(&text, Path::new(&shown)) {
            Ok(_) => "(accepted)\n".to_string(),
            Err(d) => d.to_string(),
        };
        let expected_path = path.with_extension("expected");
        if bless {
            fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if actual != expected {
            failures.push(format!(
                "== {shown}\n-- expected:\n{expected}-- actual:\n{actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_expected_file_has_its_config() {
    let dir = configs_dir().join("broken");
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "expected") {
            assert!(
                path.with_extension("toml").exists(),
                "{} has no .toml",
                path.display()
            );
        }
    }
}

#[test]
fn the_lb_pair_is_one_group() {
    let dir = configs_dir().join("valid");
    let a = tandem_config::load(&dir.join("lb1.toml")).unwrap();
    let b = tandem_config::load(&dir.join("lb2.toml")).unwrap();
    let (i, j) = (&a.vrrp_instances[0], &b.vrrp_instances[0]);
    assert_eq!((i.priority, j.priority), (150, 100));
    assert_eq!(i.virtual_router_id, j.virtual_router_id);
    assert_eq!(i.virtual_ipaddress, j.virtual_ipaddress);
    assert_eq!(i.advert_int, std::time::Duration::from_millis(100));
    assert_eq!(i.version, tandem_config::VrrpVersion::V3);
    assert_eq!(i.virtual_ipaddress[0].to_string(), "192.0.2.100/24");
}

#[test]
fn the_health_example_is_what_its_comments_say() {
    use std::time::Duration;
    use tandem_config::CheckKind;
    let c = tandem_config::load(&configs_dir().join("valid/health.toml")).unwrap();
    let haproxy = c.check("haproxy").unwrap();
    assert!(matches!(
        &haproxy.kind,
        CheckKind::Http { url, expect_status: 200, tls_verify: true, .. }
            if url == "http://127.0.0.1:8404/health"
    ));
    assert_eq!(
        (
            haproxy.interval,
            haproxy.timeout,
            haproxy.rise,
            haproxy.fall
        ),
        (Duration::from_secs(1), Duration::from_millis(500), 2, 3)
    );
    assert_eq!(
        c.check("backends").unwrap().kind,
        CheckKind::Script {
            command: vec![
                "/usr/local/bin/check-backends".into(),
                "--min".into(),
                "2".into()
            ]
        }
    );
    for inst in &c.vrrp_instances {
        let weights: Vec<(&str, i32)> = inst
            .track_check
            .iter()
            .map(|t| (t.target.as_str(), t.weight))
            .collect();
        assert_eq!(weights, [("haproxy", 0), ("backends", -30)]);
        assert_eq!(inst.track_interface.len(), 1);
        assert_eq!(inst.track_interface[0].weight, 0);
        assert!(inst.track_check[0]
            .origin
            .contains("tests/configs/valid/health.toml:"));
        assert_eq!(
            inst.notify.as_deref(),
            Some(Path::new("/etc/tandem/notify.sh"))
        );
        // 120 - 30 falls below the peer's 100.
        assert_eq!(inst.priority, 120);
    }
    let group = c.sync_group_of("VI_back").unwrap();
    assert_eq!(group.group, ["VI_front", "VI_back"]);
    for inst in &c.vrrp_instances {
        for t in &inst.track_check {
            assert!(c.check(&t.target).is_some(), "{}", t.target);
        }
    }
}

#[test]
fn every_key_sets_the_new_keys() {
    let c = tandem_config::load(&configs_dir().join("valid/every-key.toml")).unwrap();
    let i = c.instance("VI_full").unwrap();
    assert_eq!(i.track_interface.len(), 2);
    assert_eq!(i.track_check.len(), 3);
    assert_eq!(i.track_file.len(), 2);
    assert!(i.notify.is_some());
    assert_eq!(i.notify_timeout, std::time::Duration::from_secs(30));
    let kinds: Vec<&str> = c.checks.iter().map(|c| c.kind.name()).collect();
    assert_eq!(kinds, ["http", "http", "tcp", "script", "script"]);
    assert_eq!(c.sync_groups.len(), 1);
    let cluster = c.cluster.as_ref().unwrap();
    assert_eq!(cluster.nodes.len(), 3);
    assert_eq!(cluster.nodes[2].role, tandem_config::Role::Arbiter);
    assert_eq!(
        (
            cluster.lease,
            cluster.lease_renew,
            cluster.lease_margin,
            cluster.raft_port
        ),
        (
            std::time::Duration::from_millis(1500),
            std::time::Duration::from_millis(300),
            std::time::Duration::from_millis(200),
            5411
        )
    );
    assert_eq!(cluster.unfence, tandem_config::Unfence::Auto);
    assert_eq!(
        (c.node.fence_delay, c.node.fence_random_delay),
        (
            std::time::Duration::from_secs(3),
            std::time::Duration::from_millis(500)
        )
    );
    // An arbiter among the members: Raft runs although every instance is mode = "vrrp".
    assert!(c.raft_enabled());
    let kinds: Vec<&str> = c.heartbeats.iter().map(|h| h.kind.name()).collect();
    assert_eq!(kinds, ["udp-multicast", "udp-unicast", "tcp", "serial"]);
    assert_eq!(
        c.heartbeats[3].kind,
        tandem_config::HeartbeatKind::Serial {
            device: "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0".into(),
            baud: 9600
        }
    );
}

/// The cluster pair shares every cluster-wide fact and lists the same channels in the same
/// order (a channel's position is its id on the wire); only `bind` and the VRRP priority
/// differ. `load` alone judges fixtures: `check_local` would look for /dev/ttyS1 and the key
/// file on the machine running the tests.
#[test]
fn the_cluster_pair_agrees() {
    use std::time::Duration;
    use tandem_config::{HeartbeatKind, Role};
    let dir = configs_dir().join("valid");
    let a = tandem_config::load(&dir.join("cluster-lb1.toml")).unwrap();
    let b = tandem_config::load(&dir.join("cluster-lb2.toml")).unwrap();
    let (ca, cb) = (a.cluster.as_ref().unwrap(), b.cluster.as_ref().unwrap());
    assert_eq!(
        (&ca.name, &ca.key_file, &ca.nodes),
        (&cb.name, &cb.key_file, &cb.nodes)
    );
    assert_eq!(ca.nodes.len(), 2);
    assert!(ca.nodes.iter().all(|n| n.role == Role::Voter));
    assert_eq!(a.cluster_node().unwrap().name, "lb1");
    assert_eq!(b.cluster_node().unwrap().name, "lb2");

    let kinds: Vec<&str> = a.heartbeats.iter().map(|h| h.kind.name()).collect();
    assert_eq!(kinds, ["udp-multicast", "tcp", "serial"]);
    assert_eq!(a.heartbeats.len(), b.heartbeats.len());
    for (x, y) in a.heartbeats.iter().zip(&b.heartbeats) {
        assert_eq!((x.interval, x.timeout), (y.interval, y.timeout));
        match (&x.kind, &y.kind) {
            (HeartbeatKind::Tcp { port: p, .. }, HeartbeatKind::Tcp { port: q, .. }) => {
                assert_eq!(p, q)
            }
            _ => assert_eq!(x.kind, y.kind),
        }
    }
    assert_eq!(
        a.heartbeats[0].kind,
        HeartbeatKind::UdpMulticast {
            interface: "eth0".into(),
            group: "239.192.0.1:5405".parse().unwrap()
        }
    );
    assert_eq!(
        a.heartbeats[2].kind,
        HeartbeatKind::Serial {
            device: "/dev/ttyS1".into(),
            baud: 115_200
        }
    );
    assert_eq!(
        (a.heartbeats[2].interval, a.heartbeats[2].timeout),
        (Duration::from_millis(200), Duration::from_secs(1))
    );
    // Each node's TCP channel binds its own cluster address and reaches the other's.
    let tcp_a = &a.heartbeats[1];
    let tcp_b = &b.heartbeats[1];
    assert_eq!(a.heartbeat_bind(tcp_a), Some(ca.nodes[0].address));
    assert_eq!(b.heartbeat_bind(tcp_b), Some(ca.nodes[1].address));
    assert_eq!(
        a.heartbeat_peers(tcp_a),
        ["10.0.0.2:5406".parse::<std::net::SocketAddr>().unwrap()]
    );
    assert_eq!(
        b.heartbeat_peers(tcp_b),
        ["10.0.0.1:5406".parse::<std::net::SocketAddr>().unwrap()]
    );
    assert!(a.heartbeats[2]
        .device_origin
        .as_ref()
        .unwrap()
        .to_string()
        .ends_with("cluster-lb1.toml:41:10"));
}

#[test]
fn the_fencing_example_is_what_its_comments_say() {
    use std::time::Duration;
    use tandem_config::{FenceDriverConfig, PlugRef, SecretRef, SnmpCredentials};
    let c = tandem_config::load(&configs_dir().join("valid/fencing.toml")).unwrap();
    assert_eq!(c.fence_devices.len(), 5);
    let bmc = c.fence_device("lb2-bmc").unwrap();
    assert_eq!((bmc.timeout, bmc.retries), (Duration::from_secs(10), 1));
    assert_eq!(
        bmc.driver,
        FenceDriverConfig::Ipmi {
            host: "10.0.9.2".into(),
            port: 623,
            username: "admin".into(),
            password: SecretRef::File("/etc/tandem/secrets/lb2-bmc".into()),
            cipher: 3,
            privilege: "ADMINISTRATOR".into(),
        }
    );
    let psu1 = c.fence_device("lb2-psu1").unwrap();
    assert_eq!((psu1.timeout, psu1.retries), (Duration::from_secs(20), 1));
    assert!(matches!(
        &psu1.driver,
        FenceDriverConfig::PduSnmp { port: 161, outlet: PlugRef::Number(3), model, snmp: SnmpCredentials::V2c { .. }, .. }
            if model == "apc-rpdu"
    ));
    assert!(matches!(
        &c.fence_device("lb2-psu2").unwrap().driver,
        FenceDriverConfig::PduSnmp { outlet: PlugRef::Name(n), snmp: SnmpCredentials::V3 { priv_pass: SecretRef::Env(v), .. }, .. }
            if n == "lb2-psu2" && v == "TANDEM_PDU_PRIV"
    ));
    assert!(matches!(
        &c.fence_device("lb2-uplink").unwrap().driver,
        FenceDriverConfig::SwitchSnmp { host, port: 161, switch_port: PlugRef::Name(p), .. }
            if host == "2001:db8::9" && p == "ge-0/0/12"
    ));
    assert!(matches!(
        &c.fence_device("lb1-bmc").unwrap().driver,
        FenceDriverConfig::FenceAgent { options, secret_options, .. }
            if options.len() == 4 && secret_options.len() == 1
    ));
    let lb2: Vec<(u8, Vec<String>)> = c
        .fence_levels_of("lb2")
        .iter()
        .map(|l| (l.level, l.devices.clone()))
        .collect();
    assert_eq!(
        lb2,
        vec![
            (1, vec!["lb2-bmc".to_string()]),
            (2, vec!["lb2-psu1".to_string(), "lb2-psu2".to_string()]),
            (3, vec!["lb2-uplink".to_string()]),
        ]
    );
}

/// The vrrp pair fences its peer before a takeover: lb1 has the delays (so lb2 wins a fence
/// race), unfences automatically, and can fence lb2; the quorum example is quorum-lb1.toml
/// plus fencing.
#[test]
fn the_fence_examples_are_what_their_comments_say() {
    use std::time::Duration;
    use tandem_config::{Mode, Unfence};
    let dir = configs_dir().join("valid");
    let pair = tandem_config::load(&dir.join("fence-vrrp-pair.toml")).unwrap();
    let i = &pair.vrrp_instances[0];
    assert!(i.fence_on_takeover);
    assert_eq!(i.mode, Mode::Vrrp);
    assert_eq!(
        (pair.node.fence_delay, pair.node.fence_random_delay),
        (Duration::from_secs(5), Duration::from_secs(1))
    );
    let cluster = pair.cluster.as_ref().unwrap();
    assert_eq!(cluster.unfence, Unfence::Auto);
    assert_eq!(cluster.nodes.len(), 2);
    let levels = pair.fence_levels_of("lb2");
    assert_eq!(levels.len(), 1);
    assert!(pair.fence_device(&levels[0].devices[0]).is_some());
    assert!(pair.fence_levels_of("lb1").is_empty());
    // Its cluster and channels are cluster-lb1.toml's.
    let plain = tandem_config::load(&dir.join("cluster-lb1.toml")).unwrap();
    let channels = |c: &tandem_config::Config| -> Vec<_> {
        c.heartbeats
            .iter()
            .map(|h| (h.kind.clone(), h.interval, h.timeout))
            .collect()
    };
    assert_eq!(channels(&pair), channels(&plain));
    assert_eq!(cluster.nodes, plain.cluster.as_ref().unwrap().nodes);

    let q = tandem_config::load(&dir.join("fence-quorum.toml")).unwrap();
    let plain = tandem_config::load(&dir.join("quorum-lb1.toml")).unwrap();
    let i = &q.vrrp_instances[0];
    assert!(i.fence_on_takeover);
    assert_eq!(i.mode, Mode::Quorum);
    let (qc, pc) = (q.cluster.as_ref().unwrap(), plain.cluster.as_ref().unwrap());
    assert_eq!(
        (&qc.nodes, qc.lease, qc.raft_port),
        (&pc.nodes, pc.lease, pc.raft_port)
    );
    assert_eq!(channels(&q), channels(&plain));
    assert_eq!(q.cluster.as_ref().unwrap().unfence, Unfence::Manual);
    assert_eq!(
        (q.node.fence_delay, q.node.fence_random_delay),
        (Duration::ZERO, Duration::ZERO)
    );
    assert_eq!(q.fence_levels_of("lb2").len(), 1);
    assert!(q.fence_levels_of("arb").is_empty());
}

#[test]
fn a_literal_secret_is_never_quoted() {
    let text =
        fs::read_to_string(configs_dir().join("broken/fence-literal-password.toml")).unwrap();
    let err = tandem_config::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("secrets are never written"), "{err}");
    assert!(
        !err.contains("hunter2") && !err.contains("private"),
        "{err}"
    );
}

/// The three members of the quorum cluster share every cluster-wide fact, all run Raft, and
/// the two load balancers declare the same quorum group.
#[test]
fn the_quorum_cluster_agrees() {
    use std::net::SocketAddr;
    use std::time::Duration;
    use tandem_config::{Mode, Role};
    let dir = configs_dir().join("valid");
    let lb1 = tandem_config::load(&dir.join("quorum-lb1.toml")).unwrap();
    let lb2 = tandem_config::load(&dir.join("quorum-lb2.toml")).unwrap();
    let arb = tandem_config::load(&dir.join("quorum-arbiter.toml")).unwrap();
    let c = lb1.cluster.as_ref().unwrap();
    for other in [&lb2, &arb] {
        let o = other.cluster.as_ref().unwrap();
        assert_eq!(
            (
                &c.name,
                &c.key_file,
                &c.nodes,
                c.lease,
                c.lease_renew,
                c.lease_margin,
                c.raft_port
            ),
            (
                &o.name,
                &o.key_file,
                &o.nodes,
                o.lease,
                o.lease_renew,
                o.lease_margin,
                o.raft_port
            )
        );
        assert_eq!(other.heartbeats.len(), lb1.heartbeats.len());
        assert_eq!(other.raft_peers(), lb1.raft_peers());
    }
    assert!([&lb1, &lb2, &arb].iter().all(|c| c.raft_enabled()));
    assert_eq!(
        (c.lease, c.lease_renew, c.lease_margin, c.raft_port),
        (
            Duration::from_secs(1),
            Duration::from_millis(250),
            Duration::from_millis(100),
            5410
        )
    );
    let voters: Vec<&str> = c.voters().map(|n| n.name.as_str()).collect();
    assert_eq!(voters, ["lb1", "lb2"]);
    assert_eq!(
        lb1.raft_peers()[2],
        (
            "arb",
            "10.0.0.3:5410".parse::<SocketAddr>().unwrap(),
            Role::Arbiter
        )
    );
    assert_eq!(arb.node.role, Role::Arbiter);
    assert!(arb.vrrp_instances.is_empty());
    let (i, j) = (&lb1.vrrp_instances[0], &lb2.vrrp_instances[0]);
    assert_eq!((i.mode, j.mode), (Mode::Quorum, Mode::Quorum));
    assert_eq!(
        (i.virtual_router_id, &i.virtual_ipaddress),
        (j.virtual_router_id, &j.virtual_ipaddress)
    );
    assert!(i.priority > j.priority);
}

#[test]
fn the_lease_keys_example_is_what_its_comments_say() {
    use std::time::Duration;
    let c = tandem_config::load(&configs_dir().join("valid/quorum-lease-keys.toml")).unwrap();
    let cluster = c.cluster.as_ref().unwrap();
    let (lease, renew, margin) = (cluster.lease, cluster.lease_renew, cluster.lease_margin);
    assert_eq!(
        (lease, renew, margin, cluster.raft_port),
        (
            Duration::from_secs(2),
            Duration::from_millis(400),
            Duration::from_millis(150),
            5500
        )
    );
    assert_eq!(lease - margin, Duration::from_millis(1850));
    assert_eq!(lease + margin, Duration::from_millis(2150));
    assert!(2 * (renew + margin) < lease);
    assert_eq!(cluster.voters().count(), 3);
    assert!(c.raft_enabled());
    assert_eq!(c.raft_peers()[1].1.to_string(), "10.0.0.2:5500");
}
