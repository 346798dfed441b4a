#!/usr/bin/env python3
"""Writes the vendored JSONSchemaBench subset: <class>.jsonl, one schema per line as
{"id": file name, "schema": ..., "instance": the first valid test instance}.

  python3 vendor.py DATA_DIR    (DATA_DIR: jsonschemabench's maskbench/data, see README.md)

Per class, PER_CLASS schemas evenly spaced in name order among those that have a valid
instance and are at most MAX_BYTES of compact JSON."""
import json
import pathlib
import sys

CLASSES = ["Github_trivial", "Github_easy", "Github_medium", "Github_hard", "Github_ultra",
           "Glaiveai2K", "Kubernetes", "Snowplow", "JsonSchemaStore", "WashingtonPost"]
PER_CLASS = 20
MAX_BYTES = 32768


def compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def main(data_dir):
    out_dir = pathlib.Path(__file__).parent
    for name in CLASSES:
        candidates = []
        for path in sorted(pathlib.Path(data_dir).glob(name + "---*.json")):
            entry = json.loads(path.read_text())
            valid = [t["data"] for t in entry.get("tests", []) if t.get("valid")]
            if valid and len(compact(entry["schema"])) <= MAX_BYTES:
                candidates.append({"id": path.name, "schema": entry["schema"], "instance": valid[0]})
        step = max(1, len(candidates) // PER_CLASS)
        chosen = candidates[::step][:PER_CLASS]
        with open(out_dir / (name + ".jsonl"), "w") as out:
            for entry in chosen:
                out.write(compact(entry) + "\n")
        print(f"{name}: {len(chosen)} of {len(candidates)} candidates")


if __name__ == "__main__":
    main(sys.argv[1])
