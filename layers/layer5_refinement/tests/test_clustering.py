"""k-means of KPI vectors in JAX."""

from __future__ import annotations

import jax
import numpy as np

from chimera.refinement.clustering import kmeans


def blobs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three groups on very different scales (ms, fuel units), 40/25/12 points."""
    centres = np.array([[0.9, 5.0, 1e6], [0.5, 50.0, 4e6], [0.1, 9.0, 9e6]])
    sizes = (40, 25, 12)
    points = np.concatenate(
        [rng.normal(c, c * 0.03, (n, 3)) for c, n in zip(centres, sizes)]
    )
    labels = np.repeat(np.arange(3), sizes)
    return points, labels


def test_separated_groups_are_recovered_largest_first() -> None:
    points, truth = blobs(np.random.default_rng(0))
    result = kmeans(jax.random.key(0), points, 3)
    assert list(result.sizes) == [40, 25, 12]
    np.testing.assert_allclose(result.centroids[0], [0.9, 5.0, 1e6], rtol=0.03)
    # Each true group lands in exactly one cluster.
    for group in range(3):
        assert len(set(result.labels[truth == group])) == 1
    assert np.all(result.mean_distance > 0)


def test_same_key_same_clusters_and_padding_is_invisible() -> None:
    points, _ = blobs(np.random.default_rng(1))
    a = kmeans(jax.random.key(7), points, 3)
    b = kmeans(jax.random.key(7), points, 3)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    # 77 points are padded to 128 rows: padded rows must not pull any centre.
    assert a.sizes.sum() == len(points)


def test_more_clusters_than_points_and_identical_points() -> None:
    same = np.ones((5, 3))
    result = kmeans(jax.random.key(0), same, 4)
    assert result.sizes.sum() == 5
    np.testing.assert_allclose(result.centroids[0], [1.0, 1.0, 1.0])
    two = kmeans(jax.random.key(0), np.array([[0.0, 0, 0], [1.0, 1, 1]]), 8)
    assert sorted(two.sizes) == [1, 1]
