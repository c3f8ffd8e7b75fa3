#!/usr/bin/env python3
"""Build the bundled demo corpus from CPython's own documentation text.

The demo of the workflow needs real natural-language text that can be shipped
in the repository.  This script extracts it from text that every CPython
installation already contains, all under the PSF License Version 2:

* the Python Language Reference topics in ``pydoc_data.topics`` (the text
  that ``help("assignment")`` shows), one document per topic;
* two documentation files shipped inside the standard library: the IDLE
  chapter of the library reference (``idlelib/help.html``, one document per
  section) and ``email/architecture.rst``;
* the docstrings and the prose comments of a fixed, sorted list of
  pure-Python standard-library modules and packages (including the ``test``
  package), read from the source with :mod:`ast` and :mod:`tokenize`
  (nothing is imported or executed).  One document per top-level class or
  function: its docstring followed, in source order, by the docstrings of its
  methods and nested functions and by its full-line comments; one document per
  module for the module docstring and the comments outside definitions;
* the docstrings of a fixed, sorted list of built-in and extension modules
  (imported): one document per module, per function, and per class (the
  class docstring followed by its methods' docstrings).

Docstrings plus topics alone give only about 1.5 MB of clean prose, hence the
comments and the test package.  Source files that carry a licence notice of
their own (for example the zlib notice of ``turtle.py`` or the MIT-style
notices of ``logging``, ``tarfile`` and ``xml.etree``) are skipped entirely,
and copyright/licence sentences are dropped, so all text is PSF-licensed.

The text is cleaned (code examples, doctest sessions, grammar productions,
tables, headings, definition-list entries, reST markup, licence boilerplate
and short fragments are removed; whitespace is collapsed), split into
sentences with a regex-based splitter, filtered (a sentence must look like
natural language: enough plain words, few code characters, final punctuation
unless it is long), deduplicated (a sentence that appeared in an earlier
document is dropped), and written in BERT's pretraining text format: UTF-8,
one sentence per line, one blank line between documents.  Documents with
fewer than two sentences are dropped, so every document has at least two.

The documents are distributed over ``demo/corpus/python-docs-{1,2,3}.txt``:
each document (in the fixed collection order) goes to the file that has the
fewest bytes so far (ties: lowest number).  The output depends only on the
text of the Python installation that runs the script (it is byte-identical
between runs); the committed files were made with the CPython version named in
``demo/corpus/LICENSE.md``.  Other versions give a similar but not identical
corpus, which is why the generated files are committed.

Usage::

    python demo/build_demo_corpus.py [--out-dir DIR] [--dry-run] [--ids PATH]

Standard library only; takes well under a minute.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import html.parser
import importlib
import inspect
import io
import os
import re
import sys
import sysconfig
import tokenize
import unicodedata
import warnings
from pathlib import Path

# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------

# Pure-Python standard-library modules and packages (top-level names, sorted).
# Packages are walked recursively (their test subpackages included).  Left
# out: pydoc_data (read as topics), demo and joke modules (antigravity, this,
# turtledemo, __hello__, __phello__), platform-specific helpers (_aix_support,
# _bootsubprocess) and the generated _sysconfigdata_* module.  Modules missing
# in an installation are skipped; files that do not parse (Python 2 test data)
# are skipped.
PY_MODULES = (
    "__future__", "_collections_abc", "_compat_pickle", "_compression",
    "_markupbase", "_osx_support", "_py_abc", "_pydecimal", "_pyio",
    "_sitebuiltins", "_strptime", "_threading_local", "_weakrefset", "abc",
    "aifc", "argparse", "ast", "asynchat", "asyncio", "asyncore", "base64",
    "bdb", "bisect", "bz2", "calendar", "cgi", "cgitb", "chunk", "cmd",
    "code", "codecs", "codeop", "collections", "colorsys", "compileall",
    "concurrent", "configparser", "contextlib", "contextvars", "copy",
    "copyreg", "cProfile", "crypt", "csv", "ctypes", "curses",
    "dataclasses", "datetime", "dbm", "decimal", "difflib", "dis",
    "distutils", "doctest", "email", "encodings", "ensurepip", "enum",
    "filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools",
    "genericpath", "getopt", "getpass", "gettext", "glob", "graphlib",
    "gzip", "hashlib", "heapq", "hmac", "html", "http", "idlelib",
    "imaplib", "imghdr", "imp", "importlib", "inspect", "io", "ipaddress",
    "json", "keyword", "lib2to3", "linecache", "locale", "logging", "lzma",
    "mailbox", "mailcap", "mimetypes", "modulefinder", "multiprocessing",
    "netrc", "nntplib", "ntpath", "nturl2path", "numbers", "opcode",
    "operator", "optparse", "os", "pathlib", "pdb", "pickle", "pickletools",
    "pipes", "pkgutil", "platform", "plistlib", "poplib", "posixpath",
    "pprint", "profile", "pstats", "pty", "py_compile", "pyclbr", "pydoc",
    "queue", "quopri", "random", "re", "reprlib", "rlcompleter", "runpy",
    "sched", "secrets", "selectors", "shelve", "shlex", "shutil", "signal",
    "site", "smtpd", "smtplib", "sndhdr", "socket", "socketserver",
    "sqlite3", "sre_compile", "sre_constants", "sre_parse", "ssl", "stat",
    "statistics", "string", "stringprep", "struct", "subprocess", "sunau",
    "symtable", "sysconfig", "tabnanny", "tarfile", "telnetlib", "tempfile",
    "test", "textwrap", "threading", "timeit", "tkinter", "token",
    "tokenize", "tomllib", "trace", "traceback", "tracemalloc", "tty",
    "turtle", "types", "typing", "unittest", "urllib", "uu", "uuid", "venv",
    "warnings", "wave", "weakref", "webbrowser", "wsgiref", "xdrlib", "xml",
    "xmlrpc", "zipapp", "zipfile", "zipimport", "zoneinfo",
)

# Built-in and extension modules (written in C), imported to read their
# docstrings.  Modules that are missing in an installation are skipped.
# Not included: test/example modules (_testcapi, xxsubtype, xxlimited, ...),
# the codec tables (_codecs_*), _sqlite3 and _elementtree (their sources carry
# licence notices of their own).
C_MODULES = (
    "_abc", "_asyncio", "_bisect", "_blake2", "_bz2", "_codecs",
    "_collections", "_contextvars", "_csv", "_ctypes", "_curses",
    "_datetime", "_decimal", "_functools", "_hashlib", "_heapq", "_imp",
    "_io", "_json", "_locale", "_lsprof", "_lzma", "_md5",
    "_multiprocessing", "_opcode", "_operator", "_pickle",
    "_posixsubprocess", "_queue", "_random", "_sha1", "_sha256", "_sha3",
    "_sha512", "_signal", "_socket", "_sre", "_ssl", "_stat", "_statistics",
    "_string", "_struct", "_symtable", "_thread", "_tokenize",
    "_tracemalloc", "_typing", "_uuid", "_warnings", "_weakref",
    "_zoneinfo", "array", "atexit", "binascii", "builtins", "cmath",
    "errno", "fcntl", "faulthandler", "gc", "grp", "itertools", "marshal",
    "math", "mmap", "posix", "pwd", "pyexpat", "readline", "resource",
    "select", "sys", "syslog", "termios", "time", "unicodedata", "zlib",
)

# Documentation files shipped inside the standard library: (path relative to
# the stdlib directory, document id prefix).  help.html is the IDLE chapter of
# the library reference; architecture.rst describes the email package.
EXTRA_DOC_FILES = (
    ("email/architecture.rst", "email-architecture"),
    ("idlelib/help.html", "idle-help"),
)

SKIP_DIRS = {"__pycache__", "site-packages"}

# A source file whose text contains one of these (whitespace and "#"
# normalised) carries a licence notice of its own: zlib (turtle, sqlite3),
# MIT/HPND (logging, xml.etree, tarfile, ...), BSD (optparse), Apache
# (profile, pstats), an SPDX tag (tomllib) or a GPL choice (robotparser).
# Nothing of such a file is used.
OWN_LICENCE_MARKERS = (
    "Permission to use",
    "Permission is hereby granted",
    "Permission is granted",
    "Redistribution and use",
    "provided that the above copyright",
    "SPDX-License-Identifier",
    "Licensed under the",
    "GNU General Public",
    "GNU GPL",
    "choose between two licenses",
    "redistribute it and/or modify",
)

# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

NUM_FILES = 3
FILE_NAME = "python-docs-{}.txt"
MIN_SENTENCES = 2          # documents with fewer sentences are dropped
MIN_WORDS = 3              # sentences with fewer words are dropped
MIN_WORDS_UNTERMINATED = 10  # ... and those without final punctuation
MAX_SENTENCE_CHARS = 600   # longer "sentences" are almost always run-ons of
                           # lists; they are dropped

# ---------------------------------------------------------------------------
# Cleaning
# ---------------------------------------------------------------------------

CODE_CHARS = set("=(){}[]<>#;@$%^&*+|\\/_~`")
CODE_START = re.compile(
    r"^(?:def |class |import |from \w[\w.]* import |return\b|if .*:$|"
    r"elif |else:|for .* in .*:$|while .*:$|with .*:$|try:|except\b.*:$|"
    r"finally:|raise \w|yield\b|async |await |print\(|@\w|assert |del |"
    r"lambda\b|pass$|\$ |% |C:\\|#)"
)
BULLET = re.compile(r"^(?:[*+\-\u2022]|\d{1,2}[.)]|\(\d{1,2}\)|[a-z][.)]|\([a-z]\))\s+")
UNDERLINE = re.compile(r"^\s*([=\-~*^+#\"'`.:_])\1{2,}\s*$")
TABLE_LINE = re.compile(r"^\s*(?:\+[-=+]{3,}|\|.*\||={2,}(?:\s+={2,})+\s*$|-{2,}(?:\s+-{2,})+\s*$)")
DIRECTIVE = re.compile(r"^\s*\.\.\s+(?:[\w:-]+::|_|\[|\|)")
FIELD = re.compile(r"^\s*:(?:param|parameter|arg|argument|key|keyword|type|vartype|ivar|var|cvar|"
                   r"returns?|rtype|raises?|except|exception|yields?)\b[^:]*:")
SIGNATURE = re.compile(r"^[\w.]+\(.*\)(?:\s*->.*)?$|^[\w.]+\s*->|^[\w.\[\]]+\s*=\s*[\w.]+\(.*\)$")

ROLE = re.compile(r":(?:[\w-]+:)*[\w-]+:`(~?)([^`<]*?)(?:\s*<([^`>]*)>)?`")
LINK = re.compile(r"`([^`<]+?)\s*<[^`>]+>`__?")
REFNAME = re.compile(r"`([^`]+)`__?")
LITERAL = re.compile(r"``(.+?)``")
INTERPRETED = re.compile(r"`([^`]+)`")
STRONG = re.compile(r"(?<![\w*])\*\*(?=\S)([^*\n]+?)(?<=\S)\*\*(?![\w*])")
EMPH = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])")
FOOTNOTE = re.compile(r"\s*\[(?:\d{1,2}|#\w*|\*)\]_?")
SUBST = re.compile(r"\|(\w[\w ]*)\|")


def symbol_density(text: str) -> float:
    if not text:
        return 0.0
    return sum(ch in CODE_CHARS for ch in text) / len(text)


def line_is_code(line: str) -> bool:
    s = line.strip()
    if not s:
        return False
    if s.startswith((">>>", "...", "$ ", "::=")) or "::=" in s:
        return True
    if CODE_START.match(s) and (s.endswith(":") or "(" in s or "=" in s or " " not in s
                                or s.startswith(("import ", "from ", "#", "$", "@", "return"))):
        return True
    if re.search(r"\w\s*(?:[+\-*/%]?=|==|!=|<=|>=|->)\s*[\w\[\](\"'{-]", s) and symbol_density(s) > 0.04:
        return True
    if re.search(r"\w\(.*\)$", s) and len(s.split()) <= 3:
        return True
    if re.search(r"[{}\[\]]", s) and symbol_density(s) > 0.08:
        return True
    if symbol_density(s) > 0.12:
        return True
    words = s.split()
    alpha_words = sum(1 for w in words if re.fullmatch(r"[A-Za-z][a-z'’-]*[,.;:!?)]*", w))
    if len(words) >= 3 and alpha_words / len(words) < 0.4:
        return True
    return False


def block_is_code(lines: list[str]) -> bool:
    code = sum(line_is_code(l) for l in lines)
    return code / len(lines) >= 0.4


def block_is_prose(lines: list[str]) -> bool:
    """True for a block that reads like running text (used for indented blocks)."""
    text = " ".join(l.strip() for l in lines)
    words = text.split()
    if len(words) < 6:
        return False
    alpha = sum(1 for w in words if re.fullmatch(r"[\"“(]?[A-Za-z][a-z'’-]*[,.;:!?)\"”]*", w))
    return (alpha / len(words) >= 0.7 and symbol_density(text) < 0.04
            and not any(line_is_code(l) for l in lines[:1]))


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def strip_markup(text: str) -> str:
    """Remove reST inline markup, keeping the text."""
    def role(m: re.Match) -> str:
        tilde, title, target = m.group(1), m.group(2).strip(), m.group(3)
        if not title and target:
            title = target
        if tilde:
            title = title.split(".")[-1]
        return title.lstrip("!.~")
    text = ROLE.sub(role, text)
    text = LINK.sub(r"\1", text)
    text = LITERAL.sub(r"\1", text)
    text = REFNAME.sub(r"\1", text)
    text = INTERPRETED.sub(r"\1", text)
    text = STRONG.sub(r"\1", text)
    text = EMPH.sub(r"\1", text)
    text = FOOTNOTE.sub("", text)
    text = SUBST.sub(r"\1", text)
    text = text.replace("\\ ", "").replace("\\*", "*")
    return text


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    # control and other invisible characters become spaces
    text = "".join(" " if (unicodedata.category(ch)[0] == "C") else ch for ch in text)
    return re.sub(r"\s+", " ", text).strip()


def split_blocks(text: str) -> list[list[str]]:
    blocks, cur = [], []
    for line in text.expandtabs(8).splitlines():
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


DEFLINE = re.compile(r"^[\w.*\[\]()'\"/,<>-]{1,40}(?:\s+[\w.*\[\]()'\"/,<>-]{1,20})?\s*(?::|--|\u2014|-|=)\s+\S")


def join_lines(lines: list[str]) -> str:
    """Join wrapped lines; a word broken after a hyphen ("comma-" +
    "separated", as the pydoc text writer wraps) is joined without a space."""
    text = ""
    for line in lines:
        line = line.strip()
        if re.search(r"[A-Za-z]-$", text) and re.match(r"[a-z]", line):
            text += line
        else:
            text = f"{text} {line}" if text else line
    return text


def split_items(lines: list[str]) -> list[list[str]]:
    """Split a block into list items.

    A new item starts at a bullet, at each entry of a definition list
    ("name -- text", "name: text" on most lines) and after a definition term
    (a short line followed by more-indented lines).
    """
    deflist = len(lines) >= 2 and sum(
        bool(DEFLINE.match(l.strip())) for l in lines) >= max(2, len(lines) / 2)
    items: list[list[str]] = []
    after_term = False
    for j, line in enumerate(lines):
        s = line.strip()
        nxt = lines[j + 1] if j + 1 < len(lines) else None
        is_term = (nxt is not None and indent_of(nxt) > indent_of(line)
                   and not BULLET.match(s) and len(s.split()) <= 8
                   and not s.endswith((".", ",", ";", ":")))
        if (not items or after_term or is_term or BULLET.match(s)
                or (deflist and DEFLINE.match(s))):
            items.append([line])
        else:
            items[-1].append(line)
        after_term = is_term
    return items


def clean_paragraphs(text: str, rest: bool) -> list[str]:
    """Return the prose paragraphs of a text (docstring or pydoc topic).

    *rest* is True for docstrings (reST source); pydoc topics are already
    rendered to plain text (literal blocks indented, ``::`` shown as ``:``).
    """
    out: list[str] = []
    prose_indent = 0          # indentation of the last prose paragraph
    introduces_code = False   # last prose paragraph ended with "::"/":"
    skip_indent = None        # skip blocks indented more than this
    after_code = False        # the last block was dropped as code
    for block in split_blocks(text):
        ind = min(indent_of(l) for l in block)
        if skip_indent is not None:
            if ind > skip_indent:
                continue
            skip_indent = None
        first = block[0].strip()
        # directives: ".. note::" keeps its content, others are dropped
        if DIRECTIVE.match(block[0]):
            m = re.match(r"\s*\.\.\s+([\w:-]+)::\s*(.*)", block[0])
            name = m.group(1) if m else ""
            if name in ("note", "warning", "seealso", "tip", "important", "attention",
                        "caution", "hint"):
                rest_lines = [m.group(2)] if m and m.group(2) else []
                block = rest_lines + [l for l in block[1:]]
                if not block:
                    continue
                ind = min(indent_of(l) for l in block)
                first = block[0].strip()
            else:
                skip_indent = ind
                continue
        # headings: "Title\n=====" (possibly with an overline)
        if any(UNDERLINE.match(l) for l in block):
            # drop the heading lines; keep what follows the underline
            last_ul = max(i for i, l in enumerate(block) if UNDERLINE.match(l))
            block = block[last_ul + 1:]
            if not block:
                continue
            ind = min(indent_of(l) for l in block)
            first = block[0].strip()
        if any(TABLE_LINE.match(l) for l in block):
            continue
        if FIELD.match(block[0]):
            continue
        is_bullet = bool(BULLET.match(first))
        indented = ind > prose_indent
        # classify with inline markup removed (":func:`len`" is not code)
        probe = [strip_markup(l) for l in block] if rest else block
        code = block_is_code(probe)
        if not code and indented and introduces_code and not is_bullet:
            code = not block_is_prose(probe)
        if not code and indented and not is_bullet and not block_is_prose(probe) \
                and not block[-1].rstrip().endswith((".", "?", "!")):
            code = True
        if code:
            # a sentence that introduced the dropped example goes too
            if out and out[-1].endswith(":"):
                sentences = split_sentences(out.pop())[:-1]
                if sentences:
                    out.append(" ".join(sentences))
            after_code = True
            continue
        for item in split_items(block):
            if item[0].lstrip().startswith(">>>") or block_is_code(
                    [strip_markup(l) for l in item] if rest else item):
                continue
            para = join_lines(item)
            para = BULLET.sub("", para)
            if rest:
                para = strip_markup(para)
            else:   # pydoc text keeps *emphasis* and **strong** asterisks
                para = EMPH.sub(r"\1", STRONG.sub(r"\1", para))
            # reST "Example::" -> "Example:", "text. ::" -> "text."
            para = re.sub(r"(?<=\w)::(?=\s|$)", ":", re.sub(r"\s+::(?=\s|$)", "", para))
            para = normalise(para)
            if para and after_code and para[0].islower():
                # "... is to insert: <example> at the location ..." -- the
                # rest of a sentence that the example interrupted
                para = " ".join(split_sentences(para)[1:])
            after_code = False
            if para:
                out.append(para)
        prose_indent = ind
        last = block[-1].rstrip()
        introduces_code = last.endswith(":")
    return out


# ---------------------------------------------------------------------------
# Sentence splitting
# ---------------------------------------------------------------------------

ABBREVIATIONS = {
    "e.g.", "i.e.", "eg.", "ie.", "etc.", "vs.", "cf.", "approx.", "viz.",
    "resp.", "a.k.a.", "w.r.t.", "al.", "ca.", "mr.", "mrs.", "ms.", "dr.",
    "prof.", "st.", "no.", "nos.", "fig.", "sec.", "ch.", "vol.", "pp.",
    "incl.", "esp.", "eq.", "jr.", "sr.", "inc.", "ltd.", "corp.", "ref.",
    "dept.", "u.s.", "e.", "i.",
}
BOUNDARY = re.compile(r"[.!?][\"'”’)\]]*\s+")


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph into sentences.

    A sentence ends at ".", "!" or "?" (plus closing quotes/brackets) followed
    by whitespace.  There is no split after abbreviations ("e.g.", "i.e.",
    "etc.", ...), initials ("G. van Rossum", "U.S."), an ellipsis, or before
    a lowercase word unless the period ends an ordinary word of three or more
    letters.  Dotted names ("os.path") and decimal numbers ("3.11") have no
    whitespace after the period and are never split.
    """
    sentences = []
    start = 0
    for m in BOUNDARY.finditer(paragraph):
        end = m.end()
        nxt = paragraph[end:end + 1]
        if not nxt:
            break
        before = paragraph[start:m.start() + 1].split()
        word = before[-1] if before else ""
        word = word.lstrip("\"“'‘([")
        bare = word.lower()
        if paragraph[m.start()] == ".":
            if bare in ABBREVIATIONS:
                continue
            if re.fullmatch(r"[A-Z]\.", word) or re.fullmatch(r"(?:[a-z]\.){2,}", bare):
                continue   # initials ("T. Berners-Lee"), "U.S."
            if bare.endswith(".."):
                continue   # ellipsis
        if not (nxt.isupper() or nxt.isdigit() or nxt in "\"“'‘([*"):
            # a lowercase start: only after a plain word ("... the value. x is")
            if not (nxt.islower() and re.fullmatch(r"[a-z]{3,}\.", bare)
                    and m.group()[1:].strip() == ""):
                continue
        sentences.append(paragraph[start:m.start() + len(m.group().rstrip())].strip())
        start = end
    tail = paragraph[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


IDENTIFIER_CALL = re.compile(r"\b[A-Za-z_][\w.]*\(\)")
SENTENCE_CODE_CHARS = CODE_CHARS - {"_"}


def sentence_symbol_density(text: str) -> float:
    return sum(ch in SENTENCE_CODE_CHARS for ch in text) / max(1, len(text))


QUOTED = re.compile(r'"[^"\s][^"]{0,80}"')
TERMINAL = (".", "?", "!", ":", ".)", ".\"", ".”", "?\"", "?”", "!\"", ".'", ".’")


LEGAL = re.compile(r"(?i)copyright|all rights reserved|licen[cs]ed (?:to|under)|"
                   r"permission is hereby|redistribut|\bno warranty|warranties")


def good_sentence(s: str) -> bool:
    """True for a sentence that looks like natural language."""
    if LEGAL.search(s):
        return False   # copyright and licence boilerplate
    words = s.split()
    if len(words) < MIN_WORDS or len(s) > MAX_SENTENCE_CHARS:
        return False
    if not re.match(r"[\"“‘'(]?[A-Za-z0-9]", s):
        return False
    # quoted literals ("__getitem__()", as pydoc renders ``code``) count as
    # one word each, but may not make up most of the sentence
    # run-together lists: "expand=bool - expand widget fill=X - fill ..."
    if len(re.findall(r"\w=\S", s)) >= 3 or len(re.findall(r"\s--?\s", s)) >= 3:
        return False
    quoted = QUOTED.findall(s)
    if sum(map(len, quoted)) > 0.5 * len(s):
        return False
    plain = IDENTIFIER_CALL.sub("X", QUOTED.sub(" X ", s))
    if sentence_symbol_density(plain) > 0.05:
        return False
    words = plain.split()
    alpha = sum(1 for w in words if re.fullmatch(r"[\"“‘'(]*[A-Za-z][a-z'’-]*[,.;:!?)\"”’]*", w))
    if alpha / len(words) < 0.6:
        return False
    if not s.endswith(TERMINAL):
        # unterminated: keep capitalised clauses ("Update the font if it is
        # changed"), drop entries of definition lists ("colno: the column")
        if len(words) < MIN_WORDS_UNTERMINATED or not s[0].isupper() or DEFLINE.match(s):
            return False
    elif s[0].islower() and len(words) < 5:
        return False
    return True


def document_sentences(paragraphs: list[str]) -> list[str]:
    sentences = []
    for para in paragraphs:
        for s in split_sentences(para):
            if good_sentence(s):
                sentences.append(s)
    # a trailing sentence that introduces something that was removed
    while sentences and sentences[-1].endswith(":"):
        sentences.pop()
    return sentences


# ---------------------------------------------------------------------------
# Collection
# ---------------------------------------------------------------------------
#
# A raw document is (doc_id, pieces); a piece is (text, is_rest).  Each piece
# (a docstring, a comment block, a topic, an HTML paragraph) is cleaned on its
# own, and the sentences of all pieces make up the document.

Piece = tuple[str, bool]
RawDoc = tuple[str, list[Piece]]


def topic_documents() -> list[RawDoc]:
    from pydoc_data.topics import topics
    return [(f"topic:{name}", [(topics[name], False)]) for name in sorted(topics)]


def has_own_licence(source: str) -> bool:
    text = re.sub(r"\s+", " ", source.replace("#", " "))
    return any(marker in text for marker in OWN_LICENCE_MARKERS)


def python_sources(stdlib: Path, name: str) -> list[tuple[str, Path]]:
    """(dotted module name, path) of a module or of all modules of a package."""
    single = stdlib / f"{name}.py"
    if single.is_file():
        return [(name, single)]
    pkg = stdlib / name
    if not (pkg / "__init__.py").is_file():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(pkg):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for fn in sorted(filenames):
            if not fn.endswith(".py"):
                continue
            path = Path(dirpath) / fn
            parts = list(path.relative_to(stdlib).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append((".".join(parts), path))
    return sorted(found)


HEADER_LINE = re.compile(
    r"(?i)copyright|all rights reserved|\bauthors?\b\s*:|^\s*(?:written|contributed|"
    r"maintained) by\b|contact\s*:|\$(?:Id|Revision|Date)|licen[cs]ed to|-\*-|"
    r"\bnoqa\b|type:\s*ignore|pragma\b|pylint:|fmt:\s*(?:on|off)|^\s*vim?:|^!")
COMMENT_PREFIX = re.compile(r"^(?:(?:XXX|TODO|FIXME|NB|NOTE)\b[:!,.]*\s*)+")


def comment_blocks(source: str) -> list[tuple[int, int, str]]:
    """Blocks of consecutive full-line comments: (first line, last line, text)."""
    blocks: list[tuple[int, int, list[str]]] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []
    for tok in tokens:
        if tok.type != tokenize.COMMENT or tok.line[:tok.start[1]].strip():
            continue   # inline comments (after code) are left out
        row = tok.start[0]
        text = tok.string[1:]
        if text.startswith(("#", "-", "=", "*")) and not text.strip("#-=* "):
            text = ""  # separator line
        text = text[1:] if text.startswith((" ", ":")) else text
        text = text.lstrip("#") if text.startswith("#") else text
        if HEADER_LINE.search(text):
            text = ""
        text = text.rstrip()
        stripped = COMMENT_PREFIX.sub("", text)
        if blocks and blocks[-1][1] == row - 1:
            prev = blocks[-1][2][-1].strip()
            # a paragraph break before "XXX ..." notes and after a short
            # unpunctuated heading line ("Helpers for bytes handling")
            if stripped != text or (prev and len(prev) < 50 and not prev.endswith(
                    tuple(".,;:!?-(")) and re.match(r"[A-Z][a-z]", stripped.strip())):
                blocks[-1][2].append("")
            blocks[-1] = (blocks[-1][0], row, blocks[-1][2] + [stripped])
        else:
            blocks.append((row, row, [stripped]))
    return [(a, b, "\n".join(lines)) for a, b, lines in blocks if any(l.strip() for l in lines)]


def python_documents(modname: str, source: str) -> list[RawDoc]:
    """Documents of one pure-Python module.

    The module document holds the module docstring and the comments outside
    any top-level definition; each top-level class or function gives one
    document with its docstring and, in source order, the docstrings of its
    methods and nested definitions and the comments inside it (and the comment
    block right above it).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in old test files
            tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    defs = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)

    top_level = []
    for node in tree.body:
        if isinstance(node, defs):
            top_level.append(node)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            # definitions under "if sys.platform ...:" or "try: ... except ImportError:"
            top_level.extend(sub for sub in ast.walk(node) if isinstance(sub, defs)
                             and not any(sub is d or sub in ast.walk(d) for d in top_level))
    top_level.sort(key=lambda n: n.lineno)
    # keep only outermost nodes (ast.walk above may find nested ones)
    outer, end = [], 0
    for node in top_level:
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        if start > end:
            outer.append((start, node.end_lineno, node))
            end = node.end_lineno

    # (line, text) pieces per owner: index into outer, or -1 for the module
    pieces: dict[int, list[tuple[int, str, bool]]] = {-1: []}
    doc = ast.get_docstring(tree, clean=True)
    if doc:
        pieces[-1].append((0, doc, True))
    for i, (start, stop, node) in enumerate(outer):
        pieces[i] = []
        for sub in ast.walk(node):
            if isinstance(sub, defs):
                d = ast.get_docstring(sub, clean=True)
                if d:
                    pieces[i].append((sub.lineno, d, True))

    for first, last, text in comment_blocks(source):
        owner = -1
        for i, (start, stop, _) in enumerate(outer):
            if start <= first <= stop or last + 1 == start:
                owner = i
                break
        pieces[owner].append((first, text, True))

    docs = []
    for owner in [-1] + list(range(len(outer))):
        items = sorted(pieces.get(owner, []), key=lambda p: p[0])
        if not items:
            continue
        name = modname if owner == -1 else f"{modname}.{outer[owner][2].name}"
        docs.append((name, [(text, rest) for _, text, rest in items]))
    return docs


def c_documents(modname: str) -> list[RawDoc]:
    """Documents of a built-in/extension module: the module docstring, one
    document per function and one per class (with its methods)."""
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            module = importlib.import_module(modname)
    except Exception:
        return []

    def text_of(obj) -> str | None:
        doc = getattr(obj, "__doc__", None)
        if not isinstance(doc, str):
            return None
        lines = inspect.cleandoc(doc).splitlines()
        # drop leading signature lines ("S.find(sub[, start]) -> int")
        while lines and (SIGNATURE.match(lines[0].strip()) or not lines[0].strip()):
            lines.pop(0)
        return "\n".join(lines) or None

    docs: list[RawDoc] = []
    text = text_of(module)
    if text:
        docs.append((modname, [(text, True)]))
    for name in sorted(vars(module)):
        obj = vars(module)[name]
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if getattr(obj, "__module__", None) not in (modname, module.__name__):
            continue
        pieces = []
        text = text_of(obj)
        if text:
            pieces.append((text, True))
        if inspect.isclass(obj):
            for attr in sorted(vars(obj)):
                if attr.startswith("__") and attr not in ("__init__", "__new__", "__call__"):
                    continue
                member = vars(obj)[attr]
                if isinstance(member, (classmethod, staticmethod)):
                    member = member.__func__
                if inspect.isclass(member) or isinstance(
                        member, (int, float, complex, str, bytes, tuple, list, dict, type(None))):
                    continue
                text = text_of(member)
                if text:
                    pieces.append((text, True))
        if pieces:
            docs.append((f"{modname}.{name}", pieces))
    return docs


class _HelpHTML(html.parser.HTMLParser):
    """Paragraph text of Sphinx HTML: sections split at h1/h2 headings."""

    BLOCKS = {"p", "li", "dd", "dt", "td", "th", "h1", "h2", "h3", "h4", "div"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, list[str]]] = []
        self.skip = 0
        self.buf: list[str] = []
        self.in_body = False
        self.heading: str | None = None
        self.anchors: list[bool] = []

    def flush(self):
        text = normalise("".join(self.buf))
        self.buf = []
        if not text:
            return
        if self.heading is not None:
            self.heading += text
        elif self.sections:
            self.sections[-1][1].append(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and attrs.get("role") == "main":
            self.in_body = True
        elif tag == "div" and attrs.get("class") in ("clearer", "sphinxsidebar", "footer"):
            self.in_body = False   # end of the page body: navigation, footer
        if tag == "a":
            skip = "headerlink" in (attrs.get("class") or "")
            self.anchors.append(skip)
            self.skip += skip
        if tag in ("pre", "script", "style"):
            self.skip += 1
        if tag in self.BLOCKS:
            self.flush()
        if tag in ("h1", "h2"):
            self.heading = ""

    def handle_endtag(self, tag):
        if tag == "a" and self.anchors:
            self.skip -= self.anchors.pop()
        if tag in ("pre", "script", "style"):
            self.skip = max(0, self.skip - 1)
        if tag in self.BLOCKS:
            self.flush()
        if tag in ("h1", "h2") and self.heading is not None:
            self.sections.append((self.heading, []))
            self.heading = None

    def handle_data(self, data):
        if self.in_body and not self.skip:
            self.buf.append(data)


def html_documents(path: Path, prefix: str) -> list[RawDoc]:
    parser = _HelpHTML()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return [(f"{prefix}:{title}", [(p, False) for p in paras])
            for title, paras in parser.sections if paras]


def collect(verbose: bool = False) -> list[tuple[str, list[str]]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    raw: list[RawDoc] = []
    raw.extend(topic_documents())
    for rel, prefix in EXTRA_DOC_FILES:
        path = stdlib / rel
        if not path.is_file():
            continue
        if path.suffix == ".html":
            raw.extend(html_documents(path, prefix))
        else:
            raw.append((prefix, [(path.read_text(encoding="utf-8"), True)]))
    skipped_licence = []
    for name in PY_MODULES:
        for modname, path in python_sources(stdlib, name):
            try:
                source = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if has_own_licence(source):
                skipped_licence.append(modname)
                continue
            raw.extend(python_documents(modname, source))
    for name in C_MODULES:
        raw.extend(c_documents(name))
    if verbose:
        print("skipped (own licence notice):", ", ".join(skipped_licence), file=sys.stderr)

    documents = []
    seen_sentences: set[str] = set()
    for doc_id, pieces in raw:
        sentences = []
        for text, rest in pieces:
            sentences.extend(document_sentences(clean_paragraphs(text, rest)))
        # drop sentences that already appeared (inherited boilerplate such as
        # "Initialize self.", C/Python twins such as _pydecimal/_decimal)
        unique = []
        for s in sentences:
            if s not in seen_sentences:
                seen_sentences.add(s)
                unique.append(s)
        if len(unique) >= MIN_SENTENCES:
            documents.append((doc_id, unique))
    return documents


def distribute(documents, n):
    """Deal documents, in order, to n files: each goes to the smallest file so far."""
    files = [[] for _ in range(n)]
    sizes = [0] * n
    for doc_id, sentences in documents:
        size = sum(len(s.encode("utf-8")) + 1 for s in sentences) + 1
        i = min(range(n), key=lambda k: (sizes[k], k))
        files[i].append((doc_id, sentences))
        sizes[i] += size
    return files


def render(docs) -> str:
    """BERT text format: one sentence per line, one blank line between documents."""
    return "\n".join("\n".join(sentences) + "\n" for _, sentences in docs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path,
                        default=Path(__file__).resolve().parent / "corpus",
                        help="where to write python-docs-{1,2,3}.txt (default: demo/corpus)")
    parser.add_argument("--dry-run", action="store_true", help="do not write files")
    parser.add_argument("--ids", type=Path, metavar="PATH",
                        help="also write a TSV of (file number, document source) to PATH "
                             "(keep it out of demo/corpus: the demo reads every *.txt there)")
    args = parser.parse_args(argv)

    documents = collect(verbose=True)
    files = distribute(documents, NUM_FILES)
    print(f"Python {sys.version.split()[0]}: {len(documents)} documents")
    if not args.dry_run:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    total_bytes = 0
    for i, docs in enumerate(files, start=1):
        data = render(docs).encode("utf-8")
        total_bytes += len(data)
        path = args.out_dir / FILE_NAME.format(i)
        if not args.dry_run:
            path.write_bytes(data)
        n_sent = sum(len(s) for _, s in docs)
        print(f"{path}: {len(docs)} documents, {n_sent} sentences, {len(data)} bytes")
    if args.ids:
        args.ids.write_text("".join(f"{i}\t{doc_id}\n" for i, docs in enumerate(files, 1)
                                    for doc_id, _ in docs), encoding="utf-8")
    n_sent = sum(len(s) for _, s in documents)
    print(f"total: {len(documents)} documents, {n_sent} sentences, {total_bytes} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
