//! Byte-level entry points behind the WASM exports (see [`crate::wire`] for
//! the encoding of `u8`/`u32`/`u64`/`f64`/`str`).
//!
//! # `planning_schedule`
//!
//! Request: `u32 max_parallel_tasks` (0 = none), `f64 available_cores`,
//! `u64 available_memory_bytes` (0 = unknown), `u32 tasks`, then per task
//! `str id`, `u64 duration_ms`, `u32 priority`, `u32 layer`, the requested
//! resources (`f64 cpu_cores`, `u64 memory_bytes`, `u32 gpu_count`,
//! `u64 gpu_memory_bytes`, `u64 storage_bytes`), `u32 deps`, that many
//! `str` dependency ids.
//!
//! Response: `u32 parallel_limit` (0 = unlimited), `u64 makespan_ms`;
//! `u32 n` + `n x u32` topological order; `u32 n` + `n x u32` timeline order
//! (by start); then per task in input order `u64 start`, `u64 end`,
//! `u64 slack`, `u64 earliest_start`, `u64 latest_start` (both CPM),
//! `u32 level`, `f64 cpu_cores`, `u64 memory_bytes` (sized); `u32 m` +
//! `m x u32` critical path; `u32 layers`, per layer `u32 layer`, `f64 cpu`,
//! `u64 memory`, `u32 gpus`, `u64 gpu_memory`, `u64 storage` (peaks); then
//! the same five values for the whole plan (peak over all layers at once).
//!
//! # `planning_score_risks`
//!
//! Request: `u32 risks`, per risk `f64 probability`, `u32 impact`.
//! Response: `u32 risks`, highest score first, per risk `u32 index`,
//! `f64 score`, `u8 level` (1 low .. 4 critical).
//!
//! # Errors (status: details)
//!
//! 1 malformed request: `[]` or `[task index, field]`;
//! [`STATUS_DUPLICATE_ID`]: `[index, id]`; [`STATUS_UNKNOWN_DEPENDENCY`]:
//! `[task index, dependency index, task id, dependency id]`;
//! [`STATUS_CYCLE`]: the cycle's ids in dependency order;
//! [`STATUS_BAD_RISK`]: `[index, reason]`.

use crate::dag::{Dag, DagError, TaskSpec};
use crate::resources::{parallel_limit, peak_by_layer, size_tasks, Capacity, Resources};
use crate::risk::rank;
use crate::schedule::schedule;
use crate::wire::{ApiError, Reader, Writer, STATUS_BAD_REQUEST};

/// Two tasks share an id.
pub const STATUS_DUPLICATE_ID: i32 = 2;
/// A dependency names no task.
pub const STATUS_UNKNOWN_DEPENDENCY: i32 = 3;
/// The dependencies form a cycle.
pub const STATUS_CYCLE: i32 = 4;
/// A risk's probability or impact is out of range.
pub const STATUS_BAD_RISK: i32 = 5;

fn error(code: i32, message: String, details: Vec<String>) -> ApiError {
    ApiError {
        code,
        message,
        details,
    }
}

impl From<DagError> for ApiError {
    fn from(e: DagError) -> Self {
        let message = e.to_string();
        match e {
            DagError::DuplicateId { index, id } => {
                error(STATUS_DUPLICATE_ID, message, vec![index.to_string(), id])
            }
            DagError::UnknownDependency {
                task_index,
                dep_index,
                task,
                dep,
            } => error(
                STATUS_UNKNOWN_DEPENDENCY,
                message,
                vec![task_index.to_string(), dep_index.to_string(), task, dep],
            ),
            DagError::Cycle(ids) => error(STATUS_CYCLE, message, ids),
        }
    }
}

struct Request {
    max_parallel: u32,
    capacity: Capacity,
    tasks: Vec<TaskSpec>,
    priority: Vec<u32>,
    layers: Vec<u32>,
    requested: Vec<Resources>,
}

fn read_request(input: &[u8]) -> Result<Request, ApiError> {
    let mut r = Reader::new(input);
    let max_parallel = r.u32()?;
    let cores = r.f64()?;
    let memory_bytes = r.u64()?;
    if !(cores.is_finite() && cores >= 0.0) {
        return Err(ApiError::new(
            STATUS_BAD_REQUEST,
            format!("available cores {cores} must be finite and >= 0"),
        ));
    }
    let n = r.count(60)?;
    let mut req = Request {
        max_parallel,
        capacity: Capacity {
            cores,
            memory_bytes,
        },
        tasks: Vec::with_capacity(n),
        priority: Vec::with_capacity(n),
        layers: Vec::with_capacity(n),
        requested: Vec::with_capacity(n),
    };
    for index in 0..n {
        let id = r.str()?;
        let duration_ms = r.u64()?;
        req.priority.push(r.u32()?);
        req.layers.push(r.u32()?);
        let res = Resources {
            cpu_cores: r.f64()?,
            memory_bytes: r.u64()?,
            gpu_count: r.u32()?,
            gpu_memory_bytes: r.u64()?,
            storage_bytes: r.u64()?,
        };
        if !(res.cpu_cores.is_finite() && res.cpu_cores >= 0.0) {
            return Err(error(
                STATUS_BAD_REQUEST,
                format!(
                    "tasks[{index}]: cpu_cores {} must be finite and >= 0",
                    res.cpu_cores
                ),
                vec![index.to_string(), "cpu_cores".into()],
            ));
        }
        req.requested.push(res);
        let nd = r.count(4)?;
        let mut deps = Vec::with_capacity(nd);
        for _ in 0..nd {
            deps.push(r.str()?);
        }
        req.tasks.push(TaskSpec {
            id,
            duration_ms,
            deps,
        });
    }
    r.finish()?;
    Ok(req)
}

fn indices(w: &mut Writer, items: &[usize]) {
    w.count(items.len());
    for &i in items {
        w.count(i);
    }
}

fn write_resources(w: &mut Writer, p: &Resources) {
    w.f64(p.cpu_cores)
        .u64(p.memory_bytes)
        .u32(p.gpu_count)
        .u64(p.gpu_memory_bytes)
        .u64(p.storage_bytes);
}

/// Validates the task graph, sizes the tasks and schedules them.
pub fn plan_schedule(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req = read_request(input)?;
    let dag = Dag::new(&req.tasks)?;
    let limit = parallel_limit(req.max_parallel, req.capacity.cores);
    let sized = size_tasks(&dag, &req.requested, req.capacity, limit);
    let sched = schedule(&dag, limit, &req.priority);
    let levels = dag.levels();
    let peaks = peak_by_layer(&req.layers, &sized, &sched.start, &sched.end);
    let one_layer = vec![0u32; dag.len()];
    let overall = peak_by_layer(&one_layer, &sized, &sched.start, &sched.end)
        .pop()
        .map(|(_, p)| p)
        .unwrap_or_default();

    let mut w = Writer::new();
    w.count(sched.parallel_limit).u64(sched.makespan);
    indices(&mut w, dag.topo_order());
    indices(&mut w, &sched.timeline(&dag));
    for v in 0..dag.len() {
        w.u64(sched.start[v])
            .u64(sched.end[v])
            .u64(sched.slack[v])
            .u64(sched.cpm.earliest_start[v])
            .u64(sched.cpm.latest_start[v])
            .count(levels[v])
            .f64(sized[v].cpu_cores)
            .u64(sized[v].memory_bytes);
    }
    indices(&mut w, &sched.cpm.critical_path);
    w.count(peaks.len());
    for (layer, p) in peaks {
        w.u32(layer);
        write_resources(&mut w, &p);
    }
    write_resources(&mut w, &overall);
    Ok(w.into_bytes())
}

/// Scores and ranks risks.
pub fn score_risks(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let n = r.count(12)?;
    let mut risks = Vec::with_capacity(n);
    for _ in 0..n {
        risks.push((r.f64()?, r.u32()?));
    }
    r.finish()?;
    let ranked = rank(&risks).map_err(|e| {
        error(
            STATUS_BAD_RISK,
            e.to_string(),
            vec![e.index.to_string(), e.reason],
        )
    })?;
    let mut w = Writer::new();
    w.count(ranked.len());
    for (index, score, level) in ranked {
        w.count(index).f64(score).u8(level as u8);
    }
    Ok(w.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    type T<'a> = (&'a str, u64, u32, &'a [&'a str]);

    fn request(limit: u32, cores: f64, mem: u64, tasks: &[T]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(limit).f64(cores).u64(mem).count(tasks.len());
        for (id, d, layer, deps) in tasks {
            w.str(id).u64(*d).u32(50).u32(*layer);
            w.f64(0.0).u64(0).u32(0).u64(0).u64(0);
            w.count(deps.len());
            for dep in deps.iter() {
                w.str(dep);
            }
        }
        w.into_bytes()
    }

    fn u32s(r: &mut Reader) -> Vec<u32> {
        let n = r.u32().unwrap();
        (0..n).map(|_| r.u32().unwrap()).collect()
    }

    #[test]
    fn schedule_response_has_every_section() {
        let req = request(
            0,
            4.0,
            0,
            &[("b", 20, 4, &["a"]), ("a", 10, 4, &[]), ("c", 5, 5, &["a"])],
        );
        let out = plan_schedule(&req).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.u32().unwrap(), 0); // 3 tasks under a 4-core limit: unlimited
        assert_eq!(r.u64().unwrap(), 30);
        assert_eq!(u32s(&mut r), vec![1, 0, 2]);
        assert_eq!(u32s(&mut r), vec![1, 0, 2]);
        let mut rows = Vec::new();
        for _ in 0..3 {
            let row: Vec<u64> = (0..5).map(|_| r.u64().unwrap()).collect();
            let level = r.u32().unwrap();
            let cpu = r.f64().unwrap();
            let mem = r.u64().unwrap();
            rows.push((row, level, cpu, mem));
        }
        assert_eq!(rows[0].0, vec![10, 30, 0, 10, 10]);
        assert_eq!(rows[2].0, vec![10, 15, 15, 10, 25]);
        assert_eq!((rows[1].1, rows[1].2), (0, 4.0));
        assert_eq!((rows[0].1, rows[0].2), (1, 2.0));
        assert_eq!(u32s(&mut r), vec![1, 0]);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.u32().unwrap(), 4);
        assert_eq!(r.f64().unwrap(), 4.0); // a (4 cores) then b (2): never together
        assert_eq!((r.u64().unwrap(), r.u32().unwrap()), (0, 0));
        assert_eq!((r.u64().unwrap(), r.u64().unwrap()), (0, 0));
        assert_eq!(r.u32().unwrap(), 5);
        assert_eq!(r.f64().unwrap(), 2.0); // c alone: two tasks on level 1 share 4 cores
        r.u64().unwrap();
        r.u32().unwrap();
        r.u64().unwrap();
        r.u64().unwrap();
        // Whole plan: b (2) and c (2) overlap on [10, 15).
        assert_eq!(r.f64().unwrap(), 4.0);
        r.u64().unwrap();
        r.u32().unwrap();
        r.u64().unwrap();
        r.u64().unwrap();
        r.finish().unwrap();
    }

    #[test]
    fn graph_errors_carry_details() {
        let e = plan_schedule(&request(
            0,
            0.0,
            0,
            &[("a", 1, 4, &["b"]), ("b", 1, 4, &["a"])],
        ))
        .unwrap_err();
        assert_eq!(e.code, STATUS_CYCLE);
        assert_eq!(e.details, vec!["a", "b"]);
        assert_eq!(e.message, "dependency cycle: a -> b -> a");
        let e = plan_schedule(&request(0, 0.0, 0, &[("a", 1, 4, &["nope"])])).unwrap_err();
        assert_eq!(e.code, STATUS_UNKNOWN_DEPENDENCY);
        assert_eq!(e.details, vec!["0", "0", "a", "nope"]);
        let e =
            plan_schedule(&request(0, 0.0, 0, &[("a", 1, 4, &[]), ("a", 1, 4, &[])])).unwrap_err();
        assert_eq!((e.code, e.details[0].as_str()), (STATUS_DUPLICATE_ID, "1"));
        let e = plan_schedule(&request(0, f64::NAN, 0, &[])).unwrap_err();
        assert_eq!(e.code, STATUS_BAD_REQUEST);
        assert_eq!(plan_schedule(&[0; 3]).unwrap_err().code, STATUS_BAD_REQUEST);
    }

    #[test]
    fn risks_are_ranked_and_validated() {
        let mut w = Writer::new();
        w.count(2).f64(0.2).u32(2).f64(0.9).u32(5);
        let out = score_risks(&w.into_bytes()).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(
            (r.u32().unwrap(), r.f64().unwrap(), r.u8().unwrap()),
            (1, 4.5, 4)
        );
        assert_eq!(
            (r.u32().unwrap(), r.f64().unwrap(), r.u8().unwrap()),
            (0, 0.4, 1)
        );
        r.finish().unwrap();
        let mut w = Writer::new();
        w.count(1).f64(0.5).u32(0);
        let e = score_risks(&w.into_bytes()).unwrap_err();
        assert_eq!(e.code, STATUS_BAD_RISK);
        assert_eq!(e.details[0], "0");
    }
}
