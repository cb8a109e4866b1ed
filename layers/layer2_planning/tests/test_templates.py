"""Deterministic decomposition from the shipped templates."""

from __future__ import annotations

import pytest

from chimera.framework.errors import InvalidArgument
from chimera.planning.core import PlanningCore
from chimera.planning.planner import check_templates
from chimera.planning.templates import TemplateSet
from chimera.v1 import common_pb2, planning_pb2


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    return TemplateSet.load()


def goal(description: str, **extra: str) -> planning_pb2.Goal:
    return planning_pb2.Goal(
        description=description,
        priority=common_pb2.PRIORITY_HIGH,
        constraints=planning_pb2.GoalConstraints(extra=extra),
    )


def test_shipped_templates_are_valid_graphs(templates: TemplateSet) -> None:
    check_templates(PlanningCore.load(), templates)
    assert [t.name for t in templates.templates][-1] == "generic"


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Optimize the packing heuristic by evolving its genome", "evolve"),
        ("Deploy and run the packer module", "deploy"),
        ("Benchmark the module and measure its performance", "benchmark"),
        ("Make coffee", "generic"),
        ("", "generic"),
    ],
)
def test_keywords_choose_the_template(
    templates: TemplateSet, description: str, expected: str
) -> None:
    assert templates.choose(goal(description)).name == expected


def test_decomposition_is_deterministic_and_parameterised(templates: TemplateSet) -> None:
    g = goal("deploy the module", module_name="packer")
    first = templates.decompose(g)
    ids = [t.id for t in first]
    assert ids == ["validate_module", "deploy_module", "run_module", "collect_kpis"]
    assert first == templates.decompose(g)
    named = [t for t in first if "module_name" in t.parameters]
    assert len(named) == 3 and all(t.parameters["module_name"] == "packer" for t in named)
    assert all(t.priority == common_pb2.PRIORITY_HIGH for t in first)
    assert first[1].assigned_layer == common_pb2.LAYER_EXECUTION
    assert first[1].dependencies == ["validate_module"]


def test_explicit_template_wins_and_unknown_is_invalid(templates: TemplateSet) -> None:
    assert templates.choose(goal("deploy it", template="benchmark")).name == "benchmark"
    with pytest.raises(InvalidArgument) as err:
        templates.choose(goal("x", template="nope"))
    assert err.value.field == "goal.constraints.extra[template]"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "'templates' list"),
        ({"templates": []}, "at least one"),
        ({"templates": [{"name": "a", "tasks": []}]}, "non-empty list"),
        ({"templates": [{"name": "a", "tasks": [{"id": "x", "title": "X", "layer": "moon"}]}]},
         "layer"),
        ({"templates": [{"name": "a", "tasks": [{"id": "x", "title": "X", "layer": "execution",
                                                   "deps": ["y"]}]}]}, "dependency 'y'"),
        ({"templates": [{"name": "a", "tasks": [{"id": "x", "title": "X", "layer": "execution",
                                                   "priority": "urgent"}]}]}, "priority"),
        ({"templates": [{"name": "a", "tasks": [{"id": "x", "title": "X", "layer": "execution",
                                                   "colour": "red"}]}]}, "unknown keys"),
    ],
)
def test_bad_templates_name_the_problem(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TemplateSet.from_mapping(data)


def test_cyclic_template_fails_at_start_up() -> None:
    data = {"templates": [{"name": "loop", "tasks": [
        {"id": "a", "title": "A", "layer": "execution", "deps": ["b"]},
        {"id": "b", "title": "B", "layer": "execution", "deps": ["a"]},
    ]}]}
    with pytest.raises(ValueError, match="a -> b -> a"):
        check_templates(PlanningCore.load(), TemplateSet.from_mapping(data))
