package wire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/probes/hg/revlog"
)

func smallLimits() Limits {
	return Limits{MaxHeader: 1 << 10, MaxChunk: 1 << 16, MaxText: 1 << 16, MaxTotal: 1 << 20}
}

func TestBundle2_WriteThenRead_RoundTrips(t *testing.T) {
	var b bytes.Buffer
	w := NewBundle2Writer(&b)
	big := bytes.Repeat([]byte("x"), 3*preferredChunk+5)
	if _, err := w.AddPart("changegroup", true, []Param{{"version", "02"}}, []Param{{"nbchanges", "1"}}, big); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddPart("output", false, nil, nil, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := NewBundle2Reader(&b, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Next()
	if err != nil || p.Type != "changegroup" || !p.Mandatory || p.ID != 0 || p.Params["version"] != "02" || p.Params["nbchanges"] != "1" {
		t.Fatalf("part 0 = %+v, %v", p, err)
	}
	got, err := p.ReadAll(1 << 20)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("payload: %d bytes, %v", len(got), err)
	}
	// The second part is skipped unread by Next.
	if p, err = r.Next(); err != nil || p.Type != "output" || p.Mandatory || p.ID != 1 {
		t.Fatalf("part 1 = %+v, %v", p, err)
	}
	if _, err = r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestBundle2_HostileLengths_AreMalformedNotAllocated(t *testing.T) {
	for name, in := range map[string]string{
		"bad magic":             "HG10UN",
		"huge stream params":    "HG20\x7f\xff\xff\xff",
		"negative part header":  "HG20\x00\x00\x00\x00\xff\xff\xff\xfe",
		"huge payload chunk":    "HG20\x00\x00\x00\x00\x00\x00\x00\x0a\x01A\x00\x00\x00\x00\x00\x00\x7f\xff\xff\xff",
		"header field overflow": "HG20\x00\x00\x00\x00\x00\x00\x00\x03\x09AB",
		"compressed bundle":     "HG20\x00\x00\x00\x0eCompression=BZ",
	} {
		err := readAll(strings.NewReader(in), smallLimits())
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// readAll reads a bundle2 to its end, payloads included.
func readAll(r io.Reader, lim Limits) error {
	b, err := NewBundle2Reader(r, lim)
	if err != nil {
		return err
	}
	for {
		p, err := b.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if p.Type == "changegroup" {
			cg, err := NewCGReader(p, p.Params["version"], lim)
			if err != nil {
				return err
			}
			if err := readCG(cg); err != nil {
				return err
			}
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			return err
		}
	}
}

func readCG(cg *CGReader) error {
	for g := 0; g < 2; g++ {
		for {
			d, err := cg.Delta()
			if err != nil {
				return err
			}
			if d == nil {
				break
			}
		}
	}
	for {
		_, ok, err := cg.FileName()
		if err != nil || !ok {
			return err
		}
		for {
			d, err := cg.Delta()
			if err != nil {
				return err
			}
			if d == nil {
				break
			}
		}
	}
}

func TestChangegroup_HostileChunks_AreMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"length 3 (below its own size)": "\x00\x00\x00\x03",
		"huge length":                   "\x7f\xff\xff\xff",
		"negative length":               "\xff\xff\xff\x00",
		"shorter than the delta header": "\x00\x00\x00\x0aabcdef",
	} {
		cg, _ := NewCGReader(strings.NewReader(in), "02", smallLimits())
		if err := readCG(cg); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := NewCGReader(strings.NewReader(""), "04", smallLimits()); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown version accepted: %v", err)
	}
	cg, _ := NewCGReader(strings.NewReader("\x00\x00\x00\x08a\x00bc"), "02", smallLimits())
	if _, _, err := cg.FileName(); !errors.Is(err, ErrMalformed) {
		t.Errorf("file name with NUL: err = %v", err)
	}
}

func TestEncodeCaps_QuotesLikeMercurial(t *testing.T) {
	got := EncodeCaps(map[string][]string{"HG20": nil, "changegroup": {"01", "02"}, "x y": {"a=b"}})
	if got != "HG20\nchangegroup=01,02\nx%20y=a%3Db" {
		t.Fatalf("caps = %q", got)
	}
}

func TestClient_AgainstHgServe_CommandsAndLongArguments(t *testing.T) {
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	dir := t.TempDir()
	repo := filepath.Join(dir, "r")
	cmd := exec.Command("hg", "init", repo)
	cmd.Env = append(os.Environ(), "HGRCPATH=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	cmd = exec.Command("hg", "-R", repo, "debugbuilddag", "+3")
	cmd.Env = append(os.Environ(), "HGRCPATH=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s, err := lab.StartHgServe(context.Background(), lab.HgServeOptions{Repo: repo})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := &Client{URL: s.URL, HTTP: &http.Client{}, Limits: DefaultLimits()}
	if _, err := c.Capabilities(ctx); err != nil {
		t.Fatal(err)
	}
	if !contains(c.Bundle2Caps()["changegroup"], "02") {
		t.Fatalf("bundle2 caps = %v", c.Bundle2Caps())
	}
	heads, err := c.Heads(ctx)
	if err != nil || len(heads) != 1 {
		t.Fatalf("heads = %v, %v", heads, err)
	}
	n, found, err := c.Lookup(ctx, "tip")
	if err != nil || !found || n != heads[0] {
		t.Fatalf("lookup tip = %s %v %v", n, found, err)
	}
	// A key longer than one X-HgArg header must be split and rejoined.
	long := strings.Repeat("k", 3000)
	if _, found, err := c.Lookup(ctx, long); err != nil || found {
		t.Fatalf("lookup of a long unknown key: found=%v err=%v", found, err)
	}
	if _, found, _ := c.Lookup(ctx, revlog.Null.Hex()); !found {
		t.Fatal("null revision not found")
	}
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func FuzzBundle2(f *testing.F) {
	var b bytes.Buffer
	w := NewBundle2Writer(&b)
	var cg CGWriter
	cg.Delta(Delta{Data: revlog.FullDelta([]byte("text"))})
	cg.End()
	cg.End()
	cg.FileName("f")
	cg.End()
	cg.End()
	w.AddPart("changegroup", true, []Param{{"version", "02"}}, nil, cg.Bytes())
	w.AddPart("error:abort", true, []Param{{"message", "no"}}, nil, nil)
	w.Close()
	f.Add(b.Bytes())
	f.Add([]byte("HG20\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		_ = readAll(bytes.NewReader(in), smallLimits())
		_, _ = ReadPushReply(bytes.NewReader(in), smallLimits())
	})
}

func FuzzChangegroup(f *testing.F) {
	var cg CGWriter
	cg.Delta(Delta{Data: revlog.FullDelta([]byte("text"))})
	cg.End()
	cg.End()
	cg.FileName("f")
	cg.Delta(Delta{Data: []byte("x")})
	cg.End()
	cg.End()
	f.Add(cg.Bytes(), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, v uint8) {
		version := []string{"01", "02", "03"}[int(v)%3]
		r, err := NewCGReader(bytes.NewReader(in), version, smallLimits())
		if err != nil {
			t.Fatal(err)
		}
		_ = readCG(r)
	})
}
