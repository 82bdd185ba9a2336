//! Money, in two integer units told apart by their types; USD floats only at the JSON edge.
//!
//! - [`Nanos`]: an amount of spend or budget, in nano-dollars. What levels hold, what the
//!   database stores, what requests are charged and reserved.
//! - [`Picos`]: a price per token, or a sum of token prices, in pico-dollars. A token of the
//!   cheapest models costs a fraction of a nano-dollar; prices are multiplied and summed in
//!   pico-dollars (in `u128`, so no product overflows) and turned into nano-dollars once,
//!   rounded up ([`Picos::to_nanos`]), so no fraction of spend is dropped.
//!
//! Every conversion between the units and USD is here; arithmetic on amounts is checked or
//! saturating.

use serde::{Deserialize, Serialize};

const NANOS_PER_USD: f64 = 1e9;
const PICOS_PER_USD: f64 = 1e12;
const PICOS_PER_NANO: u128 = 1000;

/// The largest budget accepted, in USD; keeps every sum of nano-dollars far inside `i64`.
const MAX_USD: f64 = 1e9;

/// Nano-dollars: spend, budgets, reservations and charges.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Nanos(pub i64);

impl Nanos {
    pub const ZERO: Self = Self(0);
    pub const MAX: Self = Self(i64::MAX);

    /// An amount from the API, in USD; `None` for a negative, non-finite or absurd one
    /// (more than a billion dollars).
    pub fn from_usd(usd: f64) -> Option<Self> {
        (usd.is_finite() && (0.0..=MAX_USD).contains(&usd))
            .then(|| Self((usd * NANOS_PER_USD).round() as i64))
    }

    /// The largest amount [`Nanos::from_usd`] takes, USD (for error messages).
    pub const MAX_USD: f64 = MAX_USD;

    /// USD, for the JSON edge.
    pub fn usd(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD
    }

    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// The amount times `factor`, saturating (a projection or a share).
    pub fn saturating_mul(self, factor: i64) -> Self {
        Self(self.0.saturating_mul(factor))
    }

    /// What is left of `self` after `spent`, never below zero.
    pub fn left_after(self, spent: Self) -> Self {
        Self(self.0.saturating_sub(spent.0).max(0))
    }

    /// In pico-dollars, for comparing with a [`Picos`] sum (`None` below zero).
    pub fn to_picos(self) -> Option<Picos> {
        u128::try_from(self.0)
            .ok()
            .map(|nanos| Picos(nanos.saturating_mul(PICOS_PER_NANO)))
    }
}

impl From<Nanos> for i128 {
    /// For exact ratios of amounts (percentages, projections).
    fn from(amount: Nanos) -> Self {
        i128::from(amount.0)
    }
}

impl std::iter::Sum for Nanos {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Self::saturating_add)
    }
}

impl sqlx::Type<sqlx::Sqlite> for Nanos {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <i64 as sqlx::Type<sqlx::Sqlite>>::type_info()
    }
    fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
        <i64 as sqlx::Type<sqlx::Sqlite>>::compatible(ty)
    }
}

impl sqlx::Type<sqlx::Postgres> for Nanos {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <i64 as sqlx::Type<sqlx::Postgres>>::type_info()
    }
    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <i64 as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'q, Db: sqlx::Database> sqlx::Encode<'q, Db> for Nanos
where
    i64: sqlx::Encode<'q, Db>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <Db as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <i64 as sqlx::Encode<'q, Db>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r, Db: sqlx::Database> sqlx::Decode<'r, Db> for Nanos
where
    i64: sqlx::Decode<'r, Db>,
{
    fn decode(
        value: <Db as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Self, sqlx::error::BoxDynError> {
        <i64 as sqlx::Decode<'r, Db>>::decode(value).map(Self)
    }
}

/// Pico-dollars: a price per token, or a sum of token prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Picos(pub u128);

impl Picos {
    pub const ZERO: Self = Self(0);

    /// A price per token from a config or a catalog, USD; `None` unless it is a finite amount
    /// between zero and one dollar.
    pub fn from_usd(usd: f64) -> Option<Self> {
        (usd.is_finite() && (0.0..=1.0).contains(&usd))
            .then(|| Self((usd * PICOS_PER_USD).round() as u128))
    }

    /// USD, for the JSON edge.
    pub fn usd(self) -> f64 {
        self.0 as f64 / PICOS_PER_USD
    }

    /// This price for `tokens` tokens.
    pub fn times(self, tokens: u64) -> Self {
        Self(self.0.saturating_mul(u128::from(tokens)))
    }

    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    /// In nano-dollars, rounded up so no fraction of spend is dropped (saturating).
    pub fn to_nanos(self) -> Nanos {
        Nanos(i64::try_from(self.0.div_ceil(PICOS_PER_NANO)).unwrap_or(i64::MAX))
    }

    /// How many times `unit` fits in `self` (`None` when `unit` is zero).
    pub fn fits(self, unit: Self) -> Option<u128> {
        self.0.checked_div(unit.0)
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }
}

impl std::iter::Sum for Picos {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Self::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_round_trip_through_nanos() {
        for usd in [0.0, 0.01, 1.0, 499.99, 1000.0, 123_456.789] {
            let nanos = Nanos::from_usd(usd).expect("valid budget");
            assert!((nanos.usd() - usd).abs() < 1e-9, "{usd}");
        }
    }

    #[test]
    fn refuses_negative_and_huge_amounts() {
        assert_eq!(Nanos::from_usd(-0.01), None);
        assert_eq!(Nanos::from_usd(1e12), None);
        assert_eq!(Nanos::from_usd(f64::NAN), None);
        assert_eq!(Picos::from_usd(1.5), None);
        assert_eq!(Picos::from_usd(-1e-9), None);
    }

    #[test]
    fn picos_round_up_to_nanos_and_saturate() {
        assert_eq!(Picos(0).to_nanos(), Nanos(0));
        assert_eq!(Picos(1).to_nanos(), Nanos(1));
        assert_eq!(Picos(7_500).to_nanos(), Nanos(8));
        assert_eq!(Picos(u128::MAX).to_nanos(), Nanos::MAX);
        assert_eq!(Picos(u128::MAX).times(2), Picos(u128::MAX));
        assert_eq!(Nanos(3).to_picos(), Some(Picos(3_000)));
        assert_eq!(Nanos(-3).to_picos(), None);
    }

    #[test]
    fn a_token_price_survives_the_trip() {
        let price = Picos::from_usd(0.000_000_15).expect("price");
        assert_eq!(price, Picos(150_000));
        assert_eq!(price.times(1000).to_nanos(), Nanos(150_000));
        assert!((price.usd() - 0.000_000_15).abs() < 1e-18);
    }
}
