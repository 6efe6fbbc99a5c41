package glob

import "testing"

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "workloads/app-role", true},
		{"app-*", "app-web", true},
		{"app-*", "web-app", false},
		{"workloads/*", "workloads/team/app", true},
		{"workloads/*", "other/app", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*-role", "web-app-role", true},
		{"*a*b*", "xaybz", true},
		{"*a*b*", "xbya", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"", "", true},
		{"", "x", false},
		{"é?", "éü", true},
	} {
		if got := Match(c.pattern, c.s); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}
