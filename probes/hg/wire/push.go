package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/vantage-fleet/vantage/probes/hg/revlog"
)

// ErrPushRaced is the server's error:pushraced: its heads changed between
// the client reading them and the push arriving.
var ErrPushRaced = errors.New("push raced")

// AbortError is the server's error:abort (a hook or a policy refused the push).
type AbortError struct{ Message, Hint string }

func (e *AbortError) Error() string {
	if e.Hint != "" {
		return "push aborted: " + e.Message + " (" + e.Hint + ")"
	}
	return "push aborted: " + e.Message
}

// PushBundle builds the bundle2 a modern client sends to unbundle:
// replycaps, check:heads with the heads seen before the push, and the
// changegroup (version 02) holding nchanges changesets.
func PushBundle(remoteHeads []revlog.Node, cg []byte, nchanges int) ([]byte, error) {
	var buf bytes.Buffer
	w := NewBundle2Writer(&buf)
	if _, err := w.AddPart("replycaps", true, nil, nil, []byte(EncodeCaps(clientCaps))); err != nil {
		return nil, err
	}
	var heads []byte
	for _, h := range remoteHeads {
		heads = append(heads, h[:]...)
	}
	if _, err := w.AddPart("check:heads", true, nil, nil, heads); err != nil {
		return nil, err
	}
	if _, err := w.AddPart("changegroup", true, []Param{{"version", "02"}},
		[]Param{{"nbchanges", strconv.Itoa(nchanges)}}, cg); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadPushReply reads the server's reply bundle and returns the
// reply:changegroup return value (1 or more means applied). A raced push
// is ErrPushRaced, a refused one an *AbortError.
func ReadPushReply(r io.Reader, lim Limits) (int, error) {
	br, err := NewBundle2Reader(r, lim)
	if err != nil {
		return 0, fmt.Errorf("push reply: %w", err)
	}
	ret, got := 0, false
	for {
		p, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("push reply: %w", err)
		}
		switch p.Type {
		case "reply:changegroup":
			if ret, err = ReplyReturn(p); err != nil {
				return 0, err
			}
			got = true
		case "error:pushraced":
			return 0, fmt.Errorf("%w: %s", ErrPushRaced, p.Params["message"])
		case "error:abort":
			return 0, &AbortError{Message: p.Params["message"], Hint: p.Params["hint"]}
		case "error:unsupportedcontent", "error:pushkey":
			return 0, &AbortError{Message: p.Type + " " + fmt.Sprint(p.Params)}
		case "output", "reply:pushkey", "reply:bookmarks":
		default:
			if p.Mandatory {
				return 0, malformed("push reply: unknown mandatory part %q", p.Type)
			}
		}
	}
	if !got {
		return 0, malformed("push reply: no reply:changegroup part")
	}
	if ret == 0 {
		return 0, &AbortError{Message: "server applied nothing (return 0)"}
	}
	return ret, nil
}
