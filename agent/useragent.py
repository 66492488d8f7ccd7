"""Editor and operating system parsed from a WakaTime user agent (hackatime-api.md §4.3 step 9).

This follows the server's ``WakatimeUserAgentParser`` for the shapes real clients send:
``wakatime/<ver> (<os>-<osver>-<arch>) <runtime> <editor>/<ver> <editor>-wakatime/<ver>``,
a bare plugin chain, and browser extensions. The server's AI-transcript branches (model tokens
in ``ai coding`` heartbeats) are not reproduced.
"""

from __future__ import annotations

import functools
import re

MIDDLEWARES = frozenset(
    ("exec-wakatime", "mcp-wakatime", "vscode-hackatime-tracker", "waka-relay", "wakatime-ls", "wakatime-cli")
)
CONNECTORS = frozenset(("in", "x"))
OS_PRODUCTS = frozenset(("linux", "windows", "macos", "darwin", "win", "mac", "wsl"))
GENERIC_HOST_PLUGIN_BASES = frozenset(("macos", "windows"))
BROWSER_PLUGIN_BASES = frozenset(("browser", "chrome", "edge", "firefox", "opera", "safari"))
PLUGIN_EDITOR_ALIASES = {"oh-my-pi-wakatime": "pi", "python-wakatime": "pycharm", "wakatime-zsh-plugin": "zsh"}
# A plugin named for one editor that is also installed in its forks.
SHARED_PLUGIN_EDITOR_PRODUCTS = {
    "terminal": ("fish", "zsh"),
    "vim": ("neovim",),
    "vscode": (
        "antigravity", "arduino", "azdata", "code-oss", "code-server", "codeoss", "cursor",
        "cursornightly", "kiro", "onivim", "positron", "sqlops", "trae", "vscodium", "windsurf",
    ),
}  # fmt: skip
PRODUCT_ALIASES = {
    "visual studio code - insiders": "vscode",
    "visual studio code": "vscode",
    "visualstudiocode": "vscode",
    "vs code": "vscode",
    "code - oss": "code-oss",
    "intellij idea": "intellijidea",
    "zedpreview": "zed",
}
_ALIAS_PATTERNS = [
    (re.compile(r"(?<!\S)" + r"\s+".join(map(re.escape, alias.split())) + r"(?=/|\s|\Z)", re.I), canonical)
    for alias, canonical in sorted(PRODUCT_ALIASES.items(), key=lambda item: -len(item[0]))
]
_WAKATIME_UA = re.compile(r"\Awakatime/\S*\s+\(([^)]+)\)(?:\s+(.*))?\Z", re.I | re.S)
_PLUGIN = re.compile(r"[-_](?:waka|hacka)time\Z", re.I)
_DECORATOR = re.compile(r"\A(?:v?\d+(?:[._-]\d+)*[a-z]?|[+_.\\-])\Z", re.I)


def _product(token: str) -> str:
    return token.split("/", 1)[0]


def _is_runtime(token: str) -> bool:
    if re.match(r"node/v?\d", token, re.I) or re.match(r"python/v?\d{1,2}(?:\.|\Z)", token, re.I):
        return True
    return "/" not in token and re.match(r"(?:go|java|node|python)(?:\d|\Z)", token, re.I) is not None


def _is_meaningful(token: str) -> bool:
    product = _product(token)
    lower = product.lower()
    return (
        bool(product)
        and not product.startswith("(")
        and lower != "wakatime"
        and lower not in MIDDLEWARES
        and lower not in CONNECTORS
        and not _is_runtime(token)
    )


def _is_plugin(token: str) -> bool:
    product = _product(token)
    lower = product.lower()
    return lower in PLUGIN_EDITOR_ALIASES or lower == "wakatime.nvim" or _PLUGIN.search(product) is not None


def _plugin_base(token: str) -> str:
    product = _product(token)
    lower = product.lower()
    if lower in PLUGIN_EDITOR_ALIASES:
        return PLUGIN_EDITOR_ALIASES[lower]
    if lower == "wakatime.nvim":
        return "neovim"
    return _PLUGIN.sub("", product).lower()


def _plugin_matches(plugin: str, product: str) -> bool:
    base = _plugin_base(plugin)
    return base == product or product in SHARED_PLUGIN_EDITOR_PRODUCTS.get(base, ())


def _normalize_editor(editor: str) -> str:
    if editor in ("claude", "claudecode"):
        return "claude-code"
    if editor in ("idea", "intellijideacommunityedition", "intellijideaultimateedition"):
        return "intellijidea"
    if editor == "ktexteditor":
        return "kate"
    if editor in ("visual studio code", "vs-code", "vs_code", "vscode-insiders"):
        return "vscode"
    if editor == "godotengine" or re.match(r"godot\d+(?:[._-]\d+)+\Z", editor):
        return "godot"
    return editor


def _products(chain: str) -> list[str]:
    chain = chain.strip().removeprefix('\\"').removeprefix('"').removesuffix("\\")
    for pattern, canonical in _ALIAS_PATTERNS:
        chain = pattern.sub(canonical, chain)
    return [token.removeprefix('\\"').removesuffix("\\") for token in chain.split()]


def _editor_first_chain(products: list[str]) -> bool:
    """``<editor>/<ver> <editor>-wakatime/<ver>``: the plugin vouches for the product before it."""
    if len(products) < 2 or not _is_plugin(products[1]) or _is_plugin(products[0]):
        return False
    return _plugin_base(products[1]) in GENERIC_HOST_PLUGIN_BASES or _plugin_matches(
        products[1], _product(products[0]).lower()
    )


def _extract_editor(products: list[str]) -> str:
    meaningful = [token for token in products if _is_meaningful(token)]
    if meaningful and _product(meaningful[0]).lower() == "python":
        plugin = next((t for t in meaningful if _product(t).lower() == "python-wakatime"), None)
        if plugin:
            return _normalize_editor(_plugin_base(plugin))
    if meaningful and _is_plugin(meaningful[0]):
        # A leading plugin: look for the product it names later in the chain.
        rest = meaningful[1:]
        for index in range(len(rest) - 1, -1, -1):
            if not _is_plugin(rest[index]):
                continue
            for token in reversed(rest[:index]):
                if _plugin_matches(rest[index], _product(token).lower()):
                    return _normalize_editor(_product(token).lower())
    if _editor_first_chain(meaningful):
        return _normalize_editor(_product(meaningful[0]).lower())
    for index, token in enumerate(products):
        if not _is_meaningful(token):
            continue
        lower = _product(token).lower()
        later = products[index + 1 :]
        if (lower in ("mozilla", "web") or _DECORATOR.match(lower)) and any(
            _is_meaningful(t) or _is_plugin(t) for t in later
        ):
            continue
        if _is_plugin(token):
            candidate = _plugin_base(token)
            if candidate in OS_PRODUCTS:
                continue
            return _normalize_editor(candidate)
        return _normalize_editor(lower)
    return ""


def _normalize_os(platform: str, user_agent: str) -> str:
    if re.search(r"-wsl2-", user_agent, re.I):
        return "wsl"
    if re.search(r"android", platform, re.I):
        return "android"
    if re.match(r"win(?:11-wakatime|32)\Z", platform, re.I):
        return "windows"
    if re.match(r"(?:darwin|macintosh)(?:;|\Z)", platform, re.I):
        return "macos"
    if re.match(r"(?:iphone|ipad)\Z", platform, re.I):
        return "ios"
    candidate = re.split(r"[\s)_-]", platform.removeprefix("("))[0].lower()
    if candidate in ("win", "windows"):
        return "windows"
    if candidate in ("darwin", "mac", "macos"):
        return "macos"
    return candidate


def _direct_os(text: str) -> str:
    for pattern, name in (
        (r"wsl2?", "wsl"),
        (r"\bandroid\b", "android"),
        (r"\bcros(?:\b|[_-])|chrome\s*os", "chromeos"),
        (r"windows|win_", "windows"),
        (r"macintosh|mac[_ -]?os|darwin", "macos"),
        (r"linux", "linux"),
    ):
        if re.search(pattern, text, re.I):
            return name
    return ""


def _editor_from_platform(platform: str) -> str | None:
    if re.match(r"vs\s?code(?:/|,|\Z)", platform, re.I):
        return "vscode"
    if re.match(r"termux-wakatime\Z", platform, re.I):
        return "termux"
    if re.match(r"webstorm\Z", platform, re.I):
        return "webstorm"
    return None


def _browser_or_other(user_agent: str) -> tuple[str, str]:
    browser = None
    for pattern, name in (
        (r"\b(?:edg|edga|edge)/", "edge"),
        (r"\b(?:opr|opera)/", "opera"),
        (r"\bfirefox/", "firefox"),
        (r"\b(?:chrome|chromium)/", "chrome"),
        (r"\bsafari/", "safari"),
    ):
        if re.search(pattern, user_agent, re.I):
            browser = name
            break
    products = _products(re.sub(r"\([^)]*\)", " ", user_agent))
    if browser:
        for token in reversed(products):
            if _is_plugin(token) and _product(token).lower() not in MIDDLEWARES:
                base = _plugin_base(token)
                if base not in GENERIC_HOST_PLUGIN_BASES and base not in BROWSER_PLUGIN_BASES:
                    return _normalize_editor(base), _direct_os(user_agent)
        return browser, _direct_os(user_agent)
    os_name = _direct_os(user_agent)
    products = [t for t in products if not re.match(r"(?:windows|win|linux|darwin|macos|mac)(?:[/_-].*)?\Z", t, re.I)]
    if not any("/" in t or _is_plugin(t) for t in products):
        return "", os_name
    return _extract_editor(products), os_name


@functools.lru_cache(maxsize=4096)
def parse(user_agent: str) -> tuple[str, str]:
    """``(editor, os)``; empty strings where nothing could be parsed. Cached: clients repeat one UA."""
    if not user_agent.strip():
        return "", ""
    match = _WAKATIME_UA.match(user_agent)
    if match is None:
        return _browser_or_other(user_agent)
    platform, chain = match.group(1), match.group(2) or ""
    products = _products(chain)
    if products and _is_runtime(products[0]):
        products.pop(0)
    platform_editor = _editor_from_platform(platform)
    editor = _extract_editor(products)
    os_name = _direct_os(chain) if platform_editor else _normalize_os(platform, user_agent)
    return editor or platform_editor or "", os_name
