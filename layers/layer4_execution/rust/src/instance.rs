//! Task input: a job-placement instance, its byte format and a generator.
//!
//! Input bytes are a little-endian `f64` array (`chimera.execution.workload`
//! in Python writes the same bytes):
//!
//! ```text
//! [0] format version, 1.0
//! [1] machine capacity C          finite, > 0
//! [2] machine budget M            integer, 1..=MAX_MACHINES
//! then per job, in arrival order (3 values each, at most MAX_JOBS jobs):
//!     size       finite, 0 < size <= C
//!     duration   finite, > 0
//!     priority   finite, >= 0
//! ```
//!
//! The generator uses SplitMix64 and integer arithmetic only, so the Python
//! port yields identical bytes for the same arguments.

use guest_abi::{decode_f64s, encode_f64s};
use std::fmt;

/// Version number in slot 0 of the input.
pub const INPUT_VERSION: f64 = 1.0;
/// Largest number of jobs in one instance.
pub const MAX_JOBS: usize = 100_000;
/// Largest machine budget.
pub const MAX_MACHINES: u32 = 100_000;

/// One job: how much of a machine it needs, for how long, and how much it matters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    /// Capacity units the job occupies while it runs.
    pub size: f64,
    /// Time the job runs; a machine is rented until its longest job ends.
    pub duration: f64,
    /// Importance; rejected jobs lose their priority from the objective.
    pub priority: f64,
}

/// A placement problem: jobs to put on at most `max_machines` machines of `capacity`.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Capacity of every machine.
    pub capacity: f64,
    /// Most machines that may be opened.
    pub max_machines: u32,
    /// Jobs in arrival order.
    pub jobs: Vec<Job>,
}

/// Why input bytes were rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

fn bad(msg: String) -> InputError {
    InputError(msg)
}

impl Instance {
    /// Encodes the instance in the input format.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(3 + 3 * self.jobs.len());
        v.extend_from_slice(&[INPUT_VERSION, self.capacity, f64::from(self.max_machines)]);
        for j in &self.jobs {
            v.extend_from_slice(&[j.size, j.duration, j.priority]);
        }
        encode_f64s(&v)
    }

    /// Decodes and validates input bytes.
    pub fn decode(bytes: &[u8]) -> Result<Instance, InputError> {
        let v = decode_f64s(bytes).map_err(|e| bad(format!("input: {e}")))?;
        if v.len() < 3 || (v.len() - 3) % 3 != 0 {
            return Err(bad(format!(
                "input: {} values; expected 3 header values plus 3 per job",
                v.len()
            )));
        }
        if v[0] != INPUT_VERSION {
            return Err(bad(format!("input[0] (version) is {}, expected 1", v[0])));
        }
        let capacity = v[1];
        if !(capacity.is_finite() && capacity > 0.0) {
            return Err(bad(format!(
                "input[1] (capacity) must be finite and > 0, got {capacity}"
            )));
        }
        let m = v[2];
        if !(m.fract() == 0.0 && m >= 1.0 && m <= f64::from(MAX_MACHINES)) {
            return Err(bad(format!(
                "input[2] (max_machines) must be an integer in 1..={MAX_MACHINES}, got {m}"
            )));
        }
        let n = (v.len() - 3) / 3;
        if n > MAX_JOBS {
            return Err(bad(format!("{n} jobs exceed the limit of {MAX_JOBS}")));
        }
        let mut jobs = Vec::with_capacity(n);
        for (k, c) in v[3..].chunks_exact(3).enumerate() {
            let (size, duration, priority) = (c[0], c[1], c[2]);
            if !(size.is_finite() && size > 0.0 && size <= capacity) {
                return Err(bad(format!(
                    "job {k}: size must be in (0, capacity], got {size}"
                )));
            }
            if !(duration.is_finite() && duration > 0.0) {
                return Err(bad(format!(
                    "job {k}: duration must be finite and > 0, got {duration}"
                )));
            }
            if !(priority.is_finite() && priority >= 0.0) {
                return Err(bad(format!(
                    "job {k}: priority must be finite and >= 0, got {priority}"
                )));
            }
            jobs.push(Job {
                size,
                duration,
                priority,
            });
        }
        Ok(Instance {
            capacity,
            max_machines: m as u32,
            jobs,
        })
    }
}

/// SplitMix64: tiny, std-only, and easy to port bit-for-bit.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi` (modulo bias is irrelevant here and keeps the port exact).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Priority classes of the generator (layer 4's queue priorities).
pub const PRIORITY_CLASSES: [u64; 5] = [1, 25, 50, 75, 100];

/// Generates a reproducible instance.
///
/// Per job, in this order of draws: `r = range(0, 99)` picks the size class
/// (`r < 50`: 5..=35, `r < 80`: 36..=60, else 61..=90, scaled by
/// `capacity / 100` with integer division, at least 1); `r = range(0, 99)`
/// picks the duration class (`r < 60`: 1..=10, `r < 90`: 11..=50, else
/// 51..=120); `range(0, 4)` picks the priority class. The machine budget is
/// `ceil(sum(sizes) * budget_percent / (100 * capacity))`, at least 1.
pub fn generate(seed: u64, n_jobs: u32, capacity: u32, budget_percent: u32) -> Instance {
    let cap = u64::from(capacity.max(1));
    let mut rng = SplitMix64::new(seed);
    let mut jobs = Vec::with_capacity(n_jobs as usize);
    let mut total: u64 = 0;
    for _ in 0..n_jobs {
        let r = rng.range(0, 99);
        let pct = if r < 50 {
            rng.range(5, 35)
        } else if r < 80 {
            rng.range(36, 60)
        } else {
            rng.range(61, 90)
        };
        let size = (pct * cap / 100).clamp(1, cap);
        let r = rng.range(0, 99);
        let duration = if r < 60 {
            rng.range(1, 10)
        } else if r < 90 {
            rng.range(11, 50)
        } else {
            rng.range(51, 120)
        };
        let priority = PRIORITY_CLASSES[rng.range(0, 4) as usize];
        total += size;
        jobs.push(Job {
            size: size as f64,
            duration: duration as f64,
            priority: priority as f64,
        });
    }
    let denom = 100 * cap;
    let budget = (total * u64::from(budget_percent) + denom - 1) / denom;
    Instance {
        capacity: cap as f64,
        max_machines: budget.clamp(1, u64::from(MAX_MACHINES)) as u32,
        jobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared vector: `generate(42, 4, 100, 110).encode()`; the Python test checks the same hex.
    pub(crate) const VECTOR_INSTANCE_HEX: &str = "000000000000f03f0000000000005940000000000000004000000000008040400000000000001440000000000000f03f0000000000004240000000000000184000000000000059400000000000003840000000000000534000000000000039400000000000002a4000000000000032400000000000c05240";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn generator_matches_shared_vector() {
        assert_eq!(
            hex(&generate(42, 4, 100, 110).encode()),
            VECTOR_INSTANCE_HEX
        );
    }

    #[test]
    fn generated_instances_are_valid_and_deterministic() {
        let a = generate(7, 200, 100, 110);
        assert_eq!(a, generate(7, 200, 100, 110));
        assert_ne!(a, generate(8, 200, 100, 110));
        assert_eq!(Instance::decode(&a.encode()).unwrap(), a);
        let total: f64 = a.jobs.iter().map(|j| j.size).sum();
        assert_eq!(
            f64::from(a.max_machines),
            (total * 1.1 / 100.0 - 1e-9).ceil()
        );
        assert!(a.jobs.iter().all(|j| j.size >= 5.0 && j.size <= 90.0));
    }

    #[test]
    fn decode_rejects_bad_input() {
        let ok = generate(1, 3, 100, 110);
        let mut v = decode_f64s(&ok.encode()).unwrap();
        let check = |v: &[f64], needle: &str| {
            let e = Instance::decode(&encode_f64s(v)).unwrap_err();
            assert!(e.0.contains(needle), "{e} should mention {needle}");
        };
        check(&v[..4], "3 header values");
        v[0] = 2.0;
        check(&v, "version");
        v[0] = 1.0;
        v[1] = f64::NAN;
        check(&v, "capacity");
        v[1] = 100.0;
        v[2] = 1.5;
        check(&v, "max_machines");
        v[2] = 3.0;
        v[3] = 101.0;
        check(&v, "job 0: size");
        v[3] = 10.0;
        v[4] = 0.0;
        check(&v, "job 0: duration");
        v[4] = 1.0;
        v[5] = -1.0;
        check(&v, "job 0: priority");
        assert!(Instance::decode(&[0u8; 5]).is_err());
    }
}
