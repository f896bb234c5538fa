// Package remote moves commits between repositories: remotes configured in
// a repository's config, the summary file that lists a repository's
// branches, and pull, which fetches commits from an archive repository
// served over HTTP (or from a local repository) and verifies every object
// before storing it. docs/PULL.md describes the protocol and formats.
package remote
