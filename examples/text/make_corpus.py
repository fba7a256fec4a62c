"""Write docstrings.jsonl, the corpus examples/text/pipeline.yaml reads: the first paragraph of every documented
function and class in the Python standard library's own sources (they ship with every Python), labelled by what
family of modules it comes from — text, files and the OS, networking, concurrency, numbers, or data formats.

The task is honest: the model sees only the docstring's words, never the module's name. Another Python version has
another standard library, so another corpus (3,440 rows on Python 3.11); the dataset's lineage digest tells them apart. The pipeline's data stage
calls ``write`` first (`data.prepare: make_corpus:write`); it writes only when the file is missing. Run it yourself
with ``python examples/text/make_corpus.py``.
"""

from __future__ import annotations

import ast
import json
import sysconfig
from pathlib import Path

JSONL = Path(__file__).with_name("docstrings.jsonl")
FAMILIES = {
    "text": [
        "string",
        "re",
        "textwrap",
        "difflib",
        "unicodedata",
        "stringprep",
        "codecs",
        "encodings",
        "gettext",
        "locale",
        "shlex",
        "tokenize",
        "html",
        "pprint",
        "reprlib",
    ],
    "files": [
        "os",
        "shutil",
        "pathlib",
        "tempfile",
        "glob",
        "fnmatch",
        "filecmp",
        "stat",
        "zipfile",
        "tarfile",
        "gzip",
        "bz2",
        "lzma",
        "zipimport",
        "fileinput",
        "posixpath",
        "ntpath",
        "genericpath",
        "io",
        "_pyio",
    ],
    "network": [
        "http",
        "urllib",
        "email",
        "smtplib",
        "imaplib",
        "poplib",
        "ftplib",
        "socket",
        "socketserver",
        "ssl",
        "mailbox",
        "ipaddress",
        "wsgiref",
        "xmlrpc",
        "webbrowser",
        "selectors",
        "nntplib",
    ],
    "concurrency": [
        "threading",
        "multiprocessing",
        "asyncio",
        "concurrent",
        "queue",
        "sched",
        "subprocess",
        "signal",
        "_threading_local",
        "contextvars",
    ],
    "numbers": [
        "math",
        "decimal",
        "_pydecimal",
        "fractions",
        "statistics",
        "random",
        "numbers",
        "cmath",
        "_pylong",
        "colorsys",
        "bisect",
        "heapq",
    ],
    "formats": [
        "json",
        "csv",
        "pickle",
        "pickletools",
        "copyreg",
        "plistlib",
        "configparser",
        "tomllib",
        "xml",
        "base64",
        "binascii",
        "quopri",
        "uu",
        "struct",
        "marshal",
        "shelve",
        "dbm",
        "sqlite3",
        "netrc",
    ],
}


def _family(relative: Path) -> str | None:
    top = relative.parts[0].removesuffix(".py")
    return next((name for name, modules in FAMILIES.items() if top in modules), None)


def _first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n")[0].split())


def rows() -> list[dict[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[dict[str, str]] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        family = _family(relative)
        if family is None or "test" in relative.parts or "tests" in relative.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                text = _first_paragraph(doc) if doc else ""
                if len(text) >= 20:
                    out.append({"text": text, "family": family})
    return out


def write() -> Path:
    """Some 4,000 docstrings in six families, one JSON object a line: {"text": ..., "family": ...}."""
    if not JSONL.exists():
        partial = JSONL.with_suffix(".partial")  # (a file half written is never read as the source)
        with partial.open("w", encoding="utf-8") as fh:
            for row in rows():
                fh.write(json.dumps(row) + "\n")
        partial.rename(JSONL)
    return JSONL


if __name__ == "__main__":
    print(f"wrote {write()}")
