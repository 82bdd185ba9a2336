//! Money: integer nano-dollars inside, USD floats only at the JSON edge. Nano-dollars keep the
//! price of a single token of the cheapest models exact.

use super::Error;

const NANOS_PER_USD: f64 = 1_000_000_000.0;

/// The largest budget accepted, in USD; keeps every sum of nano-dollars far inside `i64`.
const MAX_USD: f64 = 1_000_000_000.0;

/// Converts a budget from the API; refuses negative, non-finite and absurd amounts.
pub fn usd_to_nanos(param: &str, usd: f64) -> Result<i64, Error> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(Error::invalid(
            param,
            format!("{param} must be a non-negative amount in USD"),
        ));
    }
    if usd > MAX_USD {
        return Err(Error::invalid(
            param,
            format!("{param} must be at most {MAX_USD} USD"),
        ));
    }
    Ok((usd * NANOS_PER_USD).round() as i64)
}

pub fn nanos_to_usd(nanos: i64) -> f64 {
    nanos as f64 / NANOS_PER_USD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_round_trip_through_nanos() {
        for usd in [0.0, 0.01, 1.0, 499.99, 1000.0, 123_456.789] {
            let nanos = usd_to_nanos("max_budget", usd).expect("valid budget");
            assert!((nanos_to_usd(nanos) - usd).abs() < 1e-9, "{usd}");
        }
    }

    #[test]
    fn refuses_negative_and_huge_budgets() {
        assert!(usd_to_nanos("max_budget", -0.01).is_err());
        assert!(usd_to_nanos("max_budget", 1e12).is_err());
        assert!(usd_to_nanos("max_budget", f64::NAN).is_err());
    }
}
