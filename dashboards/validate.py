#!/usr/bin/python3
"""Checks that Grafana can load the dashboards and the provisioning files.

No Grafana runs on the build machines, so this holds the dashboards to what
Grafana needs to load and import them: a schema version it migrates from,
unique panel ids, panels on the 24-column grid without overlap, datasource
references that resolve (to a datasource template variable of the right
type: no hard-coded uids, so they import into any Grafana), every template
variable a query uses defined, every `${DS_...}` import input declared and
used, rows as Grafana lays them out, and every link resolving (a dashboard
uid that exists and variables it has, an Explore pane on a datasource
variable of its type, labels the clicked series or row carries).  The
provisioning files may only use the `$VAR` / `${VAR}` expansion
Grafana does (not `${VAR:-default}`), every variable must be set on the
compose stack's grafana service, and the datasources must link to uids that
exist.  Prints one line per problem; exits 1 if there is any."""

import glob
import json
import os
import re
import sys
import urllib.parse

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
COMPOSE = os.path.join(HERE, "..", "deploy", "compose", "docker-compose.yml")

MIN_SCHEMA, MAX_SCHEMA = 36, 41       # object datasource refs .. Grafana 11
PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "piechart", "logs",
               "bargauge", "text", "row", "heatmap", "barchart"}
BUILTIN_VARS = {"__rate_interval", "__interval", "__interval_ms", "__range",
                "__range_s", "__range_ms", "__from", "__to", "__all",
                "__auto", "__dashboard", "__org", "__user", "__name",
                "__value", "__field", "__series", "__data", "__cell",
                "timeFilter", "__timeFilter", "__url_time_range",
                "__all_variables", "__timezone"}
# $name, ${name}, ${name:format}, [[name]]
VAR_REF = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
INPUT_REF = re.compile(r"\$\{(DS_\w+)\}")
# Grafana's provisioning expands $VAR and ${VAR}; $$ is a literal $
ENV_REF = re.compile(r"\$\$|\$\{([^}]*)\}|\$([A-Za-z_]\w*)")


def strings(node):
    """Every string inside a JSON value."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def used_vars(node):
    for s in strings(node):
        for m in VAR_REF.finditer(s):
            yield next(g for g in m.groups() if g)


def check_datasource(where, ds, ds_vars, errors):
    """A panel's, target's or variable's datasource is a template variable
    of the same plugin type."""
    if not isinstance(ds, dict) or "uid" not in ds or "type" not in ds:
        errors.append("%s: datasource must be {type, uid}, is %r"
                      % (where, ds))
        return
    m = re.fullmatch(r"\$\{(\w+)\}", ds["uid"])
    if not m:
        errors.append("%s: hard-coded datasource uid %r (use a datasource "
                      "variable)" % (where, ds["uid"]))
    elif m.group(1) not in ds_vars:
        errors.append("%s: datasource variable %s is not defined"
                      % (where, m.group(1)))
    elif ds_vars[m.group(1)] != ds["type"]:
        errors.append("%s: datasource %s is a %s variable, not %s"
                      % (where, m.group(1), ds_vars[m.group(1)], ds["type"]))


def check_grid(name, panels, errors):
    cells = {}
    for p in panels:
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "xywh"):
            errors.append("%s: panel %s has no integer gridPos"
                          % (name, p.get("id")))
            continue
        if g["w"] <= 0 or g["h"] <= 0 or g["x"] < 0 or g["x"] + g["w"] > 24:
            errors.append("%s: panel %s is off the 24-column grid: %r"
                          % (name, p.get("id"), g))
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    errors.append("%s: panels %s and %s overlap"
                                  % (name, cells[(x, y)], p.get("id")))
                    return
                cells[(x, y)] = p.get("id")


def check_dashboard(name, d):
    errors = []
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        if key not in d:
            errors.append("%s: no %s" % (name, key))
    if errors:
        return errors
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d["uid"]):
        errors.append("%s: uid %r is not a Grafana uid" % (name, d["uid"]))
    if not (isinstance(d["schemaVersion"], int)
            and MIN_SCHEMA <= d["schemaVersion"] <= MAX_SCHEMA):
        errors.append("%s: schemaVersion %r outside %d..%d"
                      % (name, d["schemaVersion"], MIN_SCHEMA, MAX_SCHEMA))

    variables = d["templating"].get("list", [])
    names = [v.get("name") for v in variables]
    for n in set(names):
        if names.count(n) > 1:
            errors.append("%s: variable %s defined twice" % (name, n))
    ds_vars = {v["name"]: v.get("query") for v in variables
               if v.get("type") == "datasource"}
    for v in variables:
        if v.get("type") == "query":
            check_datasource("%s: variable %s" % (name, v["name"]),
                             v.get("datasource"), ds_vars, errors)
    defined = set(names) | BUILTIN_VARS

    ids = [p.get("id") for p in d["panels"]]
    for i in set(ids):
        if not isinstance(i, int) or ids.count(i) > 1:
            errors.append("%s: panel id %r is missing or not unique"
                          % (name, i))
    check_grid(name, d["panels"], errors)
    for p in d["panels"]:
        where = "%s: panel %r" % (name, p.get("title"))
        if p.get("type") not in PANEL_TYPES:
            errors.append("%s: unknown panel type %r" % (where, p.get("type")))
        if p.get("type") == "row":
            # a heading: the panels below it up to the next row are its own
            g = p.get("gridPos", {})
            if (g.get("w"), g.get("h")) != (24, 1) or p.get("targets") \
                    or p.get("panels") != [] or p.get("collapsed"):
                errors.append("%s: a row is 24x1, open, with no targets or "
                              "panels of its own" % where)
            continue
        check_datasource(where, p.get("datasource"), ds_vars, errors)
        refs = [t.get("refId") for t in p.get("targets", [])]
        if not refs or len(set(refs)) != len(refs) or None in refs:
            errors.append("%s: targets need unique refIds: %r"
                          % (where, refs))
        for t in p.get("targets", []):
            check_datasource("%s %s" % (where, t.get("refId")),
                             t.get("datasource"), ds_vars, errors)
            if not t.get("expr"):
                errors.append("%s %s: no expr" % (where, t.get("refId")))
            if (t.get("datasource", {}).get("type") == "loki"
                    and p.get("type") != "logs" and not t.get("expr")):
                errors.append("%s: a Loki target without a query" % where)
    for v in sorted(set(used_vars([d["panels"], variables])) - defined):
        if not v.startswith("DS_"):
            errors.append("%s: variable $%s is used but not defined"
                          % (name, v))

    inputs = {i.get("name"): i for i in d.get("__inputs", [])}
    used_inputs = {m for s in strings(d) for m in INPUT_REF.findall(s)}
    for i in sorted(used_inputs - set(inputs)):
        errors.append("%s: ${%s} is used but not in __inputs" % (name, i))
    for i in sorted(set(inputs) - used_inputs):
        errors.append("%s: __inputs %s is never used" % (name, i))
    for v in variables:
        if v.get("type") != "datasource":
            continue
        m = INPUT_REF.fullmatch(str(v.get("current", {}).get("value", "")))
        if not m or inputs.get(m.group(1), {}).get("pluginId") != v["query"]:
            errors.append("%s: datasource variable %s does not default to a "
                          "%s import input" % (name, v["name"], v["query"]))
    return errors


def panel_links(p):
    """Every data link and panel link of a panel."""
    fc = p.get("fieldConfig", {})
    out = list(p.get("links", [])) + list(fc.get("defaults", {})
                                         .get("links", []))
    for o in fc.get("overrides", []):
        for prop in o.get("properties", []):
            if prop.get("id") == "links":
                out += prop.get("value", [])
    return out


def check_links(dashboards):
    """Links between the dashboards (given as {file: dashboard}) and to
    Explore resolve: a /d/<uid> link names a dashboard that exists and only
    variables it has; an Explore pane uses a datasource variable of its
    type; a link naming the clicked series' label or row's field names one
    the panel's queries produce; a dashboards menu finds dashboards."""
    errors = []
    by_uid = {d.get("uid"): d for d in dashboards.values()}
    tags = {t for d in dashboards.values() for t in d.get("tags", [])}
    for name, d in dashboards.items():
        ds_vars = {v["name"]: v.get("query") for v in
                   d.get("templating", {}).get("list", [])
                   if v.get("type") == "datasource"}
        for link in d.get("links", []):
            if link.get("type") == "dashboards":
                if not set(link.get("tags", [])) <= tags:
                    errors.append("%s: the dashboards menu's tags %r match "
                                  "no dashboard" % (name, link.get("tags")))
            else:
                check_url(name, link.get("url", ""), by_uid, ds_vars, None,
                          errors)
        for p in d.get("panels", []):
            for link in panel_links(p):
                check_url("%s: panel %r" % (name, p.get("title")),
                          link.get("url", ""), by_uid, ds_vars, p, errors)
    return errors


def check_url(where, url, by_uid, ds_vars, panel, errors):
    """One link's target (see check_links)."""
    exprs = " ".join(t.get("expr", "") + " " + t.get("legendFormat", "")
                     for t in (panel or {}).get("targets", []))
    for kind, label in re.findall(r"\$\{__(field\.labels|data\.fields)"
                                  r"\.(\w+)\}", url):
        if not re.search(r"\b%s\b" % label, exprs):
            errors.append("%s: link uses %s.%s, which its queries do not "
                          "produce" % (where, kind, label))
    parts = urllib.parse.urlsplit(url)
    params = urllib.parse.parse_qs(parts.query)
    m = re.fullmatch(r"/d/([A-Za-z0-9_-]+)(/[\w-]*)?", parts.path)
    if m:
        target = by_uid.get(m.group(1))
        if target is None:
            errors.append("%s: link to dashboard %r, which does not exist"
                          % (where, m.group(1)))
            return
        have = {v["name"] for v in target["templating"]["list"]}
        for key in params:
            if key.startswith("var-") and key[4:] not in have:
                errors.append("%s: link sets %s, which dashboard %s does not "
                              "have" % (where, key, m.group(1)))
        return
    if parts.path == "/explore":
        try:
            panes = json.loads(params["panes"][0])
        except (KeyError, ValueError) as e:
            errors.append("%s: Explore link without a valid panes "
                          "parameter: %s" % (where, e))
            return
        for pane in panes.values():
            m = re.fullmatch(r"\$\{(\w+)\}", pane.get("datasource", ""))
            if not m or m.group(1) not in ds_vars:
                errors.append("%s: Explore pane on %r, not a datasource "
                              "variable" % (where, pane.get("datasource")))
                continue
            for q in pane.get("queries", []):
                check_datasource("%s Explore query" % where,
                                 q.get("datasource"), ds_vars, errors)
        return
    errors.append("%s: link %r is neither a dashboard nor Explore"
                  % (where, url))


def expand(text, env, where, errors):
    """Grafana's expansion of provisioning files: $VAR, ${VAR}, $$."""
    def one(m):
        if m.group(0) == "$$":
            return "$"
        var = m.group(1) if m.group(1) is not None else m.group(2)
        if not re.fullmatch(r"[A-Za-z_]\w*", var):
            errors.append("%s: ${%s}: Grafana expands only $VAR and ${VAR}"
                          % (where, var))
            return ""
        if var not in env:
            errors.append("%s: $%s is not set on the compose grafana service"
                          % (where, var))
            return ""
        return env[var]
    return ENV_REF.sub(one, text)


def expand_values(node, env, where, errors):
    """Grafana expands the string values of a provisioning file (comments
    and keys are left alone)."""
    if isinstance(node, str):
        return expand(node, env, where, errors)
    if isinstance(node, dict):
        return {k: expand_values(v, env, where, errors)
                for k, v in node.items()}
    if isinstance(node, list):
        return [expand_values(v, env, where, errors) for v in node]
    return node


PROVISIONING = "/etc/grafana/provisioning/"


def grafana_stacks(compose_path):
    """The grafana service of the base compose file alone, and merged with
    each override file beside it (docker-compose.<name>.yml), as
    `docker-compose -f base -f override` merges them: environment by key,
    volumes appended."""
    def load(path):
        with open(path) as f:
            svc = (yaml.safe_load(f).get("services") or {}).get("grafana")
        svc = svc or {}
        env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
        mounts = {}
        for vol in svc.get("volumes", []):
            src, dst = vol.split(":")[:2]
            if src.startswith("."):
                src = os.path.normpath(os.path.join(os.path.dirname(path),
                                                    src))
            mounts[dst] = src
        return env, mounts

    base_env, base_mounts = load(compose_path)
    stacks = [(os.path.basename(compose_path), base_env, base_mounts)]
    stem = os.path.splitext(compose_path)[0]
    for over in sorted(glob.glob(stem + ".*.yml")):
        env, mounts = load(over)
        stacks.append(("%s + %s" % (os.path.basename(compose_path),
                                    os.path.basename(over)),
                       dict(base_env, **env), dict(base_mounts, **mounts)))
    return stacks


def check_provisioning(compose_path=COMPOSE):
    """Every provisioning file that any compose stack mounts into Grafana is
    expanded as Grafana would with that stack's environment, and every
    provisioning file under dashboards/ is mounted by some stack."""
    errors = []
    mounted = set()
    for stack, env, mounts in grafana_stacks(compose_path):
        errors += check_stack(stack, env, mounts, mounted)

    for path in glob.glob(os.path.join(HERE, "**", "*.yml"), recursive=True):
        if os.path.normpath(path) not in mounted:
            errors.append("%s: a provisioning file no compose stack mounts "
                          "(so nothing checks it)"
                          % os.path.relpath(path, HERE))
    return errors


def check_stack(stack, env, mounts, mounted):
    errors = []
    sources, providers = [], []
    for dst, src in sorted(mounts.items()):
        if not dst.startswith(PROVISIONING) or not src.startswith("/"):
            continue
        where = "%s (%s)" % (os.path.relpath(src, HERE), stack)
        mounted.add(os.path.normpath(src))
        with open(src) as f:
            doc = expand_values(yaml.safe_load(f), env, where, errors)
        if dst.startswith(PROVISIONING + "datasources/"):
            sources += [(where, s) for s in doc.get("datasources", [])]
        elif dst.startswith(PROVISIONING + "dashboards/"):
            providers += [(where, p) for p in doc.get("providers", [])]
        else:
            errors.append("%s: mounted at %s, which Grafana does not read"
                          % (where, dst))

    uids = {s.get("uid"): s.get("type") for _, s in sources}
    if len(uids) != len(sources):
        errors.append("%s: datasource uids are not unique" % stack)
    links = []
    for where, s in sources:
        if "url" in s and not re.match(r"https?://[^/\s]+", s["url"]):
            errors.append("%s: %s url %r is not an http URL"
                          % (where, s.get("name"), s.get("url")))
        jd = s.get("jsonData", {})
        if s.get("type") == "grafana-clickhouse-datasource" \
                and not re.fullmatch(r"[A-Za-z0-9.-]+", jd.get("host", "")):
            errors.append("%s: %s host %r is not a host name"
                          % (where, s.get("name"), jd.get("host")))
        links += [(where, s["name"], x.get("datasourceUid"), "jaeger")
                  for x in jd.get("exemplarTraceIdDestinations", [])
                  + jd.get("derivedFields", [])]
        if "tracesToLogsV2" in jd:
            links.append((where, s["name"], jd["tracesToLogsV2"].get(
                "datasourceUid"), "loki"))
        for x in jd.get("derivedFields", []):
            if "${__value.raw}" not in x.get("url", ""):
                errors.append("%s: derived field %s does not link "
                              "${__value.raw}" % (where, x.get("name")))
    for where, src, uid, kind in links:
        if uids.get(uid) != kind:
            errors.append("%s: %s links to %r, not a %s datasource"
                          % (where, src, uid, kind))

    for where, prov in providers:
        path = prov.get("options", {}).get("path", "")
        if os.path.normpath(mounts.get(path, "")) != os.path.normpath(HERE):
            errors.append("%s: provider path %r is not where compose mounts "
                          "dashboards/" % (where, path))
    return errors


def main():
    errors = []
    paths = sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, "*.json")))
    loaded = {}
    for path in paths:
        with open(path) as f:
            try:
                d = json.load(f)
            except ValueError as e:
                errors.append("%s: not JSON: %s" % (path, e))
                continue
        loaded[os.path.basename(path)] = d
        errors += check_dashboard(os.path.basename(path), d)
    errors += check_links(loaded)
    errors += check_provisioning()
    for e in errors:
        print(e)
    print("dashboards: %d checked, %d problems" % (len(paths), len(errors)))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
