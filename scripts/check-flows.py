#!/usr/bin/env python3
"""Check the Power Automate flows in connector/flows against the custom connector's definition.

Each file is a flow as Power Automate exports it (`properties.definition`, the Logic Apps workflow
definition language). Checked offline:

- the definition's shape: `$schema`, `contentVersion`, at least one trigger, `actions`; every
  action has a `type`, and every `runAfter` names an action of the same scope (actions nest in
  `Until`, `If`, `Foreach`, `Scope`);
- every action that calls the connector (`OpenApiConnection` whose `apiId` ends in
  `shared_mfa-recovery`): its `operationId` is one of the connector's; every parameter is one the
  operation takes (`body/a/b` resolved through the body's schema and its `$ref`s; path, query and
  header parameters by name); every required parameter is given (required path, query and header
  parameters, the body's required fields, and the required fields of every body object the flow
  fills in).
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
API_SUFFIX = "shared_mfa-recovery"


def resolve(doc, schema):
    while "$ref" in schema:
        schema = doc["definitions"][schema["$ref"].split("/")[-1]]
    return schema


def operations(doc):
    out = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if isinstance(op, dict) and "operationId" in op:
                out[op["operationId"]] = (method, path, op)
    return out


def check_parameters(doc, name, op, given, problems):
    params = op.get("parameters", [])
    by_name = {p["name"]: p for p in params if p["in"] != "body"}
    body = next((p for p in params if p["in"] == "body"), None)
    body_schema = resolve(doc, body["schema"]) if body else None
    for key in given:
        if key.startswith("body/"):
            if body_schema is None:
                problems.append(f"{name}: {key}: the operation takes no body")
                continue
            schema = body_schema
            for part in key.split("/")[1:]:
                props = schema.get("properties", {})
                if part not in props:
                    problems.append(f"{name}: {key}: '{part}' is not a field of the operation's body")
                    break
                schema = resolve(doc, props[part])
        elif key not in by_name:
            problems.append(f"{name}: {key}: not a parameter of {op['operationId']}")
    for p in by_name.values():
        if p.get("required") and p["name"] not in given:
            problems.append(f"{name}: the required parameter {p['name']} is not given")
    if body and body.get("required"):
        required_objects = [((), body_schema)]
        while required_objects:
            prefix, schema = required_objects.pop()
            for field in schema.get("required", []):
                path = "/".join(("body",) + prefix + (field,))
                if not any(k == path or k.startswith(path + "/") for k in given):
                    problems.append(f"{name}: the required field {path} is not given")
            for field, sub in schema.get("properties", {}).items():
                path = "/".join(("body",) + prefix + (field,))
                sub = resolve(doc, sub)
                if sub.get("type") == "object" and any(k.startswith(path + "/") for k in given):
                    required_objects.append((prefix + (field,), sub))


def check_actions(doc, ops, actions, problems, scope="actions"):
    for name, action in actions.items():
        if "type" not in action:
            problems.append(f"{name}: no type")
            continue
        for after in action.get("runAfter", {}):
            if after not in actions:
                problems.append(f"{name}: runs after '{after}', which is no action of {scope}")
        if action["type"] == "OpenApiConnection":
            host = action.get("inputs", {}).get("host", {})
            if not str(host.get("apiId", "")).endswith(API_SUFFIX):
                continue
            op_id = host.get("operationId")
            if op_id not in ops:
                problems.append(f"{name}: operation '{op_id}' is not in the connector")
                continue
            given = action["inputs"].get("parameters", {})
            check_parameters(doc, name, ops[op_id][2], given, problems)
        for nested in ("actions", "else"):
            inner = action.get(nested)
            if isinstance(inner, dict):
                inner = inner.get("actions", inner) if nested == "else" else inner
                check_actions(doc, ops, inner, problems, f"{name}/{nested}")
        if action["type"] == "Until" and "expression" not in action:
            problems.append(f"{name}: an Until without its expression")


def check_flow(doc, flow):
    problems = []
    definition = flow.get("properties", {}).get("definition")
    if not isinstance(definition, dict):
        return ["no properties.definition (export the flow as Power Automate does)"]
    if "workflowdefinition.json" not in str(definition.get("$schema", "")):
        problems.append("$schema is not the workflow definition language's")
    if not definition.get("contentVersion"):
        problems.append("no contentVersion")
    if not definition.get("triggers"):
        problems.append("no trigger")
    actions = definition.get("actions")
    if not isinstance(actions, dict) or not actions:
        return problems + ["no actions"]
    check_actions(doc, operations(doc), actions, problems)
    return problems


def main(connector, flows):
    doc = json.loads(pathlib.Path(connector).read_text())
    files = sorted(pathlib.Path(flows).glob("*.json"))
    if not files:
        print(f"no flows in {flows}", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        problems = check_flow(doc, json.loads(path.read_text()))
        for p in problems:
            print(f"{path}: {p}")
        failed += bool(problems)
        print(f"{path}: {'FAILED' if problems else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    args = sys.argv[1:] or [str(ROOT / "connector/apiDefinition.swagger.json"), str(ROOT / "connector/flows")]
    sys.exit(main(*args))
