// Package glob matches the wildcard patterns AWS uses in IAM ARNs and EC2 filter values: * is any run of
// characters (slashes included), ? exactly one character, everything else itself.
package glob

// Match reports whether s matches pattern.
func Match(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	// Iterative matching that backtracks to the last star only: linear in practice, never exponential.
	pi, ti, star, mark := 0, 0, -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
