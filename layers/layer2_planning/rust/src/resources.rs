//! Sizing tasks from the host's capacity and each layer's peak demand.
//!
//! **Parallelism limit**: the smallest of the goal's `max_parallel_tasks`
//! (0 = none) and the whole available cores (`floor(cores)`, when at least
//! one core is known); 0 means unlimited.
//!
//! **Sizing** (only for requirements the caller left at 0): a task on
//! dependency level `l` shares the host with the other tasks of that level
//! that can run with it, `p = min(width(l), limit)` (the limit as above,
//! or the level width when unlimited). It gets `cores / p` cores, rounded
//! down to whole cores when that is at least one, and `memory / p` bytes,
//! rounded down to whole MiB. Unknown capacity (0) leaves the requirement 0.
//!
//! **Peak per layer**: for each layer, the largest sum of the requirements
//! of its tasks running at the same instant (a task runs over
//! `[start, end)`; a zero-length task counts at its start), taken per
//! dimension, so the CPU and memory peaks may fall at different instants.

use crate::dag::Dag;
use std::collections::BTreeMap;

/// A bundle of resources (mirrors `chimera.v1.ResourceRequirements`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resources {
    /// CPU cores (fractions allowed).
    pub cpu_cores: f64,
    /// Main memory in bytes.
    pub memory_bytes: u64,
    /// Whole accelerators.
    pub gpu_count: u32,
    /// Accelerator memory in bytes.
    pub gpu_memory_bytes: u64,
    /// Local storage in bytes.
    pub storage_bytes: u64,
}

/// What the host offers; 0 = unknown.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Capacity {
    /// Available CPU cores.
    pub cores: f64,
    /// Available memory in bytes.
    pub memory_bytes: u64,
}

const MIB: u64 = 1024 * 1024;

/// The parallelism limit (see the module docs); 0 = unlimited.
pub fn parallel_limit(max_parallel_tasks: u32, cores: f64) -> usize {
    let by_cores = if cores.is_finite() && cores >= 1.0 {
        cores.floor() as usize
    } else {
        0
    };
    match (max_parallel_tasks as usize, by_cores) {
        (0, c) => c,
        (m, 0) => m,
        (m, c) => m.min(c),
    }
}

/// Fills the zero CPU and memory requirements of `requested` (one entry per
/// task) from `capacity` (see the module docs).
pub fn size_tasks(
    dag: &Dag,
    requested: &[Resources],
    capacity: Capacity,
    limit: usize,
) -> Vec<Resources> {
    let levels = dag.levels();
    let widths = dag.level_widths();
    requested
        .iter()
        .enumerate()
        .map(|(v, &req)| {
            let width = levels.get(v).map_or(1, |&l| widths[l]).max(1);
            let share = if limit == 0 { width } else { width.min(limit) } as f64;
            let mut out = req;
            if out.cpu_cores == 0.0 && capacity.cores.is_finite() && capacity.cores > 0.0 {
                let cores = capacity.cores / share;
                out.cpu_cores = if cores >= 1.0 { cores.floor() } else { cores };
            }
            if out.memory_bytes == 0 && capacity.memory_bytes > 0 {
                out.memory_bytes = (capacity.memory_bytes as f64 / share) as u64 / MIB * MIB;
            }
            out
        })
        .collect()
}

fn add(a: &mut Resources, b: &Resources) {
    a.cpu_cores += b.cpu_cores;
    a.memory_bytes = a.memory_bytes.saturating_add(b.memory_bytes);
    a.gpu_count = a.gpu_count.saturating_add(b.gpu_count);
    a.gpu_memory_bytes = a.gpu_memory_bytes.saturating_add(b.gpu_memory_bytes);
    a.storage_bytes = a.storage_bytes.saturating_add(b.storage_bytes);
}

fn sub(a: &mut Resources, b: &Resources) {
    a.cpu_cores = (a.cpu_cores - b.cpu_cores).max(0.0);
    a.memory_bytes = a.memory_bytes.saturating_sub(b.memory_bytes);
    a.gpu_count = a.gpu_count.saturating_sub(b.gpu_count);
    a.gpu_memory_bytes = a.gpu_memory_bytes.saturating_sub(b.gpu_memory_bytes);
    a.storage_bytes = a.storage_bytes.saturating_sub(b.storage_bytes);
}

fn raise(peak: &mut Resources, now: &Resources) {
    peak.cpu_cores = peak.cpu_cores.max(now.cpu_cores);
    peak.memory_bytes = peak.memory_bytes.max(now.memory_bytes);
    peak.gpu_count = peak.gpu_count.max(now.gpu_count);
    peak.gpu_memory_bytes = peak.gpu_memory_bytes.max(now.gpu_memory_bytes);
    peak.storage_bytes = peak.storage_bytes.max(now.storage_bytes);
}

/// Peak concurrent requirement per layer, ordered by layer number.
pub fn peak_by_layer(
    layers: &[u32],
    reqs: &[Resources],
    start: &[u64],
    end: &[u64],
) -> Vec<(u32, Resources)> {
    let mut by_layer: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (v, &l) in layers.iter().enumerate() {
        by_layer.entry(l).or_default().push(v);
    }
    by_layer
        .into_iter()
        .map(|(layer, tasks)| (layer, peak_of(&tasks, reqs, start, end)))
        .collect()
}

fn peak_of(tasks: &[usize], reqs: &[Resources], start: &[u64], end: &[u64]) -> Resources {
    // (time, kind, task): kind 0 = end, 1 = start, 2 = zero-length task;
    // at one instant ends free resources before starts take them.
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(tasks.len() * 2);
    for &v in tasks {
        if end[v] > start[v] {
            events.push((start[v], 1, v));
            events.push((end[v], 0, v));
        } else {
            events.push((start[v], 2, v));
        }
    }
    events.sort_unstable();
    let mut running = Resources::default();
    let mut peak = Resources::default();
    let mut i = 0;
    while i < events.len() {
        let t = events[i].0;
        let mut instant = Resources::default();
        while i < events.len() && events[i].0 == t {
            let (_, kind, v) = events[i];
            match kind {
                0 => sub(&mut running, &reqs[v]),
                1 => add(&mut running, &reqs[v]),
                _ => add(&mut instant, &reqs[v]),
            }
            i += 1;
        }
        add(&mut instant, &running);
        raise(&mut peak, &instant);
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::TaskSpec;

    fn fan(n: usize) -> Dag {
        let mut tasks = vec![TaskSpec {
            id: "root".into(),
            duration_ms: 1,
            deps: vec![],
        }];
        for i in 0..n {
            tasks.push(TaskSpec {
                id: format!("w{i}"),
                duration_ms: 1,
                deps: vec!["root".into()],
            });
        }
        Dag::new(&tasks).unwrap()
    }

    fn cpu(c: f64) -> Resources {
        Resources {
            cpu_cores: c,
            ..Resources::default()
        }
    }

    #[test]
    fn limit_is_the_smaller_of_goal_and_whole_cores() {
        assert_eq!(parallel_limit(0, 0.0), 0);
        assert_eq!(parallel_limit(0, 8.7), 8);
        assert_eq!(parallel_limit(3, 8.0), 3);
        assert_eq!(parallel_limit(16, 8.0), 8);
        assert_eq!(parallel_limit(5, 0.5), 5);
        assert_eq!(parallel_limit(0, f64::NAN), 0);
    }

    #[test]
    fn tasks_share_cores_with_their_level() {
        let dag = fan(4); // level 0: root; level 1: four workers
        let gib = 1024 * MIB;
        let cap = Capacity {
            cores: 16.0,
            memory_bytes: 8 * gib,
        };
        let sized = size_tasks(
            &dag,
            &[Resources::default(); 5],
            cap,
            parallel_limit(0, 16.0),
        );
        assert_eq!(sized[0].cpu_cores, 16.0);
        assert_eq!(sized[0].memory_bytes, 8 * gib);
        assert_eq!(sized[1].cpu_cores, 4.0);
        assert_eq!(sized[1].memory_bytes, 2 * gib);
        // Six cores over four workers: 1.5 rounds down to one whole core.
        let sized = size_tasks(
            &dag,
            &[Resources::default(); 5],
            Capacity {
                cores: 6.0,
                memory_bytes: 0,
            },
            6,
        );
        assert_eq!(sized[2].cpu_cores, 1.0);
        assert_eq!(sized[2].memory_bytes, 0);
        // Half a core over two runnable tasks: fractions stay.
        let sized = size_tasks(
            &dag,
            &[Resources::default(); 5],
            Capacity {
                cores: 0.5,
                memory_bytes: 0,
            },
            2,
        );
        assert_eq!(sized[1].cpu_cores, 0.25);
    }

    #[test]
    fn caller_requirements_are_kept_and_unknown_capacity_sizes_nothing() {
        let dag = fan(1);
        let reqs = [cpu(3.0), Resources::default()];
        let sized = size_tasks(
            &dag,
            &reqs,
            Capacity {
                cores: 8.0,
                memory_bytes: 0,
            },
            0,
        );
        assert_eq!(sized[0].cpu_cores, 3.0);
        assert_eq!(sized[1].cpu_cores, 8.0);
        let sized = size_tasks(&dag, &reqs, Capacity::default(), 0);
        assert_eq!(sized[1], Resources::default());
    }

    #[test]
    fn peak_counts_overlaps_per_layer_and_dimension() {
        let mem = |m: u64| Resources {
            memory_bytes: m,
            ..Resources::default()
        };
        // layer 4: [0,10) 2 cores, [5,15) 3 cores, [10,20) 4 cores + 100 bytes
        // layer 5: [0,0] zero-length 1 core at t=0 next to [0,5) 1 core.
        let reqs = [
            cpu(2.0),
            cpu(3.0),
            Resources {
                cpu_cores: 4.0,
                memory_bytes: 100,
                ..Resources::default()
            },
            cpu(1.0),
            cpu(1.0),
            mem(7),
        ];
        let layers = [4, 4, 4, 5, 5, 4];
        let start = [0, 5, 10, 0, 0, 20];
        let end = [10, 15, 20, 0, 5, 30];
        let peaks = peak_by_layer(&layers, &reqs, &start, &end);
        assert_eq!(peaks.len(), 2);
        assert_eq!(peaks[0].0, 4);
        assert_eq!(peaks[0].1.cpu_cores, 7.0); // [10,15): 3 + 4; 2 ended at 10
        assert_eq!(peaks[0].1.memory_bytes, 100); // 100 and 7 never overlap
        assert_eq!(peaks[1], (5, cpu(2.0)));
        assert!(peak_by_layer(&[], &[], &[], &[]).is_empty());
    }
}
