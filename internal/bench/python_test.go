package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// python3 on PATH can be a version manager's shell shim (pyenv's added ~0.3 s to every measured start): the cold
// start comparison runs the interpreter the shim names, not the shim.
func TestRealPythonSkipsTheShim(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "versions", "python3.11")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	shims := filepath.Join(dir, "shims")
	if err := os.MkdirAll(shims, 0o755); err != nil {
		t.Fatal(err)
	}
	// The shim answers the question the way a python3 would: sys.executable is the real interpreter.
	shim := filepath.Join(shims, "python3")
	if err := os.WriteFile(shim, []byte("#!/bin/sh\necho '"+real+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", shims)
	got, err := realPython(context.Background())
	if err != nil {
		t.Fatalf("realPython: %v", err)
	}
	if got != real {
		t.Errorf("realPython = %q, want the interpreter the shim names, %q", got, real)
	}

	// A shim naming something that is not an executable file is an error, not a measurement of nothing.
	if err := os.WriteFile(shim, []byte("#!/bin/sh\necho '"+filepath.Join(dir, "missing")+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := realPython(context.Background()); err == nil {
		t.Errorf("realPython = %q, want an error for a missing interpreter", got)
	}
}
