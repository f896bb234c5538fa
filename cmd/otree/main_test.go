package main

import (
	"os"
	"testing"
)

// TestMain lets tests run this test binary as the otree command (for
// scripts in another mount namespace, or processes a test kills): with
// OTREE_TEST_AS_OTREE=1 in its environment it is otree.
func TestMain(m *testing.M) {
	if os.Getenv("OTREE_TEST_AS_OTREE") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// otreeBinary returns a path and environment that run otree: this test
// binary in its otree role.
func otreeBinary(t *testing.T) (string, []string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe, append(os.Environ(), "OTREE_TEST_AS_OTREE=1")
}
