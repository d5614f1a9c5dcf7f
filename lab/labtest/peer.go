// Package labtest holds what tests need to find their real peers (git, hg,
// alertmanager, …): a peer that is missing fails the test under CI=true and
// skips it elsewhere, naming the command that installs it.
package labtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NeedBinary returns the path of the named program, or ends the test: a
// failure under CI=true (CI must install every peer), a skip otherwise.
// install is the command that provides it, e.g. "apt-get install -y mercurial".
func NeedBinary(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found; CI must install it: %s", name, install)
	}
	t.Skipf("%s not found; install it with: %s", name, install)
	return ""
}

// BuildHere builds the command in the test's own package directory into a
// temporary directory and returns the binary's path, for tests that drive
// the real binary (signals, exit codes). It skips under -short.
func BuildHere(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("builds the %s binary", name)
	}
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}
