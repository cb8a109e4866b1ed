//! A bin-packing instance and its task-input encoding.
//!
//! Input is a little-endian `f64` array (the guest ABI's number format):
//!
//! ```text
//! [1.0 (format version), capacity C, then each item's size in arrival order]
//! ```
//!
//! `C` is an integer in `1..=MAX_CAPACITY`; sizes are integers in `1..=C`
//! (both published sets and both generators have integer sizes); there are
//! `1..=MAX_ITEMS` items. `chimera.binpacking.instances` encodes the same way.

use guest_abi::{decode_f64s, encode_f64s};

/// The only input format version.
pub const FORMAT_VERSION: f64 = 1.0;
/// Largest bin capacity (bounds the priority table at (C + 1)^2 values).
pub const MAX_CAPACITY: u32 = 1024;
/// Largest number of items in one instance.
pub const MAX_ITEMS: usize = 100_000;

/// Items to pack, in arrival order, into bins of `capacity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Capacity of every bin.
    pub capacity: u32,
    /// Item sizes in arrival order.
    pub items: Vec<u32>,
}

impl Instance {
    /// A validated instance; the error names the offending field.
    pub fn new(capacity: u32, items: Vec<u32>) -> Result<Self, String> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(format!("capacity: {capacity} is not in 1..={MAX_CAPACITY}"));
        }
        if items.is_empty() {
            return Err("items: the instance has no items".to_string());
        }
        if items.len() > MAX_ITEMS {
            return Err(format!(
                "items: {} items, more than {MAX_ITEMS}",
                items.len()
            ));
        }
        for (i, &s) in items.iter().enumerate() {
            if s == 0 || s > capacity {
                return Err(format!(
                    "items[{i}]: size {s} is not in 1..={capacity} (the capacity)"
                ));
            }
        }
        Ok(Instance { capacity, items })
    }

    /// The L1 lower bound on the number of bins: `ceil(sum(items) / capacity)`.
    pub fn l1_bound(&self) -> u64 {
        let total: u64 = self.items.iter().map(|&s| s as u64).sum();
        let c = self.capacity as u64;
        (total + c - 1) / c
    }

    /// Encodes the instance as task input.
    pub fn encode(&self) -> Vec<u8> {
        let mut values = Vec::with_capacity(self.items.len() + 2);
        values.push(FORMAT_VERSION);
        values.push(self.capacity as f64);
        values.extend(self.items.iter().map(|&s| s as f64));
        encode_f64s(&values)
    }

    /// Decodes and validates task input; the error names the offending field.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let values = decode_f64s(bytes).map_err(|e| format!("input: {e}"))?;
        if values.len() < 2 {
            return Err("input: expected [version, capacity, items...]".to_string());
        }
        if values[0] != FORMAT_VERSION {
            return Err(format!("version: {} is not {FORMAT_VERSION}", values[0]));
        }
        let capacity = whole(values[1], "capacity", MAX_CAPACITY as f64)?;
        let mut items = Vec::with_capacity(values.len() - 2);
        for (i, &v) in values[2..].iter().enumerate() {
            items.push(whole(v, &format!("items[{i}]"), capacity as f64)?);
        }
        Instance::new(capacity, items)
    }
}

/// `value` as a whole number in 1..=max, or an error naming `field`.
fn whole(value: f64, field: &str, max: f64) -> Result<u32, String> {
    if !(value.is_finite() && value.fract() == 0.0 && value >= 1.0 && value <= max) {
        return Err(format!(
            "{field}: {value} is not a whole number in 1..={max}"
        ));
    }
    Ok(value as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_bounds() {
        let inst = Instance::new(150, vec![20, 100, 150, 31]).unwrap();
        assert_eq!(Instance::decode(&inst.encode()).unwrap(), inst);
        assert_eq!(inst.l1_bound(), 3); // 301 / 150
        assert_eq!(Instance::new(10, vec![10, 10]).unwrap().l1_bound(), 2);
    }

    #[test]
    fn rejects_bad_instances_naming_the_field() {
        assert!(Instance::new(10, vec![]).unwrap_err().starts_with("items:"));
        assert!(Instance::new(10, vec![3, 11])
            .unwrap_err()
            .starts_with("items[1]"));
        assert!(Instance::new(10, vec![0])
            .unwrap_err()
            .starts_with("items[0]"));
        assert!(Instance::new(0, vec![1])
            .unwrap_err()
            .starts_with("capacity"));
        assert!(Instance::new(2000, vec![1])
            .unwrap_err()
            .starts_with("capacity"));
        let bad = |values: &[f64]| Instance::decode(&encode_f64s(values)).unwrap_err();
        assert!(bad(&[1.0, 10.0, 2.5]).starts_with("items[0]"));
        assert!(bad(&[1.0, 10.0, -3.0]).starts_with("items[0]"));
        assert!(bad(&[1.0, 10.0, 4.0, f64::NAN]).starts_with("items[1]"));
        assert!(bad(&[1.0, 10.0, 11.0]).starts_with("items[0]"));
        assert!(bad(&[1.0, 10.0]).starts_with("items:"));
        assert!(bad(&[2.0, 10.0, 1.0]).starts_with("version"));
        assert!(bad(&[1.0]).starts_with("input"));
        assert!(Instance::decode(b"abc").unwrap_err().starts_with("input"));
    }
}
