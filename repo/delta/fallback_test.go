package delta_test

import (
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
)

// blob is 200 KiB that compress badly and patch against nothing.
var blob = func() string {
	b := make([]byte, 200<<10)
	rand.New(rand.NewSource(3)).Read(b)
	return string(b)
}()

// treeC is treeB with a new large file.
func treeC() testtree.Tree {
	c := testtree.Tree{}
	for k, v := range treeB {
		c[k] = v
	}
	c["usr/share/blob"] = testtree.File(blob, 0o644)
	return c
}

func fileID(t *testing.T, r *repo.Repo, commit repo.ID, p string) repo.ID {
	t.Helper()
	c, err := r.ReadCommit(commit)
	if err != nil {
		t.Fatal(err)
	}
	tree := c.RootTree
	parts := strings.Split(strings.Trim(p, "/"), "/")
	for i, name := range parts {
		dt, err := r.ReadDirTree(tree)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		if i == len(parts)-1 {
			for _, f := range dt.Files {
				if f.Name == name {
					return f.ID
				}
			}
		}
		for _, d := range dt.Dirs {
			if d.Name == name {
				tree, found = d.TreeID, true
			}
		}
		if !found {
			t.Fatalf("%s not in commit %s", p, commit)
		}
	}
	return repo.ID{}
}

// copyObject stores file object id of src in dst, as a pull would.
func copyObject(t *testing.T, src, dst *repo.Repo, id repo.ID) {
	t.Helper()
	h, rc, err := src.OpenFile(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	txn, err := dst.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if _, err := txn.WriteFileVerified(h, id, io.Reader(rc)); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
}

// With MinFallbackSize, new files over the size that are not patched are
// left out of the delta and listed as fallbacks (OSTree's rule: a patched
// file stays, however large); apply-offline refuses such a delta, naming
// the missing objects, until they are stored here, and then applies it.
func TestFallbackObjects(t *testing.T) {
	src := newRepo(t, repo.ModeArchive)
	dst := newRepo(t, repo.ModeBareUser)
	a := commitTree(t, src, "main", treeA, false)
	c := commitTree(t, src, "main", treeC(), true)
	commitTree(t, dst, "main", treeA, false)
	blobID := fileID(t, src, c, "/usr/share/blob")
	bigID := fileID(t, src, c, "/usr/lib/big.txt") // 300 KiB, patched against A's

	sb, err := delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: c, MinFallbackSize: 100 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]delta.Fallback{{ID: blobID, Size: uint64(len(blob))}}, sb.Fallbacks); diff != "" {
		t.Errorf("fallbacks (-want +got):\n%s", diff)
	}
	inParts := map[repo.ID]bool{}
	for _, p := range sb.Parts {
		for _, o := range p.Objects {
			inParts[o.ID] = true
		}
	}
	if inParts[blobID] || !inParts[bigID] {
		t.Errorf("blob in the parts: %v, patched big.txt in the parts: %v", inParts[blobID], inParts[bigID])
	}
	stored, _, err := delta.ReadSuperblock(src, sb.Name)
	if err != nil || !cmp.Equal(stored.Fallbacks, sb.Fallbacks) {
		t.Fatalf("stored superblock: %v, fallbacks %v", err, stored.Fallbacks)
	}
	// Without patches big.txt is a new file like any other, and too large.
	whole, err := delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: c, MinFallbackSize: 100 << 10, NoPatches: true, NoSync: true,
		Dir: filepath.Join(t.TempDir(), "whole")})
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.Fallbacks) != 2 {
		t.Errorf("without patches: fallbacks %v, want blob and big.txt", whole.Fallbacks)
	}
	// A size above every file leaves nothing out: a version 1 superblock.
	all, err := delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: c, MinFallbackSize: 1 << 20, NoSync: true,
		Dir: filepath.Join(t.TempDir(), "all")})
	if err != nil {
		t.Fatal(err)
	}
	if all.Fallbacks != nil || all.Encode()[1] != 1 {
		t.Errorf("fallbacks %v, version %d", all.Fallbacks, all.Encode()[1])
	}

	// apply-offline: refused before any part is read, naming the object.
	before := objects(t, dst)
	_, err = delta.ApplyOffline(ctx, dst, delta.Path(src, sb.Name), delta.ApplyOfflineOptions{NoSync: true})
	var fe *delta.FallbackMissingError
	if !errors.As(err, &fe) || !cmp.Equal(fe.Missing, sb.Fallbacks) {
		t.Fatalf("ApplyOffline = %v, want a FallbackMissingError for the blob", err)
	}
	for _, w := range []string{sb.Name.String(), "file " + blobID.String(), "minimum fallback size"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if diff := cmp.Diff(before, objects(t, dst)); diff != "" {
		t.Errorf("a refused apply-offline changed objects:\n%s", diff)
	}
	// The same from a single file.
	single := filepath.Join(t.TempDir(), "delta.bin")
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: c, MinFallbackSize: 100 << 10, NoSync: true, File: single}); err != nil {
		t.Fatal(err)
	}
	if _, err := delta.ApplyOffline(ctx, dst, single, delta.ApplyOfflineOptions{NoSync: true}); !errors.As(err, &fe) {
		t.Errorf("ApplyOffline(single file) = %v, want a FallbackMissingError", err)
	}

	// Once the object is here, the delta applies.
	copyObject(t, src, dst, blobID)
	if _, err := delta.ApplyOffline(ctx, dst, delta.Path(src, sb.Name), delta.ApplyOfflineOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	appliedClean(t, src, dst, c)
}

// Apply hands the fallback objects missing here to its FetchFallbacks,
// and fails if that does not store them.
func TestApplyFetchesFallbacks(t *testing.T) {
	src := newRepo(t, repo.ModeArchive)
	dst := newRepo(t, repo.ModeBareUser)
	commitTree(t, src, "main", treeC(), false)
	c, _ := src.ReadRef("main")
	sb, err := delta.Generate(ctx, src, delta.GenerateOptions{To: c, MinFallbackSize: 100 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// From scratch nothing is patched: both large files fall back.
	if len(sb.Fallbacks) != 2 {
		t.Fatalf("fallbacks %v, want blob and big.txt", sb.Fallbacks)
	}
	dir := delta.Path(src, sb.Name)
	fetch := func(_ context.Context, file string, fn func(io.Reader) error) error {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			return err
		}
		defer f.Close()
		return fn(f)
	}
	for _, store := range []bool{false, true} {
		txn, err := dst.Begin(ctx, repo.TxnOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		var asked []delta.Fallback
		err = delta.Apply(ctx, txn, sb, fetch, nil, func(_ context.Context, missing []delta.Fallback) error {
			asked = missing
			if !store {
				return nil
			}
			for _, f := range missing {
				h, rc, err := src.OpenFile(f.ID)
				if err != nil {
					return err
				}
				_, err = txn.WriteFileVerified(h, f.ID, rc)
				rc.Close()
				if err != nil {
					return err
				}
			}
			return nil
		})
		if !cmp.Equal(asked, sb.Fallbacks) {
			t.Errorf("store=%v: asked for %v", store, asked)
		}
		if !store {
			if err == nil || !strings.Contains(err.Error(), "which neither the delta nor this repository has") {
				t.Errorf("fallback not stored: Apply = %v, want an error naming the object", err)
			}
			txn.Abort()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	appliedClean(t, src, dst, c)
}

// A part is kept on disk while it is checked, so it counts against the
// free-space reserve before any of it is fetched: a superblock that claims
// a part larger than the room left fails at once, naming the part.
func TestApplyReservesPartSpace(t *testing.T) {
	src := newRepo(t, repo.ModeArchive)
	dst := newRepo(t, repo.ModeBareUser)
	commitTree(t, src, "main", treeC(), false)
	c, _ := src.ReadRef("main")
	sb, err := delta.Generate(ctx, src, delta.GenerateOptions{To: c, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	huge := *sb
	huge.Parts = slices.Clone(sb.Parts)
	huge.Parts[0].Size = 1 << 60 // more than any filesystem here has free
	fetched := 0
	fetch := func(_ context.Context, file string, fn func(io.Reader) error) error {
		fetched++
		return errors.New("not reached")
	}
	txn, err := dst.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	err = delta.Apply(ctx, txn, &huge, fetch, nil, nil)
	if !errors.Is(err, repo.ErrMinFreeSpace) || !strings.Contains(err.Error(), "part 0") {
		t.Errorf("Apply of a part of 2^60 bytes: %v, want ErrMinFreeSpace naming part 0", err)
	}
	if fetched != 0 {
		t.Errorf("the part was requested %d times", fetched)
	}
	// What the refused part reserved is given back: the real part fits.
	dir := delta.Path(src, sb.Name)
	err = delta.Apply(ctx, txn, sb, dirFetch(dir), nil, nil)
	if err != nil {
		t.Errorf("Apply of the real delta after the refusal: %v", err)
	}
}

// Generations at once, of one delta or of several, all succeed (each
// makes its directory where another's cleanup does not take it), and a
// reader sees the delta being replaced throughout: the old one or the new.
func TestGenerateConcurrently(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	a := commitTree(t, r, "main", treeC(), false)
	tr := treeC()
	tr["extra"] = testtree.File("more\n", 0o644)
	b := commitTree(t, r, "main", tr, true)
	same := delta.GenerateOptions{From: a, To: b, NoSync: true}
	if _, err := delta.Generate(ctx, r, same); err != nil {
		t.Fatal(err)
	}
	name := delta.Name{From: a, To: b}
	stop := make(chan struct{})
	var missing atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := delta.ReadSuperblock(r, name); err != nil {
				missing.Add(1)
			}
		}
	}()
	for round := range 15 {
		errs := make(chan error, 3)
		var gens sync.WaitGroup
		for _, opts := range []delta.GenerateOptions{same, same, {To: b, NoSync: true}} {
			gens.Add(1)
			go func() {
				defer gens.Done()
				_, err := delta.Generate(ctx, r, opts)
				errs <- err
			}()
		}
		gens.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if n := missing.Load(); n > 0 {
		t.Errorf("the delta being replaced could not be read %d times", n)
	}
}

// dirFetch is the Fetch of a delta's directory: each part file read from it.
func dirFetch(dir string) delta.Fetch {
	return func(_ context.Context, file string, fn func(io.Reader) error) error {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			return err
		}
		defer f.Close()
		return fn(f)
	}
}
