//! Online packing: each item into the highest-priority open bin with room,
//! or into a new bin.
//!
//! **Choice rule** (the JAX twin follows it exactly). Among the open bins with
//! room and the new-bin option, take the highest priority; among equal
//! priorities the bin with the least remaining room, then the earliest opened;
//! the new bin only when it is strictly highest (or nothing else fits).
//!
//! **Two paths, one rule.** Without the opening-order term (`first_fit == 0`)
//! the priority depends only on (item size, remaining room), so bins with the
//! same room are interchangeable for the count: the kernel keeps a count of
//! open bins per remaining room and scans the `C + 1` rooms from a table of
//! priorities built once per run. With it, the kernel scans every open bin.
//! A test runs both paths on the same genomes and instances.
//!
//! **Special cases.** First Fit (`first_fit = 1`, rest 0): priority is
//! `-i / n`, so the earliest bin with room wins and a new bin (`i` = number of
//! open bins) only when none has room. Best Fit (`best_fit = 1`, rest 0):
//! priority is `-(r - s) / C`, so the tightest bin wins, the earliest among
//! equals, and the new bin (largest residual) only when none has room.

use crate::genome::Genome;
use crate::instance::Instance;

/// The outcome of packing one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packing {
    /// Bins opened.
    pub bins_used: u64,
    /// `ceil(sum(items) / capacity)`.
    pub l1_bound: u64,
    /// Priorities computed (a native cost measure).
    pub priority_evaluations: u64,
}

impl Packing {
    /// Bins used over the L1 bound, in percent.
    pub fn excess_pct(&self) -> f64 {
        100.0 * (self.bins_used as f64 - self.l1_bound as f64) / self.l1_bound as f64
    }
}

/// Packs `instance` with `genome` (see the module docs for the rule).
pub fn pack(instance: &Instance, genome: &Genome) -> Packing {
    let (bins_used, priority_evaluations) = if genome.first_fit == 0.0 {
        pack_by_room(instance, genome)
    } else {
        pack_by_bin(instance, genome)
    };
    Packing {
        bins_used,
        l1_bound: instance.l1_bound(),
        priority_evaluations,
    }
}

/// Open bins counted per remaining room; priorities from a (size, room) table.
fn pack_by_room(instance: &Instance, genome: &Genome) -> (u64, u64) {
    let c = instance.capacity as usize;
    let table = PriorityTable::new(genome, instance.capacity);
    let mut open_with_room = vec![0u32; c + 1];
    let (mut bins, mut evaluations) = (0u64, table.evaluations);
    for &size in &instance.items {
        let s = size as usize;
        let row = table.row(s);
        // Rooms ascending, strict `>`: equal priorities keep the least room.
        let mut best: Option<(usize, f64)> = None;
        for (room, (&count, &p)) in (s..c).zip(open_with_room[s..c].iter().zip(&row[s..c])) {
            if count > 0 && best.map_or(true, |(_, bp)| p > bp) {
                best = Some((room, p));
            }
        }
        evaluations += 1;
        let new_bin = row[c] + genome.new_bin;
        match best {
            Some((room, p)) if p >= new_bin => {
                open_with_room[room] -= 1;
                open_with_room[room - s] += 1;
            }
            _ => {
                bins += 1;
                open_with_room[c - s] += 1;
            }
        }
    }
    (bins, evaluations)
}

/// Every open bin scanned in opening order (the opening-order term needs it).
fn pack_by_bin(instance: &Instance, genome: &Genome) -> (u64, u64) {
    let c = instance.capacity;
    let n = instance.items.len() as f64;
    let table = PriorityTable::new(genome, c);
    let mut rooms: Vec<u32> = Vec::new();
    let mut evaluations = table.evaluations;
    for &size in &instance.items {
        let row = table.row(size as usize);
        let order = |i: usize| genome.first_fit * i as f64 / n;
        // (priority, room, index): higher priority, then less room, then earlier.
        let mut best: Option<(usize, f64, u32)> = None;
        for (i, &room) in rooms.iter().enumerate() {
            if room < size {
                continue;
            }
            let p = row[room as usize] - order(i);
            evaluations += 1;
            let better = match best {
                None => true,
                Some((_, bp, br)) => p > bp || (p == bp && room < br),
            };
            if better {
                best = Some((i, p, room));
            }
        }
        let new_bin = row[c as usize] + genome.new_bin - order(rooms.len());
        evaluations += 1;
        match best {
            Some((i, p, _)) if p >= new_bin => rooms[i] -= size,
            _ => rooms.push(c - size),
        }
    }
    (rooms.len() as u64, evaluations)
}

/// Priorities of every (size, room) pair with `room >= size`, built once per run.
struct PriorityTable {
    width: usize,
    values: Vec<f64>,
    evaluations: u64,
}

impl PriorityTable {
    fn new(genome: &Genome, capacity: u32) -> Self {
        let width = capacity as usize + 1;
        let mut values = vec![0.0; width * width];
        let mut evaluations = 0;
        for size in 1..=capacity {
            for room in size..=capacity {
                values[size as usize * width + room as usize] =
                    genome.priority(size, room, capacity);
                evaluations += 1;
            }
        }
        PriorityTable {
            width,
            values,
            evaluations,
        }
    }

    fn row(&self, size: usize) -> &[f64] {
        &self.values[size * self.width..(size + 1) * self.width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genome::{BEST_FIT, FIRST_FIT, GENOME_LEN, SEARCH_LEN};

    fn genome(params: &[f64]) -> Genome {
        Genome::from_params(params).unwrap()
    }

    /// Textbook First Fit and Best Fit, written independently of the kernel.
    fn reference(capacity: u32, items: &[u32], best: bool) -> u64 {
        let mut rooms: Vec<u32> = Vec::new();
        for &s in items {
            let fits = rooms.iter().enumerate().filter(|(_, &r)| r >= s);
            let chosen = if best {
                fits.min_by_key(|&(i, &r)| (r, i)).map(|(i, _)| i)
            } else {
                fits.map(|(i, _)| i).next()
            };
            match chosen {
                Some(i) => rooms[i] -= s,
                None => rooms.push(capacity - s),
            }
        }
        rooms.len() as u64
    }

    /// A small deterministic generator (SplitMix64) for test instances.
    fn items(seed: u64, n: usize, lo: u32, hi: u32) -> Vec<u32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                lo + ((z ^ (z >> 31)) % (hi - lo + 1) as u64) as u32
            })
            .collect()
    }

    #[test]
    fn first_fit_and_best_fit_are_exact_special_cases() {
        for seed in 0..20 {
            let (c, lo, hi) = if seed % 2 == 0 {
                (150, 20, 100)
            } else {
                (100, 1, 100)
            };
            let its = items(seed, 300, lo, hi);
            let inst = Instance::new(c, its.clone()).unwrap();
            assert_eq!(
                pack(&inst, &genome(&FIRST_FIT)).bins_used,
                reference(c, &its, false)
            );
            assert_eq!(
                pack(&inst, &genome(&BEST_FIT)).bins_used,
                reference(c, &its, true)
            );
        }
    }

    #[test]
    fn both_paths_agree_without_the_order_term() {
        for seed in 0..30u64 {
            let its = items(seed + 100, 400, 1, 100);
            let inst = Instance::new(100, its).unwrap();
            let mut params = [0.0; GENOME_LEN];
            for (k, p) in params.iter_mut().enumerate().take(SEARCH_LEN) {
                *p = (items(seed * 31 + k as u64, 1, 0, 2000)[0] as f64 - 1000.0) / 500.0;
            }
            let g = genome(&params);
            let (by_room, _) = pack_by_room(&inst, &g);
            let (by_bin, _) = pack_by_bin(&inst, &g);
            assert_eq!(by_room, by_bin, "seed {seed}");
        }
    }

    #[test]
    fn new_bin_bias_opens_bins_early() {
        let inst = Instance::new(10, vec![5, 5, 5, 5]).unwrap();
        let mut eager = BEST_FIT;
        eager[1] = 10.0;
        assert_eq!(pack(&inst, &genome(&BEST_FIT)).bins_used, 2);
        assert_eq!(pack(&inst, &genome(&eager)).bins_used, 4);
    }

    #[test]
    fn excess_over_l1() {
        let p = Packing {
            bins_used: 21,
            l1_bound: 20,
            priority_evaluations: 0,
        };
        assert!((p.excess_pct() - 5.0).abs() < 1e-12);
    }
}
