"""Deterministic goal decomposition from templates (``templates.json``).

A template is a named task graph with keywords. A goal is decomposed by:

1. ``goal.constraints.extra["template"]``, when set, naming the template;
2. otherwise the template whose keywords occur most often among the words of
   ``goal.description`` (lower-cased, split on anything but letters and
   digits); ties go to the template listed first;
3. otherwise the last template (the fallback, which has no keywords).

Every task gets the goal's priority (its own when the template sets one) and
the template's parameters, with any key that also appears in
``goal.constraints.extra`` taking the goal's value (e.g. ``module_name``).
The same goal therefore always gives the same tasks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chimera.framework.errors import InvalidArgument
from chimera.planning import artifacts
from chimera.v1 import common_pb2, planning_pb2

__all__ = ["LAYERS", "Template", "TemplateSet"]

LAYERS: Mapping[str, int] = {
    "discovery": common_pb2.LAYER_DISCOVERY,
    "planning": common_pb2.LAYER_PLANNING,
    "validation": common_pb2.LAYER_VALIDATION,
    "execution": common_pb2.LAYER_EXECUTION,
    "refinement": common_pb2.LAYER_REFINEMENT,
    "evolution": common_pb2.LAYER_EVOLUTION,
    "genetics": common_pb2.LAYER_GENETICS,
    "resources": common_pb2.LAYER_RESOURCES,
}
_WORD = re.compile(r"[a-z0-9]+")
_TASK_KEYS = frozenset(
    {
        "id",
        "title",
        "layer",
        "operation",
        "duration_ms",
        "deps",
        "parameters",
        "success_criteria",
        "description",
        "priority",
    }
)


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    keywords: frozenset[str]
    tasks: tuple[planning_pb2.Task, ...]


class TemplateSet:
    """The loaded templates, checked at start-up (bad files fail with the key at fault)."""

    def __init__(self, templates: Sequence[Template]) -> None:
        if not templates:
            raise ValueError("templates: at least one template is required")
        self.templates = tuple(templates)
        self._by_name = {t.name: t for t in self.templates}

    @classmethod
    def load(cls, path: Path | None = None) -> TemplateSet:
        data, source = artifacts.load_json(path, artifacts.TEMPLATES)
        return cls.from_mapping(data, str(source))

    @classmethod
    def from_mapping(cls, data: Any, where: str = "templates") -> TemplateSet:
        if not isinstance(data, dict) or not isinstance(data.get("templates"), list):
            raise ValueError(f"{where}: must be an object with a 'templates' list")
        out = []
        names: set[str] = set()
        for i, item in enumerate(data["templates"]):
            t = _template(item, f"{where}: templates[{i}]")
            if t.name in names:
                raise ValueError(f"{where}: templates[{i}]: duplicate name {t.name!r}")
            names.add(t.name)
            out.append(t)
        return cls(out)

    def choose(self, goal: planning_pb2.Goal) -> Template:
        """The template for ``goal`` (see the module docs)."""
        wanted = goal.constraints.extra.get("template")
        if wanted is not None:
            template = self._by_name.get(wanted)
            if template is None:
                raise InvalidArgument(
                    "goal.constraints.extra[template]",
                    f"must name a template, one of {sorted(self._by_name)} (got {wanted!r})",
                )
            return template
        words = _WORD.findall(goal.description.lower())
        best, best_hits = self.templates[-1], 0
        for template in self.templates:
            hits = sum(1 for w in words if w in template.keywords)
            if hits > best_hits:
                best, best_hits = template, hits
        return best

    def decompose(self, goal: planning_pb2.Goal) -> list[planning_pb2.Task]:
        """The goal's tasks, copied from its template and parameterised."""
        template = self.choose(goal)
        extra = goal.constraints.extra
        tasks = []
        for proto in template.tasks:
            task = planning_pb2.Task()
            task.CopyFrom(proto)
            for key in task.parameters:
                if key in extra:
                    task.parameters[key] = extra[key]
            if task.priority == common_pb2.PRIORITY_UNSPECIFIED:
                task.priority = goal.priority
            tasks.append(task)
        return tasks


def _template(item: Any, where: str) -> Template:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: name must be a non-empty string")
    keywords = item.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise ValueError(f"{where}: keywords must be a list of strings")
    raw_tasks = item.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise ValueError(f"{where}: tasks must be a non-empty list")
    tasks = tuple(_task(t, f"{where}.tasks[{j}]") for j, t in enumerate(raw_tasks))
    ids = [t.id for t in tasks]
    for j, t in enumerate(tasks):
        for dep in t.dependencies:
            if dep not in ids:
                raise ValueError(f"{where}.tasks[{j}]: dependency {dep!r} is not a task")
    return Template(
        name=name,
        description=str(item.get("description", "")),
        keywords=frozenset(k.lower() for k in keywords),
        tasks=tasks,
    )


def _task(item: Any, where: str) -> planning_pb2.Task:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be an object")
    unknown = sorted(set(item) - _TASK_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}")
    for key in ("id", "title", "layer"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise ValueError(f"{where}: {key} must be a non-empty string")
    layer = LAYERS.get(item["layer"])
    if layer is None:
        raise ValueError(f"{where}: layer must be one of {sorted(LAYERS)}")
    duration = item.get("duration_ms", 0)
    if isinstance(duration, bool) or not isinstance(duration, int) or duration < 0:
        raise ValueError(f"{where}: duration_ms must be a non-negative integer")
    priority = item.get("priority", "unspecified")
    try:
        priority_value = common_pb2.Priority.Value(f"PRIORITY_{str(priority).upper()}")
    except ValueError:
        raise ValueError(f"{where}: priority {priority!r} is not a Priority") from None
    params = item.get("parameters", {})
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise ValueError(f"{where}: parameters must map strings to strings")
    return planning_pb2.Task(
        id=item["id"],
        title=item["title"],
        priority=priority_value,
        estimated_duration_ms=duration,
        dependencies=list(item.get("deps", [])),
        success_criteria=list(item.get("success_criteria", [])),
        assigned_layer=layer,
        operation=str(item.get("operation", "")),
        parameters=params,
        description=str(item.get("description", "")),
    )
