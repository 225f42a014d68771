#!/usr/bin/python3
"""The tables of bench/module_cost.sh, from its callgrind files and pool
probe logs.

Each measured configuration ("key") ran twice under callgrind, serving
N_SMALL and N_LARGE requests (files cg.<key>.<n>): the difference between
the two, divided by N_LARGE - N_SMALL, is one request's cost with start-up
and exit cancelled, in total and per function (self and inclusive) and per
call edge.  A manifest line per variant names the key it ran under and the
key of the bare proxy of the same request shape:

    variant <TAB> shape <TAB> baseline key <TAB> module key

Usage: callgrind_costs.py WORK N_SMALL N_LARGE MODULE_OBJECT TOP
(WORK holds manifest.tsv, the callgrind files and probe.<key>.log files)
"""

import collections
import os
import re
import statistics
import sys

# the request pool's allocators, and what allocates from it for a caller;
# the module's calls to these are counted per request
POOL_CALLS = ("ngx_palloc", "ngx_pnalloc", "ngx_pcalloc", "ngx_pmemalign",
              "ngx_array_create", "ngx_array_push", "ngx_array_push_n",
              "ngx_list_push", "ngx_create_temp_buf", "ngx_calloc_buf",
              "ngx_alloc_chain_link", "ngx_pool_cleanup_add", "ngx_pstrdup")
HEAP_CALLS = ("malloc", "calloc", "realloc", "free")
# libc's allocator inside: its cost depends on the heap's layout, which the
# module's start-up allocations change, so a variant can gain or lose some
# hundreds here with no change in what a request asks of it
HEAP_INSIDE = re.compile(r"^(_int_|unlink_chunk|malloc|free|cfree|calloc|"
                         r"realloc|posix_memalign|_mid_memalign|tcache|"
                         r"sysmalloc|malloc_consolidate|__libc_(malloc|free|"
                         r"calloc|memalign))")


class Profile:
    """One callgrind file: self cost per function, and per call edge the
    number of calls and their inclusive cost.  Functions are named
    "name" (object's basename in obj)."""

    def __init__(self, path):
        self.self_cost = collections.Counter()
        self.calls = collections.Counter()      # (caller, callee) -> calls
        self.call_cost = collections.Counter()  # (caller, callee) -> Ir
        self.obj = {}                           # function -> object
        self.total = 0
        names = {"ob": {}, "fl": {}, "fn": {}}
        ob = fn = cob = cfn = None
        in_call = False

        def name(kind, value):
            m = re.match(r"\((\d+)\)(?: (.*))?$", value)
            if not m:
                return value
            if m.group(2) is not None:
                names[kind][m.group(1)] = m.group(2)
            return names[kind].get(m.group(1), value)

        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                c = line[0]
                if c.isdigit() or c in "+-*":
                    fields = line.split()
                    cost = int(fields[1]) if len(fields) > 1 else 0
                    if in_call:
                        self.call_cost[(fn, cfn)] += cost
                        in_call = False
                    else:
                        self.self_cost[fn] += cost
                    continue
                key, _, value = line.partition("=")
                if key == "ob":
                    ob = os.path.basename(name("ob", value))
                elif key in ("fl", "fi", "fe", "cfi", "cfl"):
                    name("fl", value)
                elif key == "fn":
                    fn = name("fn", value)
                    self.obj[fn] = ob
                    cob = None
                elif key == "cob":
                    cob = os.path.basename(name("ob", value))
                elif key == "cfn":
                    cfn = name("fn", value)
                    self.obj.setdefault(cfn, cob or ob)
                elif key == "calls":
                    self.calls[(fn, cfn)] += int(value.split()[0])
                    in_call = True
                    cob = None      # cob= names the next call's only
                elif key in ("summary", "totals"):
                    self.total = int(value.split()[0]) if value else 0
                elif line.startswith("summary:") or line.startswith("totals:"):
                    self.total = int(line.split()[1])

    def inclusive(self):
        """What the calls into a function cost, as callgrind_annotate
        --inclusive=yes counts it (a function's calls to itself left out);
        a function nothing calls: its self cost and its calls'."""
        inc = collections.Counter()
        called = set()
        for (caller, callee), cost in self.call_cost.items():
            if caller != callee:
                inc[callee] += cost
                called.add(callee)
        for fn, cost in self.self_cost.items():
            if fn not in called:
                inc[fn] += cost
        for (caller, callee), cost in self.call_cost.items():
            if caller != callee and caller not in called:
                inc[caller] += cost
        return inc


class PerRequest:
    """What one request costs: the difference between two profiles of the
    same configuration, divided by the difference of their requests."""

    def __init__(self, small, large, n):
        self.total = (large.total - small.total) / n
        self.self_cost = per(small.self_cost, large.self_cost, n)
        self.inc = per(small.inclusive(), large.inclusive(), n)
        self.calls = per(small.calls, large.calls, n)
        self.obj = dict(small.obj)
        self.obj.update(large.obj)
        self.call_cost = per(small.call_cost, large.call_cost, n)
        self.callers = collections.defaultdict(collections.Counter)
        for (caller, callee), count in self.calls.items():
            self.callers[callee][caller] += count

    def in_object(self, obj):
        """Per function of obj: its own instructions and those of the
        functions of obj it calls (a callee's shared out among its callers
        in proportion to what their calls cost)."""
        out = {}
        inc = collections.Counter()
        for (caller, callee), cost in self.call_cost.items():
            if caller != callee:
                inc[callee] += cost

        def walk(fn, seen):
            if fn in out:
                return out[fn]
            total = self.self_cost.get(fn, 0)
            for (caller, callee), cost in self.call_cost.items():
                if caller == fn and callee != fn and callee not in seen \
                        and self.obj.get(callee) == obj and inc[callee] > 0:
                    total += cost / inc[callee] * walk(callee, seen | {fn})
            out[fn] = total
            return total

        for fn in list(self.obj):
            if self.obj.get(fn) == obj:
                walk(fn, frozenset())
        return out

    def label(self, fn):
        """A readable name: an unnamed function of a stripped binary by its
        busiest caller."""
        if not fn.startswith("0x"):
            return fn
        callers = self.callers.get(fn)
        if callers:
            return "%s (in %s, called by %s)" % (
                fn, self.obj.get(fn, "?"), callers.most_common(1)[0][0])
        return "%s (in %s)" % (fn, self.obj.get(fn, "?"))


def per(a, b, n):
    out = {}
    for k in set(a) | set(b):
        out[k] = (b.get(k, 0) - a.get(k, 0)) / n
    return out


def probe(path):
    """Median blocks, bytes used and large allocations of a request pool
    (bench/pool_probe.c's log lines; the first fifth skipped as warm-up)."""
    rows = []
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            m = re.search(r"pool_probe: blocks=(\d+) used=(\d+) large=(\d+) "
                          r"large_bytes=(\d+)", line)
            if m:
                rows.append(tuple(int(x) for x in m.groups()))
    rows = rows[len(rows) // 5:]
    if not rows:
        return None
    cols = list(zip(*rows))
    return {"blocks": statistics.median(cols[0]),
            "used": statistics.median(cols[1]),
            "large": statistics.median(cols[2]),
            "large_bytes": statistics.median(cols[3]),
            "used_min": min(cols[1]), "used_max": max(cols[1]),
            "blocks_max": max(cols[0]), "n": len(rows)}


def main():
    work, n_small, n_large, module_obj, top = sys.argv[1:6]
    n_small, n_large, top = int(n_small), int(n_large), int(top)
    n = n_large - n_small
    manifest = []
    with open(os.path.join(work, "manifest.tsv")) as f:
        for line in f:
            if line.strip():
                manifest.append(line.rstrip("\n").split("\t"))

    cache = {}

    def costs(key):
        if key not in cache:
            cache[key] = PerRequest(
                Profile(os.path.join(work, "cg.%s.%d" % (key, n_small))),
                Profile(os.path.join(work, "cg.%s.%d" % (key, n_large))), n)
        return cache[key]

    print("== instructions per proxied request (callgrind; %d - %d requests;"
          " each variant against the bare proxy of the same request shape,"
          " same run)" % (n_large, n_small))
    print("%-24s %-30s %9s %12s %7s %7s   %6s %6s %6s" % (
        "variant", "shape", "baseline", "with module", "added", "ratio",
        "module", "heap", "other"))
    added = {}
    for variant, shape, base, mod in manifest:
        b, m = costs(base), costs(mod)
        own = sum(v for f, v in m.self_cost.items()
                  if m.obj.get(f) == module_obj)
        heap = sum(m.self_cost.get(f, 0) - b.self_cost.get(f, 0)
                   for f in set(m.self_cost) | set(b.self_cost)
                   if HEAP_INSIDE.match(f)
                   and m.obj.get(f, b.obj.get(f, "")).startswith("libc"))
        added[variant] = m.total - b.total
        print("%-24s %-30s %9.0f %12.0f %+7.0f %7.3f   %6.0f %+6.0f %+6.0f"
              % (variant, shape, b.total, m.total, m.total - b.total,
                 m.total / b.total, own, heap,
                 m.total - b.total - own - heap))
    print("(added = module: the module's own instructions + heap: libc's "
          "allocator inside, which moves with the heap's layout + other: "
          "nginx and libraries on the module's behalf)")

    # a shape's reference: the first variant, of the same build (BEFORE's
    # rows end in " (before)")
    first = manifest[0]
    reference = {" (before)" in row[0]: row for row in manifest
                 if not row[0].startswith("shape:")
                 and row[0].replace(" (before)", "")
                 == first[0].replace(" (before)", "")}
    shapes = [row for row in manifest if row[0].startswith("shape:")]
    if shapes:
        print()
        print("== shape dependence: added against that of %s (target: within"
              " 100), and the functions whose added self cost changed most"
              % first[0])
        for variant, shape, base, mod in shapes:
            ref = reference.get(" (before)" in variant, first)
            b0, m0 = costs(ref[2]), costs(ref[3])
            b, m = costs(base), costs(mod)
            d = added[variant] - added[ref[0]]
            print("%-24s %-30s %+6.0f  %s" % (variant, shape, d,
                                              "ok" if abs(d) <= 100
                                              else "OVER"))
            dd = {}
            for f in set(m.self_cost) | set(b.self_cost) \
                    | set(m0.self_cost) | set(b0.self_cost):
                dd[f] = (m.self_cost.get(f, 0) - b.self_cost.get(f, 0)) \
                    - (m0.self_cost.get(f, 0) - b0.self_cost.get(f, 0))
            for f, v in sorted(dd.items(), key=lambda x: -abs(x[1]))[:8]:
                if abs(v) < 5:
                    break
                print("    %+6.0f  %s  [%s]" % (v, m.label(f) if f in m.obj
                                               else b.label(f),
                                               m.obj.get(f, b.obj.get(f,
                                                                      "?"))))

    print()
    print("== request pool per request: blocks, bytes used in them and "
          "large allocations at the log phase (bench/pool_probe.c, median);"
          " pool blocks and large allocations taken per request, with "
          "module - bare proxy, and the module's calls to the pool "
          "(callgrind)")
    print("%-24s %11s %13s %11s %7s %7s   %-s" % (
        "variant", "blocks", "bytes used", "large", "+blocks", "+large",
        "the module's calls to the pool"))
    for variant, shape, base, mod in manifest:
        pb, pm = (probe(os.path.join(work, "probe.%s.log" % k))
                  for k in (base, mod))
        c, b = costs(mod), costs(base)
        mcalls = collections.Counter()
        for (caller, callee), count in c.calls.items():
            if c.obj.get(caller) == module_obj and callee in POOL_CALLS:
                mcalls[callee] += count

        def taken(p, fn):   # calls to fn from the pool's own code
            return sum(v for x, v in p.callers.get(fn, {}).items()
                       if x.startswith("ngx_p") or x.startswith("0x"))
        calls = " ".join("%s %.2f" % (k, v) for k, v in
                         sorted(mcalls.items(), key=lambda x: -x[1])
                         if v >= 0.005)
        if pb and pm:
            probe_cols = "%4.0f (%4.0f) %5.0f (%+5.0f) %4.0f (%4.0f)" % (
                pm["blocks"], pb["blocks"], pm["used"],
                pm["used"] - pb["used"], pm["large"], pb["large"])
        else:
            probe_cols = "%11s %13s %11s" % ("-", "-", "-")
        print("%-24s %s %+7.2f %+7.2f   %s" % (
            variant, probe_cols,
            round(taken(c, "ngx_memalign") - taken(b, "ngx_memalign"), 2) + 0,
            round(taken(c, "ngx_alloc") - taken(b, "ngx_alloc"), 2) + 0,
            calls or "-"))
    print("(blocks, large: with the module (bare proxy); bytes used: with "
          "the module (its addition))")

    for variant, shape, base, mod in manifest[:int(os.environ.get(
            "PROFILES", "1"))]:
        c, b = costs(mod), costs(base)
        print()
        print("== where the added instructions go (%s, %s): the module's "
              "functions, per request" % (variant, shape))
        print("%9s %9s %9s %8s  %s" % ("inclusive", "in module", "self",
                                         "calls", "function"))
        fns = [f for f in c.inc if c.obj.get(f) == module_obj]
        fns.sort(key=lambda f: -c.inc[f])
        mine = c.in_object(module_obj)
        for f in fns[:top]:
            if c.inc[f] < 1:
                break
            ncalls = sum(c.callers.get(f, {}).values())
            print("%9.0f %9.0f %9.0f %8.2f  %s" % (
                c.inc[f], mine.get(f, 0), c.self_cost.get(f, 0), ncalls,
                c.label(f)))
        own = sum(v for f, v in c.self_cost.items()
                  if c.obj.get(f) == module_obj)
        print("%9s %9.0f %9s %8s  (all of the module's own instructions)"
              % ("", own, "", ""))
        print("(inclusive: with what it calls in nginx and libraries; in "
              "module: the module's own instructions under it, its callees' "
              "shared out by calls)")

        print("-- self cost that grew outside the module (with module - bare"
              " proxy, per request)")
        delta = {}
        for f in set(c.self_cost) | set(b.self_cost):
            if c.obj.get(f, b.obj.get(f)) == module_obj:
                continue
            delta[f] = c.self_cost.get(f, 0) - b.self_cost.get(f, 0)
        items = sorted(delta.items(), key=lambda x: -abs(x[1]))
        for f, d in items[:top]:
            if abs(d) < 1:
                break
            print("%+9.0f  %s  [%s]" % (d, c.label(f) if f in c.obj
                                        else b.label(f),
                                        c.obj.get(f, b.obj.get(f, "?"))))
        print("%+9.0f  (all outside the module)" % sum(delta.values()))


if __name__ == "__main__":
    main()
