package template

import (
	"slices"
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
