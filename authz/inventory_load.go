package authz

import (
	"errors"
	"os"
)

// ParseInventory decodes an inventory from its JSON form (see [Inventory]) and
// validates it with [Inventory.Validate].
//
// Decoding is strict: a key that is not part of the format (a typo, or a key
// in the wrong case), a key given twice, a value of the wrong JSON type or
// data after the top-level object is an [*InventoryError] wrapping
// [ErrUnknownKey], [ErrDuplicateKey] or [ErrMalformed], naming the entry and
// the line, e.g.
//
//	authz: things[3]: unknown key "thing_code" (did you mean "code"?) (line 21)
//
// Validation problems are returned all at once, joined with [errors.Join].
func ParseInventory(data []byte) (*Inventory, error) {
	var inv Inventory
	if err := decodeStrict(data, &inv, "inventory"); err != nil {
		var je *jsonError
		if errors.As(err, &je) {
			return nil, &InventoryError{Entry: je.path, Err: je.err}
		}
		return nil, err
	}
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	return &inv, nil
}

// LoadInventory reads the inventory file at path and parses it with
// [ParseInventory]. A file that cannot be read is reported as the
// [*fs.PathError] from the os package.
func LoadInventory(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseInventory(data)
}
