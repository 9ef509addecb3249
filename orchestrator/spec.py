"""Sweep specs: YAML -> validated frozen dataclasses -> runs with deterministic ids.

A spec is checked completely before anything runs: unknown keys, unknown tasks, wrong
types and invalid values stop here with a message that names the bad value and lists
what is allowed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import yaml

from symsweep.errors import SpecError, yaml_error_line
from symsweep.api import Task
from symsweep.registry import get_task

# ----------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    """CPUs reserved for one trial (fractional allowed)."""
    gpus: float = 0.0
    """GPUs reserved for one trial; a fraction packs several trials onto one GPU."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpus) and math.isfinite(self.gpus)):
            raise SpecError(f"resources must be finite numbers, got cpus={self.cpus}, gpus={self.gpus}")
        if self.cpus < 0 or self.gpus < 0:
            raise SpecError(f"resources must be >= 0, got cpus={self.cpus}, gpus={self.gpus}")
        if self.cpus == 0 and self.gpus == 0:
            raise SpecError("resources: a trial needs cpus > 0 or gpus > 0")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise SpecError(f"resources.gpus: above 1 a trial takes whole GPUs (Ray), got {self.gpus:g}; use "
                            f"{math.floor(self.gpus):d} or {math.ceil(self.gpus):d}, or a fraction <= 1 to pack trials")


@dataclass(frozen=True)
class SweepSpec:
    name: str
    """Sweep name; also the folder under the results root."""
    task: str
    """Registered task name (see `symsweep tasks`)."""
    fixed: Mapping[str, Any]
    """Task parameters shared by every run."""
    axes: Mapping[str, tuple]
    """Grid axes: parameter -> values; the runs are their cartesian product."""
    seeds: tuple[int, ...]
    """Seeds run for every grid point."""
    resources: Resources = Resources()
    runs_per_trial: int = 1
    """How many runs (of one grid point, differing by seed) one Ray Tune trial packs."""
    max_failures: int = 2
    """How often a trial that dies (worker/node lost) is retried by Tune."""
    max_runs: int = 1_000_000
    """Refuse to plan more runs than this (a guard against `seeds: 1000000000`); raise it on purpose."""
    description: str = ""
    smoke: Mapping[str, Any] = field(default_factory=dict)
    """--set overrides that shrink this spec to a seconds-long budget (used by the tests)."""
    aggregate: Mapping[str, Any] = field(default_factory=dict)
    """Settings of the task's aggregation (e.g. RD bins); not part of the runs' identity."""
    tracking: Mapping[str, Any] = field(default_factory=dict)
    """Experiment trackers that mirror the runs live, e.g. {mlflow: URI, experiment: NAME}."""
    adaptive: Any = None
    """AdaptiveSeeds when `seeds: {adaptive: ...}`: `seeds` then holds every seed it may use
    (0..max-1), and rounds decide which of them run (symsweep.adaptive)."""
    baseline: Mapping[str, Any] = field(default_factory=dict)
    """The spec's `baseline: {axis: level}`, empty when it sets none; see comparison_baseline.
    Not part of the runs' identity (a plain sweep's comparison is an analysis setting)."""

    def comparison_baseline(self) -> dict:
        """The {axis: level} that comparison tables and adaptive seeds compare every other level
        of that axis with. One rule: the spec's `baseline:` if it sets one, else its adaptive
        seeds' (`seeds.adaptive.baseline`), else the task's own (Task.baseline; may be empty)."""
        if self.baseline:
            return dict(self.baseline)
        if self.adaptive is not None:
            return dict(self.adaptive.baseline)
        return dict(get_task(self.task).baseline)

    def science(self) -> dict:
        """What defines the runs: a change here changes the sweep (resume refuses it)."""
        return {
            "task": self.task,
            "fixed": dict(self.fixed),
            "axes": {k: list(v) for k, v in self.axes.items()},
            "seeds": list(self.seeds),
            **({"adaptive": self.adaptive.to_dict()["adaptive"]} if self.adaptive else {}),
        }

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "task": self.task,
            "description": self.description,
            "fixed": _plain(dict(self.fixed)),
            "axes": {k: _plain(list(v)) for k, v in self.axes.items()},
            "seeds": self.adaptive.to_dict() if self.adaptive else _seeds_plain(self.seeds),
            "resources": {"cpus": self.resources.cpus, "gpus": self.resources.gpus},
            "runs_per_trial": self.runs_per_trial,
            "max_failures": self.max_failures,
            "max_runs": self.max_runs,
            "smoke": _plain(dict(self.smoke)),
            "aggregate": _plain(dict(self.aggregate)),
            "tracking": _plain(dict(self.tracking)),
            **({"baseline": _plain(dict(self.baseline))} if self.baseline else {}),
        }


@dataclass(frozen=True)
class RunSpec:
    """One training: a task, a resolved config (defaults included) and a seed."""

    run_id: str
    task: str
    config: dict
    """Resolved config as plain data (tuples as lists), every field present."""
    seed: int
    point_id: str
    """Hash of (task, config): runs sharing it differ only by seed and can be packed."""


@dataclass(frozen=True)
class Trial:
    """A packed group of runs of one grid point, differing only by seed: one Tune trial."""

    trial_id: str
    task: str
    config: dict
    runs: tuple[tuple[str, int], ...]
    """(run_id, seed) pairs."""
    attempts: Mapping[str, int] = field(default_factory=dict)
    """run_id -> attempts recorded in the ledger so far (runs with a row only)."""


TOP_LEVEL_KEYS = (
    "name", "task", "description", "fixed", "axes", "seeds", "resources",
    "runs_per_trial", "max_failures", "max_runs", "smoke", "aggregate", "tracking", "baseline",
)
# A sweep name is one plain path segment: it names the sweep's folder under the results root.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME_LENGTH = 100
MAX_SEED = 2**32 - 1
DEFAULT_MAX_RUNS = 1_000_000
RESOURCE_KEYS = ("cpus", "gpus")
# Config ints become int64 columns of the runs table: a larger one could never be stored.
INT64_RANGE = (-(2**63), 2**63 - 1)
# What a spec may be. A sweep spec is a few hundred bytes; these bounds only stop files that no
# one writes by hand (a generated 50 MB seed list, a "billion laughs"), and stop them at once.
MAX_SPEC_BYTES = 1_000_000
"""A spec file may be at most 1 MB."""
MAX_ALIAS_VALUES = 1_000_000
"""Aliases (`*name`) may add at most this many values to a spec (a few aliases repeating one
another 9-fold make 9^10 values out of 20 lines)."""
MAX_DEPTH = 64
"""Lists and mappings may be nested at most this deep (a spec needs 4 or 5 levels)."""

# ----------------------------------------------------------------------------- loading


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> SweepSpec:
    """Read a YAML spec, apply `key=value` overrides, validate everything."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"spec file not found: {path}")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)  # never more: a 50 MB file is refused unread
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec: {exc}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: the spec file is larger than {MAX_SPEC_BYTES:,} bytes; a spec may be at most "
                        f"{MAX_SPEC_BYTES:,} bytes (1 MB): write seeds as a count, not a list")
    return spec_from_dict(load_yaml(data, str(path)), overrides, source=str(path))


def load_yaml(text: str | bytes, source: str) -> Any:
    """One YAML document, read by `SpecLoader`: any problem is a SpecError of one line that
    starts with `source:line:column:`."""
    try:
        return yaml.load(text, Loader=SpecLoader)
    except _Refused as exc:
        mark = exc.problem_mark
        raise SpecError(f"{source}:{mark.line + 1}:{mark.column + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        if "nesting depth" in str(getattr(exc, "problem", "")):  # libyaml's own limit (1000 levels)
            mark = exc.problem_mark
            raise SpecError(f"{source}:{mark.line + 1}:{mark.column + 1}: {_TOO_DEEP}") from None
        raise SpecError(yaml_error_line(source, exc)) from None


def spec_from_dict(raw: Any, overrides: Sequence[str] = (), source: str = "spec") -> SweepSpec:
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a sweep spec must be a mapping with keys {', '.join(TOP_LEVEL_KEYS)}")
    # A dict handed in (a frozen spec, the API) gets the checks a spec file gets from its loader,
    # before it is copied: a shared or cyclic structure would expand without end in the copy.
    overrides = [_parse_override(item) for item in overrides]
    _check_seed_list(raw, overrides, source)
    try:
        check_structure(raw, _PLAIN_CONTAINERS, _plain_children)
    except _Refused as exc:
        raise SpecError(f"{source}: {exc.problem}") from None
    raw = _plain(raw)
    _check_keys(raw, TOP_LEVEL_KEYS, source)
    parameters = [kv for kv in overrides if not _apply_spec_override(raw, *kv)]
    for key in ("name", "task"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            raise SpecError(f"{source}: '{key}' is required and must be a non-empty string")
    name = raw["name"]
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise SpecError(f"{source}: name {name[:MAX_NAME_LENGTH + 10]!r} is not allowed: a sweep name is one folder "
                        f"name of at most {MAX_NAME_LENGTH} letters, digits, '-', '_' and '.', starting with a "
                        f"letter or digit")

    task = get_task(raw["task"])
    for what in ("fixed", "axes"):
        if not isinstance(raw.get(what) or {}, dict):
            raise SpecError(f"{source}: '{what}' must be a mapping of parameter -> value")
    hints = typing.get_type_hints(task.config_cls)
    for key, value in parameters:
        _apply_parameter_override(raw, key, value, hints.get(key))
    fixed = raw.get("fixed") or {}
    axes_raw = raw.get("axes") or {}
    _check_keys(fixed, _field_names(task.config_cls), f"{source}: fixed (task {task.name!r} parameters)")
    _check_keys(axes_raw, _field_names(task.config_cls), f"{source}: axes (task {task.name!r} parameters)")
    both = sorted(set(fixed) & set(axes_raw))
    if both:
        raise SpecError(f"{source}: {both} set both in 'fixed' and in 'axes'; keep one")

    fixed = {k: _coerce(f"fixed.{k}", _in_range(task, k, v, f"fixed.{k}", source), hints[k]) for k, v in fixed.items()}
    axes: dict[str, tuple] = {}
    for k, values in axes_raw.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{source}: axis {k!r} must be a non-empty list of values, got {_short(values)}")
        coerced = tuple(_coerce(f"axes.{k}[{i}]", _in_range(task, k, v, f"axes.{k}[{i}]", source), hints[k])
                        for i, v in enumerate(values))
        if len(set(map(canonical_json, coerced))) != len(coerced):
            raise SpecError(f"{source}: axis {k!r} repeats a value: {values!r}")
        axes[k] = coerced

    resources_raw = raw.get("resources") or {}
    if not isinstance(resources_raw, dict):
        raise SpecError(f"{source}: 'resources' must be a mapping with keys {', '.join(RESOURCE_KEYS)}")
    _check_keys(resources_raw, RESOURCE_KEYS, f"{source}: resources")
    resources = Resources(
        cpus=_coerce("resources.cpus", resources_raw.get("cpus", 1.0), float),
        gpus=_coerce("resources.gpus", resources_raw.get("gpus", 0.0), float),
    )
    max_runs = _positive_int("max_runs", raw.get("max_runs", DEFAULT_MAX_RUNS))
    points = math.prod(len(v) for v in axes.values())
    baseline = parse_baseline(raw["baseline"], axes, f"{source}: baseline") if "baseline" in raw else {}
    seeds_raw = raw.get("seeds", 1)
    adaptive = None
    if isinstance(seeds_raw, dict):
        if set(seeds_raw) != {"adaptive"}:
            raise SpecError(f"{source}: seeds must be a count, a list, or {{adaptive: {{...}}}}, got {seeds_raw!r}")
        from symsweep.adaptive import parse_adaptive
        adaptive = parse_adaptive(seeds_raw["adaptive"], task, axes, source, baseline)
        seeds_raw = adaptive.max
    # counted before a seed tuple is built: `seeds: 1000000000` is refused at once
    n_seeds = len(seeds_raw) if isinstance(seeds_raw, list) else seeds_raw if isinstance(seeds_raw, int) else 1
    if points * n_seeds > max_runs:
        raise SpecError(f"{source}: the spec plans {points} grid points x {n_seeds} seeds = "
                        f"{points * n_seeds} runs, more than max_runs = {max_runs}; shrink it, or set "
                        f"max_runs (e.g. --set max_runs={points * n_seeds}) if you mean it")
    seeds = _seeds(seeds_raw)
    for key in ("smoke", "aggregate"):
        if not isinstance(raw.get(key) or {}, dict):
            raise SpecError(f"{source}: '{key}' must be a mapping")
    from symsweep.tracking import check_tracking
    tracking = check_tracking(raw.get("tracking") or {}, source)
    spec = SweepSpec(
        name=name,
        task=task.name,
        fixed=fixed,
        axes=axes,
        seeds=seeds,
        resources=resources,
        runs_per_trial=_positive_int("runs_per_trial", raw.get("runs_per_trial", 1)),
        max_failures=_nonneg_int("max_failures", raw.get("max_failures", 2)),
        max_runs=max_runs,
        description=str(raw.get("description") or ""),
        smoke=raw.get("smoke") or {},
        aggregate=raw.get("aggregate") or {},
        tracking=tracking,
        adaptive=adaptive,
        baseline=baseline,
    )
    build_settings(task, spec.aggregate, source)
    grid = grid_points(spec)  # builds every config once, so invalid combinations fail here
    if adaptive is not None:
        from symsweep.adaptive import baseline_pairs
        try:
            baseline_pairs(adaptive, grid)
        except SpecError as exc:
            raise SpecError(f"{source}: {exc}") from None
    return spec


def _check_seed_list(raw: Mapping, overrides: Sequence[tuple[str, Any]], source: str) -> None:
    """A seed list longer than max_runs is refused before it is copied or checked seed by seed
    (two million seeds took seconds to refuse)."""
    given = dict(overrides)
    seeds = given.get("seeds", raw.get("seeds"))
    max_runs = given.get("max_runs", raw.get("max_runs", DEFAULT_MAX_RUNS))
    if isinstance(seeds, list) and type(max_runs) is int and len(seeds) > max_runs:
        raise SpecError(f"{source}: seeds: a list of {len(seeds)} seeds plans more than max_runs = {max_runs} "
                        f"runs; shrink it, or set max_runs (e.g. --set max_runs={len(seeds)}) if you mean it")


def _in_range(task: Task, key: str, value: Any, where: str, source: str) -> Any:
    """`value` of parameter `key`, checked against the range the task declares for it
    (`BUDGET_RANGES` of its config class: steps, epochs, batch sizes...). A budget no one can
    mean (`steps: 99999999999999999999999`) would make a run that never ends."""
    low, high = getattr(task.config_cls, "BUDGET_RANGES", {}).get(key, (None, None))
    if low is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and not low <= value <= high:
        raise SpecError(f"{source}: {where} = {value!r} is out of range: {key} must be >= {low:,} and <= {high:,} "
                        f"(task {task.name!r})")
    return value


def describe_changes(old: Mapping, new: Mapping, limit: int = 600) -> str:
    """The differences between two specs' `science()` as one short line: `key: old -> new`,
    mappings compared key by key (`fixed.lr: 0.1 -> 0.2`), long lists summarized (a changed list
    of two million seeds is not printed whole), the whole at most about `limit` characters."""
    parts: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if _same(a, b):
            return
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in sorted(set(a) | set(b), key=str):
                walk(a.get(key, _UNSET), b.get(key, _UNSET), f"{where}.{key}" if where else str(key))
            return
        parts.append(f"{where}: {brief(a)} -> {brief(b)}")

    walk(old, new, "")
    text = "; ".join(parts)
    if len(text) > limit:
        text = text[:limit].rsplit(";", 1)[0] + f"; ... ({len(parts)} differences in all)"
    return text


def brief(value: Any, items: int = 3, width: int = 200) -> str:
    """A value as a message shows it: a list longer than 6 items as `list of N items (a, b, c,
    ..., z)`, anything else cut at about `width` characters."""
    if value is _UNSET:
        return "(not set)"
    if isinstance(value, (list, tuple)) and len(value) > 2 * items:
        shown = ", ".join(brief(v, items, 20) for v in value[:items])
        return f"list of {len(value)} items ({shown}, ..., {brief(value[-1], items, 20)})"
    text = repr(value)
    return text if len(text) <= width else text[:width] + "..."


_UNSET = object()


def _same(a: Any, b: Any) -> bool:
    """Specs compare by their canonical form (NaN equals NaN), as the frozen-spec check does."""
    return a is b or canonical_json(a) == canonical_json(b)


# ----------------------------------------------------------------------------- YAML

_TOO_DEEP = f"lists and mappings nested more than {MAX_DEPTH} levels deep; a spec may nest at most {MAX_DEPTH} levels"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.MarkedYAMLError):
    """YAML that parses, but that no spec needs: refused before a single value is built."""

    def __init__(self, problem: str, mark: Any = None):
        super().__init__(problem=problem, problem_mark=mark)


def check_structure(root: Any, containers: tuple[type, ...], children: Callable[[Any], Sequence],
                    visit: Callable[[Any], None] | None = None) -> None:
    """Refuse a cycle, nesting deeper than MAX_DEPTH, and aliases that add more than
    MAX_ALIAS_VALUES values, in one walk that visits each shared part once (so a billion laughs
    costs its 20 lines, not its 9^10 values). `children(c)`: the items a container (an instance
    of `containers`) holds. It serves YAML nodes (an alias is the node it names) and plain data
    (an alias is the object it names) alike. `visit(container)` runs once per container.
    Raises _Refused, with the item's `start_mark` when it has one."""
    if not isinstance(root, containers):
        return
    expanded: dict[int, int] = {}  # id -> values in the container, every alias expanded
    height: dict[int, int] = {}  # id -> levels of nesting in it
    open_ids: set[int] = set()  # the containers being walked: the path from the root
    distinct = 0  # values seen so far, each shared part once
    stack: list[tuple[Any, int, list | None]] = [(root, 0, None)]
    while stack:
        item, scalars, inner = stack.pop()
        key = id(item)
        mark = getattr(item, "start_mark", None)
        if inner is not None:  # closing: every container inside is counted
            open_ids.discard(key)
            size = 1 + scalars + sum(expanded[id(k)] for k in inner)
            levels = 1 + max((height[id(k)] for k in inner), default=0)
            # what aliases added is at least this item's expansion less every value seen so far
            if size - distinct > MAX_ALIAS_VALUES:
                raise _Refused(f"aliases expand this spec by more than {MAX_ALIAS_VALUES:,} values (a \"billion "
                               f"laughs\"); aliases may add at most {MAX_ALIAS_VALUES:,} values", mark)
            if levels > MAX_DEPTH:
                raise _Refused(_TOO_DEEP, mark)
            expanded[key], height[key] = size, levels
            continue
        if key in expanded:
            continue  # a shared part, already counted
        if key in open_ids:
            raise _Refused("a list or mapping contains an alias of itself (a recursive structure); a spec "
                           "holds no cycles", mark)
        if visit is not None:
            visit(item)
        open_ids.add(key)
        kids = children(item)
        inner = [k for k in kids if isinstance(k, containers)]
        distinct += 1 + len(kids) - len(inner)
        stack.append((item, len(kids) - len(inner), inner))
        stack.extend((k, 0, None) for k in inner)


def _node_children(node: yaml.Node) -> Sequence:
    return [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else node.value


def _plain_children(value: Any) -> Sequence:
    return [*value.keys(), *value.values()] if isinstance(value, dict) else value


_NODE_CONTAINERS = (yaml.MappingNode, yaml.SequenceNode)
_PLAIN_CONTAINERS = (dict, list, tuple)


class _SpecLoading:
    """What SpecLoader adds to yaml's safe loader: checks of the composed node graph."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        check_structure(node, _NODE_CONTAINERS, _node_children, self._check_keys_unique)
        return self.construct_document(node)

    def _check_keys_unique(self, node: yaml.Node) -> None:
        """A key written twice in one mapping (two `name:` lines) is refused, naming both lines;
        yaml would keep the last silently. Keys merged in with `<<:` may be overridden."""
        if not isinstance(node, yaml.MappingNode):
            return
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise _Refused(f"duplicate key {key!r} (first on line {seen[key] + 1}); a key may appear once in "
                               f"a mapping", key_node.start_mark)
            seen[key] = key_node.start_mark.line

    def compose_node(self, parent: Any, index: Any) -> Any:
        # Only yaml's pure-Python composer calls this (libyaml stops at 1000 levels itself). It
        # recurses once per level, and would end in a RecursionError near 1000.
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH + 1:  # + 1: the scalar at the bottom is a node too
                raise _Refused(_TOO_DEEP, self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # Python parses at most 4300 digits
            raise _Refused(f"an integer of {len(node.value)} digits; ints in a spec fit in 64 bits", node.start_mark
                           ) from None


class SpecLoader(_SpecLoading, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """yaml's safe loader (libyaml's, for its speed) that refuses duplicate keys, cycles, deep
    nesting and alias bombs before it builds a value. `load_yaml` turns its errors into one line."""


SpecLoader.add_constructor("tag:yaml.org,2002:int", _SpecLoading.construct_yaml_int)


def parse_baseline(raw: Any, axes: Mapping[str, tuple], where: str = "spec: baseline") -> dict:
    """A `baseline: {axis: level}` mapping, checked against the spec's axes (one line that starts
    with `where`, names what is wrong and what is allowed). The level comes back as the axis holds
    it (0 -> 0.0)."""
    from symsweep.stats import same_level  # here: the module imports pandas, which `status` never needs
    shown_axes = ", ".join(axes) or "(none: a baseline needs an axis)"
    if not isinstance(raw, Mapping) or len(raw) != 1:
        example = f"{{{next(iter(axes))}: {axes[next(iter(axes))][0]!r}}}" if axes else "{expansion_factor: 1}"
        raise SpecError(f"{where} must name one axis and its baseline level, e.g. {example}, got "
                        f"{_short(raw)}; axes: {shown_axes}")
    (axis, level), = raw.items()
    if axis not in axes:
        raise SpecError(f"{where}: {axis!r} is not an axis of this spec; axes: {shown_axes}")
    match = [v for v in axes[axis] if same_level(v, level)]
    if not match:
        raise SpecError(f"{where}: {axis}={level!r} is not on the axis; its values: "
                        f"{', '.join(map(repr, axes[axis]))}")
    return {axis: match[0]}


# ----------------------------------------------------------------------------- expansion


def grid_points(spec: SweepSpec) -> list[tuple[str, dict]]:
    """(point id, resolved plain config) of each distinct grid point, axes in spec order."""
    task = get_task(spec.task)
    names = list(spec.axes)
    points: dict[str, dict] = {}
    for combo in itertools.product(*(spec.axes[n] for n in names)):
        params = {**spec.fixed, **dict(zip(names, combo))}
        plain = config_to_dict(build_config(task, params))
        point = _hash({"task": task.name, "config": plain})
        points.setdefault(point, plain)  # a task's config can make two grid points the same run
    return list(points.items())


def expand(spec: SweepSpec) -> list[RunSpec]:
    """The spec's runs, in a stable order: grid points (axes in spec order), then seeds."""
    runs: list[RunSpec] = []
    for point, plain in grid_points(spec):
        ids = _run_ids(spec.task, plain, spec.seeds)
        runs.extend(RunSpec(run_id=rid, task=spec.task, config=plain, seed=seed, point_id=point)
                    for rid, seed in zip(ids, spec.seeds))
    return runs


def _run_ids(task: str, config: Mapping[str, Any], seeds: Sequence[int]) -> list[str]:
    """run_id(task, config, seed) for many seeds: the canonical JSON differs only in the seed,
    so it is built once (planning a million runs takes seconds, not minutes).

    The canonical form is `{"config":...,"seed":N,"task":...}` (keys sorted): the text before
    and after the seed is built from its parts, never found by searching the whole text, which
    a config field named `seed` (or a string holding `,"seed":0,`) would fool."""
    head = ('{"config":' + canonical_json(dict(config)) + ',"seed":').encode()
    tail = (',"task":' + canonical_json(task) + "}").encode()
    sha = hashlib.sha256
    return [sha(head + str(int(s)).encode() + tail).hexdigest()[:16] for s in seeds]


def build_settings(task: Task, options: Mapping[str, Any], source: str = "spec"):
    """The task's aggregation settings from a spec's `aggregate:` mapping, validated."""
    if not isinstance(options, Mapping):
        raise SpecError(f"{source}: 'aggregate' must be a mapping of setting -> value")
    if task.aggregate_config is None:
        if options:
            raise SpecError(f"{source}: task {task.name!r} has no aggregation settings; remove 'aggregate'")
        return None
    _check_keys(options, _field_names(task.aggregate_config), f"{source}: aggregate (task {task.name!r} settings)")
    hints = typing.get_type_hints(task.aggregate_config)
    values = {k: _coerce(f"aggregate.{k}", v, hints[k]) for k, v in options.items()}
    try:
        return task.aggregate_config(**values)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{source}: invalid aggregate settings: {exc}") from None


def build_config(task: Task, params: Mapping[str, Any]):
    try:
        return task.config_cls(**params)
    except (TypeError, ValueError) as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise SpecError(f"task {task.name!r}: invalid parameters ({shown}): {exc}") from None


def config_from_dict(task: Task, plain: Mapping[str, Any]):
    """Rebuild a task's config from its plain form (as stored in a trial or a run row)."""
    hints = typing.get_type_hints(task.config_cls)
    return task.config_cls(**{k: _coerce(k, v, hints[k]) for k, v in plain.items()})


def config_to_dict(config) -> dict:
    """A config's plain fields: its run's identity (hashed into the run id) and cfg_ columns.
    Fields a task lists in its config class's OMIT_AT_DEFAULT (name -> default) are left out
    while they hold that default: settings added after sweeps had run (how a run executes,
    e.g. a captured step), so that every existing run keeps its id and its row's columns,
    and a run that sets one is a run of its own."""
    plain = _plain(dataclasses.asdict(config))
    for name, default in getattr(type(config), "OMIT_AT_DEFAULT", {}).items():
        if name in plain and plain[name] == _plain(default):
            del plain[name]
    return plain


def run_id(task: str, config: Mapping[str, Any], seed: int) -> str:
    """Stable id of a run: a hash of task, fully resolved config and seed."""
    return _hash({"task": task, "config": dict(config), "seed": int(seed)})


def pack(runs: Sequence[RunSpec], runs_per_trial: int, attempts: Mapping[str, int] | None = None) -> list[Trial]:
    """Group runs by grid point and cut each group into trials of at most runs_per_trial seeds.
    `attempts`: run_id -> attempts the ledger records, carried so a re-run counts on."""
    attempts = attempts or {}
    by_point: dict[str, list[RunSpec]] = {}
    for r in runs:
        by_point.setdefault(r.point_id, []).append(r)
    trials = []
    for group in by_point.values():
        for i in range(0, len(group), runs_per_trial):
            chunk = group[i:i + runs_per_trial]
            ids = tuple((r.run_id, r.seed) for r in chunk)
            trials.append(Trial(trial_id=_hash([r for r, _ in ids])[:12], task=chunk[0].task,
                                config=chunk[0].config, runs=ids,
                                attempts={r: attempts[r] for r, _ in ids if r in attempts}))
    return trials


# ----------------------------------------------------------------------------- helpers


def canonical_json(value: Any) -> str:
    """The one canonical text of a spec value, a config or a run's identity: JSON, keys sorted,
    no spaces, tuples as lists, other values JSON cannot hold as `_jsonable` says. Two values are
    the same for symsweep (the frozen-spec check on resume, duplicate axis values, spec changes)
    exactly when their texts are equal, NaN included; run, point and trial ids hash this text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(value: Any) -> Any:
    """What JSON cannot hold: a numpy scalar as its Python value, a set as a sorted list, anything
    else (a YAML date, an object) as its str()."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=canonical_json)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return str(value)


def _hash(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """A deep copy made only of JSON's types (order of mappings kept), by the same rules."""
    return json.loads(json.dumps(value, default=_jsonable))


def _field_names(config_cls) -> list[str]:
    return [f.name for f in dataclasses.fields(config_cls)]


def _check_keys(mapping: Mapping, allowed: Sequence[str], where: str) -> None:
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise SpecError(f"seeds must be a count or a list of ints, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise SpecError(f"seeds: a count must be >= 1, got {value}")
        return tuple(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        if len(set(value)) != len(value):
            raise SpecError(f"seeds: list repeats a seed: {_short(value)}")
        bad = [s for s in value if not 0 <= s <= MAX_SEED]
        if bad:
            raise SpecError(f"seeds: {bad[0]} is out of range; seeds are ints from 0 to {MAX_SEED}")
        return tuple(value)
    raise SpecError(f"seeds must be a count (int >= 1) or a non-empty list of ints, got {_short(value)}")


def _seeds_plain(seeds: tuple[int, ...]) -> int | list[int]:
    """A count when the seeds are 0..n-1 (as `seeds: n` wrote them), else the list."""
    return len(seeds) if seeds == tuple(range(len(seeds))) else list(seeds)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...]"


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _nonneg_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise SpecError(f"--set {item!r}: expected key=value")
    key, text = item.split("=", 1)
    return key.strip(), load_yaml(text, f"--set {key.strip()}")


def _apply_spec_override(raw: dict, key: str, value: Any) -> bool:
    """Apply a `--set` of a spec key (name, seeds, resources.cpus, aggregate.bins, ...).
    Returns False for a task parameter, which is applied once the task is known."""
    if key.startswith(("resources.", "aggregate.", "tracking.")):
        section, sub = key.split(".", 1)
        if not isinstance(raw.get(section) or {}, dict):
            raise SpecError(f"{section} must be a mapping")
        raw[section] = raw.get(section) or {}
        raw[section][sub] = value
        return True
    if key in ("fixed", "axes", "smoke", "resources", "aggregate", "tracking"):
        raise SpecError(f"--set {key}=...: set one entry (e.g. --set epochs=1 or --set resources.cpus=2)")
    if key in TOP_LEVEL_KEYS:
        raw[key] = value
        return True
    return False


def _apply_parameter_override(raw: dict, key: str, value: Any, tp: Any) -> None:
    """`--set PARAM=VALUE` of a task parameter. A list sets an axis, unless the parameter
    itself takes a list (`--set fail_seeds=[1, 2]` is one value; `[[1], [2]]` an axis of two);
    a scalar on an axis collapses it to that value; anything else becomes a fixed parameter."""
    axes = raw.setdefault("axes", {}) or {}
    fixed = raw.setdefault("fixed", {}) or {}
    raw["axes"], raw["fixed"] = axes, fixed
    if _takes_list(tp):
        is_axis = isinstance(value, list) and bool(value) and all(isinstance(v, list) for v in value)
    else:
        is_axis = isinstance(value, list)
    if is_axis:
        fixed.pop(key, None)
        axes[key] = value
    else:
        axes.pop(key, None)
        fixed[key] = value


def _takes_list(tp: Any) -> bool:
    """Whether a config field's type accepts a list value (tuple[int, ...], list, Optional of those)."""
    if tp is None:
        return False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_takes_list(a) for a in typing.get_args(tp))
    return origin in (tuple, list, Sequence) or tp in (tuple, list)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(where: str, value: Any, tp: Any) -> Any:
    """Check `value` against annotation `tp`; return it in the form the config wants."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if isinstance(value, bool) and {"on", "off"} <= set(args):
            return "on" if value else "off"  # YAML 1.1 reads an unquoted on / off as true / false
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise SpecError(f"{where}: {value!r} is not allowed; allowed values: {', '.join(map(repr, args))}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(where, value, option)
            except SpecError as exc:
                errors.append(str(exc).split(": ", 1)[-1])
        raise SpecError(f"{where}: {value!r} does not fit {_type_name(tp)} ({'; '.join(errors)})")
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_coerce(f"{where}[{i}]", v, inner) for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise SpecError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not INT64_RANGE[0] <= value <= INT64_RANGE[1]:
                raise SpecError(f"{where}: {value!r} does not fit a 64-bit int (the runs table's columns are "
                                f"int64): allowed from {INT64_RANGE[0]:,} to {INT64_RANGE[1]:,}")
            return value
        raise SpecError(f"{where}: expected an int, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise SpecError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise SpecError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise SpecError(f"{where}: expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise SpecError(f"{where}: expected {_type_name(tp)}, got {value!r}")
