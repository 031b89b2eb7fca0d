//! Every driver against the project's simulators (tests/fixtures/sims), with the device state
//! checked out of band in the simulators' state files; the fence-agents programs give the same
//! results; failing levels fall through with clear reasons; no secret is ever printed.
//!
//! Needs the Debian packages openipmi ipmitool snmpd snmp fence-agents python3 (scripts/test
//! installs them). Without them each test prints SKIP and passes, unless
//! TANDEM_REQUIRE_SIMS=1.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use tandem_fence::*;

const BMC_USER: &str = "fenceadm";
const BMC_PASS: &str = "Bmc-pw-4711x";

fn creds() -> SnmpCreds {
    SnmpCreds {
        rw: "rwcomm-9c1f".into(),
        ro: "rocomm-3b7e".into(),
        v3_user: "tandemv3".into(),
        v3_auth: "v3auth-8d2a1".into(),
        v3_priv: "v3priv-5e6f0".into(),
    }
}

fn ipmi(bmc: &Bmc, pass: &str) -> Driver {
    let mut c = IpmiConfig::new("127.0.0.1", bmc.port, BMC_USER, Secret::new(pass));
    c.timeout = Duration::from_secs(1);
    c.retries = 1;
    Driver::Ipmi(IpmiDriver::new(c).unwrap())
}

fn v2c(port: u16, community: &str) -> SnmpTarget {
    let mut t = SnmpTarget::new(
        "127.0.0.1",
        port,
        SnmpAuth::V2c {
            community: Secret::new(community),
        },
    );
    t.timeout = Duration::from_millis(500);
    t.retries = 1;
    t
}

fn v3(port: u16, c: &SnmpCreds) -> SnmpTarget {
    let mut t = SnmpTarget::new(
        "127.0.0.1",
        port,
        SnmpAuth::V3 {
            user: c.v3_user.clone(),
            auth_protocol: AuthProtocol::Sha,
            auth_password: Secret::new(&c.v3_auth),
            priv_protocol: PrivProtocol::Aes,
            priv_password: Secret::new(&c.v3_priv),
        },
    );
    t.timeout = Duration::from_millis(500);
    t
}

fn pdu(target: SnmpTarget, outlet: OutletRef) -> Driver {
    Driver::PduSnmp(
        PduSnmpDriver::new(PduSnmpConfig {
            target,
            model: &pdu::APC_RPDU,
            outlet,
            reboot_off_time: Duration::from_millis(500),
        })
        .unwrap(),
    )
}

fn switch(target: SnmpTarget, port: PortRef) -> Driver {
    Driver::SwitchSnmp(
        SwitchSnmpDriver::new(SwitchSnmpConfig {
            target,
            port,
            reboot_off_time: Duration::from_millis(300),
        })
        .unwrap(),
    )
}

fn agent(program: &str, options: &[(&str, String)], secrets: &[(&str, &str)]) -> Driver {
    let program = find_program(program)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| program.to_string());
    Driver::FenceAgent(
        FenceAgentDriver::new(FenceAgentConfig {
            program,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            secret_options: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), Secret::new(*v)))
                .collect(),
            timeout: Duration::from_secs(30),
        })
        .unwrap(),
    )
}

fn device(name: &str, driver: Driver) -> Arc<FenceDevice> {
    let mut d = FenceDevice::new(name, driver);
    d.timeout = Duration::from_secs(10);
    d.retries = 0;
    d.verify_timeout = Duration::from_secs(2);
    d.verify_interval = Duration::from_millis(100);
    Arc::new(d)
}

fn fence_ipmilan(bmc: &Bmc, pass: &str) -> Driver {
    agent(
        "fence_ipmilan",
        &[
            ("ip", "127.0.0.1".into()),
            ("ipport", bmc.port.to_string()),
            ("username", BMC_USER.into()),
            ("lanplus", "1".into()),
            ("cipher", "3".into()),
            ("power_wait", "0".into()),
        ],
        &[("password", pass)],
    )
}

#[test]
fn ipmi_status_off_on_reboot_verified_in_state_file() {
    if !have("ipmi", SIM_TOOLS) {
        return;
    }
    let bmc = Bmc::start(BMC_USER, BMC_PASS);
    let d = ipmi(&bmc, BMC_PASS);
    rt().block_on(async {
        assert_eq!(bmc.power(), "on");
        assert_eq!(d.status().await.unwrap(), PowerState::On);
        d.off().await.unwrap();
        assert_eq!(bmc.power(), "off");
        assert_eq!(d.status().await.unwrap(), PowerState::Off);
        d.off().await.unwrap(); // idempotent
        assert_eq!(bmc.power(), "off");
        d.on().await.unwrap();
        assert_eq!(bmc.power(), "on");
        assert_eq!(d.status().await.unwrap(), PowerState::On);
        let before = bmc.log().lines().count();
        d.reboot().await.unwrap();
        // ipmi_sim: power cycle = off at once, on after its 1 s timer
        assert!(wait_until(Duration::from_secs(4), || bmc.power() == "on"
            && bmc
                .log()
                .lines()
                .skip(before)
                .any(|l| l.ends_with("power off->on"))));
        let after: Vec<String> = bmc.log().lines().skip(before).map(String::from).collect();
        assert!(
            after.iter().any(|l| l.ends_with("power on->off")),
            "{after:?}"
        );
        // reboot of a chassis that is off = power on
        d.off().await.unwrap();
        d.reboot().await.unwrap();
        assert_eq!(bmc.power(), "on");
        let plugs = d.list().await.unwrap();
        assert_eq!(plugs.len(), 1);

        // a BMC that answers "Down/Off" but whose power stays on is never counted as fenced
        bmc.flag("ignore", "");
        let topo = FenceTopology {
            node: "lb2".into(),
            levels: vec![FenceLevel {
                level: 1,
                devices: vec![device("lying-bmc", d.clone())],
            }],
        };
        let r = topo.fence(FenceAction::Off).await;
        assert!(!r.success());
        assert_eq!(bmc.power(), "on");
        assert!(
            r.summary().contains("state read back is on, not off"),
            "{}",
            r.summary()
        );
        assert!(bmc.log().contains("power on->off ignored"));
    });
}

#[test]
fn pdu_v2c_and_v3_status_off_on_reboot_verified_in_state_files() {
    if !have("pdu", SIM_TOOLS) {
        return;
    }
    let c = creds();
    let sim = SnmpSim::start(
        "apc-pdu",
        "node1,node2,node3,node4",
        &c,
        &["--reboot-delay", "1"],
    );
    rt().block_on(async {
        let d = pdu(v2c(sim.port, &c.rw), OutletRef::Index(2));
        assert_eq!(d.status().await.unwrap(), PowerState::On);
        d.off().await.unwrap();
        assert_eq!(sim.state(2), "off");
        assert_eq!(d.status().await.unwrap(), PowerState::Off);
        assert_eq!(sim.state(1), "on", "other outlets untouched");
        d.on().await.unwrap();
        assert_eq!(sim.state(2), "on");
        d.reboot().await.unwrap();
        assert_eq!(sim.state(2), "off", "immediateReboot: off at once");
        assert!(wait_until(Duration::from_secs(3), || sim.state(2) == "on"));
        assert!(sim.events().contains("outlet 2 node2 on->off snmp-reboot"));
        assert!(sim.events().contains("outlet 2 node2 off->on reboot-done"));

        // v3 authPriv, outlet by name
        let d3 = pdu(v3(sim.port, &c), OutletRef::Name("node3".into()));
        d3.off().await.unwrap();
        assert_eq!(sim.state(3), "off");
        assert_eq!(d3.status().await.unwrap(), PowerState::Off);
        d3.on().await.unwrap();
        assert_eq!(sim.state(3), "on");
        let plugs = d3.list().await.unwrap();
        assert_eq!(plugs.len(), 4);
        assert_eq!(
            (plugs[3].id.as_str(), plugs[3].name.as_str()),
            ("4", "node4")
        );

        // read-only community cannot switch; unknown outlet name is a clear error
        let ro = pdu(v2c(sim.port, &c.ro), OutletRef::Index(1));
        let e = ro.off().await.unwrap_err();
        assert!(
            matches!(e, FenceError::Refused(_) | FenceError::Auth(_)),
            "{e:?}"
        );
        assert_eq!(sim.state(1), "on");
        let none = pdu(v2c(sim.port, &c.rw), OutletRef::Name("nosuch".into()));
        assert!(matches!(
            none.status().await,
            Err(FenceError::NoSuchPlug(_))
        ));
        let e = pdu(v2c(sim.port, &c.rw), OutletRef::Index(9))
            .status()
            .await
            .unwrap_err();
        assert!(matches!(e, FenceError::NoSuchPlug(_)), "{e:?}");
    });
}

#[test]
fn switch_port_by_ifindex_and_ifname_verified_in_state_files() {
    if !have("switch", SIM_TOOLS) {
        return;
    }
    let c = creds();
    let sim = SnmpSim::start(
        "ifmib-switch",
        "port1,port2,port3,port4",
        &c,
        &["--aliases", "node1,node2,node3,node4"],
    );
    rt().block_on(async {
        let d = switch(v2c(sim.port, &c.rw), PortRef::IfIndex(1));
        assert_eq!(d.status().await.unwrap(), PowerState::On);
        d.off().await.unwrap();
        assert_eq!(sim.state(1), "down");
        assert_eq!(d.status().await.unwrap(), PowerState::Off);
        d.on().await.unwrap();
        assert_eq!(sim.state(1), "up");

        let d3 = switch(v3(sim.port, &c), PortRef::Name("port3".into()));
        d3.off().await.unwrap();
        assert_eq!(sim.state(3), "down");
        assert_eq!(sim.state(2), "up");
        assert_eq!(d3.status().await.unwrap(), PowerState::Off);
        d3.reboot().await.unwrap();
        assert_eq!(sim.state(3), "up");
        assert!(sim.events().contains("port 3 port3 up->down snmp-set"));
        let plugs = d3.list().await.unwrap();
        assert_eq!(plugs.len(), 4);
        assert_eq!(plugs[1].name, "port2");
        let none = switch(v2c(sim.port, &c.rw), PortRef::Name("eth99".into()));
        assert!(matches!(none.off().await, Err(FenceError::NoSuchPlug(_))));
    });
}

/// (what, native driver, fence-agent driver, reads the device's state file)
type Pair<'a> = (&'static str, Driver, Driver, Box<dyn Fn() -> String + 'a>);

#[test]
fn fence_agents_give_the_same_results_as_the_drivers() {
    if !have(
        "fence-agent",
        &[
            SIM_TOOLS,
            &["fence_ipmilan", "fence_apc_snmp", "fence_ifmib"],
        ]
        .concat(),
    ) {
        return;
    }
    let c = creds();
    let bmc = Bmc::start(BMC_USER, BMC_PASS);
    let pdu_sim = SnmpSim::start("apc-pdu", "node1,node2,node3", &c, &["--reboot-delay", "1"]);
    let sw = SnmpSim::start("ifmib-switch", "port1,port2", &c, &[]);
    let pairs: Vec<Pair> = vec![
        (
            "ipmi",
            ipmi(&bmc, BMC_PASS),
            fence_ipmilan(&bmc, BMC_PASS),
            Box::new(|| bmc.power()),
        ),
        (
            "pdu",
            pdu(v2c(pdu_sim.port, &c.rw), OutletRef::Index(2)),
            agent(
                "fence_apc_snmp",
                &[
                    ("ip", "127.0.0.1".into()),
                    ("ipport", pdu_sim.port.to_string()),
                    ("snmp_version", "2c".into()),
                    ("plug", "2".into()),
                ],
                &[("community", &c.rw)],
            ),
            Box::new(|| pdu_sim.state(2)),
        ),
        (
            "pdu-v3",
            pdu(v3(pdu_sim.port, &c), OutletRef::Name("node3".into())),
            agent(
                "fence_apc_snmp",
                &[
                    ("ip", "127.0.0.1".into()),
                    ("ipport", pdu_sim.port.to_string()),
                    ("snmp_version", "3".into()),
                    ("username", c.v3_user.clone()),
                    ("snmp_auth_prot", "SHA".into()),
                    ("snmp_sec_level", "authPriv".into()),
                    ("snmp_priv_prot", "AES".into()),
                    ("plug", "3".into()),
                ],
                &[("password", &c.v3_auth), ("snmp_priv_passwd", &c.v3_priv)],
            ),
            Box::new(|| pdu_sim.state(3)),
        ),
        (
            "switch",
            switch(v2c(sw.port, &c.rw), PortRef::Name("port2".into())),
            agent(
                "fence_ifmib",
                &[
                    ("ip", "127.0.0.1".into()),
                    ("ipport", sw.port.to_string()),
                    ("snmp_version", "2c".into()),
                    ("plug", "port2".into()),
                ],
                &[("community", &c.rw)],
            ),
            Box::new(|| sw.state(2)),
        ),
    ];
    rt().block_on(async {
        for (what, native, fa, state) in &pairs {
            let on_word = state(); // "on" or "up"
            assert_eq!(native.status().await.unwrap(), PowerState::On, "{what}");
            assert_eq!(fa.status().await.unwrap(), PowerState::On, "{what}");
            fa.off()
                .await
                .unwrap_or_else(|e| panic!("{what}: agent off: {e}"));
            assert_ne!(state(), on_word, "{what}: agent off changed the device");
            assert_eq!(native.status().await.unwrap(), PowerState::Off, "{what}");
            assert_eq!(fa.status().await.unwrap(), PowerState::Off, "{what}");
            native.on().await.unwrap();
            assert_eq!(state(), on_word, "{what}");
            assert_eq!(fa.status().await.unwrap(), PowerState::On, "{what}");
            native.off().await.unwrap();
            assert_eq!(fa.status().await.unwrap(), PowerState::Off, "{what}");
            fa.on().await.unwrap();
            assert_eq!(state(), on_word, "{what}");
            let listed = fa.list().await.unwrap();
            assert!(!listed.is_empty(), "{what}");
        }
        // the same, through the topology with verification
        let topo = FenceTopology {
            node: "lb2".into(),
            levels: vec![FenceLevel {
                level: 1,
                devices: vec![device("lb2-bmc-agent", fence_ipmilan(&bmc, BMC_PASS))],
            }],
        };
        let r = topo.fence(FenceAction::Off).await;
        assert!(r.success(), "{}", r.summary());
        assert_eq!(bmc.power(), "off");
        let r = topo.fence(FenceAction::On).await;
        assert!(r.success(), "{}", r.summary());
        assert_eq!(bmc.power(), "on");
        let list = pairs[1].2.list().await.unwrap();
        assert_eq!(
            list[0],
            Plug {
                id: "1".into(),
                name: "node1".into()
            }
        );
    });
}

#[test]
fn topology_off_and_dual_psu_reboot_are_verified() {
    if !have("topology", SIM_TOOLS) {
        return;
    }
    let c = creds();
    let bmc = Bmc::start(BMC_USER, BMC_PASS);
    let sim = SnmpSim::start("apc-pdu", "psu-a,psu-b,other", &c, &[]);
    let topo = FenceTopology {
        node: "lb2".into(),
        levels: vec![
            FenceLevel {
                level: 1,
                devices: vec![device("lb2-bmc", ipmi(&bmc, BMC_PASS))],
            },
            FenceLevel {
                level: 2,
                devices: vec![
                    device(
                        "psu-a",
                        pdu(v2c(sim.port, &c.rw), OutletRef::Name("psu-a".into())),
                    ),
                    device("psu-b", pdu(v3(sim.port, &c), OutletRef::Index(2))),
                ],
            },
        ],
    };
    rt().block_on(async {
        let r = topo.fence(FenceAction::Off).await;
        assert!(r.success(), "{}", r.summary());
        assert_eq!(r.succeeded_level, Some(1));
        assert_eq!(r.levels.len(), 1, "level 2 not tried after level 1 worked");
        assert_eq!(bmc.power(), "off");
        assert_eq!(sim.state(1), "on");
        assert!(r.levels[0].devices[0].verified);

        // level 2 alone: dual-PSU reboot = both off (verified), then both on
        let dual = FenceTopology {
            node: "lb2".into(),
            levels: vec![topo.levels[1].clone()],
        };
        let r = dual.fence(FenceAction::Reboot).await;
        assert!(r.success(), "{}", r.summary());
        assert_eq!(r.levels[0].devices.len(), 4);
        assert_eq!((sim.state(1).as_str(), sim.state(2).as_str()), ("on", "on"));
        let events: Vec<String> = sim.events().lines().map(String::from).collect();
        let pos = |pat: &str| {
            events
                .iter()
                .position(|l| l.contains(pat))
                .unwrap_or_else(|| panic!("{pat} in {events:?}"))
        };
        assert!(
            pos("outlet 2 psu-b on->off") < pos("outlet 1 psu-a off->on"),
            "both off before any on: {events:?}"
        );
        assert_eq!(sim.state(3), "on");
    });
}

#[test]
fn failing_levels_fall_through_with_clear_reasons_and_no_secret_leaks() {
    if !have("failures", &[SIM_TOOLS, &["fence_ipmilan"]].concat()) {
        return;
    }
    let c = creds();
    let good = Bmc::start(BMC_USER, BMC_PASS);
    let slow = Bmc::start(BMC_USER, BMC_PASS);
    let liar = SnmpSim::start("apc-pdu", "n1,n2", &c, &[]);
    let tmp = TempDir::new("agent");
    const WRONG: &str = "Wrong-pw-9917";
    let hang = script(
        &tmp.0,
        "fence_hang",
        "#!/bin/sh\ncat >/dev/null\nsleep 30\n",
    );
    let nothing_listens = free_udp_port();

    slow.flag("delay", "4");
    liar.flag("ignore", "");

    let mut timeout_dev = FenceDevice::new("slow-bmc", ipmi(&slow, BMC_PASS));
    timeout_dev.timeout = Duration::from_millis(1500);
    timeout_dev.retries = 0;
    let mut hang_dev = FenceDevice::new(
        "hanging-agent",
        Driver::FenceAgent(
            FenceAgentDriver::new(FenceAgentConfig {
                program: hang.display().to_string(),
                options: vec![("ip".into(), "127.0.0.1".into())],
                secret_options: vec![("password".into(), Secret::new(BMC_PASS))],
                timeout: Duration::from_secs(60),
            })
            .unwrap(),
        ),
    );
    hang_dev.timeout = Duration::from_millis(800);
    hang_dev.retries = 1;

    let failing = vec![
        FenceLevel {
            level: 1,
            devices: vec![device("bmc-wrong-password", ipmi(&good, WRONG))],
        },
        FenceLevel {
            level: 2,
            devices: vec![device(
                "pdu-unreachable",
                pdu(v2c(nothing_listens, &c.rw), OutletRef::Index(1)),
            )],
        },
        FenceLevel {
            level: 3,
            devices: vec![Arc::new(timeout_dev)],
        },
        FenceLevel {
            level: 4,
            devices: vec![device(
                "pdu-ignores",
                pdu(v3(liar.port, &c), OutletRef::Index(1)),
            )],
        },
        FenceLevel {
            level: 5,
            devices: vec![Arc::new(hang_dev)],
        },
        FenceLevel {
            level: 6,
            devices: vec![device("agent-wrong-password", fence_ipmilan(&good, WRONG))],
        },
        FenceLevel {
            level: 7,
            devices: vec![device(
                "pdu-v3-wrong-auth",
                pdu(
                    {
                        let mut bad = c.clone();
                        bad.v3_auth = "Wrong-v3-auth-55".into();
                        v3(liar.port, &bad)
                    },
                    OutletRef::Index(2),
                ),
            )],
        },
    ];
    let (logs, _guard) = capture_logs();
    let rt = rt();
    let mut texts: Vec<String> = Vec::new();

    let all_fail = FenceTopology {
        node: "lb2".into(),
        levels: failing.clone(),
    };
    let r = rt.block_on(all_fail.fence(FenceAction::Off));
    texts.push(format!("{r:?}"));
    texts.push(r.summary());
    assert!(!r.success(), "{}", r.summary());
    assert_eq!(r.succeeded_level, None);
    assert_eq!(r.levels.len(), 7, "{}", r.summary());
    eprintln!("all levels failed, as they should: {}", r.summary());
    let reason = |l: usize| r.levels[l].reason.clone().unwrap_or_default();
    for l in &r.levels {
        assert!(!l.success);
        texts.push(l.reason.clone().unwrap_or_default());
        for d in &l.devices {
            for a in &d.attempts {
                texts.push(a.outcome.to_string());
            }
        }
    }
    assert!(reason(0).contains("authentication failed"), "{}", reason(0));
    assert!(reason(1).contains("unreachable"), "{}", reason(1));
    assert!(reason(2).contains("timed out"), "{}", reason(2));
    assert!(
        reason(3).contains("state read back is on, not off"),
        "{}",
        reason(3)
    );
    assert!(reason(4).contains("timed out"), "{}", reason(4));
    assert_eq!(r.levels[4].devices[0].attempts.len(), 2, "retries honoured");
    assert!(reason(5).contains("fence_ipmilan"), "{}", reason(5));
    assert!(reason(6).contains("authentication failed"), "{}", reason(6));
    // nothing was fenced
    assert_eq!(good.power(), "on");
    assert_eq!(liar.state(1), "on");
    assert!(liar.events().contains("ignored"));

    // the same levels, then a working one: the failures fall through to it
    let mut levels = failing;
    levels.retain(|l| l.level != 3 && l.level != 5); // the slow ones were shown above
    levels.push(FenceLevel {
        level: 9,
        devices: vec![device("bmc-good", ipmi(&good, BMC_PASS))],
    });
    let topo = FenceTopology {
        node: "lb2".into(),
        levels,
    };
    let r = rt.block_on(topo.fence(FenceAction::Off));
    texts.push(format!("{r:?}"));
    texts.push(r.summary());
    assert!(r.success(), "{}", r.summary());
    assert_eq!(r.succeeded_level, Some(9));
    assert_eq!(r.levels.len(), 6);
    assert_eq!(good.power(), "off");

    // errors of direct driver calls too
    rt.block_on(async {
        for d in [ipmi(&good, WRONG), fence_ipmilan(&good, WRONG)] {
            texts.push(d.status().await.unwrap_err().to_string());
        }
    });

    let log = logs.text();
    assert!(
        log.contains("fencing: level failed"),
        "logs captured: {log}"
    );
    texts.push(log);
    let secrets = [
        BMC_PASS,
        WRONG,
        &c.rw,
        &c.ro,
        &c.v3_auth,
        &c.v3_priv,
        "Wrong-v3-auth-55",
    ];
    for t in &texts {
        for s in secrets {
            assert!(!t.contains(s), "secret {s:?} leaked in: {t}");
        }
    }
}
