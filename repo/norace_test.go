//go:build !race

package repo_test

// raceDetector: the race detector is on (see race_test.go).
const raceDetector = false
