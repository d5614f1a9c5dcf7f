// Package chaos isolates a lab fleet's regions in network namespaces so
// that chaos tests can cut and degrade real links with nftables: each
// region's probers run in their own namespace, joined to the host by a
// veth on a private bridge; the lab's edges and the aggregator listen on
// the bridge's two host addresses. It owns only the plumbing (namespaces,
// veths, the bridge, nft tables) and removes all of it on Close; the
// scenarios are its tests (TestChaos_*).
package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Network is a private /24 (10.231.N.0/24) on a host bridge: EdgeIP and
// AggregatorIP are host addresses on the bridge; each region has a
// namespace with one address on it.
type Network struct {
	// Suffix is the random part of every name this Network created.
	Suffix string
	// Bridge is the host bridge's interface name.
	Bridge string
	// EdgeIP is where the lab's edges listen; AggregatorIP where the
	// aggregator's listeners bind.
	EdgeIP, AggregatorIP string
	// Regions maps a region to its namespace.
	Regions map[string]*Region

	created []func() error
}

// Region is one region's network namespace.
type Region struct {
	// NS is the namespace's name (for ip netns exec); IP its address.
	NS, IP string
	// Table is the nft table holding the region's cut rules (family inet,
	// inside the namespace).
	Table string
}

// cmdTimeout bounds every ip and nft command.
const cmdTimeout = 10 * time.Second

func run(ctx context.Context, stdin string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	return string(out), err
}

// ErrNotPermitted means this host does not let us create namespaces (not
// root, or a sandbox without CAP_SYS_ADMIN / CAP_NET_ADMIN).
var ErrNotPermitted = errors.New("network namespaces are not permitted here")

// New creates the bridge, one namespace per region with its veth and
// address, and an empty nft table in each namespace. On error everything
// created so far is removed. Close removes it all.
func New(ctx context.Context, regions []string) (_ *Network, err error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	n := &Network{Suffix: hex.EncodeToString(b), Regions: map[string]*Region{}}
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()
	// Probe the permission with a throwaway namespace first.
	probe := "vc" + n.Suffix + "-probe"
	if err := run(ctx, "", "ip", "netns", "add", probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotPermitted, err)
	}
	if err := run(ctx, "", "ip", "netns", "del", probe); err != nil {
		return nil, err
	}
	subnet, err := freeSubnet(ctx)
	if err != nil {
		return nil, err
	}
	n.Bridge = "vc" + n.Suffix + "br"
	n.EdgeIP, n.AggregatorIP = subnet+".1", subnet+".2"
	if err := run(ctx, "", "ip", "link", "add", n.Bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	n.undo(func() error { return run(context.Background(), "", "ip", "link", "del", n.Bridge) })
	for _, args := range [][]string{
		{"addr", "add", n.EdgeIP + "/24", "dev", n.Bridge},
		{"addr", "add", n.AggregatorIP + "/24", "dev", n.Bridge},
		{"link", "set", n.Bridge, "up"},
	} {
		if err := run(ctx, "", "ip", args...); err != nil {
			return nil, err
		}
	}
	for i, r := range regions {
		if i >= 200 {
			return nil, errors.New("chaos: at most 200 regions")
		}
		reg := &Region{NS: fmt.Sprintf("vc%s-%d", n.Suffix, i), IP: fmt.Sprintf("%s.%d", subnet, 10+i),
			Table: "vchaos" + n.Suffix}
		if err := run(ctx, "", "ip", "netns", "add", reg.NS); err != nil {
			return nil, err
		}
		n.undo(func() error { return run(context.Background(), "", "ip", "netns", "del", reg.NS) })
		host, peer := fmt.Sprintf("vc%sh%d", n.Suffix, i), fmt.Sprintf("vc%sn%d", n.Suffix, i)
		if err := run(ctx, "", "ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", reg.NS); err != nil {
			return nil, err
		}
		n.undo(func() error {
			// Deleting the namespace deletes the pair; this is for a
			// namespace that could not be deleted.
			if err := run(context.Background(), "", "ip", "link", "show", host); err != nil {
				return nil
			}
			return run(context.Background(), "", "ip", "link", "del", host)
		})
		for _, args := range [][]string{
			{"link", "set", host, "master", n.Bridge, "up"},
			{"-n", reg.NS, "addr", "add", reg.IP + "/24", "dev", peer},
			{"-n", reg.NS, "link", "set", peer, "up"},
			{"-n", reg.NS, "link", "set", "lo", "up"},
		} {
			if err := run(ctx, "", "ip", args...); err != nil {
				return nil, err
			}
		}
		table := fmt.Sprintf(`table inet %s {
	chain out { type filter hook output priority 0; policy accept; }
	chain in { type filter hook input priority 0; policy accept; }
}
`, reg.Table)
		if err := run(ctx, table, "ip", "netns", "exec", reg.NS, "nft", "-f", "-"); err != nil {
			return nil, err
		}
		n.undo(func() error {
			if err := run(context.Background(), "", "ip", "netns", "exec", reg.NS, "nft", "list", "table", "inet", reg.Table); err != nil {
				return nil // gone with its namespace
			}
			return run(context.Background(), "", "ip", "netns", "exec", reg.NS, "nft", "delete", "table", "inet", reg.Table)
		})
		n.Regions[r] = reg
	}
	return n, nil
}

func (n *Network) undo(f func() error) { n.created = append(n.created, f) }

// freeSubnet picks a random 10.231.N.0/24 that no address or route of
// this host uses (bounded tries).
func freeSubnet(ctx context.Context) (string, error) {
	addrs, err := output(ctx, "ip", "-4", "-o", "addr", "show")
	if err != nil {
		return "", fmt.Errorf("ip addr show: %w", err)
	}
	routes, err := output(ctx, "ip", "-4", "route", "show", "table", "all")
	if err != nil {
		return "", fmt.Errorf("ip route show: %w", err)
	}
	b := make([]byte, 1)
	for try := 0; try < 64; try++ {
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		s := fmt.Sprintf("10.231.%d", b[0])
		if !strings.Contains(addrs, s+".") && !strings.Contains(routes, s+".") {
			return s, nil
		}
	}
	return "", errors.New("chaos: no free 10.231.N.0/24 after 64 tries")
}

// Close removes every nft table, namespace, veth and the bridge this
// Network created, newest first, and returns the errors joined.
func (n *Network) Close() error {
	var errs []error
	for i := len(n.created) - 1; i >= 0; i-- {
		errs = append(errs, n.created[i]())
	}
	n.created = nil
	return errors.Join(errs...)
}

// Wrap is the command prefix that runs a program in region's namespace.
func (n *Network) Wrap(region string) []string {
	return []string{"ip", "netns", "exec", n.Regions[region].NS}
}

// Cut drops every packet between region's namespace and ip, both ways.
// Given ports, it drops only TCP and UDP packets to those ports of ip and
// their replies.
func (n *Network) Cut(ctx context.Context, region, ip string, ports ...int) error {
	reg, ok := n.Regions[region]
	if !ok {
		return fmt.Errorf("chaos: no region %q", region)
	}
	var rules strings.Builder
	if len(ports) == 0 {
		fmt.Fprintf(&rules, "add rule inet %s out ip daddr %s drop\n", reg.Table, ip)
		fmt.Fprintf(&rules, "add rule inet %s in ip saddr %s drop\n", reg.Table, ip)
	}
	for _, p := range ports {
		for _, proto := range []string{"tcp", "udp"} {
			fmt.Fprintf(&rules, "add rule inet %s out ip daddr %s %s dport %d drop\n", reg.Table, ip, proto, p)
			fmt.Fprintf(&rules, "add rule inet %s in ip saddr %s %s sport %d drop\n", reg.Table, ip, proto, p)
		}
	}
	return run(ctx, rules.String(), "ip", "netns", "exec", reg.NS, "nft", "-f", "-")
}

// Stall drops only region's outgoing packets to ip:port (new requests and
// retransmissions never arrive; replies already sent still do): an
// endpoint that went silent.
func (n *Network) Stall(ctx context.Context, region, ip string, port int) error {
	reg, ok := n.Regions[region]
	if !ok {
		return fmt.Errorf("chaos: no region %q", region)
	}
	return run(ctx, fmt.Sprintf("add rule inet %s out ip daddr %s tcp dport %d drop\n", reg.Table, ip, port),
		"ip", "netns", "exec", reg.NS, "nft", "-f", "-")
}

// Heal removes every rule from region's table.
func (n *Network) Heal(ctx context.Context, region string) error {
	reg, ok := n.Regions[region]
	if !ok {
		return fmt.Errorf("chaos: no region %q", region)
	}
	return run(ctx, fmt.Sprintf("flush chain inet %s out\nflush chain inet %s in\n", reg.Table, reg.Table),
		"ip", "netns", "exec", reg.NS, "nft", "-f", "-")
}

// HealAll heals every region.
func (n *Network) HealAll(ctx context.Context) error {
	var errs []error
	for r := range n.Regions {
		errs = append(errs, n.Heal(ctx, r))
	}
	return errors.Join(errs...)
}
