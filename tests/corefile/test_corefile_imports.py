"""``import`` of files, globs and snippets (spec §1.4)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pycorefile.corefile import Corefile, CorefileError, ServerBlock

Parse = Callable[..., Corefile]


def counts(block: ServerBlock) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in block.directives:
        out[d.name] = out.get(d.name, 0) + len(d.raw)
    return out


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- files ---------------------------------------------------------------------


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_recursive_import(cparse: Parse, tmp_path: Path, absolute: bool) -> None:
    # file1 imports file2 relative to its own directory, not to the main file's.
    sub = tmp_path / "sub"
    write(sub / "file2", "dir2 1\n")
    file1 = write(sub / "file1", "localhost\ndir1\nimport file2\n")
    main = tmp_path / "Corefile"
    pattern = str(file1) if absolute else "sub/file1"
    block = cparse(f"import {pattern}", filename=str(main)).blocks[0]
    assert [k.text for k in block.keys] == ["localhost"]
    assert counts(block) == {"dir1": 1, "dir2": 2}


def test_import_inside_directive_block(cparse: Parse, tmp_path: Path) -> None:
    write(tmp_path / "props", "prop1 1\nprop2 2\n")
    block = cparse(
        "localhost\nproxy {\nimport props\ntransparent\n}", filename=str(tmp_path / "Corefile")
    ).blocks[0]
    proxy = block.directives[0]
    assert len(proxy.raw) == 8
    assert [(d.name, d.args) for d in proxy.block or ()] == [
        ("prop1", ("1",)),
        ("prop2", ("2",)),
        ("transparent", ()),
    ]


def test_import_inside_directive_block_missing_file(cparse: Parse, tmp_path: Path) -> None:
    with pytest.raises(CorefileError, match="File to import not found: nope"):
        cparse("localhost\nproxy {\nimport nope\n}", filename=str(tmp_path / "Corefile"))


def test_imported_tokens_carry_absolute_path_and_own_lines(cparse: Parse, tmp_path: Path) -> None:
    conf = write(tmp_path / "conf.d" / "zone.conf", "\n\nexample.org {\n  whoami\n}\n")
    cf = cparse("import conf.d/*.conf", filename=str(tmp_path / "Corefile"))
    block = cf.blocks[0]
    assert (block.file, block.line) == (str(conf), 3)
    assert (block.directives[0].file, block.directives[0].line) == (str(conf), 4)


def test_error_inside_imported_file_names_that_file(cparse: Parse, tmp_path: Path) -> None:
    conf = write(tmp_path / "zones" / "bad.conf", "example.org {\n  whoami\n  nosuchplugin\n}\n")
    with pytest.raises(CorefileError) as info:
        cparse(". {\n  whoami\n}\nimport zones/bad.conf\n", filename=str(tmp_path / "Corefile"))
    assert (info.value.filename, info.value.line) == (str(conf), 3)
    assert str(info.value).startswith(
        f"{conf}:3 - Error during parsing: Unknown directive 'nosuchplugin'"
    )


def test_syntax_error_inside_imported_file(cparse: Parse, tmp_path: Path) -> None:
    conf = write(tmp_path / "one-line.conf", "example.org { whoami }\n")
    with pytest.raises(CorefileError) as info:
        cparse("import one-line.conf", filename=str(tmp_path / "Corefile"))
    assert str(info.value).splitlines()[0] == (
        f"{conf}:1 - Error during parsing: Unexpected '}}' because no matching opening brace"
    )


def test_main_file_keeps_name_as_given(cparse: Parse) -> None:
    with pytest.raises(CorefileError) as info:
        cparse(". {\nnosuch\n}", filename="conf/Corefile")
    assert str(info.value) == "conf/Corefile:2 - Error during parsing: Unknown directive 'nosuch'"


def test_glob_imports_in_byte_order_including_dotfiles(cparse: Parse, tmp_path: Path) -> None:
    for name in ("b.conf", "a.conf", ".hidden.conf", "C.conf"):
        write(tmp_path / "d" / name, f"{name.strip('.').replace('.conf', '')}.example {{\n}}\n")
    cf = cparse("import d/*.conf", filename=str(tmp_path / "Corefile"))
    assert [b.keys[0].text for b in cf.blocks] == [
        "hidden.example",
        "C.example",
        "a.example",
        "b.example",
    ]


def test_glob_matching_many_empty_files_is_fine(cparse: Parse, tmp_path: Path) -> None:
    # The caps count import statements, not the files one glob brings in.
    for i in range(100):
        write(tmp_path / "many" / f"f{i:03d}", "")
    assert cparse("import many/*", filename=str(tmp_path / "Corefile")).blocks == ()


def test_import_directory_is_an_error(cparse: Parse, tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(
        CorefileError, match=f"Could not import {tmp_path / 'adir'}: is a directory"
    ):
        cparse("import adir", filename=str(tmp_path / "Corefile"))


def test_bad_glob_pattern(cparse: Parse, tmp_path: Path) -> None:
    with pytest.raises(
        CorefileError, match=r"Failed to use import pattern a\[b: syntax error in pattern"
    ):
        cparse("import a[b", filename=str(tmp_path / "Corefile"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("import", "Wrong argument count or unexpected line ending after 'import'"),
        ("import a b", "Import takes only one argument (glob pattern or file)"),
        ('import ""', "Import requires a non-empty filepath"),
        ("import {$UNSET}", "Import requires a non-empty filepath"),
    ],
)
def test_import_argument_count(cparse: Parse, text: str, message: str) -> None:
    with pytest.raises(CorefileError) as info:
        cparse(text)
    assert info.value.message == message


def test_import_pattern_env_substituted(cparse: Parse, tmp_path: Path) -> None:
    write(tmp_path / "zones" / "x.conf", "x.example {\n}\n")
    cf = cparse("import {$DIR}/x.conf", filename=str(tmp_path / "Corefile"), env={"DIR": "zones"})
    assert cf.blocks[0].keys[0].text == "x.example"


def test_file_import_cycle(cparse: Parse, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text(f"import {b}")
    b.write_text(f"import {a}")
    with pytest.raises(CorefileError, match=r"maximum file import depth \(10000\) exceeded"):
        cparse(f"import {a}")


# -- snippets --------------------------------------------------------------------


def test_snippet(cparse: Parse) -> None:
    cf = cparse(
        "(common) {\n  gzip foo\n  errors stderr\n}\nhttp://example.com {\n  import common\n}\n"
    )
    assert len(cf.blocks) == 1
    block = cf.blocks[0]
    assert block.keys[0].text == "http://example.com"
    assert [(d.name, d.args) for d in block.directives] == [
        ("gzip", ("foo",)),
        ("errors", ("stderr",)),
    ]


def test_snippet_keeps_definition_lines(cparse: Parse) -> None:
    block = cparse("(s) {\n  whoami\n}\n. {\n  import s\n}\n").blocks[0]
    assert block.directives[0].line == 2


def test_snippet_defined_in_main_used_in_imported_file(cparse: Parse, tmp_path: Path) -> None:
    site = write(tmp_path / "site", "http://example.com {\n  import common\n}\n")
    cf = cparse(f"(common) {{\n  gzip foo\n}}\nimport {site}\n")
    assert len(cf.blocks) == 1
    assert [d.name for d in cf.blocks[0].directives] == ["gzip"]


def test_snippet_must_be_defined_before_use(cparse: Parse) -> None:
    with pytest.raises(CorefileError, match="File to import not found: common"):
        cparse(". {\n  import common\n}\n(common) {\n  whoami\n}\n")


def test_snippet_redeclaration(cparse: Parse) -> None:
    with pytest.raises(CorefileError) as info:
        cparse("(s) {\n  whoami\n}\n(s) {\n  log\n}\n", filename="Corefile")
    assert (
        str(info.value)
        == "Corefile:4 - Error during parsing: redeclaration of previously declared snippet s"
    )


def test_snippet_without_brace(cparse: Parse) -> None:
    with pytest.raises(CorefileError) as info:
        cparse("(s)\nwhoami", filename="Corefile")
    assert str(info.value) == "Corefile:2 - Syntax error: Unexpected token 'whoami', expecting '{'"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("(loop) {\nimport loop\n}\nimport loop\n", id="direct"),
        pytest.param("(loop) {\n{ }\nimport loop\n}\nimport loop\n", id="through-nested-block"),
        pytest.param("(a) {\nimport b\n}\n(b) {\nimport a\n}\n. {\nimport a\n}\n", id="mutual"),
    ],
)
def test_snippet_import_cycle(cparse: Parse, text: str) -> None:
    with pytest.raises(CorefileError, match=r"maximum snippet import depth \(10000\) exceeded"):
        cparse(text)


def test_snippet_tokens_not_substituted_until_imported(cparse: Parse) -> None:
    text = "(s) {\n  log {$FMT}\n}\n. {\n  import s\n}\n"
    assert cparse(text, env={"FMT": "x"}).blocks[0].directives[0].args == ("x",)


def test_snippet_has_no_arguments(cparse: Parse) -> None:
    with pytest.raises(CorefileError, match=r"Import takes only one argument"):
        cparse("(s) {\n  log {args[0]}\n}\n. {\n  import s a\n}\n")
    block = cparse("(s) {\n  log {args[0]}\n}\n. {\n  import s\n}\n").blocks[0]
    assert block.directives[0].args == ("{args[0]}",)


def test_snippet_with_whole_server_blocks(cparse: Parse) -> None:
    cf = cparse("(zones) {\n  a.org {\n    whoami\n  }\n}\nimport zones\n")
    assert [b.keys[0].text for b in cf.blocks] == ["a.org"]
