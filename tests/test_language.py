"""Language names by file name, matching WakaTime's (wakatime-clients.md §1.6)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pygments.lexers import get_lexer_for_filename
from pygments.util import ClassNotFound

from agent.capture.language import language_for, lexer_candidates


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("main.py", "Python"),
        ("stubs.pyi", "Python"),
        ("app.js", "JavaScript"),
        ("app.mjs", "JavaScript"),
        ("App.jsx", "JSX"),
        ("index.ts", "TypeScript"),
        ("App.tsx", "TSX"),
        ("mod.mts", "TypeScript"),
        ("main.go", "Go"),
        ("go.mod", "Go"),  # wakatime-cli special case; Pygments alone says Modula-2
        ("CMakeLists.txt", "CMake"),
        ("lib.rs", "Rust"),
        ("Main.java", "Java"),
        ("Program.cs", "C#"),
        ("view.vue", "Vue.js"),
        ("Page.svelte", "Svelte"),
        ("README.md", "Markdown"),
        ("notes.txt", "Text"),
        ("styles.less", "Less"),
        ("init.el", "Emacs Lisp"),
        ("config.yaml", "YAML"),
        ("Cargo.toml", "TOML"),
        ("Dockerfile", "Docker"),
        ("Makefile", "Makefile"),
        ("build.sh", "Bash"),
        ("query.sql", "SQL"),  # Pygments' tie break alone would say Transact-SQL
        ("script.pl", "Perl"),  # ... and Prolog
        ("analysis.r", "R"),
        ("analysis.R", "R"),
        ("Program.fs", "F#"),
        ("top.v", "Verilog"),
        ("Gemfile", "Ruby"),
    ],
)
def test_common_file_names_get_wakatime_names(name: str, expected: str) -> None:
    assert language_for(name) == expected


def test_unknown_names_have_no_language() -> None:
    assert language_for("LICENSE") is None
    assert language_for("data.unknownext") is None
    assert language_for("") is None


@pytest.mark.parametrize(
    ("siblings", "header", "expected"),
    [
        (["util.c"], "util.h", "C"),
        (["util.m"], "util.h", "Objective-C"),
        (["util.mm"], "util.h", "Objective-C++"),
        (["other.cpp"], "util.h", "C++"),
        (["other.c"], "util.h", "C"),
        ([], "util.h", "C"),
        (["util.h"], "util.m", "Objective-C"),
        (["util.h"], "util.mm", "Objective-C++"),
    ],
)
def test_header_language_follows_sibling_files(tmp_path: Path, siblings: list[str], header: str, expected: str) -> None:
    for name in siblings:
        (tmp_path / name).write_text("")
    (tmp_path / header).write_text("")
    assert language_for(tmp_path / header) == expected


def test_sibling_rule_stays_within_the_c_family(tmp_path: Path) -> None:
    # wakatime-cli would call these "C" because a .c file sits next to them.
    (tmp_path / "main.c").write_text("int main(void){return 0;}\n")
    assert language_for(tmp_path / "index.html") == "HTML"
    assert language_for(tmp_path / "style.css") == "CSS"


def test_content_breaks_ties_like_the_lexers_analysers() -> None:
    assert language_for("x.pl", b"#!/usr/bin/perl\nuse strict;\nmy $x = 1;\n") == "Perl"
    assert language_for("x.pl", b":- module(x, []).\nfoo(X) :- bar(X).\n") == "Prolog"
    assert language_for("x.m", b"#import <Foundation/Foundation.h>\n@interface A : NSObject\n@end\n") == "Objective-C"
    assert language_for("x.sql", b"CREATE TABLE [dbo].[t] (id int)\nGO\n") == "Transact-SQL"
    assert language_for("x.sql", b"SELECT * FROM users WHERE id = 1;\n") == "SQL"


@pytest.mark.parametrize(
    "name",
    ["a.py", "a.js", "a.ts", "a.tsx", "a.go", "a.rs", "a.rb", "a.php", "a.lua", "a.kt", "a.swift", "a.dart",
     "a.scala", "a.hs", "a.ex", "a.clj", "a.jl", "a.zig", "a.nix", "a.tf", "a.toml", "a.yaml", "a.json", "a.html",
     "a.css", "a.scss", "a.xml", "a.ini", "a.proto", "a.graphql", "a.java", "a.cs", "a.cpp", "a.c", "Dockerfile"],
)  # fmt: skip
def test_index_agrees_with_pygments_where_one_lexer_claims_the_name(name: str) -> None:
    try:
        slow = get_lexer_for_filename(name).name
    except ClassNotFound:
        pytest.fail(f"pygments does not know {name}")
    if len(lexer_candidates(name)) == 1:
        assert language_for(name) in (slow, {"Text only": "Text"}.get(slow))


def test_a_lookup_imports_no_lexer_module() -> None:
    # The point of the index: Pygments' own lookup imports lexer modules on every call.
    code = (
        "import sys\nfrom agent.capture.language import language_for\n"
        "assert language_for('a.py') == 'Python'\n"
        "print(sorted(m for m in sys.modules if m.startswith('pygments.lexers.') and m != 'pygments.lexers._mapping'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent
    )
    assert out.stdout.strip() == "[]"
