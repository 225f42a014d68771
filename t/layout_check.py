#!/usr/bin/python3
"""The file maps are complete (make layout-check, part of make test).

ARCHITECTURE.md's "Where each file lives" names every .c and .h under
ngx_obs_module/, sidecar/, exporter/ and common/ exactly once, under a
heading naming its folder, in the first cell of a table row; a .c stands
for the .h of the same name beside it.  A file on disk that is not named, a
name under the wrong folder or for a file that is gone, a name given twice
and a folder with no heading all fail.  The module's header and the JWT
module's name every file of their own folder in their leading comment.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = ("ngx_obs_module", "sidecar", "exporter", "common")
SECTION = "## Where each file lives"
HEADER_MAPS = {
    "ngx_obs_module": "ngx_http_obs_module.h",
    "ngx_obs_module/jwt": "ngx_http_obs_jwt.h",
}
NAME = re.compile(r"`([A-Za-z0-9_.]+\.[ch])`")
HEADING = re.compile(r"^### `([^`]+)/`")


def sources():
    """{folder: {file}} of the .c and .h files on disk under TREES."""
    found = {}
    for top in TREES:
        for d, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs.sort()
            names = {f for f in files if f.endswith((".c", ".h"))}
            if names:
                found[os.path.relpath(d, ROOT)] = names
    return found


def stands_for(names):
    """The files a list of names covers: foo.c covers foo.h too."""
    return names | {n[:-2] + ".h" for n in names if n.endswith(".c")}


def architecture_map(errors):
    """{folder: [names]} from ARCHITECTURE.md's file map."""
    path = os.path.join(ROOT, "ARCHITECTURE.md")
    lines = open(path, encoding="utf-8").read().split("\n")
    try:
        start = lines.index(SECTION)
    except ValueError:
        errors.append("ARCHITECTURE.md: no section %r" % SECTION)
        return {}
    listed, folder = {}, None
    for n, line in enumerate(lines[start + 1:], start + 2):
        if line.startswith("## "):
            break
        m = HEADING.match(line)
        if m:
            folder = m.group(1)
            if folder in listed:
                errors.append("ARCHITECTURE.md:%d: a second heading for %s/"
                              % (n, folder))
            listed.setdefault(folder, [])
            continue
        if not line.startswith("|") or line.startswith(("| file |", "|---")):
            continue
        names = NAME.findall(line.split("|")[1])
        if folder is None:
            errors.append("ARCHITECTURE.md:%d: a row before any folder" % n)
        elif not names:
            errors.append("ARCHITECTURE.md:%d: a row that names no file" % n)
        else:
            listed[folder].extend(names)
    return listed


def check_architecture(disk, errors):
    listed = architecture_map(errors)
    for folder in sorted(set(disk) | set(listed)):
        names = listed.get(folder)
        if names is None:
            errors.append("ARCHITECTURE.md: no heading \"### `%s/`\" for %s"
                          % (folder, ", ".join(sorted(disk[folder]))))
            continue
        for name in sorted({n for n in names if names.count(n) > 1}):
            errors.append("ARCHITECTURE.md: %s/%s is named twice"
                          % (folder, name))
        on_disk = disk.get(folder, set())
        for name in sorted(set(names) - on_disk):
            errors.append("ARCHITECTURE.md names %s/%s, which is not there"
                          % (folder, name))
        for name in sorted(on_disk - stands_for(set(names))):
            errors.append("ARCHITECTURE.md does not name %s/%s"
                          % (folder, name))


def check_header_maps(disk, errors):
    for folder, header in sorted(HEADER_MAPS.items()):
        path = os.path.join(ROOT, folder, header)
        text = open(path, encoding="utf-8").read()
        comment = text[:text.find("*/")]
        named = set(re.findall(r"[A-Za-z0-9_]+\.[ch]\b", comment))
        for name in sorted(disk.get(folder, set()) - {header}
                           - stands_for(named)):
            errors.append("%s/%s: its file map does not name %s"
                          % (folder, header, name))


def main():
    disk = sources()
    errors = []
    check_architecture(disk, errors)
    check_header_maps(disk, errors)
    for e in errors:
        print("layout-check: " + e, file=sys.stderr)
    if errors:
        return 1
    print("layout-check: %d files in %d folders, each named once in "
          "ARCHITECTURE.md; the module headers' maps are complete"
          % (sum(len(v) for v in disk.values()), len(disk)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
