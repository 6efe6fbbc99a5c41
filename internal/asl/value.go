package asl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
)

// Values flowing through an execution are the generic JSON tree encoding/json produces with UseNumber:
// map[string]any, []any, string, json.Number, bool, nil. Numbers stay json.Number so large integers (ids, sizes)
// survive unchanged. Values are never modified in place once created; ResultPath works on a deep copy.

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

// encodeJSON renders v compactly without HTML escaping (so "<" stays "<", as Step Functions shows it).
func encodeJSON(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only values decoded from JSON or built by the engine get here; they always encode.
		panic("asl: encode value: " + err.Error())
	}
	return json.RawMessage(bytes.TrimRight(b.Bytes(), "\n"))
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, e := range t {
			a[i] = deepCopy(e)
		}
		return a
	default:
		return v
	}
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

// asInt reads a JSON number that must be a whole number within [min, max].
func asInt(v any, min, max int64) (int64, bool) {
	f, ok := toFloat(v)
	if !ok || f != math.Trunc(f) || f < float64(min) || f > float64(max) {
		return 0, false
	}
	return int64(f), true
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number, float64, int:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}
