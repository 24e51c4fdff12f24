//! Times as the core reads and writes them, without Python: an ISO 8601 time in the
//! layout pydantic writes, read to epoch microseconds (``LeadEvent.occurred_at``), and
//! epoch seconds split into the UTC calendar fields ``datetime.fromtimestamp`` gives.

/// Microseconds since the epoch of an ISO 8601 time in the layout pydantic writes
/// (``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)``), or None for anything else.
pub(crate) fn epoch_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = b.get(from..from + n)?;
        let mut value = 0i64;
        for &c in part {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            value = value * 10 + i64::from(digit);
        }
        Some(value)
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    // The date's and time's fourteen digits, checked together (no branch per digit).
    const AT: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    let mut d = [0i64; 14];
    let mut not_digit = false;
    for (k, &at) in AT.iter().enumerate() {
        let digit = b[at].wrapping_sub(b'0');
        not_digit |= digit > 9;
        d[k] = i64::from(digit);
    }
    if not_digit {
        return None;
    }
    let year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3];
    let (month, day) = (d[4] * 10 + d[5], d[6] * 10 + d[7]);
    let (hour, minute, second) = (d[8] * 10 + d[9], d[10] * 10 + d[11], d[12] * 10 + d[13]);
    let mut i = 19;
    let mut micros = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let n = end - start;
        if n == 0 || n > 6 {
            return None;
        }
        micros = digits(start, n)? * [1, 10, 100, 1_000, 10_000, 100_000][6 - n];
        i = end;
    }
    let offset = match &b[i..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let month_days = match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if year < 1
        || !(1..=12).contains(&month)
        || day < 1
        || day > month_days
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days from 1970-01-01 (proleptic Gregorian), as datetime computes them.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset * 60;
    let total = seconds * 1_000_000 + micros;
    (total.abs() < (1i64 << 53)).then_some(total)
}

/// ``datetime.fromtimestamp(t, UTC)``'s fields, as CPython computes them: whole seconds
/// and microseconds rounded half to even (``_PyTime_ObjectToTimeval``), then ``gmtime``;
/// None for a time that is not finite or outside years 1-9999 (those go to Python).
pub(crate) fn utc_fields(t: f64) -> Option<(i32, u8, u8, u8, u8, u8, u32)> {
    if !t.is_finite() {
        return None;
    }
    let mut whole = t.trunc();
    let mut frac = (t - whole) * 1e6; // ``modf``'s fraction: exact
    let rounded = frac.round();
    frac = if (frac - rounded).abs() == 0.5 {
        2.0 * (frac / 2.0).round()
    } else {
        rounded
    };
    if frac >= 1e6 {
        frac -= 1e6;
        whole += 1.0;
    } else if frac < 0.0 {
        frac += 1e6;
        whole -= 1.0;
    }
    // 0001-01-01T00:00:00 to 9999-12-31T23:59:59.
    if !(-62_135_596_800.0..=253_402_300_799.0).contains(&whole) {
        return None;
    }
    let secs = whole as i64;
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to the civil date (H. Hinnant's ``civil_from_days``).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some((
        year as i32,
        month as u8,
        day as u8,
        (of_day / 3_600) as u8,
        (of_day % 3_600 / 60) as u8,
        (of_day % 60) as u8,
        frac as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_read_to_epoch_microseconds() {
        assert_eq!(epoch_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            epoch_micros("2024-03-01T12:30:05.25Z"),
            Some(1_709_296_205_250_000)
        );
        assert_eq!(
            epoch_micros("2024-03-01T14:30:05.250000+02:00"),
            Some(1_709_296_205_250_000)
        );
        assert_eq!(epoch_micros("1969-12-31T23:59:59.999999Z"), Some(-1));
        assert_eq!(
            epoch_micros("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000_000)
        );
    }

    #[test]
    fn anything_else_is_left_to_python() {
        for text in [
            "2023-02-29T00:00:00Z", // not a leap year
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",   // no zone
            "2024-01-01 00:00:00Z",  // no T
            "2024-01-01T00:00:00.Z", // no fraction digits
            "2024-01-01T00:00:00.1234567Z",
            "2024-01-01T00:00:00+24:00",
            "0000-01-01T00:00:00Z",
            "2024-01-01T00:00:00ZZ",
        ] {
            assert_eq!(epoch_micros(text), None, "{text}");
        }
    }

    #[test]
    fn utc_fields_are_the_calendar_fields_of_epoch_seconds() {
        assert_eq!(utc_fields(0.0), Some((1970, 1, 1, 0, 0, 0, 0)));
        assert_eq!(
            utc_fields(1_709_296_205.25),
            Some((2024, 3, 1, 12, 30, 5, 250_000))
        );
        assert_eq!(utc_fields(-0.5), Some((1969, 12, 31, 23, 59, 59, 500_000)));
        assert_eq!(utc_fields(951_782_400.0), Some((2000, 2, 29, 0, 0, 0, 0)));
    }

    #[test]
    fn utc_fields_round_microseconds_half_to_even() {
        // Python's results: 1.9999999 s is 2 s; 0.5 us and 1.5 us go to the even neighbour.
        assert_eq!(utc_fields(1.999_999_9).map(|f| (f.5, f.6)), Some((2, 0)));
        assert_eq!(utc_fields(0.25e-6 * 2.0).map(|f| f.6), Some(0));
        assert_eq!(utc_fields(1.5e-6).map(|f| f.6), Some(2));
    }

    #[test]
    fn times_python_cannot_represent_have_no_fields() {
        assert_eq!(utc_fields(f64::NAN), None);
        assert_eq!(utc_fields(f64::INFINITY), None);
        assert_eq!(utc_fields(253_402_300_800.0), None); // year 10000
        assert_eq!(utc_fields(-62_135_596_801.0), None); // year 0
    }
}
