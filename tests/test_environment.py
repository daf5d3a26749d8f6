import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from specbook.paths import ROOT


def test_environment_yml_installs_this_package_with_the_gpu_extra():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert [p.replace('"', "") for p in pip] == ["-r requirements-gpu.txt", "-e .[gpu,dev]"], (
        "environment.yml must take every package from pyproject.toml, at the locked versions"
    )
    extras = project["optional-dependencies"]
    assert {"gpu", "dev"} <= set(extras)
    assert {req.split(">")[0].split("=")[0] for req in extras["gpu"]} == {"unsloth", "vllm"}
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert {d.split("=")[0] for d in conda} == {"python", "pip"}, "other packages belong in pyproject.toml"
    python = next(d for d in conda if d.startswith("python="))
    minimum = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("=")[1].split("."))) >= tuple(map(int, minimum.split(".")))


def test_makefile_pins_the_cpu_torch():
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


# The versions the GPU code (engines.vllm_engine, training's Unsloth path, gemini) was written and checked
# against. A new lock that moves one fails here: read that library's changes, then update this.
GPU_WRITTEN_FOR = {"vllm": "0.33.0", "unsloth": "2026.10.9", "trl": "1.15.0", "transformers": "5.17.0", "peft": "0.21.2"}


def locked() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements-gpu.txt").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            assert canonicalize_name(name) not in pins, f"{name} is pinned twice"
            pins[canonicalize_name(name)] = Version(version.split(";")[0].strip())
    return pins


def test_the_gpu_lock_satisfies_pyproject_and_holds_the_versions_the_code_is_written_for():
    """requirements-gpu.txt (`make lock`, for Linux x86-64 and Python 3.12) against pyproject.toml,
    offline: every requirement of the package and of its gpu and dev extras is pinned and met."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = locked()
    wanted = [(r, "") for r in project["dependencies"]] + [(r, e) for e in ("gpu", "dev") for r in project["optional-dependencies"][e]]
    for text, extra in wanted:
        req = Requirement(text)
        where = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux", "platform_machine": "x86_64"}
        if req.marker is not None and not req.marker.evaluate({**where, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements-gpu.txt: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements-gpu.txt has {req.name} {pins[name]}, pyproject asks {req}"
        )
    for name, version in GPU_WRITTEN_FOR.items():
        assert pins[name] == Version(version), f"the lock moved {name} to {pins[name]}; check the GPU code against it, then GPU_WRITTEN_FOR"
