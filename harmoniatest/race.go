//go:build race

package harmoniatest

// raceEnabled reports whether this binary runs with the race detector.
const raceEnabled = true
