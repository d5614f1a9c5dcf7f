package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// runDir prepares a fleet run (demo or campaign): the working directory
// (created if missing; a new temporary one named after prefix when dir
// is empty), the absolute
// directory of the prober and aggregator binaries, and the lab's log file
// in the working directory. The caller closes the log file.
func runDir(dir, bin, prefix string) (workDir, binDir string, logFile *os.File, err error) {
	if dir == "" {
		if dir, err = os.MkdirTemp("", prefix); err != nil {
			return "", "", nil, err
		}
	} else if err = os.MkdirAll(dir, 0o700); err != nil {
		return "", "", nil, err
	}
	if binDir, err = filepath.Abs(bin); err != nil {
		return "", "", nil, err
	}
	for _, b := range []string{"prober", "aggregator"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return "", "", nil, usageError(fmt.Sprintf("%s not found in %s: run `make build` first", b, binDir))
		}
	}
	if logFile, err = os.Create(filepath.Join(dir, "lab.log")); err != nil {
		return "", "", nil, err
	}
	return dir, binDir, logFile, nil
}
