//! The fault schedule: a list of faults drawn from a seed, so that a run that found a
//! violation is replayed exactly by its seed.
//!
//! The generator is SplitMix64, written here rather than taken from `rand`: a schedule must
//! stay the same for a seed across dependency updates, and `rand`'s `StdRng` makes no such
//! promise. Ten lines are cheaper than pinning an algorithm crate.

use std::time::Duration;

use serde::Serialize;

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant at these sizes).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// A node named in a fault: a fixed one, or whichever holds the VIP when the fault starts
/// (the interesting target for most faults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Node(String),
    Holder,
}

/// One fault. Each is undone at the end of its hold time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The members split into groups that cannot talk (the client talks to all).
    Partition { groups: Vec<Vec<String>> },
    /// The node talks to no one.
    Isolate { node: Target },
    /// kill -9 of the daemon; undone by a restart (after powering the node on when it was
    /// fenced).
    Kill { node: Target },
    /// SIGSTOP (a hung node); undone by SIGCONT.
    Pause { node: Target },
    /// eth0 down and up `count` times.
    Flap { node: Target, count: u32 },
    /// Random loss of `percent` % of the node's frames.
    Loss { node: Target, percent: u32 },
    /// `tandem standby NODE` through the log, acknowledged writes checked at the end; undone
    /// by `tandem unstandby`.
    Standby { node: String },
    /// The node's fence device answers "done" without acting, then its daemon is killed:
    /// nothing may take its VIP until a fence works. Undone: the device works again (the
    /// retry fences), then the node is restarted.
    FenceFails { node: Target },
    /// The node's daemon is restarted with its clocks running `1 + permille / 1000` times as
    /// fast as true time (`scripts/lab clock`; 0 = true time again). Not undone: the drift
    /// stays through the faults that follow, which is where it matters (a holder cut off with
    /// a slow clock keeps its VIP longer), until the node's next clock fault.
    Clock { node: Target, permille: i32 },
}

/// `1 + permille / 1000` as `scripts/lab clock` takes it ("1", "1.037", "0.95").
pub fn rate(permille: i32) -> String {
    let r = format!("{:.3}", 1.0 + f64::from(permille) / 1000.0);
    r.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Fault {
    /// A short label for the timeline.
    pub fn label(&self) -> String {
        let t = |t: &Target| match t {
            Target::Node(n) => n.clone(),
            Target::Holder => "holder".into(),
        };
        match self {
            Fault::Partition { groups } => {
                let g: Vec<String> = groups.iter().map(|g| g.join(",")).collect();
                format!("partition {}", g.join(" | "))
            }
            Fault::Isolate { node } => format!("isolate {}", t(node)),
            Fault::Kill { node } => format!("kill -9 {}", t(node)),
            Fault::Pause { node } => format!("pause {}", t(node)),
            Fault::Flap { node, count } => format!("flap {} x{count}", t(node)),
            Fault::Loss { node, percent } => format!("loss {} {percent}%", t(node)),
            Fault::Standby { node } => format!("standby {node}"),
            Fault::FenceFails { node } => format!("fence fails + kill -9 {}", t(node)),
            Fault::Clock { node, permille: 0 } => format!("clock {} true time", t(node)),
            Fault::Clock { node, permille } => format!("clock {} x{}", t(node), rate(*permille)),
        }
    }
}

/// One step: the fault, how long it lasts, and how long the cluster is left alone after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub fault: Fault,
    pub hold: Duration,
    pub settle: Duration,
}

/// What the schedule may do to the cluster.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The nodes that may hold the VIP.
    pub voters: Vec<String>,
    /// Every member (voters and arbiter).
    pub members: Vec<String>,
    /// Fence devices exist (kills and fence failures are safe to inject).
    pub fence: bool,
    /// Raft runs (standby writes exist).
    pub quorum: bool,
    /// Clock faults draw rates within 1 ± this / 1000; 0: no clock faults.
    pub max_drift_permille: u32,
}

/// `events` steps for `seed`.
pub fn plan(seed: u64, events: usize, shape: &Shape) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut steps = Vec::with_capacity(events);
    while steps.len() < events {
        let fault = match rng.below(11) {
            0 | 1 => partition(&mut rng, &shape.members),
            2 => Fault::Isolate {
                node: target(&mut rng, &shape.members),
            },
            3 if shape.fence => Fault::Kill {
                node: target(&mut rng, &shape.voters),
            },
            4 if shape.fence => Fault::Pause {
                node: target(&mut rng, &shape.members),
            },
            5 => Fault::Flap {
                node: target(&mut rng, &shape.voters),
                count: 1 + rng.below(3) as u32,
            },
            6 => Fault::Loss {
                node: target(&mut rng, &shape.members),
                percent: 10 + 10 * rng.below(4) as u32,
            },
            7 if shape.quorum => Fault::Standby {
                node: rng.pick(&shape.voters).clone(),
            },
            8 if shape.fence && shape.quorum => Fault::FenceFails {
                node: Target::Holder,
            },
            9 => Fault::Isolate {
                node: Target::Holder,
            },
            10 if shape.max_drift_permille > 0 => Fault::Clock {
                node: target(&mut rng, &shape.members),
                // A quarter of them put a node back on true time.
                permille: if rng.below(4) == 0 {
                    0
                } else {
                    let m = i64::from(shape.max_drift_permille);
                    (rng.below(2 * m as u64 + 1) as i64 - m) as i32
                },
            },
            _ => continue,
        };
        steps.push(Step {
            fault,
            hold: rng.millis(1000, 4000),
            settle: rng.millis(1500, 3000),
        });
    }
    steps
}

fn target(rng: &mut Rng, nodes: &[String]) -> Target {
    // Half the time the holder: faults on the VIP's node are the ones that move it.
    if rng.below(2) == 0 {
        Target::Holder
    } else {
        Target::Node(rng.pick(nodes).clone())
    }
}

/// Two groups of every shape: one member against the rest, in any order.
fn partition(rng: &mut Rng, members: &[String]) -> Fault {
    let alone = rng.pick(members).clone();
    let rest: Vec<String> = members.iter().filter(|m| **m != alone).cloned().collect();
    let groups = if rng.below(2) == 0 {
        vec![vec![alone], rest]
    } else {
        vec![rest, vec![alone]]
    };
    Fault::Partition { groups }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            voters: vec!["lb1".into(), "lb2".into()],
            members: vec!["lb1".into(), "lb2".into(), "arb".into()],
            fence: true,
            quorum: true,
            max_drift_permille: 50,
        }
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        assert_eq!(plan(7, 60, &shape()), plan(7, 60, &shape()));
        assert_ne!(plan(7, 60, &shape()), plan(8, 60, &shape()));
    }

    #[test]
    fn splitmix_matches_its_reference_output() {
        // First outputs of SplitMix64 seeded with 0 (the reference implementation's).
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn every_kind_appears_and_durations_stay_in_range() {
        let steps = plan(1, 300, &shape());
        for kind in [
            "partition",
            "isolate",
            "kill",
            "pause",
            "flap",
            "loss",
            "standby",
            "fence_fails",
            "clock",
        ] {
            assert!(
                steps
                    .iter()
                    .any(|s| serde_json::to_value(&s.fault).unwrap()["kind"] == kind),
                "{kind} never drawn"
            );
        }
        for s in &steps {
            assert!((1000..=4000).contains(&(s.hold.as_millis() as u64)));
            assert!((1500..=3000).contains(&(s.settle.as_millis() as u64)));
        }
    }

    #[test]
    fn without_fencing_no_kill_pause_or_fence_fault() {
        let unsafe_shape = Shape {
            fence: false,
            quorum: false,
            max_drift_permille: 0,
            ..shape()
        };
        for s in plan(3, 200, &unsafe_shape) {
            assert!(
                !matches!(
                    s.fault,
                    Fault::Kill { .. }
                        | Fault::Pause { .. }
                        | Fault::FenceFails { .. }
                        | Fault::Standby { .. }
                        | Fault::Clock { .. }
                ),
                "{:?}",
                s.fault
            );
        }
    }

    #[test]
    fn clock_rates_stay_within_the_drift_and_print_as_the_lab_takes_them() {
        let mut seen = std::collections::BTreeSet::new();
        for s in plan(9, 600, &shape()) {
            if let Fault::Clock { permille, .. } = s.fault {
                assert!(permille.unsigned_abs() <= 50, "{permille}");
                seen.insert(permille);
            }
        }
        assert!(seen.contains(&0) && seen.iter().any(|p| *p < 0) && seen.iter().any(|p| *p > 0));
        assert_eq!(
            [rate(0), rate(37), rate(-50), rate(-3)],
            ["1", "1.037", "0.95", "0.997"]
        );
    }

    #[test]
    fn partitions_split_every_member_into_two_groups() {
        let sh = shape();
        for s in plan(5, 200, &sh) {
            if let Fault::Partition { groups } = s.fault {
                assert_eq!(groups.len(), 2);
                let mut all: Vec<String> = groups.concat();
                all.sort();
                let mut members = sh.members.clone();
                members.sort();
                assert_eq!(all, members);
            }
        }
    }
}
