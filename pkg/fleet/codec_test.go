package fleet

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestMeta_RoundTripAndBounds(t *testing.T) {
	m := Meta{Role: RoleProber, Region: "eu-west", Version: "v1.2.3 (abcdef012345)", ConfigDigest: strings.Repeat("a", 64)}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMeta(b)
	if err != nil || got != m {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// The largest valid metadata still fits memberlist's limit.
	big := Meta{Role: RoleAggregator, Region: strings.Repeat("r", maxRegionLen), Version: strings.Repeat("v", maxVersionLen), ConfigDigest: strings.Repeat("d", maxDigestLen)}
	if b, err := encodeMeta(big); err != nil || len(b) > MaxMetaBytes {
		t.Fatalf("largest meta: %d bytes, %v", len(b), err)
	}
}

func TestMeta_InvalidIsRejected(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":            ``,
		"not json":         `role=prober`,
		"future version":   `{"v":2,"role":"prober","region":"eu"}`,
		"no version":       `{"role":"prober","region":"eu"}`,
		"unknown role":     `{"v":1,"role":"king","region":"eu"}`,
		"prober no region": `{"v":1,"role":"prober"}`,
		"control char":     `{"v":1,"role":"prober","region":"e\u0007u"}`,
		"oversized":        `{"v":1,"role":"prober","region":"eu","version":"` + strings.Repeat("x", 600) + `"}`,
	} {
		if _, err := decodeMeta([]byte(raw)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMessage_RoundTrip(t *testing.T) {
	r := ConfirmRequest{Journey: "git-clone", Kind: "git", Slot: time.Unix(1700000000, 123).UTC(), Region: "eu", Agent: "eu-1"}
	b, err := encodeConfirm(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMessage(b)
	if err != nil || got != r {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

func TestMessage_MalformedIsRejected(t *testing.T) {
	good, _ := encodeConfirm(ConfirmRequest{Journey: "j", Kind: "http", Slot: time.Unix(1, 0), Region: "eu", Agent: "a"})
	body := good[3:]
	for name, b := range map[string][]byte{
		"empty":         nil,
		"garbage":       []byte("hello"),
		"wrong magic":   append([]byte{'X', 1, 1}, body...),
		"wrong version": append([]byte{'V', 2, 1}, body...),
		"unknown type":  append([]byte{'V', 1, 9}, body...),
		"bad json":      []byte("V\x01\x01{"),
		"unknown field": []byte(`V` + "\x01\x01" + `{"journey":"j","kind":"http","slot":1,"region":"eu","agent":"a","evil":1}`),
		"trailing data": append(append([]byte{}, good...), []byte(`{}`)...),
		"missing agent": []byte(`V` + "\x01\x01" + `{"journey":"j","kind":"http","slot":1,"region":"eu"}`),
		"zero slot":     []byte(`V` + "\x01\x01" + `{"journey":"j","kind":"http","slot":0,"region":"eu","agent":"a"}`),
		"oversized":     append(append([]byte{}, good...), bytes.Repeat([]byte(" "), MaxMessageBytes)...),
		"long journey":  []byte(`V` + "\x01\x01" + `{"journey":"` + strings.Repeat("j", 200) + `","kind":"http","slot":1,"region":"eu","agent":"a"}`),
	} {
		if _, err := decodeMessage(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	good, _ := encodeConfirm(ConfirmRequest{Journey: "j", Kind: "http", Slot: time.Unix(1, 0), Region: "eu", Agent: "a"})
	f.Add(good)
	f.Add([]byte("V\x01\x01{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeMessage(b)
		if err != nil {
			return
		}
		// Whatever decodes is valid and re-encodes to something that decodes the same.
		b2, err := encodeConfirm(r)
		if err != nil {
			t.Fatalf("decoded an invalid request: %v", err)
		}
		if r2, err := decodeMessage(b2); err != nil || r2 != r {
			t.Fatalf("re-encode changed it: %+v vs %+v (%v)", r2, r, err)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"v":1,"role":"prober","region":"eu","version":"dev","digest":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if _, err := encodeMeta(m); err != nil {
			t.Fatalf("decoded invalid meta: %v", err)
		}
	})
}

func TestParseKeys_FormatRoundTripAndErrors(t *testing.T) {
	k1, _ := NewKey()
	k2 := bytes.Repeat([]byte{7}, 16)
	keys, err := ParseKeys(FormatKeys([][]byte{k1, k2}))
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], k1) || !bytes.Equal(keys[1], k2) {
		t.Fatalf("round trip: %d keys, %v", len(keys), err)
	}
	canary := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xAB}, 20)) // 20 bytes: wrong size
	for name, tc := range map[string]struct{ file, want string }{
		"empty":      {"# nothing\n\n", "no key"},
		"bad base64": {"!!!notbase64\n", "line 1"},
		"wrong size": {"# c\n" + canary + "\n", "line 2"},
		"duplicate":  {string(FormatKeys([][]byte{k2, k2})), "duplicate"},
		"too large":  {strings.Repeat("#", maxKeyFileBytes+1), "over"},
	} {
		_, err := ParseKeys([]byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to mention %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), canary) {
			t.Errorf("%s: error leaks key material", name)
		}
	}
}

func FuzzParseKeys(f *testing.F) {
	f.Add(FormatKeys([][]byte{bytes.Repeat([]byte{1}, 32)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseKeys(b)
		if err != nil {
			return
		}
		if len(keys) == 0 || len(keys) > MaxKeys {
			t.Fatalf("%d keys", len(keys))
		}
	})
}
