"""Checks that no dependency the library builds with (every feature, normal and build
dependencies, Linux x86-64) declares a `rust-version` above ours.

What it proves: Cargo would not refuse any of them on our MSRV, as far as their authors declare
it. What it does not: a dependency that declares no `rust-version` (they are listed) or declares
one too low, and our own code's language features; clippy's `incompatible_msrv` covers our use of
the standard library, and nothing here compiles with the old toolchain itself.
"""
import json
import subprocess
import sys


def version(text):
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


metadata = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked",
     "--filter-platform", "x86_64-unknown-linux-gnu"],
    check=True, capture_output=True, text=True).stdout)
packages = {p["id"]: p for p in metadata["packages"]}
nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
root = next(p for p in metadata["packages"] if p["name"] == "tower-client-credentials")
ours = version(root["rust_version"])

seen, todo = set(), [root["id"]]
while todo:
    node = nodes[todo.pop()]
    for dep in node["deps"]:
        if dep["pkg"] not in seen and any(k["kind"] in (None, "build") for k in dep["dep_kinds"]):
            seen.add(dep["pkg"])
            todo.append(dep["pkg"])

too_new, undeclared, highest = [], [], (0,)
for pid in sorted(seen, key=lambda i: packages[i]["name"]):
    p = packages[pid]
    declared = p.get("rust_version")
    if declared is None:
        undeclared.append(f"{p['name']} {p['version']}")
        continue
    highest = max(highest, version(declared))
    if version(declared) > ours:
        too_new.append(f"{p['name']} {p['version']} needs Rust {declared}")

print(f"rust-version {root['rust_version']}: {len(seen)} dependencies, the highest declared "
      f"{'.'.join(map(str, highest))}; {len(undeclared)} declare none: {', '.join(undeclared)}")
if too_new:
    sys.exit("dependencies that need a newer Rust than our rust-version:\n  " + "\n  ".join(too_new))
