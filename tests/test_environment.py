import tomllib

import yaml

from specbook.paths import ROOT


def test_environment_yml_installs_this_package_with_the_gpu_extra():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert [p.replace('"', "") for p in pip] == ["-e .[gpu,dev]"], "environment.yml must take every package from pyproject.toml"
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
