package authz_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
)

// FuzzParseInventory checks that ParseInventory never panics, that every
// error it returns names an entry, and that whatever it accepts is valid,
// survives a JSON round trip and defines distinct identities. The seed
// corpus is in testdata/fuzz/FuzzParseInventory.
func FuzzParseInventory(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("testdata", "inventory.json")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := authz.ParseInventory(data)
		if err != nil {
			if inv != nil {
				t.Fatalf("inventory returned with error %v", err)
			}
			for _, e := range joinedErrs(err) {
				var ie *authz.InventoryError
				if !errors.As(e, &ie) {
					t.Fatalf("error %T %q is not an *InventoryError", e, e)
				}
				if !strings.HasPrefix(e.Error(), "authz: ") || ie.Entry == "" {
					t.Fatalf("error %q: no prefix or entry", e)
				}
				if !errors.Is(e, authz.ErrInvalid) && !errors.Is(e, authz.ErrDuplicate) &&
					!errors.Is(e, authz.ErrUnknownReference) && !errors.Is(e, authz.ErrMalformed) &&
					!errors.Is(e, authz.ErrUnknownKey) && !errors.Is(e, authz.ErrDuplicateKey) {
					t.Fatalf("error %q wraps no sentinel", e)
				}
			}
			return
		}
		if err := inv.Validate(); err != nil {
			t.Fatalf("accepted inventory fails Validate: %v", err)
		}
		out, err := json.Marshal(inv)
		if err != nil {
			t.Fatal(err)
		}
		inv2, err := authz.ParseInventory(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if out2, _ := json.Marshal(inv2); !bytes.Equal(out, out2) {
			t.Fatalf("round trip:\n%s\n%s", out, out2)
		}
		users, edgeKeys := inv.Identities()
		for _, ids := range [][]string{users, edgeKeys} {
			for i := 1; i < len(ids); i++ {
				if ids[i] == ids[i-1] {
					t.Fatalf("identity %q defined twice", ids[i])
				}
			}
		}
	})
}
