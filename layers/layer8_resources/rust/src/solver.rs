//! The allocation solver: places requests onto nodes and their devices.
//!
//! A node has a capacity and what of it is free (cores, memory, storage) and
//! a list of whole devices (accelerators), each free or held. A request is
//! placed on one node, all of it there:
//!
//! * **Order.** Requests are placed in the order given (the caller sorts:
//!   the scheduler passes its queue by priority, FIFO among equals), each one
//!   seeing what the earlier ones took.
//! * **Node: best fit.** Among the nodes where the request fits in the free
//!   amounts, the one left with the least free space, measured as the mean
//!   over cores, memory and storage (the dimensions the node has) of
//!   `free after / capacity`; ties go to the lower index. Packing tight keeps
//!   the emptiest nodes whole for large requests.
//! * **Devices: best fit.** `gpu_count` free devices that each have at least
//!   `ceil(gpu_memory_bytes / gpu_count)` bytes, smallest memory first (ties
//!   by index), so large devices stay free for requests that need them. A
//!   device of unknown memory (0) serves only requests without a memory need.
//! * **Refusal.** A request that fits no node is `TooLarge` when no node could
//!   hold it even empty (its full capacity, every device free), else `NoRoom`
//!   (it would fit later). Either names one dimension: that of the node
//!   lacking the fewest dimensions (ties: lower index), its first lacking one
//!   in field order (`cpu_cores`, `memory_bytes`, `gpu_count`,
//!   `gpu_memory_bytes`, `storage_bytes`), with the amount that node has.
//! * **Mode.** [`Mode::PlaceAllThatFit`] tries every request (a later small
//!   one may take what an earlier large one could not use);
//!   [`Mode::StopAtFirstMiss`] stops at the first refusal and reports the rest
//!   `NotAttempted`, so grants follow the given order strictly and a large
//!   job at the head is not starved by small ones behind it.

use crate::amounts::{Amounts, Dimension, DIMENSIONS};

/// One accelerator of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Device {
    /// Device memory in bytes; 0 when unknown.
    pub memory_bytes: u64,
    /// Not held by an allocation.
    pub free: bool,
}

/// A machine in the pool. `capacity.gpu_*` and `free.gpu_*` are unused: the
/// devices carry those.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// Everything the node has.
    pub capacity: Amounts,
    /// What is not held (`free <= capacity`).
    pub free: Amounts,
    /// Its accelerators.
    pub devices: Vec<Device>,
}

/// How to treat a request that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keep going: later requests are still tried.
    PlaceAllThatFit,
    /// Stop: later requests are `NotAttempted`.
    StopAtFirstMiss,
}

/// What happened to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Placed on `node`, holding `devices` (indices into the node's devices).
    Placed {
        /// Node index.
        node: usize,
        /// Device indices within the node, in the order chosen.
        devices: Vec<usize>,
    },
    /// Does not fit what is free now; `available` is what the named node has free.
    NoRoom {
        /// The dimension named.
        dimension: Dimension,
        /// Amount requested.
        requested: f64,
        /// Amount free on the node named.
        available: f64,
    },
    /// Larger than any node even when empty; `available` is that node's capacity.
    TooLarge {
        /// The dimension named.
        dimension: Dimension,
        /// Amount requested.
        requested: f64,
        /// Capacity of the node named.
        available: f64,
    },
    /// Not tried ([`Mode::StopAtFirstMiss`] after a refusal).
    NotAttempted,
}

/// The devices `req` would take from `devices` (free ones only unless
/// `all`), or the dimension lacking: `gpu_count` when too few devices,
/// `gpu_memory_bytes` when too few of them have the memory.
fn pick_devices(devices: &[Device], req: &Amounts, all: bool) -> Result<Vec<usize>, Dimension> {
    let wanted = req.gpu_count as usize;
    let usable: Vec<usize> = (0..devices.len())
        .filter(|&i| all || devices[i].free)
        .collect();
    if usable.len() < wanted {
        return Err(Dimension::GpuCount);
    }
    let need = req.gpu_memory_per_device();
    let mut fitting: Vec<usize> = usable
        .into_iter()
        .filter(|&i| need == 0 || devices[i].memory_bytes >= need)
        .collect();
    if fitting.len() < wanted {
        return Err(Dimension::GpuMemoryBytes);
    }
    fitting.sort_by_key(|&i| (devices[i].memory_bytes, i));
    fitting.truncate(wanted);
    Ok(fitting)
}

/// The dimensions (field order) in which `req` exceeds `have` on `node`.
fn lacking(node: &Node, have: &Amounts, req: &Amounts, all_devices: bool) -> Vec<Dimension> {
    let mut out = Vec::new();
    let device_gap = pick_devices(&node.devices, req, all_devices).err();
    for d in DIMENSIONS {
        let short = match d {
            Dimension::GpuCount | Dimension::GpuMemoryBytes => device_gap == Some(d),
            _ => req.get(d) > have.get(d),
        };
        if short {
            out.push(d);
        }
    }
    out
}

/// The node and dimension a refusal names (see the module docs), with the
/// amount that node has in it.
fn name_refusal(nodes: &[Node], req: &Amounts, capacity: bool) -> Option<(Dimension, f64)> {
    let mut best: Option<(usize, Dimension, usize)> = None;
    for (i, node) in nodes.iter().enumerate() {
        let have = if capacity { &node.capacity } else { &node.free };
        let gaps = lacking(node, have, req, capacity);
        if let Some(&first) = gaps.first() {
            if best.map_or(true, |(n, _, _)| gaps.len() < n) {
                best = Some((gaps.len(), first, i));
            }
        } else {
            return None;
        }
    }
    let (_, d, i) = best?;
    let node = &nodes[i];
    let amount = match d {
        Dimension::GpuCount => node
            .devices
            .iter()
            .filter(|dev| capacity || dev.free)
            .count() as f64,
        Dimension::GpuMemoryBytes => node
            .devices
            .iter()
            .filter(|dev| capacity || dev.free)
            .map(|dev| dev.memory_bytes)
            .max()
            .unwrap_or(0) as f64,
        _ if capacity => node.capacity.get(d),
        _ => node.free.get(d),
    };
    Some((d, amount))
}

/// Mean over the node's dimensions with capacity of `free after / capacity`.
fn slack_after(node: &Node, req: &Amounts) -> f64 {
    let dims = [
        Dimension::CpuCores,
        Dimension::MemoryBytes,
        Dimension::StorageBytes,
    ];
    let (mut sum, mut n) = (0.0, 0.0);
    for d in dims {
        let cap = node.capacity.get(d);
        if cap > 0.0 {
            sum += (node.free.get(d) - req.get(d)) / cap;
            n += 1.0;
        }
    }
    if n > 0.0 {
        sum / n
    } else {
        0.0
    }
}

fn take(node: &mut Node, req: &Amounts, devices: &[usize]) {
    // Clamp at zero so float rounding in cores never leaves a negative free amount.
    node.free.cpu_cores = (node.free.cpu_cores - req.cpu_cores).max(0.0);
    node.free.memory_bytes -= req.memory_bytes;
    node.free.storage_bytes -= req.storage_bytes;
    for &i in devices {
        node.devices[i].free = false;
    }
}

/// Places `requests` in order onto `nodes` (updating their free amounts and
/// devices); one outcome per request.
pub fn solve(nodes: &mut [Node], requests: &[Amounts], mode: Mode) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut stopped = false;
    for req in requests {
        if stopped {
            outcomes.push(Outcome::NotAttempted);
            continue;
        }
        let mut best: Option<(f64, usize, Vec<usize>)> = None;
        for (i, node) in nodes.iter().enumerate() {
            if !lacking(node, &node.free, req, false).is_empty() {
                continue;
            }
            let devices = pick_devices(&node.devices, req, false).unwrap_or_default();
            let slack = slack_after(node, req);
            if best.as_ref().map_or(true, |(s, _, _)| slack < *s) {
                best = Some((slack, i, devices));
            }
        }
        let outcome = match best {
            Some((_, node, devices)) => {
                take(&mut nodes[node], req, &devices);
                Outcome::Placed { node, devices }
            }
            None => {
                stopped = mode == Mode::StopAtFirstMiss;
                refusal(nodes, req)
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}

fn refusal(nodes: &[Node], req: &Amounts) -> Outcome {
    if nodes.is_empty() {
        return Outcome::TooLarge {
            dimension: Dimension::CpuCores,
            requested: req.cpu_cores,
            available: 0.0,
        };
    }
    if let Some((dimension, available)) = name_refusal(nodes, req, true) {
        return Outcome::TooLarge {
            dimension,
            requested: req.get(dimension),
            available,
        };
    }
    // It fits some node when empty, so some node lacks something now.
    let (dimension, available) =
        name_refusal(nodes, req, false).unwrap_or((Dimension::CpuCores, 0.0));
    Outcome::NoRoom {
        dimension,
        requested: req.get(dimension),
        available,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::solve_vectors;

    fn describe(o: &Outcome) -> String {
        match o {
            Outcome::Placed { node, devices } => {
                let d: Vec<String> = devices.iter().map(usize::to_string).collect();
                format!("placed:{node}:{}", d.join("+"))
            }
            Outcome::NoRoom { dimension, .. } => format!("no_room:{dimension}"),
            Outcome::TooLarge { dimension, .. } => format!("too_large:{dimension}"),
            Outcome::NotAttempted => "skipped".to_string(),
        }
    }

    #[test]
    fn shared_vectors_hold() {
        for mut v in solve_vectors() {
            let got: Vec<String> = solve(&mut v.nodes, &v.requests, v.mode)
                .iter()
                .map(describe)
                .collect();
            assert_eq!(got, v.outcomes, "{}", v.name);
        }
    }

    fn host(cores: f64, gib: u64, devices: &[u64]) -> Node {
        let a = Amounts {
            cpu_cores: cores,
            memory_bytes: gib << 30,
            ..Amounts::default()
        };
        Node {
            capacity: a,
            free: a,
            devices: devices
                .iter()
                .map(|&m| Device {
                    memory_bytes: m << 30,
                    free: true,
                })
                .collect(),
        }
    }

    #[test]
    fn placement_takes_from_the_node_and_refusals_carry_amounts() {
        let mut nodes = vec![host(4.0, 8, &[16, 16])];
        let req = Amounts {
            cpu_cores: 1.5,
            memory_bytes: 2 << 30,
            gpu_count: 1,
            ..Amounts::default()
        };
        let out = solve(&mut nodes, &[req, req, req], Mode::PlaceAllThatFit);
        assert_eq!(
            out[..2],
            [
                Outcome::Placed {
                    node: 0,
                    devices: vec![0]
                },
                Outcome::Placed {
                    node: 0,
                    devices: vec![1]
                }
            ]
        );
        assert_eq!(
            out[2],
            Outcome::NoRoom {
                dimension: Dimension::CpuCores,
                requested: 1.5,
                available: 1.0
            }
        );
        assert_eq!(nodes[0].free.memory_bytes, 4 << 30);
        assert!(nodes[0].devices.iter().all(|d| !d.free));
        let huge = Amounts {
            memory_bytes: 9 << 30,
            ..Amounts::default()
        };
        assert_eq!(
            solve(&mut nodes, &[huge], Mode::PlaceAllThatFit)[0],
            Outcome::TooLarge {
                dimension: Dimension::MemoryBytes,
                requested: (9u64 << 30) as f64,
                available: (8u64 << 30) as f64
            }
        );
    }

    #[test]
    fn an_empty_pool_holds_nothing() {
        let one = Amounts {
            cpu_cores: 1.0,
            ..Amounts::default()
        };
        assert_eq!(
            solve(&mut [], &[one], Mode::StopAtFirstMiss),
            [Outcome::TooLarge {
                dimension: Dimension::CpuCores,
                requested: 1.0,
                available: 0.0
            }]
        );
    }
}
