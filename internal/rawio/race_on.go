//go:build race

package rawio

// raceEnabled: built with -race; see raceCall.
const raceEnabled = true
