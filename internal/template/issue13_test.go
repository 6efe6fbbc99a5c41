package template

import (
	"slices"
	"strings"
	"testing"
)

// resourcesFor lists the Resource entries (as !Sub text) of a role's Allow statements that name action.
func resourcesFor(t *testing.T, tpl *Template, role, action string) []string {
	t.Helper()
	var out []string
	for _, st := range allowStatements(t, tpl)[role] {
		if !slices.Contains(st.Action, action) {
			continue
		}
		for _, r := range st.Resource {
			if m, ok := r.(map[string]any); ok {
				if s, ok := m["Fn::Sub"].(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// Issue 13 item 12: ModifyInstanceAttribute with BlockDeviceMappings (delete-on-termination off, and back) may
// authorise the volumes too: both roles that make it may act on the account's volumes.
func TestModifyInstanceAttributeMayTouchVolumes(t *testing.T) {
	tpl := load(t)
	const volumes = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:volume/*"
	for _, role := range []string{"PreserveEvidenceRole", "RestoreEvidenceSettingsRole"} {
		if got := resourcesFor(t, tpl, role, "ec2:ModifyInstanceAttribute"); !slices.Contains(got, volumes) {
			t.Errorf("%s: ec2:ModifyInstanceAttribute on %q, want also %s", role, got, volumes)
		}
	}
}

// Issue 13 item 13: in a shared VPC the pre-isolation security groups may belong to the VPC owner; the release
// must be allowed to put them back, so the restore role does not pin this account on security-group ARNs.
func TestRestoreSecurityGroupsAcceptsTheVPCOwnersGroups(t *testing.T) {
	tpl := load(t)
	got := resourcesFor(t, tpl, "RestoreSecurityGroupsRole", "ec2:ModifyNetworkInterfaceAttribute")
	if !slices.Contains(got, "arn:${AWS::Partition}:ec2:${AWS::Region}:*:security-group/*") {
		t.Errorf("RestoreSecurityGroupsRole: ModifyNetworkInterfaceAttribute on %q: no security group of another account (shared VPC)", got)
	}
	if slices.Contains(got, "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/*") {
		t.Errorf("RestoreSecurityGroupsRole: ModifyNetworkInterfaceAttribute still pins this account on security groups: %q", got)
	}
}

// Issue 13 item 5: a change of the isolation key to any other value (another case, spaces) fires the near-miss
// rule, and only that: never the value that isolates or releases, a removed tag, another tag, another resource.
func TestNearMissRuleFiresOnEveryOtherValueOfTheKey(t *testing.T) {
	tpl := load(t)
	for _, kv := range [][3]string{{"Isolate", "true", "release"}, {"security:quarantine", "now please", "all clear"}} {
		key, isolate, release := kv[0], kv[1], kv[2]
		params := map[string]string{"IsolationTagKey": key, "IsolationTagValue": isolate, "ReleaseTagValue": release}
		nearMiss := renderRulePattern(t, tpl, "NearMissRule", params)
		isolation := renderRulePattern(t, tpl, "IsolationRule", params)
		releaseRule := renderRulePattern(t, tpl, "ReleaseRule", params)
		for name, tc := range map[string]struct {
			event    map[string]any
			nearMiss bool
		}{
			"other case":                {tagEvent("ec2", "instance", []string{key}, map[string]string{key: strings.ToUpper(isolate)}), true},
			"trailing space":            {tagEvent("ec2", "instance", []string{key}, map[string]string{key: isolate + " "}), true},
			"leading space":             {tagEvent("ec2", "instance", []string{key}, map[string]string{key: " " + isolate}), true},
			"release in title case":     {tagEvent("ec2", "instance", []string{key}, map[string]string{key: strings.ToUpper(release[:1]) + release[1:]}), true},
			"another word":              {tagEvent("ec2", "instance", []string{key}, map[string]string{key: "yes"}), true},
			"empty value":               {tagEvent("ec2", "instance", []string{key}, map[string]string{key: ""}), true},
			"the isolation value":       {tagEvent("ec2", "instance", []string{key}, map[string]string{key: isolate}), false},
			"the release value":         {tagEvent("ec2", "instance", []string{key}, map[string]string{key: release}), false},
			"tag removed":               {tagEvent("ec2", "instance", []string{key}, map[string]string{"Name": "web-1"}), false},
			"another tag changed":       {tagEvent("ec2", "instance", []string{"Name"}, map[string]string{key: "True", "Name": "x"}), false},
			"a volume with a near miss": {tagEvent("ec2", "volume", []string{key}, map[string]string{key: "True"}), false},
		} {
			if got := matches(nearMiss, tc.event); got != tc.nearMiss {
				t.Errorf("%s=%s: %s: near-miss rule fires %v, want %v", key, isolate, name, got, tc.nearMiss)
			}
			if tc.nearMiss && (matches(isolation, tc.event) || matches(releaseRule, tc.event)) {
				t.Errorf("%s: a workflow rule fires too: the near miss would be announced beside an execution", name)
			}
		}
	}
}
