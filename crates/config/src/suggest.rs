//! "Did you mean" for misspelt keys and values.

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, because
/// "intreface" for "interface" is one slip of the fingers, not two.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j] = distance between a[..i] and b[..j]
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, if one is close enough to be a plausible typo: differing
/// only in case, within a small edit distance (scaled with length so that short words do not
/// match everything), or one being a prefix of the other ("advert_interval", "prio").
pub(crate) fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lower = word.to_ascii_lowercase();
    if let Some(c) = candidates.iter().find(|c| c.eq_ignore_ascii_case(word)) {
        return Some(c);
    }
    let limit = match word.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        6..=9 => 2,
        _ => 3,
    };
    let best = candidates
        .iter()
        // Compared in lower case: names such as "VI_1" are not.
        .map(|c| (distance(&lower, &c.to_ascii_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        // min_by_key keeps the first of equals, so ties go to the earlier (more common) key.
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    best.or_else(|| {
        candidates.iter().copied().find(|c| {
            let c_lower = c.to_ascii_lowercase();
            lower.len() >= 4
                && c.len() >= 4
                && (c_lower.starts_with(&lower) || lower.starts_with(&c_lower))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &[
        "name",
        "interface",
        "virtual_router_id",
        "priority",
        "advert_int",
        "unicast_peer",
        "preempt",
        "preempt_delay",
    ];

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("intreface", "interface"), 1);
    }

    #[test]
    fn suggests_close_keys() {
        assert_eq!(did_you_mean("intreface", KEYS), Some("interface"));
        assert_eq!(did_you_mean("priorty", KEYS), Some("priority"));
        assert_eq!(did_you_mean("advert_intv", KEYS), Some("advert_int"));
        assert_eq!(did_you_mean("unicast_peers", KEYS), Some("unicast_peer"));
        assert_eq!(did_you_mean("Priority", KEYS), Some("priority"));
        assert_eq!(did_you_mean("advert_interval", KEYS), Some("advert_int"));
        assert_eq!(did_you_mean("prio", KEYS), Some("priority"));
        assert_eq!(did_you_mean("preemt", KEYS), Some("preempt"));
    }

    #[test]
    fn mixed_case_candidates() {
        let names = &["VI_1", "VI_front", "Backends"];
        assert_eq!(did_you_mean("VI_3", names), Some("VI_1"));
        assert_eq!(did_you_mean("vi_frnt", names), Some("VI_front"));
        assert_eq!(did_you_mean("backend", names), Some("Backends"));
    }

    #[test]
    fn stays_quiet_when_nothing_is_close() {
        assert_eq!(did_you_mean("state", KEYS), None);
        assert_eq!(did_you_mean("xy", KEYS), None);
        assert_eq!(did_you_mean("weight", KEYS), None);
    }
}
