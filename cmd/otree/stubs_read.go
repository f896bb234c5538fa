package main

import "github.com/spf13/cobra"

// Placeholder until the command lands; delete with this file.
func newRefsCommand(e *env) *cobra.Command     { return &cobra.Command{Use: "refs", Hidden: true} }
func newRevParseCommand(e *env) *cobra.Command { return &cobra.Command{Use: "revparse", Hidden: true} }
func newLogCommand(e *env) *cobra.Command      { return &cobra.Command{Use: "log", Hidden: true} }
func newShowCommand(e *env) *cobra.Command     { return &cobra.Command{Use: "show", Hidden: true} }
func newLsCommand(e *env) *cobra.Command       { return &cobra.Command{Use: "ls", Hidden: true} }
func newCatCommand(e *env) *cobra.Command      { return &cobra.Command{Use: "cat", Hidden: true} }
func newChecksumCommand(e *env) *cobra.Command { return &cobra.Command{Use: "checksum", Hidden: true} }
func newConfigCommand(e *env) *cobra.Command   { return &cobra.Command{Use: "config", Hidden: true} }
func newResetCommand(e *env) *cobra.Command    { return &cobra.Command{Use: "reset", Hidden: true} }
