// Package textcut shortens text for storage and messages without
// splitting a UTF-8 character.
package textcut

import "unicode/utf8"

// Mark ends text that was cut.
const Mark = "…"

// Cut shortens s to at most n bytes, on a rune boundary, ending it with
// Mark when it was cut. n should exceed len(Mark).
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len(Mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + Mark
}

// Runes shortens s to at most n runes, ending it with Mark (one more
// rune) when it was cut: for echoing input in messages, where a 100,000
// character argument must not become a 100 KB error.
func Runes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + Mark
		}
		i++
	}
	return s
}
