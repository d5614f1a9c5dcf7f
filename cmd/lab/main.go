// Command lab is a Vantage binary; see the README.
package main

import (
	"fmt"
	"os"

	"github.com/vantage-fleet/vantage/pkg/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("lab", version.String())
		return
	}
	fmt.Fprintln(os.Stderr, "usage: lab version")
	os.Exit(2)
}
