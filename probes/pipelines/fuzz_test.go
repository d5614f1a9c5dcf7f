package pipelines

import (
	"testing"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// FuzzDecodePipeline feeds arbitrary bodies to every provider's pipeline
// decoder: none may panic, and every rejection is a protocol failure.
func FuzzDecodePipeline(f *testing.F) {
	for _, seed := range []string{
		`{"type":"pipeline","uuid":"{1}","build_number":3,"state":{"name":"COMPLETED","result":{"name":"FAILED"}}}`,
		`{"uuid":"{1}","state":{"name":"IN_PROGRESS","stage":{"name":"RUNNING"}}}`,
		`{"id":5001,"iid":1,"status":"running","web_url":"http://x/-/pipelines/5001"}`,
		`{"id":9000000001,"run_number":1,"status":"completed","conclusion":"success"}`,
		`{"page":1,"values":[{"name":"build","started_on":"2026-01-01T00:00:00Z","completed_on":"2026-01-01T00:00:01.5Z"}]}`,
		`{"uuid":"{1}","state":`, `[]`, `null`, `"x"`,
	} {
		f.Add([]byte(seed))
	}
	bb := newBitbucket(nil, "https://bitbucket.org", "w/r", "main", "", nil)
	gl := newGitLab(nil, "g/p", "main", "", nil)
	gh := newGitHub(nil, "o/r", "main", "ci.yml", nil, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(err error) {
			if err == nil {
				return
			}
			if _, typ := probes.Classify(err); typ != report.ErrProtocol {
				t.Fatalf("decoder error classified %s: %v", typ, err)
			}
		}
		if p, err := parseBitbucketPipeline("GET", "/p", body); err == nil {
			_ = bb.status(p)
		} else {
			check(err)
		}
		if st, err := gl.parse("GET", "/p", body); err == nil && st.id == "" {
			t.Fatal("GitLab pipeline accepted without an id")
		} else {
			check(err)
		}
		var r ghRun
		if err := decode("GET", "/p", body, &r); err == nil {
			_ = gh.status(r)
		} else {
			check(err)
		}
		var page bbPage[bbStep]
		if err := decode("GET", "/p", body, &page); err == nil {
			for _, s := range page.Values {
				if d := stepTask(s).duration; d < -1 {
					t.Fatalf("negative step duration %s", d)
				}
			}
		} else {
			check(err)
		}
	})
}

func TestStepTask_AbsurdDurationIsIgnored(t *testing.T) {
	huge := 1e300
	if d := stepTask(bbStep{DurationInSeconds: &huge}).duration; d != -1 {
		t.Fatalf("duration %s from 1e300 seconds", d)
	}
}
