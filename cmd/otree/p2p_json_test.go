package main

import (
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
