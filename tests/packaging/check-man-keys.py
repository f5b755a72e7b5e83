#!/usr/bin/env python3
"""edgewarden.yaml(5) and docs/configuration.md describe the same keys.

Every key row of the "Keys" tables in docs/configuration.md must have an
entry in docs/man/edgewarden.yaml.5.scd, written as a term line
"*full.key.name* (type, default: *value*)", and every such term must be a key
of the document: a key added to one and not the other fails. Where the
document's default is a single literal (`60s`, `""`) the man page's term line
must show the same literal; a required key must say "required" there.

Usage: check-man-keys.py [SOURCE_ROOT]   (exit 0: consistent, 1: not)
"""

import os
import re
import sys

# How each "### section" of configuration.md names its keys, and how the man
# page spells them in full. The per-item sections use placeholders.
PREFIX = {
    "top level": "",
    "log": "",
    "server": "",
    "health": "",
    "policy": "",
    "kubernetes": "",
    "remediation": "",
    "fencing": "",
    "defaults": "defaults.KIND.",
    "targets": "targets[N].",
    "probes": "targets[N].probes[M].",
}


def doc_keys(path):
    """{full key: [default literal or 'required', ...]} from the Keys tables."""
    keys, errors = {}, []
    section, in_keys, header = None, False, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("## "):
                in_keys = line[3:].strip().lower() == "keys"
                continue
            if not in_keys:
                continue
            if line.startswith("### "):
                section, header = line[4:].strip().lower(), None
                continue
            if line.startswith("#### "):
                header = None
                continue
            if not line.startswith("|"):
                header = None
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = [c.lower() for c in cells]
                continue
            if set(line) <= set("|-: "):
                continue
            if section not in PREFIX:
                errors.append(f"configuration.md: section {section!r} is new: add it to PREFIX in {__file__}")
                continue
            names = re.findall(r"`([^`]+)`", cells[0])
            if not names:
                errors.append(f"configuration.md: key cell without a `key`: {line}")
                continue
            defaults = []
            for i, h in enumerate(header):
                if not h.startswith("default") or i >= len(cells):
                    continue
                cell = cells[i]
                lit = re.fullmatch(r"`([^`]*)`", cell)
                if lit:
                    defaults.append(lit.group(1))
                elif "required" in cell:
                    defaults.append("required")
            for n in names:
                keys[PREFIX[section] + n] = defaults
    return keys, errors


def man_keys(path):
    """{full key: term line's parenthesis} from the KEYS section of the .scd."""
    keys = {}
    in_keys = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("# "):
                in_keys = line[2:].strip() == "KEYS"
                continue
            if not in_keys:
                continue
            m = re.match(r"^\*([^*]+)\* \((.*)\)\s*$", line)
            if m:
                keys[m.group(1)] = m.group(2)
    return keys


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    doc = os.path.join(root, "docs", "configuration.md")
    man = os.path.join(root, "docs", "man", "edgewarden.yaml.5.scd")
    dkeys, errors = doc_keys(doc)
    mkeys = man_keys(man)
    if len(dkeys) < 40:
        errors.append(f"configuration.md: only {len(dkeys)} keys found; is the Keys section still there?")
    for k, defaults in dkeys.items():
        if k not in mkeys:
            errors.append(f"edgewarden.yaml.5.scd: key {k} (in docs/configuration.md) is missing")
            continue
        for d in defaults:
            want = "required" if d == "required" else f"*{d}*"
            if want not in mkeys[k]:
                errors.append(f"edgewarden.yaml.5.scd: {k}: configuration.md says default {d!r}, "
                              f"the man page says ({mkeys[k]})")
    for k in mkeys:
        if k not in dkeys:
            errors.append(f"edgewarden.yaml.5.scd: key {k} is not in docs/configuration.md")
    for e in errors:
        print(e)
    print(f"{len(dkeys)} keys in docs/configuration.md, {len(mkeys)} in edgewarden.yaml(5): "
          + ("consistent" if not errors else f"{len(errors)} problems"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
