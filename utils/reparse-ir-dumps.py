#!/usr/bin/env python3
"""Re-parses and verifies every IR dump of --mlir-print-ir-after-all.

    reparse-ir-dumps.py DUMPS FUSEDOPS_OPT MLIR_OPT

Dumps that still hold fusedops ops go to fusedops-opt, the others to upstream mlir-opt (so that
what our passes print is upstream IR that upstream tools read). Prints the passes whose output
does not re-parse, with the first error, and exits 1 if there is any.
"""

import re
import subprocess
import sys


def main() -> int:
    dumps, fusedops_opt, mlir_opt = sys.argv[1:4]
    text = open(dumps).read()
    parts = re.split(r"^// -----// IR Dump After (.*) //----- //$", text, flags=re.M)
    failures = 0
    for name, body in zip(parts[1::2], parts[2::2]):
        tool = fusedops_opt if "fusedops." in body else mlir_opt
        run = subprocess.run(
            [tool, "--verify-each", "-o", "/dev/null"], input=body, capture_output=True, text=True
        )
        if run.returncode != 0:
            failures += 1
            first = (run.stderr.strip().splitlines() or ["(no message)"])[0]
            print(f"FAIL after {name} ({tool}): {first}")
    print(f"{len(parts) // 2} dumps, {failures} do not re-parse")
    return 1 if failures or len(parts) < 3 else 0


if __name__ == "__main__":
    sys.exit(main())
