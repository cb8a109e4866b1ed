//! Byte-level entry points behind the WASM exports (see [`crate::wire`] for
//! the encoding of `u32`/`f64`/`str`).
//!
//! # `genetics_check_population`
//!
//! Request: `u32 genes`, per gene `f64 lower`, `f64 upper`; `u32 genomes`,
//! per genome `u32 n` and `n x f64` genes.
//! Response: `f64 mean_pairwise_distance`, `f64 mean_dimension_stddev`
//! (see [`crate::genome::diversity`]).
//!
//! # `genetics_fitness`
//!
//! Request: `u32 n`, per evaluation `f64 accuracy`, `f64 latency_ms`,
//! `f64 throughput_per_second`, `f64 error_rate`.
//! Response: `u32 n`, `n x f64` fitness (see [`crate::fitness`]).
//!
//! # Errors (status: details)
//!
//! 1 malformed request: `[]`; [`STATUS_BAD_BOUNDS`]: `[gene]`;
//! [`STATUS_BAD_GENOME`]: `[genome, gene ("" for a length mismatch), kind]`
//! with kind `length`, `non_finite` or `out_of_bounds`;
//! [`STATUS_EMPTY_POPULATION`]: `[]`; [`STATUS_BAD_KPI`]: `[index, field]`.

use crate::fitness::{fitness, KpiInputs};
use crate::genome::{check_population, diversity, Bounds, GenomeError};
use crate::wire::{ApiError, Reader, Writer};

/// A gene's bounds are not finite or not increasing.
pub const STATUS_BAD_BOUNDS: i32 = 2;
/// A genome has the wrong length, a non-finite or an out-of-bounds gene.
pub const STATUS_BAD_GENOME: i32 = 3;
/// The population has no genome.
pub const STATUS_EMPTY_POPULATION: i32 = 5;
/// A KPI figure is outside its domain.
pub const STATUS_BAD_KPI: i32 = 6;

impl From<GenomeError> for ApiError {
    fn from(e: GenomeError) -> Self {
        let message = e.to_string();
        let (code, details) = match &e {
            GenomeError::BadBounds { gene, .. } => (STATUS_BAD_BOUNDS, vec![gene.to_string()]),
            GenomeError::EmptyPopulation => (STATUS_EMPTY_POPULATION, vec![]),
            GenomeError::Length { genome, .. } => (
                STATUS_BAD_GENOME,
                vec![genome.to_string(), String::new(), e.kind().into()],
            ),
            GenomeError::NonFinite { genome, gene }
            | GenomeError::OutOfBounds { genome, gene, .. } => (
                STATUS_BAD_GENOME,
                vec![genome.to_string(), gene.to_string(), e.kind().into()],
            ),
        };
        ApiError {
            code,
            message,
            details,
        }
    }
}

/// Checks bounds and population; returns the population's diversity.
pub fn check_population_op(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let genes = r.count(16)?;
    let mut bounds = Vec::with_capacity(genes);
    for _ in 0..genes {
        bounds.push(Bounds {
            lower: r.f64()?,
            upper: r.f64()?,
        });
    }
    let n = r.count(4)?;
    let mut population = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.count(8)?;
        let mut genome = Vec::with_capacity(len);
        for _ in 0..len {
            genome.push(r.f64()?);
        }
        population.push(genome);
    }
    r.finish()?;
    check_population(&bounds, &population)?;
    let d = diversity(&population);
    let mut w = Writer::new();
    w.f64(d.mean_pairwise_distance).f64(d.mean_dimension_stddev);
    Ok(w.into_bytes())
}

/// The default fitness of each evaluation.
pub fn fitness_op(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let n = r.count(32)?;
    let mut w = Writer::new();
    w.count(n);
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        values.push(KpiInputs {
            accuracy: r.f64()?,
            latency_ms: r.f64()?,
            throughput_per_second: r.f64()?,
            error_rate: r.f64()?,
        });
    }
    r.finish()?;
    for (index, k) in values.iter().enumerate() {
        let f = fitness(k).map_err(|e| ApiError {
            code: STATUS_BAD_KPI,
            message: format!("evaluation {index}: {e}"),
            details: vec![index.to_string(), e.field.into()],
        })?;
        w.f64(f);
    }
    Ok(w.into_bytes())
}

/// Request bytes of [`check_population_op`] (tests and the vectors share it).
#[cfg(test)]
pub(crate) fn population_request(bounds: &[(f64, f64)], population: &[Vec<f64>]) -> Vec<u8> {
    let mut w = Writer::new();
    w.count(bounds.len());
    for &(lo, hi) in bounds {
        w.f64(lo).f64(hi);
    }
    w.count(population.len());
    for g in population {
        w.count(g.len());
        for &x in g {
            w.f64(x);
        }
    }
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::STATUS_BAD_REQUEST;

    #[test]
    fn population_errors_carry_genome_gene_and_kind() {
        let b = [(0.0, 1.0), (-1.0, 1.0)];
        let e = check_population_op(&population_request(&b, &[vec![0.5, 0.0], vec![0.5, 3.0]]))
            .unwrap_err();
        assert_eq!(e.code, STATUS_BAD_GENOME);
        assert_eq!(e.details, vec!["1", "1", "out_of_bounds"]);
        let e = check_population_op(&population_request(&b, &[vec![0.5]])).unwrap_err();
        assert_eq!(e.details, vec!["0", "", "length"]);
        let e = check_population_op(&population_request(&b, &[])).unwrap_err();
        assert_eq!(e.code, STATUS_EMPTY_POPULATION);
        let e = check_population_op(&population_request(&[(1.0, 0.0)], &[vec![0.5]])).unwrap_err();
        assert_eq!((e.code, e.details[0].as_str()), (STATUS_BAD_BOUNDS, "0"));
        assert_eq!(
            check_population_op(&[1, 0, 0]).unwrap_err().code,
            STATUS_BAD_REQUEST
        );
    }

    #[test]
    fn valid_population_returns_its_diversity() {
        let out = check_population_op(&population_request(
            &[(0.0, 4.0), (0.0, 4.0)],
            &[vec![0.0, 0.0], vec![3.0, 4.0]],
        ))
        .unwrap();
        let mut r = Reader::new(&out);
        assert_eq!((r.f64().unwrap(), r.f64().unwrap()), (5.0, 1.75));
        r.finish().unwrap();
    }

    #[test]
    fn fitness_errors_name_index_and_field() {
        let mut w = Writer::new();
        w.count(2).f64(1.0).f64(0.0).f64(1000.0).f64(0.0);
        w.f64(0.5).f64(10.0).f64(1.0).f64(-0.1);
        let e = fitness_op(&w.into_bytes()).unwrap_err();
        assert_eq!(e.code, STATUS_BAD_KPI);
        assert_eq!(e.details, vec!["1", "error_rate"]);
    }
}
