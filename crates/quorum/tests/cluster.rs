//! Three members in one process on loopback: a lease is granted to the best voter, renewed,
//! and moved through release when the holder goes on standby.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use tandem_quorum::node::Op;
use tandem_quorum::{
    GroupReport, LeaseTiming, Member, MemberRole, QuorumConfig, QuorumHandle, QuorumNode,
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn report(priority: u8) -> BTreeMap<String, GroupReport> {
    [(
        "VI_1".to_string(),
        GroupReport {
            priority,
            preempt: true,
        },
    )]
    .into()
}

/// Polls `h`'s status until `pred` holds, for up to 20 s.
async fn wait_for(h: &QuorumHandle, what: &str, pred: impl Fn(&tandem_quorum::QuorumView) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = h.status();
        if pred(&view) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {view:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn lease_is_granted_renewed_and_moved_by_standby() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let members: Vec<Member> = [
        ("lb1", MemberRole::Voter),
        ("lb2", MemberRole::Voter),
        ("arb", MemberRole::Arbiter),
    ]
    .iter()
    .map(|(n, role)| Member {
        name: n.to_string(),
        addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
        role: *role,
    })
    .collect();
    let timing = LeaseTiming {
        lease: Duration::from_millis(1000),
        renew: Duration::from_millis(200),
        margin: Duration::from_millis(100),
    };
    let handles: Vec<QuorumHandle> = members
        .iter()
        .zip(&dirs)
        .map(|(m, d)| {
            QuorumNode::start(QuorumConfig {
                me: m.name.clone(),
                cluster_name: "test".into(),
                members: members.clone(),
                state_dir: d.path().to_path_buf(),
                key: b"0123456789abcdef".to_vec(),
                timing,
            })
            .unwrap()
        })
        .collect();
    handles[0].set_reports(report(200));
    handles[1].set_reports(report(100));

    wait_for(&handles[0], "lb1 holds VI_1", |v| {
        v.groups
            .get("VI_1")
            .is_some_and(|g| g.held_until.is_some_and(|t| t > Instant::now()))
    })
    .await;
    wait_for(&handles[2], "arbiter sees lb1 as holder", |v| {
        v.groups.get("VI_1").and_then(|g| g.holder.as_deref()) == Some("lb1") && v.quorum
    })
    .await;

    // Standby lb1, from the arbiter: lb1 is asked to let go.
    handles[2]
        .op(Op::Standby {
            node: "lb1".into(),
            standby: true,
        })
        .await
        .unwrap();
    wait_for(&handles[0], "lb1 asked to release", |v| {
        v.groups
            .get("VI_1")
            .is_some_and(|g| g.releasing_to.as_deref() == Some("lb2") && g.held_until.is_none())
    })
    .await;
    let epoch = handles[0].status().groups["VI_1"].epoch;
    handles[0]
        .op(Op::Release {
            group: "VI_1".into(),
            epoch,
        })
        .await
        .unwrap();
    wait_for(&handles[1], "lb2 holds VI_1", |v| {
        v.groups
            .get("VI_1")
            .is_some_and(|g| g.held_until.is_some_and(|t| t > Instant::now()))
    })
    .await;
    let v = handles[1].status();
    assert_eq!(v.groups["VI_1"].epoch, epoch + 1);
    assert!(v.members.iter().any(|m| m.name == "lb1" && m.standby));
}
