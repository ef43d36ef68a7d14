//! Floats printed as Python's `repr(float)` prints them, as the controller's Prometheus text
//! does (`100.0`, `0.001`, `16.3879344786`, `1e-05`, `1e+16`).

/// Formats `x` exactly as Python 3's `repr(x)` for a float.
pub fn repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, like Python's repr.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("`{:e}` output always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let out = if (-4..16).contains(&exp) {
        let decpt = exp + 1;
        let n = digits.len() as i32;
        if decpt <= 0 {
            format!("0.{}{}", "0".repeat((-decpt) as usize), digits)
        } else if decpt >= n {
            format!("{}{}.0", digits, "0".repeat((decpt - n) as usize))
        } else {
            let (int, frac) = digits.split_at(decpt as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.abs())
    };
    format!("{sign}{out}")
}

#[cfg(test)]
mod tests {
    use super::repr;
    use proptest::prelude::*;

    #[test]
    fn matches_python_on_known_values() {
        for (x, py) in [
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.001, "0.001"),
            (16.3879344786, "16.3879344786"),
            (70689.623880597, "70689.623880597"),
            (2000.0 / 3.0, "666.6666666666666"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (1e100, "1e+100"),
            (-2.5, "-2.5"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (5e-324, "5e-324"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(repr(x), py, "{x:e}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(x in proptest::num::f64::ANY) {
            let s = repr(x);
            let back: f64 = s.parse().unwrap();
            prop_assert!(back == x || (back.is_nan() && x.is_nan()));
            prop_assert!(x.is_nan() || x.is_infinite() || s.contains('.') || s.contains('e'));
        }
    }
}
