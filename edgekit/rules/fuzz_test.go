package rules_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/lintel-io/lintel/edgekit/rules"
)

// FuzzParse checks that Parse never panics, that every error is a
// *RuleError wrapping a sentinel, and that a document it accepts survives
// a round trip through RuleSet.Document and json.Marshal. The seed corpus
// is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{exampleDoc, evalDoc, benchDoc(5), `{"rules": []}`, `{"rules": [{}]}`, ``, `null`} {
		f.Add([]byte(seed))
	}
	sentinels := []error{rules.ErrMalformed, rules.ErrUnknownField, rules.ErrDuplicate, rules.ErrMissing, rules.ErrInvalid}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := rules.Parse(data, scope)
		if err != nil {
			var re *rules.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("error %T %v is not a *RuleError", err, err)
			}
			if !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		b1, err := json.Marshal(rs.Document())
		if err != nil {
			t.Fatalf("marshal an accepted document: %v", err)
		}
		rs2, err := rules.Parse(b1, scope)
		if err != nil {
			t.Fatalf("round trip of %s refused: %v\nas %s", data, err, b1)
		}
		b2, err := json.Marshal(rs2.Document())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("round trip changed the document:\n%s\n%s", b1, b2)
		}
		if !slices.Equal(rs.Names(), rs2.Names()) {
			t.Fatalf("names %v, then %v", rs.Names(), rs2.Names())
		}
	})
}
