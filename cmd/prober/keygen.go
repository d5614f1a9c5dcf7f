package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vantage-fleet/vantage/pkg/fleet"
)

// cmdKeygen writes a gossip key file (see pkg/fleet's key file format):
// a new file with one fresh primary key, or, with -append, an existing file
// with a fresh key added last (step 1 of a rotation).
func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "key file to write (mode 0600)")
	appendKey := fs.Bool("append", false, "add a new key at the end of an existing key file (rotation step 1)")
	if err := fs.Parse(args); err != nil || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: prober keygen -out FILE [-append]")
		return 2
	}
	if err := keygen(*out, *appendKey); err != nil {
		fmt.Fprintln(stderr, "prober keygen:", err)
		return 1
	}
	if *appendKey {
		fmt.Fprintf(stdout, "added a key to %s; once every agent has reloaded it (SIGHUP), move it to the first line\n", *out)
	} else {
		fmt.Fprintf(stdout, "wrote %s; copy it to every agent of the fleet and set gossip.key_file\n", *out)
	}
	return 0
}

func keygen(path string, appendKey bool) error {
	key, err := fleet.NewKey()
	if err != nil {
		return err
	}
	keys := [][]byte{key}
	if appendKey {
		old, err := fleet.ReadKeyFile(path)
		if err != nil {
			return err
		}
		if len(old) >= fleet.MaxKeys {
			return fmt.Errorf("%s already holds %d keys; remove a retired one first", path, len(old))
		}
		keys = append(old, key)
	} else if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists; use -append to add a key to it", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return writeFileAtomic(path, fleet.FormatKeys(keys), 0o600)
}

// writeFileAtomic writes b to a temporary file beside path, then renames it
// into place, so that a reader (an agent reloading on SIGHUP) never sees a
// half-written key file.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keygen-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
