#!/usr/bin/env python3
"""Tests of scripts/check-flows.py: the shipped flows pass; a renamed operation, a missing required
parameter, an unknown parameter and a broken runAfter are each refused."""
import copy
import importlib.util
import json
import pathlib
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_flows", ROOT / "scripts" / "check-flows.py")
check_flows = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_flows)

CONNECTOR = json.loads((ROOT / "connector/apiDefinition.swagger.json").read_text())
FLOW = json.loads((ROOT / "connector/flows/pass-verified-by-link.json").read_text())


def actions(flow):
    return flow["properties"]["definition"]["actions"]


class Flows(unittest.TestCase):
    def refused(self, flow, text):
        problems = check_flows.check_flow(CONNECTOR, flow)
        self.assertTrue(any(text in p for p in problems), problems)

    def test_the_shipped_flows_pass(self):
        for path in (ROOT / "connector/flows").glob("*.json"):
            self.assertEqual(check_flows.check_flow(CONNECTOR, json.loads(path.read_text())), [], path)

    def test_a_renamed_operation(self):
        flow = copy.deepcopy(FLOW)
        actions(flow)["Submit_a_recovery_request"]["inputs"]["host"]["operationId"] = "SubmitRequest"
        self.refused(flow, "operation 'SubmitRequest' is not in the connector")

    def test_a_missing_required_parameter(self):
        flow = copy.deepcopy(FLOW)
        del actions(flow)["Submit_a_recovery_request"]["inputs"]["parameters"]["body/user"]
        self.refused(flow, "the required field body/user is not given")

    def test_a_missing_required_path_parameter_in_a_nested_action(self):
        flow = copy.deepcopy(FLOW)
        del actions(flow)["Until_the_request_is_final"]["actions"]["Get_recovery_request_status"]["inputs"]["parameters"]["id"]
        self.refused(flow, "the required parameter id is not given")

    def test_a_missing_required_field_of_a_nested_object(self):
        flow = copy.deepcopy(FLOW)
        del actions(flow)["Submit_a_recovery_request"]["inputs"]["parameters"]["body/ticket/id"]
        self.refused(flow, "the required field body/ticket/id is not given")

    def test_an_unknown_parameter(self):
        flow = copy.deepcopy(FLOW)
        actions(flow)["Submit_a_recovery_request"]["inputs"]["parameters"]["body/verification/method2"] = "x"
        self.refused(flow, "'method2' is not a field of the operation's body")

    def test_a_broken_run_after(self):
        flow = copy.deepcopy(FLOW)
        actions(flow)["Until_the_request_is_final"]["runAfter"] = {"Submit": ["Succeeded"]}
        self.refused(flow, "runs after 'Submit'")


if __name__ == "__main__":
    unittest.main(verbosity=2)
