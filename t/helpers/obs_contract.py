"""The module-sidecar contract as the Python tests see it: proto/obs/v1's
framing.h constants, the rows of its X-macro tables (drop reasons, decode
errors, metric families) and record.proto compiled by Google's protoc, all
read from the files themselves, so a test never restates a bound, a name or
a label (t/helpers/ObsContract.pm does the same for Perl)."""

import importlib
import os
import re
import subprocess
import sys
import tempfile

PROTO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                     "proto"))
V1 = os.path.join(PROTO, "obs", "v1")


def framing():
    """framing.h's #define NAME value: numbers as int, strings as bytes."""
    out = {}
    with open(os.path.join(V1, "framing.h")) as f:
        for line in f:
            m = re.match(r"#define\s+(OBS_\w+)\s+(.+?)\s*$", line)
            if not m:
                continue
            v = m.group(2)
            if v.isdigit():
                out[m.group(1)] = int(v)
            elif v.startswith('"'):
                parts = re.findall(r'"((?:[^"\\]|\\.)*)"', v)
                out[m.group(1)] = b"".join(
                    p.encode().decode("unicode_escape").encode("latin-1")
                    for p in parts)
    return out


def rows(name, macro):
    """Each MACRO(a, b, ...) of a .def file as a list of its arguments
    (string literals unquoted, "" for empty ones)."""
    with open(os.path.join(V1, name)) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"(?m)^#.*$", "", text)
    out = []
    for m in re.finditer(r"\b%s\(((?:[^()\"]|\"(?:[^\"\\]|\\.)*\")*)\)"
                         % re.escape(macro), text):
        args = re.findall(r'\s*("(?:[^"\\]|\\.)*"(?:\s*"(?:[^"\\]|\\.)*")*'
                          r'|[^,]*)\s*(?:,|$)', m.group(1))
        vals = []
        for a in args[:-1] if args and args[-1] == "" else args:
            a = a.strip()
            if a.startswith('"'):
                a = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', a))
            vals.append(a)
        out.append(vals)
    return out


def drop_reasons():
    """obs_records_dropped_total's reason values, in the module's order."""
    return [r[1] for r in rows("drop_reasons.def", "OBS_MODULE_DROP")]


def decode_errors():
    """obs_decode_errors_total's reason values, in the sidecar's order."""
    return [r[1] for r in rows("decode_errors.def", "OBS_DECODE_ERROR")]


_pb = None


def record_pb2():
    """obs.v1's record.proto compiled by protoc for Python, once a run."""
    global _pb
    if _pb is None:
        out = tempfile.mkdtemp(prefix="obs-pb-")
        subprocess.check_call(["protoc", "-I", PROTO, "--python_out=" + out,
                               os.path.join(V1, "record.proto")])
        sys.path.insert(0, out)
        _pb = importlib.import_module("obs.v1.record_pb2")
    return _pb


def families():
    """families.def: one dict per family (name, type, unit, stored,
    otel_name, otel_unit, help, labels), in the table's order; the name as
    exposed (a counter's with _total) is "exposed"."""
    out = {}
    order = []
    for row in rows("families.def", "OBS_FAMILY"):
        fid, name, typ, unit, stored, oname, ounit, help_ = row
        none = lambda v: None if v == "NULL" else v  # noqa: E731
        out[fid] = {"id": fid, "name": name, "type": typ.lower(),
                    "unit": none(unit), "stored": stored == "1",
                    "otel_name": none(oname), "otel_unit": none(ounit),
                    "help": help_, "labels": [],
                    "exposed": name + ("_total" if typ == "COUNTER" else "")}
        order.append(fid)
    for fid, label in rows("families.def", "OBS_LABEL"):
        out[fid]["labels"].append(label)
    return [out[f] for f in order]


def label_names():
    """The labels the gateway sets: {label: (OpenTelemetry attribute,
    "TEXT" or "INT")} (families.def's OBS_LABEL_NAME)."""
    return {label: (otel, kind) for label, otel, kind
            in rows("families.def", "OBS_LABEL_NAME")}
