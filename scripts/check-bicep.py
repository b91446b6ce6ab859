#!/usr/bin/env python3
"""Syntax-check every .bicep file offline with tree-sitter-bicep (PyPI).

There is no Bicep CLI without the network, so this is the strongest offline check: it parses each
file and reports every syntax error and missing token with its line. The grammar predates the
`extension` keyword (the Microsoft Graph extension), so `extension <name>` lines are blanked
first; everything else must parse.
"""
import pathlib
import re
import sys

import tree_sitter as ts
import tree_sitter_bicep as tsb

parser = ts.Parser(ts.Language(tsb.language()))
EXTENSION = re.compile(rb"^extension\s+\w+\s*$", re.MULTILINE)


def problems(node, out):
    if node.type == "ERROR" or node.is_missing:
        what = "missing " + node.type if node.is_missing else "syntax error"
        out.append((node.start_point[0] + 1, node.start_point[1] + 1, what))
    for child in node.children:
        problems(child, out)
    return out


def main(root):
    files = sorted(pathlib.Path(root).rglob("*.bicep"))
    if not files:
        print(f"no .bicep files under {root}", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        source = EXTENSION.sub(lambda m: b"//" + m.group(0)[2:], path.read_bytes())
        found = problems(parser.parse(source).root_node, [])
        for line, column, what in found:
            print(f"{path}:{line}:{column}: {what}")
        failed += bool(found)
        print(f"{path}: {'FAILED' if found else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "infra"))
