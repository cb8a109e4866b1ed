//! Byte-level entry points behind the WASM exports (see [`crate::wire`] for
//! the encoding of `u8`/`u32`/`u64`/`f64`/`str`).
//!
//! An amount on the wire is `f64 cpu_cores`, `u64 memory_bytes`,
//! `u32 gpu_count`, `u64 gpu_memory_bytes`, `u64 storage_bytes`.
//!
//! # `resources_price`
//!
//! Request: five `f64` rates (`CostRates` field order), `u32 n`, per item an
//! amount and `u32 duration_minutes`. Response: `u32 n`, per item five `f64`
//! per-hour shares, `f64 per_hour`, `f64 total` (see [`crate::cost`]).
//!
//! # `resources_solve`
//!
//! Request: `u8 mode` (0 place all that fit, 1 stop at the first miss),
//! `u32 nodes`, per node its capacity and free amounts (`f64 cpu`,
//! `u64 memory`, `u64 storage` each), `u32 devices`, per device
//! `u64 memory_bytes`, `u8 free`; then `u32 requests`, per request an amount.
//! Response: `u32 n`, per request `u8 outcome` and: 0 placed: `u32 node`,
//! `u32 k`, `k x u32` device indices; 1 no room now / 2 too large:
//! `u8 dimension` (field order, 0 `cpu_cores` .. 4 `storage_bytes`),
//! `f64 requested`, `f64 available`; 3 not attempted: nothing (see
//! [`crate::solver`]).
//!
//! # Errors (status: details)
//!
//! 1 malformed request: `[]`; [`STATUS_BAD_VALUE`]: `[field path]`, e.g.
//! `rates.usd_per_gpu_hour`, `requests[2].gpu_memory_bytes`,
//! `nodes[0].free.cpu_cores`.

use crate::amounts::{Amounts, Dimension};
use crate::cost::{price, CostError, Rates};
use crate::solver::{solve, Device, Mode, Node, Outcome};
use crate::wire::{ApiError, Reader, Writer, STATUS_BAD_REQUEST};

/// A rate or amount is out of range; the detail is the field path.
pub const STATUS_BAD_VALUE: i32 = 2;

/// Bytes of one amount on the wire.
const AMOUNT_BYTES: usize = 8 + 8 + 4 + 8 + 8;

fn bad_value(path: String, why: &str) -> ApiError {
    ApiError {
        code: STATUS_BAD_VALUE,
        message: format!("{path} {why}"),
        details: vec![path],
    }
}

fn read_amounts(r: &mut Reader) -> Result<Amounts, ApiError> {
    Ok(Amounts {
        cpu_cores: r.f64()?,
        memory_bytes: r.u64()?,
        gpu_count: r.u32()?,
        gpu_memory_bytes: r.u64()?,
        storage_bytes: r.u64()?,
    })
}

fn check_amounts(a: &Amounts, path: &str) -> Result<(), ApiError> {
    match a.invalid_field() {
        Some(Dimension::CpuCores) => Err(bad_value(
            format!("{path}.cpu_cores"),
            "must be finite and >= 0",
        )),
        Some(d) => Err(bad_value(
            format!("{path}.{d}"),
            "needs gpu_count of at least 1",
        )),
        None => Ok(()),
    }
}

/// `resources_price`: prices each item at the given rates.
pub fn price_items(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let rates = Rates {
        cpu_core_hour: r.f64()?,
        memory_gib_hour: r.f64()?,
        gpu_hour: r.f64()?,
        gpu_memory_gib_hour: r.f64()?,
        storage_gib_hour: r.f64()?,
    };
    if let Some(name) = rates.invalid_rate() {
        return Err(bad_value(
            format!("rates.{name}"),
            "must be finite and >= 0",
        ));
    }
    let n = r.count(AMOUNT_BYTES + 4)?;
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let a = read_amounts(&mut r)?;
        check_amounts(&a, &format!("items[{i}]"))?;
        items.push((a, r.u32()?));
    }
    r.finish()?;
    let mut w = Writer::new();
    w.count(n);
    for (a, minutes) in &items {
        // Rates and amounts were checked above, with their field paths.
        let c = price(&rates, a, *minutes)
            .map_err(|e: CostError| ApiError::new(STATUS_BAD_VALUE, e.to_string()))?;
        for s in c.shares {
            w.f64(s);
        }
        w.f64(c.per_hour).f64(c.total);
    }
    Ok(w.into_bytes())
}

fn read_node(r: &mut Reader, index: usize) -> Result<Node, ApiError> {
    let mut node = Node::default();
    for a in [&mut node.capacity, &mut node.free] {
        a.cpu_cores = r.f64()?;
        a.memory_bytes = r.u64()?;
        a.storage_bytes = r.u64()?;
    }
    let path = format!("nodes[{index}]");
    let (cap, free) = (&node.capacity, &node.free);
    for (part, a) in [("capacity", cap), ("free", free)] {
        if !(a.cpu_cores.is_finite() && a.cpu_cores >= 0.0) {
            return Err(bad_value(
                format!("{path}.{part}.cpu_cores"),
                "must be finite and >= 0",
            ));
        }
    }
    let over = [
        (free.cpu_cores > cap.cpu_cores, "cpu_cores"),
        (free.memory_bytes > cap.memory_bytes, "memory_bytes"),
        (free.storage_bytes > cap.storage_bytes, "storage_bytes"),
    ];
    if let Some((_, name)) = over.iter().find(|(o, _)| *o) {
        return Err(bad_value(
            format!("{path}.free.{name}"),
            "exceeds the node's capacity",
        ));
    }
    let devices = r.count(9)?;
    for _ in 0..devices {
        let memory_bytes = r.u64()?;
        let free = match r.u8()? {
            0 => false,
            1 => true,
            other => {
                return Err(ApiError::new(
                    STATUS_BAD_REQUEST,
                    format!("device free flag {other} is not 0 or 1"),
                ))
            }
        };
        node.devices.push(Device { memory_bytes, free });
    }
    Ok(node)
}

/// `resources_solve`: places the requests onto the nodes.
pub fn solve_requests(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let mode = match r.u8()? {
        0 => Mode::PlaceAllThatFit,
        1 => Mode::StopAtFirstMiss,
        other => {
            return Err(ApiError::new(
                STATUS_BAD_REQUEST,
                format!("mode {other} is not 0 or 1"),
            ))
        }
    };
    let n = r.count(52)?;
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        nodes.push(read_node(&mut r, i)?);
    }
    let m = r.count(AMOUNT_BYTES)?;
    let mut requests = Vec::with_capacity(m);
    for i in 0..m {
        let a = read_amounts(&mut r)?;
        check_amounts(&a, &format!("requests[{i}]"))?;
        requests.push(a);
    }
    r.finish()?;
    let mut w = Writer::new();
    w.count(m);
    for outcome in solve(&mut nodes, &requests, mode) {
        match outcome {
            Outcome::Placed { node, devices } => {
                w.u8(0).count(node).count(devices.len());
                for d in devices {
                    w.count(d);
                }
            }
            Outcome::NoRoom {
                dimension,
                requested,
                available,
            } => {
                w.u8(1).u8(dimension as u8).f64(requested).f64(available);
            }
            Outcome::TooLarge {
                dimension,
                requested,
                available,
            } => {
                w.u8(2).u8(dimension as u8).f64(requested).f64(available);
            }
            Outcome::NotAttempted => {
                w.u8(3);
            }
        }
    }
    Ok(w.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(w: &mut Writer, cpu: f64, gpus: u32, gpu_mem: u64) {
        w.f64(cpu).u64(0).u32(gpus).u64(gpu_mem).u64(0);
    }

    #[test]
    fn price_round_trips_and_names_bad_rates() {
        let mut w = Writer::new();
        w.f64(0.5).f64(0.0).f64(2.0).f64(0.0).f64(0.0).count(1);
        amount(&mut w, 2.0, 1, 0);
        w.u32(30);
        let out = price_items(&w.into_bytes()).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.u32().unwrap(), 1);
        let v: Vec<f64> = (0..7).map(|_| r.f64().unwrap()).collect();
        assert_eq!(v, [1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 1.5]);
        r.finish().unwrap();

        let mut w = Writer::new();
        w.f64(0.5).f64(-1.0).f64(0.0).f64(0.0).f64(0.0).count(0);
        let err = price_items(&w.into_bytes()).unwrap_err();
        assert_eq!(err.code, STATUS_BAD_VALUE);
        assert_eq!(err.details, ["rates.usd_per_memory_gib_hour"]);
    }

    #[test]
    fn solve_round_trips_and_names_bad_fields() {
        let mut w = Writer::new();
        w.u8(0).count(1);
        w.f64(4.0).u64(1 << 30).u64(0).f64(4.0).u64(1 << 30).u64(0);
        w.count(1).u64(0).u8(1);
        w.count(2);
        amount(&mut w, 1.0, 1, 0);
        amount(&mut w, 1.0, 1, 0);
        let out = solve_requests(&w.into_bytes()).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(
            (r.u8().unwrap(), r.u32().unwrap(), r.u32().unwrap()),
            (0, 0, 1)
        );
        assert_eq!(r.u32().unwrap(), 0);
        assert_eq!((r.u8().unwrap(), r.u8().unwrap()), (1, 2));
        assert_eq!((r.f64().unwrap(), r.f64().unwrap()), (1.0, 0.0));
        r.finish().unwrap();

        let mut w = Writer::new();
        w.u8(1).count(0).count(1);
        amount(&mut w, 0.0, 0, 5);
        let err = solve_requests(&w.into_bytes()).unwrap_err();
        assert_eq!(err.details, ["requests[0].gpu_memory_bytes"]);

        let mut w = Writer::new();
        w.u8(0).count(1);
        w.f64(1.0)
            .u64(0)
            .u64(0)
            .f64(2.0)
            .u64(0)
            .u64(0)
            .count(0)
            .count(0);
        let err = solve_requests(&w.into_bytes()).unwrap_err();
        assert_eq!(err.details, ["nodes[0].free.cpu_cores"]);
        assert_eq!(solve_requests(&[7]).unwrap_err().code, STATUS_BAD_REQUEST);
    }
}
