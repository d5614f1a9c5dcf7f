package git

import (
	"testing"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestParseBranchHead_EachProductsShape(t *testing.T) {
	cases := []struct {
		api, body, want string
		err             report.ErrorType
	}{
		{"bitbucket-cloud", `{"type":"branch","name":"p/x","target":{"type":"commit","hash":"` + sha + `"}}`, sha, ""},
		{"bitbucket-dc", `{"values":[{"id":"refs/heads/p/xy","displayId":"p/xy","latestCommit":"ffffffffffffffffffffffffffffffffffffffff"},{"id":"refs/heads/p/x","displayId":"p/x","latestCommit":"` + sha + `"}],"isLastPage":true}`, sha, ""},
		{"bitbucket-dc", `{"values":[{"displayId":"p/xy","latestCommit":"` + sha + `"}]}`, "", ""}, // filterText matches substrings: exact displayId only
		{"github", `{"name":"p/x","commit":{"sha":"` + sha + `"}}`, sha, ""},
		{"gitlab", `{"name":"p/x","commit":{"id":"` + sha + `"}}`, sha, ""},
		{"github", `{"commit":{"sha":"not-a-hash"}}`, "", report.ErrProtocol},
		{"gitlab", `<html>`, "", report.ErrProtocol},
	}
	for _, c := range cases {
		got, err := parseBranchHead(c.api, "p/x", []byte(c.body))
		_, typ := probes.Classify(err)
		if got != c.want || (err != nil) != (c.err != "") || (err != nil && typ != c.err) {
			t.Errorf("%s %s: got %q %v, want %q %s", c.api, c.body, got, err, c.want, c.err)
		}
	}
}

func TestBranchAPI_RequestURLs(t *testing.T) {
	cases := map[string]string{
		"bitbucket-cloud": "https://h/2.0/repositories/ws/repo/refs/branches/p%2Fx",
		"bitbucket-dc":    "https://h/rest/api/latest/projects/ws/repos/repo/branches?filterText=p%2Fx",
		"github":          "https://h/repos/ws/repo/branches/p%2Fx",
		"gitlab":          "https://h/api/v4/projects/ws%2Frepo/repository/branches/p%2Fx",
	}
	for typ, want := range cases {
		a, err := newBranchAPI(&config.GitAPI{Type: typ, BaseURL: "https://h/", Workspace: "ws", Repo: "repo"})
		if err != nil {
			t.Fatal(err)
		}
		if got := a.(*restBranches).requestURL("p/x"); got != want {
			t.Errorf("%s: %s, want %s", typ, got, want)
		}
	}
}
