//! Exponential decay (``baton_scorer.decay``): a value that halves every half-life, and
//! when a sum of such values falls below a level (when an SQL lead's score decays to the
//! recycle level). Same operations in the same order as the Python reference.

use crate::numeric::pow2;

/// ``decay.Engagement.at``.
#[inline]
pub(crate) fn at_time(value: f64, reference: f64, t: f64, h: f64) -> f64 {
    value * pow2(-(t - reference) / h)
}

/// ``decay.sum_falls_below_at`` for parts ``(value, reference time, half-life)``.
pub(crate) fn sum_falls_below_at(parts: &[(f64, f64, f64)], level: f64) -> Option<f64> {
    // Merge parts with the same half-life (insertion order kept, like a dict).
    let mut by_h: Vec<(f64, f64, f64)> = Vec::new(); // (h, value, ref)
    for &(value, reference, h) in parts {
        match by_h.iter_mut().find(|(hh, _, _)| *hh == h) {
            None => by_h.push((h, value, reference)),
            Some(prev) => {
                let r = if prev.2 >= reference {
                    prev.2
                } else {
                    reference
                };
                let merged = at_time(prev.1, prev.2, r, h) + at_time(value, reference, r, h);
                *prev = (h, merged, r);
            }
        }
    }
    if by_h.is_empty() {
        return None;
    }
    if by_h.len() == 1 {
        let (h, value, reference) = by_h[0];
        return falls_below_at(value, reference, level, h);
    }
    if level <= 0.0 {
        return None;
    }
    let start = by_h
        .iter()
        .map(|p| p.2)
        .fold(f64::NEG_INFINITY, |a, b| if b > a { b } else { a });
    let total = |t: f64| -> f64 {
        let mut sum = 0.0;
        for &(h, value, reference) in &by_h {
            sum += at_time(value, reference, t, h);
        }
        sum
    };
    if total(start) <= level {
        return None;
    }
    if by_h.iter().all(|p| p.1 > 0.0) {
        return Some(newton(&by_h, level, start));
    }
    let n = by_h.len() as f64;
    let mut hi = start;
    for &(h, value, reference) in &by_h {
        if let Some(t) = falls_below_at(value, reference, level / n, h) {
            if t > hi {
                hi = t;
            }
        }
    }
    if total(hi) >= level {
        let mut fell = false;
        for _ in 0..64 {
            hi = start + 2.0 * (hi - start) + 1.0;
            if total(hi) < level {
                fell = true;
                break;
            }
        }
        if !fell {
            return None;
        }
    }
    let mut lo = start;
    while hi - lo > 1e-3 {
        let mid = (lo + hi) / 2.0;
        if mid == lo || mid == hi {
            break;
        }
        if total(mid) < level {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// ``decay.falls_below_at``: when one decaying value reaches ``level``.
fn falls_below_at(value: f64, reference: f64, level: f64, h: f64) -> Option<f64> {
    if level <= 0.0 || value <= level {
        return None;
    }
    Some(reference + h * (value / level).log2())
}

/// Newton's method on a sum of positive decaying parts (convex, falling): from
/// ``start`` it approaches the crossing from below without passing it.
fn newton(by_h: &[(f64, f64, f64)], level: f64, start: f64) -> f64 {
    let ln2 = 2.0f64.ln();
    let mut t = start;
    for _ in 0..100 {
        let mut f = -level;
        let mut slope = 0.0;
        for &(h, value, reference) in by_h {
            let v = value * pow2(-(t - reference) / h);
            f += v;
            slope -= v * ln2 / h;
        }
        if f <= 0.0 || slope == 0.0 {
            break;
        }
        let step = f / -slope;
        t += step;
        if step < 1e-4 {
            break;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86_400.0;

    fn sum_at(parts: &[(f64, f64, f64)], t: f64) -> f64 {
        parts.iter().map(|&(v, r, h)| at_time(v, r, t, h)).sum()
    }

    #[test]
    fn a_value_halves_every_half_life() {
        assert_eq!(at_time(8.0, 100.0, 100.0, DAY), 8.0);
        assert_eq!(at_time(8.0, 0.0, DAY, DAY), 4.0);
        assert_eq!(at_time(8.0, 0.0, 3.0 * DAY, DAY), 1.0);
        assert_eq!(at_time(8.0, DAY, 0.0, DAY), 16.0); // backwards in time: grows
    }

    #[test]
    fn one_part_falls_below_after_whole_half_lives() {
        // 40 points reach 10 after two half-lives.
        assert_eq!(
            sum_falls_below_at(&[(40.0, 0.0, DAY)], 10.0),
            Some(2.0 * DAY)
        );
        // Already at or below the level, or a level that is not positive: never.
        assert_eq!(sum_falls_below_at(&[(10.0, 0.0, DAY)], 10.0), None);
        assert_eq!(sum_falls_below_at(&[(40.0, 0.0, DAY)], 0.0), None);
        assert_eq!(sum_falls_below_at(&[], 10.0), None);
    }

    #[test]
    fn parts_with_one_half_life_merge_into_one() {
        // 20 at t=0 and 20 at t=0 with one half-life are 40 at t=0.
        let parts = [(20.0, 0.0, DAY), (20.0, 0.0, DAY)];
        assert_eq!(sum_falls_below_at(&parts, 10.0), Some(2.0 * DAY));
    }

    #[test]
    fn a_sum_of_parts_falls_below_where_the_sum_crosses() {
        let parts = [(30.0, 0.0, DAY), (30.0, 0.0, 7.0 * DAY)];
        let level = 20.0;
        let t = sum_falls_below_at(&parts, level).expect("it crosses");
        let sum = |t: f64| sum_at(&parts, t);
        assert!(
            sum(t) >= level - 1e-6 && sum(t) <= level + 1e-3,
            "{}",
            sum(t)
        );
        assert!(sum(t - 60.0) > level);
    }

    #[test]
    fn a_negative_part_is_found_by_bisection() {
        let parts = [(50.0, 0.0, 7.0 * DAY), (-10.0, 0.0, DAY)];
        let level = 20.0;
        let t = sum_falls_below_at(&parts, level).expect("it crosses");
        let sum = |t: f64| sum_at(&parts, t);
        assert!(sum(t) < level && sum(t - 1.0) >= level, "{t}");
    }
}
