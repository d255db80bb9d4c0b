//! Summaries of repeated measurements.

/// Minimum, median and maximum of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub n: usize,
}

impl Summary {
    /// `None` for an empty sample. The median of an even-sized sample is the
    /// mean of the two middle values.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Self { min: sorted[0], median, max: sorted[n - 1], n })
    }

    /// `min / median / max` with `decimals` digits.
    pub fn show(&self, decimals: usize) -> String {
        format!("{:.d$} / {:.d$} / {:.d$}", self.min, self.median, self.max, d = decimals)
    }
}

/// The union length of possibly overlapping intervals `(start, end)`.
pub fn union_length(intervals: &[(f64, f64)]) -> f64 {
    let mut sorted: Vec<(f64, f64)> = intervals.iter().copied().filter(|(s, e)| e > s).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (start, end) in sorted {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_odd_and_even_samples() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.n), (1.0, 2.0, 3.0, 3));
        assert_eq!(Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn union_merges_overlaps_and_nesting() {
        // [0,2] and [1,3] overlap, [4,5] is separate, [4.2,4.4] is nested.
        assert_eq!(union_length(&[(1.0, 3.0), (0.0, 2.0), (4.0, 5.0), (4.2, 4.4)]), 4.0);
        assert_eq!(union_length(&[]), 0.0);
    }
}
