//! Secrets never reach a helper's command line: fake ipmitool / snmpget / fence agent
//! programs record what they were given. Needs no simulator.

mod common;

use std::time::Duration;

use common::{rt, script, TempDir};
use tandem_fence::*;

const PW: &str = "Argv-check-pw-31";
const COMMUNITY: &str = "Argv-check-comm-77";

#[test]
fn ipmitool_gets_the_password_only_through_its_environment() {
    let tmp = TempDir::new("fake-ipmitool");
    let rec = tmp.0.join("rec");
    let fake = script(
        &tmp.0,
        "ipmitool",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {rec}.argv\nprintf '%s' \"$IPMI_PASSWORD\" > {rec}.env\necho 'Chassis Power is on'\n",
            rec = rec.display()
        ),
    );
    let pw_file = tmp.0.join("pw");
    std::fs::write(&pw_file, format!("{PW}\n")).unwrap();
    let password = SecretSource::File(pw_file).load().unwrap();
    let mut c = IpmiConfig::new("127.0.0.1", 623, "admin", password);
    c.program = fake.display().to_string();
    let d = IpmiDriver::new(c).unwrap();
    assert_eq!(rt().block_on(d.status()).unwrap(), PowerState::On);
    let argv = std::fs::read_to_string(tmp.0.join("rec.argv")).unwrap();
    assert!(!argv.contains(PW), "{argv}");
    for want in [
        "-I\nlanplus\n",
        "-C\n3\n",
        "-L\nADMINISTRATOR\n",
        "-E\n",
        "chassis\npower\nstatus\n",
    ] {
        assert!(argv.contains(want), "{want:?} in {argv}");
    }
    assert_eq!(std::fs::read_to_string(tmp.0.join("rec.env")).unwrap(), PW);
}

#[test]
fn snmp_tools_get_credentials_from_a_private_config_file() {
    let tmp = TempDir::new("fake-snmp");
    let rec = tmp.0.join("rec");
    script(
        &tmp.0,
        "snmpget",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {rec}.argv\nstat -c %a \"$SNMPCONFPATH\" \"$SNMPCONFPATH/snmp.conf\" > {rec}.mode\ncat \"$SNMPCONFPATH/snmp.conf\" > {rec}.conf\necho \"$2 = INTEGER: 2\"\necho '.1.3.6.1.4.1.318.1.1.12.3.5.1.1.4.1 = INTEGER: 2'\n",
            rec = rec.display()
        ),
    );
    let file = tmp.0.join("community");
    std::fs::write(&file, COMMUNITY).unwrap();
    let community = SecretSource::File(file).load().unwrap();
    let mut t = SnmpTarget::new("127.0.0.1", 161, SnmpAuth::V2c { community });
    t.tools_dir = Some(tmp.0.clone());
    let d = PduSnmpDriver::new(PduSnmpConfig {
        target: t,
        model: &pdu::APC_RPDU,
        outlet: OutletRef::Index(1),
        reboot_off_time: Duration::from_secs(1),
    })
    .unwrap();
    assert_eq!(rt().block_on(d.status()).unwrap(), PowerState::Off);
    let argv = std::fs::read_to_string(tmp.0.join("rec.argv")).unwrap();
    assert!(!argv.contains(COMMUNITY), "{argv}");
    assert!(argv.contains("-v2c\n"));
    assert_eq!(
        std::fs::read_to_string(tmp.0.join("rec.mode")).unwrap(),
        "700\n600\n"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.0.join("rec.conf")).unwrap(),
        format!("defCommunity {COMMUNITY}\n")
    );
    // the private directory is gone after the run
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("tandem-fence-snmp-{}-", std::process::id()))
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn fence_agent_gets_secrets_on_stdin_only() {
    let tmp = TempDir::new("fake-agent");
    let rec = tmp.0.join("rec");
    let agent = script(
        &tmp.0,
        "fence_fake",
        &format!(
            "#!/bin/sh\necho \"$# $PYTHONWARNINGS\" > {rec}.argv\ncat > {rec}.stdin\necho \"Failed: password was $(grep password {rec}.stdin)\" >&2\nexit 1\n",
            rec = rec.display()
        ),
    );
    let d = FenceAgentDriver::new(FenceAgentConfig {
        program: agent.display().to_string(),
        options: vec![
            ("ip".into(), "10.0.0.9".into()),
            ("plug".into(), "3".into()),
        ],
        secret_options: vec![("password".into(), Secret::new(PW))],
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    let err = rt().block_on(d.off()).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains(PW), "{text}");
    assert!(text.contains("password=<redacted>"), "{text}");
    assert_eq!(
        std::fs::read_to_string(tmp.0.join("rec.argv")).unwrap(),
        "0 ignore::DeprecationWarning\n"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.0.join("rec.stdin")).unwrap(),
        format!("action=off\nip=10.0.0.9\nplug=3\npassword={PW}\n")
    );
}
