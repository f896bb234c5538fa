package main

import "github.com/spf13/cobra"

func newRefsCommand(e *env) *cobra.Command { return &cobra.Command{Use: "refs"} }
func newRevParseCommand(e *env) *cobra.Command { return &cobra.Command{Use: "revparse"} }
func newLogCommand(e *env) *cobra.Command { return &cobra.Command{Use: "log"} }
func newShowCommand(e *env) *cobra.Command { return &cobra.Command{Use: "show"} }
func newLsCommand(e *env) *cobra.Command { return &cobra.Command{Use: "ls"} }
func newCatCommand(e *env) *cobra.Command { return &cobra.Command{Use: "cat"} }
func newChecksumCommand(e *env) *cobra.Command { return &cobra.Command{Use: "checksum"} }
func newConfigCommand(e *env) *cobra.Command { return &cobra.Command{Use: "config"} }
func newResetCommand(e *env) *cobra.Command { return &cobra.Command{Use: "reset"} }
func newFsckCommand(e *env) *cobra.Command { return &cobra.Command{Use: "fsck"} }
func newPruneCommand(e *env) *cobra.Command { return &cobra.Command{Use: "prune"} }
