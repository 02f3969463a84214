"""``pycorefile validate [--coredns] FILE...`` (pycorefile.corefile.validate.main)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycorefile.corefile.validate import main


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "Corefile", ".:1053 {\n  whoami\n  log\n}\n")
    assert main([good]) == 0
    assert capsys.readouterr().out == ""


def test_one_line_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "Corefile", ". { forward . 10.0.0.1 ; cache 30 ; prometheus :9153 }\n")
    assert main([bad]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == f"{bad}:1 - Error during parsing: Unexpected '}}' because no matching opening brace"
    )
    assert lines[1].startswith("  hint: a Corefile is line oriented")
    assert len(lines) == 2


def test_several_files_and_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, "good", ". {\n  whoami\n}\n")
    bad = write(tmp_path, "bad", ". {\n  nope1\n  whoami\n  nope2\n}\n")
    dup = write(tmp_path, "dup", ". {\n  whoami\n}\n.:53 {\n  log\n}\n")
    assert main([good, bad, dup]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{bad}:2 - Error during parsing: Unknown directive 'nope1'",
        f"{bad}:4 - Error during parsing: Unknown directive 'nope2'",
        f"{dup}: cannot serve dns://.:53 - it is already defined",
    ]


def test_coredns_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        "Corefile",
        ".:53 {\n  kubernetes cluster.local\n  forward . /etc/resolv.conf\n}\n",
    )
    assert main([path]) == 1
    out = capsys.readouterr().out
    assert f"{path}:2 - plugin 'kubernetes' is not supported by pycorefile" in out
    assert main(["--coredns", path]) == 0
    assert capsys.readouterr().out == ""


def test_coredns_mode_still_rejects_third_party(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "Corefile", ". {\n  gslb x\n}\n")
    assert main(["--coredns", path]) == 1
    assert (
        capsys.readouterr().out.strip()
        == f"{path}:2 - Error during parsing: Unknown directive 'gslb'"
    )


def test_imports_resolve_next_to_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "zones").mkdir()
    zone = write(tmp_path / "zones", "a.conf", "a.org {\n  nope\n}\n")
    main_file = write(tmp_path, "Corefile", "import zones/*.conf\n")
    assert main([main_file]) == 1
    assert (
        capsys.readouterr().out.strip()
        == f"{zone}:2 - Error during parsing: Unknown directive 'nope'"
    )


def test_dns_port_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "Corefile", ". {\n  whoami\n}\n.:1053 {\n  log\n}\n")
    assert main([path]) == 0
    assert main(["-dns.port", "1053", path]) == 1
    assert "cannot serve dns://.:1053 - it is already defined" in capsys.readouterr().out


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope")
    assert main([missing]) == 1
    assert capsys.readouterr().out.startswith(f"{missing}: cannot read:")


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "--coredns" in capsys.readouterr().out
