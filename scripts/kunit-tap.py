#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""kunit-tap.py KSRC TAPLOG: pinwb's KUnit results as TAP lines for vm.sh.

The guest copies each of pinwb's suites from /sys/kernel/debug/kunit/SUITE/
results into its TAP stream as "# kunit SUITE: <line>". Each suite's KTAP
document is parsed here by the kernel's own parser (tools/testing/kunit/
kunit.py parse --json); every test case, parametrised ones per parameter,
becomes one line "ok N kunit.SUITE.CASE[.PARAM]", or "not ok". A document
the parser finds broken (a crash, a missing plan, fewer results than
planned) gives one "not ok" line for the suite.
"""

import collections
import json
import os
import re
import subprocess
import sys
import tempfile


def leaves(group, prefix):
    """(name, status) of every test case below a kunit.py JSON group."""
    for case in group.get("test_cases", []):
        yield f"{prefix}.{case['name']}", case["status"]
    for sub in group.get("sub_groups", []):
        yield from leaves(sub, f"{prefix}.{sub['name']}")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: kunit-tap.py KSRC TAPLOG")
    kunit = os.path.join(sys.argv[1], "tools/testing/kunit/kunit.py")
    suites = collections.OrderedDict()
    line_re = re.compile(r"^# kunit ([A-Za-z0-9_]+): (.*)$")
    with open(sys.argv[2], errors="replace") as log:
        for line in log:
            m = line_re.match(line.rstrip("\n"))
            if m:
                suites.setdefault(m.group(1), []).append(m.group(2))

    n = 0
    for suite, ktap in suites.items():
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "results")
            out = os.path.join(tmp, "results.json")
            with open(src, "w") as f:
                f.write("\n".join(ktap) + "\n")
            run = subprocess.run([sys.executable, kunit, "parse", "--json=" + out, src],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, cwd=tmp)
            with open(out) as f:
                top = json.load(f)
        for name, status in leaves(top, "kunit"):
            n += 1
            if status == "PASS":
                print(f"ok {n} {name}")
            elif status == "SKIP":
                print(f"ok {n} {name} # SKIP")
            else:
                print(f"not ok {n} {name} # {status}")
        if top["misc"]["errors"] or top["misc"]["crashed"] or not top["misc"]["tests"]:
            n += 1
            print(f"not ok {n} kunit.{suite} # kunit.py parse found errors:")
            for out_line in run.stdout.splitlines():
                print(f"# {out_line}")


if __name__ == "__main__":
    main()
