package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// argError says what is wrong with the operands of c, as its Use line
// names them: "log: missing REV", or "fsck: unexpected argument "x"", with
// the usage line. cobra's own err ("accepts 1 arg(s), received 0") is kept
// only for a Use line with alternatives, which does not say which operand
// is missing.
func argError(c *cobra.Command, args []string, err error) error {
	required, max, ok := operands(c.Use)
	switch {
	case c.HasAvailableSubCommands() && len(args) > 0:
		return unknownOperation(c, args[0])
	case !cobraArgError(err):
		return withUsage{err.Error(), c.UseLine()} // a command's own words
	case !ok:
		return withUsage{fmt.Sprintf("%s: %v", c.CommandPath(), err), c.UseLine()}
	case len(args) < len(required):
		return withUsage{fmt.Sprintf("%s: missing %s", c.CommandPath(), strings.Join(required[len(args):], " ")), c.UseLine()}
	case max >= 0 && len(args) > max:
		return withUsage{fmt.Sprintf("%s: unexpected argument %q", c.CommandPath(), args[max]), c.UseLine()}
	}
	return withUsage{fmt.Sprintf("%s: %v", c.CommandPath(), err), c.UseLine()}
}

// withUsage is an error in a command's operands followed by its usage
// line, which is printed as a line of its own.
type withUsage struct {
	msg string // "otree log: missing REV"
	use string // "otree log REV [flags]"
}

func (u withUsage) Error() string { return u.msg + "\nUsage: " + u.use }

// unknownCommand makes cobra's error for a word that names no command,
// whose "Did you mean this?" block of suggestions spans lines, one error
// line and a hint naming the commands it suggests; other errors are
// returned as they are.
func unknownCommand(err error) error {
	msg, block, ok := strings.Cut(err.Error(), "\n\nDid you mean this?\n")
	if !ok || !strings.HasPrefix(msg, "unknown command ") {
		return err
	}
	var names []string
	for _, s := range strings.Fields(block) {
		names = append(names, "`otree "+s+"`")
	}
	return withHint(usageError{errors.New(msg)}, "did you mean "+strings.Join(names, " or ")+"?")
}

// cobraArgError reports whether err is one of cobra's argument-count
// errors, which say nothing of what the operands are.
func cobraArgError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "accepts ") || strings.HasPrefix(msg, "requires ") || strings.HasPrefix(msg, "unknown command ")
}

// operands reads a Use line ("cat REV PATH...", "checkout REV [DEST]"):
// the names of the required operands, and how many operands there may be
// at most (-1 for no limit). Flags in it are skipped, and "REV|DIR" is one
// operand; a line of alternatives ("A | B", "(...)") is not read (ok false).
func operands(use string) (required []string, max int, ok bool) {
	fields := strings.Fields(use)
	if len(fields) == 0 || strings.Contains(use, "(") || strings.Contains(use, " | ") {
		return nil, 0, false
	}
	depth := 0         // brackets open after the field
	flagGroup := false // within "[-o FILE]", a flag and its value
	for _, f := range fields[1:] {
		start := depth
		depth += strings.Count(f, "[") - strings.Count(f, "]")
		if start == 0 {
			flagGroup = strings.HasPrefix(strings.TrimPrefix(f, "["), "-")
		}
		if flagGroup {
			continue
		}
		// Optional: inside brackets opened before, or opening brackets it
		// does not close before its end ("[DEST]", "[COLLECTION-ID");
		// "[REMOTE:]BRANCH" is required.
		optional := start > 0 || strings.HasPrefix(f, "[") && (depth > 0 || strings.HasSuffix(f, "]"))
		name := f
		if optional {
			name = strings.Trim(f, "[]")
		} else {
			required = append(required, strings.TrimSuffix(name, "..."))
		}
		if strings.HasSuffix(name, "...") {
			max = -1
		} else if max >= 0 {
			max++
		}
	}
	return required, max, true
}

// flagError rewords pflag's error for a flag value it cannot parse, which
// for a number or a boolean quotes Go's strconv ("invalid argument "abc"
// for "--depth" flag: strconv.ParseInt: parsing "abc": invalid syntax"),
// as "--depth: "abc" is not a whole number"; other flag errors are kept.
func flagError(err error) error {
	var bad *pflag.InvalidValueError
	if !errors.As(err, &bad) {
		return err
	}
	var num *strconv.NumError
	if !errors.As(err, &num) {
		cause := errors.Unwrap(bad).Error()
		if !strings.Contains(cause, strconv.Quote(bad.GetValue())) {
			cause = fmt.Sprintf("invalid value %q: %s", bad.GetValue(), cause)
		}
		return fmt.Errorf("--%s: %s", bad.GetFlag().Name, cause)
	}
	want := "a whole number"
	switch num.Func {
	case "ParseBool":
		want = "true or false"
	case "ParseFloat":
		want = "a number"
	case "ParseUint":
		want = "a whole number, 0 or more"
	}
	if errors.Is(num.Err, strconv.ErrRange) {
		return fmt.Errorf("--%s: %q is out of range", bad.GetFlag().Name, bad.GetValue())
	}
	return fmt.Errorf("--%s: %q is not %s", bad.GetFlag().Name, bad.GetValue(), want)
}
