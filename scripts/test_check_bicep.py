#!/usr/bin/env python3
"""Tests of scripts/check-bicep.py: the templates pass, and each planted fault is refused.

Each test copies infra/ to a temporary directory, changes one line of one template, runs the
checker on the copy and expects it to fail with a message naming the fault.
Run: .venv/bin/python scripts/test_check_bicep.py
"""
import contextlib
import importlib.util
import io
import pathlib
import shutil
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_bicep", ROOT / "scripts" / "check-bicep.py")
check_bicep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_bicep)


def run(root):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = check_bicep.main(str(root))
    return code, out.getvalue()


class Planted(unittest.TestCase):
    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp())
        shutil.copytree(ROOT / "infra", self.dir / "infra")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def plant(self, file, old, new):
        path = self.dir / "infra" / file
        source = path.read_text()
        self.assertIn(old, source, f"the template no longer has {old!r}: update the test")
        path.write_text(source.replace(old, new, 1))

    def refused(self, *expected):
        code, out = run(self.dir / "infra")
        self.assertEqual(code, 1, out)
        for text in expected:
            self.assertIn(text, out)
        return out

    def test_the_templates_pass(self):
        code, out = run(self.dir / "infra")
        self.assertEqual(code, 0, out)
        self.assertEqual(out.count(": ok"), len(list((self.dir / "infra").rglob("*.bicep"))))

    def test_an_unknown_property(self):
        self.plant("modules/storage.bicep", "supportsHttpsTrafficOnly:", "supportsHttpsOnly:")
        self.refused("storage.bicep:", "properties.supportsHttpsOnly: not a property of")

    def test_an_unknown_property_of_a_graph_resource(self):
        self.plant("modules/graph.bicep", "appRoleAssignmentRequired:", "appRoleAssignmentsRequired:")
        self.refused("Microsoft.Graph/servicePrincipals@v1.0: appRoleAssignmentsRequired: not a property")

    def test_a_wrong_api_version(self):
        self.plant("modules/functionapp.bicep", "'Microsoft.Web/serverfarms@2024-04-01'",
                   "'Microsoft.Web/serverfarms@2024-04-02'")
        self.refused("Microsoft.Web/serverfarms@2024-04-02: no published types for API version 2024-04-02")

    def test_an_api_version_without_that_type(self):
        self.plant("modules/keyvault.bicep", "'Microsoft.KeyVault/vaults/secrets@2023-07-01'",
                   "'Microsoft.KeyVault/vaults/secret@2023-07-01'")
        self.refused("Microsoft.KeyVault/vaults/secret@2023-07-01: not a resource type of")

    def test_a_missing_required_property(self):
        self.plant("modules/graph.bicep", "  displayName: 'mfa-recovery (${environmentName})'\n", "")
        self.refused("Microsoft.Graph/applications@v1.0: displayName: required by Microsoft.Graph/applications")

    def test_a_missing_required_nested_property(self):
        self.plant("modules/storage.bicep", "    roleDefinitionId:", "    // roleDefinitionId:")
        self.refused("properties.roleDefinitionId: required by")

    def test_a_wrong_property_type(self):
        self.plant("modules/functionapp.bicep", "httpsOnly: true", "httpsOnly: 'true'")
        self.refused("properties.httpsOnly: true or false is expected, not 'true'")

    def test_a_value_outside_an_enum(self):
        self.plant("modules/storage.bicep", "    allowBlobPublicAccess: false\n",
                   "    allowBlobPublicAccess: false\n    accessTier: 'Warm'\n")
        self.refused("properties.accessTier: 'Warm' is not one of 'Hot', 'Cool', 'Premium', 'Cold'")

    def test_a_read_only_property(self):
        self.plant("modules/graph.bicep", "  appRoleAssignmentRequired: true\n",
                   "  appRoleAssignmentRequired: true\n  appOwnerOrganizationId: 'x'\n")
        self.refused("appOwnerOrganizationId: read-only")

    def test_an_unknown_module_parameter(self):
        self.plant("entra.bicep", "    principalId: principalId\n", "    principalID: principalId\n")
        self.refused("module modules/graph.bicep: no parameter principalID",
                     "parameter principalId has no default and is not passed")

    def test_a_syntax_error(self):
        self.plant("modules/identity.bicep", "resource identity", "resource identity identity")
        self.refused("identity.bicep:", "FAILED")


if __name__ == "__main__":
    unittest.main(verbosity=2)
