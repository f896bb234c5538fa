package delta

import (
	"context"
	"errors"
	"math/rand"
	"testing"
)

// A part spooled whole is compressed when it is closed, which for a full
// part takes seconds: a generation cancelled by then stops in the
// compression, rather than finishing the part, and reports the
// cancellation.
func TestCancelStopsCompressingPart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g := &generator{ctx: ctx, opts: &GenerateOptions{MaxPartSize: DefaultMaxPartSize, NoSync: true}, dir: t.TempDir()}
	defer g.close()
	raw := make([]byte, 4<<20)
	rand.New(rand.NewSource(1)).Read(raw)
	w, err := g.part(int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := g.finishPart(); !errors.Is(err, context.Canceled) {
		t.Fatalf("closing a spooled part after cancel: %v, want context.Canceled", err)
	}
	if len(g.parts) != 0 {
		t.Errorf("the cancelled part was recorded: %+v", g.parts)
	}
}
