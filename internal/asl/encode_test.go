package asl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
)

// reference is encoding/json's rendering, which encodeJSON must match byte for byte.
func reference(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return string(bytes.TrimRight(b.Bytes(), "\n"))
}

// encodeJSON renders the history exactly as encoding/json did: every byte in strings and keys (control
// characters, quotes, HTML characters, invalid UTF-8, U+2028/2029), numbers as written, key order, nesting, and
// the Go values integrations build; plus random trees (seed printed).
func TestEncodeJSONAsEncodingJSON(t *testing.T) {
	var every []byte
	for b := range 256 {
		every = append(every, byte(b))
	}
	cases := []any{
		nil, true, false, "", "plain", string(every), "<a href=\"x\">&amp;</a>", "\u2028\u2029\u00e9\U0001F600",
		"bad \xff\xfe utf8 \xe2\x82", "\x7f\x00\x1f", json.Number("0"), json.Number("-12.5e+300"), json.Number(""),
		json.Number("123456789012345678901234567890"),
		map[string]any{}, []any{}, map[string]any{"b": 1.5, "a": []any{nil, "x", map[string]any{"\n": true}}, "A": json.Number("7"), "\xff": "k"},
		map[string]any{"typed": []string{"x<y"}, "n": 3, "f": 0.1, "raw": json.RawMessage(`{"z":1, "a":2}`)},
	}
	for _, c := range cases {
		if got, want := string(encodeJSON(c)), reference(t, c); got != want {
			t.Errorf("%#v:\n got %s\nwant %s", c, got, want)
		}
	}
	seed := uint64(20261205)
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, seed))
	str := func() string {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		if r.IntN(3) == 0 {
			return string(b)
		}
		return fmt.Sprintf("%s\u2029<%c>", b, rune(r.IntN(0x10ffff)))
	}
	var tree func(depth int) any
	tree = func(depth int) any {
		switch k := r.IntN(7); {
		case depth > 4 || k == 0:
			return str()
		case k == 1:
			return json.Number(fmt.Sprint(r.Int64N(1<<62) - 1<<61))
		case k == 2:
			return r.IntN(2) == 0
		case k == 3:
			return nil
		case k == 4:
			a := make([]any, r.IntN(5))
			for i := range a {
				a[i] = tree(depth + 1)
			}
			return a
		default:
			m := map[string]any{}
			for range r.IntN(6) {
				m[str()] = tree(depth + 1)
			}
			return m
		}
	}
	for i := range 2000 {
		v := tree(0)
		if got, want := string(encodeJSON(v)), reference(t, v); got != want {
			t.Fatalf("tree %d (seed %d):\n got %s\nwant %s", i, seed, got, want)
		}
	}
}
