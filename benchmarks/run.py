"""`make bench`: every benchmark, one after the other, results in one directory."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench_results")
    a = ap.parse_args(argv)
    from benchmarks import bench_expert, bench_model, bench_nodes, bench_serving

    results = {"model": bench_model.run(a.out), "expert": bench_expert.run(a.out), "nodes": bench_nodes.run(a.out),
               "serving": bench_serving.run(a.out)}
    Path(a.out, "summary.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {a.out}/summary.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
