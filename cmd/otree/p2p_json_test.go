package main

import (
	"encoding/json"
	"testing"
)

// findRemotesPair configures in a new repository a file:// remote of
// collection coll whose source holds os/stable, committed at ts.
func findRemotesPair(t *testing.T, coll string, ts int64) (dst *cli, id string) {
	t.Helper()
	src := newCLI(t)
	src.ok("config", "set", "core.collection-id", coll)
	id = src.commitTree("os/stable", source(t, fixture), "one", ts).String()
	src.ok("summary", "-u")
	dst = newBareUserCLI(t)
	dst.ok("remote", "add", "--collection-id="+coll, "origin", "file://"+src.path)
	return dst, id
}

// find-remotes --json prints "missing": [] when it found every ref.
func TestFindRemotesJSONNothingMissing(t *testing.T) {
	const coll = "org.example.Os"
	dst, _ := findRemotesPair(t, coll, 1700000000)
	out := dst.ok("find-remotes", "--finders=config", "--cache-dir=-", "--json", coll, "os/stable")
	jsonLists(t, "find-remotes --json", out, "remotes", "missing")
}

// find-remotes --json gives a found commit's time as log and show do:
// Unix seconds in "timestamp", RFC 3339 in "date".
func TestFindRemotesJSONTimestampAsLog(t *testing.T) {
	const coll = "org.example.Os"
	dst, id := findRemotesPair(t, coll, 1700000000)
	out := dst.ok("find-remotes", "--finders=config", "--cache-dir=-", "--json", coll, "os/stable")
	var res struct {
		Remotes []struct {
			Refs []struct {
				Commit    string `json:"commit"`
				Timestamp any    `json:"timestamp"`
				Date      any    `json:"date"`
			} `json:"refs"`
		} `json:"remotes"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Remotes) != 1 || len(res.Remotes[0].Refs) != 1 {
		t.Fatalf("find-remotes --json: %v\n%s", err, out)
	}
	f := res.Remotes[0].Refs[0]
	if f.Commit != id || f.Timestamp != float64(1700000000) || f.Date != "2023-11-14T22:13:20Z" {
		t.Errorf("find-remotes --json: ref %s timestamp %#v date %#v, want %s 1700000000 \"2023-11-14T22:13:20Z\"", f.Commit, f.Timestamp, f.Date, id)
	}
}
