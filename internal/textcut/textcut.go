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
