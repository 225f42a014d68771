#!/usr/bin/python3
"""Every relative link of the project's documentation lands: the file or
directory exists, and an anchor (`#heading`) names a heading of the target
(GitHub's slugs).  Run by `make docs-test` (part of `make test`); with
--anchors FILE it prints the anchors of FILE instead.

The documents: README.md, ARCHITECTURE.md, docs/*.md and every other
README.md of the repository (alert-rules' runbooks among them)."""

import glob
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
CODE = re.compile(r"(`+)(.+?)\1", re.S)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
# [text](target) and ![alt](target); text may wrap lines, not brackets
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.M)
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)


def documents():
    paths = {os.path.join(ROOT, p) for p in ("README.md", "ARCHITECTURE.md")}
    paths |= set(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in (
            ".git", "build", "node_modules")]
        if "README.md" in filenames:
            paths.add(os.path.join(dirpath, "README.md"))
    return sorted(paths)


def blank(m):
    """Keeps line numbers (newlines) and lengths; drops the content."""
    return re.sub(r"[^\n]", " ", m.group(0))


def slug(text):
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)   # links: text
    text = re.sub(r"<[^>]+>", "", text)                       # inline html
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = FENCE.sub(blank, text)
    seen = {}
    out = set(HTML_ANCHOR.findall(text))
    for m in HEADING.finditer(text):
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else "%s-%d" % (base, n))
    return out


def links(path):
    """(line, target) of every link outside code."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = FENCE.sub(blank, text)
    # inline code: blanked, but a link's text may hold code, so keep the
    # brackets and parentheses that make the link around it
    text = CODE.sub(lambda m: "x" * len(m.group(0)) if "\n" not in m.group(0)
                    else blank(m), text)
    for rx in (LINK, REFDEF):
        for m in rx.finditer(text):
            yield text.count("\n", 0, m.start(1)) + 1, m.group(1)


def check():
    problems = []
    cache = {}
    docs = documents()
    count = 0
    for doc in docs:
        for line, target in links(doc):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue                     # http:, https:, mailto: ...
            count += 1
            where = "%s:%d" % (os.path.relpath(doc, ROOT), line)
            path, _, frag = target.partition("#")
            dest = doc if not path else os.path.normpath(
                os.path.join(os.path.dirname(doc), path))
            if not dest.startswith(ROOT + os.sep) and dest != ROOT:
                problems.append("%s: %s leaves the repository" % (where, target))
                continue
            if not os.path.exists(dest):
                problems.append("%s: %s: no such file" % (where, target))
                continue
            if frag:
                if not dest.endswith(".md") or os.path.isdir(dest):
                    problems.append("%s: %s: an anchor into a file that is "
                                    "not markdown" % (where, target))
                    continue
                if dest not in cache:
                    cache[dest] = anchors(dest)
                if frag not in cache[dest]:
                    problems.append("%s: %s: no heading #%s in %s" % (
                        where, target, frag, os.path.relpath(dest, ROOT)))
    return docs, count, problems


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--anchors":
        print("\n".join(sorted(anchors(sys.argv[2]))))
        return 0
    docs, count, problems = check()
    for p in problems:
        print("broken link: " + p, file=sys.stderr)
    print("doc links: %d relative links in %d documents, %d broken" % (
        count, len(docs), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
