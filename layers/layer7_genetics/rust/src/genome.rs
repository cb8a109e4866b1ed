//! Genomes as the GA sees them: real vectors inside per-gene box bounds.
//!
//! A population is valid when it is non-empty and every genome has exactly
//! one finite gene per bound, each within `[lower, upper]`. Bounds are valid
//! when both ends are finite and `lower < upper`.

use std::fmt;

/// Inclusive bounds of one gene.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Smallest allowed value.
    pub lower: f64,
    /// Largest allowed value.
    pub upper: f64,
}

/// Why bounds or a population were refused.
#[derive(Debug, Clone, PartialEq)]
pub enum GenomeError {
    /// Bounds of gene `gene` are not finite or not increasing.
    BadBounds {
        /// Gene index.
        gene: usize,
        /// The offending bounds.
        bounds: Bounds,
    },
    /// The population has no genome.
    EmptyPopulation,
    /// Genome `genome` has `len` genes instead of `expected`.
    Length {
        /// Genome index.
        genome: usize,
        /// Its gene count.
        len: usize,
        /// The bound count.
        expected: usize,
    },
    /// Gene `gene` of genome `genome` is NaN or infinite.
    NonFinite {
        /// Genome index.
        genome: usize,
        /// Gene index.
        gene: usize,
    },
    /// Gene `gene` of genome `genome` lies outside its bounds.
    OutOfBounds {
        /// Genome index.
        genome: usize,
        /// Gene index.
        gene: usize,
        /// The value.
        value: f64,
        /// Its bounds.
        bounds: Bounds,
    },
}

impl GenomeError {
    /// Machine-readable kind, shared with the Python tests' vectors.
    pub fn kind(&self) -> &'static str {
        match self {
            GenomeError::BadBounds { .. } => "bad_bounds",
            GenomeError::EmptyPopulation => "empty_population",
            GenomeError::Length { .. } => "length",
            GenomeError::NonFinite { .. } => "non_finite",
            GenomeError::OutOfBounds { .. } => "out_of_bounds",
        }
    }
}

impl fmt::Display for GenomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenomeError::BadBounds { gene, bounds } => write!(
                f,
                "bounds[{gene}] [{}, {}] must be finite with lower < upper",
                bounds.lower, bounds.upper
            ),
            GenomeError::EmptyPopulation => f.write_str("the population is empty"),
            GenomeError::Length {
                genome,
                len,
                expected,
            } => write!(
                f,
                "genome {genome} has {len} genes, the bounds define {expected}"
            ),
            GenomeError::NonFinite { genome, gene } => {
                write!(f, "genome {genome} gene {gene} is not finite")
            }
            GenomeError::OutOfBounds {
                genome,
                gene,
                value,
                bounds,
            } => write!(
                f,
                "genome {genome} gene {gene} = {value} is outside [{}, {}]",
                bounds.lower, bounds.upper
            ),
        }
    }
}

/// Checks every gene's bounds.
pub fn check_bounds(bounds: &[Bounds]) -> Result<(), GenomeError> {
    for (gene, b) in bounds.iter().enumerate() {
        if !(b.lower.is_finite() && b.upper.is_finite() && b.lower < b.upper) {
            return Err(GenomeError::BadBounds { gene, bounds: *b });
        }
    }
    Ok(())
}

/// Checks the bounds, then every genome of `population` against them; the
/// first problem (in genome, then gene order) is reported.
pub fn check_population(bounds: &[Bounds], population: &[Vec<f64>]) -> Result<(), GenomeError> {
    check_bounds(bounds)?;
    if population.is_empty() {
        return Err(GenomeError::EmptyPopulation);
    }
    for (genome, genes) in population.iter().enumerate() {
        if genes.len() != bounds.len() {
            return Err(GenomeError::Length {
                genome,
                len: genes.len(),
                expected: bounds.len(),
            });
        }
        for (gene, (&value, b)) in genes.iter().zip(bounds).enumerate() {
            if !value.is_finite() {
                return Err(GenomeError::NonFinite { genome, gene });
            }
            if value < b.lower || value > b.upper {
                return Err(GenomeError::OutOfBounds {
                    genome,
                    gene,
                    value,
                    bounds: *b,
                });
            }
        }
    }
    Ok(())
}

/// Diversity of a population (`chimera.v1.DiversityStats`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diversity {
    /// Mean Euclidean distance over pairs of the first [`PAIRWISE_LIMIT`]
    /// members (0 with fewer than two).
    pub mean_pairwise_distance: f64,
    /// Mean over genes of the population standard deviation of that gene.
    pub mean_dimension_stddev: f64,
}

/// Members the pairwise distance looks at: it costs n^2 d, so it is taken
/// over this many members (in order) and the rest are ignored.
pub const PAIRWISE_LIMIT: usize = 1024;

/// Diversity of `population` (genomes of equal length, assumed checked).
pub fn diversity(population: &[Vec<f64>]) -> Diversity {
    let n = population.len();
    let d = population.first().map_or(0, Vec::len);
    if n == 0 || d == 0 {
        return Diversity {
            mean_pairwise_distance: 0.0,
            mean_dimension_stddev: 0.0,
        };
    }
    let mut stddev_sum = 0.0;
    for gene in 0..d {
        let mean = population.iter().map(|g| g[gene]).sum::<f64>() / n as f64;
        let var = population
            .iter()
            .map(|g| (g[gene] - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        stddev_sum += var.sqrt();
    }
    let m = n.min(PAIRWISE_LIMIT);
    let mut dist_sum = 0.0;
    for i in 0..m {
        for j in i + 1..m {
            let sq: f64 = population[i]
                .iter()
                .zip(&population[j])
                .map(|(a, b)| (a - b).powi(2))
                .sum();
            dist_sum += sq.sqrt();
        }
    }
    let pairs = m * (m - 1) / 2;
    Diversity {
        mean_pairwise_distance: if pairs == 0 {
            0.0
        } else {
            dist_sum / pairs as f64
        },
        mean_dimension_stddev: stddev_sum / d as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(d: usize) -> Vec<Bounds> {
        vec![
            Bounds {
                lower: 0.0,
                upper: 1.0
            };
            d
        ]
    }

    #[test]
    fn first_problem_in_genome_then_gene_order_is_reported() {
        let b = unit(2);
        assert_eq!(check_population(&b, &[vec![0.0, 1.0]]), Ok(()));
        assert_eq!(
            check_population(&b, &[]).unwrap_err(),
            GenomeError::EmptyPopulation
        );
        let e = check_population(&b, &[vec![0.5, 0.5], vec![2.0, f64::NAN]]).unwrap_err();
        assert!(matches!(
            e,
            GenomeError::OutOfBounds {
                genome: 1,
                gene: 0,
                ..
            }
        ));
        let e = check_population(&b, &[vec![0.5]]).unwrap_err();
        assert_eq!(e.kind(), "length");
        let bad = [Bounds {
            lower: 1.0,
            upper: 1.0,
        }];
        assert_eq!(check_bounds(&bad).unwrap_err().kind(), "bad_bounds");
    }

    #[test]
    fn diversity_of_two_points_is_their_distance() {
        let d = diversity(&[vec![0.0, 0.0], vec![3.0, 4.0]]);
        assert_eq!(d.mean_pairwise_distance, 5.0);
        assert_eq!(d.mean_dimension_stddev, (1.5 + 2.0) / 2.0);
        let one = diversity(&[vec![1.0, 2.0]]);
        assert_eq!(one.mean_pairwise_distance, 0.0);
    }
}
