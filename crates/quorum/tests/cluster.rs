//! Members in one process on loopback: a lease is granted to the best voter, renewed, and
//! moved through release when the holder goes on standby; members are added and removed
//! through membership changes.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use tandem_quorum::net::MembershipChange;
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
            fence: false,
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
                fencer: None,
                unfence_auto: false,
                join: false,
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

const TIMING: LeaseTiming = LeaseTiming {
    lease: Duration::from_millis(1000),
    renew: Duration::from_millis(200),
    margin: Duration::from_millis(100),
};

fn member(name: &str, role: MemberRole) -> Member {
    Member {
        name: name.to_string(),
        addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
        role,
    }
}

fn start(me: &Member, members: &[Member], dir: &tempfile::TempDir, join: bool) -> QuorumHandle {
    QuorumNode::start(QuorumConfig {
        me: me.name.clone(),
        cluster_name: "test".into(),
        members: members.to_vec(),
        state_dir: dir.path().to_path_buf(),
        key: b"0123456789abcdef".to_vec(),
        timing: TIMING,
        fencer: None,
        unfence_auto: false,
        join,
    })
    .unwrap()
}

fn voters(v: &tandem_quorum::QuorumView) -> Vec<String> {
    v.members
        .iter()
        .filter(|m| m.voter)
        .map(|m| m.name.clone())
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn members_are_added_through_join_and_removed() {
    let founders = vec![
        member("lb1", MemberRole::Voter),
        member("lb2", MemberRole::Voter),
        member("arb", MemberRole::Arbiter),
    ];
    let lb3 = member("lb3", MemberRole::Voter);
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let handles: Vec<QuorumHandle> = founders
        .iter()
        .zip(&dirs)
        .map(|(m, d)| start(m, &founders, d, false))
        .collect();
    handles[0].set_reports(report(200));
    handles[1].set_reports(report(100));
    for h in &handles {
        wait_for(h, "a leader with quorum", |v| v.quorum).await;
    }
    wait_for(&handles[2], "lb1 holds VI_1", |v| {
        v.groups.get("VI_1").and_then(|g| g.holder.as_deref()) == Some("lb1")
    })
    .await;

    // The joining node's config names all four; with `join` it must not bootstrap a cluster
    // of its own from that.
    let mut all = founders.clone();
    all.push(lb3.clone());
    let new = start(&lb3, &all, &dirs[3], true);
    tokio::time::sleep(TIMING.lease).await;
    let v = new.status();
    assert!(
        v.members.is_empty() && v.leader.is_none(),
        "joined by itself: {v:#?}"
    );
    assert_eq!(voters(&handles[0].status()), ["arb", "lb1", "lb2"]);

    // Added from a member that is not necessarily the leader.
    let add = |name: &str, addr: SocketAddr| {
        Op::Membership(MembershipChange::Add {
            name: name.into(),
            addr: addr.to_string(),
            role: MemberRole::Voter,
        })
    };
    handles[2].op(add("lb3", lb3.addr)).await.unwrap();
    for h in handles.iter().chain([&new]) {
        wait_for(h, "lb3 a voter everywhere", |v| {
            voters(v) == ["arb", "lb1", "lb2", "lb3"] && v.quorum
        })
        .await;
    }
    let again = handles[1].op(add("lb3", lb3.addr)).await.unwrap_err();
    assert!(again.contains("already a voter"), "{again}");
    let clash = handles[1].op(add("lb4", lb3.addr)).await.unwrap_err();
    assert!(clash.contains("already the address of lb3"), "{clash}");

    let remove = |name: &str| {
        Op::Membership(MembershipChange::Remove {
            name: name.to_string(),
        })
    };
    let holder = handles[1].op(remove("lb1")).await.unwrap_err();
    assert!(holder.contains("holds the lease of VI_1"), "{holder}");
    let unknown = handles[1].op(remove("nosuch")).await.unwrap_err();
    assert!(unknown.contains("no member is named nosuch"), "{unknown}");
    new.op(remove("lb3")).await.unwrap();
    for h in &handles {
        wait_for(h, "lb3 gone", |v| {
            v.members.iter().all(|m| m.name != "lb3") && v.quorum
        })
        .await;
    }
    let too_few = handles[0].op(remove("arb")).await.unwrap_err();
    assert!(too_few.contains("would leave 2 voters"), "{too_few}");
    // The lease lived through all of it.
    let v = handles[0].status();
    assert!(v.groups["VI_1"]
        .held_until
        .is_some_and(|t| t > Instant::now()));
}
