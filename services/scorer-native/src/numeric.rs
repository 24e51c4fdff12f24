//! Python's float operations, bit for bit: ``2.0 ** x``, the order ``sorted`` gives
//! floats, ``round(x, digits)`` and ``math.isclose``. The core's results must equal the
//! Python reference's in every bit, so each is computed as CPython computes it.

/// Python's ``2.0 ** x``: C ``pow`` itself. A constant base of 2 lets LLVM turn
/// ``powf`` into ``exp2``, which differs from ``pow`` in the last bit for about one
/// argument in a thousand; hiding the base keeps the call to ``pow``.
#[inline]
pub(crate) fn pow2(x: f64) -> f64 {
    std::hint::black_box(2.0f64).powf(x)
}

/// Float order as Python sorts finite floats (``-0.0 == 0.0``), with NaN after every
/// number so the order stays total (a sort given a non-total order may panic).
#[inline]
pub(crate) fn py_float_cmp(a: f64, b: f64) -> std::cmp::Ordering {
    a.partial_cmp(&b)
        .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

/// Python's ``round(x, digits)``: the double nearest the decimal that is ``x`` correctly
/// rounded to ``digits`` places, ties to even (``digits`` at most 15).
///
/// Fast path: ``y = x * 10**digits`` is within half an ulp of the exact product, so when
/// ``y``'s fraction is more than ``2·EPSILON·|y|`` (two to four ulps) from one half,
/// rounding ``y`` to an integer ``k`` gives the exact product's rounding, and
/// ``k / 10**digits`` (both exact, one correctly rounded division) is the double nearest
/// ``k``·10^-digits: Python's result. Near a tie, or for large values, the decimal text
/// decides, as Python does.
pub(crate) fn py_round(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let scale = POW10[digits];
    let y = x * scale;
    if y.abs() < 4_503_599_627_370_496.0 {
        // 2**52: the integer part and the fraction of y are exact
        let fraction = (y - y.trunc()).abs();
        if (fraction - 0.5).abs() > 2.0 * f64::EPSILON * y.abs() {
            return y.round_ties_even() / scale;
        }
    }
    format!("{x:.digits$}").parse().unwrap_or(x)
}

pub(crate) const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Python's ``math.isclose`` with its defaults.
pub(crate) fn isclose(a: f64, b: f64) -> bool {
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    let diff = (b - a).abs();
    diff <= 1e-9 * b.abs() || diff <= 1e-9 * a.abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ``py_round`` through the decimal text alone (the slow path).
    fn by_text(x: f64, digits: usize) -> f64 {
        format!("{x:.digits$}").parse().unwrap()
    }

    #[test]
    fn round_matches_python_on_known_values() {
        // Each pair: Python's round(x, digits) printed by repr.
        let cases: [(f64, usize, f64); 12] = [
            (2.675, 2, 2.67), // 2.675 is 2.67499999... as a double
            (0.125, 2, 0.12), // an exact tie: to even
            (0.375, 2, 0.38),
            (0.5, 0, 0.0),
            (1.5, 0, 2.0),
            (2.5, 0, 2.0),
            (-2.5, 0, -2.0),
            (1.0000005, 6, 1.000001),
            (123.456789, 3, 123.457),
            (-0.0004, 3, -0.0),
            (1e20, 3, 1e20),
            (48.123456789, 6, 48.123457),
        ];
        for (x, digits, want) in cases {
            let got = py_round(x, digits);
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "round({x}, {digits}) = {got}"
            );
        }
    }

    #[test]
    fn round_keeps_what_is_not_finite() {
        assert!(py_round(f64::NAN, 3).is_nan());
        assert_eq!(py_round(f64::INFINITY, 3), f64::INFINITY);
        assert_eq!(py_round(f64::NEG_INFINITY, 0), f64::NEG_INFINITY);
    }

    #[test]
    fn round_fast_path_agrees_with_the_decimal_text() {
        let mut x = 0.000_123_4f64;
        while x < 1e9 {
            for digits in [0, 1, 3, 6] {
                for v in [x, -x, x + 0.5, x * 1.000_000_1] {
                    let (fast, slow) = (py_round(v, digits), by_text(v, digits));
                    assert_eq!(fast.to_bits(), slow.to_bits(), "round({v}, {digits})");
                }
            }
            x *= 1.37;
        }
    }

    #[test]
    fn pow2_is_powers_of_two_exactly_where_exact() {
        assert_eq!(pow2(0.0), 1.0);
        assert_eq!(pow2(10.0), 1024.0);
        assert_eq!(pow2(-1.0), 0.5);
        assert_eq!(pow2(0.5), std::f64::consts::SQRT_2);
    }

    #[test]
    fn float_order_is_total_with_nan_last() {
        use std::cmp::Ordering::*;
        assert_eq!(py_float_cmp(-0.0, 0.0), Equal);
        assert_eq!(py_float_cmp(1.0, 2.0), Less);
        assert_eq!(py_float_cmp(f64::NAN, 1e300), Greater);
        assert_eq!(py_float_cmp(f64::NEG_INFINITY, f64::NAN), Less);
        let mut values = [3.0, f64::NAN, -1.0, 0.0];
        values.sort_by(|a, b| py_float_cmp(*a, *b));
        assert_eq!(&values[..3], &[-1.0, 0.0, 3.0]);
        assert!(values[3].is_nan());
    }

    #[test]
    fn isclose_has_python_defaults() {
        assert!(isclose(1.0, 1.0 + 1e-10));
        assert!(!isclose(1.0, 1.0 + 1e-8));
        assert!(isclose(f64::INFINITY, f64::INFINITY));
        assert!(!isclose(f64::INFINITY, 1e308));
        assert!(!isclose(0.0, 1e-300)); // no absolute tolerance by default
    }
}
