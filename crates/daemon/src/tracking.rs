//! Tracking policy: from the state of tracked interfaces, checks and files, an instance's
//! effective priority and whether it is faulted. Pure: no I/O, no clock, unit-tested.
//!
//! keepalived's rules, which operators already know:
//! - weight 0: the item being bad faults the instance (no VIPs, no adverts);
//! - positive weight: added to the priority while the item is good;
//! - negative weight: added (so subtracted) while the item is bad;
//! - track_file: the file holds an integer; weight 0 faults on a non-zero value, any other
//!   weight adds value × weight;
//! - the result is clamped to 1..=254; an address owner (255) keeps 255 and can only fault.
//!
//! A check that has not reached its first verdict yet (`unknown`) counts as good, as a
//! keepalived track_script does before its first result: a node does not fault at start-up
//! only because its first probe has not finished.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// The instance's own interface: always tracked, weight 0.
    OwnInterface,
    Interface,
    Check,
    File,
}

/// The last known state of one tracked item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    Good,
    Bad,
    /// No verdict yet (a check before its first rise/fall decision).
    Unknown,
    /// A track_file value (missing or unreadable files read as 0).
    Value(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: ItemKind,
    pub target: String,
    pub weight: i32,
}

/// What one item does to the instance right now, for `tandem status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    pub kind: ItemKind,
    pub target: String,
    pub weight: i32,
    /// "up", "down", "unknown" or the file's value.
    pub state: String,
    /// Added to the priority now.
    pub delta: i64,
    /// Faults the instance now.
    pub faults: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub priority: u8,
    pub fault: bool,
    pub contributions: Vec<Contribution>,
}

fn contribution(item: &Item, state: ItemState) -> Contribution {
    let w = i64::from(item.weight);
    let (label, delta, faults) = match state {
        ItemState::Value(v) => {
            let label = v.to_string();
            if w == 0 {
                (label, 0, v != 0)
            } else {
                (label, v.saturating_mul(w), false)
            }
        }
        ItemState::Good | ItemState::Unknown => {
            let label = if state == ItemState::Good {
                "up"
            } else {
                "unknown"
            };
            (label.to_string(), if w > 0 { w } else { 0 }, false)
        }
        ItemState::Bad => ("down".to_string(), if w < 0 { w } else { 0 }, w == 0),
    };
    Contribution {
        kind: item.kind,
        target: item.target.clone(),
        weight: item.weight,
        state: label,
        delta,
        faults,
    }
}

/// The effective priority and fault state of an instance with configured priority `base`
/// whose tracked items are in the given states.
pub fn effective(base: u8, items: &[(Item, ItemState)]) -> Effective {
    let contributions: Vec<Contribution> = items.iter().map(|(i, s)| contribution(i, *s)).collect();
    let fault = contributions.iter().any(|c| c.faults);
    let priority = if base == 255 {
        255
    } else {
        let sum: i64 = contributions.iter().map(|c| c.delta).sum();
        (i64::from(base).saturating_add(sum)).clamp(1, 254) as u8
    };
    Effective {
        priority,
        fault,
        contributions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: ItemKind, weight: i32) -> Item {
        Item {
            kind,
            target: "x".into(),
            weight,
        }
    }

    #[test]
    fn nothing_tracked_is_the_configured_priority() {
        let e = effective(150, &[]);
        assert_eq!((e.priority, e.fault), (150, false));
    }

    #[test]
    fn weight_zero_faults_only_while_bad() {
        for kind in [ItemKind::Interface, ItemKind::Check, ItemKind::OwnInterface] {
            assert!(effective(150, &[(item(kind, 0), ItemState::Bad)]).fault);
            assert!(!effective(150, &[(item(kind, 0), ItemState::Good)]).fault);
            assert!(!effective(150, &[(item(kind, 0), ItemState::Unknown)]).fault);
            assert_eq!(
                effective(150, &[(item(kind, 0), ItemState::Bad)]).priority,
                150
            );
        }
    }

    #[test]
    fn positive_weight_adds_while_good() {
        let i = item(ItemKind::Check, 20);
        assert_eq!(
            effective(100, &[(i.clone(), ItemState::Good)]).priority,
            120
        );
        assert_eq!(effective(100, &[(i.clone(), ItemState::Bad)]).priority, 100);
        assert_eq!(effective(100, &[(i, ItemState::Unknown)]).priority, 120);
    }

    #[test]
    fn negative_weight_subtracts_while_bad() {
        let i = item(ItemKind::Check, -60);
        assert_eq!(
            effective(150, &[(i.clone(), ItemState::Good)]).priority,
            150
        );
        let e = effective(150, &[(i, ItemState::Bad)]);
        assert_eq!((e.priority, e.fault), (90, false));
    }

    #[test]
    fn weights_add_up_and_clamp() {
        let items = [
            (item(ItemKind::Check, -60), ItemState::Bad),
            (item(ItemKind::Interface, -60), ItemState::Bad),
        ];
        assert_eq!(effective(100, &items).priority, 1);
        let items = [
            (item(ItemKind::Check, 100), ItemState::Good),
            (item(ItemKind::Check, 100), ItemState::Good),
        ];
        assert_eq!(effective(100, &items).priority, 254);
    }

    #[test]
    fn owner_keeps_255_but_can_fault() {
        let e = effective(255, &[(item(ItemKind::Check, -60), ItemState::Bad)]);
        assert_eq!((e.priority, e.fault), (255, false));
        assert!(effective(255, &[(item(ItemKind::Check, 0), ItemState::Bad)]).fault);
    }

    #[test]
    fn file_values() {
        let w0 = item(ItemKind::File, 0);
        assert!(effective(100, &[(w0.clone(), ItemState::Value(3))]).fault);
        assert!(!effective(100, &[(w0, ItemState::Value(0))]).fault);
        let w = item(ItemKind::File, 10);
        assert_eq!(
            effective(100, &[(w.clone(), ItemState::Value(-3))]).priority,
            70
        );
        assert_eq!(
            effective(100, &[(w.clone(), ItemState::Value(2))]).priority,
            120
        );
        assert_eq!(
            effective(100, &[(w, ItemState::Value(i64::MIN))]).priority,
            1
        );
    }

    #[test]
    fn contributions_explain_the_result() {
        let e = effective(
            150,
            &[
                (item(ItemKind::Check, -60), ItemState::Bad),
                (item(ItemKind::Interface, 0), ItemState::Good),
            ],
        );
        assert_eq!(e.contributions.len(), 2);
        assert_eq!(e.contributions[0].delta, -60);
        assert_eq!(e.contributions[0].state, "down");
        assert!(!e.contributions[1].faults);
    }
}
