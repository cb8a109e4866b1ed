//! Test vectors shared with the Python tests (`tests/test_core.py` reads this
//! file and runs the same cases through the WASM module), so the native core,
//! the WASM build and the host's wire encoding are pinned to one set of answers.
//!
//! Format, one case a line between the markers; fields split by ` | `:
//!
//! * `cost | name | rates (5, CostRates order) | amounts | minutes | shares (5) | per_hour | total`
//! * `solve | name | all or stop | nodes (split by ` ; `) | requests (split by ` ; `) | outcomes`
//!
//! amounts: `cpu,memory,gpus,gpu_memory,storage`; a node: `cpu=CAP:FREE
//! mem=CAP:FREE disk=CAP:FREE dev=MEM+MEM` (a `*` after a device's memory
//! marks it busy); sizes take a `G` (2^30 bytes) or `M` (2^20) suffix. Outcomes:
//! `placed:NODE:DEV+DEV` (device indices within the node), `no_room:FIELD`,
//! `too_large:FIELD`, `skipped`. Expected figures were worked out by hand.

use crate::amounts::Amounts;
use crate::cost::Rates;
use crate::solver::{Device, Mode, Node};

/// The cases (see the module docs for the format).
pub const VECTORS: &str = "\
BEGIN VECTORS
cost | all_kinds | 0.04,0.005,2.5,0.01,0.0001 | 4,8G,1,16G,100G | 90 | 0.16,0.04,2.5,0.16,0.01 | 2.87 | 4.305
cost | cpu_only_half_hour | 0.05,0,0,0,0 | 2.5,0,0,0,0 | 30 | 0.125,0,0,0,0 | 0.125 | 0.0625
cost | fractional_gib_one_week | 0,0.01,0,0,0.001 | 0,512M,0,0,1536M | 10080 | 0,0.005,0,0,0.0015 | 0.0065 | 1.092
cost | nothing_is_free | 1,1,1,1,1 | 0,0,0,0,0 | 60 | 0,0,0,0,0 | 0 | 0
solve | best_fit_takes_the_tighter_node | all | cpu=8:8 mem=16G:16G disk=0:0 dev= ; cpu=4:2.5 mem=8G:8G disk=0:0 dev= | 2,1G,0,0,0 | placed:1:
solve | devices_best_fit_by_memory | all | cpu=8:8 mem=16G:16G disk=0:0 dev=80G+16G+40G | 1,1G,1,20G,0 | placed:0:2
solve | two_devices_smallest_first | all | cpu=8:8 mem=16G:16G disk=0:0 dev=80G+16G+40G+16G | 1,0,2,0,0 | placed:0:1+3
solve | memory_short_now | all | cpu=4:4 mem=4G:1G disk=0:0 dev= | 1,2G,0,0,0 | no_room:memory_bytes
solve | more_gpus_than_the_host_has | all | cpu=4:4 mem=4G:4G disk=0:0 dev=16G | 1,0,2,0,0 | too_large:gpu_count
solve | per_device_memory_too_large | all | cpu=4:4 mem=4G:4G disk=0:0 dev=8G+8G | 1,0,2,20G,0 | too_large:gpu_memory_bytes
solve | state_carries_between_requests | all | cpu=4:4 mem=4G:4G disk=0:0 dev= | 3,0,0,0,0 ; 3,0,0,0,0 | placed:0: ; no_room:cpu_cores
solve | busy_devices_are_skipped | all | cpu=4:4 mem=4G:4G disk=0:0 dev=16G*+16G | 1,0,2,0,0 ; 1,0,1,0,0 | no_room:gpu_count ; placed:0:1
solve | storage_too_large | all | cpu=4:4 mem=4G:4G disk=10G:10G dev= | 1,0,0,0,11G | too_large:storage_bytes
solve | backfill_when_all | all | cpu=4:4 mem=4G:4G disk=0:0 dev= | 1,0,0,0,0 ; 4,0,0,0,0 ; 1,0,0,0,0 | placed:0: ; no_room:cpu_cores ; placed:0:
solve | head_of_line_when_stop | stop | cpu=4:4 mem=4G:4G disk=0:0 dev= | 1,0,0,0,0 ; 4,0,0,0,0 ; 1,0,0,0,0 | placed:0: ; no_room:cpu_cores ; skipped
solve | node_lacking_fewest_dimensions_is_named | all | cpu=8:1 mem=8G:0 disk=0:0 dev= ; cpu=8:8 mem=8G:0.5G disk=0:0 dev= | 2,1G,0,0,0 | no_room:memory_bytes
END VECTORS
";

/// Relative closeness for float results (1e-12, absolute near zero).
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// One `cost` line.
pub struct CostVector {
    pub name: String,
    pub rates: Rates,
    pub amounts: Amounts,
    pub minutes: u32,
    pub shares: [f64; 5],
    pub per_hour: f64,
    pub total: f64,
}

/// One `solve` line.
pub struct SolveVector {
    pub name: String,
    pub mode: Mode,
    pub nodes: Vec<Node>,
    pub requests: Vec<Amounts>,
    pub outcomes: Vec<String>,
}

fn lines(kind: &str) -> Vec<Vec<&'static str>> {
    VECTORS
        .lines()
        .filter(|l| l.starts_with(kind))
        .map(|l| l.split(" | ").collect())
        .collect()
}

fn size(text: &str) -> f64 {
    let (number, scale) = match text.chars().last() {
        Some('G') => (&text[..text.len() - 1], 1_073_741_824.0),
        Some('M') => (&text[..text.len() - 1], 1_048_576.0),
        _ => (text, 1.0),
    };
    number.parse::<f64>().expect("a number") * scale
}

fn floats(text: &str) -> Vec<f64> {
    text.split(',').map(size).collect()
}

fn amounts(text: &str) -> Amounts {
    let v = floats(text);
    Amounts {
        cpu_cores: v[0],
        memory_bytes: v[1] as u64,
        gpu_count: v[2] as u32,
        gpu_memory_bytes: v[3] as u64,
        storage_bytes: v[4] as u64,
    }
}

fn node(text: &str) -> Node {
    let mut node = Node::default();
    for field in text.split(' ') {
        let (key, value) = field.split_once('=').expect("key=value");
        if key == "dev" {
            node.devices = value
                .split('+')
                .filter(|d| !d.is_empty())
                .map(|d| Device {
                    memory_bytes: size(d.trim_end_matches('*')) as u64,
                    free: !d.ends_with('*'),
                })
                .collect();
            continue;
        }
        let (cap, free) = value.split_once(':').expect("CAP:FREE");
        let (cap, free) = (size(cap), size(free));
        match key {
            "cpu" => (node.capacity.cpu_cores, node.free.cpu_cores) = (cap, free),
            "mem" => {
                (node.capacity.memory_bytes, node.free.memory_bytes) = (cap as u64, free as u64)
            }
            "disk" => {
                (node.capacity.storage_bytes, node.free.storage_bytes) = (cap as u64, free as u64)
            }
            other => panic!("unknown node field {other}"),
        }
    }
    node
}

/// Every `cost` case.
pub fn cost_vectors() -> Vec<CostVector> {
    lines("cost")
        .into_iter()
        .map(|f| {
            let r = floats(f[2]);
            let shares = floats(f[5]);
            CostVector {
                name: f[1].to_string(),
                rates: Rates {
                    cpu_core_hour: r[0],
                    memory_gib_hour: r[1],
                    gpu_hour: r[2],
                    gpu_memory_gib_hour: r[3],
                    storage_gib_hour: r[4],
                },
                amounts: amounts(f[3]),
                minutes: f[4].parse().expect("minutes"),
                shares: [shares[0], shares[1], shares[2], shares[3], shares[4]],
                per_hour: size(f[6]),
                total: size(f[7]),
            }
        })
        .collect()
}

/// Every `solve` case.
pub fn solve_vectors() -> Vec<SolveVector> {
    lines("solve")
        .into_iter()
        .map(|f| SolveVector {
            name: f[1].to_string(),
            mode: if f[2] == "stop" {
                Mode::StopAtFirstMiss
            } else {
                Mode::PlaceAllThatFit
            },
            nodes: f[3].split(" ; ").map(node).collect(),
            requests: f[4].split(" ; ").map(amounts).collect(),
            outcomes: f[5].split(" ; ").map(str::to_string).collect(),
        })
        .collect()
}
