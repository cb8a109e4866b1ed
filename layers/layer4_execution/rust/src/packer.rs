//! The placement heuristic: jobs onto a budget of machines, scored by the genome.
//!
//! A machine is rented from time 0 until its longest job ends, and its jobs
//! run side by side, so they must fit its capacity together. Cost is
//! machine-hours (the sum of each machine's longest duration); a job that
//! fits nowhere once the budget is spent is rejected and its priority lost.
//!
//! **Construction.** A window holds the next `lookahead` jobs in arrival
//! order. Each step scores every (window job, feasible machine) pair and the
//! option of opening a machine, places the best pair (ties: earlier job,
//! then lower machine, then a new machine), and rejects window jobs that fit
//! nowhere. Scores:
//!
//! ```text
//! order(j)        = w_priority * p_j / p_max + w_size * s_j / C
//! existing(j, m)  = order(j) + w_fit * (used_m + s_j) / C
//!                            - w_hours * max(0, d_j - dur_m) / d_max
//!                            + w_fill * used_m / C
//! new(j)          = order(j) + w_fit * s_j / C - w_hours * d_j / d_max + open_bias
//! ```
//!
//! **Improvement.** Each of `passes` passes tries to close the least utilized
//! machine whose jobs all fit elsewhere for fewer machine-hours than it
//! costs, then re-inserts rejected jobs (highest priority first) where room
//! was freed. A pass that changes nothing ends the search early.
//!
//! **Quality** (higher is better, in [0, 1]) is
//! `accepted_priority_fraction * utilization`, where utilization is
//! `sum(size * duration of accepted jobs) / (C * machine_hours)`.

use crate::genome::Genome;
use crate::instance::{Instance, Job};
use std::collections::VecDeque;

const EPS: f64 = 1e-9;

/// One rented machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Capacity in use.
    pub used: f64,
    /// Longest duration among its jobs (how long it is rented).
    pub max_duration: f64,
    /// Indices of its jobs.
    pub jobs: Vec<usize>,
}

impl Machine {
    fn add(&mut self, j: usize, job: &Job) {
        self.used += job.size;
        self.max_duration = self.max_duration.max(job.duration);
        self.jobs.push(j);
    }
}

/// The outcome of a placement run.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Machines opened, in opening order.
    pub machines: Vec<Machine>,
    /// Jobs that fit nowhere.
    pub rejected: Vec<usize>,
    /// Number of placement scores computed (a native cost measure).
    pub evaluations: u64,
    /// Jobs moved by the improvement passes.
    pub relocations: u64,
    /// Improvement passes actually run.
    pub passes_run: u64,
}

/// Quality and cost figures of a placement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// `accepted_priority_fraction * utilization`, higher is better.
    pub quality: f64,
    /// Machines opened.
    pub machines_used: f64,
    /// Sum over machines of their longest job's duration.
    pub machine_hours: f64,
    /// Used capacity-time over rented capacity-time.
    pub utilization: f64,
    /// Jobs placed.
    pub accepted_jobs: f64,
    /// Jobs rejected.
    pub rejected_jobs: f64,
    /// Priority of accepted jobs over total priority.
    pub accepted_priority_fraction: f64,
}

struct Scales {
    capacity: f64,
    d_max: f64,
    p_max: f64,
}

impl Scales {
    fn of(inst: &Instance) -> Scales {
        let d_max = inst.jobs.iter().map(|j| j.duration).fold(0.0, f64::max);
        let p_max = inst.jobs.iter().map(|j| j.priority).fold(0.0, f64::max);
        Scales {
            capacity: inst.capacity,
            d_max: if d_max > 0.0 { d_max } else { 1.0 },
            p_max: if p_max > 0.0 { p_max } else { 1.0 },
        }
    }
}

fn order_score(g: &Genome, s: &Scales, job: &Job) -> f64 {
    g.w_priority * job.priority / s.p_max + g.w_size * job.size / s.capacity
}

fn existing_score(g: &Genome, s: &Scales, job: &Job, m: &Machine) -> f64 {
    g.w_fit * (m.used + job.size) / s.capacity
        - g.w_hours * (job.duration - m.max_duration).max(0.0) / s.d_max
        + g.w_fill * m.used / s.capacity
}

fn new_score(g: &Genome, s: &Scales, job: &Job) -> f64 {
    g.w_fit * job.size / s.capacity - g.w_hours * job.duration / s.d_max + g.open_bias
}

fn fits(m: &Machine, job: &Job, capacity: f64) -> bool {
    m.used + job.size <= capacity + EPS
}

/// Places the instance's jobs as the genome directs.
pub fn place(inst: &Instance, g: &Genome) -> Placement {
    let sc = Scales::of(inst);
    let budget = inst.max_machines as usize;
    let mut out = Placement {
        machines: Vec::new(),
        rejected: Vec::new(),
        evaluations: 0,
        relocations: 0,
        passes_run: 0,
    };
    let mut pending: VecDeque<usize> = (0..inst.jobs.len()).collect();
    let mut window: Vec<usize> = Vec::with_capacity(g.lookahead);
    loop {
        while window.len() < g.lookahead {
            match pending.pop_front() {
                Some(j) => window.push(j),
                None => break,
            }
        }
        if window.is_empty() {
            break;
        }
        let can_open = out.machines.len() < budget;
        let mut best: Option<(f64, usize, Option<usize>)> = None;
        let mut dead: Vec<usize> = Vec::new();
        for &j in &window {
            let job = &inst.jobs[j];
            let ord = order_score(g, &sc, job);
            let mut any = false;
            for (mi, m) in out.machines.iter().enumerate() {
                if !fits(m, job, sc.capacity) {
                    continue;
                }
                any = true;
                out.evaluations += 1;
                let s = ord + existing_score(g, &sc, job, m);
                if best.map_or(true, |b| s > b.0) {
                    best = Some((s, j, Some(mi)));
                }
            }
            if can_open {
                any = true;
                out.evaluations += 1;
                let s = ord + new_score(g, &sc, job);
                if best.map_or(true, |b| s > b.0) {
                    best = Some((s, j, None));
                }
            }
            if !any {
                dead.push(j);
            }
        }
        let placed = best.map(|(_, j, target)| {
            let job = &inst.jobs[j];
            match target {
                Some(mi) => out.machines[mi].add(j, job),
                None => {
                    let mut m = Machine {
                        used: 0.0,
                        max_duration: 0.0,
                        jobs: Vec::new(),
                    };
                    m.add(j, job);
                    out.machines.push(m);
                }
            }
            j
        });
        window.retain(|j| Some(*j) != placed && !dead.contains(j));
        out.rejected.extend(dead);
    }
    for _ in 0..g.passes {
        out.passes_run += 1;
        let closed = close_one_machine(inst, &sc, &mut out);
        let reinserted = reinsert_rejected(inst, &sc, budget, &mut out);
        if !closed && !reinserted {
            break;
        }
    }
    out
}

/// The feasible machine (other than `skip`) adding the fewest machine-hours,
/// ties broken by the tightest fit; `used`/`dur` are scratch copies.
fn best_target(
    job: &Job,
    used: &[f64],
    dur: &[f64],
    skip: Option<usize>,
    capacity: f64,
    evaluations: &mut u64,
) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64, f64)> = None;
    for mi in 0..used.len() {
        if Some(mi) == skip || used[mi] + job.size > capacity + EPS {
            continue;
        }
        *evaluations += 1;
        let extra = (job.duration - dur[mi]).max(0.0);
        let residual = capacity - used[mi] - job.size;
        let better = match best {
            None => true,
            Some((_, e, r)) => extra < e || (extra == e && residual < r),
        };
        if better {
            best = Some((mi, extra, residual));
        }
    }
    best.map(|(mi, extra, _)| (mi, extra))
}

fn close_one_machine(inst: &Instance, sc: &Scales, out: &mut Placement) -> bool {
    let area = |m: &Machine| -> f64 {
        let a: f64 = m
            .jobs
            .iter()
            .map(|&j| inst.jobs[j].size * inst.jobs[j].duration)
            .sum();
        a / (sc.capacity * m.max_duration)
    };
    let mut order: Vec<(f64, usize)> = out
        .machines
        .iter()
        .enumerate()
        .map(|(i, m)| (area(m), i))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for &(_, victim) in &order {
        let mut used: Vec<f64> = out.machines.iter().map(|m| m.used).collect();
        let mut dur: Vec<f64> = out.machines.iter().map(|m| m.max_duration).collect();
        let mut jobs = out.machines[victim].jobs.clone();
        jobs.sort_by(|&a, &b| inst.jobs[b].size.total_cmp(&inst.jobs[a].size));
        let mut moves = Vec::with_capacity(jobs.len());
        let mut added_hours = 0.0;
        for &j in &jobs {
            let job = &inst.jobs[j];
            match best_target(
                job,
                &used,
                &dur,
                Some(victim),
                sc.capacity,
                &mut out.evaluations,
            ) {
                Some((mi, extra)) => {
                    used[mi] += job.size;
                    dur[mi] = dur[mi].max(job.duration);
                    added_hours += extra;
                    moves.push((j, mi));
                }
                None => break,
            }
        }
        if moves.len() == jobs.len() && added_hours < out.machines[victim].max_duration - EPS {
            for (j, mi) in moves {
                out.machines[mi].add(j, &inst.jobs[j]);
                out.relocations += 1;
            }
            out.machines.remove(victim);
            return true;
        }
    }
    false
}

fn reinsert_rejected(inst: &Instance, sc: &Scales, budget: usize, out: &mut Placement) -> bool {
    if out.rejected.is_empty() {
        return false;
    }
    let mut todo = std::mem::take(&mut out.rejected);
    todo.sort_by(|&a, &b| {
        inst.jobs[b]
            .priority
            .total_cmp(&inst.jobs[a].priority)
            .then(a.cmp(&b))
    });
    let mut changed = false;
    for j in todo {
        let job = &inst.jobs[j];
        let used: Vec<f64> = out.machines.iter().map(|m| m.used).collect();
        let dur: Vec<f64> = out.machines.iter().map(|m| m.max_duration).collect();
        match best_target(job, &used, &dur, None, sc.capacity, &mut out.evaluations) {
            Some((mi, _)) => out.machines[mi].add(j, job),
            None if out.machines.len() < budget => {
                let mut m = Machine {
                    used: 0.0,
                    max_duration: 0.0,
                    jobs: Vec::new(),
                };
                m.add(j, job);
                out.machines.push(m);
            }
            None => {
                out.rejected.push(j);
                continue;
            }
        }
        out.relocations += 1;
        changed = true;
    }
    out.rejected.sort_unstable();
    changed
}

impl Placement {
    /// Quality and cost figures.
    pub fn report(&self, inst: &Instance) -> Report {
        let hours: f64 = self.machines.iter().map(|m| m.max_duration).sum();
        let accepted: Vec<&Job> = self
            .machines
            .iter()
            .flat_map(|m| m.jobs.iter().map(|&j| &inst.jobs[j]))
            .collect();
        let area: f64 = accepted.iter().map(|j| j.size * j.duration).sum();
        let utilization = if hours > 0.0 {
            area / (inst.capacity * hours)
        } else {
            1.0
        };
        let total_p: f64 = inst.jobs.iter().map(|j| j.priority).sum();
        let acc_p: f64 = accepted.iter().map(|j| j.priority).sum();
        let apf = if total_p > 0.0 {
            acc_p / total_p
        } else if inst.jobs.is_empty() {
            1.0
        } else {
            accepted.len() as f64 / inst.jobs.len() as f64
        };
        Report {
            quality: apf * utilization,
            machines_used: self.machines.len() as f64,
            machine_hours: hours,
            utilization,
            accepted_jobs: accepted.len() as f64,
            rejected_jobs: self.rejected.len() as f64,
            accepted_priority_fraction: apf,
        }
    }

    /// Checks the placement is feasible and complete: every job placed once or
    /// rejected, no machine over capacity or with stale totals, budget kept.
    pub fn check(&self, inst: &Instance) -> Result<(), String> {
        if self.machines.len() > inst.max_machines as usize {
            return Err(format!(
                "{} machines exceed the budget {}",
                self.machines.len(),
                inst.max_machines
            ));
        }
        let mut seen = vec![0u32; inst.jobs.len()];
        for (mi, m) in self.machines.iter().enumerate() {
            if m.jobs.is_empty() {
                return Err(format!("machine {mi} is empty"));
            }
            let used: f64 = m.jobs.iter().map(|&j| inst.jobs[j].size).sum();
            let dur = m
                .jobs
                .iter()
                .map(|&j| inst.jobs[j].duration)
                .fold(0.0, f64::max);
            if used > inst.capacity + EPS {
                return Err(format!("machine {mi} overfull: {used} > {}", inst.capacity));
            }
            if (used - m.used).abs() > 1e-6 || dur != m.max_duration {
                return Err(format!("machine {mi} has stale totals"));
            }
            for &j in &m.jobs {
                seen[j] += 1;
            }
        }
        for &j in &self.rejected {
            seen[j] += 1;
        }
        match seen.iter().position(|&c| c != 1) {
            Some(j) => Err(format!("job {j} accounted {} times", seen[j])),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genome::{Genome, BAD_GENOME, GOOD_GENOME};
    use crate::instance::generate;

    fn genome(p: [f64; 8]) -> Genome {
        Genome::from_params(&p).unwrap()
    }

    #[test]
    fn placements_are_feasible_for_many_genomes() {
        let mut rng = crate::instance::SplitMix64::new(99);
        for seed in 0..12 {
            let inst = generate(seed, 120, 100, 100 + (seed as u32 % 4) * 10);
            for _ in 0..6 {
                let mut p = [0.0; 8];
                for v in p.iter_mut() {
                    *v = (rng.range(0, 2000) as f64 - 1000.0) / 250.0;
                }
                let pl = place(&inst, &genome(p));
                pl.check(&inst).unwrap();
            }
            for p in [GOOD_GENOME, BAD_GENOME] {
                place(&inst, &genome(p)).check(&inst).unwrap();
            }
        }
    }

    #[test]
    fn check_catches_broken_placements() {
        let inst = generate(3, 30, 100, 110);
        let good = place(&inst, &genome(GOOD_GENOME));
        let mut lost = good.clone();
        lost.machines[0].jobs.pop();
        assert!(lost.check(&inst).is_err());
        let mut twice = good.clone();
        let j = twice.machines[0].jobs[0];
        twice.rejected.push(j);
        assert!(twice.check(&inst).unwrap_err().contains("accounted 2"));
        let mut overfull = good;
        let extra = overfull.machines[1].jobs.clone();
        for j in extra {
            overfull.machines[0].add(j, &inst.jobs[j]);
        }
        overfull.machines.remove(1);
        assert!(overfull.check(&inst).is_err());
    }

    #[test]
    fn deterministic() {
        let inst = generate(11, 150, 100, 110);
        let a = place(&inst, &genome(GOOD_GENOME));
        let b = place(&inst, &genome(GOOD_GENOME));
        assert_eq!(a, b);
        assert_eq!(a.report(&inst), b.report(&inst));
    }

    #[test]
    fn good_genome_beats_bad_genome() {
        for seed in [1, 2, 3, 4, 5] {
            let inst = generate(seed, 200, 100, 110);
            let good = place(&inst, &genome(GOOD_GENOME)).report(&inst);
            let bad = place(&inst, &genome(BAD_GENOME)).report(&inst);
            assert!(
                good.quality > bad.quality + 0.1,
                "seed {seed}: good {good:?} vs bad {bad:?}"
            );
            assert!(good.accepted_priority_fraction >= bad.accepted_priority_fraction);
        }
    }

    #[test]
    fn more_effort_costs_more_and_does_not_hurt() {
        let inst = generate(21, 200, 100, 105);
        let mut cheap = GOOD_GENOME;
        cheap[6] = 0.0;
        cheap[7] = 0.0;
        let lo = place(&inst, &genome(cheap));
        let hi = place(&inst, &genome(GOOD_GENOME));
        assert!(
            hi.evaluations > 5 * lo.evaluations,
            "{} vs {}",
            hi.evaluations,
            lo.evaluations
        );
        assert!(hi.report(&inst).quality >= lo.report(&inst).quality);
    }

    #[test]
    fn priority_weight_protects_high_priority_jobs_under_a_tight_budget() {
        let inst = generate(8, 200, 100, 80);
        let mut blind = GOOD_GENOME;
        blind[3] = 0.0;
        blind[7] = 0.0;
        let mut aware = GOOD_GENOME;
        aware[3] = 20.0;
        aware[7] = 0.0;
        let b = place(&inst, &genome(blind)).report(&inst);
        let a = place(&inst, &genome(aware)).report(&inst);
        assert!(b.rejected_jobs > 0.0);
        assert!(
            a.accepted_priority_fraction > b.accepted_priority_fraction,
            "{a:?} vs {b:?}"
        );
    }

    #[test]
    fn small_instance_by_hand() {
        // Two machines of 10; jobs 6,4 (long) and 5,5 (short): the only plan
        // keeping every job pairs 6+4 and 5+5 -- one long and one short machine.
        // Tight fit + duration-aware weights find it (traced by hand: 5, 5, 6, 4).
        let inst = Instance {
            capacity: 10.0,
            max_machines: 2,
            jobs: vec![
                Job {
                    size: 6.0,
                    duration: 10.0,
                    priority: 1.0,
                },
                Job {
                    size: 5.0,
                    duration: 1.0,
                    priority: 1.0,
                },
                Job {
                    size: 4.0,
                    duration: 10.0,
                    priority: 1.0,
                },
                Job {
                    size: 5.0,
                    duration: 1.0,
                    priority: 1.0,
                },
            ],
        };
        let pl = place(&inst, &genome([2.0, 3.0, 0.0, 0.0, 1.0, -1.0, 1.0, 1.0]));
        pl.check(&inst).unwrap();
        assert_eq!(pl.machines[0].jobs, vec![1, 3]);
        assert_eq!(pl.machines[1].jobs, vec![0, 2]);
        let r = pl.report(&inst);
        assert_eq!(r.machines_used, 2.0);
        assert_eq!(r.rejected_jobs, 0.0);
        assert_eq!(r.machine_hours, 11.0);
        assert!((r.quality - 110.0 / 110.0).abs() < 1e-12);
        let empty = Instance {
            capacity: 1.0,
            max_machines: 1,
            jobs: vec![],
        };
        let r = place(&empty, &genome(BAD_GENOME)).report(&empty);
        assert_eq!((r.quality, r.machines_used), (1.0, 0.0));
    }
}
