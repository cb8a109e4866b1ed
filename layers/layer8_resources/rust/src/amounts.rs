//! Amounts of compute, in the units of `chimera.v1.ResourceRequirements`.

use std::fmt;

/// One resource dimension, in the contract's field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// CPU cores (fractions allowed).
    CpuCores = 0,
    /// Main memory, bytes.
    MemoryBytes = 1,
    /// Whole accelerators.
    GpuCount = 2,
    /// Accelerator memory, bytes, over all requested accelerators.
    GpuMemoryBytes = 3,
    /// Local storage, bytes.
    StorageBytes = 4,
}

/// Every dimension in field order (the order refusals are checked in).
pub const DIMENSIONS: [Dimension; 5] = [
    Dimension::CpuCores,
    Dimension::MemoryBytes,
    Dimension::GpuCount,
    Dimension::GpuMemoryBytes,
    Dimension::StorageBytes,
];

impl Dimension {
    /// The contract's field name (`ResourceRequirements.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Dimension::CpuCores => "cpu_cores",
            Dimension::MemoryBytes => "memory_bytes",
            Dimension::GpuCount => "gpu_count",
            Dimension::GpuMemoryBytes => "gpu_memory_bytes",
            Dimension::StorageBytes => "storage_bytes",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a request needs (mirrors `chimera.v1.ResourceRequirements`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Amounts {
    /// CPU cores.
    pub cpu_cores: f64,
    /// Main memory, bytes.
    pub memory_bytes: u64,
    /// Whole accelerators.
    pub gpu_count: u32,
    /// Accelerator memory in total over `gpu_count` devices, bytes.
    pub gpu_memory_bytes: u64,
    /// Local storage, bytes.
    pub storage_bytes: u64,
}

impl Amounts {
    /// The amount of one dimension as a float (for reports and ratios).
    pub fn get(&self, d: Dimension) -> f64 {
        match d {
            Dimension::CpuCores => self.cpu_cores,
            Dimension::MemoryBytes => self.memory_bytes as f64,
            Dimension::GpuCount => f64::from(self.gpu_count),
            Dimension::GpuMemoryBytes => self.gpu_memory_bytes as f64,
            Dimension::StorageBytes => self.storage_bytes as f64,
        }
    }

    /// Memory each of the `gpu_count` devices must have free: the total
    /// rounded up over the devices (0 without devices).
    pub fn gpu_memory_per_device(&self) -> u64 {
        if self.gpu_count == 0 {
            0
        } else {
            let n = u64::from(self.gpu_count);
            self.gpu_memory_bytes / n + u64::from(self.gpu_memory_bytes % n != 0)
        }
    }

    /// The first field that is not a valid amount, or `None`: `cpu_cores` must
    /// be finite and >= 0, and `gpu_memory_bytes` needs a `gpu_count`.
    pub fn invalid_field(&self) -> Option<Dimension> {
        if !(self.cpu_cores.is_finite() && self.cpu_cores >= 0.0) {
            Some(Dimension::CpuCores)
        } else if self.gpu_memory_bytes > 0 && self.gpu_count == 0 {
            Some(Dimension::GpuMemoryBytes)
        } else {
            None
        }
    }
}
