// Command checkbuild checks the build artifacts of every function of the SAM template: DIR/<LogicalId>/bootstrap
// must exist and be what the provided.al2023 arm64 runtime runs, a static linux/arm64 ELF executable built by Go
// from functions/<dir> with CGO disabled, -tags lambda.norpc and -trimpath (`make check-build`).
package main

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/template"
)

const module = "github.com/ec2-isolation/ec2-isolation"

func main() {
	tpl := flag.String("template", "template.yaml", "SAM template")
	dir := flag.String("dir", ".aws-sam/build", "build directory (one sub-directory per function logical id)")
	flag.Parse()

	t, err := template.Load(*tpl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkbuild:", err)
		os.Exit(2)
	}
	fns := t.Functions()
	if len(fns) == 0 {
		fmt.Fprintln(os.Stderr, "checkbuild: the template has no functions")
		os.Exit(2)
	}
	failed := 0
	for _, f := range fns {
		path := filepath.Join(*dir, f.LogicalID, "bootstrap")
		if err := check(path, f.Dir); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL %s: %v\n", path, err)
			failed++
			continue
		}
		fmt.Printf("ok   %s: static linux/arm64 executable of ./functions/%s\n", path, f.Dir)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "checkbuild: %d of %d functions not built correctly\n", failed, len(fns))
		os.Exit(1)
	}
}

// check verifies one bootstrap file.
func check(path, dir string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o111 == 0 {
		return errors.New("not executable")
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("not an ELF file: %w", err)
	}
	defer f.Close()
	switch {
	case f.Class != elf.ELFCLASS64:
		return fmt.Errorf("ELF class %v, want ELFCLASS64", f.Class)
	case f.Machine != elf.EM_AARCH64:
		return fmt.Errorf("machine %v, want EM_AARCH64 (arm64)", f.Machine)
	case f.Type != elf.ET_EXEC:
		return fmt.Errorf("ELF type %v, want ET_EXEC (a static executable)", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("dynamically linked (%v program header)", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v", libs)
	}

	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("no Go build information: %w", err)
	}
	if want := module + "/functions/" + dir; bi.Path != want {
		return fmt.Errorf("built from %s, want %s", bi.Path, want)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for key, want := range map[string]string{"GOOS": "linux", "GOARCH": "arm64", "CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[key] != want {
			return fmt.Errorf("build setting %s=%q, want %q", key, settings[key], want)
		}
	}
	if !strings.Contains(","+settings["-tags"]+",", ",lambda.norpc,") {
		return fmt.Errorf("built with -tags %q, want lambda.norpc", settings["-tags"])
	}
	return nil
}
