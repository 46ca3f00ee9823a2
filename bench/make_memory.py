"""Peak memory of `captchagen make` at two dataset sizes: it must not grow with n.

Each size runs in a fresh process; we report that process's peak RSS and the largest worker's.

    python bench/make_memory.py --small 2000 --large 20000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys, tempfile
from pathlib import Path
from captchagen.config import GenerationConfig
from captchagen.make import make_dataset
with tempfile.TemporaryDirectory() as d:
    make_dataset(GenerationConfig(n=int(sys.argv[1])), Path(d) / "data", workers=int(sys.argv[2]))
print(json.dumps({
    "main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def peak(n: int, workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory():
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(workers)], check=True, capture_output=True)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    small, large = peak(args.small, args.workers), peak(args.large, args.workers)
    print(f"{'':<22}{'n=' + str(args.small):>12}{'n=' + str(args.large):>12}{'ratio':>8}")
    for key, name in (("main_mib", "main process peak MiB"), ("worker_mib", "largest worker MiB")):
        print(f"{name:<22}{small[key]:12.1f}{large[key]:12.1f}{large[key] / small[key]:8.2f}")


if __name__ == "__main__":
    main()
