package main

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// inZone runs cmd with TZ=tz and returns its standard output, failing the
// test unless it succeeds. A process reads its local zone once, at start,
// so zone-dependent behaviour is tested in child processes.
func inZone(t *testing.T, tz string, cmd *exec.Cmd) string {
	t.Helper()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "TZ="+tz)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("TZ=%s %s: %v\n%s", tz, strings.Join(cmd.Args, " "), err, errb.String())
	}
	return string(out)
}

// otreeIn returns a command running otree on the repository at path.
func otreeIn(t *testing.T, path string, args ...string) *exec.Cmd {
	exe, env := otreeBinary(t)
	cmd := exec.Command(exe, append([]string{"--repo=" + path}, args...)...)
	cmd.Env = env
	return cmd
}

func loadZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("no zone data for %s: %v", name, err)
	}
	return loc
}

// dateCommits is three commits on main, at 2024-12-02T12:00Z,
// 2024-12-03T05:00Z and 2024-12-04T12:00Z.
var dateCommits = []int64{1733140800, 1733202000, 1733313600}

// A time without a zone in --timestamp or --keep-younger-than is local
// time ($TZ), as in OSTree: east of UTC, "2024-12-03 10:00:00" keeps the
// commit of 05:00 UTC that reading it as UTC would delete.
func TestDatesAreLocalTime(t *testing.T) {
	for _, cs := range []struct {
		tz, keep string
		hour     int // the cut-off is this hour of 2024-12-03, local time
	}{
		{"Asia/Tokyo", "2024-12-03 10:00:00", 10},
		{"America/New_York", "2024-12-03 10:00:00", 10},
		{"Pacific/Kiritimati", "2024-12-03", 0},
		{"America/New_York", "Dec 3 2024 1am", 1},
	} {
		t.Run(cs.tz+" "+cs.keep, func(t *testing.T) {
			loc := loadZone(t, cs.tz)
			c := newCLIMode(t, repo.ModeArchive)
			src := source(t, testtree.Tree{"f": testtree.File("f", 0o644)})

			out := inZone(t, cs.tz, otreeIn(t, c.path, "commit", "-b", "ts", "--timestamp=2024-12-03 10:00:00", src))
			id, err := repo.ParseID(strings.TrimSpace(out))
			if err != nil {
				t.Fatalf("commit printed %q", out)
			}
			cm, err := c.r.ReadCommit(id)
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(2024, 12, 3, 10, 0, 0, 0, loc); int64(cm.Timestamp) != want.Unix() {
				t.Errorf("--timestamp in %s stored %v, want %v", cs.tz, time.Unix(int64(cm.Timestamp), 0).UTC(), want.UTC())
			}

			for i, ts := range dateCommits {
				os.WriteFile(filepath.Join(src, "f"), []byte{byte('a' + i)}, 0o644)
				c.ok("commit", "-b", "main", "--timestamp=@"+strconv.FormatInt(ts, 10), src)
			}
			inZone(t, cs.tz, otreeIn(t, c.path, "prune", "--keep-younger-than="+cs.keep))
			cut := time.Date(2024, 12, 3, cs.hour, 0, 0, 0, loc)
			want := 0
			for _, ts := range dateCommits {
				if ts >= cut.Unix() {
					want++
				}
			}
			if got := historyLen(c.ok("log", "main")); got != want {
				t.Errorf("prune --keep-younger-than=%q in %s kept %d commits, want %d (those from %v on)", cs.keep, cs.tz, got, want, cut.UTC())
			}
		})
	}
}

// otree's --timestamp stores the time OSTree's does for the same string in
// the same zone; relative forms may differ by the seconds between the two
// runs. Relative forms are run again, once, if the runs straddle a change
// of date or of the zone's offset: each reads its own now, so the two
// could name different days.
func TestTimestampParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "archive")
	c := newCLIMode(t, repo.ModeArchive)
	src := source(t, testtree.Tree{"f": testtree.File("f", 0o644)})
	for _, tz := range []string{"Asia/Tokyo", "America/New_York"} {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			loc = time.UTC // as the runs read a $TZ without zone data
		}
		// day is what a relative form reads from now besides its seconds.
		day := func(at time.Time) string {
			return at.In(loc).Format("2006-01-02 -0700") + at.UTC().Format(" 2006-01-02")
		}
		for _, cs := range []struct {
			in    string
			exact bool // not relative to now
		}{
			{"2020-01-01 12:00:00", true}, {"2020-01-01 12:00", true}, {"2020-01-01T12:00:00", true},
			{"2020-01-01", true}, {"2020-01-01 12:00:00 +0200", true}, {"2020-01-01T12:00:00+02:00", true},
			{"2020-01-01 12:00:00Z", true}, {"2020-01-01 12:00:00 UTC", true}, {"2020-01-01 12:00 EST", true},
			{"2020-01-01 12:00:00.75", true}, {"@1577880000", true}, {"@1577880000.7", true},
			{"Nov 30 2026", true}, {"30 Nov 2026 12:00", true}, {"November 30, 2026", true},
			{"11/30/2026", true}, {"Wed Jan  1 12:00:00 UTC 2020", true}, {"Thu, 01 Jan 2020 12:00:00 +0000", true},
			{"Jan 31 2025 + 1 month", true}, {"2024-01-01 +3 days", true}, {"1 day ago 2020-03-09 01:30", true},
			{"2020-11-01 01:30", true},
			{"20240131", true}, {"240131", true}, {"20240131 1200", true}, {"2024-01-31 1530", true},
			{"2024-01-31 930", true}, {"Jan 31 2024 1200", true}, {"Jan 1 2020 2021", true},
			{"1/31 2024", true}, {"20240131 -1 day", true}, {"2024-01-31 12 +5", true},
			{"2024-01-31T12+05", true}, {"2024-01-31 12 +5:00 -1 day", true}, {"02024-01-31", true},
			{"2024-01-01 12:00 UTC -1 day", true}, {"Jan 31 12:00 24", true},
			{"now", false}, {"today", false}, {"yesterday", false}, {"tomorrow", false},
			{"yesterday 10:00", false}, {"4 days ago 12:00", false}, {"last week", false}, {"-3 days", false},
			{"1 month ago", false}, {"2 hours ago", false}, {"6 weeks ago", false}, {"last monday", false},
			{"friday", false}, {"next friday", false}, {"12:00 UTC", false}, {"now UTC", false},
			{"1200", false}, {"9", false}, {"2024", false}, {"12 +5", false}, {"10:00 +5", false},
			{"monday 1200", false}, {"yesterday 1200", false}, {"Jan 31 12", false},
			{"1200 -3 days", false}, {"10am -3 days", false}, {"", false}, {" ", false},
		} {
			args := []string{"commit", "--orphan", "-s", "x", "--timestamp=" + cs.in}
			for try := 0; ; try++ {
				before := time.Now()
				out := inZone(t, tz, otreeIn(t, c.path, append(args, src)...))
				id, err := repo.ParseID(strings.TrimSpace(out))
				if err != nil {
					t.Fatalf("otree commit printed %q", out)
				}
				cm, err := c.r.ReadCommit(id)
				if err != nil {
					t.Fatal(err)
				}
				oid := strings.TrimSpace(inZone(t, tz, exec.Command(o.bin, append([]string{"--repo=" + o.path}, append(args, "--tree=dir="+src)...)...)))
				after := time.Now()
				if !cs.exact && try == 0 && day(before) != day(after) {
					continue // the next runs, seconds apart, straddle no midnight
				}
				want := ostreeDate(t, o.ok("show", oid))
				got := time.Unix(int64(cm.Timestamp), 0)
				// The whole seconds of two nows read between before and after,
				// a second to spare.
				slack := after.Sub(before) + 2*time.Second
				if d := got.Sub(want).Abs(); d > slack || cs.exact && d != 0 {
					t.Errorf("TZ=%s --timestamp=%q: otree %v, OSTree %v (runs %v apart)", tz, cs.in, got.UTC(), want.UTC(), after.Sub(before))
				}
				break
			}
		}
	}
}

// ostreeDate reads the Date line of "ostree show".
func ostreeDate(t *testing.T, show string) time.Time {
	t.Helper()
	for _, l := range strings.Split(show, "\n") {
		if v, ok := strings.CutPrefix(l, "Date:"); ok {
			d, err := time.Parse("2006-01-02 15:04:05 -0700", strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatalf("no Date in %q", show)
	return time.Time{}
}

// prune --keep-younger-than keeps the commits OSTree's keeps, for dates
// read in the local zone.
func TestKeepYoungerThanParityWithOSTree(t *testing.T) {
	for _, tz := range []string{"Asia/Tokyo", "America/New_York", "Pacific/Kiritimati"} {
		for _, keep := range []string{
			"2024-12-03 10:00:00", "2024-12-03", "Dec 3 2024 14:00 +0900",
			"2024-12-03T05:00:00Z", "1 day ago 2024-12-04 06:00", "tue 2024-12-03 1am",
			"20241203", "20241203 1000", "2024-12-03 0500 UTC", "2024-12-03 14 +09",
			"2024-12-04 06:00 UTC -1 day", "Dec 3 10:00 2024", "", " ",
		} {
			t.Run(tz+" "+keep, func(t *testing.T) {
				o := needOSTree(t, "archive")
				c := newCLIMode(t, repo.ModeArchive)
				src := source(t, testtree.Tree{"f": testtree.File("f", 0o644)})
				for i, ts := range dateCommits {
					os.WriteFile(filepath.Join(src, "f"), []byte{byte('a' + i)}, 0o644)
					c.ok("commit", "-b", "main", "--timestamp=@"+strconv.FormatInt(ts, 10), src)
					o.ok("commit", "-b", "main", "--timestamp=@"+strconv.FormatInt(ts, 10), src)
				}
				inZone(t, tz, otreeIn(t, c.path, "prune", "--keep-younger-than="+keep))
				inZone(t, tz, exec.Command(o.bin, "--repo="+o.path, "prune", "--keep-younger-than="+keep))
				if got, want := historyLen(c.ok("log", "main")), historyLen(o.ok("log", "main")); got != want {
					t.Errorf("otree keeps %d commits, OSTree %d", got, want)
				}
			})
		}
	}
}

// A --timestamp before 1970 is refused, naming the input, and commits
// nothing: a commit records unsigned seconds since 1970. (OSTree stores
// such a time wrapped around, 2^64 less the seconds before 1970: its show
// and log print it as 1969, its prune takes it for the far future.) In UTC
// "1-01-01" is the zero time, which the commit library reads as "now".
func TestTimestampBefore1970Refused(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"f": testtree.File("f", 0o644)})
	for _, cs := range []struct{ tz, in string }{
		{"UTC", "1-01-01"}, {"UTC", "1969-12-31 23:59:59"}, {"UTC", "@-1"},
		{"Asia/Tokyo", "Jan 31 1200"}, {"America/New_York", "19691231 1800"},
	} {
		cmd := otreeIn(t, c.path, "commit", "-b", "main", "--timestamp="+cs.in, src)
		cmd.Env = append(cmd.Env, "TZ="+cs.tz)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); err == nil || code != 2 {
			t.Errorf("TZ=%s --timestamp=%q: exit %d, want 2 (usage)\n%s", cs.tz, cs.in, code, out)
		}
		if !strings.Contains(string(out), strconv.Quote(cs.in)) || !strings.Contains(string(out), "before 1970") {
			t.Errorf("TZ=%s --timestamp=%q: %s", cs.tz, cs.in, out)
		}
	}
	if refs := c.ok("refs"); refs != "" {
		t.Errorf("refused commits left refs %q", refs)
	}
}

// Commit times past 2^62, which another writer may store (OSTree stores
// 2^64-1 for @-1), each print as their own date in show, log, show --json
// and summary --view, not as one clamped date.
func TestFarFutureCommitDates(t *testing.T) {
	c := newCLI(t)
	base := c.commitTree("main", source(t, fixture), "base", 1700000000)
	bc, err := c.r.ReadCommit(base)
	if err != nil {
		t.Fatal(err)
	}
	txn, err := c.r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for ref, ts := range map[string]uint64{"near": 1<<62 + 1, "max": math.MaxUint64} {
		cm := repo.Commit{Timestamp: ts, Subject: ref, RootTree: bc.RootTree, RootMeta: bc.RootMeta}
		id, err := txn.WriteMeta(repo.KindCommit, cm.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.SetRef(ref, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, cs := range []struct{ ref, date, rfc string }{
		{"near", "146138514283-06-19 07:45:05 +0000", "146138514283-06-19T07:45:05Z"},
		{"max", "584554051223-11-09 07:00:15 +0000", "584554051223-11-09T07:00:15Z"},
	} {
		for _, cmd := range []string{"show", "log"} {
			if out := c.ok(cmd, cs.ref); !strings.Contains(out, "\nDate:  "+cs.date+"\n") {
				t.Errorf("%s %s:\n%s\nwant Date %s", cmd, cs.ref, out, cs.date)
			}
		}
		if out := c.ok("show", "--json", cs.ref); !strings.Contains(out, `"date": "`+cs.rfc+`"`) {
			t.Errorf("show --json %s:\n%s\nwant date %s", cs.ref, out, cs.rfc)
		}
	}
	c.ok("summary", "-u")
	out := inZone(t, "Asia/Kathmandu", otreeIn(t, c.path, "summary", "--view"))
	if want := "Timestamp: 584554051223-11-09T12:45:15+05:45\n"; !strings.Contains(out, want) {
		t.Errorf("summary --view:\n%s\nwant %q", out, want)
	}
}

// A $TZ that is a POSIX rule rather than a zone name is read as the C
// library, and so OSTree, reads it: "UTC+14" is 14 hours west of UTC, not
// UTC, for --timestamp, --keep-younger-than and summary --view alike.
func TestPOSIXRuleTZ(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"f": testtree.File("f", 0o644)})
	for _, cs := range []struct {
		tz, want, view string
	}{
		{"UTC+14", "2024-02-01T02:00:00Z", "2024-01-31T12:00:00-14"},
		{"<+0545>-5:45", "2024-01-31T06:15:00Z", "2024-01-31T12:00:00+05:45"},
		{"CET-1CEST,M3.5.0,M10.5.0/3", "2024-01-31T11:00:00Z", "2024-01-31T12:00:00+01"},
	} {
		out := inZone(t, cs.tz, otreeIn(t, c.path, "commit", "-b", "main", "--timestamp=2024-01-31 12:00", src))
		id, err := repo.ParseID(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("commit printed %q", out)
		}
		cm, err := c.r.ReadCommit(id)
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Unix(int64(cm.Timestamp), 0).UTC().Format(time.RFC3339); got != cs.want {
			t.Errorf("TZ=%s --timestamp=\"2024-01-31 12:00\" stored %s, want %s", cs.tz, got, cs.want)
		}
		c.ok("summary", "-u")
		if view := inZone(t, cs.tz, otreeIn(t, c.path, "summary", "--view")); !strings.Contains(view, "Timestamp: "+cs.view+"\n") {
			t.Errorf("TZ=%s summary --view:\n%s\nwant Timestamp %s", cs.tz, view, cs.view)
		}
	}
	// The cut-off is 12:00 at UTC-14, after a commit at 12:00 UTC.
	c.ok("commit", "-b", "main", "--timestamp=@1706702400", src) // 2024-01-31T12:00Z
	c.ok("commit", "-b", "main", "--timestamp=@1706788800", src) // 2024-02-01T12:00Z
	inZone(t, "UTC+14", otreeIn(t, c.path, "prune", "--keep-younger-than=2024-01-31 12:00"))
	if n := historyLen(c.ok("log", "main")); n != 1 {
		t.Errorf("prune in TZ=UTC+14 kept %d commits, want 1", n)
	}
}
