"""Language inference and display names.

The server uses GitHub Linguist's tables; the stand-in carries the common subset, which is
enough for tests to see that a blank language is filled from the entity and that names are
display-mapped (``vscode`` → ``VSCode``, ``darwin`` → ``macOS``).
"""

from __future__ import annotations

import posixpath

from agent.stats.durations import EDITOR_DISPLAY, OS_DISPLAY  # display names: one table for the agent and the stand-in

EXTENSIONS = {
    ".c": "C", ".h": "C", ".cc": "C++", ".cpp": "C++", ".hpp": "C++", ".cs": "C#",
    ".css": "CSS", ".dart": "Dart", ".go": "Go", ".html": "HTML", ".java": "Java",
    ".js": "JavaScript", ".mjs": "JavaScript", ".jsx": "JavaScript", ".json": "JSON",
    ".kt": "Kotlin", ".lua": "Lua", ".md": "Markdown", ".php": "PHP", ".py": "Python",
    ".rb": "Ruby", ".rs": "Rust", ".scss": "SCSS", ".sh": "Shell", ".bash": "Shell",
    ".sql": "SQL", ".swift": "Swift", ".toml": "TOML", ".ts": "TypeScript", ".tsx": "TSX",
    ".txt": "Text", ".vue": "Vue", ".yaml": "YAML", ".yml": "YAML", ".zig": "Zig",
}  # fmt: skip
FILENAMES = {
    "makefile": "Makefile", "dockerfile": "Dockerfile", "gemfile": "Ruby", "rakefile": "Ruby",
    "cmakelists.txt": "CMake", ".bashrc": "Shell", ".zshrc": "Shell",
}  # fmt: skip
_ALIASES = {
    "py": "Python", "python3": "Python", "js": "JavaScript", "node": "JavaScript", "ts": "TypeScript",
    "cpp": "C++", "c++": "C++", "csharp": "C#", "golang": "Go", "rb": "Ruby", "rs": "Rust",
    "sh": "Shell", "bash": "Shell", "zsh": "Shell", "yml": "YAML", "md": "Markdown",
    "plaintext": "Text", "text only": "Text",
}  # fmt: skip
CANONICAL = {name.lower(): name for name in (*EXTENSIONS.values(), *FILENAMES.values())} | _ALIASES
COLORS = {
    "Python": "#3572A5", "JavaScript": "#f1e05a", "TypeScript": "#3178c6", "Go": "#00ADD8",
    "Rust": "#dea584", "Ruby": "#701516", "C": "#555555", "C++": "#f34b7d", "Java": "#b07219",
    "HTML": "#e34c26", "CSS": "#663399", "Shell": "#89e051", "Markdown": "#083fa1",
}  # fmt: skip
DEFAULT_COLOR = "#cccccc"


def is_blank(value: object) -> bool:
    """ActiveSupport's ``blank?``: nil, false, empty or whitespace-only strings, empty containers."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value or value.isspace()
    if isinstance(value, list | dict):
        return not value
    return False


def detect(entity: str) -> str | None:
    """Filename first, then extension (``File.extname``: a leading dot is not an extension)."""
    base = posixpath.basename(entity).lower()
    if base in FILENAMES:
        return FILENAMES[base]
    ext = posixpath.splitext(base)[1]
    return EXTENSIONS.get(ext) if ext else None


def display_language(raw: str) -> str:
    return CANONICAL.get(raw.lower(), raw)


def display_editor(raw: str) -> str:
    return EDITOR_DISPLAY.get(raw.lower()) or raw.capitalize()


def display_os(raw: str) -> str:
    return OS_DISPLAY.get(raw.lower()) or raw.capitalize()


def language_color(raw: str) -> str:
    return COLORS.get(display_language(raw), DEFAULT_COLOR)
