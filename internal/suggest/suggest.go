// Package suggest finds the known name a mistyped one probably meant, for
// error messages such as `unknown key "holdr" (did you mean "holder"?)`.
package suggest

import (
	"fmt"
	"strings"
)

// DidYouMean returns ` (did you mean "x"?)` for the name of known closest
// to name, when one differs only in case or by at most two edits, and ""
// otherwise. Of equally close names the first in known wins.
func DidYouMean(name string, known []string) string {
	best, bestDist := "", 3
	ln := strings.ToLower(name)
	for _, k := range known {
		d := editDistance(ln, strings.ToLower(k))
		if d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes;
// names longer than 64 bytes count as far apart without being compared.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
