#!/usr/bin/env python3
"""Check every .bicep file offline: its syntax, and its resources against the published types.

There is no Bicep CLI without the network, so this does what `bicep build` would refuse or warn
about, with the grammar of tree-sitter-bicep (PyPI) and the published type files vendored in
xtask/bicep-types (Azure/bicep-types-az and microsoftgraph/msgraph-bicep-types; README there):

- syntax: every syntax error and missing token, with its line;
- each `resource`: the type and API version exist in the vendored files; every property written
  is declared by the type (and not read-only); a literal value has the property's type (string,
  string literal of an enum, integer within bounds, boolean, object, array, each item of an array
  and of a `for`, both branches of a `?:`); every required property is written; an `existing`
  resource names only identifiers (`name`, or the Graph types' key properties such as `appId`);
- each `module`: every parameter passed is declared by the module, and every parameter without a
  default is passed.

Values computed by an expression (a parameter, a function call, a property of another resource)
are checked no further than their place: Bicep's own type inference is not rebuilt here.

The grammar predates the `extension` keyword (the Microsoft Graph extension), so `extension
<name>` lines are blanked first; everything else must parse.
"""
import json
import pathlib
import re
import sys

import tree_sitter as ts
import tree_sitter_bicep as tsb

parser = ts.Parser(ts.Language(tsb.language()))
EXTENSION = re.compile(rb"^extension\s+\w+\s*$", re.MULTILINE)
TYPES = pathlib.Path(__file__).resolve().parent.parent / "xtask" / "bicep-types"

# Property flags of the type files (bicep-types' ObjectTypePropertyFlags).
REQUIRED, READ_ONLY, IDENTIFIER = 1, 2, 16
# Written in a resource body but part of the language, not of the resource's type.
LANGUAGE_PROPERTIES = {"parent", "scope", "dependsOn"}


def syntax_problems(node, out):
    if node.type == "ERROR" or node.is_missing:
        what = "missing " + node.type if node.is_missing else "syntax error"
        out.append((node.start_point[0] + 1, node.start_point[1] + 1, what))
    for child in node.children:
        syntax_problems(child, out)
    return out


class TypeFile:
    """One vendored types.json: its types, and its resource types by `Type@version`."""

    def __init__(self, path):
        self.path = path
        self.types = json.loads(path.read_text())
        self.resources = {}
        for entry in self.types:
            if entry["$type"] == "ResourceType":
                self.resources.setdefault(entry["name"].lower(), []).append(entry)

    def resolve(self, ref):
        return self.types[int(ref["$ref"].split("/")[-1])]


def type_file_for(type_name, version, cache):
    """The vendored file that defines `type_name@version`, or the path looked for."""
    namespace = type_name.split("/")[0].lower()
    if namespace == "microsoft.graph":
        path = TYPES / "graph" / version / "1.0.0" / "types.json"
    else:
        path = TYPES / "az" / namespace / version / "types.json"
    if not path.is_file():
        return None, path
    if path not in cache:
        cache[path] = TypeFile(path)
    return cache[path], path


def text(node):
    return node.text.decode()


def literal_string(node):
    """The value of a string without interpolation, or None."""
    if node.type != "string" or any(c.type == "interpolation" for c in node.children):
        return None
    out = []
    for child in node.children:
        if child.type == "string_content":
            out.append(text(child))
        elif child.type == "escape_sequence":
            out.append({"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\t": "\t", "\\$": "$"}.get(text(child), text(child)))
    return "".join(out)


def properties_of(obj):
    """The (key, key node, value node) of an object literal."""
    out = []
    for prop in obj.named_children:
        if prop.type != "object_property":
            continue
        named = [c for c in prop.named_children if c.type != "comment"]
        key_node, value = named[0], named[-1]
        key = literal_string(key_node) if key_node.type == "string" else text(key_node)
        out.append((key, key_node, value))
    return out


class Checker:
    def __init__(self):
        self.cache = {}
        self.problems = []

    def fail(self, path, node, message):
        self.problems.append(f"{path}:{node.start_point[0] + 1}:{node.start_point[1] + 1}: {message}")

    # --- values against types -----------------------------------------------------------------

    def check_value(self, path, tf, node, type_entry, where):
        """Problems of a value against a type (a list; the caller decides whether to report)."""
        kind = type_entry["$type"]
        if node.type == "parenthesized_expression":
            return self.check_value(path, tf, node.named_children[0], type_entry, where)
        if node.type == "ternary_expression":
            branches = node.named_children[1:]
            return [p for b in branches for p in self.check_value(path, tf, b, type_entry, where)]
        if kind == "AnyType" or node.type not in ("string", "number", "boolean", "object", "array", "for_statement"):
            return []  # an expression: its type is Bicep's to infer
        if kind == "UnionType":
            results = [self.check_value(path, tf, node, tf.resolve(e), where) for e in type_entry["elements"]]
            if any(not r for r in results):
                return []
            allowed = [tf.resolve(e) for e in type_entry["elements"]]
            if node.type == "string" and all(a["$type"] == "StringLiteralType" for a in allowed):
                values = ", ".join(repr(a["value"]) for a in allowed)
                return [(node, f"{where}: {text(node)} is not one of {values}")]
            return min(results, key=len)
        if kind == "StringType":
            if node.type != "string":
                return [(node, f"{where}: a string is expected, not {text(node)[:40]}")]
            value = literal_string(node)
            if value is not None:
                if "minLength" in type_entry and len(value) < type_entry["minLength"]:
                    return [(node, f"{where}: shorter than {type_entry['minLength']} characters")]
                if "maxLength" in type_entry and len(value) > type_entry["maxLength"]:
                    return [(node, f"{where}: longer than {type_entry['maxLength']} characters")]
            return []
        if kind == "StringLiteralType":
            if node.type != "string":
                return [(node, f"{where}: the string {type_entry['value']!r} is expected, not {text(node)[:40]}")]
            value = literal_string(node)
            if value is not None and value != type_entry["value"]:
                return [(node, f"{where}: {value!r} where {type_entry['value']!r} is expected")]
            return []
        if kind == "IntegerType":
            if node.type != "number":
                return [(node, f"{where}: an integer is expected, not {text(node)[:40]}")]
            value = int(text(node))
            if "minValue" in type_entry and value < type_entry["minValue"]:
                return [(node, f"{where}: {value} is below the minimum {type_entry['minValue']}")]
            if "maxValue" in type_entry and value > type_entry["maxValue"]:
                return [(node, f"{where}: {value} is above the maximum {type_entry['maxValue']}")]
            return []
        if kind == "BooleanType":
            return [] if node.type == "boolean" else [(node, f"{where}: true or false is expected, not {text(node)[:40]}")]
        if kind == "ArrayType":
            item = tf.resolve(type_entry["itemType"])
            if node.type == "for_statement":
                body = [c for c in node.named_children if c.type in ("object", "array", "string", "number", "boolean")]
                return self.check_value(path, tf, body[-1], item, f"{where}[]") if body else []
            if node.type != "array":
                return [(node, f"{where}: an array is expected, not {text(node)[:40]}")]
            out = []
            for i, child in enumerate(c for c in node.named_children if c.type != "comment"):
                out += self.check_value(path, tf, child, item, f"{where}[{i}]")
            return out
        if kind in ("ObjectType", "DiscriminatedObjectType"):
            if node.type != "object":
                return [(node, f"{where}: an object is expected, not {text(node)[:40]}")]
            return self.check_object(path, tf, node, type_entry, where)
        return []

    def object_properties(self, tf, node, type_entry):
        """The declared properties of an object type (a discriminated one by its literal tag)."""
        if type_entry["$type"] == "ObjectType":
            return type_entry.get("properties", {}), type_entry.get("additionalProperties"), None
        props = dict(type_entry.get("baseProperties", {}))
        tag = type_entry["discriminator"]
        given = {k: v for k, _, v in properties_of(node)}
        value = literal_string(given[tag]) if tag in given else None
        if value is None or value not in type_entry["elements"]:
            if value is not None:
                return props, None, f"{tag}: {value!r} is not one of {', '.join(map(repr, type_entry['elements']))}"
            for element in type_entry["elements"].values():
                props.update(tf.resolve(element).get("properties", {}))
            return props, None, None
        props.update(tf.resolve(type_entry["elements"][value]).get("properties", {}))
        return props, None, None

    def check_object(self, path, tf, node, type_entry, where, existing=False, resource=False):
        declared, additional, tag_problem = self.object_properties(tf, node, type_entry)
        out = [(node, f"{where}.{tag_problem}")] if tag_problem else []
        given = properties_of(node)
        names = {k for k, _, _ in given}
        for key, key_node, value in given:
            at = f"{where}.{key}" if where else key
            if resource and key in LANGUAGE_PROPERTIES:
                continue
            if key not in declared:
                if additional is not None:
                    out += self.check_value(path, tf, value, tf.resolve(additional), at)
                    continue
                out.append((key_node, f"{at}: not a property of {type_entry.get('name', 'this object')}"))
                continue
            flags = declared[key].get("flags", 0)
            if existing and not flags & IDENTIFIER and key != "name":
                out.append((key_node, f"{at}: an existing resource names only its identifiers, not {key}"))
                continue
            if flags & READ_ONLY and not flags & (REQUIRED | IDENTIFIER):
                out.append((key_node, f"{at}: read-only, set by the service"))
                continue
            out += self.check_value(path, tf, value, tf.resolve(declared[key]["type"]), at)
        if not existing:
            for key, prop in declared.items():
                flags = prop.get("flags", 0)
                if flags & REQUIRED and not flags & READ_ONLY and key not in names:
                    at = f"{where}.{key}" if where else key
                    out.append((node, f"{at}: required by {type_entry.get('name', 'this object')}, not written"))
        return out

    # --- declarations --------------------------------------------------------------------------

    def check_resource(self, path, decl):
        type_node = next(c for c in decl.named_children if c.type == "string")
        full = literal_string(type_node)
        if full is None or "@" not in full:
            self.fail(path, type_node, f"resource type {text(type_node)}: Type@apiVersion expected")
            return
        type_name, version = full.split("@", 1)
        tf, looked = type_file_for(type_name, version, self.cache)
        if tf is None:
            self.fail(path, type_node, f"{full}: no published types for API version {version} of "
                      f"{type_name.split('/')[0]} (looked for {looked.relative_to(TYPES.parent.parent)})")
            return
        entries = tf.resources.get(full.lower())
        if not entries:
            self.fail(path, type_node, f"{full}: not a resource type of {looked.relative_to(TYPES.parent.parent)}")
            return
        existing = any(c.type == "existing" for c in decl.children)
        body = decl.named_children[-1]
        while body.type in ("for_statement", "if_statement"):
            body = [c for c in body.named_children if c.type in ("object", "for_statement", "if_statement")][-1]
        if body.type != "object":
            return
        found = []
        for entry in entries:
            found.append(self.check_object(path, tf, body, tf.resolve(entry["body"]), "", existing, resource=True))
            if not found[-1]:
                return
        for node, message in min(found, key=len):
            self.fail(path, node, f"{full}: {message}")

    def check_module(self, path, decl):
        target_node = next(c for c in decl.named_children if c.type == "string")
        target = literal_string(target_node)
        if target is None or ":" in target:
            return  # a registry module: not vendored
        module_path = (path.parent / target).resolve()
        if not module_path.is_file():
            self.fail(path, target_node, f"module {target}: no such file")
            return
        declared = module_params(module_path)
        body = decl.named_children[-1]
        while body.type in ("for_statement", "if_statement"):
            body = [c for c in body.named_children if c.type in ("object", "for_statement", "if_statement")][-1]
        if body.type != "object":
            return
        params = next((v for k, _, v in properties_of(body) if k == "params"), None)
        given = properties_of(params) if params is not None and params.type == "object" else []
        names = {k for k, _, _ in given}
        for key, key_node, _ in given:
            if key not in declared:
                self.fail(path, key_node, f"module {target}: no parameter {key}")
        for name, has_default in declared.items():
            if not has_default and name not in names and (params is None or params.type == "object"):
                self.fail(path, params or body, f"module {target}: parameter {name} has no default and is not passed")

    def check_file(self, path, root):
        for node in root.named_children:
            if node.type == "resource_declaration":
                self.check_resource(path, node)
            elif node.type == "module_declaration":
                self.check_module(path, node)


def parse(path):
    source = EXTENSION.sub(lambda m: b"//" + m.group(0)[2:], path.read_bytes())
    return parser.parse(source).root_node


def module_params(path):
    """A module's parameters: name -> whether it has a default."""
    out = {}
    for node in parse(path).named_children:
        if node.type == "parameter_declaration":
            named = [c for c in node.named_children if c.type != "comment"]
            out[text(named[0])] = any(c.type == "=" for c in node.children)
    return out


def main(root):
    files = sorted(pathlib.Path(root).rglob("*.bicep"))
    if not files:
        print(f"no .bicep files under {root}", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        tree = parse(path)
        found = [f"{path}:{line}:{column}: {what}" for line, column, what in syntax_problems(tree, [])]
        if not found:
            checker = Checker()
            checker.check_file(path, tree)
            found = checker.problems
        for problem in found:
            print(problem)
        failed += bool(found)
        print(f"{path}: {'FAILED' if found else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "infra"))
