package fleet

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/memberlist"
)

// Key file format.
//
// A key file holds the fleet's gossip keyring: one base64 (standard
// encoding, padded) AES key per line, 16, 24 or 32 bytes once decoded
// (AES-128/192/256-GCM). The FIRST key is the primary: it encrypts
// everything this node sends. Every key in the file decrypts. Blank lines
// and lines starting with '#' are ignored. At most MaxKeys keys, and the
// file at most maxKeyFileBytes.
//
// Rotation without a fleet restart, each step applied on every node
// (edit the file, then ReloadKeys / SIGHUP) before the next begins:
//  1. append the new key as a second line: every node can now decrypt it;
//  2. move the new key to the first line: every node now encrypts with it;
//  3. delete the old key's line.
const (
	// MaxKeys bounds the keyring.
	MaxKeys = 16
	// maxKeyFileBytes bounds the key file.
	maxKeyFileBytes = 16 << 10
)

// keyHeader starts every file written by WriteKeyFile.
const keyHeader = "# Vantage gossip keyring: one base64 AES key per line; the first line is the primary.\n"

// ParseKeys parses a key file's contents into keys, primary first. Errors
// name the line, never the key material.
func ParseKeys(b []byte) ([][]byte, error) {
	if len(b) > maxKeyFileBytes {
		return nil, fmt.Errorf("key file is %d bytes, over %d", len(b), maxKeyFileBytes)
	}
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1024), maxKeyFileBytes)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return nil, fmt.Errorf("key file line %d: not standard base64", line)
		}
		if err := memberlist.ValidateKey(k); err != nil {
			return nil, fmt.Errorf("key file line %d: key is %d bytes; want 16, 24 or 32", line, len(k))
		}
		for i, prev := range keys {
			if bytes.Equal(prev, k) {
				return nil, fmt.Errorf("key file line %d: duplicate of key %d", line, i+1)
			}
		}
		if len(keys) == MaxKeys {
			return nil, fmt.Errorf("key file line %d: more than %d keys", line, MaxKeys)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("key file holds no key")
	}
	return keys, nil
}

// ReadKeyFile reads and parses a key file (see ParseKeys).
func ReadKeyFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	keys, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// NewKey returns a fresh random 32-byte key (AES-256-GCM).
func NewKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	return k, nil
}

// FormatKeys renders keys in the key file format, primary first.
func FormatKeys(keys [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString(keyHeader)
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// applyKeys makes ring hold exactly keys with keys[0] as primary, in an
// order that never leaves the ring without a key a peer may use: add all,
// switch the primary, then remove the rest.
func applyKeys(ring *memberlist.Keyring, keys [][]byte) error {
	for _, k := range keys {
		if err := ring.AddKey(k); err != nil {
			return err
		}
	}
	if err := ring.UseKey(keys[0]); err != nil {
		return err
	}
	for _, old := range ring.GetKeys() {
		keep := false
		for _, k := range keys {
			keep = keep || bytes.Equal(k, old)
		}
		if !keep {
			if err := ring.RemoveKey(old); err != nil {
				return err
			}
		}
	}
	return nil
}
