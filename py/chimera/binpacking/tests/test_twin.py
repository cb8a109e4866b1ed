"""The twin against an independent pure-Python reading of the kernel's rule.

(The differential test against the WASM kernel itself is layer 4's
``binpacking_kernel_test``.)
"""

import numpy as np
import pytest

from chimera.binpacking import genome, twin
from chimera.binpacking.instances import Instance, InvalidInstance, generate


def reference_bins(params, inst):
    """Every open bin scanned; highest priority, then least room, then earliest."""
    table = genome.priority_table(np.asarray([params]), inst.capacity)[0]
    c = inst.capacity
    rooms = []
    for s in inst.items:
        best = None
        for i, r in enumerate(rooms):
            if r >= s and (best is None or (table[s, r], -r) > (table[s, rooms[best]], -rooms[best])):
                best = i
        if best is None or table[s, c] > table[s, rooms[best]]:
            rooms.append(c - s)
        else:
            rooms[best] -= s
    return len(rooms)


def test_twin_matches_the_reference_on_random_genomes():
    rng = np.random.default_rng(7)
    genomes = rng.normal(0.0, 1.0, (6, genome.SEARCH_LEN))
    genomes[0] = genome.BEST_FIT[: genome.SEARCH_LEN]
    insts = [generate("or", "training", i, items=120) for i in range(3)]
    got = twin.bins_used(genomes, insts)
    want = [[reference_bins(g, inst) for inst in insts] for g in genomes]
    assert got.tolist() == want


def test_padding_handles_instances_of_different_lengths():
    insts = [Instance(10, (6, 5, 4, 5)), Instance(10, (9,))]
    assert twin.bins_used(np.asarray([genome.BEST_FIT[: genome.SEARCH_LEN]]), insts).tolist() == [[2, 1]]


def test_ties_break_towards_the_least_room_like_the_kernel():
    # All-zero genome: every priority ties, so the least room wins: Best Fit.
    insts = [generate("weibull", "training", 0, items=400)]
    zero = np.zeros((1, genome.SEARCH_LEN))
    best_fit = np.asarray([genome.BEST_FIT[: genome.SEARCH_LEN]])
    assert twin.bins_used(zero, insts).tolist() == twin.bins_used(best_fit, insts).tolist()
    assert twin.rank_tables(zero, 10)[0, 3, 2] == -1  # room < size is impossible


def test_rejects_first_fit_and_mixed_capacities():
    with pytest.raises(InvalidInstance, match="no first_fit"):
        twin.bins_used(np.asarray([genome.FIRST_FIT]), [Instance(10, (3,))])
    with pytest.raises(InvalidInstance, match="one capacity"):
        search_best_fit = np.asarray([genome.BEST_FIT[: genome.SEARCH_LEN]])
        twin.bins_used(search_best_fit, [Instance(10, (3,)), Instance(12, (3,))])
