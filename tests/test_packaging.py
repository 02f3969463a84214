"""The top-level ``plugins/`` folder is installed as ``pycorefile.plugins``, with its
data files and entry points, both by ``pip install .`` and ``pip install -e .``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECK = r"""
import json, importlib.resources as res
import pycorefile, pycorefile.plugins.template as t
from pycorefile.registry import default_registry
reg = default_registry()
print(json.dumps({
    "pycorefile": pycorefile.__file__,
    "template": t.__file__,
    "grammar": res.files("pycorefile.corefile").joinpath("grammar.lark").is_file(),
    "gotemplate": res.files("pycorefile.plugins.template").joinpath("gotemplate.lark").is_file(),
    "readme": res.files("pycorefile.plugins.forward").joinpath("README.md").is_file(),
    "plugins": reg.ordered(),
    "failed": reg.failed(),
    "typed": res.files("pycorefile").joinpath("py.typed").is_file(),
}))
"""


@pytest.mark.integration
@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_pip_install(tmp_path: Path, editable: bool) -> None:
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    py = target / "bin" / "python"
    # The dependencies come from the running environment (no index needed); only
    # pycorefile itself is installed into the new one.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"], "PIP_NO_INDEX": "1"}
    args = [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    args += ["-e", str(ROOT)] if editable else [str(ROOT)]
    subprocess.run(args, check=True, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    out = subprocess.run([str(py), "-c", CHECK], check=True, env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    info = json.loads(out.stdout)
    site = str(target)
    if editable:
        # Editable: the modules are the checkout's, found through the installed finder.
        assert info["pycorefile"].startswith(str(ROOT / "pycorefile"))
        assert info["template"].startswith(str(ROOT / "plugins" / "template"))
    else:
        assert info["pycorefile"].startswith(site) and info["template"].startswith(site)
        assert "site-packages/pycorefile/plugins/template" in info["template"]
    assert info["grammar"] and info["gotemplate"] and info["readme"] and info["typed"]
    assert info["failed"] == {}
    for name in ("template", "forward", "cache", "prometheus", "hosts", "whoami"):
        assert name in info["plugins"]
    assert info["plugins"].index("cache") < info["plugins"].index("template") < info["plugins"].index("forward")
    console = target / "bin" / "pycorefile"
    assert console.exists()
    ver = subprocess.run([str(console), "-version"], env=env, capture_output=True, text=True, timeout=60)
    assert ver.stdout.startswith("pycorefile-"), ver.stdout + ver.stderr
    assert sys.version_info >= (3, 10)
