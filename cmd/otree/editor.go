package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// editing is set while the editor runs: a Ctrl-C on the terminal then
// reaches otree too, but is the editor's (ed takes it for a key), so
// main lets SIGINT pass, as git does; the commit goes on with the message
// written. An editor that dies of it fails the commit.
var editing atomic.Bool

// editMessage has the user write a commit message in the editor
// pickEditor names, as OSTree's commit --editor does: the first line
// becomes the subject, what follows the body. The file starts with subject
// and body, if given, and a comment naming the branch.
func editMessage(e *env, branch, subject, body string) (string, string, error) {
	editor, err := pickEditor()
	if err != nil {
		return "", "", err
	}
	dir, err := os.MkdirTemp("", "otree-msg-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "COMMIT_MSG")
	text := subject + "\n"
	if body != "" {
		text += "\n" + body + "\n"
	}
	text += "\n# Write the commit message above: its first line is the subject, the rest\n" +
		"# the body. Lines starting with '#' are dropped, and an empty message\n" +
		"# cancels the commit.\n#\n# Branch: " + branch + "\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		return "", "", err
	}
	// Through the shell, so that EDITOR may carry arguments ("code -w").
	cmd := exec.Command("/bin/sh", "-c", editor+` "$@"`, "sh", file)
	// The CLI's own streams: the terminal when run from one.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, unwrapWriter(e.stdout), e.stderr
	editing.Store(true)
	err = cmd.Run()
	editing.Store(false)
	if err != nil {
		return "", "", fmt.Errorf("editor %q: %w", editor, err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", "", err
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, strings.TrimRight(l, " \t\r"))
		}
	}
	msg := strings.Trim(strings.Join(lines, "\n"), "\n")
	subject, body, _ = strings.Cut(msg, "\n")
	if strings.TrimSpace(subject) == "" {
		return "", "", fmt.Errorf("the commit message is empty: commit cancelled")
	}
	return subject, strings.Trim(body, "\n"), nil
}

// pickEditor names the editor as OSTree picks it: $OTREE_EDITOR, else
// OSTree's $OSTREE_EDITOR; else, where $TERM is unset or "dumb" (an
// Emacs shell buffer, a job without a terminal), $EDITOR, a full-screen
// $VISUAL being of no use there, and an error if it is unset rather than
// vi; else $VISUAL, else $EDITOR, else vi. As in OSTree, a variable set
// to nothing is chosen, not passed over: it is an error naming it, where
// OSTree runs the message file as a command.
func pickEditor() (string, error) {
	term, ok := os.LookupEnv("TERM")
	dumb := !ok || term == "dumb"
	for _, name := range []string{"OTREE_EDITOR", "OSTREE_EDITOR", "VISUAL", "EDITOR"} {
		if name == "VISUAL" && dumb {
			continue
		}
		if ed, ok := os.LookupEnv(name); ok {
			if strings.TrimSpace(ed) == "" {
				return "", fmt.Errorf("$%s is set but empty: set it to an editor to write the commit message with, or unset it", name)
			}
			return ed, nil
		}
	}
	if dumb {
		return "", fmt.Errorf("the terminal is dumb ($TERM is %q) and $EDITOR is unset: set $EDITOR or $OTREE_EDITOR to edit the commit message", term)
	}
	return "vi", nil
}
