package template

// Issue 13, item 15: organization/security-account.yaml, the security account's central topic and bucket.
// Every Allow to a principal outside the account is limited to the organization (aws:PrincipalOrgID), the
// bucket disables ACLs (bucket owner enforced), keeps every version and outlives the stack with its policy.

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func loadOrganization(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load(filepath.Join(root, "organization", "security-account.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// resourcePolicyStatements lists the statements of every resource policy of the template (bucket, topic and key
// policies), by resource id.
func resourcePolicyStatements(t *testing.T, tpl *Template) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for id, r := range tpl.Resources {
		var doc map[string]any
		switch r.Type {
		case "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy":
			doc, _ = r.Properties["PolicyDocument"].(map[string]any)
		case "AWS::KMS::Key":
			doc, _ = r.Properties["KeyPolicy"].(map[string]any)
		default:
			continue
		}
		list, _ := doc["Statement"].([]any)
		for _, s := range list {
			st, _ := s.(map[string]any)
			out[id] = append(out[id], st)
		}
	}
	return out
}

func TestSecurityAccountAcceptsTheOrganizationOnly(t *testing.T) {
	tpl := loadOrganization(t)
	orgOnly := `"aws:PrincipalOrgID":{"Ref":"OrganizationId"}`
	allows := map[string]int{}
	for id, stmts := range resourcePolicyStatements(t, tpl) {
		for _, st := range stmts {
			if st["Effect"] != "Allow" {
				continue
			}
			principal, _ := json.Marshal(st["Principal"])
			cond, _ := json.Marshal(st["Condition"])
			if string(principal) == `{"AWS":{"Fn::Sub":"arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}` {
				continue // the security account itself administers its key
			}
			allows[id]++
			if !strings.Contains(string(cond), `"StringEquals":{`) || !strings.Contains(string(cond), orgOnly) {
				t.Errorf("%s %v: Allow to %s without StringEquals %s", id, st["Sid"], principal, orgOnly)
			}
		}
	}
	for _, id := range []string{"CentralTopicPolicy", "CentralBucketPolicy", "CentralTopicKey"} {
		if allows[id] == 0 {
			t.Errorf("%s lets no principal of the organization in: the member stacks cannot write", id)
		}
	}
	// Each account writes under its own prefix only.
	for _, st := range resourcePolicyStatements(t, tpl)["CentralBucketPolicy"] {
		if st["Effect"] != "Allow" {
			continue
		}
		if got := subOf(st["Resource"]); got != "${CentralBucket.Arn}/incidents/${!aws:PrincipalAccount}/*" {
			t.Errorf("the organization may write %q, want incidents/<its own account>/*", got)
		}
		if !slices.Equal(asStrings(st["Action"]), []string{"s3:PutObject"}) {
			t.Errorf("the organization may %v, want s3:PutObject only", st["Action"])
		}
	}
	if p := tpl.Parameters["OrganizationId"]["AllowedPattern"]; p == nil {
		t.Error("OrganizationId has no AllowedPattern")
	}
}

func TestSecurityAccountBucketIsEvidence(t *testing.T) {
	tpl := loadOrganization(t)
	b := tpl.Resources["CentralBucket"]
	own, _ := json.Marshal(b.Properties["OwnershipControls"])
	if string(own) != `{"Rules":[{"ObjectOwnership":"BucketOwnerEnforced"}]}` {
		t.Errorf("CentralBucket OwnershipControls = %s, want BucketOwnerEnforced", own)
	}
	ver, _ := json.Marshal(b.Properties["VersioningConfiguration"])
	if string(ver) != `{"Status":"Enabled"}` {
		t.Errorf("CentralBucket versioning = %s", ver)
	}
	for _, id := range []string{"CentralBucket", "CentralBucketPolicy"} {
		if r := tpl.Resources[id]; r.DeletionPolicy != "Retain" || r.UpdateReplacePolicy != "Retain" {
			t.Errorf("%s is not retained", id)
		}
	}
	denied := map[string]bool{}
	for _, st := range resourcePolicyStatements(t, tpl)["CentralBucketPolicy"] {
		if st["Effect"] == "Deny" {
			denied[st["Sid"].(string)] = true
		}
	}
	if !denied["TLSOnly"] || !denied["KeepEveryVersion"] {
		t.Errorf("CentralBucketPolicy denies %v, want TLSOnly and KeepEveryVersion", denied)
	}
	// The outputs are the member stack's parameters.
	member := load(t)
	for _, out := range []string{"CentralTopicArn", "CentralBucketName"} {
		if _, ok := tpl.Outputs[out]; !ok {
			t.Errorf("security-account.yaml has no output %s", out)
		}
		if _, ok := member.Parameters[out]; !ok {
			t.Errorf("template.yaml has no parameter %s", out)
		}
	}
}

func asStrings(v any) []string {
	var out []string
	for _, e := range asList(v) {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}
