// Package apidoc has no code: its test checks that every exported
// identifier of the module's library packages carries a doc comment.
package apidoc
