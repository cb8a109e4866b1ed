//! Cost = rate x units x hours, split by resource kind.
//!
//! Per hour, each share is its rate times the units requested, with bytes
//! counted in GiB (2^30):
//!
//! | share | rate | units |
//! |---|---|---|
//! | cpu | `usd_per_cpu_core_hour` | `cpu_cores` |
//! | memory | `usd_per_memory_gib_hour` | `memory_bytes / 2^30` |
//! | gpu | `usd_per_gpu_hour` | `gpu_count` |
//! | gpu memory | `usd_per_gpu_memory_gib_hour` | `gpu_memory_bytes / 2^30` |
//! | storage | `usd_per_storage_gib_hour` | `storage_bytes / 2^30` |
//!
//! `per_hour` is the sum of the five shares in that order, and
//! `total = per_hour x duration_minutes / 60`. The order of the float
//! operations is fixed so the Python host and the test vectors agree to the
//! last bit.

use crate::amounts::Amounts;
use std::fmt;

/// Bytes per GiB, the unit memory and storage are priced in.
pub const GIB: f64 = 1_073_741_824.0;

/// Prices per unit and hour, in US dollars (mirrors `chimera.v1.CostRates`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Per CPU core and hour.
    pub cpu_core_hour: f64,
    /// Per GiB of memory and hour.
    pub memory_gib_hour: f64,
    /// Per GPU and hour.
    pub gpu_hour: f64,
    /// Per GiB of GPU memory and hour.
    pub gpu_memory_gib_hour: f64,
    /// Per GiB of storage and hour.
    pub storage_gib_hour: f64,
}

/// Names of the rates, in wire order (the contract's `CostRates` fields).
pub const RATE_NAMES: [&str; 5] = [
    "usd_per_cpu_core_hour",
    "usd_per_memory_gib_hour",
    "usd_per_gpu_hour",
    "usd_per_gpu_memory_gib_hour",
    "usd_per_storage_gib_hour",
];

impl Rates {
    /// The rates in wire order.
    pub fn as_array(&self) -> [f64; 5] {
        [
            self.cpu_core_hour,
            self.memory_gib_hour,
            self.gpu_hour,
            self.gpu_memory_gib_hour,
            self.storage_gib_hour,
        ]
    }

    /// The name of the first rate that is negative, NaN or infinite.
    pub fn invalid_rate(&self) -> Option<&'static str> {
        self.as_array()
            .iter()
            .zip(RATE_NAMES)
            .find(|(value, _)| !(value.is_finite() && **value >= 0.0))
            .map(|(_, name)| name)
    }
}

/// The price of one request (mirrors `chimera.v1.CostBreakdown`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Per-hour shares: cpu, memory, gpu, gpu memory, storage.
    pub shares: [f64; 5],
    /// Sum of the shares.
    pub per_hour: f64,
    /// `per_hour x duration_minutes / 60`.
    pub total: f64,
}

/// A rate or an amount that cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CostError {
    /// A rate is negative, NaN or infinite (its contract name).
    BadRate(&'static str),
    /// An amount is invalid (its contract name).
    BadAmount(&'static str),
}

impl fmt::Display for CostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CostError::BadRate(name) => write!(f, "rate {name} must be finite and >= 0"),
            CostError::BadAmount(name) => write!(f, "amount {name} is invalid"),
        }
    }
}

/// Prices `amounts` held for `duration_minutes` at `rates`.
pub fn price(rates: &Rates, amounts: &Amounts, duration_minutes: u32) -> Result<Cost, CostError> {
    if let Some(name) = rates.invalid_rate() {
        return Err(CostError::BadRate(name));
    }
    if let Some(d) = amounts.invalid_field() {
        return Err(CostError::BadAmount(d.name()));
    }
    let shares = [
        rates.cpu_core_hour * amounts.cpu_cores,
        rates.memory_gib_hour * (amounts.memory_bytes as f64 / GIB),
        rates.gpu_hour * f64::from(amounts.gpu_count),
        rates.gpu_memory_gib_hour * (amounts.gpu_memory_bytes as f64 / GIB),
        rates.storage_gib_hour * (amounts.storage_bytes as f64 / GIB),
    ];
    let per_hour: f64 = shares.iter().sum();
    let total = per_hour * f64::from(duration_minutes) / 60.0;
    Ok(Cost {
        shares,
        per_hour,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::{close, cost_vectors};

    fn rates() -> Rates {
        Rates {
            cpu_core_hour: 0.04,
            memory_gib_hour: 0.005,
            gpu_hour: 2.5,
            gpu_memory_gib_hour: 0.01,
            storage_gib_hour: 0.0001,
        }
    }

    #[test]
    fn shares_are_rate_times_units_and_total_scales_with_hours() {
        let a = Amounts {
            cpu_cores: 4.0,
            memory_bytes: 8 << 30,
            gpu_count: 1,
            gpu_memory_bytes: 16 << 30,
            storage_bytes: 100 << 30,
        };
        let c = price(&rates(), &a, 90).unwrap();
        assert_eq!(c.shares[0], 0.16);
        assert_eq!(c.shares[1], 0.04);
        assert_eq!(c.shares[2], 2.5);
        assert_eq!(c.shares[3], 0.16);
        assert!(close(c.shares[4], 0.01));
        assert!(close(c.per_hour, 2.87));
        assert!(close(c.total, 2.87 * 1.5));
        assert_eq!(price(&rates(), &Amounts::default(), 60).unwrap().total, 0.0);
    }

    #[test]
    fn bad_rates_and_amounts_are_named() {
        let mut r = rates();
        r.gpu_hour = f64::NAN;
        let err = price(&r, &Amounts::default(), 1).unwrap_err();
        assert_eq!(err, CostError::BadRate("usd_per_gpu_hour"));
        r.gpu_hour = -1.0;
        assert!(price(&r, &Amounts::default(), 1).is_err());
        let a = Amounts {
            gpu_memory_bytes: 1,
            ..Amounts::default()
        };
        assert_eq!(
            price(&rates(), &a, 1).unwrap_err(),
            CostError::BadAmount("gpu_memory_bytes")
        );
    }

    #[test]
    fn shared_vectors_hold() {
        for v in cost_vectors() {
            let c = price(&v.rates, &v.amounts, v.minutes).unwrap();
            for (got, want) in c.shares.iter().zip(v.shares) {
                assert!(close(*got, want), "{}: share {got} != {want}", v.name);
            }
            assert!(close(c.per_hour, v.per_hour), "{}", v.name);
            assert!(close(c.total, v.total), "{}", v.name);
        }
    }
}
