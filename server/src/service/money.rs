//! Amounts of USD from the API, checked into [`Nanos`] (the units are in `crate::money`).

use super::Error;
use crate::money::Nanos;

/// Converts a budget from the API; refuses negative, non-finite and absurd amounts.
pub fn usd_to_nanos(param: &str, usd: f64) -> Result<Nanos, Error> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(Error::invalid(
            param,
            format!("{param} must be a non-negative amount in USD"),
        ));
    }
    Nanos::from_usd(usd).ok_or_else(|| {
        Error::invalid(
            param,
            format!("{param} must be at most {} USD", Nanos::MAX_USD),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_negative_and_huge_budgets() {
        assert_eq!(
            usd_to_nanos("max_budget", 0.01).ok(),
            Some(Nanos(10_000_000))
        );
        assert!(usd_to_nanos("max_budget", -0.01).is_err());
        assert!(usd_to_nanos("max_budget", 1e12).is_err());
        assert!(usd_to_nanos("max_budget", f64::NAN).is_err());
    }
}
