package chaos

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab/labtest"
)

func newNetwork(t *testing.T, ctx context.Context, regions []string) *Network {
	t.Helper()
	labtest.NeedBinary(t, "ip", "apt-get install -y iproute2")
	labtest.NeedBinary(t, "nft", "apt-get install -y nftables")
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	nw, err := New(ctx, regions)
	if errors.Is(err, ErrNotPermitted) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return nw
}

func ipOut(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := exec.Command("ip", args...).CombinedOutput()
	return string(out)
}

// TestChaos_NetworkCutsHealsAndLeavesNothingBehind: the namespaces, veths,
// bridge and nft tables exist while the Network does; Cut adds drop rules
// in the region's own table only, Heal removes them, and Close removes
// every object whose name carries the Network's suffix.
func TestChaos_NetworkCutsHealsAndLeavesNothingBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nw := newNetwork(t, ctx, []string{"eu", "us"})
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = nw.Close()
		}
	})
	if !strings.Contains(ipOut(t, "netns", "list"), nw.Regions["eu"].NS) || !strings.Contains(ipOut(t, "link", "show", nw.Bridge), "UP") {
		t.Fatalf("namespace or bridge missing: %s", ipOut(t, "netns", "list"))
	}
	if got := ipOut(t, "-n", nw.Regions["us"].NS, "-4", "addr"); !strings.Contains(got, nw.Regions["us"].IP+"/24") {
		t.Fatalf("us namespace lacks its address: %s", got)
	}
	table := func(region string) string {
		out, err := exec.Command("ip", "netns", "exec", nw.Regions[region].NS, "nft", "list", "table", "inet", nw.Regions[region].Table).CombinedOutput()
		if err != nil {
			t.Fatalf("nft list: %v %s", err, out)
		}
		return string(out)
	}
	if err := nw.Cut(ctx, "eu", nw.EdgeIP); err != nil {
		t.Fatal(err)
	}
	if err := nw.Cut(ctx, "eu", nw.AggregatorIP, 4317); err != nil {
		t.Fatal(err)
	}
	if got := table("eu"); !strings.Contains(got, "ip daddr "+nw.EdgeIP+" drop") || !strings.Contains(got, "tcp dport 4317 drop") {
		t.Fatalf("eu table lacks the cut: %s", got)
	}
	if got := table("us"); strings.Contains(got, "drop") {
		t.Fatalf("us table has rules it was never given: %s", got)
	}
	if err := nw.Cut(ctx, "nowhere", nw.EdgeIP); err == nil {
		t.Fatal("a cut of an unknown region succeeded")
	}
	if err := nw.Heal(ctx, "eu"); err != nil {
		t.Fatal(err)
	}
	if got := table("eu"); strings.Contains(got, "drop") {
		t.Fatalf("heal left rules: %s", got)
	}
	closed = true
	if err := nw.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ipOut(t, "netns", "list") + ipOut(t, "link", "show"); strings.Contains(got, "vc"+nw.Suffix) {
		t.Fatalf("left behind:\n%s", got)
	}
}
