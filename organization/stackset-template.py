#!/usr/bin/env python3
"""Expand the packaged SAM template into the plain CloudFormation template a StackSet deploys.

StackSets with service-managed permissions do not run macros, the AWS::Serverless transform included ("Even if you
specify this capability for a StackSet with service-managed permissions, if you reference a macro in your template
the StackSet operation will fail": CreateStackSet, Capabilities). So the transform runs here, with the same
translator CloudFormation hosts (aws-sam-translator, which cfn-lint already installs):

    sam build && sam package --s3-bucket ARTIFACTS --output-template-file packaged.yaml
    python3 organization/stackset-template.py packaged.yaml > stackset.json

The input must be packaged (CodeUri and DefinitionUri in S3). The region only serves the translator's own
defaults; every ARN of the output keeps ${AWS::Partition} and ${AWS::Region}, resolved in each stack instance.
.ci/lint.sh expands template.yaml this way and runs cfn-lint on the result. See docs/organizations.md.
"""
import json
import os
import sys

from cfnlint.decode import cfn_yaml
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The template names no managed policy by name (every role is explicit), so none is looked up."""

    def load(self):
        return {}


def plain(o):
    if isinstance(o, dict):
        return {str(k): plain(v) for k, v in o.items()}
    if isinstance(o, list):
        return [plain(v) for v in o]
    if isinstance(o, str):
        return str(o)
    return o


def main(path):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path) as f:
        tpl = plain(cfn_yaml.loads(f.read()))
    for uri in ("CodeUri", "DefinitionUri"):
        for rid, r in tpl.get("Resources", {}).items():
            v = r.get("Properties", {}).get(uri, tpl.get("Globals", {}).get("Function", {}).get(uri))
            if uri == "CodeUri" and r.get("Type") != "AWS::Serverless::Function":
                continue
            if uri == "DefinitionUri" and r.get("Type") != "AWS::Serverless::StateMachine":
                continue
            if not (isinstance(v, str) and v.startswith("s3://")) and not isinstance(v, dict):
                sys.exit(f"{path}: {rid} {uri} is {v!r}: run sam package first (StackSets read the code from S3)")
    out = transform(tpl, {}, NoManagedPolicies())
    if "Transform" in out or any(r["Type"].startswith("AWS::Serverless::") for r in out["Resources"].values()):
        sys.exit("the expanded template still holds a transform")
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: stackset-template.py packaged.yaml > stackset.json")
    main(sys.argv[1])
