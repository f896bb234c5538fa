package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// needOperation makes c, a command that only groups others, a usage error
// when run without one of them or with an unknown one, naming them all;
// cobra alone would print help and exit 0, and a script's typo would look
// like success. Its Use line lists them too.
func needOperation(c *cobra.Command) {
	ops := operations(c)
	c.Use = c.Name() + " (" + strings.Join(ops, " | ") + ")"
	c.Args = cobra.NoArgs // an argument is an unknown operation (argError)
	c.RunE = func(cmd *cobra.Command, args []string) error { return noOperation(cmd) }
}

// unknownOperation is the error of c run with op, which names none of its
// commands.
func unknownOperation(c *cobra.Command, op string) error {
	return fmt.Errorf("unknown %s operation %q (want %s)", c.CommandPath(), op, strings.Join(operations(c), ", "))
}

// noOperation is the usage error of c run without one of its commands.
func noOperation(c *cobra.Command) error {
	return usagef("%s needs an operation: %s", c.CommandPath(), strings.Join(operations(c), ", "))
}

// operations lists the names of c's commands.
func operations(c *cobra.Command) []string {
	var ops []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() && sub.Name() != "help" {
			ops = append(ops, sub.Name())
		}
	}
	return ops
}
