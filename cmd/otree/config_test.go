package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// Processes changing the config at once, each a key or remote of its own:
// none loses another's change.
func TestConfigWritersAtOnce(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	exe, env := otreeBinary(t)
	const n = 8
	var cmds []*exec.Cmd
	for i := 0; i < n; i++ {
		args := []string{"--repo=" + c.path, "config", "set", fmt.Sprintf("test.key%d", i), fmt.Sprint(i)}
		if i%2 == 1 {
			args = []string{"--repo=" + c.path, "remote", "add", fmt.Sprintf("r%d", i), fmt.Sprintf("https://example.com/%d", i)}
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = env
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("otree %s: %v: %s", strings.Join(cmd.Args[1:], " "), err, cmd.Stderr)
		}
	}
	for i := 0; i < n; i++ {
		k, want := fmt.Sprintf("test.key%d", i), fmt.Sprint(i)
		if i%2 == 1 {
			k, want = fmt.Sprintf(`remote "r%d".url`, i), fmt.Sprintf("https://example.com/%d", i)
		}
		if got := strings.TrimSpace(c.run("config", "get", k).stdout); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
}
