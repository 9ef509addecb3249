"""Spec loading, validation, grid expansion, run ids and packing."""
from __future__ import annotations

import pytest

from symsweep import SpecError, UnknownTaskError, expand, pack, run_id, spec_from_dict
from symsweep.spec import SweepSpec

BASE = {"name": "t", "task": "synthetic", "fixed": {"steps": 5}, "axes": {"lr": [0.1, 0.2]}, "seeds": 3}


def test_grid_is_cartesian_product_times_seeds():
    spec = spec_from_dict({**BASE, "axes": {"lr": [0.1, 0.2], "n_features": [2, 3, 4]}})
    runs = expand(spec)
    assert len(runs) == 2 * 3 * 3
    assert {(r.config["lr"], r.config["n_features"], r.seed) for r in runs} == {
        (lr, nf, s) for lr in (0.1, 0.2) for nf in (2, 3, 4) for s in range(3)}
    assert len({r.run_id for r in runs}) == len(runs)


def test_run_id_is_stable_and_covers_resolved_config():
    runs = expand(spec_from_dict(BASE))
    again = expand(spec_from_dict({**BASE, "fixed": {"steps": 5, "n_samples": 64}}))  # 64 is the default
    assert [r.run_id for r in runs] == [r.run_id for r in again]
    cfg = runs[0].config
    assert cfg["n_samples"] == 64 and cfg["sleep_s"] == 0.0  # defaults are part of the resolved config
    assert runs[0].run_id == run_id("synthetic", dict(reversed(list(cfg.items()))), runs[0].seed)
    assert run_id("synthetic", cfg, 0) != run_id("synthetic", cfg, 1)
    assert run_id("synthetic", cfg, 0) != run_id("synthetic", {**cfg, "steps": 6}, 0)
    assert len(runs[0].run_id) == 16


def test_seeds_count_or_list():
    assert spec_from_dict({**BASE, "seeds": 4}).seeds == (0, 1, 2, 3)
    assert spec_from_dict({**BASE, "seeds": [7, 11]}).seeds == (7, 11)
    for bad in (0, [], [1, 1], "3", True, [1.5]):
        with pytest.raises(SpecError, match="seeds"):
            spec_from_dict({**BASE, "seeds": bad})


def test_overrides_scale_a_spec_down():
    spec = spec_from_dict(BASE, ["seeds=2", "steps=1", "lr=0.5", "resources.cpus=0.5", "runs_per_trial=4"])
    assert spec.seeds == (0, 1)
    assert spec.fixed == {"steps": 1, "lr": 0.5} and spec.axes == {}
    assert spec.resources.cpus == 0.5 and spec.runs_per_trial == 4
    spec = spec_from_dict(BASE, ["lr=[0.3, 0.4, 0.5]", "n_features=[1, 2]"])
    assert spec.axes == {"lr": (0.3, 0.4, 0.5), "n_features": (1, 2)}


@pytest.mark.parametrize("raw, message", [
    ({**BASE, "seedz": 3}, r"unknown key\(s\) 'seedz'; allowed: name, task"),
    ({**BASE, "fixed": {"stepz": 5}}, r"unknown key\(s\) 'stepz'; allowed: n_features, n_samples, steps"),
    ({**BASE, "axes": {"lrr": [1]}}, r"'lrr'; allowed: n_features"),
    ({**BASE, "fixed": {"steps": "five"}}, r"fixed.steps: expected an int, got 'five'"),
    ({**BASE, "fixed": {"steps": 2.5}}, r"expected an int, got 2.5"),
    ({**BASE, "fixed": {"steps": 0}}, r"steps must be >= 1"),
    ({**BASE, "axes": {"lr": []}}, r"axis 'lr' must be a non-empty list"),
    ({**BASE, "axes": {"lr": 0.1}}, r"axis 'lr' must be a non-empty list"),
    ({**BASE, "axes": {"steps": [1]}}, r"set both in 'fixed' and in 'axes'"),
    ({**BASE, "resources": {"cpu": 1}}, r"unknown key\(s\) 'cpu'; allowed: cpus, gpus"),
    ({**BASE, "resources": {"cpus": -1}}, r"resources must be >= 0"),
    ({**BASE, "runs_per_trial": 0}, r"runs_per_trial must be an int >= 1"),
    ({**BASE, "name": "a b"}, r"name 'a b' is not allowed: a sweep name is one folder name"),
    ({**BASE, "name": ".."}, r"name '..' is not allowed"),
    ({**BASE, "name": "."}, r"name '.' is not allowed"),
    ({**BASE, "name": "a/b"}, r"name 'a/b' is not allowed"),
    ({**BASE, "name": "x" * 101}, r"is not allowed: a sweep name is one folder name of at most 100"),
    ({**BASE, "resources": {"cpus": float("nan")}}, r"resources.cpus: expected a finite number, got nan"),
    ({**BASE, "resources": {"gpus": float("inf")}}, r"resources.gpus: expected a finite number, got inf"),
    ({**BASE, "fixed": {"sleep_s": float("nan")}}, r"fixed.sleep_s: expected a finite number, got nan"),
    ({**BASE, "axes": {"lr": [0.1, float("-inf")]}}, r"axes.lr\[1\]: expected a finite number, got -inf"),
    ({**BASE, "seeds": [-1, 3]}, r"seeds: -1 is out of range; seeds are ints from 0 to 4294967295"),
    ({**BASE, "seeds": [2**32]}, r"seeds: 4294967296 is out of range"),
    ({**BASE, "seeds": 10**9}, r"2 grid points x 1000000000 seeds = 2000000000 runs, more than max_runs = 1000000"),
    ({**BASE, "seeds": list(range(600_000))}, r"2 grid points x 600000 seeds = 1200000 runs, more than max_runs"),
    ({**BASE, "seeds": 3, "max_runs": 5}, r"2 grid points x 3 seeds = 6 runs, more than max_runs = 5"),
    ({**BASE, "max_runs": 0}, r"max_runs must be an int >= 1"),
    ({k: v for k, v in BASE.items() if k != "task"}, r"'task' is required"),
])
def test_bad_specs_name_the_value_and_what_is_allowed(raw, message):
    with pytest.raises(SpecError, match=message):
        spec_from_dict(raw)


def test_unknown_task_lists_registered_tasks():
    with pytest.raises(UnknownTaskError, match=r"unknown task 'nope'; registered tasks: .*image_classification.*synthetic"):
        spec_from_dict({**BASE, "task": "nope"})


def test_literal_and_union_types_are_checked():
    base = {"name": "i", "task": "image_classification", "seeds": 1}
    with pytest.raises(SpecError, match=r"'cosinus' is not allowed; allowed values: 'cosine', 'step', 'none'"):
        spec_from_dict({**base, "fixed": {"scheduler": "cosinus"}})
    with pytest.raises(SpecError, match=r"fixed.fill: 'noise' does not fit"):
        spec_from_dict({**base, "fixed": {"fill": "noise"}})
    spec = spec_from_dict({**base, "axes": {"fill": [0, 0.5, "random"]}})
    assert spec.axes["fill"] == (0.0, 0.5, "random")


def test_bad_override_syntax():
    with pytest.raises(SpecError, match="expected key=value"):
        spec_from_dict(BASE, ["seeds"])
    with pytest.raises(SpecError, match="set one entry"):
        spec_from_dict(BASE, ["fixed={}"])


def test_packing_groups_seeds_of_one_grid_point():
    spec = spec_from_dict({**BASE, "seeds": 5})
    trials = pack(expand(spec), runs_per_trial=2)
    assert [len(t.runs) for t in trials] == [2, 2, 1, 2, 2, 1]
    for t in trials:
        assert len({(r.run_id) for r in expand(spec) if (r.run_id, r.seed) in t.runs}) == len(t.runs)
        assert all(r.config == t.config for r in expand(spec) if (r.run_id, r.seed) in t.runs)
    assert len({t.trial_id for t in trials}) == len(trials)


def test_to_dict_round_trips():
    spec = spec_from_dict({**BASE, "smoke": {"seeds": 1}})
    again = spec_from_dict(spec.to_dict())
    assert isinstance(again, SweepSpec) and again == spec


def test_a_billion_seeds_is_refused_at_once():
    import time
    start = time.perf_counter()
    with pytest.raises(SpecError, match="max_runs"):
        spec_from_dict({**BASE, "seeds": 10**9})
    with pytest.raises(SpecError, match="max_runs"):
        spec_from_dict({**BASE, "axes": {"lr": [0.1 * i for i in range(1, 1001)], "n_samples": list(range(1, 2001))}})
    assert time.perf_counter() - start < 0.5


def test_max_runs_can_be_raised_for_large_plans():
    # how fast 200,000 runs plan is a bench/scale.py figure, not a timed test
    spec = spec_from_dict({**BASE, "seeds": 100_000, "max_runs": 200_000})
    runs = expand(spec)
    assert len(runs) == 200_000 and len({r.run_id for r in runs}) == 200_000
    assert runs[12345].run_id == run_id("synthetic", runs[12345].config, runs[12345].seed)


def test_list_override_of_a_list_valued_parameter_is_one_value_not_an_axis():
    spec = spec_from_dict(BASE, ["fail_seeds=[1]"])
    assert spec.fixed["fail_seeds"] == (1,) and "fail_seeds" not in spec.axes
    spec = spec_from_dict(BASE, ["fail_seeds=[]"])
    assert spec.fixed["fail_seeds"] == ()
    spec = spec_from_dict(BASE, ["fail_seeds=[[1], [2, 3]]"])
    assert spec.axes["fail_seeds"] == ((1,), (2, 3)) and "fail_seeds" not in spec.fixed
    spec = spec_from_dict(BASE, ["steps=[1, 2]"])  # a scalar parameter: a list is an axis, even if fixed
    assert spec.axes["steps"] == (1, 2) and "steps" not in spec.fixed


def test_malformed_yaml_is_one_line_with_line_and_column(tmp_path):
    from symsweep import load_spec
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntask: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:3:1: not valid YAML:"), message


# ----------------------------------------------------------------------------- baseline


@pytest.mark.parametrize("baseline, message", [
    ({"lrr": 0.1}, r"spec: baseline: 'lrr' is not an axis of this spec; axes: lr$"),
    ({"steps": 5}, r"baseline: 'steps' is not an axis of this spec; axes: lr$"),  # fixed, not an axis
    ({"lr": 0.3}, r"baseline: lr=0.3 is not on the axis; its values: 0.1, 0.2$"),
    ({"lr": 0.1, "steps": 5}, r"baseline must name one axis and its baseline level, e.g. \{lr: 0.1\}"),
    ({}, r"baseline must name one axis and its baseline level, e.g. \{lr: 0.1\}, got \{\}; axes: lr"),
    ("lr", r"baseline must name one axis and its baseline level, e.g. \{lr: 0.1\}, got 'lr'"),
    (None, r"baseline must name one axis and its baseline level"),
])
def test_a_bad_baseline_names_what_is_wrong_and_what_is_allowed(baseline, message):
    with pytest.raises(SpecError, match=message) as info:
        spec_from_dict({**BASE, "baseline": baseline})
    assert "\n" not in str(info.value)


def test_a_bad_baseline_stops_the_cli_with_exit_code_2_and_one_line(tmp_path):
    from conftest import symsweep
    spec = tmp_path / "b.yaml"
    spec.write_text("name: b\ntask: synthetic\naxes: {lr: [0.1, 0.2]}\nseeds: 2\nbaseline: {lr: 0.5}\n")
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert f"{spec}: baseline: lr=0.5 is not on the axis; its values: 0.1, 0.2" in res.stderr
    assert not (tmp_path / "res").exists()


def test_the_spec_baseline_is_one_rule_for_every_comparison_and_not_part_of_the_runs():
    plain = spec_from_dict(BASE)
    spec = spec_from_dict({**BASE, "baseline": {"lr": 0.2}})
    assert spec.comparison_baseline() == {"lr": 0.2} and plain.comparison_baseline() == {}  # synthetic has none
    assert spec_from_dict(spec.to_dict()) == spec and "baseline" not in plain.to_dict()
    # an analysis setting, like `aggregate:`: the runs, their ids and the sweep's identity stay
    assert [r.run_id for r in expand(spec)] == [r.run_id for r in expand(plain)]
    assert spec.science() == plain.science()
    # the level is the axis's own value, however the spec spelled it
    image = {"name": "i", "task": "image_classification", "seeds": 1, "axes": {"fill": [0, 0.5, "random"]}}
    assert spec_from_dict({**image, "baseline": {"fill": 0}}).baseline == {"fill": 0.0}
    assert spec_from_dict({**image, "baseline": {"fill": "0.5"}}).baseline == {"fill": 0.5}
    # no spec baseline: the task's (image_classification compares with expansion_factor 1)
    assert spec_from_dict(image).comparison_baseline() == {"expansion_factor": 1}


def test_adaptive_seeds_use_the_spec_baseline_and_their_own_key_keeps_working():
    adaptive = {"adaptive": {"metric": "loss", "start": 2, "step": 2, "max": 4}}
    spec = spec_from_dict({**BASE, "seeds": adaptive, "baseline": {"lr": 0.2}})
    assert spec.adaptive.baseline == {"lr": 0.2} and spec.comparison_baseline() == {"lr": 0.2}
    assert spec_from_dict(spec.to_dict()) == spec
    own = {"adaptive": {**adaptive["adaptive"], "baseline": {"lr": 0.2}}}
    old = spec_from_dict({**BASE, "seeds": own})
    assert old.comparison_baseline() == {"lr": 0.2} and old.science() == spec.science()
    assert spec_from_dict({**BASE, "seeds": own, "baseline": {"lr": 0.2}}).adaptive == spec.adaptive
    with pytest.raises(SpecError, match=r"seeds.adaptive.baseline \{'lr': 0.2\} differs from the spec's baseline "
                                        r"\{'lr': 0.1\}; set it once"):
        spec_from_dict({**BASE, "seeds": own, "baseline": {"lr": 0.1}})
    with pytest.raises(SpecError, match=r"seeds.adaptive.baseline: lr=0.3 is not on the axis"):
        spec_from_dict({**BASE, "seeds": {"adaptive": {**adaptive["adaptive"], "baseline": {"lr": 0.3}}}})


# ----------------------------------------------------------------------------- hostile input


def test_shared_cyclic_or_deep_data_is_refused_before_it_is_copied():
    """spec_from_dict takes plain data too (a frozen spec, the API): an alias bomb there is
    objects shared many times, and copying it would expand them all."""
    bomb = ["lol"] * 9
    for _ in range(7):  # 9^8 = 43 million values, in 8 small lists
        bomb = [bomb] * 9
    with pytest.raises(SpecError, match=r"^spec: aliases expand this spec by more than 1,000,000 values"):
        spec_from_dict({**BASE, "description": bomb})
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(SpecError, match=r"^spec: a list or mapping contains an alias of itself"):
        spec_from_dict({**BASE, "smoke": {"x": cycle}})
    deep: list = []
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(SpecError, match=r"^spec: lists and mappings nested more than 64 levels deep"):
        spec_from_dict({**BASE, "description": deep})
    shared = [0.1, 0.2]  # sharing within the bound is fine (YAML aliases of a small block)
    assert spec_from_dict({**BASE, "axes": {"lr": shared}, "smoke": {"lr": shared}}).axes["lr"] == (0.1, 0.2)


def test_a_seed_list_longer_than_max_runs_is_refused_before_it_is_copied():
    import time
    start = time.perf_counter()
    with pytest.raises(SpecError, match=r"seeds: a list of 2000000 seeds plans more than max_runs = 1000000 runs"):
        spec_from_dict({**BASE, "seeds": list(range(2_000_000))})
    with pytest.raises(SpecError, match=r"a list of 3 seeds plans more than max_runs = 2 runs"):
        spec_from_dict(BASE, ["seeds=[1, 2, 3]", "max_runs=2"])
    assert time.perf_counter() - start < 5  # coarse: copying and checking them took seconds


def _python_loader():
    """The loader as it is where libyaml is missing (yaml's pure-Python composer)."""
    import yaml
    from symsweep.spec import _SpecLoading
    loader = type("PySpecLoader", (_SpecLoading, yaml.SafeLoader), {})
    loader.add_constructor("tag:yaml.org,2002:int", _SpecLoading.construct_yaml_int)
    return loader


@pytest.mark.parametrize("python", [False, True], ids=["libyaml", "python"])
@pytest.mark.parametrize("text, message", [
    ("a: " + "[" * 50_000 + "]" * 50_000, r":1:\d+: lists and mappings nested more than 64 levels deep"),
    ("a: " + "[" * 65 + "]" * 65, r":1:\d+: lists and mappings nested more than 64 levels deep"),
    ("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 70)) + "  " * 70 + "c: 1\n",
     r":\d+:\d+: lists and mappings nested more than 64"),
    ("a: &r [1, *r]", r":1:4: a list or mapping contains an alias of itself"),
    ("a: &r {b: *r}", r":1:4: a list or mapping contains an alias of itself"),
    ("a: 1\nb: {c: 1, d: 2, c: 3}", r":2:17: duplicate key 'c' \(first on line 2\); a key may appear once"),
    ("1: a\n0x1: b", r":2:1: duplicate key 1 \(first on line 1\)"),
    ("a: 1" + "0" * 5000, r":1:4: an integer of 5001 digits; ints in a spec fit in 64 bits"),
])
def test_the_loader_refuses_what_no_spec_needs_naming_the_place(text, message, python, monkeypatch):
    from symsweep import spec as spec_module
    if python:
        monkeypatch.setattr(spec_module, "SpecLoader", _python_loader())
    with pytest.raises(SpecError, match=r"^s\.yaml" + message) as info:
        spec_module.load_yaml(text, "s.yaml")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("python", [False, True], ids=["libyaml", "python"])
def test_the_loader_keeps_what_specs_do_write(python, monkeypatch):
    from symsweep import spec as spec_module
    if python:
        monkeypatch.setattr(spec_module, "SpecLoader", _python_loader())
    text = ("base: &base {lr: 0.1, steps: 5}\n"
            "fixed: {<<: *base, steps: 6}\n"  # a merged key may be overridden: that is what merges are for
            "axes: {lr: &lrs [0.1, 0.2]}\n"
            "smoke: {lr: *lrs}\n"
            "deep: " + "[" * 63 + "]" * 63 + "\n")  # 64 levels, the spec included
    data = spec_module.load_yaml(text, "s.yaml")
    assert data["fixed"] == {"lr": 0.1, "steps": 6} and data["smoke"] == {"lr": [0.1, 0.2]}


def test_a_spec_file_over_one_megabyte_is_refused_unread(tmp_path):
    from symsweep import load_spec
    path = tmp_path / "big.yaml"
    path.write_text("name: t\ntask: synthetic\n# " + "x" * 1_000_000 + "\n")
    with pytest.raises(SpecError, match=r"the spec file is larger than 1,000,000 bytes; a spec may be at most"):
        load_spec(path)
    path.write_text("name: t\ntask: synthetic\nseeds: [" + ", ".join(map(str, range(100_000))) + "]\n")
    assert len(load_spec(path).seeds) == 100_000  # 600 kB: allowed


# ----------------------------------------------------------------------------- budget ranges


def test_every_task_declares_budget_ranges_of_its_own_fields_around_its_defaults():
    import dataclasses
    from symsweep import available_tasks, get_task
    for name in available_tasks():
        config_cls = get_task(name).config_cls
        fields = {f.name: f for f in dataclasses.fields(config_cls)}
        ranges = getattr(config_cls, "BUDGET_RANGES", {})
        assert ranges, f"task {name} declares no budget ranges"
        for key, (low, high) in ranges.items():
            assert key in fields and type(low) is int and type(high) is int and low < high, (name, key)
            default = fields[key].default
            assert default is None or low <= default <= high, (name, key, default)
        assert "BUDGET_RANGES" not in dataclasses.asdict(config_cls()) if name == "synthetic" else True


@pytest.mark.parametrize("raw, message", [
    ({**BASE, "fixed": {"steps": 10**23}},
     r"^spec: fixed.steps = 100000000000000000000000 is out of range: steps must be >= 1 and <= 10,000,000 "
     r"\(task 'synthetic'\)$"),
    ({**BASE, "fixed": {}, "axes": {"steps": [5, 10**7 + 1]}}, r"axes.steps\[1\] = 10000001 is out of range: steps must be"),
    ({**BASE, "fixed": {"steps": 0}}, r"steps must be >= 1"),  # the config's own check said the same
    ({"name": "r", "task": "replica", "fixed": {"n_images": 10**9}},
     r"fixed.n_images = 1000000000 is out of range: n_images must be >= 2 and <= 10,000,000 \(task 'replica'\)"),
    ({"name": "p", "task": "pinn", "fixed": {"iterations": 10**12}}, r"iterations must be >= 1 and <= 10,000,000"),
    ({**BASE, "fixed": {"fail_seeds": [2**63]}}, r"fixed.fail_seeds\[0\]: 9223372036854775808 does not fit a 64-bit"),
])
def test_budgets_out_of_the_tasks_range_are_refused_naming_the_range(raw, message):
    with pytest.raises(SpecError, match=message):
        spec_from_dict(raw)


def test_budget_ranges_leave_optional_budgets_and_run_ids_alone():
    image = {"name": "i", "task": "image_classification", "seeds": 1}
    assert spec_from_dict({**image, "fixed": {"train_limit": None}}).fixed == {"train_limit": None}
    with pytest.raises(SpecError, match=r"train_limit = 0 is out of range: train_limit must be >= 1"):
        spec_from_dict({**image, "fixed": {"train_limit": 0}})
    # run ids hash the resolved config values only: a class attribute is not among them
    runs = expand(spec_from_dict(BASE))
    assert "BUDGET_RANGES" not in runs[0].config and runs[0].run_id == run_id("synthetic", runs[0].config, 0)


# ----------------------------------------------------------------------------- changed specs


def test_spec_changes_are_summarized_in_a_short_line():
    from symsweep.spec import brief, describe_changes
    old = spec_from_dict(BASE).science()
    new = spec_from_dict({**BASE, "fixed": {"steps": 6}, "seeds": list(range(1, 2_000_001)),
                          "max_runs": 10**7}).science()
    text = describe_changes(old, new)
    assert text == ("fixed.steps: 5 -> 6; seeds: [0, 1, 2] -> list of 2000000 items (1, 2, 3, ..., 2000000)"), text
    many = describe_changes({"fixed": {f"k{i}": i for i in range(500)}}, {"fixed": {}})
    assert len(many) < 700 and many.endswith("(500 differences in all)"), many
    assert brief("x" * 1000).endswith("...") and len(brief("x" * 1000)) < 210
    assert brief([[1, 2, 3, 4, 5, 6, 7]] * 7).startswith("list of 7 items (list of 7 items (1, 2, 3, ..., 7), ")


def test_one_canonical_form_serves_run_ids_and_spec_comparison():
    """run ids, the frozen-spec check and duplicate axis values all read spec.canonical_json."""
    import hashlib

    import numpy as np

    from symsweep.spec import _same, canonical_json
    config = {"b": [1, 2], "a": float("nan"), "c": {"y": 1, "x": (2, 3)}}
    assert canonical_json(config) == '{"a":NaN,"b":[1,2],"c":{"x":[2,3],"y":1}}'
    assert _same(config, {"c": {"x": [2, 3], "y": 1}, "a": float("nan"), "b": [1, 2]})  # NaN equals NaN
    assert canonical_json({"lr": np.float64(0.1), "n": np.int64(3)}) == canonical_json({"lr": 0.1, "n": 3})
    assert canonical_json({"s": {"b", "a", "c"}}) == canonical_json({"s": {"c", "a", "b"}})
    text = canonical_json({"config": {"lr": 0.1}, "seed": 3, "task": "synthetic"})
    assert run_id("synthetic", {"lr": 0.1}, 3) == hashlib.sha256(text.encode()).hexdigest()[:16]
    with pytest.raises(SpecError, match="repeats a value"):
        spec_from_dict({"name": "x", "task": "synthetic", "axes": {"lr": [0.1, 0.1]}})


def test_an_unquoted_on_or_off_is_the_setting_not_a_boolean():
    """YAML 1.1 reads `vectorize: on` as true; a setting whose values are "on" / "off" takes it
    as meant (the PINN and replica tasks' vectorize), with the run id of the quoted form."""
    from symsweep.spec import spec_from_dict
    for task, values in (("pinn", ("on", "off")), ("replica", ("on", "off"))):
        for yaml_value, meant in ((True, values[0]), (False, values[1])):
            spec = spec_from_dict({"name": "v", "task": task, "fixed": {"vectorize": yaml_value}, "seeds": 1})
            quoted = spec_from_dict({"name": "v", "task": task, "fixed": {"vectorize": meant}, "seeds": 1})
            runs, runs_quoted = expand(spec), expand(quoted)
            assert runs[0].config.get("vectorize", "off") == meant
            assert [r.run_id for r in runs] == [r.run_id for r in runs_quoted]
