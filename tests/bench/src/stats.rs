//! Summary statistics: median (mean of the two middle values for an even count), nearest-rank
//! percentiles, max.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Nearest-rank percentile of an ascending, non-empty slice: the smallest value with at
/// least `p` % of the values at or below it.
pub fn percentile_sorted(v: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

pub fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn summarize(xs: &[f64]) -> Option<Summary> {
    let v = sorted(xs);
    if v.is_empty() {
        return None;
    }
    Some(Summary {
        n: v.len(),
        median: median_sorted(&v),
        p90: percentile_sorted(&v, 90.0),
        p99: percentile_sorted(&v, 99.0),
        max: v[v.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_values() {
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = summarize(&xs).unwrap();
        assert_eq!(s.n, 10);
        assert_eq!(s.median, 5.5);
        assert_eq!(s.p90, 9.0);
        assert_eq!(s.p99, 10.0);
        assert_eq!(s.max, 10.0);
    }

    #[test]
    fn odd_count_and_nan() {
        let s = summarize(&[3.0, f64::NAN, 1.0, 2.0]).unwrap();
        assert_eq!((s.n, s.median, s.max), (3, 2.0, 3.0));
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn p99_of_a_thousand() {
        let xs: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(summarize(&xs).unwrap().p99, 990.0);
    }
}
