package notify

import (
	"fmt"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// stateVerify is the isolation's final read-back.
const stateVerify = "Verify containment"

// verifyLines is what "Verify containment" read back at the end: the notification reports the instance as it
// is, not as the steps meant to leave it (issue 12, case 2). v renders one value; at most max items per list.
func verifyLines(r *workflow.VerifyOutput, max int, v func(string) string) []string {
	var out []string
	p := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	list := func(ids []string) string {
		if len(ids) == 0 {
			return "(none)"
		}
		var s []string
		for _, id := range ids {
			s = append(s, v(id))
		}
		return strings.Join(s, ", ")
	}
	items := func(n int, each func(i int)) {
		for i := range min(n, max) {
			each(i)
		}
		if n > max {
			p("    … and %d more", n-max)
		}
	}
	verdict := "contained"
	if !r.Contained {
		verdict = "NOT contained"
	}
	rounds := ""
	if r.Rounds > 1 {
		rounds = fmt.Sprintf(", after containing it again (%d read-backs)", r.Rounds)
	}
	p("  Read back at the end (Verify containment): %s%s", verdict, rounds)
	items(len(r.NetworkInterfaces), func(i int) {
		n := r.NetworkInterfaces[i]
		p("    %s in %s: %s", v(n.ID), v(n.VpcID), list(n.Groups))
	})
	items(len(r.Groups), func(i int) {
		g := r.Groups[i]
		rules := "no rule in or out"
		if g.Ingress+g.Egress > 0 {
			rules = fmt.Sprintf("%d inbound, %d outbound rules", g.Ingress, g.Egress)
		}
		p("    isolation group %s of %s: %s", v(g.GroupID), v(g.VpcID), rules)
	})
	if len(r.Associations) == 0 {
		p("    instance profile: none")
	}
	items(len(r.Associations), func(i int) {
		a := r.Associations[i]
		p("    instance profile: %s (%s)", v(a.ProfileARN), v(a.State))
	})
	items(len(r.Open), func(i int) { p("    found open, contained again: %s", v(r.Open[i])) })
	items(len(r.Changes), func(i int) {
		c := r.Changes[i]
		line := fmt.Sprintf("    changed: %s %s", v(c.Action), v(c.Resource))
		if c.Detail != "" {
			line += ": " + v(c.Detail)
		}
		p("%s", line)
	})
	items(len(r.Added), func(i int) {
		n := r.Added[i]
		p("    attached since Validate and record, kept for the release: %s in %s with %s", v(n.ID), v(n.VpcID), list(n.Groups))
	})
	if r.Superseded != "" {
		p("    note: %s", v(r.Superseded))
	}
	return out
}

// notContained: the read-back failed the execution because the instance stayed open.
func notContained(in workflow.NotifyInput) bool {
	for _, f := range in.Failures {
		if f.State == stateVerify && f.Error == "NotContained" {
			return true
		}
	}
	return false
}
