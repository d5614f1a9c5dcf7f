// Command prober is the Vantage agent: it runs journeys on a schedule,
// gossips with its fleet, and exports every Result.
//
//	prober validate -config FILE
//	prober once -config FILE -journey NAME [-json]
//	prober run -config FILE
//	prober version
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: prober <command> [flags]

commands:
  validate -config FILE                 check a config file
  once -config FILE -journey NAME       run one journey now [-json]
  run -config FILE                      run the schedule until SIGTERM (SIGHUP reloads)
  members -config FILE                  print the fleet as this agent sees it
  keygen -out FILE [-append]            write (or add) a gossip encryption key
  version                               print the version
`

// run dispatches a subcommand and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "once":
		return cmdOnce(args[1:], stdout, stderr)
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "keygen":
		return cmdKeygen(args[1:], stdout, stderr)
	case "members":
		return cmdMembers(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "prober", version.String())
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "prober: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil || *path == "" {
		fmt.Fprintln(stderr, "prober validate: -config FILE is required")
		return 2
	}
	if _, err := config.Load(*path); err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}
