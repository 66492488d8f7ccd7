"""Language of a file, named the way WakaTime names it.

wakatime-cli (wakatime-clients.md §1.6) first applies a few special cases by
file name, then picks a lexer by file-name glob and breaks ties with the
lexers' "analyse" score on the file's first bytes. Its lexers are chroma's,
whose names are mostly Pygments' names; where they differ, WakaTime's own
name is used (``_WAKATIME_NAMES``).

Pygments' ``get_lexer_for_filename`` matches the name against every lexer's
globs and imports the matching lexer modules on each call (≈ 7 ms a call
here, measured in ``bench/bench_watcher.py``). This module builds an index
of Pygments' lexer table once, without importing any lexer, so a lookup is a
few dict probes; only when several lexers claim the same name are their
classes loaded, and the tie is broken the way Pygments and wakatime-cli do
it (analyse score on the content, else priority, then class name).
"""

from __future__ import annotations

import fnmatch
import os
import re
import threading
from dataclasses import dataclass, field

__all__ = ["ANALYSE_BYTES", "language_for", "language_from_name", "lexer_candidates"]

# Content handed to the lexers' analyse functions; wakatime-cli reads 512 KB, but the
# analysers look at headers, shebangs and keywords, and a smaller sample keeps a tie
# break under a millisecond.
ANALYSE_BYTES = 64 * 1024

# Pygments name -> the name WakaTime reports, where they differ. WakaTime's names come
# from wakatime-cli's language table (chroma names mapped to WakaTime names).
_WAKATIME_NAMES: dict[str, str] = {
    "Text only": "Text",
    "LessCss": "Less",
    "EmacsLisp": "Emacs Lisp",
    "Vue": "Vue.js",
    "GAS": "Assembly",
    "verilog": "Verilog",
    "systemverilog": "SystemVerilog",
    "vhdl": "VHDL",
    "S": "R",
    "liquid": "Liquid",
    "Org Mode": "Org",
    "Nimrod": "Nim",
    "HTML+Handlebars": "Handlebars",
    "HTML+Twig": "Twig",
}

# File types WakaTime knows (chroma has lexers for them) that Pygments does not.
_EXTRA_EXTENSIONS: dict[str, str] = {
    ".svelte": "Svelte",
    ".astro": "Astro",
    ".mdx": "MDX",
    ".mts": "TypeScript",
    ".cts": "TypeScript",
    ".jsonc": "JSON",
    ".glsl": "GLSL",
    ".csv": "CSV",
    ".tsv": "TSV",
    ".prisma": "Prisma",
}

# When several lexers claim an extension and none recognises the content (or there is
# no content), Pygments falls back to priority and then the class name, which gives
# Prolog for .pl and Transact-SQL for .sql. WakaTime's lexers settle these the other
# way; these are the Pygments names to prefer in that case, by lower-cased extension.
_TIE_DEFAULTS: dict[str, str] = {
    ".pl": "Perl",
    ".pm": "Perl",
    ".sql": "SQL",
    ".m": "Objective-C",
    ".h": "C",
    ".fs": "F#",
    ".v": "verilog",
    ".r": "S",
    ".s": "GAS",
    ".gd": "GDScript",
}

# Globs Pygments lacks but chroma has, added to the index: R scripts are often *.r.
_EXTRA_GLOBS: tuple[tuple[str, str], ...] = (("S", "*.r"),)  # (Pygments name, glob)

# wakatime-cli's special cases by exact file name.
_SPECIAL_NAMES: dict[str, str] = {
    "go.mod": "Go",  # Pygments would say Modula-2
    "CMakeLists.txt": "CMake",
}

# C-family extensions whose language depends on sibling files (wakatime-cli's
# detectSpecialCases). wakatime-cli applies the rule to every extension that starts
# with ".c" or ".h", which also turns index.html or style.css next to a .c file into
# "C"; the rule is kept to the C family here so those stay HTML and CSS.
_C_FAMILY = frozenset({".h", ".c", ".cc", ".cp", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++"})
_CPP_EXTENSIONS = frozenset({".cpp", ".hpp", ".c++", ".h++", ".cc", ".hh", ".cxx", ".hxx", ".cp"})
# Case matters for these two: .C and .H are C++ by convention.
_CPP_EXTENSIONS_CASED = frozenset({".C", ".H", ".CPP"})


@dataclass(frozen=True)
class _Candidate:
    name: str  # Pygments lexer name
    glob: str  # the glob that matched; a glob without "*" earns Pygments' bonus


@dataclass
class _Index:
    by_suffix: dict[str, list[_Candidate]] = field(default_factory=dict)
    by_name: dict[str, list[_Candidate]] = field(default_factory=dict)
    by_pattern: list[tuple[re.Pattern[str], _Candidate]] = field(default_factory=list)
    resolved: dict[tuple[str, frozenset[_Candidate]], str] = field(default_factory=dict)


_INDEX: _Index | None = None
_INDEX_LOCK = threading.Lock()
_SIMPLE_SUFFIX = re.compile(r"\*(\.[^*?\[\]]+)")


def _index() -> _Index:
    global _INDEX
    if _INDEX is not None:
        return _INDEX
    with _INDEX_LOCK:
        if _INDEX is None:
            # The mapping module is plain data: reading it imports no lexer.
            from pygments.lexers._mapping import LEXERS

            index = _Index()
            table = [(name, glob) for _m, name, _a, globs, _t in LEXERS.values() for glob in globs]
            for name, glob in (*table, *_EXTRA_GLOBS):
                cand = _Candidate(name, glob)
                simple = _SIMPLE_SUFFIX.fullmatch(glob)
                if simple:
                    index.by_suffix.setdefault(simple.group(1), []).append(cand)
                elif not any(ch in glob for ch in "*?["):
                    index.by_name.setdefault(glob, []).append(cand)
                else:
                    index.by_pattern.append((re.compile(fnmatch.translate(glob)), cand))
            _INDEX = index
    return _INDEX


def lexer_candidates(basename: str) -> list[str]:
    """Pygments lexer names whose file-name globs match ``basename`` (for tests and tools)."""
    return sorted({c.name for c in _match(basename)})


def _match(basename: str) -> set[_Candidate]:
    index = _index()
    found: set[_Candidate] = set(index.by_name.get(basename, ()))
    # "*.ext" matches any name ending in ".ext", so try every suffix that starts at a dot.
    start = basename.find(".")
    while start != -1:
        found.update(index.by_suffix.get(basename[start:], ()))
        start = basename.find(".", start + 1)
    for pattern, cand in index.by_pattern:
        if pattern.match(basename):
            found.add(cand)
    return found


def _lexer_class(name: str) -> type | None:
    from pygments.lexers import find_lexer_class

    return find_lexer_class(name)


def _rank(candidates: set[_Candidate], text: str | None, ext: str) -> str:
    """Pygments' own tie break (analyse score, or priority, plus 0.5 for an exact name,
    then the class name), except that a tie nobody wins goes to ``_TIE_DEFAULTS``."""
    scores: dict[_Candidate, tuple[float, str]] = {}
    recognised = False
    for cand in candidates:
        cls = _lexer_class(cand.name)
        if cls is None:
            scores[cand] = (-1.0, cand.name)
            continue
        bonus = 0.0 if "*" in cand.glob else 0.5
        score = float(cls.analyse_text(text) or 0.0) if text else 0.0  # type: ignore[attr-defined]
        recognised = recognised or score > 0.0
        if not text:
            score = float(getattr(cls, "priority", 0.0))
        scores[cand] = (score + bonus, cls.__name__)
    preferred = _TIE_DEFAULTS.get(ext)
    if not recognised and preferred in {c.name for c in candidates}:
        return str(preferred)
    return max(candidates, key=scores.__getitem__).name


def _pygments_language(basename: str, content: bytes | None) -> str | None:
    candidates = _match(basename)
    if not candidates:
        return None
    names = {c.name for c in candidates}
    if len(names) == 1:
        return next(iter(names))
    ext = os.path.splitext(basename)[1].lower()
    if content:
        text = content[:ANALYSE_BYTES].decode("utf-8", errors="replace")
        return _rank(candidates, text, ext)
    key = (ext, frozenset(candidates))
    index = _index()
    cached = index.resolved.get(key)
    if cached is None:
        cached = _rank(candidates, None, ext)
        index.resolved[key] = cached
    return cached


def _sibling_exists(path: str, ext: str) -> bool:
    stem = os.path.splitext(path)[0]
    return any(os.path.exists(stem + e) for e in (ext, ext.upper()))


def _folder_extensions(folder: str) -> tuple[set[str], set[str]]:
    """(lower-cased extensions, extensions as written) of the files in ``folder``."""
    lowered: set[str] = set()
    cased: set[str] = set()
    try:
        with os.scandir(folder or ".") as it:
            for entry in it:
                ext = os.path.splitext(entry.name)[1]
                if ext:
                    cased.add(ext)
                    lowered.add(ext.lower())
    except OSError:
        pass
    return lowered, cased


def _special_case(path: str, basename: str) -> str | None:
    special = _SPECIAL_NAMES.get(basename)
    if special:
        return special
    ext_cased = os.path.splitext(basename)[1]
    ext = ext_cased.lower()
    if ext in _C_FAMILY:
        if _sibling_exists(path, ".c"):
            return "C"
        if _sibling_exists(path, ".m"):
            return "Objective-C"
        if _sibling_exists(path, ".mm"):
            return "Objective-C++"
        lowered, cased = _folder_extensions(os.path.dirname(path))
        if lowered & _CPP_EXTENSIONS or cased & _CPP_EXTENSIONS_CASED:
            return "C++"
        if ".c" in lowered:
            return "C"
    if ext == ".m" and _sibling_exists(path, ".h"):
        return "Objective-C"
    if ext == ".mm" and _sibling_exists(path, ".h"):
        return "Objective-C++"
    return None


def language_for(path: str | os.PathLike[str], content: bytes | None = None) -> str | None:
    """The WakaTime language name for ``path``, or None when no rule knows the file.

    ``content`` (the file's bytes, or its first bytes) is used only to break ties
    between lexers that claim the same file name, as wakatime-cli does; the file is
    never read here. Sibling files are looked at for the C-family rules.
    """
    text_path = os.fspath(path)
    basename = os.path.basename(text_path)
    if not basename:
        return None
    special = _special_case(text_path, basename)
    if special:
        return special
    name = _pygments_language(basename, content)
    if name is None:
        return _EXTRA_EXTENSIONS.get(os.path.splitext(basename)[1].lower())
    return _WAKATIME_NAMES.get(name, name)


def language_from_name(path: str) -> str | None:
    """The language a file's name alone suggests: no content, no sibling files looked at.

    This is how the server fills in a heartbeat sent without a language (hackatime-api.md
    §4.3 step 6), so local figures name such time as the server's do.
    """
    basename = os.path.basename(path)
    if not basename:
        return None
    special = _SPECIAL_NAMES.get(basename)
    if special:
        return special
    name = _pygments_language(basename, None)
    if name is None:
        return _EXTRA_EXTENSIONS.get(os.path.splitext(basename)[1].lower())
    return _WAKATIME_NAMES.get(name, name)
