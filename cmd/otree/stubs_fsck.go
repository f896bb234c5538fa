package main

import "github.com/spf13/cobra"

// Placeholder until the command lands; delete with this file.
func newFsckCommand(e *env) *cobra.Command  { return &cobra.Command{Use: "fsck", Hidden: true} }
func newPruneCommand(e *env) *cobra.Command { return &cobra.Command{Use: "prune", Hidden: true} }
